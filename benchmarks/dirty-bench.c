/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Figures for dirty-arbiter against the IPC floor measured in the same
 * run: execute round trip (tiny payload, sequential) p50/p99, also with
 * the CPUs chosen for both sides, calls/s with 8 concurrent callers, a
 * 1 MiB bytes echo (also against a plain memcpy-and-socket echo), a
 * 1 GiB bytes echo, and streams: chunks/s of a 100,000-chunk stream of
 * 16-byte chunks, time to the first chunk (also through the async API,
 * with the chunks read so), and MB/s of 64 KiB bytes chunks. Prints
 * figures; it is not a test and asserts nothing about speed. */
#include "config.h"

#include <sched.h>

#include <dirty.h>

#include "bench-table.h"
#include "dirty-test-daemon.h"
#include "relay-floor.h"

#define ECHO "echo:DirtyEchoApp"
#define STREAMAPP "streamapp:DirtyStreamTestApp"
#define N_CALLERS 8
#define DAEMON_CONFIG "[dirty-arbiter]\ndirty_apps=" ECHO ";" STREAMAPP "\n" \
                      "dirty_workers=2\ndirty_threads=2\n"

static guint n_round_trips = 20000;
static double throughput_seconds = 3.0;
static guint n_large = 100;
static guint n_small_chunks = 100000;
static guint n_first_chunk = 2000;
static guint n_big_chunks = 2000;   /* 64 KiB each: 128 MiB */
/* --gap: idle microseconds after each timed round trip or stream start,
 * as for a service whose calls come now and then (--profile only) */
static gint gap_us = 0;

#define GIB         ((gsize) 1024 * 1024 * 1024)
#define SMALL_CHUNK 16
#define BIG_CHUNK   (64 * 1024)

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
  return g_array_index (samples, gint64, (guint) ((samples->len - 1) * p));
}

typedef void (*CallFunc) (gpointer data, guint caller);

static GArray *
time_calls (CallFunc func, gpointer data, guint n)
{
  GArray *samples = g_array_sized_new (FALSE, FALSE, sizeof (gint64), n);

  for (guint i = 0; i < n / 10; i++)
    func (data, 0);             /* warm up */
  for (guint i = 0; i < n; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      gint64 dt;

      func (data, 0);
      dt = g_get_monotonic_time () - t0;
      g_array_append_val (samples, dt);
      if (gap_us > 0)
        g_usleep (gap_us);
    }
  return samples;
}

typedef struct {
  CallFunc  func;
  gpointer  data;
  guint     caller;
  gint64    end;
  guint64   calls;
} Runner;

static gpointer
runner_thread (gpointer user_data)
{
  Runner *r = user_data;

  while (g_get_monotonic_time () < r->end)
    {
      r->func (r->data, r->caller);
      r->calls++;
    }
  return NULL;
}

/* Calls/s of N_CALLERS threads calling @func for @seconds */
static double
throughput (CallFunc func, gpointer data, double seconds)
{
  Runner runners[N_CALLERS];
  GThread *threads[N_CALLERS];
  gint64 t0 = g_get_monotonic_time ();
  guint64 total = 0;

  for (guint i = 0; i < N_CALLERS; i++)
    {
      runners[i] = (Runner) { func, data, i, t0 + (gint64) (seconds * G_USEC_PER_SEC), 0 };
      threads[i] = g_thread_new ("caller", runner_thread, &runners[i]);
    }
  for (guint i = 0; i < N_CALLERS; i++)
    {
      g_thread_join (threads[i]);
      total += runners[i].calls;
    }
  return total / ((g_get_monotonic_time () - t0) / (double) G_USEC_PER_SEC);
}

/* ---- the floor -------------------------------------------------------- */

static void
floor_tiny (gpointer data, guint caller)
{
  relay_floor_call (data, caller, 16);
}

static void
floor_large (gpointer data, guint caller)
{
  relay_floor_call (data, caller, 1024 * 1024);
}

static const guint8 *echo_payload;   /* 1 MiB for floor_memcpy */

static void
floor_memcpy (gpointer data, guint caller)
{
  relay_floor_echo (data, caller, echo_payload, 1024 * 1024);
}

/* One echo of @size bytes through the floor; microseconds */
static gint64
floor_echo_once (RelayFloor *floor, gsize size)
{
  g_autofree guint8 *payload = g_malloc0 (size);
  gint64 t0 = g_get_monotonic_time ();

  relay_floor_echo (floor, 0, payload, size);
  return g_get_monotonic_time () - t0;
}

/* ---- dirty-arbiter ---------------------------------------------------- */

typedef struct {
  DirtyClient *client;
  DirtyClient *clients[N_CALLERS];   /* one connection per caller */
  /* one per caller thread: json-glib's reference counts are not atomic,
   * so threads must not share a JsonArray */
  JsonArray   *args[N_CALLERS];
  GBytes      *large;
} Dirty;

static void
dirty_tiny (gpointer data, guint caller)
{
  Dirty *d = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = dirty_client_execute_sync (d->client, ECHO, "echo", d->args[caller],
                                                          NULL, NULL, &error);
  if (result == NULL)
    g_error ("execute failed: %s", error->message);
}

static void
tiny_async_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  JsonNode **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);
  if (*out == NULL)
    g_error ("execute failed: %s", error->message);
}

/* the same call through the async API, as a GLib application makes it:
 * its reply comes to this thread's main context */
