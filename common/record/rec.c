/* rec.c: reading JSON lines, one record at a time, with a bound on the line.
 *
 * Input is read in blocks with read(2); a line is assembled in a buffer that
 * never grows past the limit. Past it, the rest of the line is skipped as it
 * streams by, so one huge line costs no more memory than a normal one.
 * A CSV file's blocks go to csv.c instead, which makes rows into records;
 * the reading, the files and the errors stay here, so that every program
 * gets CSV from the one reader it already uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/wa_cli.h"
#include "record/wa_csv.h"
#include "record/wa_rec.h"

#define BLOCK (64 * 1024)
#define MAXDEPTH 64 /* deeper JSON is refused: it would only be an attack */

struct wa_reader {
	char *const *files;
	int nfiles, next; /* next file to open */
	int fd;           /* -1: none open */
	const char *name; /* the current file, for messages */
	unsigned long lineno;
	size_t maxline;
	FILE *flush;
	char *blk;        /* read block */
	size_t blen, bpos;
	char *line;       /* the line being assembled */
	size_t llen, lcap;
	int overlong, eof_pending, at_start;
	enum wa_format fmt;
	const char *field;  /* --field, for CSV files */
	struct wa_csv *csv; /* the open file is CSV */
	int csv_eof;
	/* Each CSV file's number column: records point here. */
	char **names;
	size_t nnames;
	const char *cur_name;
	char err[512];
};

struct wa_reader *
wa_reader_new(char *const *files, int nfiles, size_t maxline, FILE *flush)
{
	static char *const stdin_only[] = { "-" };
	struct wa_reader *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	if (nfiles <= 0) {
		files = stdin_only;
		nfiles = 1;
	}
	r->files = files;
	r->nfiles = nfiles;
	r->fd = -1;
	r->fmt = WA_FORMAT_JSONL;
	r->maxline = maxline ? maxline : WA_MAXLINE_DEFAULT;
	r->flush = flush;
	r->blk = malloc(BLOCK);
	r->lcap = 256;
	r->line = malloc(r->lcap);
	if (!r->blk || !r->line) {
		free(r->blk);
		free(r->line);
		free(r);
		return NULL;
	}
	return r;
}

void
wa_reader_format(struct wa_reader *r, enum wa_format fmt, const char *field)
{
	r->fmt = fmt;
	r->field = field;
}

int
wa_format_opt(const char *s, int *fmt)
{
	if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0)
		*fmt = WA_FORMAT_JSONL;
	else if (strcmp(s, "csv") == 0)
		*fmt = WA_FORMAT_CSV;
	else
		return wa_usage_error("--format: '%s' is not jsonl or csv", s);
	return 0;
}

void
wa_reader_free(struct wa_reader *r)
{
	size_t i;

	if (!r)
		return;
	if (r->fd > 0)
		close(r->fd);
	wa_csv_free(r->csv);
	for (i = 0; i < r->nnames; i++)
		free(r->names[i]);
	free(r->names);
	free(r->blk);
	free(r->line);
	free(r);
}

const char *
wa_reader_error(const struct wa_reader *r)
{
	return r->err;
}

void
wa_rec_free(struct wa_rec *rec)
{
	wa_val_free(rec->obj);
	rec->obj = NULL;
}

static int is_csv(const struct wa_reader *r, const char *f);

/* Open the next file; 1 opened, 0 none left, -1 error (reported in err). */
static int
open_next(struct wa_reader *r)
{
	const char *f;

	if (r->next >= r->nfiles)
		return 0;
	f = r->files[r->next++];
	r->lineno = 0;
	r->blen = r->bpos = 0;
	r->at_start = 1;
	r->csv_eof = 0;
	r->cur_name = NULL;
	if (strcmp(f, "-") == 0) {
		r->fd = 0;
		r->name = "<stdin>";
	} else {
		r->fd = open(f, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			snprintf(r->err, sizeof r->err, "%s: %s", f, strerror(errno));
			return -1;
		}
		r->name = f;
	}
	if (is_csv(r, f) && !(r->csv = wa_csv_new(r->name, r->field, r->maxline))) {
		snprintf(r->err, sizeof r->err, "%s: out of memory", r->name);
		return -1;
	}
	return 1;
}

/* Is file f read as CSV? */
static int
is_csv(const struct wa_reader *r, const char *f)
{
	size_t n = strlen(f);

	if (r->fmt == WA_FORMAT_CSV)
		return 1;
	return r->fmt == WA_FORMAT_AUTO && n > 4 && strcasecmp(f + n - 4, ".csv") == 0;
}

