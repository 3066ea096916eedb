/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

#include "dirty-access.h"
#include "dirty-config.h"

struct _DirtyConfig
{
  GObject   parent_instance;

  GStrv     apps;          /* wire names, MODULE:TypeName */
  guint    *app_workers;   /* per app: N from MODULE:TypeName:N, 0 = every worker */
  GStrv     app_path;
  guint     workers;
  guint     timeout;
  guint     threads;
  guint     graceful_timeout;
  guint     queue_size;
  char     *socket;
  char     *log_file;
  int       socket_mode;   /* socket_mode, -1 = the default */
  gint64    socket_group;  /* socket_group as a gid, -1 = unset */
  GArray   *allowed_users; /* uid_t; empty = everyone */
  GArray   *allowed_groups; /* gid_t; empty = everyone */
  char     *file;          /* the main config file read, if any */
  GStrv     argv;          /* the command line, kept for dirty_config_reload() */
  gboolean  show_version;
  DirtyWorkerMode worker_mode;   /* worker_mode: fork (default) or unit */
  char     *worker_socket; /* worker_socket, unit mode; NULL = the default */
  /* Client connection limits (docs/protocol.md, "Limits") */
  guint     max_body;
  guint     max_in_flight;
  guint     frame_timeout;
  guint     max_queued;
  guint     max_connections_per_uid;
  guint     max_fd_payload;  /* MiB */
  /* recycling and hooks (load_recycle) */
  guint     max_requests;
  guint     max_requests_jitter;
  guint     max_rss;       /* MiB */
  guint     kill_rss;      /* MiB */
  DirtyRecycleOrder recycle_order;
  char     *hooks_module;
  char     *python;        /* runs dirty-python-worker for python: apps */
};

G_DEFINE_TYPE (DirtyConfig, dirty_config, G_TYPE_OBJECT)
G_DEFINE_QUARK (dirty-config-error-quark, dirty_config_error)

/* Numeric settings: key, where it lives in the struct, allowed range.
 * The timeout must fit a u32 of milliseconds on the wire. */
typedef struct {
  const char *key;
  gsize       offset;
  guint64     min;
  guint64     max;
} UintKey;

static const UintKey uint_keys[] = {
  { "dirty_workers", G_STRUCT_OFFSET (DirtyConfig, workers), 1, DIRTY_CONFIG_MAX_WORKERS },
  { "dirty_timeout", G_STRUCT_OFFSET (DirtyConfig, timeout), 0, G_MAXUINT32 / 1000 },
  { "dirty_threads", G_STRUCT_OFFSET (DirtyConfig, threads), 1, 1024 },
  { "dirty_graceful_timeout", G_STRUCT_OFFSET (DirtyConfig, graceful_timeout), 0, 24 * 3600 },
  { "dirty_queue_size", G_STRUCT_OFFSET (DirtyConfig, queue_size), 1, 10000000 },
};

static const char *const list_keys[] = { "dirty_apps", "dirty_app_path", "socket", "log_file",
                                          "socket_mode", "socket_group", "allowed_users",
                                          "allowed_groups", NULL };

/* Limits on client connections (hostile clients): same parsing as
 * uint_keys, kept apart so each table grows on its own. max_body fits
 * the wire's u32 lengths; max_queued is a guint of bytes. */
static const UintKey limit_keys[] = {
  { "max_body", G_STRUCT_OFFSET (DirtyConfig, max_body), 1024, 1024 * 1024 * 1024 },
  { "max_in_flight", G_STRUCT_OFFSET (DirtyConfig, max_in_flight), 1, 1000000 },
  { "frame_timeout", G_STRUCT_OFFSET (DirtyConfig, frame_timeout), 100, 3600 * 1000 },
  { "max_queued", G_STRUCT_OFFSET (DirtyConfig, max_queued), 64 * 1024, G_MAXUINT32 },
  { "max_connections_per_uid", G_STRUCT_OFFSET (DirtyConfig, max_connections_per_uid), 0, 1000000 },
  { "max_fd_payload", G_STRUCT_OFFSET (DirtyConfig, max_fd_payload), 1, 16 * 1024 * 1024 },
};

/* Recycling (dirty-pool.c) and hooks (dirty-hooks.c) */
static const UintKey recycle_keys[] = {
  { "dirty_max_requests", G_STRUCT_OFFSET (DirtyConfig, max_requests), 0, G_MAXINT32 },
  { "dirty_max_requests_jitter", G_STRUCT_OFFSET (DirtyConfig, max_requests_jitter), 0, G_MAXINT32 },
  { "dirty_max_rss", G_STRUCT_OFFSET (DirtyConfig, max_rss), 0, 16 * 1024 * 1024 },
  { "dirty_kill_rss", G_STRUCT_OFFSET (DirtyConfig, kill_rss), 0, 16 * 1024 * 1024 },
};
static const char *const recycle_keys_other[] = { "recycle_order", "hooks_module", NULL };

/* Python apps (dirty-worker-proc.c) */
static const char *const python_keys[] = { "python", NULL };

/* Unit mode (dirty-unit-launcher.c) */
static const char *const worker_keys[] = { "worker_mode", "worker_socket", NULL };

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

