/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connections' epoll set on a context the program owns
 * (dirty_poller_own_context ()): the context's whole wait is one
 * epoll_wait () that also reads the watches' events for the dispatch
 * that follows. What a loop on such a context must still do: wake for
 * another thread's source, serve a source with an fd of its own, and
 * never call a watch destroyed after its event was read. Real sockets,
 * real threads. */
#include "config.h"

#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "dirty-poller.h"

#define GIVE_UP_US (5 * G_USEC_PER_SEC)

typedef struct {
  int         fds[2];     /* [0] watched, [1] written */
  DirtyWatch *watch;
  guint       n_called;
} Watched;

static void
watched_cb (GIOCondition condition,
            gpointer     user_data)
{
  Watched *w = user_data;
  char buf[16];

  w->n_called++;
  while (read (w->fds[0], buf, sizeof buf) > 0)
    ;
}

static void
watched_init (Watched      *w,
              GMainContext *context)
{
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, w->fds),
                   ==, 0);
  w->n_called = 0;
  w->watch = dirty_watch_new (context, w->fds[0], watched_cb, w);
  dirty_watch_set_events (w->watch, G_IO_IN);
}

static void
watched_clear (Watched *w)
{
  g_clear_pointer (&w->watch, dirty_watch_destroy);
  close (w->fds[0]);
  close (w->fds[1]);
}

static void
poke (Watched *w)
{
  g_assert_cmpint (write (w->fds[1], "x", 1), ==, 1);
}

static gboolean
keep_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates @context until *@flag is set, failing after GIVE_UP_US (a
 * timer bounds each wait, even one that would miss its wake-up) */
static void
iterate_until (GMainContext   *context,
               const gboolean *flag)
{
  gint64 give_up = g_get_monotonic_time () + GIVE_UP_US;
  GSource *bound = g_timeout_source_new (GIVE_UP_US / 1000);

  g_source_set_callback (bound, keep_cb, NULL, NULL);
  g_source_attach (bound, context);
  while (!*flag)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, give_up);
      g_main_context_iteration (context, TRUE);
    }
  g_source_destroy (bound);
  g_source_unref (bound);
}

static gboolean
set_flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A watch's input is dispatched; so is an idle another thread attaches
 * while the loop waits: the context's wakeup is in the epoll set. */
typedef struct {
  GMainContext *context;
  gboolean      idle_ran;
} Waker;

static gpointer
attach_idle_later (gpointer data)
{
  Waker *waker = data;
  GSource *idle = g_idle_source_new ();

  g_usleep (50 * 1000);
  g_source_set_callback (idle, set_flag_cb, &waker->idle_ran, NULL);
  g_source_attach (idle, waker->context);
  g_source_unref (idle);
  return NULL;
}

static void
test_owned_wakes (void)
{
  GMainContext *context = g_main_context_new ();
  Waker waker = { context, FALSE };
  g_autoptr(GThread) thread = NULL;
  Watched w;

  g_assert_true (dirty_poller_own_context (context));
  watched_init (&w, context);
  poke (&w);
  while (w.n_called == 0)
    g_main_context_iteration (context, TRUE);

  /* nothing else is ready: the loop blocks until the other thread's idle */
  thread = g_thread_new ("waker", attach_idle_later, &waker);
  iterate_until (context, &waker.idle_ran);
  g_thread_join (g_steal_pointer (&thread));
  g_assert_cmpuint (w.n_called, ==, 1);

  watched_clear (&w);
  g_main_context_unref (context);
}

/* A source with an fd of its own, attached later, is polled too (the
 * plain poll () then), and the watches with it */
static gboolean
pipe_cb (gint fd, GIOCondition condition, gpointer user_data)
{
  char buf[16];

  while (read (fd, buf, sizeof buf) > 0)
    ;
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_CONTINUE;
}

