/* phone-diff: the proof that wa_phone_parse's fast path answers exactly as
 * libphonenumber's Parse does.
 *
 *   phone-diff                    the differential run (below)
 *   phone-diff -t                 the same comparison from 8 threads at once,
 *                                 starting before the shim is initialized
 *   phone-diff [-r REGION] TEXT.. how each TEXT parses, one line each:
 *                                 "TEXT: E164 REGION valid=V possible=P
 *                                 (fast|parse)" or "TEXT: error: WHY"
 *
 * The differential run: for every region's example numbers of every type,
 * every non-geographic calling code's example, and systematic variants of
 * them (a 0, "1" or the national prefix after the calling code, leading
 * zeros, digits dropped, added or changed), strings that match each calling
 * code's national prefix pattern followed by every length of digits, random
 * digits after every calling code and "+" with 1 to 20 random digits,
 * each "+" input also written with separators (spaces, hyphens, dots,
 * parentheses, and now and then a character Parse treats otherwise), compare wa_phone_parse(.., 0, ..) with wa_phone_parse(..,
 * WA_PHONE_FAST_OFF, ..): return value, e164, region, valid, possible and
 * the reason must all be the same. Prints
 * "phone-diff: N inputs, M fast-path, K mismatches" and
 * "phone-diff: mobile examples: A of B fast-path", how many fast-path
 * answers were valid and not, and how many calling codes the shim validates
 * without PhoneNumberUtil (naming the others); exits 0 when K is 0,
 * else shows the first 20 mismatches and exits 1. Deterministic. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phone/wa_phone.h"

#define MAXIN 64 /* longest input generated, with its NUL */

static unsigned long ninputs, nfast, nmismatch, nfastvalid, nfastinvalid;

/* xorshift64*: deterministic, good enough for test inputs. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

static char
rdigit(void)
{
	return (char)('0' + rnd(10));
}

static int
same(const struct wa_phone *a, const struct wa_phone *b)
{
	return strcmp(a->e164, b->e164) == 0 &&
	    strcmp(a->region, b->region) == 0 &&
	    a->valid == b->valid && a->possible == b->possible;
}

static void
show(const char *tag, int rc, const struct wa_phone *p, const char *why)
{
	if (rc == 0)
		printf("  %-6s %s region=%s valid=%d possible=%d\n", tag, p->e164,
		    p->region, p->valid, p->possible);
	else
		printf("  %-6s error: %s\n", tag, why);
}

/* Compare the two paths on one input, read in region (NULL: none). */
static void
compare(const char *s, const char *region)
{
	struct wa_phone a, b;
	char wa[128], wb[128];
	unsigned long before = wa_phone_fast_count();
	int ra, rb;

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	ra = wa_phone_parse(s, strlen(s), region, 0, &a, wa, sizeof wa);
	if (wa_phone_fast_count() > before) {
		nfast++;
		if (ra == 0 && a.valid)
			nfastvalid++;
		else if (ra == 0)
			nfastinvalid++;
	}
	rb = wa_phone_parse(s, strlen(s), region, WA_PHONE_FAST_OFF, &b, wb,
	    sizeof wb);
	ninputs++;
	if (ra == rb && (ra != 0 || same(&a, &b)) && strcmp(wa, wb) == 0)
		return;
	if (nmismatch++ < 20) {
		printf("mismatch: \"%s\" in %s\n", s, region ? region : "(none)");
		show("fast", ra, &a, wa);
		show("parse", rb, &b, wb);
	}
}

/* s, and for a "+" number the same digits written with separators as
 * people do ("+972 (50) 123-4567", "+1.201.555.0123", odd ones too). */
static void
formatted(const char *s, const char *region)
{
	static const char seps[] = " -.()";
	char buf[MAXIN * 3];
	size_t i, k = 0;

	if (s[0] != '+')
		return;
	buf[k++] = '+';
	for (i = 1; s[i] && k + 4 < sizeof buf; i++) {
		switch (rnd(6)) {
		case 0: buf[k++] = seps[rnd(5)]; break;
		case 1: buf[k++] = seps[rnd(5)]; buf[k++] = seps[rnd(5)]; break;
		case 2:
			/* now and then what Parse reads otherwise: an extension,
			 * a second number, letters */
			if (rnd(20) == 0)
				buf[k++] = "x#,;/a~*"[rnd(8)];
			break;
		default: break;
		}
		buf[k++] = s[i];
	}
	if (rnd(8) == 0)
		buf[k++] = seps[rnd(5)];
	buf[k] = '\0';
	if (k != i)
		compare(buf, region);
}

static void
check(const char *s, const char *region)
{
	compare(s, region);
	formatted(s, region);
}

