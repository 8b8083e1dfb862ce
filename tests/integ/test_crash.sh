#!/usr/bin/env bash
# test_crash.sh — volumed killed (SIGKILL) or stopped (SIGTERM) under a real
# dockerd: mounts and reference counts survive, a container keeps its data,
# its Unmount after the restart works and the loop device is released.
source "$(dirname "$0")/lib.sh"

refs_of() {
	volctl --json inspect "$1" | jget status.refs
}

refs_are() {
	[[ $(refs_of "$1") == "$2" ]]
}

vol_list() {
	volctl --json ls | vol_names | tr '\n' ' '
}

# mount_count PATH: how many mounts are stacked on PATH.
mount_count() {
	mountpoints | grep -cxF -- "$1"
}

# dockerd_errors_since LINE: error/warning lines the dockerd log gained after
# line LINE that mention volumes or their driver.
dockerd_errors_since() {
	tail -n +"$(($1 + 1))" "$D/dockerd.log" | grep -E 'level=(error|warning)' |
		grep -iE "volume|unmount|mount|$VD_DRIVER" || true
}

dockerd_start
image_import
volumed_start
DRV=$VD_DRIVER

scenario "SIGKILL while a container holds a sized volume"
assert_ok docker volume create -d "$DRV" -o size=64Mi sized
assert_ok docker volume create -d "$DRV" plain
img=$VD_STATE/local/sized/disk.img
mnt=$VD_STATE/local/sized/mnt
assert_ok drun -d --name c1 -v sized:/data -v plain:/p "$IMAGE" sleep 300
assert_ok docker exec c1 sh -c 'echo precrash > /data/f && echo plain-data > /p/f && sync'
assert_eq "1" "$(refs_of sized)" "refs of sized before the crash"
assert_eq "1" "$(refs_of plain)" "refs of plain before the crash"
loop_before=$(loops_for "$img")
[[ -n $loop_before ]] || fail "no loop device for $img while mounted"
volumed_kill9
is_mounted "$mnt" || fail "$mnt unmounted by the daemon's death"
assert_ok docker exec c1 cat /data/f
assert_eq "precrash" "$OUT" "container reads while the daemon is down"

volumed_start
assert_eq "1" "$(refs_of sized)" "refs of sized after the restart"
assert_eq "1" "$(refs_of plain)" "refs of plain after the restart"
assert_eq "true" "$(volctl --json inspect sized | jget status.mounted)" "sized mounted after the restart"
assert_eq "1" "$(mount_count "$mnt")" "mounts on $mnt after the restart (reconcile must not stack one)"
assert_eq "$loop_before" "$(loops_for "$img")" "loop devices for $img after the restart"
assert_ok docker exec c1 cat /data/f /p/f
assert_eq "precrash"$'\n'"plain-data" "$OUT" "data readable from the container after the restart"
assert_ok docker exec c1 sh -c 'echo postcrash >> /data/f && sync'
mark=$(wc -l <"$D/dockerd.log")
assert_ok docker stop -t 1 c1
wait_until 5 refs_are sized 0 || fail "refs of sized after the container stopped: $(refs_of sized)"
assert_eq "0" "$(refs_of plain)" "refs of plain after the container stopped"
wait_until 5 not_mounted "$mnt" || fail "$mnt still mounted after the container stopped"
wait_until 5 no_loops_for "$img" || fail "loop device still bound to $img: $(loops_for "$img")"
errs=$(dockerd_errors_since "$mark")
[[ -z $errs ]] || fail "dockerd logged errors around the Unmount: $errs"
assert_ok docker rm c1
assert_ok drun --rm -v sized:/data "$IMAGE" cat /data/f
assert_eq "precrash"$'\n'"postcrash" "$OUT" "data after the container was removed"

scenario "SIGKILL while idle: the catalog survives, docker volume ls lists everything"
assert_ok docker volume create -d "$DRV" idle1
assert_ok docker volume create -d "$DRV" -o size=16Mi idle2
assert_ok volctl create idle3 -o size=16Mi -o fstype=ext4
expected="idle1 idle2 idle3 plain sized "
assert_eq "$expected" "$(vol_list)" "volctl ls before the crash"
volumed_kill9
volumed_start
assert_eq "$expected" "$(vol_list)" "volctl ls after the restart"
# stdout only: dockerd may warn on stderr about other plugins in the directory.
listed=$(docker volume ls -q --filter "driver=$DRV") || fail "docker volume ls failed after the restart"
assert_eq "$expected" "$(sort <<<"$listed" | tr '\n' ' ')" "docker volume ls after the restart"
assert_eq "16777216" "$(volctl --json inspect idle2 | jget status.size_bytes)" "idle2 size after the restart"
assert_ok drun --rm -v idle2:/data "$IMAGE" sh -c 'echo ok > /data/x && cat /data/x'
assert_eq "ok" "$OUT" "a sized volume created before the crash is usable"
assert_ok drun --rm -v idle3:/data "$IMAGE" sh -c 'echo ok3 > /data/x && cat /data/x'
assert_eq "ok3" "$OUT" "a volume created with volctl is usable from docker"
for v in idle1 idle2 idle3 plain sized; do
	assert_eq "0" "$(refs_of "$v")" "refs of $v"
done

scenario "SIGKILL right after a create and a mount: both are durable"
assert_ok docker volume create -d "$DRV" -o size=16Mi quick
assert_ok drun -d --name c3 -v quick:/data "$IMAGE" sleep 300
volumed_kill9
volumed_start
assert_contains "$(vol_list)" "quick" "volume created just before SIGKILL"
assert_eq "1" "$(refs_of quick)" "mount made just before SIGKILL"
assert_ok docker rm -f c3
wait_until 5 refs_are quick 0 || fail "refs of quick after the container went: $(refs_of quick)"
wait_until 5 not_mounted "$VD_STATE/local/quick/mnt" || fail "quick still mounted"
assert_ok docker volume rm quick
[[ ! -e $VD_STATE/local/quick ]] || fail "docker volume rm left $VD_STATE/local/quick"

scenario "SIGTERM: sockets removed, mounts left in place"
assert_ok drun -d --name c2 -v idle2:/data "$IMAGE" sleep 300
assert_ok docker exec c2 sh -c 'echo before-term > /data/t'
mnt2=$VD_STATE/local/idle2/mnt
volumed_stop
assert_eq "0" "$VD_STOP_RC" "exit status on SIGTERM"
[[ ! -e $VD_SOCK ]] || fail "plugin socket left after SIGTERM"
[[ ! -e $VD_API ]] || fail "API socket left after SIGTERM"
is_mounted "$mnt2" || fail "$mnt2 unmounted by a clean stop"
assert_ok docker exec c2 cat /data/t
assert_eq "before-term" "$OUT" "container reads while the daemon is stopped"
volumed_start
assert_eq "1" "$(refs_of idle2)" "refs of idle2 after the restart"
assert_eq "1" "$(mount_count "$mnt2")" "mounts on $mnt2 after the restart"
mark=$(wc -l <"$D/dockerd.log")
assert_ok docker rm -f c2
wait_until 5 refs_are idle2 0 || fail "refs of idle2 after the container went: $(refs_of idle2)"
wait_until 5 not_mounted "$mnt2" || fail "$mnt2 still mounted after the container went"
wait_until 5 no_loops_for "$VD_STATE/local/idle2/disk.img" || fail "loop still bound to idle2's image"
errs=$(dockerd_errors_since "$mark")
[[ -z $errs ]] || fail "dockerd logged errors around the Unmount: $errs"

log "test_crash: all scenarios passed"
