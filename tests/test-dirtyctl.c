/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* End-to-end tests of dirtyctl: the real binary against the real
 * dirty-arbiter and its workers, on a temporary socket. Checks what a
 * shell user sees: stdout, stderr and the documented exit codes. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <dirty.h>
#include <glib/gstdio.h>

#include "dirty-test-daemon.h"

#define ECHO    "echo:DirtyEchoApp"
#define COUNTER "counter:DirtyCounterApp"
#define SLOW    "slow:DirtySlowApp"
#define STREAM  "streamapp:DirtyStreamTestApp"
#define FAILINIT "failinit:DirtyFailInitApp"

/* init() of FAILINIT fails while this file exists ($DIRTY_TEST_FAILINIT_FILE) */
static char *fail_file;

#define CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" ECHO ";" COUNTER ";" SLOW ";" STREAM "\n" \
  "dirty_workers=2\n" \
  "dirty_threads=2\n"

/* The streaming app records cancels per worker: one worker, one record. */
#define ONE_WORKER_CONFIG \
  "[dirty-arbiter]\n" \
  "dirty_apps=" STREAM "\n" \
  "dirty_workers=1\n"

static const char *
dirtyctl_path (void)
{
  const char *path = g_getenv ("DIRTY_TEST_DIRTYCTL");

  g_assert_nonnull (path);
  return path;
}

/* Runs dirtyctl with @args (NULL-terminated) and returns its exit status;
 * @out and @err (optional) get its stdout and stderr. With @redirect (">"
 * or "<"), its stdout goes to, or its stdin comes from, the file @path. */
static int
run_ctl_io (const char         *redirect,
            const char         *path,
            DirtyTestDaemon    *daemon,
            char              **out,
            char              **err,
            const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *script = g_strdup_printf ("exec \"$@\" %s \"$0\"", redirect ? redirect : "");
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  g_autoptr(GError) error = NULL;
  int wait_status = 0;

  if (redirect != NULL)
    {
      g_ptr_array_add (argv, (char *) "/bin/sh");
      g_ptr_array_add (argv, (char *) "-c");
      g_ptr_array_add (argv, script);
      g_ptr_array_add (argv, (char *) path);
    }
  dirty_test_add_valgrind (argv);
  g_ptr_array_add (argv, (char *) dirtyctl_path ());
  if (daemon != NULL)
    {
      g_ptr_array_add (argv, (char *) "--socket");
      g_ptr_array_add (argv, (char *) dirty_test_daemon_get_socket_path (daemon));
    }
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                &stdout_text, &stderr_text, &wait_status, &error);
  g_assert_no_error (error);
  g_test_message ("dirtyctl %s: %s", args[0], stderr_text);
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  if (err != NULL)
    *err = g_steal_pointer (&stderr_text);
  g_assert_true (WIFEXITED (wait_status));
  return WEXITSTATUS (wait_status);
}

static int
run_ctl (DirtyTestDaemon    *daemon,
         char              **out,
         char              **err,
         const char * const *args)
{
  return run_ctl_io (NULL, NULL, daemon, out, err, args);
}

#define RUN(daemon, out, err, ...) \
  run_ctl ((daemon), (out), (err), (const char * const[]) { __VA_ARGS__, NULL })

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

/* ---- help and usage --------------------------------------------------- */

static void
test_help (void)
{
  static const char *const verbs[] = { "call", "stream", "status", "metrics", "workers", "reload" };
  g_autofree char *out = NULL;

  g_assert_cmpint (RUN (NULL, &out, NULL, "--help"), ==, 0);
  g_assert_nonnull (strstr (out, "Exit status:"));
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_autofree char *verb_out = NULL;

      g_assert_cmpint (RUN (NULL, &verb_out, NULL, verbs[i], "--help"), ==, 0);
      g_assert_nonnull (strstr (verb_out, verbs[i]));
      g_assert_nonnull (strstr (verb_out, "Exit status:"));
      g_assert_nonnull (strstr (verb_out, "--socket"));
    }
  g_assert_cmpint (RUN (NULL, NULL, NULL, "frobnicate"), ==, 1);
  g_assert_cmpint (RUN (NULL, NULL, NULL, "call", ECHO), ==, 1);
  g_assert_cmpint (RUN (NULL, NULL, NULL, "workers", "add", "0"), ==, 1);
  g_assert_cmpint (RUN (NULL, NULL, NULL, "call", ECHO, "echo", "--kwarg", "novalue"), ==, 1);
  g_assert_cmpint (RUN (NULL, NULL, NULL, "call", ECHO, "echo", "@/nonexistent/file"), ==, 1);
}

