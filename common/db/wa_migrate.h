/* wa_migrate.h: versioned SQL migrations (used by wa-migrate only).
 *
 * A migration is a file DIR/NNNN_name.sql. Its row in schema_migrations
 * (version, name, checksum, applied_at) is written in the same transaction
 * as its SQL runs. The checksum is the SHA-256 of the file, computed by
 * PostgreSQL. Every function returns 0 or -1 with a one-line reason in err
 * and an exit code (WA_EXIT_*) in *code. */
#ifndef WA_MIGRATE_H
#define WA_MIGRATE_H

#include <stddef.h>
#include <libpq-fe.h>

enum wa_mig_state {
	WA_MIG_PENDING,  /* a file not yet applied */
	WA_MIG_APPLIED,  /* applied, file unchanged */
	WA_MIG_CHANGED,  /* applied, and the file has changed since */
	WA_MIG_MISSING   /* applied, and no file for it in DIR */
};

struct wa_mig {
	int version;
	char name[128];           /* 0003_broadcast_cursor.sql: broadcast_cursor */
	char *path;               /* DIR/file; NULL when missing */
	char *sql;                /* the file's text; NULL when missing */
	size_t len;
	char checksum[65];        /* of the file, hex; "" until wa_mig_read_state */
	enum wa_mig_state state;
	char applied_at[32];      /* UTC, 2026-11-28T12:00:00Z; "" if not applied */
	char applied_checksum[65];
};

struct wa_migset {
	char *dir;
	struct wa_mig *m;         /* sorted by version */
	size_t n;
};

/* The folder to use when none is given: $WA_MIGRATIONS_DIR, else the
 * source tree's migrations/ (the one this binary was built in, or the
 * current directory when it is a wa source tree), else
 * WA_DATADIR/migrations. Writes it into buf. */
const char *wa_mig_default_dir(char *buf, size_t buflen);

/* Read every NNNN_name.sql file of dir. Other files are ignored; a .sql
 * file with another name, two files with one version, or no migration at
 * all is an error. */
int wa_mig_load(struct wa_migset *set, const char *dir, char *err,
    size_t errlen, int *code);
void wa_mig_free(struct wa_migset *set);

/* Take the session advisory lock that serializes wa-migrate runs (waiting,
 * with a line on stderr, while another run holds it), then create
 * schema_migrations if it is not there. */
int wa_mig_lock(PGconn *db, char *err, size_t errlen, int *code);
void wa_mig_unlock(PGconn *db);

/* Checksum every file and set each migration's state from
 * schema_migrations (absent: everything is pending). Rows with no file
 * are added to the set as WA_MIG_MISSING. Changes nothing. */
int wa_mig_read_state(PGconn *db, struct wa_migset *set, char *err,
    size_t errlen, int *code);

/* Refuse (-1, WA_EXIT_DATA) a set that cannot be applied safely: a changed
 * or missing migration, or (when pending_ok is 0) a pending one numbered
 * below an applied one. Reports every problem with wa_err. */
int wa_mig_check(const struct wa_migset *set, int pending_ok, int *code);

/* Run a pending migration and record it, in one transaction; on success
 * the state becomes applied, with applied_at. On failure the transaction
 * is rolled back and err reads "FILE:LINE: PostgreSQL's message". */
int wa_mig_apply(PGconn *db, struct wa_mig *m, char *err, size_t errlen,
    int *code);

/* Baseline: record every pending migration numbered up to version as
 * applied without running it, in one transaction; their state becomes
 * applied. First the migrations up to version run on an empty copy (rolled
 * back): a table or column they make that the database lacks refuses the
 * baseline (WA_EXIT_DATA), naming them. dry_run: only that check. Call
 * with the lock held unless dry_run. */
int wa_mig_baseline(PGconn *db, struct wa_migset *set, int version,
    int dry_run, char *err, size_t errlen, int *code);

/* "pending", "applied", "changed", "missing". */
const char *wa_mig_state_name(enum wa_mig_state st);

#endif
