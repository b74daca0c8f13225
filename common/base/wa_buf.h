/* wa_buf.h: a growing byte string, for JSON written by hand and SQL
 * parameters built in batches. After wa_buf_add the content is
 * NUL-terminated; an allocation that fails sets oom and the content is
 * then incomplete (check it once, at the end). */
#ifndef WA_BUF_H
#define WA_BUF_H

#include <stddef.h>

struct wa_buf {
	char *p;
	size_t len, cap;
	int oom;
};

/* Room for more bytes and a NUL: 0, or -1 (oom set). */
int wa_buf_room(struct wa_buf *b, size_t more);
void wa_buf_add(struct wa_buf *b, const char *s, size_t n);
void wa_buf_str(struct wa_buf *b, const char *s);
void wa_buf_fmt(struct wa_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empty again, keeping the memory. */
void wa_buf_reset(struct wa_buf *b);
void wa_buf_free(struct wa_buf *b);

#endif
