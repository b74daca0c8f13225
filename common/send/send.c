/* send.c: the send engine: queue, pacing, parallel sends, one retry policy.
 *
 * A message (a job) is in exactly one place at a time:
 *   immediate  its outcome is known without sending (a bad address, a dry
 *              run): reported by the next step
 *   pending    waiting for a free slot, in submission order
 *   in flight  its HTTP request is running
 *   waiting    in a timer heap until its next attempt is due
 * and leaves through report(), which calls on_result once and frees it.
 *
 * Providers are known only through their tables of operations (see
 * provider/provider.h), indexed by enum wa_provider. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/wa_cli.h"
#include "base/wa_clock.h"
#include "net/wa_http.h"
#include "record/wa_rec.h"
#include "send/provider/provider.h"
#include "send/wa_send.h"

/* A text or template send, when neither WA_TIMEOUT nor the provider
 * says otherwise (Meta). */
#define WA_SEND_TIMEOUT_MS 25000L
/* A readiness request (wa_check_ready): the old client's status requests
 * waited 2-5 s. */
#define WA_READY_TIMEOUT_MS 5000L

/* --- providers --------------------------------------------------------- */

static const struct wa_provider_ops *const providers[] = {
	[WA_PROVIDER_BAILEYS] = &wa_baileys_ops,
	[WA_PROVIDER_META] = &wa_meta_ops,
};
#define NPROVIDERS ((int)(sizeof providers / sizeof providers[0]))

/* p's operations, or NULL when p is no provider. */
static const struct wa_provider_ops *
provider_ops(enum wa_provider p)
{
	return (int)p > 0 && (int)p < NPROVIDERS ? providers[p] : NULL;
}

/* --- names ------------------------------------------------------------- */

const char *
wa_provider_name(enum wa_provider p)
{
	const struct wa_provider_ops *op = provider_ops(p);

	return op ? op->name : "none";
}

int
wa_provider_parse(const char *s, enum wa_provider *p)
{
	int i;

	for (i = 1; s && i < NPROVIDERS; i++)
		if (providers[i] && strcasecmp(s, providers[i]->name) == 0) {
			*p = (enum wa_provider)i;
			return 0;
		}
	return -1;
}

static const char *const ctx_names[WA_NCTX] = { "chat", "lead", "broadcast" };

const char *
wa_context_name(enum wa_context c)
{
	return c < WA_NCTX ? ctx_names[c] : "chat";
}

int
wa_context_parse(const char *s, enum wa_context *c)
{
	int i;

	for (i = 0; s && i < WA_NCTX; i++)
		if (strcmp(s, ctx_names[i]) == 0) {
			*c = (enum wa_context)i;
			return 0;
		}
	return -1;
}

const char *
wa_class_name(enum wa_class c)
{
	static const char *const names[] = { "none", "retryable", "ambiguous",
		"permanent", "fatal" };

	return c <= WA_CLASS_FATAL ? names[c] : "none";
}

void
wa_retry_policy_default(struct wa_retry_policy *p, enum wa_context c)
{
	memset(p, 0, sizeof *p);
	if (c == WA_CTX_BROADCAST) {
		p->max_attempts = 3;
		p->first_delay_s = 1;
		p->factor = 3;
		p->max_delay_s = 30;
		p->max_wait_s = 60;
		p->retry_after_cap_s = 30;
	} else { /* a person is waiting */
		p->max_attempts = 2;
		p->first_delay_s = 0.5;
		p->factor = 2;
		p->max_delay_s = 1.5;
		p->max_wait_s = 2;
		p->retry_after_cap_s = 2;
	}
}

int
wa_error_unreached(const char *code)
{
	return code && (strcmp(code, "connect_failed") == 0 ||
	    strcmp(code, "connect_timeout") == 0 || strcmp(code, "dns_failed") == 0);
}

/* No HTTP answer: connection refused, DNS, timeouts, dropped connections.
 * Retryable unless the whole request had been written (then ambiguous). */
