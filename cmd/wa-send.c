/* wa-send: the one send path for every message, on the command line.
 *
 * Records come in (from FILEs or standard input, read by a thread so that
 * a slow producer never stalls the sends in flight), are normalized and
 * routed, and go to the library's sender; each result goes out as soon as
 * it is known, so with --parallel results come in completion order. All
 * of that is the library's (batch/wa_batch.h): this file reads the
 * options, hands them over and turns the outcome into the exit status. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "batch/wa_batch.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "base/wa_opt.h"
#include "record/wa_rec.h"
#include "send/wa_send.h"

static const char head[] =
"Usage: wa-send [OPTION]... [FILE]...\n"
"       wa-send --to NUMBER (--text TEXT | --template JSON | --media JSON) [OPTION]...\n"
"       wa-send status [--business ID] [--provider P]\n"
"Send one WhatsApp message per record read from FILEs or standard input (or\n"
"the one given by --to) through the Baileys service or Meta's Cloud API, and\n"
"write each record with status, provider, message_id, attempts, duration_ms\n"
"and, on failure, error added.\n";

static const char tail[] =
"Exit status: 0 all sent (or ready), 1 some failed, 64 usage, 69 a fatal\n"
"outcome stopped the run (or not ready), 74 I/O error, 75 interrupted,\n"
"78 configuration error. See wa-send(1) and wa(7).\n";

/* --- options ------------------------------------------------------------ */

struct opts {
	const char *to, *text, *provider, *region, *config;
	yajl_val tpl, media;          /* --template, --media, parsed */
	long long business;           /* -1: none */
	enum wa_context context;
	long retries;                 /* -1: the context's */
	int retry_ambiguous, parallel, dry_run, status_cmd, preview_url, ignore_optout;
	double rate;
	long timeout_ms, media_timeout_ms, connect_timeout_ms; /* -1: config's */
	long maxline;
	int format;  /* enum wa_format */
	int level;
	char **files;
	int nfiles;
};

/* --- set-up ------------------------------------------------------------- */

static int
parse_json_opt(const char *name, const char *s, yajl_val *out)
{
	char err[160];

	*out = wa_json_parse(s, err, sizeof err);
	if (!YAJL_IS_OBJECT(*out)) {
		wa_val_free(*out);
		*out = NULL;
		return wa_usage_error("%s: not a JSON object%s%s", name, err[0] ? ": " : "", err);
	}
	return 0;
}

/* The implicit command (sending) and status, the bits of wa_opt.cmds. */
enum { C_SEND, C_STATUS, NCMDS };
#define SEND (1u << C_SEND)

static const struct wa_optcmd cmds[] = {
	[C_SEND] = { NULL, NULL, NULL },
	[C_STATUS] = { "status", "status",
	    "check the provider is ready: one record\n"
	    "{provider, business_id, ready, reason, details}" },
	{ NULL, NULL, NULL }
};

enum {
	O_TO, O_TEXT, O_TEMPLATE, O_MEDIA, O_PREVIEW_URL, O_BUSINESS, O_PROVIDER, O_REGION,
	O_CONTEXT, O_RETRIES, O_RETRY_AMB, O_PARALLEL, O_RATE, O_TIMEOUT,
	O_MEDIA_TIMEOUT, O_CONNECT_TIMEOUT, O_CONFIG, O_DRY_RUN, O_IGNORE_OPTOUT,
	O_MAXLINE, O_FORMAT,
	O_VERBOSE, O_QUIET
};

