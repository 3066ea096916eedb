/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hostile clients against the real daemon, at the scale of issue 7, with
 * small limits configured (max_body, max_in_flight, frame_timeout,
 * max_queued, max_connections_per_uid): slowloris at one byte a second
 * on 100 connections, a million tiny requests pipelined on one
 * connection, a queue flood, a client that never reads, 10,000
 * connections from one uid. Each attack is bounded by its limit, gets a
 * typed error or a close, the daemon's RSS stays bounded, and a
 * well-behaved client keeps being served meanwhile. Figures are printed
 * (`# FIGURE` lines): the well-behaved client's p99 latency unloaded
 * (measured again just before each attack, so a machine whose load
 * changes meanwhile does not skew the comparison) and during the attack.
 *
 * Where the arbiter can keep it, the p99 during the attack is asserted
 * to stay within 2x of the unloaded one, plus FAIR_SLACK_US: attacks
 * that cost the arbiter work per connection or per frame (slowloris, a
 * flood of frames on one connection, a flood of queued calls), which
 * the per-dispatch frame budget and the per-client round robin bound.
 * The slack is absolute because a p99 of a few hundred microseconds on
 * 2 cores shared with other jobs moves by milliseconds on its own (one
 * scheduler time slice lost is ~3 ms; measured on the development
 * machine under a load average of 8: the unloaded p99 ranged from 0.2 to
 * 8.5 ms between runs, and the p99 during the queue flood from 3.7 to
 * 7.3 ms). A regression of fairness costs far more: with one FIFO per
 * app, the queue flood's p99 was 35 and 69 ms (unloaded 3.9 and 0.2 ms),
 * as the call waited behind all 512 queued calls, and the test fails.
 * On a quieter machine (load average 1.7) the figures were: slowloris
 * 0.2-1.1 ms (unloaded 0.2-0.4), the in-flight flood (then 20,000
 * requests) 2.9-3.2 ms and the queue flood 1.7-2.7 ms (unloaded
 * 0.2-0.6): beyond a bare 2x, because those attackers keep the
 * arbiter's one thread busy (parsing frames as fast as they come;
 * serving 512 queued calls as fast as it can), which no queue discipline
 * gives back to the others; well within the slack. The million-request
 * flood keeps the arbiter's thread busy for its whole ~9 s, so every
 * probe call runs during it: 6.8-9.2 ms under a load average of 8
 * (unloaded 0.2-7 ms); without the slow reader (the reader waking for
 * every reply, the arbiter writing each one alone) it was 8.7-43 ms.
 *
 * Not asserted (printed, and explained where measured): a client that
 * never reads and the connection flood. There the attack takes the
 * resources themselves: 64 echoes of 256 KiB keep every worker slot busy
 * for milliseconds each (a call cannot be pre-empted: the well-behaved
 * call waits for a slot), and 10,000 connects with their credential
 * checks, on the arbiter's one thread, compete for the same 2 cores as
 * the probe and the test's own connect loop (measured under a load
 * average of 5: p99 2.8-11 ms, unloaded 0.2-9.7 ms). The slowest call
 * took 0.6-1.5 s (3.3 s under AddressSanitizer): the arbiter takes its
 * whole backlog (up to SOMAXCONN connects) in one dispatch. Bounding
 * that to 16 accepts a dispatch cut the slowest call to 24-38 ms but
 * raised the p99 to 19-26 ms (every call then shares the loop with the
 * accepts), so it is left as is here. What is asserted for them is that
 * every call gets its result, within a generous bound. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <gio/gunixsocketaddress.h>

#include "dirty-message.h"
#include "dirty-test-daemon.h"
#include "dirty-test-raw.h"

#define ECHO            "echo:DirtyEchoApp"
#define MAX_BODY        (1024 * 1024)
#define MAX_IN_FLIGHT   64
#define FRAME_TIMEOUT   1000            /* ms */
#define MAX_QUEUED      (4 * 1024 * 1024)
#define MAX_PER_UID     2500
#define PROBE_CALLS     300
/* a call this slow fails the test; AddressSanitizer makes every call
 * cost milliseconds of CPU (measured: a call waited up to 2.05 s during
 * the queue flood, under a load average of 11 on 2 cores) */
#if defined(__SANITIZE_ADDRESS__)
#define PROBE_SLOW_US   (5 * G_USEC_PER_SEC)
#else
#define PROBE_SLOW_US   (2 * G_USEC_PER_SEC)
#endif
/* bound on the arbiter's growth; AddressSanitizer's shadow memory and
 * quarantine roughly double what the same work costs (measured: 134 MiB
 * with 1000 connections open under ASan, 72 MiB without), and so does
 * valgrind (140 MiB) */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_GROWTH_KB   (256 * 1024)
#else
#define RSS_GROWTH_KB   (dirty_test_under_valgrind () ? 256 * 1024 : 128 * 1024)
#endif

/* the connection flood: the 10,000 from one peer (fewer only if
 * the hard RLIMIT_NOFILE does not allow them; the figure says how many);
 * the daemon's memory per admitted connection is bounded loosely here
 * (refused connections must leave nothing behind; what one admitted
 * connection costs is the performance benchmark's to bound) */
#define FLOOD_CONNECTIONS 10000
#if defined(__SANITIZE_ADDRESS__)
#define CONNECTION_KB   512
#else
#define CONNECTION_KB   256
#endif

/* see the top: what a loaded 2-core machine adds to a p99 on its own */
#define FAIR_SLACK_US   (15 * 1000)

static DirtyLimits limits;
static DirtyTestDaemon *daemon_;   /* one for the whole program */
static gint64 rss_start_kb;

