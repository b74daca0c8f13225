/* bc_ctl.c: an operator's hands on a broadcast: cancel, pause, resume,
 * retry, status and list. Each change is one statement or one transaction;
 * a worker running the broadcast notices within about a second (it polls
 * the row) and does the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "base/wa_utf8.h"
#include "record/wa_rec.h"

/* --- status records ------------------------------------------------------ */

static void
set_text(yajl_val o, const char *k, PGresult *r, int col)
{
	if (PQgetisnull(r, 0, col))
		wa_set_null(o, k);
	else
		wa_set_str(o, k, PQgetvalue(r, 0, col));
}

static long long
num(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? 0 : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

static yajl_val
new_double(double x)
{
	char buf[64];
	yajl_val v;

	/* A rate to one decimal is all anyone reads; JSON wants a number. */
	snprintf(buf, sizeof buf, "%.1f", x);
	v = wa_json_parse(buf, NULL, 0);
	return v ? v : wa_new_int((long long)x);
}

/* Why recipients failed, the five most frequent (error code, class)
 * first: "errors":[{"code","class","count"}], [] when none did. The
 * first thing to look at after a run; `recipients --class` lists who. */
static int
add_errors(struct bc_db *d, yajl_val o, const char *const *v)
{
	static const char sql[] =
	    "SELECT coalesce(error_code, 'unknown'), error_class, count(*)"
	    " FROM whatsapp_broadcast_recipients"
	    " WHERE broadcast_id = $1 AND status = 'failed'"
	    " GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 5";
	PGresult *r = bc_q(d, sql, 1, v);
	yajl_val a, e;
	int i;

	if (!r)
		return -1;
	a = wa_new_array();
	for (i = 0; i < PQntuples(r); i++) {
		e = wa_new_object();
		wa_set_str(e, "code", PQgetvalue(r, i, 0));
		if (PQgetisnull(r, i, 1))
			wa_set_null(e, "class");
		else
			wa_set_str(e, "class", PQgetvalue(r, i, 1));
		wa_set_int(e, "count", strtoll(PQgetvalue(r, i, 2), NULL, 10));
		wa_array_push(a, e);
	}
	PQclear(r);
	wa_set(o, "errors", a);
	return 0;
}

#define TS(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS')"

yajl_val
bc_status_record(struct bc_db *d, long long id)
{
	static const char sql_b[] =
	    "SELECT b.business_id, b.name, b.status, b.pause_reason,"
	    " coalesce(b.total_recipients, 0), coalesce(b.sent_count, 0),"
	    " coalesce(b.failed_count, 0), coalesce(b.cancelled_count, 0),"
	    " coalesce(b.processed_count, 0), coalesce(b.cancel_requested, false),"
	    " " TS("b.created_at") ", " TS("b.started_at") ", " TS("b.completed_at") ","
	    " least(60, greatest(1, extract(epoch FROM now() - b.started_at)))::float8,"
	    " coalesce(b.last_processed_recipient_id, 0)"
	    " FROM whatsapp_broadcasts b WHERE b.id = $1";
	static const char sql_r[] =
	    "SELECT count(*) FILTER (WHERE status = 'queued'),"
	    " count(*) FILTER (WHERE status = 'processing'),"
	    " count(*) FILTER (WHERE status = 'failed' AND error_class = 'ambiguous'),"
	    " count(*) FILTER (WHERE status IN ('sent', 'delivered')"
	    "  AND sent_at > now() - interval '60 seconds')"
	    " FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1";
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, id) };
	PGresult *b, *r;
	yajl_val o;
	double window, rate;
	long long left;

	d->missing = 0;
	b = bc_q(d, sql_b, 1, v);
	if (!b)
		return NULL;
	if (PQntuples(b) != 1) {
		PQclear(b);
		snprintf(d->err, sizeof d->err, "broadcast %lld: no such broadcast", id);
		d->missing = 1;
		return NULL;
	}
	r = bc_q(d, sql_r, 1, v);
	if (!r) {
		PQclear(b);
		return NULL;
	}
	o = wa_new_object();
	wa_set_int(o, "broadcast_id", id);
	wa_set_int(o, "business_id", num(b, 0));
	set_text(o, "name", b, 1);
	set_text(o, "status", b, 2);
	wa_set_int(o, "total", num(b, 4));
	wa_set_int(o, "queued", num(r, 0));
	wa_set_int(o, "processing", num(r, 1));
	wa_set_int(o, "sent", num(b, 5));
	wa_set_int(o, "failed", num(b, 6));
	wa_set_int(o, "ambiguous", num(r, 2));
	wa_set_int(o, "cancelled", num(b, 7));
	wa_set_int(o, "processed", num(b, 8));
	window = PQgetisnull(b, 0, 13) ? 0 : strtod(PQgetvalue(b, 0, 13), NULL);
	rate = window > 0 ? num(r, 3) / window : 0;
	left = num(r, 0) + num(r, 1);
	wa_set(o, "rate", new_double(rate));
	if (rate > 0 && left > 0)
		wa_set_int(o, "eta_seconds", (long long)(left / rate + 0.5));
	else
		wa_set(o, "eta_seconds", left ? wa_new_null() : wa_new_int(0));
	wa_set_int(o, "last_processed_recipient_id", num(b, 14));
	if (!PQgetisnull(b, 0, 3))
		set_text(o, "pause_reason", b, 3);
	if (PQgetvalue(b, 0, 9)[0] == 't')
		wa_set_bool(o, "cancel_requested", 1);
	set_text(o, "created_at", b, 10);
	set_text(o, "started_at", b, 11);
	set_text(o, "completed_at", b, 12);
	PQclear(b);
	PQclear(r);
	bc_sched_status(d, id, o);
	if (add_errors(d, o, v) != 0) {
		wa_val_free(o);
		return NULL;
	}
	return o;
}

