/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real daemon against raw, hand-made and broken frames: every bad
 * input gets a typed error or a close, and the daemon keeps serving
 * everyone else. Frames are built with the protocol code where they are
 * valid, and by hand where the point is that they are not. */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>
#include <sys/resource.h>

#include "dirty-test-daemon.h"
#include "dirty-test-raw.h"

#define TESTAPP "testapp:DirtyTestApp"
#define ECHO    "echo:DirtyEchoApp"

static DirtyLimits limits;

static GSocket *
raw_connect (DirtyTestDaemon *daemon)
{
  return dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon));
}

static void
send_raw (GSocket *socket, const void *data, gsize len)
{
  g_assert_true (dirty_test_raw_send (socket, data, len));
}


/* Reads the next frame and checks it is an ERROR with @code for @id. */
static void
expect_error (GSocket *socket, guint64 id, const char *code)
{
  g_autoptr(DirtyFrame) frame = dirty_test_raw_read_frame (socket);
  g_autoptr(JsonNode) root = NULL;

  g_assert_nonnull (frame);
  g_assert_cmpint (frame->header.type, ==, DIRTY_FRAME_ERROR);
  g_assert_cmpuint (frame->header.id, ==, id);
  root = dirty_test_raw_frame_json (frame);
  g_test_message ("error for %" G_GUINT64_FORMAT ": %s: %s", id,
                  dirty_json_get_string (root, "code"), dirty_json_get_string (root, "message"));
  g_assert_cmpstr (dirty_json_get_string (root, "code"), ==, code);
}

static void
expect_closed (GSocket *socket)
{
  g_autoptr(DirtyFrame) frame = dirty_test_raw_read_frame (socket);

  g_assert_null (frame);
}

static JsonNode *
expect_result (GSocket *socket, guint64 id)
{
  g_autoptr(DirtyFrame) frame = dirty_test_raw_read_frame (socket);
  g_autoptr(JsonNode) root = NULL;
  JsonNode *result;

  g_assert_nonnull (frame);
  if (frame->header.type == DIRTY_FRAME_ERROR)
    {
      g_autoptr(JsonNode) err = dirty_test_raw_frame_json (frame);
      g_error ("expected a result for %" G_GUINT64_FORMAT ", got error %s",
               id, dirty_json_get_string (err, "message"));
    }
  g_assert_cmpint (frame->header.type, ==, DIRTY_FRAME_RESPONSE);
  g_assert_cmpuint (frame->header.id, ==, id);
  root = dirty_test_raw_frame_json (frame);
  result = json_object_get_member (json_node_get_object (root), "result");
  g_assert_nonnull (result);
  return json_node_copy (result);
}

/* A fresh connection still gets served. */
static void
assert_still_serving (DirtyTestDaemon *daemon)
{
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(DirtyFrame) req = dirty_test_raw_request (1, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}", 0);
  g_autoptr(JsonNode) result = NULL;

  g_assert_true (dirty_test_raw_send_frame (socket, req));
  result = expect_result (socket, 1);
  g_assert_cmpint (json_node_get_int (result), ==, 42);
}

static DirtyTestDaemon *
start (void)
{
  return dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO ";" TESTAPP "\n"
                                  "dirty_workers=1\ndirty_threads=3\n", NULL);
}

static void
write_header (guint8 *buf, guint8 type, guint64 id, guint32 json_len)
{
  DirtyFrameHeader h = { .type = type, .id = id, .json_length = json_len };

  dirty_frame_header_write (&h, buf);
}

static void
test_bad_magic (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

  send_raw (socket, http, sizeof http - 1);
  expect_error (socket, 0, "protocol");
  expect_closed (socket);
  assert_still_serving (daemon);
}

static void
test_bad_version (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  write_header (header, DIRTY_FRAME_REQUEST, 1, 0);
  header[4] = 9;
  send_raw (socket, header, sizeof header);
  expect_error (socket, 0, "protocol");
  expect_closed (socket);
  assert_still_serving (daemon);
}

/* Over the wire's bound (a body of 4 GiB or more), or a frame other
 * than a request over max_body: refused from the header alone, and the
 * connection closed; the daemon never buffers the body. */
static void
test_oversize_frame (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(GSocket) cancel = raw_connect (daemon);
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = 1, .json_length = G_MAXUINT32,
                         .attachments_length = G_MAXUINT32 };
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  dirty_frame_header_write (&h, header);
  send_raw (socket, header, sizeof header);
  expect_error (socket, 0, "protocol");
  expect_closed (socket);

  write_header (header, DIRTY_FRAME_CANCEL, 1, limits.max_body + 1);
  send_raw (cancel, header, sizeof header);
  expect_error (cancel, 0, "protocol");
  expect_closed (cancel);
  assert_still_serving (daemon);
}

