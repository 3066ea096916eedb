/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end tests of execute: libdirty-glib talking to the real
 * dirty-arbiter and its real dirty-worker processes over the real
 * protocol, on a temporary socket. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <dirty.h>
#include <glib/gstdio.h>

#include "dirty-test-daemon.h"

#define ECHO    "echo:DirtyEchoApp"
#define COUNTER "counter:DirtyCounterApp"
#define TESTAPP "testapp:DirtyTestApp"
#define SLOW    "slow:DirtySlowApp"

static JsonArray *
json_args (const char *json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = json_from_string (json, &error);

  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  return json_array_ref (json_node_get_array (node));
}

static JsonNode *
call (DirtyClient *client, const char *app, const char *action,
      const char *args_json, GError **error)
{
  g_autoptr(JsonArray) args = json_args (args_json ? args_json : "[]");

  return dirty_client_execute_sync (client, app, action, args, NULL, NULL, error);
}

/* One call with its own timeout, through a DirtyRequest. */
static JsonNode *
call_with_timeout (DirtyClient *client, const char *app, const char *action,
                   const char *args_json, guint timeout_ms, GError **error)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (app, action);
  g_autoptr(JsonArray) args = json_args (args_json ? args_json : "[]");
  g_autoptr(DirtyReply) reply = NULL;

  dirty_request_set_args (request, args);
  dirty_request_set_timeout (request, timeout_ms);
  reply = dirty_client_send_sync (client, request, NULL, error);
  if (reply == NULL)
    return NULL;
  return json_node_copy (dirty_reply_get_result (reply));
}

static gint64
call_int (DirtyClient *client, const char *app, const char *action, const char *args_json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = call (client, app, action, args_json, &error);

  g_assert_no_error (error);
  g_assert_cmpint (json_node_get_value_type (result), ==, G_TYPE_INT64);
  return json_node_get_int (result);
}

static DirtyClient *
connect_to (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  DirtyClient *client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon),
                                               NULL, &error);
  g_assert_no_error (error);
  return client;
}

static DirtyTestDaemon *
start (const char *config)
{
  return dirty_test_daemon_start (config, NULL);
}

/* Counter state lives in each worker: one worker makes it one counter. */
#define COUNTER_CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" COUNTER "\n" \
  "dirty_workers=1\n" \
  "dirty_threads=2\n"

#define BASIC_CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" ECHO ";" COUNTER ";" TESTAPP ";" SLOW "\n" \
  "dirty_workers=2\n" \
  "dirty_threads=2\n"

/* ---- results ---------------------------------------------------------- */

static void
test_echo_sync (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) expected = json_from_string ("[1,\"two\",{\"three\":[3.5,null,true]}]", NULL);
  g_autoptr(JsonNode) result = call (client, ECHO, "echo", "[1,\"two\",{\"three\":[3.5,null,true]}]", &error);

  g_assert_no_error (error);
  g_assert_true (json_node_equal (result, expected));
  g_assert_cmpint (call_int (client, ECHO, "add", "[1,2,39]"), ==, 42);
}

static void
test_kwargs (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (COUNTER_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) kwargs = json_object_new ();
  g_autoptr(JsonNode) result = NULL;

  call_int (client, COUNTER, "reset", "[]");
  json_object_set_int_member (kwargs, "n", 5);
  result = dirty_client_execute_sync (client, COUNTER, "incr", NULL, kwargs, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (call_int (client, COUNTER, "get", "[]"), ==, 5);
}

typedef struct {
  GMainLoop *loop;
  guint      pending;
  GArray    *values;
} AsyncState;

static void
on_incr_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);
  gint64 value;

  g_assert_no_error (error);
  value = json_node_get_int (node);
  g_array_append_val (state->values, value);
  if (--state->pending == 0)
    g_main_loop_quit (state->loop);
}

/* Many calls in flight on one connection, completed on the caller's main
 * loop: every one gets its own answer. */
