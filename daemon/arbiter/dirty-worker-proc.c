/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-config.h"
#include "dirty-connection.h"
#include "dirty-log.h"
#include "dirty-message.h"
#include "dirty-timer.h"
#include "dirty-util.h"
#include "dirty-worker-proc-private.h"

/* After a worker lost its connection: how long it has to exit on its own */
#define EXIT_GRACE_US (5 * G_USEC_PER_SEC)

guint dirty_worker_proc_signals[N_SIGNALS];

G_DEFINE_TYPE (DirtyWorkerProc, dirty_worker_proc, G_TYPE_OBJECT)

static void
app_status_free (gpointer data)
{
  AppStatus *status = data;

  g_free (status->error);
  g_free (status);
}

static void
dirty_worker_proc_dispose (GObject *object)
{
  DirtyWorkerProc *self = DIRTY_WORKER_PROC (object);

  /* no callbacks into a dying object */
  self->state = DIRTY_WORKER_PROC_EXITED;
  if (self->launcher != NULL)
    dirty_unit_launcher_forget (self->launcher, self->id, self);
  if (self->connection != NULL)
    dirty_connection_close (self->connection);
  g_clear_object (&self->connection);
  g_clear_pointer (&self->watchdog, dirty_timer_free);
  if (self->in_flight != NULL)
    g_hash_table_remove_all (self->in_flight);
  G_OBJECT_CLASS (dirty_worker_proc_parent_class)->dispose (object);
}

static void
dirty_worker_proc_finalize (GObject *object)
{
  DirtyWorkerProc *self = DIRTY_WORKER_PROC (object);

  g_clear_object (&self->process);
  g_clear_object (&self->launcher);
  g_strfreev (self->unit_apps);
  g_strfreev (self->unit_app_path);
  g_free (self->hooks);
  g_clear_pointer (&self->unread, g_bytes_unref);
  g_hash_table_unref (self->apps);
  g_hash_table_unref (self->in_flight);
  G_OBJECT_CLASS (dirty_worker_proc_parent_class)->finalize (object);
}

