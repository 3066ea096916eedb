/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Memory and scale figures of dirty-arbiter, over raw frames (no client
 * library, so the figures are the arbiter's): idle RSS of the arbiter and
 * a worker, the arbiter's RSS with 10,000 idle client connections, those
 * connections each calling once a second (latency), and the queue-growth
 * curve: per-call cost at queue depths from 1,000 to 100,000 waiting
 * requests. Prints figures; it asserts nothing about speed. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dirty-frame.h"
#include "dirty-test-daemon.h"
#include "bench-table.h"
#include "relay-floor.h"

#define ECHO    "echo:DirtyEchoApp"
#define TESTAPP "testapp:DirtyTestApp"
#define MIB     (1024.0 * 1024.0)

static guint n_conns = 10000;
static guint call_seconds = 5;
static guint max_depth = 100000;

/* ---- /proc -------------------------------------------------------------- */

/* A "Key:   N kB" line of /proc/PID/@file, in bytes; -1 if missing. */
static double
proc_kb (GPid pid, const char *file, const char *key)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/%s", pid, file);
  g_autofree char *text = NULL;
  g_autofree char *needle = g_strdup_printf ("\n%s:", key);
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  p = strstr (text, needle);
  if (p == NULL)
    return -1;
  return g_ascii_strtod (p + strlen (needle), NULL) * 1024.0;
}

static double
rss_bytes (GPid pid)
{
  return proc_kb (pid, "status", "VmRSS");
}

/* What the RSS is made of (smaps_rollup): anonymous memory is ours; file
 * pages are mostly shared libraries, the floor of any process that links
 * GLib, GIO and json-glib. */
static void
print_rss_breakdown (const char *who, GPid pid)
{
  g_print ("  %-30s RSS %6.2f MiB = anon %5.2f MiB + file %5.2f MiB + shmem %4.2f MiB\n", who,
           proc_kb (pid, "smaps_rollup", "Rss") / MIB,
           proc_kb (pid, "smaps_rollup", "Anonymous") / MIB,
           (proc_kb (pid, "smaps_rollup", "Rss") - proc_kb (pid, "smaps_rollup", "Anonymous")
            - proc_kb (pid, "smaps_rollup", "Shmem")) / MIB,
           MAX (proc_kb (pid, "smaps_rollup", "Shmem"), 0) / MIB);
}

/* The CPU time the process's main thread has used, in ns (schedstat). */
static gint64
cpu_ns (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/schedstat", pid);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  return g_ascii_strtoll (text, NULL, 10);
}

/* ---- raw frames ----------------------------------------------------------- */

static int
connect_unix (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  /* blocking: waits while the listen backlog is full */
  while (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      if (errno != EINTR && errno != EAGAIN)
        g_error ("connect: %s", g_strerror (errno));
      g_usleep (1000);
    }
  return fd;
}

static void
append_frame (GByteArray *out, DirtyFrameType type, guint64 id, guint32 aux, const char *json)
{
  DirtyFrameHeader header = { .type = type, .id = id, .aux = aux,
                              .json_length = json ? strlen (json) : 0 };
  guint8 bytes[DIRTY_FRAME_HEADER_SIZE];

  dirty_frame_header_write (&header, bytes);
  g_byte_array_append (out, bytes, sizeof bytes);
  if (json)
    g_byte_array_append (out, (const guint8 *) json, header.json_length);
}

static void
append_echo (GByteArray *out, guint64 id)
{
  append_frame (out, DIRTY_FRAME_REQUEST, id, 0,
                "{\"app\":\"" ECHO "\",\"action\":\"echo\",\"args\":[42]}");
}

static void
write_all (int fd, const guint8 *p, gsize len)
{
  while (len > 0)
    {
      gssize n = write (fd, p, len);

      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        g_error ("write: %s", g_strerror (errno));
      p += n;
      len -= n;
    }
}

/* Incremental frame reader: only the header matters, bodies are skipped. */
typedef struct {
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  gsize  have;
  gsize  skip;
} Reader;

typedef void (*FrameFunc) (const DirtyFrameHeader *header, gpointer data);

