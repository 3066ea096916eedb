/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-error-private.h"
#include "dirty-log.h"
#include "dirty-pool-private.h"
#include "dirty-socket.h"
#include "dirty-unit-launcher.h"

#define BACKOFF_MIN_MS     1000
#define BACKOFF_MAX_MS     30000
#define DIED_YOUNG_US      (5 * G_USEC_PER_SEC)
#define LIVED_LONG_US      (60 * G_USEC_PER_SEC)
guint dirty_pool_signals[N_SIGNALS];

G_DEFINE_TYPE (DirtyPool, dirty_pool, G_TYPE_OBJECT)

void
dirty_pool_slot_clear_proc (Slot *slot)
{
  if (slot->proc == NULL)
    return;
  dirty_worker_proc_set_reply_func (slot->proc, NULL, NULL);
  g_signal_handlers_disconnect_by_data (slot->proc, slot);
  g_clear_object (&slot->proc);
}

static void
slot_free (gpointer data)
{
  Slot *slot = data;

  g_clear_handle_id (&slot->respawn_source, g_source_remove);
  dirty_pool_slot_clear_proc (slot);
  g_strfreev (slot->apps);
  g_free (slot);
}

static void
dirty_pool_dispose (GObject *object)
{
  DirtyPool *self = DIRTY_POOL (object);

  if (self->slots != NULL)
    g_ptr_array_set_size (self->slots, 0);
  g_clear_handle_id (&self->kill_source, g_source_remove);
  g_clear_handle_id (&self->rss_source, g_source_remove);
  g_clear_object (&self->launcher);
  G_OBJECT_CLASS (dirty_pool_parent_class)->dispose (object);
}

static void
dirty_pool_finalize (GObject *object)
{
  DirtyPool *self = DIRTY_POOL (object);

  g_ptr_array_unref (self->slots);
  dirty_pool_close_handoff (self->adopted);
  dirty_pool_close_handoff (self->released);
  g_free (self->binary);
  g_free (self->python_worker);
  g_clear_object (&self->config);
  G_OBJECT_CLASS (dirty_pool_parent_class)->finalize (object);
}

