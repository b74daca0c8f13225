/* utf8.c: UTF-8 helpers (see wa_utf8.h). */
#include <string.h>

#include "base/wa_utf8.h"

void
wa_utf8_trim(char *s)
{
	size_t n = strlen(s), i = n;
	unsigned char c;

	while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	if (c >= 0xC0 && (size_t)(c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2) > n - i + 1)
		s[i - 1] = '\0';
}

size_t
wa_utf8_fit(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

size_t
wa_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}
