/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Unit tests of the client face of libdirty-glib that need no daemon:
 * DirtyRequest encoding, DirtyReply, connection errors, argument checks,
 * and the DirtyClient call machinery against a small fake arbiter that
 * speaks the protocol through the shared codec (DirtyConnection) on its
 * own thread (dirty-test-fake.h). Its streams: test-client-stream.c.
 *
 * Links the library's objects directly (not the shared library), since
 * it uses the private headers: see tests/meson.build. */

#include "config.h"

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "dirty.h"
#include "dirty-client-io-private.h"
#include "dirty-connection.h"
#include "dirty-message.h"
#include "dirty-reply-private.h"
#include "dirty-request-private.h"
#include "dirty-stream-private.h"
#include "dirty-test-fake.h"
#include "dirty-test-raw.h"

/* ---- DirtyRequest ---- */

static GBytes *
bytes_new_string (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static void
assert_bytes_equal (GBytes     *bytes,
                    const char *expected)
{
  g_assert_nonnull (bytes);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                   expected, strlen (expected));
}

static void
test_request_encode (void)
{
  g_autoptr(DirtyRequest) request = dirty_request_new ("echo:DirtyEchoApp", "echo");
  g_autoptr(GBytes) b0 = bytes_new_string ("first");
  g_autoptr(GBytes) b1 = bytes_new_string ("second\0binary");
  g_autoptr(GBytes) b2 = g_bytes_new ("\0\1\2\3", 4);
  g_autoptr(JsonNode) text = json_node_init_string (json_node_alloc (), "hello");
  g_autoptr(JsonNode) number = json_node_init_int (json_node_alloc (), 42);
  g_autoptr(JsonNode) nested_ref = NULL;
  g_autoptr(JsonArray) list = json_array_new ();
  g_autoptr(JsonNode) list_node = NULL;
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits limits;
  JsonObject *object;
  JsonArray *args;
  JsonObject *kwargs;
  JsonNode *item;

  dirty_request_add_arg (request, text);
  dirty_request_add_arg (request, number);
  dirty_request_add_arg (request, NULL);
  dirty_request_add_bytes (request, b0);
  dirty_request_set_kwarg (request, "size", number);
  dirty_request_set_kwarg_bytes (request, "data", b1);
  /* bytes nested inside a list */
  nested_ref = dirty_request_attach (request, b2);
  json_array_add_element (list, json_node_ref (nested_ref));
  list_node = json_node_init_array (json_node_alloc (), list);
  dirty_request_set_kwarg (request, "list", list_node);
  dirty_request_set_timeout (request, 1500);

  g_assert_cmpuint (dirty_request_get_attachments (request)->len, ==, 3);
  g_assert_cmpuint (json_array_get_length (dirty_request_get_args (request)), ==, 4);
  g_assert_cmpuint (dirty_request_get_timeout (request), ==, 1500);

  frame = dirty_request_encode (request, 42, 1500, NULL);
  g_assert_cmpuint (frame->header.type, ==, DIRTY_FRAME_REQUEST);
  g_assert_cmpuint (frame->header.id, ==, 42);
  g_assert_cmpuint (frame->header.aux, ==, 1500);
  g_assert_cmpuint (frame->header.flags, ==, 0);
  g_assert_cmpuint (frame->header.n_attachments, ==, 3);

  dirty_limits_init (&limits);
  g_assert_true (dirty_frame_decode (frame, &limits, &root, &attachments, &error));
  g_assert_no_error (error);
  g_assert_nonnull (root);
  g_assert_cmpuint (attachments->len, ==, 3);

  object = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (object, "app"), ==, "echo:DirtyEchoApp");
  g_assert_cmpstr (json_object_get_string_member (object, "action"), ==, "echo");

  args = json_object_get_array_member (object, "args");
  g_assert_cmpuint (json_array_get_length (args), ==, 4);
  g_assert_cmpstr (json_array_get_string_element (args, 0), ==, "hello");
  g_assert_cmpint (json_array_get_int_element (args, 1), ==, 42);
  g_assert_true (json_array_get_null_element (args, 2));
  item = json_array_get_element (args, 3);
  assert_bytes_equal (dirty_json_lookup_bytes (item, attachments), "first");

  kwargs = json_object_get_object_member (object, "kwargs");
  g_assert_cmpint (json_object_get_int_member (kwargs, "size"), ==, 42);
  item = json_object_get_member (kwargs, "data");
  g_assert_true (g_bytes_equal (dirty_json_lookup_bytes (item, attachments), b1));
  item = json_array_get_element (json_object_get_array_member (kwargs, "list"), 0);
  g_assert_true (g_bytes_equal (dirty_json_lookup_bytes (item, attachments), b2));
}

