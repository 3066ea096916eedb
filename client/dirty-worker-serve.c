/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-i18n-private.h"

#include "dirty-worker-private.h"

/* Serving calls: a REQUEST is checked, becomes a DirtyCall and runs, on
 * the thread pool for a %DIRTY_ACTION_SYNC action or on the main loop for
 * a %DIRTY_ACTION_ASYNC one. CANCEL, the request's deadline and shutdown
 * fire its cancellable; CREDIT lets its stream send more chunks. The
 * reply itself is dirty-worker-reply.c's. */

void
dirty_worker_in_flight_free (InFlight *entry)
{
  /* async sends still waiting for credit hold the call: fail them */
  if (entry->call != NULL && dirty_call_get_stream (entry->call) != NULL)
    dirty_call_stream_close (dirty_call_get_stream (entry->call));
  g_clear_object (&entry->call);
  g_free (entry);
}

/* Running calls */

void
dirty_worker_sync_call_thread (gpointer data,
                               gpointer user_data)
{
  DirtyCall *call = data;
  DirtyApp *app = dirty_call_get_app (call);
  GError *error = NULL;

  /* Cancelled while waiting for a thread: do not start it. */
  if (g_cancellable_set_error_if_cancelled (dirty_call_peek_cancellable (call), &error))
    {
      dirty_call_complete_if_pending (call, error);
      g_object_unref (call);
      return;
    }

  dirty_worker_set_call_thread (call, TRUE);
  dirty_app_call (app, call);
  dirty_worker_set_call_thread (call, FALSE);

  if (!dirty_call_is_completed (call) &&
      dirty_call_complete_if_pending (call,
                                      g_error_new (DIRTY_ERROR, DIRTY_ERROR_APP,
                                                   _("Action %s of app %s returned no result"),
                                                   dirty_call_get_action (call),
                                                   dirty_call_get_app_name (call))))
    g_warning ("Action %s of app %s returned without completing its call",
               dirty_call_get_action (call), dirty_call_get_app_name (call));
  g_object_unref (call);
}

static void
dispatch_call (DirtyWorker      *self,
               InFlight         *entry,
               DirtyActionFlags  flags)
{
  entry->wapp->n_active++;
  if (flags & DIRTY_ACTION_ASYNC)
    {
      /* The reply goes through an idle even if the action completes right
       * here, so no reply is sent from inside this frame handler. */
      g_autoptr(DirtyCall) call = g_object_ref (entry->call);
      dirty_app_call (dirty_call_get_app (call), call);
      return;
    }
  dirty_worker_track_call_thread (entry->call);
  /* run by the thread that read it when a pool thread did: no hop */
  if (dirty_worker_pool_claim (self->pool, g_object_ref (entry->call)) ||
      dirty_worker_pool_push (self->pool, entry->call))
    return;
  g_object_unref (entry->call);
  dirty_call_complete_if_pending (entry->call,
                                  g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_SHUTTING_DOWN,
                                                       _("The worker is shutting down")));
}

/* Cancelling calls */

/* The first reason a call is cancelled for is the one its reply gives. */
static void
set_cancel_reason (InFlight     *entry,
                   CancelReason  reason)
{
  if (entry->reason == CANCEL_NONE)
    entry->reason = reason;
}

/* Deadlines: one source for every call. A call notes its deadline; the
 * source wakes the loop at the earliest (next_deadline), looks through
 * the calls in flight for those past theirs, and notes the next. A call
 * that ends in time costs nothing more: its entry is simply gone. (A
 * GSource per call, made, attached and destroyed, cost about 2,300
 * instructions a call.) */

typedef struct {
  GSource      source;
  DirtyWorker *worker;    /* unowned: the worker destroys the source */
} DeadlineSource;

static void
note_deadline (DirtyWorker *self,
               gint64       deadline)
{
  if (self->next_deadline == 0 || deadline < self->next_deadline)
    self->next_deadline = deadline;
}

