/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's lifecycle against the real binary: SIGTERM drains,
 * SIGQUIT stops at once, SIGHUP reloads without failing a call, SIGUSR1
 * reopens the log file, SIGTTIN/SIGTTOU and MANAGE scale the pool, and
 * MODULE:TypeName:N puts an app on N workers only. Raw protocol frames,
 * so MANAGE is tested as any client would send it. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <glib/gstdio.h>

#include "dirty-message.h"
#include "dirty-test-daemon.h"
#include "dirty-test-raw.h"

#define TESTAPP  "testapp:DirtyTestApp"
#define ECHO     "echo:DirtyEchoApp"
#define FAILINIT "failinit:DirtyFailInitApp"

/* init() of FAILINIT hangs while this file exists ($DIRTY_TEST_FAILINIT_HANG) */
static char *hang_file;
/* and fails while this one does ($DIRTY_TEST_FAILINIT_FILE) */
static char *fail_file;

static DirtyLimits limits;

static GSocket *
raw_connect (DirtyTestDaemon *daemon)
{
  return dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon));
}

/* ---- raw protocol ---- */

/* Sends @type with @json and reads the answer: the "result" member of a
 * RESPONSE, or NULL with @code (and @message) set from an ERROR. */
static JsonNode *
exchange (GSocket     *socket,
          DirtyFrameType type,
          guint64      id,
          const char  *json,
          char       **code,
          char       **message)
{
  g_autoptr(JsonNode) body = json_from_string (json, NULL);
  g_autoptr(DirtyFrame) frame = dirty_frame_encode (type, 0, id, 0, body, NULL);
  g_autoptr(DirtyFrame) reply = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;

  g_assert_true (dirty_test_raw_send_frame (socket, frame));
  reply = dirty_test_raw_read_frame (socket);
  if (reply == NULL)
    {
      *code = g_strdup ("eof");
      return NULL;
    }
  g_assert_cmpuint (reply->header.id, ==, id);
  g_assert_true (dirty_frame_decode (reply, &limits, &root, &attachments, NULL));
  if (reply->header.type == DIRTY_FRAME_ERROR)
    {
      *code = g_strdup (dirty_json_get_string (root, "code"));
      if (message != NULL)
        *message = g_strdup (dirty_json_get_string (root, "message"));
      return NULL;
    }
  g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_RESPONSE);
  return json_node_copy (json_object_get_member (json_node_get_object (root), "result"));
}

static JsonNode *
call (GSocket *socket, guint64 id, const char *app, const char *action, const char *args,
      char **code)
{
  g_autofree char *json = g_strdup_printf ("{\"app\":\"%s\",\"action\":\"%s\",\"args\":%s}",
                                           app, action, args);

  return exchange (socket, DIRTY_FRAME_REQUEST, id, json, code, NULL);
}

static gint64 call_int (GSocket *socket, const char *app, const char *action);

/* Right after a worker is killed the arbiter may not have read its EOF
 * yet, and a call sent to it then rightly ends with worker-lost: retry
 * those (a bounded number of times), nothing else. */
static gint64
call_int_after_worker_death (GSocket *socket, const char *app, const char *action)
{
  static guint64 id = 1000000;

  for (guint attempt = 0; attempt < 20; attempt++)
    {
      g_autofree char *code = NULL;
      g_autoptr(JsonNode) result = call (socket, ++id, app, action, "[]", &code);

      if (code == NULL)
        return json_node_get_int (result);
      g_assert_cmpstr (code, ==, "worker-lost");
      g_usleep (50 * 1000);
    }
  g_assert_not_reached ();
}

static gint64
call_int (GSocket *socket, const char *app, const char *action)
{
  static guint64 id;
  g_autofree char *code = NULL;
  g_autoptr(JsonNode) result = call (socket, ++id, app, action, "[]", &code);

  g_assert_cmpstr (code, ==, NULL);
  return json_node_get_int (result);
}

/* MANAGE: the integer @member of the result, or -1 with @code set */
static gint64
manage (GSocket *socket, const char *json, const char *member, char **code, char **message)
{
  static guint64 id;
  g_autoptr(JsonNode) result = exchange (socket, DIRTY_FRAME_MANAGE, ++id, json, code, message);

  if (result == NULL)
    return -1;
  return json_object_get_int_member (json_node_get_object (result), member);
}

/* ---- processes ---- */

