#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a command against a real dirty-arbiter, as tests/dirty-test-daemon.c
does for the C tests: starts $DIRTY_TEST_ARBITER on a socket in a fresh
temporary directory (workers from $DIRTY_WORKER_PATH, apps from
$DIRTY_TEST_APP_PATH), waits for its READY=1 on a notify socket, runs the
command with DIRTY_ARBITER_SOCKET set to the arbiter's socket (the default
socket of libdirty-glib's clients), then stops the arbiter with SIGTERM.
Exits with the command's status; with --expect=REGEX (repeatable), fails
also if the command's output has no match for REGEX.

Usage: with-daemon.py [--expect=REGEX...] [ARBITER OPTION...] -- COMMAND [ARG...]
e.g.   with-daemon.py --dirty-app=echo:DirtyEchoApp -- gjs gi/test-client.js"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

READY_TIMEOUT = 30


def die_with_parent():
    """In the child: SIGTERM when this script dies, however it dies (a
    test timeout), so no arbiter outlives its test."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def required_env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit("with-daemon: %s is not set: run the tests with `meson test`" % name)
    return value


def wait_ready(notify, arbiter):
    """READY=1 from the arbiter, or exit if it dies or takes too long."""
    notify.settimeout(0.2)
    waited = 0.0
    while waited < READY_TIMEOUT:
        try:
            message = notify.recv(4096).decode("utf-8", "replace")
        except socket.timeout:
            waited += 0.2
            if arbiter.poll() is not None:
                sys.exit("with-daemon: dirty-arbiter exited with status %d before READY=1"
                         % arbiter.returncode)
            continue
        if "READY=1" in message.split("\n"):
            return
    sys.exit("with-daemon: dirty-arbiter did not send READY=1 within %d s" % READY_TIMEOUT)


def run(command, env, expected):
    """The command's status, or 1 if its output lacks an expected match."""
    if not expected:
        return subprocess.run(command, env=env).returncode
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(done.stdout)
    missing = [r for r in expected if not re.search(r, done.stdout, re.M)]
    for regex in missing:
        print("with-daemon: no match for %r in the output" % regex, file=sys.stderr)
    return done.returncode or (1 if missing else 0)


def main():
    if "--" not in sys.argv:
        sys.exit(__doc__)
    split = sys.argv.index("--")
    options, command = sys.argv[1:split], sys.argv[split + 1:]
    expected = [o[len("--expect="):] for o in options if o.startswith("--expect=")]
    options = [o for o in options if not o.startswith("--expect=")]
    tmp = tempfile.mkdtemp(prefix="dirty-gi-test-")
    socket_path = os.path.join(tmp, "arbiter.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(tmp, "notify.sock"))

    argv = [required_env("DIRTY_TEST_ARBITER"), "--config=/dev/null",
            "--socket=" + socket_path]
    argv += ["--app-path=" + d for d in required_env("DIRTY_TEST_APP_PATH").split(":")]
    env = dict(os.environ, NOTIFY_SOCKET=notify.getsockname(),
               DIRTY_WORKER_PATH=required_env("DIRTY_WORKER_PATH"))
    env.pop("DIRTY_ARBITER_SOCKET", None)
    arbiter = subprocess.Popen(argv + options, env=env, preexec_fn=die_with_parent)
    # meson stops a test that overruns with SIGTERM: clean up as on exit.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        wait_ready(notify, arbiter)
        status = run(command, dict(os.environ, DIRTY_ARBITER_SOCKET=socket_path), expected)
    finally:
        if arbiter.poll() is None:
            arbiter.send_signal(signal.SIGTERM)
            try:
                arbiter.wait(timeout=30)
            except subprocess.TimeoutExpired:
                arbiter.kill()
                arbiter.wait()
        notify.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if arbiter.returncode not in (0, -signal.SIGTERM):
        print("with-daemon: dirty-arbiter exited with status %d" % arbiter.returncode,
              file=sys.stderr)
        return 1
    return status


sys.exit(main())
