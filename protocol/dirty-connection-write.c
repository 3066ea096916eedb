/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>

#include "dirty-connection-private.h"
#include "dirty-error.h"
#include "dirty-socket.h"

/* DirtyConnection's write side: a queue of frames flushed in as few
 * sendmsg calls as it can, under write_lock so that another thread may
 * send too (dirty_connection_send_from_thread ()). */

#define MAX_IOV 64

static gsize
out_frame_size (OutFrame *out)
{
  return DIRTY_FRAME_HEADER_SIZE + g_bytes_get_size (out->frame->body);
}

void
dirty_out_frame_free (OutFrame *out)
{
  dirty_frame_unref (out->frame);
  g_free (out);
}

void
dirty_connection_clear_out (DirtyConnection *self)
{
  GList *link;

  while ((link = g_queue_pop_head_link (&self->out)) != NULL)
    dirty_out_frame_free (link->data);
}

static void
stop_writing (DirtyConnection *self)
{
  self->writing = FALSE;
  dirty_connection_update_watch (self);
}

static void
watch_writable (DirtyConnection *self)
{
  if (self->writing)
    return;
  self->writing = TRUE;
  dirty_connection_update_watch (self);
}

static void
advance_written (DirtyConnection *self,
                 gsize            written)
{
  while (written > 0)
    {
      OutFrame *head = g_queue_peek_head (&self->out);
      gsize left = out_frame_size (head) - self->out_offset;

      if (written < left)
        {
          self->out_offset += written;
          self->queued_bytes -= written;
          return;
        }
      written -= left;
      self->queued_bytes -= left;
      self->out_offset = 0;
      dirty_out_frame_free (g_queue_pop_head_link (&self->out)->data);
    }
}

/* Gathers up to MAX_IOV pieces of queued frames, skipping what is already
 * written of the head frame. A frame's fds go with its first byte: a
 * write that sends them starts with that frame, and no write carries the
 * fds of two frames (the reader assigns fds to frames in order). */
static guint
gather (DirtyConnection *self,
        struct iovec    *vectors)
{
  guint n = 0;
  gsize skip = self->out_offset;

  for (GList *l = self->out.head; l != NULL && n + 2 <= MAX_IOV; l = l->next)
    {
      OutFrame *out = l->data;
      gsize body_size;
      const guint8 *body = g_bytes_get_data (out->frame->body, &body_size);

      if (out->frame->fds != NULL && l != self->out.head)
        break;
      if (skip < DIRTY_FRAME_HEADER_SIZE)
        {
          vectors[n].iov_base = out->header + skip;
          vectors[n++].iov_len = DIRTY_FRAME_HEADER_SIZE - skip;
          skip = 0;
        }
      else
        skip -= DIRTY_FRAME_HEADER_SIZE;
      if (body_size > skip)
        {
          vectors[n].iov_base = (guint8 *) body + skip;
          vectors[n++].iov_len = body_size - skip;
        }
      skip = 0;
    }
  return n;
}


/* a peer that does not read cannot be told so: it is dropped */
static void
drop_slow_reader (DirtyConnection *self)
{
  g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_BUSY,
                                         "The peer is not reading: %" G_GSIZE_FORMAT
                                         " bytes wait to be written", self->queued_bytes);
  dirty_connection_lost (self, error);
}

