/* wa-send: the one send path for every message, on the command line.
 *
 * Records come in (from FILEs or standard input, read by a thread so that
 * a slow producer never stalls the sends in flight), are normalized and
 * routed, and go to the library's sender; each result goes out as soon as
 * it is known, so with --parallel results come in completion order.
 *
 * With --parallel 8 or more (and no --rate), the sends are spread over
 * lanes: up to one thread per CPU, each with its own sender and libcurl
 * multi handle, taking records from the one reader and writing whole
 * records to the one output. A single thread could not drive more than
 * about one core's worth of HTTP. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "phone/wa_norm.h"
#include "record/wa_feed.h"
#include "record/wa_rec.h"
#include "route/wa_route.h"
#include "send/wa_message.h"
#include "send/wa_result.h"
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

/* --- the run ------------------------------------------------------------ */

struct app {
	const struct opts *o;
	struct wa_cfg cfg;
	struct lane *lanes;
	int nlanes;
	struct wa_feed *feed;
	/* The lanes share what follows, under mu. */
	pthread_mutex_t mu;
	struct wa_norm_opts norm;
	struct wa_msg_src src;  /* --text, --template, --media */
	struct wa_router *router;
	struct wa_writer *wr;
	int status;       /* the exit status so far */
	int fatal_code;   /* exit code for fatal */
	int dirty;        /* output written since the last flush */
	atomic_int fatal; /* a fatal outcome, or stdout lost: no new records */
};

/* A sending thread: its own sender, `parallel` sends in flight at most. */
struct lane {
	struct app *a;
	struct wa_sender *snd;
	int parallel;
	pthread_t th;
	int started, rc;
};

/* One record on its way through the sender. */
struct item {
	struct wa_rec rec;
	struct wa_msg msg;
	struct wa_msg_own own;    /* the rendered parts of msg */
	char jid[128];
	char biz[WA_LL_SIZE];     /* for the log: "1" or "-" */
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	interrupted = sig;
}

static void
item_free(struct item *it)
{
	wa_rec_free(&it->rec);
	wa_msg_own_free(&it->own);
	free(it);
}

/* The reader's wake-up, from its thread. */
static void
wake_lanes(void *arg)
{
	struct app *a = arg;
	int i;

	for (i = 0; i < a->nlanes; i++)
		if (a->lanes[i].snd)
			wa_sender_wakeup(a->lanes[i].snd);
}

/* Stop every lane: a fatal outcome, or nobody hears the results. Called
 * with mu held. */
static void
halt(struct app *a, int code)
{
	if (!a->fatal) {
		a->fatal_code = code;
		a->fatal = 1;
		wake_lanes(a);
	}
}

/* Write one record whole, with n fields in place of its own or after
 * them. -1 when output is lost (the run then stops; reported at exit).
 * Called with mu held. */
static int
put_fields_locked(struct app *a, yajl_val obj, const struct wa_field *f, int n)
{
	if (a->fatal_code == WA_EXIT_IO)
		return -1;
	if (wa_writer_put_fields(a->wr, obj, f, n) != 0) {
		halt(a, WA_EXIT_IO);
		a->fatal_code = WA_EXIT_IO;
		return -1;
	}
	a->dirty = 1;
	return 0;
}

static int
put_locked(struct app *a, yajl_val obj)
{
	return put_fields_locked(a, obj, NULL, 0);
}

