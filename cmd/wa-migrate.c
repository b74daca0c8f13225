/* wa-migrate: apply the versioned SQL migrations; the only program that
 * changes the database's shape. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/wa_cli.h"
#include "base/wa_opt.h"
#include "cfg/wa_cfg.h"
#include "db/wa_db.h"
#include "db/wa_migrate.h"
#include "record/wa_rec.h"

enum cmd { CMD_UP, CMD_STATUS, CMD_BASELINE, NCMDS };

static const struct wa_optcmd cmds[] = {
	[CMD_UP] = { "up", "up", "apply the pending migrations (the default)" },
	[CMD_STATUS] = { "status", "status", "list every migration with its state" },
	[CMD_BASELINE] = { "baseline", "baseline VERSION",
	    "record the migrations up to VERSION as\n"
	    "applied without running them" },
	{ NULL, NULL, NULL }
};

enum { O_DB, O_DIR, O_DRYRUN, O_CONFIG, O_VERBOSE, O_QUIET };

static const struct wa_opt optab[] = {
	{ "db", 0, WA_ARG_STR, "URL", 0, 0, WA_CMD_ALL, O_DB,
	    "the database (default DATABASE_URL of the config\n"
	    "or environment, else libpq's PG* variables and\n"
	    "service file)" },
	{ "dir", 0, WA_ARG_FILE, "DIR", 0, 0, WA_CMD_ALL, O_DIR,
	    "the migrations folder (default $WA_MIGRATIONS_DIR,\n"
	    "else migrations/ of a wa source tree, else\n"
	    WA_DATADIR "/migrations)" },
	{ "dry-run", 0, WA_ARG_NONE, NULL, 0, 0, 1u << CMD_UP | 1u << CMD_BASELINE,
	    O_DRYRUN, "print what up or baseline would do; change nothing" },
	{ "config", 'c', WA_ARG_FILE, "FILE", 0, 0, WA_CMD_ALL, O_CONFIG,
	    "KEY=VALUE settings (default $WA_CONFIG)" },
	{ "verbose", 'v', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_VERBOSE,
	    "a line per step on stderr" },
	{ "quiet", 'q', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_QUIET, "errors only" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, NULL }
};

struct opts {
	enum cmd cmd;
	int baseline;     /* VERSION of baseline */
	int dry_run, level;
	const char *db, *dir, *config;
};

static int
set_opt(void *ctx, int id, const struct wa_optval *v)
{
	struct opts *op = ctx;

	switch (id) {
	case O_DB: op->db = v->s; break;
	case O_DIR: op->dir = v->s; break;
	case O_DRYRUN: op->dry_run = 1; break;
	case O_CONFIG: op->config = v->s; break;
	case O_VERBOSE: op->level = WA_LOG_VERBOSE; break;
	case O_QUIET: op->level = WA_LOG_QUIET; break;
	}
	return 0;
}

static const struct wa_optspec spec = {
	"Usage: wa-migrate [OPTION]... [up]\n"
	"  or:  wa-migrate [OPTION]... status\n"
	"  or:  wa-migrate [OPTION]... baseline VERSION\n"
	"Apply the pending migrations (NNNN_name.sql) in order, each in one\n"
	"transaction together with its row in schema_migrations; list every\n"
	"migration with its state; or adopt an existing database by recording the\n"
	"migrations up to VERSION as applied without running them (once the\n"
	"database is found to have every table and column they make).\n",
	"A record per migration (version, name, state, applied_at) goes to standard\n"
	"output; a table when it is a terminal.\n"
	"Exit status: 0 done, 64 usage, 65 a migration failed, was changed or is\n"
	"not a usable file, or the database lacks what baseline records, 69\n"
	"database unreachable, 70 internal error, 74 I/O error, 75 database\n"
	"starting up or busy, 78 bad URL, folder or config file.\n"
	"See wa-migrate(1) and wa(7).\n",
	cmds, NCMDS, CMD_UP, optab, set_opt
};

/* Records, or an aligned table on a terminal. */
struct out {
	struct wa_writer *w;
	int table, header;
	int namew;
};

static void
out_init(struct out *o, const struct wa_migset *set)
{
	size_t i;

	memset(o, 0, sizeof *o);
	o->table = isatty(STDOUT_FILENO);
	o->namew = 4;
	for (i = 0; i < set->n; i++)
		if ((int)strlen(set->m[i].name) > o->namew)
			o->namew = (int)strlen(set->m[i].name);
	if (!o->table)
		o->w = wa_writer_new(stdout);
}

