#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Which thread wakes which, per call, and where the woken thread runs: on
# the waker's vCPU, on another busy one, or on another idle one. The
# scheduler's own trace of one dirty-bench figure, run with N and with 3N
# calls, the difference divided by 2N so start-up cancels out.
#
# sched_waking is recorded on the waker's CPU, as the waker, with the CPU
# the woken thread will run on; sched_switch says which CPUs are idle at
# that moment. On a VM whose idle vCPUs halt (guest_halt_poll_ns 0), a
# wake-up for an idle vCPU pays for that vCPU's wake-up through the host:
# the cost behind target 1 as the machine is (benchmarks/HISTORY.md,
# sessions 12 and 21).
# Usage: benchmarks/crossings.sh BUILDDIR [rtt|first|async|floor|floors] [N]
# (floor and floors: the raw relay's threads, "relay" and "echo")
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
    perf record -q -m 1024 -o "$work/perf.data" -e sched:sched_waking -e sched:sched_switch -a -- \
    "$build/benchmarks/dirty-bench" --quick --profile="$what" --count="$1" >/dev/null 2>&1
  perf script -i "$work/perf.data" -F comm,cpu,event,trace >"$work/$1.txt" 2>/dev/null
}

trace "$n"
trace $((3 * n))
/usr/bin/python3 - "$work/$n.txt" "$work/$((3 * n)).txt" "$n" <<'EOS'
import collections, re, sys

OURS = ("dirty-bench", "caller", "dirty-io", "dirty-arbiter", "dirty-worker", "dirty-call",
        "relay", "echo")
WAKING = re.compile(r"\s*(\S+)\s+\[(\d+)\]\s+sched:sched_waking:\s+comm=(\S+) pid=\d+ prio=-?\d+ target_cpu=(\d+)")
SWITCH = re.compile(r"\s*\S+\s+\[(\d+)\]\s+sched:sched_switch:.* next_pid=(\d+)")

def count(path):
    counts = collections.Counter()
    idle = collections.defaultdict(bool)
    for line in open(path):
        m = SWITCH.match(line)
        if m:
            idle[int(m.group(1))] = m.group(2) == "0"
            continue
        m = WAKING.match(line)
        if not m or m.group(3) not in OURS:
            continue
        waker, cpu, wakee, target = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        if waker == "swapper":
            waker = "an interrupt on an idle vCPU"
        elif waker not in OURS:
            continue
        if cpu == target:
            where = "same vCPU"
        elif idle[target]:
            where = "other vCPU, idle (halted)"
        else:
            where = "other vCPU, busy"
        counts[(where, waker, wakee)] += 1
    return counts

small, large, n = count(sys.argv[1]), count(sys.argv[2]), int(sys.argv[3])
print("wake-ups per call (waker -> woken), of at least 0.05:")
totals = collections.Counter()
for key in sorted(set(small) | set(large)):
    per_call = (large[key] - small[key]) / (2 * n)
    totals[key[0]] += per_call
    if per_call >= 0.05:
        print("  %-26s %s -> %s: %.2f" % (key[0], key[1], key[2], per_call))
print("in all: " + ", ".join("%s %.2f" % (where, totals[where]) for where in sorted(totals)))
EOS
