/* bc_run.c: running broadcasts through the library's send engine.
 *
 * One loop per broadcast, single-threaded: claim a batch of recipients,
 * hand them to the sender (wa_send.h) a few more than it can run at once,
 * collect the outcomes from on_result, and record them with the counters.
 * The before_send hook (the engine calls it right before a message's first
 * request, after its pacing slot) records the outcomes held and marks the
 * new sends' sending_since in one statement: a send starts only after
 * what finished before it is recorded, so however the process dies, the
 * rows that may have gone out without a recorded outcome are at most
 * --parallel. A recipient waiting between tries after a certain "not
 * delivered" (a 429) has its mark cleared (on_wait) and set again before
 * its next try: a crash meanwhile gives it back to the queue. Memory holds at most a pool of claimed recipients, sized
 * from --parallel and the batch, whatever the broadcast's size.
 *
 * Stopping. A fatal outcome stops the sender: in-flight sends finish, the
 * rest come back not sent and go back to 'queued', the broadcast is paused
 * with the reason. Cancel, an operator's pause and SIGTERM do the same
 * (cancel turns the unsent into 'cancelled'). The database going away
 * stops the sender too; what finishes meanwhile is kept in memory while
 * the loop reconnects (with backoff, for --db-wait seconds), then recorded;
 * after that the sends go on with a new sender. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"
#include "send/wa_message.h"
#include "send/wa_send.h"

#define POLL_S 1.0       /* look at the broadcast row (cancel, pause) */
#define RECOVER_S 10.0   /* recover dead workers' claims */
#define PROGRESS_S 0.25

enum stop_why { GO, STOP_SIGNAL, STOP_PAUSED, STOP_CANCEL, STOP_FATAL, STOP_WINDOW };

struct item {
	struct wa_msg m;
	struct bc_recip r;
	struct run *run;
	yajl_val rec;         /* the recipient's record, as export writes it */
	struct wa_msg_own own; /* m's rendered parts */
	int next;             /* free list / queue link */
	int between;          /* waiting for its next try: to unmark */
};

struct run {
	const struct wa_bcast_run_opts *o;
	struct wa_bcast_run_opts ro; /* o points here */
	int multi;                  /* stepped among others: never blocks */
	int slice;                  /* multi: its share of --parallel */
	int peak;                   /* most sends on the wire since bc_run_usage */
	int sat;                    /* since then, held back by its slice alone */
	int gen;                    /* d->gen when it last had the database */
	const struct wa_cfg *cfg;
	struct bc_db *d;
	struct bc_bcast b;
	enum wa_provider prov;
	struct wa_norm_opts norm;   /* for rows stored without a JID */
	yajl_val proto_rec;         /* the message fields (bc_message) */
	struct wa_msg proto;        /* provider, business, context */
	struct wa_sender *snd;
	struct bc_pace pace;

	struct item *pool;
	int npool, free_head, nfree;
	int fresh;                  /* pool[fresh..] never taken yet */
	int q_head, q_tail, nq;     /* claimed, not yet handed to the sender */
	int batch;

	struct bc_outcome *outs;    /* outcomes not yet recorded */
	int nout, outcap;
	double first_out;           /* when the oldest of them came */

	struct bc_counts counts;    /* the broadcast's, as last recorded */
	int drained;                /* nothing left to claim */
	long long later;            /* drained but these wait (bc_later_s) */
	double later_s;             /* the first of them in this long */
	double next_claim, last_poll, last_recover, last_progress, t0;
	long long done_here;        /* outcomes recorded by this worker */
	enum stop_why stop;
	char reason[300];
	int unreached;              /* the fatal outcome: provider not reached */
	int db_down;                /* the connection is lost */
	int unrecorded;             /* outcomes that found no claim */
	int max_attempts;           /* the broadcast policy's */
	int failed;                 /* a database error in a callback */
	int nbetween;               /* items with between set */
	struct bc_sched sched;      /* its sending window */
	time_t win_change;          /* when to look at the window again; -1 never */
	char win_next[64];          /* STOP_WINDOW: its next opening */
};

/* --- the item pool -------------------------------------------------------- */

static int
pool_init(struct run *u, int n)
{
	u->npool = n;
	u->outcap = n * 2;
	u->pool = calloc((size_t)n, sizeof *u->pool);
	u->outs = calloc((size_t)n * 2, sizeof *u->outs);
	if (!u->pool || !u->outs)
		return -1;
	/* Items are first taken in order (fresh): pages of the pool no run
	 * needs are never touched, which matters with 100 runs at once. */
	u->fresh = 0;
	u->free_head = -1;
	u->nfree = n;
	u->q_head = u->q_tail = -1;
	return 0;
}

static struct item *
item_take(struct run *u)
{
	struct item *it;

	if (u->free_head >= 0) {
		it = &u->pool[u->free_head];
		u->free_head = it->next;
	} else if (u->fresh < u->npool) {
		it = &u->pool[u->fresh++];
	} else {
		return NULL;
	}
	u->nfree--;
	return it;
}

