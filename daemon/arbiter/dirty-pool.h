/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The worker processes: dirty_workers slots, each holding one
 * DirtyWorkerProc and its app set (every app, except that an app
 * configured as MODULE:TypeName:N goes to N slots only); a dead worker is
 * replaced with the same apps, with an exponential backoff when workers
 * die young (1 s doubling up to 30 s, reset once one lives 60 s).
 * Stopping sends SIGTERM, then SIGKILL.
 *
 * A reload starts a new generation of slots from the new config next to
 * the old one; once every new worker has said hello and its apps have
 * settled, the old slots retire: no new calls, SIGTERM once their last
 * call has ended, never replaced. Scaling adds slots, or retires slots
 * that hold only apps every worker loads (never the last one). */

#include <glib-object.h>

#include "dirty-config.h"
#include "dirty-worker-proc.h"

G_BEGIN_DECLS

#define DIRTY_POOL_KILL_AFTER_S 5

#define DIRTY_TYPE_POOL (dirty_pool_get_type ())
G_DECLARE_FINAL_TYPE (DirtyPool, dirty_pool, DIRTY, POOL, GObject)

/* Signals, relayed from the workers (see dirty-worker-proc.h):
 * "worker-changed" (DirtyWorkerProc): app states changed.
 * "worker-backtrace" (DirtyWorkerProc, gpointer job, const char *backtrace,
 *   const char *error)
 * "worker-lost" (DirtyWorkerProc)
 * "worker-exited" (DirtyWorkerProc): after the slot was emptied.
 * "generation-ready" (guint generation): after dirty_pool_reload(), the
 *   new workers are ready and the old ones retire. Not before every app
 *   that an old worker serves is ready in a new one: an app that does not
 *   start there keeps the old workers serving it.
 * "stopped" (): after dirty_pool_stop(), every worker has exited.
 * "worker-started" (DirtyWorkerProc): a worker process was started (in
 *   unit mode its pid is 0 until it connects).
 *
 * Recycling: a worker that has served dirty_max_requests calls (plus a
 * random 0..dirty_max_requests_jitter, drawn per process) or whose
 * resident memory exceeds dirty_max_rss MiB (checked every 250 ms) is
 * replaced; one above dirty_kill_rss MiB is killed at once.
 * recycle_order=replace-first (the default) starts a new slot with the
 * same apps and retires the old one once the new one has settled, with
 * every app the old one serves ready (one over dirty_max_rss serves on
 * while an app's init() fails in its replacement);
 * retire-first retires it at once and restarts its slot when it has
 * exited. */

DirtyPool *dirty_pool_new          (DirtyConfig        *config,
                                    const DirtyLimits  *limits);
/* Spawns every worker; fails if the worker binary cannot be started. */
gboolean   dirty_pool_start        (DirtyPool          *self,
                                    GError            **error);
void       dirty_pool_stop         (DirtyPool          *self,
                                    gboolean            immediate);
/* Starts the workers of @config next to the current ones (see above);
 * returns the new generation. Not while stopping; a reload whose
 * workers are not ready yet is superseded (they retire). */
guint      dirty_pool_reload       (DirtyPool          *self,
                                    DirtyConfig        *config);
guint      dirty_pool_get_generation (DirtyPool        *self);
/* Whether dirty_pool_stop () was called */
gboolean   dirty_pool_is_stopping  (DirtyPool          *self);
/* Whether a reload's new workers are not all ready yet (old ones still
 * serve). @out_held (nullable, transfer container): the apps that keep
 * old workers because they did not start in the new ones. */
gboolean   dirty_pool_get_reloading (DirtyPool         *self,
                                     GPtrArray        **out_held);
/* Adds (@delta > 0) or retires (@delta < 0) workers; all or nothing.
 * Errors in DIRTY_ERROR: INVALID_ARGUMENT (0, too many), FAILED (removing
 * would leave an app short of its :N or the pool empty; adding would
 * give a worker no app), SHUTTING_DOWN. @out_total: the workers
 * counted now (without retiring ones), also on failure. */
gboolean   dirty_pool_scale        (DirtyPool          *self,
                                    int                 delta,
                                    guint              *out_total,
                                    GError            **error);

/* Restart handoff (unit mode; dirty-handoff.h). Before start: the
 * workers the previous arbiter left in the fd store (a GArray of
 * DirtyHandoffWorker; the pool takes their fds). Each keeps its id; one
 * whose apps or settings this config would not start is replaced as in
 * a reload. With @handoff set, dirty_pool_stop() gives the idle unit
 * workers up instead of stopping them: take them (transfer full; fds
 * the caller's) for the store. */
void       dirty_pool_adopt        (DirtyPool          *self,
                                    GArray             *workers);
void       dirty_pool_set_handoff  (DirtyPool          *self,
                                    gboolean            handoff);
GArray    *dirty_pool_take_released (DirtyPool         *self);

/* Who gets every worker's replies (see DirtyWorkerProcReplyFunc); the
 * pool looks at them after @func returned (recycling). */
void       dirty_pool_set_reply_func (DirtyPool                *self,
                                      DirtyWorkerProcReplyFunc  func,
                                      gpointer                  user_data);

/* The worker processes now alive (LIVE or STARTING or LOST). (transfer container) */
GPtrArray *dirty_pool_list_workers (DirtyPool          *self);
/* The same without allocating, for the loops every call runs: the
 * number of slots, and slot @i's worker (NULL while the slot waits for a
 * respawn). */
guint            dirty_pool_get_n_slots     (DirtyPool *self);
DirtyWorkerProc *dirty_pool_get_slot_worker (DirtyPool *self,
                                             guint      i);
/* Whether a worker is starting or about to be respawned: apps that no
 * worker serves yet may still become ready. */
gboolean   dirty_pool_is_starting  (DirtyPool          *self);
/* Workers of the newest generation that are not retiring */
guint      dirty_pool_get_size     (DirtyPool          *self);
/* How many times worker @worker_id's slot started a replacement (STATUS) */
guint      dirty_pool_get_restarts (DirtyPool          *self,
                                    guint               worker_id);
/* The generation (config) worker @worker_id was started with, 0 if none */
guint      dirty_pool_get_worker_generation (DirtyPool *self,
                                             guint      worker_id);

G_END_DECLS
