#!/usr/bin/env bash
# untrusted_test.sh — a key that is not in the trust list is refused
# (docs/protocol.md §2 "Trust"), in both directions, and nothing moves:
#
#   1. A serves; B (which trusts A) runs `ferry sync` to A, but A does not
#      list B: the sync fails (non-zero exit, message naming the key and
#      `ferry trust add`), A's log records the refusal, neither node changes.
#   2. The reverse: A now trusts B, but B trusts nobody: B's own sync refuses
#      A, with the same guarantees.
#   3. Serving nodes: B serves and dials A while A does not list B: B's
#      status shows the refusal; A is told to trust B with `ferry trust add`
#      while running (no restart) and the two then converge.
#   4. Positive control: with both trust entries, `ferry sync` works.
#
# usage: untrusted_test.sh PATH_TO_FERRY
. "$(dirname "$0")/lib.sh"

node_init a
node_init b
IA=$(node_id a)
IB=$(node_id b)

# Some data on both sides, so "nothing changed" means something.
for i in 1 2 3; do
	f a put clinic-7 patients "pa$i" name="A patient $i" weight=$((10 + i))
	f b put clinic-7 patients "pb$i" name="B patient $i" weight=$((20 + i))
done

# snapshot NODE: digest, change count and vector, one text blob.
snapshot() {
	digest "$1"
	changes "$1"
	vector_lines "$1"
}

serve_start a
log "a serves at ${URL[a]}"

# --- 1. A does not list B ---------------------------------------------------
f b trust add "$IA" --name a --read clinic-7 --write clinic-7 >/dev/null
before_a=$(snapshot a)
before_b=$(snapshot b)
rc=0
f b sync --timeout 20 "${URL[a]}" >"$TMP/sync1.out" 2>"$TMP/sync1.err" || rc=$?
log "sync by untrusted b: exit $rc"
check "sync by a key A does not trust exits non-zero (got $rc)" test "$rc" -ne 0
check "the sync error says the key is untrusted" grep -qi "untrusted" "$TMP/sync1.err"
check "the sync error says to run trust add" grep -q "trust add" "$TMP/sync1.err"
check "the sync error names B's key" grep -q "$IB" "$TMP/sync1.err"
# The reason A sends carries the exact command to run on A; B's operator
# must be able to copy it whole.
check "the sync error gives the whole command 'ferry trust add <B's key>'" \
	grep -q "ferry trust add $IB" "$TMP/sync1.err"
check_within 10 "a's log records the refusal of b" grep -q "untrusted key $IB" "$TMP/a.serve.log"
check "nothing changed on A" test "$(snapshot a)" = "$before_a"
check "nothing changed on B" test "$(snapshot b)" = "$before_b"
check "a's record of b does not hold b's data" \
	test "$(f a ls clinic-7 patients --prefix pb | wc -l)" -eq 0
if [ "$failed" -ne 0 ]; then
	sed 's/^/  sync stderr: /' "$TMP/sync1.err"
fi

# --- 2. B trusts nobody -----------------------------------------------------
f a trust add "$IB" --name b --read clinic-7 --write clinic-7 >/dev/null
f b trust rm a >/dev/null
check "b's trust list is empty" test -z "$(f b trust ls --json)"
before_a=$(snapshot a)
before_b=$(snapshot b)
rc=0
f b sync --timeout 20 "${URL[a]}" >"$TMP/sync2.out" 2>"$TMP/sync2.err" || rc=$?
log "sync from b, which trusts nobody: exit $rc"
check "sync from a node that trusts nobody exits non-zero (got $rc)" test "$rc" -ne 0
check "the error says A's key is untrusted" grep -qi "untrusted key $IA" "$TMP/sync2.err"
check "the error says to run trust add" grep -q "trust add" "$TMP/sync2.err"
check "the error gives the whole command 'ferry trust add <A's key>'" \
	grep -q "ferry trust add $IA" "$TMP/sync2.err"
check "nothing changed on A" test "$(snapshot a)" = "$before_a"
check "nothing changed on B" test "$(snapshot b)" = "$before_b"
# A trusts B, so A's log shows B connecting and being dropped by B.
check_within 10 "a's log shows b closing with 4001" grep -q "4001" "$TMP/a.serve.log"
if [ "$failed" -ne 0 ]; then
	sed 's/^/  sync stderr: /' "$TMP/sync2.err"
fi

# --- 3. serving nodes: refused, then trusted while running -------------------
f a trust rm b >/dev/null
f b trust add "$IA" --name a --read clinic-7 --write clinic-7 >/dev/null
before_a=$(snapshot a)
before_b=$(snapshot b)
serve_start b --no-listen
f b peer add "${URL[a]}" >/dev/null
check_within 20 "b's status shows a's refusal (4001 / untrusted)" \
	peer_q b a '"untrusted" in p["last_error"] and not p["online"]'
check "b's status names the failure" peer_q b a '"4001" in p["last_error"]'
n_refusals=$(grep -c "untrusted key $IB" "$TMP/a.serve.log" || true)
check "a logged the serving b's attempt too (refusals logged: $n_refusals)" test "$n_refusals" -ge 2
check "still nothing changed on A" test "$(snapshot a)" = "$before_a"
check "still nothing changed on B" test "$(snapshot b)" = "$before_b"
# Trusting B on the running A needs no restart; B keeps dialing.
f a trust add "$IB" --name b --read clinic-7 --write clinic-7 >/dev/null
check_within 45 "a and b converge once a trusts b" digests_equal clinic-7 a b
check "b got A's patients" test "$(f b ls clinic-7 patients --prefix pa | wc -l)" -eq 3
check "a got B's patients" test "$(f a ls clinic-7 patients --prefix pb | wc -l)" -eq 3
check_within 10 "b's status shows a online" peer_q b a 'p["online"] and p["last_error"] == ""'
serve_stop b

# --- 4. positive control: one-shot sync with both entries -------------------
f a put clinic-7 invoices i1 total=120 >/dev/null
rc=0
f b sync --timeout 20 "${URL[a]}" >"$TMP/sync4.out" 2>"$TMP/sync4.err" || rc=$?
check "sync between nodes that trust each other succeeds (exit $rc)" test "$rc" -eq 0
check "...and converges" digests_equal "" a b
check "verify passes on A" f a verify
check "verify passes on B" f b verify

finish
