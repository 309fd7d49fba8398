#!/usr/bin/env bash
# cli_apikey_test.sh — `ferry apikey create/ls/revoke` end to end: the
# token is printed once and nowhere else (not by `ls`, not in any file of
# the data directory, where only its hash is), --json output, and the
# error cases with their exit codes, in a fresh temporary directory.
#
# usage: cli_apikey_test.sh PATH_TO_FERRY
set -u

FERRY=${1:?usage: cli_apikey_test.sh PATH_TO_FERRY}
. "$(dirname "$0")/lib.sh"

no_out() {
	! grep -qF -- "$1" "$TMP/out" && ! grep -qF -- "$1" "$TMP/err"
}

# The hex BLAKE2b-256 hash of a token: what the node stores instead.
token_hash() {
	python3 -c 'import hashlib, sys
print(hashlib.blake2b(sys.argv[1].encode(), digest_size=32).hexdigest())' "$1"
}

is_token() {
	[[ $1 =~ ^fk_[A-Za-z0-9_-]{43}$ ]]
}

# in_dir STRING: some file of the data directory holds STRING.
in_dir() {
	grep -rqF -- "$1" "$A"
}

A=$TMP/a
fa() { "$FERRY" --dir "$A" "$@"; }

# --- usage -----------------------------------------------------------------
ok "--help" "$FERRY" --help
expect "--help lists apikey" grep_out "^  apikey "
ok "apikey --help" "$FERRY" apikey --help
expect "apikey --help shows create" grep_out "usage: .*apikey create --name NAME \[--read SCOPES\] \[--write SCOPES\]"
expect "apikey --help shows revoke" grep_out "ferry apikey revoke NAME|ID"
exits "apikey before init" 2 fa apikey ls
expect "apikey before init says init" grep_err "ferry init"

ok "init" fa init
exits "apikey without subcommand" 1 fa apikey
expect "subcommands named" grep_err "create, ls or revoke"
exits "apikey unknown subcommand" 1 fa apikey frob
expect "unknown subcommand named" grep_err "unknown subcommand 'frob'"

# --- create ----------------------------------------------------------------
ok "ls empty" fa apikey ls
expect "empty list explained" grep_out "no API keys"
ok "ls --json empty" fa apikey ls --json
expect "empty list prints no JSON lines" test ! -s "$TMP/out"

ok "create" fa apikey create --name web-shop --read 'shop, shop/*,pricelist' --write shop
expect "create says created" grep_out "^created API key web-shop ([0-9a-f]\{16\}): read shop,shop/\*,pricelist  write shop$"
expect "create prints two lines" test "$(wc -l <"$TMP/out")" -eq 2
tok1=$(sed -n 2p "$TMP/out")
id1=$(sed -n 's/^created API key web-shop (\([0-9a-f]*\)).*/\1/p' "$TMP/out")
expect "token has its shape" is_token "$tok1"
expect "create warns the token is shown once" grep_err "warning: this is the only time the token is shown"
expect "create with grants does not warn about them" bash -c "! grep -q 'neither read nor write' '$TMP/err'"
hash1=$(token_hash "$tok1")
expect "id is the start of the token's hash" test "$id1" = "${hash1:0:16}"

ok "create without grants" fa apikey create --name idle
expect "no grants warns" grep_err "warning: idle can neither read nor write"
expect "no grants hints" grep_err "hint: pass --read and/or --write"
expect "no grants shows empty grants" grep_out "read -  write -"
tok2=$(sed -n 2p "$TMP/out")
expect "second token has its shape" is_token "$tok2"
expect "tokens differ" test "$tok1" != "$tok2"

ok "create --json" fa --json apikey create --name reports --read '*'
expect "create --json members" py "sorted(d) == ['id', 'name', 'read', 'token', 'write']" "$TMP/out"
expect "create --json values" py "d['name'] == 'reports' and d['read'] == ['*'] and d['write'] == [] and len(d['id']) == 16" "$TMP/out"
tok3=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$TMP/out")
id3=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$TMP/out")
expect "--json token has its shape" is_token "$tok3"
hash3=$(token_hash "$tok3")
expect "--json id is the start of the hash" test "$id3" = "${hash3:0:16}"
expect "--json still warns on stderr" grep_err "only time the token is shown"

# --- ls --------------------------------------------------------------------
ok "ls" fa apikey ls
expect "ls header" grep_out "^ID  *NAME  *READ  *WRITE  *CREATED$"
expect "ls row for web-shop" grep_out "^$id1  web-shop  shop,shop/\*,pricelist  shop   *20[0-9-]*T[0-9:]*Z$"
expect "ls row for reports" grep_out "^$id3  reports  *\*  *-  *20"
expect "ls row for idle" grep_out "  idle  *-  *-  *20"
expect "ls has three rows" test "$(wc -l <"$TMP/out")" -eq 4
for t in "$tok1" "$tok2" "$tok3"; do
	expect "ls shows no token" no_out "$t"
	expect "ls shows no part of a token" no_out "${t:3:20}"
done
expect "ls shows no fk_ at all" no_out "fk_"

