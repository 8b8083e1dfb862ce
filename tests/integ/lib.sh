# lib.sh — the integration-test harness, sourced by every tests/integ/test_*.sh.
#
# Each test gets a private directory T (mktemp -d /tmp/volumed-itest.XXXX)
# holding volumed's state, its API socket and logs, and, when the test asks
# for one, a private dockerd (D = T/d). The Docker plugin socket lives at the
# fixed place dockerd scans, under a name unique to this test:
# /run/docker/plugins/volumed-itest-<id>.sock, driver name volumed-itest-<id>.
#
# `trap cleanup EXIT` always runs, on success, failure or a signal: it stops
# dockerd (a swarm left and containers killed first, then what is left of
# its processes, a managed plugin's too), runs the test's test_cleanup when
# it defines one, stops volumed, unmounts everything under T, detaches loop
# devices backed by files under T, removes the plugin socket and T. A
# sanitizer report in the volumed log fails the test there too.
#
# Environment: BUILD (build directory, default build), VD_ITEST_RECORD (a
# file where the test's directory, socket and pids are noted so the runner
# can check nothing was left behind), VD_ITEST_KEEP (a directory where the
# logs of a failed test are copied).

set -u

VD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in
/*) VD_BIN=$BUILD ;;
*) VD_BIN=$VD_ROOT/$BUILD ;;
esac
# Programs live in BUILD/bin (BUILD itself in older trees).
if [[ -f $VD_BIN/bin/volumed || ! -f $VD_BIN/volumed ]]; then
	VOLUMED_BIN=$VD_BIN/bin/volumed
	VOLCTL_BIN=$VD_BIN/bin/volctl
else
	VOLUMED_BIN=$VD_BIN/volumed
	VOLCTL_BIN=$VD_BIN/volctl
fi
DOCKER_BIN=/usr/bin/docker   # the Debian client, same release as dockerd
PY=/usr/bin/python3
IMAGE=vd-busybox

CUR_SCENARIO="setup"
VD_PID=""
DOCKERD_PID=""
D=""
VD_LOG_LEVEL=${VD_LOG_LEVEL:-debug}

# Settings from the caller's environment would change what volumed and volctl
# do: tests set what they need explicitly.
for v in $(compgen -e); do
	case $v in VOLUMED_* | VOLCTL_*) unset "$v" ;; esac
done

if [[ $(id -u) != 0 ]]; then
	echo "FAIL: integration tests need root" >&2
	exit 1
fi

T=$(mktemp -d /tmp/volumed-itest.XXXX) || { echo "FAIL: mktemp" >&2; exit 1; }
chmod 755 "$T"
VD_ID=$(printf '%s' "${T##*.}" | tr 'A-Z' 'a-z')$$
VD_DRIVER=volumed-itest-$VD_ID
VD_PLUGIN_DIR=/run/docker/plugins
VD_SOCK=$VD_PLUGIN_DIR/$VD_DRIVER.sock
VD_STATE=$T/state
VD_API=$T/api.sock
VD_LOG=$T/volumed.log
VD_NODE=itest-node
: >"$VD_LOG"

record() {
	[[ -n ${VD_ITEST_RECORD:-} ]] && echo "$*" >>"$VD_ITEST_RECORD"
	return 0
}
record "dir $T"
record "sock $VD_SOCK"

# ---------------------------------------------------------------- output

log() { echo "[$(date +%T.%3N)] $*"; }

scenario() {
	CUR_SCENARIO=$*
	echo
	log "=== $*"
}

# sc TITLE FUNC [ARGS...]: one independent scenario, in a subshell: a
# failure ends that scenario only and is added to FAILED; then the test's
# sc_repair, if it has one, brings back what the scenario broke (it sees
# the title as $t).
sc() {
	local t=$1 t0=$SECONDS
	shift
	scenario "$t"
	("$@")
	if (($? != 0)); then
		FAILED+=("$t")
		log "FAILED: $t (going on with the next scenario)"
	else
		log "  scenario took $((SECONDS - t0)) s"
	fi
	CUR_SCENARIO="between scenarios"
	if declare -F sc_repair >/dev/null; then
		sc_repair
	fi
	return 0
}

dump_logs() {
	if [[ -s $VD_LOG ]]; then
		echo "--- last lines of the volumed log ($VD_LOG):" >&2
		tail -n 30 "$VD_LOG" >&2
	fi
	if [[ -n $D && -s $D/dockerd.log ]]; then
		echo "--- last lines of the dockerd log:" >&2
		tail -n 12 "$D/dockerd.log" >&2
	fi
	local h
	for h in $(ls -t "$VD_STATE"/{nfs,iscsi}/*/*/helper.log 2>/dev/null | head -n 3); do
		echo "--- last lines of a helper's log ($h):" >&2
		tail -n 8 "$h" >&2
	done
}

fail() {
	echo "FAIL: [$CUR_SCENARIO] $*" >&2
	dump_logs
	exit 1
}

skip() { log "SKIP: [$CUR_SCENARIO] $*"; }