static void
dirty_worker_proc_class_init (DirtyWorkerProcClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_worker_proc_dispose;
  object_class->finalize = dirty_worker_proc_finalize;

  dirty_worker_proc_signals[SIGNAL_APPS_CHANGED] =
    g_signal_new ("apps-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  dirty_worker_proc_signals[SIGNAL_BACKTRACE] =
    g_signal_new ("backtrace", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3,
                  G_TYPE_POINTER, G_TYPE_STRING, G_TYPE_STRING);
  dirty_worker_proc_signals[SIGNAL_LOST] =
    g_signal_new ("lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  dirty_worker_proc_signals[SIGNAL_EXITED] =
    g_signal_new ("exited", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dirty_worker_proc_init (DirtyWorkerProc *self)
{
  self->apps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, app_status_free);
  self->in_flight = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) dirty_job_unref);
}

void
dirty_worker_proc_log (DirtyWorkerProc *self,
                       GLogLevelFlags   level,
                       const char      *message)
{
  dirty_log (level, NULL, NULL, 0, self->pid, self->id, "worker %u (pid %" G_GINT64_FORMAT "): %s",
             self->id, self->pid, message);
}

/* Runs in the child between fork and exec: async-signal-safe calls only.
 * Its own process group, so killing the worker kills what it started;
 * SIGKILL when the arbiter dies, so a killed arbiter leaves no orphans. */
static void
child_setup (gpointer user_data)
{
  pid_t arbiter = GPOINTER_TO_INT (user_data);
  sigset_t stop;

  /* blocked until the worker's handlers are in place (exec keeps the
   * mask; dirty-worker.c unblocks): a SIGTERM sent while it is still
   * starting then waits for them instead of killing it half-way */
  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  sigprocmask (SIG_BLOCK, &stop, NULL);
  setpgid (0, 0);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* the arbiter ignores SIGPIPE; exec keeps an ignored signal ignored */
  signal (SIGPIPE, SIG_DFL);
  dirty_util_restore_fd_limit ();
  /* the arbiter died before prctl: nobody would kill us */
  if (getppid () != arbiter)
    _exit (1);
}

/* Python apps need dirty-python-worker, which loads C apps too: a worker
 * with at least one is started as that. */
static gboolean
has_python_app (const DirtyWorkerProcOptions *options)
{
  for (guint i = 0; options->apps != NULL && options->apps[i] != NULL; i++)
    if (dirty_config_is_python_app (options->apps[i]))
      return TRUE;
  return FALSE;
}

static GStrv
build_argv (guint                         worker_id,
            const DirtyWorkerProcOptions *options)
{
  GPtrArray *argv = g_ptr_array_new ();

  if (has_python_app (options))
    {
      /* the interpreter of the config, not the script's #! line */
      g_ptr_array_add (argv, g_strdup (options->python));
      g_ptr_array_add (argv, g_strdup (options->python_worker));
    }
  else
    g_ptr_array_add (argv, g_strdup (options->binary));
  g_ptr_array_add (argv, g_strdup ("--fd=3"));
  g_ptr_array_add (argv, g_strdup_printf ("--worker-id=%u", worker_id));
  g_ptr_array_add (argv, g_strdup_printf ("--threads=%u", options->threads));
  for (guint i = 0; options->app_path != NULL && options->app_path[i] != NULL; i++)
    g_ptr_array_add (argv, g_strconcat ("--app-path=", options->app_path[i], NULL));
  for (guint i = 0; options->apps != NULL && options->apps[i] != NULL; i++)
    g_ptr_array_add (argv, g_strconcat ("--app=", options->apps[i], NULL));
  if (options->hooks != NULL)
    g_ptr_array_add (argv, g_strconcat ("--hooks=", options->hooks, NULL));
  g_ptr_array_add (argv, NULL);
  return (GStrv) g_ptr_array_free (argv, FALSE);
}

static void dirty_worker_proc_closed_cb (DirtyConnection *connection,
                                         const GError    *error,
                                         gpointer         user_data);
static void dirty_worker_proc_wait_cb (GObject      *source,
                                       GAsyncResult *result,
                                       gpointer      user_data);
static gboolean
dirty_worker_proc_start_process (DirtyWorkerProc               *self,
                                 const DirtyWorkerProcOptions  *options,
                                 GError                       **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_auto(GStrv) argv = build_argv (self->id, options);
  g_autoptr(GSocket) socket = NULL;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "socketpair: %s", g_strerror (saved_errno));
      return FALSE;
    }
  socket = g_socket_new_from_fd (fds[0], error);
  if (socket == NULL)
    {
      close (fds[0]);
      close (fds[1]);
      return FALSE;
    }
  /* the worker is not the service: it must not talk to systemd */
  g_subprocess_launcher_unsetenv (launcher, "NOTIFY_SOCKET");
  g_subprocess_launcher_unsetenv (launcher, "WATCHDOG_USEC");
  g_subprocess_launcher_unsetenv (launcher, "WATCHDOG_PID");
  g_subprocess_launcher_take_fd (launcher, fds[1], 3);
  g_subprocess_launcher_set_child_setup (launcher, child_setup,
                                         GINT_TO_POINTER (getpid ()), NULL);
  self->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv, error);
  if (self->process == NULL)
    return FALSE;
  self->pid = g_ascii_strtoll (g_subprocess_get_identifier (self->process), NULL, 10);
  self->connection = dirty_connection_new (socket, options->limits);
  return TRUE;
}

DirtyWorkerProc *
dirty_worker_proc_new (guint                         worker_id,
                       const DirtyWorkerProcOptions *options)
{
  DirtyWorkerProc *self = g_object_new (DIRTY_TYPE_WORKER_PROC, NULL);

  self->id = worker_id;
  self->threads = MAX (options->threads, 1);
  if (options->limits != NULL)
    self->limits = *options->limits;
  else
    dirty_limits_init (&self->limits);
  return self;
}

/* Both modes, once the worker was asked to start: STARTING until its
 * HELLO, which must come before the heartbeat timeout. */
static void
dirty_worker_proc_begin (DirtyWorkerProc              *self,
                         const DirtyWorkerProcOptions *options)
{
  self->started = g_get_monotonic_time ();
  self->state = DIRTY_WORKER_PROC_STARTING;
  for (guint i = 0; options->apps != NULL && options->apps[i] != NULL; i++)
    g_hash_table_insert (self->apps, g_strdup (options->apps[i]), g_new0 (AppStatus, 1));
  self->watchdog = dirty_timer_new (dirty_worker_proc_watchdog_cb, self);
  dirty_timer_arm_at (self->watchdog,
                      self->started + DIRTY_WORKER_PROC_HEARTBEAT_TIMEOUT_S * G_USEC_PER_SEC);
}

