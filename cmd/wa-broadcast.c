/* wa-broadcast: broadcasts stored in PostgreSQL: create, run, pipeline
 * (export / mark), preview, and an operator's controls. Flags and dispatch only:
 * the work is in common/ (wa_bcast.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcast/wa_bcast.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "base/wa_opt.h"
#include "db/wa_db.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"

/* The commands, in the order of the bits of wa_opt.cmds. */
enum { C_CREATE, C_RUN, C_EXPORT, C_MARK, C_PREVIEW, C_STATUS, C_LIST,
	C_CANCEL, C_PAUSE, C_RESUME, C_RETRY, C_RECIPIENTS, C_OPTOUT, C_RESCHEDULE,
	NCMDS };
#define B(c) (1u << (c))

static const struct wa_optcmd cmds[] = {
	[C_CREATE] = { "create", "create --business ID MESSAGE [FILE]...",
	    "store a broadcast and its\n"
	    "recipients (records or plain numbers); prints\n"
	    "{\"broadcast_id\",\"total\",\"invalid\",\"duplicates\",\n"
	    "\"opted_out\"}" },
	[C_RUN] = { "run", "run ID... | --all", "send until done (every queued or running one)" },
	[C_EXPORT] = { "export", "export ID", "claim pending recipients, write them for wa-send" },
	[C_MARK] = { "mark", "mark ID [FILE]...", "record wa-send's results; together, the pipeline\n"
	    "form of run: export ID | wa-send | mark ID" },
	[C_PREVIEW] = { "preview", "preview ID [-n N]", "the first N messages as they would be\n"
	    "sent (recipient, address, the rendered\n"
	    "message), claiming and changing nothing" },
	[C_STATUS] = { "status", "status ID... | --all", "a record per broadcast (no ID: as --all;\n"
	    "--business: of one business) with its sender,\n"
	    "the sender's rate and the ETA; a table on a terminal" },
	[C_LIST] = { "list", "list", "one record per broadcast (a table on a terminal)" },
	[C_CANCEL] = { "cancel", "cancel ID", "cancel, in any state; the rest become cancelled" },
	[C_PAUSE] = { "pause", "pause ID", "pause a queued or running broadcast" },
	[C_RESUME] = { "resume", "resume ID", "queue a paused broadcast again" },
	[C_RETRY] = { "retry", "retry ID", "queue failed recipients again (--failed, default)\n"
	    "and/or ambiguous ones (--ambiguous)" },
	[C_RECIPIENTS] = { "recipients", "recipients ID", "a record per recipient: its outcome, and why" },
	[C_OPTOUT] = { "optout", "optout add|remove|import|list --business ID [NUMBER|FILE]...",
	    "the numbers the business must not message:\n"
	    "add or remove NUMBERs, import FILEs (a number\n"
	    "a line, or CSV), list them (a table on a terminal)" },
	[C_RESCHEDULE] = { "reschedule", "reschedule ID --at TIME",
	    "move the start of one not started yet\n"
	    "(--at now: queue it)" },
	{ NULL, NULL, NULL }
};

enum {
	O_BUSINESS, O_TEXT, O_PREVIEW_URL, O_TEMPLATE, O_LANGUAGE, O_PARAMS, O_MEDIA, O_NAME,
	O_REGION, O_FIELD, O_FORMAT, O_IDEM, O_MAXLINE, O_ALL, O_PARALLEL, O_RATE, O_BATCH,
	O_DBWAIT, O_LEASE, O_WINDOW, O_PROGRESS, O_NOPROGRESS, O_REASON,
	O_FAILED, O_AMBIGUOUS, O_COUNT, O_SOURCE, O_NOTE, O_CONFIG, O_DB,
	O_VERBOSE, O_QUIET, O_STATUS, O_CLASS, O_AT, O_TZ, O_SENDWIN, O_SKIP
};

