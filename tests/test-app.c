/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the app side of libdirty-glib: the module loader, the
 * action table, DirtyCall's typed arguments and completion rules, and
 * DirtyWorker's side of the wire protocol.
 *
 * The worker runs in a thread of this process on one end of a socketpair;
 * the test speaks raw frames on the other end, encoded here by hand from
 * the byte layout in docs/protocol.md, so the test also checks the worker
 * against the written format rather than against its own codec.
 *
 * Apps are found in $DIRTY_TEST_APP_PATH (colon-separated), else in the
 * build tree next to this test (../examples/apps and apps). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <signal.h>

#include <dirty.h>

#define IO_TIMEOUT_MS 10000

/* Frame types and header layout (docs/protocol.md) */
enum {
  HELLO = 1, REQUEST = 2, RESPONSE = 3, ERROR = 6, CANCEL = 7, HEARTBEAT = 9, STATUS = 10,
  BACKTRACE = 12,
};
#define MAGIC 0x44495254u
#define HEADER_SIZE 32

static char **app_path;
/* $DIRTY_TEST_FAILINIT_FILE, set in main() before any thread exists */
static char *failinit_dir;
static char *failinit_file;

/* A test-only app living in this process, so that its actions can assert
 * on the DirtyCall API directly. */

#define TEST_TYPE_INLINE_APP (test_inline_app_get_type ())
G_DECLARE_FINAL_TYPE (TestInlineApp, test_inline_app, TEST, INLINE_APP, DirtyApp)

struct _TestInlineApp
{
  DirtyApp parent_instance;
  int n_closed;
};

G_DEFINE_FINAL_TYPE (TestInlineApp, test_inline_app, DIRTY_TYPE_APP)

static void
typed_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  g_autoptr(GError) error = NULL;
  gint64 i = 0;
  double d = 0;
  gboolean b = FALSE;
  const char *s = NULL;
  GBytes *bytes = NULL;

  /* args: [7, 3.0, 2.5, true, "str", {"$bytes": 0}] */
  g_assert_cmpuint (dirty_call_get_n_args (call), ==, 6);
  g_assert_true (dirty_call_get_arg_int (call, 0, &i, &error));
  g_assert_cmpint (i, ==, 7);
  g_assert_true (dirty_call_get_arg_int (call, 1, &i, &error));
  g_assert_cmpint (i, ==, 3);
  g_assert_false (dirty_call_get_arg_int (call, 2, &i, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "args[2] must be an integer, not a number"));
  g_clear_error (&error);
  g_assert_true (dirty_call_get_arg_double (call, 0, &d, &error));
  g_assert_cmpfloat (d, ==, 7.0);
  g_assert_true (dirty_call_get_arg_double (call, 2, &d, &error));
  g_assert_cmpfloat (d, ==, 2.5);
  g_assert_true (dirty_call_get_arg_boolean (call, 3, &b, &error));
  g_assert_true (b);
  g_assert_false (dirty_call_get_arg_boolean (call, 4, &b, &error));
  g_assert_nonnull (strstr (error->message, "args[4] must be a boolean, not a string"));
  g_clear_error (&error);
  g_assert_true (dirty_call_get_arg_string (call, 4, &s, &error));
  g_assert_cmpstr (s, ==, "str");
  g_assert_false (dirty_call_get_arg_string (call, 5, &s, &error));
  g_assert_nonnull (strstr (error->message, "not bytes"));
  g_clear_error (&error);
  g_assert_true (dirty_call_get_arg_bytes (call, 5, &bytes, &error));
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), "\0\1\2", 3);
  g_assert_false (dirty_call_get_arg_bytes (call, 4, &bytes, &error));
  g_assert_nonnull (strstr (error->message, "must be bytes, not a string"));
  g_clear_error (&error);
  g_assert_false (dirty_call_get_arg_string (call, 9, &s, &error));
  g_assert_nonnull (strstr (error->message, "args[9] is missing"));
  g_assert_nonnull (strstr (error->message, "inline:Test.typed"));
  g_clear_error (&error);

  /* kwargs: {"size": 64, "name": 5, "none": null} */
  g_assert_true (dirty_call_get_kwarg_int (call, "size", 1, &i, &error));
  g_assert_cmpint (i, ==, 64);
  g_assert_true (dirty_call_get_kwarg_int (call, "absent", 42, &i, &error));
  g_assert_cmpint (i, ==, 42);
  g_assert_true (dirty_call_get_kwarg_string (call, "none", "dflt", &s, &error));
  g_assert_cmpstr (s, ==, "dflt");
  g_assert_false (dirty_call_get_kwarg_string (call, "name", NULL, &s, &error));
  g_assert_nonnull (strstr (error->message, "kwargs.name must be a string, not an integer"));
  g_clear_error (&error);
  g_assert_true (dirty_call_get_kwarg_bytes (call, "absent", &bytes, &error));
  g_assert_null (bytes);
  g_assert_true (dirty_call_get_kwarg_double (call, "size", 0, &d, &error));
  g_assert_cmpfloat (d, ==, 64.0);
  g_assert_true (dirty_call_get_kwarg_boolean (call, "absent", TRUE, &b, &error));
  g_assert_true (b);

  g_assert_cmpstr (dirty_call_get_action (call), ==, "typed");
  g_assert_cmpstr (dirty_call_get_app_name (call), ==, "inline:Test");
  g_assert_true (dirty_call_get_app (call) == app);
  g_assert_cmpint (dirty_call_get_deadline (call), ==, 0);
  dirty_call_return_string (call, "typed ok");
}

/* A request with neither args nor kwargs: the call still has an empty
 * array, an empty object and a cancellable (the last two are made when
 * first asked for), and a cancellable nothing cancelled */
static void
bare_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  JsonObject *kwargs = dirty_call_get_kwargs (call);
  GCancellable *cancellable = dirty_call_get_cancellable (call);

  g_assert_cmpuint (json_array_get_length (dirty_call_get_args (call)), ==, 0);
  g_assert_nonnull (kwargs);
  g_assert_cmpuint (json_object_get_size (kwargs), ==, 0);
  g_assert_true (dirty_call_get_kwargs (call) == kwargs);
  g_assert_true (G_IS_CANCELLABLE (cancellable));
  g_assert_true (dirty_call_get_cancellable (call) == cancellable);
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  g_assert_false (dirty_call_return_error_if_cancelled (call));
  dirty_call_return_string (call, "bare ok");
}

static void
twice_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  dirty_call_return_string (call, "first");
  dirty_call_return_string (call, "second");
}

static void
attach_action (DirtyApp  *app,
               DirtyCall *call,
               gpointer   user_data)
{
  g_autoptr(GBytes) a = g_bytes_new_static ("AAA", 3);
  g_autoptr(GBytes) b = g_bytes_new_static ("BB", 2);
  JsonObject *object = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_member (object, "a", dirty_call_attach (call, a));
  json_object_set_member (object, "b", dirty_call_attach (call, b));
  json_object_set_int_member (object, "deadline_set", dirty_call_get_deadline (call) > 0);
  json_node_take_object (node, object);
  dirty_call_return_value (call, node);
}

/* Completes from another thread, later: an async action's usual shape */
static gpointer
late_thread (gpointer data)
{
  DirtyCall *call = data;

  g_usleep (20000);
  dirty_call_return_int (call, 99);
  g_object_unref (call);
  return NULL;
}

static void
late_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  g_thread_unref (g_thread_new ("late", late_thread, g_object_ref (call)));
}

static void
test_inline_app_close (DirtyApp *app)
{
  TEST_INLINE_APP (app)->n_closed++;
}

static void
test_inline_app_class_init (TestInlineAppClass *klass)
{
  DIRTY_APP_CLASS (klass)->close = test_inline_app_close;
}

static void
test_inline_app_init (TestInlineApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "typed", DIRTY_ACTION_SYNC, typed_action, NULL, NULL);
  dirty_app_add_action (app, "twice", DIRTY_ACTION_SYNC, twice_action, NULL, NULL);
  dirty_app_add_action (app, "bare", DIRTY_ACTION_SYNC, bare_action, NULL, NULL);
  dirty_app_add_action (app, "attach", DIRTY_ACTION_SYNC, attach_action, NULL, NULL);
  dirty_app_add_action (app, "late", DIRTY_ACTION_ASYNC, late_action, NULL, NULL);
}

