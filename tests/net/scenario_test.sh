#!/usr/bin/env bash
# scenario_test.sh — the three-node scenario of issue 3, with real `ferry
# serve` processes on 127.0.0.1: a head-office hub, a branch server and a
# laptop.
#
#   1. Connected: the hub publishes a price list (scope "pricelist") and some
#      head-office records (scope "clinic-7"); the branch dials the hub and
#      receives both.
#   2. Uplink down: the hub goes away. The branch and the laptop (offline
#      too) each write dozens of clients, patients, appointments and
#      invoices, some of them the same records (conflicts). The branch also
#      changes the price list, which it may not publish. The hub keeps
#      working on its own.
#   3. Peer to peer: the laptop dials the branch; the two converge.
#   4. Uplink back: the hub restarts on its address and the branch's node is
#      restarted, so it redials the hub at once. All three converge on
#      clinic-7; the hub holds the laptop's records, relayed by the branch,
#      under the laptop's own signatures (`ferry verify` re-checks them);
#      the branch's price-list change is refused by the hub and shown in the
#      status of both. Live changes then keep flowing through the branch.
#
# Trust, as a real deployment would set it up (docs/protocol.md §5). A
# node's write grant for a peer should match the read grant that peer gives
# it back, or the peer sends segments only to see them refused:
#
#   hub    trusts branch  read clinic-7,pricelist  write clinic-7
#   branch trusts hub     read clinic-7,pricelist  write clinic-7,pricelist
#   branch trusts laptop  read clinic-7,pricelist  write clinic-7
#   laptop trusts branch  read clinic-7            write clinic-7,pricelist
#
# The branch lets the hub read its price list (its operator offers
# everything it holds of the shared scopes); the hub decides what it
# accepts, and accepts only clinic-7 from the branch: that is the refusal.
# The laptop does not list the hub at all: under the default origin policy
# "vouched" it accepts the hub's chains because the branch delivering them
# may write clinic-7 and pricelist on the laptop. Likewise the hub accepts
# the laptop's clinic-7 chain, vouched for by the branch.
#
# usage: scenario_test.sh PATH_TO_FERRY
. "$(dirname "$0")/lib.sh"

N=${FERRY_SCENARIO_RECORDS:-24} # records per collection per writer

node_init hub
node_init branch
node_init laptop
IH=$(node_id hub)
IBR=$(node_id branch)
IL=$(node_id laptop)

f hub trust add "$IBR" --name branch --read clinic-7,pricelist --write clinic-7 >/dev/null
f branch trust add "$IH" --name hub --read clinic-7,pricelist --write clinic-7,pricelist >/dev/null
f branch trust add "$IL" --name laptop --read clinic-7,pricelist --write clinic-7 >/dev/null
f laptop trust add "$IBR" --name branch --read clinic-7 --write clinic-7,pricelist >/dev/null

# write_clinic NODE PREFIX: N records in each of the four collections.
write_clinic() {
	local n=$1 p=$2 i
	for i in $(seq -w 1 "$N"); do
		f "$n" put clinic-7 clients "$p-c$i" name="Client $p $i" phone="+359 2 555 $i"
		f "$n" put clinic-7 patients "$p-p$i" name="Pet $p $i" species=dog weight="$i.5" owner="$p-c$i"
		f "$n" put clinic-7 appointments "$p-a$i" patient="$p-p$i" at="2024-06-$i" vet="Dr. $p"
		f "$n" put clinic-7 invoices "$p-i$i" client="$p-c$i" total="$((10#$i * 10))" paid=false
	done
}