static const struct wa_opt opts[] = {
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, "Message (create):" },
	{ "text", 't', WA_ARG_STR, "TEXT", 0, 0, B(C_CREATE), O_TEXT, "a text message" },
	{ "preview-url", 0, WA_ARG_NONE, NULL, 0, 0, B(C_CREATE), O_PREVIEW_URL,
	    "with --text: Meta shows its first link's preview" },
	{ "template", 0, WA_ARG_STR, "NAME", 0, 0, B(C_CREATE), O_TEMPLATE,
	    "a template (Meta), with --language CODE" },
	{ "language", 0, WA_ARG_STR, "CODE", 0, 0, B(C_CREATE), O_LANGUAGE,
	    "the template's language, e.g. en_US" },
	{ "params", 0, WA_ARG_STR, "JSON", 0, 0, B(C_CREATE), O_PARAMS,
	    "its parameters: [\"a\",\"b\"] or components" },
	{ "media", 0, WA_ARG_STR, "JSON", 0, 0, B(C_CREATE), O_MEDIA,
	    "{\"type\":\"image\",\"url\"|\"path\":...,\"caption\":...}" },
	{ "name", 0, WA_ARG_STR, "NAME", 0, 0, B(C_CREATE), O_NAME, "the broadcast's name" },
	{ "business", 'b', WA_ARG_STR, "ID", 0, 0, B(C_CREATE) | B(C_LIST) | B(C_STATUS) | B(C_OPTOUT),
	    O_BUSINESS, "the business (create, optout; list, status: only\n"
	    "its broadcasts)" },
	{ "region", 'r', WA_ARG_STR, "CC", 0, 0, B(C_CREATE) | B(C_OPTOUT), O_REGION,
	    "read national numbers in region CC (default\n"
	    "WA_DEFAULT_REGION of the config or environment)" },
	{ "field", 'f', WA_ARG_STR, "NAME", 0, 0, B(C_CREATE) | B(C_OPTOUT), O_FIELD,
	    "take the number from NAME (default: to, phone, jid;\n"
	    "a CSV column named like phone, mobile, טלפון)" },
	{ "format", 0, WA_ARG_STR, "FMT", 0, 0, B(C_CREATE) | B(C_RECIPIENTS) | B(C_OPTOUT),
	    O_FORMAT, "jsonl or csv: create's and optout import's input\n"
	    "(default: csv for FILEs named *.csv),\n"
	    "recipients' output (jsonl)" },
	{ "idempotency-key", 0, WA_ARG_STR, "KEY", 0, 0, B(C_CREATE), O_IDEM,
	    "create once: a second create with KEY\n"
	    "prints the first broadcast and stores nothing" },
	{ "max-line", 0, WA_ARG_SIZE, "BYTES", 64, 1L << 30, B(C_CREATE) | B(C_MARK), O_MAXLINE,
	    "longest input line (default 1048576)" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, "Schedule (create, reschedule):" },
	{ "at", 0, WA_ARG_STR, "TIME", 0, 0, B(C_CREATE) | B(C_RESCHEDULE), O_AT,
	    "scheduled until TIME: 'YYYY-MM-DD HH:MM[:SS]' in\n"
	    "the zone, or ISO 8601 with an offset" },
	{ "tz", 0, WA_ARG_STR, "ZONE", 0, 0, B(C_CREATE) | B(C_RESCHEDULE), O_TZ,
	    "the zone of --at and the window, e.g.\n"
	    "Asia/Jerusalem (default: the business's, WA_TZ,\n"
	    "the system's)" },
	{ "window", 0, WA_ARG_STR, "HOURS", 0, 0, B(C_CREATE), O_SENDWIN,
	    "create: send only then, e.g. 09:00-20:00 or\n"
	    "'09:00-20:00,fri 09:00-14:00'" },
	{ "skip-days", 0, WA_ARG_STR, "DAYS", 0, 0, B(C_CREATE), O_SKIP,
	    "never send on DAYS, e.g. fri-sat or sat,sun" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, "Running:" },
	{ "all", 0, WA_ARG_NONE, NULL, 0, 0, B(C_RUN) | B(C_STATUS), O_ALL,
	    "run or status: every broadcast (run: queued or\nrunning)" },
	{ "parallel", 'P', WA_ARG_INT, "N", 1, 1024, B(C_RUN), O_PARALLEL,
	    "sends in flight (default 8)" },
	{ "rate", 0, WA_ARG_DOUBLE, "R", 0.001, 100000, B(C_RUN), O_RATE,
	    "at most R sends per second per business sender,\n"
	    "over every worker on every host" },
	{ "batch", 0, WA_ARG_INT, "N", 1, 1000, B(C_RUN), O_BATCH,
	    "recipients claimed at a time (default 2 x parallel)" },
	{ "db-wait", 0, WA_ARG_SECONDS, "SECS", 0, 86400, B(C_RUN) | B(C_MARK), O_DBWAIT,
	    "run, mark: keep reconnecting to a lost database\n"
	    "this long (default 30), then exit 75" },
	{ "lease", 0, WA_ARG_SECONDS, "SECS", 1, 86400, B(C_EXPORT) | B(C_MARK), O_LEASE,
	    "pipeline claims live this long without their\n"
	    "export or mark (default 300)" },
	{ "window", 0, WA_ARG_INT, "N", 0, 1000000, B(C_EXPORT) | B(C_MARK), O_WINDOW,
	    "export: recipients handed over without a result,\n"
	    "at most (default 256; 0 no limit)" },
	{ "progress", 0, WA_ARG_NONE, NULL, 0, 0, B(C_RUN), O_PROGRESS,
	    "a progress bar on stderr (default: on a terminal)" },
	{ "no-progress", 0, WA_ARG_NONE, NULL, 0, 0, B(C_RUN), O_NOPROGRESS, "no progress bar" },
	{ "reason", 0, WA_ARG_STR, "TEXT", 0, 0, B(C_PAUSE), O_REASON, "pause: why (shown by status)" },
	{ "failed", 0, WA_ARG_NONE, NULL, 0, 0, B(C_RETRY), O_FAILED,
	    "retry: failed recipients (not ambiguous ones)" },
	{ "ambiguous", 0, WA_ARG_NONE, NULL, 0, 0, B(C_RETRY), O_AMBIGUOUS,
	    "retry: recipients that may have been sent" },
	{ "count", 'n', WA_ARG_INT, "N", 1, 1000000, B(C_PREVIEW), O_COUNT,
	    "preview: this many messages (default 10)" },
	{ "status", 0, WA_ARG_STR, "S", 0, 0, B(C_RECIPIENTS), O_STATUS, "recipients: only those in status S" },
	{ "class", 0, WA_ARG_STR, "C", 0, 0, B(C_RECIPIENTS), O_CLASS, "recipients: only those of error class C" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, "Opt-outs:" },
	{ "source", 0, WA_ARG_STR, "TEXT", 0, 0, B(C_OPTOUT), O_SOURCE,
	    "optout add, import: where they came from\n"
	    "(default operator, import)" },
	{ "note", 0, WA_ARG_STR, "TEXT", 0, 0, B(C_OPTOUT), O_NOTE,
	    "optout add, import: a note kept with each" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, "" },
	{ "config", 'c', WA_ARG_FILE, "FILE", 0, 0, WA_CMD_ALL, O_CONFIG,
	    "KEY=VALUE settings (default $WA_CONFIG)" },
	{ "db", 0, WA_ARG_STR, "URL", 0, 0, WA_CMD_ALL, O_DB,
	    "the database (default $DATABASE_URL, PG*)" },
	{ "verbose", 'v', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_VERBOSE,
	    "a line per recipient on stderr" },
	{ "quiet", 'q', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_QUIET, "errors only" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, NULL }
};

