/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-io-private.h"

/* Like GDBus's worker thread: one thread and one GMainContext for every
 * client in the process, started on first use and never stopped (its
 * sources belong to clients, which remove them when they go away). */

static GMainContext *io_context;
static GThread *io_thread;

static gpointer
dirty_io_thread (gpointer data)
{
  GMainContext *context = data;
  g_autoptr(GMainLoop) loop = g_main_loop_new (context, FALSE);

  /* Sources created on this thread (GTask, GSocket) attach here too. */
  g_main_context_push_thread_default (context);
  g_main_loop_run (loop);
  g_main_context_pop_thread_default (context);
  return NULL;
}

static gpointer
dirty_io_start (gpointer data)
{
  io_context = g_main_context_new ();
  io_thread = g_thread_new ("dirty-io", dirty_io_thread,
                            g_main_context_ref (io_context));
  return io_context;
}

GMainContext *
dirty_io_get_context (void)
{
  static GOnce once = G_ONCE_INIT;

  return g_once (&once, dirty_io_start, NULL);
}

gboolean
dirty_io_is_io_thread (void)
{
  /* io_thread is only read after dirty_io_get_context () published it */
  dirty_io_get_context ();
  return g_thread_self () == io_thread;
}

static GSource *
dirty_io_attach (GSource        *source,
                 GSourceFunc     func,
                 gpointer        data,
                 GDestroyNotify  notify,
                 const char     *name)
{
  g_source_set_callback (source, func, data, notify);
  g_source_set_name (source, name);
  g_source_attach (source, dirty_io_get_context ());
  return source;
}

void
dirty_io_schedule (GSourceFunc    func,
                   gpointer       data,
                   GDestroyNotify notify)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  dirty_io_attach (source, func, data, notify, "[dirty-io] scheduled");
  g_source_unref (source);
}

GSource *
dirty_io_add_timeout (guint          interval_ms,
                      GSourceFunc    func,
                      gpointer       data,
                      GDestroyNotify notify)
{
  return dirty_io_attach (g_timeout_source_new (interval_ms), func, data,
                          notify, "[dirty-io] timeout");
}
