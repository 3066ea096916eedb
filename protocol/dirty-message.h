/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Frame bodies: JSON text (json-glib) plus raw binary attachments that the
 * JSON refers to as {"$bytes": INDEX}. Encoding and decoding for every
 * message type lives here so client, arbiter and worker share it. */

#include <json-glib/json-glib.h>

#include "dirty-error-private.h"
#include "dirty-frame.h"
#include "dirty-json-scan.h"

G_BEGIN_DECLS

/* Builds a frame. @root (an object) and @attachments (of GBytes) may be
 * NULL. The attachments are copied into the frame body once. */
DirtyFrame *dirty_frame_encode (DirtyFrameType  type,
                                guint16         flags,
                                guint64         id,
                                guint32         aux,
                                JsonNode       *root,
                                GPtrArray      *attachments);
/* The same, but large attachments go into sealed memfds that the frame
 * carries as fd attachments: from DIRTY_MEMFD_THRESHOLD bytes into memfds
 * of @pool, to which they go back when the frame and its copies are freed
 * (for reuse only if dirty_fd_set_release_reusable () said the peer is
 * done with them); with @pool NULL, from DIRTY_MEMFD_FRESH_THRESHOLD into
 * a new write-sealed memfd each. Bytes that are a kept mapping of a
 * received memfd (dirty_frame_decode_request) go as that memfd. */
DirtyFrame *dirty_frame_encode_with_fds (DirtyFrameType  type,
                                         guint16         flags,
                                         guint64         id,
                                         guint32         aux,
                                         JsonNode       *root,
                                         GPtrArray      *attachments,
                                         DirtyMemfdPool *pool);

/* dirty_frame_encode from JSON text the caller wrote (@json_length bytes). */
DirtyFrame *dirty_frame_encode_text (DirtyFrameType  type,
                                     guint16         flags,
                                     guint64         id,
                                     guint32         aux,
                                     const char     *json,
                                     gsize           json_length,
                                     GPtrArray      *attachments);
/* From JSON text, large attachments as dirty_frame_encode_with_fds sends
 * them. */
DirtyFrame *dirty_frame_encode_text_with_fds (DirtyFrameType  type,
                                              guint16         flags,
                                              guint64         id,
                                              guint32         aux,
                                              const char     *json,
                                              gsize           json_length,
                                              GPtrArray      *attachments,
                                              DirtyMemfdPool *pool);
/* dirty_frame_encode_text_with_fds from a string the caller built: takes
 * @json (transfer full), whose buffer becomes the body when the frame has
 * no attachments. */
DirtyFrame *dirty_frame_encode_string_with_fds (DirtyFrameType  type,
                                                guint16         flags,
                                                guint64         id,
                                                guint32         aux,
                                                GString        *json,
                                                GPtrArray      *attachments,
                                                DirtyMemfdPool *pool);

/* A CHUNK whose data is its only attachment, as a worker writes it: the
 * JSON text is always this, so neither side needs json-glib per chunk. */
#define DIRTY_BYTES_CHUNK_JSON "{\"data\":{\"$bytes\":0}}"
/* The attachment of such a CHUNK (a slice of the frame), or NULL if
 * @frame is any other frame: decode that one. (transfer full) */
GBytes     *dirty_frame_get_bytes_chunk (DirtyFrame *frame);

/* Checks and parses a frame body: UTF-8, nesting depth (before parsing, so
 * hostile input cannot exhaust the stack), a JSON object at the root, and
 * the attachment table. @root is set to NULL for a body without JSON;
 * @attachments to an array of GBytes that share the frame's memory or map
 * its fd attachments read-only (never NULL). With @attachments NULL only
 * the table is checked and no fd is touched (the arbiter). Sets
 * DIRTY_ERROR_PROTOCOL on failure. */
gboolean dirty_frame_decode (DirtyFrame         *frame,
                             const DirtyLimits  *limits,
                             JsonNode          **root,
                             GPtrArray         **attachments,
                             GError            **error);

/* dirty_frame_decode () for a body read for one member, @name (the
 * "result" of a RESPONSE): @member is set to that member's value, or to
 * NULL when the body is empty or lacks it. The same checks and errors;
 * a body that is exactly {"@name": value} is parsed without building
 * the object around the value. */
gboolean dirty_frame_decode_member (DirtyFrame         *frame,
                                    const DirtyLimits  *limits,
                                    const char         *name,
                                    JsonNode          **member,
                                    GPtrArray         **attachments,
                                    GError            **error);

