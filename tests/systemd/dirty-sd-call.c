/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* dirty-sd-call: one call through libdirty-glib, for the systemd tests.
 *
 *   dirty-sd-call [--socket PATH] [--timeout MS] APP ACTION [JSON-ARG...]
 *
 * Prints the result as JSON and exits 0; on an error prints
 * "error: CODE: MESSAGE" (CODE as on the wire, e.g. "timeout") to stdout
 * and exits 1; exits 2 on a usage error. */

#include <stdio.h>
#include <stdlib.h>

#include <dirty.h>

static char *socket_path;
static int timeout_ms;

static const GOptionEntry entries[] = {
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
    "The arbiter's socket (default: $DIRTY_ARBITER_SOCKET or the default one)", "PATH" },
  { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms,
    "The call's timeout in milliseconds (default: the client's)", "MS" },
  G_OPTION_ENTRY_NULL
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("APP ACTION [JSON-ARG...]");
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonArray) args = json_array_new ();
  g_autoptr(JsonNode) result = NULL;
  g_autofree char *text = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc < 3)
    {
      fprintf (stderr, "dirty-sd-call: %s\n", error ? error->message : "APP and ACTION needed");
      return 2;
    }
  for (int i = 3; i < argc; i++)
    {
      JsonNode *arg = json_from_string (argv[i], &error);

      if (arg == NULL)
        {
          fprintf (stderr, "dirty-sd-call: argument %d: %s\n", i - 2,
                   error ? error->message : "empty");
          return 2;
        }
      json_array_add_element (args, arg);
    }

  client = dirty_client_new_sync (socket_path, NULL, &error);
  if (client != NULL && timeout_ms > 0)
    dirty_client_set_timeout (client, (guint) timeout_ms);
  if (client != NULL)
    result = dirty_client_execute_sync (client, argv[1], argv[2], args, NULL, NULL, &error);
  if (result == NULL)
    {
      printf ("error: %s: %s\n",
              error->domain == DIRTY_ERROR ? dirty_error_to_wire (error->code) : "other",
              error->message);
      return 1;
    }
  text = json_to_string (result, FALSE);
  printf ("%s\n", text);
  return 0;
}
