# lib.sh — shared helpers for the network integration tests (tests/net/*.sh).
#
# Sourced by a test script after it sets nothing; the script's first argument
# is the ferry binary. Gives the script:
#   - $FERRY, $TMP (a fresh mktemp -d, removed on success, kept on failure),
#     strict mode (set -Eeuo pipefail) and an EXIT trap that kills every
#     process the script started and prints diagnostics on failure;
#   - node helpers: node_init NAME, f NAME ARGS... (ferry --dir $TMP/NAME),
#     node_id NAME, serve_start NAME [SERVE_ARGS...] (listens on 127.0.0.1,
#     port 0 unless --listen is given; sets URL[NAME]), serve_stop NAME
#     (SIGTERM, bounded wait), serve_kill NAME (SIGKILL), bg CMD... (any
#     other background process, killed on exit);
#   - free_port (a free TCP port on 127.0.0.1, for restarts on a fixed port);
#   - wait_until TIMEOUT_S DESC CMD... (poll, die with DESC on timeout),
#     check_within (the same, counted as a passed check);
#   - output_has ERE CMD... (CMD's stdout has a line matching ERE);
#   - digest NODE [SCOPE], digests_equal SCOPE NODE..., status_json NODE,
#     status_q NODE PY_EXPR (Python expression on the status JSON `d`),
#     peer_q NODE PEER_NAME PY_EXPR (on the peer entry `p`);
#   - check DESC CMD... (counted pass/fail, continues), die MSG (fail now),
#     finish (prints "N passed, M failed" and exits accordingly).
#
# Failures print the node logs (`ferry serve` stderr) and `ferry status` of
# every node, so a CI log alone explains what went wrong.

set -Eeuo pipefail

