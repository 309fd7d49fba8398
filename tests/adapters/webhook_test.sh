#!/usr/bin/env bash
# webhook_test.sh — POST /hooks/{adapter} (docs/adapters.md, "Webhooks")
# against one real `ferry serve --http --adapters FILE`, driven with curl:
# the accounting -> loyalty example of docs/adapters/accounting.md.
#
#   - HMAC mode: a correctly signed visit becomes the record
#     loyalty/visit-N in the branch's scope (points computed with multiply
#     and round), visible with `ferry get` and in the change log;
#   - replay: the same event id answers the first result with
#     "replayed": true and writes nothing, even with a different body;
#   - a later event for the same visit updates the same record, writing
#     only the fields that changed;
#   - refused, writing nothing: wrong or missing signature (401), malformed
#     JSON or not an object (400), missing event id or key pointer (400
#     naming it), unknown adapter or one without a webhook (404), the
#     secret not stored (500 naming `ferry secret set`);
#   - API-key mode: a key that may write the scope (200), none (401), a
#     key for another scope (403, also for a replay).
#
# "Writes nothing" is checked with the node's last cursor and change count
# (`ferry status --json`) and digest, before and after.
#
# usage: webhook_test.sh PATH_TO_FERRY
. "$(dirname "$0")/../net/lib.sh"

command -v curl >/dev/null || die "curl is not installed"
PY=$(python3 -c 'import sys; print(sys.executable)')
SECRET='s3cr3t-for-the-accounting-webhook'

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# q EXPR [ARGS...]: evaluate EXPR with `d` the last response's JSON body
# (None if not JSON), `st` its status, `raw` its text, `args` the ARGS;
# exits 0 iff truthy (prints the response otherwise).
cat >"$TMP/q.py" <<'EOF'
import json, sys
tmp, expr = sys.argv[1], sys.argv[2]
raw = open(tmp + "/resp.body", encoding="utf-8", errors="replace").read()
st = int(open(tmp + "/resp.status").read().strip() or 0)
try:
    d = json.loads(raw)
except ValueError:
    d = None
try:
    v = eval(expr, dict(d=d, st=st, raw=raw, json=json, args=sys.argv[3:]))
except Exception as e:
    v = None
    print("error evaluating %s: %r" % (expr, e))
if not v:
    print("status %d, body: %s" % (st, raw[:2000]))
sys.exit(0 if v else 1)
EOF
q() {
	"$PY" "$TMP/q.py" "$TMP" "$@"
}

# sign FILE [SECRET]: "sha256=" + hex HMAC-SHA256 of the file's bytes.
sign() {
	"$PY" -c 'import hashlib, hmac, sys
body = open(sys.argv[1], "rb").read()
print("sha256=" + hmac.new(sys.argv[2].encode(), body, hashlib.sha256).hexdigest())' "$1" "${2:-$SECRET}"
}

# post ADAPTER BODY [CURL_ARGS...]: POST BODY (JSON text, sent byte for
# byte) to /hooks/ADAPTER; status and body in $TMP/resp.status and .body.
post() {
	local adapter=$1 body=$2
	shift 2
	printf '%s' "$body" >"$TMP/req.body"
	: >"$TMP/resp.body"
	curl -sS --max-time 30 -o "$TMP/resp.body" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' --data-binary "@$TMP/req.body" \
		"$@" "$HTTP/hooks/$adapter" >"$TMP/resp.status" || echo 0 >"$TMP/resp.status"
	serve_running hub || die "the hub died answering POST /hooks/$adapter"
}

# signed ADAPTER BODY [CURL_ARGS...]: post with a correct X-Signature.
signed() {
	local adapter=$1 body=$2
	shift 2
	printf '%s' "$body" >"$TMP/sign.body"
	post "$adapter" "$body" -H "X-Signature: $(sign "$TMP/sign.body")" "$@"
}

# state: what "writes nothing" compares.
state() {
	echo "digest $(f hub digest)"
	status_json hub | "$PY" -c 'import json, sys
d = json.load(sys.stdin)
print("changes", d["changes"], "last_cursor", d["last_cursor"])'
}

last_cursor() {
	status_json hub | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["last_cursor"])'
}

# ok STATUS EXPR CMD...: CMD (post/signed) answers STATUS and EXPR holds.
ok() {
	local status=$1 expr=$2
	shift 2
	"$@"
	q "st == $status and ($expr)"
}

# refused STATUS CODE CMD...: CMD answers STATUS with error code CODE and a
# message, and the node is the same before and after.
refused() {
	local status=$1 code=$2 before after
	shift 2
	before=$(state)
	"$@"
	after=$(state)
	q "st == $status and d['error']['code'] == args[0] and len(d['error']['message']) > 0" "$code" || return 1
	if [ "$before" != "$after" ]; then
		echo "the node changed: before: $before / after: $after"
		return 1
	fi
}

