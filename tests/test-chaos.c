/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Chaos under load (issue 7): eight clients call and stream without a
 * pause for $DIRTY_CHAOS_SECONDS (default 60) against the real daemon,
 * while workers are killed with SIGKILL, stopped with SIGSTOP past their
 * calls' deadlines, made to allocate until dirty_kill_rss kills them, and
 * the config is reloaded with SIGHUP. Every random choice comes from one
 * seed, printed, and $DIRTY_CHAOS_SEED replays it (the timing of a loaded
 * machine still differs from run to run).
 *
 * The clients speak raw frames, so that every frame the arbiter sends is
 * seen (the library drops a reply for an id it no longer waits for):
 * each call carries a token of its own that the action echoes (in its
 * result, or in every chunk with the chunk's sequence number), each
 * client counts the terminal messages per id, and the ids are never
 * reused. Asserted at the end: every call got exactly one answer, no
 * answer or chunk reached another call, chunks came in order and
 * complete, the error codes are those the faults explain, the runaway
 * allocations were killed, and the arbiter's RSS stayed bounded. The
 * figures are printed as "# FIGURE" lines. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirty-message.h"
#include "dirty-test-daemon.h"
#include "dirty-test-raw.h"

#define APP              "testapp:DirtyTestApp"
#define N_CLIENTS        8
#define CLIENT_IN_FLIGHT 4
#define CALL_TIMEOUT_MS  3000
#define GROW_TIMEOUT_MS  20000
#define GROW_STEP_MIB    4        /* per 10 ms: 400 MiB/s */
#define SOFT_RSS_MIB     48       /* dirty_max_rss, over a worker's RSS at start */
#define KILL_RSS_MIB     128      /* dirty_kill_rss, over a worker's RSS at start */
#define STOP_FOR_US      (6 * G_USEC_PER_SEC)   /* > deadline + the 2 s grace */
#define VICTIM_MIN_AGE   (5 * G_USEC_PER_SEC)   /* see pick_victim () */
/* The arbiter's growth over the run. AddressSanitizer's quarantine and
 * valgrind's shadow memory keep freed memory resident for a while. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_GROWTH_KB    (256 * 1024)
#else
#define RSS_GROWTH_KB    (64 * 1024)
#endif
#define RSS_GROWTH_KB_VALGRIND (256 * 1024)

typedef struct {
  guint64  id;
  gboolean stream;
  gboolean cancelled;
  gint64   n;           /* chunks the stream sends */
  gint64   next_seq;
  guint    answers;     /* terminal messages received */
  char     token[40];
} Call;

/* What one client saw; summed in the end */
typedef struct {
  guint       index;
  GRand      *rand;
  GThread    *thread;
  guint64     started;
  guint64     results;
  guint64     streams_ended;
  guint64     chunks;
  guint64     twice;
  guint64     wrong;
  guint64     bad_chunks;     /* out of order, or an END before all chunks */
  guint64     unanswered;
  guint64     cancels_sent;
  GHashTable *errors;         /* code (interned) -> count */
} Client;

typedef struct {
  DirtyTestDaemon *daemon;
  GMutex           lock;          /* worker_seen, the counters below */
  GHashTable      *worker_seen;   /* pid -> first seen (monotonic µs) */
  guint            initial_workers;
  guint            kills;
  guint            stops;
  guint            stopped_killed;   /* stopped workers the arbiter killed */
  guint            stopped_resumed;  /* stopped workers still alive after STOP_FOR_US */
  guint            reloads;
  guint            grows;
  guint            grows_lost;       /* runaway calls ended worker-lost */
  GHashTable      *grow_errors;      /* code -> count */
  gint64           worker_rss_kb;    /* a worker's RSS at start */
  guint            workers;          /* dirty_workers now (3 or 4) */
  gint             running;          /* atomic */
  guint32          seed;
  gint64           seconds;
} Chaos;

static Chaos chaos;

/* ---- helpers ---- */

static gint64
rss_kb (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL) ||
      (line = strstr (contents, "VmRSS:")) == NULL)
    return -1;
  return g_ascii_strtoll (line + strlen ("VmRSS:"), NULL, 10);
}

static void
count_code (GHashTable *table, const char *code)
{
  const char *key = g_intern_string (code ? code : "(none)");

  g_hash_table_insert (table, (gpointer) key,
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (table, key)) + 1));
}

