#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The unit files as built: `systemd-analyze verify` must print nothing for
# any of them (it only warns, exit 0, about unknown keys or bad values, so
# any output is a failure), and `systemd-analyze security --offline=yes`
# must rate the system service and the worker template 2.0 or lower, and
# the user ones 6.5 or lower (offline, a user unit is rated as if it ran
# as root with every capability; README, "Security", has the figures).
# Runs on the host: no systemd manager needed. TAP.
#
# Usage: test-units.sh ARBITER_EXE WORKER_EXE BINDIR LIBEXECDIR UNITS_BUILD_DIR
# The units name the installed paths BINDIR/dirty-arbiter and
# LIBEXECDIR/dirty-worker, which verify requires to exist: the copies
# checked here point at the built executables instead, nothing else changed.
set -u
if [ $# -ne 5 ]; then
	echo "usage: $0 ARBITER_EXE WORKER_EXE BINDIR LIBEXECDIR UNITS_BUILD_DIR" >&2
	exit 2
fi
arbiter=$(readlink -f "$1") worker=$(readlink -f "$2") bindir=$3 libexecdir=$4 units=$(readlink -f "$5")

if ! command -v systemd-analyze >/dev/null; then
	echo "1..0 # SKIP systemd-analyze is not installed (package systemd)"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dirty-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }

# copy one manager's units, executables pointed at the build
prepare() { # prepare SRC DST
	mkdir -p "$2"
	for f in "$1"/*.socket "$1"/*.service; do
		sed -e "s|$bindir/dirty-arbiter|$arbiter|g" \
		    -e "s|$libexecdir/dirty-worker|$worker|g" "$f" > "$2/$(basename "$f")"
	done
}
prepare "$units" "$tmp/system"
prepare "$units/user" "$tmp/user"
mkdir -m 0700 "$tmp/runtime"

verify() { # verify system|user UNIT
	local mode=$1 unit=$2 out rc
	local opts=()
	[ "$mode" = user ] && opts=(--user)
	out=$(cd "$tmp/$mode" && XDG_RUNTIME_DIR=$tmp/runtime \
		systemd-analyze "${opts[@]}" verify "./$unit" 2>&1)
	rc=$?
	if [ $rc = 0 ] && [ -z "$out" ]; then
		ok "verify ($mode) $unit"
	else
		not_ok "verify ($mode) $unit (exit $rc)"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
}
for mode in system user; do
	for f in "$tmp/$mode"/*; do
		verify "$mode" "$(basename "$f")"
	done
done

# the project's hardening: exposure 2.0 or lower ("--threshold=20") for
# the system units, 6.5 for the user units (no mount namespaces there)
security() { # security system|user UNIT THRESHOLD
	local mode=$1 unit=$2 threshold=$3 out rc level
	local opts=()
	[ "$mode" = user ] && opts=(--user)
	out=$(cd "$tmp/$mode" && XDG_RUNTIME_DIR=$tmp/runtime systemd-analyze "${opts[@]}" \
		security --offline=yes --threshold="$threshold" --no-pager "./$unit" 2>&1)
	rc=$?
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ $rc = 0 ] && [ -n "$level" ]; then
		ok "security ($mode) $unit: exposure $level (<= $((threshold / 10)).$((threshold % 10)))"
	else
		not_ok "security ($mode) $unit: exposure ${level:-unknown} (exit $rc, must be <= $((threshold / 10)).$((threshold % 10)))"
		printf '%s\n' "$out" | grep -v '^✓' | sed 's/^/# /'
	fi
}
security system dirty-arbiter.service 20
security system dirty-worker@.service 20
security user dirty-arbiter.service 65
security user dirty-worker@.service 65

echo "1..$n"
exit $failed
