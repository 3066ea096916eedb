/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "dirty-log.h"

/* Set by dirty_log_init() when stderr is connected to the journal. */
static gboolean to_journal;

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

static const char *
find_domain (const GLogField *fields,
             gsize            n_fields)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
      return fields[i].value;
  return NULL;
}

/* The journal keeps every record with its PRIORITY, and `journalctl -p`
 * filters: info is worth keeping there (a handful of lifecycle records),
 * while per-call debug records stay opt-in. GLib's default writer would
 * drop info too. */
static GLogWriterOutput
dirty_log_writer (GLogLevelFlags   level,
                  const GLogField *fields,
                  gsize            n_fields,
                  gpointer         user_data)
{
  if (!to_journal)
    return g_log_writer_default (level, fields, n_fields, user_data);
  if ((level & G_LOG_LEVEL_DEBUG) &&
      g_log_writer_default_would_drop (level, find_domain (fields, n_fields)))
    return G_LOG_WRITER_HANDLED;
  if (g_log_writer_journald (level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_standard_streams (level, fields, n_fields, user_data);
}

void
dirty_log_init (void)
{
  to_journal = g_log_writer_is_journald (fileno (stderr));
  g_log_set_writer_func (dirty_log_writer, NULL, NULL);
}

gboolean
dirty_log_would_drop (GLogLevelFlags level)
{
  if (to_journal && !(level & G_LOG_LEVEL_DEBUG))
    return FALSE;
  return g_log_writer_default_would_drop (level, G_LOG_DOMAIN);
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

static void
dirty_log_valist (GLogLevelFlags  level,
                  const char     *app,
                  const char     *action,
                  guint64         request_id,
                  gint64          worker_pid,
                  guint           worker_id,
                  const char     *error_code,
                  const char     *format,
                  va_list         args)
{
  GLogField fields[9];
  gsize n = 0;
  g_autofree char *message = NULL;
  g_autofree char *id_text = NULL;
  g_autofree char *pid_text = NULL;
  g_autofree char *worker_text = NULL;

  message = g_strdup_vprintf (format, args);
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
  if (error_code != NULL)
    add_field (fields, &n, "DIRTY_ERROR_CODE", error_code);
  add_field (fields, &n, "MESSAGE", message);
  g_log_structured_array (level, fields, n);
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
  va_list args;

  /* Per-call debug records are frequent: skip the formatting when they
   * would be dropped anyway. */
  if (dirty_log_would_drop (level))
    return;
  va_start (args, format);
  dirty_log_valist (level, app, action, request_id, worker_pid, worker_id, NULL, format, args);
  va_end (args);
}

void
dirty_log_call_error (GLogLevelFlags  level,
                      const char     *app,
                      const char     *action,
                      guint64         request_id,
                      gint64          worker_pid,
                      guint           worker_id,
                      DirtyError      code,
                      const char     *format,
                      ...)
{
  va_list args;

  if (dirty_log_would_drop (level))
    return;
  va_start (args, format);
  dirty_log_valist (level, app, action, request_id, worker_pid, worker_id,
                    dirty_error_to_wire (code), format, args);
  va_end (args);
}
