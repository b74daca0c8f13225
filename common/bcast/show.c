/* show.c: what wa-broadcast shows: records as JSON lines, or collected
 * into a table on a terminal; the progress bar; broadcast ids read from
 * the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcast/wa_bcast.h"
#include "base/wa_cli.h"
#include "record/wa_rec.h"

static const char *const status_cols[] = { "broadcast_id", "business_id",
	"status", "total", "queued", "processing", "sent", "failed", "ambiguous",
	"cancelled", "rate", "eta_seconds", "name", NULL };
static const char *const list_cols[] = { "broadcast_id", "business_id",
	"status", "total", "sent", "failed", "cancelled", "created_at", "name",
	NULL };
static const char *const optout_cols[] = { "number", "created_at", "source",
	"note", NULL };

int
wa_bcast_emit(void *arg, yajl_val rec)
{
	struct wa_bcast_out *o = arg;
	yajl_val *nr;

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

int
wa_bcast_out_table(struct wa_bcast_out *o, int which)
{
	char *t = wa_bcast_table(o->recs, o->n, which == WA_BCAST_TABLE_OPTOUT ?
	    optout_cols : which == WA_BCAST_TABLE_LIST ? list_cols : status_cols);
	size_t i;
	int rc = t && fputs(t, o->fp) >= 0 ? 0 : -1;

	free(t);
	for (i = 0; i < o->n; i++)
		wa_val_free(o->recs[i]);
	free(o->recs);
	o->recs = NULL;
	o->n = 0;
	return rc;
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
