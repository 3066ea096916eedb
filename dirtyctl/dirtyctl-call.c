/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtyctl call and dirtyctl stream: one action, its arguments from the
 * command line, its result or its chunks on stdout. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dirtyctl.h"

typedef struct {
  char       **kwargs;
  int          timeout_ms;
  char        *output;
} CallOptions;

static CallOptions options;

static gboolean
parse_call_timeout (const char  *option,
                    const char  *value,
                    gpointer     data,
                    GError     **error)
{
  return dirtyctl_parse_timeout (value, &options.timeout_ms, error);
}

static GOptionEntry call_entries[] = {
  { "kwarg", 'k', 0, G_OPTION_ARG_STRING_ARRAY, &options.kwargs,
    N_("A keyword argument; VALUE is parsed like ARG (repeatable)"), N_("NAME=VALUE") },
  { "timeout", 't', 0, G_OPTION_ARG_CALLBACK, parse_call_timeout,
    N_("The call's timeout in milliseconds (default: the arbiter's dirty_timeout)"), N_("MS") },
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, &options.output,
    N_("Write the result there instead of stdout: its bytes when it is bytes, else its JSON "
       "(stream: the bytes chunks, one after the other); FILE is replaced"), N_("FILE") },
  G_OPTION_ENTRY_NULL
};

static const char args_help[] = N_(
  "Arguments:\n"
  "  APP is the app's name as configured (MODULE:TypeName), ACTION one of its\n"
  "  actions. Each ARG, and each --kwarg VALUE, is parsed as JSON (42, 1.5,\n"
  "  true, null, \"text\", [1,2], {\"a\":1}); what does not parse is passed as\n"
  "  a string, so plain words need no quotes. @PATH passes the bytes of the\n"
  "  file PATH as a bytes argument (raw, never base64), @- those of standard\n"
  "  input. To pass a string that starts with @, quote it as JSON: '\"@home\"'.\n");

/* ---- arguments ---- */

/* @text with ".0" after each integer that does not fit 64 bits, outside
 * strings, so json-glib reads it as the nearest double, as the protocol
 * does: json-glib 1.6 wraps such an integer around instead (2^64 - 1
 * would be sent as -1). */
static char *
fit_integers (const char *text)
{
  GString *out = g_string_new (NULL);
  const char *p = text;

  while (*p != '\0')
    {
      const char *start = p;
      gboolean integer = TRUE;

      if (*p == '"')
        {
          for (p++; *p != '\0' && *p != '"'; p++)
            if (*p == '\\' && p[1] != '\0')
              p++;
          p += *p == '"';
        }
      else if (*p == '-' || g_ascii_isdigit (*p))
        {
          /* a whole number token: -?digits(.digits)?([eE][+-]?digits)? */
          p += *p == '-';
          while (g_ascii_isdigit (*p))
            p++;
          if (*p == '.' || *p == 'e' || *p == 'E')
            {
              integer = FALSE;
              p++;
              while (g_ascii_isdigit (*p) || *p == '.' || *p == 'e' || *p == 'E' ||
                     *p == '+' || *p == '-')
                p++;
            }
        }
      else
        p++;
      g_string_append_len (out, start, p - start);
      if (integer && p - start >= 19 && g_ascii_isdigit (p[-1]))
        {
          g_autofree char *digits = g_strndup (start, p - start);

          if (!g_ascii_string_to_signed (digits, 10, G_MININT64, G_MAXINT64, NULL, NULL))
            g_string_append (out, ".0");
        }
    }
  return g_string_free (out, FALSE);
}

static guint stdin_taken;

/* ARG or VALUE: @PATH as bytes (set in @bytes), else JSON, else a string */
static gboolean
parse_value (const char  *text,
             JsonNode   **node,
             GBytes     **bytes,
             GError     **error)
{
  g_autoptr(JsonNode) parsed = NULL;
  g_autofree char *fitted = NULL;

  *node = NULL;
  *bytes = NULL;
  if (text[0] == '@')
    {
      g_autofree char *contents = NULL;
      gsize length;

      /* @- is standard input, to the end: a pipe has one end */
      if (g_str_equal (text, "@-") && stdin_taken++ > 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               _("@- (standard input) can be given once"));
          return FALSE;
        }
      if (!g_file_get_contents (g_str_equal (text, "@-") ? "/dev/stdin" : text + 1,
                                &contents, &length, error))
        return FALSE;
      *bytes = g_bytes_new_take (g_steal_pointer (&contents), length);
      return TRUE;
    }
  fitted = fit_integers (text);
  parsed = json_from_string (fitted, NULL);
  *node = parsed != NULL ? g_steal_pointer (&parsed)
                         : json_node_init_string (json_node_alloc (), text);
  return TRUE;
}

