/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by dirty-memfd.c and dirty-memfd-pool.c only */

#include <sys/stat.h>

#include "dirty-memfd.h"

G_BEGIN_DECLS

/* A new sealable memfd of @size bytes (not sealed yet), or -1 with errno */
int     dirty_memfd_new_sized     (gsize size);

/* A reply that hands back one of this process's pooled memfds (an echo)
 * is read through the pool's own mapping: no mmap, and the memfd is
 * reused only once the returned GBytes is freed too. NULL when @st is not
 * a pooled memfd of ours still lent. */
GBytes *dirty_memfd_pool_map_lent (const struct stat *st,
                                   guint64            size);

G_END_DECLS
