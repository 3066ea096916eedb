/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-i18n-private.h"
#include <gmodule.h>

#include "dirty-app-loader-private.h"
#include "dirty-error.h"

static gboolean
is_c_identifier (const char *s)
{
  if (s == NULL || !(g_ascii_isalpha (s[0]) || s[0] == '_'))
    return FALSE;
  for (const char *p = s + 1; *p; p++)
    if (!(g_ascii_isalnum (*p) || *p == '_'))
      return FALSE;
  return TRUE;
}

static gboolean
is_all_digits (const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isdigit (*s))
      return FALSE;
  return TRUE;
}

gboolean
dirty_app_loader_parse_name (const char  *name,
                             char       **out_module,
                             char       **out_type_name,
                             GError     **error)
{
  g_autofree char *copy = g_strdup (name);
  char *colon;

  g_return_val_if_fail (name != NULL, FALSE);

  /* Split from the right: an absolute module path may itself hold ':'. */
  colon = strrchr (copy, ':');
  if (colon != NULL && is_all_digits (colon + 1) && strchr (copy, ':') != colon)
    {
      *colon = '\0';
      colon = strrchr (copy, ':');
    }
  if (colon == NULL || colon == copy)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   _("Invalid app name “%s”: expected MODULE:TypeName, "
                     "such as echo:DirtyEchoApp"), name);
      return FALSE;
    }
  *colon = '\0';
  if (!is_c_identifier (colon + 1))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   _("Invalid app name “%s”: “%s” is not a type name"),
                   name, colon + 1);
      return FALSE;
    }
  if (!g_path_is_absolute (copy) &&
      (strchr (copy, '/') != NULL || copy[0] == '.'))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   _("Invalid app name “%s”: the module must be a plain name "
                     "found on the app path, or an absolute path"), name);
      return FALSE;
    }

  if (out_type_name)
    *out_type_name = g_strdup (colon + 1);
  if (out_module)
    *out_module = g_strdup (copy);
  return TRUE;
}

/* The GType convention: DirtyEchoApp -> dirty_echo_app, and an acronym
 * stays one word: DirtyHTTPApp -> dirty_http_app. */
char *
dirty_app_loader_type_symbol (const char *type_name)
{
  GString *symbol = g_string_new (NULL);

  for (gsize i = 0; type_name[i]; i++)
    {
      char c = type_name[i];

      if (g_ascii_isupper (c) && i > 0)
        {
          char prev = type_name[i - 1];
          char next = type_name[i + 1];

          if (g_ascii_islower (prev) || g_ascii_isdigit (prev) ||
              (g_ascii_isupper (prev) && g_ascii_islower (next)))
            g_string_append_c (symbol, '_');
        }
      g_string_append_c (symbol, g_ascii_tolower (c));
    }
  g_string_append (symbol, "_get_type");
  return g_string_free (symbol, FALSE);
}

static GPtrArray *
candidate_paths (const char         *module_name,
                 const char * const *app_path)
{
  static const char *const default_path[] = { DIRTY_APPDIR, NULL };
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);

  if (g_path_is_absolute (module_name))
    {
      g_ptr_array_add (paths, g_strdup (module_name));
      return paths;
    }
  if (app_path == NULL || app_path[0] == NULL)
    app_path = (const char * const *) default_path;

  for (gsize i = 0; app_path[i]; i++)
    {
      if (app_path[i][0] == '\0')
        continue;
      if (g_str_has_suffix (module_name, ".so"))
        g_ptr_array_add (paths, g_build_filename (app_path[i], module_name, NULL));
      g_ptr_array_add (paths, g_strdup_printf ("%s/%s.so", app_path[i], module_name));
      g_ptr_array_add (paths, g_strdup_printf ("%s/lib%s.so", app_path[i], module_name));
    }
  return paths;
}

/* The first candidate that exists wins, as on $PATH: a module that exists
 * but fails to load is an error, not a reason to look further. */
static GModule *
open_module (const char          *module_name,
             const char * const  *app_path,
             char               **out_path,
             GError             **error)
{
  g_autoptr(GPtrArray) paths = candidate_paths (module_name, app_path);
  g_autofree char *tried = NULL;

  for (guint i = 0; i < paths->len; i++)
    {
      const char *path = g_ptr_array_index (paths, i);
      g_autoptr(GError) local_error = NULL;
      GModule *module;

      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        continue;
      /* Resolve every symbol now (no G_MODULE_BIND_LAZY): a module with a
       * missing dependency fails here with a message, not later with a
       * crash in the middle of a call. LOCAL keeps apps' symbols apart. */
      module = g_module_open_full (path, G_MODULE_BIND_LOCAL, &local_error);
      if (module == NULL)
        {
          g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
                       _("Could not load module “%s” from %s: %s"),
                       module_name, path, local_error->message);
          return NULL;
        }
      *out_path = g_strdup (path);
      return module;
    }

  g_ptr_array_add (paths, NULL);
  tried = g_strjoinv (", ", (char **) paths->pdata);
  g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
               _("Module “%s” not found (tried %s)"),
               module_name, paths->len > 1 ? tried : _("an empty app path"));
  return NULL;
}

static GType
lookup_type (GModule     *module,
             const char  *module_name,
             const char  *path,
             const char  *type_name,
             GError     **error)
{
  g_autofree char *symbol = dirty_app_loader_type_symbol (type_name);
  GType (*get_type) (void) = NULL;
  GType type;

  if (!g_module_symbol (module, symbol, (gpointer *) &get_type) || get_type == NULL)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
                   _("Module “%s” (%s) has no symbol %s for type %s"),
                   module_name, path, symbol, type_name);
      return G_TYPE_INVALID;
    }

  /* Calling get_type() registers a static type whose class functions live
   * in the module: from here on it must never be unloaded. */
  g_module_make_resident (module);
  type = get_type ();

  if (type == G_TYPE_INVALID || !g_type_is_a (type, DIRTY_TYPE_APP))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
                   _("Type %s from module “%s” (%s, symbol %s) is not a DirtyApp "
                     "(it derives from %s)"),
                   type_name, module_name, path, symbol,
                   type ? g_type_name (g_type_parent (type)) : "nothing");
      return G_TYPE_INVALID;
    }
  if (G_TYPE_IS_ABSTRACT (type))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
                   _("Type %s from module “%s” (%s, symbol %s) is abstract"),
                   type_name, module_name, path, symbol);
      return G_TYPE_INVALID;
    }
  return type;
}

DirtyApp *
dirty_app_loader_load (const char         *name,
                       const char * const *app_path,
                       GError            **error)
{
  g_autofree char *module_name = NULL;
  g_autofree char *type_name = NULL;
  g_autofree char *path = NULL;
  g_autofree char *app_name = NULL;
  GModule *module;
  GType type;

  g_return_val_if_fail (name != NULL, NULL);

  if (!dirty_app_loader_parse_name (name, &module_name, &type_name, error))
    return NULL;
  module = open_module (module_name, app_path, &path, error);
  if (module == NULL)
    return NULL;

  type = lookup_type (module, module_name, path, type_name, error);
  if (type == G_TYPE_INVALID)
    {
      /* Unloads the module only if none of its code ran (not resident). */
      g_module_close (module);
      return NULL;
    }

  /* The module stays open for the life of the process (it is resident). */
  app_name = g_strdup_printf ("%s:%s", module_name, type_name);
  g_debug ("Loaded app %s as %s from %s", app_name, g_type_name (type), path);
  return g_object_new (type, "name", app_name, NULL);
}