# message_has TEXT...: the last error message contains every TEXT.
message_has() {
	q "all(a in d['error']['message'] for a in args)" "$@"
}

# record_q SCOPE KEY EXPR: EXPR on `r`, `ferry get SCOPE loyalty KEY`.
record_q() {
	f hub get "$1" loyalty "$2" | "$PY" -c 'import json, sys
r = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(r))
sys.exit(0 if v else 1)' "$3"
}

# changes_q EXPR LOG_ARGS...: EXPR on `cs`, the changes `ferry log --json
# LOG_ARGS` prints.
changes_q() {
	local expr=$1
	shift
	f hub log --json "$@" | "$PY" -c 'import json, sys
cs = [json.loads(l) for l in sys.stdin if l.strip()]
v = eval(sys.argv[1])
print(json.dumps(cs)[:2000])
sys.exit(0 if v else 1)' "$expr"
}

# make_key NAME READ WRITE: create an API key, print its token.
make_key() {
	local out
	out=$(f hub apikey create --name "$1" --read "$2" --write "$3" 2>/dev/null) ||
		die "ferry apikey create $1 failed"
	grep -oE 'fk_[A-Za-z0-9_-]{43}' <<<"$out" | head -n 1
}

# ---------------------------------------------------------------------------
# The hub
# ---------------------------------------------------------------------------

node_init hub
WRITER=$(make_key writer 'clinic-7' 'clinic-7')
OTHER=$(make_key other 'clinic-9' 'clinic-9')
[ -n "$WRITER" ] && [ -n "$OTHER" ] || die "no API key tokens"

# The writes of docs/adapters/accounting.md, once signed (accounting) and
# once behind API keys (acc_keyed); `outbound` has no webhook, `nosecret`
# names a secret that is never stored.
WRITES='[{"scope": "{/branch}", "collection": "loyalty",
          "key": "visit-{/visit_id}", "id": "{/visit_id}",
          "fields": {"client": "{/client_id}", "visit": "{/visit_id}",
                     "amount": "{/amount}",
                     "points": {"from": "/amount", "multiply": 0.1, "round": "floor"},
                     "currency": {"from": "/currency", "default": "EUR"}}}]'
cat >"$TMP/adapters.json" <<EOF
{"adapters": [
  {"name": "accounting",
   "webhook": {"auth": {"hmac": {"secret": "acc_hook", "header": "X-Signature",
                                 "prefix": "sha256=", "encoding": "hex"}},
               "event_id": "/event_id", "writes": $WRITES}},
  {"name": "acc_keyed",
   "webhook": {"auth": {"api_key": true}, "event_id": "/event_id",
               "writes": $WRITES}},
  {"name": "nosecret",
   "webhook": {"auth": {"hmac": {"secret": "never_stored"}},
               "event_id": "/event_id", "writes": $WRITES}},
  {"name": "outbound", "base_url": "http://127.0.0.1:9",
   "push": {"scopes": ["nowhere"],
            "collections": {"things": {"create": {"method": "POST", "url": "/things"}}}}}
]}
EOF
printf '%s\n' "$SECRET" | f hub secret set acc_hook >/dev/null || die "ferry secret set failed"

serve_start hub --no-listen --http 127.0.0.1:0 --adapters "$TMP/adapters.json"
HTTP=http://$("$PY" -c 'import json, sys
print(json.loads(open(sys.argv[1]).readline())["http"])' "$TMP/hub.serve.out")
[ "$HTTP" != "http://" ] || die "ferry serve printed no http address"
log "hub HTTP at $HTTP"

VISIT='{"event_id": "ev-1", "branch": "clinic-7", "visit_id": 991, "client_id": "c-42", "amount": 1234.5}'

# ---------------------------------------------------------------------------
# Refused before anything is written
# ---------------------------------------------------------------------------

check "hmac: wrong signature: 401" \
	refused 401 bad_signature post accounting "$VISIT" -H "X-Signature: sha256=$(printf '0%.0s' {1..64})"
check "hmac: signed with another secret: 401" \
	refused 401 bad_signature post accounting "$VISIT" -H "X-Signature: $(printf '%s' "$VISIT" >"$TMP/o.body" && sign "$TMP/o.body" other-secret)"
