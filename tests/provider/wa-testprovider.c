/*
 * wa-testprovider: the test double for both WhatsApp providers.
 *
 * A real HTTP server on loopback that speaks the Baileys service contract
 * and the Meta WhatsApp Cloud API contract (shared/reference/providers.md
 * §1, §2), records every request as one JSON line, and injects faults on
 * demand (command-line flags at start, POST /_control at run time).
 *
 * Concurrency model: libmicrohttpd with one thread per connection, so a
 * request that sleeps (latency, slow:<ms>) or is held open (timeout) blocks
 * only its own connection.  Everything shared (fault configuration,
 * counters, the per-recipient table) lives under one mutex, g_lock; each
 * log line is a single write on an O_APPEND descriptor, made before the
 * reply goes out.  Sleeps wait on a condition variable that the main
 * thread signals at shutdown, so SIGTERM ends the process promptly.
 *
 * Order of checks on a send route: the Baileys body limit (off unless
 * set; express.json() refuses a body before any route sees it), count the
 * attempt, authenticate, validate the body, then pick a fault (per-recipient rule, "after",
 * rates), then the Baileys session state, then succeed.
 *
 * Secrets (INTERNAL_SECRET, META_WA_ACCESS_TOKEN) come from the environment
 * and are only ever compared: they are never printed, logged or echoed.  A
 * request body that contains one is logged with it redacted.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sysexits.h>

#include <microhttpd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#ifndef WA_VERSION
#define WA_VERSION "0.0.0"
#endif

#define PROG "wa-testprovider"

#define BODY_MAX ((size_t)150 << 20)  /* request bodies above this get 413 */
#define HOLD_MAX_MS 600000L           /* "timeout" holds a connection at most this long */
#define DELAY_MAX_MS 600000L          /* cap on latency_ms and slow:<ms> */
#define LOG_DATA_MAX 256              /* longer "data" strings are logged as "<N bytes>" */
#define LOG_STRING_MAX 65536          /* longer strings of any kind likewise */
#define JSON_DEPTH_MAX 64             /* deeper bodies are treated as not JSON */
#define SEG_MAX 128                   /* longest path segment we route on */
#define DIGITS_MAX 64                 /* longest recipient key */
#define MEDIA_CAP ((size_t)16 << 20)  /* Baileys image/video/audio (decoded) */
#define DOC_CAP ((size_t)100 << 20)   /* Baileys document (decoded) */

#define THROUGHPUT_MAX 10000         /* "throughput": sends per second at most */

#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Process-wide settings and small helpers                                  */

static struct {
	const char *bind;
	const char *port_file;
	const char *log_path;
	unsigned port;
	long latency_ms;
	long baileys_body_limit;
	unsigned long long seed;
	bool quiet;
} opt = { .bind = "127.0.0.1" };

/* From the environment; NULL when unset or empty. */
static const char *g_secret;  /* INTERNAL_SECRET */
static const char *g_token;   /* META_WA_ACCESS_TOKEN */
static const char *g_pnid;    /* META_WA_PHONE_NUMBER_ID */

static void die_oom(void)
{
	static const char msg[] = PROG ": error: out of memory\n";
	if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing left to do */ }
	abort();
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		die_oom();
	return d;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64's finaliser: a bijection on 64 bits with good mixing. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Compare a presented credential with the configured one without an early
 * exit on the first differing byte. */
