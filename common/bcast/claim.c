/* bc_claim.c: claiming recipients, recording what became of them, and
 * recovering the claims of workers that are gone.
 *
 * Each statement here is a single SQL statement, so it is its own
 * transaction: recipient rows and the broadcast's counters change together
 * or not at all. A recipient is counted only when the UPDATE of its row
 * actually happened (RETURNING), and that UPDATE requires the row to be
 * still claimed by this worker: a second report of the same outcome, or a
 * report for a claim recovered by someone else, changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "record/wa_rec.h"
#include "base/wa_cli.h"
#include "send/wa_send.h"

/* Worker keys held: advisory locks granted on this database. A bigint
 * lock shows in pg_locks as classid (high 32 bits) and objid (low),
 * objsubid 1. */
#define HELD_KEY "((l.classid::bigint << 32) | l.objid::bigint)"
#define HELD_LOCKS \
	" FROM pg_locks l" \
	" WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted" \
	" AND l.database = (SELECT oid FROM pg_database" \
	"  WHERE datname = current_database())"
#define LIVE_KEYS "SELECT " HELD_KEY HELD_LOCKS

/* Counters moved by a CTE "u" of changed rows (id, status, was): was is
 * the status before, 'processing' or 'failed' (an interrupted send whose
 * real outcome arrived late). */
#define COUNTERS_FROM_U \
	" updated_at = now()," \
	" sent_count = coalesce(b.sent_count, 0)" \
	"  + (SELECT count(*) FROM u WHERE status = 'sent')," \
	" failed_count = coalesce(b.failed_count, 0)" \
	"  + (SELECT count(*) FROM u WHERE status = 'failed' AND was <> 'failed')" \
	"  - (SELECT count(*) FROM u WHERE was = 'failed' AND status <> 'failed')," \
	" cancelled_count = coalesce(b.cancelled_count, 0)" \
	"  + (SELECT count(*) FROM u WHERE status = 'cancelled' AND was <> 'cancelled')," \
	" processed_count = coalesce(b.processed_count, 0)" \
	"  + (SELECT count(*) FROM u WHERE was IN ('processing', 'queued')" \
	"     AND status IN ('sent', 'failed', 'cancelled'))," \
	" last_processed_recipient_id = greatest(" \
	"  coalesce(b.last_processed_recipient_id, 0), coalesce((SELECT max(id)" \
	"  FROM u WHERE status IN ('sent', 'failed', 'cancelled')), 0))"

#define RETURN_COUNTS \
	" RETURNING b.total_recipients, b.sent_count, b.failed_count," \
	" b.cancelled_count, b.processed_count, (SELECT count(*) FROM u)"

static void
read_counts(PGresult *r, struct bc_counts *c)
{
	int i;
	long long *f[6];

	if (!c)
		return;
	f[0] = &c->total;
	f[1] = &c->sent;
	f[2] = &c->failed;
	f[3] = &c->cancelled;
	f[4] = &c->processed;
	f[5] = &c->recorded;
	for (i = 0; i < 6; i++)
		*f[i] = PQntuples(r) && !PQgetisnull(r, 0, i) ?
		    strtoll(PQgetvalue(r, 0, i), NULL, 10) : 0;
}

/* Run a statement ending in RETURN_COUNTS; the rows it changed go into
 * *n (when n is not NULL). */
static int
run_counted(struct bc_db *d, const char *sql, int nv, const char *const *v,
    long long *n)
{
	struct bc_counts c;
	PGresult *r = bc_q(d, sql, nv, v);

	if (!r)
		return -1;
	read_counts(r, &c);
	PQclear(r);
	if (n)
		*n = c.recorded;
	return 0;
}