static void
item_put(struct run *u, struct item *it)
{
	wa_val_free(it->rec);
	it->rec = NULL;
	wa_msg_own_free(&it->own);
	wa_val_free(it->r.fields);
	it->r.fields = NULL;
	it->next = u->free_head;
	u->free_head = (int)(it - u->pool);
	u->nfree++;
}

static void
queue_push(struct run *u, struct item *it)
{
	int i = (int)(it - u->pool);

	it->next = -1;
	if (u->q_tail >= 0)
		u->pool[u->q_tail].next = i;
	else
		u->q_head = i;
	u->q_tail = i;
	u->nq++;
}

static struct item *
queue_pop(struct run *u)
{
	struct item *it;

	if (u->q_head < 0)
		return NULL;
	it = &u->pool[u->q_head];
	u->q_head = it->next;
	if (u->q_head < 0)
		u->q_tail = -1;
	u->nq--;
	return it;
}

/* --- outcomes ------------------------------------------------------------- */

static void
progress(struct run *u, int force)
{
	struct wa_bcast_progress p;
	double now = bc_now(), el = now - u->t0;
	long long left;

	if (!u->o->progress || (!force && now - u->last_progress < PROGRESS_S))
		return;
	u->last_progress = now;
	memset(&p, 0, sizeof p);
	p.broadcast_id = u->b.id;
	p.total = u->counts.total;
	p.sent = u->counts.sent;
	p.failed = u->counts.failed;
	p.cancelled = u->counts.cancelled;
	p.processed = u->counts.processed;
	p.rate = el > 0.5 ? u->done_here / el : 0;
	left = p.total - p.processed;
	p.eta = p.rate > 0 ? left / p.rate : -1;
	u->o->progress(u->o->arg, &p);
}

/* A log line, with the progress bar out of its way. */
#define LOGLINE(u, need, ...) do { \
	if (wa_log_level() >= (need)) { \
		if ((u)->o->progress) \
			(u)->o->progress((u)->o->arg, NULL); \
		wa_log((need), __VA_ARGS__); \
	} \
} while (0)

/* Record the outcomes held, and mark the n sends in mark[] as going out
 * (mark may be NULL), in one statement. Returns how many of mark remain
 * ours, or -1; on a lost connection, 0 with db_down set (the outcomes
 * stay held). */
static int
settle(struct run *u, long long *mark, int nmark)
{
	int n = u->nout, kept;

	if (u->db_down)
		return mark ? -1 : 0;
	if (n == 0 && !mark)
		return 0;
	kept = bc_record_mark(u->d, u->b.id, u->outs, n, mark, nmark, &u->counts);
	if (kept < 0) {
		if (u->d->lost) {
			u->db_down = 1;
			return mark ? -1 : 0;
		}
		return -1;
	}
	if (n == 0)
		return kept;
	if (u->counts.recorded < n) {
		/* Claims taken back while we were away: their outcome can no
		 * longer be recorded here (they are marked for review). */
		u->unrecorded += n - (int)u->counts.recorded;
		LOGLINE(u, WA_LOG_NORMAL, "%s: warning: broadcast_id=%lld: %lld "
		    "outcomes arrived for claims no longer held: not recorded",
		    wa_progname(), u->b.id, n - u->counts.recorded);
	}
	u->done_here += u->counts.recorded;
	u->nout = 0;
	progress(u, 0);
	return kept;
}

static int
flush(struct run *u)
{
	return settle(u, NULL, 0) < 0 ? -1 : 0;
}

static struct bc_outcome *
outcome_new(struct run *u, long long id, enum bc_end end, int attempts)
{
	struct bc_outcome *oc;

	/* Room was made when the item was claimed (claim_more): it cannot
	 * overflow unless an item is reported twice, which the engine never
	 * does. */
	if (u->nout == 0)
		u->first_out = bc_now();
	oc = &u->outs[u->nout < u->outcap ? u->nout++ : u->outcap - 1];
	memset(oc, 0, sizeof *oc);
	oc->id = id;
	oc->end = end;
	oc->attempts = attempts;
	return oc;
}

static void
log_send(struct run *u, const struct item *it, const char *status,
    const struct wa_result *r)
{
	char digits[64];

	if (wa_log_level() < WA_LOG_VERBOSE)
		return;
	if (!wa_jid_user(it->r.jid, digits, sizeof digits))
		snprintf(digits, sizeof digits, "%s", it->r.phone);
	if (r && r->status == WA_FAILED)
		LOGLINE(u, WA_LOG_VERBOSE, "[WA_SEND] broadcast_id=%lld to=%s "
		    "status=%s error=%s attempts=%d", u->b.id, digits, status,
		    r->error.code ? r->error.code : "send_failed", r->attempts);
	else
		LOGLINE(u, WA_LOG_VERBOSE, "[WA_SEND] broadcast_id=%lld to=%s "
		    "status=%s", u->b.id, digits, status);
}

