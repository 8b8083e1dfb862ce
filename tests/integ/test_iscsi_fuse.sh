#!/usr/bin/env bash
# test_iscsi_fuse.sh — volumed-iscsi-fuse, the userspace iSCSI data path,
# against a real tgtd on loopback (lib.sh's iscsi_target_*): the readiness
# protocol, the "disk" file's size, a 64 MiB round trip, ext4 on a loop
# device over "disk" (e2fsck clean), a target outage (bounded EIO, low CPU,
# recovery) and fencing with SCSI-3 persistent reservations (a second node
# cannot reserve; a preempted node's writes fail with EIO).
#
# Prints the measured throughput through the disk file, and the raw
# target's read rate with iscsi-perf. Environment: BUILD as for every
# integ test.
source "$(dirname "$0")/lib.sh"

HELPER=$VD_BIN/bin/volumed-iscsi-fuse
[[ -x $HELPER ]] || fail "no $HELPER (make all)"
command -v fusermount3 >/dev/null || fail "fusermount3 not installed (fuse3)"
command -v tgtd >/dev/null || fail "tgtd not installed (tgt)"
[[ -c /dev/fuse ]] || fail "no /dev/fuse"

TIMEOUT_MS=3000      # the helper's --timeout-ms in this test
MARGIN_S=3           # what a failing request may take beyond it
HLOG=$VD_LOG         # the helpers' log: lib.sh shows it on failure, checks it for sanitizer reports
IQN=iqn.2026-01.io.volumed:itest-$VD_ID
LUNF=$T/lun.img
URL=""
HPID=""
LOOP=""

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# helper_start MP [ARGS...]: runs the helper detached on MP; READY = what it
# wrote on --ready-fd, HRC = the status of the process we started, HPID =
# the daemon's pid (from "ok <pid>"), tracked for cleanup.
helper_start() {
	local mp=$1 fd i
	shift
	mkdir -p "$mp"
	: >"$T/ready"
	exec {fd}>"$T/ready"
	"$HELPER" --url "$URL" --mountpoint "$mp" --log "$HLOG" --ready-fd "$fd" \
		--timeout-ms "$TIMEOUT_MS" "$@" </dev/null
	HRC=$?
	exec {fd}>&-
	for ((i = 0; i < 100; i++)); do
		grep -q . "$T/ready" && break
		sleep 0.1
	done
	READY=$(cat "$T/ready")
	HPID=""
	if [[ $READY =~ ^ok\ ([0-9]+)$ ]]; then
		HPID=${BASH_REMATCH[1]}
		iscsi_helper_track "$HPID"
	fi
	return 0
}

cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# helper_stop MP PID: unmount, wait for the helper to exit.
helper_stop() {
	local mp=$1 pid=$2 i
	fusermount3 -u "$mp" 2>/dev/null || umount "$mp"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "helper $pid did not exit after the unmount of $mp"
}

# mbps BYTES MS
mbps() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.0f", b / 1e6 / (ms / 1e3) }'; }

# ---------------------------------------------------------------- setup
scenario "tgtd on loopback, a sparse 256 MiB LUN"
iscsi_target_start
truncate -s 256M "$LUNF"
iscsi_target_add "$IQN" "$LUNF" 1
URL=iscsi://$ISCSI_PORTAL/$IQN/1

scenario "bad arguments: exit 2 and an error line on the ready fd"
mkdir -p "$T/m0"
exec {fd}>"$T/ready"
"$HELPER" --url "nfs://x/y" --mountpoint "$T/m0" --ready-fd "$fd" 2>/dev/null
rc=$?
exec {fd}>&-
assert_eq 2 "$rc" "exit code for a non-iscsi URL"
assert_match "$(cat "$T/ready")" '^error: ' "the ready line"
URL_SAVE=$URL
URL=iscsi://$ISCSI_PORTAL/iqn.2026-01.io.volumed:no-such-target/1
helper_start "$T/m0"
assert_match "$READY" '^error: ' "a missing target"
URL=$URL_SAVE
not_mounted "$T/m0" || fail "mounted despite the error"

