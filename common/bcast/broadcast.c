/* broadcast.c: what every broadcast module needs: a string buffer, the
 * database connection with its worker lock and reconnection, and the
 * broadcast row with its message. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "base/wa_utf8.h"
#include "db/wa_db.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"
#include "send/wa_send.h"

/* --- string buffer ------------------------------------------------------ */

int
bc_utf8_ok(const char *s, size_t maxchars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, chars = 0;

	while (*p) {
		n = wa_utf8_seq(p, 4);
		if (!n)
			return 0;
		p += n;
		chars++;
	}
	return maxchars == 0 || chars <= maxchars;
}

void
bc_utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;

	while (*p) {
		n = wa_utf8_seq(p, 4);
		if (n) {
			p += n;
			continue;
		}
		*p++ = '?';
	}
}

void
bc_utf8_cut(char *s, size_t max)
{
	s[wa_utf8_fit(s, max)] = '\0';
}

void
bc_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	if (!src)
		src = "";
	n = wa_utf8_fit(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* --- small things --------------------------------------------------------- */

double
bc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
bc_idem_key(char *buf, size_t len, long long bid, long long rid)
{
	/* UUID-shaped, as the Baileys service expects: the broadcast id and
	 * the recipient's row id, so every try of a recipient, in any run or
	 * pipeline, carries the same key. */
	snprintf(buf, len, "%08llx-0000-4000-8000-%012llx",
	    (unsigned long long)bid & 0xffffffffULL,
	    (unsigned long long)rid & 0xffffffffffffULL);
}

void
bc_sleep_ms(int ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

const char *
bc_ll(char *buf, size_t len, long long v)
{
	snprintf(buf, len, "%lld", v);
	return buf;
}

/* --- the connection ------------------------------------------------------- */

static int
conn_bad(PGconn *c)
{
	return !c || PQstatus(c) != CONNECTION_OK;
}

/* Sort out a result: keep it when it succeeded, else say why (and whether
 * the server went away) and drop it. */
static PGresult *
check(struct bc_db *d, PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	const char *state, *m;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* Class 08 (connection), 57P01-03 (shut down, crash, cannot connect
	 * now): the server went away, not our statement's fault. */
	if (conn_bad(d->conn) || (state && (strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0)))
		d->lost = 1;
	wa_db_errmsg(d->conn, d->err, sizeof d->err);
	m = res ? PQresultErrorMessage(res) : "";
	if (m[0])
		snprintf(d->err, sizeof d->err, "%.*s", (int)strcspn(m, "\r\n"), m);
	if (!d->err[0])
		snprintf(d->err, sizeof d->err, "the database gave no answer");
	PQclear(res);
	return NULL;
}

static int
usable(struct bc_db *d)
{
	d->lost = 0;
	d->err[0] = '\0';
	if (conn_bad(d->conn)) {
		d->lost = 1;
		snprintf(d->err, sizeof d->err, "connection to the database lost");
		return 0;
	}
	return 1;
}

PGresult *
bc_q(struct bc_db *d, const char *sql, int n, const char *const *v)
{
	if (!usable(d))
		return NULL;
	return check(d, PQexecParams(d->conn, sql, n, NULL, v, NULL, NULL, 0));
}

PGresult *
bc_qp(struct bc_db *d, const char *sql, int n, const char *const *v)
{
	PGresult *res;
	char name[16];
	int i;

	if (!usable(d))
		return NULL;
	for (i = 0; i < d->nprep && d->prep[i] != sql; i++)
		;
	snprintf(name, sizeof name, "bc%d", i);
	if (i == d->nprep) {
		if (i == (int)(sizeof d->prep / sizeof d->prep[0]))
			return bc_q(d, sql, n, v); /* out of room: unprepared */
		res = check(d, PQprepare(d->conn, name, sql, n, NULL));
		if (!res)
			return NULL;
		PQclear(res);
		d->prep[d->nprep++] = sql;
	}
	return check(d, PQexecPrepared(d->conn, name, n, v, NULL, NULL, 0));
}

PGresult *
bc_copy_in(struct bc_db *d, const char *sql, const struct wa_buf *rows)
{
	if (!usable(d))
		return NULL;
	return check(d, wa_db_copy_in(d->conn, sql, rows->p, rows->len));
}

int
bc_send(struct bc_db *d, const char *sql, int n, const char *const *v)
{
	if (!usable(d))
		return -1;
	if (PQsendQueryParams(d->conn, sql, n, NULL, v, NULL, NULL, 0) == 1)
		return 0;
	PQclear(check(d, NULL));
	return -1;
}

PGresult *
bc_result(struct bc_db *d)
{
	PGresult *r, *last = NULL;

	/* Read up to the end: the connection is free for the next statement. */
	while ((r = PQgetResult(d->conn)) != NULL) {
		PQclear(last);
		last = r;
	}
	return check(d, last);
}

int
bc_db_fail(const struct bc_db *d)
{
	wa_err("%s", d->err);
	return d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
}

int
bc_cmd(struct bc_db *d, const char *sql, int n, const char *const *v)
{
	PGresult *res = bc_q(d, sql, n, v);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int
bc_lock(struct bc_db *d)
{
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, d->key) };

	if (!d->key)
		return 0;
	if (bc_cmd(d, d->shared ? "SELECT pg_advisory_lock_shared($1::bigint)" :
	    "SELECT pg_advisory_lock($1::bigint)", 1, v) != 0)
		return -1;
	d->locked = 1;
	return 0;
}

int
bc_worker(struct bc_db *d, int pipeline)
{
	PGresult *r;

	/* Keys come from a sequence, never reused: a new session can never be
	 * taken for a dead worker whose claims are to be recovered. */
	r = bc_q(d, "SELECT nextval('wa_worker_key_seq')", 0, NULL);
	if (!r)
		return -1;
	d->key = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (pipeline)
		d->key = -d->key;
	d->shared = pipeline;
	return bc_lock(d);
}

int
bc_reconnect(struct bc_db *d, double wait, volatile sig_atomic_t *stop,
    void (*idle)(void *arg, int ms), void *arg)
{
	double end = bc_now() + wait;
	int delay = 100, code;
	PGconn *c;

	PQfinish(d->conn);
	d->conn = NULL;
	d->locked = 0;
	d->nprep = 0; /* prepared statements die with their session */
	for (;;) {
		c = wa_db_connect(d->url, "wa-broadcast", d->err, sizeof d->err, &code);
		if (c) {
			d->conn = c;
			if (bc_lock(d) == 0) {
				d->lost = 0;
				d->gen++;
				return 0;
			}
			PQfinish(d->conn);
			d->conn = NULL;
		}
		if (bc_now() + delay / 1000.0 > end || (stop && *stop))
			return -1;
		if (idle)
			idle(arg, delay);
		else
			bc_sleep_ms(delay);
		delay = delay * 2 > 2000 ? 2000 : delay * 2;
	}
}

/* --- the broadcast row ---------------------------------------------------- */

static char *
dupcol(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? NULL : strdup(PQgetvalue(r, 0, col));
}

static long long
llcol(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? 0 : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

int
bc_load(struct bc_db *d, long long id, struct bc_bcast *b)
{
	static const char sql[] =
	    "SELECT business_id, status, name, message_type, message_text,"
	    " template_name, template_language, template_params::text,"
	    " media::text, region, pause_reason, coalesce(total_recipients, 0),"
	    " coalesce(sent_count, 0), coalesce(failed_count, 0),"
	    " coalesce(cancelled_count, 0), coalesce(processed_count, 0),"
	    " coalesce(cancel_requested, false), coalesce(preview_url, false)"
	    " FROM whatsapp_broadcasts WHERE id = $1";
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, id) };
	PGresult *r;

	memset(b, 0, sizeof *b);
	r = bc_q(d, sql, 1, v);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return 0;
	}
	b->id = id;
	b->business_id = llcol(r, 0);
	snprintf(b->status, sizeof b->status, "%s", PQgetvalue(r, 0, 1));
	b->name = dupcol(r, 2);
	b->type = dupcol(r, 3);
	b->text = dupcol(r, 4);
	b->template_name = dupcol(r, 5);
	b->language = dupcol(r, 6);
	b->params = dupcol(r, 7);
	b->media = dupcol(r, 8);
	b->region = dupcol(r, 9);
	b->pause_reason = dupcol(r, 10);
	b->total = llcol(r, 11);
	b->sent = llcol(r, 12);
	b->failed = llcol(r, 13);
	b->cancelled = llcol(r, 14);
	b->processed = llcol(r, 15);
	b->cancel_requested = PQgetvalue(r, 0, 16)[0] == 't';
	b->preview_url = PQgetvalue(r, 0, 17)[0] == 't';
	PQclear(r);
	return 1;
}

