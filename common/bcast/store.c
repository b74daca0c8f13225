/* bc_store.c: creating a broadcast: the row, then its recipients streamed
 * in from records, all in one transaction.
 *
 * Recipients are gathered a chunk at a time as COPY text rows, copied into
 * a staging table (temporary, dropped at commit), and inserted from there
 * by one INSERT ... SELECT ... ON CONFLICT (broadcast_id, phone) DO NOTHING
 * per chunk: the database drops a number already stored for this
 * broadcast (in this chunk or an earlier one), and the difference between
 * rows copied and rows inserted is the duplicate count. The insert runs on
 * the server while the next chunk is read and checked here. Memory holds
 * one chunk, however long the list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "base/wa_cli.h"
#include "db/wa_db.h"
#include "phone/wa_norm.h"
#include "record/wa_rec.h"
#include "record/wa_render.h"
#include "send/wa_message.h"

/* A chunk: so many rows, or fewer when their text grows past CHUNK_BYTES. */
#define CHUNK 20000
#define CHUNK_BYTES (4 << 20)

struct store {
	struct bc_db *d;
	long long bid, business_id;
	const char *field;   /* --field: an address field, not stored */
	const char *col;     /* the record's number column (CSV), not stored */
	struct bc_bcast b;   /* the message, as run will read it back */
	yajl_val proto;      /* its fields in a record (bc_message) */
	int render;          /* the message has placeholders */
	struct wa_buf rows;  /* the chunk, COPY text */
	int nrows;
	int staged;          /* the staging table exists */
	int pending;         /* an insert of copied rows is running */
	long long copied;    /* the rows it inserts from */
	long long seq;       /* input order, kept in recipient ids */
	long long total, invalid, dups;
	long long opted;     /* stored cancelled: opted out */
};

/* Wait for the running insert and count what it stored; empty the
 * staging table for the next chunk. */
static int
finish_insert(struct store *s)
{
	PGresult *r;
	long long ins;

	if (!s->pending)
		return 0;
	s->pending = 0;
	r = bc_result(s->d);
	if (!r)
		return -1;
	ins = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	s->invalid += strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	s->opted += strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	PQclear(r);
	s->total += ins;
	s->dups += s->copied - ins;
	return bc_cmd(s->d, "TRUNCATE pg_temp.bc_recipients_in", 0, NULL);
}

/* Copy the chunk into the staging table and start inserting it. */
static int
flush_rows(struct store *s)
{
	/* A good number the business's opt-outs hold is stored cancelled,
	 * opted_out: it stays in the list (a duplicate of it is still one),
	 * and is never claimed. */
	static const char sql[] =
	    "WITH y AS (SELECT x.*, (x.c IS NULL AND o.number IS NOT NULL) AS opted"
	    "  FROM pg_temp.bc_recipients_in x LEFT JOIN wa_optouts o"
	    "  ON o.business_id = $2 AND o.number = x.p),"
	    " ins AS (INSERT INTO whatsapp_broadcast_recipients"
	    "  (broadcast_id, business_id, phone, jid, lead_id, status,"
	    "   error_code, error_class, error_message, attempts, fields)"
	    "  SELECT $1, $2, p, j, l,"
	    "   CASE WHEN c IS NOT NULL THEN 'failed' WHEN opted THEN 'cancelled'"
	    "    ELSE 'queued' END,"
	    "   CASE WHEN opted THEN 'opted_out' ELSE c END,"
	    "   CASE WHEN c IS NULL THEN NULL ELSE 'permanent' END,"
	    "   CASE WHEN opted THEN 'the number is in the business''s opt-outs'"
	    "    ELSE m END, 0, f"
	    "  FROM y ORDER BY n"
	    "  ON CONFLICT (broadcast_id, phone) DO NOTHING RETURNING status)"
	    " SELECT count(*), count(*) FILTER (WHERE status = 'failed'),"
	    " count(*) FILTER (WHERE status = 'cancelled') FROM ins";
	char b1[32], b2[32];
	const char *v[2];
	PGresult *r;

	if (finish_insert(s) != 0)
		return -1;
	if (s->nrows == 0)
		return 0;
	if (s->rows.oom) {
		snprintf(s->d->err, sizeof s->d->err, "out of memory");
		return -1;
	}
	if (!s->staged) {
		if (bc_cmd(s->d, "CREATE TEMPORARY TABLE bc_recipients_in"
		    " (n bigint, p text, j text, l bigint, c text, m text, f jsonb)"
		    " ON COMMIT DROP", 0, NULL) != 0)
			return -1;
		s->staged = 1;
	}
	r = bc_copy_in(s->d, "COPY pg_temp.bc_recipients_in FROM STDIN", &s->rows);
	if (!r)
		return -1;
	PQclear(r);
	v[0] = bc_ll(b1, sizeof b1, s->bid);
	v[1] = bc_ll(b2, sizeof b2, s->business_id);
	if (bc_send(s->d, sql, 2, v) != 0)
		return -1;
	s->pending = 1;
	s->copied = s->nrows;
	wa_buf_reset(&s->rows);
	s->nrows = 0;
	return 0;
}

