/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <glib-unix.h>

#include "dirty-client-io-private.h"
#include "dirty-error.h"
#include "dirty-json-write.h"
#include "dirty-message.h"
#include "dirty-stream-private.h"
#include "dirty-i18n-private.h"

/**
 * DirtyStream:
 *
 * The result of a streamed call ([method@Dirty.Client.stream]): the
 * chunks an action sends, as they arrive.
 *
 * Read it chunk by chunk with [method@Dirty.Stream.next_chunk] (from a
 * main loop) or [method@Dirty.Stream.next_chunk_sync], each chunk a
 * [struct@Json.Node], %NULL at the end. Or read it as the
 * [class@Gio.InputStream] it is: the bytes of the chunks one after the
 * other, a string chunk as its UTF-8 text, a bytes chunk raw, and any
 * other JSON value (number, object, array, boolean, null) as a line of
 * compact JSON text (JSON Lines: the text and a newline, so that values
 * in a row stay apart; see dirty_json_to_string()). So a stream of text
 * or of values plugs into a [class@Gio.DataInputStream] to read lines,
 * into g_output_stream_splice(), or into an HTTP response body. It implements [iface@Gio.PollableInputStream], so
 * g_input_stream_read_async() runs on the caller's main loop, without a
 * thread.
 *
 * An error that ends the stream (the action failed, the deadline passed,
 * the worker died) comes from the read after every chunk sent before it
 * was read, as a #GError of the %DIRTY_ERROR domain.
 *
 * The reader sets the pace: the worker may only be a credit window of
 * chunks (512), or 2 MiB of chunks plus one, ahead of it, so
 * an action streaming faster than the reader reads waits instead of
 * filling memory. Closing the stream,
 * or dropping the last reference to it, before its end, cancels the call:
 * the action's #GCancellable fires and its worker is free for the next
 * call. So does cancelling the #GCancellable given to
 * [method@Dirty.Client.stream].
 *
 * One read or next_chunk operation at a time, as for any #GInputStream;
 * they may come from any thread.
 *
 * Since: 0.1
 */

/* ---- the queue: filled by the I/O thread, drained by the reader ---- */

struct _DirtyStreamQueue {
  gatomicrefcount ref_count;
  DirtyLimits     limits;
  guint           window;

  GMutex   lock;
  GCond    cond;        /* a chunk or the end arrived, or a wait was cancelled */
  GQueue   frames;      /* of DirtyFrame: CHUNKs not read yet */
  guint    n_waiting;   /* readers in g_cond_wait (): a push wakes only them */
  gboolean wake_deferred;   /* a wake-up waits for the I/O thread's read to end */
  gboolean ended;
  GError  *error;       /* how it ended, NULL for END */
  /* For main-loop readers: readable while a chunk or the end waits. Made
   * on first use; its level is kept in step with the queue, under lock. */
  int      event_fd;
  gboolean event_set;

  /* The reader's alone, no lock: the frames it took from @frames at
   * once. A reader that falls behind takes every chunk that arrived in
   * one lock, not one lock (and, with the I/O thread pushing meanwhile,
   * one futex call or more) per chunk. */
  GQueue   taken;
};

typedef enum {
  POP_CHUNK,
  POP_END,
  POP_ERROR,
  POP_EMPTY,
} PopResult;

DirtyStreamQueue *
dirty_stream_queue_new (const DirtyLimits *limits,
                        guint              window)
{
  DirtyStreamQueue *queue = g_new0 (DirtyStreamQueue, 1);

  g_atomic_ref_count_init (&queue->ref_count);
  if (limits != NULL)
    queue->limits = *limits;
  else
    dirty_limits_init (&queue->limits);
  queue->window = window;
  queue->event_fd = -1;
  g_mutex_init (&queue->lock);
  g_cond_init (&queue->cond);
  g_queue_init (&queue->frames);
  g_queue_init (&queue->taken);
  return queue;
}

DirtyStreamQueue *
dirty_stream_queue_ref (DirtyStreamQueue *queue)
{
  g_atomic_ref_count_inc (&queue->ref_count);
  return queue;
}

