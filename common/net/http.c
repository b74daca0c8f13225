/* http.c: parallel HTTP requests over one libcurl multi handle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/wa_http.h"

#ifndef WA_VERSION
#define WA_VERSION "0"
#endif

struct xfer {
	CURL *easy;
	struct wa_http *h;
	struct xfer *next;      /* free list, or the running list */
	struct xfer *prev;      /* the running list */
	wa_http_done *done;
	void *ctx;
	/* the request body and how far libcurl has read it */
	const char *piece[3];
	size_t piece_len[3], cur, off;
	curl_off_t body_total, body_read;
	int mode;               /* how the handle was last set up (see setup) */
	CURLU *cu;              /* the last URL, parsed (see set_url) */
	char *cu_url;
	int prereqs;            /* times libcurl was about to send the request */
	int redialed;           /* a new connection after the request went out */
	/* the answer */
	char *resp;
	size_t resp_len, resp_cap;
	char errbuf[CURL_ERROR_SIZE];
};

struct wa_http {
	CURLM *multi;
	struct xfer *free;      /* easy handles kept for reuse */
	struct xfer *running;   /* started, not yet reported */
	int active;
	int proxy_env;          /* a proxy variable is set (see wa_http_new) */
};

/* The variables libcurl looks at for a proxy, and a few it ignores (to
 * err on the side of leaving it alone). */
static const char *const proxy_vars[] = {
	"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
	"all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", NULL
};

struct wa_http *
wa_http_new(int maxconns)
{
	struct wa_http *h;
	int i;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	h = calloc(1, sizeof *h);
	if (!h) {
		curl_global_cleanup();
		return NULL;
	}
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		curl_global_cleanup();
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(maxconns > 0 ? maxconns : 8));
	/* libcurl reads the proxy variables for every request; when none is
	 * set, say so once and spare it the lookups. */
	for (i = 0; proxy_vars[i]; i++)
		if (getenv(proxy_vars[i]))
			h->proxy_env = 1;
	return h;
}

static void
xfer_free(struct xfer *x)
{
	curl_easy_cleanup(x->easy);
	curl_url_cleanup(x->cu);
	free(x->cu_url);
	free(x->resp);
	free(x);
}

static void xfer_put(struct wa_http *h, struct xfer *x);

static void
unlink_running(struct wa_http *h, struct xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		h->running = x->next;
	if (x->next)
		x->next->prev = x->prev;
	h->active--;
}

void *
wa_http_drop(struct wa_http *h)
{
	struct xfer *x = h ? h->running : NULL;

	if (!x)
		return NULL;
	curl_multi_remove_handle(h->multi, x->easy);
	unlink_running(h, x);
	xfer_put(h, x);
	return x->ctx;
}

void
wa_http_free(struct wa_http *h)
{
	struct xfer *x;

	if (!h)
		return;
	while (wa_http_drop(h))
		;
	while (h->free) {
		x = h->free;
		h->free = x->next;
		xfer_free(x);
	}
	curl_multi_cleanup(h->multi);
	free(h);
	curl_global_cleanup();
}

int
wa_http_active(const struct wa_http *h)
{
	return h->active;
}

void
wa_http_wakeup(struct wa_http *h)
{
	curl_multi_wakeup(h->multi);
}

/* libcurl reads the body from here, piece after piece. */
static size_t
read_body(char *buf, size_t size, size_t nitems, void *p)
{
	struct xfer *x = p;
	size_t room = size * nitems, n = 0, take;

	while (room > 0 && x->cur < 3) {
		take = x->piece_len[x->cur] - x->off;
		if (take == 0) {
			x->cur++;
			x->off = 0;
			continue;
		}
		if (take > room)
			take = room;
		memcpy(buf + n, x->piece[x->cur] + x->off, take);
		x->off += take;
		n += take;
		room -= take;
	}
	x->body_read += (curl_off_t)n;
	return n;
}

/* libcurl rewinds to send the body again, on a reused connection that died
 * or after a redirect. Once it has read any of it, that would be a second
 * send the caller never asked for: refuse, and the transfer fails. */
static int
seek_body(void *p, curl_off_t offset, int origin)
{
	struct xfer *x = p;

	if (origin == SEEK_SET && offset == 0 && x->body_read == 0)
		return CURL_SEEKFUNC_OK;
	return CURL_SEEKFUNC_FAIL;
}

/* Called before the request goes out, and again if libcurl wants to
 * resend it by itself (a reused connection closed without an answer): the
 * body may have been acted on, so that second send is refused. */