/* Raw frames */

typedef struct {
  guint8 type;
  guint64 id;
  guint32 aux;
  JsonNode *root;        /* NULL for an empty body */
  GPtrArray *attachments; /* GBytes */
} Frame;

static void
frame_free (Frame *frame)
{
  g_clear_pointer (&frame->root, json_node_unref);
  g_clear_pointer (&frame->attachments, g_ptr_array_unref);
  g_free (frame);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Frame, frame_free)

static void
put_be (guint8 *p, guint64 v, int n)
{
  for (int i = n - 1; i >= 0; i--, v >>= 8)
    p[i] = v & 0xff;
}

static guint64
get_be (const guint8 *p, int n)
{
  guint64 v = 0;

  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

static void
write_all (int fd, const void *data, gsize size)
{
  const guint8 *p = data;

  while (size > 0)
    {
      gssize n = write (fd, p, size);

      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      p += n;
      size -= n;
    }
}

static void
send_raw (int          fd,
          guint8       type,
          guint64      id,
          guint32      aux,
          const char  *json,
          GBytes     **attachments,
          guint        n_attachments)
{
  g_autoptr(GByteArray) body = g_byte_array_new ();
  guint8 header[HEADER_SIZE] = { 0 };
  gsize json_length = json ? strlen (json) : 0;
  gsize data_length = 0;

  for (guint i = 0; i < n_attachments; i++)
    {
      guint8 len[4];

      put_be (len, g_bytes_get_size (attachments[i]), 4);
      g_byte_array_append (body, len, 4);
    }
  for (guint i = 0; i < n_attachments; i++)
    {
      g_byte_array_append (body, g_bytes_get_data (attachments[i], NULL),
                           g_bytes_get_size (attachments[i]));
      data_length += g_bytes_get_size (attachments[i]);
    }

  put_be (header + 0, MAGIC, 4);
  header[4] = 1;
  header[5] = type;
  put_be (header + 8, id, 8);
  put_be (header + 16, aux, 4);
  put_be (header + 20, json_length, 4);
  put_be (header + 24, n_attachments ? 4 * n_attachments + data_length : 0, 4);
  put_be (header + 28, n_attachments, 2);
  write_all (fd, header, sizeof header);
  if (json_length)
    write_all (fd, json, json_length);
  if (body->len)
    write_all (fd, body->data, body->len);
}

/* FALSE at EOF */
static gboolean
read_exact (int fd, guint8 *p, gsize size)
{
  while (size > 0)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      gssize n;
      int r = poll (&pfd, 1, IO_TIMEOUT_MS);

      if (r < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (r, ==, 1); /* 0: the worker said nothing for 10 s */
      n = read (fd, p, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        return FALSE;
      g_assert_cmpint (n, >, 0);
      p += n;
      size -= n;
    }
  return TRUE;
}

static Frame *
read_raw (int fd)
{
  guint8 header[HEADER_SIZE];
  g_autoptr(Frame) frame = g_new0 (Frame, 1);
  g_autofree guint8 *body = NULL;
  gsize json_length, att_length, n_att, offset;

  if (!read_exact (fd, header, sizeof header))
    return NULL;
  g_assert_cmphex (get_be (header, 4), ==, MAGIC);
  g_assert_cmpuint (header[4], ==, 1);
  frame->type = header[5];
  g_assert_cmpuint (get_be (header + 6, 2), ==, 0);
  frame->id = get_be (header + 8, 8);
  frame->aux = get_be (header + 16, 4);
  json_length = get_be (header + 20, 4);
  att_length = get_be (header + 24, 4);
  n_att = get_be (header + 28, 2);
  g_assert_cmpuint (get_be (header + 30, 2), ==, 0);

  body = g_malloc (json_length + att_length + 1);
  g_assert_true (read_exact (fd, body, json_length + att_length));
  if (json_length)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      json_parser_load_from_data (parser, (char *) body, json_length, &error);
      g_assert_no_error (error);
      frame->root = json_node_ref (json_parser_get_root (parser));
      g_assert_true (JSON_NODE_HOLDS_OBJECT (frame->root));
    }
  frame->attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  offset = json_length + 4 * n_att;
  for (gsize i = 0; i < n_att; i++)
    {
      gsize len = get_be (body + json_length + 4 * i, 4);

      g_assert_cmpuint (offset + len, <=, json_length + att_length);
      g_ptr_array_add (frame->attachments, g_bytes_new (body + offset, len));
      offset += len;
    }
  g_assert_cmpuint (offset, ==, json_length + (n_att ? att_length : 0));
  return g_steal_pointer (&frame);
}

static JsonObject *
frame_object (Frame *frame)
{
  g_assert_nonnull (frame->root);
  return json_node_get_object (frame->root);
}

static char *
node_to_string (JsonNode *node)
{
  return json_to_string (node, FALSE);
}

/* The worker under test */

typedef struct {
  DirtyWorker *worker;
  GThread *thread;
  int fd;
  int worker_fd;
  guint64 next_id;
  int status;
  GPtrArray *statuses;   /* JsonNode of HELLO/STATUS seen so far */
} Fixture;

static gpointer
worker_thread (gpointer data)
{
  Fixture *fixture = data;
  g_autoptr(GMainContext) context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  fixture->status = dirty_worker_run (fixture->worker, fixture->worker_fd, 7);
  g_main_context_pop_thread_default (context);
  return NULL;
}

static void
fixture_init (Fixture *fixture, guint n_threads)
{
  int fds[2];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  fixture->fd = fds[0];
  fixture->worker_fd = fds[1];
  fixture->worker = dirty_worker_new (n_threads);
  fixture->next_id = 1;
  fixture->status = -1;
  fixture->statuses = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
}

static void
fixture_load (Fixture *fixture, const char *name, gboolean expect_ok)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = dirty_worker_load_app (fixture->worker, name,
                                       (const char * const *) app_path, &error);

  if (expect_ok)
    g_assert_no_error (error);
  g_assert_true (ok == expect_ok);
}

static void
fixture_start (Fixture *fixture)
{
  fixture->thread = g_thread_new ("worker", worker_thread, fixture);
}

/* Waits for the worker to return, after EOF */
static void
fixture_stop (Fixture *fixture)
{
  if (fixture->fd >= 0)
    close (fixture->fd);
  fixture->fd = -1;
  if (fixture->thread)
    g_thread_join (g_steal_pointer (&fixture->thread));
}

static void
fixture_clear (Fixture *fixture)
{
  fixture_stop (fixture);
  g_clear_object (&fixture->worker);
  g_clear_pointer (&fixture->statuses, g_ptr_array_unref);
}

/* The next frame that is not a HEARTBEAT; HELLO/STATUS are recorded too */
static Frame *
next_frame (Fixture *fixture)
{
  for (;;)
    {
      Frame *frame = read_raw (fixture->fd);

      if (frame == NULL)
        return NULL;
      if (frame->type == HEARTBEAT)
        {
          g_assert_null (frame->root);
          frame_free (frame);
          continue;
        }
      if (frame->type == HELLO || frame->type == STATUS)
        g_ptr_array_add (fixture->statuses, json_node_ref (frame->root));
      return frame;
    }
}

/* The next reply, skipping STATUS and BACKTRACE (sent unasked at a
 * call's deadline) */
static Frame *
next_reply (Fixture *fixture)
{
  for (;;)
    {
      Frame *frame = next_frame (fixture);

      g_assert_nonnull (frame);
      if (frame->type == RESPONSE || frame->type == ERROR)
        return frame;
      if (frame->type != BACKTRACE)
        g_assert_cmpuint (frame->type, ==, STATUS);
      frame_free (frame);
    }
}

static const char *
app_state (JsonNode *status, const char *app, const char *member)
{
  JsonObject *apps = json_object_get_object_member (json_node_get_object (status), "apps");
  JsonObject *entry = json_object_get_object_member (apps, app);

  g_assert_nonnull (entry);
  return json_object_get_string_member_with_default (entry, member, NULL);
}

/* Reads HELLO, then STATUS frames until @app is in @state */
static JsonNode *
wait_for_state (Fixture *fixture, const char *app, const char *state)
{
  for (;;)
    {
      g_autoptr(Frame) frame = next_frame (fixture);

      g_assert_nonnull (frame);
      g_assert_true (frame->type == HELLO || frame->type == STATUS);
      if (g_strcmp0 (app_state (frame->root, app, "state"), state) == 0)
        return json_node_ref (frame->root);
    }
}

