/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The arbiter's view of a REQUEST body: the top-level members that
 * routing needs, found by one linear, allocation-free pass that checks
 * the whole text is strict JSON (RFC 8259) without building it. The
 * arbiter forwards the body unchanged and the worker parses it in full;
 * the scan accepts nothing json-glib would refuse, so a body the arbiter
 * lets through never breaks the worker's parser. */

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The JSON type of a member's value, or ABSENT. */
typedef enum {
  DIRTY_JSON_ABSENT = 0,
  DIRTY_JSON_OBJECT,
  DIRTY_JSON_ARRAY,
  DIRTY_JSON_STRING,
  DIRTY_JSON_INTEGER,   /* digits only: json-glib's G_TYPE_INT64 */
  DIRTY_JSON_DOUBLE,    /* with a fraction or an exponent */
  DIRTY_JSON_BOOLEAN,
  DIRTY_JSON_NULL,
} DirtyJsonKind;

typedef struct {
  DirtyJsonKind app_kind, action_kind, args_kind, kwargs_kind, window_kind;
  char   *app;          /* decoded, when app_kind is STRING (owned) */
  char   *action;       /* decoded, when action_kind is STRING (owned) */
  gint64  window;       /* when window_kind is INTEGER and it fits */
  gboolean window_overflows;
  /* the text of the value, when args_kind is ARRAY (kwargs_kind OBJECT):
   * a slice of the scanned text */
  const char *args_json, *kwargs_json;
  gsize   args_length, kwargs_length;
} DirtyRequestHead;

/* Scans @json (@length bytes; not NUL-terminated) for the members "app",
 * "action", "args", "kwargs" and "window" of its root object. Fails with
 * DIRTY_ERROR_PROTOCOL when the text is not valid UTF-8, not strict
 * JSON, not an object, or nests deeper than @max_depth. As json-glib,
 * the last of duplicate members wins. Free with
 * dirty_request_head_clear(). */
gboolean dirty_request_head_scan  (const char        *json,
                                   gsize              length,
                                   guint              max_depth,
                                   DirtyRequestHead  *head,
                                   GError           **error);
void     dirty_request_head_clear (DirtyRequestHead  *head);

/* Whether "args" and "kwargs" are absent or of their type (an array, an
 * object; docs/protocol.md): the arbiter refuses a request on these
 * before it queues it, and the worker again, so both ask here. */
gboolean dirty_request_head_args_valid   (const DirtyRequestHead *head);
gboolean dirty_request_head_kwargs_valid (const DirtyRequestHead *head);

/* A sealed tree of @json when it is strict JSON with an object at its
 * root, valid UTF-8 and no deeper than @max_depth, built in one pass
 * without json-glib's parser (whose setup costs more than a small body's
 * parse); NULL otherwise, to leave the verdict and its message to
 * dirty_json_check () and json-glib. Integers beyond 18 digits and
 * strings holding NUL also give NULL. */
JsonNode *dirty_json_parse_strict (const char *json,
                                   gsize       length,
                                   guint       max_depth);
/* The same for a root that is an object or an array. */
JsonNode *dirty_json_parse_container_strict (const char *json,
                                             gsize       length,
                                             guint       max_depth);
/* The value of @json's one member when @json is exactly {"@name": value}
 * (@name plain ASCII, needing no escape; the key written without one),
 * strict and within @max_depth counting the object around it; NULL
 * otherwise, for the caller to parse the whole text. A RESPONSE's
 * {"result": ...} is read so without building the object around it. */
JsonNode *dirty_json_parse_sole_member_strict (const char *json,
                                               gsize       length,
                                               const char *name,
                                               guint       max_depth);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DirtyRequestHead, dirty_request_head_clear)

G_END_DECLS
