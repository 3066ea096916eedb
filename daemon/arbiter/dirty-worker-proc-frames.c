/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyWorkerProc's side of the worker connection: the frames a worker
 * sends (HELLO and STATUS with its apps' states, replies, BACKTRACE,
 * heartbeats) and a protocol error, which costs the worker its life. */
#include "config.h"

#include <signal.h>

#include "dirty-error-private.h"
#include "dirty-log.h"
#include "dirty-message.h"
#include "dirty-timer.h"
#include "dirty-util.h"
#include "dirty-worker-proc-private.h"

static DirtyAppState
app_state_from_string (const char *state)
{
  if (g_strcmp0 (state, "ready") == 0)
    return DIRTY_APP_STATE_READY;
  /* HELLO comes before init() ends, so heartbeats flow during a long one */
  if (g_strcmp0 (state, "starting") == 0)
    return DIRTY_APP_STATE_STARTING;
  if (g_strcmp0 (state, "failed") == 0)
    return DIRTY_APP_STATE_FAILED;
  return DIRTY_APP_STATE_UNAVAILABLE;
}

static void
log_app_state (DirtyWorkerProc *self,
               const char      *app,
               AppStatus       *status)
{
  static const char *const names[] = {
    [DIRTY_APP_STATE_STARTING] = "is starting",
    [DIRTY_APP_STATE_READY] = "is ready",
    [DIRTY_APP_STATE_FAILED] = "failed to initialise",
    [DIRTY_APP_STATE_UNAVAILABLE] = "is unavailable",
  };
  gboolean bad = status->state == DIRTY_APP_STATE_FAILED ||
                 status->state == DIRTY_APP_STATE_UNAVAILABLE;

  dirty_log (bad ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_INFO, app, NULL, 0, self->pid, self->id,
             "worker %u: app %s %s%s%s", self->id, app, names[status->state],
             bad ? ": " : "", bad ? (status->error ? status->error : "no reason given") : "");
}

/* HELLO and STATUS: {"role":"worker","pid":P,"worker_id":K,"apps":{...}} */
static gboolean
dirty_worker_proc_read_apps (DirtyWorkerProc  *self,
                             DirtyFrame       *frame,
                             GError          **error)
{
  g_autoptr(JsonNode) root = NULL;
  JsonNode *apps_node = NULL;
  JsonObject *apps;
  GHashTableIter iter;
  gpointer key, value;

  if (!dirty_frame_decode (frame, &self->limits, &root, NULL, error))
    return FALSE;
  if (root != NULL && g_strcmp0 (dirty_json_get_string (root, "role"), "worker") == 0)
    apps_node = json_object_get_member (json_node_get_object (root), "apps");
  if (apps_node == NULL || !JSON_NODE_HOLDS_OBJECT (apps_node))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "%s without role \"worker\" and an \"apps\" object",
                   dirty_frame_type_to_string (frame->header.type));
      return FALSE;
    }
  apps = json_node_get_object (apps_node);
  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      AppStatus *status = value;
      JsonNode *node = json_object_get_member (apps, key);
      DirtyAppState state;
      const char *message;

      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
        {
          state = DIRTY_APP_STATE_UNAVAILABLE;
          message = "the worker did not report this app";
        }
      else
        {
          state = app_state_from_string (dirty_json_get_string (node, "state"));
          message = dirty_json_get_string (node, "error");
        }
      if (state == status->state && g_strcmp0 (message, status->error) == 0 &&
          self->state != DIRTY_WORKER_PROC_STARTING)
        continue;
      status->state = state;
      g_free (status->error);
      status->error = g_strdup (message);
      log_app_state (self, key, status);
    }
  return TRUE;
}

static void
dirty_worker_proc_handle_reply (DirtyWorkerProc *self,
                                DirtyFrame      *frame)
{
  guint64 rid = frame->header.id;
  gboolean terminal = frame->header.type != DIRTY_FRAME_CHUNK;
  DirtyJob *job = g_hash_table_lookup (self->in_flight, &rid);

  if (job == NULL)
    {
      /* ids are never reused: this is for a call we no longer track */
      dirty_log (G_LOG_LEVEL_DEBUG, NULL, NULL, rid, self->pid, self->id,
                 "dropping %s for unknown id %" G_GUINT64_FORMAT,
                 dirty_frame_type_to_string (frame->header.type), rid);
      return;
    }
  dirty_job_ref (job);
  if (terminal)
    {
      g_hash_table_remove (self->in_flight, &rid);
      job->worker = NULL;
      self->served++;
      if (frame->header.type == DIRTY_FRAME_ERROR)
        self->errors++;
    }
  if (self->reply_func != NULL)
    self->reply_func (self, job, frame, terminal, self->reply_data);
  dirty_job_unref (job);
}

