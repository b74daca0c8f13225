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

static const char *const status_cols[] = { "broadcast_id", "business_id",
	"status", "total", "queued", "processing", "sent", "failed", "ambiguous",
	"cancelled", "rate", "eta_seconds", "scheduled_at", "waiting_for_window",
	"name", NULL };
static const char *const list_cols[] = { "broadcast_id", "business_id",
	"status", "total", "sent", "failed", "cancelled", "created_at", "name",
	NULL };
/* What a terminal has room for; the rest is in the records. */
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
		o->recs[o->n++] = wa_val_copy(rec);
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
	char *t = wa_bcast_table(o->recs, o->n, kind == WA_BCAST_T_LIST ? list_cols :
	    kind == WA_BCAST_T_RECIPIENTS ? recipient_cols :
	    kind == WA_BCAST_T_OPTOUT ? optout_cols : status_cols);
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
