/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* DirtyClient's streaming calls: a REQUEST with the STREAM flag whose
 * chunks a DirtyStream reads (dirty-stream.c). */

#include "dirty-client-private.h"
#include "dirty-request-private.h"
#include "dirty-stream-private.h"

/* The call's own task returns at the stream's first reply; this hands
 * the stream to the caller then, or the error that ended it at once. */
static void
dirty_client_stream_started_cb (GObject      *source,
                                GAsyncResult *result,
                                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, g_object_ref (g_task_get_task_data (task)), g_object_unref);
}

/* Sends the stream REQUEST @frame (taken; its timeout @timeout_ms);
 * @started (taken, may be NULL) returns at its first chunk or its end.
 * With @here (and no @started), the calling thread writes the REQUEST and
 * reads the first chunk itself when it can, with no wake-up of the I/O
 * thread in between. (transfer full) */
static DirtyStream *
dirty_client_start_stream_frame (DirtyClient  *self,
                                 DirtyFrame   *frame,
                                 guint         timeout_ms,
                                 GCancellable *cancellable,
                                 GTask        *started,
                                 gboolean      here)
{
  g_autoptr(DirtyFrame) owned = frame;
  g_autoptr(DirtyStreamQueue) queue = dirty_stream_queue_new (NULL, DIRTY_STREAM_CLIENT_WINDOW);
  g_autoptr(DirtyClientCall) call = NULL;

  if (here)
    call = dirty_client_io_start_stream_here (dirty_client_get_io (self), cancellable, owned,
                                              timeout_ms, queue);
  if (call == NULL)
    call = dirty_client_io_start_call (dirty_client_get_io (self), started, cancellable,
                                       g_steal_pointer (&owned), timeout_ms, queue);
  return dirty_stream_new (G_OBJECT (self), queue, call);
}

/* @request's stream REQUEST, and its timeout (the client's if it has
 * none) in @timeout_ms; NULL if it cannot be encoded */
static DirtyFrame *
encode_stream_request (DirtyClient   *self,
                       DirtyRequest  *request,
                       guint         *timeout_ms,
                       GError       **error)
{
  *timeout_ms = dirty_request_get_timeout (request);
  if (*timeout_ms == 0)
    *timeout_ms = dirty_client_get_timeout (self);
  return dirty_request_encode_stream (request, 0, *timeout_ms, error);
}

/* The async start of a stream: the task @callback finishes (tagged
 * @source_tag) holds the stream and returns it once the stream has
 * started. A NULL @frame could not be encoded: the task fails with
 * @error (taken) instead, nothing sent. */
static void
start_stream_task (DirtyClient         *self,
                   DirtyFrame          *frame,
                   GError              *error,
                   guint                timeout_ms,
                   GCancellable        *cancellable,
                   gpointer             source_tag,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data)
{
  GTask *task, *started;

  if (frame == NULL)
    {
      g_task_report_error (self, callback, user_data, source_tag, error);
      return;
    }
  task = g_task_new (self, cancellable, callback, user_data);
  started = g_task_new (self, cancellable, dirty_client_stream_started_cb, task);
  g_task_set_source_tag (task, source_tag);
  g_task_set_source_tag (started, dirty_client_stream_started_cb);
  g_task_set_task_data (task,
                        dirty_client_start_stream_frame (self, frame, timeout_ms, cancellable,
                                                         started, FALSE),
                        g_object_unref);
}

/**
 * dirty_client_send_stream:
 * @self: a #DirtyClient
 * @request: the request to send
 * @cancellable: (nullable): a #GCancellable, for the whole stream
 * @callback: (scope async) (closure user_data): called when the stream
 *   has started
 * @user_data: data for @callback
 *
 * Sends @request as a streamed call: the action's chunks are read from
 * the [class@Dirty.Stream] that [method@Dirty.Client.send_stream_finish]
 * returns. @callback runs, in the thread-default main context of the
 * calling thread, when the first chunk (or the end) has arrived, so an
 * error that ends the call before any chunk (no such app or action,
 * `busy`, a timeout while queued) comes from the finish function.
 *
 * The request's timeout (or the client's) is the deadline of the whole
 * stream; there is no limit on the time between chunks. Cancelling
 * @cancellable at any time, even once the stream is being read, cancels
 * the call: the stream then ends with %G_IO_ERROR_CANCELLED.
 *
 * An action that returns a single value, not declared
 * %DIRTY_ACTION_STREAM, may be read this way too: its value is the
 * stream's one chunk.
 *
 * Since: 0.1
 */
void
dirty_client_send_stream (DirtyClient         *self,
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

  frame = encode_stream_request (self, request, &timeout_ms, &error);
  start_stream_task (self, frame, error, timeout_ms, cancellable, dirty_client_send_stream,
                     callback, user_data);
}

/**
 * dirty_client_send_stream_finish:
 * @self: a #DirtyClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Client.send_stream].
 *
 * Returns: (transfer full): the stream, or %NULL with @error set (see
 *   [method@Dirty.Client.send_finish])
 *
 * Since: 0.1
 */