static void
test_request_empty (void)
{
  g_autoptr(DirtyRequest) request = dirty_request_new ("counter:DirtyCounterApp", "get");
  g_autoptr(DirtyFrame) frame = dirty_request_encode (request, 7, 0, NULL);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits limits;

  dirty_limits_init (&limits);
  g_assert_true (dirty_frame_decode (frame, &limits, &root, &attachments, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (frame->header.aux, ==, 0);
  g_assert_cmpuint (attachments->len, ==, 0);
  g_assert_cmpstr (dirty_json_get_string (root, "action"), ==, "get");
  /* empty args/kwargs are optional on the wire */
  g_assert_false (json_object_has_member (json_node_get_object (root), "args"));
  g_assert_false (json_object_has_member (json_node_get_object (root), "kwargs"));
}

/* a stream's REQUEST asks for the window the client reads it with; a
 * call's has no window */
static void
test_request_stream_window (void)
{
  g_autoptr(DirtyRequest) request = dirty_request_new ("streamapp:DirtyStreamTestApp", "count");
  g_autoptr(DirtyFrame) stream = dirty_request_encode_stream (request, 3, 0, NULL);
  g_autoptr(DirtyFrame) call = dirty_request_encode (request, 4, 0, NULL);
  g_autoptr(JsonNode) stream_root = dirty_test_raw_frame_json (stream);
  g_autoptr(JsonNode) call_root = dirty_test_raw_frame_json (call);

  g_assert_true (stream->header.flags & DIRTY_FRAME_FLAG_STREAM);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stream_root), "window"),
                   ==, DIRTY_STREAM_CLIENT_WINDOW);
  g_assert_cmpint (DIRTY_STREAM_CLIENT_WINDOW, <=, DIRTY_STREAM_MAX_WINDOW);

  g_assert_false (call->header.flags & DIRTY_FRAME_FLAG_STREAM);
  g_assert_false (json_object_has_member (json_node_get_object (call_root), "window"));
}

/* execute's path: the same body as a DirtyRequest's, straight from the
 * arguments, which it leaves as they were */
static void
test_request_encode_json (void)
{
  g_autoptr(JsonNode) args_node = json_from_string ("[1.5, \"a\\\"b\\n\", [], {\"k\": null}]", NULL);
  g_autoptr(JsonNode) kwargs_node = json_from_string ("{\"flag\": true, \"n\": -7}", NULL);
  g_autoptr(JsonNode) expected = json_from_string (
    "{\"app\": \"e:E\\\"\", \"action\": \"act\", \"args\": [1.5, \"a\\\"b\\n\", [], {\"k\": null}],"
    " \"kwargs\": {\"flag\": true, \"n\": -7}}", NULL);
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(DirtyFrame) bare = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) bare_root = NULL;

  frame = dirty_request_encode_json ("e:E\"", "act", json_node_get_array (args_node),
                                     json_node_get_object (kwargs_node), DIRTY_FRAME_FLAG_NONE,
                                     250, NULL);
  g_assert_cmpuint (frame->header.aux, ==, 250);
  root = dirty_test_raw_frame_json (frame);
  g_assert_true (json_node_equal (root, expected));
  g_assert_cmpuint (json_array_get_length (json_node_get_array (args_node)), ==, 4);

  bare = dirty_request_encode_json ("e:E", "act", NULL, NULL, DIRTY_FRAME_FLAG_NONE, 0, NULL);
  bare_root = dirty_test_raw_frame_json (bare);
  g_assert_false (json_object_has_member (json_node_get_object (bare_root), "args"));
  g_assert_false (json_object_has_member (json_node_get_object (bare_root), "kwargs"));
}

