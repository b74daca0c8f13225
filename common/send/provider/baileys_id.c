/* baileys_id.c: the Baileys service's usual answer read without a parser
 * (see provider.h); baileys.c takes the general path when it cannot
 * decide. Apart from baileys.c so that fuzz-baileys can hold it against
 * the parser's reading. */
#include <string.h>

#include "send/provider/provider.h"

/* The usual answer, {"ok":true,"messageId":"3EB0…",…}, read without a
 * parser: a flat object of plain printable ASCII (no escape, no nesting,
 * no comment) is scanned by the JSON grammar. It decides only what the
 * tree would decide the same way: the first "messageId" a string, the
 * first "ok" not false. Anything else returns 0 and takes the general
 * path, which decides for itself. */
static const char *
sc_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A string of plain characters; its end, or NULL. */
static const char *
sc_str(const char *p, const char **s, size_t *n)
{
	const char *q;

	if (*p != '"')
		return NULL;
	for (q = ++p; *q != '"'; q++)
		if (*q < 0x20 || *q > 0x7e || *q == '\\')
			return NULL;
	*s = p;
	*n = (size_t)(q - p);
	return q + 1;
}

static const char *
sc_digits(const char *p)
{
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

static const char *
sc_num(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (!(p = sc_digits(p)))
		return NULL;
	if (*p == '.' && !(p = sc_digits(p + 1)))
		return NULL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(p = sc_digits(p)))
			return NULL;
	}
	return p;
}

int
wa_baileys_quick_id(const char *body, char *id, size_t idlen)
{
	const char *p = sc_ws(body), *k, *v;
	size_t kn, vn;
	int seen_id = 0, seen_ok = 0, str;

	if (*p++ != '{' || idlen == 0)
		return 0;
	p = sc_ws(p);
	if (*p == '}')
		return 0; /* no messageId */
	for (;;) {
		if (!(p = sc_str(p, &k, &kn)))
			return 0;
		p = sc_ws(p);
		if (*p++ != ':')
			return 0;
		p = sc_ws(p);
		v = p;
		vn = 0;
		if ((str = *p == '"'))
			p = sc_str(p, &v, &vn);
		else if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
			p += 4;
		else if (!strncmp(p, "false", 5))
			p += 5;
		else
			p = sc_num(p);
		if (!p)
			return 0;
		if (kn == 9 && !memcmp(k, "messageId", 9) && !seen_id++) {
			if (!str)
				return 0;
			if (vn >= idlen)
				vn = idlen - 1;
			memcpy(id, v, vn);
			id[vn] = '\0';
		} else if (kn == 2 && !memcmp(k, "ok", 2) && !seen_ok++ &&
		    !str && *v == 'f')
			return 0;
		p = sc_ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return 0;
		p = sc_ws(p);
	}
	return seen_id && *sc_ws(p + 1) == '\0';
}
