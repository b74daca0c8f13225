/* cfg.c: settings from the environment and a KEY=VALUE config file.
 *
 * File format, one setting a line:
 *     # a comment (a whole line)
 *     KEY=VALUE              the rest of the line, spaces around it trimmed
 *     export KEY="VALUE"     "…" with \" and \\ escapes, or '…' literally
 *     KEY.<business-id>=VALUE  a provider setting for that business only
 *     BAILEYS_SHARD_<n>_URL=URL  Baileys service number n (whatsapp_shard)
 * Unquoted values keep '#' and inner spaces, so a token is never cut. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg/wa_cfg.h"
#include "base/wa_cli.h"

extern char **environ;

#define CFG_MAXFILE (1024 * 1024)

/* per: may be given per business (KEY.<id>). */
static const struct {
	const char *name, *def;
	int secret, per;
} keys[WA_CFG_NKEYS] = {
	[WA_CFG_BAILEYS_BASE_URL] = { "BAILEYS_BASE_URL", "http://127.0.0.1:3300", 0, 1 },
	[WA_CFG_INTERNAL_SECRET] = { "INTERNAL_SECRET", NULL, 1, 1 },
	[WA_CFG_META_TOKEN] = { "META_WA_ACCESS_TOKEN", NULL, 1, 1 },
	[WA_CFG_META_PHONE_ID] = { "META_WA_PHONE_NUMBER_ID", NULL, 0, 1 },
	[WA_CFG_META_VERSION] = { "META_WA_API_VERSION", "v21.0", 0, 1 },
	[WA_CFG_META_BASE_URL] = { "META_WA_BASE_URL", "https://graph.facebook.com", 0, 1 },
	[WA_CFG_PROVIDER] = { "WA_PROVIDER", NULL, 0 },
	[WA_CFG_DEFAULT_REGION] = { "WA_DEFAULT_REGION", NULL, 0 },
	[WA_CFG_DATABASE_URL] = { "DATABASE_URL", NULL, 1 },
	[WA_CFG_CONNECT_TIMEOUT] = { "WA_CONNECT_TIMEOUT", "3", 0 },
	/* No default here: Baileys and Meta differ (see send/provider/). */
	[WA_CFG_TIMEOUT] = { "WA_TIMEOUT", NULL, 0 },
	[WA_CFG_MEDIA_TIMEOUT] = { "WA_MEDIA_TIMEOUT", "60", 0 },
	/* express.json()'s default limit, which the real service keeps. */
	[WA_CFG_BAILEYS_MAX_BODY] = { "WA_BAILEYS_MAX_BODY", "102400", 0 },
	/* Per business: each sender has its own limit (Meta's tier). */
	[WA_CFG_RATE] = { "WA_RATE", NULL, 0, 1 },
};

const char *
wa_cfg_name(enum wa_cfg_key k)
{
	return keys[k].name;
}

int
wa_cfg_is_secret(enum wa_cfg_key k)
{
	return keys[k].secret;
}

int
wa_cfg_per_business(enum wa_cfg_key k)
{
	return keys[k].per;
}

const char *
wa_cfg_get(const struct wa_cfg *c, enum wa_cfg_key k)
{
	return c->val[k] ? c->val[k] : keys[k].def;
}

/* Set one slot of k; NULL or "" unsets. */
static int
set_val(char **slot, enum wa_cfg_key k, const char *v)
{
	char *dup = NULL;

	if (v && *v) {
		dup = strdup(v);
		if (!dup)
			return -1;
	}
	if (*slot && keys[k].secret)
		explicit_bzero(*slot, strlen(*slot));
	free(*slot);
	*slot = dup;
	return 0;
}

int
wa_cfg_set(struct wa_cfg *c, enum wa_cfg_key k, const char *v)
{
	return set_val(&c->val[k], k, v);
}

