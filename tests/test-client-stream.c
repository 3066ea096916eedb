/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Unit tests of the client's streamed calls against the fake arbiter
 * (dirty-test-fake.h): where a stream's first frame is read (its
 * blocked caller's thread, an async start's context, the I/O thread),
 * how the frames after it keep their order, and how a stream that ends
 * before any chunk ends its start.
 *
 * Links the library's objects directly (not the shared library), since
 * it uses the private headers: see tests/meson.build. */

#include "config.h"

#include "dirty.h"
#include "dirty-test-fake.h"

/* streams started at once while the I/O thread is held busy */
#define STREAMS_WHILE_BUSY 8

/* A short stream's chunk and END come in one read: its caller reads
 * both and ends the stream on its own thread. Each frees its in-flight
 * slot (the arbiter allows one call at a time here), none sends a
 * CANCEL, and the client goes on serving calls. */
static void
test_fake_short_streams (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonNode) first = NULL;
  g_autoptr(JsonNode) last = NULL;
  g_autoptr(GError) error = NULL;

  fake->hello_max_in_flight = 1;
  client = fake_client (fake);
  /* a slot never freed would hold the next call back: it times out */
  dirty_client_set_timeout (client, 5000);
  first = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);

  for (gint64 i = 0; i < 20; i++)
    {
      g_autoptr(JsonArray) args = json_array_new ();
      g_autoptr(DirtyStream) stream = NULL;
      g_autoptr(JsonNode) chunk = NULL;
      g_autoptr(JsonNode) end = NULL;

      json_array_add_int_element (args, i);
      stream = dirty_client_stream_sync (client, "fake:App", "short", args, NULL, NULL, &error);
      g_assert_no_error (error);
      chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (chunk);
      g_assert_cmpint (json_array_get_int_element (json_node_get_array (chunk), 0), ==, i);
      end = dirty_stream_next_chunk_sync (stream, NULL, &error);
      g_assert_no_error (error);
      g_assert_null (end);
    }
  last = call_sync (client, "echo", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_async_queue_length (fake->cancels), ==, 0);
  g_assert_cmpuint (g_atomic_int_get (&fake->n_requests), ==, 22);
}

/* A stream's caller reads chunks 1 and 2 in one read and hands the
 * stream to the I/O thread, which is busy. Another blocking call then
 * reads chunk 3 and the END, which reach the I/O thread before the
 * handover. The reader still gets 1, 2, 3, then the end. */
static void
test_fake_stream_read_in_turns (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(DirtyStream) stream = NULL;
  g_autoptr(JsonNode) finished = NULL;
  g_autoptr(JsonNode) end = NULL;
  g_autoptr(GError) error = NULL;
  Gate gate = { .blocked = FALSE, .open = FALSE };

  fake_warm_up (client);
  gate_hold_io (&gate);

  stream = dirty_client_stream_sync (client, "fake:App", "split", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  finished = call_sync (client, "finish", NULL, &error);
  g_assert_no_error (error);

  gate_release (&gate);
  for (gint64 i = 1; i <= 3; i++)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (chunk);
      g_assert_cmpint (json_node_get_int (chunk), ==, i);
    }
  end = dirty_stream_next_chunk_sync (stream, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (end);
  gate_clear (&gate);
}

typedef struct {
  DirtyStream *stream;
  GError      *error;
  guint        done;
} StreamStart;

static void
stream_start_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  StreamStart *start = user_data;

  start->stream = dirty_client_stream_finish (DIRTY_CLIENT (source), result, &start->error);
  start->done = 1;
}

static void
stream_start (DirtyClient  *client,
              const char   *action,
              gint64        arg,
              GCancellable *cancellable,
              StreamStart  *start)
{
  g_autoptr(JsonArray) args = json_array_new ();

  json_array_add_int_element (args, arg);
  dirty_client_stream (client, "fake:App", action, args, NULL, cancellable, stream_start_cb,
                       start);
}

static void
stream_start_clear (StreamStart *start)
{
  g_clear_object (&start->stream);
  g_clear_error (&start->error);
}

/* An async stream's request leaves from its caller's thread, and its
 * first chunk is read in its caller's context: the streams start, with
 * their chunk, while the I/O thread is busy; their ends come once it is
 * free (or with the chunk). */