static guint64
send_request (Fixture    *fixture,
              guint32     timeout_ms,
              const char *json,
              GBytes    **attachments,
              guint       n_attachments)
{
  guint64 id = fixture->next_id++;

  send_raw (fixture->fd, REQUEST, id, timeout_ms, json, attachments, n_attachments);
  return id;
}

static Frame *
call (Fixture *fixture, const char *json)
{
  guint64 id = send_request (fixture, 0, json, NULL, 0);
  Frame *reply = next_reply (fixture);

  g_assert_cmpuint (reply->id, ==, id);
  return reply;
}

static void
assert_result (Frame *reply, const char *expected_json)
{
  g_autofree char *got = NULL;

  if (reply->type == ERROR)
    g_error ("expected a result, got an error: %s",
             json_object_get_string_member (frame_object (reply), "message"));
  g_assert_cmpuint (reply->type, ==, RESPONSE);
  got = node_to_string (json_object_get_member (frame_object (reply), "result"));
  g_assert_cmpstr (got, ==, expected_json);
}

static void
assert_error (Frame *reply, const char *code, const char *message_part)
{
  JsonObject *object;

  g_assert_cmpuint (reply->type, ==, ERROR);
  object = frame_object (reply);
  g_assert_cmpstr (json_object_get_string_member (object, "code"), ==, code);
  if (message_part)
    g_assert_nonnull (strstr (json_object_get_string_member (object, "message"), message_part));
  g_assert_cmpint (json_object_get_int_member (object, "worker_pid"), ==, getpid ());
}

/* A call that must come back as an ERROR with @code (and @message_part
 * in its message, if given) */
static void
call_expect_error (Fixture    *fixture,
                   const char *json,
                   const char *code,
                   const char *message_part)
{
  Frame *reply = call (fixture, json);

  assert_error (reply, code, message_part);
  frame_free (reply);
}

/* Loader */

static void
test_loader_symbol (void)
{
  /* Through a missing type, whose error names the symbol it looked for */
  struct { const char *type; const char *symbol; } cases[] = {
    { "DirtyEchoApp", "dirty_echo_app_get_type" },
    { "DirtyHTTPApp", "dirty_http_app_get_type" },
    { "MyApp2Thing", "my_app2_thing_get_type" },
    { "X", "x_get_type" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DirtyWorker) worker = dirty_worker_new (1);
      g_autoptr(GError) error = NULL;
      g_autofree char *name = g_strdup_printf ("notanapp:%s", cases[i].type);

      g_assert_false (dirty_worker_load_app (worker, name, (const char * const *) app_path, &error));
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND);
      g_assert_nonnull (strstr (error->message, cases[i].symbol));
      g_assert_nonnull (strstr (error->message, "notanapp.so"));
    }
}

static void
test_loader_bad_names (void)
{
  const char *names[] = { "echo", "echo:", ":DirtyEchoApp", "echo:Dirty-Echo", "../echo:DirtyEchoApp",
                          "sub/echo:DirtyEchoApp", "echo:3" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(DirtyWorker) worker = dirty_worker_new (1);
      g_autoptr(GError) error = NULL;

      g_assert_false (dirty_worker_load_app (worker, names[i], (const char * const *) app_path, &error));
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, names[i]));
    }
}

static void
test_loader_load (void)
{
  g_autoptr(DirtyWorker) worker = dirty_worker_new (2);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) actions = NULL;
  DirtyApp *app;
  DirtyActionFlags flags = 99;

  /* A trailing :N (the arbiter's worker count) is accepted and dropped */
  g_assert_true (dirty_worker_load_app (worker, "echo:DirtyEchoApp:2",
                                        (const char * const *) app_path, &error));
  g_assert_no_error (error);
  app = dirty_worker_get_app (worker, "echo:DirtyEchoApp");
  g_assert_nonnull (app);
  g_assert_true (DIRTY_IS_APP (app));
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (app), ==, "DirtyEchoApp");
  g_assert_cmpstr (dirty_app_get_name (app), ==, "echo:DirtyEchoApp");
  g_assert_true (dirty_worker_get_app (worker, "echo:DirtyEchoApp:2") == app);
  g_assert_cmpuint (dirty_worker_get_n_threads (worker), ==, 2);

  /* The action table: '_' names exist but are never callable */
  actions = dirty_app_list_actions (app);
  g_assert_cmpstrv (actions, ((const char *[]) { "add", "echo", "echo_bytes", "fail", NULL }));
  g_assert_true (dirty_app_lookup_action (app, "echo", &flags));
  g_assert_cmpint (flags, ==, DIRTY_ACTION_SYNC);
  g_assert_false (dirty_app_lookup_action (app, "_secret", NULL));
  g_assert_false (dirty_app_lookup_action (app, "nope", NULL));
  g_assert_false (dirty_app_lookup_action (app, "", NULL));

  /* Loading the same module twice shares it; a second app is separate */
  g_assert_true (dirty_worker_load_app (worker, "slow:DirtySlowApp",
                                        (const char * const *) app_path, &error));
  app = dirty_worker_get_app (worker, "slow:DirtySlowApp");
  g_assert_true (dirty_app_lookup_action (app, "sleep_async", &flags));
  g_assert_cmpint (flags, ==, DIRTY_ACTION_ASYNC);
  g_assert_true (dirty_app_lookup_action (app, "sleep", &flags));
  g_assert_cmpint (flags, ==, DIRTY_ACTION_SYNC);
}