static gboolean
owner_flush_cb (gpointer user_data)
{
  DirtyConnection *self = user_data;
  g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new (&self->write_lock);

  g_clear_pointer (&self->flush_source, g_source_unref);
  if (self->closed)
    return G_SOURCE_REMOVE;
  if (self->limits.max_queued_bytes > 0 && self->queued_bytes > self->limits.max_queued_bytes)
    drop_slow_reader (self);
  else
    dirty_connection_flush (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_owner_flush (DirtyConnection *self)
{
  if (self->flush_source != NULL)
    return;
  self->flush_source = g_idle_source_new ();
  g_source_set_priority (self->flush_source, G_PRIORITY_HIGH);
  g_source_set_callback (self->flush_source, owner_flush_cb, g_object_ref (self), g_object_unref);
  g_source_attach (self->flush_source, self->context);
}

/* sendmsg of @vectors, with the head frame's fds when its first byte is
 * among them */
static gssize
send_raw (DirtyConnection  *self,
          struct iovec     *vectors,
          guint             n_vectors,
          GError          **error)
{
  OutFrame *head = g_queue_peek_head (&self->out);
  DirtyFdSet *fds = self->out_offset == 0 ? head->frame->fds : NULL;
  guint n_fds = dirty_fd_set_get_length (fds);
  struct msghdr msg = { .msg_iov = vectors, .msg_iovlen = n_vectors };
  gssize written;

  /* rare: large payloads only */
  if (n_fds > 0)
    {
      int *slots = dirty_socket_add_rights (&msg, n_fds);

      for (guint i = 0; i < n_fds; i++)
        slots[i] = dirty_fd_set_get (fds, i);
    }
  do
    written = sendmsg (self->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (written < 0 && errno == EINTR);
  g_free (msg.msg_control);
  /* a full socket (EAGAIN) is -1 with @error unset, as for reading */
  if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    {
      int saved = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved),
                           g_strerror (saved));
    }
  return written;
}

gboolean
dirty_connection_flush (DirtyConnection *self)
{
  while (!g_queue_is_empty (&self->out))
    {
      struct iovec vectors[MAX_IOV];
      guint n = gather (self, vectors);
      g_autoptr(GError) error = NULL;
      gssize written = send_raw (self, vectors, n, &error);
      if (written < 0)
        {
          /* another thread leaves waiting and errors to the owner */
          if (self->foreign)
            {
              schedule_owner_flush (self);
              return TRUE;
            }
          if (error == NULL)   /* the socket is full */
            {
              watch_writable (self);
              return TRUE;
            }
          g_autoptr(GError) conn_error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                                      "Writing to the connection failed: %s",
                                                      error->message);
          dirty_connection_lost (self, self->failing ? self->close_error : conn_error);
          return FALSE;
        }
      advance_written (self, written);
    }
  if (self->foreign)
    return TRUE;   /* it only writes while the owner is not writing */
  stop_writing (self);
  if (self->failing)
    {
      g_autoptr(GError) error = g_steal_pointer (&self->close_error);
      dirty_connection_lost (self, error);
      return FALSE;
    }
  return TRUE;
}

gboolean
dirty_connection_on_writable (GSocket      *socket,
                              GIOCondition  condition,
                              gpointer      user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));
  g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new (&self->write_lock);

  /* flush() stops writing itself once the queue is empty */
  dirty_connection_flush (self);
  return self->writing ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Queues @frame under @id and @aux (write_lock held); TRUE if the queue
 * now holds more than max_queued_bytes: a peer that does not read cannot
 * be told so, and the owner drops it. */
static gboolean
enqueue_locked (DirtyConnection *self,
                DirtyFrame      *frame,
                guint64          id,
                guint32          aux)
{
  OutFrame *out = g_new (OutFrame, 1);
  DirtyFrameHeader header = frame->header;

  out->link = (GList) { .data = out };
  out->frame = dirty_frame_ref (frame);
  /* the header is written here, so a frame forwarded under another id
   * needs no copy of its own */
  header.id = id;
  header.aux = aux;
  dirty_frame_header_write (&header, out->header);
  g_queue_push_tail_link (&self->out, &out->link);
  self->queued_bytes += out_frame_size (out);
  return self->limits.max_queued_bytes > 0 && self->queued_bytes > self->limits.max_queued_bytes;
}

/* ---- batches ---- */

typedef struct {
  GFunc    func;
  gpointer data;
} BatchHook;

typedef struct {
  guint      depth;
  GPtrArray *connections;   /* with a reference each; in_batch set */
  GArray    *hooks;         /* of BatchHook */
} Batch;

static void
batch_free (gpointer data)
{
  Batch *batch = data;

  g_ptr_array_unref (batch->connections);
  g_array_unref (batch->hooks);
  g_free (batch);
}

/* The GPrivate frees a thread's batch when the thread ends; the
 * thread-local pointer is how it is found, many times per call, at the
 * cost of a load rather than of g_private_get (). */
static GPrivate batch_key = G_PRIVATE_INIT (batch_free);
static _Thread_local Batch *thread_batch;

void
dirty_connection_batch_begin (void)
{
  Batch *batch = thread_batch;

  if (batch == NULL)
    {
      batch = g_new0 (Batch, 1);
      batch->connections = g_ptr_array_new_with_free_func (g_object_unref);
      batch->hooks = g_array_new (FALSE, FALSE, sizeof (BatchHook));
      g_private_set (&batch_key, batch);
      thread_batch = batch;
    }
  batch->depth++;
}

void
dirty_connection_batch_flush (void)
{
  Batch *batch = thread_batch;

  if (batch == NULL)
    return;
  /* One at a time off the end, no copy: a hook may add another hook,
   * and a write that fails closes (neither sends on a batched
   * connection, so nothing is added to @connections meanwhile). */
  while (batch->hooks->len > 0)
    {
      BatchHook hook = g_array_index (batch->hooks, BatchHook, batch->hooks->len - 1);

      g_array_set_size (batch->hooks, batch->hooks->len - 1);
      hook.func (hook.data, NULL);
    }
  while (batch->connections->len > 0)
    {
      g_autoptr(DirtyConnection) self = g_ptr_array_steal_index_fast (batch->connections,
                                                                       batch->connections->len - 1);
      g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new (&self->write_lock);

      self->in_batch = FALSE;
      if (!self->closed && !self->writing && !g_queue_is_empty (&self->out))
        dirty_connection_flush (self);
    }
}

