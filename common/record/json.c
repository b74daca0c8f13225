/* json.c: building, editing and writing records as yajl trees.
 *
 * Nodes are yajl_val structs allocated with malloc, the same allocator
 * yajl_tree uses, so a tree mixing parsed and built nodes is freed with
 * yajl_tree_free. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_buf.h"
#include "record/wa_rec.h"

/* Does a string in text hold an escaped NUL? yajl_tree would hand it
 * back as a C string cut at the NUL, and a value stored or sent cut
 * short is worse than one refused. */
static int
has_nul_escape(const char *s)
{
	int in = 0;

	if (!strstr(s, "\\u0000"))
		return 0;
	for (; *s; s++) {
		if (*s == '"')
			in = !in;
		else if (in && *s == '\\') {
			if (strncmp(s + 1, "u0000", 5) == 0)
				return 1;
			if (s[1])
				s++;
		}
	}
	return 0;
}

static yajl_val
node(yajl_type t)
{
	yajl_val v = calloc(1, sizeof *v);

	if (v)
		v->type = t;
	return v;
}

/* --- the usual record, read without yajl ---------------------------------
 * A flat object whose strings hold no escape and well-formed UTF-8 and
 * whose numbers are plain integers is most of what the programs read. It
 * is built here into the very tree yajl_tree_parse would build; anything
 * else (or anything doubtful) returns NULL and goes to yajl, which then
 * decides, errors included. */

static const char *
fl_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

size_t
wa_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len, k;

	len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 :
	    (c & 0xF8) == 0xF0 ? 4 : 0;
	if (c == 0 || len > n || (len > 1 && (c == 0xC0 || c == 0xC1 || c > 0xF4)))
		return 0;
	for (k = 1; k < len; k++)
		if ((p[k] & 0xC0) != 0x80)
			return 0;
	/* overlong three-byte forms and surrogates; beyond U+10FFFF */
	if (len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)))
		return 0;
	if (len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)))
		return 0;
	return len;
}

/* A string without escapes: a malloc'd copy, its end in *end. */
static char *
fl_str(const char *p, const char **end)
{
	const unsigned char *q = (const unsigned char *)p + 1;
	size_t n;
	char *s;

	if (*p != '"')
		return NULL;
	while (*q != '"') {
		if (*q >= 0x20 && *q < 0x80 && *q != '\\')
			q++;
		else if (*q >= 0x80 && (n = wa_utf8_seq(q, 4)) != 0)
			q += n;
		else
			return NULL;
	}
	n = (size_t)((const char *)q - p - 1);
	if (!(s = malloc(n + 1)))
		return NULL;
	memcpy(s, p + 1, n);
	s[n] = '\0';
	*end = (const char *)q + 1;
	return s;
}

/* A plain integer of up to 18 digits, which neither strtoll nor strtod
 * can get wrong. */
static yajl_val
fl_int(const char *p, const char **end)
{
	const char *q = p + (*p == '-');
	size_t n = 0;
	yajl_val v;

	while (q[n] >= '0' && q[n] <= '9')
		n++;
	if (n == 0 || n > 18 || (q[0] == '0' && n > 1) || q[n] == '.' ||
	    q[n] == 'e' || q[n] == 'E' || !(v = node(yajl_t_number)))
		return NULL;
	n += (size_t)(q - p);
	if (!(v->u.number.r = malloc(n + 1))) {
		free(v);
		return NULL;
	}
	memcpy(v->u.number.r, p, n);
	v->u.number.r[n] = '\0';
	v->u.number.i = strtoll(v->u.number.r, NULL, 10);
	v->u.number.d = (double)v->u.number.i;
	v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
	*end = p + n;
	return v;
}

static yajl_val
fl_value(const char *p, const char **end)
{
	yajl_val v = NULL;
	char *s;

	if (*p == '"') {
		if ((s = fl_str(p, end)) && (v = node(yajl_t_string)))
			v->u.string = s;
		else
			free(s);
	} else if (!strncmp(p, "true", 4) && (v = node(yajl_t_true)))
		*end = p + 4;
	else if (!strncmp(p, "false", 5) && (v = node(yajl_t_false)))
		*end = p + 5;
	else if (!strncmp(p, "null", 4) && (v = node(yajl_t_null)))
		*end = p + 4;
	else if (*p == '-' || (*p >= '0' && *p <= '9'))
		v = fl_int(p, end);
	return v;
}

#define FL_MAX 64 /* fields; a bigger record goes to yajl */

