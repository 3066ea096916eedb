/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-connection.h"
#include "dirty-message.h"

#define READ_CHUNK        (64 * 1024)
/* Bound one dispatch so a fast peer cannot starve the others. */
#define READS_PER_DISPATCH 16
#define MAX_IOV           64
/* How long a failing connection waits for its ERROR frame to be read. */
#define FAIL_FLUSH_MS     1000
/* Room for every fd one recvmsg can bring (the kernel's SCM_MAX_FD), so
 * none is silently dropped by truncation */
#define MAX_FDS_PER_READ  253

typedef struct {
  DirtyFrame *frame;
  guint8      header[DIRTY_FRAME_HEADER_SIZE];
} OutFrame;

struct _DirtyConnection {
  GObject parent_instance;

  GSocket      *socket;
  DirtyLimits   limits;
  GMainContext *context;

  DirtyConnectionFrameFunc  frame_func;
  DirtyConnectionClosedFunc closed_func;
  gpointer                  user_data;

  GSource *in_source;
  GSource *out_source;
  GSource *closed_source;
  GSource *fail_timer;
  GSource *frame_timer;     /* only while a frame is incomplete */

  /* read side: the frame being assembled */
  guint8          *rbuf;          /* READ_CHUNK bytes */
  gsize            rbuf_pos, rbuf_len;
  guint8           header_buf[DIRTY_FRAME_HEADER_SIZE];
  gsize            header_have;
  gint64           frame_started;  /* monotonic time of its first byte */
  gboolean         in_body;
  DirtyFrameHeader header;
  guint8          *body;
  gsize            body_have;
  GArray          *pending_fds;   /* received, not yet claimed by a header */
  DirtyFdSet      *body_fds;      /* those of the frame being assembled */

  /* write side */
  GQueue   out;          /* of OutFrame */
  gsize    out_offset;   /* bytes of the head frame already written */
  gsize    queued_bytes;

  gboolean closed;       /* no more I/O at all */
  gboolean failing;      /* flushing a final ERROR, then closing */
  GError  *close_error;
};

G_DEFINE_FINAL_TYPE (DirtyConnection, dirty_connection, G_TYPE_OBJECT)

static void connection_shutdown (DirtyConnection *self, const GError *error);

static gsize
out_frame_size (OutFrame *out)
{
  return DIRTY_FRAME_HEADER_SIZE + g_bytes_get_size (out->frame->body);
}

static void
out_frame_free (OutFrame *out)
{
  dirty_frame_unref (out->frame);
  g_free (out);
}

static void
clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
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

  clear_source (&self->in_source);
  clear_source (&self->out_source);
  clear_source (&self->closed_source);
  clear_source (&self->fail_timer);
  clear_source (&self->frame_timer);
  g_queue_clear_full (&self->out, (GDestroyNotify) out_frame_free);
  g_free (self->body);
  g_free (self->rbuf);
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
  self->rbuf = g_malloc (READ_CHUNK);
  self->pending_fds = g_array_new (FALSE, FALSE, sizeof (int));
}

DirtyConnection *
dirty_connection_new (GSocket           *socket,
                      const DirtyLimits *limits)
{
  DirtyConnection *self = g_object_new (DIRTY_TYPE_CONNECTION, NULL);

  self->socket = g_object_ref (socket);
  g_socket_set_blocking (socket, FALSE);
  if (limits)
    self->limits = *limits;
  else
    dirty_limits_init (&self->limits);
  return self;
}

/* ---- reading ---------------------------------------------------------- */

static void
deliver_frame (DirtyConnection *self)
{
  gsize length = dirty_frame_header_body_length (&self->header);
  g_autoptr(GBytes) body = g_bytes_new_take (g_steal_pointer (&self->body), length);
  g_autoptr(DirtyFdSet) fds = g_steal_pointer (&self->body_fds);
  g_autoptr(DirtyFrame) frame = dirty_frame_new_with_fds (&self->header, body, fds);
  g_autoptr(GError) error = NULL;

  self->in_body = FALSE;
  self->header_have = 0;
  self->body_have = 0;
  /* a lying fd (not a sealed memfd, shorter than said) never reaches a
   * callback: a mapping of it could fault */
  if (fds != NULL && !dirty_frame_check_fds (frame, &self->limits, &error))
    {
      dirty_connection_fail (self, 0, error);
      return;
    }
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
      dirty_connection_fail (self, 0, error);
      return FALSE;
    }
  if (n == 0)
    return TRUE;
  self->body_fds = dirty_fd_set_new ((int *) self->pending_fds->data, n);
  g_array_remove_range (self->pending_fds, 0, n);
  return TRUE;
}

