/* opt.c: the option table's parser, its help, and the one range check. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_cli.h"
#include "base/wa_opt.h"

/* Room for the longest table; a longer one is a programming error. */
#define MAXOPTS 64
/* Where help text starts: options, and commands in the overview. */
#define OPTCOL 25
#define CMDCOL 23

/* --- the range check --------------------------------------------------- */

static int
range_error(const char *name, const char *what, const char *lo,
    const char *hi, const char *s)
{
	return wa_usage_error("%s: not a %s from %s to %s: '%s'", name, what, lo,
	    hi, s ? s : "");
}

/* A number must start like one: no blanks, no sign other than '-'. */
static int
starts_number(const char *s)
{
	return s && (isdigit((unsigned char)s[0]) ||
	    (s[0] == '-' && isdigit((unsigned char)s[1])) ||
	    (s[0] == '.' && isdigit((unsigned char)s[1])));
}

static int
parse_integer(const char *name, const char *what, const char *s,
    long long min, long long max, long long *v)
{
	char lo[32], hi[32], *end;
	long long x;

	if (starts_number(s) && s[0] != '.') {
		errno = 0;
		x = strtoll(s, &end, 10);
		if (!errno && !*end && x >= min && x <= max) {
			*v = x;
			return 0;
		}
	}
	snprintf(lo, sizeof lo, "%lld", min);
	snprintf(hi, sizeof hi, "%lld", max);
	return range_error(name, what, lo, hi, s);
}

static int
parse_decimal(const char *name, const char *what, const char *s,
    double min, double max, double *v)
{
	char lo[32], hi[32], *end;
	double x;

	/* Digits only: strtod would also take "inf", "nan" and hex. */
	if (starts_number(s) && strspn(s, "0123456789.-eE+") == strlen(s)) {
		errno = 0;
		x = strtod(s, &end);
		if (!errno && !*end && isfinite(x) && x >= min && x <= max) {
			*v = x;
			return 0;
		}
	}
	snprintf(lo, sizeof lo, "%g", min);
	snprintf(hi, sizeof hi, "%g", max);
	return range_error(name, what, lo, hi, s);
}

int
wa_opt_int(const char *name, const char *s, long long min, long long max,
    long long *v)
{
	return parse_integer(name, "number", s, min, max, v);
}

int
wa_opt_size(const char *name, const char *s, long long min, long long max,
    long long *v)
{
	return parse_integer(name, "size", s, min, max, v);
}

int
wa_opt_double(const char *name, const char *s, double min, double max,
    double *v)
{
	return parse_decimal(name, "number", s, min, max, v);
}

int
wa_opt_seconds(const char *name, const char *s, double min, double max,
    double *v)
{
	return parse_decimal(name, "number of seconds", s, min, max, v);
}

/* --- help ----------------------------------------------------------------- */

/* left, then text from column col (each '\n' a line of its own there). */
static void
put_col(const char *left, const char *text, int col)
{
	int n = printf("%s", left);
	const char *p = text ? text : "";
	size_t len;

	printf("%*s", n <= col - 2 ? col - n : 2, "");
	for (;;) {
		len = strcspn(p, "\n");
		printf("%.*s\n", (int)len, p);
		if (!p[len])
			break;
		p += len + 1;
		printf("%*s", col, "");
	}
}

/* text as a paragraph: its lines joined, refilled to 72 columns. */
static void
put_para(const char *text)
{
	const char *p = text ? text : "";
	size_t len;
	int col = 0;

	while (*p) {
		p += strspn(p, " \n");
		len = strcspn(p, " \n");
		if (!len)
			break;
		if (col && col + 1 + (int)len > 72) {
			putchar('\n');
			col = 0;
		}
		col += printf("%s%.*s", col ? " " : "", (int)len, p);
		p += len;
	}
	putchar('\n');
}

static void
put_opt(const struct wa_opt *o)
{
	char left[96];
	int n;

	if (o->letter)
		n = snprintf(left, sizeof left, "  -%c, --%s", o->letter, o->name);
	else
		n = snprintf(left, sizeof left, "      --%s", o->name);
	if (o->arg != WA_ARG_NONE && n > 0 && (size_t)n < sizeof left)
		snprintf(left + n, sizeof left - (size_t)n, " %s", o->meta ? o->meta : "ARG");
	put_col(left, o->help, OPTCOL);
}

static void
put_builtin(void)
{
	put_col("  -h, --help", "show this help and exit", OPTCOL);
	put_col("  -V, --version", "show the version and exit", OPTCOL);
}

static int
applies(const struct wa_opt *o, int cmd)
{
	return cmd < 0 || (cmd < 32 && (o->cmds & (1u << cmd)));
}