static void
transport_error(const struct wa_http_res *res, struct wa_error *e)
{
	const char *why = res->error ? res->error : "no answer";

	switch (res->code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		wa_error_set(e, "dns_failed", WA_CLASS_RETRYABLE, "%s", why);
		break;
	case CURLE_COULDNT_CONNECT:
		wa_error_set(e, "connect_failed", WA_CLASS_RETRYABLE, "%s", why);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		if (res->body_sent)
			wa_error_set(e, "timeout", WA_CLASS_AMBIGUOUS,
			    "no answer after the request was sent: %s", why);
		else
			wa_error_set(e, res->connected ? "timeout" : "connect_timeout",
			    WA_CLASS_RETRYABLE, "%s", why);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		wa_error_set(e, "tls_error", WA_CLASS_FATAL, "%s", why);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		wa_error_set(e, "tls_error", WA_CLASS_RETRYABLE, "%s", why);
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		wa_error_set(e, "bad_url", WA_CLASS_FATAL, "%s", why);
		break;
	case CURLE_OUT_OF_MEMORY:
		wa_error_set(e, "no_memory", WA_CLASS_FATAL, "%s", why);
		break;
	default:
		if (res->body_sent)
			wa_error_set(e, "connection_lost", WA_CLASS_AMBIGUOUS,
			    "connection lost after the request was sent: %s", why);
		else
			wa_error_set(e, "connection_lost", WA_CLASS_RETRYABLE, "%s", why);
	}
}

/* --- providers' settings ----------------------------------------------- */

/* Every provider's state, from the config once per sender, and once per
 * business's own settings (wa_msg.cfg) the first time one is used. */
struct prov {
	void *state[NPROVIDERS];
};

struct provset {
	const struct wa_cfg *cfg;
	struct prov pv;
	struct provset *next;
};

static void
prov_free(struct prov *pv)
{
	int i;

	for (i = 1; i < NPROVIDERS; i++)
		if (providers[i] && pv->state[i])
			providers[i]->fini(pv->state[i]);
	memset(pv, 0, sizeof *pv);
}

static int
prov_init(struct prov *pv, const struct wa_cfg *cfg, char *err, size_t errlen)
{
	int i;

	memset(pv, 0, sizeof *pv);
	for (i = 1; i < NPROVIDERS; i++) {
		if (!providers[i])
			continue;
		pv->state[i] = providers[i]->init(cfg, err, errlen);
		if (!pv->state[i]) {
			prov_free(pv);
			return -1;
		}
	}
	return 0;
}

/* --- the engine -------------------------------------------------------- */

struct job {
	struct wa_sender *s;
	struct wa_msg *m;
	const struct wa_provider_ops *op; /* m's provider; NULL: none */
	struct job *next;        /* in pending or immediate */
	struct wa_req req;
	struct wa_result res;    /* filled as it goes */
	enum wa_status imm;      /* immediate: how it ends */
	double t_first, waited, due;
	int attempts, handed;
	int maybe;               /* a try may have delivered it */
	int rewait;              /* on_wait said: before_send again */
	int unreached;           /* tries that never reached the provider */
	char key[40];            /* a made idempotency key */
	struct wa_accepted acc;  /* what the provider said when it took it */
};

struct fifo {
	struct job *head, *tail;
	int n;
};

struct wa_sender {
	struct wa_sender_opts o;
	struct wa_http *http;
	struct prov pv;
	struct provset *own;     /* businesses' own settings' states */
	struct fifo pending, immediate;
	struct job **heap;       /* waiting, by due time */
	int nheap, capheap;
	struct job **batch;      /* parallel entries, for starting */
	struct wa_msg **batch_msgs;
	int inflight, stopping;
	long reported;
	uint64_t rng;
	double tat, interval;    /* local pacing: next free slot, spacing */
	double pace_f, pace_t;   /* local pacing: the factor the last
	                            throttle left, and when */
	double pace_until;       /* the pacer said: not before */
};

static uint64_t
rng_next(struct wa_sender *s)
{
	/* xorshift64*: jitter and idempotency keys need spread, not secrecy. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1DULL;
}

static void
make_key(struct wa_sender *s, char *out, size_t len)
{
	uint64_t a = rng_next(s), b = rng_next(s);

	static const char hex[] = "0123456789abcdef";
	char *p = out;
	int i;

	if (len < 37) {
		if (len)
			out[0] = '\0';
		return;
	}
	/* A version 4 UUID, 8-4-4-4-12, written by hand: one per message. */
	a = (a & ~0xF000ULL) | 0x4000ULL;
	b = (b & ~(3ULL << 62)) | (2ULL << 62);
	for (i = 0; i < 32; i++) {
		uint64_t w = i < 16 ? a : b;
		if (i == 8 || i == 12 || i == 16 || i == 20)
			*p++ = '-';
		*p++ = hex[w >> (60 - 4 * (i % 16)) & 0xF];
	}
	*p = '\0';
}

