/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end tests of streaming: DirtyStream reading the chunks of real
 * actions (tests/apps/streamapp.c) through the real dirty-arbiter and
 * dirty-worker processes. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <dirty.h>

#include "dirty-frame.h"
#include "dirty-test-daemon.h"

#define STREAMAPP "streamapp:DirtyStreamTestApp"

#define SHARED_CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" STREAMAPP "\n" \
  "dirty_workers=2\n" \
  "dirty_threads=4\n"

/* One worker with one slot: the next call runs only once the last one
 * has really ended. */
#define SINGLE_CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" STREAMAPP "\n" \
  "dirty_workers=1\n" \
  "dirty_threads=1\n"

static DirtyTestDaemon *shared_daemon;

static DirtyClient *
connect_to (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  DirtyClient *client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon),
                                               NULL, &error);
  g_assert_no_error (error);
  return client;
}

static JsonObject *
json_kwargs (const char *json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = json_from_string (json ? json : "{}", &error);

  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static DirtyStream *
open_stream (DirtyClient *client, const char *action, const char *kwargs_json,
             GCancellable *cancellable, GError **error)
{
  g_autoptr(JsonObject) kwargs = json_kwargs (kwargs_json);

  return dirty_client_stream_sync (client, STREAMAPP, action, NULL, kwargs, cancellable, error);
}

static DirtyStream *
open_stream_ok (DirtyClient *client, const char *action, const char *kwargs_json)
{
  g_autoptr(GError) error = NULL;
  DirtyStream *stream = open_stream (client, action, kwargs_json, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (stream);
  return stream;
}

/* Reads integer chunks 0, 1, ... and returns how many came before the
 * end (or the error, left in @error). */
static gint64
read_ints (DirtyStream *stream, GError **error)
{
  gint64 n = 0;

  for (;;)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, error);

      if (chunk == NULL)
        return n;
      g_assert_cmpint (json_node_get_value_type (chunk), ==, G_TYPE_INT64);
      g_assert_cmpint (json_node_get_int (chunk), ==, n);
      n++;
    }
}

static gint64
get_member_int (JsonNode *node, const char *member)
{
  return json_object_get_int_member (json_node_get_object (node), member);
}

/* ---- content ---------------------------------------------------------- */

static void
test_order (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = open_stream_ok (client, "count", "{\"n\": 500}");
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (read_ints (stream, &error), ==, 500);
  g_assert_no_error (error);
}

/* A producer's thread sends its stream's END itself when no chunk is
 * left for the worker's main loop to write, and leaves it to the loop
 * otherwise: either way the END comes after every chunk. Many short
 * streams, so that some end with chunks still queued. */
static void
test_end_after_every_chunk (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);

  for (guint i = 0; i < 300; i++)
    {
      g_autoptr(DirtyStream) stream = open_stream_ok (client, "count", "{\"n\": 40}");
      g_autoptr(GError) error = NULL;

      g_assert_cmpint (read_ints (stream, &error), ==, 40);
      g_assert_no_error (error);
    }
}

static void
test_empty (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = open_stream_ok (client, "count", "{\"n\": 0}");
  g_autoptr(GError) error = NULL;
  guint8 buffer[16];

  g_assert_cmpint (read_ints (stream, &error), ==, 0);
  g_assert_no_error (error);
  /* the end stays the end */
  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (stream), buffer, sizeof buffer,
                                        NULL, &error), ==, 0);
  g_assert_no_error (error);
}

static void
test_error_after_chunks (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GError) error = NULL;
  const char *actions[] = { "count", "count_async" };

  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    {
      g_autoptr(DirtyStream) stream = open_stream_ok (client, actions[i],
                                                      "{\"n\": 100, \"error_after\": 7}");

      g_assert_cmpint (read_ints (stream, &error), ==, 7);
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
      g_assert_nonnull (strstr (error->message, "failed after 7 chunks"));
      g_clear_error (&error);
    }
}