static guint *
uint_field (DirtyConfig   *self,
            const UintKey *key)
{
  return G_STRUCT_MEMBER_P (self, key->offset);
}

static gboolean
is_type_name (const char *name)
{
  if (!g_ascii_isalpha (*name) && *name != '_')
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_')
      return FALSE;
  return TRUE;
}

static gboolean
fail_spec (GError     **error,
           const char  *spec)
{
  g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
               _("app “%s” is not of the form MODULE:TypeName or MODULE:TypeName:N"), spec);
  return FALSE;
}

/* The worker count of MODULE:TypeName:N: a whole number from 1 (at most
 * the largest pool, so a typo cannot ask for billions). */
static gboolean
parse_app_workers (const char  *spec,
                   const char  *text,
                   guint       *out,
                   GError     **error)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 1, DIRTY_CONFIG_MAX_WORKERS, &value, NULL))
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("app “%s”: the worker count “%s” is not a whole number from 1 to %u"),
                   spec, text, DIRTY_CONFIG_MAX_WORKERS);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

/* package.module: dotted Python identifiers (ASCII, as the worker imports
 * it by that name) */
static gboolean
is_python_module_name (const char *name)
{
  g_auto(GStrv) parts = g_strsplit (name, ".", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (!is_type_name (parts[i]))
      return FALSE;
  return TRUE;
}

/* python:package.module:ClassName[:N], run by dirty-python-worker */
/* What C and Python app specs share once the module (@parts[0]) is
 * checked: the type name, the optional :N, and the normalized name
 * (@prefix MODULE:Type). */
static gboolean
finish_app_spec (const char  *spec,
                 const char  *prefix,
                 GStrv        parts,
                 char       **out_name,
                 guint       *out_workers,
                 GError     **error)
{
  guint workers = 0;

  if (!is_type_name (parts[1]))
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("app “%s”: “%s” is not a type name"), spec, parts[1]);
      return FALSE;
    }
  if (parts[2] != NULL && !parse_app_workers (spec, parts[2], &workers, error))
    return FALSE;
  if (out_name != NULL)
    *out_name = g_strconcat (prefix, parts[0], ":", parts[1], NULL);
  if (out_workers != NULL)
    *out_workers = workers;
  return TRUE;
}

static gboolean
parse_python_app_spec (const char  *spec,
                       char       **out_name,
                       guint       *out_workers,
                       GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (spec + strlen (DIRTY_CONFIG_PYTHON_PREFIX), ":", -1);
  guint n = g_strv_length (parts);

  if (n != 2 && n != 3)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("app “%s” is not of the form python:package.module:ClassName or "
                     "python:package.module:ClassName:N"), spec);
      return FALSE;
    }
  if (!is_python_module_name (parts[0]))
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("app “%s”: “%s” is not a Python module name"), spec, parts[0]);
      return FALSE;
    }
  return finish_app_spec (spec, DIRTY_CONFIG_PYTHON_PREFIX, parts, out_name, out_workers, error);
}

gboolean
dirty_config_parse_app_spec (const char  *spec,
                             char       **out_name,
                             guint       *out_workers,
                             GError     **error)
{
  g_auto(GStrv) parts = NULL;
  guint n;

  if (dirty_config_is_python_app (spec))
    return parse_python_app_spec (spec, out_name, out_workers, error);
  parts = g_strsplit (spec, ":", -1);
  n = g_strv_length (parts);
  if (n != 2 && n != 3)
    return fail_spec (error, spec);
  if (*parts[0] == '\0' || *parts[1] == '\0')
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("app “%s” has an empty module or type name"), spec);
      return FALSE;
    }
  if (g_path_is_absolute (parts[0]) ? !g_str_has_suffix (parts[0], ".so")
                                    : strchr (parts[0], '/') != NULL)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("app “%s”: the module must be a name or an absolute path to a .so file"),
                   spec);
      return FALSE;
    }
  return finish_app_spec (spec, "", parts, out_name, out_workers, error);
}

gboolean
dirty_config_is_python_app (const char *name)
{
  return g_str_has_prefix (name, DIRTY_CONFIG_PYTHON_PREFIX);
}

gboolean
dirty_config_check_app_spec (const char  *spec,
                             GError     **error)
{
  return dirty_config_parse_app_spec (spec, NULL, NULL, error);
}

/* Strips the items, rejects empty ones and, for apps, checks each spec
 * and that none is listed twice. */
static GStrv
clean_list (char     **items,
            gboolean   are_apps,
            GError   **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; items != NULL && items[i] != NULL; i++)
    {
      char *item = g_strstrip (items[i]);
      char *app_name = NULL;

      if (*item == '\0')
        continue;
      if (are_apps && !dirty_config_parse_app_spec (item, &app_name, NULL, error))
        return NULL;
      /* "x:T" and "x:T:2" are the same app */
      if (are_apps && !g_hash_table_add (seen, app_name))
        {
          g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                       _("app “%s” is listed twice"), item);
          return NULL;
        }
      g_strv_builder_add (builder, item);
    }
  return g_strv_builder_end (builder);
}

