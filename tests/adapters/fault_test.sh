#!/usr/bin/env bash
# fault_test.sh — the push under faults, against json-server
# (tests/adapters/pms_server.js, which honours Idempotency-Key and injects
# faults on command): 500s for a while, the server down, answers slower
# than the timeout, 429 with Retry-After, a 422 for one record (a dead
# letter, retried once fixed, with a later change of the same record
# waiting behind it), and the hub SIGKILLed mid-push. Afterwards every
# change is on the server exactly once: no duplicates, none missing.
#
# usage: fault_test.sh PATH_TO_FERRY PATH_TO_ADAPTER_FIXTURE
. "$(dirname "$0")/../net/lib.sh"
. "$(dirname "$0")/lib.sh"

PY=python3
SEED=${FERRY_TEST_SEED:-6}
echo "fault_test: seed $SEED"
dlq_json() { f hub adapter dlq ls pms --json; }
dlq_q() { # dlq_q PY_EXPR on the dead letters `D`
	local body
	body=$(dlq_json) || return 1
	"$PY" -c 'import json, sys
D = [json.loads(line) for line in sys.argv[1].splitlines() if line.strip()]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$body" "$1"
}
# owners_exactly N: json-server holds N owners, each name once.
owners_exactly() {
	pms_q /owners "len(d) == $1 and len({o['name'] for o in d}) == $1"
}
# put_owners FROM TO: owners o$FROM..o$TO written on the hub.
put_owners() {
	local i
	for i in $(seq "$1" "$2"); do
		f hub put clinic-7 owners "o$i" name="Owner $i" phone="555-$i" >/dev/null
	done
}

echo '{"owners": []}' >"$TMP/fixtures.json"
PORT=$(free_port)
pms_start "$PORT" "$TMP/pms.json" --fixtures "$TMP/fixtures.json" || die "cannot start json-server"

cat >"$TMP/adapters.json" <<EOF
{"adapters": [{
  "name": "pms", "base_url": "$PMS_URL", "timeout_ms": 500,
  "retry": {"max_attempts": 1000, "base_ms": 50, "max_ms": 400},
  "push": {"scopes": ["clinic-7"], "collections": {
    "owners": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/owners", "body": {"name": "{name}", "phone": "{phone}"}, "id_from": "/id"},
      "update": {"method": "PATCH", "url": "/owners/{@id}", "body": {"name": "{name}", "phone": "{phone}"}}}
  }}
}]}
EOF
node_init hub
serve_start hub --no-listen --adapters "$TMP/adapters.json"

# 500 for a while.
pms_control '{"fail": {"status": 500, "count": 6}}' >/dev/null
put_owners 1 10
check_within 20 "after six 500s, ten owners delivered once each" owners_exactly 10
check "the 500s were answered and retried" log_q 'sum(1 for e in L if e["status"] == 500) == 6'

# 429 with Retry-After: the next attempt waits at least that long.
pms_control '{"retry_after": {"seconds": 1, "count": 1}}' >/dev/null
put_owners 11 12
check_within 20 "after a 429, delivered" owners_exactly 12
check "the retry after the 429 waited for Retry-After (1 s)" log_q '
[b["time"] - a["time"] for a, b in zip(L, L[1:]) if a["status"] == 429][0] >= 950'

# Slower than the timeout (500 ms): the server may finish the first
# attempt, the retry carries the same key and is answered from its memory.
pms_control '{"delay_ms": 1200, "count": 2}' >/dev/null
put_owners 13 14
check_within 20 "after timeouts, delivered once each" owners_exactly 14

# Down: killed, changes keep coming, back on the same port and data.
pms_kill
put_owners 15 20
sleep 1
pms_start "$PORT" "$TMP/pms.json" || die "cannot restart json-server"
check_within 20 "after the server came back, delivered once each" owners_exactly 20

# A 422 for one record: a dead letter; other records go on; a later change
# of the same record waits behind it; retried once fixed.
pms_control '{"status_for": {"match": {"path": "/owners", "body_field": "name", "equals": "Bad"}, "status": 422}}' >/dev/null
f hub put clinic-7 owners bad name=Bad phone=000 >/dev/null
put_owners 21 22
check_within 20 "the records after the 422 are delivered" pms_q /owners 'len(d) == 22'
check_within 10 "the 422 is a dead letter with status and body" \
	dlq_q 'len(D) == 1 and D[0]["state"] == "failed" and D[0]["response"]["status"] == 422 and D[0]["key"] == "bad"'
