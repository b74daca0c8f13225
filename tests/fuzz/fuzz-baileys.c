/* fuzz-baileys: how an answer from the Baileys service is classified
 * (wa_baileys_ops.answer in send/provider/baileys.c). Input: the HTTP status as
 * three digits, then the body (see fuzz.h). */
#include "fuzz.h"

/* The quick read of the usual answer decides only as the tree would. */
static void
check_quick(const uint8_t *data, size_t size)
{
	struct wa_http_res res;
	const char *tid, *body;
	char id[64], *mid;
	yajl_val v;

	if (fuzz_http_res(data, size, &res) != 0)
		return;
	body = res.body;
	if (wa_baileys_quick_id(body, id, sizeof id)) {
		v = wa_json_parse(body, NULL, 0);
		CHECK(v != NULL);
		tid = wa_get_str(v, "messageId");
		CHECK(tid != NULL);
		CHECK(!YAJL_IS_FALSE(wa_get(v, "ok")));
		mid = strndup(tid, sizeof id - 1);
		CHECK(mid && strcmp(mid, id) == 0);
		free(mid);
		wa_val_free(v);
	}
	free((char *)body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wa_error e;

	/* Baileys' error is a word, never taken for a number. */
	if (fuzz_answer(data, size, wa_baileys_ops.answer, &e) == 0 &&
	    e.provider_code[0])
		CHECK(e.provider_code_num == 0);
	check_quick(data, size);
	return 0;
}
