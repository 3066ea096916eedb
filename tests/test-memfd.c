/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Large payloads as sealed memfds (docs/protocol.md, "File descriptor
 * attachments"), through the real daemon and workers: round trips around
 * the threshold, the mapped GBytes and the GInputStream a client gets,
 * large bytes chunks of a stream, 1 GiB, and no fd left behind in the
 * client or the arbiter. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <dirty.h>

#include "dirty-test-daemon.h"

#define ECHO      "echo:DirtyEchoApp"
#define STREAMAPP "streamapp:DirtyStreamTestApp"
#define TESTAPP   "testapp:DirtyTestApp"
#define THRESHOLD (64 * 1024)   /* DIRTY_MEMFD_THRESHOLD */
#define GIB       ((gsize) 1024 * 1024 * 1024)

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

static GBytes *
pattern_bytes (gsize size,
               guint seed)
{
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (i * 131 + seed + (i >> 12));
  return g_bytes_new_take (data, size);
}

/* Whether @data lies in a shared mapping of one of our memfds: how a large
 * attachment must arrive (mapped, not copied) */
static gboolean
is_memfd_mapping (gconstpointer data)
{
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;
  guintptr address = GPOINTER_TO_SIZE (data);

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      guint64 start, end;

      if (sscanf (lines[i], "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x", &start, &end) == 2 &&
          address >= start && address < end)
        return strstr (lines[i], "memfd:dirty-attachment") != NULL;
    }
  return FALSE;
}

/* Waits (bounded) for @pid to have @expected fds open again */
static void
wait_for_fds (GPid  pid,
              guint expected)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (dirty_test_count_fds (pid) != expected && g_get_monotonic_time () < end)
    g_usleep (10000);
  g_assert_cmpuint (dirty_test_count_fds (pid), ==, expected);
}

/* @pid's fd count once it stops changing (earlier tests' connections
 * close a little after their clients hang up) */
static guint
settled_fds (GPid pid)
{
  guint last = dirty_test_count_fds (pid), now;

  for (guint i = 0; i < 50; i++)
    {
      g_usleep (100000);
      if ((now = dirty_test_count_fds (pid)) == last)
        break;
      last = now;
    }
  return last;
}

static DirtyReply *
call_bytes (DirtyClient *client,
            const char  *app,
            const char  *action,
            GBytes      *bytes)
{
  g_autoptr(DirtyRequest) request = dirty_request_new (app, action);
  g_autoptr(GError) error = NULL;
  DirtyReply *reply;

  if (bytes != NULL)
    dirty_request_add_bytes (request, bytes);
  dirty_request_set_timeout (request, 120000);
  reply = dirty_client_send_sync (client, request, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (reply);
  return reply;
}

static DirtyReply *
echo_bytes (DirtyClient *client,
            GBytes      *bytes)
{
  return call_bytes (client, ECHO, "echo_bytes", bytes);
}

static void
test_sizes (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  const gsize sizes[] = { 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 1024 * 1024,
                          5 * 1024 * 1024 + 7 };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(GBytes) sent = pattern_bytes (sizes[i], i);
      g_autoptr(DirtyReply) reply = echo_bytes (client, sent);
      GBytes *got = dirty_reply_get_bytes (reply);

      g_assert_nonnull (got);
      g_assert_true (g_bytes_equal (got, sent));
      g_assert_cmpint (is_memfd_mapping (g_bytes_get_data (got, NULL)), ==,
                       sizes[i] >= THRESHOLD);
    }
}

/* An echo hands the request's memfd back: the client must not reuse it
 * for its next call while the reply maps it */
static void
test_reply_outlives_call (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(GPtrArray) replies = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < 8; i++)
    {
      g_ptr_array_add (sent, pattern_bytes (1024 * 1024, 40 + i));
      g_ptr_array_add (replies, echo_bytes (client, sent->pdata[i]));
    }
  for (guint i = 0; i < 8; i++)
    g_assert_true (g_bytes_equal (dirty_reply_get_bytes (replies->pdata[i]), sent->pdata[i]));
}

/* An app keeps an argument past its call; the client's next call reuses
 * the memfd it came in (a size class no other test uses, so the pool has
 * just that one): the kept bytes must not change */
static void
test_app_keeps_argument (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GBytes) first = pattern_bytes (300 * 1024, 90);
  g_autoptr(GBytes) second = pattern_bytes (300 * 1024, 91);
  g_autoptr(DirtyReply) kept = NULL;

  g_object_unref (call_bytes (client, TESTAPP, "keep", first));
  g_object_unref (echo_bytes (client, second));
  kept = call_bytes (client, TESTAPP, "kept", NULL);
  g_assert_nonnull (dirty_reply_get_bytes (kept));
  g_assert_true (g_bytes_equal (dirty_reply_get_bytes (kept), first));
}

