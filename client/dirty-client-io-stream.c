/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-client-io-internal.h"
#include "dirty-connection-sync.h"
#include "dirty-error.h"
#include "dirty-io-private.h"
#include "dirty-i18n-private.h"

/* dirty_client_send_stream_sync () writes its REQUEST and waits for the
 * first frame on its own thread, as a blocking call does
 * (dirty-client-sync.c): through the I/O thread its first chunk cost two
 * wake-ups more (the request handed to it, the chunk handed back). The
 * rest of the stream is the I/O thread's, as any stream's: the call is
 * sent as an async call's is (dirty-client-io-here.c), and the I/O
 * thread adopts it when the caller hands it the first frame (or the end
 * of its wait), or earlier if it reads a frame of it first: unlike an
 * async call's, it is not woken only to adopt it (that would cost the
 * first chunk a wake-up on a busy CPU). Until the caller has taken the
 * first frame, the frames after it wait in call->held, so the queue
 * gets them in order. The frames that came in the caller's own read of the first one
 * come back with it (dirty_connection_wait ()'s @more) and go before
 * those; when they end the stream, as a short stream's mostly do, the
 * stream ends on the caller's thread, and the I/O thread never hears of
 * it (call_end_here ()).
 *
 * An async stream start (dirty_client_io_try_stream_wait_here ()) does
 * the same in its task's context: it waits there for the first frame
 * (dirty_connection_wait_async ()), reading the socket itself when nobody
 * else does, and its task returns in that dispatch at a first chunk.
 * Through the I/O thread, that chunk cost two wake-ups more (the I/O
 * thread's, to read it; the context's, to be handed it). */

/* What the caller's wait for the first frame ended with */
typedef struct {
  ClientIo *io;                   /* a reference: call->io is gone once it ends */
  Call *call;
  DirtyFrame *frame;              /* its first frame, if it came */
  GQueue more;                    /* frames of it read along with that one */
  gboolean taken;                 /* a CHUNK the caller queued itself */
  DirtyConnectionWaitEnd end;
  GError *error;
  GTask *started;                 /* an async start's task, if no chunk came */
} FirstFrame;

static FirstFrame *
first_frame_new (ClientIo *io,
                 Call     *call)
{
  FirstFrame *first = g_new0 (FirstFrame, 1);

  first->io = dirty_client_io_ref (io);
  first->call = dirty_client_call_ref (call);
  return first;
}

static void
first_frame_free (gpointer data)
{
  FirstFrame *first = data;

  dirty_client_io_unref (first->io);
  dirty_client_call_unref (first->call);
  g_clear_pointer (&first->frame, dirty_frame_unref);
  g_queue_clear_full (&first->more, (GDestroyNotify) dirty_frame_unref);
  g_clear_error (&first->error);
  g_clear_object (&first->started);
  g_free (first);
}

/* Ends @call as the I/O thread's path would have for how its caller's
 * wait ended without a frame. */
static void
call_first_failed (Call       *call,
                   FirstFrame *first)
{
  switch (first->end)
    {
    case DIRTY_CONNECTION_WAIT_TIMEOUT:
      dirty_client_call_time_out (call);
      return;
    case DIRTY_CONNECTION_WAIT_CANCELLED:
      dirty_client_call_cancel (call, _("Operation was cancelled"));
      return;
    case DIRTY_CONNECTION_WAIT_FAILED:
      dirty_client_call_finish (call, NULL, g_steal_pointer (&first->error));
      return;
    case DIRTY_CONNECTION_WAIT_CLOSED:
    case DIRTY_CONNECTION_WAIT_FRAME:
    default:
      dirty_client_call_lost (call, first->error ? first->error->message : "closed by the arbiter");
      return;
    }
}

/* An async start whose first frame was no chunk: its task (taken)
 * returns as the I/O thread's path returns it, at the first chunk or the
 * end; at once if the call has ended already, with how it ended. */