/* A request over max_body or max_attachments fails alone, with
 * invalid-argument: its bytes are read past, not kept, and the
 * connection and the calls in flight on it go on. A client sends such a
 * request when it does not know the limits yet (its first call) or never
 * asks. The id is free again: the request never was in flight. */
static void
test_oversize_request (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO ";" TESTAPP "\n"
                             "dirty_workers=1\ndirty_threads=2\nmax_body=4096\n", NULL);
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(DirtyFrame) slow = dirty_test_raw_request (2, "{\"app\":\"" TESTAPP "\",\"action\":\"sleep\",\"args\":[2]}", 0);
  g_autoptr(DirtyFrame) good = dirty_test_raw_request (1, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}", 0);
  g_autofree char *x = g_strnfill (8 * 1024 * 1024, 'x');
  g_autofree char *json = g_strconcat ("{\"app\":\"" ECHO "\",\"action\":\"echo\",\"args\":[\"",
                                       x, "\"]}", NULL);
  /* 8 MiB: more than one read, and more than the daemon reads at once */
  g_autoptr(DirtyFrame) big = dirty_test_raw_request (1, json, 0);
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(JsonNode) slept = NULL;
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = 3, .json_length = 2,
                         .attachments_length = 4 * (DIRTY_DEFAULT_MAX_ATTACHMENTS + 1),
                         .n_attachments = DIRTY_DEFAULT_MAX_ATTACHMENTS + 1 };
  guint8 *many = g_malloc0 (DIRTY_FRAME_HEADER_SIZE + 2 + h.attachments_length);

  g_assert_true (dirty_test_raw_send_frame (socket, slow));
  g_assert_true (dirty_test_raw_send_frame (socket, big));
  expect_error (socket, 1, "invalid-argument");
  g_assert_true (dirty_test_raw_send_frame (socket, good));
  result = expect_result (socket, 1);
  g_assert_cmpint (json_node_get_int (result), ==, 42);

  /* one attachment too many, all empty: a body of a few bytes */
  dirty_frame_header_write (&h, many);
  memcpy (many + DIRTY_FRAME_HEADER_SIZE, "{}", 2);
  send_raw (socket, many, DIRTY_FRAME_HEADER_SIZE + 2 + h.attachments_length);
  g_free (many);
  expect_error (socket, 3, "invalid-argument");
  slept = expect_result (socket, 2);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (slept));
}

static void
test_truncated_frame (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  write_header (header, DIRTY_FRAME_REQUEST, 1, 100);
  send_raw (socket, header, sizeof header);
  send_raw (socket, "{\"app\":", 7);
  g_socket_close (socket, NULL);
  assert_still_serving (daemon);
}

static void
send_body (GSocket *socket, guint64 id, const char *json, gsize len)
{
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  write_header (header, DIRTY_FRAME_REQUEST, id, len);
  send_raw (socket, header, sizeof header);
  send_raw (socket, json, len);
}

static void
test_invalid_utf8 (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  const char json[] = "{\"app\":\"\xc3\x28\",\"action\":\"x\"}";

  send_body (socket, 3, json, sizeof json - 1);
  expect_error (socket, 0, "protocol");
  expect_closed (socket);
  assert_still_serving (daemon);
}

static void
test_too_deep_json (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(GString) json = g_string_new ("{\"app\":\"" ECHO "\",\"action\":\"echo\",\"args\":");

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (json, '[');
  send_body (socket, 4, json->str, json->len);
  expect_error (socket, 0, "protocol");
  expect_closed (socket);
  assert_still_serving (daemon);
}

static void
test_request_without_app (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(DirtyFrame) req = dirty_test_raw_request (5, "{\"action\":\"echo\"}", 0);
  g_autoptr(DirtyFrame) good = dirty_test_raw_request (6, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[1,2]}", 0);
  g_autoptr(JsonNode) result = NULL;

  /* a well-formed frame with a bad request fails only that request */
  g_assert_true (dirty_test_raw_send_frame (socket, req));
  expect_error (socket, 5, "invalid-argument");
  g_assert_true (dirty_test_raw_send_frame (socket, good));
  result = expect_result (socket, 6);
  g_assert_cmpint (json_node_get_int (result), ==, 3);
}

