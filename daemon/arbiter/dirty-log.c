/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-log.h"

/* syslog priorities, as GLib maps its levels */
static const char *
level_to_priority (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "3";
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    return "4";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "5";
  if (level & G_LOG_LEVEL_INFO)
    return "6";
  return "7";
}

static void
add_field (GLogField  *fields,
           gsize      *n,
           const char *key,
           const char *value)
{
  fields[*n].key = key;
  fields[*n].value = value;
  fields[*n].length = -1;
  (*n)++;
}

void
dirty_log (GLogLevelFlags  level,
           const char     *app,
           const char     *action,
           guint64         request_id,
           gint64          worker_pid,
           guint           worker_id,
           const char     *format,
           ...)
{
  GLogField fields[8];
  gsize n = 0;
  va_list args;
  g_autofree char *message = NULL;
  g_autofree char *id_text = NULL;
  g_autofree char *pid_text = NULL;
  g_autofree char *worker_text = NULL;

  /* Per-call debug records are frequent: skip the formatting when they
   * would be dropped anyway. */
  if (g_log_writer_default_would_drop (level, G_LOG_DOMAIN))
    return;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  add_field (fields, &n, "GLIB_DOMAIN", G_LOG_DOMAIN);
  add_field (fields, &n, "PRIORITY", level_to_priority (level));
  if (app != NULL)
    add_field (fields, &n, "DIRTY_APP", app);
  if (action != NULL)
    add_field (fields, &n, "DIRTY_ACTION", action);
  if (request_id != 0)
    add_field (fields, &n, "DIRTY_REQUEST_ID",
               (id_text = g_strdup_printf ("%" G_GUINT64_FORMAT, request_id)));
  if (worker_pid != 0)
    add_field (fields, &n, "DIRTY_WORKER_PID",
               (pid_text = g_strdup_printf ("%" G_GINT64_FORMAT, worker_pid)));
  if (worker_id != 0)
    add_field (fields, &n, "DIRTY_WORKER_ID",
               (worker_text = g_strdup_printf ("%u", worker_id)));
  add_field (fields, &n, "MESSAGE", message);
  g_log_structured_array (level, fields, n);
}
