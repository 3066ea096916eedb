/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-i18n-private.h"

#include "dirty-app.h"
#include "dirty-error.h"

/**
 * DirtyApp:
 *
 * An app: code and state that a worker loads once and then serves calls
 * to, like a loaded model or an open database. Write one as a subclass in
 * a shared module; the worker finds it by the name `MODULE:TypeName` (see
 * [method@Dirty.Worker.load_app]).
 *
 * The app declares its actions in its instance init, or in its
 * [vfunc@Dirty.App.init], with [method@Dirty.App.add_action]:
 *
 * ```c
 * static void
 * my_app_init (MyApp *self)
 * {
 *   dirty_app_add_action (DIRTY_APP (self), "resize", DIRTY_ACTION_SYNC,
 *                         my_app_resize, NULL, NULL);
 * }
 * ```
 *
 * Action names that start with `_` are never callable by clients (the
 * worker answers %DIRTY_ERROR_ACTION_NOT_FOUND), so an app can keep
 * helpers in the same table.
 *
 * A %DIRTY_ACTION_SYNC action may run on several threads at once (the
 * worker's `dirty_threads`): protect shared state in the app with a lock.
 *
 * Since: 0.1
 */

typedef struct {
  DirtyActionFlags flags;
  DirtyActionFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
} Action;

typedef struct {
  char *name;
  /* Actions may be added from init() on a helper thread while the main
   * thread looks names up for another app's calls. */
  GMutex lock;
  GHashTable *actions; /* name -> Action */
} DirtyAppPrivate;

/* Registered by hand rather than with G_DEFINE_TYPE: that macro names the
 * instance initialiser dirty_app_init(), which is the public wrapper for
 * the init() vfunc here. */
static gpointer dirty_app_parent_class = NULL;
static gint DirtyApp_private_offset;

static void dirty_app_class_init (DirtyAppClass *klass);
static void dirty_app_instance_init (GTypeInstance *instance,
                                     gpointer       g_class);

static inline DirtyAppPrivate *
dirty_app_get_instance_private (DirtyApp *self)
{
  return G_STRUCT_MEMBER_P (self, DirtyApp_private_offset);
}

static void
dirty_app_class_intern_init (gpointer klass,
                             gpointer class_data)
{
  dirty_app_parent_class = g_type_class_peek_parent (klass);
  g_type_class_adjust_private_offset (klass, &DirtyApp_private_offset);
  dirty_app_class_init (klass);
}

GType
dirty_app_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      const GTypeInfo info = {
        .class_size = sizeof (DirtyAppClass),
        .class_init = dirty_app_class_intern_init,
        .instance_size = sizeof (DirtyApp),
        .instance_init = dirty_app_instance_init,
      };
      GType type = g_type_register_static (G_TYPE_OBJECT, g_intern_static_string ("DirtyApp"),
                                           &info, 0);

      DirtyApp_private_offset = g_type_add_instance_private (type, sizeof (DirtyAppPrivate));
      g_once_init_leave (&type_id, type);
    }
  return type_id;
}

enum {
  PROP_0,
  PROP_NAME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

GType
dirty_action_flags_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GFlagsValue values[] = {
        { DIRTY_ACTION_SYNC, "DIRTY_ACTION_SYNC", "sync" },
        { DIRTY_ACTION_ASYNC, "DIRTY_ACTION_ASYNC", "async" },
        { DIRTY_ACTION_STREAM, "DIRTY_ACTION_STREAM", "stream" },
        { 0, NULL, NULL },
      };
      GType type = g_flags_register_static (g_intern_static_string ("DirtyActionFlags"),
                                            values);
      g_once_init_leave (&type_id, type);
    }
  return type_id;
}

static void
action_free (gpointer data)
{
  Action *action = data;

  if (action->destroy)
    action->destroy (action->user_data);
  g_free (action);
}

static gboolean
is_callable_name (const char *name)
{
  return name != NULL && name[0] != '\0' && name[0] != '_';
}

static void
dirty_app_finalize (GObject *object)
{
  DirtyApp *self = DIRTY_APP (object);
  DirtyAppPrivate *priv = dirty_app_get_instance_private (self);

  g_free (priv->name);
  g_hash_table_unref (priv->actions);
  g_mutex_clear (&priv->lock);

  G_OBJECT_CLASS (dirty_app_parent_class)->finalize (object);
}

