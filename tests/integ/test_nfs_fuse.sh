#!/usr/bin/env bash
# test_nfs_fuse.sh — volumed-nfs-fuse, the userspace NFS data path, against a
# real nfs-ganesha on loopback (lib.sh's nfs_server_*): the helper's command
# line and readiness protocol, POSIX operations checked on the server side,
# credentials, a 256 MiB round trip, 500 small files with fsync + rename, a
# crashed and a hung server (bounded EIO, low CPU, recovery without
# remounting) and the three ways it ends (SIGTERM, fusermount3 -u, umount).
#
# Prints the measured throughput (MB/s through the mount and with nfs-cp)
# and small-file rate. Environment: BUILD as for every integ test.
source "$(dirname "$0")/lib.sh"

HELPER=$VD_BIN/bin/volumed-nfs-fuse
[[ -x $HELPER ]] || fail "no $HELPER (make all)"
command -v fusermount3 >/dev/null || fail "fusermount3 not installed (fuse3)"
[[ -c /dev/fuse ]] || fail "no /dev/fuse"

TIMEOUT_MS=4000      # the helper's --timeout-ms in this test
MARGIN_S=3           # what a failing request may take beyond it
MP=$T/mnt
HLOG=$VD_LOG        # the helper's log: lib.sh shows it on failure, checks it for sanitizer reports
HPID=""

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# helper_start URL [ARGS...]: runs the helper detached on MP; READY = what
# it wrote on --ready-fd, HRC = the status of the process we started,
# HPID = the daemon's pid (from its log).
helper_start() {
	local url=$1 fd i n0
	shift
	n0=$(wc -l <"$HLOG")
	: >"$T/ready"
	exec {fd}>"$T/ready"
	"$HELPER" --url "$url" --mountpoint "$MP" --log "$HLOG" --ready-fd "$fd" \
		--timeout-ms "$TIMEOUT_MS" "$@" </dev/null
	HRC=$?
	exec {fd}>&-
	for ((i = 0; i < 100; i++)); do
		grep -q . "$T/ready" && break
		sleep 0.1
	done
	READY=$(cat "$T/ready")
	HPID=$(tail -n +$((n0 + 1)) "$HLOG" | sed -n 's/.*event=start pid=\([0-9]*\).*/\1/p' | tail -n 1)
	[[ -n $HPID ]] && record "pid $HPID"
	return 0
}

helper_alive() {
	[[ -n $HPID ]] && kill -0 "$HPID" 2>/dev/null
}

# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# helper_exit_code: the code its last "event=exit" line reports.
helper_exit_code() {
	sed -n 's/.*event=exit code=\([0-9]*\).*/\1/p' "$HLOG" | tail -n 1
}

# wait_helper_gone SECONDS
wait_helper_gone() {
	local deadline=$((SECONDS + $1))
	while helper_alive; do
		((SECONDS >= deadline)) && return 1
		sleep 0.1
	done
	return 0
}

# ---------------------------------------------------------------- setup
scenario "ganesha on loopback, a volume directory inside the export"
nfs_server_start
VOL=$NFS_EXPORT_DIR/volumes/v1
mkdir -p "$VOL" "$MP"
URL="nfs://127.0.0.1$VOL?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"

# ---------------------------------------------------------------- arguments
scenario "bad arguments are refused with exit 2 and an error line on the ready fd"
helper_start "http://127.0.0.1/x"
assert_eq 2 "$HRC" "exit status for a bad URL"
assert_match "$READY" '^error: url: ' "ready line for a bad URL"
helper_start "nfs://127.0.0.1$VOL?nfsport=$NFS_PORT&bogus=1"
assert_eq 2 "$HRC" "exit status for an unknown query key"
assert_contains "$READY" "unknown query key" "ready line for an unknown key"
helper_start "$URL" --retries many
assert_eq 2 "$HRC" "exit status for a bad --retries"
assert_contains "$READY" "--retries" "ready line for a bad --retries"
not_mounted "$MP" || fail "something got mounted on $MP"