static void
dirty_pool_class_init (DirtyPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_pool_dispose;
  object_class->finalize = dirty_pool_finalize;

  dirty_pool_signals[SIGNAL_WORKER_CHANGED] =
    g_signal_new ("worker-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
  dirty_pool_signals[SIGNAL_WORKER_BACKTRACE] =
    g_signal_new ("worker-backtrace", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 4, DIRTY_TYPE_WORKER_PROC,
                  G_TYPE_POINTER, G_TYPE_STRING, G_TYPE_STRING);
  dirty_pool_signals[SIGNAL_WORKER_LOST] =
    g_signal_new ("worker-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
  dirty_pool_signals[SIGNAL_WORKER_EXITED] =
    g_signal_new ("worker-exited", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
  dirty_pool_signals[SIGNAL_GENERATION_READY] =
    g_signal_new ("generation-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  dirty_pool_signals[SIGNAL_STOPPED] =
    g_signal_new ("stopped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  dirty_pool_signals[SIGNAL_WORKER_STARTED] =
    g_signal_new ("worker-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
}

static void
dirty_pool_init (DirtyPool *self)
{
  self->backoff_ms = BACKOFF_MIN_MS;
  self->slots = g_ptr_array_new_with_free_func (slot_free);
  self->generation = 1;
}

DirtyPool *
dirty_pool_new (DirtyConfig       *config,
                const DirtyLimits *limits)
{
  DirtyPool *self = g_object_new (DIRTY_TYPE_POOL, NULL);
  const char *env = g_getenv ("DIRTY_WORKER_PATH");
  const char *python_env = g_getenv ("DIRTY_PYTHON_WORKER_PATH");

  self->config = g_object_ref (config);
  self->limits = *limits;
  self->binary = (env != NULL && *env != '\0')
                   ? g_strdup (env)
                   : g_build_filename (DIRTY_LIBEXECDIR, "dirty-worker", NULL);
  self->python_worker = (python_env != NULL && *python_env != '\0')
                          ? g_strdup (python_env)
                          : g_build_filename (DIRTY_LIBEXECDIR, "dirty-python-worker", NULL);
  return self;
}

/* ---- slots and their apps ---- */

/* Slots that count for the newest config: not retiring, not older. */
static gboolean
slot_is_active (Slot *slot)
{
  /* a worker being replaced (recycling) counts as its replacement */
  return !slot->retiring && slot->recycle != RECYCLE_REPLACING &&
         slot->generation == slot->pool->generation;
}

static guint
dirty_pool_count_active (DirtyPool *self)
{
  guint n = 0;

  for (guint i = 0; i < self->slots->len; i++)
    n += slot_is_active (self->slots->pdata[i]);
  return n;
}

/* Active slots that load @app */
static guint
dirty_pool_count_holders (DirtyPool  *self,
                          const char *app)
{
  guint n = 0;

  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      n += slot_is_active (slot) && g_strv_contains ((const char * const *) slot->apps, app);
    }
  return n;
}

/* Whether the slot loads an app that only some workers load: such a
 * slot is never removed by scaling down, so no app loses its workers. */
static gboolean
slot_has_counted_app (Slot *slot)
{
  for (guint i = 0; slot->apps[i] != NULL; i++)
    if (dirty_config_get_app_workers (slot->pool->config, slot->apps[i]) > 0)
      return TRUE;
  return FALSE;
}

/* The smallest worker id no slot uses (old and new generations overlap
 * during a reload, so ids are unique across both). */
static guint
dirty_pool_free_id (DirtyPool *self)
{
  for (guint id = 1;; id++)
    {
      gboolean used = FALSE;

      for (guint i = 0; i < self->slots->len && !used; i++)
        used = ((Slot *) self->slots->pdata[i])->id == id;
      if (!used)
        return id;
    }
}

Slot *
dirty_pool_add_slot (DirtyPool *self,
                     GStrv      apps)
{
  Slot *slot = g_new0 (Slot, 1);

  slot->pool = self;
  slot->id = dirty_pool_free_id (self);
  slot->apps = apps;
  slot->generation = self->generation;
  g_ptr_array_add (self->slots, slot);
  return slot;
}

/* The index of the worker with the fewest apps with :N so far among
 * those not marked in @taken. */
static guint
least_counted (const guint    *counted,
               const gboolean *taken,
               guint           n)
{
  guint best = G_MAXUINT;

  for (guint i = 0; i < n; i++)
    if (!taken[i] && (best == G_MAXUINT || counted[i] < counted[best]))
      best = i;
  return best;
}

/* The apps of @n new workers: every app without :N on each; an app with
 * :N on the N workers that have the fewest such apps so far, so several
 * big apps spread over the pool instead of piling onto worker 1. */
GPtrArray *
dirty_pool_assign_apps (DirtyPool *self,
                        guint      n)
{
  const char * const *apps = dirty_config_get_apps (self->config);
  g_autoptr(GPtrArray) builders = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strv_builder_unref);
  g_autofree guint *counted = g_new0 (guint, n);
  g_autofree gboolean *taken = g_new0 (gboolean, n);
  GPtrArray *result = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (builders, g_strv_builder_new ());
  for (guint a = 0; apps[a] != NULL; a++)
    {
      guint want = dirty_config_get_app_workers (self->config, apps[a]);

      memset (taken, 0, n * sizeof (gboolean));
      for (guint k = 0; k < (want == 0 ? n : MIN (want, n)); k++)
        {
          guint pick = want == 0 ? k : least_counted (counted, taken, n);

          taken[pick] = TRUE;
          counted[pick] += want > 0;
          g_strv_builder_add (builders->pdata[pick], apps[a]);
        }
    }
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (result, g_strv_builder_end (builders->pdata[i]));
  return result;
}

/* The apps of one more worker (scaling up): every app without :N, and
 * any app with :N that has fewer than N workers. */
static GStrv
dirty_pool_apps_for_new_worker (DirtyPool *self)
{
  const char * const *apps = dirty_config_get_apps (self->config);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  for (guint a = 0; apps[a] != NULL; a++)
    {
      guint want = dirty_config_get_app_workers (self->config, apps[a]);

      if (want == 0 || dirty_pool_count_holders (self, apps[a]) < want)
        g_strv_builder_add (builder, apps[a]);
    }
  return g_strv_builder_end (builder);
}

/* ---- worker events ---- */

static void
slot_apps_changed_cb (DirtyWorkerProc *proc,
                      Slot            *slot)
{
  DirtyPool *self = slot->pool;

  g_signal_emit (self, dirty_pool_signals[SIGNAL_WORKER_CHANGED], 0, proc);
  dirty_pool_check_generation (self);
  dirty_pool_check_recycles (self);
}

/* A retiring worker leaves once its last call has ended: SIGTERM would
 * cancel calls it still runs. */
void
dirty_pool_slot_terminate_if_idle (Slot *slot)
{
  if ((!slot->retiring && slot->recycle != RECYCLE_DRAINING) || slot->terminated ||
      slot->proc == NULL || dirty_worker_proc_get_load (slot->proc) > 0)
    return;
  slot->terminated = TRUE;
  dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, dirty_worker_proc_get_pid (slot->proc), slot->id,
             "worker %u retired: its calls have ended", slot->id);
  dirty_worker_proc_terminate (slot->proc);
}

static void
slot_reply_cb (DirtyWorkerProc *proc,
               DirtyJob        *job,
               DirtyFrame      *frame,
               gboolean         terminal,
               gpointer         user_data)
{
  Slot *slot = user_data;
  DirtyPool *self = slot->pool;

  if (self->reply_func != NULL)
    self->reply_func (proc, job, frame, terminal, self->reply_data);
  if (terminal && slot->max_requests > 0 && slot->proc == proc &&
      dirty_worker_proc_get_served (proc) >= slot->max_requests)
    dirty_pool_slot_recycle (slot, "dirty_max_requests");
  if (terminal)
    dirty_pool_slot_terminate_if_idle (slot);
}

static void
slot_backtrace_cb (DirtyWorkerProc *proc,
                   gpointer         job,
                   const char      *backtrace,
                   const char      *error,
                   Slot            *slot)
{
  g_signal_emit (slot->pool, dirty_pool_signals[SIGNAL_WORKER_BACKTRACE], 0, proc, job, backtrace,
                 error);
}

static void
slot_lost_cb (DirtyWorkerProc *proc,
              Slot            *slot)
{
  g_signal_emit (slot->pool, dirty_pool_signals[SIGNAL_WORKER_LOST], 0, proc);
}

static void slot_exited_cb (DirtyWorkerProc *proc,
                            Slot            *slot);

/* What a worker of @apps is started with under the current config */
DirtyWorkerProcOptions
dirty_pool_options (DirtyPool *self,
                    GStrv      apps)
{
  DirtyWorkerProcOptions options = {
    .binary = self->binary,
    .apps = (const char * const *) apps,
    .app_path = dirty_config_get_app_path (self->config),
    .threads = dirty_config_get_threads (self->config),
    .limits = &self->limits,
    .hooks = dirty_config_get_hooks_module (self->config),
    .python = dirty_config_get_python (self->config),
    .python_worker = self->python_worker,
  };

  return options;
}

/* The slot's new proc: its signals, its dirty_max_requests */
void
dirty_pool_slot_watch_proc (Slot *slot)
{
  DirtyPool *self = slot->pool;
  guint max_requests = dirty_config_get_max_requests (self->config);
  guint jitter = dirty_config_get_max_requests_jitter (self->config);

  g_signal_connect (slot->proc, "apps-changed", G_CALLBACK (slot_apps_changed_cb), slot);
  dirty_worker_proc_set_reply_func (slot->proc, slot_reply_cb, slot);
  g_signal_connect (slot->proc, "backtrace", G_CALLBACK (slot_backtrace_cb), slot);
  g_signal_connect (slot->proc, "lost", G_CALLBACK (slot_lost_cb), slot);
  g_signal_connect (slot->proc, "exited", G_CALLBACK (slot_exited_cb), slot);
  /* the jitter spreads the recycling of workers started together */
  slot->max_requests = max_requests == 0 ? 0
                       : max_requests + (guint) g_random_int_range (0, (gint32) MIN (jitter, G_MAXINT32 - 1) + 1);
  slot->terminated = FALSE;
}

static gboolean
slot_spawn (Slot    *slot,
            GError **error)
{
  DirtyPool *self = slot->pool;
  DirtyWorkerProcOptions options = dirty_pool_options (self, slot->apps);

  if (self->launcher != NULL)
    slot->proc = dirty_worker_proc_start_unit (slot->id, &options, self->launcher);
  else
    slot->proc = dirty_worker_proc_spawn (slot->id, &options, error);
  if (slot->proc == NULL)
    return FALSE;
  dirty_pool_slot_watch_proc (slot);
  g_signal_emit (self, dirty_pool_signals[SIGNAL_WORKER_STARTED], 0, slot->proc);
  return TRUE;
}

static void slot_schedule_respawn (Slot  *slot,
                                   guint  delay_ms);

static gboolean
slot_respawn_cb (gpointer user_data)
{
  Slot *slot = user_data;
  g_autoptr(GError) error = NULL;

  slot->respawn_source = 0;
  if (slot->pool->stopping)
    return G_SOURCE_REMOVE;
  slot->restarts++;
  if (!slot_spawn (slot, &error))
    {
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, slot->id,
                 "cannot start worker %u: %s", slot->id, error->message);
      slot_schedule_respawn (slot, slot->pool->backoff_ms);
      slot->pool->backoff_ms = MIN (slot->pool->backoff_ms * 2, BACKOFF_MAX_MS);
    }
  /* a new worker may be about to serve apps nobody serves now */
  g_signal_emit (slot->pool, dirty_pool_signals[SIGNAL_WORKER_CHANGED], 0, slot->proc);
  return G_SOURCE_REMOVE;
}

static void
slot_schedule_respawn (Slot  *slot,
                       guint  delay_ms)
{
  if (delay_ms > 0)
    dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, slot->id,
               "restarting worker %u in %u ms", slot->id, delay_ms);
  slot->respawn_source = g_timeout_add (delay_ms, slot_respawn_cb, slot);
}

/* Exponential backoff for workers that die within 5 s of their start, so
 * a broken app does not make the arbiter fork in a loop. */
static guint
dirty_pool_next_delay (DirtyPool *self,
                       gint64     lifetime)
{
  guint delay = 0;

  if (lifetime >= LIVED_LONG_US)
    self->backoff_ms = BACKOFF_MIN_MS;
  if (lifetime < DIED_YOUNG_US)
    {
      delay = self->backoff_ms;
      self->backoff_ms = MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
    }
  return delay;
}

static gboolean
dirty_pool_all_exited (DirtyPool *self)
{
  for (guint i = 0; i < self->slots->len; i++)
    if (((Slot *) self->slots->pdata[i])->proc != NULL)
      return FALSE;
  return TRUE;
}

static void
dirty_pool_check_stopped (DirtyPool *self)
{
  if (!self->stopping || self->stopped || !dirty_pool_all_exited (self))
    return;
  self->stopped = TRUE;
  g_clear_handle_id (&self->kill_source, g_source_remove);
  g_signal_emit (self, dirty_pool_signals[SIGNAL_STOPPED], 0);
}

static void
slot_exited_cb (DirtyWorkerProc *proc,
                Slot            *slot)
{
  DirtyPool *self = slot->pool;
  g_autoptr(DirtyWorkerProc) hold = g_object_ref (proc);
  gint64 lifetime = g_get_monotonic_time () - dirty_worker_proc_get_started (proc);
  /* an old generation's worker is not replaced: the new one takes over;
   * nor is one being recycled whose replacement is already coming */
  gboolean leaves = slot->retiring || slot->generation != self->generation ||
                    slot->recycle == RECYCLE_REPLACING;
  /* retire-first recycling: its replacement starts now, without backoff */
  gboolean recycled = slot->recycle == RECYCLE_DRAINING;

  dirty_pool_slot_clear_proc (slot);
  slot->recycle = RECYCLE_NONE;
  if (leaves && !self->stopping)
    g_ptr_array_remove_fast (self->slots, slot);   /* frees it */
  g_signal_emit (self, dirty_pool_signals[SIGNAL_WORKER_EXITED], 0, proc);
  if (self->stopping)
    dirty_pool_check_stopped (self);
  else if (!leaves)
    slot_schedule_respawn (slot, recycled ? 0 : dirty_pool_next_delay (self, lifetime));
  if (!self->stopping)
    dirty_pool_check_recycles (self);
}

/* Spawns the slot's worker, or retries later (with the backoff) if the
 * binary cannot be started now. */
void
dirty_pool_slot_spawn_or_retry (Slot *slot)
{
  g_autoptr(GError) error = NULL;

  if (slot_spawn (slot, &error))
    return;
  dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, slot->id,
             "cannot start worker %u: %s", slot->id, error->message);
  slot_schedule_respawn (slot, slot->pool->backoff_ms);
}