static void
write_config (void)
{
  g_autofree char *path = g_build_filename (dirty_test_daemon_get_dir (chaos.daemon),
                                            "dirty-arbiter.conf", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  gint64 base_mib = chaos.worker_rss_kb / 1024;

  text = g_strdup_printf ("[dirty-arbiter]\n"
                          "dirty_apps=" APP "\n"
                          "dirty_workers=%u\n"
                          "dirty_threads=4\n"
                          "dirty_timeout=30\n"
                          "dirty_max_rss=%" G_GINT64_FORMAT "\n"
                          "dirty_kill_rss=%" G_GINT64_FORMAT "\n",
                          chaos.workers,
                          chaos.worker_rss_kb ? base_mib + SOFT_RSS_MIB : 0,
                          chaos.worker_rss_kb ? base_mib + KILL_RSS_MIB : 0);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

/* Reloads and waits for the new generation's READY=1 */
static void
reload_and_wait (void)
{
  g_autofree char *ready = NULL;

  kill (dirty_test_daemon_get_pid (chaos.daemon), SIGHUP);
  ready = dirty_test_daemon_wait_notify (chaos.daemon, "READY=1", 120000);
  g_assert_nonnull (ready);
}

/* ---- the clients ---- */

static DirtyFrame *
new_call_frame (Client *client, Call *call)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "app");
  json_builder_add_string_value (builder, APP);
  json_builder_set_member_name (builder, "action");
  json_builder_add_string_value (builder, call->stream ? "tagged_stream" : "tagged");
  if (call->stream)
    {
      json_builder_set_member_name (builder, "kwargs");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "token");
      json_builder_add_string_value (builder, call->token);
      json_builder_set_member_name (builder, "n");
      json_builder_add_int_value (builder, call->n);
      json_builder_set_member_name (builder, "interval");
      json_builder_add_double_value (builder, 0.005);
      json_builder_end_object (builder);
    }
  else
    {
      json_builder_set_member_name (builder, "args");
      json_builder_begin_array (builder);
      json_builder_add_string_value (builder, call->token);
      json_builder_add_double_value (builder, g_rand_int_range (client->rand, 0, 200) / 1000.0);
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return dirty_frame_encode (DIRTY_FRAME_REQUEST, call->stream ? DIRTY_FRAME_FLAG_STREAM : 0,
                             call->id, CALL_TIMEOUT_MS, root, NULL);
}

static gboolean
send_call (Client *client, GSocket *socket, GHashTable *calls, guint64 id)
{
  Call *call = g_new0 (Call, 1);
  g_autoptr(DirtyFrame) frame = NULL;

  call->id = id;
  call->stream = g_rand_boolean (client->rand);
  call->n = g_rand_int_range (client->rand, 1, 41);
  g_snprintf (call->token, sizeof call->token, "c%u-%" G_GUINT64_FORMAT "-%08x",
              client->index, id, g_rand_int (client->rand));
  g_hash_table_insert (calls, &call->id, call);
  frame = new_call_frame (client, call);
  client->started++;
  if (!dirty_test_raw_send_frame (socket, frame))
    return FALSE;
  /* one call in 16 is cancelled at once: it may be queued, running or done */
  if (g_rand_int_range (client->rand, 0, 16) == 0)
    {
      g_autoptr(DirtyFrame) cancel = dirty_frame_encode (DIRTY_FRAME_CANCEL, 0, id, 0, NULL, NULL);

      call->cancelled = TRUE;
      client->cancels_sent++;
      return dirty_test_raw_send_frame (socket, cancel);
    }
  return TRUE;
}

/* A chunk of @call: its token, the next sequence number; one credit back */
static gboolean
on_chunk (Client *client, GSocket *socket, Call *call, JsonNode *root)
{
  JsonNode *data = root ? json_object_get_member (json_node_get_object (root), "data") : NULL;
  g_autoptr(DirtyFrame) credit = NULL;

  client->chunks++;
  if (data == NULL || !JSON_NODE_HOLDS_OBJECT (data) ||
      g_strcmp0 (dirty_json_get_string (data, "token"), call->token) != 0)
    client->wrong++;
  else if (dirty_json_get_int (data, "seq", -1) != call->next_seq)
    client->bad_chunks++;
  call->next_seq++;
  credit = dirty_frame_encode (DIRTY_FRAME_CREDIT, 0, call->id, 1, NULL, NULL);
  return dirty_test_raw_send_frame (socket, credit);
}

