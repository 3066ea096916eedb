/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <unistd.h>

#include "dirty-connection.h"
#include "dirty-json-scan.h"
#include "dirty-log.h"
#include "dirty-message.h"
#include "dirty-arbiter.h"
#include "dirty-peer.h"
#include "dirty-scheduler.h"
#include "dirty-status.h"

struct _DirtyPeer
{
  GObject          parent_instance;

  guint64          serial;      /* for logs */
  DirtyConnection *connection;
  DirtyScheduler  *scheduler;
  GHashTable      *jobs;        /* &job->client_id -> DirtyJob (ref): the calls it waits for */
  gboolean         closed;
  DirtyArbiter    *arbiter;     /* (unowned) (nullable): for MANAGE; outlives its peers */
  GByteArray      *held;        /* (nullable): frames kept for the next arbiter */
  GArray          *held_fds;    /* (nullable): their fds, in order */
};

enum {
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];
/* For STATUS: connections open now (peers not yet finalized) and ever.
 * The arbiter drops a peer as soon as it closes. */
static guint n_open_peers;
static guint64 n_peers_total;

G_DEFINE_TYPE (DirtyPeer, dirty_peer, G_TYPE_OBJECT)

static void
dirty_peer_dispose (GObject *object)
{
  DirtyPeer *self = DIRTY_PEER (object);

  self->closed = TRUE;
  if (self->connection != NULL)
    dirty_connection_close (self->connection);
  g_clear_object (&self->connection);
  g_clear_object (&self->scheduler);
  G_OBJECT_CLASS (dirty_peer_parent_class)->dispose (object);
}

static void
dirty_peer_finalize (GObject *object)
{
  DirtyPeer *self = DIRTY_PEER (object);

  g_hash_table_unref (self->jobs);
  g_clear_pointer (&self->held, g_byte_array_unref);
  if (self->held_fds != NULL)
    {
      for (guint i = 0; i < self->held_fds->len; i++)
        close (g_array_index (self->held_fds, int, i));
      g_clear_pointer (&self->held_fds, g_array_unref);
    }
  n_open_peers--;
  G_OBJECT_CLASS (dirty_peer_parent_class)->finalize (object);
}

static void
dirty_peer_class_init (DirtyPeerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_peer_dispose;
  object_class->finalize = dirty_peer_finalize;

  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dirty_peer_init (DirtyPeer *self)
{
  self->jobs = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                      (GDestroyNotify) dirty_job_unref);
  n_open_peers++;
  n_peers_total++;
}

DirtyPeer *
dirty_peer_new (GSocket           *socket,
                DirtyScheduler    *scheduler,
                const DirtyLimits *limits,
                guint64            serial)
{
  DirtyPeer *self = g_object_new (DIRTY_TYPE_PEER, NULL);

  self->serial = serial;
  self->connection = dirty_connection_new (socket, limits);
  self->scheduler = g_object_ref (scheduler);
  return self;
}

guint64
dirty_peer_get_serial (DirtyPeer *self)
{
  return self->serial;
}

/* ---- replies ---- */

void
dirty_peer_deliver (DirtyPeer  *self,
                    DirtyJob   *job,
                    DirtyFrame *frame,
                    gboolean    terminal)
{
  g_return_if_fail (job->peer == self);

  /* only the id changes; the body is sent as it came, never decoded */
  dirty_connection_send_with_id (self->connection, frame, job->client_id, frame->header.aux);
  if (terminal)
    {
      job->peer = NULL;
      g_hash_table_remove (self->jobs, &job->client_id);
      /* holding and nothing left to finish: no CREDIT or CANCEL needed */
      if (self->held != NULL && g_hash_table_size (self->jobs) == 0)
        dirty_connection_pause_reading (self->connection);
    }
}

void
dirty_peer_deliver_error (DirtyPeer    *self,
                          DirtyJob     *job,
                          const GError *error,
                          gint64        worker_pid)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_error (job->client_id, error, job->app,
                                                       job->action, worker_pid);

  dirty_peer_deliver (self, job, frame, TRUE);
}

