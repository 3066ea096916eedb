/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "dirty-version.h"

G_BEGIN_DECLS

/* Declared in dirty-app.h; repeated here so the two headers do not
 * include each other. */
typedef struct _DirtyApp DirtyApp;

#define DIRTY_TYPE_CALL (dirty_call_get_type ())
DIRTY_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DirtyCall, dirty_call, DIRTY, CALL, GObject)

DIRTY_AVAILABLE_IN_ALL
DirtyApp     *dirty_call_get_app          (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
const char   *dirty_call_get_app_name     (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
const char   *dirty_call_get_action       (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
JsonArray    *dirty_call_get_args         (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
JsonObject   *dirty_call_get_kwargs       (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
GPtrArray    *dirty_call_get_attachments  (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
GBytes       *dirty_call_lookup_bytes     (DirtyCall   *self,
                                           JsonNode    *node);
DIRTY_AVAILABLE_IN_ALL
GCancellable *dirty_call_get_cancellable  (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
gint64        dirty_call_get_deadline     (DirtyCall   *self);

/* Typed access to positional arguments */
DIRTY_AVAILABLE_IN_ALL
guint         dirty_call_get_n_args       (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
JsonNode     *dirty_call_get_arg          (DirtyCall   *self,
                                           guint        index);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_arg_int      (DirtyCall   *self,
                                           guint        index,
                                           gint64      *out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_arg_double   (DirtyCall   *self,
                                           guint        index,
                                           double      *out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_arg_boolean  (DirtyCall   *self,
                                           guint        index,
                                           gboolean    *out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_arg_string   (DirtyCall   *self,
                                           guint        index,
                                           const char **out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_arg_bytes    (DirtyCall   *self,
                                           guint        index,
                                           GBytes     **out_value,
                                           GError     **error);

/* Typed access to keyword arguments, with defaults */
DIRTY_AVAILABLE_IN_ALL
JsonNode     *dirty_call_get_kwarg        (DirtyCall   *self,
                                           const char  *name);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_kwarg_int    (DirtyCall   *self,
                                           const char  *name,
                                           gint64       default_value,
                                           gint64      *out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_kwarg_double (DirtyCall   *self,
                                           const char  *name,
                                           double       default_value,
                                           double      *out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_kwarg_boolean (DirtyCall  *self,
                                            const char *name,
                                            gboolean    default_value,
                                            gboolean   *out_value,
                                            GError    **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_kwarg_string (DirtyCall   *self,
                                           const char  *name,
                                           const char  *default_value,
                                           const char **out_value,
                                           GError     **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_get_kwarg_bytes  (DirtyCall   *self,
                                           const char  *name,
                                           GBytes     **out_value,
                                           GError     **error);

/* Completing the call: exactly one of these, once */
DIRTY_AVAILABLE_IN_ALL
JsonNode     *dirty_call_attach           (DirtyCall   *self,
                                           GBytes      *bytes);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_set_detail       (DirtyCall   *self,
                                           const char  *detail);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_value     (DirtyCall   *self,
                                           JsonNode    *value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_bytes     (DirtyCall   *self,
                                           GBytes      *bytes);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_int       (DirtyCall   *self,
                                           gint64       value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_double    (DirtyCall   *self,
                                           double       value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_boolean   (DirtyCall   *self,
                                           gboolean     value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_string    (DirtyCall   *self,
                                           const char  *value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_error     (DirtyCall   *self,
                                           GError      *error);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_return_new_error (DirtyCall   *self,
                                           GQuark       domain,
                                           int          code,
                                           const char  *format,
                                           ...) G_GNUC_PRINTF (4, 5);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_return_error_if_cancelled (DirtyCall *self);

/* Streaming the result (DIRTY_ACTION_STREAM) */
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_is_stream        (DirtyCall   *self);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_send_chunk       (DirtyCall    *self,
                                           JsonNode     *chunk,
                                           GCancellable *cancellable,
                                           GError      **error);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_send_bytes_chunk (DirtyCall    *self,
                                           GBytes       *bytes,
                                           GCancellable *cancellable,
                                           GError      **error);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_send_chunk_async (DirtyCall           *self,
                                           JsonNode            *chunk,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_send_bytes_chunk_async (DirtyCall           *self,
                                                 GBytes              *bytes,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
DIRTY_AVAILABLE_IN_ALL
gboolean      dirty_call_send_chunk_finish (DirtyCall    *self,
                                            GAsyncResult *result,
                                            GError      **error);
DIRTY_AVAILABLE_IN_ALL
void          dirty_call_end_stream       (DirtyCall   *self);

G_END_DECLS
