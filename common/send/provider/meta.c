/* meta.c: Meta's WhatsApp Cloud API (providers.md §2).
 *
 * POST {base}/{version}/{phone-number-id}/messages with a Bearer token.
 * `to` is the JID's digits, never a JID; an @lid address cannot be reached
 * through Meta at all. Media goes by link only. Errors are classified by
 * Meta's `code` first, then by the HTTP status.
 *
 * Readiness: GET {base}/{version}/{phone-number-id}. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wa_cli.h"
#include "base/wa_utf8.h"
#include "net/wa_url.h"
#include "record/wa_rec.h"
#include "send/provider/provider.h"

/* Meta refuses longer text bodies and captions (characters, not bytes). */
#define WA_META_TEXT_MAX 4096
#define WA_META_CAPTION_MAX 1024

/* A sender's settings, built from the config once. */
struct meta {
	char *url;                 /* …/{version}/{id}/messages */
	struct curl_slist *hdr;
	const char *missing;       /* NULL, or the setting Meta lacks */
};

/* Meta's error codes: the one table that classifies them (wa.7 shows it).
 * Keyed on `code`; a code not here goes by the HTTP status (by_status).
 * fatal: nothing can be sent from this account or number now; the run
 * stops. scope: the template (or its shared parameters) is unusable for
 * everyone, so a broadcast stops after the first (see wa_scope). */
#define MC_THROTTLE 1  /* over the number's throughput: slow down */
#define MC_PAIR 2      /* this recipient too often: wait for them alone */

static const struct meta_code {
	long code;
	const char *name;
	enum wa_class cls;
	enum wa_scope scope;
	unsigned flags;
	const char *meaning;  /* Meta's, in short */
} meta_codes[] = {
	/* not accepted, try again later */
	{ 1, "temporary_error", WA_CLASS_RETRYABLE, 0, 0, "API unknown error" },
	{ 2, "temporary_error", WA_CLASS_RETRYABLE, 0, 0, "API service temporarily unavailable" },
	{ 4, "app_rate_limit", WA_CLASS_RETRYABLE, 0, 0, "too many API calls by the app" },
	{ 80007, "rate_limit", WA_CLASS_RETRYABLE, 0, 0, "the business account's rate limit" },
	{ 130429, "throughput_limit", WA_CLASS_RETRYABLE, 0, MC_THROTTLE,
	  "the number's message throughput reached" },
	{ 131056, "pair_rate_limit", WA_CLASS_RETRYABLE, 0, MC_PAIR,
	  "too many messages to this recipient (about 1 per 6 s)" },
	{ 131057, "account_upgrading", WA_CLASS_RETRYABLE, 0, 0, "the account is in maintenance" },
	/* never for this recipient */
	{ 100, "bad_parameter", WA_CLASS_PERMANENT, 0, 0, "invalid parameter" },
	{ 131008, "bad_parameter", WA_CLASS_PERMANENT, 0, 0, "a required parameter is missing" },
	{ 131009, "bad_parameter", WA_CLASS_PERMANENT, 0, 0, "a parameter value is not valid" },
	{ 131021, "recipient_is_sender", WA_CLASS_PERMANENT, 0, 0, "sender and recipient are the same number" },
	{ 131026, "undeliverable", WA_CLASS_PERMANENT, 0, 0, "not on WhatsApp, or cannot receive it" },
	{ 131047, "window_closed", WA_CLASS_PERMANENT, 0, 0, "24 hours since the user last wrote: only a template" },
	{ 131049, "not_delivered", WA_CLASS_PERMANENT, 0, 0, "not delivered, to keep the ecosystem healthy" },
	{ 131050, "marketing_opted_out", WA_CLASS_PERMANENT, 0, 0, "the user stopped marketing messages" },
	{ 131051, "unsupported_type", WA_CLASS_PERMANENT, 0, 0, "unsupported message type" },
	{ 131052, "media_download_failed", WA_CLASS_PERMANENT, 0, 0, "the user's media could not be downloaded" },
	{ 131053, "media_upload_failed", WA_CLASS_PERMANENT, 0, 0, "the media could not be uploaded" },
	{ 132005, "template_text_too_long", WA_CLASS_PERMANENT, 0, 0, "the filled-in template text is too long" },
	{ 132007, "template_policy", WA_CLASS_PERMANENT, 0, 0, "the template's content breaks a format policy" },
	{ 135000, "generic_user_error", WA_CLASS_PERMANENT, 0, 0, "unknown error in the request's parameters" },
	/* the template, for everyone who gets it */
	{ 132000, "template_params", WA_CLASS_PERMANENT, WA_SCOPE_PARAMS, 0,
	  "the number of parameters does not match the template" },
	{ 132012, "template_params", WA_CLASS_PERMANENT, WA_SCOPE_PARAMS, 0,
	  "a parameter's format does not match the template" },
	{ 132001, "template_missing", WA_CLASS_PERMANENT, WA_SCOPE_TEMPLATE, 0,
	  "no such template in that language" },
	{ 132015, "template_paused", WA_CLASS_PERMANENT, WA_SCOPE_TEMPLATE, 0,
	  "the template is paused for low quality" },
	{ 132016, "template_disabled", WA_CLASS_PERMANENT, WA_SCOPE_TEMPLATE, 0,
	  "the template is disabled" },
	/* nothing can be sent: stop */
	{ 3, "capability_denied", WA_CLASS_FATAL, 0, 0, "the app lacks the capability or permission" },
	{ 10, "permission_denied", WA_CLASS_FATAL, 0, 0, "permission not granted or removed" },
	{ 190, "token_rejected", WA_CLASS_FATAL, 0, 0, "the access token expired or is invalid" },
	{ 368, "policy_blocked", WA_CLASS_FATAL, 0, 0, "temporarily blocked for policy violations" },
	{ 131031, "account_locked", WA_CLASS_FATAL, 0, 0, "the business account is locked" },
	{ 131042, "payment_issue", WA_CLASS_FATAL, 0, 0, "a payment or eligibility problem of the business" },
	{ 131045, "registration_error", WA_CLASS_FATAL, 0, 0, "the number's certificate or registration is wrong" },
	{ 131048, "spam_rate_limit", WA_CLASS_FATAL, 0, 0, "sending restricted: too many messages marked spam" },
	{ 133010, "number_not_registered", WA_CLASS_FATAL, 0, 0, "the phone number is not registered on the Cloud API" },
};

