/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <json-glib/json-glib.h>

#include "dirty-version.h"

G_BEGIN_DECLS

DIRTY_AVAILABLE_IN_ALL
char *dirty_json_to_string (JsonNode *node,
                            gboolean  pretty);

G_END_DECLS