/* Write m as a record or a table row; a write error shows at exit. */
static void
out_put(struct out *o, const struct wa_mig *m, const char *state)
{
	yajl_val rec;

	if (o->table) {
		if (!o->header++)
			printf("%7s  %-*s  %-7s  %s\n", "VERSION", o->namew, "NAME",
			    "STATE", "APPLIED AT");
		printf("%7d  %-*s  %-7s  %s\n", m->version, o->namew, m->name, state,
		    m->applied_at[0] ? m->applied_at : "-");
		return;
	}
	rec = wa_new_object();
	if (!rec || !o->w)
		return;
	wa_set_int(rec, "version", m->version);
	wa_set_str(rec, "name", m->name);
	wa_set_str(rec, "state", state);
	if (m->applied_at[0])
		wa_set_str(rec, "applied_at", m->applied_at);
	else
		wa_set_null(rec, "applied_at");
	wa_writer_put(o->w, rec);
	wa_val_free(rec);
}

static void
out_free(struct out *o)
{
	wa_writer_free(o->w);
}

/* The highest applied version. */
static int
schema_at(const struct wa_migset *set)
{
	size_t i;
	int v = 0;

	for (i = 0; i < set->n; i++)
		if (set->m[i].state != WA_MIG_PENDING && set->m[i].version > v)
			v = set->m[i].version;
	return v;
}

static int
cmd_status(PGconn *db, struct wa_migset *set)
{
	char err[1024];
	struct out o;
	size_t i;
	int code;

	if (wa_mig_read_state(db, set, err, sizeof err, &code) != 0) {
		wa_err("%s", err);
		return code;
	}
	out_init(&o, set);
	for (i = 0; i < set->n; i++)
		out_put(&o, &set->m[i], wa_mig_state_name(set->m[i].state));
	out_free(&o);
	return WA_EXIT_OK;
}

/* Take the lock and read the state (or only read it, for a dry run), then
 * refuse what cannot be applied safely. */
static int
prepare(PGconn *db, struct wa_migset *set, const struct opts *op)
{
	char err[1024];
	int code;

	if (!op->dry_run && wa_mig_lock(db, err, sizeof err, &code) != 0) {
		wa_err("%s", err);
		return code;
	}
	if (wa_mig_read_state(db, set, err, sizeof err, &code) != 0) {
		wa_err("%s", err);
		return code;
	}
	if (wa_mig_check(set, op->cmd == CMD_BASELINE, &code) != 0) {
		wa_err("nothing was applied");
		return code;
	}
	return WA_EXIT_OK;
}

static int
cmd_up(PGconn *db, struct wa_migset *set, const struct opts *op)
{
	char err[2048];
	struct out o;
	size_t i;
	int code, n = 0, status;

	status = prepare(db, set, op);
	if (status != WA_EXIT_OK)
		return status;
	out_init(&o, set);
	for (i = 0; i < set->n; i++) {
		struct wa_mig *m = &set->m[i];

		if (m->state != WA_MIG_PENDING)
			continue;
		if (op->dry_run) {
			wa_log(WA_LOG_VERBOSE, "%s: would apply %s", wa_progname(), m->path);
			out_put(&o, m, "pending");
			n++;
			continue;
		}
		wa_log(WA_LOG_VERBOSE, "%s: applying %s", wa_progname(), m->path);
		if (wa_mig_apply(db, m, err, sizeof err, &code) != 0) {
			wa_err("%s", err);
			status = code;
			break;
		}
		out_put(&o, m, "applied");
		n++;
	}
	out_free(&o);
	if (op->dry_run)
		wa_log(WA_LOG_NORMAL, "%s: dry run: would apply %d migration%s; schema at version %d",
		    wa_progname(), n, n == 1 ? "" : "s", schema_at(set));
	else if (status == WA_EXIT_OK && n == 0)
		wa_log(WA_LOG_NORMAL, "%s: nothing to apply; schema at version %d",
		    wa_progname(), schema_at(set));
	else if (status == WA_EXIT_OK)
		wa_log(WA_LOG_NORMAL, "%s: applied %d migration%s; schema at version %d",
		    wa_progname(), n, n == 1 ? "" : "s", schema_at(set));
	else
		wa_log(WA_LOG_NORMAL, "%s: stopped; schema at version %d",
		    wa_progname(), schema_at(set));
	return status;
}

static int
cmd_baseline(PGconn *db, struct wa_migset *set, const struct opts *op)
{
	char err[2048], *was;
	struct out o;
	size_t i;
	int code, status;

	status = prepare(db, set, op);
	if (status != WA_EXIT_OK)
		return status;
	/* Which ones this records: the pending ones up to VERSION. */
	was = calloc(set->n, 1);
	if (!was) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	for (i = 0; i < set->n; i++)
		was[i] = set->m[i].state == WA_MIG_PENDING &&
		    set->m[i].version <= op->baseline;
	if (wa_mig_baseline(db, set, op->baseline, op->dry_run, err, sizeof err,
	    &code) != 0) {
		wa_err("%s", err);
		free(was);
		return code;
	}
	out_init(&o, set);
	for (i = 0; i < set->n; i++)
		if (was[i])
			out_put(&o, &set->m[i], op->dry_run ? "pending" : "applied");
	out_free(&o);
	free(was);
	wa_log(WA_LOG_NORMAL, "%s: %s versions up to %d as applied without running them; run wa-migrate up for the rest",
	    wa_progname(), op->dry_run ? "dry run: would record" : "recorded",
	    op->baseline);
	return WA_EXIT_OK;
}

