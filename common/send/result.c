/* result.c: send results <-> record fields; see wa_result.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_utf8.h"
#include "send/wa_result.h"

static yajl_val
error_obj(const struct wa_error *e)
{
	yajl_val v = wa_new_object();

	wa_set_str(v, "code", e->code ? e->code : "error");
	wa_set_str(v, "message", e->message);
	wa_set_str(v, "class", wa_class_name(e->cls));
	if (e->http_status)
		wa_set_int(v, "http_status", e->http_status);
	else
		wa_set_null(v, "http_status");
	if (e->provider_code[0] && e->provider_code_num)
		wa_set_int(v, "provider_code", strtoll(e->provider_code, NULL, 10));
	else if (e->provider_code[0])
		wa_set_str(v, "provider_code", e->provider_code);
	else
		wa_set_null(v, "provider_code");
	if (e->scope != WA_SCOPE_RECIPIENT)
		wa_set_str(v, "scope", e->scope == WA_SCOPE_TEMPLATE ? "template" : "params");
	if (e->halt)
		wa_set_bool(v, "halt", 1);
	if (e->throttle)
		wa_set_bool(v, "throttle", 1);
	if (e->defer_s > 0)
		wa_set_int(v, "retry_after", (long long)ceil(e->defer_s));
	return v;
}

void
wa_result_fields(struct wa_result_rec *rr, int sent, const char *provider,
    const char *msgid, int attempts, long duration_ms, const struct wa_error *e)
{
	struct wa_field *f = rr->f;

	memset(rr, 0, sizeof *rr);
	f[0].key = "status";
	f[0].s = sent ? "sent" : "failed";
	f[1].key = "provider";
	f[1].type = provider ? WA_FIELD_STR : WA_FIELD_NULL;
	f[1].s = provider;
	f[2].key = "message_id";
	f[2].type = msgid ? WA_FIELD_STR : WA_FIELD_NULL;
	f[2].s = msgid;
	f[3].key = "message_status";
	f[3].type = WA_FIELD_DROP;
	f[4].key = "attempts";
	f[4].type = WA_FIELD_INT;
	f[4].i = attempts;
	f[5].key = "duration_ms";
	f[5].type = WA_FIELD_INT;
	f[5].i = duration_ms;
	f[6].key = "error";
	f[6].type = sent ? WA_FIELD_DROP : WA_FIELD_VAL;
	/* NULL (out of memory) is written as null. */
	f[6].v = rr->error = sent ? NULL : error_obj(e);
}

void
wa_result_message_status(struct wa_result_rec *rr, const char *s)
{
	rr->f[3].type = s ? WA_FIELD_STR : WA_FIELD_DROP;
	rr->f[3].s = s;
}

void
wa_result_rec_free(struct wa_result_rec *rr)
{
	wa_val_free(rr->error);
	rr->error = NULL;
}

enum wa_class
wa_class_parse(const char *s)
{
	enum wa_class c;

	for (c = WA_CLASS_RETRYABLE; s && c <= WA_CLASS_FATAL; c++)
		if (strcmp(s, wa_class_name(c)) == 0)
			return c;
	return WA_CLASS_NONE;
}

int
wa_result_read(yajl_val rec, struct wa_result *r)
{
	yajl_val err = wa_get(rec, "error"), pc = wa_get(err, "provider_code");
	const char *st = wa_get_str(rec, "status");
	long long n = 0;

	memset(r, 0, sizeof *r);
	if (!st)
		return -1;
	r->status = strcmp(st, "sent") == 0 ? WA_SENT : WA_FAILED;
	wa_provider_parse(wa_get_str(rec, "provider"), &r->provider);
	r->message_id = wa_get_str(rec, "message_id");
	if (r->status == WA_SENT)
		r->message_status = wa_get_str(rec, "message_status");
	if (wa_get_int(rec, "attempts", &n) == 0 && n >= 0 && n < 1000)
		r->attempts = (int)n;
	if (wa_get_int(rec, "duration_ms", &n) == 0)
		r->duration_ms = (long)n;
	if (r->status == WA_SENT)
		return 0;
	r->error.code = wa_get_str(err, "code");
	r->error.cls = wa_class_parse(wa_get_str(err, "class"));
	snprintf(r->error.message, sizeof r->error.message, "%s",
	    wa_get_str(err, "message") ? wa_get_str(err, "message") : "");
	wa_utf8_trim(r->error.message); /* a long one is cut mid-character */
	if (wa_get_int(err, "http_status", &n) == 0)
		r->error.http_status = (long)n;
	if (YAJL_IS_STRING(pc) || YAJL_IS_NUMBER(pc)) {
		snprintf(r->error.provider_code, sizeof r->error.provider_code, "%s",
		    YAJL_IS_STRING(pc) ? pc->u.string : pc->u.number.r);
		r->error.provider_code_num = YAJL_IS_NUMBER(pc);
	}
	st = wa_get_str(err, "scope");
	r->error.scope = !st ? WA_SCOPE_RECIPIENT : strcmp(st, "template") == 0 ?
	    WA_SCOPE_TEMPLATE : strcmp(st, "params") == 0 ? WA_SCOPE_PARAMS :
	    WA_SCOPE_RECIPIENT;
	r->error.halt = YAJL_IS_TRUE(wa_get(err, "halt"));
	r->error.throttle = YAJL_IS_TRUE(wa_get(err, "throttle"));
	if (wa_get_int(err, "retry_after", &n) == 0 && n > 0 && n <= 86400 * 7)
		r->error.defer_s = (double)n;
	if (r->error.cls == WA_CLASS_FATAL && wa_error_unreached(r->error.code))
		r->unreached = r->attempts;
	return 0;
}