scenario "start: detached, ready with its pid, one file 'disk' of the LUN's size"
MP=$T/mnt
helper_start "$MP"
assert_eq 0 "$HRC" "exit code of the started process"
[[ -n $HPID ]] || fail "ready line: '$READY'"
assert_eq fuse.volumed-iscsi "$(mount_fstype "$MP")" "fstype"
assert_eq disk "$(ls "$MP")" "directory listing"
assert_eq 268435456 "$(stat -c %s "$MP/disk")" "size of disk"

scenario "64 MiB with conv=fsync, read back: same sha256 (and in the backing file)"
dd if=/dev/urandom of="$T/src" bs=1M count=64 status=none
s=$(now_ms)
dd if="$T/src" of="$MP/disk" bs=1M conv=fsync,notrunc status=none || fail "dd to disk"
e=$(now_ms)
W_MBPS=$(mbps 67108864 $((e - s)))
s=$(now_ms)
dd if="$MP/disk" of="$T/back" bs=1M count=64 status=none || fail "dd from disk"
e=$(now_ms)
R_MBPS=$(mbps 67108864 $((e - s)))
assert_eq "$(sha256sum <"$T/src")" "$(sha256sum <"$T/back")" "sha256 through the disk file"
assert_eq "$(sha256sum <"$T/src")" "$(head -c 64M "$LUNF" | sha256sum)" "sha256 in the backing file"
log "  through the disk file: write $W_MBPS MB/s (1 MiB, fsync), read $R_MBPS MB/s"
if command -v iscsi-perf >/dev/null; then
	raw=$(timeout 20 iscsi-perf -m 1 -b 2048 -t 3 "$URL" 2>&1 | tr '\r' '\n' |
		grep -oE 'iops average [0-9]+ \([0-9]+ MB/s\)' | tail -n 1)
	log "  raw target, iscsi-perf 1 MiB reads, 1 outstanding: ${raw:-no result}"
fi
# Unaligned writes: read-modify-write of the edge blocks.
printf 'hello, unaligned' | dd of="$MP/disk" bs=1 seek=1000 conv=notrunc status=none ||
	fail "unaligned write"
assert_eq "hello, unaligned" "$(dd if="$LUNF" bs=1 skip=1000 count=16 status=none)" "unaligned bytes"
assert_eq "$(dd if="$T/src" bs=1 skip=1016 count=100 status=none | od -An -tx1)" \
	"$(dd if="$LUNF" bs=1 skip=1016 count=100 status=none | od -An -tx1)" "bytes after the edge kept"

scenario "ext4 on a loop device over disk: write files, umount, e2fsck -fn clean"
LOOP=$(losetup --direct-io=on -f --show "$MP/disk") || fail "losetup"
mkfs.ext4 -q -F "$LOOP" || fail "mkfs.ext4"
mkdir -p "$T/fs"
mount "$LOOP" "$T/fs" || fail "mount ext4"
for i in $(seq 1 50); do
	head -c $((i * 10000)) "$T/src" >"$T/fs/f$i" || fail "write f$i"
done
dd if="$T/src" of="$T/fs/big" bs=1M count=32 status=none conv=fsync || fail "big file"
sync
umount "$T/fs" || fail "umount ext4"
mount "$LOOP" "$T/fs" || fail "remount ext4"
assert_eq "$(head -c 330000 "$T/src" | sha256sum)" "$(sha256sum <"$T/fs/f33")" "f33 after a remount"
umount "$T/fs" || fail "umount ext4"
losetup -d "$LOOP" || fail "losetup -d"
LOOP=""
e2fsck -fn "$LUNF" >"$T/fsck.out" 2>&1 || fail "e2fsck on the backing file: $(tail -n 5 "$T/fsck.out")"
log "  e2fsck -fn: $(tail -n 1 "$T/fsck.out")"
helper_stop "$MP" "$HPID"

