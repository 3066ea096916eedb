/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-timer.h"

/* The timers of one context and their one GSource. The source's ready
 * time is when the main loop wakes up for them; each timer's `due` is
 * when its callback should run. Moving the ready time costs a wake-up
 * (g_source_set_ready_time() signals the context's wakeup fd, and the
 * next iteration dispatches nothing), so arming only moves it earlier: a
 * timer pushed back, or disarmed, leaves the old ready time, and when
 * that comes the dispatch finds nothing due and sets the ready time to
 * the earliest due then. The heartbeat watchdogs are pushed back by every
 * frame and a call's deadline timer is set and cleared by every call:
 * both cost a wake-up per timeout period, not per call. */
typedef struct {
  GSource       source;
  GMainContext *context;      /* the key in `sets`: a reference, so that no
                               * new context at the same address finds it */
  GPtrArray    *timers;       /* of DirtyTimer (owned) */
  gboolean      dispatching;  /* timers freed meanwhile are only marked */
} TimerSet;

struct _DirtyTimer {
  TimerSet    *set;
  gint64       due;           /* monotonic us, -1 = disarmed */
  GSourceFunc  func;
  gpointer     user_data;
  gboolean     dead;          /* freed during a dispatch */
};

/* Sets are per context, so threads share this map, under its lock. A
 * set lives while it has timers. */
static GMutex sets_lock;
static GHashTable *sets;

static gint64
earliest_due (TimerSet *set)
{
  gint64 earliest = -1;

  for (guint i = 0; i < set->timers->len; i++)
    {
      DirtyTimer *timer = set->timers->pdata[i];

      if (timer->due >= 0 && (earliest < 0 || timer->due < earliest))
        earliest = timer->due;
    }
  return earliest;
}

/* The last timer is gone: so is the set */
static void
set_release (TimerSet *set)
{
  GMainContext *context = set->context;

  g_mutex_lock (&sets_lock);
  g_hash_table_remove (sets, context);
  g_mutex_unlock (&sets_lock);
  g_source_destroy (&set->source);
  g_source_unref (&set->source);   /* frees @set */
  g_main_context_unref (context);
}

static gboolean
timer_set_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  TimerSet *set = (TimerSet *) source;
  /* the iteration's time, as GLib compared the ready time with it */
  gint64 now = g_source_get_time (source);

  set->dispatching = TRUE;
  /* by index: a callback may add timers (at the end) or free some */
  for (guint i = 0; i < set->timers->len; i++)
    {
      DirtyTimer *timer = set->timers->pdata[i];

      if (timer->due < 0 || timer->due > now)
        continue;
      /* one shot: the callback re-arms if it wants to */
      timer->due = -1;
      timer->func (timer->user_data);
    }
  set->dispatching = FALSE;
  for (guint i = set->timers->len; i > 0; i--)
    if (((DirtyTimer *) set->timers->pdata[i - 1])->dead)
      g_ptr_array_remove_index_fast (set->timers, i - 1);
  if (set->timers->len == 0)
    {
      set_release (set);
      return G_SOURCE_REMOVE;
    }
  g_source_set_ready_time (source, earliest_due (set));
  return G_SOURCE_CONTINUE;
}

static void
timer_set_finalize (GSource *source)
{
  g_ptr_array_unref (((TimerSet *) source)->timers);
}

static GSourceFuncs timer_set_funcs = {
  .dispatch = timer_set_dispatch,
  .finalize = timer_set_finalize,
};

static TimerSet *
set_for (GMainContext *context)
{
  TimerSet *set;

  if (sets == NULL)
    sets = g_hash_table_new (NULL, NULL);
  set = g_hash_table_lookup (sets, context);
  if (set != NULL)
    return set;
  set = (TimerSet *) g_source_new (&timer_set_funcs, sizeof (TimerSet));
  set->context = g_main_context_ref (context);
  set->timers = g_ptr_array_new_with_free_func (g_free);
  g_source_set_static_name (&set->source, "[dirty] timers");
  g_source_set_ready_time (&set->source, -1);
  g_source_attach (&set->source, context);
  g_hash_table_insert (sets, context, set);
  return set;
}

DirtyTimer *
dirty_timer_new (GSourceFunc func,
                 gpointer    user_data)
{
  GMainContext *context = g_main_context_get_thread_default ();
  DirtyTimer *timer = g_new0 (DirtyTimer, 1);

  timer->due = -1;
  timer->func = func;
  timer->user_data = user_data;
  g_mutex_lock (&sets_lock);
  timer->set = set_for (context != NULL ? context : g_main_context_default ());
  g_mutex_unlock (&sets_lock);
  g_ptr_array_add (timer->set->timers, timer);
  return timer;
}

void
dirty_timer_arm_at (DirtyTimer *timer,
                    gint64      when)
{
  gint64 ready = g_source_get_ready_time (&timer->set->source);

  g_return_if_fail (!timer->dead);

  timer->due = when;
  /* later or disarmed: the old ready time stands (see above) */
  if (when >= 0 && (ready < 0 || when < ready))
    g_source_set_ready_time (&timer->set->source, when);
}

void
dirty_timer_free (DirtyTimer *timer)
{
  TimerSet *set;

  if (timer == NULL)
    return;
  set = timer->set;
  timer->due = -1;
  if (set->dispatching)
    {
      /* the dispatch loop still walks the array: it removes it after */
      timer->dead = TRUE;
      return;
    }
  g_ptr_array_remove_fast (set->timers, timer);
  if (set->timers->len == 0)
    set_release (set);
}