/* The sender's final word on one message. */
static void
on_result(void *ctx, struct wa_msg *m, const struct wa_result *r)
{
	struct run *u = ctx;
	struct item *it = m->udata;
	struct bc_outcome *oc = outcome_new(u, it->r.id, BC_SENT, 0);

	if (it->between) {
		it->between = 0; /* the outcome clears the mark */
		u->nbetween--;
	}
	switch (bc_outcome_of(oc, it->r.id, r, u->stop == STOP_CANCEL)) {
	case BC_SENT:
		log_send(u, it, "sent", r);
		break;
	case BC_FAILED:
		log_send(u, it, "failed", r);
		/* Every other recipient would fail alike: the broadcast
		 * stops as for a fatal outcome (the sender has stopped). */
		if (r->error.halt && (u->stop == GO || u->stop == STOP_SIGNAL ||
		    u->stop == STOP_WINDOW)) {
			u->stop = STOP_FATAL;
			u->unreached = 0;
			bc_fatal_reason(u->reason, sizeof u->reason, &r->error);
		}
		break;
	default:
		if (r->status == WA_FAILED && r->error.cls == WA_CLASS_FATAL) {
			/* Fatal: the recipient goes back, the broadcast stops
			 * (bc_halt). */
			if (u->stop == GO || u->stop == STOP_SIGNAL ||
			    u->stop == STOP_WINDOW) {
				u->stop = STOP_FATAL;
				u->unreached = wa_error_unreached(r->error.code);
				bc_fatal_reason(u->reason, sizeof u->reason, &r->error);
			}
			log_send(u, it, "not_sent", NULL);
		} else if (r->status == WA_FAILED)
			log_send(u, it, "requeued", r);
	}
	item_put(u, it);
}

/* Right before the first request of these messages: record what has
 * finished and that these are going out, in one statement. Recording
 * first keeps the sends that may have gone out without a recorded outcome
 * at most --parallel, whenever the process dies. Any failure keeps these
 * from going (the sender stops). */
static int
before_send(void *ctx, struct wa_msg *const *msgs, int n)
{
	struct run *u = ctx;
	long long ids[256];
	int i, k, done = 0;

	while (done < n) {
		k = n - done > 256 ? 256 : n - done;
		for (i = 0; i < k; i++) {
			struct item *it = msgs[done + i]->udata;

			if (it->between) {
				it->between = 0; /* marked again, not unmarked */
				u->nbetween--;
			}
			ids[i] = it->r.id;
		}
		i = settle(u, ids, k);
		if (i < 0) {
			if (!u->db_down)
				u->failed = 1; /* reported by the loop */
			return -1;
		}
		if (i != k)
			return -1; /* some claim is no longer ours: send none */
		done += k;
	}
	return 0;
}

/* A try certainly did not deliver it, and it waits for the next: until
 * then it is not on the wire, and a crash meanwhile gives it back to the
 * queue rather than for review (unmark). */
static void
on_wait(void *ctx, struct wa_msg *m)
{
	struct run *u = ctx;
	struct item *it = m->udata;

	if (!it->between) {
		it->between = 1;
		u->nbetween++;
	}
}

/* The sending marks of those waiting between tries, cleared. */
static int
unmark(struct run *u)
{
	long long ids[256];
	int i, k = 0, st = 0;

	for (i = 0; i < u->fresh && st == 0; i++) {
		if (!u->pool[i].between)
			continue;
		u->pool[i].between = 0;
		u->nbetween--;
		ids[k++] = u->pool[i].r.id;
		if (k == 256 || u->nbetween == 0) {
			st = bc_unmark_sending(u->d, u->b.id, ids, k);
			k = 0;
		}
	}
	if (st != 0 && u->d->lost) {
		u->db_down = 1;
		return 0;
	}
	return st;
}

/* Pacing from the shared slot row. */
static int
acquire(void *ctx, int want, double *wait_s)
{
	struct run *u = ctx;
	double when, now;
	int got = 0;

	*wait_s = 0.05;
	while (got < want) {
		if (u->db_down || bc_pace_next(u->d, &u->pace, &when) != 0) {
			if (u->d->lost)
				u->db_down = 1;
			*wait_s = 0.2;
			return got;
		}
		now = bc_now();
		if (when > now) {
			/* Not yet: keep it for the next call. */
			u->pace.pos--;
			*wait_s = when - now;
			break;
		}
		got++;
	}
	return got;
}

/* The provider says the sender is over its throughput: every worker
 * slows down (bc_pace_throttle). */
static void
throttle(void *ctx)
{
	struct run *u = ctx;

	if (u->db_down)
		return;
	if (bc_pace_throttle(u->d, &u->pace) != 0) {
		if (u->d->lost)
			u->db_down = 1;
		return;
	}
	LOGLINE(u, WA_LOG_VERBOSE, "[WA_BROADCAST] broadcast_id=%lld sender=%s "
	    "throttled by the provider: the pace halves", u->b.id, u->pace.sender);
}

/* --- the message -------------------------------------------------------- */

/* The message every recipient's record carries (as export writes it)
 * and what the sender needs besides. */
static int
build_proto(struct run *u, char *err, size_t len)
{
	struct wa_msg *m = &u->proto;

	memset(m, 0, sizeof *m);
	m->provider = u->prov;
	m->business_id = u->b.business_id;
	m->context = WA_CTX_BROADCAST;
	u->proto_rec = wa_new_object();
	if (!u->proto_rec) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	return bc_message(&u->b, u->proto_rec, err, len);
}

/* --- claiming and handing over ------------------------------------------- */

