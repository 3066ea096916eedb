/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <gio/gunixsocketaddress.h>

#include "dirty-test-raw.h"

GSocket *
dirty_test_raw_connect (const char *socket_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (socket_path);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_DEFAULT, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);
  g_socket_set_timeout (socket, 30);
  return g_steal_pointer (&socket);
}

gboolean
dirty_test_raw_send (GSocket    *socket,
                     const void *data,
                     gsize       length)
{
  const char *p = data;

  while (length > 0)
    {
      gssize n = g_socket_send (socket, p, length, NULL, NULL);

      if (n <= 0)
        return FALSE;
      p += n;
      length -= n;
    }
  return TRUE;
}

gboolean
dirty_test_raw_send_frame (GSocket    *socket,
                           DirtyFrame *frame)
{
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  dirty_frame_header_write (&frame->header, header);
  return dirty_test_raw_send (socket, header, sizeof header) &&
         dirty_test_raw_send (socket, g_bytes_get_data (frame->body, NULL),
                              g_bytes_get_size (frame->body));
}

static gboolean
receive_exact (GSocket *socket,
               guint8  *buf,
               gsize    length)
{
  while (length > 0)
    {
      gssize n = g_socket_receive (socket, (char *) buf, length, NULL, NULL);

      if (n <= 0)
        return FALSE;
      buf += n;
      length -= n;
    }
  return TRUE;
}

DirtyFrame *
dirty_test_raw_read_frame (GSocket *socket)
{
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  DirtyFrameHeader h;
  DirtyLimits limits;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *body = NULL;
  g_autoptr(GBytes) bytes = NULL;
  gsize length;

  if (!receive_exact (socket, header, sizeof header))
    return NULL;
  dirty_limits_init (&limits);
  limits.max_body = G_MAXUINT32;
  g_assert_true (dirty_frame_header_parse (header, &limits, &h, &error));
  g_assert_no_error (error);
  length = dirty_frame_header_body_length (&h);
  body = g_malloc (length + 1);
  if (!receive_exact (socket, body, length))
    return NULL;
  bytes = g_bytes_new_take (g_steal_pointer (&body), length);
  return dirty_frame_new (&h, bytes);
}

JsonNode *
dirty_test_raw_frame_json (DirtyFrame *frame)
{
  JsonNode *root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits limits;

  dirty_limits_init (&limits);
  g_assert_true (dirty_frame_decode (frame, &limits, &root, &attachments, &error));
  g_assert_no_error (error);
  return root;
}

DirtyFrame *
dirty_test_raw_request (guint64     id,
                        const char *json,
                        guint32     timeout_ms)
{
  g_autoptr(JsonNode) root = json_from_string (json, NULL);

  g_assert_nonnull (root);
  return dirty_frame_encode (DIRTY_FRAME_REQUEST, 0, id, timeout_ms, root, NULL);
}
