/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <sys/stat.h>

#include <gio/gunixsocketaddress.h>

#include "dirty-client-io-internal.h"
#include "dirty-connection-sync.h"
#include "dirty-error.h"
#include "dirty-io-private.h"
#include "dirty-message.h"
#include "dirty-reply-private.h"
#include "dirty-socket.h"
#include "dirty-i18n-private.h"

/* How long a connect() may be retried while the arbiter's listen backlog is
 * full (a unix socket then fails with EAGAIN rather than blocking). */
#define CONNECT_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS   20
#define SAFETY_MARGIN_MS   DIRTY_CLIENT_SAFETY_MARGIN_MS

static void client_io_flush (ClientIo *io);

/* A call of this path was sent or ended before it was: sync calls may
 * go their own way again once none is left to send (dirty_client_io_
 * sync_begin ()). */
static void
client_io_sent_or_ended (ClientIo *io)
{
  g_mutex_lock (&io->sync_lock);
  io->n_unsent--;
  g_mutex_unlock (&io->sync_lock);
}
static void client_io_schedule_flush (ClientIo *io);

/* ---- Calls ---- */

static Call *
call_ref (Call *call)
{
  g_atomic_ref_count_inc (&call->ref_count);
  return call;
}

static void
call_unref (Call *call)
{
  if (!g_atomic_ref_count_dec (&call->ref_count))
    return;
  /* a call is only dropped once DONE, when its task has returned */
  g_warn_if_fail (call->task == NULL);
  g_clear_object (&call->task);
  g_clear_object (&call->cancellable);
  g_clear_pointer (&call->frame, dirty_frame_unref);
  g_clear_pointer (&call->queue, dirty_stream_queue_unref);
  g_clear_object (&call->started_on);
  g_queue_clear_full (&call->held, (GDestroyNotify) dirty_frame_unref);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_unref)

Call *
dirty_client_call_new (ClientIo         *io,
                       GTask            *task,
                       GCancellable     *cancellable,
                       DirtyFrame       *frame,
                       guint32           timeout_ms,
                       DirtyStreamQueue *queue)
{
  Call *call = g_new0 (Call, 1);

  g_atomic_ref_count_init (&call->ref_count);
  call->io = io;
  call->task = task;
  call->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  call->frame = frame;
  call->timeout_ms = timeout_ms;
  call->state = CALL_NEW;
  call->queue = queue ? dirty_stream_queue_ref (queue) : NULL;
  return call;
}

/* Frees what a call's task would have returned (see dirty_client_call_
 * finish ()). */
static void
call_value_free (Call     *call,
                 gpointer  value)
{
  if (value == NULL)
    return;
  if (call->result_only)
    json_node_unref (value);
  else
    g_object_unref (value);
}

/* Ends @call with @value or @error (both transfer full; neither for a
 * connect-only call). Only on the I/O thread; a no-op once DONE. */
void
dirty_client_call_finish (Call     *call,
                          gpointer  value,
                          GError   *error)
{
  g_autoptr(Call) hold = call_ref (call);
  g_autoptr(GError) owned_error = error;
  g_autoptr(GTask) task = NULL;

  if (call->state == CALL_DONE)
    {
      call_value_free (call, value);
      return;
    }

  if (call->state != CALL_SENT)
    client_io_sent_or_ended (call->io);
  if (call->state == CALL_WAITING && g_queue_remove (&call->io->waiting, call))
    call_unref (call);
  else if (call->state == CALL_SENT)
    {
      g_hash_table_remove (call->io->pending, &call->id);
      if (call->first_to_waiter)
        call->io->n_first_waiting--;
      call->first_to_waiter = FALSE;
      g_mutex_lock (&call->io->sync_lock);
      call->io->in_flight--;
      g_mutex_unlock (&call->io->sync_lock);
      dirty_client_io_update_read_mode (call->io);
      /* a slot is free for a call held back by the in-flight limit */
      if (!g_queue_is_empty (&call->io->waiting))
        client_io_schedule_flush (call->io);
    }
  call->state = CALL_DONE;
  call->io = NULL;

  if (call->timer != NULL)
    {
      g_source_destroy (call->timer);
      g_clear_pointer (&call->timer, g_source_unref);
    }
  dirty_client_call_unwatch_cancellable (call);

  if (call->queue != NULL)
    dirty_stream_queue_finish (call->queue, owned_error);
  /* NULL: a stream's task, returned at its first chunk */
  task = g_steal_pointer (&call->task);
  if (task != NULL)
    dirty_client_call_return (call, task, g_steal_pointer (&value), g_steal_pointer (&owned_error));
  call_value_free (call, value);
}

gpointer
dirty_client_call_value (Call      *call,
                         JsonNode  *result,
                         GPtrArray *attachments)
{
  return call->result_only ? (gpointer) result : dirty_reply_new (result, attachments);
}

