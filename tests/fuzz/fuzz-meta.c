/* fuzz-meta: how an answer from Meta's Cloud API is classified
 * (wa_meta_outcome in provider_meta.c). Input: the HTTP status as three
 * digits, then the body (see fuzz.h). */
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
	sent = wa_meta_outcome(&res, id, sizeof id, &e);
	fuzz_check_outcome(&res, sent, id, sizeof id, &e);
	/* Meta's error code is a number, kept as digits. */
	if (!sent)
		CHECK(e.provider_code_num == (e.provider_code[0] != '\0') &&
		    strspn(e.provider_code + (e.provider_code[0] == '-'),
		    "0123456789") + (e.provider_code[0] == '-') ==
		    strlen(e.provider_code));
	free((char *)res.body);
	return 0;
}
