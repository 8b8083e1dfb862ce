# move_bench.sh — section (g) of bench/run.sh: volume moves between two node
# agents, sourced by bench/run.sh after tests/integ/lib.sh (it uses T, log,
# record, wait_until, nfs_port_free, iscsi_target_start, nfs_server_start and
# their cleanups).
#
# A controller (volumed --listen on 127.0.0.1, a throwaway CA and server
# certificate made with openssl, a bearer token) and two node agents, node-a
# and node-b, each with its own state directory and API socket, all with the
# same config (an iscsi backend on a private tgtd, an nfs backend on a private
# nfs-ganesha), --lease-ms MOVE_LEASE_MS and --move-wait-ms MOVE_WAIT_MS. Per
# driver, one volume, and the time from "use on B" to "mounted on B":
#
#   graceful hand-over: A had it mounted; A unmounts it (the old task
#     stopped), then `volctl mount` on B is timed (attach through the
#     controller, B's stage: helper, login, loop, mount);
#   forced move: A has it mounted (in use); `volctl move v --to node-b
#     --force` on the controller, timed until B's mount point shows in
#     /proc/self/mountinfo (the command's own time is reported too);
#   crash move: A holds it single-writer (`volctl move v --to node-a`); A's
#     volumed and the volume's helper on A are killed with SIGKILL; from the
#     kill, `volctl move v --to node-b` is timed until B's mount point is
#     mounted (the controller declares A dead after one lease without a
#     heartbeat; then iscsi moves at once — B preempts A's reservation — and
#     nfs at 1.5 leases). A is then restarted on its state directory (it
#     fences the moved volume), A's old mount is dropped and B unmounts;
#   nfs only, crash with multi-writer mounts: the same crash with `volctl
#     mount` on A and then B, which for a network volume is multi-writer
#     access (as Docker mounts it): B does not wait for anything.
#
# MOVE_N rounds of graceful + forced, MOVE_CRASH_N crash rounds, per driver;
# the table gives the median and p90 (nearest rank). Not fatal, like (e) and
# (f): g_skip says why the whole section was skipped, g_skip_iscsi and
# g_skip_nfs why a driver was skipped or stopped.
#
# Knobs: BENCH_MOVE (1; 0 skips), BENCH_MOVE_N (20), BENCH_MOVE_CRASH_N
# (BENCH_MOVE_N), BENCH_MOVE_DRIVERS ("iscsi nfs"), BENCH_MOVE_LEASE_MS (2000),
# BENCH_MOVE_WAIT_MS (8000).

# (bench/run.sh sets the first three from the same knobs.)
: "${MOVE_BENCH:=${BENCH_MOVE:-1}}"
: "${MOVE_N:=${BENCH_MOVE_N:-20}}"
: "${MOVE_CRASH_N:=${BENCH_MOVE_CRASH_N:-$MOVE_N}}"
MOVE_DRIVERS=${BENCH_MOVE_DRIVERS:-iscsi nfs}
MOVE_LEASE_MS=${BENCH_MOVE_LEASE_MS:-2000}
MOVE_WAIT_MS=${BENCH_MOVE_WAIT_MS:-8000}
K8S_FORCE_DETACH_MS=360000   # the attach/detach controller's maxWaitForUnmountDuration

G=$T/move
g_skip=""
g_skip_iscsi=""
g_skip_nfs=""
G_PORT=""
G_PID_ctl="" G_PID_a="" G_PID_b=""
G_SECONDS=0            # how long the section took
declare -A G_SEC=()    # DRV.moves, DRV.crash, nfs.crash_multi: seconds each part took

# ---------------------------------------------------------------- helpers

# g_median < NUMBERS: the median, rounded ("-" when empty).
g_median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
		printf "%.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# g_pct P < NUMBERS: the P-th percentile, nearest rank ("-" when empty).
