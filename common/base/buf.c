/* buf.c: a growing byte string; see wa_buf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_buf.h"

int
wa_buf_room(struct wa_buf *b, size_t more)
{
	size_t cap;
	char *np;

	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

void
wa_buf_add(struct wa_buf *b, const char *s, size_t n)
{
	if (wa_buf_room(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
wa_buf_str(struct wa_buf *b, const char *s)
{
	wa_buf_add(b, s, strlen(s));
}

void
wa_buf_fmt(struct wa_buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	wa_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void
wa_buf_reset(struct wa_buf *b)
{
	b->len = 0;
	b->oom = 0;
	if (b->p)
		b->p[0] = '\0';
}

void
wa_buf_free(struct wa_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}
