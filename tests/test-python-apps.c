/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end tests of Python apps: examples/python/numstats.py (numpy)
 * in a real dirty-python-worker started by the real dirty-arbiter, called
 * through libdirty-glib and dirtyctl: values, bytes both ways, a sync
 * and an async generator streaming, cancel mid-stream (the generator
 * closed, the task cancelled), a Python exception as an app error with
 * its traceback, apps that cannot be made, and stuck calls whose timeout
 * names the Python function they are stuck in. */
#include "config.h"

#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include <dirty.h>
#include <glib/gstdio.h>

#include "dirty-test-daemon.h"

#define NUMSTATS "python:numstats:NumStats"
#define VALUES   "python:pyvalues:Values"
#define ECHO     "echo:DirtyEchoApp"
#define STUCK    "python:pystuck:Stuck"
#define STUCK_TIMEOUT_MS 400

/* One worker: the app's counters (closed_early) are that worker's. It
 * hosts a C app beside the Python one. */
#define CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" NUMSTATS ";" VALUES ";" ECHO "\n" \
  "dirty_workers=1\n" \
  "dirty_threads=2\n"

static DirtyTestDaemon *daemon_;

/* examples/python and tests/apps hold the Python modules */
static const char * const *
python_app_path_args (void)
{
  static char *args[3];

  if (args[0] == NULL)
    {
      args[0] = g_strconcat ("--app-path=", g_test_get_dir (G_TEST_DIST), "/../examples/python",
                             NULL);
      args[1] = g_strconcat ("--app-path=", g_test_get_dir (G_TEST_DIST), "/apps", NULL);
    }
  return (const char * const *) args;
}

static DirtyTestDaemon *
shared_daemon (void)
{
  if (daemon_ == NULL)
    daemon_ = dirty_test_daemon_start (CONFIG, python_app_path_args ());
  return daemon_;
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

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

static JsonArray *
json_args (const char *text)
{
  g_autoptr(JsonNode) node = parse_json (text);

  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  return json_array_ref (json_node_get_array (node));
}

static JsonObject *
json_kwargs (const char *text)
{
  g_autoptr(JsonNode) node = parse_json (text);

  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static JsonNode *
execute (DirtyClient *client, const char *app, const char *action, const char *args,
         GError **error)
{
  g_autoptr(JsonArray) array = json_args (args);

  return dirty_client_execute_sync (client, app, action, array, NULL, NULL, error);
}

static double
member_double (JsonNode *node, const char *name)
{
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_get_double_member (json_node_get_object (node), name);
}

/* ---- values ------------------------------------------------------------ */

static void
test_value (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) stats = execute (client, NUMSTATS, "describe", "[[1, 2, 3, 4, 10]]", &error);
  g_autoptr(JsonNode) x = NULL;
  g_autoptr(JsonNode) eig = NULL;
  g_autoptr(JsonNode) sum = NULL;
  JsonArray *array;

  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats), "n"), ==, 5);
  g_assert_cmpfloat_with_epsilon (member_double (stats, "mean"), 4.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (member_double (stats, "median"), 3.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (member_double (stats, "std"), sqrt (10.0), 1e-12);
  g_assert_cmpfloat_with_epsilon (member_double (stats, "max"), 10.0, 1e-12);

  /* numpy's solve: [[2,1],[1,3]] x = [3,5] -> x = [0.8, 1.4] (a numpy
   * array as a JSON list) */
  x = execute (client, NUMSTATS, "solve", "[[[2, 1], [1, 3]], [3, 5]]", &error);
  g_assert_no_error (error);
  array = json_node_get_array (x);
  g_assert_cmpuint (json_array_get_length (array), ==, 2);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (array, 0), 0.8, 1e-12);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (array, 1), 1.4, 1e-12);

  /* a coroutine (async def) on the worker's asyncio loop */
  eig = execute (client, NUMSTATS, "eigenvalues", "[[[2, 1], [1, 2]]]", &error);
  g_assert_no_error (error);
  array = json_node_get_array (eig);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (array, 0), 1.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (json_array_get_double_element (array, 1), 3.0, 1e-12);

  /* the C app in the same (Python) worker */
  sum = execute (client, ECHO, "add", "[20, 22]", &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_node_get_int (sum), ==, 42);
}

/* Integers beyond 64 bits, from Python's ints and numpy's uint64: the
 * nearest double, not wrapped around (2^64 - 1 came back as -1). */
