/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "dirty-error.h"

G_BEGIN_DECLS

/* Builds a DIRTY_ERROR with the extended fields that
 * dirty_error_get_app() and friends read. Any string may be NULL. */
GError *dirty_error_new_full (DirtyError  code,
                              const char *app,
                              const char *action,
                              const char *detail,
                              gint64      worker_pid,
                              const char *message);

G_END_DECLS
