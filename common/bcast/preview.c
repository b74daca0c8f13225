/* preview.c: the first messages of a broadcast exactly as they would be
 * sent, built the way run builds them (bc_recipient_record, then
 * wa_msg_content), from a plain SELECT: nothing is claimed, locked or
 * written, so looking never leaves a recipient claimed or for review. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"
#include "send/wa_message.h"
#include "send/wa_send.h"

/* One recipient's record: its address, then its message or why it has
 * none. */
static yajl_val
preview_record(const struct bc_bcast *b, struct bc_recip *r, yajl_val proto,
    const struct wa_norm_opts *norm, const char *provider)
{
	yajl_val rec = bc_recipient_record(b, r, proto, 0), out = wa_new_object();
	struct wa_msg m;
	struct wa_msg_own own;
	struct wa_error e;
	struct bc_outcome bad;

	memset(&m, 0, sizeof m);
	memset(&own, 0, sizeof own);
	memset(&e, 0, sizeof e);
	wa_set_int(out, "recipient_id", r->id);
	wa_set_str(out, "phone", r->phone);
	if (bc_fill_jid(norm, r, &bad) != 0)
		wa_error_set(&e, bad.code, WA_CLASS_PERMANENT, "%s", bad.message);
	if (r->jid[0])
		wa_set_str(out, "jid", r->jid);
	else
		wa_set_null(out, "jid");
	wa_set_str(out, "provider", provider);
	if (!e.code && rec) {
		if (wa_get(rec, "jid"))
			wa_set_str(rec, "jid", r->jid);
		if (wa_msg_content(&m, &own, rec, NULL, &e) == 0)
			wa_set(out, "message", wa_msg_json(&m));
	} else if (!e.code)
		wa_error_set(&e, "no_memory", WA_CLASS_PERMANENT, "out of memory");
	if (e.code) {
		wa_set_str(out, "status", "failed");
		wa_set_failed(out, e.code, e.message);
	}
	wa_msg_own_free(&own);
	wa_val_free(rec);
	return out;
}

int
wa_bcast_preview(const struct wa_bcast_run_opts *o, long long id, long long n)
{
	static const char sql[] =
	    "SELECT id, phone, jid, coalesce(attempts, 0), lead_id, fields::text"
	    " FROM whatsapp_broadcast_recipients"
	    " WHERE broadcast_id = $1 AND status = 'queued' ORDER BY id LIMIT $2";
	struct bc_db d = { .conn = *o->db, .url = o->db_url };
	struct bc_bcast b;
	struct bc_recip r;
	struct wa_norm_opts norm;
	yajl_val proto = NULL, rec;
	char k1[32], k2[32], msg[256];
	const char *v[2];
	PGresult *res = NULL;
	int st, i, prov, failed = 0, rc = WA_EXIT_OK;

	st = bc_load(&d, id, &b);
	if (st <= 0) {
		if (st == 0)
			wa_err("broadcast %lld: no such broadcast", id);
		else
			wa_err("%s", d.err);
		return st == 0 ? WA_EXIT_DATA : d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	rc = bc_provider_of(o->cfg, b.business_id, &prov, msg, sizeof msg);
	if (rc != WA_EXIT_OK) {
		wa_err("%s", msg);
		goto out;
	}
	proto = wa_new_object();
	if (bc_message(&b, proto, msg, sizeof msg) != 0) {
		wa_err("broadcast_id=%lld: %s", id, msg);
		rc = WA_EXIT_DATA;
		goto out;
	}
	wa_norm_init(&norm, b.region, NULL, 0);
	v[0] = bc_ll(k1, sizeof k1, id);
	v[1] = bc_ll(k2, sizeof k2, n);
	res = bc_q(&d, sql, 2, v);
	if (!res) {
		wa_err("broadcast_id=%lld: %s", id, d.err);
		rc = d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		goto out;
	}
	for (i = 0; i < PQntuples(res) && rc == WA_EXIT_OK; i++) {
		bc_recip_read(res, i, &r);
		rec = preview_record(&b, &r, proto, &norm,
		    wa_provider_name((enum wa_provider)prov));
		wa_val_free(r.fields);
		failed |= wa_is_failed(rec);
		if (o->emit(o->arg, rec) != 0)
			rc = WA_EXIT_IO;
		wa_val_free(rec);
	}
	if (rc == WA_EXIT_OK && failed)
		rc = WA_EXIT_FAILED;
out:
	PQclear(res);
	wa_val_free(proto);
	bc_bcast_free(&b);
	*o->db = d.conn;
	return rc;
}
