/* bc_pipe.c: the pipeline form of a run:
 *
 *     wa-broadcast export ID | wa-send --context broadcast | wa-broadcast mark ID
 *
 * export claims recipients under a pipeline key (negative), marks them
 * handed over (sending_since) in the same statement, and writes them as
 * records carrying the key in "claim". It holds a shared advisory lock on
 * the key while it lives, and the claims carry a lease (claimed_until), so
 * they stay alive after export has exited and before mark has seen them.
 * mark takes the same shared lock on the first record of each claim,
 * records each result as it arrives, and commits whenever its input would
 * block, so a killed pipeline loses only what was between the two.
 *
 * export keeps at most --window recipients handed over without a result
 * (it reads the count back from the database), which bounds what a killed
 * pipeline leaves for review.
 *
 * At end of input, mark settles the claims it got no result for: when the
 * sender stopped on a fatal outcome, it promised the rest never went out:
 * back to 'queued', and the broadcast pauses with the reason. Otherwise the
 * sender ended without answering for them (it died): they may have gone
 * out, so they are marked failed / ambiguous for review. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"
#include "send/wa_message.h"
#include "send/wa_result.h"
#include "send/wa_send.h"

#define EXPORT_BATCH 64
#define MARK_BATCH 64

/* --- export --------------------------------------------------------------- */

struct exporter {
	const struct wa_bcast_run_opts *o;
	struct bc_db d;
	struct bc_bcast b;
	yajl_val proto;           /* the message fields of every record */
	struct wa_norm_opts norm;
	long long exported;
	int adopted;              /* mark holds our key too */
};

/* Settle claims that were not written: back to queued (the records never
 * left), or failed when the number is no number. */
static int
unwritten(struct exporter *x, const struct bc_recip *rs, int from, int n)
{
	struct bc_outcome *oc;
	int i, k = 0, rc;

	if (n <= from)
		return 0;
	oc = calloc((size_t)(n - from), sizeof *oc);
	if (!oc)
		return -1;
	for (i = from; i < n; i++, k++) {
		oc[k].id = rs[i].id;
		oc[k].end = BC_REQUEUE;
	}
	rc = bc_record(&x->d, x->b.id, oc, k, NULL);
	free(oc);
	return rc;
}

/* Fill a row's JID the way create does, when the old system stored none. */
static int
export_jid(struct exporter *x, struct bc_recip *r)
{
	struct bc_outcome oc;

	if (bc_fill_jid(&x->norm, r, &oc) == 0)
		return 1;
	return bc_record(&x->d, x->b.id, &oc, 1, NULL) == 0 ? 0 : -1;
}

/* 1 go on, 0 stop (cancelled or paused), 2 stop (outside its sending
 * window), -1 error. */
static int
export_poll(struct exporter *x)
{
	struct bc_bcast now;
	int st;

	st = bc_load(&x->d, x->b.id, &now);
	if (st <= 0)
		return -1;
	st = !now.cancel_requested && strcmp(now.status, "paused") != 0;
	/* Its sending window closed: wa-send finishes what it has. */
	if (st && bc_sched_wait(&x->d, &now, WA_LOG_NORMAL) >= 0)
		st = 2;
	bc_bcast_free(&now);
	return st;
}

/* Hand n claimed recipients to wa-send: 0, or an exit code (-1 error). */
static int
export_batch(struct exporter *x, struct bc_recip *rs, int n)
{
	yajl_val rec;
	int i, st;

	for (i = 0; i < n; i++) {
		st = export_jid(x, &rs[i]);
		if (st < 0)
			return -1;
		if (st == 0)
			continue;
		rec = bc_recipient_record(&x->b, &rs[i], x->proto, x->d.key);
		st = rec ? x->o->emit(x->o->arg, rec) : -1;
		wa_val_free(rec);
		if (st != 0) {
			/* The reader is gone: nothing from here on left. */
			if (unwritten(x, rs, i, n) != 0)
				return -1;
			return WA_EXIT_IO;
		}
		x->exported++;
	}
	return 0;
}