/* ---- call --------------------------------------------------------------- */

static void
test_call (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *file = g_build_filename (dirty_test_daemon_get_dir (daemon), "in.bin", NULL);
  g_autofree char *copy = g_build_filename (dirty_test_daemon_get_dir (daemon), "out.bin", NULL);
  static const char data[] = "raw\0bytes\xff";
  g_autofree char *out = NULL;
  g_autofree char *written = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonNode) expected = NULL;
  gsize length;

  /* JSON arguments, and words that are no JSON passed as strings */
  g_assert_cmpint (RUN (daemon, &out, NULL, "call", ECHO, "add", "20", "22"), ==, 0);
  g_assert_cmpstr (out, ==, "42\n");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (RUN (daemon, &out, NULL, "call", ECHO, "echo", "hello", "[1,{\"a\":null}]"), ==, 0);
  node = parse_json (out);
  expected = parse_json ("[\"hello\", [1, {\"a\": null}]]");
  g_assert_true (json_node_equal (node, expected));
  /* JSON that reads back (json-glib's generator wrote 1e+20.0), doubles
   * in their fewest digits, members in their order */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (RUN (daemon, &out, NULL, "call", ECHO, "echo", "1e20", "0.1", "2.0",
                        "{\"z\":[],\"a\":{}}"), ==, 0);
  g_assert_cmpstr (out, ==, "[\n  1e+20,\n  0.1,\n  2.0,\n  {\n    \"z\": [],\n    \"a\": {}\n  }\n]\n");

  /* --kwarg, its value parsed as JSON */
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", COUNTER, "reset"), ==, 0);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", COUNTER, "incr", "--kwarg", "n=5"), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (RUN (daemon, &out, NULL, "call", COUNTER, "get"), ==, 0);
  g_assert_cmpstr (out, ==, "5\n");

  /* @file travels as bytes; a bytes result goes to --output, else is summarised */
  g_assert_true (g_file_set_contents (file, data, sizeof data, NULL));
  {
    g_autofree char *arg = g_strconcat ("@", file, NULL);

    g_assert_cmpint (RUN (daemon, NULL, NULL, "call", ECHO, "echo_bytes", arg, "--output", copy), ==, 0);
    g_assert_true (g_file_get_contents (copy, &written, &length, NULL));
    g_assert_cmpmem (written, length, data, sizeof data);
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (RUN (daemon, &out, NULL, "call", ECHO, "echo_bytes", arg), ==, 0);
    g_clear_pointer (&node, json_node_unref);
    node = parse_json (out);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "size"), ==, sizeof data);
  }
  /* @- is standard input's bytes (a pipe has one end: once) */
  {
    const char *from_stdin[] = { "call", ECHO, "echo_bytes", "@-", "--output", copy, NULL };
    const char *twice[] = { "call", ECHO, "echo", "@-", "@-", NULL };
    g_autofree char *err = NULL;

    g_unlink (copy);
    g_clear_pointer (&written, g_free);
    g_assert_cmpint (run_ctl_io ("<", file, daemon, NULL, NULL, from_stdin), ==, 0);
    g_assert_true (g_file_get_contents (copy, &written, &length, NULL));
    g_assert_cmpmem (written, length, data, sizeof data);
    g_assert_cmpint (run_ctl_io ("<", file, daemon, NULL, &err, twice), ==, 1);
    g_assert_nonnull (strstr (err, "@- (standard input) can be given once"));
  }
}

/* Output that cannot be written fails (exit 1, saying so): a result
 * printed to a full disk exited 0. A device or a pipe is a fine
 * --output: its bytes are written there (there is no file to replace). */
