#!/usr/bin/env bash
# Runs every cmocka unit test binary given; prints one closing line.
set -u
passed=0 failed=0 failed_names=()
for bin in "$@"; do
	name=$(basename "$bin")
	if "$bin"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1)); failed_names+=("$name")
	fi
done
((failed)) && echo "unit: failed: ${failed_names[*]}"
echo "unit: $passed passed, $failed failed"
((failed == 0))
