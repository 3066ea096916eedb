/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The worker processes: dirty_workers slots, each holding one
 * DirtyWorkerProc; a dead worker is replaced with the same apps, with an
 * exponential backoff when workers die young (1 s doubling up to 30 s,
 * reset once one lives 60 s). Stopping sends SIGTERM, then SIGKILL. */

#include <glib-object.h>

#include "dirty-config.h"
#include "dirty-worker-proc.h"

G_BEGIN_DECLS

#define DIRTY_POOL_KILL_AFTER_S 5

#define DIRTY_TYPE_POOL (dirty_pool_get_type ())
G_DECLARE_FINAL_TYPE (DirtyPool, dirty_pool, DIRTY, POOL, GObject)

/* Signals, relayed from the workers (see dirty-worker-proc.h):
 * "worker-changed" (DirtyWorkerProc): app states changed.
 * "worker-reply" (DirtyWorkerProc, gpointer job, gpointer frame, gboolean terminal)
 * "worker-lost" (DirtyWorkerProc)
 * "worker-exited" (DirtyWorkerProc): after the slot was emptied.
 * "stopped" (): after dirty_pool_stop(), every worker has exited. */

DirtyPool *dirty_pool_new          (DirtyConfig        *config,
                                    const DirtyLimits  *limits);
/* Spawns every worker; fails if the worker binary cannot be started. */
gboolean   dirty_pool_start        (DirtyPool          *self,
                                    GError            **error);
void       dirty_pool_stop         (DirtyPool          *self,
                                    gboolean            immediate);

/* The worker processes now alive (LIVE or STARTING or LOST). (transfer container) */
GPtrArray *dirty_pool_list_workers (DirtyPool          *self);
/* Whether a worker is starting or about to be respawned: apps that no
 * worker serves yet may still become ready. */
gboolean   dirty_pool_is_starting  (DirtyPool          *self);
guint      dirty_pool_get_size     (DirtyPool          *self);

G_END_DECLS
