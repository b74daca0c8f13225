/* db.c: connecting to PostgreSQL and checking the schema version.
 *
 * Connection failures are sorted into exit codes from libpq's message text:
 * libpq has no error code for a failed connection. Every message that can
 * hold connection-string text has the password masked first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_cli.h"
#include "db/wa_db.h"

#ifndef WA_SCHEMA_VERSION
#error "WA_SCHEMA_VERSION is not defined: the Makefile passes it for db.c"
#endif
const int wa_schema_version = WA_SCHEMA_VERSION;

#define MAXSECRETS 4

/* Password values that a message about this connection string must not
 * show, raw (as typed, maybe percent-encoded) and decoded. */
struct secrets {
	char *v[MAXSECRETS];
	int n;
};

static int
env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

int
wa_db_configured(void)
{
	return env_set("DATABASE_URL") || env_set("PGHOST") ||
	    env_set("PGDATABASE") || env_set("PGSERVICE") || env_set("PGHOSTADDR");
}

static void
secret_add(struct secrets *s, const char *p, size_t n)
{
	char *v;

	if (n == 0 || s->n == MAXSECRETS)
		return;
	v = strndup(p, n);
	if (v)
		s->v[s->n++] = v;
}

static void
secrets_free(struct secrets *s)
{
	while (s->n > 0)
		free(s->v[--s->n]);
}

/* The raw password of a URL's user info: postgresql://user:PASS@host. As
 * libpq does, the user info ends at the first '@' before any '/'. */
static void
secret_userinfo(struct secrets *s, const char *cs)
{
	const char *p = strstr(cs, "://"), *at, *colon;

	if (!p)
		return;
	p += 3;
	at = p + strcspn(p, "@/");
	if (*at != '@')
		return;
	colon = memchr(p, ':', (size_t)(at - p));
	if (colon)
		secret_add(s, colon + 1, (size_t)(at - colon - 1));
}

/* Raw values after "password=" (a URL query parameter or a keyword). */
static void
secret_keyword(struct secrets *s, const char *cs)
{
	const char *p = strstr(cs, "password"), *v;
	size_t n;

	for (; p; p = strstr(p, "password")) {
		p += strlen("password");
		v = p + strspn(p, " \t");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t'");
		n = strcspn(v, " \t'&");
		secret_add(s, v, n);
		p = v;
	}
}

static void
secrets_collect(struct secrets *s, const char *cs)
{
	PQconninfoOption *opts, *o;

	secret_userinfo(s, cs);
	secret_keyword(s, cs);
	opts = PQconninfoParse(cs, NULL);
	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val)
			secret_add(s, o->val, strlen(o->val));
	PQconninfoFree(opts);
}

/* Replace every secret in buf with "***", in place (cut to buflen). */
static void
mask(char *buf, size_t buflen, const struct secrets *s)
{
	char *out;
	int i;

	if (buflen == 0 || s->n == 0)
		return;
	out = malloc(buflen);
	if (!out)
		return;
	for (i = 0; i < s->n; i++) {
		size_t sl = strlen(s->v[i]), o = 0;
		const char *p = buf;

		while (*p && o + 1 < buflen) {
			if (strncmp(p, s->v[i], sl) == 0) {
				size_t k;

				for (k = 0; k < 3 && o + 1 < buflen; k++)
					out[o++] = '*';
				p += sl;
			} else {
				out[o++] = *p++;
			}
		}
		out[o] = '\0';
		memcpy(buf, out, o + 1);
	}
	free(out);
}

