/* wa-migrate: apply the versioned SQL migrations; the only program that
 * changes the database's shape. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/wa_cli.h"
#include "db/wa_db.h"
#include "db/wa_migrate.h"
#include "record/wa_rec.h"

static const char usage[] =
"Usage: wa-migrate [OPTION]... [up]\n"
"  or:  wa-migrate [OPTION]... status\n"
"  or:  wa-migrate [OPTION]... baseline VERSION\n"
"Apply the pending migrations (NNNN_name.sql) in order, each in one\n"
"transaction together with its row in schema_migrations; list every\n"
"migration with its state; or adopt an existing database by recording the\n"
"migrations up to VERSION as applied without running them (once the\n"
"database is found to have every table and column they make).\n"
"\n"
"      --db URL         the database (default $DATABASE_URL, else libpq's\n"
"                       PG* variables and service file)\n"
"      --dir DIR        the migrations folder (default $WA_MIGRATIONS_DIR,\n"
"                       else migrations/ of a wa source tree, else\n"
"                       " WA_DATADIR "/migrations)\n"
"      --dry-run        print what up or baseline would do; change nothing\n"
"  -v, --verbose        a line per step on stderr\n"
"  -q, --quiet          errors only\n"
"  -h, --help           show this help and exit\n"
"  -V, --version        show the version and exit\n"
"\n"
"A record per migration (version, name, state, applied_at) goes to standard\n"
"output; a table when it is a terminal.\n"
"Exit status: 0 done, 64 usage, 65 a migration failed, was changed or is\n"
"not a usable file, or the database lacks what baseline records, 69\n"
"database unreachable, 70 internal error, 74 I/O error, 75 database\n"
"starting up or busy, 78 bad URL or folder.\n"
"See wa-migrate(1) and wa(7).\n";

enum cmd { CMD_UP, CMD_STATUS, CMD_BASELINE };

struct opts {
	enum cmd cmd;
	int baseline;     /* VERSION of baseline */
	int dry_run;
	const char *db, *dir;
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
	static const struct option lopts[] = {
		{ "db", required_argument, NULL, 'D' },
		{ "dir", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, level = WA_LOG_NORMAL, nargs;
	long v;

	while ((c = getopt_long(argc, argv, "vqhV", lopts, NULL)) != -1) {
		switch (c) {
		case 'D': op->db = optarg; break;
		case 'd': op->dir = optarg; break;
		case 'n': op->dry_run = 1; break;
		case 'v': level = WA_LOG_VERBOSE; break;
		case 'q': level = WA_LOG_QUIET; break;
		case 'h': fputs(usage, stdout); return -2;
		case 'V': wa_print_version(); return -2;
		default: return wa_usage_error("unknown or incomplete option");
		}
	}
	wa_diag_init(argv[0], level);
	nargs = argc - optind;
	if (nargs == 0 || strcmp(argv[optind], "up") == 0)
		op->cmd = CMD_UP;
	else if (strcmp(argv[optind], "status") == 0)
		op->cmd = CMD_STATUS;
	else if (strcmp(argv[optind], "baseline") == 0)
		op->cmd = CMD_BASELINE;
	else
		return wa_usage_error("unknown command '%s' (up, status or baseline)",
		    argv[optind]);
	if (op->cmd == CMD_BASELINE) {
		if (nargs != 2)
			return wa_usage_error("baseline needs a VERSION, the last migration the database has");
		v = wa_parse_long(argv[optind + 1], 1, INT_MAX);
		if (v < 0)
			return wa_usage_error("baseline: not a version: '%s'", argv[optind + 1]);
		op->baseline = (int)v;
	} else if (nargs > 1) {
		return wa_usage_error("unexpected argument '%s'", argv[optind + 1]);
	}
	if (op->dry_run && op->cmd == CMD_STATUS)
		return wa_usage_error("--dry-run goes with up or baseline");
	if (op->dir && !*op->dir)
		return wa_usage_error("--dir: empty folder name");
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
	struct opts op = { CMD_UP, 0, 0, NULL, NULL };
	struct wa_migset set;
	char dirbuf[PATH_MAX], err[1024];
	int status, code;

	wa_diag_init(argv[0], WA_LOG_NORMAL);
	status = parse_args(argc, argv, &op);
	if (status == -2)
		return wa_finish_stdout(WA_EXIT_OK);
	if (status != 0)
		return status;
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