DirtyWorkerProc *
dirty_worker_proc_spawn (guint                          worker_id,
                         const DirtyWorkerProcOptions  *options,
                         GError                       **error)
{
  g_autoptr(DirtyWorkerProc) self = dirty_worker_proc_new (worker_id, options);

  if (!dirty_worker_proc_start_process (self, options, error))
    return NULL;
  dirty_worker_proc_begin (self, options);
  dirty_connection_start (self->connection, g_main_context_get_thread_default (),
                          dirty_worker_proc_frame_cb, dirty_worker_proc_closed_cb, self);
  g_subprocess_wait_async (self->process, NULL, dirty_worker_proc_wait_cb,
                           g_object_ref (self));
  dirty_worker_proc_log (self, G_LOG_LEVEL_MESSAGE, "started");
  return g_steal_pointer (&self);
}

DirtyWorkerProc *
dirty_worker_proc_start_unit (guint                         worker_id,
                              const DirtyWorkerProcOptions *options,
                              DirtyUnitLauncher            *launcher)
{
  DirtyWorkerProc *self = dirty_worker_proc_new (worker_id, options);
  g_autofree char *unit = dirty_unit_launcher_unit_name (worker_id);
  g_autofree char *message = NULL;

  self->launcher = g_object_ref (launcher);
  self->unit_apps = g_strdupv ((char **) options->apps);
  self->unit_app_path = g_strdupv ((char **) options->app_path);
  self->hooks = g_strdup (options->hooks);
  dirty_worker_proc_begin (self, options);
  dirty_unit_launcher_expect (launcher, worker_id, self);
  dirty_unit_launcher_start_unit (launcher, self);
  message = g_strdup_printf ("starting %s", unit);
  dirty_worker_proc_log (self, G_LOG_LEVEL_MESSAGE, message);
  return self;
}

/* Unit mode: what a forked worker gets on its command line, as the
 * arbiter's HELLO: the unit's ExecStart= names only the socket and %i,
 * and the apps of a slot differ per worker (MODULE:TypeName:N) and per
 * reload, which no static unit file can say. */
static DirtyFrame *
dirty_worker_proc_settings_frame (DirtyWorkerProc *self)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "role");
  json_builder_add_string_value (builder, "arbiter");
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, DIRTY_PROTOCOL_VERSION);
  json_builder_set_member_name (builder, "worker_id");
  json_builder_add_int_value (builder, self->id);
  json_builder_set_member_name (builder, "threads");
  json_builder_add_int_value (builder, self->threads);
  json_builder_set_member_name (builder, "apps");
  json_builder_begin_array (builder);
  for (guint i = 0; self->unit_apps != NULL && self->unit_apps[i] != NULL; i++)
    json_builder_add_string_value (builder, self->unit_apps[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "app_path");
  json_builder_begin_array (builder);
  for (guint i = 0; self->unit_app_path != NULL && self->unit_app_path[i] != NULL; i++)
    json_builder_add_string_value (builder, self->unit_app_path[i]);
  json_builder_end_array (builder);
  if (self->hooks != NULL)
    {
      json_builder_set_member_name (builder, "hooks");
      json_builder_add_string_value (builder, self->hooks);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return dirty_frame_encode (DIRTY_FRAME_HELLO, 0, 0, 0, root, NULL);
}

void
dirty_worker_proc_attach (DirtyWorkerProc *self,
                          GSocket         *socket,
                          gint64           pid)
{
  g_autoptr(DirtyFrame) settings = NULL;

  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));
  g_return_if_fail (self->launcher != NULL && self->connection == NULL);

  if (self->state != DIRTY_WORKER_PROC_STARTING)
    return;
  /* the pid the previous arbiter served must be the socket's peer */
  if (self->adopted && self->pid != pid)
    {
      g_autofree char *reason = g_strdup_printf ("handoff: its connection's peer is pid %"
                                                 G_GINT64_FORMAT ", not the worker's", pid);

      dirty_worker_proc_kill (self, reason);
      return;
    }
  self->pid = pid;
  self->connection = dirty_connection_new (socket, &self->limits);
  if (self->adopted)
    {
      g_autoptr(DirtyWorkerProc) hold = g_object_ref (self);

      /* it said HELLO to the previous arbiter: its STATUS frames and
       * heartbeats follow, after what that one read and left */
      if (self->unread != NULL)
        dirty_connection_set_unread (self->connection, self->unread);
      g_clear_pointer (&self->unread, g_bytes_unref);
      self->state = DIRTY_WORKER_PROC_LIVE;
      dirty_connection_start (self->connection, g_main_context_get_thread_default (),
                              dirty_worker_proc_frame_cb, dirty_worker_proc_closed_cb, self);
      dirty_worker_proc_log (self, G_LOG_LEVEL_MESSAGE, "taken over from the previous arbiter "
                             "(peer credentials checked: its unit's cgroup)");
      g_signal_emit (self, dirty_worker_proc_signals[SIGNAL_APPS_CHANGED], 0);
      return;
    }
  settings = dirty_worker_proc_settings_frame (self);
  dirty_connection_send (self->connection, settings);
  dirty_connection_start (self->connection, g_main_context_get_thread_default (),
                          dirty_worker_proc_frame_cb, dirty_worker_proc_closed_cb, self);
  dirty_worker_proc_log (self, G_LOG_LEVEL_INFO,
                         "connected (peer credentials checked: its unit's cgroup)");
}