static void
fifo_push(struct fifo *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static void
fifo_push_front(struct fifo *q, struct job *j)
{
	j->next = q->head;
	q->head = j;
	if (!q->tail)
		q->tail = j;
	q->n++;
}

static struct job *
fifo_pop(struct fifo *q)
{
	struct job *j = q->head;

	if (!j)
		return NULL;
	q->head = j->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	j->next = NULL;
	return j;
}

/* The timer heap of waiting jobs, earliest first. */
static int
heap_push(struct wa_sender *s, struct job *j)
{
	struct job **nh, *t;
	int i, p;

	if (s->nheap == s->capheap) {
		int cap = s->capheap ? s->capheap * 2 : 16;

		nh = realloc(s->heap, (size_t)cap * sizeof *nh);
		if (!nh)
			return -1;
		s->heap = nh;
		s->capheap = cap;
	}
	i = s->nheap++;
	s->heap[i] = j;
	for (; i > 0; i = p) {
		p = (i - 1) / 2;
		if (s->heap[p]->due <= s->heap[i]->due)
			break;
		t = s->heap[p];
		s->heap[p] = s->heap[i];
		s->heap[i] = t;
	}
	return 0;
}

static struct job *
heap_pop(struct wa_sender *s)
{
	struct job *top = s->heap[0], *t;
	int i = 0, c;

	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		c = 2 * i + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && s->heap[c + 1]->due < s->heap[c]->due)
			c++;
		if (s->heap[i]->due <= s->heap[c]->due)
			break;
		t = s->heap[c];
		s->heap[c] = s->heap[i];
		s->heap[i] = t;
		i = c;
	}
	return top;
}

static int
heap_due(const struct wa_sender *s, double now, int limit)
{
	int i, n = 0;

	for (i = 0; i < s->nheap && n < limit; i++)
		if (s->heap[i]->due <= now)
			n++;
	return n;
}

/* Local pacing for --rate: one slot every 1/R s. After a late wake-up the
 * schedule catches up (the long-run rate stays R); after idling it does
 * not (no burst). */
static int
local_acquire(void *ctx, int want, double *wait_s)
{
	struct wa_sender *s = ctx;
	double now = wa_clock_s(), gap = s->interval;
	int n = 0;

	if (s->pace_t > 0)
		gap /= wa_pace_factor(s->pace_f, now - s->pace_t);
	while (n < want && now >= s->tat) {
		s->tat = (s->tat < now - gap ? now : s->tat) + gap;
		n++;
	}
	if (n == 0)
		*wait_s = s->tat - now;
	return n;
}

double
wa_pace_factor(double f, double t)
{
	if (t > WA_PACE_QUIET_S)
		f += (t - WA_PACE_QUIET_S) * WA_PACE_CREEP;
	return f > 1 ? 1 : f < WA_PACE_MIN ? WA_PACE_MIN : f;
}

static void
local_throttle(void *ctx)
{
	struct wa_sender *s = ctx;
	double now = wa_clock_s();

	if (s->pace_t > 0 && now - s->pace_t < WA_PACE_HOLD_S)
		return;
	s->pace_f = (s->pace_t > 0 ? wa_pace_factor(s->pace_f, now - s->pace_t) : 1) / 2;
	if (s->pace_f < WA_PACE_MIN)
		s->pace_f = WA_PACE_MIN;
	s->pace_t = now;
	/* the next slot, at the new spacing */
	s->tat = (s->tat > now ? s->tat : now) + s->interval / s->pace_f;
}

void
wa_sender_opts_init(struct wa_sender_opts *o, const struct wa_cfg *cfg)
{
	int c;

	memset(o, 0, sizeof *o);
	o->cfg = cfg;
	o->parallel = 1;
	for (c = 0; c < WA_NCTX; c++)
		wa_retry_policy_default(&o->policy[c], (enum wa_context)c);
}