static GArray *
workers_of (DirtyTestDaemon *daemon)
{
  return dirty_test_list_children (dirty_test_daemon_get_pid (daemon));
}

static gboolean
worker_loads (GPid pid, const char *app)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/cmdline", pid);
  g_autofree char *cmdline = NULL;
  g_autofree char *needle = g_strconcat ("--app=", app, NULL);
  gsize length;

  if (!g_file_get_contents (path, &cmdline, &length, NULL))
    return FALSE;
  for (gsize i = 0; i < length; i += strlen (cmdline + i) + 1)
    if (g_str_equal (cmdline + i, needle))
      return TRUE;
  return FALSE;
}

/* Live workers loading @app */
static guint
count_loading (DirtyTestDaemon *daemon, const char *app)
{
  g_autoptr(GArray) pids = workers_of (daemon);
  guint n = 0;

  for (guint i = 0; i < pids->len; i++)
    n += dirty_test_pid_alive (g_array_index (pids, GPid, i)) &&
         worker_loads (g_array_index (pids, GPid, i), app);
  return n;
}

static guint
count_live_workers (DirtyTestDaemon *daemon)
{
  g_autoptr(GArray) pids = workers_of (daemon);
  guint n = 0;

  for (guint i = 0; i < pids->len; i++)
    n += dirty_test_pid_alive (g_array_index (pids, GPid, i));
  return n;
}

static void
wait_for_workers (DirtyTestDaemon *daemon, guint n)
{
  gint64 end = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  while (count_live_workers (daemon) != n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (20 * 1000);
    }
}

/* A forked worker shows the arbiter's command line until it has exec'd
 * dirty-worker: wait for that rather than read it at once. */
static void
wait_loading (DirtyTestDaemon *daemon, const char *app, guint n)
{
  gint64 end = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  while (count_loading (daemon, app) != n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (20 * 1000);
    }
}

static void
wait_gone (GPid pid)
{
  dirty_test_wait_gone (pid, 15000);
}

static char *
config_path (DirtyTestDaemon *daemon)
{
  return g_build_filename (dirty_test_daemon_get_dir (daemon), "dirty-arbiter.conf", NULL);
}

