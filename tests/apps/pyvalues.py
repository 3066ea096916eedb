# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python results at the edges of JSON, for tests/test-python-apps.c."""

import numpy as np

import dirty


class Values(dirty.App):

    @dirty.action
    def big_integers(self):
        """Integers beyond 64 bits travel as the nearest float; json-glib's
        parser, which makes the JsonNode, wrapped them around (2**64 - 1
        arrived as -1). Digits in a string stay text."""
        return [2 ** 64 - 1, -2 ** 63, 2 ** 63 - 1, {"k": 2 ** 70}, "18446744073709551615",
                np.array([2 ** 64 - 1, 5], dtype=np.uint64)]

    @dirty.action
    def type_error(self, value):
        """A TypeError of the app's own, not of the call's arguments: an
        app-error with its traceback."""
        return len(value)

    @dirty.action
    def nul_string(self, literal=False):
        """A NUL in a string fails the call (a JsonNode's string ends
        there: json-glib cut it short); a backslash and "u0000" are text."""
        return "a\\u0000b" if literal else "a\x00b"
