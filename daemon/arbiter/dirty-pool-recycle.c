/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyPool's recycling: a worker that reached dirty_max_requests or
 * dirty_max_rss is replaced (replace-first or retire-first), and one over
 * dirty_kill_rss is killed; the resident sizes are checked on a timer. */
#include "config.h"

#include "dirty-log.h"
#include "dirty-pool-private.h"

#define RSS_CHECK_MS       250    /* a runaway allocation is fast */

/* A worker reached dirty_max_requests or dirty_max_rss. replace-first:
 * a new slot with the same apps starts, and the old worker serves until
 * it is ready (dirty_pool_check_recycles), so its apps always have a
 * worker. retire-first: the old worker takes no new calls, leaves once
 * its calls have ended, and its slot starts the replacement then. */
void
dirty_pool_slot_recycle (Slot       *slot,
              const char *reason)
{
  DirtyPool *self = slot->pool;
  Slot *replacement;

  /* a reload replaces every worker anyway; one held for an app that
   * did not start (dirty-pool-reload.c) may last, and its new workers
   * are settled */
  if (self->stopping || (self->reloading && !self->holding) || slot->retiring || slot->recycle != RECYCLE_NONE ||
      slot->generation != self->generation || slot->proc == NULL ||
      dirty_worker_proc_get_state (slot->proc) != DIRTY_WORKER_PROC_LIVE)
    return;
  if (dirty_config_get_recycle_order (self->config) == DIRTY_RECYCLE_RETIRE_FIRST)
    {
      slot->recycle = RECYCLE_DRAINING;
      dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, dirty_worker_proc_get_pid (slot->proc),
                 slot->id, "worker %u reached %s: it finishes its calls, then a new one starts",
                 slot->id, reason);
      dirty_worker_proc_set_retiring (slot->proc);
      dirty_pool_slot_terminate_if_idle (slot);
      return;
    }
  slot->recycle = RECYCLE_REPLACING;
  /* dirty_max_requests is a hard limit: calls that come meanwhile wait
   * for the replacement (never fail). Over dirty_max_rss it keeps
   * serving until then. */
  if (g_str_equal (reason, "dirty_max_requests"))
    dirty_worker_proc_set_retiring (slot->proc);
  replacement = dirty_pool_add_slot (self, g_strdupv (slot->apps));
  replacement->restarts = slot->restarts + 1;
  slot->replacement = replacement->id;
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, dirty_worker_proc_get_pid (slot->proc),
             slot->id, "worker %u reached %s: worker %u starts to replace it",
             slot->id, reason, replacement->id);
  dirty_pool_slot_spawn_or_retry (replacement);
  g_signal_emit (self, dirty_pool_signals[SIGNAL_WORKER_CHANGED], 0, replacement->proc);
}

/* Whether a worker other than @slot, settled in its place (live, not
 * retiring, not being replaced itself), has @app ready */
static gboolean
served_elsewhere (Slot       *slot,
                  const char *app)
{
  GPtrArray *slots = slot->pool->slots;

  for (guint i = 0; i < slots->len; i++)
    {
      Slot *other = slots->pdata[i];

      if (other != slot && other->recycle == RECYCLE_NONE && dirty_pool_slot_serves (other, app))
        return TRUE;
    }
  return FALSE;
}

/* The first app @slot serves that no other worker does now: its init()
 * failed in the replacement (it is retried there), or NULL. A worker
 * recycled for dirty_max_rss serves on until then rather than take the
 * app down with it, also when the replacement is recycled in turn; one
 * at dirty_max_requests takes no calls anyway. */
static const char *
only_server_of (Slot *slot)
{
  if (slot->proc == NULL || dirty_worker_proc_is_retiring (slot->proc))
    return NULL;
  for (guint a = 0; slot->apps[a] != NULL; a++)
    if (dirty_pool_slot_serves (slot, slot->apps[a]) && !served_elsewhere (slot, slot->apps[a]))
      return slot->apps[a];
  return NULL;
}

/* Whether @slot, replaced by @replacement (NULL once gone), may retire
 * now; said once when it may not */
