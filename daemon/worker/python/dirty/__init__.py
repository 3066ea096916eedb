# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write dirty-arbiter apps in Python.

An app is a subclass of :class:`App` (itself a subclass of the
introspected ``Dirty.App``) whose actions are methods marked with
:func:`action`. The arbiter runs it in ``dirty-python-worker`` when its
config names it ``python:package.module:ClassName``; the wire protocol is
the C library's (libdirty-glib), reached through GObject introspection.

What a method is decides how it runs and what the caller gets:

- a plain function runs on one of the worker's ``dirty_threads`` threads;
  its return value is the result;
- a generator function runs there too and streams: each ``yield`` is a
  chunk, sent when the reader has credit (it blocks until then);
- a coroutine function (``async def``) runs on the worker's asyncio loop;
  its return value is the result;
- an async generator function streams from the asyncio loop, resumed once
  each chunk has credit.

Arguments arrive decoded from JSON, bytes arguments as ``bytes``. Results
and chunks may be any JSON value (dicts, lists, str, int, float, bool,
None), ``bytes`` (a top-level result or chunk is sent raw; bytes nested in
a result become attachments) and anything with a ``tolist()`` method
(numpy arrays and scalars). An exception ends the call with the error
``app-error``, its message ``Type: message`` and its detail the Python
traceback; :class:`InvalidArgument` gives ``invalid-argument`` instead,
and so do arguments that do not fit the method's parameters (too few,
too many, an unknown keyword), checked before it runs.
When the caller cancels (or the deadline passes) a generator is closed
(``GeneratorExit`` at its ``yield``) and an async action's task is
cancelled (``asyncio.CancelledError`` at its ``await``). At the deadline,
before that, the worker takes the call's Python stack (its thread's
frames, or its task's await chain) for the timeout error's detail.
"""

import contextvars
import inspect
import os
import threading
import traceback

import gi

gi.require_version("Dirty", "1")
gi.require_version("Json", "1.0")
from gi.repository import Dirty, Gio, GLib  # noqa: E402

from . import _async, _convert, _stack  # noqa: E402

__all__ = ["App", "action", "current_call", "InvalidArgument"]

_current_call = contextvars.ContextVar("dirty_current_call", default=None)


class InvalidArgument(ValueError):
    """Raise it for bad arguments: the caller gets ``invalid-argument``."""


class _ArgumentsDoNotFit(InvalidArgument):
    """The call's arguments do not fit the action's parameters: the
    caller's mistake, which a traceback of this module would not explain."""


def current_call():
    """The ``Dirty.Call`` being served in this thread or task: its
    cancellable (``get_cancellable()``), deadline, raw attachments."""
    return _current_call.get()


def action(func=None, *, name=None):
    """Marks a method of an :class:`App` as an action, callable as
    ``name`` (the method's name by default; names starting with ``_`` are
    never callable)."""

    def mark(f):
        f._dirty_action = name or f.__name__
        return f

    return mark(func) if func is not None else mark


def _app_error(exc):
    message = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    if isinstance(exc, _ArgumentsDoNotFit):  # says it all, in the caller's terms
        message = str(exc)
    code = Dirty.Error.INVALID_ARGUMENT if isinstance(exc, InvalidArgument) else Dirty.Error.APP
    return GLib.Error.new_literal(Dirty.error_quark(), message, code)


