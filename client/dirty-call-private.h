/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The worker's side of DirtyCall: building one from a decoded REQUEST and
 * reading its outcome once the app has completed it. Not installed. */

#include "dirty-call.h"
#include "dirty-call-stream-private.h"

G_BEGIN_DECLS

/* Called exactly once, in whichever thread completed the call, after the
 * outcome is stored. The worker marshals to its main context from here. */
typedef void (*DirtyCallCompleteFunc) (DirtyCall *call,
                                       gpointer   user_data);

/* @args, @kwargs and @attachments may be NULL (empty); references are
 * taken. @cancellable NULL makes a new one. @deadline is monotonic
 * microseconds, 0 for none. */
DirtyCall    *dirty_call_new                  (DirtyApp              *app,
                                               const char            *app_name,
                                               const char            *action,
                                               JsonArray             *args,
                                               JsonObject            *kwargs,
                                               GPtrArray             *attachments,
                                               gint64                 deadline,
                                               GCancellable          *cancellable,
                                               DirtyCallCompleteFunc  complete_func,
                                               gpointer               user_data,
                                               GDestroyNotify         destroy);

gboolean      dirty_call_is_completed         (DirtyCall *self);

/* Which thread runs a sync call, for the worker's backtraces: the worker
 * sets 0 as it hands the call to a thread, then the thread's id while it
 * runs, -1 once it has returned. Any thread may read it; FALSE (and @tid
 * 0) for a call that never went to a thread (an async action). */
void          dirty_call_set_thread           (DirtyCall *self,
                                               gint       tid);
gboolean      dirty_call_get_thread           (DirtyCall *self,
                                               gint      *tid);
/* The call's cancellable if something made it yet (any thread), else NULL:
 * then nothing has cancelled the call. (transfer none) */
GCancellable *dirty_call_peek_cancellable     (DirtyCall *self);

/* Completes with @error (transfer full) unless the call is already
 * complete, in which case @error is freed quietly. Returns whether it
 * completed the call. For "the action returned no result". */
gboolean      dirty_call_complete_if_pending  (DirtyCall *self,
                                               GError    *error);

/* The outcome, valid once completed: the result as JSON text, written
 * when the call completed (NULL for an error), for the one reply frame
 * that carries it (transfer full); and its attachments (transfer none). */
GString      *dirty_call_steal_result_json   (DirtyCall *self);
/* A completed call whose result could not be sent gets @error (taken)
 * instead, for the reply that goes out in its place. */
void          dirty_call_fail_unsent         (DirtyCall *self,
                                              GError    *error);
GPtrArray    *dirty_call_get_reply_attachments (DirtyCall *self);
/* The call is over and its reply encoded: drops its arguments and reply
 * attachments, and detaches argument bytes the app still holds from the
 * client's memfds (dirty_memfd_release_arguments), before the terminal
 * reply lets the client reuse them. */
void          dirty_call_release_arguments (DirtyCall *self);
const GError *dirty_call_get_error            (DirtyCall *self);
const char   *dirty_call_get_detail           (DirtyCall *self);

/* Streams: the worker sets the stream (taken) before dispatching a call
 * whose request has the STREAM flag. */
void             dirty_call_set_stream       (DirtyCall       *self,
                                              DirtyCallStream *stream);
DirtyCallStream *dirty_call_get_stream       (DirtyCall       *self);
/* The call completed with dirty_call_end_stream(). Valid once completed. */
gboolean         dirty_call_get_stream_ended (DirtyCall       *self);

G_END_DECLS
