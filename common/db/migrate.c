/* migrate.c: reading migration files, and applying them to PostgreSQL.
 *
 * The only place where SQL from a file runs: each file as one simple-query
 * string inside a transaction that also records it. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/wa_cli.h"
#include "db/wa_migrate.h"

/* The advisory lock serializing wa-migrate runs. The two-key form lives in
 * a key space of its own, apart from the one-bigint keys workers lock. */
#define LOCK_KEY1 "2002865479" /* "waMG" */
#define LOCK_KEY2 "1"

#define MAXFILE (64L * 1024 * 1024)

/* applied_at as RFC 3339 UTC. */
#define APPLIED_AT \
	"to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const char *
wa_mig_state_name(enum wa_mig_state st)
{
	switch (st) {
	case WA_MIG_PENDING: return "pending";
	case WA_MIG_APPLIED: return "applied";
	case WA_MIG_CHANGED: return "changed";
	case WA_MIG_MISSING: return "missing";
	}
	return "?";
}

/* --- finding and reading the files ------------------------------------ */

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A wa source tree: migrations/ beside cmd/wa-migrate.c. */
static int
source_tree(const char *root, char *buf, size_t buflen)
{
	char probe[PATH_MAX];

	if (snprintf(probe, sizeof probe, "%s/cmd/wa-migrate.c", root) >=
	    (int)sizeof probe || access(probe, R_OK) != 0)
		return 0;
	if (snprintf(buf, buflen, "%s/migrations", root) >= (int)buflen)
		return 0;
	return is_dir(buf);
}

const char *
wa_mig_default_dir(char *buf, size_t buflen)
{
	const char *env = getenv("WA_MIGRATIONS_DIR");
	char exe[PATH_MAX], up[PATH_MAX + 16], root[PATH_MAX], cwd[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(buf, buflen, "%s", env);
		return buf;
	}
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	/* Built in a tree: TREE/build/<variant>/bin/wa-migrate. */
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(up, sizeof up, "%s/../../..", exe);
			if (realpath(up, root) && strcmp(root, cwd) != 0 &&
			    source_tree(root, buf, buflen))
				return buf;
		}
	}
	/* Run from the top of a tree: messages name migrations/NNNN_x.sql. */
	if (cwd[0] && source_tree(".", buf, buflen)) {
		snprintf(buf, buflen, "migrations");
		return buf;
	}
	snprintf(buf, buflen, "%s/migrations", WA_DATADIR);
	return buf;
}

/* NNNN_name.sql: the version and the name; -1 if it is not one, -2 if
 * the name does not fit in namelen - 1 bytes. */
static int
parse_name(const char *fname, int *version, char *name, size_t namelen)
{
	const char *p = fname, *us;
	size_t nd, nl = strlen(fname);
	long v = 0;

	nd = strspn(p, "0123456789");
	if (nd == 0 || nd > 9 || p[nd] != '_')
		return -1;
	for (; p < fname + nd; p++)
		v = v * 10 + (*p - '0');
	us = fname + nd + 1;
	if (nl < 5 || strcmp(fname + nl - 4, ".sql") != 0)
		return -1;
	nl = (size_t)(fname + nl - 4 - us);
	if (v == 0 || nl == 0)
		return -1;
	for (p = us; p < us + nl; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return -1;
	if (nl >= namelen)
		return -2;
	memcpy(name, us, nl);
	name[nl] = '\0';
	*version = (int)v;
	return 0;
}

/* The whole file into m->sql; NUL bytes are refused (SQL text cannot
 * hold them, and PQexec would stop at the first). */
static int
read_sql(struct wa_mig *m, char *err, size_t errlen, int *code)
{
	FILE *f = fopen(m->path, "rb");
	size_t cap = 8192, len = 0;
	char *buf = NULL, *nb;

	if (!f)
		goto ioerr;
	for (;;) {
		nb = realloc(buf, cap);
		if (!nb) {
			snprintf(err, errlen, "out of memory");
			*code = WA_EXIT_SOFTWARE;
			goto fail;
		}
		buf = nb;
		len += fread(buf + len, 1, cap - len - 1, f);
		if (len > (size_t)MAXFILE) {
			snprintf(err, errlen, "%s: larger than %ld bytes", m->path, MAXFILE);
			*code = WA_EXIT_DATA;
			goto fail;
		}
		if (len + 1 < cap)
			break; /* end of file, or an error */
		cap *= 2;
	}
	if (ferror(f))
		goto ioerr;
	fclose(f);
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "%s: holds a NUL byte: not SQL text", m->path);
		*code = WA_EXIT_DATA;
		free(buf);
		return -1;
	}
	m->sql = buf;
	m->len = len;
	return 0;
