/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* dirty-sd-load: N clients, each one DirtyClient (one connection) shared
 * by T threads, each thread calling without pause until a file appears,
 * for the restart test of the systemd suite.
 *
 *   dirty-sd-load [--clients N] [--threads T] [--slow-every K] [--bytes B] STOP_FILE
 *
 * Each call is echo:DirtyEchoApp echo I (its answer checked; with
 * --bytes, echo_bytes of B bytes made from I: from 64 KiB they travel as
 * memfds, and the echoed bytes are compared), every K-th
 * one slow:DirtySlowApp sleep 0.2 instead, so calls are in flight when
 * the arbiter is told to stop; with T > 1 a connection has several calls
 * in flight, so requests arrive while its calls finish. A connection
 * error is DIRTY_ERROR_CONNECTION or _PROTOCOL; the client is kept (a
 * lost one fails every later call, each counted).
 * Prints one line per client, then the totals:
 *
 *   client C: CALLS calls, ERRORS error answers, LOST connection errors
 *   total: CALLS calls, ERRORS error answers, LOST connection errors, CLIENTS clients saw one
 *   shutting-down answers: S   (of the ERRORS)
 *
 * and exits 0 (the test judges the figures), 1 if a client cannot
 * connect at all, 2 on a usage error. */

#include <stdio.h>

#include <dirty.h>

static int n_clients = 8;
static int n_threads = 2;
static int slow_every = 10;
static int n_bytes = 0;
static const char *stop_file;

typedef struct {
  guint        index;
  DirtyClient *client;
  GMutex       lock;
  guint        calls;
  guint        errors;
  guint        lost;
  guint        shutting_down;
  GError      *first_error;
} Load;

static const GOptionEntry entries[] = {
  { "clients", 'n', 0, G_OPTION_ARG_INT, &n_clients, "Clients (threads), each one connection", "N" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads calling on each client", "T" },
  { "slow-every", 'k', 0, G_OPTION_ARG_INT, &slow_every, "Every K-th call sleeps 0.2 s", "K" },
  { "bytes", 'b', 0, G_OPTION_ARG_INT, &n_bytes, "Echo B bytes (memfds from 64 KiB)", "B" },
  G_OPTION_ENTRY_NULL
};

static gboolean
lost_connection (const GError *error)
{
  return g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION) ||
         g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
}

/* B bytes that differ from call to call: the echo of another call's
 * memfd (a mix-up in the handoff) does not compare equal */
static GBytes *
make_bytes (guint i)
{
  guint8 *data = g_malloc (n_bytes);

  for (int k = 0; k < n_bytes; k++)
    data[k] = (guint8) (i * 31 + k / 4096 + k);
  return g_bytes_new_take (data, n_bytes);
}

/* echo_bytes: TRUE if the same bytes came back */
static gboolean
bytes_call (DirtyClient *client,
            guint        i,
            GError     **error)
{
  g_autoptr(DirtyRequest) request = dirty_request_new ("echo:DirtyEchoApp", "echo_bytes");
  g_autoptr(GBytes) bytes = make_bytes (i);
  g_autoptr(DirtyReply) reply = NULL;
  GBytes *echoed;

  dirty_request_add_bytes (request, bytes);
  reply = dirty_client_send_sync (client, request, NULL, error);
  if (reply == NULL)
    return FALSE;
  echoed = dirty_reply_get_bytes (reply);
  if (echoed == NULL || !g_bytes_equal (echoed, bytes))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_FAILED, "wrong bytes echoed");
      return FALSE;
    }
  return TRUE;
}

static JsonNode *
one_call (DirtyClient *client,
          guint        i,
          gboolean     slow,
          GError     **error)
{
  g_autoptr(JsonArray) args = json_array_new ();

  if (slow)
    {
      json_array_add_double_element (args, 0.2);
      return dirty_client_execute_sync (client, "slow:DirtySlowApp", "sleep", args, NULL, NULL, error);
    }
  json_array_add_int_element (args, i);
  return dirty_client_execute_sync (client, "echo:DirtyEchoApp", "echo", args, NULL, NULL, error);
}

static gpointer
load_thread (gpointer data)
{
  Load *load = data;
  guint n = 0;

  while (!g_file_test (stop_file, G_FILE_TEST_EXISTS))
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) result = NULL;
      gboolean slow = slow_every > 0 && n % (guint) slow_every == (guint) slow_every - 1;

      if (n_bytes > 0 && !slow)
        result = bytes_call (load->client, n, &error) ? json_node_new (JSON_NODE_NULL) : NULL;
      else
        result = one_call (load->client, n, slow, &error);
      if (result != NULL && !slow && n_bytes == 0 &&
          (!JSON_NODE_HOLDS_VALUE (result) || json_node_get_int (result) != n))
        error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_FAILED, "wrong answer");
      n++;
      g_mutex_lock (&load->lock);
      load->calls++;
      if (error != NULL && lost_connection (error))
        load->lost++;
      else if (error != NULL)
        load->errors++;
      if (g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_SHUTTING_DOWN))
        load->shutting_down++;
      if (error != NULL && load->first_error == NULL)
        load->first_error = g_error_copy (error);
      g_mutex_unlock (&load->lock);
    }
  return NULL;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("STOP_FILE");
  g_autoptr(GError) error = NULL;
  g_autofree Load *loads = NULL;
  g_autofree GThread **threads = NULL;
  guint calls = 0, errors = 0, lost = 0, clients_lost = 0, shutting_down = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2 || n_clients < 1 ||
      n_threads < 1 || n_bytes < 0)
    {
      fprintf (stderr, "dirty-sd-load: %s\n", error ? error->message : "STOP_FILE needed");
      return 2;
    }
  stop_file = argv[1];
  loads = g_new0 (Load, n_clients);
  threads = g_new0 (GThread *, n_clients * n_threads);
  for (int i = 0; i < n_clients; i++)
    {
      loads[i].index = i + 1;
      g_mutex_init (&loads[i].lock);
      loads[i].client = dirty_client_new_sync (NULL, NULL, &error);
      if (loads[i].client == NULL)
        {
          fprintf (stderr, "dirty-sd-load: client %d: %s\n", i + 1, error->message);
          return 1;
        }
      for (int t = 0; t < n_threads; t++)
        threads[i * n_threads + t] = g_thread_new ("load", load_thread, &loads[i]);
    }
  for (int i = 0; i < n_clients * n_threads; i++)
    g_thread_join (threads[i]);
  for (int i = 0; i < n_clients; i++)
    {
      printf ("client %u: %u calls, %u error answers, %u connection errors%s%s\n", loads[i].index,
              loads[i].calls, loads[i].errors, loads[i].lost,
              loads[i].first_error ? "; first: " : "",
              loads[i].first_error ? loads[i].first_error->message : "");
      calls += loads[i].calls;
      errors += loads[i].errors;
      lost += loads[i].lost;
      clients_lost += loads[i].lost > 0;
      shutting_down += loads[i].shutting_down;
      g_clear_error (&loads[i].first_error);
      g_clear_object (&loads[i].client);
      g_mutex_clear (&loads[i].lock);
    }
  printf ("total: %u calls, %u error answers, %u connection errors, %u clients saw one\n",
          calls, errors, lost, clients_lost);
  printf ("shutting-down answers: %u\n", shutting_down);
  return 0;
}
