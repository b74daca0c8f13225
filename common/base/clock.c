/* clock.c: the monotonic clock and the wall clock (see wa_clock.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/wa_cli.h"
#include "base/wa_clock.h"
#include "base/wa_sched.h"

double
wa_clock_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
wa_clock_now(void)
{
	static int init, fake;
	static double base, mono0;
	struct timespec ts;
	const char *s;
	char err[200];
	time_t t;

	if (!init) {
		init = 1;
		s = getenv("WA_NOW");
		if (s && *s && strcmp(s, "now") != 0) {
			if (s[0] == '@') {
				t = (time_t)strtoll(s + 1, NULL, 10);
				fake = 1;
			} else if (wa_time_parse(s, getenv("WA_TZ"), &t, err, sizeof err) == 0)
				fake = 1;
			else
				wa_warn("WA_NOW: %s: the system's clock is used", err);
			base = (double)t;
			mono0 = wa_clock_s();
		}
	}
	if (fake)
		return base + (wa_clock_s() - mono0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
