/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "dirty-connection.h"
#include "dirty-io-private.h"
#include "dirty-message.h"
#include "dirty-test-fake.h"

static void
fake_reply (DirtyConnection *connection,
            guint64          id,
            JsonNode        *args,
            GPtrArray       *attachments)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(DirtyFrame) frame = NULL;

  json_object_set_member (object, "result",
                          args ? json_node_copy (args) : json_node_new (JSON_NODE_NULL));
  json_node_set_object (root, object);
  frame = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, id, 0, root, attachments);
  dirty_connection_send (connection, frame);
}

static void
fake_chunk (DirtyConnection *connection,
            guint64          id,
            JsonNode        *data)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(DirtyFrame) frame = NULL;

  json_object_set_member (object, "data", json_node_copy (data));
  json_node_set_object (root, object);
  frame = dirty_frame_encode (DIRTY_FRAME_CHUNK, 0, id, 0, root, NULL);
  dirty_connection_send (connection, frame);
}

static void
fake_int_chunk (DirtyConnection *connection,
                guint64          id,
                gint64           value)
{
  g_autoptr(JsonNode) data = json_node_init_int (json_node_alloc (), value);

  fake_chunk (connection, id, data);
}

static void
fake_end (DirtyConnection *connection,
          guint64          id)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_END, id, 0);

  dirty_connection_send (connection, frame);
}

static void
fake_frame_cb (DirtyConnection *connection,
               DirtyFrame      *frame,
               gpointer         user_data)
{
  FakeArbiter *fake = user_data;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  guint64 id = frame->header.id;
  const char *action;
  JsonNode *args;

  if (frame->header.type == DIRTY_FRAME_CANCEL)
    {
      g_async_queue_push (fake->cancels, GUINT_TO_POINTER ((guint) id));
      return;
    }
  if (frame->header.type != DIRTY_FRAME_REQUEST)
    return;
  g_atomic_int_inc (&fake->n_requests);
  g_assert_true (dirty_frame_decode (frame, dirty_connection_get_limits (connection),
                                     &root, &attachments, &error));
  action = dirty_json_get_string (root, "action");
  args = json_object_get_member (json_node_get_object (root), "args");

  if (g_str_equal (action, "echo"))
    fake_reply (connection, id, args, attachments);
  else if (g_str_equal (action, "fail"))
    {
      g_autoptr(GError) app_error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_APP,
                                                         "it failed");
      g_autoptr(DirtyFrame) reply = dirty_frame_new_error (id, app_error, "x:Y", action, 1234);

      dirty_connection_send (connection, reply);
    }
  else if (g_str_equal (action, "late"))
    {
      fake_reply (connection, id + 1000, NULL, NULL);
      fake_reply (connection, id, args, attachments);
    }
  else if (g_str_equal (action, "pair"))
    {
      if (fake->held_id == 0)
        fake->held_id = id;
      else
        {
          g_autoptr(JsonNode) second = json_node_init_string (json_node_alloc (), "second");
          g_autoptr(JsonNode) first = json_node_init_string (json_node_alloc (), "first");

          fake_reply (connection, id, second, NULL);
          fake_reply (connection, fake->held_id, first, NULL);
          fake->held_id = 0;
        }
    }
  else if (g_str_equal (action, "short"))
    {
      fake_chunk (connection, id, args);
      fake_end (connection, id);
    }
  else if (g_str_equal (action, "empty"))
    fake_end (connection, id);
  else if (g_str_equal (action, "split"))
    {
      fake_int_chunk (connection, id, 1);
      fake_int_chunk (connection, id, 2);
      fake->split_id = id;
    }
  else if (g_str_equal (action, "finish"))
    {
      fake_int_chunk (connection, fake->split_id, 3);
      fake_end (connection, fake->split_id);
      fake_reply (connection, id, args, attachments);
    }
  else if (g_str_equal (action, "no_result"))
    {
      g_autoptr(DirtyFrame) reply = dirty_frame_encode_text (DIRTY_FRAME_RESPONSE, 0, id, 0,
                                                             "{}", 2, NULL);

      dirty_connection_send (connection, reply);
    }
  else if (g_str_equal (action, "drop"))
    dirty_connection_close (connection);
  else if (g_str_equal (action, "fatal"))
    {
      g_autoptr(DirtyFrame) reply = dirty_frame_new_error_literal (0, DIRTY_ERROR_PROTOCOL,
                                                                   "go away");

      dirty_connection_send (connection, reply);
      dirty_connection_close (connection);
    }
  /* "hang": nothing */
}

static void
fake_closed_cb (DirtyConnection *connection,
                const GError    *error,
                gpointer         user_data)
{
}

