/* wa_clock.h: the monotonic clock timers and pacing are measured on. */
#ifndef WA_CLOCK_H
#define WA_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double wa_clock_s(void);

#endif