void
dirty_client_call_return (Call     *call,
                          GTask    *task,
                          gpointer  value,
                          GError   *error)
{
  if (error != NULL)
    g_task_return_error (task, error);
  else if (call->frame == NULL || call->queue != NULL)
    g_task_return_boolean (task, TRUE);
  else
    {
      g_task_return_pointer (task, value, call->result_only ? (GDestroyNotify) json_node_unref
                                                             : g_object_unref);
      return;
    }
  call_value_free (call, value);
}

static void
client_io_send_empty (ClientIo       *io,
                      DirtyFrameType  type,
                      guint64         id,
                      guint32         aux)
{
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(DirtyConnection) connection = NULL;

  if (io->connection == NULL)
    return;
  /* a reference: sending may close the connection under us */
  connection = g_object_ref (io->connection);
  frame = dirty_frame_new_empty (type, id, aux);
  dirty_connection_send (connection, frame);
}

void
dirty_client_io_send_cancel (ClientIo *io,
                             guint64   id)
{
  client_io_send_empty (io, DIRTY_FRAME_CANCEL, id, 0);
}

void
dirty_client_call_cancel (Call       *call,
                          const char *message)
{
  if (call->state == CALL_SENT)
    dirty_client_io_send_cancel (call->io, call->id);
  dirty_client_call_finish (call, NULL,
                            g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, message));
}

void
dirty_client_call_time_out (Call *call)
{
  GError *error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_TIMEOUT,
                               _("No reply from the arbiter within the call's timeout (%u ms)"),
                               call->timeout_ms);

  if (call->state == CALL_SENT)
    dirty_client_io_send_cancel (call->io, call->id);
  dirty_client_call_finish (call, NULL, error);
}

static void
call_cancel_io_cb (gpointer data)
{
  Call *call = data;

  /* NEW: the submit, still to come, sees the cancellable and ends it */
  if (call->state == CALL_NEW || call->state == CALL_DONE)
    return;
  dirty_client_call_cancel (call, _("Operation was cancelled"));
}

/* Runs in whichever thread cancels: hand over to the I/O thread. */
static void
call_cancelled_cb (GCancellable *cancellable,
                   gpointer      data)
{
  dirty_io_schedule (call_cancel_io_cb, call_ref (data), (GDestroyNotify) call_unref);
}

static gboolean
call_timeout_io_cb (gpointer data)
{
  dirty_client_call_time_out (data);
  return G_SOURCE_REMOVE;
}

void
dirty_client_call_arm_timer (Call *call)
{
  guint64 ms = (guint64) call->timeout_ms + SAFETY_MARGIN_MS;

  if (call->timeout_ms > 0)
    call->timer = dirty_io_add_timeout ((guint) MIN (ms, G_MAXUINT),
                                        call_timeout_io_cb, call_ref (call),
                                        (GDestroyNotify) call_unref);
}

void
dirty_client_call_watch_cancellable (Call *call)
{
  /* If already cancelled, the handler runs now: the I/O thread then
   * finds the call not yet in its hands, and whoever hands it over
   * checks the cancellable. */
  if (call->cancellable != NULL)
    call->cancelled_id = g_cancellable_connect (call->cancellable, G_CALLBACK (call_cancelled_cb),
                                                call_ref (call), (GDestroyNotify) call_unref);
}

void
dirty_client_call_unwatch_cancellable (Call *call)
{
  /* only blocks while a cancel handler runs in another thread, and that
   * handler merely queues work for the I/O thread (dirty_io_schedule ()) */
  if (call->cancelled_id != 0)
    g_cancellable_disconnect (call->cancellable, call->cancelled_id);
  call->cancelled_id = 0;
}

static void
call_submit_io_cb (gpointer data)
{
  Call *call = data;
  ClientIo *io = call->io;

  /* abandoned before it was sent */
  if (call->state == CALL_DONE)
    return;
  if (g_cancellable_is_cancelled (call->cancellable))
    {
      dirty_client_call_cancel (call, _("Operation was cancelled"));
      return;
    }

  if (call->frame != NULL)
    dirty_client_call_arm_timer (call);
  call->state = CALL_WAITING;
  g_queue_push_tail (&io->waiting, call_ref (call));
  client_io_flush (io);
}

/* Called on the caller's thread: sends @call (taken) from here, its
 * reply (a stream's first frame) waited for in its task's context, when
 * it may go out at once (dirty-client-io-here.c); else hands it to the
 * I/O thread. */
static DirtyClientCall *
client_io_submit (ClientIo *io,
                  Call     *call)
{
  if (dirty_client_io_try_wait_here (io, call) || dirty_client_io_try_stream_wait_here (io, call))
    return call;
  g_mutex_lock (&io->sync_lock);
  io->n_unsent++;
  g_mutex_unlock (&io->sync_lock);
  dirty_client_call_watch_cancellable (call);
  dirty_io_schedule (call_submit_io_cb, call_ref (call), (GDestroyNotify) call_unref);
  return call;
}

