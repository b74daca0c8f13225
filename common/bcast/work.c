/* bc_work.c: a worker: its key and lock, the broadcasts it is asked to
 * run (or every queued or running one), the provider of each business and
 * the pre-flight check, once per business and run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"
#include "record/wa_rec.h"
#include "route/wa_route.h"
#include "send/wa_send.h"

#define MAXBIZ 64

/* What the pre-flight said about a business, remembered for the run. */
struct biz {
	long long id;
	enum wa_provider prov;
	int rc;              /* wa_check_ready's answer */
	char reason[256];
	struct wa_cfg cfg;   /* the settings it sends with */
};

struct worker {
	const struct wa_bcast_run_opts *o;
	struct bc_db d;
	struct biz biz[MAXBIZ];
	int nbiz;
};

/* The business's provider, chosen as for every send (wa_route.h): its
 * business.whatsapp_provider, else WA_PROVIDER, else baileys; and, into
 * own (if not NULL), the settings it sends with (wa_route_cfg). 0, or an
 * exit code with the reason in err. */
static int
route_of(const struct wa_cfg *cfg, long long business_id, int *p,
    struct wa_cfg *own, char *err, size_t len)
{
	const struct wa_cfg *bc;
	enum wa_provider ep;
	struct wa_router *r;
	struct wa_error e;
	int rc;

	rc = wa_router_new(&r, cfg, NULL, err, len);
	if (rc != 0)
		return rc;
	switch (wa_route(r, business_id, &ep, &e)) {
	case 0:
		*p = ep;
		rc = WA_EXIT_OK;
		break;
	case -1:
		snprintf(err, len, "business %lld: %s", business_id, e.message);
		rc = WA_EXIT_CONFIG;
		break;
	default:
		snprintf(err, len, "%s", e.message);
		rc = WA_EXIT_TEMP;
	}
	if (rc == WA_EXIT_OK && own) {
		if ((rc = wa_route_cfg(r, business_id, &bc, &e)) != 0) {
			snprintf(err, len, "%s", e.message);
			rc = rc == -1 ? WA_EXIT_CONFIG : WA_EXIT_TEMP;
		} else if (wa_cfg_business(bc, -1, NULL, own) != 0) {
			snprintf(err, len, "out of memory");
			rc = WA_EXIT_SOFTWARE;
		}
	}
	wa_router_free(r);
	return rc;
}

int
bc_provider_of(const struct wa_cfg *cfg, long long business_id, int *p,
    char *err, size_t len)
{
	return route_of(cfg, business_id, p, NULL, err, len);
}

int
bc_preflight(struct bc_db *d, const struct wa_cfg *cfg, long long business_id,
    int *provider, struct wa_cfg *own, char *reason, size_t len)
{
	struct wa_cfg tmp;
	struct wa_ready rd;
	int p, st;

	(void)d;
	if (!own)
		own = &tmp;
	memset(own, 0, sizeof *own);
	st = route_of(cfg, business_id, &p, own, reason, len);
	if (st != WA_EXIT_OK) {
		wa_cfg_free(own);
		return st == WA_EXIT_UNAVAIL ? WA_EXIT_TEMP : st;
	}
	*provider = p;
	/* The business's own sender, when it has one. */
	st = wa_check_ready(own, (enum wa_provider)p, business_id, &rd);
	snprintf(reason, len, "%s", rd.reason);
	wa_val_free(rd.info);
	if (own == &tmp)
		wa_cfg_free(&tmp);
	return st;
}

/* The pre-flight for a business, asked once per run. */
static struct biz *
preflight(struct worker *w, long long business_id)
{
	struct biz *b;
	int i, prov = 0;

	for (i = 0; i < w->nbiz; i++)
		if (w->biz[i].id == business_id)
			return &w->biz[i];
	b = &w->biz[w->nbiz < MAXBIZ ? w->nbiz++ : MAXBIZ - 1];
	wa_cfg_free(&b->cfg);
	memset(b, 0, sizeof *b);
	b->id = business_id;
	b->rc = bc_preflight(&w->d, w->o->cfg, business_id, &prov, &b->cfg,
	    b->reason, sizeof b->reason);
	b->prov = (enum wa_provider)prov;
	if (b->rc == WA_EXIT_TEMP || b->rc == WA_EXIT_SOFTWARE)
		b->id = -1; /* the database failed, not the provider: ask again */
	return b;
}

