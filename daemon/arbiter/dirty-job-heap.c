/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-job-heap.h"

/* job->timer_pos is its index + 1, so a zeroed job is in no heap */

static gboolean
earlier (const DirtyJob *a,
         const DirtyJob *b)
{
  if (a->timer_at != b->timer_at)
    return a->timer_at < b->timer_at;
  return a->timer_seq < b->timer_seq;
}

static void
place (DirtyJobHeap *heap,
       guint         i,
       DirtyJob     *job)
{
  heap->jobs->pdata[i] = job;
  job->timer_pos = i + 1;
}

/* Moves the job at @i up or down to where it belongs */
static void
restore (DirtyJobHeap *heap,
         guint         i)
{
  gpointer *jobs = heap->jobs->pdata;
  guint n = heap->jobs->len;
  DirtyJob *job = jobs[i];

  while (i > 0 && earlier (job, jobs[(i - 1) / 2]))
    {
      place (heap, i, jobs[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
  for (;;)
    {
      guint child = 2 * i + 1;

      if (child >= n)
        break;
      if (child + 1 < n && earlier (jobs[child + 1], jobs[child]))
        child++;
      if (!earlier (jobs[child], job))
        break;
      place (heap, i, jobs[child]);
      i = child;
    }
  place (heap, i, job);
}

void
dirty_job_heap_init (DirtyJobHeap *heap)
{
  heap->jobs = g_ptr_array_new ();
}

void
dirty_job_heap_clear (DirtyJobHeap *heap)
{
  if (heap->jobs == NULL)
    return;
  for (guint i = 0; i < heap->jobs->len; i++)
    {
      DirtyJob *job = heap->jobs->pdata[i];

      job->timer_pos = 0;
      dirty_job_unref (job);
    }
  g_clear_pointer (&heap->jobs, g_ptr_array_unref);
}

void
dirty_job_heap_push (DirtyJobHeap *heap,
                     DirtyJob     *job)
{
  g_return_if_fail (job->timer_pos == 0);

  g_ptr_array_add (heap->jobs, dirty_job_ref (job));
  restore (heap, heap->jobs->len - 1);
}

void
dirty_job_heap_remove (DirtyJobHeap *heap,
                       DirtyJob     *job)
{
  guint i = job->timer_pos - 1;
  DirtyJob *last;

  if (job->timer_pos == 0)
    return;
  g_return_if_fail (i < heap->jobs->len && heap->jobs->pdata[i] == job);

  job->timer_pos = 0;
  last = g_ptr_array_steal_index (heap->jobs, heap->jobs->len - 1);
  if (last != job)
    {
      place (heap, i, last);
      restore (heap, i);
    }
  dirty_job_unref (job);
}

DirtyJob *
dirty_job_heap_peek (DirtyJobHeap *heap)
{
  return heap->jobs->len > 0 ? heap->jobs->pdata[0] : NULL;
}
