#!/usr/bin/env bash
# cli_test.sh — the `ferry` command end to end: every command, its --json
# output, sync by bundle between nodes, and the error cases, each node in a
# fresh temporary directory.
#
# usage: cli_test.sh PATH_TO_FERRY
set -u

FERRY=${1:?usage: cli_test.sh PATH_TO_FERRY}
. "$(dirname "$0")/lib.sh"

is_json() {
	python3 -c 'import json, sys; json.load(sys.stdin)' <"$1"
}

is_json_lines() {
	python3 -c 'import json, sys
for line in sys.stdin: json.loads(line)' <"$1"
}

A=$TMP/a
B=$TMP/b
C=$TMP/c
fa() { "$FERRY" --dir "$A" "$@"; }
fb() { "$FERRY" --dir "$B" "$@"; }
fc() { "$FERRY" --dir "$C" "$@"; }

# --- usage -----------------------------------------------------------------
exits "no command is a usage error" 1 "$FERRY"
expect "no command prints usage" grep_err "usage: ferry"
exits "unknown command" 1 "$FERRY" frobnicate
expect "unknown command named" grep_err "unknown command 'frobnicate'"
ok "--help" "$FERRY" --help
expect "--help lists commands" grep_out "conflicts"
ok "--version" "$FERRY" --version
expect "--version prints it" grep_out "^ferry [0-9]"
ok "command --help" "$FERRY" put --help
expect "command --help shows usage" grep_out "usage: .*put SCOPE"
exits "bad option" 1 "$FERRY" --dir "$A" ls --bogus
exits "get before init" 2 fa get s c k
expect "get before init says init" grep_err "ferry init"

# --- init, id --------------------------------------------------------------
ok "init" fa init
expect "init says created" grep_out "created node in $A"
id_a=$(sed -n 's/^id //p' "$TMP/out")
expect "init prints a 64-hex id" test "${#id_a}" -eq 64
ok "init again" fa init
expect "init again says existing" grep_out "existing node"
ok "id" fa id
expect "id matches init" test "$(cat "$TMP/out")" = "$id_a"
ok "id --json" fa id --json
expect "id --json" py "d['id'] == '$id_a'" "$TMP/out"
ok "init --json (nested dir, FERRY_DIR)" env FERRY_DIR="$TMP/x/y/z" "$FERRY" init --json
expect "init --json parses" py "d['created'] and d['dir'].endswith('/x/y/z')" "$TMP/out"

# --- put, get, del ---------------------------------------------------------
ok "put JSON object" fa put clinic-7 patients p1 '{"name": "Rex", "age": 7, "weight": 31.5, "tags": ["dog", null], "owner": {"id": -4}}'
ok "put NAME=VALUE" fa put clinic-7 patients p2 name=Tom age=3 zip=01234 vip=true note='"true"' empty=
ok "get JSON-put record" fa get clinic-7 patients p1
expect "get returns the values with their types" py "d == {'name': 'Rex', 'age': 7, 'weight': 31.5, 'tags': ['dog', None], 'owner': {'id': -4}} and isinstance(d['weight'], float)" "$TMP/out"
ok "get NAME=VALUE record" fa get clinic-7 patients p2
expect "NAME=VALUE parses JSON, else keeps a string" py "d == {'name': 'Tom', 'age': 3, 'zip': '01234', 'vip': True, 'note': 'true', 'empty': ''}" "$TMP/out"
ok "put one field" fa put clinic-7 patients p1 age=8
ok "get after partial put" fa get clinic-7 patients p1
expect "other fields are kept" py "d['age'] == 8 and d['name'] == 'Rex'" "$TMP/out"
ok "get --json" fa get --json clinic-7 patients p1
expect "get --json has stamps" py "d['key'] == 'p1' and d['fields']['age'] == 8 and d['stamps']['age']['origin'] == '$id_a' and d['stamps']['age']['hlc'] > d['stamps']['name']['hlc']" "$TMP/out"
ok "put binary tagged value" fa put clinic-7 files f1 'blob={"$bin": "AAEC"}'
ok "get binary tagged value" fa get clinic-7 files f1
expect "bin comes back tagged" py "d == {'blob': {'\$bin': 'AAEC'}}" "$TMP/out"
exits "get missing key" 3 fa get clinic-7 patients nobody
expect "missing key message" grep_err "no such record"
exits "put without fields" 1 fa put clinic-7 patients p9
exits "put bad JSON" 1 fa put clinic-7 patients p9 '{"name": '
expect "bad JSON explained" grep_err "not valid JSON"
exits "put bad pair" 1 fa put clinic-7 patients p9 =x
exits "get missing args" 1 fa get clinic-7 patients
exits "put over a limit" 2 fa put clinic-7 patients "$(printf 'k%.0s' $(seq 300))" a=1
expect "limit failure explained" grep_err "^ferry: put .*: size limit exceeded"
ok "del" fa del clinic-7 patients p2
exits "get deleted" 3 fa get clinic-7 patients p2
ok "del --json" fa del --json clinic-7 patients p2
expect "del --json" py "d['op'] == 'delete' and d['cursor'] > 0" "$TMP/out"
ok "put --json" fa --json put clinic-7 patients p3 name=Ada
expect "put --json" py "d['op'] == 'put' and d['key'] == 'p3'" "$TMP/out"
ok "put p4" fa put clinic-7 patients p4 name=Bo
ok "put q1" fa put clinic-7 patients q1 name=Cy
ok "put other scope" fa put shared pricelist item1 price=12.5

