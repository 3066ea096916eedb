/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-connection-private.h"

/* An async waiter (dirty_connection_wait_async ()): a GSource in its
 * caller's context. While the waiters may read (read side CALLERS, no
 * leader, no error), it polls the socket; readable, its dispatch leads
 * for one round of reads (dirty_connection_read_as_leader ()), as a
 * blocked leader's loop does, then stops leading. Between dispatches it
 * never leads: the owner taking the read side back, or a blocked waiter
 * that wants to lead, waits at most for that round, never for a context
 * to be run. A frame someone else read for it, the close, a cancel or a
 * nomination make the source ready (waiter->source). */

typedef struct {
  GSource                  source;
  DirtyConnection         *connection;  /* a reference */
  DirtyConnectionWaiter   *waiter;      /* ours, until the end */
  gpointer                 fd_tag;      /* the socket, while polled */
  gint64                   deadline;    /* monotonic µs, or 0 */
  GCancellable            *cancellable;
  gulong                   cancel_id;
  DirtyConnectionWaitFunc  func;
  gpointer                 user_data;
  GDestroyNotify           destroy;
  GQueue                   more;        /* the waiter's more (a stream's) */
} WaitSource;

/* The socket is polled only while this waiter may read it: polled for
 * nothing, a hung-up socket would still wake the context every time. */
static void
poll_socket (WaitSource *ws,
             gboolean    poll)
{
  if (poll && ws->fd_tag == NULL)
    ws->fd_tag = g_source_add_unix_fd (&ws->source, ws->connection->fd, G_IO_IN);
  else if (!poll && ws->fd_tag != NULL)
    {
      g_source_remove_unix_fd (&ws->source, ws->fd_tag);
      ws->fd_tag = NULL;
    }
}

static gboolean
wait_source_prepare (GSource *source,
                     gint    *timeout)
{
  WaitSource *ws = (WaitSource *) source;
  DirtyConnection *self = ws->connection;
  gboolean ready, may_read;

  *timeout = -1;
  g_mutex_lock (&self->sync_lock);
  may_read = dirty_connection_may_lead (self);
  /* frames the owner read but left past its frame budget: ready now */
  ready = dirty_connection_waiter_ended (self, ws->waiter, ws->deadline) ||
          (may_read && self->pending != NULL);
  g_mutex_unlock (&self->sync_lock);
  poll_socket (ws, may_read && !ready);
  if (ws->deadline != 0)
    *timeout = (gint) CLAMP ((ws->deadline - g_get_monotonic_time () + 999) / 1000, 0, G_MAXINT);
  return ready;
}

static gboolean
wait_source_check (GSource *source)
{
  WaitSource *ws = (WaitSource *) source;
  gboolean ready;

  if (ws->fd_tag != NULL && g_source_query_unix_fd (source, ws->fd_tag) != 0)
    return TRUE;
  g_mutex_lock (&ws->connection->sync_lock);
  ready = dirty_connection_waiter_ended (ws->connection, ws->waiter, ws->deadline);
  g_mutex_unlock (&ws->connection->sync_lock);
  return ready;
}

/* Under sync_lock: one round of reads, for everyone */
static void
lead_once (DirtyConnection       *self,
           DirtyConnectionWaiter *waiter)
{
  self->leader = waiter;
  self->leader_answered = FALSE;
  dirty_connection_lead_round (self);
  dirty_connection_stop_leading (self);
}