/* The broadcast's status, or an error when there is none. */
static int
get_status(struct bc_db *d, long long id, char *st, size_t len, int *cancel)
{
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, id) };
	PGresult *r = bc_q(d, "SELECT status, coalesce(cancel_requested, false)"
	    " FROM whatsapp_broadcasts WHERE id = $1", 1, v);

	if (!r)
		return bc_db_fail(d);
	if (PQntuples(r) != 1) {
		PQclear(r);
		wa_err("broadcast %lld: no such broadcast", id);
		return WA_EXIT_DATA;
	}
	snprintf(st, len, "%s", PQgetvalue(r, 0, 0));
	if (cancel)
		*cancel = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	return 0;
}

static int
is_final(const char *st)
{
	return !strcmp(st, "completed") || !strcmp(st, "partial") ||
	    !strcmp(st, "failed") || !strcmp(st, "cancelled");
}

static int
done(struct bc_db *d, long long id, yajl_val *out, int rc)
{
	*out = bc_status_record(d, id);
	if (!*out)
		return bc_db_fail(d);
	return rc;
}

/* --- cancel, pause, resume ----------------------------------------------- */

int
wa_bcast_cancel(PGconn *db, long long id, yajl_val *out)
{
	struct bc_db d = { .conn = db };
	char st[32], k[32], fin[32] = "";
	const char *v[1] = { bc_ll(k, sizeof k, id) };
	long long rq, amb, n;
	int rc;

	*out = NULL;
	rc = get_status(&d, id, st, sizeof st, NULL);
	if (rc)
		return rc;
	if (!strcmp(st, "cancelled"))
		return done(&d, id, out, WA_EXIT_OK);
	if (is_final(st)) {
		wa_err("broadcast %lld is %s: nothing left to cancel", id, st);
		return WA_EXIT_DATA;
	}
	/* One transaction: the flag, the claims of dead workers, the queued
	 * rows; a live worker sees the flag and cancels what it holds. */
	if (bc_cmd(&d, "BEGIN", 0, NULL) != 0 ||
	    bc_cmd(&d, "UPDATE whatsapp_broadcasts SET cancel_requested = true,"
	    " stopped_at = coalesce(stopped_at, now()), updated_at = now()"
	    " WHERE id = $1", 1, v) != 0 ||
	    bc_recover(&d, id, &rq, &amb) != 0 ||
	    bc_cancel_rows(&d, id, &n) != 0 ||
	    bc_finalize(&d, id, fin, sizeof fin) != 0 ||
	    bc_cmd(&d, "COMMIT", 0, NULL) != 0) {
		rc = bc_db_fail(&d);
		if (!d.lost)
			bc_cmd(&d, "ROLLBACK", 0, NULL);
		return rc;
	}
	wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld cancel requested: "
	    "%lld recipients cancelled%s", id, n, fin[0] ? "" :
	    ", the sends in flight finish first");
	return done(&d, id, out, WA_EXIT_OK);
}

