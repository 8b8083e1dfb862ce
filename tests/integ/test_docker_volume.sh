#!/usr/bin/env bash
# test_docker_volume.sh — a real dockerd using volumed as a volume plugin:
# docker volume create/ls/inspect/rm, containers writing and reading, two
# containers sharing a volume, sized volumes hitting their limit, options.
source "$(dirname "$0")/lib.sh"

# dockerd lists the volumes of every plugin socket in the plugin directory:
# listings are filtered on this test's driver, other runs may be live.

refs_of() {
	volctl --json inspect "$1" | jget status.refs
}

refs_are() {  # refs_are NAME N
	[[ $(refs_of "$1") == "$2" ]]
}

vol_list() {
	volctl --json ls | vol_names | tr '\n' ' '
}

dockerd_start
image_import
volumed_start
DRV=$VD_DRIVER

scenario "docker volume create, ls, inspect"
assert_ok docker volume create -d "$DRV" v1
assert_eq "v1" "$OUT" "docker volume create prints the name"
assert_ok docker volume ls --format '{{.Driver}} {{.Name}}'
assert_contains "$OUT" "$DRV v1" "docker volume ls"
assert_ok docker volume inspect v1 --format '{{.Driver}}|{{.Name}}|{{.Mountpoint}}|{{.CreatedAt}}|{{json .Status}}'
IFS='|' read -r i_drv i_name i_mp i_created i_status <<<"$OUT"
assert_eq "$DRV" "$i_drv" "inspect Driver"
assert_eq "v1" "$i_name" "inspect Name"
assert_match "$i_created" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}' "inspect CreatedAt"
[[ -n $i_status && $i_status != null && $i_status != '{}' ]] || fail "inspect Status is empty: $i_status"
[[ -z $i_mp || $i_mp == "$VD_STATE/local/v1/data" ]] || fail "inspect Mountpoint at rest: $i_mp"
assert_eq "v1 " "$(vol_list)" "volctl ls sees the volume docker created"
assert_eq "local" "$(volctl --json inspect v1 | jget driver)" "volctl inspect driver"

scenario "a container writes, another reads"
assert_ok drun --rm -v v1:/data "$IMAGE" sh -c 'echo hello > /data/f'
assert_ok drun --rm -v v1:/data "$IMAGE" cat /data/f
assert_eq "hello" "$OUT" "second container reads the first one's file"
assert_eq "hello" "$(cat "$VD_STATE/local/v1/data/f")" "the file in the volume's directory"
wait_until 5 refs_are v1 0 || fail "refs after both containers exited: $(refs_of v1), expected 0"
assert_ok drun --rm -v v1:/data:ro "$IMAGE" sh -c 'cat /data/f; echo x > /data/g; true'
[[ ! -e $VD_STATE/local/v1/data/g ]] || fail "a read-only mount let a container write"

scenario "two containers share a volume"
assert_ok docker volume create -d "$DRV" shared
assert_ok drun -d --name holder -v shared:/data "$IMAGE" sh -c 'echo from-holder > /data/s; exec sleep 300'
wait_until 10 docker exec holder test -s /data/s || fail "holder never wrote /data/s"
assert_eq "1" "$(refs_of shared)" "refs with one container"
assert_ok drun -d --name reader -v shared:/data "$IMAGE" sleep 300
assert_eq "2" "$(refs_of shared)" "refs while both containers run"
assert_eq "true" "$(volctl --json inspect shared | jget status.mounted)" "mounted while in use"
assert_ok docker exec reader cat /data/s
assert_eq "from-holder" "$OUT" "reader sees holder's file"
assert_ok docker exec reader sh -c 'echo from-reader > /data/r'
assert_ok docker exec holder cat /data/r
assert_eq "from-reader" "$OUT" "holder sees reader's file"
assert_ok docker volume inspect shared --format '{{.Mountpoint}}'
assert_eq "$VD_STATE/local/shared/data" "$OUT" "docker volume inspect Mountpoint while mounted"
assert_fails docker volume rm shared
assert_contains "$OUT" "in use" "docker volume rm of a volume in use"
assert_contains "$(vol_list)" "shared" "volume still in volctl ls after a refused rm"
assert_ok docker kill reader
assert_ok docker wait reader
wait_until 5 refs_are shared 1 || fail "refs after one container exited: $(refs_of shared), expected 1"
assert_ok docker exec holder cat /data/s
assert_eq "from-holder" "$OUT" "holder still reads after reader exited"
assert_ok docker rm -f holder reader
wait_until 5 refs_are shared 0 || fail "refs after both exited: $(refs_of shared), expected 0"
assert_ok docker volume rm shared
assert_not_contains "$(vol_list)" "shared" "volctl ls after docker volume rm"
[[ ! -e $VD_STATE/local/shared ]] || fail "docker volume rm left $VD_STATE/local/shared"
listed=$(docker volume ls -q --filter "driver=$DRV") || fail "docker volume ls failed"
assert_not_contains "$listed" "shared" "docker volume ls after rm"