static void
test_loader_absolute (void)
{
  g_autoptr(DirtyWorker) worker = dirty_worker_new (1);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *name = NULL;

  for (guint i = 0; app_path[i] && path == NULL; i++)
    {
      g_autofree char *candidate = g_build_filename (app_path[i], "counter.so", NULL);

      if (g_file_test (candidate, G_FILE_TEST_EXISTS))
        path = g_canonicalize_filename (candidate, NULL);
    }
  g_assert_nonnull (path);
  name = g_strdup_printf ("%s:DirtyCounterApp", path);
  g_assert_true (dirty_worker_load_app (worker, name, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (dirty_app_get_name (dirty_worker_get_app (worker, name)), ==, name);
}

static void
test_loader_failures (void)
{
  struct { const char *name; const char *parts[3]; } cases[] = {
    { "nosuchmodule:DirtyEchoApp", { "nosuchmodule", "nosuchmodule.so", "libnosuchmodule.so" } },
    { "notanapp:DirtyMissingApp", { "notanapp", "dirty_missing_app_get_type", "notanapp.so" } },
    { "notanapp:DirtyNotAnApp", { "is not a DirtyApp", "dirty_not_an_app_get_type", "GObject" } },
    { "notanapp:DirtyAbstractApp", { "is abstract", "dirty_abstract_app_get_type", "notanapp.so" } },
    { "/nonexistent/x.so:DirtyEchoApp", { "/nonexistent/x.so", "not found", NULL } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DirtyWorker) worker = dirty_worker_new (1);
      g_autoptr(GError) error = NULL;

      g_test_message ("loading %s", cases[i].name);
      g_assert_false (dirty_worker_load_app (worker, cases[i].name,
                                             (const char * const *) app_path, &error));
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND);
      for (guint j = 0; j < G_N_ELEMENTS (cases[i].parts) && cases[i].parts[j]; j++)
        if (strstr (error->message, cases[i].parts[j]) == NULL)
          g_error ("“%s” not in “%s”", cases[i].parts[j], error->message);
      /* Recorded as unavailable, not usable */
      g_assert_null (dirty_worker_get_app (worker, cases[i].name));
    }
}

static void
test_loader_empty_path (void)
{
  g_autoptr(DirtyWorker) worker = dirty_worker_new (1);
  g_autoptr(GError) error = NULL;
  const char *const empty[] = { "", NULL };

  g_assert_false (dirty_worker_load_app (worker, "echo:DirtyEchoApp", empty, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND);
}

/* Apps without a worker */

static void
test_app_direct (void)
{
  g_autoptr(TestInlineApp) app = g_object_new (TEST_TYPE_INLINE_APP, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;

  g_assert_null (dirty_app_get_name (DIRTY_APP (app)));
  g_object_set (app, "name", "inline:Test", NULL);
  g_object_get (app, "name", &name, NULL);
  g_assert_cmpstr (name, ==, "inline:Test");
  /* No init() vfunc: succeeds */
  g_assert_true (dirty_app_init (DIRTY_APP (app), NULL, &error));
  g_assert_no_error (error);
  dirty_app_close (DIRTY_APP (app));
  g_assert_cmpint (app->n_closed, ==, 1);
  g_assert_true (g_type_is_a (DIRTY_TYPE_ACTION_FLAGS, G_TYPE_FLAGS));
}

/* The worker */

static void
setup_worker (Fixture *fixture, guint n_threads)
{
  g_autoptr(TestInlineApp) inline_app = g_object_new (TEST_TYPE_INLINE_APP, NULL);

  fixture_init (fixture, n_threads);
  fixture_load (fixture, "echo:DirtyEchoApp", TRUE);
  fixture_load (fixture, "slow:DirtySlowApp", TRUE);
  fixture_load (fixture, "testapp:DirtyTestApp", TRUE);
  fixture_load (fixture, "notanapp:DirtyNotAnApp", FALSE);
  dirty_worker_add_app (fixture->worker, "inline:Test", DIRTY_APP (inline_app));
  fixture_start (fixture);
}

static void
test_worker_hello (void)
{
  Fixture fixture = { 0 };
  g_autoptr(Frame) hello = NULL;
  g_autoptr(JsonNode) status = NULL;
  JsonObject *object;

  setup_worker (&fixture, 2);
  hello = next_frame (&fixture);
  g_assert_cmpuint (hello->type, ==, HELLO);
  g_assert_cmpuint (hello->id, ==, 0);
  object = frame_object (hello);
  g_assert_cmpstr (json_object_get_string_member (object, "role"), ==, "worker");
  g_assert_cmpint (json_object_get_int_member (object, "pid"), ==, getpid ());
  g_assert_cmpint (json_object_get_int_member (object, "worker_id"), ==, 7);
  g_assert_cmpstr (app_state (hello->root, "notanapp:DirtyNotAnApp", "state"), ==, "unavailable");
  g_assert_nonnull (strstr (app_state (hello->root, "notanapp:DirtyNotAnApp", "error"),
                            "not a DirtyApp"));

  /* Every loaded app turns ready, announced by STATUS */
  status = wait_for_state (&fixture, "inline:Test", "ready");
  g_assert_cmpstr (app_state (status, "echo:DirtyEchoApp", "state"), ==, "ready");
  g_assert_cmpstr (app_state (status, "slow:DirtySlowApp", "state"), ==, "ready");
  g_assert_cmpstr (app_state (status, "testapp:DirtyTestApp", "state"), ==, "ready");
  g_assert_cmpstr (app_state (status, "notanapp:DirtyNotAnApp", "state"), ==, "unavailable");

  /* A heartbeat comes within about a second, even when idle */
  {
    g_autoptr(Frame) beat = read_raw (fixture.fd);
    g_assert_nonnull (beat);
    g_assert_cmpuint (beat->type, ==, HEARTBEAT);
    g_assert_cmpuint (beat->id, ==, 0);
  }

  fixture_stop (&fixture);
  g_assert_cmpint (fixture.status, ==, 0);
  fixture_clear (&fixture);
}

static void
start_ready_worker (Fixture *fixture, guint n_threads)
{
  g_autoptr(JsonNode) status = NULL;

  setup_worker (fixture, n_threads);
  status = wait_for_state (fixture, "inline:Test", "ready");
}

static void
test_worker_calls (void)
{
  Fixture fixture = { 0 };
  Frame *reply;

  start_ready_worker (&fixture, 2);

  /* echo: the args array, or the single arg itself */
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"args\":[1,\"a\",null]}");
  assert_result (reply, "[1,\"a\",null]");
  frame_free (reply);
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"args\":[{\"k\":[true]}]}");
  assert_result (reply, "{\"k\":[true]}");
  frame_free (reply);
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\"}");
  assert_result (reply, "[]");
  frame_free (reply);

  /* add: typed arguments */
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"add\",\"args\":[1,2,3]}");
  assert_result (reply, "6");
  frame_free (reply);
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"add\",\"args\":[1,2.5]}");
  assert_result (reply, "3.5");
  frame_free (reply);
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"add\",\"args\":[1,\"x\"]}",
                     "invalid-argument", "args[1] must be a number, not a string");

  /* no args, no kwargs: see bare_action () */
  reply = call (&fixture, "{\"app\":\"inline:Test\",\"action\":\"bare\"}");
  assert_result (reply, "\"bare ok\"");
  frame_free (reply);

  /* counter-like state is per app instance; pid says where we run */
  reply = call (&fixture, "{\"app\":\"slow:DirtySlowApp\",\"action\":\"pid\"}");
  {
    g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
    assert_result (reply, pid);
  }
  frame_free (reply);

  fixture_clear (&fixture);
  g_assert_cmpint (fixture.status, ==, 0);
}

static void
test_worker_bytes (void)
{
  Fixture fixture = { 0 };
  g_autoptr(GBytes) data = g_bytes_new ("\0\1\2\3binary\xff", 11);
  g_autoptr(GBytes) three = g_bytes_new ("\0\1\2", 3);
  guint64 id;
  Frame *reply;

  start_ready_worker (&fixture, 1);

  id = send_request (&fixture, 0,
                     "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo_bytes\",\"args\":[{\"$bytes\":0}]}",
                     &data, 1);
  reply = next_reply (&fixture);
  g_assert_cmpuint (reply->id, ==, id);
  assert_result (reply, "{\"$bytes\":0}");
  g_assert_cmpuint (reply->attachments->len, ==, 1);
  g_assert_true (g_bytes_equal (g_ptr_array_index (reply->attachments, 0), data));
  frame_free (reply);

  /* Several attachments nested in a result, and a deadline the call sees */
  id = send_request (&fixture, 60000, "{\"app\":\"inline:Test\",\"action\":\"attach\"}", NULL, 0);
  reply = next_reply (&fixture);
  assert_result (reply, "{\"a\":{\"$bytes\":0},\"b\":{\"$bytes\":1},\"deadline_set\":1}");
  g_assert_cmpuint (reply->attachments->len, ==, 2);
  g_assert_cmpmem (g_bytes_get_data (g_ptr_array_index (reply->attachments, 1), NULL), 2, "BB", 2);
  frame_free (reply);

  /* Not bytes where bytes are wanted; a reference past the attachments */
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo_bytes\",\"args\":[\"text\"]}",
                     "invalid-argument", "args[0] must be bytes, not a string");
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo_bytes\",\"args\":[{\"$bytes\":3}]}",
                     "invalid-argument", "missing attachment");

  /* The typed helpers, checked inside the action */
  id = send_request (&fixture, 0,
                     "{\"app\":\"inline:Test\",\"action\":\"typed\","
                     "\"args\":[7,3.0,2.5,true,\"str\",{\"$bytes\":0}],"
                     "\"kwargs\":{\"size\":64,\"name\":5,\"none\":null}}",
                     &three, 1);
  reply = next_reply (&fixture);
  assert_result (reply, "\"typed ok\"");
  frame_free (reply);

  fixture_clear (&fixture);
}

static void
test_worker_errors (void)
{
  Fixture fixture = { 0 };
  Frame *reply;
  JsonObject *object;

  start_ready_worker (&fixture, 1);

  call_expect_error (&fixture, "{\"app\":\"nope:Nope\",\"action\":\"x\"}",
                     "app-not-found", "nope:Nope");
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"nope\"}",
                     "action-not-found", "nope");
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"_secret\"}",
                     "action-not-found", "_secret");
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"args\":{\"a\":1}}",
                     "invalid-argument", "args");
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"kwargs\":[1]}",
                     "invalid-argument", "kwargs");
  /* null is not an empty array or object: the arbiter refuses it too */
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"args\":null}",
                     "invalid-argument", "args");
  call_expect_error (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"kwargs\":null}",
                     "invalid-argument", "kwargs");
  call_expect_error (&fixture, "{\"app\":\"notanapp:DirtyNotAnApp\",\"action\":\"x\"}",
                     "no-worker", "not a DirtyApp");
  call_expect_error (&fixture, "{\"action\":\"x\"}", "protocol", NULL);

  /* An app error carries app, action, worker pid and the detail */
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"fail\",\"args\":[\"boom\"]}");
  assert_error (reply, "app-error", "boom");
  object = frame_object (reply);
  g_assert_cmpstr (json_object_get_string_member (object, "app"), ==, "echo:DirtyEchoApp");
  g_assert_cmpstr (json_object_get_string_member (object, "action"), ==, "fail");
  g_assert_nonnull (strstr (json_object_get_string_member (object, "detail"), "Traceback"));
  frame_free (reply);

  /* A sync action that returns without completing its call */
  call_expect_error (&fixture, "{\"app\":\"testapp:DirtyTestApp\",\"action\":\"noreply\"}",
                     "app-error", "returned no result");

  /* The worker still serves after all that */
  reply = call (&fixture, "{\"app\":\"testapp:DirtyTestApp\",\"action\":\"ok\"}");
  assert_result (reply, "\"ok\"");
  frame_free (reply);

  fixture_clear (&fixture);
}

