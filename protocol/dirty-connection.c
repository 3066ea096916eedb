/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-connection-private.h"
#include "dirty-message.h"
#include "dirty-poller.h"

#define READ_CHUNK        (64 * 1024)
/* Bound one dispatch so a fast peer cannot starve the others: in bytes
 * read, and in frames handled (a megabyte of tiny requests is thousands
 * of frames; the rest waits in @pending for the next turn of the loop). */
#define READS_PER_DISPATCH 16
#define FRAMES_PER_DISPATCH 64
/* How long a failing connection waits for its ERROR frame to be read. */
#define FAIL_FLUSH_MS     1000
/* Room for every fd one recvmsg can bring (the kernel's SCM_MAX_FD), so
 * none is silently dropped by truncation */
#define MAX_FDS_PER_READ  253

G_DEFINE_FINAL_TYPE (DirtyConnection, dirty_connection, G_TYPE_OBJECT)

static void connection_shutdown (DirtyConnection *self, const GError *error);

static void
clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* What the socket is watched for follows reading and writing. */
void
dirty_connection_update_watch (DirtyConnection *self)
{
  if (self->watch != NULL)
    dirty_watch_set_events (self->watch, (self->reading ? G_IO_IN : 0) |
                                         (self->writing ? G_IO_OUT : 0));
}

static void
stop_reading (DirtyConnection *self)
{
  self->reading = FALSE;
  dirty_connection_update_watch (self);
}

static void
close_pending_fds (DirtyConnection *self)
{
  for (guint i = 0; i < self->pending_fds->len; i++)
    close (g_array_index (self->pending_fds, int, i));
  g_array_set_size (self->pending_fds, 0);
}

static void
dirty_connection_finalize (GObject *object)
{
  DirtyConnection *self = DIRTY_CONNECTION (object);

  g_clear_pointer (&self->watch, dirty_watch_destroy);
  clear_source (&self->resume_source);
  clear_source (&self->closed_source);
  clear_source (&self->fail_timer);
  clear_source (&self->frame_timer);
  clear_source (&self->flush_source);
  clear_source (&self->unread_source);
  g_clear_pointer (&self->unread, g_bytes_unref);
  g_clear_pointer (&self->pending, g_byte_array_unref);
  dirty_connection_clear_out (self);
  g_rec_mutex_clear (&self->write_lock);
  dirty_connection_sync_clear (self);
  g_free (self->body);
  close_pending_fds (self);
  g_array_unref (self->pending_fds);
  g_clear_pointer (&self->body_fds, dirty_fd_set_unref);
  if (self->socket)
    g_socket_close (self->socket, NULL);
  g_clear_object (&self->socket);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_error (&self->close_error);

  G_OBJECT_CLASS (dirty_connection_parent_class)->finalize (object);
}

static void
dirty_connection_class_init (DirtyConnectionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_connection_finalize;
}

static void
dirty_connection_init (DirtyConnection *self)
{
  g_queue_init (&self->out);
  g_rec_mutex_init (&self->write_lock);
  dirty_connection_sync_init (self);
  self->pending_fds = g_array_new (FALSE, FALSE, sizeof (int));
}

DirtyConnection *
dirty_connection_new (GSocket           *socket,
                      const DirtyLimits *limits)
{
  DirtyConnection *self = g_object_new (DIRTY_TYPE_CONNECTION, NULL);

  self->socket = g_object_ref (socket);
  self->fd = g_socket_get_fd (socket);
  g_socket_set_blocking (socket, FALSE);
  if (limits)
    self->limits = *limits;
  else
    dirty_limits_init (&self->limits);
  return self;
}

/* ---- reading ---------------------------------------------------------- */

/* A frame broke the protocol: the owner fails the connection, now or,
 * when a waiter's thread reads (dirty-connection-sync.c), from its
 * context. */
static void
read_fail (DirtyConnection *self,
           const GError    *error)
{
  if (self->leader_reading)
    dirty_connection_sync_read_error (self, error, TRUE);
  else
    dirty_connection_fail (self, 0, error);
}

/* Whether the owner answered a frame over the limits itself (see
 * dirty_connection_set_oversized_func ()). Not on a leader's thread: the
 * callback is the owner's. */
