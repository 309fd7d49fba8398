#!/usr/bin/env bash
# order_test.sh — a property of the push with several requests in flight
# ("concurrency": 8): whatever order families of records are written in,
# and with slow answers and 500s mixed in, every owner, patient and
# appointment reaches json-server exactly once, and every reference
# (patient -> owner, appointment -> patient) carries the id the PMS gave
# the record it refers to. Families are shuffled by a fixed seed (printed;
# FERRY_TEST_SEED repeats a run).
#
# usage: order_test.sh PATH_TO_FERRY
. "$(dirname "$0")/../net/lib.sh"
. "$(dirname "$0")/lib.sh"

PY=python3
SEED=${FERRY_TEST_SEED:-20261121}
FAMILIES=${FERRY_ORDER_FAMILIES:-20}
echo "order_test: seed $SEED, $FAMILIES families"

echo '{"owners": [], "patients": [], "appointments": []}' >"$TMP/fixtures.json"
pms_start 0 "$TMP/pms.json" --fixtures "$TMP/fixtures.json" || die "cannot start json-server"

cat >"$TMP/adapters.json" <<EOF
{"adapters": [{
  "name": "pms", "base_url": "$PMS_URL", "concurrency": 8,
  "retry": {"max_attempts": 100, "base_ms": 20, "max_ms": 200},
  "push": {"scopes": ["clinic-7"], "collections": {
    "owners": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/owners", "body": {"name": "{name}"}, "id_from": "/id"},
      "update": {"method": "PATCH", "url": "/owners/{@id}", "body": {"name": "{name}", "note": "{note}"}}},
    "patients": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/patients", "body": {"name": "{name}", "ownerId": "{owner->owners}"}, "id_from": "/id"}},
    "appointments": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/appointments", "body": {"name": "{name}", "patientId": "{patient->patients}"}, "id_from": "/id"}}
  }}
}]}
EOF
node_init hub

# The writes: each family in order (owner, its patients, their
# appointments, then an update of the owner), families interleaved at
# random.
"$PY" - "$SEED" "$FAMILIES" >"$TMP/writes.txt" <<'EOF'
import random, sys
rnd = random.Random(int(sys.argv[1]))
fams = []
for f in range(int(sys.argv[2])):
    ops = [f"owners o{f} name=Owner-{f}"]
    for p in range(2):
        ops.append(f"patients p{f}-{p} name=Pet-{f}-{p} owner=o{f}")
        ops.append(f"appointments a{f}-{p} name=Visit-{f}-{p} patient=p{f}-{p}")
    ops.append(f"owners o{f} note=updated")
    fams.append(ops)
while any(fams):
    fam = rnd.choice([x for x in fams if x])
    print(fam.pop(0))
EOF
pms_control '{"delay_ms": 15, "count": 40}' >/dev/null
pms_control '{"fail": {"status": 500, "count": 8}}' >/dev/null
serve_start hub --no-listen --adapters "$TMP/adapters.json"
while read -r coll key fields; do
	# shellcheck disable=SC2086 # NAME=VALUE words
	f hub put clinic-7 "$coll" "$key" $fields >/dev/null
done <"$TMP/writes.txt"

N=$FAMILIES
check_within 60 "every record delivered" bash -c '
d=$(curl -sS -H "X-Test-Observer: 1" "$0/db") && python3 -c "import json, sys
d = json.loads(sys.argv[1]); n = int(sys.argv[2])
sys.exit(0 if (len(d[\"owners\"]), len(d[\"patients\"]), len(d[\"appointments\"])) == (n, 2 * n, 2 * n) else 1)" "$d" "$1"' "$PMS_URL" "$N"
check "each exactly once, every reference the PMS id of its target, updates applied" \
	bash -c 'curl -sS -H "X-Test-Observer: 1" "$0/db" | python3 -c "import json, sys
d = json.load(sys.stdin)
owners = {o[\"name\"]: o for o in d[\"owners\"]}
pets = {p[\"name\"]: p for p in d[\"patients\"]}
visits = {a[\"name\"]: a for a in d[\"appointments\"]}
n = int(sys.argv[1])
bad = []
if (len(owners), len(pets), len(visits)) != (n, 2 * n, 2 * n): bad.append(\"duplicates\")
for f in range(n):
    o = owners.get(f\"Owner-{f}\")
    if not o or o.get(\"note\") != \"updated\": bad.append(f\"owner {f}: {o}\")
    for p in range(2):
        pet = pets.get(f\"Pet-{f}-{p}\"); v = visits.get(f\"Visit-{f}-{p}\")
        if not pet or not o or pet[\"ownerId\"] != o[\"id\"]: bad.append(f\"pet {f}-{p}: {pet}\")
        if not v or not pet or v[\"patientId\"] != pet[\"id\"]: bad.append(f\"visit {f}-{p}: {v}\")
print(\"\\n\".join(bad[:10]))
sys.exit(1 if bad else 0)" "$1"' "$PMS_URL" "$N"
check "several requests were in flight at once" bash -c '
curl -sS "$0/__control/state" | python3 -c "import json, sys
sys.exit(0 if json.load(sys.stdin)[\"max_in_flight\"] >= 4 else 1)"' "$PMS_URL"
check "nothing dead" bash -c '[ -z "$("$0" --dir "$1" adapter dlq ls pms --json)" ]' "$FERRY" "$TMP/hub"

serve_stop hub
pms_stop || check "json-server stopped cleanly" false
finish
