/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where dirtyctl call and stream put results: standard output, or the
 * file of --output. A file is checked (call) or opened (stream) before
 * the call is sent, so a path that cannot be written fails at once and
 * not after the worker did the work. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "dirtyctl.h"

/* A device or a pipe (-o /dev/stdout) is written to as it is: there is
 * no file to replace. */
static gboolean
is_special (GFile *file)
{
  return g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_SPECIAL;
}

gboolean
dirtyctl_check_output (const char  *path,
                       GError     **error)
{
  g_autoptr(GFile) file = g_file_new_for_commandline_arg (path);
  g_autoptr(GFile) parent = g_file_get_parent (file);
  g_autofree char *local = g_file_get_path (file);
  g_autofree char *dir = parent != NULL ? g_file_get_path (parent) : NULL;
  GFileType type = g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, NULL);
  /* an existing file is replaced, a new one created in its directory */
  const char *checked = type == G_FILE_TYPE_UNKNOWN ? dir : local;

  /* a URI that GIO writes through a VFS: its own error tells, later */
  if (!g_file_is_native (file))
    return TRUE;
  if (type == G_FILE_TYPE_DIRECTORY)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY,
                   _("cannot write the result to “%s”: it is a directory"), path);
      return FALSE;
    }
  if (checked == NULL || access (checked, W_OK) != 0)
    {
      int saved = checked == NULL ? ENOENT : errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("cannot write the result to “%s”: %s"), path, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

GOutputStream *
dirtyctl_open_output (const char  *path,
                      GError     **error)
{
  g_autoptr(GFile) file = g_file_new_for_commandline_arg (path);

  if (is_special (file))
    return G_OUTPUT_STREAM (g_file_append_to (file, G_FILE_CREATE_NONE, NULL, error));
  return G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, error));
}

gboolean
dirtyctl_write_output (const char  *path,
                       const void  *data,
                       gsize        size,
                       GError     **error)
{
  g_autoptr(GOutputStream) stream = dirtyctl_open_output (path, error);

  return stream != NULL &&
         g_output_stream_write_all (stream, data, size, NULL, NULL, error) &&
         g_output_stream_close (stream, NULL, error);
}

gboolean
dirtyctl_print_out (const void  *data,
                    gsize        size,
                    GError     **error)
{
  if (fwrite (data, 1, size, stdout) == size && fflush (stdout) == 0)
    return TRUE;
  dirtyctl_set_output_error (error);
  return FALSE;
}
