/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The connection state of a DirtyClient and its calls in flight, owned by
 * the shared I/O thread (dirty-io-private.h): connecting, sending
 * requests, matching replies by id, cancels, the client-side timeout, and
 * the delivery of a stream's chunks to its DirtyStreamQueue. Not
 * installed. */

#include <gio/gio.h>

#include "dirty-frame.h"
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

DirtyClientCall *dirty_client_call_ref      (DirtyClientCall *call);
void             dirty_client_call_unref    (DirtyClientCall *call);
/* From any thread: CREDIT @n for a stream still in flight. */
void             dirty_client_call_credit   (DirtyClientCall *call,
                                             guint            n);
/* From any thread: nobody reads the stream any more; CANCEL it if it is
 * still in flight. */
void             dirty_client_call_abandon  (DirtyClientCall *call);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyClientCall, dirty_client_call_unref)

G_END_DECLS