static const struct wa_opt optab[] = {
	{ "to", 0, WA_ARG_STR, "NUMBER", 0, 0, SEND, O_TO,
	    "send one message to NUMBER instead of reading records" },
	{ "text", 0, WA_ARG_STR, "TEXT", 0, 0, SEND, O_TEXT,
	    "the text, for records without one; {{field}} is\n"
	    "replaced by the record's field" },
	{ "template", 0, WA_ARG_STR, "JSON", 0, 0, SEND, O_TEMPLATE,
	    "the template {\"name\",\"language\",\"components\"} (Meta)" },
	{ "media", 0, WA_ARG_STR, "JSON", 0, 0, SEND, O_MEDIA,
	    "the media {\"type\",\"url\"|\"path\",\"caption\",...}" },
	{ "preview-url", 0, WA_ARG_NONE, NULL, 0, 0, SEND, O_PREVIEW_URL,
	    "Meta: show a preview of a text's first link\n"
	    "(a record's preview_url wins; Baileys has none)" },
	{ "business", 'b', WA_ARG_STR, "ID", 0, 0, WA_CMD_ALL, O_BUSINESS,
	    "the business, for records without business_id" },
	{ "provider", 'p', WA_ARG_STR, "P", 0, 0, WA_CMD_ALL, O_PROVIDER,
	    "baileys or meta, whatever the business uses" },
	{ "region", 'r', WA_ARG_STR, "CC", 0, 0, SEND, O_REGION,
	    "read national numbers in region CC (e.g. IL)" },
	{ "context", 0, WA_ARG_STR, "C", 0, 0, SEND, O_CONTEXT,
	    "chat, lead or broadcast: picks the retry policy\n"
	    "(default chat)" },
	{ "retries", 0, WA_ARG_INT, "N", 0, 10, SEND, O_RETRIES,
	    "retry a retryable failure up to N times" },
	{ "retry-ambiguous", 0, WA_ARG_NONE, NULL, 0, 0, SEND, O_RETRY_AMB,
	    "also retry sends that may have gone out" },
	{ "parallel", 'P', WA_ARG_INT, "N", 1, 1024, SEND, O_PARALLEL,
	    "up to N sends at once (default 1: in input order)" },
	{ "rate", 0, WA_ARG_DOUBLE, "R", 0.001, 100000, SEND, O_RATE,
	    "at most R sends per second" },
	{ "timeout", 0, WA_ARG_SECONDS, "S", 0.001, 86400, WA_CMD_ALL, O_TIMEOUT,
	    "seconds for a text or template send (default\n"
	    "35 Baileys, 25 Meta; status: at most 5)" },
	{ "media-timeout", 0, WA_ARG_SECONDS, "S", 0.001, 86400, SEND, O_MEDIA_TIMEOUT,
	    "seconds for a media send (default 60)" },
	{ "connect-timeout", 0, WA_ARG_SECONDS, "S", 0.001, 86400, WA_CMD_ALL,
	    O_CONNECT_TIMEOUT, "seconds to connect (default 3)" },
	{ "config", 0, WA_ARG_FILE, "FILE", 0, 0, WA_CMD_ALL, O_CONFIG,
	    "read KEY=VALUE settings from FILE (mode 600)" },
	{ "dry-run", 0, WA_ARG_NONE, NULL, 0, 0, SEND, O_DRY_RUN,
	    "send nothing; print each request, secrets masked" },
	{ "ignore-optout", 0, WA_ARG_NONE, NULL, 0, 0, SEND, O_IGNORE_OPTOUT,
	    "send to numbers the business's opt-outs hold\n"
	    "(checked with a business and a database)" },
	{ "max-line", 0, WA_ARG_SIZE, "BYTES", 64, 1L << 30, SEND, O_MAXLINE,
	    "longest input line (default 1048576)" },
	{ "format", 0, WA_ARG_STR, "FMT", 0, 0, SEND, O_FORMAT,
	    "jsonl or csv (default: csv for FILEs named *.csv)" },
	{ "verbose", 'v', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_VERBOSE,
	    "a log line per message on stderr (twice: per attempt)" },
	{ "quiet", 'q', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_QUIET, "errors only" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, NULL }
};

static int
parse_opt(void *ctx, int id, const struct wa_optval *v)
{
	struct opts *o = ctx;
	const char *arg = v->s;

	switch (id) {
	case O_TO: o->to = arg; break;
	case O_TEXT: o->text = arg; break;
	case O_TEMPLATE: return parse_json_opt("--template", arg, &o->tpl);
	case O_MEDIA: return parse_json_opt("--media", arg, &o->media);
	case O_PREVIEW_URL: o->preview_url = 1; break;
	case O_BUSINESS:
		o->business = wa_parse_long(arg, 0, 0x7fffffffL);
		if (o->business < 0)
			return wa_usage_error("--business: not a business id: '%s'", arg);
		break;
	case O_PROVIDER: o->provider = arg; break;
	case O_REGION: o->region = arg; break;
	case O_CONTEXT:
		if (wa_context_parse(arg, &o->context) != 0)
			return wa_usage_error("--context: '%s' is not chat, lead or broadcast", arg);
		break;
	case O_RETRIES: o->retries = (long)v->i; break;
	case O_RETRY_AMB: o->retry_ambiguous = 1; break;
	case O_PARALLEL: o->parallel = (int)v->i; break;
	case O_RATE: o->rate = v->d; break;
	case O_TIMEOUT: o->timeout_ms = (long)(v->d * 1000 + 0.5); break;
	case O_MEDIA_TIMEOUT: o->media_timeout_ms = (long)(v->d * 1000 + 0.5); break;
	case O_CONNECT_TIMEOUT: o->connect_timeout_ms = (long)(v->d * 1000 + 0.5); break;
	case O_CONFIG: o->config = arg; break;
	case O_DRY_RUN: o->dry_run = 1; break;
	case O_IGNORE_OPTOUT: o->ignore_optout = 1; break;
	case O_MAXLINE: o->maxline = (long)v->i; break;
	case O_FORMAT: return wa_format_opt(arg, &o->format);
	case O_VERBOSE: o->level = o->level >= WA_LOG_VERBOSE ? WA_LOG_DEBUG : WA_LOG_VERBOSE; break;
	case O_QUIET: o->level = WA_LOG_QUIET; break;
	}
	return 0;
}