static bool secret_eq(const char *given, const char *want)
{
	size_t n = strlen(want);
	if (strlen(given) != n)
		return false;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(given[i] ^ want[i]);
	return d == 0;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* The recipient key of a `to`: the digits of the part before any '@'
 * ("+972 50-123 4567" and "972501234567@s.whatsapp.net" both give
 * "972501234567").  Returns its length; 0 when there are no digits. */
static size_t to_digits(const char *to, char out[DIGITS_MAX + 1])
{
	size_t n = 0;
	for (; *to && *to != '@' && n < DIGITS_MAX; to++)
		if (isdigit((unsigned char)*to))
			out[n++] = *to;
	out[n] = '\0';
	return n;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if ((s[0] & 0xE0) == 0xC0) { len = 2; cp = s[0] & 0x1F; }
	else if ((s[0] & 0xF0) == 0xE0) { len = 3; cp = s[0] & 0x0F; }
	else if ((s[0] & 0xF8) == 0xF0) { len = 4; cp = s[0] & 0x07; }
	else return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* ------------------------------------------------------------------------ */
/* JSON output (yajl_gen) and input (yajl_tree) helpers                     */

static yajl_gen gen_new(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		die_oom();
	return g;
}

/* A string, with invalid UTF-8 bytes replaced by '?' so the output is
 * always valid JSON (path segments and headers are arbitrary bytes). */
static void gen_strn(yajl_gen g, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;
	while (i < n && (k = utf8_seq(u + i, n - i)) != 0)
		i += k;
	if (i == n) {
		yajl_gen_string(g, u, n);
		return;
	}
	unsigned char *c = xrealloc(NULL, n);
	for (i = 0; i < n;) {
		k = utf8_seq(u + i, n - i);
		if (k == 0) {
			c[i++] = '?';
		} else {
			memcpy(c + i, u + i, k);
			i += k;
		}
	}
	yajl_gen_string(g, c, n);
	free(c);
}

static void gen_str(yajl_gen g, const char *s)
{
	if (s)
		gen_strn(g, s, strlen(s));
	else
		yajl_gen_null(g);
}

static void gen_key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

static void gen_kv_str(yajl_gen g, const char *k, const char *v)
{
	gen_key(g, k);
	gen_str(g, v);
}

static void gen_kv_int(yajl_gen g, const char *k, long long v)
{
	gen_key(g, k);
	yajl_gen_integer(g, v);
}

static void gen_kv_bool(yajl_gen g, const char *k, bool v)
{
	gen_key(g, k);
	yajl_gen_bool(g, v);
}

/* Doubles as the shortest text that reads back the same (yajl's own
 * "%.20g" prints 0.02 as 0.020000000000000000416). */
static void gen_double(yajl_gen g, double d)
{
	char buf[40];
	int n = snprintf(buf, sizeof buf, "%.17g", d);
	for (int prec = 1; prec < 17; prec++) {
		char shorter[40];
		int m = snprintf(shorter, sizeof shorter, "%.*g", prec, d);
		if (strtod(shorter, NULL) == d) {
			memcpy(buf, shorter, (size_t)m + 1);
			n = m;
			break;
		}
	}
	yajl_gen_number(g, buf, (size_t)n);
}

/* Take the generated text as a malloc'd, NUL-terminated string and free g. */
static char *gen_finish(yajl_gen g, size_t *len)
{
	const unsigned char *buf;
	size_t n;
	yajl_gen_get_buf(g, &buf, &n);
	char *s = xrealloc(NULL, n + 1);
	memcpy(s, buf, n);
	s[n] = '\0';
	yajl_gen_free(g);
	if (len)
		*len = n;
	return s;
}

static yajl_val jget(yajl_val obj, const char *key)
{
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

/* A string member, or NULL when absent or not a string. */
static const char *jstr(yajl_val obj, const char *key)
{
	yajl_val v = jget(obj, key);
	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* A non-empty string member, or NULL. */
static const char *jstr_ne(yajl_val obj, const char *key)
{
	const char *s = jstr(obj, key);
	return s && *s ? s : NULL;
}

/* yajl_tree recurses when freeing, so refuse absurd nesting up front. */
static bool json_depth_ok(const char *s, size_t n)
{
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > JSON_DEPTH_MAX)
				return false;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Faults                                                                   */

enum fkind {
	F_NONE, F_BAILEYS_500, F_NOT_CONNECTED, F_HTTP_500, F_HTTP_429, F_HTTP_400,
	F_META, F_TOKEN_REJECTED, F_TIMEOUT, F_DROP, F_SLOW, F_HTTP_429_BARE, F_CRASH
};

struct fault {
	enum fkind kind;
	long arg;  /* the code of meta:<code>, the ms of slow:<ms> */
};

static const struct {
	const char *name;
	enum fkind kind;
	bool has_arg;
} fault_names[] = {
	{ "baileys_500", F_BAILEYS_500, false },
	{ "not_connected", F_NOT_CONNECTED, false },
	{ "http_500", F_HTTP_500, false },
	{ "http_429", F_HTTP_429, false },
	{ "http_429_bare", F_HTTP_429_BARE, false },
	{ "http_400", F_HTTP_400, false },
	{ "meta", F_META, true },
	{ "token_rejected", F_TOKEN_REJECTED, false },
	{ "timeout", F_TIMEOUT, false },
	{ "drop", F_DROP, false },
	{ "crash", F_CRASH, false },
	{ "slow", F_SLOW, true },
};

/* Parse the fault name at the start of s ("http_500", "meta:131026",
 * "slow:250").  Returns the first character after it, or NULL. */
static const char *fault_parse(const char *s, struct fault *f)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_0123456789");
	for (size_t i = 0; i < COUNTOF(fault_names); i++) {
		if (strlen(fault_names[i].name) != n || strncmp(s, fault_names[i].name, n) != 0)
			continue;
		f->kind = fault_names[i].kind;
		f->arg = 0;
		s += n;
		if (!fault_names[i].has_arg)
			return s;
		if (*s != ':' || !isdigit((unsigned char)s[1]))
			return NULL;
		char *end;
		errno = 0;
		long v = strtol(s + 1, &end, 10);
		long max = f->kind == F_SLOW ? DELAY_MAX_MS : INT_MAX;
		if (errno || v > max)
			return NULL;
		f->arg = v;
		return end;
	}
	return NULL;
}

static bool fault_parse_all(const char *s, struct fault *f)
{
	const char *end = fault_parse(s, f);
	return end && *end == '\0';
}

/* The canonical name ("meta:131026"); buf needs 32 bytes. */
static const char *fault_name(struct fault f, char *buf, size_t sz)
{
	for (size_t i = 0; i < COUNTOF(fault_names); i++) {
		if (fault_names[i].kind != f.kind)
			continue;
		if (!fault_names[i].has_arg)
			return fault_names[i].name;
		snprintf(buf, sz, "%s:%ld", fault_names[i].name, f.arg);
		return buf;
	}
	return NULL;
}

/* Faults that also hit the pre-flight routes (Baileys status, Meta GET). */
static bool fault_preflight(struct fault f)
{
	return f.kind == F_NOT_CONNECTED || f.kind == F_TOKEN_REJECTED;
}

/* ------------------------------------------------------------------------ */
/* Fault configuration                                                      */

enum sess { S_CONNECTED, S_WAITING_QR, S_CONNECTING, S_NOT_STARTED };
static const char *const sess_names[] = { "connected", "waiting_qr", "connecting", "not_started" };

struct rule {
	char *to;     /* recipient digits, or "*" for every recipient */
	struct fault f;
	long times;   /* how many sends it hits; -1: all */
	long used;    /* how many it has hit so far */
};

struct rate {
	struct fault f;
	double p;
};

struct tenant_state {
	char *tenant;
	enum sess st;
};

struct config {
	struct rule *rules;
	size_t nrules;
	long after;                /* -1: off; else sends after this many get after_fault */
	struct fault after_fault;
	long long after_base;      /* the send count when this config was installed */
	struct rate *rates;
	size_t nrates;
	long latency_ms;
	long retry_after;
	long throughput;           /* 0: off; else sends accepted per second,
	                              the rest get Meta's 130429 */
	char message_status[40];   /* Meta's messages[0].message_status; "": none */
	long baileys_body_limit;   /* 0: off; else bodies above get express's 413 */
	enum sess state;           /* every tenant not listed below */
	struct tenant_state *tenants;
	size_t ntenants;
	unsigned long long seed;
};

static void cfg_init(struct config *c, unsigned long long seed)
{
	memset(c, 0, sizeof *c);
	c->after = -1;
	c->retry_after = 1;
	c->baileys_body_limit = opt.baileys_body_limit; /* --baileys-body-limit */
	c->state = S_CONNECTED;
	c->seed = seed;
}

static void cfg_free(struct config *c)
{
	for (size_t i = 0; i < c->nrules; i++)
		free(c->rules[i].to);
	for (size_t i = 0; i < c->ntenants; i++)
		free(c->tenants[i].tenant);
	free(c->rules);
	free(c->rates);
	free(c->tenants);
	cfg_init(c, c->seed);
}

static void cfg_add_rule(struct config *c, const char *to, size_t to_len, struct fault f, long times)
{
	c->rules = xrealloc(c->rules, (c->nrules + 1) * sizeof *c->rules);
	c->rules[c->nrules++] = (struct rule){ xstrndup(to, to_len), f, times, 0 };
}

static bool cfg_add_rate(struct config *c, struct fault f, double p, const char **why)
{
	if (!(p >= 0.0 && p <= 1.0)) {
		*why = "a rate must be between 0 and 1";
		return false;
	}
	double sum = p;
	for (size_t i = 0; i < c->nrates; i++)
		sum += c->rates[i].p;
	if (sum > 1.0 + 1e-9) {
		*why = "the rates add up to more than 1";
		return false;
	}
	c->rates = xrealloc(c->rates, (c->nrates + 1) * sizeof *c->rates);
	c->rates[c->nrates++] = (struct rate){ f, p };
	return true;
}

/* A rule's recipient: "*" or the digits of a number / JID. */
static bool rule_to(const char *to, size_t len, char out[DIGITS_MAX + 1])
{
	if (len == 1 && to[0] == '*') {
		strcpy(out, "*");
		return true;
	}
	char tmp[DIGITS_MAX * 2 + 1];
	if (len >= sizeof tmp)
		return false;
	memcpy(tmp, to, len);
	tmp[len] = '\0';
	return to_digits(tmp, out) > 0;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* One --fault flag:
 *   KIND              always (rate 1)
 *   KIND:RATE         with probability RATE
 *   KIND@TO           every send to TO
 *   KIND@TOxN         the first N sends to TO
 *   KIND+N            every send after the first N */
static bool cfg_add_flag(struct config *c, const char *spec, const char **why)
{
	struct fault f;
	const char *p = fault_parse(spec, &f);
	*why = "unknown fault";
	if (!p)
		return false;
	if (*p == '\0')
		return cfg_add_rate(c, f, 1.0, why);
	if (*p == ':') {
		char *end;
		double r = strtod(p + 1, &end);
		*why = "bad rate";
		if (end == p + 1 || *end)
			return false;
		return cfg_add_rate(c, f, r, why);
	}
	if (*p == '+') {
		*why = "bad count after '+'";
		if (!parse_long(p + 1, 0, LONG_MAX, &c->after))
			return false;
		c->after_fault = f;
		return true;
	}
	if (*p == '@') {
		const char *to = p + 1, *x = strrchr(to, 'x');
		size_t len = strlen(to);
		long times = -1;
		if (x && x[1] && strspn(x + 1, "0123456789") == strlen(x + 1)) {
			*why = "bad count after 'x'";
			if (!parse_long(x + 1, 0, LONG_MAX, &times))
				return false;
			len = (size_t)(x - to);
		}
		char digits[DIGITS_MAX + 1];
		*why = "bad recipient after '@'";
		if (!rule_to(to, len, digits))
			return false;
		cfg_add_rule(c, digits, strlen(digits), f, times);
		return true;
	}
	return false;
}

static bool parse_state(const char *s, enum sess *out)
{
	for (size_t i = 0; i < COUNTOF(sess_names); i++)
		if (strcmp(s, sess_names[i]) == 0) {
			*out = (enum sess)i;
			return true;
		}
	return false;
}

static bool json_long(yajl_val v, long min, long max, long *out)
{
	if (!YAJL_IS_INTEGER(v) || v->u.number.i < min || v->u.number.i > max)
		return false;
	*out = (long)v->u.number.i;
	return true;
}

static bool cfg_json_rules(struct config *c, yajl_val v, char *err, size_t esz)
{
	if (!YAJL_IS_ARRAY(v)) {
		snprintf(err, esz, "rules must be an array");
		return false;
	}
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val r = v->u.array.values[i];
		const char *to = jstr(r, "to"), *fs = jstr(r, "fault");
		yajl_val t = jget(r, "times");
		char digits[DIGITS_MAX + 1];
		struct fault f;
		long times = -1;
		if (!to || !rule_to(to, strlen(to), digits)) {
			snprintf(err, esz, "rules[%zu]: \"to\" must be a number, a JID or \"*\"", i);
			return false;
		}
		if (!fs || !fault_parse_all(fs, &f)) {
			snprintf(err, esz, "rules[%zu]: unknown fault", i);
			return false;
		}
		if (t && !json_long(t, -1, LONG_MAX, &times)) {
			snprintf(err, esz, "rules[%zu]: \"times\" must be an integer >= -1", i);
			return false;
		}
		cfg_add_rule(c, digits, strlen(digits), f, times);
	}
	return true;
}

static bool cfg_json_rates(struct config *c, yajl_val v, char *err, size_t esz)
{
	if (!YAJL_IS_OBJECT(v)) {
		snprintf(err, esz, "rates must be an object");
		return false;
	}
	for (size_t i = 0; i < v->u.object.len; i++) {
		struct fault f;
		yajl_val p = v->u.object.values[i];
		const char *why = "a rate must be a number";
		if (!fault_parse_all(v->u.object.keys[i], &f)) {
			snprintf(err, esz, "rates: unknown fault");
			return false;
		}
		if (!YAJL_IS_DOUBLE(p) || !cfg_add_rate(c, f, p->u.number.d, &why)) {
			snprintf(err, esz, "rates: %s", why);
			return false;
		}
	}
	return true;
}

static bool cfg_json_state(struct config *c, yajl_val v, char *err, size_t esz)
{
	if (YAJL_IS_STRING(v)) {
		if (parse_state(v->u.string, &c->state))
			return true;
	} else if (YAJL_IS_OBJECT(v)) {
		for (size_t i = 0; i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];
			yajl_val s = v->u.object.values[i];
			enum sess st;
			if (!YAJL_IS_STRING(s) || !parse_state(s->u.string, &st))
				goto bad;
			if (strcmp(k, "*") == 0) {
				c->state = st;
				continue;
			}
			c->tenants = xrealloc(c->tenants, (c->ntenants + 1) * sizeof *c->tenants);
			c->tenants[c->ntenants++] = (struct tenant_state){ xstrndup(k, strlen(k)), st };
		}
		return true;
	}
bad:
	snprintf(err, esz, "baileys_state must be one of connected, waiting_qr, connecting, "
		 "not_started, or an object of tenant to state");
	return false;
}

/* Build a configuration from the body of POST /_control.  On error, err
 * says why and the caller throws c away. */
static bool cfg_from_json(struct config *c, yajl_val v, char *err, size_t esz)
{
	if (!YAJL_IS_OBJECT(v)) {
		snprintf(err, esz, "the body must be a JSON object");
		return false;
	}
	bool have_after_fault = false;
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val m = v->u.object.values[i];
		bool ok = true;
		if (strcmp(k, "rules") == 0) {
			if (!cfg_json_rules(c, m, err, esz))
				return false;
		} else if (strcmp(k, "rates") == 0) {
			if (!cfg_json_rates(c, m, err, esz))
				return false;
		} else if (strcmp(k, "baileys_state") == 0) {
			if (!cfg_json_state(c, m, err, esz))
				return false;
		} else if (strcmp(k, "after") == 0) {
			ok = YAJL_IS_NULL(m) ? (c->after = -1, true) : json_long(m, -1, LONG_MAX, &c->after);
		} else if (strcmp(k, "after_fault") == 0) {
			ok = YAJL_IS_NULL(m) || (YAJL_IS_STRING(m) && fault_parse_all(m->u.string, &c->after_fault));
			have_after_fault = !YAJL_IS_NULL(m);
		} else if (strcmp(k, "latency_ms") == 0) {
			ok = json_long(m, 0, DELAY_MAX_MS, &c->latency_ms);
		} else if (strcmp(k, "retry_after") == 0) {
			ok = json_long(m, 0, 86400, &c->retry_after);
		} else if (strcmp(k, "throughput") == 0) {
			ok = json_long(m, 0, THROUGHPUT_MAX, &c->throughput);
		} else if (strcmp(k, "message_status") == 0) {
			/* What a Meta 200 says of the message (accepted,
			 * held_for_quality_assessment); null: nothing, as today. */
			ok = YAJL_IS_NULL(m) || (YAJL_IS_STRING(m) && *m->u.string &&
			    strlen(m->u.string) < sizeof c->message_status);
			c->message_status[0] = '\0';
			if (ok && YAJL_IS_STRING(m))
				strcpy(c->message_status, m->u.string);
		} else if (strcmp(k, "baileys_body_limit") == 0) {
			ok = YAJL_IS_NULL(m) ? (c->baileys_body_limit = 0, true) :
			     json_long(m, 0, (long)BODY_MAX, &c->baileys_body_limit);
		} else if (strcmp(k, "seed") == 0) {
			ok = YAJL_IS_INTEGER(m) && m->u.number.i >= 0;
			if (ok)
				c->seed = (unsigned long long)m->u.number.i;
		} else {
			snprintf(err, esz, "unknown key \"%.40s\"", k);
			return false;
		}
		if (!ok) {
			snprintf(err, esz, "bad value for \"%s\"", k);
			return false;
		}
	}
	if (c->after >= 0 && !have_after_fault) {
		snprintf(err, esz, "\"after\" needs \"after_fault\"");
		return false;
	}
	return true;
}

static void cfg_to_json(yajl_gen g, const struct config *c)
{
	char nb[32];
	yajl_gen_map_open(g);
	gen_key(g, "rules");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < c->nrules; i++) {
		const struct rule *r = &c->rules[i];
		yajl_gen_map_open(g);
		gen_kv_str(g, "to", r->to);
		gen_kv_str(g, "fault", fault_name(r->f, nb, sizeof nb));
		gen_kv_int(g, "times", r->times);
		gen_kv_int(g, "used", r->used);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	gen_key(g, "after");
	if (c->after >= 0)
		yajl_gen_integer(g, c->after);
	else
		yajl_gen_null(g);
	gen_kv_str(g, "after_fault", c->after >= 0 ? fault_name(c->after_fault, nb, sizeof nb) : NULL);
	gen_key(g, "rates");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < c->nrates; i++) {
		gen_key(g, fault_name(c->rates[i].f, nb, sizeof nb));
		gen_double(g, c->rates[i].p);
	}
	yajl_gen_map_close(g);
	gen_kv_int(g, "latency_ms", c->latency_ms);
	gen_kv_int(g, "retry_after", c->retry_after);
	gen_kv_int(g, "throughput", c->throughput);
	gen_kv_str(g, "message_status", c->message_status[0] ? c->message_status : NULL);
	gen_key(g, "baileys_state");
	if (c->ntenants == 0) {
		gen_str(g, sess_names[c->state]);
	} else {
		yajl_gen_map_open(g);
		gen_kv_str(g, "*", sess_names[c->state]);
		for (size_t i = 0; i < c->ntenants; i++)
			gen_kv_str(g, c->tenants[i].tenant, sess_names[c->tenants[i].st]);
		yajl_gen_map_close(g);
	}
	gen_kv_int(g, "seed", (long long)c->seed);
	gen_key(g, "baileys_body_limit");
	if (c->baileys_body_limit > 0)
		yajl_gen_integer(g, c->baileys_body_limit);
	else
		yajl_gen_null(g);
	yajl_gen_map_close(g);
}

