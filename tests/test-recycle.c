/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hooks and recycling against the real daemon: the hooks_module's hooks
 * run in the right process at the right moment (tests/apps/hooksmod.c
 * logs them, testapp's init() logs itself), a module that cannot be
 * loaded is a config error, and workers are recycled after
 * dirty_max_requests calls or above dirty_max_rss without a failed call,
 * and killed above dirty_kill_rss. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <dirty.h>
#include <glib/gstdio.h>

#include "dirty-test-daemon.h"

#define TESTAPP  "testapp:DirtyTestApp"
#define FAILINIT "failinit:DirtyFailInitApp"

/* init() of FAILINIT fails while this file exists ($DIRTY_TEST_FAILINIT_FILE) */
static char *fail_file;

static DirtyClient *
connect_to (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  DirtyClient *client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon),
                                               NULL, &error);

  g_assert_no_error (error);
  return client;
}

static gint64
call_int (DirtyClient *client,
          const char  *action,
          double       arg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(JsonNode) result = NULL;

  if (arg >= 0)
    json_array_add_double_element (args, arg);
  result = dirty_client_execute_sync (client, TESTAPP, action, args, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_node_get_value_type (result), ==, G_TYPE_INT64);
  return json_node_get_int (result);
}

static char *
hooks_module_path (void)
{
  return g_test_build_filename (G_TEST_BUILT, "apps", "hooksmod.so", NULL);
}

/* The line index of the first line starting with @prefix and holding
 * @needle, at or after @from; -1 if none. */
static int
find_line (char       **lines,
           const char  *prefix,
           const char  *needle,
           int          from)
{
  for (int i = MAX (from, 0); lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix) && (needle == NULL || strstr (lines[i], needle)))
      return i;
  return -1;
}

static void
test_hooks_order (void)
{
  g_autofree char *module = hooks_module_path ();
  g_autofree char *dir = g_dir_make_tmp ("dirty-hooks-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "hooks.log", NULL);
  g_autofree char *config = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree char *arbiter_real = NULL;
  DirtyTestDaemon *daemon;
  GPid arbiter;
  int status;
  int starting;
  guint workers_seen = 0;

  g_setenv ("DIRTY_TEST_HOOKS_LOG", log, TRUE);
  config = g_strdup_printf ("[dirty-arbiter]\ndirty_apps=" TESTAPP ";echo:DirtyEchoApp\n"
                            "dirty_workers=2\nhooks_module=%s\n", module);
  daemon = dirty_test_daemon_start (config, NULL);
  arbiter = dirty_test_daemon_get_pid (daemon);
  {
    g_autoptr(DirtyClient) client = connect_to (daemon);

    gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

    g_assert_cmpint (call_int (client, "pid", -1), !=, arbiter);
    /* READY=1 may come before the second worker's last init() ends */
    while (g_get_monotonic_time () < deadline)
      {
        g_autofree char *so_far = NULL;
        g_auto(GStrv) so_far_lines = NULL;
        guint inits = 0;

        if (g_file_get_contents (log, &so_far, NULL, NULL))
          {
            so_far_lines = g_strsplit (so_far, "\n", -1);
            for (guint i = 0; so_far_lines[i] != NULL; i++)
              inits += g_str_has_prefix (so_far_lines[i], "dirty_worker_init ");
          }
        if (inits >= 2)
          break;
        g_usleep (50 * 1000);
      }
  }
  status = dirty_test_daemon_signal_and_wait (daemon, SIGTERM, 30000);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  dirty_test_daemon_stop (daemon);
  g_unsetenv ("DIRTY_TEST_HOOKS_LOG");

  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_test_message ("%s", text);
  lines = g_strsplit (text, "\n", -1);
  arbiter_real = g_strdup_printf ("real_pid=%d", (int) arbiter);

  /* on_dirty_starting: first, in the arbiter */
  starting = find_line (lines, "on_dirty_starting ", arbiter_real, 0);
  g_assert_cmpint (starting, ==, 0);

  for (int i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *pid_text = NULL;
      g_autofree char *init_text = NULL;
      g_autofree char *worker_text = NULL;
      const char *real;
      int pid, init_line, worker_init, worker_exit;

      if (!g_str_has_prefix (lines[i], "dirty_post_fork "))
        continue;
      /* dirty_post_fork: in a worker, not the arbiter, after starting */
      real = strstr (lines[i], "real_pid=");
      g_assert_nonnull (real);
      pid = atoi (real + strlen ("real_pid="));
      g_assert_cmpint (pid, !=, arbiter);
      g_assert_cmpint (i, >, starting);
      pid_text = g_strdup_printf ("real_pid=%d", pid);
      init_text = g_strdup_printf ("init pid=%d", pid);
      worker_text = g_strdup_printf ("worker_pid=%d ", pid);
      g_assert_nonnull (strstr (lines[i], "pid=")); /* its own pid in the facts */
      /* the app's init() in that worker, then dirty_worker_init there */
      init_line = find_line (lines, init_text, NULL, i + 1);
      g_assert_cmpint (init_line, >, i);
      worker_init = find_line (lines, "dirty_worker_init ", pid_text, 0);
      g_assert_cmpint (worker_init, >, init_line);
      /* dirty_worker_exit: in the arbiter, naming that worker */
      worker_exit = find_line (lines, "dirty_worker_exit ", worker_text, 0);
      g_assert_cmpint (worker_exit, >, worker_init);
      g_assert_nonnull (strstr (lines[worker_exit], arbiter_real));
      workers_seen++;
    }
  g_assert_cmpuint (workers_seen, ==, 2);
  g_unlink (log);
  g_rmdir (dir);
}

static void
test_hooks_bad_module (void)
{
  g_autofree char *dir = g_dir_make_tmp ("dirty-hooks-XXXXXX", NULL);
  g_autofree char *conf = g_build_filename (dir, "bad.conf", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.so", NULL);
  g_autofree char *text = g_strdup_printf ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                                           "hooks_module=%s\n", missing);
  const char *argv[] = { "--config", conf, NULL };
  g_autofree char *err = NULL;
  int status;

  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  status = dirty_test_run_arbiter (argv, &err);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_nonnull (strstr (err, missing));
  g_assert_nonnull (strstr (err, "hooks_module"));
  g_unlink (conf);
  g_rmdir (dir);
}

/* @n sequential calls, none failing; returns how many pids served them */
static guint
count_pids (DirtyClient *client,
            guint        n)
{
  g_autoptr(GHashTable) pids = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autofree gint64 *seen = g_new0 (gint64, n);

  for (guint i = 0; i < n; i++)
    {
      seen[i] = call_int (client, "pid", -1);
      g_hash_table_add (pids, &seen[i]);
    }
  return g_hash_table_size (pids);
}

static void
test_max_requests (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\n"
                             "dirty_max_requests=5\n", NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);

  g_assert_cmpuint (count_pids (client, 20), >=, 4);
}