static void
test_json_chunks (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) objects = open_stream_ok (client, "count",
                                                   "{\"n\": 50, \"kind\": \"object\"}");
  g_autoptr(DirtyStream) floats = open_stream_ok (client, "count",
                                                  "{\"n\": 50, \"kind\": \"float\"}");
  g_autoptr(GError) error = NULL;

  for (gint64 i = 0; i < 50; i++)
    {
      g_autoptr(JsonNode) object = dirty_stream_next_chunk_sync (objects, NULL, &error);
      g_autoptr(JsonNode) number = dirty_stream_next_chunk_sync (floats, NULL, &error);
      g_autofree char *text = NULL;

      g_assert_no_error (error);
      g_assert_cmpint (get_member_int (object, "i"), ==, i);
      text = json_to_string (object, FALSE);
      g_assert_nonnull (strstr (text, "\"list\":[\"a\",{\"deep\":true},null]"));
      g_assert_cmpfloat_with_epsilon (
        json_object_get_double_member (json_object_get_object_member (json_node_get_object (object),
                                                                      "nested"), "x"),
        i * 1.5e-3, 1e-12);
      g_assert_cmpint (json_node_get_value_type (number), ==, G_TYPE_DOUBLE);
      g_assert_cmpfloat (json_node_get_double (number), ==, i + 0.25);
    }
  g_assert_null (dirty_stream_next_chunk_sync (objects, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (dirty_stream_next_chunk_sync (floats, NULL, &error));
  g_assert_no_error (error);
}

static void
check_bytes_stream (DirtyClient *client, const char *action)
{
  g_autofree char *kwargs = g_strdup_printf ("{\"n\": 20, \"kind\": \"bytes\", \"size\": 3000}");
  g_autoptr(DirtyStream) chunks = open_stream_ok (client, action, kwargs);
  g_autoptr(DirtyStream) raw = open_stream_ok (client, action, kwargs);
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *all = g_malloc (20 * 3000 + 1);
  gsize n_read = 0;

  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (chunks, NULL, &error);
      GBytes *bytes;
      const guint8 *data;

      g_assert_no_error (error);
      bytes = dirty_stream_lookup_bytes (chunks, chunk);
      g_assert_nonnull (bytes);
      g_assert_cmpuint (g_bytes_get_size (bytes), ==, 3000);
      data = g_bytes_get_data (bytes, NULL);
      g_assert_cmpuint (data[0], ==, i);
      g_assert_cmpuint (data[2999], ==, i);
    }
  g_assert_null (dirty_stream_next_chunk_sync (chunks, NULL, &error));
  g_assert_no_error (error);

  /* the InputStream face: the raw bytes back to back */
  g_assert_true (g_input_stream_read_all (G_INPUT_STREAM (raw), all, 20 * 3000 + 1, &n_read,
                                          NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_read, ==, 20 * 3000);
  for (guint i = 0; i < 20; i++)
    g_assert_cmpuint (all[i * 3000 + 1500], ==, i);
}

static void
test_bytes_chunks (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);

  check_bytes_stream (client, "count");
  check_bytes_stream (client, "count_async");
}

static void
test_async_producer (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) paced = open_stream_ok (client, "count_async", "{\"n\": 1200}");
  /* 1200 queued at once with the end behind them: the window (512) holds
   * them back, yet all arrive, in order, before the end */
  g_autoptr(DirtyStream) burst = open_stream_ok (client, "count_async",
                                                 "{\"n\": 1200, \"burst\": true}");
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (read_ints (paced, &error), ==, 1200);
  g_assert_no_error (error);
  g_assert_cmpint (read_ints (burst, &error), ==, 1200);
  g_assert_no_error (error);
}

/* ---- the GInputStream face -------------------------------------------- */

static char *
expected_lines (guint n)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append_printf (text, "%u\n", i);
  return g_string_free (text, FALSE);
}