static void
test_owned_foreign_fd (void)
{
  GMainContext *context = g_main_context_new ();
  gboolean piped = FALSE;
  int pipe_fds[2];
  GSource *source;
  Watched w;

  g_assert_true (dirty_poller_own_context (context));
  watched_init (&w, context);
  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));
  g_assert_true (g_unix_set_fd_nonblocking (pipe_fds[0], TRUE, NULL));
  source = g_unix_fd_source_new (pipe_fds[0], G_IO_IN);
  g_source_set_callback (source, G_SOURCE_FUNC (pipe_cb), &piped, NULL);
  g_source_attach (source, context);

  g_assert_cmpint (write (pipe_fds[1], "x", 1), ==, 1);
  iterate_until (context, &piped);
  poke (&w);
  while (w.n_called == 0)
    g_main_context_iteration (context, TRUE);

  /* and once that source is gone, the watches alone again */
  g_source_destroy (source);
  g_source_unref (source);
  poke (&w);
  while (w.n_called == 1)
    g_main_context_iteration (context, TRUE);

  watched_clear (&w);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  g_main_context_unref (context);
}

/* A source of higher priority, ready only after the wait, destroys a
 * watch whose event that wait read: GLib dispatches that source alone
 * in that iteration, and the watch must never be called afterwards
 * (nor touched: run under valgrind and ASan), while the other watch's
 * event, read by the same wait, still reaches it. */
typedef struct {
  GSource  source;
  Watched *victim;
  gboolean armed;
} Destroyer;

static gboolean
destroyer_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
destroyer_check (GSource *source)
{
  return ((Destroyer *) source)->armed;
}

static gboolean
destroyer_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  Destroyer *destroyer = (Destroyer *) source;

  destroyer->armed = FALSE;
  g_clear_pointer (&destroyer->victim->watch, dirty_watch_destroy);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs destroyer_funcs = {
  .prepare = destroyer_prepare,
  .check = destroyer_check,
  .dispatch = destroyer_dispatch,
};

static void
test_owned_destroyed_after_read (void)
{
  GMainContext *context = g_main_context_new ();
  Destroyer *destroyer;
  Watched victim, other;

  g_assert_true (dirty_poller_own_context (context));
  watched_init (&victim, context);
  watched_init (&other, context);
  destroyer = (Destroyer *) g_source_new (&destroyer_funcs, sizeof (Destroyer));
  destroyer->victim = &victim;
  g_source_set_priority (&destroyer->source, G_PRIORITY_HIGH);
  g_source_attach (&destroyer->source, context);

  poke (&victim);
  poke (&other);
  destroyer->armed = TRUE;
  /* the wait reads both events; the destroyer alone is dispatched */
  g_main_context_iteration (context, TRUE);
  g_assert_null (victim.watch);
  /* the next dispatch gets what the wait read, less the destroyed watch */
  while (other.n_called == 0)
    g_main_context_iteration (context, TRUE);
  g_assert_cmpuint (victim.n_called, ==, 0);

  g_source_destroy (&destroyer->source);
  g_source_unref (&destroyer->source);
  watched_clear (&victim);
  watched_clear (&other);
  g_main_context_unref (context);
}

/* A context that already polls an fd of the program's is not taken: its
 * wait stays GLib's own. */
static void
test_refuses_polled_context (void)
{
  GMainContext *context = g_main_context_new ();
  int pipe_fds[2];
  GSource *source;

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));
  source = g_unix_fd_source_new (pipe_fds[0], G_IO_IN);
  g_source_attach (source, context);
  g_assert_false (dirty_poller_own_context (context));
  g_assert_true (g_main_context_get_poll_func (context) == g_poll);

  g_source_destroy (source);
  g_source_unref (source);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  g_main_context_unref (context);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/poller/owned/wakes", test_owned_wakes);
  g_test_add_func ("/poller/owned/foreign-fd", test_owned_foreign_fd);
  g_test_add_func ("/poller/owned/destroyed-after-read", test_owned_destroyed_after_read);
  g_test_add_func ("/poller/refuses-polled-context", test_refuses_polled_context);
  return g_test_run ();
}
