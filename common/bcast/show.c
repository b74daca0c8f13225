/* show.c: what wa-broadcast shows: records as JSON lines, or collected
 * into a table on a terminal; the progress bar; broadcast ids read from
 * the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcast/wa_bcast.h"
#include "base/wa_cli.h"
#include "record/wa_csvout.h"
#include "record/wa_rec.h"

/* What a terminal has room for (100 columns, for an operator of many
 * tenants: who sends, how fast, how long still, why it waits); the rest
 * is in the records. The columns not named as in the record are made by
 * table_fields. */
static const char *const status_cols[] = { "id", "business", "sender",
	"status", "sent/total", "failed", "rate/s", "eta", "note", "name", NULL };
#define list_cols status_cols
static const char *const recipient_cols[] = { "recipient_id", "phone",
	"status", "class", "code", "attempts", "sent_at", "reason", NULL };
static const char *const error_cols[] = { "code", "class", "count", NULL };

static size_t
ncols(const char *const *c)
{
	size_t n = 0;

	while (c[n])
		n++;
	return n;
}

/* A record as a CSV row of wa_bcast_recipient_cols: numbers and text as
 * they are, null empty, fields (an object) as its JSON text. */
static int
csv_put(struct wa_bcast_out *o, yajl_val rec)
{
	const char *const *c = wa_bcast_recipient_cols;
	yajl_val v;
	char *json;
	int i, rc = 0;

	if (o->rows++ == 0 && wa_csv_row(o->fp, c, ncols(c)) != 0)
		return -1;
	for (i = 0; c[i] && rc == 0; i++) {
		v = wa_get(rec, c[i]);
		if (v && YAJL_IS_STRING(v))
			rc = wa_csv_cell(o->fp, v->u.string, i == 0);
		else if (v && YAJL_IS_NUMBER(v))
			rc = wa_csv_cell(o->fp, v->u.number.r, i == 0);
		else if (!v || YAJL_IS_NULL(v))
			rc = wa_csv_cell(o->fp, NULL, i == 0);
		else {
			json = wa_json_dump(v, NULL);
			rc = json ? wa_csv_cell(o->fp, json, i == 0) : -1;
			free(json);
		}
	}
	return rc == 0 ? wa_csv_end(o->fp) : -1;
}
static const char *const optout_cols[] = { "number", "created_at", "source",
	"note", NULL };

/* A time of the records ("2026-12-09T09:00:00+02:00") into buf after
 * what, without its seconds when they are 0: a note has little room. */
static void
note_time(char *buf, size_t len, const char *what, const char *t)
{
	size_t n = strlen(t);

	if (n >= 19 && t[10] == 'T' && t[16] == ':' && t[17] == '0' && t[18] == '0')
		snprintf(buf, len, "%s %.16s%s", what, t, t + 19);
	else
		snprintf(buf, len, "%s %s", what, t);
}

/* The columns of status's and list's tables that are no field of the
 * record, added to the table's copy of it. */
static void
table_fields(yajl_val rec)
{
	long long a, b;
	yajl_val v;
	char buf[128];
	const char *st;

	if (wa_get_int(rec, "broadcast_id", &a) == 0)
		wa_set_int(rec, "id", a);
	if (wa_get_int(rec, "business_id", &a) == 0)
		wa_set_int(rec, "business", a);
	if (wa_get_int(rec, "sent", &a) == 0 && wa_get_int(rec, "total", &b) == 0) {
		snprintf(buf, sizeof buf, "%lld/%lld", a, b);
		wa_set_str(rec, "sent/total", buf);
	}
	if ((v = wa_get(rec, "sender_rate")) && YAJL_IS_NUMBER(v))
		wa_set(rec, "rate/s", wa_val_copy(v));
	if (wa_get_int(rec, "eta_seconds", &a) == 0) {
		if (a >= 100 * 3600)
			snprintf(buf, sizeof buf, "%lldd%02lldh", a / 86400, a / 3600 % 24);
		else if (a >= 3600)
			snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", a / 3600,
			    a / 60 % 60, a % 60);
		else
			snprintf(buf, sizeof buf, "%lld:%02lld", a / 60, a % 60);
		wa_set_str(rec, "eta", buf);
	}
	/* Why it is not sending: paused (and why), or waiting for its
	 * window or its time. */
	st = (v = wa_get(rec, "status")) && YAJL_IS_STRING(v) ? v->u.string : "";
	if ((v = wa_get(rec, "pause_reason")) && YAJL_IS_STRING(v))
		wa_set_str(rec, "note", v->u.string);
	else if ((v = wa_get(rec, "waiting_for_window")) && YAJL_IS_STRING(v)) {
		note_time(buf, sizeof buf, "opens", v->u.string);
		wa_set_str(rec, "note", buf);
	} else if (!strcmp(st, "scheduled") && (v = wa_get(rec, "scheduled_at")) &&
	    YAJL_IS_STRING(v)) {
		note_time(buf, sizeof buf, "at", v->u.string);
		wa_set_str(rec, "note", buf);
	}
}