int
bc_recover(struct bc_db *d, long long bid, long long *requeued,
    long long *ambiguous)
{
	/* Dead: no session holds the key's lock and, for a pipeline claim
	 * (key < 0), its lease is over. A claim with no key at all is the old
	 * system's 'processing' left by a crash: it may have gone out. */
	static const char sql[] =
	    "WITH live AS (" LIVE_KEYS "),"
	    " dead AS (SELECT r.id,"
	    "   (r.sending_since IS NOT NULL OR r.claimed_by IS NULL) AS inflight"
	    "  FROM whatsapp_broadcast_recipients r"
	    "  WHERE r.broadcast_id = $1 AND r.status = 'processing'"
	    "  AND r.claimed_by IS DISTINCT FROM $2::bigint"
	    "  AND (r.claimed_by IS NULL OR ((r.claimed_by > 0"
	    "   OR r.claimed_until IS NULL OR r.claimed_until < now())"
	    "   AND r.claimed_by NOT IN (SELECT * FROM live)))"
	    "  FOR UPDATE OF r SKIP LOCKED),"
	    " u AS (UPDATE whatsapp_broadcast_recipients r SET"
	    "  status = CASE WHEN dead.inflight THEN 'failed' ELSE 'queued' END,"
	    "  error_code = CASE WHEN dead.inflight THEN 'interrupted'"
	    "   ELSE r.error_code END,"
	    "  error_class = CASE WHEN dead.inflight THEN 'ambiguous'"
	    "   ELSE r.error_class END,"
	    "  error_message = CASE WHEN dead.inflight THEN 'the send was in"
	    " flight when its worker stopped: it may have been delivered;"
	    " review, then retry --ambiguous' ELSE r.error_message END,"
	    "  sending_since = CASE WHEN dead.inflight THEN r.sending_since END,"
	    "  claimed_until = NULL,"
	    "  claimed_by = CASE WHEN dead.inflight THEN r.claimed_by END,"
	    "  updated_at = now()"
	    "  FROM dead WHERE r.id = dead.id"
	    "  RETURNING r.id, r.status, 'processing'::text AS was)"
	    " UPDATE whatsapp_broadcasts b SET" COUNTERS_FROM_U
	    " WHERE b.id = $1"
	    " RETURNING (SELECT count(*) FROM u WHERE status = 'queued'),"
	    " (SELECT count(*) FROM u WHERE status = 'failed')";
	char b1[32], b2[32];
	const char *v[2] = { bc_ll(b1, sizeof b1, bid), bc_ll(b2, sizeof b2, d->key) };
	PGresult *r = bc_q(d, sql, 2, v);

	if (!r)
		return -1;
	*requeued = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	*ambiguous = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 1), NULL, 10) : 0;
	PQclear(r);
	return 0;
}

int
bc_claim(struct bc_db *d, long long bid, int max, double lease, int handed,
    struct bc_recip *rc, int *opted)
{
	/* Nothing is claimed once the broadcast is paused or cancelled: a
	 * worker or export that has not yet seen it takes no more.
	 * A recipient whose number the business's opt-outs hold now (it
	 * opted out after create) is not claimed but cancelled, opted_out,
	 * and counted, in the same statement: the counters change only when
	 * one was (b), so a claim without one leaves the broadcast's row
	 * alone. Claimed rows come first in the result, then those. */
	static const char sql[] =
	    "WITH c AS MATERIALIZED (SELECT r.id, o.number IS NOT NULL AS opted"
	    "  FROM whatsapp_broadcast_recipients r LEFT JOIN wa_optouts o"
	    "  ON o.business_id = r.business_id AND o.number = r.phone"
	    "  WHERE r.broadcast_id = $1 AND r.status = 'queued'"
	    "  AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= now())"
	    "  AND EXISTS (SELECT 1 FROM whatsapp_broadcasts w WHERE w.id = $1"
	    "   AND w.status IN ('pending', 'queued', 'running')"
	    "   AND NOT coalesce(w.cancel_requested, false))"
	    "  ORDER BY r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED),"
	    " u AS (UPDATE whatsapp_broadcast_recipients r SET"
	    "  status = CASE WHEN c.opted THEN 'cancelled' ELSE 'processing' END,"
	    "  claimed_by = CASE WHEN c.opted THEN NULL ELSE $3::bigint END,"
	    "  claimed_until = CASE WHEN c.opted THEN NULL"
	    "   ELSE now() + $4::double precision * interval '1 second' END,"
	    "  sending_since = CASE WHEN $5::boolean AND NOT c.opted THEN now() END,"
	    "  error_code = CASE WHEN c.opted THEN 'opted_out' ELSE r.error_code END,"
	    "  error_class = CASE WHEN c.opted THEN NULL ELSE r.error_class END,"
	    "  error_message = CASE WHEN c.opted THEN 'the number is in the"
	    " business''s opt-outs (opted out after create)'"
	    "   ELSE r.error_message END,"
	    "  next_attempt_at = CASE WHEN c.opted THEN NULL ELSE r.next_attempt_at END,"
	    "  updated_at = now()"
	    "  FROM c WHERE r.id = c.id"
	    "  RETURNING r.id, r.phone, r.jid, coalesce(r.attempts, 0), r.lead_id,"
	    "  CASE WHEN c.opted THEN NULL ELSE r.fields::text END AS fields,"
	    "  r.status, 'queued'::text AS was),"
	    " b AS (UPDATE whatsapp_broadcasts b SET" COUNTERS_FROM_U
	    "  WHERE b.id = $1 AND EXISTS (SELECT 1 FROM u WHERE status = 'cancelled'))"
	    " SELECT * FROM u ORDER BY status = 'cancelled', id";
	char b1[32], b2[32], b3[32], b4[32];
	const char *v[5];
	PGresult *r;
	int i, n, claimed = 0;

