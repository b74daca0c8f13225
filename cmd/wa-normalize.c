/* wa-normalize: phone numbers and WhatsApp addresses in, E.164 and JIDs out. */
#include <stdlib.h>
#include <string.h>

#include "base/wa_cli.h"
#include "base/wa_opt.h"
#include "cfg/wa_cfg.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"

enum { O_FIELD, O_FORMAT, O_REGION, O_STRICT, O_MAXLINE, O_CONFIG, O_VERBOSE, O_QUIET };

static const struct wa_opt opts[] = {
	{ "field", 'f', WA_ARG_STR, "NAME", 0, 0, WA_CMD_ALL, O_FIELD,
	    "take the number from NAME (default: to, phone, jid;\n"
	    "a CSV column named like phone, mobile, טלפון)" },
	{ "format", 0, WA_ARG_STR, "FMT", 0, 0, WA_CMD_ALL, O_FORMAT,
	    "jsonl or csv (default: csv for FILEs named *.csv)" },
	{ "region", 'r', WA_ARG_STR, "CC", 0, 0, WA_CMD_ALL, O_REGION,
	    "read national numbers in region CC (e.g. IL);\n"
	    "default WA_DEFAULT_REGION of the config or\n"
	    "environment, else international only" },
	{ "strict", 's', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_STRICT,
	    "fail numbers that are possible but not valid" },
	{ "max-line", 0, WA_ARG_SIZE, "BYTES", 64, 1L << 30, WA_CMD_ALL, O_MAXLINE,
	    "longest input line (default 1048576)" },
	{ "config", 'c', WA_ARG_FILE, "FILE", 0, 0, WA_CMD_ALL, O_CONFIG,
	    "KEY=VALUE settings (default $WA_CONFIG)" },
	{ "verbose", 'v', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_VERBOSE,
	    "a log line per record on stderr" },
	{ "quiet", 'q', WA_ARG_NONE, NULL, 0, 0, WA_CMD_ALL, O_QUIET, "errors only" },
	{ NULL, 0, 0, NULL, 0, 0, 0, 0, NULL }
};

struct args {
	const char *field, *region, *config;
	long long maxline;
	int strict, level, format;
};

static int
set_opt(void *ctx, int id, const struct wa_optval *v)
{
	struct args *a = ctx;

	switch (id) {
	case O_FIELD: a->field = v->s; break;
	case O_FORMAT: return wa_format_opt(v->s, &a->format);
	case O_REGION: a->region = v->s; break;
	case O_STRICT: a->strict = 1; break;
	case O_MAXLINE: a->maxline = v->i; break;
	case O_CONFIG: a->config = v->s; break;
	case O_VERBOSE: a->level = WA_LOG_VERBOSE; break;
	case O_QUIET: a->level = WA_LOG_QUIET; break;
	}
	return 0;
}

static const struct wa_optspec spec = {
	"Usage: wa-normalize [OPTION]... [FILE]...\n"
	"Read records (JSON objects, or lines holding just a number; or the rows of\n"
	"a CSV file with a header) from FILEs or standard input and write each with\n"
	"phone (E.164), jid, region, valid and source added, one record per input\n"
	"line or row, in input order.\n",
	"Exit status: 0 all records normalized, 1 some failed, 64 usage, 65 a\n"
	"file unusable (a UTF-16 CSV), 74 I/O error, 78 configuration error. See wa-normalize(1) and wa(7).\n",
	NULL, 0, -1, opts, set_opt
};

/* The region: --region, else the config's (or environment's). */
static int
setup(const struct args *a, struct wa_norm_opts *no)
{
	struct wa_cfg cfg;
	char err[600];
	const char *region = a->region;
	int rc = 0;

	if (a->field && !*a->field)
		return wa_usage_error("--field: empty field name");
	if (wa_cfg_load(&cfg, a->config, err, sizeof err) != 0) {
		wa_err("%s", err);
		return WA_EXIT_CONFIG;
	}
	if (!region)
		region = wa_cfg_get(&cfg, WA_CFG_DEFAULT_REGION);
	/* An empty one is unset: international numbers only. */
	if (wa_norm_init(no, region ? region : "", a->field, a->strict) != 0) {
		if (a->region)
			rc = wa_usage_error("--region: unknown region code '%s'", a->region);
		else {
			wa_err("WA_DEFAULT_REGION: unknown region code '%s'", region);
			rc = WA_EXIT_CONFIG;
		}
	}
	wa_cfg_free(&cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	struct args ar = { NULL, NULL, NULL, WA_MAXLINE_DEFAULT, 0, WA_LOG_NORMAL,
		WA_FORMAT_AUTO };
	struct wa_optargs oa;
	struct wa_norm_opts no;
	struct wa_reader *rd;
	struct wa_writer *wr;
	struct wa_rec rec;
	struct wa_addr a;
	enum wa_optres r;
	int status = WA_EXIT_OK, st;

	wa_diag_init(argv[0], WA_LOG_NORMAL);
	r = wa_opt_parse(&spec, argc, argv, &ar, &oa);
	if (r != WA_OPT_OK)
		return wa_opt_exit(r);
	wa_diag_init(argv[0], ar.level);
	st = setup(&ar, &no);
	if (st != 0)
		return st;

	rd = wa_reader_new(oa.args, oa.nargs, (size_t)ar.maxline, stdout);
	wr = wa_writer_new(stdout);
	if (!rd || !wr) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	wa_reader_format(rd, (enum wa_format)ar.format, ar.field);
	while ((st = wa_reader_next(rd, &rec)) != 0) {
		if (st < 0) {
			wa_err("%s", wa_reader_error(rd));
			if (status != WA_EXIT_IO)
				status = st == -2 ? WA_EXIT_DATA : WA_EXIT_IO;
			continue;
		}
		if (rec.kind == WA_REC_BAD) {
			wa_set_failed(rec.obj, rec.errcode, rec.errmsg);
			wa_err("%s:%lu: %s: %s", rec.file, rec.line, rec.errcode, rec.errmsg);
		} else if (wa_is_failed(rec.obj)) {
			/* failed upstream: pass it on untouched */
		} else if (wa_norm_rec(&no, &rec, &a) != 0) {
			yajl_val e = wa_get(rec.obj, "error");

			wa_err("%s:%lu: %s: %s%s%s", rec.file, rec.line,
			    wa_get_str(e, "code"), a.input[0] ? a.input : "",
			    a.input[0] ? ": " : "", wa_get_str(e, "message"));
		} else {
			wa_log(WA_LOG_VERBOSE, "[WA-NORMALIZE] to=%s \u2192 jid=%s source=%s",
			    a.input, a.jid, a.source);
		}
		if (wa_is_failed(rec.obj) && status == WA_EXIT_OK)
			status = WA_EXIT_FAILED;
		if (wa_writer_put(wr, rec.obj) != 0) {
			wa_rec_free(&rec);
			break; /* reported by wa_finish_stdout */
		}
		wa_rec_free(&rec);
	}
	wa_reader_free(rd);
	wa_writer_free(wr);
	return wa_finish_stdout(status);
}