int
wa_bcast_pause(PGconn *db, long long id, const char *reason, yajl_val *out)
{
	struct bc_db d = { .conn = db };
	char st[32];
	int rc, cancel;

	*out = NULL;
	if (reason && !bc_utf8_ok(reason, 0))
		return wa_usage_error("--reason: not UTF-8 text");
	rc = get_status(&d, id, st, sizeof st, &cancel);
	if (rc)
		return rc;
	if (!strcmp(st, "paused"))
		return done(&d, id, out, WA_EXIT_OK);
	if (is_final(st) || cancel) {
		wa_err("broadcast %lld is %s: nothing to pause", id,
		    cancel ? "being cancelled" : st);
		return WA_EXIT_DATA;
	}
	if (bc_pause(&d, id, reason ? reason : "paused by operator") != 0)
		return bc_db_fail(&d);
	wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld paused", id);
	return done(&d, id, out, WA_EXIT_OK);
}

int
wa_bcast_resume(PGconn *db, long long id, yajl_val *out)
{
	struct bc_db d = { .conn = db };
	char st[32], k[32], now[32];
	const char *v[2] = { bc_ll(k, sizeof k, id), NULL };
	int rc, cancel;

	*out = NULL;
	rc = get_status(&d, id, st, sizeof st, &cancel);
	if (rc)
		return rc;
	if (!strcmp(st, "queued") || !strcmp(st, "running") || !strcmp(st, "scheduled"))
		return done(&d, id, out, WA_EXIT_OK);
	if (strcmp(st, "paused") != 0 || cancel) {
		wa_err("broadcast %lld is %s: only a paused broadcast resumes", id,
		    cancel ? "being cancelled" : st);
		return WA_EXIT_DATA;
	}
	/* One paused before its time goes back to waiting for it. */
	v[1] = bc_epoch(now, sizeof now, bc_wall());
	if (bc_cmd(&d, "UPDATE whatsapp_broadcasts SET status = CASE WHEN"
	    " started_at IS NULL AND scheduled_at > to_timestamp($2::bigint)"
	    " THEN 'scheduled' ELSE 'queued' END,"
	    " pause_reason = NULL, updated_at = now() WHERE id = $1 AND status = 'paused'", 2, v) != 0)
		return bc_db_fail(&d);
	wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld resumed: queued "
	    "for the next run", id);
	return done(&d, id, out, WA_EXIT_OK);
}

/* --- retry ---------------------------------------------------------------- */