void
wa_opt_help(const struct wa_optspec *spec, int cmd)
{
	const struct wa_optcmd *c;
	const struct wa_opt *o;
	char left[128];
	int i, any = 0;

	if (cmd >= 0 && spec->cmds && spec->cmds[cmd].name) {
		c = &spec->cmds[cmd];
		printf("Usage: %s [OPTION]... %s\n", wa_progname(),
		    c->synopsis ? c->synopsis : c->name);
		put_para(c->help);
		fputs("\nOptions:\n", stdout);
		for (o = spec->opts; o->name || o->help; o++)
			if (o->name && applies(o, cmd))
				put_opt(o);
		put_builtin();
		printf("\nSee %s --help for the other commands, and %s(1).\n",
		    wa_progname(), wa_progname());
		return;
	}
	fputs(spec->head, stdout);
	for (i = 0; spec->cmds && i < spec->ncmds; i++) {
		c = &spec->cmds[i];
		if (!c->name)
			continue;
		if (!any++)
			fputs("\nCommands:\n", stdout);
		snprintf(left, sizeof left, "  %s", c->synopsis ? c->synopsis : c->name);
		put_col(left, c->help, CMDCOL);
	}
	putchar('\n');
	for (o = spec->opts, any = 0; o->name || o->help; o++, any++) {
		if (o->name)
			put_opt(o);
		else
			printf("%s%s%s", any ? "\n" : "", o->help, *o->help ? "\n" : "");
	}
	put_builtin();
	if (spec->tail)
		printf("\n%s", spec->tail);
}

/* --- parsing ---------------------------------------------------------------- */

/* The table entry of a short letter or a long option's value; -1 none. */
static int
entry_of(const struct wa_optspec *spec, int c)
{
	int i;

	if (c >= 256)
		return c - 256;
	for (i = 0; spec->opts[i].name || spec->opts[i].help; i++)
		if (spec->opts[i].name && spec->opts[i].letter == c)
			return i;
	return -1;
}

/* How many long names start with the n bytes of s. */
static int
prefix_matches(const struct wa_optspec *spec, const char *s, size_t n)
{
	static const char *const builtin[] = { "help", "version" };
	const struct wa_opt *o;
	int k = 0;
	size_t i;

	for (o = spec->opts; o->name || o->help; o++)
		if (o->name && strncmp(o->name, s, n) == 0)
			k++;
	for (i = 0; i < 2; i++)
		if (strncmp(builtin[i], s, n) == 0)
			k++;
	return k;
}

/* Word getopt_long's complaint about argv[optind - 1] (c is '?' or ':'). */
static void
describe(const struct wa_optspec *spec, int c, char *const argv[], char *buf,
    size_t len)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	int e = entry_of(spec, optopt);
	size_t n;

	if (c == ':' && e >= 0 && optopt >= 256)
		snprintf(buf, len, "--%s: needs a value (%s)", spec->opts[e].name,
		    spec->opts[e].meta ? spec->opts[e].meta : "ARG");
	else if (c == ':')
		snprintf(buf, len, "-%c: needs a value", optopt);
	else if (strncmp(arg, "--", 2) == 0 && optopt)
		snprintf(buf, len, "--%s: takes no value", e >= 0 ?
		    spec->opts[e].name : optopt == 'h' ? "help" : "version"); else if (strncmp(arg, "--", 2) == 0) {
		n = strcspn(arg, "=");
		snprintf(buf, len, "%.*s: %s", (int)n, arg,
		    prefix_matches(spec, arg + 2, n - 2) > 1 ? "ambiguous option" :
		    "unknown option");
	} else if (isprint(optopt))
		snprintf(buf, len, "-%c: unknown option", optopt);
	else
		snprintf(buf, len, "%s: unknown option", arg);
}

static void
cmd_list(const struct wa_optspec *spec, char *buf, size_t len)
{
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < spec->ncmds && n < len; i++)
		if (spec->cmds[i].name)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
			    spec->cmds[i].name);
}

static int
find_cmd(const struct wa_optspec *spec, const char *name)
{
	int i;

	for (i = 0; i < spec->ncmds; i++)
		if (spec->cmds[i].name && strcmp(spec->cmds[i].name, name) == 0)
			return i;
	return -1;
}

/* Check the value of one option and hand it to spec->set. */
static int
take(const struct wa_optspec *spec, const struct wa_opt *o, const char *arg,
    void *ctx)
{
	struct wa_optval v = { arg, 0, 0 };
	char name[80];
	int rc = 0;

	snprintf(name, sizeof name, "--%s", o->name);
	switch (o->arg) {
	case WA_ARG_FILE:
		if (!*arg)
			return wa_usage_error("%s: an empty name", name);
		break;
	case WA_ARG_INT:
		rc = wa_opt_int(name, arg, (long long)o->min, (long long)o->max, &v.i);
		break;
	case WA_ARG_SIZE:
		rc = wa_opt_size(name, arg, (long long)o->min, (long long)o->max, &v.i);
		break;
	case WA_ARG_DOUBLE:
		rc = wa_opt_double(name, arg, o->min, o->max, &v.d);
		break;
	case WA_ARG_SECONDS:
		rc = wa_opt_seconds(name, arg, o->min, o->max, &v.d);
		break;
	default:
		break;
	}
	return rc ? rc : spec->set(ctx, o->id, &v);
}

