/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-worker-pool.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* A call that keeps the turn longer than this gets the worker's thread
 * to run the context: the longest a heartbeat, a deadline, a signal or
 * a reply from an app's thread waits behind a call */
#define LENT_TURN_US 1000

/* Whose turn it is to run the context (dirty_worker_pool_run ()) */
typedef enum {
  TURN_MAIN,      /* the caller of run(): its turn, or it is taking it */
  TURN_FOLLOWER,  /* the next idle pool thread's, the first one awake */
  TURN_TAKEN,     /* a pool thread's, and it is running the context */
  TURN_CALL,      /* a pool thread's, and it is running the call it read:
                   * the caller of run() takes the turn if input comes or
                   * the call lasts (LENT_TURN_US) */
} Turn;

/* Events the caller of run() waits for (epoll data) */
enum {
  EVENT_TURN,     /* main_event: the turn was passed to it */
  EVENT_INPUT,    /* the connection's socket is readable */
  EVENT_TIMER,    /* time to look at how long a call has had the turn */
};

struct _DirtyWorkerPool {
  gatomicrefcount ref;      /* the owner's, and one per running thread */
  GMutex          lock;
  GCond           cond;     /* idle pool threads wait here */
  GQueue          queue;    /* items not started yet */
  guint           n_idle;   /* threads waiting on @cond */
  gboolean        stopping;
  GFunc           func;
  gpointer        user_data;
  DirtyWorkerPoolAfterCall after_call; /* see dirty_worker_pool_set_after_call () */
  GDestroyNotify  free_item;
  GPtrArray      *threads;  /* GThread*: joined, or let go, when freed */
  /* While run() runs with the pool threads in the turns: */
  GMainContext   *context;
  GMainLoop      *loop;
  Turn            turn;
  int             input_fd; /* the socket whose input ends a TURN_CALL */
  int             epoll_fd; /* the caller of run() waits here when it is not its turn */
  int             main_event; /* eventfd: it is the caller of run()'s turn */
  int             timer_fd; /* see run_call_in_turn () */
  gboolean        timer_armed;
  gboolean        nudged;   /* an idle thread woke the context for the turn */
  gpointer        handed;   /* read in the caller of run()'s turn: goes with
                             * the next turn to an idle pool thread */
  gint64          call_since; /* TURN_CALL since (monotonic µs) */
};

/* The pool whose context this pool thread is running, and the item it
 * took from a dispatch to run once its turn ends */
static _Thread_local DirtyWorkerPool *leading;
static _Thread_local gpointer claimed;
/* The pool whose context the caller of run() is running */
static _Thread_local DirtyWorkerPool *main_leading;
/* The pool whose turn this thread keeps while it runs a call, while its
 * socket's input would end that turn */
static _Thread_local DirtyWorkerPool *watching;

static void
pool_unref (DirtyWorkerPool *pool)
{
  if (!g_atomic_ref_count_dec (&pool->ref))
    return;
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->cond);
  g_free (pool);
}

/* Waking the caller of run() */

static void
wake_main (DirtyWorkerPool *pool)
{
  guint64 one = 1;

  /* a full counter (never, at one a turn) is still readable: ignored */
  if (write (pool->main_event, &one, sizeof one) < 0 && errno != EAGAIN)
    g_warning ("Could not wake the worker's thread: %s", g_strerror (errno));
}