/* ------------------------------------------------------------------------ */
/* Shared run-time state: configuration, counters, per-recipient table      */

struct recip {
	char *key;       /* recipient digits; NULL: empty slot */
	uint64_t h;
	long attempts;   /* send requests naming this recipient */
	long delivered;  /* of those, the ones that (may) have gone out */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config g_cfg;           /* under g_lock */
static struct {
	struct recip *v;
	size_t cap, n;
	long max_delivered, max_attempts, duplicates;
} g_rc;                               /* under g_lock */
static long long g_sends, g_delivered, g_faults;   /* under g_lock */
static atomic_llong g_requests;       /* provider requests (not /_control etc.) */

/* The table entry for key, created if new.  Caller holds g_lock. */
static struct recip *rc_get(const char *key)
{
	if (2 * (g_rc.n + 1) > g_rc.cap) {
		size_t cap = g_rc.cap ? g_rc.cap * 2 : 1024;
		struct recip *v = xrealloc(NULL, cap * sizeof *v);
		memset(v, 0, cap * sizeof *v);
		for (size_t i = 0; i < g_rc.cap; i++) {
			if (!g_rc.v[i].key)
				continue;
			size_t j = g_rc.v[i].h & (cap - 1);
			while (v[j].key)
				j = (j + 1) & (cap - 1);
			v[j] = g_rc.v[i];
		}
		free(g_rc.v);
		g_rc.v = v;
		g_rc.cap = cap;
	}
	uint64_t h = mix64(fnv1a(key));
	size_t j = h & (g_rc.cap - 1);
	for (; g_rc.v[j].key; j = (j + 1) & (g_rc.cap - 1))
		if (g_rc.v[j].h == h && strcmp(g_rc.v[j].key, key) == 0)
			return &g_rc.v[j];
	g_rc.v[j] = (struct recip){ .key = xstrndup(key, strlen(key)), .h = h };
	g_rc.n++;
	return &g_rc.v[j];
}

static void rc_clear(void)
{
	for (size_t i = 0; i < g_rc.cap; i++)
		free(g_rc.v[i].key);
	free(g_rc.v);
	memset(&g_rc, 0, sizeof g_rc);
}

/* Deterministic draw in [0,1) from (seed, recipient, attempt). */
static double rate_draw(unsigned long long seed, const char *digits, long attempt)
{
	uint64_t h = mix64(seed ^ 0x9e3779b97f4a7c15ULL) ^ fnv1a(digits);
	h = mix64(h + (uint64_t)attempt * 0x9e3779b97f4a7c15ULL);
	return (double)(h >> 11) * 0x1.0p-53;
}

/* The fault for one send: per-recipient rules first, then "after", then
 * the rates.  Consumes a use of the matching rule.  Caller holds g_lock. */
static struct fault pick_send_fault(const char *digits, long attempt, long long send_no)
{
	struct config *c = &g_cfg;
	for (size_t i = 0; i < c->nrules; i++) {
		struct rule *r = &c->rules[i];
		if (strcmp(r->to, "*") != 0 && strcmp(r->to, digits) != 0)
			continue;
		if (r->times >= 0 && r->used >= r->times)
			continue;
		r->used++;
		return r->f;
	}
	if (c->after >= 0 && send_no > c->after)
		return c->after_fault;
	if (c->nrates) {
		double u = rate_draw(c->seed, digits, attempt), cum = 0;
		for (size_t i = 0; i < c->nrates; i++) {
			cum += c->rates[i].p;
			if (u < cum)
				return c->rates[i].f;
		}
	}
	return (struct fault){ F_NONE, 0 };
}

/* The fault the pre-flight routes show: not_connected / token_rejected when
 * "after" has been reached (the next send would get it) or when its rate is
 * 1.  Caller holds g_lock. */
static struct fault pick_preflight_fault(void)
{
	struct config *c = &g_cfg;
	if (c->after >= 0 && fault_preflight(c->after_fault) && g_sends - c->after_base >= c->after)
		return c->after_fault;
	for (size_t i = 0; i < c->nrates; i++)
		if (fault_preflight(c->rates[i].f) && c->rates[i].p >= 1.0)
			return c->rates[i].f;
	return (struct fault){ F_NONE, 0 };
}

static enum sess tenant_state(const char *tenant)
{
	for (size_t i = 0; tenant && i < g_cfg.ntenants; i++)
		if (strcmp(g_cfg.tenants[i].tenant, tenant) == 0)
			return g_cfg.tenants[i].st;
	return g_cfg.state;
}

/* ------------------------------------------------------------------------ */
/* Shutdown and interruptible waits                                         */

static atomic_bool g_stopping;
static pthread_mutex_t g_stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_stop_cond;    /* CLOCK_MONOTONIC; initialised in main */

/* Sleep ms milliseconds; false if cut short because the server is stopping. */
static bool nap(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g_stop_lock);
	int rc = 0;
	while (!atomic_load(&g_stopping) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&g_stop_cond, &g_stop_lock, &ts);
	pthread_mutex_unlock(&g_stop_lock);
	return !atomic_load(&g_stopping);
}

/* Has the client closed its end of the connection? */
static bool peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return true;
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The "timeout" fault: keep the connection open without answering until the
 * client gives up, the server stops, or HOLD_MAX_MS passes. */
static void hold(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int fd = ci ? ci->connect_fd : -1;
	long long deadline = mono_ms() + HOLD_MAX_MS;
	while (!atomic_load(&g_stopping) && mono_ms() < deadline) {
		if (fd >= 0 && peer_gone(fd))
			return;
		nap(100);
	}
}

