#!/usr/bin/env bash
# oauth_test.sh — OAuth2 against a real token endpoint: json-server
# (tests/adapters/pms_server.js) issues access tokens that live 3 s and
# rotates the refresh token on every use; its API refuses requests without
# a valid token.
#
#   - refresh-token grant: the adapter refreshes before expiry (no 401 while
#     pushing steadily for several lifetimes) and keeps the rotated token;
#   - a token revoked behind its back: one 401, one refresh, the same
#     request again (same idempotency key), delivered;
#   - the tokens are stored encrypted (ferry secret ls shows them, never
#     their values) and reused after a restart;
#   - client-credentials grant with a wrong client secret: the failure is
#     shown in `ferry adapter status`, pushes wait (no dead letters), and
#     go once the secret is fixed.
#
# usage: oauth_test.sh PATH_TO_FERRY
. "$(dirname "$0")/../net/lib.sh"
. "$(dirname "$0")/lib.sh"

PY=python3

echo '{"owners": [], "leads": [], "notes": []}' >"$TMP/fixtures.json"
pms_start 0 "$TMP/pms.json" --fixtures "$TMP/fixtures.json" \
	--client-id ferry-hub --client-secret S3cret --refresh-token R0 \
	--token-ttl 3 --bearer-required --token-secret StaticT0ken ||
	die "cannot start json-server"

cat >"$TMP/adapters.json" <<EOF
{"adapters": [
 {"name": "crm", "base_url": "$PMS_URL",
  "auth": {"type": "oauth2", "token_url": "$PMS_URL/oauth/token", "grant": "refresh_token",
           "client_id": "ferry-hub", "client_secret": "crm_client_secret", "refresh_token": "crm_refresh"},
  "retry": {"max_attempts": 50, "base_ms": 50, "max_ms": 300},
  "push": {"scopes": ["clinic-7"], "collections": {
    "owners": {"create": {"method": "POST", "url": "/owners", "body": {"name": "{name}"}, "id_from": "/id"}}}}},
 {"name": "crm2", "base_url": "$PMS_URL",
  "auth": {"type": "oauth2", "token_url": "$PMS_URL/oauth/token", "grant": "client_credentials",
           "client_id": "ferry-hub", "client_secret": "crm2_client_secret"},
  "retry": {"max_attempts": 50, "base_ms": 100, "max_ms": 300},
  "push": {"scopes": ["clinic-7"], "collections": {
    "leads": {"create": {"method": "POST", "url": "/leads", "body": {"name": "{name}"}, "id_from": "/id"}}}}},
 {"name": "static", "base_url": "$PMS_URL", "auth": {"type": "bearer", "secret": "static_token"},
  "push": {"scopes": ["clinic-7"], "collections": {
    "notes": {"create": {"method": "POST", "url": "/notes", "body": {"text": "{text}"}, "id_from": "/id"}}}}}
]}
EOF
node_init hub
printf 'S3cret\n' | f hub secret set crm_client_secret
printf 'R0\n' | f hub secret set crm_refresh
printf 'wrong\n' | f hub secret set crm2_client_secret
printf 'StaticT0ken\n' | f hub secret set static_token
serve_start hub --no-listen --adapters "$TMP/adapters.json"

# Pushing steadily for about four token lifetimes.
for i in $(seq 1 16); do
	f hub put clinic-7 owners "o$i" name="Owner $i" >/dev/null
	sleep 0.5
done
check_within 10 "sixteen owners delivered" pms_q /owners 'len(d) == 16'
check "tokens were refreshed along the way (refresh grant used at least 3 times)" \
	state_q 'S["issued"]["refresh_token"] >= 3'
check "refreshed before expiry: no request was refused with 401" \
	log_q 'not [e for e in L if e["status"] == 401 and e["url"] != "/oauth/token"]'
check "the tokens are kept encrypted, by name" output_has '^adapter\.crm\.token' f hub secret ls