void
wa_cfg_free(struct wa_cfg *c)
{
	size_t i;
	int k;

	for (k = 0; k < WA_CFG_NKEYS; k++) {
		wa_cfg_set(c, (enum wa_cfg_key)k, NULL);
		for (i = 0; i < c->nbiz; i++)
			set_val(&c->biz[i].val[k], (enum wa_cfg_key)k, NULL);
	}
	free(c->biz);
	c->biz = NULL;
	c->nbiz = 0;
	for (i = 0; i < c->nshards; i++)
		free(c->shards[i].url);
	free(c->shards);
	c->shards = NULL;
	c->nshards = 0;
}

const char *
wa_cfg_shard_url(const struct wa_cfg *c, long n)
{
	size_t i;

	for (i = 0; i < c->nshards; i++)
		if (c->shards[i].n == n)
			return c->shards[i].url;
	return NULL;
}

/* "BAILEYS_SHARD_<n>_URL" (name, n bytes): its n, else -1. */
static long
shard_of(const char *name, size_t n)
{
	static const char pre[] = "BAILEYS_SHARD_", suf[] = "_URL";
	char num[16];
	size_t dn;

	if (n <= sizeof pre - 1 + sizeof suf - 1 || memcmp(name, pre, sizeof pre - 1) != 0 ||
	    memcmp(name + n - (sizeof suf - 1), suf, sizeof suf - 1) != 0)
		return -1;
	dn = n - (sizeof pre - 1) - (sizeof suf - 1);
	if (dn >= sizeof num)
		return -1;
	memcpy(num, name + sizeof pre - 1, dn);
	num[dn] = '\0';
	return wa_parse_long(num, 0, 0x7fffffffL);
}

/* Set shard n's URL (NULL or "": unset). 0, or -1 (no memory). */
static int
shard_set(struct wa_cfg *c, long n, const char *url)
{
	struct wa_cfg_shard *sh;
	size_t i;

	for (i = 0; i < c->nshards; i++)
		if (c->shards[i].n == n)
			break;
	if (i == c->nshards) {
		sh = realloc(c->shards, (c->nshards + 1) * sizeof *sh);
		if (!sh)
			return -1;
		c->shards = sh;
		c->shards[c->nshards].n = n;
		c->shards[c->nshards++].url = NULL;
	}
	free(c->shards[i].url);
	c->shards[i].url = url && *url ? strdup(url) : NULL;
	return url && *url && !c->shards[i].url ? -1 : 0;
}

static const struct wa_cfg_biz *
biz_find(const struct wa_cfg *c, long long id)
{
	size_t i;

	for (i = 0; i < c->nbiz; i++)
		if (c->biz[i].id == id)
			return &c->biz[i];
	return NULL;
}

/* Business id's own settings, added when new; NULL: no memory. */
static struct wa_cfg_biz *
biz_get(struct wa_cfg *c, long long id)
{
	struct wa_cfg_biz *b = (struct wa_cfg_biz *)biz_find(c, id);

	if (b)
		return b;
	b = realloc(c->biz, (c->nbiz + 1) * sizeof *b);
	if (!b)
		return NULL;
	c->biz = b;
	b = &c->biz[c->nbiz++];
	memset(b, 0, sizeof *b);
	b->id = id;
	return b;
}

int
wa_cfg_has_business(const struct wa_cfg *c, long long id)
{
	const struct wa_cfg_biz *b = id >= 0 ? biz_find(c, id) : NULL;
	int k;

	for (k = 0; b && k < WA_CFG_NKEYS; k++)
		if (b->val[k])
			return 1;
	return 0;
}

int
wa_cfg_business(const struct wa_cfg *c, long long id, const char *const *db,
    struct wa_cfg *out)
{
	const struct wa_cfg_biz *b = id >= 0 ? biz_find(c, id) : NULL;
	const char *v;
	int k;