static void
test_big_integers (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = execute (client, VALUES, "big_integers", "[]", &error);
  JsonArray *array;
  JsonArray *numpy;

  g_assert_no_error (error);
  array = json_node_get_array (result);
  g_assert_cmpuint (json_array_get_length (array), ==, 6);
  g_assert_cmpint (json_node_get_value_type (json_array_get_element (array, 0)), ==, G_TYPE_DOUBLE);
  g_assert_cmpfloat (json_array_get_double_element (array, 0), ==, 18446744073709551615.0);
  g_assert_cmpint (json_array_get_int_element (array, 1), ==, G_MININT64);
  g_assert_cmpint (json_array_get_int_element (array, 2), ==, G_MAXINT64);
  g_assert_cmpfloat (json_object_get_double_member (json_array_get_object_element (array, 3), "k"),
                     ==, 1180591620717411303424.0);
  g_assert_cmpstr (json_array_get_string_element (array, 4), ==, "18446744073709551615");
  numpy = json_array_get_array_element (array, 5);
  g_assert_cmpfloat (json_array_get_double_element (numpy, 0), ==, 18446744073709551615.0);
  g_assert_cmpint (json_array_get_int_element (numpy, 1), ==, 5);
}

/* A string holding NUL fails its call, saying why, instead of arriving
 * cut short ("a\0b" came back as "a"); the text backslash-u0000 stays. */
static void
test_nul_string (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) cut = execute (client, VALUES, "nul_string", "[]", &error);
  g_autoptr(JsonNode) text = NULL;

  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_assert_nonnull (strstr (error->message, "U+0000"));
  g_clear_error (&error);
  text = execute (client, VALUES, "nul_string", "[true]", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (text), ==, "a\\u0000b");
}

/* Raw float64 bytes in (an attachment, not base64) and out. */
static void
test_bytes (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyRequest) describe = dirty_request_new (NUMSTATS, "describe");
  g_autoptr(DirtyRequest) normalize = dirty_request_new (NUMSTATS, "normalize");
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(DirtyReply) normalized = NULL;
  g_autoptr(GBytes) data = NULL;
  double values[1000];
  const double *out;
  JsonNode *result;
  GBytes *out_bytes;
  gsize size;

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    values[i] = (double) i;   /* little-endian on every Debian arch we run */
  data = g_bytes_new (values, sizeof values);
  dirty_request_add_bytes (describe, data);
  reply = dirty_client_send_sync (client, describe, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (member_double (dirty_reply_get_result (reply), "mean"),
                                  499.5, 1e-9);
  g_assert_cmpfloat_with_epsilon (member_double (dirty_reply_get_result (reply), "std"),
                                  sqrt ((1000.0 * 1000.0 - 1.0) / 12.0), 1e-9);

  dirty_request_add_bytes (normalize, data);
  normalized = dirty_client_send_sync (client, normalize, NULL, &error);
  g_assert_no_error (error);
  /* bytes nested in the result: an attachment and its reference */
  result = dirty_reply_get_result (normalized);
  g_assert_cmpfloat_with_epsilon (member_double (result, "mean"), 499.5, 1e-9);
  out_bytes = dirty_reply_lookup_bytes (normalized,
                                        json_object_get_member (json_node_get_object (result),
                                                                "data"));
  g_assert_nonnull (out_bytes);
  out = g_bytes_get_data (out_bytes, &size);
  g_assert_cmpuint (size, ==, sizeof values);
  g_assert_cmpfloat_with_epsilon (out[0], -499.5 / sqrt ((1000.0 * 1000.0 - 1.0) / 12.0), 1e-9);
}

/* ---- streams ----------------------------------------------------------- */