/* The workers @config asks for: none while it lists no app. A worker
 * refuses to start without one, so it would only be restarted, with
 * backoff, for as long as the daemon runs. */
guint
dirty_pool_wanted (DirtyConfig *config)
{
  if (dirty_config_get_apps (config)[0] != NULL)
    return dirty_config_get_workers (config);
  dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
             "no apps are configured (dirty_apps or --dirty-app): no worker starts, and "
             "every call fails until a reload (SIGHUP) brings some");
  return 0;
}

/* Adds @n slots for the newest config, with their apps. */
GPtrArray *
dirty_pool_add_generation (DirtyPool *self,
                           guint      n)
{
  g_autoptr(GPtrArray) app_sets = dirty_pool_assign_apps (self, n);
  GPtrArray *added = g_ptr_array_new ();

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (added, dirty_pool_add_slot (self, g_steal_pointer (&app_sets->pdata[i])));
  return added;
}

Slot *
dirty_pool_find_slot (DirtyPool *self,
                      guint      id)
{
  for (guint i = 0; i < self->slots->len; i++)
    if (((Slot *) self->slots->pdata[i])->id == id)
      return self->slots->pdata[i];
  return NULL;
}

/* Unit mode: the worker socket and the manager's bus */
static gboolean
dirty_pool_start_launcher (DirtyPool  *self,
                           GError    **error)
{
  const char *configured = dirty_config_get_worker_socket (self->config);
  g_autofree char *path = NULL;

  if (configured != NULL)
    path = g_strdup (configured);
  else
    {
      g_autofree char *main_socket = dirty_config_get_socket (self->config) != NULL
                                       ? g_strdup (dirty_config_get_socket (self->config))
                                       : dirty_socket_default_path ();

      path = dirty_unit_launcher_default_socket (main_socket);
    }
  self->launcher = dirty_unit_launcher_new (path, &self->limits, error);
  return self->launcher != NULL;
}

