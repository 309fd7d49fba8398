#!/bin/bash
# selftest.sh — the adapter tests' external systems, checked against real
# processes with curl before any ferry code relies on them: pms_server.js
# (json-server + idempotency + faults + OAuth2), its restarts (clean and
# SIGKILL), and the nginx sink. Installs json-server on first use
# (install.sh). Exits non-zero, naming the check, on the first failure.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-adapters-selftest.XXXXXX")
passed=0
on_exit() {
	local rc=$?
	set +e
	if [ "$rc" -ne 0 ] && [ -f "$T/db.json.log" ]; then
		echo "--- pms_server.js stderr (last 30 lines)"
		tail -n 30 "$T/db.json.log"
	fi
	adapters_cleanup
	rm -rf "$T"
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "FAIL: $*" >&2
	echo "adapters_infra: $passed passed, 1 failed" >&2
	exit 1
}
ok() {
	passed=$((passed + 1))
	echo "ok $passed - $*"
}
# expect DESC ACTUAL WANTED
expect() {
	[ "$2" = "$3" ] || die "$1: got '$2', wanted '$3'"
	ok "$1"
}

# req METHOD PATH [BODY [HEADER...]]: the status code; headers in $T/h,
# body in $T/b.
req() {
	local method=$1 path=$2 body=${3:-}
	shift 3 2>/dev/null || shift $#
	local args=(-sS -o "$T/b" -D "$T/h" -w '%{http_code}' --max-time 5 -X "$method")
	[ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data "$body")
	local h
	for h in "$@"; do args+=(-H "$h"); done
	curl "${args[@]}" "$PMS_URL$path" || true
}
# header NAME: its value in the last response ($T/h), without CR.
header() { sed -n "s/^$1: *//Ip" "$T/h" | tr -d '\r'; }
# js EXPR: evaluate EXPR on the JSON from stdin (as d); strings print bare.
js() {
	node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
		const v = eval(process.argv[1]);
		console.log(typeof v === "string" ? v : JSON.stringify(v));' "$1"
}
token() { # token FORM: POST /oauth/token, status; answer in $T/b
	curl -sS -o "$T/b" -w '%{http_code}' --max-time 5 --data "$1" "$PMS_URL/oauth/token" || true
}

# --- fixtures and start ------------------------------------------------------
cat >"$T/fixtures.json" <<'EOF'
{
  "owners": [{"id": 1, "name": "Ann", "phone": "555-0101"}],
  "patients": [{"id": 1, "name": "Rex", "ownerId": 1}],
  "appointments": [],
  "doctors": [{"id": 1, "name": "Grey"}, {"id": 2, "name": "House"},
              {"id": 3, "name": "Quinn"}, {"id": 4, "name": "Watson"},
              {"id": 5, "name": "Who"}]
}
EOF
port=$(free_port)
args=(--client-id cid --client-secret csecret --refresh-token rt0
	--token-ttl 2 --token-secret static-token)
rc=0
pms_start "$port" "$T/db.json" --fixtures "$T/fixtures.json" "${args[@]}" || rc=$?
[ "$rc" -eq 0 ] || die "pms_start failed (exit $rc)"
expect "pms listens on the port asked for" "$PMS_PORT" "$port"

expect "fixture owners" "$(pms_get /owners | js 'd.map(o => o.name).join()')" "Ann"
expect "GET /doctors?_page=2&_limit=2" "$(req GET '/doctors?_page=2&_limit=2')" 200
expect "page 2 holds doctors 3,4" "$(js 'd.map(o => o.id).join()' <"$T/b")" "3,4"
expect "X-Total-Count" "$(header X-Total-Count)" 5
header Link | grep -q 'rel="next"' || die "no rel=next in Link: $(header Link)"
ok "Link header has rel=next"

# --- idempotency -------------------------------------------------------------
expect "POST /owners with a key" "$(req POST /owners '{"name":"Bob"}' 'Idempotency-Key: k1')" 201
first=$(cat "$T/b")
[ -z "$(header Idempotent-Replayed)" ] || die "first answer marked as replayed"
expect "the same POST again" "$(req POST /owners '{"name":"Bob"}' 'Idempotency-Key: k1')" 201
expect "Idempotent-Replayed on the repeat" "$(header Idempotent-Replayed)" true
expect "the repeat's body is the first one's" "$(cat "$T/b")" "$first"
expect "one Bob in the database file" "$(js 'd.owners.filter(o => o.name === "Bob").length' <"$T/db.json")" 1
expect "k1 counted" "$(pms_state | js 'd.keys.k1.requests + "/" + d.keys.k1.replays + "/" + d.keys.k1.status')" "2/1/201"