static void
reader_feed (Reader *r, const guint8 *p, gsize n, FrameFunc func, gpointer data)
{
  static DirtyLimits limits;

  if (limits.max_body == 0)
    dirty_limits_init (&limits);
  while (n > 0)
    {
      DirtyFrameHeader header;
      gsize take;

      if (r->skip > 0)
        {
          take = MIN (n, r->skip);
          r->skip -= take;
          p += take;
          n -= take;
          continue;
        }
      take = MIN (n, DIRTY_FRAME_HEADER_SIZE - r->have);
      memcpy (r->header + r->have, p, take);
      r->have += take;
      p += take;
      n -= take;
      if (r->have < DIRTY_FRAME_HEADER_SIZE)
        return;
      r->have = 0;
      if (!dirty_frame_header_parse (r->header, &limits, &header, NULL))
        g_error ("bad frame header from the arbiter");
      r->skip = dirty_frame_header_body_length (&header);
      func (&header, data);
    }
}

/* ---- idle RSS ------------------------------------------------------------- */

/* The idle floor's layers (idle-floor.c, meson.build): each links one
 * library more than the one before, up to ARBITER_LAYER, which links the
 * arbiter's. Then that layer with GLib, GObject and GIO linked
 * statically and no json-glib, built only where the static archives are
 * installed; and GLib and GObject alone, started as an arbiter starts
 * (NO_GIO_LAYER): the floor of an arbiter without GIO and json-glib. */
static const char *const floor_layers[] = {
  "libc only", "+ GLib, a main loop", "+ GObject", "+ GIO and json-glib",
  "GIO static, no json-glib", "no GIO, started as an arbiter",
};
#define ARBITER_LAYER 3
#define NO_GIO_LAYER  5

/* RSS of a do-nothing process of @layer (idle-floor.c), built as @path */
static double
idle_floor_rss (guint       layer,
                const char *path)
{
  g_autofree char *who = g_strdup_printf ("floor: %s", floor_layers[layer]);
  const char *argv[] = { path, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) process = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                                      &error);
  GPid pid;
  double rss;

  if (process == NULL)
    g_error ("%s: %s", path, error->message);
  g_usleep (G_USEC_PER_SEC / 2);
  pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (process), NULL, 10);
  print_rss_breakdown (who, pid);
  rss = rss_bytes (pid);
  g_subprocess_force_exit (process);
  g_subprocess_wait (process, NULL, NULL);
  return rss;
}

/* The floor of every layer built, as info rows; returns ARBITER_LAYER's,
 * the floor of a process that links what the arbiter links, and
 * NO_GIO_LAYER's in @no_gio (0 if not built). */