static void
rewrite_config (DirtyTestDaemon *daemon, const char *text)
{
  g_autofree char *path = config_path (daemon);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* ---- SIGTERM, SIGQUIT ---- */

/* What becomes of the workers once the daemon has exited */
typedef enum {
  WORKERS_UNCHECKED,
  WORKERS_DEAD,        /* already, when the daemon's exit is seen */
  WORKERS_GONE,        /* soon after */
} WorkersEnd;

/* A call is in flight when the daemon gets @signum; it exits 0 within
 * @timeout_ms, and the call gets a @reply_type answer. */
typedef struct {
  const char     *config;          /* the lines after dirty_apps= */
  const char     *action_args;     /* the call in flight: action and args */
  int             signum;
  guint           timeout_ms;
  gboolean        late_refused;    /* a call sent after the signal gets shutting-down */
  guint           min_seconds;     /* between the signal and the exit */
  guint           max_seconds;     /* (0: either not checked) */
  DirtyFrameType  reply_type;
  gboolean        reply_optional;  /* or no answer at all */
  WorkersEnd      workers;
  gboolean        quiet;           /* the workers' ends logged without a warning */
  const char     *reply_code;      /* the ERROR's code and part of its message */
  const char     *reply_message;   /* (NULL: not checked) */
} SignalCase;

/* A call in flight finishes and is answered; a new one is refused with
 * shutting-down; the daemon exits 0. */
static const SignalCase sigterm_drains = {
  "dirty_workers=1\ndirty_threads=2\ndirty_graceful_timeout=20\n",
  "\"action\":\"sleep\",\"args\":[3]", SIGTERM, 20000, TRUE, 0, 0,
  DIRTY_FRAME_RESPONSE, FALSE, WORKERS_UNCHECKED,
};

/* A call that ignores its cancellation outlives dirty_graceful_timeout:
 * the worker gets SIGTERM, then SIGKILL; the client still gets a
 * terminal answer and the daemon exits 0 after the graceful timeout, not
 * after the 60 s call. */
static const SignalCase sigterm_graceful_timeout = {
  "dirty_workers=1\ndirty_graceful_timeout=1\n",
  "\"action\":\"hang\",\"args\":[60]", SIGTERM, 30000, FALSE, 1, 20,
  DIRTY_FRAME_ERROR, FALSE, WORKERS_DEAD, FALSE,
  "shutting-down", "the arbiter stopped before the call ended: its worker was stopped",
};

/* A call that honours its cancellation, still running when
 * dirty_graceful_timeout ends: cancelled, and its client told why. */
static const SignalCase sigterm_cancels_at_timeout = {
  "dirty_workers=1\ndirty_graceful_timeout=1\n",
  "\"action\":\"sleep\",\"args\":[30]", SIGTERM, 20000, FALSE, 1, 15,
  DIRTY_FRAME_ERROR, FALSE, WORKERS_GONE, FALSE,
  "shutting-down", "The call was cancelled: its worker is shutting down",
};

/* SIGQUIT: no draining, workers killed, exit status 0. The operator
 * asked for it: one record says so, and each worker's end is no warning
 * (it was two warnings a worker). */
static const SignalCase sigquit_immediate = {
  "dirty_workers=2\ndirty_graceful_timeout=60\n",
  "\"action\":\"hang\",\"args\":[60]", SIGQUIT, 5000, FALSE, 0, 0,
  DIRTY_FRAME_ERROR, TRUE, WORKERS_GONE, TRUE,
  "shutting-down", "the arbiter stopped before the call ended: its worker was stopped",
};

/* The records of a daemon run with --log-file=@log: no warning, one
 * "immediate shutdown", a "killed by signal 9" per worker. */
static void
assert_quiet_stop (const char *log,
                   guint       n_workers)
{
  g_autofree char *text = NULL;
  guint killed = 0;

  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_test_message ("%s", text);
  g_assert_null (strstr (text, "WARNING"));
  g_assert_nonnull (strstr (text, "immediate shutdown"));
  for (const char *p = strstr (text, "killed by signal 9"); p; p = strstr (p + 1, "killed by signal 9"))
    killed++;
  g_assert_cmpuint (killed, ==, n_workers);
}

static void
test_signal_in_flight (gconstpointer data)
{
  const SignalCase *c = data;
  g_autofree char *config = g_strconcat ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n", c->config, NULL);
  g_autofree char *json = g_strconcat ("{\"app\":\"" TESTAPP "\",", c->action_args, "}", NULL);
  g_autofree char *dir = g_dir_make_tmp ("dirty-signal-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "arbiter.log", NULL);
  g_autofree char *log_arg = g_strconcat ("--log-file=", log, NULL);
  const char *args[] = { log_arg, NULL };
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (config, args);
  g_autoptr(GArray) workers = workers_of (daemon);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(GSocket) late = c->late_refused ? raw_connect (daemon) : NULL;
  g_autoptr(JsonNode) body = json_from_string (json, NULL);
  g_autoptr(DirtyFrame) request = dirty_frame_encode (DIRTY_FRAME_REQUEST, 0, 1, 0, body, NULL);
  g_autoptr(DirtyFrame) reply = NULL;
  gint64 t0;
  int status;

  g_assert_true (dirty_test_raw_send_frame (socket, request));
  g_usleep (300 * 1000);
  t0 = g_get_monotonic_time ();
  kill (dirty_test_daemon_get_pid (daemon), c->signum);
  if (c->late_refused)
    {
      g_autofree char *code = NULL;
      g_autoptr(JsonNode) refused = NULL;

      g_usleep (200 * 1000);
      refused = call (late, 1, TESTAPP, "ok", "[]", &code);
      g_assert_null (refused);
      g_assert_cmpstr (code, ==, "shutting-down");
    }
  status = dirty_test_daemon_signal_and_wait (daemon, 0, c->timeout_ms);
  g_assert_cmpint (status, !=, -1);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  if (c->min_seconds > 0)
    g_assert_cmpint (g_get_monotonic_time () - t0, >=, c->min_seconds * G_USEC_PER_SEC);
  if (c->max_seconds > 0)
    g_assert_cmpint (g_get_monotonic_time () - t0, <, c->max_seconds * G_USEC_PER_SEC);

  reply = dirty_test_raw_read_frame (socket);
  if (reply != NULL || !c->reply_optional)
    {
      g_assert_nonnull (reply);
      g_assert_cmpint (reply->header.type, ==, c->reply_type);
    }
  if (c->reply_code != NULL && reply != NULL)
    {
      g_autoptr(JsonNode) root = NULL;

      g_assert_true (dirty_frame_decode (reply, &limits, &root, NULL, NULL));
      g_assert_cmpstr (dirty_json_get_string (root, "code"), ==, c->reply_code);
      g_assert_nonnull (strstr (dirty_json_get_string (root, "message"), c->reply_message));
    }
  for (guint i = 0; i < workers->len && c->workers == WORKERS_DEAD; i++)
    g_assert_false (dirty_test_pid_alive (g_array_index (workers, GPid, i)));
  for (guint i = 0; i < workers->len && c->workers == WORKERS_GONE; i++)
    wait_gone (g_array_index (workers, GPid, i));
  if (c->quiet)
    assert_quiet_stop (log, workers->len);
  g_unlink (log);
  g_rmdir (dir);
}

/* ---- SIGHUP ---- */

typedef struct {
  DirtyTestDaemon *daemon;
  gint             stop;       /* atomic */
  gint             ok;         /* atomic */
  gint             failed;     /* atomic */
} Load;

static gpointer
load_thread (gpointer data)
{
  Load *load = data;
  g_autoptr(GSocket) socket = raw_connect (load->daemon);
  guint64 id = 0;

  while (!g_atomic_int_get (&load->stop))
    {
      g_autofree char *code = NULL;
      g_autoptr(JsonNode) result = call (socket, ++id, ECHO, "add", "[40,2]", &code);

      if (result != NULL && json_node_get_int (result) == 42)
        g_atomic_int_inc (&load->ok);
      else
        {
          g_test_message ("call failed during the reload: %s", code);
          g_atomic_int_inc (&load->failed);
        }
    }
  return NULL;
}

/* Four clients call in a loop through a reload that adds an app: no call
 * fails, the new app is served, the old workers are gone. */
static void
test_sighup_reload (void)
{
  const char *before = "[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=2\n";
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (before, NULL);
  g_autoptr(GArray) old = workers_of (daemon);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autofree char *reloading = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *code = NULL;
  g_autoptr(JsonNode) missing = NULL;
  Load load = { daemon, 0, 0, 0 };
  GThread *threads[4];
  int before_ok;

  missing = call (socket, 1, TESTAPP, "ok", "[]", &code);
  g_assert_cmpstr (code, ==, "app-not-found");
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("load", load_thread, &load);
  g_usleep (200 * 1000);

  rewrite_config (daemon, "[dirty-arbiter]\ndirty_apps=" ECHO ";" TESTAPP "\ndirty_workers=2\n");
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  reloading = dirty_test_daemon_wait_notify (daemon, "RELOADING=1", 10000);
  g_assert_nonnull (reloading);
  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 20000);
  g_assert_nonnull (ready);
  for (guint i = 0; i < old->len; i++)
    wait_gone (g_array_index (old, GPid, i));
  /* calls keep flowing on the new workers */
  before_ok = g_atomic_int_get (&load.ok);
  g_usleep (200 * 1000);
  g_assert_cmpint (g_atomic_int_get (&load.ok), >, before_ok);

  g_atomic_int_set (&load.stop, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_test_message ("%d calls through the reload", load.ok);
  g_assert_cmpint (load.failed, ==, 0);
  g_assert_cmpint (call_int (socket, TESTAPP, "pid"), >, 0);
  g_assert_cmpuint (count_live_workers (daemon), ==, 2);
}

/* A reload whose new app hangs in init() never gets ready; a second
 * reload, with that app taken out again, supersedes it (it was refused
 * as busy, leaving only a restart): the hanging worker goes, the new
 * ones serve. The first workers serve until then. */
static void
test_reload_supersedes (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=1\n", NULL);
  g_autoptr(GArray) old = workers_of (daemon);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autofree char *reloading = NULL;
  g_autofree char *ready = NULL;

  g_assert_true (g_file_set_contents (hang_file, "", 0, NULL));
  rewrite_config (daemon, "[dirty-arbiter]\ndirty_apps=" ECHO ";" FAILINIT "\ndirty_workers=1\n");
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  reloading = dirty_test_daemon_wait_notify (daemon, "RELOADING=1", 10000);
  g_assert_nonnull (reloading);
  wait_loading (daemon, FAILINIT, 1);
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);

  rewrite_config (daemon, "[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=2\n");
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 20000);
  g_assert_nonnull (ready);
  wait_gone (g_array_index (old, GPid, 0));
  wait_for_workers (daemon, 2);
  g_assert_cmpuint (count_loading (daemon, FAILINIT), ==, 0);
  g_assert_cmpuint (count_loading (daemon, ECHO), ==, 2);
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);
  g_unlink (hang_file);
}

