/* csv.c: CSV rows as records, on libcsv (see wa_csv.h).
 *
 * libcsv knows quoting but neither lines nor headers, so the bytes are
 * handed to it one physical line at a time (a segment ends at a CR or LF,
 * or after BLOCK bytes): at most one row ends in a segment, and the line
 * it started on is the one counted when its first byte was seen. */
#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "record/wa_csv.h"

#define BLOCK (64 * 1024)

enum state { S_SNIFF, S_ROWS, S_DONE };

struct cell {
	size_t off, len;
};

struct wa_csv {
	const char *name, *field;
	size_t maxrow;
	struct csv_parser p;
	int p_init;
	enum state state;
	unsigned char delim;
	/* S_SNIFF: the bytes up to the end of the first line that is not
	 * blank, held until its delimiter is known, then parsed from hpos */
	char *head;
	size_t hlen, hcap, hpos;
	unsigned long lineno; /* line ends seen (CR LF is one) */
	int prev_cr;
	/* the row being parsed: its cells' bytes in buf */
	char *buf;
	size_t blen, bcap;
	struct cell *cells;
	size_t ncells, ccap;
	int seen;            /* S_SNIFF: a byte not blank */
	int in_row, overlong, nomem;
	unsigned long row_line;
	size_t row_bytes;
	/* the header: column names, NULL for one left out (no name, or
	 * the name of an earlier one) */
	char **cols;
	size_t ncols, nnamed;
	long numcol; /* the number's column; -1 none yet */
	int have_header;
	/* a row made into a record, waiting to be taken */
	int ready;
	struct wa_rec out;
	int refused;
	char err[512];
};

/* The file is refused: c->err is "NAME: why". */
static int __attribute__((format(printf, 2, 3)))
refuse(struct wa_csv *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->refused)
		return -1; /* the first reason stands */
	n = snprintf(c->err, sizeof c->err, "%s: ", c->name);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof c->err)
		vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
	va_end(ap);
	c->refused = 1;
	return -1;
}

struct wa_csv *
wa_csv_new(const char *name, const char *field, size_t maxrow)
{
	struct wa_csv *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->name = name ? name : "-";
	c->field = field && *field ? field : NULL;
	c->maxrow = maxrow ? maxrow : WA_MAXLINE_DEFAULT;
	c->numcol = -1;
	return c;
}

void
wa_csv_free(struct wa_csv *c)
{
	size_t i;

	if (!c)
		return;
	if (c->p_init)
		csv_free(&c->p);
	for (i = 0; i < c->ncols; i++)
		free(c->cols[i]);
	free(c->cols);
	free(c->head);
	free(c->buf);
	free(c->cells);
	wa_rec_free(&c->out);
	free(c);
}

const char *
wa_csv_error(const struct wa_csv *c)
{
	return c->err;
}

const char *
wa_csv_field(const struct wa_csv *c)
{
	return c->numcol >= 0 ? c->cols[c->numcol] : NULL;
}

/* --- cells and rows (libcsv's callbacks) --------------------------------- */

static void
cb_cell(void *s, size_t len, void *data)
{
	struct wa_csv *c = data;
	struct cell *nc;
	char *nb;
	size_t cap;

	/* Counted even when not kept, for the message of an overlong row. */
	if (c->overlong || c->nomem) {
		c->ncells++;
		return;
	}
	if (c->ncells == c->ccap) {
		cap = c->ccap ? 2 * c->ccap : 16;
		if (!(nc = realloc(c->cells, cap * sizeof *nc))) {
			c->nomem = 1;
			return;
		}
		c->cells = nc;
		c->ccap = cap;
	}
	if (c->blen + len + 1 > c->bcap) {
		cap = c->bcap ? c->bcap : 256;
		while (cap < c->blen + len + 1)
			cap *= 2;
		if (!(nb = realloc(c->buf, cap))) {
			c->nomem = 1;
			return;
		}
		c->buf = nb;
		c->bcap = cap;
	}
	if (len)
		memcpy(c->buf + c->blen, s, len);
	c->cells[c->ncells].off = c->blen;
	c->cells[c->ncells++].len = len;
	c->blen += len;
}

