/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "dirty-reply.h"

G_BEGIN_DECLS

/* A reply from a decoded RESPONSE body ({"result": ...}): @root may be
 * NULL or lack "result" (a JSON null result); fails with
 * DIRTY_ERROR_PROTOCOL when @root is not an object. @attachments (of
 * GBytes) may be NULL. Both are referenced, not copied. */
DirtyReply *dirty_reply_new_from_body (JsonNode   *root,
                                       GPtrArray  *attachments,
                                       GError    **error);

G_END_DECLS
