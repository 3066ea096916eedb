/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtyctl metrics: the STATUS object as OpenMetrics text
 * (https://github.com/OpenObservability/OpenMetrics, "Text format"),
 * which a Prometheus scrape and node_exporter's textfile collector read:
 *
 *   dirtyctl metrics > /var/lib/node_exporter/dirty-arbiter.prom.$$ &&
 *     mv /var/lib/node_exporter/dirty-arbiter.prom.$$ /var/lib/node_exporter/dirty-arbiter.prom
 *
 * Every family has # TYPE and # HELP before its samples; counters'
 * samples end in _total; the text ends with "# EOF". */
#include "config.h"

#include "dirtyctl.h"

/* "{k1="v1",k2="v2"}" from NULL-terminated pairs, values escaped */
static char *
labels (const char *first_key,
        ...)
{
  g_autoptr(GString) text = g_string_new ("{");
  const char *key = first_key;
  va_list args;

  va_start (args, first_key);
  for (; key != NULL; key = va_arg (args, const char *))
    {
      const char *value = va_arg (args, const char *);

      g_string_append_printf (text, "%s%s=\"", text->len > 1 ? "," : "", key);
      for (const char *p = value; *p != '\0'; p++)
        if (*p == '\\')
          g_string_append (text, "\\\\");
        else if (*p == '"')
          g_string_append (text, "\\\"");
        else if (*p == '\n')
          g_string_append (text, "\\n");
        else
          g_string_append_c (text, *p);
      g_string_append_c (text, '"');
    }
  va_end (args);
  g_string_append_c (text, '}');
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static void
family (GString    *out,
        const char *name,
        const char *type,
        const char *help)
{
  g_string_append_printf (out, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void
sample_int (GString    *out,
            const char *name,
            const char *suffix,
            const char *label_set,
            gint64      value)
{
  g_string_append_printf (out, "%s%s%s %" G_GINT64_FORMAT "\n", name, suffix,
                          label_set ? label_set : "", value);
}

static void
sample_double (GString    *out,
               const char *name,
               const char *label_set,
               double      value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (out, "%s%s %s\n", name, label_set ? label_set : "",
                          g_ascii_formatd (buffer, sizeof buffer, "%.9g", value));
}

static void
add_arbiter (GString    *out,
             JsonObject *arbiter)
{
  g_autofree char *pid = g_strdup_printf ("%" G_GINT64_FORMAT, dirtyctl_get_int (arbiter, "pid"));
  g_autofree char *info = labels ("pid", pid, "state", dirtyctl_get_string (arbiter, "state"), NULL);

  family (out, "dirty_arbiter_info", "gauge", "The arbiter process; always 1.");
  sample_int (out, "dirty_arbiter_info", "", info, 1);
  family (out, "dirty_arbiter_uptime_seconds", "gauge", "How long the arbiter has run.");
  sample_double (out, "dirty_arbiter_uptime_seconds", NULL,
                 dirtyctl_get_double (arbiter, "uptime_s"));
  family (out, "dirty_arbiter_connections", "gauge", "Client connections open now.");
  sample_int (out, "dirty_arbiter_connections", "", NULL,
              dirtyctl_get_int (arbiter, "connections"));
  family (out, "dirty_arbiter_connections_accepted", "counter", "Client connections accepted.");
  sample_int (out, "dirty_arbiter_connections_accepted", "_total", NULL,
              dirtyctl_get_int (arbiter, "connections_total"));
  family (out, "dirty_arbiter_workers", "gauge", "Workers live (said hello, not lost).");
  sample_int (out, "dirty_arbiter_workers", "", NULL, dirtyctl_get_int (arbiter, "workers"));
  family (out, "dirty_arbiter_workers_configured", "gauge", "Worker slots configured.");
  sample_int (out, "dirty_arbiter_workers_configured", "", NULL,
              dirtyctl_get_int (arbiter, "workers_configured"));
  if (arbiter != NULL && json_object_has_member (arbiter, "generation"))
    {
      family (out, "dirty_arbiter_generation", "gauge", "Configuration generation (reloads).");
      sample_int (out, "dirty_arbiter_generation", "", NULL,
                  dirtyctl_get_int (arbiter, "generation"));
    }
  if (arbiter != NULL && json_object_has_member (arbiter, "reloading"))
    {
      family (out, "dirty_arbiter_reloading", "gauge",
              "1 while a reload's new workers are not all ready (old ones serve).");
      sample_int (out, "dirty_arbiter_reloading", "", NULL,
                  dirtyctl_get_int (arbiter, "reloading"));
    }
}

/* One family over every worker: @member of each, as an integer */
static void
add_worker_family (GString    *out,
                   JsonArray  *workers,
                   const char *name,
                   const char *type,
                   const char *help,
                   const char *member)
{
  gboolean counter = g_str_equal (type, "counter");

  family (out, name, type, help);
  for (guint i = 0; workers && i < json_array_get_length (workers); i++)
    {
      JsonObject *worker = json_array_get_object_element (workers, i);
      g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, dirtyctl_get_int (worker, "id"));
      g_autofree char *label_set = labels ("worker", id, NULL);

      if (g_str_equal (member, "uptime_s"))
        sample_double (out, name, label_set, dirtyctl_get_double (worker, member));
      else if (dirtyctl_get_int (worker, member) >= 0)   /* rss -1: gone */
        sample_int (out, name, counter ? "_total" : "", label_set,
                    dirtyctl_get_int (worker, member));
    }
}

static void
add_worker_info (GString   *out,
                 JsonArray *workers)
{
  family (out, "dirty_worker_app_state", "gauge",
          "1 for each worker, app and the app's state there.");
  for (guint i = 0; workers && i < json_array_get_length (workers); i++)
    {
      JsonObject *worker = json_array_get_object_element (workers, i);
      JsonObject *apps = dirtyctl_get_object (worker, "apps");
      g_autoptr(GList) names = apps ? json_object_get_members (apps) : NULL;
      g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, dirtyctl_get_int (worker, "id"));

      for (GList *l = names; l != NULL; l = l->next)
        {
          g_autofree char *label_set = labels ("worker", id, "app", l->data,
                                               "state", dirtyctl_get_string (apps, l->data), NULL);
          sample_int (out, "dirty_worker_app_state", "", label_set, 1);
        }
    }
  family (out, "dirty_worker_info", "gauge", "Each worker's pid and state; always 1.");
  for (guint i = 0; workers && i < json_array_get_length (workers); i++)
    {
      JsonObject *worker = json_array_get_object_element (workers, i);
      g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, dirtyctl_get_int (worker, "id"));
      g_autofree char *pid = g_strdup_printf ("%" G_GINT64_FORMAT, dirtyctl_get_int (worker, "pid"));
      g_autofree char *label_set = labels ("worker", id, "pid", pid,
                                           "state", dirtyctl_get_string (worker, "state"), NULL);

      sample_int (out, "dirty_worker_info", "", label_set, 1);
    }
}

static void
add_workers (GString   *out,
             JsonArray *workers)
{
  add_worker_info (out, workers);
  add_worker_family (out, workers, "dirty_worker_in_flight", "gauge",
                     "Calls in the worker's slots.", "in_flight");
  add_worker_family (out, workers, "dirty_worker_calls", "counter",
                     "Calls the worker ended.", "served");
  add_worker_family (out, workers, "dirty_worker_errors", "counter",
                     "Calls the worker ended with an error.", "errors");
  add_worker_family (out, workers, "dirty_worker_rss_bytes", "gauge",
                     "Resident memory of the worker process.", "rss_bytes");
  add_worker_family (out, workers, "dirty_worker_uptime_seconds", "gauge",
                     "How long the worker process has run.", "uptime_s");
  add_worker_family (out, workers, "dirty_worker_restarts", "counter",
                     "Replacements started in the worker's slot.", "restarts");
}

/* One family over every app: @member of each, as an integer */
static void
add_app_family (GString    *out,
                JsonObject *apps,
                GList      *names,
                const char *name,
                const char *type,
                const char *help,
                const char *member)
{
  family (out, name, type, help);
  for (GList *l = names; l != NULL; l = l->next)
    {
      g_autofree char *label_set = labels ("app", l->data, NULL);

      sample_int (out, name, g_str_equal (type, "counter") ? "_total" : "", label_set,
                  dirtyctl_get_int (dirtyctl_get_object (apps, l->data), member));
    }
}

static void
add_app_errors (GString    *out,
                JsonObject *apps,
                GList      *names)
{
  family (out, "dirty_app_errors", "counter", "Calls that ended with an error, by error code.");
  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonObject *errors = dirtyctl_get_object (dirtyctl_get_object (apps, l->data), "errors");
      g_autoptr(GList) codes = errors ? json_object_get_members (errors) : NULL;

      for (GList *c = codes; c != NULL; c = c->next)
        {
          g_autofree char *label_set = labels ("app", l->data, "code", c->data, NULL);

          sample_int (out, "dirty_app_errors", "_total", label_set,
                      dirtyctl_get_int (errors, c->data));
        }
    }
}

