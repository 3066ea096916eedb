/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A framed, non-blocking connection over a stream socket: reads frames and
 * hands them to a callback, queues frames for writing and flushes them in
 * as few syscalls as it can (one sendmsg of many frames when the peer is
 * behind; a frame carrying fds starts its own). Used by the client's I/O
 * thread, the arbiter and the worker.
 *
 * Use it from the GMainContext it was started on, except
 * dirty_connection_send_from_thread(), which any thread may call: the
 * write side is under a lock, the read side belongs to that context
 * unless the owner leaves it to threads waiting for a reply
 * (dirty-connection-sync.h). */

#include <gio/gio.h>

#include "dirty-frame.h"

G_BEGIN_DECLS

#define DIRTY_TYPE_CONNECTION (dirty_connection_get_type ())
G_DECLARE_FINAL_TYPE (DirtyConnection, dirty_connection, DIRTY, CONNECTION, GObject)

/* Called for each complete frame, in order. */
typedef void (*DirtyConnectionFrameFunc)  (DirtyConnection *connection,
                                           DirtyFrame      *frame,
                                           gpointer         user_data);
/* Called exactly once when the connection is closed for any reason: the
 * peer hung up (@error NULL at a frame boundary, set mid-frame), a read or
 * write failed, a frame broke the protocol, or dirty_connection_close() /
 * dirty_connection_fail() was called. No frame callback follows it. */
typedef void (*DirtyConnectionClosedFunc) (DirtyConnection *connection,
                                           const GError    *error,
                                           gpointer         user_data);

/* Called, on the owner's context, for a frame over the size limits
 * (max_body, max_attachments, max_fd_payload) but well-formed otherwise:
 * TRUE when the owner answered it itself, and the frame is dropped, its
 * bytes read past without being kept and its fds closed; FALSE fails the
 * connection with @error, as without the callback. Over max_body or
 * max_attachments this comes with the header, before the body is read;
 * over max_fd_payload, with the complete frame. */
typedef gboolean (*DirtyConnectionOversizedFunc) (DirtyConnection        *connection,
                                                  const DirtyFrameHeader *header,
                                                  const GError           *error,
                                                  gpointer                user_data);

/* Takes a reference on @socket and makes it non-blocking. @limits is
 * copied; NULL means the defaults. */
DirtyConnection *dirty_connection_new (GSocket           *socket,
                                       const DirtyLimits *limits);

void      dirty_connection_start     (DirtyConnection           *self,
                                      GMainContext              *context,
                                      DirtyConnectionFrameFunc   frame_func,
                                      DirtyConnectionClosedFunc  closed_func,
                                      gpointer                   user_data);

/* Before start: frames over the limits go to @func (with the start's
 * user_data) before they fail the connection. */
void      dirty_connection_set_oversized_func (DirtyConnection              *self,
                                               DirtyConnectionOversizedFunc  func);

/* Queues @frame (a reference is taken). Dropped if the connection is
 * closed or closing. */
void      dirty_connection_send      (DirtyConnection *self,
                                      DirtyFrame      *frame);
/* The same, with @id and @aux in the header written instead of @frame's
 * own (@frame is not changed): a frame forwarded under another id, or a
 * request sent under its call's, needs no copy. */
void      dirty_connection_send_with_id (DirtyConnection *self,
                                         DirtyFrame      *frame,
                                         guint64          id,
                                         guint32          aux);

/* The same from any thread (the others are for the thread that runs the
 * connection's context). Written at once when nothing is queued before
 * it; otherwise the connection's context writes it, in order. FALSE when
 * it was dropped (the connection is closed or closing): the frame never
 * left, and a request may still go out on another connection. */
gboolean  dirty_connection_send_from_thread (DirtyConnection *self,
                                             DirtyFrame      *frame);
gboolean  dirty_connection_send_from_thread_with_id (DirtyConnection *self,
                                                     DirtyFrame      *frame,
                                                     guint64          id,
                                                     guint32          aux);

/* Batches, for the thread that owns the connections it sends on: between
 * dirty_connection_batch_begin () and _end () (they nest), a frame
 * dirty_connection_send () would write at once is queued instead, and
 * dirty_connection_batch_flush () or the outermost _end () writes each
 * connection's queue in one sendmsg. A connection's reads are a batch
 * per read(): the frames one read brings, forwarded or answered, leave
 * in one write per connection before the next read. Code that waits
 * for a queue to drain flushes first. */
void      dirty_connection_batch_begin (void);
void      dirty_connection_batch_flush (void);
void      dirty_connection_batch_end   (void);
/* Runs @func (@data, NULL) at this thread's next batch flush, or now if
 * no batch is open: a wake-up of another thread for what a read
 * brought, once per read rather than once per frame. */
void      dirty_connection_batch_defer (GFunc    func,
                                        gpointer data);

/* Closes at once; queued frames are dropped. */
void      dirty_connection_close     (DirtyConnection *self);

/* Stops reading, sends an ERROR frame for @id (0: the connection) made
 * from @error, closes once it is written (or after a short bound), and
 * reports @error to the closed callback. */
void      dirty_connection_fail      (DirtyConnection *self,
                                      guint64          id,
                                      const GError    *error);

/* Restart handoff (daemon/arbiter/dirty-handoff.c). */

/* Before start: @unread holds bytes that an earlier owner of the socket
 * read but did not act on (a frame boundary first). They are parsed, as
 * if just read, before the socket itself. */
void      dirty_connection_set_unread (DirtyConnection *self,
                                       GBytes          *unread);
/* Reads nothing more (the kernel buffers what the peer sends); writing
 * goes on. */
void      dirty_connection_pause_reading (DirtyConnection *self);
/* Gives the connection up to another owner: appends the bytes read but
 * not yet delivered as a frame to @unread, stops all I/O without a
 * closed callback, and returns a close-on-exec duplicate of the socket's
 * fd (-1 and errno when closed or out of fds; EBUSY when fds were
 * received that the bytes' frames carry). Frames still queued for
 * writing are dropped: wait for dirty_connection_get_queued_bytes() 0. */
int       dirty_connection_detach    (DirtyConnection *self,
                                      GByteArray      *unread);
/* The same with the fds those bytes' frames carried: set_unread_with_fds
 * takes @fds's fds (the array is emptied) and gives them, in order, to
 * the frames parsed from @unread; detach_with_fds appends them to @fds
 * (the frame being assembled's first) instead of failing with EBUSY. */
void      dirty_connection_set_unread_with_fds (DirtyConnection *self,
                                                GBytes          *unread,
                                                GArray          *fds);
int       dirty_connection_detach_with_fds     (DirtyConnection *self,
                                                GByteArray      *unread,
                                                GArray          *fds);

gboolean  dirty_connection_is_closed (DirtyConnection *self);
gsize     dirty_connection_get_queued_bytes (DirtyConnection *self);
GSocket  *dirty_connection_get_socket (DirtyConnection *self);
const DirtyLimits *dirty_connection_get_limits (DirtyConnection *self);

G_END_DECLS