int
wa_bcast_retry(PGconn *db, long long id, int failed, int ambiguous,
    yajl_val *out)
{
	/* Rows that failed for good reasons of their own (a number that is no
	 * number) would fail again: only sendable rows go back. */
	static const char sql[] =
	    "WITH u AS (UPDATE whatsapp_broadcast_recipients r SET"
	    "  status = 'queued', attempts = 0, error_code = NULL,"
	    "  error_class = NULL, error_message = NULL, next_attempt_at = NULL,"
	    "  claimed_by = NULL, claimed_until = NULL, sending_since = NULL,"
	    "  updated_at = now()"
	    "  WHERE r.broadcast_id = $1 AND r.status = 'failed'"
	    "  AND r.error_code IS DISTINCT FROM 'invalid_phone'"
	    "  AND r.error_code IS DISTINCT FROM 'unsupported_jid'"
	    "  AND r.error_code IS DISTINCT FROM 'missing_phone'"
	    "  AND r.error_code IS DISTINCT FROM 'bad_json'"
	    "  AND r.error_code IS DISTINCT FROM 'line_too_long'"
	    "  AND ((r.error_class = 'ambiguous' AND $3::boolean)"
	    "   OR (r.error_class IS DISTINCT FROM 'ambiguous' AND $2::boolean))"
	    "  RETURNING r.id)"
	    " UPDATE whatsapp_broadcasts b SET updated_at = now(),"
	    "  failed_count = coalesce(b.failed_count, 0) - (SELECT count(*) FROM u),"
	    "  processed_count = coalesce(b.processed_count, 0) - (SELECT count(*) FROM u),"
	    "  status = CASE WHEN (SELECT count(*) FROM u) > 0"
	    "   AND b.status IN ('completed', 'partial', 'failed') THEN 'queued'"
	    "   ELSE b.status END,"
	    "  completed_at = CASE WHEN (SELECT count(*) FROM u) > 0 THEN NULL"
	    "   ELSE b.completed_at END"
	    " WHERE b.id = $1 RETURNING (SELECT count(*) FROM u)";
	struct bc_db d = { .conn = db };
	char st[32], k[32];
	const char *v[3] = { bc_ll(k, sizeof k, id), failed ? "true" : "false",
		ambiguous ? "true" : "false" };
	PGresult *r;
	long long n;
	int rc, cancel;

	*out = NULL;
	rc = get_status(&d, id, st, sizeof st, &cancel);
	if (rc)
		return rc;
	if (cancel) {
		wa_err("broadcast %lld was cancelled: nothing is retried", id);
		return WA_EXIT_DATA;
	}
	r = bc_q(&d, sql, 3, v);
	if (!r)
		return bc_db_fail(&d);
	n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld retry: %lld "
	    "recipients queued again", id, n);
	rc = done(&d, id, out, WA_EXIT_OK);
	if (*out)
		wa_set_int(*out, "requeued", n);
	return rc;
}

/* --- status and list ------------------------------------------------------ */

/* Who sends each broadcast and how fast that sender goes now: the sum of
 * the rates of its running broadcasts, each as the status record has it
 * (its sends of the last 60 s). From what was recorded, not from the
 * configured --rate, which only the workers know. */
struct senders {
	int unread;          /* the rates could not be read */
	struct bc_senders *s;
	struct { char key[96]; double rate; } *r;
	size_t n;
};

static int
senders_load(struct bc_db *d, const struct wa_cfg *cfg, struct senders *ss)
{
	static const char sql[] =
	    "SELECT b.business_id, (SELECT count(*) FROM whatsapp_broadcast_recipients r"
	    "  WHERE r.broadcast_id = b.id AND r.status IN ('sent', 'delivered')"
	    "  AND r.sent_at > now() - interval '60 seconds')"
	    " / least(60, greatest(1, extract(epoch FROM now() - b.started_at)))::float8"
	    " FROM whatsapp_broadcasts b WHERE b.status = 'running'";
	PGresult *r;
	const char *key;
	size_t j;
	int i;

	memset(ss, 0, sizeof *ss);
	ss->s = bc_senders_new(cfg);
	if (!ss->s) {
		snprintf(d->err, sizeof d->err, "out of memory");
		return -1;
	}
	r = bc_q(d, sql, 0, NULL);
	if (!r) {
		ss->unread = 1;
		return -1;
	}
	ss->r = calloc((size_t)PQntuples(r) + 1, sizeof *ss->r);
	for (i = 0; ss->r && i < PQntuples(r); i++) {
		key = PQgetisnull(r, i, 0) ? NULL :
		    bc_sender_of(ss->s, strtoll(PQgetvalue(r, i, 0), NULL, 10));
		if (!key)
			continue;
		for (j = 0; j < ss->n && strcmp(ss->r[j].key, key); j++)
			;
		if (j == ss->n)
			snprintf(ss->r[ss->n++].key, sizeof ss->r[0].key, "%s", key);
		ss->r[j].rate += PQgetisnull(r, i, 1) ? 0 : strtod(PQgetvalue(r, i, 1), NULL);
	}
	PQclear(r);
	return 0;
}