static void
dirty_tiny_async (gpointer data, guint caller)
{
  Dirty *d = data;
  JsonNode *result = NULL;

  dirty_client_execute (d->client, ECHO, "echo", d->args[caller], NULL, NULL,
                        tiny_async_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  json_node_unref (result);
}

/* the same call, each caller on its own connection */
static void
dirty_tiny_own_client (gpointer data, guint caller)
{
  Dirty *d = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = dirty_client_execute_sync (d->clients[caller], ECHO, "echo",
                                                          d->args[caller], NULL, NULL, &error);
  if (result == NULL)
    g_error ("execute failed: %s", error->message);
}

static void
dirty_large (gpointer data, guint caller)
{
  Dirty *d = data;
  g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo_bytes");
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(GError) error = NULL;

  dirty_request_add_bytes (request, d->large);
  reply = dirty_client_send_sync (d->client, request, NULL, &error);
  if (reply == NULL || g_bytes_get_size (dirty_reply_get_bytes (reply)) != g_bytes_get_size (d->large))
    g_error ("1 MiB echo failed: %s", error ? error->message : "wrong size");
}

/* One echo_bytes of @size bytes through dirty-arbiter (they travel as
 * memfds); microseconds */
static gint64
dirty_echo_once (DirtyClient *client, gsize size)
{
  g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc0 (size), size);
  g_autoptr(DirtyRequest) request = dirty_request_new (ECHO, "echo_bytes");
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();

  dirty_request_add_bytes (request, bytes);
  dirty_request_set_timeout (request, 600000);
  reply = dirty_client_send_sync (client, request, NULL, &error);
  if (reply == NULL || g_bytes_get_size (dirty_reply_get_bytes (reply)) != size)
    g_error ("%" G_GSIZE_FORMAT "-byte echo failed: %s", size,
             error ? error->message : "wrong size");
  return g_get_monotonic_time () - t0;
}

/* ---- streams ------------------------------------------------------------ */

/* The streamapp's "count" arguments for @n bytes chunks of @size bytes */
static JsonObject *
count_kwargs (guint n, guint size)
{
  JsonObject *kwargs = json_object_new ();

  json_object_set_int_member (kwargs, "n", n);
  json_object_set_string_member (kwargs, "kind", "bytes");
  json_object_set_int_member (kwargs, "size", size);
  return kwargs;
}

static DirtyStream *
dirty_open_stream (DirtyClient *client, guint n, guint size)
{
  g_autoptr(JsonObject) kwargs = count_kwargs (n, size);
  g_autoptr(GError) error = NULL;
  DirtyStream *stream;

  stream = dirty_client_stream_sync (client, STREAMAPP, "count", NULL, kwargs, NULL, &error);
  if (stream == NULL)
    g_error ("stream failed: %s", error->message);
  return stream;
}

/* Reads a whole stream of @n bytes chunks through its GInputStream face;
 * returns the seconds it took from the call. */
static double
dirty_stream_seconds (DirtyClient *client, guint n, guint size)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr(DirtyStream) stream = dirty_open_stream (client, n, size);
  g_autofree guint8 *buffer = g_malloc (BIG_CHUNK);
  g_autoptr(GError) error = NULL;
  guint64 total = 0;
  gssize got;

  while ((got = g_input_stream_read (G_INPUT_STREAM (stream), buffer, BIG_CHUNK,
                                     NULL, &error)) > 0)
    total += got;
  if (got < 0 || total != (guint64) n * size)
    g_error ("stream read failed: %s", error ? error->message : "short");
  return (g_get_monotonic_time () - t0) / (double) G_USEC_PER_SEC;
}

static double
floor_stream_seconds (RelayFloor *floor, guint n, guint size)
{
  gint64 t0 = g_get_monotonic_time ();

  relay_floor_stream (floor, 0, n, size);
  return (g_get_monotonic_time () - t0) / (double) G_USEC_PER_SEC;
}

/* A stream read with the async API in this thread's main context, as a
 * GLib application reads one: dirty_client_stream (), then
 * dirty_stream_next_chunk () from each chunk's callback */
typedef struct {
  DirtyStream *stream;
  gint64       started;   /* when the start's callback ran */
  guint64      chunks;
  gboolean     done;
} AsyncStream;

static void
async_chunk_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncStream *as = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_finish (DIRTY_STREAM (source), result,
                                                              &error);

  if (chunk == NULL)
    {
      if (error != NULL)
        g_error ("stream read failed: %s", error->message);
      as->done = TRUE;
      return;
    }
  as->chunks++;
  dirty_stream_next_chunk (as->stream, NULL, async_chunk_cb, as);
}

static void
async_stream_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncStream *as = user_data;
  g_autoptr(GError) error = NULL;

  as->started = g_get_monotonic_time ();
  as->stream = dirty_client_stream_finish (DIRTY_CLIENT (source), result, &error);
  if (as->stream == NULL)
    g_error ("stream failed: %s", error->message);
  dirty_stream_next_chunk (as->stream, NULL, async_chunk_cb, as);
}

/* Reads a stream of @n chunks of @size bytes so; returns the time to its
 * start (µs: the first chunk has come), and the seconds to its end in
 * @seconds if not NULL */
static gint64
dirty_async_stream (DirtyClient *client, guint n, guint size, double *seconds)
{
  g_autoptr(JsonObject) kwargs = count_kwargs (n, size);
  AsyncStream as = { 0 };
  gint64 t0 = g_get_monotonic_time ();

  dirty_client_stream (client, STREAMAPP, "count", NULL, kwargs, NULL, async_stream_cb, &as);
  while (!as.done)
    g_main_context_iteration (NULL, TRUE);
  if (as.chunks != n)
    g_error ("stream read %" G_GUINT64_FORMAT " chunks of %u", as.chunks, n);
  g_object_unref (as.stream);
  if (seconds != NULL)
    *seconds = (g_get_monotonic_time () - t0) / (double) G_USEC_PER_SEC;
  return as.started - t0;
}

/* Times to first chunk: the floor's with @floor, else ours, blocking
 * or through the async API (@async) */