/* Queue one row: phone is the key (E.164, or the address as given when it
 * is not valid), code NULL for a good number. */
static int
add_row(struct store *s, const char *phone, const char *jid, yajl_val lead,
    const char *code, const char *msg, const char *fields)
{
	char n[32], l[32];
	const char *v[7] = { bc_ll(n, sizeof n, ++s->seq), phone, jid, NULL,
		code, code ? (msg ? msg : "") : NULL, fields };
	long long lid;

	/* lead_id is an INTEGER: a value that does not fit is not a lead. */
	if (lead && YAJL_IS_INTEGER(lead)) {
		lid = YAJL_GET_INTEGER(lead);
		if (lid > 0 && lid <= 2147483647)
			v[3] = bc_ll(l, sizeof l, lid);
	}
	wa_db_copy_row(&s->rows, 7, v);
	if (++s->nrows >= CHUNK || s->rows.len >= CHUNK_BYTES)
		return flush_rows(s);
	return 0;
}

/* The key of a recipient that has no usable number: the address as given,
 * or where the record was when it had none. Cut to the phone column's 32. */
static void
bad_key(const struct wa_rec *rec, const struct wa_addr *a, char *key,
    size_t len)
{
	if (a && a->input[0])
		snprintf(key, len, "%s", a->input);
	else
		snprintf(key, len, "%.20s:%lu", rec->file ? rec->file : "-",
		    rec->line);
	bc_utf8_cut(key, 32);
}

/* The record's fields that are stored: all but the address fields,
 * lead_id and the names a send record sets itself. NULL when none. */
static yajl_val
own_fields(const struct store *s, yajl_val obj)
{
	yajl_val f = NULL;
	size_t i;
	const char *k;

	for (i = 0; i < obj->u.object.len; i++) {
		k = obj->u.object.keys[i];
		if (bc_reserved_field(k) || (s->field && strcmp(k, s->field) == 0) ||
		    (s->col && strcmp(k, s->col) == 0))
			continue;
		if (!f && !(f = wa_new_object()))
			return NULL;
		wa_set(f, k, wa_val_copy(obj->u.object.values[i]));
	}
	return f;
}

/* Would the message render for this recipient? NULL when it would, else
 * the reason (into msg): a field it needs is missing. */
static const char *
unrenderable(struct store *s, const struct bc_recip *r, char *msg, size_t len)
{
	struct wa_msg m;
	struct wa_msg_own own;
	struct wa_error e;
	yajl_val rec;
	int rc;

	rec = bc_recipient_record(&s->b, r, s->proto, 0);
	memset(&m, 0, sizeof m);
	rc = rec ? wa_msg_content(&m, &own, rec, NULL, &e) : 0;
	wa_msg_own_free(&own);
	wa_val_free(rec);
	if (rc == 0)
		return NULL;
	snprintf(msg, len, "%s", e.message);
	return e.code;
}

/* A recipient with a usable address: stored queued with its fields, or
 * failed when they are too large or lack what the message needs. */