static void
test_async_many_in_flight (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (COUNTER_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  AsyncState state = { loop, 200, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  call_int (client, COUNTER, "reset", "[]");
  for (guint i = 0; i < 200; i++)
    dirty_client_execute (client, COUNTER, "incr", NULL, NULL, NULL, on_incr_done, &state);
  g_main_loop_run (loop);

  g_assert_cmpuint (state.values->len, ==, 200);
  for (guint i = 0; i < state.values->len; i++)
    {
      gint64 *v = &g_array_index (state.values, gint64, i);
      g_assert_cmpint (*v, >=, 1);
      g_assert_cmpint (*v, <=, 200);
      g_assert_false (g_hash_table_contains (seen, v));
      g_hash_table_add (seen, v);
    }
  g_assert_cmpint (call_int (client, COUNTER, "get", "[]"), ==, 200);
  g_array_unref (state.values);
}

static gpointer
adder_thread (gpointer data)
{
  DirtyClient *client = data;
  guint seed = g_random_int ();

  for (guint i = 0; i < 40; i++)
    {
      gint64 a = (seed + i) % 100000, b = i * 7;
      g_autofree char *args = g_strdup_printf ("[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]", a, b);

      g_assert_cmpint (call_int (client, ECHO, "add", args), ==, a + b);
    }
  return NULL;
}

/* One client shared by eight threads: answers are matched by id. */
static void
test_threads_share_client (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  GThread *threads[8];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("adder", adder_thread, client);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
}

static void
test_bytes_round_trip (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo_bytes");
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  gsize size = 1024 * 1024 + 3;
  guint8 *data = g_malloc (size);
  g_autoptr(GBytes) bytes = NULL;

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) g_random_int ();
  data[0] = 0; /* raw bytes, NULs included: never text */
  bytes = g_bytes_new_take (data, size);
  dirty_request_add_bytes (request, bytes);
  reply = dirty_client_send_sync (client, request, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dirty_reply_get_bytes (reply));
  g_assert_true (g_bytes_equal (dirty_reply_get_bytes (reply), bytes));
}

/* echo returns bytes as bytes, nested too: an app that hands an
 * argument's reference back attaches its bytes to the reply, and one
 * that forgets fails with app-error (dirty-json-write.c) rather than
 * send a reference to nothing. */
static void
test_bytes_echoed (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo");
  g_autoptr(GBytes) small = g_bytes_new_static ("\0ab", 3);
  g_autoptr(GBytes) large = g_bytes_new_take (g_malloc0 (256 * 1024), 256 * 1024);
  g_autoptr(JsonNode) nested = json_from_string ("{\"k\": null}", NULL);
  g_autoptr(JsonNode) one = json_node_init_int (json_node_alloc (), 1);
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  JsonArray *result;

  dirty_request_add_arg (request, one);   /* (transfer none): a copy */
  dirty_request_add_bytes (request, small);
  json_object_set_member (json_node_get_object (nested), "k",
                          dirty_request_attach (request, large));
  dirty_request_add_arg (request, nested);
  reply = dirty_client_send_sync (client, request, NULL, &error);
  g_assert_no_error (error);
  result = json_node_get_array (dirty_reply_get_result (reply));
  g_assert_cmpuint (json_array_get_length (result), ==, 3);
  g_assert_cmpint (json_array_get_int_element (result, 0), ==, 1);
  g_assert_true (g_bytes_equal (dirty_reply_lookup_bytes (reply, json_array_get_element (result, 1)),
                                small));
  g_assert_true (g_bytes_equal (dirty_reply_lookup_bytes (reply,
                                  json_object_get_member (json_array_get_object_element (result, 2),
                                                          "k")),
                                large));
}

/* ---- typed errors ----------------------------------------------------- */

static void
test_errors (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG);
  g_autoptr(DirtyClient) client = connect_to (daemon);
  struct {
    const char *app, *action, *args;
    DirtyError  code;
  } cases[] = {
    { "nosuch:DirtyNoSuchApp", "echo", "[]", DIRTY_ERROR_APP_NOT_FOUND },
    { ECHO, "no_such_action", "[]", DIRTY_ERROR_ACTION_NOT_FOUND },
    { ECHO, "_secret", "[]", DIRTY_ERROR_ACTION_NOT_FOUND },
    /* names that come from data (a URL, a form) may be empty: an error,
     * as for any other name, not a critical */
    { "", "echo", "[]", DIRTY_ERROR_APP_NOT_FOUND },
    { ECHO, "", "[]", DIRTY_ERROR_ACTION_NOT_FOUND },
    { ECHO, "add", "[1,\"two\"]", DIRTY_ERROR_INVALID_ARGUMENT },
    { ECHO, "fail", "[]", DIRTY_ERROR_APP },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) result = call (client, cases[i].app, cases[i].action, cases[i].args, &error);

      g_test_message ("%s %s -> %s", cases[i].app, cases[i].action, error ? error->message : "(ok)");
      g_assert_null (result);
      g_assert_error (error, DIRTY_ERROR, (gint) cases[i].code);
      g_assert_cmpstr (error->message, !=, "");
    }

  /* an app error says where it happened and carries the app's detail */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) result = call (client, ECHO, "fail", "[]", &error);

    g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
    g_assert_cmpstr (dirty_error_get_app (error), ==, ECHO);
    g_assert_cmpstr (dirty_error_get_action (error), ==, "fail");
    g_assert_nonnull (dirty_error_get_detail (error));
    g_assert_cmpint (dirty_error_get_worker_pid (error), >, 0);
  }
  /* an app named by a part of its spec, as one would guess it, gets
   * the whole spec as a hint; an unrelated name gets none */
  {
    const char *names[][2] = {
      { "echo", "did you mean “" ECHO "”?" },
      { "DirtyCounterApp", "did you mean “" COUNTER "”?" },
      { "nosuch", NULL },
      { "echo:DirtyCounterApp", NULL },
    };

    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) result = call (client, names[i][0], "echo", "[]", &error);

        g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND);
        if (names[i][1] != NULL)
          g_assert_true (g_str_has_suffix (error->message, names[i][1]));
        else
          g_assert_null (strstr (error->message, "did you mean"));
      }
  }
  /* and none of that broke the connection */
  g_assert_cmpint (call_int (client, ECHO, "add", "[2,2]"), ==, 4);
}