static void
test_wrong_typed_args (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(DirtyFrame) bad_args = dirty_test_raw_request (6, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":{\"a\":1}}", 0);
  g_autoptr(DirtyFrame) bad_kwargs = dirty_test_raw_request (7, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"kwargs\":[1]}", 0);
  g_autoptr(DirtyFrame) good = dirty_test_raw_request (8, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[1,2]}", 0);
  /* null is neither: the worker refuses it as well (/worker/errors) */
  g_autoptr(DirtyFrame) null_args = dirty_test_raw_request (9, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":null}", 0);
  g_autoptr(DirtyFrame) null_kwargs = dirty_test_raw_request (10, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"kwargs\":null}", 0);
  g_autoptr(JsonNode) result = NULL;

  g_assert_true (dirty_test_raw_send_frame (socket, bad_args));
  expect_error (socket, 6, "invalid-argument");
  g_assert_true (dirty_test_raw_send_frame (socket, bad_kwargs));
  expect_error (socket, 7, "invalid-argument");
  g_assert_true (dirty_test_raw_send_frame (socket, null_args));
  expect_error (socket, 9, "invalid-argument");
  g_assert_true (dirty_test_raw_send_frame (socket, null_kwargs));
  expect_error (socket, 10, "invalid-argument");
  /* the connection is still good */
  g_assert_true (dirty_test_raw_send_frame (socket, good));
  result = expect_result (socket, 8);
  g_assert_cmpint (json_node_get_int (result), ==, 3);
}

/* Replies are matched by id, not order: the shortest sleep answers first. */
static void
test_replies_out_of_order (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  struct { guint64 id; const char *secs; } calls[] = { { 10, "0.6" }, { 5, "0.05" }, { 7, "0.3" } };
  guint64 expected_order[] = { 5, 7, 10 };

  for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"app\":\"" TESTAPP "\",\"action\":\"sleep\",\"args\":[%s]}",
                                               calls[i].secs);
      g_autoptr(DirtyFrame) req = dirty_test_raw_request (calls[i].id, json, 0);
      g_assert_true (dirty_test_raw_send_frame (socket, req));
    }
  for (guint i = 0; i < G_N_ELEMENTS (expected_order); i++)
    {
      g_autoptr(JsonNode) result = expect_result (socket, expected_order[i]);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (result));
    }
}

static void
test_client_disconnect_mid_call (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO ";" TESTAPP "\n"
                             "dirty_workers=1\ndirty_threads=1\n", NULL);
  gint64 t0 = g_get_monotonic_time ();

  {
    g_autoptr(GSocket) doomed = raw_connect (daemon);
    g_autoptr(DirtyFrame) req = dirty_test_raw_request (1, "{\"app\":\"" TESTAPP "\",\"action\":\"sleep\",\"args\":[30]}", 0);

    g_assert_true (dirty_test_raw_send_frame (doomed, req));
    g_usleep (300 * 1000);
    g_socket_close (doomed, NULL);
  }
  /* the only slot frees as soon as the action sees its cancellable fire */
  assert_still_serving (daemon);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
}

static void
test_hello (void)
{
  g_autoptr(DirtyTestDaemon) daemon = start ();
  g_autoptr(GSocket) socket = raw_connect (daemon);
  g_autoptr(JsonNode) body = json_from_string ("{\"role\":\"client\"}", NULL);
  g_autoptr(DirtyFrame) hello = dirty_frame_encode (DIRTY_FRAME_HELLO, 0, 0, 0, body, NULL);
  g_autoptr(DirtyFrame) reply = NULL;
  g_autoptr(JsonNode) root = NULL;

  g_assert_true (dirty_test_raw_send_frame (socket, hello));
  reply = dirty_test_raw_read_frame (socket);
  g_assert_nonnull (reply);
  g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_HELLO);
  root = dirty_test_raw_frame_json (reply);
  g_assert_cmpstr (dirty_json_get_string (root, "role"), ==, "arbiter");
  g_assert_cmpint (dirty_json_get_int (root, "version", 0), ==, 1);
  g_assert_cmpint (dirty_json_get_int (root, "max_body", 0), ==, limits.max_body);
  g_assert_cmpint (dirty_json_get_int (root, "max_in_flight", 0), ==, limits.max_in_flight);
}

/* ---- out of descriptors ---- */

#define EMFILE_RECORD "accept: Too many open files"

/* The lowest descriptor number @pid does not use: with the soft
 * RLIMIT_NOFILE set to it, its next accept () fails with EMFILE (fds
 * it holds above it, such as valgrind's own, do not matter). */
static int
lowest_free_fd (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  g_autoptr(GHashTable) used = g_hash_table_new (NULL, NULL);
  const char *name;
  int fd = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_hash_table_add (used, GINT_TO_POINTER (atoi (name)));
  while (g_hash_table_contains (used, GINT_TO_POINTER (fd)))
    fd++;
  return fd;
}

