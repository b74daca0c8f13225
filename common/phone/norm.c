/* norm.c: normalization of numbers and WhatsApp addresses.
 *
 * The rules: a "whatsapp:" prefix is dropped; person JIDs (@s.whatsapp.net,
 * @c.us) are read as international numbers; @lid passes as it is; groups,
 * broadcast lists, status and channels are refused; anything else is a phone
 * number, read by libphonenumber in the region given, or as international
 * (country code first) when there is none. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/wa_utf8.h"
#include "phone/wa_norm.h"
#include "phone/wa_phone.h"

/* norm_phone copies a parse into an address without checking lengths. */
_Static_assert(sizeof ((struct wa_addr *)0)->phone ==
    sizeof ((struct wa_phone *)0)->e164, "phone holds e164");
_Static_assert(sizeof ((struct wa_addr *)0)->jid >=
    sizeof ((struct wa_phone *)0)->e164 + 15, "jid holds e164@s.whatsapp.net");
_Static_assert(sizeof ((struct wa_addr *)0)->region ==
    sizeof ((struct wa_phone *)0)->region, "region holds region");
#include "record/wa_rec.h"

int
wa_norm_init(struct wa_norm_opts *o, const char *region, const char *field,
    int strict)
{
	char norm[3];

	memset(o, 0, sizeof *o);
	o->field = field;
	o->strict = strict;
	if (!region)
		region = getenv("WA_DEFAULT_REGION");
	if (!region || !*region)
		return 0;
	if (!wa_phone_region_ok(region, norm))
		return -1;
	memcpy(o->region, norm, 2);
	o->region[2] = '\0';
	return 0;
}

static int __attribute__((format(printf, 5, 6)))
fail(const char **code, const char *c, char *msg, size_t msglen,
    const char *fmt, ...)
{
	va_list ap;

	*code = c;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Parse a phone number text; the number must be possible for its country
 * (and valid, when strict). */
static int
norm_phone(const struct wa_norm_opts *o, const char *s, size_t n,
    const char *region, struct wa_addr *a, const char **code, char *msg,
    size_t msglen)
{
	struct wa_phone p, q;
	char why[128];
	int i, stable;
	size_t el;

	if (wa_phone_parse(s, n, region, 0, &p, why, sizeof why) != 0)
		return fail(code, "invalid_phone", msg, msglen, "%s", why);
	/* Parse strips one national prefix after the country code: read the
	 * result again until it stays, so what is written reads back as
	 * itself. A text that already is the result (most "+" numbers and
	 * JIDs) needs no second reading. */
	stable = strlen(p.e164) == n && memcmp(s, p.e164, n) == 0;
	for (i = 0; p.possible && !stable; i++) {
		if (i == (int)sizeof p.e164)
			return fail(code, "invalid_phone", msg, msglen,
			    "%s: not a stable number", p.e164);
		if (wa_phone_parse(p.e164, strlen(p.e164), NULL, 0, &q, why,
		    sizeof why) != 0)
			return fail(code, "invalid_phone", msg, msglen, "%s", why);
		if (strcmp(q.e164, p.e164) == 0)
			break;
		p = q;
	}
	if (!p.possible)
		return fail(code, "invalid_phone", msg, msglen,
		    "%s: wrong length for its country", p.e164);
	if (o->strict && !p.valid)
		return fail(code, "invalid_phone", msg, msglen,
		    "%s: not a valid number (--strict)", p.e164);
	/* Copied by hand: this runs once a record, and snprintf cost more
	 * than the parse. All three fit: e164 and region are the same sizes
	 * here, and the JID adds 15 bytes to at most 22. */
	a->kind = WA_ADDR_PHONE;
	el = strlen(p.e164);
	memcpy(a->phone, p.e164, el + 1);
	memcpy(a->jid, p.e164 + 1, el - 1);
	memcpy(a->jid + el - 1, "@s.whatsapp.net", sizeof "@s.whatsapp.net");
	memcpy(a->region, p.region, sizeof a->region);
	a->valid = p.valid;
	return 0;
}

static int
shown(const char *s, size_t max)
{
	return (int)wa_utf8_fit(s, max);
}

static int
all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

int
wa_norm_text(const struct wa_norm_opts *o, const char *text, struct wa_addr *a,
    const char **code, char *msg, size_t msglen)
{
	static const char *const nonperson[] = {
		"g.us", "broadcast", "newsletter", NULL
	};
	const char *s = text, *at, *dom, *colon;
	char buf[64];
	size_t n, user;
	int i;

	memset(a, 0, sizeof *a);
	n = strnlen(text, sizeof a->input - 1);
	memcpy(a->input, text, n);  /* NUL-ended by the memset */
	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= 9 && strncasecmp(s, "whatsapp:", 9) == 0) {
		s += 9;
		n -= 9;
		while (n && isspace((unsigned char)*s))
			s++, n--;
	}
	if (n == 0)
		return fail(code, "invalid_phone", msg, msglen, "%s", "empty number");

	at = memchr(s, '@', n);
	if (at) {
		dom = at + 1;
		user = (size_t)(at - s);
		for (i = 0; nonperson[i]; i++)
			if ((size_t)(s + n - dom) == strlen(nonperson[i]) &&
			    strncasecmp(dom, nonperson[i], strlen(nonperson[i])) == 0)
				return fail(code, "unsupported_jid", msg, msglen,
				    "not a person's address: @%s", nonperson[i]);
		if ((size_t)(s + n - dom) == 3 && strncasecmp(dom, "lid", 3) == 0) {
			if (!all_digits(s, user) || n >= sizeof a->jid)
				return fail(code, "invalid_phone", msg, msglen,
				    "%s", "malformed @lid address");
			a->kind = WA_ADDR_LID;
			snprintf(a->jid, sizeof a->jid, "%.*s@lid", (int)user, s);
			return 0;
		}
		if (!(((size_t)(s + n - dom) == 14 && strncasecmp(dom, "s.whatsapp.net", 14) == 0) ||
		    ((size_t)(s + n - dom) == 4 && strncasecmp(dom, "c.us", 4) == 0)))
			return fail(code, "unsupported_jid", msg, msglen,
			    "not a WhatsApp person address: @%.*s",
			    shown(dom, 40), dom);
		/* A device suffix (":12") names a device, not another person. */
		colon = memchr(s, ':', user);
		if (colon)
			user = (size_t)(colon - s);
		if (!all_digits(s, user) || user + 2 > sizeof buf)
			return fail(code, "invalid_phone", msg, msglen,
			    "%s", "JID user part is not a number");
		buf[0] = '+';
		memcpy(buf + 1, s, user);
		return norm_phone(o, buf, user + 1, NULL, a, code, msg, msglen);
	}

	/* Without a region, a bare number is international: country code
	 * first, as WhatsApp addresses are ("00" is the common way to dial
	 * out, so it counts as "+"). */
	if (!o->region[0] && s[0] != '+' && n + 2 < sizeof buf) {
		if (n > 2 && s[0] == '0' && s[1] == '0') {
			s += 2;
			n -= 2;
		}
		buf[0] = '+';
		memcpy(buf + 1, s, n);
		return norm_phone(o, buf, n + 1, NULL, a, code, msg, msglen);
	}
	return norm_phone(o, s, n, o->region[0] ? o->region : NULL, a, code,
	    msg, msglen);
}