void
dirty_connection_batch_defer (GFunc    func,
                              gpointer data)
{
  Batch *batch = thread_batch;
  BatchHook hook = { func, data };

  if (batch == NULL || batch->depth == 0)
    func (data, NULL);
  else
    g_array_append_val (batch->hooks, hook);
}

void
dirty_connection_batch_end (void)
{
  Batch *batch = thread_batch;

  g_return_if_fail (batch != NULL && batch->depth > 0);

  if (--batch->depth == 0)
    dirty_connection_batch_flush ();
}

/* Whether the frame just queued on @self waits for the batch of this
 * thread (write_lock held). */
static gboolean
batch_defer (DirtyConnection *self)
{
  Batch *batch = thread_batch;

  if (batch == NULL || batch->depth == 0)
    return FALSE;
  if (!self->in_batch)
    {
      self->in_batch = TRUE;
      g_ptr_array_add (batch->connections, g_object_ref (self));
    }
  return TRUE;
}

void
dirty_connection_unbatch (DirtyConnection *self)
{
  if (!self->in_batch)
    return;
  self->in_batch = FALSE;
  while (!g_queue_is_empty (&self->out))
    {
      struct iovec vectors[MAX_IOV];
      guint n = gather (self, vectors);
      gssize written = send_raw (self, vectors, n, NULL);

      if (written <= 0)
        return;
      advance_written (self, written);
    }
}

void
dirty_connection_send (DirtyConnection *self,
                       DirtyFrame      *frame)
{
  g_return_if_fail (frame != NULL);

  dirty_connection_send_with_id (self, frame, frame->header.id, frame->header.aux);
}

void
dirty_connection_send_with_id (DirtyConnection *self,
                               DirtyFrame      *frame,
                               guint64          id,
                               guint32          aux)
{
  g_autoptr(GRecMutexLocker) locker = NULL;
  gboolean was_empty;

  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (frame != NULL);

  locker = g_rec_mutex_locker_new (&self->write_lock);
  if (self->closed || self->failing)
    return;
  was_empty = g_queue_is_empty (&self->out);
  if (enqueue_locked (self, frame, id, aux))
    {
      drop_slow_reader (self);
      return;
    }
  /* Write at once when nothing is queued (the latency path), unless a
   * batch writes it with the frames that follow; otherwise the frame
   * joins the queue and goes out in one writev with the others when the
   * socket is writable again. */
  if (was_empty && self->context != NULL && !batch_defer (self))
    dirty_connection_flush (self);
}

gboolean
dirty_connection_send_from_thread (DirtyConnection *self,
                                   DirtyFrame      *frame)
{
  g_return_val_if_fail (frame != NULL, FALSE);

  return dirty_connection_send_from_thread_with_id (self, frame, frame->header.id,
                                                    frame->header.aux);
}

gboolean
dirty_connection_send_from_thread_with_id (DirtyConnection *self,
                                           DirtyFrame      *frame,
                                           guint64          id,
                                           guint32          aux)
{
  g_autoptr(GRecMutexLocker) locker = NULL;
  gboolean was_empty;

  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), FALSE);
  g_return_val_if_fail (frame != NULL, FALSE);

  locker = g_rec_mutex_locker_new (&self->write_lock);
  if (self->closed || self->failing)
    return FALSE;
  if (self->context == NULL || g_main_context_is_owner (self->context))
    {
      dirty_connection_send_with_id (self, frame, id, aux);
      return TRUE;
    }
  was_empty = g_queue_is_empty (&self->out);
  /* Written here only when nothing waits before it and the owner is not
   * waiting for room; all else (a full socket, an error, the queue
   * limit: owner_flush_cb () checks it) is the owner's to handle, from
   * its context. */
  if (!enqueue_locked (self, frame, id, aux) && was_empty && !self->writing &&
      self->flush_source == NULL)
    {
      self->foreign = TRUE;
      dirty_connection_flush (self);
      self->foreign = FALSE;
    }
  else
    schedule_owner_flush (self);
  return TRUE;
}

gsize
dirty_connection_get_queued_bytes (DirtyConnection *self)
{
  g_autoptr(GRecMutexLocker) locker = NULL;

  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), 0);

  locker = g_rec_mutex_locker_new (&self->write_lock);
  return self->queued_bytes;
}

