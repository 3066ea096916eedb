/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DirtyConnection's state, shared by dirty-connection.c (reading,
 * writing, closing) and dirty-connection-sync.c (threads that wait for
 * a reply and read it themselves). Not installed. */

#include "dirty-connection.h"
#include "dirty-connection-sync.h"
#include "dirty-poller.h"

G_BEGIN_DECLS

/* Who may read the socket. The owner's context reads (OWNER) unless the
 * owner gave the read side to the waiters (CALLERS: one of them, the
 * leader, polls and reads on its own thread). CLOSED: nobody, for good. */
typedef enum {
  DIRTY_READ_SIDE_OWNER,
  DIRTY_READ_SIDE_CALLERS,
  DIRTY_READ_SIDE_CLOSED,
} DirtyReadSide;

typedef struct {
  GList       link;    /* in DirtyConnection.out: no list node per frame */
  DirtyFrame *frame;
  guint8      header[DIRTY_FRAME_HEADER_SIZE];
} OutFrame;

struct _DirtyConnection {
  GObject parent_instance;

  GSocket      *socket;
  int           fd;         /* the socket's, for recvmsg and sendmsg */
  DirtyLimits   limits;
  GMainContext *context;

  DirtyConnectionFrameFunc  frame_func;
  DirtyConnectionClosedFunc closed_func;
  DirtyConnectionOversizedFunc oversized_func;
  gpointer                  user_data;

  DirtyWatch *watch;        /* from dirty_connection_start () until closed */
  gboolean    reading;      /* watching for input */
  gboolean    writing;      /* watching for room to write the queue */
  GSource *closed_source;
  GSource *fail_timer;
  GSource *frame_timer;     /* only while a frame is incomplete */
  GSource *unread_source;   /* feeds @unread before the socket is watched */
  GBytes  *unread;          /* bytes another process read off this socket */
  gboolean paused;          /* dirty_connection_pause_reading(): for good */
  GSource *resume_source;   /* only while read frames wait in @pending */
  GByteArray *pending;      /* read, not consumed: past the frame budget */

  /* read side: the frame being assembled */
  guint8          *rbuf;          /* READ_CHUNK bytes, only during on_readable () */
  gboolean        *rbuf_busy;     /* the thread's scratch flag when rbuf is its buffer */
  gsize            rbuf_pos, rbuf_len;
  guint8           header_buf[DIRTY_FRAME_HEADER_SIZE];
  gsize            header_have;
  gint64           frame_started;  /* monotonic time of its first byte */
  gboolean         in_body;
  gboolean         skipping;       /* the body is read past, not kept: an oversized frame */
  DirtyFrameHeader header;
  guint8          *body;
  gsize            body_have;
  gboolean         in_dispatch;          /* on_readable() runs: the budget applies */
  guint            frames_this_dispatch;
  /* received, not yet claimed by a header (also those of frames still
   * in @pending) */
  GArray          *pending_fds;
  DirtyFdSet      *body_fds;      /* those of the frame being assembled */

  /* write side: under write_lock, so another thread may send (see
   * dirty_connection_send_from_thread ()) */
  GRecMutex write_lock;
  gboolean  foreign;      /* flush () runs on a thread that is not the owner */
  GSource  *flush_source; /* the owner finishes what another thread began */
  GQueue   out;          /* of OutFrame */
  gsize    out_offset;   /* bytes of the head frame already written */
  gsize    queued_bytes;
  gboolean in_batch;     /* a thread's batch flushes it (dirty_connection_batch_begin ()) */

  /* Sync waiters (dirty-connection-sync.c): threads that wait for the
   * frame of one id, and may read the socket for themselves meanwhile.
   * Under sync_lock, but for what the comments say. */
  GMutex       sync_lock;
  GCond        sync_cond;     /* the owner waits there for a leader to let go */
  gint         sync_used;     /* atomic latch: a waiter was ever registered */
  GHashTable  *waiters;       /* &id -> DirtyConnectionWaiter */
  DirtyReadSide read_side;
  gboolean     owner_reads;   /* owner thread only: the owner wants the read side */
  DirtyConnectionWaiter *leader;   /* the waiter that reads, or NULL */
  gboolean     leader_reading;    /* only the thread that reads uses it */
  gboolean     leader_answered;   /* the leader's frame came: it stops reading */
  gboolean     owner_waiting;     /* on sync_cond */
  gboolean     read_broken;   /* a leader met an error; the owner closes */
  gboolean     hung_up;       /* the owner saw the peer hang up: reads to the end */
  GError      *read_error;
  gboolean     read_error_protocol;
  int          wake_fd;       /* eventfd: ends a leader's poll; -1 until needed */
  GQueue       forwarded;     /* frames a leader read for nobody waiting */
  guint        n_forwarding;  /* of them, taken by the owner, not yet handled */
  GSource     *forward_source;