DirtyStream *
dirty_client_send_stream_finish (DirtyClient   *self,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == dirty_client_send_stream, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dirty_client_send_stream_sync:
 * @self: a #DirtyClient
 * @request: the request to send
 * @cancellable: (nullable): a #GCancellable, for the whole stream
 * @error: return location for a #GError
 *
 * Sends @request as a streamed call and blocks the calling thread until
 * its first chunk (or its end) has arrived; see
 * [method@Dirty.Client.send_stream].
 *
 * Returns: (transfer full): the stream, or %NULL with @error set
 *
 * Since: 0.1
 */
DirtyStream *
dirty_client_send_stream_sync (DirtyClient   *self,
                               DirtyRequest  *request,
                               GCancellable  *cancellable,
                               GError       **error)
{
  g_autoptr(DirtyStream) stream = NULL;
  DirtyFrame *frame;
  guint timeout_ms;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (DIRTY_IS_REQUEST (request), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* No task: this thread sends the request and reads the first chunk
   * itself when it can; otherwise it waits on the stream's own queue for
   * the first chunk, one GCond wake-up, rather than for a task returned
   * through its main context. A cancel, a timeout or an error ends the
   * queue as it ends the stream. */
  frame = encode_stream_request (self, request, &timeout_ms, error);
  if (frame == NULL)
    return NULL;
  stream = dirty_client_start_stream_frame (self, frame, timeout_ms, cancellable, NULL, TRUE);
  if (!dirty_stream_wait_started (stream, error))
    return NULL;
  return g_steal_pointer (&stream);
}

/**
 * dirty_client_stream:
 * @self: a #DirtyClient
 * @app: the app, as `MODULE:TypeName`
 * @action: the action
 * @args: (nullable): the positional arguments
 * @kwargs: (nullable): the keyword arguments
 * @cancellable: (nullable): a #GCancellable, for the whole stream
 * @callback: (scope async) (closure user_data): called when the stream
 *   has started
 * @user_data: data for @callback
 *
 * Calls @action of @app with JSON arguments and reads its result as a
 * stream: a shortcut for [method@Dirty.Client.send_stream] when no bytes
 * travel. Call [method@Dirty.Client.stream_finish] from @callback.
 *
 * ```c
 * static void
 * on_chunk (GObject *source, GAsyncResult *result, gpointer user_data)
 * {
 *   g_autoptr(GError) error = NULL;
 *   g_autoptr(JsonNode) token = dirty_stream_next_chunk_finish (DIRTY_STREAM (source),
 *                                                               result, &error);
 *   if (token == NULL)
 *     return;   // the end, or error
 *   g_print ("%s", json_node_get_string (token));
 *   dirty_stream_next_chunk (DIRTY_STREAM (source), NULL, on_chunk, user_data);
 * }
 * ```
 *
 * Since: 0.1
 */
void
dirty_client_stream (DirtyClient         *self,
                     const char          *app,
                     const char          *action,
                     JsonArray           *args,
                     JsonObject          *kwargs,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  GError *error = NULL;
  DirtyFrame *frame;
  guint timeout_ms;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (app != NULL);
  g_return_if_fail (action != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  /* no DirtyRequest, as dirty_client_stream_sync () */
  timeout_ms = dirty_client_get_timeout (self);
  frame = dirty_request_encode_json (app, action, args, kwargs, DIRTY_FRAME_FLAG_STREAM,
                                     timeout_ms, &error);
  start_stream_task (self, frame, error, timeout_ms, cancellable, dirty_client_stream, callback,
                     user_data);
}

/**
 * dirty_client_stream_finish:
 * @self: a #DirtyClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Client.stream].
 *
 * Returns: (transfer full): the stream, or %NULL with @error set (see
 *   [method@Dirty.Client.send_finish])
 *
 * Since: 0.1
 */
DirtyStream *
dirty_client_stream_finish (DirtyClient   *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == dirty_client_stream, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dirty_client_stream_sync:
 * @self: a #DirtyClient
 * @app: the app, as `MODULE:TypeName`
 * @action: the action
 * @args: (nullable): the positional arguments
 * @kwargs: (nullable): the keyword arguments
 * @cancellable: (nullable): a #GCancellable, for the whole stream
 * @error: return location for a #GError
 *
 * Calls @action of @app and blocks until its stream has started; see
 * [method@Dirty.Client.stream]. Then read the stream, with blocking calls
 * ([method@Dirty.Stream.next_chunk_sync], g_input_stream_read()) or from
 * a main loop.
 *
 * Returns: (transfer full): the stream, or %NULL with @error set
 *
 * Since: 0.1
 */
DirtyStream *
dirty_client_stream_sync (DirtyClient   *self,
                          const char    *app,
                          const char    *action,
                          JsonArray     *args,
                          JsonObject    *kwargs,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autoptr(DirtyStream) stream = NULL;
  DirtyFrame *frame;
  guint timeout_ms;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (app != NULL, NULL);
  g_return_val_if_fail (action != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* As execute's: no DirtyRequest, whose copies of @args and @kwargs
   * (made, then freed) cost more than the rest of a stream's start;
   * they are written here, before this returns. */
  timeout_ms = dirty_client_get_timeout (self);
  frame = dirty_request_encode_json (app, action, args, kwargs, DIRTY_FRAME_FLAG_STREAM,
                                     timeout_ms, error);
  if (frame == NULL)
    return NULL;
  stream = dirty_client_start_stream_frame (self, frame, timeout_ms, cancellable, NULL, TRUE);
  if (!dirty_stream_wait_started (stream, error))
    return NULL;
  return g_steal_pointer (&stream);
}
