/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

/* Lifecycle hooks: a shared module named by the arbiter's hooks_module
 * key (an absolute path) may export any of these functions, each of type
 * DirtyHookFunc. The arbiter loads the module at start (a module that
 * cannot be loaded is a config error: exit status 1) and every worker
 * loads it too.
 *
 *   on_dirty_starting   in the arbiter, before it starts any worker
 *   dirty_post_fork     in a worker, right after it started, before its
 *                       apps are instantiated
 *   dirty_worker_init   in a worker, once every app's init() has
 *                       finished (succeeded, or failed and will be retried)
 *   dirty_worker_exit   in the arbiter, when a worker process has exited
 *
 * @facts is an a{sv} dictionary, owned by the caller; keys may be added,
 * never removed or retyped:
 *
 *   "pid"          x   the calling process (arbiter or worker)
 *   "arbiter_pid"  x   dirty_post_fork, dirty_worker_init: the arbiter
 *                      (0 for a unit-mode worker)
 *   "worker_id"    u   the worker's number (not in on_dirty_starting)
 *   "worker_pid"   x   dirty_worker_exit: the worker that exited
 *   "apps"         as  the worker's apps (every app in on_dirty_starting)
 *   "workers"      u   on_dirty_starting: dirty_workers
 *   "exit_status"  i   dirty_worker_exit: its exit status, -1 if killed
 *                      or unknown
 *   "term_signal"  i   dirty_worker_exit: the signal that killed it, or 0
 *
 * Hooks run on the process's main thread and block it: keep them short. */

#include <glib.h>

G_BEGIN_DECLS

typedef void (*DirtyHookFunc) (GVariant *facts);

#define DIRTY_HOOK_ON_DIRTY_STARTING  "on_dirty_starting"
#define DIRTY_HOOK_DIRTY_POST_FORK    "dirty_post_fork"
#define DIRTY_HOOK_DIRTY_WORKER_INIT  "dirty_worker_init"
#define DIRTY_HOOK_DIRTY_WORKER_EXIT  "dirty_worker_exit"

G_END_DECLS