static void
on_terminal (Client *client, Call *call, DirtyFrame *frame, JsonNode *root)
{
  switch (frame->header.type)
    {
    case DIRTY_FRAME_RESPONSE:
      {
        JsonNode *result = root ? json_object_get_member (json_node_get_object (root), "result") : NULL;

        if (call->stream || result == NULL || !JSON_NODE_HOLDS_VALUE (result) ||
            g_strcmp0 (json_node_get_string (result), call->token) != 0)
          client->wrong++;
        else
          client->results++;
      }
      break;
    case DIRTY_FRAME_END:
      if (!call->stream)
        client->wrong++;
      else if (call->next_seq != call->n)
        client->bad_chunks++;
      else
        client->results++, client->streams_ended++;
      break;
    default:
      count_code (client->errors, dirty_json_get_string (root, "code"));
      break;
    }
}

/* Returns FALSE when the connection is gone */
static gboolean
read_one (Client *client, GSocket *socket, GHashTable *calls, guint *in_flight)
{
  g_autoptr(DirtyFrame) frame = dirty_test_raw_read_frame (socket);
  g_autoptr(JsonNode) root = NULL;
  gboolean terminal;
  Call *call;

  if (frame == NULL)
    return FALSE;
  root = dirty_test_raw_frame_json (frame);
  call = g_hash_table_lookup (calls, &frame->header.id);
  if (call == NULL)
    {
      /* an id this client never used, or an ERROR for the connection */
      g_test_message ("client %u: frame type %u for unknown id %" G_GUINT64_FORMAT,
                      client->index, frame->header.type, frame->header.id);
      client->wrong++;
      return TRUE;
    }
  terminal = frame->header.type != DIRTY_FRAME_CHUNK;
  if (call->answers > 0)
    {
      /* anything after the terminal message is a second answer */
      client->twice++;
      return TRUE;
    }
  if (!terminal)
    return on_chunk (client, socket, call, root);
  call->answers++;
  (*in_flight)--;
  on_terminal (client, call, frame, root);
  return TRUE;
}

static gpointer
client_thread (gpointer data)
{
  Client *client = data;
  g_autoptr(GSocket) socket = dirty_test_raw_connect (dirty_test_daemon_get_socket_path (chaos.daemon));
  g_autoptr(GHashTable) calls = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, g_free);
  guint64 next_id = 1;
  guint in_flight = 0;
  gboolean connected = TRUE;

  /* a reply that never comes ends the drain after 30 s (the socket's timeout) */
  while (connected && (g_atomic_int_get (&chaos.running) || in_flight > 0))
    {
      while (connected && g_atomic_int_get (&chaos.running) && in_flight < CLIENT_IN_FLIGHT)
        {
          connected = send_call (client, socket, calls, next_id++);
          in_flight++;
        }
      if (connected)
        connected = read_one (client, socket, calls, &in_flight);
    }
  client->unanswered = in_flight;
  if (!connected)
    g_test_message ("client %u: the connection ended with %u calls in flight",
                    client->index, in_flight);
  return NULL;
}

/* ---- the faults ---- */

/* The current workers (the daemon's children), remembering when each
 * was first seen */
static GArray *
sample_workers (void)
{
  GArray *pids = dirty_test_list_children (dirty_test_daemon_get_pid (chaos.daemon));
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&chaos.lock);
  for (guint i = 0; i < pids->len; i++)
    {
      GPid pid = g_array_index (pids, GPid, i);

      if (!g_hash_table_contains (chaos.worker_seen, GINT_TO_POINTER (pid)))
        g_hash_table_insert (chaos.worker_seen, GINT_TO_POINTER (pid), g_memdup2 (&now, sizeof now));
    }
  g_mutex_unlock (&chaos.lock);
  return pids;
}

typedef struct {
  GPid   pid;
  gint64 resume_at;
} Stopped;

static gboolean
is_stopped (GArray *stopped, GPid pid)
{
  for (guint i = 0; i < stopped->len; i++)
    if (g_array_index (stopped, Stopped, i).pid == pid)
      return TRUE;
  return FALSE;
}

/* A worker that has lived 5 s and is not stopped (the arbiter must be
 * the one that kills a stopped worker): the arbiter replaces one that
 * dies younger only after a backoff that doubles up to 30 s, and killing
 * young workers would measure that backoff instead of the faults. */
