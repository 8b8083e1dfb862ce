#!/usr/bin/env bash
# Replays each fuzz target over tests/fuzz/corpus/<target>/ (seeds and every
# crash input ever found). A crash fails the run.
set -u
build=$1
passed=0 failed=0
for bin in "$build"/tests/replay_fuzz_*; do
	[[ -x $bin ]] || continue
	target=${bin##*/replay_fuzz_}
	dir=tests/fuzz/corpus/$target
	files=()
	[[ -d $dir ]] && mapfile -t files < <(find "$dir" -type f | sort)
	if ((${#files[@]} == 0)); then
		echo "fuzz-replay: $target has no corpus in $dir"; failed=$((failed + 1)); continue
	fi
	if "$bin" "${files[@]}"; then
		passed=$((passed + 1))
	else
		echo "fuzz-replay: $target failed"; failed=$((failed + 1))
	fi
done
echo "fuzz-replay: $passed passed, $failed failed"
((failed == 0))
