/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "dirty-reply.h"

G_BEGIN_DECLS

/* A reply from a decoded RESPONSE (dirty_client_response_result ()):
 * @result (taken) is not NULL; @attachments (of GBytes, referenced) may
 * be NULL. */
DirtyReply *dirty_reply_new (JsonNode  *result,
                             GPtrArray *attachments);

G_END_DECLS
