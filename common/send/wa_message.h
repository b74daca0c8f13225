/* wa_message.h: turning a record into a message, the one way every
 * program does it: wa-send for each record it reads, wa-broadcast run for
 * each stored recipient (as the record export would write for it), and
 * preview. The message is the record's own template, media or text, else
 * the defaults' (wa-send's options, a stored broadcast's message), with
 * every {{field}} rendered from the record (wa_render.h). */
#ifndef WA_MESSAGE_H
#define WA_MESSAGE_H

#include <yajl/yajl_tree.h>

#include "send/wa_send.h"

/* The message for records that carry none. Borrowed. */
struct wa_msg_src {
	const char *text;
	int preview_url; /* for texts whose record has no preview_url */
	yajl_val tpl;    /* {"name","language","components"} */
	yajl_val media;  /* {"type","url"|"path","caption","filename","mimetype"} */
};

/* What a built message owns: the rendered parts. */
struct wa_msg_own {
	char *text, *caption, *url;
	yajl_val components;
};

/* Fill m's kind and content from rec (and src, may be NULL), and for a
 * text its preview_url: the record's (true or false), else src's. Pointers
 * in m borrow from rec, src and own. 0, or -1 with e filled (permanent:
 * missing_message, missing_field, bad_placeholder, bad_template,
 * bad_media, bad_preview_url). own is to be freed either way. */
int wa_msg_content(struct wa_msg *m, struct wa_msg_own *own, yajl_val rec,
    const struct wa_msg_src *src, struct wa_error *e);
void wa_msg_own_free(struct wa_msg_own *own);

/* 0 when every placeholder in src is well formed; else -1 with what is
 * broken in err, naming the option (--text, --template, --media). */
int wa_msg_src_check(const struct wa_msg_src *src, char *err, size_t len);

/* m's content as a JSON object: {"type":"text","text":…} (with
 * "preview_url":true when asked for),
 * {"type":"template","name","language","components"} or
 * {"type":"media","media":{…}}. NULL when out of memory. */
yajl_val wa_msg_json(const struct wa_msg *m);

#endif
