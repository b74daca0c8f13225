/* error.c: filling a wa_error, for the engine, the providers and the
 * router alike (declared in wa_send.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/wa_utf8.h"
#include "send/wa_send.h"

void
wa_error_set(struct wa_error *e, const char *code, enum wa_class cls,
    const char *fmt, ...)
{
	va_list ap;

	memset(e, 0, sizeof *e);
	e->code = code;
	e->cls = cls;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	e->message[strcspn(e->message, "\r\n")] = '\0';
	wa_utf8_trim(e->message);
}
