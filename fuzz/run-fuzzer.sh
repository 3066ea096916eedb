#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs one libFuzzer target for a bounded time on a scratch copy of its
# seed corpus (the repo's corpus is never written). Exits non-zero on any
# crash, leak or sanitizer report; prints the runs and coverage reached.
# Usage: run-fuzzer.sh FUZZER SEED_DIR [SECONDS]   (or $DIRTY_FUZZ_SECONDS)
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=${3:-${DIRTY_FUZZ_SECONDS:-60}}
work=$(mktemp -d /tmp/dirty-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$seeds"/* "$work/corpus/"

status=0
"$fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$work/crash-" "$work/corpus" >"$work/log" 2>&1 || status=$?
name=$(basename "$fuzzer")
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -n 1 || true)
echo "$name: ${done_line:-no final statistics} (${seconds} s)"
grep -E '^stat::' "$work/log" || true
if [ "$status" != 0 ]; then
  tail -n 60 "$work/log"
  for crash in "$work"/crash-*; do
    [ -e "$crash" ] || continue
    echo "crasher (add it to $seeds once fixed): $(basename "$crash")"
    od -A x -t x1z "$crash" | head -n 20
  done
fi
exit "$status"
