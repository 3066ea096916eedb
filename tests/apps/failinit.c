/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* failinit:DirtyFailInitApp: an app whose init() fails while the file
 * named by $DIRTY_TEST_FAILINIT_FILE exists (its message ends with the
 * file's text), and succeeds once it is gone
 * (or when the variable is unset), so a test can watch the worker report
 * "failed", retry with backoff, and turn "ready". While the file named by
 * $DIRTY_TEST_FAILINIT_HANG exists, init() does not return (until its
 * cancellable fires).
 *
 *   ok       returns "ok"
 *   inits    how many times init() has run in this worker
 */
#include <dirty.h>

#define DIRTY_TYPE_FAIL_INIT_APP (dirty_fail_init_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyFailInitApp, dirty_fail_init_app, DIRTY, FAIL_INIT_APP, DirtyApp)

struct _DirtyFailInitApp
{
  DirtyApp parent_instance;

  int n_inits;
};

G_DEFINE_FINAL_TYPE (DirtyFailInitApp, dirty_fail_init_app, DIRTY_TYPE_APP)

static gboolean
dirty_fail_init_app_real_init (DirtyApp      *app,
                               GCancellable  *cancellable,
                               GError       **error)
{
  DirtyFailInitApp *self = DIRTY_FAIL_INIT_APP (app);
  const char *file = g_getenv ("DIRTY_TEST_FAILINIT_FILE");
  const char *hang = g_getenv ("DIRTY_TEST_FAILINIT_HANG");

  /* an init that never ends (until cancelled) while that file exists */
  while (hang != NULL && g_file_test (hang, G_FILE_TEST_EXISTS) &&
         !g_cancellable_is_cancelled (cancellable))
    g_usleep (20 * 1000);
  g_atomic_int_inc (&self->n_inits);
  if (file != NULL && g_file_test (file, G_FILE_TEST_EXISTS))
    {
      g_autofree char *text = NULL;

      g_file_get_contents (file, &text, NULL, NULL);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   "init failed on purpose: %s exists%s", file, text ? text : "");
      return FALSE;
    }
  return TRUE;
}

static void
ok_action (DirtyApp  *app,
           DirtyCall *call,
           gpointer   user_data)
{
  dirty_call_return_string (call, "ok");
}

static void
inits_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  dirty_call_return_int (call, g_atomic_int_get (&DIRTY_FAIL_INIT_APP (app)->n_inits));
}

static void
dirty_fail_init_app_class_init (DirtyFailInitAppClass *klass)
{
  DIRTY_APP_CLASS (klass)->init = dirty_fail_init_app_real_init;
}

static void
dirty_fail_init_app_init (DirtyFailInitApp *self)
{
  dirty_app_add_action (DIRTY_APP (self), "ok", DIRTY_ACTION_SYNC, ok_action, NULL, NULL);
  dirty_app_add_action (DIRTY_APP (self), "inits", DIRTY_ACTION_SYNC, inits_action, NULL, NULL);
}
