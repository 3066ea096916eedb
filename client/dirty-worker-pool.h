/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The threads that run a worker's %DIRTY_ACTION_SYNC calls: a fixed set,
 * started at once, taking items from one queue, and taking turns with
 * the worker's own thread at running its main context. Not installed.
 *
 * Leader and followers: one thread at a time runs the context. A pool
 * thread that reads a call there claims it, leaves the context and runs
 * the call itself, keeping its turn: the call goes from the socket to
 * the action on one thread, and no other thread is woken (on a VM whose
 * idle vCPUs halt, the wake-up of a thread the call was handed to cost
 * a tenth of a round trip: benchmarks/HISTORY.md, session 18). Nobody
 * runs the context while that call runs, so the worker's own thread
 * watches the socket and a timer meanwhile: it takes the turn at once
 * when a frame comes (CANCEL, CREDIT, another call) and 1 ms into a call
 * otherwise (heartbeats, deadlines, signals). It never runs calls
 * itself: one it reads goes with its turn to an idle pool thread, and
 * it keeps the turn only while every pool thread is busy (a thread that
 * goes idle meanwhile wakes the context for it). A thread whose call
 * ends with older calls queued for nobody runs those before it reads.
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
/* Runs @context until @loop quits (g_main_loop_quit ()): @loop must
 * have been made running (g_main_loop_new (context, TRUE)). The pool's
 * threads take turns at it unless the calling thread owns @context (a
 * context pushed as its thread-default): then only the caller runs it.
 * @input_fd is the socket whose input @context reads. Returns with no
 * pool thread running @context, nor running it again. */
void             dirty_worker_pool_run  (DirtyWorkerPool *pool,
                                         GMainContext    *context,
                                         GMainLoop       *loop,
                                         int              input_fd);
/* Sets @func, called with the pool's user_data, to run in a pool
 * thread's turn once a call it ran there has ended, before the thread
 * runs the context again, with the context held: what the call left
 * for the context (forgetting it) is then done without an iteration of
 * the main loop for it alone. Set before run(). */
typedef void (*DirtyWorkerPoolAfterCall) (gpointer user_data);
void             dirty_worker_pool_set_after_call (DirtyWorkerPool          *pool,
                                                   DirtyWorkerPoolAfterCall  func);
/* From a source's dispatch: when a pool thread is running the context,
 * it takes @item to run once this dispatch's turn ends; when the caller
 * of run() is, @item goes with the next turn to an idle pool thread.
 * Then TRUE is returned; otherwise FALSE (push it). */
gboolean         dirty_worker_pool_claim (DirtyWorkerPool *pool,
                                          gpointer         item);
/* From an item's function, before it sends the reply of a call claimed
 * (dirty_worker_pool_claim ()): input that comes after the reply is the
 * next call's, which this thread reads itself once the item returns. */
void             dirty_worker_pool_replying (void);
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
