/* wa_send.h: the one send path for every WhatsApp message.
 *
 * A chat reply, a lead-page message and each recipient of a broadcast all go
 * through a wa_sender: the caller hands it messages (wa_sender_submit, which
 * never blocks) and drives it (wa_sender_step); it builds each provider's
 * request, sends up to `parallel` at once over one libcurl multi handle,
 * classifies every answer, retries under one policy, and reports each
 * message's final outcome once, through the on_result callback.
 *
 * One retry layer: the number of HTTP sends for a message never exceeds its
 * result's `attempts`, nothing is sent before or around it (no status
 * request), and a message waiting to be retried does not hold up others.
 * A fatal outcome stops the sender: in-flight sends finish and are
 * reported; messages not started come back as WA_NOT_SENT.
 *
 * Single-threaded: call everything from one thread, except
 * wa_sender_wakeup(). Callbacks run inside wa_sender_step() only. */
#ifndef WA_SEND_H
#define WA_SEND_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "cfg/wa_cfg.h"

enum wa_provider { WA_PROVIDER_BAILEYS = 1, WA_PROVIDER_META = 2 };
/* "baileys", "meta"; parse: 0, or -1 for anything else. */
const char *wa_provider_name(enum wa_provider p);
int wa_provider_parse(const char *s, enum wa_provider *p);

/* Who is waiting: a person (chat, lead) or nobody (broadcast). It picks
 * the retry policy. */
enum wa_context { WA_CTX_CHAT, WA_CTX_LEAD, WA_CTX_BROADCAST, WA_NCTX };
const char *wa_context_name(enum wa_context c);
int wa_context_parse(const char *s, enum wa_context *c);

enum wa_kind { WA_MSG_TEXT, WA_MSG_TEMPLATE, WA_MSG_MEDIA };

/* One message. Every pointer is borrowed: it must stay valid until the
 * message's result has been reported. */
struct wa_msg {
	enum wa_provider provider; /* chosen by the caller (wa_route) */
	long long business_id;     /* < 0: none; Baileys needs one (tenant) */
	const char *jid;           /* "972501234567@s.whatsapp.net" or "…@lid";
	                              Meta gets the digits, never the JID */
	enum wa_kind kind;
	const char *text;          /* WA_MSG_TEXT */
	int preview_url;           /* WA_MSG_TEXT: ask Meta for a preview of
	                              its first link (Baileys has no such
	                              option: it ignores this) */
	struct {
		const char *name, *language;
		yajl_val components; /* a JSON array, or NULL */
		int personal;        /* its parameters came from the recipient's
		                        fields ({{field}}): a parameter error is
		                        this recipient's, not the broadcast's */
	} tpl;                     /* WA_MSG_TEMPLATE (Meta only) */
	struct {
		const char *type;    /* image, video, audio, document */
		const char *url;     /* Meta: sent by link */
		const char *path;    /* Baileys: read and sent as base64 */
		const char *caption, *filename, *mimetype; /* optional */
	} media;                   /* WA_MSG_MEDIA */
	enum wa_context context;
	/* Its business's provider settings (wa_route_cfg), alive until the
	 * sender is freed; NULL: the sender's own (opts.cfg). */
	const struct wa_cfg *cfg;
	/* The same for every retry of this message (Baileys idempotencyKey);
	 * NULL: the sender makes one (a random UUID). */
	const char *idempotency_key;
	void *udata;               /* the caller's */
};

enum wa_status {
	WA_SENT,     /* the provider accepted it */
	WA_FAILED,   /* final failure: see error */
	WA_NOT_SENT, /* the sender stopped before sending it (again): it
	                certainly did not go out; offer it again later */
	WA_DRY_RUN   /* dry run: request holds what would have been sent */
};

enum wa_class {
	WA_CLASS_NONE,
	WA_CLASS_RETRYABLE, /* certainly not sent */
	WA_CLASS_AMBIGUOUS, /* may have gone out */
	WA_CLASS_PERMANENT, /* never for this recipient */
	WA_CLASS_FATAL      /* no send can succeed now: the sender stops */
};
const char *wa_class_name(enum wa_class c);