static void
row_reset(struct wa_csv *c)
{
	c->ncells = 0;
	c->blen = 0;
	c->in_row = 0;
	c->overlong = 0;
	c->row_bytes = 0;
	/* A huge row's buffer is not worth keeping. */
	if (c->bcap > 1 << 20) {
		free(c->buf);
		c->buf = NULL;
		c->bcap = 0;
	}
}

/* Is the n bytes at s valid UTF-8 without NUL? */
static int
utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if (p[i] >= 0x01 && p[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = wa_utf8_seq(p + i, n - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* Is every cell valid UTF-8? (Each by itself: a character cut at the
 * end of one would seem whole with the next one's first bytes.) */
static int
cells_ok(const struct wa_csv *c)
{
	size_t i;

	for (i = 0; i < c->ncells; i++)
		if (!utf8_ok(c->buf + c->cells[i].off, c->cells[i].len))
			return 0;
	return 1;
}

/* The cells joined again, each byte that is not UTF-8 as U+FFFD: the raw
 * field of a bad row, for whoever reads the failures. */
static yajl_val
raw_row(const struct wa_csv *c)
{
	const unsigned char *p;
	char *out, *o;
	size_t i, j, k, n = 0;
	yajl_val v;

	for (i = 0; i < c->ncells; i++)
		n += c->cells[i].len + 1;
	if (!(out = malloc(3 * n + 1)))
		return NULL;
	o = out;
	for (i = 0; i < c->ncells; i++) {
		if (i)
			*o++ = (char)c->delim;
		p = (const unsigned char *)c->buf + c->cells[i].off;
		for (j = 0; j < c->cells[i].len; j += k) {
			k = wa_utf8_seq(p + j, c->cells[i].len - j);
			if (k) {
				memcpy(o, p + j, k);
				o += k;
			} else {
				memcpy(o, "\xEF\xBF\xBD", 3);
				o += 3;
				k = 1;
			}
		}
	}
	v = wa_new_strn(out, (size_t)(o - out));
	free(out);
	return v;
}

static void
bad_row(struct wa_csv *c, const char *code, const char *msg)
{
	struct wa_rec *r = &c->out;

	r->kind = WA_REC_BAD;
	r->errcode = code;
	snprintf(r->errmsg, sizeof r->errmsg, "line %lu: %s", c->row_line, msg);
	r->obj = wa_new_object();
	if (r->obj && !c->overlong && c->ncells)
		wa_set(r->obj, "raw", raw_row(c));
}

/* The row's cells under the header's names: every value a string. */
static int
row_record(struct wa_csv *c)
{
	yajl_val obj = wa_new_object();
	size_t i, n = 0;

	if (!obj)
		return -1;
	if (c->nnamed) {
		obj->u.object.keys = malloc(c->nnamed * sizeof *obj->u.object.keys);
		obj->u.object.values = malloc(c->nnamed * sizeof *obj->u.object.values);
		if (!obj->u.object.keys || !obj->u.object.values)
			goto fail;
	}
	for (i = 0; i < c->ncols; i++) {
		if (!c->cols[i])
			continue;
		obj->u.object.values[n] = wa_new_strn(c->buf + c->cells[i].off,
		    c->cells[i].len);
		if (!obj->u.object.values[n])
			goto fail;
		if (!(obj->u.object.keys[n] = strdup(c->cols[i]))) {
			wa_val_free(obj->u.object.values[n]);
			goto fail;
		}
		obj->u.object.len = ++n;
	}
	c->out.kind = WA_REC_OBJECT;
	c->out.obj = obj;
	return 0;
fail:
	wa_val_free(obj);
	return -1;
}

/* Names the number's column may have, compared without case. */
static const char *const number_names[] = { "phone", "mobile", "טלפון", "נייד",
	"to", "jid", "cell", "whatsapp", "number", "phone number", "mobile phone",
	"cell phone", "tel", "telephone", "טלפון נייד", "מספר טלפון", "מספר", NULL };
/* ... or have in it, when none is named so. */
static const char *const number_parts[] = { "phone", "mobile", "whatsapp",
	"טלפון", "נייד", NULL };

static long
find_column(const struct wa_csv *c)
{
	size_t i, k;

	if (c->field) {
		for (i = 0; i < c->ncols; i++)
			if (c->cols[i] && strcmp(c->cols[i], c->field) == 0)
				return (long)i;
		for (i = 0; i < c->ncols; i++)
			if (c->cols[i] && strcasecmp(c->cols[i], c->field) == 0)
				return (long)i;
		return -1;
	}
	for (i = 0; i < c->ncols; i++)
		for (k = 0; c->cols[i] && number_names[k]; k++)
			if (strcasecmp(c->cols[i], number_names[k]) == 0)
				return (long)i;
	for (i = 0; i < c->ncols; i++)
		for (k = 0; c->cols[i] && number_parts[k]; k++)
			if (strcasestr(c->cols[i], number_parts[k]))
				return (long)i;
	return -1;
}

/* A cell that reads as a phone number: the header row is data. */
static int
looks_like_number(const char *s)
{
	size_t digits = 0;

	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			digits++;
		else if (!strchr("+-(). ", *s))
			return 0;
	}
	return digits >= 7;
}

/* The header's names, blanks trimmed; every later row is matched to it. */
static void
take_header(struct wa_csv *c)
{
	char list[200];
	size_t i, j, n, a, len = 0;
	const char *s, *data = NULL;

	if (c->overlong || c->nomem) {
		refuse(c, "line %lu: the header row is longer than %zu bytes",
		    c->row_line, c->maxrow);
		return;
	}
	if (!cells_ok(c)) {
		refuse(c, "the header row is not UTF-8 text: save the file as "
		    "\"CSV UTF-8\"");
		return;
	}
	if (!(c->cols = calloc(c->ncells ? c->ncells : 1, sizeof *c->cols))) {
		refuse(c, "out of memory");
		return;
	}
	c->ncols = c->ncells;
	for (i = 0; i < c->ncells; i++) {
		s = c->buf + c->cells[i].off;
		n = c->cells[i].len;
		for (a = 0; a < n && (s[a] == ' ' || s[a] == '\t'); a++)
			;
		while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == a)
			continue; /* no name: the column is left out */
		if (!(c->cols[i] = strndup(s + a, n - a))) {
			refuse(c, "out of memory");
			return;
		}
		for (j = 0; j < i; j++)
			if (c->cols[j] && strcmp(c->cols[j], c->cols[i]) == 0)
				break;
		if (j < i) {
			/* A second column of a name: the first one counts. */
			free(c->cols[i]);
			c->cols[i] = NULL;
			continue;
		}
		c->nnamed++;
		if (!data && looks_like_number(c->cols[i]))
			data = c->cols[i];
		if (len < sizeof list)
			len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
			    len ? ", " : "", c->cols[i]);
	}
	c->have_header = 1;
	c->numcol = find_column(c);
	if (c->numcol >= 0)
		return;
	if (c->field)
		refuse(c, "no column \"%s\" in the header row (%s)", c->field, list);
	else if (data)
		refuse(c, "line %lu holds data ('%s'), not the names of the "
		    "columns: add a header row such as name,phone", c->row_line, data);
	else
		refuse(c, "no column for the number in the header row (%s): name "
		    "it phone, mobile, טלפון, נייד or to, or give --field", list);
}

static void
cb_row(int term, void *data)
{
	struct wa_csv *c = data;
	char msg[128];
	size_t i;

	if (c->refused)
		return;
	if (!c->have_header) {
		take_header(c);
		row_reset(c);
		return;
	}
	memset(&c->out, 0, sizeof c->out);
	c->out.file = c->name;
	c->out.line = c->row_line;
	if (c->nomem) {
		refuse(c, "out of memory");
		row_reset(c);
		return;
	}
	if (c->overlong) {
		snprintf(msg, sizeof msg, "a row longer than %zu bytes", c->maxrow);
		bad_row(c, "line_too_long", msg);
	} else {
		/* A row of empty cells only (Excel writes some below a table)
		 * is an empty line. */
		for (i = 0; i < c->ncells && c->cells[i].len == 0; i++)
			;
		if (i == c->ncells) {
			row_reset(c);
			return;
		}
		if (c->ncells != c->ncols) {
			snprintf(msg, sizeof msg, "%zu cell%s, the header has %zu",
			    c->ncells, c->ncells == 1 ? "" : "s", c->ncols);
			bad_row(c, "bad_row", msg);
		} else if (!cells_ok(c))
			bad_row(c, "bad_row", "not UTF-8 text (or a NUL byte): save "
			    "the file as \"CSV UTF-8\"");
		else if (row_record(c) != 0)
			refuse(c, "out of memory");
	}
	if (!c->refused && !c->out.obj)
		refuse(c, "out of memory");
	c->ready = !c->refused;
	row_reset(c);
}

/* --- feeding ----------------------------------------------------------------- */

/* Blank as libcsv sees it before a row begins: spaces, tabs (unless the
 * tab is the delimiter), line ends. */
static int
blank(const struct wa_csv *c, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!(s[i] == ' ' || s[i] == '\r' || s[i] == '\n' ||
		    (s[i] == '\t' && c->delim != '\t')))
			return 0;
	return 1;
}

