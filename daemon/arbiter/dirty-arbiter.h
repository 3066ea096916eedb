/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon: its listening socket (socket-activated or bound), one
 * DirtyPeer per client, the worker pool and the scheduler, signals and
 * sd_notify. */

#include <gio/gio.h>

#include "dirty-config.h"

G_BEGIN_DECLS

#define DIRTY_ARBITER_ERROR (dirty_arbiter_error_quark ())

typedef enum {
  DIRTY_ARBITER_ERROR_FAILED,        /* cannot run: exit status 2 */
  DIRTY_ARBITER_ERROR_ALREADY_RUNNING, /* another arbiter owns the socket: exit status 1 */
} DirtyArbiterError;

GQuark dirty_arbiter_error_quark (void);

#define DIRTY_TYPE_ARBITER (dirty_arbiter_get_type ())
G_DECLARE_FINAL_TYPE (DirtyArbiter, dirty_arbiter, DIRTY, ARBITER, GObject)

/* Signals:
 * "finished" (): shut down, every worker has exited.
 * Lifecycle, each with an a{sv} of facts (keys as in dirty-hooks.h), for
 * in-process use; main() connects the hooks_module's hooks to them:
 * "starting" (GVariant): in dirty_arbiter_start(), listening, before any
 *   worker starts (on_dirty_starting).
 * "worker-started" (GVariant): a worker process was started (worker_pid
 *   is 0 for a unit-mode worker that has not connected yet).
 * "worker-exited" (GVariant): a worker process exited, with exit_status
 *   and term_signal (dirty_worker_exit). */

DirtyArbiter *dirty_arbiter_new      (DirtyConfig   *config);
/* Listens, starts the workers, installs the signal handlers. */
gboolean      dirty_arbiter_start    (DirtyArbiter  *self,
                                      GError       **error);
/* Graceful: no new calls, the current ones get dirty_graceful_timeout,
 * then the workers get SIGTERM (SIGKILL 5 s later). Immediate: workers
 * are killed. A second graceful request becomes immediate. */
void          dirty_arbiter_shutdown (DirtyArbiter  *self,
                                      gboolean       immediate);

/* SIGHUP and MANAGE {"verb": "reload"}: reads the config again the way
 * it was read at start (same command line). Invalid: logged, the old
 * config keeps serving, DIRTY_ERROR_FAILED naming file, line and key.
 * Valid: RELOADING=1, new workers start next to the old ones; once they
 * are ready READY=1, and the old ones finish their calls and exit. A
 * reload whose workers are not all ready yet is superseded (its workers
 * retire). Also DIRTY_ERROR_SHUTTING_DOWN. */
gboolean      dirty_arbiter_reload   (DirtyArbiter  *self,
                                      GError       **error);
/* 1 at start, one more per accepted reload */
guint         dirty_arbiter_get_generation (DirtyArbiter *self);
/* SIGTTIN (+1), SIGTTOU (-1) and MANAGE {"verb": "workers"}: see
 * dirty_pool_scale(). */
gboolean      dirty_arbiter_scale    (DirtyArbiter  *self,
                                      int            delta,
                                      guint         *out_total,
                                      GError       **error);

G_END_DECLS
