/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <gio/gunixsocketaddress.h>

#include "dirty-client.h"
#include "dirty-connection.h"
#include "dirty-error.h"
#include "dirty-io-private.h"
#include "dirty-message.h"
#include "dirty-reply-private.h"
#include "dirty-request-private.h"
#include "dirty-socket.h"

/**
 * DirtyClient:
 *
 * A connection to a dirty-arbiter, to call actions of the apps its
 * workers run.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(DirtyClient) client = dirty_client_new_sync (NULL, NULL, &error);
 * g_autoptr(JsonArray) args = json_array_new ();
 * g_autoptr(JsonNode) result = NULL;
 *
 * json_array_add_string_element (args, "hello");
 * result = dirty_client_execute_sync (client, "echo:DirtyEchoApp", "echo",
 *                                     args, NULL, NULL, &error);
 * ```
 *
 * A client is thread-safe: its connection lives on a private I/O thread
 * shared by every client in the process (as GDBus does), and its methods
 * may be called from any thread. Asynchronous callbacks run in the
 * thread-default main context of the thread that started the call.
 *
 * Many calls may be in flight at once on one client; each reply is matched
 * to its call by id. Cancelling a call's #GCancellable tells the arbiter
 * to stop it and ends the call at once with %G_IO_ERROR_CANCELLED. When
 * the connection is lost, every call in flight fails with
 * %DIRTY_ERROR_CONNECTION and the next call connects again.
 *
 * Since: 0.1
 */

/* How long a connect() may be retried while the arbiter's listen backlog is
 * full (a unix socket then fails with EAGAIN rather than blocking). */
#define CONNECT_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS   20
/* The client's own deadline is the call's timeout plus this: the arbiter's
 * TIMEOUT error normally arrives first and says more. */
#define SAFETY_MARGIN_MS   1000

typedef struct _ClientIo ClientIo;

typedef enum {
  CALL_NEW,       /* not yet seen by the I/O thread, or in hand there */
  CALL_WAITING,   /* in io->waiting, for a connection */
  CALL_SENT,      /* in io->pending, by id */
  CALL_DONE,      /* its task has returned */
} CallState;

/* One call in flight. Created on the caller's thread; from then on only
 * the I/O thread reads or writes it, so completing it is race-free: the
 * first of reply, error, cancel, timeout or disconnect to run there wins,
 * and the task is returned once. */
typedef struct {
  gatomicrefcount  ref_count;
  ClientIo        *io;          /* valid until DONE: the task holds the client */
  GTask           *task;        /* NULL once DONE */
  GCancellable    *cancellable;
  gulong           cancelled_id;
  DirtyFrame      *frame;       /* the REQUEST with id 0; NULL: connect only */
  guint32          timeout_ms;  /* effective, as sent; 0 = the arbiter's */
  CallState        state;
  guint64          id;
  GSource         *timer;
} Call;

/* The connection state of one client, owned by the I/O thread. It is
 * referenced by the client (then by its shutdown idle) and by the sources
 * of a connect attempt. Its connection never outlives it: the shutdown
 * closes and releases it first. */
struct _ClientIo {
  gatomicrefcount  ref_count;
  char            *socket_path;
  DirtyConnection *connection;
  GSocket         *connecting;
  GSource         *connect_source;
  gint64           connect_deadline;
  GQueue           waiting;       /* of Call (a reference each) */
  GHashTable      *pending;       /* &call->id -> Call (a reference each) */
  guint64          next_id;
  guint32          max_body;      /* from the arbiter's HELLO */
  guint            max_attachments;
  guint            max_in_flight;
  gboolean         flush_scheduled;
};

struct _DirtyClient
{
  GObject   parent_instance;

  char     *socket_path;
  guint     timeout_ms;   /* atomic */
  ClientIo *io;
};

static void dirty_client_initable_iface_init (GInitableIface *iface);
static void dirty_client_async_initable_iface_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DirtyClient, dirty_client, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      dirty_client_initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE,
                                                      dirty_client_async_initable_iface_init))

