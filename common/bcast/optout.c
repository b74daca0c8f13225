/* optout.c: the opt-outs of a business (table wa_optouts): add, remove,
 * import and list, for `wa-broadcast optout`.
 *
 * Every number is normalized as create normalizes a recipient (the same
 * wa_norm_text, region and rules), so what is stored compares equal to
 * the phone create stores and claim and create can match them in SQL. A
 * number that is no number is one error line, with its position, and the
 * rest go on: the caller's exit status is then WA_EXIT_FAILED.
 *
 * import reads its files as create reads a list (a number a line, JSON
 * lines, or CSV whose header names the number's column): one reader, one
 * set of column names. Numbers go in batches, one INSERT each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"

#define IMPORT_BATCH 1000

struct oo {
	const struct wa_bcast_optout *o;
	struct bc_db d;
	struct wa_norm_opts no;
	char biz[32];
	wa_bcast_emit_fn emit;
	void *arg;
	long long added, existing, invalid;
	struct wa_buf batch;   /* import: a JSON array of numbers */
	int nbatch;
};

/* The number as stored (E.164, into e164) or -1 with the reason said,
 * where names the position ("argument 2", "list.csv:7"). */
static int
normalize(struct oo *x, const char *where, const char *text, char *e164,
    size_t len)
{
	struct wa_addr a;
	const char *code = NULL;
	char msg[256] = "";

	memset(&a, 0, sizeof a);
	if (wa_norm_text(&x->no, text, &a, &code, msg, sizeof msg) != 0 ||
	    a.kind != WA_ADDR_PHONE || !a.phone[0]) {
		wa_err("%s: %s: '%s': %s", where, code ? code : "invalid_phone",
		    text, msg[0] ? msg : "not a phone number");
		x->invalid++;
		return -1;
	}
	snprintf(e164, len, "%s", a.phone);
	return 0;
}

static int
emit_number(struct oo *x, const char *number, const char *what)
{
	yajl_val rec = wa_new_object();
	int rc;

	if (!rec)
		return -1;
	wa_set_int(rec, "business_id", x->o->business_id);
	wa_set_str(rec, "number", number);
	wa_set_str(rec, "optout", what);
	rc = x->emit(x->arg, rec);
	wa_val_free(rec);
	return rc;
}

/* add / remove: one statement per number (a few, from the command line). */
static int
add_remove(struct oo *x)
{
	static const char add_sql[] =
	    "INSERT INTO wa_optouts (business_id, number, source, note)"
	    " VALUES ($1, $2, $3, $4) ON CONFLICT (business_id, number)"
	    " DO NOTHING RETURNING 1";
	static const char del_sql[] =
	    "DELETE FROM wa_optouts WHERE business_id = $1 AND number = $2"
	    " RETURNING 1";
	int add = x->o->op == WA_BCAST_OPTOUT_ADD, i, hit;
	char where[48], num[40];
	const char *v[4];
	PGresult *r;

	for (i = 0; i < x->o->nargs; i++) {
		snprintf(where, sizeof where, "argument %d", i + 1);
		if (normalize(x, where, x->o->args[i], num, sizeof num) != 0)
			continue;
		v[0] = x->biz;
		v[1] = num;
		v[2] = x->o->source ? x->o->source : "operator";
		v[3] = x->o->note;
		r = bc_q(&x->d, add ? add_sql : del_sql, add ? 4 : 2, v);
		if (!r)
			return bc_db_fail(&x->d);
		hit = PQntuples(r) > 0;
		PQclear(r);
		if (hit)
			x->added++;
		else
			x->existing++;
		wa_log(WA_LOG_VERBOSE, "[WA_OPTOUT] business_id=%s number=%s %s",
		    x->biz, num, add ? (hit ? "added" : "already opted out") :
		    (hit ? "removed" : "was not opted out"));
		if (emit_number(x, num, add ? (hit ? "added" : "existing") :
		    (hit ? "removed" : "absent")) != 0)
			return WA_EXIT_IO;
	}
	return WA_EXIT_OK;
}

/* --- import ------------------------------------------------------------- */

