/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <unistd.h>

#include <glib-unix.h>
#include <glib/gi18n-lib.h>

#include "dirty-app-loader-private.h"
#include "dirty-call-private.h"
#include "dirty-connection.h"
#include "dirty-message.h"
#include "dirty-worker.h"

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
 * loop. CANCEL, the request's deadline and shutdown fire the call's
 * cancellable. Every REQUEST gets exactly one RESPONSE or ERROR; a
 * REQUEST with the STREAM flag gets CHUNKs, within its credit window,
 * then exactly one END or ERROR.
 *
 * The worker stops when the arbiter closes the connection, on SIGTERM or
 * SIGINT, or on [method@Dirty.Worker.stop]: it cancels the calls in
 * flight, waits for them (for a bounded time), calls
 * [vfunc@Dirty.App.close] on every app and returns.
 *
 * Since: 0.1
 */

#define HEARTBEAT_INTERVAL_MS 1000
#define INIT_RETRY_MIN_MS     1000
#define INIT_RETRY_MAX_MS     60000
/* How long shutdown waits for cancelled calls and a running init() */
#define SHUTDOWN_GRACE_MS     5000
/* How long it then waits for the last replies to be written */
#define FLUSH_GRACE_MS        1000
#define MAX_THREADS           1024

typedef enum {
  APP_STARTING,
  APP_READY,
  APP_FAILED,
  APP_UNAVAILABLE,
} AppState;

static const char *const app_state_names[] = {
  [APP_STARTING] = "starting",
  [APP_READY] = "ready",
  [APP_FAILED] = "failed",
  [APP_UNAVAILABLE] = "unavailable",
};

typedef struct {
  DirtyWorker *worker;    /* unowned: the worker owns its apps */
  char *name;
  DirtyApp *app;          /* NULL when unavailable */
  AppState state;
  char *error;            /* why it is failed or unavailable */
  guint retry_ms;         /* delay before the next init attempt */
  guint next_retry_ms;
  GSource *retry_source;
  gboolean init_running;
  guint n_active;         /* calls handed to the app, not yet replied */
} WorkerApp;

/* Why a call's cancellable fired, for the error code of its reply */
typedef enum {
  CANCEL_NONE,
  CANCEL_BY_PEER,
  CANCEL_BY_DEADLINE,
  CANCEL_BY_SHUTDOWN,
} CancelReason;

typedef struct {
  guint64 id;
  WorkerApp *wapp;
  DirtyCall *call;
  GSource *deadline_source;
  CancelReason reason;
  gboolean completed;     /* a stream's outcome is in; it ends once drained */
} InFlight;

struct _DirtyWorker
{
  GObject parent_instance;

  guint n_threads;
  GPtrArray *apps;                 /* WorkerApp*, in load order */
  GHashTable *apps_by_name;        /* name -> WorkerApp* */

  /* Only while run() runs, and only touched from its main context */
  GMainContext *context;
  GMainLoop *loop;
  DirtyConnection *connection;
  GThreadPool *pool;
  GHashTable *in_flight;           /* guint64* id -> InFlight* */
  guint worker_id;
  char *worker_id_str;
  gint64 pid;
  GSource *heartbeat_source;
  GSource *sigterm_source;
  GSource *sigint_source;
  GSource *grace_source;
  GCancellable *init_cancellable;
  GQueue init_queue;               /* WorkerApp* waiting for init() */
  gboolean init_running;
  gboolean shutting_down;
  gboolean forced;
  gboolean has_run;                /* run() is once per worker */

  /* dirty_worker_stop() may come from any thread */
  GMutex stop_lock;
  gboolean stop_requested;
};

G_DEFINE_FINAL_TYPE (DirtyWorker, dirty_worker, G_TYPE_OBJECT)

static void begin_shutdown (DirtyWorker *self);
static void start_next_init (DirtyWorker *self);

static void
worker_app_free (WorkerApp *wapp)
{
  if (wapp->retry_source)
    {
      g_source_destroy (wapp->retry_source);
      g_source_unref (wapp->retry_source);
    }
  g_clear_object (&wapp->app);
  g_free (wapp->name);
  g_free (wapp->error);
  g_free (wapp);
}

static void
in_flight_free (InFlight *entry)
{
  if (entry->deadline_source)
    {
      g_source_destroy (entry->deadline_source);
      g_source_unref (entry->deadline_source);
    }
  /* async sends still waiting for credit hold the call: fail them */
  if (entry->call != NULL && dirty_call_get_stream (entry->call) != NULL)
    dirty_call_stream_close (dirty_call_get_stream (entry->call));
  g_clear_object (&entry->call);
  g_free (entry);
}