static void
test_worker_cancel (void)
{
  Fixture fixture = { 0 };
  const char *requests[] = {
    "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep\",\"args\":[30]}",
    "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep_async\",\"args\":[30]}",
  };

  start_ready_worker (&fixture, 2);

  for (guint i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      guint64 id = send_request (&fixture, 0, requests[i], NULL, 0);
      g_autoptr(Frame) reply = NULL;
      gint64 start;

      g_usleep (50000);
      start = g_get_monotonic_time ();
      send_raw (fixture.fd, CANCEL, id, 0, NULL, NULL, 0);
      reply = next_reply (&fixture);
      g_assert_cmpuint (reply->id, ==, id);
      assert_error (reply, "cancelled", NULL);
      g_assert_cmpint (g_get_monotonic_time () - start, <, 500000);
    }

  /* A CANCEL for an unknown id is ignored */
  send_raw (fixture.fd, CANCEL, 12345, 0, NULL, NULL, 0);
  {
    g_autoptr(Frame) reply = call (&fixture, "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep_async\",\"args\":[0.01]}");
    assert_result (reply, "0.01");
  }
  fixture_clear (&fixture);
}

/* Call @id, sent at @start with a 200 ms deadline, ends at it: first a
 * BACKTRACE with @member (its stack, or why there is none), then the
 * timeout ERROR. */
static void
expect_deadline_end (Fixture     *fixture,
                     guint64      id,
                     gint64       start,
                     const char  *member)
{
  g_autoptr(Frame) backtrace = NULL;
  g_autoptr(Frame) reply = NULL;
  gint64 elapsed;

  while ((backtrace = next_frame (fixture))->type == STATUS)
    frame_free (g_steal_pointer (&backtrace));
  g_assert_cmpuint (backtrace->type, ==, BACKTRACE);
  g_assert_cmpuint (backtrace->id, ==, id);
  g_assert_nonnull (json_object_get_string_member_with_default (
                      json_node_get_object (backtrace->root), member, NULL));
  reply = next_reply (fixture);
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpuint (reply->id, ==, id);
  assert_error (reply, "timeout", NULL);
  g_assert_cmpint (elapsed, >=, 190000);
  g_assert_cmpint (elapsed, <, 1000000);
}

static void
test_worker_deadline (void)
{
  Fixture fixture = { 0 };
  const char *requests[] = {
    "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep\",\"args\":[30]}",
    "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep_async\",\"args\":[30]}",
  };

  /* at the deadline, before the error: a BACKTRACE of the sync call's
   * thread, or (async) why there is none */
  const char *backtrace_members[] = { "backtrace", "error" };

  start_ready_worker (&fixture, 1);
  for (guint i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      gint64 start = g_get_monotonic_time ();
      guint64 id = send_request (&fixture, 200, requests[i], NULL, 0);

      expect_deadline_end (&fixture, id, start, backtrace_members[i]);
    }
  fixture_clear (&fixture);
}

/* One source serves every call's deadline: a call with an earlier
 * deadline than those already in flight still ends at its own. */
static void
test_worker_deadlines_out_of_order (void)
{
  const char *sleep = "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep_async\",\"args\":[30]}";
  Fixture fixture = { 0 };
  gint64 start;
  guint64 id;

  start_ready_worker (&fixture, 1);
  send_request (&fixture, 20000, sleep, NULL, 0);
  start = g_get_monotonic_time ();
  id = send_request (&fixture, 200, sleep, NULL, 0);
  expect_deadline_end (&fixture, id, start, "error");
  fixture_clear (&fixture);
}

/* A sync call's thread sends its reply and the main context forgets the
 * call only when it next wakes: a deadline passing in between must not
 * make a BACKTRACE or an ERROR of a call already answered. */
static void
test_worker_replied_before_deadline (void)
{
  Fixture fixture = { 0 };
  g_autoptr(Frame) reply = NULL;
  g_autoptr(Frame) next = NULL;
  guint64 id;

  start_ready_worker (&fixture, 1);
  id = send_request (&fixture, 100, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\"}",
                     NULL, 0);
  reply = next_reply (&fixture);
  g_assert_cmpuint (reply->id, ==, id);
  assert_result (reply, "[]");
  g_usleep (300000);   /* past the deadline */

  id = send_request (&fixture, 0, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\"}",
                     NULL, 0);
  while ((next = next_frame (&fixture))->type == STATUS)
    frame_free (g_steal_pointer (&next));
  g_assert_cmpuint (next->type, ==, RESPONSE);
  g_assert_cmpuint (next->id, ==, id);
  fixture_clear (&fixture);
  g_assert_cmpint (fixture.status, ==, 0);
}

/* Calls answered from their threads still count as ended at shutdown:
 * the app is closed. */
static void
test_worker_closes_after_replies (void)
{
  Fixture fixture = { 0 };
  TestInlineApp *inline_app;

  start_ready_worker (&fixture, 2);
  inline_app = g_object_ref (TEST_INLINE_APP (dirty_worker_get_app (fixture.worker, "inline:Test")));
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(Frame) reply = call (&fixture, "{\"app\":\"inline:Test\",\"action\":\"attach\"}");

      g_assert_cmpuint (reply->type, ==, RESPONSE);
    }
  dirty_worker_stop (fixture.worker);
  g_thread_join (g_steal_pointer (&fixture.thread));
  g_assert_cmpint (fixture.status, ==, 0);
  g_assert_cmpint (inline_app->n_closed, ==, 1);
  g_object_unref (inline_app);
  fixture_clear (&fixture);
}

static void
test_worker_concurrency (void)
{
  Fixture fixture = { 0 };
  guint64 ids[4];
  gint64 latest_start = 0, earliest_end = G_MAXINT64;

  start_ready_worker (&fixture, 4);
  for (guint i = 0; i < 4; i++)
    ids[i] = send_request (&fixture, 0,
                           "{\"app\":\"testapp:DirtyTestApp\",\"action\":\"sleep\",\"args\":[0.5]}",
                           NULL, 0);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(Frame) reply = next_reply (&fixture);
      JsonObject *result;

      g_assert_cmpuint (reply->type, ==, RESPONSE);
      g_assert_cmpuint (reply->id, >=, ids[0]);
      g_assert_cmpuint (reply->id, <=, ids[3]);
      result = json_object_get_object_member (frame_object (reply), "result");
      latest_start = MAX (latest_start, json_object_get_int_member (result, "start"));
      earliest_end = MIN (earliest_end, json_object_get_int_member (result, "end"));
    }
  /* Four calls on four threads ran at the same time: every one had
   * started before any one ended. */
  g_assert_cmpint (latest_start, <, earliest_end);

  /* An async action completing later from another thread */
  {
    g_autoptr(Frame) reply = call (&fixture, "{\"app\":\"inline:Test\",\"action\":\"late\"}");
    assert_result (reply, "99");
  }
  fixture_clear (&fixture);
}

