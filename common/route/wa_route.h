/* wa_route.h: which provider sends a business's messages.
 *
 * In order: the --provider option; else, when a database is configured
 * (DATABASE_URL, or libpq's PG* variables) and the message has a business,
 * that business's business.whatsapp_provider, looked up once per business
 * per run; else WA_PROVIDER; else baileys.
 *
 * The one place that says which sender a business uses: its settings are
 * the config's, then the file's KEY.<id> (wa_cfg.h), then the non-secret
 * ones its business row holds (meta_phone_number_id, and baileys_base_url
 * or else whatsapp_shard n, which picks BAILEYS_SHARD_<n>_URL; migration
 * 0013), looked up with its provider. With --provider the row
 * is not read: the file's settings only. */
#ifndef WA_ROUTE_H
#define WA_ROUTE_H

#include <stddef.h>

#include "cfg/wa_cfg.h"
#include "send/wa_send.h"

struct wa_router;

/* forced: the --provider value, or NULL. Connects to the database (and
 * checks its schema) when it will be used. Returns 0, or an exit code with
 * a one-line reason in err: WA_EXIT_USAGE for a bad forced name,
 * WA_EXIT_CONFIG for a bad WA_PROVIDER or an old schema, WA_EXIT_UNAVAIL
 * or WA_EXIT_TEMP when the database cannot be reached. */
int wa_router_new(struct wa_router **out, const struct wa_cfg *cfg,
    const char *forced, char *err, size_t errlen);

/* The provider for business_id (< 0: none). 0 with *p set; -1 with e set
 * for this message (unknown_business, unknown_provider: permanent); -2
 * when the database failed (database_unavailable: fatal). */
int wa_route(struct wa_router *r, long long business_id, enum wa_provider *p,
    struct wa_error *e);

/* The settings business_id (< 0: none) sends with, into *cfg: the
 * router's own (the global ones) when it has nothing of its own, else a
 * copy the router keeps until it is freed; the same pointer for every
 * call about the same business. 0; -1 when its whatsapp_shard names no
 * configured service (not_configured: permanent); -2 when the database failed
 * (database_unavailable: fatal); -3 out of memory (e set). */
int wa_route_cfg(struct wa_router *r, long long business_id,
    const struct wa_cfg **cfg, struct wa_error *e);

/* May this message go to phone ("+972…", E.164) for business_id? Asks
 * wa_optouts (wa_optout.h) when a database is configured and business_id
 * >= 0, one query per call; the routing connection serves, or, when the
 * provider is forced, one opened at the first call. 0 it may (no database:
 * always); -1 opted out (e: opted_out, permanent); -2 when the database
 * failed (database_unavailable: fatal); a lost connection is first tried
 * again for up to 30 s. */
int wa_route_optout(struct wa_router *r, long long business_id,
    const char *phone, struct wa_error *e);

/* 1 when businesses are looked up in the database. */
int wa_router_uses_db(const struct wa_router *r);

void wa_router_free(struct wa_router *r);

#endif