/* Waits until STATUS says whether a reload is under way, and which apps
 * hold it (their names joined with ";") */
static void
wait_reload_state (GSocket    *socket,
                   gboolean    reloading,
                   const char *held)
{
  static guint64 id = 1u << 20;
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *code = NULL;
      g_autoptr(JsonNode) status = exchange (socket, DIRTY_FRAME_STATUS, ++id, "{}", &code, NULL);
      JsonObject *arbiter = json_object_get_object_member (json_node_get_object (status), "arbiter");
      JsonArray *apps = json_object_get_array_member (arbiter, "held_apps");
      g_autoptr(GString) names = g_string_new (NULL);

      for (guint i = 0; i < json_array_get_length (apps); i++)
        g_string_append_printf (names, "%s%s", i ? ";" : "", json_array_get_string_element (apps, i));
      if (json_object_get_boolean_member (arbiter, "reloading") == reloading &&
          g_str_equal (names->str, held))
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (50 * 1000);
    }
}

static void
assert_call_ok (GSocket *socket, const char *app)
{
  static guint64 id = 1u << 21;
  g_autofree char *code = NULL;
  g_autoptr(JsonNode) result = call (socket, ++id, app, "ok", "[]", &code);

  g_assert_cmpstr (code, ==, NULL);
  g_assert_cmpstr (json_node_get_string (result), ==, "ok");
}

