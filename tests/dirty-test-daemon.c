/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "dirty-test-daemon.h"

struct _DirtyTestDaemon {
  char        *dir;
  char        *socket_path;
  GSubprocess *process;
  GPid         pid;
  GSocket     *notify;
  gboolean     exited;

  /* The notify socket is drained by a thread: an unread datagram queue
   * (10 deep on some machines) would block the daemon in sd_notify(). */
  GThread     *notify_thread;
  GMutex       lock;
  GCond        cond;
  GPtrArray   *messages;      /* every line received, in order */
  guint        next_message;  /* first one wait_notify has not looked at */
  gint         stopping;      /* atomic */
};

static const char *
required_env (const char *name)
{
  const char *value = g_getenv (name);

  if (value == NULL)
    g_error ("%s is not set: run the tests with `meson test`", name);
  return value;
}

/* $DIRTY_TEST_VALGRIND, set by `meson test --setup=valgrind`: the
 * wrapper (tests/valgrind-wrap.sh) that runs the daemon and, through
 * --trace-children, its workers under memcheck. */
static const char *
valgrind_wrapper (void)
{
  return g_getenv ("DIRTY_TEST_VALGRIND");
}

gboolean
dirty_test_under_valgrind (void)
{
  return valgrind_wrapper () != NULL;
}

char *
dirty_test_wait_for_text (const char *path,
                          const char *needle)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *text = NULL;
      const char *found;

      if (g_file_get_contents (path, &text, NULL, NULL) &&
          (found = strstr (text, needle)) != NULL)
        return g_strdup (found);
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (20 * 1000);
    }
}

guint
dirty_test_count_fds (GPid pid)
{
  g_autofree char *path = pid > 0 ? g_strdup_printf ("/proc/%d/fd", (int) pid)
                                  : g_strdup ("/proc/self/fd");
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

guint
dirty_test_timeout_scale (void)
{
  return dirty_test_under_valgrind () ? 10 : 1;
}

void
dirty_test_add_valgrind (GPtrArray *argv)
{
  if (valgrind_wrapper () == NULL)
    return;
  g_ptr_array_add (argv, (gpointer) valgrind_wrapper ());
  g_ptr_array_add (argv, (gpointer) "--error-exitcode=99");
}

#define VALGRIND_BEGIN "DIRTY-VALGRIND-ERROR"

static void
add_valgrind_args (GPtrArray  *argv,
                   const char *log_dir)
{
  if (valgrind_wrapper () == NULL)
    return;
  g_ptr_array_add (argv, g_strdup (valgrind_wrapper ()));
  g_ptr_array_add (argv, g_strdup ("--trace-children=yes"));
  /* but not into dirty-python-worker's interpreter: valgrind checks our
   * C, and emulating numpy's floating point changes its results */
  g_ptr_array_add (argv, g_strdup ("--trace-children-skip=*python*"));
  g_ptr_array_add (argv, g_strdup ("--error-markers=" VALGRIND_BEGIN ",DIRTY-VALGRIND-END"));
  g_ptr_array_add (argv, g_strdup_printf ("--log-file=%s/valgrind-%%p.log", log_dir));
}

/* Prints the log of every daemon or worker process in which valgrind
 * found an error or a definite leak, and fails the test if there was
 * one: a worker's errors do not reach the test any other way. */
static void
check_valgrind_logs (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;
  guint failed = 0;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;

      if (!g_str_has_prefix (name, "valgrind-") ||
          !g_file_get_contents (path, &contents, NULL, NULL) ||
          strstr (contents, VALGRIND_BEGIN) == NULL)
        continue;
      g_printerr ("valgrind: %s:\n%s\n", name, contents);
      failed++;
    }
  if (failed > 0)
    g_error ("valgrind found errors in %u daemon or worker processes (above)", failed);
}

static GSocket *
bind_notify_socket (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                            G_SOCKET_PROTOCOL_DEFAULT, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, address, TRUE, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&socket);
}

static gpointer
notify_thread (gpointer data)
{
  DirtyTestDaemon *daemon = data;

  for (;;)
    {
      char buf[4096];
      gssize n;
      g_autoptr(GError) error = NULL;
      g_auto(GStrv) lines = NULL;

      if (!g_socket_condition_timed_wait (daemon->notify, G_IO_IN, 50 * 1000, NULL, NULL))
        {
          if (g_atomic_int_get (&daemon->stopping))
            return NULL;
          continue;
        }
      n = g_socket_receive (daemon->notify, buf, sizeof buf - 1, NULL, &error);
      if (n <= 0)
        continue;
      buf[n] = '\0';
      lines = g_strsplit (buf, "\n", -1);
      g_mutex_lock (&daemon->lock);
      for (guint i = 0; lines[i]; i++)
        if (*lines[i])
          g_ptr_array_add (daemon->messages, g_strdup (lines[i]));
      g_cond_broadcast (&daemon->cond);
      g_mutex_unlock (&daemon->lock);
    }
}