struct args {
	struct wa_bcast_new n;
	struct wa_bcast_optout oo;
	const char *config, *db, *reason, *status, *klass, *format;
	long long business, count;
	int all, parallel, batch, window, progress, failed, ambiguous, level;
	double rate, db_wait, lease;
	long maxline;
};

static int set_opt(void *ctx, int id, const struct wa_optval *v);

static const struct wa_optspec spec = {
	"Usage: wa-broadcast [OPTION]... COMMAND [ARG]...\n"
	"Create, run and control WhatsApp broadcasts stored in PostgreSQL. Every\n"
	"send goes through the library's one send path (as wa-send, context\n"
	"broadcast). 'wa-broadcast COMMAND --help' shows a command's options.\n",
	"Exit status: 0 done, 1 some recipient failed, 64 usage, 65 bad input or\n"
	"no such broadcast, 69 provider not ready, a fatal outcome (paused) or\n"
	"the provider gone mid-run (not paused: run again), 70 internal or\n"
	"database error, 74 I/O error, 75 database lost or interrupted, or\n"
	"not due or outside its sending window (run again), 78 configuration\n"
	"or schema. See wa-broadcast(1) and wa(7).\n",
	cmds, NCMDS, -1, opts, set_opt
};

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

/* --- arguments ------------------------------------------------------------ */