/* Pair rate limit: "about one message per 6 s to the same user". */
#define META_PAIR_WAIT_S 6.0

static const struct meta_code *
find_code(long code)
{
	static const struct meta_code perm = { 0, "permission_denied",
		WA_CLASS_FATAL, 0, 0, "API permission (200-299)" };
	size_t i;

	for (i = 0; i < sizeof meta_codes / sizeof meta_codes[0]; i++)
		if (meta_codes[i].code == code)
			return &meta_codes[i];
	if (code >= 200 && code <= 299)
		return &perm;
	return NULL;
}

/* --- requests ---------------------------------------------------------- */

static void
gen_head(yajl_gen g, const char *digits, const char *type)
{
	yajl_gen_map_open(g);
	wa_gen_kv(g, "messaging_product", "whatsapp");
	wa_gen_kv(g, "recipient_type", "individual");
	wa_gen_kv(g, "to", digits);
	wa_gen_kv(g, "type", type);
	yajl_gen_string(g, (const unsigned char *)type, strlen(type));
	yajl_gen_map_open(g);
}

static int
check_msg(const struct wa_msg *m, struct wa_error *e)
{
	static const char *const types[] = { "image", "video", "audio", "document" };
	size_t i;

	switch (m->kind) {
	case WA_MSG_TEXT:
		if (!m->text || !*m->text)
			wa_error_set(e, "missing_text", WA_CLASS_PERMANENT, "empty text");
		else if (wa_utf8_len(m->text) > WA_META_TEXT_MAX)
			wa_error_set(e, "text_too_long", WA_CLASS_PERMANENT,
			    "text longer than Meta's %d characters", WA_META_TEXT_MAX);
		else
			return 0;
		return -1;
	case WA_MSG_TEMPLATE:
		if (!m->tpl.name || !*m->tpl.name || !m->tpl.language || !*m->tpl.language) {
			wa_error_set(e, "bad_template", WA_CLASS_PERMANENT,
			    "a template needs a name and a language");
			return -1;
		}
		if (m->tpl.components && !YAJL_IS_ARRAY(m->tpl.components)) {
			wa_error_set(e, "bad_template", WA_CLASS_PERMANENT,
			    "template components must be an array");
			return -1;
		}
		return 0;
	case WA_MSG_MEDIA:
		for (i = 0; m->media.type && i < 4; i++)
			if (strcmp(m->media.type, types[i]) == 0)
				break;
		if (!m->media.type || i == 4)
			wa_error_set(e, "bad_media", WA_CLASS_PERMANENT,
			    "media.type must be image, video, audio or document");
		else if (!m->media.url)
			wa_error_set(e, "unsupported", WA_CLASS_PERMANENT,
			    "Meta takes media by link: give media.url, not media.path");
		/* Audio carries no caption (gen_body leaves it out), so only
		 * a caption that would be sent can be too long. */
		else if (m->media.caption && strcmp(m->media.type, "audio") != 0 &&
		    wa_utf8_len(m->media.caption) > WA_META_CAPTION_MAX)
			wa_error_set(e, "caption_too_long", WA_CLASS_PERMANENT,
			    "caption longer than Meta's %d characters", WA_META_CAPTION_MAX);
		else
			return 0;
		return -1;
	}
	return -1;
}