static void
test_fake_async_stream_here (void)
{
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GError) error = NULL;
  Gate gate = { .blocked = FALSE, .open = FALSE };
  StreamStart starts[STREAMS_WHILE_BUSY] = { { 0 } };

  fake_warm_up (client);
  gate_hold_io (&gate);
  for (guint i = 0; i < STREAMS_WHILE_BUSY; i++)
    stream_start (client, "short", i, NULL, &starts[i]);
  for (guint i = 0; i < STREAMS_WHILE_BUSY; i++)
    {
      g_autoptr(JsonNode) chunk = NULL;

      wait_for_count (&starts[i].done, 1);
      g_assert_no_error (starts[i].error);
      chunk = dirty_stream_next_chunk_sync (starts[i].stream, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (chunk);
      g_assert_cmpint (json_array_get_int_element (json_node_get_array (chunk), 0), ==, i);
    }
  gate_release (&gate);
  for (guint i = 0; i < STREAMS_WHILE_BUSY; i++)
    {
      g_autoptr(JsonNode) end = dirty_stream_next_chunk_sync (starts[i].stream, NULL, &error);

      g_assert_no_error (error);
      g_assert_null (end);
      stream_start_clear (&starts[i]);
    }
  gate_clear (&gate);
  g_assert_cmpint (g_async_queue_length (fake->cancels), ==, 0);
}

/* Starts @action as a stream, blocking (@async FALSE) or not, on a
 * connected client: the start's error, or NULL and the stream's first
 * chunk in @first (NULL: it ended at once) */
static GError *
stream_start_ends (DirtyClient   *client,
                   const char    *action,
                   GCancellable  *cancellable,
                   gboolean       async,
                   JsonNode     **first)
{
  g_autoptr(GError) error = NULL;
  StreamStart start = { NULL, NULL, 0 };

  fake_warm_up (client);
  if (async)
    {
      stream_start (client, action, 0, cancellable, &start);
      wait_for_count (&start.done, 1);
    }
  else
    {
      g_autoptr(JsonArray) args = json_array_new ();

      json_array_add_int_element (args, 0);
      start.stream = dirty_client_stream_sync (client, "fake:App", action, args, NULL,
                                               cancellable, &start.error);
    }
  g_assert_true ((start.stream == NULL) != (start.error == NULL));
  if (start.stream != NULL)
    {
      *first = dirty_stream_next_chunk_sync (start.stream, NULL, &error);
      g_assert_no_error (error);
    }
  g_clear_object (&start.stream);
  return start.error;
}

/* Streams that end before any chunk, started blocking or async: the
 * start fails as the I/O thread's path fails it (an ERROR, the
 * connection lost, the call's timeout, a cancel), or the stream is empty
 * (an END) */
static void
test_fake_stream_start_ends (gconstpointer data)
{
  gboolean async = GPOINTER_TO_INT (data);
  g_autoptr(FakeArbiter) fake = fake_arbiter_new ();
  g_autoptr(DirtyClient) client = fake_client (fake);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CancelLater later = { cancellable, 100 };
  g_autoptr(JsonNode) first = NULL;
  g_autoptr(GError) error = NULL;
  GThread *thread;

  error = stream_start_ends (client, "fail", NULL, async, &first);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_clear_error (&error);

  error = stream_start_ends (client, "empty", NULL, async, &first);
  g_assert_no_error (error);
  g_assert_null (first);

  error = stream_start_ends (client, "drop", NULL, async, &first);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_clear_error (&error);

  dirty_client_set_timeout (client, 200);
  error = stream_start_ends (client, "hang", NULL, async, &first);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_clear_error (&error);
  dirty_client_set_timeout (client, 0);

  thread = g_thread_new ("cancel", cancel_later_thread, &later);
  error = stream_start_ends (client, "hang", cancellable, async, &first);
  g_thread_join (thread);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* the arbiter heard of both calls given up */
  for (guint i = 0; i < 2; i++)
    g_assert_nonnull (g_async_queue_timeout_pop (fake->cancels, 5 * G_TIME_SPAN_SECOND));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/client/fake/short-streams", test_fake_short_streams);
  g_test_add_func ("/client/fake/stream-read-in-turns", test_fake_stream_read_in_turns);
  g_test_add_func ("/client/fake/async-stream-here", test_fake_async_stream_here);
  g_test_add_data_func ("/client/fake/stream-start-ends/blocking", GINT_TO_POINTER (FALSE),
                        test_fake_stream_start_ends);
  g_test_add_data_func ("/client/fake/stream-start-ends/async", GINT_TO_POINTER (TRUE),
                        test_fake_stream_start_ends);

  return g_test_run ();
}