static DirtyStream *
open_stream (DirtyClient *client, const char *action, const char *args, const char *kwargs)
{
  g_autoptr(JsonArray) array = json_args (args);
  g_autoptr(JsonObject) object = json_kwargs (kwargs);
  g_autoptr(GError) error = NULL;
  DirtyStream *stream = dirty_client_stream_sync (client, NUMSTATS, action, array, object,
                                                  NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (stream);
  return stream;
}

/* A sync generator: one summary per chunk of 3 values, as they come. */
static void
test_sync_generator (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(DirtyStream) stream = open_stream (client, "running", "[[1, 2, 3, 4, 5, 6, 7]]",
                                               "{\"chunk\": 3}");
  static const double means[] = { 2.0, 3.5, 4.0 };
  g_autoptr(GError) error = NULL;
  JsonNode *chunk;
  guint n = 0;

  while ((chunk = dirty_stream_next_chunk_sync (stream, NULL, &error)) != NULL)
    {
      g_assert_cmpuint (n, <, G_N_ELEMENTS (means));
      g_assert_cmpfloat_with_epsilon (member_double (chunk, "mean"), means[n], 1e-12);
      n++;
      json_node_unref (chunk);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 3);
}

/* An async generator: the seeded walk is the same every time, and its
 * steps come in order. */
static void
test_async_generator (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GPtrArray) first = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  g_autoptr(GError) error = NULL;

  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(DirtyStream) stream = open_stream (client, "walk", "[]",
                                                   "{\"steps\": 1200, \"seed\": 7}");
      JsonNode *chunk;
      guint n = 0;

      while ((chunk = dirty_stream_next_chunk_sync (stream, NULL, &error)) != NULL)
        {
          JsonObject *object = json_node_get_object (chunk);

          g_assert_cmpint (json_object_get_int_member (object, "step"), ==, n);
          if (round == 0)
            g_ptr_array_add (first, chunk);
          else
            {
              g_assert_true (json_node_equal (chunk, first->pdata[n]));
              json_node_unref (chunk);
            }
          n++;
        }
      g_assert_no_error (error);
      /* more than the credit window (512): backpressure let it through */
      g_assert_cmpuint (n, ==, 1200);
    }
}

static gint64
closed_early (DirtyClient *client, const char *action)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) counts = execute (client, NUMSTATS, "closed_early", "[]", &error);

  g_assert_no_error (error);
  return json_object_get_int_member_with_default (json_node_get_object (counts), action, 0);
}

/* Reads a few chunks, drops the stream (which cancels the call) and
 * waits (bounded) until the app counted its generator as closed early. */
static void
cancel_mid_stream (const char *action, const char *args, const char *kwargs)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  gint64 before = closed_early (client, action);
  DirtyStream *stream = open_stream (client, action, args, kwargs);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (chunk);
    }
  g_object_unref (stream);
  while (closed_early (client, action) == before && g_get_monotonic_time () < end)
    g_usleep (20 * 1000);
  g_assert_cmpint (closed_early (client, action), ==, before + 1);
}

/* The sync generator is closed (GeneratorExit at its yield) while it
 * waits for credit. */
static void
test_cancel_generator (void)
{
  g_autoptr(GString) data = g_string_new ("[[");

  for (guint i = 0; i < 5000; i++)
    g_string_append_printf (data, "%s%u", i ? ", " : "", i);
  g_string_append (data, "]]");
  cancel_mid_stream ("running", data->str, "{\"chunk\": 1}");
}

/* The async generator's task is cancelled (CancelledError at its await). */
static void
test_cancel_async_generator (void)
{
  cancel_mid_stream ("walk", "[]", "{\"steps\": 100000, \"delay_ms\": 20}");
}

/* ---- errors ------------------------------------------------------------ */

/* numpy raises LinAlgError: the caller gets app-error, "Type: message",
 * and the Python traceback as the detail. */
static void
test_exception (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = execute (client, NUMSTATS, "solve", "[[[1, 2], [2, 4]], [3, 5]]",
                                        &error);
  const char *detail;

  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_assert_nonnull (strstr (error->message, "LinAlgError: Singular matrix"));
  detail = dirty_error_get_detail (error);
  g_assert_nonnull (detail);
  g_test_message ("detail: %s", detail);
  g_assert_true (g_str_has_prefix (detail, "Traceback (most recent call last):\n"));
  g_assert_nonnull (strstr (detail, "numstats.py\", line "));
  g_assert_nonnull (strstr (detail, ", in solve\n"));
  g_assert_nonnull (strstr (detail, "numpy.linalg.LinAlgError: Singular matrix"));
}