void
dirty_stream_queue_unref (DirtyStreamQueue *queue)
{
  if (!g_atomic_ref_count_dec (&queue->ref_count))
    return;
  g_queue_clear_full (&queue->frames, (GDestroyNotify) dirty_frame_unref);
  g_queue_clear_full (&queue->taken, (GDestroyNotify) dirty_frame_unref);
  g_clear_error (&queue->error);
  if (queue->event_fd >= 0)
    close (queue->event_fd);
  g_mutex_clear (&queue->lock);
  g_cond_clear (&queue->cond);
  g_free (queue);
}

static gboolean
queue_readable_locked (DirtyStreamQueue *queue)
{
  return !g_queue_is_empty (&queue->frames) || queue->ended;
}

/* Level-triggers the eventfd: set while readable, clear otherwise. */
static void
queue_update_event_locked (DirtyStreamQueue *queue)
{
  gboolean want = queue_readable_locked (queue);
  guint64 value = 1;

  if (queue->event_fd < 0 || want == queue->event_set)
    return;
  if (want)
    {
      while (write (queue->event_fd, &value, sizeof value) < 0 && errno == EINTR)
        ;
    }
  else
    {
      while (read (queue->event_fd, &value, sizeof value) < 0 && errno == EINTR)
        ;
    }
  queue->event_set = want;
}

static void
queue_wake_deferred (gpointer data,
                     gpointer unused)
{
  DirtyStreamQueue *queue = data;

  g_mutex_lock (&queue->lock);
  queue->wake_deferred = FALSE;
  g_mutex_unlock (&queue->lock);
  g_cond_signal (&queue->cond);
  dirty_stream_queue_unref (queue);
}

void
dirty_stream_queue_push (DirtyStreamQueue *queue,
                         DirtyFrame       *frame)
{
  gboolean wake = FALSE;

  g_mutex_lock (&queue->lock);
  if (!queue->ended)
    {
      g_queue_push_tail (&queue->frames, dirty_frame_ref (frame));
      queue_update_event_locked (queue);
      /* a signal is a syscall even with nobody waiting */
      wake = queue->n_waiting > 0 && !queue->wake_deferred;
      queue->wake_deferred |= wake;
    }
  g_mutex_unlock (&queue->lock);
  /* Once the read that brought it is done: a reader that waits takes
   * every chunk of the read at once, not one wake-up per chunk; and
   * after the unlock (woken under it, it would only wait for the lock) */
  if (wake)
    dirty_connection_batch_defer (queue_wake_deferred, dirty_stream_queue_ref (queue));
}

void
dirty_stream_queue_finish (DirtyStreamQueue *queue,
                           const GError     *error)
{
  g_mutex_lock (&queue->lock);
  if (!queue->ended)
    {
      queue->ended = TRUE;
      queue->error = error ? g_error_copy (error) : NULL;
      queue_update_event_locked (queue);
      g_cond_broadcast (&queue->cond);
    }
  g_mutex_unlock (&queue->lock);
}

gboolean
dirty_stream_queue_has_ended (DirtyStreamQueue *queue)
{
  gboolean ended;

  g_mutex_lock (&queue->lock);
  ended = queue->ended;
  g_mutex_unlock (&queue->lock);
  return ended;
}

/* Every chunk that arrived moves to the reader's own queue. Only once
 * the reader used up what it took before: every caller pops from
 * @taken first and takes only when it is empty. */
static void
queue_take_locked (DirtyStreamQueue *queue)
{
  g_assert (g_queue_is_empty (&queue->taken));

  if (g_queue_is_empty (&queue->frames))
    return;
  queue->taken = queue->frames;
  g_queue_init (&queue->frames);
  queue_update_event_locked (queue);
}

static PopResult
queue_pop_locked (DirtyStreamQueue  *queue,
                  DirtyFrame       **frame,
                  GError           **error)
{
  queue_take_locked (queue);
  if (!g_queue_is_empty (&queue->taken))
    {
      *frame = g_queue_pop_head (&queue->taken);
      return POP_CHUNK;
    }
  if (!queue->ended)
    return POP_EMPTY;
  if (queue->error == NULL)
    return POP_END;
  g_propagate_error (error, g_error_copy (queue->error));
  return POP_ERROR;
}