scenario "target outage mid-write: EIO within the timeout, low CPU, recovery (with --pr-key)"
helper_start "$MP" --pr-key 0xa1
[[ -n $HPID ]] || fail "ready line: '$READY'"
"$PY" - "$MP/disk" >"$T/writer.out" 2>&1 <<-'EOF' &
	import os, sys, time
	fd = os.open(sys.argv[1], os.O_WRONLY)
	buf = b"\x5a" * (1 << 20)
	size = os.fstat(fd).st_size
	n = 0
	print("started", flush=True)
	while True:
	    try:
	        os.pwrite(fd, buf, (n << 20) % size)
	    except OSError as e:
	        print("errno", e.errno, "at", int(time.time() * 1000), flush=True)
	        sys.exit(0)
	    n += 1
	EOF
WPID=$!
VD_EXTRA_PIDS="${VD_EXTRA_PIDS:-} $WPID"
wait_until 10 grep -q started "$T/writer.out" || fail "the writer did not start"
sleep 1
iscsi_target_stop
c0=$(cpu_ticks "$HPID")
wait_until $((TIMEOUT_MS / 1000 + MARGIN_S)) sh -c '! kill -0 '"$WPID" ||
	fail "the writer still hangs $((TIMEOUT_MS / 1000 + MARGIN_S)) s after the target stopped"
wait "$WPID"
w=$(cat "$T/writer.out" | tail -n 1)
log "  writer: $w"
assert_match "$w" '^errno 5 ' "the writer's error (EIO)"
err_ms=$(awk '{ print $4 }' <<<"$w")
log "  EIO $((err_ms - ISCSI_STOPPED_MS)) ms after tgtd was gone (timeout $TIMEOUT_MS ms)"
((err_ms - ISCSI_STOPPED_MS <= TIMEOUT_MS + MARGIN_S * 1000)) || fail "EIO came too late"
s=$(now_ms)
dd if="$MP/disk" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null &&
	fail "a read succeeded with the target down"
e=$(now_ms)
log "  a read with the target down failed after $((e - s)) ms"
((e - s <= TIMEOUT_MS + MARGIN_S * 1000)) || fail "a read during the outage took $((e - s)) ms"
sleep 3
c1=$(cpu_ticks "$HPID")
hz=$(getconf CLK_TCK)
log "  helper CPU over the outage: $((c1 - c0)) ticks (${hz} Hz)"
(((c1 - c0) * 100 <= hz * 6 * 10)) || fail "the helper used more than 10% CPU while the target was down"
kill -0 "$HPID" || fail "the helper died with the target"
iscsi_target_restart
wait_until 15 dd if=/dev/zero of="$MP/disk" bs=1M count=4 conv=fsync,notrunc status=none ||
	fail "no write works after the target came back"
grep -q 'event=iscsi-session-up reconnect=1' "$HLOG" || fail "no reconnect logged"
grep -q 'event=pr-reserved key=0xa1' <(tail -n 20 "$HLOG") || fail "the reservation was not taken again after the reconnect"
helper_stop "$MP" "$HPID"
grep -q 'event=pr-released key=0xa1' <(tail -n 5 "$HLOG") || fail "no release of the reservation on unmount"

scenario "fencing: a second key cannot reserve; a preempted node's writes fail with EIO"
MA=$T/node-a MB=$T/node-b
helper_start "$MA" --pr-key 0xaaaa
[[ -n $HPID ]] || fail "node A: '$READY'"
APID=$HPID
dd if=/dev/zero of="$MA/disk" bs=1M count=1 conv=fsync,notrunc status=none || fail "node A writes"
helper_start "$MB" --pr-key 0xbbbb
assert_match "$READY" '^error: reserved by key 0xaaaa' "node B's ready line"
not_mounted "$MB" || fail "node B mounted despite the reservation"
# Node B fences A (as the controller does when A's lease expired).
helper_start "$MB" --pr-key 0xbbbb --preempt 0xaaaa
[[ -n $HPID ]] || fail "node B preempting: '$READY'"
BPID=$HPID
s=$(now_ms)
dd if=/dev/zero of="$MA/disk" bs=1M count=1 conv=fsync,notrunc status=none 2>"$T/a.err" &&
	fail "node A could still write after being preempted"