static void
dirty_app_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  DirtyApp *self = DIRTY_APP (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, dirty_app_get_name (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dirty_app_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  DirtyApp *self = DIRTY_APP (object);
  DirtyAppPrivate *priv = dirty_app_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_NAME:
      g_free (priv->name);
      priv->name = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* The default call(): dispatch by name through the action table. */
static void
dirty_app_real_call (DirtyApp  *self,
                     DirtyCall *call)
{
  DirtyAppPrivate *priv = dirty_app_get_instance_private (self);
  const char *name = dirty_call_get_action (call);
  DirtyActionFunc func = NULL;
  gpointer user_data = NULL;

  if (is_callable_name (name))
    {
      Action *action;

      g_mutex_lock (&priv->lock);
      action = g_hash_table_lookup (priv->actions, name);
      if (action)
        {
          func = action->func;
          user_data = action->user_data;
        }
      g_mutex_unlock (&priv->lock);
    }

  if (func == NULL)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_ACTION_NOT_FOUND,
                                   _("App %s has no action “%s”"),
                                   priv->name ? priv->name : G_OBJECT_TYPE_NAME (self),
                                   name);
      return;
    }
  func (self, call, user_data);
}

static void
dirty_app_class_init (DirtyAppClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dirty_app_finalize;
  object_class->get_property = dirty_app_get_property;
  object_class->set_property = dirty_app_set_property;

  klass->call = dirty_app_real_call;

  /**
   * DirtyApp:name:
   *
   * The app's name as clients address it, such as `echo:DirtyEchoApp`.
   * The worker sets it when it loads the app.
   *
   * Since: 0.1
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dirty_app_instance_init (GTypeInstance *instance,
                         gpointer       g_class)
{
  DirtyAppPrivate *priv = dirty_app_get_instance_private ((DirtyApp *) instance);

  g_mutex_init (&priv->lock);
  priv->actions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, action_free);
}

/**
 * dirty_app_get_name:
 * @self: a #DirtyApp
 *
 * Returns: (transfer none) (nullable): the app's name, such as
 *   `echo:DirtyEchoApp`, or %NULL before a worker loads it.
 */
const char *
dirty_app_get_name (DirtyApp *self)
{
  DirtyAppPrivate *priv;

  g_return_val_if_fail (DIRTY_IS_APP (self), NULL);
  priv = dirty_app_get_instance_private (self);
  return priv->name;
}

/**
 * dirty_app_add_action:
 * @self: a #DirtyApp
 * @name: the action's name; one starting with `_` is never callable
 * @flags: how the worker runs it
 * @func: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   the action, or %NULL when the class's own [vfunc@Dirty.App.call]
 *   handles @name
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data when the action is replaced or the
 *   app finalized
 *
 * Adds an action to the app's table, replacing one of the same name.
 */
void
dirty_app_add_action (DirtyApp         *self,
                      const char       *name,
                      DirtyActionFlags  flags,
                      DirtyActionFunc   func,
                      gpointer          user_data,
                      GDestroyNotify    destroy)
{
  DirtyAppPrivate *priv;
  Action *action;

  g_return_if_fail (DIRTY_IS_APP (self));
  g_return_if_fail (name != NULL && name[0] != '\0');
  g_return_if_fail (g_utf8_validate (name, -1, NULL));
  g_return_if_fail ((flags & ~(DIRTY_ACTION_ASYNC | DIRTY_ACTION_STREAM)) == 0);

  priv = dirty_app_get_instance_private (self);
  action = g_new0 (Action, 1);
  action->flags = flags;
  action->func = func;
  action->user_data = user_data;
  action->destroy = destroy;

  g_mutex_lock (&priv->lock);
  g_hash_table_replace (priv->actions, g_strdup (name), action);
  g_mutex_unlock (&priv->lock);
}

/**
 * dirty_app_lookup_action:
 * @self: a #DirtyApp
 * @name: an action name
 * @out_flags: (out) (optional): return location for the action's flags
 *
 * Looks up a callable action. Names starting with `_` are never callable.
 *
 * Returns: %TRUE if @name is a callable action of the app
 */
gboolean
dirty_app_lookup_action (DirtyApp         *self,
                         const char       *name,
                         DirtyActionFlags *out_flags)
{
  DirtyAppPrivate *priv;
  Action *action;
  gboolean found = FALSE;

  g_return_val_if_fail (DIRTY_IS_APP (self), FALSE);

  if (!is_callable_name (name))
    return FALSE;

  priv = dirty_app_get_instance_private (self);
  g_mutex_lock (&priv->lock);
  action = g_hash_table_lookup (priv->actions, name);
  if (action)
    {
      found = TRUE;
      if (out_flags)
        *out_flags = action->flags;
    }
  g_mutex_unlock (&priv->lock);
  return found;
}

/* g_ptr_array_sort() passes pointers to the elements */
static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/**
 * dirty_app_list_actions:
 * @self: a #DirtyApp
 *
 * Returns: (transfer full) (array zero-terminated=1): the names of the
 *   app's callable actions, sorted
 */
char **
dirty_app_list_actions (DirtyApp *self)
{
  DirtyAppPrivate *priv;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (DIRTY_IS_APP (self), NULL);

  priv = dirty_app_get_instance_private (self);
  g_mutex_lock (&priv->lock);
  g_hash_table_iter_init (&iter, priv->actions);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (is_callable_name (key))
      g_ptr_array_add (names, g_strdup (key));
  g_mutex_unlock (&priv->lock);

  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

/**
 * dirty_app_init:
 * @self: a #DirtyApp
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Runs the app's [vfunc@Dirty.App.init]. The worker calls it; an app
 * calls it only to chain up.
 *
 * Returns: %TRUE if the app is ready for calls
 */
gboolean
dirty_app_init (DirtyApp      *self,
                GCancellable  *cancellable,
                GError       **error)
{
  DirtyAppClass *klass;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (DIRTY_IS_APP (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = DIRTY_APP_GET_CLASS (self);
  if (klass->init == NULL)
    return TRUE;
  if (klass->init (self, cancellable, &local_error))
    {
      if (local_error)
        g_warning ("App %s: init() succeeded but set an error: %s",
                   G_OBJECT_TYPE_NAME (self), local_error->message);
      return TRUE;
    }
  /* A failing init() that forgets its error must not leave the worker
   * with nothing to report. */
  if (local_error == NULL)
    local_error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_FAILED,
                               _("App %s failed to initialise without saying why"),
                               G_OBJECT_TYPE_NAME (self));
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

/**
 * dirty_app_call:
 * @self: a #DirtyApp
 * @call: the call to run
 *
 * Runs @call through the app's [vfunc@Dirty.App.call]. The worker calls
 * it, on a thread for a %DIRTY_ACTION_SYNC action or on its main loop for
 * a %DIRTY_ACTION_ASYNC one.
 */
void
dirty_app_call (DirtyApp  *self,
                DirtyCall *call)
{
  DirtyAppClass *klass;

  g_return_if_fail (DIRTY_IS_APP (self));
  g_return_if_fail (DIRTY_IS_CALL (call));

  klass = DIRTY_APP_GET_CLASS (self);
  if (klass->call == NULL)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_ACTION_NOT_FOUND,
                                   _("App %s cannot be called"), G_OBJECT_TYPE_NAME (self));
      return;
    }
  klass->call (self, call);
}

/**
 * dirty_app_close:
 * @self: a #DirtyApp
 *
 * Runs the app's [vfunc@Dirty.App.close]. The worker calls it once, at
 * shutdown, after every call has ended.
 */
void
dirty_app_close (DirtyApp *self)
{
  DirtyAppClass *klass;

  g_return_if_fail (DIRTY_IS_APP (self));

  klass = DIRTY_APP_GET_CLASS (self);
  if (klass->close)
    klass->close (self);
}

/**
 * dirty_app_describe_call:
 * @self: a #DirtyApp
 * @call: a call of the app that is running
 *
 * Runs the app's [vfunc@Dirty.App.describe_call]: what @call is doing
 * now, in the app's own terms. The worker asks it when a call's deadline
 * passes (or the arbiter asks for the call's BACKTRACE), on a helper
 * thread, and waits for it at most 250 ms; the text goes before the C
 * stack of the thread running the call in the caller's `timeout` error
 * detail and in the journal (`DIRTY_BACKTRACE`). The Python apps'
 * `dirty.App` gives the Python stack of the call: the frames of the
 * thread running a `def` action, or the await chain of an `async def`
 * action's task.
 *
 * An implementation may block briefly (to take a lock, or Python's GIL),
 * must not complete @call, and runs while @call runs on another thread:
 * it reads only what is safe to read from there.
 *
 * Returns: (transfer full) (nullable): the description, several lines
 *   of text, or %NULL when the app has none (also when the class has no
 *   describe_call())
 */
char *
dirty_app_describe_call (DirtyApp  *self,
                         DirtyCall *call)
{
  DirtyAppClass *klass;

  g_return_val_if_fail (DIRTY_IS_APP (self), NULL);
  g_return_val_if_fail (DIRTY_IS_CALL (call), NULL);

  klass = DIRTY_APP_GET_CLASS (self);
  if (klass->describe_call == NULL)
    return NULL;
  return klass->describe_call (self, call);
}
