#!/bin/bash
# pouchdb_bench.sh — PouchDB replicating over HTTP on 127.0.0.1, the peer
# that `ferry-bench full-sync|live --with-pouchdb` prints beside ferry.
#
# Installs the pinned packages (package.json, package-lock.json) into
# bench/peers/node_modules on first use, or into $FERRY_PEERS_NODE_MODULES
# (a directory named node_modules) when that is set, then runs
# pouchdb_bench.js, which prints exactly one JSON line on stdout:
#
#   full-sync: {"scenario":"full-sync","docs":N,"seconds":x,"docs_per_s":x,
#               "mb_per_s":x}
#   live:      {"scenario":"live","writes":n,"rate":R,
#               "lag_ms":{"p50":x,"p95":x,"p99":x,"max":x}}
#
# Usage: bench/peers/pouchdb_bench.sh full-sync|live [--n N]
#            [--value-bytes B] [--rate R] [--seconds S] [--seed S]
# Exit status: 0 success; 3 PouchDB cannot run here (no node, no npm for the
# first install, or the install failed) with a one-line reason as the last
# line on stderr; 1 any other failure; 2 bad usage.
set -uo pipefail

case $0 in
*/*) here=$(cd "${0%/*}" && pwd) ;;
*) here=$(pwd) ;;
esac

case ${1:-} in
full-sync | live) ;;
*)
	echo "usage: $0 full-sync|live [--n N] [--value-bytes B] [--rate R]" \
		"[--seconds S] [--seed S]" >&2
	exit 2
	;;
esac

modules=$("$here/../../scripts/npm_pinned.sh" pouchdb "$here" 16 \
	${FERRY_PEERS_NODE_MODULES:+"$FERRY_PEERS_NODE_MODULES"}) || exit $?

FERRY_PEERS_NODE_MODULES=$modules exec node "$here/pouchdb_bench.js" "$@"
