/* wa_db.h: connecting to PostgreSQL and checking the schema version. */
#ifndef WA_DB_H
#define WA_DB_H

#include <stddef.h>
#include <libpq-fe.h>

#include "base/wa_buf.h"

/* The schema version (highest migration number) this build needs. */
extern const int wa_schema_version;

/* 1 when a database is configured: DATABASE_URL, or libpq's PG* variables
 * (PGHOST, PGDATABASE, PGSERVICE, PGHOSTADDR). */
int wa_db_configured(void);

/* Connect using url, else DATABASE_URL, else libpq's PG* variables and
 * service files. On failure returns NULL, writes a one-line reason (with no
 * password in it) into err and the exit code into *code: WA_EXIT_CONFIG for
 * a malformed URL, WA_EXIT_TEMP while the server is starting up,
 * WA_EXIT_UNAVAIL when it cannot be reached. */
PGconn *wa_db_connect(const char *url, const char *appname, char *err,
    size_t errlen, int *code);

/* Check the schema is at wa_schema_version. 0 when it is; else -1 with err
 * ("database schema is at N, this version needs M: run wa-migrate") and
 * *code (WA_EXIT_CONFIG). Changes nothing. */
int wa_db_check_schema(PGconn *db, char *err, size_t errlen, int *code);

/* wa_db_connect, then wa_db_check_schema: a connection the programs may
 * use, or NULL with err and *code as those say. */
PGconn *wa_db_open(const char *url, const char *appname, char *err,
    size_t errlen, int *code);

/* PQerrorMessage without its trailing newline, cut to one line. */
const char *wa_db_errmsg(PGconn *db, char *buf, size_t buflen);

/* Append one row of COPY ... FROM STDIN text format to b: n fields, a
 * NULL one as SQL NULL, each value escaped (backslash, tab, newline, CR). */
void wa_db_copy_row(struct wa_buf *b, int n, const char *const *v);

/* Run sql (a COPY ... FROM STDIN in text format) and send it the rows in
 * data. The last result, as PQexec gives it: PGRES_COMMAND_OK when every
 * row was copied; NULL when the connection failed. */
PGresult *wa_db_copy_in(PGconn *db, const char *sql, const char *data,
    size_t len);

#endif