static void
test_worker_failinit (void)
{
  Fixture fixture = { 0 };
  const char *file = failinit_file;
  g_autoptr(JsonNode) hello = NULL;
  g_autoptr(JsonNode) failed = NULL;
  g_autoptr(JsonNode) ready = NULL;
  Frame *reply;
  gint64 start;

  g_assert_true (g_file_set_contents (file, "", 0, NULL));

  fixture_init (&fixture, 1);
  fixture_load (&fixture, "failinit:DirtyFailInitApp", TRUE);
  fixture_start (&fixture);

  hello = wait_for_state (&fixture, "failinit:DirtyFailInitApp", "starting");
  failed = wait_for_state (&fixture, "failinit:DirtyFailInitApp", "failed");
  g_assert_nonnull (strstr (app_state (failed, "failinit:DirtyFailInitApp", "error"),
                            "init failed on purpose"));
  g_assert_cmpint (json_object_get_int_member (
                     json_object_get_object_member (
                       json_object_get_object_member (json_node_get_object (failed), "apps"),
                       "failinit:DirtyFailInitApp"), "retry_ms"), ==, 1000);

  call_expect_error (&fixture, "{\"app\":\"failinit:DirtyFailInitApp\",\"action\":\"ok\"}",
                     "no-worker", "init failed on purpose");

  /* An init error goes in every HELLO and STATUS: megabytes of it would
   * make a frame the arbiter refuses. It is cut to 64 KiB, saying so. */
  {
    g_autofree char *long_text = g_strnfill (100 * 1024, 'e');
    g_autoptr(JsonNode) cut = NULL;
    const char *message;

    g_assert_true (g_file_set_contents (file, long_text, -1, NULL));
    do
      {
        g_clear_pointer (&cut, json_node_unref);
        cut = wait_for_state (&fixture, "failinit:DirtyFailInitApp", "failed");
        message = app_state (cut, "failinit:DirtyFailInitApp", "error");
      }
    while (strlen (message) < 64 * 1024);
    g_assert_cmpuint (strlen (message), <=, 64 * 1024 + 32);
    g_assert_true (g_str_has_suffix (message, " more bytes)"));
  }

  /* Once the cause is gone, the retry succeeds */
  start = g_get_monotonic_time ();
  g_assert_no_errno (g_unlink (file));
  ready = wait_for_state (&fixture, "failinit:DirtyFailInitApp", "ready");
  g_assert_cmpint (g_get_monotonic_time () - start, <, 2500000);
  reply = call (&fixture, "{\"app\":\"failinit:DirtyFailInitApp\",\"action\":\"ok\"}");
  assert_result (reply, "\"ok\"");
  frame_free (reply);

  fixture_clear (&fixture);
}

static void
test_worker_shutdown (void)
{
  Fixture fixture = { 0 };
  TestInlineApp *inline_app;
  g_autoptr(Frame) reply = NULL;
  guint64 id;
  gint64 start;

  start_ready_worker (&fixture, 1);
  inline_app = TEST_INLINE_APP (dirty_worker_get_app (fixture.worker, "inline:Test"));
  g_object_ref (inline_app);

  /* dirty_worker_stop() from another thread ends the call in flight with
   * shutting-down, closes the apps and returns 0. */
  id = send_request (&fixture, 0,
                     "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep\",\"args\":[30]}", NULL, 0);
  g_usleep (50000);
  start = g_get_monotonic_time ();
  dirty_worker_stop (fixture.worker);
  reply = next_reply (&fixture);
  g_assert_cmpuint (reply->id, ==, id);
  assert_error (reply, "shutting-down", NULL);
  /* Then EOF from the worker's side */
  g_assert_null (next_frame (&fixture));
  g_thread_join (g_steal_pointer (&fixture.thread));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 2000000);
  g_assert_cmpint (fixture.status, ==, 0);
  g_assert_cmpint (inline_app->n_closed, ==, 1);

  g_object_unref (inline_app);
  fixture_clear (&fixture);
}

static void
test_worker_eof (void)
{
  Fixture fixture = { 0 };
  TestInlineApp *inline_app;
  gint64 start;

  start_ready_worker (&fixture, 2);
  inline_app = g_object_ref (TEST_INLINE_APP (dirty_worker_get_app (fixture.worker, "inline:Test")));
  send_request (&fixture, 0, "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep\",\"args\":[30]}", NULL, 0);
  send_request (&fixture, 0, "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep_async\",\"args\":[30]}", NULL, 0);
  g_usleep (50000);

  /* The arbiter going away cancels everything and the worker returns */
  start = g_get_monotonic_time ();
  fixture_stop (&fixture);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 2000000);
  g_assert_cmpint (fixture.status, ==, 0);
  g_assert_cmpint (inline_app->n_closed, ==, 1);
  g_object_unref (inline_app);
  fixture_clear (&fixture);
}

static void
test_worker_protocol_errors (void)
{
  Fixture fixture = { 0 };
  g_autoptr(Frame) reply = NULL;

  start_ready_worker (&fixture, 1);
  /* A duplicate in-flight id breaks the protocol: ERROR id 0, then EOF */
  send_raw (fixture.fd, REQUEST, 5, 0,
            "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep\",\"args\":[30]}", NULL, 0);
  send_raw (fixture.fd, REQUEST, 5, 0,
            "{\"app\":\"slow:DirtySlowApp\",\"action\":\"sleep\",\"args\":[30]}", NULL, 0);
  for (;;)
    {
      g_autoptr(Frame) frame = next_frame (&fixture);

      g_assert_nonnull (frame);
      if (frame->type == ERROR && frame->id == 0)
        {
          g_assert_cmpstr (json_object_get_string_member (frame_object (frame), "code"), ==, "protocol");
          break;
        }
    }
  fixture_stop (&fixture);
  g_assert_cmpint (fixture.status, ==, 0);
  fixture_clear (&fixture);
}

/* The example apps */

static void
start_examples_worker (Fixture *fixture, guint n_threads, gboolean with_thumbnail)
{
  g_autoptr(JsonNode) status = NULL;

  fixture_init (fixture, n_threads);
  fixture_load (fixture, "counter:DirtyCounterApp", TRUE);
  fixture_load (fixture, "compress:DirtyCompressApp", TRUE);
  if (with_thumbnail)
    fixture_load (fixture, "thumbnail:DirtyThumbnailApp", TRUE);
  fixture_start (fixture);
  status = wait_for_state (fixture, "compress:DirtyCompressApp", "ready");
  if (with_thumbnail && g_strcmp0 (app_state (status, "thumbnail:DirtyThumbnailApp", "state"), "ready") != 0)
    {
      g_clear_pointer (&status, json_node_unref);
      status = wait_for_state (fixture, "thumbnail:DirtyThumbnailApp", "ready");
    }
}

static void
test_examples_counter (void)
{
  Fixture fixture = { 0 };
  const char *incr = "{\"app\":\"counter:DirtyCounterApp\",\"action\":\"incr\"}";
  Frame *reply;

  start_examples_worker (&fixture, 4, FALSE);
  /* 200 increments on four threads: none lost */
  for (guint i = 0; i < 200; i++)
    send_request (&fixture, 0, incr, NULL, 0);
  for (guint i = 0; i < 200; i++)
    {
      reply = next_reply (&fixture);
      g_assert_cmpuint (reply->type, ==, RESPONSE);
      frame_free (reply);
    }
  reply = call (&fixture, "{\"app\":\"counter:DirtyCounterApp\",\"action\":\"incr\",\"args\":[5]}");
  assert_result (reply, "205");
  frame_free (reply);
  call_expect_error (&fixture, "{\"app\":\"counter:DirtyCounterApp\",\"action\":\"incr\",\"args\":[\"x\"]}",
                     "invalid-argument", "args[0] must be an integer");
  reply = call (&fixture, "{\"app\":\"counter:DirtyCounterApp\",\"action\":\"reset\"}");
  assert_result (reply, "205");
  frame_free (reply);
  reply = call (&fixture, "{\"app\":\"counter:DirtyCounterApp\",\"action\":\"get\"}");
  assert_result (reply, "0");
  frame_free (reply);
  fixture_clear (&fixture);
}

