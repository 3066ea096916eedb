/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <glib-unix.h>

#include "dirty-poller.h"
#include "dirty-worker-private.h"

/**
 * DirtyWorker:
 *
 * The worker runtime: the process that loads apps and serves their calls
 * for an arbiter, over one connection (the `dirty-worker` program is a
 * thin main around it; other hosts can embed it).
 *
 * [method@Dirty.Worker.run] speaks the worker side of the wire protocol.
 * It sends HELLO with every app's state, then runs each app's
 * [vfunc@Dirty.App.init] in turn on a helper thread while the main loop
 * keeps sending a HEARTBEAT every second. An app whose init() fails is
 * reported as `failed` and retried with exponential backoff (1 s, 2 s,
 * 4 s ... up to 60 s); every state change is sent as STATUS.
 *
 * Each REQUEST becomes a [class@Dirty.Call]. A %DIRTY_ACTION_SYNC action
 * runs on one of `n_threads` dedicated threads (so that many blocking
 * calls really run at once); a %DIRTY_ACTION_ASYNC action runs on the main
 * loop. Those threads take turns with the thread that called
 * [method@Dirty.Worker.run] at running the main loop: the one that reads
 * a sync call runs it, and the main loop goes on in another thread (at
 * once if a frame comes, within a millisecond otherwise). So main-loop
 * callbacks, async actions included, may run on any of these threads,
 * one at a time, with the main context as their thread-default. CANCEL,
 * the request's deadline and shutdown fire the call's cancellable.
 * Every REQUEST gets exactly one RESPONSE or ERROR; a REQUEST with the
 * STREAM flag gets CHUNKs, within its credit window, then exactly one
 * END or ERROR.
 *
 * The worker stops when the arbiter closes the connection, on SIGTERM or
 * SIGINT, or on [method@Dirty.Worker.stop]: it cancels the calls in
 * flight, waits for them (for a bounded time), calls
 * [vfunc@Dirty.App.close] on every app and returns.
 *
 * Since: 0.1
 */

#define HEARTBEAT_INTERVAL_MS 1000
/* How long shutdown waits for cancelled calls and a running init() */
#define SHUTDOWN_GRACE_MS     5000
/* How long it then waits for the last replies to be written */
#define FLUSH_GRACE_MS        1000
#define MAX_THREADS           1024

G_DEFINE_FINAL_TYPE (DirtyWorker, dirty_worker, G_TYPE_OBJECT)

static void
dirty_worker_finalize (GObject *object)
{
  DirtyWorker *self = DIRTY_WORKER (object);

  g_ptr_array_unref (self->apps);
  g_hash_table_unref (self->apps_by_name);
  g_mutex_clear (&self->stop_lock);
  g_mutex_clear (&self->send_lock);
  g_mutex_clear (&self->sent_lock);

  G_OBJECT_CLASS (dirty_worker_parent_class)->finalize (object);
}

static void
dirty_worker_class_init (DirtyWorkerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_worker_finalize;

  /**
   * DirtyWorker::worker-init:
   * @self: the #DirtyWorker
   *
   * Emitted once in [method@Dirty.Worker.run], on the main loop, when the
   * first init() of every app has finished (succeeded, or failed and is
   * being retried): the moment of the `dirty_worker_init` hook
   * (see `dirty-hooks.h`). There is no signal for `dirty_post_fork`: that
   * moment comes before any app exists, so the worker program calls the
   * hook itself.
   *
   * Since: 0.1
   */
  g_signal_new ("worker-init", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dirty_worker_init (DirtyWorker *self)
{
  self->n_threads = 1;
  self->apps = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_worker_app_free);
  self->apps_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_mutex_init (&self->stop_lock);
  g_mutex_init (&self->send_lock);
  g_mutex_init (&self->sent_lock);
  g_queue_init (&self->init_queue);
}

/**
 * dirty_worker_new:
 * @n_threads: how many calls of %DIRTY_ACTION_SYNC actions may run at once
 *   (`dirty_threads`); at least 1
 *
 * Returns: (transfer full): a new worker with no apps
 */
DirtyWorker *
dirty_worker_new (guint n_threads)
{
  DirtyWorker *self;

  g_return_val_if_fail (n_threads >= 1 && n_threads <= MAX_THREADS, NULL);

  self = g_object_new (DIRTY_TYPE_WORKER, NULL);
  self->n_threads = n_threads;
  return self;
}

/**
 * dirty_worker_get_n_threads:
 * @self: a #DirtyWorker
 *
 * Returns: the number of threads for %DIRTY_ACTION_SYNC actions
 */
guint
dirty_worker_get_n_threads (DirtyWorker *self)
{
  g_return_val_if_fail (DIRTY_IS_WORKER (self), 0);
  return self->n_threads;
}

/* HELLO, STATUS and heartbeat */

/* The HELLO and STATUS body: {"role", "pid", "worker_id", "threads",
 * "apps": {NAME: {"state", "error"?, "retry_ms"?}}} */
static JsonNode *
build_status (DirtyWorker *self)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "role");
  json_builder_add_string_value (builder, "worker");
  json_builder_set_member_name (builder, "pid");
  json_builder_add_int_value (builder, self->pid);
  json_builder_set_member_name (builder, "worker_id");
  json_builder_add_int_value (builder, self->worker_id);
  json_builder_set_member_name (builder, "threads");
  json_builder_add_int_value (builder, self->n_threads);
  json_builder_set_member_name (builder, "apps");
  json_builder_begin_object (builder);
  dirty_worker_add_app_states (self, builder);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