/* The backtrace first: the call's ERROR for its deadline then carries
 * what it was doing, even when it ends at once on cancellation. */
static void
expire_deadlines (DirtyWorker *self)
{
  g_autoptr(GArray) late = g_array_new (FALSE, FALSE, sizeof (guint64));
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  InFlight *entry;

  /* a call whose thread sent its reply in time is not late: forgetting
   * it frees its entry */
  dirty_worker_forget_sent (self, FALSE);
  self->next_deadline = 0;
  if (self->in_flight == NULL)
    return;
  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    {
      if (entry->deadline == 0)
        continue;
      if (entry->deadline > now)
        note_deadline (self, entry->deadline);
      else
        {
          g_array_append_val (late, entry->id);
          entry->deadline = 0;
        }
    }
  /* after the walk: a cancel may answer a call and free its entry */
  for (guint i = 0; i < late->len; i++)
    dirty_worker_backtrace_then_cancel (self, g_array_index (late, guint64, i));
}

static gboolean
deadline_source_prepare (GSource *source,
                         gint    *timeout)
{
  gint64 next = ((DeadlineSource *) source)->worker->next_deadline;
  gint64 left;

  *timeout = -1;
  if (next == 0)
    return FALSE;
  left = next - g_source_get_time (source);
  if (left <= 0)
    return TRUE;
  /* rounded up: a loop woken before the deadline would spin to it */
  *timeout = (gint) MIN ((left + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
deadline_source_check (GSource *source)
{
  gint64 next = ((DeadlineSource *) source)->worker->next_deadline;

  return next != 0 && g_source_get_time (source) >= next;
}

static gboolean
deadline_source_dispatch (GSource     *source,
                          GSourceFunc  callback,
                          gpointer     user_data)
{
  expire_deadlines (((DeadlineSource *) source)->worker);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs deadline_source_funcs = {
  .prepare = deadline_source_prepare,
  .check = deadline_source_check,
  .dispatch = deadline_source_dispatch,
};

GSource *
dirty_worker_deadline_source_new (DirtyWorker *self)
{
  DeadlineSource *source = (DeadlineSource *) g_source_new (&deadline_source_funcs,
                                                             sizeof (DeadlineSource));

  source->worker = self;
  self->next_deadline = 0;
  g_source_set_static_name (&source->source, "[dirty-worker] deadlines");
  g_source_attach (&source->source, self->context);
  return &source->source;
}

void
dirty_worker_cancel_at_deadline (DirtyWorker *self,
                                 guint64      id)
{
  InFlight *entry = g_hash_table_lookup (self->in_flight, &id);

  if (entry == NULL)
    return;
  set_cancel_reason (entry, CANCEL_BY_DEADLINE);
  g_cancellable_cancel (dirty_call_get_cancellable (entry->call));
}

void
dirty_worker_handle_cancel (DirtyWorker *self,
                            DirtyFrame  *frame)
{
  InFlight *entry = g_hash_table_lookup (self->in_flight, &frame->header.id);

  /* A CANCEL may cross the reply on the wire: nothing to do then. */
  if (entry == NULL)
    return;
  set_cancel_reason (entry, CANCEL_BY_PEER);
  g_cancellable_cancel (dirty_call_get_cancellable (entry->call));
}

void
dirty_worker_cancel_all_calls (DirtyWorker *self)
{
  g_autoptr(GPtrArray) calls = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  /* Cancel outside the iteration: a cancelled handler may complete its
   * call at once, and must not find the table half-walked. */
  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      InFlight *entry = value;

      set_cancel_reason (entry, CANCEL_BY_SHUTDOWN);
      g_ptr_array_add (calls, g_object_ref (entry->call));
    }
  for (guint i = 0; i < calls->len; i++)
    g_cancellable_cancel (dirty_call_get_cancellable (g_ptr_array_index (calls, i)));
}

/* Streams */

void
dirty_worker_handle_credit (DirtyWorker *self,
                            DirtyFrame  *frame)
{
  InFlight *entry = g_hash_table_lookup (self->in_flight, &frame->header.id);
  DirtyCallStream *stream;

  /* a CREDIT may cross the end of its stream */
  if (entry == NULL || (stream = dirty_call_get_stream (entry->call)) == NULL)
    return;
  dirty_call_stream_add_credit (stream, frame->header.aux);
  dirty_worker_stream_pump (self, entry);
}

static void
enable_stream (DirtyWorker            *self,
               InFlight               *entry,
               const DirtyRequestHead *head)
{
  gint64 window = DIRTY_STREAM_DEFAULT_WINDOW;

  if (head->window_kind == DIRTY_JSON_INTEGER && !head->window_overflows)
    window = head->window;

  /* the arbiter checked it; a worker under another host clamps it */
  window = CLAMP (window, 1, DIRTY_STREAM_MAX_WINDOW);
  dirty_call_set_stream (entry->call,
                         dirty_worker_new_call_stream (self, entry, (guint) window));
}

/* Checking a REQUEST */

static const char *
app_not_ready_message (WorkerApp *wapp,
                       char     **to_free)
{
  switch (wapp->state)
    {
    case APP_UNAVAILABLE:
      *to_free = g_strdup_printf (_("App %s could not be loaded: %s"), wapp->name, wapp->error);
      break;
    case APP_FAILED:
      *to_free = g_strdup_printf (_("App %s failed to initialise: %s"), wapp->name, wapp->error);
      break;
    case APP_STARTING:
    case APP_READY:
    default:
      *to_free = g_strdup_printf (_("App %s is still initialising"), wapp->name);
      break;
    }
  return *to_free;
}

/* Finds the ready app and the action a REQUEST names. On failure sends
 * the ERROR itself and returns NULL. */
static WorkerApp *
lookup_action (DirtyWorker            *self,
               guint64                 id,
               const DirtyRequestHead *head,
               DirtyActionFlags       *out_flags)
{
  const char *app_name = head->app_kind == DIRTY_JSON_STRING ? head->app : NULL;
  const char *action = head->action_kind == DIRTY_JSON_STRING ? head->action : NULL;
  g_autofree char *message = NULL;
  WorkerApp *wapp;

  if (app_name == NULL || action == NULL)
    {
      dirty_worker_send_error (self, id, DIRTY_ERROR_PROTOCOL, app_name, action,
                               _("A REQUEST needs string members “app” and “action”"));
      return NULL;
    }
  wapp = g_hash_table_lookup (self->apps_by_name, app_name);
  if (wapp == NULL)
    {
      message = g_strdup_printf (_("Worker %u has no app %s"), self->worker_id, app_name);
      dirty_worker_send_error (self, id, DIRTY_ERROR_APP_NOT_FOUND, app_name, action, message);
      return NULL;
    }
  if (wapp->state != APP_READY)
    {
      dirty_worker_send_error (self, id, DIRTY_ERROR_NO_WORKER, app_name, action,
                               app_not_ready_message (wapp, &message));
      return NULL;
    }
  if (!dirty_app_lookup_action (wapp->app, action, out_flags))
    {
      message = g_strdup_printf (_("App %s has no action “%s”"), app_name, action);
      dirty_worker_send_error (self, id, DIRTY_ERROR_ACTION_NOT_FOUND, app_name, action, message);
      return NULL;
    }
  return wapp;
}

/* Checks a REQUEST's body against its app and action. On failure sends
 * the ERROR itself and returns FALSE. */
static gboolean
validate_request (DirtyWorker             *self,
                  guint64                  id,
                  const DirtyRequestHead  *head,
                  gboolean                 streaming,
                  WorkerApp              **out_wapp,
                  DirtyActionFlags        *out_flags)
{
  const char *action = head->action;
  g_autofree char *message = NULL;
  WorkerApp *wapp = lookup_action (self, id, head, out_flags);

  if (wapp == NULL)
    return FALSE;
  if (!dirty_request_head_args_valid (head))
    {
      dirty_worker_send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, wapp->name, action,
                               _("“args” must be an array"));
      return FALSE;
    }
  if (!dirty_request_head_kwargs_valid (head))
    {
      dirty_worker_send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, wapp->name, action,
                               _("“kwargs” must be an object"));
      return FALSE;
    }
  if ((*out_flags & DIRTY_ACTION_STREAM) && !streaming)
    {
      message = g_strdup_printf (_("Action %s of app %s streams its result: read it as a stream "
                                   "(dirty_client_stream())"),
                                 action, wapp->name);
      dirty_worker_send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, wapp->name, action,
                               message);
      return FALSE;
    }
  *out_wapp = wapp;
  return TRUE;
}