/* Warn when --db carries a password: argv is visible to every user. */
static void
warn_password(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL), *o;

	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			wa_warn("--db holds a password, which other users can see in the process list: use DATABASE_URL, PGPASSWORD or ~/.pgpass");
	PQconninfoFree(opts);
}

static int
parse_args(int argc, char **argv, struct opts *op)
{
	struct wa_optargs oa;
	enum wa_optres r;
	long v;

	r = wa_opt_parse(&spec, argc, argv, op, &oa);
	if (r != WA_OPT_OK)
		return -wa_opt_exit(r) - 1;
	wa_diag_init(argv[0], op->level);
	op->cmd = (enum cmd)oa.cmd;
	if (op->cmd == CMD_BASELINE) {
		if (oa.nargs != 1)
			return wa_usage_error("baseline needs a VERSION, the last migration the database has");
		v = wa_parse_long(oa.args[0], 1, INT_MAX);
		if (v < 0)
			return wa_usage_error("baseline: not a version: '%s'", oa.args[0]);
		op->baseline = (int)v;
	} else if (oa.nargs > 0) {
		return wa_usage_error("unexpected argument '%s'", oa.args[0]);
	}
	return 0;
}

/* baseline VERSION must name one of the files. */
static int
check_baseline(const struct wa_migset *set, int version)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->m[i].version == version)
			return 0;
	return wa_usage_error("baseline: %s has no migration %d (it has %d to %d)",
	    set->dir, version, set->m[0].version, set->m[set->n - 1].version);
}

static int
run(const struct opts *op, struct wa_migset *set)
{
	char err[1024];
	PGconn *db;
	int code, status;

	if (op->db)
		warn_password(op->db);
	db = wa_db_connect(op->db, "wa-migrate", err, sizeof err, &code);
	if (!db) {
		wa_err("%s", err);
		return code;
	}
	/* Error positions count characters: read the files as UTF-8. */
	PQsetClientEncoding(db, "UTF8");
	wa_log(WA_LOG_VERBOSE, "%s: database %s on %s port %s as %s; migrations in %s",
	    wa_progname(), PQdb(db), PQhost(db), PQport(db), PQuser(db), set->dir);
	switch (op->cmd) {
	case CMD_STATUS: status = cmd_status(db, set); break;
	case CMD_BASELINE: status = cmd_baseline(db, set, op); break;
	default: status = cmd_up(db, set, op); break;
	}
	PQfinish(db); /* ends the session: the advisory lock goes with it */
	return status;
}

int
main(int argc, char **argv)
{
	struct opts op = { CMD_UP, 0, 0, WA_LOG_NORMAL, NULL, NULL, NULL };
	struct wa_cfg cfg;
	struct wa_migset set;
	char dirbuf[PATH_MAX], err[1024];
	int status, code;

	wa_diag_init(argv[0], WA_LOG_NORMAL);
	status = parse_args(argc, argv, &op);
	if (status < 0)
		return -status - 1; /* --help, --version, or usage */
	if (status != 0)
		return status;
	if (wa_cfg_load(&cfg, op.config, err, sizeof err) != 0) {
		wa_err("%s", err);
		return WA_EXIT_CONFIG;
	}
	/* The config file's DATABASE_URL counts as the environment's. */
	if (!op.db && wa_cfg_get(&cfg, WA_CFG_DATABASE_URL) &&
	    setenv("DATABASE_URL", wa_cfg_get(&cfg, WA_CFG_DATABASE_URL), 1) != 0) {
		wa_err("out of memory");
		wa_cfg_free(&cfg);
		return WA_EXIT_SOFTWARE;
	}
	wa_cfg_free(&cfg);
	if (!op.dir)
		op.dir = wa_mig_default_dir(dirbuf, sizeof dirbuf);
	if (wa_mig_load(&set, op.dir, err, sizeof err, &code) != 0) {
		wa_err("%s", err);
		wa_mig_free(&set);
		return code;
	}
	if (op.cmd == CMD_BASELINE && check_baseline(&set, op.baseline) != 0) {
		wa_mig_free(&set);
		return WA_EXIT_USAGE;
	}
	status = run(&op, &set);
	wa_mig_free(&set);
	return wa_finish_stdout(status);
}
