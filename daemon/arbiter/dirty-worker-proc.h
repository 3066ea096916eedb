/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The arbiter's view of one dirty-worker process: spawning it with its end
 * of a socketpair at fd 3, its HELLO/STATUS app states, the heartbeat
 * watchdog, the calls it runs (slots = dirty_threads) under its own ids,
 * and its exit. (DirtyWorker is the library's worker-side runtime.) */

#include <gio/gio.h>

#include "dirty-frame.h"
#include "dirty-job.h"
#include "dirty-unit-launcher.h"

G_BEGIN_DECLS

#define DIRTY_WORKER_PROC_HEARTBEAT_TIMEOUT_S 10

typedef enum {
  DIRTY_APP_STATE_STARTING,     /* no HELLO yet */
  DIRTY_APP_STATE_READY,
  DIRTY_APP_STATE_FAILED,       /* init() failed; the worker retries */
  DIRTY_APP_STATE_UNAVAILABLE,  /* could not be loaded */
} DirtyAppState;

typedef enum {
  DIRTY_WORKER_PROC_STARTING,   /* spawned, no HELLO yet */
  DIRTY_WORKER_PROC_LIVE,
  DIRTY_WORKER_PROC_LOST,       /* connection gone or killed; not reaped */
  DIRTY_WORKER_PROC_EXITED,
} DirtyWorkerProcState;

typedef struct {
  const char         *binary;
  const char * const *apps;
  const char * const *app_path;
  guint               threads;
  const DirtyLimits  *limits;
  const char         *hooks;      /* (nullable): hooks_module */
  /* A worker with a python: app runs `python python_worker` instead of
   * binary (fork mode only) */
  const char         *python;
  const char         *python_worker;
} DirtyWorkerProcOptions;

#define DIRTY_TYPE_WORKER_PROC (dirty_worker_proc_get_type ())
G_DECLARE_FINAL_TYPE (DirtyWorkerProc, dirty_worker_proc, DIRTY, WORKER_PROC, GObject)

/* A reply for a call it runs; after a terminal one the slot is free and
 * the job is no longer the worker's (job->worker is cleared before the
 * call). Every call's reply goes through it: a plain callback, as a
 * signal emission costs about 1,500 instructions. */
typedef void (*DirtyWorkerProcReplyFunc) (DirtyWorkerProc *proc,
                                          DirtyJob        *job,
                                          DirtyFrame      *frame,
                                          gboolean         terminal,
                                          gpointer         user_data);

/* Signals:
 * "apps-changed" (): a HELLO or STATUS arrived.
 * "backtrace" (gpointer job, const char *backtrace, const char *error):
 *   the worker's answer to dirty_worker_proc_request_backtrace(): the
 *   text, or (backtrace NULL) why it took none.
 * "lost" (): the worker can no longer serve (EOF, protocol error, killed);
 *   emitted once. Take its calls with dirty_worker_proc_steal_jobs().
 * "exited" (): the process was reaped; emitted once, after "lost". */

DirtyWorkerProc *dirty_worker_proc_spawn (guint                          worker_id,
                                          const DirtyWorkerProcOptions  *options,
                                          GError                       **error);

/* Unit mode: asks systemd to start dirty-worker@@worker_id.service and
 * waits (STARTING, under the same heartbeat watchdog) for the worker to
 * connect to @launcher's socket. Killing it uses KillUnit on the unit's
 * cgroup; "exited" comes once the unit is inactive. */
DirtyWorkerProc *dirty_worker_proc_start_unit (guint                          worker_id,
                                               const DirtyWorkerProcOptions  *options,
                                               DirtyUnitLauncher             *launcher);
/* For DirtyUnitLauncher: the worker's connection (peer @pid) has been
 * checked; sends it its settings (HELLO, docs/protocol.md "Unit mode")
 * and serves it exactly as a forked worker's socketpair. */
void             dirty_worker_proc_attach     (DirtyWorkerProc *self,
                                               GSocket         *socket,
                                               gint64           pid);

/* Restart handoff (unit mode; dirty-handoff.h). An idle, LIVE unit
 * worker with nothing left to write gives its connection up: returns a
 * duplicate of its fd and adds to @facts what the next arbiter needs;
 * it then counts as exited, without "lost" or "exited" (it keeps
 * running). -1 if it cannot be handed on (stop it instead). */
int              dirty_worker_proc_release    (DirtyWorkerProc *self,
                                               GVariantDict    *facts);
/* Whether a released worker's @facts match what @options would start
 * (apps, threads, app path, hooks): if not, a reload replaces it. */
gboolean         dirty_worker_proc_facts_match (GVariant                     *facts,
                                                const DirtyWorkerProcOptions *options);
/* The next arbiter's side: worker @worker_id, LIVE with the apps and
 * states of @facts once @launcher has checked that @socket's peer runs
 * in dirty-worker@@worker_id.service (the same check as a new
 * connection); killed and lost if not. No HELLO is exchanged. */
DirtyWorkerProc *dirty_worker_proc_adopt_unit  (guint                         worker_id,
                                                GVariant                     *facts,
                                                const DirtyWorkerProcOptions *options,
                                                DirtyUnitLauncher            *launcher,
                                                GSocket                      *socket);

guint                dirty_worker_proc_get_id     (DirtyWorkerProc *self);
gint64               dirty_worker_proc_get_pid    (DirtyWorkerProc *self);
DirtyWorkerProcState dirty_worker_proc_get_state  (DirtyWorkerProc *self);
gint64               dirty_worker_proc_get_started (DirtyWorkerProc *self);
/* Calls in its slots (including ones whose client was already answered) */
guint                dirty_worker_proc_get_load   (DirtyWorkerProc *self);
guint                dirty_worker_proc_get_free_slots (DirtyWorkerProc *self);
/* @error_message: (out) (transfer none) (optional): why it is not ready */
DirtyAppState        dirty_worker_proc_get_app_state (DirtyWorkerProc  *self,
                                                      const char       *app,
                                                      const char      **error_message);

/* For STATUS: calls it ended (any terminal reply), those that were
 * ERRORs, and the names of its apps, sorted (transfer container). */
guint64              dirty_worker_proc_get_served (DirtyWorkerProc *self);
guint64              dirty_worker_proc_get_errors (DirtyWorkerProc *self);
GPtrArray           *dirty_worker_proc_list_apps  (DirtyWorkerProc *self);

/* Who gets its replies (NULL: nobody; replies are then dropped) */
void       dirty_worker_proc_set_reply_func (DirtyWorkerProc          *self,
                                             DirtyWorkerProcReplyFunc  func,
                                             gpointer                  user_data);

/* Sends @job's REQUEST under a new worker id with the time it has left. */
void       dirty_worker_proc_run_job    (DirtyWorkerProc *self,
                                         DirtyJob        *job);
/* Forwards @n credits of @job's stream as CREDIT under the worker's id. */
void       dirty_worker_proc_credit_job (DirtyWorkerProc *self,
                                         DirtyJob        *job,
                                         guint32          n);
/* Sends BACKTRACE for @job: the worker answers with what the thread
 * running it is doing ("backtrace" signal). */
void       dirty_worker_proc_request_backtrace (DirtyWorkerProc *self,
                                                DirtyJob        *job);
/* Sends CANCEL for @job (once). */
void       dirty_worker_proc_cancel_job (DirtyWorkerProc *self,
                                         DirtyJob        *job);
/* The calls it was running (transfer container); the map is emptied. */
GPtrArray *dirty_worker_proc_steal_jobs (DirtyWorkerProc *self);

/* After "exited": its exit status, -1 if it was killed or it is not
 * known (unit mode); the signal that killed it, or 0. */
int        dirty_worker_proc_get_exit_status (DirtyWorkerProc *self);
int        dirty_worker_proc_get_term_signal (DirtyWorkerProc *self);
/* Resident memory in bytes from /proc/PID/statm, -1 if unknown */
gint64     dirty_worker_proc_read_rss     (DirtyWorkerProc *self);

/* Retiring (a reload replaced it, or scaling down): it gets no new
 * calls (no free slots); the pool stops it once its calls have ended. */
void       dirty_worker_proc_set_retiring (DirtyWorkerProc *self);
gboolean   dirty_worker_proc_is_retiring  (DirtyWorkerProc *self);
/* Whether it loads @app at all (MODULE:TypeName:N puts an app on some
 * workers only) */
gboolean   dirty_worker_proc_has_app      (DirtyWorkerProc *self,
                                           const char      *app);

/* Whether the arbiter stopped it: SIGTERM (dirty_worker_proc_terminate ())
 * or SIGKILL (dirty_worker_proc_kill ()) */
gboolean   dirty_worker_proc_was_stopped (DirtyWorkerProc *self);
/* SIGKILL to its process group; the worker is lost. @reason is logged as
 * a warning; NULL when the caller logged why (an immediate shutdown). */
void       dirty_worker_proc_kill       (DirtyWorkerProc *self,
                                         const char      *reason);
/* SIGTERM to its process group: the worker cancels its calls, closes its
 * apps and exits. */
void       dirty_worker_proc_terminate  (DirtyWorkerProc *self);

G_END_DECLS