/* Arms the timer for @time (monotonic µs) */
static void
set_timer (DirtyWorkerPool *pool,
           gint64           time)
{
  struct itimerspec spec = {
    .it_value = { .tv_sec = time / G_USEC_PER_SEC, .tv_nsec = time % G_USEC_PER_SEC * 1000 },
  };

  timerfd_settime (pool->timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

/* The socket's input wakes the caller of run() while a call has the
 * turn (an error leaves the timer only: the socket is closing) */
static void
watch_input (DirtyWorkerPool *pool,
             gboolean         watch)
{
  struct epoll_event event = {
    .events = watch ? EPOLLIN | EPOLLONESHOT : 0,
    .data.u32 = EVENT_INPUT,
  };

  epoll_ctl (pool->epoll_fd, EPOLL_CTL_MOD, pool->input_fd, &event);
  watching = watch ? pool : NULL;
}

/* The timer went off (lock held): takes the turn of a call that has had
 * it too long, or looks again when the one that has it now will have */
static gboolean
main_timer_expired (DirtyWorkerPool *pool)
{
  gint64 due = pool->call_since + LENT_TURN_US;

  if (pool->turn == TURN_CALL && due > g_get_monotonic_time ())
    {
      set_timer (pool, due);
      return FALSE;
    }
  /* gone off for good: the next call that keeps its turn arms it */
  pool->timer_armed = FALSE;
  return pool->turn == TURN_CALL;
}

/* Waits for the caller of run()'s turn (lock held on entry and return):
 * passed to it, or taken from a call that has the turn when input comes
 * or the call lasts. */
static void
main_wait_turn (DirtyWorkerPool *pool)
{
  while (pool->turn != TURN_MAIN)
    {
      struct epoll_event events[3];
      gboolean input = FALSE, timer = FALSE;
      guint64 count;
      int n;

      g_mutex_unlock (&pool->lock);
      n = epoll_wait (pool->epoll_fd, events, G_N_ELEMENTS (events), -1);
      for (int i = 0; i < n; i++)
        {
          if (events[i].data.u32 == EVENT_TURN)
            (void) !read (pool->main_event, &count, sizeof count);
          else if (events[i].data.u32 == EVENT_TIMER)
            timer = read (pool->timer_fd, &count, sizeof count) > 0;
          else
            input = TRUE;
        }
      g_mutex_lock (&pool->lock);
      if (timer && main_timer_expired (pool))
        input = TRUE;
      /* input for a call that has since taken its turn back is its own */
      if (input && pool->turn == TURN_CALL)
        pool->turn = TURN_MAIN;
    }
}

static gboolean
main_wait_open (DirtyWorkerPool *pool)
{
  struct epoll_event turn = { .events = EPOLLIN, .data.u32 = EVENT_TURN };
  struct epoll_event input = { .events = 0, .data.u32 = EVENT_INPUT };
  struct epoll_event timer = { .events = EPOLLIN, .data.u32 = EVENT_TIMER };

  pool->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  pool->main_event = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  pool->timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  return pool->epoll_fd >= 0 && pool->main_event >= 0 && pool->timer_fd >= 0 &&
         epoll_ctl (pool->epoll_fd, EPOLL_CTL_ADD, pool->main_event, &turn) == 0 &&
         epoll_ctl (pool->epoll_fd, EPOLL_CTL_ADD, pool->input_fd, &input) == 0 &&
         epoll_ctl (pool->epoll_fd, EPOLL_CTL_ADD, pool->timer_fd, &timer) == 0;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
main_wait_close (DirtyWorkerPool *pool)
{
  close_fd (&pool->epoll_fd);
  close_fd (&pool->main_event);
  close_fd (&pool->timer_fd);
}

/* Turns */

/* Whether an idle pool thread is left over once each queued item has
 * one (lock held): the one the next turn, or a call with it, can go to */
static gboolean
idle_thread_left (DirtyWorkerPool *pool)
{
  return pool->n_idle > pool->queue.length;
}

/* Ends the caller of run()'s turn (lock held): the next is an idle pool
 * thread's when one is left over after the queued items, so that the
 * next call read runs where it is read; the call the caller of run()
 * read goes with it, or to the head of the queue if it cannot. Returns
 * whether to wake an idle thread once the lock is dropped. */
static gboolean
pass_turn (DirtyWorkerPool *pool)
{
  gboolean pass = pool->context != NULL && g_main_loop_is_running (pool->loop) &&
                  !pool->stopping && idle_thread_left (pool);

  if (pool->handed != NULL && !pass)
    {
      g_queue_push_head (&pool->queue, g_steal_pointer (&pool->handed));
      return pool->n_idle > 0;
    }
  if (pass)
    pool->turn = TURN_FOLLOWER;
  return pass;
}

/* Runs the context until a dispatch claims an item for this thread
 * (returned) or the loop quits (NULL), first finishing what the call
 * this thread just ran in its turn left for the context, if
 * @after_call. FALSE if it cannot hold it. */
static gboolean
run_context (DirtyWorkerPool  *pool,
             gboolean          after_call,
             gpointer         *item)
{
  /* The last turn's thread released the context before it passed the
   * turn on; only someone else's g_main_context_invoke () can hold it
   * now, for a moment. */
  if (!g_main_context_acquire (pool->context))
    return FALSE;
  /* for the async actions and sources that dispatch here */
  g_main_context_push_thread_default (pool->context);
  leading = pool;
  if (after_call && pool->after_call != NULL)
    pool->after_call (pool->user_data);
  while (claimed == NULL && g_main_loop_is_running (pool->loop))
    g_main_context_iteration (pool->context, TRUE);
  leading = NULL;
  *item = g_steal_pointer (&claimed);
  g_main_context_pop_thread_default (pool->context);
  g_main_context_release (pool->context);
  return TRUE;
}

/* Runs a call read in this thread's turn, keeping the turn: nobody runs
 * the context meanwhile and nobody is woken, which is the point: a
 * short call costs no wake-up of another thread. The caller of run()
 * watches for input meanwhile, and for time: the timer, once armed,
 * stays so while calls keep the turn (main_timer_expired ()), since a
 * timer armed and disarmed for each call (two timerfd_settime () a
 * call) cost a round trip 8 µs on a VM, measured against the timer
 * left off (benchmarks/HISTORY.md, session 18). Returns whether the
 * turn is still this thread's after the call (lock dropped on entry
 * and on return). */
static gboolean
run_call_in_turn (DirtyWorkerPool *pool,
                  gpointer         item)
{
  gboolean arm, kept, give_up;

  g_mutex_lock (&pool->lock);
  pool->turn = TURN_CALL;
  pool->call_since = g_get_monotonic_time ();
  arm = !pool->timer_armed;
  pool->timer_armed = TRUE;
  g_mutex_unlock (&pool->lock);
  if (arm)
    set_timer (pool, pool->call_since + LENT_TURN_US);
  watch_input (pool, TRUE);
  pool->func (item, pool->user_data);
  if (watching != NULL)
    watch_input (pool, FALSE);
  g_mutex_lock (&pool->lock);
  kept = pool->turn == TURN_CALL;
  /* Calls queued meanwhile that no idle thread will take (more than the
   * host sent for our threads, or read with this one) are older than
   * any this thread would read next: it runs them, and the caller of
   * run() takes the turn. */
  give_up = kept && pool->queue.length > pool->n_idle;
  if (give_up)
    pool->turn = TURN_MAIN;
  else if (kept)
    pool->turn = TURN_TAKEN;
  g_mutex_unlock (&pool->lock);
  if (give_up)
    wake_main (pool);
  return kept && !give_up;
}

/* A pool thread's turn (lock held on entry and on return) */
static void
take_turn (DirtyWorkerPool *pool)
{
  /* the call the caller of run() read, first */
  gpointer item = g_steal_pointer (&pool->handed);

  pool->turn = TURN_TAKEN;
  g_mutex_unlock (&pool->lock);
  for (;;)
    {
      if (item != NULL && !run_call_in_turn (pool, item))
        {
          /* the caller of run() took the turn, or has it for the queue's
           * sake: an idle thread now */
          g_mutex_lock (&pool->lock);
          return;
        }
      /* after a call, what it left for the context comes first */
      if (!run_context (pool, item != NULL, &item) || item == NULL)
        break;
    }
  g_mutex_lock (&pool->lock);
  pool->turn = TURN_MAIN;
  g_mutex_unlock (&pool->lock);
  wake_main (pool);
  g_mutex_lock (&pool->lock);
}

/* A pool thread going idle while the caller of run() has the turn (lock
 * held, and dropped meanwhile): it wakes the context, so that the turn
 * comes back to it when the caller of run()'s iteration ends
 * (pass_turn ()). Without it, the caller of run() would keep the turn
 * after every pool thread was busy until the next call came, and that
 * call would cost the wake-up of the thread it is handed to. */
static void
nudge_main (DirtyWorkerPool *pool)
{
  GMainContext *context = pool->context;

  if (context == NULL || pool->turn != TURN_MAIN || pool->nudged)
    return;
  pool->nudged = TRUE;
  g_main_context_ref (context);
  g_mutex_unlock (&pool->lock);
  g_main_context_wakeup (context);
  g_main_context_unref (context);
  g_mutex_lock (&pool->lock);
}

static gpointer
pool_thread (gpointer data)
{
  DirtyWorkerPool *pool = data;

  g_mutex_lock (&pool->lock);
  for (;;)
    {
      gpointer item;

      if (pool->turn != TURN_FOLLOWER && g_queue_is_empty (&pool->queue) && !pool->stopping)
        {
          pool->n_idle++;
          nudge_main (pool);
          while (pool->turn != TURN_FOLLOWER && g_queue_is_empty (&pool->queue) &&
                 !pool->stopping)
            g_cond_wait (&pool->cond, &pool->lock);
          pool->n_idle--;
        }
      /* the turn first: while nobody runs the context, nobody reads */
      if (pool->turn == TURN_FOLLOWER)
        {
          take_turn (pool);
          continue;
        }
      /* stopping: what is still queued (after a non-immediate free) runs */
      if ((item = g_queue_pop_head (&pool->queue)) == NULL)
        break;
      g_mutex_unlock (&pool->lock);
      pool->func (item, pool->user_data);
      g_mutex_lock (&pool->lock);
    }
  g_mutex_unlock (&pool->lock);
  pool_unref (pool);
  return NULL;
}

DirtyWorkerPool *
dirty_worker_pool_new (guint            n_threads,
                       GFunc            func,
                       gpointer         user_data,
                       GDestroyNotify   free_item,
                       GError         **error)
{
  DirtyWorkerPool *pool = g_new0 (DirtyWorkerPool, 1);

  g_atomic_ref_count_init (&pool->ref);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->cond);
  g_queue_init (&pool->queue);
  pool->func = func;
  pool->user_data = user_data;
  pool->free_item = free_item;
  pool->threads = g_ptr_array_new ();

  for (guint i = 0; i < n_threads; i++)
    {
      GThread *thread;

      g_atomic_ref_count_inc (&pool->ref);
      thread = g_thread_try_new ("dirty-call", pool_thread, pool, error);
      if (thread == NULL)
        {
          g_atomic_ref_count_dec (&pool->ref);
          dirty_worker_pool_free (pool, TRUE, TRUE);
          return NULL;
        }
      g_ptr_array_add (pool->threads, thread);
    }
  return pool;
}

void
dirty_worker_pool_run (DirtyWorkerPool *pool,
                       GMainContext    *context,
                       GMainLoop       *loop,
                       int              input_fd)
{
  g_return_if_fail (g_main_loop_is_running (loop));

  g_mutex_lock (&pool->lock);
  pool->input_fd = input_fd;
  pool->epoll_fd = pool->main_event = pool->timer_fd = -1;
  /* A context this thread holds (pushed as its thread-default) cannot
   * be run by another thread: the pool threads only run calls then. */
  if (!g_main_context_is_owner (context) && main_wait_open (pool))
    {
      pool->context = context;
      pool->loop = loop;
    }
  pool->turn = TURN_MAIN;
  for (;;)
    {
      main_wait_turn (pool);
      if (!g_main_loop_is_running (loop))
        break;
      g_mutex_unlock (&pool->lock);
      main_leading = pool->context != NULL ? pool : NULL;
      g_main_context_iteration (context, TRUE);
      main_leading = NULL;
      g_mutex_lock (&pool->lock);
      pool->nudged = FALSE;
      if (pass_turn (pool))
        {
          /* after the unlock, as in dirty_worker_pool_push () */
          g_mutex_unlock (&pool->lock);
          g_cond_signal (&pool->cond);
          g_mutex_lock (&pool->lock);
        }
    }
  pool->context = NULL;
  pool->loop = NULL;
  g_mutex_unlock (&pool->lock);
  main_wait_close (pool);
}

void
dirty_worker_pool_set_after_call (DirtyWorkerPool          *pool,
                                  DirtyWorkerPoolAfterCall  func)
{
  pool->after_call = func;
}

gboolean
dirty_worker_pool_claim (DirtyWorkerPool *pool,
                         gpointer         item)
{
  gboolean handed = FALSE;

  g_return_val_if_fail (item != NULL, FALSE);

  /* one item a turn: the others of the same read go to idle threads */
  if (leading == pool && claimed == NULL)
    {
      claimed = item;
      return TRUE;
    }
  if (main_leading != pool)
    return FALSE;
  /* the caller of run() runs no calls: one it reads goes with its turn
   * to an idle thread, which then has the turn (pass_turn ()) */
  g_mutex_lock (&pool->lock);
  if (pool->handed == NULL && idle_thread_left (pool))
    {
      pool->handed = item;
      handed = TRUE;
    }
  g_mutex_unlock (&pool->lock);
  return handed;
}

void
dirty_worker_pool_replying (void)
{
  /* on a busy CPU the reply's reader may run, and its next call come,
   * before this thread is back: that input is this thread's to read */
  if (watching != NULL)
    watch_input (watching, FALSE);
}

gboolean
dirty_worker_pool_push (DirtyWorkerPool *pool,
                        gpointer         item)
{
  gboolean wake;

  g_return_val_if_fail (item != NULL, FALSE);

  g_mutex_lock (&pool->lock);
  if (pool->stopping)
    {
      g_mutex_unlock (&pool->lock);
      return FALSE;
    }
  g_queue_push_tail (&pool->queue, item);
  wake = pool->n_idle > 0;
  g_mutex_unlock (&pool->lock);
  /* after the unlock: the woken thread finds the lock free. It waited
   * under the lock, so it cannot miss this signal. */
  if (wake)
    g_cond_signal (&pool->cond);
  return TRUE;
}

void
dirty_worker_pool_free (DirtyWorkerPool *pool,
                        gboolean         immediate,
                        gboolean         wait)
{
  GQueue dropped = G_QUEUE_INIT;

  g_mutex_lock (&pool->lock);
  pool->stopping = TRUE;
  if (immediate)
    {
      dropped = pool->queue;
      g_queue_init (&pool->queue);
    }
  g_mutex_unlock (&pool->lock);
  g_cond_broadcast (&pool->cond);

  g_queue_clear_full (&dropped, pool->free_item);
  for (guint i = 0; i < pool->threads->len; i++)
    {
      GThread *thread = g_ptr_array_index (pool->threads, i);

      if (wait)
        g_thread_join (thread);
      else
        g_thread_unref (thread);
    }
  g_ptr_array_unref (pool->threads);
  pool->threads = NULL;
  pool_unref (pool);
}