g_pct() {
	sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
		r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# g_track: the harness's cleanup SIGKILLs VD_EXTRA_PIDS if the benchmark
# dies half-way: our three volumeds, as they are now.
g_track() {
	VD_EXTRA_PIDS="$G_PID_ctl $G_PID_a $G_PID_b"
}

g_ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# g_vc ROLE ARGS...: volctl on the node ROLE (ctl, a, b).
g_vc() {
	local role=$1
	shift
	"$VOLCTL_BIN" --api-socket "$G/$role/api.sock" "$@"
}

# g_mounted PATH: PATH is a mount point (the topmost may be anything).
g_mounted() {
	awk -v p="$1" '$5 == p { f = 1; exit } END { exit !f }' /proc/self/mountinfo
}

# g_pki: a CA, and a server certificate for 127.0.0.1 signed by it (as in
# tests/integ/test_cluster_api.sh).
g_pki() {
	local pki=$G/pki
	{ tls_pki_make "$pki" && openssl rand -hex 32 >"$G/token"; } ||
		{ g_skip="openssl: $(tail -n 3 "$pki/openssl.log" | tr '\n' ' ')"; return 1; }
	chmod 600 "$G/token"
}

# g_port: G_PORT = a free TCP port for the controller's HTTPS API (a range
# apart from the harness's NFS and iSCSI ports), offset by this run's pid.
g_port() {
	local k p
	for ((k = 0; k < 500; k++)); do
		p=$((24000 + ($$ + k) % 500))
		if nfs_port_free "$p"; then
			G_PORT=$p
			return 0
		fi
	done
	g_skip="no free TCP port in 24000..24499 for the controller"
	return 1
}

# g_start ROLE: volumed as the controller (ctl) or a node agent (a, b), on
# $G/ROLE/{state,api.sock}, logging to $G/ROLE.log; waits until it answers.
g_start() {
	local role=$1 pid args
	mkdir -p "$G/$role"
	case $role in
	ctl) args=(--node-id ctl --listen "127.0.0.1:$G_PORT" --tls-cert "$G/pki/server.pem"
		--tls-key "$G/pki/server.key") ;;
	*) args=(--node-id "node-$role" --controller-url "https://127.0.0.1:$G_PORT"
		--ca-file "$G/pki/ca.pem") ;;
	esac
	echo "### $(date +%T.%3N) volumed $role start" >>"$G/$role.log"
	"$VOLUMED_BIN" "${args[@]}" --token-file "$G/token" --state-dir "$G/$role/state" \
		--api-socket "$G/$role/api.sock" --docker-socket "" --csi-endpoint "" \
		--config "$G/volumed.json" --lease-ms "$MOVE_LEASE_MS" --move-wait-ms "$MOVE_WAIT_MS" \
		--log-level "$VD_LOG_LEVEL" >>"$G/$role.log" 2>&1 &
	pid=$!
	record "pid $pid"
	printf -v "G_PID_$role" '%s' "$pid"
	g_track
	local deadline=$((SECONDS + 30))
	until g_vc "$role" --json status >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			g_skip="volumed $role does not start: $(grep -v '^###' "$G/$role.log" | tail -n 2 | tr '\n' ' ')"
			return 1
		fi
		sleep 0.05
	done
}

# g_stop ROLE: SIGTERM, SIGKILL after 15 s.
g_stop() {
	local var=G_PID_$1 i
	local pid=${!var}
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	printf -v "$var" '%s' ""
	g_track
}

# g_nodes_alive: the controller sees node-a and node-b alive.
g_nodes_alive() {
	local out
	out=$(g_vc ctl --json nodes 2>/dev/null) || return 1
	"$PY" -c '
import json, sys
d = json.load(sys.stdin)
nodes = d.get("nodes", d) if isinstance(d, dict) else d
st = {n.get("node_id") or n.get("id") or n.get("name"): n.get("state") for n in nodes}
sys.exit(0 if st.get("node-a") == "alive" and st.get("node-b") == "alive" else 1)
' <<<"$out"
}

# g_attachments NAME: the nodes holding NAME, per the controller, sorted.
g_attachments() {
	g_vc ctl --json inspect "$1" 2>/dev/null | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("?"); sys.exit(0)
print(" ".join(sorted((d.get("attachments") or {}).keys())))
'
}

# g_helper_dir ROLE DRV NAME: the volume's directory (helper.pid, mnt) on ROLE.
g_helper_dir() {
	case $2 in
	iscsi) echo "$G/$1/state/iscsi/pool/$3" ;;
	nfs) echo "$G/$1/state/nfs/main/$3" ;;
	esac
}