void
dirty_worker_proc_signal_group (DirtyWorkerProc *self,
                                int              signum)
{
  /* unit mode: everything in the unit's cgroup, whatever its groups */
  if (self->launcher != NULL)
    {
      dirty_unit_launcher_kill_unit (self->launcher, self->id, signum);
      return;
    }
  /* the whole process group (setpgid in child_setup); it keeps its id
   * while any member lives, so stragglers are reached after the leader */
  if (self->pid > 0 && kill (-(pid_t) self->pid, signum) < 0 && errno != ESRCH)
    dirty_worker_proc_log (self, G_LOG_LEVEL_WARNING, g_strerror (errno));
}

static void dirty_worker_proc_unit_inactive_cb (GObject      *source,
                                                GAsyncResult *result,
                                                gpointer      user_data);

/* Stops using the worker; its calls are taken over by the "lost" handler */
void
dirty_worker_proc_mark_lost (DirtyWorkerProc *self,
                             gboolean         close_connection)
{
  if (self->state == DIRTY_WORKER_PROC_LOST || self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  self->state = DIRTY_WORKER_PROC_LOST;
  /* the watchdog now makes sure it exits */
  dirty_timer_arm_at (self->watchdog, g_get_monotonic_time () + EXIT_GRACE_US);
  if (close_connection && self->connection != NULL)
    dirty_connection_close (self->connection);
  /* unit mode: no child to reap; the unit going inactive is its exit */
  if (self->launcher != NULL)
    {
      dirty_unit_launcher_forget (self->launcher, self->id, self);
      dirty_unit_launcher_wait_inactive_async (self->launcher, self->id,
                                               dirty_worker_proc_unit_inactive_cb,
                                               g_object_ref (self));
    }
  g_signal_emit (self, dirty_worker_proc_signals[SIGNAL_LOST], 0);
}

void
dirty_worker_proc_kill (DirtyWorkerProc *self,
                        const char      *reason)
{
  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));

  if (self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  if (reason != NULL)
    {
      g_autofree char *message = g_strdup_printf ("killing: %s", reason);
      dirty_worker_proc_log (self, G_LOG_LEVEL_WARNING, message);
    }
  self->killed = TRUE;
  dirty_worker_proc_signal_group (self, SIGKILL);
  /* a unit that never connected may still have its start job queued */
  if (self->launcher != NULL && self->pid == 0)
    dirty_unit_launcher_stop_unit (self->launcher, self->id);
  dirty_worker_proc_mark_lost (self, TRUE);
}

void
dirty_worker_proc_terminate (DirtyWorkerProc *self)
{
  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));

  if (self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  self->terminating = TRUE;
  dirty_worker_proc_signal_group (self, SIGTERM);
}

gboolean
dirty_worker_proc_watchdog_cb (gpointer user_data)
{
  DirtyWorkerProc *self = user_data;
  g_autoptr(DirtyWorkerProc) hold = g_object_ref (self);

  if (self->state == DIRTY_WORKER_PROC_LOST)
    {
      dirty_worker_proc_log (self, G_LOG_LEVEL_WARNING,
                             "killing: still running 5 s after losing its connection");
      self->killed = TRUE;
      dirty_worker_proc_signal_group (self, SIGKILL);
    }
  else
    dirty_worker_proc_kill (self, "no heartbeat for "
                            G_STRINGIFY (DIRTY_WORKER_PROC_HEARTBEAT_TIMEOUT_S) " s");
  return G_SOURCE_CONTINUE;
}