struct wa_sender *
wa_sender_new(const struct wa_sender_opts *o, char *err, size_t errlen)
{
	struct wa_sender *s = calloc(1, sizeof *s);
	uint64_t seed = 0;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *o;
	if (s->o.parallel < 1)
		s->o.parallel = 1;
	if (prov_init(&s->pv, o->cfg, err, errlen) != 0) {
		free(s);
		return NULL;
	}
	s->http = wa_http_new(s->o.parallel + 4);
	s->batch = calloc((size_t)s->o.parallel, sizeof *s->batch);
	s->batch_msgs = calloc((size_t)s->o.parallel, sizeof *s->batch_msgs);
	if (!s->http || !s->batch || !s->batch_msgs) {
		snprintf(err, errlen, "out of memory");
		wa_sender_free(s);
		return NULL;
	}
	if (!s->o.pacer.acquire && s->o.rate > 0) {
		s->o.pacer.acquire = local_acquire;
		s->o.pacer.throttle = local_throttle;
		s->o.pacer.ctx = s;
		s->interval = 1.0 / s->o.rate;
	}
	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	s->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
	return s;
}

static void
job_free(struct job *j)
{
	free(j->req.head);
	free(j->req.tail);
	if (j->req.hold && j->op->release)
		j->op->release(j->req.hold);
	free(j);
}

void
wa_sender_free(struct wa_sender *s)
{
	struct job *j;

	if (!s)
		return;
	/* Requests still in flight are dropped, and their jobs with them. */
	while ((j = wa_http_drop(s->http)) != NULL)
		job_free(j);
	wa_http_free(s->http);
	while ((j = fifo_pop(&s->pending)) != NULL)
		job_free(j);
	while ((j = fifo_pop(&s->immediate)) != NULL)
		job_free(j);
	while (s->nheap > 0)
		job_free(heap_pop(s));
	free(s->heap);
	free(s->batch);
	free(s->batch_msgs);
	prov_free(&s->pv);
	while (s->own) {
		struct provset *n = s->own->next;

		prov_free(&s->own->pv);
		free(s->own);
		s->own = n;
	}
	free(s);
}

int wa_sender_inflight(const struct wa_sender *s) { return s->inflight; }
int wa_sender_queued(const struct wa_sender *s) { return s->pending.n + s->immediate.n; }
int wa_sender_waiting(const struct wa_sender *s) { return s->nheap; }
int wa_sender_stopped(const struct wa_sender *s) { return s->stopping; }
void wa_sender_stop(struct wa_sender *s) { s->stopping = 1; }
void wa_sender_wakeup(struct wa_sender *s) { wa_http_wakeup(s->http); }

int
wa_sender_pending(const struct wa_sender *s)
{
	return s->pending.n + s->immediate.n + s->nheap + s->inflight;
}

/* The request as it would go out, secrets masked: for --dry-run. */
static yajl_val
dump_request(const struct job *j)
{
	yajl_val o = wa_new_object(), h = wa_new_object(), body;
	const struct curl_slist *l;
	char *text;
	size_t phlen = 0, n;

	if (!o || !h)
		goto fail;
	wa_set_str(o, "method", "POST");
	wa_set_str(o, "url", j->req.url);
	for (l = j->req.headers; l; l = l->next) {
		const char *colon = strchr(l->data, ':');
		char name[64];

		if (!colon || colon[1] == '\0' || (size_t)(colon - l->data) >= sizeof name)
			continue;
		memcpy(name, l->data, (size_t)(colon - l->data));
		name[colon - l->data] = '\0';
		if (strcasecmp(name, "Authorization") == 0)
			wa_set_str(h, name, "Bearer ***");
		else if (strcasecmp(name, "X-Internal-Secret") == 0)
			wa_set_str(h, name, "***");
		else
			wa_set_str(h, name, colon + 2);
	}
	wa_set(o, "headers", h);
	h = NULL;
	if (j->req.shared)
		phlen = strlen(j->req.shared_note);
	n = j->req.head_len + phlen + j->req.tail_len;
	text = malloc(n + 1);
	if (!text)
		goto fail;
	memcpy(text, j->req.head, j->req.head_len);
	memcpy(text + j->req.head_len, j->req.shared_note, phlen);
	if (j->req.tail)
		memcpy(text + j->req.head_len + phlen, j->req.tail, j->req.tail_len);
	text[n] = '\0';
	body = wa_json_parse(text, NULL, 0);
	wa_set(o, "body", body ? body : wa_new_str(text));
	free(text);
	return o;
fail:
	wa_val_free(o);
	wa_val_free(h);
	return NULL;
}