/* ---- raw protocol ---- */

static GSocket *
raw_connect (void)
{
  return dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon_));
}

/* The ERROR frame's code and message (the caller frees the message) */
static const char *
error_code (DirtyFrame *frame, char **out_message)
{
  g_autoptr(JsonNode) root = dirty_test_raw_frame_json (frame);
  const char *code = dirty_json_get_string (root, "code");

  if (out_message != NULL)
    *out_message = g_strdup (dirty_json_get_string (root, "message"));
  return g_intern_string (code);
}

/* Reads an ERROR id 0 @code naming @needle, then EOF; returns when. */
static void
expect_error_and_close (GSocket *socket, const char *code, const char *needle)
{
  g_autoptr(DirtyFrame) frame = dirty_test_raw_read_frame (socket);
  g_autoptr(DirtyFrame) after = NULL;
  g_autofree char *message = NULL;

  g_assert_nonnull (frame);
  g_assert_cmpint (frame->header.type, ==, DIRTY_FRAME_ERROR);
  g_assert_cmpuint (frame->header.id, ==, 0);
  g_assert_cmpstr (error_code (frame, &message), ==, code);
  g_test_message ("  error: %s: %s", code, message);
  if (needle != NULL)
    g_assert_nonnull (strstr (message, needle));
  after = dirty_test_raw_read_frame (socket);
  g_assert_null (after);
}

static DirtyFrame *
add_frame (guint64 id)
{
  return dirty_test_raw_request (id, "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}", 0);
}

static void
write_header (guint8 *buf, guint64 id, guint32 json_len)
{
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = id, .json_length = json_len };

  dirty_frame_header_write (&h, buf);
}

/* ---- figures ---- */

static gint64
daemon_rss_kb (void)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status",
                                           (int) dirty_test_daemon_get_pid (daemon_));
  g_autofree char *contents = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  line = strstr (contents, "VmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoll (line + strlen ("VmRSS:"), NULL, 10);
}

static void
check_rss (const char *when)
{
  gint64 rss = daemon_rss_kb ();

  g_test_message ("  arbiter RSS %s: %" G_GINT64_FORMAT " KiB (at start %" G_GINT64_FORMAT " KiB)",
                  when, rss, rss_start_kb);
  g_assert_cmpint (rss, <, rss_start_kb + RSS_GROWTH_KB);
}

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* The well-behaved client: PROBE_CALLS sequential calls on its own
 * connection; returns the p99 latency in µs. */
typedef struct {
  GSocket *socket;
  gint64   pause_us;   /* between calls: to span a longer attack */
  gint64   p99;
  gint64   max;
} Probe;

static gpointer
probe_thread (gpointer user_data)
{
  Probe *probe = user_data;
  g_autofree gint64 *latency = g_new (gint64, PROBE_CALLS);

  for (guint i = 0; i < PROBE_CALLS; i++)
    {
      g_autoptr(DirtyFrame) req = add_frame (i + 1);
      g_autoptr(DirtyFrame) reply = NULL;
      gint64 start = g_get_monotonic_time ();

      g_assert_true (dirty_test_raw_send_frame (probe->socket, req));
      reply = dirty_test_raw_read_frame (probe->socket);
      latency[i] = g_get_monotonic_time () - start;
      g_assert_nonnull (reply);
      g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_RESPONSE);
      g_assert_cmpuint (reply->header.id, ==, i + 1);
      if (probe->pause_us > 0)
        g_usleep (probe->pause_us);
    }
  qsort (latency, PROBE_CALLS, sizeof *latency, compare_gint64);
  probe->p99 = latency[(PROBE_CALLS * 99 + 99) / 100 - 1];
  probe->max = latency[PROBE_CALLS - 1];
  return NULL;
}

static GThread *
probe_start_paced (Probe *probe, gint64 pause_us)
{
  memset (probe, 0, sizeof *probe);
  probe->socket = raw_connect ();
  probe->pause_us = pause_us;
  return g_thread_new ("probe", probe_thread, probe);
}

static GThread *
probe_start (Probe *probe)
{
  return probe_start_paced (probe, 0);
}

/* The well-behaved client's p99 with nothing else going on, now */
static gint64
measure_unloaded (const char *before)
{
  Probe probe;
  GThread *thread = probe_start (&probe);

  g_thread_join (thread);
  g_clear_object (&probe.socket);
  g_test_message ("  well-behaved client, %u calls unloaded (before %s): p99 %" G_GINT64_FORMAT
                  " us, max %" G_GINT64_FORMAT " us", PROBE_CALLS, before, probe.p99, probe.max);
  return probe.p99;
}

typedef enum {
  PRINT_ONLY,
  ASSERT_FAIR,   /* within 2x the unloaded p99, plus FAIR_SLACK_US */
} Check;

/* @turn: what the arbiter cannot avoid on top of 2x: the time of one
 * turn of the other clients' calls that wait with the probe's (queue
 * flood), 0 for the other attacks */