static gboolean
refuse_oversized (DirtyConnection        *self,
                  const DirtyFrameHeader *header,
                  const GError           *error)
{
  return self->oversized_func != NULL && !self->leader_reading &&
         self->oversized_func (self, header, error, self->user_data);
}

static void
end_frame (DirtyConnection *self)
{
  self->in_body = FALSE;
  self->skipping = FALSE;
  self->header_have = 0;
  self->body_have = 0;
  self->frames_this_dispatch++;
}

static void
deliver_frame (DirtyConnection *self)
{
  gsize length = dirty_frame_header_body_length (&self->header);
  g_autoptr(GBytes) body = g_bytes_new_take (g_steal_pointer (&self->body), length);
  g_autoptr(DirtyFdSet) fds = g_steal_pointer (&self->body_fds);
  g_autoptr(DirtyFrame) frame = dirty_frame_new_with_fds (&self->header, body, fds);
  g_autoptr(GError) error = NULL;

  end_frame (self);
  /* a lying fd (not a sealed memfd, shorter than said) never reaches a
   * callback: a mapping of it could fault */
  if (fds != NULL && !dirty_frame_check_fds (frame, &self->limits, &error))
    {
      if (dirty_frame_get_fd_payload (frame) <= self->limits.max_fd_payload ||
          !refuse_oversized (self, &frame->header, error))
        read_fail (self, error);
      return;
    }
  if (dirty_connection_sync_route (self, frame))
    return;
  self->frame_func (self, frame, self->user_data);
}

/* A frame takes its n_fds fds from the front of the queue: they came with
 * its first byte, so they are there by the time its header is complete. */
static gboolean
claim_fds (DirtyConnection *self)
{
  guint n = self->header.n_fds;

  if (n > self->pending_fds->len)
    {
      g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                             "Frame declares %u file descriptors, %u arrived"
                                             " with it", n, self->pending_fds->len);
      read_fail (self, error);
      return FALSE;
    }
  if (n == 0)
    return TRUE;
  self->body_fds = dirty_fd_set_new ((int *) self->pending_fds->data, n);
  g_array_remove_range (self->pending_fds, 0, n);
  return TRUE;
}

/* A header over max_body or max_attachments, well-formed otherwise (the
 * wire's bounds): if the owner answers the frame, its body is read past
 * and not kept, and the connection goes on. */
static gboolean
skip_oversized (DirtyConnection *self,
                const GError    *error)
{
  DirtyLimits lax = self->limits;

  lax.max_body = G_MAXUINT32;
  lax.max_attachments = G_MAXUINT16;
  if (self->oversized_func == NULL ||
      !dirty_frame_header_parse (self->header_buf, &lax, &self->header, NULL))
    return FALSE;
  self->skipping = refuse_oversized (self, &self->header, error);
  return self->skipping;
}

static gboolean
start_body (DirtyConnection *self)
{
  g_autoptr(GError) error = NULL;

  if (!dirty_frame_header_parse (self->header_buf, &self->limits, &self->header, &error) &&
      !skip_oversized (self, error))
    {
      read_fail (self, error);
      return FALSE;
    }
  if (!claim_fds (self))
    return FALSE;
  self->in_body = TRUE;
  self->body_have = 0;
  if (self->skipping)
    {
      g_clear_pointer (&self->body_fds, dirty_fd_set_unref);
      return TRUE;
    }
  /* +1 so a zero-length body still has a buffer to hand over */
  self->body = g_malloc (dirty_frame_header_body_length (&self->header) + 1);
  return TRUE;
}

/* Consumes buffered bytes into frames; FALSE once the connection stopped
 * reading (closed, failing, or a callback closed it). */
