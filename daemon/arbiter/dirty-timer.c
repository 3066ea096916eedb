/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-timer.h"

static gboolean
dirty_timer_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  /* one shot: the callback re-arms if it wants to */
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
  GSource *source = g_source_new (&dirty_timer_funcs, sizeof (GSource));

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
  if (g_source_get_ready_time (timer) != when)
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
