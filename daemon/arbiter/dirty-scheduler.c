/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-error-private.h"
#include "dirty-job-heap.h"
#include "dirty-log.h"
#include "dirty-message.h"
#include "dirty-peer.h"
#include "dirty-scheduler-private.h"
#include "dirty-timer.h"
#include "dirty-util.h"

enum {
  SIGNAL_IDLE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (DirtyScheduler, dirty_scheduler, G_TYPE_OBJECT)

static void
dirty_scheduler_dispose (GObject *object)
{
  DirtyScheduler *self = DIRTY_SCHEDULER (object);

  if (self->pool != NULL)
    {
      dirty_pool_set_reply_func (self->pool, NULL, NULL);
      g_signal_handlers_disconnect_by_data (self->pool, self);
    }
  g_clear_object (&self->pool);
  g_clear_pointer (&self->timer, dirty_timer_free);
  G_OBJECT_CLASS (dirty_scheduler_parent_class)->dispose (object);
}

static void
dirty_scheduler_finalize (GObject *object)
{
  DirtyScheduler *self = DIRTY_SCHEDULER (object);

  dirty_job_heap_clear (&self->timers);
  g_hash_table_unref (self->apps);
  g_clear_object (&self->config);
  G_OBJECT_CLASS (dirty_scheduler_parent_class)->finalize (object);
}

static void
dirty_scheduler_class_init (DirtySchedulerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_scheduler_dispose;
  object_class->finalize = dirty_scheduler_finalize;

  signals[SIGNAL_IDLE] =
    g_signal_new ("idle", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dirty_scheduler_init (DirtyScheduler *self)
{
  self->apps = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, dirty_app_queue_free);
  dirty_job_heap_init (&self->timers);
}

/* ---- queues ---- */

static void
record_end (DirtyScheduler *self,
            DirtyJob       *job,
            int             code)
{
  DirtyAppStats *stats = job->stats;

  if (stats != NULL)
    dirty_app_stats_record_end (stats, code, job->arrival);
}

/* @job left its worker's slot (reply, or the worker was lost) */
static void
record_slot_freed (DirtyScheduler *self,
                   DirtyJob       *job)
{
  DirtyAppStats *stats = job->stats;

  if (stats != NULL && stats->in_flight > 0)
    stats->in_flight--;
}

static void
record_cancel (DirtyScheduler *self,
               DirtyJob       *job)
{
  DirtyAppStats *stats = job->stats;

  if (stats != NULL && job->state != DIRTY_JOB_DONE)
    stats->cancels++;
}

void
dirty_scheduler_emit_changed (DirtyScheduler *self)
{
  if (self->changed_func != NULL)
    self->changed_func (self, self->changed_data);
}

static guint
dirty_scheduler_count_running (DirtyScheduler *self)
{
  g_autoptr(GPtrArray) workers = dirty_pool_list_workers (self->pool);
  guint running = 0;

  for (guint i = 0; i < workers->len; i++)
    running += dirty_worker_proc_get_load (workers->pdata[i]);
  return running;
}

void
dirty_scheduler_check_idle (DirtyScheduler *self)
{
  if (!self->draining || self->idle_emitted || self->n_queued > 0 ||
      dirty_scheduler_count_running (self) > 0)
    return;
  self->idle_emitted = TRUE;
  g_signal_emit (self, signals[SIGNAL_IDLE], 0);
}

/* Ends @job for its client (if it still waits) with an error; @detail
 * (nullable) is the backtrace of a call that overran its deadline. */
void
dirty_scheduler_fail_job_full (DirtyScheduler *self,
                               DirtyJob       *job,
                               DirtyError      code,
                               const char     *message,
                               gint64          worker_pid,
                               const char     *detail)
{
  g_autoptr(GError) error = dirty_error_new_full (code, job->app, job->action, detail,
                                                  worker_pid, message);

  job->state = DIRTY_JOB_DONE;
  record_end (self, job, code);
  dirty_log_call_error (code == DIRTY_ERROR_CANCELLED ? G_LOG_LEVEL_DEBUG : G_LOG_LEVEL_MESSAGE,
                        job->app, job->action, job->client_id, worker_pid, 0, code, detail,
                        "call %s.%s failed: %s", job->app, job->action, message);
  if (job->peer != NULL)
    dirty_peer_deliver_error (job->peer, job, error, worker_pid);
}

void
dirty_scheduler_fail_job (DirtyScheduler *self,
                          DirtyJob       *job,
                          DirtyError      code,
                          const char     *message,
                          gint64          worker_pid)
{
  dirty_scheduler_fail_job_full (self, job, code, message, worker_pid, NULL);
}

/* ---- dispatch ---- */

/* Among the apps @worker has ready, the call whose turn it is in the
 * app whose turn is oldest (apps are served in arrival order; within an
 * app, clients take turns) */
static DirtyJob *
oldest_head_for (DirtyScheduler  *self,
                 DirtyWorkerProc *worker)
{
  DirtyJob *best = NULL;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DirtyAppQueue *queue = value;
      DirtyJob *head = dirty_app_queue_peek (queue);

      if (head == NULL || (best != NULL && best->serial < head->serial))
        continue;
      if (dirty_worker_proc_get_app_state (worker, queue->name, NULL) == DIRTY_APP_STATE_READY)
        best = head;
    }
  return best;
}

static void
dirty_scheduler_run (DirtyScheduler  *self,
                     DirtyWorkerProc *worker,
                     DirtyJob        *job)
{
  g_autoptr(DirtyJob) hold = dirty_job_ref (job);

  /* not queued: dirty_scheduler_submit() found it a worker at once */
  if (job->queue != NULL)
    {
      dirty_app_queue_end_turn (job);
      dirty_scheduler_queue_remove (self, job);
    }
  dirty_worker_proc_run_job (worker, job);
  if (job->stats != NULL)
    job->stats->in_flight++;
  dirty_log (G_LOG_LEVEL_DEBUG, job->app, job->action, job->client_id,
             dirty_worker_proc_get_pid (worker), dirty_worker_proc_get_id (worker),
             "call %s.%s sent to worker %u as %" G_GUINT64_FORMAT, job->app, job->action,
             dirty_worker_proc_get_id (worker), job->worker_rid);
}

/* The least-loaded worker with a free slot and @app ready, or NULL */
static DirtyWorkerProc *
free_worker_for (DirtyScheduler *self,
                 const char     *app)
{
  DirtyWorkerProc *best = NULL;

  for (guint i = 0; i < dirty_pool_get_n_slots (self->pool); i++)
    {
      DirtyWorkerProc *worker = dirty_pool_get_slot_worker (self->pool, i);

      if (worker == NULL || dirty_worker_proc_get_free_slots (worker) == 0 ||
          (best != NULL && dirty_worker_proc_get_load (worker) >= dirty_worker_proc_get_load (best)))
        continue;
      if (dirty_worker_proc_get_app_state (worker, app, NULL) == DIRTY_APP_STATE_READY)
        best = worker;
    }
  return best;
}

/* Fills free slots, least-loaded worker first. */
static void
dirty_scheduler_dispatch (DirtyScheduler *self)
{
  while (self->n_queued > 0)
    {
      DirtyWorkerProc *best = NULL;
      DirtyJob *best_job = NULL;

      for (guint i = 0; i < dirty_pool_get_n_slots (self->pool); i++)
        {
          DirtyWorkerProc *worker = dirty_pool_get_slot_worker (self->pool, i);
          DirtyJob *job;

          if (worker == NULL || dirty_worker_proc_get_free_slots (worker) == 0)
            continue;
          if (best != NULL &&
              dirty_worker_proc_get_load (worker) >= dirty_worker_proc_get_load (best))
            continue;
          job = oldest_head_for (self, worker);
          if (job != NULL)
            {
              best = worker;
              best_job = job;
            }
        }
      if (best == NULL)
        return;
      dirty_scheduler_run (self, best, best_job);
    }
}

/* ---- availability ---- */

/* An app no worker can serve, and none will soon: every live worker
 * reported it failed or unavailable and none is starting. @reason gets
 * the workers' message. */
static gboolean
dirty_scheduler_is_unservable (DirtyScheduler  *self,
                               const char      *app,
                               char           **reason)
{
  const char *message = NULL;

  for (guint i = 0; i < dirty_pool_get_n_slots (self->pool); i++)
    {
      DirtyWorkerProc *worker = dirty_pool_get_slot_worker (self->pool, i);
      const char *error_message = NULL;
      DirtyAppState state;

      /* a retiring worker takes no new calls */
      if (worker == NULL || dirty_worker_proc_get_state (worker) != DIRTY_WORKER_PROC_LIVE ||
          dirty_worker_proc_is_retiring (worker))
        continue;
      state = dirty_worker_proc_get_app_state (worker, app, &error_message);
      /* STARTING: its init() may still succeed */
      if (state == DIRTY_APP_STATE_READY || state == DIRTY_APP_STATE_STARTING)
        return FALSE;
      /* MODULE:TypeName:N leaves the app off some workers: they are
       * UNAVAILABLE for it, and say nothing about it */
      if (dirty_worker_proc_has_app (worker, app))
        message = message ? message : error_message;
    }
  if (dirty_pool_is_starting (self->pool))
    return FALSE;
  *reason = g_strdup_printf ("no worker can run app “%s”: %s", app,
                             message ? message : "no worker is running");
  return TRUE;
}

static void
dirty_scheduler_fail_queue (DirtyScheduler *self,
                            DirtyAppQueue  *queue,
                            DirtyError      code,
                            const char     *message)
{
  DirtyJob *job;

  while ((job = dirty_app_queue_peek (queue)) != NULL)
    {
      g_autoptr(DirtyJob) hold = dirty_job_ref (job);

      dirty_scheduler_queue_remove (self, job);
      dirty_scheduler_set_timer (self, job, 0);
      dirty_scheduler_fail_job (self, job, code, message, 0);
    }
}

static void
dirty_scheduler_fail_unservable (DirtyScheduler *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DirtyAppQueue *queue = value;
      g_autofree char *reason = NULL;

      if (queue->n_jobs > 0 && dirty_scheduler_is_unservable (self, queue->name, &reason))
        dirty_scheduler_fail_queue (self, queue, DIRTY_ERROR_NO_WORKER, reason);
    }
}

