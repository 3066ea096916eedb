/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-log.h"
#include "dirty-pool.h"

#define BACKOFF_MIN_MS     1000
#define BACKOFF_MAX_MS     30000
#define DIED_YOUNG_US      (5 * G_USEC_PER_SEC)
#define LIVED_LONG_US      (60 * G_USEC_PER_SEC)

typedef struct {
  DirtyPool       *pool;         /* (unowned) */
  guint            id;           /* worker_id: 1..dirty_workers */
  DirtyWorkerProc *proc;         /* (nullable) */
  guint            respawn_source;
} Slot;

struct _DirtyPool
{
  GObject      parent_instance;

  DirtyConfig *config;
  DirtyLimits  limits;
  char        *binary;
  Slot        *slots;
  guint        n_slots;
  guint        backoff_ms;       /* delay before replacing a worker that died young */
  gboolean     stopping;
  gboolean     stopped;          /* "stopped" was emitted */
  guint        kill_source;
};

enum {
  SIGNAL_WORKER_CHANGED,
  SIGNAL_WORKER_REPLY,
  SIGNAL_WORKER_LOST,
  SIGNAL_WORKER_EXITED,
  SIGNAL_STOPPED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (DirtyPool, dirty_pool, G_TYPE_OBJECT)

static void
slot_clear_proc (Slot *slot)
{
  if (slot->proc == NULL)
    return;
  g_signal_handlers_disconnect_by_data (slot->proc, slot);
  g_clear_object (&slot->proc);
}

static void
dirty_pool_dispose (GObject *object)
{
  DirtyPool *self = DIRTY_POOL (object);

  for (guint i = 0; i < self->n_slots; i++)
    {
      g_clear_handle_id (&self->slots[i].respawn_source, g_source_remove);
      slot_clear_proc (&self->slots[i]);
    }
  g_clear_handle_id (&self->kill_source, g_source_remove);
  G_OBJECT_CLASS (dirty_pool_parent_class)->dispose (object);
}

static void
dirty_pool_finalize (GObject *object)
{
  DirtyPool *self = DIRTY_POOL (object);

  g_free (self->slots);
  g_free (self->binary);
  g_clear_object (&self->config);
  G_OBJECT_CLASS (dirty_pool_parent_class)->finalize (object);
}

static void
dirty_pool_class_init (DirtyPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_pool_dispose;
  object_class->finalize = dirty_pool_finalize;

  signals[SIGNAL_WORKER_CHANGED] =
    g_signal_new ("worker-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
  signals[SIGNAL_WORKER_REPLY] =
    g_signal_new ("worker-reply", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 4, DIRTY_TYPE_WORKER_PROC,
                  G_TYPE_POINTER, G_TYPE_POINTER, G_TYPE_BOOLEAN);
  signals[SIGNAL_WORKER_LOST] =
    g_signal_new ("worker-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
  signals[SIGNAL_WORKER_EXITED] =
    g_signal_new ("worker-exited", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, DIRTY_TYPE_WORKER_PROC);
  signals[SIGNAL_STOPPED] =
    g_signal_new ("stopped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dirty_pool_init (DirtyPool *self)
{
  self->backoff_ms = BACKOFF_MIN_MS;
}

DirtyPool *
dirty_pool_new (DirtyConfig       *config,
                const DirtyLimits *limits)
{
  DirtyPool *self = g_object_new (DIRTY_TYPE_POOL, NULL);
  const char *env = g_getenv ("DIRTY_WORKER_PATH");

  self->config = g_object_ref (config);
  self->limits = *limits;
  self->binary = (env != NULL && *env != '\0')
                   ? g_strdup (env)
                   : g_build_filename (DIRTY_LIBEXECDIR, "dirty-worker", NULL);
  self->n_slots = dirty_config_get_workers (config);
  self->slots = g_new0 (Slot, self->n_slots);
  for (guint i = 0; i < self->n_slots; i++)
    {
      self->slots[i].pool = self;
      self->slots[i].id = i + 1;
    }
  return self;
}

static void
slot_apps_changed_cb (DirtyWorkerProc *proc,
                      Slot            *slot)
{
  g_signal_emit (slot->pool, signals[SIGNAL_WORKER_CHANGED], 0, proc);
}

static void
slot_reply_cb (DirtyWorkerProc *proc,
               gpointer         job,
               gpointer         frame,
               gboolean         terminal,
               Slot            *slot)
{
  g_signal_emit (slot->pool, signals[SIGNAL_WORKER_REPLY], 0, proc, job, frame, terminal);
}

static void
slot_lost_cb (DirtyWorkerProc *proc,
              Slot            *slot)
{
  g_signal_emit (slot->pool, signals[SIGNAL_WORKER_LOST], 0, proc);
}

static void slot_exited_cb (DirtyWorkerProc *proc,
                            Slot            *slot);

static gboolean
slot_spawn (Slot    *slot,
            GError **error)
{
  DirtyPool *self = slot->pool;
  DirtyWorkerProcOptions options = {
    .binary = self->binary,
    .apps = dirty_config_get_apps (self->config),
    .app_path = dirty_config_get_app_path (self->config),
    .threads = dirty_config_get_threads (self->config),
    .limits = &self->limits,
  };

  slot->proc = dirty_worker_proc_spawn (slot->id, &options, error);
  if (slot->proc == NULL)
    return FALSE;
  g_signal_connect (slot->proc, "apps-changed", G_CALLBACK (slot_apps_changed_cb), slot);
  g_signal_connect (slot->proc, "reply", G_CALLBACK (slot_reply_cb), slot);
  g_signal_connect (slot->proc, "lost", G_CALLBACK (slot_lost_cb), slot);
  g_signal_connect (slot->proc, "exited", G_CALLBACK (slot_exited_cb), slot);
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
  if (!slot_spawn (slot, &error))
    {
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, slot->id,
                 "cannot start worker %u: %s", slot->id, error->message);
      slot_schedule_respawn (slot, slot->pool->backoff_ms);
      slot->pool->backoff_ms = MIN (slot->pool->backoff_ms * 2, BACKOFF_MAX_MS);
    }
  /* a new worker may be about to serve apps nobody serves now */
  g_signal_emit (slot->pool, signals[SIGNAL_WORKER_CHANGED], 0, slot->proc);
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
  for (guint i = 0; i < self->n_slots; i++)
    if (self->slots[i].proc != NULL)
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
  g_signal_emit (self, signals[SIGNAL_STOPPED], 0);
}

static void
slot_exited_cb (DirtyWorkerProc *proc,
                Slot            *slot)
{
  DirtyPool *self = slot->pool;
  g_autoptr(DirtyWorkerProc) hold = g_object_ref (proc);
  gint64 lifetime = g_get_monotonic_time () - dirty_worker_proc_get_started (proc);

  slot_clear_proc (slot);
  g_signal_emit (self, signals[SIGNAL_WORKER_EXITED], 0, proc);
  if (self->stopping)
    dirty_pool_check_stopped (self);
  else
    slot_schedule_respawn (slot, dirty_pool_next_delay (self, lifetime));
}

gboolean
dirty_pool_start (DirtyPool  *self,
                  GError    **error)
{
  g_return_val_if_fail (DIRTY_IS_POOL (self), FALSE);

  for (guint i = 0; i < self->n_slots; i++)
    if (self->slots[i].proc == NULL && !slot_spawn (&self->slots[i], error))
      {
        g_prefix_error (error, "%s: ", self->binary);
        return FALSE;
      }
  return TRUE;
}

static gboolean
dirty_pool_kill_cb (gpointer user_data)
{
  DirtyPool *self = user_data;

  self->kill_source = 0;
  for (guint i = 0; i < self->n_slots; i++)
    if (self->slots[i].proc != NULL)
      dirty_worker_proc_kill (self->slots[i].proc,
                              "still running " G_STRINGIFY (DIRTY_POOL_KILL_AFTER_S)
                              " s after SIGTERM");
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
  for (guint i = 0; i < self->n_slots; i++)
    {
      Slot *slot = &self->slots[i];

      g_clear_handle_id (&slot->respawn_source, g_source_remove);
      if (slot->proc == NULL)
        continue;
      if (immediate)
        dirty_worker_proc_kill (slot->proc, "immediate shutdown");
      else
        dirty_worker_proc_terminate (slot->proc);
    }
  if (!immediate && self->kill_source == 0)
    self->kill_source = g_timeout_add_seconds (DIRTY_POOL_KILL_AFTER_S, dirty_pool_kill_cb, self);
  /* report it from the loop even when nothing runs, like any other stop */
  g_idle_add_full (G_PRIORITY_DEFAULT, dirty_pool_stopped_idle_cb,
                   g_object_ref (self), g_object_unref);
}

GPtrArray *
dirty_pool_list_workers (DirtyPool *self)
{
  GPtrArray *workers = g_ptr_array_sized_new (self->n_slots);

  for (guint i = 0; i < self->n_slots; i++)
    if (self->slots[i].proc != NULL)
      g_ptr_array_add (workers, self->slots[i].proc);
  return workers;
}

gboolean
dirty_pool_is_starting (DirtyPool *self)
{
  if (self->stopping)
    return FALSE;
  for (guint i = 0; i < self->n_slots; i++)
    {
      DirtyWorkerProc *proc = self->slots[i].proc;

      /* a lost one is about to be replaced */
      if (proc == NULL || dirty_worker_proc_get_state (proc) != DIRTY_WORKER_PROC_LIVE)
        return TRUE;
    }
  return FALSE;
}

guint
dirty_pool_get_size (DirtyPool *self)
{
  return self->n_slots;
}