static int
put(struct app *a, yajl_val obj)
{
	int rc;

	pthread_mutex_lock(&a->mu);
	rc = put_locked(a, obj);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* A record that did not go out: exit 1 at least. Called with mu held. */
static void
some_failed(struct app *a)
{
	if (a->status == WA_EXIT_OK)
		a->status = WA_EXIT_FAILED;
}

/* Write a record with its result; -1 as put_locked. */
static int
put_result_locked(struct app *a, yajl_val obj, struct wa_result_rec *r)
{
	int rc = put_fields_locked(a, obj, r->f, WA_RESULT_NFIELDS);

	wa_result_rec_free(r);
	return rc;
}

static void
record_error(const struct wa_rec *rec, const char *to, const struct wa_error *e)
{
	wa_err("%s:%lu: %s%s%s (%s): %s", rec->file, rec->line, to ? to : "",
	    to ? ": " : "", e->code, wa_class_name(e->cls), e->message);
}

/* A record that failed before any send: written at once. */
static void
fail_early(struct app *a, struct wa_rec *rec, const char *provider,
    const struct wa_error *e)
{
	struct wa_result_rec r;

	wa_result_fields(&r, 0, provider, NULL, 0, 0, e);
	record_error(rec, NULL, e);
	pthread_mutex_lock(&a->mu);
	some_failed(a);
	put_result_locked(a, rec->obj, &r);
	pthread_mutex_unlock(&a->mu);
}

static void
copy_jid(struct item *it, const char *jid)
{
	size_t n = strnlen(jid, sizeof it->jid - 1);

	memcpy(it->jid, jid, n);
	it->jid[n] = '\0';
}

/* The record's address: its jid as given, else normalized like
 * wa-normalize. 0, or -1 when the record was marked failed. */
static int
msg_address(struct app *a, struct item *it, const char **to, const char **source)
{
	yajl_val obj = it->rec.obj;
	const char *jid = wa_get_str(obj, "jid");
	struct wa_addr addr;
	int rc;

	if (jid && *jid) {
		copy_jid(it, jid);
		*to = wa_get_str(obj, "phone") ? wa_get_str(obj, "phone") :
		    wa_get_str(obj, "to") ? wa_get_str(obj, "to") : jid;
		*source = wa_get_str(obj, "source") ? wa_get_str(obj, "source") : "jid";
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	rc = wa_norm_record(&a->norm, obj, &addr);
	pthread_mutex_unlock(&a->mu);
	if (rc != 0)
		return -1;
	copy_jid(it, addr.jid);
	*to = wa_get_str(obj, "to") ? wa_get_str(obj, "to") : addr.phone;
	*source = addr.source ? addr.source : "to";
	return 0;
}

static int
msg_business(const struct opts *o, struct item *it, struct wa_error *e)
{
	yajl_val v = wa_get(it->rec.obj, "business_id");
	long long id = o->business;

	if (v && !YAJL_IS_NULL(v) && (wa_get_int(it->rec.obj, "business_id", &id) != 0 || id < 0)) {
		wa_error_set(e, "bad_business", WA_CLASS_PERMANENT, "business_id is not a number");
		return -1;
	}
	it->msg.business_id = id;
	if (id >= 0)
		wa_fmt_ll(it->biz, id);
	else
		snprintf(it->biz, sizeof it->biz, "-");
	return 0;
}

/* A normalization failure, as a send failure: with class and counters. */
static void
fail_norm(struct app *a, struct wa_rec *rec)
{
	yajl_val err = wa_get(rec->obj, "error");
	struct wa_error e;
	char code[48];

	/* Copied: the record's error object is replaced below. */
	memset(&e, 0, sizeof e);
	snprintf(code, sizeof code, "%s", wa_get_str(err, "code") ?
	    wa_get_str(err, "code") : "invalid_phone");
	e.code = code;
	e.cls = WA_CLASS_PERMANENT;
	snprintf(e.message, sizeof e.message, "%s",
	    wa_get_str(err, "message") ? wa_get_str(err, "message") : "bad address");
	fail_early(a, rec, NULL, &e);
}

/* A record read: pass it on, fail it, or hand it to the sender. */
static void
take_record(struct lane *l, struct wa_rec *rec)
{
	struct app *a = l->a;
	const struct opts *o = a->o;
	struct item *it;
	struct wa_error e;
	const char *to = NULL, *source = NULL;
	int rc;

	if (rec->kind == WA_REC_BAD) {
		wa_set_failed(rec->obj, rec->errcode, rec->errmsg);
		fail_norm(a, rec);
		wa_rec_free(rec);
		return;
	}
	if (wa_is_failed(rec->obj)) {
		/* Failed upstream: passes untouched, is not sent. */
		pthread_mutex_lock(&a->mu);
		some_failed(a);
		put_locked(a, rec->obj);
		pthread_mutex_unlock(&a->mu);
		wa_rec_free(rec);
		return;
	}
	it = calloc(1, sizeof *it);
	if (!it) {
		wa_err("out of memory");
		wa_rec_free(rec);
		pthread_mutex_lock(&a->mu);
		a->status = WA_EXIT_SOFTWARE;
		pthread_mutex_unlock(&a->mu);
		return;
	}
	it->rec = *rec;
	it->msg.udata = it;
	it->msg.context = o->context;
	it->msg.idempotency_key = wa_get_str(it->rec.obj, "idempotency_key");
	if (msg_address(a, it, &to, &source) != 0) {
		fail_norm(a, &it->rec);
		item_free(it);
		return;
	}
	it->msg.jid = it->jid;
	rc = msg_business(o, it, &e);
	if (rc == 0) {
		pthread_mutex_lock(&a->mu);
		rc = wa_route(a->router, it->msg.business_id, &it->msg.provider, &e);
		if (rc == -2) {
			/* The database went away: nothing more can be routed. */
			struct wa_result_rec res;

			wa_result_fields(&res, 0, NULL, NULL, 0, 0, &e);
			record_error(&it->rec, NULL, &e);
			put_result_locked(a, it->rec.obj, &res);
			halt(a, WA_EXIT_UNAVAIL);
			pthread_mutex_unlock(&a->mu);
			wa_sender_stop(l->snd);
			item_free(it);
			return;
		}
		pthread_mutex_unlock(&a->mu);
	}
	if (rc == 0)
		rc = wa_msg_content(&it->msg, &it->own, it->rec.obj, &a->src, &e);
	if (rc != 0) {
		fail_early(a, &it->rec, it->msg.provider ?
		    wa_provider_name(it->msg.provider) : NULL, &e);
		item_free(it);
		return;
	}
	wa_log(WA_LOG_VERBOSE, "[WA-SEND-SERVICE] business_id=%s to=%s \u2192 jid=%s source=%s context=%s",
	    it->biz, to, it->jid, source, wa_context_name(o->context));
	if (wa_sender_submit(l->snd, &it->msg) != 0)
		item_free(it); /* stopped meanwhile: not reached, not written */
}

/* The sender's verdict on one message. */
static void
on_result(void *ctx, struct wa_msg *m, const struct wa_result *r)
{
	struct lane *l = ctx;
	struct app *a = l->a;
	struct item *it = m->udata;
	struct wa_result_rec res;
	char digits[64];
	int lost;

	wa_jid_user(it->jid, digits, sizeof digits);
	if (r->status == WA_NOT_SENT) {
		item_free(it); /* never reached: not written */
		return;
	}
	if (r->status == WA_DRY_RUN) {
		wa_set_str(it->rec.obj, "provider", wa_provider_name(r->provider));
		wa_set(it->rec.obj, "request", wa_val_copy(r->request));
		if (put(a, it->rec.obj) != 0)
			wa_sender_stop(l->snd);
		item_free(it);
		return;
	}
	wa_result_fields(&res, r->status == WA_SENT, wa_provider_name(r->provider),
	    r->message_id, r->attempts, r->duration_ms, &r->error);
	if (r->status == WA_SENT)
		wa_log(WA_LOG_VERBOSE, "[WA_SEND] to=%s status=sent message_id=%s attempts=%d",
		    digits, r->message_id, r->attempts);
	else {
		wa_log(WA_LOG_VERBOSE, "[WA_SEND] to=%s status=failed error=%s class=%s attempts=%d",
		    digits, r->error.code, wa_class_name(r->error.cls), r->attempts);
		record_error(&it->rec, digits, &r->error);
	}
	pthread_mutex_lock(&a->mu);
	if (r->status != WA_SENT)
		some_failed(a);
	if (r->status == WA_FAILED && r->error.cls == WA_CLASS_FATAL && !a->fatal) {
		halt(a, strcmp(r->error.code, "not_configured") == 0 ?
		    WA_EXIT_CONFIG : WA_EXIT_UNAVAIL);
		wa_err("stopping: %s: nothing more will be sent", r->error.code);
	}
	lost = put_result_locked(a, it->rec.obj, &res) != 0;
	pthread_mutex_unlock(&a->mu);
	if (lost)
		wa_sender_stop(l->snd);
	item_free(it);
}

/* May one more record be taken now? Memory stays at about 2 * parallel
 * records; with --parallel 1 one at a time, so output keeps input order. */
static int
room(const struct lane *l)
{
	int p = l->parallel;

	if (l->a->fatal || interrupted)
		return 0;
	if (l->a->o->parallel == 1)
		return wa_sender_pending(l->snd) == 0;
	return wa_sender_queued(l->snd) + wa_sender_inflight(l->snd) < p &&
	    wa_sender_pending(l->snd) < 2 * p;
}

static void
flush_out(struct app *a)
{
	pthread_mutex_lock(&a->mu);
	if (a->dirty) {
		fflush(stdout);
		a->dirty = 0;
	}
	pthread_mutex_unlock(&a->mu);
}

/* Feed records to the lane's sender and drive it until all is said. */
static int
run_loop(struct lane *l)
{
	struct app *a = l->a;
	struct wa_feed *f = a->feed;
	struct wa_feed_item s;
	int more = f != NULL, st;

	for (;;) {
		while (more && room(l)) {
			st = wa_feed_take(f, &s);
			if (st <= 0) {
				more = st == 0;
				break;
			}
			if (s.st < 0) {
				wa_err("%s", s.err ? s.err : "read error");
				free(s.err);
				pthread_mutex_lock(&a->mu);
				if (a->status != WA_EXIT_SOFTWARE)
					a->status = WA_EXIT_IO;
				pthread_mutex_unlock(&a->mu);
				continue;
			}
			take_record(l, &s.rec);
		}
		/* Another lane's fatal outcome stops this one too. */
		if ((interrupted || a->fatal) && !wa_sender_stopped(l->snd))
			wa_sender_stop(l->snd);
		if ((!more || a->fatal || interrupted) && wa_sender_pending(l->snd) == 0)
			break;
		/* Step without waiting; only when that brings nothing is the
		 * output flushed (a reader downstream sees every result
		 * before this waits) and the wait taken. */
		st = wa_sender_step(l->snd, 0);
		if (st == 0) {
			flush_out(a);
			st = wa_sender_step(l->snd, 1000);
		}
		if (st < 0) {
			wa_err("internal error in the HTTP engine");
			return WA_EXIT_SOFTWARE;
		}
	}
	flush_out(a);
	return 0;
}

static void *
lane_main(void *arg)
{
	struct lane *l = arg;

	l->rc = run_loop(l);
	return NULL;
}

/* How many lanes: one per CPU (at most 4) for 8 or more sends in flight,
 * each with 4 at least; one when sends are paced (--rate keeps its own
 * schedule per sender) or only shown (--dry-run). */
static int
lane_count(const struct opts *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int n = o->parallel / 4;

	if (o->parallel < 8 || o->rate > 0 || o->dry_run || o->to)
		return 1;
	if (cpus < 1)
		cpus = 1;
	if (n > cpus)
		n = (int)cpus;
	return n > 4 ? 4 : n < 1 ? 1 : n;
}

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

static int
setup_cfg(struct app *a)
{
	const struct opts *o = a->o;
	char err[600];

	a->src.text = o->text;
	a->src.tpl = o->tpl;
	a->src.media = o->media;
	if (wa_msg_src_check(&a->src, err, sizeof err) != 0)
		return wa_usage_error("%s", err);
	if (wa_cfg_load(&a->cfg, o->config, err, sizeof err) != 0) {
		wa_err("%s", err);
		return WA_EXIT_CONFIG;
	}
	if (o->timeout_ms > 0)
		a->cfg.timeout_ms = o->timeout_ms;
	if (o->media_timeout_ms > 0)
		a->cfg.media_timeout_ms = o->media_timeout_ms;
	if (o->connect_timeout_ms > 0)
		a->cfg.connect_timeout_ms = o->connect_timeout_ms;
	if (wa_norm_init(&a->norm, o->region ? o->region :
	    wa_cfg_get(&a->cfg, WA_CFG_DEFAULT_REGION), NULL, 0) != 0) {
		if (o->region)
			return wa_usage_error("--region: unknown region code '%s'", o->region);
		wa_err("WA_DEFAULT_REGION: unknown region code");
		return WA_EXIT_CONFIG;
	}
	return 0;
}

static int
setup_router(struct app *a)
{
	char err[600];
	int rc = wa_router_new(&a->router, &a->cfg, a->o->provider, err, sizeof err);

	if (rc == WA_EXIT_USAGE)
		return wa_usage_error("%s", err);
	if (rc != 0)
		wa_err("%s", err);
	return rc;
}

/* Before a lane's first sends of new messages: none once another lane met
 * a fatal outcome or the run is interrupted. */
static int
before_send(void *ctx, struct wa_msg *const *msgs, int n)
{
	struct lane *l = ctx;

	return l->a->fatal || interrupted ? -1 : 0;
}

static int
setup_senders(struct app *a)
{
	const struct opts *o = a->o;
	struct wa_sender_opts so;
	char err[256];
	int c, i;

	a->nlanes = lane_count(o);
	a->lanes = calloc((size_t)a->nlanes, sizeof *a->lanes);
	if (!a->lanes) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	for (i = 0; i < a->nlanes; i++) {
		struct lane *l = &a->lanes[i];

		l->a = a;
		/* parallel split as evenly as it goes */
		l->parallel = o->parallel / a->nlanes + (i < o->parallel % a->nlanes);
		wa_sender_opts_init(&so, &a->cfg);
		so.parallel = l->parallel;
		so.rate = o->rate;
		so.dry_run = o->dry_run;
		so.on_result = on_result;
		so.before_send = before_send;
		so.ctx = l;
		for (c = 0; c < WA_NCTX; c++) {
			if (o->retries >= 0)
				so.policy[c].max_attempts = (int)o->retries + 1;
			so.policy[c].retry_ambiguous = o->retry_ambiguous;
		}
		l->snd = wa_sender_new(&so, err, sizeof err);
		if (!l->snd) {
			wa_err("%s", err);
			return WA_EXIT_CONFIG;
		}
	}
	return 0;
}

/* wa-send status: one record, and the exit status says it all. */
static int
cmd_status(struct app *a)
{
	const struct opts *o = a->o;
	enum wa_provider p;
	struct wa_error e;
	struct wa_ready rd;
	yajl_val out;
	int rc;

	if (wa_route(a->router, o->business, &p, &e) != 0) {
		wa_err("business %lld: %s: %s", o->business, e.code, e.message);
		return e.cls == WA_CLASS_FATAL ? WA_EXIT_UNAVAIL : WA_EXIT_CONFIG;
	}
	rc = wa_check_ready(&a->cfg, p, o->business, &rd);
	out = wa_new_object();
	wa_set_str(out, "provider", wa_provider_name(p));
	if (o->business >= 0)
		wa_set_int(out, "business_id", o->business);
	else
		wa_set_null(out, "business_id");
	wa_set_bool(out, "ready", rd.ready);
	wa_set_str(out, "reason", rd.reason);
	if (rd.info)
		wa_set(out, "details", rd.info);
	else
		wa_set_null(out, "details");
	put(a, out);
	wa_val_free(out);
	if (rc != WA_EXIT_OK)
		wa_err("%s not ready: %s", wa_provider_name(p), rd.reason);
	else
		wa_log(WA_LOG_VERBOSE, "[WA_SEND] provider=%s business_id=%lld ready: %s",
		    wa_provider_name(p), o->business, rd.reason);
	return rc;
}

/* --to: the one record. */
static void
one_record(struct app *a)
{
	struct wa_rec rec;

	memset(&rec, 0, sizeof rec);
	rec.kind = WA_REC_OBJECT;
	rec.obj = wa_new_object();
	rec.file = "--to";
	rec.line = 1;
	wa_set_str(rec.obj, "to", a->o->to);
	take_record(&a->lanes[0], &rec);
}

static int
run(struct app *a)
{
	struct sigaction sa;
	int rc, i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (a->o->to) {
		one_record(a);
		return run_loop(&a->lanes[0]);
	}
	a->feed = wa_feed_start(a->o->files, a->o->nfiles, (size_t)a->o->maxline,
	    a->o->parallel > 4 ? a->o->parallel : 4, wake_lanes, a);
	if (!a->feed) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	wa_log(WA_LOG_DEBUG, "%s: %d sending thread%s, up to %d sends in flight "
	    "each", wa_progname(), a->nlanes, a->nlanes == 1 ? "" : "s",
	    a->lanes[0].parallel);
	/* Lane 0 runs here, the others in threads of their own. */
	for (i = 1; i < a->nlanes; i++)
		a->lanes[i].started = pthread_create(&a->lanes[i].th, NULL,
		    lane_main, &a->lanes[i]) == 0;
	rc = run_loop(&a->lanes[0]);
	for (i = 1; i < a->nlanes; i++) {
		if (!a->lanes[i].started) {
			/* No thread: this one does its share after all. */
			a->lanes[i].rc = run_loop(&a->lanes[i]);
		} else
			pthread_join(a->lanes[i].th, NULL);
		if (rc == 0)
			rc = a->lanes[i].rc;
	}
	wa_feed_stop(a->feed);
	a->feed = NULL;
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o = { .business = -1, .context = WA_CTX_CHAT, .retries = -1,
		.parallel = 1, .timeout_ms = -1, .media_timeout_ms = -1,
		.connect_timeout_ms = -1, .maxline = WA_MAXLINE_DEFAULT,
		.level = WA_LOG_NORMAL };
	struct app a;
	int rc, done, i;

	wa_diag_init(argv[0], WA_LOG_NORMAL);
	memset(&a, 0, sizeof a);
	a.o = &o;
	pthread_mutex_init(&a.mu, NULL);
	rc = parse_args(&o, argc, argv, &done);
	if (!done) {
		wa_diag_init(argv[0], o.level);
		rc = setup_cfg(&a);
		if (rc == 0)
			rc = setup_router(&a);
		if (rc == 0)
			rc = setup_senders(&a);
		a.wr = wa_writer_new(stdout);
		if (rc == 0 && !a.wr) {
			wa_err("out of memory");
			rc = WA_EXIT_SOFTWARE;
		}
		if (rc == 0)
			rc = o.status_cmd ? cmd_status(&a) : run(&a);
		if (rc == 0)
			rc = a.fatal ? a.fatal_code : interrupted ? WA_EXIT_TEMP : a.status;
		if (interrupted && !a.fatal)
			wa_err("interrupted: sends in flight finished, nothing more sent");
		rc = wa_finish_stdout(rc);
	}
	for (i = 0; i < a.nlanes; i++)
		wa_sender_free(a.lanes[i].snd);
	free(a.lanes);
	pthread_mutex_destroy(&a.mu);
	wa_router_free(a.router);
	wa_writer_free(a.wr);
	wa_cfg_free(&a.cfg);
	wa_val_free(o.tpl);
	wa_val_free(o.media);
	return rc;
}