/* ---- worker events ---- */

/* A CHUNK: forwarded as it is (never decoded), within the job's credit.
 * A worker that overruns the window would make the arbiter buffer without
 * bound: the call fails instead, and the worker is told to stop it. */
static void
dirty_scheduler_forward_chunk (DirtyScheduler  *self,
                               DirtyWorkerProc *worker,
                               DirtyJob        *job,
                               DirtyFrame      *frame)
{
  if (job->state != DIRTY_JOB_RUNNING)
    return;
  if (job->credit == 0)
    {
      dirty_scheduler_fail_job (self, job, DIRTY_ERROR_PROTOCOL,
                                job->streaming ? "the worker sent a chunk beyond the credit window"
                                               : "the worker sent a chunk for a call that is not a stream",
                                dirty_worker_proc_get_pid (worker));
      dirty_worker_proc_cancel_job (worker, job);
      dirty_scheduler_emit_changed (self);
      return;
    }
  job->credit--;
  if (job->peer != NULL)
    dirty_peer_deliver (job->peer, job, frame, FALSE);
}

/* A call the app failed: worth a journal record with its code, which it
 * returns (for STATUS). Error bodies are decoded for that alone (errors
 * are not the hot path); results and chunks never are. */
static int
log_worker_error (DirtyScheduler  *self,
                  DirtyWorkerProc *worker,
                  DirtyJob        *job,
                  DirtyFrame      *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) reported = NULL;
  DirtyLimits limits;

  dirty_limits_init (&limits);
  if (!dirty_frame_decode (frame, &limits, &root, NULL, NULL))
    return DIRTY_ERROR_PROTOCOL;
  reported = dirty_error_from_body (root);
  dirty_log_call_error (reported->code == DIRTY_ERROR_CANCELLED ? G_LOG_LEVEL_DEBUG
                                                                 : G_LOG_LEVEL_MESSAGE,
                        job->app, job->action, job->client_id,
                        dirty_worker_proc_get_pid (worker), dirty_worker_proc_get_id (worker),
                        reported->code, NULL, "call %s.%s failed in the worker: %s",
                        job->app, job->action, reported->message);
  return reported->code;
}

