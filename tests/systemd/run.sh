#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The 'systemd' test suite: installs this build with `meson install
# --destdir` into a temporary tree, boots a real systemd in a throwaway
# container (sandbox.sh), copies the tree over the container's / (a RAM
# overlay: the host is never touched) and runs inside.sh there, which
# prints TAP. Root only; bounded to 3 minutes; the container is always
# torn down.
#
# Usage: run.sh BUILD_DIR INSIDE_SH DIRTY_SD_CALL SLOWINIT_SO DIRTY_SD_LOAD
set -u
if [ $# -ne 5 ]; then
	echo "usage: $0 BUILD_DIR INSIDE_SH DIRTY_SD_CALL SLOWINIT_SO DIRTY_SD_LOAD" >&2
	exit 2
fi
build=$(readlink -f "$1") inside=$(readlink -f "$2") call=$(readlink -f "$3") slowinit=$(readlink -f "$4")
load=$(readlink -f "$5")
here=$(dirname "$(readlink -f "$0")")

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP booting systemd in a container needs root (run meson test as root)"
	exit 0
fi

tmp=$(mktemp -d /tmp/dirty-systemd-test.XXXXXX) || { echo "Bail out! mktemp failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
# the test's files, readable by the service's dynamic user
mkdir -m 0755 "$tmp/dest" "$tmp/test"
if ! meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1; then
	echo "Bail out! meson install --destdir failed"
	sed 's/^/# /' "$tmp/install.log"
	exit 1
fi
cp "$inside" "$call" "$slowinit" "$load" "$tmp/test/"

# 180 s for the command; booting and teardown add a few seconds
"$here/sandbox.sh" --bind-ro "$tmp" --bind-ro "$build" --timeout 180 \
	--save-journal "$build/meson-logs/systemd-journal.txt" -- \
	bash "$tmp/test/inside.sh" "$tmp/dest" "$tmp/test" "$build"
rc=$?
case $rc in
0|1) ;;
124) echo "Bail out! the tests inside the container ran out of time (180 s)" ;;
125) echo "Bail out! the container could not be booted (see the log above)" ;;
*) echo "Bail out! inside.sh exited with status $rc" ;;
esac
echo "# the container's journal: $build/meson-logs/systemd-journal.txt"
exit $rc
