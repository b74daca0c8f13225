/* provider.h: what a provider is to the send engine: one table of
 * operations (struct wa_provider_ops), one per provider file, indexed by
 * enum wa_provider in send.c. A provider owns its settings, builds its
 * requests, reads its answers and asks whether it is ready; the engine
 * queues, sends, retries and reports, and knows no provider by name.
 *
 * Private to send/ and send/provider/: the engine includes it for the
 * table, the providers for the types they share. */
#ifndef WA_PROVIDER_H
#define WA_PROVIDER_H

#include <stddef.h>
#include <curl/curl.h>
#include <yajl/yajl_tree.h>

#include "cfg/wa_cfg.h"
#include "net/wa_http.h"
#include "send/wa_send.h"

/* Room for a provider's message id and its NUL: the column holds 255. */
#define WA_MSGID_SIZE 256

/* What a provider said of a message it took. */
struct wa_accepted {
	char id[WA_MSGID_SIZE];  /* its message id */
	char status[40];         /* its word on the message, when it gives one
	                            (Meta's message_status: accepted,
	                            held_for_quality_assessment); "" none */
};

/* One message's request, built once and sent as it is by every attempt:
 * the body is head, then shared (if any), then tail. */
struct wa_req {
	const char *url;                  /* the provider's, shared */
	const struct curl_slist *headers; /* the provider's, shared */
	char *head, *tail;                /* malloc'd: the engine frees them */
	size_t head_len, tail_len;
	/* A large piece several requests share (a media file's base64),
	 * kept alive by hold, which the provider's release lets go of. */
	const char *shared;
	size_t shared_len;
	char shared_note[48];             /* shown for shared in a dry run */
	void *hold;
	int media;                        /* picks the media timeout */
};

struct wa_provider_ops {
	const char *name;   /* "baileys": wa_provider_name, wa_provider_parse */
	const char *title;  /* "Baileys": in messages */
	/* Its send timeout when WA_TIMEOUT (--timeout) is unset; 0: the
	 * engine's default (25 s). Media sends use WA_MEDIA_TIMEOUT. */
	long send_timeout_ms;

	/* Its settings from cfg (URL, headers), once per sender: a state,
	 * or NULL with a reason in err. A setting it needs but lacks is not
	 * an error here: each message it would build then fails, saying so. */
	void *(*init)(const struct wa_cfg *cfg, char *err, size_t errlen);
	void (*fini)(void *state);

	/* m's request into rq (zeroed first), with key as its idempotency
	 * key: 0, or -1 with e filled and nothing held in rq. */
	int (*build)(void *state, const struct wa_msg *m, const char *key,
	    struct wa_req *rq, struct wa_error *e);
	/* Let go of rq->hold (NULL: requests never hold anything). */
	void (*release)(void *hold);

	/* An HTTP answer (res->code is CURLE_OK: transport failures are the
	 * engine's): 1 sent, with acc (zeroed first) filled, or 0 with e
	 * filled. */
	int (*answer)(const struct wa_http_res *res, struct wa_accepted *acc,
	    struct wa_error *e);

	/* The readiness request for business_id: WA_EXIT_OK with *url and
	 * *hdr malloc'd, WA_EXIT_CONFIG with reason filled (a setting is
	 * missing), or WA_EXIT_SOFTWARE (out of memory). */
	int (*ready_req)(const struct wa_cfg *cfg, long long business_id,
	    char **url, struct curl_slist **hdr, char *reason, size_t len);
	/* Its answer, status and info (parsed, maybe NULL) into out->ready and
	 * out->reason: WA_EXIT_OK when ready, WA_EXIT_UNAVAIL when not. */
	int (*ready_answer)(long status, yajl_val info, struct wa_ready *out);
};

extern const struct wa_provider_ops wa_baileys_ops;
extern const struct wa_provider_ops wa_meta_ops;

/* --- shared by the providers ------------------------------------------ */

/* The JID's kind: 1 a phone JID with digits (into digits), 2 @lid, 0 not
 * a person's address (jid.c). */
int wa_jid_kind(const char *jid, char *digits, size_t len);


#endif