static gboolean
consume_buffer (DirtyConnection *self)
{
  while (!self->closed && !self->failing && !self->read_broken)
    {
      gsize avail = self->rbuf_len - self->rbuf_pos;
      gsize take;

      if (!self->in_body)
        {
          if (avail == 0 ||
              (self->in_dispatch && self->frames_this_dispatch >= FRAMES_PER_DISPATCH))
            return TRUE;
          if (self->header_have == 0)
            self->frame_started = g_get_monotonic_time ();
          take = MIN (avail, DIRTY_FRAME_HEADER_SIZE - self->header_have);
          memcpy (self->header_buf + self->header_have, self->rbuf + self->rbuf_pos, take);
          self->header_have += take;
          self->rbuf_pos += take;
          if (self->header_have < DIRTY_FRAME_HEADER_SIZE)
            return TRUE;
          if (!start_body (self))
            return FALSE;
        }
      else
        {
          gsize want = dirty_frame_header_body_length (&self->header) - self->body_have;

          take = MIN (avail, want);
          if (take && !self->skipping)
            memcpy (self->body + self->body_have, self->rbuf + self->rbuf_pos, take);
          self->body_have += take;
          self->rbuf_pos += take;
          if (take < want)
            return TRUE;
        }
      if (self->in_body &&
          self->body_have == dirty_frame_header_body_length (&self->header))
        {
          if (self->skipping)
            end_frame (self);
          else
            deliver_frame (self);
        }
    }
  return FALSE;
}

static void
handle_eof (DirtyConnection *self)
{
  g_autoptr(GError) error = NULL;

  if (self->header_have > 0 || self->in_body)
    error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                 "The peer closed the connection in the middle of a frame");
  if (self->leader_reading)
    dirty_connection_sync_read_error (self, error, FALSE);
  else
    connection_shutdown (self, error);
}

/* Queues the fds of an SCM_RIGHTS message. FALSE (the fds closed) when
 * they cannot belong to a frame: the previous ones were never claimed, or
 * the kernel had to drop some. */
static gboolean
queue_fds (DirtyConnection *self,
           struct msghdr   *msg,
           GError         **error)
{
  gboolean ok = !(msg->msg_flags & MSG_CTRUNC) && self->pending_fds->len == 0;

  for (struct cmsghdr *c = CMSG_FIRSTHDR (msg); c != NULL; c = CMSG_NXTHDR (msg, c))
    {
      guint n;

      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      n = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      g_array_append_vals (self->pending_fds, CMSG_DATA (c), n);
    }
  if (!ok)
    {
      close_pending_fds (self);
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "File descriptors arrived that no frame declares");
    }
  return ok;
}

/* recv with room for fds (MSG_CMSG_CLOEXEC: never leaked to a child).
 * Errors of the fds are DIRTY_ERROR_PROTOCOL, of the socket G_IO_ERROR.
 * Nothing to read (EAGAIN, the end of every dispatch) is -1 with @error
 * unset: a GError and its g_strerror() text cost more than the read. */
static gssize
receive_raw (DirtyConnection  *self,
             guint8           *buffer,
             gsize             size,
             GError          **error)
{
  union {
    struct cmsghdr header;
    char           space[CMSG_SPACE (MAX_FDS_PER_READ * sizeof (int))];
  } control;
  struct iovec iov = { .iov_base = buffer, .iov_len = size };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control };
  gssize n;

  do
    n = recvmsg (self->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return -1;
  if (n < 0)
    {
      int saved = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved),
                           g_strerror (saved));
      return -1;
    }
  if (msg.msg_controllen > 0 && !queue_fds (self, &msg, error))
    return -1;
  return n;
}

/* Reads straight into the body buffer when a large body is still
 * missing, so big frames are not copied through rbuf. *@drained: fewer
 * bytes came than there was room for, so the socket was empty then (or
 * fds ended the read): the next read would most likely find nothing, and
 * the level-triggered poll tells when there is more, for one syscall less
 * per turn. */
static gssize
receive_some (DirtyConnection  *self,
              gboolean         *drained,
              GError          **error)
{
  if (self->in_body && !self->skipping && self->rbuf_pos == self->rbuf_len)
    {
      gsize want = dirty_frame_header_body_length (&self->header) - self->body_have;

      if (want >= READ_CHUNK)
        {
          gssize n = receive_raw (self, self->body + self->body_have, want, error);
          *drained = n >= 0 && (gsize) n < want;
          if (n > 0)
            {
              self->body_have += n;
              if (self->body_have == dirty_frame_header_body_length (&self->header))
                deliver_frame (self);
            }
          return n;
        }
    }
  self->rbuf_pos = self->rbuf_len = 0;
  {
    gssize n = receive_raw (self, self->rbuf, READ_CHUNK, error);
    *drained = n >= 0 && n < READ_CHUNK;
    if (n > 0)
      {
        self->rbuf_len = n;
        consume_buffer (self);
      }
    return n;
  }
}