static void
test_read_all (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = open_stream_ok (client, "count",
                                                  "{\"n\": 200, \"kind\": \"string\"}");
  g_autoptr(DirtyStream) ints = open_stream_ok (client, "count", "{\"n\": 12}");
  g_autofree char *expected = expected_lines (200);
  g_autofree char *buffer = g_malloc0 (strlen (expected) + 16);
  g_autoptr(GError) error = NULL;
  gsize n_read = 0;

  g_assert_true (g_input_stream_read_all (G_INPUT_STREAM (stream), buffer,
                                          strlen (expected) + 15, &n_read, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, expected);

  /* other JSON values read as lines of JSON text: without the newline
   * they ran together, "01234567891011" */
  memset (buffer, 0, 32);
  g_assert_true (g_input_stream_read_all (G_INPUT_STREAM (ints), buffer, 31, &n_read,
                                          NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n");
}

static void
test_data_input_stream_lines (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = open_stream_ok (client, "count",
                                                  "{\"n\": 100, \"kind\": \"string\"}");
  g_autoptr(GDataInputStream) data = g_data_input_stream_new (G_INPUT_STREAM (stream));
  g_autoptr(GError) error = NULL;
  guint n = 0;
  char *line;

  while ((line = g_data_input_stream_read_line_utf8 (data, NULL, NULL, &error)) != NULL)
    {
      g_autofree char *owned = line;
      g_autofree char *expected = g_strdup_printf ("%u", n);

      g_assert_cmpstr (owned, ==, expected);
      n++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 100);
}

typedef struct {
  GMainLoop *loop;
  GString   *text;
  GError    *error;
  guint      n_chunks;
  GThread   *thread;
  gboolean   other_thread;
  char       buffer[7];
} ReadState;

static void read_next (DirtyStream *stream, ReadState *state);

static void
read_async_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ReadState *state = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &state->error);

  /* the pollable path: callbacks on this thread's loop, never a pool */
  state->other_thread |= g_thread_self () != state->thread;
  if (n <= 0)
    {
      g_main_loop_quit (state->loop);
      return;
    }
  g_string_append_len (state->text, state->buffer, n);
  read_next (DIRTY_STREAM (source), state);
}

static void
read_next (DirtyStream *stream, ReadState *state)
{
  /* an odd buffer size: chunks are split and joined */
  g_input_stream_read_async (G_INPUT_STREAM (stream), state->buffer, sizeof state->buffer,
                             G_PRIORITY_DEFAULT, NULL, read_async_cb, state);
}

static void
test_read_async_pollable (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = open_stream_ok (client, "count",
                                                  "{\"n\": 300, \"kind\": \"string\"}");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autofree char *expected = expected_lines (300);
  ReadState state = { loop, g_string_new (NULL), NULL, 0, g_thread_self (), FALSE, { 0 } };

  g_assert_true (G_IS_POLLABLE_INPUT_STREAM (stream));
  g_assert_true (g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (stream)));
  read_next (stream, &state);
  g_main_loop_run (loop);
  g_assert_no_error (state.error);
  g_assert_false (state.other_thread);
  g_assert_cmpstr (state.text->str, ==, expected);
  g_string_free (state.text, TRUE);
}

static void
next_chunk_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ReadState *state = user_data;
  g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_finish (DIRTY_STREAM (source), result,
                                                              &state->error);

  if (chunk == NULL)
    {
      g_main_loop_quit (state->loop);
      return;
    }
  g_assert_cmpint (json_node_get_int (chunk), ==, state->n_chunks);
  state->n_chunks++;
  dirty_stream_next_chunk (DIRTY_STREAM (source), NULL, next_chunk_cb, state);
}

static void
stream_started_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ReadState *state = user_data;
  g_autoptr(DirtyStream) stream = dirty_client_stream_finish (DIRTY_CLIENT (source), result,
                                                              &state->error);

  g_assert_no_error (state->error);
  dirty_stream_next_chunk (stream, NULL, next_chunk_cb, state);
}

static void
test_next_chunk_async (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(JsonObject) kwargs = json_kwargs ("{\"n\": 400, \"interval\": 0}");
  ReadState state = { loop, NULL, NULL, 0, g_thread_self (), FALSE, { 0 } };

  /* everything async on the main loop: the start and every chunk */
  dirty_client_stream (client, STREAMAPP, "count", NULL, kwargs, NULL, stream_started_cb, &state);
  g_main_loop_run (loop);
  g_assert_no_error (state.error);
  g_assert_cmpuint (state.n_chunks, ==, 400);
}

