/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Queues and routes calls: one bounded queue per app, fair between
 * client connections (a FIFO per client, the clients taking turns); a
 * call goes to the least-loaded live worker that has the app ready and a
 * free slot; when a slot frees, the worker takes the call whose turn it
 * is in the app (among those it serves) whose turn is the oldest.
 * Deadlines live in one min-heap (dirty-job-heap.h) with one timer armed
 * for the earliest. */

#include <glib-object.h>

#include "dirty-config.h"
#include "dirty-error.h"
#include "dirty-job.h"
#include "dirty-pool.h"
#include "dirty-status.h"

G_BEGIN_DECLS

/* After the deadline of a running call: how long the worker has to end
 * it, after CANCEL, before it is killed. */
#define DIRTY_SCHEDULER_GRACE_US (2 * G_USEC_PER_SEC)
/* At the deadline of a running call, before its client gets "timeout"
 * and its worker CANCEL: how long the worker has to answer BACKTRACE. */
#define DIRTY_SCHEDULER_BACKTRACE_WAIT_US (500 * 1000)

#define DIRTY_TYPE_SCHEDULER (dirty_scheduler_get_type ())
G_DECLARE_FINAL_TYPE (DirtyScheduler, dirty_scheduler, DIRTY, SCHEDULER, GObject)

/* Signals:
 * "idle" (): after dirty_scheduler_drain(), nothing is queued or running. */

DirtyScheduler *dirty_scheduler_new (DirtyConfig *config,
                                     DirtyPool   *pool);

/* Counts or worker states changed (for STATUS=): twice per call, so a
 * plain callback, not a signal (an emission costs ~700 instructions). */
typedef void (*DirtySchedulerChangedFunc) (DirtyScheduler *scheduler,
                                           gpointer        user_data);
/* @func: (nullable): the one callback for changes */
void     dirty_scheduler_set_changed_func (DirtyScheduler            *self,
                                           DirtySchedulerChangedFunc  func,
                                           gpointer                   user_data);

/* Queues @job (computing its deadline) or fails at once: unknown app,
 * no worker can serve it, queue full, shutting down. */
gboolean dirty_scheduler_submit   (DirtyScheduler  *self,
                                   DirtyJob        *job,
                                   GError         **error);
/* The client sent CANCEL: a queued job ends with "cancelled"; a running
 * one gets CANCEL on its worker, whose reply is forwarded. */
void     dirty_scheduler_cancel   (DirtyScheduler  *self,
                                   DirtyJob        *job);
/* The client read @n more chunks of @job's stream: forward the credit to
 * its worker, never beyond the window. */
void     dirty_scheduler_credit   (DirtyScheduler  *self,
                                   DirtyJob        *job,
                                   guint32          n);
/* The client went away (job->peer is already NULL). */
void     dirty_scheduler_abandon  (DirtyScheduler  *self,
                                   DirtyJob        *job);

/* Refuses new calls from now on; "idle" follows once all have ended. */
void     dirty_scheduler_drain    (DirtyScheduler  *self);
/* Ends every queued call with @code. */
void     dirty_scheduler_fail_queued (DirtyScheduler *self,
                                      DirtyError      code,
                                      const char     *message);

/* Reload: new apps get queues, removed apps' queued calls fail with
 * app-not-found; dirty_timeout and dirty_queue_size apply to new calls. */
void     dirty_scheduler_set_config (DirtyScheduler *self,
                                     DirtyConfig    *config);

/* Every app was reported on by at least one worker (ready or not). */
gboolean dirty_scheduler_is_settled (DirtyScheduler *self);
char    *dirty_scheduler_dup_status (DirtyScheduler *self);

/* For STATUS (dirty-status.c) */
DirtyPool *dirty_scheduler_get_pool    (DirtyScheduler *self);
gboolean   dirty_scheduler_is_draining (DirtyScheduler *self);
/* The configured apps' names, sorted (transfer container) */
GPtrArray *dirty_scheduler_list_apps   (DirtyScheduler *self);
/* @app's counters and, in @queued, its queue's length */
const DirtyAppStats *dirty_scheduler_get_app_stats (DirtyScheduler *self,
                                                    const char     *app,
                                                    guint          *queued);

G_END_DECLS
