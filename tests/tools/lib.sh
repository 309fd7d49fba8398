# lib.sh — what the `ferry` command tests share: a temporary directory kept
# on failure, pass/fail counting, and checks on exit codes, output and JSON.
# Sourced after FERRY is set.

TMP=$(mktemp -d)
passed=0
failed=0

cleanup() {
	if [ "$failed" -eq 0 ]; then
		rm -rf "$TMP"
	else
		echo "kept $TMP for inspection"
	fi
}
trap cleanup EXIT

pass() {
	passed=$((passed + 1))
}

fail() {
	failed=$((failed + 1))
	echo "FAIL: $1"
	if [ -s "$TMP/out" ]; then sed 's/^/  stdout: /' "$TMP/out" | head -20; fi
	if [ -s "$TMP/err" ]; then sed 's/^/  stderr: /' "$TMP/err" | head -20; fi
}

# run CMD...: run with stdout in $TMP/out and stderr in $TMP/err; sets $rc.
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
}

# ok DESC CMD...: CMD must exit 0.
ok() {
	local desc=$1
	shift
	run "$@"
	if [ "$rc" -eq 0 ]; then pass; else fail "$desc (exit $rc)"; fi
}

# exits DESC CODE CMD...: CMD must exit with CODE.
exits() {
	local desc=$1 code=$2
	shift 2
	run "$@"
	if [ "$rc" -eq "$code" ]; then pass; else fail "$desc (exit $rc, want $code)"; fi
}

# expect DESC CONDITION...: a test(1) or other command that must succeed.
expect() {
	local desc=$1
	shift
	if "$@"; then pass; else fail "$desc"; fi
}

# py EXPR FILE: EXPR (Python, with `d` the JSON document in FILE) is true.
py() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[2]))
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$2"
}

# pylines EXPR FILE: EXPR (with `ls` the list of JSON lines in FILE) is true.
pylines() {
	python3 -c 'import json, sys
ls = [json.loads(line) for line in open(sys.argv[2])]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$2"
}

grep_out() {
	grep -q -- "$1" "$TMP/out"
}

grep_err() {
	grep -q -- "$1" "$TMP/err"
}
