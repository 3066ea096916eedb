/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-i18n-private.h"

#include "dirty-call-private.h"
#include "dirty-call-stream-private.h"
#include "dirty-json-write.h"
#include "dirty-message.h"

/* One chunk without credit yet, and the async send waiting for it */
typedef struct {
  DirtyFrame *frame;
  GTask      *task;   /* NULL for a chunk nobody waits for */
} Waiting;

struct _DirtyCallStream {
  guint64       id;
  GMainContext *context;
  GCancellable *cancellable;
  gulong        cancelled_id;

  DirtyCallStreamReadyFunc ready_func;
  DirtyCallStreamSendFunc  send_func;
  gpointer                 ready_data;
  GDestroyNotify           ready_destroy;

  /* Everything below is shared by the app's threads and the main loop */
  GMutex    lock;
  GCond     cond;      /* credit arrived, or the stream was cancelled or closed */
  /* the body sizes of the chunks sent and not given back yet, oldest
   * first (a ring of @window), and their sum: DIRTY_STREAM_BYTES_AHEAD.
   * The credit left is @window - @ahead_count: a chunk is either ahead
   * or has its credit back (the arbiter never grants more than it
   * forwarded). */
  guint32  *ahead_sizes;
  guint     window;
  guint     ahead_first;
  guint     ahead_count;
  gsize     ahead_bytes;
  GQueue    out;       /* DirtyFrame*: have credit, for the main loop */
  GQueue    waiting;   /* Waiting*: no credit yet, in order */
  gboolean  ready_pending;
  gboolean  first_went;   /* a chunk had credit: the next ones keep its order */
  gboolean  cancelled;
  gboolean  closed;
};

static void
waiting_fail (Waiting      *waiting,
              const GError *error)
{
  dirty_frame_unref (waiting->frame);
  if (waiting->task != NULL)
    {
      g_task_return_error (waiting->task, g_error_copy (error));
      g_object_unref (waiting->task);
    }
  g_free (waiting);
}

/* With the lock held: returns whether the main loop needs a pump that
 * nobody asked for yet. Call notify_ready () after unlocking if so. */
static gboolean
mark_ready (DirtyCallStream *self)
{
  if (self->ready_pending)
    return FALSE;
  self->ready_pending = TRUE;
  return TRUE;
}

static void
notify_ready (DirtyCallStream *self)
{
  self->ready_func (self->ready_data);
}

/* Steals the waiting chunks (with the lock held) so they fail outside it */
static GQueue
steal_waiting (DirtyCallStream *self)
{
  GQueue stolen = self->waiting;

  g_queue_init (&self->waiting);
  return stolen;
}

/* Why a send fails: %G_IO_ERROR_CANCELLED or %G_IO_ERROR_CLOSED */
static GError *
stream_error (GIOErrorEnum code)
{
  return g_error_new_literal (G_IO_ERROR, code,
                              code == G_IO_ERROR_CANCELLED ? _("The call was cancelled")
                                                           : _("The stream has already ended"));
}

/* Fails the stolen sends with @code, outside the lock. The error is made
 * only if one waits: every stream is closed, few with sends waiting. */
static void
fail_all (GQueue       *stolen,
          GIOErrorEnum  code)
{
  g_autoptr(GError) error = NULL;
  Waiting *waiting;

  if (g_queue_is_empty (stolen))
    return;
  error = stream_error (code);
  while ((waiting = g_queue_pop_head (stolen)) != NULL)
    waiting_fail (waiting, error);
}

/* Runs in whichever thread cancels the call */
static void
dirty_call_stream_cancelled_cb (GCancellable *cancellable,
                                gpointer      user_data)
{
  DirtyCallStream *self = user_data;
  GQueue stolen;
  gboolean ready;

  g_mutex_lock (&self->lock);
  self->cancelled = TRUE;
  stolen = steal_waiting (self);
  ready = stolen.length > 0 && mark_ready (self);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);

  fail_all (&stolen, G_IO_ERROR_CANCELLED);
  if (ready)
    notify_ready (self);
}

