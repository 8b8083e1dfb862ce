#!/usr/bin/env bash
# test_nfs.sh — volumed's nfs driver against a real NFS server (a private
# nfs-ganesha, lib.sh's nfs_server_start) and a real dockerd. The kernel
# here has no NFS client: volumes are mounted through volumed's FUSE helper
# (volumed-nfs-fuse, libnfs, NFSv3).
#
# Scenarios: create/list/delete through Docker, volctl and CSI, checked on
# the server side (the volume's directory and its metadata record); a
# container's bytes on the server; two containers sharing a volume; a
# 256 MiB file round trip (sha256); a database-like workload (small files,
# fsync, rename); uid/gid/mode options; the NFS server stopped in the middle
# of a write and restarted (bounded by timeout_ms, the mount works again);
# creates and mounts with the server down (refused in bounded time); the
# server frozen with SIGSTOP mid-write (a hung server: every caller ends
# within the bound, the helper does not spin, the mount works after SIGCONT);
# volumed killed with SIGKILL while a container uses a volume (I/O goes on,
# the restarted daemon adopts the mount, the Unmount works); and the state
# directory wiped (the catalog is rebuilt from the export).
#
# Independent scenarios run in a subshell: a failure ends that scenario
# only, the test goes on and fails at the end naming every failed one. The
# scenarios that restart volumed run last, in the test's own shell.
source "$(dirname "$0")/lib.sh"

FAILED=()
TIMEOUT_MS=5000

# sc_repair (after each scenario, lib.sh's sc): a stopped or frozen NFS
# server brought back.
sc_repair() {
	# A scenario that failed with the server stopped or frozen: bring it back.
	NFS_PID=$(nfs_server_pid)
	[[ -n $NFS_PID ]] && kill -CONT "$NFS_PID" 2>/dev/null
	if ! nfs_alive; then
		log "the NFS server is down after [$t]: restarting it"
		nfs_server_restart
	fi
}

# ---------------------------------------------------------------- helpers

# dk SECS ARGS...: docker ARGS bounded by SECS; drun_t SECS ARGS...: docker
# run --network none, bounded (a hung plugin call must not hang the test).
dk() {
	local s=$1
	shift
	timeout "$s" "$DOCKER_BIN" "$@"
}
drun_t() {
	local s=$1
	shift
	timeout "$s" "$DOCKER_BIN" run --network none "$@"
}

refs_of() { volctl --json inspect "$1" | jget status.refs; }
refs_are() { [[ $(refs_of "$1") == "$2" ]]; }
mounted_of() { volctl --json inspect "$1" | jget status.mounted; }
mountpoint_of() { volctl --json inspect "$1" | jget mountpoint; }
vol_list() { volctl --json ls | vol_names | tr '\n' ' '; }

# srv NAME: the volume's directory on the server side.
srv() { echo "$NFS_VOLS_DIR/$1"; }

# srv_find NAME FILE: FILE's path under the volume's server directory.
srv_find() {
	find "$(srv "$1")" -name "$2" -type f 2>/dev/null | head -n 1
}

# srv_meta NAME: the volume's metadata record on the server (beside its
# directory: drivers/nfs_meta.h, VD_NFS_RECORD_SUFFIX), when it exists.
srv_meta() {
	local f=$NFS_VOLS_DIR/$1.volumed.json
	[[ -f $f ]] && echo "$f"
	return 0
}

# fuse_mounts_on PATH: how many FUSE mounts are stacked on PATH.
fuse_mounts_on() {
	awk -v p="$1" '$5 == p { for (i = 6; i <= NF; i++) if ($i == "-") { if ($(i + 1) ~ /^fuse/) n++; break } }
		END { print n + 0 }' /proc/self/mountinfo
}

# helper_pids [PATH]: volumed-nfs-fuse helpers (whose command line names PATH).
helper_pids() {
	local p cmd
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == volumed-nfs-fu* ]] || continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ -z ${1:-} || $cmd == *"$1"* ]] && echo "${p#/proc/}"
	done
	return 0
}

# cpu_ticks PID: utime + stime of PID.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# dcreate NAME [OPTS...]: docker volume create on the nfs backend.
dcreate() {
	local n=$1
	shift
	assert_ok dk 60 volume create -d "$DRV" -o driver=nfs -o backend=main "$@" "$n"
}

nfs_csi() {
	PYTHONPATH=$CSI_STUBS "$PY" "$VD_ROOT/tests/integ/nfs_csi.py" --endpoint "$VD_CSI_ENDPOINT" \
		--node "$VD_NODE" --dir "$T" --state-dir "$VD_STATE" --server-dir "$NFS_VOLS_DIR" "$@"
}

