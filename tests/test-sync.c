/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end tests of blocking calls read on the calling thread
 * (client/dirty-client-sync.c, protocol/dirty-connection-sync.c): while
 * the client's I/O thread has no call of its own in flight, the blocked
 * callers take turns reading the socket and hand each other the replies.
 * Real arbiter, real workers, one DirtyClient shared by the threads. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <dirty.h>
#include <glib/gstdio.h>

#include "dirty-test-daemon.h"

#define TESTAPP "testapp:DirtyTestApp"
#define ECHO    "echo:DirtyEchoApp"

#define CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" TESTAPP ";" ECHO "\n" \
  "dirty_workers=2\n" \
  "dirty_threads=4\n"

#define N_THREADS 8
#define N_CALLS   150

static DirtyClient *
connect_to (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  DirtyClient *client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon),
                                               NULL, &error);
  g_assert_no_error (error);
  return client;
}

static JsonArray *
json_args (const char *json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = json_from_string (json, &error);

  g_assert_no_error (error);
  return json_array_ref (json_node_get_array (node));
}

/* testapp's "tagged" returns its token: a reply handed to the wrong
 * caller shows. */
static JsonNode *
tagged (DirtyClient *client, const char *token, double secs, guint timeout_ms,
        GCancellable *cancellable, GError **error)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (TESTAPP, "tagged");
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(DirtyReply) reply = NULL;

  json_array_add_string_element (args, token);
  json_array_add_double_element (args, secs);
  dirty_request_set_args (request, args);
  dirty_request_set_timeout (request, timeout_ms);
  reply = dirty_client_send_sync (client, request, cancellable, error);
  return reply ? json_node_copy (dirty_reply_get_result (reply)) : NULL;
}

/* A call that shows the client works; the tests end with one too. */
static void
warm_up (DirtyClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = tagged (client, "warm", 0, 0, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (result), ==, "warm");
}

/* ---- many callers, mixed with an async call and a stream -------------- */

typedef struct {
  DirtyClient *client;
  guint        index;
  guint        wrong;   /* answers with another caller's token */
  guint        failed;
} Caller;

static gpointer
caller_thread (gpointer data)
{
  Caller *caller = data;

  for (guint i = 0; i < N_CALLS; i++)
    {
      g_autofree char *token = g_strdup_printf ("t%u-%u", caller->index, i);
      g_autoptr(GError) error = NULL;
      /* every tenth call takes a while, so callers overlap and lead in turn */
      g_autoptr(JsonNode) result = tagged (caller->client, token, i % 10 == 0 ? 0.01 : 0,
                                           0, NULL, &error);

      if (result == NULL)
        {
          g_test_message ("%s: %s", token, error->message);
          caller->failed++;
        }
      else if (g_strcmp0 (json_node_get_string (result), token) != 0)
        caller->wrong++;
    }
  return NULL;
}

static gpointer
stream_thread (gpointer data)
{
  DirtyClient *client = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) kwargs = json_object_new ();
  g_autoptr(DirtyStream) stream = NULL;
  gint64 n = 0;

  json_object_set_string_member (kwargs, "token", "stream");
  json_object_set_int_member (kwargs, "n", 400);
  json_object_set_double_member (kwargs, "interval", 0);
  stream = dirty_client_stream_sync (client, TESTAPP, "tagged_stream", NULL, kwargs, NULL, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
      JsonObject *object;

      g_assert_no_error (error);
      if (chunk == NULL)
        break;
      object = json_node_get_object (chunk);
      g_assert_cmpstr (json_object_get_string_member (object, "token"), ==, "stream");
      g_assert_cmpint (json_object_get_int_member (object, "seq"), ==, n);
      n++;
    }
  return GINT_TO_POINTER ((int) n);
}

static void
on_async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  JsonNode **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);
  g_assert_no_error (error);
}

static void
test_mixed (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(JsonArray) async_args = json_args ("[\"async\", 0.2]");
  Caller callers[N_THREADS];
  GThread *threads[N_THREADS];
  GThread *streamer;
  JsonNode *async_result = NULL;

  warm_up (client);
  for (guint i = 0; i < N_THREADS; i++)
    {
      callers[i] = (Caller) { .client = client, .index = i };
      threads[i] = g_thread_new ("caller", caller_thread, &callers[i]);
    }
  /* the I/O thread takes the read side back for these, and gives it to
   * the callers again when they are done */
  g_usleep (20 * 1000);
  dirty_client_execute (client, TESTAPP, "tagged", async_args, NULL, NULL,
                        on_async_done, &async_result);
  streamer = g_thread_new ("stream", stream_thread, client);
  while (async_result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (json_node_get_string (async_result), ==, "async");
  json_node_unref (async_result);
  g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (streamer)), ==, 400);
  for (guint i = 0; i < N_THREADS; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (callers[i].failed, ==, 0);
      g_assert_cmpuint (callers[i].wrong, ==, 0);
    }
  warm_up (client);
}