static void
test_request_snapshot (void)
{
  g_autoptr(DirtyRequest) request = dirty_request_new ("echo:DirtyEchoApp", "echo");
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(JsonObject) kwargs = json_object_new ();
  g_autoptr(DirtyFrame) before = NULL;
  g_autoptr(DirtyFrame) after = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits limits;

  json_array_add_int_element (args, 1);
  json_object_set_string_member (kwargs, "k", "v");
  dirty_request_set_args (request, args);
  dirty_request_set_kwargs (request, kwargs);
  /* copies: changing ours later does not change the request */
  json_array_add_int_element (args, 2);
  g_assert_cmpuint (json_array_get_length (dirty_request_get_args (request)), ==, 1);

  before = dirty_request_encode (request, 1, 0, NULL);
  dirty_request_add_arg (request, NULL);
  after = dirty_request_encode (request, 2, 0, NULL);
  g_assert_cmpuint (g_bytes_get_size (before->body), <, g_bytes_get_size (after->body));

  dirty_limits_init (&limits);
  g_assert_true (dirty_frame_decode (before, &limits, &root, &attachments, &error));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (json_node_get_object (root),
                                                                         "args")), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (json_node_get_object (root),
                                                                                 "kwargs"), "k"), ==, "v");

  dirty_request_set_args (request, NULL);
  dirty_request_set_kwargs (request, NULL);
  g_assert_cmpuint (json_array_get_length (dirty_request_get_args (request)), ==, 0);
  g_assert_cmpuint (json_object_get_size (dirty_request_get_kwargs (request)), ==, 0);
}

static void
test_request_properties (void)
{
  g_autoptr(DirtyRequest) request = dirty_request_new ("a:B", "c");
  g_autofree char *app = NULL;
  guint timeout = 1;

  g_object_set (request, "timeout", 250, NULL);
  g_object_get (request, "app", &app, "timeout", &timeout, NULL);
  g_assert_cmpstr (app, ==, "a:B");
  g_assert_cmpuint (timeout, ==, 250);
  g_assert_cmpstr (dirty_request_get_action (request), ==, "c");
}

/* ---- DirtyReply ---- */

static GPtrArray *
two_attachments (void)
{
  GPtrArray *attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  g_ptr_array_add (attachments, bytes_new_string ("zero"));
  g_ptr_array_add (attachments, bytes_new_string ("one"));
  return attachments;
}

/* A reply as the client makes one from a RESPONSE of body @json */
static DirtyReply *
reply_from_body (const char  *json,
                 GPtrArray   *attachments,
                 GError     **error)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_encode_text (DIRTY_FRAME_RESPONSE, 0, 1, 0, json,
                                                         json ? strlen (json) : 0, attachments);
  g_autoptr(GPtrArray) parts = NULL;
  DirtyLimits limits;
  JsonNode *result;

  dirty_limits_init (&limits);
  result = dirty_client_response_result (&limits, NULL, frame, &parts, error);
  if (result == NULL)
    return NULL;
  return dirty_reply_new (result, parts);
}

static void
test_reply_lookup_bytes (void)
{
  g_autoptr(GPtrArray) attachments = two_attachments ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyReply) reply = reply_from_body ("{\"result\": {\"png\": {\"$bytes\": 1}, \"n\": 3,"
                                                 " \"bad\": {\"$bytes\": 9}, \"neg\": {\"$bytes\": -1}}}",
                                                 attachments, &error);
  JsonObject *result;

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  result = json_node_get_object (dirty_reply_get_result (reply));
  assert_bytes_equal (dirty_reply_lookup_bytes (reply, json_object_get_member (result, "png")),
                      "one");
  g_assert_null (dirty_reply_lookup_bytes (reply, json_object_get_member (result, "n")));
  g_assert_null (dirty_reply_lookup_bytes (reply, json_object_get_member (result, "bad")));
  g_assert_null (dirty_reply_lookup_bytes (reply, json_object_get_member (result, "neg")));
  g_assert_null (dirty_reply_get_bytes (reply));
  g_assert_cmpuint (dirty_reply_get_attachments (reply)->len, ==, 2);
}

static void
test_reply_get_bytes (void)
{
  g_autoptr(GPtrArray) attachments = two_attachments ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyReply) reply = reply_from_body ("{\"result\": {\"$bytes\": 0}}", attachments,
                                                 &error);

  g_assert_no_error (error);
  assert_bytes_equal (dirty_reply_get_bytes (reply), "zero");
}

/* Bodies with no result, or the wrong shape; the result is immutable
 * whichever way the body was read (dirty_frame_decode_member ()). */