gboolean
dirty_pool_start (DirtyPool  *self,
                  GError    **error)
{
  g_autoptr(GPtrArray) added = NULL;

  g_return_val_if_fail (DIRTY_IS_POOL (self), FALSE);

  if (dirty_config_get_worker_mode (self->config) == DIRTY_WORKER_MODE_UNIT &&
      !dirty_pool_start_launcher (self, error))
    return FALSE;
  if (self->adopted != NULL && self->launcher != NULL)
    added = dirty_pool_adopt_generation (self, dirty_pool_wanted (self->config));
  else
    added = dirty_pool_add_generation (self, dirty_pool_wanted (self->config));
  /* fork mode now: unit workers of a previous arbiter exit on EOF */
  g_clear_pointer (&self->adopted, dirty_pool_close_handoff);
  for (guint i = 0; i < added->len; i++)
    if (!slot_spawn (added->pdata[i], error))
      {
        g_prefix_error (error, "%s: ", self->binary);
        return FALSE;
      }
  dirty_pool_watch_rss (self);
  return TRUE;
}

/* ---- reload and scaling ---- */

void
dirty_pool_slot_retire (Slot *slot)
{
  DirtyPool *self = slot->pool;

  slot->retiring = TRUE;
  if (slot->proc == NULL)
    {
      /* waiting for a respawn: nothing to finish */
      g_ptr_array_remove_fast (self->slots, slot);
      return;
    }
  dirty_worker_proc_set_retiring (slot->proc);
  dirty_pool_slot_terminate_if_idle (slot);
}