static void
add_app_latency (GString    *out,
                 JsonObject *apps,
                 GList      *names)
{
  static const char *const quantiles[][2] = { { "0.5", "p50" }, { "0.99", "p99" } };

  /* a gauge, not a summary: the quantiles are over a window of recent
   * calls, with no all-time sum and count to go with them */
  family (out, "dirty_app_recent_latency_seconds", "gauge",
          "Latency quantiles over each app's last 1024 calls, arrival to end.");
  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonObject *latency = dirtyctl_get_object (dirtyctl_get_object (apps, l->data), "latency_ms");

      for (guint q = 0; q < G_N_ELEMENTS (quantiles); q++)
        {
          g_autofree char *label_set = labels ("app", l->data, "quantile", quantiles[q][0], NULL);

          sample_double (out, "dirty_app_recent_latency_seconds", label_set,
                         dirtyctl_get_double (latency, quantiles[q][1]) / 1000.0);
        }
    }
}

static void
add_apps (GString    *out,
          JsonObject *apps)
{
  g_autoptr(GList) names = apps ? json_object_get_members (apps) : NULL;

  names = g_list_sort (names, (GCompareFunc) g_strcmp0);
  add_app_family (out, apps, names, "dirty_app_queued", "gauge", "Calls waiting in the app's queue.", "queued");
  add_app_family (out, apps, names, "dirty_app_in_flight", "gauge", "Calls of the app running in a worker.", "in_flight");
  add_app_family (out, apps, names, "dirty_app_served", "counter", "Calls of the app that succeeded.", "served");
  add_app_errors (out, apps, names);
  add_app_family (out, apps, names, "dirty_app_timeouts", "counter", "Calls of the app whose deadline passed.", "timeouts");
  add_app_family (out, apps, names, "dirty_app_cancels", "counter", "Calls of the app its clients cancelled or left.", "cancels");
  add_app_latency (out, apps, names);
}