static int
export_loop(struct exporter *x)
{
	struct bc_recip rs[EXPORT_BATCH];
	double last_poll = 0;
	long long out;
	double wait, first;
	int n, i, want, st, opted;

	for (;;) {
		if (x->o->stop && *x->o->stop)
			return WA_EXIT_TEMP;
		if (bc_now() - last_poll >= 1.0) {
			last_poll = bc_now();
			st = export_poll(x);
			if (st < 0)
				return -1;
			if (st == 0)
				return WA_EXIT_OK;
			if (st == 2)
				return WA_EXIT_TEMP; /* export again at the opening */
		}
		want = EXPORT_BATCH;
		if (x->o->window > 0) {
			out = bc_outstanding(&x->d, x->b.id);
			if (out < 0)
				return -1;
			if (out >= x->o->window) {
				bc_sleep_ms(10);
				continue;
			}
			if (want > x->o->window - out)
				want = (int)(x->o->window - out);
		}
		/* The lease covers the gap until mark takes the key over; once
		 * it has, the shorter hold mark itself keeps will do. */
		if (!x->adopted && (x->adopted = bc_key_shared(&x->d)) < 0)
			return -1;
		n = bc_claim(&x->d, x->b.id, want, x->adopted ?
		    BC_HOLD_S(x->o->db_wait) : x->o->lease, 1, rs, &opted);
		if (n < 0)
			return -1;
		for (i = n; i < n + opted; i++)
			wa_log(WA_LOG_VERBOSE, "[WA_SEND] broadcast_id=%lld to=%s "
			    "status=cancelled error=opted_out", x->b.id, rs[i].phone +
			    (rs[i].phone[0] == '+'));
		if (n == 0 && opted > 0)
			continue; /* more may be queued behind them */
		if (n == 0) {
			long long rq, amb;

			/* Nothing claimed may mean paused or cancelled just now. */
			if ((st = export_poll(x)) <= 0)
				return st < 0 ? -1 : WA_EXIT_OK;
			last_poll = bc_now();
			if (bc_recover(&x->d, x->b.id, &rq, &amb) != 0)
				return -1;
			if (rq)
				continue;
			/* Anything queued for later (a retry time)? Wait for it. */
			if (bc_queued_later(&x->d, x->b.id, &out, &wait, &first) != 0)
				return -1;
			if (out == 0)
				return WA_EXIT_OK;
			if (first > bc_later_s()) {
				wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld "
				    "%lld queued for later (the first in %.0f s): the "
				    "next run sends them", x->b.id, out, first);
				return WA_EXIT_TEMP;
			}
			bc_sleep_ms((int)(wait * 1000) + 1);
			continue;
		}
		st = export_batch(x, rs, n);
		for (i = 0; i < n; i++)
			wa_val_free(rs[i].fields);
		if (st != 0)
			return st;
	}
}

int
wa_bcast_export(const struct wa_bcast_run_opts *o, long long id)
{
	struct exporter x;
	struct bc_counts cn;
	char reason[256], msg[256], fixed[200];
	long long rq, amb;
	int rc, st, prov;

	memset(&x, 0, sizeof x);
	x.o = o;
	x.d.conn = *o->db;
	x.d.url = o->db_url;
	st = bc_load(&x.d, id, &x.b);
	if (st <= 0) {
		if (st == 0)
			wa_err("broadcast %lld: no such broadcast", id);
		else
			wa_err("%s", x.d.err);
		return st == 0 ? WA_EXIT_DATA : WA_EXIT_SOFTWARE;
	}
	rc = bc_sched_wait(&x.d, &x.b, WA_LOG_NORMAL);
	if (rc >= 0)
		goto out;
	if (strcmp(x.b.status, "queued") && strcmp(x.b.status, "running") &&
	    strcmp(x.b.status, "pending") && strcmp(x.b.status, "scheduled")) {
		rc = !strcmp(x.b.status, "paused") ? WA_EXIT_UNAVAIL : WA_EXIT_OK;
		if (rc)
			wa_log(WA_LOG_QUIET, "[WA_BROADCAST] broadcast_id=%lld not started: "
			    "paused (%s): resume it first", id,
			    x.b.pause_reason ? x.b.pause_reason : "no reason given");
		else
			wa_log(WA_LOG_VERBOSE, "[WA_BROADCAST] broadcast_id=%lld is %s: "
			    "nothing to export", id, x.b.status);
		goto out;
	}
	rc = bc_preflight(&x.d, o->cfg, x.b.business_id, &prov, NULL, reason,
	    sizeof reason);
	if (rc != WA_EXIT_OK) {
		if (rc == WA_EXIT_UNAVAIL || rc == WA_EXIT_CONFIG)
			wa_log(WA_LOG_QUIET, "[WA_BROADCAST] broadcast_id=%lld not started: %s",
			    id, reason);
		else
			wa_err("%s", reason);
		goto out;
	}
	x.proto = wa_new_object();
	wa_norm_init(&x.norm, x.b.region, NULL, 0);
	if (bc_message(&x.b, x.proto, msg, sizeof msg) != 0) {
		wa_err("broadcast_id=%lld: %s", id, msg);
		rc = WA_EXIT_DATA;
		goto out;
	}
	if (bc_worker(&x.d, 1) != 0 || bc_start(&x.d, id, fixed, sizeof fixed, &cn) < 0 ||
	    bc_recover(&x.d, id, &rq, &amb) != 0) {
		rc = -1;
		goto out;
	}
	if (fixed[0])
		wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld counters "
		    "corrected from the recipients' rows: %s", id, fixed);
	rc = export_loop(&x);
	wa_log(WA_LOG_VERBOSE, "[WA_BROADCAST] broadcast_id=%lld exported=%lld claim=%lld",
	    id, x.exported, x.d.key);
