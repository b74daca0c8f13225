/* fuzz-baileys: how an answer from the Baileys service is classified
 * (wa_baileys_ops.answer in send/provider/baileys.c). Input: the HTTP status as
 * three digits, then the body (see fuzz.h). */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wa_error e;

	/* Baileys' error is a word, never taken for a number. */
	if (fuzz_answer(data, size, wa_baileys_ops.answer, &e) == 0 &&
	    e.provider_code[0])
		CHECK(e.provider_code_num == 0);
	return 0;
}