static void
queue_wake_cb (GCancellable *cancellable,
               gpointer      user_data)
{
  DirtyStreamQueue *queue = user_data;

  g_mutex_lock (&queue->lock);
  g_cond_broadcast (&queue->cond);
  g_mutex_unlock (&queue->lock);
}

/* Under the lock: waits for a push, counted so that a push signals
 * only when someone waits. */
static void
queue_wait_locked (DirtyStreamQueue *queue)
{
  queue->n_waiting++;
  g_cond_wait (&queue->cond, &queue->lock);
  queue->n_waiting--;
}

/* Blocks until a chunk or the end, or until @cancellable fires. */
static PopResult
queue_pop_wait (DirtyStreamQueue  *queue,
                GCancellable      *cancellable,
                DirtyFrame       **frame,
                GError           **error)
{
  PopResult result;
  gulong wake_id = 0;

  if ((*frame = g_queue_pop_head (&queue->taken)) != NULL)
    return POP_CHUNK;
  /* before locking: it runs at once when already cancelled */
  if (cancellable != NULL)
    wake_id = g_cancellable_connect (cancellable, G_CALLBACK (queue_wake_cb), queue, NULL);
  g_mutex_lock (&queue->lock);
  while ((result = queue_pop_locked (queue, frame, error)) == POP_EMPTY &&
         !g_cancellable_is_cancelled (cancellable))
    queue_wait_locked (queue);
  g_mutex_unlock (&queue->lock);
  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, wake_id);

  if (result == POP_EMPTY)
    {
      g_cancellable_set_error_if_cancelled (cancellable, error);
      return POP_ERROR;
    }
  return result;
}

static PopResult
queue_try_pop (DirtyStreamQueue  *queue,
               DirtyFrame       **frame,
               GError           **error)
{
  PopResult result;

  if ((*frame = g_queue_pop_head (&queue->taken)) != NULL)
    return POP_CHUNK;
  g_mutex_lock (&queue->lock);
  result = queue_pop_locked (queue, frame, error);
  g_mutex_unlock (&queue->lock);
  return result;
}

/* The next chunk if one is there, without waiting: the reader's own
 * first. (transfer none) */
static DirtyFrame *
queue_peek (DirtyStreamQueue *queue)
{
  if (g_queue_is_empty (&queue->taken))
    {
      g_mutex_lock (&queue->lock);
      queue_take_locked (queue);
      g_mutex_unlock (&queue->lock);
    }
  return g_queue_peek_head (&queue->taken);
}

/* Once readable (lock held): whether the stream started, that is a
 * chunk came or it ended with no error; else that error in @error */
static gboolean
queue_started_locked (DirtyStreamQueue  *queue,
                      GError           **error)
{
  if (!g_queue_is_empty (&queue->frames) || queue->error == NULL)
    return TRUE;
  g_propagate_error (error, g_error_copy (queue->error));
  return FALSE;
}

static gboolean
queue_wait_started (DirtyStreamQueue  *queue,
                    GError           **error)
{
  gboolean ok;

  g_mutex_lock (&queue->lock);
  while (!queue_readable_locked (queue))
    queue_wait_locked (queue);
  ok = queue_started_locked (queue, error);
  g_mutex_unlock (&queue->lock);
  return ok;
}

gboolean
dirty_stream_queue_started (DirtyStreamQueue  *queue,
                            GError           **error)
{
  gboolean ok;

  g_mutex_lock (&queue->lock);
  g_warn_if_fail (queue_readable_locked (queue));
  ok = queue_started_locked (queue, error);
  g_mutex_unlock (&queue->lock);
  return ok;
}

static gboolean
queue_is_readable (DirtyStreamQueue *queue)
{
  gboolean readable;

  if (!g_queue_is_empty (&queue->taken))
    return TRUE;
  g_mutex_lock (&queue->lock);
  readable = queue_readable_locked (queue);
  g_mutex_unlock (&queue->lock);
  return readable;
}