# ---------------------------------------------------------------- setup

csi_stubs_make
nfs_server_start
NFS_VOLS_DIR=$NFS_EXPORT_DIR/volumes
VOLS_URL="nfs://127.0.0.1$NFS_VOLS_DIR?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
cat >"$T/volumed.json" <<EOF
{"drivers": {"nfs": {"backends": {"main": {"url": "$VOLS_URL", "mode": "auto",
  "timeout_ms": $TIMEOUT_MS}}}}}
EOF
dockerd_start
image_import
volumed_start_csi --config "$T/volumed.json"
DRV=$VD_DRIVER

# ---------------------------------------------------------------- scenarios

sc_docker_lifecycle() {
	dcreate dn1
	assert_ok docker volume ls -q --filter "driver=$DRV"
	assert_contains $'\n'"$OUT"$'\n' $'\n'dn1$'\n' "docker volume ls"
	assert_ok volctl --json inspect dn1
	assert_eq "nfs" "$(jget driver <<<"$OUT")" "driver of dn1 in volctl inspect"
	assert_eq "main" "$(jget options.backend <<<"$OUT")" "backend of dn1 in volctl inspect"
	[[ -d $(srv dn1) ]] || fail "no directory $(srv dn1) on the server after the create: $(ls -la "$NFS_VOLS_DIR" 2>&1)"
	local meta
	meta=$(srv_meta dn1)
	[[ -n $meta ]] || fail "no metadata record for dn1 on the server: $(find "$NFS_VOLS_DIR" | head -20)"
	assert_eq "dn1" "$(jget name <"$meta")" "name in the record $meta"
	log "  ok: on the server: $(srv dn1), record $meta: $(tr -d '\n' <"$meta")"
	assert_ok dk 60 volume inspect dn1
	assert_ok dk 60 volume rm dn1
	wait_until 5 test ! -e "$(srv dn1)" || fail "$(srv dn1) still on the server after docker volume rm"
	[[ -z $(srv_meta dn1) ]] || fail "metadata record left on the server: $(srv_meta dn1)"
	assert_not_contains "$(vol_list)" "dn1" "volctl ls after the rm"
	log "  ok: docker volume rm removed the directory and the record from the server"
}

sc_container_bytes() {
	dcreate dn2
	assert_ok drun_t 60 --rm -v dn2:/data "$IMAGE" sh -c 'echo hello-from-a-container > /data/hello.txt && sync'
	local f
	f=$(srv_find dn2 hello.txt)
	[[ -n $f ]] || fail "hello.txt is not under $(srv dn2) on the server: $(find "$(srv dn2)" 2>&1 | head)"
	assert_eq "hello-from-a-container" "$(cat "$f")" "bytes on the server"
	log "  ok: the container's file is on the server: $f"
	# The other way: a file put on the server is seen by a container.
	echo from-the-server >"$(dirname "$f")/server.txt"
	assert_ok drun_t 60 --rm -v dn2:/data "$IMAGE" cat /data/server.txt
	assert_eq "from-the-server" "$OUT" "a container reads a file written on the server"
	assert_eq "0" "$(refs_of dn2)" "refs after the containers went"
	assert_eq "0" "$(fuse_mounts_on "$(mountpoint_of dn2)")" "FUSE mounts on dn2's mountpoint after the containers"
}

sc_two_containers() {
	dcreate dn3
	assert_ok drun_t 60 -d --name sh1 -v dn3:/data "$IMAGE" sleep 300
	assert_ok drun_t 60 -d --name sh2 -v dn3:/data "$IMAGE" sleep 300
	assert_eq "2" "$(refs_of dn3)" "refs with two containers"
	assert_eq "1" "$(fuse_mounts_on "$(mountpoint_of dn3)")" "FUSE mounts with two containers"
	assert_ok docker exec sh1 sh -c 'echo one > /data/from1 && sync'
	assert_ok docker exec sh2 cat /data/from1
	assert_eq "one" "$OUT" "container 2 reads container 1's write"
	assert_ok docker exec sh2 sh -c 'echo two >> /data/from1 && echo x > /data/from2 && sync'
	assert_ok docker exec sh1 cat /data/from1 /data/from2
	assert_eq $'one\ntwo\nx' "$OUT" "container 1 reads container 2's writes"
	log "  ok: two containers see each other's writes"
	assert_ok docker rm -f sh1
	wait_until 10 refs_are dn3 1 || fail "refs after one container went: $(refs_of dn3)"
	assert_ok docker exec sh2 cat /data/from2
	assert_ok docker rm -f sh2
	wait_until 10 refs_are dn3 0 || fail "refs after both went: $(refs_of dn3)"
	local mp
	mp=$(mountpoint_of dn3)
	wait_until 10 test "$(fuse_mounts_on "$mp")" = 0 || fail "$mp still mounted after both containers went"
	assert_eq "" "$(helper_pids "$mp")" "FUSE helpers left for dn3"
}

