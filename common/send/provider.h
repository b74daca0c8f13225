/* provider.h: private interface between the send engine (send.c) and the
 * two providers (provider_baileys.c, provider_meta.c): how a message
 * becomes a request, and how an answer becomes an outcome. */
#ifndef WA_PROVIDER_H
#define WA_PROVIDER_H

#include <stddef.h>
#include <sys/types.h>
#include <curl/curl.h>
#include <yajl/yajl_gen.h>

#include "cfg/wa_cfg.h"
#include "net/wa_http.h"
#include "send/wa_send.h"

/* Media caps (the old client's): bytes read from disk for Baileys. */
#define WA_MEDIA_MAX (16L * 1024 * 1024)
#define WA_DOCUMENT_MAX (100L * 1024 * 1024)
/* Meta refuses longer text bodies. */
#define WA_META_TEXT_MAX 4096

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

/* One message's request, built once and sent as it is by every attempt:
 * the body is head, then the blob's base64 (if any), then tail. */
struct wa_req {
	const char *url;                 /* the provider's, shared */
	const struct curl_slist *headers; /* the provider's, shared */
	char *head, *tail;
	size_t head_len, tail_len;
	struct wa_blob *blob;
	int media;                       /* picks the media timeout */
};

/* What both providers need, built from the config once per sender. */
struct wa_prov {
	char *baileys_url;               /* …/send */
	struct curl_slist *baileys_hdr;
	struct curl_slist *baileys_media_hdr; /* with "Expect:" */
	char *meta_url;                  /* …/{version}/{id}/messages */
	struct curl_slist *meta_hdr;
	const char *meta_missing;        /* NULL, or the setting Meta lacks */
	struct wa_blob *last_blob;       /* the media file read last */
};

int wa_prov_init(struct wa_prov *pv, const struct wa_cfg *cfg, char *err,
    size_t errlen);
void wa_prov_free(struct wa_prov *pv);

/* Build m's request into rq. 0, or -1 with e filled (no HTTP is made). */
int wa_baileys_build(struct wa_prov *pv, const struct wa_msg *m,
    const char *key, struct wa_req *rq, struct wa_error *e);
int wa_meta_build(struct wa_prov *pv, const struct wa_msg *m,
    const char *key, struct wa_req *rq, struct wa_error *e);
void wa_req_free(struct wa_req *rq);
/* Let go of the cached media file (provider_baileys.c). */
void wa_prov_blob_drop(struct wa_prov *pv);

/* Room for a provider's message id and its NUL: the column holds 255. */
#define WA_MSGID_SIZE 256

/* Classify an answer. Returns 1 sent (message id copied into id), or 0
 * with e filled. Transport failures go to wa_transport_error first. */
int wa_baileys_outcome(const struct wa_http_res *res, char *id, size_t idlen,
    struct wa_error *e);
int wa_meta_outcome(const struct wa_http_res *res, char *id, size_t idlen,
    struct wa_error *e);
/* The usual Baileys answer read without a parser: 1 with its messageId
 * copied (cut to idlen), 0 when the general path must decide. */
int wa_baileys_quick_id(const char *body, char *id, size_t idlen);
/* No HTTP answer: connection refused, DNS, timeouts, dropped connections.
 * Retryable unless the whole request had been written (then ambiguous). */
void wa_transport_error(const struct wa_http_res *res, struct wa_error *e);

/* Pre-flight requests (see wa_check_ready). */
int wa_baileys_status_req(const struct wa_cfg *cfg, long long business_id,
    char **url, struct curl_slist **hdr);
int wa_meta_status_req(const struct wa_cfg *cfg, char **url,
    struct curl_slist **hdr);

/* --- helpers shared by the providers (send.c) ------------------------ */
/* A base URL without its trailing slashes, then the rest: malloc'd. */
char *wa_url_join(const char *base, const char *const *parts);
/* Append "Name: <prefix><value>" to a header list (the copy made on the
 * way is wiped: values are secrets). NULL on failure, the list freed. */
struct curl_slist *wa_header_add(struct curl_slist *l, const char *name,
    const char *prefix, const char *value);
/* Render g's output into a malloc'd string. */
char *wa_gen_take(yajl_gen g, size_t *len);
void wa_gen_kv(yajl_gen g, const char *key, const char *val);
/* The JID's kind: 1 a phone JID with digits (into digits), 2 @lid, 0 not
 * a person's address. */
int wa_jid_kind(const char *jid, char *digits, size_t len);
/* Drop a UTF-8 sequence cut off at the end of s (by snprintf). */
void wa_utf8_trim(char *s);
/* Number of UTF-8 code points in s. */
size_t wa_utf8_len(const char *s);

#endif