_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _format_traceback(exc):
    """The traceback from the app's own code on: the frames of this module
    that called it say nothing to the app's author."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_HERE):
        tb = tb.tb_next
    if tb is None:  # it failed in here (a result that is not JSON)
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")


def _fail(call, exc):
    """Completes @call with @exc: a cancellation as it is, any other
    exception with its traceback as the detail, as an app error unless it
    is a GLib.Error."""
    if isinstance(exc, GLib.Error) and exc.matches(Gio.io_error_quark(),
                                                   Gio.IOErrorEnum.CANCELLED):
        call.return_error(exc)  # the worker's reply says why: cancel, deadline
        return
    if not isinstance(exc, _ArgumentsDoNotFit):
        call.set_detail(_format_traceback(exc))
    # a GLib.Error keeps its domain and code (a DIRTY_ERROR one its meaning)
    call.return_error(exc if isinstance(exc, GLib.Error) else _app_error(exc))


def _return(call, value):
    if _convert.is_raw(value):
        call.return_bytes(_convert.to_glib_bytes(value))
    else:
        call.return_value(_convert.to_node(value, call))


def _send(call, value):
    """One chunk from a worker thread: blocks until it has credit."""
    cancellable = call.get_cancellable()
    if _convert.is_raw(value):
        call.send_bytes_chunk(_convert.to_glib_bytes(value), cancellable)
    else:
        call.send_chunk(_convert.to_node(value), cancellable)


_signatures = {}


def _check_arguments(call, method, args, kwargs):
    """Too few or too many arguments, or an unknown keyword, is the
    caller's invalid-argument, not an app-error with a TypeError raised
    here: checked against the signature before the action runs (a
    TypeError from inside the action stays the app's)."""
    function = getattr(method, "__func__", method)
    signature = _signatures.get(function)
    if signature is None:
        try:
            signature = _signatures[function] = inspect.signature(method)
        except (TypeError, ValueError):  # no signature to check against
            return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise _ArgumentsDoNotFit("%s(): %s" % (call.get_action(), exc)) from None


def _run_sync(call, method):
    args, kwargs = _convert.call_arguments(call)
    _check_arguments(call, method, args, kwargs)
    return method(*args, **kwargs)


def _serve_function(call, method):
    try:
        _return(call, _run_sync(call, method))
    except Exception as exc:  # noqa: BLE001 -- every failure is the caller's error
        _fail(call, exc)


def _serve_generator(call, method):
    try:
        generator = _run_sync(call, method)
    except Exception as exc:  # noqa: BLE001
        _fail(call, exc)
        return
    try:
        for chunk in generator:
            _send(call, chunk)
        call.end_stream()
    except Exception as exc:  # noqa: BLE001
        _fail(call, exc)
    finally:
        # cancelled or failed: GeneratorExit at its yield, its finally runs
        generator.close()


async def _serve_coroutine(call, method):
    _current_call.set(call)  # this task's own context
    try:
        _return(call, await _run_sync(call, method))
    except Exception as exc:  # noqa: BLE001
        _fail(call, exc)


async def _serve_async_generator(call, method):
    _current_call.set(call)  # this task's own context
    try:
        generator = _run_sync(call, method)
    except Exception as exc:  # noqa: BLE001
        _fail(call, exc)
        return
    try:
        async for chunk in generator:
            raw = _convert.to_glib_bytes(chunk) if _convert.is_raw(chunk) else None
            await _async.send_chunk(call, None if raw is not None else _convert.to_node(chunk),
                                    raw)
        call.end_stream()
    except Exception as exc:  # noqa: BLE001
        _fail(call, exc)
    finally:
        await generator.aclose()


def _kind(method):
    if inspect.isasyncgenfunction(method):
        return Dirty.ActionFlags.ASYNC | Dirty.ActionFlags.STREAM
    if inspect.iscoroutinefunction(method):
        return Dirty.ActionFlags.ASYNC
    if inspect.isgeneratorfunction(method):
        return Dirty.ActionFlags.SYNC | Dirty.ActionFlags.STREAM
    return Dirty.ActionFlags.SYNC


class App(Dirty.App):
    """Base class of Python apps. Override :meth:`setup` to load what the
    app needs once (a model, a table) and :meth:`teardown` to release it;
    mark actions with :func:`action`."""

    def __init__(self, **properties):
        super().__init__(**properties)
        for attribute in dir(type(self)):
            function = getattr(type(self), attribute, None)
            name = getattr(function, "_dirty_action", None)
            if name is None:
                continue
            method = getattr(self, attribute)
            self.add_action(name, _kind(function), self._dispatch, method)

    def setup(self):
        """Runs once per worker before any call, on a helper thread (it may
        block). Raise to fail: the worker retries with backoff."""

    def teardown(self):
        """Runs once at worker shutdown, after every call has ended."""

    def do_init(self, cancellable):
        try:
            self.setup()
        except GLib.Error:
            raise
        except Exception as exc:  # noqa: BLE001 -- reported, then retried
            traceback.print_exc()
            raise GLib.Error.new_literal(Dirty.error_quark(),
                                         "%s: %s" % (type(exc).__name__, exc),
                                         Dirty.Error.FAILED) from exc
        return True

    def do_describe_call(self, call):
        """The call's Python stack: the worker asks for it when the call's
        deadline passes, for the timeout error's detail."""
        return _stack.describe(call, _async.loop_thread())

    def do_close(self):
        try:
            self.teardown()
        finally:
            _async.stop()

    @staticmethod
    def _dispatch(app, call, method):
        token = _current_call.set(call)
        try:
            flags = _kind(method.__func__)
            if flags & Dirty.ActionFlags.ASYNC:
                serve = (_serve_async_generator if flags & Dirty.ActionFlags.STREAM
                         else _serve_coroutine)
                _async.run(call, lambda: serve(call, method), lambda error: _fail(call, error))
            else:
                _stack.track(call, threading.get_ident())
                try:
                    if flags & Dirty.ActionFlags.STREAM:
                        _serve_generator(call, method)
                    else:
                        _serve_function(call, method)
                finally:
                    _stack.untrack(call)
        finally:
            _current_call.reset(token)
