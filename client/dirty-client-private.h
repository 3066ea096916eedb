/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What DirtyClient's methods in other files (dirty-client-stream.c) share
 * with dirty-client.c. Not installed. */

#include "dirty-client.h"
#include "dirty-client-io-private.h"

G_BEGIN_DECLS

DirtyClientIo *dirty_client_get_io (DirtyClient *self);

/* Runs an async operation to its end on a private main context, so that
 * no other source of the caller's thread runs meanwhile. The operation
 * honours its GCancellable, so this ends when it is cancelled. */
typedef struct {
  GMainContext *context;
  GAsyncResult *result;
} DirtySyncWait;

void          dirty_sync_wait_begin (DirtySyncWait     *wait);
void          dirty_sync_wait_cb    (GObject      *source,
                               GAsyncResult *result,
                               gpointer      user_data);
GAsyncResult *dirty_sync_wait_end   (DirtySyncWait     *wait);

G_END_DECLS
