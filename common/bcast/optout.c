/* optout.c: the opt-outs of a business (table wa_optouts): add, remove,
 * import and list, for `wa-broadcast optout`.
 *
 * Every number is normalized as create normalizes a recipient (the same
 * wa_norm_text, region and rules), so what is stored compares equal to
 * the phone create stores and claim and create can match them in SQL. A
 * number that is no number is one error line, with its position, and the
 * rest go on: the caller's exit status is then WA_EXIT_FAILED.
 *
 * import reads one number a line, or a simple CSV (',', ';' or tab):
 * the number is the first column, or the column a header names phone,
 * mobile, טלפון or נייד. The first line is taken as a header when none of
 * its cells is a number (digits with + - ( ) . and spaces). Quoting is
 * limited to a cell wrapped in double quotes whole: full CSV input is
 * create's business (issue 18's CSV part), not this reader's. Numbers go
 * in batches, one INSERT each. */
#include <ctype.h>
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

static int
fail_db(struct oo *x)
{
	wa_err("%s", x->d.err);
	return x->d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
}

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
			return fail_db(x);
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

/* Trim spaces (and a cell's enclosing double quotes) in place. */
static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
	    s[n - 1] == '\n'))
		s[--n] = '\0';
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s[n - 1] = '\0';
		s++;
	}
	return s;
}

/* Looks like a phone number: digits, with only + - ( ) . and spaces. */
static int
numeric(const char *s)
{
	int digits = 0;

	for (; *s; s++) {
		if (isdigit((unsigned char)*s))
			digits++;
		else if (!strchr("+-(). ", *s))
			return 0;
	}
	return digits > 0;
}

/* A header's name for the number column. */
static int
number_column(const char *s)
{
	static const char *const names[] = { "phone", "mobile", "טלפון", "נייד" };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(s, names[i]) == 0)
			return 1;
	return 0;
}

/* The cells of line (cut in place at delim) into cells[]; how many. A
 * cell in double quotes may hold the delimiter ("Levi, Ron"). */
static int
split(char *line, char delim, char **cells, int max)
{
	int n = 0;
	char *p = line, *q;

	while (n < max) {
		q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '"' && (q = strchr(q + 1, '"')) == NULL)
			q = p;
		q = delim ? strchr(q, delim) : NULL;
		if (q)
			*q = '\0';
		cells[n++] = trim(p);
		if (!q)
			break;
		p = q + 1;
	}
	return n;
}

/* Nothing but spaces (and a line end). */
static int
blank(const char *s)
{
	return s[strspn(s, " \t\r\n")] == '\0';
}

static int
import_file(struct oo *x, const char *file)
{
	FILE *fp = strcmp(file, "-") ? fopen(file, "r") : stdin;
	char *line = NULL, *cells[64], *num, where[300], e164[40];
	size_t cap = 0;
	ssize_t len;
	unsigned long ln = 0;
	int col = 0, first = 1, n, i, rc = 0;
	char delim = 0;

	if (!fp) {
		wa_err("%s: cannot open: %s", file, strerror(errno));
		return WA_EXIT_IO;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		ln++;
		num = line;
		if (ln == 1 && (unsigned char)num[0] == 0xEF &&
		    (unsigned char)num[1] == 0xBB && (unsigned char)num[2] == 0xBF)
			num += 3; /* a UTF-8 BOM, as Excel writes */
		if (blank(num))
			continue;
		if (first) {
			/* The delimiter, from the first line that has one. */
			delim = strchr(num, '\t') ? '\t' : strchr(num, ';') ? ';' :
			    strchr(num, ',') ? ',' : 0;
		}
		n = split(num, delim, cells, 64);
		if (first) {
			first = 0;
			for (i = 0; i < n && !numeric(cells[i]); i++)
				;
			if (i == n) {
				/* A header: it may name the number's column. */
				for (i = 0; i < n; i++)
					if (number_column(cells[i])) {
						col = i;
						break;
					}
				continue;
			}
		}
		snprintf(where, sizeof where, "%s:%lu", file, ln);
		if (col >= n || !*cells[col]) {
			wa_err("%s: missing_phone: no number in column %d", where, col + 1);
			x->invalid++;
			continue;
		}
		if (normalize(x, where, cells[col], e164, sizeof e164) != 0)
			continue;
		wa_buf_str(&x->batch, x->nbatch ? "," : "[");
		wa_json_buf_text(&x->batch, e164);
		if (++x->nbatch >= IMPORT_BATCH && flush_batch(x) != 0) {
			rc = fail_db(x);
			break;
		}
	}
	if (rc == 0 && ferror(fp)) {
		wa_err("%s: %s", file, strerror(errno));
		rc = WA_EXIT_IO;
	}
	free(line);
	if (fp != stdin)
		fclose(fp);
	return rc;
}

static int
import(struct oo *x)
{
	char *const stdin_only[] = { "-" };
	char *const *files = x->o->nargs ? x->o->args : stdin_only;
	int n = x->o->nargs ? x->o->nargs : 1, i, rc = WA_EXIT_OK;
	yajl_val rec;

	/* One transaction: a file read in part is not imported. */
	if (bc_cmd(&x->d, "BEGIN", 0, NULL) != 0)
		return fail_db(x);
	for (i = 0; i < n && rc == WA_EXIT_OK; i++)
		rc = import_file(x, files[i]);
	if (rc == WA_EXIT_OK && flush_batch(x) != 0)
		rc = fail_db(x);
	if (rc == WA_EXIT_OK && bc_cmd(&x->d, "COMMIT", 0, NULL) != 0)
		rc = fail_db(x);
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
		return fail_db(x);
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
		return fail_db(&x);
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
