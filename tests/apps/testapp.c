/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* testapp:DirtyTestApp: misbehaving actions for the tests.
 *
 *   ok           returns "ok"
 *   pid          the worker's process id
 *   sleep SECS   sleeps, honouring cancellation (returns a cancelled error);
 *                returns {"pid", "start", "end"}: the worker's pid and the
 *                CLOCK_MONOTONIC microseconds it ran between (tests compare
 *                them to show concurrency and routing)
 *   hang [SECS]  ignores cancellation: sleeps SECS (default 60) without ever
 *                looking at its cancellable (to test kill after grace and
 *                late replies)
 *   stuck [SECS] like hang, inside the exported testapp_stuck_in_loop(), a
 *                name the backtrace of a stuck call must show; the app's
 *                describe_call() describes it (and no other action)
 *   crash        abort()s the worker (to test worker-lost and respawn)
 *   crash_after SECS  abort()s after SECS (so calls can queue behind it)
 *   noreply      returns without completing its call (a bug the worker
 *                must answer with an app error)
 *   alloc MIB    allocates and touches MIB MiB that it never frees (to push
 *                the worker over dirty_max_rss); returns the worker's pid
 *   tagged TOKEN [SECS]  sleeps SECS (default 0, honouring cancellation),
 *                then returns TOKEN: the chaos test gives every call its
 *                own token, so a result delivered to the wrong call shows
 *   tagged_stream (stream)  kwargs token, n, interval: n chunks
 *                {"token": TOKEN, "seq": i}, interval seconds apart, then
 *                the end
 *   grow MIB_PER_STEP  a runaway: allocates and touches MIB_PER_STEP MiB
 *                every 10 ms, never frees, never looks at its cancellable,
 *                until something kills the worker (dirty_kill_rss); past
 *                4 GiB it gives up with an app error, so a missing limit
 *                fails the test instead of the machine
 *   keep BYTES   keeps its bytes argument past the call (returns null)
 *   kept         returns the bytes the last keep kept
 *   unsendable KIND  returns what JSON cannot carry: "nan" (a NaN), "utf8"
 *                (a string with a byte that is not UTF-8), "deep" (arrays
 *                nested 64 deep, one past the limit inside the reply),
 *                "bytes" (a reference to bytes it did not attach);
 *                "error" fails with such a string in its message; or
 *                what no frame carries: "big" (64 MiB of JSON text),
 *                "many" (65 attachments); "long-error" fails with a
 *                message of "a" and 40,000 "é" and a detail of 2 MiB
 *   unsendable_stream [KIND]  (stream)  sends a NaN chunk ("big": 64 MiB
 *                of JSON text), then a chunk saying how that send failed
 *                ("DOMAIN CODE"), then ends
 *
 * init() appends "init pid=PID" to $DIRTY_TEST_HOOKS_LOG when it is set
 * (test-recycle.c checks that dirty_worker_init comes after it).
 */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirty.h>

#include "../dirty-test-json.h"

#define DIRTY_TYPE_TEST_APP (dirty_test_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyTestApp, dirty_test_app, DIRTY, TEST_APP, DirtyApp)

struct _DirtyTestApp
{
  DirtyApp parent_instance;

  GMutex  lock;
  GBytes *kept;    /* keep: an argument held past its call, as is */
};

G_DEFINE_FINAL_TYPE (DirtyTestApp, dirty_test_app, DIRTY_TYPE_APP)

static void
ok_action (DirtyApp  *app,
           DirtyCall *call,
           gpointer   user_data)
{
  dirty_call_return_string (call, "ok");
}

static void
pid_action (DirtyApp  *app,
            DirtyCall *call,
            gpointer   user_data)
{
  dirty_call_return_int (call, getpid ());
}

static void
sleep_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  GCancellable *cancellable = dirty_call_get_cancellable (call);
  GError *error = NULL;
  double seconds;
  gint64 start, end;
  g_autoptr(JsonBuilder) builder = NULL;

  if (!dirty_call_get_arg_double (call, 0, &seconds, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  start = g_get_monotonic_time ();
  end = start + (gint64) (seconds * G_USEC_PER_SEC);
  /* Polling in 5 ms steps is crude but obviously correct, which is what a
   * test app wants. */
  while (g_get_monotonic_time () < end && !g_cancellable_is_cancelled (cancellable))
    g_usleep (5000);
  if (dirty_call_return_error_if_cancelled (call))
    return;

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "pid");
  json_builder_add_int_value (builder, getpid ());
  json_builder_set_member_name (builder, "start");
  json_builder_add_int_value (builder, start);
  json_builder_set_member_name (builder, "end");
  json_builder_add_int_value (builder, g_get_monotonic_time ());
  json_builder_end_object (builder);
  dirty_call_return_value (call, json_builder_get_root (builder));
}

