/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dirty-version.h"
#include "dirty-app.h"

G_BEGIN_DECLS

#define DIRTY_TYPE_WORKER (dirty_worker_get_type ())
DIRTY_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DirtyWorker, dirty_worker, DIRTY, WORKER, GObject)

DIRTY_AVAILABLE_IN_ALL
DirtyWorker *dirty_worker_new          (guint                n_threads);
DIRTY_AVAILABLE_IN_ALL
guint        dirty_worker_get_n_threads (DirtyWorker        *self);

DIRTY_AVAILABLE_IN_ALL
gboolean     dirty_worker_load_app     (DirtyWorker         *self,
                                        const char          *name,
                                        const char * const  *app_path,
                                        GError             **error);
DIRTY_AVAILABLE_IN_ALL
void         dirty_worker_add_app      (DirtyWorker         *self,
                                        const char          *name,
                                        DirtyApp            *app);
DIRTY_AVAILABLE_IN_ALL
void         dirty_worker_add_unavailable_app (DirtyWorker *self,
                                               const char  *name,
                                               const char  *reason);
DIRTY_AVAILABLE_IN_ALL
DirtyApp    *dirty_worker_get_app      (DirtyWorker         *self,
                                        const char          *name);

DIRTY_AVAILABLE_IN_ALL
int          dirty_worker_run          (DirtyWorker         *self,
                                        int                  fd,
                                        guint                worker_id);
DIRTY_AVAILABLE_IN_ALL
void         dirty_worker_stop         (DirtyWorker         *self);

G_END_DECLS
