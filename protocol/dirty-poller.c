/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dirty-poller.h"

/* Events taken per dispatch; more wait for the next iteration (level
 * triggered), so one busy context cannot starve its other sources. */
#define MAX_EVENTS 128

typedef struct {
  GSource       source;
  GMainContext *context;   /* the key in `pollers` (not a reference) */
  int           epfd;
  guint         n_watches;
} Poller;

struct _DirtyWatch {
  Poller         *poller;
  int             fd;
  DirtyWatchFunc  func;
  gpointer        user_data;
  guint           ref_count;   /* the owner's, plus one per dispatch in progress */
  guint32         wanted;      /* EPOLLIN | EPOLLOUT */
  guint32         registered;  /* what the epoll set has; 0 = not in it */
  gboolean        dead;
  gboolean        dispatching;
  gboolean        suspended;   /* ready during a nested dispatch of itself */
};

/* Pollers are per context, so threads share this map, under its lock. A
 * poller lives while it has watches. */
static GMutex pollers_lock;
static GHashTable *pollers;

static void
watch_sync (DirtyWatch *watch)
{
  guint32 events = (watch->dead || watch->suspended) ? 0 : watch->wanted;
  struct epoll_event ev = { .events = events, .data.ptr = watch };
  int op;

  if (events == watch->registered)
    return;
  if (events == 0)
    op = EPOLL_CTL_DEL;
  else
    op = watch->registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  /* a socket closed under us has left the set by itself */
  if (epoll_ctl (watch->poller->epfd, op, watch->fd, &ev) < 0 &&
      !(op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT)))
    g_critical ("epoll_ctl (%d) on fd %d: %s", op, watch->fd, g_strerror (errno));
  watch->registered = events;
}

static void
watch_unref (DirtyWatch *watch)
{
  if (--watch->ref_count > 0)
    return;
  g_mutex_lock (&pollers_lock);
  if (--watch->poller->n_watches == 0)
    {
      g_hash_table_remove (pollers, watch->poller->context);
      g_source_destroy (&watch->poller->source);
      g_source_unref (&watch->poller->source);
    }
  g_mutex_unlock (&pollers_lock);
  g_free (watch);
}

static GIOCondition
condition_of (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) | ((events & EPOLLOUT) ? G_IO_OUT : 0) |
         ((events & EPOLLHUP) ? G_IO_HUP : 0) | ((events & EPOLLERR) ? G_IO_ERR : 0);
}

static gboolean
poller_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  Poller *poller = (Poller *) source;
  struct epoll_event events[MAX_EVENTS];
  int n = epoll_wait (poller->epfd, events, MAX_EVENTS, 0);

  /* a watch destroyed by an earlier callback of this batch must stay
   * readable until the batch ends */
  for (int i = 0; i < n; i++)
    ((DirtyWatch *) events[i].data.ptr)->ref_count++;
  for (int i = 0; i < n; i++)
    {
      DirtyWatch *watch = events[i].data.ptr;

      if (watch->dead)
        continue;
      if (watch->dispatching)
        {
          /* a nested main loop inside its own callback: do not spin on
           * it; it is watched again once that callback returns */
          watch->suspended = TRUE;
          watch_sync (watch);
          continue;
        }
      watch->dispatching = TRUE;
      watch->func (condition_of (events[i].events), watch->user_data);
      watch->dispatching = FALSE;
      if (watch->suspended)
        {
          watch->suspended = FALSE;
          watch_sync (watch);
        }
    }
  for (int i = 0; i < n; i++)
    watch_unref (events[i].data.ptr);
  return G_SOURCE_CONTINUE;
}

static void
poller_finalize (GSource *source)
{
  close (((Poller *) source)->epfd);
}

static GSourceFuncs poller_funcs = {
  .dispatch = poller_dispatch,
  .finalize = poller_finalize,
};

static Poller *
poller_for (GMainContext *context)
{
  Poller *poller;

  if (pollers == NULL)
    pollers = g_hash_table_new (NULL, NULL);
  poller = g_hash_table_lookup (pollers, context);
  if (poller != NULL)
    return poller;

  poller = (Poller *) g_source_new (&poller_funcs, sizeof (Poller));
  poller->context = context;
  poller->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (poller->epfd < 0)
    g_error ("epoll_create1: %s", g_strerror (errno));
  g_source_add_unix_fd (&poller->source, poller->epfd, G_IO_IN);
  g_source_set_name (&poller->source, "[dirty] connections");
  /* a nested main loop in a frame callback still serves the others */
  g_source_set_can_recurse (&poller->source, TRUE);
  g_source_attach (&poller->source, context);
  g_hash_table_insert (pollers, context, poller);
  return poller;
}

DirtyWatch *
dirty_watch_new (GMainContext   *context,
                 int             fd,
                 DirtyWatchFunc  func,
                 gpointer        user_data)
{
  DirtyWatch *watch = g_new0 (DirtyWatch, 1);

  g_mutex_lock (&pollers_lock);
  /* NULL is the global default context, as for g_source_attach(): one
   * poller for it under either name */
  watch->poller = poller_for (context != NULL ? context : g_main_context_default ());
  watch->poller->n_watches++;
  g_mutex_unlock (&pollers_lock);
  watch->fd = fd;
  watch->func = func;
  watch->user_data = user_data;
  watch->ref_count = 1;
  return watch;
}

void
dirty_watch_set_events (DirtyWatch   *watch,
                        GIOCondition  events)
{
  g_return_if_fail (watch != NULL && !watch->dead);

  watch->wanted = ((events & G_IO_IN) ? EPOLLIN : 0) | ((events & G_IO_OUT) ? EPOLLOUT : 0);
  watch_sync (watch);
}

void
dirty_watch_destroy (DirtyWatch *watch)
{
  if (watch == NULL)
    return;
  g_return_if_fail (!watch->dead);

  watch->dead = TRUE;
  watch_sync (watch);
  watch_unref (watch);
}
