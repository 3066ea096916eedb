/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dirty-pool.h"
#include "dirty-scheduler.h"
#include "dirty-status.h"

/* ---- per-app counters ---- */

void
dirty_app_stats_record_end (DirtyAppStats *stats,
                            int            code,
                            gint64         arrival)
{
  if (code < 0)
    stats->served++;
  else if (code < DIRTY_STATUS_N_CODES)
    stats->errors[code]++;
  else
    stats->errors[DIRTY_ERROR_FAILED]++;
  if (code == DIRTY_ERROR_TIMEOUT)
    stats->timeouts++;
  if (arrival == 0)
    return;
  stats->latency_us[stats->latency_next] = g_get_monotonic_time () - arrival;
  stats->latency_next = (stats->latency_next + 1) % DIRTY_STATUS_LATENCY_WINDOW;
  stats->latency_count = MIN (stats->latency_count + 1, DIRTY_STATUS_LATENCY_WINDOW);
}

static int
compare_gint64 (const void *a,
                const void *b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static double
us_to_ms (gint64 us)
{
  return (double) us / 1000.0;
}

/* Nearest-rank quantiles over the window: sorting 1024 numbers on a
 * STATUS request is cheaper than keeping any order on every call. */
static void
add_latency (JsonBuilder         *builder,
             const DirtyAppStats *stats)
{
  g_autofree gint64 *sorted = g_memdup2 (stats->latency_us,
                                         stats->latency_count * sizeof (gint64));
  guint n = stats->latency_count;

  if (n > 0)     /* qsort of NULL, even of 0 items, is undefined */
    qsort (sorted, n, sizeof (gint64), compare_gint64);
  json_builder_set_member_name (builder, "latency_ms");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "window");
  json_builder_add_int_value (builder, n);
  json_builder_set_member_name (builder, "p50");
  json_builder_add_double_value (builder, n ? us_to_ms (sorted[(n - 1) / 2]) : 0);
  json_builder_set_member_name (builder, "p99");
  json_builder_add_double_value (builder, n ? us_to_ms (sorted[(n * 99 + 99) / 100 - 1]) : 0);
  json_builder_end_object (builder);
}

static void
add_int (JsonBuilder *builder,
         const char  *name,
         gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

static void
add_seconds (JsonBuilder *builder,
             const char  *name,
             gint64       us)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_double_value (builder, (double) (us / 1000) / 1000.0);
}

static guint64
add_app (JsonBuilder         *builder,
         const char          *name,
         guint                queued,
         const DirtyAppStats *stats)
{
  guint64 errors = 0;

  json_builder_set_member_name (builder, name);
  json_builder_begin_object (builder);
  add_int (builder, "queued", queued);
  add_int (builder, "in_flight", stats->in_flight);
  add_int (builder, "served", stats->served);
  json_builder_set_member_name (builder, "errors");
  json_builder_begin_object (builder);
  for (int code = 0; code < DIRTY_STATUS_N_CODES; code++)
    if (stats->errors[code] > 0)
      {
        add_int (builder, dirty_error_to_wire (code), stats->errors[code]);
        errors += stats->errors[code];
      }
  json_builder_end_object (builder);
  add_int (builder, "timeouts", stats->timeouts);
  add_int (builder, "cancels", stats->cancels);
  add_latency (builder, stats);
  json_builder_end_object (builder);
  return errors;
}

/* ---- workers ---- */

static const char *
worker_state_name (DirtyWorkerProcState state)
{
  switch (state)
    {
    case DIRTY_WORKER_PROC_STARTING: return "starting";
    case DIRTY_WORKER_PROC_LIVE:     return "live";
    case DIRTY_WORKER_PROC_LOST:     return "lost";
    case DIRTY_WORKER_PROC_EXITED:   return "exited";
    default:                         return "unknown";
    }
}