static void
test_max_requests_retire_first (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\n"
                             "dirty_max_requests=3\ndirty_max_requests_jitter=1\n"
                             "recycle_order=retire-first\n", NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);

  g_assert_cmpuint (count_pids (client, 12), >=, 3);
}

static void
test_max_rss (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\n"
                             "dirty_max_rss=64\n", NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  gint64 first = call_int (client, "pid", -1);
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
  gint64 now_pid = first;

  g_assert_cmpint (call_int (client, "alloc", 128), ==, first);
  /* checked every second; the calls meanwhile must all succeed */
  while (now_pid == first && g_get_monotonic_time () < deadline)
    {
      g_usleep (100 * 1000);
      now_pid = call_int (client, "pid", -1);
    }
  g_assert_cmpint (now_pid, !=, first);
}

/* replace-first promises the replacement is ready before the old worker
 * leaves: one whose app's init() fails is not, so the worker over
 * dirty_max_rss serves that app on (rather than take it down) until a
 * retry succeeds; then it leaves. */
static void
test_max_rss_replacement_fails (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP ";" FAILINIT "\n"
                             "dirty_workers=1\ndirty_max_rss=64\n", NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  gint64 first = call_int (client, "pid", -1);

  g_assert_true (g_file_set_contents (fail_file, "", 0, NULL));
  g_assert_cmpint (call_int (client, "alloc", 128), ==, first);
  /* the replacement starts within a check (250 ms) and fails at once */
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) result = dirty_client_execute_sync (client, FAILINIT, "ok", NULL, NULL,
                                                              NULL, &error);

      g_assert_no_error (error);
      g_usleep (100 * 1000);
    }
  g_assert_true (dirty_test_pid_alive ((GPid) first));
  g_unlink (fail_file);
  dirty_test_wait_gone ((GPid) first, 20000 * dirty_test_timeout_scale ());
  g_assert_cmpint (call_int (client, "pid", -1), !=, first);
}

/* dirty_kill_rss: a call that allocates without end is not waited for
 * (recycling would wait for its deadline): its worker is killed, the
 * call ends worker-lost, and a new worker serves the next call. 256 MiB
 * is above what a worker uses at start in any build, valgrind's included. */
static void
test_kill_rss (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\n"
                             "dirty_max_rss=64\ndirty_kill_rss=256\n", NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 first = call_int (client, "pid", -1);

  json_array_add_int_element (args, 4);   /* MiB per 10 ms */
  result = dirty_client_execute_sync (client, TESTAPP, "grow", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_WORKER_LOST);
  g_assert_null (result);
  g_assert_cmpint (call_int (client, "pid", -1), !=, first);
  /* the call ends when SIGKILL is sent; the kernel may still be freeing
   * the worker's hundreds of MiB a moment later */
  dirty_test_wait_gone ((GPid) first, 5000);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* before any thread exists: the daemons' workers inherit it */
  fail_file = dirty_test_export_temp_path ("DIRTY_TEST_FAILINIT_FILE", "recycle-fail");

  g_test_add_func ("/recycle/hooks-order", test_hooks_order);
  g_test_add_func ("/recycle/hooks-bad-module", test_hooks_bad_module);
  g_test_add_func ("/recycle/max-requests", test_max_requests);
  g_test_add_func ("/recycle/max-requests-retire-first", test_max_requests_retire_first);
  g_test_add_func ("/recycle/max-rss", test_max_rss);
  g_test_add_func ("/recycle/max-rss-replacement-fails", test_max_rss_replacement_fails);
  g_test_add_func ("/recycle/kill-rss", test_kill_rss);
  return g_test_run ();
}