static void
dirty_peer_send_error (DirtyPeer  *self,
                       guint64     id,
                       DirtyError  code,
                       const char *message)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_error_literal (id, code, message);

  dirty_connection_send (self->connection, frame);
}

static void
dirty_peer_protocol_error (DirtyPeer  *self,
                           const char *message)
{
  g_autoptr(GError) error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL, message);

  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "client %" G_GUINT64_FORMAT ": %s", self->serial, message);
  dirty_connection_fail (self->connection, 0, error);
}

/* ---- requests ---- */

static void
dirty_peer_handle_hello (DirtyPeer  *self)
{
  const DirtyLimits *limits = dirty_connection_get_limits (self->connection);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(DirtyFrame) frame = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "role");
  json_builder_add_string_value (builder, "arbiter");
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, DIRTY_PROTOCOL_VERSION);
  json_builder_set_member_name (builder, "max_body");
  json_builder_add_int_value (builder, limits->max_body);
  json_builder_set_member_name (builder, "max_depth");
  json_builder_add_int_value (builder, limits->max_depth);
  json_builder_set_member_name (builder, "max_attachments");
  json_builder_add_int_value (builder, limits->max_attachments);
  json_builder_set_member_name (builder, "max_in_flight");
  json_builder_add_int_value (builder, limits->max_in_flight);
  json_builder_set_member_name (builder, "max_fds");
  json_builder_add_int_value (builder, limits->max_fds);
  json_builder_set_member_name (builder, "max_fd_payload");
  json_builder_add_int_value (builder, (gint64) MIN (limits->max_fd_payload, G_MAXINT64));
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  frame = dirty_frame_encode (DIRTY_FRAME_HELLO, 0, 0, 0, root, NULL);
  dirty_connection_send (self->connection, frame);
}

/* Reads "app" and "action" and checks the shape of args/kwargs; the body
 * itself is forwarded unchanged. One pass over the text, no JSON tree:
 * the worker parses the body in full. Returns FALSE after sending an
 * error. */
static gboolean
dirty_peer_read_request (DirtyPeer   *self,
                         DirtyFrame  *frame,
                         char       **app,
                         char       **action,
                         guint32     *window)
{
  const DirtyLimits *limits = dirty_connection_get_limits (self->connection);
  g_auto(DirtyRequestHead) head = { 0 };
  g_autoptr(GError) error = NULL;
  gsize length;
  const char *json = dirty_frame_get_json (frame, &length);

  /* the table only: fds are forwarded untouched, the worker maps them */
  if ((length > 0 && !dirty_request_head_scan (json, length, limits->max_depth, &head, &error)) ||
      !dirty_frame_check_attachments (frame, limits, &error))
    {
      dirty_peer_protocol_error (self, error->message);
      return FALSE;
    }
  if (head.app_kind != DIRTY_JSON_STRING || head.action_kind != DIRTY_JSON_STRING)
    {
      dirty_peer_send_error (self, frame->header.id, DIRTY_ERROR_INVALID_ARGUMENT,
                             "a request needs \"app\" and \"action\" strings");
      return FALSE;
    }
  if (!dirty_request_head_args_valid (&head))
    {
      dirty_peer_send_error (self, frame->header.id, DIRTY_ERROR_INVALID_ARGUMENT,
                             "\"args\" must be an array");
      return FALSE;
    }
  if (!dirty_request_head_kwargs_valid (&head))
    {
      dirty_peer_send_error (self, frame->header.id, DIRTY_ERROR_INVALID_ARGUMENT,
                             "\"kwargs\" must be an object");
      return FALSE;
    }
  *window = 0;
  if (frame->header.flags & DIRTY_FRAME_FLAG_STREAM)
    {
      gint64 asked = DIRTY_STREAM_DEFAULT_WINDOW;

      if (head.window_kind != DIRTY_JSON_ABSENT &&
          (head.window_kind != DIRTY_JSON_INTEGER || head.window_overflows ||
           (asked = head.window) < 1 || asked > DIRTY_STREAM_MAX_WINDOW))
        {
          dirty_peer_send_error (self, frame->header.id, DIRTY_ERROR_INVALID_ARGUMENT,
                                 "\"window\" must be an integer from 1 to 4096");
          return FALSE;
        }
      *window = (guint32) asked;
    }
  *app = g_steal_pointer (&head.app);
  *action = g_steal_pointer (&head.action);
  return TRUE;
}

