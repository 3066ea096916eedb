/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The threads that run a worker's sync calls (client/dirty-worker-pool.c):
 * calls really run at once, the queue waits for a free thread, and the
 * two ways of stopping (drain and wait, or drop and leave a stuck thread
 * behind) keep their promises. Links the library's objects for the
 * private header, as test-client-unit does. */

#include "config.h"

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
  return g_test_run ();
}