static int
flush_batch(struct oo *x)
{
	static const char sql[] =
	    "WITH ins AS (INSERT INTO wa_optouts (business_id, number, source, note)"
	    "  SELECT DISTINCT $1::int, n, $3, $4"
	    "  FROM json_array_elements_text($2::json) AS n"
	    "  ON CONFLICT (business_id, number) DO NOTHING RETURNING 1)"
	    " SELECT count(*) FROM ins";
	const char *v[4];
	PGresult *r;
	long long ins;

	if (x->nbatch == 0)
		return 0;
	wa_buf_str(&x->batch, "]");
	if (x->batch.oom) {
		snprintf(x->d.err, sizeof x->d.err, "out of memory");
		return -1;
	}
	v[0] = x->biz;
	v[1] = x->batch.p;
	v[2] = x->o->source ? x->o->source : "import";
	v[3] = x->o->note;
	r = bc_q(&x->d, sql, 4, v);
	if (!r)
		return -1;
	ins = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	x->added += ins;
	/* already there, or twice in the input */
	x->existing += x->nbatch - ins;
	wa_buf_reset(&x->batch);
	x->nbatch = 0;
	return 0;
}

/* Every record of the files (none: standard input), read as create reads
 * its list (record/wa_rec.h: a number a line, JSON lines, or CSV with a
 * header naming the number's column), normalized as create does. */
static int
import_files(struct oo *x)
{
	struct wa_reader *rd;
	struct wa_rec rec;
	struct wa_addr a;
	yajl_val e;
	const char *code, *msg;
	int st, rc = 0;

	rd = wa_reader_new(x->o->args, x->o->nargs, WA_MAXLINE_DEFAULT, NULL);
	if (!rd) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	wa_reader_format(rd, (enum wa_format)x->o->format, x->o->field);
	while (rc == 0 && (st = wa_reader_next(rd, &rec)) != 0) {
		if (st < 0) {
			/* One transaction: a file read in part is not imported. */
			wa_err("%s", wa_reader_error(rd));
			rc = st == -2 ? WA_EXIT_DATA : WA_EXIT_IO;
			break;
		}
		memset(&a, 0, sizeof a);
		if (rec.kind == WA_REC_BAD) {
			wa_err("%s:%lu: %s: %s", rec.file, rec.line, rec.errcode,
			    rec.errmsg);
			x->invalid++;
		} else if (rec.kind == WA_REC_PLAIN && !wa_get(rec.obj, "to")) {
			; /* a blank line */
		} else if (wa_norm_rec(&x->no, &rec, &a) != 0 ||
		    a.kind != WA_ADDR_PHONE || !a.phone[0]) {
			e = wa_get(rec.obj, "error");
			code = wa_get_str(e, "code");
			msg = wa_get_str(e, "message");
			wa_err("%s:%lu: %s: '%s': %s", rec.file, rec.line,
			    code ? code : "invalid_phone", a.input,
			    msg ? msg : "not a phone number");
			x->invalid++;
		} else {
			wa_buf_str(&x->batch, x->nbatch ? "," : "[");
			wa_json_buf_text(&x->batch, a.phone);
			if (++x->nbatch >= IMPORT_BATCH && flush_batch(x) != 0)
				rc = bc_db_fail(&x->d);
		}
		wa_rec_free(&rec);
	}
	wa_reader_free(rd);
	return rc;
}

static int
import(struct oo *x)
{
	int rc;
	yajl_val rec;

	/* One transaction: a file read in part is not imported. */
	if (bc_cmd(&x->d, "BEGIN", 0, NULL) != 0)
		return bc_db_fail(&x->d);
	rc = import_files(x);
	if (rc == WA_EXIT_OK && flush_batch(x) != 0)
		rc = bc_db_fail(&x->d);
	if (rc == WA_EXIT_OK && bc_cmd(&x->d, "COMMIT", 0, NULL) != 0)
		rc = bc_db_fail(&x->d);
	wa_buf_free(&x->batch);
	if (rc != WA_EXIT_OK) {
		if (!x->d.lost)
			bc_cmd(&x->d, "ROLLBACK", 0, NULL);
		return rc;
	}
	wa_log(WA_LOG_VERBOSE, "[WA_OPTOUT] business_id=%s imported added=%lld "
	    "existing=%lld invalid=%lld", x->biz, x->added, x->existing, x->invalid);
	rec = wa_new_object();
	if (!rec)
		return WA_EXIT_SOFTWARE;
	wa_set_int(rec, "business_id", x->o->business_id);
	wa_set_int(rec, "added", x->added);
	wa_set_int(rec, "existing", x->existing);
	wa_set_int(rec, "invalid", x->invalid);
	rc = x->emit(x->arg, rec) != 0 ? WA_EXIT_IO : WA_EXIT_OK;
	wa_val_free(rec);
	return rc;
}

