/* sched.c: times and sending windows in a named zone (see wa_sched.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/wa_clock.h"
#include "base/wa_sched.h"

/* --- the zone ------------------------------------------------------------- */

/* glibc converts in the zone TZ names: set it for one conversion and put
 * the process's own back. The programs convert on one thread. */
struct tzsave {
	char *old;
	int set;
};

static void
tz_push(struct tzsave *s, const char *tz)
{
	const char *o;

	s->old = NULL;
	s->set = tz && *tz;
	if (!s->set)
		return;
	o = getenv("TZ");
	s->old = o ? strdup(o) : NULL;
	setenv("TZ", tz, 1);
	tzset();
}

static void
tz_pop(struct tzsave *s)
{
	if (!s->set)
		return;
	if (s->old)
		setenv("TZ", s->old, 1);
	else
		unsetenv("TZ");
	free(s->old);
	tzset();
}

int
wa_tz_valid(const char *tz)
{
	const char *dir = getenv("TZDIR"), *p;
	char path[512];

	if (!tz || !*tz || strlen(tz) > 60 || tz[0] == '/' || strstr(tz, ".."))
		return 0;
	if (!strcmp(tz, "UTC"))
		return 1;
	for (p = tz; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
			return 0;
	/* glibc takes an unknown name for UTC without a word: look first. */
	snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
	return access(path, R_OK) == 0;
}

const char *
wa_tz_default(char *buf, size_t len)
{
	const char *e = getenv("WA_TZ"), *z;
	char link[512];
	ssize_t n;
	FILE *fp;

	snprintf(buf, len, "UTC");
	if (e && *e) {
		snprintf(buf, len, "%s", e);
		return buf;
	}
	n = readlink("/etc/localtime", link, sizeof link - 1);
	if (n > 0) {
		link[n] = '\0';
		z = strstr(link, "zoneinfo/");
		if (z && wa_tz_valid(z + 9)) {
			snprintf(buf, len, "%s", z + 9);
			return buf;
		}
	}
	fp = fopen("/etc/timezone", "r");
	if (fp) {
		if (fgets(link, sizeof link, fp)) {
			link[strcspn(link, " \t\r\n")] = '\0';
			if (wa_tz_valid(link))
				snprintf(buf, len, "%s", link);
		}
		fclose(fp);
	}
	return buf;
}

/* --- times ---------------------------------------------------------------- */

static int
digits(const char **p, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		*v = *v * 10 + (**p - '0');
	}
	return 0;
}

/* The offset at the end of a time: 1 read (seconds east into *off), 0
 * none, -1 bad. */
static int
offset(const char *p, long *off)
{
	int h, m = 0, sign;

	if (!*p)
		return 0;
	if (!strcmp(p, "Z") || !strcmp(p, "z")) {
		*off = 0;
		return 1;
	}
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	if (digits(&p, 2, &h) != 0)
		return -1;
	if (*p == ':')
		p++;
	if (*p && digits(&p, 2, &m) != 0)
		return -1;
	if (*p || h > 14 || m > 59)
		return -1;
	*off = sign * (h * 3600L + m * 60L);
	return 1;
}

int
wa_time_parse(const char *s, const char *tz, time_t *t, char *err, size_t len)
{
	const char *p = s;
	struct tm tm, back;
	struct tzsave z;
	int y, mo, d, h, mi, sec = 0, k;
	long off = 0;

	if (!strcmp(s, "now")) {
		*t = (time_t)wa_clock_now();
		return 0;
	}
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || (*p != ' ' && *p != 'T') || !*p++ ||
	    digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
		goto bad;
	if (*p == ':' && (p++, digits(&p, 2, &sec) != 0))
		goto bad;
	k = offset(p, &off);
	if (k < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 59)
		goto bad;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	back = tm;
	*t = timegm(&back);
	if (back.tm_mday != d) /* 31 February */
		goto bad;
	if (k == 1) {
		*t -= off;
		return 0;
	}
	tz_push(&z, tz);
	*t = mktime(&tm);
	localtime_r(t, &back);
	tz_pop(&z);
	if (back.tm_hour != h || back.tm_min != mi) {
		snprintf(err, len, "'%s' does not exist in %s (the clocks go forward "
		    "then)", s, tz && *tz ? tz : "the local zone");
		return -1;
	}
	return 0;
bad:
	snprintf(err, len, "not a time: '%s' (YYYY-MM-DD HH:MM[:SS], in the zone, "
	    "or with an offset such as +02:00)", s);
	return -1;
}