scenario "a missing volume directory: error on the ready fd, nothing mounted"
helper_start "nfs://127.0.0.1$NFS_EXPORT_DIR/volumes/nope?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
assert_eq 0 "$HRC" "status of the detaching process"
assert_match "$READY" '^error: ' "ready line for a missing directory"
wait_helper_gone 5 || fail "the helper kept running after a failed start"
not_mounted "$MP" || fail "something got mounted on $MP"
log "  refused: $READY"

# ---------------------------------------------------------------- start
scenario "start: detached, ready, mounted as fuse.volumed-nfs"
helper_start "$URL"
assert_eq 0 "$HRC" "status of the detaching process"
assert_match "$READY" '^ok [0-9]+$' "ready line (ok and the helper's pid)"
helper_alive || fail "the helper is not running (log: $(tail -n 5 "$HLOG"))"
is_mounted "$MP" || fail "$MP is not mounted"
assert_eq "fuse.volumed-nfs" "$(mount_fstype "$MP")" "file system type"
src=$(awk -v p="$MP" '$5 == p { for (i = 6; i <= NF; i++) if ($i == "-") { print $(i + 2); exit } }' /proc/self/mountinfo)
assert_eq "volumed-nfs:nfs://127.0.0.1$VOL" "$src" "fsname (the URL without its query)"
opts=$(awk -v p="$MP" '$5 == p { print $NF }' /proc/self/mountinfo)
assert_contains "$opts" "allow_other" "mount options"
assert_not_contains "$opts" "default_permissions" "mount options"
sid=$(ps -o sid= -p "$HPID" | tr -d ' ')
assert_eq "$HPID" "$(ps -o pid= -p "$HPID" | tr -d ' ')" "helper pid"
[[ $sid != "$(ps -o sid= -p $$ | tr -d ' ')" ]] || fail "the helper is in the test's session"
log "  helper pid $HPID, session $sid, ppid $(ps -o ppid= -p "$HPID" | tr -d ' ')"

