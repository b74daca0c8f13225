/* batch.c: records through the senders, in lanes (see wa_batch.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/wa_cli.h"
#include "batch/wa_batch.h"
#include "cfg/wa_cfg.h"
#include "phone/wa_norm.h"
#include "record/wa_feed.h"
#include "record/wa_rec.h"
#include "route/wa_route.h"
#include "send/wa_message.h"
#include "send/wa_result.h"
#include "send/wa_send.h"

struct wa_batch {
	const struct wa_batch_opts *o;
	volatile sig_atomic_t *stop; /* o->stop, or nostop */
	volatile sig_atomic_t nostop;
	struct wa_cfg cfg;
	struct lane *lanes;
	int nlanes;
	struct wa_feed *feed;
	/* The lanes share what follows, under mu. */
	pthread_mutex_t mu;
	struct wa_norm_opts norm;
	struct wa_router *router;
	struct wa_writer *wr;
	int status;       /* the exit status so far */
	int fatal_code;   /* exit code for fatal */
	int dirty;        /* output written since the last flush */
	atomic_int fatal; /* a fatal outcome, or output lost: no new records */
};

/* A sending thread: its own sender, `parallel` sends in flight at most. */
struct lane {
	struct wa_batch *a;
	struct wa_sender *snd;
	int parallel;
	pthread_t th;
	int started, rc;
};

/* One record on its way through the sender. */
struct item {
	struct wa_rec rec;
	struct wa_msg msg;
	struct wa_msg_own own;    /* the rendered parts of msg */
	char jid[128];
	char biz[WA_LL_SIZE];     /* for the log: "1" or "-" */
};

static void
item_free(struct item *it)
{
	wa_rec_free(&it->rec);
	wa_msg_own_free(&it->own);
	free(it);
}

/* The feed's wake-up, from the reading thread. */
static void
wake_lanes(void *arg)
{
	struct wa_batch *a = arg;
	int i;

	for (i = 0; i < a->nlanes; i++)
		if (a->lanes[i].snd)
			wa_sender_wakeup(a->lanes[i].snd);
}

/* Stop every lane: a fatal outcome, or nobody hears the results. Called
 * with mu held. */
static void
halt(struct wa_batch *a, int code)
{
	if (!a->fatal) {
		a->fatal_code = code;
		a->fatal = 1;
		wake_lanes(a);
	}
}

/* Write one record whole, with n fields in place of its own or after
 * them. -1 when output is lost (the run then stops; reported at exit).
 * Called with mu held. */
static int
put_fields_locked(struct wa_batch *a, yajl_val obj, const struct wa_field *f, int n)
{
	if (a->fatal_code == WA_EXIT_IO)
		return -1;
	if (wa_writer_put_fields(a->wr, obj, f, n) != 0) {
		halt(a, WA_EXIT_IO);
		a->fatal_code = WA_EXIT_IO;
		return -1;
	}
	a->dirty = 1;
	return 0;
}

static int
put_locked(struct wa_batch *a, yajl_val obj)
{
	return put_fields_locked(a, obj, NULL, 0);
}

