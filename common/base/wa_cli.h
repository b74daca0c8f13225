/* wa_cli.h: the command-line contract shared by every wa program:
 * exit codes, diagnostics on stderr, --help/--version, checking stdout. */
#ifndef WA_CLI_H
#define WA_CLI_H

#include <stdarg.h>
#include <stdio.h>
#include <sysexits.h>

/* One set of exit codes for every program (sysexits). */
enum {
	WA_EXIT_OK = 0,            /* every record succeeded */
	WA_EXIT_FAILED = 1,        /* the run finished, some record failed */
	WA_EXIT_USAGE = EX_USAGE,  /* 64 bad command line */
	WA_EXIT_DATA = EX_DATAERR, /* 65 input unusable as a whole */
	WA_EXIT_UNAVAIL = EX_UNAVAILABLE, /* 69 provider or server unavailable */
	WA_EXIT_SOFTWARE = EX_SOFTWARE,   /* 70 internal error */
	WA_EXIT_IO = EX_IOERR,     /* 74 I/O error */
	WA_EXIT_TEMP = EX_TEMPFAIL, /* 75 temporary failure, try again */
	WA_EXIT_CONFIG = EX_CONFIG /* 78 configuration error */
};

/* Verbosity: -q keeps errors only, -v adds a line per record. */
enum { WA_LOG_QUIET = -1, WA_LOG_NORMAL = 0, WA_LOG_VERBOSE = 1, WA_LOG_DEBUG = 2 };

/* Process-wide diagnostic settings, set once by main(). */
void wa_diag_init(const char *progname, int level);
const char *wa_progname(void);
int wa_log_level(void);

/* "wa-x: error: ..." / "wa-x: warning: ..." on stderr. */
void wa_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wa_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A log line (operators grep these), printed when level >= need. */
void wa_log(int need, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The subcommand being run ("create"), named in the --help hint; NULL none. */
void wa_diag_command(const char *name);

/* Bad command line: one line, the error and the --help hint to follow
 * ("wa-x: error: ...; try 'wa-x create --help'"); returns WA_EXIT_USAGE. */
int wa_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "wa-x (wa) VERSION" to stdout. */
void wa_print_version(void);

/* Flush and close stdout; report a write error or closed pipe.
 * Returns `status` unchanged when stdout was fine, WA_EXIT_IO otherwise. */
int wa_finish_stdout(int status);

/* Parse a non-negative integer option value in [min, max]; -1 on error. */
long wa_parse_long(const char *s, long min, long max);
/* Parse a non-negative decimal number (rates); -1 on error. */
double wa_parse_double(const char *s, double min, double max);

#endif
