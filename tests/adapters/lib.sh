# shellcheck shell=bash
# lib.sh — the external systems of ferry's adapter integration tests, for a
# bash test to source (alone, or after tests/net/lib.sh). Sets no shell
# options and no traps; a test calls adapters_cleanup from its own EXIT trap
# (when tests/net/lib.sh is sourced first, the processes started here are
# added to its BG_PIDS, so its exit trap stops them too).
#
#   free_port                     a free TCP port on 127.0.0.1
#   pms_start PORT DBFILE [ARGS]  start pms_server.js (json-server with
#                                 idempotency, faults, OAuth2; see its header
#                                 for ARGS) in the background, wait until it
#                                 listens; PORT 0 picks one. Sets PMS_PID,
#                                 PMS_PORT, PMS_URL, PMS_DB. stdout of the
#                                 server: DBFILE.out, stderr: DBFILE.log.
#   pms_stop                      SIGTERM, wait (10 s, then SIGKILL); returns
#                                 the server's exit status
#   pms_kill                      SIGKILL, wait
#   pms_control JSON              POST /__control, prints the new state
#   pms_state                     GET /__control/state
#   pms_log                       GET /__control/log
#   pms_get PATH                  GET PATH on the server (json-server's JSON)
#   pms_q PATH PY_EXPR            PY_EXPR (Python) is true of GET PATH's JSON `d`
#   log_q PY_EXPR                 ... of the request log `L`
#   state_q PY_EXPR               ... of GET /__control/state `S`
#   nginx_sink_start PORT         Debian's nginx answering 200 {"id":1} to
#                                 everything on 127.0.0.1:PORT (nginx-sink.conf);
#                                 sets NGINX_SINK_PID, NGINX_SINK_URL
#   nginx_sink_stop               stop it and remove its temp dir
#   adapters_cleanup              stop whatever of the above still runs
#
# Functions print "adapters: ..." on stderr and return non-zero on failure;
# pms_start returns 3 when json-server cannot be installed (no node/npm).

ADAPTERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PMS_PID=${PMS_PID:-}
PMS_PORT=${PMS_PORT:-}
PMS_URL=${PMS_URL:-}
PMS_DB=${PMS_DB:-}
NGINX_SINK_PID=${NGINX_SINK_PID:-}
NGINX_SINK_DIR=${NGINX_SINK_DIR:-}
NGINX_SINK_URL=${NGINX_SINK_URL:-}
NGINX=${NGINX:-/usr/sbin/nginx}

# Children die with the test script even when it is SIGKILLed.
_ADP_PDEATH=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig KILL true 2>/dev/null; then
	_ADP_PDEATH=(setpriv --pdeathsig KILL --)
fi

_adp_track() { # register a pid with tests/net/lib.sh's cleanup, if sourced
	if declare -p BG_PIDS >/dev/null 2>&1; then BG_PIDS+=("$1"); fi
}

# _adp_stop PID SIGNAL: signal, wait up to 10 s, then SIGKILL; the exit
# status. Its stderr is off so that bash's "Killed" job notice is too.
_adp_stop() {
	local pid=$1 _ rc=0
	kill "-$2" "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" || rc=$?
	return "$rc"
} 2>/dev/null

if ! declare -F free_port >/dev/null; then
	free_port() {
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
	}
fi

