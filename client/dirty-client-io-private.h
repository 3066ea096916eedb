/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The connection state of a DirtyClient and its calls in flight, owned by
 * the shared I/O thread (dirty-io-private.h): connecting, sending
 * requests, matching replies by id, cancels, the client-side timeout, and
 * the delivery of a stream's chunks to its DirtyStreamQueue. A blocking
 * call on a connected client is the exception: it is sent and its reply
 * read on the calling thread (dirty_client_io_call_sync ()), with no
 * wake-up of the I/O thread. Not installed. */

#include <gio/gio.h>

#include "dirty-connection.h"
#include "dirty-connection-sync.h"
#include "dirty-frame.h"
#include "dirty-reply.h"
#include "dirty-stream-private.h"

G_BEGIN_DECLS

typedef struct _DirtyClientIo   DirtyClientIo;
typedef struct _DirtyClientCall DirtyClientCall;

DirtyClientIo   *dirty_client_io_new        (const char      *socket_path);
/* Closes the connection on the I/O thread and drops @io (taken). */
void             dirty_client_io_shutdown   (DirtyClientIo   *io);

/* Starts a call: @task (taken) returns a DirtyReply (transfer full) for a
 * REQUEST @frame (taken), %TRUE once connected when @frame is NULL, or,
 * when @queue is set, %TRUE at the stream's first reply, after which the
 * stream's chunks and its end go to @queue. @task's source object must
 * keep the client alive until then. Returns the call (transfer full). */
DirtyClientCall *dirty_client_io_start_call (DirtyClientIo    *io,
                                             GTask            *task,
                                             GCancellable     *cancellable,
                                             DirtyFrame       *frame,
                                             guint32           timeout_ms,
                                             DirtyStreamQueue *queue);

/* Starts the call of a REQUEST @frame (taken) whose @task (taken)
 * returns the RESPONSE's result alone: a JsonNode (transfer full; JSON
 * null when it has none), its attachments dropped. No DirtyReply is
 * made, and no second task is needed to unwrap one. */
DirtyClientCall *dirty_client_io_start_result_call (DirtyClientIo *io,
                                                    GTask         *task,
                                                    GCancellable  *cancellable,
                                                    DirtyFrame    *frame,
                                                    guint32        timeout_ms);
DirtyClientCall *dirty_client_call_ref      (DirtyClientCall *call);
void             dirty_client_call_unref    (DirtyClientCall *call);
/* From any thread: CREDIT @n for a stream still in flight. */
void             dirty_client_call_credit   (DirtyClientCall *call,
                                             guint            n);
/* From any thread: nobody reads the stream any more; CANCEL it if it is
 * still in flight (nothing, not even a wake-up of the I/O thread, once
 * the stream has ended). */
void             dirty_client_call_abandon  (DirtyClientCall *call);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyClientCall, dirty_client_call_unref)

/* The client's own deadline is the call's timeout plus this: the arbiter's
 * TIMEOUT error normally arrives first and says more. */
#define DIRTY_CLIENT_SAFETY_MARGIN_MS 1000

/* A call of REQUEST @frame (not taken) on the calling thread
 * (dirty-client-sync.c): sent from here, its reply read here or handed
 * here by whichever thread reads. Returns the RESPONSE's result (JSON
 * null if it has none), its attachments in @attachments (may be NULL);
 * or NULL with @error set. *@handled FALSE (and NULL, no error) when it
 * must take the I/O thread's path instead: not connected yet, as many
 * calls in flight as the arbiter takes, or an earlier call still to be
 * sent there (calls leave in the order they were made). */
JsonNode        *dirty_client_io_call_sync  (DirtyClientIo  *io,
                                             DirtyFrame     *frame,
                                             guint32         timeout_ms,
                                             GCancellable   *cancellable,
                                             gboolean       *handled,
                                             GPtrArray     **attachments,
                                             GError        **error);

/* For dirty-client-sync.c: the connection with a slot and a new id for
 * @frame, or NULL (@error set if @frame is too large for the arbiter);
 * dirty_client_io_sync_end () gives the slot back. */
DirtyConnection *dirty_client_io_sync_begin (DirtyClientIo  *io,
                                             DirtyFrame     *frame,
                                             guint64        *id,
                                             GError        **error);
void             dirty_client_io_sync_end   (DirtyClientIo  *io);
/* dirty_client_io_sync_begin (), with *@waiter registered for the new
 * id: the connection, or NULL (nothing held; @error set if @frame is too
 * large) when the I/O thread's path must take the call. */
DirtyConnection *dirty_client_io_sync_expect (DirtyClientIo          *io,
                                              DirtyFrame             *frame,
                                              guint64                *id,
                                              DirtyConnectionWaiter **waiter,
                                              GError                **error);
/* dirty_client_io_sync_expect (), then @frame sent from the calling
 * thread: the connection, or NULL, as that. */
DirtyConnection *dirty_client_io_sync_send  (DirtyClientIo          *io,
                                             DirtyFrame             *frame,
                                             guint32                 timeout_ms,
                                             guint64                *id,
                                             DirtyConnectionWaiter **waiter,
                                             GError                **error);
/* For calls whose reply is read on their caller's side: when the client
 * gives up on a call of @timeout_ms (monotonic µs; 0: never) */
gint64           dirty_client_io_reply_deadline (guint32 timeout_ms);
/* What a call gets once its wait on @connection ended with @end (and
 * @frame, or @wait_error): as dirty_client_io_call_sync () returns it;
 * a timeout or a cancel sends CANCEL for @id. */
JsonNode        *dirty_client_io_reply_result (DirtyClientIo           *io,
                                               DirtyConnection         *connection,
                                               DirtyFrame              *request,
                                               guint64                  id,
                                               guint32                  timeout_ms,
                                               DirtyConnectionWaitEnd   end,
                                               DirtyFrame              *frame,
                                               const GError            *wait_error,
                                               GPtrArray              **attachments,
                                               GError                 **error);
/* Starts a stream on the calling thread: sends its REQUEST and waits
 * there for its first frame, which is in @queue (a CHUNK) when this
 * returns, or on its way there through the I/O thread (the end, an
 * error). NULL when only the I/O thread's path can start it (not
 * connected, calls queued before it, no free slot, cancelled): call
 * dirty_client_io_start_call () then. (transfer full) */
DirtyClientCall *dirty_client_io_start_stream_here (DirtyClientIo    *io,
                                                    GCancellable     *cancellable,
                                                    DirtyFrame       *frame,
                                                    guint32           timeout_ms,
                                                    DirtyStreamQueue *queue);
const char      *dirty_client_io_get_socket_path (DirtyClientIo *io);
/* A RESPONSE's result (transfer full; a JSON null node when it has
 * none) and attachments, or NULL with @error set. The worker is done
 * with @request's memfds (@request may be NULL): they go back to the
 * pool. For a blocking call and the I/O thread's alike. */
JsonNode        *dirty_client_response_result (const DirtyLimits  *limits,
                                               DirtyFrame         *request,
                                               DirtyFrame         *response,
                                               GPtrArray         **attachments,
                                               GError            **error);
/* The error an ERROR frame carries. (transfer full) */
GError          *dirty_client_io_body_error (DirtyConnection *connection,
                                             DirtyFrame      *frame);

G_END_DECLS
