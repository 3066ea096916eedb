/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* counter:DirtyCounterApp: state that lives in the worker between calls.
 * Every worker has its own counter; with several threads, calls run at
 * once, so the counter is behind a lock.
 *
 *   incr [N]   adds N (the first argument or the keyword n; default 1)
 *              and returns the new value
 *   get        returns the value
 *   reset      sets it to 0 and returns the value it had
 */
#include <dirty.h>

#define DIRTY_TYPE_COUNTER_APP (dirty_counter_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyCounterApp, dirty_counter_app, DIRTY, COUNTER_APP, DirtyApp)

struct _DirtyCounterApp
{
  DirtyApp parent_instance;

  GMutex lock;
  gint64 value;
};

G_DEFINE_FINAL_TYPE (DirtyCounterApp, dirty_counter_app, DIRTY_TYPE_APP)

static void
incr_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  DirtyCounterApp *self = DIRTY_COUNTER_APP (app);
  GError *error = NULL;
  gint64 n = 1, value;
  gboolean overflow;

  /* the step comes as the first argument or as the keyword "n" */
  if (dirty_call_get_n_args (call) > 0
      ? !dirty_call_get_arg_int (call, 0, &n, &error)
      : !dirty_call_get_kwarg_int (call, "n", 1, &n, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }

  g_mutex_lock (&self->lock);
  overflow = __builtin_add_overflow (self->value, n, &value);
  if (!overflow)
    self->value = value;
  g_mutex_unlock (&self->lock);

  if (overflow)
    dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                 "Adding %" G_GINT64_FORMAT " would overflow the counter", n);
  else
    dirty_call_return_int (call, value);
}

static void
get_action (DirtyApp  *app,
            DirtyCall *call,
            gpointer   user_data)
{
  DirtyCounterApp *self = DIRTY_COUNTER_APP (app);
  gint64 value;

  g_mutex_lock (&self->lock);
  value = self->value;
  g_mutex_unlock (&self->lock);
  dirty_call_return_int (call, value);
}

static void
reset_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  DirtyCounterApp *self = DIRTY_COUNTER_APP (app);
  gint64 old;

  g_mutex_lock (&self->lock);
  old = self->value;
  self->value = 0;
  g_mutex_unlock (&self->lock);
  dirty_call_return_int (call, old);
}

static void
dirty_counter_app_finalize (GObject *object)
{
  DirtyCounterApp *self = DIRTY_COUNTER_APP (object);

  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (dirty_counter_app_parent_class)->finalize (object);
}

static void
dirty_counter_app_class_init (DirtyCounterAppClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_counter_app_finalize;
}

static void
dirty_counter_app_init (DirtyCounterApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  g_mutex_init (&self->lock);
  dirty_app_add_action (app, "incr", DIRTY_ACTION_SYNC, incr_action, NULL, NULL);
  dirty_app_add_action (app, "get", DIRTY_ACTION_SYNC, get_action, NULL, NULL);
  dirty_app_add_action (app, "reset", DIRTY_ACTION_SYNC, reset_action, NULL, NULL);
}