/* dirty.InvalidArgument is invalid-argument, also from a generator. */
static void
test_invalid_argument (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = execute (client, NUMSTATS, "describe", "[\"abc\"]", &error);
  g_autoptr(JsonArray) args = json_args ("[[1, 2]]");
  g_autoptr(JsonObject) kwargs = json_kwargs ("{\"chunk\": 0}");
  g_autoptr(DirtyStream) stream = NULL;

  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "not a list of numbers"));
  g_clear_error (&error);

  /* failed before its first chunk: the stream call itself fails */
  stream = dirty_client_stream_sync (client, NUMSTATS, "running", args, kwargs, NULL, &error);
  g_assert_null (stream);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "chunk must be at least 1"));
}

/* Arguments that do not fit the action's parameters are the caller's
 * mistake: invalid-argument naming the action, without a traceback of
 * the runtime (they were an app-error, "TypeError: ... missing 1 required
 * positional argument", with one). A TypeError the app raises itself
 * stays an app-error. */
static void
test_arguments_do_not_fit (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon ());
  struct { const char *app, *action, *args, *kwargs, *message; } cases[] = {
    { NUMSTATS, "describe", "[]", NULL, "describe(): missing a required argument: 'data'" },
    { NUMSTATS, "describe", "[[1], 2]", NULL, "describe(): too many positional arguments" },
    { NUMSTATS, "describe", "[[1]]", "{\"bogus\": 1}",
      "describe(): got an unexpected keyword argument 'bogus'" },
    /* a generator, and an async generator */
    { NUMSTATS, "running", "[]", NULL, "running(): missing a required argument: 'data'" },
    { NUMSTATS, "walk", "[1, 2, 3, 4, 5]", NULL, "walk(): too many positional arguments" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonArray) args = json_args (cases[i].args);
      g_autoptr(JsonObject) kwargs = cases[i].kwargs ? json_kwargs (cases[i].kwargs) : NULL;
      g_autoptr(JsonNode) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(DirtyStream) stream = NULL;

      if (g_str_equal (cases[i].action, "describe"))
        result = dirty_client_execute_sync (client, cases[i].app, cases[i].action, args, kwargs,
                                            NULL, &error);
      else
        stream = dirty_client_stream_sync (client, cases[i].app, cases[i].action, args, kwargs,
                                           NULL, &error);
      g_test_message ("%s: %s", cases[i].action, error ? error->message : "(ok)");
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, cases[i].message));
      g_assert_null (dirty_error_get_detail (error));
    }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) result = execute (client, VALUES, "type_error", "[5]", &error);

    g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP);
    g_assert_nonnull (strstr (error->message, "TypeError: object of type 'int' has no len()"));
    g_assert_nonnull (strstr (dirty_error_get_detail (error), ", in type_error\n"));
  }
}

/* Apps that cannot be made are reported with the reason (no-worker, as
 * for a C module that cannot be loaded or whose init() fails); the
 * worker's other apps serve. */
static void
test_broken_apps (void)
{
  static const struct {
    const char *app;
    const char *reason;
  } cases[] = {
    { "python:nosuchmodule:App", "ModuleNotFoundError: No module named 'nosuchmodule'" },
    { "python:numstats:NoSuchClass", "has no class NoSuchClass" },
    { "python:pybroken:NotAnApp", "is not a subclass of Dirty.App" },
    { "python:pybroken:BrokenSetup", "RuntimeError: the model file is missing" },
  };
  g_autoptr(GString) config = g_string_new ("[dirty-arbiter]\ndirty_apps=" NUMSTATS);
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) stats = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_string_append_printf (config, ";%s", cases[i].app);
  g_string_append_c (config, '\n');
  daemon = dirty_test_daemon_start (config->str, python_app_path_args ());
  client = connect_to (daemon);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(JsonNode) result = execute (client, cases[i].app, "ping", "[]", &local_error);

      g_assert_null (result);
      g_test_message ("%s: %s", cases[i].app, local_error->message);
      g_assert_error (local_error, DIRTY_ERROR, DIRTY_ERROR_NO_WORKER);
      g_assert_nonnull (strstr (local_error->message, cases[i].reason));
    }
  stats = execute (client, NUMSTATS, "describe", "[[2, 4]]", &error);
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (member_double (stats, "mean"), 3.0, 1e-12);
}

/* The worker-side hooks of hooks_module (tests/apps/hooksmod.so, which
 * logs them) run in the Python worker too: dirty_post_fork, then
 * dirty_worker_init after the app's setup(), with the worker's facts. */