/* The message's final outcome: tell the caller, then forget it. */
static void
report(struct wa_sender *s, struct job *j, enum wa_status st)
{
	struct wa_result *r = &j->res;

	r->status = st;
	r->provider = j->m->provider;
	r->message_id = st == WA_SENT ? j->acc.id : NULL;
	r->message_status = st == WA_SENT && j->acc.status[0] ? j->acc.status : NULL;
	r->attempts = j->attempts;
	r->unreached = j->unreached;
	r->handed = j->handed;
	r->duration_ms = j->attempts ? (long)((wa_clock_s() - j->t_first) * 1000 + 0.5) : 0;
	if (st == WA_SENT)
		memset(&r->error, 0, sizeof r->error);
	if (st == WA_FAILED && r->error.cls == WA_CLASS_FATAL)
		s->stopping = 1;
	/* Nobody waits on a broadcast's message, and its recipients share
	 * the template (and, unless rendered from fields, its parameters):
	 * what is wrong with those is wrong for all of them. */
	if (st == WA_FAILED && j->m->context == WA_CTX_BROADCAST &&
	    (r->error.scope == WA_SCOPE_TEMPLATE ||
	    (r->error.scope == WA_SCOPE_PARAMS && !j->m->tpl.personal))) {
		r->error.halt = 1;
		s->stopping = 1;
	}
	if (st == WA_DRY_RUN)
		r->request = dump_request(j);
	s->reported++;
	s->o.on_result(s->o.ctx, j->m, r);
	wa_val_free(r->request);
	job_free(j);
}

/* The providers' states for settings cfg (NULL: the sender's), made the
 * first time. NULL with e set when cfg's settings are bad (its message
 * fails: another business's sends go on). */
static const struct prov *
prov_of(struct wa_sender *s, const struct wa_cfg *cfg, struct wa_error *e)
{
	struct provset *p, **pp;
	char err[256];

	if (!cfg || cfg == s->o.cfg)
		return &s->pv;
	for (pp = &s->own; (p = *pp) != NULL; pp = &p->next)
		if (p->cfg == cfg) {
			/* To the front: a run sends mostly for a few. */
			*pp = p->next;
			p->next = s->own;
			s->own = p;
			return &p->pv;
		}
	p = calloc(1, sizeof *p);
	if (!p) {
		wa_error_set(e, "no_memory", WA_CLASS_FATAL, "out of memory");
		return NULL;
	}
	if (prov_init(&p->pv, cfg, err, sizeof err) != 0) {
		wa_error_set(e, "not_configured", WA_CLASS_PERMANENT,
		    "this business's own settings: %s", err);
		free(p);
		return NULL;
	}
	p->cfg = cfg;
	p->next = s->own;
	s->own = p;
	return &p->pv;
}

int
wa_sender_submit(struct wa_sender *s, struct wa_msg *m)
{
	const struct prov *pv;
	struct job *j;
	const char *key;
	int rc;

	if (s->stopping)
		return -1;
	j = calloc(1, sizeof *j);
	if (!j)
		return -2;
	j->s = s;
	j->m = m;
	key = m->idempotency_key;
	if (!key || !*key) {
		make_key(s, j->key, sizeof j->key);
		key = j->key;
	}
	j->op = provider_ops(m->provider);
	if (j->op && (pv = prov_of(s, m->cfg, &j->res.error)) != NULL)
		rc = j->op->build(pv->state[m->provider], m, key, &j->req,
		    &j->res.error);
	else if (j->op)
		rc = -1;
	else {
		wa_error_set(&j->res.error, "unknown_provider", WA_CLASS_PERMANENT,
		    "no provider chosen for this message");
		rc = -1;
	}
	j->imm = rc != 0 ? WA_FAILED : WA_DRY_RUN;
	fifo_push(rc != 0 || s->o.dry_run ? &s->immediate : &s->pending, j);
	return 0;
}

