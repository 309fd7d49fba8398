#!/usr/bin/env bash
# rogue_test.sh — a running `ferry serve` against a misbehaving peer
# (tests/net/rogue_peer.c), one misbehaviour per connection:
#
#   garbage   random bytes instead of HELLO            -> close 4002
#   text      a text WebSocket message                 -> close 4002
#   oversize  a message over max_frame after the handshake -> close 4006
#   forged    a BATCH whose signature was altered      -> close 4005, the
#             server's log and status name the batch, nothing applied
#   replay    the same encrypted frame twice           -> close 4004
#   slow      asks for everything (200,000 records, ~90 MB store), reads
#             but never ACKs: at most 4 batches in flight, and the
#             server's memory (VmRSS, sampled from /proc during the stall)
#             stays under its idle figure + 64 MiB
#   stall     the same, not even reading the socket (TCP back-pressure)
#
# After each: the server is still running and its digest is unchanged. At
# the end a well-behaved node syncs with it normally (`ferry sync`), so the
# server is not just alive but serving.
#
# usage: rogue_test.sh PATH_TO_FERRY PATH_TO_ROGUE_PEER PATH_TO_FILL_NODE
. "$(dirname "$0")/lib.sh"

ROGUE=${2:?usage: $0 FERRY ROGUE_PEER FILL_NODE}
FILL=${3:?usage: $0 FERRY ROGUE_PEER FILL_NODE}
case $ROGUE in /*) ;; *) ROGUE=$PWD/$ROGUE ;; esac
case $FILL in /*) ;; *) FILL=$PWD/$FILL ;; esac
RECORDS=${ROGUE_RECORDS:-200000}
STALL_S=${ROGUE_STALL_S:-6}
RSS_BOUND_KB=$((64 * 1024))
# Under AddressSanitizer freed memory sits in a quarantine (256 MB by
# default), so resident memory says nothing about the server's bounds: the
# memory checks are skipped for sanitizer builds (the rest still run).
SANITIZED=0
if grep -qa __asan_init "$FERRY"; then SANITIZED=1; fi

node_init srv
node_init rogue
node_init good
IS=$(node_id srv)
IR=$(node_id rogue)
IG=$(node_id good)

log "filling srv with $RECORDS records"
"$FILL" "$TMP/srv" "$RECORDS" 5000 bulk items
f srv put clinic-7 patients p1 name=Rex >/dev/null
# The rogue holds changes the server lacks (what `forged` sends), in a
# scope the server would accept from it: only the signature is wrong.
f rogue put clinic-7 patients forged1 name=FORGED-PAYLOAD >/dev/null
f rogue put clinic-7 patients forged2 name=ALSO-FORGED >/dev/null
f good put clinic-7 patients g1 name=Good >/dev/null

f srv trust add "$IR" --name rogue --read '*' --write '*' >/dev/null
f srv trust add "$IG" --name good --read '*' --write '*' >/dev/null
f good trust add "$IS" --name srv --read '*' --write '*' >/dev/null

serve_start srv
SRV_PID=${SERVE_PID[srv]}
URL_SRV=${URL[srv]}
log "srv serves at $URL_SRV (pid $SRV_PID), store $(status_q srv 'd["store_bytes"]') bytes"
BEFORE=$(digest srv)

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

# run_mode MODE [ARGS]: run the rogue, its output in $TMP/rogue.MODE.out.
run_mode() {
	local mode=$1
	shift
	log "rogue $mode"
	local rc=0
	timeout 60 "$ROGUE" "$mode" "$URL_SRV" "$TMP/rogue" "$@" \
		>"$TMP/rogue.$mode.out" 2>&1 || rc=$?
	return $rc
}

# show MODE: what the rogue reported (always in the test's output).
show() {
	sed 's/^/    /' "$TMP/rogue.$1.out"
}

server_unharmed() {
	local mode=$1
	check "$mode: ferry serve is still running" serve_running srv
	check "$mode: the server's digest is unchanged" test "$(digest srv)" = "$BEFORE"
}

# --- protocol violations ----------------------------------------------------
check "garbage: server closes 4002" run_mode garbage
show garbage
server_unharmed garbage

check "text: server closes 4002" run_mode text
show text
server_unharmed text

check "oversize: server closes 4006" run_mode oversize
show oversize
server_unharmed oversize

check "forged: server closes 4005" run_mode forged
show forged
server_unharmed forged
check "forged: the CLOSE reason names the rejected batch" \
	grep -q "CLOSE 4005: rejected batch 1" "$TMP/rogue.forged.out"
check "forged: the server does not hold the forged records" \
	test "$(f srv ls clinic-7 patients --prefix forged | wc -l)" -eq 0
check_within 10 "srv's log records the rejected batch" \
	grep -q "rejected batch 1: signature does not verify" "$TMP/srv.serve.log"
check_within 10 "srv's status for rogue shows the rejection" \
	peer_q srv rogue '"rejected batch 1" in p["last_error"]'

check "replay: server closes 4004" run_mode replay
show replay
server_unharmed replay

# --- a slow reader: memory must not grow with the store ----------------------
sleep 0.5
BASE_RSS=$(rss_kb "$SRV_PID")
BASE_ANON=$(anon_kb "$SRV_PID")
log "srv idle: VmRSS $BASE_RSS kB, RssAnon $BASE_ANON kB"

# slow_mode MODE: run the rogue in the background, sample the server's
# memory every 0.1 s while it stalls; sets MAX_RSS, MAX_ANON.
slow_mode() {
	local mode=$1 out="$TMP/rogue.$1.out"
	log "rogue $mode ($STALL_S s)"
	bg timeout 60 "$ROGUE" "$mode" "$URL_SRV" "$TMP/rogue" "$STALL_S" >"$out" 2>&1
	local pid=$BG_LAST
	MAX_RSS=0
	MAX_ANON=0
	SAMPLES=0
	while kill -0 "$pid" 2>/dev/null; do
		if grep -q STALL_BEGIN "$out" && ! grep -q STALL_END "$out"; then
			local r a
			r=$(rss_kb "$SRV_PID")
			a=$(anon_kb "$SRV_PID")
			[ "$r" -gt "$MAX_RSS" ] && MAX_RSS=$r
			[ "$a" -gt "$MAX_ANON" ] && MAX_ANON=$a
			SAMPLES=$((SAMPLES + 1))
		fi
		sleep 0.1
	done
	local rc=0
	wait "$pid" || rc=$?
	SUMMARY="$mode: $SAMPLES samples during the stall: max VmRSS $MAX_RSS kB (+$((MAX_RSS - BASE_RSS))), max RssAnon $MAX_ANON kB (+$((MAX_ANON - BASE_ANON)))"
	return $rc
}

for mode in slow stall; do
	check "$mode: window held, server stayed connected and went on after ACKs" slow_mode $mode
	show $mode
	log "$SUMMARY"
	check "$mode: memory sampled during the stall" test "$SAMPLES" -ge 10
	if [ "$SANITIZED" -eq 1 ]; then
		log "$mode: sanitizer build: memory bounds not checked"
	else
		check "$mode: server VmRSS stayed under idle + 64 MiB ($MAX_RSS <= $BASE_RSS + $RSS_BOUND_KB kB)" \
			test "$MAX_RSS" -le $((BASE_RSS + RSS_BOUND_KB))
		check "$mode: server heap (RssAnon) grew less than 32 MiB ($MAX_ANON - $BASE_ANON kB)" \
			test "$((MAX_ANON - BASE_ANON))" -le $((32 * 1024))
	fi
	server_unharmed $mode
done

# --- still serving ------------------------------------------------------------
log "a well-behaved node syncs"
check "good: ferry sync with the server succeeds" f good sync --timeout 60 "$URL_SRV"
check "good: received the server's records" \
	test "$(f good ls bulk items --limit 5 | wc -l)" -eq 5
check "good: the server received good's record" f srv get clinic-7 patients g1
check "good: digests are equal after the sync" digests_equal "" srv good
check "ferry serve is still running at the end" serve_running srv
serve_stop srv
check "srv's log has no crash or assertion" bash -c "! grep -qiE 'assert|segfault|sanitizer' '$TMP/srv.serve.log'"

finish
