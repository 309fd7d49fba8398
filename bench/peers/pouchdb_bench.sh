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

skip() {
	echo "pouchdb: $*" >&2
	exit 3
}

case ${1:-} in
full-sync | live) ;;
*)
	echo "usage: $0 full-sync|live [--n N] [--value-bytes B] [--rate R]" \
		"[--seconds S] [--seed S]" >&2
	exit 2
	;;
esac

command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) ||
	skip "node does not run"
[ "$major" -ge 16 ] 2>/dev/null || skip "node $major is too old (16 or later needed)"

modules=${FERRY_PEERS_NODE_MODULES:-$here/node_modules}
modules=${modules%/}
case ${modules##*/} in
node_modules) ;;
*) skip "FERRY_PEERS_NODE_MODULES must name a directory called node_modules: $modules" ;;
esac
prefix=${modules%/*}
[ -n "$prefix" ] || prefix=/

# Installed iff every pinned package is there at its pinned version.
installed() {
	node -e '
		const path = require("path");
		const want = require(process.argv[1]).dependencies;
		for (const [name, version] of Object.entries(want)) {
			const have = require(path.join(process.argv[2], name,
				"package.json")).version;
			if (have !== version) process.exit(1);
		}' "$here/package.json" "$modules" >/dev/null 2>&1
}

if ! installed; then
	command -v npm >/dev/null 2>&1 ||
		skip "npm is not installed (apt-get install npm), and $modules lacks PouchDB"
	mkdir -p "$prefix" || skip "cannot create $prefix"
	if [ "$prefix" != "$here" ]; then
		for f in package.json package-lock.json .npmrc; do
			cp "$here/$f" "$prefix/$f" ||
				skip "cannot copy $f into $prefix"
		done
	fi
	log=$(mktemp "${TMPDIR:-/var/tmp}/ferry-pouchdb-npm-XXXXXX.log") ||
		skip "cannot create a log file for npm"
	echo "pouchdb: installing PouchDB into $modules (npm ci)" >&2
	# npm ci installs exactly what package-lock.json says and never
	# rewrites it; one install at a time when flock is there.
	(
		command -v flock >/dev/null 2>&1 && flock 9
		installed || (cd "$prefix" && npm ci --no-audit --no-fund \
			--loglevel=error --omit-lockfile-registry-resolved)
	) 9>"${TMPDIR:-/var/tmp}/ferry-pouchdb-install.lock" >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || ! installed; then
		tail -n 20 "$log" >&2
		skip "npm ci failed in $prefix (exit $rc; log: $log)"
	fi
	rm -f "$log"
fi

FERRY_PEERS_NODE_MODULES=$modules exec node "$here/pouchdb_bench.js" "$@"