/* ---- deadlines -------------------------------------------------------- */

static void
test_timeout_running (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 pid = call_int (client, TESTAPP, "pid", "[]");
  gint64 start_time = g_get_monotonic_time ();

  result = call_with_timeout (client, TESTAPP, "sleep", "[30]", 300, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - start_time, <, 10 * G_USEC_PER_SEC);

  /* the action saw its cancellable fire: the same worker serves the next call */
  g_assert_cmpint (call_int (client, TESTAPP, "pid", "[]"), ==, pid);
}

static void
test_timeout_queued_never_dispatched (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP ";" COUNTER "\ndirty_workers=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(DirtyClient) other = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(JsonArray) sleep_args = json_args ("[1.5]");

  call_int (client, COUNTER, "reset", "[]");
  /* the only slot is busy for 1.5 s ... */
  dirty_client_execute (other, TESTAPP, "sleep", sleep_args, NULL, NULL, NULL, NULL);
  g_usleep (200 * 1000);
  /* ... so this one waits in the queue and times out there */
  result = call_with_timeout (client, COUNTER, "incr", "[]", 300, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  /* it never ran: the counter is untouched once the slot is free again */
  g_assert_cmpint (call_int (client, COUNTER, "get", "[]"), ==, 0);
}

static void
test_timeout_zero_means_none (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_timeout=0\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = call (client, TESTAPP, "sleep", "[1.2]", &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_assert_cmpint (call_int (client, TESTAPP, "pid", "[]"), >, 0);
}

static void
test_timeout_capped_by_daemon (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_timeout=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 t0 = g_get_monotonic_time ();

  /* asks for 60 s, gets the daemon's 1 s */
  result = call_with_timeout (client, TESTAPP, "sleep", "[20]", 60000, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
}

/* An action that ignores cancellation is killed after the grace period,
 * and its worker replaced; its late reply can never reach another call. */
static void
test_hung_worker_replaced (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 pid = call_int (client, TESTAPP, "pid", "[]");
  gint64 new_pid;

  result = call_with_timeout (client, TESTAPP, "hang", "[60]", 300, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  new_pid = call_int (client, TESTAPP, "pid", "[]");
  g_assert_cmpint (new_pid, !=, pid);
  g_assert_false (dirty_test_pid_alive ((GPid) pid));
}

static void
test_late_reply_dropped (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP ";" ECHO "\ndirty_workers=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  /* ignores cancel for 0.8 s, then replies: after its deadline */
  result = call_with_timeout (client, TESTAPP, "hang", "[0.8]", 200, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  /* this call waits for the slot, and must get its own answer */
  g_assert_cmpint (call_int (client, ECHO, "add", "[20,22]"), ==, 42);
  g_assert_cmpint (call_int (client, ECHO, "add", "[1,1]"), ==, 2);
}

/* ---- failures --------------------------------------------------------- */

static void
test_worker_crash (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP ";" ECHO "\ndirty_workers=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 pid = call_int (client, TESTAPP, "pid", "[]");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  AsyncState state = { loop, 5, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  g_autoptr(JsonArray) crash_args = json_args ("[0.3]");
  g_autoptr(JsonArray) add_args = json_args ("[1,1]");

  /* queue five calls behind a crash: they must not be lost */
  dirty_client_execute (client, TESTAPP, "crash_after", crash_args, NULL, NULL, NULL, NULL);
  g_usleep (50 * 1000);
  for (guint i = 0; i < 5; i++)
    dirty_client_execute (client, ECHO, "add", add_args, NULL, NULL, on_incr_done, &state);
  g_main_loop_run (loop);
  g_assert_cmpuint (state.values->len, ==, 5);
  g_array_unref (state.values);

  result = call (client, TESTAPP, "crash", "[]", &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_WORKER_LOST);
  /* the replacement serves the next call, with the same apps */
  g_assert_cmpint (call_int (client, TESTAPP, "pid", "[]"), !=, pid);
  g_assert_cmpint (call_int (client, ECHO, "add", "[3,4]"), ==, 7);
}

static void
test_init_failure_backoff (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-failinit-XXXXXX", &error);
  g_autofree char *flag = g_build_filename (dir, "fail", NULL);
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonNode) result = NULL;
  gint64 end;

  g_assert_true (g_file_set_contents (flag, "", 0, &error));
  g_setenv ("DIRTY_TEST_FAILINIT_FILE", flag, TRUE);
  daemon = start ("[dirty-arbiter]\ndirty_apps=failinit:DirtyFailInitApp;" ECHO "\ndirty_workers=1\n");
  g_unsetenv ("DIRTY_TEST_FAILINIT_FILE");
  client = connect_to (daemon);

  /* while init fails, calls get a clear error at once, and others work */
  result = call (client, "failinit:DirtyFailInitApp", "ok", "[]", &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_NO_WORKER);
  g_test_message ("while init fails: %s", error->message);
  g_assert_nonnull (strstr (error->message, "init"));
  g_clear_error (&error);
  g_assert_cmpint (call_int (client, ECHO, "add", "[1,2]"), ==, 3);

  /* once init can succeed, a retry picks it up without a restart */
  g_assert_cmpint (g_unlink (flag), ==, 0);
  end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autoptr(JsonNode) r = call (client, "failinit:DirtyFailInitApp", "ok", "[]", &error);
      if (r != NULL)
        break;
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_NO_WORKER);
      g_clear_error (&error);
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (200 * 1000);
    }
  g_rmdir (dir);
}

/* ---- scheduling ------------------------------------------------------- */

static void
on_sleep_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  JsonNode **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);
  g_assert_no_error (error);
}