# g_helper_pid ROLE DRV NAME: the helper's pid, when it is a live helper.
g_helper_pid() {
	local p
	p=$(cat "$(g_helper_dir "$@")/helper.pid" 2>/dev/null) || return 1
	[[ $p =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$p/comm" 2>/dev/null) == volumed-*-f* ]] || return 1
	echo "$p"
}

# g_do WHAT CMD...: runs CMD; on failure sets the driver's skip (G_SKIP_VAR)
# with WHAT and CMD's last lines. G_OUT = its output.
g_do() {
	local what=$1
	shift
	if ! G_OUT=$("$@" 2>&1); then
		printf -v "$G_SKIP_VAR" '%s' "$what failed: $(tail -n 2 <<<"$G_OUT" | tr '\n' ' ')"
		log "moves: ${!G_SKIP_VAR}"
		return 1
	fi
}

# g_settle NAME: wait (10 s) until the controller records no attachment.
g_settle() {
	local deadline=$((SECONDS + 10)) a
	while true; do
		a=$(g_attachments "$1")
		[[ -z $a ]] && return 0
		if ((SECONDS >= deadline)); then
			printf -v "$G_SKIP_VAR" '%s' "$1 still attached to '$a' after the round"
			log "moves: ${!G_SKIP_VAR}"
			return 1
		fi
		sleep 0.05
	done
}

# ---------------------------------------------------------------- one driver

# g_wait_mounted PATH: until PATH is mounted (20 s at most; polled every 5 ms).
g_wait_mounted() {
	local deadline=$((SECONDS + 20))
	until g_mounted "$1"; do
		if ((SECONDS >= deadline)); then
			printf -v "$G_SKIP_VAR" '%s' "$1 not mounted within 20 s"
			log "moves: ${!G_SKIP_VAR}"
			return 1
		fi
		sleep 0.005
	done
}

# g_move_timed NAME MP [--force]: `volctl move NAME --to node-b` on the
# controller, in the background, while MP (node-b's mount point) is polled:
# G_MOUNTED_MS = from G_T0 to MP mounted, G_CMD_MS = from G_T0 to the command's
# return (it returns once the controller recorded node-b's attachment, and
# looks for that every 200 ms, so it may return before or after the mount).
g_move_timed() {
	local v=$1 mp=$2 rc
	shift 2
	rm -f "$G/move.done"
	( g_vc ctl move "$v" --to node-b "$@" >"$G/move.out" 2>&1
	  echo "$? $(date +%s%N)" >"$G/move.done" ) &
	local bg=$!
	local deadline=$((SECONDS + 30))
	G_MOUNTED_MS=""
	until g_mounted "$mp"; do
		if [[ -s $G/move.done ]] && [[ $(cut -d' ' -f1 "$G/move.done") != 0 ]]; then
			break   # the move failed: no mount coming
		fi
		((SECONDS < deadline)) || break
		sleep 0.005
	done
	g_mounted "$mp" && G_MOUNTED_MS=$(g_ms_since "$G_T0")
	wait "$bg"
	read -r rc G_CMD_MS <"$G/move.done" 2>/dev/null || { rc=x G_CMD_MS=$G_T0; }
	G_CMD_MS=$(((G_CMD_MS - G_T0) / 1000000))
	if [[ $rc != 0 || -z $G_MOUNTED_MS ]]; then
		local why=""
		[[ -n $G_MOUNTED_MS ]] || why="; $mp not mounted"
		printf -v "$G_SKIP_VAR" '%s' "move $v --to node-b $* (status $rc): $(tail -n 2 "$G/move.out" | tr '\n' ' ')$why"
		log "moves: ${!G_SKIP_VAR}"
		return 1
	fi
}

# g_drain: two heartbeat intervals (a fifth of the lease). After a forced
# move: for the controller's second, late release request to reach node-a
# before node-a mounts the volume again, which that request would cut (see
# docs/benchmarks.md, "Moves").
g_drain() {
	sleep "$(awk -v l="$MOVE_LEASE_MS" 'BEGIN { printf "%.3f", l / 5000 }')"
}

# g_crash_a DRV NAME: SIGKILL node-a's volumed and the volume's helper on
# node-a, at once (a node gone with everything on it, short of its kernel
# mounts; a kernel data path has no helper). G_T0 = the time of the kill (ns).
g_crash_a() {
	local hp
	hp=$(g_helper_pid a "$1" "$2")
	# Reaped at once, stderr closed: bash's "Killed" notice stays out of the log.
	{
		kill -KILL "$G_PID_a" $hp
		G_T0=$(date +%s%N)
		wait "$G_PID_a"
	} 2>/dev/null
	G_PID_a=""
	g_track
	echo "### $(date +%T.%3N) volumed a and helper ${hp:-(none)} killed with SIGKILL" >>"$G/a.log"
}

# g_restart_a: node-a back on its state directory, alive again at the
# controller. Then two heartbeats: the restarted node-a answers the release
# request the controller queued for it during the crash with a refusal (its
# fenced mount is a user), and that refusal must reach the controller before
# the next round's ask clears it — a refusal that arrives later stays, and
# makes the next move fail at once (see docs/benchmarks.md, "Moves").
g_restart_a() {
	g_start a || return
	local deadline=$((SECONDS + 10))
	until g_nodes_alive; do
		((SECONDS < deadline)) || { printf -v "$G_SKIP_VAR" '%s' "node-a not alive after its restart"; return 1; }
		sleep 0.05
	done
	g_drain
}

# g_round_end NAME MP...: no attachment left, none of MP mounted.
g_round_end() {
	local v=$1 mp
	shift
	g_settle "$v" || return
	for mp in "$@"; do
		if g_mounted "$mp"; then
			printf -v "$G_SKIP_VAR" '%s' "$mp still mounted after the round"
			return 1
		fi
	done
}

# g_reset NAME: best effort after a failed step: every mount id of NAME
# dropped on both nodes.
g_reset() {
	local role id
	for role in a b; do
		local var=G_PID_$role
		[[ -n ${!var} ]] || continue
		for id in volctl move; do
			g_vc "$role" unmount "$1" --id "$id" >/dev/null 2>&1
		done
	done
}

# g_failed DRV KIND NAME: a move that failed (the error is in the driver's
# skip variable) is counted in $G/DRV.KIND.fail and the round given up: every
# mount id of NAME dropped, the controller left with no attachment. A move
# failing is a finding, not the end of the benchmark; status 1 only when the
# clean-up fails too.
g_failed() {
	local drv=$1 kind=$2 v=$3
	echo "${!G_SKIP_VAR}" >>"$G/$drv.$kind.fail"
	printf -v "$G_SKIP_VAR" '%s' ""
	g_reset "$v"
	g_settle "$v" || return
	g_drain
}

# g_driver DRV: the rounds for driver DRV; samples (ms) in $G/DRV.KIND.
g_driver() {
	local drv=$1 v=mv-$1 i t1 opts
	local mp_a mp_b
	mp_a=$(g_helper_dir a "$drv" "$v")/mnt
	mp_b=$(g_helper_dir b "$drv" "$v")/mnt
	G_SKIP_VAR=g_skip_$drv
	local kind
	for kind in graceful forced forced_cmd crash crash_cmd crash_multi forced.fail crash.fail; do
		: >"$G/$drv.$kind"
	done
	case $drv in
	iscsi) opts=(-o driver=iscsi -o size=32M) ;;
	nfs) opts=(-o driver=nfs -o backend=main) ;;
	esac
	g_do "create $v on node-a" g_vc a create "$v" "${opts[@]}" || return
	# One warm-up: the first stage of an iscsi volume formats it.
	g_do "mount $v on node-a (warm-up)" g_vc a mount "$v" || return
	[[ ${G_OUT##*$'\n'} == "$mp_a" ]] ||
		{ printf -v "$G_SKIP_VAR" '%s' "mount point $G_OUT, expected $mp_a"; return; }
	g_do "unmount $v on node-a (warm-up)" g_vc a unmount "$v" || return
	g_settle "$v" || return

	local s0=$SECONDS
	for ((i = 1; i <= MOVE_N; i++)); do
		# Graceful: the old task stopped (A unmounted), the new one starts on B.
		g_do "mount $v on node-a" g_vc a mount "$v" || return
		g_do "unmount $v on node-a" g_vc a unmount "$v" || return
		G_T0=$(date +%s%N)
		g_do "mount $v on node-b (graceful)" g_vc b mount "$v" || return
		g_ms_since "$G_T0" >>"$G/$drv.graceful"
		g_mounted "$mp_b" || { printf -v "$G_SKIP_VAR" '%s' "$mp_b not mounted after volctl mount"; return; }
		g_do "unmount $v on node-b" g_vc b unmount "$v" || return
		# Forced: A uses it; the controller moves it to B by force.
		g_do "mount $v on node-a (before the forced move)" g_vc a mount "$v" || return
		G_T0=$(date +%s%N)
		if ! g_move_timed "$v" "$mp_b" --force; then
			g_failed "$drv" forced "$v" || return
			continue
		fi
		echo "$G_MOUNTED_MS" >>"$G/$drv.forced"
		echo "$G_CMD_MS" >>"$G/$drv.forced_cmd"
		g_do "unmount $v --id move on node-b" g_vc b unmount "$v" --id move || return
		# A was made to let go: its mount id is gone already (a no-op).
		g_do "unmount $v on node-a after the forced move" g_vc a unmount "$v" || return
		g_round_end "$v" "$mp_a" "$mp_b" || return
		g_drain
		log "  $drv round $i: graceful $(tail -n 1 "$G/$drv.graceful") ms," \
			"forced $(tail -n 1 "$G/$drv.forced") ms (command $(tail -n 1 "$G/$drv.forced_cmd") ms)"
	done
	G_SEC[$drv.moves]=$((SECONDS - s0))

	# Crash, single-writer: A holds the volume through a move (mount id
	# "move", single-writer access for every driver), A crashes, the volume
	# is moved to B (no force: a dead node needs none).
	s0=$SECONDS
	for ((i = 1; i <= MOVE_CRASH_N; i++)); do
		g_do "move $v --to node-a (before the crash)" g_vc ctl move "$v" --to node-a || return
		g_wait_mounted "$mp_a" || return
		g_crash_a "$drv" "$v" || return
		if ! g_move_timed "$v" "$mp_b"; then
			g_restart_a || return
			g_failed "$drv" crash "$v" || return
			continue
		fi
		t1=$G_MOUNTED_MS
		echo "$t1" >>"$G/$drv.crash"
		echo "$G_CMD_MS" >>"$G/$drv.crash_cmd"
		# node-a comes back, fences the moved volume; its old mount id is dropped.
		g_restart_a || return
		g_do "unmount $v --id move on node-a after its restart" g_vc a unmount "$v" --id move || return
		g_do "unmount $v --id move on node-b after the crash move" g_vc b unmount "$v" --id move || return
		g_round_end "$v" "$mp_a" "$mp_b" || return
		log "  $drv crash round $i: $t1 ms (command $G_CMD_MS ms)"
	done
	G_SEC[$drv.crash]=$((SECONDS - s0))

	# nfs through volctl mount (as Docker mounts): multi-writer access, so B
	# mounts beside a crashed A without waiting for anything.
	if [[ $drv == nfs ]]; then
		s0=$SECONDS
		for ((i = 1; i <= MOVE_CRASH_N; i++)); do
			g_do "mount $v on node-a (before the crash)" g_vc a mount "$v" || return
			g_crash_a "$drv" "$v" || return
			g_do "mount $v on node-b after node-a's crash" g_vc b mount "$v" || return
			g_mounted "$mp_b" || { printf -v "$G_SKIP_VAR" '%s' "$mp_b not mounted after volctl mount"; return; }
			t1=$(g_ms_since "$G_T0")
			echo "$t1" >>"$G/$drv.crash_multi"
			g_restart_a || return
			g_do "unmount $v on node-a after its restart" g_vc a unmount "$v" || return
			g_do "unmount $v on node-b" g_vc b unmount "$v" || return
			g_round_end "$v" "$mp_a" "$mp_b" || return
			log "  $drv crash round $i, multi-writer mounts: $t1 ms"
		done
		G_SEC[$drv.crash_multi]=$((SECONDS - s0))
	fi
	g_do "rm $v" g_vc ctl rm "$v" || return
}

# ---------------------------------------------------------------- the section

move_section() {
	if [[ $MOVE_BENCH == 0 ]]; then g_skip="BENCH_MOVE=0"; return; fi
	command -v openssl >/dev/null || { g_skip="openssl not installed"; return; }
	local s0=$SECONDS drv
	mkdir -p "$G"
	# What each driver needs; a driver that lacks it is skipped alone.
	local want_iscsi=0 want_nfs=0
	[[ " $MOVE_DRIVERS " == *" iscsi "* ]] && want_iscsi=1
	[[ " $MOVE_DRIVERS " == *" nfs "* ]] && want_nfs=1
	((want_iscsi)) || g_skip_iscsi="not in BENCH_MOVE_DRIVERS"
	((want_nfs)) || g_skip_nfs="not in BENCH_MOVE_DRIVERS"
	if ((want_iscsi)); then
		local helper
		helper=$(dirname "$VOLUMED_BIN")/volumed-iscsi-fuse
		if ! command -v tgtd >/dev/null || ! command -v tgtadm >/dev/null; then
			g_skip_iscsi="tgt not installed (tgtd, tgtadm)"
		elif [[ ! -x $helper ]]; then
			g_skip_iscsi="no $helper (make all)"
		elif [[ ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
			g_skip_iscsi="no FUSE (/dev/fuse, fusermount3)"
		fi
	fi
	if ((want_nfs)) && ! command -v ganesha.nfsd >/dev/null; then
		g_skip_nfs="nfs-ganesha not installed"
	fi
	[[ -z $g_skip_iscsi || -z $g_skip_nfs ]] || { g_skip="no driver to move: iscsi: $g_skip_iscsi; nfs: $g_skip_nfs"; return; }

	g_pki || return
	g_port || return
	local backends=() q
	if [[ -z $g_skip_iscsi ]]; then
		iscsi_target_start
		mkdir -p "$G/iscsi-pool"
		backends+=("\"iscsi\": {\"backends\": {\"pool\": {\"provisioner\": \"tgt\",
		 \"portal\": \"$ISCSI_PORTAL\", \"control_port\": $ISCSI_CTL, \"tid\": 50,
		 \"pool_dir\": \"$G/iscsi-pool\"}}}")
	fi
	if [[ -z $g_skip_nfs ]]; then
		nfs_server_start
		mkdir -p "$NFS_EXPORT_DIR/move-vols"
		q="?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
		backends+=("\"nfs\": {\"backends\": {\"main\": {\"url\":
		 \"nfs://127.0.0.1$NFS_EXPORT_DIR/move-vols$q\", \"mode\": \"auto\"}}}")
	fi
	local conf="" b
	for b in "${backends[@]}"; do conf+=${conf:+, }$b; done
	printf '{"drivers": {%s}}\n' "$conf" >"$G/volumed.json"
	g_start ctl || return
	g_start a || return
	g_start b || return
	wait_until 10 g_nodes_alive ||
		{ g_skip="node-a and node-b not both alive: $(g_vc ctl nodes 2>&1 | tr '\n' ' ')"; return; }

	for drv in iscsi nfs; do
		local sv=g_skip_$drv
		[[ -z ${!sv} ]] || continue
		log "moves: $drv, $MOVE_N graceful + forced rounds, $MOVE_CRASH_N crash rounds"
		g_driver "$drv"
		if [[ -n ${!sv} ]]; then
			g_reset "mv-$drv"
			[[ -n $G_PID_a ]] || g_start a || return
		fi
	done
	G_SECONDS=$((SECONDS - s0))
}

# move_cleanup: the volumes unmounted where they still are (best effort),
# the three volumeds stopped, any helper they left killed, then the backends.
move_cleanup() {
	local role drv v p
	for role in a b; do
		local var=G_PID_$role
		[[ -n ${!var} ]] || continue
		for drv in iscsi nfs; do
			v=mv-$drv
			for p in volctl move; do
				g_vc "$role" unmount "$v" --id "$p" >/dev/null 2>&1
			done
		done
	done
	[[ -n $G_PID_ctl ]] && for drv in iscsi nfs; do g_vc ctl rm "mv-$drv" >/dev/null 2>&1; done
	g_stop a
	g_stop b
	g_stop ctl
	# Helpers (SIGKILL'd volumeds leave theirs): only ours, serving a path under $G.
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == volumed-*-f* ]] || continue
		[[ $(tr '\0' ' ' 2>/dev/null <"$p/cmdline") == *"$G/"* ]] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	[[ -z $NFS_PID ]] || nfs_cleanup
	[[ -z $ISCSI_PID ]] || iscsi_cleanup
	unmount_under "$G"
	detach_loops_under "$G"
	return 0
}

# ---------------------------------------------------------------- the table

# g_row FIGURE FILE [-]: median, p90, runs and (unless -) the Kubernetes
# ratio of FILE's samples.
g_row() {
	local med ratio=-
	med=$(g_median <"$2")
	[[ ${3:-} == - ]] ||
		ratio=$(awk -v k="$K8S_FORCE_DETACH_MS" -v m="$med" 'BEGIN { if (m + 0 > 0) printf "%.0fx", k / m; else print "-" }')
	printf '%-50s %-8s %-8s %-6s %s\n' "$1" "$med" "$(g_pct 90 <"$2")" "$(grep -c . "$2")" "$ratio"
}

# g_fail_row DRV KIND: how many of KIND's moves failed, and the first error.
g_fail_row() {
	local f=$G/$1.$2.fail n
	n=$(grep -c . "$f" 2>/dev/null)
	((n > 0)) || return 0
	echo "  FAILED: $n of $((n + $(grep -c . "$G/$1.$2"))) moves (not in the figures); the first: $(head -n 1 "$f")"
}

move_table() {
	local drv sv
	echo
	if [[ -n $g_skip ]]; then
		echo "Volume moves: skipped ($g_skip)"
		return 0
	fi
	echo "Volume moves between two node agents and a controller on this host (HTTPS on 127.0.0.1;"
	echo " lease $MOVE_LEASE_MS ms, move wait $MOVE_WAIT_MS ms), from 'use on B' to 'mounted on B', ms"
	printf '%-50s %-8s %-8s %-6s %s\n' "figure" "median" "p90" "runs" "k8s 6 min / median"
	for drv in iscsi nfs; do
		sv=g_skip_$drv
		if [[ -n ${!sv} && ! -s $G/$drv.graceful ]]; then
			echo "move, $drv: skipped (${!sv})"
			continue
		fi
		g_row "move, $drv: graceful hand-over (ms)" "$G/$drv.graceful"
		g_row "move, $drv: forced move (ms)" "$G/$drv.forced"
		g_row "  the move command alone (ms)" "$G/$drv.forced_cmd" -
		g_fail_row "$drv" forced
		g_row "move, $drv: crash move (lease $MOVE_LEASE_MS ms)" "$G/$drv.crash"
		g_row "  the move command alone (ms)" "$G/$drv.crash_cmd" -
		g_fail_row "$drv" crash
		[[ $drv == nfs ]] &&
			g_row "  crash, multi-writer mounts (no move needed)" "$G/$drv.crash_multi"
		[[ -z ${!sv} ]] || echo "move, $drv: stopped early (${!sv})"
	done
	echo "Kubernetes force-detach after a node is gone: $K8S_FORCE_DETACH_MS ms (6 min)," \
		"maxWaitForUnmountDuration of the attach/detach controller"
	# Each forced move cuts one mount on node-a; more means a late release
	# request cut a later one (g_drain is there to prevent it).
	local forced late
	forced=$(cat "$G"/*.forced 2>/dev/null | grep -c .)
	late=$(grep -c "released by force with" "$G/a.log" 2>/dev/null)
	[[ -z $g_skip_iscsi$g_skip_nfs ]] && ((late > forced)) &&
		echo "note: node-a logged $late forced releases for $forced forced moves (a late release request)"
	return 0
}