# ---------------------------------------------------------------- operations
scenario "create, write, read, rename, link, symlink, chmod, truncate, fsync"
echo "hello nfs" >"$MP/a.txt" || fail "write a.txt"
assert_eq "hello nfs" "$(cat "$MP/a.txt")" "read back"
assert_eq "hello nfs" "$(cat "$VOL/a.txt")" "server side content"
mv "$MP/a.txt" "$MP/b.txt" || fail "rename"
[[ ! -e $VOL/a.txt && -f $VOL/b.txt ]] || fail "rename not seen on the server"
ln "$MP/b.txt" "$MP/c.txt" || fail "link"
assert_eq 2 "$(stat -c %h "$VOL/b.txt")" "link count on the server"
assert_eq "$(stat -c %i "$MP/b.txt")" "$(stat -c %i "$MP/c.txt")" "hard links share an inode number"
ln -s b.txt "$MP/d.lnk" || fail "symlink"
assert_eq "b.txt" "$(readlink "$VOL/d.lnk")" "symlink target on the server"
assert_eq "b.txt" "$(readlink "$MP/d.lnk")" "readlink"
assert_eq "hello nfs" "$(cat "$MP/d.lnk")" "read through the symlink"
chmod 640 "$MP/b.txt" || fail "chmod"
assert_eq 640 "$(stat -c %a "$VOL/b.txt")" "mode on the server"
truncate -s 5 "$MP/b.txt" || fail "truncate"
assert_eq "hello" "$(cat "$VOL/b.txt")" "truncated on the server"
touch -d '2001-02-03 04:05:06' "$MP/b.txt" || fail "utimens"
assert_eq "2001-02-03 04:05:06" "$(date -u -d "@$(stat -c %Y "$VOL/b.txt")" '+%F %T')" "mtime on the server"
mkdir -p "$MP/d1/d2" || fail "mkdir"
[[ -d $VOL/d1/d2 ]] || fail "mkdir not seen on the server"
rmdir "$MP/d1/d2" || fail "rmdir"
[[ ! -e $VOL/d1/d2 ]] || fail "rmdir not seen on the server"
rm "$MP/c.txt" "$MP/d.lnk" || fail "unlink"
[[ ! -e $VOL/c.txt && ! -e $VOL/d.lnk ]] || fail "unlink not seen on the server"
df_out=$(df -P "$MP" | tail -n 1)
assert_match "$df_out" "^volumed-nfs:" "statfs (df)"
assert_ok "$PY" - "$MP" "$VOL" <<-'EOF'
	import errno, os, sys
	mp, vol = sys.argv[1], sys.argv[2]
	p = os.path.join(mp, "x.bin")
	fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
	os.write(fd, b"abc")
	os.fsync(fd)
	os.close(fd)
	assert oct(os.stat(os.path.join(vol, "x.bin")).st_mode & 0o777) == oct(0o600), "create mode"
	try:
	    os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
	    sys.exit("O_EXCL create of an existing file succeeded")
	except FileExistsError:
	    pass
	fd = os.open(p, os.O_WRONLY | os.O_APPEND)
	os.write(fd, b"def")
	os.close(fd)
	assert open(os.path.join(vol, "x.bin"), "rb").read() == b"abcdef", "O_APPEND"
	fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
	os.close(fd)
	assert os.stat(os.path.join(vol, "x.bin")).st_size == 0, "O_TRUNC"
	# fsync of a directory: accepted
	dfd = os.open(mp, os.O_RDONLY | os.O_DIRECTORY)
	os.fsync(dfd)
	os.close(dfd)
	assert os.access(p, os.W_OK), "access"
	assert sorted(os.listdir(mp)) == ["b.txt", "d1", "x.bin"], sorted(os.listdir(mp))
EOF
# mv -n asks for RENAME_NOREPLACE (EINVAL here) and falls back: never replaces.
echo keep >"$MP/keep.txt"
echo other >"$MP/other.txt"
mv -n "$MP/other.txt" "$MP/keep.txt" 2>/dev/null
assert_eq "keep" "$(cat "$VOL/keep.txt")" "mv -n replaced the target"

scenario "credentials: the server decides, with the caller's uid, gid and groups"
mkdir -m 0777 "$MP/pub"
setpriv --reuid=1000 --regid=1000 --clear-groups touch "$MP/pub/u1000" || fail "create as uid 1000"
assert_eq "1000:1000" "$(stat -c %u:%g "$VOL/pub/u1000")" "owner on the server"
mkdir -m 0700 "$MP/private"
if setpriv --reuid=1000 --regid=1000 --clear-groups touch "$MP/private/x" 2>/dev/null; then
	fail "uid 1000 created a file in a root-only 0700 directory"
fi
mkdir -m 0770 "$MP/grp"
chown 0:2000 "$MP/grp"
setpriv --reuid=1000 --regid=1000 --groups=2000 touch "$MP/grp/ok" ||
	fail "a supplementary group did not grant access"