static void
probe_finish_turn (Probe *probe, GThread *thread, const char *attack, gint64 unloaded,
                   Check check, gint64 turn)
{
  gint64 bound = 2 * unloaded + turn + FAIR_SLACK_US;

  /* under valgrind every call is dozens of times slower and its cost
   * varies with what the emulator translates: measured, not bounded */
  if (dirty_test_under_valgrind ())
    check = PRINT_ONLY;
  if (thread != NULL)
    g_thread_join (thread);
  g_clear_object (&probe->socket);
  g_test_message ("  well-behaved client, %u calls during %s: p99 %" G_GINT64_FORMAT
                  " us (unloaded %" G_GINT64_FORMAT " us, %.1fx; bound %s %" G_GINT64_FORMAT
                  " us), max %" G_GINT64_FORMAT " us",
                  PROBE_CALLS, attack, probe->p99, unloaded,
                  unloaded > 0 ? (double) probe->p99 / unloaded : 0.0,
                  check == ASSERT_FAIR ? "asserted" : "not asserted", bound, probe->max);
  printf ("# FIGURE p99 %s: %" G_GINT64_FORMAT " us (unloaded %" G_GINT64_FORMAT " us)\n",
          attack, probe->p99, unloaded);
  g_assert_cmpint (probe->max, <, PROBE_SLOW_US * dirty_test_timeout_scale ());
  if (check == ASSERT_FAIR)
    g_assert_cmpint (probe->p99, <=, bound);
}

static void
probe_finish (Probe *probe, GThread *thread, const char *attack, gint64 unloaded, Check check)
{
  probe_finish_turn (probe, thread, attack, unloaded, check, 0);
}

static gboolean
readable (GSocket *socket)
{
  return (g_socket_condition_check (socket, G_IO_IN | G_IO_HUP | G_IO_ERR) != 0);
}

/* ---- the tests ---- */

static void
test_unloaded (void)
{
  gint64 p99 = measure_unloaded ("anything");

  printf ("# FIGURE p99 unloaded: %" G_GINT64_FORMAT " us\n", p99);
}

/* The HELLO tells the configured limits: the config reached the client
 * connection's DirtyLimits. */
static void
test_hello_limits (void)
{
  g_autoptr(GSocket) socket = raw_connect ();
  g_autoptr(JsonNode) body = json_from_string ("{\"role\":\"client\"}", NULL);
  g_autoptr(DirtyFrame) hello = dirty_frame_encode (DIRTY_FRAME_HELLO, 0, 0, 0, body, NULL);
  g_autoptr(DirtyFrame) reply = NULL;
  g_autoptr(JsonNode) root = NULL;

  g_assert_true (dirty_test_raw_send_frame (socket, hello));
  reply = dirty_test_raw_read_frame (socket);
  g_assert_nonnull (reply);
  g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_HELLO);
  root = dirty_test_raw_frame_json (reply);
  g_assert_cmpint (dirty_json_get_int (root, "max_body", 0), ==, MAX_BODY);
  g_assert_cmpint (dirty_json_get_int (root, "max_in_flight", 0), ==, MAX_IN_FLIGHT);
}

/* One byte a second, on SLOW_CONNECTIONS connections at once: each is
 * cut at frame_timeout (which runs from a frame's first byte, however
 * often more bytes come) with ERROR protocol. Readiness is checked every
 * SLOW_POLL_MS, so when each was cut is known to that precision. */
#define SLOW_CONNECTIONS 100
#define SLOW_POLL_MS     50
/* the probe's calls spread over 1.5 s, past the cut at 1 s, so they
 * also meet the bytes' arrival and the timeouts firing (unpaced, its
 * 300 calls take ~0.1 s); measured under a load average of 3: p99
 * 1.2-2.8 ms (unloaded 1.1-3.0 ms), the slowest call 18-19 ms */
#define SLOW_PROBE_PAUSE_US (5 * 1000)

static void
test_slowloris (void)
{
  gint64 unloaded = measure_unloaded ("slowloris");
  GSocket *sockets[SLOW_CONNECTIONS];
  gint64 closed_after[SLOW_CONNECTIONS] = { 0 };
  guint bytes_sent[SLOW_CONNECTIONS] = { 0 };
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  guint n_closed = 0, most_bytes = 0;
  gint64 start, next_byte;
  Probe probe;
  GThread *thread;
  gint64 longest = 0;

  write_header (header, 1, 100);
  for (guint i = 0; i < SLOW_CONNECTIONS; i++)
    sockets[i] = raw_connect ();
  thread = probe_start_paced (&probe, SLOW_PROBE_PAUSE_US);
  start = next_byte = g_get_monotonic_time ();
  while (n_closed < SLOW_CONNECTIONS)
    {
      gboolean send_now = g_get_monotonic_time () >= next_byte;

      /* a header takes 32 s at this pace: far past the 1 s limit */
      g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * FRAME_TIMEOUT * 1000);
      for (guint i = 0; i < SLOW_CONNECTIONS; i++)
        {
          if (closed_after[i] != 0)
            continue;
          if (readable (sockets[i]))
            {
              closed_after[i] = g_get_monotonic_time () - start;
              expect_error_and_close (sockets[i], "protocol", "incomplete");
              n_closed++;
              continue;
            }
          if (send_now && dirty_test_raw_send (sockets[i], &header[bytes_sent[i]], 1))
            bytes_sent[i]++;
        }
      if (send_now)
        next_byte += G_USEC_PER_SEC;
      g_usleep (SLOW_POLL_MS * 1000);
    }
  probe_finish (&probe, thread, "slowloris", unloaded, ASSERT_FAIR);
  for (guint i = 0; i < SLOW_CONNECTIONS; i++)
    {
      longest = MAX (longest, closed_after[i]);
      most_bytes = MAX (most_bytes, bytes_sent[i]);
      g_object_unref (sockets[i]);
    }
  g_test_message ("  %u slowloris connections (1 byte/s, frame_timeout %u ms): all closed, "
                  "the last after %" G_GINT64_FORMAT " ms, having sent at most %u bytes",
                  SLOW_CONNECTIONS, FRAME_TIMEOUT, longest / 1000, most_bytes);
  printf ("# FIGURE slowloris: %u connections at 1 byte/s closed, last after %" G_GINT64_FORMAT
          " ms\n", SLOW_CONNECTIONS, longest / 1000);
  g_assert_cmpint (longest, >=, FRAME_TIMEOUT * 1000 - SLOW_POLL_MS * 1000);
  g_assert_cmpint (longest, <, 3 * FRAME_TIMEOUT * 1000);
  check_rss ("after slowloris");
}