static void
log_exit (DirtyWorkerProc *self)
{
  g_autofree char *message = NULL;
  GLogLevelFlags level = G_LOG_LEVEL_MESSAGE;

  if (g_subprocess_get_if_exited (self->process))
    {
      int status = g_subprocess_get_exit_status (self->process);

      message = g_strdup_printf ("exited with status %d", status);
      if (status != 0 || !self->terminating)
        level = G_LOG_LEVEL_WARNING;
    }
  else if (g_subprocess_get_if_signaled (self->process))
    {
      int sig = g_subprocess_get_term_sig (self->process);

      message = g_strdup_printf ("killed by signal %d (%s)", sig, g_strsignal (sig));
      /* the SIGTERM or SIGKILL we sent (why was said then) is no news */
      if (!(self->terminating && sig == SIGTERM) && !(self->killed && sig == SIGKILL))
        level = G_LOG_LEVEL_WARNING;
    }
  else
    message = g_strdup ("exited");
  dirty_worker_proc_log (self, level, message);
}

static void
dirty_worker_proc_finish_exit (DirtyWorkerProc *self)
{
  dirty_worker_proc_mark_lost (self, TRUE);
  self->state = DIRTY_WORKER_PROC_EXITED;
  g_clear_pointer (&self->watchdog, dirty_timer_free);
  g_signal_emit (self, dirty_worker_proc_signals[SIGNAL_EXITED], 0);
}

static void
dirty_worker_proc_wait_cb (GObject      *source,
                           GAsyncResult *result,
                           gpointer      user_data)
{
  g_autoptr(DirtyWorkerProc) self = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  if (self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  log_exit (self);
  /* helpers it left behind in its group */
  dirty_worker_proc_signal_group (self, SIGKILL);
  dirty_worker_proc_finish_exit (self);
}

static void
dirty_worker_proc_unit_inactive_cb (GObject      *source,
                                    GAsyncResult *result,
                                    gpointer      user_data)
{
  g_autoptr(DirtyWorkerProc) self = user_data;

  dirty_unit_launcher_wait_inactive_finish (DIRTY_UNIT_LAUNCHER (source), result, NULL);
  if (self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  /* systemd stopped the rest of its cgroup (KillMode=control-group) */
  dirty_worker_proc_log (self, self->terminating ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_WARNING,
                         "its unit is inactive");
  dirty_worker_proc_finish_exit (self);
}

static void
dirty_worker_proc_closed_cb (DirtyConnection *connection,
                             const GError    *error,
                             gpointer         user_data)
{
  DirtyWorkerProc *self = user_data;
  g_autoptr(DirtyWorkerProc) hold = NULL;

  if (self->state == DIRTY_WORKER_PROC_LOST || self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  hold = g_object_ref (self);
  dirty_worker_proc_log (self, self->terminating ? G_LOG_LEVEL_INFO : G_LOG_LEVEL_WARNING,
                         error != NULL ? error->message : "closed its connection");
  /* a worker without its connection is of no use: it exits on EOF (and
   * may be closing its apps); the watchdog sends SIGKILL if it does not */
  dirty_worker_proc_mark_lost (self, FALSE);
}

void
dirty_worker_proc_set_reply_func (DirtyWorkerProc          *self,
                                  DirtyWorkerProcReplyFunc  func,
                                  gpointer                  user_data)
{
  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));

  self->reply_func = func;
  self->reply_data = user_data;
}

void
dirty_worker_proc_run_job (DirtyWorkerProc *self,
                           DirtyJob        *job)
{
  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));
  g_return_if_fail (job->worker == NULL);

  job->worker = self;
  job->worker_rid = ++self->next_rid;
  job->state = DIRTY_JOB_RUNNING;
  job->cancel_sent = FALSE;
  g_hash_table_insert (self->in_flight, &job->worker_rid, dirty_job_ref (job));
  dirty_connection_send_with_id (self->connection, job->frame, job->worker_rid,
                                 dirty_job_remaining_ms (job, g_get_monotonic_time ()));
}

void
dirty_worker_proc_credit_job (DirtyWorkerProc *self,
                              DirtyJob        *job,
                              guint32          n)
{
  g_autoptr(DirtyFrame) frame = NULL;

  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));

  if (job->worker != self || job->cancel_sent)
    return;
  frame = dirty_frame_new_empty (DIRTY_FRAME_CREDIT, job->worker_rid, n);
  dirty_connection_send (self->connection, frame);
}