static double
idle_floor_rss_layers (double *no_gio)
{
  double floor = 0;

  for (guint layer = 0; layer < G_N_ELEMENTS (floor_layers); layer++)
    {
      g_autofree char *figure = g_strdup_printf ("5. idle floor: %s", floor_layers[layer]);
      g_autofree char *path = g_strdup_printf ("%s%u", DIRTY_IDLE_FLOOR, layer);
      double rss;

      if (layer > ARBITER_LAYER && !g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
        continue;
      rss = idle_floor_rss (layer, path);
      bench_table_add (figure, rss / MIB, "MiB", 0, BENCH_INFO, 0);
      if (layer == ARBITER_LAYER)
        floor = rss;
      if (layer == NO_GIO_LAYER)
        *no_gio = rss;
    }
  return floor;
}

/* Resident bytes of the pages of @pid's own executable (its code and
 * data, not its libraries'), from /proc/PID/smaps. */
static double
executable_rss (GPid pid)
{
  g_autofree char *exe_link = g_strdup_printf ("/proc/%d/exe", pid);
  g_autofree char *smaps_path = g_strdup_printf ("/proc/%d/smaps", pid);
  g_autofree char *exe = g_file_read_link (exe_link, NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean in_exe = FALSE;
  double kb = 0;

  if (exe == NULL || !g_file_get_contents (smaps_path, &text, NULL, NULL))
    return 0;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      /* a mapping's first line starts with its address range, lowercase
       * hex; its fields ("Rss:") start with a capital */
      if (g_ascii_isxdigit (lines[i][0]) && !g_ascii_isupper (lines[i][0]))
        in_exe = g_str_has_suffix (lines[i], exe);
      else if (in_exe && g_str_has_prefix (lines[i], "Rss:"))
        kb += g_ascii_strtod (lines[i] + strlen ("Rss:"), NULL);
    }
  return kb * 1024.0;
}

/* Target 5 against what cannot be taken away: an arbiter rewritten
 * without GIO and json-glib still links GLib and GObject and starts as
 * this one does (NO_GIO_LAYER), and still has its own code. Their sum is
 * the least such an arbiter could be idle. */
static void
bench_idle_rss_floors (GPid arbiter, double no_gio)
{
  double own = executable_rss (arbiter);

  bench_table_add ("5. arbiter's own executable, resident", own / MIB, "MiB", 0, BENCH_INFO, 0);
  bench_table_add ("5. arbiter PSS, idle (shared pages split)",
                   proc_kb (arbiter, "smaps_rollup", "Pss") / MIB, "MiB", 0, BENCH_INFO, 0);
  /* in KiB: against 4 MiB, one decimal of MiB hides which side it is on */
  if (no_gio > 0)
    bench_table_add ("5. no-GIO floor + arbiter's own executable", (no_gio + own) / 1024, "KiB", 0,
                     BENCH_INFO, 0);
}

static void
bench_idle_rss (DirtyTestDaemon *daemon)
{
  GPid arbiter = dirty_test_daemon_get_pid (daemon);
  g_autoptr(GArray) workers = dirty_test_list_children (arbiter);
  double worker_rss = 0, floor, no_gio = 0;

  g_print ("idle memory (smaps_rollup; file pages are shared libraries):\n");
  floor = idle_floor_rss_layers (&no_gio);
  print_rss_breakdown ("arbiter", arbiter);
  for (guint i = 0; i < workers->len; i++)
    {
      GPid pid = g_array_index (workers, GPid, i);

      print_rss_breakdown ("worker (echo+testapp)", pid);
      worker_rss = MAX (worker_rss, rss_bytes (pid));
    }
  bench_table_add ("5. arbiter RSS, idle", rss_bytes (arbiter) / MIB, "MiB", 0,
                   BENCH_ABSOLUTE_MAX, 4);
  bench_table_add ("5. worker RSS, idle (with its 2 apps)", worker_rss / MIB, "MiB", 0,
                   BENCH_ABSOLUTE_MAX, 4);
  bench_table_add ("5. arbiter RSS idle vs same-libraries floor", rss_bytes (arbiter) / MIB, "MiB",
                   floor / MIB, BENCH_INFO, 0);
  bench_idle_rss_floors (arbiter, no_gio);
}

/* ---- many connections ----------------------------------------------------- */

typedef struct {
  int     *fds;
  Reader  *readers;
  gint64  *sent_at;    /* per connection: the call in flight, 0 if none */
  GArray  *latencies;  /* us */
  guint    current;    /* connection whose bytes are being fed */
  guint    answered;
} Conns;

static void
conns_frame (const DirtyFrameHeader *header, gpointer data)
{
  Conns *c = data;
  gint64 dt;

  if (header->type != DIRTY_FRAME_RESPONSE)
    g_error ("call %" G_GUINT64_FORMAT " failed (frame type %u)", header->id, header->type);
  dt = g_get_monotonic_time () - c->sent_at[c->current];
  c->sent_at[c->current] = 0;
  g_array_append_val (c->latencies, dt);
  c->answered++;
}

static void
conns_read (Conns *c, int epfd, int timeout_ms)
{
  struct epoll_event events[256];
  int n = epoll_wait (epfd, events, G_N_ELEMENTS (events), timeout_ms);
  guint8 buf[16384];

  for (int i = 0; i < n; i++)
    {
      guint idx = events[i].data.u32;
      gssize got;

      while ((got = read (c->fds[idx], buf, sizeof buf)) > 0)
        {
          c->current = idx;
          reader_feed (&c->readers[idx], buf, got, conns_frame, c);
        }
      if (got == 0)
        g_error ("the arbiter closed connection %u", idx);
    }
}

static int
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

static double
percentile (GArray *samples, double p)
{
  g_array_sort (samples, cmp_gint64);
  return samples->len ? g_array_index (samples, gint64, (guint) ((samples->len - 1) * p)) : 0;
}

/* Each connection sends one echo per second, spread evenly over the
 * second, for call_seconds. */
static void
conns_call_every_second (Conns *c, int epfd, double floor_p50)
{
  GByteArray *frame = g_byte_array_new ();
  gint64 start = g_get_monotonic_time ();
  gint64 end = start + call_seconds * G_USEC_PER_SEC;
  guint64 next = 0;   /* calls scheduled so far */
  guint late = 0;

  for (;;)
    {
      gint64 now = g_get_monotonic_time ();

      /* call k goes to connection k % n at start + k / n seconds */
      while (next < (guint64) call_seconds * n_conns &&
             start + (gint64) (next * G_USEC_PER_SEC / n_conns) <= now)
        {
          guint idx = next % n_conns;

          if (c->sent_at[idx] != 0)
            late++;   /* the previous call is still out: skip this one */
          else
            {
              g_byte_array_set_size (frame, 0);
              append_echo (frame, next + 1);
              c->sent_at[idx] = g_get_monotonic_time ();
              write_all (c->fds[idx], frame->data, frame->len);
            }
          next++;
        }
      if (now > end + 5 * G_USEC_PER_SEC)
        break;
      if (next >= (guint64) call_seconds * n_conns &&
          c->answered + late >= next)
        break;
      conns_read (c, epfd, 1);
    }
  g_print ("%u connections x 1 call/s for %u s: %u answered, %u skipped (previous call "
           "still out), %.0f calls/s\n", n_conns, call_seconds, c->answered, late,
           c->answered / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC));
  bench_table_add ("6. 10k conns x 1 call/s, latency p50", percentile (c->latencies, 0.5), "us",
                   floor_p50, BENCH_INFO, 0);
  bench_table_add ("6. 10k conns x 1 call/s, latency p99", percentile (c->latencies, 0.99), "us",
                   floor_p50, BENCH_INFO, 0);
  bench_table_add ("6. 10k conns x 1 call/s, calls answered", c->answered, "calls", 0,
                   BENCH_ABSOLUTE_MIN, (double) call_seconds * n_conns);
  g_byte_array_unref (frame);
}