static gint64
member_int (JsonNode *node, const char *name)
{
  return json_object_get_int_member (json_node_get_object (node), name);
}

/* A short call never waits behind a long one while another worker is idle. */
static void
test_least_loaded (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=2\ndirty_threads=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(JsonArray) args = json_args ("[1.5]");
  JsonNode *slept = NULL;
  gint64 pids[3], short_done;

  dirty_client_execute (client, TESTAPP, "sleep", args, NULL, NULL, on_sleep_done, &slept);
  g_usleep (300 * 1000);
  for (guint i = 0; i < 3; i++)
    pids[i] = call_int (client, TESTAPP, "pid", "[]");
  short_done = g_get_monotonic_time ();
  while (slept == NULL)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpint (pids[0], ==, pids[1]);
  g_assert_cmpint (pids[1], ==, pids[2]);
  g_assert_cmpint (member_int (slept, "pid"), !=, pids[0]);
  /* the short calls were answered while the long one still ran (the
   * worker reports CLOCK_MONOTONIC, the clock of g_get_monotonic_time) */
  g_assert_cmpint (short_done, <, member_int (slept, "end"));
  json_node_unref (slept);
}

/* dirty_threads=2 gives two really concurrent sync actions per worker. */
static void
test_threads_concurrent (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\ndirty_threads=2\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(JsonArray) args = json_args ("[0.8]");
  JsonNode *a = NULL, *b = NULL;

  dirty_client_execute (client, TESTAPP, "sleep", args, NULL, NULL, on_sleep_done, &a);
  dirty_client_execute (client, TESTAPP, "sleep", args, NULL, NULL, on_sleep_done, &b);
  while (a == NULL || b == NULL)
    g_main_context_iteration (NULL, TRUE);
  /* same worker, overlapping intervals */
  g_assert_cmpint (member_int (a, "pid"), ==, member_int (b, "pid"));
  g_assert_cmpint (member_int (a, "start"), <, member_int (b, "end"));
  g_assert_cmpint (member_int (b, "start"), <, member_int (a, "end"));
  json_node_unref (a);
  json_node_unref (b);
}