static void
dirty_scheduler_worker_reply_cb (DirtyWorkerProc *worker,
                                 DirtyJob        *job,
                                 DirtyFrame      *frame,
                                 gboolean         terminal,
                                 gpointer         user_data)
{
  DirtyScheduler *self = user_data;

  if (!terminal)
    {
      dirty_scheduler_forward_chunk (self, worker, job, frame);
      return;
    }
  dirty_scheduler_set_timer (self, job, 0);
  job->in_grace = FALSE;
  record_slot_freed (self, job);
  if (job->state == DIRTY_JOB_RUNNING &&
      (frame->header.type == DIRTY_FRAME_ERROR ||
       job->backtrace_state == DIRTY_JOB_BACKTRACE_WAITING) &&
      job->deadline != 0 && g_get_monotonic_time () >= job->deadline)
    {
      /* the worker's deadline timer beat ours: its error (usually
       * "cancelled") is the client's timeout; and a call that ends
       * while its backtrace is taken has overrun its deadline all the
       * same */
      g_autofree char *message = g_strdup_printf ("timed out after %" G_GINT64_FORMAT " ms",
                                                  (job->deadline - job->arrival) / 1000);

      dirty_scheduler_fail_job_full (self, job, DIRTY_ERROR_TIMEOUT, message,
                                     dirty_worker_proc_get_pid (worker), job->backtrace);
    }
  else if (job->state == DIRTY_JOB_RUNNING)
    {
      job->state = DIRTY_JOB_DONE;
      if (frame->header.type == DIRTY_FRAME_ERROR)
        record_end (self, job, log_worker_error (self, worker, job, frame));
      else
        {
          record_end (self, job, -1);
          dirty_log (G_LOG_LEVEL_DEBUG, job->app, job->action, job->client_id,
                     dirty_worker_proc_get_pid (worker), dirty_worker_proc_get_id (worker),
                     "call %s.%s ended: %s", job->app, job->action,
                     dirty_frame_type_to_string (frame->header.type));
        }
      if (job->peer != NULL)
        dirty_peer_deliver (job->peer, job, frame, TRUE);
    }
  else
    dirty_log (G_LOG_LEVEL_DEBUG, job->app, job->action, job->client_id,
               dirty_worker_proc_get_pid (worker), dirty_worker_proc_get_id (worker),
               "dropping the late reply to call %s.%s", job->app, job->action);
  dirty_scheduler_dispatch (self);
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

static void
dirty_scheduler_worker_lost_cb (DirtyPool       *pool,
                                DirtyWorkerProc *worker,
                                DirtyScheduler  *self)
{
  g_autoptr(GPtrArray) jobs = dirty_worker_proc_steal_jobs (worker);
  /* gone after the daemon's stop stopped it (SIGQUIT: SIGKILL; SIGTERM
   * past dirty_graceful_timeout: SIGTERM, then it leaves or is killed):
   * the arbiter's doing, not a crash */
  gboolean stopped = dirty_pool_is_stopping (pool) && dirty_worker_proc_was_stopped (worker);

  for (guint i = 0; i < jobs->len; i++)
    {
      DirtyJob *job = jobs->pdata[i];

      dirty_scheduler_set_timer (self, job, 0);
      job->in_grace = FALSE;
      record_slot_freed (self, job);
      if (job->state == DIRTY_JOB_RUNNING)
        dirty_scheduler_fail_job (self, job,
                                  stopped ? DIRTY_ERROR_SHUTTING_DOWN : DIRTY_ERROR_WORKER_LOST,
                                  stopped ? "the arbiter stopped before the call ended: its "
                                            "worker was stopped"
                                          : "the worker running the call died",
                                  dirty_worker_proc_get_pid (worker));
    }
  /* queued calls stay queued for the other workers or the replacement */
  dirty_scheduler_dispatch (self);
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

static void
dirty_scheduler_worker_changed_cb (DirtyPool       *pool,
                                   DirtyWorkerProc *worker,
                                   DirtyScheduler  *self)
{
  dirty_scheduler_fail_unservable (self);
  dirty_scheduler_dispatch (self);
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

DirtyScheduler *
dirty_scheduler_new (DirtyConfig *config,
                     DirtyPool   *pool)
{
  DirtyScheduler *self = g_object_new (DIRTY_TYPE_SCHEDULER, NULL);
  const char * const *apps = dirty_config_get_apps (config);

  self->config = g_object_ref (config);
  self->pool = g_object_ref (pool);
  for (guint i = 0; apps[i] != NULL; i++)
    {
      DirtyAppQueue *queue = dirty_app_queue_new (apps[i]);

      g_hash_table_insert (self->apps, queue->name, queue);
    }
  self->timer = dirty_timer_new (dirty_scheduler_timer_cb, self);
  dirty_pool_set_reply_func (pool, dirty_scheduler_worker_reply_cb, self);
  g_signal_connect (pool, "worker-backtrace", G_CALLBACK (dirty_scheduler_worker_backtrace_cb), self);
  g_signal_connect (pool, "worker-lost", G_CALLBACK (dirty_scheduler_worker_lost_cb), self);
  g_signal_connect (pool, "worker-changed", G_CALLBACK (dirty_scheduler_worker_changed_cb), self);
  g_signal_connect (pool, "worker-exited", G_CALLBACK (dirty_scheduler_worker_changed_cb), self);
  return self;
}

void
dirty_scheduler_set_changed_func (DirtyScheduler            *self,
                                  DirtySchedulerChangedFunc  func,
                                  gpointer                   user_data)
{
  g_return_if_fail (DIRTY_IS_SCHEDULER (self));

  self->changed_func = func;
  self->changed_data = user_data;
}

/* ---- client calls ---- */

gboolean
dirty_scheduler_submit (DirtyScheduler  *self,
                        DirtyJob        *job,
                        GError         **error)
{
  DirtyAppQueue *queue;
  DirtyWorkerProc *worker = NULL;
  g_autofree char *reason = NULL;

  if (self->draining)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_SHUTTING_DOWN,
                           "the arbiter is shutting down");
      return FALSE;
    }
  queue = g_hash_table_lookup (self->apps, job->app);
  if (queue == NULL)
    {
      dirty_scheduler_set_app_not_found (self, job->app, error);
      return FALSE;
    }
  /* Nothing of the app waits: a free worker with the app ready takes the
   * call at once, without queueing it. Nothing else waits for that
   * worker either (every dispatch leaves no slot free that a queued call
   * could use), so the order is the one the queues would give. */
  if (queue->n_jobs == 0)
    worker = free_worker_for (self, job->app);
  if (worker == NULL && dirty_scheduler_is_unservable (self, job->app, &reason))
    {
      dirty_app_stats_record_end (queue->stats, DIRTY_ERROR_NO_WORKER, 0);
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_NO_WORKER, reason);
      return FALSE;
    }
  if (worker == NULL && queue->n_jobs >= dirty_config_get_queue_size (self->config))
    {
      dirty_app_stats_record_end (queue->stats, DIRTY_ERROR_BUSY, 0);
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_BUSY,
                   "the queue of app “%s” is full (%u calls)", job->app, queue->n_jobs);
      return FALSE;
    }

  job->serial = ++self->next_serial;
  job->stats = g_rc_box_acquire (queue->stats);
  job->deadline = dirty_scheduler_deadline (self, job);
  job->state = DIRTY_JOB_QUEUED;
  if (job->deadline != 0)
    dirty_scheduler_set_timer (self, job, job->deadline);
  dirty_log (G_LOG_LEVEL_DEBUG, job->app, job->action, job->client_id, 0, 0,
             "call %s.%s queued", job->app, job->action);
  if (worker != NULL)
    dirty_scheduler_run (self, worker, job);
  else
    {
      dirty_app_queue_push (queue, job);
      dirty_job_ref (job);
      self->n_queued++;
      dirty_scheduler_dispatch (self);
    }
  dirty_scheduler_emit_changed (self);
  return TRUE;
}

