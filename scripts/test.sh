#!/bin/bash
# Install what is missing, build, and run every test:
#   1. a normal build (warnings are errors) and the whole ctest suite;
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. each libFuzzer target for FERRY_FUZZ_SECONDS (default 60) seconds;
#   4. the clang-format check.
# Build trees: build/, build-asan/, build-fuzz/ (kept for inspection).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

jobs=$(nproc)
fuzz_seconds=${FERRY_FUZZ_SECONDS:-60}

step() { printf '\n=== %s\n' "$*"; }

# Every check that passed, for the closing line (a failure exits at once).
passed=0
count_ctest() { # the test count from ctest's summary in file $1
	n=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$1")
	passed=$((passed + ${n:-0}))
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "normal build and test suite"
# Options are spelled out: a build tree configured by run.sh (tests off)
# keeps its cache, and ctest would then find nothing to run.
cmake -S . -B build -DFERRY_WERROR=ON -DFERRY_BUILD_TESTS=ON \
	-DFERRY_BUILD_BENCH=ON -DFERRY_SANITIZE= >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs" | tee "$log"
count_ctest "$log"

step "AddressSanitizer + UBSan build and test suite"
CC=clang cmake -S . -B build-asan -DFERRY_WERROR=ON -DFERRY_BUILD_TESTS=ON \
	-DFERRY_BUILD_BENCH=ON -DFERRY_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure --no-tests=error -j"$jobs" |
	tee "$log"
count_ctest "$log"

step "fuzz targets, ${fuzz_seconds}s each"
CC=clang cmake -S . -B build-fuzz -DFERRY_BUILD_FUZZERS=ON \
	-DFERRY_BUILD_TESTS=OFF -DFERRY_BUILD_BENCH=OFF \
	-DFERRY_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$jobs"
for target in build-fuzz/tests/*_fuzz; do
	name=$(basename "$target")
	corpus=tests/fuzz/corpus/${name%_fuzz}
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
	echo "fuzzing $name (seed corpus $corpus)"
	"$target" -max_total_time="$fuzz_seconds" -seed=1 -rss_limit_mb=2048 \
		-print_final_stats=1 "$work" 2>&1 | tail -n 12
	rm -rf "$work"
	passed=$((passed + 1))
done

step "format check"
# Only the project's own tracked sources (not node_modules a benchmark
# installed, not build trees).
git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run --Werror
passed=$((passed + 1))

echo
echo "ferry: $passed passed, 0 failed"
