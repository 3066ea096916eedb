/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restart handoff of DirtyArbiter (README, "Restart without losing
 * connections"; the fd store itself: dirty-handoff.c): the fds a
 * previous arbiter left in the store, taken back at start, and the
 * connections and workers given to it on SIGTERM. */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "dirty-arbiter-private.h"
#include "dirty-handoff.h"
#include "dirty-log.h"
#include "dirty-peer.h"
#include "dirty-pool.h"

/* The fds of a restart handoff (dirty-handoff.h), kept for
 * dirty_arbiter_restore_clients(): TRUE if @name is one of theirs. */
gboolean
dirty_arbiter_keep_stored_fd (DirtyArbiter *self,
                              const char   *name,
                              int           fd)
{
  DirtyHandoffWorker worker = { fd, dirty_handoff_worker_id_from_name (name), NULL };
  DirtyHandoffAttach attach = { fd, dirty_handoff_attach_id_from_name (name) };

  if (g_strcmp0 (name, DIRTY_HANDOFF_CLIENT_NAME) == 0)
    {
      if (self->stored_fds == NULL)
        self->stored_fds = g_array_new (FALSE, FALSE, sizeof (int));
      g_array_append_val (self->stored_fds, fd);
    }
  else if (worker.id > 0)
    {
      if (self->stored_workers == NULL)
        self->stored_workers = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffWorker));
      g_array_append_val (self->stored_workers, worker);
    }
  else if (attach.id > 0)
    {
      if (self->stored_attach == NULL)
        self->stored_attach = g_array_new (FALSE, FALSE, sizeof (DirtyHandoffAttach));
      g_array_append_val (self->stored_attach, attach);
    }
  else if (g_strcmp0 (name, DIRTY_HANDOFF_STATE_NAME) == 0 && self->state_fd < 0)
    self->state_fd = fd;
  else
    return FALSE;
  fcntl (fd, F_SETFD, FD_CLOEXEC);
  return TRUE;
}

/* ---- restart handoff (dirty-handoff.h) ---- */

/* At start: the connections a previous arbiter left in the fd store */
void
dirty_arbiter_restore_clients (DirtyArbiter *self)
{
  g_autoptr(GArray) conns = NULL;
  guint restored = 0;

  if (self->stored_fds == NULL && self->handoff_state == NULL)
    return;
  if (self->stored_fds == NULL)
    self->stored_fds = g_array_new (FALSE, FALSE, sizeof (int));
  if (self->handoff_state == NULL)
    self->handoff_state = dirty_handoff_state_read (-1);
  conns = dirty_handoff_take (self->stored_fds, self->stored_attach, self->handoff_state);
  g_clear_pointer (&self->handoff_state, dirty_handoff_state_free);
  g_clear_pointer (&self->stored_fds, g_array_unref);
  g_clear_pointer (&self->stored_attach, g_array_unref);
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_new_from_fd (conn->fd, &error);

      if (socket == NULL)
        {
          close (conn->fd);
          dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                     "handoff: a stored connection cannot be used: %s", error->message);
          continue;
        }
      if (dirty_arbiter_add_peer (self, socket, conn->unread, conn->fds))
        restored++;
    }
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "handoff: took back %u client connections from the fd store", restored);
}

/* Before the pool starts: the unit-mode workers a previous arbiter left
 * in the store (the pool keeps them, or lets them go in fork mode) */
void
dirty_arbiter_restore_workers (DirtyArbiter *self)
{
  g_autoptr(GArray) workers = NULL;

  if (self->stored_fds != NULL || self->stored_workers != NULL || self->state_fd >= 0)
    self->handoff_state = dirty_handoff_state_read (self->state_fd);
  self->state_fd = -1;
  if (self->stored_workers == NULL)
    return;
  workers = dirty_handoff_take_workers (self->stored_workers, self->handoff_state);
  g_clear_pointer (&self->stored_workers, g_array_unref);
  if (dirty_config_get_worker_mode (self->config) != DIRTY_WORKER_MODE_UNIT && workers->len > 0)
    dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
               "handoff: worker_mode is fork now: %u unit workers of the previous arbiter "
               "are let go (they exit when their connection closes)", workers->len);
  dirty_pool_adopt (self->pool, workers);
}

/* SIGTERM with a store: accept nothing more (the listening socket is
 * systemd's; new clients wait in its backlog) and keep every request
 * that arrives from now on for the next arbiter. */
void
dirty_arbiter_begin_handoff (DirtyArbiter *self)
{
  GHashTableIter iter;
  gpointer key;

  self->handing_off = TRUE;
  /* unit mode: idle workers go to the store too, and keep running */
  dirty_pool_set_handoff (self->pool, TRUE);
  dirty_arbiter_stop_accepting (self);
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    dirty_peer_hold (key);
}

/* The calls have ended and their replies are written (or the flush
 * bound passed): every connection goes to the store. */
void
dirty_arbiter_hand_off (DirtyArbiter *self)
{
  g_autoptr(GArray) conns = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffConn));
  g_autoptr(GArray) workers = dirty_pool_take_released (self->pool);
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer key;
  guint lost = 0, stored, workers_stored = 0;
  gsize unread_bytes = 0;

  g_array_set_clear_func (conns, (GDestroyNotify) dirty_handoff_conn_clear);
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_autoptr(GByteArray) unread = g_byte_array_new ();
      g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
      DirtyHandoffConn conn = { -1, NULL, NULL, NULL, FALSE };

      g_signal_handlers_disconnect_by_data (key, self);
      /* replies not written yet (no room left in the store: see there) */
      if (dirty_peer_get_queued_bytes (key) > 0 ||
          (conn.fd = dirty_peer_detach (key, unread, fds)) < 0)
        {
          lost++;
          continue;
        }
      conn.fds = g_steal_pointer (&fds);
      unread_bytes += unread->len;
      conn.unread = g_byte_array_free_to_bytes (g_steal_pointer (&unread));
      g_array_append_val (conns, conn);
    }
  g_hash_table_remove_all (self->peers);
  g_hash_table_remove_all (self->uid_counts);
  stored = dirty_handoff_store (workers, conns, self->fdstore_max, &workers_stored, &error);
  if (error != NULL)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0, "handoff failed: %s", error->message);
  lost += conns->len - stored;
  if (workers->len > 0)
    dirty_log (workers_stored < workers->len ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_MESSAGE,
               NULL, NULL, 0, 0, 0, "handoff: %u of %u idle workers in the fd store, running on "
               "for the next start", workers_stored, workers->len);
  dirty_log (lost > 0 ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "handoff: %u client connections in the fd store for the next start "
             "(%" G_GSIZE_FORMAT " bytes read and not yet acted on go with them), %u closed",
             stored, unread_bytes, lost);
}