# --- ls --------------------------------------------------------------------
ok "ls collection" fa ls clinic-7 patients
expect "ls lists live keys in order" test "$(tr '\n' ' ' <"$TMP/out")" = "p1 p3 p4 q1 "
ok "ls --prefix --limit" fa ls clinic-7 patients --prefix p --limit 2
expect "ls --prefix --limit" test "$(tr '\n' ' ' <"$TMP/out")" = "p1 p3 "
ok "ls --after" fa ls --after p3 clinic-7 patients
expect "ls --after" test "$(tr '\n' ' ' <"$TMP/out")" = "p4 q1 "
ok "ls --json" fa ls --json clinic-7 patients --limit 3
expect "ls --json lines are records" pylines "len(ls) == 3 and ls[0]['key'] == 'p1' and ls[0]['fields']['name'] == 'Rex'" "$TMP/out"
ok "ls collections" fa ls
expect "ls collections with counts" grep_out "^clinic-7/patients	4$"
expect "ls collections all scopes" grep_out "^shared/pricelist	1$"
ok "ls one scope" fa ls shared
expect "ls one scope only" test "$(wc -l <"$TMP/out")" -eq 1
ok "ls collections --json" fa ls --json
expect "ls collections --json" pylines "{'scope': 'clinic-7', 'collection': 'patients', 'records': 4} in ls" "$TMP/out"
exits "ls --prefix without collection" 1 fa ls --prefix p
exits "ls --limit not a number" 1 fa ls clinic-7 patients --limit x

# --- log -------------------------------------------------------------------
ok "log" fa log
expect "log shows changes" grep_out "clinic-7/patients/p1  put {\"age\":8}"
expect "log shows deletes" grep_out "clinic-7/patients/p2  delete"
ok "log -n 2" fa log -n 2
expect "log -n 2 shows 2" test "$(wc -l <"$TMP/out")" -eq 2
expect "log -n 2 shows the newest" grep_out "shared/pricelist/item1"
ok "log --since" fa log --since 1 -n 1
expect "log --since starts after the cursor" grep_out "^2 "
ok "log --json" fa log --json -n 100
expect "log --json lines" pylines "len(ls) >= 8 and ls[0]['cursor'] == 1 and ls[0]['op'] == 'put' and ls[0]['origin'] == '$id_a' and 'time' in ls[0] and any(c['op'] == 'delete' and 'fields' not in c for c in ls)" "$TMP/out"