static void
dirty_worker_finalize (GObject *object)
{
  DirtyWorker *self = DIRTY_WORKER (object);

  g_ptr_array_unref (self->apps);
  g_hash_table_unref (self->apps_by_name);
  g_mutex_clear (&self->stop_lock);

  G_OBJECT_CLASS (dirty_worker_parent_class)->finalize (object);
}

static void
dirty_worker_class_init (DirtyWorkerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_worker_finalize;
}

static void
dirty_worker_init (DirtyWorker *self)
{
  self->n_threads = 1;
  self->apps = g_ptr_array_new_with_free_func ((GDestroyNotify) worker_app_free);
  self->apps_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_mutex_init (&self->stop_lock);
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

static WorkerApp *
add_worker_app (DirtyWorker *self,
                const char  *name,
                DirtyApp    *app,
                const char  *load_error)
{
  WorkerApp *wapp = g_hash_table_lookup (self->apps_by_name, name);

  if (wapp != NULL)
    {
      /* Loading the same app twice: the later one wins. */
      g_hash_table_remove (self->apps_by_name, name);
      g_ptr_array_remove (self->apps, wapp);
    }

  wapp = g_new0 (WorkerApp, 1);
  wapp->worker = self;
  wapp->name = g_strdup (name);
  wapp->app = app ? g_object_ref (app) : NULL;
  wapp->state = app ? APP_STARTING : APP_UNAVAILABLE;
  wapp->error = g_strdup (load_error);
  wapp->next_retry_ms = INIT_RETRY_MIN_MS;
  g_ptr_array_add (self->apps, wapp);
  g_hash_table_insert (self->apps_by_name, wapp->name, wapp);
  return wapp;
}

/* The name an app goes by on the wire: MODULE:TypeName, without the
 * arbiter's ":N" worker count. */
static char *
canonical_app_name (const char *name)
{
  g_autofree char *module = NULL;
  g_autofree char *type_name = NULL;

  if (!dirty_app_loader_parse_name (name, &module, &type_name, NULL))
    return g_strdup (name);
  return g_strdup_printf ("%s:%s", module, type_name);
}

/**
 * dirty_worker_load_app:
 * @self: a #DirtyWorker
 * @name: the app's name, `MODULE:TypeName` (a trailing `:N` is ignored)
 * @app_path: (nullable) (array zero-terminated=1): directories to look for
 *   MODULE in; %NULL or empty for the installed app directory
 * @error: return location for a #GError
 *
 * Loads an app from a shared module and adds it to the worker. MODULE is
 * looked up in each directory of @app_path in turn, as `MODULE.so` then
 * `libMODULE.so`; an absolute path to a `.so` is opened as it is. The
 * module must export `<type_name>_get_type()` in the GType convention
 * (`DirtyEchoApp` → `dirty_echo_app_get_type`), returning a non-abstract
 * subclass of [class@Dirty.App]. The module is never unloaded.
 *
 * On failure the app is still recorded, as `unavailable` with the error
 * message, so that the arbiter learns why from the HELLO.
 *
 * Returns: %TRUE if the app was loaded
 */
gboolean
dirty_worker_load_app (DirtyWorker         *self,
                       const char          *name,
                       const char * const  *app_path,
                       GError             **error)
{
  g_autoptr(DirtyApp) app = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *canonical = NULL;

  g_return_val_if_fail (DIRTY_IS_WORKER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (self->loop == NULL, FALSE);

  canonical = canonical_app_name (name);
  app = dirty_app_loader_load (name, app_path, &local_error);
  if (app == NULL)
    {
      add_worker_app (self, canonical, NULL, local_error->message);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  add_worker_app (self, canonical, app, NULL);
  return TRUE;
}

/**
 * dirty_worker_add_app:
 * @self: a #DirtyWorker
 * @name: the name clients address the app by
 * @app: the app
 *
 * Adds an app made by the host rather than loaded from a module. Its
 * init() runs in [method@Dirty.Worker.run] like any other's. If @app has
 * no name yet, it gets @name.
 */
void
dirty_worker_add_app (DirtyWorker *self,
                      const char  *name,
                      DirtyApp    *app)
{
  g_return_if_fail (DIRTY_IS_WORKER (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (DIRTY_IS_APP (app));
  g_return_if_fail (self->loop == NULL);

  if (dirty_app_get_name (app) == NULL)
    g_object_set (app, "name", name, NULL);
  add_worker_app (self, name, app, NULL);
}

/**
 * dirty_worker_get_app:
 * @self: a #DirtyWorker
 * @name: an app name
 *
 * Returns: (transfer none) (nullable): the loaded app of that name, or
 *   %NULL if there is none or it could not be loaded
 */
DirtyApp *
dirty_worker_get_app (DirtyWorker *self,
                      const char  *name)
{
  g_autofree char *canonical = NULL;
  WorkerApp *wapp;

  g_return_val_if_fail (DIRTY_IS_WORKER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  wapp = g_hash_table_lookup (self->apps_by_name, name);
  if (wapp == NULL)
    {
      canonical = canonical_app_name (name);
      wapp = g_hash_table_lookup (self->apps_by_name, canonical);
    }
  return wapp ? wapp->app : NULL;
}

/* Frames out */

static void
send_frame (DirtyWorker *self,
            DirtyFrame  *frame)
{
  if (self->connection != NULL && !dirty_connection_is_closed (self->connection))
    dirty_connection_send (self->connection, frame);
}

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
  for (guint i = 0; i < self->apps->len; i++)
    {
      WorkerApp *wapp = g_ptr_array_index (self->apps, i);

      json_builder_set_member_name (builder, wapp->name);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "state");
      json_builder_add_string_value (builder, app_state_names[wapp->state]);
      if (wapp->state == APP_STARTING)
        {
          /* Not one of the spec's three states: an arbiter that does not
           * know it treats the app as not ready, and logs why. */
          json_builder_set_member_name (builder, "error");
          json_builder_add_string_value (builder, "init() has not finished yet");
        }
      else if (wapp->error && wapp->state != APP_READY)
        {
          json_builder_set_member_name (builder, "error");
          json_builder_add_string_value (builder, wapp->error);
        }
      if (wapp->state == APP_FAILED)
        {
          json_builder_set_member_name (builder, "retry_ms");
          json_builder_add_int_value (builder, wapp->retry_ms);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static void
send_status (DirtyWorker    *self,
             DirtyFrameType  type)
{
  g_autoptr(JsonNode) root = build_status (self);
  g_autoptr(DirtyFrame) frame = dirty_frame_encode (type, 0, 0, 0, root, NULL);

  send_frame (self, frame);
}

static void
send_error (DirtyWorker  *self,
            guint64       id,
            DirtyError    code,
            const char   *app,
            const char   *action,
            const char   *message)
{
  g_autoptr(GError) error = dirty_error_new_full (code, app, action, NULL, self->pid, message);
  g_autoptr(DirtyFrame) frame = dirty_frame_new_error (id, error, app, action, self->pid);

  send_frame (self, frame);
}

static gboolean
heartbeat_cb (gpointer user_data)
{
  DirtyWorker *self = user_data;
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 0, 0);

  send_frame (self, frame);
  return G_SOURCE_CONTINUE;
}

/* Shutdown */

static void
check_drained (DirtyWorker *self)
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
  g_autoptr(GPtrArray) calls = NULL;
  GHashTableIter iter;
  gpointer value;

  if (self->shutting_down)
    return;
  self->shutting_down = TRUE;
  g_debug ("Worker %u shutting down", self->worker_id);

  g_cancellable_cancel (self->init_cancellable);
  g_queue_clear (&self->init_queue);
  for (guint i = 0; i < self->apps->len; i++)
    {
      WorkerApp *wapp = g_ptr_array_index (self->apps, i);

      if (wapp->retry_source)
        {
          g_source_destroy (wapp->retry_source);
          g_clear_pointer (&wapp->retry_source, g_source_unref);
        }
    }

  /* Cancel outside the iteration: a cancelled handler may complete its
   * call at once, and must not find the table half-walked. */
  calls = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      InFlight *entry = value;

      if (entry->reason == CANCEL_NONE)
        entry->reason = CANCEL_BY_SHUTDOWN;
      g_ptr_array_add (calls, g_object_ref (entry->call));
    }
  for (guint i = 0; i < calls->len; i++)
    g_cancellable_cancel (dirty_call_get_cancellable (g_ptr_array_index (calls, i)));

  self->grace_source = g_timeout_source_new (SHUTDOWN_GRACE_MS);
  g_source_set_callback (self->grace_source, grace_expired_cb, self, NULL);
  g_source_attach (self->grace_source, self->context);
  check_drained (self);
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

/* App init, one app at a time on a helper thread */

static void
init_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  WorkerApp *wapp = task_data;
  GError *error = NULL;

  if (dirty_app_init (wapp->app, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
retry_init_cb (gpointer user_data)
{
  WorkerApp *wapp = user_data;
  DirtyWorker *self = wapp->worker;

  g_clear_pointer (&wapp->retry_source, g_source_unref);
  g_queue_push_tail (&self->init_queue, wapp);
  start_next_init (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (DirtyWorker *self,
                WorkerApp   *wapp)
{
  wapp->retry_ms = wapp->next_retry_ms;
  wapp->next_retry_ms = MIN (wapp->next_retry_ms * 2, INIT_RETRY_MAX_MS);

  wapp->retry_source = g_timeout_source_new (wapp->retry_ms);
  g_source_set_callback (wapp->retry_source, retry_init_cb, wapp, NULL);
  g_source_attach (wapp->retry_source, self->context);
}

static void
init_done_cb (GObject      *source_object,
              GAsyncResult *result,
              gpointer      user_data)
{
  DirtyWorker *self = DIRTY_WORKER (source_object);
  WorkerApp *wapp = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  self->init_running = FALSE;
  wapp->init_running = FALSE;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      wapp->state = APP_READY;
      g_clear_pointer (&wapp->error, g_free);
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_INFO,
                        "DIRTY_APP", wapp->name,
                        "DIRTY_WORKER_ID", self->worker_id_str,
                        "MESSAGE", "App %s is ready", wapp->name);
    }
  else if (!self->shutting_down)
    {
      wapp->state = APP_FAILED;
      g_free (wapp->error);
      wapp->error = g_strdup (error->message);
      schedule_retry (self, wapp);
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                        "DIRTY_APP", wapp->name,
                        "DIRTY_WORKER_ID", self->worker_id_str,
                        "MESSAGE", "App %s failed to initialise: %s; retrying in %u ms",
                        wapp->name, error->message, wapp->retry_ms);
    }

  if (!self->shutting_down)
    send_status (self, DIRTY_FRAME_STATUS);
  start_next_init (self);
  check_drained (self);
}

static void
start_next_init (DirtyWorker *self)
{
  g_autoptr(GTask) task = NULL;
  WorkerApp *wapp;

  if (self->init_running || self->shutting_down)
    return;
  wapp = g_queue_pop_head (&self->init_queue);
  if (wapp == NULL)
    return;

  self->init_running = TRUE;
  wapp->init_running = TRUE;
  task = g_task_new (self, self->init_cancellable, init_done_cb, NULL);
  g_task_set_source_tag (task, start_next_init);
  g_task_set_name (task, "[dirty-worker] app init");
  g_task_set_task_data (task, wapp, NULL);
  g_task_run_in_thread (task, init_thread);
}

/* Replies */

typedef struct {
  DirtyWorker *worker;
  GMainContext *context;
  guint64 id;
} CompleteData;

typedef struct {
  DirtyWorker *worker;
  DirtyCall *call;
  guint64 id;
} ReplyData;

static void
complete_data_free (gpointer data)
{
  CompleteData *cdata = data;

  g_object_unref (cdata->worker);
  g_main_context_unref (cdata->context);
  g_free (cdata);
}

static void
reply_data_free (gpointer data)
{
  ReplyData *rdata = data;

  g_object_unref (rdata->worker);
  g_object_unref (rdata->call);
  g_free (rdata);
}

/* The wire code for an app's error: DIRTY_ERROR keeps its code; a
 * cancellation says why the call was cancelled; anything else is the
 * app's own failure. */
static DirtyError
reply_error_code (const GError *error,
                  CancelReason  reason)
{
  gboolean cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                       g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_CANCELLED);

  if (cancelled && reason == CANCEL_BY_DEADLINE)
    return DIRTY_ERROR_TIMEOUT;
  if (cancelled && reason == CANCEL_BY_SHUTDOWN)
    return DIRTY_ERROR_SHUTTING_DOWN;
  if (cancelled)
    return DIRTY_ERROR_CANCELLED;
  if (error->domain == DIRTY_ERROR)
    return (DirtyError) error->code;
  return DIRTY_ERROR_APP;
}

static DirtyFrame *
build_reply (DirtyWorker *self,
             InFlight    *entry)
{
  DirtyCall *call = entry->call;
  const GError *error = dirty_call_get_error (call);
  const char *app = entry->wapp->name;
  const char *action = dirty_call_get_action (call);

  if (error != NULL)
    {
      const char *detail = dirty_call_get_detail (call);
      g_autoptr(GError) wire_error = NULL;

      if (detail == NULL)
        detail = dirty_error_get_detail (error);
      wire_error = dirty_error_new_full (reply_error_code (error, entry->reason),
                                         app, action, detail, self->pid, error->message);
      return dirty_frame_new_error (entry->id, wire_error, app, action, self->pid);
    }
  else
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
      JsonObject *object = json_object_new ();
      JsonNode *result = dirty_call_get_result (call);

      json_object_set_member (object, "result",
                              result ? json_node_ref (result) : json_node_new (JSON_NODE_NULL));
      json_node_take_object (root, object);
      return dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, entry->id, 0, root,
                                 dirty_call_get_reply_attachments (call));
    }
}

/* Streams: the terminal message goes out once every chunk queued before
 * it has had credit, or was dropped by a cancel. */
static void
stream_finish (DirtyWorker *self,
               InFlight    *entry)
{
  DirtyCall *call = entry->call;
  g_autoptr(DirtyFrame) frame = NULL;

  if (dirty_call_get_error (call) != NULL)
    frame = build_reply (self, entry);
  else
    frame = dirty_frame_new_empty (DIRTY_FRAME_END, entry->id, 0);
  send_frame (self, frame);
  dirty_call_stream_close (dirty_call_get_stream (call));
  entry->wapp->n_active--;
  g_hash_table_remove (self->in_flight, &entry->id);
  check_drained (self);
}

/* Sends the chunks that have credit; ends the stream when it can. */
static void
stream_pump (DirtyWorker *self,
             InFlight    *entry)
{
  DirtyCallStream *stream = dirty_call_get_stream (entry->call);
  g_autoptr(GPtrArray) frames = dirty_call_stream_take (stream);

  for (guint i = 0; i < frames->len; i++)
    send_frame (self, g_ptr_array_index (frames, i));
  if (entry->completed && dirty_call_stream_is_drained (stream))
    stream_finish (self, entry);
}

/* A value returned to a caller that reads a stream is its one chunk. */
static void
stream_queue_result (DirtyWorker *self,
                     InFlight    *entry)
{
  DirtyCall *call = entry->call;
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *object = json_object_new ();
  JsonNode *result = dirty_call_get_result (call);
  DirtyFrame *frame;

  json_object_set_member (object, "data",
                          result ? json_node_ref (result) : json_node_new (JSON_NODE_NULL));
  json_node_take_object (root, object);
  frame = dirty_frame_encode (DIRTY_FRAME_CHUNK, 0, entry->id, 0, root,
                              dirty_call_get_reply_attachments (call));
  dirty_call_stream_send_async (dirty_call_get_stream (call), frame, NULL);
}

static void
stream_completed (DirtyWorker *self,
                  InFlight    *entry)
{
  DirtyCall *call = entry->call;

  entry->completed = TRUE;
  if (dirty_call_get_error (call) == NULL && !dirty_call_get_stream_ended (call))
    stream_queue_result (self, entry);
  stream_pump (self, entry);
}

static gboolean
reply_cb (gpointer user_data)
{
  ReplyData *rdata = user_data;
  DirtyWorker *self = rdata->worker;
  InFlight *entry;
  g_autoptr(DirtyFrame) frame = NULL;

  /* After a forced shutdown, a stuck call may still complete later. */
  if (self->in_flight == NULL)
    return G_SOURCE_REMOVE;
  entry = g_hash_table_lookup (self->in_flight, &rdata->id);
  if (entry == NULL || entry->call != rdata->call)
    return G_SOURCE_REMOVE;
  if (dirty_call_get_stream (entry->call) != NULL)
    {
      stream_completed (self, entry);
      return G_SOURCE_REMOVE;
    }

  frame = build_reply (self, entry);
  send_frame (self, frame);
  entry->wapp->n_active--;
  g_hash_table_remove (self->in_flight, &rdata->id);
  check_drained (self);
  return G_SOURCE_REMOVE;
}

/* Runs in whichever thread completed the call: only the main context may
 * touch the connection, so hand the reply over to it. */
static void
call_complete_cb (DirtyCall *call,
                  gpointer   user_data)
{
  CompleteData *cdata = user_data;
  ReplyData *rdata = g_new0 (ReplyData, 1);
  g_autoptr(GSource) source = g_idle_source_new ();

  rdata->worker = g_object_ref (cdata->worker);
  rdata->call = g_object_ref (call);
  rdata->id = cdata->id;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, reply_cb, rdata, reply_data_free);
  g_source_set_static_name (source, "[dirty-worker] reply");
  g_source_attach (source, cdata->context);
}

static gboolean
stream_pump_cb (gpointer user_data)
{
  CompleteData *cdata = user_data;
  DirtyWorker *self = cdata->worker;
  InFlight *entry;

  if (self->in_flight == NULL)
    return G_SOURCE_REMOVE;
  /* ids are never reused: the entry of this id is this stream's */
  entry = g_hash_table_lookup (self->in_flight, &cdata->id);
  if (entry != NULL)
    stream_pump (self, entry);
  return G_SOURCE_REMOVE;
}

/* A stream has chunks to send (from any thread): pump it from the main
 * loop, which alone touches the connection. */
static void
stream_ready_cb (gpointer user_data)
{
  CompleteData *cdata = user_data;
  CompleteData *copy = g_new0 (CompleteData, 1);
  g_autoptr(GSource) source = g_idle_source_new ();

  copy->worker = g_object_ref (cdata->worker);
  copy->context = g_main_context_ref (cdata->context);
  copy->id = cdata->id;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, stream_pump_cb, copy, complete_data_free);
  g_source_set_static_name (source, "[dirty-worker] stream");
  g_source_attach (source, cdata->context);
}

static void
handle_credit (DirtyWorker *self,
               DirtyFrame  *frame)
{
  InFlight *entry = g_hash_table_lookup (self->in_flight, &frame->header.id);
  DirtyCallStream *stream;

  /* a CREDIT may cross the end of its stream */
  if (entry == NULL || (stream = dirty_call_get_stream (entry->call)) == NULL)
    return;
  dirty_call_stream_add_credit (stream, frame->header.aux);
  stream_pump (self, entry);
}

/* Calls */

static void
sync_call_thread (gpointer data,
                  gpointer user_data)
{
  DirtyCall *call = data;
  DirtyApp *app = dirty_call_get_app (call);
  GError *error = NULL;

  /* Cancelled while waiting for a thread: do not start it. */
  if (g_cancellable_set_error_if_cancelled (dirty_call_get_cancellable (call), &error))
    {
      dirty_call_complete_if_pending (call, error);
      g_object_unref (call);
      return;
    }

  dirty_app_call (app, call);

  if (!dirty_call_is_completed (call) &&
      dirty_call_complete_if_pending (call,
                                      g_error_new (DIRTY_ERROR, DIRTY_ERROR_APP,
                                                   _("Action %s of app %s returned no result"),
                                                   dirty_call_get_action (call),
                                                   dirty_call_get_app_name (call))))
    g_warning ("Action %s of app %s returned without completing its call",
               dirty_call_get_action (call), dirty_call_get_app_name (call));
  g_object_unref (call);
}

static gboolean
deadline_cb (gpointer user_data)
{
  InFlight *entry = user_data;

  g_clear_pointer (&entry->deadline_source, g_source_unref);
  if (entry->reason == CANCEL_NONE)
    entry->reason = CANCEL_BY_DEADLINE;
  g_cancellable_cancel (dirty_call_get_cancellable (entry->call));
  return G_SOURCE_REMOVE;
}

static void
handle_cancel (DirtyWorker *self,
               DirtyFrame  *frame)
{
  InFlight *entry = g_hash_table_lookup (self->in_flight, &frame->header.id);

  /* A CANCEL may cross the reply on the wire: nothing to do then. */
  if (entry == NULL)
    return;
  if (entry->reason == CANCEL_NONE)
    entry->reason = CANCEL_BY_PEER;
  g_cancellable_cancel (dirty_call_get_cancellable (entry->call));
}

static const char *
app_not_ready_message (WorkerApp *wapp,
                       char     **to_free)
{
  switch (wapp->state)
    {
    case APP_UNAVAILABLE:
      *to_free = g_strdup_printf (_("App %s could not be loaded: %s"), wapp->name, wapp->error);
      break;
    case APP_FAILED:
      *to_free = g_strdup_printf (_("App %s failed to initialise: %s"), wapp->name, wapp->error);
      break;
    case APP_STARTING:
    case APP_READY:
    default:
      *to_free = g_strdup_printf (_("App %s is still initialising"), wapp->name);
      break;
    }
  return *to_free;
}

/* Checks a REQUEST's body. On failure sends the ERROR itself and returns
 * FALSE. */
static gboolean
validate_request (DirtyWorker       *self,
                  guint64            id,
                  JsonNode          *root,
                  WorkerApp        **out_wapp,
                  DirtyActionFlags  *out_flags)
{
  const char *app_name = dirty_json_get_string (root, "app");
  const char *action = dirty_json_get_string (root, "action");
  JsonObject *object = root ? json_node_get_object (root) : NULL;
  JsonNode *args = object ? json_object_get_member (object, "args") : NULL;
  JsonNode *kwargs = object ? json_object_get_member (object, "kwargs") : NULL;
  g_autofree char *message = NULL;
  WorkerApp *wapp;

  if (app_name == NULL || action == NULL)
    {
      send_error (self, id, DIRTY_ERROR_PROTOCOL, app_name, action,
                  _("A REQUEST needs string members “app” and “action”"));
      return FALSE;
    }
  wapp = g_hash_table_lookup (self->apps_by_name, app_name);
  if (wapp == NULL)
    {
      message = g_strdup_printf (_("Worker %u has no app %s"), self->worker_id, app_name);
      send_error (self, id, DIRTY_ERROR_APP_NOT_FOUND, app_name, action, message);
      return FALSE;
    }
  if (wapp->state != APP_READY)
    {
      send_error (self, id, DIRTY_ERROR_NO_WORKER, app_name, action,
                  app_not_ready_message (wapp, &message));
      return FALSE;
    }
  if (!dirty_app_lookup_action (wapp->app, action, out_flags))
    {
      message = g_strdup_printf (_("App %s has no action %s"), app_name, action);
      send_error (self, id, DIRTY_ERROR_ACTION_NOT_FOUND, app_name, action, message);
      return FALSE;
    }
  if (args != NULL && !JSON_NODE_HOLDS_ARRAY (args) && !JSON_NODE_HOLDS_NULL (args))
    {
      send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, app_name, action,
                  _("“args” must be an array"));
      return FALSE;
    }
  if (kwargs != NULL && !JSON_NODE_HOLDS_OBJECT (kwargs) && !JSON_NODE_HOLDS_NULL (kwargs))
    {
      send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, app_name, action,
                  _("“kwargs” must be an object"));
      return FALSE;
    }
  *out_wapp = wapp;
  return TRUE;
}

