/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The arbiter's structured records (dirty-log.h): a call that overran its
 * deadline carries its backtrace as the journal field DIRTY_BACKTRACE,
 * and, where only MESSAGE is shown (a terminal, a pipe), after the
 * message; records of failed calls are rate-limited. */
#include "config.h"

#include <string.h>

#include "dirty-log.h"

static GHashTable *captured;   /* field name -> value of the last record */
static guint n_captured;

static GLogWriterOutput
capture_writer (GLogLevelFlags   level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  n_captured++;
  g_hash_table_remove_all (captured);
  for (gsize i = 0; i < n_fields; i++)
    g_hash_table_insert (captured, g_strdup (fields[i].key),
                         fields[i].length < 0 ? g_strdup (fields[i].value)
                                              : g_strndup (fields[i].value, fields[i].length));
  return G_LOG_WRITER_HANDLED;
}

static void
test_backtrace_field (void)
{
  const char *backtrace = "the thread running the call, at its deadline:\n#0  0x1 in stuck+0x2";
  const char *message;

  dirty_log_call_error (G_LOG_LEVEL_MESSAGE, "testapp:DirtyTestApp", "stuck", 7, 4242, 1,
                        DIRTY_ERROR_TIMEOUT, backtrace, "call %s failed", "stuck");
  g_assert_cmpstr (g_hash_table_lookup (captured, "DIRTY_BACKTRACE"), ==, backtrace);
  g_assert_cmpstr (g_hash_table_lookup (captured, "DIRTY_ERROR_CODE"), ==, "timeout");
  g_assert_cmpstr (g_hash_table_lookup (captured, "DIRTY_WORKER_PID"), ==, "4242");
  message = g_hash_table_lookup (captured, "MESSAGE");
  g_assert_true (g_str_has_prefix (message, "call stuck failed\n"));
  g_assert_nonnull (strstr (message, backtrace));
}

static void
test_no_backtrace (void)
{
  dirty_log_call_error (G_LOG_LEVEL_MESSAGE, "a", "b", 1, 0, 0, DIRTY_ERROR_CANCELLED,
                        NULL, "call %s failed", "b");
  g_assert_false (g_hash_table_contains (captured, "DIRTY_BACKTRACE"));
  g_assert_cmpstr (g_hash_table_lookup (captured, "MESSAGE"), ==, "call b failed");
}

/* A flood of failed calls logs at most 100 records in 5 s; the others
 * are counted in one record when the 5 s end (journald, past its own
 * burst, would drop every record of the service for a while). */
static void
test_call_rate_limit (void)
{
  guint before = n_captured, logged;
  g_autofree char *expected = NULL;
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  for (guint i = 0; i < 300; i++)
    dirty_log_call_error (G_LOG_LEVEL_MESSAGE, "a", "b", i + 1, 0, 0, DIRTY_ERROR_APP_NOT_FOUND,
                          NULL, "call %u refused", i);
  logged = n_captured - before;
  /* the other tests' records count in the same 5 s */
  g_assert_cmpuint (logged, <=, 100);
  g_assert_cmpuint (logged, >=, 90);
  g_assert_cmpstr (g_hash_table_lookup (captured, "DIRTY_ERROR_CODE"), ==, "app-not-found");

  while (n_captured == before + logged)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, TRUE);
    }
  expected = g_strdup_printf ("%u more failed calls were not logged in the last 5 s", 300 - logged);
  g_assert_true (g_str_has_prefix (g_hash_table_lookup (captured, "MESSAGE"), expected));
  /* a new 5 s: logged again */
  dirty_log_call_error (G_LOG_LEVEL_MESSAGE, "a", "b", 1, 0, 0, DIRTY_ERROR_APP, NULL, "again");
  g_assert_cmpstr (g_hash_table_lookup (captured, "MESSAGE"), ==, "again");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  captured = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  /* not dirty_log_init(): this writer stands in for the journal's */
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_add_func ("/log/backtrace-field", test_backtrace_field);
  g_test_add_func ("/log/no-backtrace", test_no_backtrace);
  g_test_add_func ("/log/call-rate-limit", test_call_rate_limit);
  return g_test_run ();
}