	snprintf(b4, sizeof b4, "%.3f", lease);
	v[0] = bc_ll(b1, sizeof b1, bid);
	v[1] = bc_ll(b2, sizeof b2, max);
	v[2] = bc_ll(b3, sizeof b3, d->key);
	v[3] = b4;
	v[4] = handed ? "true" : "false";
	*opted = 0;
	r = bc_qp(d, sql, 5, v);
	if (!r)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n && i < max; i++) {
		bc_recip_read(r, i, &rc[i]);
		if (strcmp(PQgetvalue(r, i, 6), "cancelled") == 0)
			(*opted)++;
		else
			claimed++;
	}
	PQclear(r);
	return claimed;
}

void
bc_recip_read(const PGresult *r, int i, struct bc_recip *rc)
{
	memset(rc, 0, sizeof *rc);
	rc->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	snprintf(rc->phone, sizeof rc->phone, "%s", PQgetvalue(r, i, 1));
	snprintf(rc->jid, sizeof rc->jid, "%s", PQgetvalue(r, i, 2));
	rc->attempts = atoi(PQgetvalue(r, i, 3));
	rc->lead_id = PQgetisnull(r, i, 4) ? 0 :
	    strtoll(PQgetvalue(r, i, 4), NULL, 10);
	/* jsonb written by create: an object, or NULL */
	rc->fields = PQgetisnull(r, i, 5) ? NULL :
	    wa_json_parse(PQgetvalue(r, i, 5), NULL, 0);
}

/* ids as a PostgreSQL array literal: "{1,2,3}" (integers only). */
static void
id_array(struct wa_buf *b, const long long *ids, int n)
{
	int i;

	wa_buf_str(b, "{");
	for (i = 0; i < n; i++)
		wa_buf_fmt(b, i ? ",%lld" : "%lld", ids[i]);
	wa_buf_str(b, "}");
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* Keep, in their order, the ids of ids[] that are in got[] (sorted);
 * returns how many. */
static int
keep_ids(long long *ids, int n, long long *got, int m)
{
	int i, k;

	qsort(got, (size_t)m, sizeof *got, cmp_ll);
	for (i = k = 0; i < n; i++)
		if (m && bsearch(&ids[i], got, (size_t)m, sizeof *got, cmp_ll))
			ids[k++] = ids[i];
	return k;
}

/* An int[] text ("{1,2,3}") into a malloc'd array; *m its length. */
static long long *
parse_ids(const char *s, int *m)
{
	long long *v;
	int cap = 1, n = 0;
	const char *p;
	char *end;

	for (p = s; *p; p++)
		cap += *p == ',';
	v = malloc(sizeof *v * (size_t)cap);
	if (!v)
		return NULL;
	for (p = s; *p && n < cap;) {
		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		v[n++] = strtoll(p, &end, 10);
		p = end;
	}
	*m = n;
	return v;
}

/* sql on our claims ids[] of broadcast bid ($1 bid, $2 our key, $3 the
 * ids): its result, or NULL (d->err says why). */
static PGresult *
on_claims(struct bc_db *d, const char *sql, long long bid, const long long *ids,
    int n)
{
	char b1[32], b2[32];
	struct wa_buf arr = { 0 };
	const char *v[3];
	PGresult *r;

	id_array(&arr, ids, n);
	if (arr.oom) {
		snprintf(d->err, sizeof d->err, "out of memory");
		return NULL;
	}
	v[0] = bc_ll(b1, sizeof b1, bid);
	v[1] = bc_ll(b2, sizeof b2, d->key);
	v[2] = arr.p;
	r = bc_qp(d, sql, 3, v);
	wa_buf_free(&arr);
	return r;
}

int
bc_mark_sending(struct bc_db *d, long long bid, long long *ids, int n)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcast_recipients SET sending_since = now()"
	    " WHERE id = ANY($3::int[]) AND broadcast_id = $1"
	    " AND status = 'processing' AND claimed_by = $2 RETURNING id";
	PGresult *r;
	long long *got;
	int i, m;

	if (n == 0)
		return 0;
	if (!(r = on_claims(d, sql, bid, ids, n)))
		return -1;
	m = PQntuples(r);
	got = malloc(sizeof *got * (size_t)(m ? m : 1));
	if (!got) {
		PQclear(r);
		snprintf(d->err, sizeof d->err, "out of memory");
		return -1;
	}
	for (i = 0; i < m; i++)
		got[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	m = keep_ids(ids, n, got, m);
	free(got);
	return m;
}

int
bc_unmark_sending(struct bc_db *d, long long bid, const long long *ids, int n)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcast_recipients SET sending_since = NULL"
	    " WHERE id = ANY($3::int[]) AND broadcast_id = $1"
	    " AND status = 'processing' AND claimed_by = $2";
	PGresult *r;

	if (n == 0)
		return 0;
	if (!(r = on_claims(d, sql, bid, ids, n)))
		return -1;
	PQclear(r);
	return 0;
}

