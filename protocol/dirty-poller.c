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
  /* An owned context's wakeup fd, in the epoll set too, or -1: see
   * dirty_poller_own_context () */
  int           wakeup_fd;
  /* What poller_poll () read for the watches, for this iteration's
   * dispatch; n_ready is -1 when it read nothing (dispatch reads) */
  struct epoll_event ready[MAX_EVENTS];
  int           n_ready;
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
/* Owned contexts (GMainContext* -> their wakeup fd), under the same
 * lock: an entry lives as long as its context (OwnedSource). */
static GHashTable *owned;

/* The poller whose prepare ran in this thread's iteration, for the
 * poll that follows it (a reference) */
static _Thread_local GSource *polling;

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

/* This iteration's events (into @events): those poller_poll () read,
 * as each watch wants them now (an earlier source may have changed or
 * destroyed it since), or else what the epoll set has now */
static int
take_ready (Poller             *poller,
            struct epoll_event *events)
{
  struct epoll_event *from = poller->ready;
  int n_from = poller->n_ready, n = 0;

  if (n_from < 0)
    {
      from = events;
      n_from = epoll_wait (poller->epfd, events, MAX_EVENTS, 0);
    }
  for (int i = 0; i < n_from; i++)
    {
      DirtyWatch *watch = from[i].data.ptr;

      /* the context's wakeup is the context's to read */
      if (watch == NULL || from[i].data.ptr == &poller->wakeup_fd || watch->registered == 0)
        continue;
      events[n] = from[i];
      events[n++].events &= watch->registered | EPOLLHUP | EPOLLERR;
    }
  poller->n_ready = -1;
  return n;
}

static gboolean
poller_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  Poller *poller = (Poller *) source;
  struct epoll_event events[MAX_EVENTS];
  int n = take_ready (poller, events);

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

static gboolean
poller_prepare (GSource *source,
                gint    *timeout)
{
  g_clear_pointer (&polling, g_source_unref);
  if (((Poller *) source)->wakeup_fd >= 0)
    polling = g_source_ref (source);
  *timeout = -1;
  return FALSE;
}

static GSourceFuncs poller_funcs = {
  .prepare = poller_prepare,
  .dispatch = poller_dispatch,
  .finalize = poller_finalize,
};

/* Owned contexts: one epoll_wait () a wake-up */

/* Whether @fds holds nothing but the epoll set (returned in @set) and
 * the context's wakeup, each polled for input only */
static gboolean
only_epoll_and_wakeup (Poller   *poller,
                       GPollFD  *fds,
                       guint     n_fds,
                       GPollFD **set)
{
  *set = NULL;
  for (guint i = 0; i < n_fds; i++)
    {
      if (fds[i].events != G_IO_IN)
        return FALSE;
      if (fds[i].fd == poller->epfd)
        *set = &fds[i];
      else if (fds[i].fd != poller->wakeup_fd)
        return FALSE;
    }
  return *set != NULL;
}

/* The context's poll, for a context whose poller was prepared: when it
 * polls nothing but the epoll set and its own wakeup (which is in the
 * set too), one epoll_wait () waits for both, and the events it reads
 * for the watches are kept for this iteration's dispatch (take_ready
 * ()): a wake-up costs one syscall, not a poll () and an epoll_wait ().
 * Anything else polled (a GSource with an fd) gets the plain poll (). */
static gint
poller_poll (GPollFD *fds,
             guint    n_fds,
             gint     timeout)
{
  g_autoptr(GSource) source = g_steal_pointer (&polling);
  Poller *poller = (Poller *) source;
  struct epoll_event events[MAX_EVENTS];
  GPollFD *set;
  int n, ready = 0;

  if (poller == NULL || g_source_is_destroyed (source) || poller->n_ready >= 0 ||
      !only_epoll_and_wakeup (poller, fds, n_fds, &set))
    return g_poll (fds, n_fds, timeout);
  n = epoll_wait (poller->epfd, events, MAX_EVENTS, timeout);
  if (n < 0)
    return n;   /* errno as poll () would set it: EINTR */
  for (guint i = 0; i < n_fds; i++)
    fds[i].revents = 0;
  poller->n_ready = 0;
  for (int i = 0; i < n; i++)
    {
      if (events[i].data.ptr == &poller->wakeup_fd)
        {
          for (guint j = 0; j < n_fds; j++)
            if (fds[j].fd == poller->wakeup_fd)
              fds[j].revents = G_IO_IN;
          ready++;
        }
      else
        poller->ready[poller->n_ready++] = events[i];
    }
  if (poller->n_ready > 0)
    {
      set->revents = G_IO_IN;
      ready++;
    }
  else
    poller->n_ready = -1;
  return ready;
}