static yajl_val
flat_parse(const char *text)
{
	const char *keys[FL_MAX], *p = fl_ws(text);
	yajl_val vals[FL_MAX], obj = NULL;
	size_t n = 0, i;
	char *k;

	if (*p++ != '{')
		return NULL;
	p = fl_ws(p);
	if (*p != '}')
		for (;;) {
			if (n == FL_MAX || !(k = fl_str(p, &p)))
				goto out;
			keys[n] = k;
			p = fl_ws(p);
			if (*p++ != ':' || !(vals[n] = fl_value(fl_ws(p), &p))) {
				free(k);
				goto out;
			}
			n++;
			p = fl_ws(p);
			if (*p == '}')
				break;
			if (*p++ != ',')
				goto out;
			p = fl_ws(p);
		}
	if (*fl_ws(p + 1) != '\0' || !(obj = node(yajl_t_object)))
		goto out;
	if (n) {
		obj->u.object.keys = malloc(n * sizeof *keys);
		obj->u.object.values = malloc(n * sizeof *vals);
		if (!obj->u.object.keys || !obj->u.object.values) {
			free(obj->u.object.keys);
			free(obj->u.object.values);
			free(obj);
			obj = NULL;
			goto out;
		}
		memcpy(obj->u.object.keys, keys, n * sizeof *keys);
		memcpy(obj->u.object.values, vals, n * sizeof *vals);
		obj->u.object.len = n;
	}
	return obj;
out:
	for (i = 0; i < n; i++) {
		free((char *)keys[i]);
		yajl_tree_free(vals[i]);
	}
	return NULL;
}

yajl_val
wa_json_parse(const char *text, char *err, size_t errlen)
{
	yajl_val v;

	if (err && errlen)
		err[0] = '\0';
	if ((v = flat_parse(text)) != NULL)
		return v;
	if (has_nul_escape(text)) {
		if (err && errlen)
			snprintf(err, errlen, "a string holds a NUL character (\\u0000)");
		return NULL;
	}
	v = yajl_tree_parse(text, err, errlen);
	if (err && errlen)
		err[strcspn(err, "\r\n")] = '\0';
	return v;
}

yajl_val wa_new_object(void) { return node(yajl_t_object); }
yajl_val wa_new_array(void) { return node(yajl_t_array); }
yajl_val wa_new_bool(int b) { return node(b ? yajl_t_true : yajl_t_false); }
yajl_val wa_new_null(void) { return node(yajl_t_null); }

yajl_val
wa_new_strn(const char *s, size_t n)
{
	yajl_val v = node(yajl_t_string);

	if (!v)
		return NULL;
	v->u.string = malloc(n + 1);
	if (!v->u.string) {
		free(v);
		return NULL;
	}
	memcpy(v->u.string, s, n);
	v->u.string[n] = '\0';
	return v;
}

yajl_val
wa_new_str(const char *s)
{
	return s ? wa_new_strn(s, strlen(s)) : wa_new_null();
}

size_t
wa_fmt_ll(char *buf, long long i)
{
	char tmp[WA_LL_SIZE], *p = tmp + sizeof tmp;
	unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
	size_t n;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (i < 0)
		*--p = '-';
	n = (size_t)(tmp + sizeof tmp - p);
	memcpy(buf, p, n);
	buf[n] = '\0';
	return n;
}

yajl_val
wa_new_int(long long i)
{
	char buf[WA_LL_SIZE];
	yajl_val v = node(yajl_t_number);

	if (!v)
		return NULL;
	v->u.number.r = strndup(buf, wa_fmt_ll(buf, i));
	if (!v->u.number.r) {
		free(v);
		return NULL;
	}
	v->u.number.i = i;
	v->u.number.d = (double)i;
	v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
	return v;
}

void
wa_val_free(yajl_val v)
{
	if (v)
		yajl_tree_free(v);
}

yajl_val
wa_val_copy(yajl_val v)
{
	yajl_val c;
	size_t i;

	if (!v)
		return NULL;
	switch (v->type) {
	case yajl_t_string:
		return wa_new_str(v->u.string);
	case yajl_t_number:
		c = node(yajl_t_number);
		if (!c)
			return NULL;
		c->u.number = v->u.number;
		c->u.number.r = strdup(v->u.number.r ? v->u.number.r : "0");
		if (!c->u.number.r) {
			free(c);
			return NULL;
		}
		return c;
	case yajl_t_object:
		c = wa_new_object();
		for (i = 0; c && i < v->u.object.len; i++)
			if (wa_set(c, v->u.object.keys[i],
			    wa_val_copy(v->u.object.values[i])) != 0) {
				wa_val_free(c);
				return NULL;
			}
		return c;
	case yajl_t_array:
		c = wa_new_array();
		for (i = 0; c && i < v->u.array.len; i++)
			if (wa_array_push(c, wa_val_copy(v->u.array.values[i]))) {
				wa_val_free(c);
				return NULL;
			}
		return c;
	default:
		return node(v->type);
	}
}

