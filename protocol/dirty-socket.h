/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The arbiter's socket path, the same rule for the daemon and its clients:
 * $DIRTY_ARBITER_SOCKET, else $XDG_RUNTIME_DIR/dirty-arbiter.sock for a
 * user, else /run/dirty-arbiter.sock for root. (transfer full) */
char *dirty_socket_default_path (void);

G_END_DECLS
