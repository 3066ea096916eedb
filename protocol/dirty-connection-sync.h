/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Waiting for a reply on the calling thread (leader/follower), so that a
 * blocking call costs no wake-up of the connection's owner.
 *
 * A thread registers the id it expects (dirty_connection_expect()), sends
 * its request (dirty_connection_send_from_thread()) and waits
 * (dirty_connection_wait()). Whoever reads the socket hands the frame of
 * a registered id to its waiter (a GCond, no main context). Who reads:
 * the owner's context, as always, while the owner wants the read side
 * (dirty_connection_set_owner_reads(), the default); otherwise the
 * waiters take turns: one, the leader, polls and reads on its own
 * thread, hands the others their frames and forwards frames nobody waits
 * for to the owner's context; when its own frame came it lets another
 * waiter lead. With no waiter and the owner not reading, nobody reads:
 * the kernel keeps the bytes for the next reader.
 *
 * An async waiter (dirty_connection_wait_async()) waits in a main context
 * instead: it polls the socket there while it may lead, and reads in that
 * context's dispatch, for itself and the others, as a leader does; a
 * frame another reader hands it makes its source ready. It leads only
 * within a dispatch, so neither the owner nor a blocked waiter ever waits
 * for a context to run.
 *
 * Errors the leader meets are the owner's to act on (from its context);
 * closing the connection answers every waiter. */

#include "dirty-connection.h"

G_BEGIN_DECLS

typedef struct _DirtyConnectionWaiter DirtyConnectionWaiter;

typedef enum {
  DIRTY_CONNECTION_WAIT_FRAME,      /* the frame came */
  DIRTY_CONNECTION_WAIT_TIMEOUT,    /* the deadline passed */
  DIRTY_CONNECTION_WAIT_CANCELLED,  /* the cancellable was cancelled */
  DIRTY_CONNECTION_WAIT_FAILED,     /* dirty_connection_fail_waiters() */
  DIRTY_CONNECTION_WAIT_CLOSED,     /* the connection closed (error: why, or NULL) */
} DirtyConnectionWaitEnd;

/* From any thread: the next frame with @id (not 0) goes to the returned
 * waiter instead of the frame callback. NULL if the connection is closed
 * or closing, or when nobody reads and the peer hung up (or the owner
 * saw it hang up): the owner's context should notice that first
 * (dirty_connection_peer_gone ()); NULL too while frames a leader read
 * for the owner wait to be handled there (a HELLO's limits, say, may
 * change what it may send).
 * Register before sending the request. */
DirtyConnectionWaiter *dirty_connection_expect (DirtyConnection *self,
                                                guint64          id);

/* Gives up @waiter before waiting (its request could not be sent): its
 * id is no longer expected. Frees @waiter. */
void        dirty_connection_unexpect (DirtyConnection       *self,
                                       DirtyConnectionWaiter *waiter);

/* Blocks until @waiter's frame comes, @deadline (monotonic µs; 0: none)
 * passes, @cancellable is cancelled or the connection closes, reading
 * for itself and the other waiters while it leads. Frees @waiter. The
 * frame (transfer full) for WAIT_FRAME, else NULL with @error set for
 * WAIT_FAILED and maybe for WAIT_CLOSED.
 * With @more (a stream's first frame): the frames of the same id that
 * came in the same read as that frame, when this thread read it, are
 * appended to @more (transfer full) instead of going to the owner's
 * context; the frames after them still go there. */
DirtyFrame *dirty_connection_wait (DirtyConnection        *self,
                                   DirtyConnectionWaiter  *waiter,
                                   gint64                  deadline,
                                   GCancellable           *cancellable,
                                   DirtyConnectionWaitEnd *end,
                                   GQueue                 *more,
                                   GError                **error);

/* What an async wait ends with, in its context: @frame (transfer none)
 * for WAIT_FRAME, else NULL, with @error (or NULL) as
 * dirty_connection_wait () would set it, and in @more the frames
 * dirty_connection_wait ()'s @more would get (a stream's first frame,
 * read in this context): @func may take them (transfer full each), and
 * those it leaves are freed after it. */
typedef void (*DirtyConnectionWaitFunc) (DirtyConnection        *connection,
                                         DirtyFrame             *frame,
                                         DirtyConnectionWaitEnd  end,
                                         const GError           *error,
                                         GQueue                 *more,
                                         gpointer                user_data);

/* dirty_connection_wait () without blocking: @waiter waits in @context
 * (its thread must run it), which reads the socket when the waiters may,
 * and @func is called there once with the end. Frees @waiter; @destroy
 * frees @user_data after @func. */
void        dirty_connection_wait_async (DirtyConnection         *self,
                                         DirtyConnectionWaiter   *waiter,
                                         gint64                   deadline,
                                         GCancellable            *cancellable,
                                         GMainContext            *context,
                                         DirtyConnectionWaitFunc  func,
                                         gpointer                 user_data,
                                         GDestroyNotify           destroy);

/* Ends every waiter with @error (WAIT_FAILED): the peer said why it
 * closes. */
void        dirty_connection_fail_waiters (DirtyConnection *self,
                                           const GError    *error);

/* From the owner's context: whether the connection closed or is closing,
 * or the peer hung up while the owner left the reading to waiters: no
 * request should go out on it. A hang-up does not close it yet: the owner
 * takes the read side back and reads what is left, so frames already sent
 * reach their waiters (or the frame callback) before the close
 * (closed_func) comes. */
gboolean    dirty_connection_peer_gone (DirtyConnection *self);

/* From the owner's context: whether the owner reads the socket (TRUE,
 * the default) or leaves it to the waiters. Taking it back waits for the
 * leader to stop (it is woken at once). */
void        dirty_connection_set_owner_reads (DirtyConnection *self,
                                              gboolean         owner_reads);

G_END_DECLS
