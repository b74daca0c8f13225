/* wa_rec.h: records, the JSON lines every wa program reads and writes.
 *
 * A record is a JSON object held as a yajl tree. Fields keep the order they
 * arrived in; setting a field that exists replaces its value in place, a new
 * field goes at the end, so a program passes through what it does not know. */
#ifndef WA_REC_H
#define WA_REC_H

#include <stddef.h>
#include <stdio.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define WA_MAXLINE_DEFAULT (1024 * 1024)

enum wa_rec_kind {
	WA_REC_OBJECT, /* a JSON object */
	WA_REC_PLAIN,  /* a line that is not JSON: {"to": line}, or {} if blank */
	WA_REC_BAD     /* unusable: not an object, broken, too long; has code */
};

struct wa_rec {
	enum wa_rec_kind kind;
	yajl_val obj;         /* always an object, owned by the record */
	const char *errcode;  /* WA_REC_BAD: "bad_json" or "line_too_long" */
	char errmsg[160];     /* WA_REC_BAD: one line, what was wrong */
	const char *file;     /* where the record came from, for diagnostics */
	unsigned long line;   /* where it starts (a CSV row may take several) */
	/* The field holding the number when the input says so (a CSV file's
	 * number column, named by its header); NULL: the caller's choice.
	 * Owned by the reader, valid until wa_reader_free. */
	const char *field;
};

/* --- reader (rec.c) ---------------------------------------------------- */
struct wa_reader;

/* Read the files named (none, or "-": standard input) in turn. Lines longer
 * than maxline bytes become WA_REC_BAD records; they are skipped, not held.
 * flush, if not NULL, is flushed before every read that may block, so a
 * pipeline downstream sees results while this one waits for input. */
struct wa_reader *wa_reader_new(char *const *files, int nfiles, size_t maxline,
    FILE *flush);
/* How files are read: JSON lines (the default), CSV (record/wa_csv.h), or
 * by name (AUTO: a name ending in .csv is CSV, anything else and standard
 * input JSON lines). field: the CSV column holding the number (--field),
 * NULL to find it by its name. Before the first wa_reader_next. */
enum wa_format { WA_FORMAT_AUTO, WA_FORMAT_JSONL, WA_FORMAT_CSV };
void wa_reader_format(struct wa_reader *r, enum wa_format fmt,
    const char *field);
/* --format's value, "jsonl" or "csv", into *fmt (an enum wa_format): 0,
 * or WA_EXIT_USAGE after saying what is wrong with it. */
int wa_format_opt(const char *s, int *fmt);
/* 1: *rec filled (free with wa_rec_free); 0: end of input; -1: a file could
 * not be opened or read, -2: a file is refused whole, its content unfit
 * (a UTF-16 or headless CSV file: WA_EXIT_DATA); wa_reader_error() says
 * which and why; reading goes on with the next file at the next call. */
int wa_reader_next(struct wa_reader *r, struct wa_rec *rec);
const char *wa_reader_error(const struct wa_reader *r);
void wa_reader_free(struct wa_reader *r);
void wa_rec_free(struct wa_rec *rec);

/* --- values and fields (json.c) ---------------------------------------- */
yajl_val wa_json_parse(const char *text, char *err, size_t errlen);
yajl_val wa_new_object(void);
yajl_val wa_new_array(void);
yajl_val wa_new_str(const char *s);
yajl_val wa_new_strn(const char *s, size_t n);
yajl_val wa_new_int(long long i);
/* The length of the valid UTF-8 character at p, within its n bytes, or 0
 * (NUL, a stray or cut byte, an overlong form, a surrogate, beyond
 * U+10FFFF). */
size_t wa_utf8_seq(const unsigned char *p, size_t n);
/* i in decimal into buf (WA_LL_SIZE bytes), NUL-terminated; returns its
 * length. Several per record: printf's machinery would be most of it. */
#define WA_LL_SIZE 24
size_t wa_fmt_ll(char *buf, long long i);
yajl_val wa_new_bool(int b);
yajl_val wa_new_null(void);
yajl_val wa_val_copy(yajl_val v);
void wa_val_free(yajl_val v);

yajl_val wa_get(yajl_val obj, const char *key);
/* The string value of key, or NULL when absent or not a string. */
const char *wa_get_str(yajl_val obj, const char *key);
/* The integer value of key (a number or a string of digits); 0 if found. */
int wa_get_int(yajl_val obj, const char *key, long long *out);
/* Set key to v, taking ownership of v; replaces in place or appends. */
int wa_set(yajl_val obj, const char *key, yajl_val v);
int wa_set_str(yajl_val obj, const char *key, const char *s);
int wa_set_int(yajl_val obj, const char *key, long long i);
int wa_set_bool(yajl_val obj, const char *key, int b);
int wa_set_null(yajl_val obj, const char *key);
int wa_array_push(yajl_val arr, yajl_val v);
/* Remove key if present. */
void wa_del(yajl_val obj, const char *key);

/* 1 if the record carries "status":"failed": such records pass untouched. */
int wa_is_failed(yajl_val obj);
/* Mark failed: "status":"failed","error":{"code","message"}. */
int wa_set_failed(yajl_val obj, const char *code, const char *message);

/* Emit v through a generator (used for requests as well as records). */
yajl_gen_status wa_gen_val(yajl_gen g, yajl_val v);
/* Emit "key":"val" (inside an open map). */
void wa_gen_kv(yajl_gen g, const char *key, const char *val);
/* A copy of g's output, malloc'd and NUL-terminated; NULL on failure. */
char *wa_gen_take(yajl_gen g, size_t *len);

/* --- writer (json.c) --------------------------------------------------- */
struct wa_writer;
struct wa_writer *wa_writer_new(FILE *out);
/* Write obj as one line. 0, or -1 on an I/O error (errno set). */
int wa_writer_put(struct wa_writer *w, yajl_val obj);
/* A field written with a record without changing its tree: it takes the
 * place of the record's own field of that name (later ones of the name
 * are left out), or follows the record's fields. WA_FIELD_DROP leaves the
 * record's field out. */
enum wa_field_type { WA_FIELD_STR, WA_FIELD_INT, WA_FIELD_NULL, WA_FIELD_VAL,
	WA_FIELD_DROP };
struct wa_field {
	const char *key;
	enum wa_field_type type;
	const char *s;      /* WA_FIELD_STR */
	long long i;        /* WA_FIELD_INT */
	yajl_val v;         /* WA_FIELD_VAL (borrowed) */
};
#define WA_WRITER_MAXFIELDS 16
/* wa_writer_put, with n (at most WA_WRITER_MAXFIELDS) fields. */
int wa_writer_put_fields(struct wa_writer *w, yajl_val obj,
    const struct wa_field *f, int n);
/* Render v as compact JSON into a malloc'd NUL-terminated string. */
char *wa_json_dump(yajl_val v, size_t *len);
/* {"k1":"v1","k2":"v2",...} from n key/value pairs (kv[2i], kv[2i+1]), as
 * a malloc'd NUL-terminated string; NULL when out of memory. */
char *wa_json_strobj(const char *const *kv, int n, size_t *len);
void wa_writer_free(struct wa_writer *w);
struct wa_buf;
/* s as a JSON string (quoted, escaped as the writer does) onto b. */
void wa_json_buf_str(struct wa_buf *b, const char *s);
/* The same, with each byte that is not part of valid UTF-8 written as
 * U+FFFD: for text bound for the database, which takes valid text only. */
void wa_json_buf_text(struct wa_buf *b, const char *s);

#endif
