/* wa-send: the one send path for every message, on the command line.
 *
 * Records come in (from FILEs or standard input, read by a thread so that
 * a slow producer never stalls the sends in flight), are normalized and
 * routed, and go to the library's sender; each result goes out as soon as
 * it is known, so with --parallel results come in completion order. All
 * of that is the library's (batch/wa_batch.h): this file reads the
 * options, hands them over and turns the outcome into the exit status. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "batch/wa_batch.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "record/wa_rec.h"
#include "send/wa_send.h"

static const char usage[] =
"Usage: wa-send [OPTION]... [FILE]...\n"
"       wa-send --to NUMBER (--text TEXT | --template JSON | --media JSON) [OPTION]...\n"
"       wa-send status [--business ID] [--provider P]\n"
"Send one WhatsApp message per record read from FILEs or standard input (or\n"
"the one given by --to) through the Baileys service or Meta's Cloud API, and\n"
"write each record with status, provider, message_id, attempts, duration_ms\n"
"and, on failure, error added. 'status' checks the provider is ready.\n"
"\n"
"  -t, --to NUMBER        send one message to NUMBER instead of reading records\n"
"      --text TEXT        the text, for records without one; {{field}} is\n"
"                         replaced by the record's field\n"
"      --template JSON    the template {\"name\",\"language\",\"components\"} (Meta)\n"
"      --media JSON       the media {\"type\",\"url\"|\"path\",\"caption\",...}\n"
"  -b, --business ID      the business, for records without business_id\n"
"  -p, --provider P       baileys or meta, whatever the business uses\n"
"  -r, --region CC        read national numbers in region CC (e.g. IL)\n"
"  -c, --context C        chat, lead or broadcast: picks the retry policy\n"
"                         (default chat)\n"
"      --retries N        retry a retryable failure up to N times\n"
"      --retry-ambiguous  also retry sends that may have gone out\n"
"  -P, --parallel N       up to N sends at once (default 1: in input order)\n"
"      --rate R           at most R sends per second\n"
"      --timeout S        seconds for a text or template send (default 25)\n"
"      --media-timeout S  seconds for a media send (default 60)\n"
"      --connect-timeout S  seconds to connect (default 3)\n"
"      --config FILE      read KEY=VALUE settings from FILE (mode 600)\n"
"  -n, --dry-run          send nothing; print each request, secrets masked\n"
"      --max-line BYTES   longest input line (default 1048576)\n"
"  -v, --verbose          a log line per message on stderr (twice: per attempt)\n"
"  -q, --quiet            errors only\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
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
	int retry_ambiguous, parallel, dry_run, status_cmd;
	double rate;
	long timeout_ms, media_timeout_ms, connect_timeout_ms; /* -1: config's */
	long maxline;
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

static int
parse_timeout(const char *name, const char *s, long *ms)
{
	*ms = wa_cfg_parse_timeout(s);
	return *ms < 0 ? wa_usage_error("%s: not a number of seconds: '%s'", name, s) : 0;
}

enum {
	O_TEXT = 256, O_TEMPLATE, O_MEDIA, O_RETRIES, O_RETRY_AMB, O_RATE,
	O_TIMEOUT, O_MEDIA_TIMEOUT, O_CONNECT_TIMEOUT, O_CONFIG, O_MAXLINE
};

