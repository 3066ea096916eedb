/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyConfig's keys: what each one holds and accepts, and reading
 * them from a config file's text (dirty_config_load_data). */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "dirty-access.h"
#include "dirty-config-private.h"

/* The timeout must fit a u32 of milliseconds on the wire. */
const UintKey dirty_config_uint_keys[DIRTY_CONFIG_N_UINT_KEYS] = {
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
 * dirty_config_uint_keys, kept apart so each table grows on its own.
 * max_body fits the wire's u32 lengths; max_queued is a guint of bytes. */
const UintKey dirty_config_limit_keys[DIRTY_CONFIG_N_LIMIT_KEYS] = {
  { "max_body", G_STRUCT_OFFSET (DirtyConfig, max_body), 1024, 1024 * 1024 * 1024 },
  { "max_in_flight", G_STRUCT_OFFSET (DirtyConfig, max_in_flight), 1, 1000000 },
  { "frame_timeout", G_STRUCT_OFFSET (DirtyConfig, frame_timeout), 100, 3600 * 1000 },
  { "max_queued", G_STRUCT_OFFSET (DirtyConfig, max_queued), 64 * 1024, G_MAXUINT32 },
  { "max_connections_per_uid", G_STRUCT_OFFSET (DirtyConfig, max_connections_per_uid), 0, 1000000 },
  { "max_fd_payload", G_STRUCT_OFFSET (DirtyConfig, max_fd_payload), 1, 16 * 1024 * 1024 },
};

/* Recycling (dirty-pool-recycle.c) and hooks (dirty-hooks.c) */
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

guint *
dirty_config_uint_field (DirtyConfig   *self,
                         const UintKey *key)
{
  return G_STRUCT_MEMBER_P (self, key->offset);
}

GStrv
dirty_config_clean_list (char     **items,
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

void
dirty_config_set_apps (DirtyConfig *self,
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

gboolean
dirty_config_parse_uint (const UintKey  *key,
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
  for (guint i = 0; i < G_N_ELEMENTS (dirty_config_uint_keys); i++)
    if (g_str_equal (key, dirty_config_uint_keys[i].key))
      return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (dirty_config_limit_keys); i++)
    if (g_str_equal (key, dirty_config_limit_keys[i].key))
      return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (recycle_keys); i++)
    if (g_str_equal (key, recycle_keys[i].key))
      return TRUE;
  return g_strv_contains (list_keys, key) || g_strv_contains (worker_keys, key) ||
         g_strv_contains (recycle_keys_other, key) || g_strv_contains (python_keys, key);
}

/* The line where group @group starts, for messages; 0 if not found */
static guint
find_group_line (const char *data,
                 const char *group)
{
  g_auto(GStrv) lines = g_strsplit (data, "\n", -1);
  g_autofree char *header = g_strdup_printf ("[%s]", group);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (g_strchug (lines[i]), header))
      return i + 1;
  return 0;
}

/* Settings under any other group would be ignored without a word: a
 * typo in the group name ([dirty_arbiter]) loses them all. X-* groups
 * are the user's own, as in systemd's unit files. */
static gboolean
check_groups (GKeyFile    *keyfile,
              const char  *name,
              const char  *data,
              GError     **error)
{
  g_auto(GStrv) groups = g_key_file_get_groups (keyfile, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    if (!g_str_equal (groups[i], DIRTY_CONFIG_GROUP) && !g_str_has_prefix (groups[i], "X-"))
      {
        g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                     _("%s:%u: unknown group [%s]: settings go in [%s] "
                       "(a group of your own: [X-...])"),
                     name, find_group_line (data, groups[i]), groups[i], DIRTY_CONFIG_GROUP);
        return FALSE;
      }
  return TRUE;
}

static gboolean
check_keys (GKeyFile    *keyfile,
            const char  *name,
            const char  *data,
            GError     **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys (keyfile, DIRTY_CONFIG_GROUP, NULL, NULL);

  if (!check_groups (keyfile, name, data, error))
    return FALSE;

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

      if (value != NULL &&
          !dirty_config_parse_uint (key, value, dirty_config_uint_field (self, key), &local_error))
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
  return load_uint_table (self, dirty_config_uint_keys, G_N_ELEMENTS (dirty_config_uint_keys),
                          keyfile, name, data, error) &&
         load_uint_table (self, dirty_config_limit_keys, G_N_ELEMENTS (dirty_config_limit_keys),
                          keyfile, name, data, error);
}

/* Relative to what? A daemon's directory is whatever started it (/
 * under systemd, and a worker unit's differs from the arbiter's). */
static GError *
not_absolute (const char *path)
{
  return g_error_new (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                      _("“%s” is not an absolute path"), path);
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
  cleaned = dirty_config_clean_list (raw, are_apps, &local_error);
  if (cleaned == NULL)
    return fail_key (error, local_error, name, data, key);
  if (are_apps)
    {
      dirty_config_set_apps (self, cleaned);
      return TRUE;
    }
  for (guint i = 0; cleaned[i] != NULL; i++)
    if (!g_path_is_absolute (cleaned[i]))
      {
        local_error = not_absolute (cleaned[i]);
        g_strfreev (cleaned);
        return fail_key (error, local_error, name, data, key);
      }
  g_strfreev (*out);
  *out = cleaned;
  return TRUE;
}

/* A single path value (socket, log_file, worker_socket, python): not
 * empty, absolute. */
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
  if (!g_path_is_absolute (value))
    return fail_key (error, not_absolute (value), name, data, key);
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

gboolean
dirty_config_parse_worker_mode (const char       *text,
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

  if (mode != NULL && !dirty_config_parse_worker_mode (mode, &self->worker_mode, &local_error))
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
  return load_path (keyfile, "python", &self->python, name, data, error);
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

  if (!load_uint_table (self, recycle_keys, G_N_ELEMENTS (recycle_keys), keyfile, name, data, error))
    return FALSE;
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
    return fail_key (error, not_absolute (self->hooks_module), name, data, "hooks_module");
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

  /* a byte order mark, as some editors write: skipped, as systemd does
   * in its own config files (GKeyFile would call the first line bad) */
  if (g_str_has_prefix (data, "\xef\xbb\xbf"))
    data += 3;
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