static GArray *
first_chunk_samples (DirtyClient *client, RelayFloor *floor, gboolean async, guint n)
{
  GArray *samples = g_array_sized_new (FALSE, FALSE, sizeof (gint64), n);

  for (guint i = 0; i < n + n / 10; i++)
    {
      gint64 dt;

      if (floor != NULL)
        dt = relay_floor_stream (floor, 0, 1, SMALL_CHUNK);
      else if (async)
        dt = dirty_async_stream (client, 1, SMALL_CHUNK, NULL);
      else
        {
          gint64 t0 = g_get_monotonic_time ();
          /* stream_sync returns as the first chunk arrives */
          g_autoptr(DirtyStream) stream = dirty_open_stream (client, 1, SMALL_CHUNK);

          dt = g_get_monotonic_time () - t0;
          while (g_input_stream_skip (G_INPUT_STREAM (stream), 4096, NULL, NULL) > 0)
            ;
        }
      if (gap_us > 0)
        g_usleep (gap_us);
      if (i >= n / 10)   /* after the warm-up */
        g_array_append_val (samples, dt);
    }
  return samples;
}

/* ---- samples taken in turns ------------------------------------------ */

/* Some figures are ratios of two samplings (ours against a floor, time
 * to first chunk against the round trip). Taken one after the other,
 * a noisy stretch of the run falls on one of them only; taken in turns,
 * a block of each at a time, it falls on both alike. */
#define N_BLOCKS 10

typedef GArray *(*SampleFunc) (gpointer data, guint n);

typedef struct {
  SampleFunc  func;
  gpointer    data;
  GArray     *samples;   /* out */
} Subject;

static void
sample_in_turns (Subject *subjects, guint n_subjects, guint n)
{
  for (guint s = 0; s < n_subjects; s++)
    subjects[s].samples = g_array_sized_new (FALSE, FALSE, sizeof (gint64), n);
  for (guint b = 0; b < N_BLOCKS; b++)
    for (guint s = 0; s < n_subjects; s++)
      {
        g_autoptr(GArray) block = subjects[s].func (subjects[s].data, MAX (n / N_BLOCKS, 1));

        g_array_append_vals (subjects[s].samples, block->data, block->len);
      }
}

typedef struct {
  CallFunc  func;
  gpointer  data;
  double    rate;   /* out: calls/s, the mean of its blocks */
} Rate;

/* Throughput in turns, as sample_in_turns () */
static void
throughput_in_turns (Rate *rates, guint n_rates)
{
  for (guint b = 0; b < N_BLOCKS; b++)
    for (guint r = 0; r < n_rates; r++)
      rates[r].rate += throughput (rates[r].func, rates[r].data,
                                   throughput_seconds / N_BLOCKS) / N_BLOCKS;
}

static GArray *
floor_round_trips (gpointer floor, guint n)
{
  return time_calls (floor_tiny, floor, n);
}

static GArray *
floor_first_chunks (gpointer floor, guint n)
{
  return first_chunk_samples (NULL, floor, FALSE, n);
}

static GArray *
dirty_round_trips (gpointer d, guint n)
{
  return time_calls (dirty_tiny, d, n);
}

static GArray *
dirty_async_round_trips (gpointer d, guint n)
{
  return time_calls (dirty_tiny_async, d, n);
}

static GArray *
dirty_first_chunks (gpointer client, guint n)
{
  return first_chunk_samples (client, NULL, FALSE, n);
}

static GArray *
dirty_async_first_chunks (gpointer client, guint n)
{
  return first_chunk_samples (client, NULL, TRUE, n);
}

static void
report (const char *what, double value, const char *unit, double floor, gboolean lower_is_better)
{
  g_print ("%-44s %12.1f %-7s floor %12.1f %-7s ratio %5.2fx%s\n", what, value, unit, floor, unit,
           value / floor, lower_is_better ? "" : " of floor");
}

/* ---- round trips with the CPUs chosen ---------------------------------- */

/* On a VM whose idle vCPUs halt, a wake-up that lands on the other, idle
 * vCPU costs tens of microseconds (the host has to run that vCPU again),
 * and how many a round trip meets depends on where the scheduler puts
 * each thread: the same relay takes 13 or 90 us. These samplings choose
 * the CPUs, for us and for the floor alike:
 *
 * - one CPU: every process and thread on the CPU this thread runs on, so
 *   no wake-up crosses; what is left is the work, user and kernel, that
 *   a round trip costs;
 * - split: the caller and the arbiter (the relay) on one CPU, the workers
 *   (the echo processes) on another, as the scheduler places them when
 *   left alone (perf sched traces): two crossings per round trip each.
 *
 * The floors and a second daemon are started while this thread is pinned
 * (their processes and threads inherit its mask); the workers and echoes
 * of "split" are moved after. Sampled in turns. */
typedef struct {
  GArray *raw, *processes, *handoff, *dirty;   /* raw and handoff: one CPU only */
} PlacedRtt;

static void
placed_rtt_clear (PlacedRtt *rtt)
{
  g_clear_pointer (&rtt->raw, g_array_unref);
  g_clear_pointer (&rtt->processes, g_array_unref);
  g_clear_pointer (&rtt->handoff, g_array_unref);
  g_clear_pointer (&rtt->dirty, g_array_unref);
}

/* Moves every thread of every child of @pid (the workers) to @cpu. */
static gboolean
pin_children (GPid pid, int cpu)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/children", pid, pid);
  g_autofree char *children = NULL;
  g_auto(GStrv) pids = NULL;
  guint n = 0;

  if (!g_file_get_contents (path, &children, NULL, NULL))
    return FALSE;
  pids = g_strsplit (g_strstrip (children), " ", -1);
  for (guint i = 0; pids[i] != NULL && *pids[i] != '\0'; i++)
    {
      g_autofree char *tasks = g_strdup_printf ("/proc/%s/task", pids[i]);
      g_autoptr(GDir) dir = g_dir_open (tasks, 0, NULL);
      const char *tid;

      while (dir != NULL && (tid = g_dir_read_name (dir)) != NULL)
        n += relay_floor_pin_task (atoi (tid), cpu);
    }
  return n > 0;
}