DirtyCallStream *
dirty_call_stream_new (guint64                   id,
                       guint                     window,
                       GMainContext             *context,
                       GCancellable             *cancellable,
                       DirtyCallStreamReadyFunc  ready_func,
                       DirtyCallStreamSendFunc   send_func,
                       gpointer                  user_data,
                       GDestroyNotify            destroy)
{
  DirtyCallStream *self;

  /* every chunk and the END go out through it (dirty_call_stream_flush ()) */
  g_return_val_if_fail (send_func != NULL, NULL);

  self = g_new0 (DirtyCallStream, 1);
  self->id = id;
  self->window = MAX (window, 1);
  self->ahead_sizes = g_new (guint32, self->window);
  self->context = context ? g_main_context_ref (context) : NULL;
  self->cancellable = g_object_ref (cancellable);
  self->ready_func = ready_func;
  self->send_func = send_func;
  self->ready_data = user_data;
  self->ready_destroy = destroy;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->out);
  g_queue_init (&self->waiting);
  self->cancelled_id = g_cancellable_connect (cancellable,
                                              G_CALLBACK (dirty_call_stream_cancelled_cb),
                                              self, NULL);
  return self;
}

void
dirty_call_stream_free (DirtyCallStream *self)
{
  if (self == NULL)
    return;
  dirty_call_stream_close (self);
  g_cancellable_disconnect (self->cancellable, self->cancelled_id);
  g_queue_clear_full (&self->out, (GDestroyNotify) dirty_frame_unref);
  if (self->ready_destroy)
    self->ready_destroy (self->ready_data);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self->ahead_sizes);
  g_free (self);
}

/* With the lock held: why a send cannot go on, or NULL */
static GError *
send_error_locked (DirtyCallStream *self,
                   GCancellable    *cancellable)
{
  if (self->closed)
    return stream_error (G_IO_ERROR_CLOSED);
  if (self->cancelled || g_cancellable_is_cancelled (cancellable))
    return stream_error (G_IO_ERROR_CANCELLED);
  return NULL;
}

static void
wake_cb (GCancellable *cancellable,
         gpointer      user_data)
{
  DirtyCallStream *self = user_data;

  g_mutex_lock (&self->lock);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* With the lock held: whether a chunk may go now (a credit, nothing
 * older waiting, and less than DIRTY_STREAM_BYTES_AHEAD on its way). */
static gboolean
may_send_locked (DirtyCallStream *self)
{
  return self->ahead_count < self->window && self->ahead_bytes < DIRTY_STREAM_BYTES_AHEAD;
}

/* With the lock held: @frame takes a credit and counts as ahead. */
static void
take_credit_locked (DirtyCallStream *self,
                    DirtyFrame      *frame)
{
  gsize size = g_bytes_get_size (frame->body);

  self->ahead_sizes[(self->ahead_first + self->ahead_count++) % self->window] = (guint32) size;
  self->ahead_bytes += size;
}

/* With the lock held: waits for credit, or fails. */
static gboolean
wait_for_credit_locked (DirtyCallStream  *self,
                        GCancellable     *cancellable,
                        GError          **error)
{
  for (;;)
    {
      GError *local_error = send_error_locked (self, cancellable);

      if (local_error != NULL)
        {
          g_propagate_error (error, local_error);
          return FALSE;
        }
      if (may_send_locked (self) && g_queue_is_empty (&self->waiting))
        return TRUE;
      /* the credit arrives through this very main loop */
      if (self->context != NULL && g_main_context_is_owner (self->context))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               _("No credit to send a chunk from the worker's main loop; "
                                 "use dirty_call_send_chunk_async()"));
          return FALSE;
        }
      g_cond_wait (&self->cond, &self->lock);
    }
}

/* With the lock held and a credit taken for @frame (transfer full):
 * the first chunk is written at once, from this thread; the caller of
 * a stream waits for it (dirty_client_stream () returns at the first
 * chunk), and a wake-up of the main loop would come first. The others
 * go through the main loop, which writes all that piled up at once.
 * Under the lock, so that no later chunk overtakes the first. Returns
 * whether the main loop needs a pump (see mark_ready ()). */
static gboolean
give_credit_locked (DirtyCallStream *self,
                    DirtyFrame      *frame)
{
  if (!self->first_went)
    {
      self->first_went = TRUE;
      self->send_func (self->ready_data, frame);
      dirty_frame_unref (frame);
      return FALSE;
    }
  self->first_went = TRUE;
  g_queue_push_tail (&self->out, frame);
  return mark_ready (self);
}