static gboolean
wait_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  WaitSource *ws = (WaitSource *) source;
  DirtyConnection *self = ws->connection;
  DirtyConnectionWaiter *waiter = ws->waiter;
  gboolean readable = ws->fd_tag != NULL && g_source_query_unix_fd (source, ws->fd_tag) != 0;

  /* before the state is read: a wake-up after this is seen again */
  g_source_set_ready_time (source, -1);
  g_mutex_lock (&self->sync_lock);
  if (!dirty_connection_waiter_ended (self, waiter, ws->deadline) &&
      dirty_connection_may_lead (self) && (readable || self->pending != NULL))
    lead_once (self, waiter);
  if (!waiter->done)
    {
      g_mutex_unlock (&self->sync_lock);
      return G_SOURCE_CONTINUE;
    }
  /* out of @waiters: nobody else reaches it now, but the cancel handler */
  waiter->source = NULL;
  ws->waiter = NULL;
  g_mutex_unlock (&self->sync_lock);

  /* only takes the lock we no longer hold, if its handler runs now */
  if (ws->cancel_id != 0)
    g_cancellable_disconnect (ws->cancellable, ws->cancel_id);
  ws->cancel_id = 0;
  /* gone before @func runs, which may iterate this context */
  g_source_destroy (source);
  ws->func (self, waiter->frame, waiter->end, waiter->error, &ws->more, ws->user_data);
  dirty_connection_waiter_free (waiter);
  return G_SOURCE_REMOVE;
}

static void
wait_source_finalize (GSource *source)
{
  WaitSource *ws = (WaitSource *) source;

  /* destroyed before its end (its context was): the waiter leaves
   * unanswered, and nobody may reach this source through it any more */
  if (ws->waiter != NULL)
    {
      g_mutex_lock (&ws->connection->sync_lock);
      if (!ws->waiter->done)
        g_hash_table_remove (ws->connection->waiters, &ws->waiter->id);
      g_mutex_unlock (&ws->connection->sync_lock);
      dirty_connection_waiter_free (g_steal_pointer (&ws->waiter));
    }
  if (ws->destroy != NULL)
    ws->destroy (ws->user_data);
  g_queue_clear_full (&ws->more, (GDestroyNotify) dirty_frame_unref);
  g_clear_object (&ws->cancellable);
  g_clear_object (&ws->connection);
}

static GSourceFuncs wait_source_funcs = {
  .prepare = wait_source_prepare,
  .check = wait_source_check,
  .dispatch = wait_source_dispatch,
  .finalize = wait_source_finalize,
};

static void
wait_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  WaitSource *ws = user_data;

  g_mutex_lock (&ws->connection->sync_lock);
  if (ws->waiter != NULL)
    {
      ws->waiter->cancelled = TRUE;
      g_source_set_ready_time (&ws->source, 0);
    }
  g_mutex_unlock (&ws->connection->sync_lock);
}

void
dirty_connection_wait_async (DirtyConnection         *self,
                             DirtyConnectionWaiter   *waiter,
                             gint64                   deadline,
                             GCancellable            *cancellable,
                             GMainContext            *context,
                             DirtyConnectionWaitFunc  func,
                             gpointer                 user_data,
                             GDestroyNotify           destroy)
{
  GSource *source;
  WaitSource *ws;

  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (waiter != NULL && waiter->source == NULL);
  g_return_if_fail (func != NULL);

  source = g_source_new (&wait_source_funcs, sizeof (WaitSource));
  ws = (WaitSource *) source;
  ws->connection = g_object_ref (self);
  ws->waiter = waiter;
  ws->deadline = deadline;
  ws->func = func;
  ws->user_data = user_data;
  ws->destroy = destroy;
  /* polled from the start (the usual case), so attaching is all it costs */
  ws->fd_tag = g_source_add_unix_fd (source, self->fd, G_IO_IN);
  g_source_set_static_name (source, "[dirty] reply wait");
  /* not blocked while dispatched: GLib would take the socket out of its
   * poll set and put it back, each a write to the context's wake-up; its
   * dispatch runs no code of others before the source is destroyed */
  g_source_set_can_recurse (source, TRUE);
  g_queue_init (&ws->more);
  g_mutex_lock (&self->sync_lock);
  waiter->source = source;
  /* used while this waiter leads (lead_once ()), in its dispatch */
  waiter->more = &ws->more;
  g_mutex_unlock (&self->sync_lock);
  g_source_attach (source, context);
  /* after the attach: already cancelled, the handler runs now */
  if (cancellable != NULL)
    {
      ws->cancellable = g_object_ref (cancellable);
      ws->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (wait_cancelled_cb),
                                             g_source_ref (source),
                                             (GDestroyNotify) g_source_unref);
    }
  g_source_unref (source);
}
