/*
 * hlc.c — hybrid logical clock (see hlc.h).
 */
#include "hlc.h"

#include <time.h>

void hlc_init(hlc_clock *clock, ferry_hlc persisted)
{
	clock->last = persisted;
}

/* The smallest stamp greater than both `floor` and (wall_ms, 0): the
 * physical part follows the wall clock when it is ahead, otherwise the
 * counter counts. A full counter carries into the millisecond, which keeps
 * stamps unique and ordered at the price of running up to 1 ms ahead of
 * the wall clock per 65,536 events in one millisecond. */
static ferry_hlc next_after(ferry_hlc floor, uint64_t wall_ms)
{
	if (wall_ms > HLC_MAX_MS)
		wall_ms = HLC_MAX_MS;
	if (wall_ms > FERRY_HLC_MS(floor))
		return HLC_MAKE(wall_ms, 0);
	return floor + 1;
}

ferry_hlc hlc_tick(hlc_clock *clock, uint64_t wall_ms)
{
	clock->last = next_after(clock->last, wall_ms);
	return clock->last;
}

uint64_t hlc_ahead_ms(ferry_hlc remote, uint64_t wall_ms)
{
	uint64_t ms = FERRY_HLC_MS(remote);
	return ms > wall_ms ? ms - wall_ms : 0;
}

ferry_err hlc_observe(hlc_clock *clock, ferry_hlc remote, uint64_t wall_ms,
		      uint64_t max_drift_ms)
{
	if (hlc_ahead_ms(remote, wall_ms) > max_drift_ms)
		return FERRY_E_CLOCK_DRIFT;
	/* Receiving does not need a fresh stamp, only to never issue one at
	 * or below what was seen. */
	if (remote > clock->last)
		clock->last = remote;
	return FERRY_OK;
}

uint64_t hlc_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