/* Hand libcsv one segment of the n bytes at s: up to and with the first
 * line end, BLOCK bytes at most. Returns its length. */
static size_t
segment(struct wa_csv *c, const char *s, size_t n)
{
	size_t len = 0, lim = n < BLOCK ? n : BLOCK;
	int end = 0;

	while (len < lim && !end) {
		end = s[len] == '\n' || s[len] == '\r';
		len++;
	}
	if (!c->in_row && !blank(c, s, len)) {
		c->in_row = 1;
		c->row_line = c->lineno + 1;
		c->row_bytes = 0;
	}
	if (c->in_row && (c->row_bytes += len) > c->maxrow)
		c->overlong = 1;
	if (csv_parse(&c->p, s, len, cb_cell, cb_row, c) != len)
		refuse(c, "line %lu: %s", c->lineno + 1,
		    csv_strerror(csv_error(&c->p)));
	/* One cell can only grow as far as a row may, and a little more:
	 * past that it is a quote never closed, swallowing the file. */
	if (csv_get_buffer_size(&c->p) > c->maxrow + BLOCK)
		refuse(c, "line %lu: a cell longer than %zu bytes (a quote that "
		    "is never closed?)", c->row_line, c->maxrow);
	if (end) {
		if (!(c->prev_cr && s[len - 1] == '\n' && len == 1))
			c->lineno++;
		c->prev_cr = s[len - 1] == '\r';
	} else if (len)
		c->prev_cr = 0;
	return len;
}

