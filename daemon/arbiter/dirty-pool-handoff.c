/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyPool's part of the restart handoff (unit mode, dirty-handoff.h):
 * the previous arbiter's workers taken into slots at start, and the idle
 * ones given up at stop for the next arbiter. */
#include "config.h"

#include <unistd.h>

#include "dirty-handoff.h"
#include "dirty-log.h"
#include "dirty-pool-private.h"

/* Closes the fds of an array of DirtyHandoffWorker and frees it */
void
dirty_pool_close_handoff (GArray *workers)
{
  if (workers == NULL)
    return;
  for (guint i = 0; i < workers->len; i++)
    if (g_array_index (workers, DirtyHandoffWorker, i).fd >= 0)
      close (g_array_index (workers, DirtyHandoffWorker, i).fd);
  g_array_unref (workers);
}

/* ---- restart handoff (unit mode, dirty-handoff.h) ---- */

void
dirty_pool_adopt (DirtyPool *self,
                  GArray    *workers)
{
  g_return_if_fail (DIRTY_IS_POOL (self));
  g_return_if_fail (self->adopted == NULL);

  self->adopted = g_array_ref (workers);
}

/* Worker @worker of the previous arbiter in a slot of its own id */
static Slot *
dirty_pool_adopt_slot (DirtyPool          *self,
                       DirtyHandoffWorker *worker,
                       GStrv               apps)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd (worker->fd, &error);
  DirtyWorkerProcOptions options = dirty_pool_options (self, apps);
  Slot *slot;
  guint32 restarts = 0;

  if (socket != NULL)
    worker->fd = -1;   /* the socket's now */
  /* one connection per worker id: another is not ours to serve */
  if (socket != NULL && dirty_pool_find_slot (self, worker->id) != NULL)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_EXISTS, "a second connection for this worker");
  if (socket == NULL || error != NULL)
    {
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, worker->id,
                 "handoff: worker %u's connection cannot be used: %s", worker->id, error->message);
      g_strfreev (apps);
      return NULL;   /* the fd is closed with the socket or the array */
    }
  slot = dirty_pool_add_slot (self, apps);
  slot->id = worker->id;
  if (g_variant_lookup (worker->facts, "restarts", "u", &restarts))
    slot->restarts = restarts;
  slot->proc = dirty_worker_proc_adopt_unit (worker->id, worker->facts, &options,
                                             self->launcher, socket);
  dirty_pool_slot_watch_proc (slot);
  return slot;
}

static GStrv
facts_apps (GVariant *facts)
{
  g_autoptr(GVariant) apps = g_variant_lookup_value (facts, "apps", G_VARIANT_TYPE_STRING_ARRAY);

  return apps != NULL ? g_variant_dup_strv (apps, NULL) : g_new0 (char *, 1);
}

/* At start after a restart: the previous arbiter's workers, each kept
 * when its apps and settings are what this config would start (in the
 * place of one of the @n new workers), else kept as the old generation
 * of a reload: they serve until the new ones are ready, then leave.
 * Returns the slots still to start. */
GPtrArray *
dirty_pool_adopt_generation (DirtyPool *self,
                             guint      n)
{
  g_autoptr(GPtrArray) app_sets = dirty_pool_assign_apps (self, n);
  guint n_adopted = self->adopted->len, kept = 0, replaced = 0;
  g_autofree GStrv *matched = g_new0 (GStrv, n_adopted);   /* the config's apps, or NULL */
  GPtrArray *added = g_ptr_array_new ();

  for (guint w = 0; w < n_adopted; w++)
    {
      GVariant *facts = g_array_index (self->adopted, DirtyHandoffWorker, w).facts;

      for (guint k = 0; k < app_sets->len && matched[w] == NULL; k++)
        {
          DirtyWorkerProcOptions options = dirty_pool_options (self, app_sets->pdata[k]);

          if (app_sets->pdata[k] != NULL && dirty_worker_proc_facts_match (facts, &options))
            matched[w] = g_steal_pointer (&app_sets->pdata[k]);
        }
    }
  /* the ones that do not match first, as generation 1 of a reload */
  for (guint w = 0; w < n_adopted; w++)
    {
      DirtyHandoffWorker *worker = &g_array_index (self->adopted, DirtyHandoffWorker, w);

      if (matched[w] == NULL)
        replaced += dirty_pool_adopt_slot (self, worker, facts_apps (worker->facts)) != NULL;
    }
  if (replaced > 0)
    {
      self->generation++;
      self->reloading = TRUE;
    }
  for (guint w = 0; w < n_adopted; w++)
    if (matched[w] != NULL)
      kept += dirty_pool_adopt_slot (self, &g_array_index (self->adopted, DirtyHandoffWorker, w),
                                     g_steal_pointer (&matched[w])) != NULL;
  for (guint k = 0; k < app_sets->len; k++)
    if (app_sets->pdata[k] != NULL)
      g_ptr_array_add (added, dirty_pool_add_slot (self, g_steal_pointer (&app_sets->pdata[k])));
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "handoff: took back %u workers from the fd store (%u kept, %u replaced as in a "
             "reload: their apps or settings changed), %u new", kept + replaced, kept, replaced,
             added->len);
  return added;
}

void
dirty_pool_set_handoff (DirtyPool *self,
                        gboolean   handoff)
{
  g_return_if_fail (DIRTY_IS_POOL (self));

  self->handoff = handoff;
}

/* dirty_pool_stop() with a handoff: the idle unit workers are given up,
 * not stopped */
void
dirty_pool_release_workers (DirtyPool *self)
{
  if (self->released == NULL)
    {
      self->released = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffWorker));
      g_array_set_clear_func (self->released, (GDestroyNotify) dirty_handoff_worker_clear);
    }
  for (guint i = 0; i < self->slots->len; i++)
    {
      Slot *slot = self->slots->pdata[i];
      DirtyHandoffWorker worker = { -1, slot->id, NULL };
      GVariantDict facts;

      if (slot->proc == NULL || slot->retiring || slot->recycle != RECYCLE_NONE)
        continue;
      g_variant_dict_init (&facts, NULL);
      worker.fd = dirty_worker_proc_release (slot->proc, &facts);
      if (worker.fd < 0)
        {
          g_variant_dict_clear (&facts);
          continue;
        }
      g_variant_dict_insert (&facts, "restarts", "u", (guint32) slot->restarts);
      worker.facts = g_variant_ref_sink (g_variant_dict_end (&facts));
      g_array_append_val (self->released, worker);
      dirty_pool_slot_clear_proc (slot);
    }
}

GArray *
dirty_pool_take_released (DirtyPool *self)
{
  g_return_val_if_fail (DIRTY_IS_POOL (self), NULL);

  if (self->released == NULL)
    {
      self->released = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffWorker));
      g_array_set_clear_func (self->released, (GDestroyNotify) dirty_handoff_worker_clear);
    }
  return g_steal_pointer (&self->released);
}