static const char *
end_name(enum bc_end e)
{
	switch (e) {
	case BC_SENT: return "sent";
	case BC_FAILED: return "failed";
	case BC_CANCELLED: return "cancelled";
	default: return "queued";
	}
}

static void
outcome_json(struct wa_buf *b, const struct bc_outcome *o)
{
	wa_buf_fmt(b, "{\"id\":%lld,\"st\":\"%s\",\"att\":%d", o->id,
	    end_name(o->end), o->attempts);
	if (o->message_id[0]) {
		wa_buf_str(b, ",\"mid\":");
		wa_json_buf_text(b, o->message_id);
	}
	if (o->end == BC_FAILED || (o->end == BC_REQUEUE && o->code[0])) {
		wa_buf_str(b, ",\"code\":");
		wa_json_buf_text(b, o->code[0] ? o->code : "send_failed");
		wa_buf_str(b, ",\"cls\":");
		wa_json_buf_text(b, o->klass[0] ? o->klass : "permanent");
		wa_buf_str(b, ",\"msg\":");
		wa_json_buf_text(b, o->message);
	}
	if (o->end == BC_CANCELLED && o->code[0]) {
		/* skipped (opted_out): a reason, no failure class */
		wa_buf_str(b, ",\"code\":");
		wa_json_buf_text(b, o->code);
		wa_buf_str(b, ",\"msg\":");
		wa_json_buf_text(b, o->message);
	}
	if (o->end == BC_REQUEUE && o->retry_in > 0)
		wa_buf_fmt(b, ",\"nxt\":%.3f", o->retry_in);
	wa_buf_str(b, "}");
}

/* The rows an outcome report may change: found by primary key ($4, and
 * by nothing else, so that even a generic plan of this prepared statement
 * looks up these rows only), locked, with their status before. Besides our own claims, a row that
 * recovery marked interrupted while our connection was down takes its
 * real outcome (it keeps our key for that). A give-back (queued) only
 * applies to a live claim. */
#define RECORD_CTES \
	"WITH o AS (SELECT * FROM json_to_recordset($3::json) AS x(id bigint," \
	"  st text, att int, mid text, code text, cls text, msg text," \
	"  nxt double precision))," \
	" old AS (SELECT r.id, r.status AS was, r.error_code AS was_code" \
	"  FROM whatsapp_broadcast_recipients r" \
	"  WHERE r.id = ANY($4::int[]) AND r.claimed_by = $2 FOR UPDATE)," \
	" u AS (UPDATE whatsapp_broadcast_recipients r SET status = o.st," \
	"  attempts = coalesce(r.attempts, 0) + o.att," \
	"  message_id = coalesce(o.mid, r.message_id)," \
	"  error_code = o.code, error_class = o.cls, error_message = o.msg," \
	"  sent_at = CASE WHEN o.st = 'sent' THEN now() ELSE r.sent_at END," \
	"  next_attempt_at = CASE WHEN o.nxt IS NULL THEN NULL" \
	"   ELSE now() + o.nxt * interval '1 second' END," \
	"  claimed_by = NULL, claimed_until = NULL, sending_since = NULL," \
	"  updated_at = now()" \
	"  FROM o, old WHERE r.id = old.id AND o.id = old.id" \
	"  AND r.broadcast_id = $1 AND (old.was = 'processing' OR (old.was = 'failed'" \
	"   AND old.was_code = 'interrupted' AND o.st <> 'queued'))" \
	"  RETURNING r.id, r.status, old.was)"