static void
dirty_peer_handle_request (DirtyPeer  *self,
                           DirtyFrame *frame)
{
  guint64 id = frame->header.id;
  const DirtyLimits *limits = dirty_connection_get_limits (self->connection);
  g_autofree char *app = NULL;
  g_autofree char *action = NULL;
  g_autoptr(DirtyJob) job = NULL;
  g_autoptr(GError) error = NULL;
  guint32 window = 0;

  if (id == 0)
    {
      dirty_peer_protocol_error (self, "REQUEST with id 0");
      return;
    }
  if (g_hash_table_contains (self->jobs, &id))
    {
      dirty_peer_protocol_error (self, "REQUEST id already in flight");
      return;
    }
  if (g_hash_table_size (self->jobs) >= limits->max_in_flight)
    {
      dirty_peer_send_error (self, id, DIRTY_ERROR_BUSY,
                             "too many calls in flight on this connection");
      return;
    }
  if (!dirty_peer_read_request (self, frame, &app, &action, &window))
    return;

  job = dirty_job_new (self, id, g_steal_pointer (&app), g_steal_pointer (&action), frame);
  job->streaming = window > 0;
  job->window = job->credit = window;
  /* in the map first: the scheduler may answer through it */
  g_hash_table_insert (self->jobs, &job->client_id, dirty_job_ref (job));
  if (!dirty_scheduler_submit (self->scheduler, job, &error))
    {
      dirty_log_call_error (error->code == DIRTY_ERROR_BUSY ? G_LOG_LEVEL_INFO : G_LOG_LEVEL_MESSAGE,
                            job->app, job->action, id, 0, 0, error->code, NULL,
                            "call %s.%s refused: %s", job->app, job->action, error->message);
      job->state = DIRTY_JOB_DONE;
      dirty_peer_deliver_error (self, job, error, 0);
    }
}

/* A request over the limits (max_body, max_attachments, max_fd_payload)
 * fails alone, its bytes skipped: a client that sent it before it had the
 * limits (their HELLO answer comes after its first call goes out), or
 * that never asks for them, keeps its connection and its other calls.
 * Anything else over them is a protocol error. */
static gboolean
dirty_peer_on_oversized (DirtyConnection        *connection,
                         const DirtyFrameHeader *header,
                         const GError           *error,
                         gpointer                user_data)
{
  DirtyPeer *self = user_data;
  guint64 id = header->id;

  if (header->type != DIRTY_FRAME_REQUEST || id == 0 ||
      g_hash_table_contains (self->jobs, &id))
    return FALSE;
  dirty_log_call_error (G_LOG_LEVEL_MESSAGE, NULL, NULL, id, 0, 0,
                        DIRTY_ERROR_INVALID_ARGUMENT, NULL,
                        "client %" G_GUINT64_FORMAT ": request refused: %s",
                        self->serial, error->message);
  dirty_peer_send_error (self, id, DIRTY_ERROR_INVALID_ARGUMENT, error->message);
  return TRUE;
}

static void
dirty_peer_handle_cancel (DirtyPeer  *self,
                          DirtyFrame *frame)
{
  DirtyJob *job = g_hash_table_lookup (self->jobs, &frame->header.id);

  /* a CANCEL that crossed the reply is normal */
  if (job != NULL)
    dirty_scheduler_cancel (self->scheduler, job);
}