sc_big_file() {
	dcreate dn4
	local t0=$SECONDS
	assert_ok drun_t 180 --rm -v dn4:/data "$IMAGE" sh -c \
		'dd if=/dev/urandom of=/data/big bs=1M count=256 conv=fsync 2>/dev/null && sha256sum /data/big'
	local sum_w=${OUT%% *}
	local f
	f=$(srv_find dn4 big)
	[[ -n $f ]] || fail "the 256 MiB file is not on the server"
	assert_eq "268435456" "$(stat -c %s "$f")" "size on the server"
	assert_eq "$sum_w" "$(sha256sum "$f" | cut -d' ' -f1)" "sha256 on the server"
	# Read back by a new container through a new mount (the first one is gone).
	assert_ok drun_t 180 --rm -v dn4:/data "$IMAGE" sha256sum /data/big
	assert_eq "$sum_w" "${OUT%% *}" "sha256 read back through the volume"
	log "  ok: 256 MiB written and read back, sha256 $sum_w ($((SECONDS - t0)) s)"
	assert_ok dk 60 volume rm dn4
}

sc_db_workload() {
	dcreate dn5
	local t0 t1
	t0=$(date +%s%N)
	# 400 records: write a temporary file, fsync it, rename it into place,
	# append to a journal and fsync that; the directory fsync'd at the end.
	assert_ok drun_t 180 --rm -v dn5:/data "$IMAGE" sh -c '
		mkdir -p /data/db || exit 1
		i=0
		while [ $i -lt 400 ]; do
			printf "record %d %s\n" $i 0123456789abcdef0123456789abcdef > /data/db/.tmp.$i || exit 2
			sync /data/db/.tmp.$i || exit 3
			mv /data/db/.tmp.$i /data/db/rec.$i || exit 4
			echo "commit $i" >> /data/db/journal || exit 5
			sync /data/db/journal || exit 6
			i=$((i + 1))
		done
		sync /data/db && ls /data/db | wc -l'
	t1=$(date +%s%N)
	assert_eq "401" "$OUT" "files in the db directory, seen by the container"
	local d
	d=$(dirname "$(srv_find dn5 journal)")
	[[ -d $d ]] || fail "the db directory is not on the server"
	assert_eq "400" "$(find "$d" -name 'rec.*' | wc -l)" "records on the server"
	assert_eq "0" "$(find "$d" -name '.tmp.*' | wc -l)" "temporary files left on the server"
	assert_eq "400" "$(wc -l <"$d/journal")" "journal lines on the server"
	assert_eq "record 399 0123456789abcdef0123456789abcdef" "$(cat "$d/rec.399")" "last record"
	log "  ok: 400 fsync+rename records and journal appends in $(((t1 - t0) / 1000000)) ms" \
		"($(((t1 - t0) / 400000)) us per record)"
	assert_ok dk 60 volume rm dn5
}