/* --- list --------------------------------------------------------------- */

static int
list(struct oo *x)
{
	static const char sql[] =
	    "SELECT number, to_char(created_at AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), source, note"
	    " FROM wa_optouts WHERE business_id = $1 ORDER BY created_at, number";
	static const char *const keys[] = { "number", "created_at", "source", "note" };
	const char *v[1] = { x->biz };
	PGresult *r = bc_q(&x->d, sql, 1, v);
	yajl_val o;
	int i, j, rc = WA_EXIT_OK;

	if (!r)
		return bc_db_fail(&x->d);
	for (i = 0; i < PQntuples(r) && rc == WA_EXIT_OK; i++) {
		o = wa_new_object();
		if (!o) {
			rc = WA_EXIT_SOFTWARE;
			break;
		}
		wa_set_int(o, "business_id", x->o->business_id);
		for (j = 0; j < 4; j++)
			if (PQgetisnull(r, i, j))
				wa_set_null(o, keys[j]);
			else
				wa_set_str(o, keys[j], PQgetvalue(r, i, j));
		if (x->emit(x->arg, o) != 0)
			rc = WA_EXIT_IO;
		wa_val_free(o);
	}
	PQclear(r);
	return rc;
}

static const char *const ops[] = { [WA_BCAST_OPTOUT_ADD] = "add",
	[WA_BCAST_OPTOUT_REMOVE] = "remove", [WA_BCAST_OPTOUT_IMPORT] = "import",
	[WA_BCAST_OPTOUT_LIST] = "list", NULL };

int
wa_bcast_optout_args(struct wa_bcast_optout *o, char *const *argv, int argc)
{
	int op;

	for (op = 0; argc && ops[op] && strcmp(ops[op], argv[0]); op++)
		;
	if (!argc || !ops[op])
		return wa_usage_error("optout: give add, remove, import or list");
	o->op = (enum wa_bcast_optout_op)op;
	if ((op == WA_BCAST_OPTOUT_ADD || op == WA_BCAST_OPTOUT_REMOVE) && argc < 2)
		return wa_usage_error("optout %s: give one NUMBER or more", argv[0]);
	if (op == WA_BCAST_OPTOUT_LIST && argc > 1)
		return wa_usage_error("optout list: too many arguments");
	if ((op == WA_BCAST_OPTOUT_LIST || op == WA_BCAST_OPTOUT_REMOVE) &&
	    (o->source || o->note))
		return wa_usage_error("optout %s: --source and --note go with add "
		    "and import", argv[0]);
	o->args = argv + 1;
	o->nargs = argc - 1;
	return 0;
}

int
wa_bcast_optout(PGconn *db, const struct wa_bcast_optout *o,
    wa_bcast_emit_fn emit, void *arg)
{
	struct oo x;
	const char *v[1];
	PGresult *r;
	int rc, found;

	memset(&x, 0, sizeof x);
	x.o = o;
	x.d.conn = db;
	x.emit = emit;
	x.arg = arg;
	bc_ll(x.biz, sizeof x.biz, o->business_id);
	if (wa_norm_init(&x.no, o->region, NULL, 0) != 0)
		return o->region ? wa_usage_error("--region: unknown region code '%s'",
		    o->region) : (wa_err("WA_DEFAULT_REGION: unknown region code"),
		    WA_EXIT_CONFIG);
	v[0] = x.biz;
	r = bc_q(&x.d, "SELECT 1 FROM business WHERE id = $1", 1, v);
	if (!r)
		return bc_db_fail(&x.d);
	found = PQntuples(r) == 1;
	PQclear(r);
	if (!found) {
		wa_err("business %lld: no such business", o->business_id);
		return WA_EXIT_DATA;
	}
	switch (o->op) {
	case WA_BCAST_OPTOUT_LIST: return list(&x);
	case WA_BCAST_OPTOUT_IMPORT: rc = import(&x); break;
	default: rc = add_remove(&x); break;
	}
	return rc == WA_EXIT_OK && x.invalid ? WA_EXIT_FAILED : rc;
}