static void
dirty_peer_handle_credit (DirtyPeer  *self,
                          DirtyFrame *frame)
{
  DirtyJob *job = g_hash_table_lookup (self->jobs, &frame->header.id);

  /* a CREDIT that crossed the end of its stream is normal */
  if (job != NULL)
    dirty_scheduler_credit (self->scheduler, job, frame->header.aux);
}

/* STATUS with an id: a client asks for the arbiter's status
 * (docs/protocol.md, "STATUS"). Id 0 is a worker's app-state report,
 * which has no business on a client connection: ignored. */
static void
dirty_peer_handle_status (DirtyPeer  *self,
                          DirtyFrame *frame)
{
  g_autoptr(JsonObject) body = json_object_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(DirtyFrame) reply = NULL;

  if (frame->header.id == 0)
    return;
  json_object_set_member (body, "result",
                          dirty_status_collect (self->scheduler, n_open_peers, n_peers_total));
  root = json_node_init_object (json_node_alloc (), body);
  reply = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, frame->header.id, 0, root, NULL);
  dirty_connection_send (self->connection, reply);
}

/* ---- MANAGE ---- */

/* Control verbs change the service for everyone: only root and the
 * arbiter's own user (SO_PEERCRED, checked per message, not trusted
 * from the body). */
static gboolean
dirty_peer_may_manage (DirtyPeer  *self,
                       uid_t      *out_uid)
{
  GSocket *socket = dirty_connection_get_socket (self->connection);
  g_autoptr(GCredentials) credentials = g_socket_get_credentials (socket, NULL);
  uid_t uid;

  *out_uid = (uid_t) -1;
  if (credentials == NULL || (uid = g_credentials_get_unix_user (credentials, NULL)) == (uid_t) -1)
    return FALSE;
  *out_uid = uid;
  return uid == 0 || uid == geteuid ();
}

static void
dirty_peer_send_result (DirtyPeer  *self,
                        guint64     id,
                        const char *member,
                        gint64      value)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(DirtyFrame) reply = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "result");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, member);
  json_builder_add_int_value (builder, value);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  reply = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, id, 0, root, NULL);
  dirty_connection_send (self->connection, reply);
}

/* {"verb": "workers", "delta": INT}: a non-zero integer */
static gboolean
read_delta (JsonNode *root,
            int      *out)
{
  JsonNode *node = json_object_get_member (json_node_get_object (root), "delta");
  gint64 delta;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  delta = json_node_get_int (node);
  if (delta == 0 || delta < -DIRTY_CONFIG_MAX_WORKERS || delta > DIRTY_CONFIG_MAX_WORKERS)
    return FALSE;
  *out = (int) delta;
  return TRUE;
}

static void
dirty_peer_run_verb (DirtyPeer  *self,
                     guint64     id,
                     JsonNode   *root)
{
  const char *verb = dirty_json_get_string (root, "verb");
  g_autoptr(GError) error = NULL;
  guint total = 0;
  int delta = 0;

  if (g_strcmp0 (verb, "reload") == 0)
    {
      if (dirty_arbiter_reload (self->arbiter, &error))
        dirty_peer_send_result (self, id, "generation", dirty_arbiter_get_generation (self->arbiter));
    }
  else if (g_strcmp0 (verb, "workers") == 0)
    {
      if (!read_delta (root, &delta))
        error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                             "\"delta\", the workers to add (or to remove, when below 0), "
                             "must be a non-zero integer from %d to %d",
                             -DIRTY_CONFIG_MAX_WORKERS, DIRTY_CONFIG_MAX_WORKERS);
      else if (dirty_arbiter_scale (self->arbiter, delta, &total, &error))
        dirty_peer_send_result (self, id, "workers", total);
    }
  else
    error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                         "unknown MANAGE verb “%s” (known: reload, workers)",
                         verb ? verb : "(none)");
  if (error != NULL)
    dirty_peer_send_error (self, id, error->code, error->message);
}