gboolean
dirty_call_stream_send (DirtyCallStream  *self,
                        DirtyFrame       *frame,
                        GCancellable     *cancellable,
                        GError          **error)
{
  g_autoptr(DirtyFrame) owned = frame;
  gulong wake_id = 0;
  gboolean ok, ready = FALSE;

  /* run before locking: it runs at once when already cancelled */
  if (cancellable != NULL)
    wake_id = g_cancellable_connect (cancellable, G_CALLBACK (wake_cb), self, NULL);

  g_mutex_lock (&self->lock);
  ok = wait_for_credit_locked (self, cancellable, error);
  if (ok)
    {
      take_credit_locked (self, owned);
      ready = give_credit_locked (self, g_steal_pointer (&owned));
    }
  g_mutex_unlock (&self->lock);

  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, wake_id);
  if (ready)
    notify_ready (self);
  return ok;
}

void
dirty_call_stream_send_async (DirtyCallStream *self,
                              DirtyFrame      *frame,
                              GTask           *task)
{
  g_autoptr(GError) error = NULL;
  gboolean ready = FALSE;
  gboolean sent = FALSE;

  g_mutex_lock (&self->lock);
  error = send_error_locked (self, task ? g_task_get_cancellable (task) : NULL);
  if (error == NULL && may_send_locked (self) && g_queue_is_empty (&self->waiting))
    {
      take_credit_locked (self, frame);
      ready = give_credit_locked (self, frame);
      sent = TRUE;
    }
  else if (error == NULL)
    {
      Waiting *waiting = g_new0 (Waiting, 1);

      waiting->frame = frame;
      waiting->task = task;
      g_queue_push_tail (&self->waiting, waiting);
      task = NULL;
    }
  g_mutex_unlock (&self->lock);

  if (ready)
    notify_ready (self);
  if (error != NULL)
    dirty_frame_unref (frame);
  if (task == NULL)
    return;
  if (sent)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, g_steal_pointer (&error));
  g_object_unref (task);
}

void
dirty_call_stream_flush (DirtyCallStream *self)
{
  DirtyFrame *frame;

  /* under the lock, as the first chunk: an END sent from the producer's
   * thread (dirty_call_stream_end_now ()) cannot overtake these */
  g_mutex_lock (&self->lock);
  self->ready_pending = FALSE;
  while ((frame = g_queue_pop_head (&self->out)) != NULL)
    {
      self->send_func (self->ready_data, frame);
      dirty_frame_unref (frame);
    }
  g_mutex_unlock (&self->lock);
}

void
dirty_call_stream_add_credit (DirtyCallStream *self,
                              guint            n)
{
  GQueue granted = G_QUEUE_INIT;
  Waiting *waiting;

  g_mutex_lock (&self->lock);
  /* the @n oldest chunks were consumed: no longer ahead, a credit each */
  for (guint i = 0; i < n && self->ahead_count > 0; i++)
    {
      self->ahead_bytes -= self->ahead_sizes[self->ahead_first];
      self->ahead_first = (self->ahead_first + 1) % self->window;
      self->ahead_count--;
    }
  while (may_send_locked (self) && (waiting = g_queue_pop_head (&self->waiting)) != NULL)
    {
      take_credit_locked (self, waiting->frame);
      g_queue_push_tail (&self->out, g_steal_pointer (&waiting->frame));
      g_queue_push_tail (&granted, waiting);
    }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);

  /* the caller pumps right after: no ready notification needed */
  while ((waiting = g_queue_pop_head (&granted)) != NULL)
    {
      if (waiting->task != NULL)
        {
          g_task_return_boolean (waiting->task, TRUE);
          g_object_unref (waiting->task);
        }
      g_free (waiting);
    }
}

gboolean
dirty_call_stream_is_drained (DirtyCallStream *self)
{
  gboolean drained;

  g_mutex_lock (&self->lock);
  drained = g_queue_is_empty (&self->waiting);
  g_mutex_unlock (&self->lock);
  return drained;
}

void
dirty_call_stream_close (DirtyCallStream *self)
{
  GQueue stolen;

  g_mutex_lock (&self->lock);
  self->closed = TRUE;
  stolen = steal_waiting (self);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  fail_all (&stolen, G_IO_ERROR_CLOSED);
}

gboolean
dirty_call_stream_end_now (DirtyCallStream *self,
                           DirtyFrame      *end)
{
  gboolean now;

  g_mutex_lock (&self->lock);
  /* every chunk is in the connection's queue already: none waits for
   * credit or for the main loop to send it */
  now = !self->closed && g_queue_is_empty (&self->out) && g_queue_is_empty (&self->waiting);
  if (now)
    {
      self->closed = TRUE;
      self->send_func (self->ready_data, end);
      g_cond_broadcast (&self->cond);
    }
  g_mutex_unlock (&self->lock);
  return now;
}

