#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""examples/service/dirty-http-service against the real daemon that
with-daemon.py started (its socket in $DIRTY_ARBITER_SOCKET), TAP, with
an HTTP client of its own (urllib): a JSON answer, bad queries refused,
a stream of server-sent events, the service answering while a stream is
open and a reader is slow, a client that goes away cancelling its call
(dirtyctl status), and a stream that hits its deadline ending with an
error event.

Usage: test-http-service.py SERVICE DIRTYCTL"""
import ctypes
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

service_exe, dirtyctl = sys.argv[1:3]
n = 0
failed = False


def check(ok, what, detail=""):
    global n, failed
    n += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
    if not ok:
        failed = True
        print("%s: %s" % (what, detail), file=sys.stderr)


def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def start_service(*args):
    process = subprocess.Popen([service_exe, "--port=0"] + list(args),
                               stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        sys.exit("dirty-http-service did not start: %r" % line)
    return process, line.split()[2]


def get(url):
    """(status, content type, body) of a GET; HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def events(response):
    """Yields (event, data) from a text/event-stream as the events arrive."""
    event, data = None, None
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n")
        if line == "":
            yield event or "message", json.loads(data)
            event, data = None, None
        elif line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]


def markov_status():
    out = subprocess.run([dirtyctl, "status", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["apps"]["markov:DirtyMarkovApp"]


def test_add(base):
    status, content_type, body = get(base + "add?a=20&b=22")
    check(status == 200 and content_type == "application/json"
          and json.loads(body) == {"result": 42}, "GET /add answers JSON",
          (status, content_type, body))
    status, _, body = get(base + "add?a=20&b=lots")
    check(status == 400 and json.loads(body)["error"] == "invalid-argument",
          "a bad number is 400 invalid-argument", (status, body))
    status, _, body = get(base + "generate?words=0")
    check(status == 400 and json.loads(body)["error"] == "invalid-argument",
          "words=0 is 400 invalid-argument", (status, body))


def read_generation(base, words, seed):
    with urllib.request.urlopen("%sgenerate?words=%d&seed=%d" % (base, words, seed),
                                timeout=30) as response:
        return response.headers["Content-Type"], list(events(response))


def test_generate(base):
    content_type, received = read_generation(base, 30, 7)
    tokens = [data for event, data in received if event == "message"]
    check(content_type == "text/event-stream", "the stream is text/event-stream", content_type)
    check(len("".join(tokens).split()) == 30 and received[-1] == ("end", {}),
          "30 words as token events, then an end event", received)
    check(read_generation(base, 30, 7)[1] == received, "the same seed, the same events")


# 100,000 words are about 1.5 MB of events: far more than the sockets on
# the way buffer, so an unread stream cannot end on its own meanwhile.
LONG = "generate?words=100000&seed=%d"


def test_responsive_and_cancel(base):
    cancels = markov_status()["cancels"]
    response = urllib.request.urlopen(base + LONG % 1, timeout=30)
    stream = events(response)
    first = next(stream)
    start = time.monotonic()
    status, _, body = get(base + "add?a=1&b=2")
    check(first[0] == "message" and status == 200 and json.loads(body) == {"result": 3},
          "answers /add while a stream is open and unread (%.0f ms)"
          % ((time.monotonic() - start) * 1000), (first, status, body))
    response.close()   # the HTTP client goes away half-way
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = markov_status()
        if now["in_flight"] == 0 and now["cancels"] > cancels:
            break
        time.sleep(0.05)
    check(now["in_flight"] == 0 and now["cancels"] == cancels + 1,
          "a client that goes away cancels its call", now)


def test_deadline(base):
    """A slow reader: the worker stops a credit window ahead, the stream's
    deadline passes, and the tokens already sent end with an error event."""
    with urllib.request.urlopen(base + LONG % 2, timeout=30) as response:
        stream = events(response)
        next(stream)
        time.sleep(1.0)
        received = list(stream)
    last = received[-1] if received else None
    check(last is not None and last[0] == "error" and last[1]["error"] == "timeout"
          and len(received) < 100000, "a stream past its deadline ends with an error event",
          received[-3:])


def main():
    service, base = start_service()
    slow_service, slow_base = start_service("--timeout=300")
    try:
        test_add(base)
        test_generate(base)
        test_responsive_and_cancel(base)
        test_deadline(slow_base)
    finally:
        for process in (service, slow_service):
            process.terminate()
            process.wait(timeout=10)
    check(service.returncode == 0 and slow_service.returncode == 0,
          "the service exits 0 on SIGTERM", (service.returncode, slow_service.returncode))
    print("1..%d" % n)
    return 1 if failed else 0


sys.exit(main())