# ---------------------------------------------------------------- asserts

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	[[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
}

assert_ne() {
	[[ $1 != "$2" ]] || fail "$3: got '$2', expected anything else"
}

# assert_contains HAYSTACK NEEDLE WHAT
assert_contains() {
	[[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: $1"
}

assert_not_contains() {
	[[ $1 != *"$2"* ]] || fail "$3: '$2' unexpectedly found in: $1"
}

# assert_match STRING REGEX WHAT
assert_match() {
	[[ $1 =~ $2 ]] || fail "$3: '$1' does not match /$2/"
}

# run CMD...: runs CMD, OUT = its stdout+stderr, RC = its status.
run() {
	OUT=$("$@" 2>&1)
	RC=$?
}

# assert_ok CMD...: CMD must succeed; OUT holds its output.
assert_ok() {
	run "$@"
	((RC == 0)) || fail "command failed (status $RC): $*
$OUT"
}

# assert_fails CMD...: CMD must fail; OUT holds its output.
assert_fails() {
	run "$@"
	((RC != 0)) || fail "command succeeded but should have failed: $*
$OUT"
}

# assert_fails_one_line CMD...: CMD must fail with nothing on stdout and a
# one-line reason on stderr; ERRLINE holds it.
assert_fails_one_line() {
	local so
	so=$("$@" 2>"$T/.stderr")
	RC=$?
	ERRLINE=$(cat "$T/.stderr")
	((RC != 0)) || fail "command succeeded but should have failed: $*
$so"
	local n
	n=$(printf '%s\n' "$ERRLINE" | grep -c .)
	[[ $n == 1 ]] || fail "expected a one-line reason on stderr from: $*; got $n lines:
$ERRLINE"
	[[ -z $so ]] || fail "expected nothing on stdout from failing: $*; got: $so"
	log "  refused as expected: ${*: -3} -> $ERRLINE"
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s; status 0 once it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while true; do
		"$@" >/dev/null 2>&1 && return 0
		((SECONDS >= deadline)) && return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- JSON

# jget PATH < JSON: prints the value at a dotted path ("status.refs",
# "volumes.0.name"); strings bare, others as JSON; "<missing>" if absent,
# "<not-json>" if the input does not parse.
jget() {
	"$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("<not-json>"); sys.exit(0)
for k in [p for p in sys.argv[1].split(".") if p]:
    try:
        d = d[int(k)] if isinstance(d, list) else d[k]
    except Exception:
        print("<missing>"); sys.exit(0)
print(d if isinstance(d, str) else json.dumps(d))
' "$1"
}

# is_json < TEXT: status 0 when TEXT is one JSON document.
is_json() {
	"$PY" -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null
}

# vol_names < JSON: the names in a volume list ([...] or {"volumes":[...]}
# or the plugin's {"Volumes":[...]}), sorted, one a line.
vol_names() {
	"$PY" -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    d = d.get("volumes", d.get("Volumes", []))
for n in sorted((v.get("name") or v.get("Name") or "") for v in (d or [])):
    print(n)
'
}

# ---------------------------------------------------------------- mounts, loops

# mountpoints: every mount point of this namespace, unescaped, one a line.
mountpoints() {
	local mp
	while read -r _ _ _ _ mp _; do
		printf '%b\n' "$mp"
	done </proc/self/mountinfo
}

is_mounted() {
	mountpoints | grep -qxF -- "$1"
}

# mount_fstype PATH: the filesystem type mounted on PATH (topmost).
mount_fstype() {
	awk -v p="$1" '$5 == p { for (i = 6; i <= NF; i++) if ($i == "-") { t = $(i + 1); break } }
		END { print t }' /proc/self/mountinfo
}

# loops_for FILE: loop devices whose backing file is FILE.
loops_for() {
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v f="$1" '$2 == f { print $1 }'
}

no_loops_for() {
	[[ -z $(loops_for "$1") ]]
}

not_mounted() {
	! is_mounted "$1"
}

# unmount_under DIR: unmounts every mount at or below DIR, deepest first.
unmount_under() {
	local dir=$1 mp left
	for _ in 1 2 3 4 5; do
		left=$(mountpoints | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r)
		[[ -z $left ]] && return 0
		while read -r mp; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		done <<<"$left"
	done
	left=$(mountpoints | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d')
	[[ -z $left ]] || echo "cleanup: still mounted: $left" >&2
}

# detach_loops_under DIR: detaches loop devices backed by files below DIR.
detach_loops_under() {
	local dev file
	losetup -n -l -O NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
		[[ $file == "$1"/* ]] && losetup -d "$dev" 2>/dev/null
	done
	return 0
}

# ---------------------------------------------------------------- volumed

volctl() {
	"$VOLCTL_BIN" --api-socket "$VD_API" "$@"
}

vd_alive() {
	[[ -n $VD_PID ]] && kill -0 "$VD_PID" 2>/dev/null
}

# volumed_exec ARGS...: starts volumed with exactly ARGS (VD_API must name
# the API socket it will serve) and waits until `volctl status` answers.
volumed_exec() {
	[[ -f $VOLUMED_BIN && -x $VOLUMED_BIN ]] || fail "no $VOLUMED_BIN (run make all, or set BUILD)"
	[[ -f $VOLCTL_BIN && -x $VOLCTL_BIN ]] || fail "no $VOLCTL_BIN (run make all, or set BUILD)"
	mkdir -p "$VD_PLUGIN_DIR"
	echo "### $(date +%T.%3N) volumed $*" >>"$VD_LOG"
	"$VOLUMED_BIN" "$@" >>"$VD_LOG" 2>&1 &
	VD_PID=$!
	record "pid $VD_PID"
	local deadline=$((SECONDS + 15))
	while true; do
		vd_alive || { wait "$VD_PID"; local rc=$?; VD_PID=""; fail "volumed exited at start (status $rc)"; }
		"$VOLCTL_BIN" --api-socket "$VD_API" --json status >/dev/null 2>&1 && break
		((SECONDS >= deadline)) && fail "volumed did not answer on $VD_API within 15 s"
		sleep 0.05
	done
}

# volumed_start [ARGS...]: volumed on this test's state dir and sockets
# (its CSI endpoint too, so that it never takes the host's default one).
volumed_start() {
	volumed_exec --state-dir "$VD_STATE" --api-socket "$VD_API" \
		--docker-socket "$VD_SOCK" --csi-endpoint "$VD_CSI_ENDPOINT" --node-id "$VD_NODE" \
		--log-level "$VD_LOG_LEVEL" "$@"
	wait_until 5 test -S "$VD_SOCK" || fail "volumed did not create the plugin socket $VD_SOCK"
}

volumed_kill9() {
	vd_alive || fail "volumed_kill9: volumed is not running"
	kill -KILL "$VD_PID"
	wait "$VD_PID" 2>/dev/null
	echo "### $(date +%T.%3N) volumed killed with SIGKILL" >>"$VD_LOG"
	VD_PID=""
}

# volumed_stop: SIGTERM, then SIGKILL after 15 s. VD_STOP_RC = exit status.
volumed_stop() {
	VD_STOP_RC=""
	[[ -n $VD_PID ]] || return 0
	if kill -0 "$VD_PID" 2>/dev/null; then
		kill -TERM "$VD_PID"
		local i
		for ((i = 0; i < 150; i++)); do
			kill -0 "$VD_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$VD_PID" 2>/dev/null; then
			echo "### volumed ignored SIGTERM for 15 s: SIGKILL" >>"$VD_LOG"
			kill -KILL "$VD_PID" 2>/dev/null
		fi
	fi
	wait "$VD_PID" 2>/dev/null
	VD_STOP_RC=$?
	echo "### $(date +%T.%3N) volumed stopped, status $VD_STOP_RC" >>"$VD_LOG"
	VD_PID=""
}

# ---------------------------------------------------------------- plugin socket

# The headers dockerd's plugin client sends: no Content-Type, this Accept.
PLUGIN_HDRS=(-H 'Content-Type:' -H 'Accept: application/vnd.docker.plugins.v1.2+json')

# plugin_call ENDPOINT JSON: POSTs JSON to /ENDPOINT on the plugin socket,
# prints the body.
plugin_call() {
	curl -s --max-time 30 --unix-socket "$VD_SOCK" "${PLUGIN_HDRS[@]}" -X POST \
		--data-binary "$2" "http://localhost/$1"
}

# plugin_req METHOD ENDPOINT [CURL-ARGS...]: PSTATUS = HTTP status (000 when
# no answer), PBODY = body.
plugin_req() {
	local method=$1 ep=$2 out
	shift 2
	out=$(curl -s --max-time 30 --unix-socket "$VD_SOCK" "${PLUGIN_HDRS[@]}" -X "$method" \
		-w '\n%{http_code}' "$@" "http://localhost/$ep")
	PSTATUS=${out##*$'\n'}
	PBODY=${out%$'\n'*}
}

# ---------------------------------------------------------------- dockerd

docker() {
	"$DOCKER_BIN" "$@"
}

# drun ARGS...: docker run without a network.
drun() {
	"$DOCKER_BIN" run --network none "$@"
}

# dockerd_start [DIR]: a private dockerd in DIR (default T/d); D is DIR,
# DOCKERD_PID its pid (also in DIR/dockerd.pid), DOCKER_HOST its socket.
dockerd_start() {
	command -v dockerd >/dev/null || fail "dockerd not installed (make deps-test)"
	D=${1:-$T/d}
	mkdir -p "$D" "$T/dockercfg"
	cat >"$D/daemon.json" <<-EOF
		{"iptables": false, "ip6tables": false, "ip-forward": false, "bridge": "none",
		 "storage-driver": "overlay2", "deprecated-key-path": "$D/key.json"}
	EOF
	dockerd --config-file "$D/daemon.json" --data-root "$D/root" --exec-root "$D/exec" \
		--pidfile "$D/pid" -H "unix://$D/sock" >"$D/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	echo "$DOCKERD_PID" >"$D/dockerd.pid"
	record "pid $DOCKERD_PID"
	export DOCKER_HOST=unix://$D/sock
	export DOCKER_CONFIG=$T/dockercfg
	local deadline=$((SECONDS + 60))
	until "$DOCKER_BIN" info >/dev/null 2>&1; do
		kill -0 "$DOCKERD_PID" 2>/dev/null || { DOCKERD_PID=""; fail "dockerd exited at start"; }
		((SECONDS >= deadline)) && fail "dockerd not ready within 60 s"
		sleep 0.1
	done
}

# pids_mentioning DIR: processes whose command line names DIR (the
# containerd and shims this test's dockerd started).
pids_mentioning() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $cmd == *"$1"* ]] && echo "${p#/proc/}"
	done
	return 0
}

# pids_rooted_under DIR: processes whose root directory lies below DIR (a
# managed plugin's process, whose command line names nothing of the test).
pids_rooted_under() {
	local p root
	for p in /proc/[0-9]*; do
		root=$(readlink "$p/root" 2>/dev/null) || continue
		[[ $root == "$1"/* ]] && echo "${p#/proc/}"
	done
	return 0
}

dockerd_stop() {
	[[ -n $D ]] || return 0
	if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		# A swarm's services would restart the containers killed below.
		if [[ $(timeout 10 "$DOCKER_BIN" info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null) == active ]]; then
			timeout 20 "$DOCKER_BIN" swarm leave --force >/dev/null 2>&1
		fi
		# Kill containers first (SIGKILL): a stop would wait out their timeout.
		local ids
		ids=$(timeout 20 "$DOCKER_BIN" ps -aq 2>/dev/null)
		[[ -n $ids ]] && timeout 60 "$DOCKER_BIN" rm -f $ids >/dev/null 2>&1
		kill -TERM "$DOCKERD_PID"
		local i
		for ((i = 0; i < 300; i++)); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID" 2>/dev/null
	fi
	[[ -n $DOCKERD_PID ]] && wait "$DOCKERD_PID" 2>/dev/null
	DOCKERD_PID=""
	local p
	for p in $(pids_mentioning "$D/") $(pids_rooted_under "$D"); do
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		kill -KILL "$p" 2>/dev/null
	done
	is_mounted "$D/exec/netns/default" && umount "$D/exec/netns/default" 2>/dev/null
	unmount_under "$D"
	return 0
}

# image_import: the vd-busybox image (busybox-static and a few links).
image_import() {
	local bb rootfs=$T/rootfs l
	for bb in /bin/busybox /usr/bin/busybox; do [[ -x $bb ]] && break; done
	[[ -x $bb ]] || fail "busybox not installed (busybox-static)"
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' ||
		fail "$bb is not static (install busybox-static)"
	mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
	cp "$bb" "$rootfs/bin/busybox"
	echo from-the-image >"$rootfs/etc/vd-marker"
	for l in sh cat echo dd sleep ls df mkdir rm test true false wc sync touch stat head tail grep \
		seq cut sed mount printf sha256sum mv timeout id chmod; do
		ln -sf busybox "$rootfs/bin/$l"
	done
	tar -C "$rootfs" -c . | "$DOCKER_BIN" import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null ||
		fail "docker import failed"
	rm -rf "$rootfs"
}

# ---------------------------------------------------------------- cleanup

sanitizer_check() {
	[[ -s $VD_LOG ]] || return 0
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$VD_LOG"; then
		echo "FAIL: sanitizer report in the volumed log:" >&2
		grep -E -A 25 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$VD_LOG" | head -60 >&2
		return 1
	fi
	return 0
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM HUP
	# dockerd first, while volumed still answers the Unmounts of the
	# containers it removes (a dead plugin costs 15 s of retries per call).
	dockerd_stop
	# What a test made beyond lib.sh's reach (it defines test_cleanup).
	declare -F test_cleanup >/dev/null && test_cleanup
	volumed_stop
	[[ -n ${VD_EXTRA_PIDS:-} ]] && for p in $VD_EXTRA_PIDS; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# NFS (when the test started a server): FUSE mounts and helpers first,
	# then ganesha and the rpcbind we started.
	declare -F nfs_cleanup >/dev/null && nfs_cleanup
	# iSCSI (when the test started tgtd): FUSE mounts, helpers, tgtd.
	declare -F iscsi_cleanup >/dev/null && iscsi_cleanup
	unmount_under "$T"
	detach_loops_under "$T"
	rm -f "$VD_SOCK"
	sanitizer_check || rc=1
	if ((rc != 0)) && [[ -n ${VD_ITEST_KEEP:-} ]]; then
		mkdir -p "$VD_ITEST_KEEP"
		cp "$VD_LOG" "$VD_ITEST_KEEP/volumed.log" 2>/dev/null
		[[ -n $D ]] && cp "$D/dockerd.log" "$VD_ITEST_KEEP/dockerd.log" 2>/dev/null
	fi
	if [[ -z $(mountpoints | awk -v d="$T" 'index($0, d "/") == 1') ]]; then
		rm -rf --one-file-system "$T"
	else
		echo "cleanup: mounts remain under $T, not removing it" >&2
	fi
	exit "$rc"
}

trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# ---------------------------------------------------------------- CSI

# volumed's CSI endpoint for this test (volumed_start_csi), and the Python
# stubs for csi.proto (csi_stubs_make). An endpoint from the caller's
# environment would change where volumed listens: tests pass their own.
unset CSI_ENDPOINT
VD_CSI_SOCK=$T/csi.sock
VD_CSI_ENDPOINT=unix://$VD_CSI_SOCK
CSI_STUBS=$T/csi-stubs

# volumed_start_csi [ARGS...]: volumed_start, also serving CSI on
# VD_CSI_ENDPOINT; waits for its socket.
volumed_start_csi() {
	volumed_start "$@"
	wait_until 5 test -S "$VD_CSI_SOCK" || fail "volumed did not create the CSI socket $VD_CSI_SOCK"
}

# csi_stubs_make: generates csi_pb2.py and csi_pb2_grpc.py into CSI_STUBS.
csi_stubs_make() {
	bash "$VD_ROOT/tests/integ/csi_stubs.sh" "$CSI_STUBS" >"$T/csi_stubs.log" 2>&1 ||
		fail "cannot generate the CSI stubs (python3-grpc-tools?): $(tail -n 5 "$T/csi_stubs.log")"
}

# csi_client SCENARIO [ARGS...]: runs tests/integ/csi_client.py against this
# test's volumed (endpoint, node id, directories); its status is the result.
csi_client() {
	PYTHONPATH=$CSI_STUBS "$PY" "$VD_ROOT/tests/integ/csi_client.py" --endpoint "$VD_CSI_ENDPOINT" \
		--node "$VD_NODE" --dir "$T" --state-dir "$VD_STATE" "$@"
}

# ---------------------------------------------------------------- NFS server
#
# nfs_server_start: a private nfs-ganesha (FSAL VFS, NFSv3 + v4, TCP only,
# bound to 127.0.0.1 on private ports) exporting $T/nfs-export, with
# `rpcbind -f` started first when none runs (and stopped by cleanup only if
# we started it). Sets and exports:
#   NFS_EXPORT_DIR  the exported directory, server side
#   NFS_PORT        the NFS port, NFS_MNT_PORT the MOUNT port
#   NFS_URL         nfs://127.0.0.1<export>?nfsport=P&mountport=M
# nfs_server_stop: SIGTERM ganesha, SIGKILL after 10 s. nfs_server_restart:
# stop + start on the same ports and export (outage tests).
# nfs_server_freeze / nfs_server_thaw: SIGSTOP / SIGCONT (a hung server). cleanup stops
# ganesha (and our rpcbind), unmounts FUSE mounts under T and kills any
# volumed-nfs-fuse helper whose mountpoint is under T.
NFS_PID=""
NFS_RPCBIND_PID=""
NFS_DIR=$T/nfs
NFS_EXPORT_DIR=$T/nfs-export
NFS_PORT=""
NFS_MNT_PORT=""
NFS_URL=""

# nfs_port_free PORT: nothing listens on TCP PORT (any address).
nfs_port_free() {
	! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# nfs_pick_ports: NFS_PORT/NFS_MNT_PORT = a free pair 20490+k / 20480+k...,
# k starting from an offset derived from this run's pid (parallel runs).
nfs_pick_ports() {
	local k off=$((($$ % 250) * 2)) p m
	for ((k = 0; k < 500; k += 2)); do
		p=$((21000 + (off + k) % 500 * 2))
		m=$((p + 1))
		if nfs_port_free "$p" && nfs_port_free "$m"; then
			NFS_PORT=$p NFS_MNT_PORT=$m
			return 0
		fi
	done
	fail "no free port pair for the NFS server"
}

nfs_write_conf() {
	mkdir -p "$NFS_DIR/recovery" "$NFS_DIR/krb5" "$NFS_EXPORT_DIR"
	chmod 755 "$NFS_EXPORT_DIR"
	cat >"$NFS_DIR/ganesha.conf" <<-EOF
		NFS_CORE_PARAM {
			Bind_Addr = 127.0.0.1;
			NFS_Port = $NFS_PORT;
			MNT_Port = $NFS_MNT_PORT;
			Protocols = 3, 4;
			Enable_NLM = false;
			Enable_RQUOTA = false;
			Enable_UDP = false;
		}
		NFSv4 {
			Graceless = true;
			Lease_Lifetime = 10;
			RecoveryRoot = "$NFS_DIR/recovery";
		}
		NFS_KRB5 {
			Active_krb5 = false;
			CCacheDir = "$NFS_DIR/krb5";
		}
		EXPORT {
			Export_Id = 1;
			Path = "$NFS_EXPORT_DIR";
			Pseudo = "$NFS_EXPORT_DIR";
			Access_Type = RW;
			Squash = None;
			Protocols = 3, 4;
			Transports = TCP;
			SecType = sys;
			FSAL { Name = VFS; }
		}
	EOF
}

nfs_alive() {
	[[ -n $NFS_PID ]] && kill -0 "$NFS_PID" 2>/dev/null
}

# nfs_answers: the export can be listed over NFSv3 with libnfs.
nfs_answers() {
	timeout 5 nfs-ls "$NFS_URL" >/dev/null 2>&1
}

nfs_rpcbind_ensure() {
	local prog
	if pgrep -x rpcbind >/dev/null 2>&1; then
		# A ganesha that died without unregistering would keep the next
		# one from registering: drop stale NFS/MOUNT/NLM/RQUOTA entries
		# unless a ganesha is alive to own them.
		if ! pgrep -x ganesha.nfsd >/dev/null 2>&1; then
			for prog in 100003 100005 100021 100011; do
				rpcinfo -p 127.0.0.1 2>/dev/null | awk -v p=$prog '$1 == p { print $2 }' |
					sort -u | while read -r v; do rpcinfo -d "$prog" "$v" 2>/dev/null; done
			done
		fi
		return 0
	fi
	mkdir -p /run/rpcbind
	rpcbind -f >"$NFS_DIR/rpcbind.log" 2>&1 &
	NFS_RPCBIND_PID=$!
	record "pid $NFS_RPCBIND_PID"
	wait_until 5 sh -c 'ss -Hltn "sport = :111" | grep -q .' ||
		fail "rpcbind did not listen on port 111 within 5 s"
}

# nfs_server_launch: ganesha on the ports and export already chosen.
# Status 1 with NFS_ERR set when it does not come up (the caller fails).
nfs_server_launch() {
	local log=$NFS_DIR/ganesha.log pidf=$NFS_DIR/ganesha.pid i
	NFS_ERR=""
	rm -f "$pidf"
	echo "### $(date +%T.%3N) ganesha.nfsd start, ports $NFS_PORT/$NFS_MNT_PORT" >>"$log"
	if ! ganesha.nfsd -f "$NFS_DIR/ganesha.conf" -L "$log" -p "$pidf" -N NIV_EVENT \
		>>"$NFS_DIR/ganesha.out" 2>&1; then
		NFS_ERR="ganesha.nfsd failed to start: $(tail -n 5 "$log")"
		return 1
	fi
	for ((i = 0; i < 100; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.05
	done
	NFS_PID=$(cat "$pidf" 2>/dev/null)
	if [[ -z $NFS_PID ]]; then
		NFS_ERR="ganesha.nfsd wrote no pid file: $(tail -n 5 "$log")"
		return 1
	fi
	record "pid $NFS_PID"
	local deadline=$((SECONDS + 30))
	until nfs_answers; do
		if ! nfs_alive; then
			NFS_PID=""
			NFS_ERR="ganesha.nfsd exited at start: $(tail -n 8 "$log")"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			NFS_ERR="ganesha did not answer on $NFS_URL within 30 s: $(tail -n 5 "$log")"
			return 1
		fi
		sleep 0.1
	done
	return 0
}

nfs_server_start() {
	command -v ganesha.nfsd >/dev/null || fail "ganesha.nfsd not installed (nfs-ganesha nfs-ganesha-vfs)"
	command -v nfs-ls >/dev/null || fail "nfs-ls not installed (libnfs-utils)"
	nfs_alive && return 0
	mkdir -p "$NFS_DIR"
	nfs_rpcbind_ensure
	local try
	for try in 1 2 3; do
		nfs_pick_ports
		NFS_URL="nfs://127.0.0.1$NFS_EXPORT_DIR?nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
		nfs_write_conf
		# A parallel run may take the ports between the check and the bind.
		nfs_server_launch && break
		nfs_server_stop
		((try == 3)) && fail "$NFS_ERR"
	done
	export NFS_EXPORT_DIR NFS_URL NFS_PORT NFS_MNT_PORT
	log "nfs-ganesha pid $NFS_PID serving $NFS_URL"
}

# nfs_server_pid: the daemon's pid, from its pid file or our variable.
nfs_server_pid() {
	local p
	p=$(cat "$NFS_DIR/ganesha.pid" 2>/dev/null)
	echo "${p:-$NFS_PID}"
}

nfs_server_stop() {
	local p i
	p=$(nfs_server_pid)
	[[ -n $p ]] || { NFS_PID=""; return 0; }
	# Only a ganesha.nfsd: the pid file may be stale.
	if kill -0 "$p" 2>/dev/null && [[ $(cat "/proc/$p/comm" 2>/dev/null) == ganesha.nfsd ]]; then
		kill -TERM "$p" 2>/dev/null
		kill -CONT "$p" 2>/dev/null   # frozen by nfs_server_freeze
		for ((i = 0; i < 100; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$p" 2>/dev/null; then
			echo "### ganesha ignored SIGTERM for 10 s: SIGKILL" >>"$NFS_DIR/ganesha.log"
			kill -KILL "$p" 2>/dev/null
			for ((i = 0; i < 50; i++)); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$NFS_DIR/ganesha.pid"
	NFS_PID=""
	return 0
}

nfs_server_restart() {
	[[ -n $NFS_PORT ]] || fail "nfs_server_restart before nfs_server_start"
	nfs_server_stop
	# The ports must be free again (TIME_WAIT does not block a listener).
	wait_until 10 nfs_port_free "$NFS_PORT" || fail "NFS port $NFS_PORT still taken after the stop"
	nfs_rpcbind_ensure
	nfs_server_launch || fail "restart: $NFS_ERR"
	log "nfs-ganesha restarted, pid $NFS_PID"
}

# nfs_server_freeze / nfs_server_thaw: SIGSTOP / SIGCONT the daemon: a
# server that keeps its connections open and answers nothing (a hung
# server, unlike a stopped one, which refuses connections at once).
nfs_server_freeze() {
	local p
	p=$(nfs_server_pid)
	[[ -n $p ]] && kill -STOP "$p" || fail "nfs_server_freeze: no NFS server running"
}

nfs_server_thaw() {
	local p
	p=$(nfs_server_pid)
	[[ -n $p ]] && kill -CONT "$p" || fail "nfs_server_thaw: no NFS server running"
}

# nfs_fuse_cleanup: unmounts FUSE mounts under T, kills volumed-nfs-fuse
# helpers whose command line names a path under T.
nfs_fuse_cleanup() {
	local mp p cmd
	while read -r mp; do
		[[ -n $mp ]] || continue
		fusermount3 -uz "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
	done < <(awk -v d="$T/" '{ mp = $5; for (i = 6; i <= NF; i++) if ($i == "-") { t = $(i + 1); break }
		if (index(mp, d) == 1 && t ~ /^fuse/) print mp }' /proc/self/mountinfo | sort -r)
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == volumed-nfs-fu* ]] || continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $cmd == *"$T/"* ]] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	return 0
}

nfs_cleanup() {
	nfs_fuse_cleanup
	nfs_server_stop
	if [[ -n $NFS_RPCBIND_PID ]]; then
		kill -TERM "$NFS_RPCBIND_PID" 2>/dev/null
		wait "$NFS_RPCBIND_PID" 2>/dev/null
		NFS_RPCBIND_PID=""
	fi
	return 0
}

# ---------------------------------------------------------------- iSCSI target
#
# iscsi_target_start: a private tgtd (`tgtd -f`, userspace, state in memory
# only) with its iSCSI portal on 127.0.0.1:ISCSI_PORT and its management
# port ISCSI_CTL (tgtadm -C ISCSI_CTL), both picked free from a range offset
# by this run's pid, so parallel runs and other engineers' tgtds coexist.
# Sets and exports:
#   ISCSI_PORTAL  127.0.0.1:PORT
#   ISCSI_PORT, ISCSI_CTL
# iscsi_target_add IQN FILE [LUN]: a new target (next tid) with FILE as LUN
#   (default 1), bound to every initiator, 1 MiB segment and burst lengths.
#   Prints nothing; ISCSI_URL_<tid> is not kept: the caller builds
#   iscsi://$ISCSI_PORTAL/IQN/LUN.
# iscsi_target_stop: `tgtadm --op delete --mode system` (tgtd -f ignores
#   SIGTERM), SIGKILL after 2 s (it refuses while sessions exist);
#   ISCSI_STOPPED_MS = when tgtd was gone (ms since the epoch). iscsi_target_restart: stop + start on the
#   same ports, targets re-added (reservations are lost: tgt keeps them in
#   memory). iscsi_helper_track PID: a helper pid for cleanup to kill.
# cleanup unmounts FUSE mounts under T (nfs_fuse_cleanup does it too), kills
# the tracked helpers and stops tgtd.
ISCSI_PID=""
ISCSI_PORT=""
ISCSI_CTL=""
ISCSI_PORTAL=""
ISCSI_DIR=$T/iscsi
ISCSI_TARGETS=()     # "tid iqn file lun" per target, for restarts
ISCSI_HELPER_PIDS=""
ISCSI_STOPPED_MS=0

iscsi_tgtadm() {
	tgtadm -C "$ISCSI_CTL" "$@"
}

# iscsi_pick_ports: ISCSI_PORT = 23000 + k, ISCSI_CTL = k (tgtd's control
# port is a number, its socket name derives from it), k from a pid offset.
iscsi_pick_ports() {
	local k off=$((($$ % 200) * 2)) p c
	for ((k = 0; k < 400; k += 2)); do
		c=$((100 + (off + k) % 400))
		p=$((23000 + c))
		# tgtd's management socket is /var/run/tgtd/socket.$c (the file
		# outlives tgtd): skip a control port a live tgtd listens on.
		ss -Hxl 2>/dev/null | grep -q "/tgtd/socket\.$c " && continue
		if nfs_port_free "$p"; then
			ISCSI_PORT=$p ISCSI_CTL=$c
			return 0
		fi
	done
	fail "no free port for the iSCSI target"
}

iscsi_alive() {
	[[ -n $ISCSI_PID ]] && kill -0 "$ISCSI_PID" 2>/dev/null
}

iscsi_answers() {
	iscsi_tgtadm --lld iscsi --op show --mode target >/dev/null 2>&1
}

# iscsi_target_launch: tgtd on the ports already chosen; status 1 + ISCSI_ERR.
iscsi_target_launch() {
	local log=$ISCSI_DIR/tgtd.log
	ISCSI_ERR=""
	echo "### $(date +%T.%3N) tgtd start, portal 127.0.0.1:$ISCSI_PORT ctl $ISCSI_CTL" >>"$log"
	tgtd -f --iscsi "portal=127.0.0.1:$ISCSI_PORT" -C "$ISCSI_CTL" >>"$log" 2>&1 </dev/null &
	ISCSI_PID=$!
	record "pid $ISCSI_PID"
	local deadline=$((SECONDS + 10))
	until iscsi_answers && ss -Hltn "sport = :$ISCSI_PORT" | grep -q .; do
		if ! iscsi_alive; then
			ISCSI_PID=""
			ISCSI_ERR="tgtd exited at start: $(tail -n 5 "$log")"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			ISCSI_ERR="tgtd did not answer on control port $ISCSI_CTL within 10 s: $(tail -n 5 "$log")"
			return 1
		fi
		sleep 0.05
	done
	return 0
}

iscsi_target_start() {
	command -v tgtd >/dev/null || fail "tgtd not installed (tgt)"
	iscsi_alive && return 0
	mkdir -p "$ISCSI_DIR"
	local try
	for try in 1 2 3; do
		iscsi_pick_ports
		iscsi_target_launch && break
		iscsi_target_stop
		((try == 3)) && fail "$ISCSI_ERR"
	done
	ISCSI_PORTAL=127.0.0.1:$ISCSI_PORT
	export ISCSI_PORTAL ISCSI_PORT ISCSI_CTL
	log "tgtd pid $ISCSI_PID portal $ISCSI_PORTAL control port $ISCSI_CTL"
}

# iscsi_target_define TID IQN FILE LUN: the tgtadm calls (no bookkeeping).
iscsi_target_define() {
	local tid=$1 iqn=$2 file=$3 lun=$4 k
	iscsi_tgtadm --lld iscsi --op new --mode target --tid "$tid" -T "$iqn" || return 1
	iscsi_tgtadm --lld iscsi --op new --mode logicalunit --tid "$tid" --lun "$lun" \
		--backing-store "$file" || return 1
	iscsi_tgtadm --lld iscsi --op bind --mode target --tid "$tid" -I ALL || return 1
	for k in MaxRecvDataSegmentLength MaxXmitDataSegmentLength MaxBurstLength FirstBurstLength; do
		iscsi_tgtadm --lld iscsi --op update --mode target --tid "$tid" --name "$k" \
			--value 1048576 || return 1
	done
}

iscsi_target_add() {
	local iqn=$1 file=$2 lun=${3:-1} tid=$((${#ISCSI_TARGETS[@]} + 1))
	iscsi_alive || fail "iscsi_target_add before iscsi_target_start"
	iscsi_target_define "$tid" "$iqn" "$file" "$lun" || fail "tgtadm could not add $iqn ($file)"
	ISCSI_TARGETS+=("$tid $iqn $file $lun")
	log "iSCSI target tid $tid $iqn lun $lun -> $file"
}

iscsi_target_stop() {
	local i
	[[ -n $ISCSI_PID ]] || return 0
	if kill -0 "$ISCSI_PID" 2>/dev/null; then
		# tgtd refuses while initiators are logged in: then, after 2 s,
		# SIGKILL (an outage as abrupt as a crash, which is what tests want).
		iscsi_tgtadm --op delete --mode system >>"$ISCSI_DIR/tgtd.log" 2>&1
		for ((i = 0; i < 20; i++)); do
			kill -0 "$ISCSI_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$ISCSI_PID" 2>/dev/null; then
			echo "### tgtd still alive 2 s after delete system: SIGKILL" >>"$ISCSI_DIR/tgtd.log"
			kill -KILL "$ISCSI_PID" 2>/dev/null
		fi
	fi
	wait "$ISCSI_PID" 2>/dev/null
	ISCSI_STOPPED_MS=$(($(date +%s%N) / 1000000))
	ISCSI_PID=""
	return 0
}

iscsi_target_restart() {
	[[ -n $ISCSI_PORT ]] || fail "iscsi_target_restart before iscsi_target_start"
	iscsi_target_stop
	wait_until 10 nfs_port_free "$ISCSI_PORT" || fail "iSCSI port $ISCSI_PORT still taken after the stop"
	iscsi_target_launch || fail "restart: $ISCSI_ERR"
	local t
	for t in "${ISCSI_TARGETS[@]}"; do
		# shellcheck disable=SC2086
		iscsi_target_define $t || fail "restart: tgtadm could not re-add: $t"
	done
	log "tgtd restarted, pid $ISCSI_PID"
}

iscsi_helper_track() {
	ISCSI_HELPER_PIDS+=" $1"
	record "pid $1"
}

iscsi_cleanup() {
	local mp p
	# File systems on loop devices over a "disk" file first, then the loops.
	while read -r mp; do
		[[ -n $mp ]] || continue
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
	done < <(awk -v d="$T/" '{ mp = $5; for (i = 6; i <= NF; i++) if ($i == "-") { t = $(i + 1); break }
		if (index(mp, d) == 1 && t !~ /^fuse/) print mp }' /proc/self/mountinfo | sort -r)
	detach_loops_under "$T"
	while read -r mp; do
		[[ -n $mp ]] || continue
		fusermount3 -uz "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
	done < <(awk -v d="$T/" '{ mp = $5; for (i = 6; i <= NF; i++) if ($i == "-") { t = $(i + 1); break }
		if (index(mp, d) == 1 && t ~ /^fuse/) print mp }' /proc/self/mountinfo | sort -r)
	for p in $ISCSI_HELPER_PIDS; do
		kill -KILL "$p" 2>/dev/null
	done
	ISCSI_HELPER_PIDS=""
	iscsi_target_stop
	return 0
}

# ---------------------------------------------------------------- TLS

# tls_pki_make DIR: a throwaway CA (DIR/ca.pem) and a server certificate for
# 127.0.0.1 signed by it (DIR/server.pem, DIR/server.key), made with the
# openssl CLI; its output goes to DIR/openssl.log. Status 1 on failure.
tls_pki_make() {
	local d=$1
	mkdir -p "$d" && chmod 700 "$d"
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=volumed test CA" &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" &&
		printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
			"keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" >"$d/server.ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -out "$d/server.pem" -days 2 -extfile "$d/server.ext"
	} >"$d/openssl.log" 2>&1
}
