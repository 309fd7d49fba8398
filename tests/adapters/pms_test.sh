#!/usr/bin/env bash
# pms_test.sh — issue 6's scenario against a real REST server nobody here
# wrote: json-server (tests/adapters/pms_server.js) playing the practice-
# management system, a branch and a hub running `ferry serve --adapters`.
#
#   1. The branch, offline, books an appointment for a new owner and pet.
#   2. The branch syncs to the hub; the hub pushes owner, patient and
#      appointment in that order, each referring to the ids the PMS gave
#      the previous one; the ids are written back and reach the branch.
#   3. Doctors are imported by a timed pull (two pages); a doctor renamed
#      and one removed in the PMS follow at the next round.
#   4. A status changed in the PMS comes back (pull); a status changed on
#      the branch is pushed; neither ping-pongs.
#   5. Configuration: a broken file stops `ferry serve` with the member
#      path; a broken reload keeps the running configuration and says why.
#
# Checks read json-server's own database file and request log.
# usage: pms_test.sh PATH_TO_FERRY
. "$(dirname "$0")/../net/lib.sh"
. "$(dirname "$0")/lib.sh"

PY=python3
rec_q() { # rec_q NODE SCOPE COLL KEY PY_EXPR: on the record `r`
	local body
	body=$(f "$1" get "$2" "$3" "$4" 2>/dev/null) || return 1
	"$PY" -c 'import json, sys
r = json.loads(sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$body" "$5"
}
adapter_q() { # adapter_q PY_EXPR: on the hub's `ferry adapter status --json` `a` (first adapter)
	local body
	body=$(f hub adapter status --json 2>/dev/null) || return 1
	"$PY" -c 'import json, sys
d = json.loads(sys.argv[1])
a = (d["adapters"] if isinstance(d, dict) else d)[0]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$body" "$1"
}
last_cursor() { f hub status --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["last_cursor"])'; }

cat >"$TMP/fixtures.json" <<'EOF'
{"owners": [], "patients": [], "appointments": [], "late_owners": [],
 "doctors": [{"id": 1, "name": "Dr Ivanova", "speciality": "surgery"},
             {"id": 2, "name": "Dr Petrov", "speciality": "therapy"},
             {"id": 3, "name": "Dr Sidorova", "speciality": "dentistry"}]}
EOF
pms_start 0 "$TMP/pms.json" --fixtures "$TMP/fixtures.json" || die "cannot start json-server"

cat >"$TMP/adapters.json" <<EOF
{"adapters": [{
  "name": "pms", "base_url": "$PMS_URL",
  "headers": {"X-Clinic-Group": "north", "X-Record": "{@collection}/{@key}"},
  "retry": {"max_attempts": 20, "base_ms": 50, "max_ms": 1000},
  "push": {"scopes": ["clinic-7"], "collections": {
    "owners": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/owners", "body": {"name": "{name}", "phone": "{phone}"}, "id_from": "/id"},
      "update": {"method": "PATCH", "url": "/owners/{@id}", "body": {"name": "{name}", "phone": "{phone}"}},
      "delete": {"method": "DELETE", "url": "/owners/{@id}"}},
    "patients": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/patients", "body": {"name": "{name}", "species": "{species}", "ownerId": "{owner->owners}"}, "id_from": "/id"},
      "update": {"method": "PATCH", "url": "/patients/{@id}", "body": {"name": "{name}", "ownerId": "{owner->owners}"}}},
    "appointments": {"store_id": "pms_id",
      "create": {"method": "POST", "url": "/appointments", "body": {"patientId": "{patient->patients}", "doctorId": "{doctor_id}", "at": "{at}", "status": "{status}"}, "id_from": "/id"},
      "update": {"method": "PATCH", "url": "/appointments/{@id}", "body": {"status": "{status}", "at": "{at}"}}}
  }},
  "pulls": [
    {"name": "doctors", "every_s": 1, "url": "/doctors",
     "page": {"param": "_page", "size_param": "_limit", "size": 2},
     "scope": "head-office", "collection": "doctors", "id": "{/id}", "key": "doctor-{/id}",
     "fields": {"name": "{/name}", "speciality": "{/speciality}"}, "delete_missing": true},
    {"name": "doctors-link", "every_s": 1, "url": "/doctors?_page=1&_limit=2", "next": {"link": true},
     "scope": "head-office", "collection": "doctors_link", "id": "{/id}", "key": "doctor-{/id}",
     "fields": {"name": "{/name}"}, "delete_missing": true},
    {"name": "doctors-url", "every_s": 1, "url": "/paged/doctors?limit=2", "items": "/data",
     "next": {"url": "/links/next"},
     "scope": "head-office", "collection": "doctors_url", "id": "{/id}", "key": "doctor-{/id}",
     "fields": {"name": "{/name}"}, "delete_missing": true},
    {"name": "doctors-cursor", "every_s": 1, "url": "/paged/doctors?limit=2", "items": "/data",
     "next": {"cursor": "/meta/next_cursor", "param": "cursor"},
     "scope": "head-office", "collection": "doctors_cursor", "id": "{/id}", "key": "doctor-{/id}",
     "fields": {"name": "{/name}"}, "delete_missing": true},
    {"name": "appointment-status", "every_s": 1, "url": "/appointments",
     "scope": "clinic-7", "collection": "appointments", "id": "{/id}", "key": "pms-{/id}",
     "fields": {"status": "{/status}"}}]
}]}
EOF

