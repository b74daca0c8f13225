/* wa_sched.h: wall-clock times and sending windows in a named time zone.
 *
 * Every conversion goes through the system's time-zone database (TZ with
 * localtime_r and mktime): a zone is a name such as Asia/Jerusalem, never
 * a fixed offset, so daylight-saving changes fall where the zone's rules
 * put them. tz NULL or "" below means the process's own zone.
 *
 * A window is the hours of the local week in which sends may go out:
 *   ITEM[,ITEM]...   ITEM: [DAYS ]HH:MM-HH:MM   DAYS: DAY or DAY-DAY
 * e.g. "09:00-20:00" or "09:00-20:00,fri 09:00-14:00". An item with DAYS
 * replaces the items without for those days; several for a day add up. A
 * day no item names is open all day. Skip-days ("fri-sat", "sat,sun")
 * close whole days. DAY: sun mon tue wed thu fri sat (or the full name).
 * Times are [open, close), close may be 24:00; a range never crosses
 * midnight (give two). */
#ifndef WA_SCHED_H
#define WA_SCHED_H

#include <stddef.h>
#include <time.h>

#define WA_WINDOW_SPANS 8

struct wa_window {
	struct { int open, close; } span[7][WA_WINDOW_SPANS]; /* minutes, sorted */
	int n[7];  /* spans per weekday, 0 = Sunday */
	int any;   /* 0: always open (no window, no day skipped) */
};

/* 1 when tz is a zone of the database (or "UTC"), else 0. */
int wa_tz_valid(const char *tz);
/* The default zone's name into buf: WA_TZ, else the system's
 * (/etc/localtime, /etc/timezone), else "UTC". */
const char *wa_tz_default(char *buf, size_t len);

/* s as a time: "now", "YYYY-MM-DD HH:MM[:SS]" (or with 'T') in zone tz, or
 * the same with an offset ("Z", "+02:00", "+0200", "+02"). A local time
 * the zone skips (clocks going forward) is refused. 0, or -1 with err. */
int wa_time_parse(const char *s, const char *tz, time_t *t, char *err,
    size_t len);
/* t as ISO 8601 with its offset in zone tz: "2026-12-08T09:00:00+02:00". */
void wa_time_format(time_t t, const char *tz, char *buf, size_t len);

/* Parse a window and skip-days (either may be NULL or ""). 0, or -1 with
 * err naming what is wrong. */
int wa_window_parse(struct wa_window *w, const char *window, const char *skip,
    char *err, size_t len);
/* 1 when w is open at t in zone tz, else 0; *change (may be NULL) gets
 * the next time that changes (its closing, or its next opening), or -1
 * when it never does. */
int wa_window_at(const struct wa_window *w, const char *tz, time_t t,
    time_t *change);

#endif