/* A million tiny requests pipelined on one connection: a thread writes
 * them as fast as the socket takes them, never waiting for a reply,
 * while this thread reads the replies slowly (a pause after each read,
 * so they pile up in the socket and the daemon's queue and go out in
 * batches). max_in_flight answers busy to those over it, every request
 * gets exactly one answer, the replies never pile past max_queued, and
 * the daemon is fine. Under AddressSanitizer (with the slow unwinding
 * on every malloc the CI asks for) a frame costs ~30 times more
 * (measured: 10,000 took 3.3 s, a million 9 s in a normal build), so the
 * count is smaller there to fit the test's time, and the p99 is printed only (as
 * for the queue flood below: the machine's, not the arbiter's). */
#if defined(__SANITIZE_ADDRESS__)
#define TINY_REQUESTS   20000
#define FLOOD_CHECK     PRINT_ONLY
#else
#define TINY_REQUESTS   1000000
#define FLOOD_CHECK     ASSERT_FAIR
#endif
#define TINY_JSON       "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}"
#define TINY_BATCH      4096    /* frames per write */
#define TINY_READ_PAUSE_US 2000

typedef struct {
  GSocket *socket;
  guint    n_requests;
  guint    n_sent;      /* atomic */
} TinySender;

static gpointer
tiny_sender_thread (gpointer user_data)
{
  TinySender *sender = user_data;
  const gsize json_len = strlen (TINY_JSON);
  const gsize frame_len = DIRTY_FRAME_HEADER_SIZE + json_len;
  g_autofree guint8 *batch = g_malloc (TINY_BATCH * frame_len);

  for (guint64 id = 1; id <= sender->n_requests; )
    {
      guint n = MIN (TINY_BATCH, sender->n_requests - id + 1);

      for (guint i = 0; i < n; i++)
        {
          write_header (batch + i * frame_len, id + i, json_len);
          memcpy (batch + i * frame_len + DIRTY_FRAME_HEADER_SIZE, TINY_JSON, json_len);
        }
      if (!dirty_test_raw_send (sender->socket, batch, n * frame_len))
        break;
      id += n;
      g_atomic_int_add (&sender->n_sent, n);
    }
  return NULL;
}

/* Reads frames from a socket through a large buffer: a million replies
 * one recv() each would make the reader, not the daemon, the bottleneck */
typedef struct {
  GSocket *socket;
  guint8   data[256 * 1024];
  gsize    pos, len;
} TinyReader;

static gboolean
tiny_reader_fill (TinyReader *reader, gsize need)
{
  memmove (reader->data, reader->data + reader->pos, reader->len - reader->pos);
  reader->len -= reader->pos;
  reader->pos = 0;
  while (reader->len < need)
    {
      gssize n = g_socket_receive (reader->socket, (char *) reader->data + reader->len,
                                   sizeof reader->data - reader->len, NULL, NULL);

      if (n <= 0)
        return FALSE;
      reader->len += n;
      /* reading slowly: the replies wait in the socket and in the
       * daemon's queue (well under max_queued at this pace) */
      g_usleep (TINY_READ_PAUSE_US);
    }
  return TRUE;
}

/* The next frame's header and body (pointing into the buffer, valid until
 * the next call); FALSE at EOF. */
static gboolean
tiny_reader_next (TinyReader *reader, DirtyFrameHeader *header, const guint8 **body,
                  gsize *body_len)
{
  DirtyLimits any;
  g_autoptr(GError) error = NULL;

  if (reader->len - reader->pos < DIRTY_FRAME_HEADER_SIZE &&
      !tiny_reader_fill (reader, DIRTY_FRAME_HEADER_SIZE))
    return FALSE;
  dirty_limits_init (&any);
  g_assert_true (dirty_frame_header_parse (reader->data + reader->pos, &any, header, &error));
  g_assert_no_error (error);
  *body_len = dirty_frame_header_body_length (header);
  g_assert_cmpuint (*body_len, <, sizeof reader->data - DIRTY_FRAME_HEADER_SIZE);
  if (reader->len - reader->pos < DIRTY_FRAME_HEADER_SIZE + *body_len &&
      !tiny_reader_fill (reader, DIRTY_FRAME_HEADER_SIZE + *body_len))
    return FALSE;
  *body = reader->data + reader->pos + DIRTY_FRAME_HEADER_SIZE;
  reader->pos += DIRTY_FRAME_HEADER_SIZE + *body_len;
  return TRUE;
}

/* An ERROR body is busy: decoded, unless it is the same bytes as the last
 * one decoded as busy (they repeat: decoding a million would cost the
 * reader more than the daemon's work) */
static void
assert_busy_body (const guint8 *body, gsize len, GByteArray *last_busy)
{
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  if (len == last_busy->len && memcmp (body, last_busy->data, len) == 0)
    return;
  text = g_strndup ((const char *) body, len);
  root = json_from_string (text, NULL);
  g_assert_nonnull (root);
  g_assert_cmpstr (dirty_json_get_string (root, "code"), ==, "busy");
  g_byte_array_set_size (last_busy, 0);
  g_byte_array_append (last_busy, body, len);
}

