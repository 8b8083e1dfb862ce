#!/usr/bin/env bash
# test_malformed.sh — raw requests on the Docker plugin socket: the protocol
# as dockerd speaks it, then malformed and hostile requests. Every bad request
# must get a JSON body with a non-empty "Err" (or 413 for an oversized body),
# change nothing on disk or in the catalog, and leave the daemon serving.
source "$(dirname "$0")/lib.sh"

volumed_start

mkdir -p "$T/canary"
echo keep >"$T/canary/file"

# snapshot: the catalog, the driver's directory and the test directory.
snapshot() {
	printf '%s|%s|%s' "$(volctl --json ls | vol_names | tr '\n' ' ')" \
		"$(ls -A "$VD_STATE/local" 2>/dev/null | tr '\n' ' ')" \
		"$(find "$T" -maxdepth 1 -type d | sort | tr '\n' ' ')"
}

# err_of BODY: the Err field ("<missing>", "<not-json>" when there is none).
err_of() {
	jget Err <<<"$1"
}

# expect_ok WHAT: the last plugin_req answered 200 with an empty Err.
expect_ok() {
	[[ $PSTATUS == 200 ]] || fail "$1: HTTP $PSTATUS, body: $PBODY"
	local e
	e=$(err_of "$PBODY")
	[[ -z $e || $e == "<missing>" ]] || fail "$1: unexpected Err: $e"
}

BEFORE=""
# expect_rejected WHAT [allow413]: a non-empty Err, nothing changed, alive.
expect_rejected() {
	local e
	e=$(err_of "$PBODY")
	if [[ ${2:-} == allow413 && $PSTATUS == 413 ]]; then
		:
	elif [[ $e == "<not-json>" || $e == "<missing>" || -z $e ]]; then
		fail "$1: expected a JSON body with a non-empty Err; got HTTP $PSTATUS, body: ${PBODY:0:300}"
	fi
	log "  $1 -> HTTP $PSTATUS Err: ${e:0:120}"
	vd_alive || fail "$1: volumed died"
	volctl --json status >/dev/null 2>&1 || fail "$1: volumed stopped answering its API"
	local now
	now=$(snapshot)
	[[ $now == "$BEFORE" ]] || fail "$1: state changed:
before: $BEFORE
after:  $now"
	assert_eq "keep" "$(cat "$T/canary/file" 2>/dev/null)" "$1: canary directory outside the state dir"
}

post() {  # post ENDPOINT BODY
	plugin_req POST "$1" --data-binary "$2"
}

scenario "the protocol as dockerd speaks it"
post Plugin.Activate ""
expect_ok "Activate"
assert_contains "$(jget Implements <<<"$PBODY")" '"VolumeDriver"' "Activate Implements"
post VolumeDriver.Capabilities '{}'
expect_ok "Capabilities"
assert_eq "local" "$(jget Capabilities.Scope <<<"$PBODY")" "Capabilities Scope"
post VolumeDriver.Create '{"Name":"keep","Opts":null}'
expect_ok "Create with Opts null"
post VolumeDriver.Create '{"Name":"keep2","Opts":{}}'
expect_ok "Create with Opts {}"
post VolumeDriver.Get '{"Name":"keep"}'
expect_ok "Get"
assert_eq "keep" "$(jget Volume.Name <<<"$PBODY")" "Get Volume.Name"
assert_match "$(jget Volume.CreatedAt <<<"$PBODY")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "Get Volume.CreatedAt"
post VolumeDriver.List '{}'
expect_ok "List"
assert_eq "keep keep2 " "$(vol_names <<<"$PBODY" | tr '\n' ' ')" "List Volumes"
post VolumeDriver.Remove '{"Name":"keep2"}'
expect_ok "Remove"
id=$(printf 'a%.0s' {1..64})
post VolumeDriver.Mount "{\"Name\":\"keep\",\"ID\":\"$id\"}"
expect_ok "Mount"
mp=$(jget Mountpoint <<<"$PBODY")
assert_eq "$VD_STATE/local/keep/data" "$mp" "Mount Mountpoint"
post VolumeDriver.Path '{"Name":"keep"}'
expect_ok "Path"
assert_eq "$mp" "$(jget Mountpoint <<<"$PBODY")" "Path Mountpoint while mounted"
assert_eq "1" "$(volctl --json inspect keep | jget status.refs)" "refs after Mount"
post VolumeDriver.Unmount "{\"Name\":\"keep\",\"ID\":\"$id\"}"
expect_ok "Unmount"
assert_eq "0" "$(volctl --json inspect keep | jget status.refs)" "refs after Unmount"

