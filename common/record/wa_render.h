/* wa_render.h: {{field}} placeholders, the one renderer every message
 * goes through (wa-send, wa-broadcast run, export's records, preview).
 *
 * A placeholder is "{{", a name, an optional "|fallback", "}}", with
 * spaces allowed inside the braces: {{name}}, {{ order }}, {{name|לקוח יקר}}.
 * A name starts with a letter or '_' and goes on with letters, digits,
 * '_', '.' and '-'. "{{" followed by anything else that is not a name
 * ({{1}}, {{ 2 }}) is text and stays as it is; a placeholder begun but not
 * finished ({{name, {{name x}}, {{}}, {{|x}}) is broken, and a text with
 * one is refused before anything is sent.
 *
 * The value is the record's field of that name, a string or a number;
 * the fallback stands in when the field is absent, null, another kind of
 * value, or the empty string. Without a fallback an absent field fails
 * the message (missing_field): braces never reach a customer. Values are
 * inserted as they are, never expanded again. */
#ifndef WA_RENDER_H
#define WA_RENDER_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

enum wa_render_rc {
	WA_RENDER_OK = 0,
	WA_RENDER_BROKEN = -1,  /* a broken placeholder; the text is unusable */
	WA_RENDER_MISSING = -2, /* a field without a fallback is missing */
	WA_RENDER_NOMEM = -3
};

struct wa_render_err {
	char field[64];   /* WA_RENDER_MISSING: the field's name (cut) */
	char msg[200];    /* one line: what and where */
};

/* 1 when s holds "{{" at all: a text without it is used as it is. */
int wa_render_any(const char *s);

/* WA_RENDER_OK when every placeholder in s is well formed, else
 * WA_RENDER_BROKEN with e->msg naming it and its byte offset. */
int wa_render_check(const char *s, struct wa_render_err *e);

/* s with every placeholder replaced from rec (an object; NULL: none has a
 * value), into *out (malloc'd, NUL-terminated). */
int wa_render(const char *s, yajl_val rec, char **out, struct wa_render_err *e);

/* A copy of v (*out) with every string in it rendered (a template's
 * components, a media object); the first failure is returned. */
int wa_render_tree(yajl_val v, yajl_val rec, yajl_val *out,
    struct wa_render_err *e);
/* wa_render_check over every string in v. */
int wa_render_check_tree(yajl_val v, struct wa_render_err *e);
/* 1 when some string in v holds a placeholder: what it renders to
 * depends on the record. */
int wa_render_tree_any(yajl_val v);

#endif
