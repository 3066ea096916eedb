/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the pieces of DirtyScheduler share; not installed:
 *   dirty-scheduler.c           the object, dispatch to workers,
 *                               availability, worker events and the
 *                               client calls
 *   dirty-scheduler-queue.c     the per-app queues: a FIFO per client
 *                               connection, the FIFOs taking turns
 *   dirty-scheduler-deadline.c  deadlines and grace ends: the heap, its
 *                               timer, and a timed-out call's backtrace */

#include "dirty-scheduler.h"
#include "dirty-job-heap.h"
#include "dirty-timer.h"

G_BEGIN_DECLS

typedef struct _DirtyAppQueue DirtyAppQueue;

/* One client connection's calls waiting for one app, oldest first. */
struct _DirtyClientQueue
{
  DirtyAppQueue *app;
  gconstpointer  client;      /* its peer: the key in app->clients */
  GQueue         jobs;        /* of DirtyJob (ref), linked through job->queue_link */
  GList          turn_link;   /* embedded: its place in app->turns */
};

/* An app's queue is fair between clients: each connection with calls
 * waiting has its own FIFO, and the FIFOs take turns (round robin), one
 * call per turn. A client that queued thousands of calls delays another
 * client's call by at most one of its own, not by its whole backlog.
 * Queueing, dispatching and removing a call are all O(1). */
struct _DirtyAppQueue
{
  char       *name;
  GHashTable *clients;     /* peer -> DirtyClientQueue, those with calls waiting */
  GQueue      turns;       /* of DirtyClientQueue: the head's oldest call goes next */
  guint       n_jobs;
  DirtyAppStats *stats;    /* for STATUS (ref) */
};

struct _DirtyScheduler
{
  GObject      parent_instance;

  DirtyConfig *config;
  DirtyPool   *pool;
  GHashTable  *apps;       /* name -> DirtyAppQueue */
  guint        n_queued;
  guint64      next_serial;

  /* Every pending deadline or grace end, ordered, with one timer armed
   * for the first: 100,000 queued calls cost no more than one. */
  DirtyJobHeap timers;
  guint64      next_timer_seq;
  DirtyTimer  *timer;

  gboolean     draining;
  gboolean     idle_emitted;

  DirtySchedulerChangedFunc changed_func;
  gpointer     changed_data;
};

/* dirty-scheduler-queue.c */
DirtyAppQueue *dirty_app_queue_new          (const char     *name);
void           dirty_app_queue_free         (gpointer        data);
void           dirty_app_queue_push         (DirtyAppQueue  *queue,
                                             DirtyJob       *job);
DirtyJob      *dirty_app_queue_peek         (DirtyAppQueue  *queue);
void           dirty_app_queue_end_turn     (DirtyJob       *job);
/* Takes @job off its queue and drops the queue's reference */
void           dirty_scheduler_queue_remove (DirtyScheduler *self,
                                             DirtyJob       *job);
void           dirty_scheduler_set_app_not_found (DirtyScheduler  *self,
                                                  const char      *name,
                                                  GError         **error);

/* dirty-scheduler.c */
void     dirty_scheduler_fail_job_full       (DirtyScheduler  *self,
                                              DirtyJob        *job,
                                              DirtyError       code,
                                              const char      *message,
                                              gint64           worker_pid,
                                              const char      *detail);
void     dirty_scheduler_fail_job            (DirtyScheduler  *self,
                                              DirtyJob        *job,
                                              DirtyError       code,
                                              const char      *message,
                                              gint64           worker_pid);
void     dirty_scheduler_emit_changed        (DirtyScheduler  *self);
void     dirty_scheduler_check_idle          (DirtyScheduler  *self);

/* dirty-scheduler-deadline.c */
void     dirty_scheduler_set_timer           (DirtyScheduler  *self,
                                              DirtyJob        *job,
                                              gint64           when);
gint64   dirty_scheduler_deadline            (DirtyScheduler  *self,
                                              DirtyJob        *job);
gboolean dirty_scheduler_timer_cb            (gpointer         user_data);
void     dirty_scheduler_worker_backtrace_cb (DirtyPool       *pool,
                                              DirtyWorkerProc *worker,
                                              gpointer         job_ptr,
                                              const char      *backtrace,
                                              const char      *why,
                                              DirtyScheduler  *self);

G_END_DECLS
