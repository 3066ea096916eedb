/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The threads that run a worker's sync calls (client/dirty-worker-pool.c):
 * calls really run at once, the queue waits for a free thread, and the
 * two ways of stopping (drain and wait, or drop and leave a stuck thread
 * behind) keep their promises. With a context to run, the threads take
 * turns at it and run what they read, and the context goes on running
 * while a call does. Links the library's objects for the private
 * header, as test-client-unit does. */

#include "config.h"

#include <glib-unix.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-worker-pool.h"

typedef struct {
  GMutex lock;
  GCond  cond;
  guint  running;      /* items inside run_item () now */
  guint  max_running;
  guint  done;
  guint  freed;        /* items dropped by an immediate free */
  gboolean release;    /* blocked items may return */
} Counts;

/* An item is a Counts*; it blocks until `release` when asked to. */
static void
run_item (gpointer item,
          gpointer user_data)
{
  Counts *c = user_data;
  gboolean block = GPOINTER_TO_UINT (item) & 1;

  g_mutex_lock (&c->lock);
  c->running++;
  c->max_running = MAX (c->max_running, c->running);
  g_cond_broadcast (&c->cond);
  while (block && !c->release)
    g_cond_wait (&c->cond, &c->lock);
  c->running--;
  c->done++;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static Counts *freed_counts;

static void
free_item (gpointer item)
{
  g_mutex_lock (&freed_counts->lock);
  freed_counts->freed++;
  g_mutex_unlock (&freed_counts->lock);
}

/* items are odd (blocking) or even (not), never 0 (NULL) */
#define BLOCKING(i)     GUINT_TO_POINTER (2 * (i) + 1)
#define NOT_BLOCKING(i) GUINT_TO_POINTER (2 * (i) + 2)

static void
wait_until (Counts *c, guint *field, guint value)
{
  gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  g_mutex_lock (&c->lock);
  while (*field != value)
    g_assert_true (g_cond_wait_until (&c->cond, &c->lock, end));
  g_mutex_unlock (&c->lock);
}

static void
release (Counts *c)
{
  g_mutex_lock (&c->lock);
  c->release = TRUE;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static DirtyWorkerPool *
new_pool (guint n, Counts *c)
{
  g_autoptr(GError) error = NULL;
  DirtyWorkerPool *pool;

  freed_counts = c;
  pool = dirty_worker_pool_new (n, run_item, c, free_item, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  return pool;
}

/* n threads run n blocking items at once; the next one waits its turn */
static void
test_concurrency (void)
{
  Counts c = { 0 };
  DirtyWorkerPool *pool = new_pool (3, &c);

  for (guint i = 0; i < 4; i++)
    g_assert_true (dirty_worker_pool_push (pool, BLOCKING (i)));
  wait_until (&c, &c.running, 3);
  g_usleep (50 * 1000);
  g_assert_cmpuint (c.running, ==, 3);   /* the fourth is still queued */
  g_assert_cmpuint (c.done, ==, 0);
  release (&c);
  wait_until (&c, &c.done, 4);
  g_assert_cmpuint (c.max_running, ==, 3);
  dirty_worker_pool_free (pool, FALSE, TRUE);
  g_assert_cmpuint (c.freed, ==, 0);
}

/* an idle thread is woken for each item: pushed one at a time, after the
 * previous one ran (the pool's thread is asleep each time) */
static void
test_one_at_a_time (void)
{
  Counts c = { 0 };
  DirtyWorkerPool *pool = new_pool (1, &c);

  for (guint i = 0; i < 500; i++)
    {
      g_assert_true (dirty_worker_pool_push (pool, NOT_BLOCKING (i)));
      wait_until (&c, &c.done, i + 1);
    }
  dirty_worker_pool_free (pool, FALSE, TRUE);
}

/* many items from a few threads at once: each runs exactly once */
typedef struct {
  DirtyWorkerPool *pool;
  guint            first;
} Pusher;

static gpointer
push_many (gpointer data)
{
  Pusher *p = data;

  for (guint i = 0; i < 2000; i++)
    g_assert_true (dirty_worker_pool_push (p->pool, NOT_BLOCKING (p->first + i)));
  return NULL;
}

static void
test_many_pushers (void)
{
  Counts c = { 0 };
  DirtyWorkerPool *pool = new_pool (4, &c);
  Pusher pushers[4];
  GThread *threads[4];

  for (guint i = 0; i < 4; i++)
    {
      pushers[i] = (Pusher) { pool, i * 2000 };
      threads[i] = g_thread_new ("pusher", push_many, &pushers[i]);
    }
  for (guint i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  wait_until (&c, &c.done, 8000);
  dirty_worker_pool_free (pool, FALSE, TRUE);
  g_assert_cmpuint (c.done, ==, 8000);
}

/* One thread, stuck in an item, and five more items queued behind it */
static DirtyWorkerPool *
new_pool_with_five_queued (Counts *c)
{
  DirtyWorkerPool *pool = new_pool (1, c);

  g_assert_true (dirty_worker_pool_push (pool, BLOCKING (0)));
  wait_until (c, &c->running, 1);
  for (guint i = 1; i <= 5; i++)
    g_assert_true (dirty_worker_pool_push (pool, NOT_BLOCKING (i)));
  return pool;
}

/* a draining free runs what was queued, then returns */
static void
test_free_drains (void)
{
  Counts c = { 0 };
  DirtyWorkerPool *pool = new_pool_with_five_queued (&c);

  release (&c);
  dirty_worker_pool_free (pool, FALSE, TRUE);
  g_assert_cmpuint (c.done, ==, 6);
  g_assert_cmpuint (c.freed, ==, 0);
}

/* an immediate free without waiting drops the queued items and returns
 * while a thread is stuck in one; that thread still returns safely */
static void
test_free_immediate (void)
{
  Counts c = { 0 };
  DirtyWorkerPool *pool = new_pool_with_five_queued (&c);

  dirty_worker_pool_free (pool, TRUE, FALSE);
  g_assert_cmpuint (c.freed, ==, 5);
  g_assert_cmpuint (c.done, ==, 0);

  release (&c);
  wait_until (&c, &c.done, 1);
  g_usleep (50 * 1000);   /* the thread leaves; nothing else runs */
  g_assert_cmpuint (c.done, ==, 1);
}

/* nothing is taken once the pool is stopping */
typedef struct {
  DirtyWorkerPool *pool;
  gboolean         pushed;
} LatePush;

static void
push_while_stopping (gpointer item,
                     gpointer user_data)
{
  LatePush *late = user_data;

  g_usleep (20 * 1000);   /* the free below has begun by now */
  late->pushed = dirty_worker_pool_push (late->pool, NOT_BLOCKING (1));
}

static void
test_push_after_free (void)
{
  g_autoptr(GError) error = NULL;
  LatePush late = { NULL, TRUE };

  late.pool = dirty_worker_pool_new (1, push_while_stopping, &late, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dirty_worker_pool_push (late.pool, BLOCKING (0)));
  dirty_worker_pool_free (late.pool, FALSE, TRUE);
  g_assert_false (late.pushed);
}

/* ---- turns at a context (dirty_worker_pool_run ()) ---------------------- */

/* A context that reads bytes from a socket, as a worker reads frames:
 * each byte becomes an item, claimed by the thread that read it when it
 * can, queued otherwise; 'q' quits. */
typedef struct {
  DirtyWorkerPool *pool;
  GMainContext    *context;
  GMainLoop       *loop;
  int              fds[2];     /* [0]: the context reads; [1]: the test writes */
  GThread         *runner;     /* in dirty_worker_pool_run () */
  gboolean         own_context; /* the runner holds the context (pushed) */
  GMutex           lock;
  GCond            cond;
  guint            n_read;
  guint            n_claimed;  /* by the pool thread that read them */
  guint            n_handed;   /* read by the runner, sent with its turn */
  guint            n_on_reader; /* items run by the thread that read them */
  guint            n_running;
  guint            n_done;
  guint            ticks;      /* of a 2 ms timeout on the context */
  gboolean         quit_on_pool; /* 'q' was read by a pool thread */
  gboolean         block;      /* items wait for !block */
} Turns;

typedef struct {
  Turns   *t;
  GThread *reader;
} Item;

static void
bump (Turns *t, guint *field, gint by)
{
  g_mutex_lock (&t->lock);
  *field += by;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
}

static void
run_turns_item (gpointer data,
                gpointer user_data)
{
  Item *item = data;
  Turns *t = item->t;

  g_mutex_lock (&t->lock);
  t->n_on_reader += item->reader == g_thread_self ();
  t->n_running++;
  g_cond_broadcast (&t->cond);
  while (t->block)
    g_cond_wait (&t->cond, &t->lock);
  t->n_running--;
  t->n_done++;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
  g_free (item);
}

static gboolean
read_cb (int fd, GIOCondition condition, gpointer user_data)
{
  Turns *t = user_data;
  char byte;

  while (read (fd, &byte, 1) == 1)
    {
      Item *item;

      if (byte == 'q')
        {
          t->quit_on_pool = g_thread_self () != t->runner;
          g_main_loop_quit (t->loop);
          continue;
        }
      item = g_new0 (Item, 1);
      item->t = t;
      item->reader = g_thread_self ();
      bump (t, &t->n_read, 1);
      /* the runner hands a call it claims to a pool thread with its turn */
      if (dirty_worker_pool_claim (t->pool, item))
        bump (t, item->reader == t->runner ? &t->n_handed : &t->n_claimed, 1);
      else
        g_assert_true (dirty_worker_pool_push (t->pool, item));
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
tick_cb (gpointer user_data)
{
  Turns *t = user_data;

  bump (t, &t->ticks, 1);
  return G_SOURCE_CONTINUE;
}

static gpointer
run_turns (gpointer data)
{
  Turns *t = data;

  if (t->own_context)
    g_main_context_push_thread_default (t->context);
  dirty_worker_pool_run (t->pool, t->context, t->loop, t->fds[0]);
  if (t->own_context)
    g_main_context_pop_thread_default (t->context);
  return NULL;
}

static void
turns_start (Turns *t, guint n_threads, gboolean own_context)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSource) reader = NULL;
  g_autoptr(GSource) ticker = g_timeout_source_new (2);

  g_mutex_init (&t->lock);
  g_cond_init (&t->cond);
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, t->fds));
  t->own_context = own_context;
  t->context = g_main_context_new ();
  t->loop = g_main_loop_new (t->context, TRUE);
  t->pool = dirty_worker_pool_new (n_threads, run_turns_item, t, g_free, &error);
  g_assert_no_error (error);
  reader = g_unix_fd_source_new (t->fds[0], G_IO_IN);
  g_source_set_callback (reader, G_SOURCE_FUNC (read_cb), t, NULL);
  g_source_attach (reader, t->context);
  g_source_set_callback (ticker, tick_cb, t, NULL);
  g_source_attach (ticker, t->context);
  t->runner = g_thread_new ("runner", run_turns, t);
}

static void
send_byte (Turns *t, char byte)
{
  g_assert_cmpint (write (t->fds[1], &byte, 1), ==, 1);
}

/* waits (bounded) until *field reaches @value */
static void
turns_wait (Turns *t, guint *field, guint value)
{
  gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  g_mutex_lock (&t->lock);
  while (*field < value)
    g_assert_true (g_cond_wait_until (&t->cond, &t->lock, end));
  g_mutex_unlock (&t->lock);
}

static void
set_block (Turns *t, gboolean block)
{
  g_mutex_lock (&t->lock);
  t->block = block;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
}

/* one item at a time, each after the last ran */
static void
send_items (Turns *t, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      guint done = t->n_done;

      send_byte (t, 'x');
      turns_wait (t, &t->n_done, done + 1);
    }
}

/* Sends items until one is claimed: a pool thread has the turn then */
static void
until_claimed (Turns *t)
{
  guint claimed = t->n_claimed;

  for (guint i = 0; i < 100 && t->n_claimed == claimed; i++)
    send_items (t, 1);
  g_assert_cmpuint (t->n_claimed, >, claimed);
}

static void
turns_stop (Turns *t)
{
  send_byte (t, 'q');
  g_thread_join (t->runner);
  dirty_worker_pool_free (t->pool, FALSE, TRUE);
  g_main_loop_unref (t->loop);
  g_main_context_unref (t->context);
  close (t->fds[0]);
  close (t->fds[1]);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->cond);
}

