/* wa-broadcast: broadcasts stored in PostgreSQL: create, run, pipeline
 * (export / mark), and an operator's controls. Flags and dispatch only:
 * the work is in common/ (wa_bcast.h). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcast/wa_bcast.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "db/wa_db.h"
#include "record/wa_rec.h"

static const char usage[] =
"Usage: wa-broadcast [OPTION]... COMMAND [ARG]...\n"
"Create, run and control WhatsApp broadcasts stored in PostgreSQL. Every\n"
"send goes through the library's one send path (as wa-send, context\n"
"broadcast).\n"
"\n"
"Commands:\n"
"  create --business ID MESSAGE [FILE]...  store a broadcast and its\n"
"                       recipients (records or plain numbers); prints\n"
"                       {\"broadcast_id\",\"total\",\"invalid\",\"duplicates\"}\n"
"  run ID... | --all    send until done (every queued or running one)\n"
"  export ID            claim pending recipients, write them for wa-send\n"
"  mark ID [FILE]...    record wa-send's results; together, the pipeline\n"
"                       form of run: export ID | wa-send | mark ID\n"
"  status ID... | --all a record per broadcast (no ID: as --all); a table\n"
"                       on a terminal\n"
"  list                 one record per broadcast (a table on a terminal)\n"
"  cancel ID            cancel, in any state; the rest become cancelled\n"
"  pause ID             pause a queued or running broadcast\n"
"  resume ID            queue a paused broadcast again\n"
"  retry ID             queue failed recipients again (--failed, default)\n"
"                       and/or ambiguous ones (--ambiguous)\n"
"\n"
"Message (create):\n"
"  -t, --text TEXT        a text message\n"
"      --template NAME    a template (Meta), with --language CODE\n"
"      --language CODE    the template's language, e.g. en_US\n"
"      --params JSON      its parameters: [\"a\",\"b\"] or components\n"
"      --media JSON       {\"type\":\"image\",\"url\"|\"path\":...,\"caption\":...}\n"
"  -n, --name NAME        the broadcast's name\n"
"  -b, --business ID      the business (create; list: only its broadcasts)\n"
"  -r, --region CC        read national numbers in region CC (default\n"
"                         $WA_DEFAULT_REGION)\n"
"  -f, --field NAME       take the number from NAME (default: to, phone, jid)\n"
"      --idempotency-key KEY  create once: a second create with KEY\n"
"                         prints the first broadcast and stores nothing\n"
"      --max-line BYTES   longest input line (default 1048576)\n"
"\n"
"Running:\n"
"      --all              run or status: every broadcast (run: queued or\n"
"                         running)\n"
"  -p, --parallel N       sends in flight (default 8)\n"
"      --rate R           at most R sends per second per business sender,\n"
"                         over every worker on every host\n"
"      --batch N          recipients claimed at a time (default 2 x parallel)\n"
"      --db-wait SECS     run, mark: keep reconnecting to a lost database\n"
"                         this long (default 30), then exit 75\n"
"      --lease SECS       pipeline claims live this long without their\n"
"                         export or mark (default 300)\n"
"      --window N         export: recipients handed over without a result,\n"
"                         at most (default 256; 0 no limit)\n"
"      --progress         a progress bar on stderr (default: on a terminal)\n"
"      --no-progress      no progress bar\n"
"      --reason TEXT      pause: why (shown by status)\n"
"      --failed           retry: failed recipients (not ambiguous ones)\n"
"      --ambiguous        retry: recipients that may have been sent\n"
"\n"
"  -c, --config FILE      KEY=VALUE settings (default $WA_CONFIG)\n"
"      --db URL           the database (default $DATABASE_URL, PG*)\n"
"  -v, --verbose          a line per recipient on stderr\n"
"  -q, --quiet            errors only\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
"Exit status: 0 done, 1 some recipient failed, 64 usage, 65 bad input or\n"
"no such broadcast, 69 provider not ready, a fatal outcome (paused) or\n"
"the provider gone mid-run (not paused: run again), 70 internal or\n"
"database error, 74 I/O error, 75 database lost or interrupted (run\n"
"again), 78 configuration or schema. See wa-broadcast(1) and wa(7).\n";

enum {
	O_TEMPLATE = 256, O_LANGUAGE, O_PARAMS, O_MEDIA, O_IDEM, O_MAXLINE,
	O_ALL, O_RATE, O_BATCH, O_DBWAIT, O_LEASE, O_WINDOW, O_PROGRESS,
	O_NOPROGRESS, O_REASON, O_FAILED, O_AMBIGUOUS, O_DB, O_COUNT
};

struct args {
	struct wa_bcast_new n;
	const char *config, *db, *reason;
	long long business;
	int all, parallel, batch, window, progress, failed, ambiguous;
	long count;         /* preview */
	double rate, db_wait, lease;
	long maxline;
	unsigned used;      /* which option groups were given (see below) */
};