# ---------------------------------------------------------------- bulk
scenario "256 MiB round trip, same sha256 through the mount and on the server"
head -c 256M /dev/urandom >"$T/src.bin"
want=$(sha256sum <"$T/src.bin" | cut -d' ' -f1)
t0=$(now_ms)
dd if="$T/src.bin" of="$MP/big.bin" bs=1M conv=fsync status=none || fail "write 256 MiB"
t1=$(now_ms)
assert_eq "$want" "$(sha256sum <"$VOL/big.bin" | cut -d' ' -f1)" "sha256 on the server"
echo 3 >/proc/sys/vm/drop_caches
t2=$(now_ms)
dd if="$MP/big.bin" of=/dev/null bs=1M status=none || fail "read 256 MiB"
t3=$(now_ms)
# From the pages that read filled (the kernel keeps them while unchanged).
got=$(sha256sum <"$MP/big.bin" | cut -d' ' -f1)
assert_eq "$want" "$got" "sha256 read back through the mount"
W_MBS=$((256 * 1048576 / 1000 / (t1 - t0 > 0 ? t1 - t0 : 1)))
R_MBS=$((256 * 1048576 / 1000 / (t3 - t2 > 0 ? t3 - t2 : 1)))
log "  through the mount: write $W_MBS MB/s (with fsync), read $R_MBS MB/s (cold page cache)"
if command -v nfs-cp >/dev/null; then
	NURL="nfs://127.0.0.1$VOL/nfscp.bin?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
	t0=$(now_ms)
	nfs-cp "$T/src.bin" "$NURL" >/dev/null 2>&1 || log "  nfs-cp write failed"
	t1=$(now_ms)
	log "  nfs-cp (libnfs, no FUSE): write $((256 * 1048576 / 1000 / (t1 - t0 > 0 ? t1 - t0 : 1))) MB/s"
	rm -f "$MP/nfscp.bin"
fi
rm -f "$T/src.bin" "$MP/big.bin"

scenario "500 small files: create, write, fsync, rename"
assert_ok "$PY" - "$MP/small" <<-'EOF'
	import os, sys, time
	d = sys.argv[1]
	os.mkdir(d)
	t = time.time()
	for i in range(500):
	    tmp, dst = os.path.join(d, ".f%d.tmp" % i), os.path.join(d, "f%d" % i)
	    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
	    os.write(fd, (b"%d" % i) * 100)
	    os.fsync(fd)
	    os.close(fd)
	    os.rename(tmp, dst)
	dt = time.time() - t
	print("%.0f files/s (%.2f ms per file)" % (500 / dt, dt * 1000 / 500))
EOF
log "  small files: $OUT"
assert_eq 500 "$(find "$VOL/small" -name 'f*' -type f | wc -l)" "files on the server"
assert_eq 0 "$(find "$VOL/small" -name '.f*' | wc -l)" "temporary files left on the server"
assert_eq "$(printf '499%.0s' $(seq 100))" "$(cat "$VOL/small/f499")" "content of the last file"

# ---------------------------------------------------------------- outages
# writer FILE SECONDS: writes 1 MiB blocks into FILE (one open fd) until an
# error or SECONDS; prints "ok N" or "errno E after MS ms, N blocks".
WRITER='
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
buf, n, end = b"w" * 1048576, 0, time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        os.pwrite(fd, buf, (n % 64) * 1048576)
    except OSError as e:
        print("errno %d at %d" % (e.errno, int(time.time() * 1000)), n, flush=True)
        sys.exit(0)
    n += 1
print("ok", n, flush=True)
'

scenario "the server crashes mid-write: EIO within the timeout, low CPU, then recovery"
"$PY" -c "$WRITER" "$MP/crash.bin" 60 >"$T/writer.out" 2>&1 &
WPID=$!
VD_EXTRA_PIDS="${VD_EXTRA_PIDS:-} $WPID"
sleep 1
kill_ms=$(now_ms)
kill -KILL "$(nfs_server_pid)"
c0=$(cpu_ticks "$HPID")
wait_until $((TIMEOUT_MS / 1000 + MARGIN_S)) sh -c '! kill -0 '"$WPID" ||
	fail "the writer still hangs $((TIMEOUT_MS / 1000 + MARGIN_S)) s after the server died"
wait "$WPID"
w=$(cat "$T/writer.out")
log "  writer: $w"
if [[ $w == errno* ]]; then
	assert_match "$w" '^errno 5 ' "the writer's error (EIO)"
	err_ms=$(awk '{ print $4 }' <<<"$w")
	log "  EIO $((err_ms - kill_ms)) ms after the kill (timeout $TIMEOUT_MS ms)"
	((err_ms - kill_ms <= TIMEOUT_MS + MARGIN_S * 1000)) || fail "EIO came too late"
