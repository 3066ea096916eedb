/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-i18n-private.h"
#include "dirty-worker-private.h"

/* Replies: every REQUEST gets exactly one RESPONSE or ERROR; a streamed
 * one gets its CHUNKs, within its credit window, then exactly one END or
 * ERROR. Calls and their streams report from whichever thread the app
 * uses; only the main context touches the in-flight table, so each
 * report is posted there as an idle, except a successful result and a
 * stream's END (once its chunks have gone), which the thread that
 * completed the call sends (under send_lock, taken before the
 * connection's write lock), saving the main context's wake-up: the
 * main context forgets that call when it next wakes for anything else. */

void
dirty_worker_send_frame (DirtyWorker *self,
                         DirtyFrame  *frame)
{
  if (self->connection != NULL && !dirty_connection_is_closed (self->connection))
    dirty_connection_send (self->connection, frame);
}

void
dirty_worker_send_error (DirtyWorker  *self,
                         guint64       id,
                         DirtyError    code,
                         const char   *app,
                         const char   *action,
                         const char   *message)
{
  g_autoptr(GError) error = dirty_error_new_full (code, app, action, NULL, self->pid, message);
  g_autoptr(DirtyFrame) frame = dirty_frame_new_error (id, error, app, action, self->pid);

  dirty_worker_send_frame (self, frame);
}

/* Where a call's outcome goes: the closure of its completion callback
 * and of its stream's ready callback, and (with @context NULL) the data
 * of the idle they post. */
typedef struct {
  DirtyWorker *worker;
  GMainContext *context;  /* where to post; NULL in a posted idle */
  DirtyCall *call;        /* in a posted reply: the call that completed */
  guint64 id;
  gboolean sent;          /* in a posted reply: its thread sent it already */
} ReplyTarget;

static ReplyTarget *
reply_target_new (DirtyWorker  *worker,
                  GMainContext *context,
                  DirtyCall    *call,
                  guint64       id)
{
  ReplyTarget *target = g_new0 (ReplyTarget, 1);

  target->worker = g_object_ref (worker);
  target->context = context ? g_main_context_ref (context) : NULL;
  target->call = call ? g_object_ref (call) : NULL;
  target->id = id;
  return target;
}

static void
reply_target_free (gpointer data)
{
  ReplyTarget *target = data;

  g_object_unref (target->worker);
  g_clear_pointer (&target->context, g_main_context_unref);
  g_clear_object (&target->call);
  g_free (target);
}

/* Called from any thread: runs @func on the main context. */
static void
post_to_main_context (ReplyTarget *target,
                      DirtyCall   *call,
                      gboolean     sent,
                      GSourceFunc  func,
                      const char  *name)
{
  g_autoptr(GSource) source = g_idle_source_new ();
  ReplyTarget *posted = reply_target_new (target->worker, NULL, call, target->id);

  posted->sent = sent;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, posted, reply_target_free);
  g_source_set_static_name (source, name);
  g_source_attach (source, target->context);
}

/* Building frames */

/* The wire code for an app's error: DIRTY_ERROR keeps its code; a
 * cancellation says why the call was cancelled; anything else is the
 * app's own failure. */
static DirtyError
reply_error_code (const GError *error,
                  CancelReason  reason)
{
  gboolean cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                       g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_CANCELLED);

  if (cancelled && reason == CANCEL_BY_DEADLINE)
    return DIRTY_ERROR_TIMEOUT;
  if (cancelled && reason == CANCEL_BY_SHUTDOWN)
    return DIRTY_ERROR_SHUTTING_DOWN;
  if (cancelled)
    return DIRTY_ERROR_CANCELLED;
  if (error->domain == DIRTY_ERROR)
    return (DirtyError) error->code;
  return DIRTY_ERROR_APP;
}