static gboolean
replacement_is_ready (Slot *slot,
                      Slot *replacement)
{
  const char *lacking;
  const char *why = NULL;

  if (replacement != NULL && !replacement->retiring && !dirty_pool_slot_is_settled (replacement))
    return FALSE;
  lacking = only_server_of (slot);
  if (lacking == NULL)
    return TRUE;
  if (!slot->recycle_held)
    {
      slot->recycle_held = TRUE;
      if (replacement != NULL && replacement->proc != NULL)
        dirty_worker_proc_get_app_state (replacement->proc, lacking, &why);
      dirty_log (G_LOG_LEVEL_WARNING, lacking, NULL, 0, dirty_worker_proc_get_pid (slot->proc),
                 slot->id, "worker %u: its replacement, worker %u, did not start app %s (%s); "
                 "worker %u serves on until a worker does", slot->id, slot->replacement, lacking,
                 why ? why : "no reason given", slot->id);
    }
  return FALSE;
}

/* replace-first: a worker whose replacement is ready (or gone) retires */
void
dirty_pool_check_recycles (DirtyPool *self)
{
  g_autoptr(GPtrArray) done = g_ptr_array_new ();

  if (self->stopping)
    return;
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];
      Slot *replacement;

      if (slot->recycle != RECYCLE_REPLACING || slot->retiring)
        continue;
      replacement = dirty_pool_find_slot (self, slot->replacement);
      if (replacement_is_ready (slot, replacement))
        g_ptr_array_add (done, slot);
    }
  for (guint i = 0; i < done->len; i++)
    dirty_pool_slot_retire (done->pdata[i]);
}

/* dirty_kill_rss: a worker above it is killed at once, whatever it
 * runs. Recycling cannot bound a runaway allocation: the old worker
 * leaves only once its calls have ended, and the call that allocates
 * ends at its deadline at the earliest. */
static void
dirty_pool_kill_over_rss (DirtyPool *self,
                          guint      kill_rss)
{
  g_autoptr(GPtrArray) over = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];

      if (slot->proc != NULL &&
          dirty_worker_proc_read_rss (slot->proc) > (gint64) kill_rss * 1024 * 1024)
        g_ptr_array_add (over, g_object_ref (slot->proc));
    }
  /* killing ends calls and may respawn slots: not while iterating */
  for (guint i = 0; i < over->len; i++)
    {
      g_autofree char *reason = g_strdup_printf ("more than dirty_kill_rss=%u MiB resident",
                                                 kill_rss);

      dirty_worker_proc_kill (over->pdata[i], reason);
    }
}

static gboolean
dirty_pool_check_rss_cb (gpointer user_data)
{
  DirtyPool *self = user_data;
  guint max_rss = dirty_config_get_max_rss (self->config);
  guint kill_rss = dirty_config_get_kill_rss (self->config);
  g_autoptr(GPtrArray) over = g_ptr_array_new ();

  if (self->stopping)
    return G_SOURCE_CONTINUE;
  if (kill_rss > 0)
    dirty_pool_kill_over_rss (self, kill_rss);
  if (max_rss == 0)
    return G_SOURCE_CONTINUE;
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];
      gint64 rss;

      if (slot->proc == NULL || slot->retiring || slot->recycle != RECYCLE_NONE)
        continue;
      rss = dirty_worker_proc_read_rss (slot->proc);
      if (rss > (gint64) max_rss * 1024 * 1024)
        {
          dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, dirty_worker_proc_get_pid (slot->proc),
                     slot->id, "worker %u uses %" G_GINT64_FORMAT " MiB, more than "
                     "dirty_max_rss=%u", slot->id, rss / (1024 * 1024), max_rss);
          g_ptr_array_add (over, slot);
        }
    }
  /* dirty_pool_slot_recycle may add slots: not while iterating */
  for (guint i = 0; i < over->len; i++)
    dirty_pool_slot_recycle (over->pdata[i], "dirty_max_rss");
  return G_SOURCE_CONTINUE;
}

void
dirty_pool_watch_rss (DirtyPool *self)
{
  gboolean wanted = !self->stopping && (dirty_config_get_max_rss (self->config) > 0 ||
                                        dirty_config_get_kill_rss (self->config) > 0);

  /* without a limit there is nothing to check: no timer, which the main
   * loop would visit in every iteration and wake up for 4 times a second */
  if (wanted && self->rss_source == 0)
    self->rss_source = g_timeout_add (RSS_CHECK_MS, dirty_pool_check_rss_cb, self);
  else if (!wanted)
    g_clear_handle_id (&self->rss_source, g_source_remove);
}