/* ---- cancellation ----------------------------------------------------- */

static gpointer
cancel_later_thread (gpointer data)
{
  g_usleep (200 * 1000);
  g_cancellable_cancel (data);
  return NULL;
}

static void
test_cancel_sync_call (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\ndirty_workers=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonArray) args = json_args ("[30]");
  g_autoptr(JsonNode) result = NULL;
  GThread *thread = g_thread_new ("cancel", cancel_later_thread, cancellable);
  gint64 t0 = g_get_monotonic_time ();

  result = dirty_client_execute_sync (client, TESTAPP, "sleep", args, NULL, cancellable, &error);
  g_thread_join (thread);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* the worker's slot frees at once: this does not wait 30 s */
  g_assert_cmpint (call_int (client, TESTAPP, "pid", "[]"), >, 0);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
}

/* ---- the process tree ------------------------------------------------- */

static void
test_no_orphans_when_arbiter_killed (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=3\n");
  g_autoptr(GArray) workers = dirty_test_list_children (dirty_test_daemon_get_pid (daemon));

  g_assert_cmpuint (workers->len, ==, 3);
  g_assert_cmpint (dirty_test_daemon_signal_and_wait (daemon, SIGKILL, 5000), !=, -1);
  for (guint i = 0; i < workers->len; i++)
    dirty_test_wait_gone (g_array_index (workers, GPid, i), 5000);
}

static void
test_sigterm_clean_exit (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    start ("[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=2\n");
  g_autoptr(GArray) workers = dirty_test_list_children (dirty_test_daemon_get_pid (daemon));
  int status = dirty_test_daemon_signal_and_wait (daemon, SIGTERM, 20000);

  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  for (guint i = 0; i < workers->len; i++)
    g_assert_false (dirty_test_pid_alive (g_array_index (workers, GPid, i)));
}

/* ---- configuration errors -------------------------------------------- */

/* The real binary refuses bad settings with exit code 1 and a message
 * that names the key, from the command line and from the file. */
static void
test_bad_config_exits_1 (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-config-XXXXXX", &error);
  g_autofree char *file = g_build_filename (dir, "bad.conf", NULL);
  g_autofree char *file_arg = g_strdup_printf ("--config=%s", file);
  struct {
    const char *file_text;     /* NULL: an empty file */
    const char *arg;
    const char *needle;
  } cases[] = {
    { NULL, "--dirty-workers=abc", "--dirty-workers" },
    { NULL, "--dirty-threads=0", "--dirty-threads" },
    { NULL, "--dirty-timeout=-5", "--dirty-timeout" },
    { NULL, "--dirty-app=nocolon", "MODULE:TypeName" },
    { NULL, "--dirty-app=a:b:c:d", "MODULE:TypeName" },
    { "[dirty-arbiter]\ndirty_threads=0\n", NULL, "dirty_threads" },
    { "[dirty-arbiter]\ndirty_workers=many\n", NULL, "dirty_workers" },
    { "[dirty-arbiter]\ndirty_graceful_timeout=-1\n", NULL, "dirty_graceful_timeout" },
    { "[dirty-arbiter]\nno_such_key=1\n", NULL, "no_such_key" },
  };

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *argv[] = { file_arg, cases[i].arg, NULL };
      g_autofree char *err = NULL;
      int status;

      g_assert_true (g_file_set_contents (file, cases[i].file_text ? cases[i].file_text : "", -1, &error));
      status = dirty_test_run_arbiter (argv, &err);
      g_test_message ("%s %s -> %s", cases[i].file_text ? cases[i].file_text : "",
                      cases[i].arg ? cases[i].arg : "", err);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 1);
      g_assert_nonnull (strstr (err, cases[i].needle));
    }
  g_unlink (file);
  g_rmdir (dir);
}