node_init hub
node_init branch
f hub trust add "$(node_id branch)" --name branch --read clinic-7,head-office --write clinic-7 >/dev/null
f branch trust add "$(node_id hub)" --name hub --read clinic-7 --write clinic-7,head-office >/dev/null

# 1. Offline at the branch.
f branch put clinic-7 owners o1 name="Anna Petrova" phone="+359 2 555 01" >/dev/null
f branch put clinic-7 patients p1 name=Rex species=dog owner=o1 >/dev/null
f branch put clinic-7 appointments a1 patient=p1 doctor_id=1 at=2026-11-23T10:00 status=booked >/dev/null

# 5a. A broken file stops serve, naming the member.
cp "$TMP/adapters.json" "$TMP/broken.json"
sed -i 's/"method": "PATCH", "url": "\/owners/"method": "PATCH", "url": "\/owners\/{@idd}/' "$TMP/broken.json"
check "serve refuses a broken adapters file, naming the member" \
	output_has 'adapters\[0\]\.push\.collections\.owners\.update\.url' \
	bash -c '"$0" --dir "$1" serve --no-listen --adapters "$2" 2>&1; true' "$FERRY" "$TMP/hub" "$TMP/broken.json"

ADMIN=$(f hub apikey create --name ops --read '*' --write '' 2>/dev/null | grep -oE 'fk_[A-Za-z0-9_-]{43}' | head -n 1)
serve_start hub --adapters "$TMP/adapters.json" --http 127.0.0.1:0
HTTP=http://$("$PY" -c 'import json, sys
print(json.loads(open(sys.argv[1]).readline())["http"])' "$TMP/hub.serve.out")

# 2. Sync, then the pushes in order.
f branch sync "${URL[hub]}" --timeout 30 >/dev/null 2>&1 || die "branch cannot sync to the hub"
check_within 20 "the PMS holds the appointment" pms_q /appointments 'len(d) == 1'
check "one owner, one patient, one appointment in the PMS" \
	pms_q /db 'len(d["owners"]) == 1 and len(d["patients"]) == 1 and len(d["appointments"]) == 1'
check "the patient refers to the owner's PMS id, the appointment to the patient's" \
	pms_q /db 'd["patients"][0]["ownerId"] == d["owners"][0]["id"] and d["appointments"][0]["patientId"] == d["patients"][0]["id"] and d["appointments"][0]["doctorId"] == 1'
check "fields mapped: renamed, dropped (no 'owner' key sent), typed" \
	pms_q /patients/1 'd["name"] == "Rex" and d["species"] == "dog" and "owner" not in d'
check "pushed in arrival order: owner, patient, appointment" \
	log_q '[e["url"] for e in L if e["method"] == "POST"][:3] == ["/owners", "/patients", "/appointments"]'