/* BACKTRACE id W: {"backtrace": TEXT} or {"error": WHY} */
static void
dirty_worker_proc_handle_backtrace (DirtyWorkerProc *self,
                                    DirtyFrame      *frame)
{
  guint64 rid = frame->header.id;
  DirtyJob *job = g_hash_table_lookup (self->in_flight, &rid);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  const char *text = NULL, *why = NULL;

  /* the call ended meanwhile: nobody waits for it */
  if (job == NULL)
    return;
  if (dirty_frame_decode (frame, &self->limits, &root, &attachments, NULL) && root != NULL)
    {
      text = dirty_json_get_string (root, "backtrace");
      why = dirty_json_get_string (root, "error");
    }
  if (text == NULL && why == NULL)
    why = "the worker's answer had neither \"backtrace\" nor \"error\"";
  g_signal_emit (self, dirty_worker_proc_signals[SIGNAL_BACKTRACE], 0, job, text,
                 text != NULL ? NULL : why);
}

static void
dirty_worker_proc_protocol_error (DirtyWorkerProc *self,
                                  GError          *error)
{
  dirty_worker_proc_log (self, G_LOG_LEVEL_WARNING, error->message);
  dirty_worker_proc_signal_group (self, SIGKILL);
  dirty_worker_proc_mark_lost (self, FALSE);
  dirty_connection_fail (self->connection, 0, error);
}

static void
dirty_worker_proc_handle_frame (DirtyWorkerProc *self,
                                DirtyFrame      *frame)
{
  g_autoptr(GError) error = NULL;
  guint8 type = frame->header.type;

  if (self->state == DIRTY_WORKER_PROC_STARTING && type != DIRTY_FRAME_HELLO)
    error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                         "expected HELLO, got %s", dirty_frame_type_to_string (type));
  else if (type == DIRTY_FRAME_HELLO || type == DIRTY_FRAME_STATUS)
    {
      if (type == DIRTY_FRAME_HELLO && self->state != DIRTY_WORKER_PROC_STARTING)
        error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL, "second HELLO");
      else if (dirty_worker_proc_read_apps (self, frame, &error))
        {
          if (type == DIRTY_FRAME_HELLO)
            dirty_worker_proc_log (self, G_LOG_LEVEL_INFO, "said hello");
          self->state = DIRTY_WORKER_PROC_LIVE;
          g_signal_emit (self, dirty_worker_proc_signals[SIGNAL_APPS_CHANGED], 0);
        }
    }
  else if (type == DIRTY_FRAME_HEARTBEAT)
    ;
  else if (type == DIRTY_FRAME_ERROR && frame->header.id == 0)
    {
      g_autoptr(JsonNode) root = NULL;

      if (dirty_frame_decode (frame, &self->limits, &root, NULL, NULL))
        error = dirty_error_from_body (root);
      else
        error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                     "the worker reported a connection error");
    }
  else if (type == DIRTY_FRAME_BACKTRACE && self->state == DIRTY_WORKER_PROC_LIVE)
    dirty_worker_proc_handle_backtrace (self, frame);
  else if (type == DIRTY_FRAME_RESPONSE || type == DIRTY_FRAME_ERROR ||
           type == DIRTY_FRAME_CHUNK || type == DIRTY_FRAME_END)
    dirty_worker_proc_handle_reply (self, frame);
  else
    error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                         "unexpected %s from a worker", dirty_frame_type_to_string (type));

  if (error != NULL)
    dirty_worker_proc_protocol_error (self, g_steal_pointer (&error));
}

void
dirty_worker_proc_frame_cb (DirtyConnection *connection,
                            DirtyFrame      *frame,
                            gpointer         user_data)
{
  DirtyWorkerProc *self = user_data;
  g_autoptr(DirtyWorkerProc) hold = g_object_ref (self);

  if (self->state == DIRTY_WORKER_PROC_LOST || self->state == DIRTY_WORKER_PROC_EXITED)
    return;
  /* any frame shows its main loop turns */
  dirty_timer_arm_at (self->watchdog, g_get_monotonic_time () +
                      DIRTY_WORKER_PROC_HEARTBEAT_TIMEOUT_S * G_USEC_PER_SEC);
  dirty_worker_proc_handle_frame (self, frame);
}