yajl_val
wa_get(yajl_val obj, const char *key)
{
	size_t i;

	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

const char *
wa_get_str(yajl_val obj, const char *key)
{
	return YAJL_GET_STRING(wa_get(obj, key));
}

int
wa_get_int(yajl_val obj, const char *key, long long *out)
{
	yajl_val v = wa_get(obj, key);
	char *end;

	if (YAJL_IS_INTEGER(v)) {
		*out = v->u.number.i;
		return 0;
	}
	if (YAJL_IS_STRING(v) && v->u.string[0]) {
		errno = 0;
		*out = strtoll(v->u.string, &end, 10);
		if (!errno && !*end)
			return 0;
	}
	return -1;
}

/* Room for element n of the array p: a result adds several fields to a
 * record whose arrays yajl sized exactly, so grow with some to spare, and
 * not at all while the allocation has room. */
static void *
grow(void *p, size_t n, size_t size)
{
	if (p && malloc_usable_size(p) >= (n + 1) * size)
		return p;
	return realloc(p, (n + 8) * size);
}

int
wa_set(yajl_val obj, const char *key, yajl_val v)
{
	size_t i, n;
	const char **keys;
	yajl_val *vals;
	char *k;

	if (!v)
		return -1;
	if (!YAJL_IS_OBJECT(obj)) {
		wa_val_free(v);
		return -1;
	}
	n = obj->u.object.len;
	for (i = 0; i < n; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0) {
			wa_val_free(obj->u.object.values[i]);
			obj->u.object.values[i] = v;
			return 0;
		}
	k = strdup(key);
	keys = grow(obj->u.object.keys, n, sizeof *keys);
	if (keys)
		obj->u.object.keys = keys;
	vals = keys ? grow(obj->u.object.values, n, sizeof *vals) : NULL;
	if (vals)
		obj->u.object.values = vals;
	if (!k || !keys || !vals) {
		free(k);
		wa_val_free(v);
		return -1;
	}
	keys[n] = k;
	vals[n] = v;
	obj->u.object.len = n + 1;
	return 0;
}

void
wa_del(yajl_val obj, const char *key)
{
	size_t i, n;

	if (!YAJL_IS_OBJECT(obj))
		return;
	n = obj->u.object.len;
	for (i = 0; i < n; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			break;
	if (i == n)
		return;
	free((char *)obj->u.object.keys[i]);
	wa_val_free(obj->u.object.values[i]);
	memmove(&obj->u.object.keys[i], &obj->u.object.keys[i + 1],
	    (n - i - 1) * sizeof *obj->u.object.keys);
	memmove(&obj->u.object.values[i], &obj->u.object.values[i + 1],
	    (n - i - 1) * sizeof *obj->u.object.values);
	obj->u.object.len = n - 1;
}

int wa_set_str(yajl_val o, const char *k, const char *s) { return wa_set(o, k, wa_new_str(s)); }
int wa_set_int(yajl_val o, const char *k, long long i) { return wa_set(o, k, wa_new_int(i)); }
int wa_set_bool(yajl_val o, const char *k, int b) { return wa_set(o, k, wa_new_bool(b)); }
int wa_set_null(yajl_val o, const char *k) { return wa_set(o, k, wa_new_null()); }

int
wa_array_push(yajl_val arr, yajl_val v)
{
	yajl_val *vals;
	size_t n;

	if (!v || !YAJL_IS_ARRAY(arr)) {
		wa_val_free(v);
		return -1;
	}
	n = arr->u.array.len;
	vals = realloc(arr->u.array.values, (n + 1) * sizeof *vals);
	if (!vals) {
		wa_val_free(v);
		return -1;
	}
	vals[n] = v;
	arr->u.array.values = vals;
	arr->u.array.len = n + 1;
	return 0;
}

int
wa_is_failed(yajl_val obj)
{
	const char *s = wa_get_str(obj, "status");

	return s && strcmp(s, "failed") == 0;
}

int
wa_set_failed(yajl_val obj, const char *code, const char *message)
{
	yajl_val e = wa_new_object();

	if (!e || wa_set_str(e, "code", code) || wa_set_str(e, "message", message)) {
		wa_val_free(e);
		return -1;
	}
	if (wa_set_str(obj, "status", "failed"))
		return wa_val_free(e), -1;
	return wa_set(obj, "error", e);
}

yajl_gen_status
wa_gen_val(yajl_gen g, yajl_val v)
{
	yajl_gen_status st = yajl_gen_status_ok;
	size_t i;

	switch (v ? v->type : yajl_t_null) {
	case yajl_t_string:
		return yajl_gen_string(g, (const unsigned char *)v->u.string,
		    strlen(v->u.string));
	case yajl_t_number:
		return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	case yajl_t_object:
		st = yajl_gen_map_open(g);
		for (i = 0; st == yajl_gen_status_ok && i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];

			st = yajl_gen_string(g, (const unsigned char *)k, strlen(k));
			if (st == yajl_gen_status_ok)
				st = wa_gen_val(g, v->u.object.values[i]);
		}
		return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;
	case yajl_t_array:
		st = yajl_gen_array_open(g);
		for (i = 0; st == yajl_gen_status_ok && i < v->u.array.len; i++)
			st = wa_gen_val(g, v->u.array.values[i]);
		return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;
	case yajl_t_true:
		return yajl_gen_bool(g, 1);
	case yajl_t_false:
		return yajl_gen_bool(g, 0);
	default:
		return yajl_gen_null(g);
	}
}

void
wa_gen_kv(yajl_gen g, const char *key, const char *val)
{
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_string(g, (const unsigned char *)val, strlen(val));
}

char *
wa_gen_take(yajl_gen g, size_t *len)
{
	const unsigned char *buf;
	char *out;

	if (yajl_gen_get_buf(g, &buf, len) != yajl_gen_status_ok)
		return NULL;
	out = malloc(*len + 1);
	if (!out)
		return NULL;
	memcpy(out, buf, *len);
	out[*len] = '\0';
	return out;
}

/* --- writing ----------------------------------------------------------- */

/* Records are written by hand rather than through yajl_gen, byte for byte
 * what yajl_gen writes (the same escapes, "\u001F" in capitals, "/" as it
 * is): yajl_gen costs a buffer call per token and a switch per byte, the
 * most of what wa-send spends on a result after libcurl. */
#define jbuf wa_buf
#define jb_room wa_buf_room

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (jb_room(b, n) == 0) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

/* Where the run of characters written as they are ends. */
static const unsigned char *
plain_end(const unsigned char *p)
{
	while (*p >= 0x20 && *p != '"' && *p != '\\')
		p++;
	return p;
}

static void
jb_str(struct jbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *run;
	char esc[7];
	size_t n;

	/* Most strings need no escape: one reservation, one copy. */
	p = plain_end(run = p);
	if (!*p) {
		n = (size_t)(p - run);
		if (jb_room(b, n + 2) == 0) {
			b->p[b->len] = '"';
			memcpy(b->p + b->len + 1, run, n);
			b->p[b->len + n + 1] = '"';
			b->len += n + 2;
		}
		return;
	}
	jb_put(b, "\"", 1);
	for (;;) {
		/* the plain run, copied at once, then what ends it */
		jb_put(b, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		n = 2;
		esc[0] = '\\';
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			n = 6;
		}
		jb_put(b, esc, n);
		p = plain_end(run = p + 1);
	}
	jb_put(b, "\"", 1);
}

/* ,"key": (the comma unless first) */
static void
jb_key(struct jbuf *b, const char *k, int comma)
{
	if (comma)
		jb_put(b, ",", 1);
	jb_str(b, k);
	jb_put(b, ":", 1);
}

static void
jb_val(struct jbuf *b, yajl_val v)
{
	size_t i;

	switch (v ? v->type : yajl_t_null) {
	case yajl_t_string:
		jb_str(b, v->u.string);
		break;
	case yajl_t_number:
		jb_put(b, v->u.number.r, strlen(v->u.number.r));
		break;
	case yajl_t_object:
		jb_put(b, "{", 1);
		for (i = 0; i < v->u.object.len; i++) {
			jb_key(b, v->u.object.keys[i], i > 0);
			jb_val(b, v->u.object.values[i]);
		}
		jb_put(b, "}", 1);
		break;
	case yajl_t_array:
		jb_put(b, "[", 1);
		for (i = 0; i < v->u.array.len; i++) {
			if (i)
				jb_put(b, ",", 1);
			jb_val(b, v->u.array.values[i]);
		}
		jb_put(b, "]", 1);
		break;
	case yajl_t_true:
		jb_put(b, "true", 4);
		break;
	case yajl_t_false:
		jb_put(b, "false", 5);
		break;
	default:
		jb_put(b, "null", 4);
	}
}

struct wa_writer {
	FILE *out;
	struct jbuf b;  /* kept between records */
};

struct wa_writer *
wa_writer_new(FILE *out)
{
	struct wa_writer *w = calloc(1, sizeof *w);

	if (w)
		w->out = out;
	return w;
}

static void
jb_field(struct jbuf *b, const struct wa_field *f, int comma)
{
	char num[WA_LL_SIZE];

	jb_key(b, f->key, comma);
	switch (f->type) {
	case WA_FIELD_STR:
		jb_str(b, f->s);
		break;
	case WA_FIELD_INT:
		jb_put(b, num, wa_fmt_ll(num, f->i));
		break;
	case WA_FIELD_VAL:
		jb_val(b, f->v);
		break;
	default:
		jb_put(b, "null", 4);
	}
}

/* obj with fields in place of its own; see wa_writer_put_fields. */
static void
jb_obj_fields(struct jbuf *b, yajl_val obj, const struct wa_field *f, int n)
{
	char done[WA_WRITER_MAXFIELDS] = { 0 };
	const char *k;
	size_t i;
	int j, any = 0;

	jb_put(b, "{", 1);
	for (i = 0; YAJL_IS_OBJECT(obj) && i < obj->u.object.len; i++) {
		k = obj->u.object.keys[i];
		for (j = 0; j < n && strcmp(k, f[j].key) != 0; j++)
			;
		if (j < n) {
			if (!done[j] && f[j].type != WA_FIELD_DROP)
				jb_field(b, &f[j], any++);
			done[j] = 1;
			continue;
		}
		jb_key(b, k, any++);
		jb_val(b, obj->u.object.values[i]);
	}
	for (j = 0; j < n; j++)
		if (!done[j] && f[j].type != WA_FIELD_DROP)
			jb_field(b, &f[j], any++);
	jb_put(b, "}", 1);
}

/* The record goes out with one fwrite. */
int
wa_writer_put(struct wa_writer *w, yajl_val obj)
{
	return wa_writer_put_fields(w, obj, NULL, 0);
}

int
wa_writer_put_fields(struct wa_writer *w, yajl_val obj,
    const struct wa_field *f, int n)
{
	w->b.len = 0;
	w->b.oom = 0;
	if (n > WA_WRITER_MAXFIELDS) {
		errno = EINVAL;
		return -1;
	}
	if (n > 0)
		jb_obj_fields(&w->b, obj, f, n);
	else
		jb_val(&w->b, obj);
	jb_put(&w->b, "\n", 1);
	if (w->b.oom) {
		errno = ENOMEM;
		return -1;
	}
	if (fwrite(w->b.p, 1, w->b.len, w->out) != w->b.len || ferror(w->out))
		return -1;
	/* A huge record's buffer is not worth keeping. */
	if (w->b.cap > 1 << 20) {
		free(w->b.p);
		memset(&w->b, 0, sizeof w->b);
	}
	return 0;
}

void
wa_writer_free(struct wa_writer *w)
{
	if (!w)
		return;
	free(w->b.p);
	free(w);
}

char *
wa_json_dump(yajl_val v, size_t *len)
{
	struct wa_buf b = { NULL, 0, 0, 0 };

	jb_val(&b, v);
	jb_put(&b, "", 1);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len - 1;
	return b.p;
}

char *
wa_json_strobj(const char *const *kv, int n, size_t *len)
{
	struct wa_buf b = { NULL, 0, 0, 0 };
	int i;

	jb_put(&b, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			jb_put(&b, ",", 1);
		jb_str(&b, kv[2 * i]);
		jb_put(&b, ":", 1);
		jb_str(&b, kv[2 * i + 1]);
	}
	jb_put(&b, "}", 2); /* with the NUL */
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len - 1;
	return b.p;
}

void
wa_json_buf_str(struct wa_buf *b, const char *s)
{
	jb_str(b, s);
	wa_buf_add(b, "", 0);
}

void
wa_json_buf_text(struct wa_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	struct wa_buf fixed = { NULL, 0, 0, 0 };
	size_t n;

	for (; *p; p += n)
		if ((n = wa_utf8_seq(p, 4)) == 0)
			break;
	if (!*p) {
		wa_json_buf_str(b, s);
		return;
	}
	/* Not UTF-8 (a message cut mid-character): U+FFFD for each stray
	 * byte, as the database takes valid text only. */
	for (p = (const unsigned char *)s; *p; p += n) {
		n = wa_utf8_seq(p, 4);
		if (n)
			wa_buf_add(&fixed, (const char *)p, n);
		else {
			wa_buf_add(&fixed, "\xEF\xBF\xBD", 3);
			n = 1;
		}
	}
	if (fixed.oom)
		b->oom = 1;
	else
		wa_json_buf_str(b, fixed.p);
	wa_buf_free(&fixed);
}
