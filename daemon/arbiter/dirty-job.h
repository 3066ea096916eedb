/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One client call as the arbiter tracks it, from arrival to its single
 * terminal reply. A plain reference-counted struct (there can be 100,000
 * of them); the scheduler, the client's peer and the worker running it
 * each hold a reference. */

#include <glib.h>

#include "dirty-frame.h"

G_BEGIN_DECLS

typedef struct _DirtyPeer DirtyPeer;
typedef struct _DirtyWorkerProc DirtyWorkerProc;
typedef struct _DirtyClientQueue DirtyClientQueue;
typedef struct _DirtyAppStats DirtyAppStats;

typedef enum {
  DIRTY_JOB_QUEUED,     /* in its app's queue */
  DIRTY_JOB_RUNNING,    /* sent to a worker, no terminal reply yet */
  DIRTY_JOB_DONE,       /* ended (reply, timeout, cancel, worker lost) */
} DirtyJobState;

enum {
  DIRTY_JOB_BACKTRACE_NONE,
  DIRTY_JOB_BACKTRACE_WAITING,
  DIRTY_JOB_BACKTRACE_DONE,
};

typedef struct {
  DirtyJobState    state;
  /* The client waiting for the reply; NULL once it was answered or
   * went away. (unowned) */
  DirtyPeer       *peer;
  guint64          client_id;   /* the client's id (also the peer's map key) */
  char            *app;
  char            *action;
  DirtyAppStats   *stats;       /* (nullable): its app's counters (ref), once queued */
  DirtyFrame      *frame;       /* the client's REQUEST, forwarded as is */
  guint64          serial;      /* arrival order among all jobs */
  gint64           arrival;     /* monotonic us */
  gint64           deadline;    /* monotonic us, 0 = none */

  /* The deadline structure: the job's next timer (its deadline, or the
   * end of the grace after a CANCEL) and its place there. */
  gint64           timer_at;
  guint64          timer_seq;
  guint            timer_pos;   /* in the heap (dirty-job-heap.h); 0 = none */

  /* (unowned) while queued: its client's queue for its app (the
   * scheduler's); queue_link is its place there, for O(1) removal */
  DirtyClientQueue *queue;
  GList            queue_link;

  DirtyWorkerProc *worker;      /* (unowned) while running */
  guint64          worker_rid;  /* the worker-side id W */
  gboolean         cancel_sent; /* CANCEL W was sent */
  gboolean         in_grace;    /* the worker is killed at timer_at */
  /* At its deadline a running call's worker is asked for a BACKTRACE of
   * it (DIRTY_JOB_BACKTRACE_WAITING until the answer or timer_at); the
   * text, or why there is none, goes into its timeout error and the
   * journal. */
  guint8           backtrace_state;
  char            *backtrace;

  /* Streams (REQUEST flag STREAM): CHUNKs the worker may still send. It
   * starts at the window, drops by one per CHUNK forwarded, and grows by
   * the client's CREDIT, never above the window: so at most a window of
   * chunks per stream waits in the arbiter, however slow the reader. */
  gboolean         streaming;
  guint32          window;
  guint32          credit;
} DirtyJob;

/* @app, @action: (transfer full): the strings the request scan made */
DirtyJob *dirty_job_new   (DirtyPeer  *peer,
                           guint64     client_id,
                           char       *app,
                           char       *action,
                           DirtyFrame *frame);
DirtyJob *dirty_job_ref   (DirtyJob   *job);
void      dirty_job_unref (DirtyJob   *job);

/* ms left to the deadline, at least 1; 0 when there is no deadline (the
 * value a REQUEST's aux carries to the worker). */
guint32   dirty_job_remaining_ms (DirtyJob *job,
                                  gint64    now);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyJob, dirty_job_unref)

G_END_DECLS
