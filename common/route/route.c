/* route.c: provider choice per business, the database asked once each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "send/wa_send.h"
#include "base/wa_cli.h"
#include "db/wa_db.h"
#include "db/wa_optout.h"
#include "route/wa_route.h"

/* What a business routes to, as cached. */
enum { R_EMPTY, R_BAILEYS, R_META, R_DEFAULT, R_UNKNOWN, R_BAD };

struct slot {
	long long id;
	int what;
	struct wa_cfg *cfg;          /* its own settings; NULL: the global */
	long bad_shard;              /* >= 0: its whatsapp_shard has no URL */
};

/* The non-secret settings a business row may hold (migration 0013), in
 * the order of the lookup's columns after whatsapp_provider. */
static const enum wa_cfg_key dbkeys[] = { WA_CFG_META_PHONE_ID,
	WA_CFG_BAILEYS_BASE_URL, WA_CFG_RATE };
#define NDBKEYS ((int)(sizeof dbkeys / sizeof dbkeys[0]))

struct wa_router {
	const struct wa_cfg *cfg;    /* the global settings */
	int forced;                  /* a provider, or 0 */
	enum wa_provider deflt;      /* WA_PROVIDER, else baileys */
	PGconn *db;                  /* NULL: no lookups */
	char *url;                   /* a database is configured: DATABASE_URL
	                                or NULL for libpq's PG* */
	int has_db;                  /* one is configured */
	int opened;                  /* tried to open db for opt-outs */
	struct slot *tab;            /* open addressing, power-of-2 size */
	size_t cap, used;
};

int
wa_router_new(struct wa_router **out, const struct wa_cfg *cfg,
    const char *forced, char *err, size_t errlen)
{
	const char *env = wa_cfg_get(cfg, WA_CFG_PROVIDER);
	const char *url = wa_cfg_get(cfg, WA_CFG_DATABASE_URL);
	struct wa_router *r;
	enum wa_provider p;
	int code = 0;

	*out = NULL;
	if (forced && wa_provider_parse(forced, &p) != 0) {
		snprintf(err, errlen, "--provider: '%.40s' is not baileys or meta", forced);
		return WA_EXIT_USAGE;
	}
	r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return WA_EXIT_SOFTWARE;
	}
	r->cfg = cfg;
	r->forced = forced ? (int)p : 0;
	r->deflt = WA_PROVIDER_BAILEYS;
	if (env && wa_provider_parse(env, &r->deflt) != 0) {
		snprintf(err, errlen, "WA_PROVIDER: '%.40s' is not baileys or meta", env);
		free(r);
		return WA_EXIT_CONFIG;
	}
	r->has_db = url || wa_db_configured();
	if (url && !(r->url = strdup(url))) {
		snprintf(err, errlen, "out of memory");
		free(r);
		return WA_EXIT_SOFTWARE;
	}
	if (!forced && r->has_db) {
		r->db = wa_db_open(url, wa_progname(), err, errlen, &code);
		if (!r->db) {
			wa_router_free(r);
			return code ? code : WA_EXIT_UNAVAIL;
		}
	}
	*out = r;
	return 0;
}

void
wa_router_free(struct wa_router *r)
{
	size_t i;

	if (!r)
		return;
	if (r->db)
		PQfinish(r->db);
	free(r->url);
	for (i = 0; i < r->cap; i++)
		if (r->tab[i].cfg) {
			wa_cfg_free(r->tab[i].cfg);
			free(r->tab[i].cfg);
		}
	free(r->tab);
	free(r);
}

int
wa_router_uses_db(const struct wa_router *r)
{
	return r->db != NULL;
}

static size_t
hash(long long id, size_t cap)
{
	unsigned long long h = (unsigned long long)id * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 32) & (cap - 1);
}

static struct slot *
find(struct wa_router *r, long long id)
{
	size_t i;

	if (!r->cap)
		return NULL;
	for (i = hash(id, r->cap); r->tab[i].what != R_EMPTY; i = (i + 1) & (r->cap - 1))
		if (r->tab[i].id == id)
			return &r->tab[i];
	return NULL;
}

static int
grow(struct wa_router *r)
{
	struct slot *old = r->tab;
	size_t oldcap = r->cap, i, j;

	r->cap = oldcap ? oldcap * 2 : 64;
	r->tab = calloc(r->cap, sizeof *r->tab);
	if (!r->tab) {
		r->tab = old;
		r->cap = oldcap;
		return -1;
	}
	for (i = 0; i < oldcap; i++) {
		if (old[i].what == R_EMPTY)
			continue;
		for (j = hash(old[i].id, r->cap); r->tab[j].what != R_EMPTY; j = (j + 1) & (r->cap - 1))
			;
		r->tab[j] = old[i];
	}
	free(old);
	return 0;
}

/* The slot of id, new; NULL when there is no room (not cached: asked
 * again next time). */