enum {
  PROP_0,
  PROP_SOCKET_PATH,
  PROP_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void client_io_flush (ClientIo *io);
static void client_io_schedule_flush (ClientIo *io);

/* ---- Calls ---- */

static Call *
call_ref (Call *call)
{
  g_atomic_ref_count_inc (&call->ref_count);
  return call;
}

static void
call_unref (Call *call)
{
  if (!g_atomic_ref_count_dec (&call->ref_count))
    return;
  /* a call is only dropped once DONE, when its task has returned */
  g_warn_if_fail (call->task == NULL);
  g_clear_object (&call->task);
  g_clear_object (&call->cancellable);
  g_clear_pointer (&call->frame, dirty_frame_unref);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_unref)

static Call *
call_new (ClientIo     *io,
          GTask        *task,
          GCancellable *cancellable,
          DirtyFrame   *frame,
          guint32       timeout_ms)
{
  Call *call = g_new0 (Call, 1);

  g_atomic_ref_count_init (&call->ref_count);
  call->io = io;
  call->task = task;
  call->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  call->frame = frame;
  call->timeout_ms = timeout_ms;
  call->state = CALL_NEW;
  return call;
}

/* Ends @call with @reply or @error (both transfer full; neither for a
 * connect-only call). Only on the I/O thread; a no-op once DONE. */
static void
call_finish (Call       *call,
             DirtyReply *reply,
             GError     *error)
{
  g_autoptr(Call) hold = call_ref (call);
  g_autoptr(DirtyReply) owned_reply = reply;
  g_autoptr(GError) owned_error = error;
  g_autoptr(GTask) task = NULL;

  if (call->state == CALL_DONE)
    return;

  if (call->state == CALL_WAITING && g_queue_remove (&call->io->waiting, call))
    call_unref (call);
  else if (call->state == CALL_SENT)
    {
      g_hash_table_remove (call->io->pending, &call->id);
      /* a slot is free for a call held back by the in-flight limit */
      if (!g_queue_is_empty (&call->io->waiting))
        client_io_schedule_flush (call->io);
    }
  call->state = CALL_DONE;
  call->io = NULL;

  if (call->timer != NULL)
    {
      g_source_destroy (call->timer);
      g_clear_pointer (&call->timer, g_source_unref);
    }
  /* only blocks while a cancel handler runs in another thread, and that
   * handler merely queues an idle here */
  if (call->cancelled_id != 0)
    g_cancellable_disconnect (call->cancellable, call->cancelled_id);
  call->cancelled_id = 0;

  task = g_steal_pointer (&call->task);
  if (owned_error != NULL)
    g_task_return_error (task, g_steal_pointer (&owned_error));
  else if (call->frame == NULL)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_pointer (task, g_steal_pointer (&owned_reply), g_object_unref);
}

static void
client_io_send_cancel (ClientIo *io,
                       guint64   id)
{
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(DirtyConnection) connection = NULL;

  if (io->connection == NULL)
    return;
  /* a reference: sending may close the connection under us */
  connection = g_object_ref (io->connection);
  frame = dirty_frame_new_empty (DIRTY_FRAME_CANCEL, id, 0);
  dirty_connection_send (connection, frame);
}

static gboolean
call_cancel_io_cb (gpointer data)
{
  Call *call = data;

  /* NEW: the submit, still to come, sees the cancellable and ends it */
  if (call->state == CALL_NEW || call->state == CALL_DONE)
    return G_SOURCE_REMOVE;

  if (call->state == CALL_SENT)
    client_io_send_cancel (call->io, call->id);
  call_finish (call, NULL, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "Operation was cancelled"));
  return G_SOURCE_REMOVE;
}

/* Runs in whichever thread cancels: hand over to the I/O thread. */
static void
call_cancelled_cb (GCancellable *cancellable,
                   gpointer      data)
{
  dirty_io_schedule (call_cancel_io_cb, call_ref (data), (GDestroyNotify) call_unref);
}

static gboolean
call_timeout_io_cb (gpointer data)
{
  Call *call = data;
  guint32 timeout_ms = call->timeout_ms;

  if (call->state == CALL_SENT)
    client_io_send_cancel (call->io, call->id);
  call_finish (call, NULL,
               g_error_new (DIRTY_ERROR, DIRTY_ERROR_TIMEOUT,
                            "No reply from the arbiter within the call's timeout (%u ms)",
                            timeout_ms));
  return G_SOURCE_REMOVE;
}

static gboolean
call_submit_io_cb (gpointer data)
{
  Call *call = data;
  ClientIo *io = call->io;

  if (g_cancellable_is_cancelled (call->cancellable))
    {
      call_finish (call, NULL, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                    "Operation was cancelled"));
      return G_SOURCE_REMOVE;
    }

  if (call->frame != NULL && call->timeout_ms > 0)
    {
      guint64 ms = (guint64) call->timeout_ms + SAFETY_MARGIN_MS;

      call->timer = dirty_io_add_timeout ((guint) MIN (ms, G_MAXUINT),
                                          call_timeout_io_cb, call_ref (call),
                                          (GDestroyNotify) call_unref);
    }
  call->state = CALL_WAITING;
  g_queue_push_tail (&io->waiting, call_ref (call));
  client_io_flush (io);
  return G_SOURCE_REMOVE;
}