void
bc_bcast_free(struct bc_bcast *b)
{
	free(b->name);
	free(b->type);
	free(b->text);
	free(b->template_name);
	free(b->language);
	free(b->params);
	free(b->media);
	free(b->region);
	free(b->pause_reason);
	memset(b, 0, sizeof *b);
}

/* The template's components: stored as wa-send takes them. */
static yajl_val
template_value(const struct bc_bcast *b, char *msg, size_t len)
{
	yajl_val t = wa_new_object(), comp;

	wa_set_str(t, "name", b->template_name);
	wa_set_str(t, "language", b->language ? b->language : "en");
	if (b->params) {
		comp = wa_json_parse(b->params, msg, len);
		if (!comp) {
			wa_val_free(t);
			return NULL;
		}
		wa_set(t, "components", comp);
	}
	return t;
}

int
bc_message(const struct bc_bcast *b, yajl_val rec, char *msg, size_t len)
{
	yajl_val v;

	msg[0] = '\0';
	if (b->template_name) {
		v = template_value(b, msg, len);
		if (!v) {
			snprintf(msg, len, "stored template parameters are not JSON");
			return -1;
		}
		wa_set(rec, "template", v);
		return 0;
	}
	if (b->media) {
		v = wa_json_parse(b->media, msg, len);
		if (!v || !YAJL_IS_OBJECT(v) || !wa_get_str(v, "type")) {
			wa_val_free(v);
			snprintf(msg, len, "stored media is not a JSON object with a type");
			return -1;
		}
		/* The old system kept a media broadcast's caption as its text. */
		if (!wa_get(v, "caption") && b->text && *b->text)
			wa_set_str(v, "caption", b->text);
		wa_set(rec, "media", v);
		return 0;
	}
	if (b->text) {
		wa_set_str(rec, "text", b->text);
		/* As a record field, so that export hands it to wa-send and
		 * the pipeline sends what run sends. */
		if (b->preview_url)
			wa_set_bool(rec, "preview_url", 1);
		return 0;
	}
	snprintf(msg, len, "the broadcast has no message (text, template or media)");
	return -1;
}