static int
parse_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 't': o->to = arg; break;
	case O_TEXT: o->text = arg; break;
	case O_TEMPLATE: return parse_json_opt("--template", arg, &o->tpl);
	case O_MEDIA: return parse_json_opt("--media", arg, &o->media);
	case 'b':
		o->business = wa_parse_long(arg, 0, 0x7fffffffL);
		if (o->business < 0)
			return wa_usage_error("--business: not a business id: '%s'", arg);
		break;
	case 'p': o->provider = arg; break;
	case 'r': o->region = arg; break;
	case 'c':
		if (wa_context_parse(arg, &o->context) != 0)
			return wa_usage_error("--context: '%s' is not chat, lead or broadcast", arg);
		break;
	case O_RETRIES:
		o->retries = wa_parse_long(arg, 0, 10);
		if (o->retries < 0)
			return wa_usage_error("--retries: not a number from 0 to 10: '%s'", arg);
		break;
	case O_RETRY_AMB: o->retry_ambiguous = 1; break;
	case 'P':
		o->parallel = (int)wa_parse_long(arg, 1, 1024);
		if (o->parallel < 0)
			return wa_usage_error("--parallel: not a number from 1 to 1024: '%s'", arg);
		break;
	case O_RATE:
		o->rate = wa_parse_double(arg, 0.001, 100000);
		if (o->rate < 0)
			return wa_usage_error("--rate: not a rate from 0.001 to 100000: '%s'", arg);
		break;
	case O_TIMEOUT: return parse_timeout("--timeout", arg, &o->timeout_ms);
	case O_MEDIA_TIMEOUT: return parse_timeout("--media-timeout", arg, &o->media_timeout_ms);
	case O_CONNECT_TIMEOUT: return parse_timeout("--connect-timeout", arg, &o->connect_timeout_ms);
	case O_CONFIG: o->config = arg; break;
	case 'n': o->dry_run = 1; break;
	case O_MAXLINE:
		o->maxline = wa_parse_long(arg, 64, 1L << 30);
		if (o->maxline < 0)
			return wa_usage_error("--max-line: not a size from 64 to 1073741824: '%s'", arg);
		break;
	case 'v': o->level = o->level >= WA_LOG_VERBOSE ? WA_LOG_DEBUG : WA_LOG_VERBOSE; break;
	case 'q': o->level = WA_LOG_QUIET; break;
	default: return wa_usage_error("unknown or incomplete option");
	}
	return 0;
}

/* 0 to go on; else the exit status (after --help, --version or a bad
 * command line). */
static int
parse_args(struct opts *o, int argc, char **argv, int *done)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "text", required_argument, NULL, O_TEXT },
		{ "template", required_argument, NULL, O_TEMPLATE },
		{ "media", required_argument, NULL, O_MEDIA },
		{ "business", required_argument, NULL, 'b' },
		{ "provider", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "context", required_argument, NULL, 'c' },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "retry-ambiguous", no_argument, NULL, O_RETRY_AMB },
		{ "parallel", required_argument, NULL, 'P' },
		{ "rate", required_argument, NULL, O_RATE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "media-timeout", required_argument, NULL, O_MEDIA_TIMEOUT },
		{ "connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "max-line", required_argument, NULL, O_MAXLINE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, n, rc;

	*done = 0;
	while ((c = getopt_long(argc, argv, "t:b:p:r:c:P:nvqhV", longopts, NULL)) != -1) {
		if (c == 'h' || c == 'V') {
			*done = 1;
			if (c == 'h')
				fputs(usage, stdout);
			else
				wa_print_version();
			return wa_finish_stdout(WA_EXIT_OK);
		}
		if (c == '?' || c == ':') {
			*done = 1;
			return wa_usage_badopt(argv);
		}
		rc = parse_opt(o, c, optarg);
		if (rc != 0) {
			*done = 1;
			return rc;
		}
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
	if (o->nfiles > 0 && strcmp(o->files[0], "status") == 0) {
		o->status_cmd = 1;
		o->files++;
		o->nfiles--;
	}
	*done = 1;
	n = (o->text != NULL) + (o->tpl != NULL) + (o->media != NULL);
	if (n > 1)
		return wa_usage_error("give only one of --text, --template and --media");
	if (o->status_cmd && (o->nfiles > 0 || o->to || n))
		return wa_usage_error("status takes only --business, --provider and --config");
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
	bo->src.text = o->text;
	bo->src.tpl = o->tpl;
	bo->src.media = o->media;
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