/* Once all of a read's bytes are consumed, queued fds must belong to a
 * header that has begun: fds come with their frame's first byte. (Bytes
 * still waiting in rbuf, or left in @pending by the frame budget, may
 * hold that header.) */
static gboolean
fds_unclaimed (DirtyConnection *self)
{
  return self->pending_fds->len > 0 && self->header_have == 0 &&
         self->rbuf_pos == self->rbuf_len && self->pending == NULL &&
         !self->closed && !self->failing;
}

static void
fail_unclaimed_fds (DirtyConnection *self)
{
  g_autoptr(GError) error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                                 "File descriptors arrived that no "
                                                 "frame declares");
  read_fail (self, error);
}

static gboolean
on_frame_timeout (gpointer user_data)
{
  DirtyConnection *self = user_data;
  g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                         "A frame stayed incomplete for more than %u ms",
                                         self->limits.frame_timeout_ms);

  g_clear_pointer (&self->frame_timer, g_source_unref);
  dirty_connection_fail (self, 0, error);
  return G_SOURCE_REMOVE;
}

/* A peer may not hold a frame half-sent for ever (one byte a second
 * would pin a buffer and a slot). The timer exists only while a frame is
 * incomplete after a read, so the common case, whole frames per read,
 * costs nothing. */
static void
watch_incomplete_frame (DirtyConnection *self)
{
  gboolean incomplete = self->header_have > 0 || self->in_body;

  /* a paused connection is not expected to complete its frame */
  if (!incomplete || self->closed || self->failing || !self->reading ||
      self->limits.frame_timeout_ms == 0)
    {
      clear_source (&self->frame_timer);
      return;
    }
  if (self->frame_timer == NULL)
    {
      self->frame_timer = g_timeout_source_new (self->limits.frame_timeout_ms);
      g_source_set_callback (self->frame_timer, on_frame_timeout, self, NULL);
      g_source_attach (self->frame_timer, self->context);
    }
  g_source_set_ready_time (self->frame_timer,
                           self->frame_started + (gint64) self->limits.frame_timeout_ms * 1000);
}

/* The read buffer is scratch: every read is consumed into the frame
 * being assembled (header_buf, body) before on_readable () returns. So
 * one buffer per thread serves all its connections, and an idle
 * connection holds none (10,000 idle clients cost no 64 KiB each). A
 * frame callback that reads another connection on the same thread (a
 * nested main loop) gets a buffer of its own. */
typedef struct {
  gboolean busy;
  guint8   buffer[READ_CHUNK];
} Scratch;

static GPrivate scratch_key = G_PRIVATE_INIT (g_free);

/* One g_private_get() per dispatch: the flag that says the buffer is in
 * use is kept next to it, and found again through self->rbuf_busy. */
static void
scratch_acquire (DirtyConnection *self)
{
  Scratch *scratch = g_private_get (&scratch_key);

  if (scratch == NULL)
    {
      scratch = g_new (Scratch, 1);
      scratch->busy = FALSE;
      g_private_set (&scratch_key, scratch);
    }
  if (scratch->busy)
    {
      self->rbuf = g_malloc (READ_CHUNK);
      self->rbuf_busy = NULL;
      return;
    }
  scratch->busy = TRUE;
  self->rbuf = scratch->buffer;
  self->rbuf_busy = &scratch->busy;
}

static void
scratch_release (DirtyConnection *self)
{
  if (self->rbuf_busy != NULL)
    *self->rbuf_busy = FALSE;
  else
    g_free (self->rbuf);
  self->rbuf = NULL;
  self->rbuf_busy = NULL;
}

/* Bytes the frame budget left unconsumed in the scratch buffer: kept
 * (copied) until the connection's next turn. */
static void
keep_leftover (DirtyConnection *self)
{
  if (self->rbuf_pos < self->rbuf_len && !self->closed && !self->failing)
    {
      if (self->pending == NULL)
        self->pending = g_byte_array_new ();
      g_byte_array_append (self->pending, self->rbuf + self->rbuf_pos,
                           self->rbuf_len - self->rbuf_pos);
    }
  self->rbuf_pos = self->rbuf_len = 0;
}