static DirtyFrame *
error_frame (DirtyWorker  *self,
             InFlight     *entry,
             const GError *error)
{
  DirtyCall *call = entry->call;
  const char *app = entry->wapp->name;
  const char *action = dirty_call_get_action (call);
  const char *detail = dirty_call_get_detail (call);
  DirtyError code = reply_error_code (error, entry->reason);
  const char *message = error->message;
  g_autoptr(GError) wire_error = NULL;

  if (detail == NULL)
    detail = dirty_error_get_detail (error);
  /* GIO's “Operation was cancelled” would not say by whom */
  if (code == DIRTY_ERROR_SHUTTING_DOWN && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    message = _("The call was cancelled: its worker is shutting down");
  wire_error = dirty_error_new_full (code, app, action, detail, self->pid, message);
  return dirty_frame_new_error (entry->id, wire_error, app, action, self->pid);
}

/* A RESPONSE ({"result": ...}) or a CHUNK ({"data": ...}) carrying the
 * call's result, JSON null if it returned none, and its attachments.
 * The result's text was written when the call completed; the object
 * goes around it here, without building one (a JsonObject costs a hash
 * table per reply). Once per call: the frame takes the text.
 *
 * NULL when the arbiter would refuse the frame (JSON text past max_body,
 * more attachments than a frame takes): the call fails with that, as
 * the app's error, instead of costing the worker its connection and
 * every call on it. */
static DirtyFrame *
call_result_frame (guint64         id,
                   DirtyCall      *call,
                   DirtyFrameType  type)
{
  GString *text = dirty_call_steal_result_json (call);
  /* large results in new write-sealed memfds, never pooled: the client
   * may keep them as long as it likes */
  GPtrArray *attachments = dirty_call_get_reply_attachments (call);
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(GError) error = NULL;

  if (text == NULL)
    text = g_string_new ("null");
  g_string_prepend (text, type == DIRTY_FRAME_CHUNK ? "{\"data\":" : "{\"result\":");
  g_string_append_c (text, '}');
  frame = dirty_frame_encode_string_with_fds (type, 0, id, 0, text, attachments, NULL);
  /* the worker's connection to the arbiter keeps the default limits */
  if (dirty_frame_check_sendable (frame, dirty_limits_get_default (), &error))
    return g_steal_pointer (&frame);
  dirty_call_fail_unsent (call, g_error_new (DIRTY_ERROR, DIRTY_ERROR_APP,
                                             _("The result of action %s of app %s cannot be "
                                               "sent: %s (return large data as bytes)"),
                                             dirty_call_get_action (call),
                                             dirty_call_get_app_name (call), error->message));
  return NULL;
}

static DirtyFrame *
result_frame (InFlight       *entry,
              DirtyFrameType  type)
{
  return call_result_frame (entry->id, entry->call, type);
}

static DirtyFrame *
build_reply (DirtyWorker *self,
             InFlight    *entry)
{
  DirtyFrame *frame;

  if (dirty_call_get_error (entry->call) == NULL &&
      (frame = result_frame (entry, DIRTY_FRAME_RESPONSE)) != NULL)
    return frame;
  return error_frame (self, entry, dirty_call_get_error (entry->call));
}

/* The call's last frame has gone out. */
static void
forget_call (DirtyWorker *self,
             InFlight    *entry)
{
  entry->wapp->n_active--;
  g_hash_table_remove (self->in_flight, &entry->id);
  dirty_worker_check_drained (self);
}

/* Streams */

/* The terminal message goes out once every chunk queued before it has
 * had credit, or was dropped by a cancel. */
static void
stream_finish (DirtyWorker *self,
               InFlight    *entry)
{
  DirtyCall *call = entry->call;
  g_autoptr(DirtyFrame) frame = NULL;

  if (dirty_call_get_error (call) != NULL)
    frame = build_reply (self, entry);
  else
    frame = dirty_frame_new_empty (DIRTY_FRAME_END, entry->id, 0);
  dirty_call_release_arguments (call);
  dirty_worker_send_frame (self, frame);
  dirty_call_stream_close (dirty_call_get_stream (call));
  forget_call (self, entry);
}

void
dirty_worker_stream_pump (DirtyWorker *self,
                          InFlight    *entry)
{
  DirtyCallStream *stream = dirty_call_get_stream (entry->call);

  /* the chunks that piled up since the last pump: one write */
  dirty_connection_batch_begin ();
  dirty_call_stream_flush (stream);
  if (entry->completed && dirty_call_stream_is_drained (stream))
    stream_finish (self, entry);
  dirty_connection_batch_end ();
}

static void
stream_completed (DirtyWorker *self,
                  InFlight    *entry)
{
  DirtyCall *call = entry->call;

  entry->completed = TRUE;
  /* A value returned to a caller that reads a stream is its one chunk
   * (if it fits; else the call now has the error, the stream's end) */
  if (dirty_call_get_error (call) == NULL && !dirty_call_get_stream_ended (call))
    {
      DirtyFrame *chunk = result_frame (entry, DIRTY_FRAME_CHUNK);

      if (chunk != NULL)
        dirty_call_stream_send_async (dirty_call_get_stream (call), chunk, NULL);
    }
  dirty_worker_stream_pump (self, entry);
}

/* On the main context */

static gboolean
reply_cb (gpointer user_data)
{
  ReplyTarget *target = user_data;
  DirtyWorker *self = target->worker;
  InFlight *entry;
  g_autoptr(DirtyFrame) frame = NULL;

  /* After a forced shutdown, a stuck call may still complete later. */
  if (self->in_flight == NULL)
    return G_SOURCE_REMOVE;
  entry = g_hash_table_lookup (self->in_flight, &target->id);
  if (entry == NULL || entry->call != target->call)
    return G_SOURCE_REMOVE;
  if (dirty_call_get_stream (entry->call) != NULL && !target->sent)
    {
      stream_completed (self, entry);
      return G_SOURCE_REMOVE;
    }

  /* a reply sent from the call's thread released the arguments there */
  if (!target->sent)
    {
      frame = build_reply (self, entry);
      /* the client may reuse the arguments' memfds once this reply is out */
      dirty_call_release_arguments (entry->call);
      dirty_worker_send_frame (self, frame);
    }
  forget_call (self, entry);
  return G_SOURCE_REMOVE;
}

static gboolean
stream_pump_cb (gpointer user_data)
{
  ReplyTarget *target = user_data;
  DirtyWorker *self = target->worker;
  InFlight *entry;

  if (self->in_flight == NULL)
    return G_SOURCE_REMOVE;
  /* ids are never reused: the entry of this id is this stream's */
  entry = g_hash_table_lookup (self->in_flight, &target->id);
  if (entry != NULL)
    dirty_worker_stream_pump (self, entry);
  return G_SOURCE_REMOVE;
}

/* Forgetting calls whose thread sent the reply */

typedef struct {
  GSource source;
  DirtyWorker *worker;    /* unowned: the worker destroys the source */
} SentSource;

/* Ready whenever the loop wakes with sent replies to forget: the wake-up
 * is the next frame's, a timer's or the heartbeat's (1 s at most). */
static gboolean
sent_source_prepare (GSource *source,
                     gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((SentSource *) source)->worker->n_sent) > 0;
}