static void
test_examples_compress (void)
{
  Fixture fixture = { 0 };
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GBytes) compressed = NULL;
  g_autoptr(GBytes) junk = g_bytes_new_static ("not zlib at all", 15);
  Frame *reply;

  for (guint i = 0; i < 1000; i++)
    g_string_append (text, "all work and no play ");
  input = g_bytes_new (text->str, text->len);
  start_examples_worker (&fixture, 1, FALSE);

  send_request (&fixture, 0, "{\"app\":\"compress:DirtyCompressApp\",\"action\":\"compress\","
                "\"args\":[{\"$bytes\":0}],\"kwargs\":{\"level\":9}}", &input, 1);
  reply = next_reply (&fixture);
  assert_result (reply, "{\"$bytes\":0}");
  compressed = g_bytes_ref (g_ptr_array_index (reply->attachments, 0));
  g_assert_cmpuint (g_bytes_get_size (compressed), <, g_bytes_get_size (input) / 10);
  frame_free (reply);

  send_request (&fixture, 0, "{\"app\":\"compress:DirtyCompressApp\",\"action\":\"decompress\","
                "\"args\":[{\"$bytes\":0}]}", &compressed, 1);
  reply = next_reply (&fixture);
  assert_result (reply, "{\"$bytes\":0}");
  g_assert_true (g_bytes_equal (g_ptr_array_index (reply->attachments, 0), input));
  frame_free (reply);

  /* Output over max_size is refused, not allocated */
  send_request (&fixture, 0, "{\"app\":\"compress:DirtyCompressApp\",\"action\":\"decompress\","
                "\"args\":[{\"$bytes\":0}],\"kwargs\":{\"max_size\":100}}", &compressed, 1);
  reply = next_reply (&fixture);
  assert_error (reply, "invalid-argument", "max_size");
  frame_free (reply);
  send_request (&fixture, 0, "{\"app\":\"compress:DirtyCompressApp\",\"action\":\"decompress\","
                "\"args\":[{\"$bytes\":0}]}", &junk, 1);
  reply = next_reply (&fixture);
  assert_error (reply, "invalid-argument", "not valid zlib data");
  frame_free (reply);
  call_expect_error (&fixture, "{\"app\":\"compress:DirtyCompressApp\",\"action\":\"compress\","
                "\"args\":[\"x\"],\"kwargs\":{\"level\":12}}", "invalid-argument", "level");

  reply = call (&fixture, "{\"app\":\"compress:DirtyCompressApp\",\"action\":\"crc32\",\"args\":[\"hello\"]}");
  assert_result (reply, "907060870");
  frame_free (reply);
  fixture_clear (&fixture);
}

/* An 8 x 4 RGB PNG, and a PNG header claiming 20000 x 20000 */
static const guint8 small_png[] =
  "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x08\x00\x00\x00\x04"
  "\x08\x02\x00\x00\x00\x3c\xaf\xe9\xa7\x00\x00\x00\x44\x49\x44\x41\x54\x78\x9c\x0d\xc9\x31\x01\xc0"
  "\x40\x0c\x03\x31\x23\x09\x12\x23\x09\x12\x8f\x87\xe2\x91\x18\x49\x10\xb5\x5a\x25\x89\x11\x16\x2b"
  "\x22\x9e\xa8\x38\x21\x99\x31\x36\x6b\x62\x9e\xa9\x39\xff\x11\x26\x38\x6c\x48\x78\xa1\xe1\xf2\x47"
  "\x99\xe2\xb2\x25\xe5\x95\x96\x2b\x1f\xbb\x2e\x28\x61\x73\x5b\x09\xe0\x00\x00\x00\x00\x49\x45\x4e"
  "\x44\xae\x42\x60\x82";
static const guint8 huge_png[] =
  "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x4e\x20\x00\x00\x4e\x20"
  "\x08\x02\x00\x00\x00\x6c\x12\xd1\x6e\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\x60\xa0\x3d\x00"
  "\x00\x00\x64\x00\x01\x86\x64\x3c\x35\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

static void
test_examples_thumbnail (void)
{
  Fixture fixture = { 0 };
  g_autoptr(GBytes) image = g_bytes_new_static (small_png, sizeof small_png - 1);
  g_autoptr(GBytes) huge = g_bytes_new_static (huge_png, sizeof huge_png - 1);
  g_autoptr(GBytes) junk = g_bytes_new_static ("GIF89a nope", 11);
  g_autoptr(GBytes) thumb = NULL;
  g_autofree char *module = NULL;
  Frame *reply;

  for (guint i = 0; app_path[i] && module == NULL; i++)
    {
      g_autofree char *candidate = g_build_filename (app_path[i], "thumbnail.so", NULL);
      if (g_file_test (candidate, G_FILE_TEST_EXISTS))
        module = g_steal_pointer (&candidate);
    }
  if (module == NULL)
    {
      g_test_skip ("thumbnail.so was not built (no gdk-pixbuf)");
      return;
    }
  start_examples_worker (&fixture, 1, TRUE);

  send_request (&fixture, 0, "{\"app\":\"thumbnail:DirtyThumbnailApp\",\"action\":\"info\","
                "\"args\":[{\"$bytes\":0}]}", &image, 1);
  reply = next_reply (&fixture);
  assert_result (reply, "{\"width\":8,\"height\":4,\"format\":\"png\"}");
  frame_free (reply);

  /* Fit in 4 x 4, keeping the aspect ratio: 4 x 2 */
  send_request (&fixture, 0, "{\"app\":\"thumbnail:DirtyThumbnailApp\",\"action\":\"thumbnail\","
                "\"args\":[{\"$bytes\":0}],\"kwargs\":{\"size\":4}}", &image, 1);
  reply = next_reply (&fixture);
  assert_result (reply, "{\"$bytes\":0}");
  thumb = g_bytes_ref (g_ptr_array_index (reply->attachments, 0));
  frame_free (reply);
  send_request (&fixture, 0, "{\"app\":\"thumbnail:DirtyThumbnailApp\",\"action\":\"info\","
                "\"args\":[{\"$bytes\":0}]}", &thumb, 1);
  reply = next_reply (&fixture);
  assert_result (reply, "{\"width\":4,\"height\":2,\"format\":\"png\"}");
  frame_free (reply);

  send_request (&fixture, 0, "{\"app\":\"thumbnail:DirtyThumbnailApp\",\"action\":\"info\","
                "\"args\":[{\"$bytes\":0}]}", &junk, 1);
  reply = next_reply (&fixture);
  assert_error (reply, "invalid-argument", "not an image");
  frame_free (reply);
  send_request (&fixture, 0, "{\"app\":\"thumbnail:DirtyThumbnailApp\",\"action\":\"thumbnail\","
                "\"args\":[{\"$bytes\":0}]}", &huge, 1);
  reply = next_reply (&fixture);
  assert_error (reply, "invalid-argument", "20000 x 20000");
  frame_free (reply);
  fixture_clear (&fixture);
}

/* The dirty-worker program */

static char *
worker_program (void)
{
  const char *env = g_getenv ("DIRTY_WORKER_PATH");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_test_build_filename (G_TEST_BUILT, "..", "daemon", "worker", "dirty-worker", NULL);
}

/* The program's argv, with @extra_args; the test's end of the socket
 * is fixture->fd, the worker's end is returned in @worker_fd. */
static GPtrArray *
worker_argv (Fixture *fixture, const char *const *extra_args, int *worker_fd)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  int fds[2];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  fixture->fd = fds[0];
  fixture->next_id = 1;
  fixture->statuses = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  *worker_fd = fds[1];

  g_ptr_array_add (argv, worker_program ());
  for (guint i = 0; app_path[i]; i++)
    g_ptr_array_add (argv, g_strconcat ("--app-path=", app_path[i], NULL));
  for (guint i = 0; extra_args[i]; i++)
    g_ptr_array_add (argv, g_strdup (extra_args[i]));
  g_ptr_array_add (argv, NULL);
  return argv;
}

static GSubprocess *
spawn_worker (Fixture *fixture, const char *const *extra_args, GError **error)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE);
  int worker_fd;
  g_autoptr(GPtrArray) argv = worker_argv (fixture, extra_args, &worker_fd);

  g_subprocess_launcher_take_fd (launcher, worker_fd, 3);
  return g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, error);
}

