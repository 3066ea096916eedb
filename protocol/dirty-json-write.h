/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Appends @node (or a string, an array, an object) as strict JSON text
 * that every peer accepts. @depth is how many arrays and objects of the
 * frame's JSON are around it (0 for the frame's root object itself).
 * Fails with DIRTY_ERROR_INVALID_ARGUMENT, and @out partly written, for
 * what JSON cannot carry: a number that is not finite, a string that is
 * not UTF-8, nesting past DIRTY_DEFAULT_MAX_DEPTH (which the reader would
 * refuse as a protocol error, closing the connection); and for a bytes
 * reference {"$bytes": i} with i not below @n_attachments, the frame's
 * attachments (the reader would find no bytes there). */
gboolean    dirty_json_append        (GString     *out,
                                      JsonNode    *node,
                                      guint        depth,
                                      guint        n_attachments,
                                      GError     **error);
gboolean    dirty_json_append_string (GString     *out,
                                      const char  *text,
                                      GError     **error);
gboolean    dirty_json_append_array  (GString     *out,
                                      JsonArray   *array,
                                      guint        depth,
                                      guint        n_attachments,
                                      GError     **error);
gboolean    dirty_json_append_object (GString     *out,
                                      JsonObject  *object,
                                      guint        depth,
                                      guint        n_attachments,
                                      GError     **error);
/* An integer, without printf (about 1,000 instructions an integer) */
void        dirty_json_append_int    (GString     *out,
                                      gint64       value);

/* @root as JSON text, as above, but repairing instead of failing: null
 * for a value JSON cannot carry, U+FFFD for bytes that are not UTF-8.
 * For frames of our own making, whose text is sent whatever it holds,
 * and for text shown to people (@pretty: a member or element a line).
 * @length may be NULL. (transfer full) */
char       *dirty_json_to_text       (JsonNode    *root,
                                      gboolean     pretty,
                                      gsize       *length);

G_END_DECLS