yajl_val
bc_recipient_record(const struct bc_bcast *b, const struct bc_recip *r,
    yajl_val proto, long long claim)
{
	yajl_val rec = wa_new_object(), f = r->fields;
	char key[48];
	size_t i;

	wa_set_int(rec, "recipient_id", r->id);
	wa_set_int(rec, "broadcast_id", b->id);
	wa_set_int(rec, "business_id", b->business_id);
	wa_set_str(rec, "phone", r->phone);
	wa_set_str(rec, "jid", r->jid);
	if (r->lead_id)
		wa_set_int(rec, "lead_id", r->lead_id);
	/* Stored without the names set here (create leaves them out), so a
	 * field never takes the place of one of these. */
	for (i = 0; YAJL_IS_OBJECT(f) && i < f->u.object.len; i++)
		if (!wa_get(rec, f->u.object.keys[i]))
			wa_set(rec, f->u.object.keys[i], wa_val_copy(f->u.object.values[i]));
	for (i = 0; proto && i < proto->u.object.len; i++)
		wa_set(rec, proto->u.object.keys[i], wa_val_copy(proto->u.object.values[i]));
	bc_idem_key(key, sizeof key, b->id, r->id);
	wa_set_str(rec, "idempotency_key", key);
	wa_set_int(rec, "claim", claim);
	return rec;
}