/* Takes @task; called on the caller's thread. */
static void
dirty_client_start_call (DirtyClient  *self,
                         GTask        *task,
                         GCancellable *cancellable,
                         DirtyFrame   *frame,
                         guint32       timeout_ms)
{
  Call *call = call_new (self->io, task, cancellable, frame, timeout_ms);

  /* If already cancelled, the handler runs now; the submit then sees it. */
  if (cancellable != NULL)
    call->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (call_cancelled_cb),
                                                call_ref (call), (GDestroyNotify) call_unref);
  dirty_io_schedule (call_submit_io_cb, call, (GDestroyNotify) call_unref);
}

/* ---- The connection, on the I/O thread ---- */

static ClientIo *
client_io_ref (ClientIo *io)
{
  g_atomic_ref_count_inc (&io->ref_count);
  return io;
}

static void
client_io_unref (ClientIo *io)
{
  if (!g_atomic_ref_count_dec (&io->ref_count))
    return;
  g_warn_if_fail (io->connection == NULL && io->connecting == NULL);
  g_warn_if_fail (g_queue_is_empty (&io->waiting));
  g_hash_table_unref (io->pending);
  g_free (io->socket_path);
  g_free (io);
}

static ClientIo *
client_io_new (const char *socket_path)
{
  ClientIo *io = g_new0 (ClientIo, 1);

  g_atomic_ref_count_init (&io->ref_count);
  io->socket_path = g_strdup (socket_path);
  g_queue_init (&io->waiting);
  io->pending = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                       (GDestroyNotify) call_unref);
  io->next_id = 1;
  io->max_body = DIRTY_DEFAULT_MAX_BODY;
  io->max_attachments = DIRTY_DEFAULT_MAX_ATTACHMENTS;
  io->max_in_flight = DIRTY_DEFAULT_MAX_IN_FLIGHT;
  return io;
}

static void
client_io_fail_waiting (ClientIo     *io,
                        const GError *error)
{
  Call *call;

  while ((call = g_queue_pop_head (&io->waiting)) != NULL)
    {
      g_autoptr(Call) owned = call;

      call->state = CALL_NEW;
      call_finish (call, NULL, g_error_copy (error));
    }
}

static void
client_io_fail_pending (ClientIo     *io,
                        const GError *error)
{
  g_autoptr(GPtrArray) calls = g_ptr_array_new_with_free_func ((GDestroyNotify) call_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, io->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (calls, call_ref (value));
  g_hash_table_remove_all (io->pending);

  for (guint i = 0; i < calls->len; i++)
    call_finish (g_ptr_array_index (calls, i), NULL, g_error_copy (error));
}

/* Forgets the connection. Safe inside one of its own callbacks: it holds
 * a reference to itself while it calls us, and once finalized it calls
 * nothing more, so it never sees a freed ClientIo. */
static void
client_io_drop_connection (ClientIo *io)
{
  g_autoptr(DirtyConnection) connection = g_steal_pointer (&io->connection);

  if (connection != NULL)
    dirty_connection_close (connection);
}

static GError *
client_io_body_error (DirtyConnection *connection,
                      DirtyFrame      *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  GError *error = NULL;

  if (!dirty_frame_decode (frame, dirty_connection_get_limits (connection),
                           &root, &attachments, &error))
    return error;
  if (root == NULL)
    return g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                                "The arbiter sent an ERROR frame without a body");
  return dirty_error_from_body (root);
}

static void
client_io_handle_response (ClientIo        *io,
                           DirtyConnection *connection,
                           Call            *call,
                           DirtyFrame      *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  GError *error = NULL;
  DirtyReply *reply = NULL;

  if (dirty_frame_decode (frame, dirty_connection_get_limits (connection),
                          &root, &attachments, &error))
    reply = dirty_reply_new_from_body (root, attachments, &error);
  call_finish (call, reply, error);
}