static int
emit_status(struct worker *w, long long id)
{
	yajl_val rec = bc_status_record(&w->d, id);
	int rc = 0;

	if (!rec)
		return -1;
	if (w->o->emit(w->o->arg, rec) != 0)
		rc = 1;
	wa_val_free(rec);
	return rc;
}

/* The worse of two exit codes, for a run over several broadcasts. */
static int
worse(int a, int b)
{
	static const int order[] = { WA_EXIT_OK, WA_EXIT_FAILED, WA_EXIT_UNAVAIL,
		WA_EXIT_DATA, WA_EXIT_CONFIG, WA_EXIT_TEMP, WA_EXIT_IO,
		WA_EXIT_SOFTWARE };
	int i, ra = 0, rb = 0;

	for (i = 0; i < (int)(sizeof order / sizeof order[0]); i++) {
		if (order[i] == a)
			ra = i;
		if (order[i] == b)
			rb = i;
	}
	return rb > ra ? b : a;
}

/* The key of a sender's pacing row (migration 0007): Meta's limit is per
 * phone number (the business's own, or the one it shares); a Baileys
 * session per business. No secret is in it: status shows it. */
static const char *
sender_key(enum wa_provider prov, const struct wa_cfg *cfg, long long id,
    char *buf, size_t len)
{
	const char *pnid = wa_cfg_get(cfg, WA_CFG_META_PHONE_ID);

	if (prov == WA_PROVIDER_META)
		snprintf(buf, len, "meta:%s", pnid ? pnid : "");
	else
		snprintf(buf, len, "baileys:%lld", id);
	return buf;
}

static const char *
pace_sender(const struct biz *b, char *buf, size_t len)
{
	return sender_key(b->prov, &b->cfg, b->id, buf, len);
}

struct bc_senders {
	struct wa_router *r;
	int failed;          /* no router: every sender unknown */
	struct { long long id; char key[96]; int ok; } *b;
	size_t n, cap;
};

struct bc_senders *
bc_senders_new(const struct wa_cfg *cfg)
{
	struct bc_senders *s = calloc(1, sizeof *s);
	char err[256];

	if (s && (!cfg || wa_router_new(&s->r, cfg, NULL, err, sizeof err) != 0)) {
		s->r = NULL;
		s->failed = 1;
	}
	return s;
}

const char *
bc_sender_of(struct bc_senders *s, long long business_id)
{
	const struct wa_cfg *bc;
	struct wa_error e;
	enum wa_provider p;
	void *nb;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->b[i].id == business_id)
			return s->b[i].ok ? s->b[i].key : NULL;
	if (s->n == s->cap) {
		nb = realloc(s->b, (s->cap ? s->cap * 2 : 16) * sizeof *s->b);
		if (!nb)
			return NULL;
		s->b = nb;
		s->cap = s->cap ? s->cap * 2 : 16;
	}
	i = s->n++;
	s->b[i].id = business_id;
	s->b[i].ok = !s->failed && wa_route(s->r, business_id, &p, &e) == 0 &&
	    wa_route_cfg(s->r, business_id, &bc, &e) == 0;
	if (s->b[i].ok)
		sender_key(p, bc, business_id, s->b[i].key, sizeof s->b[i].key);
	return s->b[i].ok ? s->b[i].key : NULL;
}

void
bc_senders_free(struct bc_senders *s)
{
	if (!s)
		return;
	if (s->r)
		wa_router_free(s->r);
	free(s->b);
	free(s);
}

