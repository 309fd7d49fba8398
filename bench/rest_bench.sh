#!/bin/bash
# rest_bench.sh — the hub's HTTP side under load from wrk (Debian's wrk),
# on 127.0.0.1, against raw LMDB inserts of the same records measured in
# the same run (ferry-bench-engine's raw phase).
#
#   initial-data: a branch scope of N clients (default 100,000); wrk GETs
#                 /api/sync/initial-data for D seconds; records/s = requests/s
#                 x N.
#   upload:       wrk POSTs /api/sync/upload-changes with A create_client
#                 actions per request (default 1,000), every queue_id unique;
#                 actions/s = requests/s x A. Afterwards the hub must hold
#                 exactly N + (requests x A) clients: nothing lost, nothing
#                 doubled.
#
# Usage: bench/rest_bench.sh [-n N] [-a A] [-d SECONDS] [-c CONNECTIONS]
#        (run from a build tree's parent or set FERRY and BENCH_ENGINE)
set -euo pipefail

n=100000
actions=1000
duration=10
connections=2
while getopts "n:a:d:c:" opt; do
	case $opt in
	n) n=$OPTARG ;;
	a) actions=$OPTARG ;;
	d) duration=$OPTARG ;;
	c) connections=$OPTARG ;;
	*) echo "usage: $0 [-n N] [-a A] [-d SECONDS] [-c CONNECTIONS]" >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-$here/../build}
ferry=${FERRY:-$build/tools/ferry}
engine_bench=${BENCH_ENGINE:-$build/bench/ferry-bench-engine}
fill=${BENCH_FILL:-$build/bench/ferry-bench-fill}
command -v wrk >/dev/null || { echo "rest_bench: wrk is missing: run scripts/bootstrap.sh" >&2; exit 1; }
[ -x "$ferry" ] || { echo "rest_bench: no ferry binary at $ferry (set FERRY)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-rest-bench-XXXXXX")
hub_pid=
cleanup() {
	[ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null && wait "$hub_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

dir=$work/hub
echo "rest_bench: filling $n clients into scope 1/1 ($work)" >&2
"$ferry" --dir "$dir" init >/dev/null
"$fill" "$dir" 1/1 clients "$n" >&2
"$ferry" --dir "$dir" put pricelist nomenclature vaccine name=Vaccine price=1200 >/dev/null
key=$("$ferry" --dir "$dir" apikey create --name bench --read '1/1,pricelist' \
	--write 1/1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

"$ferry" --dir "$dir" serve --no-listen --no-dial --http 127.0.0.1:0 --json \
	>"$work/hub.out" 2>"$work/hub.log" &
hub_pid=$!
for _ in $(seq 1 100); do
	grep -q '"http"' "$work/hub.out" 2>/dev/null && break
	sleep 0.1
done
addr=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["http"])' "$work/hub.out")
url=http://$addr

# Sanity: one download holds every record.
got=$(curl -sf -H "X-API-Key: $key" "$url/api/sync/initial-data" |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["clients"]))')
[ "$got" = "$n" ] || { echo "rest_bench: initial-data returned $got of $n clients" >&2; exit 1; }

wrk_rate() { awk '/Requests\/sec:/ {print $2}'; }
wrk_requests() { awk '/requests in/ {print $1}'; }

echo "rest_bench: initial-data, ${duration}s" >&2
down=$(wrk -t1 -c1 -d"${duration}s" --timeout 30s -H "X-API-Key: $key" \
	"$url/api/sync/initial-data")
down_rps=$(echo "$down" | wrk_rate)

cat >"$work/upload.lua" <<EOF
local key, per_request = "$key", $actions
local next_thread = 0
function setup(thread)
	thread:set("first", next_thread * 1000000000)
	next_thread = next_thread + 1
end
function init(args)
	counter = first
end
function request()
	local parts = {}
	for i = 1, per_request do
		counter = counter + 1
		parts[i] = string.format(
			'{"queue_id":%d,"action_type":"create_client","payload":'
			.. '{"name":"Client %d","phone":"+7 901 %07d"}}',
			counter, counter, counter % 10000000)
	end
	local body = '{"tenantId":"1","branchId":"1","actions":['
		.. table.concat(parts, ",") .. ']}'
	return wrk.format("POST", "/api/sync/upload-changes",
		{["X-API-Key"] = key, ["Content-Type"] = "application/json"}, body)
end
EOF
echo "rest_bench: upload-changes, $actions actions per request, ${duration}s" >&2
up=$(wrk -t"$connections" -c"$connections" -d"${duration}s" --timeout 30s \
	-s "$work/upload.lua" "$url/api/sync/upload-changes")
up_rps=$(echo "$up" | wrk_rate)
up_requests=$(echo "$up" | wrk_requests)

kill "$hub_pid"
wait "$hub_pid" 2>/dev/null || true
hub_pid=
held=$("$ferry" --dir "$dir" ls --json | python3 -c '
import json, sys
for line in sys.stdin:
    c = json.loads(line)
    if c.get("scope") == "1/1" and c.get("collection") == "clients":
        print(c["records"])')
# wrk stops counting at the deadline: up to one request per connection may
# have completed on the hub after that. Anything else (a lost or doubled
# action) shows as a count outside this window or not a whole request.
created=$((held - n))
if [ $((created % actions)) -ne 0 ] || [ "$created" -lt $((up_requests * actions)) ] ||
	[ "$created" -gt $(((up_requests + connections) * actions)) ]; then
	echo "rest_bench: hub holds $held clients after $up_requests requests of $actions" >&2
	exit 1
fi

raw=$("$engine_bench" -n "$n" --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["raw_lmdb"]["records_per_s"])' 2>/dev/null || echo 0)

python3 - "$n" "$actions" "$down_rps" "$up_rps" "$raw" "$up_requests" <<'EOF'
import sys
n, a, down, up, raw, reqs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
records = down * n
acts = up * a
print("rest_bench: %d clients; upload %d actions/request" % (n, a))
print("initial-data   %12.0f records/s  (%.2f requests/s)" % (records, down))
print("upload-changes %12.0f actions/s  (%.2f requests/s, %d requests, all applied once)" % (acts, up, reqs))
if raw > 0:
    print("raw LMDB puts  %12.0f records/s  (same machine, same run; upload/raw = %.2f)" % (raw, acts / raw))
EOF