static void
client_io_handle_hello (ClientIo        *io,
                        DirtyConnection *connection,
                        DirtyFrame      *frame)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  gint64 value;

  if (!dirty_frame_decode (frame, dirty_connection_get_limits (connection),
                           &root, &attachments, &error) || root == NULL)
    return;
  /* the arbiter's limits, so that one oversized request fails alone
   * instead of getting the whole connection closed as a protocol error */
  value = dirty_json_get_int (root, "max_body", io->max_body);
  if (value > 0 && value <= G_MAXUINT32)
    io->max_body = (guint32) value;
  value = dirty_json_get_int (root, "max_attachments", io->max_attachments);
  if (value > 0 && value <= G_MAXUINT16)
    io->max_attachments = (guint) value;
  value = dirty_json_get_int (root, "max_in_flight", io->max_in_flight);
  if (value > 0 && value <= G_MAXUINT32)
    io->max_in_flight = (guint) value;
}

static void
client_io_frame_cb (DirtyConnection *connection,
                    DirtyFrame      *frame,
                    gpointer         user_data)
{
  ClientIo *io = user_data;
  guint64 id = frame->header.id;
  Call *call;

  if (connection != io->connection)
    return;

  switch (frame->header.type)
    {
    case DIRTY_FRAME_HELLO:
      client_io_handle_hello (io, connection, frame);
      return;

    case DIRTY_FRAME_ERROR:
      if (id == 0)
        {
          g_autoptr(GError) error = client_io_body_error (connection, frame);

          g_debug ("The arbiter at %s closes the connection: %s",
                   io->socket_path, error->message);
          client_io_drop_connection (io);
          client_io_fail_pending (io, error);
          return;
        }
      G_GNUC_FALLTHROUGH;
    case DIRTY_FRAME_RESPONSE:
      call = g_hash_table_lookup (io->pending, &id);
      /* a late reply for a call that has already ended is dropped: ids are
       * never reused, so it cannot reach another call */
      if (call == NULL)
        {
          g_debug ("Dropping %s for unknown request %" G_GUINT64_FORMAT,
                   dirty_frame_type_to_string (frame->header.type), id);
          return;
        }
      if (frame->header.type == DIRTY_FRAME_RESPONSE)
        client_io_handle_response (io, connection, call, frame);
      else
        call_finish (call, NULL, client_io_body_error (connection, frame));
      return;

    default:
      g_debug ("Ignoring %s frame (id %" G_GUINT64_FORMAT ") from the arbiter",
               dirty_frame_type_to_string (frame->header.type), id);
      return;
    }
}

static void
client_io_closed_cb (DirtyConnection *connection,
                     const GError    *error,
                     gpointer         user_data)
{
  ClientIo *io = user_data;

  if (connection == io->connection)
    {
      g_autoptr(GError) lost = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                            "Lost the connection to dirty-arbiter at %s: %s",
                                            io->socket_path,
                                            error ? error->message : "closed by the arbiter");

      client_io_drop_connection (io);
      client_io_fail_pending (io, lost);
    }
}

static void
client_io_stop_connecting (ClientIo *io)
{
  if (io->connect_source != NULL)
    {
      g_source_destroy (io->connect_source);
      g_clear_pointer (&io->connect_source, g_source_unref);
    }
  if (io->connecting != NULL)
    g_socket_close (io->connecting, NULL);
  g_clear_object (&io->connecting);
}

static void
client_io_connect_failed (ClientIo     *io,
                          const GError *reason)
{
  g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_CONNECTION,
                                         "Could not connect to dirty-arbiter at %s: %s",
                                         io->socket_path, reason->message);

  client_io_stop_connecting (io);
  client_io_fail_waiting (io, error);
}

static void
client_io_connected (ClientIo *io)
{
  g_autoptr(GSocket) socket = g_steal_pointer (&io->connecting);

  client_io_stop_connecting (io);
  io->connection = dirty_connection_new (socket, NULL);
  dirty_connection_start (io->connection, dirty_io_get_context (),
                          client_io_frame_cb, client_io_closed_cb, io);
  client_io_flush (io);
}

static void client_io_try_connect (ClientIo *io);

static gboolean
client_io_connect_ready_cb (GSocket      *socket,
                            GIOCondition  condition,
                            gpointer      user_data)
{
  ClientIo *io = user_data;
  g_autoptr(GError) error = NULL;

  if (g_socket_check_connect_result (socket, &error))
    client_io_connected (io);
  else
    client_io_connect_failed (io, error);
  return G_SOURCE_REMOVE;
}

static gboolean
client_io_connect_retry_cb (gpointer user_data)
{
  ClientIo *io = user_data;

  g_clear_pointer (&io->connect_source, g_source_unref);
  client_io_try_connect (io);
  return G_SOURCE_REMOVE;
}