/* Handling a REQUEST */

/* Makes the call of a valid REQUEST, records it in flight and runs it. */
static void
start_call (DirtyWorker            *self,
            DirtyFrame             *frame,
            const DirtyRequestHead *head,
            JsonNode               *args,
            JsonNode               *kwargs,
            GPtrArray              *attachments,
            WorkerApp              *wapp,
            DirtyActionFlags        flags)
{
  guint32 timeout_ms = frame->header.aux;
  gint64 deadline = 0;
  InFlight *entry;

  if (timeout_ms > 0)
    deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  entry = g_new0 (InFlight, 1);
  entry->id = frame->header.id;
  entry->wapp = wapp;
  /* args and kwargs: NULL when absent (validate_request () let nothing
   * else through) */
  entry->call = dirty_worker_new_call (self, entry->id, wapp, head->action,
                                       args ? json_node_get_array (args) : NULL,
                                       kwargs ? json_node_get_object (kwargs) : NULL,
                                       attachments, deadline);
  if (frame->header.flags & DIRTY_FRAME_FLAG_STREAM)
    enable_stream (self, entry, head);
  g_hash_table_insert (self->in_flight, &entry->id, entry);
  entry->deadline = deadline;
  if (deadline != 0)
    note_deadline (self, deadline);
  dispatch_call (self, entry, flags);
}