static void
dispatch_call (DirtyWorker      *self,
               InFlight         *entry,
               DirtyActionFlags  flags)
{
  g_autoptr(GError) error = NULL;

  entry->wapp->n_active++;
  if (flags & DIRTY_ACTION_ASYNC)
    {
      /* The reply goes through an idle even if the action completes right
       * here, so no reply is sent from inside this frame handler. */
      g_autoptr(DirtyCall) call = g_object_ref (entry->call);
      dirty_app_call (dirty_call_get_app (call), call);
      return;
    }
  if (!g_thread_pool_push (self->pool, g_object_ref (entry->call), &error))
    dirty_call_complete_if_pending (entry->call, g_steal_pointer (&error));
}

static void
enable_stream (DirtyWorker *self,
               InFlight    *entry,
               JsonNode    *root)
{
  gint64 window = dirty_json_get_int (root, "window", DIRTY_STREAM_DEFAULT_WINDOW);
  CompleteData *rdata = g_new0 (CompleteData, 1);

  /* the arbiter checked it; a worker under another host clamps it */
  window = CLAMP (window, 1, DIRTY_STREAM_MAX_WINDOW);
  rdata->worker = g_object_ref (self);
  rdata->context = g_main_context_ref (self->context);
  rdata->id = entry->id;
  dirty_call_set_stream (entry->call,
                         dirty_call_stream_new (entry->id, (guint) window, self->context,
                                                dirty_call_get_cancellable (entry->call),
                                                stream_ready_cb, rdata, complete_data_free));
}

