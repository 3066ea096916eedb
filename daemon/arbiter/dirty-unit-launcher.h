/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Unit mode (worker_mode=unit): workers are systemd units,
 * dirty-worker@N.service, started, stopped and killed through the
 * manager's D-Bus API (org.freedesktop.systemd1), on the system bus for
 * the system instance and the session bus for a user instance. Each
 * worker connects back to the worker socket this object listens on; a
 * connection is accepted only when the peer's pid (SO_PEERCRED) is in the
 * cgroup of dirty-worker@N.service and worker N is expected, and it is
 * then handed to that DirtyWorkerProc. Everything after the connection
 * exists is the same as in fork mode (dirty-worker-proc.c). */

#include <gio/gio.h>

#include "dirty-frame.h"

G_BEGIN_DECLS

typedef struct _DirtyWorkerProc DirtyWorkerProc;

#define DIRTY_TYPE_UNIT_LAUNCHER (dirty_unit_launcher_get_type ())
G_DECLARE_FINAL_TYPE (DirtyUnitLauncher, dirty_unit_launcher, DIRTY, UNIT_LAUNCHER, GObject)

/* The default worker socket: $RUNTIME_DIRECTORY/workers.sock (the
 * service's RuntimeDirectory=, /run/dirty-arbiter or
 * $XDG_RUNTIME_DIR/dirty-arbiter), else next to @main_socket.
 * (transfer full) */
char              *dirty_unit_launcher_default_socket (const char *main_socket);

/* Binds @socket_path (mode 0600) and connects to the manager's bus. */
DirtyUnitLauncher *dirty_unit_launcher_new  (const char         *socket_path,
                                             const DirtyLimits  *limits,
                                             GError            **error);
const char        *dirty_unit_launcher_get_socket (DirtyUnitLauncher *self);

/* "dirty-worker@N.service" (transfer full) */
char              *dirty_unit_launcher_unit_name (guint worker_id);

/* Worker @worker_id's next connection goes to @proc (unowned: it calls
 * dirty_unit_launcher_forget() before it goes away). */
void dirty_unit_launcher_expect (DirtyUnitLauncher *self,
                                 guint              worker_id,
                                 DirtyWorkerProc   *proc);
void dirty_unit_launcher_forget (DirtyUnitLauncher *self,
                                 guint              worker_id,
                                 DirtyWorkerProc   *proc);

/* Restart handoff: @socket is worker @proc's connection, taken over from
 * the previous arbiter. The same check as a new connection (its peer's
 * pid must run in the unit of @proc, which must be expected); then
 * dirty_worker_proc_attach(), or dirty_worker_proc_kill() if it fails. */
void dirty_unit_launcher_check (DirtyUnitLauncher *self,
                                GSocket           *socket,
                                DirtyWorkerProc   *proc);

/* StartUnit(dirty-worker@N.service, "replace") once the unit is
 * inactive (a previous arbiter's worker may still be on its way out);
 * @proc is killed if the manager refuses. */
void dirty_unit_launcher_start_unit (DirtyUnitLauncher *self,
                                     DirtyWorkerProc   *proc);
/* StopUnit(..., "replace"), not waited for. */
void dirty_unit_launcher_stop_unit  (DirtyUnitLauncher *self,
                                     guint              worker_id);
/* KillUnit(..., "all", @signum): every process in the unit's cgroup. */
void dirty_unit_launcher_kill_unit  (DirtyUnitLauncher *self,
                                     guint              worker_id,
                                     int                signum);

/* Completes once the unit is inactive or failed (polled; the manager
 * emits no signals to a client that did not Subscribe()). */
void     dirty_unit_launcher_wait_inactive_async  (DirtyUnitLauncher    *self,
                                                   guint                 worker_id,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
gboolean dirty_unit_launcher_wait_inactive_finish (DirtyUnitLauncher    *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);

G_END_DECLS
