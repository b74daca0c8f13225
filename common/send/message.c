/* message.c: a record (and the defaults) into a message; see wa_message.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/wa_rec.h"
#include "record/wa_render.h"
#include "send/wa_message.h"

/* A render failure as the message's error. */
static int
render_error(int rc, const char *what, const struct wa_render_err *re,
    struct wa_error *e)
{
	if (rc == WA_RENDER_MISSING)
		wa_error_set(e, "missing_field", WA_CLASS_PERMANENT, "%s", re->msg);
	else if (rc == WA_RENDER_BROKEN)
		wa_error_set(e, "bad_placeholder", WA_CLASS_PERMANENT, "%s: %s",
		    what, re->msg);
	else
		wa_error_set(e, "no_memory", WA_CLASS_PERMANENT, "out of memory");
	return -1;
}

/* s rendered into *dst (NULL: s had no placeholder, use it as it is). */
static int
render_str(const char *s, yajl_val rec, char **dst, const char **use,
    const char *what, struct wa_error *e)
{
	struct wa_render_err re;
	int rc;

	*use = s;
	if (!wa_render_any(s))
		return 0;
	rc = wa_render(s, rec, dst, &re);
	if (rc != WA_RENDER_OK)
		return render_error(rc, what, &re, e);
	*use = *dst;
	return 0;
}

static int
content_template(struct wa_msg *m, struct wa_msg_own *own, yajl_val rec,
    yajl_val t, struct wa_error *e)
{
	yajl_val lang = wa_get(t, "language"), comps = wa_get(t, "components");
	struct wa_render_err re;
	int rc;

	if (!YAJL_IS_OBJECT(t)) {
		wa_error_set(e, "bad_template", WA_CLASS_PERMANENT, "template must "
		    "be an object");
		return -1;
	}
	m->kind = WA_MSG_TEMPLATE;
	m->tpl.name = wa_get_str(t, "name");
	m->tpl.language = YAJL_IS_OBJECT(lang) ? wa_get_str(lang, "code") :
	    wa_get_str(t, "language");
	if (comps) {
		rc = wa_render_tree(comps, rec, &own->components, &re);
		if (rc != WA_RENDER_OK)
			return render_error(rc, "template", &re, e);
		m->tpl.components = own->components;
		m->tpl.personal = wa_render_tree_any(comps);
	}
	return 0;
}

static int
content_media(struct wa_msg *m, struct wa_msg_own *own, yajl_val rec,
    yajl_val md, struct wa_error *e)
{
	const char *cap;

	if (!YAJL_IS_OBJECT(md)) {
		wa_error_set(e, "bad_media", WA_CLASS_PERMANENT, "media must be an "
		    "object");
		return -1;
	}
	m->kind = WA_MSG_MEDIA;
	m->media.type = wa_get_str(md, "type");
	m->media.path = wa_get_str(md, "path");
	m->media.filename = wa_get_str(md, "filename");
	m->media.mimetype = wa_get_str(md, "mimetype");
	/* A record's own text is the caption when the media has none. */
	cap = wa_get_str(md, "caption");
	if (!cap)
		cap = wa_get_str(rec, "text");
	if (cap && render_str(cap, rec, &own->caption, &m->media.caption,
	    "caption", e) != 0)
		return -1;
	/* The link may be personal (a coupon per customer); a path on this
	 * machine never is. */
	if (wa_get_str(md, "url") && render_str(wa_get_str(md, "url"), rec,
	    &own->url, &m->media.url, "media url", e) != 0)
		return -1;
	return 0;
}

int
wa_msg_content(struct wa_msg *m, struct wa_msg_own *own, yajl_val rec,
    const struct wa_msg_src *src, struct wa_error *e)
{
	static const struct wa_msg_src none;
	yajl_val tpl = wa_get(rec, "template"), media = wa_get(rec, "media");
	const char *text = wa_get_str(rec, "text");
	yajl_val pv = wa_get(rec, "preview_url");

	memset(own, 0, sizeof *own);
	if (!src)
		src = &none;
	/* A record's own choice wins over the option, either way; anything
	 * but a boolean (or null: not given) is a mistake to say, not to
	 * guess at. */
	if (pv && !YAJL_IS_TRUE(pv) && !YAJL_IS_FALSE(pv) && !YAJL_IS_NULL(pv)) {
		wa_error_set(e, "bad_preview_url", WA_CLASS_PERMANENT,
		    "preview_url must be true or false");
		return -1;
	}
	m->preview_url = 0;
	if (tpl || (!media && !text && src->tpl))
		return content_template(m, own, rec, tpl ? tpl : src->tpl, e);
	if (media || (!text && src->media))
		return content_media(m, own, rec, media ? media : src->media, e);
	if (!text)
		text = src->text;
	if (!text) {
		wa_error_set(e, "missing_message", WA_CLASS_PERMANENT, "no text, "
		    "template or media (give one in the record, or --text)");
		return -1;
	}
	m->kind = WA_MSG_TEXT;
	m->preview_url = YAJL_IS_TRUE(pv) || (!YAJL_IS_FALSE(pv) && src->preview_url);
	return render_str(text, rec, &own->text, &m->text, "text", e);
}

void
wa_msg_own_free(struct wa_msg_own *own)
{
	free(own->text);
	free(own->caption);
	free(own->url);
	wa_val_free(own->components);
	memset(own, 0, sizeof *own);
}

int
wa_msg_src_check(const struct wa_msg_src *src, char *err, size_t len)
{
	struct wa_render_err re;
	const char *opt = NULL;

	if (src->text && wa_render_check(src->text, &re) != WA_RENDER_OK)
		opt = "--text";
	else if (src->tpl && wa_render_check_tree(src->tpl, &re) != WA_RENDER_OK)
		opt = "--template";
	else if (src->media && wa_render_check_tree(src->media, &re) != WA_RENDER_OK)
		opt = "--media";
	if (!opt)
		return 0;
	snprintf(err, len, "%s: %s", opt, re.msg);
	return -1;
}

static void
set_opt_str(yajl_val o, const char *k, const char *v)
{
	if (v)
		wa_set_str(o, k, v);
}

yajl_val
wa_msg_json(const struct wa_msg *m)
{
	yajl_val o = wa_new_object(), md;

	if (!o)
		return NULL;
	switch (m->kind) {
	case WA_MSG_TEXT:
		wa_set_str(o, "type", "text");
		wa_set_str(o, "text", m->text ? m->text : "");
		if (m->preview_url)
			wa_set_bool(o, "preview_url", 1);
		break;
	case WA_MSG_TEMPLATE:
		wa_set_str(o, "type", "template");
		set_opt_str(o, "name", m->tpl.name);
		set_opt_str(o, "language", m->tpl.language);
		if (m->tpl.components)
			wa_set(o, "components", wa_val_copy(m->tpl.components));
		break;
	case WA_MSG_MEDIA:
		wa_set_str(o, "type", "media");
		md = wa_new_object();
		set_opt_str(md, "type", m->media.type);
		set_opt_str(md, "url", m->media.url);
		set_opt_str(md, "path", m->media.path);
		set_opt_str(md, "caption", m->media.caption);
		set_opt_str(md, "filename", m->media.filename);
		set_opt_str(md, "mimetype", m->media.mimetype);
		wa_set(o, "media", md);
		break;
	}
	return o;
}