FERRY=${1:?usage: $0 PATH_TO_FERRY [...]}
case $FERRY in /*) ;; *) FERRY=$PWD/$FERRY ;; esac
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferry-$TEST_NAME.XXXXXX")

passed=0
failed=0
NODES=()
declare -A SERVE_PID=()
declare -A URL=()
BG_PIDS=()
_dumped=0
_finished=0
_t0=${EPOCHREALTIME/./}

# now_ms: wall clock in milliseconds (no process started).
now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# elapsed: seconds since the script started, e.g. 12.3
elapsed() {
	local t=${EPOCHREALTIME/./}
	local ds=$(((t - _t0) / 100000))
	echo "$((ds / 10)).$((ds % 10))"
}

log() {
	echo "[$TEST_NAME $(elapsed)s] $*"
}

# ---------------------------------------------------------------------------
# Diagnostics, cleanup
# ---------------------------------------------------------------------------

dump_nodes() {
	[ "$_dumped" -eq 0 ] || return 0
	_dumped=1
	local n
	echo "---------------------------------------------------------------- diagnostics"
	for n in "${NODES[@]}"; do
		echo "=== $n: ferry status"
		"$FERRY" --dir "$TMP/$n" status 2>&1 | sed 's/^/  /' || true
		local logf
		for logf in "$TMP/$n".serve*.log; do
			[ -e "$logf" ] || continue
			echo "=== $n: $(basename "$logf") (last 150 lines)"
			tail -n 150 "$logf" | sed 's/^/  /'
		done
	done
	echo "---------------------------------------------------------------- end"
}

_kill_all() {
	local pid pids=()
	for pid in "${SERVE_PID[@]}" "${BG_PIDS[@]}"; do
		[ -n "$pid" ] && pids+=("$pid")
	done
	[ "${#pids[@]}" -gt 0 ] || return 0
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	# Bounded grace period, then SIGKILL whatever is left.
	local i
	for i in $(seq 50); do
		local alive=0
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" -eq 0 ] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

_on_exit() {
	local rc=$?
	set +eE
	trap - ERR
	if [ "$_finished" -eq 0 ]; then
		# The script stopped early (die, a failed command under set -e,
		# or a signal): show the nodes as they are, then stop them.
		[ "$rc" -ne 0 ] || rc=1
		dump_nodes
		_kill_all
		echo "$TEST_NAME: aborted after $passed passed, $((failed + 1)) failed (exit $rc) in $(elapsed)s"
	fi
	_kill_all
	if [ "$rc" -eq 0 ]; then
		rm -rf "$TMP"
	else
		echo "kept $TMP for inspection"
	fi
	exit "$rc"
}
trap _on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "FAIL: command failed at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR

die() {
	echo "FAIL: $*"
	exit 1
}

# check DESC CMD...: CMD must succeed. Counted; the script goes on.
check() {
	local desc=$1
	shift
	if "$@" >"$TMP/.check.out" 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL: $desc"
		head -n 30 "$TMP/.check.out" | sed 's/^/  | /'
	fi
}

# require DESC CMD...: as check, but the rest of the script depends on it.
require() {
	local desc=$1
	shift
	if "$@" >"$TMP/.check.out" 2>&1; then
		passed=$((passed + 1))
	else
		head -n 30 "$TMP/.check.out" | sed 's/^/  | /'
		die "$desc"
	fi
}

# sanitizer_reports: print (and count as a failure) any AddressSanitizer,
# LeakSanitizer or UBSan report in the serve logs.
sanitizer_reports() {
	local logf
	for logf in "$TMP"/*.serve.log; do
		[ -e "$logf" ] || continue
		if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$logf"; then
			failed=$((failed + 1))
			echo "FAIL: sanitizer report in $(basename "$logf"):"
			grep -E -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$logf" | head -60 | sed 's/^/  | /'
		fi
	done
}

# finish: stop every node still serving (cleanly: their exit status counts),
# look for sanitizer reports, print the summary and exit.
finish() {
	local n
	for n in "${!SERVE_PID[@]}"; do
		serve_stop "$n"
	done
	sanitizer_reports
	_finished=1
	if [ "$failed" -ne 0 ]; then
		dump_nodes
		echo "$TEST_NAME: done in $(elapsed)s"
		echo "$passed passed, $failed failed"
		exit 1
	fi
	echo "$TEST_NAME: done in $(elapsed)s"
	echo "$passed passed, 0 failed"
	exit 0
}

# ---------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------

# wait_until TIMEOUT_S DESC CMD...: poll CMD (quietly) until it succeeds;
# die with DESC after TIMEOUT_S seconds.
wait_until() {
	local timeout=$1 desc=$2
	shift 2
	local deadline
	deadline=$(($(now_ms) + timeout * 1000))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$(now_ms)" -ge "$deadline" ]; then
			die "timed out after ${timeout}s waiting until $desc"
		fi
		sleep 0.05
	done
}

# check_within TIMEOUT_S DESC CMD...: wait_until, counted as a passed check.
check_within() {
	wait_until "$@"
	passed=$((passed + 1))
}

# ---------------------------------------------------------------------------
# Nodes and processes
# ---------------------------------------------------------------------------

f() {
	local n=$1
	shift
	"$FERRY" --dir "$TMP/$n" "$@"
}

node_init() {
	local n=$1
	f "$n" init >/dev/null
	NODES+=("$n")
}

node_id() {
	f "$1" id
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

_PDEATH=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig KILL true 2>/dev/null; then
	_PDEATH=(setpriv --pdeathsig KILL --)
fi

# serve_start NAME [SERVE_ARGS...]: run `ferry serve` on node NAME in the
# background (stdout: the --json welcome line, stderr: the log, appended to
# $TMP/NAME.serve.log across restarts) and wait until it listens. Unless
# SERVE_ARGS has --listen or --no-listen it listens on 127.0.0.1:0; the port
# it got is in URL[NAME] (ws://127.0.0.1:PORT/).
serve_start() {
	local n=$1
	shift
	local listen=(--listen 127.0.0.1:0) a
	for a in "$@"; do
		case $a in --listen | --listen=* | --no-listen) listen=() ;; esac
	done
	local out="$TMP/$n.serve.out"
	: >"$out"
	echo "----- serve ${listen[*]} $* (started at $(elapsed)s)" >>"$TMP/$n.serve.log"
	# With setpriv, a serve process dies with this script even when the
	# script is SIGKILLed (a test-runner timeout), so none is orphaned.
	"${_PDEATH[@]}" "$FERRY" --dir "$TMP/$n" serve --json "${listen[@]}" "$@" \
		>"$out" 2>>"$TMP/$n.serve.log" &
	SERVE_PID[$n]=$!
	local deadline=$(($(date +%s) + 30))
	while ! grep -q '"listen"' "$out" 2>/dev/null; do
		if ! kill -0 "${SERVE_PID[$n]}" 2>/dev/null; then
			wait "${SERVE_PID[$n]}" 2>/dev/null || true
			SERVE_PID[$n]=
			die "ferry serve on $n exited at start"
		fi
		[ "$(date +%s)" -lt "$deadline" ] || die "ferry serve on $n did not start in 30s"
		sleep 0.02
	done
	local addr
	addr=$(python3 -c 'import json, sys
print(json.loads(open(sys.argv[1]).readline())["listen"])' "$out")
	if [ -n "$addr" ]; then URL[$n]="ws://$addr/"; else URL[$n]=; fi
}

# serve_stop NAME: SIGTERM (clean shutdown), wait at most 15 s, then SIGKILL.
serve_stop() {
	local n=$1 pid=${SERVE_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for i in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	local hung=0 rc=0
	if kill -0 "$pid" 2>/dev/null; then
		hung=1
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	SERVE_PID[$n]=
	# A clean shutdown exits 0; anything else (a hang, a crash, a
	# sanitizer report at exit) is a failure of ferry serve.
	if [ "$hung" -eq 1 ]; then
		failed=$((failed + 1))
		echo "FAIL: ferry serve on $n ignored SIGTERM for 15s (killed)"
	elif [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		echo "FAIL: ferry serve on $n exited with status $rc on SIGTERM"
	fi
}

# serve_kill NAME: SIGKILL, no chance to clean up.
serve_kill() {
	local n=$1 pid=${SERVE_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	SERVE_PID[$n]=
}

serve_running() {
	local pid=${SERVE_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# bg CMD...: run CMD in the background; its pid is killed on exit. The pid is
# in $BG_LAST.
bg() {
	"$@" &
	BG_LAST=$!
	BG_PIDS+=("$BG_LAST")
}

# exited PID...: none of the PIDs is running any more.
exited() {
	local pid
	for pid in "$@"; do
		! kill -0 "$pid" 2>/dev/null || return 1
	done
}

# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------

# output_has ERE CMD...: CMD succeeds and its stdout has a line matching ERE.
output_has() {
	local re=$1 out
	shift
	out=$("$@") || return 1
	grep -qE -- "$re" <<<"$out"
}

# digest NODE [SCOPE]
digest() {
	if [ $# -gt 1 ]; then f "$1" digest --scope "$2"; else f "$1" digest; fi
}

# digests_equal SCOPE NODE...: every node's digest of SCOPE ("" = all) is
# the same.
digests_equal() {
	local scope=$1 first="" d n
	shift
	for n in "$@"; do
		if [ -n "$scope" ]; then d=$(digest "$n" "$scope"); else d=$(digest "$n"); fi
		[ -n "$first" ] || first=$d
		[ "$d" = "$first" ] || return 1
	done
}

# show_digests SCOPE NODE...: print them (for failure messages).
show_digests() {
	local scope=$1 n
	shift
	for n in "$@"; do
		echo "  $n digest ${scope:-(all)}: $(if [ -n "$scope" ]; then digest "$n" "$scope"; else digest "$n"; fi)"
	done
}

status_json() {
	f "$1" status --json
}

# status_q NODE EXPR: evaluate the Python expression EXPR with `d` the
# node's `status --json` document; print the result; exit 0 iff truthy.
status_q() {
	local n=$1 expr=$2
	status_json "$n" | python3 -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v)
sys.exit(0 if v else 1)' "$expr"
}

# peer_q NODE PEER_NAME EXPR: as status_q with `p` the first entry of the
# node's status "peers" whose name is PEER_NAME (a failure if none).
peer_q() {
	local n=$1 name=$2 expr=$3
	status_json "$n" | python3 -c 'import json, sys
d = json.load(sys.stdin)
ps = [p for p in d["peers"] if p.get("name") == sys.argv[1]]
if not ps:
    print("no peer named %s in status" % sys.argv[1])
    sys.exit(1)
p = ps[0]
v = eval(sys.argv[2])
print(v)
sys.exit(0 if v else 1)' "$name" "$expr"
}

# changes NODE: the node's number of changes (status "changes").
changes() {
	status_json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["changes"])'
}

# vector_json NODE: the version vector as sorted JSON lines
# "origin scope seq head", for comparing nodes.
vector_lines() {
	f "$1" vector --json | python3 -c 'import json, sys
for e in sorted(json.load(sys.stdin), key=lambda e: (e["origin"], e["scope"])):
    print(e["origin"], e["scope"], e["seq"], e["head"])'
}