static GPid
pick_victim (GRand *rand, GArray *stopped)
{
  g_autoptr(GArray) pids = sample_workers ();
  g_autoptr(GArray) old = g_array_new (FALSE, FALSE, sizeof (GPid));
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&chaos.lock);
  for (guint i = 0; i < pids->len; i++)
    {
      GPid pid = g_array_index (pids, GPid, i);
      gint64 *seen = g_hash_table_lookup (chaos.worker_seen, GINT_TO_POINTER (pid));

      if (now - *seen >= VICTIM_MIN_AGE && !is_stopped (stopped, pid) && dirty_test_pid_alive (pid))
        g_array_append_val (old, pid);
    }
  g_mutex_unlock (&chaos.lock);
  if (old->len == 0)
    return 0;
  return g_array_index (old, GPid, g_rand_int_range (rand, 0, old->len));
}

static void
resume_stopped (GArray *stopped, gboolean all)
{
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < stopped->len;)
    {
      Stopped *s = &g_array_index (stopped, Stopped, i);

      if (!all && now < s->resume_at)
        {
          i++;
          continue;
        }
      if (dirty_test_pid_alive (s->pid))
        {
          kill (s->pid, SIGCONT);
          chaos.stopped_resumed++;
        }
      else
        chaos.stopped_killed++;
      g_array_remove_index_fast (stopped, i);
    }
}

static void
reload (void)
{
  chaos.workers = chaos.workers == 3 ? 4 : 3;
  write_config ();
  kill (dirty_test_daemon_get_pid (chaos.daemon), SIGHUP);
  chaos.reloads++;
}

/* SIGKILL, SIGSTOP and SIGHUP, one every 0.5 to 1.5 s */
static gpointer
faults_thread (gpointer data)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (chaos.seed ^ 0x5eed);
  g_autoptr(GArray) stopped = g_array_new (FALSE, FALSE, sizeof (Stopped));
  gint64 next_fault = g_get_monotonic_time () + G_USEC_PER_SEC;
  gint64 next_reload = g_get_monotonic_time () + 4 * G_USEC_PER_SEC;

  while (g_atomic_int_get (&chaos.running))
    {
      gint64 now = g_get_monotonic_time ();
      GPid victim;

      g_array_unref (sample_workers ());
      resume_stopped (stopped, FALSE);
      if (now >= next_reload)
        {
          reload ();
          next_reload = now + g_rand_int_range (rand, 6, 12) * G_USEC_PER_SEC;
        }
      else if (now >= next_fault && (victim = pick_victim (rand, stopped)) != 0)
        {
          /* one stopped worker at a time, so some always serve */
          if (stopped->len == 0 && g_rand_int_range (rand, 0, 3) == 0)
            {
              Stopped s = { victim, now + STOP_FOR_US };

              kill (victim, SIGSTOP);
              g_array_append_val (stopped, s);
              chaos.stops++;
            }
          else
            {
              kill (victim, SIGKILL);
              chaos.kills++;
            }
          next_fault = now + g_rand_int_range (rand, 500, 1500) * 1000;
        }
      g_usleep (50 * 1000);
    }
  resume_stopped (stopped, TRUE);
  return NULL;
}

/* The runaway: one grow call at a time, every 2 to 6 s */
static gpointer
grow_thread (gpointer data)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (chaos.seed ^ 0x96);
  g_autoptr(GSocket) socket = dirty_test_raw_connect (dirty_test_daemon_get_socket_path (chaos.daemon));
  guint64 id = 1;

  g_socket_set_timeout (socket, GROW_TIMEOUT_MS / 1000 + 30);
  while (g_atomic_int_get (&chaos.running))
    {
      g_autofree char *json = g_strdup_printf ("{\"app\": \"" APP "\", \"action\": \"grow\", "
                                               "\"args\": [%d]}", GROW_STEP_MIB);
      g_autoptr(DirtyFrame) request = dirty_test_raw_request (id, json, GROW_TIMEOUT_MS);
      g_autoptr(DirtyFrame) reply = NULL;
      g_autoptr(JsonNode) root = NULL;
      const char *code;

      g_usleep (g_rand_int_range (rand, 2000, 6000) * 1000);
      g_assert_true (dirty_test_raw_send_frame (socket, request));
      reply = dirty_test_raw_read_frame (socket);
      g_assert_nonnull (reply);
      g_assert_cmpuint (reply->header.id, ==, id);
      root = dirty_test_raw_frame_json (reply);
      code = reply->header.type == DIRTY_FRAME_ERROR ? dirty_json_get_string (root, "code") : "result";
      g_mutex_lock (&chaos.lock);
      chaos.grows++;
      if (g_strcmp0 (code, "worker-lost") == 0)
        chaos.grows_lost++;
      count_code (chaos.grow_errors, code);
      g_mutex_unlock (&chaos.lock);
      id++;
    }
  return NULL;
}