/* "+" cc rest, read with no region. */
static void
check3(int cc, const char *rest, size_t restlen)
{
	char buf[MAXIN];

	if (restlen > 40)
		return;
	snprintf(buf, sizeof buf, "+%d%.*s", cc, (int)restlen, rest);
	check(buf, NULL);
}

static void
random_digits(char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = rdigit();
	buf[n] = '\0';
}

/* The calling code an E.164 text starts with (calling codes are
 * prefix-free), or 0; *len gets its number of digits. */
static int
calling_code_of(const char *e164, size_t *len)
{
	const int *codes;
	size_t n, i;
	char pre[8];

	codes = wa_phone_calling_codes(&n);
	for (i = 0; i < n; i++) {
		snprintf(pre, sizeof pre, "+%d", codes[i]);
		if (strncmp(e164, pre, strlen(pre)) == 0) {
			*len = strlen(pre) - 1;
			return codes[i];
		}
	}
	return 0;
}

/* Every variant of an example number: cc and national number nat. */
static void
variants(int cc, const char *nat, const char *region)
{
	char buf[MAXIN], ndd[8];
	size_t n = strlen(nat), i, k;

	check3(cc, nat, n);
	if (region) {
		/* a default region must not matter after a "+" */
		snprintf(buf, sizeof buf, "+%d%s", cc, nat);
		check(buf, region);
	}
	/* "0", the national prefix, "1", and leading zeros before it */
	snprintf(buf, sizeof buf, "0%s", nat);
	check3(cc, buf, strlen(buf));
	snprintf(buf, sizeof buf, "00%s", nat);
	check3(cc, buf, strlen(buf));
	snprintf(buf, sizeof buf, "000%s", nat);
	check3(cc, buf, strlen(buf));
	snprintf(buf, sizeof buf, "1%s", nat);
	check3(cc, buf, strlen(buf));
	if (region && wa_phone_ndd(region, ndd, sizeof ndd) == 0 && *ndd) {
		snprintf(buf, sizeof buf, "%s%s", ndd, nat);
		check3(cc, buf, strlen(buf));
	}
	/* truncated and extended by 1 to 3 digits */
	for (k = 1; k <= 3; k++) {
		if (k <= n)
			check3(cc, nat, n - k);
		snprintf(buf, sizeof buf, "%s", nat);
		for (i = 0; i < k; i++)
			buf[n + i] = rdigit();
		buf[n + k] = '\0';
		check3(cc, buf, n + k);
	}
	/* each digit incremented */
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%s", nat);
		buf[i] = (char)('0' + (buf[i] - '0' + 1) % 10);
		check3(cc, buf, n);
	}
}

/* --- strings matching a national prefix pattern --------------------------
 * A generator for the pattern subset the metadata uses, written apart from
 * the shim's matcher so the two check each other: each call emits one random
 * string of the pattern's language (ignoring $). */

struct gen {
	const char *re;
	char *out;
	size_t len, cap;
	int bad;
};

static size_t gen_alt(struct gen *g, size_t pos, int emit);

static void
put(struct gen *g, char c, int emit)
{
	if (emit && g->len + 1 < g->cap)
		g->out[g->len++] = c;
}

/* One atom at pos; returns the position after it. */
static size_t
gen_atom(struct gen *g, size_t pos, int emit)
{
	const char *re = g->re;
	unsigned mask = 0;
	int lo, hi, d;

	switch (re[pos]) {
	case '(':
		pos++;
		if (re[pos] == '?' && re[pos + 1] == ':')
			pos += 2;
		pos = gen_alt(g, pos, emit);
		if (re[pos] != ')') {
			g->bad = 1;
			return strlen(re);
		}
		return pos + 1;
	case '[':
		for (pos++; re[pos] && re[pos] != ']'; pos++) {
			if (re[pos] == '\\' && re[pos + 1] == 'd') {
				mask |= 0x3ff;
				pos++;
				continue;
			}
			lo = hi = re[pos];
			if (re[pos + 1] == '-' && re[pos + 2] && re[pos + 2] != ']') {
				hi = re[pos + 2];
				pos += 2;
			}
			for (d = lo; d <= hi; d++)
				if (d >= '0' && d <= '9')
					mask |= 1u << (d - '0');
		}
		if (!re[pos] || !mask) {
			g->bad = 1;
			return strlen(re);
		}
		do
			d = (int)rnd(10);
		while (!(mask >> d & 1));
		put(g, (char)('0' + d), emit);
		return pos + 1;
	case '\\':
		put(g, rdigit(), emit);
		return pos + 2;
	case '$':
		return pos + 1;
	default:
		put(g, re[pos], emit);
		return pos + 1;
	}
}