/* ---- streams started on the calling thread ------------------------------ */

/* Reads a "tagged_stream" of @n chunks to its end; the chunks it got in
 * order, or -1 at the first one out of order. */
static gint64
read_tagged_stream (DirtyClient *client, const char *token, guint n, GError **error)
{
  g_autoptr(JsonObject) kwargs = json_object_new ();
  g_autoptr(DirtyStream) stream = NULL;
  gint64 seq = 0;

  json_object_set_string_member (kwargs, "token", token);
  json_object_set_int_member (kwargs, "n", n);
  json_object_set_double_member (kwargs, "interval", 0);
  stream = dirty_client_stream_sync (client, TESTAPP, "tagged_stream", NULL, kwargs, NULL, error);
  if (stream == NULL)
    return -1;
  for (;;)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, error);
      JsonObject *object;

      if (chunk == NULL)
        return *error != NULL ? -1 : seq;
      object = json_node_get_object (chunk);
      if (g_strcmp0 (json_object_get_string_member (object, "token"), token) != 0 ||
          json_object_get_int_member (object, "seq") != seq)
        return -1;
      seq++;
    }
}

/* dirty_client_stream_sync () writes its request and reads the first
 * chunk on the calling thread; the rest comes through the I/O thread.
 * Whoever reads the socket (the caller, or the I/O thread for an async
 * call in flight), every chunk arrives once and in order, the stream's
 * end and errors too, and the client goes on serving calls. */
static void
test_streams_started_here (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(JsonArray) async_args = json_args ("[\"async\", 1.0]");
  JsonNode *async_result = NULL;

  warm_up (client);
  for (guint round = 0; round < 2; round++)
    {
      /* round 1: the I/O thread reads meanwhile, for its own call */
      if (round == 1)
        dirty_client_execute (client, TESTAPP, "tagged", async_args, NULL, NULL,
                              on_async_done, &async_result);
      for (guint i = 0; i < 40; i++)
        {
          g_autoptr(GError) error = NULL;
          guint n = i % 4 == 0 ? 0 : 1 + i * 7 % 150;   /* 0: the end comes first */

          g_assert_cmpint (read_tagged_stream (client, "s", n, &error), ==, n);
          g_assert_no_error (error);
        }
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(DirtyStream) stream = dirty_client_stream_sync (client, TESTAPP, "no-such-action",
                                                                  NULL, NULL, NULL, &error);

        /* an ERROR as the first frame */
        g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_ACTION_NOT_FOUND);
        g_assert_null (stream);
      }
    }
  while (async_result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (json_node_get_string (async_result), ==, "async");
  json_node_unref (async_result);
  warm_up (client);
}

/* ---- a second caller while the first one leads ------------------------ */

typedef struct {
  DirtyClient  *client;
  const char   *token;
  double        secs;
  guint         timeout_ms;
  GCancellable *cancellable;
  JsonNode     *result;
  GError       *error;
  gint64        elapsed;   /* µs */
} Waiter;

static gpointer
waiter_thread (gpointer data)
{
  Waiter *waiter = data;
  gint64 t0 = g_get_monotonic_time ();

  waiter->result = tagged (waiter->client, waiter->token, waiter->secs, waiter->timeout_ms,
                           waiter->cancellable, &waiter->error);
  waiter->elapsed = g_get_monotonic_time () - t0;
  return NULL;
}

static void
waiter_clear (Waiter *waiter)
{
  g_clear_pointer (&waiter->result, json_node_unref);
  g_clear_error (&waiter->error);
  g_clear_object (&waiter->cancellable);
}

/* @first waits alone (so it leads), then @second starts (a follower). */
static void
start_two (Waiter *first, GThread **first_thread, Waiter *second, GThread **second_thread)
{
  *first_thread = g_thread_new ("first", waiter_thread, first);
  g_usleep (200 * 1000);
  *second_thread = g_thread_new ("second", waiter_thread, second);
}

/* A follower's cancel ends it at once, not when the leader's reply comes;
 * then the leader's own cancel ends it too, and the client goes on. */
