#!/usr/bin/env bash
# cli_net_test.sh — the `ferry` command's peer settings end to end: `trust
# add/ls/rm`, `peer add/ls/rm`, and the peers part of `status`, with their
# --json output and error cases, each node in a fresh temporary directory.
#
# usage: cli_net_test.sh PATH_TO_FERRY
set -u

FERRY=${1:?usage: cli_net_test.sh PATH_TO_FERRY}
. "$(dirname "$0")/lib.sh"

no_err() {
	! [ -s "$TMP/err" ]
}

A=$TMP/a
B=$TMP/b
C=$TMP/c
fa() { "$FERRY" --dir "$A" "$@"; }
fb() { "$FERRY" --dir "$B" "$@"; }
fc() { "$FERRY" --dir "$C" "$@"; }

# --- usage -----------------------------------------------------------------
ok "--help" "$FERRY" --help
expect "--help lists trust" grep_out "^  trust "
expect "--help lists peer" grep_out "^  peer "
ok "trust --help" "$FERRY" trust --help
expect "trust --help shows add" grep_out "usage: .*trust add PUBKEY --name NAME"
expect "trust --help shows rm" grep_out "ferry trust rm PUBKEY|NAME"
ok "peer --help" "$FERRY" peer --help
expect "peer --help shows usage" grep_out "usage: .*peer add URL | ls | rm URL"
exits "trust before init" 2 fa trust ls
expect "trust before init says init" grep_err "ferry init"
exits "peer before init" 2 fa peer ls

ok "init A" fa init
id_a=$(fa id)
ok "init B" fb init
id_b=$(fb id)
ok "init C" fc init
id_c=$(fc id)
expect "ids are 64 hex" test "${#id_b}" -eq 64

exits "trust without subcommand" 1 fa trust
expect "trust names its subcommands" grep_err "add, ls or rm"
exits "trust unknown subcommand" 1 fa trust frob
expect "unknown subcommand named" grep_err "unknown subcommand 'frob'"
exits "peer without subcommand" 1 fa peer
exits "peer unknown subcommand" 1 fa peer frob

# --- trust -----------------------------------------------------------------
ok "trust ls empty" fa trust ls
expect "empty trust list explained" grep_out "no trusted peers"
ok "trust ls --json empty" fa trust ls --json
expect "empty trust list prints no JSON lines" test ! -s "$TMP/out"

ok "trust add" fa trust add "$id_b" --name clinic-7 \
	--read 'clinic-7, clinic-7/*,pricelist' --write 'clinic-7,clinic-7/*'
expect "trust add says added" grep_out "^added clinic-7 (${id_b:0:8}): read clinic-7,clinic-7/\*,pricelist  write clinic-7,clinic-7/\*"
expect "trust add with grants does not warn" no_err

ok "trust add no grants" fa trust add "$id_c" --name hq
expect "no grants warns" grep_err "warning: hq can neither read nor write"
expect "no grants hints" grep_err "hint: pass --read and/or --write"
expect "no grants shows empty grants" grep_out "read -  write -"

ok "trust ls" fa trust ls
expect "trust ls header" grep_out "^NAME  *ID  *READ  *WRITE"
expect "trust ls row for clinic-7" grep_out "^clinic-7  ${id_b:0:8}  clinic-7,clinic-7/\*,pricelist  clinic-7,clinic-7/\*"
expect "trust ls row for hq" grep_out "^hq  *${id_c:0:8}  -  *-"
expect "trust ls has two rows" test "$(wc -l <"$TMP/out")" -eq 3

ok "trust ls --json" fa --json trust ls
expect "trust ls --json lines" pylines "len(ls) == 2" "$TMP/out"
expect "trust ls --json clinic-7" pylines "[e for e in ls if e['id'] == '$id_b' and e['name'] == 'clinic-7' and e['read'] == ['clinic-7', 'clinic-7/*', 'pricelist'] and e['write'] == ['clinic-7', 'clinic-7/*'] and e['added_ms'] > 0]" "$TMP/out"
expect "trust ls --json hq" pylines "[e for e in ls if e['id'] == '$id_c' and e['read'] == [] and e['write'] == []]" "$TMP/out"
added_b=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["name"] == "clinic-7": print(e["added_ms"])' "$TMP/out")

ok "trust add again replaces" fa trust add "$id_b" --name clinic-7 --read '*' --json
expect "replace says updated" py "d['updated'] and d['read'] == ['*'] and d['write'] == []" "$TMP/out"
expect "replace keeps added_ms" py "d['added_ms'] == $added_b" "$TMP/out"
ok "trust add rename" fa trust add "$id_b" --name branch --read '*' --write x
expect "rename says updated" grep_out "^updated branch (${id_b:0:8}): read \*  write x"
ok "trust ls after replace" fa trust ls --json
expect "still two entries" pylines "len(ls) == 2 and [e for e in ls if e['name'] == 'branch' and e['read'] == ['*']]" "$TMP/out"