static void
test_program_serve (void)
{
  Fixture fixture = { 0 };
  g_autofree char *arbiter_pid = g_strdup_printf ("--arbiter-pid=%d", (int) getpid ());
  const char *args[] = { "--fd=3", "--worker-id=3", "--threads=2", "--app=echo:DirtyEchoApp",
                         "--app=missing:DirtyNope", arbiter_pid, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) worker = spawn_worker (&fixture, args, &error);
  g_autoptr(JsonNode) status = NULL;
  JsonObject *object;
  Frame *reply;

  g_assert_no_error (error);
  status = wait_for_state (&fixture, "echo:DirtyEchoApp", "ready");
  object = json_node_get_object (status);
  g_assert_cmpint (json_object_get_int_member (object, "worker_id"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (object, "threads"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (object, "pid"), ==,
                   g_ascii_strtoll (g_subprocess_get_identifier (worker), NULL, 10));
  g_assert_cmpstr (app_state (status, "missing:DirtyNope", "state"), ==, "unavailable");
  g_assert_nonnull (strstr (app_state (status, "missing:DirtyNope", "error"), "missing.so"));

  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"echo\",\"args\":[\"hi\"]}");
  assert_result (reply, "\"hi\"");
  frame_free (reply);
  reply = call (&fixture, "{\"app\":\"echo:DirtyEchoApp\",\"action\":\"fail\"}");
  g_assert_cmpuint (reply->type, ==, ERROR);
  g_assert_cmpint (json_object_get_int_member (frame_object (reply), "worker_pid"), ==,
                   g_ascii_strtoll (g_subprocess_get_identifier (worker), NULL, 10));
  frame_free (reply);

  /* SIGTERM: an orderly exit with status 0, closing the socket */
  g_subprocess_send_signal (worker, SIGTERM);
  g_assert_null (next_frame (&fixture));
  g_assert_true (g_subprocess_wait (worker, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (worker));
  g_assert_cmpint (g_subprocess_get_exit_status (worker), ==, 0);
  fixture_clear (&fixture);
}

/* The arbiter signals a worker it retired once more when it stops
 * itself: stop signals that come while the worker stops, however many,
 * must let it finish and exit with status 0, not kill it on its way out.
 * Signalled until it has exited: left unreaped (no GSubprocess, whose
 * child watch would reap it), its pid cannot be reused meanwhile. Several
 * rounds, as each one hits a different point of the worker's exit. */
static void
test_program_stop_signals_while_stopping (void)
{
  const char *args[] = { "--fd=3", "--app=echo:DirtyEchoApp", NULL };

  for (guint round = 0; round < 8; round++)
    {
      Fixture fixture = { 0 };
      g_autoptr(GError) error = NULL;
      int worker_fd, target_fd = 3, status;
      g_autoptr(GPtrArray) argv = worker_argv (&fixture, args, &worker_fd);
      g_autoptr(JsonNode) ready = NULL;
      siginfo_t exited = { 0 };
      GPid pid;
      guint sent = 0;
      gint64 give_up;

      g_spawn_async_with_pipes_and_fds (NULL, (const char * const *) argv->pdata, NULL,
                                        G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                                        -1, -1, -1, &worker_fd, &target_fd, 1,
                                        &pid, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      close (worker_fd);
      ready = wait_for_state (&fixture, "echo:DirtyEchoApp", "ready");
      give_up = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
      for (;;)
        {
          g_assert_no_errno (waitid (P_PID, pid, &exited, WEXITED | WNOHANG | WNOWAIT));
          if (exited.si_pid == pid)
            break;
          if (g_get_monotonic_time () > give_up)
            g_error ("round %u: the worker still runs 60 s and %u SIGTERMs later", round, sent);
          g_assert_no_errno (kill (pid, SIGTERM));
          sent++;
        }
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      if (!WIFEXITED (status))
        g_error ("round %u: the worker was killed by signal %d after %u SIGTERMs", round,
                 WTERMSIG (status), sent);
      g_assert_cmpint (WEXITSTATUS (status), ==, 0);
      fixture_clear (&fixture);
    }
}

static void
test_program_bad_options (void)
{
  struct { const char *args[4]; const char *message; } cases[] = {
    { { "--app=echo:DirtyEchoApp", NULL }, "--fd=FD is required" },
    { { "--fd=3", NULL }, "No app given" },
    { { "--fd=3", "--threads=0", "--app=echo:DirtyEchoApp", NULL }, "--threads=0" },
    { { "--fd=3", "--bogus", NULL }, "Unknown option" },
    { { "--fd=3", "--threads=many", NULL }, "many" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Fixture fixture = { 0 };
      g_autoptr(GError) error = NULL;
      g_autoptr(GSubprocess) worker = spawn_worker (&fixture, cases[i].args, &error);
      g_autofree char *err = NULL;

      g_assert_no_error (error);
      g_subprocess_communicate_utf8 (worker, NULL, NULL, NULL, &err, &error);
      g_assert_no_error (error);
      g_assert_true (g_subprocess_get_if_exited (worker));
      g_assert_cmpint (g_subprocess_get_exit_status (worker), ==, 2);
      if (strstr (err, cases[i].message) == NULL)
        g_error ("“%s” not in “%s”", cases[i].message, err);
      fixture_clear (&fixture);
    }
}

/* Completing twice: a critical, and the first result stands. Run in a
 * subprocess because the critical is fatal in tests. */
static void
test_call_complete_twice (void)
{
  if (g_test_subprocess ())
    {
      Fixture fixture = { 0 };
      g_autoptr(Frame) reply = NULL;

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      start_ready_worker (&fixture, 1);
      reply = call (&fixture, "{\"app\":\"inline:Test\",\"action\":\"twice\"}");
      assert_result (reply, "\"first\"");
      fixture_clear (&fixture);
      return;
    }
  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*completed its call more than once*");
}

static char **
find_app_path (void)
{
  const char *env = g_getenv ("DIRTY_TEST_APP_PATH");
  char **path;

  if (env != NULL && env[0] != '\0')
    return g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
  path = g_new0 (char *, 3);
  path[0] = g_test_build_filename (G_TEST_BUILT, "..", "examples", "apps", NULL);
  path[1] = g_test_build_filename (G_TEST_BUILT, "apps", NULL);
  return path;
}

int
main (int argc, char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  /* The worker logs expected trouble (a failing init, an action that
   * forgets its result) as messages and warnings; only criticals are bugs. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  app_path = find_app_path ();
  failinit_dir = g_dir_make_tmp ("dirty-test-app-XXXXXX", NULL);
  g_assert_nonnull (failinit_dir);
  failinit_file = g_build_filename (failinit_dir, "fail", NULL);
  g_setenv ("DIRTY_TEST_FAILINIT_FILE", failinit_file, TRUE);

  g_test_add_func ("/loader/symbol", test_loader_symbol);
  g_test_add_func ("/loader/bad-names", test_loader_bad_names);
  g_test_add_func ("/loader/load", test_loader_load);
  g_test_add_func ("/loader/absolute", test_loader_absolute);
  g_test_add_func ("/loader/failures", test_loader_failures);
  g_test_add_func ("/loader/empty-path", test_loader_empty_path);
  g_test_add_func ("/app/direct", test_app_direct);
  g_test_add_func ("/worker/hello", test_worker_hello);
  g_test_add_func ("/worker/calls", test_worker_calls);
  g_test_add_func ("/worker/bytes", test_worker_bytes);
  g_test_add_func ("/worker/errors", test_worker_errors);
  g_test_add_func ("/worker/cancel", test_worker_cancel);
  g_test_add_func ("/worker/deadline", test_worker_deadline);
  g_test_add_func ("/worker/deadlines-out-of-order", test_worker_deadlines_out_of_order);
  g_test_add_func ("/worker/replied-before-deadline", test_worker_replied_before_deadline);
  g_test_add_func ("/worker/closes-after-replies", test_worker_closes_after_replies);
  g_test_add_func ("/worker/concurrency", test_worker_concurrency);
  g_test_add_func ("/worker/failinit", test_worker_failinit);
  g_test_add_func ("/worker/shutdown", test_worker_shutdown);
  g_test_add_func ("/worker/eof", test_worker_eof);
  g_test_add_func ("/worker/protocol-errors", test_worker_protocol_errors);
  g_test_add_func ("/call/complete-twice", test_call_complete_twice);
  g_test_add_func ("/examples/counter", test_examples_counter);
  g_test_add_func ("/examples/compress", test_examples_compress);
  g_test_add_func ("/examples/thumbnail", test_examples_thumbnail);
  g_test_add_func ("/program/serve", test_program_serve);
  g_test_add_func ("/program/bad-options", test_program_bad_options);
  g_test_add_func ("/program/stop-signals-while-stopping",
                   test_program_stop_signals_while_stopping);

  ret = g_test_run ();
  g_unlink (failinit_file);
  g_rmdir (failinit_dir);
  g_free (failinit_file);
  g_free (failinit_dir);
  g_strfreev (app_path);
  return ret;
}