static void
test_hooks (void)
{
  g_autofree char *module = g_test_build_filename (G_TEST_BUILT, "apps", "hooksmod.so", NULL);
  g_autofree char *dir = g_dir_make_tmp ("dirty-pyhooks-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "hooks.log", NULL);
  g_autofree char *config = g_strdup_printf ("[dirty-arbiter]\ndirty_apps=" NUMSTATS "\n"
                                             "hooks_module=%s\n", module);
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonNode) pid_node = NULL;
  g_autofree char *text = NULL;
  g_autofree char *post_fork = NULL;
  g_autofree char *worker_init = NULL;
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  GArray *children;
  int worker_pid;

  g_setenv ("DIRTY_TEST_HOOKS_LOG", log, TRUE);
  daemon = dirty_test_daemon_start (config, python_app_path_args ());
  g_unsetenv ("DIRTY_TEST_HOOKS_LOG");
  children = dirty_test_list_children (dirty_test_daemon_get_pid (daemon));
  g_assert_cmpuint (children->len, ==, 1);
  worker_pid = g_array_index (children, GPid, 0);
  g_array_unref (children);

  post_fork = g_strdup_printf ("dirty_post_fork pid=%d worker_id=1 worker_pid=-1 real_pid=%d\n",
                               worker_pid, worker_pid);
  worker_init = g_strdup_printf ("dirty_worker_init pid=%d worker_id=1 worker_pid=-1 "
                                 "real_pid=%d\n", worker_pid, worker_pid);
  /* READY=1 may come a moment before the worker-init hook has run */
  while (g_get_monotonic_time () < end)
    {
      g_clear_pointer (&text, g_free);
      if (g_file_get_contents (log, &text, NULL, NULL) && strstr (text, worker_init) != NULL)
        break;
      g_usleep (20 * 1000);
    }
  g_test_message ("%s", text);
  g_assert_nonnull (text);
  g_assert_true (g_str_has_prefix (strstr (text, "dirty_post_fork"), post_fork));
  g_assert_nonnull (strstr (text, worker_init));
  g_assert_true (strstr (text, post_fork) < strstr (text, worker_init));
  g_unlink (log);
  g_rmdir (dir);
}

/* ---- stuck calls --------------------------------------------------------- */

typedef struct {
  DirtyTestDaemon *daemon;
  DirtyClient     *client;
  char            *log;
} StuckFixture;

static void
stuck_set_up (StuckFixture *fixture, gconstpointer data)
{
  const char * const *path_args = python_app_path_args ();
  g_autofree char *log_arg = NULL;
  const char *args[4] = { path_args[0], path_args[1], NULL, NULL };
  int fd;

  fixture->log = g_build_filename (g_get_tmp_dir (), "dirty-pystuck-XXXXXX.log", NULL);
  fd = g_mkstemp (fixture->log);
  g_assert_cmpint (fd, >=, 0);
  g_close (fd, NULL);
  log_arg = g_strconcat ("--log-file=", fixture->log, NULL);
  args[2] = log_arg;
  fixture->daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" STUCK "\n"
                                             "dirty_workers=1\ndirty_threads=2\n", args);
  fixture->client = connect_to (fixture->daemon);
}

static void
stuck_tear_down (StuckFixture *fixture, gconstpointer data)
{
  g_clear_object (&fixture->client);
  g_clear_pointer (&fixture->daemon, dirty_test_daemon_stop);
  g_unlink (fixture->log);
  g_free (fixture->log);
}

/* @action overruns its deadline: returns the timeout's detail. */
static char *
call_stuck (StuckFixture *fixture, const char *action)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (STUCK, action);
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(GError) error = NULL;

  dirty_request_set_timeout (request, STUCK_TIMEOUT_MS);
  reply = dirty_client_send_sync (fixture->client, request, NULL, &error);
  g_assert_null (reply);
  g_test_message ("%s: %s\ndetail:\n%s", action, error->message,
                  dirty_error_get_detail (error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_TIMEOUT);
  g_assert_nonnull (dirty_error_get_detail (error));
  return g_strdup (dirty_error_get_detail (error));
}

#define NOT_DESCRIBED "the app did not describe the call within "

/* As call_stuck (), for an action whose Python stack can be taken: the
 * worker gives the app CAPTURE_WAIT_MS (250 ms) to describe its call,
 * and on a machine loaded with other tests (the valgrind shares run side
 * by side) the GIL's hand-over can miss it, as it would in production;
 * the worker then sends the C stack alone, by design. The action ends
 * on cancellation, so the call is tried again, up to three times. */