static void
test_reply_bodies (void)
{
  static const char *const no_result[] = { NULL, "{}", "{\"other\": 1}", "{\"Result\": 1}" };
  static const char *const results[] = {
    "{\"result\": [1, {\"a\": null}]}", "{ \"result\" : 7 }",
    "{\"res\\u0075lt\": [1, {\"a\": null}]}", "{\"x\": 1, \"result\": 7}",
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyReply) bad = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (no_result); i++)
    {
      g_autoptr(DirtyReply) reply = reply_from_body (no_result[i], NULL, &error);

      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_NULL (dirty_reply_get_result (reply)));
      g_assert_cmpuint (dirty_reply_get_attachments (reply)->len, ==, 0);
      g_assert_null (dirty_reply_get_bytes (reply));
    }
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autoptr(DirtyReply) reply = reply_from_body (results[i], NULL, &error);
      g_autofree char *text = NULL;

      g_assert_no_error (error);
      text = json_to_string (dirty_reply_get_result (reply), FALSE);
      g_assert_cmpstr (text, ==, i % 2 == 0 ? "[1,{\"a\":null}]" : "7");
      g_assert_true (json_node_is_immutable (dirty_reply_get_result (reply)));
    }

  bad = reply_from_body ("[1]", NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
}

/* ---- Connection errors ---- */

static char *
missing_socket_path (void)
{
  return g_build_filename (g_get_tmp_dir (), "dirty-test-no-such-dir", "arbiter.sock", NULL);
}

static void
test_connect_missing (void)
{
  g_autofree char *path = missing_socket_path ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = dirty_client_new_sync (path, NULL, &error);

  g_assert_null (client);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);
  /* an empty path is said to be one, not "connection refused" */
  g_assert_null (dirty_client_new_sync ("", NULL, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, "the socket path is empty"));
}

/* A refused connect () is explained: a socket no arbiter listens on (one
 * left by an arbiter that was killed), or a file that is no socket */
static void
test_connect_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-refused-XXXXXX", &error);
  g_autofree char *stale = g_build_filename (dir, "stale.sock", NULL);
  g_autofree char *file = g_build_filename (dir, "file", NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (stale);
  g_autoptr(GSocket) bound = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_DEFAULT, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (bound, address, FALSE, &error));
  g_assert_true (g_socket_close (bound, &error));
  g_assert_true (g_file_set_contents (file, "", 0, &error));

  g_assert_null (dirty_client_new_sync (stale, NULL, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, "(no arbiter listens on it: one that stopped "
                                            "without removing it?)"));
  g_clear_error (&error);
  g_assert_null (dirty_client_new_sync (file, NULL, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, "(it is not a socket)"));
  g_unlink (stale);
  g_unlink (file);
  g_rmdir (dir);
}

static void
new_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static void
test_connect_missing_async (void)
{
  g_autofree char *path = missing_socket_path ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(DirtyClient) client = NULL;

  dirty_client_new (path, NULL, new_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  client = dirty_client_new_finish (result, &error);
  g_assert_null (client);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, path));
}

static void
test_connect_lazy (void)
{
  g_autofree char *path = missing_socket_path ();
  g_autoptr(GError) error = NULL;
  /* not initialised: connects on the first call */
  g_autoptr(DirtyClient) client = g_object_new (DIRTY_TYPE_CLIENT, "socket-path", path, NULL);
  g_autoptr(JsonNode) result = NULL;

  g_assert_cmpstr (dirty_client_get_socket_path (client), ==, path);
  result = dirty_client_execute_sync (client, "echo:DirtyEchoApp", "echo", NULL, NULL,
                                      NULL, &error);
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, path));
}