sc_volctl() {
	assert_ok volctl create vn1 -o driver=nfs -o backend=main
	assert_contains "$(vol_list)" "vn1" "volctl ls"
	[[ -d $(srv vn1) ]] || fail "no directory $(srv vn1) on the server after volctl create"
	assert_ok volctl mount vn1
	local mp=${OUT##*$'\n'}
	[[ -d $mp ]] || fail "volctl mount printed '$OUT', not a directory"
	assert_eq "1" "$(fuse_mounts_on "$mp")" "FUSE mounts on $mp after volctl mount"
	echo via-volctl >"$mp/v.txt" || fail "cannot write into $mp"
	sync "$mp/v.txt"
	assert_eq "via-volctl" "$(cat "$(srv_find vn1 v.txt)" 2>/dev/null)" "bytes on the server"
	assert_eq "1" "$(refs_of vn1)" "refs after volctl mount"
	assert_ok volctl unmount vn1
	wait_until 10 test "$(fuse_mounts_on "$mp")" = 0 || fail "$mp still mounted after volctl unmount"
	assert_eq "" "$(helper_pids "$mp")" "FUSE helpers left after volctl unmount"
	assert_ok volctl rm vn1
	wait_until 5 test ! -e "$(srv vn1)" || fail "$(srv vn1) left on the server after volctl rm"
	assert_not_contains "$(vol_list)" "vn1" "volctl ls after rm"
	log "  ok: volctl create, mount, write, unmount, rm"
	# Refusals: unknown backend, unknown option.
	assert_fails volctl create vn-bad -o driver=nfs -o backend=nosuch
	assert_contains "$OUT" "nosuch" "the refusal of an unknown backend names it"
	assert_fails volctl create vn-bad2 -o driver=nfs -o backend=main -o colour=blue
	assert_contains "$OUT" "colour" "the refusal of an unknown option names it"
	[[ ! -e $(srv vn-bad) && ! -e $(srv vn-bad2) ]] || fail "a refused create left a directory"
}

sc_ownership() {
	dcreate dn6 -o uid=1000 -o gid=1000 -o mode=0770
	assert_eq "1000 1000 770" "$(stat -c '%u %g %a' "$(srv dn6)")" "owner and mode of $(srv dn6) on the server"
	assert_ok drun_t 60 --rm -v dn6:/data "$IMAGE" stat -c '%u %g %a' /data
	assert_eq "1000 1000 770" "$OUT" "owner and mode of the volume root in a container"
	assert_ok drun_t 60 --rm --user 1000:1000 -v dn6:/data "$IMAGE" sh -c 'echo mine > /data/u && stat -c "%u %g" /data/u'
	assert_eq "1000 1000" "$OUT" "a file made by uid 1000 in the container"
	assert_eq "1000 1000" "$(stat -c '%u %g' "$(srv_find dn6 u)")" "its owner on the server"
	assert_fails drun_t 60 --rm --user 2000:2000 -v dn6:/data "$IMAGE" sh -c 'echo x > /data/other'
	log "  ok: uid/gid/mode set the volume root; another uid is refused"
	assert_ok dk 60 volume rm dn6
	assert_fails volctl create vn-badmode -o driver=nfs -o backend=main -o mode=9999
}

sc_outage() {
	dcreate dn7
	assert_ok drun_t 60 -d --name wr -v dn7:/data "$IMAGE" sh -c \
		'dd if=/dev/zero of=/data/out bs=1M count=4096 conv=fsync 2>/dev/null; echo "dd-exit=$?"; sleep 600'
	local f="" mp
	mp=$(mountpoint_of dn7)
	wait_until 30 sh -c "f=\$(find '$(srv dn7)' -name out); [ -n \"\$f\" ] && [ \$(stat -c %s \"\$f\") -gt 33554432 ]" ||
		fail "the writer did not get 32 MiB to the server within 30 s"
	local helper
	helper=$(helper_pids "$mp" | head -n 1)
	log "  writer running, $(du -sh "$(srv dn7)" | cut -f1) on the server; stopping the NFS server"
	local t_stop=$SECONDS c0
	nfs_server_stop
	[[ -n $helper ]] && c0=$(cpu_ticks "$helper")
	# The writer must finish (error or not) while the server is still down,
	# within a bound derived from timeout_ms.
	local bound=$((TIMEOUT_MS / 1000 * 3 + 10))
	wait_until "$bound" sh -c "docker logs wr 2>&1 | grep -q dd-exit=" ||
		fail "the writer still hangs $bound s after the NFS server stopped (timeout_ms $TIMEOUT_MS)"
	local t_exit=$((SECONDS - t_stop))
	log "  ok: the writer ended $t_exit s after the stop: $(docker logs wr 2>&1 | grep dd-exit=)"
	# A stat during the outage returns too, within the bound.
	local t0=$SECONDS
	run dk "$bound" exec wr ls /data
	((RC != 124)) || fail "ls of the volume hangs during the outage (> $bound s)"
	log "  ok: ls during the outage returned in $((SECONDS - t0)) s, status $RC"
	if [[ -n $helper ]] && kill -0 "$helper" 2>/dev/null; then
		local c1 elapsed=$((SECONDS - t_stop))
		c1=$(cpu_ticks "$helper")
		# CPU (ticks of 10 ms) over the outage: a spinning helper burns ~100 per second.
		(((c1 - c0) < 50 * elapsed + 50)) ||
			fail "the FUSE helper $helper used $((c1 - c0)) ticks of CPU in $elapsed s of outage (spinning?)"
		log "  ok: the helper used $((c1 - c0)) CPU ticks in $elapsed s of outage"
	fi
	nfs_server_restart
	# The same mount works again (a reconnect), within a bound.
	wait_until 60 dk 20 exec wr sh -c 'echo after > /data/after && cat /data/after' ||
		fail "the mount does not work 60 s after the NFS server came back"
	assert_ok dk 30 exec wr cat /data/after
	assert_eq "after" "$OUT" "a write after the outage"
	assert_eq "after" "$(cat "$(srv_find dn7 after)" 2>/dev/null)" "the write after the outage on the server"
	log "  ok: the mount works after the server came back"
	assert_ok dk 60 rm -f wr
	wait_until 10 refs_are dn7 0 || fail "refs after the writer went: $(refs_of dn7)"
	wait_until 10 test "$(fuse_mounts_on "$mp")" = 0 || fail "$mp still mounted after the writer went"
	# A fresh container on it works too.
	assert_ok drun_t 60 --rm -v dn7:/data "$IMAGE" cat /data/after
	assert_eq "after" "$OUT" "a new container after the outage"
	assert_ok dk 60 volume rm dn7
}

sc_outage_short() {
	# A short outage (well below timeout_ms): the writer completes or errs, bounded.
	dcreate dn8
	assert_ok drun_t 60 -d --name wr2 -v dn8:/data "$IMAGE" sh -c \
		'dd if=/dev/zero of=/data/out bs=1M count=512 conv=fsync 2>/dev/null; echo "dd-exit=$?"; sleep 600'
	wait_until 30 sh -c "f=\$(find '$(srv dn8)' -name out); [ -n \"\$f\" ] && [ \$(stat -c %s \"\$f\") -gt 16777216 ]" ||
		fail "the writer did not get 16 MiB to the server within 30 s"
	nfs_server_stop
	sleep 1
	nfs_server_restart
	local bound=$((TIMEOUT_MS / 1000 * 3 + 30))
	wait_until "$bound" sh -c "docker logs wr2 2>&1 | grep -q dd-exit=" ||
		fail "the writer still hangs $bound s after a 1 s outage"
	log "  ok: after a 1 s outage the writer ended: $(docker logs wr2 2>&1 | grep dd-exit=)"
	if docker logs wr2 2>&1 | grep -q dd-exit=0; then
		assert_eq "536870912" "$(stat -c %s "$(srv_find dn8 out)")" "size on the server after a successful write"
	fi
	assert_ok dk 30 exec wr2 sh -c 'echo ok > /data/ok && cat /data/ok'
	assert_ok dk 60 rm -f wr2
	wait_until 10 refs_are dn8 0 || fail "refs after the writer went: $(refs_of dn8)"
	assert_ok dk 60 volume rm dn8
}

sc_down() {
	# The server down: creates and mounts fail within the bound with a
	# reason, nothing is left half made, the catalog still answers.
	dcreate dn9
	local mp bound=$((TIMEOUT_MS / 1000 * 3 + 10)) t0 dt
	mp=$(mountpoint_of dn9)
	nfs_server_stop
	t0=$SECONDS
	run volctl create vdown -o driver=nfs -o backend=main
	dt=$((SECONDS - t0))
	((RC != 0)) || fail "volctl create succeeded with the NFS server down"
	((dt <= bound)) || fail "volctl create took $dt s to fail (bound $bound s)"
	log "  ok: volctl create refused in $dt s: $OUT"
	t0=$SECONDS
	run dk 60 volume create -d "$DRV" -o driver=nfs -o backend=main ddown
	dt=$((SECONDS - t0))
	((RC != 0 && RC != 124)) || fail "docker volume create with the server down: status $RC: $OUT"
	((dt <= bound)) || fail "docker volume create took $dt s to fail (bound $bound s)"
	log "  ok: docker volume create refused in $dt s"
	assert_ok timeout 5 "$VOLCTL_BIN" --api-socket "$VD_API" --json ls
	assert_not_contains "$(vol_names <<<"$OUT" | tr '\n' ' ')" "down" "volumes whose create failed"
	t0=$SECONDS
	run drun_t 90 --rm -v dn9:/data "$IMAGE" true
	dt=$((SECONDS - t0))
	((RC != 0 && RC != 124)) || fail "a container on dn9 with the server down: status $RC: $OUT"
	((dt <= bound)) || fail "the Mount took $dt s to fail (bound $bound s)"
	log "  ok: a container's Mount failed in $dt s: ${OUT:0:200}"
	assert_eq "0" "$(refs_of dn9)" "refs after the failed Mount"
	assert_eq "0" "$(fuse_mounts_on "$mp")" "FUSE mounts on $mp after the failed Mount"
	assert_eq "" "$(helper_pids "$mp")" "helpers left after the failed Mount"
	nfs_server_restart
	assert_ok drun_t 60 --rm -v dn9:/data "$IMAGE" sh -c 'echo back > /data/x && cat /data/x'
	assert_eq "back" "$OUT" "a container once the server is back"
	assert_ok dk 60 volume rm dn9
}

sc_frozen() {
	# A hung server (SIGSTOP: connections stay open, nothing answers): the
	# writer, a stat, a create and a new Mount all end within the bound;
	# the helper does not spin; after SIGCONT the mount works again.
	dcreate dn10
	dcreate dn11
	assert_ok drun_t 60 -d --name wr3 -v dn10:/data "$IMAGE" sh -c \
		'dd if=/dev/zero of=/data/out bs=1M count=4096 conv=fsync 2>/dev/null; echo "dd-exit=$?"; sleep 600'
	local mp bound=$((TIMEOUT_MS / 1000 * 3 + 10)) t0 dt helper c0 c1
	mp=$(mountpoint_of dn10)
	wait_until 30 sh -c "f=\$(find '$(srv dn10)' -name out); [ -n \"\$f\" ] && [ \$(stat -c %s \"\$f\") -gt 33554432 ]" ||
		fail "the writer did not get 32 MiB to the server within 30 s"
	helper=$(helper_pids "$mp" | head -n 1)
	nfs_server_freeze
	local t_freeze=$SECONDS
	[[ -n $helper ]] && c0=$(cpu_ticks "$helper")
	wait_until "$bound" sh -c "docker logs wr3 2>&1 | grep -q dd-exit=" ||
		{ nfs_server_thaw; fail "the writer still hangs $bound s after the server froze (timeout_ms $TIMEOUT_MS)"; }
	log "  ok: the writer ended $((SECONDS - t_freeze)) s after the freeze: $(docker logs wr3 2>&1 | grep dd-exit=)"
	t0=$SECONDS
	run timeout "$bound" "$DOCKER_BIN" exec wr3 ls /data
	((RC != 124)) || { nfs_server_thaw; fail "ls of the volume hangs with the server frozen (> $bound s)"; }
	log "  ok: ls with the server frozen returned in $((SECONDS - t0)) s, status $RC"
	t0=$SECONDS
	run timeout $((bound + 30)) "$VOLCTL_BIN" --api-socket "$VD_API" create vfrozen -o driver=nfs -o backend=main
	dt=$((SECONDS - t0))
	((RC != 0 && RC != 124)) || { nfs_server_thaw; fail "volctl create with the server frozen: status $RC: $OUT"; }
	((dt <= bound)) || { nfs_server_thaw; fail "volctl create took $dt s to fail with the server frozen (bound $bound s)"; }
	log "  ok: volctl create refused in $dt s: $OUT"
	t0=$SECONDS
	run drun_t $((bound + 60)) --rm -v dn11:/data "$IMAGE" true
	dt=$((SECONDS - t0))
	((RC != 0 && RC != 124)) || { nfs_server_thaw; fail "a new container on dn11 with the server frozen: status $RC: $OUT"; }
	((dt <= bound)) || { nfs_server_thaw; fail "a Mount took $dt s to fail with the server frozen (bound $bound s)"; }
	log "  ok: a new container's Mount failed in $dt s: ${OUT:0:200}"
	assert_ok timeout 5 "$VOLCTL_BIN" --api-socket "$VD_API" --json inspect dn10
	if [[ -n $helper ]] && kill -0 "$helper" 2>/dev/null; then
		local elapsed=$((SECONDS - t_freeze))
		c1=$(cpu_ticks "$helper")
		(((c1 - c0) < 50 * elapsed + 50)) ||
			{ nfs_server_thaw; fail "the FUSE helper $helper used $((c1 - c0)) ticks of CPU in $elapsed s with the server frozen (spinning?)"; }
		log "  ok: the helper used $((c1 - c0)) CPU ticks in $elapsed s"
	fi
	nfs_server_thaw
	wait_until 60 dk 20 exec wr3 sh -c 'echo thawed > /data/thawed && cat /data/thawed' ||
		fail "the mount does not work 60 s after the server was thawed"
	assert_eq "thawed" "$(cat "$(srv_find dn10 thawed)" 2>/dev/null)" "the write after the thaw on the server"
	log "  ok: the mount works after the thaw"
	assert_ok dk 60 rm -f wr3
	wait_until 10 refs_are dn10 0 || fail "refs after the writer went: $(refs_of dn10)"
	wait_until 10 test "$(fuse_mounts_on "$mp")" = 0 || fail "$mp still mounted after the writer went"
	assert_ok drun_t 60 --rm -v dn11:/data "$IMAGE" sh -c 'echo ok > /data/x'
	assert_ok dk 60 volume rm dn10
	assert_ok dk 60 volume rm dn11
}

sc "Docker: create, list, inspect, rm; checked on the server" sc_docker_lifecycle
sc "A container's bytes are on the server" sc_container_bytes
sc "Two containers on one volume" sc_two_containers
sc "256 MiB round trip (sha256)" sc_big_file
sc "Database-like workload: small files, fsync, rename" sc_db_workload
sc "volctl: create, ls, mount, unmount, rm" sc_volctl
sc "uid, gid, mode" sc_ownership
sc "CSI: lifecycle of a multi-writer nfs volume" nfs_csi lifecycle
sc "CSI: unknown backend" nfs_csi errors
sc "NFS server stopped mid-write, restarted" sc_outage
sc "NFS server down for 1 s mid-write" sc_outage_short
sc "NFS server down: create and mount fail in bounded time" sc_down
sc "NFS server frozen (SIGSTOP) mid-write, then thawed" sc_frozen

# ---------------------------------------------------------------- restarts (main shell)

# step_failed TITLE WHAT: a step of a dependent sequence failed.
step_failed() {
	echo "FAIL: [$1] $2" >&2
	FAILED+=("$1")
	log "FAILED: $1 (the rest of this scenario is skipped)"
}

kill9() {
	local t="volumed SIGKILL while a container uses an nfs volume"
	scenario "$t"
	run dk 60 volume create -d "$DRV" -o driver=nfs -o backend=main dk1
	((RC == 0)) || { step_failed "$t" "create: $OUT"; return; }
	run drun_t 60 -d --name ticker -v dk1:/data "$IMAGE" sh -c \
		'i=0; while true; do echo $i >> /data/ticks; i=$((i + 1)); sleep 0.1; done'
	((RC == 0)) || { step_failed "$t" "container: $OUT"; return; }
	local mp helper tf
	mp=$(mountpoint_of dk1)
	wait_until 10 test -n "$(srv_find dk1 ticks)" || { step_failed "$t" "no ticks on the server"; return; }
	tf=$(srv_find dk1 ticks)
	helper=$(helper_pids "$mp")
	[[ -n $helper ]] || { step_failed "$t" "no volumed-nfs-fuse helper for $mp"; return; }
	volumed_kill9
	local n0 n1
	n0=$(wc -l <"$tf")
	sleep 2
	n1=$(wc -l <"$tf")
	((n1 > n0)) || { step_failed "$t" "the container's writes stopped with volumed dead ($n0 -> $n1 lines)"; }
	kill -0 $helper 2>/dev/null || step_failed "$t" "the FUSE helper died with volumed"
	log "  ok: with volumed dead the container wrote $((n1 - n0)) more lines"
	volumed_start_csi --config "$T/volumed.json"
	local refs mnt
	refs=$(refs_of dk1)
	mnt=$(mounted_of dk1)
	[[ $refs == 1 && $mnt == true ]] || step_failed "$t" "after the restart: refs '$refs' (want 1), mounted '$mnt' (want true)"
	[[ $(fuse_mounts_on "$mp") == 1 ]] || step_failed "$t" "FUSE mounts on $mp after the restart: $(fuse_mounts_on "$mp") (want 1)"
	[[ $(helper_pids "$mp") == "$helper" ]] || step_failed "$t" "helpers for $mp after the restart: '$(helper_pids "$mp" | tr '\n' ' ')' (want the adopted $helper)"
	n0=$(wc -l <"$tf")
	sleep 1
	n1=$(wc -l <"$tf")
	((n1 > n0)) || step_failed "$t" "the container's writes stopped after the restart"
	local mark
	mark=$(wc -l <"$D/dockerd.log")
	run dk 60 rm -f ticker
	((RC == 0)) || step_failed "$t" "docker rm -f ticker: $OUT"
	wait_until 10 refs_are dk1 0 || step_failed "$t" "refs after the container went: $(refs_of dk1)"
	wait_until 10 test "$(fuse_mounts_on "$mp")" = 0 || step_failed "$t" "$mp still mounted after the Unmount"
	wait_until 10 test -z "$(helper_pids "$mp")" || step_failed "$t" "the helper $helper still runs after the Unmount"
	local errs
	errs=$(tail -n +"$((mark + 1))" "$D/dockerd.log" | grep -E 'level=(error|warning)' | grep -iE "unmount|$VD_DRIVER" || true)
	[[ -z $errs ]] || step_failed "$t" "dockerd logged errors around the Unmount: $errs"
	log "  ok: adopted after the restart (refs 1, mounted, same helper); the Unmount released it"
}
kill9

wipe() {
	local t="State directory wiped: the nfs volumes come back from the export"
	scenario "$t"
	run dk 60 volume create -d "$DRV" -o driver=nfs -o backend=main -o uid=1000 -o gid=1000 -o mode=0770 dw1
	((RC == 0)) || { step_failed "$t" "create dw1: $OUT"; return; }
	run volctl create dw2 -o driver=nfs -o backend=main
	((RC == 0)) || { step_failed "$t" "create dw2: $OUT"; return; }
	run volctl create dw-local
	((RC == 0)) || { step_failed "$t" "create dw-local: $OUT"; return; }
	run drun_t 60 --rm -v dw2:/data "$IMAGE" sh -c 'echo survives > /data/s'
	((RC == 0)) || { step_failed "$t" "writing into dw2: $OUT"; return; }
	local before
	before=$(vol_list)
	log "  before: $before"
	# Nothing may be mounted from the state dir when it goes.
	local ids
	ids=$(docker ps -aq)
	[[ -n $ids ]] && docker rm -f $ids >/dev/null 2>&1
	volumed_stop
	unmount_under "$VD_STATE"
	rm -rf --one-file-system "$VD_STATE"
	volumed_start_csi --config "$T/volumed.json"
	local after
	after=$(vol_list)
	log "  after the wipe: $after"
	local v want="dw1 dw2"
	# dk1 too, when the SIGKILL scenario got as far as making it.
	[[ " $before " == *" dk1 "* ]] && want+=" dk1"
	for v in $want; do
		[[ " $after " == *" $v "* ]] || { step_failed "$t" "$v not back in volctl ls after the wipe: '$after'"; return; }
	done
	[[ " $after " != *" dw-local "* ]] || step_failed "$t" "the local volume dw-local came back from nowhere"
	run volctl --json inspect dw1
	[[ $(jget driver <<<"$OUT") == nfs ]] || step_failed "$t" "dw1 after the wipe is not an nfs volume: $OUT"
	[[ $(jget options.uid <<<"$OUT") == 1000 ]] || step_failed "$t" "dw1's options after the wipe lost uid=1000: $OUT"
	run drun_t 60 --rm -v dw2:/data "$IMAGE" cat /data/s
	[[ $RC == 0 && $OUT == survives ]] || step_failed "$t" "dw2's data after the wipe: (status $RC) $OUT"
	run drun_t 60 --rm -v dw1:/data "$IMAGE" stat -c '%u %g %a' /data
	[[ $OUT == "1000 1000 770" ]] || step_failed "$t" "dw1's root after the wipe: $OUT"
	run dk 60 volume ls -q --filter "driver=$DRV"
	[[ $'\n'$OUT$'\n' == *$'\n'dw1$'\n'* ]] || step_failed "$t" "docker volume ls after the wipe: $OUT"
	for v in $want; do
		run dk 60 volume rm "$v"
		((RC == 0)) || step_failed "$t" "docker volume rm $v after the wipe: $OUT"
		[[ ! -e $(srv "$v") ]] || step_failed "$t" "$(srv "$v") left on the server"
	done
	log "  ok: rebuilt from the export: $after"
}
wipe

scenario "nothing left behind"
left=$(mountpoints | awk -v a="$T/csi" -v b="$VD_STATE" 'index($0, a "/") == 1 || index($0, b "/") == 1')
[[ -z $left ]] || FAILED+=("mounts left under $T/csi or the state dir: $left")
ids=$(docker ps -aq)
[[ -n $ids ]] && docker rm -f $ids >/dev/null 2>&1
wait_until 10 test -z "$(helper_pids "$T/")" || FAILED+=("FUSE helpers left running: $(helper_pids "$T/" | tr '\n' ' ')")

if ((${#FAILED[@]})); then
	CUR_SCENARIO="summary"
	fail "$((${#FAILED[@]})) failed: $(printf '[%s] ' "${FAILED[@]}")"
fi
log "test_nfs: all scenarios passed"