fi
# While the server stays down: a request fails in bounded time, no spinning.
s=$(now_ms)
if stat "$MP/b.txt" >/dev/null 2>&1 && ls "$MP/small" >/dev/null 2>&1; then
	log "  (answered from the attribute cache)"
fi
e=$(now_ms)
((e - s <= 2 * (TIMEOUT_MS + MARGIN_S * 1000))) || fail "requests during the outage took $((e - s)) ms"
sleep 3
c1=$(cpu_ticks "$HPID")
hz=$(getconf CLK_TCK)
log "  helper CPU over the outage: $((c1 - c0)) ticks in $((($(now_ms) - kill_ms) / 1000)) s (${hz} Hz)"
(((c1 - c0) * 100 <= hz * 3 * 10)) || fail "the helper used more than 10% CPU while the server was down"
helper_alive || fail "the helper died with the server"
is_mounted "$MP" || fail "the mount went away with the server"
nfs_server_restart
wait_until 15 sh -c 'echo after >"$1/after.txt"' _ "$MP" || fail "no write works after the server came back"
assert_eq "after" "$(cat "$VOL/after.txt")" "written after the restart"
dd if=/dev/zero of="$MP/after.bin" bs=1M count=16 conv=fsync status=none || fail "16 MiB after the restart"
assert_eq 16777216 "$(stat -c %s "$VOL/after.bin")" "size on the server"
# An fd opened before a crash still works after it (file handles persist).
"$PY" - "$MP/held.bin" "$T/held.go" >"$T/held.out" 2>&1 <<-'EOF' &
	import os, sys, time
	fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
	os.pwrite(fd, b"before", 0)
	print("opened", flush=True)
	while not os.path.exists(sys.argv[2]):
	    time.sleep(0.1)
	try:
	    os.pwrite(fd, b"after!", 6)
	    os.fsync(fd)
	    print("ok", flush=True)
	except OSError as e:
	    print("errno", e.errno, flush=True)
	os.close(fd)
EOF
HELD=$!
VD_EXTRA_PIDS="$VD_EXTRA_PIDS $HELD"
wait_until 10 grep -q opened "$T/held.out" || fail "the fd holder did not start: $(cat "$T/held.out")"
kill -KILL "$(nfs_server_pid)"
sleep 1
nfs_server_restart
touch "$T/held.go"
wait_until 20 sh -c '! kill -0 '"$HELD" || fail "the fd holder hangs"
assert_contains "$(cat "$T/held.out")" "ok" "a write on an fd opened before the crash"
assert_eq "beforeafter!" "$(cat "$VOL/held.bin")" "content written across the crash"

scenario "a hung server (SIGSTOP): bounded EIO, low CPU, recovery after SIGCONT"
nfs_server_restart
wait_until 15 sh -c 'echo again >"$1/again.txt"' _ "$MP" || fail "no write works after the restart"
echo 3 >/proc/sys/vm/drop_caches
nfs_server_freeze
c0=$(cpu_ticks "$HPID")
s=$(now_ms)
if { echo frozen >"$MP/frozen.txt"; } 2>/dev/null; then
	e=$(now_ms)
	log "  write during the freeze succeeded after $((e - s)) ms (cached?)"
else
	e=$(now_ms)
	log "  write during the freeze failed after $((e - s)) ms"
fi
((e - s <= 2 * (TIMEOUT_MS + MARGIN_S * 1000))) || fail "a request to a hung server took $((e - s)) ms"
sleep 2
c1=$(cpu_ticks "$HPID")
log "  helper CPU while hung: $((c1 - c0)) ticks over $((($(now_ms) - s) / 1000)) s"
(((c1 - c0) * 100 <= hz * 3 * 10)) || fail "the helper spun while the server was hung"
nfs_server_thaw
wait_until 20 sh -c 'echo thawed >"$1/thawed.txt"' _ "$MP" || fail "no write works after SIGCONT"
assert_eq "thawed" "$(cat "$VOL/thawed.txt")" "written after the thaw"

