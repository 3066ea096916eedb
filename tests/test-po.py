#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Translations, TAP: po/POTFILES.in lists every source file with a
translatable string; every po/LL.po in LINGUAS translates every msgid
(nothing fuzzy or missing, format strings matching); and the built
programs speak German with LANGUAGE=de (the catalogues come from the
build tree through DIRTY_LOCALEDIR; LC_ALL=C.UTF-8 is enough, as glibc
honours LANGUAGE for any locale but "C").

Usage: test-po.py SRCDIR BUILD_PO_DIR DIRTYCTL DIRTY_ARBITER"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

src, locale_dir, dirtyctl, arbiter = sys.argv[1:5]
n = 0
failed = False


def check(ok, what, detail=""):
    global n, failed
    n += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
    if not ok:
        failed = True
        for line in str(detail).splitlines():
            print("# " + line)


MARK = re.compile(r'\b(?:N_|C_|NC_|_)\s*\((?:\s|\\\n)*(?:"[^"]*"\s*,\s*)?"', re.S)
listed = [l.strip() for l in open(os.path.join(src, "po", "POTFILES.in"))
          if l.strip() and not l.startswith("#")]
marked = []
for top in ("client", "daemon", "dirtyctl", "protocol"):
    for root, _, files in os.walk(os.path.join(src, top)):
        for name in files:
            if name.endswith((".c", ".h")):
                path = os.path.join(root, name)
                if MARK.search(open(path, encoding="utf-8").read()):
                    marked.append(os.path.relpath(path, src))
missing = sorted(set(marked) - set(listed))
check(not missing, "POTFILES.in lists every file with _(), N_() or C_()",
      "missing: " + " ".join(missing))
gone = [f for f in listed if not os.path.exists(os.path.join(src, f))]
check(not gone, "every file in POTFILES.in exists", " ".join(gone))

langs = [l.strip() for l in open(os.path.join(src, "po", "LINGUAS"))
         if l.strip() and not l.startswith("#")]
check("de" in langs, "LINGUAS has de")
with tempfile.TemporaryDirectory() as tmp:
    pot = os.path.join(tmp, "dirty-arbiter.pot")
    have_tools = shutil.which("xgettext") and shutil.which("msgcmp")
    if have_tools:
        r = subprocess.run(["xgettext", "--from-code=UTF-8", "--keyword=_", "--keyword=N_",
                            "--keyword=C_:1c,2", "--keyword=NC_:1c,2", "-D", src, "-o", pot]
                           + listed, capture_output=True, text=True)
        check(r.returncode == 0 and not r.stderr, "xgettext extracts cleanly", r.stderr)
    for lang in langs:
        po = os.path.join(src, "po", lang + ".po")
        r = subprocess.run(["msgfmt", "--check", "--statistics", "-o", os.devnull, po],
                           capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        check(r.returncode == 0 and "fuzzy" not in r.stderr and "untranslated" not in r.stderr,
              "%s.po compiles, no fuzzy or untranslated messages" % lang, r.stderr)
        header = open(po, encoding="utf-8").read()
        check("Plural-Forms: nplurals=2; plural=(n != 1);" in header,
              "%s.po has a Plural-Forms header" % lang)
        if have_tools:
            r = subprocess.run(["msgcmp", po, pot], capture_output=True, text=True)
            check(r.returncode == 0, "%s.po translates every msgid of the sources" % lang,
                  r.stderr)

env = dict(os.environ, LANGUAGE="de", LC_ALL="C.UTF-8", DIRTY_LOCALEDIR=locale_dir)
env.pop("DIRTY_ARBITER_SOCKET", None)


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, env=env)


r = run(dirtyctl, "--help")
check(r.returncode == 0 and "Befehle:" in r.stdout and "Exit-Status:" in r.stdout
      and "eine Aktion aufrufen, ihr Ergebnis ausgeben" in r.stdout,
      "LANGUAGE=de dirtyctl --help is German", r.stdout + r.stderr)
r = run(dirtyctl, "call", "--help")
check(r.returncode == 0 and "Ruft ACTION der APP in einem Worker auf" in r.stdout
      and "Das Zeitlimit des Aufrufs in Millisekunden" in r.stdout,
      "LANGUAGE=de dirtyctl call --help is German", r.stdout + r.stderr)
r = run(dirtyctl, "frobnicate")
check(r.returncode == 1 and "unbekannter Befehl „frobnicate“" in r.stderr,
      "dirtyctl's usage error is German", r.stderr)
# the library's message: libdirty-glib binds its text domain itself
r = run(dirtyctl, "--socket", "/nonexistent/dirty.sock", "call", "nope:Nope", "x")
check(r.returncode == 2 and
      "dirtyctl: connection: Verbindung zu dirty-arbiter unter /nonexistent/dirty.sock "
      "nicht möglich" in r.stderr,
      "a connection error from the library is German (the code stays English)", r.stderr)
r = run(arbiter, "--dirty-workers=many")
check(r.returncode == 1 and "„many“ ist keine ganze Zahl von 1 bis 1024" in r.stderr,
      "dirty-arbiter's bad option value is German", r.stderr)
r = run(arbiter, "--help")
check(r.returncode == 0 and "Anzahl der Worker-Prozesse" in r.stdout
      and "Signale:" in r.stdout, "dirty-arbiter --help is German", r.stdout)
# without LANGUAGE: English
r = subprocess.run([dirtyctl, "frobnicate"], capture_output=True, text=True,
                   env=dict(os.environ, LC_ALL="C.UTF-8", DIRTY_LOCALEDIR=locale_dir,
                            LANGUAGE=""))
check("unknown verb “frobnicate”" in r.stderr, "without LANGUAGE the messages are English",
      r.stderr)

print("1..%d" % n)
sys.exit(1 if failed else 0)