static int
claim_more(struct run *u)
{
	struct bc_recip *rs;
	struct bc_outcome bad, *oc;
	struct item *it;
	int want, n, i, opted, batch;

	if (u->drained || bc_now() < u->next_claim)
		return 0;
	/* Every item claimed must find room for its outcome. */
	if (u->outcap - u->nout - (u->npool - u->nfree) < u->batch / 2 && flush(u) != 0)
		return -1;
	/* Among others, a batch in the measure of its slice: a hundred runs
	 * at 80/s do not each hold --batch recipients claimed. */
	batch = u->multi && 4 * u->slice < u->batch ? 4 * u->slice : u->batch;
	if (batch < 32)
		batch = 32 < u->batch ? 32 : u->batch;
	want = u->outcap - u->nout - (u->npool - u->nfree);
	if (want > u->nfree)
		want = u->nfree;
	if (want > batch)
		want = batch;
	if (want <= 0)
		return 0;
	/* Claim only when a fair batch fits, not one by one. */
	if (want < batch / 2 && u->nq + wa_sender_pending(u->snd) > 0)
		return 0;
	rs = calloc((size_t)want, sizeof *rs);
	if (!rs)
		return -1;
	n = bc_claim(u->d, u->b.id, want, u->o->lease, 0, rs, &opted);
	if (n < 0) {
		free(rs);
		if (u->d->lost) {
			u->db_down = 1;
			return 0;
		}
		return -1;
	}
	for (i = n; i < n + opted; i++) {
		LOGLINE(u, WA_LOG_VERBOSE, "[WA_SEND] broadcast_id=%lld to=%s "
		    "status=cancelled error=opted_out", u->b.id, rs[i].phone +
		    (rs[i].phone[0] == '+'));
		wa_val_free(rs[i].fields);
	}
	for (i = 0; i < n; i++) {
		it = item_take(u);
		memset(it, 0, sizeof *it);
		it->r = rs[i];
		it->run = u;
		if (bc_fill_jid(&u->norm, &it->r, &bad) != 0) {
			oc = outcome_new(u, it->r.id, BC_FAILED, 0);
			*oc = bad;
			item_put(u, it);
			continue;
		}
		queue_push(u, it);
	}
	free(rs);
	if (n == 0 && opted == 0) {
		u->next_claim = bc_now() + 0.25;
		return 1; /* nothing claimable now */
	}
	return 0;
}

/* The context whose policy allows what is left of this recipient's
 * attempts (see new_sender). */
static enum wa_context
policy_for(const struct run *u, const struct item *it)
{
	int used = it->r.attempts;

	return used <= 0 ? WA_CTX_BROADCAST : used == 1 ? WA_CTX_LEAD : WA_CTX_CHAT;
}

/* The recipient's message, from its record as export would write it:
 * the one way wa-send builds it too. 0, or -1 when it cannot be built
 * (a field missing since create): failed, permanent. */
static int
build_msg(struct run *u, struct item *it)
{
	struct bc_outcome *oc;
	struct wa_error e;

	it->m = u->proto;
	it->m.jid = it->r.jid;
	it->m.context = policy_for(u, it);
	it->m.udata = it;
	it->rec = bc_recipient_record(&u->b, &it->r, u->proto_rec, u->d->key);
	if (it->rec && wa_msg_content(&it->m, &it->own, it->rec, NULL, &e) == 0) {
		it->m.idempotency_key = wa_get_str(it->rec, "idempotency_key");
		return 0;
	}
	if (!it->rec)
		wa_error_set(&e, "no_memory", WA_CLASS_PERMANENT, "out of memory");
	oc = outcome_new(u, it->r.id, BC_FAILED, 0);
	bc_copy(oc->code, sizeof oc->code, e.code);
	snprintf(oc->klass, sizeof oc->klass, "%s", wa_class_name(e.cls));
	bc_copy(oc->message, sizeof oc->message, e.message);
	LOGLINE(u, WA_LOG_NORMAL, "%s: warning: broadcast_id=%lld recipient_id=%lld: "
	    "%s: %s", wa_progname(), u->b.id, it->r.id, e.code, e.message);
	item_put(u, it);
	return -1;
}

/* Keep the sender fed: at most `parallel` waiting to start, so a stop
 * leaves few claims to give back and pacing is granted send by send. */
static void
feed(struct run *u)
{
	struct bc_outcome *oc;
	struct item *it;

	while (u->nq > 0 && wa_sender_queued(u->snd) < u->o->parallel &&
	    (!u->multi || wa_sender_pending(u->snd) < u->slice) &&
	    !wa_sender_stopped(u->snd)) {
		it = queue_pop(u);
		if (it->r.attempts >= u->max_attempts) {
			/* Its attempts are spent (handed back after the last
			 * one): it failed, retryably, as the policy ends. */
			oc = outcome_new(u, it->r.id, BC_FAILED, 0);
			snprintf(oc->code, sizeof oc->code, "attempts_exhausted");
			snprintf(oc->klass, sizeof oc->klass, "retryable");
			snprintf(oc->message, sizeof oc->message, "no attempt left "
			    "of %d; retry --failed sends it again", u->max_attempts);
			item_put(u, it);
			continue;
		}
		if (build_msg(u, it) != 0)
			continue;
		if (wa_sender_submit(u->snd, &it->m) != 0) {
			/* Stopped (or out of memory): back to our queue. */
			queue_push(u, it);
			break;
		}
	}
}

