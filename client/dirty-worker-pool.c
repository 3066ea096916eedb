/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-worker-pool.h"

struct _DirtyWorkerPool {
  gatomicrefcount ref;      /* the owner's, and one per running thread */
  GMutex          lock;
  GCond           cond;
  GQueue          queue;    /* items not started yet */
  guint           n_idle;   /* threads waiting on @cond */
  gboolean        stopping;
  GFunc           func;
  gpointer        user_data;
  GDestroyNotify  free_item;
  GPtrArray      *threads;  /* GThread*: joined, or let go, when freed */
};

static void
pool_unref (DirtyWorkerPool *pool)
{
  if (!g_atomic_ref_count_dec (&pool->ref))
    return;
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->cond);
  g_free (pool);
}

static gpointer
pool_thread (gpointer data)
{
  DirtyWorkerPool *pool = data;

  g_mutex_lock (&pool->lock);
  for (;;)
    {
      gpointer item;

      while (g_queue_is_empty (&pool->queue) && !pool->stopping)
        {
          pool->n_idle++;
          g_cond_wait (&pool->cond, &pool->lock);
          pool->n_idle--;
        }
      /* stopping: what is still queued (after a non-immediate free) runs */
      item = g_queue_pop_head (&pool->queue);
      if (item == NULL)
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
