/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The string keys of @table in strcmp order, borrowed from it (the array
 * owns nothing), so status output is stable. */
GPtrArray *dirty_util_sorted_keys (GHashTable *table);

G_END_DECLS