static void
stream_refused_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ReadState *state = user_data;
  g_autoptr(DirtyStream) stream = dirty_client_stream_finish (DIRTY_CLIENT (source), result,
                                                              &state->error);

  g_assert_null (stream);
  state->other_thread = g_thread_self () != state->thread;
  g_main_loop_quit (state->loop);
}

/* An error before any chunk ends the async start: the finish function
 * gives it, in the caller's main context. */
static void
test_async_start_error (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(JsonArray) args = json_array_new ();
  ReadState state = { loop, NULL, NULL, 0, g_thread_self (), FALSE, { 0 } };

  json_array_add_int_element (args, 1);
  dirty_client_stream (client, STREAMAPP, "no_such_action", args, NULL, NULL,
                       stream_refused_cb, &state);
  g_main_loop_run (loop);
  g_assert_error (state.error, DIRTY_ERROR, DIRTY_ERROR_ACTION_NOT_FOUND);
  g_assert_nonnull (strstr (state.error->message, "no_such_action"));
  g_assert_false (state.other_thread);
  g_clear_error (&state.error);
}

/* ---- mismatches --------------------------------------------------------- */

static void
test_mismatch (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(DirtyStream) stream = NULL;
  g_autoptr(JsonNode) chunk = NULL;

  /* execute on a streaming action: a typed error, and the action never ran */
  result = dirty_client_execute_sync (client, STREAMAPP, "count", NULL, NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "stream"));
  g_clear_error (&error);
  result = dirty_client_execute_sync (client, STREAMAPP, "count_async", NULL, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* stream on a single-value action: the value is the one chunk */
  stream = open_stream_ok (client, "value", NULL);
  chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (get_member_int (chunk, "v"), ==, 42);
  g_assert_null (dirty_stream_next_chunk_sync (stream, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&stream);

  /* an error before any chunk comes from the start */
  stream = open_stream (client, "no_such_action", NULL, NULL, &error);
  g_assert_null (stream);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_ACTION_NOT_FOUND);
}

/* ---- cancel ------------------------------------------------------------- */

typedef enum {
  STOP_CANCELLABLE,
  STOP_CLOSE,
  STOP_UNREF,
} StopHow;

static void
check_cancel (StopHow how)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (SINGLE_CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) report = NULL;
  DirtyStream *stream;
  gint64 gone, served, fired, stopped;

  stream = open_stream (client, "count", "{\"n\": -1}", cancellable, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
      g_assert_no_error (error);
    }

  gone = g_get_monotonic_time ();
  switch (how)
    {
    case STOP_CANCELLABLE:
      g_cancellable_cancel (cancellable);
      {
        /* the reader learns it after the chunks it already had */
        g_autoptr(JsonNode) chunk = NULL;
        while ((chunk = dirty_stream_next_chunk_sync (stream, NULL, &error)) != NULL)
          g_clear_pointer (&chunk, json_node_unref);
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_clear_error (&error);
      }
      g_object_unref (stream);
      break;
    case STOP_CLOSE:
      g_assert_true (g_input_stream_close (G_INPUT_STREAM (stream), NULL, &error));
      g_object_unref (stream);
      break;
    case STOP_UNREF:
    default:
      g_object_unref (stream);
      break;
    }

  /* the only slot of the only worker serves the next call: the endless
   * action has returned */
  report = dirty_client_execute_sync (client, STREAMAPP, "cancel_report", NULL, NULL, NULL,
                                      &error);
  served = g_get_monotonic_time ();
  g_assert_no_error (error);
  fired = get_member_int (report, "fired");
  stopped = get_member_int (report, "stopped");
  g_test_message ("reader gone -> cancel seen %" G_GINT64_FORMAT " us, action returned %"
                  G_GINT64_FORMAT " us, next call served %" G_GINT64_FORMAT " us",
                  fired - gone, stopped - gone, served - gone);
  g_assert_cmpint (fired, >=, gone);
  g_assert_cmpint (stopped, >=, fired);
  /* the action's own reaction: from its cancellable firing to its return */
  g_assert_cmpint (stopped - fired, <, 100 * 1000);
  /* the whole way, from the reader to the worker; generous for a loaded
   * machine (typically a few ms) */
  g_assert_cmpint (stopped - gone, <, 2 * G_USEC_PER_SEC);
  g_assert_cmpint (served - gone, <, 3 * G_USEC_PER_SEC);
}

