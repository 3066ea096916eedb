/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Raw protocol access for tests that talk to the real daemon frame by
 * frame (hostile input, control messages): blocking sockets, the
 * protocol's own codec for valid frames. Tests that build broken frames
 * write their bytes with dirty_test_raw_send(). */

#include "dirty-message.h"

G_BEGIN_DECLS

/* A blocking connection with a 30 s timeout; fails the test if refused. */
GSocket    *dirty_test_raw_connect    (const char *socket_path);
/* FALSE once the peer has closed the connection (or the timeout hit). */
gboolean    dirty_test_raw_send       (GSocket    *socket,
                                       const void *data,
                                       gsize       length);
gboolean    dirty_test_raw_send_frame (GSocket    *socket,
                                       DirtyFrame *frame);
/* The next frame, or NULL at EOF; a malformed header fails the test. */
DirtyFrame *dirty_test_raw_read_frame (GSocket    *socket);
/* The frame's JSON body (NULL if it has none); must decode. */
JsonNode   *dirty_test_raw_frame_json (DirtyFrame *frame);
/* A REQUEST frame with @json as its body. */
DirtyFrame *dirty_test_raw_request    (guint64     id,
                                       const char *json,
                                       guint32     timeout_ms);

G_END_DECLS