ok "ls --json" fa --json apikey ls
expect "ls --json lines" pylines "len(ls) == 3" "$TMP/out"
expect "ls --json members" pylines "all(sorted(e) == ['created_ms', 'id', 'name', 'read', 'write'] for e in ls)" "$TMP/out"
expect "ls --json web-shop" pylines "[e for e in ls if e['id'] == '$id1' and e['name'] == 'web-shop' and e['read'] == ['shop', 'shop/*', 'pricelist'] and e['write'] == ['shop'] and e['created_ms'] > 0]" "$TMP/out"
expect "ls --json in id order" pylines "[e['id'] for e in ls] == sorted(e['id'] for e in ls)" "$TMP/out"
for t in "$tok1" "$tok2" "$tok3"; do
	expect "ls --json shows no token" no_out "$t"
done

# --- the data directory holds hashes, never tokens --------------------------
# (The hash being found shows grep does see into the store's files.)
expect "data directory holds the hash" in_dir "$hash1"
for t in "$tok1" "$tok2" "$tok3"; do
	expect "data directory does not hold the token" bash -c "! grep -rqF -- '$t' '$A'"
	expect "data directory does not hold its secret part" bash -c "! grep -rqF -- '${t:3}' '$A'"
done

# --- errors ----------------------------------------------------------------
exits "create name taken" 2 fa apikey create --name web-shop --read x
expect "name taken explained" grep_err "an API key named web-shop already exists"
expect "name taken hints revoke" grep_err "ferry apikey revoke web-shop"
expect "name taken prints no token" bash -c "! grep -q fk_ '$TMP/out' '$TMP/err'"
exits "create no name" 1 fa apikey create --read x
expect "missing name explained" grep_err "\-\-name NAME is required"
exits "create empty name" 1 fa apikey create --name ''
exits "create long name" 1 fa apikey create --name "$(printf 'n%.0s' {1..65})"
exits "create control character" 1 fa apikey create --name "$(printf 'a\tb')"
exits "create bad UTF-8" 1 fa apikey create --name "$(printf 'a\xffb')"
exits "create star in name" 1 fa apikey create --name x --read 'shop-*'
expect "star explained" grep_err "'\*' inside a name"
exits "create empty pattern" 1 fa apikey create --name x --write 'a,,b'
expect "empty pattern explained" grep_err "empty pattern"
exits "create with an operand" 1 fa apikey create extra --name x
exits "ls with --name" 1 fa apikey ls --name x
expect "options of create only" grep_err "belong to \`apikey create\`"
exits "ls with an argument" 1 fa apikey ls extra
exits "revoke without argument" 1 fa apikey revoke
exits "revoke two arguments" 1 fa apikey revoke a b
exits "revoke unknown" 2 fa apikey revoke nobody
expect "revoke unknown explained" grep_err "no API key is named nobody"
exits "revoke 7-digit prefix" 2 fa apikey revoke "${id1:0:7}"
ok "failed commands changed nothing" fa --json apikey ls
expect "still the same three keys" pylines "sorted(e['name'] for e in ls) == ['idle', 'reports', 'web-shop']" "$TMP/out"

# --- revoke ----------------------------------------------------------------
ok "revoke by name" fa apikey revoke idle
expect "revoke by name says revoked" grep_out "^revoked API key idle ([0-9a-f]\{16\})"
exits "revoke same name again" 2 fa apikey revoke idle
ok "revoke by 8-digit prefix" fa apikey revoke "${id1:0:8}"
expect "revoke by prefix names the key" grep_out "^revoked API key web-shop ($id1)"
ok "revoke by full id --json" fa --json apikey revoke "$id3"
expect "revoke --json" py "d == {'id': '$id3', 'name': 'reports', 'revoked': True}" "$TMP/out"
exits "revoke by id again" 2 fa apikey revoke "$id3"
ok "ls after revokes" fa apikey ls
expect "no keys left" grep_out "no API keys"

# A name that is also the start of another key's id is ambiguous.
ok "create for ambiguity" fa --json apikey create --name amb --read x
id4=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$TMP/out")
ok "create key named like an id" fa apikey create --name "${id4:0:8}" --read y
exits "revoke ambiguous" 2 fa apikey revoke "${id4:0:8}"
expect "ambiguity explained" grep_err "names more than one API key"
ok "ambiguous revoke removed nothing" fa --json apikey ls
expect "both keys still there" pylines "len(ls) == 2" "$TMP/out"
ok "revoke by full id resolves it" fa apikey revoke "$id4"
expect "the right key went" grep_out "^revoked API key amb ($id4)"

# A revoked name is free again; keys are shared by every process.
ok "create a revoked name again" fa apikey create --name web-shop --read shop
tok5=$(sed -n 2p "$TMP/out")
expect "new token differs" test "$tok5" != "$tok1"
ok "FERRY_DIR sees the keys" env FERRY_DIR="$A" "$FERRY" apikey ls --json
expect "keys shared" pylines "sorted(e['name'] for e in ls) == ['${id4:0:8}', 'web-shop']" "$TMP/out"
ok "verify beside the keys" fa verify
for t in "$tok1" "$tok2" "$tok3" "$tok5"; do
	expect "no token in the data directory at the end" bash -c "! grep -rqF -- '$t' '$A'"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
