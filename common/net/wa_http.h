/* wa_http.h: HTTP requests, many at once, over one libcurl multi handle.
 *
 * One multi handle keeps a cache of keep-alive connections; each request
 * gets an easy handle from a pool (context in CURLOPT_PRIVATE). The caller
 * drives it: wa_http_run() waits for activity (curl_multi_poll), moves the
 * transfers on (curl_multi_perform) and reports each finished one through
 * its callback (curl_multi_info_read).
 *
 * A request is sent exactly once: libcurl resends a request by itself when
 * a reused connection closes without an answer, and that resend is refused
 * (a prerequest callback for small bodies sent with the headers, a read
 * callback that cannot rewind for large ones); the request then counts as
 * written. TLS verification stays on; only http and https are allowed;
 * redirects are not followed. */
#ifndef WA_HTTP_H
#define WA_HTTP_H

#include <stddef.h>
#include <curl/curl.h>

/* Responses longer than this are cut (provider answers are small). */
#define WA_HTTP_MAXBODY (256 * 1024)

struct wa_http;

struct wa_http_req {
	int post;                         /* 0: GET */
	const char *url;
	const struct curl_slist *headers; /* borrowed until the callback */
	/* The POST body in up to 3 pieces sent one after the other (a large
	 * shared piece needs no copy); borrowed until the callback. */
	const char *body[3];
	size_t body_len[3];
	long connect_timeout_ms, timeout_ms;
};

struct wa_http_res {
	CURLcode code;        /* CURLE_OK when an HTTP answer came */
	long status;          /* its status; 0 when none came */
	const char *body;     /* the answer, NUL-terminated (cut, see above) */
	size_t body_len;
	long retry_after_s;   /* its Retry-After, in seconds; -1 when none */
	int connected;        /* a connection to the server was made */
	int body_sent;        /* the whole request, body included, was written */
	long elapsed_ms;
	size_t req_len;       /* the request's body, in bytes (a 413 names it) */
	const char *error;    /* libcurl's message when code != CURLE_OK */
};

/* Called once per request, from wa_http_run(), when it is over; res and
 * what it points to live until the callback returns. */
typedef void wa_http_done(void *ctx, const struct wa_http_res *res);

/* maxconns: connections kept open for reuse. NULL when out of memory. */
struct wa_http *wa_http_new(int maxconns);

/* Start a request. 0, or -1 (out of memory, or libcurl refused it). */
int wa_http_start(struct wa_http *h, const struct wa_http_req *rq,
    wa_http_done *done, void *ctx);

/* Wait up to timeout_ms (0: not at all) for network activity, one of
 * libcurl's timers or wa_http_wakeup(), then move every request on.
 * Returns how many finished (their callbacks ran), or -1 on a libcurl
 * error. */
int wa_http_run(struct wa_http *h, int timeout_ms);

/* Requests started and not yet reported. */
int wa_http_active(const struct wa_http *h);

/* Make a wa_http_run() that waits return now. Safe from another thread. */
void wa_http_wakeup(struct wa_http *h);

/* Take out one request still running, without its callback: its ctx, or
 * NULL when none is left (or h is NULL). */
void *wa_http_drop(struct wa_http *h);

/* Free h. Requests still running are dropped without their callback. */
void wa_http_free(struct wa_http *h);

#endif
