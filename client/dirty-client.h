/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "dirty-version.h"
#include "dirty-reply.h"
#include "dirty-request.h"
#include "dirty-stream.h"

G_BEGIN_DECLS

/**
 * DIRTY_TYPE_CLIENT:
 *
 * The #GType of [class@Dirty.Client].
 */
#define DIRTY_TYPE_CLIENT (dirty_client_get_type ())

DIRTY_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DirtyClient, dirty_client, DIRTY, CLIENT, GObject)

DIRTY_AVAILABLE_IN_ALL
DirtyClient *dirty_client_new_sync      (const char           *socket_path,
                                         GCancellable         *cancellable,
                                         GError              **error);
DIRTY_AVAILABLE_IN_ALL
void         dirty_client_new           (const char           *socket_path,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
DirtyClient *dirty_client_new_finish    (GAsyncResult         *result,
                                         GError              **error);
DIRTY_AVAILABLE_IN_ALL
DirtyClient *dirty_client_get_default   (GError              **error);

DIRTY_AVAILABLE_IN_ALL
const char  *dirty_client_get_socket_path (DirtyClient        *self);
DIRTY_AVAILABLE_IN_ALL
guint        dirty_client_get_timeout   (DirtyClient          *self);
DIRTY_AVAILABLE_IN_ALL
void         dirty_client_set_timeout   (DirtyClient          *self,
                                         guint                 timeout_ms);

DIRTY_AVAILABLE_IN_ALL
DirtyReply  *dirty_client_send_sync     (DirtyClient          *self,
                                         DirtyRequest         *request,
                                         GCancellable         *cancellable,
                                         GError              **error);
DIRTY_AVAILABLE_IN_ALL
void         dirty_client_send          (DirtyClient          *self,
                                         DirtyRequest         *request,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
DirtyReply  *dirty_client_send_finish   (DirtyClient          *self,
                                         GAsyncResult         *result,
                                         GError              **error);

DIRTY_AVAILABLE_IN_ALL
JsonNode    *dirty_client_execute_sync  (DirtyClient          *self,
                                         const char           *app,
                                         const char           *action,
                                         JsonArray            *args,
                                         JsonObject           *kwargs,
                                         GCancellable         *cancellable,
                                         GError              **error);
DIRTY_AVAILABLE_IN_ALL
void         dirty_client_execute       (DirtyClient          *self,
                                         const char           *app,
                                         const char           *action,
                                         JsonArray            *args,
                                         JsonObject           *kwargs,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
JsonNode    *dirty_client_execute_finish (DirtyClient         *self,
                                          GAsyncResult        *result,
                                          GError             **error);

DIRTY_AVAILABLE_IN_ALL
DirtyStream *dirty_client_send_stream_sync   (DirtyClient          *self,
                                              DirtyRequest         *request,
                                              GCancellable         *cancellable,
                                              GError              **error);
DIRTY_AVAILABLE_IN_ALL
void         dirty_client_send_stream        (DirtyClient          *self,
                                              DirtyRequest         *request,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
DirtyStream *dirty_client_send_stream_finish (DirtyClient          *self,
                                              GAsyncResult         *result,
                                              GError              **error);

DIRTY_AVAILABLE_IN_ALL
DirtyStream *dirty_client_stream_sync        (DirtyClient          *self,
                                              const char           *app,
                                              const char           *action,
                                              JsonArray            *args,
                                              JsonObject           *kwargs,
                                              GCancellable         *cancellable,
                                              GError              **error);
DIRTY_AVAILABLE_IN_ALL
void         dirty_client_stream             (DirtyClient          *self,
                                              const char           *app,
                                              const char           *action,
                                              JsonArray            *args,
                                              JsonObject           *kwargs,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
DirtyStream *dirty_client_stream_finish      (DirtyClient          *self,
                                              GAsyncResult         *result,
                                              GError              **error);

DIRTY_AVAILABLE_IN_ALL
void         dirty_client_query_status        (DirtyClient          *self,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
JsonNode    *dirty_client_query_status_finish (DirtyClient          *self,
                                               GAsyncResult         *result,
                                               GError              **error);
DIRTY_AVAILABLE_IN_ALL
JsonNode    *dirty_client_query_status_sync   (DirtyClient          *self,
                                               GCancellable         *cancellable,
                                               GError              **error);

DIRTY_AVAILABLE_IN_ALL
void         dirty_client_manage              (DirtyClient          *self,
                                               const char           *verb,
                                               JsonObject           *params,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
DIRTY_AVAILABLE_IN_ALL
JsonNode    *dirty_client_manage_finish       (DirtyClient          *self,
                                               GAsyncResult         *result,
                                               GError              **error);
DIRTY_AVAILABLE_IN_ALL
JsonNode    *dirty_client_manage_sync         (DirtyClient          *self,
                                               const char           *verb,
                                               JsonObject           *params,
                                               GCancellable         *cancellable,
                                               GError              **error);

G_END_DECLS