static int
set_opt(void *ctx, int id, const struct wa_optval *v)
{
	struct args *a = ctx;

	switch (id) {
	case O_BUSINESS:
		if (wa_bcast_parse_id(v->s, &a->business) != 0)
			return wa_usage_error("--business: not a business id: '%s'", v->s);
		break;
	case O_TEXT: a->n.text = v->s; break;
	case O_PREVIEW_URL: a->n.preview_url = 1; break;
	case O_TEMPLATE: a->n.template_name = v->s; break;
	case O_LANGUAGE: a->n.language = v->s; break;
	case O_PARAMS: a->n.params = v->s; break;
	case O_MEDIA: a->n.media = v->s; break;
	case O_NAME: a->n.name = v->s; break;
	case O_REGION: a->n.region = v->s; break;
	case O_FIELD: a->n.field = v->s; break;
	case O_FORMAT: a->format = v->s; return wa_format_opt(v->s, &a->n.format);
	case O_IDEM: a->n.idempotency_key = v->s; break;
	case O_MAXLINE: a->maxline = (long)v->i; break;
	case O_ALL: a->all = 1; break;
	case O_PARALLEL: a->parallel = (int)v->i; break;
	case O_RATE: a->rate = v->d; break;
	case O_BATCH: a->batch = (int)v->i; break;
	case O_DBWAIT: a->db_wait = v->d; break;
	case O_LEASE: a->lease = v->d; break;
	case O_WINDOW: a->window = (int)v->i; break;
	case O_PROGRESS: a->progress = 1; break;
	case O_NOPROGRESS: a->progress = 0; break;
	case O_REASON: a->reason = v->s; break;
	case O_FAILED: a->failed = 1; break;
	case O_AMBIGUOUS: a->ambiguous = 1; break;
	case O_COUNT: a->count = v->i; break;
	case O_SOURCE: a->oo.source = v->s; break;
	case O_NOTE: a->oo.note = v->s; break;
	case O_CONFIG: a->config = v->s; break;
	case O_DB: a->db = v->s; break;
	case O_VERBOSE: a->level = WA_LOG_VERBOSE; break;
	case O_QUIET: a->level = WA_LOG_QUIET; break;
	case O_AT: a->n.at = v->s; break;
	case O_TZ: a->n.tz = v->s; break;
	case O_SENDWIN: a->n.window = v->s; break;
	case O_SKIP: a->n.skip_days = v->s; break;
	case O_STATUS: a->status = v->s; return wa_bcast_recipients_check(v->s, NULL, NULL);
	case O_CLASS: a->klass = v->s; return wa_bcast_recipients_check(NULL, v->s, NULL);
	}
	return 0;
}

/* --- commands -------------------------------------------------------------- */

/* Arguments (IDs or files) each command takes; max -1: any. */
static const struct { int min, max; } nargs_of[NCMDS] = {
	[C_CREATE] = { 0, -1 }, [C_RUN] = { 0, -1 }, [C_EXPORT] = { 1, 1 },
	[C_MARK] = { 1, -1 }, [C_PREVIEW] = { 1, 1 }, [C_STATUS] = { 0, -1 },
	[C_LIST] = { 0, 0 }, [C_CANCEL] = { 1, 1 }, [C_PAUSE] = { 1, 1 },
	[C_RESUME] = { 1, 1 }, [C_RETRY] = { 1, 1 }, [C_RECIPIENTS] = { 1, 1 },
	[C_OPTOUT] = { 1, -1 }, [C_RESCHEDULE] = { 1, 1 }
};

