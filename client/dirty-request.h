/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "dirty-version.h"

G_BEGIN_DECLS

/**
 * DIRTY_TYPE_REQUEST:
 *
 * The #GType of [class@Dirty.Request].
 */
#define DIRTY_TYPE_REQUEST (dirty_request_get_type ())

DIRTY_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DirtyRequest, dirty_request, DIRTY, REQUEST, GObject)

DIRTY_AVAILABLE_IN_ALL
DirtyRequest *dirty_request_new              (const char   *app,
                                              const char   *action);

DIRTY_AVAILABLE_IN_ALL
void          dirty_request_add_arg          (DirtyRequest *self,
                                              JsonNode     *value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_request_add_bytes        (DirtyRequest *self,
                                              GBytes       *bytes);
DIRTY_AVAILABLE_IN_ALL
void          dirty_request_set_kwarg        (DirtyRequest *self,
                                              const char   *name,
                                              JsonNode     *value);
DIRTY_AVAILABLE_IN_ALL
void          dirty_request_set_kwarg_bytes  (DirtyRequest *self,
                                              const char   *name,
                                              GBytes       *bytes);
DIRTY_AVAILABLE_IN_ALL
JsonNode     *dirty_request_attach           (DirtyRequest *self,
                                              GBytes       *bytes);
DIRTY_AVAILABLE_IN_ALL
void          dirty_request_set_args         (DirtyRequest *self,
                                              JsonArray    *args);
DIRTY_AVAILABLE_IN_ALL
void          dirty_request_set_kwargs       (DirtyRequest *self,
                                              JsonObject   *kwargs);
DIRTY_AVAILABLE_IN_ALL
void          dirty_request_set_timeout      (DirtyRequest *self,
                                              guint         timeout_ms);

DIRTY_AVAILABLE_IN_ALL
const char   *dirty_request_get_app          (DirtyRequest *self);
DIRTY_AVAILABLE_IN_ALL
const char   *dirty_request_get_action       (DirtyRequest *self);
DIRTY_AVAILABLE_IN_ALL
JsonArray    *dirty_request_get_args         (DirtyRequest *self);
DIRTY_AVAILABLE_IN_ALL
JsonObject   *dirty_request_get_kwargs       (DirtyRequest *self);
DIRTY_AVAILABLE_IN_ALL
GPtrArray    *dirty_request_get_attachments  (DirtyRequest *self);
DIRTY_AVAILABLE_IN_ALL
guint         dirty_request_get_timeout      (DirtyRequest *self);

G_END_DECLS