static const char *
app_state_name (DirtyAppState state)
{
  switch (state)
    {
    case DIRTY_APP_STATE_STARTING:    return "starting";
    case DIRTY_APP_STATE_READY:       return "ready";
    case DIRTY_APP_STATE_FAILED:      return "failed";
    case DIRTY_APP_STATE_UNAVAILABLE: return "unavailable";
    default:                          return "unknown";
    }
}

/* Resident set size in bytes from /proc/PID/statm (its second field, in
 * pages), or -1 when the process is gone. */
static gint64
read_rss (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/statm", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;

  if (pid <= 0 || !g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  fields = g_strsplit (text, " ", 3);
  if (g_strv_length (fields) < 2)
    return -1;
  return g_ascii_strtoll (fields[1], NULL, 10) * sysconf (_SC_PAGESIZE);
}

static void
add_worker (JsonBuilder     *builder,
            DirtyPool       *pool,
            DirtyWorkerProc *worker,
            gint64           now)
{
  g_autoptr(GPtrArray) apps = dirty_worker_proc_list_apps (worker);

  json_builder_begin_object (builder);
  add_int (builder, "id", dirty_worker_proc_get_id (worker));
  add_int (builder, "pid", dirty_worker_proc_get_pid (worker));
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder,
                                 worker_state_name (dirty_worker_proc_get_state (worker)));
  json_builder_set_member_name (builder, "retiring");
  json_builder_add_boolean_value (builder, dirty_worker_proc_is_retiring (worker));
  json_builder_set_member_name (builder, "apps");
  json_builder_begin_object (builder);
  for (guint i = 0; i < apps->len; i++)
    {
      json_builder_set_member_name (builder, apps->pdata[i]);
      json_builder_add_string_value (builder,
        app_state_name (dirty_worker_proc_get_app_state (worker, apps->pdata[i], NULL)));
    }
  json_builder_end_object (builder);
  add_int (builder, "in_flight", dirty_worker_proc_get_load (worker));
  add_int (builder, "served", dirty_worker_proc_get_served (worker));
  add_int (builder, "errors", dirty_worker_proc_get_errors (worker));
  add_int (builder, "rss_bytes", read_rss (dirty_worker_proc_get_pid (worker)));
  add_seconds (builder, "uptime_s", now - dirty_worker_proc_get_started (worker));
  add_int (builder, "restarts", dirty_pool_get_restarts (pool, dirty_worker_proc_get_id (worker)));
  add_int (builder, "generation",
           dirty_pool_get_worker_generation (pool, dirty_worker_proc_get_id (worker)));
  json_builder_end_object (builder);
}

static int
compare_worker_ids (gconstpointer a,
                    gconstpointer b)
{
  guint x = dirty_worker_proc_get_id (*(DirtyWorkerProc **) a);
  guint y = dirty_worker_proc_get_id (*(DirtyWorkerProc **) b);

  return x < y ? -1 : x > y;
}

/* ---- the arbiter ---- */

/* How long this process has run, from its start time in /proc (so it
 * needs no hook at startup): CLOCK_BOOTTIME is the clock /proc counts
 * from. */
static gint64
process_uptime_us (void)
{
  g_autofree char *text = NULL;
  const char *after_comm;
  g_auto(GStrv) fields = NULL;
  struct timespec now;
  gint64 start_ticks;

  if (!g_file_get_contents ("/proc/self/stat", &text, NULL, NULL) ||
      (after_comm = strrchr (text, ')')) == NULL)
    return 0;
  /* field 22 (starttime); the fields after ")" start at field 3 */
  fields = g_strsplit (after_comm + 2, " ", 21);
  if (g_strv_length (fields) < 21)
    return 0;
  start_ticks = g_ascii_strtoll (fields[19], NULL, 10);
  clock_gettime (CLOCK_BOOTTIME, &now);
  return (gint64) now.tv_sec * G_USEC_PER_SEC + now.tv_nsec / 1000 -
         start_ticks * G_USEC_PER_SEC / sysconf (_SC_CLK_TCK);
}

