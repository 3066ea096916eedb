#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libdirty-glib from Python through introspection (python3-gi), TAP,
against the real daemon that with-daemon.py started (its socket in
$DIRTY_ARBITER_SOCKET, the default of Dirty.Client): execute, sync and
async on a GLib.MainLoop; a stream chunk by chunk, sync and async, and as
a Gio.InputStream; raw bytes both ways; and errors as GLib.Error in the
DirtyError domain with the right code."""
import sys

import gi

gi.require_version("Dirty", "1")
gi.require_version("Json", "1.0")
from gi.repository import Dirty, Gio, GLib, Json  # noqa: E402

ECHO = "echo:DirtyEchoApp"
MARKOV = "markov:DirtyMarkovApp"
tests = []


def test(function):
    tests.append(function)
    return function


def numbers(*values):
    args = Json.Array.new()
    for value in values:
        args.add_int_element(value)
    return args


def markov_kwargs(words, seed):
    kwargs = Json.Object.new()
    kwargs.set_int_member("words", words)
    kwargs.set_int_member("seed", seed)
    return kwargs


def run_on_loop(start):
    """Calls start(done) on a fresh main loop; done(value) ends the loop."""
    loop = GLib.MainLoop.new(None, False)
    result = {}

    def done(value):
        result["value"] = value
        loop.quit()

    start(done)
    GLib.timeout_add_seconds(30, lambda: (loop.quit(), False)[1])
    loop.run()
    assert "value" in result, "the main loop timed out"
    return result["value"]


def expect_error(code, call):
    """call() must raise a GLib.Error in the DirtyError domain with code."""
    try:
        call()
    except GLib.Error as error:
        assert error.domain == "DirtyError", error.domain
        assert error.matches(Dirty.error_quark(), code), (error.code, error.message)
        return error
    raise AssertionError("no error, expected %s" % code.value_nick)


def read_all_chunks(stream):
    tokens = []
    while True:
        chunk = stream.next_chunk_sync(None)
        if chunk is None:
            return tokens
        tokens.append(chunk.get_string())


@test
def execute_sync(client):
    result = client.execute_sync(ECHO, "add", numbers(20, 22), None, None)
    assert result.get_int() == 42, result.get_value()


@test
def result_as_json_text(client):
    args = Json.Array.new()
    args.add_double_element(1e20)
    args.add_double_element(0.1)
    result = client.execute_sync(ECHO, "echo", args, None, None)
    text = Dirty.json_to_string(result, False)
    assert text == "[1e+20,0.1]", text


@test
def execute_async_on_main_loop(client):
    def start(done):
        client.execute(ECHO, "add", numbers(40, 2), None, None,
                       lambda source, res: done(source.execute_finish(res)))
    assert run_on_loop(start).get_int() == 42


@test
def stream_chunk_by_chunk(client):
    stream = client.stream_sync(MARKOV, "generate", None, markov_kwargs(30, 7), None)
    tokens = read_all_chunks(stream)
    assert len("".join(tokens).split()) == 30, tokens
    assert read_all_chunks(client.stream_sync(MARKOV, "generate", None,
                                              markov_kwargs(30, 7), None)) == tokens


@test
def stream_chunk_by_chunk_async(client):
    expected = read_all_chunks(client.stream_sync(MARKOV, "generate", None,
                                                  markov_kwargs(20, 3), None))

    def start(done):
        tokens = []

        def on_chunk(stream, res):
            try:
                chunk = stream.next_chunk_finish(res)
            except GLib.Error as error:
                done(error)
                return
            if chunk is None:
                done(tokens)
                return
            tokens.append(chunk.get_string())
            stream.next_chunk(None, on_chunk)

        def on_stream(source, res):
            source.stream_finish(res).next_chunk(None, on_chunk)

        client.stream(MARKOV, "generate", None, markov_kwargs(20, 3), None, on_stream)
    assert run_on_loop(start) == expected


@test
def stream_as_input_stream(client):
    expected = "".join(read_all_chunks(client.stream_sync(MARKOV, "generate", None,
                                                          markov_kwargs(40, 11), None)))
    stream = client.stream_sync(MARKOV, "generate", None, markov_kwargs(40, 11), None)
    assert isinstance(stream, Gio.InputStream)
    data = b""
    while True:
        block = stream.read_bytes(7, None)   # small reads: chunks span them
        if block.get_size() == 0:
            break
        data += block.get_data()
    stream.close(None)
    assert data.decode("utf-8") == expected, (data, expected)


@test
def input_stream_read_bytes_async(client):
    expected = "".join(read_all_chunks(client.stream_sync(MARKOV, "generate", None,
                                                          markov_kwargs(25, 5), None)))
    stream = client.stream_sync(MARKOV, "generate", None, markov_kwargs(25, 5), None)

    def start(done):
        data = []

        def on_read(source, res):
            block = source.read_bytes_finish(res)
            if block.get_size() == 0:
                done(b"".join(data))
                return
            data.append(block.get_data())
            source.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, None, on_read)

        stream.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, None, on_read)
    assert run_on_loop(start).decode("utf-8") == expected


@test
def bytes_both_ways(client):
    payload = bytes(range(256)) * 4
    request = Dirty.Request.new(ECHO, "echo_bytes")
    request.add_bytes(GLib.Bytes.new(payload))
    reply = client.send_sync(request, None)
    assert reply.get_bytes().get_data() == payload


@test
def stream_of_bytes(client):
    kwargs = Json.Object.new()
    kwargs.set_string_member("kind", "bytes")
    kwargs.set_int_member("n", 3)
    kwargs.set_int_member("size", 5)
    stream = client.stream_sync("streamapp:DirtyStreamTestApp", "count", None, kwargs, None)
    chunks = []
    while (chunk := stream.next_chunk_sync(None)) is not None:
        chunks.append(stream.lookup_bytes(chunk).get_data())
    assert chunks == [bytes([i]) * 5 for i in range(3)], chunks


@test
def error_timeout(client):
    request = Dirty.Request.new("slow:DirtySlowApp", "sleep")
    request.add_arg(Json.Node.alloc().init_int(10))
    request.set_timeout(200)
    expect_error(Dirty.Error.TIMEOUT, lambda: client.send_sync(request, None))


@test
def error_app_not_found(client):
    error = expect_error(Dirty.Error.APP_NOT_FOUND,
                         lambda: client.execute_sync("nosuch:App", "add", numbers(1), None, None))
    assert "nosuch:App" in error.message, error.message


@test
def error_app_not_found_async(client):
    def start(done):
        def finish(source, res):
            try:
                done(source.execute_finish(res))
            except GLib.Error as error:
                done(error)
        client.execute("nosuch:App", "add", None, None, None, finish)
    error = run_on_loop(start)
    assert isinstance(error, GLib.Error), error
    assert error.matches(Dirty.error_quark(), Dirty.Error.APP_NOT_FOUND), error.message


@test
def error_app(client):
    kwargs = Json.Object.new()
    kwargs.set_string_member("message", "no such file")
    error = expect_error(Dirty.Error.APP,
                         lambda: client.execute_sync(ECHO, "fail", None, kwargs, None))
    assert "no such file" in error.message, error.message


@test
def error_mid_stream(client):
    kwargs = Json.Object.new()
    kwargs.set_int_member("n", 10)
    kwargs.set_int_member("error_after", 3)
    stream = client.stream_sync("streamapp:DirtyStreamTestApp", "count", None, kwargs, None)
    received = [stream.next_chunk_sync(None).get_int() for _ in range(3)]
    assert received == [0, 1, 2], received
    expect_error(Dirty.Error.APP, lambda: stream.next_chunk_sync(None))


def main():
    client = Dirty.Client.new_sync(None, None)
    print("1..%d" % len(tests))
    failed = 0
    for number, function in enumerate(tests, 1):
        try:
            function(client)
            print("ok %d - %s" % (number, function.__name__))
        except Exception as error:   # any failure is this test's, the next ones still run
            failed += 1
            print("not ok %d - %s" % (number, function.__name__))
            print("%s: %r" % (function.__name__, error), file=sys.stderr)
    return 1 if failed else 0


sys.exit(main())
