/* jid.c: what kind of WhatsApp address a JID is (see provider.h). */
#include <ctype.h>
#include <string.h>

#include "send/provider/provider.h"

int
wa_jid_kind(const char *jid, char *digits, size_t len)
{
	const char *at = jid ? strchr(jid, '@') : NULL;
	size_t n, i;

	if (!at || at == jid || (size_t)(at - jid) > 24)
		return 0;
	n = (size_t)(at - jid);
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)jid[i]))
			return 0;
	if (strcmp(at + 1, "lid") == 0)
		return 2;
	if (strcmp(at + 1, "s.whatsapp.net") != 0 && strcmp(at + 1, "c.us") != 0)
		return 0;
	if (digits) {
		if (n >= len)
			return 0;
		memcpy(digits, jid, n);
		digits[n] = '\0';
	}
	return 1;
}
