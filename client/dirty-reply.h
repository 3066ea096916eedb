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
 * DIRTY_TYPE_REPLY:
 *
 * The #GType of [class@Dirty.Reply].
 */
#define DIRTY_TYPE_REPLY (dirty_reply_get_type ())

DIRTY_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DirtyReply, dirty_reply, DIRTY, REPLY, GObject)

DIRTY_AVAILABLE_IN_ALL
JsonNode  *dirty_reply_get_result      (DirtyReply *self);
DIRTY_AVAILABLE_IN_ALL
GPtrArray *dirty_reply_get_attachments (DirtyReply *self);
DIRTY_AVAILABLE_IN_ALL
GBytes    *dirty_reply_lookup_bytes    (DirtyReply *self,
                                        JsonNode   *node);
DIRTY_AVAILABLE_IN_ALL
GBytes    *dirty_reply_get_bytes       (DirtyReply *self);
DIRTY_AVAILABLE_IN_ALL
GInputStream *dirty_reply_dup_bytes_stream (DirtyReply *self,
                                            JsonNode   *node);

G_END_DECLS