void
dirty_worker_send_status (DirtyWorker    *self,
                          DirtyFrameType  type)
{
  g_autoptr(JsonNode) root = build_status (self);
  g_autoptr(DirtyFrame) frame = dirty_frame_encode (type, 0, 0, 0, root, NULL);

  dirty_worker_send_frame (self, frame);
}

static gboolean
heartbeat_cb (gpointer user_data)
{
  DirtyWorker *self = user_data;
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 0, 0);

  dirty_worker_send_frame (self, frame);
  return G_SOURCE_CONTINUE;
}

/* Shutdown */

void
dirty_worker_check_drained (DirtyWorker *self)
{
  if (self->shutting_down && g_hash_table_size (self->in_flight) == 0 && !self->init_running)
    g_main_loop_quit (self->loop);
}

static gboolean
grace_expired_cb (gpointer user_data)
{
  DirtyWorker *self = user_data;

  g_warning ("%u calls did not end within %u ms of shutdown; exiting without them",
             g_hash_table_size (self->in_flight), SHUTDOWN_GRACE_MS);
  self->forced = TRUE;
  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static void
begin_shutdown (DirtyWorker *self)
{
  if (self->shutting_down)
    return;
  self->shutting_down = TRUE;
  g_debug ("Worker %u shutting down", self->worker_id);

  dirty_worker_stop_app_init (self);
  /* the drain counts calls in flight: no reply may wait to be forgotten */
  dirty_worker_forget_sent (self, TRUE);
  dirty_worker_cancel_all_calls (self);

  self->grace_source = g_timeout_source_new (SHUTDOWN_GRACE_MS);
  g_source_set_callback (self->grace_source, grace_expired_cb, self, NULL);
  g_source_attach (self->grace_source, self->context);
  dirty_worker_check_drained (self);
}

static gboolean
signal_cb (gpointer user_data)
{
  DirtyWorker *self = user_data;

  g_message ("Worker %u received a stop signal; shutting down", self->worker_id);
  begin_shutdown (self);
  return G_SOURCE_CONTINUE;
}

static void
connection_closed_cb (DirtyConnection *connection,
                      const GError    *error,
                      gpointer         user_data)
{
  DirtyWorker *self = user_data;

  if (error != NULL)
    g_message ("Worker %u lost its connection to the arbiter: %s",
               self->worker_id, error->message);
  else
    g_debug ("Worker %u: the arbiter closed the connection", self->worker_id);
  begin_shutdown (self);
}

/* Frames in */

static void
connection_frame_cb (DirtyConnection *connection,
                     DirtyFrame      *frame,
                     gpointer         user_data)
{
  DirtyWorker *self = user_data;

  switch (frame->header.type)
    {
    case DIRTY_FRAME_REQUEST:
      dirty_worker_handle_request (self, frame);
      break;
    case DIRTY_FRAME_CANCEL:
      dirty_worker_handle_cancel (self, frame);
      break;
    case DIRTY_FRAME_CREDIT:
      dirty_worker_handle_credit (self, frame);
      break;
    case DIRTY_FRAME_BACKTRACE:
      dirty_worker_handle_backtrace (self, frame);
      break;
    case DIRTY_FRAME_HELLO:
    case DIRTY_FRAME_HEARTBEAT:
      /* Nothing to do in v1; accepted so a newer arbiter can send them. */
      break;
    default:
      g_debug ("Worker %u ignores a %s frame from the arbiter",
               self->worker_id, dirty_frame_type_to_string (frame->header.type));
      break;
    }
}

/* Running */

static GSource *
attach_signal (DirtyWorker *self,
               int          signum)
{
  GSource *source = g_unix_signal_source_new (signum);

  g_source_set_callback (source, signal_cb, self, NULL);
  g_source_attach (source, self->context);
  return source;
}

/* A forked worker starts with its stop signals blocked (the arbiter's
 * child_setup), so that one sent while it starts waits for the handlers
 * attached here rather than kills it half-way. */
static void
unblock_stop_signals (void)
{
  sigset_t stop;

  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  pthread_sigmask (SIG_UNBLOCK, &stop, NULL);
}

static gboolean
start (DirtyWorker *self,
       int          fd,
       GError     **error)
{
  g_autoptr(GSocket) gsocket = NULL;
  DirtyLimits limits;

  /* first, before any thread starts: threads inherit the signal mask, and
   * what an app's thread spawns must not start with SIGTERM blocked. The
   * sources dispatch only once the loop runs. */
  self->sigterm_source = attach_signal (self, SIGTERM);
  self->sigint_source = attach_signal (self, SIGINT);
  unblock_stop_signals ();
  gsocket = g_socket_new_from_fd (fd, error);
  if (gsocket == NULL)
    {
      close (fd);
      return FALSE;
    }
  self->pool = dirty_worker_pool_new (self->n_threads, dirty_worker_sync_call_thread, self,
                                      g_object_unref, error);
  if (self->pool == NULL)
    return FALSE;

  self->backtrace = dirty_worker_backtrace_new (self);
  dirty_worker_start_forgetting (self);
  self->deadline_source = dirty_worker_deadline_source_new (self);
  /* Requests come as the arbiter took them from its clients, whose
   * max_body its config may raise past the default: a request it
   * accepted must not cost this worker its connection. The arbiter is
   * trusted; the wire's 32-bit lengths bound the body. (Results and
   * chunks keep to the defaults the arbiter reads them with.) */
  dirty_limits_init (&limits);
  limits.max_body = G_MAXUINT32;
  self->connection = dirty_connection_new (gsocket, &limits);
  dirty_connection_start (self->connection, self->context,
                          connection_frame_cb, connection_closed_cb, self);
  dirty_worker_send_status (self, DIRTY_FRAME_HELLO);

  self->heartbeat_source = g_timeout_source_new (HEARTBEAT_INTERVAL_MS);
  g_source_set_callback (self->heartbeat_source, heartbeat_cb, self, NULL);
  g_source_attach (self->heartbeat_source, self->context);

  dirty_worker_start_app_init (self);
  return TRUE;
}

/* Lets the last replies (cancellations, mostly) reach the arbiter. */
static void
flush_connection (DirtyWorker *self)
{
  gint64 end = g_get_monotonic_time () + FLUSH_GRACE_MS * 1000;

  /* a frame callback may stop the worker: its batch waits for nobody */
  dirty_connection_batch_flush ();
  while (self->connection != NULL &&
         !dirty_connection_is_closed (self->connection) &&
         dirty_connection_get_queued_bytes (self->connection) > 0 &&
         g_get_monotonic_time () < end)
    g_main_context_iteration (self->context, TRUE);
}


static void
stop_everything (DirtyWorker *self)
{
  flush_connection (self);
  dirty_worker_clear_source (&self->heartbeat_source);
  dirty_worker_clear_source (&self->deadline_source);
  dirty_worker_clear_source (&self->grace_source);
  g_clear_pointer (&self->backtrace, dirty_worker_backtrace_free);
  if (self->connection)
    dirty_connection_close (self->connection);

  /* After a clean drain every call has ended: wait for the threads to
   * return. After a forced one, some never will: do not wait for them. */
  if (self->pool)
    dirty_worker_pool_free (g_steal_pointer (&self->pool), self->forced, !self->forced);
  /* the apps close only once no call of theirs is counted active */
  dirty_worker_stop_forgetting (self);
  dirty_worker_close_apps (self);
  /* Last: while a stop signal's source is attached, its handler is GLib's;
   * without one, SIGTERM's default action would kill a worker that is
   * already stopping (the arbiter stopping after a reload retired it),
   * in the middle of its threads' ends and its apps' close(). */
  dirty_worker_clear_source (&self->sigterm_source);
  dirty_worker_clear_source (&self->sigint_source);

  g_mutex_lock (&self->send_lock);
  g_clear_object (&self->connection);
  g_mutex_unlock (&self->send_lock);
  /* Entries left after a forced shutdown keep their calls alive; the
   * threads still running them hold their own references. */
  g_clear_pointer (&self->in_flight, g_hash_table_unref);
  g_clear_object (&self->init_cancellable);
  g_queue_clear (&self->init_queue);
  g_clear_pointer (&self->worker_id_str, g_free);
}

static gboolean
stop_in_context_cb (gpointer user_data)
{
  DirtyWorker *self = user_data;

  if (self->loop != NULL)
    begin_shutdown (self);
  return G_SOURCE_REMOVE;
}

/**
 * dirty_worker_run:
 * @self: a #DirtyWorker
 * @fd: a connected stream socket to the arbiter; the worker takes it over
 *   and closes it
 * @worker_id: the worker's number, sent in HELLO and used in logs
 *
 * Serves the arbiter on @fd until it closes the connection, until SIGTERM
 * or SIGINT, or until [method@Dirty.Worker.stop]. Runs a main loop on the
 * thread-default main context of the calling thread, which is where
 * %DIRTY_ACTION_ASYNC actions run. Unless the calling thread holds that
 * context (pushed with g_main_context_push_thread_default ()), the
 * worker's call threads take turns at running it (see
 * [class@Dirty.Worker]). The worker then also sets that context's poll
 * function (g_main_context_set_poll_func ()), unless it already polls
 * an fd of the program's or has a poll function of its own, so that
 * each wake-up is one epoll_wait (); it stays set, and polls as
 * g_poll() does whenever a source of the program has an fd attached.
 *
 * Call it once per worker. It handles SIGTERM and SIGINT itself while it
 * runs. When it returns, GLib gives both their default action again,
 * unless the program holds a source of its own for each (see
 * g_unix_signal_source_new()), as `dirty-worker` does so that a stop
 * signal that comes while it exits does not kill it.
 *
 * Returns: the exit status for the process: 0 after an orderly shutdown,
 *   1 if the worker could not start
 */
int
dirty_worker_run (DirtyWorker *self,
                  int          fd,
                  guint        worker_id)
{
  g_autoptr(GError) error = NULL;
  gboolean stop_requested;

  g_return_val_if_fail (DIRTY_IS_WORKER (self), 1);
  g_return_val_if_fail (fd >= 0, 1);
  g_return_val_if_fail (self->loop == NULL, 1);
  g_return_val_if_fail (!self->has_run, 1);

  self->has_run = TRUE;
  self->context = g_main_context_ref_thread_default ();
  /* a context the call threads take turns at: each wake-up is then one
   * epoll_wait () while it polls nothing but the connection */
  if (!g_main_context_is_owner (self->context))
    dirty_poller_own_context (self->context);
  self->worker_id = worker_id;
  self->worker_id_str = g_strdup_printf ("%u", worker_id);
  self->pid = getpid ();
  self->in_flight = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) dirty_worker_in_flight_free);
  self->init_cancellable = g_cancellable_new ();
  self->shutting_down = FALSE;
  self->forced = FALSE;

  g_mutex_lock (&self->stop_lock);
  /* running from the start: dirty_worker_pool_run () runs it until it
   * quits, in turns among threads */
  self->loop = g_main_loop_new (self->context, TRUE);
  stop_requested = self->stop_requested;
  g_mutex_unlock (&self->stop_lock);

  if (!start (self, fd, &error))
    {
      g_critical ("Worker %u could not start: %s", worker_id, error->message);
      stop_everything (self);
      g_mutex_lock (&self->stop_lock);
      g_clear_pointer (&self->loop, g_main_loop_unref);
      g_mutex_unlock (&self->stop_lock);
      g_clear_pointer (&self->context, g_main_context_unref);
      return 1;
    }
  if (stop_requested)
    begin_shutdown (self);

  dirty_worker_pool_run (self->pool, self->context, self->loop, fd);
  stop_everything (self);

  g_mutex_lock (&self->stop_lock);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  self->stop_requested = FALSE;
  g_mutex_unlock (&self->stop_lock);
  g_clear_pointer (&self->context, g_main_context_unref);
  return 0;
}

/**
 * dirty_worker_stop:
 * @self: a #DirtyWorker
 *
 * Asks a running worker to shut down as it does on SIGTERM: cancel the
 * calls in flight, wait for them, close the apps, and return from
 * [method@Dirty.Worker.run]. May be called from any thread; before run()
 * it makes run() shut down as soon as it has started.
 */
void
dirty_worker_stop (DirtyWorker *self)
{
  g_return_if_fail (DIRTY_IS_WORKER (self));

  g_mutex_lock (&self->stop_lock);
  if (self->loop == NULL)
    self->stop_requested = TRUE;
  else
    {
      /* a source, not g_main_context_invoke (): between two threads'
       * turns at the context nobody holds it, and invoke () would run
       * the shutdown here, in the middle of an action perhaps */
      g_autoptr(GSource) source = g_idle_source_new ();

      g_source_set_callback (source, stop_in_context_cb, g_object_ref (self), g_object_unref);
      g_source_set_static_name (source, "[dirty-worker] stop");
      g_source_attach (source, self->context);
    }
  g_mutex_unlock (&self->stop_lock);
}