/* Option groups, to refuse an option the command does not take. */
enum { G_CREATE = 1, G_RUN = 2, G_EXPORT = 4, G_DBWAIT = 8, G_ALL = 16,
	G_BUSINESS = 32, G_PAUSE = 64, G_RETRY = 128, G_MAXLINE = 256,
	G_COUNT = 512 };

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	stop_flag = 1;
	/* A second one ends the program at once. */
	signal(sig, SIG_DFL);
}

static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* --- output ---------------------------------------------------------------- */

struct out {
	struct wa_writer *w;
	int flush_each;     /* export: every record leaves at once */
	int table;          /* status/list on a terminal: collect, then a table */
	yajl_val *recs;
	size_t n, cap;
};

static int
emit(void *arg, yajl_val rec)
{
	struct out *o = arg;
	yajl_val *nr;

	if (o->table) {
		if (o->n == o->cap) {
			o->cap = o->cap ? o->cap * 2 : 16;
			nr = realloc(o->recs, o->cap * sizeof *nr);
			if (!nr)
				return -1;
			o->recs = nr;
		}
		o->recs[o->n++] = wa_val_copy(rec);
		return 0;
	}
	if (wa_writer_put(o->w, rec) != 0)
		return -1;
	if (o->flush_each && fflush(stdout) != 0)
		return -1;
	return 0;
}

static void
print_table(struct out *o, const char *const *cols)
{
	char *t = wa_bcast_table(o->recs, o->n, cols);
	size_t i;

	if (t)
		fputs(t, stdout);
	free(t);
	for (i = 0; i < o->n; i++)
		wa_val_free(o->recs[i]);
	free(o->recs);
	o->recs = NULL;
	o->n = 0;
}

/* The progress bar: one line on stderr, redrawn in place. */
static void
bar(void *arg, const struct wa_bcast_progress *p)
{
	char eta[32] = "-";
	int width = 24, fill;
	long long done;

	(void)arg;
	if (!p) {
		fputs("\r\033[K", stderr);
		return;
	}
	done = p->processed;
	fill = p->total > 0 ? (int)(width * done / p->total) : 0;
	if (fill > width)
		fill = width;
	if (p->eta >= 0)
		snprintf(eta, sizeof eta, "%lld:%02lld", (long long)p->eta / 60,
		    (long long)p->eta % 60);
	fprintf(stderr, "\r\033[K%lld [%.*s%.*s] sent %lld failed %lld / %lld  "
	    "%.0f/s  ETA %s", p->broadcast_id, fill, "########################",
	    width - fill, "------------------------", p->sent, p->failed,
	    p->total, p->rate, eta);
	fflush(stderr);
}

/* --- arguments ------------------------------------------------------------ */

static int
parse_id(const char *s, long long *id)
{
	char *end;

	if (!s || !*s)
		return -1;
	*id = strtoll(s, &end, 10);
	return *end || *id <= 0 ? -1 : 0;
}

static int
parse_ids(char **argv, int argc, long long **ids)
{
	int i;

	*ids = calloc((size_t)(argc ? argc : 1), sizeof **ids);
	if (!*ids)
		return -1;
	for (i = 0; i < argc; i++)
		if (parse_id(argv[i], &(*ids)[i]) != 0)
			return i + 1;
	return 0;
}

