/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* dirty-demo: calls the example apps through libdirty-glib.
 *
 *   dirty-demo [--socket PATH] [--image FILE [--size N] [--output FILE]]
 *
 * - echo:DirtyEchoApp "echo", synchronously;
 * - counter:DirtyCounterApp "incr", several calls in flight at once on a
 *   GMainLoop;
 * - markov:DirtyMarkovApp "generate", streamed: its tokens are printed
 *   as they arrive, then the count;
 * - thumbnail:DirtyThumbnailApp "thumbnail" of --image, if given.
 *
 * Each result is printed as JSON on its own line. */

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include <dirty.h>

#define N_INCR 5

static char *socket_path;
static char *image_path;
static char *output_path;
static int thumbnail_size = 64;

static const GOptionEntry entries[] = {
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
    "The arbiter's socket (default: $DIRTY_ARBITER_SOCKET or the session's)", "PATH" },
  { "image", 'i', 0, G_OPTION_ARG_FILENAME, &image_path,
    "An image to make a thumbnail of", "FILE" },
  { "size", 0, 0, G_OPTION_ARG_INT, &thumbnail_size, "The thumbnail's size (64)", "N" },
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output_path,
    "Where to write the thumbnail PNG", "FILE" },
  { NULL }
};

static void
print_result (const char *what,
              JsonNode   *result)
{
  g_autofree char *json = dirty_json_to_string (result, FALSE);

  g_print ("%s: %s\n", what, json);
}

static void
print_error (const char   *what,
             const GError *error)
{
  const char *detail = dirty_error_get_detail (error);

  g_printerr ("%s failed: %s\n", what, error->message);
  if (detail != NULL)
    g_printerr ("%s\n", detail);
}

static gboolean
demo_echo (DirtyClient *client)
{
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(JsonObject) extra = json_object_new ();
  g_autoptr(JsonNode) result = NULL;
  g_autoptr(GError) error = NULL;

  json_object_set_boolean_member (extra, "nested", TRUE);
  json_array_add_string_element (args, "hello");
  json_array_add_int_element (args, 42);
  json_array_add_object_element (args, g_steal_pointer (&extra));

  result = dirty_client_execute_sync (client, "echo:DirtyEchoApp", "echo", args, NULL,
                                      NULL, &error);
  if (result == NULL)
    {
      print_error ("echo", error);
      return FALSE;
    }
  print_result ("echo", result);
  return TRUE;
}

typedef struct {
  GMainLoop *loop;
  guint      pending;
  gboolean   ok;
} IncrState;

static void
incr_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  IncrState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) value = dirty_client_execute_finish (DIRTY_CLIENT (source), result,
                                                           &error);

  if (value == NULL)
    {
      print_error ("counter incr", error);
      state->ok = FALSE;
    }
  else
    print_result ("counter incr", value);

  if (--state->pending == 0)
    g_main_loop_quit (state->loop);
}

static gboolean
demo_counter (DirtyClient *client)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  IncrState state = { loop, 0, TRUE };

  /* all in flight at once on one connection; replies come back in any
   * order and are matched by id */
  for (int i = 1; i <= N_INCR; i++)
    {
      g_autoptr(JsonArray) args = json_array_new ();

      json_array_add_int_element (args, i);
      state.pending++;
      dirty_client_execute (client, "counter:DirtyCounterApp", "incr", args, NULL,
                            NULL, incr_cb, &state);
    }
  g_main_loop_run (loop);
  return state.ok;
}

static gboolean
demo_thumbnail (DirtyClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMappedFile) file = NULL;
  g_autoptr(GBytes) image = NULL;
  g_autoptr(DirtyRequest) request = NULL;
  g_autoptr(DirtyReply) reply = NULL;
  g_autoptr(JsonNode) size = NULL;
  g_autoptr(JsonNode) summary = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  GBytes *png;

  file = g_mapped_file_new (image_path, FALSE, &error);
  if (file == NULL)
    {
      print_error ("reading the image", error);
      return FALSE;
    }
  image = g_mapped_file_get_bytes (file);

  request = dirty_request_new ("thumbnail:DirtyThumbnailApp", "thumbnail");
  dirty_request_add_bytes (request, image);
  size = json_node_init_int (json_node_alloc (), thumbnail_size);
  dirty_request_set_kwarg (request, "size", size);

  reply = dirty_client_send_sync (client, request, NULL, &error);
  if (reply == NULL)
    {
      print_error ("thumbnail", error);
      return FALSE;
    }

  png = dirty_reply_get_bytes (reply);
  if (png == NULL)
    {
      /* not bytes: show whatever came back */
      print_result ("thumbnail", dirty_reply_get_result (reply));
      return TRUE;
    }
  if (output_path != NULL &&
      !g_file_set_contents (output_path, g_bytes_get_data (png, NULL),
                            g_bytes_get_size (png), &error))
    {
      print_error ("writing the thumbnail", error);
      return FALSE;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "png_bytes");
  json_builder_add_int_value (builder, g_bytes_get_size (png));
  json_builder_set_member_name (builder, "output");
  if (output_path != NULL)
    json_builder_add_string_value (builder, output_path);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  summary = json_builder_get_root (builder);
  print_result ("thumbnail", summary);
  return TRUE;
}

/* A streamed call read with blocking calls: each token as it arrives. */
static gboolean
demo_stream (DirtyClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) kwargs = json_object_new ();
  g_autoptr(DirtyStream) stream = NULL;
  g_autoptr(JsonNode) token = NULL;
  guint n = 0;

  json_object_set_int_member (kwargs, "words", 30);
  json_object_set_int_member (kwargs, "seed", 7);
  stream = dirty_client_stream_sync (client, "markov:DirtyMarkovApp", "generate",
                                     NULL, kwargs, NULL, &error);
  if (stream == NULL)
    {
      print_error ("markov stream", error);
      return FALSE;
    }
  g_print ("markov stream: ");
  while ((token = dirty_stream_next_chunk_sync (stream, NULL, &error)) != NULL)
    {
      g_print ("%s", json_node_get_string (token));
      g_clear_pointer (&token, json_node_unref);
      n++;
    }
  if (error != NULL)
    {
      g_print ("\n");
      print_error ("markov stream", error);
      return FALSE;
    }
  g_print ("\nmarkov stream: %u tokens, then the end\n", n);
  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- call the example apps");
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = NULL;
  gboolean ok = TRUE;

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
  dirty_client_set_timeout (client, 30000);

  ok = demo_echo (client) && ok;
  ok = demo_counter (client) && ok;
  ok = demo_stream (client) && ok;
  if (image_path != NULL)
    ok = demo_thumbnail (client) && ok;

  g_free (socket_path);
  g_free (image_path);
  g_free (output_path);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
