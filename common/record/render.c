/* render.c: {{field}} placeholders (see wa_render.h). One scanner finds
 * them, for checking and for rendering alike, so what is refused before a
 * broadcast is stored and what is rendered when it is sent cannot differ. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_utf8.h"
#include "record/wa_rec.h"
#include "record/wa_render.h"

enum ph_kind { PH_NONE, PH_FIELD, PH_BROKEN };

/* One placeholder, from at to end. */
struct ph {
	enum ph_kind kind;
	const char *at, *end;
	const char *name, *fb;   /* fb NULL: no fallback */
	size_t nlen, fblen;
};

static int
name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

static const char *
skip_sp(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* Read the placeholder that may start at q ("{{"). PH_NONE: "{{" is text
 * here (not followed by a name); the scan goes on one byte later. */
static void
ph_read(const char *q, struct ph *ph)
{
	const char *r = skip_sp(q + 2), *f, *open;

	memset(ph, 0, sizeof *ph);
	ph->at = q;
	if (!name_char(*r, 1)) {
		/* {{}}, {{ }}, {{|x}}: a placeholder without its name */
		ph->kind = (r[0] == '}' && r[1] == '}') || r[0] == '|' ?
		    PH_BROKEN : PH_NONE;
		return;
	}
	ph->name = r;
	while (name_char(*r, 0))
		r++;
	ph->nlen = (size_t)(r - ph->name);
	r = skip_sp(r);
	ph->kind = PH_BROKEN;
	if (*r == '|') {
		f = strstr(r + 1, "}}");
		open = strstr(r + 1, "{{");
		if (!f || (open && open < f))
			return;
		ph->fb = skip_sp(r + 1);
		ph->fblen = (size_t)(f - ph->fb);
		while (ph->fblen > 0 && ph->fb[ph->fblen - 1] == ' ')
			ph->fblen--;
		ph->end = f + 2;
	} else if (r[0] == '}' && r[1] == '}')
		ph->end = r + 2;
	else
		return;
	ph->kind = PH_FIELD;
}

/* The next placeholder (field or broken) at or after p, or NULL. */
static const char *
ph_next(const char *p, struct ph *ph)
{
	const char *q;

	while ((q = strstr(p, "{{")) != NULL) {
		ph_read(q, ph);
		if (ph->kind != PH_NONE)
			return q;
		p = q + 1;
	}
	return NULL;
}

static void
broken(const struct ph *ph, const char *s, struct wa_render_err *e)
{
	size_t n = wa_utf8_fit(ph->at, 24);

	snprintf(e->msg, sizeof e->msg, "broken placeholder at byte %zu: '%.*s%s' "
	    "(want {{field}} or {{field|fallback}})", (size_t)(ph->at - s),
	    (int)n, ph->at, ph->at[n] ? "…" : "");
}

int
wa_render_any(const char *s)
{
	return s && strstr(s, "{{") != NULL;
}

int
wa_render_check(const char *s, struct wa_render_err *e)
{
	struct ph ph;
	const char *p = s;

	while (p && ph_next(p, &ph)) {
		if (ph.kind == PH_BROKEN) {
			broken(&ph, s, e);
			return WA_RENDER_BROKEN;
		}
		p = ph.end;
	}
	return WA_RENDER_OK;
}

/* The record's value for the placeholder: a string or a number's text;
 * NULL when it has none usable. */
static const char *
value(yajl_val rec, const struct ph *ph)
{
	char key[128];
	yajl_val v;

	if (!rec || ph->nlen >= sizeof key)
		return NULL;
	memcpy(key, ph->name, ph->nlen);
	key[ph->nlen] = '\0';
	v = wa_get(rec, key);
	if (YAJL_IS_STRING(v))
		return v->u.string;
	if (YAJL_IS_NUMBER(v))
		return v->u.number.r;
	return NULL;
}

struct out {
	char *p;
	size_t len, cap;
};

static int
put(struct out *o, const char *s, size_t n)
{
	char *np;

	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		np = realloc(o->p, o->cap);
		if (!np)
			return -1;
		o->p = np;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return 0;
}

int
wa_render(const char *s, yajl_val rec, char **out, struct wa_render_err *e)
{
	struct out o = { NULL, 0, strlen(s) + 64 };
	struct ph ph;
	const char *p = s, *v;
	int rc = WA_RENDER_OK;

	*out = NULL;
	o.p = malloc(o.cap);
	if (!o.p)
		return WA_RENDER_NOMEM;
	o.p[0] = '\0';
	while (rc == WA_RENDER_OK && ph_next(p, &ph)) {
		if (ph.kind == PH_BROKEN) {
			broken(&ph, s, e);
			rc = WA_RENDER_BROKEN;
			break;
		}
		v = value(rec, &ph);
		if (v && !*v && ph.fb)
			v = NULL; /* an empty value takes the fallback */
		if (!v && !ph.fb) {
			snprintf(e->field, sizeof e->field, "%.*s",
			    (int)(ph.nlen < 60 ? ph.nlen : 60), ph.name);
			snprintf(e->msg, sizeof e->msg, "{{%s}}: the record has no "
			    "such field (a string or number) and the placeholder "
			    "has no fallback", e->field);
			rc = WA_RENDER_MISSING;
			break;
		}
		if (put(&o, p, (size_t)(ph.at - p)) != 0 ||
		    (v ? put(&o, v, strlen(v)) : put(&o, ph.fb, ph.fblen)) != 0)
			rc = WA_RENDER_NOMEM;
		p = ph.end;
	}
	if (rc == WA_RENDER_OK && put(&o, p, strlen(p)) != 0)
		rc = WA_RENDER_NOMEM;
	/* A broken placeholder after a missing field: the text is the fault. */
	if (rc == WA_RENDER_MISSING && wa_render_check(ph.end, e) == WA_RENDER_BROKEN)
		rc = wa_render_check(s, e);
	if (rc != WA_RENDER_OK) {
		free(o.p);
		if (rc == WA_RENDER_NOMEM)
			snprintf(e->msg, sizeof e->msg, "out of memory");
		return rc;
	}
	*out = o.p;
	return rc;
}

/* Render (rec given) or check (check set) every string of v in place. */
static int
walk(yajl_val v, yajl_val rec, int check, struct wa_render_err *e)
{
	yajl_val *kids = NULL;
	size_t i, n = 0;
	char *s;
	int rc;

	if (YAJL_IS_STRING(v)) {
		if (!wa_render_any(v->u.string))
			return WA_RENDER_OK;
		if (check)
			return wa_render_check(v->u.string, e);
		rc = wa_render(v->u.string, rec, &s, e);
		if (rc == WA_RENDER_OK) {
			free(v->u.string);
			v->u.string = s;
		}
		return rc;
	}
	if (YAJL_IS_OBJECT(v)) {
		kids = v->u.object.values;
		n = v->u.object.len;
	} else if (YAJL_IS_ARRAY(v)) {
		kids = v->u.array.values;
		n = v->u.array.len;
	}
	for (i = 0; i < n; i++)
		if ((rc = walk(kids[i], rec, check, e)) != WA_RENDER_OK)
			return rc;
	return WA_RENDER_OK;
}

int
wa_render_tree(yajl_val v, yajl_val rec, yajl_val *out, struct wa_render_err *e)
{
	int rc;

	*out = wa_val_copy(v);
	if (!*out) {
		snprintf(e->msg, sizeof e->msg, "out of memory");
		return WA_RENDER_NOMEM;
	}
	rc = walk(*out, rec, 0, e);
	if (rc != WA_RENDER_OK) {
		wa_val_free(*out);
		*out = NULL;
	}
	return rc;
}

int
wa_render_check_tree(yajl_val v, struct wa_render_err *e)
{
	return walk(v, NULL, 1, e);
}

int
wa_render_tree_any(yajl_val v)
{
	struct ph ph;
	size_t i;

	if (YAJL_IS_STRING(v))
		return ph_next(v->u.string, &ph) != NULL;
	for (i = 0; YAJL_IS_OBJECT(v) && i < v->u.object.len; i++)
		if (wa_render_tree_any(v->u.object.values[i]))
			return 1;
	for (i = 0; YAJL_IS_ARRAY(v) && i < v->u.array.len; i++)
		if (wa_render_tree_any(v->u.array.values[i]))
			return 1;
	return 0;
}
