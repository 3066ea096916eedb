/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Restart without losing connections (README, "Restart"): on SIGTERM
 * the arbiter lets its calls finish, then gives every client connection
 * to systemd's fd store (FDSTORE=1, FDNAME=client), with one memfd
 * (FDNAME=handoff) holding the bytes it had read off each connection but
 * not acted on, keyed by the socket's inode. systemd passes them to the
 * next arbiter with the listening socket; it takes them back, removes
 * them from the store (FDSTOREREMOVE=1) and serves them. A stop drops
 * the store (no restart job is queued), closing them. */

#include <gio/gio.h>

G_BEGIN_DECLS

/* The names of what the store holds, as LISTEN_FDNAMES shows them */
#define DIRTY_HANDOFF_CLIENT_NAME "client"
#define DIRTY_HANDOFF_STATE_NAME  "handoff"

typedef struct {
  int     fd;       /* a connected AF_UNIX stream socket */
  GBytes *unread;   /* (nullable): bytes to parse before the socket's */
} DirtyHandoffConn;

/* Frees @conn's unread bytes (not its fd): a GArray clear func */
void    dirty_handoff_conn_clear (DirtyHandoffConn *conn);

/* How many fds systemd's store takes for this service: $FDSTORE (systemd
 * 254 sets it from FileDescriptorStoreMax=; the shipped unit sets it for
 * older ones), 0 when unset, invalid or not under systemd. Unsets it, so
 * workers do not inherit it. */
guint   dirty_handoff_read_store_max (void);

/* Sends @conns (a GArray of DirtyHandoffConn) to the store and waits
 * until systemd has them. Closes every fd, stored or not. Returns how
 * many connections were stored; on an error, 0 and @error. */
guint   dirty_handoff_store (GArray  *conns,
                             GError **error);

/* At start: the stored connections (fds passed as "client") with their
 * unread bytes from @state_fd ("handoff", -1 if none; closed here), as
 * a GArray of DirtyHandoffConn (fds the caller's; unread freed with the
 * array). Fds that are not connected Unix stream sockets are closed and
 * left out. Then removes both names from the store. */
GArray *dirty_handoff_take (GArray *client_fds,
                            int     state_fd);

G_END_DECLS