check "configured headers: the constant one and the record's own" log_q '(
[(e["x"].get("x-clinic-group"), e["x"].get("x-record")) for e in L if e["method"] == "POST"][:3] ==
[("north", "owners/o1"), ("north", "patients/p1"), ("north", "appointments/a1")])'
check "pulls carry the constant header only" \
	log_q 'all(e["x"].get("x-clinic-group") == "north" and "x-record" not in e["x"] for e in L if e["method"] == "GET")'
check "every push carried an idempotency key" \
	log_q 'all(e["key"] and len(e["key"]) == 32 for e in L if e["method"] == "POST")'
check_within 10 "the hub wrote the PMS id back into the owner" rec_q hub clinic-7 owners o1 'r.get("pms_id") == 1'
check_within 10 "... and the appointment" rec_q hub clinic-7 appointments a1 'r.get("pms_id") == 1'
f branch sync "${URL[hub]}" --timeout 30 >/dev/null 2>&1 || die "second sync failed"
check "the write-back reached the branch" rec_q branch clinic-7 patients p1 'r.get("pms_id") == 1'
check "the write-back was not pushed again (3 POSTs, no PATCH)" \
	log_q 'len([e for e in L if e["method"] in ("POST", "PATCH")]) == 3'

# 3. Doctors by pull, two pages.
check_within 10 "three doctors imported" bash -c '[ "$("$0" --dir "$1" ls head-office doctors | wc -l)" -eq 3 ]' "$FERRY" "$TMP/hub"
check "doctor fields mapped" rec_q hub head-office doctors doctor-2 'r == {"name": "Dr Petrov", "speciality": "therapy"}'
check "the list was read page by page" log_q 'any("_page=2" in e["url"] for e in L)'
count_is() { # count_is COLLECTION N: head-office/COLLECTION holds N records
	[ "$("$FERRY" --dir "$TMP/hub" ls head-office "$1" | wc -l)" -eq "$2" ]
}
# Each first page holds two doctors: three means the next page was found
# (Link header, the body's next URL, the body's cursor).
for c in doctors_link doctors_url doctors_cursor; do
	check_within 10 "three doctors by $c paging" count_is "$c" 3
done
curl -sS -f -X PATCH -H 'Content-Type: application/json' -d '{"name": "Dr Ivanova-Smirnova"}' "$PMS_URL/doctors/1" >/dev/null
curl -sS -f -X DELETE "$PMS_URL/doctors/3" >/dev/null
check_within 10 "a doctor renamed in the PMS is renamed here" rec_q hub head-office doctors doctor-1 'r["name"] == "Dr Ivanova-Smirnova"'
check_within 10 "a doctor removed from the PMS list is deleted here" \
	bash -c '! "$0" --dir "$1" get head-office doctors doctor-3 >/dev/null 2>&1' "$FERRY" "$TMP/hub"
check "the doctor that stays is still there" rec_q hub head-office doctors doctor-2 'True'
for c in doctors_link doctors_url doctors_cursor; do
	check_within 10 "$c: the removal followed" count_is "$c" 2
	check_within 10 "$c: the rename followed" rec_q hub head-office "$c" doctor-1 'r["name"] == "Dr Ivanova-Smirnova"'
done

# 4. Two-way status.
curl -sS -f -X PATCH -H 'Content-Type: application/json' -d '{"status": "seen"}' "$PMS_URL/appointments/1" >/dev/null
check_within 10 "a status changed in the PMS comes back" rec_q hub clinic-7 appointments a1 'r["status"] == "seen"'
check "the pulled status updated the pushed record, not a new one" \
	bash -c '! "$0" --dir "$1" get clinic-7 appointments pms-1 >/dev/null 2>&1' "$FERRY" "$TMP/hub"
sleep 2.5 # two more pull rounds and the push of the pulled change
check "the pulled status was not pushed back" \
	log_q 'not [e for e in L if e["method"] == "PATCH" and e["key"]]'
c1=$(last_cursor)
sleep 2.2
check "unchanged pulls write nothing (the change feed stands still)" test "$(last_cursor)" = "$c1"