/* A reload whose new workers cannot start an app that served before
 * keeps the old workers that serve it (only those: the other old one
 * leaves), so the app is never down. Once its init() succeeds on a
 * retry, the reload completes and they leave too. */
static void
test_reload_keeps_served_app (void)
{
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (
    "[dirty-arbiter]\ndirty_apps=" ECHO ";" FAILINIT ":1\ndirty_workers=2\n", NULL);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(GArray) old = NULL;
  g_autofree char *reloading = NULL;
  g_autofree char *held = NULL;
  g_autofree char *ready = NULL;
  GPid serving, other;

  wait_loading (daemon, FAILINIT, 1);
  old = workers_of (daemon);
  g_assert_cmpuint (old->len, ==, 2);
  serving = g_array_index (old, GPid, worker_loads (g_array_index (old, GPid, 0), FAILINIT) ? 0 : 1);
  other = g_array_index (old, GPid, serving == g_array_index (old, GPid, 0) ? 1 : 0);
  assert_call_ok (socket, FAILINIT);

  g_assert_true (g_file_set_contents (fail_file, "", 0, NULL));
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  reloading = dirty_test_daemon_wait_notify (daemon, "RELOADING=1", 10000);
  g_assert_nonnull (reloading);
  wait_reload_state (socket, TRUE, FAILINIT);
  /* systemctl status says so too */
  held = dirty_test_daemon_wait_notify (daemon, "STATUS=Reload held, the old workers serve "
                                        FAILINIT ": ", 10000);
  g_assert_nonnull (held);
  wait_gone (other);
  g_assert_true (dirty_test_pid_alive (serving));
  for (guint i = 0; i < 10; i++)
    assert_call_ok (socket, FAILINIT);
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);

  g_unlink (fail_file);
  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 20000);
  g_assert_nonnull (ready);
  wait_reload_state (socket, FALSE, "");
  wait_gone (serving);
  assert_call_ok (socket, FAILINIT);
}

/* An invalid config is refused, named (file, line, key) in the log, and
 * the old config keeps serving. MANAGE reload reports the same. */
static void
test_reload_invalid (void)
{
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autofree char *log = NULL;
  g_autofree char *log_arg = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *needle = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autofree char *code = NULL;
  g_autofree char *message = NULL;
  g_autoptr(GArray) old = NULL;
  const char *args[2] = { NULL, NULL };

  log = g_build_filename (g_get_tmp_dir (), "dirty-lifecycle-XXXXXX.log", NULL);
  g_close (g_mkstemp (log), NULL);
  log_arg = g_strconcat ("--log-file=", log, NULL);
  args[0] = log_arg;
  daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n", args);
  old = workers_of (daemon);
  socket = raw_connect (daemon);
  conf = config_path (daemon);
  needle = g_strconcat (conf, ":3: dirty_workers:", NULL);

  rewrite_config (daemon, "[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=lots\n");
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  g_free (dirty_test_wait_for_text (log, needle));
  g_assert_cmpint (manage (socket, "{\"verb\":\"reload\"}", "generation", &code, &message), ==, -1);
  g_assert_cmpstr (code, ==, "failed");
  g_assert_nonnull (strstr (message, needle));
  /* still the old workers, still serving */
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);
  g_assert_true (dirty_test_pid_alive (g_array_index (old, GPid, 0)));
  g_unlink (log);
}