scenario "an image directory as the target: copy-up and two Mount/Unmount pairs balance"
assert_ok docker volume create -d "$DRV" cu
assert_ok drun --rm -v cu:/etc "$IMAGE" cat /etc/vd-marker
assert_eq "from-the-image" "$OUT" "image content copied into a new volume"
assert_eq "from-the-image" "$(cat "$VD_STATE/local/cu/data/vd-marker" 2>&1)" "copied file in the volume's directory"
wait_until 5 refs_are cu 0 ||
	fail "refs after a container whose image had the target directory: $(refs_of cu), expected 0"
assert_eq "false" "$(volctl --json inspect cu | jget status.mounted)" "mounted after that container"
assert_ok docker volume rm cu

scenario "a new sized volume is empty, so Docker copies the image's files into it"
assert_ok docker volume create -d "$DRV" -o size=16Mi cusized
assert_ok drun --rm -v cusized:/etc "$IMAGE" sh -c 'cat /etc/vd-marker; ls -d /etc/lost+found 2>&1; true'
assert_contains "$OUT" "from-the-image" "image content copied into a new sized volume"
assert_contains "$OUT" "No such file" "a new sized volume has no lost+found"
wait_until 5 refs_are cusized 0 || fail "refs of cusized after its container: $(refs_of cusized)"
assert_ok docker volume rm cusized

scenario "docker run --volume-driver creates the volume on first use"
assert_ok drun --rm --volume-driver "$DRV" -v auto:/data "$IMAGE" sh -c 'echo auto > /data/a'
assert_contains "$(vol_list)" "auto" "volctl ls after an implicit create"
assert_eq "auto" "$(cat "$VD_STATE/local/auto/data/a" 2>&1)" "data written into the implicit volume"
assert_ok docker volume inspect auto --format '{{.Driver}}'
assert_eq "$DRV" "$OUT" "driver of the implicit volume"
assert_ok docker volume rm auto

scenario "sized volume: the limit holds, data before it stays readable"
assert_ok docker volume create -d "$DRV" -o size=64Mi sized
img=$VD_STATE/local/sized/disk.img
mnt=$VD_STATE/local/sized/mnt
assert_ok test -f "$img"
assert_eq "67108864" "$(stat -c %s "$img")" "disk.img apparent size"
(( $(stat -c %b "$img") * $(stat -c %B "$img") < 67108864 )) || fail "disk.img is not sparse"
assert_eq "67108864" "$(volctl --json inspect sized | jget status.size_bytes)" "status.size_bytes"
assert_ok drun --rm -v sized:/data "$IMAGE" sh -c \
	'echo before > /data/marker; dd if=/dev/zero of=/data/big bs=1M count=100 2>&1; echo "dd-rc=$?"'