void
dirty_worker_proc_request_backtrace (DirtyWorkerProc *self,
                                     DirtyJob        *job)
{
  g_autoptr(DirtyFrame) frame = NULL;

  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));
  g_return_if_fail (job->worker == self);

  frame = dirty_frame_new_empty (DIRTY_FRAME_BACKTRACE, job->worker_rid, 0);
  dirty_connection_send (self->connection, frame);
}

void
dirty_worker_proc_cancel_job (DirtyWorkerProc *self,
                              DirtyJob        *job)
{
  g_autoptr(DirtyFrame) frame = NULL;

  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));

  if (job->worker != self || job->cancel_sent)
    return;
  job->cancel_sent = TRUE;
  frame = dirty_frame_new_empty (DIRTY_FRAME_CANCEL, job->worker_rid, 0);
  dirty_connection_send (self->connection, frame);
}

GPtrArray *
dirty_worker_proc_steal_jobs (DirtyWorkerProc *self)
{
  GPtrArray *jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_job_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DirtyJob *job = value;

      job->worker = NULL;
      g_ptr_array_add (jobs, job);
      g_hash_table_iter_steal (&iter);
    }
  return jobs;
}

guint
dirty_worker_proc_get_id (DirtyWorkerProc *self)
{
  return self->id;
}

gint64
dirty_worker_proc_get_pid (DirtyWorkerProc *self)
{
  return self->pid;
}

DirtyWorkerProcState
dirty_worker_proc_get_state (DirtyWorkerProc *self)
{
  return self->state;
}

gint64
dirty_worker_proc_get_started (DirtyWorkerProc *self)
{
  return self->started;
}

guint
dirty_worker_proc_get_load (DirtyWorkerProc *self)
{
  return g_hash_table_size (self->in_flight);
}

guint
dirty_worker_proc_get_free_slots (DirtyWorkerProc *self)
{
  guint load = g_hash_table_size (self->in_flight);

  if (self->state != DIRTY_WORKER_PROC_LIVE || self->retiring || load >= self->threads)
    return 0;
  return self->threads - load;
}

DirtyAppState
dirty_worker_proc_get_app_state (DirtyWorkerProc  *self,
                                 const char       *app,
                                 const char      **error_message)
{
  AppStatus *status = g_hash_table_lookup (self->apps, app);

  if (error_message != NULL)
    *error_message = status ? status->error : NULL;
  if (status == NULL)
    return DIRTY_APP_STATE_UNAVAILABLE;
  return status->state;
}

guint64
dirty_worker_proc_get_served (DirtyWorkerProc *self)
{
  return self->served;
}

guint64
dirty_worker_proc_get_errors (DirtyWorkerProc *self)
{
  return self->errors;
}

GPtrArray *
dirty_worker_proc_list_apps (DirtyWorkerProc *self)
{
  return dirty_util_sorted_keys (self->apps);
}

void
dirty_worker_proc_set_retiring (DirtyWorkerProc *self)
{
  g_return_if_fail (DIRTY_IS_WORKER_PROC (self));

  self->retiring = TRUE;
}

gboolean
dirty_worker_proc_is_retiring (DirtyWorkerProc *self)
{
  return self->retiring;
}

gboolean
dirty_worker_proc_was_stopped (DirtyWorkerProc *self)
{
  return self->terminating || self->killed;
}

gboolean
dirty_worker_proc_has_app (DirtyWorkerProc *self,
                           const char      *app)
{
  return g_hash_table_contains (self->apps, app);
}

int
dirty_worker_proc_get_exit_status (DirtyWorkerProc *self)
{
  if (self->state != DIRTY_WORKER_PROC_EXITED || self->process == NULL ||
      !g_subprocess_get_if_exited (self->process))
    return -1;
  return g_subprocess_get_exit_status (self->process);
}

int
dirty_worker_proc_get_term_signal (DirtyWorkerProc *self)
{
  if (self->state != DIRTY_WORKER_PROC_EXITED || self->process == NULL ||
      !g_subprocess_get_if_signaled (self->process))
    return 0;
  return g_subprocess_get_term_sig (self->process);
}

gint64
dirty_worker_proc_read_rss (DirtyWorkerProc *self)
{
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;

  if (self->pid <= 0 || self->state == DIRTY_WORKER_PROC_EXITED)
    return -1;
  path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/statm", self->pid);
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  fields = g_strsplit (text, " ", 3);
  if (g_strv_length (fields) < 2)
    return -1;
  return g_ascii_strtoll (fields[1], NULL, 10) * sysconf (_SC_PAGESIZE);
}