ioerr:
	snprintf(err, errlen, "%s: %s", m->path, strerror(errno));
	*code = WA_EXIT_IO;
fail:
	free(buf);
	if (f)
		fclose(f);
	return -1;
}

static int
by_version(const void *a, const void *b)
{
	const struct wa_mig *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* A new zeroed entry at the end of the set. */
static struct wa_mig *
grow(struct wa_migset *set)
{
	struct wa_mig *nm = realloc(set->m, (set->n + 1) * sizeof *nm);

	if (!nm)
		return NULL;
	set->m = nm;
	memset(&nm[set->n], 0, sizeof nm[0]);
	return &nm[set->n++];
}

static int
scan_dir(struct wa_migset *set, DIR *d, char *err, size_t errlen, int *code)
{
	struct dirent *de;
	size_t dl = strlen(set->dir);

	for (;;) {
		const char *fn;
		size_t fl;
		struct wa_mig *m;
		int rc;

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		fn = de->d_name;
		fl = strlen(fn);

		if (fn[0] == '.' || fl < 4 || strcmp(fn + fl - 4, ".sql") != 0)
			continue;
		m = grow(set);
		if (m)
			m->path = malloc(dl + fl + 2);
		if (!m || !m->path) {
			snprintf(err, errlen, "out of memory");
			*code = WA_EXIT_SOFTWARE;
			return -1;
		}
		snprintf(m->path, dl + fl + 2, "%s/%s", set->dir, fn);
		rc = parse_name(fn, &m->version, m->name, sizeof m->name);
		if (rc == -2) {
			snprintf(err, errlen, "%s: name longer than %zu characters",
			    m->path, sizeof m->name - 1);
			*code = WA_EXIT_DATA;
			return -1;
		}
		if (rc != 0) {
			snprintf(err, errlen,
			    "%s: not a migration name: want NNNN_name.sql, the name of letters, digits, _ and -",
			    m->path);
			*code = WA_EXIT_DATA;
			return -1;
		}
		if (read_sql(m, err, errlen, code) != 0)
			return -1;
	}
	if (errno) {
		snprintf(err, errlen, "%s: %s", set->dir, strerror(errno));
		*code = WA_EXIT_IO;
		return -1;
	}
	return 0;
}

int
wa_mig_load(struct wa_migset *set, const char *dir, char *err, size_t errlen,
    int *code)
{
	DIR *d;
	size_t i;
	int rc;

	memset(set, 0, sizeof *set);
	set->dir = strdup(dir);
	if (!set->dir) {
		snprintf(err, errlen, "out of memory");
		*code = WA_EXIT_SOFTWARE;
		return -1;
	}
	d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		*code = errno == ENOENT || errno == ENOTDIR ? WA_EXIT_CONFIG : WA_EXIT_IO;
		return -1;
	}
	rc = scan_dir(set, d, err, errlen, code);
	closedir(d);
	if (rc != 0)
		return -1;
	if (set->n == 0) {
		snprintf(err, errlen, "%s: no migrations (NNNN_name.sql files) there", dir);
		*code = WA_EXIT_CONFIG;
		return -1;
	}
	qsort(set->m, set->n, sizeof set->m[0], by_version);
	for (i = 1; i < set->n; i++)
		if (set->m[i].version == set->m[i - 1].version) {
			snprintf(err, errlen, "%s and %s: both are version %d",
			    set->m[i - 1].path, set->m[i].path, set->m[i].version);
			*code = WA_EXIT_DATA;
			return -1;
		}
	return 0;
}

