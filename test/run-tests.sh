#!/usr/bin/env bash
# Runs "go test -v" with the given arguments, prints the per-package result
# lines (all output for failing tests), and closes with one summary line:
# "tests: N passed, N failed, N skipped". Exits with go test's status.
set -uo pipefail
log=$(dirname "$0")/../_output/test.log
mkdir -p "$(dirname "$log")"
go test -v -count=1 "$@" >"$log" 2>&1
rc=$?
# Package lines, and every failure with what it printed.
grep -E '^(ok|FAIL|---|panic:)|^\s+--- (FAIL|SKIP)|^\s+\S+_test\.go:[0-9]+:' "$log" | grep -v -E '^\s*--- PASS'
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	# A build failure or panic outside a test: show it all.
	cat "$log"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped (full log: _output/test.log)"
exit "$rc"