static void
test_output (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *file = g_build_filename (dirty_test_daemon_get_dir (daemon), "in.bin", NULL);
  g_autofree char *arg = g_strconcat ("@", file, NULL);
  static const char data[] = "raw bytes\xff";   /* stdout is read as a string */
  const char *const *verbs[] = {
    (const char *const[]) { "call", ECHO, "echo", "hello", NULL },
    (const char *const[]) { "stream", STREAM, "count", "--kwarg", "n=3", NULL },
    (const char *const[]) { "status", NULL },
    (const char *const[]) { "metrics", NULL },
  };
  g_autofree char *out = NULL;
  g_autoptr(JsonNode) node = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_autofree char *err = NULL;

      g_assert_cmpint (run_ctl_io (">", "/dev/full", daemon, NULL, &err, verbs[i]), ==, 1);
      g_assert_nonnull (strstr (err, "cannot write to standard output: No space left on device"));
    }

  g_assert_true (g_file_set_contents (file, data, -1, NULL));
  g_assert_cmpint (RUN (daemon, &out, NULL, "call", ECHO, "echo_bytes", arg, "-o", "/dev/stdout"),
                   ==, 0);
  g_assert_cmpstr (out, ==, data);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", ECHO, "echo_bytes", arg, "-o", "/dev/full"),
                   ==, 1);
  /* echo gives bytes back as bytes */
  g_assert_cmpint (RUN (daemon, &out, NULL, "call", ECHO, "echo", arg), ==, 0);
  node = parse_json (out);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "size"), ==,
                   strlen (data));
}

/* The calls an app has ended, from status --json */
static gint64
app_served (DirtyTestDaemon *daemon,
            const char      *app)
{
  g_autofree char *out = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *apps;

  g_assert_cmpint (RUN (daemon, &out, NULL, "status", "--json"), ==, 0);
  root = parse_json (out);
  apps = json_object_get_object_member (json_node_get_object (root), "apps");
  return json_object_get_int_member (json_object_get_object_member (apps, app), "served");
}

/* --output that cannot be written fails before the call is sent (the
 * work is not done for nothing); a stream's --output is replaced, not
 * appended to, and holds its bytes chunks in order, also those that came
 * before the stream failed. */
static void
test_output_file (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  const char *dir = dirty_test_daemon_get_dir (daemon);
  g_autofree char *missing = g_build_filename (dir, "no", "such", "dir", NULL);
  g_autofree char *file = g_build_filename (dir, "chunks.bin", NULL);
  const char *bad[] = { dir, missing };
  g_autofree char *contents = NULL;
  gsize length;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *err = NULL;
      gint64 served = app_served (daemon, COUNTER);

      g_assert_cmpint (RUN (daemon, NULL, &err, "call", COUNTER, "incr", "-o", bad[i]), ==, 1);
      g_assert_nonnull (strstr (err, "cannot write the result to"));
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (RUN (daemon, NULL, &err, "stream", STREAM, "count", "-o", bad[i]), ==, 1);
      g_assert_cmpint (app_served (daemon, COUNTER), ==, served);
    }

  g_assert_true (g_file_set_contents (file, "old contents", -1, NULL));
  g_assert_cmpint (RUN (daemon, NULL, NULL, "stream", STREAM, "count", "-k", "n=3",
                        "-k", "kind=\"bytes\"", "-k", "size=2", "-o", file), ==, 0);
  g_assert_true (g_file_get_contents (file, &contents, &length, NULL));
  g_assert_cmpmem (contents, length, "\0\0\1\1\2\2", 6);
  g_clear_pointer (&contents, g_free);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "stream", STREAM, "count", "-k", "n=5",
                        "-k", "kind=\"bytes\"", "-k", "size=1", "-k", "error_after=2",
                        "-o", file), ==, 3);
  g_assert_true (g_file_get_contents (file, &contents, &length, NULL));
  g_assert_cmpmem (contents, length, "\0\1", 2);
}

/* What a shell user types that GLib or json-glib would take otherwise:
 * "--" before negative numbers (GLib leaves it in argv then), and
 * integers beyond 64 bits (json-glib 1.6 wraps them around: 2^64 - 1
 * came back as -1); they travel as the nearest double, as the protocol
 * reads them. */