static int
parse_opts(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "business", required_argument, NULL, 'b' },
		{ "text", required_argument, NULL, 't' },
		{ "template", required_argument, NULL, O_TEMPLATE },
		{ "language", required_argument, NULL, O_LANGUAGE },
		{ "params", required_argument, NULL, O_PARAMS },
		{ "media", required_argument, NULL, O_MEDIA },
		{ "name", required_argument, NULL, 'n' },
		{ "region", required_argument, NULL, 'r' },
		{ "field", required_argument, NULL, 'f' },
		{ "idempotency-key", required_argument, NULL, O_IDEM },
		{ "max-line", required_argument, NULL, O_MAXLINE },
		{ "all", no_argument, NULL, O_ALL },
		{ "parallel", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, O_RATE },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "db-wait", required_argument, NULL, O_DBWAIT },
		{ "lease", required_argument, NULL, O_LEASE },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "count", required_argument, NULL, O_COUNT },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "no-progress", no_argument, NULL, O_NOPROGRESS },
		{ "reason", required_argument, NULL, O_REASON },
		{ "failed", no_argument, NULL, O_FAILED },
		{ "ambiguous", no_argument, NULL, O_AMBIGUOUS },
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, O_DB },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, level = WA_LOG_NORMAL;
	long l;

	while ((c = getopt_long(argc, argv, "b:t:n:r:f:p:c:vqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_id(optarg, &a->business) != 0)
				return wa_usage_error("--business: not a business id: '%s'", optarg);
			a->used |= G_BUSINESS;
			break;
		case 't': a->n.text = optarg; a->used |= G_CREATE; break;
		case O_TEMPLATE: a->n.template_name = optarg; a->used |= G_CREATE; break;
		case O_LANGUAGE: a->n.language = optarg; a->used |= G_CREATE; break;
		case O_PARAMS: a->n.params = optarg; a->used |= G_CREATE; break;
		case O_MEDIA: a->n.media = optarg; a->used |= G_CREATE; break;
		case 'n': a->n.name = optarg; a->used |= G_CREATE; break;
		case 'r': a->n.region = optarg; a->used |= G_CREATE; break;
		case 'f': a->n.field = optarg; a->used |= G_CREATE; break;
		case O_IDEM: a->n.idempotency_key = optarg; a->used |= G_CREATE; break;
		case O_MAXLINE:
			a->maxline = wa_parse_long(optarg, 64, 1L << 30);
			if (a->maxline < 0)
				return wa_usage_error("--max-line: not a size from 64 to 1073741824: '%s'", optarg);
			a->used |= G_MAXLINE;
			break;
		case O_ALL: a->all = 1; a->used |= G_ALL; break;
		case 'p':
			l = wa_parse_long(optarg, 1, 1024);
			if (l < 0)
				return wa_usage_error("--parallel: not a number from 1 to 1024: '%s'", optarg);
			a->parallel = (int)l;
			a->used |= G_RUN;
			break;
		case O_RATE:
			a->rate = wa_parse_double(optarg, 0.001, 100000);
			if (a->rate < 0)
				return wa_usage_error("--rate: not a rate above 0: '%s'", optarg);
			a->used |= G_RUN;
			break;
		case O_BATCH:
			l = wa_parse_long(optarg, 1, 1000);
			if (l < 0)
				return wa_usage_error("--batch: not a number from 1 to 1000: '%s'", optarg);
			a->batch = (int)l;
			a->used |= G_RUN;
			break;
		case O_DBWAIT:
			a->db_wait = wa_parse_double(optarg, 0, 86400);
			if (a->db_wait < 0)
				return wa_usage_error("--db-wait: not a number of seconds: '%s'", optarg);
			a->used |= G_DBWAIT;
			break;
		case O_LEASE:
			a->lease = wa_parse_double(optarg, 1, 86400);
			if (a->lease < 0)
				return wa_usage_error("--lease: not a number of seconds from 1: '%s'", optarg);
			a->used |= G_EXPORT;
			break;
		case O_COUNT:
			a->count = wa_parse_long(optarg, 1, 1000000);
			if (a->count < 0)
				return wa_usage_error("--count: not a number from 1 to 1000000: '%s'", optarg);
			a->used |= G_COUNT;
			break;
		case O_WINDOW:
			l = wa_parse_long(optarg, 0, 1000000);
			if (l < 0)
				return wa_usage_error("--window: not a number from 0: '%s'", optarg);
			a->window = (int)l;
			a->used |= G_EXPORT;
			break;
		case O_PROGRESS: a->progress = 1; a->used |= G_RUN; break;
		case O_NOPROGRESS: a->progress = 0; a->used |= G_RUN; break;
		case O_REASON: a->reason = optarg; a->used |= G_PAUSE; break;
		case O_FAILED: a->failed = 1; a->used |= G_RETRY; break;
		case O_AMBIGUOUS: a->ambiguous = 1; a->used |= G_RETRY; break;
		case 'c': a->config = optarg; break;
		case O_DB: a->db = optarg; break;
		case 'v': level = WA_LOG_VERBOSE; break;
		case 'q': level = WA_LOG_QUIET; break;
		case 'h': fputs(usage, stdout); return -wa_finish_stdout(WA_EXIT_OK) - 1;
		case 'V': wa_print_version(); return -wa_finish_stdout(WA_EXIT_OK) - 1;
		default: return wa_usage_error("unknown or incomplete option");
		}
	}
	wa_diag_init(argv[0], level);
	return 0;
}

/* --- commands -------------------------------------------------------------- */