static gboolean
start_body (DirtyConnection *self)
{
  g_autoptr(GError) error = NULL;

  if (!dirty_frame_header_parse (self->header_buf, &self->limits, &self->header, &error))
    {
      dirty_connection_fail (self, 0, error);
      return FALSE;
    }
  if (!claim_fds (self))
    return FALSE;
  self->in_body = TRUE;
  self->body_have = 0;
  /* +1 so a zero-length body still has a buffer to hand over */
  self->body = g_malloc (dirty_frame_header_body_length (&self->header) + 1);
  return TRUE;
}

/* Consumes buffered bytes into frames; FALSE once the connection stopped
 * reading (closed, failing, or a callback closed it). */
static gboolean
consume_buffer (DirtyConnection *self)
{
  while (!self->closed && !self->failing)
    {
      gsize avail = self->rbuf_len - self->rbuf_pos;
      gsize take;

      if (!self->in_body)
        {
          if (avail == 0)
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
          if (take)
            memcpy (self->body + self->body_have, self->rbuf + self->rbuf_pos, take);
          self->body_have += take;
          self->rbuf_pos += take;
          if (take < want)
            return TRUE;
        }
      if (self->in_body &&
          self->body_have == dirty_frame_header_body_length (&self->header))
        deliver_frame (self);
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
 * Errors of the fds are DIRTY_ERROR_PROTOCOL, of the socket G_IO_ERROR. */
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
    n = recvmsg (g_socket_get_fd (self->socket), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
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
 * missing, so big frames are not copied through rbuf. */
static gssize
receive_some (DirtyConnection  *self,
              GError          **error)
{
  if (self->in_body && self->rbuf_pos == self->rbuf_len)
    {
      gsize want = dirty_frame_header_body_length (&self->header) - self->body_have;

      if (want >= READ_CHUNK)
        {
          gssize n = receive_raw (self, self->body + self->body_have, want, error);
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
 * still waiting in rbuf may hold that header.) */
static gboolean
fds_unclaimed (DirtyConnection *self)
{
  return self->pending_fds->len > 0 && self->header_have == 0 &&
         self->rbuf_pos == self->rbuf_len && !self->closed && !self->failing;
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

  if (!incomplete || self->closed || self->failing || self->limits.frame_timeout_ms == 0)
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

static gboolean
on_readable (GSocket      *socket,
             GIOCondition  condition,
             gpointer      user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));

  for (guint i = 0; i < READS_PER_DISPATCH && !self->closed && !self->failing; i++)
    {
      g_autoptr(GError) error = NULL;
      gssize n = receive_some (self, &error);

      if (n == 0)
        {
          handle_eof (self);
          break;
        }
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
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
          g_autoptr(GError) fd_error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                                            "File descriptors arrived that no "
                                                            "frame declares");
          dirty_connection_fail (self, 0, fd_error);
          break;
        }
    }
  watch_incomplete_frame (self);
  return self->in_source != NULL ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* ---- writing ---------------------------------------------------------- */

static gboolean on_writable (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
watch_writable (DirtyConnection *self)
{
  if (self->out_source)
    return;
  self->out_source = g_socket_create_source (self->socket, G_IO_OUT, NULL);
  g_source_set_callback (self->out_source, G_SOURCE_FUNC (on_writable), self, NULL);
  g_source_attach (self->out_source, self->context);
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
      out_frame_free (g_queue_pop_head (&self->out));
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
  void *control = NULL;
  struct msghdr msg = { .msg_iov = vectors, .msg_iovlen = n_vectors };
  gssize written;

  if (n_fds > 0)
    {
      struct cmsghdr *c;

      /* rare (large payloads only): the heap, not 256 KiB of stack */
      control = g_malloc0 (CMSG_SPACE (n_fds * sizeof (int)));
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE (n_fds * sizeof (int));
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (n_fds * sizeof (int));
      for (guint i = 0; i < n_fds; i++)
        ((int *) CMSG_DATA (c))[i] = dirty_fd_set_get (fds, i);
    }
  do
    written = sendmsg (g_socket_get_fd (self->socket), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (written < 0 && errno == EINTR);
  g_free (control);
  if (written < 0)
    {
      int saved = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved),
                           g_strerror (saved));
    }
  return written;
}

/* Writes as much as the socket takes now. FALSE if the connection died. */
static gboolean
flush (DirtyConnection *self)
{
  while (!g_queue_is_empty (&self->out))
    {
      struct iovec vectors[MAX_IOV];
      guint n = gather (self, vectors);
      g_autoptr(GError) error = NULL;
      gssize written = send_raw (self, vectors, n, &error);
      if (written < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              watch_writable (self);
              return TRUE;
            }
          g_autoptr(GError) conn_error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                                      "Writing to the connection failed: %s",
                                                      error->message);
          connection_shutdown (self, self->failing ? self->close_error : conn_error);
          return FALSE;
        }
      advance_written (self, written);
    }
  clear_source (&self->out_source);
  if (self->failing)
    {
      g_autoptr(GError) error = g_steal_pointer (&self->close_error);
      connection_shutdown (self, error);
      return FALSE;
    }
  return TRUE;
}

static gboolean
on_writable (GSocket      *socket,
             GIOCondition  condition,
             gpointer      user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));

  /* flush() clears out_source itself once the queue is empty */
  flush (self);
  return self->out_source != NULL ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* ---- public ----------------------------------------------------------- */