static gboolean
add_arg (DirtyRequest  *request,
         const char    *text,
         GError       **error)
{
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GBytes) bytes = NULL;

  if (!parse_value (text, &node, &bytes, error))
    return FALSE;
  if (bytes != NULL)
    dirty_request_add_bytes (request, bytes);
  else
    dirty_request_add_arg (request, node);
  return TRUE;
}

static gboolean
add_kwarg (DirtyRequest  *request,
           const char    *text,
           GError       **error)
{
  const char *equals = strchr (text, '=');
  g_autofree char *name = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GBytes) bytes = NULL;

  if (equals == NULL || equals == text)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--kwarg takes NAME=VALUE, not “%s”"), text);
      return FALSE;
    }
  name = g_strndup (text, equals - text);
  if (!parse_value (equals + 1, &node, &bytes, error))
    return FALSE;
  if (bytes != NULL)
    dirty_request_set_kwarg_bytes (request, name, bytes);
  else
    dirty_request_set_kwarg (request, name, node);
  return TRUE;
}

/* Parses the verb's command line into a request, or returns NULL having
 * printed why (@status: the exit code). */
static DirtyRequest *
build_request (const char  *parameters,
               const char  *summary,
               const char  *description,
               int          argc,
               char       **argv,
               int         *status)
{
  /* the arguments' help, then the verb's examples (both N_() texts) */
  g_autofree char *full = g_strconcat (_(args_help), "\n", _(description), NULL);
  g_autoptr(GOptionContext) context = dirtyctl_context_new (parameters, summary, full,
                                                             call_entries);
  g_autoptr(DirtyRequest) request = NULL;
  g_autoptr(GError) error = NULL;

  *status = DIRTYCTL_EXIT_USAGE;
  if (!dirtyctl_parse (context, &argc, &argv))
    return NULL;
  if (argc < 3)
    {
      dirtyctl_usage (_("%s needs APP and ACTION (see “%s --help”)"), argv[0], argv[0]);
      return NULL;
    }
  if (*argv[1] == '\0' || *argv[2] == '\0')
    {
      dirtyctl_usage (_("%s needs a non-empty APP and ACTION"), argv[0]);
      return NULL;
    }
  request = dirty_request_new (argv[1], argv[2]);
  dirty_request_set_timeout (request, (guint) options.timeout_ms);
  for (int i = 3; i < argc; i++)
    if (!add_arg (request, argv[i], &error))
      break;
  for (guint i = 0; error == NULL && options.kwargs && options.kwargs[i]; i++)
    add_kwarg (request, options.kwargs[i], &error);
  if (error != NULL)
    {
      dirtyctl_usage ("%s", error->message);
      return NULL;
    }
  return g_steal_pointer (&request);
}

/* ---- output ---- */

typedef GBytes *(*LookupBytes) (gpointer owner, JsonNode *node);

/* A copy of @node where each bytes reference says its size:
 * {"$bytes": 0, "size": 1234}. */
static JsonNode *
summarise (JsonNode    *node,
           LookupBytes  lookup,
           gpointer     owner)
{
  GBytes *bytes = lookup (owner, node);

  if (bytes != NULL)
    {
      g_autoptr(JsonObject) object = json_object_new ();

      /* json_node_init_object () and _array () take a reference of their own */
      json_object_set_int_member (object, "$bytes",
                                  json_object_get_int_member (json_node_get_object (node), "$bytes"));
      json_object_set_int_member (object, "size", (gint64) g_bytes_get_size (bytes));
      return json_node_init_object (json_node_alloc (), object);
    }
  /* new containers: the reply's nodes are sealed */
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      g_autoptr(JsonArray) out = json_array_sized_new (json_array_get_length (array));

      for (guint i = 0; i < json_array_get_length (array); i++)
        json_array_add_element (out, summarise (json_array_get_element (array, i), lookup, owner));
      return json_node_init_array (json_node_alloc (), out);
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      g_autoptr(JsonObject) out = json_object_new ();

      /* in the order the action wrote them */
      json_object_iter_init_ordered (&iter, json_node_get_object (node));
      while (json_object_iter_next_ordered (&iter, &name, &member))
        json_object_set_member (out, name, summarise (member, lookup, owner));
      return json_node_init_object (json_node_alloc (), out);
    }
  return json_node_copy (node);
}