/* Puts @context's wakeup fd in @poller's epoll set (pollers_lock held) */
static void
poller_take_wakeup (Poller *poller,
                    int     wakeup_fd)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &poller->wakeup_fd };

  if (epoll_ctl (poller->epfd, EPOLL_CTL_ADD, wakeup_fd, &ev) < 0)
    return;   /* then the context keeps its plain poll () */
  poller->wakeup_fd = wakeup_fd;
  g_main_context_set_poll_func (poller->context, poller_poll);
}

/* Attached to an owned context and referenced by nothing else: its
 * finalize runs when the context goes. */
typedef struct {
  GSource       source;
  GMainContext *context;   /* not a reference */
} OwnedSource;

static void
owned_finalize (GSource *source)
{
  g_mutex_lock (&pollers_lock);
  g_hash_table_remove (owned, ((OwnedSource *) source)->context);
  g_mutex_unlock (&pollers_lock);
}

static GSourceFuncs owned_funcs = {
  .finalize = owned_finalize,
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
  poller->wakeup_fd = -1;
  poller->n_ready = -1;
  g_source_add_unix_fd (&poller->source, poller->epfd, G_IO_IN);
  g_source_set_name (&poller->source, "[dirty] connections");
  /* a nested main loop in a frame callback still serves the others */
  g_source_set_can_recurse (&poller->source, TRUE);
  g_source_attach (&poller->source, context);
  g_hash_table_insert (pollers, context, poller);
  if (owned != NULL && g_hash_table_contains (owned, context))
    poller_take_wakeup (poller, GPOINTER_TO_INT (g_hash_table_lookup (owned, context)));
  return poller;
}

gboolean
dirty_poller_own_context (GMainContext *context)
{
  GPollFD fds[2];
  gint timeout, n_fds;
  OwnedSource *source;
  Poller *poller;

  g_return_val_if_fail (context != NULL, FALSE);

  /* a context with no fd source yet polls its wakeup alone; one with a
   * poll function of its own keeps it */
  if (g_main_context_get_poll_func (context) != g_poll || !g_main_context_acquire (context))
    return FALSE;
  n_fds = g_main_context_query (context, G_MAXINT, &timeout, fds, G_N_ELEMENTS (fds));
  g_main_context_release (context);
  if (n_fds != 1)
    return FALSE;
  g_mutex_lock (&pollers_lock);
  if (owned == NULL)
    owned = g_hash_table_new (NULL, NULL);
  if (g_hash_table_contains (owned, context))
    {
      g_mutex_unlock (&pollers_lock);
      return TRUE;
    }
  g_hash_table_insert (owned, context, GINT_TO_POINTER (fds[0].fd));
  poller = pollers != NULL ? g_hash_table_lookup (pollers, context) : NULL;
  if (poller != NULL)
    poller_take_wakeup (poller, fds[0].fd);
  g_mutex_unlock (&pollers_lock);

  source = (OwnedSource *) g_source_new (&owned_funcs, sizeof (OwnedSource));
  source->context = context;
  g_source_set_static_name (&source->source, "[dirty] owned context");
  g_source_attach (&source->source, context);
  g_source_unref (&source->source);
  return TRUE;
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
  Poller *poller;

  if (watch == NULL)
    return;
  g_return_if_fail (!watch->dead);

  /* what poller_poll () read for it is not to be dispatched */
  poller = watch->poller;
  for (int i = 0; i < poller->n_ready; i++)
    if (poller->ready[i].data.ptr == watch)
      poller->ready[i].data.ptr = NULL;
  watch->dead = TRUE;
  watch_sync (watch);
  watch_unref (watch);
}
