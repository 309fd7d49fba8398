#!/usr/bin/env bash
# cli_secret_test.sh — `ferry secret set/ls/rm` end to end: values go in
# on stdin and never come out (not from `ls`, not in any message, not in
# data.mdb), secret.key is made private on first use and refused when it
# is not, --json output, and the error cases with their exit codes, in a
# fresh temporary directory. (Trimming of the trailing newline is checked
# byte for byte in tests/net/secret_test.c, which can read values back.)
#
# usage: cli_secret_test.sh PATH_TO_FERRY
set -u

FERRY=${1:?usage: cli_secret_test.sh PATH_TO_FERRY}
. "$(dirname "$0")/lib.sh"

no_out() {
	! grep -qF -- "$1" "$TMP/out" && ! grep -qF -- "$1" "$TMP/err"
}

# not_in FILE STRING: FILE does not hold STRING anywhere (binary-safe).
not_in() {
	! grep -qaF -- "$2" "$1"
}

A=$TMP/a
fa() { "$FERRY" --dir "$A" "$@"; }
# set NAME VALUE-FILE: `secret set NAME` with stdin from the file.
set_from() {
	"$FERRY" --dir "$A" secret set "$1" <"$2"
}

VALUE1=tok-CANARY-8d1f3a9e-plaintext
VALUE2=second-CANARY-55aa17
printf '%s\n' "$VALUE1" >"$TMP/v1"
printf '%s\r\n' "$VALUE2" >"$TMP/v2"

# --- usage -----------------------------------------------------------------
ok "--help" "$FERRY" --help
expect "--help lists secret" grep_out "^  secret "
ok "secret --help" "$FERRY" secret --help
expect "secret --help shows set" grep_out "usage: .*secret set NAME"
expect "secret --help shows rm" grep_out "ferry secret rm NAME"
exits "secret before init" 2 fa secret ls
expect "secret before init says init" grep_err "ferry init"

ok "init" fa init
exits "secret without subcommand" 1 fa secret
expect "subcommands named" grep_err "set, ls or rm"
exits "secret unknown subcommand" 1 fa secret frob
expect "unknown subcommand named" grep_err "unknown subcommand 'frob'"

# --- ls of nothing; no key yet ---------------------------------------------
ok "ls empty" fa secret ls
expect "empty list explained" grep_out "no secrets"
ok "ls --json empty" fa --json secret ls
expect "empty --json is an empty array" py "d == []" "$TMP/out"
expect "no secret.key before the first set" test ! -e "$A/secret.key"

# --- set -------------------------------------------------------------------
run set_from pms_token "$TMP/v1"
expect "set exits 0" test "$rc" -eq 0
expect "set says stored" grep_out "^stored secret pms_token"
expect "set prints no value" no_out "$VALUE1"
expect "secret.key created" test -f "$A/secret.key"
expect "secret.key is 0600" test "$(stat -c %a "$A/secret.key")" = 600
expect "secret.key is 32 bytes" test "$(stat -c %s "$A/secret.key")" -eq 32

run "$FERRY" --dir "$A" --json secret set crm.client-secret_2 <"$TMP/v2"
expect "set --json exits 0" test "$rc" -eq 0
expect "set --json" py "d['name'] == 'crm.client-secret_2' and d['set'].endswith('Z')" "$TMP/out"
expect "set --json prints no value" no_out "$VALUE2"

# Binary bytes (NUL included) through a pipe.
ok "set binary from a pipe" bash -c "printf 'a\0b\377c' | '$FERRY' --dir '$A' secret set bin"

# Exactly the limit, with and without a trailing newline.
head -c 8192 /dev/zero | tr '\0' x >"$TMP/max"
run set_from max "$TMP/max"
expect "8192 bytes accepted" test "$rc" -eq 0
{ cat "$TMP/max"; printf '\n'; } >"$TMP/max_nl"
run set_from max_nl "$TMP/max_nl"
expect "8192 bytes and a newline accepted" test "$rc" -eq 0

# --- ls --------------------------------------------------------------------
ok "ls" fa secret ls
expect "ls header" grep_out "^NAME  *SET$"
expect "ls row for pms_token" grep_out "^pms_token  *20[0-9-]*T[0-9:.]*Z$"
expect "ls row for the second" grep_out "^crm.client-secret_2  *20"
expect "ls has five rows" test "$(wc -l <"$TMP/out")" -eq 6
expect "ls shows no value" no_out "$VALUE1"
expect "ls shows no second value" no_out "$VALUE2"
expect "ls shows no CANARY" no_out "CANARY"
ok "ls --json" fa --json secret ls
expect "ls --json is an array of {name, set}" py "isinstance(d, list) and all(sorted(e) == ['name', 'set'] for e in d)" "$TMP/out"
expect "ls --json names in order" py "[e['name'] for e in d] == ['bin', 'crm.client-secret_2', 'max', 'max_nl', 'pms_token']" "$TMP/out"
expect "ls --json ISO times" py "all(e['set'][:2] == '20' and e['set'].endswith('Z') and 'T' in e['set'] for e in d)" "$TMP/out"
expect "ls --json shows no value" no_out "CANARY"