static int
check_args(int c, struct args *a, char **rest, int nargs)
{
	const char *name = cmds[c].name;

	if (c == C_RUN || c == C_STATUS) {
		if (a->all && nargs)
			return wa_usage_error("%s: give IDs or --all, not both", name);
		if (c == C_STATUS && a->business > 0 && nargs)
			return wa_usage_error("status: give IDs or --business, not both");
		if (!a->all && !nargs && c == C_RUN)
			return wa_usage_error("run: give broadcast IDs or --all");
		return 0;
	}
	if ((c == C_CREATE || c == C_OPTOUT) && a->business <= 0)
		return wa_usage_error("%s: --business ID is required", name);
	if (c == C_OPTOUT)
		return wa_bcast_optout_args(&a->oo, rest, nargs);
	if (c == C_RESCHEDULE && !a->n.at)
		return wa_usage_error("reschedule: --at TIME is required");
	if (nargs < nargs_of[c].min)
		return wa_usage_error("%s: a broadcast ID is required", name);
	if (nargs_of[c].max >= 0 && nargs > nargs_of[c].max)
		return wa_usage_error("%s: too many arguments", name);
	return 0;
}

static int
dispatch(int c, struct args *a, char **rest, int nrest, PGconn **db,
    const struct wa_cfg *cfg, struct wa_bcast_out *o)
{
	struct wa_bcast_run_opts ro;
	yajl_val rec = NULL;
	long long *ids = NULL, id = 0;
	int rc, bad;

	bad = c != C_CREATE && c != C_MARK && c != C_LIST && c != C_OPTOUT ?
	    wa_bcast_parse_ids(rest, nrest, &ids) : 0;
	if (bad) {
		rc = bad < 0 ? WA_EXIT_SOFTWARE :
		    wa_usage_error("%s: not a broadcast id: '%s'", cmds[c].name, rest[bad - 1]);
		free(ids);
		return rc;
	}
	if (c == C_MARK && wa_bcast_parse_id(rest[0], &id) != 0)
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
	ro.emit = wa_bcast_emit;
	ro.progress = a->progress ? wa_bcast_bar : NULL;
	ro.arg = o;

	/* The config file's region, as the environment's (a bad one is a
	 * configuration error, not a usage one). */
	if ((c == C_CREATE || c == C_OPTOUT) && !a->n.region &&
	    wa_cfg_get(cfg, WA_CFG_DEFAULT_REGION)) {
		struct wa_norm_opts no;

		a->n.region = wa_cfg_get(cfg, WA_CFG_DEFAULT_REGION);
		if (wa_norm_init(&no, a->n.region, NULL, 0) != 0) {
			wa_err("WA_DEFAULT_REGION: unknown region code '%s'", a->n.region);
			free(ids);
			return WA_EXIT_CONFIG;
		}
	}
	switch (c) {
	case C_CREATE:
		a->n.business_id = a->business;
		a->n.files = rest;
		a->n.nfiles = nrest;
		a->n.maxline = (size_t)a->maxline;
		rc = wa_bcast_create(*db, &a->n, &rec);
		rc = wa_bcast_emit_one(o, rec, rc);
		break;
	case C_RUN:
		catch_signals();
		rc = wa_bcast_run(&ro);
		break;
	case C_EXPORT:
		catch_signals();
		o->flush_each = 1;
		rc = wa_bcast_export(&ro, id);
		break;
	case C_MARK:
		/* Read on to the end after a first SIGINT: the sender upstream
		 * finishes its sends and their results must be recorded. */
		catch_signals();
		rc = wa_bcast_mark(&ro, id, rest + 1, nrest - 1, (size_t)a->maxline);
		break;
	case C_PREVIEW:
		catch_signals();
		o->flush_each = 1;
		rc = wa_bcast_preview(&ro, id, a->count);
		break;
	case C_OPTOUT:
		a->oo.business_id = a->business;
		a->oo.region = a->n.region;
		a->oo.format = a->n.format;
		a->oo.field = a->n.field;
		o->table = a->oo.op == WA_BCAST_OPTOUT_LIST && isatty(1);
		o->kind = WA_BCAST_T_OPTOUT;
		rc = wa_bcast_optout(*db, &a->oo, wa_bcast_emit, o);
		if (o->table && wa_bcast_out_table(o, WA_BCAST_T_OPTOUT) != 0 &&
		    rc == WA_EXIT_OK)
			rc = WA_EXIT_IO;
		break;
	case C_STATUS:
	case C_LIST:
		o->table = isatty(1);
		o->kind = c == C_LIST ? WA_BCAST_T_LIST : WA_BCAST_T_STATUS;
		rc = c == C_LIST ? wa_bcast_list(*db, cfg, a->business, wa_bcast_emit, o) :
		    wa_bcast_status(*db, cfg, a->business, ids, a->all ? 0 : nrest,
		    wa_bcast_emit, o);
		if (o->table && wa_bcast_out_table(o, c == C_LIST ? WA_BCAST_T_LIST :
		    WA_BCAST_T_STATUS) != 0 && rc == WA_EXIT_OK)
			rc = WA_EXIT_IO;
		break;
	case C_CANCEL:
		rc = wa_bcast_cancel(*db, id, &rec);
		rc = wa_bcast_emit_one(o, rec, rc);
		break;
	case C_PAUSE:
		rc = wa_bcast_pause(*db, id, a->reason, &rec);
		rc = wa_bcast_emit_one(o, rec, rc);
		break;
	case C_RESUME:
		rc = wa_bcast_resume(*db, id, &rec);
		rc = wa_bcast_emit_one(o, rec, rc);
		break;
	case C_RESCHEDULE:
		rc = wa_bcast_reschedule(*db, id, a->n.at, a->n.tz, &rec);
		rc = wa_bcast_emit_one(o, rec, rc);
		break;
	case C_RECIPIENTS:
		wa_bcast_out_recipients(o, a->format, isatty(1));
		rc = wa_bcast_recipients(*db, id, a->status, a->klass, wa_bcast_emit, o);
		rc = wa_bcast_out_end(o, rc);
		break;
	default:
		rc = wa_bcast_retry(*db, id, a->failed || !a->ambiguous, a->ambiguous, &rec);
		rc = wa_bcast_emit_one(o, rec, rc);
		break;
	}
	free(ids);
	return rc;
}

