/* cli.c: diagnostics and the command-line contract. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/wa_cli.h"

/* Set once at start-up, read everywhere: the same role as getprogname(). */
static const char *progname = "wa";
static int loglevel = WA_LOG_NORMAL;
static const char *command;

void
wa_diag_init(const char *name, int level)
{
	const char *slash = strrchr(name, '/');

	progname = slash ? slash + 1 : name;
	loglevel = level;
	/* getopt's own messages would make two lines of one error. */
	opterr = 0;
	/* A closed pipe must be an error we report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
}

const char *
wa_progname(void)
{
	return progname;
}

int
wa_log_level(void)
{
	return loglevel;
}

static void
vdiag(const char *kind, const char *fmt, va_list ap)
{
	char buf[2048];
	size_t n;

	n = (size_t)snprintf(buf, sizeof buf, "%s: %s: ", progname, kind);
	if (n < sizeof buf)
		vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	/* One diagnostic, one line: cut at the first newline. */
	buf[strcspn(buf, "\r\n")] = '\0';
	fprintf(stderr, "%s\n", buf);
}

void
wa_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag("error", fmt, ap);
	va_end(ap);
}

void
wa_warn(const char *fmt, ...)
{
	va_list ap;

	if (loglevel < WA_LOG_NORMAL)
		return;
	va_start(ap, fmt);
	vdiag("warning", fmt, ap);
	va_end(ap);
}

void
wa_log(int need, const char *fmt, ...)
{
	va_list ap;

	if (loglevel < need)
		return;
	va_start(ap, fmt);
	flockfile(stderr); /* one line, whole, among threads */
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

void
wa_diag_command(const char *name)
{
	command = name;
}

int
wa_usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	msg[strcspn(msg, "\r\n")] = '\0';
	wa_err("%s; try '%s%s%s --help'", msg, progname, command ? " " : "",
	    command ? command : "");
	return WA_EXIT_USAGE;
}

void
wa_print_version(void)
{
	printf("%s (wa) %s\n", progname, WA_VERSION);
}

int
wa_finish_stdout(int status)
{
	int bad = 0, saved = 0;

	if (fflush(stdout) != 0) {
		bad = 1;
		saved = errno;
	}
	if (ferror(stdout) && !bad) {
		bad = 1;
		saved = errno ? errno : EIO;
	}
	if (fclose(stdout) != 0 && !bad) {
		bad = 1;
		saved = errno;
	}
	if (!bad)
		return status;
	wa_err("cannot write standard output: %s",
	    saved == EPIPE ? "pipe closed by reader" : strerror(saved));
	return WA_EXIT_IO;
}

long
wa_parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	return v;
}

double
wa_parse_double(const char *s, double min, double max)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || isnan(v) || v < min || v > max)
		return -1;
	return v;
}