void
dirty_scheduler_cancel (DirtyScheduler *self,
                        DirtyJob       *job)
{
  g_autoptr(DirtyJob) hold = dirty_job_ref (job);

  record_cancel (self, job);
  if (job->state == DIRTY_JOB_QUEUED)
    {
      dirty_scheduler_queue_remove (self, job);
      dirty_scheduler_set_timer (self, job, 0);
      dirty_scheduler_fail_job (self, job, DIRTY_ERROR_CANCELLED, "cancelled by the client", 0);
      dirty_scheduler_emit_changed (self);
      dirty_scheduler_check_idle (self);
    }
  else if (job->state == DIRTY_JOB_RUNNING && job->worker != NULL)
    dirty_worker_proc_cancel_job (job->worker, job);
}

void
dirty_scheduler_credit (DirtyScheduler *self,
                        DirtyJob       *job,
                        guint32         n)
{
  guint32 granted;

  if (!job->streaming || job->state == DIRTY_JOB_DONE)
    return;
  /* a client cannot grant back more than it was sent */
  granted = MIN (n, job->window - job->credit);
  if (granted == 0)
    return;
  job->credit += granted;
  if (job->state == DIRTY_JOB_RUNNING && job->worker != NULL)
    dirty_worker_proc_credit_job (job->worker, job, granted);
}