# --- status, digest, verify ------------------------------------------------
ok "status" fa status
expect "status shows the id" grep_out "$id_a"
expect "status shows collections" grep_out "clinic-7/patients  4 records"
ok "status --json" fa --json status
expect "status --json" py "d['id'] == '$id_a' and d['changes'] >= 8 and d['last_cursor'] >= 8 and d['conflicts'] == 0 and len(d['vector']) == 2 and d['vector'][0]['origin'] == '$id_a' and d['store_bytes'] > 0" "$TMP/out"
ok "digest" fa digest
digest_a=$(cat "$TMP/out")
expect "digest is 64 hex" test "${#digest_a}" -eq 64
ok "digest --scope" fa digest --scope shared
expect "scope digest differs" test "$(cat "$TMP/out")" != "$digest_a"
ok "digest --json" fa digest --json --scope shared
expect "digest --json" py "d['scope'] == 'shared' and len(d['digest']) == 64" "$TMP/out"
ok "verify" fa verify
expect "verify reports" grep_out "^ok: "
ok "verify --json" fa verify --json
expect "verify --json" py "d['ok'] and d['changes'] >= 8" "$TMP/out"

# --- vector, export, import ------------------------------------------------
ok "init B" fb init
ok "vector of empty B" fb vector -o "$TMP/vec_b_empty"
ok "vector --json" fa vector --json
expect "vector --json" py "len(d) == 2 and d[0]['seq'] >= 1 and len(d[0]['head']) == 64" "$TMP/out"
ok "export all" fa export -o "$TMP/full.bundle"
expect "export summary on stderr" grep_err "exported [0-9]* changes in [0-9]* batches"
expect "bundle magic" test "$(head -c 8 "$TMP/full.bundle")" = "FERRYBN1"
ok "export to stdout" sh -c "\"$FERRY\" --dir \"$A\" export --since \"$TMP/vec_b_empty\" > \"$TMP/full2.bundle\""
expect "export via stdout and empty vector match" cmp -s "$TMP/full.bundle" "$TMP/full2.bundle"
ok "import into B" fb import "$TMP/full.bundle"
expect "import counts" grep_out "changes applied, 0 duplicate"
ok "digest B" fb digest
expect "digests equal after import" test "$(cat "$TMP/out")" = "$digest_a"
ok "re-import" fb import --json "$TMP/full.bundle"
expect "re-import is a no-op" py "d['ok'] and d['applied'] == 0 and d['duplicate'] > 0" "$TMP/out"
ok "digest B again" fb digest
expect "digest unchanged by re-import" test "$(cat "$TMP/out")" = "$digest_a"
ok "get on B" fb get clinic-7 patients p1
expect "B has A's record" py "d['name'] == 'Rex'" "$TMP/out"
ok "verify B" fb verify

ok "vector of B" fb vector -o "$TMP/vec_b"
ok "more writes on A" fa put clinic-7 patients p5 name=Di
ok "export --since" fa export --since "$TMP/vec_b" -o "$TMP/incr.bundle"
expect "incremental bundle is smaller" test "$(stat -c %s "$TMP/incr.bundle")" -lt "$(stat -c %s "$TMP/full.bundle")"
ok "export --json" fa export --json --since "$TMP/vec_b" -o "$TMP/incr2.bundle"
expect "export --json" py "d['changes'] == 1 and d['batches'] == 1" "$TMP/out"
ok "import incremental from stdin" sh -c "\"$FERRY\" --dir \"$B\" import - < \"$TMP/incr.bundle\""
expect "incremental applied 1" grep_out "1 changes applied"
expect "digests equal after incremental" test "$(fa digest)" = "$(fb digest)"
ok "export one scope" fa export --scope shared -o "$TMP/shared.bundle"
expect "scope bundle smaller" test "$(stat -c %s "$TMP/shared.bundle")" -lt "$(stat -c %s "$TMP/full.bundle")"
exits "export --json needs -o" 1 fa export --json
if command -v script >/dev/null; then
	# script(1) gives the command a terminal for stdout.
	exits "vector refuses a terminal" 2 script -qec "\"$FERRY\" --dir \"$A\" vector" /dev/null
	expect "terminal refusal explained" grep_out "not writing the binary version vector to a terminal"
	exits "export refuses a terminal" 2 script -qec "\"$FERRY\" --dir \"$A\" export" /dev/null
fi
exits "export --since missing file" 2 fa export --since "$TMP/nope" -o "$TMP/x.bundle"
expect "no half bundle left" test ! -e "$TMP/x.bundle"
exits "export --since garbage" 2 fa export --since "$TMP/full.bundle" -o "$TMP/x.bundle"
expect "garbage vector explained" grep_err "is not a version vector"