static void
senders_free(struct senders *ss)
{
	bc_senders_free(ss->s);
	free(ss->r);
}

/* "sender" (null when it cannot be known) and "sender_rate". */
static void
add_sender(struct senders *ss, yajl_val o)
{
	long long biz;
	const char *key = NULL;
	double rate = 0;
	size_t j;

	if (wa_get_int(o, "business_id", &biz) == 0)
		key = bc_sender_of(ss->s, biz);
	if (key)
		wa_set_str(o, "sender", key);
	else
		wa_set_null(o, "sender");
	for (j = 0; key && j < ss->n; j++)
		if (!strcmp(ss->r[j].key, key))
			rate = ss->r[j].rate;
	if (ss->unread)
		wa_set_null(o, "sender_rate");
	else
		wa_set(o, "sender_rate", new_double(rate));
}

static int
emit_rec(struct senders *ss, yajl_val o, wa_bcast_emit_fn emit, void *arg)
{
	int rc;

	add_sender(ss, o);
	rc = emit(arg, o) != 0 ? WA_EXIT_IO : WA_EXIT_OK;
	wa_val_free(o);
	return rc;
}

int
wa_bcast_status(PGconn *db, const struct wa_cfg *cfg, long long business_id,
    const long long *ids, int nids, wa_bcast_emit_fn emit, void *arg)
{
	struct bc_db d = { .conn = db };
	struct senders ss;
	char k[32];
	const char *v[1] = { business_id > 0 ? bc_ll(k, sizeof k, business_id) : NULL };
	PGresult *r;
	yajl_val o;
	int i, rc = WA_EXIT_OK;

	/* Without the senders' rates the records are still worth showing. */
	if (senders_load(&d, cfg, &ss) != 0) {
		rc = bc_db_fail(&d);
		if (d.lost || !ss.s) {
			senders_free(&ss);
			return rc;
		}
	}
	if (nids == 0) {
		r = bc_q(&d, "SELECT id FROM whatsapp_broadcasts"
		    " WHERE ($1::bigint IS NULL OR business_id = $1) ORDER BY id", 1, v);
		if (!r) {
			senders_free(&ss);
			return bc_db_fail(&d);
		}
		for (i = 0; i < PQntuples(r); i++) {
			o = bc_status_record(&d, strtoll(PQgetvalue(r, i, 0), NULL, 10));
			if (!o || emit_rec(&ss, o, emit, arg) != WA_EXIT_OK) {
				rc = o ? WA_EXIT_IO : bc_db_fail(&d);
				break;
			}
		}
		PQclear(r);
		senders_free(&ss);
		return rc;
	}
	for (i = 0; i < nids; i++) {
		o = bc_status_record(&d, ids[i]);
		if (!o) {
			wa_err("%s", d.err);
			if (d.lost) {
				rc = WA_EXIT_TEMP;
				break;
			}
			/* An unknown ID is the caller's; any other error ours. */
			if (!d.missing)
				rc = WA_EXIT_SOFTWARE;
			else if (rc == WA_EXIT_OK)
				rc = WA_EXIT_DATA;
			continue;
		}
		if (emit_rec(&ss, o, emit, arg) != WA_EXIT_OK) {
			rc = WA_EXIT_IO;
			break;
		}
	}
	senders_free(&ss);
	return rc;
}