static int
prereq(void *p, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
    int conn_local_port)
{
	struct xfer *x = p;

	return ++x->prereqs > 1 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* libcurl opens a socket for a transfer only to connect; one opened
 * after the request went out is its silent resend on a new connection
 * (the old one closed with no answer). */
static int
opened(void *p, curl_socket_t fd, curlsocktype purpose)
{
	struct xfer *x = p;

	if (x->prereqs > 0)
		x->redialed = 1;
	return CURL_SOCKOPT_OK;
}

static size_t
write_resp(char *data, size_t size, size_t nmemb, void *p)
{
	struct xfer *x = p;
	size_t n = size * nmemb, cap;
	char *nb;

	if (x->resp_len + n > WA_HTTP_MAXBODY)
		n = WA_HTTP_MAXBODY - x->resp_len;  /* keep the start, drop the rest */
	if (n && x->resp_len + n + 1 > x->resp_cap) {
		cap = x->resp_cap ? x->resp_cap : 1024;
		while (cap < x->resp_len + n + 1)
			cap *= 2;
		nb = realloc(x->resp, cap);
		if (!nb)
			return 0; /* fails the transfer: CURLE_WRITE_ERROR */
		x->resp = nb;
		x->resp_cap = cap;
	}
	if (n) {
		memcpy(x->resp + x->resp_len, data, n);
		x->resp_len += n;
	}
	return size * nmemb;
}

static struct xfer *
xfer_get(struct wa_http *h)
{
	struct xfer *x = h->free;

	if (x) {
		h->free = x->next;
	} else {
		x = calloc(1, sizeof *x);
		if (!x)
			return NULL;
		x->easy = curl_easy_init();
		if (!x->easy) {
			free(x);
			return NULL;
		}
	}
	x->h = h;
	x->next = NULL;
	x->prereqs = 0;
	x->redialed = 0;
	x->resp_len = 0;
	x->cur = x->off = 0;
	x->body_total = x->body_read = 0;
	x->errbuf[0] = '\0';
	return x;
}

static void
xfer_put(struct wa_http *h, struct xfer *x)
{
	/* A big answer's buffer is not worth keeping. */
	if (x->resp_cap > 64 * 1024) {
		free(x->resp);
		x->resp = NULL;
		x->resp_cap = 0;
	}
	x->next = h->free;
	h->free = x;
}

enum { M_NONE, M_GET, M_FIELDS, M_READ };

/* A small body in one piece goes out with the headers in one write
 * (CURLOPT_POSTFIELDS); a large or pieced one through read_body. */
static int
body_mode(struct xfer *x, const struct wa_http_req *rq)
{
	int i;

	if (!rq->post)
		return M_GET;
	for (i = 0; i < 3; i++) {
		x->piece[i] = rq->body[i];
		x->piece_len[i] = rq->body[i] ? rq->body_len[i] : 0;
		x->body_total += (curl_off_t)x->piece_len[i];
	}
	return x->piece_len[1] == 0 && x->piece_len[2] == 0 &&
	    x->piece_len[0] < 60 * 1024 ? M_FIELDS : M_READ;
}

/* The options that stay the same from one request to the next on a
 * handle whose kind of body does not change. */
static int
setup_fixed(struct xfer *x, int mode)
{
	CURL *e = x->easy;
	int bad = 0;

	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "wa/" WA_VERSION);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_resp);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq);
	bad |= curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, opened);
	bad |= curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, x);
	/* Below the 5 s keep-alive timeout of Node servers (Baileys), so an
	 * idle connection is not reused just as the server closes it. */
	bad |= curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 4L);
	/* The providers' answers are small: an 8 KB receive buffer, not 16,
	 * and the smallest upload buffer (16 KB, not 64) for a body read in
	 * pieces. A worker running a hundred broadcasts keeps a few handles
	 * for each. */
	bad |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 8192L);
	if (!x->h->proxy_env) {
		bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");
		bad |= curl_easy_setopt(e, CURLOPT_NOPROXY, "");
	}
	if (mode == M_GET)
		return bad | curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	if (mode == M_READ) {
		bad |= curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
		bad |= curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
		bad |= curl_easy_setopt(e, CURLOPT_READDATA, x);
		bad |= curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_body);
		bad |= curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
	}
	return bad;
}

/* The URL, parsed once for the handle while it stays the same: given a
 * string, libcurl would parse it and put it back together for every
 * request. One libcurl cannot parse here goes as a string, for libcurl
 * to report as it would. */
