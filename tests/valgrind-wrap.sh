#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The valgrind test setup's wrapper (meson test --setup=valgrind), also
# used by tests/dirty-test-daemon.c to run the daemon, and with it every
# dirty-worker it starts, under memcheck:
#   valgrind-wrap.sh [--VALGRIND-OPTION...] PROGRAM [ARG...]
# A compiled program runs under valgrind: any error, and any definite
# leak, makes it exit with status 1. A script (the po and units tests)
# runs as it is: valgrind checks C, not interpreters.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
opts=""
while [ $# -gt 0 ]; do
  case $1 in
    --*) opts="$opts $1"; shift ;;
    *) break ;;
  esac
done
program=$1
if [ "$(head -c 4 "$(command -v "$program")" | od -An -c | tr -d ' ')" != '177ELF' ]; then
  exec "$@"
fi
# shellcheck disable=SC2086
exec valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --child-silent-after-fork=yes --num-callers=30 \
  --suppressions=/usr/share/glib-2.0/valgrind/glib.supp --suppressions="$here/valgrind.supp" \
  $opts "$@"