static struct slot *
remember(struct wa_router *r, long long id, int what)
{
	size_t i;

	if ((r->used + 1) * 2 > r->cap && grow(r) != 0)
		return NULL;
	for (i = hash(id, r->cap); r->tab[i].what != R_EMPTY; i = (i + 1) & (r->cap - 1))
		;
	memset(&r->tab[i], 0, sizeof r->tab[i]);
	r->tab[i].id = id;
	r->tab[i].what = what;
	r->used++;
	return &r->tab[i];
}

/* Business id's settings (NULL: the global ones), from the file and db
 * (its row's values, or NULL). 0, or -1 out of memory. */
static int
settings(struct wa_router *r, long long id, const char *const *db, struct wa_cfg **out)
{
	int k, own = wa_cfg_has_business(r->cfg, id);

	*out = NULL;
	for (k = 0; db && !own && k < WA_CFG_NKEYS; k++)
		own = db[k] != NULL && *db[k];
	if (!own)
		return 0;
	*out = malloc(sizeof **out);
	if (!*out || wa_cfg_business(r->cfg, id, db, *out) != 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Ask the database; R_* or -1 when it failed, or -3 out of memory. Also
 * the business's settings into *cfg, and *bad_shard >= 0 when its
 * whatsapp_shard names a service with no BAILEYS_SHARD_<n>_URL. */
static int
lookup(struct wa_router *r, long long id, struct wa_cfg **cfg, long *bad_shard,
    struct wa_error *e)
{
	static const char sql[] = "SELECT whatsapp_provider, meta_phone_number_id,"
	    " baileys_base_url, whatsapp_rate::text, whatsapp_shard::text"
	    " FROM business WHERE id = $1";
	char idtext[32], buf[256];
	const char *params[1] = { idtext };
	const char *db[WA_CFG_NKEYS] = { NULL };
	const char *v;
	enum wa_provider p;
	PGresult *res;
	int what, i;

	snprintf(idtext, sizeof idtext, "%lld", id);
	res = PQexecParams(r->db, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		wa_error_set(e, "database_unavailable", WA_CLASS_FATAL,
		    "looking up business %lld: %s", id, wa_db_errmsg(r->db, buf, sizeof buf));
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 0)
		what = R_UNKNOWN;
	else if (PQgetisnull(res, 0, 0) || !*(v = PQgetvalue(res, 0, 0)))
		what = R_DEFAULT;
	else if (wa_provider_parse(v, &p) == 0)
		what = p == WA_PROVIDER_META ? R_META : R_BAILEYS;
	else
		what = R_BAD;
	for (i = 0; what != R_UNKNOWN && i < NDBKEYS; i++)
		if (!PQgetisnull(res, 0, i + 1))
			db[dbkeys[i]] = PQgetvalue(res, 0, i + 1);
	/* Its shard picks its Baileys service unless its row names one. */
	*bad_shard = -1;
	if (what != R_UNKNOWN && !db[WA_CFG_BAILEYS_BASE_URL] && !PQgetisnull(res, 0, NDBKEYS + 1)) {
		long n = wa_parse_long(PQgetvalue(res, 0, NDBKEYS + 1), 0, 0x7fffffffL);

		db[WA_CFG_BAILEYS_BASE_URL] = n >= 0 ? wa_cfg_shard_url(r->cfg, n) : NULL;
		if (!db[WA_CFG_BAILEYS_BASE_URL])
			*bad_shard = n >= 0 ? n : 0x7fffffffL;
	}
	if (settings(r, id, what == R_UNKNOWN ? NULL : db, cfg) != 0) {
		PQclear(res);
		wa_error_set(e, "no_memory", WA_CLASS_FATAL, "out of memory");
		return -3;
	}
	PQclear(res);
	return what;
}

/* id's slot, looked up (in the database when there is one) if new. NULL
 * with e set and *rc: -2 database failed, -3 no memory. *tmp gets an
 * uncached entry when the table is full (the caller frees its cfg). */
static struct slot *
slot_of(struct wa_router *r, long long id, struct slot *tmp, int *rc,
    struct wa_error *e)
{
	struct slot *s = find(r, id);
	struct wa_cfg *cfg = NULL;
	long bad = -1;
	int what;

	if (s)
		return s;
	/* A forced provider wins over the business row: it is not read. */
	if (r->db && !r->forced) {
		what = lookup(r, id, &cfg, &bad, e);
		if (what < 0) {
			*rc = what == -3 ? -3 : -2;
			return NULL;
		}
	} else {
		what = R_DEFAULT;
		if (settings(r, id, NULL, &cfg) != 0) {
			wa_error_set(e, "no_memory", WA_CLASS_FATAL, "out of memory");
			*rc = -3;
			return NULL;
		}
	}
	s = remember(r, id, what);
	if (!s) {
		memset(tmp, 0, sizeof *tmp);
		s = tmp;
		s->id = id;
		s->what = what;
	}
	s->cfg = cfg;
	s->bad_shard = bad;
	return s;
}

int
wa_route(struct wa_router *r, long long business_id, enum wa_provider *p,
    struct wa_error *e)
{
	struct slot *s, tmp;
	int what, rc = 0;

	if (r->forced) {
		*p = (enum wa_provider)r->forced;
		return 0;
	}
	if (!r->db || business_id < 0) {
		*p = r->deflt;
		return 0;
	}
	s = slot_of(r, business_id, &tmp, &rc, e);
	if (!s)
		return -2;
	what = s->what;
	if (s == &tmp && tmp.cfg) {
		wa_cfg_free(tmp.cfg);
		free(tmp.cfg);
	}
	switch (what) {
	case R_BAILEYS: *p = WA_PROVIDER_BAILEYS; return 0;
	case R_META: *p = WA_PROVIDER_META; return 0;
	case R_DEFAULT: *p = r->deflt; return 0;
	case R_UNKNOWN:
		wa_error_set(e, "unknown_business", WA_CLASS_PERMANENT,
		    "no business %lld in the database", business_id);
		return -1;
	default:
		wa_error_set(e, "unknown_provider", WA_CLASS_PERMANENT,
		    "business %lld: whatsapp_provider is not baileys or meta", business_id);
		return -1;
	}
}

/* How long a lost connection is tried again before the check gives up: a
 * database restarted mid-run (seconds) must not stop the sends, as it
 * does not stop a broadcast's run (--db-wait's default). */
#define OPTOUT_WAIT_MS 30000

/* wa_optout_find, reconnecting (with backoff) while the connection is
 * lost. Nothing is sent meanwhile: an unchecked number must not go. */
static int
optout_find(struct wa_router *r, long long business_id, const char *phone,
    char *err, size_t errlen)
{
	struct timespec ts;
	int st, waited = 0, delay = 50, said = 0;

	for (;;) {
		st = wa_optout_find(r->db, business_id, phone, err, errlen);
		if (st >= 0 || PQstatus(r->db) == CONNECTION_OK || waited >= OPTOUT_WAIT_MS)
			return st;
		if (!said++)
			wa_warn("%s: reconnecting for up to %d s", err, OPTOUT_WAIT_MS / 1000);
		ts.tv_sec = delay / 1000;
		ts.tv_nsec = (long)(delay % 1000) * 1000000L;
		nanosleep(&ts, NULL);
		waited += delay;
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
		PQreset(r->db);
	}
}

/* A forced provider needs no routing connection: the first message of a
 * business whose opt-outs are checked opens one, once. 0, or -2 with e
 * set. */
static int
open_db(struct wa_router *r, const char *what, struct wa_error *e)
{
	char err[600];
	int code = 0;

	if (r->db)
		return 0;
	if (r->opened) {
		wa_error_set(e, "database_unavailable", WA_CLASS_FATAL,
		    "%s: no database connection", what);
		return -2;
	}
	r->opened = 1;
	r->db = wa_db_open(r->url, wa_progname(), err, sizeof err, &code);
	if (!r->db) {
		wa_error_set(e, "database_unavailable", WA_CLASS_FATAL, "%s: %s",
		    what, err);
		return -2;
	}
	return 0;
}

int
wa_route_cfg(struct wa_router *r, long long business_id,
    const struct wa_cfg **cfg, struct wa_error *e)
{
	struct slot *s, tmp;
	int rc = 0;

	*cfg = r->cfg;
	if (business_id < 0)
		return 0;
	s = slot_of(r, business_id, &tmp, &rc, e);
	if (!s)
		return rc;
	if (s == &tmp && tmp.cfg) {
		/* Nowhere to keep it: the table could not grow. */
		wa_cfg_free(tmp.cfg);
		free(tmp.cfg);
		wa_error_set(e, "no_memory", WA_CLASS_FATAL, "out of memory");
		return -3;
	}
	if (s->bad_shard >= 0 && (s->what == R_BAILEYS ||
	    (s->what == R_DEFAULT && r->deflt == WA_PROVIDER_BAILEYS))) {
		wa_error_set(e, "not_configured", WA_CLASS_PERMANENT, "business %lld: "
		    "its whatsapp_shard %ld has no BAILEYS_SHARD_%ld_URL", business_id,
		    s->bad_shard, s->bad_shard);
		return -1;
	}
	if (s->cfg)
		*cfg = s->cfg;
	return 0;
}

int
wa_route_optout(struct wa_router *r, long long business_id, const char *phone,
    struct wa_error *e)
{
	char err[600];
	int st;

	if (!r->has_db || business_id < 0 || !phone || !*phone)
		return 0;
	if (open_db(r, "checking opt-outs", e) != 0)
		return -2;
	st = optout_find(r, business_id, phone, err, sizeof err);
	if (st < 0) {
		wa_error_set(e, "database_unavailable", WA_CLASS_FATAL, "%s", err);
		return -2;
	}
	if (st == 0)
		return 0;
	wa_error_set(e, "opted_out", WA_CLASS_PERMANENT, "%s opted out of "
	    "business %lld's messages (wa-broadcast optout list); not sent",
	    phone, business_id);
	return -1;
}