out:
	if (rc < 0) {
		wa_err("broadcast_id=%lld: %s", id, x.d.err);
		rc = x.d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	wa_val_free(x.proto);
	bc_bcast_free(&x.b);
	*o->db = x.d.conn;
	return rc;
}

/* --- mark ----------------------------------------------------------------- */

struct marker {
	const struct wa_bcast_run_opts *o;
	struct bc_db d;
	long long bid;
	struct bc_outcome outs[MARK_BATCH];
	int nout;
	long long keys[16];       /* claims seen (pipeline keys) */
	int nkeys;
	int fatal, failed_db;
	int unreached;            /* the fatal outcome: provider not reached */
	char reason[300];
	long long recorded, dropped, bad;
};

/* The connection is gone: reconnect for up to --db-wait seconds and take
 * the claims' locks again. Their leases keep them ours meanwhile. */
static int
mark_reconnect(struct marker *k)
{
	long long cur = k->d.key;
	int i, rc = 0;

	if (!k->d.lost || k->o->db_wait <= 0)
		return -1;
	wa_warn("broadcast_id=%lld: database connection lost (%s): reconnecting "
	    "for up to %.0f s", k->bid, k->d.err, k->o->db_wait);
	if (bc_reconnect(&k->d, k->o->db_wait, k->o->stop, NULL, NULL) != 0) {
		wa_err("broadcast_id=%lld: database unavailable for %.0f s: %s",
		    k->bid, k->o->db_wait, k->d.err);
		return -1;
	}
	for (i = 0; i < k->nkeys && rc == 0; i++) {
		k->d.key = k->keys[i];
		if (k->keys[i] != cur)
			rc = bc_lock(&k->d);
	}
	k->d.key = cur;
	if (rc == 0)
		wa_log(WA_LOG_NORMAL, "%s: broadcast_id=%lld: database back, going on",
		    wa_progname(), k->bid);
	return rc;
}

/* Once mark holds a claim's lock, the lease only has to outlast a lost
 * connection (its lock goes with it while mark reconnects): export's long
 * lease gives way to this one, so the claims of a pipeline killed whole are
 * free soon after its last result, not minutes later. */
static double
mark_hold(const struct marker *k)
{
	return BC_HOLD_S(k->o->db_wait);
}

static int
mark_flush(struct marker *k)
{
	struct bc_counts c;
	double until = 0;

	if (k->nout == 0 || k->failed_db)
		return k->failed_db ? -1 : 0;
	/* One statement: it happened whole or not at all, and a second try
	 * of what did happen changes nothing (the rows are no longer ours).
	 * A server that keeps dropping the connection gets --db-wait in all. */
	while (bc_record(&k->d, k->bid, k->outs, k->nout, &c) != 0) {
		if (until == 0)
			until = bc_now() + k->o->db_wait;
		if (bc_now() > until || mark_reconnect(k) != 0) {
			k->failed_db = 1;
			return -1;
		}
	}
	k->recorded += c.recorded;
	k->dropped += k->nout - c.recorded;
	k->nout = 0;
	/* Touches only the claims export made since (long leases) and those
	 * whose hold is running out. */
	if (bc_extend(&k->d, k->bid, mark_hold(k)) != 0 &&
	    (mark_reconnect(k) != 0 ||
	    bc_extend(&k->d, k->bid, mark_hold(k)) != 0)) {
		k->failed_db = 1;
		return -1;
	}
	return 0;
}