/* Splits checked specs (from clean_list) into wire names and counts. */
static void
set_apps (DirtyConfig *self,
          GStrv        specs)
{
  guint n = g_strv_length (specs);

  g_strfreev (self->apps);
  g_free (self->app_workers);
  self->apps = g_new0 (char *, n + 1);
  self->app_workers = g_new0 (guint, n + 1);
  for (guint i = 0; i < n; i++)
    dirty_config_parse_app_spec (specs[i], &self->apps[i], &self->app_workers[i], NULL);
  g_strfreev (specs);
}

static gboolean
parse_uint (const UintKey  *key,
            const char     *text,
            guint          *out,
            GError        **error)
{
  guint64 value;
  g_autofree char *stripped = g_strstrip (g_strdup (text));

  if (!g_ascii_string_to_unsigned (stripped, 10, key->min, key->max, &value, NULL))
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("“%s” is not a whole number from %llu to %llu"),
                   text, (unsigned long long) key->min, (unsigned long long) key->max);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

/* The line of @key in the group, for messages; 0 if not found. The last
 * one: GKeyFile keeps the last of duplicate keys. */
static guint
find_key_line (const char *data,
               const char *key)
{
  g_auto(GStrv) lines = g_strsplit (data, "\n", -1);
  gboolean in_group = FALSE;
  gsize key_len = strlen (key);
  guint found = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];

      while (g_ascii_isspace (*line))
        line++;
      if (*line == '[')
        in_group = g_str_has_prefix (line, "[" DIRTY_CONFIG_GROUP "]");
      else if (in_group && strncmp (line, key, key_len) == 0)
        {
          const char *rest = line + key_len;

          while (*rest == ' ' || *rest == '\t')
            rest++;
          if (*rest == '=' || *rest == '[')
            found = i + 1;
        }
    }
  return found;
}

/* Rewrites @error as "FILE:LINE: KEY: message" */
static gboolean
fail_key (GError     **error,
          GError      *cause,
          const char  *name,
          const char  *data,
          const char  *key)
{
  guint line = find_key_line (data, key);

  if (line > 0)
    g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                 "%s:%u: %s: %s", name, line, key, cause->message);
  else
    g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                 "%s: %s: %s", name, key, cause->message);
  g_error_free (cause);
  return FALSE;
}

static gboolean
is_known_key (const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (uint_keys); i++)
    if (g_str_equal (key, uint_keys[i].key))
      return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (limit_keys); i++)
    if (g_str_equal (key, limit_keys[i].key))
      return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (recycle_keys); i++)
    if (g_str_equal (key, recycle_keys[i].key))
      return TRUE;
  return g_strv_contains (list_keys, key) || g_strv_contains (worker_keys, key) ||
         g_strv_contains (recycle_keys_other, key) || g_strv_contains (python_keys, key);
}

static gboolean
check_keys (GKeyFile    *keyfile,
            const char  *name,
            const char  *data,
            GError     **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys (keyfile, DIRTY_CONFIG_GROUP, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!is_known_key (keys[i]))
      return fail_key (error,
                       g_error_new_literal (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                                            _("unknown key")),
                       name, data, keys[i]);
  return TRUE;
}

static gboolean
load_uint_table (DirtyConfig   *self,
                 const UintKey *table,
                 gsize          n_keys,
                 GKeyFile      *keyfile,
                 const char    *name,
                 const char    *data,
                 GError       **error)
{
  for (gsize i = 0; i < n_keys; i++)
    {
      const UintKey *key = &table[i];
      g_autofree char *value = g_key_file_get_value (keyfile, DIRTY_CONFIG_GROUP,
                                                     key->key, NULL);
      GError *local_error = NULL;

      if (value != NULL && !parse_uint (key, value, uint_field (self, key), &local_error))
        return fail_key (error, local_error, name, data, key->key);
    }
  return TRUE;
}

static gboolean
load_uints (DirtyConfig *self,
            GKeyFile    *keyfile,
            const char  *name,
            const char  *data,
            GError     **error)
{
  return load_uint_table (self, uint_keys, G_N_ELEMENTS (uint_keys), keyfile, name, data, error) &&
         load_uint_table (self, limit_keys, G_N_ELEMENTS (limit_keys), keyfile, name, data, error);
}

static gboolean
load_list (GKeyFile    *keyfile,
           const char  *key,
           gboolean     are_apps,
           GStrv       *out,     /* (nullable): NULL for apps, set on @self */
           DirtyConfig *self,
           const char  *name,
           const char  *data,
           GError     **error)
{
  g_auto(GStrv) raw = NULL;
  GError *local_error = NULL;
  GStrv cleaned;

  if (!g_key_file_has_key (keyfile, DIRTY_CONFIG_GROUP, key, NULL))
    return TRUE;
  raw = g_key_file_get_string_list (keyfile, DIRTY_CONFIG_GROUP, key, NULL, &local_error);
  if (raw == NULL)
    return fail_key (error, local_error, name, data, key);
  cleaned = clean_list (raw, are_apps, &local_error);
  if (cleaned == NULL)
    return fail_key (error, local_error, name, data, key);
  if (are_apps)
    {
      set_apps (self, cleaned);
      return TRUE;
    }
  g_strfreev (*out);
  *out = cleaned;
  return TRUE;
}