static void
client_io_try_connect (ClientIo *io)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (io->socket_path);
  g_autoptr(GError) error = NULL;

  if (g_socket_connect (io->connecting, address, NULL, &error))
    {
      client_io_connected (io);
      return;
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    {
      io->connect_source = g_socket_create_source (io->connecting, G_IO_OUT, NULL);
      g_source_set_callback (io->connect_source, G_SOURCE_FUNC (client_io_connect_ready_cb),
                             client_io_ref (io), (GDestroyNotify) client_io_unref);
      g_source_attach (io->connect_source, dirty_io_get_context ());
      return;
    }

  /* a unix socket whose listen backlog is full fails with EAGAIN instead
   * of blocking: a busy arbiter, not a missing one */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
      g_get_monotonic_time () < io->connect_deadline)
    {
      io->connect_source = dirty_io_add_timeout (CONNECT_RETRY_MS, client_io_connect_retry_cb,
                                                 client_io_ref (io),
                                                 (GDestroyNotify) client_io_unref);
      return;
    }

  client_io_connect_failed (io, error);
}

static void
client_io_connect (ClientIo *io)
{
  g_autoptr(GError) error = NULL;

  io->connecting = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, &error);
  if (io->connecting == NULL)
    {
      client_io_connect_failed (io, error);
      return;
    }
  g_socket_set_blocking (io->connecting, FALSE);
  io->connect_deadline = g_get_monotonic_time () + CONNECT_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  client_io_try_connect (io);
}

static void
client_io_send_call (ClientIo *io,
                     Call     *call)
{
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(DirtyConnection) connection = g_object_ref (io->connection);
  gsize body_size = g_bytes_get_size (call->frame->body);

  /* the arbiter would close the whole connection on an oversized frame,
   * failing every other call in flight: refuse it here, alone */
  if (body_size > io->max_body || call->frame->header.n_attachments > io->max_attachments)
    {
      call_finish (call, NULL,
                   g_error_new (DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                "The request is too large (%" G_GSIZE_FORMAT " bytes in %u "
                                "attachments; the arbiter takes at most %u bytes and %u "
                                "attachments)", body_size,
                                (guint) call->frame->header.n_attachments,
                                (guint) io->max_body, io->max_attachments));
      return;
    }

  call->id = io->next_id++;
  call->state = CALL_SENT;
  g_hash_table_insert (io->pending, &call->id, call_ref (call));
  frame = dirty_frame_copy_with_id (call->frame, call->id, call->timeout_ms);
  dirty_connection_send (connection, frame);
}

/* Sends what waits for the connection, connecting first if needed. At
 * most the arbiter's max_in_flight calls are sent at once; the others wait
 * here, in order, rather than be refused as "busy". */
static void
client_io_flush (ClientIo *io)
{
  Call *call;

  while (io->connection != NULL &&
         g_hash_table_size (io->pending) < io->max_in_flight &&
         (call = g_queue_pop_head (&io->waiting)) != NULL)
    {
      g_autoptr(Call) owned = call;

      call->state = CALL_NEW;
      if (call->frame == NULL)
        call_finish (call, NULL, NULL);
      else
        client_io_send_call (io, call);
    }

  if (!g_queue_is_empty (&io->waiting) && io->connection == NULL && io->connecting == NULL)
    client_io_connect (io);
}

static gboolean
client_io_flush_cb (gpointer user_data)
{
  ClientIo *io = user_data;

  io->flush_scheduled = FALSE;
  client_io_flush (io);
  return G_SOURCE_REMOVE;
}

/* From an idle: call_finish () must not send (and maybe finish) other
 * calls under its caller's feet. */
static void
client_io_schedule_flush (ClientIo *io)
{
  if (io->flush_scheduled)
    return;
  io->flush_scheduled = TRUE;
  dirty_io_schedule (client_io_flush_cb, client_io_ref (io), (GDestroyNotify) client_io_unref);
}

static gboolean
client_io_shutdown_cb (gpointer user_data)
{
  ClientIo *io = user_data;

  client_io_stop_connecting (io);
  client_io_drop_connection (io);
  return G_SOURCE_REMOVE;
}

/* ---- DirtyClient ---- */

static void
dirty_client_constructed (GObject *object)
{
  DirtyClient *self = DIRTY_CLIENT (object);

  G_OBJECT_CLASS (dirty_client_parent_class)->constructed (object);

  if (self->socket_path == NULL)
    self->socket_path = dirty_socket_default_path ();
  self->io = client_io_new (self->socket_path);
}

