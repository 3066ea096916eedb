#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job, from a fresh Debian 12 machine (as root): installs what is
# needed, builds, starts dirty-arbiter with the bundled example apps on a
# private socket, makes real calls through libdirty-glib and prints them,
# then stops the arbiter.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

tmp=$(mktemp -d /tmp/dirty-demo.XXXXXX)
trap 'kill "$arbiter" 2>/dev/null; wait "$arbiter" 2>/dev/null; rm -rf "$tmp"' EXIT
export DIRTY_ARBITER_SOCKET=$tmp/arbiter.sock
export DIRTY_WORKER_PATH=$PWD/build/daemon/worker/dirty-worker
# what markov.so learns from, in the source tree (installed: the data dir)
export DIRTY_MARKOV_CORPUS=$PWD/examples/apps/markov-corpus.txt
# the Python worker, its dirty module and the typelib, from the build tree
export DIRTY_PYTHON_WORKER_PATH=$PWD/build/daemon/worker/dirty-python-worker
export PYTHONPATH=$PWD/daemon/worker/python
export GI_TYPELIB_PATH=$PWD/build/client LD_LIBRARY_PATH=$PWD/build/client

build/daemon/arbiter/dirty-arbiter --config=/dev/null \
  --app-path="$PWD/build/examples/apps" --app-path="$PWD/examples/python" \
  --dirty-app=echo:DirtyEchoApp --dirty-app=counter:DirtyCounterApp \
  --dirty-app=slow:DirtySlowApp --dirty-app=thumbnail:DirtyThumbnailApp \
  --dirty-app=compress:DirtyCompressApp --dirty-app=markov:DirtyMarkovApp \
  --dirty-app=python:numstats:NumStats:1 \
  --dirty-workers=2 --dirty-threads=2 &
arbiter=$!

# wait for the socket
for _ in $(seq 100); do
  [ -S "$DIRTY_ARBITER_SOCKET" ] && break
  sleep 0.05
done

image=/usr/share/icons/hicolor/48x48/apps/debian-logo.png
[ -f "$image" ] || image=$(find /usr/share -name '*.png' -size +2k -print -quit 2>/dev/null || true)
build/examples/client/dirty-demo ${image:+--image="$image"}

# a stream read on a main loop, token by token, as a chat UI would
echo "dirty-tokens (markov:DirtyMarkovApp generate_async, next_chunk on a GMainLoop):"
build/examples/client/dirty-tokens --words 40 --seed 3

# a Python app (examples/python/numstats.py, numpy) in dirty-python-worker
echo "dirtyctl call python:numstats:NumStats describe '[4, 8, 15, 16, 23, 42]':"
build/dirtyctl/dirtyctl call python:numstats:NumStats describe '[4, 8, 15, 16, 23, 42]'
echo "dirtyctl stream python:numstats:NumStats walk --kwarg steps=3 --kwarg seed=7 (an async generator):"
build/dirtyctl/dirtyctl stream python:numstats:NumStats walk --kwarg steps=3 --kwarg seed=7