/* A single path value (socket, log_file): not empty. */
static gboolean
load_path (GKeyFile    *keyfile,
           const char  *key,
           char       **out,
           const char  *name,
           const char  *data,
           GError     **error)
{
  g_autofree char *value = NULL;
  GError *local_error = NULL;

  if (!g_key_file_has_key (keyfile, DIRTY_CONFIG_GROUP, key, NULL))
    return TRUE;
  value = g_key_file_get_string (keyfile, DIRTY_CONFIG_GROUP, key, &local_error);
  if (value == NULL)
    return fail_key (error, local_error, name, data, key);
  g_strstrip (value);
  if (*value == '\0')
    return fail_key (error,
                     g_error_new_literal (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                                          _("the path is empty")),
                     name, data, key);
  g_free (*out);
  *out = g_steal_pointer (&value);
  return TRUE;
}

/* socket_mode (octal), socket_group, allowed_users, allowed_groups */
static gboolean
load_access (DirtyConfig *self,
             GKeyFile    *keyfile,
             const char  *name,
             const char  *data,
             GError     **error)
{
  static const char *const lists[] = { "allowed_users", "allowed_groups" };
  GError *local_error = NULL;
  g_autofree char *mode = g_key_file_get_value (keyfile, DIRTY_CONFIG_GROUP, "socket_mode", NULL);
  g_autofree char *group = g_key_file_get_value (keyfile, DIRTY_CONFIG_GROUP, "socket_group", NULL);
  guint64 value;

  if (mode != NULL)
    {
      if (!g_ascii_string_to_unsigned (g_strstrip (mode), 8, 0, 0777, &value, NULL))
        return fail_key (error,
                         g_error_new (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                                      _("“%s” is not an octal file mode from 0000 to 0777"), mode),
                         name, data, "socket_mode");
      self->socket_mode = (int) value;
    }
  if (group != NULL)
    {
      gid_t gid;

      if (*g_strstrip (group) == '\0')
        self->socket_group = -1;
      else if (!dirty_access_resolve_group (group, &gid, &local_error))
        return fail_key (error, local_error, name, data, "socket_group");
      else
        self->socket_group = gid;
    }
  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    {
      g_auto(GStrv) items = NULL;
      GArray *ids = NULL;
      GArray **field = i == 0 ? &self->allowed_users : &self->allowed_groups;

      if (!g_key_file_has_key (keyfile, DIRTY_CONFIG_GROUP, lists[i], NULL))
        continue;
      items = g_key_file_get_string_list (keyfile, DIRTY_CONFIG_GROUP, lists[i], NULL, &local_error);
      if (items == NULL)
        return fail_key (error, local_error, name, data, lists[i]);
      if (!(i == 0 ? dirty_access_resolve_users (items, &ids, &local_error)
                   : dirty_access_resolve_groups (items, &ids, &local_error)))
        return fail_key (error, local_error, name, data, lists[i]);
      g_clear_pointer (field, g_array_unref);
      *field = ids;
    }
  return TRUE;
}

static gboolean
parse_worker_mode (const char       *text,
                   DirtyWorkerMode  *out,
                   GError          **error)
{
  g_autofree char *stripped = g_strstrip (g_strdup (text));

  if (g_str_equal (stripped, "fork"))
    *out = DIRTY_WORKER_MODE_FORK;
  else if (g_str_equal (stripped, "unit"))
    *out = DIRTY_WORKER_MODE_UNIT;
  else
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("“%s” is neither “fork” nor “unit”"), text);
      return FALSE;
    }
  return TRUE;
}

/* worker_mode and worker_socket */
static gboolean
load_worker_mode (DirtyConfig *self,
                  GKeyFile    *keyfile,
                  const char  *name,
                  const char  *data,
                  GError     **error)
{
  g_autofree char *mode = g_key_file_get_value (keyfile, DIRTY_CONFIG_GROUP, "worker_mode", NULL);
  GError *local_error = NULL;

  if (mode != NULL && !parse_worker_mode (mode, &self->worker_mode, &local_error))
    return fail_key (error, local_error, name, data, "worker_mode");
  return load_path (keyfile, "worker_socket", &self->worker_socket, name, data, error);
}

/* python: the interpreter of dirty-python-worker */
static gboolean
load_python (DirtyConfig *self,
             GKeyFile    *keyfile,
             const char  *name,
             const char  *data,
             GError     **error)
{
  if (!load_path (keyfile, "python", &self->python, name, data, error))
    return FALSE;
  if (!g_path_is_absolute (self->python))
    return fail_key (error,
                     g_error_new (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                                  _("“%s” is not an absolute path"), self->python),
                     name, data, "python");
  return TRUE;
}

/* dirty_max_requests, dirty_max_requests_jitter, dirty_max_rss, dirty_kill_rss,
 * recycle_order and hooks_module */