/* ---- SIGUSR1 ---- */

static void
test_sigusr1_reopens_log (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-log-XXXXXX", &error);
  g_autofree char *log = g_build_filename (dir, "arbiter.log", NULL);
  g_autofree char *rotated = g_build_filename (dir, "arbiter.log.1", NULL);
  g_autofree char *log_arg = g_strconcat ("--log-file=", log, NULL);
  const char *args[] = { log_arg, NULL };
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n", args);
  g_autofree char *old_text = NULL;

  g_free (dirty_test_wait_for_text (log, "started"));
  g_assert_cmpint (g_rename (log, rotated), ==, 0);
  kill (dirty_test_daemon_get_pid (daemon), SIGUSR1);
  g_free (dirty_test_wait_for_text (log, "reopened"));
  g_assert_true (g_file_get_contents (rotated, &old_text, NULL, NULL));
  g_assert_null (strstr (old_text, "reopened"));
  g_clear_pointer (&daemon, dirty_test_daemon_stop);
  g_unlink (log);
  g_unlink (rotated);
  g_rmdir (dir);
}

/* ---- per-app worker counts and scaling ---- */

/* testapp:N=1 on 3 workers: exactly one loads it, its replacement loads
 * it again, and scaling down never removes it. */
/* A worker that gets a second SIGTERM while it stops (its apps closing:
 * so the arbiter's own stop finds a worker a reload retired) still closes
 * them and exits, rather than dying of the signal's default action. */
static void
test_second_sigterm_while_closing (void)
{
  g_autofree char *dir = g_dir_make_tmp ("dirty-close-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "hooks.log", NULL);
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autofree char *closing = NULL;
  g_autofree char *closed = NULL;
  gint64 worker;

  /* the arbiter's environment, and so its workers' */
  g_setenv ("DIRTY_TEST_HOOKS_LOG", log, TRUE);
  g_setenv ("DIRTY_TEST_CLOSE_MS", "500", TRUE);
  daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                                    "dirty_workers=1\n", NULL);
  g_unsetenv ("DIRTY_TEST_CLOSE_MS");
  g_unsetenv ("DIRTY_TEST_HOOKS_LOG");
  socket = raw_connect (daemon);
  worker = call_int (socket, TESTAPP, "pid");
  closing = g_strdup_printf ("closing pid=%" G_GINT64_FORMAT "\n", worker);
  closed = g_strdup_printf ("closed pid=%" G_GINT64_FORMAT "\n", worker);

  kill (worker, SIGTERM);
  g_free (dirty_test_wait_for_text (log, closing));
  kill (worker, SIGTERM);
  g_free (dirty_test_wait_for_text (log, closed));
  wait_gone (worker);
}

static void
test_per_app_count (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO ";" TESTAPP ":1\n"
                             "dirty_workers=3\n", NULL);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  gint64 holder, replacement;

  g_assert_cmpuint (count_live_workers (daemon), ==, 3);
  g_assert_cmpuint (count_loading (daemon, TESTAPP), ==, 1);
  g_assert_cmpuint (count_loading (daemon, ECHO), ==, 3);
  holder = call_int (socket, TESTAPP, "pid");
  g_assert_true (worker_loads (holder, TESTAPP));
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (call_int (socket, TESTAPP, "pid"), ==, holder);

  /* the replacement gets the same apps; the call waits for it */
  kill (holder, SIGKILL);
  wait_gone (holder);
  replacement = call_int_after_worker_death (socket, TESTAPP, "pid");
  g_assert_cmpint (replacement, !=, holder);
  g_assert_cmpuint (count_loading (daemon, TESTAPP), ==, 1);

  /* TTOU removes the other two, then refuses (one at a time: a signal
   * sent while the same one is pending merges with it) */
  kill (dirty_test_daemon_get_pid (daemon), SIGTTOU);
  wait_for_workers (daemon, 2);
  kill (dirty_test_daemon_get_pid (daemon), SIGTTOU);
  wait_for_workers (daemon, 1);
  kill (dirty_test_daemon_get_pid (daemon), SIGTTOU);
  g_usleep (300 * 1000);
  g_assert_cmpuint (count_live_workers (daemon), ==, 1);
  g_assert_true (dirty_test_pid_alive (replacement));
  g_assert_cmpint (call_int (socket, TESTAPP, "pid"), ==, replacement);
  /* TTIN adds one, with the apps every worker loads */
  kill (dirty_test_daemon_get_pid (daemon), SIGTTIN);
  wait_for_workers (daemon, 2);
  wait_loading (daemon, ECHO, 2);
  g_assert_cmpuint (count_loading (daemon, TESTAPP), ==, 1);
}

