/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Inside the client's I/O thread path (dirty-client-io.c): its calls and
 * its connection state, shared with the streams a blocking caller starts
 * on its own thread (dirty-client-io-stream.c). Not for anything else:
 * dirty-client-io-private.h is the interface. */

#include "dirty-client-io-private.h"

G_BEGIN_DECLS

typedef DirtyClientIo ClientIo;
typedef DirtyClientCall Call;

typedef enum {
  CALL_NEW,       /* not yet seen by the I/O thread, or in hand there */
  CALL_WAITING,   /* in io->waiting, for a connection */
  CALL_SENT,      /* in io->pending, by id */
  CALL_DONE,      /* ended: its task has returned, a stream's queue has its end */
} CallState;

/* One call in flight on the I/O thread's path (a sync call on the
 * calling thread, dirty-client-sync.c, has no Call: its state is its
 * stack). Created on the caller's thread; from then on only
 * the I/O thread reads or writes it, so completing it is race-free: the
 * first of reply, error, cancel, timeout or disconnect to run there wins,
 * and the task is returned once. A stream's task returns at its first
 * reply; the call goes on until the stream's end. An async call that
 * waits in its caller's context (dirty_client_io_try_wait_here ()) never
 * reaches the I/O thread: that context alone ends it. */
struct _DirtyClientCall {
  gatomicrefcount  ref_count;
  ClientIo        *io;          /* valid until DONE: the task, then the DirtyStream,
                                 * holds the client */
  GTask           *task;        /* NULL once DONE */
  GCancellable    *cancellable;
  gulong           cancelled_id;
  DirtyFrame      *frame;       /* the REQUEST with id 0; NULL: connect only */
  guint32          timeout_ms;  /* effective, as sent; 0 = the arbiter's */
  CallState        state;
  guint64          id;
  GSource         *timer;
  DirtyStreamQueue *queue;      /* a stream's chunks go there; NULL: not a stream */
  gboolean         result_only; /* the task returns the result, not a DirtyReply */
  gboolean         args_kept;   /* a reply holds one of its argument memfds */
  /* A stream started on its caller's thread (dirty_client_io_start_
   * stream_here ()): the connection it went out on, until adopted here */
  DirtyConnection *started_on;
  gboolean         first_to_waiter;  /* its first frame goes to that thread */
  GQueue           held;        /* frames after it, until that one is taken */
};

/* The connection state of one client, owned by the I/O thread. It is
 * referenced by the client (then by its queued shutdown) and by the
 * sources of a connect attempt. Its connection never outlives it: the
 * shutdown closes and releases it first. Sync calls on their callers' threads
 * (dirty-client-sync.c) read what is marked "sync_lock": the I/O thread
 * writes it under that lock. */
struct _DirtyClientIo {
  gatomicrefcount  ref_count;
  char            *socket_path;
  GMutex           sync_lock;
  DirtyConnection *connection;    /* sync_lock */
  GSocket         *connecting;
  GSource         *connect_source;
  gint64           connect_deadline;
  GQueue           waiting;       /* of Call (a reference each) */
  GHashTable      *pending;       /* &call->id -> Call (a reference each) */
  /* sync_lock: */
  guint64          next_id;
  gboolean         hello_sent;    /* on this connection: its first request went */
  guint32          max_body;      /* from the arbiter's HELLO */
  guint            max_attachments;
  guint            max_fds;
  guint64          max_fd_payload;
  guint            max_in_flight;
  guint            in_flight;     /* calls sent: io->pending and sync calls */
  guint            n_unsent;      /* calls started here, not yet SENT or DONE */
  gboolean         held_back;     /* a call waits for a free slot */
  GQueue           adopting;      /* calls sent by their callers, not yet in pending */
  /* end of sync_lock */
  gint             n_adopting;    /* adopting's length, atomic: read without the lock */
  guint            n_first_waiting;  /* pending streams whose caller waits for the first frame */
  gboolean         flush_scheduled;
};

/* Calls */

Call *dirty_client_call_new     (ClientIo         *io,
                                 GTask            *task,
                                 GCancellable     *cancellable,
                                 DirtyFrame       *frame,
                                 guint32           timeout_ms,
                                 DirtyStreamQueue *queue);
/* Ends @call with @value or @error (both transfer full; neither for a
 * connect-only call). @value is what its task returns for a RESPONSE:
 * a DirtyReply, or the result's JsonNode for a result-only call. Only on
 * the I/O thread; a no-op once DONE. */
void  dirty_client_call_finish  (Call             *call,
                                 gpointer          value,
                                 GError           *error);