/* The eventfd for main-loop readers, made on first use. (transfer none) */
static int
queue_get_event_fd (DirtyStreamQueue  *queue,
                    GError           **error)
{
  int fd;

  g_mutex_lock (&queue->lock);
  if (queue->event_fd < 0)
    {
      queue->event_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (queue->event_fd < 0)
        {
          int saved = errno;

          g_mutex_unlock (&queue->lock);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       _("eventfd: %s"), g_strerror (saved));
          return -1;
        }
      queue->event_set = FALSE;
      queue_update_event_locked (queue);
    }
  fd = queue->event_fd;
  g_mutex_unlock (&queue->lock);
  return fd;
}

/* ---- DirtyStream: the reader ---- */

struct _DirtyStream
{
  GInputStream parent_instance;

  GObject          *client;  /* keeps the connection (and the call's io) alive */
  DirtyStreamQueue *queue;
  DirtyClientCall  *call;

  /* The reader's state: one operation at a time (GInputStream's pending) */
  GBytes           *current;      /* the chunk being read as bytes */
  gsize             offset;
  GPtrArray        *attachments;  /* of the chunk next_chunk returned last */
  guint             unacked;      /* chunks read since the last CREDIT */
  gsize             unacked_bytes;   /* and their body bytes */
};

static void dirty_stream_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DirtyStream, dirty_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      dirty_stream_pollable_iface_init))

/* A chunk (@frame) left the queue: give the credit back to the worker,
 * half a window at a time, so the stream flows without a CREDIT per
 * chunk; or once DIRTY_STREAM_BYTES_AHEAD body bytes were read, which
 * the worker waits for when its chunks are big. */
static void
dirty_stream_consumed (DirtyStream *self,
                       DirtyFrame  *frame)
{
  guint batch = MAX (1, self->queue->window / 2);

  self->unacked_bytes += g_bytes_get_size (frame->body);
  if (++self->unacked < batch && self->unacked_bytes < DIRTY_STREAM_BYTES_AHEAD)
    return;
  dirty_client_call_credit (self->call, self->unacked);
  self->unacked = 0;
  self->unacked_bytes = 0;
}

/* The "data" of a CHUNK, and its attachments */
static JsonNode *
decode_chunk (DirtyStream  *self,
              DirtyFrame   *frame,
              GPtrArray   **attachments,
              GError      **error)
{
  JsonNode *data;

  if (!dirty_frame_decode_member (frame, &self->queue->limits, "data", &data, attachments, error))
    return NULL;
  return data != NULL ? data : json_node_new (JSON_NODE_NULL);
}

/* A chunk as the bytes read() gives: a string's UTF-8, bytes raw, any
 * other value a line of JSON text (without the newline, the numbers 1
 * and 2 would read as 12). */
static GBytes *
chunk_to_bytes (JsonNode  *data,
                GPtrArray *attachments)
{
  GBytes *bytes = dirty_json_lookup_bytes (data, attachments);

  if (bytes != NULL)
    return g_bytes_ref (bytes);
  if (JSON_NODE_HOLDS_VALUE (data) && json_node_get_value_type (data) == G_TYPE_STRING)
    return g_bytes_new (json_node_get_string (data), strlen (json_node_get_string (data)));
  {
    gsize length;
    char *line = dirty_json_to_text (data, FALSE, &length);

    line = g_realloc (line, length + 2);
    line[length] = '\n';
    line[length + 1] = '\0';
    return g_bytes_new_take (line, length + 1);
  }
}

/* Sets self->current from a popped chunk. */
static gboolean
dirty_stream_load (DirtyStream  *self,
                   DirtyFrame   *frame,
                   GError      **error)
{
  g_autoptr(DirtyFrame) owned = frame;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(JsonNode) data = NULL;

  dirty_stream_consumed (self, frame);
  g_clear_pointer (&self->current, g_bytes_unref);
  self->offset = 0;
  /* bytes as a worker writes them: no JSON to parse */
  if ((self->current = dirty_frame_get_bytes_chunk (frame)) != NULL)
    return TRUE;
  data = decode_chunk (self, frame, &attachments, error);
  if (data == NULL)
    return FALSE;
  self->current = chunk_to_bytes (data, attachments);
  return TRUE;
}

static gsize
dirty_stream_current_left (DirtyStream *self)
{
  return self->current ? g_bytes_get_size (self->current) - self->offset : 0;
}