static void
test_many_in_flight (void)
{
  /* under valgrind a tenth of the ASan count: the arbiter, 50 times
   * slower, would go more than 10 s without reading its workers'
   * heartbeats and kill them */
  guint n_requests = dirty_test_under_valgrind () ? 2000 : TINY_REQUESTS;
  g_autofree char *attack = g_strdup_printf ("%u requests in flight", n_requests);
  gint64 unloaded = measure_unloaded (attack);
  TinySender sender = { .socket = raw_connect (), .n_requests = n_requests };
  g_autofree TinyReader *reader = g_new0 (TinyReader, 1);
  g_autofree guint8 *answered = g_new0 (guint8, n_requests + 1);
  g_autoptr(GByteArray) last_busy = g_byte_array_new ();
  guint n_results = 0, n_busy = 0, n_answered = 0;
  gint64 waiting, most_waiting = 0;
  gint64 start = g_get_monotonic_time ();
  GThread *writer = g_thread_new ("tiny-sender", tiny_sender_thread, &sender);
  Probe probe;
  GThread *thread = probe_start (&probe);
  DirtyFrameHeader header;
  const guint8 *body;
  gsize body_len;

  reader->socket = sender.socket;
  while (n_answered < n_requests && tiny_reader_next (reader, &header, &body, &body_len))
    {
      g_assert_cmpuint (header.id, >=, 1);
      g_assert_cmpuint (header.id, <=, n_requests);
      g_assert_cmpuint (answered[header.id], ==, 0);
      answered[header.id] = 1;
      n_answered++;
      if (header.type == DIRTY_FRAME_RESPONSE)
        n_results++;
      else
        {
          g_assert_cmpint (header.type, ==, DIRTY_FRAME_ERROR);
          assert_busy_body (body, body_len, last_busy);
          n_busy++;
        }
      /* sent and not answered yet: what the daemon had in hand or in
       * the socket buffers (n_sent counts whole batches once written:
       * a lower bound) */
      waiting = (gint64) g_atomic_int_get (&sender.n_sent) - n_answered;
      most_waiting = MAX (most_waiting, waiting);
    }
  g_thread_join (writer);
  probe_finish (&probe, thread, attack, unloaded, FLOOD_CHECK);
  g_test_message ("  %u requests pipelined on one connection (max_in_flight %u): %u sent, "
                  "%u results, %u busy, up to %" G_GINT64_FORMAT " sent and not yet answered, in %"
                  G_GINT64_FORMAT " ms", n_requests, MAX_IN_FLIGHT, sender.n_sent,
                  n_results, n_busy, most_waiting, (g_get_monotonic_time () - start) / 1000);
  printf ("# FIGURE in-flight flood: %u requests, %u results, %u busy, up to %" G_GINT64_FORMAT
          " unanswered at once, %" G_GINT64_FORMAT " ms\n", n_requests, n_results, n_busy,
          most_waiting, (g_get_monotonic_time () - start) / 1000);
  g_assert_cmpuint (sender.n_sent, ==, n_requests);
  g_assert_cmpuint (n_results + n_busy, ==, n_requests);
  g_assert_cmpuint (n_busy, >, 0);
  g_assert_cmpuint (n_results, >=, MAX_IN_FLIGHT);
  g_object_unref (sender.socket);
  check_rss ("after the in-flight flood");
}

/* A client that sends calls with large results and never reads: its
 * unread replies pass max_queued and the daemon drops it. */
#define BIG_ARG     (256 * 1024)
#define BIG_CALLS   64

static void
test_never_reads (void)
{
  gint64 unloaded = measure_unloaded ("a client that never reads");
  g_autoptr(GSocket) socket = raw_connect ();
  g_autofree char *big = g_strnfill (BIG_ARG, 'x');
  g_autofree char *json = g_strdup_printf ("{\"app\":\"" ECHO "\",\"action\":\"echo\","
                                           "\"args\":[\"%s\"]}", big);
  guint n_sent = 0, n_read = 0;
  gboolean dropped = FALSE;
  gint64 rss_peak = 0;
  Probe probe;
  GThread *thread = probe_start (&probe);
  gint64 deadline;

  for (guint i = 1; i <= BIG_CALLS; i++)
    {
      g_autoptr(DirtyFrame) req = dirty_test_raw_request (i, json, 0);

      if (!dirty_test_raw_send_frame (socket, req))
        {
          dropped = TRUE;
          break;
        }
      n_sent++;
      if (i % 8 == 0)
        rss_peak = MAX (rss_peak, daemon_rss_kb ());
    }
  /* the replies pile up while this client sleeps; the daemon closes it
   * once they pass max_queued */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (!dropped && g_get_monotonic_time () < deadline)
    {
      rss_peak = MAX (rss_peak, daemon_rss_kb ());
      /* not reading: only asking the kernel whether the peer hung up */
      if (g_socket_condition_check (socket, G_IO_HUP | G_IO_ERR) != 0)
        dropped = TRUE;
      else
        g_usleep (50 * 1000);
    }
  probe_finish (&probe, thread, "a client that never reads", unloaded, PRINT_ONLY);
  /* what the kernel had buffered is still there, then EOF */
  for (;;)
    {
      g_autoptr(DirtyFrame) reply = dirty_test_raw_read_frame (socket);

      if (reply == NULL)
        break;
      n_read++;
    }
  g_test_message ("  never-reading client: %u calls of %u KiB results sent, dropped %s; "
                  "%u replies were left in the socket buffer (max_queued %u KiB); "
                  "arbiter RSS peak %" G_GINT64_FORMAT " KiB",
                  n_sent, BIG_ARG / 1024, dropped ? "yes" : "no", n_read, MAX_QUEUED / 1024,
                  rss_peak);
  printf ("# FIGURE never-reads: dropped=%s, %u of %u replies readable, RSS peak %"
          G_GINT64_FORMAT " KiB (start %" G_GINT64_FORMAT " KiB)\n",
          dropped ? "yes" : "no", n_read, n_sent, rss_peak, rss_start_kb);
  g_assert_true (dropped);
  g_assert_cmpuint (n_read, <, n_sent);
  g_assert_cmpint (rss_peak, <, rss_start_kb + RSS_GROWTH_KB);
  check_rss ("after the never-reading client");
}