static void
bench_connections (DirtyTestDaemon *daemon, double floor_p50)
{
  GPid arbiter = dirty_test_daemon_get_pid (daemon);
  const char *path = dirty_test_daemon_get_socket_path (daemon);
  Conns c = { 0 };
  int epfd = epoll_create1 (EPOLL_CLOEXEC);
  double idle = rss_bytes (arbiter), held;
  gint64 t0 = g_get_monotonic_time ();

  c.fds = g_new (int, n_conns);
  c.readers = g_new0 (Reader, n_conns);
  c.sent_at = g_new0 (gint64, n_conns);
  c.latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint i = 0; i < n_conns; i++)
    {
      struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

      c.fds[i] = connect_unix (path);
      g_assert_cmpint (epoll_ctl (epfd, EPOLL_CTL_ADD, c.fds[i], &ev), ==, 0);
    }
  g_print ("opened %u connections in %.2f s\n", n_conns,
           (g_get_monotonic_time () - t0) / (double) G_USEC_PER_SEC);
  /* let the arbiter accept them all */
  g_usleep (G_USEC_PER_SEC);
  held = rss_bytes (arbiter);
  print_rss_breakdown ("arbiter, conns idle", arbiter);
  g_print ("  per idle connection: %.0f bytes\n", (held - idle) / n_conns);
  bench_table_add ("5. arbiter RSS, 10k idle connections", held / MIB, "MiB", 0,
                   BENCH_ABSOLUTE_MAX, 64);

  for (guint i = 0; i < n_conns; i++)
    g_assert_cmpint (fcntl (c.fds[i], F_SETFL, fcntl (c.fds[i], F_GETFL) | O_NONBLOCK), ==, 0);
  conns_call_every_second (&c, epfd, floor_p50);
  print_rss_breakdown ("arbiter, after calls", arbiter);
  g_usleep (G_USEC_PER_SEC / 2);
  print_rss_breakdown ("arbiter, idle again", arbiter);

  for (guint i = 0; i < n_conns; i++)
    close (c.fds[i]);
  close (epfd);
  g_free (c.fds);
  g_free (c.readers);
  g_free (c.sent_at);
  g_array_unref (c.latencies);
}

