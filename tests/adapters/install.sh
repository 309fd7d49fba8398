#!/bin/bash
# install.sh — make sure the pinned test-side packages (package.json,
# package-lock.json: json-server 0.17.4) are installed, as
# bench/peers/pouchdb_bench.sh does for PouchDB: into tests/adapters/node_modules
# on first use, or into $FERRY_ADAPTERS_NODE_MODULES (a directory named
# node_modules) when that is set. Prints that node_modules directory on stdout.
#
# Usage: tests/adapters/install.sh
# Exit status: 0 installed; 3 cannot be installed here (no node, no npm for
# the first install, or npm failed) with a one-line reason as the last line
# on stderr.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() {
	echo "adapters: $*" >&2
	exit 3
}

command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) ||
	skip "node does not run"
[ "$major" -ge 14 ] 2>/dev/null || skip "node $major is too old (14 or later needed)"

modules=${FERRY_ADAPTERS_NODE_MODULES:-$here/node_modules}
modules=${modules%/}
case ${modules##*/} in
node_modules) ;;
*) skip "FERRY_ADAPTERS_NODE_MODULES must name a directory called node_modules: $modules" ;;
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
		skip "npm is not installed (apt-get install npm), and $modules lacks json-server"
	mkdir -p "$prefix" || skip "cannot create $prefix"
	if [ "$prefix" != "$here" ]; then
		for f in package.json package-lock.json .npmrc; do
			cp "$here/$f" "$prefix/$f" || skip "cannot copy $f into $prefix"
		done
	fi
	log=$(mktemp "${TMPDIR:-/var/tmp}/ferry-adapters-npm-XXXXXX.log") ||
		skip "cannot create a log file for npm"
	echo "adapters: installing json-server into $modules (npm ci)" >&2
	# npm ci installs exactly what package-lock.json says and never
	# rewrites it; one install at a time when flock is there (ctest -j).
	(
		command -v flock >/dev/null 2>&1 && flock 9
		installed || (cd "$prefix" && npm ci --no-audit --no-fund \
			--loglevel=error --omit-lockfile-registry-resolved)
	) 9>"${TMPDIR:-/var/tmp}/ferry-adapters-install.lock" >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || ! installed; then
		tail -n 20 "$log" >&2
		skip "npm ci failed in $prefix (exit $rc; log: $log)"
	fi
	rm -f "$log"
fi
echo "$modules"
