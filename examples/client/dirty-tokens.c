/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* dirty-tokens: prints the tokens of markov:DirtyMarkovApp as they
 * arrive, the way a chat UI shows a language model's answer.
 *
 *   dirty-tokens [--socket PATH] [--words N] [--seed N] [--sync-action] [--lines]
 *
 * By default it reads chunk by chunk with dirty_stream_next_chunk() on a
 * GMainLoop, printing each token at once. With --lines it reads the same
 * stream through its GInputStream face, a line (a sentence) at a time,
 * with a GDataInputStream, also on the main loop. --sync-action calls the
 * sync generator ("generate") instead of the async one. */

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include <dirty.h>

#define MARKOV "markov:DirtyMarkovApp"

static char *socket_path;
static int n_words = 60;
static int seed = -1;
static gboolean sync_action;
static gboolean lines;

static const GOptionEntry entries[] = {
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
    "The arbiter's socket (default: $DIRTY_ARBITER_SOCKET or the session's)", "PATH" },
  { "words", 'n', 0, G_OPTION_ARG_INT, &n_words, "How many words (60)", "N" },
  { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random seed (default: random)", "N" },
  { "sync-action", 0, 0, G_OPTION_ARG_NONE, &sync_action,
    "Call the sync generator instead of the async one", NULL },
  { "lines", 'l', 0, G_OPTION_ARG_NONE, &lines,
    "Read whole lines through GDataInputStream", NULL },
  { NULL }
};

typedef struct {
  GMainLoop        *loop;
  GDataInputStream *data;
  guint             count;
  int               status;
} Reader;

static void
reader_fail (Reader       *reader,
             const GError *error)
{
  g_printerr ("\nstream failed: %s\n", error->message);
  reader->status = 1;
  g_main_loop_quit (reader->loop);
}

static void
next_token_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Reader *reader = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) token = dirty_stream_next_chunk_finish (DIRTY_STREAM (source),
                                                              result, &error);

  if (error != NULL)
    return reader_fail (reader, error);
  if (token == NULL)
    {
      g_print ("\n[%u tokens]\n", reader->count);
      g_main_loop_quit (reader->loop);
      return;
    }
  /* as it arrives: no buffering behind the reader's back */
  fputs (json_node_get_string (token), stdout);
  fflush (stdout);
  reader->count++;
  dirty_stream_next_chunk (DIRTY_STREAM (source), NULL, next_token_cb, reader);
}

static void
next_line_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Reader *reader = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (reader->data, result,
                                                                     NULL, &error);

  if (error != NULL)
    return reader_fail (reader, error);
  if (line == NULL)
    {
      g_print ("[%u lines]\n", reader->count);
      g_main_loop_quit (reader->loop);
      return;
    }
  g_print ("%2u| %s\n", ++reader->count, g_strstrip (line));
  g_data_input_stream_read_line_async (reader->data, G_PRIORITY_DEFAULT, NULL,
                                       next_line_cb, reader);
}

static void
stream_started_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Reader *reader = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyStream) stream = dirty_client_stream_finish (DIRTY_CLIENT (source),
                                                              result, &error);

  if (stream == NULL)
    return reader_fail (reader, error);
  if (!lines)
    {
      dirty_stream_next_chunk (stream, NULL, next_token_cb, reader);
      return;
    }
  /* the GInputStream face: DirtyStream is pollable, so this reads on the
   * main loop, not in a thread */
  reader->data = g_data_input_stream_new (G_INPUT_STREAM (stream));
  g_data_input_stream_read_line_async (reader->data, G_PRIORITY_DEFAULT, NULL,
                                       next_line_cb, reader);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- stream tokens from markov.so");
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonObject) kwargs = json_object_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Reader reader = { loop, NULL, 0, 0 };

  /* --help and error messages in the user's language and charset */
  setlocale (LC_ALL, "");

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  client = dirty_client_new_sync (socket_path, NULL, &error);
  if (client == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  json_object_set_int_member (kwargs, "words", n_words);
  if (seed >= 0)
    json_object_set_int_member (kwargs, "seed", seed);
  dirty_client_stream (client, MARKOV, sync_action ? "generate" : "generate_async",
                       NULL, kwargs, NULL, stream_started_cb, &reader);
  g_main_loop_run (loop);
  g_clear_object (&reader.data);
  return reader.status;
}