void
dirty_connection_start (DirtyConnection           *self,
                        GMainContext              *context,
                        DirtyConnectionFrameFunc   frame_func,
                        DirtyConnectionClosedFunc  closed_func,
                        gpointer                   user_data)
{
  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (self->in_source == NULL && !self->closed);

  self->context = context ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
  self->frame_func = frame_func;
  self->closed_func = closed_func;
  self->user_data = user_data;
  self->in_source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->in_source, G_SOURCE_FUNC (on_readable), self, NULL);
  g_source_attach (self->in_source, self->context);
  if (!g_queue_is_empty (&self->out))
    flush (self);
}

void
dirty_connection_send (DirtyConnection *self,
                       DirtyFrame      *frame)
{
  OutFrame *out;
  gboolean was_empty;

  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (frame != NULL);

  if (self->closed || self->failing)
    return;
  out = g_new (OutFrame, 1);
  out->frame = dirty_frame_ref (frame);
  dirty_frame_header_write (&frame->header, out->header);
  was_empty = g_queue_is_empty (&self->out);
  g_queue_push_tail (&self->out, out);
  self->queued_bytes += out_frame_size (out);
  if (self->limits.max_queued_bytes > 0 && self->queued_bytes > self->limits.max_queued_bytes)
    {
      /* a peer that does not read cannot be told so: drop it */
      g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_BUSY,
                                             "The peer is not reading: %" G_GSIZE_FORMAT
                                             " bytes wait to be written", self->queued_bytes);
      connection_shutdown (self, error);
      return;
    }
  /* Write at once when nothing is queued (the latency path); otherwise
   * the frame joins the queue and goes out in one writev with the others
   * when the socket is writable again. */
  if (was_empty && self->context != NULL)
    flush (self);
}

static gboolean
dispatch_closed (gpointer user_data)
{
  g_autoptr(DirtyConnection) self = g_object_ref (DIRTY_CONNECTION (user_data));
  g_autoptr(GError) error = g_steal_pointer (&self->close_error);

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
  GError *copy = error ? g_error_copy (error) : NULL;

  if (self->closed)
    {
      g_clear_error (&copy);
      return;
    }
  self->closed = TRUE;
  self->failing = FALSE;
  clear_source (&self->in_source);
  clear_source (&self->out_source);
  clear_source (&self->fail_timer);
  clear_source (&self->frame_timer);
  g_queue_clear_full (&self->out, (GDestroyNotify) out_frame_free);
  self->queued_bytes = 0;
  close_pending_fds (self);
  g_clear_pointer (&self->body_fds, dirty_fd_set_unref);
  g_socket_close (self->socket, NULL);
  g_clear_error (&self->close_error);
  self->close_error = copy;

  if (self->context == NULL)
    return;
  self->closed_source = g_idle_source_new ();
  g_source_set_priority (self->closed_source, G_PRIORITY_HIGH);
  g_source_set_callback (self->closed_source, dispatch_closed, self, NULL);
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

  g_return_if_fail (DIRTY_IS_CONNECTION (self));
  g_return_if_fail (error != NULL);

  if (self->closed || self->failing)
    return;
  g_debug ("Closing connection after protocol error: %s", error->message);
  frame = dirty_frame_new_error (id, error, NULL, NULL, 0);
  dirty_connection_send (self, frame);
  if (self->closed)
    return;
  self->failing = TRUE;
  self->close_error = g_error_copy (error);
  clear_source (&self->in_source);
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

gsize
dirty_connection_get_queued_bytes (DirtyConnection *self)
{
  g_return_val_if_fail (DIRTY_IS_CONNECTION (self), 0);

  return self->queued_bytes;
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
