/*
 * hlc_test.c — the hybrid logical clock (engine/hlc.c): pure clock rules
 * driven by a fake wall clock, then persistence across a node restart
 * through the public API.
 */
#include "engine_helpers.h"
#include "hlc.h"

#define T0 UINT64_C(1700000000000)

static void test_tick_monotonic_fixed_wall(void)
{
	hlc_clock c;
	hlc_init(&c, 0);
	ferry_hlc prev = hlc_tick(&c, T0);
	CHECK_EQ_U64(prev, HLC_MAKE(T0, 0));
	for (int i = 0; i < 1000; i++) {
		ferry_hlc h = hlc_tick(&c, T0);
		CHECK(h > prev);
		prev = h;
	}
}

static void test_wall_backwards(void)
{
	hlc_clock c;
	hlc_init(&c, 0);
	ferry_hlc prev = hlc_tick(&c, T0 + 5000);
	/* A wall clock stepping back (NTP correction, VM restore) must not
	 * drag stamps back with it. */
	for (uint64_t back = 1; back <= 5000; back += 499) {
		ferry_hlc h = hlc_tick(&c, T0 + 5000 - back);
		CHECK(h > prev);
		CHECK_EQ_U64(FERRY_HLC_MS(h), T0 + 5000);
		prev = h;
	}
	/* Random wall jitter, both ways. */
	for (int i = 0; i < 10000; i++) {
		uint64_t wall = T0 + test_rand_below(10000);
		ferry_hlc h = hlc_tick(&c, wall);
		CHECK(h > prev);
		CHECK(FERRY_HLC_MS(h) >= wall);
		prev = h;
	}
}

static void test_counter(void)
{
	hlc_clock c;
	hlc_init(&c, 0);
	CHECK_EQ_U64(hlc_tick(&c, T0), HLC_MAKE(T0, 0));
	CHECK_EQ_U64(hlc_tick(&c, T0), HLC_MAKE(T0, 1));
	CHECK_EQ_U64(hlc_tick(&c, T0), HLC_MAKE(T0, 2));
	/* The wall advancing resets the counter. */
	CHECK_EQ_U64(hlc_tick(&c, T0 + 1), HLC_MAKE(T0 + 1, 0));
	CHECK_EQ_U64(hlc_tick(&c, T0 + 1), HLC_MAKE(T0 + 1, 1));
	CHECK_EQ_U64(hlc_tick(&c, T0 + 7), HLC_MAKE(T0 + 7, 0));
}

static void test_counter_overflow(void)
{
	hlc_clock c;
	hlc_init(&c, 0);
	ferry_hlc prev = hlc_tick(&c, T0);
	for (uint32_t i = 1; i < 65536; i++) {
		ferry_hlc h = hlc_tick(&c, T0);
		CHECK(h > prev);
		CHECK_EQ_U64(FERRY_HLC_MS(h), T0);
		CHECK_EQ_U64(FERRY_HLC_COUNTER(h), i);
		prev = h;
	}
	CHECK_EQ_U64(FERRY_HLC_COUNTER(prev), 0xffff);
	/* The 65537th tick in one millisecond carries into the next ms
	 * instead of wrapping the counter to 0 of the same ms. */
	ferry_hlc h = hlc_tick(&c, T0);
	CHECK(h > prev);
	CHECK_EQ_U64(FERRY_HLC_MS(h), T0 + 1);
	CHECK_EQ_U64(FERRY_HLC_COUNTER(h), 0);
	ferry_hlc h2 = hlc_tick(&c, T0);
	CHECK(h2 > h);
	CHECK_EQ_U64(h2, HLC_MAKE(T0 + 1, 1));
}

static void test_observe_ahead(void)
{
	hlc_clock c;
	hlc_init(&c, 0);
	hlc_tick(&c, T0);
	ferry_hlc remote = HLC_MAKE(T0 + 2000, 17);
	CHECK_OK(hlc_observe(&c, remote, T0, 300000));
	ferry_hlc h = hlc_tick(&c, T0);
	CHECK(h > remote);
	/* A remote stamp behind ours changes nothing that matters. */
	ferry_hlc before = hlc_tick(&c, T0);
	CHECK_OK(hlc_observe(&c, HLC_MAKE(T0 - 100, 3), T0, 300000));
	CHECK(hlc_tick(&c, T0) > before);
	CHECK_EQ_U64(hlc_ahead_ms(HLC_MAKE(T0 + 5, 9), T0), 5);
	CHECK_EQ_U64(hlc_ahead_ms(HLC_MAKE(T0 - 5, 9), T0), 0);
	CHECK_EQ_U64(hlc_ahead_ms(HLC_MAKE(T0, 9), T0), 0);
}

