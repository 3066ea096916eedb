/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdio.h>

#include "bench-table.h"

static FILE *table;

void
bench_table_open (const char *path)
{
  table = path ? fopen (path, "a") : NULL;
  if (path && table == NULL)
    g_error ("cannot open %s", path);
}

static void
print_row (FILE *out, const char *figure, const char *value, const char *floor,
           const char *ratio, const char *target, const char *met)
{
  fprintf (out, "%-46s %18s %18s %9s %12s  %s\n", figure, value, floor, ratio, target, met);
}

void
bench_table_add (const char *figure,
                 double      value,
                 const char *unit,
                 double      floor,
                 BenchKind   kind,
                 double      target)
{
  g_autofree char *v = g_strdup_printf ("%.1f %s", value, unit);
  g_autofree char *f = NULL, *r = NULL, *t = NULL;
  const char *met = "-";
  double ratio = floor > 0 ? value / floor : 0;

  switch (kind)
    {
    case BENCH_LOWER_IS_BETTER:
    case BENCH_HIGHER_IS_BETTER:
      f = g_strdup_printf ("%.1f %s", floor, unit);
      r = g_strdup_printf ("%.2fx", ratio);
      t = g_strdup_printf ("%s %.2fx", kind == BENCH_LOWER_IS_BETTER ? "<=" : ">=", target);
      met = (kind == BENCH_LOWER_IS_BETTER ? ratio <= target : ratio >= target) ? "met" : "NOT MET";
      break;
    case BENCH_ABSOLUTE_MAX:
    case BENCH_ABSOLUTE_MIN:
      f = g_strdup ("-");
      r = g_strdup ("-");
      t = g_strdup_printf ("%s %g %s", kind == BENCH_ABSOLUTE_MAX ? "<=" : ">=", target, unit);
      met = (kind == BENCH_ABSOLUTE_MAX ? value <= target : value >= target) ? "met" : "NOT MET";
      break;
    case BENCH_INFO:
    default:
      f = floor > 0 ? g_strdup_printf ("%.1f %s", floor, unit) : g_strdup ("-");
      r = floor > 0 ? g_strdup_printf ("%.2fx", ratio) : g_strdup ("-");
      t = g_strdup ("-");
      break;
    }
  /* with a table file, run-all.sh prints the rows once, at the end */
  if (table == NULL)
    print_row (stdout, figure, v, f, r, t, met);
  else
    {
      print_row (table, figure, v, f, r, t, met);
      fflush (table);
    }
}

void
bench_table_close (void)
{
  if (table)
    fclose (table);
  table = NULL;
}