static void
gen_body(yajl_gen g, const struct wa_msg *m)
{
	switch (m->kind) {
	case WA_MSG_TEXT:
		/* Only when asked for: without it, the body is as it always was. */
		if (m->preview_url) {
			yajl_gen_string(g, (const unsigned char *)"preview_url", 11);
			yajl_gen_bool(g, 1);
		}
		wa_gen_kv(g, "body", m->text);
		break;
	case WA_MSG_TEMPLATE:
		wa_gen_kv(g, "name", m->tpl.name);
		yajl_gen_string(g, (const unsigned char *)"language", 8);
		yajl_gen_map_open(g);
		wa_gen_kv(g, "code", m->tpl.language);
		yajl_gen_map_close(g);
		if (m->tpl.components) {
			yajl_gen_string(g, (const unsigned char *)"components", 10);
			wa_gen_val(g, m->tpl.components);
		}
		break;
	case WA_MSG_MEDIA:
		wa_gen_kv(g, "link", m->media.url);
		if (m->media.caption && strcmp(m->media.type, "audio") != 0)
			wa_gen_kv(g, "caption", m->media.caption);
		if (m->media.filename && strcmp(m->media.type, "document") == 0)
			wa_gen_kv(g, "filename", m->media.filename);
		break;
	}
}

static int
build(void *state, const struct wa_msg *m, const char *key, struct wa_req *rq,
    struct wa_error *e)
{
	struct meta *pv = state;
	const char *type = m->kind == WA_MSG_TEXT ? "text" :
	    m->kind == WA_MSG_TEMPLATE ? "template" : m->media.type;
	char digits[32];
	yajl_gen g;
	int kind;

	memset(rq, 0, sizeof *rq);
	rq->url = pv->url;
	rq->headers = pv->hdr;
	kind = wa_jid_kind(m->jid, digits, sizeof digits);
	if (kind == 2) {
		wa_error_set(e, "unsupported_jid", WA_CLASS_PERMANENT,
		    "Meta's API cannot send to an @lid address");
		return -1;
	}
	if (kind != 1) {
		wa_error_set(e, "invalid_jid", WA_CLASS_PERMANENT,
		    "not a person's WhatsApp address: %.80s", m->jid ? m->jid : "(none)");
		return -1;
	}
	if (pv->missing) {
		wa_error_set(e, "not_configured", WA_CLASS_FATAL,
		    "Meta is not configured: %s is not set", pv->missing);
		return -1;
	}
	if (check_msg(m, e) != 0)
		return -1;
	g = yajl_gen_alloc(NULL);
	if (!g)
		goto nomem;
	gen_head(g, digits, type);
	gen_body(g, m);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rq->head = wa_gen_take(g, &rq->head_len);
	yajl_gen_free(g);
	rq->media = m->kind == WA_MSG_MEDIA;
	if (rq->head)
		return 0;
nomem:
	wa_error_set(e, "no_memory", WA_CLASS_FATAL, "out of memory");
	return -1;
}