  gboolean closed;       /* no more I/O at all */
  gboolean failing;      /* flushing a final ERROR, then closing */
  GError  *close_error;
};


/* dirty-connection.c, for the write side */

/* What the socket is watched for follows reading and writing. */
void     dirty_connection_update_watch   (DirtyConnection *self);

/* dirty-connection-write.c */

void     dirty_out_frame_free            (OutFrame        *out);
/* Drops every queued frame (write_lock held). */
void     dirty_connection_clear_out      (DirtyConnection *self);
/* Writes as much as the socket takes now. FALSE if the connection died.
 * Under write_lock. */
gboolean dirty_connection_flush          (DirtyConnection *self);
gboolean dirty_connection_on_writable    (GSocket         *socket,
                                          GIOCondition     condition,
                                          gpointer         user_data);
/* Before a close: what this connection's batch holds goes out now, as
 * far as the socket takes it without waiting (write_lock held). */
void     dirty_connection_unbatch        (DirtyConnection *self);

/* dirty-connection.c, for the sync side */

/* One round of non-blocking reads on a leader's thread: frames for
 * waiters go to them, the others to the owner (forwarded). Errors are
 * left to the owner (read_broken). */
void     dirty_connection_read_as_leader (DirtyConnection *self);
/* Closes from the owner's context, as a read or write error does. */
void     dirty_connection_lost           (DirtyConnection *self,
                                          const GError    *error);

/* dirty-connection-sync.c, for the read and close paths */

void     dirty_connection_sync_init      (DirtyConnection *self);
void     dirty_connection_sync_clear     (DirtyConnection *self);
/* A complete frame: TRUE if it went to a waiter, or (on a leader) was
 * forwarded to the owner; FALSE: for the frame callback, here. */
gboolean dirty_connection_sync_route     (DirtyConnection *self,
                                          DirtyFrame      *frame);
/* The owner is about to read: frames a leader forwarded go first. */
void     dirty_connection_sync_owner_turn (DirtyConnection *self);
/* The owner's turn ended (not in a dispatch any more): gives the read
 * side to the waiters if the owner no longer wants it. */
void     dirty_connection_sync_owner_done (DirtyConnection *self);
/* The owner takes the read side back (to pause, fail, close or detach):
 * waits until no leader reads. */
void     dirty_connection_sync_take_back (DirtyConnection *self);
/* The connection closes: every waiter gets its answer, no leader is left
 * on the socket. */
void     dirty_connection_sync_close     (DirtyConnection *self,
                                          const GError    *error);
/* On a leader: an error ends reading; the owner fails or closes the
 * connection from its context. */
void     dirty_connection_sync_read_error (DirtyConnection *self,
                                           const GError    *error,
                                           gboolean         protocol);

/* dirty-connection-sync.c, for the async wait (dirty-connection-wait-source.c) */

struct _DirtyConnectionWaiter {
  guint64     id;
  GCond       cond;       /* a blocked waiter's */
  GSource    *source;     /* an async waiter's (not a reference), or NULL */
  gboolean    done;       /* out of @waiters with an answer */
  gboolean    cancelled;
  DirtyConnectionWaitEnd end;
  DirtyFrame *frame;
  GError     *error;
  GQueue     *more;       /* dirty_connection_wait ()'s, or NULL */
};

void     dirty_connection_waiter_free    (DirtyConnectionWaiter  *waiter);
/* Under sync_lock: @waiter leaves the waiters with its answer, and is told. */
void     dirty_connection_waiter_answer  (DirtyConnection        *self,
                                          DirtyConnectionWaiter  *waiter,
                                          DirtyConnectionWaitEnd  end);
/* Under sync_lock: whether @waiter has its answer, answering it
 * WAIT_CANCELLED or WAIT_TIMEOUT first if it was cancelled or @deadline
 * (monotonic µs; 0: none) passed. */
gboolean dirty_connection_waiter_ended   (DirtyConnection        *self,
                                          DirtyConnectionWaiter  *waiter,
                                          gint64                  deadline);
/* Under sync_lock: whether a waiter may read now (the waiters have the
 * read side, nobody leads, no error broke the reading). */
gboolean dirty_connection_may_lead       (DirtyConnection        *self);
/* Called and returns under sync_lock, as the leader: one round of
 * reads (dirty_connection_read_as_leader ()), without the lock. */
void     dirty_connection_lead_round     (DirtyConnection        *self);
/* Under sync_lock: a leader that stops leading passes the turn on, and
 * lets an owner that waits to take the read side back go on. */
void     dirty_connection_stop_leading   (DirtyConnection        *self);

G_END_DECLS
