/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-job.h"

DirtyJob *
dirty_job_new (DirtyPeer  *peer,
               guint64     client_id,
               char       *app,
               char       *action,
               DirtyFrame *frame)
{
  DirtyJob *job = g_rc_box_new0 (DirtyJob);

  job->state = DIRTY_JOB_QUEUED;
  job->peer = peer;
  job->client_id = client_id;
  job->app = app;
  job->action = action;
  job->frame = dirty_frame_ref (frame);
  job->arrival = g_get_monotonic_time ();
  job->queue_link.data = job;
  return job;
}

DirtyJob *
dirty_job_ref (DirtyJob *job)
{
  return g_rc_box_acquire (job);
}

static void
dirty_job_clear (gpointer data)
{
  DirtyJob *job = data;

  g_free (job->app);
  g_free (job->action);
  g_free (job->backtrace);
  g_clear_pointer (&job->stats, g_rc_box_release);
  dirty_frame_unref (job->frame);
}

void
dirty_job_unref (DirtyJob *job)
{
  g_rc_box_release_full (job, dirty_job_clear);
}

guint32
dirty_job_remaining_ms (DirtyJob *job,
                        gint64    now)
{
  gint64 left;

  if (job->deadline == 0)
    return 0;
  left = (job->deadline - now + 999) / 1000;
  return (guint32) CLAMP (left, 1, G_MAXUINT32);
}
