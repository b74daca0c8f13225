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

#define MAXBIZ 256
#define SCAN_S 1.0    /* run --all: look for newly runnable broadcasts */
#define NAP_MS 5      /* between turns when the runs have nothing to do now */
#define DEAL_S 0.25   /* --parallel dealt again by what each run uses */

/* What the pre-flight said about a business, remembered for the run. */
struct biz {
	long long id;
	enum wa_provider prov;
	int rc;              /* wa_check_ready's answer */
	char reason[256];
	struct wa_cfg cfg;   /* the settings it sends with */
	double rate;         /* its broadcasts' pace; 0 unlimited */
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

/* The pace of a business's broadcasts: its sender's own rate (WA_RATE:
 * its row's whatsapp_rate, the file's WA_RATE.<id>, the global WA_RATE),
 * with --rate as a cap; else --rate alone (0: unlimited). -1 when its
 * WA_RATE is not a rate. */
static double
rate_of(const struct wa_cfg *own, double cap)
{
	const char *v = wa_cfg_get(own, WA_CFG_RATE);
	double r;

	if (!v)
		return cap;
	r = wa_parse_double(v, 0.001, 1e6);
	if (r < 0)
		return -1;
	return cap > 0 && cap < r ? cap : r;
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
	else if (b->rc == WA_EXIT_OK && (b->rate = rate_of(&b->cfg, w->o->rate)) < 0) {
		b->rc = WA_EXIT_CONFIG;
		snprintf(b->reason, sizeof b->reason, "business %lld: WA_RATE '%.32s' "
		    "is not a rate (messages a second, from 0.001)", business_id,
		    wa_cfg_get(&b->cfg, WA_CFG_RATE));
	}
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

/* Run one broadcast: checks, pre-flight, then the loop; with multi, only
 * set up into *out (NULL: not started, the exit code returned). */
static int
run_id(struct worker *w, long long id, int explicit, int multi, struct run **out)
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
	ro.rate = bz->rate;
	if (multi) {
		*out = bc_run_start(&w->d, &ro, &b, bz->prov,
		    pace_sender(bz, sender, sizeof sender), &st);
		return st;
	}
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

/* --- several broadcasts at once ------------------------------------------ */

/* The runs in hand, stepped in turn; each broadcast is taken up once per
 * invocation (seen), as the sequential loop did. */
struct many {
	struct run **act;
	int *need, *got;    /* share's */
	int nact, maxact;
	long long *seen;
	size_t nseen, capseen;
	int halt;           /* no new runs: a signal, the database */
	int rc;
};

static int
seen(struct many *m, long long id)
{
	size_t i;

	for (i = 0; i < m->nseen; i++)
		if (m->seen[i] == id)
			return 1;
	return 0;
}

static int
see(struct many *m, long long id)
{
	void *p;

	if (m->nseen == m->capseen) {
		p = realloc(m->seen, (m->capseen ? m->capseen * 2 : 64) * sizeof *m->seen);
		if (!p)
			return -1;
		m->seen = p;
		m->capseen = m->capseen ? m->capseen * 2 : 64;
	}
	m->seen[m->nseen++] = id;
	return 0;
}

/* --parallel dealt out among the runs, at least 1 each, adding up to it
 * (there are never more runs than that). With use, by what each used since
 * the last deal: one its pace or its work held back gets what it had on
 * the wire and room for one more, so that the runs that could use more share
 * the rest equally; without (a run came or went), equal slices. */
static void
share(struct worker *w, struct many *m, int use)
{
	int i, k, p = w->o->parallel, n = m->nact, left = p, nleft = n, peak, more;

	for (i = 0; i < n; i++) {
		m->need[i] = 0; /* 0: as much as it is dealt */
		if (use && !bc_run_usage(m->act[i], &peak))
			m->need[i] = peak + 1;
		m->got[i] = 0;
	}
	/* Water-filling: a need within the equal share of what is left is
	 * met, which raises the share of the others. */
	do {
		more = 0;
		for (i = 0; i < n && nleft > 1; i++)
			if (!m->got[i] && m->need[i] > 0 && m->need[i] <= left / nleft) {
				m->got[i] = m->need[i];
				left -= m->need[i];
				nleft--;
				more = 1;
			}
	} while (more);
	for (i = k = 0; i < n; i++)
		if (!m->got[i]) {
			m->got[i] = left / nleft + (k++ < left % nleft);
			if (m->got[i] < 1)
				m->got[i] = 1;
		}
	for (i = 0; i < n; i++)
		bc_run_share(m->act[i], m->got[i]);
}

static void
outcome(struct worker *w, struct many *m, int one)
{
	int i;

	m->rc = worse(m->rc, one);
	/* A signal or a failure of this process: nothing new, and the
	 * others stop too (their sends finish, the rest go back). A run
	 * that ended for the database or for recipients left for later
	 * stops only itself: the others ride out the database on their own. */
	if (((w->o->stop && *w->o->stop) || one == WA_EXIT_IO ||
	    one == WA_EXIT_SOFTWARE) && !m->halt) {
		m->halt = 1;
		for (i = 0; i < m->nact; i++)
			bc_run_stop(m->act[i]);
	}
}

/* Take up id: started into the set, or its outcome counted. */
static int
take_up(struct worker *w, struct many *m, long long id, int explicit)
{
	struct run *u = NULL;
	int one;

	if (see(m, id) != 0) {
		wa_err("out of memory");
		outcome(w, m, WA_EXIT_SOFTWARE);
		return -1;
	}
	one = run_id(w, id, explicit, 1, &u);
	if (!u) {
		outcome(w, m, one);
		return 0;
	}
	m->act[m->nact++] = u;
	share(w, m, 0);
	return 1;
}

/* Newly runnable broadcasts (--all) or the next of the ids, while there
 * is room. */
static void
scan(struct worker *w, struct many *m, int *next_id)
{
	long long id = 0;
	int st;

	while (!m->halt && m->nact < m->maxact && !(w->o->stop && *w->o->stop)) {
		if (!w->o->all) {
			if (*next_id >= w->o->nids)
				return;
			id = w->o->ids[(*next_id)++];
			if (seen(m, id))
				continue;
			take_up(w, m, id, 1);
			continue;
		}
		st = next_runnable(w, id, &id);
		if (st < 0) {
			wa_err("%s", w->d.err);
			outcome(w, m, w->d.lost ? WA_EXIT_TEMP : WA_EXIT_SOFTWARE);
			return;
		}
		if (st == 0)
			return;
		if (!seen(m, id))
			take_up(w, m, id, 0);
	}
}

static int
run_many(struct worker *w)
{
	struct many m;
	double last_scan, last_deal;
	int i, one, busy, next_id = 0, more;

	memset(&m, 0, sizeof m);
	m.maxact = w->o->parallel > 0 ? w->o->parallel : 1;
	m.act = calloc((size_t)m.maxact, sizeof *m.act);
	m.need = calloc((size_t)m.maxact, sizeof *m.need);
	m.got = calloc((size_t)m.maxact, sizeof *m.got);
	if (!m.act || !m.need || !m.got) {
		free(m.act);
		free(m.need);
		free(m.got);
		wa_err("out of memory");
		return WA_EXIT_SOFTWARE;
	}
	scan(w, &m, &next_id);
	last_scan = last_deal = bc_now();
	for (;;) {
		busy = 0;
		for (i = 0; i < m.nact; i++) {
			if (!bc_run_turn(m.act[i], &one)) {
				busy |= bc_run_busy(m.act[i]);
				continue;
			}
			m.act[i] = m.act[--m.nact];
			i--;
			if (m.nact)
				share(w, &m, 0);
			outcome(w, &m, one);
		}
		/* More to take up: the next ids, or, every second, any
		 * broadcast that became runnable (--all). */
		more = !m.halt && m.nact < m.maxact &&
		    (w->o->all ? bc_now() - last_scan >= SCAN_S || m.nact == 0 :
		    next_id < w->o->nids);
		if (more) {
			scan(w, &m, &next_id);
			last_scan = bc_now();
		}
		if (m.nact == 0 && (m.halt || (w->o->all ? 1 : next_id >= w->o->nids)))
			break;
		if (m.nact > 1 && bc_now() - last_deal >= DEAL_S) {
			share(w, &m, 1);
			last_deal = bc_now();
		}
		/* Every turn is non-blocking: a short nap between rounds,
		 * shorter than a send's pace at the rates in use. */
		bc_sleep_ms(busy ? 1 : NAP_MS);
	}
	free(m.act);
	free(m.need);
	free(m.got);
	free(m.seen);
	return m.rc;
}

int
wa_bcast_run(const struct wa_bcast_run_opts *o)
{
	struct worker w;
	int i, rc = WA_EXIT_OK;

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
	if (!o->all && o->nids == 1)
		rc = run_id(&w, o->ids[0], 1, 0, NULL);
	else if (o->all || o->nids > 1)
		rc = run_many(&w);
	*o->db = w.d.conn;
	for (i = 0; i < w.nbiz; i++)
		wa_cfg_free(&w.biz[i].cfg);
	return rc;
}
