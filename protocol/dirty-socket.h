/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/socket.h>

#include <glib.h>

G_BEGIN_DECLS

/* The arbiter's socket path, the same rule for the daemon and its clients:
 * $DIRTY_ARBITER_SOCKET, else $XDG_RUNTIME_DIR/dirty-arbiter.sock for a
 * user, else /run/dirty-arbiter.sock for root. (transfer full) */
char *dirty_socket_default_path (void);

/* Whether @path fits a Unix socket address (sun_path, 107 bytes and its
 * NUL). GLib truncates a longer one without a word: a daemon would bind,
 * and a client connect to, some other path. G_IO_ERROR_FILENAME_TOO_LONG
 * saying so if not (the message does not repeat the path);
 * G_IO_ERROR_INVALID_FILENAME for an empty path. */
gboolean dirty_socket_check_path (const char  *path,
                                  GError     **error);

/* Gives @msg control data for one SCM_RIGHTS message of @n_fds (at least
 * 1) fds and returns where they go; g_free (@msg->msg_control) once it
 * is sent. For every sender of fds: frames, and sd_notify's FDSTORE=1. */
int  *dirty_socket_add_rights   (struct msghdr *msg,
                                 guint          n_fds);

/* poll()'s timeout until @deadline (monotonic µs; 0: none, -1 then) */
int   dirty_socket_poll_timeout_ms (gint64 deadline);

G_END_DECLS
