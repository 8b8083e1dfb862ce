#!/usr/bin/env bash
# test_volctl.sh — the CLI against a real daemon: the volume lifecycle,
# reference-counted mounts, --json output, errors, the config file.
source "$(dirname "$0")/lib.sh"

# inspect_field NAME PATH: a field of `volctl --json inspect NAME`.
inspect_field() {
	volctl --json inspect "$1" | jget "$2"
}

vol_list() {
	volctl --json ls | vol_names | tr '\n' ' '
}

volumed_start

scenario "directory volume: create, ls, inspect, mount, unmount, rm"
assert_ok volctl create v1
assert_eq "v1 " "$(vol_list)" "volctl --json ls after create"
assert_ok volctl ls
assert_contains "$OUT" "v1" "volctl ls (plain)"
assert_ok volctl --json inspect v1
printf '%s' "$OUT" | is_json || fail "volctl --json inspect does not print JSON: $OUT"
assert_eq "v1" "$(jget name <<<"$OUT")" "inspect name"
assert_eq "local" "$(jget driver <<<"$OUT")" "inspect driver"
assert_match "$(jget created_at <<<"$OUT")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "inspect created_at"
assert_eq "0" "$(jget status.refs <<<"$OUT")" "refs before any mount"
assert_eq "false" "$(jget status.mounted <<<"$OUT")" "mounted before any mount"
assert_ok test -d "$VD_STATE/local/v1/data"

assert_ok volctl --json mount v1
mp=$(jget mountpoint <<<"$OUT")
assert_eq "$VD_STATE/local/v1/data" "$mp" "mountpoint of a directory volume"
echo payload >"$mp/f" || fail "cannot write into the mountpoint $mp"
assert_eq "1" "$(inspect_field v1 status.refs)" "refs after one mount"
assert_eq "true" "$(inspect_field v1 status.mounted)" "mounted after mount"
assert_eq "$mp" "$(inspect_field v1 mountpoint)" "inspect mountpoint while mounted"
# The same mount id twice counts once.
assert_ok volctl mount v1
assert_contains "$OUT" "$mp" "plain volctl mount prints the mountpoint"
assert_eq "1" "$(inspect_field v1 status.refs)" "refs after mounting the same id again"
assert_ok volctl unmount v1
assert_eq "0" "$(inspect_field v1 status.refs)" "refs after unmount"
assert_eq "payload" "$(cat "$VD_STATE/local/v1/data/f")" "data kept after unmount"
assert_ok volctl rm v1
assert_eq "" "$(vol_list)" "volctl ls after rm"
[[ ! -e $VD_STATE/local/v1 ]] || fail "rm left $VD_STATE/local/v1 behind"

scenario "sized volume: mount ids are reference-counted, the last unmount releases the loop"
assert_ok volctl create s1 -o size=32Mi
img=$VD_STATE/local/s1/disk.img
assert_ok test -f "$img"
assert_eq "33554432" "$(stat -c %s "$img")" "apparent size of disk.img"
(( $(stat -c %b "$img") * $(stat -c %B "$img") < 33554432 )) || fail "disk.img is not sparse"
assert_eq "33554432" "$(inspect_field s1 status.size_bytes)" "inspect status.size_bytes"
assert_eq "ext4" "$(inspect_field s1 status.fstype)" "default fstype"
assert_ok volctl --json mount s1 --id a
mp=$(jget mountpoint <<<"$OUT")
assert_match "$mp" "^$VD_STATE/local/s1/mnt(/.*)?\$" "mountpoint of a sized volume"
is_mounted "$VD_STATE/local/s1/mnt" || fail "$VD_STATE/local/s1/mnt not in mountinfo after mount"
assert_eq "ext4" "$(mount_fstype "$VD_STATE/local/s1/mnt")" "fstype in mountinfo"
[[ -n $(loops_for "$img") ]] || fail "no loop device backed by $img while mounted"
size=$(df -B1 --output=size "$mp" | tail -n 1 | tr -d ' ')
((size > 20 * 1048576 && size <= 33554432)) || fail "filesystem size $size not ~32 MiB"
assert_ok volctl mount s1 --id b
assert_ok volctl mount s1 --id a
assert_eq "2" "$(inspect_field s1 status.refs)" "refs with ids a, b (a twice)"
assert_fails_one_line volctl rm s1
assert_contains "$(vol_list)" "s1" "volume still listed after a refused rm"
is_mounted "$VD_STATE/local/s1/mnt" || fail "refused rm unmounted the volume"
assert_ok volctl unmount s1 --id a
assert_eq "1" "$(inspect_field s1 status.refs)" "refs after unmounting a"
is_mounted "$VD_STATE/local/s1/mnt" || fail "unmounted while id b still holds it"
assert_ok volctl unmount s1 --id b
assert_eq "0" "$(inspect_field s1 status.refs)" "refs after unmounting b"
wait_until 5 not_mounted "$VD_STATE/local/s1/mnt" || fail "still mounted after the last unmount"
wait_until 5 no_loops_for "$img" || fail "loop device still bound to $img: $(loops_for "$img")"
assert_ok volctl unmount s1 --id b
assert_ok volctl rm s1
[[ ! -e $VD_STATE/local/s1 ]] || fail "rm left $VD_STATE/local/s1 behind"