/* ---- the public face, on DirtyCall ---- */

/* A CHUNK of @bytes, or of JSON @data; NULL, with
 * %DIRTY_ERROR_INVALID_ARGUMENT, if JSON cannot carry @data (a number
 * that is not finite, a string that is not UTF-8, nesting past the
 * protocol's limit) or the frame would be past the arbiter's limits
 * (JSON text over max_body): the app hears of it from its send, and the
 * stream goes on; sent, it would cost the client its connection, or the
 * worker its own. */
static DirtyFrame *
encode_chunk (DirtyCallStream  *stream,
              JsonNode         *data,
              GBytes           *bytes,
              GError          **error)
{
  g_autoptr(GString) text = NULL;
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(GError) local_error = NULL;

  if (bytes != NULL)
    {
      /* the common bytes chunk: its JSON never changes */
      g_autoptr(GPtrArray) attachments = g_ptr_array_new ();

      g_ptr_array_add (attachments, bytes);
      /* large ones in a new memfd each (no pool), as replies */
      frame = dirty_frame_encode_text_with_fds (DIRTY_FRAME_CHUNK, 0, stream->id, 0,
                                                DIRTY_BYTES_CHUNK_JSON,
                                                sizeof DIRTY_BYTES_CHUNK_JSON - 1, attachments,
                                                NULL);
    }
  else
    {
      text = g_string_new ("{\"data\":");
      if (data == NULL)
        g_string_append (text, "null");
      else if (!dirty_json_append (text, data, 1, 0, error))   /* JSON chunks carry no bytes */
        return NULL;
      g_string_append_c (text, '}');
      frame = dirty_frame_encode_string_with_fds (DIRTY_FRAME_CHUNK, 0, stream->id, 0,
                                                  g_steal_pointer (&text), NULL, NULL);
    }
  /* the worker's connection to the arbiter keeps the default limits (a
   * bytes chunk too: inline when no memfd could be made) */
  if (!dirty_frame_check_sendable (frame, dirty_limits_get_default (), &local_error))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   _("The chunk cannot be sent: %s (send large data as bytes)"),
                   local_error->message);
      return NULL;
    }
  return g_steal_pointer (&frame);
}

/* The stream to send on, or NULL with @error set */
static DirtyCallStream *
require_stream (DirtyCall  *self,
                GError    **error)
{
  DirtyCallStream *stream = dirty_call_get_stream (self);

  if (stream == NULL)
    {
      g_critical ("Action %s of app %s sends a chunk, but its caller does not read a stream "
                  "(declare the action with DIRTY_ACTION_STREAM)",
                  dirty_call_get_action (self), dirty_call_get_app_name (self));
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           _("The caller does not read a stream"));
    }
  return stream;
}

static gboolean
send_chunk (DirtyCall     *self,
            JsonNode      *data,
            GBytes        *bytes,
            GCancellable  *cancellable,
            GError       **error)
{
  DirtyCallStream *stream = require_stream (self, error);
  DirtyFrame *frame;

  if (stream == NULL)
    return FALSE;
  /* encoded here, on the app's thread: the main loop only writes */
  frame = encode_chunk (stream, data, bytes, error);
  if (frame == NULL)
    return FALSE;
  return dirty_call_stream_send (stream, frame, cancellable, error);
}

/**
 * dirty_call_send_chunk:
 * @self: a #DirtyCall
 * @chunk: (nullable): the chunk, any JSON value (%NULL for JSON null)
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends one chunk of a streamed result: the C form of a generator's
 * `yield`, for a %DIRTY_ACTION_STREAM action running on a worker thread.
 * @chunk is copied; it must not contain `{"$bytes": INDEX}` references
 * (send bytes with [method@Dirty.Call.send_bytes_chunk]).
 *
 * Blocks while the reader is a whole credit window behind (see
 * `docs/protocol.md`), so a slow reader slows the action down instead of
 * filling memory. Fails with %G_IO_ERROR_CANCELLED once the call is
 * cancelled (the reader went away, the deadline passed) or @cancellable
 * fires: the action should then stop and complete the call, for example
 * with that error. On the worker's main loop (an async action) it never
 * blocks: without credit it fails with %G_IO_ERROR_WOULD_BLOCK; use
 * [method@Dirty.Call.send_chunk_async] there.
 *
 * A chunk JSON cannot carry (a number that is not finite, a string that
 * is not UTF-8, arrays and objects nested past the protocol's limit of
 * 64 levels, counting the message around the chunk) fails with
 * %DIRTY_ERROR_INVALID_ARGUMENT and is not sent; the stream goes on.
 *
 * Returns: %TRUE if the chunk was queued for sending
 *
 * Since: 0.1
 */