static size_t
gen_cat(struct gen *g, size_t pos, int emit)
{
	const char *re = g->re;
	size_t after;
	int min, max, reps, i;
	char *end;

	while (re[pos] && re[pos] != '|' && re[pos] != ')' && !g->bad) {
		after = gen_atom(g, pos, 0);
		min = max = 1;
		if (re[after] == '?' || re[after] == '*' || re[after] == '+') {
			min = re[after] == '+';
			max = re[after] == '?' ? 1 : min + 3;
			after++;
		} else if (re[after] == '{') {
			min = (int)strtol(re + after + 1, &end, 10);
			max = min;
			if (*end == ',') {
				max = end[1] == '}' ? min + 3 : (int)strtol(end + 1, &end, 10);
				if (*end != '}')
					end = strchr(end, '}');
			}
			if (!end || *end != '}') {
				g->bad = 1;
				break;
			}
			after = (size_t)(end - re) + 1;
		}
		reps = min + (int)rnd((unsigned)(max - min + 1));
		for (i = 0; i < reps; i++)
			gen_atom(g, pos, emit);
		pos = after;
	}
	return pos;
}

/* Alternatives: one, chosen uniformly (reservoir), is emitted. */
static size_t
gen_alt(struct gen *g, size_t pos, int emit)
{
	char keep[MAXIN], *saved = g->out;
	size_t keeplen = 0, start = g->len, branch = 0;
	char tmp[MAXIN];

	for (;;) {
		g->out = tmp;
		g->len = 0;
		g->cap = sizeof tmp;
		pos = gen_cat(g, pos, emit);
		if (rnd((unsigned)++branch) == 0) {
			memcpy(keep, tmp, g->len);
			keeplen = g->len;
		}
		if (g->re[pos] != '|')
			break;
		pos++;
	}
	g->out = saved;
	g->len = start;
	g->cap = MAXIN;
	if (emit)
		for (size_t i = 0; i < keeplen && g->len + 1 < g->cap; i++)
			g->out[g->len++] = keep[i];
	return pos;
}

/* One random string of re's language into out (MAXIN bytes); -1 if the
 * pattern could not be read. */
static int
generate(const char *re, char *out)
{
	struct gen g = { re, out, 0, MAXIN, 0 };
	size_t end = gen_alt(&g, 0, 1);

	out[g.len] = '\0';
	return g.bad || re[end] ? -1 : 0;
}

/* Inputs where Parse may strip a national prefix: up to 60 different
 * strings of the calling code's national prefix pattern, each alone, before
 * the example national number nat and before random digits of every length
 * (the length decides whether Parse keeps the strip). */
static void
prefix_inputs(int cc, const char *nat)
{
	const char *re = wa_phone_prefix_pattern(cc);
	static char seen[60][MAXIN];
	char pre[MAXIN], buf[2 * MAXIN], tail[MAXIN];
	size_t plen, len;
	int i, j, nseen = 0;

	if (!re || !*re)
		return;
	for (i = 0; i < 400 && nseen < 60; i++) {
		if (generate(re, pre) != 0) {
			printf("phone-diff: cannot generate from /%s/\n", re);
			nmismatch++;
			return;
		}
		for (j = 0; j < nseen && strcmp(seen[j], pre) != 0; j++)
			;
		plen = strlen(pre);
		if (j < nseen || plen > 20)
			continue;
		memcpy(seen[nseen++], pre, plen + 1);
		check3(cc, pre, plen);
		snprintf(buf, sizeof buf, "%s%s", pre, nat);
		check3(cc, buf, strlen(buf));
		for (len = 1; plen + len <= 19; len++) {
			random_digits(tail, len);
			snprintf(buf, sizeof buf, "%s%s", pre, tail);
			check3(cc, buf, strlen(buf));
		}
	}
}

/* -t: each thread compares the two paths on every example number; returns
 * its mismatch count. */
static void *
thread_main(void *arg)
{
	const char *const *regions;
	struct wa_phone a, b;
	size_t n, i;
	unsigned long bad = 0;
	char e164[24], wa[128], wb[128];
	int t, ra, rb;

	(void)arg;
	regions = wa_phone_regions(&n);
	for (i = 0; i < n; i++)
		for (t = 0; t < WA_PHONE_NTYPES; t++) {
			if (wa_phone_example(regions[i], 0, (enum wa_phone_type)t,
			    e164) != 0)
				continue;
			ra = wa_phone_parse(e164, strlen(e164), NULL, 0, &a, wa,
			    sizeof wa);
			rb = wa_phone_parse(e164, strlen(e164), regions[i],
			    WA_PHONE_FAST_OFF, &b, wb, sizeof wb);
			if (ra != 0 || rb != 0 || !same(&a, &b))
				bad++;
		}
	return (void *)(uintptr_t)bad;
}

static int
threads(void)
{
	pthread_t th[8];
	unsigned long bad = 0;
	void *ret;
	int i;

	for (i = 0; i < 8; i++)
		if (pthread_create(&th[i], NULL, thread_main, NULL) != 0) {
			printf("phone-diff: cannot start a thread\n");
			return 1;
		}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], &ret);
		bad += (unsigned long)(uintptr_t)ret;
	}
	printf("phone-diff: 8 threads, %lu mismatches\n", bad);
	return bad ? 1 : 0;
}