static gboolean
load_recycle (DirtyConfig *self,
              GKeyFile    *keyfile,
              const char  *name,
              const char  *data,
              GError     **error)
{
  g_autofree char *order = g_key_file_get_value (keyfile, DIRTY_CONFIG_GROUP, "recycle_order", NULL);
  GError *local_error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (recycle_keys); i++)
    {
      const UintKey *key = &recycle_keys[i];
      g_autofree char *value = g_key_file_get_value (keyfile, DIRTY_CONFIG_GROUP,
                                                     key->key, NULL);

      if (value != NULL && !parse_uint (key, value, uint_field (self, key), &local_error))
        return fail_key (error, local_error, name, data, key->key);
    }
  if (order != NULL)
    {
      g_strstrip (order);
      if (g_str_equal (order, "replace-first"))
        self->recycle_order = DIRTY_RECYCLE_REPLACE_FIRST;
      else if (g_str_equal (order, "retire-first"))
        self->recycle_order = DIRTY_RECYCLE_RETIRE_FIRST;
      else
        return fail_key (error,
                         g_error_new (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                                      _("“%s” is neither “replace-first” nor “retire-first”"),
                                      order),
                         name, data, "recycle_order");
    }
  if (!load_path (keyfile, "hooks_module", &self->hooks_module, name, data, error))
    return FALSE;
  if (self->hooks_module != NULL && !g_path_is_absolute (self->hooks_module))
    return fail_key (error,
                     g_error_new (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                                  _("“%s” is not an absolute path"), self->hooks_module),
                     name, data, "hooks_module");
  return TRUE;
}

gboolean
dirty_config_load_data (DirtyConfig  *self,
                        const char   *data,
                        const char   *name,
                        GError      **error)
{
  g_autoptr(GKeyFile) keyfile = g_key_file_new ();
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (data != NULL && name != NULL, FALSE);

  if (!g_key_file_load_from_data (keyfile, data, -1, G_KEY_FILE_NONE, &local_error))
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_PARSE,
                   "%s: %s", name, local_error->message);
      return FALSE;
    }
  return check_keys (keyfile, name, data, error) &&
         load_uints (self, keyfile, name, data, error) &&
         load_list (keyfile, "dirty_apps", TRUE, NULL, self, name, data, error) &&
         load_list (keyfile, "dirty_app_path", FALSE, &self->app_path, self, name, data, error) &&
         load_path (keyfile, "socket", &self->socket, name, data, error) &&
         load_path (keyfile, "log_file", &self->log_file, name, data, error) &&
         load_access (self, keyfile, name, data, error) &&
         load_worker_mode (self, keyfile, name, data, error) &&
         load_recycle (self, keyfile, name, data, error) &&
         load_python (self, keyfile, name, data, error);
}