/* ------------------------------------------------------------------------ */
/* One request                                                              */

/* Per-request state that lives across MHD callbacks. */
struct req {
	char *body;       /* NUL-terminated */
	size_t len, cap;
	bool too_big;     /* over BODY_MAX: the rest is read and thrown away */
	size_t expect;    /* Content-Length, 0 if unknown: the first allocation */
	long long t_ms;   /* when the headers arrived */
};

enum action { ACT_RESPOND, ACT_DROP, ACT_HOLD, ACT_CRASH };

struct reply {
	unsigned status;
	char *body;           /* malloc'd */
	size_t len;
	const char *ctype;
	long retry_after;     /* -1: no Retry-After header */
	long delay_ms;        /* wait this long before acting */
	enum action act;
};

/* Everything known about one request: what it asked for, what it got. */
struct ctx {
	struct MHD_Connection *conn;
	const char *method, *path;
	struct req *rq;
	yajl_val json;                /* the parsed body, NULL if empty / not JSON */
	const char *api;              /* health, control, baileys, meta, unknown */
	const char *tenant;           /* path segment or body tenantId */
	char tenant_buf[SEG_MAX + 1];
	const char *pnid;
	char pnid_buf[SEG_MAX + 1];
	const char *to;               /* as sent */
	char digits[DIGITS_MAX + 1];  /* recipient key ("" if none) */
	long attempt;                 /* per recipient, 1-based; 0: none */
	long long send_no;            /* sends since the config was installed */
	const char *auth;             /* ok / bad / missing; NULL: not checked */
	struct fault fault;
	bool delivered;
	char msgid[80];
	struct reply r;
};

static void reply_set(struct ctx *x, unsigned status, char *body, size_t len, const char *ctype)
{
	free(x->r.body);
	x->r.status = status;
	x->r.body = body;
	x->r.len = len;
	x->r.ctype = ctype;
}

static void reply_gen(struct ctx *x, unsigned status, yajl_gen g)
{
	size_t len;
	char *s = gen_finish(g, &len);
	reply_set(x, status, s, len, "application/json");
}

static void reply_text(struct ctx *x, unsigned status, const char *text)
{
	size_t n = strlen(text);
	reply_set(x, status, xstrndup(text, n), n, "text/plain; charset=utf-8");
}

/* What express 4 answers when express.json() refuses a body over its limit
 * (the real service keeps the default, 100 kB): its HTML error page, not
 * JSON. */
static void reply_payload_too_large(struct ctx *x)
{
	static const char page[] =
		"<!DOCTYPE html>\n"
		"<html lang=\"en\">\n"
		"<head>\n"
		"<meta charset=\"utf-8\">\n"
		"<title>Error</title>\n"
		"</head>\n"
		"<body>\n"
		"<pre>PayloadTooLargeError: request entity too large<br> &nbsp; &nbsp;"
		"at readStream (/app/node_modules/raw-body/index.js:163:17)<br> &nbsp; &nbsp;"
		"at getRawBody (/app/node_modules/raw-body/index.js:116:12)<br> &nbsp; &nbsp;"
		"at read (/app/node_modules/body-parser/lib/read.js:79:3)<br> &nbsp; &nbsp;"
		"at jsonParser (/app/node_modules/body-parser/lib/types/json.js:138:5)</pre>\n"
		"</body>\n"
		"</html>\n";
	reply_set(x, 413, xstrndup(page, sizeof page - 1), sizeof page - 1, "text/html; charset=utf-8");
}

/* {"error":msg} */
static void reply_error(struct ctx *x, unsigned status, const char *msg)
{
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_str(g, "error", msg);
	yajl_gen_map_close(g);
	reply_gen(x, status, g);
}

static const struct {
	long code;
	const char *msg;
} meta_messages[] = {
	{ 1, "An unknown error occurred" },
	{ 2, "Service temporarily unavailable" },
	{ 4, "Application request limit reached" },
	{ 10, "Application does not have permission for this action" },
	{ 100, "Invalid parameter" },
	{ 190, "Invalid OAuth access token." },
	{ 200, "Permission error" },
	{ 368, "Temporarily blocked for policies violations" },
	{ 80007, "Rate limit issues" },
	{ 130429, "Rate limit hit" },
	{ 131008, "Required parameter is missing" },
	{ 131009, "Parameter value is not valid" },
	{ 131026, "Message undeliverable" },
	{ 131031, "Account has been locked" },
	{ 131047, "Re-engagement message" },
	{ 131048, "Spam rate limit hit" },
	{ 131049, "This message was not delivered to maintain healthy ecosystem engagement." },
	{ 131056, "(Business Account, Consumer Account) pair rate limit hit" },
	{ 131057, "Account in maintenance mode" },
	{ 3, "Capability or permissions issue" },
	{ 131042, "Business eligibility payment issue" },
	{ 131045, "Incorrect certificate" },
	{ 133010, "Phone number not registered" },
	{ 132000, "Number of parameters does not match the expected number of params" },
	{ 132001, "Template name does not exist in the translation" },
	{ 132012, "Parameter format does not match format in the created template" },
	{ 132015, "Template is paused" },
	{ 132016, "Template is disabled" },
};

/* The HTTP status Meta answers an error code with. */
static unsigned meta_status(long code)
{
	if (code == 190)
		return 401;
	if (code == 10 || (code >= 200 && code <= 299))
		return 403;
	if (code == 4 || code == 80007 || code == 130429)
		return 429;
	return 400;
}

static atomic_ullong g_id_counter;
static uint64_t g_id_key;  /* per process, so ids differ across runs too */

/* A Meta error body.  details may be NULL. */
static void reply_meta_error(struct ctx *x, unsigned status, long code, const char *details)
{
	const char *msg = "An error occurred";
	for (size_t i = 0; i < COUNTOF(meta_messages); i++)
		if (meta_messages[i].code == code)
			msg = meta_messages[i].msg;
	static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char trace[12];
	uint64_t h = mix64(g_id_key ^ (atomic_fetch_add(&g_id_counter, 1) + 0x5bd1e995ULL));
	trace[0] = 'A';
	for (int i = 1; i < 11; i++, h /= 62)
		trace[i] = b62[h % 62];
	trace[11] = '\0';

	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_key(g, "error");
	yajl_gen_map_open(g);
	gen_kv_str(g, "message", msg);
	gen_kv_str(g, "type", "OAuthException");
	gen_kv_int(g, "code", code);
	if (details) {
		gen_key(g, "error_data");
		yajl_gen_map_open(g);
		gen_kv_str(g, "messaging_product", "whatsapp");
		gen_kv_str(g, "details", details);
		yajl_gen_map_close(g);
	}
	gen_kv_str(g, "fbtrace_id", trace);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	reply_gen(x, status, g);
}

static void new_baileys_id(char *out, size_t sz)
{
	uint64_t n = atomic_fetch_add(&g_id_counter, 1);
	snprintf(out, sz, "3EB0%016llX", (unsigned long long)mix64(n ^ g_id_key));
}

static void new_meta_id(char *out, size_t sz)
{
	uint64_t n = atomic_fetch_add(&g_id_counter, 1);
	snprintf(out, sz, "wamid.HBgM%016llX%016llX", (unsigned long long)mix64(g_id_key),
		 (unsigned long long)mix64(n ^ g_id_key));
}

static const char *header(const struct ctx *x, const char *name)
{
	return MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, name);
}

static bool is_json_ctype(const char *ct)
{
	return ct && strncasecmp(ct, "application/json", 16) == 0 &&
	       (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* Split "/a/b/c" into segments; -1 if there are more than max, one is empty
 * or one is longer than SEG_MAX. */
static int split_path(const char *p, char seg[][SEG_MAX + 1], int max)
{
	int n = 0;
	if (*p != '/')
		return -1;
	while (*p == '/') {
		p++;
		size_t len = strcspn(p, "/");
		if (len == 0 || len > SEG_MAX || n == max)
			return -1;
		memcpy(seg[n], p, len);
		seg[n++][len] = '\0';
		p += len;
	}
	return n;
}

/* "v21.0", "v19" */
static bool is_version(const char *s)
{
	if (*s++ != 'v' || !isdigit((unsigned char)*s))
		return false;
	s += strspn(s, "0123456789");
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		s += strspn(s, "0123456789");
	}
	return *s == '\0';
}

static const char *classify(const char *path)
{
	char seg[3][SEG_MAX + 1];
	if (strcmp(path, "/health") == 0)
		return "health";
	if (strcmp(path, "/_control") == 0 || strcmp(path, "/_reset") == 0 || strcmp(path, "/_stats") == 0)
		return "control";
	if (strcmp(path, "/send") == 0 || strncmp(path, "/whatsapp/", 10) == 0)
		return "baileys";
	int n = split_path(path, seg, 3);
	if ((n == 2 || (n == 3 && strcmp(seg[2], "messages") == 0)) && is_version(seg[0]))
		return "meta";
	return "unknown";
}

/* --- counting ------------------------------------------------------------ */

/* A send request arrived: count it and the attempt for its recipient. */
static void note_send(struct ctx *x, const char *to)
{
	x->to = to;
	if (to)
		to_digits(to, x->digits);
	pthread_mutex_lock(&g_lock);
	g_sends++;
	x->send_no = g_sends - g_cfg.after_base;
	if (x->digits[0]) {
		struct recip *e = rc_get(x->digits);
		x->attempt = ++e->attempts;
		if (e->attempts > g_rc.max_attempts)
			g_rc.max_attempts = e->attempts;
	}
	pthread_mutex_unlock(&g_lock);
}

static void note_delivered(struct ctx *x)
{
	x->delivered = true;
	pthread_mutex_lock(&g_lock);
	g_delivered++;
	if (x->digits[0]) {
		struct recip *e = rc_get(x->digits);
		if (++e->delivered == 2)
			g_rc.duplicates++;
		if (e->delivered > g_rc.max_delivered)
			g_rc.max_delivered = e->delivered;
	}
	pthread_mutex_unlock(&g_lock);
}

/* "throughput": the times of the sends accepted in the last second, in a
 * ring; one more is accepted only while fewer than the limit are in it, as
 * Meta refuses a number's sends above its throughput (130429).  Caller
 * holds g_lock. */
static double g_tp_ring[THROUGHPUT_MAX];
static long g_tp_head, g_tp_n;

static bool throughput_exceeded(long limit)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	while (g_tp_n > 0 && (g_tp_n > limit ||
	    g_tp_ring[(g_tp_head + THROUGHPUT_MAX - g_tp_n) % THROUGHPUT_MAX] <= now - 1.0))
		g_tp_n--;
	if (g_tp_n >= limit)
		return true;
	g_tp_ring[g_tp_head] = now;
	g_tp_head = (g_tp_head + 1) % THROUGHPUT_MAX;
	g_tp_n++;
	return false;
}