/* The GInputStream face reads the mapping as it is */
static void
test_input_stream (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  gsize size = 3 * 1024 * 1024 + 5;
  g_autoptr(GBytes) sent = pattern_bytes (size, 7);
  g_autoptr(DirtyReply) reply = echo_bytes (client, sent);
  g_autoptr(GInputStream) stream = dirty_reply_dup_bytes_stream (reply, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *buffer = g_malloc (size + 1);
  gsize n_read = 0;

  g_assert_nonnull (stream);
  g_assert_true (g_input_stream_read_all (stream, buffer, size + 1, &n_read, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_read, ==, size);
  g_assert_cmpmem (buffer, size, g_bytes_get_data (sent, NULL), size);
  /* a result that is not bytes has no stream */
  {
    g_autoptr(JsonNode) number = json_node_init_int (json_node_alloc (), 3);
    g_assert_null (dirty_reply_dup_bytes_stream (reply, number));
  }
}

/* Many round trips: the client's pool is reused, and neither the client
 * nor the arbiter keeps an fd of a finished call */
static void
test_no_fd_leak (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  g_autoptr(GBytes) sent = pattern_bytes (1024 * 1024, 3);
  GPid arbiter = dirty_test_daemon_get_pid (shared_daemon);
  guint client_fds, arbiter_fds;

  /* warm up: the pool's first memfd stays open, and so does the
   * connection's wake-up fd for blocking calls, made by the first one
   * sent from this thread (the connection's very first call goes with
   * its HELLO, from the I/O thread) */
  g_object_unref (echo_bytes (client, sent));
  g_object_unref (echo_bytes (client, sent));
  client_fds = settled_fds (0);
  arbiter_fds = settled_fds (arbiter);
  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(DirtyReply) reply = echo_bytes (client, sent);
      g_assert_true (g_bytes_equal (dirty_reply_get_bytes (reply), sent));
    }
  /* the I/O thread drops a reply's frame (and its fd) just after the
   * caller has the reply */
  wait_for_fds (0, client_fds);
  wait_for_fds (arbiter, arbiter_fds);
}

/* A stream of large bytes chunks: each arrives mapped, in order (new
 * bytes from a worker travel as memfds from 8 MiB, DIRTY_MEMFD_FRESH_THRESHOLD;
 * smaller ones inline, which a stream of 1 MiB chunks checks too) */
static void
check_chunks (DirtyClient *client,
              guint        n,
              gsize        chunk_size)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *kwargs = g_strdup_printf ("{\"n\": %u, \"kind\": \"bytes\", \"size\": %"
                                             G_GSIZE_FORMAT "}", n, chunk_size);
  g_autoptr(JsonNode) kwargs_node = json_from_string (kwargs, &error);
  g_autoptr(DirtyStream) stream = NULL;

  g_assert_no_error (error);
  stream = dirty_client_stream_sync (client, STREAMAPP, "count", NULL,
                                     json_node_get_object (kwargs_node), NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_sync (stream, NULL, &error);
      GBytes *bytes;
      const guint8 *data;
      gsize size;

      g_assert_no_error (error);
      bytes = dirty_stream_lookup_bytes (stream, chunk);
      g_assert_nonnull (bytes);
      data = g_bytes_get_data (bytes, &size);
      g_assert_cmpuint (size, ==, chunk_size);
      g_assert_cmpint (is_memfd_mapping (data), ==, chunk_size >= 8 * 1024 * 1024);
      for (gsize j = 0; j < size; j += 4093)
        g_assert_cmpuint (data[j], ==, i);
      g_assert_cmpuint (data[size - 1], ==, i);
    }
  g_assert_null (dirty_stream_next_chunk_sync (stream, NULL, &error));
  g_assert_no_error (error);
}

static void
test_large_chunks (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);

  check_chunks (client, 6, 1024 * 1024 + 3);
  check_chunks (client, 4, 9 * 1024 * 1024 + 1);
}

/* 1 GiB each way, beyond max_body (64 MiB): only the memfd path can carry
 * it, so this proves there is no such cap on it */
static void
test_one_gib (void)
{
  g_autoptr(DirtyClient) client = connect_to (shared_daemon);
  guint8 *data = g_malloc (GIB);
  g_autoptr(GBytes) sent = NULL;
  g_autoptr(DirtyReply) reply = NULL;
  GBytes *got;
  gint64 start;

  /* a different byte every 4 KiB page, fast to write */
  for (gsize page = 0; page < GIB / 4096; page++)
    memset (data + page * 4096, (int) (page * 7 + (page >> 8)), 4096);
  sent = g_bytes_new_take (data, GIB);
  start = g_get_monotonic_time ();
  reply = echo_bytes (client, sent);
  g_test_message ("1 GiB echo: %.0f ms", (g_get_monotonic_time () - start) / 1000.0);
  got = dirty_reply_get_bytes (reply);
  g_assert_nonnull (got);
  g_assert_cmpuint (g_bytes_get_size (got), ==, GIB);
  g_assert_true (is_memfd_mapping (g_bytes_get_data (got, NULL)));
  g_assert_true (memcmp (g_bytes_get_data (got, NULL), data, GIB) == 0);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/memfd/round-trip-sizes", test_sizes);
  g_test_add_func ("/memfd/reply-outlives-call", test_reply_outlives_call);
  g_test_add_func ("/memfd/app-keeps-argument", test_app_keeps_argument);
  g_test_add_func ("/memfd/input-stream", test_input_stream);
  g_test_add_func ("/memfd/no-fd-leak", test_no_fd_leak);
  g_test_add_func ("/memfd/large-chunks", test_large_chunks);
  g_test_add_func ("/memfd/one-gib", test_one_gib);

  shared_daemon = dirty_test_daemon_start ("[dirty-arbiter]\n"
                                           "dirty_apps=" ECHO ";" STREAMAPP ";" TESTAPP "\n"
                                           "dirty_workers=1\n", NULL);
  status = g_test_run ();
  dirty_test_daemon_stop (shared_daemon);
  return status;
}
