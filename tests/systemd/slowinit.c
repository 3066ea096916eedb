/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* slowinit:DirtySlowInitApp, for the systemd tests: init() takes
 * $DIRTY_TEST_INIT_SECONDS (default 8) seconds, like loading a model, so
 * the arbiter has to extend its start timeout; "ping" returns "pong". */

#include <stdlib.h>

#include <dirty.h>

#define DIRTY_TYPE_SLOW_INIT_APP (dirty_slow_init_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtySlowInitApp, dirty_slow_init_app, DIRTY, SLOW_INIT_APP, DirtyApp)

struct _DirtySlowInitApp
{
  DirtyApp parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtySlowInitApp, dirty_slow_init_app, DIRTY_TYPE_APP)

static gboolean
dirty_slow_init_app_init_app (DirtyApp      *app,
                              GCancellable  *cancellable,
                              GError       **error)
{
  const char *env = g_getenv ("DIRTY_TEST_INIT_SECONDS");
  gint64 end = g_get_monotonic_time () +
               (env != NULL ? atoi (env) : 8) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      g_usleep (100 * 1000);
    }
  return TRUE;
}

static void
ping_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  dirty_call_return_string (call, "pong");
}

static void
dirty_slow_init_app_class_init (DirtySlowInitAppClass *klass)
{
  DIRTY_APP_CLASS (klass)->init = dirty_slow_init_app_init_app;
}

static void
dirty_slow_init_app_init (DirtySlowInitApp *self)
{
  dirty_app_add_action (DIRTY_APP (self), "ping", DIRTY_ACTION_SYNC, ping_action, NULL, NULL);
}
