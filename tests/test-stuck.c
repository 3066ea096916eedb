/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stuck-call diagnosis (issue 7, item 6), against the real daemon: a call
 * that overruns its deadline is answered "timeout" with a backtrace of
 * the thread running it as the error's detail (after the app's own
 * description of the call, when it gives one), the same backtrace is in
 * the record of the worker's kill, and a worker that cannot answer (it is
 * SIGSTOPped) is still killed in bounded time, the error saying that no
 * backtrace could be taken. */
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include <dirty.h>

#include "dirty-test-daemon.h"

#define TESTAPP "testapp:DirtyTestApp"
#define STUCK_FUNCTION "testapp_stuck_in_loop"
#define TIMEOUT_MS 400
/* docs/protocol.md: the worker has 500 ms to answer BACKTRACE, and is
 * killed 2 s after the deadline; the rest is slack for a loaded machine */
#define ANSWER_BOUND_US ((TIMEOUT_MS + 500 + 1500) * G_GINT64_CONSTANT (1000))
#define KILL_BOUND_US   ((TIMEOUT_MS + 2000 + 3000) * G_GINT64_CONSTANT (1000))

typedef struct {
  DirtyTestDaemon *daemon;
  DirtyClient     *client;
  char            *log;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *log_arg = NULL;
  const char *args[2] = { NULL, NULL };
  int fd;

  fixture->log = g_build_filename (g_get_tmp_dir (), "dirty-stuck-XXXXXX.log", NULL);
  fd = g_mkstemp (fixture->log);
  g_assert_cmpint (fd, >=, 0);
  g_close (fd, NULL);
  log_arg = g_strconcat ("--log-file=", fixture->log, NULL);
  args[0] = log_arg;
  fixture->daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                                             "dirty_workers=1\ndirty_threads=2\n", args);
  fixture->client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (fixture->daemon),
                                           NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_clear_object (&fixture->client);
  g_clear_pointer (&fixture->daemon, dirty_test_daemon_stop);
  g_unlink (fixture->log);
  g_free (fixture->log);
}

static gint64
worker_pid (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = dirty_client_execute_sync (fixture->client, TESTAPP, "pid",
                                                          NULL, NULL, NULL, &error);

  g_assert_no_error (error);
  return json_node_get_int (result);
}

/* A call of @action (args [60]) with TIMEOUT_MS; returns its error and,
 * in @elapsed, how long the answer took. */
static GError *
call_stuck (Fixture *fixture, const char *action, gint64 *elapsed)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (TESTAPP, action);
  g_autoptr(JsonNode) seconds = json_node_init_double (json_node_alloc (), 60);
  g_autoptr(DirtyReply) reply = NULL;
  GError *error = NULL;
  gint64 start = g_get_monotonic_time ();

  dirty_request_add_arg (request, seconds);
  dirty_request_set_timeout (request, TIMEOUT_MS);
  reply = dirty_client_send_sync (fixture->client, request, NULL, &error);
  *elapsed = g_get_monotonic_time () - start;
  g_assert_null (reply);
  return error;
}

/* The log file's text from the first @needle on, waiting up to 10 s. */
static char *
wait_for_log (Fixture *fixture, const char *needle)
{
  return dirty_test_wait_for_text (fixture->log, needle);
}

static void
wait_for_exit (gint64 pid, gint64 start)
{
  while (dirty_test_pid_alive ((GPid) pid))
    {
      g_assert_cmpint (g_get_monotonic_time () - start, <, KILL_BOUND_US);
      g_usleep (20 * 1000);
    }
}

/* The stuck thread's backtrace names the function it is stuck in: in
 * the client's error, and in the journal record of the kill. */