gboolean
dirty_call_send_chunk (DirtyCall     *self,
                       JsonNode      *chunk,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return send_chunk (self, chunk, NULL, cancellable, error);
}

/**
 * dirty_call_send_bytes_chunk:
 * @self: a #DirtyCall
 * @bytes: the chunk
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends @bytes as one chunk of a streamed result, raw (an attachment,
 * never base64). Blocks and fails as [method@Dirty.Call.send_chunk].
 *
 * Returns: %TRUE if the chunk was queued for sending
 *
 * Since: 0.1
 */
gboolean
dirty_call_send_bytes_chunk (DirtyCall     *self,
                             GBytes        *bytes,
                             GCancellable  *cancellable,
                             GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return send_chunk (self, NULL, bytes, cancellable, error);
}

static void
send_chunk_async (DirtyCall           *self,
                  JsonNode            *data,
                  GBytes              *bytes,
                  GCancellable        *cancellable,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data)
{
  g_autoptr(GError) error = NULL;
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  DirtyCallStream *stream;
  DirtyFrame *frame = NULL;

  g_task_set_source_tag (task, dirty_call_send_chunk_async);
  stream = require_stream (self, &error);
  if (stream != NULL)
    frame = encode_chunk (stream, data, bytes, &error);
  if (frame == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  dirty_call_stream_send_async (stream, frame, task);
}

/**
 * dirty_call_send_chunk_async:
 * @self: a #DirtyCall
 * @chunk: (nullable): the chunk, any JSON value (%NULL for JSON null)
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data) (nullable): called when
 *   the chunk has credit and is on its way, or has failed
 * @user_data: data for @callback
 *
 * Sends one chunk of a streamed result without blocking: the C form of an
 * async generator's `yield`, for a %DIRTY_ACTION_ASYNC action. The chunk
 * is copied and queued at once, in order with the others; @callback tells
 * when it got credit, so a producer that waits for it before sending the
 * next one never has more than the credit window queued.
 * [method@Dirty.Call.end_stream] or an error may follow at once: they are
 * sent after the chunks queued before them (unless the call is cancelled,
 * which drops queued chunks and fails their sends with
 * %G_IO_ERROR_CANCELLED). A chunk JSON cannot carry fails at once, as
 * with [method@Dirty.Call.send_chunk].
 *
 * Since: 0.1
 */
void
dirty_call_send_chunk_async (DirtyCall           *self,
                             JsonNode            *chunk,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  send_chunk_async (self, chunk, NULL, cancellable, callback, user_data);
}

/**
 * dirty_call_send_bytes_chunk_async:
 * @self: a #DirtyCall
 * @bytes: the chunk
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data) (nullable): called when
 *   the chunk has credit and is on its way, or has failed
 * @user_data: data for @callback
 *
 * Sends @bytes as one chunk without blocking; see
 * [method@Dirty.Call.send_chunk_async]. Finish with
 * [method@Dirty.Call.send_chunk_finish].
 *
 * Since: 0.1
 */
void
dirty_call_send_bytes_chunk_async (DirtyCall           *self,
                                   GBytes              *bytes,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  g_return_if_fail (bytes != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  send_chunk_async (self, NULL, bytes, cancellable, callback, user_data);
}

/**
 * dirty_call_send_chunk_finish:
 * @self: a #DirtyCall
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Call.send_chunk_async] or
 * [method@Dirty.Call.send_bytes_chunk_async].
 *
 * Returns: %TRUE if the chunk had credit and went out; %FALSE with
 *   %G_IO_ERROR_CANCELLED if the call (or the send's cancellable) was
 *   cancelled, or %G_IO_ERROR_CLOSED if the call had already ended
 *
 * Since: 0.1
 */
gboolean
dirty_call_send_chunk_finish (DirtyCall     *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