/* The error code of a try that never reached the provider (no connection:
 * dns_failed, connect_failed, connect_timeout): nothing of it went out.
 * Such tries are retried; a message none of whose tries reached the
 * provider ends fatal with that code, as the provider is down or its
 * address wrong for every message alike. */
int wa_error_unreached(const char *code);

/* What an error says is wrong beyond this one message: a template no one
 * can be sent (WA_SCOPE_TEMPLATE), or parameters that are wrong for
 * everyone who gets the same ones (WA_SCOPE_PARAMS). In a broadcast such
 * an error fails its recipient and stops the run (halt, below): every
 * other recipient would fail the same way. */
enum wa_scope { WA_SCOPE_RECIPIENT, WA_SCOPE_TEMPLATE, WA_SCOPE_PARAMS };

struct wa_error {
	const char *code;        /* "undeliverable", "timeout", … (static) */
	enum wa_class cls;
	enum wa_scope scope;
	int throttle;            /* the sender is over its throughput: the
	                            pace drops (wa_pacer.throttle) */
	double backoff_s;        /* the provider's least wait before this
	                            recipient may be tried again, doubled per
	                            try made (Meta's 131056) */
	double defer_s;          /* a retryable failure that could go again
	                            after this long, later than its context
	                            waits (a long Retry-After): a broadcast
	                            requeues it for then */
	int halt;                /* broadcast: this failure stopped the run
	                            (scope), the rest would fail alike */
	char message[256];       /* one line, no secrets */
	long http_status;        /* 0: no HTTP answer */
	char provider_code[64];  /* Meta's code ("131026"), Baileys' error
	                            ("send_failed"); "" when none */
	int provider_code_num;   /* provider_code is a number */
};

