/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dirty-connection-private.h"
#include "dirty-error.h"
#include "dirty-socket.h"

/* See dirty-connection-sync.h for the model. The invariants, all under
 * sync_lock:
 * - only a waiter registered in @waiters may lead, at most one at a time,
 *   and only while read_side is CALLERS and no error broke the reading;
 * - the owner reads only while read_side is OWNER: it takes the read side
 *   back by setting OWNER and waiting (sync_cond) until the leader, woken
 *   by wake_fd, has let go; so the socket is never closed under a
 *   leader's poll, and the read state is never touched by two threads;
 * - a waiter leaves @waiters exactly once: its frame came (route), or
 *   the connection closed or failed them all, or it gave up (timeout,
 *   cancel). Whichever comes first is its one answer. */

void
dirty_connection_waiter_free (DirtyConnectionWaiter *waiter)
{
  g_cond_clear (&waiter->cond);
  g_clear_pointer (&waiter->frame, dirty_frame_unref);
  g_clear_error (&waiter->error);
  g_free (waiter);
}

void
dirty_connection_sync_init (DirtyConnection *self)
{
  g_mutex_init (&self->sync_lock);
  g_cond_init (&self->sync_cond);
  self->waiters = g_hash_table_new (g_int64_hash, g_int64_equal);
  self->read_side = DIRTY_READ_SIDE_OWNER;
  self->owner_reads = TRUE;
  self->wake_fd = -1;
  g_queue_init (&self->forwarded);
}

void
dirty_connection_sync_clear (DirtyConnection *self)
{
  /* every waiter holds a reference: none is left here */
  g_hash_table_unref (self->waiters);
  g_queue_clear_full (&self->forwarded, (GDestroyNotify) dirty_frame_unref);
  if (self->forward_source != NULL)
    {
      g_source_destroy (self->forward_source);
      g_clear_pointer (&self->forward_source, g_source_unref);
    }
  g_clear_error (&self->read_error);
  if (self->wake_fd >= 0)
    close (self->wake_fd);
  g_cond_clear (&self->sync_cond);
  g_mutex_clear (&self->sync_lock);
}

/* Under sync_lock: tells @waiter to look at its state again. A blocked
 * thread waits on its GCond; an async waiter's source is made ready. */
static void
waiter_wake (DirtyConnectionWaiter *waiter)
{
  if (waiter->source != NULL)
    g_source_set_ready_time (waiter->source, 0);
  else
    g_cond_signal (&waiter->cond);
}

void
dirty_connection_waiter_answer (DirtyConnection        *self,
                                DirtyConnectionWaiter  *waiter,
                                DirtyConnectionWaitEnd  end)
{
  g_hash_table_remove (self->waiters, &waiter->id);
  waiter->done = TRUE;
  waiter->end = end;
  /* the leader does not wait on its GCond (a signal is a syscall) */
  if (waiter == self->leader)
    self->leader_answered = TRUE;
  else
    waiter_wake (waiter);
}

gboolean
dirty_connection_waiter_ended (DirtyConnection       *self,
                               DirtyConnectionWaiter *waiter,
                               gint64                 deadline)
{
  if (!waiter->done && (waiter->cancelled || (deadline != 0 && g_get_monotonic_time () >= deadline)))
    dirty_connection_waiter_answer (self, waiter,
                                    waiter->cancelled ? DIRTY_CONNECTION_WAIT_CANCELLED
                                                      : DIRTY_CONNECTION_WAIT_TIMEOUT);
  return waiter->done;
}

gboolean
dirty_connection_may_lead (DirtyConnection *self)
{
  return self->read_side == DIRTY_READ_SIDE_CALLERS && self->leader == NULL && !self->read_broken;
}

