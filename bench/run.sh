#!/usr/bin/env bash
# run.sh — volumed's benchmarks (`make bench`), against a private dockerd
# and volumed set up by the integration harness, in a temporary directory.
#
#   (a) docker volume create + docker volume rm through volumed and through
#       Docker's built-in local driver, interleaved, median of N each;
#   (b) round trips on the plugin socket (bench/plugin_rtt.c, one keep-alive
#       connection): Get, List with V volumes, Create;
#   (c) volumed's resident memory (VmRSS) idle and with V volumes;
#   (d) CSI round trips on one gRPC channel (bench/csi_bench.py): CreateVolume,
#       NodePublishVolume, ListVolumes with the V volumes, a full lifecycle.
#
#   BUILD=build bench/run.sh [--out FILE]
#   BENCH_N (default 30), BENCH_VOLUMES (default 10000), BENCH_GETS (2000),
#   BENCH_LISTS (20, also CSI ListVolumes), BENCH_CSI_N (CSI creates and
#   publishes, default 500), BENCH_CSI_LIFECYCLES (200), BENCH_LOG_LEVEL (info).
# Prints a table; writes nothing into the tree unless --out FILE is given.
set -u

out_file=""
while (($#)); do
	case $1 in
	--out) out_file=${2:?--out needs a file}; shift 2 ;;
	--out=*) out_file=${1#--out=}; shift ;;
	-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
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

source "$(dirname "$0")/../tests/integ/lib.sh"

now_ns() { date +%s%N; }

# median of the numbers on stdin
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

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
	for drv in "$DRV" local; do
		t0=$(now_ns)
		docker volume create -d "$drv" "bench$i" >/dev/null || fail "docker volume create -d $drv bench$i"
		docker volume rm "bench$i" >/dev/null || fail "docker volume rm bench$i ($drv)"
		t1=$(now_ns)
		if [[ $drv == local ]]; then f=$T/a.local; else f=$T/a.volumed; fi
		echo $(((t1 - t0) / 1000)) >>"$f"
	done
done
a_vd=$(median <"$T/a.volumed")
a_local=$(median <"$T/a.local")
log "median us: volumed $a_vd, local $a_local"
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
	printf "$fmt" "plugin Get round trip" \
		"$(us "$(field median_us "$b_get")")" "$(us "$(field p99_us "$b_get")")" "-" "-"
	printf "$fmt" "plugin List, $VOLS volumes" \
		"$(ms "$(field median_us "$b_list")")" "$(ms "$(field p99_us "$b_list")")" "-" "-"
	printf "$fmt" "plugin Create (directory volume)" \
		"$(ms "$(field median_us "$b_create")")" "$(ms "$(field p99_us "$b_create")")" "-" "-"
	printf "$fmt" "volumed RSS, idle" "$(mib "$rss_idle")" "-" "-" "-"
	printf "$fmt" "volumed RSS, $VOLS volumes" "$(mib "$rss_full")" "-" "-" "-"
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

echo
table
if [[ -n $out_file ]]; then
	table >"$out_file" || fail "cannot write $out_file"
	log "table written to $out_file"
fi
