#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Which thread wakes which, per call, and whether the woken thread runs on
# the waker's CPU or on another one: the scheduler's own trace
# (sched_wakeup) of one dirty-bench figure, run with N and with 3N calls,
# the difference divided by 2N so start-up cancels out. On a VM whose idle
# vCPUs halt, a wake-up on another vCPU pays for that vCPU's wake-up; the
# kernel then records it as done by the target's idle task ("swapper"),
# since the target runs it when it resumes. That is the cost behind
# target 1 as the machine is (benchmarks/HISTORY.md, session 12).
# Usage: benchmarks/crossings.sh BUILDDIR [rtt|first|async] [N]
# Needs perf and the right to trace the whole system (root, or
# kernel.perf_event_paranoid at most 0).
set -eu
build=$(cd "$1" && pwd)
what=${2:-rtt}
n=${3:-3000}
command -v perf >/dev/null || { echo "crossings.sh: perf is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

trace () {
  DIRTY_TEST_ARBITER=$build/daemon/arbiter/dirty-arbiter \
  DIRTY_WORKER_PATH=$build/daemon/worker/dirty-worker \
  DIRTY_TEST_APP_PATH=$build/examples/apps:$build/tests/apps \
    perf record -q -o "$work/perf.data" -e sched:sched_wakeup -a -- \
    "$build/benchmarks/dirty-bench" --quick --profile="$what" --count="$1" >/dev/null 2>&1
  perf script -i "$work/perf.data" -F comm,cpu,trace >"$work/$1.txt" 2>/dev/null
}

trace "$n"
trace $((3 * n))
/usr/bin/python3 - "$work/$n.txt" "$work/$((3 * n)).txt" "$n" <<'EOS'
import collections, re, sys

OURS = ("dirty-bench", "caller", "dirty-io", "dirty-arbiter", "dirty-worker", "dirty-call")
LINE = re.compile(r"\s*(\S+)\s+\[(\d+)\]\s+comm=(\S+) pid=\d+ prio=\d+ target_cpu=(\d+)")

def count(path):
    counts = collections.Counter()
    for line in open(path):
        m = LINE.match(line)
        if not m or m.group(3) not in OURS:
            continue
        waker, cpu, wakee, target = m.groups()
        if waker == "swapper":
            counts[("other vCPU (woken by a halted vCPU's idle task)", "?", wakee)] += 1
        elif waker in OURS:
            where = "same vCPU" if cpu == target else "other vCPU"
            counts[(where, waker, wakee)] += 1
    return counts

small, large, n = count(sys.argv[1]), count(sys.argv[2]), int(sys.argv[3])
print("wake-ups per call (waker -> woken), of at least 0.05:")
for key in sorted(set(small) | set(large)):
    per_call = (large[key] - small[key]) / (2 * n)
    if per_call >= 0.05:
        print("  %-50s %s -> %s: %.2f" % (key[0], key[1], key[2], per_call))
EOS
