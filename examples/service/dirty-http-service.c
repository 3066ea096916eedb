/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* dirty-http-service: how a GLib service offloads work through
 * libdirty-glib. A small HTTP server (libsoup 3) on one main loop that
 * never blocks: each request becomes an async call to dirty-arbiter, and a
 * streamed result goes on to the HTTP client as it arrives.
 *
 *   dirty-http-service [--port N] [--socket PATH] [--timeout MS]
 *
 *   GET /add?a=20&b=22          echo:DirtyEchoApp add, answered as JSON:
 *                               {"result":42}
 *   GET /generate?words=N&seed=S
 *                               markov:DirtyMarkovApp generate, as
 *                               server-sent events (text/event-stream): one
 *                               `data:` event per token (a JSON string), then
 *                               `event: end`, or `event: error` with
 *                               {"error":CODE,"message":...} if the stream
 *                               fails half-way
 *
 * A call that fails before any result answers an HTTP error status with
 * {"error":CODE,"message":...} (CODE is the DIRTY_ERROR wire name, e.g.
 * "timeout" -> 504). Each token is read only once the previous one has
 * been written to the socket, so a slow HTTP client slows the generator
 * (the stream's credit window), not this process's memory; an HTTP client
 * that goes away cancels its call at once. Once listening it prints
 * "listening on http://127.0.0.1:PORT/". */

#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib-unix.h>
#include <libsoup/soup.h>

#include <dirty.h>

#define ECHO "echo:DirtyEchoApp"
#define MARKOV "markov:DirtyMarkovApp"
#define MAX_WORDS 100000

static int port = 8080;
static char *socket_path;
static int timeout_ms;

static const GOptionEntry entries[] = {
  { "port", 'p', 0, G_OPTION_ARG_INT, &port, "TCP port on 127.0.0.1 (8080; 0 picks one)", "N" },
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
    "The arbiter's socket (default: $DIRTY_ARBITER_SOCKET or the session's)", "PATH" },
  { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms,
    "Deadline of each call, a whole stream included, in ms (default: the arbiter's)", "MS" },
  { NULL }
};

/* One HTTP request and the dirty call it waits for. The HTTP side
 * ("finished": the response was written, or the client went away) and the
 * dirty side (a call or a chunk read in flight) may end in either order:
 * whichever ends last frees it. */
typedef struct {
  SoupServerMessage *msg;          /* NULL once finished */
  GCancellable      *cancellable;  /* cancelled when the HTTP client goes */
  DirtyStream       *stream;
  gboolean           busy;         /* a dirty call or read is in flight */
  gulong             finished_id;
  gulong             wrote_chunk_id;
} Exchange;

static void
exchange_free (Exchange *exchange)
{
  g_clear_object (&exchange->stream);
  g_clear_object (&exchange->cancellable);
  g_free (exchange);
}

static void
on_finished (SoupServerMessage *msg,
             gpointer           user_data)
{
  Exchange *exchange = user_data;

  g_clear_signal_handler (&exchange->finished_id, msg);
  g_clear_signal_handler (&exchange->wrote_chunk_id, msg);
  g_cancellable_cancel (exchange->cancellable);   /* a no-op if the call is over */
  g_clear_object (&exchange->msg);
  if (!exchange->busy)
    exchange_free (exchange);
}

/* The request is answered later, from a callback: pause it until then. */
static Exchange *
exchange_new (SoupServerMessage *msg)
{
  Exchange *exchange = g_new0 (Exchange, 1);

  exchange->msg = g_object_ref (msg);
  exchange->cancellable = g_cancellable_new ();
  exchange->busy = TRUE;
  exchange->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_finished), exchange);
  soup_server_message_pause (msg);
  return exchange;
}

/* The callback's first step: FALSE (and the exchange freed) if the HTTP
 * client has gone meanwhile. */
static gboolean
exchange_resume (Exchange *exchange)
{
  exchange->busy = FALSE;
  if (exchange->msg != NULL)
    return TRUE;
  exchange_free (exchange);
  return FALSE;
}

static char *
error_json (const GError *error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, error->domain == DIRTY_ERROR
                                          ? dirty_error_to_wire (error->code) : "failed");
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, error->message);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return dirty_json_to_string (root, FALSE);
}

