/* fuzz.h: what the harnesses share. A harness is a libFuzzer target
 * (LLVMFuzzerTestOneInput); built with replay.c instead of libFuzzer it is
 * an ordinary program that runs it over the files it is given. A broken
 * invariant aborts, so libFuzzer and the replay both report it as a crash. */
#ifndef WA_FUZZ_H
#define WA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "send/provider/provider.h"
#include "record/wa_rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) ((c) ? (void)0 : fuzz_fail(#c, __FILE__, __LINE__))

static inline void
fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	abort();
}

/* Valid UTF-8, as strict as rec.c's utf8_clean: what the reader can hand
 * on as the text of a plain line. */
static inline int
fuzz_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;

	while (p[i]) {
		unsigned c = p[i];

		len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 :
		    (c & 0xF0) == 0xE0 ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
		if (!len)
			return 0;
		for (k = 1; k < len; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return 0; /* the NUL ends it too */
		if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F) ||
		    (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))
			return 0;
		i += len;
	}
	return 1;
}

/* Nesting of v (a scalar is 0), counted no further than limit + 1. */
static inline int
fuzz_depth(yajl_val v, int limit)
{
	size_t i, n;
	int d, max = 0;

	if (!YAJL_IS_OBJECT(v) && !YAJL_IS_ARRAY(v))
		return 0;
	if (limit < 0)
		return 1;
	n = YAJL_IS_OBJECT(v) ? v->u.object.len : v->u.array.len;
	for (i = 0; i < n && max <= limit; i++) {
		d = fuzz_depth(YAJL_IS_OBJECT(v) ? v->u.object.values[i] :
		    v->u.array.values[i], limit - 1);
		if (d > max)
			max = d;
	}
	return max + 1;
}

/* A record as the programs write it: one line of JSON that reads back as
 * the same object, rendered the same way. */
static inline void
fuzz_check_written(yajl_val obj)
{
	size_t len, len2;
	char *s, *s2, err[256];
	yajl_val back;

	CHECK(YAJL_IS_OBJECT(obj));
	s = wa_json_dump(obj, &len);
	CHECK(s != NULL);
	CHECK(strlen(s) == len);
	CHECK(memchr(s, '\n', len) == NULL);
	back = wa_json_parse(s, err, sizeof err);
	if (!YAJL_IS_OBJECT(back))
		fprintf(stderr, "written: %s\nreads back as: %s\n", s, err);
	CHECK(YAJL_IS_OBJECT(back));
	s2 = wa_json_dump(back, &len2);
	CHECK(s2 != NULL && len2 == len && memcmp(s, s2, len) == 0);
	free(s2);
	wa_val_free(back);
	free(s);
}

/* A string a program writes into a record (an error message, a message
 * id): the record must still be one the next program can read. */
static inline void
fuzz_check_str(const char *str)
{
	yajl_val obj = wa_new_object();

	CHECK(obj != NULL && wa_set_str(obj, "s", str) == 0);
	fuzz_check_written(obj);
	wa_val_free(obj);
}

/* An HTTP answer from the input: its status from the first three bytes
 * (each read as a decimal digit, so "200" is 200), the rest as the body,
 * NUL-terminated as wa_http gives it. The body is malloc'd: free it. */
static inline int
fuzz_http_res(const uint8_t *data, size_t size, struct wa_http_res *res)
{
	char *body;

	if (size < 3)
		return -1;
	body = malloc(size - 3 + 1);
	CHECK(body != NULL);
	memcpy(body, data + 3, size - 3);
	body[size - 3] = '\0';
	memset(res, 0, sizeof *res);
	res->code = CURLE_OK;
	res->status = (uint8_t)(data[0] - '0') % 10 * 100L +
	    (uint8_t)(data[1] - '0') % 10 * 10L + (uint8_t)(data[2] - '0') % 10;
	res->body = body;
	res->body_len = size - 3;
	res->retry_after_s = -1;
	res->connected = res->body_sent = 1;
	return 0;
}

/* An outcome as wa-send reports it: a sent message has an id, a failure a
 * code, a class and a one-line message; all go into the written record. */
static inline void
fuzz_check_outcome(const struct wa_http_res *res, int sent, const char *id,
    size_t idlen, const struct wa_error *e)
{
	int ok2xx = res->status >= 200 && res->status < 300;

	CHECK(sent == 0 || sent == 1);
	if (sent) {
		CHECK(ok2xx);
		CHECK(strlen(id) < idlen);
		fuzz_check_str(id);
		return;
	}
	CHECK(e->code && e->code[0]);
	CHECK(e->cls >= WA_CLASS_RETRYABLE && e->cls <= WA_CLASS_FATAL);
	CHECK(!ok2xx || (strcmp(e->code, "bad_response") == 0 &&
	    e->cls == WA_CLASS_AMBIGUOUS));
	CHECK(e->message[0] && !strpbrk(e->message, "\r\n"));
	fuzz_check_str(e->message);
	CHECK(e->http_status == res->status);
	CHECK(strlen(e->provider_code) < sizeof e->provider_code);
	fuzz_check_str(e->provider_code);
	CHECK(e->provider_code_num == 0 || e->provider_code_num == 1);
}

/* One provider's answer classifier over the input, as send.c calls it,
 * with the checks every provider's must pass. Returns whether it was
 * sent, or -1 when the input is too short to be an answer. */
static inline int
fuzz_answer(const uint8_t *data, size_t size, int (*outcome)(
    const struct wa_http_res *, struct wa_accepted *, struct wa_error *),
    struct wa_error *e)
{
	struct wa_http_res res;
	struct wa_accepted acc;
	int sent;

	if (fuzz_http_res(data, size, &res) != 0)
		return -1;
	memset(e, 0, sizeof *e);
	memset(&acc, 0, sizeof acc);
	sent = outcome(&res, &acc, e);
	fuzz_check_outcome(&res, sent, acc.id, sizeof acc.id, e);
	/* The provider's word is whole characters a record can carry, and
	 * only on a send. */
	CHECK(strlen(acc.status) < sizeof acc.status);
	fuzz_check_str(acc.status);
	CHECK(sent || !acc.status[0]);
	free((char *)res.body);
	return sent;
}

#endif