gboolean
dirty_config_load_file (DirtyConfig  *self,
                        const char   *path,
                        gboolean      must_exist,
                        GError      **error)
{
  g_autofree char *data = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (!g_file_get_contents (path, &data, NULL, &local_error))
    {
      if (!must_exist && g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error_literal (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_NOT_FOUND,
                           local_error->message);
      return FALSE;
    }
  if (!dirty_config_load_data (self, data, path, error))
    return FALSE;
  g_free (self->file);
  self->file = g_strdup (path);
  return TRUE;
}

/* Options as given on the command line; applied after the file. */
typedef struct {
  char     *config;
  GStrv     apps;          /* wire names, MODULE:TypeName */
  guint    *app_workers;   /* per app: N from MODULE:TypeName:N, 0 = every worker */
  GStrv     app_path;
  char     *numbers[G_N_ELEMENTS (uint_keys)];
  char     *limits[G_N_ELEMENTS (limit_keys)];
  char     *socket;
  char     *log_file;
  gboolean  version;
  char     *worker_mode;
  char     *worker_socket;
} Options;

static void
options_clear (Options *options)
{
  g_free (options->config);
  g_strfreev (options->apps);
  g_strfreev (options->app_path);
  for (guint i = 0; i < G_N_ELEMENTS (uint_keys); i++)
    g_free (options->numbers[i]);
  for (guint i = 0; i < G_N_ELEMENTS (limit_keys); i++)
    g_free (options->limits[i]);
  g_free (options->socket);
  g_free (options->log_file);
  g_free (options->worker_mode);
  g_free (options->worker_socket);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Options, options_clear)

static const char summary[] = N_(
  "Runs long-lived worker processes for blocking work (model loading, heavy\n"
  "computation) and routes calls from clients to them over a Unix socket.\n"
  "Command-line options override the config file.");

/* --help's description, in pieces so that a new key changes one msgid;
 * %s are install paths (gettext cannot see through macros) */
static const char description_files[] = N_(
  "Config (GKeyFile syntax): %s/dirty-arbiter/dirty-arbiter.conf,\n"
  "then dirty-arbiter.conf.d/*.conf beside it in lexical order; a user instance\n"
  "(not root, XDG_RUNTIME_DIR set) reads $XDG_CONFIG_HOME/dirty-arbiter/ instead.\n"
  "--config FILE reads FILE alone.\n");

static const char description_keys[] = N_(
  "  [dirty-arbiter]\n"
  "  dirty_apps=MODULE:TypeName;...   apps every worker loads (MODULE may be\n"
  "                                   an absolute path to a .so file);\n"
  "                                   MODULE:TypeName:N loads it on N workers\n"
  "  dirty_workers=1                  number of worker processes\n"
  "  dirty_timeout=300                longest call in seconds (0 = no limit)\n"
  "  dirty_threads=1                  concurrent calls per worker\n"
  "  dirty_graceful_timeout=30        seconds to finish calls on SIGTERM\n"
  "  dirty_app_path=DIR;...           where app modules are looked up\n"
  "                                   (default %s)\n"
  "  dirty_queue_size=10000           waiting calls per app before “busy”\n"
  "  socket=PATH                      listening socket\n"
  "  worker_mode=fork                 fork: the arbiter starts its workers; unit:\n"
  "                                   systemd runs each as dirty-worker@N.service\n"
  "  worker_socket=PATH               unit mode: where workers connect (default\n"
  "                                   $RUNTIME_DIRECTORY/workers.sock)\n"
  "  log_file=PATH                    also write log records there\n"
  "  socket_mode=0660                 mode of a socket it binds itself (0600 for\n"
  "                                   a user instance)\n"
  "  socket_group=GROUP               group of a socket it binds itself\n"
  "  allowed_users=USER;...           who may connect (names or uids; with\n"
  "  allowed_groups=GROUP;...         allowed_groups, incl. supplementary\n"
  "                                   groups); both empty: whoever can open\n"
  "                                   the socket\n");

static const char description_limits[] = N_(
  "  Limits on each client connection (a worker's keeps the defaults):\n"
  "  max_body=67108864                largest frame body in bytes (JSON and\n"
  "                                   attachments)\n"
  "  max_in_flight=1024               calls in flight per connection before\n"
  "                                   “busy”\n"
  "  frame_timeout=30000              ms from a frame's first byte to its last\n"
  "                                   (a slower one is a protocol error)\n"
  "  max_queued=268435456             bytes written to a client it has not read;\n"
  "                                   past that the connection is closed\n"
  "  max_connections_per_uid=4096     connections per client uid (0 = no\n"
  "                                   limit); more get “busy” and are closed\n"
  "  max_fd_payload=4096              MiB of memfd attachments in one frame\n");

static const char description_recycle[] = N_(
  "  dirty_max_requests=0             recycle a worker after that many calls\n"
  "                                   (0 = never)\n"
  "  dirty_max_requests_jitter=0      plus up to that many more, per worker\n"
  "  dirty_max_rss=0                  recycle a worker above that many MiB of\n"
  "                                   resident memory (0 = no limit)\n"
  "  dirty_kill_rss=0                 kill a worker at once above that many MiB\n"
  "                                   (0 = no limit); its calls end worker-lost\n"
  "  recycle_order=replace-first      replace-first: the replacement is ready\n"
  "                                   before the old worker leaves (two copies\n"
  "                                   of the apps for a while); retire-first:\n"
  "                                   the old one leaves first\n"
  "  hooks_module=PATH                a .so with lifecycle hooks (on_dirty_starting,\n"
  "                                   dirty_post_fork, dirty_worker_init,\n"
  "                                   dirty_worker_exit)\n");

static const char description_signals[] = N_(
  "Signals:\n"
  "  SIGTERM, SIGINT  graceful stop: no new calls, running and queued calls\n"
  "                   get dirty_graceful_timeout seconds, then workers stop\n"
  "  SIGQUIT          immediate stop: workers are killed (exit status 0)\n"
  "  SIGHUP           reload the config: new workers, then the old ones leave;\n"
  "                   an invalid config is logged and the old one kept\n"
  "  SIGUSR1          reopen log_file\n"
  "  SIGTTIN, SIGTTOU one worker more, one fewer (never the last worker of an\n"
  "                   app; scaling lasts until the next reload)\n");

static const char description_python[] = N_(
  "  Python apps: dirty_apps=python:package.module:ClassName[:N] (a dirty.App\n"
  "  subclass); a worker with one runs dirty-python-worker, which loads its C\n"
  "  apps too. The module is imported from dirty_app_path, then PYTHONPATH.\n"
  "  python=%s         the interpreter that runs it (needs gi)\n"
  "  DIRTY_PYTHON_WORKER_PATH (environment) overrides %s/dirty-python-worker\n");

static const char description_environment[] = N_(
  "Environment:\n"
  "  DIRTY_ARBITER_SOCKET  socket path when neither socket= nor --socket is set\n"
  "                        (else $XDG_RUNTIME_DIR/dirty-arbiter.sock, or\n"
  "                        /run/dirty-arbiter.sock for root)\n"
  "  DIRTY_WORKER_PATH     the worker executable (default %s/dirty-worker)\n"
  "  NOTIFY_SOCKET         set by systemd: READY=1, STATUS=, RELOADING=1 and\n"
  "                        STOPPING=1 are sent\n"
  "  LISTEN_FDS            socket activation: the fd named “dirty-arbiter”, or the\n"
  "                        only one passed, is used instead of binding\n");

static const char description_exit[] = N_(
  "Exit status: 0 on success, 1 for a bad config or command line, 2 when the\n"
  "service cannot run (for example the socket cannot be bound).");

static GOptionContext *
make_context (Options *options)
{
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &options->config,
      N_("Read settings from FILE"), N_("FILE") },
    { "dirty-app", 'a', 0, G_OPTION_ARG_STRING_ARRAY, &options->apps,
      N_("Serve the app MODULE:TypeName (repeatable; replaces dirty_apps)"), N_("SPEC") },
    { "dirty-workers", 'w', 0, G_OPTION_ARG_STRING, &options->numbers[0],
      N_("Number of worker processes"), N_("N") },
    { "dirty-timeout", 't', 0, G_OPTION_ARG_STRING, &options->numbers[1],
      N_("Longest call in seconds (0 = no limit)"), N_("SECONDS") },
    { "dirty-threads", 0, 0, G_OPTION_ARG_STRING, &options->numbers[2],
      N_("Concurrent calls per worker"), N_("N") },
    { "dirty-graceful-timeout", 0, 0, G_OPTION_ARG_STRING, &options->numbers[3],
      N_("Seconds to finish calls when stopping"), N_("SECONDS") },
    { "dirty-queue-size", 0, 0, G_OPTION_ARG_STRING, &options->numbers[4],
      N_("Waiting calls per app before “busy”"), N_("N") },
    { "app-path", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &options->app_path,
      N_("Look up app modules in DIR (repeatable; replaces dirty_app_path)"), N_("DIR") },
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &options->socket,
      N_("Listen on the Unix socket PATH"), N_("PATH") },
    { "log-file", 0, 0, G_OPTION_ARG_FILENAME, &options->log_file,
      N_("Also write log records to FILE (reopened on SIGUSR1)"), N_("FILE") },
    { "worker-mode", 0, 0, G_OPTION_ARG_STRING, &options->worker_mode,
      N_("fork (default): start workers as child processes; unit: as systemd "
         "units dirty-worker@N.service"), N_("MODE") },
    { "worker-socket", 0, 0, G_OPTION_ARG_FILENAME, &options->worker_socket,
      N_("Unit mode: the socket workers connect to"), N_("PATH") },
    { "max-body", 0, 0, G_OPTION_ARG_STRING, &options->limits[0],
      N_("Largest frame body a client may send, in bytes"), N_("BYTES") },
    { "max-in-flight", 0, 0, G_OPTION_ARG_STRING, &options->limits[1],
      N_("Calls in flight per client connection before “busy”"), N_("N") },
    { "frame-timeout", 0, 0, G_OPTION_ARG_STRING, &options->limits[2],
      N_("Milliseconds a client may take to send one frame"), N_("MS") },
    { "max-queued", 0, 0, G_OPTION_ARG_STRING, &options->limits[3],
      N_("Bytes a client may leave unread before it is disconnected"), N_("BYTES") },
    { "max-connections-per-uid", 0, 0, G_OPTION_ARG_STRING, &options->limits[4],
      N_("Connections per client uid (0 = no limit)"), N_("N") },
    { "max-fd-payload", 0, 0, G_OPTION_ARG_STRING, &options->limits[5],
      N_("MiB of memfd attachments in one frame"), N_("MIB") },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &options->version,
      N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionContext *context = g_option_context_new (NULL);
  g_autofree char *description = NULL;
  g_autofree char *keys = NULL;
  g_autofree char *environment = NULL;
  g_autofree char *python = NULL;
  g_autofree char *full = NULL;

  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context, _(summary));
  description = g_strdup_printf (_(description_files), DIRTY_SYSCONFDIR);
  keys = g_strdup_printf (_(description_keys), DIRTY_APPDIR);
  environment = g_strdup_printf (_(description_environment), DIRTY_LIBEXECDIR);
  python = g_strdup_printf (_(description_python), DIRTY_PYTHON, DIRTY_LIBEXECDIR);
  full = g_strjoin ("\n", description, keys, _(description_limits), _(description_recycle),
                    python, _(description_signals),
                    environment,
                    _(description_exit), NULL);
  g_option_context_set_description (context, full);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  return context;
}