DirtyClientCall *
dirty_client_io_start_call (DirtyClientIo    *io,
                            GTask            *task,
                            GCancellable     *cancellable,
                            DirtyFrame       *frame,
                            guint32           timeout_ms,
                            DirtyStreamQueue *queue)
{
  return client_io_submit (io, dirty_client_call_new (io, task, cancellable, frame,
                                                      timeout_ms, queue));
}

DirtyClientCall *
dirty_client_io_start_result_call (DirtyClientIo *io,
                                   GTask         *task,
                                   GCancellable  *cancellable,
                                   DirtyFrame    *frame,
                                   guint32        timeout_ms)
{
  Call *call = dirty_client_call_new (io, task, cancellable, frame, timeout_ms, NULL);

  /* set before the I/O thread sees the call */
  call->result_only = TRUE;
  return client_io_submit (io, call);
}

DirtyClientCall *
dirty_client_call_ref (DirtyClientCall *call)
{
  return call_ref (call);
}

void
dirty_client_call_unref (DirtyClientCall *call)
{
  call_unref (call);
}

typedef struct {
  Call  *call;
  guint  n;
} Credit;

static void
credit_free (gpointer data)
{
  Credit *credit = data;

  call_unref (credit->call);
  g_free (credit);
}

static void
call_credit_io_cb (gpointer data)
{
  Credit *credit = data;

  if (credit->call->state == CALL_SENT)
    client_io_send_empty (credit->call->io, DIRTY_FRAME_CREDIT, credit->call->id, credit->n);
}

void
dirty_client_call_credit (DirtyClientCall *call,
                          guint            n)
{
  Credit *credit = g_new0 (Credit, 1);

  credit->call = call_ref (call);
  credit->n = n;
  dirty_io_schedule (call_credit_io_cb, credit, credit_free);
}

static void
call_abandon_io_cb (gpointer data)
{
  Call *call = data;

  if (call->state != CALL_DONE)
    dirty_client_call_cancel (call, _("The stream was closed"));
}

void
dirty_client_call_abandon (DirtyClientCall *call)
{
  /* dirty_client_call_finish () ends a call before its stream's queue
   * (@queue is set once, at its creation): a stream whose queue has ended
   * has nothing to abandon, and the I/O thread is not woken for it (a
   * wake-up per stream read to its end) */
  if (call->queue != NULL && dirty_stream_queue_has_ended (call->queue))
    return;
  dirty_io_schedule (call_abandon_io_cb, call_ref (call), (GDestroyNotify) call_unref);
}

/* ---- The connection, on the I/O thread ---- */

ClientIo *
dirty_client_io_ref (ClientIo *io)
{
  g_atomic_ref_count_inc (&io->ref_count);
  return io;
}

void
dirty_client_io_unref (ClientIo *io)
{
  if (!g_atomic_ref_count_dec (&io->ref_count))
    return;
  g_warn_if_fail (io->connection == NULL && io->connecting == NULL);
  g_warn_if_fail (g_queue_is_empty (&io->waiting));
  g_hash_table_unref (io->pending);
  g_mutex_clear (&io->sync_lock);
  g_free (io->socket_path);
  g_free (io);
}

DirtyClientIo *
dirty_client_io_new (const char *socket_path)
{
  ClientIo *io = g_new0 (ClientIo, 1);

  g_atomic_ref_count_init (&io->ref_count);
  io->socket_path = g_strdup (socket_path);
  g_mutex_init (&io->sync_lock);
  g_queue_init (&io->waiting);
  g_queue_init (&io->adopting);
  io->pending = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                       (GDestroyNotify) call_unref);
  io->next_id = 1;
  io->max_body = DIRTY_DEFAULT_MAX_BODY;
  io->max_attachments = DIRTY_DEFAULT_MAX_ATTACHMENTS;
  io->max_fds = DIRTY_DEFAULT_MAX_FDS;
  io->max_fd_payload = DIRTY_DEFAULT_MAX_FD_PAYLOAD;
  io->max_in_flight = DIRTY_DEFAULT_MAX_IN_FLIGHT;
  return io;
}

static void
client_io_fail_waiting (ClientIo     *io,
                        const GError *error)
{
  Call *call;

  while ((call = g_queue_pop_head (&io->waiting)) != NULL)
    {
      g_autoptr(Call) owned = call;

      call->state = CALL_NEW;
      dirty_client_call_finish (call, NULL, g_error_copy (error));
    }
}