gboolean
dirty_pool_slot_serves (Slot       *slot,
                        const char *app)
{
  return !slot->retiring && slot->proc != NULL &&
         dirty_worker_proc_get_state (slot->proc) == DIRTY_WORKER_PROC_LIVE &&
         dirty_worker_proc_get_app_state (slot->proc, app, NULL) == DIRTY_APP_STATE_READY;
}

/* Whether @slot's worker said hello and every app it loads settled */
gboolean
dirty_pool_slot_is_settled (Slot *slot)
{
  if (slot->proc == NULL || dirty_worker_proc_get_state (slot->proc) != DIRTY_WORKER_PROC_LIVE)
    return FALSE;
  for (guint a = 0; slot->apps[a] != NULL; a++)
    if (dirty_worker_proc_get_app_state (slot->proc, slot->apps[a], NULL) ==
        DIRTY_APP_STATE_STARTING)
      return FALSE;
  return TRUE;
}

static gboolean
dirty_pool_grow (DirtyPool  *self,
                 guint       n,
                 GError    **error)
{
  if (dirty_pool_count_active (self) + n > DIRTY_CONFIG_MAX_WORKERS)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   "at most %u workers", DIRTY_CONFIG_MAX_WORKERS);
      return FALSE;
    }
  if (dirty_config_get_apps (self->config)[0] == NULL)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_FAILED,
                           "no app is configured (dirty_apps): a worker would have none to load");
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      g_auto(GStrv) apps = dirty_pool_apps_for_new_worker (self);

      if (apps[0] == NULL)
        {
          /* a worker refuses to start without an app */
          g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_FAILED,
                               "a new worker would have no app: every app has its "
                               "MODULE:TypeName:N workers already");
          return FALSE;
        }
      dirty_pool_slot_spawn_or_retry (dirty_pool_add_slot (self, g_steal_pointer (&apps)));
    }
  return TRUE;
}

