#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Thread wake-ups per call: the voluntary context switches of the whole
# process tree (dirty-bench, the arbiter, its workers: getrusage of
# waited-for children), for one dirty-bench figure run with N and with
# 3N calls; the difference divided by 2N, so start-up cancels out. A
# voluntary switch is a thread going to sleep to be woken later, so this
# counts the hops of a call (plus a few timers), not CPU time: it does
# not depend on load the way seconds do.
# Usage: benchmarks/wakeups.sh BUILDDIR [rtt|stream|first] [N]
# (not tput: that figure runs for a time, not a count of calls)
set -eu
build=$(cd "$1" && pwd)
what=${2:-rtt}
n=${3:-3000}

DIRTY_TEST_ARBITER=$build/daemon/arbiter/dirty-arbiter \
DIRTY_WORKER_PATH=$build/daemon/worker/dirty-worker \
DIRTY_TEST_APP_PATH=$build/examples/apps:$build/tests/apps \
/usr/bin/python3 - "$build/benchmarks/dirty-bench" "$what" "$n" <<'EOS'
import resource, subprocess, sys

bench, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def switches(count):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([bench, "--quick", "--profile=" + what, "--count=%d" % count],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_nvcsw - before.ru_nvcsw, after.ru_nivcsw - before.ru_nivcsw

small, large = switches(n), switches(3 * n)
print("voluntary switches per call %.2f, involuntary %.2f" %
      ((large[0] - small[0]) / (2 * n), (large[1] - small[1]) / (2 * n)))
EOS