static gboolean
fake_accept_cb (GSocket      *listener,
                GIOCondition  condition,
                gpointer      user_data)
{
  FakeArbiter *fake = user_data;
  g_autoptr(GSocket) socket = g_socket_accept (listener, NULL, NULL);
  DirtyConnection *connection;

  if (socket == NULL)
    return G_SOURCE_CONTINUE;
  connection = dirty_connection_new (socket, NULL);
  g_ptr_array_add (fake->connections, connection);
  dirty_connection_start (connection, fake->context, fake_frame_cb, fake_closed_cb, fake);
  if ((guint) g_atomic_int_add (&fake->n_accepted, 1) < fake->n_refuse)
    {
      g_autoptr(DirtyFrame) refusal = dirty_frame_new_error_literal (0, fake->refuse_code,
                                                                     "refused");

      dirty_connection_send (connection, refusal);
      dirty_connection_close (connection);
      return G_SOURCE_CONTINUE;
    }
  if (fake->hello_max_in_flight > 0)
    {
      g_autoptr(JsonObject) object = json_object_new ();
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
      g_autoptr(DirtyFrame) hello = NULL;

      json_object_set_string_member (object, "role", "arbiter");
      json_object_set_int_member (object, "version", 1);
      json_object_set_int_member (object, "max_in_flight", fake->hello_max_in_flight);
      json_node_set_object (root, object);
      hello = dirty_frame_encode (DIRTY_FRAME_HELLO, 0, 0, 0, root, NULL);
      dirty_connection_send (connection, hello);
    }
  return G_SOURCE_CONTINUE;
}

static gpointer
fake_thread (gpointer data)
{
  FakeArbiter *fake = data;

  g_main_context_push_thread_default (fake->context);
  g_main_loop_run (fake->loop);
  g_main_context_pop_thread_default (fake->context);
  return NULL;
}

FakeArbiter *
fake_arbiter_new (void)
{
  FakeArbiter *fake = g_new0 (FakeArbiter, 1);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) error = NULL;

  fake->dir = g_dir_make_tmp ("dirty-test-XXXXXX", &error);
  g_assert_no_error (error);
  fake->path = g_build_filename (fake->dir, "arbiter.sock", NULL);
  fake->listener = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (fake->path);
  g_assert_true (g_socket_bind (fake->listener, address, FALSE, &error));
  g_assert_true (g_socket_listen (fake->listener, &error));
  g_socket_set_blocking (fake->listener, FALSE);

  fake->context = g_main_context_new ();
  fake->loop = g_main_loop_new (fake->context, FALSE);
  fake->connections = g_ptr_array_new_with_free_func (g_object_unref);
  fake->cancels = g_async_queue_new ();
  fake->accept_source = g_socket_create_source (fake->listener, G_IO_IN, NULL);
  g_source_set_callback (fake->accept_source, G_SOURCE_FUNC (fake_accept_cb), fake, NULL);
  g_source_attach (fake->accept_source, fake->context);
  fake->thread = g_thread_new ("fake-arbiter", fake_thread, fake);
  return fake;
}

static gboolean
fake_stop_cb (gpointer data)
{
  FakeArbiter *fake = data;

  for (guint i = 0; i < fake->connections->len; i++)
    dirty_connection_close (g_ptr_array_index (fake->connections, i));
  g_source_destroy (fake->accept_source);
  g_main_loop_quit (fake->loop);
  return G_SOURCE_REMOVE;
}

void
fake_arbiter_free (FakeArbiter *fake)
{
  g_main_context_invoke (fake->context, fake_stop_cb, fake);
  g_thread_join (fake->thread);
  g_ptr_array_unref (fake->connections);
  g_source_unref (fake->accept_source);
  g_main_loop_unref (fake->loop);
  g_main_context_unref (fake->context);
  g_socket_close (fake->listener, NULL);
  g_object_unref (fake->listener);
  g_async_queue_unref (fake->cancels);
  g_unlink (fake->path);
  g_rmdir (fake->dir);
  g_free (fake->path);
  g_free (fake->dir);
  g_free (fake);
}


DirtyClient *
fake_client (FakeArbiter *fake)
{
  g_autoptr(GError) error = NULL;
  DirtyClient *client = dirty_client_new_sync (fake->path, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (client);
  return client;
}

JsonNode *
call_sync (DirtyClient   *client,
           const char    *action,
           GCancellable  *cancellable,
           GError       **error)
{
  g_autoptr(JsonArray) args = json_array_new ();

  json_array_add_string_element (args, action);
  return dirty_client_execute_sync (client, "fake:App", action, args, NULL,
                                    cancellable, error);
}

void
fake_warm_up (DirtyClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = call_sync (client, "echo", NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
}

gpointer
cancel_later_thread (gpointer data)
{
  CancelLater *later = data;

  g_usleep (later->delay_ms * G_TIME_SPAN_MILLISECOND);
  g_cancellable_cancel (later->cancellable);
  return NULL;
}

void
wait_for_count_in (GMainContext *context,
                   guint        *counter,
                   guint         n)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;

  while ((guint) g_atomic_int_get (counter) < n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (context, FALSE);
      g_usleep (1000);
    }
}

void
wait_for_count (guint *counter,
                guint  n)
{
  wait_for_count_in (NULL, counter, n);
}

/* On the I/O thread: holds it until the gate opens */
static void
gate_block_cb (gpointer data)
{
  Gate *gate = data;

  g_mutex_lock (&gate->lock);
  gate->blocked = TRUE;
  g_cond_broadcast (&gate->cond);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

void
gate_hold_io (Gate *gate)
{
  g_mutex_init (&gate->lock);
  g_cond_init (&gate->cond);
  dirty_io_schedule (gate_block_cb, gate, NULL);
  g_mutex_lock (&gate->lock);
  while (!gate->blocked)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

void
gate_release (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

void
gate_clear (Gate *gate)
{
  g_mutex_clear (&gate->lock);
  g_cond_clear (&gate->cond);
}