static void test_observe_drift(void)
{
	const uint64_t drift = 300000;
	hlc_clock c;
	hlc_init(&c, 0);
	hlc_tick(&c, T0);
	hlc_clock saved = c;

	CHECK_ERR(hlc_observe(&c, HLC_MAKE(T0 + drift + 1, 0), T0, drift),
		  FERRY_E_CLOCK_DRIFT);
	CHECK_EQ_U64(c.last, saved.last);
	CHECK_ERR(hlc_observe(&c, HLC_MAKE(T0 + 10 * drift, 0), T0, drift),
		  FERRY_E_CLOCK_DRIFT);
	CHECK_EQ_U64(c.last, saved.last);
	/* Far future stamps (garbage on the wire) are refused too. */
	CHECK_ERR(hlc_observe(&c, UINT64_MAX, T0, drift), FERRY_E_CLOCK_DRIFT);
	CHECK_EQ_U64(c.last, saved.last);

	/* Exactly at the limit is accepted, whatever the counter. */
	ferry_hlc edge = HLC_MAKE(T0 + drift, 0xffff);
	CHECK_OK(hlc_observe(&c, edge, T0, drift));
	CHECK(hlc_tick(&c, T0) > edge);
}

static void test_restart(void)
{
	ferry_hlc persisted = HLC_MAKE(T0 + 60000, 41);
	hlc_clock c;
	hlc_init(&c, persisted);
	/* The wall clock is a minute behind what was persisted. */
	ferry_hlc h = hlc_tick(&c, T0);
	CHECK(h > persisted);
	CHECK(hlc_tick(&c, T0) > h);
	/* Persisted at the counter limit. */
	hlc_init(&c, HLC_MAKE(T0, 0xffff));
	CHECK(hlc_tick(&c, T0) > HLC_MAKE(T0, 0xffff));
}

static void test_wall_ms(void)
{
	uint64_t a = hlc_wall_ms();
	/* Sanity: after 2020 and before the 48-bit limit. */
	CHECK(a > UINT64_C(1577836800000));
	CHECK(a < HLC_MAX_MS);
}

/* Through the public API: a restart with the clock set back still stamps
 * later than everything before. */
static void test_node_restart_clock(void)
{
	const char *dir = eh_node_dir("hlc-restart");
	uint64_t now = T0 + 3600 * 1000;
	ferry_node_options opts = test_node_options(1);
	opts.clock = eh_clock_fn;
	opts.clock_payload = &now;

	ferry_node *node = eh_open(dir, &opts);
	eh_put_int(node, "s", "c", "k1", "f", 1);
	eh_put_int(node, "s", "c", "k2", "f", 2);
	eh_change_list before = eh_changes(node, 0);
	CHECK_EQ_U64(before.n, 2);
	CHECK(before.hlc[1] > before.hlc[0]);
	CHECK_EQ_U64(FERRY_HLC_MS(before.hlc[0]), now);
	ferry_node_close(node);

	now -= 3600 * 1000; /* an hour back */
	node = eh_open(dir, &opts);
	eh_put_int(node, "s", "c", "k3", "f", 3);
	eh_change_list after = eh_changes(node, 0);
	CHECK_EQ_U64(after.n, 3);
	CHECK(after.hlc[2] > before.hlc[1]);
	ferry_status st;
	CHECK_NODE_OK(node, ferry_status_get(&st, node));
	CHECK(st.clock >= after.hlc[2]);
	ferry_node_close(node);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_tick_monotonic_fixed_wall();
	test_wall_backwards();
	test_counter();
	test_counter_overflow();
	test_observe_ahead();
	test_observe_drift();
	test_restart();
	test_wall_ms();
	test_node_restart_clock();
	printf("hlc_test: ok\n");
	return 0;
}