/* How long until the next attempt of j, or -1: no further attempt. */
static double
retry_delay(struct wa_sender *s, struct job *j, long retry_after)
{
	const struct wa_retry_policy *p = &s->o.policy[j->m->context < WA_NCTX ? j->m->context : 0];
	struct wa_error *e = &j->res.error;
	double d;

	if (!(e->cls == WA_CLASS_RETRYABLE ||
	    (e->cls == WA_CLASS_AMBIGUOUS && p->retry_ambiguous)))
		return -1;
	if (j->attempts >= p->max_attempts)
		return -1;
	d = p->first_delay_s * pow(p->factor, j->attempts - 1);
	if (d > p->max_delay_s)
		d = p->max_delay_s;
	d *= 0.8 + 0.4 * (double)(rng_next(s) >> 11) / 9007199254740992.0;
	if (e->backoff_s > 0 && d < e->backoff_s * pow(2, j->attempts - 1))
		d = e->backoff_s * pow(2, j->attempts - 1);
	if (retry_after > 0) {
		if (retry_after > p->retry_after_cap_s) {
			size_t n = strlen(e->message);

			snprintf(e->message + n, sizeof e->message - n,
			    " (Retry-After %ld s: longer than this context waits)", retry_after);
			e->defer_s = (double)retry_after;
			return -1;
		}
		if (d < retry_after)
			d = (double)retry_after;
	}
	if (j->waited + d > p->max_wait_s + 1e-9)
		return -1;
	return d;
}

/* WA_TIMEOUT when set, else the provider's own default: it must outlast
 * the provider's timeout to hear its answer. */
static long
send_timeout(const struct wa_cfg *cfg, const struct wa_provider_ops *op, int media)
{
	if (media)
		return cfg->media_timeout_ms;
	if (cfg->timeout_ms > 0)
		return cfg->timeout_ms;
	return op->send_timeout_ms > 0 ? op->send_timeout_ms : WA_SEND_TIMEOUT_MS;
}

static void
log_attempt(const struct job *j, const struct wa_http_res *res)
{
	if (wa_log_level() < WA_LOG_DEBUG)
		return;
	wa_log(WA_LOG_DEBUG, "[WA_SEND] attempt=%d to=%s provider=%s http=%ld outcome=%s code=%s elapsed_ms=%ld timeout_ms=%ld",
	    j->attempts, j->m->jid, wa_provider_name(j->m->provider), res->status,
	    j->res.error.code ? wa_class_name(j->res.error.cls) : "sent",
	    j->res.error.code ? j->res.error.code : "-", res->elapsed_ms,
	    send_timeout(j->s->o.cfg, j->op, j->req.media));
}

/* An attempt is over: sent, retried later, or failed for good. */
static void
on_http(void *ctx, const struct wa_http_res *res)
{
	struct job *j = ctx;
	struct wa_sender *s = j->s;
	int sent = 0;
	double d;

	s->inflight--;
	if (res->body_sent)
		j->handed = 1;
	memset(&j->res.error, 0, sizeof j->res.error);
	if (res->code != CURLE_OK) {
		transport_error(res, &j->res.error);
		j->unreached += wa_error_unreached(j->res.error.code);
	} else {
		memset(&j->acc, 0, sizeof j->acc);
		sent = j->op->answer(res, &j->acc, &j->res.error);
	}
	log_attempt(j, res);
	if (!sent && j->res.error.throttle && s->o.pacer.throttle)
		s->o.pacer.throttle(s->o.pacer.ctx);
	if (sent) {
		report(s, j, WA_SENT);
		return;
	}
	if (j->res.error.cls != WA_CLASS_RETRYABLE)
		j->maybe = 1;
	d = retry_delay(s, j, res->retry_after_s);
	if (d >= 0) {
		j->waited += d;
		j->due = wa_clock_s() + d;
		if (heap_push(s, j) == 0) {
			if (!j->maybe && s->o.on_wait && s->o.before_send) {
				j->rewait = 1;
				s->o.on_wait(s->o.ctx, j->m);
			}
			return;
		}
	}
	/* No try reached the provider: it is down or its address wrong, for
	 * every message alike. */
	if (j->unreached == j->attempts) {
		size_t n = strlen(j->res.error.message);

		j->res.error.cls = WA_CLASS_FATAL;
		snprintf(j->res.error.message + n, sizeof j->res.error.message - n,
		    " (%d %s: the provider cannot be reached)", j->attempts,
		    j->attempts == 1 ? "try" : "tries");
	}
	report(s, j, WA_FAILED);
}

