/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the pieces of DirtyWorkerProc share; not installed:
 *   dirty-worker-proc.c          the object: spawning a worker or starting
 *                                its unit, the watchdog, its exit, the
 *                                calls it runs, and the getters
 *   dirty-worker-proc-frames.c   the frames a worker sends, read and acted on
 *   dirty-worker-proc-handoff.c  the restart handoff (unit mode): release
 *                                to the next arbiter, adopt from the last */

#include "dirty-connection.h"
#include "dirty-worker-proc.h"

G_BEGIN_DECLS

typedef struct {
  DirtyAppState  state;
  char          *error;
} AppStatus;

struct _DirtyWorkerProc
{
  GObject               parent_instance;

  guint                 id;          /* worker_id K: its slot in the pool */
  guint                 threads;
  DirtyWorkerProcState  state;
  GSubprocess          *process;
  gint64                pid;
  gint64                started;     /* monotonic us */
  DirtyConnection      *connection;
  DirtyLimits           limits;
  DirtyTimer           *watchdog;
  GHashTable           *apps;        /* name -> AppStatus */
  GHashTable           *in_flight;   /* &job->worker_rid -> DirtyJob (ref) */
  DirtyWorkerProcReplyFunc reply_func;
  gpointer              reply_data;
  guint64               next_rid;    /* never reused: late replies are recognised */
  guint64               served;      /* calls it ended, for STATUS */
  guint64               errors;      /* of those, ended with ERROR */
  gboolean              terminating; /* sent SIGTERM: its exit is expected */
  gboolean              killed;      /* sent SIGKILL, and why was logged */
  gboolean              retiring;    /* takes no new calls (reload, scaling down) */
  /* unit mode: the unit's launcher (NULL in fork mode), and the settings
   * the worker is sent once it connects */
  DirtyUnitLauncher    *launcher;
  GStrv                 unit_apps;
  GStrv                 unit_app_path;
  char                 *hooks;       /* hooks_module, for the unit's HELLO */
  /* restart handoff: taken over from the previous arbiter (it said
   * HELLO to that one), and the bytes it read off it and not acted on */
  gboolean              adopted;
  GBytes               *unread;
};

enum {
  SIGNAL_APPS_CHANGED,
  SIGNAL_BACKTRACE,
  SIGNAL_LOST,
  SIGNAL_EXITED,
  N_SIGNALS
};

/* dirty-worker-proc.c */
extern guint     dirty_worker_proc_signals[N_SIGNALS];
DirtyWorkerProc *dirty_worker_proc_new          (guint                         worker_id,
                                                 const DirtyWorkerProcOptions *options);
/* Logs @message with the worker's id and pid */
void             dirty_worker_proc_log          (DirtyWorkerProc              *self,
                                                 GLogLevelFlags                level,
                                                 const char                   *message);
gboolean         dirty_worker_proc_watchdog_cb  (gpointer                      user_data);
/* Sends @signum to the worker's process group (fork mode) or unit */
void             dirty_worker_proc_signal_group (DirtyWorkerProc              *self,
                                                 int                           signum);
/* Stops using the worker; its calls are taken over by the "lost" handler */
void             dirty_worker_proc_mark_lost    (DirtyWorkerProc              *self,
                                                 gboolean                      close_connection);

/* dirty-worker-proc-frames.c */
void             dirty_worker_proc_frame_cb     (DirtyConnection              *connection,
                                                 DirtyFrame                   *frame,
                                                 gpointer                      user_data);

G_END_DECLS
