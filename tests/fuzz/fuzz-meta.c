/* fuzz-meta: how an answer from Meta's Cloud API is classified
 * (wa_meta_ops.answer in send/provider/meta.c). Input: the HTTP status as three
 * digits, then the body (see fuzz.h). */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wa_error e;

	/* Meta's error code is a number, kept as digits. */
	if (fuzz_answer(data, size, wa_meta_ops.answer, &e) == 0)
		CHECK(e.provider_code_num == (e.provider_code[0] != '\0') &&
		    strspn(e.provider_code + (e.provider_code[0] == '-'),
		    "0123456789") + (e.provider_code[0] == '-') ==
		    strlen(e.provider_code));
	return 0;
}