int
bc_record(struct bc_db *d, long long bid, const struct bc_outcome *o, int n,
    struct bc_counts *c)
{
	return bc_record_mark(d, bid, o, n, NULL, 0, c);
}

int
bc_record_mark(struct bc_db *d, long long bid, const struct bc_outcome *o,
    int n, long long *mark, int nmark, struct bc_counts *c)
{
	static const char sql[] =
	    RECORD_CTES
	    " UPDATE whatsapp_broadcasts b SET" COUNTERS_FROM_U
	    " WHERE b.id = $1" RETURN_COUNTS;
	/* The same, and the next sends marked as going out, in one round
	 * trip: what finished is recorded before what follows starts. */
	static const char sql_mark[] =
	    RECORD_CTES ","
	    " m AS (UPDATE whatsapp_broadcast_recipients SET sending_since = now()"
	    "  WHERE id = ANY($5::int[]) AND broadcast_id = $1"
	    "  AND status = 'processing' AND claimed_by = $2 RETURNING id)"
	    " UPDATE whatsapp_broadcasts b SET" COUNTERS_FROM_U
	    " WHERE b.id = $1" RETURN_COUNTS ","
	    " (SELECT coalesce(array_agg(id), '{}') FROM m)";
	char b1[32], b2[32];
	struct wa_buf js = { 0 }, ids = { 0 }, marks = { 0 };
	const char *v[5];
	PGresult *r;
	long long *got;
	int i, m, kept = 0;

	if (n == 0) {
		if (c)
			c->recorded = 0;
		return mark ? bc_mark_sending(d, bid, mark, nmark) : 0;
	}
	wa_buf_str(&js, "[");
	wa_buf_str(&ids, "{");
	for (i = 0; i < n; i++) {
		if (i) {
			wa_buf_str(&js, ",");
			wa_buf_str(&ids, ",");
		}
		outcome_json(&js, &o[i]);
		wa_buf_fmt(&ids, "%lld", o[i].id);
	}
	wa_buf_str(&js, "]");
	wa_buf_str(&ids, "}");
	if (mark)
		id_array(&marks, mark, nmark);
	if (js.oom || ids.oom || marks.oom) {
		snprintf(d->err, sizeof d->err, "out of memory");
		r = NULL;
		goto out;
	}
	v[0] = bc_ll(b1, sizeof b1, bid);
	v[1] = bc_ll(b2, sizeof b2, d->key);
	v[2] = js.p;
	v[3] = ids.p;
	v[4] = marks.p;
	r = bc_qp(d, mark ? sql_mark : sql, mark ? 5 : 4, v);
	if (!r)
		goto out;
	read_counts(r, c);
	if (mark) {
		got = parse_ids(PQgetvalue(r, 0, 6), &m);
		if (!got) {
			snprintf(d->err, sizeof d->err, "out of memory");
			PQclear(r);
			r = NULL;
			goto out;
		}
		kept = keep_ids(mark, nmark, got, m);
		free(got);
	}
	PQclear(r);
out:
	wa_buf_free(&js);
	wa_buf_free(&ids);
	wa_buf_free(&marks);
	return r ? kept : -1;
}

int
bc_giveback(struct bc_db *d, long long bid, long long *n)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcast_recipients SET status = 'queued',"
	    " claimed_by = NULL, claimed_until = NULL, updated_at = now()"
	    " WHERE broadcast_id = $1 AND claimed_by = $2 AND status = 'processing'"
	    " AND sending_since IS NULL";
	char b1[32], b2[32];
	const char *v[2] = { bc_ll(b1, sizeof b1, bid), bc_ll(b2, sizeof b2, d->key) };
	PGresult *r = bc_q(d, sql, 2, v);

	if (!r)
		return -1;
	if (n)
		*n = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int
