/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One client connection: answers HELLO, turns REQUESTs into jobs for the
 * scheduler, handles CANCEL, enforces the in-flight cap, and sends each
 * job's replies back under the client's own id. When the client goes
 * away, its jobs are abandoned (queued ones dropped, running ones
 * cancelled on their worker). */

#include <gio/gio.h>

#include "dirty-frame.h"
#include "dirty-job.h"

G_BEGIN_DECLS

typedef struct _DirtyScheduler DirtyScheduler;

#define DIRTY_TYPE_PEER (dirty_peer_get_type ())
G_DECLARE_FINAL_TYPE (DirtyPeer, dirty_peer, DIRTY, PEER, GObject)

/* Signal "closed" (): the connection is gone and its jobs abandoned. */

DirtyPeer *dirty_peer_new            (GSocket           *socket,
                                      DirtyScheduler    *scheduler,
                                      const DirtyLimits *limits,
                                      guint64            serial);
void       dirty_peer_start          (DirtyPeer         *self);
guint64    dirty_peer_get_serial     (DirtyPeer         *self);
/* Bytes not yet written to the client */
gsize      dirty_peer_get_queued_bytes (DirtyPeer       *self);

typedef struct _DirtyArbiter DirtyArbiter;
/* The arbiter that MANAGE messages act on (unowned: it outlives its
 * peers). Without one, MANAGE fails with invalid-argument. */
void       dirty_peer_set_arbiter    (DirtyPeer         *self,
                                      DirtyArbiter      *arbiter);

/* Sends @frame for @job under the client's id. After a terminal frame the
 * job is no longer the peer's: job->peer is cleared. */
void       dirty_peer_deliver        (DirtyPeer         *self,
                                      DirtyJob          *job,
                                      DirtyFrame        *frame,
                                      gboolean           terminal);
/* Terminal ERROR for @job made from @error. */
void       dirty_peer_deliver_error  (DirtyPeer         *self,
                                      DirtyJob          *job,
                                      const GError      *error,
                                      gint64             worker_pid);

/* Restart handoff (dirty-handoff.c). From hold on, the peer acts only on
 * CANCEL and CREDIT of its calls still running (and reads nothing once
 * none runs); every other frame is kept, unprocessed, for the next
 * arbiter. */
void       dirty_peer_hold           (DirtyPeer         *self);
/* Gives the connection up: appends the kept frames and any partial frame
 * to @unread, the fds (memfds) they carry to @fds (in order), and returns
 * a close-on-exec duplicate of its fd (-1 if it is closed). No "closed"
 * signal follows. */
int        dirty_peer_detach         (DirtyPeer         *self,
                                      GByteArray        *unread,
                                      GArray            *fds);
/* Before start: bytes a previous arbiter read off this connection and
 * did not act on (dirty_peer_detach() there), parsed first, with the fds
 * their frames carry (@fds, nullable: taken, the array emptied). */
void       dirty_peer_set_unread     (DirtyPeer         *self,
                                      GBytes            *unread,
                                      GArray            *fds);

G_END_DECLS
