/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyScheduler's deadlines: every pending deadline or grace end in one
 * heap with one timer, and what happens when one comes (a queued call
 * times out; a running one has its backtrace taken, then its client gets
 * "timeout" and its worker CANCEL, then the worker is killed). */
#include "config.h"

#include "dirty-log.h"
#include "dirty-scheduler-private.h"

static void
dirty_scheduler_rearm (DirtyScheduler *self)
{
  DirtyJob *first = dirty_job_heap_peek (&self->timers);

  dirty_timer_arm_at (self->timer, first != NULL ? first->timer_at : -1);
}

/* (Re)places @job's timer at @when (monotonic us), or removes it (0).
 * The caller holds a reference: the heap drops its own. */
void
dirty_scheduler_set_timer (DirtyScheduler *self,
                           DirtyJob       *job,
                           gint64          when)
{
  dirty_job_heap_remove (&self->timers, job);
  if (when > 0)
    {
      job->timer_at = when;
      job->timer_seq = ++self->next_timer_seq;
      dirty_job_heap_push (&self->timers, job);
    }
  dirty_scheduler_rearm (self);
}

/* The request's timeout, capped by dirty_timeout (0: no cap, and then a
 * request without a timeout has no deadline). */
gint64
dirty_scheduler_deadline (DirtyScheduler *self,
                          DirtyJob       *job)
{
  guint64 limit_ms = (guint64) dirty_config_get_timeout (self->config) * 1000;
  guint64 asked_ms = job->frame->header.aux;
  guint64 ms;

  if (limit_ms == 0)
    ms = asked_ms;
  else
    ms = asked_ms == 0 ? limit_ms : MIN (asked_ms, limit_ms);
  return ms == 0 ? 0 : job->arrival + (gint64) ms * 1000;
}

/* A running call overran its deadline and its backtrace is in (or known
 * to be missing): its client gets "timeout" with the backtrace as the
 * detail, the worker gets CANCEL, and it is killed if the call has not
 * ended 2 s after the deadline. */
static void
dirty_scheduler_overran (DirtyScheduler *self,
                         DirtyJob       *job,
                         gint64          now)
{
  g_autofree char *message = g_strdup_printf ("timed out after %" G_GINT64_FORMAT " ms",
                                              (job->deadline - job->arrival) / 1000);

  if (job->state == DIRTY_JOB_RUNNING)
    dirty_scheduler_fail_job_full (self, job, DIRTY_ERROR_TIMEOUT, message,
                                   dirty_worker_proc_get_pid (job->worker), job->backtrace);
  dirty_worker_proc_cancel_job (job->worker, job);
  job->in_grace = TRUE;
  dirty_scheduler_set_timer (self, job, MAX (job->deadline + DIRTY_SCHEDULER_GRACE_US, now + 1));
}

/* The worker did not answer BACKTRACE in time: its main loop is blocked
 * too, or the process is stopped (SIGSTOP, a debugger). */
static void
dirty_scheduler_backtrace_missing (DirtyScheduler *self,
                                   DirtyJob       *job,
                                   gint64          now)
{
  job->backtrace_state = DIRTY_JOB_BACKTRACE_DONE;
  job->backtrace = g_strdup_printf ("no backtrace could be taken: worker %u (pid %" G_GINT64_FORMAT
                                    ") did not answer within %d ms (its main loop is blocked, or "
                                    "the process is stopped)",
                                    dirty_worker_proc_get_id (job->worker),
                                    dirty_worker_proc_get_pid (job->worker),
                                    (int) (DIRTY_SCHEDULER_BACKTRACE_WAIT_US / 1000));
  dirty_scheduler_overran (self, job, now);
}

static void
dirty_scheduler_kill_overrun (DirtyScheduler *self,
                              DirtyJob       *job)
{
  g_autofree char *reason = g_strdup_printf ("call %s.%s did not end within 2 s of its deadline",
                                             job->app, job->action);

  dirty_log_call_error (G_LOG_LEVEL_WARNING, job->app, job->action, job->client_id,
                        dirty_worker_proc_get_pid (job->worker),
                        dirty_worker_proc_get_id (job->worker), DIRTY_ERROR_TIMEOUT,
                        job->backtrace, "killing worker %u: %s",
                        dirty_worker_proc_get_id (job->worker), reason);
  dirty_worker_proc_kill (job->worker, reason);
}

static void
dirty_scheduler_job_expired (DirtyScheduler *self,
                             DirtyJob       *job,
                             gint64          now)
{
  if (job->state == DIRTY_JOB_QUEUED)
    {
      g_autofree char *message = g_strdup_printf ("timed out after %" G_GINT64_FORMAT " ms",
                                                  (now - job->arrival) / 1000);

      dirty_scheduler_queue_remove (self, job);
      dirty_scheduler_fail_job (self, job, DIRTY_ERROR_TIMEOUT, message, 0);
    }
  else if (job->worker == NULL)
    return;
  else if (job->in_grace)
    dirty_scheduler_kill_overrun (self, job);
  else if (job->backtrace_state == DIRTY_JOB_BACKTRACE_NONE)
    {
      /* what it is doing, before CANCEL can change it */
      job->backtrace_state = DIRTY_JOB_BACKTRACE_WAITING;
      dirty_worker_proc_request_backtrace (job->worker, job);
      dirty_scheduler_set_timer (self, job, now + DIRTY_SCHEDULER_BACKTRACE_WAIT_US);
    }
  else if (job->backtrace_state == DIRTY_JOB_BACKTRACE_WAITING)
    dirty_scheduler_backtrace_missing (self, job, now);
  else
    /* the worker's own deadline came first and sent it */
    dirty_scheduler_overran (self, job, now);
}

gboolean
dirty_scheduler_timer_cb (gpointer user_data)
{
  DirtyScheduler *self = user_data;
  gint64 now = g_get_monotonic_time ();
  DirtyJob *first;

  while ((first = dirty_job_heap_peek (&self->timers)) != NULL)
    {
      g_autoptr(DirtyJob) job = dirty_job_ref (first);

      if (job->timer_at > now)
        break;
      dirty_scheduler_set_timer (self, job, 0);
      dirty_scheduler_job_expired (self, job, now);
    }
  dirty_scheduler_rearm (self);
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
  return G_SOURCE_CONTINUE;
}

void
dirty_scheduler_worker_backtrace_cb (DirtyPool       *pool,
                                     DirtyWorkerProc *worker,
                                     gpointer         job_ptr,
                                     const char      *backtrace,
                                     const char      *why,
                                     DirtyScheduler  *self)
{
  DirtyJob *job = job_ptr;
  g_autoptr(DirtyJob) hold = NULL;
  gboolean waiting = job->backtrace_state == DIRTY_JOB_BACKTRACE_WAITING;

  /* the first answer counts: the worker sends one unasked at its own
   * deadline, which may cross the arbiter's request */
  if (job->backtrace_state == DIRTY_JOB_BACKTRACE_DONE || job->worker != worker)
    return;
  hold = dirty_job_ref (job);
  job->backtrace_state = DIRTY_JOB_BACKTRACE_DONE;
  job->backtrace = backtrace != NULL
                     ? g_strdup_printf ("the thread running the call, at its deadline:\n%s", backtrace)
                     : g_strdup_printf ("no backtrace could be taken: %s", why);
  /* unasked, before the arbiter's deadline: kept for its timeout */
  if (!waiting)
    return;
  dirty_scheduler_overran (self, job, g_get_monotonic_time ());
  dirty_scheduler_emit_changed (self);
}