bc_leftovers(struct bc_db *d, long long bid, int requeue, long long *n)
{
	/* requeue: the sender promised they never went out. Otherwise they
	 * were handed over and nothing came back: they may have gone out. */
	static const char sql[] =
	    "WITH u AS (UPDATE whatsapp_broadcast_recipients r SET"
	    "  status = CASE WHEN $3::boolean THEN 'queued' ELSE 'failed' END,"
	    "  error_code = CASE WHEN $3::boolean THEN r.error_code ELSE 'no_result' END,"
	    "  error_class = CASE WHEN $3::boolean THEN r.error_class"
	    "   ELSE 'ambiguous' END,"
	    "  error_message = CASE WHEN $3::boolean THEN r.error_message ELSE"
	    "   'handed to the sender, no result came back: it may have been"
	    " delivered; review, then retry --ambiguous' END,"
	    "  sending_since = NULL, claimed_until = NULL, updated_at = now(),"
	    "  claimed_by = CASE WHEN $3::boolean THEN NULL ELSE r.claimed_by END"
	    "  WHERE r.broadcast_id = $1 AND r.claimed_by = $2"
	    "  AND r.status = 'processing'"
	    "  RETURNING r.id, r.status, 'processing'::text AS was)"
	    " UPDATE whatsapp_broadcasts b SET" COUNTERS_FROM_U
	    " WHERE b.id = $1" RETURN_COUNTS;
	char b1[32], b2[32];
	const char *v[3] = { bc_ll(b1, sizeof b1, bid), bc_ll(b2, sizeof b2, d->key),
		requeue ? "true" : "false" };

	return run_counted(d, sql, 3, v, n);
}

int
bc_extend(struct bc_db *d, long long bid, double lease)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcast_recipients SET"
	    " claimed_until = now() + $3::double precision * interval '1 second'"
	    " WHERE broadcast_id = $1 AND claimed_by = $2 AND status = 'processing'"
	    " AND (claimed_until IS NULL"
	    "  OR claimed_until > now() + $3::double precision * interval '1 second'"
	    "  OR claimed_until < now() + $3::double precision * interval '0.667 second')";
	char b1[32], b2[32], b3[32];
	const char *v[3] = { bc_ll(b1, sizeof b1, bid), bc_ll(b2, sizeof b2, d->key),
		b3 };

	snprintf(b3, sizeof b3, "%.3f", lease);
	return bc_cmd(d, sql, 3, v);
}

long long
bc_outstanding(struct bc_db *d, long long bid)
{
	static const char sql[] =
	    "SELECT count(*) FROM whatsapp_broadcast_recipients"
	    " WHERE broadcast_id = $1 AND claimed_by = $2 AND status = 'processing'";
	char b1[32], b2[32];
	const char *v[2] = { bc_ll(b1, sizeof b1, bid), bc_ll(b2, sizeof b2, d->key) };
	PGresult *r = bc_q(d, sql, 2, v);
	long long n;

	if (!r)
		return -1;
	n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return n;
}

int
bc_key_shared(struct bc_db *d)
{
	static const char sql[] =
	    "SELECT count(*)" HELD_LOCKS
	    " AND l.pid <> pg_backend_pid() AND " HELD_KEY " = $1";
	char b1[32];
	const char *v[1] = { bc_ll(b1, sizeof b1, d->key) };
	PGresult *r = bc_q(d, sql, 1, v);
	int n;

	if (!r)
		return -1;
	n = strtol(PQgetvalue(r, 0, 0), NULL, 10) > 0;
	PQclear(r);
	return n;
}

int
bc_queued_later(struct bc_db *d, long long bid, long long *n, double *wait,
    double *first)
{
	static const char sql[] =
	    "SELECT count(*), extract(epoch FROM"
	    " min(coalesce(next_attempt_at, now())) - now())::float8"
	    " FROM whatsapp_broadcast_recipients"
	    " WHERE broadcast_id = $1 AND status = 'queued'";
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, bid) };
	PGresult *r = bc_q(d, sql, 1, v);

	if (!r)
		return -1;
	*n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	*wait = PQgetisnull(r, 0, 1) ? 0 : strtod(PQgetvalue(r, 0, 1), NULL);
	PQclear(r);
	*first = *wait;
	/* Rows skipped as locked, or due now: look again soon; never sleep
	 * past a second, so cancel and pause are still seen in time. */
	if (*wait < 0.05)
		*wait = 0.05;
	if (*wait > 1.0)
		*wait = 1.0;
	return 0;
}