static gboolean
fail_usage (GError    **error,
            const char *option,
            GError     *cause)
{
  g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
               "--%s: %s", option, cause->message);
  g_error_free (cause);
  return FALSE;
}

static gboolean
apply_options (DirtyConfig  *self,
               Options      *options,
               GError      **error)
{
  GError *local_error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (uint_keys); i++)
    {
      const UintKey *key = &uint_keys[i];
      g_autofree char *option = g_strdelimit (g_strdup (key->key), "_", '-');

      if (options->numbers[i] != NULL &&
          !parse_uint (key, options->numbers[i], uint_field (self, key), &local_error))
        return fail_usage (error, option, local_error);
    }
  for (guint i = 0; i < G_N_ELEMENTS (limit_keys); i++)
    {
      const UintKey *key = &limit_keys[i];
      g_autofree char *option = g_strdelimit (g_strdup (key->key), "_", '-');

      if (options->limits[i] != NULL &&
          !parse_uint (key, options->limits[i], uint_field (self, key), &local_error))
        return fail_usage (error, option, local_error);
    }
  if (options->apps != NULL)
    {
      GStrv apps = clean_list (options->apps, TRUE, &local_error);

      if (apps == NULL)
        return fail_usage (error, "dirty-app", local_error);
      set_apps (self, apps);
    }
  if (options->app_path != NULL)
    {
      g_strfreev (self->app_path);
      self->app_path = clean_list (options->app_path, FALSE, NULL);
    }
  if (options->socket != NULL)
    {
      g_free (self->socket);
      self->socket = g_strdup (options->socket);
    }
  if (options->log_file != NULL)
    {
      g_free (self->log_file);
      self->log_file = g_strdup (options->log_file);
    }
  if (options->worker_mode != NULL &&
      !parse_worker_mode (options->worker_mode, &self->worker_mode, &local_error))
    return fail_usage (error, "worker-mode", local_error);
  if (options->worker_socket != NULL)
    {
      g_free (self->worker_socket);
      self->worker_socket = g_strdup (options->worker_socket);
    }
  return TRUE;
}