/* Another CPU this thread may run on than @cpu, or -1 */
static int
other_cpu (const cpu_set_t *allowed, int cpu)
{
  for (int i = 0; i < CPU_SETSIZE; i++)
    if (i != cpu && CPU_ISSET (i, allowed))
      return i;
  return -1;
}

static gboolean
placed_round_trips (const char *config, JsonArray *args, gboolean split, PlacedRtt *out)
{
  cpu_set_t saved;
  int here = sched_getcpu (), there = -1;
  DirtyTestDaemon *daemon;
  g_autoptr(GError) error = NULL;
  RelayFloor *raw = NULL, *processes, *handoff = NULL;
  gboolean placed = TRUE;
  Dirty d = { 0 };

  if (sched_getaffinity (0, sizeof saved, &saved) != 0 ||
      (split && (there = other_cpu (&saved, here)) < 0) ||
      !relay_floor_pin_task (0, here))
    return FALSE;

  processes = relay_floor_new_processes (1);
  if (split)
    placed = relay_floor_pin_echoes (processes, there);
  else
    {
      raw = relay_floor_new (1);
      handoff = relay_floor_new_handoff (1);
    }
  daemon = dirty_test_daemon_start (config, NULL);
  if (split)
    placed = placed && pin_children (dirty_test_daemon_get_pid (daemon), there);
  d.client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon), NULL, &error);
  if (d.client == NULL)
    g_error ("connect: %s", error->message);
  d.args[0] = args;
  if (placed)
    {
      Subject rtt[] = {
        { floor_round_trips, processes, NULL },
        { dirty_round_trips, &d, NULL },
        { floor_round_trips, raw, NULL },
        { floor_round_trips, handoff, NULL },
      };

      sample_in_turns (rtt, split ? 2 : G_N_ELEMENTS (rtt), n_round_trips);
      *out = (PlacedRtt) { rtt[2].samples, rtt[0].samples, rtt[3].samples, rtt[1].samples };
    }
  g_object_unref (d.client);
  dirty_test_daemon_stop (daemon);
  /* the relay's processes hold copies of the others' fds: they go first */
  relay_floor_free (processes);
  g_clear_pointer (&handoff, relay_floor_free);
  g_clear_pointer (&raw, relay_floor_free);
  sched_setaffinity (0, sizeof saved, &saved);
  return placed;
}

/* --profile=floors: the relay in each shape a design could take, in
 * turns, against the raw relay: what the shape costs before any work of
 * ours. A worker that hands a call from its reading thread to a call
 * thread cannot be faster than "relay + thread hop"; one whose threads
 * take turns as the reader, "relay + leader/follower echo". */
static void
profile_floors (void)
{
  const char *names[] = {
    "raw relay", "relay in processes", "relay + thread hop", "relay + leader/follower echo",
  };
  /* the processes first: they hold copies of the fds open when they fork */
  RelayFloor *processes = relay_floor_new_processes (1);
  Subject floors[] = {
    { floor_round_trips, relay_floor_new (1), NULL },
    { floor_round_trips, processes, NULL },
    { floor_round_trips, relay_floor_new_handoff (1), NULL },
    { floor_round_trips, relay_floor_new_leaders (1), NULL },
  };

  sample_in_turns (floors, G_N_ELEMENTS (floors), n_round_trips);
  for (guint i = 0; i < G_N_ELEMENTS (floors); i++)
    {
      g_autofree char *what = g_strdup_printf ("%s, p50", names[i]);

      report (what, percentile (floors[i].samples, 0.5), "us",
              percentile (floors[0].samples, 0.5), TRUE);
    }
  relay_floor_free (processes);
  for (guint i = 0; i < G_N_ELEMENTS (floors); i++)
    {
      if (floors[i].data != processes)
        relay_floor_free (floors[i].data);
      g_array_unref (floors[i].samples);
    }
}

/* How the CPU a round trip of ours costs more than the raw relay's
 * divides among the client, the arbiter and the worker: each one's CPU
 * time on one CPU (/proc/PID/task/TID/schedstat, session 17: 1.0, 2.7
 * and 7.3 of 11 us; benchmarks/HISTORY.md) */
#define SHARE_CLIENT  0.10
#define SHARE_ARBITER 0.25

/* @work_us of CPU divided as a round trip of ours divides it */
static RelayWork
work_as_ours (double work_us)
{
  RelayWork work = {
    .caller_us = work_us * SHARE_CLIENT + 0.5,
    .relay_us = work_us * SHARE_ARBITER + 0.5,
  };

  work.echo_us = MAX (work_us - work.caller_us - work.relay_us, 0);
  return work;
}

/* --profile=work: the raw relay with more and more CPU spent on each
 * call, in turns with our round trip: all of it in the echo, or divided
 * among the caller, the relay and the echo as ours is among the client,
 * the arbiter and the worker. On one CPU a microsecond of work costs a
 * round trip a microsecond; on a VM whose idle vCPUs halt, work while
 * another vCPU waits can cost more (benchmarks/README.md, target 1).
 * Where ours falls on the curve says how much of it is our CPU per call
 * rather than the path. */
static void
profile_work (Dirty *d)
{
  static const guint work_us[] = { 0, 4, 8, 11, 12, 16 };
  const guint n_floors = 2 * G_N_ELEMENTS (work_us);
  Subject subjects[2 * G_N_ELEMENTS (work_us) + 1];
  double raw;

  for (guint i = 0; i < G_N_ELEMENTS (work_us); i++)
    {
      RelayWork in_echo = { .echo_us = work_us[i] }, as_ours = work_as_ours (work_us[i]);

      subjects[2 * i] = (Subject) { floor_round_trips, relay_floor_new_working (1, &in_echo) };
      subjects[2 * i + 1] = (Subject) { floor_round_trips, relay_floor_new_working (1, &as_ours) };
    }
  subjects[n_floors] = (Subject) { dirty_round_trips, d, NULL };
  sample_in_turns (subjects, G_N_ELEMENTS (subjects), n_round_trips);
  raw = percentile (subjects[0].samples, 0.5);
  for (guint i = 0; i < n_floors; i++)
    {
      g_autofree char *what = g_strdup_printf ("raw relay, %u us of work %s, p50", work_us[i / 2],
                                               i % 2 == 0 ? "in the echo" : "as ours");

      report (what, percentile (subjects[i].samples, 0.5), "us", raw, TRUE);
      relay_floor_free (subjects[i].data);
    }
  report ("dirty-arbiter execute, p50", percentile (subjects[n_floors].samples, 0.5), "us", raw,
          TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (subjects); i++)
    g_array_unref (subjects[i].samples);
}