static int
add_good(struct store *s, const struct wa_rec *rec, const char *key,
    const char *jid)
{
	struct bc_recip r;
	yajl_val lead = wa_get(rec->obj, "lead_id");
	char *fj = NULL, msg[256];
	const char *code = NULL;
	size_t n = 0;
	int rc;

	memset(&r, 0, sizeof r);
	r.id = s->seq + 1;
	/* key is at most 32 bytes (add_record), a JID at most the reader's */
	bc_copy(r.phone, sizeof r.phone, key);
	bc_copy(r.jid, sizeof r.jid, jid);
	if (lead && YAJL_IS_INTEGER(lead) && YAJL_GET_INTEGER(lead) > 0 &&
	    YAJL_GET_INTEGER(lead) <= 2147483647)
		r.lead_id = YAJL_GET_INTEGER(lead);
	r.fields = own_fields(s, rec->obj);
	if (r.fields && !(fj = wa_json_dump(r.fields, &n))) {
		wa_val_free(r.fields);
		snprintf(s->d->err, sizeof s->d->err, "out of memory");
		return -1;
	}
	if (n > BC_FIELDS_MAX) {
		code = "fields_too_large";
		snprintf(msg, sizeof msg, "the record's fields take %zu bytes of "
		    "JSON, more than %d", n, BC_FIELDS_MAX);
	} else if (s->render)
		code = unrenderable(s, &r, msg, sizeof msg);
	if (code) {
		wa_warn("%s:%lu: %s: %s: %s", rec->file, rec->line, code, key, msg);
		rc = add_row(s, key, NULL, NULL, code, msg, NULL);
	} else
		rc = add_row(s, key, jid, lead, NULL, NULL, fj);
	free(fj);
	wa_val_free(r.fields);
	return rc;
}

static int
add_record(struct store *s, const struct wa_norm_opts *no, struct wa_rec *rec)
{
	struct wa_addr a;
	yajl_val e;
	char key[160];
	const char *code, *msg, *k;

	memset(&a, 0, sizeof a);
	if (rec->kind == WA_REC_BAD) {
		wa_warn("%s:%lu: %s: %s", rec->file, rec->line, rec->errcode,
		    rec->errmsg);
		bad_key(rec, NULL, key, sizeof key);
		return add_row(s, key, NULL, NULL, rec->errcode, rec->errmsg, NULL);
	}
	if (wa_norm_rec(no, rec, &a) != 0) {
		e = wa_get(rec->obj, "error");
		code = wa_get_str(e, "code");
		msg = wa_get_str(e, "message");
		wa_warn("%s:%lu: %s: %s%s%s", rec->file, rec->line, code,
		    a.input[0] ? a.input : "", a.input[0] ? ": " : "", msg);
		bad_key(rec, &a, key, sizeof key);
		return add_row(s, key, NULL, NULL, code ? code : "invalid_phone", msg, NULL);
	}
	/* An @lid address has no phone number: the JID is its key. */
	k = a.kind == WA_ADDR_LID ? a.jid : a.phone;
	if (strlen(k) > 32) {
		wa_warn("%s:%lu: invalid_phone: %s: longer than 32 characters",
		    rec->file, rec->line, k);
		snprintf(key, sizeof key, "%s", k);
		bc_utf8_cut(key, 32);
		return add_row(s, key, NULL, NULL, "invalid_phone",
		    "address longer than 32 characters", NULL);
	}
	s->col = rec->field;
	return add_good(s, rec, k, a.jid);
}

/* Components from --params: an array of strings becomes the body's text
 * parameters; an array of objects is taken as the components. */
static char *
template_components(const char *params, char *err, size_t len)
{
	yajl_val v, comps, body, plist, p;
	char *out = NULL, why[128];
	size_t i;

	v = wa_json_parse(params, why, sizeof why);
	if (!v || !YAJL_IS_ARRAY(v)) {
		snprintf(err, len, "--params: %s", !v && why[0] ? why :
		    "not a JSON array");
		wa_val_free(v);
		return NULL;
	}
	if (v->u.array.len == 0 || !YAJL_IS_STRING(v->u.array.values[0])) {
		out = wa_json_dump(v, NULL);
		wa_val_free(v);
		return out;
	}
	comps = wa_new_array();
	body = wa_new_object();
	plist = wa_new_array();
	wa_set_str(body, "type", "body");
	for (i = 0; i < v->u.array.len; i++) {
		if (!YAJL_IS_STRING(v->u.array.values[i])) {
			snprintf(err, len, "--params: mixes strings and other values");
			goto done;
		}
		p = wa_new_object();
		wa_set_str(p, "type", "text");
		wa_set_str(p, "text", YAJL_GET_STRING(v->u.array.values[i]));
		wa_array_push(plist, p);
	}
	wa_set(body, "parameters", plist);
	plist = NULL;
	wa_array_push(comps, body);
	body = NULL;
	out = wa_json_dump(comps, NULL);
done:
	wa_val_free(plist);
	wa_val_free(body);
	wa_val_free(comps);
	wa_val_free(v);
	return out;
}

