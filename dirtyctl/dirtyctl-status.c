/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtyctl status and dirtyctl metrics: the arbiter's STATUS object
 * (docs/protocol.md, "STATUS") as a table, as JSON, or as OpenMetrics. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dirtyctl.h"

static gboolean opt_json;

static GOptionEntry status_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json,
    N_("Print the STATUS object as the arbiter sent it (see docs/protocol.md)"), NULL },
  G_OPTION_ENTRY_NULL
};

JsonNode *
dirtyctl_query_status (int *status)
{
  g_autoptr(DirtyClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(DirtyctlRun) run;
  JsonNode *node = NULL;

  dirtyctl_run_init (&run);
  if ((client = dirtyctl_connect (&error)) != NULL)
    {
      dirty_client_query_status (client, run.cancellable, dirtyctl_run_store_cb, &run);
      if ((*status = dirtyctl_run_control (&run)) != DIRTYCTL_EXIT_OK)
        return NULL;
      node = dirty_client_query_status_finish (client, run.result, &error);
    }
  if (node != NULL && !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_clear_pointer (&node, json_node_unref);
      g_set_error_literal (&error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           _("the arbiter's status is not a JSON object"));
    }
  if (node == NULL)
    *status = dirtyctl_fail (error);
  return node;
}

/* Members that an older or newer arbiter may lack read as 0 or "" */
JsonObject *
dirtyctl_get_object (JsonObject *object,
                     const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

gint64
dirtyctl_get_int (JsonObject *object,
                  const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node && JSON_NODE_HOLDS_VALUE (node) ? json_node_get_int (node) : 0;
}

double
dirtyctl_get_double (JsonObject *object,
                     const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node && JSON_NODE_HOLDS_VALUE (node) ? json_node_get_double (node) : 0;
}

const char *
dirtyctl_get_string (JsonObject *object,
                     const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node && JSON_NODE_HOLDS_VALUE (node) ? json_node_get_string (node) : "";
}

JsonArray *
dirtyctl_get_workers (JsonObject *root)
{
  JsonNode *node = json_object_get_member (root, "workers");

  return node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static gint64
sum_errors (JsonObject *errors)
{
  g_autoptr(GList) names = errors ? json_object_get_members (errors) : NULL;
  gint64 sum = 0;

  for (GList *l = names; l != NULL; l = l->next)
    sum += dirtyctl_get_int (errors, l->data);
  return sum;
}

/* ---- status: a table ---- */

static char *
format_rss (gint64 bytes)
{
  return bytes < 0 ? g_strdup ("-") : g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

/* A reload not complete: the old workers still serve, and why */
static void
print_reload (JsonObject *arbiter)
{
  JsonNode *held = arbiter ? json_object_get_member (arbiter, "held_apps") : NULL;
  JsonArray *names = held != NULL && JSON_NODE_HOLDS_ARRAY (held) ? json_node_get_array (held) : NULL;
  g_autoptr(GString) apps = g_string_new (NULL);

  if (dirtyctl_get_int (arbiter, "reloading") == 0)
    return;
  for (guint i = 0; names != NULL && i < json_array_get_length (names); i++)
    {
      JsonNode *name = json_array_get_element (names, i);

      if (JSON_NODE_HOLDS_VALUE (name) && json_node_get_value_type (name) == G_TYPE_STRING)
        g_string_append_printf (apps, "%s%s", apps->len ? ", " : "", json_node_get_string (name));
    }
  if (apps->len == 0)
    g_print (_("Reload:  the new workers are starting; the old ones serve meanwhile\n"));
  else
    /* TRANSLATORS: %s is a list of app names */
    g_print (_("Reload:  held: %s did not start in the new workers; "
               "the old ones serve it\n"), apps->str);
}

static void
print_arbiter (JsonObject *arbiter)
{
  /* long long: gettext cannot see through G_GINT64_FORMAT */
  g_print (_("Arbiter: pid %lld, %s, up %.0f s, %lld/%lld workers live, %lld connections\n"
             "Calls:   %lld in flight, %lld queued, %lld served, %lld errors\n"),
           (long long) dirtyctl_get_int (arbiter, "pid"), dirtyctl_get_string (arbiter, "state"),
           dirtyctl_get_double (arbiter, "uptime_s"), (long long) dirtyctl_get_int (arbiter, "workers"),
           (long long) dirtyctl_get_int (arbiter, "workers_configured"),
           (long long) dirtyctl_get_int (arbiter, "connections"),
           (long long) dirtyctl_get_int (arbiter, "in_flight"),
           (long long) dirtyctl_get_int (arbiter, "queued"),
           (long long) dirtyctl_get_int (arbiter, "served"),
           (long long) dirtyctl_get_int (arbiter, "errors"));
  if (arbiter != NULL && json_object_has_member (arbiter, "generation"))
    g_print (_("Config:  generation %lld\n"), (long long) dirtyctl_get_int (arbiter, "generation"));
  print_reload (arbiter);
}

static char *
format_worker_apps (JsonObject *apps)
{
  g_autoptr(GList) names = apps ? json_object_get_members (apps) : NULL;
  g_autoptr(GString) text = g_string_new (NULL);

  for (GList *l = names; l != NULL; l = l->next)
    g_string_append_printf (text, "%s%s (%s)", text->len ? ", " : "", (char *) l->data,
                            dirtyctl_get_string (apps, l->data));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* retiring, or old: a worker of an older generation that a held reload
 * keeps (see print_reload ()); else its state */
static const char *
worker_state (JsonObject *worker,
              gint64      generation)
{
  JsonNode *retiring = json_object_get_member (worker, "retiring");
  gint64 born = dirtyctl_get_int (worker, "generation");

  if (retiring != NULL && JSON_NODE_HOLDS_VALUE (retiring) && json_node_get_boolean (retiring))
    return "retiring";
  if (born > 0 && born < generation)
    return "old";
  return dirtyctl_get_string (worker, "state");
}

static void
print_workers (JsonArray *workers,
               gint64     generation)
{
  g_print ("\n%-6s %-8s %-8s %9s %8s %7s %10s %9s %8s  %s\n",
           /* TRANSLATORS: table headers, at most 6, 8, 8, 9, 8, 7, 10, 9 and 8 characters */
           C_("header", "WORKER"), C_("header", "PID"), C_("header", "STATE"),
           C_("header", "IN-FLIGHT"), C_("header", "SERVED"), C_("header", "ERRORS"),
           C_("header", "RSS"), C_("header", "UPTIME"), C_("header", "RESTARTS"),
           C_("header", "APPS"));
  for (guint i = 0; workers && i < json_array_get_length (workers); i++)
    {
      JsonObject *worker = json_array_get_object_element (workers, i);
      g_autofree char *rss = format_rss (dirtyctl_get_int (worker, "rss_bytes"));
      g_autofree char *apps = format_worker_apps (dirtyctl_get_object (worker, "apps"));
      g_autofree char *uptime = g_strdup_printf ("%.0f s", dirtyctl_get_double (worker, "uptime_s"));
      const char *state = worker_state (worker, generation);

      g_print ("%-6" G_GINT64_FORMAT " %-8" G_GINT64_FORMAT " %-8s %9" G_GINT64_FORMAT
               " %8" G_GINT64_FORMAT " %7" G_GINT64_FORMAT " %10s %9s %8" G_GINT64_FORMAT "  %s\n",
               dirtyctl_get_int (worker, "id"), dirtyctl_get_int (worker, "pid"), state,
               dirtyctl_get_int (worker, "in_flight"), dirtyctl_get_int (worker, "served"),
               dirtyctl_get_int (worker, "errors"), rss, uptime, dirtyctl_get_int (worker, "restarts"), apps);
    }
}

static void
print_apps (JsonObject *apps)
{
  g_autoptr(GList) names = apps ? json_object_get_members (apps) : NULL;
  int width = 4;

  for (GList *l = names; l != NULL; l = l->next)
    width = MAX (width, (int) strlen (l->data));
  /* TRANSLATORS: table headers, at most 7, 9, 8, 7, 9, 8, 9 and 9 characters after APP */
  g_print ("\n%-*s %7s %9s %8s %7s %9s %8s %9s %9s\n", width, C_("header", "APP"),
           C_("header", "QUEUED"), C_("header", "IN-FLIGHT"), C_("header", "SERVED"),
           C_("header", "ERRORS"), C_("header", "TIMEOUTS"), C_("header", "CANCELS"),
           C_("header", "P50 (ms)"), C_("header", "P99 (ms)"));
  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonObject *app = dirtyctl_get_object (apps, l->data);
      JsonObject *latency = dirtyctl_get_object (app, "latency_ms");

      g_print ("%-*s %7" G_GINT64_FORMAT " %9" G_GINT64_FORMAT " %8" G_GINT64_FORMAT " %7"
               G_GINT64_FORMAT " %9" G_GINT64_FORMAT " %8" G_GINT64_FORMAT " %9.1f %9.1f\n",
               width, (char *) l->data, dirtyctl_get_int (app, "queued"), dirtyctl_get_int (app, "in_flight"),
               dirtyctl_get_int (app, "served"), sum_errors (dirtyctl_get_object (app, "errors")),
               dirtyctl_get_int (app, "timeouts"), dirtyctl_get_int (app, "cancels"),
               dirtyctl_get_double (latency, "p50"), dirtyctl_get_double (latency, "p99"));
    }
}

int
dirtyctl_status (int    argc,
                 char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  int status = DIRTYCTL_EXIT_OK;

  context = dirtyctl_context_new ("status",
    N_("Shows what the arbiter is doing: one row per worker (pid, state, calls in\n"
    "flight, calls served and failed, resident memory, uptime, how often its\n"
    "slot was restarted, its apps and their states), one row per app (calls\n"
    "queued, in flight, served, failed, timed out, cancelled, and the p50/p99\n"
    "latency in ms over its last 1024 calls), and the arbiter's totals."),
    N_("Columns:\n"
    "  SERVED counts calls that ended; ERRORS those of them that ended with an\n"
    "  error (per app: every error, including refusals, timeouts and cancels;\n"
    "  --json has them by code). Latency runs from the call's arrival at the\n"
    "  arbiter to its end, queueing included.\n"),
    status_entries);
  dirtyctl_add_control_options (context);
  if (!dirtyctl_parse (context, &argc, &argv))
    return DIRTYCTL_EXIT_USAGE;
  if (argc > 1)
    return dirtyctl_usage (_("status takes no arguments"));
  if ((root = dirtyctl_query_status (&status)) == NULL)
    return status;

  if (opt_json)
    {
      g_autofree char *json = dirty_json_to_string (root, TRUE);

      g_print ("%s\n", json);
      return DIRTYCTL_EXIT_OK;
    }
  object = json_node_get_object (root);
  print_arbiter (dirtyctl_get_object (object, "arbiter"));
  print_workers (dirtyctl_get_workers (object),
                 dirtyctl_get_int (dirtyctl_get_object (object, "arbiter"), "generation"));
  print_apps (dirtyctl_get_object (object, "apps"));
  return DIRTYCTL_EXIT_OK;
}