# Revoked behind the adapter's back: 401, refresh, the same request again.
pms_control '{"expire_tokens": true}' >/dev/null
f hub put clinic-7 owners o17 name="Owner 17" >/dev/null
check_within 10 "after a forced 401 the owner is delivered" pms_q /owners 'len(d) == 17'
check "one 401, then the same request (same key) succeeded" log_q '
[e["status"] for e in L if e["key"] == [x for x in L if x["status"] == 401 and x["key"]][0]["key"]] == [401, 201]'
check "a refresh happened between them" log_q '
(lambda i: any(e["url"] == "/oauth/token" and e["status"] == 200 for e in L[i:]))([n for n, e in enumerate(L) if e["status"] == 401 and e["key"]][0])'

# The CRM's administrator re-issues the grant: the rotated chain is dead
# (invalid_grant), pushes wait, the error shows; the new refresh token,
# stored with ferry secret set, wins over the dead rotated one.
pms_control '{"reissue_refresh_token": "R1"}' >/dev/null
f hub put clinic-7 owners o17b name="Owner 17b" >/dev/null
check_within 10 "the refused refresh shows in status" \
	output_has 'invalid_grant' f hub adapter status crm
check "meanwhile the owner waits (not a dead letter)" \
	bash -c '[ -z "$("$0" --dir "$1" adapter dlq ls crm --json)" ]' "$FERRY" "$TMP/hub"
printf 'R1\n' | f hub secret set crm_refresh
check_within 10 "with the re-issued refresh token stored, the owner goes" pms_q /owners 'len(d) == 18'

# A restart reuses the stored token: no new token request right away.
issued=$(pms_state | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["issued"]["refresh_token"])')
serve_stop hub
serve_start hub --no-listen --adapters "$TMP/adapters.json"
f hub put clinic-7 owners o18 name="Owner 18" >/dev/null
check_within 10 "after a restart the owner is delivered" pms_q /owners 'len(d) == 19'

# Client credentials with a wrong secret: reported, pushes wait.
f hub put clinic-7 leads l1 name="Lead 1" >/dev/null
check_within 10 "the refresh failure shows in status" \
	output_has 'invalid_client|HTTP 401' f hub adapter status crm2
check "no lead was pushed" pms_q /leads 'len(d) == 0'
check "the waiting lead is not a dead letter" bash -c '[ -z "$("$0" --dir "$1" adapter dlq ls crm2 --json)" ]' "$FERRY" "$TMP/hub"
printf 'S3cret\n' | f hub secret set crm2_client_secret
check_within 10 "with the secret fixed, the lead goes" pms_q /leads 'len(d) == 1'
check "client-credentials tokens were issued" state_q 'S["issued"]["client_credentials"] >= 1'
auth_q() { # auth_q NAME PY_EXPR on the adapter's status `a`
	local body
	body=$(f hub adapter status "$1" --json) || return 1
	"$PY" -c 'import json, sys
d = json.loads(sys.argv[1])
a = (d if isinstance(d, list) else [d])[0]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$body" "$2"
}
check_within 5 "the auth error is gone from status" auth_q crm2 '"error" not in a["auth"]'
check "the token's expiry is shown" auth_q crm2 'a["auth"]["token_expires"] > 0' 
check "the stored token was reused after the restart (at most one more refresh)" \
	state_q "S['issued']['refresh_token'] <= $issued + 2"

# A static bearer token, and the system's key rotated: the request is
# refused, the secret read again (still the old one), refused again: a
# dead letter. With the new key stored, a retry reads it and goes through.
f hub put clinic-7 notes n1 text=first >/dev/null
check_within 10 "the static token is accepted" pms_q /notes 'len(d) == 1'
port=$PMS_PORT
pms_stop || check "json-server stopped cleanly" false
pms_start "$port" "$TMP/pms.json" --client-id ferry-hub --client-secret S3cret \
	--token-ttl 3 --bearer-required --token-secret N3wT0ken || die "cannot restart json-server"
f hub put clinic-7 notes n2 text=second >/dev/null
check_within 10 "refused twice with the old key, the note is parked" \
	output_has 'HTTP 401' f hub adapter dlq ls static
printf 'N3wT0ken\n' | f hub secret set static_token
ID=$(f hub adapter dlq ls static --json | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["id"])')
check "dlq retry after storing the new key" f hub adapter dlq retry static "$ID"
check_within 10 "the parked note goes with the new key, read after a 401" pms_q /notes 'len(d) == 2'

serve_stop hub
pms_stop || check "json-server stopped cleanly" false
finish