static void
test_call_literals (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  struct {
    const char *args[7];
    const char *expected;
  } cases[] = {
    { { "add", "--", "-5", "2" }, "-3" },
    { { "echo", "--", "--" }, "\"--\"" },
    { { "echo", "x", "--", "y" }, "[\"x\",\"y\"]" },
    /* in one run: dirtyctl under valgrind takes seconds */
    { { "echo", "18446744073709551615", "[9223372036854775808,\"9223372036854775808\",1.25]",
        "id18446744073709551615", "--", "-9223372036854775808" },
      "[1.8446744073709552e+19,[9.2233720368547758e+18,\"9223372036854775808\",1.25],"
      "\"id18446744073709551615\",-9223372036854775808]" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *argv[10] = { "call", ECHO };
      g_autofree char *out = NULL;
      g_autoptr(JsonNode) got = NULL;
      g_autoptr(JsonNode) expected = parse_json (cases[i].expected);

      for (guint k = 0; cases[i].args[k] != NULL; k++)
        argv[2 + k] = cases[i].args[k];
      g_assert_cmpint (run_ctl (daemon, &out, NULL, argv), ==, 0);
      got = parse_json (out);
      g_test_message ("%s -> %s", cases[i].args[1], out);
      /* a wrapped integer differs in sign or size from the double */
      g_assert_true (json_node_equal (got, expected));
    }
}

static void
test_call_errors (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *err = NULL;

  g_assert_cmpint (RUN (daemon, NULL, &err, "call", ECHO, "fail", "on purpose"), ==, 3);
  g_assert_true (g_str_has_prefix (err, "dirtyctl: app-error: on purpose"));
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", ECHO, "nope"), ==, 4);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", "nope:Nope", "x"), ==, 4);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", SLOW, "sleep", "10", "--timeout", "300"), ==, 5);
  /* empty names are a usage error, said so (they were criticals) */
  for (guint i = 0; i < 2; i++)
    {
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (RUN (daemon, NULL, &err, i == 0 ? "call" : "stream", "", "x"), ==, 1);
      g_assert_nonnull (strstr (err, "needs a non-empty APP and ACTION"));
      g_assert_null (strstr (err, "CRITICAL"));
    }
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (RUN (daemon, NULL, &err, "call", ECHO, ""), ==, 1);
  g_assert_nonnull (strstr (err, "needs a non-empty APP and ACTION"));
  g_assert_cmpint (run_ctl (NULL, NULL, NULL, (const char * const[]) {
                     "--socket", "/nonexistent/dirty.sock", "status", NULL }), ==, 2);
}

/* ---- stream ------------------------------------------------------------- */

static void
test_stream (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *out = NULL;

  /* other chunks: one JSON line each, in order */
  g_assert_cmpint (RUN (daemon, &out, NULL, "stream", STREAM, "count", "--kwarg", "n=5"), ==, 0);
  g_assert_cmpstr (out, ==, "0\n1\n2\n3\n4\n");
  /* string chunks as they are */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (RUN (daemon, &out, NULL, "stream", STREAM, "count", "-k", "n=3",
                        "-k", "kind=\"string\""), ==, 0);
  g_assert_cmpstr (out, ==, "0\n1\n2\n");
  g_assert_cmpint (RUN (daemon, NULL, NULL, "stream", STREAM, "count", "-k", "n=5",
                        "-k", "error_after=2"), ==, 3);
}

static gint64
cancel_fired (DirtyClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) report = dirty_client_execute_sync (client, STREAM, "cancel_report",
                                                          NULL, NULL, NULL, &error);

  g_assert_no_error (error);
  return json_object_get_int_member (json_node_get_object (report), "stopped");
}

/* The worker's action stopped (a bounded wait: it is another process) */
static void
assert_cancel_fired (DirtyClient *client)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (cancel_fired (client) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (50 * 1000);
  g_assert_cmpint (cancel_fired (client), >, 0);
}

/* dirtyctl streaming the count app's chunks for ever (@interval, a
 * kwarg, apart); @lines reads its stdout, @flags adds to the pipe */