static void
start_job(struct wa_sender *s, struct job *j)
{
	struct wa_http_req rq;

	memset(&rq, 0, sizeof rq);
	rq.post = 1;
	rq.url = j->req.url;
	rq.headers = j->req.headers;
	rq.body[0] = j->req.head;
	rq.body_len[0] = j->req.head_len;
	rq.body[1] = j->req.shared;
	rq.body_len[1] = j->req.shared_len;
	rq.body[2] = j->req.tail;
	rq.body_len[2] = j->req.tail_len;
	rq.connect_timeout_ms = s->o.cfg->connect_timeout_ms;
	rq.timeout_ms = send_timeout(s->o.cfg, j->op, j->req.media);
	if (j->attempts == 0)
		j->t_first = wa_clock_s();
	if (wa_http_start(s->http, &rq, on_http, j) != 0) {
		wa_error_set(&j->res.error, "no_memory", WA_CLASS_FATAL,
		    "cannot start an HTTP request");
		j->imm = WA_FAILED;
		fifo_push(&s->immediate, j);
		return;
	}
	j->attempts++;
	s->inflight++;
}

/* Take up to n startable jobs, retries that are due first; those
 * before_send is to see (first tries, and retries on_wait named) also
 * into batch_msgs, *nmark of them. */
static int
take_batch(struct wa_sender *s, int n, double now, int *nmark)
{
	int k = 0;

	*nmark = 0;
	while (k < n && s->nheap > 0 && s->heap[0]->due <= now) {
		s->batch[k] = heap_pop(s);
		if (s->batch[k]->rewait)
			s->batch_msgs[(*nmark)++] = s->batch[k]->m;
		k++;
	}
	while (k < n && s->pending.n > 0) {
		s->batch[k] = fifo_pop(&s->pending);
		s->batch_msgs[(*nmark)++] = s->batch[k]->m;
		k++;
	}
	return k;
}

/* Start what the slots, the pacer and the before_send hook allow. */
static void
start_ready(struct wa_sender *s)
{
	double now = wa_clock_s(), wait = 0;
	int want, k, i, nmark;

	while (!s->stopping && s->inflight < s->o.parallel) {
		want = s->o.parallel - s->inflight;
		k = heap_due(s, now, want);
		want = k + (s->pending.n < want - k ? s->pending.n : want - k);
		if (want == 0)
			return;
		if (s->o.pacer.acquire) {
			want = s->o.pacer.acquire(s->o.pacer.ctx, want, &wait);
			if (want <= 0) {
				s->pace_until = now + (wait > 0 ? wait : 0.001);
				return;
			}
		}
		k = take_batch(s, want, now, &nmark);
		if (nmark > 0 && s->o.before_send &&
		    s->o.before_send(s->o.ctx, s->batch_msgs, nmark) != 0) {
			/* Refused: nothing of this batch starts; the first sends
			 * go back to the queue's head, in order, the retries to
			 * their wait. */
			for (i = k - 1; i >= 0; i--)
				if (s->batch[i]->attempts == 0)
					fifo_push_front(&s->pending, s->batch[i]);
			for (i = 0; i < k; i++)
				if (s->batch[i]->attempts > 0)
					heap_push(s, s->batch[i]);
			s->stopping = 1;
			return;
		}
		for (i = 0; i < k; i++) {
			s->batch[i]->rewait = 0;
			start_job(s, s->batch[i]);
		}
	}
}

static void
report_immediate(struct wa_sender *s)
{
	struct job *j;

	while ((j = fifo_pop(&s->immediate)) != NULL)
		report(s, j, j->imm);
}

/* Stopped: what has not started will not; say so. */
static void
drain(struct wa_sender *s)
{
	struct job *j;

	report_immediate(s);
	while ((j = fifo_pop(&s->pending)) != NULL)
		report(s, j, WA_NOT_SENT);
	while (s->nheap > 0) {
		j = heap_pop(s);
		report(s, j, j->res.error.cls == WA_CLASS_AMBIGUOUS ? WA_FAILED : WA_NOT_SENT);
	}
}

