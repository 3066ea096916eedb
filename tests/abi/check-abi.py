#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libdirty-glib's ABI, TAP: the dynamic symbols the built library
defines (`nm -D --defined-only`) are exactly the ones listed in
client/libdirty-glib.symbols, one a line ("T dirty_client_new", the
letter is nm's symbol type). A symbol that appears or disappears, or
changes type, without the list being updated fails, naming it.

Usage: check-abi.py LIBRARY SYMBOLS_FILE [--update]
--update rewrites SYMBOLS_FILE from the library (after a deliberate
change: review the diff, it is the ABI change you are making)."""
import os
import subprocess
import sys

HEADER = ("# libdirty-glib's exported symbols (nm -D --defined-only), sorted.\n"
          "# Checked by the `abi` test; regenerate after a deliberate API change with\n"
          "#   tests/abi/check-abi.py build/client/libdirty-glib-1.so "
          "client/libdirty-glib.symbols --update\n")


def exported(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    symbols = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3:
            # strip a symbol version (name@@VER), should one ever be added
            symbols.add("%s %s" % (fields[1], fields[2].split("@")[0]))
    return symbols


def listed(path):
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f
                if line.strip() and not line.startswith("#")}


def main():
    library, symbols_file = sys.argv[1:3]
    actual = exported(library)
    if "--update" in sys.argv[3:]:
        with open(symbols_file, "w", encoding="utf-8") as f:
            f.write(HEADER)
            f.writelines(s + "\n" for s in sorted(actual, key=lambda s: s.split()[1]))
        print("wrote %d symbols to %s" % (len(actual), symbols_file))
        return 0

    expected = listed(symbols_file)
    added = sorted(actual - expected)
    removed = sorted(expected - actual)
    print("1..3")
    print("%s 1 - %d symbols exported" % ("ok" if actual else "not ok", len(actual)))
    print("%s 2 - no symbol exported that the list lacks" % ("not ok" if added else "ok"))
    for s in added:
        print("# new: %s" % s)
        print("abi: exported but not listed: %s" % s, file=sys.stderr)
    print("%s 3 - every listed symbol exported" % ("not ok" if removed else "ok"))
    for s in removed:
        print("# gone: %s" % s)
        print("abi: listed but not exported: %s" % s, file=sys.stderr)
    if added or removed:
        print("abi: the library's ABI changed. If that is deliberate (a new public function,\n"
              "documented and annotated; removing one breaks every program built against\n"
              "libdirty-glib-1.so.0), update the list and commit it with the change:\n"
              "  %s %s %s --update" % (os.path.abspath(sys.argv[0]), os.path.abspath(library),
                                       os.path.abspath(symbols_file)), file=sys.stderr)
        return 1
    return 0


sys.exit(main())