static void
test_backtrace_in_error (Fixture *fixture, gconstpointer data)
{
  gint64 pid = worker_pid (fixture);
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;
  g_autoptr(GError) error = call_stuck (fixture, "stuck", &elapsed);
  const char *detail = dirty_error_get_detail (error);
  g_autofree char *kill_record = NULL;

  g_test_message ("error after %" G_GINT64_FORMAT " ms: %s\ndetail:\n%s",
                  elapsed / 1000, error->message, detail);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_nonnull (detail);
  /* the app's own description first (describe_call()), then the C stack */
  g_assert_true (g_str_has_prefix (detail, "the thread running the call, at its deadline:\n"
                                           "testapp: the stuck action never looks at its "
                                           "cancellable\nC stack of thread "));
  g_assert_nonnull (strstr (detail, STUCK_FUNCTION));
  g_assert_cmpint (elapsed, >=, TIMEOUT_MS * 1000);
  g_assert_cmpint (elapsed, <, ANSWER_BOUND_US);
  g_assert_cmpint (dirty_error_get_worker_pid (error), ==, pid);

  /* the call ignores CANCEL: its worker is killed, and the record of
   * that carries the backtrace too */
  wait_for_exit (pid, start);
  kill_record = wait_for_log (fixture, "killing worker");
  g_assert_nonnull (strstr (kill_record, STUCK_FUNCTION));
  g_assert_cmpint (worker_pid (fixture), !=, pid);
}

/* A call that honours CANCEL is not killed, but its timeout still says
 * where it was. */
static void
test_backtrace_cooperative (Fixture *fixture, gconstpointer data)
{
  gint64 pid = worker_pid (fixture);
  gint64 elapsed;
  g_autoptr(GError) error = call_stuck (fixture, "sleep", &elapsed);
  const char *detail = dirty_error_get_detail (error);

  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_nonnull (detail);
  /* sleep_action is static; the module is named with the offset */
  g_assert_nonnull (strstr (detail, "testapp.so+0x"));
  /* the app has no description of it: the C stack alone, as ever */
  g_assert_true (g_str_has_prefix (detail, "the thread running the call, at its deadline:\n#0 "));
  g_assert_cmpint (elapsed, <, ANSWER_BOUND_US);
  g_assert_cmpint (worker_pid (fixture), ==, pid);
}

/* A stopped worker cannot answer: the client still gets its timeout in
 * bounded time, told that there is no backtrace, and the worker is
 * killed (SIGKILL ends a stopped process too). */
static void
test_stopped_worker (Fixture *fixture, gconstpointer data)
{
  gint64 pid = worker_pid (fixture);
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;
  g_autoptr(GError) error = NULL;
  const char *detail;

  g_assert_cmpint (kill ((pid_t) pid, SIGSTOP), ==, 0);
  error = call_stuck (fixture, "stuck", &elapsed);
  detail = dirty_error_get_detail (error);
  g_test_message ("error after %" G_GINT64_FORMAT " ms: %s\ndetail: %s",
                  elapsed / 1000, error->message, detail);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_nonnull (detail);
  g_assert_nonnull (strstr (detail, "no backtrace could be taken"));
  g_assert_cmpint (elapsed, >=, (TIMEOUT_MS + 500) * 1000);
  g_assert_cmpint (elapsed, <, ANSWER_BOUND_US);
  wait_for_exit (pid, start);
  g_test_message ("worker killed %" G_GINT64_FORMAT " ms after the call",
                  (g_get_monotonic_time () - start) / 1000);
  g_free (wait_for_log (fixture, "no backtrace could be taken"));
  g_assert_cmpint (worker_pid (fixture), !=, pid);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/stuck/backtrace-in-error", Fixture, NULL,
              fixture_set_up, test_backtrace_in_error, fixture_tear_down);
  g_test_add ("/stuck/backtrace-cooperative", Fixture, NULL,
              fixture_set_up, test_backtrace_cooperative, fixture_tear_down);
  g_test_add ("/stuck/stopped-worker", Fixture, NULL,
              fixture_set_up, test_stopped_worker, fixture_tear_down);
  return g_test_run ();
}