/* ---- the run ---- */

static void
print_codes (const char *what, GHashTable *codes)
{
  g_autoptr(GList) keys = g_list_sort (g_hash_table_get_keys (codes), (GCompareFunc) g_strcmp0);

  for (GList *l = keys; l != NULL; l = l->next)
    printf ("# FIGURE %s %s: %u\n", what, (const char *) l->data,
            GPOINTER_TO_UINT (g_hash_table_lookup (codes, l->data)));
}

/* Error codes a client may get here, and why: the faults (worker-lost,
 * timeout), its own CANCELs (cancelled), a queue that waits for
 * replacements longer than the deadline (timeout). Anything else (busy,
 * protocol, app-error, no-worker...) is a bug this test looks for. */
static gboolean
code_expected (const char *code)
{
  return g_strv_contains ((const char * const[]) { "worker-lost", "timeout", "cancelled", NULL },
                          code);
}

static void
test_chaos (void)
{
  Client clients[N_CLIENTS] = { 0 };
  g_autoptr(GHashTable) errors = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GArray) first = NULL;
  Client total = { 0 };
  GThread *faults, *grower;
  gint64 rss_start, rss_end, bound;
  guint restarts;

  chaos.workers = 3;
  chaos.daemon = dirty_test_daemon_start ("[dirty-arbiter]\n"
                                          "dirty_apps=" APP "\n"
                                          "dirty_workers=3\n"
                                          "dirty_threads=4\n", NULL);
  /* the RSS limits sit above what a worker of this build uses (valgrind
   * and the sanitizers multiply it), so they are set once that is known */
  first = dirty_test_list_children (dirty_test_daemon_get_pid (chaos.daemon));
  g_assert_cmpuint (first->len, ==, 3);
  chaos.worker_rss_kb = rss_kb (g_array_index (first, GPid, 0));
  g_assert_cmpint (chaos.worker_rss_kb, >, 0);
  write_config ();
  reload_and_wait ();
  g_array_unref (sample_workers ());
  chaos.initial_workers = g_hash_table_size (chaos.worker_seen);
  rss_start = rss_kb (dirty_test_daemon_get_pid (chaos.daemon));
  g_test_message ("worker RSS %" G_GINT64_FORMAT " KiB: dirty_max_rss=%" G_GINT64_FORMAT
                  " dirty_kill_rss=%" G_GINT64_FORMAT " MiB", chaos.worker_rss_kb,
                  chaos.worker_rss_kb / 1024 + SOFT_RSS_MIB, chaos.worker_rss_kb / 1024 + KILL_RSS_MIB);

  g_atomic_int_set (&chaos.running, TRUE);
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      clients[i].index = i;
      clients[i].rand = g_rand_new_with_seed (chaos.seed + i);
      clients[i].errors = g_hash_table_new (g_str_hash, g_str_equal);
      clients[i].thread = g_thread_new ("client", client_thread, &clients[i]);
    }
  faults = g_thread_new ("faults", faults_thread, NULL);
  grower = g_thread_new ("grow", grow_thread, NULL);
  g_usleep (chaos.seconds * G_USEC_PER_SEC);
  g_atomic_int_set (&chaos.running, FALSE);
  g_thread_join (faults);
  g_thread_join (grower);
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      Client *c = &clients[i];
      GHashTableIter iter;
      gpointer code, n;

      g_thread_join (c->thread);
      total.started += c->started;
      total.results += c->results;
      total.streams_ended += c->streams_ended;
      total.chunks += c->chunks;
      total.twice += c->twice;
      total.wrong += c->wrong;
      total.bad_chunks += c->bad_chunks;
      total.unanswered += c->unanswered;
      total.cancels_sent += c->cancels_sent;
      g_hash_table_iter_init (&iter, c->errors);
      while (g_hash_table_iter_next (&iter, &code, &n))
        g_hash_table_insert (errors, code, GUINT_TO_POINTER (GPOINTER_TO_UINT (
                               g_hash_table_lookup (errors, code)) + GPOINTER_TO_UINT (n)));
      g_hash_table_unref (c->errors);
      g_rand_free (c->rand);
    }
  g_array_unref (sample_workers ());
  rss_end = rss_kb (dirty_test_daemon_get_pid (chaos.daemon));
  restarts = g_hash_table_size (chaos.worker_seen) - chaos.initial_workers;

  printf ("# FIGURE seed: %u (DIRTY_CHAOS_SEED), %" G_GINT64_FORMAT " s\n", chaos.seed, chaos.seconds);
  printf ("# FIGURE calls started: %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " cancelled at once)\n",
          total.started, total.cancels_sent);
  printf ("# FIGURE calls answered with a result: %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
          " streams complete, %" G_GUINT64_FORMAT " chunks)\n",
          total.results, total.streams_ended, total.chunks);
  print_codes ("calls answered with error", errors);
  printf ("# FIGURE calls with no answer: %" G_GUINT64_FORMAT "\n", total.unanswered);
  printf ("# FIGURE calls answered twice: %" G_GUINT64_FORMAT "\n", total.twice);
  printf ("# FIGURE answers delivered to the wrong call: %" G_GUINT64_FORMAT "\n", total.wrong);
  printf ("# FIGURE chunks out of order or missing: %" G_GUINT64_FORMAT "\n", total.bad_chunks);
  printf ("# FIGURE faults: %u SIGKILL, %u SIGSTOP (%u killed by the arbiter, %u resumed), "
          "%u SIGHUP, %u runaway allocations\n", chaos.kills, chaos.stops, chaos.stopped_killed,
          chaos.stopped_resumed, chaos.reloads, chaos.grows);
  print_codes ("runaway allocation ended", chaos.grow_errors);
  printf ("# FIGURE worker restarts: %u (new worker processes, reloads included)\n", restarts);
  printf ("# FIGURE arbiter RSS: %" G_GINT64_FORMAT " KiB at start, %" G_GINT64_FORMAT " KiB at the end\n",
          rss_start, rss_end);
  fflush (stdout);

  g_assert_cmpuint (total.unanswered, ==, 0);
  g_assert_cmpuint (total.twice, ==, 0);
  g_assert_cmpuint (total.wrong, ==, 0);
  g_assert_cmpuint (total.bad_chunks, ==, 0);
  g_assert_cmpuint (total.results, >, 0);
  {
    GHashTableIter iter;
    gpointer code;

    g_hash_table_iter_init (&iter, errors);
    while (g_hash_table_iter_next (&iter, &code, NULL))
      if (!code_expected (code))
        g_error ("calls ended with the unexplained error code %s", (const char *) code);
  }
  /* every fault happened, and dirty_kill_rss stopped every runaway that
   * no other fault ended first */
  g_assert_cmpuint (chaos.kills, >, 0);
  g_assert_cmpuint (chaos.stops, >, 0);
  g_assert_cmpuint (chaos.reloads, >, 0);
  g_assert_cmpuint (chaos.grows_lost, >, 0);
  g_assert_null (g_hash_table_lookup (chaos.grow_errors, "result"));
  g_assert_null (g_hash_table_lookup (chaos.grow_errors, "app-error"));
  bound = dirty_test_under_valgrind () ? RSS_GROWTH_KB_VALGRIND : RSS_GROWTH_KB;
  g_assert_cmpint (rss_end, <, rss_start + bound);

  dirty_test_daemon_stop (chaos.daemon);
}

int
main (int argc, char **argv)
{
  const char *seed = g_getenv ("DIRTY_CHAOS_SEED");
  const char *seconds = g_getenv ("DIRTY_CHAOS_SECONDS");

  g_test_init (&argc, &argv, NULL);
  chaos.seed = seed ? (guint32) g_ascii_strtoull (seed, NULL, 10) : 20261126;
  chaos.seconds = seconds ? g_ascii_strtoll (seconds, NULL, 10) : 60;
  g_mutex_init (&chaos.lock);
  chaos.worker_seen = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  chaos.grow_errors = g_hash_table_new (g_str_hash, g_str_equal);
  /* printed first, so a failing run can be replayed */
  printf ("# seed %u (set DIRTY_CHAOS_SEED to replay), %" G_GINT64_FORMAT " s\n",
          chaos.seed, chaos.seconds);
  g_test_add_func ("/chaos/under-load", test_chaos);
  {
    int status = g_test_run ();

    g_hash_table_unref (chaos.worker_seen);
    g_hash_table_unref (chaos.grow_errors);
    g_mutex_clear (&chaos.lock);
    return status;
  }
}