/* Frames left over from the last turn go first, within this turn's budget. */
static void
consume_pending (DirtyConnection *self)
{
  g_autoptr(GByteArray) pending = g_steal_pointer (&self->pending);

  self->rbuf = pending->data;
  self->rbuf_pos = 0;
  self->rbuf_len = pending->len;
  consume_buffer (self);
  keep_leftover (self);
  self->rbuf = NULL;
}

static gboolean on_resume (gpointer user_data);

/* Frames still pending: another turn even if the socket has no more (at
 * the socket's priority, so they are not starved either). */
static void
schedule_resume (DirtyConnection *self)
{
  if (self->pending != NULL && !self->closed && !self->failing &&
      self->resume_source == NULL)
    {
      self->resume_source = g_idle_source_new ();
      g_source_set_priority (self->resume_source, G_PRIORITY_DEFAULT);
      g_source_set_callback (self->resume_source, on_resume, self, NULL);
      g_source_attach (self->resume_source, self->context);
    }
}

/* The caller holds a reference on the connection for the turn (one
 * per dispatch: each costs an atomic pair). */
static gboolean
on_readable (GSocket      *socket,
             GIOCondition  condition,
             gpointer      user_data)
{
  DirtyConnection *self = user_data;

  /* a frame callback's nested main loop may dispatch this connection's
   * resume idle: the outer turn still owns the bytes it is consuming, and
   * schedules the next turn itself when it ends */
  if (self->in_dispatch)
    return G_SOURCE_CONTINUE;
  self->in_dispatch = TRUE;
  self->frames_this_dispatch = 0;
  /* what the frames of one read send leaves in one write per connection,
   * before the next read */
  dirty_connection_batch_begin ();
  dirty_connection_sync_owner_turn (self);
  if (self->pending != NULL && self->reading)
    consume_pending (self);
  dirty_connection_batch_flush ();
  if (fds_unclaimed (self))
    fail_unclaimed_fds (self);
  scratch_acquire (self);
  self->rbuf_pos = self->rbuf_len = 0;
  for (guint i = 0; i < READS_PER_DISPATCH && !self->closed && !self->failing &&
                    self->reading && self->pending == NULL &&
                    self->frames_this_dispatch < FRAMES_PER_DISPATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      gboolean drained = FALSE;
      gssize n = receive_some (self, &drained, &error);

      dirty_connection_batch_flush ();
      if (n == 0)
        {
          handle_eof (self);
          break;
        }
      if (n < 0)
        {
          if (error == NULL)   /* nothing more to read */
            break;
          if (error->domain == DIRTY_ERROR)
            {
              dirty_connection_fail (self, 0, error);
              break;
            }
          g_autoptr(GError) conn_error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                                      "Reading from the connection failed: %s",
                                                      error->message);
          connection_shutdown (self, conn_error);
          break;
        }
      if (fds_unclaimed (self))
        {
          fail_unclaimed_fds (self);
          break;
        }
      if (drained)
        break;
    }
  keep_leftover (self);
  scratch_release (self);
  dirty_connection_batch_end ();
  self->in_dispatch = FALSE;
  watch_incomplete_frame (self);
  /* a frame callback gave the read side to the waiters: theirs now */
  dirty_connection_sync_owner_done (self);
  if (!self->reading)
    return G_SOURCE_REMOVE;
  schedule_resume (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_resume (gpointer user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));

  g_clear_pointer (&self->resume_source, g_source_unref);
  /* not reading any more: the frames stay where they are */
  if (self->reading)
    on_readable (self->socket, G_IO_IN, self);
  return G_SOURCE_REMOVE;
}

/* The same on a waiter's thread (dirty-connection-sync.c), which serves
 * this connection alone: no frame budget, and errors go to the owner. */