/* Under sync_lock: wakes the leader out of its poll. */
static void
wake_leader (DirtyConnection *self)
{
  guint64 one = 1;

  if (self->leader != NULL && self->wake_fd >= 0 &&
      write (self->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    g_warning ("Could not wake a connection's reader: %s", g_strerror (errno));
}

/* Under sync_lock: if the waiters may read and nobody leads, a blocked
 * waiter is told to lead; with none, every async waiter but @except (the
 * leader that just stopped) is told it may read: it polls the socket as
 * long as its context runs, and one that does not run must not keep the
 * others, or a blocked waiter, from reading. */
static void
nominate (DirtyConnection       *self,
          DirtyConnectionWaiter *except)
{
  GHashTableIter iter;
  gpointer value;

  /* an iteration walks every bucket: none for the usual empty table */
  if (!dirty_connection_may_lead (self) || g_hash_table_size (self->waiters) == 0)
    return;
  g_hash_table_iter_init (&iter, self->waiters);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((DirtyConnectionWaiter *) value)->source == NULL)
      {
        g_cond_signal (&((DirtyConnectionWaiter *) value)->cond);
        return;
      }
  g_hash_table_iter_init (&iter, self->waiters);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (value != except)
      waiter_wake (value);
}

/* Under sync_lock or on the owner's thread (the socket stays open). */
static gboolean
peer_gone (DirtyConnection *self)
{
  struct pollfd fd = { .fd = g_socket_get_fd (self->socket), .events = POLLRDHUP };

  return poll (&fd, 1, 0) > 0 && (fd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Under sync_lock */
static gboolean
may_send_locked (DirtyConnection *self)
{
  if (self->read_side == DIRTY_READ_SIDE_CLOSED || self->read_broken || self->hung_up)
    return FALSE;
  /* Frames a leader read for the owner may change what it sends next (a
   * HELLO's limits, an ERROR for the whole connection): not before the
   * owner has handled them. */
  if (!g_queue_is_empty (&self->forwarded) || self->n_forwarding > 0)
    return FALSE;
  /* Nobody may have read for a while: a peer that hung up meanwhile
   * (the arbiter restarted) would fail this call. The owner's path
   * connects again instead (dirty_connection_peer_gone ()). */
  return !(self->read_side == DIRTY_READ_SIDE_CALLERS && self->leader == NULL && peer_gone (self));
}

gboolean
dirty_connection_peer_gone (DirtyConnection *self)
{
  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), TRUE);

  if (self->closed || self->failing || self->hung_up)
    return TRUE;
  if (self->owner_reads || !peer_gone (self))
    return FALSE;
  g_mutex_lock (&self->sync_lock);
  self->hung_up = TRUE;
  g_mutex_unlock (&self->sync_lock);
  /* Its last frames may still be unread (a waiter's reply, sent just
   * before a graceful stop), or a leader may be reading them: closing now
   * would lose them. The owner reads to the end instead: the frames reach
   * their waiters or the frame callback, then the EOF closes. */
  dirty_connection_set_owner_reads (self, TRUE);
  return TRUE;
}

DirtyConnectionWaiter *
dirty_connection_expect (DirtyConnection *self,
                         guint64          id)
{
  g_autoptr(GMutexLocker) locker = NULL;
  DirtyConnectionWaiter *waiter;

  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), NULL);
  g_return_val_if_fail (id != 0, NULL);

  locker = g_mutex_locker_new (&self->sync_lock);
  if (!may_send_locked (self))
    return NULL;
  if (self->wake_fd < 0)
    {
      self->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (self->wake_fd < 0)
        return NULL;   /* out of fds: the caller takes the owner's path */
    }
  waiter = g_new0 (DirtyConnectionWaiter, 1);
  waiter->id = id;
  g_cond_init (&waiter->cond);
  g_hash_table_insert (self->waiters, &waiter->id, waiter);
  g_atomic_int_set (&self->sync_used, 1);
  return waiter;
}