static void
dirty_client_finalize (GObject *object)
{
  DirtyClient *self = DIRTY_CLIENT (object);

  /* no call is in flight (each holds the client): only the connection
   * is left, and it belongs to the I/O thread */
  if (self->io != NULL)
    dirty_io_schedule (client_io_shutdown_cb, g_steal_pointer (&self->io),
                       (GDestroyNotify) client_io_unref);
  g_free (self->socket_path);

  G_OBJECT_CLASS (dirty_client_parent_class)->finalize (object);
}

static void
dirty_client_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  DirtyClient *self = DIRTY_CLIENT (object);

  switch (prop_id)
    {
    case PROP_SOCKET_PATH:
      g_value_set_string (value, self->socket_path);
      break;
    case PROP_TIMEOUT:
      g_value_set_uint (value, dirty_client_get_timeout (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dirty_client_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  DirtyClient *self = DIRTY_CLIENT (object);

  switch (prop_id)
    {
    case PROP_SOCKET_PATH:
      g_free (self->socket_path);
      self->socket_path = g_value_dup_string (value);
      break;
    case PROP_TIMEOUT:
      dirty_client_set_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dirty_client_class_init (DirtyClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = dirty_client_constructed;
  object_class->finalize = dirty_client_finalize;
  object_class->get_property = dirty_client_get_property;
  object_class->set_property = dirty_client_set_property;

  /**
   * DirtyClient:socket-path:
   *
   * The path of the arbiter's unix socket. %NULL at construction means
   * the default: `$DIRTY_ARBITER_SOCKET`, else
   * `$XDG_RUNTIME_DIR/dirty-arbiter.sock`, or `/run/dirty-arbiter.sock`
   * for root.
   *
   * Since: 0.1
   */
  properties[PROP_SOCKET_PATH] =
    g_param_spec_string ("socket-path", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DirtyClient:timeout:
   *
   * The timeout in milliseconds for requests that set none of their own
   * ([property@Dirty.Request:timeout]), or 0 for the arbiter's default.
   * The arbiter caps it by its `dirty_timeout`.
   *
   * Since: 0.1
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_uint ("timeout", NULL, NULL, 0, G_MAXUINT32, 0,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                       G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dirty_client_init (DirtyClient *self)
{
}

/* Runs an async operation to its end on a private main context, so that
 * no other source of the caller's thread runs meanwhile. The operation
 * honours its GCancellable, so this ends when it is cancelled. */
typedef struct {
  GMainContext *context;
  GAsyncResult *result;
} SyncWait;

static void
sync_wait_begin (SyncWait *wait)
{
  wait->context = g_main_context_new ();
  wait->result = NULL;
  g_main_context_push_thread_default (wait->context);
}

static void
sync_wait_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  SyncWait *wait = user_data;

  wait->result = g_object_ref (result);
}

static GAsyncResult *
sync_wait_end (SyncWait *wait)
{
  while (wait->result == NULL)
    g_main_context_iteration (wait->context, TRUE);
  g_main_context_pop_thread_default (wait->context);
  g_main_context_unref (wait->context);
  return wait->result;
}

static void
dirty_client_init_async (GAsyncInitable      *initable,
                         int                  io_priority,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  DirtyClient *self = DIRTY_CLIENT (initable);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, dirty_client_init_async);
  g_task_set_priority (task, io_priority);
  dirty_client_start_call (self, task, cancellable, NULL, 0);
}

static gboolean
dirty_client_init_finish (GAsyncInitable  *initable,
                          GAsyncResult    *result,
                          GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, initable), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
dirty_client_initable_init (GInitable     *initable,
                            GCancellable  *cancellable,
                            GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  SyncWait wait;

  sync_wait_begin (&wait);
  dirty_client_init_async (G_ASYNC_INITABLE (initable), G_PRIORITY_DEFAULT,
                           cancellable, sync_wait_cb, &wait);
  result = sync_wait_end (&wait);
  return dirty_client_init_finish (G_ASYNC_INITABLE (initable), result, error);
}

static void
dirty_client_initable_iface_init (GInitableIface *iface)
{
  iface->init = dirty_client_initable_init;
}

static void
dirty_client_async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = dirty_client_init_async;
  iface->init_finish = dirty_client_init_finish;
}

/**
 * dirty_client_new_sync:
 * @socket_path: (nullable): the arbiter's socket, or %NULL for the
 *   default (see [property@Dirty.Client:socket-path])
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to the arbiter at @socket_path, blocking the calling thread
 * until the connection is made or fails.
 *
 * Returns: (transfer full): a new #DirtyClient, or %NULL with @error set
 *   (%DIRTY_ERROR_CONNECTION, naming the path and the reason)
 *
 * Since: 0.1
 */
DirtyClient *
dirty_client_new_sync (const char    *socket_path,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (DIRTY_TYPE_CLIENT, cancellable, error,
                         "socket-path", socket_path, NULL);
}

/**
 * dirty_client_new:
 * @socket_path: (nullable): the arbiter's socket, or %NULL for the
 *   default (see [property@Dirty.Client:socket-path])
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when connected
 * @user_data: data for @callback
 *
 * Connects to the arbiter at @socket_path. Call
 * [func@Dirty.Client.new_finish] from @callback to get the client.
 *
 * Since: 0.1
 */
void
dirty_client_new (const char          *socket_path,
                  GCancellable        *cancellable,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data)
{
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  g_async_initable_new_async (DIRTY_TYPE_CLIENT, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data, "socket-path", socket_path, NULL);
}

/**
 * dirty_client_new_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Dirty.Client.new].
 *
 * Returns: (transfer full): a new #DirtyClient, or %NULL with @error set
 *
 * Since: 0.1
 */
DirtyClient *
dirty_client_new_finish (GAsyncResult  *result,
                         GError       **error)
{
  g_autoptr(GObject) source = NULL;

  g_return_val_if_fail (G_IS_TASK (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  source = g_async_result_get_source_object (result);
  return DIRTY_CLIENT (g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error));
}

static GMutex default_lock;
static DirtyClient *default_client;

/**
 * dirty_client_get_default:
 * @error: return location for a #GError
 *
 * Gets the process's shared client for the default socket
 * (`$DIRTY_ARBITER_SOCKET` or the per-user or system default), connecting
 * it on first use. Later calls return the same client, which reconnects
 * by itself if the connection is lost.
 *
 * Returns: (transfer full): the default client, or %NULL with @error set
 *   if the first connection fails
 *
 * Since: 0.1
 */
DirtyClient *
dirty_client_get_default (GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&default_lock);
  DirtyClient *client;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (default_client != NULL)
    return g_object_ref (default_client);
  client = dirty_client_new_sync (NULL, NULL, error);
  if (client != NULL)
    default_client = g_object_ref (client);
  return client;
}

/**
 * dirty_client_get_socket_path:
 * @self: a #DirtyClient
 *
 * Returns: (transfer none): the path of the arbiter's socket
 *
 * Since: 0.1
 */
const char *
dirty_client_get_socket_path (DirtyClient *self)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  return self->socket_path;
}

/**
 * dirty_client_get_timeout:
 * @self: a #DirtyClient
 *
 * Returns: the default timeout of calls in milliseconds; 0 means the
 *   arbiter's
 *
 * Since: 0.1
 */
guint
dirty_client_get_timeout (DirtyClient *self)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), 0);
  return (guint) g_atomic_int_get (&self->timeout_ms);
}