/* What is left to claim: 1 nothing (drained), 0 some later (next_claim
 * set), -1 error. */
static int
look_ahead(struct run *u)
{
	long long n;
	double wait, first;

	if (bc_queued_later(u->d, u->b.id, &n, &wait, &first) != 0)
		return -1;
	if (n == 0)
		return 1;
	if (first > bc_later_s()) {
		/* Only recipients a provider asked to wait long for: the
		 * next run (cron's run --all) sends them. */
		u->later = n;
		u->later_s = first;
		return 1;
	}
	u->next_claim = bc_now() + wait;
	return 0;
}

static int
recover(struct run *u)
{
	long long rq, amb;

	u->last_recover = bc_now();
	if (bc_recover(u->d, u->b.id, &rq, &amb) != 0)
		return -1;
	if (rq || amb)
		LOGLINE(u, WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld recovered "
		    "claims of stopped workers: %lld queued again, %lld in flight "
		    "marked ambiguous for review", u->b.id, rq, amb);
	return 0;
}

/* Cancel requested or paused by someone else? */
static int
poll_row(struct run *u)
{
	static const char sql[] =
	    "SELECT status, coalesce(cancel_requested, false)"
	    " FROM whatsapp_broadcasts WHERE id = $1";
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, u->b.id) };
	PGresult *r;

	u->last_poll = bc_now();
	r = bc_qp(u->d, sql, 1, v);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		if (PQgetvalue(r, 0, 1)[0] == 't')
			u->stop = STOP_CANCEL;
		else if (!strcmp(PQgetvalue(r, 0, 0), "paused") && u->stop == GO)
			u->stop = STOP_PAUSED;
	}
	PQclear(r);
	return 0;
}

/* --- the loop ------------------------------------------------------------- */

/* The engine picks a message's retry policy by its context. A recipient
 * handed back while it waited for a retry (a stop, a fatal outcome) has
 * used some of its attempts; it must not get a fresh three. This sender
 * sees only broadcast messages, so the two person contexts carry the
 * broadcast policy with one and two attempts used up, and such a
 * recipient is sent under the one that matches (see policy_for). */
static int
new_sender(struct run *u)
{
	struct wa_sender_opts so;
	char err[256];
	int used;

	wa_sender_opts_init(&so, u->cfg);
	for (used = 1; used <= 2; used++) {
		so.policy[used == 1 ? WA_CTX_LEAD : WA_CTX_CHAT] =
		    so.policy[WA_CTX_BROADCAST];
		so.policy[used == 1 ? WA_CTX_LEAD : WA_CTX_CHAT].max_attempts =
		    so.policy[WA_CTX_BROADCAST].max_attempts - used;
	}
	so.parallel = u->o->parallel;
	so.on_result = on_result;
	so.before_send = before_send;
	so.on_wait = on_wait;
	so.ctx = u;
	/* Unlimited too: a throttle from the provider paces it from then on. */
	so.pacer.acquire = acquire;
	so.pacer.throttle = throttle;
	so.pacer.ctx = u;
	u->max_attempts = so.policy[WA_CTX_BROADCAST].max_attempts;
	u->snd = wa_sender_new(&so, err, sizeof err);
	if (!u->snd) {
		wa_err("%s", err);
		return -1;
	}
	return 0;
}

static void
idle_step(void *arg, int ms)
{
	struct run *u = arg;

	if (u->snd && wa_sender_pending(u->snd) > 0)
		wa_sender_step(u->snd, ms);
	else
		bc_sleep_ms(ms);
}

/* After a reconnection: the claims still waiting in our queue may have
 * been taken back while our lock was gone (the session died with the
 * server). Keep those still ours; forget the others, someone else has
 * them now. */
static int
verify_queue(struct run *u)
{
	static const char sql[] =
	    "SELECT id FROM whatsapp_broadcast_recipients WHERE id = ANY($1::int[])"
	    " AND claimed_by = $2 AND status = 'processing'";
	struct wa_buf ids = { 0 };
	struct item *it;
	char k[32];
	const char *v[2];
	PGresult *r;
	int i, n = u->nq, j, mine;

	if (n == 0)
		return 0;
	wa_buf_str(&ids, "{");
	for (i = u->q_head; i >= 0; i = u->pool[i].next)
		wa_buf_fmt(&ids, i == u->q_head ? "%lld" : ",%lld", u->pool[i].r.id);
	wa_buf_str(&ids, "}");
	v[0] = ids.p;
	v[1] = bc_ll(k, sizeof k, u->d->key);
	r = ids.oom ? NULL : bc_q(u->d, sql, 2, v);
	wa_buf_free(&ids);
	if (!r)
		return -1;
	for (i = 0; i < n; i++) {
		it = queue_pop(u);
		mine = 0;
		for (j = 0; j < PQntuples(r) && !mine; j++)
			mine = strtoll(PQgetvalue(r, j, 0), NULL, 10) == it->r.id;
		if (mine)
			queue_push(u, it);
		else
			item_put(u, it);
	}
	PQclear(r);
	return 0;
}