static gboolean
sent_source_check (GSource *source)
{
  return g_atomic_int_get (&((SentSource *) source)->worker->n_sent) > 0;
}

static gboolean
sent_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  dirty_worker_forget_sent (((SentSource *) source)->worker, FALSE);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs sent_source_funcs = {
  .prepare = sent_source_prepare,
  .check = sent_source_check,
  .dispatch = sent_source_dispatch,
};

/* A pool thread whose call's reply is out runs the context next: it
 * forgets the call before it polls, rather than have the sent source
 * ready and the loop iterate (poll included) for it alone. */
static void
forget_sent_after_call (gpointer user_data)
{
  dirty_worker_forget_sent (user_data, FALSE);
}

void
dirty_worker_start_forgetting (DirtyWorker *self)
{
  SentSource *source = (SentSource *) g_source_new (&sent_source_funcs, sizeof (SentSource));

  source->worker = self;
  self->sent = g_ptr_array_new ();
  self->sent_wakes = FALSE;
  g_source_set_static_name (&source->source, "[dirty-worker] sent replies");
  g_source_attach (&source->source, self->context);
  self->sent_source = &source->source;
  dirty_worker_pool_set_after_call (self->pool, forget_sent_after_call);
}

void
dirty_worker_forget_sent (DirtyWorker *self,
                          gboolean     from_now_on)
{
  GPtrArray *sent;

  if (self->sent == NULL)
    return;
  /* two arrays take turns (sent_spare is the main context's alone): no
   * array made per batch */
  if (self->sent_spare == NULL)
    self->sent_spare = g_ptr_array_new ();
  g_mutex_lock (&self->sent_lock);
  sent = g_steal_pointer (&self->sent);
  self->sent = g_steal_pointer (&self->sent_spare);
  g_atomic_int_set (&self->n_sent, 0);
  if (from_now_on)
    self->sent_wakes = TRUE;
  g_mutex_unlock (&self->sent_lock);

  for (guint i = 0; i < sent->len; i++)
    {
      reply_cb (g_ptr_array_index (sent, i));
      reply_target_free (g_ptr_array_index (sent, i));
    }
  /* a reply may have stopped the worker, or forgotten sent calls itself */
  if (self->sent != NULL && self->sent_spare == NULL)
    {
      g_ptr_array_set_size (sent, 0);
      self->sent_spare = sent;
    }
  else
    g_ptr_array_unref (sent);
}

void
dirty_worker_stop_forgetting (DirtyWorker *self)
{
  dirty_worker_forget_sent (self, TRUE);
  dirty_worker_clear_source (&self->sent_source);
  g_mutex_lock (&self->sent_lock);
  g_clear_pointer (&self->sent, g_ptr_array_unref);
  g_mutex_unlock (&self->sent_lock);
  g_clear_pointer (&self->sent_spare, g_ptr_array_unref);
}

