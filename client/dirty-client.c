/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-client.h"
#include "dirty-client-io-private.h"
#include "dirty-client-private.h"
#include "dirty-error.h"
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
 * thread-default main context of the thread that started the call. A
 * blocking call on a connected client sends its request and takes its
 * reply on the calling thread, without a detour through the I/O thread;
 * an asynchronous call sends its request from the calling thread too,
 * and the I/O thread reads its reply.
 *
 * Many calls may be in flight at once on one client; each reply is matched
 * to its call by id. Cancelling a call's #GCancellable tells the arbiter
 * to stop it and ends the call at once with %G_IO_ERROR_CANCELLED. When
 * the connection is lost, every call in flight fails with
 * %DIRTY_ERROR_CONNECTION and the next call connects again.
 *
 * Since: 0.1
 */

struct _DirtyClient
{
  GObject   parent_instance;

  char     *socket_path;
  guint     timeout_ms;   /* atomic */
  DirtyClientIo *io;
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

/* ---- DirtyClient ---- */

static void
dirty_client_constructed (GObject *object)
{
  DirtyClient *self = DIRTY_CLIENT (object);

  G_OBJECT_CLASS (dirty_client_parent_class)->constructed (object);

  if (self->socket_path == NULL)
    self->socket_path = dirty_socket_default_path ();
  self->io = dirty_client_io_new (self->socket_path);
}

static void
dirty_client_finalize (GObject *object)
{
  DirtyClient *self = DIRTY_CLIENT (object);

  /* no call is in flight (each holds the client): only the connection
   * is left, and it belongs to the I/O thread */
  if (self->io != NULL)
    dirty_client_io_shutdown (g_steal_pointer (&self->io));
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

/* One private context per thread, kept between sync calls: a new
 * GMainContext per call costs an eventfd and its close. A sync call made
 * while another waits on the same thread (from a callback of its own
 * context) gets a fresh one. */
static GPrivate sync_context_key = G_PRIVATE_INIT ((GDestroyNotify) g_main_context_unref);

void
dirty_sync_wait_begin (DirtySyncWait *wait)
{
  wait->context = g_private_get (&sync_context_key);
  if (wait->context != NULL)
    g_private_set (&sync_context_key, NULL);
  else
    wait->context = g_main_context_new ();
  wait->result = NULL;
  g_main_context_push_thread_default (wait->context);
}

void
dirty_sync_wait_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  DirtySyncWait *wait = user_data;

  wait->result = g_object_ref (result);
}

GAsyncResult *
dirty_sync_wait_end (DirtySyncWait *wait)
{
  while (wait->result == NULL)
    g_main_context_iteration (wait->context, TRUE);
  g_main_context_pop_thread_default (wait->context);
  if (g_private_get (&sync_context_key) == NULL)
    g_private_set (&sync_context_key, wait->context);
  else
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
  g_autoptr(DirtyClientCall) call = NULL;

  g_task_set_source_tag (task, dirty_client_init_async);
  g_task_set_priority (task, io_priority);
  call = dirty_client_io_start_call (self->io, task, cancellable, NULL, 0, NULL);
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
  DirtySyncWait wait;

  dirty_sync_wait_begin (&wait);
  dirty_client_init_async (G_ASYNC_INITABLE (initable), G_PRIORITY_DEFAULT,
                           cancellable, dirty_sync_wait_cb, &wait);
  result = dirty_sync_wait_end (&wait);
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
 * [ctor@Dirty.Client.new_finish] from @callback to get the client.
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

/* Starts the call of a REQUEST @frame (taken); its task is a
 * dirty_client_send () one, whichever way it was built. */
static void
send_frame (DirtyClient         *self,
            DirtyFrame          *frame,
            guint32              timeout_ms,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(DirtyClientCall) call = NULL;
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, dirty_client_send);
  call = dirty_client_io_start_call (self->io, task, cancellable, frame, timeout_ms, NULL);
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
  GError *error = NULL;
  DirtyFrame *frame;
  guint timeout_ms;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (DIRTY_IS_REQUEST (request));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  timeout_ms = dirty_request_get_timeout (request);
  if (timeout_ms == 0)
    timeout_ms = dirty_client_get_timeout (self);
  frame = dirty_request_encode (request, 0, timeout_ms, &error);
  if (frame == NULL)
    g_task_report_error (self, callback, user_data, dirty_client_send, error);
  else
    send_frame (self, frame, timeout_ms, cancellable, callback, user_data);
}

/* A blocking call of REQUEST @frame (taken): on the calling thread when
 * the client is connected, else through the I/O thread (which connects,
 * or holds the call back for the arbiter's in-flight limit). Returns the
 * result and its attachments (@attachments, may be NULL), not a
 * DirtyReply, which only dirty_client_send_sync () needs. A NULL @frame
 * is a request that could not be encoded: @error is already set. */
static JsonNode *
call_frame_sync (DirtyClient   *self,
                 DirtyFrame    *frame,
                 guint32        timeout_ms,
                 GCancellable  *cancellable,
                 GPtrArray    **attachments,
                 GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(DirtyReply) reply = NULL;
  DirtySyncWait wait;
  gboolean handled;
  JsonNode *value;

  *attachments = NULL;
  if (frame == NULL)
    return NULL;
  value = dirty_client_io_call_sync (self->io, frame, timeout_ms, cancellable, &handled,
                                     attachments, error);
  if (handled)
    {
      dirty_frame_unref (frame);
      return value;
    }
  dirty_sync_wait_begin (&wait);
  send_frame (self, frame, timeout_ms, cancellable, dirty_sync_wait_cb, &wait);
  result = dirty_sync_wait_end (&wait);
  reply = dirty_client_send_finish (self, result, error);
  if (reply == NULL)
    return NULL;
  *attachments = g_ptr_array_ref (dirty_reply_get_attachments (reply));
  return json_node_ref (dirty_reply_get_result (reply));
}

DirtyClientIo *
dirty_client_get_io (DirtyClient *self)
{
  return self->io;
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
 *   and %DIRTY_ERROR_TIMEOUT from the client itself, and
 *   %DIRTY_ERROR_INVALID_ARGUMENT, before anything is sent, for
 *   arguments JSON cannot carry: a number that is not finite, a string
 *   that is not UTF-8, arrays and objects nested past the protocol's
 *   limit of 64 levels, counting the request around them) or
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
  g_autoptr(GPtrArray) attachments = NULL;
  JsonNode *result;
  guint timeout_ms;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (DIRTY_IS_REQUEST (request), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  timeout_ms = dirty_request_get_timeout (request);
  if (timeout_ms == 0)
    timeout_ms = dirty_client_get_timeout (self);
  result = call_frame_sync (self, dirty_request_encode (request, 0, timeout_ms, error), timeout_ms,
                           cancellable, &attachments, error);
  if (result == NULL)
    return NULL;
  return dirty_reply_new (result, attachments);
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
  g_autoptr(DirtyClientCall) call = NULL;
  GError *error = NULL;
  DirtyFrame *frame;
  GTask *task;
  guint timeout_ms;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (app != NULL);
  g_return_if_fail (action != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  /* no DirtyRequest, no copy of the arguments: encoded here and now; and
   * no DirtyReply: the task returns the result itself */
  timeout_ms = dirty_client_get_timeout (self);
  frame = dirty_request_encode_json (app, action, args, kwargs, DIRTY_FRAME_FLAG_NONE, timeout_ms,
                                     &error);
  if (frame == NULL)
    {
      g_task_report_error (self, callback, user_data, dirty_client_execute, error);
      return;
    }
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dirty_client_execute);
  call = dirty_client_io_start_result_call (self->io, task, cancellable, frame, timeout_ms);
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
  g_autoptr(GPtrArray) attachments = NULL;
  guint timeout_ms;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (app != NULL, NULL);
  g_return_val_if_fail (action != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  timeout_ms = dirty_client_get_timeout (self);
  /* JSON only: attachments the result refers to are dropped */
  return call_frame_sync (self, dirty_request_encode_json (app, action, args, kwargs,
                                                           DIRTY_FRAME_FLAG_NONE, timeout_ms,
                                                           error),
                          timeout_ms, cancellable, &attachments, error);
}