/* Run one broadcast: checks, pre-flight, then the loop. */
static int
run_id(struct worker *w, long long id, int explicit)
{
	struct wa_bcast_run_opts ro;
	struct bc_bcast b;
	struct biz *bz;
	char sender[96];
	int st;

	st = bc_load(&w->d, id, &b);
	if (st <= 0) {
		if (st == 0)
			wa_err("broadcast %lld: no such broadcast", id);
		else
			wa_err("%s", w->d.err);
		return st == 0 ? WA_EXIT_DATA : w->d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	st = bc_sched_wait(&w->d, &b, explicit ? WA_LOG_NORMAL : WA_LOG_VERBOSE);
	if (st >= 0) {
		bc_bcast_free(&b);
		if (!explicit)
			return WA_EXIT_OK;
		return emit_status(w, id) ? WA_EXIT_IO : st;
	}
	if (strcmp(b.status, "queued") && strcmp(b.status, "running") &&
	    strcmp(b.status, "pending") && strcmp(b.status, "scheduled")) {
		/* Finished, or paused: nothing to do here, say so. */
		st = !strcmp(b.status, "paused") ? WA_EXIT_UNAVAIL : WA_EXIT_OK;
		if (st)
			wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld not started: "
			    "paused (%s): resume it first", id,
			    b.pause_reason ? b.pause_reason : "no reason given");
		else
			wa_log(WA_LOG_NORMAL, "[WA_BROADCAST] broadcast_id=%lld total=%lld "
			    "sent=%lld failed=%lld status=%s", id, b.total, b.sent,
			    b.failed, b.status);
		bc_bcast_free(&b);
		if (!explicit)
			return WA_EXIT_OK;
		return emit_status(w, id) ? WA_EXIT_IO : st;
	}
	bz = preflight(w, b.business_id);
	if (bz->rc == WA_EXIT_TEMP || bz->rc == WA_EXIT_SOFTWARE) {
		wa_err("%s", bz->reason);
		bc_bcast_free(&b);
		return bz->rc;
	}
	if (bz->rc != WA_EXIT_OK) {
		/* Stays queued, no recipient touched. */
		wa_log(WA_LOG_QUIET, "[WA_BROADCAST] broadcast_id=%lld not started: %s",
		    id, bz->reason);
		bc_bcast_free(&b);
		return emit_status(w, id) ? WA_EXIT_IO : bz->rc;
	}
	/* The run sends with the business's own settings. */
	ro = *w->o;
	ro.cfg = &bz->cfg;
	return bc_run_one(&w->d, &ro, &b, bz->prov,
	    pace_sender(bz, sender, sizeof sender));
}

/* The next broadcast to run for --all: the lowest id above after that is
 * queued or running, or scheduled and due. 1 found, 0 none, -1 error. */
static int
next_runnable(struct worker *w, long long after, long long *id)
{
	char k[32], t[32];
	const char *v[2] = { bc_ll(k, sizeof k, after), bc_epoch(t, sizeof t, bc_wall()) };
	PGresult *r;
	int found;

	/* Those outside their window are skipped by run_id (the window is
	 * read in the broadcast's zone, which SQL is not asked about). */
	r = bc_q(&w->d, "SELECT id FROM whatsapp_broadcasts WHERE id > $1"
	    " AND (status IN ('queued', 'running') OR (status = 'scheduled'"
	    " AND scheduled_at <= to_timestamp($2::bigint))) ORDER BY id LIMIT 1", 2, v);
	if (!r)
		return -1;
	found = PQntuples(r) == 1;
	if (found)
		*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return found;
}

static int
stopped(const struct worker *w, int rc)
{
	return (w->o->stop && *w->o->stop) || rc == WA_EXIT_TEMP ||
	    rc == WA_EXIT_IO || rc == WA_EXIT_SOFTWARE;
}

int
wa_bcast_run(const struct wa_bcast_run_opts *o)
{
	struct worker w;
	long long id = 0;
	int i, rc = WA_EXIT_OK, one, st;

	memset(&w, 0, sizeof w);
	w.o = o;
	w.d.conn = *o->db;
	w.d.url = o->db_url;
	if (bc_worker(&w.d, 0) != 0) {
		wa_err("%s", w.d.err);
		*o->db = w.d.conn;
		return w.d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE;
	}
	wa_log(WA_LOG_DEBUG, "[WA_BROADCAST] worker key %lld", w.d.key);
	for (i = 0; !o->all && i < o->nids; i++) {
		one = run_id(&w, o->ids[i], 1);
		rc = worse(rc, one);
		if (stopped(&w, one))
			break;
	}
	while (o->all) {
		st = next_runnable(&w, id, &id);
		if (st <= 0) {
			if (st < 0) {
				wa_err("%s", w.d.err);
				rc = worse(rc, w.d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE);
			}
			break;
		}
		one = run_id(&w, id, 0);
		rc = worse(rc, one);
		if (stopped(&w, one))
			break;
	}
	*o->db = w.d.conn;
	for (i = 0; i < w.nbiz; i++)
		wa_cfg_free(&w.biz[i].cfg);
	return rc;
}
