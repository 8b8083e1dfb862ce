#!/usr/bin/env bash
# run.sh — volumed's benchmarks (`make bench`), against a private dockerd
# and volumed set up by the integration harness, in a temporary directory.
#
#   (a) docker volume create + docker volume rm through volumed and through
#       Docker's built-in local driver, interleaved, median of N each; and a
#       container's start and exit with such a volume (docker run --rm -v);
#   (b) round trips on the plugin socket (bench/plugin_rtt.c, one keep-alive
#       connection): Get, List with V volumes, Create;
#   (c) volumed's resident memory (VmRSS) idle and with V volumes, and a
#       Prometheus scrape of GET /metrics with them;
#   (d) CSI round trips on one gRPC channel (bench/csi_bench.py): CreateVolume,
#       NodePublishVolume, ListVolumes with the V volumes, a full lifecycle;
#   (e) the NFS data path (bench/nfs_bench.c) against a private nfs-ganesha:
#       sequential 1 MiB writes + fsync and 1 MiB reads of BENCH_NFS_MIB MiB,
#       and 4 KiB files created + written + fsync'd, through an nfs volume's
#       mount (the FUSE helper) vs libnfs directly vs the local disk.
#   (f) the iSCSI data path against a private tgtd: sequential 1 MiB writes +
#       fsync and cold 1 MiB reads of BENCH_ISCSI_MIB MiB, and 4 KiB random
#       O_DIRECT writes + fdatasync (bench/blockio.c), through an iscsi volume
#       (ext4 on a loop device over volumed-iscsi-fuse) vs raw libiscsi on a
#       LUN (bench/iscsi_bench.c) vs ext4 on a loop device over a local file.
#   (g) volume moves between two node agents of one controller, per driver
#       (iscsi, nfs): graceful hand-over, forced move, crash move (SIGKILL),
#       from "use on B" to "mounted on B" (bench/move_bench.sh).
#
#   BUILD=build bench/run.sh [--out FILE]
#   BENCH_N (default 30), BENCH_VOLUMES (default 10000), BENCH_GETS (2000),
#   BENCH_LISTS (20, also CSI ListVolumes), BENCH_CSI_N (CSI creates and
#   publishes, default 500), BENCH_CSI_LIFECYCLES (200), BENCH_LOG_LEVEL (info),
#   BENCH_NFS (1; 0 skips (e)), BENCH_NFS_MIB (512), BENCH_NFS_FILES (500),
#   BENCH_NFS_REPS (3: the median of 3 runs of each NFS figure),
#   BENCH_ISCSI (1; 0 skips (f)), BENCH_ISCSI_MIB (512), BENCH_ISCSI_OPS (4 KiB
#   random writes per run, 2000), BENCH_ISCSI_REPS (3), BENCH_ISCSI_QD (8: raw
#   libiscsi's extra sequential rows with 8 commands in flight; 1 omits them),
#   BENCH_MOVE (1; 0 skips (g)), BENCH_MOVE_N (graceful and forced moves per
#   driver, 20), BENCH_MOVE_CRASH_N (crash moves per driver, BENCH_MOVE_N).
# Prints a table; writes nothing into the tree unless --out FILE is given.
set -u

out_file=""
while (($#)); do
	case $1 in
	--out) out_file=${2:?--out needs a file}; shift 2 ;;
	--out=*) out_file=${1#--out=}; shift ;;
	-h | --help) sed -n '2,36p' "$0"; exit 0 ;;
	*) echo "bench: unknown argument $1 (allowed: --out FILE)" >&2; exit 2 ;;
	esac