/* --- answers ----------------------------------------------------------- */

static void
by_status(long st, struct wa_error *e)
{
	if (st == 401)
		wa_error_set(e, "token_rejected", WA_CLASS_FATAL, "Meta rejected the access token (HTTP 401)");
	else if (st == 403)
		wa_error_set(e, "permission_denied", WA_CLASS_FATAL, "Meta refused: no permission (HTTP 403)");
	else if (st == 429) {
		wa_error_set(e, "rate_limited", WA_CLASS_RETRYABLE, "Meta asked to slow down (HTTP 429)");
		e->throttle = 1;
	}
	else if (st >= 500)
		wa_error_set(e, "server_error", WA_CLASS_RETRYABLE, "Meta failed (HTTP %ld)", st);
	else if (st >= 400)
		wa_error_set(e, "rejected", WA_CLASS_PERMANENT, "Meta refused the message (HTTP %ld)", st);
	else
		wa_error_set(e, "bad_response", WA_CLASS_AMBIGUOUS, "unexpected answer from Meta (HTTP %ld)", st);
}

static void
classify_error(long st, yajl_val v, struct wa_error *e)
{
	yajl_val err = wa_get(v, "error");
	const char *msg = wa_get_str(err, "message");
	const char *details = wa_get_str(wa_get(err, "error_data"), "details");
	const struct meta_code *mc = NULL;
	long long code;

	int has_code = wa_get_int(err, "code", &code) == 0;

	if (has_code)
		mc = find_code((long)code);
	if (mc) {
		wa_error_set(e, mc->name, mc->cls, "Meta error %lld: %s", code,
		    mc->meaning);
		e->scope = mc->scope;
		e->throttle = (mc->flags & MC_THROTTLE) != 0;
		if (mc->flags & MC_PAIR)
			e->backoff_s = META_PAIR_WAIT_S;
	} else
		by_status(st, e);
	if (has_code)
		snprintf(e->provider_code, sizeof e->provider_code, "%lld", code);
	if (msg) {
		char m[sizeof e->message];

		snprintf(m, sizeof m, "%s%s%s", msg, details ? ": " : "",
		    details ? details : "");
		m[strcspn(m, "\r\n")] = '\0';
		wa_utf8_trim(m);
		if (m[0])
			memcpy(e->message, m, sizeof m);
	}
	e->provider_code_num = e->provider_code[0] != '\0';
	e->http_status = st;
}

static int
answer(const struct wa_http_res *res, struct wa_accepted *acc, struct wa_error *e)
{
	yajl_val v = wa_json_parse(res->body, NULL, 0);
	yajl_val msgs = wa_get(v, "messages");
	const char *mid = NULL, *ms = NULL;

	if (YAJL_IS_ARRAY(msgs) && msgs->u.array.len > 0) {
		mid = wa_get_str(msgs->u.array.values[0], "id");
		ms = wa_get_str(msgs->u.array.values[0], "message_status");
	}
	if (res->status >= 200 && res->status < 300 && mid) {
		snprintf(acc->id, sizeof acc->id, "%s", mid);
		wa_utf8_trim(acc->id);
		/* held_for_quality_assessment: taken, but Meta may not deliver
		 * it; the caller keeps the word to tell it from accepted. */
		if (ms && *ms) {
			snprintf(acc->status, sizeof acc->status, "%s", ms);
			wa_utf8_trim(acc->status);
		}
		wa_val_free(v);
		return 1;
	}
	if (res->status >= 200 && res->status < 300) {
		wa_error_set(e, "bad_response", WA_CLASS_AMBIGUOUS,
		    "Meta answered %ld without a message id", res->status);
		e->http_status = res->status;
	} else
		classify_error(res->status, v, e);
	wa_val_free(v);
	return 0;
}

/* --- readiness --------------------------------------------------------- */

/* The first of the settings every request needs that is not set, or NULL. */
static const char *
missing(const struct wa_cfg *cfg)
{
	return !wa_cfg_get(cfg, WA_CFG_META_TOKEN) ? "META_WA_ACCESS_TOKEN" :
	    !wa_cfg_get(cfg, WA_CFG_META_PHONE_ID) ? "META_WA_PHONE_NUMBER_ID" : NULL;
}