# --- 1. connected: the hub publishes, the branch receives -------------------
serve_start hub
HUB_PORT=${URL[hub]#ws://127.0.0.1:}
HUB_PORT=${HUB_PORT%/}
for i in $(seq -w 1 20); do
	f hub put pricelist prices "item-$i" name="Item $i" price="$((100 + 10#$i))"
done
for i in 1 2 3; do
	f hub put clinic-7 clients "hq-c$i" name="Head office client $i"
done
serve_start branch
BRANCH_PORT=${URL[branch]#ws://127.0.0.1:}
BRANCH_PORT=${BRANCH_PORT%/}
f branch peer add "${URL[hub]}" >/dev/null
log "hub at ${URL[hub]}, branch at ${URL[branch]}"
check_within 30 "the branch receives the price list" digests_equal pricelist hub branch
check_within 30 "the branch receives the hub's clinic-7 records" digests_equal clinic-7 hub branch
check_within 10 "the branch's status shows the hub online and caught up" \
	peer_q branch hub 'p["online"] and p["last_sync_ms"] > 0'
check_within 10 "nothing refused so far (hub side)" peer_q hub branch 'p["refused_in"] == 0'
PRICES_HUB_BEFORE=$(digest hub pricelist)

# --- 2. uplink down ----------------------------------------------------------
serve_stop hub
log "uplink down"
check_within 20 "the branch sees the hub offline" peer_q branch hub 'not p["online"]'

write_clinic branch br
write_clinic laptop lt
# The same records on both sides, different values: conflicts to resolve.
for i in 1 2 3 4 5; do
	f branch put clinic-7 patients "shared-p$i" name="Rex $i" weight="3$i" note="seen at branch"
	f laptop put clinic-7 patients "shared-p$i" name="Rex $i" weight="4$i" note="home visit"
	f laptop put clinic-7 invoices "shared-i$i" total="$((i * 7))" paid=true
	f branch put clinic-7 invoices "shared-i$i" total="$((i * 9))" paid=false
done
f laptop put clinic-7 clients shared-c1 name="Walk-in" phone=none
f branch put clinic-7 clients shared-c1 name="Walk-in (branch)"
f branch del clinic-7 clients shared-c1
f laptop put clinic-7 appointments shared-a1 at=2024-07-01 vet="Dr. Ivanova"
f branch put clinic-7 appointments shared-a1 at=2024-07-02
# The branch changes the price list: a local change it may not publish.
f branch put pricelist prices item-01 price=999
f branch put pricelist prices branch-special name="Branch special" price=5
# Head office keeps working while the branch is away.
f hub put pricelist prices item-03 price=150
f hub put clinic-7 invoices hq-i1 client=hq-c1 total=500
log "offline writes done: branch $(changes branch), laptop $(changes laptop), hub $(changes hub) changes"

# --- 3. the laptop syncs peer to peer with the branch ------------------------
serve_start laptop --no-listen
f laptop peer add "${URL[branch]}" >/dev/null
check_within 30 "laptop and branch converge on clinic-7" digests_equal clinic-7 branch laptop
check_within 30 "laptop and branch converge on pricelist" digests_equal pricelist branch laptop
check "the laptop has the hub's price list (relayed by the branch)" \
	test "$(f laptop get pricelist prices item-05)" = "$(f hub get pricelist prices item-05)"
check "conflicts were recorded on the branch or the laptop" \
	test "$(($(f branch conflicts clinic-7 --json | wc -l) + $(f laptop conflicts clinic-7 --json | wc -l)))" -gt 0
# Status records are written every 250 ms: poll.
check_within 10 "the laptop's status shows the branch online, nothing refused" \
	peer_q laptop branch 'p["online"] and p["refused_in"] == 0 and p["refused_out"] == 0'
check_within 10 "the branch's status shows the laptop online, nothing refused" \
	peer_q branch laptop 'p["online"] and p["refused_in"] == 0 and p["refused_out"] == 0'

# --- 4. uplink back ----------------------------------------------------------
serve_start hub --listen "127.0.0.1:$HUB_PORT"
# Restarting the branch's node makes it dial the hub at once (a running node
# would redial by itself, after a backoff of up to 30 s).
serve_stop branch
serve_start branch --listen "127.0.0.1:$BRANCH_PORT"
log "uplink back: hub and branch restarted"
check_within 60 "hub, branch and laptop converge on clinic-7" \
	digests_equal clinic-7 hub branch laptop
check_within 30 "the hub's status shows the branch's price-list write refused" \
	peer_q hub branch 'p["refused_in"] > 0 and "pricelist" in p["last_refusal"]'
check_within 30 "the branch's status shows its price-list write refused by the hub" \
	peer_q branch hub 'p["refused_out"] > 0 and "pricelist" in p["last_refusal"]'
check_within 30 "laptop and branch agree on pricelist after the reconnection" \
	digests_equal pricelist branch laptop

# Live, through the branch, both ways.
f hub put pricelist prices item-21 name="Item 21" price=121
f laptop put clinic-7 patients lt-late name="Late patient" species=cat
check_within 30 "a new hub price reaches the laptop through the branch" \
	f laptop get pricelist prices item-21
check_within 30 "a new laptop record reaches the hub through the branch" \
	f hub get clinic-7 patients lt-late
# Another price-list write on the open connection: a chain the peer refused
# is not offered again in the same session (net/session.c), so it never
# reaches the hub, and the healthy scope keeps syncing.
f branch put pricelist prices item-02 price=1
f branch put clinic-7 clients br-late name="Late client"
check_within 30 "a later branch record still reaches the hub" f hub get clinic-7 clients br-late
check "the branch's second price change is not on the hub" \
	output_has '"price": *102' f hub get pricelist prices item-02
check "the hub's status still shows the refusal" \
	peer_q hub branch 'p["refused_in"] > 0 and p["online"]'
check_within 30 "everyone converges on clinic-7 again" digests_equal clinic-7 hub branch laptop
check_within 30 "branch and laptop converge on pricelist again" digests_equal pricelist branch laptop
log "converged"

# --- what the rules imply -----------------------------------------------------
# clinic-7: everyone may read and write it, so all three hold the same state.
check "clinic-7 digests equal on hub, branch and laptop" digests_equal clinic-7 hub branch laptop
# pricelist: the hub refused the branch's price changes, while the laptop
# accepted them (its grant lets the branch write pricelist, and the laptop
# cannot tell a branch price change from a relayed hub one by scope). So
# branch == laptop, and the hub differs from both, holding only its own
# chain. "Equal digests for the scopes each may read" holds for clinic-7;
# for pricelist the difference is exactly the refused chain.
check "pricelist digests equal on branch and laptop" digests_equal pricelist branch laptop
check "the hub's pricelist differs from the branch's (refused change)" \
	test "$(digest hub pricelist)" != "$(digest branch pricelist)"
check "the hub holds no price-list chain of the branch (vector)" \
	test -z "$(vector_lines hub | awk -v o="$IBR" '$1 == o && $2 == "pricelist"')"
rc=0
f hub get pricelist prices branch-special >/dev/null 2>&1 || rc=$?
check "the branch's new price is not on the hub (get exit $rc, want 3)" test "$rc" -eq 3
check "the hub keeps its own price for item-01" \
	output_has '"price": *101' f hub get pricelist prices item-01
check "the laptop shows the branch's price for item-01" \
	output_has '"price": *999' f laptop get pricelist prices item-01
check "the hub's later price change reached the laptop" \
	output_has '"price": *150' f laptop get pricelist prices item-03
check "the hub's price list holds only the hub's own chain" \
	test "$(vector_lines hub | awk -v o="$IH" '$2 == "pricelist" && $1 != o' | wc -l)" -eq 0
check "the hub's price list changed since the outage (its own offline and live writes)" \
	test "$PRICES_HUB_BEFORE" != "$(digest hub pricelist)"
# What an operator sees in `ferry status` on each side.
# status_text_peer NODE PEER: the lines of NODE's `ferry status` about PEER.
status_text_peer() {
	f "$1" status | grep -A5 "^  $2 "
}
check "the hub's status text shows the refusal from the branch" \
	output_has 'refused +[1-9][0-9]* in, [0-9]+ out; last: .*pricelist' status_text_peer hub branch
check "the branch's status text shows its write refused by the hub" \
	output_has 'refused +[0-9]+ in, [1-9][0-9]* out; last: .*pricelist' status_text_peer branch hub

# The laptop's records on the hub, relayed by the branch, with the laptop's
# signatures.
f hub log --json --since 0 >"$TMP/hub.log.json"
f laptop log --json --since 0 >"$TMP/laptop.log.json"
lt_on_hub=$(python3 -c 'import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["origin"] == sys.argv[2]))' "$TMP/hub.log.json" "$IL")
lt_own=$(python3 -c 'import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["origin"] == sys.argv[2]))' "$TMP/laptop.log.json" "$IL")
log "laptop-origin changes: $lt_own on the laptop, $lt_on_hub on the hub"
check "the hub's log holds the laptop's changes ($lt_on_hub)" test "$lt_on_hub" -ge $((4 * N))
check "the hub holds every change the laptop wrote ($lt_on_hub of $lt_own)" test "$lt_on_hub" -eq "$lt_own"
check "the hub's copy of the laptop's chain ends at the laptop's head" \
	test "$(vector_lines hub | awk -v o="$IL" '$1 == o')" = "$(vector_lines laptop | awk -v o="$IL" '$1 == o')"
check "a laptop record on the hub carries the laptop as origin" \
	output_has "\"origin\": *\"$IL\"" f hub get --json clinic-7 patients lt-p01
f hub verify --json >"$TMP/hub.verify.json" 2>&1 || true
hub_chains=$(vector_lines hub | wc -l)
check "ferry verify passes on the hub, re-checking every chain's signatures ($hub_chains chains)" \
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d["ok"] and d["chains"] == int(sys.argv[2]) and d["signatures"] > 0 else 1)' "$TMP/hub.verify.json" "$hub_chains"
check "the hub holds 4 chains: hub x2, branch clinic-7, laptop clinic-7 ($hub_chains)" test "$hub_chains" -eq 4
check "ferry verify passes on the branch" f branch verify
check "ferry verify passes on the laptop" f laptop verify

# Conflicting records resolved the same way everywhere.
for k in shared-p1 shared-p5; do
	check "patients/$k equal on all three" \
		test "$(f hub get clinic-7 patients $k)" = "$(f laptop get clinic-7 patients $k)" -a \
		"$(f hub get clinic-7 patients $k)" = "$(f branch get clinic-7 patients $k)"
done
check "laptop and branch refuse nothing from each other at the end" \
	peer_q laptop branch 'p["refused_in"] == 0 and p["refused_out"] == 0'
check "the hub refuses nothing from the branch's clinic-7 (laptop's relay included)" \
	test "$(grep -c 'may not write scope clinic-7' "$TMP/hub.serve.log" || true)" -eq 0

finish