static struct fault send_fault(struct ctx *x)
{
	pthread_mutex_lock(&g_lock);
	struct fault f = pick_send_fault(x->digits, x->attempt, x->send_no);
	if (f.kind == F_NONE && g_cfg.throughput > 0 && throughput_exceeded(g_cfg.throughput))
		f = (struct fault){ F_HTTP_429, 0 };
	if (f.kind != F_NONE)
		g_faults++;
	pthread_mutex_unlock(&g_lock);
	return f;
}

static struct fault preflight_fault(void)
{
	pthread_mutex_lock(&g_lock);
	struct fault f = pick_preflight_fault();
	if (f.kind != F_NONE)
		g_faults++;
	pthread_mutex_unlock(&g_lock);
	return f;
}

static long current_retry_after(void)
{
	pthread_mutex_lock(&g_lock);
	long r = g_cfg.retry_after;
	pthread_mutex_unlock(&g_lock);
	return r;
}

/* Turn an injected fault into the reply, in the API's own error shape.
 * Returns true when the reply is final; false for slow:<ms>, which only
 * adds a delay to the normal answer. */
static bool apply_fault(struct ctx *x, struct fault f, bool meta)
{
	x->fault = f;
	switch (f.kind) {
	case F_NONE:
		return false;
	case F_SLOW:
		x->r.delay_ms += f.arg;
		return false;
	case F_TIMEOUT:
		x->r.act = ACT_HOLD;
		note_delivered(x);
		return true;
	case F_DROP:
		x->r.act = ACT_DROP;
		note_delivered(x);
		return true;
	case F_CRASH:
		/* Sent, then the service dies before it answers: every
		 * connection closes and the port refuses the client's resend. */
		x->r.act = ACT_CRASH;
		note_delivered(x);
		return true;
	case F_BAILEYS_500:
		if (meta) {
			/* Meta's code 1 is "not accepted, retry later"
			 * (providers.md §2): nothing went out. */
			reply_meta_error(x, 500, 1, "An unknown error occurred");
			return true;
		} else {
			yajl_gen g = gen_new();
			yajl_gen_map_open(g);
			gen_kv_str(g, "error", "send_failed");
			gen_kv_str(g, "message", "Send timeout after 30s");
			gen_kv_int(g, "duration_ms", 30000);
			yajl_gen_map_close(g);
			reply_gen(x, 500, g);
		}
		note_delivered(x);
		return true;
	case F_NOT_CONNECTED:
		if (meta)
			reply_meta_error(x, 401, 190, "Session has expired");
		else
			reply_error(x, 503, "WhatsApp not connected");
		return true;
	case F_TOKEN_REJECTED:
		if (meta)
			reply_meta_error(x, 401, 190, "Session has expired");
		else
			reply_error(x, 401, "unauthorized");
		return true;
	case F_HTTP_500:
		if (meta)
			reply_meta_error(x, 500, 2, NULL);
		else
			reply_error(x, 500, "internal");
		return true;
	case F_HTTP_429:
		if (meta)
			reply_meta_error(x, 429, 130429, "Rate limit hit");
		else
			reply_error(x, 429, "rate_limited");
		x->r.retry_after = current_retry_after();
		return true;
	case F_HTTP_429_BARE:
		/* a 429 from something in front of the API: no JSON, no code */
		reply_text(x, 429, "Too Many Requests\n");
		return true;
	case F_HTTP_400:
		if (meta)
			reply_meta_error(x, 400, 100, "Injected fault");
		else
			reply_error(x, 400, "bad_request");
		return true;
	case F_META:
		if (meta) {
			unsigned st = meta_status(f.arg);
			reply_meta_error(x, st, f.arg, "Injected fault");
			if (st == 429)
				x->r.retry_after = current_retry_after();
		} else {
			reply_error(x, 400, "bad_request");
		}
		return true;
	}
	return false;
}

/* --- Baileys --------------------------------------------------------------- */

/* X-Internal-Secret: "ok" also when no secret is configured but one is sent. */
static const char *auth_baileys(struct ctx *x)
{
	const char *h = header(x, "X-Internal-Secret");
	if (!h)
		return "missing";
	return !g_secret || secret_eq(h, g_secret) ? "ok" : "bad";
}

static bool baileys_authorised(struct ctx *x)
{
	x->auth = auth_baileys(x);
	if (!g_secret || strcmp(x->auth, "ok") == 0)
		return true;
	reply_error(x, 401, "unauthorized");
	return false;
}

static void baileys_status_json(struct ctx *x, enum sess st)
{
	bool up = st == S_CONNECTED;
	bool paired = st == S_CONNECTED || st == S_CONNECTING;
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_bool(g, "connected", up);
	gen_kv_bool(g, "canSend", up);
	gen_kv_bool(g, "authPaired", paired);
	gen_kv_bool(g, "hasQR", st == S_WAITING_QR);
	gen_kv_bool(g, "hasSession", paired);
	gen_kv_str(g, "sessionState", sess_names[st]);
	gen_kv_str(g, "pushName", paired ? "Test Business" : NULL);
	gen_kv_int(g, "reconnectAttempts", st == S_CONNECTING ? 1 : 0);
	gen_kv_int(g, "timestamp", now_ms());
	yajl_gen_map_close(g);
	reply_gen(x, 200, g);
}

/* GET /whatsapp/:tenant/status, POST /whatsapp/:tenant/start */
static void baileys_session(struct ctx *x)
{
	char seg[3][SEG_MAX + 1];
	if (split_path(x->path, seg, 3) != 3 ||
	    (strcmp(seg[2], "status") != 0 && strcmp(seg[2], "start") != 0)) {
		reply_error(x, 404, "not_found");
		return;
	}
	strcpy(x->tenant_buf, seg[1]);
	x->tenant = x->tenant_buf;
	bool status = strcmp(seg[2], "status") == 0;
	if (strcmp(x->method, status ? "GET" : "POST") != 0) {
		reply_error(x, 405, "method_not_allowed");
		return;
	}
	if (!baileys_authorised(x))
		return;
	if (!status) {
		yajl_gen g = gen_new();
		yajl_gen_map_open(g);
		gen_kv_bool(g, "ok", true);
		gen_kv_str(g, "state", "started");
		yajl_gen_map_close(g);
		reply_gen(x, 200, g);
		return;
	}
	struct fault f = preflight_fault();
	if (f.kind == F_TOKEN_REJECTED) {
		x->fault = f;
		reply_error(x, 401, "unauthorized");
		return;
	}
	pthread_mutex_lock(&g_lock);
	enum sess st = tenant_state(x->tenant);
	pthread_mutex_unlock(&g_lock);
	if (f.kind == F_NOT_CONNECTED) {
		x->fault = f;
		st = S_CONNECTING;
	}
	baileys_status_json(x, st);
}

static bool is_base64(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+/=-_\r\n ", *s))
			return false;
	return true;
}

/* Append a missing field to the "Missing required field(s): ..." list. */
static void missing(char *buf, size_t sz, int *n, const char *field)
{
	size_t len = strlen(buf);
	snprintf(buf + len, sz - len, "%s%s", (*n)++ ? ", " : "", field);
}

/* Check a /send body; on failure the reply is set and false returned. */
static bool baileys_validate(struct ctx *x)
{
	yajl_val b = x->json;
	const char *type = jstr_ne(b, "type");
	yajl_val media = jget(b, "media");
	bool text = type && strcmp(type, "text") == 0;
	bool is_media = type && (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
				 strcmp(type, "audio") == 0 || strcmp(type, "document") == 0);
	char list[128] = "";
	int n = 0;

	if (!is_json_ctype(header(x, "Content-Type"))) {
		reply_error(x, 400, "Content-Type must be application/json");
		return false;
	}
	if (!YAJL_IS_OBJECT(b)) {
		reply_error(x, 400, "Invalid JSON body");
		return false;
	}
	if (!jstr_ne(b, "to"))
		missing(list, sizeof list, &n, "to");
	if (!type)
		missing(list, sizeof list, &n, "type");
	if (text && !jstr_ne(b, "text"))
		missing(list, sizeof list, &n, "text");
	if (is_media && !jstr_ne(media, "data"))
		missing(list, sizeof list, &n, "media.data");
	if (is_media && !jstr_ne(media, "mimetype"))
		missing(list, sizeof list, &n, "media.mimetype");
	if (n) {
		char msg[192];
		snprintf(msg, sizeof msg, "Missing required field%s: %s", n > 1 ? "s" : "", list);
		reply_error(x, 400, msg);
		return false;
	}
	if (!x->tenant) {
		reply_error(x, 400, "Missing tenantId");
		return false;
	}
	if (!text && !is_media) {
		reply_error(x, 400, "Unsupported message type");
		return false;
	}
	/* A person's JID (6-15 digits) or a LID; never a group, list, channel. */
	const char *at = strchr(x->to, '@');
	bool jid_ok = false;
	if (at && at != x->to) {
		char local[DIGITS_MAX + 1];
		size_t len = (size_t)(at - x->to);
		if (len <= DIGITS_MAX) {
			memcpy(local, x->to, len);
			local[len] = '\0';
			if (strcmp(at, "@s.whatsapp.net") == 0)
				jid_ok = all_digits(local, 6, 15);
			else if (strcmp(at, "@lid") == 0)
				jid_ok = all_digits(local, 1, DIGITS_MAX);
		}
	}
	if (!jid_ok) {
		reply_error(x, 400, "Invalid recipient JID");
		return false;
	}
	if (is_media) {
		const char *data = jstr(media, "data");
		if (!is_base64(data)) {
			reply_error(x, 400, "media.data must be base64");
			return false;
		}
		size_t cap = strcmp(type, "document") == 0 ? DOC_CAP : MEDIA_CAP;
		size_t len = strlen(data), bytes = len / 4 * 3;
		/* Padding stands for no data. */
		for (size_t i = len; i > 0 && i > len - 2 && data[i - 1] == '=' && bytes; i--)
			bytes--;
		if (bytes > cap) {
			reply_error(x, 413, "Media too large");
			return false;
		}
	}
	return true;
}