static int
check_media(const char *media, char *err, size_t len)
{
	char why[128];
	yajl_val v = wa_json_parse(media, why, sizeof why);
	const char *t;
	int ok;

	t = v && YAJL_IS_OBJECT(v) ? wa_get_str(v, "type") : NULL;
	ok = t && (!strcmp(t, "image") || !strcmp(t, "video") ||
	    !strcmp(t, "audio") || !strcmp(t, "document")) &&
	    (wa_get_str(v, "url") || wa_get_str(v, "path"));
	if (!v && why[0])
		snprintf(err, len, "--media: %s", why);
	else if (!ok)
		snprintf(err, len, "--media: want a JSON object with type (image, "
		    "video, audio, document) and url or path");
	wa_val_free(v);
	return ok ? 0 : -1;
}

/* The business must exist: its provider is recorded on the broadcast. */
static int
business_provider(struct bc_db *d, long long id, char *prov, size_t len)
{
	char k[32];
	const char *v[1] = { bc_ll(k, sizeof k, id) };
	PGresult *r = bc_q(d, "SELECT coalesce(whatsapp_provider, 'baileys')"
	    " FROM business WHERE id = $1", 1, v);

	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return 0;
	}
	snprintf(prov, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 1;
}

/* A broadcast created before with the same idempotency key (the column is
 * unique over every business): 1 found (*id, its business), 0 none, -1. */
static int
existing(struct bc_db *d, const char *key, long long *id, long long *business)
{
	const char *v[1] = { key };
	PGresult *r;
	int found;

	r = bc_q(d, "SELECT id, business_id FROM whatsapp_broadcasts"
	    " WHERE idempotency_key = $1", 1, v);
	if (!r)
		return -1;
	found = PQntuples(r) == 1;
	if (found) {
		*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		*business = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	}
	PQclear(r);
	return found;
}

static long long
insert_broadcast(struct bc_db *d, const struct wa_bcast_new *n,
    const char *prov, const char *comps, const char *region)
{
	static const char sql[] =
	    "INSERT INTO whatsapp_broadcasts (business_id, name, provider,"
	    " message_type, message_text, template_name, template_language,"
	    " template_params, media, region, idempotency_key, status,"
	    " total_recipients, sent_count, failed_count, cancelled_count,"
	    " processed_count, last_processed_recipient_id, cancel_requested,"
	    " created_at, preview_url)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11,"
	    " 'queued', 0, 0, 0, 0, 0, 0, false, now(), $12::boolean) RETURNING id";
	char k[32];
	const char *type = n->template_name ? "template" : n->media ? "media" : "text";
	const char *v[12] = { bc_ll(k, sizeof k, n->business_id), n->name, prov,
		type, n->text, n->template_name,
		n->template_name ? n->language : NULL, comps, n->media,
		region[0] ? region : NULL, n->idempotency_key,
		n->preview_url ? "true" : NULL };
	PGresult *r = bc_q(d, sql, 12, v);
	long long id;

	if (!r)
		return -1;
	id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return id;
}

static int
set_counts(struct store *s)
{
	static const char sql[] =
	    "UPDATE whatsapp_broadcasts SET total_recipients = $2,"
	    " failed_count = $3, cancelled_count = $4,"
	    " processed_count = $3::int + $4::int WHERE id = $1";
	char b1[32], b2[32], b3[32], b4[32];
	const char *v[4] = { bc_ll(b1, sizeof b1, s->bid),
		bc_ll(b2, sizeof b2, s->total), bc_ll(b3, sizeof b3, s->invalid),
		bc_ll(b4, sizeof b4, s->opted) };

	return bc_cmd(s->d, sql, 4, v);
}

static yajl_val
created_record(const struct store *s)
{
	yajl_val o = wa_new_object();

	wa_set_int(o, "broadcast_id", s->bid);
	wa_set_int(o, "total", s->total);
	wa_set_int(o, "invalid", s->invalid);
	wa_set_int(o, "duplicates", s->dups);
	wa_set_int(o, "opted_out", s->opted);
	return o;
}