static void
call_take_started (Call  *call,
                   GTask *started)
{
  g_autoptr(GTask) task = started;
  GError *error = NULL;

  if (call->state == CALL_SENT)
    call->task = g_steal_pointer (&task);
  else if (dirty_stream_queue_started (call->queue, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/* The caller is done with the first frame: the I/O thread takes over. */
static void
call_first_frame_io_cb (gpointer data)
{
  FirstFrame *first = data;
  Call *call = first->call;
  ClientIo *io = first->io;
  g_autoptr(DirtyConnection) connection = NULL;
  DirtyFrame *held;

  /* adopted here at the latest, without a wake-up of its own */
  dirty_client_io_adopt (io);
  if (first->started != NULL)
    call_take_started (call, g_steal_pointer (&first->started));
  /* ended meanwhile: a cancel, its timer, the connection's loss */
  if (call->state != CALL_SENT || !call->first_to_waiter)
    return;
  call->first_to_waiter = FALSE;
  io->n_first_waiting--;
  if (io->connection == NULL)
    {
      dirty_client_call_lost (call, "closed by the arbiter");
      return;
    }
  connection = g_object_ref (io->connection);
  /* those read along with the first frame come before those read here */
  while ((held = g_queue_pop_tail (&first->more)) != NULL)
    g_queue_push_head (&call->held, held);
  if (first->frame == NULL)
    call_first_failed (call, first);
  else if (first->taken)
    dirty_client_call_note_reply_fds (call, first->frame);
  else
    dirty_client_io_call_frame (io, connection, call, first->frame);
  while (call->state == CALL_SENT && (held = g_queue_pop_head (&call->held)) != NULL)
    {
      g_autoptr(DirtyFrame) frame = held;

      dirty_client_io_call_frame (io, connection, call, frame);
    }
  dirty_client_io_update_read_mode (io);
}

/* The caller read its stream's first chunk, and with it (@more) the
 * rest of the stream, to its END: if the I/O thread has not adopted it,
 * it ends here, with no wake-up of the I/O thread (the call handed over,
 * its END handed back). A short stream's END comes so, mostly. */
static gboolean
call_end_here (ClientIo   *io,
               Call       *call,
               DirtyFrame *first,
               GQueue     *more)
{
  DirtyFrame *end = g_queue_peek_tail (more);
  DirtyFrame *frame;

  if (end == NULL || end->header.type != DIRTY_FRAME_END)
    return FALSE;
  for (GList *l = more->head; l->data != end; l = l->next)
    if (((DirtyFrame *) l->data)->header.type != DIRTY_FRAME_CHUNK)
      return FALSE;
  if (!dirty_client_io_unadopt (io, call))
    return FALSE;
  dirty_client_call_note_reply_fds (call, first);
  while ((frame = g_queue_pop_head (more)) != end)
    {
      dirty_client_call_note_reply_fds (call, frame);
      dirty_stream_queue_push (call->queue, frame);
      dirty_frame_unref (frame);
    }
  dirty_frame_unref (end);
  dirty_client_call_end_here (call);
  return TRUE;
}

/* The caller's wait for @call's first frame ended (@first, taken): a
 * CHUNK goes to the queue at once, for the reader to find with no
 * wake-up of the caller's thread, and a stream read to its end with it
 * ends here; the rest is the I/O thread's. TRUE if a chunk came. */
static gboolean
first_frame_done (ClientIo   *io,
                  Call       *call,
                  FirstFrame *first)
{
  gboolean chunk = first->frame != NULL && first->frame->header.type == DIRTY_FRAME_CHUNK;

  if (chunk)
    {
      dirty_stream_queue_push (call->queue, first->frame);
      first->taken = TRUE;
      if (call_end_here (io, call, first->frame, &first->more))
        {
          first_frame_free (first);
          return TRUE;
        }
    }
  dirty_io_schedule (call_first_frame_io_cb, first, first_frame_free);
  return chunk;
}

/* Sends @call's stream REQUEST from this thread, its first frame to be
 * waited for here: the waiter, with the connection in @connection; NULL
 * if it may not go out at once (the I/O thread's path sends it). */
static DirtyConnectionWaiter *
send_stream_here (ClientIo         *io,
                  Call             *call,
                  DirtyConnection **connection)
{
  DirtyConnectionWaiter *waiter;

  /* a size error, a cancel: the I/O thread's path says it, as always */
  if (call->frame == NULL || g_cancellable_is_cancelled (call->cancellable))
    return NULL;
  *connection = dirty_client_io_sync_expect (io, call->frame, &call->id, &waiter, NULL);
  if (*connection == NULL)
    return NULL;
  call->first_to_waiter = TRUE;
  call->started_on = g_object_ref (*connection);
  dirty_client_call_watch_cancellable (call);
  if (!dirty_client_io_send_here (io, *connection, call))
    {
      dirty_connection_unexpect (*connection, waiter);
      dirty_client_call_unwatch_cancellable (call);
      call->first_to_waiter = FALSE;
      g_clear_object (&call->started_on);
      g_clear_object (connection);
      dirty_client_io_sync_end (io);
      return NULL;
    }
  return waiter;
}

DirtyClientCall *
dirty_client_io_start_stream_here (DirtyClientIo    *io,
                                   GCancellable     *cancellable,
                                   DirtyFrame       *frame,
                                   guint32           timeout_ms,
                                   DirtyStreamQueue *queue)
{
  g_autoptr(DirtyConnection) connection = NULL;
  DirtyConnectionWaiter *waiter;
  FirstFrame *outcome;
  Call *call;

  call = dirty_client_call_new (io, NULL, cancellable, dirty_frame_ref (frame), timeout_ms, queue);
  waiter = send_stream_here (io, call, &connection);
  if (waiter == NULL)
    {
      call->state = CALL_DONE;
      dirty_client_call_unref (call);
      return NULL;
    }
  outcome = first_frame_new (io, call);
  outcome->frame = dirty_connection_wait (connection, waiter,
                                          dirty_client_io_reply_deadline (timeout_ms),
                                          cancellable, &outcome->end, &outcome->more,
                                          &outcome->error);
  first_frame_done (io, call, outcome);
  return call;
}

/* In the task's context: a first chunk returns the task now, in this
 * dispatch; anything else, the I/O thread's path (call_take_started ()) */
static void
stream_here_done (DirtyConnection        *connection,
                  DirtyFrame             *frame,
                  DirtyConnectionWaitEnd  end,
                  const GError           *error,
                  GQueue                 *more,
                  gpointer                user_data)
{
  WaitHere *here = user_data;
  g_autoptr(GTask) started = g_steal_pointer (&here->task);
  FirstFrame *first = first_frame_new (here->io, here->call);

  first->frame = frame != NULL ? dirty_frame_ref (frame) : NULL;
  first->end = end;
  first->error = error != NULL ? g_error_copy (error) : NULL;
  first->more = *more;
  g_queue_init (more);
  if (frame == NULL || frame->header.type != DIRTY_FRAME_CHUNK)
    first->started = g_steal_pointer (&started);
  /* after the chunk is in the queue: the stream it returns reads it */
  if (first_frame_done (here->io, here->call, first))
    g_task_return_boolean (started, TRUE);
}

gboolean
dirty_client_io_try_stream_wait_here (ClientIo *io,
                                      Call     *call)
{
  g_autoptr(DirtyConnection) connection = NULL;
  DirtyConnectionWaiter *waiter;
  WaitHere *here;
  GTask *started;

  /* not a stream, or a blocking one gone the I/O thread's way */
  if (call->queue == NULL || call->task == NULL)
    return FALSE;
  /* out of the call before the I/O thread may see it: this context
   * returns it, or hands it back (call_take_started ()) */
  started = g_steal_pointer (&call->task);
  waiter = send_stream_here (io, call, &connection);
  if (waiter == NULL)
    {
      call->task = started;
      return FALSE;
    }
  here = dirty_client_wait_here_new (io, call, started);
  dirty_connection_wait_async (connection, waiter, dirty_client_io_reply_deadline (call->timeout_ms),
                               call->cancellable, g_task_get_context (started),
                               stream_here_done, here, dirty_client_wait_here_free);
  return TRUE;
}