/* Removes the highest-numbered workers that load only apps every worker
 * loads, so an app with :N keeps its N workers and the last worker
 * stays. All or nothing. */
static gboolean
dirty_pool_shrink (DirtyPool  *self,
                   guint       n,
                   GError    **error)
{
  g_autoptr(GPtrArray) removable = g_ptr_array_new ();
  guint active = dirty_pool_count_active (self);

  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (slot_is_active (slot) && !slot_has_counted_app (slot))
        g_ptr_array_add (removable, slot);
    }
  if (n >= active || n > removable->len)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_FAILED,
                   "cannot remove %u of %u workers: %u can go without leaving an app "
                   "with fewer workers than it needs (MODULE:TypeName:N) or the pool empty",
                   n, active, MIN (removable->len, active - 1));
      return FALSE;
    }
  for (guint k = 0; k < n; k++)
    {
      guint best = 0;

      for (guint i = 1; i < removable->len; i++)
        if (((Slot *) removable->pdata[i])->id > ((Slot *) removable->pdata[best])->id)
          best = i;
      dirty_pool_slot_retire (g_ptr_array_steal_index_fast (removable, best));
    }
  return TRUE;
}

gboolean
dirty_pool_scale (DirtyPool  *self,
                  int         delta,
                  guint      *out_total,
                  GError    **error)
{
  gboolean ok;

  g_return_val_if_fail (DIRTY_IS_POOL (self), FALSE);

  if (self->stopping)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_SHUTTING_DOWN,
                           "the arbiter is shutting down");
      return FALSE;
    }
  if (delta == 0)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                           "the change in workers must not be 0");
      return FALSE;
    }
  ok = delta > 0 ? dirty_pool_grow (self, (guint) delta, error)
                 : dirty_pool_shrink (self, (guint) -(gint64) delta, error);
  if (ok)
    dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0, "workers: %+d, now %u",
               delta, dirty_pool_count_active (self));
  if (out_total != NULL)
    *out_total = dirty_pool_count_active (self);
  return ok;
}

