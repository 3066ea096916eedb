/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The threads that run a worker's %DIRTY_ACTION_SYNC calls: a fixed set,
 * started at once, taking items from one queue. Not installed.
 *
 * Why not GThreadPool: its queue signals a waiting thread while it still
 * holds the queue's lock, so the woken thread first blocks on that lock
 * and then has to wake the pusher's side again: five futex calls for
 * every call handed over (strace), where one wake-up and one wait do.
 * Here the lock is dropped before the wake-up. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DirtyWorkerPool DirtyWorkerPool;

/* Starts @n_threads threads that call @func (item, @user_data) for each
 * pushed item. @free_item frees the items dropped by an immediate free. */
DirtyWorkerPool *dirty_worker_pool_new  (guint            n_threads,
                                         GFunc            func,
                                         gpointer         user_data,
                                         GDestroyNotify   free_item,
                                         GError         **error);
/* Queues @item (any thread). FALSE once the pool is being freed: the
 * item is then the caller's still. */
gboolean         dirty_worker_pool_push (DirtyWorkerPool *pool,
                                         gpointer         item);
/* Stops the pool. @immediate drops the items not started yet; @wait
 * returns only once every thread has returned (after the items it kept).
 * Without @wait a thread stuck in @func keeps what it needs alive. */
void             dirty_worker_pool_free (DirtyWorkerPool *pool,
                                         gboolean         immediate,
                                         gboolean         wait);

G_END_DECLS