/* Bad specs stop the daemon with exit status 1 and a clear message. */
static void
test_bad_app_counts (void)
{
  const char *cases[][2] = {
    { "--dirty-app=" TESTAPP ":0", "from 1 to" },
    { "--dirty-app=" TESTAPP ":two", "“two”" },
    { "--dirty-app=" TESTAPP ":1:2", "MODULE:TypeName:N" },
    { "--dirty-app=" TESTAPP ":5", "dirty_workers is 1" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *argv[] = { "--config=/dev/null", cases[i][0], NULL };
      g_autofree char *err = NULL;
      int status = dirty_test_run_arbiter (argv, &err);

      g_test_message ("%s -> %s", cases[i][0], err);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 1);
      g_assert_nonnull (strstr (err, cases[i][1]));
    }
}

/* ---- the socket file ---- */

/* An arbiter that stops removes its socket file only if it is still
 * its own: once that file was removed (by hand, by a cleanup script),
 * a second arbiter may have bound the same path, and the first one's
 * stop took the second one's socket file with it: nobody could connect
 * to the second any more. */
static void
test_stop_keeps_successor_socket (void)
{
  g_autoptr(DirtyTestDaemon) first =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n", NULL);
  g_autofree char *path = g_strdup (dirty_test_daemon_get_socket_path (first));
  g_autofree char *socket_arg = g_strconcat ("--socket=", path, NULL);
  const char *args[] = { socket_arg, NULL };
  g_autoptr(DirtyTestDaemon) second = NULL;
  g_autoptr(GSocket) socket = NULL;
  int status;

  g_assert_cmpint (g_unlink (path), ==, 0);
  second = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n", args);
  status = dirty_test_daemon_signal_and_wait (first, SIGTERM, 20000);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  socket = dirty_test_raw_connect (path);
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);
}

/* ---- no app configured ---- */

/* Until the arbiter has reaped every worker it had */
static void
wait_reaped (DirtyTestDaemon *daemon)
{
  gint64 end = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr(GArray) pids = workers_of (daemon);

      if (pids->len == 0)
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_usleep (20 * 1000);
    }
}

/* No worker process for @ms, not even a zombie: none is started, not
 * even one that fails at once */
static void
assert_no_worker_for (DirtyTestDaemon *daemon, guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * 1000;

  while (g_get_monotonic_time () < end)
    {
      g_autoptr(GArray) pids = workers_of (daemon);

      g_assert_cmpuint (pids->len, ==, 0);
      g_usleep (20 * 1000);
    }
}

/* A config without dirty_apps (as the packaged one ships) starts no
 * worker: a worker refuses to start without an app, and used to be
 * restarted for ever. A reload that lists apps starts them; one that
 * lists none again stops them. */
static void
test_no_apps (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_workers=2\n", NULL);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autofree char *code = NULL;
  g_autofree char *message = NULL;
  g_autofree char *ready = NULL;
  g_autoptr(JsonNode) missing = NULL;

  assert_no_worker_for (daemon, 1500);
  missing = call (socket, 1, ECHO, "add", "[]", &code);
  g_assert_cmpstr (code, ==, "app-not-found");
  g_clear_pointer (&code, g_free);
  g_assert_cmpint (manage (socket, "{\"verb\":\"workers\",\"delta\":1}", "workers", &code,
                           &message), ==, -1);
  g_assert_cmpstr (code, ==, "failed");
  g_assert_nonnull (strstr (message, "no app is configured"));
  assert_no_worker_for (daemon, 100);

  rewrite_config (daemon, "[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=2\n");
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 20000);
  g_assert_nonnull (ready);
  wait_for_workers (daemon, 2);
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);

  rewrite_config (daemon, "[dirty-arbiter]\ndirty_workers=2\n");
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  g_clear_pointer (&ready, g_free);
  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 20000);
  g_assert_nonnull (ready);
  /* the old workers leave */
  wait_reaped (daemon);
  assert_no_worker_for (daemon, 1500);
  g_clear_pointer (&missing, json_node_unref);
  g_clear_pointer (&code, g_free);
  missing = call (socket, 2, ECHO, "add", "[]", &code);
  g_assert_cmpstr (code, ==, "app-not-found");
}