/* POST /send */
static void baileys_send(struct ctx *x)
{
	x->tenant = jstr_ne(x->json, "tenantId");
	note_send(x, jstr(x->json, "to"));
	if (!baileys_authorised(x) || !baileys_validate(x))
		return;
	if (apply_fault(x, send_fault(x), false))
		return;
	pthread_mutex_lock(&g_lock);
	enum sess st = tenant_state(x->tenant);
	pthread_mutex_unlock(&g_lock);
	if (st != S_CONNECTED) {
		reply_error(x, 503, "WhatsApp not connected");
		return;
	}
	new_baileys_id(x->msgid, sizeof x->msgid);
	note_delivered(x);
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_bool(g, "ok", true);
	gen_kv_str(g, "messageId", x->msgid);
	gen_kv_str(g, "status", "sent");
	gen_kv_int(g, "duration_ms", x->r.delay_ms);
	yajl_gen_map_close(g);
	reply_gen(x, 200, g);
}

/* --- Meta ------------------------------------------------------------------ */

static const char *auth_meta(struct ctx *x)
{
	const char *h = header(x, "Authorization");
	if (!h)
		return "missing";
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return "bad";
	h += 7;
	while (*h == ' ')
		h++;
	if (!*h)
		return "bad";
	return !g_token || secret_eq(h, g_token) ? "ok" : "bad";
}

/* Token, then phone number id; on failure the reply is set. */
static bool meta_authorised(struct ctx *x)
{
	x->auth = auth_meta(x);
	if (strcmp(x->auth, "ok") != 0) {
		reply_meta_error(x, 401, 190, NULL);
		return false;
	}
	if (g_pnid && strcmp(x->pnid, g_pnid) != 0) {
		reply_meta_error(x, 400, 100, "Unsupported request: object with this ID does not exist");
		return false;
	}
	return true;
}

/* Check a /messages body; on failure the reply is set and false returned. */
static bool meta_validate(struct ctx *x)
{
	yajl_val b = x->json;
	const char *bad = NULL;
	const char *type = jstr(b, "type");

	if (!is_json_ctype(header(x, "Content-Type")))
		bad = "Content-Type must be application/json";
	else if (!YAJL_IS_OBJECT(b))
		bad = "The request body must be a JSON object";
	else if (!jstr(b, "messaging_product") || strcmp(jstr(b, "messaging_product"), "whatsapp") != 0)
		bad = "messaging_product must be \"whatsapp\"";
	else if (!x->to || !all_digits(x->to, 6, 15))
		bad = "to must be a phone number in digits, country code first";
	else if (!type)
		bad = "type is required";
	else if (strcmp(type, "text") == 0) {
		const char *body = jstr_ne(jget(b, "text"), "body");
		if (!body)
			bad = "text.body is required";
		else if (utf8_chars(body) > 4096)
			bad = "text.body is longer than 4096 characters";
		else if (jget(jget(b, "text"), "preview_url") &&
			 !YAJL_IS_TRUE(jget(jget(b, "text"), "preview_url")) &&
			 !YAJL_IS_FALSE(jget(jget(b, "text"), "preview_url")))
			bad = "text.preview_url must be a boolean";
	} else if (strcmp(type, "template") == 0) {
		yajl_val t = jget(b, "template");
		if (!jstr_ne(t, "name"))
			bad = "template.name is required";
		else if (!jstr_ne(jget(t, "language"), "code"))
			bad = "template.language.code is required";
	} else if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
		   strcmp(type, "audio") == 0 || strcmp(type, "document") == 0) {
		yajl_val m = jget(b, type);
		if (!jstr_ne(m, "link") && !jstr_ne(m, "id"))
			bad = "the media object needs a link";
		else if (jstr(m, "caption") && utf8_chars(jstr(m, "caption")) > 1024)
			bad = "the caption is longer than 1024 characters";
	} else {
		bad = "unsupported message type";
	}
	if (bad) {
		reply_meta_error(x, 400, 100, bad);
		return false;
	}
	return true;
}

static void meta_send(struct ctx *x)
{
	note_send(x, jstr(x->json, "to"));
	if (!meta_authorised(x) || !meta_validate(x))
		return;
	if (apply_fault(x, send_fault(x), true))
		return;
	new_meta_id(x->msgid, sizeof x->msgid);
	note_delivered(x);
	char status[sizeof g_cfg.message_status];
	pthread_mutex_lock(&g_lock);
	memcpy(status, g_cfg.message_status, sizeof status);
	pthread_mutex_unlock(&g_lock);
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_str(g, "messaging_product", "whatsapp");
	gen_key(g, "contacts");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	gen_kv_str(g, "input", x->to);
	gen_kv_str(g, "wa_id", x->to);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	gen_key(g, "messages");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	gen_kv_str(g, "id", x->msgid);
	if (status[0])
		gen_kv_str(g, "message_status", status);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	reply_gen(x, 200, g);
}

/* GET /{version}/{pnid}: the cheap pre-flight. */
static void meta_number(struct ctx *x)
{
	if (!meta_authorised(x))
		return;
	struct fault f = preflight_fault();
	if (f.kind != F_NONE) {
		x->fault = f;
		reply_meta_error(x, 401, 190, "Session has expired");
		return;
	}
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_str(g, "verified_name", "Test Business");
	gen_kv_str(g, "display_phone_number", "+1 555 0100");
	gen_kv_str(g, "quality_rating", "GREEN");
	gen_kv_str(g, "id", x->pnid);
	yajl_gen_map_close(g);
	reply_gen(x, 200, g);
}

static void meta_route(struct ctx *x)
{
	char seg[3][SEG_MAX + 1];
	int n = split_path(x->path, seg, 3);
	strcpy(x->pnid_buf, seg[1]);
	x->pnid = x->pnid_buf;
	if (n == 3 && strcmp(x->method, "POST") == 0)
		meta_send(x);
	else if (n == 2 && strcmp(x->method, "GET") == 0)
		meta_number(x);
	else
		reply_meta_error(x, 400, 100, "Unsupported method for this path");
}

/* --- control --------------------------------------------------------------- */

static void control_get(struct ctx *x)
{
	yajl_gen g = gen_new();
	pthread_mutex_lock(&g_lock);
	cfg_to_json(g, &g_cfg);
	pthread_mutex_unlock(&g_lock);
	reply_gen(x, 200, g);
}

static void control_set(struct ctx *x)
{
	struct config c;
	char err[160];
	pthread_mutex_lock(&g_lock);
	cfg_init(&c, g_cfg.seed);
	pthread_mutex_unlock(&g_lock);
	if (!x->json) {
		reply_error(x, 400, "the body must be a JSON object");
		return;
	}
	if (!cfg_from_json(&c, x->json, err, sizeof err)) {
		cfg_free(&c);
		reply_error(x, 400, err);
		return;
	}
	pthread_mutex_lock(&g_lock);
	c.after_base = g_sends;
	cfg_free(&g_cfg);
	g_cfg = c;
	pthread_mutex_unlock(&g_lock);
	control_get(x);
}

static void control_reset(struct ctx *x)
{
	pthread_mutex_lock(&g_lock);
	cfg_free(&g_cfg);
	cfg_init(&g_cfg, opt.seed);
	rc_clear();
	g_sends = g_delivered = g_faults = 0;
	atomic_store(&g_requests, 0);
	pthread_mutex_unlock(&g_lock);
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_bool(g, "ok", true);
	yajl_gen_map_close(g);
	reply_gen(x, 200, g);
}

static void control_stats(struct ctx *x)
{
	yajl_gen g = gen_new();
	yajl_gen_map_open(g);
	gen_kv_int(g, "requests", atomic_load(&g_requests));
	pthread_mutex_lock(&g_lock);
	gen_kv_int(g, "sends", g_sends);
	gen_kv_int(g, "delivered", g_delivered);
	gen_kv_int(g, "recipients", (long long)g_rc.n);
	gen_kv_int(g, "max_per_recipient", g_rc.max_delivered);
	gen_kv_int(g, "duplicates", g_rc.duplicates);
	gen_kv_int(g, "max_attempts_per_recipient", g_rc.max_attempts);
	gen_kv_int(g, "faults", g_faults);
	pthread_mutex_unlock(&g_lock);
	yajl_gen_map_close(g);
	reply_gen(x, 200, g);
}

