#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Instruction counts (callgrind) of the arbiter, the worker and the client
# per call (or per chunk): stable on a noisy machine, unlike seconds.
# Runs one dirty-bench figure twice, with N and 3N calls, under callgrind
# (arbiter, workers and client alike), and divides the difference by 2N,
# so start-up and warm-up cancel out.
# Usage: benchmarks/profile.sh BUILDDIR OUTDIR [rtt|async|stream|tput|first] [N]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
what=${3:-rtt}
n=${4:-1000}
vg="valgrind --tool=callgrind --dump-instr=no"

run () {
  dir=$out/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  cat > "$dir/arbiter.sh" <<EOS
#!/bin/sh
exec $vg --callgrind-out-file=$dir/callgrind.arbiter.%p $build/daemon/arbiter/dirty-arbiter "\$@"
EOS
  cat > "$dir/worker.sh" <<EOS
#!/bin/sh
exec $vg --callgrind-out-file=$dir/callgrind.worker.%p $build/daemon/worker/dirty-worker "\$@"
EOS
  chmod +x "$dir/arbiter.sh" "$dir/worker.sh"
  DIRTY_TEST_ARBITER=$dir/arbiter.sh \
  DIRTY_WORKER_PATH=$dir/worker.sh \
  DIRTY_TEST_APP_PATH=$build/examples/apps:$build/tests/apps \
    $vg --callgrind-out-file="$dir/callgrind.client.%p" \
    "$build/benchmarks/dirty-bench" --quick --profile="$what" --count="$2" >/dev/null 2>&1
}

run small "$n"
run large $((3 * n))
/usr/bin/python3 "$here/callgrind-diff.py" "$out/small" "$out/large" $((2 * n))