static int
print_reply (DirtyReply *reply)
{
  GBytes *bytes = dirty_reply_get_bytes (reply);
  g_autoptr(JsonNode) shown = summarise (dirty_reply_get_result (reply),
                                         (LookupBytes) dirty_reply_lookup_bytes, reply);
  g_autofree char *json = dirty_json_to_string (shown, TRUE);
  g_autofree char *line = g_strconcat (json, "\n", NULL);
  g_autoptr(GError) error = NULL;

  if (options.output == NULL)
    {
      if (!dirtyctl_print_out (line, strlen (line), &error))
        return dirtyctl_usage ("%s", error->message);
      if (bytes != NULL)
        g_printerr (_("dirtyctl: the result is %lu bytes; --output FILE writes them\n"),
                    (unsigned long) g_bytes_get_size (bytes));
      return DIRTYCTL_EXIT_OK;
    }
  if (bytes != NULL)
    dirtyctl_write_output (options.output, g_bytes_get_data (bytes, NULL),
                           g_bytes_get_size (bytes), &error);
  else
    dirtyctl_write_output (options.output, line, strlen (line), &error);
  if (error != NULL)
    return dirtyctl_usage ("%s", error->message);
  return DIRTYCTL_EXIT_OK;
}

/* ---- call ---- */

static void
call_reply_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  DirtyctlRun *run = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyReply) reply = dirty_client_send_finish (DIRTY_CLIENT (source), result, &error);

  if (reply == NULL)
    dirtyctl_run_done (run, run->interrupted ? DIRTYCTL_EXIT_INTERRUPTED : dirtyctl_fail (error));
  else
    dirtyctl_run_done (run, print_reply (reply));
}

int
dirtyctl_call (int    argc,
               char **argv)
{
  g_autoptr(DirtyRequest) request = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  DirtyctlRun run;
  int status;

  request = build_request ("call APP ACTION [ARG...]",
                           N_("Calls ACTION of APP in a worker and prints its result as JSON.\n"
                           "A result that is bytes is summarised as {\"$bytes\": 0, \"size\": N}\n"
                           "unless --output FILE is given, which gets the raw bytes."),
                           N_("Examples:\n"
                           "  dirtyctl call echo:DirtyEchoApp add 20 22\n"
                           "  dirtyctl call thumbnail:DirtyThumbnailApp thumbnail @photo.jpg \\\n"
                           "      --kwarg size=128 --output thumb.png\n"
                           "  dirtyctl call slow:DirtySlowApp sleep 10 --timeout 500   # exit 5\n"),
                           argc, argv, &status);
  if (request == NULL)
    return status;
  if (options.output != NULL && !dirtyctl_check_output (options.output, &error))
    return dirtyctl_usage ("%s", error->message);
  if ((client = dirtyctl_connect (&error)) == NULL)
    return dirtyctl_fail (error);

  dirtyctl_run_init (&run);
  dirty_client_send (client, request, run.cancellable, call_reply_cb, &run);
  status = dirtyctl_run_until (&run);
  dirtyctl_run_clear (&run);
  return status;
}

/* ---- stream ---- */

typedef struct {
  DirtyctlRun    run;
  DirtyStream   *stream;
  GOutputStream *output;   /* --output, opened before the call */
} StreamState;

static void stream_next_cb (GObject      *source,
                            GAsyncResult *result,
                            gpointer      user_data);

