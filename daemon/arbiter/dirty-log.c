/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dirty-log.h"

/* Set by dirty_log_init() when stderr is connected to the journal. */
static gboolean to_journal;

/* Whether GLib drops info and debug records of our domain: G_MESSAGES_DEBUG,
 * read once by dirty_log_init(). GLib reads it with getenv() each time it
 * is asked, and three debug records per call asked it. */
static gboolean levels_known;
static gboolean drops_info;
static gboolean drops_debug;

/* The optional log file (log_file=): records go there in addition to
 * stderr or the journal. The lock covers swapping the fd on SIGUSR1
 * against a writer on another thread. */
static GMutex file_lock;
static char *file_path;
static int file_fd = -1;

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
find_field (const GLogField *fields,
            gsize            n_fields,
            const char      *key)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, key) == 0)
      return fields[i].value;
  return NULL;
}

static const char *
find_domain (const GLogField *fields,
             gsize            n_fields)
{
  return find_field (fields, n_fields, "GLIB_DOMAIN");
}

/* The journal keeps every record with its PRIORITY, and `journalctl -p`
 * filters: info is worth keeping there (a handful of lifecycle records),
 * while per-call debug records stay opt-in. GLib's default writer would
 * drop info too. */
/* One line per record, formatted as GLib's default writer formats them
 * for a terminal (without colours), with the date in front: a log file
 * outlives a day. One write() per record, so lines never interleave. */
static void
write_to_file (GLogLevelFlags   level,
               const GLogField *fields,
               gsize            n_fields)
{
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autofree char *date = NULL;
  const char *backtrace;

  if ((level & G_LOG_LEVEL_DEBUG) &&
      g_log_writer_default_would_drop (level, find_domain (fields, n_fields)))
    return;
  now = g_date_time_new_now_local ();
  date = g_date_time_format (now, "%F");
  text = g_log_writer_format_fields (level, fields, n_fields, FALSE);
  /* GLib puts a newline before warnings, for terminals; the backtrace is
   * in MESSAGE already unless the journal has it as a field */
  backtrace = to_journal ? find_field (fields, n_fields, "DIRTY_BACKTRACE") : NULL;
  line = g_strdup_printf ("%s %s\n%s%s", date, g_strchug (text), backtrace ? backtrace : "",
                          backtrace && !g_str_has_suffix (backtrace, "\n") ? "\n" : "");
  g_mutex_lock (&file_lock);
  if (file_fd >= 0 && write (file_fd, line, strlen (line)) < 0)
    { /* nowhere to report it: stderr or the journal still has the record */ }
  g_mutex_unlock (&file_lock);
}

static GLogWriterOutput
dirty_log_writer (GLogLevelFlags   level,
                  const GLogField *fields,
                  gsize            n_fields,
                  gpointer         user_data)
{
  if (file_fd >= 0)
    write_to_file (level, fields, n_fields);
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
  drops_info = g_log_writer_default_would_drop (G_LOG_LEVEL_INFO, G_LOG_DOMAIN);
  drops_debug = g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN);
  levels_known = TRUE;
  g_log_set_writer_func (dirty_log_writer, NULL, NULL);
}

static int
open_log_file (const char  *path,
               GError     **error)
{
  int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open the log file %s: %s", path, g_strerror (saved_errno));
    }
  return fd;
}

gboolean
dirty_log_set_file (const char  *path,
                    GError     **error)
{
  int fd = -1;
  int old_fd;

  if (path != NULL && (fd = open_log_file (path, error)) < 0)
    return FALSE;
  g_mutex_lock (&file_lock);
  old_fd = file_fd;
  file_fd = fd;
  g_free (file_path);
  file_path = g_strdup (path);
  g_mutex_unlock (&file_lock);
  if (old_fd >= 0)
    close (old_fd);
  return TRUE;
}

const char *
dirty_log_get_file (void)
{
  return file_path;
}

gboolean
dirty_log_reopen (GError **error)
{
  g_autofree char *path = NULL;

  g_mutex_lock (&file_lock);
  path = g_strdup (file_path);
  g_mutex_unlock (&file_lock);
  if (path == NULL)
    return TRUE;
  return dirty_log_set_file (path, error);
}