void
dirty_connection_read_as_leader (DirtyConnection *self)
{
  if (self->pending != NULL)
    consume_pending (self);
  if (fds_unclaimed (self))
    {
      fail_unclaimed_fds (self);
      return;
    }
  scratch_acquire (self);
  self->rbuf_pos = self->rbuf_len = 0;
  /* until its own frame came: the rest can wait for the next reader */
  for (guint i = 0; i < READS_PER_DISPATCH && !self->read_broken && !self->leader_answered; i++)
    {
      g_autoptr(GError) error = NULL;
      gboolean drained = FALSE;
      gssize n = receive_some (self, &drained, &error);

      if (n == 0)
        {
          handle_eof (self);
          break;
        }
      if (n < 0)
        {
          if (error == NULL)   /* nothing more to read */
            break;
          if (error->domain == DIRTY_ERROR)
            {
              dirty_connection_sync_read_error (self, error, TRUE);
              break;
            }
          g_autoptr(GError) conn_error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                                      "Reading from the connection failed: %s",
                                                      error->message);
          dirty_connection_sync_read_error (self, conn_error, FALSE);
          break;
        }
      if (fds_unclaimed (self))
        {
          fail_unclaimed_fds (self);
          break;
        }
    }
  keep_leftover (self);
  scratch_release (self);
}

/* The socket is ready: HUP and ERR go to whichever side is watching, and
 * the read or write there meets the error. */
static void
on_ready (GIOCondition condition,
          gpointer     user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));

  if (self->reading && (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
    on_readable (self->socket, condition, self);
  if (self->writing && (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR)))
    dirty_connection_on_writable (self->socket, condition, self);
}

/* ---- public ----------------------------------------------------------- */

static void
watch_readable (DirtyConnection *self)
{
  self->reading = TRUE;
  dirty_connection_update_watch (self);
}

/* The bytes of dirty_connection_set_unread(), through the same parser as
 * bytes off the socket, then the socket itself. */
static gboolean
feed_unread (gpointer user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));
  g_autoptr(GBytes) unread = g_steal_pointer (&self->unread);
  gsize size = 0;
  const guint8 *data = g_bytes_get_data (unread, &size);

  g_clear_pointer (&self->unread_source, g_source_unref);
  /* no frame budget here: in_dispatch is FALSE */
  self->rbuf = (guint8 *) data;
  self->rbuf_pos = 0;
  self->rbuf_len = size;
  consume_buffer (self);
  self->rbuf = NULL;
  self->rbuf_pos = self->rbuf_len = 0;
  if (!self->closed && !self->failing && !self->paused && !self->reading &&
      self->owner_reads)
    {
      watch_readable (self);
      watch_incomplete_frame (self);
    }
  return G_SOURCE_REMOVE;
}

void
dirty_connection_set_oversized_func (DirtyConnection              *self,
                                     DirtyConnectionOversizedFunc  func)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (self->context == NULL);

  self->oversized_func = func;
}

void
dirty_connection_start (DirtyConnection           *self,
                        GMainContext              *context,
                        DirtyConnectionFrameFunc   frame_func,
                        DirtyConnectionClosedFunc  closed_func,
                        gpointer                   user_data)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (self->watch == NULL && !self->closed);

  self->context = context ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
  self->frame_func = frame_func;
  self->closed_func = closed_func;
  self->user_data = user_data;
  self->watch = dirty_watch_new (self->context, self->fd, on_ready, self);
  if (self->unread != NULL)
    {
      /* from an idle, as if read: a frame callback never runs inside start */
      self->unread_source = g_idle_source_new ();
      g_source_set_callback (self->unread_source, feed_unread, self, NULL);
      g_source_attach (self->unread_source, self->context);
    }
  else
    watch_readable (self);
  g_rec_mutex_lock (&self->write_lock);
  if (!g_queue_is_empty (&self->out))
    dirty_connection_flush (self);
  g_rec_mutex_unlock (&self->write_lock);
}

static void
weak_ref_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

/* The close is reported from the owner's context, but the last
 * reference may go on another thread (a blocking caller's, or one that
 * sent a request from there), whose finalize then destroys the source
 * while the owner's context may be about to dispatch it: the source
 * holds a weak reference, which says whether the connection still
 * lives. (A strong one would report the close after its owner let go
 * of the connection, to an owner maybe gone.) */