typedef struct {
  double work_us;     /* CPU the relay spends on each call, as ours does */
  double dirty_p50;   /* ours, in turns with: */
  double floor_p50;
} WorkingRtt;

/* Our round trip as the machine is, in turns with the raw relay doing, on
 * each call, the CPU ours costs more than the raw relay on one CPU
 * (@one_cpu), divided as ours: the floor of a design that does our work. */
static WorkingRtt
working_round_trips (Dirty *d, const PlacedRtt *one_cpu)
{
  WorkingRtt out = {
    MAX (percentile (one_cpu->dirty, 0.5) - percentile (one_cpu->raw, 0.5), 0),
  };
  RelayWork work = work_as_ours (out.work_us);
  RelayFloor *working = relay_floor_new_working (1, &work);
  Subject rtt[] = {
    { dirty_round_trips, d, NULL },
    { floor_round_trips, working, NULL },
  };

  sample_in_turns (rtt, G_N_ELEMENTS (rtt), n_round_trips);
  out.dirty_p50 = percentile (rtt[0].samples, 0.5);
  out.floor_p50 = percentile (rtt[1].samples, 0.5);
  relay_floor_free (working);
  g_array_unref (rtt[0].samples);
  g_array_unref (rtt[1].samples);
  return out;
}

/* --profile: one figure, for callgrind or a quick look: one of the
 * dirty-arbiter side, without the floor, or the relay's floors alone. */
static int
profile (DirtyClient *client, Dirty *d, const char *what)
{
  if (g_strcmp0 (what, "rtt") == 0)
    {
      g_autoptr(GArray) samples = time_calls (dirty_tiny, d, n_round_trips);

      g_print ("execute round trip p50 %.0f us, p99 %.0f us\n",
               percentile (samples, 0.5), percentile (samples, 0.99));
    }
  else if (g_strcmp0 (what, "async") == 0)
    {
      g_autoptr(GArray) samples = time_calls (dirty_tiny_async, d, n_round_trips);

      g_print ("async execute round trip p50 %.0f us, p99 %.0f us\n",
               percentile (samples, 0.5), percentile (samples, 0.99));
    }
  else if (g_strcmp0 (what, "stream") == 0)
    g_print ("%.0f chunks/s\n", n_small_chunks / dirty_stream_seconds (client, n_small_chunks,
                                                                         SMALL_CHUNK));
  else if (g_strcmp0 (what, "tput") == 0)
    g_print ("%.0f calls/s, %u callers on one connection\n",
             throughput (dirty_tiny, d, throughput_seconds), N_CALLERS);
  else if (g_strcmp0 (what, "first") == 0)
    {
      g_autoptr(GArray) samples = first_chunk_samples (client, NULL, FALSE, n_round_trips);

      g_print ("time to first chunk p50 %.0f us\n", percentile (samples, 0.5));
    }
  else if (g_strcmp0 (what, "async-first") == 0)
    {
      g_autoptr(GArray) samples = dirty_async_first_chunks (client, n_round_trips);

      g_print ("async time to first chunk p50 %.0f us\n", percentile (samples, 0.5));
    }
  else if (g_strcmp0 (what, "async-stream") == 0)
    {
      double seconds;

      dirty_async_stream (client, n_small_chunks, SMALL_CHUNK, &seconds);
      g_print ("%.0f chunks/s, read with dirty_stream_next_chunk ()\n", n_small_chunks / seconds);
    }
  else if (g_strcmp0 (what, "floor") == 0)
    {
      /* the raw relay alone, not in turns with ours: where its threads
       * land decides its figure (benchmarks/HISTORY.md, session 9) */
      RelayFloor *floor = relay_floor_new (1);
      g_autoptr(GArray) samples = time_calls (floor_tiny, floor, n_round_trips);

      g_print ("raw relay round trip p50 %.0f us, p99 %.0f us\n",
               percentile (samples, 0.5), percentile (samples, 0.99));
      relay_floor_free (floor);
    }
  else if (g_strcmp0 (what, "floors") == 0)
    profile_floors ();
  else if (g_strcmp0 (what, "work") == 0)
    profile_work (d);
  else
    {
      g_printerr ("--profile takes rtt, async, stream, tput, first, async-first, async-stream, "
                  "floor, floors or work\n");
      return 1;
    }
  return 0;
}

/* The CPU's model name from /proc/cpuinfo, or NULL */
static char *
cpu_model (void)
{
  g_autofree char *cpuinfo = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    return NULL;
  lines = g_strsplit (cpuinfo, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *colon = strchr (lines[i], ':');

      if (g_str_has_prefix (lines[i], "model name") && colon != NULL)
        return g_strstrip (g_strdup (colon + 1));
    }
  return NULL;
}

/* What decides a cross-CPU wake-up's cost, printed with the figures: in a
 * VM whose idle vCPUs halt (cpuidle-haltpoll with guest_halt_poll_ns 0),
 * waking a thread on an idle vCPU goes through the host and costs tens of
 * microseconds, more than a round trip's own work (benchmarks/HISTORY.md,
 * session 10). The host counts as much: the raw relay took 19-25 us on
 * one and 43-45 us on another (session 15), so the CPU is named too. */
