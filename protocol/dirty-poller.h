/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One epoll set per GMainContext for every DirtyConnection on it (and any
 * other fd that is read in the same way: the arbiter's listeners and
 * signal pipe, a worker's backtrace pipe). A GSource per socket costs
 * the main loop a prepare, a query and a check per socket per
 * iteration: O(connections) for every frame, which with 10,000 idle
 * clients is most of the arbiter's time. Here the context polls one
 * fd, and an iteration costs only the sockets that are ready. A watch
 * belongs to the thread that runs its context. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DirtyWatch DirtyWatch;

/* @condition: G_IO_IN, G_IO_OUT, G_IO_HUP, G_IO_ERR as they happened. */
typedef void (*DirtyWatchFunc) (GIOCondition condition,
                                gpointer     user_data);

/* Watches @fd on @context (NULL: the global default context), not yet
 * for anything: see _set_events. */
DirtyWatch *dirty_watch_new        (GMainContext   *context,
                                    int             fd,
                                    DirtyWatchFunc  func,
                                    gpointer        user_data);
/* G_IO_IN and/or G_IO_OUT, or 0 to stop watching for now. HUP and ERR
 * are reported while either is set. */
void        dirty_watch_set_events (DirtyWatch     *watch,
                                    GIOCondition    events);
/* Stops the watch for good (before @fd is closed): @func is never called
 * again, even for an event already read in this iteration. */
void        dirty_watch_destroy    (DirtyWatch     *watch);

/* For a context this program made and runs itself (the arbiter's, a
 * worker's, the client's I/O thread's), before any source with an fd
 * is attached to it, nor a poll function set (else FALSE, and nothing
 * changes): its wakeup fd, which lives as long as the
 * context, joins the epoll set of its watches, and while the context
 * polls nothing but those two, its poll () is one epoll_wait () that
 * also reads the watches' events: one syscall a wake-up, where a
 * poll () and an epoll_wait () were. A source with an fd of its own
 * (a GSocket's, a GCancellable's) gets the plain poll () again while
 * it is attached. The context stays owned until it is freed. */
gboolean    dirty_poller_own_context (GMainContext *context);

G_END_DECLS
