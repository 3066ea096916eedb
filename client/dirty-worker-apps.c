/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-app-loader-private.h"
#include "dirty-worker-private.h"

/* The worker's apps: loading them, running each one's init() on a helper
 * thread, one app at a time, retrying a failed init() with exponential
 * backoff, and the state each app reports in HELLO and STATUS. */

#define INIT_RETRY_MIN_MS     1000
#define INIT_RETRY_MAX_MS     60000

static const char *const app_state_names[] = {
  [APP_STARTING] = "starting",
  [APP_READY] = "ready",
  [APP_FAILED] = "failed",
  [APP_UNAVAILABLE] = "unavailable",
};

static void start_next_init (DirtyWorker *self);

void
dirty_worker_app_free (WorkerApp *wapp)
{
  dirty_worker_clear_source (&wapp->retry_source);
  g_clear_object (&wapp->app);
  g_free (wapp->name);
  g_free (wapp->error);
  g_free (wapp);
}

/* The app table */

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
  wapp->error = load_error ? dirty_error_text_cut (load_error, DIRTY_ERROR_MESSAGE_MAX) : NULL;
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
 * dirty_worker_add_unavailable_app:
 * @self: a #DirtyWorker
 * @name: the name clients address the app by
 * @reason: why the host could not make the app, for the arbiter and its
 *   callers
 *
 * Records an app that the host could not make (a module that does not
 * import, a class that is missing) as `unavailable`, as
 * [method@Dirty.Worker.load_app] does for a module that cannot be loaded:
 * the HELLO carries @reason, so every call of the app fails with it
 * instead of the app silently missing.
 *
 * Since: 0.1
 */
void
dirty_worker_add_unavailable_app (DirtyWorker *self,
                                  const char  *name,
                                  const char  *reason)
{
  g_return_if_fail (DIRTY_IS_WORKER (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (reason != NULL);
  g_return_if_fail (self->loop == NULL);

  add_worker_app (self, name, NULL, reason);
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

/* State reporting */

static void
add_app_state (JsonBuilder *builder,
               WorkerApp   *wapp)
{
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

void
dirty_worker_add_app_states (DirtyWorker *self,
                             JsonBuilder *builder)
{
  for (guint i = 0; i < self->apps->len; i++)
    add_app_state (builder, g_ptr_array_index (self->apps, i));
}

/* Init, one app at a time on a helper thread */

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
      /* it goes in every HELLO and STATUS frame, and in the journal */
      wapp->error = dirty_error_text_cut (error->message, DIRTY_ERROR_MESSAGE_MAX);
      schedule_retry (self, wapp);
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                        "DIRTY_APP", wapp->name,
                        "DIRTY_WORKER_ID", self->worker_id_str,
                        "MESSAGE", "App %s failed to initialise: %s; retrying in %u ms",
                        wapp->name, wapp->error, wapp->retry_ms);
    }

  if (!self->shutting_down)
    dirty_worker_send_status (self, DIRTY_FRAME_STATUS);
  start_next_init (self);
  dirty_worker_check_drained (self);
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
    {
      /* every app's first init() has ended: the dirty_worker_init moment */
      if (!self->init_announced)
        {
          self->init_announced = TRUE;
          g_signal_emit_by_name (self, "worker-init");
        }
      return;
    }

  self->init_running = TRUE;
  wapp->init_running = TRUE;
  task = g_task_new (self, self->init_cancellable, init_done_cb, NULL);
  g_task_set_source_tag (task, start_next_init);
  g_task_set_name (task, "[dirty-worker] app init");
  g_task_set_task_data (task, wapp, NULL);
  g_task_run_in_thread (task, init_thread);
}

void
dirty_worker_start_app_init (DirtyWorker *self)
{
  for (guint i = 0; i < self->apps->len; i++)
    {
      WorkerApp *wapp = g_ptr_array_index (self->apps, i);

      if (wapp->app == NULL)
        continue;
      g_queue_push_tail (&self->init_queue, wapp);
    }
  start_next_init (self);
}

void
dirty_worker_stop_app_init (DirtyWorker *self)
{
  g_cancellable_cancel (self->init_cancellable);
  g_queue_clear (&self->init_queue);
  for (guint i = 0; i < self->apps->len; i++)
    {
      WorkerApp *wapp = g_ptr_array_index (self->apps, i);

      dirty_worker_clear_source (&wapp->retry_source);
    }
}

/* Closing */

void
dirty_worker_close_apps (DirtyWorker *self)
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
