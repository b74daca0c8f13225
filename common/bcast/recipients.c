/* recipients.c: who of a broadcast got its message, who did not and why,
 * one record per recipient (wa-broadcast recipients). Read through a
 * cursor in a read-only transaction, a page of rows at a time, so memory
 * stays flat however many recipients there are, and the list is one
 * snapshot even while a worker goes on sending. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "record/wa_rec.h"

/* Rows fetched at a time: few enough that a page of the largest fields
 * (BC_FIELDS_MAX each) stays a few MB, many enough that the round trips
 * do not count. */
#define PAGE "1000"

const char *const wa_bcast_recipient_cols[] = { "recipient_id", "phone", "jid",
	"lead_id", "status", "class", "code", "reason", "attempts", "message_id",
	"created_at", "sent_at", "delivered_at", "updated_at", "fields", NULL };

/* The columns of the SELECT below, in the order of wa_bcast_recipient_cols;
 * 1 where the value is a number. */
static const int numeric[] = { 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
#define NCOLS 15

static const char *const statuses[] = { "sent", "failed", "cancelled",
	"queued", "processing", NULL };
static const char *const classes[] = { "ambiguous", "retryable", "permanent",
	"fatal", NULL };
static const char *const formats[] = { "jsonl", "csv", NULL };

static int
one_of(const char *opt, const char *s, const char *const *words)
{
	struct wa_buf list = { 0 };
	int i, rc;

	if (!s)
		return 0;
	for (i = 0; words[i]; i++)
		if (!strcmp(s, words[i]))
			return 0;
	for (i = 0; words[i]; i++)
		wa_buf_fmt(&list, "%s%s", i ? ", " : "", words[i]);
	rc = wa_usage_error("%s: not one of %s: '%s'", opt, list.p ? list.p : "", s);
	wa_buf_free(&list);
	return rc;
}

int
wa_bcast_recipients_check(const char *status, const char *klass,
    const char *format)
{
	if (one_of("--status", status, statuses) || one_of("--class", klass, classes) ||
	    one_of("--format", format, formats))
		return WA_EXIT_USAGE;
	return 0;
}

#define TS(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS')"

/* Row i of a page as a record. fields is the stored JSON as it is: it was
 * checked when create stored it, and a row the old system wrote has none. */
static yajl_val
row_record(PGresult *r, int i)
{
	yajl_val o = wa_new_object(), f;
	const char *s;
	int c;

	for (c = 0; c < NCOLS; c++) {
		const char *k = wa_bcast_recipient_cols[c];

		if (PQgetisnull(r, i, c)) {
			wa_set_null(o, k);
			continue;
		}
		s = PQgetvalue(r, i, c);
		if (numeric[c])
			wa_set_int(o, k, strtoll(s, NULL, 10));
		else if (c == NCOLS - 1 && (f = wa_json_parse(s, NULL, 0)) != NULL)
			wa_set(o, k, f);
		else
			wa_set_str(o, k, s);
	}
	return o;
}

static int
fail_db(struct bc_db *d, long long id)
{
	wa_err("broadcast_id=%lld: %s", id, d->err);
	return d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
}

int
wa_bcast_recipients(PGconn *db, long long id, const char *status,
    const char *klass, wa_bcast_emit_fn emit, void *arg)
{
	/* 'sent' takes in 'delivered', as the counters do: both were sent. */
	static const char declare[] =
	    "DECLARE wa_recipients NO SCROLL CURSOR FOR"
	    " SELECT id, phone, jid, lead_id, status, error_class, error_code,"
	    " error_message, coalesce(attempts, 0), message_id, " TS("created_at") ","
	    " " TS("sent_at") ", " TS("delivered_at") ", " TS("updated_at") ","
	    " fields::text FROM whatsapp_broadcast_recipients"
	    " WHERE broadcast_id = $1"
	    " AND ($2::text IS NULL OR status = $2"
	    "  OR ($2 = 'sent' AND status = 'delivered'))"
	    " AND ($3::text IS NULL OR error_class = $3)"
	    " ORDER BY id";
	struct bc_db d = { .conn = db };
	char k[32];
	const char *v[3] = { bc_ll(k, sizeof k, id), status, klass };
	PGresult *r;
	yajl_val o;
	int i, n, rc = WA_EXIT_OK;

	if (bc_cmd(&d, "BEGIN READ ONLY", 0, NULL) != 0)
		return fail_db(&d, id);
	r = bc_q(&d, "SELECT 1 FROM whatsapp_broadcasts WHERE id = $1", 1, v);
	if (!r || PQntuples(r) != 1) {
		if (r)
			wa_err("broadcast %lld: no such broadcast", id);
		rc = r ? WA_EXIT_DATA : fail_db(&d, id);
		goto out;
	}
	PQclear(r);
	if (bc_cmd(&d, declare, 3, v) != 0) {
		rc = fail_db(&d, id);
		goto out;
	}
	do {
		r = bc_q(&d, "FETCH " PAGE " FROM wa_recipients", 0, NULL);
		if (!r) {
			rc = fail_db(&d, id);
			break;
		}
		n = PQntuples(r);
		for (i = 0; i < n && rc == WA_EXIT_OK; i++) {
			o = row_record(r, i);
			if (emit(arg, o) != 0)
				rc = WA_EXIT_IO;
			wa_val_free(o);
		}
		PQclear(r);
	} while (n > 0 && rc == WA_EXIT_OK);
	r = NULL;
out:
	PQclear(r);
	/* Read only: ending it either way changes nothing. */
	if (!d.lost)
		bc_cmd(&d, "ROLLBACK", 0, NULL);
	return rc;
}
