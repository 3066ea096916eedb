/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-client-io-internal.h"
#include "dirty-connection-sync.h"
#include "dirty-error.h"
#include "dirty-i18n-private.h"

/* Calls whose REQUEST leaves from their caller's thread, as a blocking
 * call's does, when it may go out at once (connected, a slot free, no
 * call started before it still to be sent). Handed to the I/O thread to
 * write, it waited for that thread to wake up (10-20 µs when it sleeps
 * on another CPU) before it even left.
 *
 * An async call that is not a stream (dirty_client_io_try_wait_here ())
 * then waits for its reply in its caller's context, as a blocked caller
 * does (dirty_connection_wait_async ()), reading it when nobody else
 * does: the I/O thread hears of the call at no point, and the reply
 * reaches the task without waking that thread and being handed back
 * across threads (two wake-ups a call, each 10-20 µs when the thread
 * woken sleeps on another CPU).
 *
 * A stream's first frame is read so too, by its blocked caller or in its
 * task's context (dirty-client-io-stream.c). The rest of the stream is
 * the I/O thread's, as if it had sent the call: it adopts it (io->adopting
 * into io->pending, where its frames find it) when the caller hands it
 * the first frame, or earlier if it reads a frame of the call first
 * (dirty_client_io_adopt () from the frame callback). Nothing is lost
 * meanwhile: nobody reads for a call nobody has adopted, so the kernel
 * keeps its frames until then. */

void
dirty_client_call_lost (Call       *call,
                        const char *why)
{
  dirty_client_call_finish (call, NULL,
                            g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                         _("Lost the connection to dirty-arbiter at %s: %s"),
                                         call->io->socket_path, why));
}

static void
client_io_adopt_call (ClientIo *io,
                      Call     *call)
{
  g_autoptr(DirtyConnection) sent_on = g_steal_pointer (&call->started_on);

  /* CALL_SENT from here on: dirty_client_call_finish () frees its slot */
  call->state = CALL_SENT;
  if (sent_on != io->connection)
    {
      call->first_to_waiter = FALSE;
      dirty_client_call_lost (call, "closed by the arbiter");
      return;
    }
  g_hash_table_insert (io->pending, &call->id, dirty_client_call_ref (call));
  if (call->first_to_waiter)
    io->n_first_waiting++;
  dirty_client_call_arm_timer (call);
  /* cancelled before this: its handler found the call not yet here */
  if (g_cancellable_is_cancelled (call->cancellable))
    dirty_client_call_cancel (call, _("Operation was cancelled"));
}

void
dirty_client_io_adopt (ClientIo *io)
{
  GQueue calls;
  Call *call;

  g_mutex_lock (&io->sync_lock);
  calls = io->adopting;
  g_queue_init (&io->adopting);
  g_atomic_int_set (&io->n_adopting, 0);
  g_mutex_unlock (&io->sync_lock);

  while ((call = g_queue_pop_head (&calls)) != NULL)
    {
      g_autoptr(DirtyClientCall) owned = call;

      client_io_adopt_call (io, call);
    }
  dirty_client_io_update_read_mode (io);
}

gboolean
dirty_client_io_unadopt (ClientIo *io,
                         Call     *call)
{
  gboolean found;

  g_mutex_lock (&io->sync_lock);
  found = g_queue_remove (&io->adopting, call);
  if (found)
    g_atomic_int_add (&io->n_adopting, -1);
  g_mutex_unlock (&io->sync_lock);
  if (found)
    dirty_client_call_unref (call);
  return found;
}

gboolean
dirty_client_io_send_here (ClientIo        *io,
                           DirtyConnection *connection,
                           Call            *call)
{
  g_mutex_lock (&io->sync_lock);
  g_queue_push_tail (&io->adopting, dirty_client_call_ref (call));
  g_atomic_int_add (&io->n_adopting, 1);
  g_mutex_unlock (&io->sync_lock);
  if (dirty_connection_send_from_thread_with_id (connection, call->frame, call->id,
                                                 call->timeout_ms))
    return TRUE;
  /* closed since: the request never left, and the I/O thread's path
   * sends it on the next connection, unless adopted already: then the
   * close fails it, as any call in flight */
  return !dirty_client_io_unadopt (io, call);
}

WaitHere *
dirty_client_wait_here_new (ClientIo *io,
                            Call     *call,
                            GTask    *task)
{
  WaitHere *here = g_new0 (WaitHere, 1);

  here->io = dirty_client_io_ref (io);
  here->call = dirty_client_call_ref (call);
  here->task = task;
  return here;
}

void
dirty_client_wait_here_free (gpointer data)
{
  WaitHere *here = data;

  dirty_client_io_unref (here->io);
  dirty_client_call_unref (here->call);
  g_clear_object (&here->task);
  g_free (here);
}

/* In the task's context: the task returns what the I/O thread's path
 * would have returned (dirty_client_call_finish ()), and at once, as this
 * is a dispatch of its context */
static void
wait_here_done (DirtyConnection        *connection,
                DirtyFrame             *frame,
                DirtyConnectionWaitEnd  end,
                const GError           *wait_error,
                GQueue                 *more,
                gpointer                user_data)
{
  WaitHere *here = user_data;
  Call *call = here->call;
  g_autoptr(GTask) task = g_steal_pointer (&here->task);
  g_autoptr(GPtrArray) attachments = NULL;
  GError *error = NULL;
  JsonNode *result;

  result = dirty_client_io_reply_result (here->io, connection, call->frame, call->id,
                                         call->timeout_ms, end, frame, wait_error,
                                         &attachments, &error);
  call->state = CALL_DONE;
  dirty_client_io_sync_end (here->io);
  dirty_client_call_return (call, task, result ? dirty_client_call_value (call, result, attachments)
                                               : NULL, error);
}

gboolean
dirty_client_io_try_wait_here (ClientIo *io,
                               Call     *call)
{
  g_autoptr(DirtyConnection) connection = NULL;
  DirtyConnectionWaiter *waiter;
  WaitHere *here;

  /* a stream, a connect, a cancel: the other paths, as always */
  if (call->frame == NULL || call->queue != NULL || g_cancellable_is_cancelled (call->cancellable))
    return FALSE;
  connection = dirty_client_io_sync_send (io, call->frame, call->timeout_ms, &call->id, &waiter,
                                          NULL);
  if (connection == NULL)
    return FALSE;
  here = dirty_client_wait_here_new (io, call, g_steal_pointer (&call->task));
  dirty_connection_wait_async (connection, waiter, dirty_client_io_reply_deadline (call->timeout_ms),
                               call->cancellable, g_task_get_context (here->task),
                               wait_here_done, here, dirty_client_wait_here_free);
  return TRUE;
}
