/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-error-private.h"

/* Extended GError (GLib >= 2.68): an app error carries where it happened
 * and the app's backtrace, which a plain message cannot hold apart. */
typedef struct {
  char   *app;
  char   *action;
  char   *detail;
  gint64  worker_pid;
} DirtyErrorPrivate;

static void
dirty_error_private_init (DirtyErrorPrivate *priv)
{
  priv->worker_pid = 0;
}

static void
dirty_error_private_copy (const DirtyErrorPrivate *src,
                          DirtyErrorPrivate       *dest)
{
  dest->app = g_strdup (src->app);
  dest->action = g_strdup (src->action);
  dest->detail = g_strdup (src->detail);
  dest->worker_pid = src->worker_pid;
}

static void
dirty_error_private_clear (DirtyErrorPrivate *priv)
{
  g_clear_pointer (&priv->app, g_free);
  g_clear_pointer (&priv->action, g_free);
  g_clear_pointer (&priv->detail, g_free);
}

/**
 * dirty_error_quark:
 *
 * Returns: the error domain of dirty-arbiter errors.
 */
G_DEFINE_EXTENDED_ERROR (DirtyError, dirty_error)

/* Wire names, indexed by DirtyError; append-only like the enum. */
static const char *const wire_names[] = {
  [DIRTY_ERROR_FAILED] = "failed",
  [DIRTY_ERROR_TIMEOUT] = "timeout",
  [DIRTY_ERROR_CONNECTION] = "connection",
  [DIRTY_ERROR_APP] = "app-error",
  [DIRTY_ERROR_APP_NOT_FOUND] = "app-not-found",
  [DIRTY_ERROR_ACTION_NOT_FOUND] = "action-not-found",
  [DIRTY_ERROR_NO_WORKER] = "no-worker",
  [DIRTY_ERROR_WORKER_LOST] = "worker-lost",
  [DIRTY_ERROR_BUSY] = "busy",
  [DIRTY_ERROR_PROTOCOL] = "protocol",
  [DIRTY_ERROR_INVALID_ARGUMENT] = "invalid-argument",
  [DIRTY_ERROR_CANCELLED] = "cancelled",
  [DIRTY_ERROR_SHUTTING_DOWN] = "shutting-down",
  [DIRTY_ERROR_PERMISSION_DENIED] = "permission-denied",
};

/**
 * dirty_error_to_wire:
 * @code: a #DirtyError
 *
 * Returns: (transfer none): the name of @code in the wire protocol, such
 *   as `"timeout"`; `"failed"` for an unknown value.
 */
const char *
dirty_error_to_wire (DirtyError code)
{
  if ((guint) code >= G_N_ELEMENTS (wire_names))
    return wire_names[DIRTY_ERROR_FAILED];
  return wire_names[code];
}

/**
 * dirty_error_from_wire:
 * @name: (nullable): a wire error name
 *
 * Returns: the #DirtyError named @name, or %DIRTY_ERROR_FAILED when the
 *   name is unknown (a newer peer may send codes this version lacks).
 */
DirtyError
dirty_error_from_wire (const char *name)
{
  if (name == NULL)
    return DIRTY_ERROR_FAILED;
  for (guint i = 0; i < G_N_ELEMENTS (wire_names); i++)
    if (g_str_equal (name, wire_names[i]))
      return (DirtyError) i;
  return DIRTY_ERROR_FAILED;
}

static const DirtyErrorPrivate *
lookup_private (const GError *error)
{
  if (error == NULL || error->domain != DIRTY_ERROR)
    return NULL;
  return dirty_error_get_private (error);
}

/**
 * dirty_error_get_app:
 * @error: a #GError
 *
 * Returns: (transfer none) (nullable): the app the error happened in, if
 *   @error is a %DIRTY_ERROR that names one.
 */
const char *
dirty_error_get_app (const GError *error)
{
  const DirtyErrorPrivate *priv = lookup_private (error);
  return priv ? priv->app : NULL;
}

/**
 * dirty_error_get_action:
 * @error: a #GError
 *
 * Returns: (transfer none) (nullable): the action the error happened in,
 *   if @error is a %DIRTY_ERROR that names one.
 */
const char *
dirty_error_get_action (const GError *error)
{
  const DirtyErrorPrivate *priv = lookup_private (error);
  return priv ? priv->action : NULL;
}

/**
 * dirty_error_get_detail:
 * @error: a #GError
 *
 * The app, action, detail and worker pid travel in the #GError itself
 * (an extended error): C and GJS, which pass the caller's #GError back,
 * see them; PyGObject rebuilds a #GError from the domain, code and
 * message it kept, so from Python these functions return %NULL and 0.
 *
 * Returns: (transfer none) (nullable): the backtrace or detail string the
 *   app attached to the error, if any.
 */
const char *
dirty_error_get_detail (const GError *error)
{
  const DirtyErrorPrivate *priv = lookup_private (error);
  return priv ? priv->detail : NULL;
}

/**
 * dirty_error_get_worker_pid:
 * @error: a #GError
 *
 * Returns: the process id of the worker the error happened in, or 0.
 */
gint64
dirty_error_get_worker_pid (const GError *error)
{
  const DirtyErrorPrivate *priv = lookup_private (error);
  return priv ? priv->worker_pid : 0;
}

GError *
dirty_error_new_full (DirtyError  code,
                      const char *app,
                      const char *action,
                      const char *detail,
                      gint64      worker_pid,
                      const char *message)
{
  GError *error = g_error_new_literal (DIRTY_ERROR, code,
                                       message ? message : dirty_error_to_wire (code));
  DirtyErrorPrivate *priv = dirty_error_get_private (error);

  priv->app = g_strdup (app);
  priv->action = g_strdup (action);
  priv->detail = g_strdup (detail);
  priv->worker_pid = worker_pid;
  return error;
}