void
dirty_scheduler_abandon (DirtyScheduler *self,
                         DirtyJob       *job)
{
  g_autoptr(DirtyJob) hold = dirty_job_ref (job);

  record_cancel (self, job);
  if (job->state == DIRTY_JOB_QUEUED)
    {
      dirty_scheduler_queue_remove (self, job);
      dirty_scheduler_set_timer (self, job, 0);
      job->state = DIRTY_JOB_DONE;
    }
  else if (job->state == DIRTY_JOB_RUNNING && job->worker != NULL)
    {
      /* nobody waits for it: stop the work; the slot frees on its reply,
       * or the worker is killed if it runs on past its deadline */
      job->state = DIRTY_JOB_DONE;
      dirty_worker_proc_cancel_job (job->worker, job);
    }
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

void
dirty_scheduler_drain (DirtyScheduler *self)
{
  self->draining = TRUE;
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

void
dirty_scheduler_fail_queued (DirtyScheduler *self,
                             DirtyError      code,
                             const char     *message)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    dirty_scheduler_fail_queue (self, value, code, message);
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

/* Reload: @config's apps get queues; calls queued for an app it no
 * longer lists fail now (the operator removed it; no worker of the new
 * config could run them). Timeouts and queue sizes apply to new calls. */
void
dirty_scheduler_set_config (DirtyScheduler *self,
                            DirtyConfig    *config)
{
  const char * const *apps = dirty_config_get_apps (config);
  GHashTableIter iter;
  gpointer key, value;

  g_set_object (&self->config, config);
  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_strv_contains (apps, key))
      {
        g_autofree char *message = g_strdup_printf ("app “%s” was removed by a reload",
                                                    (const char *) key);

        dirty_scheduler_fail_queue (self, value, DIRTY_ERROR_APP_NOT_FOUND, message);
        g_hash_table_iter_remove (&iter);
      }
  for (guint i = 0; apps[i] != NULL; i++)
    if (!g_hash_table_contains (self->apps, apps[i]))
      {
        DirtyAppQueue *queue = dirty_app_queue_new (apps[i]);

        g_hash_table_insert (self->apps, queue->name, queue);
      }
  dirty_scheduler_emit_changed (self);
  dirty_scheduler_check_idle (self);
}

gboolean
dirty_scheduler_is_settled (DirtyScheduler *self)
{
  g_autoptr(GPtrArray) workers = dirty_pool_list_workers (self->pool);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      gboolean reported = FALSE;

      for (guint i = 0; i < workers->len && !reported; i++)
        reported = dirty_worker_proc_get_state (workers->pdata[i]) == DIRTY_WORKER_PROC_LIVE &&
                   dirty_worker_proc_has_app (workers->pdata[i], key) &&
                   dirty_worker_proc_get_app_state (workers->pdata[i], key, NULL) !=
                     DIRTY_APP_STATE_STARTING;
      if (!reported)
        return FALSE;
    }
  return TRUE;
}