double
bc_later_s(void)
{
	struct wa_retry_policy p;

	wa_retry_policy_default(&p, WA_CTX_BROADCAST);
	return p.retry_after_cap_s;
}

int
bc_cancel_rows(struct bc_db *d, long long bid, long long *n)
{
	static const char sql[] =
	    "WITH u AS (UPDATE whatsapp_broadcast_recipients r SET"
	    "  status = 'cancelled', claimed_by = NULL, claimed_until = NULL,"
	    "  updated_at = now()"
	    "  WHERE r.broadcast_id = $1 AND (r.status = 'queued'"
	    "   OR (r.status = 'processing' AND r.claimed_by = $2"
	    "    AND r.sending_since IS NULL))"
	    "  RETURNING r.id, r.status, 'queued'::text AS was)"
	    " UPDATE whatsapp_broadcasts b SET" COUNTERS_FROM_U
	    " WHERE b.id = $1" RETURN_COUNTS;
	char b1[32], b2[32];
	const char *v[2] = { bc_ll(b1, sizeof b1, bid), bc_ll(b2, sizeof b2, d->key) };

	return run_counted(d, sql, 2, v, n);
}

int
bc_finalize(struct bc_db *d, long long bid, char *status, size_t len)
{
	/* completed: every recipient reached a final state and no failure is
	 * one a retry could mend; partial: some failed as retryable or
	 * ambiguous (worth a retry); failed: none was sent. */
	static const char sql[] =
	    "UPDATE whatsapp_broadcasts b SET status = CASE"
	    "  WHEN coalesce(b.cancel_requested, false) THEN 'cancelled'"
	    "  WHEN coalesce(b.failed_count, 0) = 0 THEN 'completed'"
	    "  WHEN coalesce(b.sent_count, 0) = 0 THEN 'failed'"
	    "  WHEN EXISTS (SELECT 1 FROM whatsapp_broadcast_recipients r"
	    "   WHERE r.broadcast_id = b.id AND r.status = 'failed'"
	    "   AND r.error_class IN ('retryable', 'ambiguous')) THEN 'partial'"
	    "  ELSE 'completed' END,"
	    " completed_at = CASE WHEN b.status IN ('partial', 'failed')"
	    "  THEN b.completed_at ELSE now() END, updated_at = now(),"
	    " stopped_at = CASE WHEN coalesce(b.cancel_requested, false)"
	    "  THEN coalesce(b.stopped_at, now()) ELSE b.stopped_at END"
	    " WHERE b.id = $1 AND (b.status IN ('pending', 'queued', 'running',"
	    "  'scheduled')"
	    "  OR (b.status = 'paused' AND coalesce(b.cancel_requested, false))"
	    /* A send recovered as ambiguous whose real outcome came in after
	     * the broadcast was finished: judge it again. */
	    "  OR (b.status IN ('partial', 'failed')"
	    "   AND NOT coalesce(b.cancel_requested, false)))"
	    " AND NOT EXISTS (SELECT 1 FROM whatsapp_broadcast_recipients r"
	    "  WHERE r.broadcast_id = b.id AND r.status IN ('queued', 'processing'))"
	    " RETURNING b.status";
	char b1[32];
	const char *v[1] = { bc_ll(b1, sizeof b1, bid) };
	PGresult *r = bc_q(d, sql, 1, v);

	if (!r)
		return -1;
	if (PQntuples(r) == 1)
		snprintf(status, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* The counters, made to match the rows when they do not (a database
 * adopted from the old system, which could count a send twice). The
 * broadcast row is locked first, so the count, taken by the next
 * statement, sees every outcome recorded before and none is recorded
 * meanwhile. "old>new" pairs into fixed when something changed. */
static int
recount(struct bc_db *d, const char *const *v, char *fixed, size_t len,
    struct bc_counts *c)
{
	static const char sql[] =
	    "WITH c AS (SELECT count(*) AS t,"
	    "  count(*) FILTER (WHERE status IN ('sent', 'delivered')) AS s,"
	    "  count(*) FILTER (WHERE status = 'failed') AS f,"
	    "  count(*) FILTER (WHERE status = 'cancelled') AS c,"
	    "  count(*) FILTER (WHERE status IN ('sent', 'delivered', 'failed',"
	    "   'cancelled')) AS p"
	    "  FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1),"
	    " o AS (SELECT total_recipients AS t, sent_count AS s,"
	    "  failed_count AS f, cancelled_count AS c, processed_count AS p"
	    "  FROM whatsapp_broadcasts WHERE id = $1)"
	    " UPDATE whatsapp_broadcasts b SET total_recipients = c.t,"
	    " sent_count = c.s, failed_count = c.f, cancelled_count = c.c,"
	    " processed_count = c.p, updated_at = now() FROM c, o"
	    " WHERE b.id = $1 AND (o.t, o.s, o.f, o.c, o.p)"
	    "  IS DISTINCT FROM (c.t, c.s, c.f, c.c, c.p)"
	    " RETURNING coalesce(o.t::text, 'null'), c.t, coalesce(o.s::text, 'null'),"
	    " c.s, coalesce(o.f::text, 'null'), c.f, coalesce(o.c::text, 'null'), c.c,"
	    " coalesce(o.p::text, 'null'), c.p";
	static const char *const names[] = { "total_recipients", "sent_count",
		"failed_count", "cancelled_count", "processed_count" };
	PGresult *r;
	size_t at = 0;
	int i;
	long long *to[5] = { &c->total, &c->sent, &c->failed, &c->cancelled,
		&c->processed };

	fixed[0] = '\0';
	if (bc_cmd(d, "SELECT 1 FROM whatsapp_broadcasts WHERE id = $1 FOR UPDATE",
	    1, v) != 0 || !(r = bc_q(d, sql, 1, v)))
		return -1;
	for (i = 0; PQntuples(r) == 1 && i < 5; i++) {
		*to[i] = strtoll(PQgetvalue(r, 0, 2 * i + 1), NULL, 10);
		if (strcmp(PQgetvalue(r, 0, 2 * i), PQgetvalue(r, 0, 2 * i + 1)) &&
		    at < len)
			at += (size_t)snprintf(fixed + at, len - at, "%s%s %s>%s",
			    at ? ", " : "", names[i], PQgetvalue(r, 0, 2 * i),
			    PQgetvalue(r, 0, 2 * i + 1));
	}
	PQclear(r);
	return 0;
}

int
bc_start(struct bc_db *d, long long bid, char *fixed, size_t len,
    struct bc_counts *c)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcasts SET status = 'running',"
	    " started_at = coalesce(started_at, now()), updated_at = now()"
	    " WHERE id = $1 AND status IN ('pending', 'queued', 'running',"
	    " 'scheduled') RETURNING id";
	char b1[32];
	const char *v[1] = { bc_ll(b1, sizeof b1, bid) };
	PGresult *r;
	int n;

	if (bc_cmd(d, "BEGIN", 0, NULL) != 0)
		return -1;
	if (recount(d, v, fixed, len, c) != 0 || !(r = bc_q(d, sql, 1, v))) {
		if (!d->lost) {
			char err[sizeof d->err];

			memcpy(err, d->err, sizeof err);
			bc_cmd(d, "ROLLBACK", 0, NULL);
			memcpy(d->err, err, sizeof err);
		}
		return -1;
	}
	n = PQntuples(r);
	PQclear(r);
	if (bc_cmd(d, "COMMIT", 0, NULL) != 0)
		return -1;
	return n == 1;
}

int
bc_pause(struct bc_db *d, long long bid, const char *reason)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcasts SET status = 'paused', pause_reason = $2,"
	    " stopped_at = now(), updated_at = now()"
	    " WHERE id = $1 AND status IN ('pending', 'queued', 'running',"
	    " 'scheduled')";
	char b1[32];
	const char *v[2] = { bc_ll(b1, sizeof b1, bid), reason };

	return bc_cmd(d, sql, 2, v);
}

int
bc_halt(struct bc_db *d, long long bid, const char *reason, int unreached)
{
	/* A provider away is most often back within minutes, by itself; a
	 * paused broadcast waits for an operator to notice (cron's run --all
	 * takes running broadcasts, not paused ones). */
	if (unreached) {
		wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld stopped: "
		    "the provider cannot be reached; not paused, the next run "
		    "carries on", bid);
		return 0;
	}
	return bc_pause(d, bid, reason);
}