pms_start() {
	local port=${1:?usage: pms_start PORT DBFILE [ARGS...]} db=${2:?usage: pms_start PORT DBFILE [ARGS...]}
	shift 2
	local modules rc=0
	modules=$(bash "$ADAPTERS_DIR/install.sh") || rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	PMS_DB=$db
	: >"$db.out"
	NODE_PATH=$modules "${_ADP_PDEATH[@]}" node "$ADAPTERS_DIR/pms_server.js" \
		--port "$port" --db "$db" "$@" >"$db.out" 2>>"$db.log" &
	PMS_PID=$!
	_adp_track "$PMS_PID"
	local _ line
	for _ in $(seq 200); do
		line=$(grep -m1 '^pms listening on ' "$db.out" 2>/dev/null) && break
		if ! kill -0 "$PMS_PID" 2>/dev/null; then
			wait "$PMS_PID" 2>/dev/null || true
			echo "adapters: pms_server.js exited at start; $db.log:" >&2
			tail -n 20 "$db.log" >&2
			PMS_PID=
			return 1
		fi
		sleep 0.1
	done
	if [ -z "$line" ]; then
		echo "adapters: pms_server.js did not listen within 20 s; $db.log:" >&2
		tail -n 20 "$db.log" >&2
		pms_kill
		return 1
	fi
	PMS_PORT=${line##*:}
	PMS_URL=http://127.0.0.1:$PMS_PORT
}

pms_stop() {
	[ -n "$PMS_PID" ] || return 0
	local rc=0
	_adp_stop "$PMS_PID" TERM || rc=$?
	PMS_PID=
	return "$rc"
}

pms_kill() {
	[ -n "$PMS_PID" ] || return 0
	_adp_stop "$PMS_PID" KILL || true
	PMS_PID=
}

pms_control() {
	curl -sS -f --max-time 10 -X POST -H 'Content-Type: application/json' \
		--data "${1:?usage: pms_control JSON}" "$PMS_URL/__control"
}

pms_state() { curl -sS -f --max-time 10 "$PMS_URL/__control/state"; }
pms_log() { curl -sS -f --max-time 10 "$PMS_URL/__control/log"; }
pms_get() { curl -sS -f --max-time 10 -H 'X-Test-Observer: 1' "$PMS_URL${1:?usage: pms_get PATH}"; }

# _adp_true NAME JSON PY_EXPR: PY_EXPR with the JSON bound to NAME.
_adp_true() {
	python3 -c 'import json, sys
globals()[sys.argv[1]] = json.loads(sys.argv[2])
sys.exit(0 if eval(sys.argv[3]) else 1)' "$@"
}
pms_q() {
	local body
	body=$(pms_get "$1") || return 1
	_adp_true d "$body" "$2"
}
log_q() {
	local body
	body=$(pms_log) || return 1
	_adp_true L "$body" "$1"
}
state_q() {
	local body
	body=$(pms_state) || return 1
	_adp_true S "$body" "$1"
}

nginx_sink_start() {
	local port=${1:?usage: nginx_sink_start PORT}
	[ -x "$NGINX" ] || {
		echo "adapters: $NGINX is missing (scripts/bootstrap.sh installs nginx)" >&2
		return 1
	}
	NGINX_SINK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-nginx-sink.XXXXXX") || return 1
	sed -e "s|@DIR@|$NGINX_SINK_DIR|g" -e "s|@PORT@|$port|g" \
		"$ADAPTERS_DIR/nginx-sink.conf" >"$NGINX_SINK_DIR/nginx.conf" || return 1
	# -e: the error log before the configuration is read is ours too, not
	# /var/log/nginx/error.log.
	"${_ADP_PDEATH[@]}" "$NGINX" -p "$NGINX_SINK_DIR/" -c "$NGINX_SINK_DIR/nginx.conf" \
		-e "$NGINX_SINK_DIR/error.log" >"$NGINX_SINK_DIR/stderr" 2>&1 &
	NGINX_SINK_PID=$!
	_adp_track "$NGINX_SINK_PID"
	NGINX_SINK_URL=http://127.0.0.1:$port
	local _
	for _ in $(seq 100); do
		curl -s -o /dev/null --max-time 1 "$NGINX_SINK_URL/" && return 0
		kill -0 "$NGINX_SINK_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "adapters: nginx did not answer on $NGINX_SINK_URL:" >&2
	cat "$NGINX_SINK_DIR/stderr" "$NGINX_SINK_DIR/error.log" 2>/dev/null >&2 || true
	nginx_sink_stop
	return 1
}

nginx_sink_stop() {
	if [ -n "$NGINX_SINK_PID" ]; then
		_adp_stop "$NGINX_SINK_PID" TERM || true # TERM: fast shutdown
		NGINX_SINK_PID=
	fi
	if [ -n "$NGINX_SINK_DIR" ]; then
		rm -rf "$NGINX_SINK_DIR"
		NGINX_SINK_DIR=
	fi
}

adapters_cleanup() {
	pms_stop || true
	nginx_sink_stop
}
