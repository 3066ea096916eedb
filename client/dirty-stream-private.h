/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a DirtyStream reads from: the chunks of one streamed call, filled
 * by the client's I/O thread and drained by the reader, in any thread.
 * Thread-safe and reference-counted; not installed. */

#include "dirty-frame.h"
#include "dirty-stream.h"

G_BEGIN_DECLS

/* The credit window this client asks for (the REQUEST's "window"), where
 * the protocol's default is DIRTY_STREAM_DEFAULT_WINDOW (128). A CREDIT
 * goes back per half window consumed, and on this kind of 2-vCPU VM each
 * one is a round of cross-CPU wake-ups: 16-byte chunks flowed at 290-370k
 * chunks/s with 128 and 540-720k with 512 (dirty-bench --profile=stream,
 * fifteen runs in session 7).
 * What it may cost in memory is bounded anyway: a worker holds back its
 * chunks past DIRTY_STREAM_BYTES_AHEAD (2 MiB) of unconsumed bodies. */
#define DIRTY_STREAM_CLIENT_WINDOW 512

typedef struct _DirtyStreamQueue DirtyStreamQueue;
typedef struct _DirtyClientCall  DirtyClientCall;

DirtyStreamQueue *dirty_stream_queue_new    (const DirtyLimits *limits,
                                             guint              window);
DirtyStreamQueue *dirty_stream_queue_ref    (DirtyStreamQueue  *queue);
void              dirty_stream_queue_unref  (DirtyStreamQueue  *queue);

/* I/O thread: a CHUNK frame, decoded later by the reader */
void              dirty_stream_queue_push   (DirtyStreamQueue  *queue,
                                             DirtyFrame        *frame);
/* I/O thread, once: the stream ended (@error NULL: END). It ends the
 * call first (dirty_client_call_finish ()), so a queue that has ended
 * belongs to a call the I/O thread is done with. */
void              dirty_stream_queue_finish (DirtyStreamQueue  *queue,
                                             const GError      *error);
/* Any thread: whether dirty_stream_queue_finish () was called */
gboolean          dirty_stream_queue_has_ended (DirtyStreamQueue *queue);
/* Any thread, before the reader's first read, once a chunk came or the
 * stream ended: FALSE with @error set if it ended with an error before
 * any chunk (dirty_stream_wait_started () without the wait). */
gboolean          dirty_stream_queue_started   (DirtyStreamQueue  *queue,
                                                GError           **error);

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