static void
client_io_fail_pending (ClientIo     *io,
                        const GError *error)
{
  g_autoptr(GPtrArray) calls = g_ptr_array_new_with_free_func ((GDestroyNotify) call_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, io->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (calls, call_ref (value));
  g_hash_table_remove_all (io->pending);

  for (guint i = 0; i < calls->len; i++)
    dirty_client_call_finish (g_ptr_array_index (calls, i), NULL, g_error_copy (error));
}

/* Forgets the connection. Safe inside one of its own callbacks: it holds
 * a reference to itself while it calls us, and once finalized it calls
 * nothing more, so it never sees a freed ClientIo. */
static void
client_io_drop_connection (ClientIo *io)
{
  g_autoptr(DirtyConnection) connection = NULL;

  g_mutex_lock (&io->sync_lock);
  connection = g_steal_pointer (&io->connection);
  g_mutex_unlock (&io->sync_lock);

  if (connection != NULL)
    dirty_connection_close (connection);
}

/* A RESPONSE or END comes from the worker once the call is over, and a
 * worker is done with a request's memfds by then (docs/protocol.md, "File
 * descriptor attachments"): they may go back to the pool for reuse. Not
 * on an ERROR, which the arbiter may send (a timeout, a cancel) while the
 * worker still reads them: those memfds are closed, not reused. A reply
 * that hands one back (an echo) maps it through the pool, which then
 * waits for that GBytes too (dirty_memfd_map): a RESPONSE is decoded
 * before its call releases its arguments. A CHUNK is decoded later, by
 * its reader, maybe after the END: a memfd a chunk hands back is never
 * reused. */
void
dirty_client_call_note_reply_fds (Call       *call,
                                  DirtyFrame *reply)
{
  if (call->frame != NULL && call->frame->fds != NULL && reply->fds != NULL &&
      dirty_fd_set_shares_file (call->frame->fds, reply->fds))
    call->args_kept = TRUE;
}

static void
call_release_arguments (Call *call)
{
  if (call->frame != NULL && call->frame->fds != NULL && !call->args_kept)
    dirty_fd_set_release_reusable (call->frame->fds);
}

/* Stays NEW: a cancel's callback, queued before the disconnect, leaves
 * a NEW call alone (call_cancel_io_cb ()), and nothing else on the I/O
 * thread knows of it. */
void
dirty_client_call_end_here (Call *call)
{
  dirty_client_call_unwatch_cancellable (call);
  call_release_arguments (call);
  /* its slot is free before its reader sees the end */
  dirty_client_io_sync_end (call->io);
  dirty_stream_queue_finish (call->queue, NULL);
}

JsonNode *
dirty_client_response_result (const DirtyLimits  *limits,
                              DirtyFrame         *request,
                              DirtyFrame         *response,
                              GPtrArray         **attachments,
                              GError            **error)
{
  JsonNode *result = NULL;

  if (dirty_frame_decode_member (response, limits, "result", &result, attachments, error) &&
      result == NULL)
    result = json_node_new (JSON_NODE_NULL);
  /* decoded first: a memfd the reply hands back is mapped through the
   * pool, which then keeps it until that GBytes is gone too */
  if (request != NULL && request->fds != NULL)
    dirty_fd_set_release_reusable (request->fds);
  return result;
}

GError *
dirty_client_io_body_error (DirtyConnection *connection,
                            DirtyFrame      *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  GError *error = NULL;

  if (!dirty_frame_decode (frame, dirty_connection_get_limits (connection),
                           &root, &attachments, &error))
    return error;
  if (root == NULL)
    return g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                _("The arbiter sent an ERROR frame without a body"));
  return dirty_error_from_body (root);
}

static void
client_io_handle_response (ClientIo        *io,
                           DirtyConnection *connection,
                           Call            *call,
                           DirtyFrame      *frame)
{
  g_autoptr(GPtrArray) attachments = NULL;
  GError *error = NULL;
  JsonNode *result;
  gpointer value = NULL;

  /* a call that gets a RESPONSE is no stream: no chunk kept an argument */
  result = dirty_client_response_result (dirty_connection_get_limits (connection), call->frame,
                                         frame, &attachments, &error);
  if (result != NULL)
    value = dirty_client_call_value (call, result, attachments);
  dirty_client_call_finish (call, value, error);
}

/* The stream's task returns at its first chunk; the reader decodes it. */
static void
client_io_handle_chunk (Call       *call,
                        DirtyFrame *frame)
{
  g_autoptr(GTask) task = g_steal_pointer (&call->task);

  dirty_client_call_note_reply_fds (call, frame);   /* a chunk may hand back an argument */
  dirty_stream_queue_push (call->queue, frame);
  if (task != NULL)
    g_task_return_boolean (task, TRUE);
}