void
dirty_connection_unexpect (DirtyConnection       *self,
                           DirtyConnectionWaiter *waiter)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (waiter != NULL);

  g_mutex_lock (&self->sync_lock);
  /* the close may have answered it already */
  if (!waiter->done)
    g_hash_table_remove (self->waiters, &waiter->id);
  /* it never waited: a turn to lead it was given goes to another */
  nominate (self, NULL);
  g_mutex_unlock (&self->sync_lock);
  dirty_connection_waiter_free (waiter);
}

void
dirty_connection_lead_round (DirtyConnection *self)
{
  g_mutex_unlock (&self->sync_lock);
  self->leader_reading = TRUE;
  dirty_connection_read_as_leader (self);
  self->leader_reading = FALSE;
  g_mutex_lock (&self->sync_lock);
}

void
dirty_connection_stop_leading (DirtyConnection *self)
{
  DirtyConnectionWaiter *leader = self->leader;

  self->leader = NULL;
  if (self->owner_waiting)
    g_cond_broadcast (&self->sync_cond);
  nominate (self, leader);
}

/* Reads for everyone until @waiter's frame came, it gave up, or the
 * owner wants the read side back. Called and returns under sync_lock;
 * polls and reads without it. */
static void
lead (DirtyConnection       *self,
      DirtyConnectionWaiter *waiter,
      gint64                 deadline)
{
  self->leader = waiter;
  self->leader_answered = FALSE;
  while (!waiter->done && !waiter->cancelled && !self->read_broken &&
         self->read_side == DIRTY_READ_SIDE_CALLERS &&
         (deadline == 0 || g_get_monotonic_time () < deadline))
    {
      struct pollfd fds[2] = {
        { .fd = g_socket_get_fd (self->socket), .events = POLLIN },
        { .fd = self->wake_fd, .events = POLLIN },
      };
      /* frames the owner read but left past its frame budget are ready */
      int timeout = self->pending != NULL ? 0 : dirty_socket_poll_timeout_ms (deadline);
      int n;

      g_mutex_unlock (&self->sync_lock);
      do
        n = poll (fds, G_N_ELEMENTS (fds), timeout);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        {
          /* it would fail again at once: a loop till the deadline */
          int saved = errno;
          g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                                 "Waiting for the connection failed: %s",
                                                 g_strerror (saved));

          dirty_connection_sync_read_error (self, error, FALSE);
        }
      if (n > 0 && fds[1].revents != 0)
        {
          guint64 count;

          if (read (self->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
            g_warning ("Could not read a connection's wake-up: %s", g_strerror (errno));
        }
      /* the owner may want the side back: it wrote wake_fd and waits */
      g_mutex_lock (&self->sync_lock);
      if ((self->pending != NULL || (n > 0 && fds[0].revents != 0)) &&
          self->read_side == DIRTY_READ_SIDE_CALLERS)
        dirty_connection_lead_round (self);
    }
  dirty_connection_stop_leading (self);
}

typedef struct {
  DirtyConnection       *connection;
  DirtyConnectionWaiter *waiter;
} CancelData;

static void
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  CancelData *data = user_data;
  DirtyConnection *self = data->connection;

  g_mutex_lock (&self->sync_lock);
  data->waiter->cancelled = TRUE;
  if (self->leader == data->waiter)
    wake_leader (self);
  else
    g_cond_signal (&data->waiter->cond);
  g_mutex_unlock (&self->sync_lock);
}

