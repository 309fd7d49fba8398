/*
 * hlc.h — hybrid logical clock (Kulkarni et al., 2014), pure functions.
 *
 * A stamp is 48 bits of wall-clock milliseconds and a 16-bit logical
 * counter. The clock never goes backwards: it is persisted by the caller
 * (node meta, in the same LMDB transaction as the writes it stamps) and
 * reloaded with hlc_init(). Nothing here does I/O, so tests drive it with
 * any wall clock they like.
 */
#ifndef FERRY_HLC_H
#define FERRY_HLC_H

#include "ferry.h"

#define HLC_MAX_MS ((UINT64_C(1) << 48) - 1)
#define HLC_MAKE(ms, counter) (((uint64_t)(ms) << 16) | ((counter)&0xffffu))

/* The clock's state: the last stamp it issued or observed. */
typedef struct hlc_clock {
	ferry_hlc last;
} hlc_clock;

/* Start from a persisted stamp (0 for a new node). */
void hlc_init(hlc_clock *clock, ferry_hlc persisted);

/* A stamp for a local event (send): greater than every stamp issued or
 * observed so far. When the counter would overflow in one millisecond the
 * stamp moves to the next millisecond (a bounded, documented step ahead of
 * the wall clock) rather than wrap. */
ferry_hlc hlc_tick(hlc_clock *clock, uint64_t wall_ms);

/* Observe a remote stamp (receive). If it is more than max_drift_ms ahead
 * of wall_ms the clock is unchanged and FERRY_E_CLOCK_DRIFT is returned;
 * otherwise the clock advances past it and FERRY_OK is returned. */
ferry_err hlc_observe(hlc_clock *clock, ferry_hlc remote, uint64_t wall_ms,
		      uint64_t max_drift_ms);

/* How far `remote` is ahead of wall_ms in ms (0 if not ahead). */
uint64_t hlc_ahead_ms(ferry_hlc remote, uint64_t wall_ms);

/* Unix time in ms from CLOCK_REALTIME. */
uint64_t hlc_wall_ms(void);

#endif