/* The text of a field that holds a number: a string, or a JSON number. */
static const char *
field_text(yajl_val obj, const char *key)
{
	yajl_val v = wa_get(obj, key);

	if (YAJL_IS_STRING(v) && v->u.string[0])
		return v->u.string;
	if (YAJL_IS_NUMBER(v))
		return v->u.number.r;
	return NULL;
}

int
wa_norm_rec(const struct wa_norm_opts *o, const struct wa_rec *rec,
    struct wa_addr *a)
{
	struct wa_norm_opts col;

	if (!rec->field)
		return wa_norm_record(o, rec->obj, a);
	col = *o;
	col.field = rec->field;
	return wa_norm_record(&col, rec->obj, a);
}

int
wa_norm_record(const struct wa_norm_opts *o, yajl_val obj, struct wa_addr *a)
{
	static const char *const fields[] = { "to", "phone", "jid", NULL };
	const char *text = NULL, *src = NULL, *code;
	char msg[256];
	int i;

	memset(a, 0, sizeof *a);
	if (o->field) {
		src = o->field;
		text = field_text(obj, src);
	} else {
		for (i = 0; fields[i] && !text; i++)
			if ((text = field_text(obj, fields[i])))
				src = fields[i];
	}
	if (!text) {
		if (o->field)
			snprintf(msg, sizeof msg, "no number in field \"%s\"", o->field);
		else
			snprintf(msg, sizeof msg, "no number: none of to, phone, jid");
		wa_set_failed(obj, "missing_phone", msg);
		return -1;
	}
	if (wa_norm_text(o, text, a, &code, msg, sizeof msg) != 0) {
		a->source = src;
		wa_set_failed(obj, code, msg);
		return -1;
	}
	a->source = src;
	if (a->kind == WA_ADDR_LID) {
		wa_set_null(obj, "phone");
		wa_set_str(obj, "jid", a->jid);
		wa_set_null(obj, "region");
		wa_set_null(obj, "valid");
	} else {
		wa_set_str(obj, "phone", a->phone);
		wa_set_str(obj, "jid", a->jid);
		if (a->region[0] && strcmp(a->region, "ZZ") != 0)
			wa_set_str(obj, "region", a->region);
		else
			wa_set_null(obj, "region");
		wa_set_bool(obj, "valid", a->valid);
	}
	return wa_set_str(obj, "source", src);
}

size_t
wa_jid_user(const char *jid, char *out, size_t outlen)
{
	size_t n = strcspn(jid, "@:");

	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, jid, n);
	out[n] = '\0';
	return n;
}