scenario "--json output parses"
assert_ok volctl --json create j1
printf '%s' "$OUT" | is_json || fail "volctl --json create does not print JSON: $OUT"
assert_ok volctl --json create j2 -o size=16Mi
printf '%s' "$OUT" | is_json || fail "volctl --json create -o does not print JSON: $OUT"
assert_ok volctl --json ls
printf '%s' "$OUT" | is_json || fail "volctl --json ls does not print JSON: $OUT"
assert_eq "j1 j2 " "$(vol_names <<<"$OUT" | tr '\n' ' ')" "names in volctl --json ls"
assert_ok volctl --json status
printf '%s' "$OUT" | is_json || fail "volctl --json status does not print JSON: $OUT"
assert_eq "$VD_NODE" "$(jget node_id <<<"$OUT")" "status node_id"
assert_eq "$VD_STATE" "$(jget state_dir <<<"$OUT")" "status state_dir"
assert_eq "2" "$(jget volumes <<<"$OUT")" "status volumes"
assert_ne "<missing>" "$(jget version <<<"$OUT")" "status version"
assert_ok volctl status
assert_contains "$OUT" "$VD_NODE" "plain volctl status names the node"
assert_ok volctl --json mount j1
printf '%s' "$OUT" | is_json || fail "volctl --json mount does not print JSON: $OUT"
assert_ok volctl --json unmount j1
assert_ok volctl rm j1
assert_ok volctl rm j2

scenario "errors: non-zero exit and a one-line reason"
assert_fails_one_line volctl inspect nosuch
assert_contains "$ERRLINE" "nosuch" "reason for inspect of an unknown volume"
assert_fails_one_line volctl --json inspect nosuch
assert_fails_one_line volctl rm nosuch
assert_contains "$ERRLINE" "nosuch" "reason for rm of an unknown volume"
assert_fails_one_line volctl mount nosuch
assert_fails_one_line volctl create bad1 -o foo=bar
assert_contains "$ERRLINE" "foo" "reason for an unknown option"
assert_contains "$ERRLINE" "size" "reason for an unknown option lists the accepted ones"
assert_fails_one_line volctl create bad2 -o size=lots
assert_fails_one_line volctl create 'bad/name'
assert_fails_one_line volctl create ../escape
assert_eq "" "$(vol_list)" "no volume left by the failed creates"
for n in bad1 bad2 escape; do
	[[ ! -e $VD_STATE/local/$n ]] || fail "failed create left $VD_STATE/local/$n"
done
[[ ! -e $VD_STATE/escape ]] || fail "../escape created $VD_STATE/escape"
assert_fails_one_line "$VOLCTL_BIN" --api-socket "$T/nope.sock" status
assert_fails_one_line "$VOLCTL_BIN" --api-socket "$T/nope.sock" ls
assert_fails volctl no-such-command
vd_alive || fail "volumed died during the error cases"

scenario "clean stop: SIGTERM, status 0, sockets removed"
volumed_stop
assert_eq "0" "$VD_STOP_RC" "volumed exit status on SIGTERM"
[[ ! -e $VD_API ]] || fail "API socket $VD_API left after SIGTERM"
[[ ! -e $VD_SOCK ]] || fail "plugin socket $VD_SOCK left after SIGTERM"

scenario "config file sets state_dir, sockets and node_id; flags override it"
cfg=$T/volumed.json
cat >"$cfg" <<EOF
{"state_dir": "$T/cfgstate", "api_socket": "$T/cfg-api.sock",
 "docker_socket": "$VD_SOCK", "node_id": "cfg-node", "log_level": "debug"}
EOF
VD_API=$T/cfg-api.sock
volumed_exec --config "$cfg"
assert_ok volctl --json status
assert_eq "$T/cfgstate" "$(jget state_dir <<<"$OUT")" "state_dir from the config file"
assert_eq "cfg-node" "$(jget node_id <<<"$OUT")" "node_id from the config file"
wait_until 5 test -S "$VD_SOCK" || fail "docker_socket from the config file not created"
assert_ok volctl create c1
assert_ok test -d "$T/cfgstate/local/c1"
volumed_stop
assert_eq "0" "$VD_STOP_RC" "exit status on SIGTERM"
volumed_exec --config "$cfg" --node-id flag-node
assert_eq "flag-node" "$(volctl --json status | jget node_id)" "--node-id overrides the config file"
assert_eq "c1 " "$(vol_list)" "volumes kept across a restart with the config file"
volumed_stop