static void
handle_request (DirtyWorker *self,
                DirtyFrame  *frame)
{
  guint64 id = frame->header.id;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  WorkerApp *wapp = NULL;
  DirtyActionFlags flags = DIRTY_ACTION_SYNC;
  JsonObject *object;
  JsonNode *args, *kwargs;
  CompleteData *cdata;
  InFlight *entry;
  gint64 deadline = 0;
  gboolean streaming;

  if (id == 0 || g_hash_table_contains (self->in_flight, &id))
    {
      g_autoptr(GError) proto = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                             id == 0 ? _("REQUEST with id 0")
                                                     : _("REQUEST id %" G_GUINT64_FORMAT
                                                         " is already in flight"), id);
      dirty_connection_fail (self->connection, 0, proto);
      return;
    }
  if (self->shutting_down)
    {
      send_error (self, id, DIRTY_ERROR_SHUTTING_DOWN, NULL, NULL,
                  _("The worker is shutting down"));
      return;
    }
  if (!dirty_frame_decode (frame, dirty_connection_get_limits (self->connection),
                           &root, &attachments, &error))
    {
      send_error (self, id, DIRTY_ERROR_PROTOCOL, NULL, NULL, error->message);
      return;
    }
  if (!validate_request (self, id, root, &wapp, &flags))
    return;
  streaming = (frame->header.flags & DIRTY_FRAME_FLAG_STREAM) != 0;
  if ((flags & DIRTY_ACTION_STREAM) && !streaming)
    {
      g_autofree char *message =
        g_strdup_printf (_("Action %s of app %s streams its result: read it as a stream "
                           "(dirty_client_stream())"),
                         dirty_json_get_string (root, "action"), wapp->name);
      send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, wapp->name,
                  dirty_json_get_string (root, "action"), message);
      return;
    }

  object = json_node_get_object (root);
  args = json_object_get_member (object, "args");
  kwargs = json_object_get_member (object, "kwargs");
  if (frame->header.aux > 0)
    deadline = g_get_monotonic_time () + (gint64) frame->header.aux * 1000;

  entry = g_new0 (InFlight, 1);
  entry->id = id;
  entry->wapp = wapp;
  cdata = g_new0 (CompleteData, 1);
  cdata->worker = g_object_ref (self);
  cdata->context = g_main_context_ref (self->context);
  cdata->id = id;
  entry->call = dirty_call_new (wapp->app, wapp->name,
                                dirty_json_get_string (root, "action"),
                                args && JSON_NODE_HOLDS_ARRAY (args) ? json_node_get_array (args) : NULL,
                                kwargs && JSON_NODE_HOLDS_OBJECT (kwargs) ? json_node_get_object (kwargs) : NULL,
                                attachments, deadline, NULL,
                                call_complete_cb, cdata, complete_data_free);
  if (streaming)
    enable_stream (self, entry, root);
  g_hash_table_insert (self->in_flight, &entry->id, entry);

  if (frame->header.aux > 0)
    {
      entry->deadline_source = g_timeout_source_new (frame->header.aux);
      g_source_set_callback (entry->deadline_source, deadline_cb, entry, NULL);
      g_source_attach (entry->deadline_source, self->context);
    }
  dispatch_call (self, entry, flags);
}