static gboolean
dispatch_closed (gpointer user_data)
{
  g_autoptr(DirtyConnection) self = g_weak_ref_get (user_data);
  g_autoptr(GError) error = NULL;

  if (self == NULL)
    return G_SOURCE_REMOVE;
  error = g_steal_pointer (&self->close_error);

  g_clear_pointer (&self->closed_source, g_source_unref);
  if (self->closed_func)
    self->closed_func (self, error, self->user_data);
  return G_SOURCE_REMOVE;
}

/* Stops all I/O and reports the close from an idle callback, so a caller
 * closing from inside a frame callback never sees itself re-entered. */
static void
connection_shutdown (DirtyConnection *self,
                     const GError    *error)
{
  g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new (&self->write_lock);
  GError *copy = error ? g_error_copy (error) : NULL;
  GWeakRef *weak;

  if (self->closed)
    {
      g_clear_error (&copy);
      return;
    }
  /* no waiter's thread is on the socket past this */
  dirty_connection_sync_close (self, error);
  self->closed = TRUE;
  self->failing = FALSE;
  self->reading = self->writing = FALSE;
  g_clear_pointer (&self->watch, dirty_watch_destroy);
  clear_source (&self->resume_source);
  clear_source (&self->fail_timer);
  clear_source (&self->frame_timer);
  /* frames sent just before the close still go, as without a batch */
  dirty_connection_unbatch (self);
  dirty_connection_clear_out (self);
  self->queued_bytes = 0;
  close_pending_fds (self);
  g_clear_pointer (&self->body_fds, dirty_fd_set_unref);
  g_socket_close (self->socket, NULL);
  g_clear_error (&self->close_error);
  self->close_error = copy;

  if (self->context == NULL)
    return;
  weak = g_new0 (GWeakRef, 1);
  g_weak_ref_init (weak, self);
  self->closed_source = g_idle_source_new ();
  g_source_set_priority (self->closed_source, G_PRIORITY_HIGH);
  g_source_set_callback (self->closed_source, dispatch_closed, weak, weak_ref_free);
  g_source_attach (self->closed_source, self->context);
}

void
dirty_connection_close (DirtyConnection *self)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));

  connection_shutdown (self, NULL);
}

static gboolean
on_fail_timeout (gpointer user_data)
{
  DirtyConnection *self = user_data;
  g_autoptr(GError) error = g_steal_pointer (&self->close_error);

  g_clear_pointer (&self->fail_timer, g_source_unref);
  connection_shutdown (self, error);
  return G_SOURCE_REMOVE;
}

void
dirty_connection_fail (DirtyConnection *self,
                       guint64          id,
                       const GError    *error)
{
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(GRecMutexLocker) locker = NULL;

  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (error != NULL);

  locker = g_rec_mutex_locker_new (&self->write_lock);
  if (self->closed || self->failing)
    return;
  g_debug ("Closing connection after protocol error: %s", error->message);
  dirty_connection_sync_take_back (self);
  frame = dirty_frame_new_error (id, error, NULL, NULL, 0);
  dirty_connection_send (self, frame);
  if (self->closed)
    return;
  self->failing = TRUE;
  self->close_error = g_error_copy (error);
  stop_reading (self);
  clear_source (&self->resume_source);
  if (g_queue_is_empty (&self->out))
    {
      g_autoptr(GError) copy = g_steal_pointer (&self->close_error);
      connection_shutdown (self, copy);
      return;
    }
  self->fail_timer = g_timeout_source_new (FAIL_FLUSH_MS);
  g_source_set_callback (self->fail_timer, on_fail_timeout, self, NULL);
  g_source_attach (self->fail_timer, self->context);
}

gboolean
dirty_connection_is_closed (DirtyConnection *self)
{
  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), TRUE);

  return self->closed || self->failing;
}

GSocket *
dirty_connection_get_socket (DirtyConnection *self)
{
  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), NULL);

  return self->socket;
}

const DirtyLimits *
dirty_connection_get_limits (DirtyConnection *self)
{
  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), NULL);

  return &self->limits;
}

void
dirty_connection_set_unread (DirtyConnection *self,
                             GBytes          *unread)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (self->context == NULL);

  g_clear_pointer (&self->unread, g_bytes_unref);
  if (unread != NULL && g_bytes_get_size (unread) > 0)
    self->unread = g_bytes_ref (unread);
}