/* A path of exactly @length bytes in @dir */
static char *
path_of_length (const char *dir, gsize length)
{
  gsize base = strlen (dir) + 1;
  g_autofree char *name = NULL;

  g_assert_cmpuint (length, >, base);
  name = g_strnfill (length - base, 's');
  return g_build_filename (dir, name, NULL);
}

/* A Unix socket's path holds 107 bytes, and GLib cuts a longer one short
 * without a word: an arbiter would listen, and a client connect, at
 * another path (a client here: at another arbiter's socket). Both refuse
 * it instead, saying why. */
static void
test_socket_path_too_long (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-sock-XXXXXX", &error);
  g_autofree char *longest = path_of_length (dir, 107);
  g_autofree char *too_long = g_strconcat (longest, "zzzz", NULL);
  g_autofree char *listen_longest = g_strdup_printf ("--socket=%s", longest);
  g_autofree char *listen_too_long = g_strdup_printf ("--socket=%s", too_long);
  const char *argv[] = { listen_too_long, "--dirty-app=" ECHO, NULL };
  const char *args[] = { listen_longest, NULL };
  g_autofree char *err = NULL;
  int status;

  g_assert_no_error (error);
  status = dirty_test_run_arbiter (argv, &err);
  g_assert_false (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_assert_nonnull (strstr (err, "at most 107"));
  g_assert_false (g_file_test (longest, G_FILE_TEST_EXISTS));

  /* an arbiter on the longest path serves; a client given that path and
   * four bytes more must not reach it */
  {
    g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (BASIC_CONFIG, args);
    g_autoptr(DirtyClient) client = dirty_client_new_sync (longest, NULL, &error);
    g_autoptr(DirtyClient) other = NULL;

    g_assert_no_error (error);
    g_assert_cmpint (call_int (client, ECHO, "add", "[40,2]"), ==, 42);
    other = dirty_client_new_sync (too_long, NULL, &error);
    g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
    g_assert_nonnull (strstr (error->message, "at most 107"));
  }
  g_unlink (longest);
  g_rmdir (dir);
}

/* A request over the arbiter's max_body fails alone, with
 * invalid-argument, and a call in flight on the same connection goes on.
 * The client never asked for the arbiter's limits (a HELLO, which the
 * arbiter answers), so it sent the request, and the arbiter closed the
 * connection for the oversized frame: "protocol" for it, and the other
 * call lost. */
static void
test_over_max_body (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG "max_body=2048\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autofree char *big = g_strnfill (5000, 'x');
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(JsonArray) sleep_args = json_args ("[1]");
  g_autoptr(JsonArray) add_args = json_args ("[1, 2]");
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) slow = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  json_array_add_string_element (args, big);
  /* an async call first: the I/O thread reads, the HELLO's answer first */
  dirty_client_execute (client, ECHO, "add", add_args, NULL, NULL, dirty_test_store_result_cb, &first);
  result = dirty_client_execute_finish (client, dirty_test_wait_result (&first), &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, json_node_unref);

  dirty_client_execute (client, SLOW, "sleep", sleep_args, NULL, NULL, dirty_test_store_result_cb, &slow);
  result = dirty_client_execute_sync (client, ECHO, "echo", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "at most 2048 bytes"));
  g_clear_error (&error);
  result = dirty_client_execute_finish (client, dirty_test_wait_result (&slow), &error);
  g_assert_no_error (error);
  g_assert_cmpint (call_int (client, ECHO, "add", "[40, 2]"), ==, 42);
}

/* A connection's first calls go out before the arbiter's limits are in
 * (the answer to the HELLO sent with the first): checked against the
 * defaults, a call over a lowered max_body or max_fd_payload reaches the
 * arbiter. It fails alone, with invalid-argument, and the connection
 * serves on. Before, the arbiter closed the connection for the
 * oversized frame: "protocol", and every call on it lost. */
