/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The benchmarks' common result table: figure, floor, ratio, target,
 * met. Each benchmark program appends its rows to a file (--table=FILE);
 * run-all.sh prints the whole table once every program has run. */

#include <glib.h>

typedef enum {
  BENCH_LOWER_IS_BETTER,   /* ratio = value / floor, met if ratio <= target */
  BENCH_HIGHER_IS_BETTER,  /* ratio = value / floor, met if ratio >= target */
  BENCH_ABSOLUTE_MAX,      /* no floor: met if value <= target */
  BENCH_ABSOLUTE_MIN,      /* no floor: met if value >= target */
  BENCH_INFO,              /* a figure with no target */
} BenchKind;

void bench_table_open  (const char *path);
/* @floor is ignored for the absolute kinds (pass 0). */
void bench_table_add   (const char *figure,
                        double      value,
                        const char *unit,
                        double      floor,
                        BenchKind   kind,
                        double      target);
void bench_table_close (void);