static char *
call_stuck_described (StuckFixture *fixture, const char *action)
{
  for (guint attempt = 1; ; attempt++)
    {
      g_autofree char *detail = call_stuck (fixture, action);

      if (strstr (detail, NOT_DESCRIBED) == NULL || attempt == 3)
        return g_steal_pointer (&detail);
      g_test_message ("attempt %u: not described in time (a loaded machine); again", attempt);
    }
}

/* A traceback line: File ".../pystuck.py", line N, in FUNCTION */
static void
assert_names_frame (const char *text, const char *function)
{
  g_autofree char *pattern = g_strdup_printf ("  File \"[^\"]*/tests/apps/pystuck\\.py\", "
                                              "line [0-9]+, in %s\\n", function);

  g_assert_true (g_regex_match_simple (pattern, text, 0, 0));
}

/* The log file names @needle (the timeout's journal record has the same
 * text as DIRTY_BACKTRACE), waiting up to 10 s. */
static void
assert_logged (StuckFixture *fixture, const char *needle)
{
  g_free (dirty_test_wait_for_text (fixture->log, needle));
}

/* A def action in a pure-Python busy loop: the Python stack of its
 * thread (the function and its file:line), then the C stack. */
static void
test_stuck_busy (StuckFixture *fixture, gconstpointer data)
{
  g_autofree char *detail = call_stuck_described (fixture, "spin");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) pong = NULL;

  g_assert_true (g_str_has_prefix (detail, "the thread running the call, at its deadline:\n"
                                           "Python stack of the call (its thread, most recent "
                                           "call last):\n"));
  assert_names_frame (detail, "spin_until_cancelled");
  assert_names_frame (detail, "spin");
  /* not the dirty module's dispatching frames */
  g_assert_null (strstr (detail, "in _dispatch\n"));
  g_assert_nonnull (strstr (detail, "C stack of thread "));
  g_assert_nonnull (strstr (detail, "\n#0 "));
  assert_logged (fixture, "in spin_until_cancelled\n");
  /* it honoured the cancellation: the worker serves on */
  pong = execute (fixture->client, STUCK, "ping", "[]", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (pong), ==, "pong");
}

/* An async def action awaiting forever: its task's await chain. */
static void
test_stuck_await (StuckFixture *fixture, gconstpointer data)
{
  g_autofree char *detail = call_stuck_described (fixture, "wait");

  g_assert_nonnull (strstr (detail, "Python stack of the call (its asyncio task awaits, most "
                                    "recent call last):\n"));
  assert_names_frame (detail, "wait");
  assert_names_frame (detail, "wait_forever");
  /* the innermost frame: asyncio's Event.wait */
  g_assert_nonnull (strstr (detail, "asyncio/locks.py\", line "));
  g_assert_null (strstr (detail, "C stack of thread "));
}

/* An async def action that never awaits blocks the asyncio loop: the
 * stack of the loop's thread, from the action on. */
static void
test_stuck_loop (StuckFixture *fixture, gconstpointer data)
{
  g_autofree char *detail = call_stuck_described (fixture, "hog");

  g_assert_true (g_str_has_prefix (detail, "the thread running the call, at its deadline:\n"
                                           "Python stack of the call (its asyncio task runs, "
                                           "blocking the loop, most recent call last):\n"));
  assert_names_frame (detail, "hog");
  assert_names_frame (detail, "hog_the_loop");
  /* neither the loop's own frames nor the dirty module's */
  g_assert_null (strstr (detail, "in run_forever\n"));
  g_assert_null (strstr (detail, "in supervise\n"));
}

/* A C function holds the GIL: no Python stack can be taken, the C stack
 * says where it is, and the detail says why there is only that, in
 * bounded time. */
static void
test_stuck_gil (StuckFixture *fixture, gconstpointer data)
{
  gint64 start = g_get_monotonic_time ();
  g_autofree char *detail = call_stuck (fixture, "hold_gil");
  gint64 elapsed = g_get_monotonic_time () - start;

  g_assert_nonnull (strstr (detail, "(" NOT_DESCRIBED "250 ms; the C "
                                    "stack follows)\n#0 "));
  g_assert_nonnull (strstr (detail, "libcrypt.so"));
  /* the arbiter's 500 ms for the answer, and slack for a loaded machine */
  g_assert_cmpint (elapsed, <, (STUCK_TIMEOUT_MS + 500 + 1500) * 1000);
}