/* The connection is gone: let the sends in flight finish (their outcomes
 * wait in memory), reconnect, record them, and go on with a new sender.
 * -1 when the database stayed away, -2 on another error. */
static int
ride_out(struct run *u)
{
	LOGLINE(u, WA_LOG_NORMAL, "%s: warning: broadcast_id=%lld: database "
	    "connection lost (%s): reconnecting for up to %.0f s", wa_progname(),
	    u->b.id, u->d->err, u->o->db_wait);
	wa_sender_stop(u->snd);
	/* Among several runs on one connection, another may have
	 * reconnected since this one last did: a second reconnection would
	 * drop the lock for nothing. */
	if ((!u->multi || u->gen == u->d->gen || u->d->lost || !u->d->conn ||
	    PQstatus(u->d->conn) != CONNECTION_OK) &&
	    bc_reconnect(u->d, u->o->db_wait, u->o->stop, idle_step, u) != 0)
		return -1;
	u->gen = u->d->gen;
	while (wa_sender_pending(u->snd) > 0)
		wa_sender_step(u->snd, 100);
	wa_sender_free(u->snd);
	u->snd = NULL;
	u->db_down = 0;
	bc_pace_drop(&u->pace);
	LOGLINE(u, WA_LOG_NORMAL, "%s: broadcast_id=%lld: database back, going on",
	    wa_progname(), u->b.id);
	if (flush(u) != 0 || verify_queue(u) != 0)
		return u->d->lost ? -1 : -2;
	return new_sender(u) == 0 ? 0 : -2;
}

/* Give up for good: say what could not be recorded. The next run marks
 * those rows for review (their send may have gone out); these lines tell
 * the reviewer what became of them. Sends that did not start need no word:
 * they go back to the queue. */
static void
report_lost(struct run *u)
{
	const struct bc_outcome *oc;
	int i;

	for (i = 0; i < u->nout; i++) {
		oc = &u->outs[i];
		if (oc->end != BC_SENT && oc->end != BC_FAILED)
			continue;
		LOGLINE(u, WA_LOG_QUIET, "%s: error: broadcast_id=%lld recipient_id=%lld "
		    "status=%s%s%s%s%s not recorded (database unavailable)",
		    wa_progname(), u->b.id, oc->id, oc->end == BC_SENT ? "sent" : "failed",
		    oc->message_id[0] ? " message_id=" : "", oc->message_id,
		    oc->code[0] ? " error=" : "", oc->code);
	}
	if (wa_sender_inflight(u->snd) > 0)
		LOGLINE(u, WA_LOG_QUIET, "%s: error: broadcast_id=%lld: %d sends still "
		    "in flight, their outcome unknown: the next run marks them for "
		    "review", wa_progname(), u->b.id, wa_sender_inflight(u->snd));
}

/* The window closed? Its sends stop as for a signal (those in flight
 * finish, the rest go back to the queue); the broadcast stays running. */
static void
window_check(struct run *u)
{
	time_t now, next;

	if (u->win_change < 0 || u->stop != GO || (now = bc_wall()) < u->win_change)
		return;
	if (bc_sched_open(&u->sched, now, &next)) {
		u->win_change = next;
		return;
	}
	u->stop = STOP_WINDOW;
	bc_sched_when(&u->sched, next, u->win_next, sizeof u->win_next);
	LOGLINE(u, WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld "
	    "waiting_for_window: its sending window closed; the sends go on at %s",
	    u->b.id, u->win_next);
}

/* How much of its slice a run uses, for bc_run_usage: it is held back by
 * the slice when it has recipients in hand, every send it may have is
 * pending and none waits for its pace. */
static void
usage(struct run *u)
{
	int f = wa_sender_inflight(u->snd);

	if (f > u->peak)
		u->peak = f;
	if (u->nq > 0 && wa_sender_pending(u->snd) >= u->slice &&
	    wa_sender_queued(u->snd) == 0)
		u->sat = 1;
}

static int
step_once(struct run *u)
{
	double now = bc_now();
	int st;

	if (u->o->stop && *u->o->stop && u->stop == GO)
		u->stop = STOP_SIGNAL;
	window_check(u);
	if (u->stop == GO && now - u->last_poll >= POLL_S && poll_row(u) != 0)
		return u->d->lost ? (u->db_down = 1, 0) : -1;
	if (u->stop == GO && now - u->last_recover >= RECOVER_S && recover(u) != 0)
		return u->d->lost ? (u->db_down = 1, 0) : -1;
	if (u->stop != GO && !wa_sender_stopped(u->snd))
		wa_sender_stop(u->snd);
	if (u->stop == GO && !u->db_down) {
		st = claim_more(u);
		if (st < 0)
			return -1;
		if (st == 1 && u->nq == 0 && wa_sender_pending(u->snd) == 0) {
			/* Nothing to claim and nothing in hand: anything dead to
			 * take over, anything waiting for its retry time? */
			if (recover(u) != 0 || (st = look_ahead(u)) < 0)
				return u->d->lost ? (u->db_down = 1, 0) : -1;
			u->drained = st == 1;
		}
	}
	if (u->stop == GO)
		feed(u);
	if (wa_sender_pending(u->snd) > 0 || u->nq > 0) {
		wa_sender_step(u->snd, u->multi ? 0 : 100);
		usage(u);
	}
	else if (u->stop == GO && !u->drained && !u->multi)
		bc_sleep_ms(u->next_claim > now ? (int)((u->next_claim - now) * 1000) + 1 : 20);
	/* Outcomes are recorded before the next sends start (before_send);
	 * here when none is about to start, or they have waited 50 ms. */
	if (u->nout && (u->stop != GO || (wa_sender_queued(u->snd) == 0 && u->nq == 0) ||
	    bc_now() - u->first_out >= 0.05 || u->nout >= u->outcap / 2))
		if (flush(u) != 0)
			return -1;
	if (u->nbetween && !u->db_down && unmark(u) != 0)
		return -1;
	progress(u, 0);
	return 0;
}