int
main(int argc, char **argv)
{
	struct args a;
	struct wa_optargs oa;
	struct wa_cfg cfg;
	struct wa_bcast_out o;
	enum wa_optres r;
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
	a.level = WA_LOG_NORMAL;
	wa_diag_init(argv[0], WA_LOG_NORMAL);
	r = wa_opt_parse(&spec, argc, argv, &a, &oa);
	if (r != WA_OPT_OK)
		return wa_opt_exit(r);
	wa_diag_init(argv[0], a.level);
	rc = check_args(oa.cmd, &a, oa.args, oa.nargs);
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
	db = wa_db_open(wa_cfg_get(&cfg, WA_CFG_DATABASE_URL), "wa-broadcast", err,
	    sizeof err, &code);
	if (!db) {
		wa_err("%s", err);
		wa_cfg_free(&cfg);
		return code;
	}
	o.fp = stdout;
	o.w = wa_writer_new(stdout);
	if (!o.w) {
		wa_err("out of memory");
		rc = WA_EXIT_SOFTWARE;
	} else {
		rc = dispatch(oa.cmd, &a, oa.args, oa.nargs, &db, &cfg, &o);
	}
	wa_writer_free(o.w);
	PQfinish(db);
	wa_cfg_free(&cfg);
	return wa_finish_stdout(rc);
}