/* The delimiter of the first line: the most frequent of , ; and tab
 * outside quotes, a comma on a tie or when there is none (one column). */
static unsigned char
sniff_delim(const char *s, size_t n)
{
	size_t i, comma = 0, semi = 0, tab = 0;
	int q = 0;

	for (i = 0; i < n && (q || (s[i] != '\n' && s[i] != '\r')); i++) {
		if (s[i] == '"')
			q = !q;
		else if (!q && s[i] == ',')
			comma++;
		else if (!q && s[i] == ';')
			semi++;
		else if (!q && s[i] == '\t')
			tab++;
	}
	if (semi > comma && semi >= tab)
		return ';';
	if (tab > comma && tab > semi)
		return '\t';
	return ',';
}

/* Hold bytes until the first line that is not blank has ended (or the
 * input has), then tell what kind of text it is and set libcsv up.
 * 1 done (state S_ROWS or S_DONE), 0 more wanted, -1 refused. */
static int
sniff(struct wa_csv *c, const char *p, size_t n, size_t *used)
{
	size_t take, cap, k;
	char *nh;
	int done = n == 0;

	for (take = 0; !done && take < n; take++) {
		if (p[take] == '\n' || p[take] == '\r')
			done = c->seen;
		else if (p[take] != ' ' && p[take] != '\t')
			c->seen = 1;
	}
	if (c->hlen + take > c->maxrow + 3)
		return refuse(c, "line 1: the header row is longer than %zu bytes",
		    c->maxrow);
	if (c->hlen + take + 1 > c->hcap) {
		cap = c->hcap ? 2 * c->hcap : 1024;
		while (cap < c->hlen + take + 1)
			cap *= 2;
		if (!(nh = realloc(c->head, cap)))
			return refuse(c, "out of memory");
		c->head = nh;
		c->hcap = cap;
	}
	if (take)
		memcpy(c->head + c->hlen, p, take);
	c->hlen += take;
	*used = take;
	if (!done)
		return 0;
	if (c->hlen == 0) {
		c->state = S_DONE; /* an empty file: no records */
		return 1;
	}
	/* Excel's "Unicode Text" and "CSV UTF-16": a byte order mark, or
	 * the NUL half of every ASCII character. */
	if ((c->hlen >= 2 && ((unsigned char)c->head[0] == 0xFF &&
	    (unsigned char)c->head[1] == 0xFE)) || (c->hlen >= 2 &&
	    (unsigned char)c->head[0] == 0xFE && (unsigned char)c->head[1] == 0xFF) ||
	    memchr(c->head, '\0', c->hlen))
		return refuse(c, "UTF-16 text, which is not read: save the file "
		    "from Excel as \"CSV UTF-8\"");
	if (c->hlen >= 3 && memcmp(c->head, "\xEF\xBB\xBF", 3) == 0)
		c->hpos = 3;
	/* The delimiter, from the last line held (the first not blank). */
	for (k = c->hlen - 1; k > c->hpos && c->head[k - 1] != '\n' &&
	    c->head[k - 1] != '\r'; k--)
		;
	c->delim = sniff_delim(c->head + k, c->hlen - k);
	if (csv_init(&c->p, 0) != 0)
		return refuse(c, "out of memory");
	c->p_init = 1;
	csv_set_delim(&c->p, c->delim);
	c->state = S_ROWS;
	return 1;
}

