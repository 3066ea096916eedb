/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Structured log records with the DIRTY_* journal fields that apply:
 * DIRTY_APP, DIRTY_ACTION, DIRTY_REQUEST_ID, DIRTY_WORKER_PID,
 * DIRTY_WORKER_ID. Pass NULL / 0 for a field that does not apply. */

#include <glib.h>

G_BEGIN_DECLS

void dirty_log (GLogLevelFlags  level,
                const char     *app,
                const char     *action,
                guint64         request_id,
                gint64          worker_pid,
                guint           worker_id,
                const char     *format,
                ...) G_GNUC_PRINTF (7, 8);

G_END_DECLS