static const struct wa_optspec spec = {
	head, tail, cmds, NCMDS, C_SEND, optab, parse_opt
};

/* 0 to go on; else the exit status (after --help, --version or a bad
 * command line). */
static int
parse_args(struct opts *o, int argc, char **argv, int *done)
{
	struct wa_optargs oa;
	enum wa_optres r;
	int n;

	*done = 1;
	r = wa_opt_parse(&spec, argc, argv, o, &oa);
	if (r != WA_OPT_OK)
		return wa_opt_exit(r);
	o->status_cmd = oa.cmd == C_STATUS;
	o->files = oa.args;
	o->nfiles = oa.nargs;
	n = (o->text != NULL) + (o->tpl != NULL) + (o->media != NULL);
	if (n > 1)
		return wa_usage_error("give only one of --text, --template and --media");
	if (o->status_cmd && o->nfiles > 0)
		return wa_usage_error("status: unexpected argument '%s'", o->files[0]);
	if (o->to && o->nfiles > 0)
		return wa_usage_error("--to sends one message: no FILE with it");
	if (o->to && n == 0)
		return wa_usage_error("--to needs --text, --template or --media");
	*done = 0;
	return 0;
}

/* The library's options, from the command line's. */
static void
batch_opts(const struct opts *o, struct wa_batch_opts *bo)
{
	memset(bo, 0, sizeof *bo);
	bo->to = o->to;
	bo->files = o->files;
	bo->nfiles = o->nfiles;
	bo->maxline = o->maxline;
	bo->format = o->format;
	bo->src.text = o->text;
	bo->src.tpl = o->tpl;
	bo->src.media = o->media;
	bo->src.preview_url = o->preview_url;
	bo->provider = o->provider;
	bo->region = o->region;
	bo->config = o->config;
	bo->business = o->business;
	bo->context = o->context;
	bo->retries = o->retries;
	bo->retry_ambiguous = o->retry_ambiguous;
	bo->parallel = o->parallel;
	bo->rate = o->rate;
	bo->dry_run = o->dry_run;
	bo->ignore_optout = o->ignore_optout;
	bo->timeout_ms = o->timeout_ms;
	bo->media_timeout_ms = o->media_timeout_ms;
	bo->connect_timeout_ms = o->connect_timeout_ms;
	bo->out = stdout;
}

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	interrupted = sig;
}

/* Send, with SIGINT and SIGTERM letting the sends in flight finish. */
static int
run(struct wa_batch *b)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return wa_batch_run(b);
}

int
main(int argc, char **argv)
{
	struct opts o = { .business = -1, .context = WA_CTX_CHAT, .retries = -1,
		.parallel = 1, .timeout_ms = -1, .media_timeout_ms = -1,
		.connect_timeout_ms = -1, .maxline = WA_MAXLINE_DEFAULT,
		.level = WA_LOG_NORMAL };
	struct wa_batch_opts bo;
	struct wa_batch *b = NULL;
	int rc, done;

	wa_diag_init(argv[0], WA_LOG_NORMAL);
	rc = parse_args(&o, argc, argv, &done);
	if (!done) {
		wa_diag_init(argv[0], o.level);
		batch_opts(&o, &bo);
		bo.stop = &interrupted;
		rc = wa_batch_new(&b, &bo);
		if (rc == 0)
			rc = o.status_cmd ? wa_batch_status(b) : run(b);
		rc = wa_finish_stdout(rc);
	}
	wa_batch_free(b);
	wa_val_free(o.tpl);
	wa_val_free(o.media);
	return rc;
}
