# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python actions that overrun their deadline, for tests/test-python-apps.c:
the timeout's detail must name the function each is stuck in."""

import asyncio
import ctypes
import ctypes.util

import dirty


def spin_until_cancelled(call):
    """Pure Python, busy: it keeps the GIL but for the interpreter's
    switches."""
    cancellable = call.get_cancellable()
    spins = 0
    while not cancellable.is_cancelled():
        spins += 1
    return spins


async def wait_forever():
    await asyncio.Event().wait()


def hog_the_loop(call):
    """Called from a coroutine, busy: the asyncio loop cannot run."""
    cancellable = call.get_cancellable()
    while not cancellable.is_cancelled():
        pass


def hold_gil_in_c():
    """A C function called with the GIL held (ctypes.PyDLL does not release
    it) that runs for minutes: SHA-512 crypt with the most rounds. No
    Python stack can be taken meanwhile."""
    libcrypt = ctypes.PyDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return libcrypt.crypt(b"stuck", b"$6$rounds=999999999$dirtystuck$")


class Stuck(dirty.App):
    @dirty.action
    def spin(self):
        return spin_until_cancelled(dirty.current_call())

    @dirty.action
    async def wait(self):
        await wait_forever()

    @dirty.action
    async def hog(self):
        hog_the_loop(dirty.current_call())

    @dirty.action
    def hold_gil(self):
        return hold_gil_in_c()

    @dirty.action
    def ping(self):
        return "pong"
