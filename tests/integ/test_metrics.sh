#!/usr/bin/env bash
# test_metrics.sh — GET /metrics and /healthz on the REST API: operations
# through volctl (three creates, a refused one, mounts and unmounts, a
# remove) counted exactly by front-end, op and result; the gauges match the
# state; every line of the scrape is exposition syntax; /healthz is 200 ok,
# and 503 with a reason when the state directory is not writable; over
# HTTPS both need the bearer token; --log-format json lines are JSON.
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl not installed (make deps-test)"

# scrape: METRICS = the body of GET /metrics on the unix socket; checks the
# status and the content type.
scrape() {
	local out
	out=$(curl -s --max-time 10 --unix-socket "$VD_API" -D "$T/.hdrs" -w '\n%{http_code}' \
		http://localhost/metrics) || fail "curl /metrics failed"
	assert_eq 200 "${out##*$'\n'}" "status of GET /metrics"
	METRICS=${out%$'\n'*}
	[[ $METRICS == *$'\n' ]] || fail "/metrics does not end with a newline"
	METRICS=${METRICS%$'\n'}
	assert_contains "$(tr -d '\r' <"$T/.hdrs")" \
		"Content-Type: text/plain; version=0.0.4; charset=utf-8" "content type of /metrics"
}

# exposition_check: every line of METRICS is a HELP, a TYPE or a sample of
# the family last described; each family once; histograms complete.
exposition_check() {
	printf '%s\n' "$METRICS" | "$PY" -c '
import re, sys
help_re = re.compile(r"^# HELP (volumed_[a-z_]+) \S.*$")
type_re = re.compile(r"^# TYPE (volumed_[a-z_]+) (counter|gauge|histogram)$")
sample_re = re.compile(r"^(volumed_[a-z_]+)(\{([a-z_]+=\"[^\"\\\n]*\",)*[a-z_]+=\"[^\"\\\n]*\"\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf|NaN)$")
seen, family, kind = set(), None, None
for n, line in enumerate(sys.stdin.read().splitlines(), 1):
    m = help_re.match(line)
    if m:
        family = m.group(1)
        if family in seen: sys.exit("line %d: %s described twice" % (n, family))
        seen.add(family); kind = None; continue
    m = type_re.match(line)
    if m:
        if m.group(1) != family: sys.exit("line %d: TYPE of %s after HELP of %s" % (n, m.group(1), family))
        kind = m.group(2); continue
    m = sample_re.match(line)
    if not m: sys.exit("line %d is not exposition syntax: %r" % (n, line))
    name = m.group(1)
    ok = name == family or (kind == "histogram" and name in (family + "_bucket", family + "_sum", family + "_count"))
    if not ok or kind is None: sys.exit("line %d: sample %s outside its family %s" % (n, name, family))
print(len(seen))
' || fail "the scrape is not valid exposition text:
$METRICS"
}

# metric SAMPLE: the value of the sample line that starts with SAMPLE + " "
# ("<none>" when absent).
metric() {
	local v
	v=$(printf '%s\n' "$METRICS" | awk -v k="$1" 'substr($0, 1, length(k) + 1) == k " " { print $NF; exit }')
	echo "${v:-<none>}"
}

assert_metric() {
	assert_eq "$2" "$(metric "$1")" "$1"
}

ops() {
	echo "volumed_operations_total{frontend=\"api\",op=\"$1\",result=\"$2\"}"
}

# ---------------------------------------------------------------- unix socket

volumed_start --log-format json

scenario "a fresh daemon: no operations yet, gauges at zero, valid exposition"
scrape
exposition_check
assert_metric 'volumed_build_info{version="0.1.0"}' 1
assert_metric 'volumed_volumes{driver="local"}' 0
assert_metric volumed_mounted_volumes 0
assert_metric volumed_mount_references 0
assert_metric volumed_attachments 0
assert_metric 'volumed_moves_total{kind="graceful"}' 0
assert_metric 'volumed_fences_total{kind="self"}' 0
assert_metric "$(ops create ok)" "<none>"
start=$(metric volumed_start_time_seconds)
now=$(date +%s)
((${start%.*} <= now && ${start%.*} > now - 60)) || fail "start time $start is not within the last minute ($now)"
(($(metric volumed_resident_memory_bytes) > 1000000)) || fail "resident memory $(metric volumed_resident_memory_bytes)"
fds=$(metric volumed_open_fds)
live=$(ls "/proc/$VD_PID/fd" | wc -l)
((fds > 3 && fds >= live - 3 && fds <= live + 3)) || fail "open fds $fds, /proc says $live"

scenario "operations counted exactly by op and result; gauges follow the state"
assert_ok volctl create m1
assert_ok volctl create m2
assert_ok volctl create m3
assert_fails volctl create 'bad/name'
assert_fails volctl mount nosuch
assert_ok volctl mount m1 --id a
assert_ok volctl mount m1 --id b
assert_ok volctl mount m2 --id a
scrape
exposition_check
assert_metric "$(ops create ok)" 3
# a path with a quote, a backslash, a newline and a byte that is not UTF-8:
# counted under the fixed op "route", quoted in the log (checked below)
curl -s --unix-socket "$VD_API" 'http://localhost/v1/%22quoted%22%5Cback%0Aline%FF' >/dev/null
# volctl checks the name itself; a bad name sent straight is the API's to refuse
curl -s --unix-socket "$VD_API" -X POST -d '{"name":"bad name"}' http://localhost/v1/volumes >/dev/null
assert_metric "$(ops create invalid)" "<none>"
assert_metric "$(ops mount ok)" 3
assert_metric "$(ops mount not-found)" 1
assert_metric 'volumed_volumes{driver="local"}' 3
assert_metric volumed_mounted_volumes 2
assert_metric volumed_mount_references 3
assert_metric volumed_attachments 2
assert_metric 'volumed_operation_duration_seconds_count{frontend="api",op="create"}' 3
assert_metric 'volumed_operation_duration_seconds_bucket{frontend="api",op="create",le="+Inf"}' 3
assert_metric 'volumed_operation_duration_seconds_count{frontend="api",op="mount"}' 4
scrape
assert_metric "$(ops create invalid)" 1
assert_metric "$(ops route not-found)" 1
assert_metric 'volumed_operation_duration_seconds_count{frontend="api",op="create"}' 4
assert_ok volctl unmount m1 --id a
assert_ok volctl unmount m1 --id b
assert_ok volctl unmount m2 --id a
assert_fails volctl rm nosuch
assert_ok volctl rm m3
scrape
exposition_check
assert_metric "$(ops unmount ok)" 3
assert_metric "$(ops remove ok)" 1
assert_metric "$(ops remove not-found)" 1
assert_metric 'volumed_volumes{driver="local"}' 2
assert_metric volumed_mounted_volumes 0
assert_metric volumed_mount_references 0
assert_metric volumed_attachments 0
# scrapes and health checks are not operations
assert_metric "$(ops metrics ok)" "<none>"
assert_metric 'volumed_backend_errors_total{driver="local"}' "<none>"

scenario "/healthz: 200 ok; 503 with the reason when the state directory is read-only"
out=$(curl -s --unix-socket "$VD_API" -w ' %{http_code}' http://localhost/healthz)
assert_eq "ok
 200" "$out" "healthz while serving"
mount --bind "$VD_STATE" "$VD_STATE" && mount -o remount,bind,ro "$VD_STATE" ||
	fail "cannot make $VD_STATE read-only"
out=$(curl -s --unix-socket "$VD_API" -w '\n%{http_code}' http://localhost/healthz)
umount "$VD_STATE" || fail "cannot undo the read-only bind on $VD_STATE"
assert_eq 503 "${out##*$'\n'}" "healthz status with a read-only state directory"
body=${out%$'\n'*}
assert_eq 1 "$(printf '%s\n' "$body" | grep -c .)" "one line of reason"
assert_contains "$body" "state directory $VD_STATE is not writable" "healthz reason"
out=$(curl -s --unix-socket "$VD_API" -w ' %{http_code}' http://localhost/healthz)
assert_eq "ok
 200" "$out" "healthz after the state directory is writable again"

scenario "--log-format json: every line of the log is a JSON object; operations carry their fields"
volumed_stop
"$PY" - "$VD_LOG" <<'PY' || fail "the JSON log does not parse: $(tail -n 5 "$VD_LOG")"
import collections, json, sys
ops = collections.Counter()
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if line.startswith("### "):   # the harness's own notes
        continue
    d = json.loads(line)
    assert isinstance(d, dict) and {"ts", "level", "msg"} <= d.keys(), (n, line)
    if "op" in d:
        assert d["frontend"] == "api" and isinstance(d["ms"], float), line
        assert ("ok" in d) != ("err" in d) and d.get("ok", True) is True, line
        ops[(d["op"], d["volume"], "err" in d)] += 1
        if d["op"] == "create" and "err" in d:
            assert "' ' at position 4" in d["err"] and d["volume"] == "-", line
        if d["op"] == "route":   # the path, decoded, quoted in the message
            assert '/v1/"quoted"\\back\nline?' in d["err"], line
want = {("create", "m1", False): 1, ("create", "m2", False): 1, ("create", "m3", False): 1,
        ("create", "-", True): 1, ("mount", "nosuch", True): 1, ("mount", "m1", False): 2,
        ("mount", "m2", False): 1, ("unmount", "m1", False): 2, ("unmount", "m2", False): 1,
        ("remove", "nosuch", True): 1, ("remove", "m3", False): 1, ("route", "-", True): 1}
got = {k: v for k, v in ops.items() if k[0] != "status"}
assert got == want, got
PY

# ---------------------------------------------------------------- HTTPS

scenario "over HTTPS /metrics and /healthz need the bearer token like every route"
PKI=$T/pki
tls_pki_make "$PKI" || fail "openssl: $(tail -n 5 "$PKI/openssl.log")"
openssl rand -hex 32 >"$T/token" && chmod 600 "$T/token"
TOKEN=$(cat "$T/token")
for ((k = 0; k < 400; k++)); do
	port=$((24000 + ($$ + k) % 400))
	nfs_port_free "$port" && break
done
volumed_start --listen "127.0.0.1:$port" --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" \
	--token-file "$T/token"
for path in /metrics /healthz; do
	code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.pem" "https://127.0.0.1:$port$path")
	assert_eq 401 "$code" "GET $path over HTTPS without the token"
	code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.pem" \
		-H "Authorization: Bearer wrong-token-0123456789" "https://127.0.0.1:$port$path")
	assert_eq 401 "$code" "GET $path over HTTPS with a wrong token"
done
METRICS=$(curl -s --cacert "$PKI/ca.pem" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$port/metrics")
exposition_check
assert_metric 'volumed_volumes{driver="local"}' 2
out=$(curl -s --cacert "$PKI/ca.pem" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$port/healthz")
assert_eq ok "$out" "healthz over HTTPS with the token"
log "PASS"
