#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the one fenced code block in LANGUAGE (```c, ```python, ```js)
of a markdown file to OUTPUT, so the tests can build and run the examples
of the API reference's overview exactly as printed.

Usage: extract-example.py MARKDOWN LANGUAGE OUTPUT"""
import re
import sys

markdown, language, output = sys.argv[1:4]
with open(markdown, encoding="utf-8") as f:
    text = f.read()
blocks = re.findall(r"^```%s\n(.*?)^```$" % re.escape(language), text, re.M | re.S)
if len(blocks) != 1:
    sys.exit("%s: %d ```%s blocks, expected exactly one" % (markdown, len(blocks), language))
with open(output, "w", encoding="utf-8") as f:
    f.write(blocks[0])
