/* fuzz-reader: the record reader (rec.c) over any bytes.
 *
 * The input is the contents of a file, read twice: once as it is, with the
 * default line limit, then as three files (it, one that does not exist, it
 * again) with a limit of 1 to 128 bytes picked by the input's size, so the
 * skipping of overlong lines and a failed open are reached too. Checked:
 * one record per line, numbered in order, overlong exactly when the line
 * is; each record an object, at most 64 deep, that wa-normalize writes
 * (a bad one with its error added) as a line of JSON that reads back the
 * same. And the input as one text: whatever wa_json_parse reads without
 * yajl (json.c's flat records) is the tree yajl_tree_parse builds. */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define MAXDEPTH 64 /* rec.c refuses deeper JSON */

static int fd = -1;
static char path[64];

/* Read files to the end; check and count the records. lens, if not NULL,
 * holds each line's length in bytes, to check the limit against. nlines:
 * the lines in each file. */
static unsigned long
read_all(char *const *files, int nfiles, size_t maxline, const size_t *lens,
    unsigned long nlines, int *nerr)
{
	struct wa_reader *r = wa_reader_new(files, nfiles, maxline, NULL);
	struct wa_rec rec;
	unsigned long n = 0, expect = 1;
	int st;

	CHECK(r != NULL);
	while ((st = wa_reader_next(r, &rec)) != 0) {
		if (st < 0) {
			/* a file that cannot be opened; the next one starts at 1 */
			CHECK(strstr(wa_reader_error(r), "No such file") != NULL);
			CHECK(expect == nlines + 1);
			expect = 1;
			(*nerr)++;
			continue;
		}
		CHECK(rec.line == expect);
		expect++;
		n++;
		CHECK(YAJL_IS_OBJECT(rec.obj));
		CHECK(fuzz_depth(rec.obj, MAXDEPTH) <= MAXDEPTH);
		if (lens)
			CHECK((rec.kind == WA_REC_BAD &&
			    strcmp(rec.errcode, "line_too_long") == 0) ==
			    (lens[rec.line - 1] > maxline));
		if (rec.kind == WA_REC_BAD) {
			CHECK(rec.errcode != NULL);
			CHECK(strcmp(rec.errcode, "bad_json") == 0 ||
			    strcmp(rec.errcode, "line_too_long") == 0);
			CHECK(rec.errmsg[0] && !strpbrk(rec.errmsg, "\r\n"));
			CHECK(wa_set_failed(rec.obj, rec.errcode, rec.errmsg) == 0);
		} else if (rec.kind == WA_REC_PLAIN) {
			CHECK(rec.obj->u.object.len <= 1);
		}
		/* The second pass adds only overlong lines to what the
		 * first one checked. */
		if (!lens || rec.kind == WA_REC_BAD)
			fuzz_check_written(rec.obj);
		wa_rec_free(&rec);
	}
	wa_reader_free(r);
	return n;
}

static int
same_tree(yajl_val a, yajl_val b)
{
	size_t i, n;

	if (!a || !b || a->type != b->type)
		return 0;
	switch (a->type) {
	case yajl_t_string:
		return strcmp(a->u.string, b->u.string) == 0;
	case yajl_t_number:
		return strcmp(a->u.number.r, b->u.number.r) == 0 &&
		    a->u.number.flags == b->u.number.flags &&
		    (!(a->u.number.flags & YAJL_NUMBER_INT_VALID) ||
		    a->u.number.i == b->u.number.i) &&
		    (!(a->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ||
		    a->u.number.d == b->u.number.d);
	case yajl_t_object:
		n = a->u.object.len;
		if (n != b->u.object.len)
			return 0;
		for (i = 0; i < n; i++)
			if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0 ||
			    !same_tree(a->u.object.values[i], b->u.object.values[i]))
				return 0;
		return 1;
	case yajl_t_array:
		n = a->u.array.len;
		if (n != b->u.array.len)
			return 0;
		for (i = 0; i < n; i++)
			if (!same_tree(a->u.array.values[i], b->u.array.values[i]))
				return 0;
		return 1;
	default:
		return 1;
	}
}

static void
check_parse(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	yajl_val a, b;

	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	a = wa_json_parse(text, NULL, 0);
	if (a) {
		b = yajl_tree_parse(text, NULL, 0);
		CHECK(same_tree(a, b));
		yajl_tree_free(b);
		yajl_tree_free(a);
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *files[] = { path, "/nonexistent/fuzz-reader", path };
	unsigned long nlines = 0, i, start = 0;
	size_t *lens;
	int nerr = 0;

	/* One memfd for the whole run; the reader opens it by name. */
	if (fd < 0) {
		fd = memfd_create("fuzz-reader", MFD_CLOEXEC);
		CHECK(fd >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

	/* Every line, the last one too without its newline, is a record. */
	lens = malloc((size + 1) * sizeof *lens);
	CHECK(lens != NULL);
	for (i = 0; i < size; i++)
		if (data[i] == '\n') {
			lens[nlines++] = i - start;
			start = i + 1;
		}
	if (start < size)
		lens[nlines++] = size - start;

	CHECK(read_all(files, 1, 0, NULL, nlines, &nerr) == nlines);
	CHECK(nerr == 0);
	CHECK(read_all(files, 3, 1 + size % 128, lens, nlines, &nerr) == 2 * nlines);
	CHECK(nerr == 1);
	free(lens);
	check_parse(data, size);
	return 0;
}