void
wa_time_format(time_t t, const char *tz, char *buf, size_t len)
{
	struct tzsave z;
	struct tm tm;
	long off;

	tz_push(&z, tz);
	localtime_r(&t, &tm);
	tz_pop(&z);
	off = tm.tm_gmtoff;
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 3600, labs(off) % 3600 / 60);
}

/* --- windows -------------------------------------------------------------- */

static const char *const dnames[7][2] = {
	{ "sun", "sunday" }, { "mon", "monday" }, { "tue", "tuesday" },
	{ "wed", "wednesday" }, { "thu", "thursday" }, { "fri", "friday" },
	{ "sat", "saturday" }
};

/* A day's name of n bytes: 0..6, or -1. */
static int
day_of(const char *s, size_t n)
{
	int i, j;

	for (i = 0; i < 7; i++)
		for (j = 0; j < 2; j++)
			if (strlen(dnames[i][j]) == n && !strncasecmp(s, dnames[i][j], n))
				return i;
	return -1;
}

/* DAY or DAY-DAY (wrapping: fri-sun) into the bits of *set. 0, or -1. */
static int
days_of(const char *s, size_t n, unsigned *set)
{
	const char *dash = memchr(s, '-', n);
	int a, b;

	if (dash) {
		a = day_of(s, (size_t)(dash - s));
		b = day_of(dash + 1, n - (size_t)(dash + 1 - s));
	} else
		a = b = day_of(s, n);
	if (a < 0 || b < 0)
		return -1;
	for (;; a = (a + 1) % 7) {
		*set |= 1u << a;
		if (a == b)
			break;
	}
	return 0;
}

/* HH:MM, 00:00 to 24:00, into minutes. */
static int
hhmm(const char **p, int *m)
{
	int h, mi;

	if (digits(p, 2, &h) || *(*p)++ != ':' || digits(p, 2, &mi) || mi > 59 ||
	    h > 24 || (h == 24 && mi))
		return -1;
	*m = h * 60 + mi;
	return 0;
}

static int
add_span(struct wa_window *w, int day, int open, int close)
{
	int i;

	if (w->n[day] == WA_WINDOW_SPANS)
		return -1;
	for (i = w->n[day]; i > 0 && w->span[day][i - 1].open > open; i--)
		w->span[day][i] = w->span[day][i - 1];
	w->span[day][i].open = open;
	w->span[day][i].close = close;
	w->n[day]++;
	return 0;
}