static gboolean
print_chunk (StreamState  *state,
             JsonNode     *chunk,
             GError      **error)
{
  DirtyStream *stream = state->stream;
  GBytes *bytes = dirty_stream_lookup_bytes (stream, chunk);
  g_autoptr(JsonNode) shown = NULL;
  g_autofree char *line = NULL;

  if (bytes != NULL && state->output != NULL)
    return g_output_stream_write_all (state->output, g_bytes_get_data (bytes, NULL),
                                      g_bytes_get_size (bytes), NULL, NULL, error);
  /* text as the action wrote it: a generator of tokens reads naturally */
  if (JSON_NODE_HOLDS_VALUE (chunk) && json_node_get_value_type (chunk) == G_TYPE_STRING)
    {
      const char *text = json_node_get_string (chunk);

      return dirtyctl_print_out (text, strlen (text), error);
    }
  shown = summarise (chunk, (LookupBytes) dirty_stream_lookup_bytes, stream);
  line = dirty_json_to_string (shown, FALSE);
  return dirtyctl_print_out (line, strlen (line), error) && dirtyctl_print_out ("\n", 1, error);
}

static void
stream_read_next (StreamState *state)
{
  dirty_stream_next_chunk (state->stream, state->run.cancellable, stream_next_cb, state);
}

static void
stream_next_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  StreamState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) chunk = dirty_stream_next_chunk_finish (DIRTY_STREAM (source), result,
                                                              &error);

  if (chunk != NULL && print_chunk (state, chunk, &error))
    stream_read_next (state);
  else if (error == NULL)
    dirtyctl_run_done (&state->run, DIRTYCTL_EXIT_OK);   /* the end */
  else if (state->run.interrupted)
    dirtyctl_run_done (&state->run, DIRTYCTL_EXIT_INTERRUPTED);
  else if (error->domain == G_IO_ERROR)
    dirtyctl_run_done (&state->run, dirtyctl_usage ("%s", error->message));
  else
    dirtyctl_run_done (&state->run, dirtyctl_fail (error));
}

static void
stream_started_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  StreamState *state = user_data;
  g_autoptr(GError) error = NULL;

  state->stream = dirty_client_send_stream_finish (DIRTY_CLIENT (source), result, &error);
  if (state->stream != NULL)
    stream_read_next (state);
  else
    dirtyctl_run_done (&state->run, state->run.interrupted ? DIRTYCTL_EXIT_INTERRUPTED
                                                           : dirtyctl_fail (error));
}

int
dirtyctl_stream (int    argc,
                 char **argv)
{
  g_autoptr(DirtyRequest) request = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  StreamState state = { 0, };
  int status;

  request = build_request ("stream APP ACTION [ARG...]",
                           N_("Calls ACTION of APP as a stream and prints each chunk as it arrives:\n"
                           "string chunks as they are (no newline added), other chunks as one\n"
                           "line of JSON each. Bytes chunks go to --output FILE (replaced), or\n"
                           "are summarised as {\"$bytes\": 0, \"size\": N}. Ctrl-C cancels the call\n"
                           "in its worker and exits with status 130. The timeout covers the\n"
                           "whole stream."),
                           N_("Examples:\n"
                           "  dirtyctl stream markov:DirtyMarkovApp generate --kwarg words=50\n"
                           "  dirtyctl stream myapp:MyApp export @query.json --output dump.bin\n"),
                           argc, argv, &status);
  if (request == NULL)
    return status;
  if (options.output != NULL &&
      (state.output = dirtyctl_open_output (options.output, &error)) == NULL)
    return dirtyctl_usage ("%s", error->message);
  if ((client = dirtyctl_connect (&error)) == NULL)
    return dirtyctl_fail (error);

  dirtyctl_run_init (&state.run);
  dirty_client_send_stream (client, request, state.run.cancellable, stream_started_cb, &state);
  status = dirtyctl_run_until (&state.run);
  /* an unfinished stream's last reference cancels it in the worker */
  g_clear_object (&state.stream);
  dirtyctl_run_clear (&state.run);
  /* what came is kept, even when the stream failed on the way */
  if (state.output != NULL && !g_output_stream_close (state.output, NULL, &error) &&
      status == DIRTYCTL_EXIT_OK)
    status = dirtyctl_usage ("%s", error->message);
  g_clear_object (&state.output);
  return status;
}