/* MANAGE (docs/protocol.md): reload, or add/remove workers. */
static void
dirty_peer_handle_manage (DirtyPeer  *self,
                          DirtyFrame *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  uid_t uid;

  if (frame->header.id == 0)
    {
      dirty_peer_protocol_error (self, "MANAGE with id 0");
      return;
    }
  if (!dirty_frame_decode (frame, dirty_connection_get_limits (self->connection),
                           &root, NULL, &error))
    {
      dirty_peer_protocol_error (self, error->message);
      return;
    }
  if (!dirty_peer_may_manage (self, &uid))
    {
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                 "client %" G_GUINT64_FORMAT " (uid %d): MANAGE refused", self->serial, (int) uid);
      dirty_peer_send_error (self, frame->header.id, DIRTY_ERROR_PERMISSION_DENIED,
                             "only root and the arbiter's own user may manage it");
      return;
    }
  if (root == NULL || self->arbiter == NULL)
    {
      dirty_peer_send_error (self, frame->header.id, DIRTY_ERROR_INVALID_ARGUMENT,
                             "MANAGE needs a body with a \"verb\"");
      return;
    }
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0, "client %" G_GUINT64_FORMAT
             " (uid %d): MANAGE %s", self->serial, (int) uid,
             dirty_json_get_string (root, "verb") ? dirty_json_get_string (root, "verb") : "?");
  dirty_peer_run_verb (self, frame->header.id, root);
}

/* While holding: CANCEL and CREDIT of calls still running here (and
 * HEARTBEAT) are acted on; every other frame is kept as it came, in
 * order, for the next arbiter. TRUE if @frame was kept. */
static gboolean
dirty_peer_hold_frame (DirtyPeer  *self,
                       DirtyFrame *frame)
{
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  guint8 type = frame->header.type;
  gsize max_held = dirty_connection_get_limits (self->connection)->max_body;

  if (type == DIRTY_FRAME_HEARTBEAT ||
      ((type == DIRTY_FRAME_CANCEL || type == DIRTY_FRAME_CREDIT) &&
       g_hash_table_contains (self->jobs, &frame->header.id)))
    return FALSE;
  /* its memfds go with the saved bytes, in order (the frame's own,
   * unchecked again: the next arbiter checks them as it parses) */
  for (guint i = 0; frame->fds != NULL && i < dirty_fd_set_get_length (frame->fds); i++)
    {
      int fd = dirty_fd_set_steal (frame->fds, i);

      g_array_append_val (self->held_fds, fd);
    }
  dirty_frame_header_write (&frame->header, header);
  g_byte_array_append (self->held, header, sizeof header);
  g_byte_array_append (self->held, g_bytes_get_data (frame->body, NULL),
                       g_bytes_get_size (frame->body));
  /* the rest can wait in the kernel's buffer */
  if (self->held->len > max_held ||
      self->held_fds->len >= dirty_connection_get_limits (self->connection)->max_fds)
    dirty_connection_pause_reading (self->connection);
  return TRUE;
}

static void
dirty_peer_frame_cb (DirtyConnection *connection,
                     DirtyFrame      *frame,
                     gpointer         user_data)
{
  DirtyPeer *self = user_data;
  g_autoptr(DirtyPeer) hold = g_object_ref (self);

  if (self->held != NULL && dirty_peer_hold_frame (self, frame))
    return;
  switch (frame->header.type)
    {
    case DIRTY_FRAME_HELLO:
      dirty_peer_handle_hello (self);
      break;
    case DIRTY_FRAME_REQUEST:
      dirty_peer_handle_request (self, frame);
      break;
    case DIRTY_FRAME_CANCEL:
      dirty_peer_handle_cancel (self, frame);
      break;
    case DIRTY_FRAME_CREDIT:
      dirty_peer_handle_credit (self, frame);
      break;
    case DIRTY_FRAME_HEARTBEAT:
      break;
    case DIRTY_FRAME_STATUS:
      dirty_peer_handle_status (self, frame);
      break;
    case DIRTY_FRAME_MANAGE:
      dirty_peer_handle_manage (self, frame);
      break;
    default:
      {
        g_autofree char *message = g_strdup_printf ("unexpected %s from a client",
                                                    dirty_frame_type_to_string (frame->header.type));
        dirty_peer_protocol_error (self, message);
      }
    }
}