done
case $out_file in "" | /*) ;; *) out_file=$PWD/$out_file ;; esac

N=${BENCH_N:-30}
VOLS=${BENCH_VOLUMES:-10000}
GETS=${BENCH_GETS:-2000}
LISTS=${BENCH_LISTS:-20}
CSI_N=${BENCH_CSI_N:-500}
CSI_LIFECYCLES=${BENCH_CSI_LIFECYCLES:-200}
VD_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
NFS_BENCH=${BENCH_NFS:-1}
NFS_MIB=${BENCH_NFS_MIB:-512}
NFS_FILES=${BENCH_NFS_FILES:-500}
NFS_REPS=${BENCH_NFS_REPS:-3}
ISCSI_BENCH=${BENCH_ISCSI:-1}
ISCSI_MIB=${BENCH_ISCSI_MIB:-512}
ISCSI_OPS=${BENCH_ISCSI_OPS:-2000}
ISCSI_REPS=${BENCH_ISCSI_REPS:-3}
ISCSI_QD=${BENCH_ISCSI_QD:-8}
ISCSI_SPAN=64   # MiB: the file (or LUN region) the 4 KiB random writes land in
MOVE_BENCH=${BENCH_MOVE:-1}
MOVE_N=${BENCH_MOVE_N:-20}
MOVE_CRASH_N=${BENCH_MOVE_CRASH_N:-$MOVE_N}

source "$(dirname "$0")/../tests/integ/lib.sh"

now_ns() { date +%s%N; }

# median of the numbers on stdin
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# timed_us FILE CMD...: runs CMD (its output dropped), appends its time in
# microseconds to FILE; fails the bench when CMD fails.
timed_us() {
	local f=$1 t0 t1
	shift
	t0=$(now_ns)
	"$@" >/dev/null || fail "$* failed"
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$f"
}

# create_rm DRIVER NAME: docker volume create then rm.
create_rm() { docker volume create -d "$1" "$2" && docker volume rm "$2"; }

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$VD_PID/status"
}

# field KEY LINE: KEY=value out of a plugin_rtt line.
field() {
	tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

scenario "setup"
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$T/plugin_rtt" "$VD_ROOT/bench/plugin_rtt.c" ||
	fail "cannot compile bench/plugin_rtt.c"
csi_stubs_make
dockerd_start
volumed_start_csi
DRV=$VD_DRIVER
sleep 1
rss_idle=$(rss_kib)

scenario "(a) docker volume create + rm, volumed vs local, N=$N"
: >"$T/a.volumed"
: >"$T/a.local"
# One warm-up pair each: the first call activates the plugin.
docker volume create -d "$DRV" warm >/dev/null && docker volume rm warm >/dev/null ||
	fail "docker volume create/rm through volumed failed"
docker volume create -d local warm >/dev/null && docker volume rm warm >/dev/null ||
	fail "docker volume create/rm through local failed"
for ((i = 1; i <= N; i++)); do
	timed_us "$T/a.volumed" create_rm "$DRV" "bench$i"
	timed_us "$T/a.local" create_rm local "bench$i"
done
a_vd=$(median <"$T/a.volumed")
a_local=$(median <"$T/a.local")
log "median us: volumed $a_vd, local $a_local"

# A container's start and exit with a volume: what a task waits for.
image_import
docker volume create -d "$DRV" runv >/dev/null && docker volume create -d local runl >/dev/null ||
	fail "cannot create the docker run volumes"
: >"$T/a.run.volumed"
: >"$T/a.run.local"
drun --rm -v runv:/data "$IMAGE" true && drun --rm -v runl:/data "$IMAGE" true ||
	fail "docker run with a volume (warm-up)"
for ((i = 1; i <= N; i++)); do
	timed_us "$T/a.run.volumed" drun --rm -v runv:/data "$IMAGE" true
	timed_us "$T/a.run.local" drun --rm -v runl:/data "$IMAGE" true
done
a_run_vd=$(median <"$T/a.run.volumed")
a_run_local=$(median <"$T/a.run.local")
log "docker run --rm -v VOL:/data true, median us: volumed $a_run_vd, local $a_run_local"
docker volume rm runv runl >/dev/null || fail "cannot remove the docker run volumes"
dockerd_stop

scenario "(b) plugin socket round trips, (c) memory with $VOLS volumes"
rtt=$T/plugin_rtt
b_create=$("$rtt" "$VD_SOCK" create bv "$VOLS") || fail "creating $VOLS volumes: $b_create"
log "$b_create"
have=$(volctl --json status | jget volumes)
assert_eq "$VOLS" "$have" "volumes after the creates"
b_get=$("$rtt" "$VD_SOCK" get bv-1 "$GETS") || fail "Get: $b_get"
log "$b_get"
b_list=$("$rtt" "$VD_SOCK" list "$LISTS") || fail "List: $b_list"
log "$b_list"
sleep 1
rss_full=$(rss_kib)
log "VmRSS idle $rss_idle KiB, with $VOLS volumes $rss_full KiB"
# A Prometheus scrape of /metrics, with the gauges over all those volumes.
: >"$T/c.metrics"
for ((i = 0; i < 20; i++)); do
	timed_us "$T/c.metrics" curl -sf --unix-socket "$VD_API" http://localhost/metrics
done
c_metrics=$(median <"$T/c.metrics")
log "GET /metrics with $VOLS volumes, median us: $c_metrics"

scenario "(d) CSI round trips, one gRPC channel"
# csi_bench OP N: one line like plugin_rtt's.
csi_bench() {
	PYTHONPATH=$CSI_STUBS "$PY" "$VD_ROOT/bench/csi_bench.py" --endpoint "$VD_CSI_ENDPOINT" \
		--node "$VD_NODE" --dir "$T/csi-bench" "$@"
}
# vd_op_ms OP FROM: the median of volumed's own time (decode, handler,
# encode) for the CSI calls OP it logged after line FROM of its log.
vd_op_ms() {
	tail -n +"$(($2 + 1))" "$VD_LOG" | awk -v op="op=$1" '$3 == "csi" && $4 == op {
		for (i = 5; i <= NF; i++) if ($i ~ /^ms=/) print substr($i, 4) }' | median
}
d_probe=$(csi_bench probe "$GETS") || fail "CSI Probe: $d_probe"
log "$d_probe"
mark=$(wc -l <"$VD_LOG")
d_list=$(csi_bench list "$LISTS") || fail "CSI ListVolumes: $d_list"
log "$d_list"
assert_eq "$VOLS" "$(field entries "$d_list")" "CSI ListVolumes entries"
d_list_vd=$(vd_op_ms list_volumes "$mark")
mark=$(wc -l <"$VD_LOG")
d_create=$(csi_bench create "$CSI_N") || fail "CSI CreateVolume: $d_create"
log "$d_create"
d_create_vd=$(vd_op_ms create_volume "$mark")
mark=$(wc -l <"$VD_LOG")
d_publish=$(csi_bench publish "$CSI_N") || fail "CSI NodePublishVolume: $d_publish"
log "$d_publish"
d_publish_vd=$(vd_op_ms node_publish "$mark")
log "volumed's own median ms (its log): ListVolumes $d_list_vd, CreateVolume $d_create_vd," \
	"NodePublishVolume $d_publish_vd"
d_life=$(csi_bench lifecycle "$CSI_LIFECYCLES") || fail "CSI lifecycle: $d_life"
log "$d_life"
left=$(mountpoints | awk -v d="$T/csi-bench" 'index($0, d "/") == 1')
[[ -z $left ]] || fail "CSI bench left mounts: $left"

# ---- (e) NFS. Not fatal: without nfs-ganesha, libnfs or the nfs driver the
# section is reported as skipped (e_skip says why) and the table still prints.
e_skip=""
# nfs_step FIG CMD...: runs CMD, appends its output line to $T/e.FIG; on
# failure e_skip = why. nfs_pick FIG KEY: the line of $T/e.FIG whose KEY is
# the median of the repetitions.
nfs_step() {
	local fig=$1 out
	shift
	[[ -z $e_skip ]] || return 1
	if ! out=$("$@" 2>&1); then
		e_skip="$* failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		log "NFS: $e_skip"
		return 1
	fi
	[[ $fig == _ ]] && { E_OUT=$out; return 0; }
	echo "$out" >>"$T/e.$fig"
	log "$fig: $out"
}

nfs_pick() {
	[[ -s $T/e.$1 ]] || return 0
	local n
	n=$(wc -l <"$T/e.$1")
	while read -r line; do
		echo "$(field "$2" "$line") $line"
	done <"$T/e.$1" | sort -n | sed -n "$(((n + 1) / 2))p" | cut -d' ' -f2-
}

nfs_section() {
	if [[ $NFS_BENCH == 0 ]]; then e_skip="BENCH_NFS=0"; return; fi
	command -v ganesha.nfsd >/dev/null || { e_skip="nfs-ganesha not installed"; return; }
	pkg-config --exists libnfs || { e_skip="libnfs not installed (libnfs-dev)"; return; }
	cc -std=c11 -O2 -Wall -Wextra -Werror -o "$T/nfs_bench" "$VD_ROOT/bench/nfs_bench.c" \
		$(pkg-config --cflags --libs libnfs) >"$T/nfs_bench.cc.log" 2>&1 ||
		{ e_skip="cannot compile bench/nfs_bench.c: $(tail -n 3 "$T/nfs_bench.cc.log")"; return; }
	local nb=$T/nfs_bench
	nfs_server_start
	local q="?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
	mkdir -p "$NFS_EXPORT_DIR/volumes" "$NFS_EXPORT_DIR/direct" "$VD_STATE/nfs-bench-local"
	cat >"$T/volumed-nfs.json" <<-EOF
		{"drivers": {"nfs": {"backends": {"main": {"url":
		 "nfs://127.0.0.1$NFS_EXPORT_DIR/volumes$q", "mode": "auto"}}}}}
	EOF
	# volumed again, with the nfs backend (the catalog of (b)-(d) stays).
	# A volumed that refuses the config (no nfs driver) is no reason to fail
	# the whole benchmark: the section is skipped.
	volumed_stop
	"$VOLUMED_BIN" --config "$T/volumed-nfs.json" --state-dir "$VD_STATE" --api-socket "$VD_API" \
		--docker-socket "$VD_SOCK" --csi-endpoint "$VD_CSI_ENDPOINT" --node-id "$VD_NODE" \
		--log-level "$VD_LOG_LEVEL" >>"$VD_LOG" 2>&1 &
	VD_PID=$!
	record "pid $VD_PID"
	local deadline=$((SECONDS + 60))
	until "$VOLCTL_BIN" --api-socket "$VD_API" --json status >/dev/null 2>&1; do
		if ! vd_alive || ((SECONDS >= deadline)); then
			volumed_stop
			e_skip="volumed does not start with an nfs backend: $(grep -v "^###" "$VD_LOG" | tail -n 1)"
			return
		fi
		sleep 0.05
	done
	nfs_step _ volctl create nfsb -o driver=nfs -o backend=main || return
	nfs_step _ volctl mount nfsb --id bench || return
	E_MP=${E_OUT##*$'\n'}
	local srvvol=$NFS_EXPORT_DIR/volumes/nfsb
	local direct="nfs://127.0.0.1$NFS_EXPORT_DIR/direct"
	local loc=$VD_STATE/nfs-bench-local
	local rep
	# The three paths interleaved, NFS_REPS times; the median of each figure.
	for ((rep = 1; rep <= NFS_REPS; rep++)); do
		# Sequential: write, drop the file from the client's and the
		# server's page cache, read (cold on both sides).
		nfs_step vol_w "$nb" seq-write "$E_MP/seq" "$NFS_MIB" || return
		"$nb" drop "$srvvol/seq"
		nfs_step vol_r "$nb" seq-read "$E_MP/seq" || return
		nfs_step nfs_w "$nb" seq-write "$direct/seq$q" "$NFS_MIB" || return
		"$nb" drop "$NFS_EXPORT_DIR/direct/seq"
		nfs_step nfs_r "$nb" seq-read "$direct/seq$q" || return
		nfs_step loc_w "$nb" seq-write "$loc/seq" "$NFS_MIB" || return
		nfs_step loc_r "$nb" seq-read "$loc/seq" || return
		# Removed through NFS: see bench/nfs_bench.c on ganesha's cache.
		"$nb" unlink "$E_MP/seq" && "$nb" unlink "$direct/seq$q" && "$nb" unlink "$loc/seq" ||
			{ e_skip="removing the sequential files failed"; return; }
		# Small files: create (exclusive) + 4 KiB write + fsync + close.
		nfs_step vol_s "$nb" small "$E_MP" "$NFS_FILES" 4096 "s$rep-" || return
		nfs_step nfs_s "$nb" small "$direct$q" "$NFS_FILES" 4096 "s$rep-" || return
		nfs_step loc_s "$nb" small "$loc" "$NFS_FILES" 4096 "s$rep-" || return
		"$nb" rm "$E_MP" "$NFS_FILES" "s$rep-" && "$nb" rm "$direct$q" "$NFS_FILES" "s$rep-" &&
			"$nb" rm "$loc" "$NFS_FILES" "s$rep-" || { e_skip="removing the small files failed"; return; }
	done
	rm -rf "$NFS_EXPORT_DIR/direct" "$loc"
	nfs_step _ volctl unmount nfsb --id bench || return
	nfs_step _ volctl rm nfsb || return
	local p
	for p in vol nfs loc; do
		printf -v "e_${p}_w" '%s' "$(nfs_pick "${p}_w" mib_s)"
		printf -v "e_${p}_r" '%s' "$(nfs_pick "${p}_r" mib_s)"
		printf -v "e_${p}_s" '%s' "$(nfs_pick "${p}_s" files_s)"
	done
}

scenario "(e) NFS data path: nfs volume (FUSE) vs libnfs vs local disk, $NFS_MIB MiB, $NFS_FILES files, x$NFS_REPS"
nfs_section
[[ -z $e_skip ]] || log "NFS section skipped: $e_skip"
nfs_cleanup

# ---- (f) iSCSI. Not fatal, like (e): without tgt, libiscsi, FUSE, the
# iSCSI helper or volumed's iscsi driver the section is reported as skipped
# (f_skip says why) and the table still prints.
f_skip=""
f_vol_d=""
F_VOL=""   # set once the benchmark volume exists (removed on a failure)
# iscsi_step FIG CMD... and iscsi_pick FIG KEY: nfs_step and nfs_pick for
# (f), with $T/f.FIG and f_skip.
iscsi_step() {
	local fig=$1 out
	shift
	[[ -z $f_skip ]] || return 1
	if ! out=$("$@" 2>&1); then
		f_skip="$* failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		log "iSCSI: $f_skip"
		return 1
	fi
	[[ $fig == _ ]] && { F_OUT=$out; return 0; }
	echo "$out" >>"$T/f.$fig"
	log "$fig: $out"
}

iscsi_pick() {
	[[ -s $T/f.$1 ]] || return 0
	local n
	n=$(wc -l <"$T/f.$1")
	while read -r line; do
		echo "$(field "$2" "$line") $line"
	done <"$T/f.$1" | sort -n | sed -n "$(((n + 1) / 2))p" | cut -d' ' -f2-
}

# zero_fill FILE: FILE written full of zeros (in place, never longer,
# fsync'd, then dropped from the page cache), so the benchmark overwrites
# allocated blocks of the host's file system in every run: a sparse file's
# first writes also allocate, which made the first of the runs an outlier.
zero_fill() {
	local size
	size=$(stat -c %s "$1") || { f_skip="no $1"; return 1; }
	dd if=/dev/zero of="$1" bs=1M count="$((size / 1048576))" conv=notrunc,fsync status=none \
		2>"$T/dd.err" &&
		"$T/blockio" drop "$1" || { f_skip="zero-filling $1 failed: $(tail -n 1 "$T/dd.err")"; return 1; }
}

iscsi_section() {
	if [[ $ISCSI_BENCH == 0 ]]; then f_skip="BENCH_ISCSI=0"; return; fi
	command -v tgtd >/dev/null && command -v tgtadm >/dev/null ||
		{ f_skip="tgt not installed (tgtd, tgtadm)"; return; }
	pkg-config --exists libiscsi || { f_skip="libiscsi not installed (libiscsi-dev)"; return; }
	local helper
	helper=$(dirname "$VOLUMED_BIN")/volumed-iscsi-fuse
	[[ -x $helper ]] || { f_skip="no $helper (make all)"; return; }
	[[ -c /dev/fuse ]] && command -v fusermount3 >/dev/null ||
		{ f_skip="no FUSE (/dev/fuse, fusermount3)"; return; }
	command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null ||
		{ f_skip="losetup or mkfs.ext4 not installed"; return; }
	cc -std=c11 -O2 -Wall -Wextra -Werror -o "$T/blockio" "$VD_ROOT/bench/blockio.c" \
		>"$T/blockio.cc.log" 2>&1 ||
		{ f_skip="cannot compile bench/blockio.c: $(tail -n 3 "$T/blockio.cc.log")"; return; }
	cc -std=c11 -O2 -Wall -Wextra -Werror -o "$T/iscsi_bench" "$VD_ROOT/bench/iscsi_bench.c" \
		$(pkg-config --cflags --libs libiscsi) >"$T/iscsi_bench.cc.log" 2>&1 ||
		{ f_skip="cannot compile bench/iscsi_bench.c: $(tail -n 3 "$T/iscsi_bench.cc.log")"; return; }
	local bio=$T/blockio ib=$T/iscsi_bench
	# The volume: MIB for the sequential file, ISCSI_SPAN for the random
	# one, the rest for ext4's own (journal, inode tables).
	local size_mib=$((ISCSI_MIB + ISCSI_SPAN + 448))
	iscsi_target_start
	# Raw libiscsi: a target of its own (tid 1; volumed's is tid 50) on a
	# file beside volumed's state, so it does not disturb the volume.
	local raw_iqn=iqn.2026-01.io.volumed:bench-raw-$VD_ID raw_img=$T/iscsi-raw.img
	truncate -s "$((ISCSI_MIB > ISCSI_SPAN ? ISCSI_MIB : ISCSI_SPAN))M" "$raw_img"
	zero_fill "$raw_img" || return
	iscsi_target_add "$raw_iqn" "$raw_img" 1
	local raw=iscsi://$ISCSI_PORTAL/$raw_iqn/1
	# The local baseline: what the volume is minus FUSE, libiscsi and tgtd.
	# ext4 on a loop device with direct I/O over a file on the same disk,
	# of the volume's size, formatted as volumed formats a tgt volume.
	local loc_img=$T/iscsi-local.img loc=$T/iscsi-local dev out
	truncate -s "${size_mib}M" "$loc_img"
	zero_fill "$loc_img" || return
	mkdir -p "$loc"
	dev=$(losetup --direct-io=on -f --show "$loc_img" 2>"$T/losetup.err") ||
		{ f_skip="losetup: $(tail -n 1 "$T/losetup.err")"; return; }
	out=$(mkfs.ext4 -q -F -E nodiscard,assume_storage_prezeroed=1 "$dev" 2>&1 && mount "$dev" "$loc" 2>&1) ||
		{ f_skip="ext4 on $dev: $out"; return; }
	cat >"$T/volumed-iscsi.json" <<-EOF2
		{"drivers": {"iscsi": {"backends": {"pool": {"provisioner": "tgt",
		 "portal": "$ISCSI_PORTAL", "control_port": $ISCSI_CTL, "tid": 50}}}}}
	EOF2
	# volumed again, with the iscsi backend (as (e) does with nfs).
	volumed_stop
	"$VOLUMED_BIN" --config "$T/volumed-iscsi.json" --state-dir "$VD_STATE" --api-socket "$VD_API" \
		--docker-socket "$VD_SOCK" --csi-endpoint "$VD_CSI_ENDPOINT" --node-id "$VD_NODE" \
		--log-level "$VD_LOG_LEVEL" >>"$VD_LOG" 2>&1 &
	VD_PID=$!
	record "pid $VD_PID"
	local deadline=$((SECONDS + 60))
	until "$VOLCTL_BIN" --api-socket "$VD_API" --json status >/dev/null 2>&1; do
		if ! vd_alive || ((SECONDS >= deadline)); then
			volumed_stop
			f_skip="volumed does not start with an iscsi backend: $(grep -v "^###" "$VD_LOG" | tail -n 1)"
			return
		fi
		sleep 0.05
	done
	iscsi_step _ volctl create ib -o driver=iscsi -o "size=${size_mib}Mi" || return
	F_VOL=1
	# The volume's LUN on the target side: zero-filled like the others
	# (before any initiator logs in; a tgt LUN reads as zeros anyway), and
	# dropped from the page cache before each cold read.
	local lun_img
	lun_img=$(ls "$VD_STATE"/iscsi-pool/pool/lun-*.img 2>/dev/null)
	[[ -f $lun_img ]] || { f_skip="no single LUN image in $VD_STATE/iscsi-pool/pool: $lun_img"; return; }
	zero_fill "$lun_img" || return
	iscsi_step _ volctl mount ib --id bench || return
	local mp=${F_OUT##*$'\n'}
	# The helper's file under the loop device (the driver's layout:
	# <name>/lun/disk beside <name>/mnt), read directly for one more row.
	local disk
	disk=$(dirname "$mp")/lun/disk
	[[ -f $disk ]] || disk=""
	local rep
	# The paths interleaved, ISCSI_REPS times; the median of each figure.
	for ((rep = 1; rep <= ISCSI_REPS; rep++)); do
		# Sequential: write + fsync (blockio then drops the file's pages),
		# drop the target's backing file too, read (cold on both sides).
		iscsi_step vol_w "$bio" seq-write "$mp/seq" "$ISCSI_MIB" || return
		"$bio" drop "$lun_img"
		iscsi_step vol_r "$bio" seq-read "$mp/seq" || return
		# The same bytes read from the helper's disk file at the file's
		# extents, O_DIRECT 1 MiB: FUSE + helper, without ext4 and the loop.
		if [[ -n $disk ]]; then
			"$bio" drop "$lun_img"
			iscsi_step vol_d "$bio" disk-read "$mp/seq" "$disk" || return
		fi
		iscsi_step raw_w "$ib" seq-write "$raw" "$ISCSI_MIB" 1 || return
		"$bio" drop "$raw_img"
		iscsi_step raw_r "$ib" seq-read "$raw" "$ISCSI_MIB" 1 || return
		if ((ISCSI_QD > 1)); then
			iscsi_step rawq_w "$ib" seq-write "$raw" "$ISCSI_MIB" "$ISCSI_QD" || return
			"$bio" drop "$raw_img"
			iscsi_step rawq_r "$ib" seq-read "$raw" "$ISCSI_MIB" "$ISCSI_QD" || return
		fi
		iscsi_step loc_w "$bio" seq-write "$loc/seq" "$ISCSI_MIB" || return
		"$bio" drop "$loc_img"
		iscsi_step loc_r "$bio" seq-read "$loc/seq" || return
		rm -f "$mp/seq" "$loc/seq" || { f_skip="removing the sequential files failed"; return; }
		# 4 KiB random writes, each made durable (the file, or the LUN's
		# first ISCSI_SPAN MiB, written once first, untimed).
		iscsi_step vol_x "$bio" randw "$mp/rand" "$ISCSI_SPAN" "$ISCSI_OPS" "$rep" || return
		iscsi_step raw_x "$ib" randw "$raw" "$ISCSI_SPAN" "$ISCSI_OPS" "$rep" || return
		iscsi_step loc_x "$bio" randw "$loc/rand" "$ISCSI_SPAN" "$ISCSI_OPS" "$rep" || return
	done
	rm -f "$mp/rand"
	umount "$loc" && losetup -d "$dev" || { f_skip="cannot unmount $loc ($dev)"; return; }
	rm -f "$loc_img" "$raw_img"
	iscsi_step _ volctl unmount ib --id bench || return
	iscsi_step _ volctl rm ib || return
	F_VOL=""
	local p
	for p in vol raw rawq loc; do
		printf -v "f_${p}_w" '%s' "$(iscsi_pick "${p}_w" mib_s)"
		printf -v "f_${p}_r" '%s' "$(iscsi_pick "${p}_r" mib_s)"
		printf -v "f_${p}_x" '%s' "$(iscsi_pick "${p}_x" iops)"
	done
	f_vol_d=$(iscsi_pick vol_d mib_s)
}

scenario "(f) iSCSI data path: iscsi volume (FUSE) vs libiscsi vs loop device, $ISCSI_MIB MiB, $ISCSI_OPS random writes, x$ISCSI_REPS"
iscsi_section
if [[ -n $f_skip ]]; then
	log "iSCSI section skipped: $f_skip"
	# A volume left behind by a failed step: unmounted and removed while
	# volumed still serves it (best effort; cleanup unmounts the rest).
	if [[ -n $F_VOL ]] && vd_alive; then
		volctl unmount ib --id bench >/dev/null 2>&1
		volctl rm ib >/dev/null 2>&1
	fi
fi
# tgtd, the local loop device, anything a failed step left mounted.
[[ -z $ISCSI_PORT ]] || iscsi_cleanup

# ---- (g) Moves between nodes (bench/move_bench.sh). Not fatal, like (e) and
# (f): g_skip (or g_skip_iscsi, g_skip_nfs) says why, and the table still prints.
source "$(dirname "$0")/move_bench.sh"
scenario "(g) volume moves between two nodes: graceful, forced x$MOVE_N, crash x$MOVE_CRASH_N, iscsi and nfs"
move_section
[[ -z $g_skip ]] || log "moves section skipped: $g_skip"
move_cleanup

ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
us() { awk -v u="$1" 'BEGIN { printf "%.0f us", u }'; }
ms_of() { awk -v m="$1" 'BEGIN { printf "%.1f ms", m }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

table() {
	local fmt='%-46s %-11s %-11s %-15s %s\n'
	echo "volumed benchmarks: $(date -u +%Y-%m-%d), $(nproc) cores, Linux $(uname -r)," \
		"$("$DOCKER_BIN" --version | cut -d, -f1)"
	printf "$fmt" "figure" "median" "p99" "docker local" "ratio"
	printf "$fmt" "docker volume create + rm (N=$N)" "$(ms "$a_vd")" "-" "$(ms "$a_local")" \
		"$(awk -v a="$a_vd" -v b="$a_local" 'BEGIN { printf "%.2f", a / b }')"
	printf "$fmt" "docker run --rm -v VOL:/data true (N=$N)" "$(ms "$a_run_vd")" "-" \
		"$(ms "$a_run_local")" "$(awk -v a="$a_run_vd" -v b="$a_run_local" 'BEGIN { printf "%.2f", a / b }')"
	printf "$fmt" "plugin Get round trip" \
		"$(us "$(field median_us "$b_get")")" "$(us "$(field p99_us "$b_get")")" "-" "-"
	printf "$fmt" "plugin List, $VOLS volumes" \
		"$(ms "$(field median_us "$b_list")")" "$(ms "$(field p99_us "$b_list")")" "-" "-"
	printf "$fmt" "plugin Create (directory volume)" \
		"$(ms "$(field median_us "$b_create")")" "$(ms "$(field p99_us "$b_create")")" "-" "-"
	printf "$fmt" "volumed RSS, idle" "$(mib "$rss_idle")" "-" "-" "-"
	printf "$fmt" "volumed RSS, $VOLS volumes" "$(mib "$rss_full")" "-" "-" "-"
	printf "$fmt" "GET /metrics, $VOLS volumes (curl)" "$(ms "$c_metrics")" "-" "-" "-"
	printf "$fmt" "CSI Probe round trip (client + transport)" \
		"$(us "$(field median_us "$d_probe")")" "$(us "$(field p99_us "$d_probe")")" "-" "-"
	printf "$fmt" "CSI CreateVolume (directory volume)" \
		"$(ms "$(field median_us "$d_create")")" "$(ms "$(field p99_us "$d_create")")" "-" "-"
	printf "$fmt" "  volumed's own time (its log)" "$(ms_of "$d_create_vd")" "-" "-" "-"
	printf "$fmt" "CSI NodePublishVolume (bind, staged volume)" \
		"$(ms "$(field median_us "$d_publish")")" "$(ms "$(field p99_us "$d_publish")")" "-" "-"
	printf "$fmt" "  volumed's own time (its log)" "$(ms_of "$d_publish_vd")" "-" "-" "-"
	printf "$fmt" "CSI ListVolumes, $VOLS volumes" \
		"$(ms "$(field median_us "$d_list")")" "$(ms "$(field p99_us "$d_list")")" "-" "-"
	printf "$fmt" "  volumed's own time (its log)" "$(ms_of "$d_list_vd")" "-" "-" "-"
	printf "$fmt" "  the Python client decoding the answer" \
		"$(ms "$(field parse_us "$d_list")")" "-" "-" "-"
	printf "$fmt" "CSI lifecycle, directory volume (8 RPCs)" \
		"$(ms "$(field median_us "$d_life")")" "$(ms "$(field p99_us "$d_life")")" "-" "-"
}

# ratio A B: A / B to two decimals ("-" when either is missing).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }

nfs_table() {
	local fmt='%-46s %-11s %-11s %-11s %-10s %s\n'
	echo
	if [[ -n $e_skip ]]; then
		echo "NFS data path: skipped ($e_skip)"
		return 0
	fi
	echo "NFS data path: nfs-ganesha $(ganesha.nfsd -v 2>&1 | grep -o 'Release = [^ ]*' | head -n 1 |
		cut -d' ' -f3) (FSAL VFS, loopback), libnfs $(pkg-config --modversion libnfs), NFSv3"
	echo "(median of $NFS_REPS runs each, the three paths interleaved)"
	printf "$fmt" "figure" "volume" "libnfs" "local disk" "vol/libnfs" "vol/local"
	local vw nw lw vr nr lr vs ns ls
	vw=$(field mib_s "$e_vol_w") nw=$(field mib_s "$e_nfs_w") lw=$(field mib_s "$e_loc_w")
	vr=$(field mib_s "$e_vol_r") nr=$(field mib_s "$e_nfs_r") lr=$(field mib_s "$e_loc_r")
	vs=$(field files_s "$e_vol_s") ns=$(field files_s "$e_nfs_s") ls=$(field files_s "$e_loc_s")
	printf "$fmt" "seq write $NFS_MIB MiB, 1 MiB + fsync (MiB/s)" "$vw" "$nw" "$lw" \
		"$(ratio "$vw" "$nw")" "$(ratio "$vw" "$lw")"
	printf "$fmt" "seq read $NFS_MIB MiB, 1 MiB, cold (MiB/s)" "$vr" "$nr" "$lr" \
		"$(ratio "$vr" "$nr")" "$(ratio "$vr" "$lr")"
	printf "$fmt" "4 KiB files create+write+fsync (files/s)" "$vs" "$ns" "$ls" \
		"$(ratio "$vs" "$ns")" "$(ratio "$vs" "$ls")"
	printf "$fmt" "  median per file (us)" "$(field median_us "$e_vol_s")" \
		"$(field median_us "$e_nfs_s")" "$(field median_us "$e_loc_s")" "-" "-"
	printf "$fmt" "  p99 per file (us)" "$(field p99_us "$e_vol_s")" \
		"$(field p99_us "$e_nfs_s")" "$(field p99_us "$e_loc_s")" "-" "-"
}

iscsi_table() {
	local fmt='%-46s %-11s %-11s %-11s %-12s %s\n'
	echo
	if [[ -n $f_skip ]]; then
		echo "iSCSI data path: skipped ($f_skip)"
		return 0
	fi
	echo "iSCSI data path: tgt $(tgtadm --version 2>/dev/null) (tgtd on loopback, LUNs on files)," \
		"libiscsi $(pkg-config --modversion libiscsi)"
	echo "(median of $ISCSI_REPS runs each, the paths interleaved; volume: ext4, loop device (direct I/O),"
	echo " volumed-iscsi-fuse; libiscsi: 1 command in flight; loop local: ext4, loop device (direct I/O),"
	echo " a file on the local disk)"
	printf "$fmt" "figure" "volume" "libiscsi" "loop local" "vol/libiscsi" "vol/local"
	local vw rw lw vr rr lr vx rx lx
	vw=$(field mib_s "$f_vol_w") rw=$(field mib_s "$f_raw_w") lw=$(field mib_s "$f_loc_w")
	vr=$(field mib_s "$f_vol_r") rr=$(field mib_s "$f_raw_r") lr=$(field mib_s "$f_loc_r")
	vx=$(field iops "$f_vol_x") rx=$(field iops "$f_raw_x") lx=$(field iops "$f_loc_x")
	printf "$fmt" "seq write $ISCSI_MIB MiB, 1 MiB + fsync (MiB/s)" "$vw" "$rw" "$lw" \
		"$(ratio "$vw" "$rw")" "$(ratio "$vw" "$lw")"
	printf "$fmt" "seq read $ISCSI_MIB MiB, 1 MiB, cold (MiB/s)" "$vr" "$rr" "$lr" \
		"$(ratio "$vr" "$rr")" "$(ratio "$vr" "$lr")"
	if [[ -n $f_vol_d ]]; then
		local vd
		vd=$(field mib_s "$f_vol_d")
		printf "$fmt" "  same bytes from FUSE disk file, O_DIRECT" "$vd" "$rr" "-" \
			"$(ratio "$vd" "$rr")" "-"
	fi
	printf "$fmt" "4 KiB random write + fdatasync (IOPS)" "$vx" "$rx" "$lx" \
		"$(ratio "$vx" "$rx")" "$(ratio "$vx" "$lx")"
	printf "$fmt" "  median per write (us)" "$(field median_us "$f_vol_x")" \
		"$(field median_us "$f_raw_x")" "$(field median_us "$f_loc_x")" "-" "-"
	printf "$fmt" "  p99 per write (us)" "$(field p99_us "$f_vol_x")" \
		"$(field p99_us "$f_raw_x")" "$(field p99_us "$f_loc_x")" "-" "-"
	if ((ISCSI_QD > 1)); then
		local qw qr
		qw=$(field mib_s "$f_rawq_w") qr=$(field mib_s "$f_rawq_r")
		printf "$fmt" "seq write, libiscsi $ISCSI_QD in flight (MiB/s)" "-" "$qw" "-" \
			"$(ratio "$vw" "$qw")" "-"
		printf "$fmt" "seq read, libiscsi $ISCSI_QD in flight (MiB/s)" "-" "$qr" "-" \
			"$(ratio "$vr" "$qr")" "-"
	fi
}

echo
{ table; nfs_table; iscsi_table; move_table; }
if [[ -n $out_file ]]; then
	{ table; nfs_table; iscsi_table; move_table; } >"$out_file" || fail "cannot write $out_file"
	log "table written to $out_file"
fi