f branch sync "${URL[hub]}" --timeout 30 >/dev/null 2>&1 || die "third sync failed"
f branch put clinic-7 appointments a1 status=cancelled >/dev/null
f branch sync "${URL[hub]}" --timeout 30 >/dev/null 2>&1 || die "fourth sync failed"
check_within 10 "a status changed on the branch reaches the PMS" pms_q /appointments/1 'd["status"] == "cancelled"'
sleep 2.2
check "the PMS's echo of it is not written again" rec_q hub clinic-7 appointments a1 'r["status"] == "cancelled"'
check "exactly one PATCH from ferry for the appointment" \
	log_q 'len([e for e in L if e["method"] == "PATCH" and e["key"] and e["url"] == "/appointments/1"]) == 1'
# A change waiting to be pushed (the PMS refuses it with 503 for now) is
# not overwritten by the PMS's older value that the pull keeps seeing.
pms_control '{"status_for": {"match": {"path": "/appointments", "body_field": "status", "equals": "done"}, "status": 503}}' >/dev/null
f hub put clinic-7 appointments a1 status=done >/dev/null
wait_until 10 "the PMS refused the push at least once" log_q '[e for e in L if e["status"] == 503]'
sleep 2.2 # two pull rounds see "cancelled"
check "the pending local status survives the pulls" rec_q hub clinic-7 appointments a1 'r["status"] == "done"'
pms_control '{"clear": true}' >/dev/null
check_within 10 "once the PMS accepts it, the local status arrives" pms_q /appointments/1 'd["status"] == "done"'
check "... and stays" rec_q hub clinic-7 appointments a1 'r["status"] == "done"'
check_within 5 "status: caught up, nothing dead" adapter_q 'a["lag_changes"] == 0 and a["dead_letters"] == 0 and a["delivered"] >= 4'
check "/metrics shows the adapter: lag, dead letters, deliveries" bash -c '
m=$(curl -sS -f -H "X-API-Key: $0" "$1/metrics") &&
grep -q "^ferry_adapter_dead_letters{adapter=\"pms\"} 0.000$" <<<"$m" &&
grep -q "^ferry_adapter_lag_changes{adapter=\"pms\"} 0.000$" <<<"$m" &&
grep -qE "^ferry_adapter_delivered_total\{adapter=\"pms\"\} [1-9]" <<<"$m"' "$ADMIN" "$HTTP"

# 5b. A broken reload keeps the running configuration.
cp "$TMP/adapters.json" "$TMP/adapters.good"
cp "$TMP/broken.json" "$TMP/adapters.json"
kill -HUP "${SERVE_PID[hub]}"
check_within 10 "a refused reload is reported with the member path" \
	output_has 'reload refused.*owners\.update\.url' f hub adapter status
f branch put clinic-7 owners o1 phone="+359 2 555 99" >/dev/null
f branch sync "${URL[hub]}" --timeout 30 >/dev/null 2>&1 || die "fifth sync failed"
check_within 10 "the previous configuration still pushes" pms_q /owners/1 'd["phone"] == "+359 2 555 99"'
cp "$TMP/adapters.good" "$TMP/adapters.json"
check "ferry adapter reload applies a fixed file" f hub adapter reload
check "the reload error is gone" bash -c '! "$0" --dir "$1" adapter status | grep -q "reload refused"' "$FERRY" "$TMP/hub"

# A new adapter told to start now pushes what comes, not the history.
"$PY" - "$TMP/adapters.json" <<'PYEOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
base = cfg["adapters"][0]["base_url"]
cfg["adapters"].append({"name": "late", "base_url": base, "push": {
    "scopes": ["clinic-7"], "start": "now", "collections": {"owners": {
        "create": {"method": "POST", "url": "/late_owners", "body": {"name": "{name}"}}}}}})
json.dump(cfg, open(sys.argv[1], "w"))
PYEOF
check "reload with a new adapter" f hub adapter reload
f branch put clinic-7 owners o2 name="Boris" >/dev/null
f branch sync "${URL[hub]}" --timeout 30 >/dev/null 2>&1 || die "sixth sync failed"
check_within 10 "the new adapter pushes the new owner" pms_q /late_owners 'len(d) == 1 and d[0]["name"] == "Boris"'
sleep 0.5
check "... and not the owner written before it started" pms_q /late_owners 'len(d) == 1'

serve_stop hub
pms_stop || check "json-server stopped cleanly" false
finish