f hub put clinic-7 owners bad phone=111 >/dev/null
put_owners 23 23
check_within 20 "an unrelated later record is not held up" pms_q /owners 'len(d) == 23'
check_within 10 "the later change of the same record waits behind it" \
	dlq_q 'len(D) == 2 and D[1]["state"] == "blocked" and D[1]["blocked_by"] == D[0]["id"]'
check_within 5 "status counts the dead letters" output_has 'dead letters +2' f hub adapter status pms
BAD=$(dlq_json | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["id"])')
pms_control '{"clear": true}' >/dev/null
check "dlq retry is accepted" f hub adapter dlq retry pms "$BAD"
check_within 20 "after the fix and the retry, the record is delivered" \
	pms_q /owners 'len(d) == 24 and [o for o in d if o["name"] == "Bad"][0]["phone"] == 111'
check_within 10 "the dead-letter list is empty" dlq_q 'len(D) == 0'

# A refusal the system stores under its idempotency key (json-server's own
# 404 for an owner someone deleted there): once the owner is back, the
# retry must be a new request — the old key would only replay the 404.
O1=$(pms_get '/owners?name=Owner%201' | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
curl -sS -f -X DELETE -H 'X-Test-Observer: 1' "$PMS_URL/owners/$O1" >/dev/null
f hub put clinic-7 owners o1 phone=999 >/dev/null
check_within 10 "the update of an owner deleted in the PMS is a 404 dead letter" \
	dlq_q 'len(D) == 1 and D[0]["response"]["status"] == 404 and D[0]["key"] == "o1"'
curl -sS -f -X POST -H 'X-Test-Observer: 1' -H 'Content-Type: application/json' \
	-d "{\"id\": $O1, \"name\": \"Owner 1\", \"phone\": 1}" "$PMS_URL/owners" >/dev/null
check "dlq retry of the 404" f hub adapter dlq retry pms "$(dlq_json | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["id"])')"
check_within 10 "with the owner back, the retry (a new key) goes through" pms_q "/owners/$O1" 'd["phone"] == 999'
check_within 10 "and the dead-letter list is empty again" dlq_q 'len(D) == 0'

# Killed mid-push: requests slowed down so the kill lands among them.
pms_control '{"delay_ms": 30, "count": 60}' >/dev/null
put_owners 100 179
wait_until 20 "some of the 80 are delivered" pms_q /owners 'len(d) >= 34'
serve_kill hub
sleep 0.$((SEED % 5))
serve_start hub --no-listen --adapters "$TMP/adapters.json"
check_within 30 "after SIGKILL and restart, every change delivered once" owners_exactly 104
check "one created record per idempotency key, over the whole run" \
	state_q 'sum(1 for k in S["keys"].values() if k["status"] == 201) == 104'
echo "fault_test: requests answered from the key memory: $(pms_state | "$PY" -c 'import json, sys
print(sum(k["replays"] for k in json.load(sys.stdin)["keys"].values()))')"
check "the hub's records all carry their PMS ids" bash -c '
[ "$("$0" --dir "$1" ls clinic-7 owners | while read -r k; do "$0" --dir "$1" get clinic-7 owners "$k"; done | grep -c pms_id)" -eq 104 ]' "$FERRY" "$TMP/hub"

# A damaged stored state (the adapter's memory of one record): its next
# change is parked with a clear reason instead of possibly creating the
# record twice; other records go on.
FIXTURE=${2:?usage: fault_test.sh FERRY ADAPTER_FIXTURE}
serve_stop hub
"$FIXTURE" "$TMP/hub" damage-state pms clinic-7 owners o2
serve_start hub --no-listen --adapters "$TMP/adapters.json"
f hub put clinic-7 owners o2 phone=222 >/dev/null
f hub put clinic-7 owners o3 phone=333 >/dev/null
check_within 10 "a record whose stored state is damaged is parked, saying so" \
	dlq_q 'len(D) == 1 and D[0]["key"] == "o2" and "damaged" in D[0]["error"]'
check_within 10 "other records go on" pms_q '/owners?name=Owner%203' 'd[0]["phone"] == 333'
check "the hub is still serving" serve_running hub

serve_stop hub
pms_stop || check "json-server stopped cleanly" false
finish