scenario "repeated Create is idempotent; unknown volumes give an Err"
for i in 1 2 3; do
	post VolumeDriver.Create '{"Name":"idem","Opts":{"size":"16Mi"}}'
	expect_ok "Create idem #$i"
done
assert_eq "idem keep " "$(volctl --json ls | vol_names | tr '\n' ' ')" "volumes after three Creates"
BEFORE=$(snapshot)
post VolumeDriver.Create '{"Name":"idem","Opts":{"size":"32Mi"}}'
expect_rejected "Create of an existing name with other options"
assert_eq "16777216" "$(volctl --json inspect idem | jget status.size_bytes)" "size kept"
post VolumeDriver.Remove '{"Name":"nosuch"}'
expect_rejected "Remove of an unknown volume"
post VolumeDriver.Get '{"Name":"nosuch"}'
expect_rejected "Get of an unknown volume"
post VolumeDriver.Mount "{\"Name\":\"nosuch\",\"ID\":\"$id\"}"
expect_rejected "Mount of an unknown volume"
post VolumeDriver.Path '{"Name":"nosuch"}'
expect_rejected "Path of an unknown volume"

scenario "malformed bodies"
BEFORE=$(snapshot)
post VolumeDriver.Create '{"Name":'
expect_rejected "truncated JSON"
post VolumeDriver.Create 'not json at all'
expect_rejected "not JSON"
post VolumeDriver.Create '[]'
expect_rejected "a JSON array"
post VolumeDriver.Create '"keep3"'
expect_rejected "a JSON string"
post VolumeDriver.Create 'null'
expect_rejected "JSON null"
post VolumeDriver.Create ''
expect_rejected "Create with an empty body"
post VolumeDriver.Create '{"Name":"x1"} trailing'
expect_rejected "trailing garbage after the object"
post VolumeDriver.Create $'{"Name":"x\xff\xfe"}'
expect_rejected "invalid UTF-8 in the name"

scenario "missing, empty and hostile names"
BEFORE=$(snapshot)
for ep in Create Get Remove Path Mount Unmount; do
	post "VolumeDriver.$ep" '{"Opts":{}}'
	expect_rejected "$ep without Name"
	post "VolumeDriver.$ep" '{"Name":5}'
	expect_rejected "$ep with a numeric Name"
done
post VolumeDriver.Create '{"Name":"../../etc"}'
expect_rejected 'Create Name "../../etc"'
[[ ! -e $T/etc ]] || fail "Create ../../etc created $T/etc"
for ep in Create Remove Get Path; do
	post "VolumeDriver.$ep" '{"Name":"../../canary"}'
	expect_rejected "$ep Name \"../../canary\""
done
post VolumeDriver.Mount "{\"Name\":\"../../canary\",\"ID\":\"$id\"}"
expect_rejected 'Mount Name "../../canary"'
post VolumeDriver.Create '{"Name":""}'
expect_rejected 'Create Name ""'
post VolumeDriver.Create '{"Name":"."}'
expect_rejected 'Create Name "."'
post VolumeDriver.Create '{"Name":".."}'
expect_rejected 'Create Name ".."'
post VolumeDriver.Create '{"Name":"a/b"}'
expect_rejected 'Create Name "a/b"'
post VolumeDriver.Create '{"Name":"a\u0000b"}'
expect_rejected 'Create Name with a NUL'
post VolumeDriver.Create '{"Name":"-rf"}'
expect_rejected 'Create Name "-rf"'
long=$(printf 'n%.0s' {1..300})
post VolumeDriver.Create "{\"Name\":\"$long\"}"
expect_rejected "Create with a 300-character name"