static gssize
dirty_stream_copy_out (DirtyStream *self,
                       void        *buffer,
                       gsize        count)
{
  gsize n = MIN (count, dirty_stream_current_left (self));

  memcpy (buffer, (const guint8 *) g_bytes_get_data (self->current, NULL) + self->offset, n);
  self->offset += n;
  return (gssize) n;
}

/* The current chunk's bytes, then those of the bytes chunks already
 * there, up to @count: a reader behind the stream catches up in one
 * read. It stops before any other chunk, which needs a JSON parse that
 * may fail (the error then comes with the next read, not after bytes),
 * and before the end or an error, which the next read reports. */
static gssize
dirty_stream_copy_out_more (DirtyStream *self,
                            guint8      *buffer,
                            gsize        count)
{
  gsize done = (gsize) dirty_stream_copy_out (self, buffer, count);
  DirtyFrame *next;

  while (done < count && (next = queue_peek (self->queue)) != NULL)
    {
      GBytes *bytes = dirty_frame_get_bytes_chunk (next);

      if (bytes == NULL)
        break;
      dirty_stream_consumed (self, next);
      dirty_frame_unref (g_queue_pop_head (&self->queue->taken));
      g_bytes_unref (self->current);
      self->current = bytes;
      self->offset = 0;
      done += (gsize) dirty_stream_copy_out (self, buffer + done, count - done);
    }
  return (gssize) done;
}

/* read() and read_nonblocking(): @blocking chooses how to wait. */
static gssize
dirty_stream_read_some (DirtyStream   *self,
                        void          *buffer,
                        gsize          count,
                        gboolean       blocking,
                        GCancellable  *cancellable,
                        GError       **error)
{
  if (count == 0)
    return 0;
  /* an empty chunk adds no bytes: go on to the next one */
  while (dirty_stream_current_left (self) == 0)
    {
      DirtyFrame *frame = NULL;
      PopResult result = blocking
        ? queue_pop_wait (self->queue, cancellable, &frame, error)
        : queue_try_pop (self->queue, &frame, error);

      switch (result)
        {
        case POP_CHUNK:
          if (!dirty_stream_load (self, frame, error))
            return -1;
          break;
        case POP_END:
          return 0;
        case POP_EMPTY:
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               "No chunk has arrived yet");
          return -1;
        case POP_ERROR:
        default:
          return -1;
        }
    }
  return dirty_stream_copy_out_more (self, buffer, count);
}

static gssize
dirty_stream_read_fn (GInputStream  *stream,
                      void          *buffer,
                      gsize          count,
                      GCancellable  *cancellable,
                      GError       **error)
{
  return dirty_stream_read_some (DIRTY_STREAM (stream), buffer, count, TRUE, cancellable, error);
}

static gssize
dirty_stream_read_nonblocking (GPollableInputStream  *stream,
                               void                  *buffer,
                               gsize                  count,
                               GError               **error)
{
  return dirty_stream_read_some (DIRTY_STREAM (stream), buffer, count, FALSE, NULL, error);
}

static gboolean
dirty_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
dirty_stream_is_readable (GPollableInputStream *stream)
{
  DirtyStream *self = DIRTY_STREAM (stream);

  return dirty_stream_current_left (self) > 0 || queue_is_readable (self->queue);
}

static GSource *
dirty_stream_create_source (GPollableInputStream *stream,
                            GCancellable         *cancellable)
{
  DirtyStream *self = DIRTY_STREAM (stream);
  g_autoptr(GSource) child = NULL;
  g_autoptr(GError) error = NULL;
  int fd;

  /* bytes of the current chunk, or chunks the reader took, are
   * readable now (the eventfd only says whether more arrived); so is an
   * eventfd error (the read then reports it) */
  if (dirty_stream_current_left (self) > 0 || !g_queue_is_empty (&self->queue->taken) ||
      (fd = queue_get_event_fd (self->queue, &error)) < 0)
    child = g_timeout_source_new (0);
  else
    child = g_unix_fd_source_new (fd, G_IO_IN);
  return g_pollable_source_new_full (stream, child, cancellable);
}

/* Closing before the end cancels the call; after it, it does nothing
 * (dirty_client_call_abandon () finds the call ended). */