/* ---- stopping ---- */

static gboolean
dirty_pool_kill_cb (gpointer user_data)
{
  DirtyPool *self = user_data;

  self->kill_source = 0;
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (slot->proc != NULL)
        dirty_worker_proc_kill (slot->proc,
                                "still running " G_STRINGIFY (DIRTY_POOL_KILL_AFTER_S)
                                " s after SIGTERM");
    }
  return G_SOURCE_REMOVE;
}

static gboolean
dirty_pool_stopped_idle_cb (gpointer user_data)
{
  dirty_pool_check_stopped (user_data);
  return G_SOURCE_REMOVE;
}

void
dirty_pool_stop (DirtyPool *self,
                 gboolean   immediate)
{
  g_return_if_fail (DIRTY_IS_POOL (self));

  self->stopping = TRUE;
  g_clear_handle_id (&self->rss_source, g_source_remove);
  if (self->handoff && self->launcher != NULL)
    dirty_pool_release_workers (self);
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      g_clear_handle_id (&slot->respawn_source, g_source_remove);
      if (slot->proc == NULL)
        continue;
      /* the arbiter said "immediate shutdown" once for all of them */
      if (immediate)
        dirty_worker_proc_kill (slot->proc, NULL);
      else
        dirty_worker_proc_terminate (slot->proc);
    }
  if (!immediate && self->kill_source == 0)
    self->kill_source = g_timeout_add_seconds (DIRTY_POOL_KILL_AFTER_S, dirty_pool_kill_cb, self);
  /* report it from the loop even when nothing runs, like any other stop */
  g_idle_add_full (G_PRIORITY_DEFAULT, dirty_pool_stopped_idle_cb,
                   g_object_ref (self), g_object_unref);
}

void
dirty_pool_set_reply_func (DirtyPool                *self,
                           DirtyWorkerProcReplyFunc  func,
                           gpointer                  user_data)
{
  g_return_if_fail (DIRTY_IS_POOL (self));

  self->reply_func = func;
  self->reply_data = user_data;
}

/* ---- queries ---- */

GPtrArray *
dirty_pool_list_workers (DirtyPool *self)
{
  GPtrArray *workers = g_ptr_array_sized_new (self->slots->len);

  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (slot->proc != NULL)
        g_ptr_array_add (workers, slot->proc);
    }
  return workers;
}

guint
dirty_pool_get_n_slots (DirtyPool *self)
{
  return self->slots->len;
}

DirtyWorkerProc *
dirty_pool_get_slot_worker (DirtyPool *self,
                            guint      i)
{
  g_return_val_if_fail (i < self->slots->len, NULL);

  return ((Slot *) self->slots->pdata[i])->proc;
}

gboolean
dirty_pool_is_starting (DirtyPool *self)
{
  if (self->stopping)
    return FALSE;
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (slot->retiring)
        continue;
      /* retire-first recycling: its replacement starts once it exited */
      if (slot->recycle == RECYCLE_DRAINING)
        return TRUE;
      /* a lost one is about to be replaced */
      if (slot->proc == NULL || dirty_worker_proc_get_state (slot->proc) != DIRTY_WORKER_PROC_LIVE)
        return TRUE;
    }
  return FALSE;
}

guint
dirty_pool_get_size (DirtyPool *self)
{
  return dirty_pool_count_active (self);
}

guint
dirty_pool_get_generation (DirtyPool *self)
{
  return self->generation;
}

gboolean
dirty_pool_is_stopping (DirtyPool *self)
{
  return self->stopping;
}

guint
dirty_pool_get_restarts (DirtyPool *self,
                         guint      worker_id)
{
  Slot *slot = dirty_pool_find_slot (self, worker_id);

  return slot != NULL ? slot->restarts : 0;
}

guint
dirty_pool_get_worker_generation (DirtyPool *self,
                                  guint      worker_id)
{
  Slot *slot = dirty_pool_find_slot (self, worker_id);

  return slot != NULL ? slot->generation : 0;
}
