/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control face of DirtyClient: STATUS and MANAGE requests
 * (docs/protocol.md, "STATUS" and "MANAGE"), for dirtyctl and for
 * services that watch or steer their arbiter. They travel like calls
 * (an id of their own, a RESPONSE or ERROR back), so they share the
 * call machinery of dirty-client-io.c. */
#include "config.h"

#include "dirty-client.h"
#include "dirty-client-private.h"
#include "dirty-error.h"
#include "dirty-message.h"

/* Sends a @type frame with body @root and returns its result through
 * @task (taken). */
static void
control_start (DirtyClient    *self,
               DirtyFrameType  type,
               JsonNode       *root,
               GCancellable   *cancellable,
               GTask          *task)
{
  g_autoptr(DirtyClientCall) call = NULL;

  /* no timeout of its own: the arbiter answers these from its loop at
   * once; a caller that cannot wait cancels */
  call = dirty_client_io_start_result_call (dirty_client_get_io (self), task, cancellable,
                                            dirty_frame_encode (type, 0, 0, 0, root, NULL), 0);
}

static JsonNode *
control_finish (DirtyClient   *self,
                GAsyncResult  *result,
                gpointer       tag,
                GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dirty_client_query_status:
 * @self: a #DirtyClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called with the status
 * @user_data: data for @callback
 *
 * Asks the arbiter for its status: its workers, its apps' queues,
 * counters and latencies, and its totals (the JSON object described in
 * `docs/protocol.md`, "STATUS"). Call
 * [method@Dirty.Client.query_status_finish] from @callback.
 *
 * Since: 0.1
 */
void
dirty_client_query_status (DirtyClient         *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(JsonObject) body = json_object_new ();
  g_autoptr(JsonNode) root = json_node_init_object (json_node_alloc (), body);   /* refs body */
  GTask *task;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dirty_client_query_status);
  control_start (self, DIRTY_FRAME_STATUS, root, cancellable, task);
}

/**
 * dirty_client_query_status_finish:
 * @self: a #DirtyClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Client.query_status].
 *
 * Returns: (transfer full): the status object, or %NULL with @error set
 *
 * Since: 0.1
 */
JsonNode *
dirty_client_query_status_finish (DirtyClient   *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  return control_finish (self, result, dirty_client_query_status, error);
}

/**
 * dirty_client_query_status_sync:
 * @self: a #DirtyClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the arbiter for its status, blocking the calling thread until it
 * answers (see [method@Dirty.Client.query_status]).
 *
 * Returns: (transfer full): the status object, or %NULL with @error set
 *
 * Since: 0.1
 */
JsonNode *
dirty_client_query_status_sync (DirtyClient   *self,
                                GCancellable  *cancellable,
                                GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  DirtySyncWait wait;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  dirty_sync_wait_begin (&wait);
  dirty_client_query_status (self, cancellable, dirty_sync_wait_cb, &wait);
  result = dirty_sync_wait_end (&wait);
  return dirty_client_query_status_finish (self, result, error);
}

/**
 * dirty_client_manage:
 * @self: a #DirtyClient
 * @verb: the control verb: `"reload"` or `"workers"`
 * @params: (nullable): the verb's parameters, e.g. `{"delta": 2}` for
 *   `"workers"`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called with the answer
 * @user_data: data for @callback
 *
 * Sends a MANAGE request: `reload` re-reads the arbiter's configuration
 * and replaces its workers without dropping calls; `workers` with an
 * integer `delta` adds or removes workers. Only root and the arbiter's own
 * user may do this (%DIRTY_ERROR_PERMISSION_DENIED otherwise). Call
 * [method@Dirty.Client.manage_finish] from @callback.
 *
 * Since: 0.1
 */
void
dirty_client_manage (DirtyClient         *self,
                     const char          *verb,
                     JsonObject          *params,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(JsonObject) body = json_object_new ();
  g_autoptr(JsonNode) root = NULL;
  GTask *task;

  g_return_if_fail (DIRTY_IS_CLIENT (self));
  g_return_if_fail (verb != NULL && *verb != '\0');
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dirty_client_manage);
  if (params != NULL)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *value;

      json_object_iter_init (&iter, params);
      while (json_object_iter_next (&iter, &name, &value))
        json_object_set_member (body, name, json_node_copy (value));
    }
  json_object_set_string_member (body, "verb", verb);
  root = json_node_init_object (json_node_alloc (), body);
  control_start (self, DIRTY_FRAME_MANAGE, root, cancellable, task);
}

/**
 * dirty_client_manage_finish:
 * @self: a #DirtyClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Dirty.Client.manage].
 *
 * Returns: (transfer full): the arbiter's answer (`{"generation": G}`
 *   for `reload`, `{"workers": N}` for `workers`), or %NULL with @error
 *   set
 *
 * Since: 0.1
 */
JsonNode *
dirty_client_manage_finish (DirtyClient   *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  return control_finish (self, result, dirty_client_manage, error);
}

/**
 * dirty_client_manage_sync:
 * @self: a #DirtyClient
 * @verb: the control verb
 * @params: (nullable): the verb's parameters
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends a MANAGE request and blocks the calling thread until the arbiter
 * answers (see [method@Dirty.Client.manage]).
 *
 * Returns: (transfer full): the arbiter's answer, or %NULL with @error set
 *
 * Since: 0.1
 */
JsonNode *
dirty_client_manage_sync (DirtyClient   *self,
                          const char    *verb,
                          JsonObject    *params,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  DirtySyncWait wait;

  g_return_val_if_fail (DIRTY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (verb != NULL && *verb != '\0', NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  dirty_sync_wait_begin (&wait);
  dirty_client_manage (self, verb, params, cancellable, dirty_sync_wait_cb, &wait);
  result = dirty_sync_wait_end (&wait);
  return dirty_client_manage_finish (self, result, error);
}