/* The reader flushes this stream right before a read that may block: that
 * is when the results so far must be committed, and not before. */
static ssize_t
on_would_block(void *cookie, const char *buf, size_t n)
{
	(void)buf;
	mark_flush(cookie);
	return (ssize_t)n;
}

/* Switch to the claim key of this record (one pipeline has one; a file
 * holding several runs' results may have more). */
static int
use_key(struct marker *k, long long key)
{
	int i;

	if (key == k->d.key)
		return 0;
	if (mark_flush(k) != 0)
		return -1;
	k->d.key = key;
	for (i = 0; i < k->nkeys; i++)
		if (k->keys[i] == key)
			return 0;
	if (k->nkeys < (int)(sizeof k->keys / sizeof k->keys[0]))
		k->keys[k->nkeys++] = key;
	/* Held shared beside export: its claims are ours to finish now. */
	k->d.shared = 1;
	if (bc_lock(&k->d) != 0)
		return -1;
	return bc_extend(&k->d, k->bid, mark_hold(k));
}

static void
mark_log(const struct marker *k, yajl_val rec, const char *status)
{
	const char *jid = wa_get_str(rec, "jid");
	char digits[64] = "";

	if (wa_log_level() < WA_LOG_VERBOSE)
		return;
	if (!jid || !wa_jid_user(jid, digits, sizeof digits))
		snprintf(digits, sizeof digits, "%s", wa_get_str(rec, "phone") ?
		    wa_get_str(rec, "phone") : "?");
	wa_log(WA_LOG_VERBOSE, "[WA_SEND] broadcast_id=%lld to=%s status=%s",
	    k->bid, digits, status);
}

/* One result record into an outcome. 0 taken, 1 skipped (said why). */
static int
mark_one(struct marker *k, const struct wa_rec *rec)
{
	yajl_val o = rec->obj;
	long long rid, bid, key;
	const char *st = wa_get_str(o, "status");
	struct bc_outcome *oc;
	struct wa_result res;

	if (rec->kind == WA_REC_BAD) {
		wa_err("%s:%lu: %s: %s", rec->file, rec->line, rec->errcode,
		    rec->errmsg);
		return 1;
	}
	if (wa_get_int(o, "recipient_id", &rid) != 0 ||
	    wa_get_int(o, "broadcast_id", &bid) != 0 ||
	    wa_get_int(o, "claim", &key) != 0 || !st) {
		wa_err("%s:%lu: not a result of wa-broadcast export (recipient_id, "
		    "broadcast_id, claim, status)", rec->file, rec->line);
		return 1;
	}
	if (bid != k->bid) {
		wa_err("%s:%lu: broadcast_id %lld is not %lld", rec->file, rec->line,
		    bid, k->bid);
		return 1;
	}
	if (use_key(k, key) != 0)
		return -1;
	/* wa-send's result, read back as the sender reported it: recorded
	 * as run records the sender's own report. */
	wa_result_read(o, &res);
	oc = &k->outs[k->nout];
	bc_outcome_of(oc, rid, &res, 0);
	if (res.status == WA_FAILED && !k->fatal &&
	    (res.error.cls == WA_CLASS_FATAL || res.error.halt)) {
		/* fatal (not the recipient's failure), or a failure every
		 * other recipient would share: the broadcast stops */
		k->fatal = 1;
		k->unreached = res.unreached > 0;
		bc_fatal_reason(k->reason, sizeof k->reason, &res.error);
	}
	mark_log(k, o, oc->end == BC_SENT ? "sent" : oc->end == BC_FAILED ?
	    "failed" : oc->end == BC_CANCELLED ? "cancelled" : "not_sent");
	if (++k->nout >= MARK_BATCH)
		return mark_flush(k) == 0 ? 0 : -1;
	return 0;
}