static void
test_connect_cancelled (void)
{
  g_autofree char *path = missing_socket_path ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = NULL;

  g_cancellable_cancel (cancellable);
  client = dirty_client_new_sync (path, cancellable, &error);
  g_assert_null (client);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_default_path (void)
{
  g_autoptr(DirtyClient) client = NULL;

  g_setenv ("DIRTY_ARBITER_SOCKET", "/nonexistent/dirty.sock", TRUE);
  client = g_object_new (DIRTY_TYPE_CLIENT, NULL);
  g_assert_cmpstr (dirty_client_get_socket_path (client), ==, "/nonexistent/dirty.sock");
  g_unsetenv ("DIRTY_ARBITER_SOCKET");
}

static void
test_timeout_property (void)
{
  g_autoptr(DirtyClient) client = g_object_new (DIRTY_TYPE_CLIENT,
                                                "socket-path", "/nonexistent/x.sock",
                                                "timeout", 1234, NULL);
  guint timeout = 0;

  g_assert_cmpuint (dirty_client_get_timeout (client), ==, 1234);
  dirty_client_set_timeout (client, 0);
  g_object_get (client, "timeout", &timeout, NULL);
  g_assert_cmpuint (timeout, ==, 0);
}

/* ---- Precondition checks ---- */

static void
test_checks (void)
{
  if (g_test_subprocess ())
    {
      /* fatal-criticals: the first failed check aborts */
      dirty_request_new (NULL, "echo");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*app != NULL*");
}

static void
test_checks_request (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(DirtyRequest) request = dirty_request_new ("a:B", "c");

      dirty_request_add_bytes (request, NULL);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*bytes != NULL*");
}

static void
test_checks_send (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(DirtyClient) client = g_object_new (DIRTY_TYPE_CLIENT,
                                                    "socket-path", "/nonexistent/x.sock",
                                                    NULL);

      dirty_client_send_sync (client, NULL, NULL, NULL);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*DIRTY_IS_REQUEST*");
}

static void
test_checks_execute (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(DirtyClient) client = g_object_new (DIRTY_TYPE_CLIENT,
                                                    "socket-path", "/nonexistent/x.sock",
                                                    NULL);

      /* NULL is a programmer's error; an empty name is data, and fails
       * the call as the arbiter answers it (/execute/errors) */
      dirty_client_execute_sync (client, "echo:DirtyEchoApp", NULL, NULL, NULL, NULL, NULL);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*action != NULL*");
}

static void
test_fake_echo (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(DirtyRequest) request = dirty_request_new ("fake:App", "echo");
  g_autoptr(GBytes) bytes = g_bytes_new ("\0\xff", 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(JsonNode) result = NULL;
  JsonArray *array;

  dirty_request_add_bytes (request, bytes);
  reply = dirty_client_send_sync (client, request, NULL, &error);
  g_assert_no_error (error);
  array = json_node_get_array (dirty_reply_get_result (reply));
  g_assert_true (g_bytes_equal (dirty_reply_lookup_bytes (reply, json_array_get_element (array, 0)),
                                bytes));

  result = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_array_get_string_element (json_node_get_array (result), 0), ==, "echo");
  /* the result is ours: it may be changed */
  json_array_add_int_element (json_node_get_array (result), 1);
}

/* A RESPONSE without "result" is a JSON null result, through the I/O
 * thread (the first call connects) and on the calling thread after. */
static void
test_fake_no_result (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(DirtyRequest) request = dirty_request_new ("fake:App", "no_result");
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) result = call_sync (client, "no_result", NULL, &error);
      g_autoptr(DirtyReply) reply = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (result);
      g_assert_true (JSON_NODE_HOLDS_NULL (result));
      reply = dirty_client_send_sync (client, request, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_NULL (dirty_reply_get_result (reply)));
      g_assert_cmpuint (dirty_reply_get_attachments (reply)->len, ==, 0);
    }
}

static void
test_fake_app_error (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = call_sync (client, "fail", NULL, &error);

  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_assert_cmpstr (error->message, ==, "it failed");
  g_assert_cmpstr (dirty_error_get_app (error), ==, "x:Y");
  g_assert_cmpint (dirty_error_get_worker_pid (error), ==, 1234);
}

static void
test_fake_late_reply (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = call_sync (client, "late", NULL, &error);

  /* the reply for an unknown id was dropped, the right one arrived */
  g_assert_no_error (error);
  g_assert_cmpstr (json_array_get_string_element (json_node_get_array (result), 0), ==, "late");
}

typedef struct {
  GMainLoop  *loop;
  guint       pending;
} PairState;

typedef struct {
  PairState  *state;
  const char *expected;
} PairCall;

static void
pair_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  PairCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) value = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (value), ==, call->expected);
  if (--call->state->pending == 0)
    g_main_loop_quit (call->state->loop);
}

/* The fake answers the newer call first: each call still gets its own
 * result (replies are told apart by id, never by order; the callbacks of
 * replies read together run in any order). */
static void
test_fake_out_of_order_execute (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(JsonArray) first = json_array_new ();
  g_autoptr(JsonArray) second = json_array_new ();
  PairState state = { loop, 2 };
  PairCall calls[] = { { &state, "first" }, { &state, "second" } };

  json_array_add_string_element (first, "1");
  json_array_add_string_element (second, "2");
  dirty_client_execute (client, "fake:App", "pair", first, NULL, NULL, pair_cb, &calls[0]);
  dirty_client_execute (client, "fake:App", "pair", second, NULL, NULL, pair_cb, &calls[1]);
  g_main_loop_run (loop);
  g_assert_cmpuint (state.pending, ==, 0);
}