/* Entries in /proc/PID/fd: the daemon's open descriptors */
static guint
daemon_open_fds (void)
{
  return dirty_test_count_fds (dirty_test_daemon_get_pid (daemon_));
}

/* The soft and hard "Max open files" of the daemon, from /proc/PID/limits */
static void
daemon_nofile (guint64 *soft, guint64 *hard)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/limits",
                                           (int) dirty_test_daemon_get_pid (daemon_));
  g_autofree char *contents = NULL;
  const char *line;
  char *end;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  line = strstr (contents, "Max open files");
  g_assert_nonnull (line);
  *soft = g_ascii_strtoull (line + strlen ("Max open files"), &end, 10);
  *hard = g_ascii_strtoull (end, NULL, 10);
}

/* A connection for the flood. Connecting faster than the arbiter accepts
 * fills the listening socket's backlog (SOMAXCONN), where the kernel
 * answers a non-blocking connect (GSocket's) with EAGAIN: such a
 * connect is retried a moment later, as a client would. */
static GSocket *
flood_connect (guint *n_retries)
{
  g_autoptr(GSocketAddress) address =
    g_unix_socket_address_new (dirty_test_daemon_get_socket_path (daemon_));

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_DEFAULT, &error);

      g_assert_no_error (error);
      if (g_socket_connect (socket, address, NULL, &error))
        {
          g_socket_set_timeout (socket, 30);
          return g_steal_pointer (&socket);
        }
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      (*n_retries)++;
      g_assert_cmpuint (*n_retries, <, 100000);
      g_usleep (1000);
    }
}

/* FLOOD_CONNECTIONS from one uid, four times max_connections_per_uid:
 * the ones over the cap get ERROR busy and a close; the others are
 * served, and stay open while the daemon's memory is measured. The
 * daemon was started with a soft RLIMIT_NOFILE of 1024 (see main()): it
 * holds its 2,500 only because it raises that to the hard limit itself. */
static void
test_many_connections (void)
{
  gint64 unloaded = measure_unloaded ("connection flood");
  struct rlimit rl;
  guint64 soft, hard;
  guint n, n_admitted = 0, n_refused = 0, fds, n_retries = 0;
  g_autoptr(GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *attack = NULL;
  Probe probe;
  GThread *thread;
  gint64 start, rss;

  daemon_nofile (&soft, &hard);
  g_test_message ("  arbiter's open file limit: soft %" G_GUINT64_FORMAT ", hard %"
                  G_GUINT64_FORMAT, soft, hard);
  g_assert_cmpuint (soft, ==, hard);
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  /* room for the test's other descriptors */
  n = MIN (FLOOD_CONNECTIONS, rl.rlim_cur > 100 ? rl.rlim_cur - 100 : 0);
  if (n <= MAX_PER_UID)
    {
      g_test_skip ("RLIMIT_NOFILE too low for more connections than max_connections_per_uid");
      return;
    }
  attack = g_strdup_printf ("%u connections", n);
  /* the well-behaved client is one of the uid's connections */
  thread = probe_start (&probe);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (sockets, flood_connect (&n_retries));
  /* each asks once: a result (admitted) or ERROR id 0 busy (refused) */
  for (guint i = 0; i < n; i++)
    {
      GSocket *socket = sockets->pdata[i];
      g_autoptr(DirtyFrame) req = add_frame (1);
      g_autoptr(DirtyFrame) reply = NULL;

      dirty_test_raw_send_frame (socket, req);
      reply = dirty_test_raw_read_frame (socket);
      g_assert_nonnull (reply);
      if (reply->header.type == DIRTY_FRAME_RESPONSE)
        n_admitted++;
      else
        {
          g_autofree char *message = NULL;

          g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_ERROR);
          g_assert_cmpuint (reply->header.id, ==, 0);
          g_assert_cmpstr (error_code (reply, &message), ==, "busy");
          g_assert_nonnull (strstr (message, "max_connections_per_uid"));
          if (n_refused == 0)
            g_test_message ("  error: busy: %s", message);
          n_refused++;
        }
    }
  probe_finish (&probe, thread, attack, unloaded, PRINT_ONLY);
  /* the admitted ones are still open */
  rss = daemon_rss_kb ();
  fds = daemon_open_fds ();
  g_test_message ("  %u connections from one uid (max_connections_per_uid %u): %u admitted, "
                  "%u refused with busy, in %" G_GINT64_FORMAT " ms (%u connects retried on a "
                  "full backlog); with the admitted open, "
                  "the arbiter holds %u descriptors and its RSS is %" G_GINT64_FORMAT
                  " KiB (%" G_GINT64_FORMAT " KiB more than at start)", n, MAX_PER_UID,
                  n_admitted, n_refused, (g_get_monotonic_time () - start) / 1000, n_retries,
                  fds, rss, rss - rss_start_kb);
  printf ("# FIGURE connection flood: %u connections, %u admitted, %u busy; arbiter RSS %"
          G_GINT64_FORMAT " KiB with them open (start %" G_GINT64_FORMAT " KiB), %u fds\n",
          n, n_admitted, n_refused, rss, rss_start_kb, fds);
  /* the probe held one (maybe a closing one from before still counts) */
  g_assert_cmpuint (n_admitted, <=, MAX_PER_UID - 1);
  g_assert_cmpuint (n_admitted, >=, MAX_PER_UID - 10);
  g_assert_cmpuint (n_admitted + n_refused, ==, n);
  /* the refused are gone: the daemon holds about the admitted */
  g_assert_cmpuint (fds, <, MAX_PER_UID + 100);
  g_assert_cmpint (rss, <, rss_start_kb + RSS_GROWTH_KB + (gint64) n_admitted * CONNECTION_KB);
}

