#!/usr/bin/env bash
# cli_adapter_test.sh — `ferry adapter status/dlq/reload/check` end to end,
# in a fresh temporary directory. adapter_fixture stands in for the
# serving process: it writes the status, dead-letter and control entries
# `ferry serve --adapters` would, reads entries back, and answers one
# reload request, so the command is tested without any HTTP system.
#
# usage: cli_adapter_test.sh PATH_TO_FERRY PATH_TO_ADAPTER_FIXTURE
set -u

FERRY=${1:?usage: cli_adapter_test.sh PATH_TO_FERRY PATH_TO_ADAPTER_FIXTURE}
FIXTURE=${2:?usage: cli_adapter_test.sh PATH_TO_FERRY PATH_TO_ADAPTER_FIXTURE}
. "$(dirname "$0")/lib.sh"

A=$TMP/a
fa() { "$FERRY" --dir "$A" "$@"; }
fx() { "$FIXTURE" "$A" "$@"; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# --- usage -----------------------------------------------------------------
ok "--help" "$FERRY" --help
expect "--help lists adapter" grep_out "^  adapter "
ok "adapter --help" "$FERRY" adapter --help
expect "adapter --help shows dlq retry" grep_out "ferry adapter dlq retry \\[NAME\\] ID"
expect "adapter --help documents --wait-ms" grep_out "wait-ms"
exits "adapter before init" 2 fa adapter status
expect "adapter before init says init" grep_err "ferry init"

ok "init" fa init
exits "adapter without subcommand" 1 fa adapter
expect "subcommands named" grep_err "status, dlq, reload or check"
exits "adapter unknown subcommand" 1 fa adapter frob
expect "unknown subcommand named" grep_err "unknown subcommand 'frob'"
exits "dlq without subcommand" 1 fa adapter dlq
exits "bad adapter name" 1 fa adapter status 'No Such'
expect "bad name explained" grep_err "not an adapter name"
exits "--wait-ms outside reload" 1 fa adapter status --wait-ms 10
exits "retry without ID" 1 fa adapter dlq retry pms
exits "retry with a bad ID" 1 fa adapter dlq retry pms abc

# --- status ----------------------------------------------------------------
ok "status without adapters" fa adapter status
expect "none running explained" grep_out "no adapters are running"
expect "how to start them" grep_out "ferry serve --adapters FILE"
ok "status --json without adapters" fa --json adapter status
expect "empty JSON array" py "d == []" "$TMP/out"
exits "status of an unknown adapter" 2 fa adapter status pms
expect "unknown adapter named" grep_err "no adapter named pms"

ok "fixture: running" fx running /etc/ferry/adapters.json
ok "fixture: pms status" fx status pms
ok "fixture: crm status, stale" fx status crm '{"age_ms": 60000, "auth": {"type": "bearer"}, "pulls": [], "dead_letters": 0}'
ok "status" fa adapter status
expect "config path at the top" bash -c "head -1 '$TMP/out' | grep -q '^configuration  /etc/ferry/adapters.json (loaded [0-9]*s ago)'"
expect "pms running" grep_out "^pms  running$"
expect "crm stale" grep_out "^crm  stale: last update 1m ago"
expect "cursor" grep_out "^  cursor        1234$"
expect "lag" grep_out "^  lag           3 changes, 1.5 s$"
expect "dead letters point at dlq ls" grep_out "dead letters  2 (ferry adapter dlq ls pms)"
expect "in flight" grep_out "^  in flight     1$"
expect "last error with its age" grep_out "last error    POST /owners: HTTP 500 Internal Server Error (1[0-9]s ago)"
expect "oauth2 token validity" grep_out "auth          oauth2: token valid for 3[0-9]* s"
expect "pull line" grep_out "pull doctors  last run 1m ago: 120 items, 3 written, 0 deleted"
ok "status NAME" fa adapter status crm
expect "only crm shown" bash -c "grep -q '^crm ' '$TMP/out' && ! grep -q '^pms ' '$TMP/out'"
ok "status --json" fa --json adapter status
expect "status --json holds both" py "[a['name'] for a in d] == ['crm', 'pms']" "$TMP/out"
expect "status --json stale flags" py "d[0]['stale'] is True and d[1]['stale'] is False" "$TMP/out"
expect "status --json raw members" py "d[1]['cursor'] == 1234 and d[1]['auth']['type'] == 'oauth2'" "$TMP/out"
exits "status of an unknown adapter lists the known" 2 fa adapter status nope
expect "known adapters listed" grep_err "crm, pms"

ok "fixture: a refused reload" fx running /etc/ferry/adapters.json '{"error": "adapters.json:3:5: end of file expected"}'
ok "status shows the reload error" fa adapter status
expect "reload error shown" grep_out "^reload error   adapters.json:3:5: end of file expected"

# --- dlq -------------------------------------------------------------------
ok "dlq ls empty" fa adapter dlq ls
expect "no dead letters" grep_out "^no dead letters$"
ok "fixture: dead letter 5" fx dlq pms 5
ok "fixture: dead letter 9 behind 5" fx dlq pms 9 '{"state": "blocked", "blocked_by": 5, "op": "delete", "error": "", "attempts": 0}'
ok "fixture: dead letter 7 of another record" fx dlq pms 7 '{"key": "o-2", "error": "template: {phone} is absent and this is a long error message that goes on and on to be cut", "response": null}'
ok "fixture: crm dead letter" fx dlq crm 3 '{"collection": "contacts", "key": "c-1"}'
ok "dlq ls" fa adapter dlq ls
expect "dlq header" grep_out "^ID  ADAPTER  RECORD  *OP      STATE    ATTEMPTS  HTTP  AGE      ERROR$"
expect "four dead letters" test "$(wc -l <"$TMP/out")" -eq 5
expect "failed entry row" grep_out "^5   pms      clinic-7/owners/o-1  *put     failed   1         422   3[0-9]s ago  HTTP 422: phone is not a"
expect "blocked entry row" grep_out "^9   pms      clinic-7/owners/o-1  *delete  blocked  0         422   3[0-9]s ago  waits behind 5$"
expect "crm entry listed" grep_out "^3   crm      clinic-7/contacts/c-1"
expect "long errors cut" test "$(grep -c '\.\.\.$' "$TMP/out")" -eq 3
expect "rows fit about 100 columns" bash -c "awk 'length > 110 { exit 1 }' '$TMP/out'"
ok "dlq ls NAME" fa adapter dlq ls crm
expect "only crm's" test "$(wc -l <"$TMP/out")" -eq 2
ok "dlq ls --json" fa --json adapter dlq ls pms
expect "dlq --json full entries" pylines "[e['id'] for e in ls] == [5, 7, 9] and ls[0]['request']['method'] == 'POST' and ls[0]['adapter'] == 'pms' and ls[2]['blocked_by'] == 5" "$TMP/out"
ok "dlq ls of an adapter without any" fa adapter dlq ls other
expect "none for it" grep_out "no dead letters for adapter other"

exits "retry a blocked entry" 2 fa adapter dlq retry pms 9
expect "blocked retry names the blocker" grep_err "waits behind dead letter 5"
expect "blocked retry says what to run" grep_err "ferry adapter dlq retry pms 5"
ok "blocked entry unchanged" fx get adapter.pms.dlq 00000000000000000009
expect "no retry flag on 9" py "'retry' not in d" "$TMP/out"
exits "retry a missing id" 2 fa adapter dlq retry pms 6
expect "missing retry names it" grep_err "adapter pms has no dead letter 6"
expect "missing retry suggests ls" grep_err "ferry adapter dlq ls pms"
ok "retry" fa adapter dlq retry pms 5
expect "retry says what happens" grep_out "will send it again within a second, then the 1 waiting behind it"
expect "retry points at status" grep_out "ferry adapter status pms"
ok "retry sets the flag" fx get adapter.pms.dlq 00000000000000000005
expect "retry flag stored, entry kept" py "d['retry'] is True and d['id'] == 5 and d['state'] == 'failed'" "$TMP/out"
ok "retry --json" fa --json adapter dlq retry crm 3
expect "retry --json" py "d == {'adapter': 'crm', 'id': 3, 'retry': True, 'waiting': 0}" "$TMP/out"
ok "retry by ID alone: the one adapter that has it" fa --json adapter dlq retry 3
expect "found in crm" py "d['adapter'] == 'crm' and d['id'] == 3" "$TMP/out"
ok "fixture: crm also has a dead letter 5" fx dlq crm 5 '{"collection": "contacts", "key": "c-5"}'
exits "retry by ID alone when two adapters have it" 2 fa adapter dlq retry 5
expect "ambiguous ID: name the adapter" grep_err "name the adapter: ferry adapter dlq retry NAME 5"
exits "retry by ID alone when none has it" 2 fa adapter dlq retry 99
expect "unknown ID said" grep_err "no adapter has a dead letter 99"
ok "fixture: drop crm's 5 again" fa adapter dlq drop crm 5
ok "dlq ls shows the request" fa adapter dlq ls crm
expect "retry requested shown" grep_out "(retry requested)"

exits "drop a missing id" 2 fa adapter dlq drop pms 6
expect "missing drop names it" grep_err "adapter pms has no dead letter 6"
ok "drop" fa adapter dlq drop pms 5
expect "drop says successors go ahead" grep_out "the 1 later change of the same record waiting behind it now goes ahead"
exits "dropped entry is gone" 3 fx get adapter.pms.dlq 00000000000000000005
ok "drop --json" fa --json adapter dlq drop pms 7
expect "drop --json" py "d == {'adapter': 'pms', 'id': 7, 'dropped': True, 'released': 0}" "$TMP/out"
ok "dlq ls after drops" fa --json adapter dlq ls pms
expect "only 9 left" pylines "[e['id'] for e in ls] == [9]" "$TMP/out"

# --- reload ----------------------------------------------------------------
ok "fixture: running, no error" fx running /etc/ferry/adapters.json
exits "reload without a serving process" 2 fa adapter reload --wait-ms 300
expect "nobody answered" grep_err "no serving process answered the reload request within 0.3 s"
expect "says serve may not run" grep_err "ferry serve --adapters FILE"
ok "reload request stored" fx get adapter.control reload
expect "requested time stored" py "d['requested'] > 0" "$TMP/out"

since=$(now_ms)
"$FIXTURE" "$A" answer-reload "$since" &
answer=$!
ok "reload answered" fa adapter reload
expect "reloaded" grep_out "^reloaded /etc/adapters.json"
wait $answer
expect "fixture saw the request" test $? -eq 0

since=$(now_ms)
"$FIXTURE" "$A" answer-reload "$since" "adapters.json:2:1: unknown member adapterz" &
answer=$!
exits "reload refused" 2 fa adapter reload
expect "refusal shown" grep_err "did not reload: adapters.json:2:1: unknown member adapterz"
expect "refusal suggests check" grep_err "ferry adapter check /etc/adapters.json"
wait $answer
exits "the same failure again is no answer" 2 fa adapter reload --wait-ms 200
expect "last failure shown" grep_err "the last reload failed with: adapters.json:2:1"

# --- check -----------------------------------------------------------------
cat >"$TMP/adapters.json" <<'EOF'
{
  "adapters": [
    {
      "name": "pms",
      "base_url": "http://pms.example.org/api",
      "auth": {"type": "bearer", "secret": "pms_token"},
      "push": {
        "scopes": ["clinic-7", "shop/*"],
        "collections": {
          "owners": {
            "store_id": "pms_id",
            "create": {"method": "POST", "url": "/owners",
                       "body": {"name": "{full_name}"}, "id_from": "/id"},
            "update": {"method": "PATCH", "url": "/owners/{@id}",
                       "body": {"name": "{full_name}"}}
          }
        }
      },
      "pulls": [
        {"name": "doctors", "every_s": 300, "url": "/doctors",
         "scope": "head-office", "collection": "doctors",
         "id": "{/id}", "key": "doctor-{/id}",
         "fields": {"name": "{/name}"}}
      ],
      "webhook": {
        "auth": {"hmac": {"secret": "pms_hook"}},
        "event_id": "/event/id",
        "writes": [
          {"scope": "{/clinic}", "collection": "appointments",
           "key": "pms-{/appointment/id}",
           "fields": {"status": "{/appointment/status}"}}
        ]
      }
    }
  ]
}
EOF
exits "check with missing secrets" 2 fa adapter check "$TMP/adapters.json"
expect "missing secret with its member path" grep_err "adapters\[0\].auth.secret: secret pms_token is not stored"
expect "missing hmac secret with its member path" grep_err "adapters\[0\].webhook.auth.hmac.secret: secret pms_hook is not stored"
expect "the command to run" grep_err "ferry secret set pms_token"
ok "store pms_token" bash -c "echo tok-1 | '$FERRY' --dir '$A' secret set pms_token"
exits "check with one secret missing" 2 fa adapter check "$TMP/adapters.json"
expect "the stored one is not reported" bash -c "! grep -q 'pms_token is not stored' '$TMP/err'"
expect "the other still is" grep_err "pms_hook is not stored"
ok "store pms_hook" bash -c "echo hook-key | '$FERRY' --dir '$A' secret set pms_hook"
ok "check with every secret stored" fa adapter check "$TMP/adapters.json"
expect "check summary" grep_out "adapters.json: 1 adapter, every secret it names is stored"
expect "check shows push" grep_out "push     owners (scopes clinic-7,shop/\*)"
expect "check shows the pull" grep_out "pull     doctors every 300 s"
expect "check shows the webhook" grep_out "webhook  POST /hooks/pms (HMAC signature)"
expect "no secret value printed" bash -c "! grep -q 'tok-1\|hook-key' '$TMP/out' '$TMP/err'"
ok "check --json" fa --json adapter check "$TMP/adapters.json"
expect "check --json" py "d['ok'] is True and d['adapters'][0]['name'] == 'pms' and d['adapters'][0]['push']['collections'] == ['owners'] and d['adapters'][0]['webhook'] == 'hmac' and all(s['stored'] for s in d['secrets'])" "$TMP/out"

printf '{\n  "adapters": [\n    {"name": "pms",,}\n  ]\n}\n' >"$TMP/syntax.json"
exits "check a syntax error" 2 fa adapter check "$TMP/syntax.json"
expect "syntax error has line and column" grep_err "syntax.json:3:[0-9]*:"
sed 's/"every_s": 300/"every_s": 0/' "$TMP/adapters.json" >"$TMP/member.json"
exits "check a bad member" 2 fa adapter check "$TMP/member.json"
expect "bad member has its path" grep_err "adapters\[0\].pulls\[0\].every_s"
exits "check a missing file" 2 fa adapter check "$TMP/none.json"
expect "missing file named" grep_err "none.json"
expect "missing file hint" grep_err "check the path"

# Without FILE: the file the serving process runs.
ok "fixture: running the test file" fx running "$TMP/adapters.json"
ok "check without FILE uses the running one" fa adapter check
expect "running file checked" grep_out "^$TMP/adapters.json: 1 adapter"
ok "dlq ls takes names from the running file" fa --json adapter dlq ls
expect "pms and crm entries" pylines "sorted({e['adapter'] for e in ls}) == ['crm', 'pms']" "$TMP/out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