char *
dirty_test_daemon_wait_notify (DirtyTestDaemon *daemon,
                               const char      *prefix,
                               guint            timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  char *found = NULL;

  g_mutex_lock (&daemon->lock);
  while (found == NULL)
    {
      while (found == NULL && daemon->next_message < daemon->messages->len)
        {
          const char *line = daemon->messages->pdata[daemon->next_message++];
          if (g_str_has_prefix (line, prefix))
            found = g_strdup (line);
        }
      if (found == NULL && !g_cond_wait_until (&daemon->cond, &daemon->lock, end))
        break;
    }
  g_mutex_unlock (&daemon->lock);
  return found;
}

static char *
write_config (const char *dir,
              const char *config)
{
  g_autofree char *path = g_build_filename (dir, "dirty-arbiter.conf", NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, config ? config : "", -1, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

/* If the test dies on a failed assertion, its daemon must not outlive it
 * (it would hold the test's output pipes open and meson would wait). */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static GSubprocess *
spawn_arbiter (DirtyTestDaemon    *daemon,
               const char         *config_path,
               const char * const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *notify_path = g_build_filename (daemon->dir, "notify.sock", NULL);
  g_auto(GStrv) app_dirs = g_strsplit (required_env ("DIRTY_TEST_APP_PATH"), ":", -1);
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  add_valgrind_args (argv, daemon->dir);
  g_ptr_array_add (argv, g_strdup (required_env ("DIRTY_TEST_ARBITER")));
  g_ptr_array_add (argv, g_strdup_printf ("--config=%s", config_path));
  g_ptr_array_add (argv, g_strdup_printf ("--socket=%s", daemon->socket_path));
  for (guint i = 0; app_dirs[i]; i++)
    g_ptr_array_add (argv, g_strdup_printf ("--app-path=%s", app_dirs[i]));
  for (guint i = 0; args && args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_setenv (launcher, "NOTIFY_SOCKET", notify_path, TRUE);
  g_subprocess_launcher_setenv (launcher, "DIRTY_WORKER_PATH",
                                required_env ("DIRTY_WORKER_PATH"), TRUE);
  g_subprocess_launcher_unsetenv (launcher, "DIRTY_ARBITER_SOCKET");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  return process;
}

DirtyTestDaemon *
dirty_test_daemon_start (const char         *config,
                         const char * const *args)
{
  DirtyTestDaemon *daemon = g_new0 (DirtyTestDaemon, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *notify_path = NULL;
  g_autofree char *ready = NULL;

  daemon->dir = g_dir_make_tmp ("dirty-test-XXXXXX", &error);
  g_assert_no_error (error);
  daemon->socket_path = g_build_filename (daemon->dir, "arbiter.sock", NULL);
  notify_path = g_build_filename (daemon->dir, "notify.sock", NULL);
  daemon->notify = bind_notify_socket (notify_path);
  g_mutex_init (&daemon->lock);
  g_cond_init (&daemon->cond);
  daemon->messages = g_ptr_array_new_with_free_func (g_free);
  daemon->notify_thread = g_thread_new ("notify", notify_thread, daemon);
  config_path = write_config (daemon->dir, config);
  daemon->process = spawn_arbiter (daemon, config_path, args);
  daemon->pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (daemon->process), NULL, 10);

  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 30000 * dirty_test_timeout_scale ());
  if (ready == NULL)
    g_error ("dirty-arbiter did not send READY=1 within %u s", 30 * dirty_test_timeout_scale ());
  return daemon;
}

int
dirty_test_daemon_signal_and_wait (DirtyTestDaemon *daemon,
                                   int              signum,
                                   guint            timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  if (!daemon->exited)
    g_subprocess_send_signal (daemon->process, signum);
  /* GSubprocess reaps the child on GLib's worker thread; its identifier
   * turns NULL once it has. */
  while (g_subprocess_get_identifier (daemon->process) != NULL)
    {
      if (g_get_monotonic_time () >= end)
        return -1;
      g_usleep (5 * 1000);
    }
  daemon->exited = TRUE;
  return g_subprocess_get_status (daemon->process);
}

void
dirty_test_daemon_stop (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;

  if (daemon == NULL)
    return;
  if (!daemon->exited &&
      dirty_test_daemon_signal_and_wait (daemon, SIGTERM, 40000 * dirty_test_timeout_scale ()) == -1)
    {
      g_test_message ("dirty-arbiter ignored SIGTERM; killing it");
      g_subprocess_force_exit (daemon->process);
      g_subprocess_wait (daemon->process, NULL, NULL);
    }
  g_clear_object (&daemon->process);
  g_atomic_int_set (&daemon->stopping, TRUE);
  g_thread_join (daemon->notify_thread);
  g_clear_object (&daemon->notify);
  g_ptr_array_unref (daemon->messages);
  g_mutex_clear (&daemon->lock);
  g_cond_clear (&daemon->cond);
  check_valgrind_logs (daemon->dir);
  {
    g_autoptr(GFile) dir = g_file_new_for_path (daemon->dir);
    g_autoptr(GFileEnumerator) children =
      g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                 G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
    GFile *child;

    while (children && g_file_enumerator_iterate (children, NULL, &child, NULL, NULL) && child)
      g_file_delete (child, NULL, NULL);
    g_file_delete (dir, NULL, NULL);
  }
  g_free (daemon->socket_path);
  g_free (daemon->dir);
  g_free (daemon);
}

const char *
dirty_test_daemon_get_socket_path (DirtyTestDaemon *daemon)
{
  return daemon->socket_path;
}

const char *
dirty_test_daemon_get_dir (DirtyTestDaemon *daemon)
{
  return daemon->dir;
}

GPid
dirty_test_daemon_get_pid (DirtyTestDaemon *daemon)
{
  return daemon->pid;
}

int
dirty_test_run_arbiter (const char * const *argv,
                        char              **out_stderr)
{
  g_autoptr(GPtrArray) full = g_ptr_array_new ();
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;

  dirty_test_add_valgrind (full);
  g_ptr_array_add (full, (gpointer) required_env ("DIRTY_TEST_ARBITER"));
  for (guint i = 0; argv[i]; i++)
    g_ptr_array_add (full, (gpointer) argv[i]);
  g_ptr_array_add (full, NULL);
  g_subprocess_launcher_setenv (launcher, "DIRTY_WORKER_PATH",
                                required_env ("DIRTY_WORKER_PATH"), TRUE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) full->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, NULL, out_stderr, &error);
  g_assert_no_error (error);
  return g_subprocess_get_status (process);
}

GArray *
dirty_test_list_children (GPid pid)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (proc && (name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *stat_path = NULL;
      g_autofree char *contents = NULL;
      const char *close_paren;
      GPid ppid;

      if (!g_ascii_isdigit (name[0]))
        continue;
      stat_path = g_build_filename ("/proc", name, "stat", NULL);
      if (!g_file_get_contents (stat_path, &contents, NULL, NULL))
        continue;
      /* "pid (comm) state ppid ...": comm may hold spaces, so parse after ')' */
      close_paren = strrchr (contents, ')');
      if (close_paren == NULL || sscanf (close_paren + 2, "%*c %d", &ppid) != 1)
        continue;
      if (ppid == pid)
        {
          GPid child = (GPid) g_ascii_strtoll (name, NULL, 10);
          g_array_append_val (pids, child);
        }
    }
  return pids;
}

gboolean
dirty_test_pid_alive (GPid pid)
{
  g_autofree char *stat_path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *contents = NULL;
  const char *close_paren;

  if (kill (pid, 0) != 0 && errno == ESRCH)
    return FALSE;
  /* a zombie is dead for our purposes */
  if (!g_file_get_contents (stat_path, &contents, NULL, NULL))
    return FALSE;
  close_paren = strrchr (contents, ')');
  return close_paren != NULL && close_paren[2] != 'Z';
}

char *
dirty_test_export_temp_path (const char *variable,
                             const char *name)
{
  g_autofree char *template = g_strconcat ("dirty-", name, "-XXXXXX", NULL);
  char *path = g_build_filename (g_get_tmp_dir (), template, NULL);

  g_close (g_mkstemp (path), NULL);
  g_unlink (path);
  g_setenv (variable, path, TRUE);
  return path;
}

void
dirty_test_wait_gone (GPid  pid,
                      guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;

  while (dirty_test_pid_alive (pid))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (20 * 1000);
    }
}

void
dirty_test_store_result_cb (GObject      *source,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

GAsyncResult *
dirty_test_wait_result (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  return *result;
}