	memset(out, 0, sizeof *out);
	snprintf(out->file, sizeof out->file, "%s", c->file);
	out->connect_timeout_ms = c->connect_timeout_ms;
	out->timeout_ms = c->timeout_ms;
	out->media_timeout_ms = c->media_timeout_ms;
	out->baileys_max_body = c->baileys_max_body;
	for (k = 0; k < WA_CFG_NKEYS; k++) {
		v = c->val[k];
		if (b && b->val[k])
			v = b->val[k];
		/* The database holds no secret: one there is not used. */
		if (id >= 0 && db && db[k] && *db[k] && keys[k].per && !keys[k].secret)
			v = db[k];
		if (wa_cfg_set(out, (enum wa_cfg_key)k, v) != 0) {
			wa_cfg_free(out);
			return -1;
		}
	}
	return 0;
}

long
wa_cfg_parse_timeout(const char *s)
{
	double v = wa_parse_double(s, 0.001, 86400);

	return v < 0 ? -1 : (long)(v * 1000 + 0.5);
}

long long
wa_cfg_parse_size(const char *s)
{
	static const struct { const char *suffix; long long mult; } units[] = {
		{ "", 1 }, { "k", 1024 }, { "kb", 1024 }, { "m", 1024 * 1024 },
		{ "mb", 1024 * 1024 },
	};
	const long long max = 1LL << 30;
	long long v = 0;
	size_t i;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	for (i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcasecmp(s, units[i].suffix) == 0)
			return v * units[i].mult > max ? -1 : v * units[i].mult;
	return -1;
}

static int
key_of(const char *name, size_t n)
{
	int k;

	for (k = 0; k < WA_CFG_NKEYS; k++)
		if (strlen(keys[k].name) == n && memcmp(keys[k].name, name, n) == 0)
			return k;
	return -1;
}

/* Unquote v in place. 0, or -1 when the quoting is broken. */
static int
unquote(char *v)
{
	char q = v[0], *r = v + 1, *w = v;

	if (q != '"' && q != '\'')
		return 0;
	while (*r && *r != q) {
		if (q == '"' && *r == '\\' && (r[1] == '"' || r[1] == '\\'))
			r++;
		*w++ = *r++;
	}
	if (*r != q)
		return -1;
	*w = '\0';
	for (r++; *r == ' ' || *r == '\t'; r++)
		;
	return *r == '\0' || *r == '#' ? 0 : -1;
}

