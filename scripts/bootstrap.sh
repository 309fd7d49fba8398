#!/bin/sh
# Install the Debian 12 packages ferry needs to build, test and benchmark.
# Idempotent and quiet when everything is already there.
set -eu

packages="build-essential cmake pkg-config clang libclang-rt-14-dev
liblmdb-dev libmsgpack-dev libsodium-dev libjansson-dev libwebsockets-dev
lmdb-utils python3 util-linux curl wrk chromium gnuplot-nox
clang-format libcurl4-openssl-dev nginx"

# node runs the adapter tests' json-server (tests/adapters/). Debian's only
# when there is no node at all: a newer one already installed (e.g. with its
# own npm) is used as it is.
command -v node >/dev/null 2>&1 || packages="$packages nodejs npm"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "ferry: missing packages:$missing" >&2
	echo "ferry: run this script as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "ferry: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
