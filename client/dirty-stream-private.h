/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a DirtyStream reads from: the chunks of one streamed call, filled
 * by the client's I/O thread and drained by the reader, in any thread.
 * Thread-safe and reference-counted; not installed. */

#include "dirty-frame.h"
#include "dirty-stream.h"

G_BEGIN_DECLS

typedef struct _DirtyStreamQueue DirtyStreamQueue;
typedef struct _DirtyClientCall  DirtyClientCall;

DirtyStreamQueue *dirty_stream_queue_new    (const DirtyLimits *limits,
                                             guint              window);
DirtyStreamQueue *dirty_stream_queue_ref    (DirtyStreamQueue  *queue);
void              dirty_stream_queue_unref  (DirtyStreamQueue  *queue);

/* I/O thread: a CHUNK frame, decoded later by the reader */
void              dirty_stream_queue_push   (DirtyStreamQueue  *queue,
                                             DirtyFrame        *frame);
/* I/O thread, once: the stream ended (@error NULL: END) */
void              dirty_stream_queue_finish (DirtyStreamQueue  *queue,
                                             const GError      *error);

/* The reader's side of @queue; holds @client alive and @call to send
 * credits and cancel. */
DirtyStream      *dirty_stream_new          (GObject           *client,
                                             DirtyStreamQueue  *queue,
                                             DirtyClientCall   *call);
/* Blocks until the first chunk or the end arrived. FALSE with @error
 * set if the stream ended with an error before any chunk. */
gboolean          dirty_stream_wait_started (DirtyStream       *self,
                                             GError           **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyStreamQueue, dirty_stream_queue_unref)

G_END_DECLS