/* Clients that keep the app's queue full: QUEUE_FLOODERS connections,
 * each with max_in_flight quick calls always outstanding (a new one for
 * every reply), so about QUEUE_FLOODERS * MAX_IN_FLIGHT calls wait in
 * the queue the whole time. Per-client round robin puts the
 * well-behaved client's call one turn (one call of each flooder) from a
 * worker, not behind the whole backlog; so, whatever the machine's
 * speed, its p99 stays far below the flooders' own median latency (they
 * wait behind their backlogs). With one FIFO per app both would be
 * alike: everyone waits behind everything. */
#define QUEUE_FLOODERS 8
/* Under AddressSanitizer (with the slow unwinding on every malloc the CI
 * asks for) a call costs milliseconds of CPU, and the arbiter, the
 * workers and the flooding thread all want the same 2 cores: the
 * well-behaved client's p99 there (measured 0.14 to 1.3 s, unloaded 7 to
 * 44 ms, under a load average of 11) is the machine's, not the queue's. The comparison with the
 * flooders' own latency below still holds there; the 2x bound is
 * asserted in the normal build. */
#if defined(__SANITIZE_ADDRESS__)
#define QUEUE_FLOOD_CHECK PRINT_ONLY
#else
#define QUEUE_FLOOD_CHECK ASSERT_FAIR
#endif

typedef struct {
  GSocket *sockets[QUEUE_FLOODERS];
  gint     stop;
  gint     measuring;
  gint     served;     /* atomic */
  GArray  *latency;    /* of gint64 µs, of flood calls ended while measuring */
} Flood;

static void
flood_send (Flood *flood, guint c, GHashTable *sent, guint64 id)
{
  g_autoptr(DirtyFrame) req = add_frame (id);
  gint64 *start = g_new (gint64, 1);

  *start = g_get_monotonic_time ();
  g_hash_table_insert (sent, g_memdup2 (&id, sizeof id), start);
  g_assert_true (dirty_test_raw_send_frame (flood->sockets[c], req));
}

static gpointer
flood_thread (gpointer user_data)
{
  Flood *flood = user_data;
  GHashTable *sent[QUEUE_FLOODERS];
  guint64 next_id[QUEUE_FLOODERS];

  for (guint c = 0; c < QUEUE_FLOODERS; c++)
    {
      sent[c] = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
      for (next_id[c] = 1; next_id[c] <= MAX_IN_FLIGHT; next_id[c]++)
        flood_send (flood, c, sent[c], next_id[c]);
    }
  /* one reply in, one call out, on each connection in turn */
  while (!g_atomic_int_get (&flood->stop))
    for (guint c = 0; c < QUEUE_FLOODERS; c++)
      {
        g_autoptr(DirtyFrame) reply = dirty_test_raw_read_frame (flood->sockets[c]);
        gint64 *start;

        g_assert_nonnull (reply);
        g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_RESPONSE);
        start = g_hash_table_lookup (sent[c], &reply->header.id);
        g_assert_nonnull (start);
        if (g_atomic_int_get (&flood->measuring))
          {
            gint64 latency = g_get_monotonic_time () - *start;

            g_array_append_val (flood->latency, latency);
          }
        g_hash_table_remove (sent[c], &reply->header.id);
        g_atomic_int_inc (&flood->served);
        flood_send (flood, c, sent[c], next_id[c]++);
      }
  for (guint c = 0; c < QUEUE_FLOODERS; c++)
    g_hash_table_unref (sent[c]);
  return NULL;
}

static void
test_queue_flood (void)
{
  gint64 unloaded = measure_unloaded ("a queue flood");
  Flood flood = { .latency = g_array_new (FALSE, FALSE, sizeof (gint64)) };
  GThread *flooder;
  Probe probe;
  GThread *thread;
  gint64 start, flood_median, turn;
  gint served_before;

  for (guint c = 0; c < QUEUE_FLOODERS; c++)
    flood.sockets[c] = raw_connect ();
  flooder = g_thread_new ("flood", flood_thread, &flood);
  /* let the queue fill before measuring */
  g_usleep (200 * 1000);
  start = g_get_monotonic_time ();
  served_before = g_atomic_int_get (&flood.served);
  g_atomic_int_set (&flood.measuring, 1);
  thread = probe_start (&probe);
  g_thread_join (thread);
  /* one turn: a call of each flooder and the probe's own, at the rate
   * the arbiter served calls meanwhile (~70 us each in a normal build,
   * ~4 ms under AddressSanitizer with its slow malloc unwinding) */
  turn = (QUEUE_FLOODERS + 1) * (g_get_monotonic_time () - start) /
         MAX (g_atomic_int_get (&flood.served) - served_before, 1);
  probe_finish_turn (&probe, NULL, "a queue flood", unloaded, QUEUE_FLOOD_CHECK, turn);
  g_atomic_int_set (&flood.stop, 1);
  g_thread_join (flooder);
  for (guint c = 0; c < QUEUE_FLOODERS; c++)
    g_object_unref (flood.sockets[c]);
  g_assert_cmpuint (flood.latency->len, >, 0);
  g_array_sort (flood.latency, compare_gint64);
  flood_median = g_array_index (flood.latency, gint64, flood.latency->len / 2);
  g_test_message ("  %u flooding connections, %u calls outstanding each: %d"
                  " of their calls served in %" G_GINT64_FORMAT " ms, their median latency %"
                  G_GINT64_FORMAT " us (the well-behaved client's p99: %" G_GINT64_FORMAT " us)",
                  QUEUE_FLOODERS, MAX_IN_FLIGHT, flood.served,
                  (g_get_monotonic_time () - start) / 1000, flood_median, probe.p99);
  printf ("# FIGURE queue flood: %u connections x %u outstanding, %d"
          " flood calls served, flooders' median %" G_GINT64_FORMAT " us\n",
          QUEUE_FLOODERS, MAX_IN_FLIGHT, flood.served, flood_median);
  /* each flooder waits behind its own 64 calls, the well-behaved client
   * for one turn: half is far from the FIFO's ratio (about 1: everyone
   * waits for everything) and from round robin's (about 1/64, plus what
   * a loaded machine adds to a p99) */
  g_assert_cmpint (probe.p99, <, flood_median / 2);
  g_array_unref (flood.latency);
}

