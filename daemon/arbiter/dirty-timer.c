/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-timer.h"

/* The GSource's ready time is when the main loop wakes up for it; `due`
 * is when the callback should run. Moving the ready time costs a main
 * loop wake-up (g_source_set_ready_time() signals the context's wakeup
 * fd, and the next iteration dispatches nothing), so it is only moved
 * earlier: a timer pushed back, or disarmed, keeps its old ready time,
 * and when that comes the dispatch finds it not due and moves the ready
 * time to `due` then. The heartbeat watchdog is pushed back by every
 * frame and a call's deadline timer set and cleared by every call: both
 * now cost a wake-up per timeout period, not per call. */
typedef struct {
  GSource source;
  gint64  due;      /* monotonic us, -1 = disarmed */
} DirtyTimer;

static gboolean
dirty_timer_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  DirtyTimer *timer = (DirtyTimer *) source;

  /* the iteration's time, as GLib compared the ready time with it */
  if (timer->due < 0 || timer->due > g_source_get_time (source))
    {
      g_source_set_ready_time (source, timer->due);
      return G_SOURCE_CONTINUE;
    }
  /* one shot: the callback re-arms if it wants to */
  timer->due = -1;
  g_source_set_ready_time (source, -1);
  if (callback != NULL)
    callback (user_data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs dirty_timer_funcs = {
  .dispatch = dirty_timer_dispatch,
};

GSource *
dirty_timer_new (GSourceFunc func,
                 gpointer    user_data)
{
  GSource *source = g_source_new (&dirty_timer_funcs, sizeof (DirtyTimer));

  ((DirtyTimer *) source)->due = -1;
  g_source_set_static_name (source, "dirty-timer");
  g_source_set_callback (source, func, user_data, NULL);
  g_source_set_ready_time (source, -1);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

void
dirty_timer_arm_at (GSource *timer,
                    gint64   when)
{
  gint64 ready = g_source_get_ready_time (timer);

  ((DirtyTimer *) timer)->due = when;
  /* later or disarmed: the old ready time stands (see above) */
  if (when >= 0 && (ready < 0 || when < ready))
    g_source_set_ready_time (timer, when);
}

void
dirty_timer_free (GSource *timer)
{
  if (timer == NULL)
    return;
  g_source_destroy (timer);
  g_source_unref (timer);
}