/* TEXT...: print how each parses, and fail if the two paths differ. */
static int
show_all(char **texts, int n, const char *region)
{
	struct wa_phone p;
	char why[128];
	unsigned long before;
	int i, rc, bad = 0;

	for (i = 0; i < n; i++) {
		before = wa_phone_fast_count();
		rc = wa_phone_parse(texts[i], strlen(texts[i]), region, 0, &p, why,
		    sizeof why);
		if (rc == 0)
			printf("%s: %s %s valid=%d possible=%d (%s)\n", texts[i],
			    p.e164, *p.region ? p.region : "-", p.valid, p.possible,
			    wa_phone_fast_count() > before ? "fast" : "parse");
		else
			printf("%s: error: %s\n", texts[i], why);
		before = nmismatch;
		check(texts[i], region);
		bad |= nmismatch != before;
	}
	return bad;
}

static int
differential(void)
{
	const char *const *regions;
	const int *codes;
	size_t nregions, ncodes, i, cclen, len, own = 0;
	unsigned long mob = 0, mobfast = 0, before;
	char e164[24], buf[MAXIN];
	static unsigned char prefixed[1000];
	int t, cc, k;

	regions = wa_phone_regions(&nregions);
	codes = wa_phone_calling_codes(&ncodes);
	if (nregions < 200 || ncodes < 200) {
		printf("phone-diff: only %zu regions and %zu calling codes\n",
		    nregions, ncodes);
		return 1;
	}

	/* Example numbers of every region and type, and their variants. */
	for (i = 0; i < nregions; i++) {
		for (t = 0; t < WA_PHONE_NTYPES; t++) {
			if (wa_phone_example(regions[i], 0, (enum wa_phone_type)t,
			    e164) != 0)
				continue;
			cc = calling_code_of(e164, &cclen);
			if (!cc) {
				printf("phone-diff: no calling code in %s\n", e164);
				return 1;
			}
			if (t == WA_PHONE_MOBILE) {
				before = wa_phone_fast_count();
				compare(e164, NULL);
				mob++;
				mobfast += wa_phone_fast_count() - before;
				formatted(e164, NULL);
			}
			variants(cc, e164 + 1 + cclen, regions[i]);
			if (!prefixed[cc]) {
				prefixed[cc] = 1;
				prefix_inputs(cc, e164 + 1 + cclen);
			}
		}
	}

	/* Every calling code: its non-geographic example, its national prefix
	 * pattern, random national numbers of 0 to 18 digits. */
	for (i = 0; i < ncodes; i++) {
		cc = codes[i];
		if (wa_phone_example(NULL, cc, WA_PHONE_MOBILE, e164) == 0 &&
		    calling_code_of(e164, &cclen) == cc) {
			variants(cc, e164 + 1 + cclen, NULL);
			if (!prefixed[cc]) {
				prefixed[cc] = 1;
				prefix_inputs(cc, e164 + 1 + cclen);
			}
		}
		for (len = 0; len <= 18; len++)
			for (k = 0; k < 3; k++) {
				random_digits(buf, len);
				check3(cc, buf, len);
			}
	}

	/* "+" and 1 to 20 digits, any first digit. */
	for (len = 1; len <= 20; len++)
		for (k = 0; k < 150; k++) {
			buf[0] = '+';
			random_digits(buf + 1, len);
			check(buf, NULL);
		}

	printf("phone-diff: %lu inputs, %lu fast-path, %lu mismatches\n",
	    ninputs, nfast, nmismatch);
	printf("phone-diff: mobile examples: %lu of %lu fast-path\n", mobfast, mob);
	printf("phone-diff: fast-path answers: %lu valid, %lu not valid\n",
	    nfastvalid, nfastinvalid);
	codes = wa_phone_calling_codes(&ncodes);
	for (i = 0; i < ncodes; i++)
		if (wa_phone_fast_level(codes[i]) == 2)
			own++;
		else
			printf("phone-diff: calling code %d: validity asked of libphonenumber\n",
			    codes[i]);
	printf("phone-diff: calling codes validated by the shim: %zu of %zu\n",
	    own, ncodes);
	return nmismatch ? 1 : 0;
}

int
main(int argc, char **argv)
{
	const char *region = NULL;
	int c;

	while ((c = getopt(argc, argv, "r:t")) != -1)
		switch (c) {
		case 'r':
			region = optarg;
			break;
		case 't':
			return threads();
		default:
			fprintf(stderr, "usage: phone-diff [-t | [-r REGION] TEXT...]\n");
			return 2;
		}
	if (optind < argc)
		return show_all(argv + optind, argc - optind, region);
	return differential();
}
