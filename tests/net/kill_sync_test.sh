#!/usr/bin/env bash
# kill_sync_test.sh — a node killed with SIGKILL in the middle of a large
# sync restarts and completes it, without duplicates or loss.
#
#   A holds a large store (FERRY_KILL_RECORDS records, default 200,000,
#   written by the fill_node helper in transactions of 1,000). B is empty
#   and dials A. As soon as B's store shows partial progress, B is killed
#   with SIGKILL. B is restarted; it must end up with exactly A's changes:
#   equal digests and vectors, equal change counts (no duplicates), every
#   record present (no loss), `ferry verify` passing, and the restarted
#   connection carrying only what B lacked.
#
# usage: kill_sync_test.sh PATH_TO_FERRY PATH_TO_FILL_NODE
. "$(dirname "$0")/lib.sh"

FILL=${2:?usage: kill_sync_test.sh PATH_TO_FERRY PATH_TO_FILL_NODE}
RECORDS=${FERRY_KILL_RECORDS:-200000}

node_init a
"$FILL" "$TMP/a" "$RECORDS" 1000 bulk items
# A few ordinary writes too, in a second scope and chain.
for i in 1 2 3; do
	f a put clinic-7 patients "p$i" name="Patient $i"
done
TOTAL=$(changes a)
log "a holds $TOTAL changes"
require "a holds the records written" test "$TOTAL" -eq $((RECORDS + 3))
serve_start a
IA=$(node_id a)

# start_b: a fresh, empty B that trusts A and dials it (A trusts it too).
start_b() {
	local n=$1
	node_init "$n"
	local id
	id=$(node_id "$n")
	f a trust add "$id" --name "$n" --read '*' --write '*' >/dev/null
	f "$n" trust add "$IA" --name a --read '*' --write '*' >/dev/null
	f "$n" peer add "${URL[a]}" >/dev/null
	serve_start "$n" --no-listen
}

# Kill B as soon as it holds some but not all of A's changes. On a fast
# machine the whole sync can slip between two polls: then try again with a
# fresh B (at most 3 times).
B=
partial=0
for attempt in 1 2 3; do
	b="b$attempt"
	start_b "$b"
	deadline=$(($(now_ms) + 60000))
	seen=0
	while :; do
		seen=$(changes "$b" 2>/dev/null || echo 0)
		[ "$seen" -gt 0 ] && break
		serve_running "$b" || die "ferry serve on $b exited during the sync"
		[ "$(now_ms)" -lt "$deadline" ] || die "$b received nothing from a in 60 s"
		sleep 0.02
	done
	serve_kill "$b"
	partial=$(changes "$b")
	log "attempt $attempt: saw $seen changes on $b, SIGKILLed it; it holds $partial of $TOTAL"
	if [ "$partial" -lt "$TOTAL" ]; then
		B=$b
		break
	fi
done
[ -n "$B" ] || die "the sync finished before B could be killed (3 attempts); raise FERRY_KILL_RECORDS"
check "$B was killed mid-sync (0 < $partial < $TOTAL)" test "$partial" -gt 0 -a "$partial" -lt "$TOTAL"
check "the killed store verifies (only whole batches applied)" f "$B" verify
check "the killed store's changes are a prefix of each chain" \
	bash -c 'test "$("$1" --dir "$2" status --json | python3 -c "import json, sys
d = json.load(sys.stdin)
print(sum(e[\"seq\"] for e in d[\"vector\"]))")" -eq "$3"' _ "$FERRY" "$TMP/$B" "$partial"

# Restart B: it dials A again and asks only for what it lacks.
serve_start "$B" --no-listen
check_within 120 "the restarted $B converges with a" digests_equal "" a "$B"
check "$B's change count equals a's ($(changes "$B") vs $TOTAL): no duplicates, no loss" \
	test "$(changes "$B")" -eq "$TOTAL"
check "vectors equal" test "$(vector_lines a)" = "$(vector_lines "$B")"
check "every bulk record is on $B" test "$(f "$B" ls bulk items | wc -l)" -eq "$RECORDS"
check "the last bulk record is intact" \
	test "$(f "$B" get bulk items "$(printf 'r%08d' $((RECORDS - 1)))")" = \
	"$(f a get bulk items "$(printf 'r%08d' $((RECORDS - 1)))")"
check "the log holds each change once" \
	bash -c 'test "$("$1" --dir "$2" log --json --since 0 | python3 -c "import json, sys
seen = set()
for line in sys.stdin:
    c = json.loads(line)
    k = (c[\"origin\"], c[\"scope\"], c[\"seq\"])
    if k in seen:
        sys.exit(1)
    seen.add(k)
print(len(seen))")" -eq "$3"' _ "$FERRY" "$TMP/$B" "$TOTAL"
check "verify passes on $B" f "$B" verify
check_within 10 "the restarted connection received only what $B lacked ($((TOTAL - partial)))" \
	peer_q "$B" a "p['online'] and p['received'] == $((TOTAL - partial)) and p['pending_recv'] == 0"

finish
