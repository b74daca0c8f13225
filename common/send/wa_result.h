/* wa_result.h: a send's result as the fields of a record, and back: the
 * one encoding wa-send writes after each record and wa-broadcast mark
 * reads, so that a pipeline records exactly what run records.
 *
 *   "status":"sent"|"failed", "provider", "message_id", when sent and the
 *   provider said so "message_status" (Meta: accepted,
 *   held_for_quality_assessment), "attempts", "duration_ms", and on
 *   failure "error":{"code","message","class","http_status","provider_code"}
 *   with, when they apply, "scope" ("template", "params"), "halt" (true:
 *   the broadcast stops), "throttle" (true: refused for the sender's pace)
 *   and "retry_after" (seconds: it may go again then). */
#ifndef WA_RESULT_H
#define WA_RESULT_H

#include <yajl/yajl_tree.h>

#include "record/wa_rec.h"
#include "send/wa_send.h"

#define WA_RESULT_NFIELDS 7

/* The fields, written with the record (wa_writer_put_fields) without
 * touching its tree. */
struct wa_result_rec {
	struct wa_field f[WA_RESULT_NFIELDS];
	yajl_val error;  /* owned */
};

/* sent, or failed with e; provider and msgid may be NULL. */
void wa_result_fields(struct wa_result_rec *rr, int sent, const char *provider,
    const char *msgid, int attempts, long duration_ms, const struct wa_error *e);
/* The provider's word on a sent message (NULL: none, and a record's own
 * message_status is left out, as it is not this send's). */
void wa_result_message_status(struct wa_result_rec *rr, const char *s);
void wa_result_rec_free(struct wa_result_rec *rr);

/* Read the result fields of rec into r (strings borrowed from rec, the
 * error's message copied). A fatal error whose code says the provider was
 * not reached counts all its attempts unreached, as the sender did.
 * 0, or -1 when rec carries no status. */
int wa_result_read(yajl_val rec, struct wa_result *r);

/* "retryable" … into c; WA_CLASS_NONE for anything else. */
enum wa_class wa_class_parse(const char *s);

#endif