static GSubprocess *
spawn_endless_stream (DirtyTestDaemon    *daemon,
                      GSubprocessFlags    flags,
                      const char         *interval,
                      GDataInputStream  **lines)
{
  g_autoptr(GError) error = NULL;
  GSubprocess *ctl = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | flags, &error,
                                       dirtyctl_path (), "--socket",
                                       dirty_test_daemon_get_socket_path (daemon), "stream",
                                       STREAM, "count", "--kwarg", "n=-1", "--kwarg", interval,
                                       NULL);

  g_assert_no_error (error);
  *lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (ctl));
  return ctl;
}

/* Ctrl-C: the action sees its cancellable fire, dirtyctl exits 130 */
static void
test_stream_interrupt (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (ONE_WORKER_CONFIG, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon),
                                                         NULL, &error);
  g_autoptr(GSubprocess) ctl = NULL;
  g_autoptr(GDataInputStream) lines = NULL;

  g_assert_no_error (error);
  g_assert_cmpint (cancel_fired (client), ==, 0);
  ctl = spawn_endless_stream (daemon, G_SUBPROCESS_FLAGS_NONE, "interval=0.05", &lines);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *line = g_data_input_stream_read_line (lines, NULL, NULL, &error);
      g_autofree char *expected = g_strdup_printf ("%d", i);

      g_assert_no_error (error);
      g_assert_cmpstr (line, ==, expected);
    }
  g_subprocess_send_signal (ctl, SIGINT);
  g_subprocess_wait (ctl, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (ctl));
  g_assert_cmpint (g_subprocess_get_exit_status (ctl), ==, 130);

  assert_cancel_fired (client);
}

/* dirtyctl stream ... | head: once the reader has gone, dirtyctl ends by
 * SIGPIPE, as any tool in a pipeline, without a message (GIO ignores
 * the signal; it printed “Broken pipe” and exited 1), and the worker's
 * action is cancelled. */
static void
test_stream_closed_pipe (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (ONE_WORKER_CONFIG, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon),
                                                         NULL, &error);
  g_autoptr(GSubprocess) ctl = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  char err[256];
  gsize err_length = 0;

  g_assert_no_error (error);
  ctl = spawn_endless_stream (daemon, G_SUBPROCESS_FLAGS_STDERR_PIPE, "interval=0.02", &lines);
  for (int i = 0; i < 2; i++)
    g_free (g_data_input_stream_read_line (lines, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_input_stream_close (g_subprocess_get_stdout_pipe (ctl), NULL, &error));
  g_assert_true (g_input_stream_read_all (g_subprocess_get_stderr_pipe (ctl), err, sizeof err,
                                          &err_length, NULL, &error));
  g_assert_true (g_subprocess_wait (ctl, NULL, &error));
  g_assert_true (g_subprocess_get_if_signaled (ctl));
  g_assert_cmpint (g_subprocess_get_term_sig (ctl), ==, SIGPIPE);
  g_assert_cmpuint (err_length, ==, 0);

  assert_cancel_fired (client);
}

/* ---- status ------------------------------------------------------------- */

static void
assert_members (JsonObject *object, const char * const *names)
{
  for (guint i = 0; names[i] != NULL; i++)
    if (!json_object_has_member (object, names[i]))
      g_error ("status lacks member “%s”", names[i]);
}

/* STATUS once every worker's echo app has ended its init (): a worker
 * says hello before, and under valgrind init () takes a while */
static JsonNode *
status_once_ready (DirtyTestDaemon *daemon)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC * dirty_test_timeout_scale ();

  for (;;)
    {
      g_autofree char *out = NULL;
      g_autoptr(JsonNode) root = NULL;
      JsonArray *workers;
      gboolean ready = TRUE;

      g_assert_cmpint (RUN (daemon, &out, NULL, "status", "--json"), ==, 0);
      root = parse_json (out);
      workers = json_object_get_array_member (json_node_get_object (root), "workers");
      for (guint i = 0; i < json_array_get_length (workers); i++)
        {
          JsonObject *worker = json_array_get_object_element (workers, i);
          JsonObject *apps = json_object_get_object_member (worker, "apps");

          ready = ready && g_strcmp0 (json_object_get_string_member (apps, ECHO), "ready") == 0;
        }
      if (ready || g_get_monotonic_time () >= end)
        return g_steal_pointer (&root);
      g_usleep (100 * 1000);
    }
}