/* ---- MANAGE ---- */

static void
test_manage (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=1\n", NULL);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(GArray) old = workers_of (daemon);
  g_autofree char *ready = NULL;
  struct {
    const char *json;
    const char *code;
  } bad[] = {
    { "{\"verb\":\"explode\"}", "invalid-argument" },
    { "{}", "invalid-argument" },
    { "{\"verb\":\"workers\"}", "invalid-argument" },
    { "{\"verb\":\"workers\",\"delta\":0}", "invalid-argument" },
    { "{\"verb\":\"workers\",\"delta\":\"1\"}", "invalid-argument" },
    { "{\"verb\":\"workers\",\"delta\":-1}", "failed" },   /* the last worker */
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *code = NULL;
      g_autofree char *message = NULL;

      g_assert_cmpint (manage (socket, bad[i].json, "workers", &code, &message), ==, -1);
      g_test_message ("%s -> %s: %s", bad[i].json, code, message);
      g_assert_cmpstr (code, ==, bad[i].code);
    }
  g_assert_cmpint (manage (socket, "{\"verb\":\"workers\",\"delta\":2}", "workers", NULL, NULL), ==, 3);
  wait_for_workers (daemon, 3);
  g_assert_cmpint (manage (socket, "{\"verb\":\"workers\",\"delta\":-1}", "workers", NULL, NULL), ==, 2);
  wait_for_workers (daemon, 2);
  g_assert_cmpint (manage (socket, "{\"verb\":\"reload\"}", "generation", NULL, NULL), ==, 2);
  ready = dirty_test_daemon_wait_notify (daemon, "READY=1", 20000);
  g_assert_nonnull (ready);
  wait_gone (g_array_index (old, GPid, 0));
  /* the reloaded config says 1 worker: runtime scaling does not survive it */
  wait_for_workers (daemon, 1);
  g_assert_cmpint (call_int (socket, ECHO, "add"), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  dirty_limits_init (&limits);
  /* before any thread exists: the daemons' workers inherit it */
  hang_file = dirty_test_export_temp_path ("DIRTY_TEST_FAILINIT_HANG", "lifecycle-hang");
  fail_file = dirty_test_export_temp_path ("DIRTY_TEST_FAILINIT_FILE", "lifecycle-fail");

  g_test_add_data_func ("/lifecycle/sigterm-drains", &sigterm_drains, test_signal_in_flight);
  g_test_add_data_func ("/lifecycle/sigterm-graceful-timeout", &sigterm_graceful_timeout,
                        test_signal_in_flight);
  g_test_add_data_func ("/lifecycle/sigquit-immediate", &sigquit_immediate, test_signal_in_flight);
  g_test_add_data_func ("/lifecycle/sigterm-cancels-at-timeout", &sigterm_cancels_at_timeout,
                        test_signal_in_flight);
  g_test_add_func ("/lifecycle/sighup-reload", test_sighup_reload);
  g_test_add_func ("/lifecycle/reload-invalid", test_reload_invalid);
  g_test_add_func ("/lifecycle/reload-supersedes", test_reload_supersedes);
  g_test_add_func ("/lifecycle/reload-keeps-served-app", test_reload_keeps_served_app);
  g_test_add_func ("/lifecycle/no-apps", test_no_apps);
  g_test_add_func ("/lifecycle/stop-keeps-successor-socket", test_stop_keeps_successor_socket);
  g_test_add_func ("/lifecycle/sigusr1-reopens-log", test_sigusr1_reopens_log);
  g_test_add_func ("/lifecycle/per-app-count", test_per_app_count);
  g_test_add_func ("/lifecycle/bad-app-counts", test_bad_app_counts);
  g_test_add_func ("/lifecycle/manage", test_manage);
  g_test_add_func ("/lifecycle/second-sigterm-while-closing", test_second_sigterm_while_closing);
  return g_test_run ();
}