static void
connection_frame_cb (DirtyConnection *connection,
                     DirtyFrame      *frame,
                     gpointer         user_data)
{
  DirtyWorker *self = user_data;

  switch (frame->header.type)
    {
    case DIRTY_FRAME_REQUEST:
      handle_request (self, frame);
      break;
    case DIRTY_FRAME_CANCEL:
      handle_cancel (self, frame);
      break;
    case DIRTY_FRAME_CREDIT:
      handle_credit (self, frame);
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

static void
clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static gboolean
start (DirtyWorker *self,
       int          fd,
       GError     **error)
{
  g_autoptr(GSocket) gsocket = NULL;

  gsocket = g_socket_new_from_fd (fd, error);
  if (gsocket == NULL)
    {
      close (fd);
      return FALSE;
    }
  self->pool = g_thread_pool_new_full (sync_call_thread, self, g_object_unref,
                                       self->n_threads, TRUE, error);
  if (self->pool == NULL)
    return FALSE;

  self->connection = dirty_connection_new (gsocket, NULL);
  dirty_connection_start (self->connection, self->context,
                          connection_frame_cb, connection_closed_cb, self);
  send_status (self, DIRTY_FRAME_HELLO);

  self->heartbeat_source = g_timeout_source_new (HEARTBEAT_INTERVAL_MS);
  g_source_set_callback (self->heartbeat_source, heartbeat_cb, self, NULL);
  g_source_attach (self->heartbeat_source, self->context);
  self->sigterm_source = attach_signal (self, SIGTERM);
  self->sigint_source = attach_signal (self, SIGINT);

  for (guint i = 0; i < self->apps->len; i++)
    {
      WorkerApp *wapp = g_ptr_array_index (self->apps, i);

      if (wapp->app == NULL)
        continue;
      g_queue_push_tail (&self->init_queue, wapp);
    }
  start_next_init (self);
  return TRUE;
}

/* Lets the last replies (cancellations, mostly) reach the arbiter. */
static void
flush_connection (DirtyWorker *self)
{
  gint64 end = g_get_monotonic_time () + FLUSH_GRACE_MS * 1000;

  while (self->connection != NULL &&
         !dirty_connection_is_closed (self->connection) &&
         dirty_connection_get_queued_bytes (self->connection) > 0 &&
         g_get_monotonic_time () < end)
    g_main_context_iteration (self->context, TRUE);
}

static void
close_apps (DirtyWorker *self)
{
  for (guint i = 0; i < self->apps->len; i++)
    {
      WorkerApp *wapp = g_ptr_array_index (self->apps, i);

      if (wapp->app == NULL)
        continue;
      /* Only after a forced shutdown can code still be running in the app;
       * closing it under that code would be worse than not closing it. */
      if (wapp->n_active > 0 || wapp->init_running)
        {
          g_warning ("Not closing app %s: %u calls or its init() still run",
                     wapp->name, wapp->n_active);
          continue;
        }
      dirty_app_close (wapp->app);
    }
}

static void
stop_everything (DirtyWorker *self)
{
  flush_connection (self);
  clear_source (&self->heartbeat_source);
  clear_source (&self->sigterm_source);
  clear_source (&self->sigint_source);
  clear_source (&self->grace_source);
  if (self->connection)
    dirty_connection_close (self->connection);

  /* After a clean drain every call has ended: wait for the threads to
   * return. After a forced one, some never will: do not wait for them. */
  if (self->pool)
    g_thread_pool_free (g_steal_pointer (&self->pool), self->forced, !self->forced);
  close_apps (self);

  g_clear_object (&self->connection);
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
 * %DIRTY_ACTION_ASYNC actions run.
 *
 * Call it once per worker. It handles SIGTERM and SIGINT itself while it
 * runs.
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
  self->worker_id = worker_id;
  self->worker_id_str = g_strdup_printf ("%u", worker_id);
  self->pid = getpid ();
  self->in_flight = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                           (GDestroyNotify) in_flight_free);
  self->init_cancellable = g_cancellable_new ();
  self->shutting_down = FALSE;
  self->forced = FALSE;

  g_mutex_lock (&self->stop_lock);
  self->loop = g_main_loop_new (self->context, FALSE);
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

  g_main_loop_run (self->loop);
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
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, stop_in_context_cb,
                                g_object_ref (self), g_object_unref);
  g_mutex_unlock (&self->stop_lock);
}