static void
test_status (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *table = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_auto(GStrv) rows = NULL;
  JsonObject *arbiter, *app;
  JsonArray *workers;
  guint worker_rows = 0;

  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", ECHO, "add", "1", "2"), ==, 0);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", ECHO, "fail"), ==, 3);
  root = status_once_ready (daemon);

  arbiter = json_object_get_object_member (json_node_get_object (root), "arbiter");
  assert_members (arbiter, (const char *[]) { "pid", "uptime_s", "state", "connections",
                  "connections_total", "workers", "workers_configured", "in_flight",
                  "queued", "served", "errors", "generation", "reloading", "held_apps", NULL });
  g_assert_cmpint (json_object_get_int_member (arbiter, "pid"), ==,
                   dirty_test_daemon_get_pid (daemon));
  g_assert_cmpint (json_object_get_int_member (arbiter, "workers"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (arbiter, "connections"), >=, 1);

  workers = json_object_get_array_member (json_node_get_object (root), "workers");
  g_assert_cmpuint (json_array_get_length (workers), ==, 2);
  for (guint i = 0; i < 2; i++)
    {
      JsonObject *worker = json_array_get_object_element (workers, i);

      assert_members (worker, (const char *[]) { "id", "pid", "state", "apps", "in_flight",
                      "served", "errors", "rss_bytes", "uptime_s", "restarts", "generation",
                      NULL });
      g_assert_cmpint (json_object_get_int_member (worker, "generation"), ==, 1);
      g_assert_cmpstr (json_object_get_string_member (worker, "state"), ==, "live");
      g_assert_cmpint (json_object_get_int_member (worker, "rss_bytes"), >, 0);
      g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (worker, "apps"),
                                                      ECHO), ==, "ready");
    }

  app = json_object_get_object_member (json_object_get_object_member (json_node_get_object (root),
                                                                      "apps"), ECHO);
  assert_members (app, (const char *[]) { "queued", "in_flight", "served", "errors",
                  "timeouts", "cancels", "latency_ms", NULL });
  g_assert_cmpint (json_object_get_int_member (app, "served"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (app, "errors"),
                                               "app-error"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (app, "latency_ms"),
                                               "window"), ==, 2);

  /* the table: a row per worker */
  g_assert_cmpint (RUN (daemon, &table, NULL, "status"), ==, 0);
  rows = g_strsplit (table, "\n", -1);
  for (guint i = 0; rows[i] != NULL; i++)
    if (g_regex_match_simple ("^[12] +[0-9]+ +live ", rows[i], 0, 0))
      worker_rows++;
  g_assert_cmpuint (worker_rows, ==, 2);
  g_assert_nonnull (strstr (table, ECHO));
}

/* ---- metrics ------------------------------------------------------------ */

/* The OpenMetrics text format, as far as dirtyctl uses it: every line a
 * TYPE, HELP or sample; TYPE first for each family, families never
 * reopened; a counter's samples end in _total; each series once; values
 * are numbers; "# EOF" last. */