static guint
http_status_for (const GError *error)
{
  if (error->domain != DIRTY_ERROR)
    return SOUP_STATUS_BAD_GATEWAY;
  switch ((DirtyError) error->code)
    {
    case DIRTY_ERROR_INVALID_ARGUMENT:
      return SOUP_STATUS_BAD_REQUEST;
    case DIRTY_ERROR_TIMEOUT:
      return SOUP_STATUS_GATEWAY_TIMEOUT;
    case DIRTY_ERROR_BUSY:
    case DIRTY_ERROR_NO_WORKER:
    case DIRTY_ERROR_SHUTTING_DOWN:
    case DIRTY_ERROR_CONNECTION:
      return SOUP_STATUS_SERVICE_UNAVAILABLE;
    default:
      return SOUP_STATUS_BAD_GATEWAY;   /* the backend failed */
    }
}

static void
respond_json (SoupServerMessage *msg,
              guint              status,
              char              *json)   /* (transfer full) */
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, json, strlen (json));
}

static void
respond_error (SoupServerMessage *msg,
               const GError      *error)
{
  respond_json (msg, http_status_for (error), error_json (error));
}

static void
respond_bad_request (SoupServerMessage *msg,
                     const char        *message)
{
  g_autoptr(GError) error = g_error_new_literal (DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT, message);

  respond_error (msg, error);
}

/* A query parameter as a finite number; FALSE (and a 400 answer) if it
 * is missing or not one. */
static gboolean
query_double (SoupServerMessage *msg,
              GHashTable        *query,
              const char        *name,
              double            *value)
{
  const char *text = query != NULL ? g_hash_table_lookup (query, name) : NULL;
  char *end = NULL;
  g_autofree char *message = NULL;

  if (text != NULL && *text != '\0')
    {
      *value = g_ascii_strtod (text, &end);
      if (*end == '\0' && isfinite (*value))
        return TRUE;
    }
  message = g_strdup_printf ("query parameter “%s” must be a number", name);
  respond_bad_request (msg, message);
  return FALSE;
}

/* An optional whole-number parameter: *value stays as it is if absent;
 * FALSE (and a 400 answer) if it is out of [min, max] or not a number. */
static gboolean
query_int (SoupServerMessage *msg,
           GHashTable        *query,
           const char        *name,
           gint64             min,
           gint64             max,
           gint64            *value)
{
  const char *text = query != NULL ? g_hash_table_lookup (query, name) : NULL;
  g_autofree char *message = NULL;

  if (text == NULL || g_ascii_string_to_signed (text, 10, min, max, value, NULL))
    return TRUE;
  message = g_strdup_printf ("query parameter “%s” must be a whole number from %" G_GINT64_FORMAT
                             " to %" G_GINT64_FORMAT, name, min, max);
  respond_bad_request (msg, message);
  return FALSE;
}

static void
add_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Exchange *exchange = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) sum = dirty_client_execute_finish (DIRTY_CLIENT (source), result, &error);
  g_autofree char *value = NULL;

  if (!exchange_resume (exchange))
    return;
  if (sum == NULL)
    {
      respond_error (exchange->msg, error);
    }
  else
    {
      value = dirty_json_to_string (sum, FALSE);
      respond_json (exchange->msg, SOUP_STATUS_OK, g_strdup_printf ("{\"result\":%s}", value));
    }
  soup_server_message_unpause (exchange->msg);
}

static void
handle_add (SoupServer        *server,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query,
            gpointer           user_data)
{
  DirtyClient *client = user_data;
  g_autoptr(JsonArray) args = json_array_new ();
  Exchange *exchange;
  double a, b;

  if (!query_double (msg, query, "a", &a) || !query_double (msg, query, "b", &b))
    return;
  json_array_add_double_element (args, a);
  json_array_add_double_element (args, b);
  exchange = exchange_new (msg);
  dirty_client_execute (client, ECHO, "add", args, NULL, exchange->cancellable,
                        add_done_cb, exchange);
}

/* One server-sent event; DATA is one line (JSON has no raw newlines). */
static void
send_event (Exchange   *exchange,
            const char *event,
            const char *data)
{
  SoupMessageBody *body = soup_server_message_get_response_body (exchange->msg);
  g_autofree char *text = event != NULL
                          ? g_strdup_printf ("event: %s\ndata: %s\n\n", event, data)
                          : g_strdup_printf ("data: %s\n\n", data);
  gsize length = strlen (text);

  soup_message_body_append (body, SOUP_MEMORY_TAKE, g_steal_pointer (&text), length);
  soup_server_message_unpause (exchange->msg);
}

