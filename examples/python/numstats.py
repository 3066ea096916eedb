# SPDX-License-Identifier: LGPL-2.1-or-later
"""numstats: numeric work with numpy, as a dirty-arbiter app in Python.

    dirty_apps=python:numstats:NumStats

Numbers come as JSON lists or as raw bytes (little-endian float64, e.g.
``dirtyctl call ... @data.f64`` or numpy's ``tobytes()``), never base64.
"""

import asyncio
import threading

import numpy as np

import dirty


def as_array(data):
    """A 1-D float64 array from a JSON list or raw little-endian float64."""
    if isinstance(data, (bytes, bytearray)):
        if len(data) % 8 != 0:
            raise dirty.InvalidArgument(
                "%d bytes are not a whole number of float64 values" % len(data))
        return np.frombuffer(data, dtype="<f8")
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise dirty.InvalidArgument("not a list of numbers: %s" % exc) from exc
    if array.ndim != 1:
        raise dirty.InvalidArgument("expected a flat list of numbers")
    return array


def as_matrix(data, name):
    try:
        matrix = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise dirty.InvalidArgument("%s is not a matrix of numbers: %s" % (name, exc)) from exc
    if matrix.ndim != 2:
        raise dirty.InvalidArgument("%s must be a list of rows" % name)
    return matrix


def summary(array):
    if array.size == 0:
        raise dirty.InvalidArgument("no numbers")
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "median": float(np.median(array)),
        "max": float(array.max()),
    }


class NumStats(dirty.App):
    """Statistics, linear algebra and streamed partial results."""

    def setup(self):
        # once per worker, before any call: what a real app would load
        self.lock = threading.Lock()
        self.closed_early = {}

    def _closed_early(self, action):
        with self.lock:
            self.closed_early[action] = self.closed_early.get(action, 0) + 1

    @dirty.action
    def describe(self, data):
        """Summary statistics of a list of numbers or of float64 bytes."""
        return summary(as_array(data))

    @dirty.action
    def solve(self, a, b):
        """x with a·x = b; a singular matrix raises numpy's LinAlgError."""
        return np.linalg.solve(as_matrix(a, "a"), as_array(b))

    @dirty.action
    def matmul(self, a, b):
        """The product of two matrices given as lists of rows."""
        return as_matrix(a, "a") @ as_matrix(b, "b")

    @dirty.action
    def normalize(self, data):
        """(x - mean) / std as raw float64 bytes (an attachment of the
        reply, not base64), with the mean and std it took out."""
        array = as_array(data)
        mean, std = array.mean(), array.std()
        if std == 0:
            raise dirty.InvalidArgument("the numbers do not vary")
        return {"mean": mean, "std": std,
                "data": ((array - mean) / std).astype("<f8").tobytes()}

    @dirty.action
    def running(self, data, chunk=1000):
        """A sync generator: the summary of the first chunk, the first two
        chunks, ... as each is computed (a stream)."""
        array = as_array(data)
        if chunk < 1:
            raise dirty.InvalidArgument("chunk must be at least 1")
        try:
            for end in range(chunk, array.size + chunk, chunk):
                yield summary(array[:end])
        except GeneratorExit:
            # the caller went away: its stream was cancelled
            self._closed_early("running")
            raise

    @dirty.action
    async def walk(self, steps=10, seed=0, delay_ms=0):
        """An async generator: a seeded random walk, one position per
        chunk, delay_ms apart."""
        rng = np.random.default_rng(seed)
        position = 0.0
        try:
            for step in range(steps):
                position += rng.standard_normal()
                yield {"step": step, "position": round(position, 6)}
                if delay_ms > 0:
                    await asyncio.sleep(delay_ms / 1000)
        except (GeneratorExit, asyncio.CancelledError):
            self._closed_early("walk")
            raise

    @dirty.action
    async def eigenvalues(self, a):
        """A coroutine: the eigenvalues of a symmetric matrix, computed off
        the asyncio loop."""
        matrix = as_matrix(a, "a")
        return await asyncio.get_running_loop().run_in_executor(
            None, np.linalg.eigvalsh, matrix)

    @dirty.action
    def closed_early(self):
        """How many streams of each action ended because their caller went
        away (cancelled, timed out)."""
        with self.lock:
            return dict(self.closed_early)
