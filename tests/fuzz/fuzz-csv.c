/* fuzz-csv: CSV files read as records (csv.c on libcsv, through rec.c's
 * reader) over any bytes.
 *
 * The input is a file read as CSV: through the reader with the default
 * row limit, then with a limit of 1 to 128 bytes picked by the input's
 * size, and straight through wa_csv_parse in pieces of 1 to 8 bytes (their
 * sizes taken from the input), which must give the very records the whole
 * file gave: where a read() happens to cut the bytes changes nothing.
 * Checked: each record an object, every value of a good one a string and
 * its number column one of its keys; a bad one "bad_row" or
 * "line_too_long" with a one-line message; line numbers from 1, never
 * going back, never past the file's lines; each record written by
 * wa-normalize reads back the same; a refusal says why. */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "record/wa_csv.h"

static int fd = -1;
static char path[64];

struct summary {
	char *p;
	size_t len, cap;
	unsigned long n;
};

static void
add(struct summary *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = 2 * (s->len + n + 1);
		s->p = realloc(s->p, s->cap);
		CHECK(s->p != NULL);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

/* Check one record and note it in s. */
static void
check_rec(struct wa_rec *rec, unsigned long *last, unsigned long maxl,
    struct summary *s)
{
	char head[64], *j;
	size_t i, n;

	CHECK(rec->obj && YAJL_IS_OBJECT(rec->obj));
	CHECK(rec->line >= 1 && rec->line >= *last && rec->line <= maxl);
	*last = rec->line;
	if (rec->kind == WA_REC_BAD) {
		CHECK(strcmp(rec->errcode, "bad_row") == 0 ||
		    strcmp(rec->errcode, "line_too_long") == 0);
		CHECK(rec->errmsg[0] && !strpbrk(rec->errmsg, "\r\n"));
		CHECK(rec->obj->u.object.len <= 1);
	} else {
		CHECK(rec->kind == WA_REC_OBJECT);
		for (i = 0; i < rec->obj->u.object.len; i++) {
			CHECK(YAJL_IS_STRING(rec->obj->u.object.values[i]));
			CHECK(fuzz_utf8_ok(rec->obj->u.object.values[i]->u.string));
			CHECK(fuzz_utf8_ok(rec->obj->u.object.keys[i]));
		}
	}
	fuzz_check_written(rec->obj);
	n = (size_t)snprintf(head, sizeof head, "%d %lu ", (int)rec->kind, rec->line);
	add(s, head, n);
	j = wa_json_dump(rec->obj, &n);
	CHECK(j != NULL);
	add(s, j, n);
	add(s, "\n", 1);
	free(j);
	s->n++;
}

/* The file through the reader: the records noted in s; 1 when refused. */
static int
read_file(size_t maxrow, unsigned long maxl, struct summary *s)
{
	char *files[] = { path };
	struct wa_reader *r = wa_reader_new(files, 1, maxrow, NULL);
	struct wa_rec rec;
	unsigned long last = 0;
	int st, refused = 0;

	CHECK(r != NULL);
	wa_reader_format(r, WA_FORMAT_CSV, NULL);
	while ((st = wa_reader_next(r, &rec)) != 0) {
		if (st < 0) {
			CHECK(st == -2 && !refused);
			CHECK(strncmp(wa_reader_error(r), path, strlen(path)) == 0);
			refused = 1;
			continue;
		}
		CHECK(!refused);
		if (rec.kind != WA_REC_BAD) {
			CHECK(rec.field != NULL);
			CHECK(wa_get(rec.obj, rec.field) != NULL);
		}
		check_rec(&rec, &last, maxl, s);
		wa_rec_free(&rec);
	}
	wa_reader_free(r);
	return refused;
}

/* The same bytes straight into the parser, in small pieces. */
static int
read_pieces(const uint8_t *data, size_t size, unsigned long maxl,
    struct summary *s)
{
	struct wa_csv *c = wa_csv_new(path, NULL, 0);
	struct wa_rec rec;
	unsigned long last = 0;
	size_t pos = 0, k, used;
	int st;

	CHECK(c != NULL);
	for (;;) {
		k = pos < size ? 1 + data[pos] % 8 : 0;
		if (k > size - pos)
			k = size - pos;
		st = wa_csv_parse(c, (const char *)data + pos, k, &used, &rec);
		CHECK(used <= k);
		pos += used;
		if (st < 0) {
			CHECK(wa_csv_error(c)[0] != '\0');
			wa_csv_free(c);
			return 1;
		}
		if (st > 0) {
			check_rec(&rec, &last, maxl, s);
			wa_rec_free(&rec);
		} else if (k == 0)
			break;
		else
			CHECK(used == k);
	}
	wa_csv_free(c);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct summary whole = { 0 }, small = { 0 }, pieces = { 0 };
	unsigned long maxl = 1;
	size_t i;
	int r1, r2;

	if (fd < 0) {
		fd = memfd_create("fuzz-csv", MFD_CLOEXEC);
		CHECK(fd >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	/* Lines as counted: a CR, an LF or a CR LF ends one. */
	for (i = 0; i < size; i++)
		if (data[i] == '\n' || (data[i] == '\r' &&
		    (i + 1 == size || data[i + 1] != '\n')))
			maxl++;

	r1 = read_file(0, maxl, &whole);
	read_file(1 + size % 128, maxl, &small);
	r2 = read_pieces(data, size, maxl, &pieces);
	/* Cut anywhere, the same records and the same verdict. */
	CHECK(r1 == r2);
	CHECK(whole.n == pieces.n && whole.len == pieces.len);
	CHECK(whole.len == 0 || memcmp(whole.p, pieces.p, whole.len) == 0);
	free(whole.p);
	free(small.p);
	free(pieces.p);
	return 0;
}
