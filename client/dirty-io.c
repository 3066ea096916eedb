/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-io-private.h"
#include "dirty-poller.h"

/* Like GDBus's worker thread: one thread and one GMainContext for every
 * client in the process, started on first use and never stopped (its
 * sources belong to clients, which remove them when they go away). */

static GMainContext *io_context;
static GThread *io_thread;

/* Work handed to the I/O thread (dirty_io_schedule ()): one source for
 * all of it, with a queue. An idle source per item, made, attached,
 * dispatched and destroyed, cost about 1,500 instructions in the caller
 * and as many in the I/O thread; every async call and stream start
 * schedules at least one. */
typedef struct {
  DirtyIoFunc    func;
  gpointer       data;
  GDestroyNotify notify;
} Scheduled;

typedef struct {
  GSource  source;
  GMutex   lock;
  GArray  *queue;     /* Scheduled, in order; swapped out whole to run */
  GArray  *spare;     /* the I/O thread's: the last batch, emptied */
  gint     n_queued;  /* atomic: queue->len, read without the lock */
} ScheduleSource;

static ScheduleSource *schedule_source;

static gboolean
schedule_prepare (GSource *source,
                  gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((ScheduleSource *) source)->n_queued) > 0;
}

static gboolean
schedule_check (GSource *source)
{
  return g_atomic_int_get (&((ScheduleSource *) source)->n_queued) > 0;
}

/* Runs what was queued before it started; what those items schedule
 * goes into the next batch, so nothing runs inside its scheduler. */
static gboolean
schedule_dispatch (GSource     *source,
                   GSourceFunc  callback,
                   gpointer     user_data)
{
  ScheduleSource *self = (ScheduleSource *) source;
  GArray *batch;

  g_mutex_lock (&self->lock);
  batch = self->queue;
  self->queue = self->spare;
  self->spare = NULL;
  g_atomic_int_set (&self->n_queued, 0);
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < batch->len; i++)
    {
      Scheduled *item = &g_array_index (batch, Scheduled, i);

      item->func (item->data);
      if (item->notify != NULL)
        item->notify (item->data);
    }
  g_array_set_size (batch, 0);
  self->spare = batch;
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs schedule_funcs = {
  .prepare = schedule_prepare,
  .check = schedule_check,
  .dispatch = schedule_dispatch,
};

static void
schedule_source_attach (GMainContext *context)
{
  GSource *source = g_source_new (&schedule_funcs, sizeof (ScheduleSource));

  schedule_source = (ScheduleSource *) source;
  g_mutex_init (&schedule_source->lock);
  schedule_source->queue = g_array_new (FALSE, FALSE, sizeof (Scheduled));
  schedule_source->spare = g_array_new (FALSE, FALSE, sizeof (Scheduled));
  g_source_set_static_name (source, "[dirty-io] scheduled");
  g_source_attach (source, context);
  /* the context holds it; it lives as long as the process, as the thread */
  g_source_unref (source);
}

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
  /* its connections' epoll set waits for the context's wakeup too */
  dirty_poller_own_context (io_context);
  schedule_source_attach (io_context);
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
dirty_io_schedule (DirtyIoFunc    func,
                   gpointer       data,
                   GDestroyNotify notify)
{
  Scheduled item = { func, data, notify };
  gboolean was_empty;

  dirty_io_get_context ();
  g_mutex_lock (&schedule_source->lock);
  g_array_append_val (schedule_source->queue, item);
  was_empty = schedule_source->queue->len == 1;
  g_atomic_int_set (&schedule_source->n_queued, schedule_source->queue->len);
  g_mutex_unlock (&schedule_source->lock);
  /* One wake-up per batch: an item queued behind another finds the
   * thread woken already, or the batch not yet taken. The I/O thread
   * itself sees the queue in its next prepare. */
  if (was_empty && g_thread_self () != io_thread)
    g_main_context_wakeup (io_context);
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