static void
validate_openmetrics (const char *text)
{
  g_autoptr(GRegex) sample = g_regex_new (
    "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
    "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\""
    "(?:,[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\")*\\})? (\\S+)$", 0, 0, NULL);
  g_autoptr(GHashTable) families = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) series = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = NULL;
  g_autofree char *family = NULL;
  guint n;

  g_assert_true (g_str_has_suffix (text, "\n# EOF\n"));
  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines) - 2;   /* "# EOF" and the empty string after it */
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GMatchInfo) match = NULL;
      g_auto(GStrv) words = g_strsplit (lines[i], " ", 4);

      if (g_str_equal (words[0], "#") && g_strv_length (words) >= 4 &&
          g_str_equal (words[1], "TYPE"))
        {
          g_assert_false (g_hash_table_contains (families, words[2]));
          g_assert_true (g_strv_contains ((const char *[]) { "counter", "gauge", "summary",
                         "histogram", "info", "stateset", "unknown", NULL }, words[3]));
          g_hash_table_insert (families, g_strdup (words[2]), g_strdup (words[3]));
          g_free (family);
          family = g_strdup (words[2]);
        }
      else if (g_str_equal (words[0], "#") && g_strv_length (words) >= 3 &&
               g_str_equal (words[1], "HELP"))
        g_assert_cmpstr (words[2], ==, family);
      else
        {
          g_autofree char *name = NULL;
          g_autofree char *value = NULL;
          const char *type = family ? g_hash_table_lookup (families, family) : NULL;
          char *end;

          if (!g_regex_match (sample, lines[i], 0, &match))
            g_error ("not an OpenMetrics line: “%s”", lines[i]);
          g_assert_nonnull (type);   /* TYPE before samples */
          name = g_match_info_fetch (match, 1);
          value = g_match_info_fetch (match, 3);
          g_ascii_strtod (value, &end);
          g_assert_true (*end == '\0');
          if (g_str_equal (type, "counter"))
            g_assert_true (g_str_has_suffix (name, "_total") &&
                           strlen (name) == strlen (family) + strlen ("_total"));
          else
            g_assert_cmpstr (name, ==, family);
          g_assert_true (g_str_has_prefix (name, family));
          /* name and labels: each series once */
          g_assert_true (g_hash_table_add (series, g_strndup (lines[i],
                                                              strrchr (lines[i], ' ') - lines[i])));
        }
    }
}

static void
test_metrics (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *out = NULL;
  g_autofree char *path = g_build_filename (dirty_test_daemon_get_dir (daemon), "m.prom", NULL);

  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", ECHO, "fail"), ==, 3);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", SLOW, "sleep", "10", "--timeout", "100"), ==, 5);
  g_assert_cmpint (RUN (daemon, &out, NULL, "metrics"), ==, 0);
  validate_openmetrics (out);
  g_assert_nonnull (strstr (out, "dirty_app_errors_total{app=\"" ECHO "\",code=\"app-error\"} 1\n"));
  g_assert_nonnull (strstr (out, "dirty_app_timeouts_total{app=\"" SLOW "\"} 1\n"));
  g_assert_nonnull (strstr (out, "dirty_arbiter_workers 2\n"));

  /* and Prometheus' own OpenMetrics parser, where it is installed */
  if (g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    {
      const char *script =
        "import sys\n"
        "try:\n"
        "    from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"
        "except ImportError:\n"
        "    sys.exit(77)\n"
        "print(len(list(text_string_to_metric_families(open(sys.argv[1]).read()))))\n";
      g_autofree char *parsed = NULL;
      int wait_status = 0;

      g_assert_true (g_file_set_contents (path, out, -1, NULL));
      g_spawn_sync (NULL, (char *[]) { (char *) "/usr/bin/python3", (char *) "-c",
                    (char *) script, path, NULL }, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                    &parsed, NULL, &wait_status, NULL);
      if (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 77)
        g_test_message ("python3-prometheus-client is not installed: own validator only");
      else
        g_assert_cmpint (wait_status, ==, 0);
    }
}

/* ---- MANAGE -------------------------------------------------------------- */

static void
test_manage (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  g_autofree char *out = NULL;
  g_autofree char *reloaded = NULL;
  g_autofree char *err = NULL;

  g_assert_cmpint (RUN (daemon, &out, NULL, "workers", "add", "1"), ==, 0);
  g_assert_cmpstr (out, ==, "workers: 3\n");
  /* past the arbiter's bound: refused in words a shell user can follow */
  g_assert_cmpint (RUN (daemon, NULL, &err, "workers", "add", "99999"), ==, 3);
  g_assert_nonnull (strstr (err, "the workers to add (or to remove, when below 0), must be a "
                                 "non-zero integer from -1024 to 1024"));
  g_assert_cmpint (RUN (daemon, &reloaded, NULL, "reload"), ==, 0);
  g_assert_cmpstr (reloaded, ==, "generation: 2\n");
}