/* ---- dirtyctl ---------------------------------------------------------- */

static int
run_dirtyctl (char **out, char **err, const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int wait_status = 0;

  g_ptr_array_add (argv, (char *) g_getenv ("DIRTY_TEST_DIRTYCTL"));
  g_assert_nonnull (argv->pdata[0]);
  g_ptr_array_add (argv, (char *) "--socket");
  g_ptr_array_add (argv, (char *) dirty_test_daemon_get_socket_path (shared_daemon ()));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                out, err, &wait_status, &error);
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (wait_status));
  return WEXITSTATUS (wait_status);
}

#define DIRTYCTL(out, err, ...) \
  run_dirtyctl ((out), (err), (const char * const[]) { __VA_ARGS__, NULL })

static void
test_dirtyctl (void)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *stream_out = NULL;
  g_autofree char *fail_err = NULL;
  g_autofree char *status = NULL;
  g_autoptr(JsonNode) stats = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_cmpint (DIRTYCTL (&out, &err, "call", NUMSTATS, "describe", "[1, 2, 3]"), ==, 0);
  stats = parse_json (out);
  g_assert_cmpfloat_with_epsilon (member_double (stats, "mean"), 2.0, 1e-12);

  g_assert_cmpint (DIRTYCTL (&stream_out, NULL, "stream", NUMSTATS, "walk",
                             "--kwarg", "steps=5", "--kwarg", "seed=7"), ==, 0);
  lines = g_strsplit (g_strchomp (stream_out), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(JsonNode) chunk = parse_json (lines[i]);
      g_assert_cmpint (json_object_get_int_member (json_node_get_object (chunk), "step"), ==, i);
    }

  /* an app error: exit 3, the message and the Python traceback */
  g_assert_cmpint (DIRTYCTL (NULL, &fail_err, "call", NUMSTATS, "solve", "[[1,2],[2,4]]",
                             "[3,5]"), ==, 3);
  g_assert_true (g_str_has_prefix (fail_err, "dirtyctl: app-error: LinAlgError: Singular matrix\n"));
  g_assert_nonnull (strstr (fail_err, "Traceback (most recent call last):"));
  g_assert_nonnull (strstr (fail_err, ", in solve\n"));

  /* status lists it like any app */
  g_assert_cmpint (DIRTYCTL (&status, NULL, "status"), ==, 0);
  g_assert_nonnull (strstr (status, NUMSTATS " (ready)"));
}

int
main (int argc, char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/python-apps/value", test_value);
  g_test_add_func ("/python-apps/big-integers", test_big_integers);
  g_test_add_func ("/python-apps/nul-string", test_nul_string);
  g_test_add_func ("/python-apps/bytes", test_bytes);
  g_test_add_func ("/python-apps/sync-generator", test_sync_generator);
  g_test_add_func ("/python-apps/async-generator", test_async_generator);
  g_test_add_func ("/python-apps/cancel-generator", test_cancel_generator);
  g_test_add_func ("/python-apps/cancel-async-generator", test_cancel_async_generator);
  g_test_add_func ("/python-apps/exception", test_exception);
  g_test_add_func ("/python-apps/invalid-argument", test_invalid_argument);
  g_test_add_func ("/python-apps/arguments-do-not-fit", test_arguments_do_not_fit);
  g_test_add_func ("/python-apps/dirtyctl", test_dirtyctl);
  g_test_add_func ("/python-apps/broken-apps", test_broken_apps);
  g_test_add_func ("/python-apps/hooks", test_hooks);
  g_test_add ("/python-apps/stuck-busy", StuckFixture, NULL,
              stuck_set_up, test_stuck_busy, stuck_tear_down);
  g_test_add ("/python-apps/stuck-await", StuckFixture, NULL,
              stuck_set_up, test_stuck_await, stuck_tear_down);
  g_test_add ("/python-apps/stuck-loop", StuckFixture, NULL,
              stuck_set_up, test_stuck_loop, stuck_tear_down);
  g_test_add ("/python-apps/stuck-gil", StuckFixture, NULL,
              stuck_set_up, test_stuck_gil, stuck_tear_down);
  status = g_test_run ();
  g_clear_pointer (&daemon_, dirty_test_daemon_stop);
  return status;
}