int
wa_bcast_list(PGconn *db, const struct wa_cfg *cfg, long long business_id,
    wa_bcast_emit_fn emit, void *arg)
{
	/* The rate and what is left are counted for running broadcasts only:
	 * a list of every broadcast reads no one else's recipients. */
	static const char sql[] =
	    "SELECT id, business_id, name, status, coalesce(total_recipients, 0),"
	    " coalesce(sent_count, 0), coalesce(failed_count, 0),"
	    " coalesce(cancelled_count, 0), " TS("created_at") ", pause_reason,"
	    " CASE WHEN status = 'running' THEN (SELECT count(*)"
	    "  FROM whatsapp_broadcast_recipients r WHERE r.broadcast_id = b.id"
	    "  AND r.status IN ('sent', 'delivered')"
	    "  AND r.sent_at > now() - interval '60 seconds')"
	    "  / least(60, greatest(1, extract(epoch FROM now() - started_at)))::float8"
	    "  ELSE 0 END,"
	    " CASE WHEN status = 'running' THEN (SELECT count(*)"
	    "  FROM whatsapp_broadcast_recipients r WHERE r.broadcast_id = b.id"
	    "  AND r.status IN ('queued', 'processing')) END"
	    " FROM whatsapp_broadcasts b WHERE ($1::bigint IS NULL OR business_id = $1)"
	    " ORDER BY id";
	static const char *const keys[] = { "broadcast_id", "business_id", "name",
		"status", "total", "sent", "failed", "cancelled", "created_at",
		"pause_reason" };
	struct bc_db d = { .conn = db };
	struct senders ss;
	char k[32];
	const char *v[1] = { business_id > 0 ? bc_ll(k, sizeof k, business_id) : NULL };
	PGresult *r;
	yajl_val o;
	double rate;
	long long left;
	int i, j, rc = WA_EXIT_OK;

	if (senders_load(&d, cfg, &ss) != 0 || !(r = bc_q(&d, sql, 1, v))) {
		senders_free(&ss);
		return bc_db_fail(&d);
	}
	for (i = 0; i < PQntuples(r) && rc == WA_EXIT_OK; i++) {
		o = wa_new_object();
		for (j = 0; j < 10; j++) {
			if (PQgetisnull(r, i, j)) {
				if (j != 9)
					wa_set_null(o, keys[j]);
			} else if (j == 2 || j == 3 || j == 8 || j == 9)
				wa_set_str(o, keys[j], PQgetvalue(r, i, j));
			else
				wa_set_int(o, keys[j], strtoll(PQgetvalue(r, i, j), NULL, 10));
		}
		rate = strtod(PQgetvalue(r, i, 10), NULL);
		wa_set(o, "rate", new_double(rate));
		/* Only a running broadcast's is known here; a finished one's is 0. */
		left = strtoll(PQgetvalue(r, i, 11), NULL, 10);
		if (!PQgetisnull(r, i, 11) && rate > 0 && left > 0)
			wa_set_int(o, "eta_seconds", (long long)(left / rate + 0.5));
		else if (!PQgetisnull(r, i, 11) ? left == 0 :
		    is_final(PQgetvalue(r, i, 3)))
			wa_set_int(o, "eta_seconds", 0);
		else
			wa_set_null(o, "eta_seconds");
		rc = emit_rec(&ss, o, emit, arg);
	}
	PQclear(r);
	senders_free(&ss);
	return rc;
}

/* --- table ---------------------------------------------------------------- */

static char *
cell(yajl_val rec, const char *col)
{
	yajl_val v = wa_get(rec, col);

	if (!v || YAJL_IS_NULL(v))
		return strdup("-");
	if (YAJL_IS_STRING(v))
		return strdup(v->u.string);
	return wa_json_dump(v, NULL);
}

/* Bytes of the first cols characters of s (one column each: Hebrew as
 * Latin; wide scripts are rare in these tables). */
static size_t
fit_cols(const char *s, size_t cols)
{
	size_t i = 0;

	while (s[i] && cols) {
		i++;
		while ((s[i] & 0xc0) == 0x80)
			i++;
		cols--;
	}
	return i;
}