/* How long the next wait may last, in ms. */
static int
wait_ms(struct wa_sender *s, int timeout_ms)
{
	double now = wa_clock_s(), until = -1;
	long ms;

	if (s->immediate.n > 0 || (s->stopping && (s->pending.n || s->nheap)))
		return 0;
	if (s->inflight < s->o.parallel) {
		if (s->pending.n > 0 || heap_due(s, now, 1) > 0)
			until = s->pace_until > now ? s->pace_until : now;
		else if (s->nheap > 0)
			until = s->heap[0]->due;
	}
	if (until < 0)
		return timeout_ms;
	ms = (long)ceil((until - now) * 1000);
	if (ms < 0)
		ms = 0;
	return ms < timeout_ms ? (int)ms : timeout_ms;
}

int
wa_sender_step(struct wa_sender *s, int timeout_ms)
{
	long before = s->reported;
	int wait;

	report_immediate(s);
	if (s->stopping)
		drain(s);
	else
		start_ready(s);
	report_immediate(s);
	wait = s->reported != before ? 0 : wait_ms(s, timeout_ms < 0 ? 0 : timeout_ms);
	if (wa_http_run(s->http, wait) < 0)
		return -1;
	if (s->stopping)
		drain(s);
	return (int)(s->reported - before);
}

/* --- pre-flight -------------------------------------------------------- */

struct fetch {
	int done;
	CURLcode code;
	long status;
	char *body;
	char error[CURL_ERROR_SIZE];
};

static void
on_fetch(void *ctx, const struct wa_http_res *res)
{
	struct fetch *f = ctx;

	f->done = 1;
	f->code = res->code;
	f->status = res->status;
	f->body = strdup(res->body);
	snprintf(f->error, sizeof f->error, "%s", res->error ? res->error : "");
}

/* One GET, waited for. 0, or -1 when it could not even start. */
static int
fetch(const struct wa_cfg *cfg, const char *url, const struct curl_slist *hdr,
    struct fetch *f)
{
	struct wa_http *h = wa_http_new(1);
	struct wa_http_req rq;

	memset(f, 0, sizeof *f);
	memset(&rq, 0, sizeof rq);
	rq.url = url;
	rq.headers = hdr;
	rq.connect_timeout_ms = cfg->connect_timeout_ms;
	/* A readiness answer is quick or not coming: the send timeout (35 s
	 * for Baileys) would hold a pre-flight far too long. */
	rq.timeout_ms = cfg->timeout_ms > 0 && cfg->timeout_ms < WA_READY_TIMEOUT_MS ?
	    cfg->timeout_ms : WA_READY_TIMEOUT_MS;
	if (!h || wa_http_start(h, &rq, on_fetch, f) != 0) {
		wa_http_free(h);
		return -1;
	}
	while (!f->done)
		if (wa_http_run(h, 1000) < 0)
			break;
	wa_http_free(h);
	return f->done ? 0 : -1;
}

int
wa_check_ready(const struct wa_cfg *cfg, enum wa_provider p, long long business_id,
    struct wa_ready *out)
{
	const struct wa_provider_ops *op = provider_ops(p);
	struct curl_slist *hdr = NULL;
	struct fetch f;
	char *url = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	if (!op) {
		snprintf(out->reason, sizeof out->reason, "no provider chosen");
		return WA_EXIT_CONFIG;
	}
	rc = op->ready_req(cfg, business_id, &url, &hdr, out->reason, sizeof out->reason);
	if (rc == WA_EXIT_CONFIG)
		return rc;
	if (rc != WA_EXIT_OK || fetch(cfg, url, hdr, &f) != 0) {
		free(url);
		curl_slist_free_all(hdr);
		snprintf(out->reason, sizeof out->reason, "out of memory");
		return WA_EXIT_SOFTWARE;
	}
	free(url);
	curl_slist_free_all(hdr);
	if (f.code != CURLE_OK) {
		snprintf(out->reason, sizeof out->reason, "%s unreachable: %.200s",
		    op->title, f.error);
		rc = WA_EXIT_UNAVAIL;
	} else {
		out->info = wa_json_parse(f.body ? f.body : "", NULL, 0);
		rc = op->ready_answer(f.status, out->info, out);
	}
	free(f.body);
	return rc;
}