/* Feed the n bytes at s until a row is ready (or refused). */
static size_t
feed(struct wa_csv *c, const char *s, size_t n)
{
	size_t k = 0;

	while (k < n && !c->ready && !c->refused)
		k += segment(c, s + k, n - k);
	return k;
}

static int
take(struct wa_csv *c, struct wa_rec *rec)
{
	if (c->refused)
		return -1;
	if (!c->ready)
		return 0;
	*rec = c->out;
	memset(&c->out, 0, sizeof c->out);
	c->ready = 0;
	return 1;
}

int
wa_csv_parse(struct wa_csv *c, const char *p, size_t n, size_t *used,
    struct wa_rec *rec)
{
	size_t k = 0;
	int st;

	*used = 0;
	memset(rec, 0, sizeof *rec);
	if (c->refused)
		return -1;
	if (c->state == S_SNIFF) {
		st = sniff(c, p, n, &k);
		*used = k;
		if (st <= 0)
			return st;
		p += k;
		n -= k;
	}
	/* The held first line goes first. */
	if (c->state == S_ROWS && c->hpos < c->hlen) {
		c->hpos += feed(c, c->head + c->hpos, c->hlen - c->hpos);
		if (c->hpos == c->hlen) {
			free(c->head);
			c->head = NULL;
			c->hlen = c->hcap = c->hpos = 0;
		}
		if ((st = take(c, rec)) != 0 || c->hlen)
			return st;
	}
	if (c->state != S_ROWS)
		return 0;
	if (n == 0 && *used == 0) {
		/* The end: a last row without a line end. */
		if (csv_fini(&c->p, cb_cell, cb_row, c) != 0)
			refuse(c, "line %lu: %s", c->lineno + 1,
			    csv_strerror(csv_error(&c->p)));
		c->state = S_DONE;
		return take(c, rec);
	}
	*used += feed(c, p, n);
	return take(c, rec);
}
