#!/usr/bin/env bash
# test_managed_plugin.sh — volumed as a managed Docker plugin on a private
# dockerd: the plugin directory built by scripts/docker-plugin-rootfs.sh,
# docker plugin create/set/enable, a directory volume and a sized one (mkfs
# and a loop device inside the plugin), Mountpoints under the propagated
# mount, disable/enable keeping volumes and data, then rm of everything.
source "$(dirname "$0")/lib.sh"

VERSION=$("$VOLUMED_BIN" --version | awk '{print $2}')
PNAME=volumed:$VERSION
PDIR=$T/plugin
PCFG=$T/plugin-etc

plugin_enabled() {
	[[ $(docker plugin inspect -f '{{.Enabled}}' "$PNAME" 2>/dev/null) == "$1" ]]
}

mountpoint_of() {
	docker volume inspect -f '{{.Mountpoint}}' "$1"
}

dockerd_start
image_import

scenario "the plugin directory from this build"
assert_ok "$VD_ROOT/scripts/docker-plugin-rootfs.sh" "$VD_BIN" "$PDIR"
assert_ok test -x "$PDIR/rootfs/usr/bin/volumed"
assert_ok test -x "$PDIR/rootfs/usr/sbin/mkfs.ext4"
# (A sanitizer build needs /proc in the chroot.)
assert_ok mount -t proc proc "$PDIR/rootfs/proc"
assert_eq "volumed $VERSION" "$(chroot "$PDIR/rootfs" /usr/bin/volumed --version 2>&1)" \
	"volumed runs inside the rootfs (its libraries and loader are there)"
assert_ok chroot "$PDIR/rootfs" /usr/sbin/mkfs.ext4 -V
assert_ok umount "$PDIR/rootfs/proc"
assert_eq "docker.volumedriver/1.0" "$(jget interface.types.0 <"$PDIR/config.json")" "interface type"
PMOUNT=$(jget propagatedMount <"$PDIR/config.json")
assert_eq "/var/lib/volumed" "$PMOUNT" "propagatedMount is volumed's state dir"

scenario "docker plugin create, set, enable"
mkdir -p "$PCFG"
assert_ok docker plugin create "$PNAME" "$PDIR"
# The config mount's host directory must exist (runc binds it).
assert_ok docker plugin set "$PNAME" config.source="$T/missing"
assert_fails docker plugin enable "$PNAME"
assert_contains "$OUT" "$T/missing" "enable with a missing config directory names it"
assert_ok docker plugin set "$PNAME" config.source="$PCFG" VOLUMED_LOG_LEVEL=debug
assert_ok docker plugin inspect -f '{{json .Settings.Env}}' "$PNAME"
assert_contains "$OUT" "VOLUMED_LOG_LEVEL=debug" "the setting kept by docker"
assert_ok docker plugin enable "$PNAME"
PID=$(docker plugin inspect -f '{{.Id}}' "$PNAME")
PROP=$D/root/plugins/$PID/propagated-mount
# dockerd 20.10 keeps managed plugins' sockets under /run/docker/plugins/ID
# whatever its exec root; the directory goes with the test.
PRUN=/run/docker/plugins/$PID
record "dir $PRUN"
test_cleanup() {
	rm -rf --one-file-system "$PRUN"
}
API=$PRUN/api.sock
wait_until 10 test -S "$API" || fail "no API socket $API from the plugin"
pvolctl() {
	"$VOLCTL_BIN" --api-socket "$API" "$@"
}
assert_ok pvolctl --json status
assert_eq "/var/lib/volumed" "$(jget state_dir <<<"$OUT")" "the plugin's state dir"

scenario "a directory volume: Mountpoint under the propagated mount"
assert_ok docker volume create -d "$PNAME" v1
assert_ok drun --rm -v v1:/data "$IMAGE" sh -c 'echo one > /data/f'
assert_eq "one" "$(cat "$PROP/local/v1/data/f" 2>&1)" "the file on the host, in the propagated mount"
assert_ok drun -d --name holder -v v1:/data "$IMAGE" sleep 300
# dockerd shows the plugin's own path; it mounts the host's side of it.
assert_ok mountpoint_of v1
assert_eq "$PMOUNT/local/v1/data" "$OUT" "docker volume inspect Mountpoint, under propagatedMount"
assert_ok docker exec holder sh -c 'echo two > /data/g'
assert_eq "two" "$(cat "$PROP/local/v1/data/g" 2>&1)" "a running container's write, on the host's side"
assert_eq "1" "$(pvolctl --json inspect v1 | jget status.refs)" "refs seen by the plugin's volumed"
assert_ok docker rm -f holder

scenario "a sized volume: mkfs and a loop device inside the plugin"
assert_ok docker volume create -d "$PNAME" -o size=16Mi s1
assert_ok drun -d --name sz -v s1:/data "$IMAGE" sh -c 'echo sized > /data/f; exec sleep 300'
wait_until 10 docker exec sz test -s /data/f || fail "the container never wrote onto s1"
assert_ok mountpoint_of s1
assert_eq "$PMOUNT/local/s1/mnt" "$OUT" "Mountpoint of a mounted sized volume"
is_mounted "$PROP/local/s1/mnt" || fail "the plugin's mount did not propagate to the host"
assert_eq "ext4" "$(mount_fstype "$PROP/local/s1/mnt")" "file system of s1"
assert_ok docker rm -f sz
wait_until 5 not_mounted "$PROP/local/s1/mnt" || fail "s1 still mounted on the host after its container"

scenario "disable and enable again: volumes and data stay"
assert_fails docker plugin disable "$PNAME"
assert_contains "$OUT" "in use" "a plugin with volumes is disabled only with -f"
assert_ok docker plugin disable -f "$PNAME"
wait_until 10 plugin_enabled false || fail "plugin still enabled after disable -f"
[[ -z $(pids_rooted_under "$D/root/plugins/$PID") ]] || fail "plugin processes outlived disable"
assert_eq "one" "$(cat "$PROP/local/v1/data/f" 2>&1)" "the state on the host while disabled"
assert_ok docker plugin enable "$PNAME"
wait_until 10 test -S "$API" || fail "no API socket after enable"
assert_ok docker volume ls -q --filter "driver=$PNAME"
assert_eq "s1 v1" "$(sort <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')" "volumes listed after enable"
assert_ok drun --rm -v v1:/data "$IMAGE" cat /data/f
assert_eq "one" "$OUT" "v1's data after enable"
assert_ok drun --rm -v s1:/data "$IMAGE" cat /data/f
assert_eq "sized" "$OUT" "s1's data after enable"

scenario "docker volume rm, plugin disable and rm"
assert_ok docker volume rm v1 s1
[[ ! -e $PROP/local/v1 && ! -e $PROP/local/s1 ]] || fail "volume rm left $(ls "$PROP/local")"
assert_ok docker plugin disable "$PNAME"
assert_ok docker plugin rm "$PNAME"
[[ ! -e $D/root/plugins/$PID ]] || fail "docker plugin rm left $D/root/plugins/$PID"
assert_ok docker plugin ls -q
assert_eq "" "$OUT" "plugins after rm"

# The plugin's output goes to dockerd's log: a sanitizer build reports there.
if grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$D/dockerd.log"; then
	fail "sanitizer report from the plugin in the dockerd log"
fi

log "test_managed_plugin: all scenarios passed"