static int
set_url(struct xfer *x, const char *url)
{
	if (!x->cu_url || strcmp(x->cu_url, url) != 0) {
		curl_url_cleanup(x->cu);
		free(x->cu_url);
		x->cu = curl_url();
		x->cu_url = strdup(url);
		if (!x->cu || !x->cu_url ||
		    curl_url_set(x->cu, CURLUPART_URL, url, 0) != CURLUE_OK) {
			curl_url_cleanup(x->cu);
			free(x->cu_url);
			x->cu = NULL;
			x->cu_url = NULL;
		}
	}
	if (x->cu)
		return curl_easy_setopt(x->easy, CURLOPT_CURLU, x->cu);
	return curl_easy_setopt(x->easy, CURLOPT_CURLU, NULL) |
	    curl_easy_setopt(x->easy, CURLOPT_URL, url);
}

static int
setup(struct xfer *x, const struct wa_http_req *rq)
{
	CURL *e = x->easy;
	int bad = 0, mode = body_mode(x, rq);

	/* A pooled handle keeps its options; start afresh only when the
	 * kind of body changes, so no option of the other kind lingers. */
	if (mode != x->mode) {
		curl_easy_reset(e);
		x->mode = M_NONE;
		if (setup_fixed(x, mode) != 0)
			return -1;
		x->mode = mode;
	}
	bad |= set_url(x, rq->url);
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->headers);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	if (mode == M_GET)
		return bad;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, x->body_total);
	if (mode == M_FIELDS)
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->piece[0]);
	return bad;
}

int
wa_http_start(struct wa_http *h, const struct wa_http_req *rq,
    wa_http_done *done, void *ctx)
{
	struct xfer *x = xfer_get(h);

	if (!x)
		return -1;
	x->done = done;
	x->ctx = ctx;
	if (setup(x, rq) != 0 || curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
		xfer_put(h, x);
		return -1;
	}
	x->prev = NULL;
	x->next = h->running;
	if (h->running)
		h->running->prev = x;
	h->running = x;
	h->active++;
	return 0;
}

static void
finish(struct wa_http *h, struct xfer *x, CURLcode code)
{
	struct wa_http_res res;
	curl_off_t up = 0, total = 0, retry = -1;
	long reqsize = 0;

	memset(&res, 0, sizeof res);
	if (code == CURLE_ABORTED_BY_CALLBACK && x->prereqs > 1) {
		/* prereq refused libcurl's own resend: the request went out
		 * and the connection closed without an answer. */
		code = CURLE_GOT_NOTHING;
		snprintf(x->errbuf, sizeof x->errbuf, "connection closed after the "
		    "request was sent (not sent again)");
	}
	curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &reqsize);
	if (code != CURLE_OK && x->redialed) {
		/* The request went out on a connection that then closed without
		 * an answer; libcurl's new connection to send it again failed,
		 * and its upload counter was reset. The server may have acted on
		 * the request. */
		code = CURLE_GOT_NOTHING;
		snprintf(x->errbuf, sizeof x->errbuf, "connection closed after the "
		    "request was sent (not sent again)");
		reqsize = 1;
		up = x->body_total;
	}
	res.code = code;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.status);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total);
	if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry) != CURLE_OK || retry <= 0)
		retry = -1;
	res.retry_after_s = (long)retry;
	res.connected = reqsize > 0 || code == CURLE_SEND_FAIL_REWIND || x->prereqs > 1;
	/* Written whole: the server may have acted on it. libcurl only rewinds
	 * (and seek_body refuses) after it wrote the body on a connection that
	 * then died; its counters are reset by then. */
	res.body_sent = (reqsize > 0 && up >= x->body_total) ||
	    code == CURLE_SEND_FAIL_REWIND || x->prereqs > 1;
	res.elapsed_ms = (long)(total / 1000);
	res.req_len = (size_t)x->body_total;
	if (!x->resp) {
		x->resp = malloc(1);
		x->resp_cap = x->resp ? 1 : 0;
	}
	if (x->resp)
		x->resp[x->resp_len] = '\0';
	res.body = x->resp ? x->resp : "";
	res.body_len = x->resp_len;
	res.error = code == CURLE_OK ? NULL :
	    x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
	curl_multi_remove_handle(h->multi, x->easy);
	unlink_running(h, x);
	x->done(x->ctx, &res);
	xfer_put(h, x);
}

static int
collect(struct wa_http *h)
{
	struct xfer *x;
	CURLMsg *m;
	int running, left, n = 0;

	if (curl_multi_perform(h->multi, &running) != CURLM_OK)
		return -1;
	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		finish(h, x, m->data.result);
		n++;
	}
	return n;
}

int
wa_http_run(struct wa_http *h, int timeout_ms)
{
	/* libcurl shortens the wait to its own timers: a request just
	 * started is due at once, so polling first loses nothing. */
	if (timeout_ms > 0 &&
	    curl_multi_poll(h->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK)
		return -1;
	return collect(h);
}