gboolean
dirty_log_would_drop (GLogLevelFlags level)
{
  if (to_journal && !(level & G_LOG_LEVEL_DEBUG))
    return FALSE;
  if (levels_known && level == G_LOG_LEVEL_DEBUG)
    return drops_debug;
  if (levels_known && level == G_LOG_LEVEL_INFO)
    return drops_info;
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

static void G_GNUC_PRINTF (9, 0)
dirty_log_valist (GLogLevelFlags  level,
                  const char     *app,
                  const char     *action,
                  guint64         request_id,
                  gint64          worker_pid,
                  guint           worker_id,
                  const char     *error_code,
                  const char     *backtrace,
                  const char     *format,
                  va_list         args)
{
  GLogField fields[10];
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
  if (backtrace != NULL)
    {
      /* the journal keeps it as a field; a terminal or a pipe shows
       * only MESSAGE, so there it follows the message */
      add_field (fields, &n, "DIRTY_BACKTRACE", backtrace);
      if (!to_journal)
        {
          char *both = g_strconcat (message, "\n", backtrace, NULL);

          g_free (message);
          message = both;
        }
    }
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
  dirty_log_valist (level, app, action, request_id, worker_pid, worker_id, NULL, NULL,
                    format, args);
  va_end (args);
}

/* Records of failed calls: a client or an app can fail calls by the
 * thousand a second, and past its burst (10,000 per 30 s by default)
 * journald drops every record of the service for the rest of its
 * interval, a worker's crash with the rest. So at most CALL_LOG_BURST
 * such records per CALL_LOG_INTERVAL_S; the others are counted, and the
 * count is logged when the interval ends. Debug records (cancelled
 * calls, and only with G_MESSAGES_DEBUG) are not limited. The arbiter
 * logs calls from its main loop only: no lock. */
#define CALL_LOG_BURST      100
#define CALL_LOG_INTERVAL_S 5

static struct {
  gint64 window_end;   /* monotonic, µs */
  guint  logged;       /* in the window */
  guint  suppressed;   /* in the window */
  guint  summary_source;
} call_log;

static gboolean
call_log_summary_cb (gpointer user_data)
{
  call_log.summary_source = 0;
  if (call_log.suppressed > 0)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
               "%u more failed calls were not logged in the last %u s (at most %u a %u s "
               "are); the status counts every one",
               call_log.suppressed, CALL_LOG_INTERVAL_S, CALL_LOG_BURST, CALL_LOG_INTERVAL_S);
  call_log.suppressed = 0;
  return G_SOURCE_REMOVE;
}

/* Whether a failed call's record at @level may be logged now */
static gboolean
call_log_allows (GLogLevelFlags level)
{
  gint64 now;

  if (level & G_LOG_LEVEL_DEBUG)
    return TRUE;
  now = g_get_monotonic_time ();
  if (now >= call_log.window_end)
    {
      /* a new window: the last one's count first, if its timer has not
       * fired yet */
      if (call_log.summary_source != 0)
        {
          g_source_remove (call_log.summary_source);
          call_log_summary_cb (NULL);
        }
      call_log.window_end = now + CALL_LOG_INTERVAL_S * G_USEC_PER_SEC;
      call_log.logged = 0;
    }
  if (call_log.logged < CALL_LOG_BURST)
    {
      call_log.logged++;
      return TRUE;
    }
  if (call_log.suppressed++ == 0)
    call_log.summary_source =
      g_timeout_add_full (G_PRIORITY_DEFAULT, (call_log.window_end - now) / 1000 + 1,
                          call_log_summary_cb, NULL, NULL);
  return FALSE;
}

void
dirty_log_call_error (GLogLevelFlags  level,
                      const char     *app,
                      const char     *action,
                      guint64         request_id,
                      gint64          worker_pid,
                      guint           worker_id,
                      DirtyError      code,
                      const char     *backtrace,
                      const char     *format,
                      ...)
{
  va_list args;

  if (dirty_log_would_drop (level) || !call_log_allows (level))
    return;
  va_start (args, format);
  dirty_log_valist (level, app, action, request_id, worker_pid, worker_id,
                    dirty_error_to_wire (code), backtrace, format, args);
  va_end (args);
}
