/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "dirty-version.h"

G_BEGIN_DECLS

/**
 * DIRTY_TYPE_STREAM:
 *
 * The #GType of [class@Dirty.Stream].
 */
#define DIRTY_TYPE_STREAM (dirty_stream_get_type ())

DIRTY_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DirtyStream, dirty_stream, DIRTY, STREAM, GInputStream)

DIRTY_AVAILABLE_IN_ALL
JsonNode *dirty_stream_next_chunk_sync   (DirtyStream          *self,
                                          GCancellable         *cancellable,
                                          GError              **error);
DIRTY_AVAILABLE_IN_ALL
void      dirty_stream_next_chunk        (DirtyStream          *self,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
JsonNode *dirty_stream_next_chunk_finish (DirtyStream          *self,
                                          GAsyncResult         *result,
                                          GError              **error);
DIRTY_AVAILABLE_IN_ALL
GBytes   *dirty_stream_lookup_bytes      (DirtyStream          *self,
                                          JsonNode             *node);

G_END_DECLS