void
wa_mig_free(struct wa_migset *set)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		free(set->m[i].path);
		free(set->m[i].sql);
	}
	free(set->m);
	free(set->dir);
	memset(set, 0, sizeof *set);
}

/* --- talking to the database ------------------------------------------ */

/* One line of text, for a diagnostic: newlines become spaces. */
static void
flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
}

/* Exit code for a failed statement that is ours (not a migration's). */
static int
query_code(PGconn *db, const PGresult *r)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	if (PQstatus(db) != CONNECTION_OK)
		return WA_EXIT_UNAVAIL;
	if (st && (strncmp(st, "40", 2) == 0 || strncmp(st, "53", 2) == 0 ||
	    strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0))
		return WA_EXIT_TEMP;
	if (st && strcmp(st, "42501") == 0)
		return WA_EXIT_CONFIG; /* insufficient privilege */
	return WA_EXIT_SOFTWARE;
}

/* Report a failed statement of ours; always returns -1. */
static int
query_fail(PGconn *db, PGresult *r, const char *what, char *err,
    size_t errlen, int *code)
{
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (!msg)
		msg = PQerrorMessage(db);
	snprintf(err, errlen, "%s: %s", what, msg);
	flatten(err);
	*code = query_code(db, r);
	PQclear(r);
	return -1;
}

static PGresult *
exec(PGconn *db, const char *sql, int n, const char *const *vals)
{
	return PQexecParams(db, sql, n, NULL, vals, NULL, NULL, 0);
}

/* Is schema_migrations there, and is it ours? 1, 0, or -1 (err set). */
static int
table_state(PGconn *db, char *err, size_t errlen, int *code)
{
	PGresult *r = exec(db,
	    "SELECT to_regclass('schema_migrations') IS NOT NULL, "
	    "(SELECT count(*) FROM pg_attribute "
	    "  WHERE attrelid = to_regclass('schema_migrations') AND NOT attisdropped "
	    "  AND attname IN ('version', 'name', 'checksum', 'applied_at'))", 0, NULL);
	int exists, cols;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "reading schema_migrations", err, errlen, code);
	exists = PQgetvalue(r, 0, 0)[0] == 't';
	cols = atoi(PQgetvalue(r, 0, 1));
	PQclear(r);
	if (exists && cols != 4) {
		snprintf(err, errlen,
		    "a table schema_migrations exists but is not wa-migrate's: it lacks version, name, checksum or applied_at");
		*code = WA_EXIT_CONFIG;
		return -1;
	}
	return exists;
}

int
wa_mig_lock(PGconn *db, char *err, size_t errlen, int *code)
{
	PGresult *r = exec(db, "SELECT pg_try_advisory_lock(" LOCK_KEY1 ", " LOCK_KEY2 ")",
	    0, NULL);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "taking the migration lock", err, errlen, code);
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		PQclear(r);
		wa_log(WA_LOG_NORMAL, "%s: another wa-migrate is running; waiting for it",
		    wa_progname());
		r = exec(db, "SELECT pg_advisory_lock(" LOCK_KEY1 ", " LOCK_KEY2 ")", 0, NULL);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			return query_fail(db, r, "waiting for the migration lock", err,
			    errlen, code);
	}
	PQclear(r);
	if (table_state(db, err, errlen, code) < 0)
		return -1;
	r = exec(db,
	    "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    " version INTEGER PRIMARY KEY,"
	    " name TEXT NOT NULL,"
	    " checksum TEXT NOT NULL,"
	    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())", 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return query_fail(db, r, "creating schema_migrations", err, errlen, code);
	PQclear(r);
	return 0;
}

void
wa_mig_unlock(PGconn *db)
{
	PQclear(exec(db, "SELECT pg_advisory_unlock(" LOCK_KEY1 ", " LOCK_KEY2 ")",
	    0, NULL));
}