static void
print_machine (void)
{
  g_autofree char *driver = NULL, *poll_ns = NULL, *model = cpu_model ();

  g_file_get_contents ("/sys/devices/system/cpu/cpuidle/current_driver", &driver, NULL, NULL);
  g_file_get_contents ("/sys/module/haltpoll/parameters/guest_halt_poll_ns", &poll_ns, NULL, NULL);
  g_print ("machine: %s, %u CPUs, cpuidle driver %s, guest_halt_poll_ns %s\n",
           model != NULL ? model : "(CPU model unknown)", g_get_num_processors (),
           driver != NULL ? g_strstrip (driver) : "(none)",
           poll_ns != NULL ? g_strstrip (poll_ns) : "(not haltpoll)");
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GArray) floor_rtt = NULL, dirty_rtt = NULL, floor_big = NULL, dirty_big = NULL;
  g_autoptr(GArray) floor_process_rtt = NULL, floor_handoff_rtt = NULL, async_rtt = NULL;
  g_autoptr(GArray) floor_leaders_rtt = NULL;
  g_autoptr(GOptionContext) context = g_option_context_new ("- dirty-arbiter benchmarks");
  g_autofree char *table = NULL;
  g_autofree char *profile_what = NULL;
  double floor_tput = 0, dirty_tput, dirty_tput_conns;
  double floor_small_s = 1, dirty_small_s, async_small_s, floor_big_s = 1, dirty_big_s;
  double exec_p50;
  g_autoptr(GArray) floor_first = NULL, dirty_first = NULL, floor_copy = NULL;
  g_autoptr(GArray) rtt_near_first = NULL, async_first = NULL, async_near_first = NULL;
  g_autofree guint8 *payload = g_malloc0 (1024 * 1024);
  gint64 floor_gib_us = 0, dirty_gib_us;
  RelayFloor *floor = NULL, *processes = NULL, *handoff = NULL, *leaders = NULL;
  PlacedRtt one_cpu = { 0 }, split = { 0 };
  WorkingRtt working = { 0 };
  gboolean one_cpu_ok, split_ok;
  Dirty d = { 0 };
  gboolean quick = FALSE;
  gint count = 0;
  GOptionEntry entries[] = {
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Fewer iterations (a smoke run)", NULL },
    { "table", 0, 0, G_OPTION_ARG_FILENAME, &table, "Append the result rows to FILE", "FILE" },
    { "profile", 0, 0, G_OPTION_ARG_STRING, &profile_what,
      "Run only one figure (rtt, async, stream, tput, first, async-first, async-stream; floor: the raw relay alone; floors: the relay's shapes in turns; work: the raw relay with CPU spent on each call, against ours)",
      "WHAT" },
    { "count", 0, 0, G_OPTION_ARG_INT, &count,
      "Round trips, or chunks of the 16-byte stream (after --quick)", "N" },
    { "gap", 0, 0, G_OPTION_ARG_INT, &gap_us,
      "With --profile: idle US microseconds after each timed call, as calls that come now and then",
      "US" },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  /* the full run's figures are taken back to back, as the targets ask */
  if (gap_us != 0 && (profile_what == NULL || gap_us < 0))
    {
      g_printerr ("--gap takes a positive number of microseconds, with --profile\n");
      return 1;
    }
  if (quick)
    {
      n_round_trips = 2000;
      throughput_seconds = 0.5;
      n_large = 10;
      n_small_chunks = 10000;
      n_first_chunk = 200;
      n_big_chunks = 200;
    }
  if (count > 0)
    n_round_trips = n_small_chunks = count;
  bench_table_open (table);

  if (profile_what == NULL)
    {
      g_printerr ("measuring the raw relay floor...\n");
      /* their round trips are taken later, in turns with ours */
      floor = relay_floor_new (N_CALLERS);
      processes = relay_floor_new_processes (1);
      handoff = relay_floor_new_handoff (1);
      leaders = relay_floor_new_leaders (1);
      floor_big = time_calls (floor_large, floor, n_large);
      echo_payload = payload;
      floor_copy = time_calls (floor_memcpy, floor, n_large);
      floor_gib_us = floor_echo_once (floor, GIB);
      floor_stream_seconds (floor, n_small_chunks / 10, SMALL_CHUNK);   /* warm up */
      floor_small_s = floor_stream_seconds (floor, n_small_chunks, SMALL_CHUNK);
      floor_big_s = floor_stream_seconds (floor, n_big_chunks, BIG_CHUNK);
    }

  daemon = dirty_test_daemon_start (DAEMON_CONFIG, NULL);
  client = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon), NULL, &error);
  if (client == NULL)
    g_error ("connect: %s", error->message);
  d.client = client;
  for (guint i = 0; i < N_CALLERS; i++)
    {
      d.args[i] = json_array_new ();
      json_array_add_int_element (d.args[i], 42);
      d.clients[i] = dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon), NULL, &error);
      if (d.clients[i] == NULL)
        g_error ("connect: %s", error->message);
    }
  d.large = g_bytes_new_take (g_malloc0 (1024 * 1024), 1024 * 1024);

  if (profile_what != NULL)
    {
      for (guint i = 0; i < 200; i++)
        dirty_tiny (&d, 0);   /* warm up: workers connected, code paged in */
      print_machine ();
      return profile (client, &d, profile_what);
    }

  g_printerr ("measuring dirty-arbiter: round trips, in turns with the floors'...\n");
  {
    Subject rtt[] = {
      { floor_round_trips, floor, NULL },
      { floor_round_trips, processes, NULL },
      { floor_round_trips, handoff, NULL },
      { dirty_round_trips, &d, NULL },
      { dirty_async_round_trips, &d, NULL },
      { floor_round_trips, leaders, NULL },
    };

    sample_in_turns (rtt, G_N_ELEMENTS (rtt), n_round_trips);
    floor_rtt = rtt[0].samples;
    floor_process_rtt = rtt[1].samples;
    floor_handoff_rtt = rtt[2].samples;
    dirty_rtt = rtt[3].samples;
    async_rtt = rtt[4].samples;
    floor_leaders_rtt = rtt[5].samples;
    relay_floor_free (processes);
    relay_floor_free (handoff);
    relay_floor_free (leaders);
  }
  g_printerr ("measuring dirty-arbiter: throughput...\n");
  {
    Rate tput[] = {
      { floor_tiny, floor, 0 },
      { dirty_tiny, &d, 0 },
      { dirty_tiny_own_client, &d, 0 },
    };

    throughput_in_turns (tput, G_N_ELEMENTS (tput));
    floor_tput = tput[0].rate;
    dirty_tput = tput[1].rate;
    dirty_tput_conns = tput[2].rate;
  }
  g_printerr ("measuring dirty-arbiter: 1 MiB echo...\n");
  dirty_big = time_calls (dirty_large, &d, n_large);
  g_printerr ("measuring dirty-arbiter: 1 GiB echo...\n");
  dirty_gib_us = dirty_echo_once (client, GIB);
  g_printerr ("measuring dirty-arbiter: streams...\n");
  dirty_stream_seconds (client, n_small_chunks / 10, SMALL_CHUNK);   /* warm up */
  dirty_small_s = dirty_stream_seconds (client, n_small_chunks, SMALL_CHUNK);
  dirty_async_stream (client, n_small_chunks, SMALL_CHUNK, &async_small_s);
  {
    /* time to first chunk is measured against our own round trip */
    Subject first[] = {
      { floor_first_chunks, floor, NULL },
      { dirty_first_chunks, client, NULL },
      { dirty_round_trips, &d, NULL },
      { dirty_async_first_chunks, client, NULL },
      { dirty_async_round_trips, &d, NULL },
    };

    sample_in_turns (first, G_N_ELEMENTS (first), n_first_chunk);
    floor_first = first[0].samples;
    dirty_first = first[1].samples;
    rtt_near_first = first[2].samples;
    async_first = first[3].samples;
    async_near_first = first[4].samples;
    relay_floor_free (floor);
  }
  dirty_big_s = dirty_stream_seconds (client, n_big_chunks, BIG_CHUNK);
  g_printerr ("measuring round trips with the CPUs chosen, in turns...\n");
  one_cpu_ok = placed_round_trips (DAEMON_CONFIG, d.args[0], FALSE, &one_cpu);
  split_ok = placed_round_trips (DAEMON_CONFIG, d.args[0], TRUE, &split);
  if (one_cpu_ok)
    {
      g_printerr ("measuring round trips against a relay that works as long as ours...\n");
      working = working_round_trips (&d, &one_cpu);
    }

  g_print ("dirty-arbiter benchmark: 2 workers x 2 threads, %u round trips, %u callers for %.1f s\n",
           n_round_trips, N_CALLERS, throughput_seconds);
  print_machine ();
  report ("execute round trip, tiny, p50", percentile (dirty_rtt, 0.5), "us",
          percentile (floor_rtt, 0.5), TRUE);
  report ("execute round trip, tiny, p99", percentile (dirty_rtt, 0.99), "us",
          percentile (floor_rtt, 0.99), TRUE);
  report ("async execute round trip p50, vs blocking", percentile (async_rtt, 0.5), "us",
          percentile (dirty_rtt, 0.5), TRUE);
  report ("round trip p50, relay in processes", percentile (dirty_rtt, 0.5), "us",
          percentile (floor_process_rtt, 0.5), TRUE);
  report ("round trip p50, echo hands to a thread", percentile (dirty_rtt, 0.5), "us",
          percentile (floor_handoff_rtt, 0.5), TRUE);
  report ("round trip p50, echo's threads take turns", percentile (dirty_rtt, 0.5), "us",
          percentile (floor_leaders_rtt, 0.5), TRUE);
  if (one_cpu_ok)
    {
      report ("round trip p50, all on one CPU", percentile (one_cpu.dirty, 0.5), "us",
              percentile (one_cpu.raw, 0.5), TRUE);
      report ("round trip p50, one CPU, relay in processes", percentile (one_cpu.dirty, 0.5),
              "us", percentile (one_cpu.processes, 0.5), TRUE);
      report ("round trip p50, one CPU, echo thread hop", percentile (one_cpu.dirty, 0.5),
              "us", percentile (one_cpu.handoff, 0.5), TRUE);
      g_print ("our CPU per round trip beyond the raw relay's (one CPU): %.0f us\n",
               working.work_us);
      report ("round trip p50, relay doing our CPU per call", working.dirty_p50, "us",
              working.floor_p50, TRUE);
    }
  else
    g_print ("round trips on one CPU: not measured (the CPU mask could not be set)\n");
  if (split_ok)
    report ("round trip p50, workers/echoes on a 2nd CPU", percentile (split.dirty, 0.5), "us",
            percentile (split.processes, 0.5), TRUE);
  else
    g_print ("round trips on two chosen CPUs: not measured (one CPU, or no CPU mask)\n");
  report ("throughput, 8 callers on one client", dirty_tput, "calls/s", floor_tput, FALSE);
  report ("throughput, 8 callers on 8 connections", dirty_tput_conns, "calls/s", floor_tput, FALSE);
  report ("1 MiB bytes echo, p50", percentile (dirty_big, 0.5) / 1000.0, "ms",
          percentile (floor_big, 0.5) / 1000.0, TRUE);
  report ("1 MiB bytes echo, p50, vs memcpy+socket", percentile (dirty_big, 0.5) / 1000.0, "ms",
          percentile (floor_copy, 0.5) / 1000.0, TRUE);
  report ("1 GiB bytes echo (memfd), once", dirty_gib_us / 1000.0, "ms",
          floor_gib_us / 1000.0, TRUE);
  g_print ("streams (the client's credit window of 512 chunks; the floor has no flow control):\n");
  report ("stream of 16-byte chunks", n_small_chunks / dirty_small_s, "chunk/s",
          n_small_chunks / floor_small_s, FALSE);
  report ("time to first chunk, p50", percentile (dirty_first, 0.5), "us",
          percentile (floor_first, 0.5), TRUE);
  report ("async time to first chunk p50, vs async execute", percentile (async_first, 0.5), "us",
          percentile (async_near_first, 0.5), TRUE);
  report ("stream of 16-byte chunks, next_chunk async", n_small_chunks / async_small_s, "chunk/s",
          n_small_chunks / dirty_small_s, FALSE);
  report ("stream of 64 KiB bytes chunks", n_big_chunks * (double) BIG_CHUNK / 1e6 / dirty_big_s,
          "MB/s", n_big_chunks * (double) BIG_CHUNK / 1e6 / floor_big_s, FALSE);

  exec_p50 = percentile (dirty_rtt, 0.5);
  bench_table_add ("1. execute round trip p50", exec_p50, "us",
                   percentile (floor_rtt, 0.5), BENCH_LOWER_IS_BETTER, 1.5);
  bench_table_add ("1. execute round trip p99", percentile (dirty_rtt, 0.99), "us",
                   percentile (floor_rtt, 0.99), BENCH_LOWER_IS_BETTER, 3.0);
  /* the relay and echoes as processes, as the arbiter and workers are */
  bench_table_add ("1. execute round trip p50 vs process relay", exec_p50, "us",
                   percentile (floor_process_rtt, 0.5), BENCH_INFO, 0);
  /* the floor of a design whose workers hand blocking calls to a thread */
  bench_table_add ("1. execute round trip p50 vs relay + thread hop", exec_p50, "us",
                   percentile (floor_handoff_rtt, 0.5), BENCH_INFO, 0);
  /* the floor of a design whose worker threads take turns as the reader
   * and run what they read: no hop (relay-floor.h) */
  bench_table_add ("1. execute p50 vs relay + leader/follower echo", exec_p50, "us",
                   percentile (floor_leaders_rtt, 0.5), BENCH_INFO, 0);
  /* what a GLib application's async call costs more: a GTask, and its
   * reply read in its main context (a GSource) */
  bench_table_add ("1. async execute p50 vs blocking execute p50", percentile (async_rtt, 0.5), "us",
                   exec_p50, BENCH_INFO, 0);
  /* the work a round trip costs, with no wake-up crossing vCPUs */
  if (one_cpu_ok)
    {
      bench_table_add ("1. p50, all on one CPU", percentile (one_cpu.dirty, 0.5), "us",
                       percentile (one_cpu.raw, 0.5), BENCH_INFO, 0);
      bench_table_add ("1. p50, one CPU, vs process relay", percentile (one_cpu.dirty, 0.5), "us",
                       percentile (one_cpu.processes, 0.5), BENCH_INFO, 0);
      bench_table_add ("1. p50, one CPU, vs relay + thread hop", percentile (one_cpu.dirty, 0.5),
                       "us", percentile (one_cpu.handoff, 0.5), BENCH_INFO, 0);
      /* the floor of a design that spends as much CPU on a call as ours
       * (relay-floor.h): what is left is the path, not the work */
      bench_table_add ("1. p50 vs raw relay doing our CPU per call", working.dirty_p50, "us",
                       working.floor_p50, BENCH_INFO, 0);
    }
  /* the same two vCPU crossings per round trip for both */
  if (split_ok)
    bench_table_add ("1. p50, workers/echoes on a 2nd CPU", percentile (split.dirty, 0.5), "us",
                     percentile (split.processes, 0.5), BENCH_INFO, 0);
  bench_table_add ("2. 8 callers, one client connection", dirty_tput, "calls/s",
                   floor_tput, BENCH_HIGHER_IS_BETTER, 0.5);
  bench_table_add ("2. 8 callers, 8 connections", dirty_tput_conns, "calls/s",
                   floor_tput, BENCH_HIGHER_IS_BETTER, 0.5);
  bench_table_add ("3. stream of 16-byte chunks", n_small_chunks / dirty_small_s, "chunk/s",
                   0, BENCH_ABSOLUTE_MIN, 300000);
  bench_table_add ("3. stream of 16-byte chunks vs floor", n_small_chunks / dirty_small_s,
                   "chunk/s", n_small_chunks / floor_small_s, BENCH_INFO, 0);
  /* the floor of time to first chunk is our own execute p50, taken in
   * turns with it */
  bench_table_add ("3. time to first chunk p50 vs execute p50", percentile (dirty_first, 0.5),
                   "us", percentile (rtt_near_first, 0.5), BENCH_LOWER_IS_BETTER, 1.5);
  /* the same through the async API, against the async execute */
  bench_table_add ("3. async time to first chunk p50 vs async execute", percentile (async_first, 0.5),
                   "us", percentile (async_near_first, 0.5), BENCH_INFO, 0);
  /* chunk by chunk with a GTask each, against the blocking reads */
  bench_table_add ("3. 16-byte chunks, next_chunk async, vs blocking", n_small_chunks / async_small_s,
                   "chunk/s", n_small_chunks / dirty_small_s, BENCH_INFO, 0);
  bench_table_add ("4. 1 MiB bytes echo p50 vs memcpy+socket", percentile (dirty_big, 0.5) / 1000.0,
                   "ms", percentile (floor_copy, 0.5) / 1000.0, BENCH_LOWER_IS_BETTER, 3.0);
  bench_table_add ("4. 1 GiB bytes echo (memfd) vs sockets", dirty_gib_us / 1000.0, "ms",
                   floor_gib_us / 1000.0, BENCH_INFO, 0);
  bench_table_close ();

  for (guint i = 0; i < N_CALLERS; i++)
    {
      json_array_unref (d.args[i]);
      g_object_unref (d.clients[i]);
    }
  g_bytes_unref (d.large);
  placed_rtt_clear (&one_cpu);
  placed_rtt_clear (&split);
  return 0;
}
