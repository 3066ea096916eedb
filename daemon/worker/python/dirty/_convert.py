# SPDX-License-Identifier: LGPL-2.1-or-later
"""Between a DirtyCall's JSON and Python values.

Arguments arrive as JSON with ``{"$bytes": INDEX}`` references to the
request's raw attachments; they become Python values with ``bytes`` in
place of the references. Results go back the other way: ``bytes`` nested
in a result become attachments of the reply (dirty_call_attach()), never
base64.
"""

import json
import re

from gi.repository import GLib, Json


def _is_bytes_ref(value):
    return (isinstance(value, dict) and len(value) == 1 and
            isinstance(value.get("$bytes"), int) and
            not isinstance(value.get("$bytes"), bool))


def _resolve(value, attachments):
    if _is_bytes_ref(value):
        index = value["$bytes"]
        if not 0 <= index < len(attachments):
            raise ValueError("bytes reference %d has no attachment" % index)
        return attachments[index]
    if isinstance(value, list):
        return [_resolve(item, attachments) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, attachments) for key, item in value.items()}
    return value


def _node_to_python(node):
    if node is None:
        return None
    return json.loads(Json.to_string(node, False))


def call_arguments(call):
    """The call's positional and keyword arguments as Python values."""
    attachments = [bytes(b.get_data() or b"") for b in (call.get_attachments() or [])]
    args = [_node_to_python(call.get_arg(i)) for i in range(call.get_n_args())]
    kwargs = {}
    members = call.get_kwargs()
    if members is not None:
        for name in members.get_members():
            kwargs[name] = _node_to_python(members.get_member(name))
    return _resolve(args, attachments), _resolve(kwargs, attachments)


def _is_raw(value):
    return isinstance(value, (bytes, bytearray, memoryview))


_INT64 = range(-2 ** 63, 2 ** 63)
# an integer literal of 19 digits or more may not fit 64 bits
_LONG_DIGITS = re.compile(r"\d{19}")
# "\u0000" after an even number of backslashes: U+0000 in a string
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# a JSON string (skipped whole: digits in it are text) or a JSON number
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?')


def _fit_int(match):
    """A number token beyond 64 bits as the nearest float, as the protocol
    reads such a number: json-glib's parser, which makes the JsonNode,
    would wrap it around instead (2**64 - 1 would be -1)."""
    text = match.group(0)
    if text[0] == '"' or not text.lstrip("-").isdigit() or int(text) in _INT64:
        return text
    return repr(float(int(text)))


def _encoder(call):
    """A JSON encoder for results: bytes become attachments of @call,
    objects with tolist() (numpy arrays and scalars) their tolist()."""

    def default(value):
        if _is_raw(value):
            if call is None:
                raise TypeError("bytes cannot be nested in a stream chunk; "
                                "yield them as a chunk of their own")
            ref = call.attach(GLib.Bytes.new(bytes(value)))
            return _node_to_python(ref)
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, (set, frozenset, tuple)):
            return list(value)
        raise TypeError("a %s cannot be sent as JSON" % type(value).__name__)

    return json.JSONEncoder(default=default, allow_nan=False,
                            ensure_ascii=False, separators=(",", ":"))


def to_node(value, call=None):
    """@value as a JsonNode; with @call, nested bytes become attachments."""
    text = _encoder(call).encode(value)
    # a JsonNode's string ends at a NUL: json-glib would cut it short
    if "\\u0000" in text and _NUL.search(text):
        raise ValueError("a string holds U+0000 (NUL), which cannot be sent as JSON "
                         "here; send bytes instead")
    # rare, and only then tokenized: a long run of digits, maybe in a string
    if _LONG_DIGITS.search(text):
        text = _TOKEN.sub(_fit_int, text)
    return Json.from_string(text)


def is_raw(value):
    return _is_raw(value)


def to_glib_bytes(value):
    return GLib.Bytes.new(bytes(value))
