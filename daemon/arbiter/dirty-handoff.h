/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Restart without losing connections (README, "Restart"): on SIGTERM
 * the arbiter lets its calls finish, then gives every client connection
 * to systemd's fd store (FDSTORE=1, FDNAME=client), with one memfd
 * (FDNAME=handoff) holding the bytes it had read off each connection but
 * not acted on, keyed by the socket's inode. systemd passes them to the
 * next arbiter with the listening socket; it takes them back, removes
 * them from the store (FDSTOREREMOVE=1) and serves them. A stop drops
 * the store (no restart job is queued), closing them. In unit mode the
 * idle workers' connections go the same way (FDNAME=worker-N, their
 * facts in the memfd): their units run on across the restart. */

#include <gio/gio.h>

G_BEGIN_DECLS

/* The names of what the store holds, as LISTEN_FDNAMES shows them */
#define DIRTY_HANDOFF_CLIENT_NAME "client"
#define DIRTY_HANDOFF_STATE_NAME  "handoff"
/* Unit mode: worker N's connection is "worker-N" (the worker keeps
 * running in its own unit across the restart) */
#define DIRTY_HANDOFF_WORKER_PREFIX "worker-"
/* The memfds that frames in a connection's unread bytes carry are
 * "attach-N" (each file once; the state memfd says whose they are) */
#define DIRTY_HANDOFF_ATTACH_PREFIX "attach-"

/* A stored "attach-N": N and its fd */
typedef struct {
  int   fd;
  guint id;
} DirtyHandoffAttach;
/* The N of the name "attach-N", 0 if @name is not one */
guint   dirty_handoff_attach_id_from_name (const char *name);

typedef struct {
  int     fd;       /* a connected AF_UNIX stream socket */
  GBytes *unread;   /* (nullable): bytes to parse before the socket's */
  GArray *fds;      /* (nullable): the fds (memfds) @unread's frames carry,
                     * in order; owned: closed with the array */
  GArray *attach_ids;  /* (nullable, private): their "attach-N" */
  gboolean fits;       /* (private): there is room for it in the store */
} DirtyHandoffConn;

/* Frees @conn's unread bytes and closes its fds (not @fd): a GArray
 * clear func */
void    dirty_handoff_conn_clear (DirtyHandoffConn *conn);

/* A unit-mode worker's connection: its id (the N of dirty-worker@N) and
 * what the next arbiter needs to serve it without a new HELLO: an a{sv}
 * of facts that dirty-worker-proc-handoff.c writes and reads ("unread"
 * ay: the bytes read off it and not acted on; the rest see there). */
typedef struct {
  int       fd;
  guint     id;
  GVariant *facts;   /* (nullable) a{sv} */
} DirtyHandoffWorker;

/* Frees @worker's facts (not its fd): a GArray clear func */
void    dirty_handoff_worker_clear (DirtyHandoffWorker *worker);

/* The id N of the name "worker-N", 0 if @name is not one */
guint   dirty_handoff_worker_id_from_name (const char *name);

/* How many fds systemd's store takes for this service: $FDSTORE (systemd
 * 254 sets it from FileDescriptorStoreMax=; the shipped unit sets it for
 * older ones), 0 when unset, invalid or not under systemd. Unsets it, so
 * workers do not inherit it. */
guint   dirty_handoff_read_store_max (void);

/* Sends @workers (a GArray of DirtyHandoffWorker, may be empty) and
 * @conns (a GArray of DirtyHandoffConn) to the store, at most @max fds
 * with the state memfd and the conns' memfds (a conn whose memfds do not
 * fit is not stored), and waits until systemd has them. Closes every
 * fd, stored or not. Returns how many client connections were stored
 * (*@workers_stored: workers); on an error, 0 and @error. */
guint   dirty_handoff_store (GArray  *workers,
                             GArray  *conns,
                             guint    max,
                             guint   *workers_stored,
                             GError **error);

/* What the previous arbiter wrote in the "handoff" memfd */
typedef struct _DirtyHandoffState DirtyHandoffState;

/* Reads @state_fd ("handoff"; -1: none) and closes it. Never NULL: an
 * unreadable or unknown state is an empty one (logged). */
DirtyHandoffState *dirty_handoff_state_read (int state_fd);
void               dirty_handoff_state_free (DirtyHandoffState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyHandoffState, dirty_handoff_state_free)

/* At start: the stored connections (fds passed as "client") with their
 * unread bytes from @state and the memfds their frames carry (from
 * @attach_fds: DirtyHandoffAttach, nullable; closed, each connection
 * gets duplicates), as a GArray of DirtyHandoffConn (fd the caller's;
 * unread and fds freed with the array). Fds that are not connected Unix
 * stream sockets are closed and left out. Then removes "client",
 * "handoff" and every "attach-N" from the store. */
GArray *dirty_handoff_take (GArray            *client_fds,
                            GArray            *attach_fds,
                            DirtyHandoffState *state);

/* The same for the workers' connections (@worker_fds: DirtyHandoffWorker
 * with fd and id set): each gets its facts from @state; one without
 * facts, or not a connected Unix stream socket, is closed (the worker
 * exits when its connection closes). Removes each "worker-N" from the
 * store. */
GArray *dirty_handoff_take_workers (GArray            *worker_fds,
                                    DirtyHandoffState *state);

G_END_DECLS