/* Everything in hand is settled: the loop may end. */
static int
settled(struct run *u)
{
	return wa_sender_pending(u->snd) == 0 && u->nout == 0 &&
	    (u->stop != GO || (u->drained && u->nq == 0));
}

/* Claims never handed over go back (or are cancelled). */
static int
hand_back(struct run *u)
{
	struct item *it;
	long long n;

	for (it = queue_pop(u); it; it = queue_pop(u))
		item_put(u, it);
	if (u->stop == STOP_CANCEL)
		return bc_cancel_rows(u->d, u->b.id, &n);
	return bc_giveback(u->d, u->b.id, &n);
}

/* One turn of a broadcast's loop: 0 go on, 1 ended with *rc. */
static int
turn(struct run *u, int *rc)
{
	int st;

	if (u->db_down) {
		st = ride_out(u);
		if (st == -1) {
			report_lost(u);
			wa_err("broadcast_id=%lld: database unavailable for %.0f s: "
			    "%s", u->b.id, u->o->db_wait, u->d->err);
			return *rc = WA_EXIT_TEMP, 1;
		}
		if (st < 0)
			return *rc = WA_EXIT_SOFTWARE, 1;
	}
	if (step_once(u) != 0 || u->failed) {
		wa_err("broadcast_id=%lld: %s", u->b.id, u->d->err);
		return *rc = WA_EXIT_SOFTWARE, 1;
	}
	if (!u->db_down && settled(u)) {
		*rc = WA_EXIT_OK;
		if (hand_back(u) != 0) {
			wa_err("broadcast_id=%lld: %s", u->b.id, u->d->err);
			*rc = u->d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		}
		return 1;
	}
	if (!u->db_down && wa_sender_stopped(u->snd) && u->stop == GO &&
	    wa_sender_pending(u->snd) == 0) {
		/* Stopped by before_send (a claim lost): a fresh sender. */
		if (flush(u) != 0)
			return *rc = WA_EXIT_SOFTWARE, 1;
		wa_sender_free(u->snd);
		u->snd = NULL;
		if (new_sender(u) != 0)
			return *rc = WA_EXIT_SOFTWARE, 1;
	}
	return 0;
}

/* --- one broadcast -------------------------------------------------------- */

/* The end of a run: the summary line operators grep for, the record. */
static int
finish(struct run *u, int rc)
{
	char st[32] = "";
	yajl_val rec;
	struct bc_bcast now;

	if (u->o->progress) {
		progress(u, 1); /* the last state, then out of the way */
		u->o->progress(u->o->arg, NULL);
	}
	if (rc == WA_EXIT_OK && (u->stop == GO || u->stop == STOP_CANCEL))
		if (bc_finalize(u->d, u->b.id, st, sizeof st) != 0)
			rc = u->d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	if (rc == WA_EXIT_OK && u->stop == STOP_FATAL &&
	    bc_halt(u->d, u->b.id, u->reason, u->unreached) != 0)
		rc = WA_EXIT_SOFTWARE;
	if (u->db_down || bc_load(u->d, u->b.id, &now) != 1) {
		if (!u->db_down)
			wa_err("broadcast_id=%lld: %s", u->b.id, u->d->err);
		return rc ? rc : WA_EXIT_TEMP;
	}
	if (u->later && u->stop == GO)
		wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld %lld queued "
		    "for later (the first in %.0f s): the next run sends them",
		    now.id, u->later, u->later_s);
	wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld total=%lld sent=%lld "
	    "failed=%lld status=%s%s%s", now.id, now.total, now.sent, now.failed,
	    now.status, u->stop == STOP_FATAL ? " reason=" : "",
	    u->stop == STOP_FATAL ? u->reason : "");
	rec = bc_status_record(u->d, u->b.id);
	if (rec) {
		if (u->o->emit(u->o->arg, rec) != 0 && rc == WA_EXIT_OK)
			rc = WA_EXIT_IO;
		wa_val_free(rec);
	}
	if (rc == WA_EXIT_OK) {
		if (u->stop == STOP_FATAL)
			rc = WA_EXIT_UNAVAIL;
		else if (u->stop == STOP_SIGNAL || (u->later && u->stop == GO))
			rc = WA_EXIT_TEMP;
		else if (u->stop == STOP_WINDOW && !u->o->all)
			rc = WA_EXIT_TEMP; /* run ID: run it again at the opening */
		else if (!strcmp(now.status, "partial") || !strcmp(now.status, "failed"))
			rc = WA_EXIT_FAILED;
	}
	bc_bcast_free(&now);
	return rc;
}