static guint
count_records (const char *log, const char *needle)
{
  g_autofree char *text = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  for (const char *p = strstr (text, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* The CPU time @pid has used, in clock ticks */
static guint64
cpu_ticks (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  /* after "(comm)", state is field 3; utime and stime are 14 and 15 */
  fields = g_strsplit (strrchr (text, ')') + 2, " ", 0);
  return g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10);
}

/* Out of descriptors, with a connection waiting in the backlog: the
 * listener stays readable while every accept () fails with EMFILE, so
 * the arbiter pauses accepting rather than retrying on each turn of its
 * loop (which spins a CPU and floods the journal). It serves its
 * connections meanwhile, and takes the waiting one once a descriptor
 * is free. The unit launcher's worker socket is accepted by the same
 * code (dirty-acceptor.c). */
static void
test_out_of_descriptors (void)
{
  g_autofree char *dir = g_dir_make_tmp ("dirty-emfile-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "arbiter.log", NULL);
  g_autofree char *log_arg = g_strconcat ("--log-file=", log, NULL);
  const char *args[] = { log_arg, NULL };
  g_autoptr(DirtyTestDaemon) daemon = dirty_test_daemon_start (
    "[dirty-arbiter]\ndirty_apps=" ECHO "\ndirty_workers=1\n", args);
  GPid pid = dirty_test_daemon_get_pid (daemon);
  g_autoptr(GSocket) served = raw_connect (daemon);
  g_autoptr(GSocket) waiting = NULL;
  g_autoptr(DirtyFrame) req = NULL;
  g_autoptr(JsonNode) result = NULL;
  struct rlimit saved, lowered;
  guint64 ticks;
  guint records;

  /* @served is accepted before the limit is lowered */
  req = dirty_test_raw_request (1, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}", 0);
  g_assert_true (dirty_test_raw_send_frame (served, req));
  result = expect_result (served, 1);
  g_clear_pointer (&result, json_node_unref);

  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, NULL, &saved), ==, 0);
  lowered = saved;
  lowered.rlim_cur = lowest_free_fd (pid);
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &lowered, NULL), ==, 0);
  waiting = raw_connect (daemon);
  g_free (dirty_test_wait_for_text (log, EMFILE_RECORD));

  /* 2 s of EMFILE: a pause a second, not a retry a turn */
  ticks = cpu_ticks (pid);
  g_usleep (2 * G_USEC_PER_SEC);
  ticks = cpu_ticks (pid) - ticks;
  records = count_records (log, EMFILE_RECORD);
  g_test_message ("out of descriptors for 2 s: %u records, %" G_GUINT64_FORMAT
                  " ticks of CPU (%ld a second)", records, ticks, sysconf (_SC_CLK_TCK));
  g_assert_cmpuint (records, <=, 4);
  g_assert_cmpuint (ticks, <, (guint64) sysconf (_SC_CLK_TCK) / 2);

  /* the connections it holds are served meanwhile */
  g_assert_true (dirty_test_raw_send_frame (served, req));
  result = expect_result (served, 1);
  g_clear_pointer (&result, json_node_unref);

  /* a descriptor again: the waiting connection is taken and served */
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &saved, NULL), ==, 0);
  g_assert_true (dirty_test_raw_send_frame (waiting, req));
  result = expect_result (waiting, 1);
  g_assert_cmpint (json_node_get_int (result), ==, 42);

  g_clear_pointer (&daemon, dirty_test_daemon_stop);
  g_unlink (log);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  dirty_limits_init (&limits);

  g_test_add_func ("/hostile/bad-magic", test_bad_magic);
  g_test_add_func ("/hostile/bad-version", test_bad_version);
  g_test_add_func ("/hostile/oversize-frame", test_oversize_frame);
  g_test_add_func ("/hostile/oversize-request", test_oversize_request);
  g_test_add_func ("/hostile/truncated-frame", test_truncated_frame);
  g_test_add_func ("/hostile/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/hostile/too-deep-json", test_too_deep_json);
  g_test_add_func ("/hostile/request-without-app", test_request_without_app);
  g_test_add_func ("/hostile/wrong-typed-args", test_wrong_typed_args);
  g_test_add_func ("/protocol/replies-out-of-order", test_replies_out_of_order);
  g_test_add_func ("/protocol/client-disconnect-mid-call", test_client_disconnect_mid_call);
  g_test_add_func ("/protocol/hello", test_hello);
  g_test_add_func ("/hostile/out-of-descriptors", test_out_of_descriptors);
  return g_test_run ();
}
