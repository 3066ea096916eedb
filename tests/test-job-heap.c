/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler's timer heap (dirty-job-heap.h): after any mix of
 * additions and removals, jobs come out by timer_at, then timer_seq
 * (first set, first served), each exactly once, and every reference the
 * heap took is given back. */
#include "config.h"

#include "dirty-job-heap.h"

#define N_JOBS 2000

static int
compare_timers (gconstpointer a,
                gconstpointer b)
{
  const DirtyJob *ja = *(DirtyJob **) a, *jb = *(DirtyJob **) b;

  if (ja->timer_at != jb->timer_at)
    return ja->timer_at < jb->timer_at ? -1 : 1;
  return ja->timer_seq < jb->timer_seq ? -1 : (ja->timer_seq > jb->timer_seq);
}

static DirtyJob *
new_job (void)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_REQUEST, 1, 0);

  return dirty_job_new (NULL, 1, g_strdup ("app"), g_strdup ("action"), frame);
}

/* Pops everything through peek and remove, checking the order against
 * @expected (sorted) */
static void
drain_in_order (DirtyJobHeap *heap,
                GPtrArray    *expected)
{
  for (guint i = 0; i < expected->len; i++)
    {
      DirtyJob *first = dirty_job_heap_peek (heap);

      g_assert_true (first == expected->pdata[i]);
      dirty_job_heap_remove (heap, first);
      g_assert_cmpuint (first->timer_pos, ==, 0);
    }
  g_assert_null (dirty_job_heap_peek (heap));
}

static void
test_order (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (6);
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_job_unref);
  g_autoptr(GPtrArray) in_heap = g_ptr_array_new ();
  DirtyJobHeap heap;
  guint64 seq = 0;

  dirty_job_heap_init (&heap);
  for (guint i = 0; i < N_JOBS; i++)
    {
      DirtyJob *job = new_job ();

      /* few distinct times, so the sequence number decides ties often */
      job->timer_at = g_rand_int_range (rand, 1, 50);
      job->timer_seq = ++seq;
      g_ptr_array_add (jobs, job);
      dirty_job_heap_push (&heap, job);
      g_ptr_array_add (in_heap, job);
    }
  /* take out a random third, some of them twice (the second is a no-op),
   * and move another third to a new time */
  for (guint i = 0; i < N_JOBS / 3; i++)
    {
      DirtyJob *job = jobs->pdata[g_rand_int_range (rand, 0, N_JOBS)];

      dirty_job_heap_remove (&heap, job);
      dirty_job_heap_remove (&heap, job);
      g_ptr_array_remove (in_heap, job);
    }
  for (guint i = 0; i < N_JOBS / 3; i++)
    {
      DirtyJob *job = in_heap->pdata[g_rand_int_range (rand, 0, in_heap->len)];

      dirty_job_heap_remove (&heap, job);
      job->timer_at = g_rand_int_range (rand, 1, 50);
      job->timer_seq = ++seq;
      dirty_job_heap_push (&heap, job);
    }
  g_ptr_array_sort (in_heap, compare_timers);
  drain_in_order (&heap, in_heap);
  dirty_job_heap_clear (&heap);
}

/* A heap cleared with jobs in it gives their references back */
static void
test_clear (void)
{
  DirtyJob *job = new_job ();
  DirtyJobHeap heap;

  dirty_job_heap_init (&heap);
  job->timer_at = 5;
  dirty_job_heap_push (&heap, job);
  dirty_job_heap_clear (&heap);
  g_assert_cmpuint (job->timer_pos, ==, 0);
  dirty_job_unref (job);   /* the last one: valgrind and ASan see a leak or a double free */
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/job-heap/order", test_order);
  g_test_add_func ("/job-heap/clear", test_clear);
  return g_test_run ();
}