static gboolean
dirty_stream_close_fn (GInputStream  *stream,
                       GCancellable  *cancellable,
                       GError       **error)
{
  DirtyStream *self = DIRTY_STREAM (stream);

  dirty_client_call_abandon (self->call);
  g_clear_pointer (&self->current, g_bytes_unref);
  return TRUE;
}

/* Closing never blocks: no thread for it, unlike GInputStream's default */
static void
dirty_stream_close_async (GInputStream        *stream,
                          int                  io_priority,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, dirty_stream_close_async);
  dirty_stream_close_fn (stream, cancellable, NULL);
  g_task_return_boolean (task, TRUE);
}

static gboolean
dirty_stream_close_finish (GInputStream  *stream,
                           GAsyncResult  *result,
                           GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
dirty_stream_finalize (GObject *object)
{
  DirtyStream *self = DIRTY_STREAM (object);

  g_clear_pointer (&self->current, g_bytes_unref);
  g_clear_pointer (&self->attachments, g_ptr_array_unref);
  g_clear_pointer (&self->call, dirty_client_call_unref);
  g_clear_pointer (&self->queue, dirty_stream_queue_unref);
  /* after the abandon, if any, was scheduled (dispose closed the stream),
   * so the client's shutdown, if this was its last reference, comes after it */
  g_clear_object (&self->client);

  G_OBJECT_CLASS (dirty_stream_parent_class)->finalize (object);
}

static void
dirty_stream_class_init (DirtyStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = dirty_stream_finalize;
  stream_class->read_fn = dirty_stream_read_fn;
  stream_class->close_fn = dirty_stream_close_fn;
  stream_class->close_async = dirty_stream_close_async;
  stream_class->close_finish = dirty_stream_close_finish;
}

static void
dirty_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = dirty_stream_can_poll;
  iface->is_readable = dirty_stream_is_readable;
  iface->create_source = dirty_stream_create_source;
  iface->read_nonblocking = dirty_stream_read_nonblocking;
}

static void
dirty_stream_init (DirtyStream *self)
{
}

DirtyStream *
dirty_stream_new (GObject          *client,
                  DirtyStreamQueue *queue,
                  DirtyClientCall  *call)
{
  DirtyStream *self = g_object_new (DIRTY_TYPE_STREAM, NULL);

  self->client = g_object_ref (client);
  self->queue = dirty_stream_queue_ref (queue);
  self->call = dirty_client_call_ref (call);
  return self;
}

gboolean
dirty_stream_wait_started (DirtyStream  *self,
                           GError      **error)
{
  return queue_wait_started (self->queue, error);
}

/* ---- chunk by chunk ---- */

/* POP_CHUNK with *out_chunk set, POP_END, POP_ERROR or POP_EMPTY. A chunk
 * partly read as bytes is dropped: the next whole chunk comes. */
static PopResult
dirty_stream_next (DirtyStream   *self,
                   gboolean       blocking,
                   GCancellable  *cancellable,
                   JsonNode     **out_chunk,
                   GError       **error)
{
  g_autoptr(GPtrArray) attachments = NULL;
  DirtyFrame *frame = NULL;
  PopResult result = blocking
    ? queue_pop_wait (self->queue, cancellable, &frame, error)
    : queue_try_pop (self->queue, &frame, error);

  g_clear_pointer (&self->current, g_bytes_unref);
  if (result != POP_CHUNK)
    return result;
  dirty_stream_consumed (self, frame);
  *out_chunk = decode_chunk (self, frame, &attachments, error);
  dirty_frame_unref (frame);
  if (*out_chunk == NULL)
    return POP_ERROR;
  g_clear_pointer (&self->attachments, g_ptr_array_unref);
  self->attachments = g_steal_pointer (&attachments);
  return POP_CHUNK;
}

/**
 * dirty_stream_next_chunk_sync:
 * @self: a #DirtyStream
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Reads the next chunk, blocking the calling thread until it arrives. A
 * bytes chunk comes as a `{"$bytes": 0}` object: get its bytes with
 * [method@Dirty.Stream.lookup_bytes].
 *
 * Cancelling @cancellable only stops this wait (with
 * %G_IO_ERROR_CANCELLED); close the stream to stop the call.
 *
 * Returns: (transfer full) (nullable): the chunk; %NULL with @error unset
 *   at the end of the stream; %NULL with @error set if the stream ended
 *   with an error (after every earlier chunk was read)
 *
 * Since: 0.1
 */