/* Sleeps without looking at the cancellable, in small steps so a short
 * hang ends on time. */
static void
uninterruptible_sleep (double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < end)
    g_usleep (10 * 1000);
}

/* Exported (and never inlined), so dladdr() names it in a backtrace. */
G_MODULE_EXPORT G_GNUC_NO_INLINE void testapp_stuck_in_loop (double seconds);

G_MODULE_EXPORT G_GNUC_NO_INLINE void
testapp_stuck_in_loop (double seconds)
{
  uninterruptible_sleep (seconds);
}

/* hang and stuck: the same call, but for where it sleeps and what it
 * answers when it wakes */
typedef struct {
  void        (*sleep) (double seconds);
  const char   *reply;
} HangKind;

static const HangKind hang = { uninterruptible_sleep, "woke up" };
static const HangKind stuck = { testapp_stuck_in_loop, "unstuck" };

static void
hang_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  const HangKind *kind = user_data;
  double seconds = 60;
  GError *error = NULL;

  if (dirty_call_get_n_args (call) > 0 && !dirty_call_get_arg_double (call, 0, &seconds, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  kind->sleep (seconds);
  dirty_call_return_string (call, kind->reply);
}

static void
crash_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  abort ();
}

static void
crash_after_action (DirtyApp  *app,
                    DirtyCall *call,
                    gpointer   user_data)
{
  double seconds = 0;
  GError *error = NULL;

  if (!dirty_call_get_arg_double (call, 0, &seconds, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  uninterruptible_sleep (seconds);
  abort ();
}

static void
noreply_action (DirtyApp  *app,
                DirtyCall *call,
                gpointer   user_data)
{
}

static void
alloc_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  static GPtrArray *kept;
  double mib = 0;
  GError *error = NULL;
  gsize size;
  char *block;

  if (!dirty_call_get_arg_double (call, 0, &mib, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  size = (gsize) (mib * 1024 * 1024);
  block = g_malloc (size);
  memset (block, 1, size);
  if (kept == NULL)
    kept = g_ptr_array_new ();
  g_ptr_array_add (kept, block);
  dirty_call_return_int (call, getpid ());
}

static void
tagged_action (DirtyApp  *app,
               DirtyCall *call,
               gpointer   user_data)
{
  GCancellable *cancellable = dirty_call_get_cancellable (call);
  GError *error = NULL;
  const char *token;
  double seconds = 0;
  gint64 end;

  if (!dirty_call_get_arg_string (call, 0, &token, &error) ||
      (dirty_call_get_n_args (call) > 1 && !dirty_call_get_arg_double (call, 1, &seconds, &error)))
    {
      dirty_call_return_error (call, error);
      return;
    }
  end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  while (g_get_monotonic_time () < end && !g_cancellable_is_cancelled (cancellable))
    g_usleep (2000);
  if (dirty_call_return_error_if_cancelled (call))
    return;
  dirty_call_return_string (call, token);
}

static JsonNode *
tagged_chunk (const char *token,
              gint64      seq)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "token");
  json_builder_add_string_value (builder, token);
  json_builder_set_member_name (builder, "seq");
  json_builder_add_int_value (builder, seq);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static void
tagged_stream_action (DirtyApp  *app,
                      DirtyCall *call,
                      gpointer   user_data)
{
  GCancellable *cancellable = dirty_call_get_cancellable (call);
  GError *error = NULL;
  const char *token;
  gint64 n;
  double interval;

  if (!dirty_call_get_kwarg_string (call, "token", "", &token, &error) ||
      !dirty_call_get_kwarg_int (call, "n", 10, &n, &error) ||
      !dirty_call_get_kwarg_double (call, "interval", 0, &interval, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  for (gint64 i = 0; i < n; i++)
    {
      g_autoptr(JsonNode) chunk = tagged_chunk (token, i);

      if (i > 0 && interval > 0)
        g_usleep ((gulong) (interval * G_USEC_PER_SEC));
      if (!dirty_call_send_chunk (call, chunk, cancellable, &error))
        {
          dirty_call_return_error (call, error);
          return;
        }
    }
  dirty_call_end_stream (call);
}

static void
grow_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  static const gsize give_up = (gsize) 4 * 1024 * 1024 * 1024;
  double mib = 0;
  GError *error = NULL;
  gsize step, total = 0;

  if (!dirty_call_get_arg_double (call, 0, &mib, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  step = (gsize) (mib * 1024 * 1024);
  for (; total < give_up && step > 0; total += step)
    {
      /* never freed: the worker is meant to die of it */
      char *block = g_malloc (step);

      memset (block, 1, step);
      g_usleep (10 * 1000);
    }
  dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_APP,
                               "grew to 4 GiB: no memory limit stopped it");
}

/* One O_APPEND write per line, so lines of several processes interleave whole */
static void
append_line (const char *line)
{
  const char *path = g_getenv ("DIRTY_TEST_HOOKS_LOG");
  int fd;

  if (path == NULL)
    return;
  fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (write (fd, line, strlen (line)) < 0)
    g_warning ("cannot write to %s", path);
  close (fd);
}

static gboolean
dirty_test_app_real_init (DirtyApp      *app,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autofree char *line = g_strdup_printf ("init pid=%d\n", (int) getpid ());

  /* a little work, so a hook that does not wait for it would show */
  g_usleep (100 * 1000);
  append_line (line);
  return TRUE;
}

/* With $DIRTY_TEST_CLOSE_MS set, close() takes that long, between two
 * lines in $DIRTY_TEST_HOOKS_LOG: a test can signal a worker while its
 * apps close, and see whether they finished. */
static void
dirty_test_app_real_close (DirtyApp *app)
{
  const char *ms = g_getenv ("DIRTY_TEST_CLOSE_MS");
  g_autofree char *closing = NULL;
  g_autofree char *closed = NULL;

  if (ms == NULL)
    return;
  closing = g_strdup_printf ("closing pid=%d\n", (int) getpid ());
  closed = g_strdup_printf ("closed pid=%d\n", (int) getpid ());
  append_line (closing);
  g_usleep (g_ascii_strtoull (ms, NULL, 10) * 1000);
  append_line (closed);
}

/* Runs on a helper thread of the worker while the call runs: reads only
 * the call's fixed fields. */
static char *
dirty_test_app_describe_call (DirtyApp  *app,
                              DirtyCall *call)
{
  if (g_strcmp0 (dirty_call_get_action (call), "stuck") != 0)
    return NULL;
  return g_strdup ("testapp: the stuck action never looks at its cancellable");
}

/* An app that holds an argument's bytes after its call: the client may
 * reuse the memfd they came in, and these bytes must not change */
static void
keep_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  DirtyTestApp *self = DIRTY_TEST_APP (app);
  GError *error = NULL;
  GBytes *bytes;

  if (!dirty_call_get_arg_bytes (call, 0, &bytes, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->kept, g_bytes_unref);
  self->kept = g_bytes_ref (bytes);
  g_mutex_unlock (&self->lock);
  dirty_call_return_value (call, NULL);
}

static void
kept_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  DirtyTestApp *self = DIRTY_TEST_APP (app);
  g_autoptr(GBytes) kept = NULL;

  g_mutex_lock (&self->lock);
  kept = self->kept ? g_bytes_ref (self->kept) : NULL;
  g_mutex_unlock (&self->lock);
  if (kept == NULL)
    dirty_call_return_new_error (call, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "nothing kept");
  else
    dirty_call_return_bytes (call, kept);
}

static void
dirty_test_app_finalize (GObject *object)
{
  DirtyTestApp *self = DIRTY_TEST_APP (object);

  g_clear_pointer (&self->kept, g_bytes_unref);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (dirty_test_app_parent_class)->finalize (object);
}

static void
dirty_test_app_class_init (DirtyTestAppClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_test_app_finalize;
  DIRTY_APP_CLASS (klass)->init = dirty_test_app_real_init;
  DIRTY_APP_CLASS (klass)->close = dirty_test_app_real_close;
  DIRTY_APP_CLASS (klass)->describe_call = dirty_test_app_describe_call;
}

#define BIG_TEXT (64 * 1024 * 1024)

/* A string whose JSON is past the frame's max_body */
static JsonNode *
big_string (void)
{
  g_autofree char *text = g_malloc (BIG_TEXT + 1);

  memset (text, 'x', BIG_TEXT);
  text[BIG_TEXT] = '\0';
  return json_node_init_string (json_node_alloc (), text);
}

/* 65 attachments: one more than a frame takes */
static JsonNode *
many_attachments (DirtyCall *call)
{
  g_autoptr(JsonArray) refs = json_array_new ();
  g_autoptr(GBytes) one = g_bytes_new_static ("x", 1);

  for (guint i = 0; i < 65; i++)
    json_array_add_element (refs, dirty_call_attach (call, one));
  return json_node_init_array (json_node_alloc (), refs);
}

static void
unsendable_action (DirtyApp  *app,
                   DirtyCall *call,
                   gpointer   user_data)
{
  GError *error = NULL;
  const char *kind;

  if (!dirty_call_get_arg_string (call, 0, &kind, &error))
    dirty_call_return_error (call, error);
  else if (g_str_equal (kind, "nan"))
    dirty_call_return_double (call, NAN);
  else if (g_str_equal (kind, "utf8"))
    dirty_call_return_string (call, "bad \xff byte");
  else if (g_str_equal (kind, "deep"))
    dirty_call_return_value (call, dirty_test_nested_arrays (64));
  else if (g_str_equal (kind, "bytes"))
    dirty_call_return_value (call, json_from_string ("[{\"$bytes\": 0}]", NULL));
  else if (g_str_equal (kind, "big"))
    dirty_call_return_value (call, big_string ());
  else if (g_str_equal (kind, "many"))
    dirty_call_return_value (call, many_attachments (call));
  else if (g_str_equal (kind, "long-error"))
    {
      g_autoptr(GString) message = g_string_new ("a");
      g_autofree char *detail = g_strnfill (2 * 1024 * 1024, 'd');

      for (guint i = 0; i < 40000; i++)
        g_string_append (message, "\xc3\xa9");
      dirty_call_set_detail (call, detail);
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_APP, "%s", message->str);
    }
  else
    dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_APP, "bad \xff byte");
}

static void
unsendable_stream_action (DirtyApp  *app,
                          DirtyCall *call,
                          gpointer   user_data)
{
  JsonNode *kind = dirty_call_get_arg (call, 0);
  gboolean big = kind != NULL && g_strcmp0 (json_node_get_string (kind), "big") == 0;
  g_autoptr(JsonNode) unsendable = big ? big_string ()
                                       : json_node_init_double (json_node_alloc (), NAN);
  g_autoptr(JsonNode) how = NULL;
  g_autoptr(GError) refused = NULL;
  g_autofree char *text = NULL;
  GError *error = NULL;

  if (dirty_call_send_chunk (call, unsendable, NULL, &refused))
    text = g_strdup ("sent");
  else
    text = g_strdup_printf ("%s %d", g_quark_to_string (refused->domain), refused->code);
  how = json_node_init_string (json_node_alloc (), text);
  if (!dirty_call_send_chunk (call, how, NULL, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  dirty_call_end_stream (call);
}

static void
dirty_test_app_init (DirtyTestApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "ok", DIRTY_ACTION_SYNC, ok_action, NULL, NULL);
  dirty_app_add_action (app, "pid", DIRTY_ACTION_SYNC, pid_action, NULL, NULL);
  dirty_app_add_action (app, "sleep", DIRTY_ACTION_SYNC, sleep_action, NULL, NULL);
  dirty_app_add_action (app, "hang", DIRTY_ACTION_SYNC, hang_action, (gpointer) &hang, NULL);
  dirty_app_add_action (app, "stuck", DIRTY_ACTION_SYNC, hang_action, (gpointer) &stuck, NULL);
  dirty_app_add_action (app, "crash", DIRTY_ACTION_SYNC, crash_action, NULL, NULL);
  dirty_app_add_action (app, "crash_after", DIRTY_ACTION_SYNC, crash_after_action, NULL, NULL);
  dirty_app_add_action (app, "noreply", DIRTY_ACTION_SYNC, noreply_action, NULL, NULL);
  dirty_app_add_action (app, "alloc", DIRTY_ACTION_SYNC, alloc_action, NULL, NULL);
  dirty_app_add_action (app, "tagged", DIRTY_ACTION_SYNC, tagged_action, NULL, NULL);
  dirty_app_add_action (app, "tagged_stream", DIRTY_ACTION_SYNC | DIRTY_ACTION_STREAM,
                        tagged_stream_action, NULL, NULL);
  dirty_app_add_action (app, "grow", DIRTY_ACTION_SYNC, grow_action, NULL, NULL);
  dirty_app_add_action (app, "keep", DIRTY_ACTION_SYNC, keep_action, NULL, NULL);
  dirty_app_add_action (app, "kept", DIRTY_ACTION_SYNC, kept_action, NULL, NULL);
  dirty_app_add_action (app, "unsendable", DIRTY_ACTION_SYNC, unsendable_action, NULL, NULL);
  dirty_app_add_action (app, "unsendable_stream", DIRTY_ACTION_SYNC | DIRTY_ACTION_STREAM,
                        unsendable_stream_action, NULL, NULL);
  g_mutex_init (&self->lock);
}
