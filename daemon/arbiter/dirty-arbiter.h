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

/* Signal "finished" (): shut down, every worker has exited. */

DirtyArbiter *dirty_arbiter_new      (DirtyConfig   *config);
/* Listens, starts the workers, installs the signal handlers. */
gboolean      dirty_arbiter_start    (DirtyArbiter  *self,
                                      GError       **error);
/* Graceful: no new calls, the current ones get dirty_graceful_timeout,
 * then the workers get SIGTERM (SIGKILL 5 s later). Immediate: workers
 * are killed. A second graceful request becomes immediate. */
void          dirty_arbiter_shutdown (DirtyArbiter  *self,
                                      gboolean       immediate);

G_END_DECLS