/* Polls status and metrics until both say whether a reload is held */
static void
wait_reload_shown (DirtyTestDaemon *daemon,
                   gboolean         held)
{
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC * dirty_test_timeout_scale ();

  for (;;)
    {
      g_autofree char *table = NULL;
      g_autofree char *metrics = NULL;
      gboolean shown;

      g_assert_cmpint (RUN (daemon, &table, NULL, "status"), ==, 0);
      g_assert_cmpint (RUN (daemon, &metrics, NULL, "metrics"), ==, 0);
      validate_openmetrics (metrics);
      /* and the worker kept is marked old */
      shown = strstr (table, "Reload:  held: " FAILINIT " did not start in the new workers; "
                             "the old ones serve it\n") != NULL &&
              g_regex_match_simple ("^[0-9]+ +[0-9]+ +old ", table, G_REGEX_MULTILINE, 0) &&
              strstr (metrics, "\ndirty_arbiter_reloading 1\n") != NULL;
      if (held ? shown : (strstr (table, "Reload:") == NULL && strstr (table, " old ") == NULL &&
                          strstr (metrics, "\ndirty_arbiter_reloading 0\n") != NULL))
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (100 * 1000);
    }
}

/* A reload held by an app that does not start in the new workers: the
 * operator sees it in status and metrics, and sees it end. */
static void
test_reload_held (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO ";" FAILINIT "\n", NULL);
  g_autofree char *out = NULL;

  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", FAILINIT, "ok"), ==, 0);
  g_assert_true (g_file_set_contents (fail_file, "", 0, NULL));
  g_assert_cmpint (RUN (daemon, &out, NULL, "reload"), ==, 0);
  g_assert_cmpstr (out, ==, "generation: 2\n");
  wait_reload_shown (daemon, TRUE);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "call", FAILINIT, "ok"), ==, 0);
  g_unlink (fail_file);
  wait_reload_shown (daemon, FALSE);
}

/* A stopped (or hung) arbiter still accepts connections (the kernel
 * does), and never answers: the control verbs give up after --timeout
 * with exit status 5 and say so, rather than hang with it. */
static void
test_control_timeout (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (CONFIG, NULL);
  GPid pid = dirty_test_daemon_get_pid (daemon);
  const char *verbs[][3] = { { "status" }, { "metrics" }, { "reload" }, { "workers", "add", "1" } };
  g_autofree char *out = NULL;

  /* refused before anything is sent: a reload does not happen */
  g_assert_cmpint (RUN (daemon, NULL, NULL, "status", "--timeout=-1"), ==, 1);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "reload", "--timeout=soon"), ==, 1);
  g_assert_cmpint (RUN (daemon, &out, NULL, "reload"), ==, 0);
  g_assert_cmpstr (out, ==, "generation: 2\n");
  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_autofree char *err = NULL;
      const char *args[] = { verbs[i][0], "--timeout=300", verbs[i][1], verbs[i][2], NULL };

      g_assert_cmpint (run_ctl (daemon, NULL, &err, args), ==, 5);
      g_assert_nonnull (strstr (err, "did not answer within 300 ms"));
    }
  g_assert_cmpint (kill (pid, SIGCONT), ==, 0);
  g_assert_cmpint (RUN (daemon, NULL, NULL, "status", "-t", "20000"), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  /* before any thread exists: the daemons' workers inherit it */
  fail_file = dirty_test_export_temp_path ("DIRTY_TEST_FAILINIT_FILE", "dirtyctl-fail");

  g_test_add_func ("/dirtyctl/help", test_help);
  g_test_add_func ("/dirtyctl/call", test_call);
  g_test_add_func ("/dirtyctl/call-literals", test_call_literals);
  g_test_add_func ("/dirtyctl/call-errors", test_call_errors);
  g_test_add_func ("/dirtyctl/output", test_output);
  g_test_add_func ("/dirtyctl/output-file", test_output_file);
  g_test_add_func ("/dirtyctl/stream", test_stream);
  g_test_add_func ("/dirtyctl/stream-interrupt", test_stream_interrupt);
  g_test_add_func ("/dirtyctl/stream-closed-pipe", test_stream_closed_pipe);
  g_test_add_func ("/dirtyctl/status", test_status);
  g_test_add_func ("/dirtyctl/metrics", test_metrics);
  g_test_add_func ("/dirtyctl/manage", test_manage);
  g_test_add_func ("/dirtyctl/reload-held", test_reload_held);
  g_test_add_func ("/dirtyctl/control-timeout", test_control_timeout);
  return g_test_run ();
}
