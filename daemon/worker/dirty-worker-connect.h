/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* dirty-worker --connect=PATH: unit mode (worker_mode=unit). systemd
 * starts the worker as dirty-worker@N.service; it connects to the
 * arbiter's worker socket, and the arbiter, once it has checked that the
 * peer runs in that unit, sends its settings as a HELLO (docs/protocol.md,
 * "Unit mode"). After that the connection is served exactly like the
 * socketpair of a forked worker. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  guint  worker_id;
  guint  threads;
  GStrv  apps;
  GStrv  app_path;
  char  *hooks;      /* (nullable): hooks_module */
} DirtyWorkerSettings;

void dirty_worker_settings_clear (DirtyWorkerSettings *settings);

/* Connects to @path and reads the arbiter's settings (or its refusal, as
 * an error). @expected_id, when not 0, must be the id the arbiter says.
 * Returns the connected socket's fd, or -1. */
int  dirty_worker_connect (const char           *path,
                           guint                 expected_id,
                           DirtyWorkerSettings  *settings,
                           GError              **error);

G_END_DECLS
