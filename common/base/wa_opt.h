/* wa_opt.h: one command-line dialect for every wa program.
 *
 * A program describes its options in a table: long name, short letter,
 * the kind of value with its range, the subcommands it applies to, and a
 * line of help. wa_opt_parse() reads argv with getopt_long's rules
 * (options before or after operands, `--` ends them, unambiguous
 * abbreviations of long names), checks every value, and refuses an option
 * the subcommand does not take, naming it. Two entries may share a long
 * name when no subcommand takes both: each subcommand gets its own. --help and --version are
 * built in; each subcommand's help is written from the same table, so it
 * can never list an option the parser refuses. */
#ifndef WA_OPT_H
#define WA_OPT_H

/* The kind of value an option takes. */
enum wa_arg {
	WA_ARG_NONE,    /* a switch */
	WA_ARG_STR,     /* any text */
	WA_ARG_FILE,    /* a file or folder name, not empty */
	WA_ARG_INT,     /* an integer in [min, max] */
	WA_ARG_SIZE,    /* a size in bytes in [min, max] */
	WA_ARG_DOUBLE,  /* a decimal number in [min, max] */
	WA_ARG_SECONDS  /* a number of seconds in [min, max] */
};

/* Every subcommand (the bits of wa_opt.cmds). */
#define WA_CMD_ALL (~0u)

struct wa_opt {
	const char *name;   /* long name without "--"; NULL: a heading, or the end */
	int letter;         /* short letter, 0 none */
	enum wa_arg arg;
	const char *meta;   /* the value's name in help: "N", "FILE" */
	double min, max;    /* WA_ARG_INT .. WA_ARG_SECONDS */
	unsigned cmds;      /* bit i: subcommand i takes it */
	int id;             /* handed to the set callback */
	const char *help;   /* '\n' starts a continuation line; a heading's text */
};

struct wa_optcmd {
	const char *name;     /* NULL: the program's implicit command */
	const char *synopsis; /* "create --business ID MESSAGE [FILE]..." */
	const char *help;     /* what it does; '\n' between lines */
};

struct wa_optval {
	const char *s;        /* the text given (NULL for a switch) */
	long long i;          /* WA_ARG_INT, WA_ARG_SIZE */
	double d;             /* WA_ARG_DOUBLE, WA_ARG_SECONDS */
};

struct wa_optspec {
	const char *head;     /* help before the commands: "Usage: ...\n..." */
	const char *tail;     /* help after the options: exit status */
	const struct wa_optcmd *cmds; /* ending with { NULL, NULL, NULL }; NULL: none */
	int ncmds;
	int default_cmd;      /* taken when no operand names one; -1: required */
	const struct wa_opt *opts;    /* ending with an all-zero entry */
	/* Store one option, in argv order, once every check has passed.
	 * 0, or an exit status after a diagnostic. */
	int (*set)(void *ctx, int id, const struct wa_optval *v);
};

/* What the command line asked for. */
enum wa_optres {
	WA_OPT_OK,        /* go on: res holds the command and its operands */
	WA_OPT_HELP,      /* help was printed on stdout */
	WA_OPT_VERSION,   /* the version was printed on stdout */
	WA_OPT_USAGE      /* a bad command line, reported on stderr */
};

struct wa_optargs {
	int cmd;          /* index into spec->cmds, -1 when it has none */
	char **args;      /* the operands after the subcommand's name */
	int nargs;
};

enum wa_optres wa_opt_parse(const struct wa_optspec *spec, int argc,
    char **argv, void *ctx, struct wa_optargs *out);

/* The exit status that goes with a result other than WA_OPT_OK: 0 after
 * help or version (once stdout is flushed), WA_EXIT_USAGE otherwise. */
int wa_opt_exit(enum wa_optres r);

/* Print the help of subcommand cmd (-1: the overview) on stdout. */
void wa_opt_help(const struct wa_optspec *spec, int cmd);

/* The one range check: parse s as the value of option name ("--parallel")
 * and write "--parallel: not a number from 1 to 1024: 'x'" when it is not.
 * 0, or WA_EXIT_USAGE after the message. */
int wa_opt_int(const char *name, const char *s, long long min, long long max,
    long long *v);
int wa_opt_size(const char *name, const char *s, long long min, long long max,
    long long *v);
int wa_opt_double(const char *name, const char *s, double min, double max,
    double *v);
int wa_opt_seconds(const char *name, const char *s, double min, double max,
    double *v);

#endif