static void control_route(struct ctx *x)
{
	bool get = strcmp(x->method, "GET") == 0, post = strcmp(x->method, "POST") == 0;
	if (strcmp(x->path, "/_control") == 0 && get)
		control_get(x);
	else if (strcmp(x->path, "/_control") == 0 && post)
		control_set(x);
	else if (strcmp(x->path, "/_reset") == 0 && post)
		control_reset(x);
	else if (strcmp(x->path, "/_stats") == 0 && get)
		control_stats(x);
	else
		reply_error(x, 405, "method_not_allowed");
}

/* --- dispatch -------------------------------------------------------------- */

static void route(struct ctx *x)
{
	const char *api = x->api;
	if (strcmp(api, "health") == 0) {
		if (strcmp(x->method, "GET") == 0)
			reply_text(x, 200, "ok");
		else
			reply_error(x, 405, "method_not_allowed");
	} else if (strcmp(api, "control") == 0) {
		control_route(x);
	} else if (strcmp(api, "meta") == 0) {
		meta_route(x);
	} else if (strcmp(api, "baileys") == 0 && strcmp(x->path, "/send") == 0) {
		if (strcmp(x->method, "POST") == 0)
			baileys_send(x);
		else
			reply_error(x, 405, "method_not_allowed");
	} else if (strcmp(api, "baileys") == 0) {
		baileys_session(x);
	} else {
		reply_error(x, 404, "not_found");
	}
}

/* ------------------------------------------------------------------------ */
/* The request log                                                          */

static int g_log_fd = -1;               /* O_APPEND: each line is one write */
static atomic_ullong g_seq;
static atomic_bool g_log_failed;

/* A string bound for the log: secrets replaced, huge strings summarised. */
static void gen_logstr(yajl_gen g, const char *s, size_t n)
{
	if (g_secret && memmem(s, n, g_secret, strlen(g_secret))) {
		gen_str(g, "<redacted INTERNAL_SECRET>");
	} else if (g_token && memmem(s, n, g_token, strlen(g_token))) {
		gen_str(g, "<redacted META_WA_ACCESS_TOKEN>");
	} else if (n > LOG_STRING_MAX) {
		char b[40];
		snprintf(b, sizeof b, "<%zu bytes>", n);
		gen_str(g, b);
	} else {
		gen_strn(g, s, n);
	}
}

static void gen_logstr0(yajl_gen g, const char *s)
{
	if (s)
		gen_logstr(g, s, strlen(s));
	else
		yajl_gen_null(g);
}