char *
dirty_scheduler_dup_status (DirtyScheduler *self)
{
  g_autoptr(GPtrArray) workers = dirty_pool_list_workers (self->pool);
  guint ready = 0;

  /* retiring workers (after a reload) are not counted against the size */
  for (guint i = 0; i < workers->len; i++)
    if (dirty_worker_proc_get_state (workers->pdata[i]) == DIRTY_WORKER_PROC_LIVE &&
        !dirty_worker_proc_is_retiring (workers->pdata[i]))
      ready++;
  return g_strdup_printf ("%s%u/%u workers ready, %u running, %u queued",
                          self->draining ? "Stopping: " : "",
                          ready, dirty_pool_get_size (self->pool),
                          dirty_scheduler_count_running (self), self->n_queued);
}

/* ---- for STATUS ---- */

DirtyPool *
dirty_scheduler_get_pool (DirtyScheduler *self)
{
  return self->pool;
}

gboolean
dirty_scheduler_is_draining (DirtyScheduler *self)
{
  return self->draining;
}

GPtrArray *
dirty_scheduler_list_apps (DirtyScheduler *self)
{
  return dirty_util_sorted_keys (self->apps);
}

const DirtyAppStats *
dirty_scheduler_get_app_stats (DirtyScheduler *self,
                               const char     *app,
                               guint          *queued)
{
  DirtyAppQueue *queue = g_hash_table_lookup (self->apps, app);

  g_return_val_if_fail (queue != NULL, NULL);
  *queued = queue->n_jobs;
  return queue->stats;
}
