/* fuzz-baileys: how an answer from the Baileys service is classified
 * (wa_baileys_outcome in provider_baileys.c). Input: the HTTP status as
 * three digits, then the body (see fuzz.h). */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wa_http_res res;
	struct wa_error e;
	char id[160]; /* send.c's msgid */
	int sent;

	if (fuzz_http_res(data, size, &res) != 0)
		return 0;
	memset(&e, 0, sizeof e);
	id[0] = '\0';
	sent = wa_baileys_outcome(&res, id, sizeof id, &e);
	fuzz_check_outcome(&res, sent, id, sizeof id, &e);
	if (!sent && e.provider_code[0])
		CHECK(e.provider_code_num == 0);
	free((char *)res.body);
	return 0;
}
