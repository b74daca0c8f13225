/* clock.c: the monotonic clock (see wa_clock.h). */
#include <time.h>

#include "base/wa_clock.h"

double
wa_clock_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
