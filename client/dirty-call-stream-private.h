/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The sending side of a streamed call, in the worker: chunks an action
 * sends (from a worker thread or the main loop) wait here for credit, in
 * order, until the worker's main loop sends them to the connection.
 * Thread-safe; not installed. See docs/protocol.md, "Flow control". */

#include <gio/gio.h>

#include "dirty-frame.h"

G_BEGIN_DECLS

typedef struct _DirtyCallStream DirtyCallStream;

/* Something changed for the main loop (chunks to flush, or the chunks
 * waiting for credit were dropped): schedule a pump. Called from any
 * thread, without the stream's lock, at most once until the next flush. */
typedef void (*DirtyCallStreamReadyFunc) (gpointer user_data);
/* Writes @frame (transfer none) to the connection now, from any thread,
 * with the stream's lock held: it must not call back into the stream. */
typedef void (*DirtyCallStreamSendFunc)  (gpointer    user_data,
                                          DirtyFrame *frame);

/* @cancellable is the call's: when it fires, blocked senders wake up and
 * fail, and chunks still waiting for credit are dropped. @context is the
 * worker's main context: a blocking send there would never see credit.
 * The stream's first chunk goes out through @send_func from the thread
 * that sends it, the others from the main loop's pump, through
 * @send_func too. */
DirtyCallStream *dirty_call_stream_new      (guint64                   id,
                                             guint                     window,
                                             GMainContext             *context,
                                             GCancellable             *cancellable,
                                             DirtyCallStreamReadyFunc  ready_func,
                                             DirtyCallStreamSendFunc   send_func,
                                             gpointer                  user_data,
                                             GDestroyNotify            destroy);
void             dirty_call_stream_free     (DirtyCallStream *self);

/* App side. Blocks while there is no credit (not on @context's thread,
 * where it fails with G_IO_ERROR_WOULD_BLOCK instead). Takes @frame. */
gboolean dirty_call_stream_send             (DirtyCallStream  *self,
                                             DirtyFrame       *frame,
                                             GCancellable     *cancellable,
                                             GError          **error);
/* Queues @frame (taken); @task (taken, may be NULL) returns TRUE once the
 * frame has credit, or an error if the stream is cancelled or closed
 * first. */
void     dirty_call_stream_send_async       (DirtyCallStream  *self,
                                             DirtyFrame       *frame,
                                             GTask            *task);

/* Main-loop side. Sends the chunks that have credit, in order, with the
 * send function. */
void       dirty_call_stream_flush          (DirtyCallStream *self);
void       dirty_call_stream_add_credit     (DirtyCallStream *self,
                                             guint            n);
/* No chunk waits for credit any more (sent, or dropped by a cancel). */
gboolean   dirty_call_stream_is_drained     (DirtyCallStream *self);
/* The terminal message went out: sends from now on fail, waiting ones
 * fail now. */
void       dirty_call_stream_close          (DirtyCallStream *self);
/* From the thread that ends the stream: sends @end (transfer none) with
 * the send function and closes the stream, if every chunk before it is
 * in the connection's queue; FALSE, doing nothing, if one is not (the
 * main loop then sends the end after it). */
gboolean   dirty_call_stream_end_now        (DirtyCallStream *self,
                                             DirtyFrame      *end);

G_END_DECLS