/* A call runs on the thread that read it: after the first (read by the
 * runner, which then hands its turn on), nearly every one is claimed
 * (the runner takes the turn of a call that lasts 1 ms, which a loaded
 * machine can make any call do). */
static void
test_turns_no_hop (void)
{
  Turns t = { 0 };

  turns_start (&t, 2, FALSE);
  send_items (&t, 200);
  g_test_message ("%u of 200 calls claimed by the thread that read them", t.n_claimed);
  g_assert_cmpuint (t.n_claimed, >=, 10);
  g_assert_cmpuint (t.n_on_reader, ==, t.n_claimed);
  turns_stop (&t);
}

/* While a call runs in its turn, the context still runs: its timeout
 * keeps firing and input is read (heartbeats and CANCEL in a worker).
 * Twice: the second call gets the same from a timer used before. */
static void
test_turns_long_call (void)
{
  Turns t = { 0 };

  turns_start (&t, 1, FALSE);
  until_claimed (&t);   /* the pool's thread has the turn now */
  for (guint round = 0; round < 2; round++)
    {
      guint done = t.n_done, read, ticks;

      set_block (&t, TRUE);
      send_byte (&t, 'x');
      turns_wait (&t, &t.n_running, 1);
      ticks = t.ticks;
      turns_wait (&t, &t.ticks, ticks + 5);
      read = t.n_read;
      send_byte (&t, 'x');   /* queued behind the running one */
      turns_wait (&t, &t.n_read, read + 1);
      g_assert_cmpuint (t.n_running, ==, 1);
      set_block (&t, FALSE);
      turns_wait (&t, &t.n_done, done + 2);
      /* and the pool's thread has the turn again */
      until_claimed (&t);
    }
  turns_stop (&t);
}

