/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-util.h"

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

GPtrArray *
dirty_util_sorted_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_names);
  return keys;
}

static struct rlimit saved_fd_limit;
static gboolean      fd_limit_raised;

void
dirty_util_raise_fd_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur >= limit.rlim_max)
    return;
  saved_fd_limit = limit;
  limit.rlim_cur = limit.rlim_max;
  fd_limit_raised = setrlimit (RLIMIT_NOFILE, &limit) == 0;
  if (!fd_limit_raised)
    g_warning ("cannot raise the open file limit to %llu: %s",
               (unsigned long long) limit.rlim_max, g_strerror (errno));
}

void
dirty_util_restore_fd_limit (void)
{
  if (fd_limit_raised)
    setrlimit (RLIMIT_NOFILE, &saved_fd_limit);
}

void
dirty_util_bound_path_set (DirtyBoundPath *bound,
                           const char     *path)
{
  struct stat st;

  g_free (bound->path);
  bound->path = g_strdup (path);
  if (lstat (path, &st) == 0)
    {
      bound->dev = st.st_dev;
      bound->ino = st.st_ino;
    }
}

void
dirty_util_bound_path_remove (DirtyBoundPath *bound)
{
  struct stat st;

  if (bound->path != NULL && lstat (bound->path, &st) == 0 && S_ISSOCK (st.st_mode) &&
      st.st_dev == bound->dev && st.st_ino == bound->ino)
    unlink (bound->path);
  g_clear_pointer (&bound->path, g_free);
}