scenario "environment: VOLUMED_* override the config file, flags override them; VOLCTL_API_SOCKET"
export VOLUMED_NODE_ID=env-node VOLUMED_CONFIG=$cfg
volumed_exec
assert_eq "env-node" "$(volctl --json status | jget node_id)" "VOLUMED_NODE_ID over the config file"
assert_eq "$T/cfgstate" "$(volctl --json status | jget state_dir)" "state_dir from VOLUMED_CONFIG's file"
run env VOLCTL_API_SOCKET="$VD_API" "$VOLCTL_BIN" --json status
((RC == 0)) || fail "volctl with VOLCTL_API_SOCKET: $OUT"
assert_eq "env-node" "$(jget node_id <<<"$OUT")" "volctl reaches the daemon through VOLCTL_API_SOCKET"
volumed_stop
volumed_exec --node-id flag-node
assert_eq "flag-node" "$(volctl --json status | jget node_id)" "--node-id over VOLUMED_NODE_ID"
volumed_stop
unset VOLUMED_NODE_ID VOLUMED_CONFIG

scenario "driver settings: drivers.local.default_fstype"
if command -v mkfs.xfs >/dev/null; then
	cat >"$T/xfs.json" <<EOF
{"state_dir": "$T/cfgstate", "api_socket": "$T/cfg-api.sock", "docker_socket": "",
 "drivers": {"local": {"default_fstype": "xfs"}}}
EOF
	volumed_exec --config "$T/xfs.json"
	assert_ok volctl create x1 -o size=300Mi
	assert_eq "xfs" "$(volctl --json inspect x1 | jget status.fstype)" "fstype of a sized volume by default"
	assert_ok volctl --json mount x1
	assert_eq "xfs" "$(mount_fstype "$T/cfgstate/local/x1/mnt")" "mounted filesystem"
	assert_ok volctl unmount x1
	assert_ok volctl rm x1
	volumed_stop
else
	skip "mkfs.xfs not installed"
fi
cat >"$T/bad-drv.json" <<EOF
{"state_dir": "$T/badstate", "api_socket": "$T/bad-api.sock", "docker_socket": "",
 "drivers": {"local": {"default_fstype": "vfat"}}}
EOF
run timeout 10 "$VOLUMED_BIN" --config "$T/bad-drv.json"
((RC != 0 && RC != 124)) || fail "volumed accepted default_fstype vfat (status $RC)"
assert_contains "$OUT" "vfat" "error for a bad driver setting names the value"
cat >"$T/bad-drv2.json" <<EOF
{"state_dir": "$T/badstate", "api_socket": "$T/bad-api.sock", "docker_socket": "",
 "drivers": {"local": {"defualt_fstype": "xfs"}}}
EOF
run timeout 10 "$VOLUMED_BIN" --config "$T/bad-drv2.json"
((RC != 0 && RC != 124)) || fail "volumed accepted an unknown driver setting (status $RC)"
assert_contains "$OUT" "defualt_fstype" "error for an unknown driver setting names it"
VD_API=$T/api.sock

scenario "config file: bad key, bad type, bad JSON, missing file are refused at start"
bad_start() {  # bad_start FILE: volumed must exit non-zero promptly
	run timeout 10 "$VOLUMED_BIN" --config "$1"
	((RC != 0 && RC != 124)) || fail "volumed --config $1 did not refuse it (status $RC): $(cat "$1")
$OUT"
	[[ ! -e $T/bad-api.sock ]] || fail "volumed served an API with a bad config $1"
}
cat >"$T/bad-key.json" <<EOF
{"state_dir": "$T/badstate", "api_socket": "$T/bad-api.sock", "docker_socket": "", "state_dri": "/x"}
EOF
bad_start "$T/bad-key.json"
assert_contains "$OUT" "state_dri" "error for an unknown config key names it"
cat >"$T/bad-type.json" <<EOF
{"state_dir": 5, "api_socket": "$T/bad-api.sock", "docker_socket": ""}
EOF
bad_start "$T/bad-type.json"
assert_contains "$OUT" "state_dir" "error for a config value of the wrong type names the key"
cat >"$T/bad-json.json" <<EOF
{"state_dir": "$T/badstate", "api_socket": "$T/bad-api.sock",
EOF
bad_start "$T/bad-json.json"
run timeout 10 "$VOLUMED_BIN" --config "$T/does-not-exist.json" --state-dir "$T/badstate" \
	--api-socket "$T/bad-api.sock" --docker-socket ""
((RC != 0 && RC != 124)) || fail "volumed started with a missing config file (status $RC)"
assert_contains "$OUT" "does-not-exist.json" "error for a missing config file names it"
run timeout 10 "$VOLUMED_BIN" --state-dir "$T/badstate" --api-socket "$T/bad-api.sock" \
	--docker-socket "" --log-level loud
((RC != 0 && RC != 124)) || fail "volumed accepted --log-level loud (status $RC)"
assert_contains "$OUT" "loud" "error for a bad --log-level names the value"

log "test_volctl: all scenarios passed"
