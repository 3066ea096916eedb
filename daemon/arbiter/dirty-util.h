/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The string keys of @table in strcmp order, borrowed from it (the array
 * owns nothing), so status output is stable. */
GPtrArray *dirty_util_sorted_keys (GHashTable *table);

/* The arbiter holds the fds of the memfd attachments of every request it
 * queues: raise the soft RLIMIT_NOFILE to the hard limit (it polls, never
 * select()s), and put it back in a child before exec (async-signal-safe),
 * so that app code using select() keeps the usual limit. */
void       dirty_util_raise_fd_limit   (void);
void       dirty_util_restore_fd_limit (void);

G_END_DECLS