JsonNode *
dirty_stream_next_chunk_sync (DirtyStream   *self,
                              GCancellable  *cancellable,
                              GError       **error)
{
  JsonNode *chunk = NULL;

  g_return_val_if_fail (DIRTY_IS_STREAM (self), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_input_stream_set_pending (G_INPUT_STREAM (self), error))
    return NULL;
  dirty_stream_next (self, TRUE, cancellable, &chunk, error);
  g_input_stream_clear_pending (G_INPUT_STREAM (self));
  return chunk;
}

/* Returns the task unless the stream has nothing yet. */
static gboolean
dirty_stream_next_try (DirtyStream *self,
                       GTask       *task)
{
  g_autoptr(GError) error = NULL;
  JsonNode *chunk = NULL;

  if (g_task_return_error_if_cancelled (task))
    {
      g_input_stream_clear_pending (G_INPUT_STREAM (self));
      return TRUE;
    }
  switch (dirty_stream_next (self, FALSE, NULL, &chunk, &error))
    {
    case POP_EMPTY:
      return FALSE;
    case POP_ERROR:
      g_input_stream_clear_pending (G_INPUT_STREAM (self));
      g_task_return_error (task, g_steal_pointer (&error));
      return TRUE;
    case POP_CHUNK:
    case POP_END:
    default:
      g_input_stream_clear_pending (G_INPUT_STREAM (self));
      g_task_return_pointer (task, chunk, (GDestroyNotify) json_node_unref);
      return TRUE;
    }
}

static gboolean
dirty_stream_next_ready_cb (GObject  *pollable,
                            gpointer  user_data)
{
  GTask *task = user_data;

  return dirty_stream_next_try (DIRTY_STREAM (pollable), task)
    ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/**
 * dirty_stream_next_chunk:
 * @self: a #DirtyStream
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called with the chunk
 * @user_data: data for @callback
 *
 * Reads the next chunk without blocking: @callback runs in the
 * thread-default main context of the calling thread once it has arrived
 * (or the stream ended). Call [method@Dirty.Stream.next_chunk_finish]
 * there. Waiting uses the main loop, not a thread.
 *
 * Since: 0.1
 */
void
dirty_stream_next_chunk (DirtyStream         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GSource) source = NULL;
  GError *error = NULL;

  g_return_if_fail (DIRTY_IS_STREAM (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dirty_stream_next_chunk);
  if (!g_input_stream_set_pending (G_INPUT_STREAM (self), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (dirty_stream_next_try (self, task))
    return;
  source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self), cancellable);
  g_task_attach_source (task, source, G_SOURCE_FUNC (dirty_stream_next_ready_cb));
}

/**
 * dirty_stream_next_chunk_finish:
 * @self: a #DirtyStream
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Stream.next_chunk].
 *
 * Returns: (transfer full) (nullable): the chunk; %NULL with @error unset
 *   at the end of the stream; %NULL with @error set if the stream ended
 *   with an error or the wait was cancelled
 *
 * Since: 0.1
 */
JsonNode *
dirty_stream_next_chunk_finish (DirtyStream   *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_STREAM (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == dirty_stream_next_chunk, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dirty_stream_lookup_bytes:
 * @self: a #DirtyStream
 * @node: (nullable): a node of the chunk last returned by
 *   [method@Dirty.Stream.next_chunk] or
 *   [method@Dirty.Stream.next_chunk_sync]
 *
 * Resolves a `{"$bytes": INDEX}` reference in the last chunk read, as a
 * bytes chunk is: the bytes travel raw, beside the JSON.
 *
 * Returns: (transfer none) (nullable): the bytes @node refers to, valid
 *   until the next chunk is read, or %NULL if @node is not a reference to
 *   an attachment of that chunk
 *
 * Since: 0.1
 */
GBytes *
dirty_stream_lookup_bytes (DirtyStream *self,
                           JsonNode    *node)
{
  g_return_val_if_fail (DIRTY_IS_STREAM (self), NULL);

  if (self->attachments == NULL)
    return NULL;
  return dirty_json_lookup_bytes (node, self->attachments);
}
