/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dirty-version.h"
#include "dirty-call.h"

G_BEGIN_DECLS

/**
 * DirtyActionFlags:
 * @DIRTY_ACTION_SYNC: the action blocks: it runs on one of the worker's
 *   threads (`dirty_threads` of them) and must complete its call before it
 *   returns, or the worker answers with a %DIRTY_ERROR_APP error saying the
 *   action returned no result. The default.
 * @DIRTY_ACTION_ASYNC: the action does not block: it runs on the worker's
 *   main loop (the thread-default main context, run by the worker's
 *   threads in turns: see [class@Dirty.Worker]), starts its work and
 *   returns at once, and completes the call later, from any thread.
 * @DIRTY_ACTION_STREAM: the action streams its result: it sends chunks
 *   with [method@Dirty.Call.send_chunk] (a sync action) or
 *   [method@Dirty.Call.send_chunk_async] (an async one) and ends with
 *   [method@Dirty.Call.end_stream] or an error. Combine it with
 *   %DIRTY_ACTION_SYNC or %DIRTY_ACTION_ASYNC. Callers must read it as a
 *   stream ([method@Dirty.Client.stream]): an `execute` of it fails with
 *   %DIRTY_ERROR_INVALID_ARGUMENT before the action runs.
 *
 * How the worker runs an action.
 *
 * Since: 0.1
 */
typedef enum {
  DIRTY_ACTION_SYNC = 0,
  DIRTY_ACTION_ASYNC = 1 << 0,
  DIRTY_ACTION_STREAM = 1 << 1,
} DirtyActionFlags;

#define DIRTY_TYPE_ACTION_FLAGS (dirty_action_flags_get_type ())
DIRTY_AVAILABLE_IN_ALL
GType dirty_action_flags_get_type (void);

#define DIRTY_TYPE_APP (dirty_app_get_type ())
DIRTY_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (DirtyApp, dirty_app, DIRTY, APP, GObject)

/**
 * DirtyActionFunc:
 * @app: the app
 * @call: the call to complete
 * @user_data: the data given to [method@Dirty.App.add_action]
 *
 * An action: reads its arguments from @call and completes it, before it
 * returns for a %DIRTY_ACTION_SYNC action, or later for a
 * %DIRTY_ACTION_ASYNC one (keeping a reference on @call meanwhile).
 *
 * Since: 0.1
 */
typedef void (*DirtyActionFunc) (DirtyApp  *app,
                                 DirtyCall *call,
                                 gpointer   user_data);

/**
 * DirtyAppClass:
 * @parent_class: the parent class
 * @init: loads the app's resources once, after instantiation and before
 *   any call; runs on a helper thread of the worker, so it may block. It
 *   should honour @cancellable, which fires when the worker shuts down. On
 *   failure the worker retries it with exponential backoff. May be %NULL.
 * @call: runs one call. The default dispatches to the action table
 *   ([method@Dirty.App.add_action]). An override still declares its
 *   actions with [method@Dirty.App.add_action] (with a %NULL function), so
 *   the worker knows which names are callable and how to run them.
 * @close: releases the app's resources at worker shutdown, after every
 *   call has ended. It is called on every loaded app, also one whose
 *   init() failed or never ran. May be %NULL.
 * @describe_call: says what a running call is doing, for the error and
 *   the journal record of a call whose deadline passed: see
 *   [method@Dirty.App.describe_call]. May be %NULL.
 *
 * The class of apps. Subclass it in a module that the worker loads by
 * name; see [method@Dirty.Worker.load_app].
 *
 * Since: 0.1
 */
struct _DirtyAppClass
{
  GObjectClass parent_class;

  gboolean (*init)  (DirtyApp      *self,
                     GCancellable  *cancellable,
                     GError       **error);
  void     (*call)  (DirtyApp      *self,
                     DirtyCall     *call);
  void     (*close) (DirtyApp      *self);
  char *   (*describe_call) (DirtyApp  *self,
                             DirtyCall *call);

  /*< private >*/
  gpointer padding[11];
};

DIRTY_AVAILABLE_IN_ALL
const char *dirty_app_get_name      (DirtyApp          *self);

DIRTY_AVAILABLE_IN_ALL
void        dirty_app_add_action    (DirtyApp          *self,
                                     const char        *name,
                                     DirtyActionFlags   flags,
                                     DirtyActionFunc    func,
                                     gpointer           user_data,
                                     GDestroyNotify     destroy);
DIRTY_AVAILABLE_IN_ALL
gboolean    dirty_app_lookup_action (DirtyApp          *self,
                                     const char        *name,
                                     DirtyActionFlags  *out_flags);
DIRTY_AVAILABLE_IN_ALL
char      **dirty_app_list_actions  (DirtyApp          *self);

DIRTY_AVAILABLE_IN_ALL
gboolean    dirty_app_init          (DirtyApp          *self,
                                     GCancellable      *cancellable,
                                     GError           **error);
DIRTY_AVAILABLE_IN_ALL
void        dirty_app_call          (DirtyApp          *self,
                                     DirtyCall         *call);
DIRTY_AVAILABLE_IN_ALL
void        dirty_app_close         (DirtyApp          *self);
DIRTY_AVAILABLE_IN_ALL
char       *dirty_app_describe_call (DirtyApp          *self,
                                     DirtyCall         *call);

G_END_DECLS