struct seen {
	int opt;
	const char *arg;
};

enum wa_optres
wa_opt_parse(const struct wa_optspec *spec, int argc, char **argv, void *ctx,
    struct wa_optargs *out)
{
	struct option lo[MAXOPTS + 3];
	char shorts[3 * MAXOPTS + 8], bad[256] = "", list[256];
	const struct wa_opt *o;
	struct seen *seen;
	const char *unknown = NULL;
	int n = 0, ns = 0, nseen = 0, c, i, j, help = 0, version = 0, cmd, named = 0;
	enum wa_optres res = WA_OPT_OK;

	memset(out, 0, sizeof *out);
	out->cmd = -1;
	shorts[ns++] = ':'; /* a missing value comes back as ':' */
	shorts[ns++] = 'h';
	shorts[ns++] = 'V';
	for (i = 0; spec->opts[i].name || spec->opts[i].help; i++) {
		o = &spec->opts[i];
		if (!o->name)
			continue;
		if (n == MAXOPTS) {
			wa_err("internal error: more than %d options", MAXOPTS);
			return WA_OPT_USAGE;
		}
		lo[n].name = o->name;
		lo[n].has_arg = o->arg == WA_ARG_NONE ? no_argument : required_argument;
		lo[n].flag = NULL;
		lo[n++].val = 256 + i;
		if (o->letter) {
			shorts[ns++] = (char)o->letter;
			if (o->arg != WA_ARG_NONE)
				shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };

	seen = calloc((size_t)argc + 1, sizeof *seen);
	if (!seen) {
		wa_err("out of memory");
		return WA_OPT_USAGE;
	}
	/* Every option first: --help anywhere wins, and the subcommand (the
	 * first operand) may come after options that it must then accept. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == 'h')
			help = 1;
		else if (c == 'V')
			version = 1;
		else if (c == '?' || c == ':') {
			if (!bad[0])
				describe(spec, c, argv, bad, sizeof bad);
		} else if (entry_of(spec, c) >= 0) {
			seen[nseen].opt = entry_of(spec, c);
			seen[nseen++].arg = optarg;
		}
	}

	i = optind;
	cmd = spec->cmds ? spec->default_cmd : -1;
	if (spec->cmds && i < argc) {
		c = find_cmd(spec, argv[i]);
		if (c >= 0) {
			cmd = c;
			named = 1;
			i++;
		} else if (cmd < 0 || spec->cmds[cmd].name) {
			unknown = argv[i];
		}
	}
	if (named)
		wa_diag_command(spec->cmds[cmd].name);
	if (spec->cmds)
		cmd_list(spec, list, sizeof list);

	if (help) {
		wa_opt_help(spec, named ? cmd : -1);
		res = WA_OPT_HELP;
	} else if (version) {
		wa_print_version();
		res = WA_OPT_VERSION;
	} else if (bad[0]) {
		wa_usage_error("%s", bad);
		res = WA_OPT_USAGE;
	} else if (unknown) {
		wa_usage_error("unknown command '%s' (%s)", unknown, list);
		res = WA_OPT_USAGE;
	} else if (spec->cmds && cmd < 0) {
		wa_usage_error("no command given (%s)", list);
		res = WA_OPT_USAGE;
	}
	for (c = 0; res == WA_OPT_OK && c < nseen; c++) {
		o = &spec->opts[seen[c].opt];
		if (applies(o, cmd))
			continue;
		/* A name may mean one thing to some commands and another to
		 * others: the entry of that name this command takes. */
		for (j = 0; spec->opts[j].name || spec->opts[j].help; j++)
			if (spec->opts[j].name && !strcmp(spec->opts[j].name, o->name) &&
			    applies(&spec->opts[j], cmd))
				break;
		if (spec->opts[j].name) {
			seen[c].opt = j;
			continue;
		}
		wa_usage_error("%s%s--%s does not apply", spec->cmds[cmd].name ?
		    spec->cmds[cmd].name : "", spec->cmds[cmd].name ? ": " : "",
		    o->name);
		res = WA_OPT_USAGE;
	}
	for (c = 0; res == WA_OPT_OK && c < nseen; c++)
		if (take(spec, &spec->opts[seen[c].opt], seen[c].arg, ctx) != 0)
			res = WA_OPT_USAGE;
	free(seen);
	if (res == WA_OPT_OK) {
		out->cmd = cmd;
		out->args = argv + i;
		out->nargs = argc - i;
	}
	return res;
}

int
wa_opt_exit(enum wa_optres r)
{
	if (r == WA_OPT_HELP || r == WA_OPT_VERSION)
		return wa_finish_stdout(WA_EXIT_OK);
	return r == WA_OPT_OK ? WA_EXIT_OK : WA_EXIT_USAGE;
}
