#!/usr/bin/env bash
# Builds each fuzz target with clang's libFuzzer and runs it for N seconds
# over its corpus; new crash inputs land in tests/fuzz/corpus/<target>/ so
# `make test` replays them forever after.
set -euo pipefail
seconds=${1:-30}
out=build-fuzz
mkdir -p "$out"
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined $(pkg-config --cflags libmicrohttpd jansson libcurl)"
libs="$(pkg-config --libs libmicrohttpd jansson libcurl) -pthread"
core=$(ls volumed/*.c drivers/*.c docker-plugin/*.c csi/*.c 2>/dev/null |
	grep -v -e volumed/main.c -e volumed/volctl.c -e volumed/apiclient.c)
for src in tests/fuzz/fuzz_*.c; do
	target=$(basename "$src" .c); target=${target#fuzz_}
	clang $flags -o "$out/fuzz_$target" "$src" tests/support/fixture.c $core $libs
	mkdir -p "tests/fuzz/corpus/$target" "$out/corpus-$target"
	"$out/fuzz_$target" -max_total_time="$seconds" -artifact_prefix="tests/fuzz/corpus/$target/crash-" \
		"$out/corpus-$target" "tests/fuzz/corpus/$target" || true
done
