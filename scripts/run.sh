#!/bin/sh
# Install what is missing, build ferry, and run the main job on its embedded
# default: a hub node in the default data directory (created on first run)
# with a few demo records, serving peers on 0.0.0.0:7400 and its HTTP side
# (JSON API, status page, metrics) on 0.0.0.0:8080 until interrupted.
# On first run it creates an API key named "admin" and prints it once,
# with the status page's URL. FERRY_DIR overrides the data directory;
# FERRY_LISTEN and FERRY_HTTP the addresses.
set -eu
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

cmake -S . -B build -DFERRY_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target ferry-cli >/dev/null
ferry=build/tools/ferry
http=${FERRY_HTTP:-0.0.0.0:8080}

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
echo "--- API key"
host=$(echo "$http" | sed 's/^0\.0\.0\.0:/127.0.0.1:/')
if $ferry apikey ls | grep -q ' admin '; then
	echo "API key 'admin' was created and shown on the first run;"
	echo "make another with: $ferry apikey create --name NAME --read '*' --write '*'"
	echo "status page: http://$host/#key=YOUR-API-KEY"
else
	key=$($ferry apikey create --name admin --read '*' --write '*' |
		grep '^fk_')
	echo "API key (shown once, keep it): $key"
	echo "status page: http://$host/#key=$key"
	echo "try: curl -H 'X-API-Key: $key' http://$host/v1/demo/clients/c-1"
fi
echo "--- serving (Ctrl-C to stop)"
exec $ferry serve --listen "${FERRY_LISTEN:-0.0.0.0:7400}" --http "$http"