/* The parsed body, media "data" shortened to its length. */
static void gen_body(yajl_gen g, yajl_val v, const char *key)
{
	if (YAJL_IS_STRING(v)) {
		size_t n = strlen(v->u.string);
		if (key && strcmp(key, "data") == 0 && n > LOG_DATA_MAX) {
			char b[40];
			snprintf(b, sizeof b, "<%zu bytes>", n);
			gen_str(g, b);
		} else {
			gen_logstr(g, v->u.string, n);
		}
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			gen_logstr0(g, v->u.object.keys[i]);
			gen_body(g, v->u.object.values[i], v->u.object.keys[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			gen_body(g, v->u.array.values[i], NULL);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else {
		yajl_gen_null(g);
	}
}

static void log_request(const struct ctx *x)
{
	if (g_log_fd < 0)
		return;
	char nb[32];
	yajl_gen g = gen_new();
	/* Everything but "seq", which is assigned under the lock below so that
	 * the lines appear in seq order. */
	yajl_gen_map_open(g);
	gen_kv_int(g, "t", x->rq->t_ms);
	gen_key(g, "method");
	gen_logstr0(g, x->method);
	gen_key(g, "path");
	gen_logstr0(g, x->path);
	gen_kv_str(g, "api", x->api);
	gen_key(g, "tenant");
	gen_logstr0(g, x->tenant);
	gen_key(g, "phone_number_id");
	gen_logstr0(g, x->pnid);
	gen_key(g, "to");
	gen_logstr0(g, x->to);
	gen_kv_str(g, "to_digits", x->digits[0] ? x->digits : NULL);
	gen_key(g, "attempt");
	if (x->attempt)
		yajl_gen_integer(g, x->attempt);
	else
		yajl_gen_null(g);
	gen_kv_str(g, "auth", x->auth);
	gen_key(g, "content_type");
	gen_logstr0(g, header(x, "Content-Type"));
	gen_key(g, "expect");
	gen_logstr0(g, header(x, "Expect"));
	const char *idem = jstr(x->json, "idempotencyKey");
	if (!idem)
		idem = header(x, "Idempotency-Key");
	gen_key(g, "idempotency_key");
	gen_logstr0(g, idem);
	gen_key(g, "status");
	if (x->r.act == ACT_RESPOND)
		yajl_gen_integer(g, x->r.status);
	else
		yajl_gen_null(g);
	gen_kv_str(g, "fault", x->fault.kind != F_NONE ? fault_name(x->fault, nb, sizeof nb) : NULL);
	gen_kv_int(g, "delay_ms", x->r.delay_ms);
	gen_kv_bool(g, "delivered", x->delivered);
	gen_kv_str(g, "message_id", x->msgid[0] ? x->msgid : NULL);
	gen_kv_int(g, "body_bytes", (long long)x->rq->len);
	/* The raw body's FNV-1a hash: two requests are byte for byte the
	 * same exactly when their hashes are (tests compare paths by it). */
	{
		unsigned long long h = 14695981039346656037ULL;
		char hex[17];

		for (size_t i = 0; x->rq->body && i < x->rq->len; i++)
			h = (h ^ (unsigned char)x->rq->body[i]) * 1099511628211ULL;
		snprintf(hex, sizeof hex, "%016llx", h);
		gen_kv_str(g, "body_hash", x->rq->len && !x->rq->too_big ? hex : NULL);
	}
	gen_key(g, "body");
	if (x->json)
		gen_body(g, x->json, NULL);
	else if (x->rq->too_big)
		gen_str(g, "<too large>");
	else if (x->rq->len)
		gen_logstr(g, x->rq->body, x->rq->len);
	else
		yajl_gen_null(g);
	yajl_gen_map_close(g);

	/* buf is "{...}": the line is {"seq":N, then buf after its '{'.  One
	 * writev on an O_APPEND descriptor keeps concurrent lines whole without
	 * a lock; with many clients at once the lines may land slightly out of
	 * seq order. */
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	char head[40];
	int hn = snprintf(head, sizeof head, "{\"seq\":%llu,", (unsigned long long)atomic_fetch_add(&g_seq, 1) + 1);
	struct iovec iov[3] = {
		{ head, (size_t)hn },
		{ (void *)(buf + 1), len - 1 },
		{ (void *)"\n", 1 },
	};
	ssize_t want = (ssize_t)(hn + len), n = writev(g_log_fd, iov, 3);
	if (n != want && !atomic_exchange(&g_log_failed, true))
		fprintf(stderr, PROG ": warning: cannot write the log %s: %s\n", opt.log_path,
			n < 0 ? strerror(errno) : "short write");
	yajl_gen_free(g);
}

/* ------------------------------------------------------------------------ */
/* libmicrohttpd glue                                                       */

static bool body_append(struct req *rq, const char *data, size_t n)
{
	if (rq->too_big)
		return true;
	if (n > BODY_MAX - rq->len) {
		rq->too_big = true;
		free(rq->body);
		rq->body = NULL;
		rq->cap = 0;
		return true;
	}
	if (rq->len + n + 1 > rq->cap) {
		size_t cap = rq->cap ? rq->cap : rq->expect ? rq->expect + 1 : 4096;
		while (cap < rq->len + n + 1)
			cap *= 2;
		char *b = realloc(rq->body, cap);
		if (!b)
			return false;
		rq->body = b;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	rq->body[rq->len] = '\0';
	return true;
}

static void parse_body(struct ctx *x)
{
	struct req *rq = x->rq;
	if (rq->too_big || rq->len == 0 || memchr(rq->body, '\0', rq->len) ||
	    !json_depth_ok(rq->body, rq->len))
		return;
	x->json = yajl_tree_parse(rq->body, NULL, 0);
}

/* Act on the reply: wait, then answer, close, or hold the connection. */
static enum MHD_Result deliver(struct ctx *x)
{
	if (x->r.delay_ms > 0 && !nap(x->r.delay_ms)) {
		free(x->r.body);
		return MHD_NO;
	}
	if (x->r.act == ACT_CRASH)
		_exit(70);  /* the request's log line is written already */
	if (x->r.act != ACT_RESPOND) {
		free(x->r.body);
		if (x->r.act == ACT_HOLD)
			hold(x->conn);
		return MHD_NO;  /* closes the connection without a response */
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		x->r.len, x->r.body ? x->r.body : (char *)"", x->r.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(x->r.body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, x->r.ctype ? x->r.ctype : "text/plain");
	if (x->r.retry_after >= 0) {
		char ra[24];
		snprintf(ra, sizeof ra, "%ld", x->r.retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	enum MHD_Result ret = MHD_queue_response(x->conn, x->r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The whole request is in: answer it. */
static enum MHD_Result finish(struct MHD_Connection *conn, const char *url, const char *method, struct req *rq)
{
	struct ctx x = {
		.conn = conn, .method = method, .path = url, .rq = rq,
		.r = { .retry_after = -1, .act = ACT_RESPOND },
	};
	x.api = classify(url);
	bool control = strcmp(x.api, "control") == 0;
	long body_limit = 0;
	if (!control) {
		atomic_fetch_add(&g_requests, 1);
		pthread_mutex_lock(&g_lock);
		x.r.delay_ms = g_cfg.latency_ms;
		body_limit = g_cfg.baileys_body_limit;
		pthread_mutex_unlock(&g_lock);
	}
	/* The service's express.json() reads every body first: over the limit,
	 * no route runs, nothing is sent. */
	if (body_limit > 0 && strcmp(x.api, "baileys") == 0 &&
	    (rq->too_big || rq->len > (size_t)body_limit)) {
		reply_payload_too_large(&x);
	} else if (rq->too_big) {
		reply_error(&x, 413, "Payload too large");
	} else {
		parse_body(&x);
		route(&x);
	}
	log_request(&x);
	enum MHD_Result ret = deliver(&x);
	yajl_tree_free(x.json);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct req *rq = *con_cls;
	if (!rq) {
		/* Headers only: set up, and refuse a declared oversize body now. */
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return MHD_NO;
		rq->t_ms = now_ms();
		*con_cls = rq;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
		if (n > BODY_MAX) {
			rq->too_big = true;
			return finish(conn, url, method, rq);
		}
		rq->expect = (size_t)n;
		return MHD_YES;
	}
	if (*upload_data_size) {
		bool ok = body_append(rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return ok ? MHD_YES : MHD_NO;
	}
	return finish(conn, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct req *rq = *con_cls;
	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* ------------------------------------------------------------------------ */
/* Start-up                                                                 */

static void usage(FILE *f)
{
	fputs("Usage: " PROG " [OPTION]...\n"
	      "Run a loopback HTTP server that plays the Baileys service and Meta's\n"
	      "WhatsApp Cloud API, logs every request and injects faults on demand.\n"
	      "\n"
	      "  --bind ADDR        listen on ADDR, a loopback address (default 127.0.0.1)\n"
	      "  --port N           listen on port N; 0 picks a free one (default 0)\n"
	      "  --port-file FILE   write the port to FILE (atomically) once listening\n"
	      "  --log FILE         append one JSON line per request to FILE\n"
	      "  --latency MS       delay every answer by MS milliseconds\n"
	      "  --baileys-body-limit BYTES\n"
	      "                     answer a Baileys request whose body is over BYTES\n"
	      "                     with 413 and express's HTML page, as the real\n"
	      "                     service does over 102400 (default 0: off)\n"
	      "  --fault SPEC       inject a fault (repeatable):\n"
	      "                       KIND           every send\n"
	      "                       KIND:RATE      sends with probability RATE\n"
	      "                       KIND@TO        every send to TO\n"
	      "                       KIND@TOxN      the first N sends to TO\n"
	      "                       KIND+N         every send after the first N\n"
	      "                     KIND: baileys_500 not_connected http_500 http_429\n"
	      "                     http_400 meta:CODE token_rejected timeout drop slow:MS\n"
	      "                     crash (the server exits before it answers)\n"
	      "  --seed N           seed for the fault rates (default 0)\n"
	      "  --quiet            print nothing but the port line and errors\n"
	      "  --help             show this help and exit\n"
	      "  --version          show the version and exit\n"
	      "\n"
	      "Environment: INTERNAL_SECRET (Baileys X-Internal-Secret),\n"
	      "META_WA_ACCESS_TOKEN (Meta bearer token), META_WA_PHONE_NUMBER_ID.\n"
	      "Control: GET/POST /_control, POST /_reset, GET /_stats.\n"
	      "\n"
	      "Exit status: 0 after SIGTERM or SIGINT, 64 on a usage error,\n"
	      "69 if the server cannot start (listen, log or port file).\n", f);
}

__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG ": error: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	va_end(ap);
	exit(EX_USAGE);
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void parse_args(int argc, char **argv, struct config *c)
{
	enum { O_BIND = 256, O_PORT, O_PORT_FILE, O_LOG, O_LATENCY, O_BODY_LIMIT, O_FAULT, O_SEED, O_QUIET, O_HELP, O_VERSION };
	static const struct option longopts[] = {
		{ "bind", required_argument, NULL, O_BIND },
		{ "port", required_argument, NULL, O_PORT },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "log", required_argument, NULL, O_LOG },
		{ "latency", required_argument, NULL, O_LATENCY },
		{ "baileys-body-limit", required_argument, NULL, O_BODY_LIMIT },
		{ "fault", required_argument, NULL, O_FAULT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	long v;
	const char *why;
	opterr = 0;
	for (;;) {
		int o = getopt_long(argc, argv, "", longopts, NULL);
		if (o == -1)
			break;
		switch (o) {
		case O_BIND: opt.bind = optarg; break;
		case O_PORT:
			if (!parse_long(optarg, 0, 65535, &v))
				usage_error("bad port '%s'", optarg);
			opt.port = (unsigned)v;
			break;
		case O_PORT_FILE: opt.port_file = optarg; break;
		case O_LOG: opt.log_path = optarg; break;
		case O_LATENCY:
			if (!parse_long(optarg, 0, DELAY_MAX_MS, &opt.latency_ms))
				usage_error("bad latency '%s'", optarg);
			break;
		case O_BODY_LIMIT:
			if (!parse_long(optarg, 0, (long)BODY_MAX, &opt.baileys_body_limit))
				usage_error("bad body limit '%s'", optarg);
			break;
		case O_FAULT:
			if (!cfg_add_flag(c, optarg, &why))
				usage_error("--fault %s: %s", optarg, why);
			break;
		case O_SEED:
			if (!parse_long(optarg, 0, LONG_MAX, &v))
				usage_error("bad seed '%s'", optarg);
			opt.seed = (unsigned long long)v;
			break;
		case O_QUIET: opt.quiet = true; break;
		case O_HELP:
			usage(stdout);
			exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : EX_IOERR);
		case O_VERSION:
			printf(PROG " (wa) " WA_VERSION "\n");
			exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : EX_IOERR);
		default:
			usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	c->latency_ms = opt.latency_ms;
	c->baileys_body_limit = opt.baileys_body_limit;
	c->seed = opt.seed;
}

/* Listen on --bind/--port, loopback only.  Returns the socket or exits. */
static int open_listener(unsigned *port_out, bool *v6)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, opt.bind, &a4->sin_addr) == 1) {
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
			usage_error("--bind %s is not a loopback address", opt.bind);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)opt.port);
		sl = sizeof *a4;
		*v6 = false;
	} else if (inet_pton(AF_INET6, opt.bind, &a6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			usage_error("--bind %s is not a loopback address", opt.bind);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)opt.port);
		sl = sizeof *a6;
		*v6 = true;
	} else {
		usage_error("--bind %s is not an IP address", opt.bind);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		fprintf(stderr, PROG ": error: cannot listen on %s port %u: %s\n", opt.bind, opt.port,
			strerror(errno));
		exit(EX_UNAVAILABLE);
	}
	*port_out = ntohs(*v6 ? a6->sin6_port : a4->sin_port);
	return fd;
}

static bool write_port_file(const char *path, unsigned port)
{
	char *tmp;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		die_oom();
	FILE *f = fopen(tmp, "w");
	bool ok = f != NULL;
	if (f) {
		fprintf(f, "%u\n", port);
		ok = fclose(f) == 0;
	}
	ok = ok && rename(tmp, path) == 0;
	if (!ok) {
		fprintf(stderr, PROG ": error: cannot write %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return ok;
}

/* Lots of held connections each take a descriptor: lift the soft limit. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void on_signal(int sig)
{
	(void)sig;  /* never runs: the signals are blocked and taken by sigwait */
}

int main(int argc, char **argv)
{
	struct config startup;
	cfg_init(&startup, 0);
	parse_args(argc, argv, &startup);
	g_cfg = startup;
	g_secret = env_nonempty("INTERNAL_SECRET");
	g_token = env_nonempty("META_WA_ACCESS_TOKEN");
	g_pnid = env_nonempty("META_WA_PHONE_NUMBER_ID");
	g_id_key = mix64((uint64_t)now_ms() ^ ((uint64_t)getpid() << 40));

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g_stop_cond, &ca);
	pthread_condattr_destroy(&ca);

	if (opt.log_path) {
		g_log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (g_log_fd < 0) {
			fprintf(stderr, PROG ": error: cannot open %s: %s\n", opt.log_path, strerror(errno));
			return EX_UNAVAILABLE;
		}
	}
	raise_fd_limit();

	/* Block the stop signals in every thread; main takes them with sigwait.
	 * A handler is installed first because a shell starts background jobs
	 * with SIGINT ignored. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	unsigned port;
	bool v6;
	int lfd = open_listener(&port, &v6);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			(v6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, NULL,
		MHD_OPTION_LISTEN_SOCKET, lfd,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)20000,
		/* MHD zeroes the whole per-connection pool for every request:
		 * keep it small (headers here are a few hundred bytes). */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, PROG ": error: cannot start the HTTP server\n");
		close(lfd);
		return EX_UNAVAILABLE;
	}
	if (opt.port_file && !write_port_file(opt.port_file, port)) {
		MHD_stop_daemon(d);
		return EX_UNAVAILABLE;
	}
	fprintf(stderr, "port=%u\n", port);
	fflush(stderr);

	int sig = 0;
	while (sigwait(&stop, &sig) != 0) {
	}
	if (!opt.quiet)
		fprintf(stderr, PROG ": %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");

	/* Wake every sleeping or held request, then let MHD join the threads. */
	pthread_mutex_lock(&g_stop_lock);
	atomic_store(&g_stopping, true);
	pthread_cond_broadcast(&g_stop_cond);
	pthread_mutex_unlock(&g_stop_lock);
	MHD_stop_daemon(d);

	if (opt.port_file)
		unlink(opt.port_file);
	if (g_log_fd >= 0)
		close(g_log_fd);
	cfg_free(&g_cfg);
	rc_clear();
	pthread_cond_destroy(&g_stop_cond);
	return 0;
}
