/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The scheduler's pending timers (deadlines, grace ends): a binary
 * min-heap of jobs by (timer_at, timer_seq), each job knowing its place
 * (job->timer_pos). Adding and removing are O(log n) and allocate
 * nothing, unlike a GSequence node per call; the earliest is at the top. */

#include "dirty-job.h"

G_BEGIN_DECLS

typedef struct {
  GPtrArray *jobs;      /* of DirtyJob (ref), heap-ordered */
} DirtyJobHeap;

void      dirty_job_heap_init   (DirtyJobHeap *heap);
void      dirty_job_heap_clear  (DirtyJobHeap *heap);
/* Adds @job (not in the heap) with a reference, by its timer_at and
 * timer_seq. */
void      dirty_job_heap_push   (DirtyJobHeap *heap,
                                 DirtyJob     *job);
/* Takes @job out and drops the heap's reference; nothing if it is not
 * in the heap. The caller holds a reference of its own. */
void      dirty_job_heap_remove (DirtyJobHeap *heap,
                                 DirtyJob     *job);
/* (nullable) (transfer none): the job whose timer comes first */
DirtyJob *dirty_job_heap_peek   (DirtyJobHeap *heap);

G_END_DECLS