static void
client_io_handle_hello (ClientIo        *io,
                        DirtyConnection *connection,
                        DirtyFrame      *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  gint64 value;

  if (!dirty_frame_decode (frame, dirty_connection_get_limits (connection),
                           &root, &attachments, &error) || root == NULL)
    return;
  g_mutex_lock (&io->sync_lock);
  /* the arbiter's limits, so that one oversized request fails alone
   * instead of getting the whole connection closed as a protocol error */
  value = dirty_json_get_int (root, "max_body", io->max_body);
  if (value > 0 && value <= G_MAXUINT32)
    io->max_body = (guint32) value;
  value = dirty_json_get_int (root, "max_attachments", io->max_attachments);
  if (value > 0 && value <= G_MAXUINT16)
    io->max_attachments = (guint) value;
  value = dirty_json_get_int (root, "max_fds", io->max_fds);
  if (value >= 0 && value <= G_MAXUINT16)
    io->max_fds = (guint) value;
  value = dirty_json_get_int (root, "max_fd_payload", (gint64) io->max_fd_payload);
  if (value >= 0)
    io->max_fd_payload = (guint64) value;
  value = dirty_json_get_int (root, "max_in_flight", io->max_in_flight);
  if (value > 0 && value <= G_MAXUINT32)
    io->max_in_flight = (guint) value;
  g_mutex_unlock (&io->sync_lock);
}

/* A RESPONSE, ERROR, CHUNK or END for @call. */
void
dirty_client_io_call_frame (ClientIo        *io,
                            DirtyConnection *connection,
                            Call            *call,
                            DirtyFrame      *frame)
{
  switch (frame->header.type)
    {
    case DIRTY_FRAME_ERROR:
      dirty_client_call_finish (call, NULL, dirty_client_io_body_error (connection, frame));
      return;
    case DIRTY_FRAME_RESPONSE:
      if (call->queue != NULL)
        dirty_client_call_finish (call, NULL,
                                  g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                                       _("The arbiter sent a RESPONSE to a "
                                                         "stream")));
      else
        client_io_handle_response (io, connection, call, frame);
      return;
    case DIRTY_FRAME_CHUNK:
    case DIRTY_FRAME_END:
    default:
      if (call->queue == NULL)
        dirty_client_call_finish (call, NULL,
                                  g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                               _("The arbiter sent %s to a call that is not "
                                                 "a stream"),
                                               dirty_frame_type_to_string (frame->header.type)));
      else if (frame->header.type == DIRTY_FRAME_END)
        {
          call_release_arguments (call);
          dirty_client_call_finish (call, NULL, NULL);
        }
      else
        client_io_handle_chunk (call, frame);
      return;
    }
}

/* The errors the arbiter closes a connection with because of who the
 * client is, not because of what it sent (dirty_access_refuse ()). */
static gboolean
client_io_is_refusal (const GError *error)
{
  return g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_PERMISSION_DENIED) ||
         g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_BUSY);
}

/* Adopts the calls sent from their callers' threads now, if any: TRUE
 * if there were */
static gboolean
client_io_adopt_all (ClientIo *io)
{
  if (g_atomic_int_get (&io->n_adopting) == 0)
    return FALSE;
  dirty_client_io_adopt (io);
  return TRUE;
}

static void
client_io_frame_cb (DirtyConnection *connection,
                    DirtyFrame      *frame,
                    gpointer         user_data)
{
  ClientIo *io = user_data;
  guint64 id = frame->header.id;
  Call *call;

  if (connection != io->connection)
    return;

  switch (frame->header.type)
    {
    case DIRTY_FRAME_HELLO:
      client_io_handle_hello (io, connection, frame);
      return;

    case DIRTY_FRAME_ERROR:
      if (id == 0)
        {
          g_autoptr(GError) error = dirty_client_io_body_error (connection, frame);

          g_debug ("The arbiter at %s closes the connection: %s",
                   io->socket_path, error->message);
          /* calls sent from their callers' threads get this error too */
          client_io_adopt_all (io);
          dirty_connection_fail_waiters (connection, error);
          client_io_drop_connection (io);
          client_io_fail_pending (io, error);
          /* A refusal (access, the per-uid cap) would meet the calls not
           * sent yet on a new connection too: connecting again for them
           * would only loop. After any other error a new one may do. */
          if (client_io_is_refusal (error))
            client_io_fail_waiting (io, error);
          else if (!g_queue_is_empty (&io->waiting))
            client_io_schedule_flush (io);
          return;
        }
      G_GNUC_FALLTHROUGH;
    case DIRTY_FRAME_RESPONSE:
    case DIRTY_FRAME_CHUNK:
    case DIRTY_FRAME_END:
      call = g_hash_table_lookup (io->pending, &id);
      /* maybe a call its caller sent, whose adoption is still to run */
      if (call == NULL && client_io_adopt_all (io))
        call = g_hash_table_lookup (io->pending, &id);
      /* a late reply for a call that has already ended (or the rest of a
       * stream its reader left) is dropped: ids are never reused, so it
       * cannot reach another call */
      if (call == NULL)
        {
          if (frame->header.type == DIRTY_FRAME_RESPONSE || frame->header.type == DIRTY_FRAME_ERROR)
            g_debug ("Dropping %s for unknown request %" G_GUINT64_FORMAT,
                     dirty_frame_type_to_string (frame->header.type), id);
          return;
        }
      /* the stream's first frame went to its caller's thread: the next
       * ones go to the queue only after it */
      if (call->first_to_waiter)
        g_queue_push_tail (&call->held, dirty_frame_ref (frame));
      else
        dirty_client_io_call_frame (io, connection, call, frame);
      return;

    default:
      g_debug ("Ignoring %s frame (id %" G_GUINT64_FORMAT ") from the arbiter",
               dirty_frame_type_to_string (frame->header.type), id);
      return;
    }
}