typedef struct {
  guint   live;
  guint   in_flight;
  guint   queued;
  guint64 served;
  guint64 errors;
} Totals;

/* "reloading" and "held_apps": a reload not complete, and why */
static void
add_reload (JsonBuilder *builder,
            DirtyPool   *pool)
{
  g_autoptr(GPtrArray) held = NULL;
  gboolean reloading = dirty_pool_get_reloading (pool, &held);

  json_builder_set_member_name (builder, "reloading");
  json_builder_add_boolean_value (builder, reloading);
  json_builder_set_member_name (builder, "held_apps");
  json_builder_begin_array (builder);
  for (guint i = 0; i < held->len; i++)
    json_builder_add_string_value (builder, held->pdata[i]);
  json_builder_end_array (builder);
}

static void
add_arbiter (JsonBuilder    *builder,
             DirtyScheduler *scheduler,
             const Totals   *totals,
             guint           connections,
             guint64         connections_total)
{
  json_builder_set_member_name (builder, "arbiter");
  json_builder_begin_object (builder);
  add_int (builder, "pid", getpid ());
  add_seconds (builder, "uptime_s", process_uptime_us ());
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder,
                                 dirty_scheduler_is_draining (scheduler) ? "stopping" : "running");
  add_int (builder, "connections", connections);
  add_int (builder, "connections_total", connections_total);
  add_int (builder, "workers", totals->live);
  add_int (builder, "workers_configured", dirty_pool_get_size (dirty_scheduler_get_pool (scheduler)));
  add_int (builder, "generation", dirty_pool_get_generation (dirty_scheduler_get_pool (scheduler)));
  add_reload (builder, dirty_scheduler_get_pool (scheduler));
  add_int (builder, "in_flight", totals->in_flight);
  add_int (builder, "queued", totals->queued);
  add_int (builder, "served", totals->served);
  add_int (builder, "errors", totals->errors);
  json_builder_end_object (builder);
}

static void
add_workers (JsonBuilder    *builder,
             DirtyScheduler *scheduler,
             Totals         *totals)
{
  DirtyPool *pool = dirty_scheduler_get_pool (scheduler);
  g_autoptr(GPtrArray) workers = dirty_pool_list_workers (pool);
  gint64 now = g_get_monotonic_time ();

  g_ptr_array_sort (workers, compare_worker_ids);
  json_builder_set_member_name (builder, "workers");
  json_builder_begin_array (builder);
  for (guint i = 0; i < workers->len; i++)
    {
      add_worker (builder, pool, workers->pdata[i], now);
      if (dirty_worker_proc_get_state (workers->pdata[i]) == DIRTY_WORKER_PROC_LIVE)
        totals->live++;
      totals->in_flight += dirty_worker_proc_get_load (workers->pdata[i]);
    }
  json_builder_end_array (builder);
}

static void
add_apps (JsonBuilder    *builder,
          DirtyScheduler *scheduler,
          Totals         *totals)
{
  g_autoptr(GPtrArray) apps = dirty_scheduler_list_apps (scheduler);

  json_builder_set_member_name (builder, "apps");
  json_builder_begin_object (builder);
  for (guint i = 0; i < apps->len; i++)
    {
      guint queued = 0;
      const DirtyAppStats *stats = dirty_scheduler_get_app_stats (scheduler, apps->pdata[i],
                                                                  &queued);

      totals->errors += add_app (builder, apps->pdata[i], queued, stats);
      totals->queued += queued;
      totals->served += stats->served;
    }
  json_builder_end_object (builder);
}

JsonNode *
dirty_status_collect (DirtyScheduler *scheduler,
                      guint           connections,
                      guint64         connections_total)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  Totals totals = { 0, };

  json_builder_begin_object (builder);
  add_workers (builder, scheduler, &totals);
  add_apps (builder, scheduler, &totals);
  /* last, as it sums the others */
  add_arbiter (builder, scheduler, &totals, connections, connections_total);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}
