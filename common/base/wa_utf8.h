/* wa_utf8.h: small UTF-8 helpers for text cut to fit a buffer. */
#ifndef WA_UTF8_H
#define WA_UTF8_H

#include <stddef.h>

/* Drop a UTF-8 sequence cut off at the end of s (by snprintf). */
void wa_utf8_trim(char *s);
/* How many bytes of s fit in max without cutting a character. */
size_t wa_utf8_fit(const char *s, size_t max);
/* Number of UTF-8 code points in s. */
size_t wa_utf8_len(const char *s);

#endif