int
dirtyctl_metrics (int    argc,
                  char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  JsonObject *object;
  int status = DIRTYCTL_EXIT_OK;

  context = dirtyctl_context_new ("metrics",
    N_("Prints the arbiter's status as OpenMetrics text: families dirty_arbiter_*,\n"
    "dirty_worker_* (label worker) and dirty_app_* (label app; errors also by\n"
    "code; recent latency quantiles 0.5 and 0.99), ending with “# EOF”."),
    N_("For node_exporter's textfile collector, write to a temporary file and\n"
    "rename it into the collector's directory (e.g. from a systemd timer):\n"
    "  dirtyctl metrics > DIR/dirty-arbiter.prom.tmp &&\n"
    "    mv DIR/dirty-arbiter.prom.tmp DIR/dirty-arbiter.prom\n"),
    NULL);
  dirtyctl_add_control_options (context);
  if (!dirtyctl_parse (context, &argc, &argv))
    return DIRTYCTL_EXIT_USAGE;
  if (argc > 1)
    return dirtyctl_usage (_("metrics takes no arguments"));
  if ((root = dirtyctl_query_status (&status)) == NULL)
    return status;

  object = json_node_get_object (root);
  add_arbiter (out, dirtyctl_get_object (object, "arbiter"));
  add_workers (out, dirtyctl_get_workers (object));
  add_apps (out, dirtyctl_get_object (object, "apps"));
  g_string_append (out, "# EOF\n");
  g_print ("%s", out->str);
  return DIRTYCTL_EXIT_OK;
}