static void
test_fake_cancel_sync (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CancelLater later = { cancellable, 100 };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(JsonNode) after = NULL;
  GThread *thread = g_thread_new ("cancel", cancel_later_thread, &later);
  gint64 start = g_get_monotonic_time ();
  gpointer cancelled_id;

  /* the fake never answers "hang": only the cancellable can end it */
  result = call_sync (client, "hang", cancellable, &error);
  g_thread_join (thread);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_TIME_SPAN_SECOND);

  /* the arbiter was told */
  cancelled_id = g_async_queue_timeout_pop (fake->cancels, 5 * G_TIME_SPAN_SECOND);
  g_assert_nonnull (cancelled_id);

  /* the connection is still good */
  g_clear_error (&error);
  after = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);
}

static void
test_fake_cancel_before (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  g_cancellable_cancel (cancellable);
  result = call_sync (client, "echo", cancellable, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

typedef struct {
  GMainLoop *loop;
  guint      pending;
  guint      n_cancelled;
  guint      n_ok;
} ManyState;

static void
many_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  ManyState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) value = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);

  if (value != NULL)
    state->n_ok++;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    state->n_cancelled++;
  else
    g_assert_no_error (error);
  if (--state->pending == 0)
    g_main_loop_quit (state->loop);
}

static void
test_fake_cancel_race (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  ManyState state = { loop, 0, 0, 0 };
  const guint n = 200;

  /* cancel calls at every stage: each callback runs exactly once */
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(JsonArray) args = json_array_new ();

      state.pending++;
      dirty_client_execute (client, "fake:App", i % 2 ? "echo" : "hang", args, NULL,
                            cancellable, many_cb, &state);
      if (i % 3 == 0 || i % 2 == 0)
        g_cancellable_cancel (cancellable);
    }
  g_main_loop_run (loop);
  g_assert_cmpuint (state.n_ok + state.n_cancelled, ==, n);
  g_assert_cmpuint (state.n_cancelled, >=, n / 2);
}

static void
test_fake_timeout (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 start;

  /* no TIMEOUT comes from the fake: the client's own timer (+1 s) ends it */
  dirty_client_set_timeout (client, 100);
  start = g_get_monotonic_time ();
  result = call_sync (client, "hang", NULL, &error);
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 1000 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_TIME_SPAN_SECOND);
  g_assert_nonnull (g_async_queue_timeout_pop (fake->cancels, 5 * G_TIME_SPAN_SECOND));
}

static void
lost_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  guint *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) value = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);

  g_assert_null (value);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  (*pending)--;
}

static void
test_fake_connection_lost (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(JsonNode) again = NULL;
  guint pending = 0;

  for (guint i = 0; i < 3; i++)
    {
      pending++;
      dirty_client_execute (client, "fake:App", "hang", NULL, NULL, NULL, lost_cb, &pending);
    }
  result = call_sync (client, "drop", NULL, &error);
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, fake->path));

  /* the three hanging calls fail too (lost_cb checks the code) */
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);

  /* the next call reconnects */
  g_clear_error (&error);
  again = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_atomic_int_get (&fake->n_accepted), ==, 2);
}

static void
test_fake_connection_lost_async (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  guint pending = 0;

  for (guint i = 0; i < 3; i++)
    {
      pending++;
      dirty_client_execute (client, "fake:App", i == 2 ? "drop" : "hang", NULL, NULL, NULL,
                            lost_cb, &pending);
    }
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_fake_fatal (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = call_sync (client, "fatal", NULL, &error);
  g_autoptr(JsonNode) again = NULL;

  /* ERROR id 0 ends every call with its error */
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "go away");

  g_clear_error (&error);
  again = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);
}

/* The fake's first connection is in, and what it sent then has reached
 * the client's socket by the end of the little wait. */
static void
wait_for_first_accept (FakeArbiter *fake)
{
  wait_for_count (&fake->n_accepted, 1);
  g_usleep (50 * 1000);
}

/* The arbiter refused the client (access, the per-uid cap) while it sat
 * idle, nobody reading: its next call gets that refusal, at once. It
 * neither hangs nor connects again and again (every new connection would
 * be refused the same). */
