#!/usr/bin/env bash
# concurrent_test.sh — two serving nodes, connected to each other, write the
# same records and fields at the same time (a background `ferry put`/`del`
# loop on each). Once the writers stop, both nodes must converge to the same
# state (equal `ferry digest`, equal records, equal vectors), the merges
# that lost must be in `ferry conflicts`, and `ferry verify` must pass.
#
# usage: concurrent_test.sh PATH_TO_FERRY
. "$(dirname "$0")/lib.sh"

ROUNDS=${FERRY_CONCURRENT_ROUNDS:-80}
KEYS=5

node_init a
node_init b
IA=$(node_id a)
IB=$(node_id b)
f a trust add "$IB" --name b --read 'clinic-7,clinic-7/*' --write 'clinic-7,clinic-7/*' >/dev/null
f b trust add "$IA" --name a --read 'clinic-7,clinic-7/*' --write 'clinic-7,clinic-7/*' >/dev/null

serve_start a
serve_start b
# Both operators added the other: each node dials the other.
f a peer add "${URL[b]}" >/dev/null
f b peer add "${URL[a]}" >/dev/null
log "a at ${URL[a]}, b at ${URL[b]}"
check_within 20 "a sees b online" peer_q a b 'p["online"]'
check_within 20 "b sees a online" peer_q b a 'p["online"]'

# writer NODE: ROUNDS rounds over the same KEYS records: field writes (the
# same fields on both nodes), multi-field writes, and now and then a delete.
writer() {
	local n=$1 i k
	for i in $(seq 1 "$ROUNDS"); do
		k=$((i % KEYS))
		"$FERRY" --dir "$TMP/$n" put clinic-7 patients "p$k" weight="$i" by="$n" "note_$n=round $i" ||
			{ echo "writer $n: put failed in round $i"; return 1; }
		if [ $((i % 7)) -eq 0 ]; then
			"$FERRY" --dir "$TMP/$n" del clinic-7 patients "p$(((i + 1) % KEYS))" ||
				{ echo "writer $n: del failed in round $i"; return 1; }
		fi
		if [ $((i % 3)) -eq 0 ]; then
			"$FERRY" --dir "$TMP/$n" put clinic-7/billing invoices inv1 "{\"total\": $i, \"by\": \"$n\"}" ||
				{ echo "writer $n: put failed in round $i"; return 1; }
		fi
	done
}

bg writer a
wa=$BG_LAST
bg writer b
wb=$BG_LAST
# Bounded wait for both writers.
wait_until 120 "both writers finish" exited "$wa" "$wb"
rc_a=0
wait "$wa" || rc_a=$?
rc_b=0
wait "$wb" || rc_b=$?
check "writer on a succeeded (exit $rc_a)" test "$rc_a" -eq 0
check "writer on b succeeded (exit $rc_b)" test "$rc_b" -eq 0
log "writers done: a $(changes a), b $(changes b) changes"

check_within 30 "a and b converge (digest of everything)" digests_equal "" a b
check "clinic-7 digests equal" digests_equal clinic-7 a b
check "clinic-7/billing digests equal" digests_equal clinic-7/billing a b
check "vectors equal" test "$(vector_lines a)" = "$(vector_lines b)"
check "change counts equal" test "$(changes a)" -eq "$(changes b)"
check "both hold every change of both ($(changes a))" \
	test "$(changes a)" -eq "$(($(vector_lines a | awk '{s += $3} END {print s}')))"
for k in $(seq 0 $((KEYS - 1))); do
	rca=0
	rcb=0
	f a get --json clinic-7 patients "p$k" >"$TMP/get.a" 2>/dev/null || rca=$?
	f b get --json clinic-7 patients "p$k" >"$TMP/get.b" 2>/dev/null || rcb=$?
	check "patients/p$k: same result on both (get exit $rca / $rcb)" \
		cmp -s "$TMP/get.a" "$TMP/get.b"
	check "patients/p$k: same get exit status on both" test "$rca" -eq "$rcb"
done
check "billing/inv1 same on both" \
	test "$(f a get clinic-7/billing invoices inv1)" = "$(f b get clinic-7/billing invoices inv1)"
# Each node wrote the same fields; the other's writes must have won
# sometimes, so both conflict logs hold entries.
ca=$(f a conflicts --json | wc -l)
cb=$(f b conflicts --json | wc -l)
log "conflict log entries: a $ca, b $cb"
check "ferry conflicts lists entries on a ($ca)" test "$ca" -gt 0
check "ferry conflicts lists entries on b ($cb)" test "$cb" -gt 0
check "conflicts entries name the record and field" \
	bash -c '"$1" --dir "$2" conflicts --json clinic-7 patients | head -1 | python3 -c "import json, sys
d = json.loads(sys.stdin.readline())
sys.exit(0 if d[\"collection\"] == \"patients\" and d[\"field\"] and d[\"loser\"][\"origin\"] != d[\"winner\"][\"origin\"] else 1)"' \
	_ "$FERRY" "$TMP/a"
check "verify passes on a" f a verify
check "verify passes on b" f b verify
check_within 10 "nothing refused, both online (a)" \
	peer_q a b 'p["online"] and p["refused_in"] == 0 and p["refused_out"] == 0'
check_within 10 "nothing refused, both online (b)" \
	peer_q b a 'p["online"] and p["refused_in"] == 0 and p["refused_out"] == 0'

finish
