#!/bin/bash
# npm_pinned.sh — make sure the npm packages pinned by a directory's
# package.json and package-lock.json are installed, exactly as locked: into
# DIR/node_modules on first use, or into MODULES (a directory named
# node_modules, e.g. shared between checkouts) when given. Prints that
# node_modules directory on stdout. Used by bench/peers (PouchDB) and
# tests/adapters (json-server).
#
# Usage: scripts/npm_pinned.sh LABEL DIR MIN_NODE_MAJOR [MODULES]
# Exit status: 0 installed; 3 cannot be installed here (no node, node too
# old, no npm for the first install, or npm failed) with a one-line reason
# as the last line on stderr; 2 bad usage.
set -uo pipefail

[ $# -ge 3 ] || {
	echo "usage: $0 LABEL DIR MIN_NODE_MAJOR [MODULES]" >&2
	exit 2
}
label=$1
here=$(cd "$2" && pwd) || exit 2
min_major=$3

skip() {
	echo "$label: $*" >&2
	exit 3
}

command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) ||
	skip "node does not run"
[ "$major" -ge "$min_major" ] 2>/dev/null ||
	skip "node $major is too old ($min_major or later needed)"

modules=${4:-$here/node_modules}
modules=${modules%/}
case ${modules##*/} in
node_modules) ;;
*) skip "the packages' directory must be called node_modules: $modules" ;;
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
		skip "npm is not installed (apt-get install npm), and $modules lacks the pinned packages"
	mkdir -p "$prefix" || skip "cannot create $prefix"
	if [ "$prefix" != "$here" ]; then
		for f in package.json package-lock.json .npmrc; do
			cp "$here/$f" "$prefix/$f" || skip "cannot copy $f into $prefix"
		done
	fi
	log=$(mktemp "${TMPDIR:-/var/tmp}/ferry-$label-npm-XXXXXX.log") ||
		skip "cannot create a log file for npm"
	echo "$label: installing the pinned packages into $modules (npm ci)" >&2
	# npm ci installs exactly what package-lock.json says and never
	# rewrites it; one install at a time when flock is there (ctest -j).
	(
		command -v flock >/dev/null 2>&1 && flock 9
		installed || (cd "$prefix" && npm ci --no-audit --no-fund \
			--loglevel=error --omit-lockfile-registry-resolved)
	) 9>"${TMPDIR:-/var/tmp}/ferry-$label-install.lock" >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || ! installed; then
		tail -n 20 "$log" >&2
		skip "npm ci failed in $prefix (exit $rc; log: $log)"
	fi
	rm -f "$log"
fi
echo "$modules"
