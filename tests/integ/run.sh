#!/usr/bin/env bash
# run.sh — runs every tests/integ/test_*.sh (or those named as arguments),
# each in its own bash with a timeout, checks that each left nothing behind
# (mounts, loop devices, its directory, the plugin socket, processes), and
# closes with "integ: N passed, N failed".
#
#   BUILD=build tests/integ/run.sh [test_x.sh...]
#   VD_ITEST_TIMEOUT=300 (seconds per test), VD_ITEST_VERBOSE=1 (print every
#   test's output, not only a failing one's).
set -u

here=$(cd "$(dirname "$0")" && pwd)
export BUILD=${BUILD:-build}
timeout_s=${VD_ITEST_TIMEOUT:-300}

if [[ $(id -u) != 0 ]]; then
	echo "integ: needs root (mounts, loop devices, dockerd)" >&2
	echo "integ: 0 passed, 1 failed"
	exit 1
fi

if (($# > 0)); then
	tests=()
	for t in "$@"; do
		case $t in
		*/*) tests+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")") ;;
		*) tests+=("$here/$t") ;;
		esac
	done
else
	tests=("$here"/test_*.sh)
fi

logdir=$(mktemp -d /tmp/volumed-integ-logs.XXXX)
passed=0 failed=0 failed_names=()
start_all=$SECONDS

# leftovers RECORD: what a test recorded and did not clean up, one per line.
leftovers() {
	local kind val
	while read -r kind val; do
		case $kind in
		dir)
			if awk '{print $5}' /proc/self/mountinfo | grep -q "^$val/"; then
				echo "mounts under $val:"
				awk '{print $5}' /proc/self/mountinfo | grep "^$val/" | sed 's/^/    /'
			fi
			losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$val/" 'index($2, d) == 1 { print "loop device " $1 " on " $2 }'
			[[ -e $val ]] && echo "directory $val"
			for p in /proc/[0-9]*; do
				tr "\0" " " 2>/dev/null <"$p/cmdline" | grep -qF "$val/" &&
					echo "process ${p#/proc/} ($(tr "\0" " " 2>/dev/null <"$p/cmdline" | cut -c1-80))"
			done
			;;
		sock) [[ -e $val ]] && echo "plugin socket $val" ;;
		pid) kill -0 "$val" 2>/dev/null && echo "process $val ($(tr "\0" " " 2>/dev/null <"/proc/$val/cmdline" | cut -c1-80))" ;;
		esac
	done <"$1"
	return 0
}

# scrub RECORD: removes what leftovers found, so the next test starts clean.
scrub() {
	local kind val mp dev file
	while read -r kind val; do
		case $kind in
		pid) kill -KILL "$val" 2>/dev/null ;;
		esac
	done <"$1"
	while read -r kind val; do
		case $kind in
		dir)
			for p in /proc/[0-9]*; do
				tr "\0" " " 2>/dev/null <"$p/cmdline" | grep -qF "$val/" && kill -KILL "${p#/proc/}" 2>/dev/null
			done
			awk '{print $5}' /proc/self/mountinfo | grep "^$val/" | sort -r | while read -r mp; do
				umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
			done
			losetup -n -l -O NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
				[[ $file == "$val"/* ]] && losetup -d "$dev" 2>/dev/null
			done
			awk '{print $5}' /proc/self/mountinfo | grep -q "^$val/" || rm -rf --one-file-system "$val"
			;;
		sock) rm -f "$val" ;;
		esac
	done <"$1"
}

for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	if [[ ! -f $t ]]; then
		echo "FAIL  $name (no such test)"
		failed=$((failed + 1)); failed_names+=("$name")
		continue
	fi
	rec=$logdir/$name.record
	out=$logdir/$name.log
	: >"$rec"
	t0=$SECONDS
	# A test may ask for a longer bound with a line "# itest-timeout: SECONDS".
	limit=$(sed -n 's/^# itest-timeout: \([0-9][0-9]*\)$/\1/p' "$t" | head -n 1)
	((${limit:-0} > timeout_s)) || limit=$timeout_s
	VD_ITEST_RECORD=$rec VD_ITEST_KEEP=$logdir/$name \
		timeout -k 60 "$limit" bash "$t" >"$out" 2>&1
	rc=$?
	dt=$((SECONDS - t0))
	left=$(leftovers "$rec")
	if [[ -n $left ]]; then
		{
			echo
			echo "LEFT BEHIND after the test:"
			echo "$left"
		} >>"$out"
		scrub "$rec"
	fi
	if ((rc == 0)) && [[ -z $left ]]; then
		echo "ok    $name (${dt}s)"
		passed=$((passed + 1))
		[[ ${VD_ITEST_VERBOSE:-} ]] && sed 's/^/      /' "$out"
	else
		reason="status $rc"
		((rc == 124)) && reason="timed out after ${limit}s"
		((rc == 0)) && reason="left things behind"
		echo "FAIL  $name (${dt}s, $reason)"
		if [[ ${VD_ITEST_VERBOSE:-} ]]; then
			sed 's/^/      /' "$out"
		else
			grep -E '^(FAIL|LEFT)' -A 40 "$out" | head -n 60 | sed 's/^/      /'
			[[ $rc == 124 ]] && tail -n 20 "$out" | sed 's/^/      /'
		fi
		echo "      full log: $out"
		failed=$((failed + 1)); failed_names+=("$name")
	fi
done

if ((failed == 0)); then
	rm -rf "$logdir"
else
	echo "integ: failed: ${failed_names[*]} (logs in $logdir)"
fi
echo "integ: $((SECONDS - start_all))s in all"
echo "integ: $passed passed, $failed failed"
((failed == 0))