# Replacing keeps one entry.
ok "replace" bash -c "printf 'newer-CANARY-value\n' | '$FERRY' --dir '$A' secret set pms_token"
ok "ls after replace" fa --json secret ls
expect "still five" py "len(d) == 5" "$TMP/out"

# --- bad input -------------------------------------------------------------
head -c 8193 /dev/zero | tr '\0' y >"$TMP/over"
run set_from over "$TMP/over"
expect "8193 bytes refused" test "$rc" -eq 2
expect "oversize explained" grep_err "the value for secret over is too long"
expect "oversize says the limit" grep_err "at most 8192 bytes"
head -c 20000 /dev/zero | tr '\0' y >"$TMP/huge"
run set_from over "$TMP/huge"
expect "20000 bytes refused" test "$rc" -eq 2
run set_from over /dev/null
expect "empty refused" test "$rc" -eq 2
expect "empty explained" grep_err "the value for secret over is empty"
printf '\n' >"$TMP/nl"
run set_from over "$TMP/nl"
expect "only a newline is empty" test "$rc" -eq 2
ok "nothing stored by refused sets" fa --json secret ls
expect "no secret named over" py "'over' not in [e['name'] for e in d]" "$TMP/out"

exits "set without NAME" 1 fa secret set
exits "set two NAMEs" 1 fa secret set a b
bad_names=('a b' 'a/b' $'caf\xc3\xa9' "$(printf 'n%.0s' {1..65})" '' 'a:b' $'a\tb')
for name in "${bad_names[@]}"; do
	run set_from "$name" "$TMP/v1"
	expect "bad name refused as usage ('$name')" test "$rc" -eq 1
	expect "bad name explained ('$name')" grep_err "NAME must be 1 to 64 bytes"
	expect "bad name prints no value ('$name')" no_out "$VALUE1"
done
exits "ls with an argument" 1 fa secret ls extra

# --- secret.key checks -----------------------------------------------------
chmod 644 "$A/secret.key"
run set_from pms_token "$TMP/v1"
expect "key readable by others refused" test "$rc" -eq 2
expect "mode named" grep_err "secret.key is readable by group or others (mode 644)"
expect "chmod hinted" grep_err "chmod 600"
expect "refusal prints no value" no_out "$VALUE1"
chmod 600 "$A/secret.key"
cp "$A/secret.key" "$TMP/key.bak"
head -c 16 "$TMP/key.bak" >"$A/secret.key"
run set_from pms_token "$TMP/v1"
expect "short key refused" test "$rc" -eq 2
expect "size named" grep_err "is 16 bytes, not the 32 of a key"
cp "$TMP/key.bak" "$A/secret.key"
chmod 600 "$A/secret.key"
ok "set with the key restored" set_from pms_token "$TMP/v1"

# --- rm --------------------------------------------------------------------
ok "rm" fa secret rm bin
expect "rm says removed" grep_out "^removed secret bin$"
exits "rm again" 2 fa secret rm bin
expect "rm missing explained" grep_err "no secret named bin"
expect "rm missing hints ls" grep_err "ferry secret ls"
exits "rm unknown" 2 fa secret rm never-set
expect "rm unknown explained" grep_err "no secret named never-set"
exits "rm bad name" 1 fa secret rm 'a b'
exits "rm without NAME" 1 fa secret rm
ok "rm --json" fa --json secret rm max
expect "rm --json" py "d == {'name': 'max', 'removed': True}" "$TMP/out"
ok "ls after rm" fa --json secret ls
expect "removed ones gone" py "[e['name'] for e in d] == ['crm.client-secret_2', 'max_nl', 'pms_token']" "$TMP/out"

# --- at rest: the store holds no plaintext ----------------------------------
# (The names are there: grep does see into data.mdb.)
expect "data.mdb holds the name" grep -qaF crm.client-secret_2 "$A/data.mdb"
for v in "$VALUE1" "$VALUE2" newer-CANARY-value CANARY; do
	expect "data.mdb does not hold $v" not_in "$A/data.mdb" "$v"
	expect "no file of the directory holds $v" bash -c "! grep -rqaF -- '$v' '$A'"
done
ok "verify beside the secrets" fa verify

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
