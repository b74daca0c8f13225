/* wa_norm.h: a phone number or WhatsApp address in, E.164 and a JID out.
 * The one normalization every program uses (wa-normalize, wa-send,
 * wa-broadcast create). */
#ifndef WA_NORM_H
#define WA_NORM_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

struct wa_norm_opts {
	const char *field; /* take the number from here; NULL: to, phone, jid */
	char region[4];    /* read national numbers here; "" none */
	int strict;        /* fail numbers that are possible but not valid */
};

enum wa_addr_kind { WA_ADDR_PHONE, WA_ADDR_LID };

struct wa_addr {
	enum wa_addr_kind kind;
	char phone[24];     /* "+972501234567"; "" for @lid */
	char jid[128];      /* "972501234567@s.whatsapp.net" or "…@lid" */
	char region[4];     /* "IL"; "" when unknown */
	int valid;          /* IsValidNumber */
	const char *source; /* the field the number came from */
	char input[128];    /* its text as given (cut to fit), for logs */
};

/* Set opts from the --region value or, if NULL, WA_DEFAULT_REGION.
 * -1 when the region is not one libphonenumber knows. */
int wa_norm_init(struct wa_norm_opts *o, const char *region, const char *field,
    int strict);

/* Normalize one address text. 0 on success; otherwise -1 with *code set to
 * "invalid_phone" or "unsupported_jid" and msg filled. */
int wa_norm_text(const struct wa_norm_opts *o, const char *text,
    struct wa_addr *a, const char **code, char *msg, size_t msglen);

/* Normalize obj in place: add phone, jid, region, valid and source, or mark
 * it failed ("status":"failed","error":{…}) with invalid_phone,
 * unsupported_jid or missing_phone. 0 on success, -1 when marked failed. */
int wa_norm_record(const struct wa_norm_opts *o, yajl_val obj, struct wa_addr *a);

struct wa_rec;
/* wa_norm_record on a record as read: the number from the field its input
 * named (rec->field: a CSV file's number column) when there is one, else
 * as o says. */
int wa_norm_rec(const struct wa_norm_opts *o, const struct wa_rec *rec,
    struct wa_addr *a);

/* The JID's digits: "972501234567" (for logs and for Meta's "to"). */
size_t wa_jid_user(const char *jid, char *out, size_t outlen);

#endif