e=$(now_ms)
log "  node A's write failed after $((e - s)) ms: $(head -n 1 "$T/a.err")"
((e - s <= 2000)) || fail "the fenced write took $((e - s)) ms (must fail at once)"
grep -q 'event=fenced' "$HLOG" || fail "node A logged no fence"
dd if="$MA/disk" of=/dev/null bs=1M count=1 status=none || fail "node A cannot read (Write Exclusive allows reads)"
printf 'node-b' | dd of="$MB/disk" bs=512 seek=0 conv=notrunc,fsync status=none || fail "node B writes"
assert_eq node-b "$(head -c 6 "$LUNF")" "node B's write on the LUN"
helper_stop "$MA" "$APID"
helper_stop "$MB" "$BPID"

scenario "connection cut, tgtd keeps its state: re-register, preempt our own stale key, go on"
helper_start "$MP" --pr-key 0xc1
[[ -n $HPID ]] || fail "ready line: '$READY'"
CPID=$HPID
dd if=/dev/zero of="$MP/disk" bs=1M count=1 conv=fsync,notrunc status=none || fail "first write"
# ss -K destroys the helper's TCP connection: tgtd keeps the old I_T
# nexus's registration and reservation, which the new session must take over.
ss -K -tn "dport = :$ISCSI_PORT" >/dev/null 2>&1 || skip "ss -K (socket destroy) is not available"
wait_until 10 dd if=/dev/urandom of="$MP/disk" bs=1M count=2 conv=fsync,notrunc status=none ||
	fail "no write works after the connection was cut"
grep -q 'event=pr-reservation-kept key=0xc1' <(tail -n 20 "$HLOG") ||
	fail "the stale registration of our own key was not preempted: $(tail -n 5 "$HLOG")"
# Still ours: another key cannot reserve.
helper_start "$T/other" --pr-key 0xc2
assert_match "$READY" '^error: reserved by key 0xc1' "another key after our reconnect"
helper_stop "$MP" "$CPID"

scenario "CHAP: credentials through --secret-fd only; a wrong password is refused"
iscsi_tgtadm --lld iscsi --op new --mode account --user vdchap --password s3cret-chap-pw || fail "tgtadm account"
iscsi_tgtadm --lld iscsi --op bind --mode account --tid 1 --user vdchap || fail "tgtadm bind account"
helper_start "$MP" 4< <(printf 'vdchap\nwrong-password\n') --secret-fd 4
assert_match "$READY" '^error: ' "a wrong CHAP password"
helper_start "$MP" 4< <(printf 'vdchap\ns3cret-chap-pw\n') --secret-fd 4
[[ -n $HPID ]] || fail "the right CHAP password: '$READY'"
dd if=/dev/zero of="$MP/disk" bs=1M count=1 conv=fsync,notrunc status=none || fail "write with CHAP"
tr '\0' ' ' <"/proc/$HPID/cmdline" | grep -q s3cret && fail "the password is on the helper's command line"
grep -q s3cret "$HLOG" && fail "the password is in the log"
helper_stop "$MP" "$HPID"
iscsi_tgtadm --lld iscsi --op unbind --mode account --tid 1 --user vdchap || fail "tgtadm unbind account"

scenario "SIGTERM: the helper unmounts and exits"
helper_start "$MP"
[[ -n $HPID ]] || fail "ready line: '$READY'"
kill -TERM "$HPID"
wait_until 10 sh -c '! kill -0 '"$HPID" || fail "the helper ignored SIGTERM"
not_mounted "$MP" || fail "still mounted after SIGTERM"

log "PASS: test_iscsi_fuse ($W_MBPS MB/s write, $R_MBPS MB/s read through the disk file)"