/* Stream every record of the input into the broadcast. */
static int
read_recipients(struct store *s, const struct wa_bcast_new *n,
    const struct wa_norm_opts *no)
{
	struct wa_reader *rd;
	struct wa_rec rec;
	int st, rc = 0;

	rd = wa_reader_new(n->files, n->nfiles, n->maxline, NULL);
	if (!rd) {
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	wa_reader_format(rd, (enum wa_format)n->format, n->field);
	while ((st = wa_reader_next(rd, &rec)) != 0) {
		if (st < 0) {
			/* All or nothing: a list read in part is no list. */
			wa_err("%s", wa_reader_error(rd));
			rc = st == -2 ? WA_EXIT_DATA : WA_EXIT_IO;
			break;
		}
		st = add_record(s, no, &rec);
		wa_rec_free(&rec);
		if (st != 0) {
			wa_err("storing recipients: %s", s->d->err);
			rc = s->d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
			break;
		}
	}
	wa_reader_free(rd);
	/* The last chunk, and the end of the insert still running. */
	if (rc == 0 && (flush_rows(s) != 0 || finish_insert(s) != 0)) {
		wa_err("storing recipients: %s", s->d->err);
		rc = s->d->lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	return rc;
}

/* A text option fits its column: valid UTF-8, at most max characters
 * (0: any length). */
static int
check_text(const char *opt, const char *v, size_t max, char *err, size_t len)
{
	if (!v || bc_utf8_ok(v, max))
		return 0;
	if (!bc_utf8_ok(v, 0))
		snprintf(err, len, "%s: not UTF-8 text", opt);
	else
		snprintf(err, len, "%s: longer than %zu characters", opt, max);
	return -1;
}

static int check_placeholders(const char *opt, const char *v, int json,
    char *err, size_t len);

static int
check_message(const struct wa_bcast_new *n, char **comps, char *err, size_t len)
{
	int kinds = !!n->text + !!n->template_name + !!n->media;

	*comps = NULL;
	if (check_text("--text", n->text, 0, err, len) ||
	    check_text("--name", n->name, 255, err, len) ||
	    check_text("--template", n->template_name, 255, err, len) ||
	    check_text("--language", n->language, 16, err, len) ||
	    check_text("--idempotency-key", n->idempotency_key, 255, err, len))
		return -1;
	if (kinds != 1) {
		snprintf(err, len, "give one message: --text, --template or --media");
		return -1;
	}
	if (n->text && !*n->text) {
		snprintf(err, len, "--text: empty message");
		return -1;
	}
	if (n->template_name && (!n->language || !*n->language)) {
		snprintf(err, len, "--template needs --language");
		return -1;
	}
	if (!n->template_name && (n->language || n->params)) {
		snprintf(err, len, "--language and --params go with --template");
		return -1;
	}
	if (n->preview_url && !n->text) {
		snprintf(err, len, "--preview-url goes with --text");
		return -1;
	}
	if (n->media && check_media(n->media, err, len) != 0)
		return -1;
	if (n->params) {
		*comps = template_components(n->params, err, len);
		if (!*comps)
			return -1;
	}
	return check_placeholders("--text", n->text, 0, err, len) ||
	    check_placeholders("--params", *comps, 1, err, len) ||
	    check_placeholders("--media", n->media, 1, err, len) ? -1 : 0;
}

/* Every {{field}} in an option's text (or in the strings of its JSON) is
 * well formed: a broken one would reach every customer as it is. */
static int
check_placeholders(const char *opt, const char *v, int json, char *err,
    size_t len)
{
	struct wa_render_err re;
	yajl_val t;
	int rc;

	if (!wa_render_any(v))
		return 0;
	if (json) {
		t = wa_json_parse(v, NULL, 0);
		rc = wa_render_check_tree(t, &re);
		wa_val_free(t);
	} else
		rc = wa_render_check(v, &re);
	if (rc == WA_RENDER_OK)
		return 0;
	snprintf(err, len, "%s: %s", opt, re.msg);
	return -1;
}

/* The message as run will read it back, to check each recipient's
 * fields against it. */
static int
set_message(struct store *s, const struct wa_bcast_new *n, const char *comps)
{
	s->b.id = s->bid;
	s->b.business_id = n->business_id;
	s->b.text = (char *)n->text;
	s->b.template_name = (char *)n->template_name;
	s->b.language = (char *)n->language;
	s->b.params = (char *)comps;
	s->b.media = (char *)n->media;
	s->b.preview_url = n->preview_url;
	s->field = n->field;
	s->render = wa_render_any(n->text) || wa_render_any(comps) ||
	    wa_render_any(n->media);
	if (!s->render)
		return 0;
	s->proto = wa_new_object();
	if (!s->proto || bc_message(&s->b, s->proto, s->d->err, sizeof s->d->err) != 0)
		return -1;
	s->b.params = NULL; /* comps is freed once the row is stored */
	return 0;
}

int
wa_bcast_create(PGconn *db, const struct wa_bcast_new *n, yajl_val *out)
{
	struct bc_db d = { .conn = db };
	struct store s = { .d = &d, .business_id = n->business_id };
	struct wa_norm_opts no;
	struct bc_sched sc;
	char err[256], prov[32];
	char *comps = NULL;
	long long old = 0, obiz = 0;
	int rc, found;

	*out = NULL;
	if (check_message(n, &comps, err, sizeof err) != 0) {
		free(comps);
		return wa_usage_error("%s", err);
	}
	if (wa_norm_init(&no, n->region, n->field, 0) != 0) {
		free(comps);
		return n->region ? wa_usage_error("--region: unknown region code '%s'",
		    n->region) : (wa_err("WA_DEFAULT_REGION: unknown region code"),
		    WA_EXIT_CONFIG);
	}
	found = business_provider(&d, n->business_id, prov, sizeof prov);
	if (found <= 0) {
		free(comps);
		if (found < 0)
			wa_err("%s", d.err);
		else
			wa_err("business %lld: no such business", n->business_id);
		return found < 0 ? (d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE)
		    : WA_EXIT_DATA;
	}
	rc = bc_sched_prepare(&d, n, &sc);
	if (rc != 0) {
		free(comps);
		return rc;
	}
	if (n->idempotency_key) {
		found = existing(&d, n->idempotency_key, &old, &obiz);
		if (found != 0) {
			free(comps);
			if (found < 0) {
				wa_err("%s", d.err);
				return d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
			}
			if (obiz != n->business_id) {
				wa_err("--idempotency-key: already used by broadcast %lld "
				    "of business %lld", old, obiz);
				return WA_EXIT_DATA;
			}
			/* Created before (a retried cron job): store nothing. */
			wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld exists "
			    "with this idempotency key: nothing created", old);
			*out = wa_new_object();
			wa_set_int(*out, "broadcast_id", old);
			wa_set_bool(*out, "existing", 1);
			return WA_EXIT_OK;
		}
	}
	if (bc_cmd(&d, "BEGIN", 0, NULL) != 0) {
		free(comps);
		wa_err("%s", d.err);
		return WA_EXIT_UNAVAIL;
	}
	s.bid = insert_broadcast(&d, n, prov, comps, no.region);
	rc = s.bid >= 0 ? set_message(&s, n, comps) : 0;
	free(comps);
	if (rc != 0) {
		wa_err("creating the broadcast: %s", d.err);
		rc = WA_EXIT_SOFTWARE;
		goto fail;
	}
	if (s.bid < 0) {
		wa_err("creating the broadcast: %s", d.err);
		rc = d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		goto fail;
	}
	rc = read_recipients(&s, n, &no);
	if (rc != 0)
		goto fail;
	if (set_counts(&s) != 0 || bc_sched_store(&d, s.bid, &sc) != 0 ||
	    bc_cmd(&d, "COMMIT", 0, NULL) != 0) {
		wa_err("creating the broadcast: %s", d.err);
		rc = d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
		goto fail;
	}
	wa_buf_free(&s.rows);
	wa_val_free(s.proto);
	wa_log(WA_LOG_VERBOSE, "[WA_BROADCAST] broadcast_id=%lld created total=%lld "
	    "invalid=%lld duplicates=%lld opted_out=%lld", s.bid, s.total,
	    s.invalid, s.dups, s.opted);
	*out = created_record(&s);
	bc_sched_summary(&sc, *out);
	return s.invalid ? WA_EXIT_FAILED : WA_EXIT_OK;
fail:
	wa_buf_free(&s.rows);
	wa_val_free(s.proto);
	if (s.pending && !d.lost)
		PQclear(bc_result(&d)); /* the connection is busy until then */
	if (!d.lost)
		bc_cmd(&d, "ROLLBACK", 0, NULL);
	return rc;
}