static void
test_cancel_follower (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  Waiter leader = { client, "leader", 30, 0, g_cancellable_new () };
  Waiter follower = { client, "follower", 30, 0, g_cancellable_new () };
  GThread *leader_thread, *follower_thread;

  warm_up (client);
  start_two (&leader, &leader_thread, &follower, &follower_thread);
  g_usleep (200 * 1000);
  g_cancellable_cancel (follower.cancellable);
  g_thread_join (follower_thread);
  g_assert_error (follower.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (follower.elapsed, <, 5 * G_USEC_PER_SEC);
  g_assert_null (leader.result);
  g_cancellable_cancel (leader.cancellable);
  g_thread_join (leader_thread);
  g_assert_error (leader.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (leader.elapsed, <, 5 * G_USEC_PER_SEC);
  waiter_clear (&leader);
  waiter_clear (&follower);
  warm_up (client);
}

/* The leader's call times out (the arbiter's ERROR, read by the leader
 * itself) while a follower waits; the follower takes over the reading
 * and gets its own reply. And a follower's ERROR comes through the
 * leader. */
static void
test_timeout_while_another_leads (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  Waiter leader = { client, "leader", 30, 300 };
  Waiter follower = { client, "follower", 1.0, 0 };
  GThread *leader_thread, *follower_thread;

  warm_up (client);
  start_two (&leader, &leader_thread, &follower, &follower_thread);
  g_thread_join (leader_thread);
  g_assert_error (leader.error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_thread_join (follower_thread);
  g_assert_no_error (follower.error);
  g_assert_cmpstr (json_node_get_string (follower.result), ==, "follower");
  waiter_clear (&leader);
  waiter_clear (&follower);

  /* now the follower times out while the leader waits */
  leader = (Waiter) { client, "leader", 1.0, 0 };
  follower = (Waiter) { client, "follower", 30, 300 };
  start_two (&leader, &leader_thread, &follower, &follower_thread);
  g_thread_join (follower_thread);
  g_assert_error (follower.error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_null (leader.result);
  g_thread_join (leader_thread);
  g_assert_no_error (leader.error);
  g_assert_cmpstr (json_node_get_string (leader.result), ==, "leader");
  waiter_clear (&leader);
  waiter_clear (&follower);
}

/* The arbiter is stopped: nothing answers. Each caller's own deadline
 * (its timeout plus the safety margin) ends it, the leader's first; the
 * follower then leads until its own. */
static void
test_client_deadline (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  Waiter leader = { client, "leader", 0, 100 };
  Waiter follower = { client, "follower", 0, 600 };
  GThread *leader_thread, *follower_thread;

  warm_up (client);
  g_assert_cmpint (kill (dirty_test_daemon_get_pid (daemon), SIGSTOP), ==, 0);
  start_two (&leader, &leader_thread, &follower, &follower_thread);
  g_thread_join (leader_thread);
  g_thread_join (follower_thread);
  g_assert_cmpint (kill (dirty_test_daemon_get_pid (daemon), SIGCONT), ==, 0);
  g_assert_error (leader.error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_error (follower.error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  /* 100 ms + the 1 s margin; 600 ms + 1 s */
  g_assert_cmpint (leader.elapsed, >=, 1100 * 1000);
  g_assert_cmpint (follower.elapsed, >=, 1600 * 1000);
  waiter_clear (&leader);
  waiter_clear (&follower);
  /* the late replies are dropped; the next call gets its own */
  warm_up (client);
}

/* The connection dies while one caller leads and another follows: each
 * gets one connection error, and the next call connects again. */
static void
test_lost_while_another_leads (void)
{
  DirtyTestDaemon *daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  Waiter leader = { client, "leader", 30, 0 };
  Waiter follower = { client, "follower", 30, 0 };
  GThread *leader_thread, *follower_thread;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  warm_up (client);
  start_two (&leader, &leader_thread, &follower, &follower_thread);
  g_usleep (200 * 1000);
  g_assert_cmpint (dirty_test_daemon_signal_and_wait (daemon, SIGKILL, 5000), !=, -1);
  g_thread_join (leader_thread);
  g_thread_join (follower_thread);
  g_assert_error (leader.error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_error (follower.error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_cmpint (leader.elapsed, <, 10 * G_USEC_PER_SEC);
  g_assert_cmpint (follower.elapsed, <, 10 * G_USEC_PER_SEC);
  waiter_clear (&leader);
  waiter_clear (&follower);
  /* nothing listens now: the next call tries to connect, and says so */
  dirty_test_daemon_stop (daemon);
  result = tagged (client, "again", 0, 0, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (error->message, "connect"));
}

/* The arbiter goes away while the client is idle, so nobody reads its
 * hang-up; another one comes up at the same path (a symlink here). The
 * next call connects to it, as if the hang-up had been read at once. */
static void
test_reconnect_after_idle_hang_up (void)
{
  DirtyTestDaemon *first = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyTestDaemon) second = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-sync-XXXXXX", NULL);
  g_autofree char *link = g_build_filename (dir, "arbiter.sock", NULL);
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  g_assert_cmpint (symlink (dirty_test_daemon_get_socket_path (first), link), ==, 0);
  client = dirty_client_new_sync (link, NULL, &error);
  g_assert_no_error (error);
  warm_up (client);
  g_assert_cmpint (dirty_test_daemon_signal_and_wait (first, SIGKILL, 5000), !=, -1);
  dirty_test_daemon_stop (first);
  second = dirty_test_daemon_start (CONFIG, NULL);
  g_assert_cmpint (unlink (link), ==, 0);
  g_assert_cmpint (symlink (dirty_test_daemon_get_socket_path (second), link), ==, 0);
  result = tagged (client, "again", 0, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (result), ==, "again");
  g_unlink (link);
  g_rmdir (dir);
}

/* ---- memfd attachments through the leader ----------------------------- */

typedef struct {
  DirtyClient *client;
  guint        index;
  guint        wrong;
} Echoer;

/* 1 MiB and more travels as a memfd (SCM_RIGHTS): the leader receives
 * the fds of the others' replies and hands them over with their frames */
static gpointer
echo_thread (gpointer data)
{
  Echoer *echoer = data;

  for (guint i = 0; i < 10; i++)
    {
      gsize size = 1024 * 1024 + echoer->index * 4096 + i;
      g_autofree guint8 *data_bytes = g_malloc (size);
      g_autoptr(GBytes) sent = NULL;
      g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo_bytes");
      g_autoptr(DirtyReply) reply = NULL;
      g_autoptr(GError) error = NULL;

      memset (data_bytes, (int) (echoer->index * 16 + i), size);
      sent = g_bytes_new_take (g_steal_pointer (&data_bytes), size);
      dirty_request_add_bytes (request, sent);
      reply = dirty_client_send_sync (echoer->client, request, NULL, &error);
      g_assert_no_error (error);
      if (!g_bytes_equal (dirty_reply_get_bytes (reply), sent))
        echoer->wrong++;
    }
  return NULL;
}

static void
test_memfd_threads (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  Echoer echoers[4];
  GThread *threads[4];

  warm_up (client);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      echoers[i] = (Echoer) { .client = client, .index = i };
      threads[i] = g_thread_new ("echo", echo_thread, &echoers[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (echoers[i].wrong, ==, 0);
    }
}

static void
on_sleep_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  JsonNode **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);
  g_assert_no_error (error);
}

/* Calls leave in the order they were made, even when the later one is a
 * blocking call that could go straight out: with one worker thread, the
 * async call started first runs first. */
static void
test_order_kept (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                             "dirty_workers=1\ndirty_threads=1\n", NULL);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(JsonArray) first_args = json_args ("[0.2]");
  g_autoptr(JsonArray) second_args = json_args ("[0]");
  g_autoptr(JsonNode) second = NULL;
  g_autoptr(GError) error = NULL;
  JsonNode *first = NULL;

  warm_up (client);
  dirty_client_execute (client, TESTAPP, "sleep", first_args, NULL, NULL, on_sleep_done, &first);
  second = dirty_client_execute_sync (client, TESTAPP, "sleep", second_args, NULL, NULL, &error);
  g_assert_no_error (error);
  while (first == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (first), "end"), <=,
                   json_object_get_int_member (json_node_get_object (second), "start"));
  json_node_unref (first);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sync/mixed-with-async-and-stream", test_mixed);
  g_test_add_func ("/sync/streams-started-here", test_streams_started_here);
  g_test_add_func ("/sync/cancel-follower", test_cancel_follower);
  g_test_add_func ("/sync/timeout-while-another-leads", test_timeout_while_another_leads);
  g_test_add_func ("/sync/client-deadline", test_client_deadline);
  g_test_add_func ("/sync/lost-while-another-leads", test_lost_while_another_leads);
  g_test_add_func ("/sync/reconnect-after-idle-hang-up", test_reconnect_after_idle_hang_up);
  g_test_add_func ("/sync/order-kept", test_order_kept);
  g_test_add_func ("/sync/memfd-threads", test_memfd_threads);
  return g_test_run ();
}