static int
checksum(PGconn *db, struct wa_mig *m, char *err, size_t errlen, int *code)
{
	const char *vals[1] = { m->sql };
	int lens[1] = { (int)m->len }, fmts[1] = { 1 };
	PGresult *r = PQexecParams(db, "SELECT encode(sha256($1::bytea), 'hex')",
	    1, NULL, vals, lens, fmts, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, m->path, err, errlen, code);
	snprintf(m->checksum, sizeof m->checksum, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static struct wa_mig *
find(struct wa_migset *set, int version)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->m[i].version == version)
			return &set->m[i];
	return NULL;
}

/* Apply one schema_migrations row to the set. */
static int
merge_row(struct wa_migset *set, PGresult *r, int i)
{
	int version = atoi(PQgetvalue(r, i, 0));
	struct wa_mig *m = find(set, version);

	if (!m) {
		m = grow(set);
		if (!m)
			return -1;
		m->version = version;
		snprintf(m->name, sizeof m->name, "%s", PQgetvalue(r, i, 1));
		m->state = WA_MIG_MISSING;
	} else {
		m->state = strcmp(m->checksum, PQgetvalue(r, i, 2)) == 0 ?
		    WA_MIG_APPLIED : WA_MIG_CHANGED;
	}
	snprintf(m->applied_checksum, sizeof m->applied_checksum, "%s",
	    PQgetvalue(r, i, 2));
	snprintf(m->applied_at, sizeof m->applied_at, "%s", PQgetvalue(r, i, 3));
	return 0;
}

int
wa_mig_read_state(PGconn *db, struct wa_migset *set, char *err,
    size_t errlen, int *code)
{
	PGresult *r;
	size_t i, nfiles = set->n;
	int exists, k;

	for (i = 0; i < nfiles; i++) {
		set->m[i].state = WA_MIG_PENDING;
		set->m[i].applied_at[0] = '\0';
		if (checksum(db, &set->m[i], err, errlen, code) != 0)
			return -1;
	}
	exists = table_state(db, err, errlen, code);
	if (exists <= 0)
		return exists;
	r = exec(db, "SELECT version, name, checksum, " APPLIED_AT
	    " FROM schema_migrations ORDER BY version", 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "reading schema_migrations", err, errlen, code);
	for (k = 0; k < PQntuples(r); k++)
		if (merge_row(set, r, k) != 0) {
			PQclear(r);
			snprintf(err, errlen, "out of memory");
			*code = WA_EXIT_SOFTWARE;
			return -1;
		}
	PQclear(r);
	qsort(set->m, set->n, sizeof set->m[0], by_version);
	return 0;
}

int
wa_mig_check(const struct wa_migset *set, int pending_ok, int *code)
{
	const struct wa_mig *last = NULL;
	size_t i;
	int bad = 0;

	for (i = 0; i < set->n; i++) {
		const struct wa_mig *m = &set->m[i];

		if (m->state == WA_MIG_CHANGED) {
			wa_err("%s: changed since it was applied at %s (checksum %.12s..., applied as %.12s...): restore it, or add a new migration instead",
			    m->path, m->applied_at, m->checksum, m->applied_checksum);
			bad = 1;
		} else if (m->state == WA_MIG_MISSING) {
			wa_err("the database has migration %d (%s), which is not in %s: is this wa older than the database?",
			    m->version, m->name, set->dir);
			bad = 1;
		}
		if (m->state != WA_MIG_PENDING)
			last = m;
	}
	for (i = 0; i < set->n && !pending_ok; i++) {
		const struct wa_mig *m = &set->m[i];

		if (m->state == WA_MIG_PENDING && last && m->version < last->version) {
			wa_err("%s: pending, but migration %d is applied already: number it after %d",
			    m->path, last->version, last->version);
			bad = 1;
		}
	}
	if (bad)
		*code = WA_EXIT_DATA;
	return bad ? -1 : 0;
}

/* The line of the pos'th character (1-based, as PostgreSQL counts them:
 * characters, not bytes) of a UTF-8 text. */
static unsigned long
line_of(const char *s, size_t len, long pos)
{
	unsigned long line = 1;
	long chars = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80 && ++chars >= pos)
			break;
		if (s[i] == '\n')
			line++;
	}
	return line;
}

