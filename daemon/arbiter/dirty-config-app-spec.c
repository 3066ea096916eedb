/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* App specs: MODULE:TypeName[:N] and python:package.module:ClassName[:N]. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "dirty-config.h"

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
