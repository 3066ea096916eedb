/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the pieces of DirtyPool share; not installed:
 *   dirty-pool.c          the object: slots and their apps, spawning and
 *                         respawning workers, scaling, stopping, and the
 *                         queries
 *   dirty-pool-recycle.c  recycling (dirty_max_requests, dirty_max_rss) and
 *                         dirty_kill_rss
 *   dirty-pool-reload.c   reload: the new generation, the old one
 *                         retiring once it is ready
 *   dirty-pool-handoff.c  the restart handoff (unit mode, dirty-handoff.h):
 *                         workers adopted at start, released at stop */

#include "dirty-pool.h"

G_BEGIN_DECLS

/* Recycling (dirty_max_requests, dirty_max_rss) */
typedef enum {
  RECYCLE_NONE,
  RECYCLE_REPLACING,   /* replace-first: serves until its replacement is ready */
  RECYCLE_DRAINING,    /* retire-first: no new calls; respawned once it exited */
} RecycleState;

typedef struct {
  DirtyPool       *pool;         /* (unowned) */
  guint            id;           /* worker_id: the smallest free one */
  GStrv            apps;         /* what it loads; a replacement loads the same */
  guint            generation;   /* the config it was started with */
  gboolean         retiring;     /* finishes its calls, then leaves; never replaced */
  gboolean         terminated;   /* SIGTERM sent */
  guint            restarts;     /* replacements started, for STATUS */
  guint            max_requests; /* this process's dirty_max_requests + jitter, 0 = none */
  RecycleState     recycle;
  guint            replacement;  /* RECYCLE_REPLACING: the new slot's id */
  gboolean         recycle_held; /* ... which did not start an app it serves (logged) */
  DirtyWorkerProc *proc;         /* (nullable) */
  guint            respawn_source;
} Slot;

struct _DirtyPool
{
  GObject      parent_instance;

  DirtyConfig *config;           /* the newest generation's */
  DirtyLimits  limits;
  char        *binary;
  char        *python_worker;
  GPtrArray   *slots;            /* of Slot (owned) */
  DirtyWorkerProcReplyFunc reply_func;
  gpointer     reply_data;
  guint        generation;       /* 1, then one more per reload */
  gboolean     reloading;        /* the newest generation is not ready yet */
  gboolean     holding;          /* it settled, but old workers stay for an
                                  * app that did not start in it */
  guint        backoff_ms;       /* delay before replacing a worker that died young */
  gboolean     stopping;
  gboolean     stopped;          /* "stopped" was emitted */
  guint        kill_source;
  guint        rss_source;       /* dirty_max_rss and dirty_kill_rss checks, when set */
  /* unit mode (set at start, kept across reloads): systemd runs the workers */
  DirtyUnitLauncher *launcher;
  /* restart handoff (unit mode): workers taken over at start, and those
   * given up at stop for the next arbiter (DirtyHandoffWorker) */
  GArray      *adopted;
  gboolean     handoff;
  GArray      *released;
};

enum {
  SIGNAL_WORKER_CHANGED,
  SIGNAL_WORKER_BACKTRACE,
  SIGNAL_WORKER_LOST,
  SIGNAL_WORKER_EXITED,
  SIGNAL_GENERATION_READY,
  SIGNAL_STOPPED,
  SIGNAL_WORKER_STARTED,
  N_SIGNALS
};

/* dirty-pool.c */
extern guint           dirty_pool_signals[N_SIGNALS];
Slot                  *dirty_pool_add_slot               (DirtyPool   *self,
                                                          GStrv        apps);
GPtrArray             *dirty_pool_assign_apps            (DirtyPool   *self,
                                                          guint        n);
DirtyWorkerProcOptions dirty_pool_options                (DirtyPool   *self,
                                                          GStrv        apps);
Slot                  *dirty_pool_find_slot              (DirtyPool   *self,
                                                          guint        id);
void                   dirty_pool_slot_watch_proc        (Slot        *slot);
void                   dirty_pool_slot_clear_proc        (Slot        *slot);
void                   dirty_pool_slot_spawn_or_retry    (Slot        *slot);
void                   dirty_pool_slot_terminate_if_idle (Slot        *slot);
void                   dirty_pool_slot_retire            (Slot        *slot);
/* Whether @slot's worker said hello and every app it loads settled */
gboolean               dirty_pool_slot_is_settled        (Slot        *slot);
/* Whether @slot takes calls for @app now: live, not retiring, @app ready */
gboolean               dirty_pool_slot_serves            (Slot        *slot,
                                                          const char  *app);
/* The workers @config asks for (0 while it lists no app, said in the log) */
guint                  dirty_pool_wanted                 (DirtyConfig *config);
/* Adds @n slots for the newest config, with their apps (not started) */
GPtrArray             *dirty_pool_add_generation         (DirtyPool   *self,
                                                          guint        n);

/* dirty-pool-reload.c */
/* Ends a reload whose new workers are ready (old ones retire) */
void                   dirty_pool_check_generation       (DirtyPool   *self);

/* dirty-pool-recycle.c */
void                   dirty_pool_slot_recycle           (Slot        *slot,
                                                          const char  *reason);
void                   dirty_pool_check_recycles         (DirtyPool   *self);
/* Starts or stops the resident size checks, as the config and stopping want */
void                   dirty_pool_watch_rss              (DirtyPool   *self);

/* dirty-pool-handoff.c */
void                   dirty_pool_close_handoff          (GArray      *workers);
GPtrArray             *dirty_pool_adopt_generation       (DirtyPool   *self,
                                                          guint        n);
void                   dirty_pool_release_workers        (DirtyPool   *self);

G_END_DECLS