/* Over the configured max_body (not just the protocol's): refused from
 * the header. */
static void
test_over_max_body (void)
{
  g_autoptr(GSocket) socket = raw_connect ();
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  write_header (header, 1, MAX_BODY + 1);
  g_assert_true (dirty_test_raw_send (socket, header, sizeof header));
  expect_error_and_close (socket, "protocol", NULL);
}

/* A header claiming fewer bytes than the JSON that follows: the cut JSON
 * does not parse (and the rest would not be a header). */
static void
test_length_too_short (void)
{
  g_autoptr(GSocket) socket = raw_connect ();
  const char json[] = "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}";
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  write_header (header, 1, 10);
  g_assert_true (dirty_test_raw_send (socket, header, sizeof header));
  dirty_test_raw_send (socket, json, sizeof json - 1);
  expect_error_and_close (socket, "protocol", NULL);
}

/* A header claiming more bytes than ever come, on a connection kept
 * open: cut at frame_timeout. */
static void
test_length_too_long (void)
{
  g_autoptr(GSocket) socket = raw_connect ();
  const char json[] = "{\"app\":\"" ECHO "\",\"action\":\"add\",\"args\":[40,2]}";
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;

  write_header (header, 1, 4096);
  g_assert_true (dirty_test_raw_send (socket, header, sizeof header));
  g_assert_true (dirty_test_raw_send (socket, json, sizeof json - 1));
  expect_error_and_close (socket, "protocol", NULL);
  elapsed = g_get_monotonic_time () - start;
  g_test_message ("  a frame 4000 bytes short was cut after %" G_GINT64_FORMAT " ms",
                  elapsed / 1000);
  g_assert_cmpint (elapsed, >=, FRAME_TIMEOUT * 1000 - 50 * 1000);
  g_assert_cmpint (elapsed, <, 3 * FRAME_TIMEOUT * 1000);
}

/* Sets the soft RLIMIT_NOFILE to @soft, at most the hard limit */
static void
set_nofile (rlim_t soft)
{
  struct rlimit rl;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  rl.rlim_cur = MIN (soft, rl.rlim_max);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &rl), ==, 0);
}

int
main (int argc, char **argv)
{
  g_autofree char *config = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  dirty_limits_init (&limits);
  /* the daemon starts with the soft limit services usually get (1024),
   * and must raise it itself to hold the connection flood */
  set_nofile (1024);

  config = g_strdup_printf ("[dirty-arbiter]\n"
                            "dirty_apps=" ECHO "\n"
                            "dirty_workers=2\n"
                            "dirty_threads=2\n"
                            "max_body=%u\n"
                            "max_in_flight=%u\n"
                            "frame_timeout=%u\n"
                            "max_queued=%u\n"
                            "max_connections_per_uid=%u\n",
                            MAX_BODY, MAX_IN_FLIGHT, FRAME_TIMEOUT, MAX_QUEUED, MAX_PER_UID);
  daemon_ = dirty_test_daemon_start (config, NULL);
  /* the test's own connections: as many as the hard limit allows */
  set_nofile (RLIM_INFINITY);
  rss_start_kb = daemon_rss_kb ();
  g_test_message ("arbiter RSS at start: %" G_GINT64_FORMAT " KiB", rss_start_kb);

  /* in this order: the unloaded figure first */
  g_test_add_func ("/hostile-load/unloaded", test_unloaded);
  g_test_add_func ("/hostile-load/hello-limits", test_hello_limits);
  g_test_add_func ("/hostile-load/slowloris", test_slowloris);
  g_test_add_func ("/hostile-load/many-in-flight", test_many_in_flight);
  g_test_add_func ("/hostile-load/queue-flood", test_queue_flood);
  g_test_add_func ("/hostile-load/never-reads", test_never_reads);
  g_test_add_func ("/hostile-load/many-connections", test_many_connections);
  g_test_add_func ("/hostile-load/over-max-body", test_over_max_body);
  g_test_add_func ("/hostile-load/length-too-short", test_length_too_short);
  g_test_add_func ("/hostile-load/length-too-long", test_length_too_long);

  status = g_test_run ();
  g_test_message ("arbiter RSS at the end: %" G_GINT64_FORMAT " KiB", daemon_rss_kb ());
  dirty_test_daemon_stop (daemon_);
  return status;
}
