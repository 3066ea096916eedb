/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end tests of values a frame cannot carry: a number that is not
 * finite, a string that is not UTF-8, nesting past the protocol's limit
 * of 64 (a reader refuses such a frame as a protocol error and closes
 * the connection), and a reference to bytes the frame does not carry
 * (the reader would find nothing there). None may ever be sent:
 * arguments fail their call in the client before anything goes out, a
 * result fails its call as the app's error, a chunk fails its send, an
 * error message is repaired. Each test keeps a slow call in flight on
 * the same connection, which must still succeed: a client's connection
 * is shared by all its callers. */
#include "config.h"

#include <math.h>
#include <string.h>

#include <dirty.h>

#include "dirty-test-daemon.h"
#include "dirty-test-json.h"

#define ECHO    "echo:DirtyEchoApp"
#define TESTAPP "testapp:DirtyTestApp"

/* one worker with two threads: the slow call holds one, the others run
 * on the other */
#define CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" ECHO ";" TESTAPP "\n" \
  "dirty_workers=1\n" \
  "dirty_threads=2\n"

typedef struct {
  DirtyTestDaemon *daemon;
  DirtyClient     *client;
  GAsyncResult    *slow;    /* the slow call's result, once it is back */
} Fixture;

static void
slow_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->slow = g_object_ref (result);
}

/* The daemon, a client, and a call of 3 s in flight on its connection */
static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonArray) args = json_array_new ();

  f->daemon = dirty_test_daemon_start (CONFIG, NULL);
  f->client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (f->daemon), NULL, &error);
  g_assert_no_error (error);
  json_array_add_double_element (args, 3.0);
  dirty_client_execute (f->client, TESTAPP, "sleep", args, NULL, NULL, slow_done_cb, f);
}

/* The slow call ends as it would have alone: the connection it shares
 * with the calls of the test stayed up. And it was still running in its
 * worker when they were done (its "end" is CLOCK_MONOTONIC, as ours), or
 * its success would prove nothing. */
static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  gint64 tests_done = g_get_monotonic_time ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  while (f->slow == NULL)
    g_main_context_iteration (NULL, TRUE);
  result = dirty_client_execute_finish (f->client, f->slow, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (result));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (result), "end"), >,
                   tests_done);
  g_clear_object (&f->slow);
  g_clear_object (&f->client);
  g_clear_pointer (&f->daemon, dirty_test_daemon_stop);
}

/* @depth arrays, one inside the other, as the one argument */
static JsonArray *
nested_args (guint depth)
{
  JsonArray *args = json_array_new ();

  json_array_add_element (args, dirty_test_nested_arrays (depth));
  return args;
}