/* Checks between keys, once every source is applied: a per-app count
 * must fit the pool, and every worker must get at least one app (a
 * worker refuses to start without one). */
static gboolean
dirty_config_validate (DirtyConfig  *self,
                       GError      **error)
{
  guint counted = 0;
  gboolean every_worker_app = FALSE;

  for (guint i = 0; self->apps[i] != NULL; i++)
    {
      guint n = self->app_workers[i];

      /* a unit's ExecStart= is the C dirty-worker */
      if (dirty_config_is_python_app (self->apps[i]) &&
          self->worker_mode == DIRTY_WORKER_MODE_UNIT)
        {
          g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                       _("dirty_apps: the Python app “%s” needs worker_mode=fork"),
                       self->apps[i]);
          return FALSE;
        }
      if (n == 0)
        every_worker_app = TRUE;
      else if (n > self->workers)
        {
          g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                       _("dirty_apps: app “%s:%u” asks for %u workers, but dirty_workers is %u"),
                       self->apps[i], n, n, self->workers);
          return FALSE;
        }
      counted += n;
    }
  if (self->apps[0] != NULL && !every_worker_app && counted < self->workers)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("dirty_apps: the per-app worker counts add up to %u, so some of the "
                     "%u workers (dirty_workers) would have no app; list an app without "
                     ":N, or lower dirty_workers"),
                   counted, self->workers);
      return FALSE;
    }
  return TRUE;
}

char *
dirty_config_dup_default_dir (void)
{
  /* The system instance runs as root, or as the system service's own
   * (DynamicUser=) user, which has no XDG_RUNTIME_DIR. A user instance
   * (the user manager's, or started in a session) has one. */
  if (geteuid () == 0 || g_getenv ("XDG_RUNTIME_DIR") == NULL)
    return g_build_filename (DIRTY_SYSCONFDIR, "dirty-arbiter", NULL);
  return g_build_filename (g_get_user_config_dir (), "dirty-arbiter", NULL);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The *.conf files of @dir, sorted by name (bytes, as systemd does). */
static GPtrArray *
list_drop_ins (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) handle = g_dir_open (dir, 0, NULL);
  const char *name;

  while (handle != NULL && (name = g_dir_read_name (handle)) != NULL)
    if (g_str_has_suffix (name, ".conf") && name[0] != '.')
      g_ptr_array_add (names, g_build_filename (dir, name, NULL));
  g_ptr_array_sort (names, compare_names);
  return names;
}

gboolean
dirty_config_load_dir (DirtyConfig  *self,
                       const char   *dir,
                       GError      **error)
{
  g_autofree char *main_file = g_build_filename (dir, "dirty-arbiter.conf", NULL);
  g_autofree char *drop_in_dir = g_build_filename (dir, "dirty-arbiter.conf.d", NULL);
  g_autoptr(GPtrArray) drop_ins = list_drop_ins (drop_in_dir);
  g_autofree char *read_first = NULL;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);

  if (!dirty_config_load_file (self, main_file, FALSE, error))
    return FALSE;
  read_first = g_strdup (self->file);
  for (guint i = 0; i < drop_ins->len; i++)
    if (!dirty_config_load_file (self, drop_ins->pdata[i], TRUE, error))
      return FALSE;
  /* the main file names the config in messages, even after drop-ins */
  if (read_first != NULL)
    {
      g_free (self->file);
      self->file = g_steal_pointer (&read_first);
    }
  return TRUE;
}

gboolean
dirty_config_parse_command_line (DirtyConfig  *self,
                                 char        **argv,
                                 GError      **error)
{
  g_auto(Options) options = { 0 };
  g_autoptr(GOptionContext) context = make_context (&options);
  g_auto(GStrv) args = g_strdupv (argv);
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);

  g_strfreev (self->argv);
  self->argv = g_strdupv (argv);
  if (!g_option_context_parse_strv (context, &args, &local_error))
    {
      g_set_error_literal (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
                           local_error->message);
      return FALSE;
    }
  if (args[0] != NULL && args[1] != NULL)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
                   _("unexpected argument “%s”"), args[1]);
      return FALSE;
    }
  self->show_version = options.version;
  if (options.version)
    return TRUE;

  if (options.config != NULL)
    {
      if (!dirty_config_load_file (self, options.config, TRUE, error))
        return FALSE;
    }
  else
    {
      g_autofree char *dir = dirty_config_dup_default_dir ();

      if (!dirty_config_load_dir (self, dir, error))
        return FALSE;
    }
  return apply_options (self, &options, error) && dirty_config_validate (self, error);
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