DirtyFrame *
dirty_connection_wait (DirtyConnection        *self,
                       DirtyConnectionWaiter  *waiter,
                       gint64                  deadline,
                       GCancellable           *cancellable,
                       DirtyConnectionWaitEnd *end,
                       GQueue                 *more,
                       GError                **error)
{
  g_autoptr(DirtyConnection) hold = g_object_ref (self);
  CancelData cancel = { self, waiter };
  gulong cancel_id = 0;
  DirtyFrame *frame;

  /* before the lock: an already cancelled @cancellable runs the handler
   * now, and it takes the lock */
  if (cancellable != NULL)
    cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (waiter_cancelled_cb),
                                       &cancel, NULL);
  g_mutex_lock (&self->sync_lock);
  waiter->more = more;
  for (;;)
    {
      if (dirty_connection_waiter_ended (self, waiter, deadline))
        break;
      if (dirty_connection_may_lead (self))
        lead (self, waiter, deadline);
      else if (deadline != 0)
        g_cond_wait_until (&waiter->cond, &self->sync_lock, deadline);
      else
        g_cond_wait (&waiter->cond, &self->sync_lock);
    }
  /* a follower told to lead that leaves now passes the turn on */
  nominate (self, NULL);
  g_mutex_unlock (&self->sync_lock);
  /* blocks while the handler runs in another thread: it only takes the
   * lock we no longer hold */
  if (cancel_id != 0)
    g_cancellable_disconnect (cancellable, cancel_id);

  *end = waiter->end;
  if (waiter->error != NULL)
    g_propagate_error (error, g_steal_pointer (&waiter->error));
  frame = g_steal_pointer (&waiter->frame);
  dirty_connection_waiter_free (waiter);
  return frame;
}

/* Under sync_lock: answers every waiter. */
static void
answer_all (DirtyConnection        *self,
            const GError           *error,
            DirtyConnectionWaitEnd  end)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->waiters);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DirtyConnectionWaiter *waiter = value;

      g_hash_table_iter_remove (&iter);
      waiter->done = TRUE;
      waiter->end = end;
      waiter->error = error ? g_error_copy (error) : NULL;
      waiter_wake (waiter);
    }
  wake_leader (self);
}

void
dirty_connection_fail_waiters (DirtyConnection *self,
                               const GError    *error)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (error != NULL);

  g_mutex_lock (&self->sync_lock);
  answer_all (self, error, DIRTY_CONNECTION_WAIT_FAILED);
  g_mutex_unlock (&self->sync_lock);
}

static gboolean forward_cb (gpointer user_data);

gboolean
dirty_connection_sync_route (DirtyConnection *self,
                             DirtyFrame      *frame)
{
  DirtyConnectionWaiter *waiter;
  guint64 id = frame->header.id;

  /* the arbiter and the worker never register a waiter: no lock for them */
  if (!g_atomic_int_get (&self->sync_used))
    return FALSE;
  g_mutex_lock (&self->sync_lock);
  waiter = id != 0 ? g_hash_table_lookup (self->waiters, &id) : NULL;
  if (waiter != NULL)
    {
      waiter->frame = dirty_frame_ref (frame);
      dirty_connection_waiter_answer (self, waiter, DIRTY_CONNECTION_WAIT_FRAME);
      g_mutex_unlock (&self->sync_lock);
      return TRUE;
    }
  if (!self->leader_reading)
    {
      g_mutex_unlock (&self->sync_lock);
      return FALSE;
    }
  /* the rest of a stream the leader just read the first frame of, for
   * itself: it takes them along, instead of the owner handing them back */
  if (self->leader != NULL && self->leader_answered && self->leader->more != NULL &&
      self->leader->id == id)
    {
      g_queue_push_tail (self->leader->more, dirty_frame_ref (frame));
      g_mutex_unlock (&self->sync_lock);
      return TRUE;
    }
  g_queue_push_tail (&self->forwarded, dirty_frame_ref (frame));
  if (self->forward_source == NULL)
    {
      self->forward_source = g_idle_source_new ();
      g_source_set_priority (self->forward_source, G_PRIORITY_HIGH);
      g_source_set_callback (self->forward_source, forward_cb,
                             g_object_ref (self), g_object_unref);
      g_source_attach (self->forward_source, self->context);
    }
  g_mutex_unlock (&self->sync_lock);
  return TRUE;
}

/* Frames a leader read for nobody waiting, in the owner's context and in
 * the order read. */
