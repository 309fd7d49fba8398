#!/usr/bin/env bash
# status_page_test.sh — the hub's status side (net/rest_status.c) against a
# real `ferry serve --http`, with the page checked in headless Chromium.
#
# Known state, as the hub sees it:
#   branch  trusted, dials the hub and stays connected: online, caught up,
#           nothing pending                                  -> green
#   laptop  trusted, synced once (`ferry sync`) and left: offline, last
#           synced seconds ago                               -> yellow
#   ws://127.0.0.1:<free port>/  dialed by the hub, nobody listens there:
#           offline, never synced                            -> red
# and 6 live records on the hub (3 own clients, 2 patients from the branch,
# 1 appointment from the laptop).
#
# The page is loaded with the key in the URL fragment; the DOM Chromium ends
# up with must show each peer's data-state and pending counts as the API
# reports them, and a screenshot is saved as a test artefact:
# $FERRY_TEST_ARTEFACTS (else the build's artefacts/ directory)/status-page.png.
# Chromium is required: without it the test fails (scripts/bootstrap.sh
# installs it), since a skipped browser test hides a broken page.
#
# usage: status_page_test.sh PATH_TO_FERRY [ARTEFACT_DIR]
. "$(dirname "$0")/lib.sh"

ARTEFACTS=${FERRY_TEST_ARTEFACTS:-${2:-$PWD/artefacts}}
mkdir -p "$ARTEFACTS"
case $ARTEFACTS in /*) ;; *) ARTEFACTS=$PWD/$ARTEFACTS ;; esac
log "artefacts: $ARTEFACTS"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
	die "chromium is not installed: run scripts/bootstrap.sh (it installs Debian's chromium), or set CHROMIUM=/path/to/chromium"
fi

# chromium ARGS...: headless, with none of the background connections a
# closed network refuses, in a fresh profile each time, bounded in time.
chromium() {
	local profile
	profile=$(mktemp -d "$TMP/chromium.XXXXXX")
	timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
		--disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync \
		--user-data-dir="$profile" --virtual-time-budget=5000 "$@" \
		2>>"$TMP/chromium.log"
}

# http METHOD... : GET url [KEY_HEADER_NAME KEY_VALUE]; prints "STATUS",
# a tab, the Content-Type, a newline, then the body.
http() {
	python3 - "$@" <<'EOF'
import sys, urllib.request, urllib.error
url = sys.argv[1]
req = urllib.request.Request(url)
if len(sys.argv) > 3:
    req.add_header(sys.argv[2], sys.argv[3])
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        status, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
except urllib.error.HTTPError as e:
    status, ctype, body = e.code, e.headers.get("Content-Type", ""), e.read()
sys.stdout.write("%d\t%s\n" % (status, ctype))
sys.stdout.write(body.decode("utf-8"))
EOF
}

# api_q EXPR: the Python expression EXPR on /api/sync/status as `d`, with
# `peer(name)` picking a peer by name or URL; exit 0 iff truthy.
api_q() {
	http "$HTTP/api/sync/status" X-API-Key "$KEY" | python3 -c 'import json, sys
head = sys.stdin.readline()
assert head.startswith("200"), head
d = json.load(sys.stdin)
def peer(n):
    ps = [p for p in d["peers"] if p["name"] == n or p["url"] == n]
    assert len(ps) == 1, "%d peers named %s" % (len(ps), n)
    return ps[0]
v = eval(sys.argv[1])
print(v)
sys.exit(0 if v else 1)' "$1"
}

# --- the known state ---------------------------------------------------------
node_init hub
node_init branch
node_init laptop
f hub trust add "$(node_id branch)" --name branch --read clinic-7 --write clinic-7 >/dev/null
f hub trust add "$(node_id laptop)" --name laptop --read clinic-7 --write clinic-7 >/dev/null
f branch trust add "$(node_id hub)" --name hub --read clinic-7 --write clinic-7 >/dev/null
f laptop trust add "$(node_id hub)" --name hub --read clinic-7 --write clinic-7 >/dev/null
for i in 1 2 3; do
	f hub put clinic-7 clients "c$i" name="Client $i"
done
f branch put clinic-7 patients p1 name=Rex species=dog
f branch put clinic-7 patients p2 name=Murka species=cat
f laptop put clinic-7 appointments a1 patient=p1 at=2024-06-01
DEAD_URL="ws://127.0.0.1:$(free_port)/"
f hub peer add "$DEAD_URL" >/dev/null

serve_start hub --http 127.0.0.1:0
HTTP=http://$(python3 -c 'import json, sys
print(json.loads(open(sys.argv[1]).readline())["http"])' "$TMP/hub.serve.out")
log "hub at ${URL[hub]}, HTTP at $HTTP"

KEY=
for i in $(seq 50); do
	KEY=$(f hub apikey create --name status-test --read '*' --write '*' 2>/dev/null |
		grep -oE 'fk_[A-Za-z0-9_-]{43}' | head -n 1) && [ -n "$KEY" ] && break
	sleep 0.1
done
[ -n "$KEY" ] || die "ferry apikey create gave no key"

f laptop sync "${URL[hub]}" >/dev/null 2>&1 || die "the laptop could not sync with the hub"
f branch peer add "${URL[hub]}" >/dev/null
serve_start branch
check_within 30 "the hub's status shows branch green, laptop yellow, the dead URL red" \
	api_q 'peer("branch")["indicator"] == "green" and peer("laptop")["indicator"] == "yellow" and peer("'"$DEAD_URL"'")["indicator"] == "red" and d["node"]["records"] == 6'

# --- /api/sync/status ----------------------------------------------------------
check "status: node figures" api_q 'd["node"]["id"] == "'"$(node_id hub)"'" and d["node"]["changes"] == 6 and d["node"]["peers_connected"] == 1'
check "status: branch online, caught up, has synced" \
	api_q 'peer("branch")["state"] == "online" and peer("branch")["pending_send"] == 0 and peer("branch")["pending_recv"] == 0 and peer("branch")["last_sync_ms"] > 0 and peer("branch")["id"] == "'"$(node_id branch)"'"'
check "status: laptop offline with a recent sync" \
	api_q 'peer("laptop")["state"] == "offline" and 0 < d["time_ms"] - peer("laptop")["last_sync_ms"] < 300000'
check "status: dead URL offline, never synced, with its error" \
	api_q 'peer("'"$DEAD_URL"'")["state"] == "offline" and peer("'"$DEAD_URL"'")["last_sync_ms"] == 0 and peer("'"$DEAD_URL"'")["last_error"]'
check "status: summary counts one of each colour" \
	api_q 'd["summary"] == {"green": 1, "yellow": 1, "red": 1} and len(d["peers"]) == 3'
check "status: Authorization: Bearer works too" \
	output_has '^200' http "$HTTP/api/sync/status" Authorization "Bearer $KEY"
check "status: 401 without a key" output_has '^401' http "$HTTP/api/sync/status"
check "status: 401 with a wrong key" output_has '^401' http "$HTTP/api/sync/status" X-API-Key fk_wrong

# --- /healthz, /metrics -------------------------------------------------------
check "healthz: 200 without a key" output_has '^\{"status": ?"ok"\}$' http "$HTTP/healthz"
check "metrics: 401 without a key" output_has '^401' http "$HTTP/metrics"
http "$HTTP/metrics" X-API-Key "$KEY" >"$TMP/metrics.txt"
cp "$TMP/metrics.txt" "$ARTEFACTS/metrics.txt"

# metrics_ok: the exposition format 0.0.4, line by line, and the figures
# the known state implies.
metrics_ok() {
	python3 - "$TMP/metrics.txt" <<'EOF'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
head = lines.pop(0)
assert head.startswith("200\ttext/plain; version=0.0.4"), head
assert lines[-1] == "", "no final newline"
lines.pop()
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (\S+)$" % (name, label, label))
types, helps, samples = {}, set(), {}
for ln in lines:
    if ln.startswith("# HELP "):
        helps.add(ln.split(" ")[2])
        continue
    if ln.startswith("# TYPE "):
        _, _, n, t = ln.split(" ")
        assert t in ("counter", "gauge", "histogram", "summary", "untyped"), ln
        assert n not in types, "TYPE twice: " + ln
        types[n] = t
        continue
    assert not ln.startswith("#"), "stray comment: " + ln
    m = sample.match(ln)
    assert m, "not a sample line: %r" % ln
    v = m.group(3)
    assert v in ("+Inf", "-Inf", "NaN") or float(v) is not None, ln
    family = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) \
        if types.get(re.sub(r"_(bucket|sum|count)$", "", m.group(1))) == "histogram" \
        else m.group(1)
    assert family in types, "sample before its TYPE: " + ln
    key = m.group(1) + (m.group(2) or "")
    assert key not in samples, "duplicate series: " + ln
    samples[key] = float(v)
assert set(types) == helps, "HELP and TYPE differ"
def get(k):
    assert k in samples, "missing " + k
    return samples[k]
assert get('ferry_records{scope="clinic-7",collection="clients"}') == 3
assert get('ferry_records{scope="clinic-7",collection="patients"}') == 2
assert get('ferry_records{scope="clinic-7",collection="appointments"}') == 1
assert get("ferry_changes_total") == 6
assert get("ferry_peers_connected") == 1
assert get("ferry_changes_applied_total") >= 2
for k in ("ferry_changes_sent_total", "ferry_conflicts_total",
          "ferry_http_unauthorized_total", "ferry_http_unmatched_total",
          'ferry_http_bytes_total{direction="in"}',
          'ferry_http_bytes_total{direction="out"}'):
    get(k)
assert get("ferry_http_unauthorized_total") >= 3
r = 'method="GET",route="/api/sync/status"'
assert get('ferry_http_requests_total{%s,code_class="2xx"}' % r) >= 1
assert get('ferry_http_request_duration_seconds_bucket{%s,le="+Inf"}' % r) \
    == get("ferry_http_request_duration_seconds_count{%s}" % r) >= 1
assert types["ferry_http_request_duration_seconds"] == "histogram"
# Buckets are cumulative.
b = [v for k, v in samples.items()
     if k.startswith("ferry_http_request_duration_seconds_bucket{%s," % r)]
assert b == sorted(b), b
assert get('ferry_peers{indicator="green"}') == 1
assert get('ferry_peers{indicator="red"}') == 1
print("ok: %d samples in %d families" % (len(samples), len(types)))
EOF
}
check "metrics: valid exposition format with the known figures" metrics_ok

# --- the page in Chromium -----------------------------------------------------
check "page: / is public HTML" output_has $'^200\ttext/html' http "$HTTP/"

# dom_q FILE EXPR: parse a DOM dump; `rows` maps data-peer to a dict of
# the row's data-state, indicator state and pending counts, `ids` maps
# element ids to (text, attributes); exit 0 iff EXPR is truthy.
dom_q() {
	python3 - "$@" <<'EOF'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.ids, self.stack, self.row = {}, {}, [], None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "tr" and "data-peer" in a:
            self.row = self.rows.setdefault(a["data-peer"], {"state": a.get("data-state")})
        if self.row is not None and "indicator" in cls:
            self.row["indicator"] = a.get("data-state")
        if self.row is not None and "pending-send" in cls:
            self.row["send"] = a.get("data-count")
        if self.row is not None and "pending-recv" in cls:
            self.row["recv"] = a.get("data-count")
        if "id" in a:
            self.ids[a["id"]] = ["", a]
        if tag not in ("meta", "link", "input", "br", "img"):
            self.stack.append(a.get("id"))
    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        if tag not in ("meta", "link", "input", "br", "img") and self.stack:
            self.stack.pop()
    def handle_data(self, data):
        for i in self.stack:
            if i:
                self.ids[i][0] += data
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
rows, ids = p.rows, p.ids
def text(i):
    return ids[i][0].strip()
def shown(i):
    return "hidden" not in ids[i][1]
v = eval(sys.argv[2])
print(v if v else "false; rows=%r" % rows)
sys.exit(0 if v else 1)
EOF
}

chromium --dump-dom "$HTTP/#key=$KEY" >"$TMP/page.html" || die "chromium failed (see $TMP/chromium.log)"
cp "$TMP/page.html" "$ARTEFACTS/status-page.html"
check "page: branch green, nothing pending either way" \
	dom_q "$TMP/page.html" 'rows["branch"] == {"state": "green", "indicator": "green", "send": "0", "recv": "0"}'
check "page: laptop yellow" \
	dom_q "$TMP/page.html" 'rows["laptop"]["state"] == rows["laptop"]["indicator"] == "yellow" and rows["laptop"]["send"] == rows["laptop"]["recv"] == "0"'
check "page: the dead URL red" \
	dom_q "$TMP/page.html" 'rows["'"$DEAD_URL"'"]["state"] == rows["'"$DEAD_URL"'"]["indicator"] == "red"'
check "page: exactly three peers" dom_q "$TMP/page.html" 'len(rows) == 3'
check "page: node figures and colour counts" \
	dom_q "$TMP/page.html" 'text("records") == "6" and text("changes") == "6" and text("connected") == "1" and (text("sum-green"), text("sum-yellow"), text("sum-red")) == ("1", "1", "1")'
check "page: says when it was last updated, shows no problem" \
	dom_q "$TMP/page.html" 'text("updated").startswith("Last updated") and not shown("problem") and shown("status") and not shown("key-form")'

chromium --dump-dom "$HTTP/" >"$TMP/nokey.html" || die "chromium failed (see $TMP/chromium.log)"
check "page without a key asks for one" \
	dom_q "$TMP/nokey.html" 'shown("key-form") and not shown("status") and not rows'
chromium --dump-dom "$HTTP/#key=fk_wrong" >"$TMP/badkey.html" || die "chromium failed (see $TMP/chromium.log)"
check "page with a wrong key says it was refused" \
	dom_q "$TMP/badkey.html" 'shown("key-form") and "refused" in text("problem") and not rows'

rm -f "$ARTEFACTS/status-page.png"
chromium --window-size=1200,800 --screenshot="$ARTEFACTS/status-page.png" \
	"$HTTP/#key=$KEY" >/dev/null || die "chromium failed (see $TMP/chromium.log)"
check "page: screenshot saved" python3 -c 'import sys
b = open(sys.argv[1], "rb").read()
sys.exit(0 if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) > 10000 else 1)' "$ARTEFACTS/status-page.png"
log "screenshot: $ARTEFACTS/status-page.png"

# --- live: the page's data follows the hub -------------------------------------
serve_stop branch
check_within 20 "the branch shows yellow once it is gone" api_q 'peer("branch")["indicator"] == "yellow"'
check_within 20 "metrics: no peer connected any more" \
	output_has '^ferry_peers_connected 0$' http "$HTTP/metrics" X-API-Key "$KEY"

finish
