/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* slow:DirtySlowApp: calls that take time, to see concurrency, deadlines
 * and cancellation at work.
 *
 *   sleep SECONDS        blocks a worker thread for SECONDS (a number),
 *                        returns SECONDS; ends within milliseconds of a
 *                        cancel or deadline, with a cancelled error
 *   sleep_async SECONDS  the same without a thread: a timer on the
 *                        worker's main loop (DIRTY_ACTION_ASYNC)
 *   pid                  the worker's process id, to see where calls go
 */
#include <errno.h>
#include <unistd.h>

#include <dirty.h>

/* One day: enough for any test, small enough to keep the maths exact */
#define MAX_SECONDS 86400.0

#define DIRTY_TYPE_SLOW_APP (dirty_slow_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtySlowApp, dirty_slow_app, DIRTY, SLOW_APP, DirtyApp)

struct _DirtySlowApp
{
  DirtyApp parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtySlowApp, dirty_slow_app, DIRTY_TYPE_APP)

static gboolean
get_seconds (DirtyCall *call,
             double    *seconds)
{
  GError *error = NULL;

  if (!dirty_call_get_arg_double (call, 0, seconds, &error))
    {
      dirty_call_return_error (call, error);
      return FALSE;
    }
  if (*seconds < 0 || *seconds > MAX_SECONDS)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "sleep: %g is not between 0 and %g seconds",
                                   *seconds, MAX_SECONDS);
      return FALSE;
    }
  return TRUE;
}

/* Waits on the cancellable's fd rather than sleeping: a cancel wakes the
 * poll at once. */
static void
sleep_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  GCancellable *cancellable = dirty_call_get_cancellable (call);
  GPollFD pollfd;
  double seconds;
  gint64 end;

  if (!get_seconds (call, &seconds))
    return;
  if (!g_cancellable_make_pollfd (cancellable, &pollfd))
    {
      dirty_call_return_new_error (call, G_IO_ERROR, G_IO_ERROR_FAILED,
                                   "Could not wait on the cancellable");
      return;
    }

  end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  while (!g_cancellable_is_cancelled (cancellable))
    {
      gint64 remaining = end - g_get_monotonic_time ();

      if (remaining <= 0)
        break;
      /* Round up so we never spin on a 0 ms timeout. */
      if (g_poll (&pollfd, 1, (int) MIN ((remaining + 999) / 1000, G_MAXINT)) < 0 &&
          errno != EINTR)
        break;
    }
  g_cancellable_release_fd (cancellable);

  if (!dirty_call_return_error_if_cancelled (call))
    dirty_call_return_double (call, seconds);
}

typedef struct {
  DirtyCall *call;
  GSource *timer;
  GSource *cancel;
  double seconds;
} AsyncSleep;

/* Runs from whichever source fires first. Once both are destroyed no
 * callback can follow, so the state can go. */
static void
async_sleep_finish (AsyncSleep *sleep,
                    gboolean    cancelled)
{
  g_source_destroy (sleep->timer);
  g_source_destroy (sleep->cancel);
  if (cancelled)
    dirty_call_return_error_if_cancelled (sleep->call);
  else
    dirty_call_return_double (sleep->call, sleep->seconds);

  g_source_unref (sleep->timer);
  g_source_unref (sleep->cancel);
  g_object_unref (sleep->call);
  g_free (sleep);
}

static gboolean
async_sleep_timer_cb (gpointer user_data)
{
  async_sleep_finish (user_data, FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
async_sleep_cancelled_cb (GCancellable *cancellable,
                          gpointer      user_data)
{
  async_sleep_finish (user_data, TRUE);
  return G_SOURCE_REMOVE;
}

/* Both sources live on the worker's main context: whichever fires first
 * destroys the other, so the call completes exactly once. */
static void
sleep_async_action (DirtyApp  *app,
                    DirtyCall *call,
                    gpointer   user_data)
{
  GMainContext *context = g_main_context_get_thread_default ();
  AsyncSleep *sleep;
  double seconds;

  if (!get_seconds (call, &seconds))
    return;

  sleep = g_new0 (AsyncSleep, 1);
  sleep->call = g_object_ref (call);
  sleep->seconds = seconds;
  sleep->timer = g_timeout_source_new ((guint) (seconds * 1000));
  sleep->cancel = g_cancellable_source_new (dirty_call_get_cancellable (call));

  g_source_set_callback (sleep->timer, async_sleep_timer_cb, sleep, NULL);
  g_source_set_callback (sleep->cancel, G_SOURCE_FUNC (async_sleep_cancelled_cb), sleep, NULL);
  g_source_attach (sleep->cancel, context);
  g_source_attach (sleep->timer, context);
}

static void
pid_action (DirtyApp  *app,
            DirtyCall *call,
            gpointer   user_data)
{
  dirty_call_return_int (call, getpid ());
}

static void
dirty_slow_app_class_init (DirtySlowAppClass *klass)
{
}

static void
dirty_slow_app_init (DirtySlowApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "sleep", DIRTY_ACTION_SYNC, sleep_action, NULL, NULL);
  dirty_app_add_action (app, "sleep_async", DIRTY_ACTION_ASYNC, sleep_async_action, NULL, NULL);
  dirty_app_add_action (app, "pid", DIRTY_ACTION_SYNC, pid_action, NULL, NULL);
}
