#!/bin/sh
# Install what is missing, build ferry, and run the main job on its embedded
# default: the node in the default data directory (created on first run),
# with a few demo records written and read back, serving peers on
# 0.0.0.0:7400 until interrupted (Ctrl-C). It prints its identity, its
# address and how to connect a second node.
# FERRY_DIR overrides the data directory; FERRY_LISTEN the address.
set -eu
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

cmake -S . -B build -DFERRY_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target ferry-cli >/dev/null
ferry=build/tools/ferry

$ferry init
$ferry put demo clients c-1 name="Anna Petrova" phone="+7 900 000-00-01"
$ferry put demo patients p-1 name=Rex species=dog owner=c-1 weight_kg=31.5
$ferry put demo appointments a-1 patient=p-1 at=2026-11-21T10:00 status=booked
echo "--- read back"
$ferry get demo clients c-1
$ferry get demo patients p-1
$ferry ls demo appointments
echo "--- status"
$ferry status
echo "--- serving (Ctrl-C to stop)"
exec $ferry serve --listen "${FERRY_LISTEN:-0.0.0.0:7400}"