struct cmd {
	const char *name;
	unsigned takes;     /* option groups it accepts */
	int min, max;       /* arguments (IDs or files); max -1: any */
};

static const struct cmd cmds[] = {
	{ "create", G_CREATE | G_BUSINESS | G_MAXLINE, 0, -1 },
	{ "run", G_RUN | G_ALL | G_DBWAIT, 0, -1 },
	{ "export", G_EXPORT, 1, 1 },
	{ "preview", G_COUNT, 1, 1 },
	{ "mark", G_EXPORT | G_MAXLINE | G_DBWAIT, 1, -1 },
	{ "status", G_ALL, 0, -1 },
	{ "list", G_BUSINESS, 0, 0 },
	{ "cancel", 0, 1, 1 },
	{ "pause", G_PAUSE, 1, 1 },
	{ "resume", 0, 1, 1 },
	{ "retry", G_RETRY, 1, 1 },
	{ NULL, 0, 0, 0 }
};

static const struct cmd *
find_cmd(const char *name)
{
	int i;

	for (i = 0; cmds[i].name; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int
check_args(const struct cmd *c, const struct args *a, int nargs)
{
	if (a->used & ~c->takes)
		return wa_usage_error("%s: an option given does not apply to it", c->name);
	if (!strcmp(c->name, "run") || !strcmp(c->name, "status")) {
		if (a->all && nargs)
			return wa_usage_error("%s: give IDs or --all, not both", c->name);
		if (!a->all && !nargs && !strcmp(c->name, "run"))
			return wa_usage_error("run: give broadcast IDs or --all");
		return 0;
	}
	if (!strcmp(c->name, "create") && a->business <= 0)
		return wa_usage_error("create: --business ID is required");
	if (nargs < c->min)
		return wa_usage_error("%s: a broadcast ID is required", c->name);
	if (c->max >= 0 && nargs > c->max)
		return wa_usage_error("%s: too many arguments", c->name);
	return 0;
}

static PGconn *
connect_db(const struct args *a, const struct wa_cfg *cfg, int *code)
{
	char err[512];
	const char *url = a->db ? a->db : wa_cfg_get(cfg, WA_CFG_DATABASE_URL);
	PGconn *db = wa_db_connect(url, "wa-broadcast", err, sizeof err, code);

	if (!db) {
		wa_err("%s", err);
		return NULL;
	}
	if (wa_db_check_schema(db, err, sizeof err, code) != 0) {
		wa_err("%s", err);
		PQfinish(db);
		return NULL;
	}
	return db;
}

static const char *const status_cols[] = { "broadcast_id", "business_id",
	"status", "total", "queued", "processing", "sent", "failed", "ambiguous",
	"cancelled", "rate", "eta_seconds", "name", NULL };
static const char *const list_cols[] = { "broadcast_id", "business_id",
	"status", "total", "sent", "failed", "cancelled", "created_at", "name",
	NULL };

/* One-record commands: print what came back. */
static int
put_one(struct out *o, yajl_val rec, int rc)
{
	if (rec) {
		if (emit(o, rec) != 0 && rc == WA_EXIT_OK)
			rc = WA_EXIT_IO;
		wa_val_free(rec);
	}
	return rc;
}

static int
dispatch(const struct cmd *c, struct args *a, char **rest, int nrest,
    PGconn **db, const struct wa_cfg *cfg, struct out *o)
{
	struct wa_bcast_run_opts ro;
	yajl_val rec = NULL;
	long long *ids = NULL, id = 0;
	int rc, bad;

	bad = strcmp(c->name, "create") && strcmp(c->name, "mark") &&
	    strcmp(c->name, "list") ? parse_ids(rest, nrest, &ids) : 0;
	if (bad) {
		rc = bad < 0 ? WA_EXIT_SOFTWARE :
		    wa_usage_error("%s: not a broadcast id: '%s'", c->name, rest[bad - 1]);
		free(ids);
		return rc;
	}
	if (!strcmp(c->name, "mark") && parse_id(rest[0], &id) != 0)
		return wa_usage_error("mark: not a broadcast id: '%s'", rest[0]);
	if (ids && nrest)
		id = ids[0];
	memset(&ro, 0, sizeof ro);
	ro.cfg = cfg;
	ro.db = db;
	ro.db_url = a->db ? a->db : wa_cfg_get(cfg, WA_CFG_DATABASE_URL);
	ro.ids = ids;
	ro.nids = nrest;
	ro.all = a->all;
	ro.parallel = a->parallel;
	ro.rate = a->rate;
	ro.batch = a->batch;
	ro.db_wait = a->db_wait;
	ro.lease = a->lease;
	ro.window = a->window;
	ro.stop = &stop_flag;
	ro.emit = emit;
	ro.progress = a->progress ? bar : NULL;
	ro.arg = o;

	if (!strcmp(c->name, "create")) {
		a->n.business_id = a->business;
		a->n.files = rest;
		a->n.nfiles = nrest;
		a->n.maxline = (size_t)a->maxline;
		rc = wa_bcast_create(*db, &a->n, &rec);
		rc = put_one(o, rec, rc);
	} else if (!strcmp(c->name, "run")) {
		catch_signals();
		rc = wa_bcast_run(&ro);
	} else if (!strcmp(c->name, "export")) {
		catch_signals();
		o->flush_each = 1;
		rc = wa_bcast_export(&ro, id);
	} else if (!strcmp(c->name, "preview")) {
		rc = wa_bcast_preview(&ro, id, a->count);
	} else if (!strcmp(c->name, "mark")) {
		/* Read on to the end after a first SIGINT: the sender upstream
		 * finishes its sends and their results must be recorded. */
		catch_signals();
		rc = wa_bcast_mark(&ro, id, rest + 1, nrest - 1, (size_t)a->maxline);
	} else if (!strcmp(c->name, "status") || !strcmp(c->name, "list")) {
		o->table = isatty(1);
		rc = !strcmp(c->name, "list") ?
		    wa_bcast_list(*db, a->business, emit, o) :
		    wa_bcast_status(*db, ids, a->all ? 0 : nrest, emit, o);
		if (o->table)
			print_table(o, !strcmp(c->name, "list") ? list_cols : status_cols);
	} else if (!strcmp(c->name, "cancel")) {
		rc = wa_bcast_cancel(*db, id, &rec);
		rc = put_one(o, rec, rc);
	} else if (!strcmp(c->name, "pause")) {
		rc = wa_bcast_pause(*db, id, a->reason, &rec);
		rc = put_one(o, rec, rc);
	} else if (!strcmp(c->name, "resume")) {
		rc = wa_bcast_resume(*db, id, &rec);
		rc = put_one(o, rec, rc);
	} else {
		rc = wa_bcast_retry(*db, id, a->failed || !a->ambiguous, a->ambiguous, &rec);
		rc = put_one(o, rec, rc);
	}
	free(ids);
	return rc;
}

int
main(int argc, char **argv)
{
	struct args a;
	struct wa_cfg cfg;
	struct out o;
	const struct cmd *c;
	PGconn *db = NULL;
	char err[512];
	int rc, code;

	memset(&a, 0, sizeof a);
	memset(&o, 0, sizeof o);
	a.parallel = 8;
	a.db_wait = 30;
	a.lease = 300;
	a.window = 256;
	a.count = 10;
	a.maxline = WA_MAXLINE_DEFAULT;
	a.progress = -1;
	wa_diag_init(argv[0], WA_LOG_NORMAL);
	rc = parse_opts(argc, argv, &a);
	if (rc < 0)
		return -rc - 1; /* --help, --version */
	if (rc)
		return rc;
	if (optind >= argc)
		return wa_usage_error("no command given (create, run, export, mark, "
		    "status, list, cancel, pause, resume, retry)");
	c = find_cmd(argv[optind]);
	if (!c)
		return wa_usage_error("unknown command '%s'", argv[optind]);
	rc = check_args(c, &a, argc - optind - 1);
	if (rc)
		return rc;
	if (a.progress < 0)
		a.progress = isatty(2) && wa_log_level() == WA_LOG_NORMAL;
	if (wa_cfg_load(&cfg, a.config, err, sizeof err) != 0) {
		wa_err("%s", err);
		return WA_EXIT_CONFIG;
	}
	/* The router of the send path looks businesses up in the same one. */
	if (a.db && wa_cfg_set(&cfg, WA_CFG_DATABASE_URL, a.db) != 0) {
		wa_err("out of memory");
		wa_cfg_free(&cfg);
		return WA_EXIT_SOFTWARE;
	}
	db = connect_db(&a, &cfg, &code);
	if (!db) {
		wa_cfg_free(&cfg);
		return code;
	}
	o.w = wa_writer_new(stdout);
	if (!o.w) {
		wa_err("out of memory");
		rc = WA_EXIT_SOFTWARE;
	} else {
		rc = dispatch(c, &a, argv + optind + 1, argc - optind - 1, &db, &cfg, &o);
	}
	wa_writer_free(o.w);
	PQfinish(db);
	wa_cfg_free(&cfg);
	return wa_finish_stdout(rc);
}