/* ---- queue growth ------------------------------------------------------- */

#define SLEEP_ID_BASE  1
#define STATUS_ID      (G_GUINT64_CONSTANT (1) << 40)
#define ECHO_ID_BASE   1000

typedef struct {
  int      fd;
  Reader   reader;
  guint    depth;
  gint     echoes;          /* atomic */
  gint64   status_at;       /* atomic-ish: written once by the reader */
  gint64   first_echo, last_echo;
} Queue;

static void
queue_frame (const DirtyFrameHeader *header, gpointer data)
{
  Queue *q = data;
  gint64 now = g_get_monotonic_time ();

  if (header->id == STATUS_ID)
    g_atomic_pointer_set (&q->status_at, now);
  else if (header->id >= ECHO_ID_BASE)
    {
      if (header->type != DIRTY_FRAME_RESPONSE)
        g_error ("queued call %" G_GUINT64_FORMAT " failed (frame type %u)", header->id,
                 header->type);
      if (q->first_echo == 0)
        q->first_echo = now;
      q->last_echo = now;
      g_atomic_int_inc (&q->echoes);
    }
}

static gpointer
queue_reader (gpointer data)
{
  Queue *q = data;
  guint8 buf[65536];
  gssize got;

  while ((guint) g_atomic_int_get (&q->echoes) < q->depth &&
         (got = read (q->fd, buf, sizeof buf)) > 0)
    reader_feed (&q->reader, buf, got, queue_frame, q);
  return NULL;
}

/* Four sleeps fill the 2 x 2 slots; @depth echoes then wait in the queue.
 * Enqueue: from the first byte sent to the answer of a STATUS sent after
 * them (the arbiter reads a connection in order). Drain: once the sleeps
 * are cancelled, from the first echo answered to the last. */
static void
queue_run (DirtyTestDaemon *daemon, guint depth, double *enqueue_us, double *drain_us,
           double *cpu_us)
{
  GPid arbiter = dirty_test_daemon_get_pid (daemon);
  Queue q = { .depth = depth };
  GByteArray *out = g_byte_array_new ();
  GThread *reader;
  gint64 t0, cpu0;

  q.fd = connect_unix (dirty_test_daemon_get_socket_path (daemon));
  for (guint i = 0; i < 4; i++)
    append_frame (out, DIRTY_FRAME_REQUEST, SLEEP_ID_BASE + i, 0,
                  "{\"app\":\"" TESTAPP "\",\"action\":\"sleep\",\"args\":[120]}");
  write_all (q.fd, out->data, out->len);
  g_usleep (G_USEC_PER_SEC / 5);   /* the sleeps reach their slots */
  reader = g_thread_new ("queue-reader", queue_reader, &q);

  g_byte_array_set_size (out, 0);
  for (guint i = 0; i < depth; i++)
    append_echo (out, ECHO_ID_BASE + i);
  append_frame (out, DIRTY_FRAME_STATUS, STATUS_ID, 0, NULL);
  cpu0 = cpu_ns (arbiter);
  t0 = g_get_monotonic_time ();
  write_all (q.fd, out->data, out->len);
  while (g_atomic_pointer_get (&q.status_at) == 0)
    g_usleep (1000);
  *enqueue_us = (q.status_at - t0) / (double) depth;

  g_byte_array_set_size (out, 0);
  for (guint i = 0; i < 4; i++)
    append_frame (out, DIRTY_FRAME_CANCEL, SLEEP_ID_BASE + i, 0, NULL);
  write_all (q.fd, out->data, out->len);
  g_thread_join (reader);
  *drain_us = (q.last_echo - q.first_echo) / (double) MAX (depth - 1, 1);
  *cpu_us = (cpu_ns (arbiter) - cpu0) / 1000.0 / depth;
  close (q.fd);
  g_byte_array_unref (out);
}