# ---------------------------------------------------------------- endings
scenario "SIGTERM: the helper unmounts and exits 0"
kill -TERM "$HPID"
wait_helper_gone 10 || fail "the helper ignored SIGTERM"
wait_until 5 not_mounted "$MP" || fail "$MP still mounted after SIGTERM"
assert_eq 0 "$(helper_exit_code)" "exit code in the helper log"

scenario "the node's lease: no start once it is over; changes fail with EIO for good when it runs out"
# lease_write SECS: a lease ending SECS from now (negative: already over).
lease_write() {
	"$PY" - "$T/lease" "$1" <<-'PYEOF'
		import sys, time
		boot = open("/proc/sys/kernel/random/boot_id").read().strip()
		end = int(time.monotonic() * 1000 + float(sys.argv[2]) * 1000)
		open(sys.argv[1], "w").write("volumed-lease 1 %s %d\n" % (boot, end))
	PYEOF
}
lease_write -1
helper_start "$URL" --lease-file "$T/lease"
assert_match "$READY" "^error: the node's lease .* has run out" "ready line with a lease that is over"
wait_helper_gone 5 || fail "the helper kept running with a lease that is over"
not_mounted "$MP" || fail "something got mounted on $MP with a lease that is over"
lease_write 2
t0=$(now_ms)
helper_start "$URL" --lease-file "$T/lease"
assert_match "$READY" '^ok [0-9]+$' "ready line with a lease that holds"
echo before >"$MP/lease.txt" && sync "$MP/lease.txt" || fail "no write while the lease holds"
sleep $(((2000 - ($(now_ms) - t0)) / 1000 + 1))
{ echo after >"$MP/lease.txt"; } 2>"$T/lease.err" && fail "a write succeeded after the lease ran out"
assert_contains "$(cat "$T/lease.err")" "Input/output error" "the failed write's error"
assert_eq "before" "$(cat "$MP/lease.txt")" "a read after the lease ran out"
assert_eq "before" "$(cat "$VOL/lease.txt")" "the file on the server"
grep -q "event=lease-expired" "$HLOG" || fail "the helper did not log that its lease ran out"
lease_write 30   # renewed: too late for this helper
{ touch "$MP/new.txt"; } 2>/dev/null && fail "a create succeeded after a renewal that came too late"
log "  ok: refused to start on an old lease; EIO on changes once it ran out, reads go on, a late renewal changes nothing"
kill -TERM "$HPID"
wait_helper_gone 10 || fail "the helper ignored SIGTERM"
wait_until 5 not_mounted "$MP" || fail "$MP still mounted after SIGTERM"

scenario "fusermount3 -u: the helper exits 0"
helper_start "$URL"
assert_match "$READY" '^ok [0-9]+$' "ready line (ok and the helper's pid)"
fusermount3 -u "$MP" || fail "fusermount3 -u"
wait_helper_gone 10 || fail "the helper outlived its mount"
assert_eq 0 "$(helper_exit_code)" "exit code in the helper log"

scenario "umount (umount2, as the driver does), --foreground: the helper exits 0"
"$HELPER" --url "$URL" --mountpoint "$MP" --log "$HLOG" --timeout-ms "$TIMEOUT_MS" \
	--foreground </dev/null &
HPID=$!
record "pid $HPID"
wait_until 10 is_mounted "$MP" || fail "no mount in --foreground mode"
ls "$MP" >/dev/null || fail "ls in --foreground mode"
umount "$MP" || fail "umount"
wait_until 10 sh -c '! kill -0 '"$HPID" || fail "the helper outlived its mount"
wait "$HPID"
assert_eq 0 "$?" "exit status after umount"

log "PASS"