check "hmac: missing header: 401" refused 401 bad_signature post accounting "$VISIT"
check "hmac: 401 names the header" message_has X-Signature
check "hmac: without the prefix: 401" \
	refused 401 bad_signature post accounting "$VISIT" -H "X-Signature: $(printf '%s' "$VISIT" >"$TMP/o.body" && sign "$TMP/o.body" | cut -c8-)"
check "hmac: the signature is over the raw body" \
	refused 401 bad_signature post accounting "$VISIT " -H "X-Signature: $(printf '%s' "$VISIT" >"$TMP/o.body" && sign "$TMP/o.body")"
check "payload: malformed JSON: 400" refused 400 bad_json signed accounting '{"event_id": "ev-x",'
check "payload: not an object: 400" refused 400 bad_payload signed accounting '[1, 2]'
check "payload: no event id: 400" \
	refused 400 bad_payload signed accounting '{"branch": "clinic-7", "visit_id": 5, "amount": 1}'
check "payload: 400 names the event id pointer" message_has /event_id
check "payload: missing key pointer: 400" \
	refused 400 bad_payload signed accounting '{"event_id": "ev-k", "branch": "clinic-7", "amount": 1}'
check "payload: 400 names the write, member and pointer" message_has 'writes[0].key' '{/visit_id}'
check "payload: missing scope pointer: 400" \
	refused 400 bad_payload signed accounting '{"event_id": "ev-s", "visit_id": 5, "amount": 1}'
check "payload: 400 names the scope pointer" message_has 'writes[0].scope' '{/branch}'
check "payload: an amount that is not a number: 400" \
	refused 400 bad_payload signed accounting '{"event_id": "ev-a", "branch": "clinic-7", "visit_id": 5, "amount": "lots"}'
check "payload: 400 names the amount pointer" message_has '/amount'
check "payload: an object as event id: 400" \
	refused 400 bad_payload signed accounting '{"event_id": {"a": 1}, "branch": "clinic-7", "visit_id": 5, "amount": 1}'
check "routes: unknown adapter: 404" refused 404 not_found signed nosuch "$VISIT"
check "routes: 404 names the adapter" message_has nosuch
check "routes: adapter without a webhook: 404" refused 404 not_found signed outbound "$VISIT"
check "secret: not stored: 500 naming ferry secret set" \
	refused 500 secret_missing post nosecret "$VISIT" -H "X-Signature: $(printf '%s' "$VISIT" >"$TMP/o.body" && sign "$TMP/o.body" x | cut -c8-)"
check "secret: the message says how to store it" message_has 'ferry secret set never_stored'
check "routes: GET is not allowed" ok 405 'True' post accounting '' -X GET

# ---------------------------------------------------------------------------
# A signed visit
# ---------------------------------------------------------------------------

before=$(last_cursor)
check "visit: signed: 200" \
	ok 200 'd["event_id"] == "ev-1" and d["replayed"] is False and d["writes"] == [{"scope": "clinic-7", "collection": "loyalty", "key": "visit-991", "written": 5}]' \
	signed accounting "$VISIT"
check "visit: the record holds client, visit, amount and points" \
	record_q clinic-7 visit-991 'r == {"client": "c-42", "visit": 991, "amount": 1234.5, "points": 123, "currency": "EUR"}'
after=$(last_cursor)
check "visit: the write moved the change feed" test "$after" -gt "$before"
check "visit: the change log shows the write (the audit trail)" \
	changes_q 'len(cs) == 1 and cs[0]["scope"] == "clinic-7" and cs[0]["collection"] == "loyalty" and cs[0]["key"] == "visit-991" and cs[0]["fields"]["points"] == 123' --since "$before"

check "replay: same event: 200, replayed, the first result" \
	ok 200 'd["replayed"] is True and d["event_id"] == "ev-1" and d["writes"][0]["key"] == "visit-991" and d["writes"][0]["written"] == 5' \
	signed accounting "$VISIT"
check "replay: nothing written" test "$(last_cursor)" = "$after"
check "replay: even with another body, nothing written" \
	ok 200 'd["replayed"] is True' signed accounting '{"event_id": "ev-1", "branch": "clinic-7", "visit_id": 991, "amount": 99999}'
check "replay: the record is unchanged" record_q clinic-7 visit-991 'r["amount"] == 1234.5'
check "replay: still nothing written" test "$(last_cursor)" = "$after"

check "update: a corrected amount writes amount and points only" \
	ok 200 'd["replayed"] is False and d["writes"] == [{"scope": "clinic-7", "collection": "loyalty", "key": "visit-991", "written": 2}]' \
	signed accounting '{"event_id": "ev-2", "branch": "clinic-7", "visit_id": 991, "client_id": "c-42", "amount": 2000}'