static void
bench_queue_growth (DirtyTestDaemon *daemon)
{
  static const guint depths[] = { 1000, 3000, 10000, 30000, 100000 };
  double first_cpu = 0, last_cpu = 0;

  g_print ("queue growth: per-call cost with N requests waiting (2 x 2 slots held by sleeps)\n");
  g_print ("  %8s %14s %14s %18s\n", "depth", "enqueue us", "drain us", "arbiter CPU us");
  {
    double ignored;

    /* warm up: the first run pays for page faults and a growing heap */
    queue_run (daemon, depths[0], &ignored, &ignored, &ignored);
  }
  for (guint i = 0; i < G_N_ELEMENTS (depths) && depths[i] <= max_depth; i++)
    {
      double enqueue, drain, cpu;

      queue_run (daemon, depths[i], &enqueue, &drain, &cpu);
      g_print ("  %8u %14.2f %14.2f %18.2f\n", depths[i], enqueue, drain, cpu);
      if (i == 0)
        first_cpu = cpu;
      last_cpu = cpu;
    }
  /* O(1) scheduling: the arbiter's CPU per call stays flat as the queue
   * grows a hundredfold (2x allows for noise and cache misses) */
  bench_table_add ("6. arbiter CPU/call, deepest vs 1k queue", last_cpu, "us", first_cpu,
                   BENCH_LOWER_IS_BETTER, 2.0);
}

/* ---- main ------------------------------------------------------------------ */

static void
raise_fd_limit (void)
{
  struct rlimit limit;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  limit.rlim_cur = limit.rlim_max;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  /* ours and the arbiter's (inherited): the connections, plus room */
  if (limit.rlim_cur < n_conns + 256)
    {
      g_print ("RLIMIT_NOFILE hard limit %lu: %lu connections instead of %u\n",
               (unsigned long) limit.rlim_max, (unsigned long) limit.rlim_cur - 256, n_conns);
      n_conns = limit.rlim_cur - 256;
    }
}

static double
floor_round_trip_p50 (void)
{
  RelayFloor *floor = relay_floor_new (1);
  g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < 2200; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      gint64 dt;

      relay_floor_call (floor, 0, 16);
      dt = g_get_monotonic_time () - t0;
      if (i >= 200)
        g_array_append_val (samples, dt);
    }
  relay_floor_free (floor);
  return percentile (samples, 0.5);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autoptr(GOptionContext) context = g_option_context_new ("- dirty-arbiter memory and scale");
  g_autofree char *table = NULL;
  g_autofree char *config = NULL;
  gboolean quick = FALSE;
  double floor_p50;
  GOptionEntry entries[] = {
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Fewer connections and calls (a smoke run)", NULL },
    { "table", 0, 0, G_OPTION_ARG_FILENAME, &table, "Append the result rows to FILE", "FILE" },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  if (quick)
    {
      n_conns = 1000;
      call_seconds = 2;
      max_depth = 10000;
    }
  bench_table_open (table);
  raise_fd_limit ();
  floor_p50 = floor_round_trip_p50 ();

  config = g_strdup_printf ("[dirty-arbiter]\ndirty_apps=" ECHO ";" TESTAPP "\n"
                            "dirty_workers=2\ndirty_threads=2\n"
                            "dirty_queue_size=%u\nmax_in_flight=%u\n"
                            "max_connections_per_uid=0\n", max_depth + 1000, max_depth + 1000);
  daemon = dirty_test_daemon_start (config, NULL);
  g_usleep (G_USEC_PER_SEC);   /* workers ready and settled */
  bench_idle_rss (daemon);
  bench_connections (daemon, floor_p50);
  bench_queue_growth (daemon);
  bench_table_close ();
  return 0;
}
