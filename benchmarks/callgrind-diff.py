#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Per-call instruction counts from two callgrind runs of the same
workload with different call counts (profile.sh): for each process
(arbiter, worker: the busiest one, client), the total and the top
functions by inclusive cost, as (large - small) / calls."""
import glob
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(.*?)(?: \[.*\])?$")


def costs(path):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    total, table = 0, {}
    # only the summary table: it ends at the first blank line after its header
    text = text.split("file:function", 1)[1].split("\n\n", 1)[0] \
        + "\n" + text.split("PROGRAM TOTALS", 1)[0].rsplit("\n", 1)[-1] + "PROGRAM TOTALS"
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        value = int(m.group(1).replace(",", ""))
        # the same function appears under two spellings of its file
        name = re.sub(r"^.*/build/\.\./|^build/\.\./|^.*/build/", "", m.group(2))
        if name == "PROGRAM TOTALS":
            total = value
        else:
            table[name] = max(value, table.get(name, 0))
    return total, table


def busiest(directory, process):
    files = glob.glob(f"{directory}/callgrind.{process}.*")
    return max(files, key=lambda f: costs(f)[0])


small, large, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
for process in ("arbiter", "worker", "client"):
    t_small, f_small = costs(busiest(small, process))
    t_large, f_large = costs(busiest(large, process))
    print(f"== {process}: {(t_large - t_small) / calls:,.0f} instructions per call")
    rows = []
    for name, value in f_large.items():
        per_call = (value - f_small.get(name, 0)) / calls
        if name.endswith((":main", "g_main_loop_run", ":dirty_worker_run", ":time_calls",
                          ":dirty_io_thread", ":profile")):
            continue   # the frame of everything
        if "dirty" in name or "json" in name or "g_main" in name or "signal" in name \
                or "malloc" in name or "free" in name:
            rows.append((per_call, name))
    for per_call, name in sorted(rows, reverse=True)[:22]:
        print(f"  {per_call:10,.0f}  {name}")