other_key=$(printf 'ab%.0s' {1..32})
exits "trust add name in use" 2 fa trust add "$other_key" --name hq --read x
expect "name in use explained" grep_err "the name hq is already used by peer ${id_c:0:8}"
exits "trust add own key" 2 fa trust add "$id_a" --name me --read x
expect "own key explained" grep_err "this node's own id"
exits "trust add bad key" 1 fa trust add 3fa2 --name x
expect "bad key explained" grep_err "64 hex digits"
exits "trust add no key" 1 fa trust add --name x
exits "trust add no name" 1 fa trust add "$id_b"
expect "missing name explained" grep_err "\-\-name NAME is required"
exits "trust add empty name" 1 fa trust add "$id_b" --name ''
exits "trust add key-like name" 1 fa trust add "$id_b" --name "$id_c"
exits "trust add control character" 1 fa trust add "$id_b" --name "$(printf 'a\tb')"
exits "trust add bad UTF-8" 1 fa trust add "$id_b" --name "$(printf 'a\xffb')"
expect "bad UTF-8 explained" grep_err "valid UTF-8"
exits "trust add star in name" 1 fa trust add "$id_b" --name x --read 'clinic-*'
expect "star explained" grep_err "'\*' inside a name"
exits "trust add empty pattern" 1 fa trust add "$id_b" --name x --read 'a,,b'
expect "empty pattern explained" grep_err "empty pattern"
exits "trust add long pattern" 1 fa trust add "$id_b" --name x --write "$(printf 'p%.0s' {1..65})"
expect "long pattern explained" grep_err "64-byte scope limit"
exits "trust ls with --name" 1 fa trust ls --name x
expect "options of add only" grep_err "belong to \`trust add\`"
exits "trust ls with an argument" 1 fa trust ls extra
ok "failed adds changed nothing" fa trust ls --json
expect "still the same two entries" pylines "sorted(e['name'] for e in ls) == ['branch', 'hq']" "$TMP/out"

ok "trust rm by name" fa trust rm hq
expect "rm by name says removed" grep_out "^removed hq (${id_c:0:8}) from the trust list"
exits "trust rm same name again" 2 fa trust rm hq
expect "rm unknown explained" grep_err "no trusted peer hq"
ok "trust rm by key" fa --json trust rm "$id_b"
expect "rm by key --json" py "d == {'id': '$id_b', 'name': 'branch', 'removed': True}" "$TMP/out"
exits "trust rm unknown key" 2 fa trust rm "$id_b"
exits "trust rm no argument" 1 fa trust rm
ok "trust ls after rm" fa trust ls
expect "trust list empty again" grep_out "no trusted peers"

# --- peer ------------------------------------------------------------------
ok "peer ls empty" fa peer ls
expect "peer ls empty prints nothing" test ! -s "$TMP/out"
ok "peer add" fa peer add wss://hq.example:7400/
expect "peer add says added" grep_out "^added peer wss://hq.example:7400/$"
ok "peer add again" fa peer add wss://hq.example:7400/
expect "peer add again says present" grep_out "already in the list"
ok "peer add --json" fa peer add ws://10.0.0.7:7400 --json
expect "peer add --json" py "d == {'url': 'ws://10.0.0.7:7400', 'added': True}" "$TMP/out"
ok "peer add again --json" fa peer add ws://10.0.0.7:7400 --json
expect "peer add again --json" py "d['added'] is False" "$TMP/out"
exits "peer add http" 1 fa peer add http://hq.example/
expect "bad URL explained" grep_err "must start with ws:// or wss://"
exits "peer add no host" 1 fa peer add ws://
exits "peer add with space" 1 fa peer add 'ws://hq example/'
exits "peer add too long" 1 fa peer add "ws://$(printf 'h%.0s' {1..200})"
exits "peer add no URL" 1 fa peer add
ok "peer ls" fa peer ls
expect "peer ls in byte order" test "$(cat "$TMP/out")" = "$(printf 'ws://10.0.0.7:7400\nwss://hq.example:7400/')"
ok "peer ls --json" fa peer ls --json
expect "peer ls --json" pylines "[e['url'] for e in ls] == ['ws://10.0.0.7:7400', 'wss://hq.example:7400/']" "$TMP/out"

# --- status ----------------------------------------------------------------
ok "status of B (no peers)" fb status
expect "status shows no peers" grep_out "^peers       0$"
ok "status --json of B" fb status --json
expect "status --json has an empty peers array" py "d['peers'] == [] and d['id'] == '$id_b'" "$TMP/out"

ok "status of A (peers not connected yet)" fa status
expect "status counts configured peers" grep_out "^peers       2$"
expect "status shows the unreached URL" grep_out "ws://10.0.0.7:7400  no status yet"
ok "status --json of A" fa status --json
expect "status --json lists configured peers" py "sorted(p['url'] for p in d['peers']) == ['ws://10.0.0.7:7400', 'wss://hq.example:7400/']" "$TMP/out"
expect "status --json unknown state" py "all(p['state'] == 'unknown' and p['online'] is False and p['id'] is None for p in d['peers'])" "$TMP/out"
expect "status --json keeps the rest" py "'vector' in d and 'collections' in d and 'clock' in d" "$TMP/out"

ok "peer rm" fa peer rm ws://10.0.0.7:7400
expect "peer rm says removed" grep_out "^removed peer ws://10.0.0.7:7400$"
exits "peer rm again" 2 fa peer rm ws://10.0.0.7:7400
expect "peer rm unknown explained" grep_err "is not in the peer list"
exits "peer rm no URL" 1 fa peer rm
ok "peer rm --json" fa peer rm wss://hq.example:7400/ --json
expect "peer rm --json" py "d == {'url': 'wss://hq.example:7400/', 'removed': True}" "$TMP/out"
ok "peer ls after rm" fa peer ls
expect "no peers left" test ! -s "$TMP/out"
ok "status after peer rm" fa status --json
expect "status has no peers after rm" py "d['peers'] == []" "$TMP/out"

# Settings live in the store: another process sees them, and the data
# commands still work beside them.
ok "trust add for sharing" fa trust add "$id_b" --name clinic-7 --read 'clinic-7/*'
ok "FERRY_DIR sees the trust list" env FERRY_DIR="$A" "$FERRY" trust ls --json
expect "trust list shared" pylines "len(ls) == 1 and ls[0]['id'] == '$id_b'" "$TMP/out"
ok "put beside settings" fa put clinic-7 patients p1 name=Rex
ok "verify beside settings" fa verify

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