static int
ready_req(const struct wa_cfg *cfg, long long business_id, char **url,
    struct curl_slist **hdr, char *reason, size_t len)
{
	const char *parts[] = { wa_cfg_get(cfg, WA_CFG_META_VERSION),
		wa_cfg_get(cfg, WA_CFG_META_PHONE_ID), NULL };
	const char *token = wa_cfg_get(cfg, WA_CFG_META_TOKEN);

	if (missing(cfg)) {
		snprintf(reason, len, "%s is not set", missing(cfg));
		return WA_EXIT_CONFIG;
	}
	*url = wa_url_join(wa_cfg_get(cfg, WA_CFG_META_BASE_URL), parts);
	*hdr = wa_header_add(NULL, "Authorization", "Bearer ", token);
	if (*hdr)
		*hdr = wa_header_add(*hdr, "Accept", "", "application/json");
	if (!*url || !*hdr) {
		free(*url);
		curl_slist_free_all(*hdr);
		return WA_EXIT_SOFTWARE;
	}
	return WA_EXIT_OK;
}

static int
ready_answer(long status, yajl_val v, struct wa_ready *out)
{
	yajl_val err = wa_get(v, "error");
	const char *name = wa_get_str(v, "verified_name");
	long long code = 0;

	if (status == 200 && YAJL_IS_OBJECT(v) && !err) {
		out->ready = 1;
		snprintf(out->reason, sizeof out->reason, "%s",
		    name ? name : wa_get_str(v, "display_phone_number") ?
		    wa_get_str(v, "display_phone_number") : "ok");
		return WA_EXIT_OK;
	}
	wa_get_int(err, "code", &code);
	snprintf(out->reason, sizeof out->reason, "Meta refused (HTTP %ld, code %lld): %s",
	    status, code, wa_get_str(err, "message") ? wa_get_str(err, "message") : "no message");
	out->reason[strcspn(out->reason, "\r\n")] = '\0';
	return WA_EXIT_UNAVAIL;
}

/* --- settings ---------------------------------------------------------- */

static int
token_ok(const char *s, int digits_only)
{
	for (; *s; s++)
		if (digits_only ? !isdigit((unsigned char)*s) :
		    !(isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static void
fini(void *state)
{
	struct meta *pv = state;

	if (!pv)
		return;
	free(pv->url);
	curl_slist_free_all(pv->hdr);
	free(pv);
}

static void *
init(const struct wa_cfg *cfg, char *err, size_t errlen)
{
	const char *token = wa_cfg_get(cfg, WA_CFG_META_TOKEN);
	const char *id = wa_cfg_get(cfg, WA_CFG_META_PHONE_ID);
	const char *ver = wa_cfg_get(cfg, WA_CFG_META_VERSION);
	const char *parts[] = { ver, id, "messages", NULL };
	struct meta *pv = calloc(1, sizeof *pv);

	if (!pv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pv->missing = missing(cfg);
	if (pv->missing)
		return pv;
	if (!token_ok(id, 1) || !token_ok(ver, 0) || !wa_url_http(wa_cfg_get(cfg, WA_CFG_META_BASE_URL))) {
		snprintf(err, errlen, "%s", !token_ok(id, 1) ? "META_WA_PHONE_NUMBER_ID: not a number" :
		    !token_ok(ver, 0) ? "META_WA_API_VERSION: not a version like v21.0" :
		    "META_WA_BASE_URL: not an http:// or https:// URL");
		fini(pv);
		return NULL;
	}
	pv->url = wa_url_join(wa_cfg_get(cfg, WA_CFG_META_BASE_URL), parts);
	pv->hdr = wa_headers_json_post("Authorization", "Bearer ", token, 0);
	if (!pv->url || !pv->hdr) {
		snprintf(err, errlen, "out of memory");
		fini(pv);
		return NULL;
	}
	return pv;
}

const struct wa_provider_ops wa_meta_ops = {
	.name = "meta",
	.title = "Meta",
	.init = init,
	.fini = fini,
	.build = build,
	.release = NULL,
	.answer = answer,
	.ready_req = ready_req,
	.ready_answer = ready_answer,
};
