/* wa_cfg.h: the settings every program reads, from the environment and an
 * optional KEY=VALUE config file.
 *
 * Precedence: a config file (--config FILE, else $WA_CONFIG) overrides the
 * environment, key by key; an empty value counts as unset. The file must not
 * be readable or writable by group or others (ssh's rule for keys), since it
 * normally holds INTERNAL_SECRET or META_WA_ACCESS_TOKEN. Error messages
 * name the file, line and key, never a value.
 *
 * A provider setting (wa_cfg_per_business) may also be given for one
 * business, in the file only: KEY.<business-id>=VALUE. It wins over KEY for
 * that business; a business with nothing of its own uses the global ones
 * (wa_cfg_business). */
#ifndef WA_CFG_H
#define WA_CFG_H

#include <stddef.h>

enum wa_cfg_key {
	WA_CFG_BAILEYS_BASE_URL,   /* default http://127.0.0.1:3300 */
	WA_CFG_INTERNAL_SECRET,    /* secret */
	WA_CFG_META_TOKEN,         /* META_WA_ACCESS_TOKEN, secret */
	WA_CFG_META_PHONE_ID,      /* META_WA_PHONE_NUMBER_ID */
	WA_CFG_META_VERSION,       /* META_WA_API_VERSION, default v21.0 */
	WA_CFG_META_BASE_URL,      /* default https://graph.facebook.com */
	WA_CFG_PROVIDER,           /* WA_PROVIDER: baileys or meta */
	WA_CFG_DEFAULT_REGION,     /* WA_DEFAULT_REGION */
	WA_CFG_DATABASE_URL,       /* secret (may hold a password) */
	WA_CFG_CONNECT_TIMEOUT,    /* WA_CONNECT_TIMEOUT, seconds, default 3 */
	WA_CFG_TIMEOUT,            /* WA_TIMEOUT, seconds, default: the
	                              provider's (Baileys 35, Meta 25) */
	WA_CFG_MEDIA_TIMEOUT,      /* WA_MEDIA_TIMEOUT, seconds, default 60 */
	WA_CFG_BAILEYS_MAX_BODY,   /* WA_BAILEYS_MAX_BODY, bytes, default 102400 */
	WA_CFG_RATE,               /* WA_RATE, the sender's messages per second:
	                              its Meta tier, say; unset: --rate alone */
	WA_CFG_NKEYS
};

/* One business's own settings from the file (KEY.<id>). */
struct wa_cfg_biz {
	long long id;
	char *val[WA_CFG_NKEYS]; /* NULL: the global one */
};

struct wa_cfg {
	char *val[WA_CFG_NKEYS]; /* as set (NULL: unset); see wa_cfg_get */
	struct wa_cfg_biz *biz;  /* KEY.<id> settings, in file order of ids */
	size_t nbiz;
	/* BAILEYS_SHARD_<n>_URL (environment or file): the Baileys services
	 * a business's whatsapp_shard picks (wa_cfg_shard_url). */
	struct wa_cfg_shard { long n; char *url; } *shards;
	size_t nshards;
	char file[512];          /* the config file read, "" if none */
	/* The timeouts, checked and in milliseconds; timeout_ms is 0 when
	 * WA_TIMEOUT is unset: each provider then uses its own default. */
	long connect_timeout_ms, timeout_ms, media_timeout_ms;
	/* WA_BAILEYS_MAX_BODY, checked: the Baileys service's JSON body limit
	 * (0: not checked here). */
	long long baileys_max_body;
};

/* Fill c from the environment, then from file (NULL: $WA_CONFIG, if set).
 * Returns 0, or WA_EXIT_CONFIG with a one-line reason in err (a file that is
 * missing, unreadable, loosely permitted, malformed, or a bad timeout). */
int wa_cfg_load(struct wa_cfg *c, const char *file, char *err, size_t errlen);

/* The value of k, or its default, or NULL when unset without a default. */
const char *wa_cfg_get(const struct wa_cfg *c, enum wa_cfg_key k);

/* Set k (from a command-line option); NULL unsets. 0, or -1 (no memory). */
int wa_cfg_set(struct wa_cfg *c, enum wa_cfg_key k, const char *v);

/* The variable name of k: "META_WA_ACCESS_TOKEN". */
const char *wa_cfg_name(enum wa_cfg_key k);

/* 1 when k holds a secret that must never be printed. */
int wa_cfg_is_secret(enum wa_cfg_key k);

/* 1 when k may be given per business (KEY.<id>): the providers' URLs,
 * credentials, phone-number id and API version. */
int wa_cfg_per_business(enum wa_cfg_key k);

/* BAILEYS_SHARD_<n>_URL, or NULL when unset. */
const char *wa_cfg_shard_url(const struct wa_cfg *c, long n);

/* 1 when the file gives business id a setting of its own. */
int wa_cfg_has_business(const struct wa_cfg *c, long long id);

/* The settings of business id into out (a copy, freed with wa_cfg_free;
 * no per-business list of its own): c's, then the file's KEY.<id>, then
 * db[k] for each non-secret per-business key whose db[k] is set (the
 * business's row: it wins over the file). db may be NULL; a secret never
 * comes from it. id < 0: a plain copy. 0, or -1 (no memory). */
int wa_cfg_business(const struct wa_cfg *c, long long id,
    const char *const *db, struct wa_cfg *out);

/* Parse a timeout in seconds ("2.5") into milliseconds; -1 if bad. */
long wa_cfg_parse_timeout(const char *s);

/* Parse a size in bytes ("102400", "100k", "100kb", "1M"; k = 1024, as
 * express spells its limits) up to 1 GiB; -1 if bad. */
long long wa_cfg_parse_size(const char *s);

void wa_cfg_free(struct wa_cfg *c);

#endif