void
dirty_connection_sync_owner_turn (DirtyConnection *self)
{
  GQueue frames = G_QUEUE_INIT;
  DirtyFrame *frame;
  guint n;

  if (!g_atomic_int_get (&self->sync_used))
    return;
  g_mutex_lock (&self->sync_lock);
  frames = self->forwarded;
  g_queue_init (&self->forwarded);
  n = frames.length;
  self->n_forwarding += n;
  g_mutex_unlock (&self->sync_lock);
  if (n == 0)
    return;
  while ((frame = g_queue_pop_head (&frames)) != NULL)
    {
      /* no frame callback after the close */
      if (!self->closed && !self->failing)
        self->frame_func (self, frame, self->user_data);
      dirty_frame_unref (frame);
    }
  g_mutex_lock (&self->sync_lock);
  self->n_forwarding -= n;
  g_mutex_unlock (&self->sync_lock);
}

static gboolean
forward_cb (gpointer user_data)
{
  DirtyConnection *self = user_data;

  g_mutex_lock (&self->sync_lock);
  g_clear_pointer (&self->forward_source, g_source_unref);
  g_mutex_unlock (&self->sync_lock);
  dirty_connection_sync_owner_turn (self);
  return G_SOURCE_REMOVE;
}

void
dirty_connection_sync_owner_done (DirtyConnection *self)
{
  if (self->owner_reads)
    return;
  g_mutex_lock (&self->sync_lock);
  if (self->read_side == DIRTY_READ_SIDE_OWNER)
    {
      self->read_side = DIRTY_READ_SIDE_CALLERS;
      nominate (self, NULL);
    }
  g_mutex_unlock (&self->sync_lock);
}

/* Under sync_lock. */
static void
take_back_locked (DirtyConnection *self)
{
  if (self->read_side == DIRTY_READ_SIDE_CALLERS)
    self->read_side = DIRTY_READ_SIDE_OWNER;
  while (self->leader != NULL)
    {
      wake_leader (self);
      self->owner_waiting = TRUE;
      g_cond_wait (&self->sync_cond, &self->sync_lock);
      self->owner_waiting = FALSE;
    }
}

void
dirty_connection_sync_take_back (DirtyConnection *self)
{
  /* even with no waiter yet: read_side must say OWNER before one comes */
  g_mutex_lock (&self->sync_lock);
  take_back_locked (self);
  g_mutex_unlock (&self->sync_lock);
}

void
dirty_connection_sync_close (DirtyConnection *self,
                             const GError    *error)
{
  g_mutex_lock (&self->sync_lock);
  take_back_locked (self);
  self->read_side = DIRTY_READ_SIDE_CLOSED;
  answer_all (self, error, DIRTY_CONNECTION_WAIT_CLOSED);
  g_mutex_unlock (&self->sync_lock);
}

static gboolean
read_error_cb (gpointer user_data)
{
  DirtyConnection *self = user_data;
  g_autoptr(GError) error = NULL;
  gboolean protocol;

  /* what the leader read before the error comes first */
  dirty_connection_sync_owner_turn (self);
  g_mutex_lock (&self->sync_lock);
  error = g_steal_pointer (&self->read_error);
  protocol = self->read_error_protocol;
  g_mutex_unlock (&self->sync_lock);
  if (protocol)
    dirty_connection_fail (self, 0, error);
  else
    dirty_connection_lost (self, error);
  return G_SOURCE_REMOVE;
}

void
dirty_connection_sync_read_error (DirtyConnection *self,
                                  const GError    *error,
                                  gboolean         protocol)
{
  GSource *source;

  g_mutex_lock (&self->sync_lock);
  if (self->read_broken)
    {
      g_mutex_unlock (&self->sync_lock);
      return;
    }
  self->read_broken = TRUE;
  self->read_error = error ? g_error_copy (error) : NULL;
  self->read_error_protocol = protocol;
  g_mutex_unlock (&self->sync_lock);
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, read_error_cb, g_object_ref (self), g_object_unref);
  g_source_attach (source, self->context);
  g_source_unref (source);
}
