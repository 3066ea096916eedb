/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Accepting on a listening socket, for the arbiter's clients and the
 * unit launcher's workers alike: the listener is a watch in the
 * connections' epoll set (the loop then polls nothing of its own, see
 * dirty_poller_own_context ()); at most a batch is accepted per turn of
 * the loop; and after a failure that retrying cannot mend at once (out
 * of descriptors: EMFILE, ENFILE, ENOBUFS) accepting pauses, since the
 * listener stays readable and the loop would otherwise spin on it. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DirtyAcceptor DirtyAcceptor;

/* @fd: a new connection, non-blocking and close-on-exec, now the
 * callee's to close */
typedef void (*DirtyAcceptFunc) (int      fd,
                                 gpointer user_data);

/* Accepts on @listen_fd (not owned) on the thread-default context, at
 * most @batch connections per turn of the loop. @what names the
 * listener in the log ("accept: " for the clients' one, say). */
DirtyAcceptor *dirty_acceptor_new  (int              listen_fd,
                                    guint            batch,
                                    const char      *what,
                                    DirtyAcceptFunc  func,
                                    gpointer         user_data);
/* Stops accepting for good (before @listen_fd is closed) */
void           dirty_acceptor_free (DirtyAcceptor   *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyAcceptor, dirty_acceptor_free)

G_END_DECLS