/* What @call's task returns for a RESPONSE's @result (transfer full):
 * the result itself for a result-only call, else a DirtyReply with
 * @attachments. (transfer full) */
gpointer dirty_client_call_value (Call          *call,
                                  JsonNode      *result,
                                  GPtrArray     *attachments);
/* Returns @task, @call's: @error, else @value (both transfer full;
 * freed if the task returns neither). */
void  dirty_client_call_return  (Call             *call,
                                 GTask            *task,
                                 gpointer          value,
                                 GError           *error);
/* Ends a stream whose END its caller read, on the caller's thread, as
 * dirty_client_call_finish () would; only for a call the I/O thread
 * never adopted (dirty-client-io-stream.c), after its chunks were queued. */
void  dirty_client_call_end_here (Call            *call);
/* Ends @call with G_IO_ERROR_CANCELLED and @message, first telling the
 * arbiter (CANCEL) if it was sent. */
void  dirty_client_call_cancel  (Call             *call,
                                 const char       *message);
/* Ends @call for its timeout, first telling the arbiter if it was sent. */
void  dirty_client_call_time_out (Call            *call);
/* Starts the timer of the call's timeout (plus the safety margin), if
 * it has one. On the I/O thread. */
void  dirty_client_call_arm_timer (Call           *call);
/* Cancelling the call's cancellable ends it, on the I/O thread. */
void  dirty_client_call_watch_cancellable (Call   *call);
/* No longer: the call has ended, or goes another way. */
void  dirty_client_call_unwatch_cancellable (Call *call);
/* A reply of @call that hands back one of its argument memfds. */
void  dirty_client_call_note_reply_fds (Call      *call,
                                        DirtyFrame *reply);

/* The connection, on the I/O thread */

void  dirty_client_io_send_cancel (ClientIo       *io,
                                   guint64         id);
/* A RESPONSE, ERROR, CHUNK or END for @call. */
void  dirty_client_io_call_frame  (ClientIo        *io,
                                   DirtyConnection *connection,
                                   Call            *call,
                                   DirtyFrame      *frame);
/* The I/O thread reads the socket while a call of its own is in flight. */
void  dirty_client_io_update_read_mode (ClientIo  *io);
/* The client holds @io, and so does each callback queued for it on the
 * I/O thread */
ClientIo *dirty_client_io_ref    (ClientIo       *io);
void  dirty_client_io_unref       (ClientIo       *io);

/* Calls sent from their callers' threads (dirty-client-io-here.c) */

/* Sends @call's REQUEST from the calling thread and waits for its reply
 * in the context of its task, when it may go out at once and is not a
 * stream; FALSE (nothing done) when another path must take it: not
 * connected, an earlier call still to be sent, no free slot, too large,
 * cancelled. The I/O thread never sees it. */
gboolean dirty_client_io_try_wait_here (ClientIo *io,
                                        Call     *call);
/* Sends the stream @call's REQUEST from the calling thread and waits for
 * its first frame in the context of its task, when it may go out at once
 * (dirty-client-io-stream.c); FALSE, and nothing done, otherwise. */
gboolean dirty_client_io_try_stream_wait_here (ClientIo *io,
                                               Call     *call);
/* A call waited for in its caller's context: the data of its
 * dirty_connection_wait_async () */
typedef struct {
  ClientIo *io;     /* a reference: call->io is gone once the call ends */
  Call     *call;   /* a reference: its request and id */
  GTask    *task;   /* the call's, out of it: only that context returns it */
} WaitHere;

WaitHere *dirty_client_wait_here_new  (ClientIo *io,
                                       Call     *call,
                                       GTask    *task);
void      dirty_client_wait_here_free (gpointer  data);
/* Puts @call (its id set, a slot taken, started_on set) in io->adopting
 * and sends its REQUEST from the calling thread on @connection. FALSE
 * when the request never left (the connection closed) and @call is
 * still the caller's: the I/O thread's path may send it. */
gboolean dirty_client_io_send_here (ClientIo        *io,
                                    DirtyConnection *connection,
                                    Call            *call);
/* Takes @call back out of io->adopting; FALSE if the I/O thread has
 * adopted it already. */
gboolean dirty_client_io_unadopt  (ClientIo       *io,
                                   Call           *call);
/* Takes the calls their callers sent into io->pending. On the I/O
 * thread. */
void  dirty_client_io_adopt       (ClientIo       *io);
/* Ends @call: the connection its request went out on is gone. */
void  dirty_client_call_lost      (Call           *call,
                                   const char     *why);

G_END_DECLS
