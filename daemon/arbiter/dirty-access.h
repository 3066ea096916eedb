/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who may talk to the arbiter: the listening socket's mode and group
 * (socket_mode, socket_group), and allowed_users / allowed_groups checked
 * with SO_PEERCRED on every accepted connection. A refused peer gets an
 * ERROR frame (id 0, permission-denied) before the close, and a log record
 * with DIRTY_PEER_UID / DIRTY_PEER_PID. */

#include <gio/gio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "dirty-config.h"
#include "dirty-error.h"

G_BEGIN_DECLS

/* Resolves user names or numeric uids (@items, NULL-terminated) to uids
 * (a new GArray of uid_t, in @out). Fails naming the first unknown name. */
gboolean dirty_access_resolve_users  (char    **items,
                                      GArray  **out,
                                      GError  **error);
/* The same for group names or numeric gids (gid_t). */
gboolean dirty_access_resolve_groups (char    **items,
                                      GArray  **out,
                                      GError  **error);
/* One group name or gid. */
gboolean dirty_access_resolve_group  (const char  *item,
                                      gid_t       *out,
                                      GError     **error);

/* The mode the arbiter gives a socket it binds itself when socket_mode is
 * not set: 0660 for root's (system) socket, 0600 for a user's. */
guint    dirty_access_default_socket_mode (void);

/* Applies socket_mode / socket_group to the socket file at @path (called
 * between bind() and listen(), so nobody connects before). */
gboolean dirty_access_apply_socket   (DirtyConfig  *config,
                                      const char   *path,
                                      GError      **error);

/* Checks the peer's credentials (@cred: its SO_PEERCRED, NULL if they
 * could not be read) against allowed_users and allowed_groups; everyone
 * is allowed when both are empty. On refusal, logs it and sets @error
 * (DIRTY_ERROR_PERMISSION_DENIED, with the message for the wire): the
 * caller passes it to dirty_access_refuse(). */
gboolean dirty_access_admit          (DirtyConfig        *config,
                                      const struct ucred *cred,
                                      guint64             serial,
                                      GError            **error);

/* Sends ERROR (id 0, @error's code and message) to a peer that is not
 * admitted, on @fd (a connected socket, non-blocking), which it takes:
 * closed once the peer has read it (or after a short delay). A @fd of
 * -1 is ignored. Costs no GSource per peer: a flood of refusals is
 * cheap. */
void     dirty_access_refuse         (int                 fd,
                                      const GError       *error);
G_END_DECLS
