#!/bin/bash
# bench_smoke: every ferry-bench scenario at a tiny size, with --json; the
# document must be well-formed and say converged. Asserts correctness,
# never speed. Usage: smoke_test.sh PATH/TO/ferry-bench
set -euo pipefail

bench=${1:?usage: smoke_test.sh PATH/TO/ferry-bench}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-bench-smoke-XXXXXX")
trap 'rm -rf "$work"' EXIT
command -v wrk >/dev/null || { echo "bench_smoke: wrk is missing: run scripts/bootstrap.sh" >&2; exit 1; }

check() {
	local scenario=$1
	shift
	echo "bench_smoke: $scenario $*" >&2
	local rc=0
	"$bench" "$scenario" --runs 1 --json --dir "$work" "$@" >"$work/$scenario.json" || rc=$?
	# 3: a peer the scenario needs is missing (its reason is on stderr).
	if [ "$rc" -eq 3 ]; then
		echo "bench_smoke: $scenario skipped" >&2
		return 0
	fi
	[ "$rc" -eq 0 ] || { echo "bench_smoke: $scenario exited $rc" >&2; exit 1; }
	python3 - "$scenario" "$work/$scenario.json" <<'PY'
import json, math, sys
scenario, path = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
assert doc["scenario"] == scenario, doc["scenario"]
assert doc["converged"] is True, "did not converge"
assert isinstance(doc["seed"], int)
assert len(doc["runs"]) == 1 and doc["runs"][0]["converged"] is True
for k in ("median", "min", "max"):
    assert doc[k] and all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
                          for v in doc[k].values()), (k, doc[k])
assert doc["ratios"] and all(isinstance(r["median"], (int, float)) and r["median"] > 0
                             for r in doc["ratios"].values()), doc["ratios"]
PY
}

check local -n 2000
check full-sync -n 2000
check live --rate 200 --seconds 1
check fan-in --branches 3 --rate 20 --seconds 1
check rest -n 2000 --actions 100 --seconds 1
check adapter -n 500 --rate 100 --seconds 1

# The table and the picture, once.
if command -v gnuplot >/dev/null; then
	"$bench" live --runs 1 --rate 100 --seconds 1 --dir "$work" \
		--plot "$work/live.svg" >"$work/live.txt"
	grep -q '^converged: yes' "$work/live.txt"
	grep -q '<svg' "$work/live.svg"
fi
echo "bench_smoke: ok" >&2