check "update: the same record holds the new values" \
	record_q clinic-7 visit-991 'r["amount"] == 2000 and r["points"] == 200 and r["client"] == "c-42"'
check "update: only those two fields changed" \
	changes_q 'cs[-1]["key"] == "visit-991" and cs[-1]["fields"] == {"amount": 2000, "points": 200}' -n 1
after=$(last_cursor)
check "update: the same values again write nothing" \
	ok 200 'd["writes"][0]["written"] == 0' \
	signed accounting '{"event_id": "ev-3", "branch": "clinic-7", "visit_id": 991, "client_id": "c-42", "amount": 2000}'
check "update: no change in the log" test "$(last_cursor)" = "$after"
# docs/adapters.md: a field whose pointer is absent (and has no default)
# is not written; only scope, collection, key and id are required.
check "payload: no amount: recorded without amount and points" \
	ok 200 'd["writes"][0]["written"] == 3' \
	signed accounting '{"event_id": "ev-na", "branch": "clinic-7", "visit_id": 7, "client_id": "c-1"}'
check "payload: no amount: the record" \
	record_q clinic-7 visit-7 'r == {"client": "c-1", "visit": 7, "currency": "EUR"}'
check "integer event ids are accepted" \
	ok 200 'd["event_id"] == 77 and d["writes"][0]["key"] == "visit-5"' \
	signed accounting '{"event_id": 77, "branch": "clinic-7", "visit_id": 5, "amount": 10}'
LONG_ID=$(printf 'e%.0s' {1..300})
check "long event ids are accepted and replayed" \
	ok 200 'd["replayed"] is False' \
	signed accounting "{\"event_id\": \"$LONG_ID\", \"branch\": \"clinic-7\", \"visit_id\": 6, \"amount\": 10}"
check "long event ids replay" \
	ok 200 'd["replayed"] is True' \
	signed accounting "{\"event_id\": \"$LONG_ID\", \"branch\": \"clinic-7\", \"visit_id\": 6, \"amount\": 10}"

# The secret removed while serving: the next delivery is a 500, not a 401.
f hub secret rm acc_hook >/dev/null
check "secret: removed: 500" refused 500 secret_missing signed accounting '{"event_id": "ev-9", "branch": "clinic-7", "visit_id": 9, "amount": 1}'
printf '%s\n' "$SECRET" | f hub secret set acc_hook >/dev/null
check "secret: stored again: 200" ok 200 'd["replayed"] is False' \
	signed accounting '{"event_id": "ev-9", "branch": "clinic-7", "visit_id": 9, "amount": 1}'

# ---------------------------------------------------------------------------
# API-key mode
# ---------------------------------------------------------------------------

KEYED='{"event_id": "k-1", "branch": "clinic-7", "visit_id": 1001, "client_id": "c-7", "amount": 50}'
check "api_key: no key: 401" refused 401 unauthorized post acc_keyed "$KEYED"
check "api_key: a signature is not a key: 401" refused 401 unauthorized signed acc_keyed "$KEYED"
check "api_key: unknown key: 401" refused 401 unauthorized post acc_keyed "$KEYED" -H "X-API-Key: fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
check "api_key: a key for another scope: 403" refused 403 forbidden post acc_keyed "$KEYED" -H "X-API-Key: $OTHER"
check "api_key: 403 names the scope" message_has clinic-7
check "api_key: a key that may write the scope: 200" \
	ok 200 'd["writes"] == [{"scope": "clinic-7", "collection": "loyalty", "key": "visit-1001", "written": 5}]' \
	post acc_keyed "$KEYED" -H "X-API-Key: $WRITER"
check "api_key: Authorization: Bearer works too (replay)" \
	ok 200 'd["replayed"] is True' post acc_keyed "$KEYED" -H "Authorization: Bearer $WRITER"
check "api_key: the replay is refused to a key for another scope" \
	refused 403 forbidden post acc_keyed "$KEYED" -H "X-API-Key: $OTHER"
check "api_key: the record" record_q clinic-7 visit-1001 'r["points"] == 5 and r["client"] == "c-7"'
# The existing endpoints still authenticate as before.
curl -sS -o "$TMP/resp.body" -w '%{http_code}' "$HTTP/v1/changes?since=0" >"$TMP/resp.status"
check "other endpoints: /v1/changes without a key: 401" q 'st == 401 and d["error"]["code"] == "unauthorized"'
curl -sS -o "$TMP/resp.body" -w '%{http_code}' -H "X-API-Key: $WRITER" "$HTTP/v1/clinic-7/loyalty/visit-991" >"$TMP/resp.status"
check "other endpoints: a record with a key: 200" q 'st == 200 and d["fields"]["points"] == 200'

finish