static void
test_fake_refused_idle (gconstpointer data)
{
  DirtyError code = GPOINTER_TO_INT (data);
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  fake->n_refuse = G_MAXUINT;
  fake->refuse_code = code;
  client = fake_client (fake);
  wait_for_first_accept (fake);
  result = call_sync (client, "echo", NULL, &error);
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, (gint) code);
  g_assert_cmpstr (error->message, ==, "refused");
  g_assert_cmpuint (g_atomic_int_get (&fake->n_accepted), ==, 1);
  g_assert_cmpuint (g_atomic_int_get (&fake->n_requests), ==, 0);
}

/* Any other error the arbiter closes an idle connection with is about
 * that connection: the next call goes out on a new one. */
static void
test_fake_closed_idle (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  fake->n_refuse = 1;
  fake->refuse_code = DIRTY_ERROR_PROTOCOL;
  client = fake_client (fake);
  wait_for_first_accept (fake);
  result = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_assert_cmpuint (g_atomic_int_get (&fake->n_accepted), ==, 2);
}

static void
test_fake_in_flight_limit (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonNode) first = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  ManyState state = { loop, 0, 0, 0 };
  GCancellable *cancellables[3];

  fake->hello_max_in_flight = 2;
  client = fake_client (fake);
  /* the HELLO precedes this reply on the stream, so the limit is known */
  first = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (cancellables); i++)
    {
      cancellables[i] = g_cancellable_new ();
      state.pending++;
      dirty_client_execute (client, "fake:App", "hang", NULL, NULL, cancellables[i],
                            many_cb, &state);
    }
  /* two go out; the third waits for a free slot instead of "busy" */
  wait_for_count (&fake->n_requests, 3);
  g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpuint (g_atomic_int_get (&fake->n_requests), ==, 3);

  g_cancellable_cancel (cancellables[0]);
  wait_for_count (&fake->n_requests, 4);

  g_cancellable_cancel (cancellables[1]);
  g_cancellable_cancel (cancellables[2]);
  g_main_loop_run (loop);
  g_assert_cmpuint (state.n_cancelled, ==, 3);
  for (guint i = 0; i < G_N_ELEMENTS (cancellables); i++)
    g_object_unref (cancellables[i]);
}

static void
echo_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  guint *answered = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) value = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (json_array_get_string_element (json_node_get_array (value), 0), ==, "echo");
  (*answered)++;
}

static void
execute_echo (DirtyClient *client,
              guint       *answered)
{
  g_autoptr(JsonArray) args = json_array_new ();

  json_array_add_string_element (args, "echo");
  dirty_client_execute (client, "fake:App", "echo", args, NULL, NULL, echo_cb, answered);
}

/* An async call's request leaves from its caller's thread, once
 * connected, and its reply is read in its caller's context: the calls
 * are answered while the I/O thread is busy (a busy or sleeping I/O
 * thread made each wait twice before: to send, and to hand the reply
 * back). */
#define ASYNC_WHILE_BUSY 8
static void
test_fake_async_here (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  Gate gate = { .blocked = FALSE, .open = FALSE };
  guint answered = 0;

  fake_warm_up (client);
  gate_hold_io (&gate);
  for (guint i = 0; i < ASYNC_WHILE_BUSY; i++)
    execute_echo (client, &answered);
  wait_for_count (&answered, ASYNC_WHILE_BUSY);
  gate_release (&gate);
  gate_clear (&gate);
}

typedef struct {
  DirtyClient *client;
  JsonNode    *result;
  GError      *error;
} SyncCall;

static gpointer
sync_call_thread (gpointer data)
{
  SyncCall *call = data;

  call->result = call_sync (call->client, "echo", NULL, &call->error);
  return NULL;
}

/* An async call waits in a context nobody runs for now, with the I/O
 * thread busy: a blocking call on another thread still reads its own
 * reply (it never waits for that context), and hands the async call its
 * reply, which the context delivers once it runs. */
static void
test_fake_async_idle_context (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  Gate gate = { .blocked = FALSE, .open = FALSE };
  g_autoptr(GMainContext) context = g_main_context_new ();
  SyncCall call = { client, NULL, NULL };
  GThread *thread;
  guint answered = 0;

  fake_warm_up (client);
  gate_hold_io (&gate);
  /* the async call's context, run only at the end (wait_for_count ()
   * runs the global default context) */
  g_main_context_push_thread_default (context);
  execute_echo (client, &answered);
  wait_for_count (&fake->n_requests, 2);
  thread = g_thread_new ("sync-call", sync_call_thread, &call);
  g_thread_join (thread);
  g_assert_no_error (call.error);
  g_assert_nonnull (call.result);
  g_clear_pointer (&call.result, json_node_unref);
  g_assert_cmpuint (answered, ==, 0);
  wait_for_count_in (context, &answered, 1);
  g_main_context_pop_thread_default (context);
  gate_release (&gate);
  gate_clear (&gate);
}