/* The attachment table of dirty_frame_decode() alone: its sizes add up
 * to the body, fd attachments within @limits->max_fd_payload; no fd is
 * touched. No allocation when the frame has no fd attachments. */
gboolean dirty_frame_check_attachments (DirtyFrame         *frame,
                                        const DirtyLimits  *limits,
                                        GError            **error);

/* A REQUEST as the worker takes it: the routing members of @head (see
 * dirty_request_head_scan (), which checks the whole text), the values
 * of "args" and "kwargs" built when they are an array and an object
 * (else NULL: @head says what they are), and the attachments mapped as
 * dirty_frame_decode () does, except that the mappings of fd attachments
 * keep their fds, so that sending the same GBytes on passes the same
 * memfd (an app returning an argument unchanged). The root object itself
 * is never built. Free @head with dirty_request_head_clear (). */
gboolean dirty_frame_decode_request (DirtyFrame         *frame,
                                     const DirtyLimits  *limits,
                                     DirtyRequestHead   *head,
                                     JsonNode          **args,
                                     JsonNode          **kwargs,
                                     GPtrArray         **attachments,
                                     GError            **error);

/* Checks every fd attachment of @frame: sealed memfds at least as long as
 * the frame says, all of them within @limits->max_fd_payload. Does not
 * map them. Sets DIRTY_ERROR_PROTOCOL. */
gboolean dirty_frame_check_fds (DirtyFrame         *frame,
                                const DirtyLimits  *limits,
                                GError            **error);

/* The sum of the sizes its fd size table declares, for a frame whose
 * header was checked (saturates at G_MAXUINT64) */
guint64  dirty_frame_get_fd_payload (DirtyFrame *frame);

/* Before sending a frame of our own making: whether a peer with @limits
 * takes it (its body, attachments, fds and fd payload; a body past the
 * header's 32-bit lengths too). A frame over them would be a protocol
 * error there, costing the connection and every call on it. Sets
 * DIRTY_ERROR_INVALID_ARGUMENT. */
gboolean dirty_frame_check_sendable (DirtyFrame         *frame,
                                     const DirtyLimits  *limits,
                                     GError            **error);

/* Fails when the JSON text nests deeper than @max_depth or is not valid
 * UTF-8. Linear, no allocation. */
gboolean dirty_json_check (const char  *json,
                           gsize        length,
                           guint        max_depth,
                           GError     **error);

/* {"$bytes": INDEX} */
JsonNode   *dirty_json_bytes_ref_new (guint     index);
gboolean    dirty_json_is_bytes_ref  (JsonNode *node,
                                      guint    *index);
gboolean    dirty_json_object_is_bytes_ref (JsonObject *object,
                                            guint      *index);
/* The attachment @node refers to, or NULL if @node is not a reference or
 * points past the end of @attachments. (transfer none) */
GBytes     *dirty_json_lookup_bytes  (JsonNode  *node,
                                      GPtrArray *attachments);

/* An error's text is for people and logs, and goes in a frame: an app
 * that fails with megabytes of it (a whole input in its message) must
 * not make a frame the reader refuses, which would cost the worker its
 * connection. A message is cut to DIRTY_ERROR_MESSAGE_MAX bytes, a
 * detail to DIRTY_ERROR_DETAIL_MAX. */
#define DIRTY_ERROR_MESSAGE_MAX (64 * 1024)
#define DIRTY_ERROR_DETAIL_MAX  (1024 * 1024)

/* @text, or its first @max bytes or fewer, cut at a character and saying
 * how many bytes went ("… (N more bytes)"). (transfer full) */
char       *dirty_error_text_cut     (const char *text,
                                      gsize       max);

/* ERROR frames: {"code", "message", and optionally "app", "action",
 * "detail", "worker_pid"}, the message and detail cut as above. */
DirtyFrame *dirty_frame_new_error    (guint64       id,
                                      const GError *error,
                                      const char   *app,
                                      const char   *action,
                                      gint64        worker_pid);
DirtyFrame *dirty_frame_new_error_literal (guint64     id,
                                           DirtyError  code,
                                           const char *message);
/* The GError an ERROR body describes (always a DIRTY_ERROR). The extended
 * fields of @error, if it has them, win over @app/@action/@worker_pid. */
GError     *dirty_error_from_body    (JsonNode *root);

/* Reads a string/integer member of an object node, or NULL/@fallback. */
const char *dirty_json_get_string    (JsonNode   *root,
                                      const char *member);
gint64      dirty_json_get_int       (JsonNode   *root,
                                      const char *member,
                                      gint64      fallback);

G_END_DECLS
