/* baileys.c: the Baileys service (providers.md §1).
 *
 * POST {base}/send with {"to":JID,"type":…,"idempotencyKey","tenantId":
 * "business_<id>"} and X-Internal-Secret. Media travels as base64 in the
 * body: a `path` is read from disk (16 MB cap, 100 MB for documents). A
 * media `url` cannot go to Baileys (the service takes bytes, and fetching
 * URLs on the caller's behalf is not this program's job): that is a
 * permanent `unsupported` error. So are templates, a Meta feature.
 *
 * What the real service would lose or refuse is refused here, before any
 * request: a body over its express.json limit (WA_BAILEYS_MAX_BODY), a
 * caption on audio (it builds audio without one), a MIME type that is not
 * the media type's. Its own send timeout is 30 s, so ours waits 35 s by
 * default to hear its answer.
 *
 * Readiness: GET {base}/whatsapp/business_<id>/status, ready when
 * connected, authPaired and canSend. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "base/wa_cli.h"
#include "base/wa_utf8.h"
#include "net/wa_url.h"
#include "record/wa_rec.h"
#include "send/provider/provider.h"

/* Media caps (the old client's): bytes read from disk. */
#define WA_MEDIA_MAX (16L * 1024 * 1024)
#define WA_DOCUMENT_MAX (100L * 1024 * 1024)

/* The send timeout when WA_TIMEOUT is unset: longer than the service's
 * own 30 s, so its `500 send_failed` answer is heard, not a timeout. */
#define WA_BAILEYS_TIMEOUT_MS 35000L

/* A media file as base64, shared by every message that sends it. */
struct wa_blob {
	int refs;
	char *b64;
	size_t b64_len, raw_len;
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	long long mtime_ns;
};

/* A sender's settings, built from the config once. */
struct baileys {
	char *url;                       /* …/send */
	struct curl_slist *hdr;
	struct curl_slist *media_hdr;    /* with "Expect:" */
	struct wa_blob *last_blob;       /* the media file read last */
	long long max_body;              /* WA_BAILEYS_MAX_BODY; 0: none */
	const char *missing;             /* NULL, or the setting it lacks */
};

/* --- base64 ------------------------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode n bytes; out needs 4 * ((n + 2) / 3) bytes. Returns its length. */
static size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	return o;
}

/* --- media files ------------------------------------------------------- */

static void
blob_unref(struct wa_blob *b)
{
	if (b && --b->refs == 0) {
		free(b->b64);
		free(b->path);
		free(b);
	}
}

