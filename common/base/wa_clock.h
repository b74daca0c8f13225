/* wa_clock.h: the monotonic clock timers and pacing are measured on, and
 * the wall clock schedules and sending windows are decided on. */
#ifndef WA_CLOCK_H
#define WA_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double wa_clock_s(void);

/* Seconds since the epoch: the system's clock, or, when WA_NOW is set
 * (tests), the time it names ("2026-12-08T19:59:55+02:00", or in WA_TZ
 * without an offset, or @SECONDS), from which it runs on at the rate of
 * the monotonic clock. Every schedule and window decision asks this one
 * and hands it to SQL as a parameter. */
double wa_clock_now(void);

#endif
