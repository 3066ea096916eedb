#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpus: valid frames of every type (docs/protocol.md),
so the fuzzers start from inputs that reach deep into the decoder."""
import os
import struct
import sys


def frame(ftype, fid, body=b"", attachments=(), flags=0, aux=0):
    table = b"".join(struct.pack(">I", len(a)) for a in attachments)
    data = b"".join(attachments)
    alen = len(table) + len(data)
    header = struct.pack(">4sBBHQIIIHH", b"DIRT", 1, ftype, flags, fid, aux,
                         len(body), alen, len(attachments), 0)
    return header + body + table + data


SEEDS = {
    "request": frame(2, 7, b'{"app":"echo:DirtyEchoApp","action":"add","args":[1,2.5,"x"],"kwargs":{"n":3}}', aux=5000),
    "request-bytes": frame(2, 8, b'{"app":"a:B","action":"echo","args":[{"$bytes":0},{"$bytes":1}]}', [b"abc", b"\x00\xff"]),
    "request-stream": frame(2, 9, b'{"app":"m:M","action":"gen","window":4}', flags=1),
    "response": frame(3, 7, b'{"result":{"nested":[true,null,{"$bytes":0}]}}', [b"\x01\x02\x03"]),
    # integers at and past 64 bits: the strict parser reads the latter as doubles
    "response-numbers": frame(3, 7, b'{"result":[9223372036854775807,-9223372036854775808,18446744073709551615,-9223372036854775809,1180591620717411303424,1.5e300]}'),
    "error": frame(6, 7, b'{"code":"app-error","message":"boom","app":"a:B","action":"x","detail":"#0 f ()","worker_pid":42}'),
    "hello": frame(1, 0, b'{"role":"worker","pid":1,"worker_id":1,"apps":{"a:B":{"state":"ready"},"c:D":{"state":"failed","error":"e","retry_ms":1000}}}'),
    "stream": frame(4, 5, b'{"data":"tok "}') + frame(4, 5, b'{"data":{"$bytes":0}}', [b"raw"]) + frame(5, 5),
    "control": frame(7, 3) + frame(8, 3, aux=16) + frame(9, 0) + frame(10, 1, b"{}") + frame(11, 2, b'{"verb":"workers","delta":1}'),
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for name, data in SEEDS.items():
        with open(os.path.join(root, "frame", name), "wb") as f:
            f.write(data)
        # the connection fuzzer's first byte picks the write size
        for step in (1, 7, 63):
            with open(os.path.join(root, "connection", f"{name}-{step}"), "wb") as f:
                f.write(bytes([step - 1]) + data)


if __name__ == "__main__":
    main()