/* Read fd to its end, encoding as it goes: memory is the base64 alone. */
static int
blob_fill(struct wa_blob *b, int fd, off_t size)
{
	enum { CHUNK = 3 * 64 * 1024 };
	unsigned char *buf = malloc(CHUNK);
	size_t have = 0, total = 0;
	ssize_t n;

	b->b64 = malloc(4 * (((size_t)size + 2) / 3) + 1);
	if (!buf || !b->b64) {
		free(buf);
		return -1;
	}
	for (;;) {
		n = read(fd, buf + have, CHUNK - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		have += (size_t)n;
		/* Only a full chunk (a multiple of 3) or the end is encoded. */
		if (have == CHUNK || n == 0) {
			if (total + have > (size_t)size) {
				free(buf);
				errno = EAGAIN; /* the file grew as we read it */
				return -1;
			}
			b->b64_len += b64_encode(buf, have, b->b64 + b->b64_len);
			total += have;
			have = 0;
		}
		if (n == 0)
			break;
	}
	free(buf);
	b->raw_len = total;
	b->b64[b->b64_len] = '\0';
	return 0;
}

static int
blob_same(const struct wa_blob *b, const char *path, const struct stat *st)
{
	return b && strcmp(b->path, path) == 0 && b->dev == st->st_dev &&
	    b->ino == st->st_ino && b->size == st->st_size &&
	    b->mtime_ns == (long long)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static struct wa_blob *
blob_read(int fd, const char *path, const struct stat *st)
{
	struct wa_blob *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	b->refs = 1;
	b->path = strdup(path);
	b->dev = st->st_dev;
	b->ino = st->st_ino;
	b->size = st->st_size;
	b->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (!b->path || blob_fill(b, fd, st->st_size) != 0) {
		blob_unref(b);
		return NULL;
	}
	return b;
}

/* The base64 of the file at path, checked against the cap for its type;
 * the last file read is kept, so a broadcast reads its media once. */
static struct wa_blob *
media_load(struct baileys *pv, const char *type, const char *path,
    struct wa_error *e)
{
	long cap = strcmp(type, "document") == 0 ? WA_DOCUMENT_MAX : WA_MEDIA_MAX;
	struct wa_blob *b;
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		wa_error_set(e, "media_unreadable", WA_CLASS_PERMANENT, "%s: %s",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0 || st.st_size > cap) {
		if (!S_ISREG(st.st_mode))
			wa_error_set(e, "media_unreadable", WA_CLASS_PERMANENT,
			    "%s: not a regular file", path);
		else if (st.st_size == 0)
			wa_error_set(e, "bad_media", WA_CLASS_PERMANENT,
			    "%s: empty file", path);
		else
			wa_error_set(e, "media_too_large", WA_CLASS_PERMANENT,
			    "%s: %lld bytes, over the %ld MB limit for %s", path,
			    (long long)st.st_size, cap >> 20, type);
		close(fd);
		return NULL;
	}
	if (blob_same(pv->last_blob, path, &st)) {
		close(fd);
		pv->last_blob->refs++;
		return pv->last_blob;
	}
	b = blob_read(fd, path, &st);
	close(fd);
	if (!b) {
		wa_error_set(e, "media_unreadable", WA_CLASS_PERMANENT, "%s: %s",
		    path, errno == EAGAIN ? "changed while being read" : strerror(errno));
		return NULL;
	}
	blob_unref(pv->last_blob);
	pv->last_blob = b;
	b->refs++;
	return b;
}

static void
release(void *hold)
{
	blob_unref(hold);
}

static void
req_free(struct wa_req *rq)
{
	free(rq->head);
	free(rq->tail);
	blob_unref(rq->hold);
	memset(rq, 0, sizeof *rq);
}

static const char *
guess_mimetype(const char *type, const char *path)
{
	static const char *const ext[][2] = {
		{ "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
		{ "png", "image/png" }, { "webp", "image/webp" },
		{ "gif", "image/gif" }, { "mp4", "video/mp4" },
		{ "3gp", "video/3gpp" }, { "mp3", "audio/mpeg" },
		{ "ogg", "audio/ogg" }, { "opus", "audio/ogg" },
		{ "m4a", "audio/mp4" }, { "aac", "audio/aac" },
		{ "amr", "audio/amr" }, { "pdf", "application/pdf" },
		{ "txt", "text/plain" }, { "csv", "text/csv" },
		{ "zip", "application/zip" },
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	for (i = 0; dot && i < sizeof ext / sizeof ext[0]; i++)
		if (strcasecmp(dot + 1, ext[i][0]) == 0)
			return ext[i][1];
	if (strcmp(type, "image") == 0)
		return "image/jpeg";
	if (strcmp(type, "video") == 0)
		return "video/mp4";
	if (strcmp(type, "audio") == 0)
		return "audio/ogg";
	return "application/octet-stream";
}

/* --- requests ---------------------------------------------------------- */

static void
gen_common(yajl_gen g, const struct wa_msg *m, const char *type)
{
	yajl_gen_map_open(g);
	wa_gen_kv(g, "to", m->jid);
	wa_gen_kv(g, "type", type);
}

static void
gen_tail(yajl_gen g, const struct wa_msg *m, const char *key)
{
	char tenant[40];

	snprintf(tenant, sizeof tenant, "business_%lld", m->business_id);
	wa_gen_kv(g, "idempotencyKey", key);
	wa_gen_kv(g, "tenantId", tenant);
}

static int
build_text(const struct wa_msg *m, const char *key, struct wa_req *rq)
{
	char tenant[9 + WA_LL_SIZE] = "business_";
	const char *kv[] = { "to", m->jid, "type", "text", "text", m->text,
		"idempotencyKey", key, "tenantId", tenant };

	wa_fmt_ll(tenant + 9, m->business_id);
	rq->head = wa_json_strobj(kv, 5, &rq->head_len);
	return rq->head ? 0 : -1;
}

/* The media body ends with "data":"…"}}: generated with an empty data,
 * then cut around it, so the base64 is never copied into each body. */
static int
build_media(const struct wa_msg *m, const char *key, struct wa_req *rq)
{
	static const char end[] = "\"\"}}";
	const char *slash = strrchr(m->media.path, '/');
	yajl_gen g = yajl_gen_alloc(NULL);
	size_t len;
	char *out;

	if (!g)
		return -1;
	gen_common(g, m, m->media.type);
	if (m->media.caption)
		wa_gen_kv(g, "caption", m->media.caption);
	gen_tail(g, m, key);
	yajl_gen_string(g, (const unsigned char *)"media", 5);
	yajl_gen_map_open(g);
	wa_gen_kv(g, "mimetype", m->media.mimetype ? m->media.mimetype :
	    guess_mimetype(m->media.type, m->media.path));
	wa_gen_kv(g, "filename", m->media.filename ? m->media.filename :
	    slash ? slash + 1 : m->media.path);
	wa_gen_kv(g, "data", "");
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	out = wa_gen_take(g, &len);
	yajl_gen_free(g);
	if (!out || len < 4 || strcmp(out + len - 4, end) != 0) {
		free(out);
		return -1;
	}
	rq->head = out;
	rq->head_len = len - 3;       /* up to and with the opening quote */
	rq->tail = strdup(end + 1);   /* "}} */
	rq->tail_len = 3;
	rq->media = 1;
	return rq->tail ? 0 : -1;
}

/* The MIME type sent (given, else guessed from the file name) must be
 * of the media type's family, as the old client checked: WhatsApp shows
 * an "image" that is a PDF as a broken image. A document may be anything. */
static int
check_mimetype(const struct wa_msg *m, struct wa_error *e)
{
	const char *mt = m->media.mimetype ? m->media.mimetype :
	    guess_mimetype(m->media.type, m->media.path);
	size_t n = strlen(m->media.type);

	if (strcmp(m->media.type, "document") == 0 ||
	    (strncasecmp(mt, m->media.type, n) == 0 && mt[n] == '/'))
		return 0;
	wa_error_set(e, "media_type_mismatch", WA_CLASS_PERMANENT,
	    "media.type %s does not go with MIME type %.60s%s%.60s%s: give the "
	    "right type (or \"document\")", m->media.type, mt,
	    m->media.mimetype ? "" : " (from ", m->media.mimetype ? "" :
	    (strrchr(m->media.path, '/') ? strrchr(m->media.path, '/') + 1 :
	    m->media.path), m->media.mimetype ? "" : ")");
	return -1;
}

static int
check_media(const struct wa_msg *m, struct wa_error *e)
{
	static const char *const types[] = { "image", "video", "audio", "document" };
	size_t i;

	for (i = 0; m->media.type && i < 4; i++)
		if (strcmp(m->media.type, types[i]) == 0)
			break;
	if (!m->media.type || i == 4) {
		wa_error_set(e, "bad_media", WA_CLASS_PERMANENT,
		    "media.type must be image, video, audio or document");
		return -1;
	}
	if (!m->media.path) {
		wa_error_set(e, "unsupported", WA_CLASS_PERMANENT, "%s",
		    m->media.url ? "Baileys takes media bytes: give media.path "
		    "(a media.url can only go to Meta)" : "media needs a path");
		return -1;
	}
	/* The service builds audio as {audio, mimetype, fileName}: a caption
	 * would be dropped without a word, and the record reported sent. */
	if (i == 2 && m->media.caption && *m->media.caption) {
		wa_error_set(e, "caption_on_audio", WA_CLASS_PERMANENT,
		    "the Baileys service drops captions on audio: send the "
		    "caption (or the record's text, which media takes as its "
		    "caption) as a text of its own");
		return -1;
	}
	return check_mimetype(m, e);
}

/* n as "102,872": the figure people compare with a limit. */
static void
fmt_bytes(char *buf, size_t len, size_t n)
{
	char d[32];
	size_t nd = (size_t)snprintf(d, sizeof d, "%zu", n), i, o = 0;

	for (i = 0; i < nd && o + 2 < len; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = d[i];
	}
	buf[o] = '\0';
}

/* What a 413 means and what to do, the same whether the service said so
 * or WA_BAILEYS_MAX_BODY did (then limit is its value). Only media makes
 * a body that large in practice; a text is named as such when known. */
static void
body_limit_error(struct wa_error *e, size_t bytes, long long limit, int text)
{
	const char *what = text ? "the text" : "the media";
	const char *instead = text ? "send a shorter text" : "send a link through Meta";
	char b[32], l[32];

	fmt_bytes(b, sizeof b, bytes);
	if (limit > 0) {
		fmt_bytes(l, sizeof l, (size_t)limit);
		wa_error_set(e, "body_too_large", WA_CLASS_PERMANENT,
		    "the Baileys service would refuse a %s-byte request: its JSON "
		    "body limit (express.json limit, WA_BAILEYS_MAX_BODY=%s) is lower "
		    "than %s; raise it in the service or %s", b, l, what, instead);
	} else
		wa_error_set(e, "body_too_large", WA_CLASS_PERMANENT,
		    "the Baileys service refused a %s-byte request: its JSON body "
		    "limit (express.json limit) is lower than %s; raise it in the "
		    "service or %s", b, what, instead);
}

static int
build(void *state, const struct wa_msg *m, const char *key, struct wa_req *rq,
    struct wa_error *e)
{
	struct baileys *pv = state;
	struct wa_blob *blob;
	size_t len;
	int rc;

	memset(rq, 0, sizeof *rq);
	rq->url = pv->url;
	rq->headers = pv->hdr;
	if (wa_jid_kind(m->jid, NULL, 0) == 0) {
		wa_error_set(e, "invalid_jid", WA_CLASS_PERMANENT,
		    "not a person's WhatsApp address: %.80s", m->jid ? m->jid : "(none)");
		return -1;
	}
	if (pv->missing) {
		wa_error_set(e, "not_configured", WA_CLASS_FATAL,
		    "Baileys is not configured: %s is not set", pv->missing);
		return -1;
	}
	if (m->business_id < 0) {
		wa_error_set(e, "missing_business", WA_CLASS_PERMANENT,
		    "Baileys needs a business (tenant): give business_id or --business");
		return -1;
	}
	switch (m->kind) {
	case WA_MSG_TEXT:
		if (!m->text || !*m->text) {
			wa_error_set(e, "missing_text", WA_CLASS_PERMANENT, "empty text");
			return -1;
		}
		rc = build_text(m, key, rq);
		break;
	case WA_MSG_MEDIA:
		if (check_media(m, e) != 0)
			return -1;
		blob = media_load(pv, m->media.type, m->media.path, e);
		if (!blob)
			return -1;
		rq->hold = blob;
		rq->shared = blob->b64;
		rq->shared_len = blob->b64_len;
		snprintf(rq->shared_note, sizeof rq->shared_note,
		    "<base64 of %zu bytes>", blob->raw_len);
		rq->headers = pv->media_hdr;
		rc = build_media(m, key, rq);
		break;
	default:
		wa_error_set(e, "unsupported", WA_CLASS_PERMANENT,
		    "templates are a Meta feature; Baileys sends text or media");
		return -1;
	}
	if (rc != 0) {
		req_free(rq);
		wa_error_set(e, "no_memory", WA_CLASS_FATAL, "out of memory");
		return -1;
	}
	len = rq->head_len + rq->shared_len + rq->tail_len;
	if (pv->max_body > 0 && len > (unsigned long long)pv->max_body) {
		req_free(rq);
		body_limit_error(e, len, pv->max_body, m->kind == WA_MSG_TEXT);
		return -1;
	}
	return 0;
}

/* --- answers ----------------------------------------------------------- */

static void
provider_error(yajl_val v, struct wa_error *e)
{
	const char *err = wa_get_str(v, "error"), *msg = wa_get_str(v, "message");
	char m[sizeof e->message] = "";

	if (err) {
		snprintf(e->provider_code, sizeof e->provider_code, "%s", err);
		wa_utf8_trim(e->provider_code);
	}
	if (msg)
		snprintf(m, sizeof m, "%s: %s", err ? err : "error", msg);
	else if (err)
		snprintf(m, sizeof m, "%s", err);
	m[strcspn(m, "\r\n")] = '\0';
	wa_utf8_trim(m);
	/* A refusal of the secret on /send is not the service's: its own
	 * word ("unauthorized") would hide that. */
	if (m[0] && e->http_status != 401 && e->http_status != 403)
		memcpy(e->message, m, sizeof m);
}

static void
classify_status(long st, size_t bytes, yajl_val v, struct wa_error *e)
{
	const char *err = wa_get_str(v, "error");

	if (st == 413)
		body_limit_error(e, bytes, 0, 0);
	else if (st == 400 || st == 422)
		wa_error_set(e, "bad_request", WA_CLASS_PERMANENT, "Baileys refused the message (HTTP %ld)", st);
	/* The real service checks no secret on /send (only its session
	 * routes): a refusal here comes from something in front of it. */
	else if (st == 401 || st == 403)
		wa_error_set(e, "unauthorized", WA_CLASS_FATAL, "refused before the Baileys "
		    "service (HTTP %ld): its /send checks no secret; is a proxy in front of it?", st);
	else if (st == 404)
		wa_error_set(e, "not_found", WA_CLASS_FATAL, "no /send at BAILEYS_BASE_URL (HTTP 404)");
	else if (st == 408 || st == 429)
		wa_error_set(e, "rate_limited", WA_CLASS_RETRYABLE, "Baileys asked to slow down (HTTP %ld)", st);
	else if (st == 503)
		wa_error_set(e, err && strcasestr(err, "not connected") ? "not_connected" :
		    "unavailable", WA_CLASS_FATAL, "Baileys cannot send now (HTTP 503)");
	else if (st == 500 && err && strcmp(err, "send_failed") == 0)
		wa_error_set(e, "send_failed", WA_CLASS_AMBIGUOUS, "Baileys send failed; it may have gone out");
	else if (st >= 500)
		wa_error_set(e, "server_error", WA_CLASS_AMBIGUOUS, "Baileys failed (HTTP %ld); it may have sent", st);
	else if (st >= 400)
		wa_error_set(e, "rejected", WA_CLASS_PERMANENT, "Baileys refused the message (HTTP %ld)", st);
	else
		wa_error_set(e, "bad_response", WA_CLASS_AMBIGUOUS, "unexpected answer from Baileys (HTTP %ld)", st);
	e->http_status = st;
	provider_error(v, e);
}

static int
answer(const struct wa_http_res *res, struct wa_accepted *acc, struct wa_error *e)
{
	yajl_val v;

	v = wa_json_parse(res->body, NULL, 0);
	const char *mid = wa_get_str(v, "messageId");
	yajl_val ok = wa_get(v, "ok");

	if (res->status >= 200 && res->status < 300 && mid && !YAJL_IS_FALSE(ok)) {
		snprintf(acc->id, sizeof acc->id, "%s", mid);
		wa_utf8_trim(acc->id);
		wa_val_free(v);
		return 1;
	}
	if (res->status >= 200 && res->status < 300) {
		/* Accepted, maybe, but not in the words of the contract. */
		wa_error_set(e, "bad_response", WA_CLASS_AMBIGUOUS,
		    "Baileys answered %ld without a messageId", res->status);
		e->http_status = res->status;
		provider_error(v, e);
	} else
		classify_status(res->status, res->req_len, v, e);
	wa_val_free(v);
	return 0;
}

/* --- readiness --------------------------------------------------------- */

static int
ready_req(const struct wa_cfg *cfg, long long business_id, char **url,
    struct curl_slist **hdr, char *reason, size_t len)
{
	char seg[48];
	const char *parts[] = { "whatsapp", seg, "status", NULL };
	const char *secret = wa_cfg_get(cfg, WA_CFG_INTERNAL_SECRET);

	if (business_id < 0) {
		snprintf(reason, len, "Baileys needs a business: give --business");
		return WA_EXIT_CONFIG;
	}
	if (!secret) {
		snprintf(reason, len, "INTERNAL_SECRET is not set");
		return WA_EXIT_CONFIG;
	}
	snprintf(seg, sizeof seg, "business_%lld", business_id);
	*url = wa_url_join(wa_cfg_get(cfg, WA_CFG_BAILEYS_BASE_URL), parts);
	*hdr = wa_header_add(NULL, "Accept", "", "application/json");
	if (*hdr)
		*hdr = wa_header_add(*hdr, "X-Internal-Secret", "", secret);
	if (!*url || !*hdr) {
		free(*url);
		curl_slist_free_all(*hdr);
		return WA_EXIT_SOFTWARE;
	}
	return WA_EXIT_OK;
}

static int
ready_answer(long status, yajl_val v, struct wa_ready *out)
{
	const char *state = wa_get_str(v, "sessionState");

	if (status == 401 || status == 403) {
		snprintf(out->reason, sizeof out->reason,
		    "Baileys rejected INTERNAL_SECRET (HTTP %ld)", status);
		return WA_EXIT_UNAVAIL;
	}
	if (status != 200 || !YAJL_IS_OBJECT(v)) {
		snprintf(out->reason, sizeof out->reason,
		    "unexpected answer from Baileys (HTTP %ld)", status);
		return WA_EXIT_UNAVAIL;
	}
	out->ready = YAJL_IS_TRUE(wa_get(v, "connected")) &&
	    YAJL_IS_TRUE(wa_get(v, "authPaired")) && YAJL_IS_TRUE(wa_get(v, "canSend"));
	if (out->ready)
		snprintf(out->reason, sizeof out->reason, "connected");
	else
		snprintf(out->reason, sizeof out->reason, "not connected (sessionState=%s)%s",
		    state ? state : "unknown",
		    YAJL_IS_TRUE(wa_get(v, "hasQR")) || (state && strcmp(state, "waiting_qr") == 0) ?
		    ": scan the QR code" : "");
	return out->ready ? WA_EXIT_OK : WA_EXIT_UNAVAIL;
}

/* --- settings ---------------------------------------------------------- */

static void
fini(void *state)
{
	struct baileys *pv = state;

	if (!pv)
		return;
	free(pv->url);
	curl_slist_free_all(pv->hdr);
	curl_slist_free_all(pv->media_hdr);
	blob_unref(pv->last_blob);
	free(pv);
}

static void *
init(const struct wa_cfg *cfg, char *err, size_t errlen)
{
	const char *base = wa_cfg_get(cfg, WA_CFG_BAILEYS_BASE_URL);
	const char *secret = wa_cfg_get(cfg, WA_CFG_INTERNAL_SECRET);
	const char *parts[] = { "send", NULL };
	struct baileys *pv;

	if (!wa_url_http(base)) {
		snprintf(err, errlen, "BAILEYS_BASE_URL: not an http:// or https:// URL");
		return NULL;
	}
	pv = calloc(1, sizeof *pv);
	if (!pv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pv->max_body = cfg->baileys_max_body;
	/* Without the secret the status route answers 401; each message
	 * then fails not_configured, as Meta's do without a token. */
	pv->missing = secret ? NULL : "INTERNAL_SECRET";
	pv->url = wa_url_join(base, parts);
	/* The service checks the secret on its session routes only, today;
	 * sending it on /send too costs nothing. */
	pv->hdr = wa_headers_json_post("X-Internal-Secret", "", secret, 0);
	pv->media_hdr = wa_headers_json_post("X-Internal-Secret", "", secret, 1);
	if (!pv->url || !pv->hdr || !pv->media_hdr) {
		snprintf(err, errlen, "out of memory");
		fini(pv);
		return NULL;
	}
	return pv;
}

const struct wa_provider_ops wa_baileys_ops = {
	.name = "baileys",
	.title = "Baileys",
	.send_timeout_ms = WA_BAILEYS_TIMEOUT_MS,
	.init = init,
	.fini = fini,
	.build = build,
	.release = release,
	.answer = answer,
	.ready_req = ready_req,
	.ready_answer = ready_answer,
};