static int
put(struct wa_batch *a, yajl_val obj)
{
	int rc;

	pthread_mutex_lock(&a->mu);
	rc = put_locked(a, obj);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* A record that did not go out: exit 1 at least. Called with mu held. */
static void
some_failed(struct wa_batch *a)
{
	if (a->status == WA_EXIT_OK)
		a->status = WA_EXIT_FAILED;
}

/* Write a record with its result; -1 as put_locked. */
static int
put_result_locked(struct wa_batch *a, yajl_val obj, struct wa_result_rec *r)
{
	int rc = put_fields_locked(a, obj, r->f, WA_RESULT_NFIELDS);

	wa_result_rec_free(r);
	return rc;
}

static void
record_error(const struct wa_rec *rec, const char *to, const struct wa_error *e)
{
	wa_err("%s:%lu: %s%s%s (%s): %s", rec->file, rec->line, to ? to : "",
	    to ? ": " : "", e->code, wa_class_name(e->cls), e->message);
}

/* A record that failed before any send: written at once. */
static void
fail_early(struct wa_batch *a, struct wa_rec *rec, const char *provider,
    const struct wa_error *e)
{
	struct wa_result_rec r;

	wa_result_fields(&r, 0, provider, NULL, 0, 0, e);
	record_error(rec, NULL, e);
	pthread_mutex_lock(&a->mu);
	some_failed(a);
	put_result_locked(a, rec->obj, &r);
	pthread_mutex_unlock(&a->mu);
}

static void
copy_jid(struct item *it, const char *jid)
{
	size_t n = strnlen(jid, sizeof it->jid - 1);

	memcpy(it->jid, jid, n);
	it->jid[n] = '\0';
}

/* The record's address: its jid as given, else normalized like
 * wa-normalize. 0, or -1 when the record was marked failed. */
static int
msg_address(struct wa_batch *a, struct item *it, const char **to, const char **source)
{
	yajl_val obj = it->rec.obj;
	const char *jid = wa_get_str(obj, "jid");
	struct wa_addr addr;
	int rc;

	if (jid && *jid) {
		copy_jid(it, jid);
		*to = wa_get_str(obj, "phone") ? wa_get_str(obj, "phone") :
		    wa_get_str(obj, "to") ? wa_get_str(obj, "to") : jid;
		*source = wa_get_str(obj, "source") ? wa_get_str(obj, "source") : "jid";
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	rc = wa_norm_rec(&a->norm, &it->rec, &addr);
	pthread_mutex_unlock(&a->mu);
	if (rc != 0)
		return -1;
	copy_jid(it, addr.jid);
	*to = wa_get_str(obj, "to") ? wa_get_str(obj, "to") : addr.phone;
	*source = addr.source ? addr.source : "to";
	return 0;
}

static int
msg_business(const struct wa_batch_opts *o, struct item *it, struct wa_error *e)
{
	yajl_val v = wa_get(it->rec.obj, "business_id");
	long long id = o->business;

	if (v && !YAJL_IS_NULL(v) && (wa_get_int(it->rec.obj, "business_id", &id) != 0 || id < 0)) {
		wa_error_set(e, "bad_business", WA_CLASS_PERMANENT, "business_id is not a number");
		return -1;
	}
	it->msg.business_id = id;
	if (id >= 0)
		wa_fmt_ll(it->biz, id);
	else
		snprintf(it->biz, sizeof it->biz, "-");
	return 0;
}

/* The business's opt-outs, right before the send: the number is the
 * JID's ("+" and its digits), so a record that came with a jid (export's)
 * is checked as one normalized here. An @lid has no number: not checked.
 * Under a->mu (the router's connection is shared). wa_route_optout's
 * 0, -1 or -2. */
static int
check_optout(struct wa_batch *a, const struct item *it, struct wa_error *e)
{
	char phone[40];
	size_t n;

	if (it->msg.business_id < 0 || !strstr(it->jid, "@s.whatsapp.net"))
		return 0;
	phone[0] = '+';
	n = wa_jid_user(it->jid, phone + 1, sizeof phone - 1);
	if (n == 0 || n >= sizeof phone - 1)
		return 0;
	return wa_route_optout(a->router, it->msg.business_id, phone, e);
}

/* A normalization failure, as a send failure: with class and counters. */
static void
fail_norm(struct wa_batch *a, struct wa_rec *rec)
{
	yajl_val err = wa_get(rec->obj, "error");
	struct wa_error e;
	char code[48];

	/* Copied: the record's error object is replaced below. */
	memset(&e, 0, sizeof e);
	snprintf(code, sizeof code, "%s", wa_get_str(err, "code") ?
	    wa_get_str(err, "code") : "invalid_phone");
	e.code = code;
	e.cls = WA_CLASS_PERMANENT;
	snprintf(e.message, sizeof e.message, "%s",
	    wa_get_str(err, "message") ? wa_get_str(err, "message") : "bad address");
	fail_early(a, rec, NULL, &e);
}

/* A record read: pass it on, fail it, or hand it to the sender. */
static void
take_record(struct lane *l, struct wa_rec *rec)
{
	struct wa_batch *a = l->a;
	const struct wa_batch_opts *o = a->o;
	struct item *it;
	struct wa_error e;
	const char *to = NULL, *source = NULL;
	int rc;

	if (rec->kind == WA_REC_BAD) {
		wa_set_failed(rec->obj, rec->errcode, rec->errmsg);
		fail_norm(a, rec);
		wa_rec_free(rec);
		return;
	}
	if (wa_is_failed(rec->obj)) {
		/* Failed upstream: passes untouched, is not sent. */
		pthread_mutex_lock(&a->mu);
		some_failed(a);
		put_locked(a, rec->obj);
		pthread_mutex_unlock(&a->mu);
		wa_rec_free(rec);
		return;
	}
	it = calloc(1, sizeof *it);
	if (!it) {
		wa_err("out of memory");
		wa_rec_free(rec);
		pthread_mutex_lock(&a->mu);
		a->status = WA_EXIT_SOFTWARE;
		pthread_mutex_unlock(&a->mu);
		return;
	}
	it->rec = *rec;
	it->msg.udata = it;
	it->msg.context = o->context;
	it->msg.idempotency_key = wa_get_str(it->rec.obj, "idempotency_key");
	if (msg_address(a, it, &to, &source) != 0) {
		fail_norm(a, &it->rec);
		item_free(it);
		return;
	}
	it->msg.jid = it->jid;
	rc = msg_business(o, it, &e);
	if (rc == 0) {
		pthread_mutex_lock(&a->mu);
		rc = wa_route(a->router, it->msg.business_id, &it->msg.provider, &e);
		if (rc == 0)
			rc = wa_route_cfg(a->router, it->msg.business_id, &it->msg.cfg, &e);
		if (rc == -3)
			rc = -2;
		if (rc == 0 && !o->ignore_optout)
			rc = check_optout(a, it, &e);
		if (rc == -2) {
			/* The database went away: nothing more can be routed. */
			struct wa_result_rec res;

			wa_result_fields(&res, 0, NULL, NULL, 0, 0, &e);
			record_error(&it->rec, NULL, &e);
			put_result_locked(a, it->rec.obj, &res);
			halt(a, WA_EXIT_UNAVAIL);
			pthread_mutex_unlock(&a->mu);
			wa_sender_stop(l->snd);
			item_free(it);
			return;
		}
		pthread_mutex_unlock(&a->mu);
	}
	if (rc == 0)
		rc = wa_msg_content(&it->msg, &it->own, it->rec.obj, &o->src, &e);
	if (rc != 0) {
		fail_early(a, &it->rec, it->msg.provider ?
		    wa_provider_name(it->msg.provider) : NULL, &e);
		item_free(it);
		return;
	}
	wa_log(WA_LOG_VERBOSE, "[WA-SEND-SERVICE] business_id=%s to=%s \u2192 jid=%s source=%s context=%s",
	    it->biz, to, it->jid, source, wa_context_name(o->context));
	if (wa_sender_submit(l->snd, &it->msg) != 0)
		item_free(it); /* stopped meanwhile: not reached, not written */
}

/* The sender's verdict on one message. */
static void
on_result(void *ctx, struct wa_msg *m, const struct wa_result *r)
{
	struct lane *l = ctx;
	struct wa_batch *a = l->a;
	struct item *it = m->udata;
	struct wa_result_rec res;
	char digits[64];
	int lost;

	wa_jid_user(it->jid, digits, sizeof digits);
	if (r->status == WA_NOT_SENT) {
		item_free(it); /* never reached: not written */
		return;
	}
	if (r->status == WA_DRY_RUN) {
		wa_set_str(it->rec.obj, "provider", wa_provider_name(r->provider));
		wa_set(it->rec.obj, "request", wa_val_copy(r->request));
		if (put(a, it->rec.obj) != 0)
			wa_sender_stop(l->snd);
		item_free(it);
		return;
	}
	wa_result_fields(&res, r->status == WA_SENT, wa_provider_name(r->provider),
	    r->message_id, r->attempts, r->duration_ms, &r->error);
	wa_result_message_status(&res, r->message_status);
	if (r->status == WA_SENT)
		wa_log(WA_LOG_VERBOSE, "[WA_SEND] to=%s status=sent message_id=%s attempts=%d",
		    digits, r->message_id, r->attempts);
	else {
		wa_log(WA_LOG_VERBOSE, "[WA_SEND] to=%s status=failed error=%s class=%s attempts=%d",
		    digits, r->error.code, wa_class_name(r->error.cls), r->attempts);
		record_error(&it->rec, digits, &r->error);
	}
	pthread_mutex_lock(&a->mu);
	if (r->status != WA_SENT)
		some_failed(a);
	if (r->status == WA_FAILED && (r->error.cls == WA_CLASS_FATAL ||
	    r->error.halt) && !a->fatal) {
		halt(a, strcmp(r->error.code, "not_configured") == 0 ?
		    WA_EXIT_CONFIG : WA_EXIT_UNAVAIL);
		wa_err("stopping: %s: nothing more will be sent%s", r->error.code,
		    r->error.halt ? " (every other message of the broadcast "
		    "would fail alike)" : "");
	}
	lost = put_result_locked(a, it->rec.obj, &res) != 0;
	pthread_mutex_unlock(&a->mu);
	if (lost)
		wa_sender_stop(l->snd);
	item_free(it);
}

/* May one more record be taken now? Memory stays at about 2 * parallel
 * records; with parallel 1 one at a time, so output keeps input order. */
static int
room(const struct lane *l)
{
	int p = l->parallel;

	if (l->a->fatal || *l->a->stop)
		return 0;
	if (l->a->o->parallel == 1)
		return wa_sender_pending(l->snd) == 0;
	return wa_sender_queued(l->snd) + wa_sender_inflight(l->snd) < p &&
	    wa_sender_pending(l->snd) < 2 * p;
}

static void
flush_out(struct wa_batch *a)
{
	pthread_mutex_lock(&a->mu);
	if (a->dirty) {
		fflush(a->o->out);
		a->dirty = 0;
	}
	pthread_mutex_unlock(&a->mu);
}

/* Feed records to the lane's sender and drive it until all is said. */
static int
run_loop(struct lane *l)
{
	struct wa_batch *a = l->a;
	struct wa_feed *f = a->feed;
	struct wa_feed_item s;
	int more = f != NULL, st;

	for (;;) {
		while (more && room(l)) {
			st = wa_feed_take(f, &s);
			if (st <= 0) {
				more = st == 0;
				break;
			}
			if (s.st < 0) {
				wa_err("%s", s.err ? s.err : "read error");
				free(s.err);
				pthread_mutex_lock(&a->mu);
				if (a->status != WA_EXIT_SOFTWARE && a->status != WA_EXIT_IO)
					a->status = s.st == -2 ? WA_EXIT_DATA : WA_EXIT_IO;
				pthread_mutex_unlock(&a->mu);
				continue;
			}
			take_record(l, &s.rec);
		}
		/* Another lane's fatal outcome stops this one too. */
		if ((*a->stop || a->fatal) && !wa_sender_stopped(l->snd))
			wa_sender_stop(l->snd);
		if ((!more || a->fatal || *a->stop) && wa_sender_pending(l->snd) == 0)
			break;
		/* Step without waiting; only when that brings nothing is the
		 * output flushed (a reader downstream sees every result
		 * before this waits) and the wait taken. */
		st = wa_sender_step(l->snd, 0);
		if (st == 0) {
			flush_out(a);
			st = wa_sender_step(l->snd, 1000);
		}
		if (st < 0) {
			wa_err("internal error in the HTTP engine");
			return WA_EXIT_SOFTWARE;
		}
	}
	flush_out(a);
	return 0;
}

static void *
lane_main(void *arg)
{
	struct lane *l = arg;

	l->rc = run_loop(l);
	return NULL;
}

/* How many lanes: one per CPU (at most 4) for 8 or more sends in flight,
 * each with 4 at least; one when sends are paced (rate keeps its own
 * schedule per sender) or only shown (dry run). */
static int
lane_count(const struct wa_batch_opts *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int n = o->parallel / 4;

	if (o->parallel < 8 || o->rate > 0 || o->dry_run || o->to)
		return 1;
	if (cpus < 1)
		cpus = 1;
	if (n > cpus)
		n = (int)cpus;
	return n > 4 ? 4 : n < 1 ? 1 : n;
}

/* --- set-up ------------------------------------------------------------- */

static int
setup_cfg(struct wa_batch *a)
{
	const struct wa_batch_opts *o = a->o;
	char err[600];

	if (wa_msg_src_check(&o->src, err, sizeof err) != 0)
		return wa_usage_error("%s", err);
	if (wa_cfg_load(&a->cfg, o->config, err, sizeof err) != 0) {
		wa_err("%s", err);
		return WA_EXIT_CONFIG;
	}
	if (o->timeout_ms > 0)
		a->cfg.timeout_ms = o->timeout_ms;
	if (o->media_timeout_ms > 0)
		a->cfg.media_timeout_ms = o->media_timeout_ms;
	if (o->connect_timeout_ms > 0)
		a->cfg.connect_timeout_ms = o->connect_timeout_ms;
	if (wa_norm_init(&a->norm, o->region ? o->region :
	    wa_cfg_get(&a->cfg, WA_CFG_DEFAULT_REGION), NULL, 0) != 0) {
		if (o->region)
			return wa_usage_error("--region: unknown region code '%s'", o->region);
		wa_err("WA_DEFAULT_REGION: unknown region code");
		return WA_EXIT_CONFIG;
	}
	return 0;
}

static int
setup_router(struct wa_batch *a)
{
	char err[600];
	int rc = wa_router_new(&a->router, &a->cfg, a->o->provider, err, sizeof err);

	if (rc == WA_EXIT_USAGE)
		return wa_usage_error("%s", err);
	if (rc != 0)
		wa_err("%s", err);
	return rc;
}

/* Before a lane's first sends of new messages: none once another lane met
 * a fatal outcome or the run is interrupted. */
static int
before_send(void *ctx, struct wa_msg *const *msgs, int n)
{
	struct lane *l = ctx;

	return l->a->fatal || *l->a->stop ? -1 : 0;
}

static int
setup_senders(struct wa_batch *a)
{
	const struct wa_batch_opts *o = a->o;
	struct wa_sender_opts so;
	char err[256];
	int c, i;

	a->nlanes = lane_count(o);
	a->lanes = calloc((size_t)a->nlanes, sizeof *a->lanes);
	if (!a->lanes) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	for (i = 0; i < a->nlanes; i++) {
		struct lane *l = &a->lanes[i];

		l->a = a;
		/* parallel split as evenly as it goes */
		l->parallel = o->parallel / a->nlanes + (i < o->parallel % a->nlanes);
		wa_sender_opts_init(&so, &a->cfg);
		so.parallel = l->parallel;
		so.rate = o->rate;
		so.dry_run = o->dry_run;
		so.on_result = on_result;
		so.before_send = before_send;
		so.ctx = l;
		for (c = 0; c < WA_NCTX; c++) {
			if (o->retries >= 0)
				so.policy[c].max_attempts = (int)o->retries + 1;
			so.policy[c].retry_ambiguous = o->retry_ambiguous;
		}
		l->snd = wa_sender_new(&so, err, sizeof err);
		if (!l->snd) {
			wa_err("%s", err);
			return WA_EXIT_CONFIG;
		}
	}
	return 0;
}

int
wa_batch_new(struct wa_batch **out, const struct wa_batch_opts *o)
{
	struct wa_batch *a = calloc(1, sizeof *a);
	int rc;

	*out = NULL;
	if (!a) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	a->o = o;
	a->stop = o->stop ? o->stop : &a->nostop;
	pthread_mutex_init(&a->mu, NULL);
	rc = setup_cfg(a);
	if (rc == 0)
		rc = setup_router(a);
	if (rc == 0)
		rc = setup_senders(a);
	if (rc == 0) {
		a->wr = wa_writer_new(o->out);
		if (!a->wr) {
			wa_err("out of memory");
			rc = WA_EXIT_SOFTWARE;
		}
	}
	if (rc != 0) {
		wa_batch_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void
wa_batch_free(struct wa_batch *b)
{
	int i;

	if (!b)
		return;
	for (i = 0; i < b->nlanes; i++)
		wa_sender_free(b->lanes[i].snd);
	free(b->lanes);
	pthread_mutex_destroy(&b->mu);
	wa_router_free(b->router);
	wa_writer_free(b->wr);
	wa_cfg_free(&b->cfg);
	free(b);
}

/* The exit code of a run that went through: the fatal outcome's, else
 * interrupted, else whether some record failed. */
static int
outcome(struct wa_batch *a, int rc)
{
	if (rc == 0)
		rc = a->fatal ? a->fatal_code : *a->stop ? WA_EXIT_TEMP : a->status;
	if (*a->stop && !a->fatal)
		wa_err("interrupted: sends in flight finished, nothing more sent");
	return rc;
}

/* --- the run ------------------------------------------------------------ */

/* The one record of `to`. */
static void
one_record(struct wa_batch *a)
{
	struct wa_rec rec;

	memset(&rec, 0, sizeof rec);
	rec.kind = WA_REC_OBJECT;
	rec.obj = wa_new_object();
	rec.file = "--to";
	rec.line = 1;
	wa_set_str(rec.obj, "to", a->o->to);
	take_record(&a->lanes[0], &rec);
}

static int
run(struct wa_batch *a)
{
	const struct wa_batch_opts *o = a->o;
	int rc, i;

	if (o->to) {
		one_record(a);
		return run_loop(&a->lanes[0]);
	}
	a->feed = wa_feed_start(o->files, o->nfiles, (size_t)o->maxline,
	    (enum wa_format)o->format, NULL, o->parallel > 4 ? o->parallel : 4,
	    wake_lanes, a);
	if (!a->feed) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	wa_log(WA_LOG_DEBUG, "%s: %d sending thread%s, up to %d sends in flight "
	    "each", wa_progname(), a->nlanes, a->nlanes == 1 ? "" : "s",
	    a->lanes[0].parallel);
	/* Lane 0 runs here, the others in threads of their own. */
	for (i = 1; i < a->nlanes; i++)
		a->lanes[i].started = pthread_create(&a->lanes[i].th, NULL,
		    lane_main, &a->lanes[i]) == 0;
	rc = run_loop(&a->lanes[0]);
	for (i = 1; i < a->nlanes; i++) {
		if (!a->lanes[i].started) {
			/* No thread: this one does its share after all. */
			a->lanes[i].rc = run_loop(&a->lanes[i]);
		} else
			pthread_join(a->lanes[i].th, NULL);
		if (rc == 0)
			rc = a->lanes[i].rc;
	}
	wa_feed_stop(a->feed);
	a->feed = NULL;
	return rc;
}

int
wa_batch_run(struct wa_batch *b)
{
	return outcome(b, run(b));
}

int
wa_batch_status(struct wa_batch *b)
{
	const struct wa_batch_opts *o = b->o;
	const struct wa_cfg *cfg;
	enum wa_provider p;
	struct wa_error e;
	struct wa_ready rd;
	yajl_val out;
	int rc;

	if (wa_route(b->router, o->business, &p, &e) != 0) {
		wa_err("business %lld: %s: %s", o->business, e.code, e.message);
		return outcome(b, e.cls == WA_CLASS_FATAL ? WA_EXIT_UNAVAIL : WA_EXIT_CONFIG);
	}
	if ((rc = wa_route_cfg(b->router, o->business, &cfg, &e)) != 0) {
		wa_err("business %lld: %s: %s", o->business, e.code, e.message);
		return outcome(b, rc == -1 ? WA_EXIT_CONFIG : WA_EXIT_UNAVAIL);
	}
	/* That business's own sender, when it has one. */
	rc = wa_check_ready(cfg, p, o->business, &rd);
	out = wa_new_object();
	wa_set_str(out, "provider", wa_provider_name(p));
	if (o->business >= 0)
		wa_set_int(out, "business_id", o->business);
	else
		wa_set_null(out, "business_id");
	wa_set_bool(out, "ready", rd.ready);
	wa_set_str(out, "reason", rd.reason);
	if (rd.info)
		wa_set(out, "details", rd.info);
	else
		wa_set_null(out, "details");
	put(b, out);
	wa_val_free(out);
	if (rc != WA_EXIT_OK)
		wa_err("%s not ready: %s", wa_provider_name(p), rd.reason);
	else
		wa_log(WA_LOG_VERBOSE, "[WA_SEND] provider=%s business_id=%lld ready: %s",
		    wa_provider_name(p), o->business, rd.reason);
	return outcome(b, rc);
}
