/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Structured log records with the DIRTY_* journal fields that apply:
 * DIRTY_APP, DIRTY_ACTION, DIRTY_REQUEST_ID, DIRTY_WORKER_PID,
 * DIRTY_WORKER_ID and, for a failed call, DIRTY_ERROR_CODE (the wire
 * name: "timeout", "worker-lost", ...), and for a call that overran its
 * deadline DIRTY_BACKTRACE. Pass NULL / 0 for a field that does not
 * apply.
 *
 * Levels, as an operator sees them (see dirty_log_init()):
 *   warning   something is wrong (a worker died, an app failed to load)
 *   message   lifecycle and every failed call (always recorded; failed
 *             calls up to 100 a 5 s, then a count of the others)
 *   info      lifecycle details (ready, worker hello, app states):
 *             recorded in the journal, shown on a terminal only with
 *             G_MESSAGES_DEBUG
 *   debug     every call's steps (queued, sent, ended): only with
 *             G_MESSAGES_DEBUG=dirty-arbiter (or "all") */

#include <glib.h>

#include "dirty-error.h"

G_BEGIN_DECLS

/* Installs the log writer: when stderr is the journal (systemd set
 * JOURNAL_STREAM), records go to the journal as structured entries, info
 * included, debug only as G_MESSAGES_DEBUG asks; on a terminal or a pipe,
 * GLib's default writer (readable lines; info and debug with
 * G_MESSAGES_DEBUG). Call once, early in main(): G_MESSAGES_DEBUG is read
 * then, not per record. */
void     dirty_log_init       (void);
/* Also writes every record (debug ones as G_MESSAGES_DEBUG asks) to
 * @path, appending, one line each as GLib formats them for a terminal,
 * dated; NULL stops that. The old file is closed once the new one is
 * open: on failure nothing changes. */
gboolean    dirty_log_set_file   (const char  *path,
                                  GError     **error);
/* (nullable): the log file, if any */
const char *dirty_log_get_file   (void);
/* Opens the log file's path again (after logrotate renamed it): SIGUSR1.
 * Does nothing without a log file. */
gboolean    dirty_log_reopen     (GError     **error);
/* Whether a record at @level would be dropped (skip costly formatting). */
gboolean dirty_log_would_drop (GLogLevelFlags level);

void dirty_log (GLogLevelFlags  level,
                const char     *app,
                const char     *action,
                guint64         request_id,
                gint64          worker_pid,
                guint           worker_id,
                const char     *format,
                ...) G_GNUC_PRINTF (7, 8);

/* A call that failed with @code: like dirty_log() plus DIRTY_ERROR_CODE,
 * rate-limited (at most 100 a 5 s but for debug records; the count of
 * the others is logged at the end of the 5 s), and
 * DIRTY_BACKTRACE=@backtrace when it is not %NULL: what the call's
 * thread was doing when it overran its deadline, or why that is not
 * known. Outside the journal (a terminal, a pipe, the log file) the
 * backtrace follows the message on its own lines. */
void dirty_log_call_error (GLogLevelFlags  level,
                           const char     *app,
                           const char     *action,
                           guint64         request_id,
                           gint64          worker_pid,
                           guint           worker_id,
                           DirtyError      code,
                           const char     *backtrace,
                           const char     *format,
                           ...) G_GNUC_PRINTF (9, 10);

G_END_DECLS