/* A cell cut to w columns, at a character, with "…" for what is cut. */
static void
put_cell(struct wa_buf *out, const char *s, size_t w, int right)
{
	size_t len = wa_utf8_len(s), n = len, b;

	if (len > w)
		n = w ? w - 1 : 0;
	b = fit_cols(s, n);
	if (right)
		wa_buf_fmt(out, "%*s", (int)(w - (len > w ? w : len)), "");
	wa_buf_fmt(out, "%.*s%s", (int)b, s, len > w && w ? "\xe2\x80\xa6" : "");
	if (!right)
		wa_buf_fmt(out, "%*s", (int)(w - (len > w ? w : len)), "");
}

/* A number, or text made of numbers ("12/40", "1:02:03", "4d03h"): to the
 * right. A phone number is text. */
static int
numeric(yajl_val v, const char *s)
{
	if (YAJL_IS_NUMBER(v))
		return 1;
	if (!v || !YAJL_IS_STRING(v) || !s || *s < '0' || *s > '9')
		return 0;
	return s[strspn(s, "0123456789/:dh")] == '\0' && strpbrk(s, "/:dh");
}

static size_t
row_width(const size_t *w, size_t ncol)
{
	size_t c, total = 0;

	for (c = 0; c < ncol; c++)
		total += w[c] + (c ? 2 : 0);
	return total;
}

/* Make the row fit width: the text columns give way, the last first, down
 * to 10 columns each; then the widest, down to its heading (at least 4).
 * Numbers are never cut. */
static void
fit_width(size_t *w, const int *text, const char *const *cols, size_t ncol,
    size_t width)
{
	size_t c, min, *big;

	for (c = ncol; c-- > 0 && row_width(w, ncol) > width;)
		while (text[c] && w[c] > 10 && row_width(w, ncol) > width)
			w[c]--;
	while (row_width(w, ncol) > width) {
		big = NULL;
		for (c = 0; c < ncol; c++) {
			min = wa_utf8_len(cols[c]) > 4 ? wa_utf8_len(cols[c]) : 4;
			if (text[c] && w[c] > min && (!big || w[c] > *big))
				big = &w[c];
		}
		if (!big)
			break;
		(*big)--;
	}
}

char *
wa_bcast_table(yajl_val *recs, size_t n, const char *const *cols)
{
	return wa_bcast_table_fit(recs, n, cols, 0);
}

char *
wa_bcast_table_fit(yajl_val *recs, size_t n, const char *const *cols,
    size_t width)
{
	struct wa_buf out = { 0 };
	size_t ncol = 0, c, i, w[32] = { 0 }, len;
	int text[32] = { 0 };
	char *s;

	while (cols[ncol] && ncol < 32)
		ncol++;
	for (c = 0; c < ncol; c++) {
		w[c] = wa_utf8_len(cols[c]);
		for (i = 0; i < n; i++) {
			yajl_val v = wa_get(recs[i], cols[c]);

			s = cell(recs[i], cols[c]);
			len = s ? wa_utf8_len(s) : 0;
			if (len > w[c])
				w[c] = len > 40 ? 40 : len;
			if (s && strcmp(s, "-") && !numeric(v, s))
				text[c] = 1;
			free(s);
		}
	}
	if (width)
		fit_width(w, text, cols, ncol, width);
	for (c = 0; c < ncol; c++) {
		if (c)
			wa_buf_str(&out, "  ");
		put_cell(&out, cols[c], w[c], 0);
	}
	while (out.len && out.p[out.len - 1] == ' ')
		out.p[--out.len] = '\0';
	wa_buf_str(&out, "\n");
	for (i = 0; i < n; i++) {
		for (c = 0; c < ncol; c++) {
			yajl_val v = wa_get(recs[i], cols[c]);

			s = cell(recs[i], cols[c]);
			if (c)
				wa_buf_str(&out, "  ");
			/* Numbers to the right, words to the left. */
			put_cell(&out, s ? s : "", w[c], numeric(v, s));
			free(s);
		}
		/* No trailing blanks. */
		while (out.len && out.p[out.len - 1] == ' ')
			out.p[--out.len] = '\0';
		wa_buf_str(&out, "\n");
	}
	if (out.oom) {
		wa_buf_free(&out);
		return NULL;
	}
	return out.p ? out.p : strdup("");
}