/* Fill e: code (static), class, and a one-line message. */
void wa_error_set(struct wa_error *e, const char *code, enum wa_class cls,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

struct wa_result {
	enum wa_status status;
	enum wa_provider provider;
	const char *message_id;  /* WA_SENT: Baileys messageId, Meta wamid… */
	const char *message_status; /* WA_SENT: the provider's word on it when
	                            it gives one (Meta: accepted,
	                            held_for_quality_assessment); else NULL */
	int attempts;            /* HTTP sends made for this message */
	int unreached;           /* of them, tries that never reached the
	                            provider (wa_error_unreached) */
	int handed;              /* some request reached the provider whole */
	long duration_ms;        /* first send to final outcome */
	struct wa_error error;   /* WA_FAILED; WA_NOT_SENT: the last try's */
	yajl_val request;        /* WA_DRY_RUN: {"method","url","headers",
	                            "body"}, secrets masked */
};
/* Everything in a result lives until the callback returns. */

/* The retry policy, one per context. Only retryable outcomes are retried
 * (ambiguous ones too with retry_ambiguous). The n-th wait is
 * first_delay_s * factor^(n-1), at most max_delay_s, +-20% jitter, and at
 * least the provider's Retry-After; no retry when Retry-After exceeds
 * retry_after_cap_s or the waits would pass max_wait_s in all. */
struct wa_retry_policy {
	int max_attempts;
	double first_delay_s, factor, max_delay_s, max_wait_s, retry_after_cap_s;
	int retry_ambiguous;
};
/* Chat and lead: 2 attempts, ~0.5 s apart, <= 2 s of waiting in all.
 * Broadcast: 3 attempts, ~1 s then ~3 s, Retry-After honoured to 30 s. */
void wa_retry_policy_default(struct wa_retry_policy *p, enum wa_context c);

/* Pacing: how many of `want` sends may start now (0..want); when 0,
 * *wait_s says when to ask again. Every HTTP send, retries included, takes
 * one. wa-broadcast keeps this in PostgreSQL to share a rate across hosts. */
struct wa_pacer {
	int (*acquire)(void *ctx, int want, double *wait_s);
	/* An answer said the sender is over its throughput: slow down
	 * (optional). */
	void (*throttle)(void *ctx);
	void *ctx;
};

/* The adaptive pace, the same for the sender's own --rate and the one a
 * broadcast keeps in PostgreSQL: a throttle halves the rate (not below
 * 1/8 of it, and once per WA_PACE_HOLD_S however many answers say so);
 * after WA_PACE_QUIET_S without one it creeps back by WA_PACE_CREEP of
 * the rate per second. */
#define WA_PACE_HOLD_S 1.0
#define WA_PACE_QUIET_S 5.0
#define WA_PACE_CREEP 0.1
#define WA_PACE_MIN 0.125
/* The factor (0..1] on the rate, t seconds after the last throttle left it
 * at f. */
double wa_pace_factor(double f, double t);

struct wa_sender;

/* The final outcome of m. The caller may submit or stop from here. */
typedef void wa_result_fn(void *ctx, struct wa_msg *m, const struct wa_result *r);
/* Called before the first send of a batch of messages, e.g. to record in
 * a database that they are being sent; with on_wait set, also before the
 * next try of those it named. 0 lets them go; anything else stops the
 * sender and they come back WA_NOT_SENT. */
typedef int wa_before_send_fn(void *ctx, struct wa_msg *const *msgs, int n);
/* m's tries so far certainly did not deliver it (a 429, a refusal) and it
 * waits for its next: between tries it is not on the wire. */
typedef void wa_wait_fn(void *ctx, struct wa_msg *m);

struct wa_sender_opts {
	const struct wa_cfg *cfg;      /* providers' settings and timeouts */
	int parallel;                  /* sends in flight, at least 1 */
	double rate;                   /* sends per second; 0: no limit; not
	                                  used when pacer.acquire is set */
	struct wa_pacer pacer;         /* optional */
	struct wa_retry_policy policy[WA_NCTX];
	int dry_run;                   /* build and report, send nothing */
	wa_result_fn *on_result;       /* required */
	wa_before_send_fn *before_send; /* optional */
	wa_wait_fn *on_wait;           /* optional */
	void *ctx;                     /* for the callbacks */
};

/* Defaults: parallel 1, no rate limit, the default policies. */
void wa_sender_opts_init(struct wa_sender_opts *o, const struct wa_cfg *cfg);

/* NULL with a reason in err (out of memory, a bad base URL). */
struct wa_sender *wa_sender_new(const struct wa_sender_opts *o, char *err,
    size_t errlen);

/* Queue m; it is checked and its request built now, sent by a later step.
 * 0; -1 when the sender has stopped (m is not taken); -2 out of memory. */
int wa_sender_submit(struct wa_sender *s, struct wa_msg *m);

/* Start what may start, wait up to timeout_ms for something to happen
 * (less when a retry or a pacing slot falls due, none when there is work
 * to do), and report what finished. Returns the number of results
 * reported, or -1 on an internal error. */
int wa_sender_step(struct wa_sender *s, int timeout_ms);

/* Start nothing new: in-flight sends finish; queued and waiting messages
 * are reported WA_NOT_SENT by the next step (a waiting message whose last
 * try was ambiguous is reported WA_FAILED with that outcome). */
void wa_sender_stop(struct wa_sender *s);
/* 1 once stopped, by wa_sender_stop() or a fatal outcome. */
int wa_sender_stopped(const struct wa_sender *s);

int wa_sender_inflight(const struct wa_sender *s); /* HTTP sends running */
int wa_sender_queued(const struct wa_sender *s);   /* not yet started */
int wa_sender_waiting(const struct wa_sender *s);  /* waiting to retry */
int wa_sender_pending(const struct wa_sender *s);  /* all not yet reported */

/* Make a step that waits return now. The only call safe from another
 * thread (e.g. one reading input). */
void wa_sender_wakeup(struct wa_sender *s);

/* Free s. Messages not yet reported are dropped without a callback. */
void wa_sender_free(struct wa_sender *s);

/* --- pre-flight ----------------------------------------------------- */

struct wa_ready {
	int ready;
	char reason[256];  /* why not, or "connected" / the number's name */
	yajl_val info;     /* the provider's answer (owned: wa_val_free) */
};

/* Ask provider p whether it can send for business_id now: Baileys
 * GET /whatsapp/business_<id>/status (ready when connected, authPaired and
 * canSend), Meta GET /{version}/{phone-number-id}. Returns WA_EXIT_OK when
 * ready, WA_EXIT_UNAVAIL when not (or unreachable, or credentials
 * rejected), WA_EXIT_CONFIG when not configured; out->reason says why. */
int wa_check_ready(const struct wa_cfg *cfg, enum wa_provider p,
    long long business_id, struct wa_ready *out);

#endif