void
dirty_worker_handle_request (DirtyWorker *self,
                             DirtyFrame  *frame)
{
  guint64 id = frame->header.id;
  gboolean streaming = (frame->header.flags & DIRTY_FRAME_FLAG_STREAM) != 0;
  g_auto(DirtyRequestHead) head = { 0 };
  g_autoptr(JsonNode) args = NULL;
  g_autoptr(JsonNode) kwargs = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  WorkerApp *wapp = NULL;
  DirtyActionFlags flags = DIRTY_ACTION_SYNC;

  if (id == 0 || g_hash_table_contains (self->in_flight, &id))
    {
      g_autoptr(GError) proto = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                             id == 0 ? _("REQUEST with id 0")
                                                     : _("REQUEST id %llu is already in flight"),
                                             (unsigned long long) id);
      dirty_connection_fail (self->connection, 0, proto);
      return;
    }
  if (self->shutting_down)
    {
      dirty_worker_send_error (self, id, DIRTY_ERROR_SHUTTING_DOWN, NULL, NULL,
                               _("The worker is shutting down"));
      return;
    }
  /* keep the fds of the arguments' memfds: an app that returns an
   * argument unchanged sends the same memfd back, without a copy */
  if (!dirty_frame_decode_request (frame, dirty_connection_get_limits (self->connection),
                                   &head, &args, &kwargs, &attachments, &error))
    {
      dirty_worker_send_error (self, id, DIRTY_ERROR_PROTOCOL, NULL, NULL, error->message);
      return;
    }
  if (!validate_request (self, id, &head, streaming, &wapp, &flags))
    return;
  start_call (self, frame, &head, args, kwargs, attachments, wapp, flags);
}
