/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtyctl workers and dirtyctl reload: MANAGE requests
 * (docs/protocol.md, "MANAGE"). */
#include "config.h"

#include "dirtyctl.h"

/* Sends MANAGE @verb with @params and prints member @member of the
 * answer after @label. */
static int
manage (const char *verb,
        JsonObject *params,
        const char *label,
        const char *member)
{
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(DirtyctlRun) run;
  int status;

  dirtyctl_run_init (&run);
  if ((client = dirtyctl_connect (&error)) == NULL)
    return dirtyctl_fail (error);
  dirty_client_manage (client, verb, params, run.cancellable, dirtyctl_run_store_cb, &run);
  if ((status = dirtyctl_run_control (&run)) == DIRTYCTL_EXIT_TIMEOUT)
    g_printerr (_("dirtyctl: the %s request was sent: it may still take effect when the "
                  "arbiter resumes\n"), verb);
  if (status != DIRTYCTL_EXIT_OK)
    return status;
  if ((answer = dirty_client_manage_finish (client, run.result, &error)) == NULL)
    return dirtyctl_fail (error);
  if (JSON_NODE_HOLDS_OBJECT (answer))
    g_print ("%s %" G_GINT64_FORMAT "\n", label,
             dirtyctl_get_int (json_node_get_object (answer), member));
  return DIRTYCTL_EXIT_OK;
}

int
dirtyctl_workers (int    argc,
                  char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(JsonObject) params = json_object_new ();
  gint64 n;
  char *end;

  context = dirtyctl_context_new ("workers add|remove N",
    N_("Starts N more workers, or stops N workers (each finishes its calls in\n"
    "flight first), and prints the new number of worker slots. The arbiter\n"
    "never removes the last worker an app needs (per-app counts, MODULE:Type:N).\n"
    "Like SIGTTIN/SIGTTOU, but by any number and with an answer. Only root and\n"
    "the arbiter's own user may do this."),
    N_("Examples:\n"
    "  dirtyctl workers add 2\n"
    "  dirtyctl workers remove 1\n"),
    NULL);
  dirtyctl_add_control_options (context);
  if (!dirtyctl_parse (context, &argc, &argv))
    return DIRTYCTL_EXIT_USAGE;
  if (argc != 3 || (!g_str_equal (argv[1], "add") && !g_str_equal (argv[1], "remove")))
    return dirtyctl_usage (_("usage: dirtyctl workers add|remove N"));
  n = g_ascii_strtoll (argv[2], &end, 10);
  if (*argv[2] == '\0' || *end != '\0' || n < 1 || n > G_MAXINT32)
    return dirtyctl_usage (_("N must be a positive number, not “%s”"), argv[2]);

  json_object_set_int_member (params, "delta", g_str_equal (argv[1], "add") ? n : -n);
  /* TRANSLATORS: printed before the new number of workers */
  return manage ("workers", params, _("workers:"), "workers");
}

int
dirtyctl_reload (int    argc,
                 char **argv)
{
  g_autoptr(GOptionContext) context = NULL;

  context = dirtyctl_context_new ("reload",
    N_("Makes the arbiter re-read its configuration, as SIGHUP does, and waits\n"
    "for its answer: new workers start with the new configuration and take\n"
    "new calls once ready; the old ones finish their calls, then exit. No call\n"
    "is dropped. An invalid configuration is refused (exit status 3, with the\n"
    "file, line and key) and the old one keeps serving. An app that served\n"
    "before and does not start in the new workers keeps the old workers that\n"
    "serve it until it does (“dirtyctl status” shows it). Prints the new\n"
    "configuration generation. Only root and the arbiter's own user may do this."),
    NULL, NULL);
  dirtyctl_add_control_options (context);
  if (!dirtyctl_parse (context, &argc, &argv))
    return DIRTYCTL_EXIT_USAGE;
  if (argc > 1)
    return dirtyctl_usage (_("reload takes no arguments"));
  /* TRANSLATORS: printed before the new configuration generation */
  return manage ("reload", NULL, _("generation:"), "generation");
}
