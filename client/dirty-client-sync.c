/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-client-io-private.h"
#include "dirty-connection-sync.h"
#include "dirty-error.h"
#include "dirty-message.h"
#include "dirty-i18n-private.h"

/* A blocking call on a connected client, on the calling thread. Through
 * the I/O thread a call costs that thread two wake-ups (the caller's
 * request handed to it, the reply handed back); here the caller writes
 * its request itself and waits for its reply on the connection
 * (dirty-connection-sync.h): while the I/O thread has no call of its own
 * in flight, the blocked callers take turns reading the socket, and the
 * one that reads hands the others their replies. Otherwise the I/O thread
 * reads, and hands this thread its reply through a GCond: still no main
 * context in between.
 *
 * The same answers as the I/O thread's path, in the same words: a
 * timeout (the call's plus DIRTY_CLIENT_SAFETY_MARGIN_MS) and a cancel
 * send CANCEL; the connection's loss or the arbiter's ERROR for the whole
 * connection end the call; the request's memfds go back to the pool once
 * its RESPONSE is decoded (dirty_client_response_result (), shared with
 * the I/O thread's path). */

static JsonNode *
result_from_frame (DirtyConnection  *connection,
                   DirtyFrame       *request,
                   DirtyFrame       *frame,
                   GPtrArray       **attachments,
                   GError          **error)
{
  switch (frame->header.type)
    {
    case DIRTY_FRAME_RESPONSE:
      /* no DirtyReply: the caller takes the parts, so a blocking execute
       * makes and finalizes no GObject (about 2,700 instructions a call) */
      return dirty_client_response_result (dirty_connection_get_limits (connection), request,
                                           frame, attachments, error);
    case DIRTY_FRAME_ERROR:
      g_propagate_error (error, dirty_client_io_body_error (connection, frame));
      return NULL;
    default:
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   _("The arbiter sent %s to a call that is not a stream"),
                   dirty_frame_type_to_string (frame->header.type));
      return NULL;
    }
}

static void
send_cancel (DirtyConnection *connection,
             guint64          id)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_CANCEL, id, 0);

  dirty_connection_send_from_thread (connection, frame);
}

gint64
dirty_client_io_reply_deadline (guint32 timeout_ms)
{
  if (timeout_ms == 0)
    return 0;
  return g_get_monotonic_time () +
         ((gint64) timeout_ms + DIRTY_CLIENT_SAFETY_MARGIN_MS) * G_TIME_SPAN_MILLISECOND;
}

JsonNode *
dirty_client_io_reply_result (DirtyClientIo           *io,
                              DirtyConnection         *connection,
                              DirtyFrame              *request,
                              guint64                  id,
                              guint32                  timeout_ms,
                              DirtyConnectionWaitEnd   end,
                              DirtyFrame              *frame,
                              const GError            *wait_error,
                              GPtrArray              **attachments,
                              GError                 **error)
{
  switch (end)
    {
    case DIRTY_CONNECTION_WAIT_FRAME:
      return result_from_frame (connection, request, frame, attachments, error);
    case DIRTY_CONNECTION_WAIT_TIMEOUT:
      send_cancel (connection, id);
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT,
                   _("No reply from the arbiter within the call's timeout (%u ms)"),
                   timeout_ms);
      return NULL;
    case DIRTY_CONNECTION_WAIT_CANCELLED:
      send_cancel (connection, id);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("Operation was cancelled"));
      return NULL;
    case DIRTY_CONNECTION_WAIT_FAILED:
      g_propagate_error (error, g_error_copy (wait_error));
      return NULL;
    case DIRTY_CONNECTION_WAIT_CLOSED:
    default:
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                   _("Lost the connection to dirty-arbiter at %s: %s"),
                   dirty_client_io_get_socket_path (io),
                   wait_error ? wait_error->message : "closed by the arbiter");
      return NULL;
    }
}

static JsonNode *
wait_reply (DirtyClientIo          *io,
            DirtyConnection        *connection,
            DirtyConnectionWaiter  *waiter,
            DirtyFrame             *request,
            guint64                 id,
            guint32                 timeout_ms,
            GCancellable           *cancellable,
            GPtrArray             **attachments,
            GError                **error)
{
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(GError) wait_error = NULL;
  DirtyConnectionWaitEnd end;

  frame = dirty_connection_wait (connection, waiter, dirty_client_io_reply_deadline (timeout_ms),
                                 cancellable, &end, NULL, &wait_error);
  return dirty_client_io_reply_result (io, connection, request, id, timeout_ms, end, frame,
                                       wait_error, attachments, error);
}

DirtyConnection *
dirty_client_io_sync_expect (DirtyClientIo          *io,
                             DirtyFrame             *frame,
                             guint64                *id,
                             DirtyConnectionWaiter **waiter,
                             GError                **error)
{
  g_autoptr(DirtyConnection) connection = dirty_client_io_sync_begin (io, frame, id, error);

  if (connection == NULL)
    return NULL;
  /* registered before the request leaves: the reply cannot miss it */
  *waiter = dirty_connection_expect (connection, *id);
  if (*waiter == NULL)
    {
      /* closing: the I/O thread's path connects again */
      dirty_client_io_sync_end (io);
      return NULL;
    }
  return g_steal_pointer (&connection);
}

DirtyConnection *
dirty_client_io_sync_send (DirtyClientIo          *io,
                           DirtyFrame             *frame,
                           guint32                 timeout_ms,
                           guint64                *id,
                           DirtyConnectionWaiter **waiter,
                           GError                **error)
{
  g_autoptr(DirtyConnection) connection = dirty_client_io_sync_expect (io, frame, id, waiter,
                                                                       error);

  if (connection == NULL)
    return NULL;
  if (!dirty_connection_send_from_thread_with_id (connection, frame, *id, timeout_ms))
    {
      /* it closed since (the arbiter's ERROR, say): the request never
       * left, and the I/O thread's path sends it on the next connection */
      dirty_connection_unexpect (connection, g_steal_pointer (waiter));
      dirty_client_io_sync_end (io);
      return NULL;
    }
  return g_steal_pointer (&connection);
}

JsonNode *
dirty_client_io_call_sync (DirtyClientIo  *io,
                           DirtyFrame     *frame,
                           guint32         timeout_ms,
                           GCancellable   *cancellable,
                           gboolean       *handled,
                           GPtrArray     **attachments,
                           GError        **error)
{
  g_autoptr(DirtyConnection) connection = NULL;
  g_autoptr(GError) local_error = NULL;
  DirtyConnectionWaiter *waiter;
  JsonNode *result;
  guint64 id = 0;

  *handled = TRUE;
  if (g_cancellable_is_cancelled (cancellable))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("Operation was cancelled"));
      return NULL;
    }
  connection = dirty_client_io_sync_send (io, frame, timeout_ms, &id, &waiter, &local_error);
  if (connection == NULL)
    {
      *handled = local_error != NULL;
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  result = wait_reply (io, connection, waiter, frame, id, timeout_ms, cancellable, attachments,
                       error);
  dirty_client_io_sync_end (io);
  return result;
}