static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* One line of the file; 0, or -1 with err set (no value in it). */
static int
parse_line(struct wa_cfg *c, char *line, unsigned long lineno, char *err,
    size_t errlen)
{
	char *s = trim(line), *eq, *v, *dot, **slot;
	struct wa_cfg_biz *b;
	long long id = -1;
	long shard;
	size_t n, kn;
	int k;

	if (*s == '\0' || *s == '#')
		return 0;
	if (strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t'))
		s = trim(s + 6);
	eq = strchr(s, '=');
	if (!eq) {
		snprintf(err, errlen, "%s:%lu: not a KEY=VALUE line", c->file, lineno);
		return -1;
	}
	n = (size_t)(eq - s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if ((shard = shard_of(s, n)) >= 0) {
		v = trim(eq + 1);
		if (unquote(v) != 0) {
			snprintf(err, errlen, "%s:%lu: %.*s: unbalanced quotes", c->file,
			    lineno, (int)n, s);
			return -1;
		}
		if (shard_set(c, shard, v) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	/* KEY.<business-id>: that business's own setting. */
	dot = memchr(s, '.', n);
	kn = dot ? (size_t)(dot - s) : n;
	k = key_of(s, kn);
	if (k < 0) {
		snprintf(err, errlen, "%s:%lu: unknown key '%.*s'", c->file, lineno,
		    (int)(kn > 64 ? 64 : kn), s);
		return -1;
	}
	if (dot) {
		char idtext[16];
		size_t idn = n - kn - 1;

		if (idn > 0 && idn < sizeof idtext) {
			memcpy(idtext, dot + 1, idn);
			idtext[idn] = '\0';
			id = wa_parse_long(idtext, 0, 0x7fffffffL);
		}
		if (id < 0) {
			snprintf(err, errlen, "%s:%lu: %s: '.%.*s' is not a business id",
			    c->file, lineno, keys[k].name, (int)(idn > 24 ? 24 : idn),
			    dot + 1);
			return -1;
		}
		if (!keys[k].per) {
			snprintf(err, errlen, "%s:%lu: %s cannot be set per business "
			    "(%s.%lld)", c->file, lineno, keys[k].name, keys[k].name, id);
			return -1;
		}
	}
	v = trim(eq + 1);
	if (unquote(v) != 0) {
		snprintf(err, errlen, "%s:%lu: %s: unbalanced quotes", c->file,
		    lineno, keys[k].name);
		return -1;
	}
	if (id < 0)
		slot = &c->val[k];
	else if ((b = biz_get(c, id)) != NULL)
		slot = &b->val[k];
	else
		slot = NULL;
	if (!slot || set_val(slot, (enum wa_cfg_key)k, v) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Refuse what is not ours or not private, as ssh does with keys. */
static int
check_file(const char *path, int fd, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "%s: permissions %04o are too open: group or "
		    "others may read it; run chmod 600 '%s'", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	if (st.st_uid != getuid() && st.st_uid != 0) {
		snprintf(err, errlen, "%s: owned by another user (uid %u)", path,
		    (unsigned)st.st_uid);
		return -1;
	}
	if (st.st_size > CFG_MAXFILE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CFG_MAXFILE);
		return -1;
	}
	return 0;
}

static int
read_file(struct wa_cfg *c, const char *path, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t n;
	FILE *f;
	int fd, rc = 0;

	snprintf(c->file, sizeof c->file, "%s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (check_file(path, fd, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	f = fdopen(fd, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (strlen(line) != (size_t)n) {
			snprintf(err, errlen, "%s:%lu: NUL byte in line", path, lineno);
			rc = -1;
			break;
		}
		rc = parse_line(c, line, lineno, err, errlen);
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	/* The line may have held a secret. */
	if (line)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return rc;
}

static int
set_timeout(const struct wa_cfg *c, enum wa_cfg_key k, long *ms, char *err,
    size_t errlen)
{
	if (!wa_cfg_get(c, k)) {
		*ms = 0; /* the provider's default */
		return 0;
	}
	*ms = wa_cfg_parse_timeout(wa_cfg_get(c, k));
	if (*ms < 0) {
		snprintf(err, errlen, "%s: not a number of seconds from 0.001 to 86400",
		    keys[k].name);
		return -1;
	}
	return 0;
}

int
wa_cfg_load(struct wa_cfg *c, const char *file, char *err, size_t errlen)
{
	char **ep;
	int k;

	memset(c, 0, sizeof *c);
	for (k = 0; k < WA_CFG_NKEYS; k++)
		if (wa_cfg_set(c, (enum wa_cfg_key)k, getenv(keys[k].name)) != 0)
			goto nomem;
	for (ep = environ; *ep; ep++) {
		const char *eq = strchr(*ep, '=');
		long n = eq ? shard_of(*ep, (size_t)(eq - *ep)) : -1;

		if (n >= 0 && shard_set(c, n, eq + 1) != 0)
			goto nomem;
	}
	if (!file || !*file)
		file = getenv("WA_CONFIG");
	if (file && *file && read_file(c, file, err, errlen) != 0)
		goto fail;
	if (set_timeout(c, WA_CFG_CONNECT_TIMEOUT, &c->connect_timeout_ms, err, errlen) ||
	    set_timeout(c, WA_CFG_TIMEOUT, &c->timeout_ms, err, errlen) ||
	    set_timeout(c, WA_CFG_MEDIA_TIMEOUT, &c->media_timeout_ms, err, errlen))
		goto fail;
	c->baileys_max_body = wa_cfg_parse_size(wa_cfg_get(c, WA_CFG_BAILEYS_MAX_BODY));
	if (c->baileys_max_body < 0) {
		snprintf(err, errlen, "%s: not a size in bytes (like 102400, 100k or "
		    "1M; at most 1024M; 0: no limit)", keys[WA_CFG_BAILEYS_MAX_BODY].name);
		goto fail;
	}
	return WA_EXIT_OK;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	wa_cfg_free(c);
	return WA_EXIT_CONFIG;
}
