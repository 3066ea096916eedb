/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The shared private I/O thread of libdirty-glib ("dirty-io"), as GDBus
 * has one: every DirtyClient in the process keeps its connection state on
 * this thread's GMainContext, so callers on any thread never touch it
 * (but a blocking call on a connected client, which writes its request
 * and reads its reply on its own thread through locks of the connection:
 * dirty-client-sync.c). The thread starts on first use and lives as long
 * as the process. */

#include <glib.h>

G_BEGIN_DECLS

/* The I/O thread's context, starting the thread if needed.
 * (transfer none) */
GMainContext *dirty_io_get_context (void);

/* What dirty_io_schedule () runs, once, on the I/O thread. */
typedef void (*DirtyIoFunc) (gpointer data);

/* Queues @func to run once on the I/O thread, after what was queued
 * before it. Never runs it inline, even when called from the I/O thread
 * itself, so callers need not fear re-entrancy. @notify frees @data
 * after the call (on the I/O thread). */
void          dirty_io_schedule    (DirtyIoFunc    func,
                                    gpointer       data,
                                    GDestroyNotify notify);

/* A timeout on the I/O thread. (transfer full): destroy and unref it to
 * stop it. */
GSource      *dirty_io_add_timeout (guint          interval_ms,
                                    GSourceFunc    func,
                                    gpointer       data,
                                    GDestroyNotify notify);

/* Whether the calling thread is the I/O thread. */
gboolean      dirty_io_is_io_thread (void);

G_END_DECLS
