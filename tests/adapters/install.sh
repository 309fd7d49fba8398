#!/bin/bash
# install.sh — make sure the pinned test-side packages (package.json,
# package-lock.json: json-server 0.17.4) are installed (scripts/npm_pinned.sh,
# shared with bench/peers): into tests/adapters/node_modules
# on first use, or into $FERRY_ADAPTERS_NODE_MODULES (a directory named
# node_modules) when that is set. Prints that node_modules directory on stdout.
#
# Usage: tests/adapters/install.sh
# Exit status: 0 installed; 3 cannot be installed here (no node, no npm for
# the first install, or npm failed) with a one-line reason as the last line
# on stderr.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../../scripts/npm_pinned.sh" adapters "$here" 14 \
	${FERRY_ADAPTERS_NODE_MODULES:+"$FERRY_ADAPTERS_NODE_MODULES"}