typedef struct {
  DirtyClient *client;
  guint        n_calls;
  guint        n_ok;   /* atomic */
} ThreadState;

static gpointer
calls_thread (gpointer data)
{
  ThreadState *state = data;

  for (guint i = 0; i < state->n_calls; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) result = call_sync (state->client, "echo", NULL, &error);

      g_assert_no_error (error);
      g_atomic_int_inc (&state->n_ok);
    }
  return NULL;
}

static void
test_fake_threads (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  ThreadState state = { client, 50, 0 };
  GThread *threads[8];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("caller", calls_thread, &state);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpuint (state.n_ok, ==, G_N_ELEMENTS (threads) * state.n_calls);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/client/request/encode", test_request_encode);
  g_test_add_func ("/client/request/empty", test_request_empty);
  g_test_add_func ("/client/request/snapshot", test_request_snapshot);
  g_test_add_func ("/client/request/encode-json", test_request_encode_json);
  g_test_add_func ("/client/request/stream-window", test_request_stream_window);
  g_test_add_func ("/client/request/properties", test_request_properties);
  g_test_add_func ("/client/reply/lookup-bytes", test_reply_lookup_bytes);
  g_test_add_func ("/client/reply/get-bytes", test_reply_get_bytes);
  g_test_add_func ("/client/reply/bodies", test_reply_bodies);
  g_test_add_func ("/client/connect/missing", test_connect_missing);
  g_test_add_func ("/client/connect/missing-async", test_connect_missing_async);
  g_test_add_func ("/client/connect/refused", test_connect_refused);
  g_test_add_func ("/client/connect/lazy", test_connect_lazy);
  g_test_add_func ("/client/connect/cancelled", test_connect_cancelled);
  g_test_add_func ("/client/connect/default-path", test_default_path);
  g_test_add_func ("/client/timeout-property", test_timeout_property);
  g_test_add_func ("/client/checks/request-new", test_checks);
  g_test_add_func ("/client/checks/add-bytes", test_checks_request);
  g_test_add_func ("/client/checks/send", test_checks_send);
  g_test_add_func ("/client/checks/execute", test_checks_execute);
  g_test_add_func ("/client/fake/echo", test_fake_echo);
  g_test_add_func ("/client/fake/app-error", test_fake_app_error);
  g_test_add_func ("/client/fake/no-result", test_fake_no_result);
  g_test_add_func ("/client/fake/late-reply", test_fake_late_reply);
  g_test_add_func ("/client/fake/out-of-order", test_fake_out_of_order_execute);
  g_test_add_func ("/client/fake/cancel-sync", test_fake_cancel_sync);
  g_test_add_func ("/client/fake/cancel-before", test_fake_cancel_before);
  g_test_add_func ("/client/fake/cancel-race", test_fake_cancel_race);
  g_test_add_func ("/client/fake/timeout", test_fake_timeout);
  g_test_add_func ("/client/fake/connection-lost", test_fake_connection_lost);
  g_test_add_func ("/client/fake/connection-lost-async", test_fake_connection_lost_async);
  g_test_add_func ("/client/fake/fatal", test_fake_fatal);
  g_test_add_func ("/client/fake/async-here", test_fake_async_here);
  g_test_add_func ("/client/fake/async-idle-context", test_fake_async_idle_context);
  g_test_add_func ("/client/fake/threads", test_fake_threads);
  g_test_add_func ("/client/fake/in-flight-limit", test_fake_in_flight_limit);
  g_test_add_data_func ("/client/fake/refused-idle/permission-denied",
                        GINT_TO_POINTER (DIRTY_ERROR_PERMISSION_DENIED), test_fake_refused_idle);
  g_test_add_data_func ("/client/fake/refused-idle/busy",
                        GINT_TO_POINTER (DIRTY_ERROR_BUSY), test_fake_refused_idle);
  g_test_add_func ("/client/fake/closed-idle", test_fake_closed_idle);

  return g_test_run ();
}