/* Fill the block when it is used up: 1 bytes, 0 end of file, -1 error. */
static int
fill(struct wa_reader *r)
{
	ssize_t n;

	if (r->bpos < r->blen)
		return 1;
	if (r->flush)
		fflush(r->flush);
	do
		n = read(r->fd, r->blk, BLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		snprintf(r->err, sizeof r->err, "%s: %s", r->name, strerror(errno));
		return -1;
	}
	r->blen = (size_t)n;
	r->bpos = 0;
	return n > 0;
}

/* The number column's name, kept as long as the reader: records read
 * from the file may outlive its parser (in a feed's queue). */
static const char *
keep_name(struct wa_reader *r)
{
	const char *f = wa_csv_field(r->csv);
	char **nn;

	if (!f)
		return NULL;
	if (r->cur_name && strcmp(r->cur_name, f) == 0)
		return r->cur_name;
	nn = realloc(r->names, (r->nnames + 1) * sizeof *nn);
	if (!nn)
		return NULL;
	r->names = nn;
	if (!(nn[r->nnames] = strdup(f)))
		return NULL;
	return r->cur_name = nn[r->nnames++];
}

/* The next record of a CSV file: 1, 0 the file has ended, -1 read
 * error, -2 refused. */
static int
csv_next(struct wa_reader *r, struct wa_rec *rec)
{
	size_t used;
	int st;

	for (;;) {
		if (!r->csv_eof) {
			st = fill(r);
			if (st < 0)
				return -1;
			r->csv_eof = st == 0;
		}
		st = wa_csv_parse(r->csv, r->blk + r->bpos, r->csv_eof ? 0 :
		    r->blen - r->bpos, &used, rec);
		r->bpos += used;
		if (st < 0) {
			snprintf(r->err, sizeof r->err, "%s", wa_csv_error(r->csv));
			return -2;
		}
		if (st > 0) {
			if (rec->kind != WA_REC_BAD && !(rec->field = keep_name(r))) {
				wa_rec_free(rec);
				snprintf(r->err, sizeof r->err, "%s: out of memory", r->name);
				return -1;
			}
			return 1;
		}
		if (r->csv_eof)
			return 0;
	}
}

static int
append(struct wa_reader *r, const char *p, size_t n)
{
	size_t cap;
	char *nl;

	if (r->overlong)
		return 0;
	if (r->llen + n > r->maxline) {
		r->overlong = 1;
		return 0;
	}
	if (r->llen + n + 1 > r->lcap) {
		cap = r->lcap ? r->lcap : 256;
		while (cap < r->llen + n + 1)
			cap *= 2;
		nl = realloc(r->line, cap);
		if (!nl)
			return -1;
		r->line = nl;
		r->lcap = cap;
	}
	memcpy(r->line + r->llen, p, n);
	r->llen += n;
	return 0;
}

/* Assemble the next line of the current file into r->line.
 * 1: a line; 0: end of this file; -1: read error. */
static int
next_line(struct wa_reader *r)
{
	char *nl;
	ssize_t n;
	size_t take;

	r->llen = 0;
	r->overlong = 0;
	for (;;) {
		if (r->bpos == r->blen) {
			if (r->flush)
				fflush(r->flush);
			do
				n = read(r->fd, r->blk, BLOCK);
			while (n < 0 && errno == EINTR);
			if (n < 0) {
				snprintf(r->err, sizeof r->err, "%s: %s",
				    r->name, strerror(errno));
				return -1;
			}
			if (n == 0) {
				/* A last line without a newline still counts. */
				if (r->llen || r->overlong)
					break;
				return 0;
			}
			r->blen = (size_t)n;
			r->bpos = 0;
		}
		nl = memchr(r->blk + r->bpos, '\n', r->blen - r->bpos);
		take = (nl ? (size_t)(nl - r->blk) : r->blen) - r->bpos;
		if (append(r, r->blk + r->bpos, take) < 0) {
			snprintf(r->err, sizeof r->err, "%s: out of memory", r->name);
			return -1;
		}
		r->bpos += take + (nl != NULL);
		if (nl)
			break;
	}
	r->lineno++;
	r->line[r->llen] = '\0'; /* append() keeps room for it */
	if (r->llen && r->line[r->llen - 1] == '\r')
		r->line[--r->llen] = '\0';
	/* A UTF-8 byte order mark at the start of a file is not data. */
	if (r->lineno == 1 && r->llen >= 3 && memcmp(r->line, "\xEF\xBB\xBF", 3) == 0) {
		memmove(r->line, r->line + 3, r->llen - 2);
		r->llen -= 3;
	}
	return 1;
}