void
dirty_connection_pause_reading (DirtyConnection *self)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));

  dirty_connection_sync_take_back (self);
  self->paused = TRUE;
  stop_reading (self);
  clear_source (&self->resume_source);
  clear_source (&self->frame_timer);
}

int
dirty_connection_detach (DirtyConnection *self,
                         GByteArray      *unread)
{
  return dirty_connection_detach_with_fds (self, unread, NULL);
}

void
dirty_connection_lost (DirtyConnection *self,
                       const GError    *error)
{
  connection_shutdown (self, error);
}

void
dirty_connection_set_owner_reads (DirtyConnection *self,
                                  gboolean         owner_reads)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));

  if (self->owner_reads == owner_reads)
    return;
  self->owner_reads = owner_reads;
  if (self->closed || self->failing || self->paused)
    return;
  if (!owner_reads)
    {
      stop_reading (self);
      clear_source (&self->resume_source);
      clear_source (&self->frame_timer);
      /* inside a frame callback the turn ends first (on_readable ()) */
      if (!self->in_dispatch)
        dirty_connection_sync_owner_done (self);
      return;
    }
  /* frames a leader forwarded go first: on_readable () and the forward
   * idle deliver them, never this call (a frame callback may be what
   * called it) */
  dirty_connection_sync_take_back (self);
  /* a frame a waiter began is the owner's to finish, from now */
  self->frame_started = g_get_monotonic_time ();
  watch_readable (self);
  watch_incomplete_frame (self);
  schedule_resume (self);
}

void
dirty_connection_set_unread_with_fds (DirtyConnection *self,
                                      GBytes          *unread,
                                      GArray          *fds)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (self->context == NULL);

  dirty_connection_set_unread (self, unread);
  close_pending_fds (self);
  /* before start nothing came off the socket: these are the first fds,
   * claimed in order by the frames of @unread */
  if (fds != NULL && fds->len > 0)
    {
      g_array_append_vals (self->pending_fds, fds->data, fds->len);
      g_array_set_size (fds, 0);
    }
}

int
dirty_connection_detach_with_fds (DirtyConnection *self,
                                  GByteArray      *unread,
                                  GArray          *fds)
{
  int fd;

  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), -1);
  g_return_val_if_fail (unread != NULL, -1);

  if (self->closed || self->failing)
    {
      errno = ENOTCONN;
      return -1;
    }
  dirty_connection_sync_take_back (self);
  /* the bytes go on; fds already received go only where the caller
   * takes them (a new owner would read a frame whose fds never arrive) */
  if (fds == NULL && (self->body_fds != NULL || self->pending_fds->len > 0))
    {
      errno = EBUSY;
      return -1;
    }
  /* the bytes of a frame being skipped are gone: a new owner could not
   * tell where the next frame begins */
  if (self->skipping)
    {
      errno = EBUSY;
      return -1;
    }
  fd = fcntl (g_socket_get_fd (self->socket), F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return -1;
  /* the frame being assembled: its header bytes, then its body bytes */
  g_byte_array_append (unread, self->header_buf, self->header_have);
  if (self->in_body)
    g_byte_array_append (unread, self->body, self->body_have);
  if (self->pending != NULL)
    g_byte_array_append (unread, self->pending->data, self->pending->len);
  if (self->unread != NULL)
    g_byte_array_append (unread, g_bytes_get_data (self->unread, NULL),
                         g_bytes_get_size (self->unread));
  /* in the order of the bytes: the assembled frame's, then the rest */
  for (guint i = 0; fds != NULL && self->body_fds != NULL &&
       i < dirty_fd_set_get_length (self->body_fds); i++)
    {
      int body_fd = dirty_fd_set_steal (self->body_fds, i);

      g_array_append_val (fds, body_fd);
    }
  if (fds != NULL)
    {
      g_array_append_vals (fds, self->pending_fds->data, self->pending_fds->len);
      g_array_set_size (self->pending_fds, 0);
    }
  /* closes this process's fd only: the duplicate keeps the connection */
  self->closed_func = NULL;
  connection_shutdown (self, NULL);
  return fd;
}