static void
run_free(struct run *u)
{
	int i;

	if (u->snd)
		wa_sender_free(u->snd);
	/* Items the sender dropped in flight (the database gone for good)
	 * were never put back: what they own goes here. */
	for (i = 0; u->pool && i < u->fresh; i++) {
		wa_val_free(u->pool[i].rec);
		wa_msg_own_free(&u->pool[i].own);
		wa_val_free(u->pool[i].r.fields);
	}
	wa_val_free(u->proto_rec);
	free(u->pool);
	free(u->outs);
	bc_bcast_free(&u->b);
}

/* Set up the run of broadcast b (taken over: b is emptied): NULL with
 * *rc the exit code when it could not start. */
static struct run *
start(struct bc_db *d, const struct wa_bcast_run_opts *o, struct bc_bcast *b,
    int provider, const char *pace_sender, int multi, int *rc)
{
	struct run *u;
	char err[256], fixed[200];
	int st;

	if (!(u = calloc(1, sizeof *u))) {
		wa_err("out of memory");
		bc_bcast_free(b);
		*rc = WA_EXIT_SOFTWARE;
		return NULL;
	}
	u->ro = *o;
	u->o = &u->ro;
	u->multi = multi;
	u->slice = o->parallel;
	u->cfg = o->cfg;
	u->d = d;
	u->gen = d->gen;
	u->b = *b;                    /* takes over b's strings */
	memset(b, 0, sizeof *b);
	u->prov = (enum wa_provider)provider;
	u->batch = o->batch > 0 ? o->batch : (o->parallel * 2 < 32 ? 32 : o->parallel * 2);
	if (u->batch > 1000)
		u->batch = 1000;
	u->t0 = bc_now();
	bc_pace_init(&u->pace, o->rate, pace_sender);
	wa_norm_init(&u->norm, u->b.region, NULL, 0);
	*rc = WA_EXIT_OK;
	if (build_proto(u, err, sizeof err) != 0) {
		wa_err("broadcast_id=%lld: %s", u->b.id, err);
		*rc = WA_EXIT_DATA;
		goto fail;
	}
	if (pool_init(u, u->batch + 2 * o->parallel) != 0 || new_sender(u) != 0) {
		wa_err("out of memory");
		*rc = WA_EXIT_SOFTWARE;
		goto fail;
	}
	u->counts.total = u->b.total;
	u->counts.sent = u->b.sent;
	u->counts.failed = u->b.failed;
	u->counts.cancelled = u->b.cancelled;
	u->counts.processed = u->b.processed;
	st = bc_start(d, u->b.id, fixed, sizeof fixed, &u->counts);
	if (st < 0 || recover(u) != 0 || bc_sched_load(d, u->b.id, &u->sched) < 0) {
		wa_err("broadcast_id=%lld: %s", u->b.id, d->err);
		*rc = d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		goto fail;
	}
	/* run_id found it open: look again when it next changes. */
	bc_sched_open(&u->sched, bc_wall(), &u->win_change);
	if (fixed[0])
		wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld counters "
		    "corrected from the recipients' rows: %s", u->b.id, fixed);
	if (poll_row(u) != 0) {
		*rc = WA_EXIT_TEMP;
		goto fail;
	}
	return u;
fail:
	run_free(u);
	free(u);
	return NULL;
}

int
bc_run_one(struct bc_db *d, const struct wa_bcast_run_opts *o,
    struct bc_bcast *b, int provider, const char *pace_sender)
{
	struct run *u;
	int rc;

	if (!(u = start(d, o, b, provider, pace_sender, 0, &rc)))
		return rc;
	while (!turn(u, &rc))
		;
	rc = finish(u, rc);
	run_free(u);
	free(u);
	return rc;
}

struct run *
bc_run_start(struct bc_db *d, const struct wa_bcast_run_opts *o,
    struct bc_bcast *b, int provider, const char *pace_sender, int *rc)
{
	return start(d, o, b, provider, pace_sender, 1, rc);
}

void
bc_run_share(struct run *u, int slice)
{
	u->slice = slice > 0 ? slice : 1;
}

int
bc_run_usage(struct run *u, int *peak)
{
	int sat = u->sat;

	*peak = u->peak;
	u->peak = 0;
	u->sat = 0;
	return sat;
}

int
bc_run_turn(struct run *u, int *rc)
{
	if (!turn(u, rc))
		return 0;
	*rc = finish(u, *rc);
	run_free(u);
	free(u);
	return 1;
}

void
bc_run_stop(struct run *u)
{
	if (u->stop == GO)
		u->stop = STOP_SIGNAL;
}

long long
bc_run_id(const struct run *u)
{
	return u->b.id;
}

int
bc_run_busy(const struct run *u)
{
	return u->nq > 0 || (u->snd && wa_sender_pending(u->snd) > 0);
}