/* Every way to call with @args fails with INVALID_ARGUMENT. */
static void
assert_arguments_refused (DirtyClient *client, JsonArray *args)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo");
  g_autoptr(GAsyncResult) executed = NULL;
  g_autoptr(GAsyncResult) streamed = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(DirtyStream) stream = NULL;

  result = dirty_client_execute_sync (client, ECHO, "echo", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_null (result);
  g_clear_error (&error);

  dirty_client_execute (client, ECHO, "echo", args, NULL, NULL, dirty_test_store_result_cb, &executed);
  result = dirty_client_execute_finish (client, dirty_test_wait_result (&executed), &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  dirty_request_set_args (request, args);
  reply = dirty_client_send_sync (client, request, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  stream = dirty_client_stream_sync (client, ECHO, "echo", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  dirty_client_send_stream (client, request, NULL, dirty_test_store_result_cb, &streamed);
  stream = dirty_client_send_stream_finish (client, dirty_test_wait_result (&streamed), &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
}

static void
test_arguments (Fixture *f, gconstpointer data)
{
  g_autoptr(JsonArray) nan = json_array_new ();
  g_autoptr(JsonArray) bytes = json_array_new ();
  g_autoptr(JsonArray) dangling = json_array_new ();
  g_autoptr(JsonArray) deep = nested_args (63);
  g_autoptr(JsonArray) deepest = nested_args (62);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  json_array_add_double_element (nan, NAN);
  json_array_add_string_element (bytes, "bad \xff byte");
  json_array_add_element (dangling, json_from_string ("{\"$bytes\": 0}", NULL));
  assert_arguments_refused (f->client, nan);
  assert_arguments_refused (f->client, bytes);
  /* a reference to bytes the request does not carry */
  assert_arguments_refused (f->client, dangling);
  /* 63 arrays in the arguments' array in the request's object: 65 */
  assert_arguments_refused (f->client, deep);

  /* 64 in all is the limit, not past it: the echo (of its one
   * argument) comes back whole */
  result = dirty_client_execute_sync (f->client, ECHO, "echo", deepest, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (json_node_equal (result, json_array_get_element (deepest, 0)));
}

static void
assert_result_refused (DirtyClient *client, const char *kind, const char *message)
{
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  json_array_add_string_element (args, kind);
  result = dirty_client_execute_sync (client, TESTAPP, "unsendable", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_assert_nonnull (strstr (error->message, message));
}

static void
test_results (Fixture *f, gconstpointer data)
{
  assert_result_refused (f->client, "nan", "not finite");
  assert_result_refused (f->client, "utf8", "not valid UTF-8");
  assert_result_refused (f->client, "deep", "nested deeper than 64");
  assert_result_refused (f->client, "bytes", "refers to bytes the frame does not carry");
  /* an error message is the app's words: repaired, U+FFFD for the byte */
  assert_result_refused (f->client, "error", "bad \xef\xbf\xbd byte");
  /* past the frame's limits: the arbiter would have closed the worker's
   * connection for it, killing the slow call too */
  assert_result_refused (f->client, "big", "exceeds the limit of 67108864 bytes");
  assert_result_refused (f->client, "many", "65 attachments, more than the limit of 64");
}

/* An error's message and detail are cut (at a character) to 64 KiB and
 * 1 MiB, saying how much went: megabytes of them made a frame past the
 * limit, which cost the worker its connection. */
static void
test_long_error (Fixture *f, gconstpointer data)
{
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  const char *detail;

  json_array_add_string_element (args, "long-error");
  result = dirty_client_execute_sync (f->client, TESTAPP, "unsendable", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  /* "a" and 32,767 "é" fit in 65,536 bytes; 7,233 "é" went */
  g_assert_cmpuint (strlen (error->message), ==, 65535 + strlen ("… (14466 more bytes)"));
  g_assert_true (g_str_has_suffix (error->message, "é… (14466 more bytes)"));
  detail = dirty_error_get_detail (error);
  g_assert_nonnull (detail);
  g_assert_true (g_str_has_suffix (detail, "d… (1048576 more bytes)"));
}

/* The NaN chunk (or, "big", 64 MiB of JSON text) is refused to the app,
 * not sent, and the stream goes on. */
static void
assert_chunk_refused (DirtyClient *client, const char *kind)
{
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyStream) stream = NULL;
  g_autoptr(JsonNode) chunk = NULL;
  g_autoptr(JsonNode) end = NULL;
  g_autofree char *refused = g_strdup_printf ("%s %d", g_quark_to_string (DIRTY_ERROR),
                                              DIRTY_ERROR_INVALID_ARGUMENT);

  json_array_add_string_element (args, kind);
  stream = dirty_client_stream_sync (client, TESTAPP, "unsendable_stream", args, NULL, NULL,
                                     &error);
  g_assert_no_error (error);
  chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (chunk), ==, refused);
  end = dirty_stream_next_chunk_sync (stream, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (end);
}

static void
test_chunk (Fixture *f, gconstpointer data)
{
  assert_chunk_refused (f->client, "nan");
  assert_chunk_refused (f->client, "big");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/unsendable/arguments", Fixture, NULL, fixture_set_up, test_arguments,
              fixture_tear_down);
  g_test_add ("/unsendable/results", Fixture, NULL, fixture_set_up, test_results,
              fixture_tear_down);
  g_test_add ("/unsendable/chunk", Fixture, NULL, fixture_set_up, test_chunk, fixture_tear_down);
  g_test_add ("/unsendable/long-error", Fixture, NULL, fixture_set_up, test_long_error,
              fixture_tear_down);
  return g_test_run ();
}