static void dirty_peer_abandon_jobs (DirtyPeer *self);

static void
dirty_peer_closed_cb (DirtyConnection *connection,
                      const GError    *error,
                      gpointer         user_data)
{
  DirtyPeer *self = user_data;
  g_autoptr(DirtyPeer) hold = NULL;

  if (self->closed)
    return;
  self->closed = TRUE;
  hold = g_object_ref (self);
  if (error != NULL)
    dirty_log (G_LOG_LEVEL_DEBUG, NULL, NULL, 0, 0, 0, "client %" G_GUINT64_FORMAT ": %s",
               self->serial, error->message);
  dirty_peer_abandon_jobs (self);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
}

/* nobody waits for these any more */
static void
dirty_peer_abandon_jobs (DirtyPeer *self)
{
  g_autoptr(GPtrArray) jobs = NULL;
  GHashTableIter iter;
  gpointer value;

  jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_job_unref);
  g_hash_table_iter_init (&iter, self->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DirtyJob *job = value;

      job->peer = NULL;
      g_ptr_array_add (jobs, job);
      g_hash_table_iter_steal (&iter);
    }
  for (guint i = 0; i < jobs->len; i++)
    dirty_scheduler_abandon (self->scheduler, jobs->pdata[i]);
}

void
dirty_peer_start (DirtyPeer *self)
{
  dirty_connection_set_oversized_func (self->connection, dirty_peer_on_oversized);
  dirty_connection_start (self->connection, g_main_context_get_thread_default (),
                          dirty_peer_frame_cb, dirty_peer_closed_cb, self);
}

gsize
dirty_peer_get_queued_bytes (DirtyPeer *self)
{
  if (self->closed)
    return 0;
  return dirty_connection_get_queued_bytes (self->connection);
}

void
dirty_peer_set_arbiter (DirtyPeer    *self,
                        DirtyArbiter *arbiter)
{
  g_return_if_fail (DIRTY_IS_PEER (self));

  self->arbiter = arbiter;
}

/* ---- restart handoff ---- */

void
dirty_peer_hold (DirtyPeer *self)
{
  g_return_if_fail (DIRTY_IS_PEER (self));

  if (self->held == NULL)
    self->held = g_byte_array_new ();
  if (self->held_fds == NULL)
    self->held_fds = g_array_new (FALSE, FALSE, sizeof (int));
  if (g_hash_table_size (self->jobs) == 0)
    dirty_connection_pause_reading (self->connection);
}

int
dirty_peer_detach (DirtyPeer  *self,
                   GByteArray *unread,
                   GArray     *fds)
{
  int fd;

  g_return_val_if_fail (DIRTY_IS_PEER (self), -1);

  if (self->closed)
    return -1;
  if (self->held != NULL)
    g_byte_array_append (unread, self->held->data, self->held->len);
  fd = dirty_connection_detach_with_fds (self->connection, unread, fds);
  if (fd < 0)
    return -1;
  /* the kept frames' fds come first: so do their bytes */
  if (self->held_fds != NULL && self->held_fds->len > 0)
    {
      g_array_prepend_vals (fds, self->held_fds->data, self->held_fds->len);
      g_array_set_size (self->held_fds, 0);
    }
  /* calls still here (none after a graceful drain) are cancelled;
   * "closed" is not emitted: the caller drops the peer itself */
  self->closed = TRUE;
  dirty_peer_abandon_jobs (self);
  return fd;
}

void
dirty_peer_set_unread (DirtyPeer *self,
                       GBytes    *unread,
                       GArray    *fds)
{
  g_return_if_fail (DIRTY_IS_PEER (self));

  dirty_connection_set_unread_with_fds (self->connection, unread, fds);
}