int
wa_bcast_emit(void *arg, yajl_val rec)
{
	struct wa_bcast_out *o = arg;
	yajl_val *nr;

	if (o->csv)
		return csv_put(o, rec);
	/* A long list leaves a page at a time, its columns as wide as that
	 * page wants, so the records of a million recipients are never all
	 * held. */
	if (o->table && o->page && o->n >= o->page &&
	    wa_bcast_out_table(o, o->kind) != 0)
		return -1;
	if (o->table) {
		if (o->n == o->cap) {
			o->cap = o->cap ? o->cap * 2 : 16;
			nr = realloc(o->recs, o->cap * sizeof *nr);
			if (!nr)
				return -1;
			o->recs = nr;
		}
		o->recs[o->n] = wa_val_copy(rec);
		if (!o->recs[o->n])
			return -1;
		if (o->kind == WA_BCAST_T_STATUS || o->kind == WA_BCAST_T_LIST)
			table_fields(o->recs[o->n]);
		o->n++;
		return 0;
	}
	if (wa_writer_put(o->w, rec) != 0)
		return -1;
	if (o->flush_each && fflush(o->fp) != 0)
		return -1;
	return 0;
}

int
wa_bcast_emit_one(struct wa_bcast_out *o, yajl_val rec, int rc)
{
	if (rec) {
		if (wa_bcast_emit(o, rec) != 0 && rc == WA_EXIT_OK)
			rc = WA_EXIT_IO;
		wa_val_free(rec);
	}
	return rc;
}

/* Each broadcast's most frequent errors, under status's table. */
static int
errors_table(struct wa_bcast_out *o)
{
	yajl_val e;
	long long id;
	char *t;
	size_t i;
	int rc = 0;

	for (i = 0; i < o->n && rc == 0; i++) {
		e = wa_get(o->recs[i], "errors");
		if (!e || !YAJL_IS_ARRAY(e) || !e->u.array.len)
			continue;
		if (wa_get_int(o->recs[i], "broadcast_id", &id) != 0)
			id = 0;
		t = wa_bcast_table(e->u.array.values, e->u.array.len, error_cols);
		rc = t && fprintf(o->fp, "\nbroadcast %lld, most frequent errors:\n%s",
		    id, t) >= 0 ? 0 : -1;
		free(t);
	}
	return rc;
}

int
wa_bcast_out_table(struct wa_bcast_out *o, int kind)
{
	char *t = kind == WA_BCAST_T_RECIPIENTS || kind == WA_BCAST_T_OPTOUT ?
	    wa_bcast_table(o->recs, o->n, kind == WA_BCAST_T_RECIPIENTS ?
	    recipient_cols : optout_cols) :
	    wa_bcast_table_fit(o->recs, o->n, kind == WA_BCAST_T_LIST ? list_cols :
	    status_cols, WA_BCAST_TABLE_WIDTH);
	size_t i;
	int rc = t && fputs(t, o->fp) >= 0 ? 0 : -1;

	if (rc == 0 && kind == WA_BCAST_T_STATUS)
		rc = errors_table(o);
	free(t);
	for (i = 0; i < o->n; i++)
		wa_val_free(o->recs[i]);
	free(o->recs);
	o->recs = NULL;
	o->n = 0;
	o->cap = 0;
	return rc;
}

void
wa_bcast_out_recipients(struct wa_bcast_out *o, const char *format, int tty)
{
	o->csv = format && !strcmp(format, "csv");
	o->table = !format && tty;
	o->kind = WA_BCAST_T_RECIPIENTS;
	o->page = 1000;
}

int
wa_bcast_out_end(struct wa_bcast_out *o, int rc)
{
	int bad = 0;

	/* A list with no one in it is still a list: its header. */
	if (o->csv && o->rows == 0 && rc == WA_EXIT_OK)
		bad = wa_csv_row(o->fp, wa_bcast_recipient_cols,
		    ncols(wa_bcast_recipient_cols)) != 0;
	if (o->table)
		bad = wa_bcast_out_table(o, o->kind) != 0;
	return bad && rc == WA_EXIT_OK ? WA_EXIT_IO : rc;
}

void
wa_bcast_bar(void *arg, const struct wa_bcast_progress *p)
{
	char eta[32] = "-";
	int width = 24, fill;
	long long done;

	(void)arg;
	if (!p) {
		fputs("\r\033[K", stderr);
		return;
	}
	done = p->processed;
	fill = p->total > 0 ? (int)(width * done / p->total) : 0;
	if (fill > width)
		fill = width;
	if (p->eta >= 0)
		snprintf(eta, sizeof eta, "%lld:%02lld", (long long)p->eta / 60,
		    (long long)p->eta % 60);
	fprintf(stderr, "\r\033[K%lld [%.*s%.*s] sent %lld failed %lld / %lld  "
	    "%.0f/s  ETA %s", p->broadcast_id, fill, "########################",
	    width - fill, "------------------------", p->sent, p->failed,
	    p->total, p->rate, eta);
	fflush(stderr);
}

int
wa_bcast_parse_id(const char *s, long long *id)
{
	char *end;

	if (!s || !*s)
		return -1;
	*id = strtoll(s, &end, 10);
	return *end || *id <= 0 ? -1 : 0;
}

int
wa_bcast_parse_ids(char *const *argv, int argc, long long **ids)
{
	int i;

	*ids = calloc((size_t)(argc ? argc : 1), sizeof **ids);
	if (!*ids)
		return -1;
	for (i = 0; i < argc; i++)
		if (wa_bcast_parse_id(argv[i], &(*ids)[i]) != 0)
			return i + 1;
	return 0;
}