static int
ident_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

/* Length of the $tag$ that starts at s (at a '$'), or 0 if none does. */
static size_t
dollar_tag(const char *s, const char *end)
{
	const char *p = s + 1;

	if (p < end && *p >= '0' && *p <= '9')
		return 0; /* $1: a parameter */
	while (p < end && *p != '$' && ident_char((unsigned char)*p))
		p++;
	return p < end && *p == '$' ? (size_t)(p - s) + 1 : 0;
}

/* The line on which statement n (0-based) of a file starts, counting
 * statements as the server does: split at semicolons outside quotes,
 * comments and dollar-quoted bodies, empty ones skipped. Used only to
 * name the line of an error that has no position (one raised while the
 * statement ran, not while it was parsed). 0 if there is no such one. */
static unsigned long
stmt_line(const char *s, size_t len, int n)
{
	const char *p = s, *end = s + len, *q;
	unsigned long line = 1, start = 0;
	size_t tag;
	int depth;

	while (p < end) {
		if (*p == '\n') {
			line++;
			p++;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f') {
			p++;
			continue;
		}
		if (p + 1 < end && p[0] == '-' && p[1] == '-') {
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		if (p + 1 < end && p[0] == '/' && p[1] == '*') {
			for (depth = 1, p += 2; p < end && depth > 0; p++) {
				if (*p == '\n')
					line++;
				else if (p + 1 < end && p[0] == '/' && p[1] == '*')
					depth++, p++;
				else if (p + 1 < end && p[0] == '*' && p[1] == '/')
					depth--, p++;
			}
			continue;
		}
		if (*p == ';') {
			if (start && n-- == 0)
				return start;
			start = 0;
			p++;
			continue;
		}
		if (!start)
			start = line;
		if (*p == '\'' || *p == '"') {
			/* E'..' takes backslash escapes; '' and "" are a quote. */
			int esc = *p == '\'' && p > s && (p[-1] == 'E' || p[-1] == 'e') &&
			    (p - 1 == s || !ident_char((unsigned char)p[-2]));
			char quote = *p++;

			while (p < end) {
				if (*p == '\n')
					line++;
				if (esc && *p == '\\' && p + 1 < end) {
					if (p[1] == '\n')
						line++;
					p += 2;
					continue;
				}
				if (*p++ == quote) {
					if (p < end && *p == quote) {
						p++;
						continue;
					}
					break;
				}
			}
			continue;
		}
		if (*p == '$' && (p == s || !ident_char((unsigned char)p[-1])) &&
		    (tag = dollar_tag(p, end)) > 0) {
			for (q = p + tag; q < end; q++) {
				if (*q == '\n')
					line++;
				if (*q == '$' && (size_t)(end - q) >= tag && memcmp(q, p, tag) == 0)
					break;
			}
			p = q < end ? q + tag : end;
			continue;
		}
		p++;
	}
	return start && n == 0 ? start : 0;
}

/* Exit code for a failed migration: its SQL is broken (65) unless the
 * server went away (69) or the failure is transient (75). */
static int
migration_code(PGconn *db, const char *sqlstate)
{
	if (PQstatus(db) != CONNECTION_OK)
		return WA_EXIT_UNAVAIL;
	if (sqlstate && (strncmp(sqlstate, "40", 2) == 0 ||
	    strncmp(sqlstate, "53", 2) == 0 || strcmp(sqlstate, "55P03") == 0 ||
	    strcmp(sqlstate, "57014") == 0))
		return WA_EXIT_TEMP;
	return WA_EXIT_DATA;
}

/* "FILE:LINE: message; detail; hint: hint" from a failed result; the line
 * is the error's position, else the start of statement stmt (>= 0). */
static void
migration_error(PGconn *db, const struct wa_mig *m, const PGresult *r,
    int stmt, char *err, size_t errlen, int *code)
{
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
	char where[64] = "";
	unsigned long line;
	size_t n;

	if (!msg)
		msg = PQerrorMessage(db);
	if (pos)
		snprintf(where, sizeof where, ":%lu", line_of(m->sql, m->len, atol(pos)));
	else if (stmt >= 0 && (line = stmt_line(m->sql, m->len, stmt)) > 0)
		snprintf(where, sizeof where, ":%lu", line);
	n = (size_t)snprintf(err, errlen, "%s%s: %s", m->path, where, msg);
	if (detail && n < errlen)
		n += (size_t)snprintf(err + n, errlen - n, "; %s", detail);
	if (hint && n < errlen)
		snprintf(err + n, errlen - n, "; hint: %s", hint);
	flatten(err);
	*code = migration_code(db, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
}

static void
rollback(PGconn *db)
{
	if (PQstatus(db) == CONNECTION_OK)
		PQclear(exec(db, "ROLLBACK", 0, NULL));
}

/* INSERT the row of m; the new applied_at goes into m. */
static int
record(PGconn *db, struct wa_mig *m, char *err, size_t errlen, int *code)
{
	char ver[16];
	const char *vals[3] = { ver, m->name, m->checksum };
	PGresult *r;

	snprintf(ver, sizeof ver, "%d", m->version);
	r = exec(db, "INSERT INTO schema_migrations (version, name, checksum) "
	    "VALUES ($1, $2, $3) RETURNING " APPLIED_AT, 3, vals);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "recording the migration", err, errlen, code);
	snprintf(m->applied_at, sizeof m->applied_at, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int
simple(PGconn *db, const char *sql, char *err, size_t errlen, int *code)
{
	PGresult *r = exec(db, sql, 0, NULL);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return query_fail(db, r, sql, err, errlen, code);
	PQclear(r);
	return 0;
}

/* Run the statements of m in the open transaction; -1 with err reading
 * "FILE:LINE: message" when one fails (the transaction is then aborted)
 * or when the file ends the transaction itself. */
static int
run_file(PGconn *db, const struct wa_mig *m, char *err, size_t errlen,
    int *code)
{
	PGresult *r;
	ExecStatusType st;
	int done = 0, failed = 0;

	/* The file may hold many statements: the simple query protocol runs
	 * them all, in our transaction, with a result for each, so the one
	 * that failed is known by counting. */
	if (!PQsendQuery(db, m->sql)) {
		migration_error(db, m, NULL, -1, err, errlen, code);
		return -1;
	}
	while ((r = PQgetResult(db)) != NULL) {
		st = PQresultStatus(r);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			done++;
		else if (st != PGRES_EMPTY_QUERY && !failed) {
			migration_error(db, m, r, done, err, errlen, code);
			failed = 1;
		}
		PQclear(r);
	}
	if (failed || PQstatus(db) != CONNECTION_OK) {
		if (!failed)
			migration_error(db, m, NULL, -1, err, errlen, code);
		return -1;
	}
	if (PQtransactionStatus(db) != PQTRANS_INTRANS) {
		snprintf(err, errlen, "%s: ends the transaction itself (COMMIT or ROLLBACK in the file): remove that, each migration runs in a transaction of its own",
		    m->path);
		*code = WA_EXIT_DATA;
		return -1;
	}
	return 0;
}

int
wa_mig_apply(PGconn *db, struct wa_mig *m, char *err, size_t errlen, int *code)
{
	PGresult *r;

	if (simple(db, "BEGIN", err, errlen, code) != 0)
		return -1;
	if (run_file(db, m, err, errlen, code) != 0) {
		rollback(db);
		return -1;
	}
	if (record(db, m, err, errlen, code) != 0) {
		rollback(db);
		return -1;
	}
	/* Deferred constraints are checked here: still the migration's fault. */
	r = exec(db, "COMMIT", 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		migration_error(db, m, r, -1, err, errlen, code);
		PQclear(r);
		rollback(db);
		return -1;
	}
	PQclear(r);
	m->state = WA_MIG_APPLIED;
	return 0;
}

/* Baseline records migrations without running them, so the database must
 * have what they make already: a wrong VERSION, or the wrong database,
 * would otherwise pass for adopted and fail in the tools later. The
 * migrations up to version run on an empty copy (temporary tables:
 * search_path pg_temp, in a subtransaction rolled back at once); every
 * table and column they make must then exist in the real schema. */
static int
baseline_verify(PGconn *db, const struct wa_migset *set, int version,
    char *err, size_t errlen, int *code)
{
	static const char made[] =
	    "SELECT coalesce(json_agg(json_build_array(c.relname, a.attname)"
	    "  ORDER BY c.relname, a.attnum), '[]')"
	    " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
	    " WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind IN ('r', 'p')"
	    " AND a.attnum > 0 AND NOT a.attisdropped";
	/* Resolved as the tools resolve them: unqualified, on search_path. */
	static const char lacking[] =
	    "WITH want AS (SELECT x->>0 AS rel, x->>1 AS att"
	    "  FROM json_array_elements($1::json) AS x),"
	    " miss AS (SELECT DISTINCT CASE"
	    "  WHEN to_regclass(quote_ident(w.rel)) IS NULL THEN 'table ' || w.rel"
	    "  ELSE 'column ' || w.rel || '.' || w.att END AS what"
	    "  FROM want w WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a"
	    "   WHERE a.attrelid = to_regclass(quote_ident(w.rel))"
	    "   AND a.attname = w.att AND a.attnum > 0 AND NOT a.attisdropped))"
	    " SELECT count(*), string_agg(what, ', ' ORDER BY what) FROM miss";
	PGresult *r;
	char *cols;
	const char *v[1];
	size_t i;

	if (simple(db, "SAVEPOINT wa_baseline", err, errlen, code) != 0)
		return -1;
	r = exec(db, "SELECT set_config('search_path', 'pg_temp', true)", 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "setting search_path", err, errlen, code);
	PQclear(r);
	for (i = 0; i < set->n && set->m[i].version <= version; i++)
		if (run_file(db, &set->m[i], err, errlen, code) != 0) {
			/* Ours on an empty copy: a file that cannot run there
			 * has no place in baseline's checks. */
			size_t n = strlen(err);

			snprintf(err + n, errlen - n, " (baseline runs the migrations up to %d on an empty copy to check the database has what they make)",
			    version);
			return -1;
		}
	r = exec(db, made, 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "listing the columns", err, errlen, code);
	cols = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (!cols || simple(db, "ROLLBACK TO SAVEPOINT wa_baseline", err, errlen,
	    code) != 0) {
		if (!cols) {
			snprintf(err, errlen, "out of memory");
			*code = WA_EXIT_SOFTWARE;
		}
		free(cols);
		return -1;
	}
	v[0] = cols;
	r = exec(db, lacking, 1, v);
	free(cols);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return query_fail(db, r, "comparing the columns", err, errlen, code);
	if (strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
		snprintf(err, errlen, "baseline %d: the database lacks %s, which the migrations up to %d make: nothing recorded; baseline the last version whose changes the database has, or check --db",
		    version, PQgetvalue(r, 0, 1), version);
		*code = WA_EXIT_DATA;
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

int
wa_mig_baseline(PGconn *db, struct wa_migset *set, int version, int dry_run,
    char *err, size_t errlen, int *code)
{
	size_t i;

	if (simple(db, "BEGIN", err, errlen, code) != 0)
		return -1;
	if (baseline_verify(db, set, version, err, errlen, code) != 0) {
		rollback(db);
		return -1;
	}
	if (dry_run) {
		rollback(db);
		return 0;
	}
	for (i = 0; i < set->n && set->m[i].version <= version; i++) {
		if (set->m[i].state != WA_MIG_PENDING)
			continue;
		if (record(db, &set->m[i], err, errlen, code) != 0) {
			rollback(db);
			return -1;
		}
	}
	if (simple(db, "COMMIT", err, errlen, code) != 0) {
		rollback(db);
		return -1;
	}
	for (i = 0; i < set->n && set->m[i].version <= version; i++)
		if (set->m[i].state == WA_MIG_PENDING)
			set->m[i].state = WA_MIG_APPLIED;
	return 0;
}