# --- fail mode ---------------------------------------------------------------
pms_control '{"fail": {"status": 503, "count": 2}}' >/dev/null
expect "fail 1/2" "$(req POST /owners '{"name":"Cy"}' 'Idempotency-Key: k2')" 503
expect "fail 2/2" "$(req POST /owners '{"name":"Cy"}' 'Idempotency-Key: k2')" 503
expect "then the retry goes through" "$(req POST /owners '{"name":"Cy"}' 'Idempotency-Key: k2')" 201
expect "a 5xx is not remembered: k2 requests/replays" "$(pms_state | js 'd.keys.k2.requests + "/" + d.keys.k2.replays')" "3/0"
expect "fail mode has run out" "$(pms_state | js 'd.faults.fail')" null

# --- 422 matcher -------------------------------------------------------------
pms_control '{"status_for": {"match": {"path": "/owners", "body_field": "name", "equals": "Bad"}, "status": 422}}' >/dev/null
expect "POST name=Bad" "$(req POST /owners '{"name":"Bad"}')" 422
expect "POST name=Bad again (persistent)" "$(req POST /owners '{"name":"Bad"}')" 422
expect "PATCH /owners/1 name=Bad" "$(req PATCH /owners/1 '{"name":"Bad"}')" 422
expect "POST name=Good" "$(req POST /owners '{"name":"Good"}')" 201
pms_control '{"clear": true}' >/dev/null
expect "POST name=Bad after clear" "$(req POST /owners '{"name":"Bad"}')" 201

# --- 429 Retry-After ---------------------------------------------------------
pms_control '{"retry_after": {"seconds": 1, "count": 2}}' >/dev/null
expect "429 1/2" "$(req GET /owners)" 429
expect "Retry-After" "$(header Retry-After)" 1
expect "429 2/2" "$(req GET /owners)" 429
expect "then 200" "$(req GET /owners)" 200

# --- delay -------------------------------------------------------------------
# The delayed request times out at the client; its retry with the same key
# creates the record; the original, handled later, only replays it.
pms_control '{"delay_ms": 1500, "count": 1}' >/dev/null
t0=${EPOCHREALTIME/./}
rc=0
curl -sS -o /dev/null --max-time 0.5 -X POST -H 'Content-Type: application/json' \
	-H 'Idempotency-Key: k3' --data '{"name":"Slow"}' "$PMS_URL/owners" 2>/dev/null || rc=$?
expect "the delayed request times out (curl exit 28)" "$rc" 28
expect "its retry" "$(req POST /owners '{"name":"Slow"}' 'Idempotency-Key: k3')" 201
t1=${EPOCHREALTIME/./}
[ $(((t1 - t0) / 1000)) -lt 1400 ] || die "the retry waited for the delay"
ok "only the next request is delayed"
sleep 1.3
expect "one Slow owner after the delayed original ran" \
	"$(js 'd.owners.filter(o => o.name === "Slow").length' <"$T/db.json")" 1
expect "k3 requests/replays" "$(pms_state | js 'd.keys.k3.requests + "/" + d.keys.k3.replays')" "2/1"

# --- auth and the token endpoint --------------------------------------------
pms_control '{"auth": {"bearer_required": true}}' >/dev/null
expect "no token: 401" "$(req GET /owners)" 401
expect "WWW-Authenticate" "$(header WWW-Authenticate)" 'Bearer error="invalid_token"'
expect "static --token-secret" "$(req GET /owners '' 'Authorization: Bearer static-token')" 200
expect "client_credentials, wrong secret" "$(token 'grant_type=client_credentials&client_id=cid&client_secret=nope')" 401
expect "its error" "$(js d.error <"$T/b")" invalid_client
expect "client_credentials" "$(token 'grant_type=client_credentials&client_id=cid&client_secret=csecret')" 200
expect "token_type, expires_in, no refresh_token" "$(js 'd.token_type + " " + d.expires_in + " " + d.refresh_token' <"$T/b")" "Bearer 2 undefined"
at=$(js d.access_token <"$T/b")
expect "API with the issued token" "$(req GET /owners '' "Authorization: Bearer $at")" 200
expect "refresh_token grant" "$(token 'grant_type=refresh_token&refresh_token=rt0&client_id=cid')" 200
rt1=$(js d.refresh_token <"$T/b")
at=$(js d.access_token <"$T/b")
if [ -z "$rt1" ] || [ "$rt1" = rt0 ]; then die "refresh token not rotated: $rt1"; fi
ok "refresh token rotated"
expect "the old refresh token is refused" "$(token 'grant_type=refresh_token&refresh_token=rt0')" 400
expect "its error" "$(js d.error <"$T/b")" invalid_grant
expect "the rotated one works" "$(token "grant_type=refresh_token&refresh_token=$rt1")" 200
rt2=$(js d.refresh_token <"$T/b")
expect "issued per grant" "$(pms_state | js 'd.issued.client_credentials + "/" + d.issued.refresh_token')" "1/2"
expect "state has the current refresh token" "$(pms_state | js d.refresh_token)" "$rt2"
at=$(js d.access_token <"$T/b")
expect "fresh token" "$(req GET /owners '' "Authorization: Bearer $at")" 200
pms_control '{"expire_tokens": true}' >/dev/null
expect "after expire_tokens: 401" "$(req GET /owners '' "Authorization: Bearer $at")" 401
token 'grant_type=client_credentials&client_id=cid&client_secret=csecret' >/dev/null
at=$(js d.access_token <"$T/b")
expect "new token" "$(req GET /owners '' "Authorization: Bearer $at")" 200
sleep 2.1
expect "after expires_in (2 s): 401" "$(req GET /owners '' "Authorization: Bearer $at")" 401
expect "control bypasses auth" "$(curl -sS -o /dev/null -w '%{http_code}' "$PMS_URL/__control/state")" 200