/* Called from the call's thread once its reply is out: TRUE if the main
 * context will forget the call without a wake-up of its own. */
static gboolean
forget_later (ReplyTarget *target,
              DirtyCall   *call)
{
  DirtyWorker *self = target->worker;
  gboolean later;

  g_mutex_lock (&self->sent_lock);
  later = self->sent != NULL && !self->sent_wakes;
  if (later)
    {
      ReplyTarget *sent = reply_target_new (self, NULL, call, target->id);

      sent->sent = TRUE;
      g_ptr_array_add (self->sent, sent);
      g_atomic_int_set (&self->n_sent, self->sent->len);
    }
  g_mutex_unlock (&self->sent_lock);
  return later;
}

/* From any thread */

/* Writes @frame from whichever thread runs this: send_lock keeps the
 * connection from going away under it. */
static void
send_from_this_thread (DirtyWorker *self,
                       DirtyFrame  *frame)
{
  g_mutex_lock (&self->send_lock);
  if (self->connection != NULL)
    dirty_connection_send_from_thread (self->connection, frame);
  g_mutex_unlock (&self->send_lock);
}

/* A stream its app ended: like a result (below), its END goes out from
 * the thread that ended it, if every chunk has gone before it. */
static gboolean
end_stream_now (ReplyTarget *target,
                DirtyCall   *call)
{
  g_autoptr(DirtyFrame) frame = NULL;

  /* a value returned instead: its one chunk is the main loop's to send */
  if (!dirty_call_get_stream_ended (call))
    return FALSE;
  frame = dirty_frame_new_empty (DIRTY_FRAME_END, target->id, 0);
  /* before the END, as stream_finish () does; the call is complete */
  dirty_call_release_arguments (call);
  return dirty_call_stream_end_now (dirty_call_get_stream (call), frame);
}

/* A result (not an error: its code depends on why the call was
 * cancelled, which the main context decides), or a stream's END, goes
 * out from the thread that completed the call, rather than after a
 * wake-up of the main loop; reply_cb () then only forgets the call. */
static gboolean
send_reply_now (ReplyTarget *target,
                DirtyCall   *call)
{
  g_autoptr(DirtyFrame) frame = NULL;

  if (dirty_call_get_error (call) != NULL)
    return FALSE;
  if (dirty_call_get_stream (call) != NULL)
    return end_stream_now (target, call);
  frame = call_result_frame (target->id, call, DIRTY_FRAME_RESPONSE);
  /* it does not fit: the call has the error now, the main context sends it */
  if (frame == NULL)
    return FALSE;
  /* before the reply goes out, as reply_cb () does: the client may reuse
   * the arguments' memfds once it has the reply */
  dirty_call_release_arguments (call);
  dirty_worker_pool_replying ();
  send_from_this_thread (target->worker, frame);
  return TRUE;
}

static void
call_complete_cb (DirtyCall *call,
                  gpointer   user_data)
{
  gboolean sent = send_reply_now (user_data, call);

  if (sent && forget_later (user_data, call))
    return;
  post_to_main_context (user_data, call, sent, reply_cb, "[dirty-worker] reply");
}

/* A stream has chunks to send, or dropped them. */
static void
stream_ready_cb (gpointer user_data)
{
  post_to_main_context (user_data, NULL, FALSE, stream_pump_cb, "[dirty-worker] stream");
}

/* A stream's chunk or END, from the thread that sends it, with the
 * stream's lock held (that lock orders them) */
static void
stream_send_cb (gpointer    user_data,
                DirtyFrame *frame)
{
  send_from_this_thread (((ReplyTarget *) user_data)->worker, frame);
}

DirtyCall *
dirty_worker_new_call (DirtyWorker *self,
                       guint64      id,
                       WorkerApp   *wapp,
                       const char  *action,
                       JsonArray   *args,
                       JsonObject  *kwargs,
                       GPtrArray   *attachments,
                       gint64       deadline)
{
  return dirty_call_new (wapp->app, wapp->name, action, args, kwargs, attachments,
                         deadline, NULL, call_complete_cb,
                         reply_target_new (self, self->context, NULL, id),
                         reply_target_free);
}

DirtyCallStream *
dirty_worker_new_call_stream (DirtyWorker *self,
                              InFlight    *entry,
                              guint        window)
{
  return dirty_call_stream_new (entry->id, window, self->context,
                                dirty_call_get_cancellable (entry->call),
                                stream_ready_cb, stream_send_cb,
                                reply_target_new (self, self->context, NULL, entry->id),
                                reply_target_free);
}