/* Two calls read at once by the only pool thread: it runs the one it
 * claimed, then the one it queued, though no input comes to end its
 * turn (a host that sends more calls than the worker has threads) */
static void
test_turns_queued_call_runs (void)
{
  Turns t = { 0 };
  guint done;

  turns_start (&t, 1, FALSE);
  until_claimed (&t);   /* the pool's thread has the turn now */
  done = t.n_done;
  g_assert_cmpint (write (t.fds[1], "xx", 2), ==, 2);
  turns_wait (&t, &t.n_done, done + 2);
  until_claimed (&t);
  turns_stop (&t);
}

/* The loop quits from a pool thread's turn: run() returns. Which thread
 * reads the 'q' is the scheduler's choice: tried until a pool thread did. */
static void
test_turns_quit_from_pool_thread (void)
{
  gboolean quit_on_pool = FALSE;

  for (guint i = 0; i < 50 && !quit_on_pool; i++)
    {
      Turns t = { 0 };

      turns_start (&t, 2, FALSE);
      send_items (&t, 5);
      turns_stop (&t);
      quit_on_pool = t.quit_on_pool;
    }
  g_assert_true (quit_on_pool);
}

/* A context its runner holds is run by the runner only: every item is
 * queued, and runs */
static void
test_turns_owned_context (void)
{
  Turns t = { 0 };

  turns_start (&t, 2, TRUE);
  send_items (&t, 20);
  g_assert_cmpuint (t.n_claimed + t.n_handed, ==, 0);
  g_assert_cmpuint (t.n_done, ==, 20);
  turns_stop (&t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/worker-pool/concurrency", test_concurrency);
  g_test_add_func ("/worker-pool/one-at-a-time", test_one_at_a_time);
  g_test_add_func ("/worker-pool/many-pushers", test_many_pushers);
  g_test_add_func ("/worker-pool/free-drains", test_free_drains);
  g_test_add_func ("/worker-pool/free-immediate", test_free_immediate);
  g_test_add_func ("/worker-pool/push-after-free", test_push_after_free);
  g_test_add_func ("/worker-pool/turns/no-hop", test_turns_no_hop);
  g_test_add_func ("/worker-pool/turns/long-call", test_turns_long_call);
  g_test_add_func ("/worker-pool/turns/queued-call-runs", test_turns_queued_call_runs);
  g_test_add_func ("/worker-pool/turns/quit-from-pool-thread", test_turns_quit_from_pool_thread);
  g_test_add_func ("/worker-pool/turns/owned-context", test_turns_owned_context);
  return g_test_run ();
}
