/* fuzz-render: {{field}} placeholders (record/render.c).
 *
 * Input: the text of a message. It is checked and rendered against a
 * record with a string, a number, an empty string and a field whose value
 * holds placeholders itself, against no record at all, and as the one
 * string of a JSON array (as a template's components are).
 * Checked: checking and rendering agree on what is broken; a text without
 * "{{" comes out as it is; without a record, rendering succeeds exactly
 * when it also succeeds with a record whose fields are all absent (every
 * placeholder has a fallback); a value is inserted, never expanded: the
 * record's {{x}} comes out as it is; the tree renders its string as the
 * text does. */
#include "fuzz.h"
#include "record/wa_render.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wa_render_err e;
	yajl_val rec, empty, arr, out;
	char *text, *r1 = NULL, *r2 = NULL, *r3 = NULL;
	int c, rc1, rc2, rc3;

	text = strndup((const char *)data, size);
	if (!text || !fuzz_utf8_ok(text)) {
		free(text);
		return 0;
	}
	rec = wa_json_parse("{\"name\":\"Dana\",\"n\":42,\"e\":\"\","
	    "\"x\":\"{{name}} {{x}}\"}", NULL, 0);
	empty = wa_new_object();
	CHECK(rec && empty);

	c = wa_render_check(text, &e);
	rc1 = wa_render(text, rec, &r1, &e);
	CHECK(c == WA_RENDER_OK || c == WA_RENDER_BROKEN);
	CHECK((c == WA_RENDER_BROKEN) == (rc1 == WA_RENDER_BROKEN));
	CHECK((rc1 == WA_RENDER_OK) == (r1 != NULL));
	if (!wa_render_any(text))
		CHECK(rc1 == WA_RENDER_OK && strcmp(r1, text) == 0);
	if (rc1 == WA_RENDER_OK && strcmp(text, "{{x}}") == 0)
		CHECK(strcmp(r1, "{{name}} {{x}}") == 0);

	rc2 = wa_render(text, NULL, &r2, &e);
	rc3 = wa_render(text, empty, &r3, &e);
	CHECK(rc2 == rc3);
	if (rc2 == WA_RENDER_OK)
		CHECK(strcmp(r2, r3) == 0);
	if (rc2 == WA_RENDER_MISSING)
		CHECK(e.field[0] != '\0');

	arr = wa_new_array();
	CHECK(arr && wa_array_push(arr, wa_new_str(text)) == 0);
	CHECK((wa_render_check_tree(arr, &e) == WA_RENDER_OK) == (c == WA_RENDER_OK));
	if (wa_render_tree(arr, rec, &out, &e) == WA_RENDER_OK) {
		CHECK(rc1 == WA_RENDER_OK);
		CHECK(r1 && strcmp(out->u.array.values[0]->u.string, r1) == 0);
		wa_val_free(out);
	} else
		CHECK(rc1 != WA_RENDER_OK);

	free(r1);
	free(r2);
	free(r3);
	wa_val_free(arr);
	wa_val_free(empty);
	wa_val_free(rec);
	free(text);
	return 0;
}