# --- conflicts -------------------------------------------------------------
ok "conflicts none" fa conflicts
expect "no conflicts yet" grep_out "^0 conflicts$"
fa vector -o "$TMP/vec_a2" && fb vector -o "$TMP/vec_b2"
ok "A writes the dose" fa put clinic-7 patients p1 dose=10
ok "B writes the dose" fb put clinic-7 patients p1 dose=20
ok "export A to B" fa export --since "$TMP/vec_b2" -o "$TMP/a2b.bundle"
ok "export B to A" fb export --since "$TMP/vec_a2" -o "$TMP/b2a.bundle"
ok "import B's into A" fa import "$TMP/b2a.bundle"
ok "import A's into B" fb import "$TMP/a2b.bundle"
expect "converged after exchange" test "$(fa digest)" = "$(fb digest)"
ok "same dose on both" fa get clinic-7 patients p1
dose=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dose"])' "$TMP/out")
expect "later write wins" test "$dose" = 20
ok "conflicts on A" fa conflicts clinic-7 patients p1
expect "conflict listed" grep_out "clinic-7/patients/p1  field dose"
expect "loser value shown" grep_out "value 10"
ok "conflicts --json on A" fa conflicts --json
expect "conflicts --json" pylines "len(ls) == 1 and ls[0]['field'] == 'dose' and ls[0]['loser']['value'] == 10 and ls[0]['loser']['origin'] == '$id_a' and not ls[0]['winner']['deleted']" "$TMP/out"
ok "conflicts filtered out" fa conflicts clinic-7 patients p3
expect "filter excludes" grep_out "^0 conflicts$"
ok "status counts conflicts" fa status --json
expect "status conflicts" py "d['conflicts'] == 1" "$TMP/out"

# --- damaged input ---------------------------------------------------------
ok "init C" fc init
ok "digest of empty C" fc digest
digest_c=$(cat "$TMP/out")
printf 'this is not a bundle at all' >"$TMP/garbage"
exits "import garbage" 2 fc import "$TMP/garbage"
expect "garbage explained" grep_err "not a ferry bundle"
expect "garbage has a hint" grep_err "^hint: "
size=$(stat -c %s "$TMP/full.bundle")
head -c $((size - 10)) "$TMP/full.bundle" >"$TMP/truncated.bundle"
exits "import truncated" 2 fc import "$TMP/truncated.bundle"
expect "truncation names the offset" grep_err "truncated at byte offset 8"
expect "digest unchanged after truncated import" test "$(fc digest)" = "$digest_c"
{ printf 'FERRYBN1'; printf '\377\377\377\377'; } >"$TMP/badlen.bundle"
exits "import bad length" 2 fc import "$TMP/badlen.bundle"
expect "bad length explained" grep_err "corrupt at byte offset 8"
cp "$TMP/full.bundle" "$TMP/flipped.bundle"
printf '\377' | dd of="$TMP/flipped.bundle" bs=1 seek=$((size - 40)) conv=notrunc status=none
exits "import corrupted batch" 2 fc import "$TMP/flipped.bundle"
expect "rejected batch named" grep_err "batch 1 at byte offset 8 rejected"
expect "digest unchanged after corrupt import" test "$(fc digest)" = "$digest_c"
{ cat "$TMP/full.bundle"; printf '\0\0'; } >"$TMP/tail.bundle"
exits "import bundle with a torn tail" 2 fc import --json "$TMP/tail.bundle"
expect "good batches before the damage applied" py "not d['ok'] and d['batches'] >= 1 and d['applied'] > 0" "$TMP/out"
expect "torn tail says how many applied" grep_err "batches before it were applied"
expect "C converged with the full bundle" test "$(fc digest)" = "$digest_a"
exits "import missing file" 2 fc import "$TMP/nope"
exits "import without args" 1 fc import

# --- --dir placement and defaults ------------------------------------------
ok "--dir after the command" "$FERRY" get clinic-7 patients p1 --dir "$A"
ok "FERRY_DIR default" env FERRY_DIR="$A" "$FERRY" id
expect "FERRY_DIR used" test "$(cat "$TMP/out")" = "$id_a"
ok "XDG_DATA_HOME default" env -u FERRY_DIR XDG_DATA_HOME="$TMP/xdg" "$FERRY" init
expect "XDG_DATA_HOME used" test -f "$TMP/xdg/ferry/node.pub"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
