/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

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

/* A socket file this process bound. It is removed at exit only if the
 * path still names that very file: after the file was removed (by hand,
 * by a cleanup script), a successor may have bound the same path, and
 * its socket must stay. */
typedef struct {
  char  *path;   /* NULL: nothing bound */
  dev_t  dev;
  ino_t  ino;
} DirtyBoundPath;

/* Right after bind (): remembers @path and the file it names */
void       dirty_util_bound_path_set    (DirtyBoundPath *bound,
                                         const char     *path);
/* Unlinks the path if it is still the file bound, and forgets it */
void       dirty_util_bound_path_remove (DirtyBoundPath *bound);

G_END_DECLS