int
bc_reserved_field(const char *k)
{
	static const char *const names[] = { "to", "phone", "jid", "region",
		"valid", "source", "lead_id", "text", "template", "media",
		"preview_url",
		"recipient_id", "broadcast_id", "business_id", "idempotency_key",
		"claim", "status", "error", "provider", "message_id",
		"message_status", "attempts", "duration_ms", "request", NULL };
	int i;

	for (i = 0; names[i]; i++)
		if (strcmp(k, names[i]) == 0)
			return 1;
	return 0;
}

enum bc_end
bc_outcome_of(struct bc_outcome *oc, long long id, const struct wa_result *r,
    int cancelling)
{
	const struct wa_error *e = &r->error;

	memset(oc, 0, sizeof *oc);
	oc->id = id;
	oc->attempts = r->attempts;
	if (r->status == WA_SENT) {
		oc->end = BC_SENT;
		bc_copy(oc->message_id, sizeof oc->message_id, r->message_id);
	} else if (r->status == WA_FAILED && e->code &&
	    strcmp(e->code, "opted_out") == 0) {
		/* wa-send in the pipeline found the number in the business's
		 * opt-outs: skipped as run skips it, not a failure. */
		oc->end = BC_CANCELLED;
		oc->attempts = 0;
		snprintf(oc->code, sizeof oc->code, "opted_out");
		bc_copy(oc->message, sizeof oc->message, e->message);
	} else if (r->status == WA_FAILED && e->cls == WA_CLASS_RETRYABLE &&
	    e->defer_s > 0) {
		/* Certainly not sent, and may go later than the sender waits
		 * (a long Retry-After, the pace): queued for then. */
		oc->end = BC_REQUEUE;
		oc->attempts = r->attempts - r->unreached;
		oc->retry_in = e->defer_s;
	} else if (r->status == WA_FAILED && e->cls != WA_CLASS_FATAL) {
		oc->end = BC_FAILED;
		bc_copy(oc->code, sizeof oc->code, e->code ? e->code : "send_failed");
		/* A failure always has a class; "none" would break the
		 * column's check. */
		snprintf(oc->klass, sizeof oc->klass, "%s", e->cls == WA_CLASS_NONE ?
		    "permanent" : wa_class_name(e->cls));
		bc_copy(oc->message, sizeof oc->message, e->message);
	} else {
		/* Fatal (nobody's fault but the account's or the provider's) or
		 * not sent: it certainly did not go out. Tries that never
		 * reached the provider do not count against its attempts. */
		oc->end = cancelling && r->status == WA_NOT_SENT ? BC_CANCELLED :
		    BC_REQUEUE;
		oc->attempts = r->attempts - r->unreached;
		if (oc->end == BC_REQUEUE && r->status == WA_NOT_SENT && r->attempts > 0)
			oc->retry_in = 1.0;
	}
	return oc->end;
}

void
bc_fatal_reason(char *buf, size_t len, const struct wa_error *e)
{
	snprintf(buf, len, "%s: %s", e->code ? e->code : "fatal", e->message);
	bc_utf8_fix(buf); /* the message may be cut mid-character */
}

int
bc_fill_jid(const struct wa_norm_opts *no, struct bc_recip *r,
    struct bc_outcome *oc)
{
	struct wa_addr a;
	const char *code;

	if (r->jid[0])
		return 0;
	memset(oc, 0, sizeof *oc);
	if (wa_norm_text(no, r->phone, &a, &code, oc->message, sizeof oc->message) == 0) {
		snprintf(r->jid, sizeof r->jid, "%s", a.jid);
		return 0;
	}
	oc->id = r->id;
	oc->end = BC_FAILED;
	snprintf(oc->code, sizeof oc->code, "%s", code);
	snprintf(oc->klass, sizeof oc->klass, "permanent");
	return -1;
}
