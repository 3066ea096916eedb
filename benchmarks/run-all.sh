#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs every benchmark and ends with one table of all their figures.
# Usage: run-all.sh DIRTY_BENCH DIRTY_BENCH_CONNS [--quick]
# (`ninja -C build bench` passes the first two and the environment.)
set -eu
bench=$1
conns=$2
shift 2
table=$(mktemp)
trap 'rm -f "$table"' EXIT
"$bench" --table="$table" "$@"
"$conns" --table="$table" "$@"
echo
printf '%-46s %18s %18s %9s %12s  %s\n' figure value floor ratio target met
cat "$table"
