# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python apps that cannot serve, for tests/test-python-apps.c."""

import dirty


class BrokenSetup(dirty.App):
    """Its setup() fails: the worker retries it with backoff and callers
    get no-worker with the reason."""

    def setup(self):
        raise RuntimeError("the model file is missing")

    @dirty.action
    def ping(self):
        return "pong"


class NotAnApp:
    """Not a Dirty.App: the worker reports the app as unavailable."""
