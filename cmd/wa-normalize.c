/* wa-normalize: phone numbers and WhatsApp addresses in, E.164 and JIDs out. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_cli.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"

static const char usage[] =
"Usage: wa-normalize [OPTION]... [FILE]...\n"
"Read records (JSON objects, or lines holding just a number) from FILEs or\n"
"standard input and write each with phone (E.164), jid, region, valid and\n"
"source added, one record per input line, in input order.\n"
"\n"
"  -f, --field NAME     take the number from NAME (default: to, phone, jid)\n"
"  -r, --region CC      read national numbers in region CC (e.g. IL);\n"
"                       default $WA_DEFAULT_REGION, else international only\n"
"  -s, --strict         fail numbers that are possible but not valid\n"
"      --max-line BYTES longest input line (default 1048576)\n"
"  -v, --verbose        a log line per record on stderr\n"
"  -q, --quiet          errors only\n"
"  -h, --help           show this help and exit\n"
"  -V, --version        show the version and exit\n"
"\n"
"Exit status: 0 all records normalized, 1 some failed, 64 usage,\n"
"74 I/O error. See wa-normalize(1) and wa(7).\n";

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "field", required_argument, NULL, 'f' },
		{ "region", required_argument, NULL, 'r' },
		{ "strict", no_argument, NULL, 's' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *field = NULL, *region = NULL;
	struct wa_norm_opts no;
	struct wa_reader *rd;
	struct wa_writer *wr;
	struct wa_rec rec;
	struct wa_addr a;
	long maxline = WA_MAXLINE_DEFAULT;
	int c, strict = 0, level = WA_LOG_NORMAL, status = WA_EXIT_OK, st;

	wa_diag_init(argv[0], WA_LOG_NORMAL);
	while ((c = getopt_long(argc, argv, "f:r:svqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'f': field = optarg; break;
		case 'r': region = optarg; break;
		case 's': strict = 1; break;
		case 'L':
			maxline = wa_parse_long(optarg, 64, 1L << 30);
			if (maxline < 0)
				return wa_usage_error("--max-line: not a size from 64 to 1073741824: '%s'", optarg);
			break;
		case 'v': level = WA_LOG_VERBOSE; break;
		case 'q': level = WA_LOG_QUIET; break;
		case 'h': fputs(usage, stdout); return wa_finish_stdout(WA_EXIT_OK);
		case 'V': wa_print_version(); return wa_finish_stdout(WA_EXIT_OK);
		default: return wa_usage_badopt(argv);
		}
	}
	wa_diag_init(argv[0], level);
	if (field && !*field)
		return wa_usage_error("--field: empty field name");
	if (wa_norm_init(&no, region, field, strict) != 0)
		return region ? wa_usage_error("--region: unknown region code '%s'", region)
		    : (wa_err("WA_DEFAULT_REGION: unknown region code '%s'",
		        getenv("WA_DEFAULT_REGION")), WA_EXIT_CONFIG);

	rd = wa_reader_new(argv + optind, argc - optind, (size_t)maxline, stdout);
	wr = wa_writer_new(stdout);
	if (!rd || !wr) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	while ((st = wa_reader_next(rd, &rec)) != 0) {
		if (st < 0) {
			wa_err("%s", wa_reader_error(rd));
			status = WA_EXIT_IO;
			continue;
		}
		if (rec.kind == WA_REC_BAD) {
			wa_set_failed(rec.obj, rec.errcode, rec.errmsg);
			wa_err("%s:%lu: %s: %s", rec.file, rec.line, rec.errcode, rec.errmsg);
		} else if (wa_is_failed(rec.obj)) {
			/* failed upstream: pass it on untouched */
		} else if (wa_norm_record(&no, rec.obj, &a) != 0) {
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