static void
client_io_closed_cb (DirtyConnection *connection,
                     const GError    *error,
                     gpointer         user_data)
{
  ClientIo *io = user_data;

  if (connection == io->connection)
    {
      g_autoptr(GError) lost = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                            _("Lost the connection to dirty-arbiter at %s: %s"),
                                            io->socket_path,
                                            error ? error->message : "closed by the arbiter");

      client_io_adopt_all (io);
      client_io_drop_connection (io);
      client_io_fail_pending (io, lost);
      /* calls held back while it was read to its end: a new one */
      if (!g_queue_is_empty (&io->waiting))
        client_io_schedule_flush (io);
    }
}

static void
client_io_stop_connecting (ClientIo *io)
{
  if (io->connect_source != NULL)
    {
      g_source_destroy (io->connect_source);
      g_clear_pointer (&io->connect_source, g_source_unref);
    }
  if (io->connecting != NULL)
    g_socket_close (io->connecting, NULL);
  g_clear_object (&io->connecting);
}

/* What a failed connect () means there, for a person; NULL when its
 * message says it all */
static const char *
connect_failure_hint (const char   *path,
                      const GError *reason)
{
  struct stat st;

  if (g_error_matches (reason, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    return _("this user may not open it: see socket_mode and socket_group");
  if (!g_error_matches (reason, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
      stat (path, &st) != 0)
    return NULL;
  if (!S_ISSOCK (st.st_mode))
    return _("it is not a socket");
  return _("no arbiter listens on it: one that stopped without removing it?");
}

static void
client_io_connect_failed (ClientIo     *io,
                          const GError *reason)
{
  const char *hint = connect_failure_hint (io->socket_path, reason);
  /* kept out by the socket's mode, as by the arbiter's allowed_users */
  DirtyError code = g_error_matches (reason, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
                      ? DIRTY_ERROR_PERMISSION_DENIED : DIRTY_ERROR_CONNECTION;
  g_autoptr(GError) error = NULL;

  if (hint != NULL)
    /* TRANSLATORS: the socket's path, the system's reason, what it means */
    error = g_error_new (DIRTY_ERROR, code, _("Could not connect to dirty-arbiter at %s: %s (%s)"),
                         io->socket_path, reason->message, hint);
  else
    error = g_error_new (DIRTY_ERROR, code, _("Could not connect to dirty-arbiter at %s: %s"),
                         io->socket_path, reason->message);

  client_io_stop_connecting (io);
  client_io_fail_waiting (io, error);
}

static void
client_io_connected (ClientIo *io)
{
  g_autoptr(GSocket) socket = g_steal_pointer (&io->connecting);

  client_io_stop_connecting (io);
  g_mutex_lock (&io->sync_lock);
  io->connection = dirty_connection_new (socket, NULL);
  io->hello_sent = FALSE;
  g_mutex_unlock (&io->sync_lock);
  dirty_connection_start (io->connection, dirty_io_get_context (),
                          client_io_frame_cb, client_io_closed_cb, io);
  client_io_flush (io);
  dirty_client_io_update_read_mode (io);
}

static void client_io_try_connect (ClientIo *io);

static gboolean
client_io_connect_ready_cb (GSocket      *socket,
                            GIOCondition  condition,
                            gpointer      user_data)
{
  ClientIo *io = user_data;
  g_autoptr(GError) error = NULL;

  if (g_socket_check_connect_result (socket, &error))
    client_io_connected (io);
  else
    client_io_connect_failed (io, error);
  return G_SOURCE_REMOVE;
}

static gboolean
client_io_connect_retry_cb (gpointer user_data)
{
  ClientIo *io = user_data;

  g_clear_pointer (&io->connect_source, g_source_unref);
  client_io_try_connect (io);
  return G_SOURCE_REMOVE;
}

static void
client_io_try_connect (ClientIo *io)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (io->socket_path);
  g_autoptr(GError) error = NULL;

  if (g_socket_connect (io->connecting, address, NULL, &error))
    {
      client_io_connected (io);
      return;
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    {
      io->connect_source = g_socket_create_source (io->connecting, G_IO_OUT, NULL);
      g_source_set_callback (io->connect_source, G_SOURCE_FUNC (client_io_connect_ready_cb),
                             dirty_client_io_ref (io), (GDestroyNotify) dirty_client_io_unref);
      g_source_attach (io->connect_source, dirty_io_get_context ());
      return;
    }

  /* a unix socket whose listen backlog is full fails with EAGAIN instead
   * of blocking: a busy arbiter, not a missing one */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
      g_get_monotonic_time () < io->connect_deadline)
    {
      io->connect_source = dirty_io_add_timeout (CONNECT_RETRY_MS, client_io_connect_retry_cb,
                                                 dirty_client_io_ref (io),
                                                 (GDestroyNotify) dirty_client_io_unref);
      return;
    }

  client_io_connect_failed (io, error);
}

static void
client_io_connect (ClientIo *io)
{
  g_autoptr(GError) error = NULL;

  if (!dirty_socket_check_path (io->socket_path, &error))
    {
      client_io_connect_failed (io, error);
      return;
    }
  io->connecting = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, &error);
  if (io->connecting == NULL)
    {
      client_io_connect_failed (io, error);
      return;
    }
  g_socket_set_blocking (io->connecting, FALSE);
  io->connect_deadline = g_get_monotonic_time () + CONNECT_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  client_io_try_connect (io);
}

/* A request over the arbiter's limits fails here, alone, before its
 * bytes are written for the arbiter to read past and refuse (it would
 * fail it alone too: docs/protocol.md, "Limits"). Under sync_lock. */
static GError *
client_io_check_size (ClientIo   *io,
                      DirtyFrame *request)
{
  gsize body_size = g_bytes_get_size (request->body);

  if (body_size > io->max_body || request->header.n_attachments > io->max_attachments)
    return g_error_new (DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                _("The request is too large (%lu bytes in %u "
                                  "attachments; the arbiter takes at most %u bytes and %u "
                                  "attachments)"), (unsigned long) body_size,
                                (guint) request->header.n_attachments,
                                (guint) io->max_body, io->max_attachments);
  if (request->header.n_fds > io->max_fds ||
      dirty_frame_get_fd_payload (request) > io->max_fd_payload)
    return g_error_new (DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                        _("The request's large attachments are too large (%llu bytes "
                          "in %u memfds; the arbiter takes at most %llu bytes in %u)"),
                        (unsigned long long) dirty_frame_get_fd_payload (request),
                        (guint) request->header.n_fds,
                        (unsigned long long) io->max_fd_payload, io->max_fds);
  return NULL;
}

/* Takes a slot for a call, under the arbiter's max_in_flight; FALSE when
 * none is free. Under sync_lock. */
static gboolean
client_io_take_slot (ClientIo *io)
{
  io->held_back = io->in_flight >= io->max_in_flight;
  if (io->held_back)
    return FALSE;
  io->in_flight++;
  return TRUE;
}

/* The arbiter answers a HELLO with its limits (client_io_handle_hello ()),
 * which the client checks requests against (client_io_check_size ());
 * it sends none unasked. Sent with a connection's first request, not at
 * connect: a connection the arbiter refuses at once (access, the per-uid
 * cap) is then read, its refusal with it, instead of written to after
 * the arbiter closed it. Until the answer is in, the defaults apply. */
static void
client_io_send_hello (DirtyConnection *connection)
{
  static const char hello[] = "{\"role\":\"client\"}";
  g_autoptr(DirtyFrame) frame = dirty_frame_encode_text (DIRTY_FRAME_HELLO, 0, 0, 0, hello,
                                                         sizeof hello - 1, NULL);

  dirty_connection_send (connection, frame);
}

/* Sends @call (its slot taken), after the connection's HELLO if it is the
 * first, or ends it with the size error. */
static void
client_io_send_call (ClientIo *io,
                     Call     *call)
{
  g_autoptr(DirtyConnection) connection = g_object_ref (io->connection);
  GError *error;
  gboolean first;

  g_mutex_lock (&io->sync_lock);
  error = client_io_check_size (io, call->frame);
  if (error != NULL)
    io->in_flight--;
  else
    call->id = io->next_id++;
  first = error == NULL && !io->hello_sent;
  if (first)
    io->hello_sent = TRUE;
  g_mutex_unlock (&io->sync_lock);
  if (first)
    client_io_send_hello (connection);
  if (error != NULL)
    {
      dirty_client_call_finish (call, NULL, error);
      return;
    }
  call->state = CALL_SENT;
  g_hash_table_insert (io->pending, &call->id, call_ref (call));
  dirty_client_io_update_read_mode (io);
  dirty_connection_send_with_id (connection, call->frame, call->id, call->timeout_ms);
  /* only now, with the frame in the connection's queue: a blocking call
   * on another thread that sees no call unsent writes behind it, never
   * before it (dirty_client_io_sync_begin ()) */
  client_io_sent_or_ended (io);
}

/* Sends what waits for the connection, connecting first if needed. At
 * most the arbiter's max_in_flight calls are sent at once; the others wait
 * here, in order, rather than be refused as "busy". */
static void
client_io_flush (ClientIo *io)
{
  Call *call;

  /* sync calls read for themselves, and nobody may have read since: the
   * calls are not sent on a connection the arbiter hung up meanwhile.
   * One still open is read to its end first (its last replies reach
   * their callers), and its close brings them here again
   * (client_io_closed_cb ()); one closed is dropped now. */
  if (io->connection != NULL && !g_queue_is_empty (&io->waiting) &&
      dirty_connection_peer_gone (io->connection))
    {
      g_autoptr(GError) lost = NULL;

      if (!dirty_connection_is_closed (io->connection))
        return;
      lost = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                          _("Lost the connection to dirty-arbiter at %s: %s"),
                          io->socket_path, "closed by the arbiter");
      client_io_drop_connection (io);
      client_io_fail_pending (io, lost);
    }
  while (io->connection != NULL && (call = g_queue_peek_head (&io->waiting)) != NULL)
    {
      g_autoptr(Call) owned = NULL;
      gboolean slot;

      if (call->frame != NULL)
        {
          g_mutex_lock (&io->sync_lock);
          slot = client_io_take_slot (io);
          g_mutex_unlock (&io->sync_lock);
          if (!slot)
            break;
        }
      owned = g_queue_pop_head (&io->waiting);
      call->state = CALL_NEW;
      if (call->frame == NULL)
        dirty_client_call_finish (call, NULL, NULL);
      else
        client_io_send_call (io, call);
    }

  if (!g_queue_is_empty (&io->waiting) && io->connection == NULL && io->connecting == NULL)
    client_io_connect (io);
}

static void
client_io_flush_cb (gpointer user_data)
{
  ClientIo *io = user_data;

  io->flush_scheduled = FALSE;
  client_io_flush (io);
}

/* Later, from the I/O thread's queue: dirty_client_call_finish () must
 * not send (and maybe finish) other calls under its caller's feet. */
static void
client_io_schedule_flush (ClientIo *io)
{
  if (io->flush_scheduled)
    return;
  io->flush_scheduled = TRUE;
  dirty_io_schedule (client_io_flush_cb, dirty_client_io_ref (io),
                     (GDestroyNotify) dirty_client_io_unref);
}

static void
client_io_shutdown_cb (gpointer user_data)
{
  ClientIo *io = user_data;

  client_io_stop_connecting (io);
  client_io_drop_connection (io);
}

void
dirty_client_io_shutdown (DirtyClientIo *io)
{
  dirty_io_schedule (client_io_shutdown_cb, io, (GDestroyNotify) dirty_client_io_unref);
}

/* The owner (this thread) reads while a call of its own is in flight
 * (its replies and a stream's chunks come here); otherwise sync calls
 * read for themselves, and with none waiting nobody reads: the kernel
 * keeps what comes (a late reply, the arbiter's ERROR or hang-up) for
 * the next reader. (A HELLO, with the arbiter's limits, only answers
 * one.) */
void
dirty_client_io_update_read_mode (ClientIo *io)
{
  /* a stream whose caller waits for its first frame reads that itself */
  if (io->connection != NULL)
    dirty_connection_set_owner_reads (io->connection,
                                      g_hash_table_size (io->pending) > io->n_first_waiting);
}

const char *
dirty_client_io_get_socket_path (DirtyClientIo *io)
{
  return io->socket_path;
}

DirtyConnection *
dirty_client_io_sync_begin (DirtyClientIo  *io,
                            DirtyFrame     *frame,
                            guint64        *id,
                            GError        **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&io->sync_lock);
  GError *size_error;

  /* connecting is the I/O thread's; a call started before this one (on
   * any thread) but not yet sent by the I/O thread goes first; and a
   * connection's first request goes with its HELLO, from the I/O thread
   * (client_io_send_call ()) */
  if (io->connection == NULL || io->n_unsent > 0 || !io->hello_sent)
    return NULL;
  size_error = client_io_check_size (io, frame);
  if (size_error != NULL)
    {
      g_propagate_error (error, size_error);
      return NULL;
    }
  /* at the limit the call waits in io->waiting, in order */
  if (!client_io_take_slot (io))
    return NULL;
  *id = io->next_id++;
  return g_object_ref (io->connection);
}

void
dirty_client_io_sync_end (DirtyClientIo *io)
{
  gboolean held_back;

  g_mutex_lock (&io->sync_lock);
  io->in_flight--;
  held_back = io->held_back;
  g_mutex_unlock (&io->sync_lock);
  if (held_back)
    dirty_io_schedule (client_io_flush_cb, dirty_client_io_ref (io),
                     (GDestroyNotify) dirty_client_io_unref);
}