static void
test_cancel_cancellable (void)
{
  check_cancel (STOP_CANCELLABLE);
}

static void
test_cancel_close (void)
{
  check_cancel (STOP_CLOSE);
}

static void
test_cancel_unref (void)
{
  check_cancel (STOP_UNREF);
}

/* ---- deadlines ---------------------------------------------------------- */

static DirtyStream *
open_with_timeout (DirtyClient *client, const char *kwargs_json, guint timeout_ms)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (STREAMAPP, "count");
  g_autoptr(JsonObject) kwargs = json_kwargs (kwargs_json);
  g_autoptr(GError) error = NULL;
  DirtyStream *stream;

  dirty_request_set_kwargs (request, kwargs);
  dirty_request_set_timeout (request, timeout_ms);
  stream = dirty_client_send_stream_sync (client, request, NULL, &error);
  g_assert_no_error (error);
  return stream;
}

static void
test_deadline (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = open_with_timeout (client, "{\"n\": -1, \"interval\": 0.05}",
                                                     1000);
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  gint64 n = read_ints (stream, &error);

  /* chunks flowed until the deadline, then TIMEOUT */
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_cmpint (n, >, 3);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

static void
test_no_idle_limit (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  /* 1.5 s between chunks, 3 s in all, under a 5 s deadline */
  g_autoptr(DirtyStream) stream = open_with_timeout (client, "{\"n\": 3, \"interval\": 1.5}",
                                                     5000);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (read_ints (stream, &error), ==, 3);
  g_assert_no_error (error);
}

/* ---- backpressure ------------------------------------------------------- */

static gint64
rss_kib (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *contents = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  line = strstr (contents, "VmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoll (line + strlen ("VmRSS:"), NULL, 10);
}

static void
test_backpressure (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (SINGLE_CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(DirtyStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) workers = NULL;
  GPid arbiter = dirty_test_daemon_get_pid (daemon);
  GPid worker;
  gint64 arbiter_before, worker_before, arbiter_after, worker_after;

  /* a warm-up stream, so that first-use allocations are not counted */
  stream = open_stream_ok (client, "count", "{\"n\": 1000}");
  g_assert_cmpint (read_ints (stream, &error), ==, 1000);
  g_clear_object (&stream);

  workers = dirty_test_list_children (arbiter);
  g_assert_cmpuint (workers->len, ==, 1);
  worker = g_array_index (workers, GPid, 0);

  /* an action that tries to send a million chunks, read one per 50 ms */
  stream = open_stream_ok (client, "count", "{\"n\": 1000000}");
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
      g_assert_no_error (error);
    }
  arbiter_before = rss_kib (arbiter);
  worker_before = rss_kib (worker);
  for (guint i = 5; i < 45; i++)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (json_node_get_int (chunk), ==, i);
      g_usleep (50 * 1000);
    }
  arbiter_after = rss_kib (arbiter);
  worker_after = rss_kib (worker);
  g_test_message ("RSS growth over 2 s: arbiter %" G_GINT64_FORMAT " KiB, worker %"
                  G_GINT64_FORMAT " KiB", arbiter_after - arbiter_before,
                  worker_after - worker_before);
  /* unbounded, the worker would have sent ~1e6 chunks (~100 MB) by now */
  g_assert_cmpint (arbiter_after - arbiter_before, <, 4 * 1024);
  g_assert_cmpint (worker_after - worker_before, <, 4 * 1024);
}

/* Reads @stream to its end through the GInputStream face: chunk i is
 * @size bytes of (i & 0xff), as streamapp's "bytes" kind sends them,
 * from chunk @first on. Returns how many it read. */
static guint
read_byte_chunks (DirtyStream *stream,
                  gsize        size,
                  guint        first)
{
  g_autofree guint8 *chunk = g_malloc (size);
  g_autoptr(GError) error = NULL;
  gsize n_read = 0;
  guint n = first;

  while (g_input_stream_read_all (G_INPUT_STREAM (stream), chunk, size, &n_read, NULL, &error) &&
         n_read == size)
    {
      g_assert_cmpuint (chunk[0], ==, n & 0xff);
      g_assert_cmpuint (chunk[size - 1], ==, n & 0xff);
      n++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n_read, ==, 0);
  return n - first;
}

/* The credit window counts chunks; big chunks are held back by bytes
 * too (DIRTY_STREAM_BYTES_AHEAD): a reader that does not read holds a
 * few MiB, not a window of chunks. And chunks bigger than that budget
 * still flow, one at a time. */
static void
test_bytes_ahead (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(DirtyStream) stream = NULL;
  g_autoptr(DirtyStream) huge = NULL;
  g_autoptr(JsonNode) first = NULL;
  g_autoptr(GError) error = NULL;
  gint64 before, held;

  before = rss_kib (getpid ());
  /* 64 chunks of 1 MiB: within the window of 512, 64 MiB if unbounded */
  stream = open_stream_ok (client, "count", "{\"n\": 64, \"kind\": \"bytes\", \"size\": 1048576}");
  first = dirty_stream_next_chunk_sync (stream, NULL, &error);
  g_assert_no_error (error);
  g_usleep (500 * 1000);
  held = rss_kib (getpid ()) - before;
  g_test_message ("a reader that stopped after the first of 64 chunks of 1 MiB holds %"
                  G_GINT64_FORMAT " KiB more (budget %d KiB ahead)", held,
                  DIRTY_STREAM_BYTES_AHEAD / 1024);
  g_assert_cmpint (held, <, 16 * 1024);
  g_assert_cmpuint (read_byte_chunks (stream, 1048576, 1), ==, 63);

  /* 5 chunks of 3 MiB, each over the budget alone */
  huge = open_stream_ok (client, "count", "{\"n\": 5, \"kind\": \"bytes\", \"size\": 3145728}");
  g_assert_cmpuint (read_byte_chunks (huge, 3145728, 0), ==, 5);
}

/* ---- a worker dying mid-stream ------------------------------------------ */

static void
test_worker_killed (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (SINGLE_CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(DirtyStream) stream = open_stream_ok (client, "count",
                                                  "{\"n\": 100, \"crash_after\": 6}");
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (read_ints (stream, &error), ==, 6);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_WORKER_LOST);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/stream/order-500", test_order);
  g_test_add_func ("/stream/end-after-every-chunk", test_end_after_every_chunk);
  g_test_add_func ("/stream/empty", test_empty);
  g_test_add_func ("/stream/error-after-chunks", test_error_after_chunks);
  g_test_add_func ("/stream/json-chunks", test_json_chunks);
  g_test_add_func ("/stream/bytes-chunks", test_bytes_chunks);
  g_test_add_func ("/stream/async-producer", test_async_producer);
  g_test_add_func ("/stream/input-stream/read-all", test_read_all);
  g_test_add_func ("/stream/input-stream/data-input-lines", test_data_input_stream_lines);
  g_test_add_func ("/stream/input-stream/read-async-pollable", test_read_async_pollable);
  g_test_add_func ("/stream/next-chunk-async", test_next_chunk_async);
  g_test_add_func ("/stream/async-start-error", test_async_start_error);
  g_test_add_func ("/stream/mismatch", test_mismatch);
  g_test_add_func ("/stream/deadline/total", test_deadline);
  g_test_add_func ("/stream/deadline/no-idle-limit", test_no_idle_limit);
  g_test_add_func ("/stream/cancel/cancellable", test_cancel_cancellable);
  g_test_add_func ("/stream/cancel/close", test_cancel_close);
  g_test_add_func ("/stream/cancel/unref", test_cancel_unref);
  g_test_add_func ("/stream/backpressure", test_backpressure);
  g_test_add_func ("/stream/bytes-ahead", test_bytes_ahead);
  g_test_add_func ("/stream/worker-killed", test_worker_killed);

  shared_daemon = dirty_test_daemon_start (SHARED_CONFIG, NULL);
  status = g_test_run ();
  dirty_test_daemon_stop (shared_daemon);
  return status;
}
