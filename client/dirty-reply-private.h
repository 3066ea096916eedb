/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "dirty-reply.h"

G_BEGIN_DECLS

/* A reply from a decoded RESPONSE (dirty_frame_decode_member () of its
 * "result"): @result (taken) may be NULL, a JSON null result;
 * @attachments (of GBytes, referenced) may be NULL. */
DirtyReply *dirty_reply_new (JsonNode  *result,
                             GPtrArray *attachments);

G_END_DECLS
