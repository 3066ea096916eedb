/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>

#include "dirty-acceptor.h"
#include "dirty-log.h"
#include "dirty-poller.h"

/* How long accepting pauses after a failure such as EMFILE: the
 * connections wait in the backlog meanwhile (and connect () in the
 * clients' own, once it is full), and one log record a pause says what
 * happened without flooding the journal. */
#define PAUSE_MS 1000

struct _DirtyAcceptor
{
  int              listen_fd;
  guint            batch;
  char            *what;
  DirtyWatch      *watch;
  GSource         *pause;
  DirtyAcceptFunc  func;
  gpointer         user_data;
};

static void dirty_acceptor_ready_cb (GIOCondition  condition,
                                     gpointer      user_data);

DirtyAcceptor *
dirty_acceptor_new (int              listen_fd,
                    guint            batch,
                    const char      *what,
                    DirtyAcceptFunc  func,
                    gpointer         user_data)
{
  DirtyAcceptor *self = g_new0 (DirtyAcceptor, 1);

  self->listen_fd = listen_fd;
  self->batch = batch;
  self->what = g_strdup (what);
  self->func = func;
  self->user_data = user_data;
  self->watch = dirty_watch_new (g_main_context_get_thread_default (), listen_fd,
                                 dirty_acceptor_ready_cb, self);
  dirty_watch_set_events (self->watch, G_IO_IN);
  return self;
}

void
dirty_acceptor_free (DirtyAcceptor *self)
{
  if (self == NULL)
    return;
  if (self->pause != NULL)
    {
      g_source_destroy (self->pause);
      g_source_unref (self->pause);
    }
  dirty_watch_destroy (self->watch);
  g_free (self->what);
  g_free (self);
}

static gboolean
dirty_acceptor_resume_cb (gpointer user_data)
{
  DirtyAcceptor *self = user_data;

  g_clear_pointer (&self->pause, g_source_unref);
  dirty_watch_set_events (self->watch, G_IO_IN);
  return G_SOURCE_REMOVE;
}

/* The listener stays readable while its backlog holds a connection, so
 * a failure that would fail again at once turns the watch off for a
 * while rather than being retried on every turn of the loop. */
static void
dirty_acceptor_pause (DirtyAcceptor *self,
                      int            saved_errno)
{
  dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
             "%saccept: %s; accepting again in %d ms", self->what,
             g_strerror (saved_errno), PAUSE_MS);
  dirty_watch_set_events (self->watch, 0);
  self->pause = g_timeout_source_new (PAUSE_MS);
  g_source_set_callback (self->pause, dirty_acceptor_resume_cb, self, NULL);
  g_source_attach (self->pause, g_main_context_get_thread_default ());
}

/* At most a batch, then the other sources get their turn (why:
 * ACCEPT_BATCH in dirty-arbiter.c) */
static void
dirty_acceptor_ready_cb (GIOCondition  condition,
                         gpointer      user_data)
{
  DirtyAcceptor *self = user_data;

  for (guint i = 0; i < self->batch; i++)
    {
      int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      int saved_errno = errno;

      if (fd >= 0)
        self->func (fd, self->user_data);
      else if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
        return;
      else if (saved_errno != EINTR && saved_errno != ECONNABORTED)
        {
          dirty_acceptor_pause (self, saved_errno);
          return;
        }
    }
}