/**
 * dirty_client_set_timeout:
 * @self: a #DirtyClient
 * @timeout_ms: a timeout in milliseconds, or 0 for the arbiter's default
 *
 * Sets [property@Dirty.Client:timeout]: the timeout of calls whose request
 * sets none. It applies to calls started afterwards.
 *
 * Since: 0.1
 */
void
dirty_client_set_timeout (DirtyClient *self,
                          guint        timeout_ms)
{
  g_return_if_fail (DIRTY_IS_CLIENT (self));

  if ((guint) g_atomic_int_exchange (&self->timeout_ms, timeout_ms) != timeout_ms)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMEOUT]);
}

/**
 * dirty_client_send:
 * @self: a #DirtyClient
 * @request: the request to send
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called with the reply
 * @user_data: data for @callback
 *
 * Sends @request and calls @callback, in the thread-default main context
 * of the calling thread, once its reply arrives or the call fails. Call
 * [method@Dirty.Client.send_finish] there to get the reply.
 *
 * The request is copied as it is now; it may be changed or sent again
 * right away. Cancelling @cancellable tells the arbiter to stop the call
 * and ends it with %G_IO_ERROR_CANCELLED.
 *
 * Since: 0.1
 */
void
dirty_client_send (DirtyClient         *self,
                   DirtyRequest        *request,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data)
{
  GTask *task;
  guint timeout_ms;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (DIRTY_IS_REQUEST (request));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dirty_client_send);
  timeout_ms = dirty_request_get_timeout (request);
  if (timeout_ms == 0)
    timeout_ms = dirty_client_get_timeout (self);
  dirty_client_start_call (self, task, cancellable,
                           dirty_request_encode (request, 0, timeout_ms), timeout_ms);
}