assert_contains "$OUT" "No space left on device" "dd of 100 MiB into a 64 MiB volume"
assert_not_contains "$OUT" "dd-rc=0" "dd status when the volume is full"
assert_ok drun --rm -v sized:/data "$IMAGE" sh -c 'cat /data/marker; wc -c < /data/big'
marker=$(head -n 1 <<<"$OUT")
bytes=$(tail -n 1 <<<"$OUT" | tr -d ' ')
assert_eq "before" "$marker" "marker written before the limit"
((bytes > 40 * 1048576 && bytes < 64 * 1048576)) || fail "size of the partial file: $bytes"
assert_ok drun --rm -v sized:/data "$IMAGE" sh -c 'rm /data/big; echo after > /data/after; cat /data/after'
assert_eq "after" "$OUT" "writable again after freeing space"
assert_ok drun -d --name sz -v sized:/data "$IMAGE" sleep 300
is_mounted "$mnt" || fail "$mnt not mounted while a container uses the volume"
assert_eq "ext4" "$(mount_fstype "$mnt")" "filesystem of the sized volume"
[[ -n $(loops_for "$img") ]] || fail "no loop device backs $img while mounted"
assert_ok docker volume inspect sized --format '{{.Mountpoint}}'
assert_match "$OUT" "^$mnt(/.*)?\$" "Mountpoint of a mounted sized volume"
assert_ok docker exec sz df -k /data
total_k=$(tail -n 1 <<<"$OUT" | awk '{print $2}')
((total_k > 50000 && total_k <= 65536)) || fail "df in the container: $total_k KiB, expected ~64 MiB"
assert_ok docker rm -f sz
wait_until 5 not_mounted "$mnt" || fail "$mnt still mounted after the container went"
wait_until 5 no_loops_for "$img" || fail "loop device still bound to $img: $(loops_for "$img")"
assert_ok docker volume rm sized
[[ ! -e $VD_STATE/local/sized ]] || fail "docker volume rm left $VD_STATE/local/sized: $(ls -la "$VD_STATE/local/sized" 2>&1)"
[[ -z $(losetup -n -l -O NAME,BACK-FILE | grep -F "$VD_STATE/local/sized/") ]] ||
	fail "a loop device still references the removed image: $(losetup -a)"

scenario "xfs volume"
if command -v mkfs.xfs >/dev/null; then
	assert_ok docker volume create -d "$DRV" -o fstype=xfs -o size=300Mi xv
	assert_eq "xfs" "$(volctl --json inspect xv | jget status.fstype)" "status.fstype"
	assert_ok drun -d --name xc -v xv:/data "$IMAGE" sh -c 'echo on-xfs > /data/f; exec sleep 300'
	wait_until 10 docker exec xc test -s /data/f || fail "container never wrote onto the xfs volume"
	assert_eq "xfs" "$(mount_fstype "$VD_STATE/local/xv/mnt")" "mounted filesystem"
	assert_ok docker rm -f xc
	assert_ok drun --rm -v xv:/data "$IMAGE" cat /data/f
	assert_eq "on-xfs" "$OUT" "data on the xfs volume"
	assert_ok docker volume rm xv
	[[ ! -e $VD_STATE/local/xv ]] || fail "docker volume rm left $VD_STATE/local/xv"
else
	skip "mkfs.xfs not installed"
fi

scenario "bad options are refused and leave nothing"
assert_fails docker volume create -d "$DRV" -o foo=bar bad1
assert_contains "$OUT" "foo" "error for an unknown option names it"
assert_contains "$OUT" "size" "error for an unknown option lists size"
assert_contains "$OUT" "fstype" "error for an unknown option lists fstype"
assert_fails docker volume create -d "$DRV" -o size=abc bad2
assert_contains "$OUT" "abc" "error for a bad size names the value"
assert_fails docker volume create -d "$DRV" -o size=0 bad3
assert_fails docker volume create -d "$DRV" -o size=12XB bad4
assert_fails docker volume create -d "$DRV" -o size=64Mi -o fstype=btrfs bad5
assert_contains "$OUT" "ext4" "error for a bad fstype lists the accepted ones"
assert_eq "v1 " "$(vol_list)" "volctl ls after the refused creates"
listed=$(docker volume ls -q --filter "driver=$DRV") || fail "docker volume ls failed"
for n in bad1 bad2 bad3 bad4 bad5; do
	assert_not_contains "$listed" "$n" "docker volume ls after refused creates"
	[[ ! -e $VD_STATE/local/$n ]] || fail "refused create left $VD_STATE/local/$n"
done

scenario "docker volume rm removes the volume"
assert_ok docker volume rm v1
assert_eq "" "$(vol_list)" "volctl ls after the last rm"
[[ ! -e $VD_STATE/local/v1 ]] || fail "docker volume rm left $VD_STATE/local/v1"
# Another volumed on this host may have a v1 of its own: only ours must be gone.
assert_ne "$DRV" "$(docker volume inspect v1 --format '{{.Driver}}' 2>/dev/null)" "driver of v1 after rm"

log "test_docker_volume: all scenarios passed"