/* Copy s as valid UTF-8, each bad byte replaced by U+FFFD. */
static yajl_val
utf8_clean(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(n * 3 + 1);
	size_t i = 0, o = 0, len;
	yajl_val v;

	if (!out)
		return NULL;
	while (i < n) {
		/* NUL is bad too: it cannot live in a C string */
		len = wa_utf8_seq(p + i, n - i);
		if (!len) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	v = wa_new_strn(out, o);
	free(out);
	return v;
}

/* Nesting deeper than MAXDEPTH, counted outside strings. */
static int
too_deep(const char *s, size_t n)
{
	int depth = 0, instr = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (instr) {
			if (c == '\\')
				i++;
			else if (c == '"')
				instr = 0;
		} else if (c == '"')
			instr = 1;
		else if (c == '/' && i + 1 < n && s[i + 1] == '/')
			return 0; /* yajl allows comments: the rest is one */
		else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
			const char *e = memmem(s + i + 2, n - i - 2, "*/", 2);

			if (!e)
				return 0;
			i = (size_t)(e - s) + 1;
		} else if (c == '{' || c == '[') {
			if (++depth > MAXDEPTH)
				return 1;
		} else if (c == '}' || c == ']')
			depth--;
	}
	return 0;
}

static void
bad(struct wa_rec *rec, const char *code, const char *msg, const char *raw,
    size_t rawlen)
{
	rec->kind = WA_REC_BAD;
	rec->errcode = code;
	snprintf(rec->errmsg, sizeof rec->errmsg, "%s", msg);
	rec->errmsg[strcspn(rec->errmsg, "\r\n")] = '\0';
	rec->obj = wa_new_object();
	if (raw && rec->obj)
		wa_set(rec->obj, "raw", utf8_clean(raw, rawlen));
}

/* Turn the assembled line into a record. */
static int
classify(struct wa_reader *r, struct wa_rec *rec)
{
	char err[sizeof rec->errmsg];
	const char *s = r->line;
	size_t n = r->llen, lead = strspn(s, " \t"), end = n;
	yajl_val v;

	if (r->overlong) {
		snprintf(err, sizeof err, "line longer than %zu bytes", r->maxline);
		bad(rec, "line_too_long", err, NULL, 0);
		return rec->obj ? 1 : -1;
	}
	if (memchr(s, '\0', n)) {
		bad(rec, "bad_json", "NUL byte in line", s, n);
		return rec->obj ? 1 : -1;
	}
	while (end > lead && (s[end - 1] == ' ' || s[end - 1] == '\t'))
		end--;
	if (s[lead] == '{' || s[lead] == '[' || s[lead] == '"') {
		if (too_deep(s, n)) {
			bad(rec, "bad_json", "JSON nested too deeply", s, n);
			return rec->obj ? 1 : -1;
		}
		v = wa_json_parse(s, err, sizeof err);
		if (YAJL_IS_OBJECT(v)) {
			rec->kind = WA_REC_OBJECT;
			rec->obj = v;
			return 1;
		}
		if (v) {
			wa_val_free(v);
			snprintf(err, sizeof err, "a JSON %s, not an object",
			    s[lead] == '[' ? "array" : "string");
		} else if (!err[0])
			snprintf(err, sizeof err, "not valid JSON");
		bad(rec, "bad_json", err, s, n);
		return rec->obj ? 1 : -1;
	}
	/* A plain line: a number or address on its own, or nothing. */
	rec->kind = WA_REC_PLAIN;
	rec->obj = wa_new_object();
	if (!rec->obj)
		return -1;
	if (end > lead && wa_set(rec->obj, "to", utf8_clean(s + lead, end - lead)))
		return -1;
	return 1;
}

int
wa_reader_next(struct wa_reader *r, struct wa_rec *rec)
{
	int st;

	memset(rec, 0, sizeof *rec);
	for (;;) {
		if (r->fd < 0) {
			st = open_next(r);
			if (st <= 0)
				return st;
		}
		if (r->csv) {
			st = csv_next(r, rec);
			if (st == 1)
				return 1;
		} else {
			st = next_line(r);
			if (st == 1)
				break;
		}
		if (r->fd > 0)
			close(r->fd);
		r->fd = -1;
		wa_csv_free(r->csv);
		r->csv = NULL;
		if (st < 0)
			return st;
	}
	rec->file = r->name;
	rec->line = r->lineno;
	if (classify(r, rec) < 0) {
		snprintf(r->err, sizeof r->err, "%s:%lu: out of memory", r->name,
		    r->lineno);
		return -1;
	}
	return 1;
}
