# SPDX-License-Identifier: LGPL-2.1-or-later
"""Coroutines and async generators of async actions.

PyGObject 3.42 (Debian 12) cannot run asyncio on a GLib main loop, so the
worker keeps one asyncio loop on a thread of its own. The C runtime starts
an async action on its main loop; the action's coroutine is handed to the
asyncio thread at once. A chunk goes out with dirty_call_send_chunk_async(),
whose callback (on the GLib main loop) resolves a future of the asyncio
loop: the generator is resumed once its chunk has credit, so it is never
more than the credit window ahead of the reader. Cancelling the call
cancels the task.
"""

import asyncio
import threading

from gi.repository import Gio, GLib, GObject

from . import _stack

_lock = threading.Lock()
_loop = None
_thread_ident = None  # the thread running _loop


def loop():
    """The asyncio loop of this worker, started on first use."""
    global _loop, _thread_ident
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_loop.run_forever,
                                      name="dirty-asyncio", daemon=True)
            thread.start()
            _thread_ident = thread.ident
        return _loop


def loop_thread():
    """The ident of the asyncio loop's thread, None before it starts."""
    with _lock:
        return _thread_ident


def stop():
    """Stops the asyncio loop (at worker shutdown, after every call)."""
    global _loop
    with _lock:
        if _loop is not None:
            _loop.call_soon_threadsafe(_loop.stop)
            _loop = None


def cancelled_error():
    return GLib.Error.new_literal(Gio.io_error_quark(), "Operation was cancelled",
                                  Gio.IOErrorEnum.CANCELLED)


def _resolve_send(call, result, future):
    """On the GLib main loop: the chunk had credit, or failed."""
    try:
        call.send_chunk_finish(result)
        outcome, value = future.set_result, None
    except GLib.Error as error:
        outcome, value = future.set_exception, error

    def settle():
        if not future.done():
            outcome(value)

    future.get_loop().call_soon_threadsafe(settle)


async def send_chunk(call, node, raw):
    """Queues one chunk and waits until it has credit."""
    future = asyncio.get_running_loop().create_future()

    def done(source, result, _data=None):
        _resolve_send(source, result, future)

    if raw is not None:
        call.send_bytes_chunk_async(raw, None, done, None)
    else:
        call.send_chunk_async(node, None, done, None)
    await future


def run(call, coroutine_factory, on_cancel_error):
    """Runs the coroutine coroutine_factory() as an asyncio task that the
    call's cancellable cancels."""
    event_loop = loop()

    async def supervise():
        task = asyncio.current_task()
        _stack.track(call, task)
        cancellable = call.get_cancellable()
        # GObject's connect: Gio.Cancellable.connect is g_cancellable_connect
        handler = GObject.Object.connect(
            cancellable, "cancelled", lambda _c: event_loop.call_soon_threadsafe(task.cancel))
        try:
            # it may have fired before we connected
            if cancellable.is_cancelled():
                raise asyncio.CancelledError()
            await coroutine_factory()
        except asyncio.CancelledError:
            on_cancel_error(cancelled_error())
        finally:
            _stack.untrack(call)
            GObject.Object.disconnect(cancellable, handler)

    asyncio.run_coroutine_threadsafe(supervise(), event_loop)
