/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hooksmod.so: a hooks_module for test-recycle.c. Each hook appends
 * "HOOK pid=PID worker_id=K worker_pid=P" (the facts it got) to the file
 * named by $DIRTY_TEST_HOOKS_LOG, one O_APPEND write per line. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <dirty.h>

/* Exported hooks: the signatures of dirty-hooks.h */
void on_dirty_starting (GVariant *facts);
void dirty_post_fork (GVariant *facts);
void dirty_worker_init (GVariant *facts);
void dirty_worker_exit (GVariant *facts);

static void
log_hook (const char *hook,
          GVariant   *facts)
{
  const char *path = g_getenv ("DIRTY_TEST_HOOKS_LOG");
  gint64 pid = -1, worker_pid = -1;
  guint32 worker_id = 0;
  g_autofree char *line = NULL;
  int fd;

  g_return_if_fail (g_variant_is_of_type (facts, G_VARIANT_TYPE_VARDICT));
  if (path == NULL)
    return;
  g_variant_lookup (facts, "pid", "x", &pid);
  g_variant_lookup (facts, "worker_pid", "x", &worker_pid);
  g_variant_lookup (facts, "worker_id", "u", &worker_id);
  line = g_strdup_printf ("%s pid=%" G_GINT64_FORMAT " worker_id=%u worker_pid=%" G_GINT64_FORMAT
                          " real_pid=%d\n", hook, pid, worker_id, worker_pid, (int) getpid ());
  fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (write (fd, line, strlen (line)) < 0)
    g_warning ("cannot write to %s", path);
  close (fd);
}

void
on_dirty_starting (GVariant *facts)
{
  log_hook ("on_dirty_starting", facts);
}

void
dirty_post_fork (GVariant *facts)
{
  log_hook ("dirty_post_fork", facts);
}

void
dirty_worker_init (GVariant *facts)
{
  log_hook ("dirty_worker_init", facts);
}

void
dirty_worker_exit (GVariant *facts)
{
  log_hook ("dirty_worker_exit", facts);
}