static void
test_over_limits_first_call (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start (BASIC_CONFIG "max_body=2048\nmax_fd_payload=1\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autoptr(DirtyClient) other = connect_to (daemon);
  g_autofree char *big = g_strnfill (5000, 'x');
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo_bytes");
  g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc0 (2 * 1024 * 1024), 2 * 1024 * 1024);
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  json_array_add_string_element (args, big);
  result = dirty_client_execute_sync (client, ECHO, "echo", args, NULL, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "exceeds the limit of 2048 bytes"));
  g_clear_error (&error);
  g_assert_cmpint (call_int (client, ECHO, "add", "[40, 2]"), ==, 42);

  /* 2 MiB of bytes travel in a memfd: over max_fd_payload (1 MiB) */
  dirty_request_add_bytes (request, bytes);
  reply = dirty_client_send_sync (other, request, NULL, &error);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_null (reply);
  g_clear_error (&error);
  g_assert_cmpint (call_int (other, ECHO, "add", "[1, 2]"), ==, 3);
}

/* max_body raised past the default (64 MiB) lets clients send larger
 * requests, and the workers take them: a worker read its arbiter's
 * frames with the default limit, so a 70 MB request killed the worker
 * ("worker-lost", restarted). (Results keep to the default: one that
 * large fails alone, /unsendable/results.) */
static void
test_raised_max_body (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                                             "max_body=104857600\n");
  g_autoptr(DirtyClient) client = connect_to (daemon);
  g_autofree char *big = g_strnfill (70 * 1000 * 1000, 'x');
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(JsonNode) pid = NULL;

  pid = dirty_client_execute_sync (client, TESTAPP, "pid", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  json_array_add_string_element (args, big);
  g_clear_pointer (&big, g_free);
  result = dirty_client_execute_sync (client, TESTAPP, "ok", args, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (result), ==, "ok");
  g_clear_pointer (&result, json_node_unref);
  /* the same worker, never restarted */
  result = dirty_client_execute_sync (client, TESTAPP, "pid", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_node_get_int (result), ==, json_node_get_int (pid));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/execute/echo-sync", test_echo_sync);
  g_test_add_func ("/execute/kwargs", test_kwargs);
  g_test_add_func ("/execute/async-many-in-flight", test_async_many_in_flight);
  g_test_add_func ("/execute/threads-share-client", test_threads_share_client);
  g_test_add_func ("/execute/bytes-round-trip", test_bytes_round_trip);
  g_test_add_func ("/execute/bytes-echoed", test_bytes_echoed);
  g_test_add_func ("/execute/errors", test_errors);
  g_test_add_func ("/deadline/running", test_timeout_running);
  g_test_add_func ("/deadline/queued-never-dispatched", test_timeout_queued_never_dispatched);
  g_test_add_func ("/deadline/zero-means-none", test_timeout_zero_means_none);
  g_test_add_func ("/deadline/capped-by-daemon", test_timeout_capped_by_daemon);
  g_test_add_func ("/deadline/hung-worker-replaced", test_hung_worker_replaced);
  g_test_add_func ("/deadline/late-reply-dropped", test_late_reply_dropped);
  g_test_add_func ("/failure/worker-crash", test_worker_crash);
  g_test_add_func ("/failure/init-backoff", test_init_failure_backoff);
  g_test_add_func ("/schedule/least-loaded", test_least_loaded);
  g_test_add_func ("/schedule/threads-concurrent", test_threads_concurrent);
  g_test_add_func ("/cancel/sync-call", test_cancel_sync_call);
  g_test_add_func ("/process/no-orphans", test_no_orphans_when_arbiter_killed);
  g_test_add_func ("/process/sigterm-clean-exit", test_sigterm_clean_exit);
  g_test_add_func ("/config/bad-values-exit-1", test_bad_config_exits_1);
  g_test_add_func ("/config/socket-path-too-long", test_socket_path_too_long);
  g_test_add_func ("/execute/over-max-body", test_over_max_body);
  g_test_add_func ("/execute/over-limits-first-call", test_over_limits_first_call);
  g_test_add_func ("/execute/raised-max-body", test_raised_max_body);
  return g_test_run ();
}
