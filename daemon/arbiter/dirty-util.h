/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The string keys of @table in strcmp order, borrowed from it (the array
 * owns nothing), so status output is stable. */
GPtrArray *dirty_util_sorted_keys (GHashTable *table);

/* Every client connection holds a descriptor (max_connections_per_uid
 * alone passes the usual soft limit of 1024), and so does every memfd
 * attachment of a queued request: raise the soft RLIMIT_NOFILE to the
 * hard one (systemd's LimitNOFILE=), as systemd expects of services that
 * poll and never select(); put it back in a child before exec
 * (async-signal-safe), so that app code using select() keeps the usual
 * limit. */
void       dirty_util_raise_fd_limit   (void);
void       dirty_util_restore_fd_limit (void);

G_END_DECLS
