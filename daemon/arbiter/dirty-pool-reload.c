/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyPool's reload: a new generation of workers starts next to the
 * old one, which retires once the new workers are ready. An app that
 * served before and fails to start in the new workers keeps the old
 * workers that serve it: a broken deploy does not take a working app
 * down (as a rolling update stalls on pods that never get ready). */
#include "config.h"

#include "dirty-log.h"
#include "dirty-pool-private.h"

/* Every worker of the newest generation said hello and every app it
 * loads has settled (ready, failed or unavailable). */
static gboolean
dirty_pool_generation_settled (DirtyPool *self)
{
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (slot->generation != self->generation || slot->retiring)
        continue;
      if (!dirty_pool_slot_is_settled (slot))
        return FALSE;
    }
  return TRUE;
}

/* Whether @app is ready on no worker of the newest generation but on
 * one of an older generation: the reload would take it down. */
static gboolean
dirty_pool_app_regressed (DirtyPool  *self,
                          const char *app)
{
  gboolean served_before = FALSE;

  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (!dirty_pool_slot_serves (slot, app))
        continue;
      if (slot->generation == self->generation)
        return FALSE;
      served_before = TRUE;
    }
  return served_before;
}

/* The apps of the newest config that regressed (above) */
static GPtrArray *
dirty_pool_regressed_apps (DirtyPool *self)
{
  const char * const *apps = dirty_config_get_apps (self->config);
  GPtrArray *regressed = g_ptr_array_new ();

  for (guint a = 0; apps[a] != NULL; a++)
    if (dirty_pool_app_regressed (self, apps[a]))
      g_ptr_array_add (regressed, (gpointer) apps[a]);
  return regressed;
}

/* Why @app is not ready in the newest generation, as its worker said */
static const char *
dirty_pool_new_app_error (DirtyPool  *self,
                          const char *app)
{
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];
      const char *message = NULL;

      if (slot->generation == self->generation && !slot->retiring && slot->proc != NULL &&
          g_strv_contains ((const char * const *) slot->apps, app))
        {
          dirty_worker_proc_get_app_state (slot->proc, app, &message);
          if (message != NULL)
            return message;
        }
    }
  return "no reason given";
}

/* Retires the workers of generation @generation (or of every other
 * generation, with @others) but those serving one of @keep (nullable);
 * returns how many */
static guint
dirty_pool_retire_generation (DirtyPool *self,
                              guint      generation,
                              gboolean   others,
                              GPtrArray *keep)
{
  g_autoptr(GPtrArray) retired = g_ptr_array_new ();

  /* first the list: retiring a worker waiting for its respawn removes
   * its slot */
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];
      gboolean kept = FALSE;

      for (guint k = 0; keep != NULL && k < keep->len && !kept; k++)
        kept = dirty_pool_slot_serves (slot, keep->pdata[k]);
      if (!slot->retiring && !kept && (slot->generation == generation) != others)
        g_ptr_array_add (retired, slot);
    }
  for (guint i = 0; i < retired->len; i++)
    dirty_pool_slot_retire (retired->pdata[i]);
  return retired->len;
}

/* The new workers have settled, but @regressed apps failed in them: the
 * old workers that serve those stay, the others leave. Said once per
 * reload; the check runs again whenever an app's state changes, and a
 * failed init() is retried with backoff. */
static void
dirty_pool_hold_old (DirtyPool *self,
                     GPtrArray *regressed)
{
  guint retired = dirty_pool_retire_generation (self, self->generation, TRUE, regressed);

  if (self->holding)
    return;
  self->holding = TRUE;
  for (guint i = 0; i < regressed->len; i++)
    dirty_log (G_LOG_LEVEL_WARNING, regressed->pdata[i], NULL, 0, 0, 0,
               "reload: app %s did not start in the new workers (%s); the old workers "
               "that serve it stay until it does (a failed init() is retried) or until "
               "the next reload",
               (const char *) regressed->pdata[i],
               dirty_pool_new_app_error (self, regressed->pdata[i]));
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "reload: generation %u is not complete: %u old workers finish their calls "
             "and exit, the others stay", self->generation, retired);
}

/* After a reload, once the new workers are ready: the old ones take no
 * new calls, finish theirs and leave. Until then both serve, so no call
 * waits on the switch. */
void
dirty_pool_check_generation (DirtyPool *self)
{
  g_autoptr(GPtrArray) regressed = NULL;
  guint retired;

  if (!self->reloading || self->stopping || !dirty_pool_generation_settled (self))
    return;
  regressed = dirty_pool_regressed_apps (self);
  if (regressed->len > 0)
    {
      dirty_pool_hold_old (self, regressed);
      return;
    }
  self->reloading = FALSE;
  self->holding = FALSE;
  retired = dirty_pool_retire_generation (self, self->generation, TRUE, NULL);
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "reload: the new workers are ready; %u old ones finish their calls and exit",
             retired);
  g_signal_emit (self, dirty_pool_signals[SIGNAL_GENERATION_READY], 0, self->generation);
}

gboolean
dirty_pool_get_reloading (DirtyPool  *self,
                          GPtrArray **out_held)
{
  if (out_held != NULL)
    *out_held = self->holding ? dirty_pool_regressed_apps (self) : g_ptr_array_new ();
  return self->reloading;
}

guint
dirty_pool_reload (DirtyPool   *self,
                   DirtyConfig *config)
{
  g_autoptr(GPtrArray) added = NULL;

  g_return_val_if_fail (DIRTY_IS_POOL (self), 0);
  g_return_val_if_fail (!self->stopping, 0);

  /* A reload before the last one's workers are ready supersedes it:
   * those give way (finishing any call they took), and the workers
   * before them serve on until the newest are ready. Refusing it left
   * a config whose new app hangs in init() with no way back but a
   * restart. */
  if (self->reloading)
    dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
               "reload: generation %u, not ready yet, gives way (%u workers)",
               self->generation,
               dirty_pool_retire_generation (self, self->generation, FALSE, NULL));

  if (dirty_config_get_worker_mode (config) != dirty_config_get_worker_mode (self->config) ||
      g_strcmp0 (dirty_config_get_worker_socket (config),
                 dirty_config_get_worker_socket (self->config)) != 0)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
               "reload: worker_mode and worker_socket apply at the next start");
  g_set_object (&self->config, config);
  dirty_pool_watch_rss (self);
  self->generation++;
  self->reloading = TRUE;
  self->holding = FALSE;
  added = dirty_pool_add_generation (self, dirty_pool_wanted (config));
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "reload: starting generation %u (%u workers)", self->generation, added->len);
  for (guint i = 0; i < added->len; i++)
    dirty_pool_slot_spawn_or_retry (added->pdata[i]);
  /* with no worker to wait for (no app listed), the old ones go now */
  dirty_pool_check_generation (self);
  return self->generation;
}