# --- the log -----------------------------------------------------------------
pms_log >"$T/log.json"
expect "log: k1's two requests" "$(js 'd.filter(e => e.key === "k1").map(e => e.method + e.url + e.status + e.replayed).join()' <"$T/log.json")" \
	"POST/owners201false,POST/owners201true"
expect "log: injected faults" "$(js 'd.filter(e => e.key === "k2").map(e => e.status).join()' <"$T/log.json")" "503,503,201"
expect "log: times are epoch ms" "$(js 'd.every(e => e.time > 1.6e12)' <"$T/log.json")" true
expect "log: token requests" "$(js 'd.filter(e => e.url === "/oauth/token").length' <"$T/log.json")" 6

# --- clean restart -----------------------------------------------------------
owners=$(js 'd.owners.length' <"$T/db.json")
pms_stop || die "pms_server.js exited non-zero on SIGTERM"
ok "SIGTERM: clean exit"
pms_start "$port" "$T/db.json" "${args[@]}" || die "restart failed"
expect "after restart: auth still required" "$(pms_state | js d.bearer_required)" true
expect "after restart: the refresh token chain goes on" "$(token "grant_type=refresh_token&refresh_token=$rt2")" 200
pms_control '{"auth": {"bearer_required": false}}' >/dev/null
expect "after restart: owners kept" "$(pms_get /owners | js d.length)" "$owners"
expect "after restart: k1 replayed" "$(req POST /owners '{"name":"Bob"}' 'Idempotency-Key: k1')" 201
expect "with the header" "$(header Idempotent-Replayed)" true
expect "and the first body" "$(cat "$T/b")" "$first"
expect "still one Bob" "$(pms_get /owners | js 'd.filter(o => o.name === "Bob").length')" 1
expect "per-key counts survive" "$(pms_state | js 'd.keys.k1.requests')" 3

# --- SIGKILL restart ---------------------------------------------------------
expect "POST Kim" "$(req POST /owners '{"name":"Kim"}' 'Idempotency-Key: k9')" 201
expect "PATCH /patients/1" "$(req PATCH /patients/1 '{"name":"Rex II"}')" 200
pms_kill
pms_start "$port" "$T/db.json" "${args[@]}" || die "restart after SIGKILL failed"
expect "after SIGKILL: Kim kept" "$(pms_get '/owners?name=Kim' | js d.length)" 1
expect "after SIGKILL: the patch kept" "$(pms_get /patients/1 | js d.name)" "Rex II"
expect "after SIGKILL: k9 replayed" "$(req POST /owners '{"name":"Kim"}' 'Idempotency-Key: k9')/$(header Idempotent-Replayed)" "201/true"
pms_stop || die "pms_server.js exited non-zero on SIGTERM"

# --- nginx sink --------------------------------------------------------------
nginx_sink_start "$(free_port)" || die "nginx_sink_start failed"
curl -sv --max-time 5 -H 'Content-Type: application/json' --data '{"a":1}' "$NGINX_SINK_URL/owners" \
	--data '{"b":2}' "$NGINX_SINK_URL/x/y" >"$T/out" 2>"$T/err" || die "curl to the sink failed"
expect "two POSTs with bodies: 200 each" "$(grep -c '^< HTTP/1.1 200' "$T/err")" 2
expect "the bodies" "$(cat "$T/out")" '{"id":1}{"id":1}'
grep -q 'Re-using existing connection' "$T/err" || die "the sink closed the connection"
ok "the connection is kept alive"
grep -qi '^< Content-Type: application/json' "$T/err" || die "sink Content-Type: $(grep -i content-type "$T/err")"
ok "Content-Type application/json"
for m in PUT PATCH DELETE GET; do
	expect "$m on the sink" "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X "$m" --data 'x' "$NGINX_SINK_URL/a/$m")" 200
done
nginx_sink_stop
curl -s -o /dev/null --max-time 1 "$NGINX_SINK_URL/" && die "nginx still answers after nginx_sink_stop"
ok "nginx_sink_stop"

echo "adapters_infra: $passed passed, 0 failed"
