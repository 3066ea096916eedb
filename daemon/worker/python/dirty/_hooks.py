# SPDX-License-Identifier: LGPL-2.1-or-later
"""The worker-side hooks of the arbiter's hooks_module (dirty-hooks.h), for
dirty-python-worker: the C module is opened with ctypes, as dirty-worker
opens it with dlopen(), and each hook gets the facts as a GVariant a{sv}."""

import ctypes
import os

from gi.repository import GLib

_glib = ctypes.CDLL("libglib-2.0.so.0")
_glib.g_variant_parse.restype = ctypes.c_void_p
_glib.g_variant_parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                  ctypes.c_void_p, ctypes.c_void_p]
_glib.g_variant_unref.argtypes = [ctypes.c_void_p]

_WORKER_HOOKS = ("dirty_post_fork", "dirty_worker_init")


class Hooks:
    """The hooks that a module exports; OSError if it cannot be loaded."""

    def __init__(self, path):
        library = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        self.functions = {}
        for name in _WORKER_HOOKS:
            try:
                function = getattr(library, name)
            except AttributeError:
                continue
            function.argtypes = [ctypes.c_void_p]
            function.restype = None
            self.functions[name] = function
        self.library = library  # never unloaded, as in dirty-worker

    def call(self, name, facts):
        """Calls hook @name, if the module has it, with @facts (a{sv})."""
        function = self.functions.get(name)
        if function is None:
            return
        # the same value, rebuilt in GLib's own memory for the C side
        text = facts.print_(True).encode()
        pointer = _glib.g_variant_parse(None, text, None, None, None)
        if not pointer:
            raise ValueError("cannot pass the facts to hook %s" % name)
        try:
            function(pointer)
        finally:
            _glib.g_variant_unref(pointer)


def worker_facts(worker_id, apps):
    """The facts of the worker-side hooks, as dirty-worker gives them."""
    return GLib.Variant("a{sv}", {
        "pid": GLib.Variant("x", os.getpid()),
        "arbiter_pid": GLib.Variant("x", os.getppid()),
        "worker_id": GLib.Variant("u", worker_id),
        "apps": GLib.Variant("as", list(apps)),
    })