scenario "bad options"
BEFORE=$(snapshot)
post VolumeDriver.Create '{"Name":"optnum","Opts":{"size":64}}'
expect_rejected "Opts with a number value"
post VolumeDriver.Create '{"Name":"optarr","Opts":["size","64Mi"]}'
expect_rejected "Opts an array"
post VolumeDriver.Create '{"Name":"optstr","Opts":"size=64Mi"}'
expect_rejected "Opts a string"
post VolumeDriver.Create '{"Name":"optnest","Opts":{"size":{"v":"64Mi"}}}'
expect_rejected "Opts with an object value"
post VolumeDriver.Create '{"Name":"optunk","Opts":{"foo":"bar"}}'
expect_rejected "Opts with an unknown key"
assert_contains "$(err_of "$PBODY")" "foo" "Err for an unknown option names it"
assert_contains "$(err_of "$PBODY")" "size" "Err for an unknown option lists the accepted ones"
post VolumeDriver.Create '{"Name":"optsz","Opts":{"size":"12 parsecs"}}'
expect_rejected "bad size"
post VolumeDriver.Create '{"Name":"optsz","Opts":{"size":"99999999999999999999999"}}'
expect_rejected "size overflowing 64 bits"
post VolumeDriver.Create '{"Name":"optfs","Opts":{"size":"64Mi","fstype":"vfat; rm -rf /"}}'
expect_rejected "bad fstype"

scenario "unknown endpoints, wrong method, oversized body"
BEFORE=$(snapshot)
post VolumeDriver.Bogus '{"Name":"keep"}'
expect_rejected "unknown endpoint VolumeDriver.Bogus"
post nope '{}'
expect_rejected "unknown endpoint /nope"
plugin_req GET VolumeDriver.Get
expect_rejected "GET instead of POST"
plugin_req GET VolumeDriver.List
expect_rejected "GET on List"
plugin_req DELETE VolumeDriver.Remove --data-binary '{"Name":"keep"}'
expect_rejected "DELETE instead of POST"
assert_contains "$(volctl --json ls | vol_names | tr '\n' ' ')" "keep" "keep survives a DELETE on Remove"
"$PY" -c 'import sys; sys.stdout.write("{\"Name\":\"big\",\"Opts\":{\"x\":\"" + "a" * (1 << 20) + "\"}}")' >"$T/big.json"
plugin_req POST VolumeDriver.Create --data-binary "@$T/big.json"
expect_rejected "1 MiB body" allow413
head -c $((1 << 20)) /dev/urandom >"$T/junk.bin"
plugin_req POST VolumeDriver.Create --data-binary "@$T/junk.bin"
expect_rejected "1 MiB of random bytes" allow413
rm -f "$T/big.json" "$T/junk.bin"

scenario "a stalled client does not block others"
"$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"POST /VolumeDriver.Get HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Na")
time.sleep(30)
' "$VD_SOCK" &
VD_EXTRA_PIDS=$!
sleep 0.3
t0=$(date +%s%N)
for i in 1 2 3 4 5; do
	plugin_req POST VolumeDriver.Get --max-time 5 --data-binary '{"Name":"keep"}'
	expect_ok "Get while another client stalls"
done
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 2000)) || fail "5 Gets took $ms ms while another client stalled"
kill "$VD_EXTRA_PIDS" 2>/dev/null
wait "$VD_EXTRA_PIDS" 2>/dev/null
VD_EXTRA_PIDS=""

scenario "concurrent Creates of one name make one volume; concurrent distinct Creates all land"
pids=()
for i in $(seq 1 20); do
	plugin_call VolumeDriver.Create '{"Name":"race","Opts":{"size":"16Mi"}}' >"$T/race.$i" &
	pids+=($!)
done
for i in $(seq 1 20); do
	plugin_call VolumeDriver.Create "{\"Name\":\"par$i\"}" >"$T/par.$i" &
	pids+=($!)
done
wait "${pids[@]}"
for i in $(seq 1 20); do
	e=$(err_of "$(cat "$T/race.$i")")
	[[ -z $e ]] || fail "concurrent Create #$i of race: Err $e"
	e=$(err_of "$(cat "$T/par.$i")")
	[[ -z $e ]] || fail "concurrent Create of par$i: Err $e"
done
names=$(volctl --json ls | vol_names)
assert_eq "1" "$(grep -cx race <<<"$names")" "volumes named race"
assert_eq "20" "$(grep -c '^par' <<<"$names")" "par* volumes"
assert_ok test -f "$VD_STATE/local/race/disk.img"
vd_alive || fail "volumed died under concurrent Creates"

log "test_malformed: all scenarios passed"
