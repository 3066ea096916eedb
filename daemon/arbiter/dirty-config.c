/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyConfig: the object and its defaults, reload, and the getters;
 * dirty-config-private.h lists the other pieces. */
#include "config.h"

#include "dirty-config-private.h"

G_DEFINE_TYPE (DirtyConfig, dirty_config, G_TYPE_OBJECT)
G_DEFINE_QUARK (dirty-config-error-quark, dirty_config_error)

static void
dirty_config_finalize (GObject *object)
{
  DirtyConfig *self = DIRTY_CONFIG (object);

  g_free (self->worker_socket);
  g_free (self->hooks_module);
  g_free (self->python);
  g_strfreev (self->apps);
  g_free (self->app_workers);
  g_strfreev (self->app_path);
  g_free (self->socket);
  g_free (self->log_file);
  g_clear_pointer (&self->allowed_users, g_array_unref);
  g_clear_pointer (&self->allowed_groups, g_array_unref);
  g_free (self->file);
  g_strfreev (self->argv);
  G_OBJECT_CLASS (dirty_config_parent_class)->finalize (object);
}

static void
dirty_config_class_init (DirtyConfigClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_config_finalize;
}

static void
dirty_config_init (DirtyConfig *self)
{
  const char *const default_path[] = { DIRTY_APPDIR, NULL };

  self->apps = g_new0 (char *, 1);
  self->app_workers = g_new0 (guint, 1);
  self->app_path = g_strdupv ((char **) default_path);
  self->python = g_strdup (DIRTY_PYTHON);
  self->workers = DIRTY_CONFIG_DEFAULT_WORKERS;
  self->timeout = DIRTY_CONFIG_DEFAULT_TIMEOUT;
  self->threads = DIRTY_CONFIG_DEFAULT_THREADS;
  self->graceful_timeout = DIRTY_CONFIG_DEFAULT_GRACEFUL_TIMEOUT;
  self->queue_size = DIRTY_CONFIG_DEFAULT_QUEUE_SIZE;
  self->socket_mode = -1;
  self->socket_group = -1;
  self->max_body = DIRTY_CONFIG_DEFAULT_MAX_BODY;
  self->max_in_flight = DIRTY_CONFIG_DEFAULT_MAX_IN_FLIGHT;
  self->frame_timeout = DIRTY_CONFIG_DEFAULT_FRAME_TIMEOUT;
  self->max_queued = DIRTY_CONFIG_DEFAULT_MAX_QUEUED;
  self->max_connections_per_uid = DIRTY_CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID;
  self->max_fd_payload = DIRTY_CONFIG_DEFAULT_MAX_FD_PAYLOAD;
}

DirtyConfig *
dirty_config_new (void)
{
  return g_object_new (DIRTY_TYPE_CONFIG, NULL);
}

DirtyConfig *
dirty_config_reload (DirtyConfig  *self,
                     GError      **error)
{
  g_autoptr(DirtyConfig) fresh = dirty_config_new ();
  char *no_args[] = { (char *) g_get_prgname (), NULL };

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), NULL);

  if (!dirty_config_parse_command_line (fresh, self->argv ? self->argv : no_args, error))
    return NULL;
  return g_steal_pointer (&fresh);
}

const char * const *
dirty_config_get_apps (DirtyConfig *self)
{
  return (const char * const *) self->apps;
}

const char * const *
dirty_config_get_app_path (DirtyConfig *self)
{
  return (const char * const *) self->app_path;
}

guint
dirty_config_get_workers (DirtyConfig *self)
{
  return self->workers;
}

guint
dirty_config_get_timeout (DirtyConfig *self)
{
  return self->timeout;
}

guint
dirty_config_get_threads (DirtyConfig *self)
{
  return self->threads;
}

guint
dirty_config_get_graceful_timeout (DirtyConfig *self)
{
  return self->graceful_timeout;
}

guint
dirty_config_get_queue_size (DirtyConfig *self)
{
  return self->queue_size;
}

const char *
dirty_config_get_socket (DirtyConfig *self)
{
  return self->socket;
}

const char *
dirty_config_get_log_file (DirtyConfig *self)
{
  return self->log_file;
}

guint
dirty_config_get_app_workers (DirtyConfig *self,
                              const char  *app)
{
  for (guint i = 0; self->apps[i] != NULL; i++)
    if (g_str_equal (self->apps[i], app))
      return self->app_workers[i];
  return 0;
}

const char *
dirty_config_get_file (DirtyConfig *self)
{
  return self->file;
}

gboolean
dirty_config_get_show_version (DirtyConfig *self)
{
  return self->show_version;
}

int
dirty_config_get_socket_mode (DirtyConfig *self)
{
  return self->socket_mode;
}

gint64
dirty_config_get_socket_group (DirtyConfig *self)
{
  return self->socket_group;
}

GArray *
dirty_config_get_allowed_users (DirtyConfig *self)
{
  return self->allowed_users;
}

GArray *
dirty_config_get_allowed_groups (DirtyConfig *self)
{
  return self->allowed_groups;
}

DirtyWorkerMode
dirty_config_get_worker_mode (DirtyConfig *self)
{
  return self->worker_mode;
}

const char *
dirty_config_get_worker_socket (DirtyConfig *self)
{
  return self->worker_socket;
}

guint
dirty_config_get_max_body (DirtyConfig *self)
{
  return self->max_body;
}

guint
dirty_config_get_max_in_flight (DirtyConfig *self)
{
  return self->max_in_flight;
}

guint
dirty_config_get_frame_timeout (DirtyConfig *self)
{
  return self->frame_timeout;
}

guint
dirty_config_get_max_queued (DirtyConfig *self)
{
  return self->max_queued;
}

guint
dirty_config_get_max_connections_per_uid (DirtyConfig *self)
{
  return self->max_connections_per_uid;
}

guint
dirty_config_get_max_fd_payload (DirtyConfig *self)
{
  return self->max_fd_payload;
}

guint
dirty_config_get_max_requests (DirtyConfig *self)
{
  return self->max_requests;
}

guint
dirty_config_get_max_requests_jitter (DirtyConfig *self)
{
  return self->max_requests_jitter;
}

guint
dirty_config_get_max_rss (DirtyConfig *self)
{
  return self->max_rss;
}

guint
dirty_config_get_kill_rss (DirtyConfig *self)
{
  return self->kill_rss;
}

DirtyRecycleOrder
dirty_config_get_recycle_order (DirtyConfig *self)
{
  return self->recycle_order;
}

const char *
dirty_config_get_python (DirtyConfig *self)
{
  return self->python;
}

const char *
dirty_config_get_hooks_module (DirtyConfig *self)
{
  return self->hooks_module;
}