static void next_token_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static void
read_next_token (Exchange *exchange)
{
  exchange->busy = TRUE;
  dirty_stream_next_chunk (exchange->stream, exchange->cancellable, next_token_cb, exchange);
}

/* The last token reached the socket: only now read the next one. */
static void
on_wrote_chunk (SoupServerMessage *msg,
                gpointer           user_data)
{
  Exchange *exchange = user_data;

  if (!exchange->busy && exchange->stream != NULL)
    read_next_token (exchange);
}

static void
next_token_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Exchange *exchange = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) token = dirty_stream_next_chunk_finish (DIRTY_STREAM (source), result, &error);
  g_autofree char *data = NULL;

  if (!exchange_resume (exchange))
    return;
  if (token != NULL)
    {
      data = dirty_json_to_string (token, FALSE);
      send_event (exchange, NULL, data);   /* on_wrote_chunk reads the next */
      return;
    }
  g_clear_object (&exchange->stream);
  if (error != NULL)
    {
      /* The status line has gone: the error travels as an event. */
      data = error_json (error);
      send_event (exchange, "error", data);
    }
  else
    {
      send_event (exchange, "end", "{}");
    }
  soup_message_body_complete (soup_server_message_get_response_body (exchange->msg));
}

static void
generate_started_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Exchange *exchange = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyStream) stream = dirty_client_stream_finish (DIRTY_CLIENT (source), result, &error);
  SoupMessageHeaders *headers;

  if (!exchange_resume (exchange))
    return;
  if (stream == NULL)
    {
      respond_error (exchange->msg, error);
      soup_server_message_unpause (exchange->msg);
      return;
    }
  headers = soup_server_message_get_response_headers (exchange->msg);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  soup_server_message_set_status (exchange->msg, SOUP_STATUS_OK, NULL);
  exchange->stream = g_steal_pointer (&stream);
  exchange->wrote_chunk_id = g_signal_connect (exchange->msg, "wrote-chunk",
                                               G_CALLBACK (on_wrote_chunk), exchange);
  read_next_token (exchange);
}

static void
handle_generate (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  DirtyClient *client = user_data;
  g_autoptr(JsonObject) kwargs = json_object_new ();
  Exchange *exchange;
  gint64 words = 50, seed = -1;

  if (!query_int (msg, query, "words", 1, MAX_WORDS, &words) ||
      !query_int (msg, query, "seed", 0, G_MAXINT32, &seed))
    return;
  json_object_set_int_member (kwargs, "words", words);
  if (seed >= 0)   /* else the app picks one */
    json_object_set_int_member (kwargs, "seed", seed);
  exchange = exchange_new (msg);
  dirty_client_stream (client, MARKOV, "generate", NULL, kwargs, exchange->cancellable,
                       generate_started_cb, exchange);
}

static gboolean
on_quit_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- an HTTP front end to dirty-arbiter");
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  GSList *uris;

  /* --help and error messages in the user's language and charset */
  setlocale (LC_ALL, "");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("dirty-http-service: %s\n", error->message);
      return 2;
    }
  /* Before the loop runs, so blocking here blocks nobody. */
  client = dirty_client_new_sync (socket_path, NULL, &error);
  if (client == NULL)
    {
      g_printerr ("dirty-http-service: %s\n", error->message);
      return 1;
    }
  if (timeout_ms > 0)
    dirty_client_set_timeout (client, (guint) timeout_ms);
  server = soup_server_new ("server-header", "dirty-http-service ", NULL);
  soup_server_add_handler (server, "/add", handle_add, client, NULL);
  soup_server_add_handler (server, "/generate", handle_generate, client, NULL);
  if (port < 0 || port > 65535 ||
      !soup_server_listen_local (server, (guint) port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      g_printerr ("dirty-http-service: cannot listen on port %d: %s\n", port,
                  error != NULL ? error->message : "not a port number");
      return 1;
    }
  uris = soup_server_get_uris (server);
  if (uris != NULL)
    {
      g_autofree char *uri = g_uri_to_string (uris->data);
      printf ("listening on %s\n", uri);
      fflush (stdout);
    }
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_unix_signal_add (SIGINT, on_quit_signal, loop);
  g_unix_signal_add (SIGTERM, on_quit_signal, loop);
  g_main_loop_run (loop);
  return 0;
}