/**
 * dirty_client_send_finish:
 * @self: a #DirtyClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Client.send].
 *
 * Returns: (transfer full): the reply, or %NULL with @error set: a
 *   %DIRTY_ERROR (the arbiter's, the app's, or %DIRTY_ERROR_CONNECTION
 *   and %DIRTY_ERROR_TIMEOUT from the client itself) or
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.1
 */
DirtyReply *
dirty_client_send_finish (DirtyClient   *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == dirty_client_send, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dirty_client_send_sync:
 * @self: a #DirtyClient
 * @request: the request to send
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends @request and blocks the calling thread until its reply arrives,
 * the call fails, or @cancellable is cancelled (from another thread).
 *
 * Returns: (transfer full): the reply, or %NULL with @error set (see
 *   [method@Dirty.Client.send_finish])
 *
 * Since: 0.1
 */
DirtyReply *
dirty_client_send_sync (DirtyClient   *self,
                        DirtyRequest  *request,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  SyncWait wait;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (DIRTY_IS_REQUEST (request), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sync_wait_begin (&wait);
  dirty_client_send (self, request, cancellable, sync_wait_cb, &wait);
  result = sync_wait_end (&wait);
  return dirty_client_send_finish (self, result, error);
}

static void
dirty_client_execute_send_cb (GObject      *source,
                              GAsyncResult *result,
                              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyReply) reply = NULL;

  reply = dirty_client_send_finish (DIRTY_CLIENT (source), result, &error);
  if (reply == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    /* the reply dies here, so its result is the caller's alone */
    g_task_return_pointer (task, json_node_ref (dirty_reply_get_result (reply)),
                           (GDestroyNotify) json_node_unref);
}

/**
 * dirty_client_execute:
 * @self: a #DirtyClient
 * @app: the app, as `MODULE:TypeName`
 * @action: the action
 * @args: (nullable): the positional arguments
 * @kwargs: (nullable): the keyword arguments
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called with the result
 * @user_data: data for @callback
 *
 * Calls @action of @app with JSON arguments: a shortcut for
 * [method@Dirty.Client.send] when no bytes travel. Call
 * [method@Dirty.Client.execute_finish] from @callback to get the result.
 * The client's [property@Dirty.Client:timeout] applies.
 *
 * Since: 0.1
 */
void
dirty_client_execute (DirtyClient         *self,
                      const char          *app,
                      const char          *action,
                      JsonArray           *args,
                      JsonObject          *kwargs,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(DirtyRequest) request = NULL;
  GTask *task;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (app != NULL && *app != '\0');
  g_return_if_fail (action != NULL && *action != '\0');
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dirty_client_execute);
  request = dirty_request_new (app, action);
  dirty_request_set_args (request, args);
  dirty_request_set_kwargs (request, kwargs);
  dirty_client_send (self, request, cancellable, dirty_client_execute_send_cb, task);
}

/**
 * dirty_client_execute_finish:
 * @self: a #DirtyClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Client.execute].
 *
 * Returns: (transfer full): the action's result (a JSON `null` node when
 *   it returned nothing), or %NULL with @error set (see
 *   [method@Dirty.Client.send_finish])
 *
 * Since: 0.1
 */
JsonNode *
dirty_client_execute_finish (DirtyClient   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == dirty_client_execute, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dirty_client_execute_sync:
 * @self: a #DirtyClient
 * @app: the app, as `MODULE:TypeName`
 * @action: the action
 * @args: (nullable): the positional arguments
 * @kwargs: (nullable): the keyword arguments
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Calls @action of @app with JSON arguments and blocks the calling thread
 * until it ends: a shortcut for [method@Dirty.Client.send_sync] when no
 * bytes travel.
 *
 * Returns: (transfer full): the action's result (a JSON `null` node when
 *   it returned nothing), or %NULL with @error set (see
 *   [method@Dirty.Client.send_finish])
 *
 * Since: 0.1
 */
JsonNode *
dirty_client_execute_sync (DirtyClient   *self,
                           const char    *app,
                           const char    *action,
                           JsonArray     *args,
                           JsonObject    *kwargs,
                           GCancellable  *cancellable,
                           GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  SyncWait wait;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (app != NULL && *app != '\0', NULL);
  g_return_val_if_fail (action != NULL && *action != '\0', NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sync_wait_begin (&wait);
  dirty_client_execute (self, app, action, args, kwargs, cancellable, sync_wait_cb, &wait);
  result = sync_wait_end (&wait);
  return dirty_client_execute_finish (self, result, error);
}
