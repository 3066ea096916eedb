# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python stack of a running call, for the worker's BACKTRACE.

When a call's deadline passes, the C worker asks the app to describe the
call (Dirty.App.describe_call) on a helper thread: the C stack of a
Python action shows only the interpreter. We know which thread runs each
``def`` action and which asyncio task each ``async def`` one, and format
that thread's current frames, or the await chain of that task, like a
traceback. Taking the GIL for it may wait (a C extension can hold it);
the worker bounds that wait, not us.
"""

import asyncio
import os
import sys
import threading
import traceback

_lock = threading.Lock()
# Dirty.Call -> the thread ident running it (a def action) or its
# asyncio.Task (an async def action)
_running = {}

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def track(call, where):
    with _lock:
        _running[call] = where


def untrack(call):
    with _lock:
        _running.pop(call, None)


def _is_ours(entry):
    return entry.filename.startswith(_HERE)


def _app_frames(summary):
    """From the first frame of the app on: whatever calls this module
    (the asyncio loop's own frames) and this module's dispatching frames
    say nothing to the app's author. Frames of this module further in
    (a generator waiting for credit) stay."""
    entries = list(summary)
    start = next((i for i, e in enumerate(entries) if _is_ours(e)), None)
    if start is None:
        return entries
    while start < len(entries) and _is_ours(entries[start]):
        start += 1
    return entries[start:] or entries


def _format(header, summary):
    return header + "\n" + "".join(traceback.format_list(_app_frames(summary)))


def _thread_stack(ident, what):
    frame = sys._current_frames().get(ident)
    if frame is None:
        return None
    return _format("Python stack of the call (%s, most recent call last):" % what,
                   traceback.extract_stack(frame))


def _await_chain(coroutine):
    """The frames of a suspended coroutine and of what it awaits, outermost
    first (a suspended frame's f_back is None: the chain is in cr_await)."""
    obj = coroutine
    while obj is not None:
        frame = (getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
                 or getattr(obj, "ag_frame", None))
        if frame is None:
            return
        yield frame, frame.f_lineno
        obj = (getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
               or getattr(obj, "ag_await", None))


def _task_stack(task, loop_thread):
    loop = task.get_loop()
    if asyncio.current_task(loop) is task and loop_thread is not None:
        # it runs, so it blocks the asyncio loop: that thread's frames
        return _thread_stack(loop_thread, "its asyncio task runs, blocking the loop")
    summary = traceback.StackSummary.extract(_await_chain(task.get_coro()))
    return _format("Python stack of the call (its asyncio task awaits, most recent call last):",
                   summary)


def describe(call, loop_thread):
    """The call's Python stack, or None when it runs no Python code now."""
    with _lock:
        where = _running.get(call)
    if where is None:
        return None
    if isinstance(where, asyncio.Task):
        return _task_stack(where, loop_thread)
    return _thread_stack(where, "its thread")