/* Copy the first line of msg into buf, without libpq's severity prefix. */
static const char *
first_line(const char *msg, char *buf, size_t buflen)
{
	static const char *const prefixes[] = { "ERROR:  ", "FATAL:  " };
	size_t i, n;

	if (buflen == 0)
		return buf;
	if (!msg)
		msg = "";
	for (i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
			msg += strlen(prefixes[i]);
	n = strcspn(msg, "\r\n");
	if (n >= buflen)
		n = buflen - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
	return buf;
}

const char *
wa_db_errmsg(PGconn *db, char *buf, size_t buflen)
{
	return first_line(db ? PQerrorMessage(db) : "out of memory", buf, buflen);
}

static int
has_any(const char *msg, const char *const *needles)
{
	for (; *needles; needles++)
		if (strstr(msg, *needles))
			return 1;
	return 0;
}

/* The exit code for a failed connection, from libpq's whole message and,
 * when that does not tell, a ping with the same settings. */
static int
classify(const char *msg, const char *const *keys, const char *const *vals)
{
	/* SQLSTATE 57P03 and 53300: the server is there but not taking
	 * connections yet or right now; trying again later will work. */
	static const char *const temp[] = {
		"the database system is starting up",
		"the database system is shutting down",
		"the database system is in recovery mode",
		"the database system is not yet accepting connections",
		"the database system is not accepting connections",
		"too many clients already",
		"remaining connection slots are reserved",
		NULL
	};
	/* The server answered, but the settings are wrong: trying again with
	 * the same settings cannot work. */
	static const char *const config[] = {
		"password authentication failed",
		"authentication failed for user",
		"no password supplied",
		"no pg_hba.conf entry",
		"does not exist", /* role or database */
		"invalid ",       /* libpq's checks of option values */
		"could not match",
		NULL
	};

	/* libpq's own texts (English: we never call setlocale) for a server
	 * it did not reach: asking again would only wait twice as long. */
	static const char *const unreached[] = {
		"Connection refused",
		"No such file or directory", /* no Unix socket */
		"timeout expired",
		"could not translate host name",
		"Network is unreachable",
		"No route to host",
		NULL
	};

	if (has_any(msg, temp))
		return WA_EXIT_TEMP;
	if (has_any(msg, config))
		return WA_EXIT_CONFIG;
	if (has_any(msg, unreached))
		return WA_EXIT_UNAVAIL;
	/* The server's part of the message is in its lc_messages, so the
	 * texts above miss a server speaking another language. A ping answers
	 * with a code: "rejected" is SQLSTATE 57P03, not taking connections
	 * for now. */
	if (PQpingParams(keys, vals, 1) == PQPING_REJECT)
		return WA_EXIT_TEMP;
	return WA_EXIT_UNAVAIL;
}

/* Server notices: warnings are shown, the rest only at -v. */
static void
notice_receiver(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	if (!msg)
		return;
	if (sev && strcmp(sev, "WARNING") == 0)
		wa_warn("database: %s", msg);
	else
		wa_log(WA_LOG_VERBOSE, "%s: database notice: %s", wa_progname(), msg);
}

PGconn *
wa_db_connect(const char *url, const char *appname, char *err,
    size_t errlen, int *code)
{
	const char *keys[10], *vals[10];
	const char *what = "database URL";
	struct secrets sec = { { NULL }, 0 };
	char *perr = NULL;
	PQconninfoOption *opts;
	PGconn *db;
	int k = 0;

	if (!url || !*url) {
		url = getenv("DATABASE_URL");
		what = "DATABASE_URL";
	}
	if (!url)
		url = ""; /* libpq's PG* variables and service file */
	secrets_collect(&sec, url);

	opts = PQconninfoParse(url, &perr);
	if (!opts) {
		snprintf(err, errlen, "%s: malformed connection string: %s", what,
		    perr ? perr : "out of memory");
		first_line(err, err, errlen);
		mask(err, errlen, &sec);
		*code = perr ? WA_EXIT_CONFIG : WA_EXIT_SOFTWARE;
		PQfreemem(perr);
		secrets_free(&sec);
		return NULL;
	}
	PQconninfoFree(opts);

	/* Earlier entries are overridden by the URL's own settings. */
	if (!env_set("PGCONNECT_TIMEOUT")) {
		keys[k] = "connect_timeout";
		vals[k++] = "10";
	}
	/* A worker's claims live as long as its session (an advisory lock).
	 * A host that dies without closing its connections would keep them
	 * for the OS default of some two hours; with keepalives the server
	 * drops the session within about half a minute, and we notice a dead
	 * server as soon (here also when data goes unacknowledged). The
	 * server's settings exist in every PostgreSQL still in use; its
	 * tcp_user_timeout only from 12, so it is left out. A URL's or
	 * PGOPTIONS' own settings win. */
	keys[k] = "keepalives_idle";
	vals[k++] = "10";
	keys[k] = "keepalives_interval";
	vals[k++] = "5";
	keys[k] = "keepalives_count";
	vals[k++] = "3";
	keys[k] = "tcp_user_timeout";
	vals[k++] = "30000";
	if (!env_set("PGOPTIONS")) {
		keys[k] = "options";
		vals[k++] = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
		    "-c tcp_keepalives_count=3";
	}
	keys[k] = "fallback_application_name";
	vals[k++] = appname;
	keys[k] = "dbname";
	vals[k++] = url;
	keys[k] = NULL;
	vals[k] = NULL;

	db = PQconnectdbParams(keys, vals, 1);
	if (!db || PQstatus(db) != CONNECTION_OK) {
		const char *msg = db ? PQerrorMessage(db) : "out of memory";
		char line[512];

		char *fatal;

		*code = db ? classify(msg, keys, vals) : WA_EXIT_SOFTWARE;
		first_line(msg, line, sizeof line);
		/* "...port 5432 failed: FATAL:  database "x" does not exist" */
		fatal = strstr(line, "FATAL:  ");
		if (fatal)
			memmove(fatal, fatal + 8, strlen(fatal + 8) + 1);
		snprintf(err, errlen, "cannot connect to the database: %s", line);
		mask(err, errlen, &sec);
		PQfinish(db);
		secrets_free(&sec);
		return NULL;
	}
	secrets_free(&sec);
	PQsetNoticeReceiver(db, notice_receiver, NULL);
	return db;
}

/* Run a one-value query; 0 with the value in *out (NULL reads as 0). */
static int
query_int(PGconn *db, const char *sql, long *out)
{
	PGresult *r = PQexecParams(db, sql, 0, NULL, NULL, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

	if (ok)
		*out = PQgetisnull(r, 0, 0) ? 0 : strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return ok ? 0 : -1;
}

int
wa_db_check_schema(PGconn *db, char *err, size_t errlen, int *code)
{
	long exists = 0, have = 0;
	char line[512];

	/* to_regclass first: no error (and no server log line) when the
	 * table is not there yet. */
	if (query_int(db, "SELECT (to_regclass('schema_migrations') IS NOT NULL)::int",
	        &exists) != 0 ||
	    (exists && query_int(db, "SELECT max(version) FROM schema_migrations",
	        &have) != 0)) {
		snprintf(err, errlen, "cannot read the schema version: %s",
		    wa_db_errmsg(db, line, sizeof line));
		*code = PQstatus(db) == CONNECTION_OK ? WA_EXIT_CONFIG : WA_EXIT_UNAVAIL;
		return -1;
	}
	if (have == wa_schema_version)
		return 0;
	if (have < wa_schema_version)
		snprintf(err, errlen,
		    "database schema is at %ld, this version needs %d: run wa-migrate",
		    have, wa_schema_version);
	else
		snprintf(err, errlen,
		    "database schema is at %ld, newer than the %d this version needs: upgrade wa",
		    have, wa_schema_version);
	*code = WA_EXIT_CONFIG;
	return -1;
}

PGconn *
wa_db_open(const char *url, const char *appname, char *err, size_t errlen,
    int *code)
{
	PGconn *db = wa_db_connect(url, appname, err, errlen, code);

	if (db && wa_db_check_schema(db, err, errlen, code) != 0) {
		PQfinish(db);
		db = NULL;
	}
	return db;
}
