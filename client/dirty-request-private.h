/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "dirty-frame.h"
#include "dirty-request.h"

G_BEGIN_DECLS

/* The REQUEST frame for @self as request @id, with aux = @timeout_ms (the
 * effective timeout: the request's own, else the client's; 0 = the
 * arbiter's default). A snapshot: later changes to @self do not affect
 * it. NULL with %DIRTY_ERROR_INVALID_ARGUMENT when JSON cannot carry the
 * request (a number that is not finite, a string that is not UTF-8,
 * nesting past the protocol's limit). (transfer full) */
DirtyFrame *dirty_request_encode (DirtyRequest  *self,
                                  guint64        id,
                                  guint32        timeout_ms,
                                  GError       **error);

/* The same with the STREAM flag: the reply comes as CHUNKs, then END or
 * ERROR, with the default credit window. */
DirtyFrame *dirty_request_encode_stream (DirtyRequest  *self,
                                         guint64        id,
                                         guint32        timeout_ms,
                                         GError       **error);

/* The REQUEST frame (id 0) of a JSON-only call, straight from its parts,
 * without a DirtyRequest: execute's path, and (with
 * DIRTY_FRAME_FLAG_STREAM in @flags) a blocking stream's. @args and
 * @kwargs (either may be NULL) are only read. Fails as above.
 * (transfer full) */
DirtyFrame *dirty_request_encode_json (const char  *app,
                                       const char  *action,
                                       JsonArray   *args,
                                       JsonObject  *kwargs,
                                       guint16      flags,
                                       guint32      timeout_ms,
                                       GError     **error);

/* A request for the JSON-only shortcuts (execute, stream): @args and
 * @kwargs are copied, either may be NULL. (transfer full) */
DirtyRequest *dirty_request_new_json (const char *app,
                                      const char *action,
                                      JsonArray  *args,
                                      JsonObject *kwargs);

G_END_DECLS