static int
mark_read(struct marker *k, char *const *files, int nfiles, size_t maxline)
{
	cookie_io_functions_t io = { .write = on_would_block };
	struct wa_reader *rd;
	struct wa_rec rec;
	FILE *hook;
	int st, rc = 0;

	hook = fopencookie(k, "w", io);
	rd = hook ? wa_reader_new(files, nfiles, maxline, hook) : NULL;
	if (!rd) {
		if (hook)
			fclose(hook);
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	setvbuf(hook, NULL, _IOFBF, 4096);
	while ((st = wa_reader_next(rd, &rec)) != 0) {
		if (st < 0) {
			wa_err("%s", wa_reader_error(rd));
			rc = WA_EXIT_IO;
			continue;
		}
		st = mark_one(k, &rec);
		wa_rec_free(&rec);
		if (st < 0)
			break;
		if (st > 0)
			k->bad++;
		else
			fputc('.', hook); /* something to commit before blocking */
		if (k->failed_db)
			break;
	}
	wa_reader_free(rd);
	fclose(hook);
	if (mark_flush(k) != 0 || k->failed_db) {
		wa_err("broadcast_id=%lld: recording results: %s", k->bid, k->d.err);
		return k->d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	return rc;
}

/* End of input: settle the claims that got no result. */
static int
mark_settle(struct marker *k)
{
	long long n;
	int i;

	/* Paused first: export claims nothing more once it is, so every claim
	 * it made is there for the requeue below. */
	if (k->fatal && bc_halt(&k->d, k->bid, k->reason, k->unreached) != 0)
		return -1;
	for (i = 0; i < k->nkeys; i++) {
		k->d.key = k->keys[i];
		if (bc_leftovers(&k->d, k->bid, k->fatal, &n) != 0)
			return -1;
		if (n && !k->fatal)
			wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld %lld "
			    "recipients handed to the sender got no result: marked "
			    "ambiguous for review", k->bid, n);
	}
	return 0;
}

int
wa_bcast_mark(const struct wa_bcast_run_opts *o, long long id,
    char *const *files, int nfiles, size_t maxline)
{
	struct marker *k = calloc(1, sizeof *k);
	struct bc_bcast b;
	char st[32] = "";
	yajl_val rec;
	int rc;

	if (!k) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	k->o = o;
	k->d.conn = *o->db;
	k->d.url = o->db_url;
	k->bid = id;
	rc = bc_load(&k->d, id, &b);
	if (rc <= 0) {
		if (rc == 0)
			wa_err("broadcast %lld: no such broadcast", id);
		else
			wa_err("%s", k->d.err);
		rc = rc == 0 ? WA_EXIT_DATA : k->d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		free(k);
		return rc;
	}
	bc_bcast_free(&b);
	rc = mark_read(k, files, nfiles, maxline);
	if (rc == WA_EXIT_TEMP || rc == WA_EXIT_SOFTWARE)
		goto out;
	if (mark_settle(k) != 0 || (!k->fatal &&
	    bc_finalize(&k->d, id, st, sizeof st) != 0)) {
		wa_err("broadcast_id=%lld: %s", id, k->d.err);
		rc = k->d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		goto out;
	}
	if (k->dropped)
		wa_warn("broadcast_id=%lld: %lld results for claims no longer held "
		    "(recorded before, or taken back): not recorded", id, k->dropped);
	if (bc_load(&k->d, id, &b) == 1) {
		wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld total=%lld "
		    "sent=%lld failed=%lld status=%s%s%s", id, b.total, b.sent,
		    b.failed, b.status, k->fatal ? " reason=" : "",
		    k->fatal ? k->reason : "");
		if (rc == WA_EXIT_OK && (!strcmp(b.status, "partial") ||
		    !strcmp(b.status, "failed")))
			rc = WA_EXIT_FAILED;
		bc_bcast_free(&b);
	}
	rec = bc_status_record(&k->d, id);
	if (rec) {
		if (o->emit(o->arg, rec) != 0)
			rc = WA_EXIT_IO;
		wa_val_free(rec);
	}
	if (k->fatal && rc != WA_EXIT_IO)
		rc = WA_EXIT_UNAVAIL;
	else if (k->bad && rc == WA_EXIT_OK)
		rc = WA_EXIT_DATA;
out:
	*o->db = k->d.conn;
	free(k);
	return rc;
}
