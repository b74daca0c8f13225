/* fuzz-norm: normalization (norm.c over phone.cc) as wa-normalize does it.
 *
 * Input: a flags byte (bit 0 --strict; bits 1-2 --field: none, to, phone,
 * jid), two bytes of --region (any bytes; one libphonenumber does not know
 * means none), then the text. The text is normalized as an address (if it
 * is valid UTF-8, as the reader passes a plain line on) and, when it parses
 * as a JSON object the reader would pass, as a record.
 * Checked: a result is an E.164 number and its JID, or an @lid JID, that
 * normalize again to themselves; a failure has a documented code and a
 * message; a record comes out as a line of JSON that reads back. */
#include "fuzz.h"
#include "phone/wa_norm.h"

static int
is_code(const char *code, int record)
{
	return code && (strcmp(code, "invalid_phone") == 0 ||
	    strcmp(code, "unsupported_jid") == 0 ||
	    (record && strcmp(code, "missing_phone") == 0));
}

static void
check_addr(const struct wa_norm_opts *o, const struct wa_addr *a)
{
	struct wa_addr again;
	const char *code;
	char msg[256], user[64];
	size_t n;

	if (a->kind == WA_ADDR_LID) {
		CHECK(a->phone[0] == '\0');
		n = strlen(a->jid);
		CHECK(n > 4 && strcmp(a->jid + n - 4, "@lid") == 0);
		CHECK(strspn(a->jid, "0123456789") == n - 4);
		CHECK(wa_norm_text(o, a->jid, &again, &code, msg, sizeof msg) == 0);
		CHECK(again.kind == WA_ADDR_LID && strcmp(again.jid, a->jid) == 0);
		return;
	}
	CHECK(a->kind == WA_ADDR_PHONE);
	n = strlen(a->phone);
	CHECK(a->phone[0] == '+' && n >= 2 && n <= 21);
	CHECK(strspn(a->phone + 1, "0123456789") == n - 1);
	CHECK(strncmp(a->jid, a->phone + 1, n - 1) == 0);
	CHECK(strcmp(a->jid + n - 1, "@s.whatsapp.net") == 0);
	CHECK(wa_jid_user(a->jid, user, sizeof user) == n - 1);
	CHECK(a->valid == 0 || a->valid == 1);
	CHECK(strlen(a->region) <= 3 &&
	    strspn(a->region, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
	    strlen(a->region));
	/* wa-send normalizes what wa-normalize wrote: it must not change. */
	CHECK(wa_norm_text(o, a->jid, &again, &code, msg, sizeof msg) == 0);
	CHECK(again.kind == WA_ADDR_PHONE && strcmp(again.phone, a->phone) == 0);
	CHECK(strcmp(again.jid, a->jid) == 0 && again.valid == a->valid);
	CHECK(wa_norm_text(o, a->phone, &again, &code, msg, sizeof msg) == 0);
	CHECK(strcmp(again.jid, a->jid) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { NULL, "to", "phone", "jid" };
	struct wa_norm_opts o;
	struct wa_addr a;
	const char *code = NULL;
	char region[3], msg[256], *text;
	yajl_val obj;

	if (size < 3)
		return 0;
	memcpy(region, data + 1, 2);
	region[2] = '\0';
	if (wa_norm_init(&o, region, fields[(data[0] >> 1) & 3], data[0] & 1) != 0)
		CHECK(wa_norm_init(&o, "", fields[(data[0] >> 1) & 3], data[0] & 1) == 0);
	text = malloc(size - 3 + 1);
	CHECK(text != NULL);
	memcpy(text, data + 3, size - 3);
	text[size - 3] = '\0';

	/* As a plain line: the reader hands on only valid UTF-8. */
	if (fuzz_utf8_ok(text)) {
		if (wa_norm_text(&o, text, &a, &code, msg, sizeof msg) == 0)
			check_addr(&o, &a);
		else {
			CHECK(is_code(code, 0));
			/* a newline may be in it: the log keeps the first line */
			CHECK(msg[0] != '\0');
			fuzz_check_str(msg);
		}
	}

	obj = wa_json_parse(text, NULL, 0);
	if (YAJL_IS_OBJECT(obj) && fuzz_depth(obj, 64) <= 64) {
		if (wa_norm_record(&o, obj, &a) == 0) {
			check_addr(&o, &a);
			CHECK(strcmp(wa_get_str(obj, "jid"), a.jid) == 0);
			CHECK(a.source && strcmp(wa_get_str(obj, "source"), a.source) == 0);
		} else {
			yajl_val e = wa_get(obj, "error");

			CHECK(wa_is_failed(obj));
			CHECK(is_code(wa_get_str(e, "code"), 1));
			CHECK(wa_get_str(e, "message") != NULL);
		}
		fuzz_check_written(obj);
	}
	wa_val_free(obj);
	free(text);
	return 0;
}