int
wa_window_parse(struct wa_window *w, const char *window, const char *skip,
    char *err, size_t len)
{
	struct { int open, close; } plain[WA_WINDOW_SPANS];
	unsigned named = 0, set, skipped = 0;
	const char *p, *e, *sp, *item;
	int nplain = 0, open, close, d, any = 0;

	memset(w, 0, sizeof *w);
	for (p = window; p && *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		while (*p == ' ')
			p++;
		item = p;
		sp = memchr(p, ' ', (size_t)(e - p));
		set = 0;
		if (sp && days_of(p, (size_t)(sp - p), &set) != 0) {
			snprintf(err, len, "--window: not a day or days: '%.*s' (sun..sat, "
			    "or a range such as sun-thu)", (int)(sp - p), p);
			return -1;
		}
		if (sp)
			for (p = sp; *p == ' '; p++)
				;
		if (hhmm(&p, &open) || *p++ != '-' || hhmm(&p, &close) ||
		    (p != e && p[strspn(p, " ")] != *e) || open >= close) {
			snprintf(err, len, "--window: not a range of the day: '%.*s' "
			    "(HH:MM-HH:MM, opening before closing; past midnight give "
			    "two)", (int)(e - item), item);
			return -1;
		}
		any = 1;
		if (!set) {
			if (nplain == WA_WINDOW_SPANS)
				goto many;
			plain[nplain].open = open;
			plain[nplain++].close = close;
			continue;
		}
		for (d = 0; d < 7; d++)
			if ((set & (1u << d)) && add_span(w, d, open, close) != 0)
				goto many;
		named |= set;
	}
	for (d = 0; d < 7; d++) {
		if (named & (1u << d))
			continue;
		if (!nplain)
			add_span(w, d, 0, 24 * 60);
		for (open = 0; open < nplain; open++)
			add_span(w, d, plain[open].open, plain[open].close);
	}
	for (p = skip; p && *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		while (*p == ' ')
			p++;
		if (days_of(p, (size_t)(e - p), &skipped) != 0) {
			snprintf(err, len, "--skip-days: not a day or days: '%.*s' "
			    "(sun..sat, or a range such as fri-sat)", (int)(e - p), p);
			return -1;
		}
	}
	for (d = 0; d < 7; d++)
		if (skipped & (1u << d))
			w->n[d] = 0;
	if (skipped == 0x7f) {
		snprintf(err, len, "--skip-days: every day skipped: it would never send");
		return -1;
	}
	w->any = any || skipped;
	return 0;
many:
	snprintf(err, len, "--window: more than %d ranges on a day", WA_WINDOW_SPANS);
	return -1;
}

/* Open at t? (in the zone already set) */
static int
open_at(const struct wa_window *w, time_t t)
{
	struct tm tm;
	int i, m;

	localtime_r(&t, &tm);
	m = tm.tm_hour * 60 + tm.tm_min;
	for (i = 0; i < w->n[tm.tm_wday]; i++)
		if (w->span[tm.tm_wday][i].open <= m && m < w->span[tm.tm_wday][i].close)
			return 1;
	return 0;
}

/* The time of minute m of the local day that is `off` days after tm's. */
static time_t
local_at(const struct tm *day, int off, int m)
{
	struct tm tm = *day;

	tm.tm_mday += off;
	tm.tm_hour = m / 60;
	tm.tm_min = m % 60;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

int
wa_window_at(const struct wa_window *w, const char *tz, time_t t, time_t *change)
{
	struct tzsave z;
	struct tm day, tm;
	time_t b, next = -1;
	int now, off, i, k, wd;

	if (!w->any) {
		if (change)
			*change = -1;
		return 1;
	}
	tz_push(&z, tz);
	now = open_at(w, t);
	localtime_r(&t, &day);
	/* The boundaries in order, from today's to a week and a day on: the
	 * first after t at which the state differs. */
	for (off = 0; off <= 8 && next < 0; off++) {
		tm = day;
		tm.tm_mday += off;
		tm.tm_hour = 12;
		tm.tm_isdst = -1;
		mktime(&tm);
		wd = tm.tm_wday;
		for (i = 0; i < w->n[wd] && next < 0; i++)
			for (k = 0; k < 2 && next < 0; k++) {
				b = local_at(&day, off, k ? w->span[wd][i].close :
				    w->span[wd][i].open);
				if (b > t && open_at(w, b) != now)
					next = b;
			}
		/* A closed day begins closed: midnight is a boundary too. */
		if (next < 0 && now && w->n[wd] == 0) {
			b = local_at(&day, off, 0);
			if (b > t)
				next = b;
		}
	}
	tz_pop(&z);
	if (change)
		*change = next;
	return now;
}
