/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-be-private.h"
#include "dirty-error-private.h"
#include "dirty-frame.h"

const DirtyLimits *
dirty_limits_get_default (void)
{
  static const DirtyLimits defaults = {
    .max_body = DIRTY_DEFAULT_MAX_BODY,
    .max_depth = DIRTY_DEFAULT_MAX_DEPTH,
    .max_attachments = DIRTY_DEFAULT_MAX_ATTACHMENTS,
    .max_in_flight = DIRTY_DEFAULT_MAX_IN_FLIGHT,
    .frame_timeout_ms = DIRTY_DEFAULT_FRAME_TIMEOUT_MS,
    .max_queued_bytes = DIRTY_DEFAULT_MAX_QUEUED_BYTES,
    .max_fds = DIRTY_DEFAULT_MAX_FDS,
    .max_fd_payload = DIRTY_DEFAULT_MAX_FD_PAYLOAD,
  };

  return &defaults;
}

void
dirty_limits_init (DirtyLimits *limits)
{
  *limits = *dirty_limits_get_default ();
}

gboolean
dirty_frame_header_parse (const guint8       *data,
                          const DirtyLimits  *limits,
                          DirtyFrameHeader   *header,
                          GError            **error)
{
  guint32 magic = get_be32 (data);
  guint64 body;

  if (magic != DIRTY_FRAME_MAGIC)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Bad frame magic 0x%08x (expected 0x%08x)", magic, DIRTY_FRAME_MAGIC);
      return FALSE;
    }
  if (data[4] != DIRTY_PROTOCOL_VERSION)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Unsupported protocol version %u (this peer speaks %u)",
                   data[4], DIRTY_PROTOCOL_VERSION);
      return FALSE;
    }

  header->type = data[5];
  header->flags = get_be16 (data + 6);
  header->id = get_be64 (data + 8);
  header->aux = get_be32 (data + 16);
  header->json_length = get_be32 (data + 20);
  header->attachments_length = get_be32 (data + 24);
  header->n_attachments = get_be16 (data + 28);
  header->n_fds = get_be16 (data + 30);

  if (header->type < DIRTY_FRAME_HELLO || header->type > DIRTY_FRAME_TYPE_LAST)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Unknown frame type %u", header->type);
      return FALSE;
    }
  if (header->flags & ~DIRTY_FRAME_FLAGS_KNOWN)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Unknown frame flags 0x%04x", header->flags);
      return FALSE;
    }
  if (header->n_fds > limits->max_fds || header->n_fds > header->n_attachments)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame has %u file descriptors (%u attachments), more than the limit of %u",
                   header->n_fds, header->n_attachments, limits->max_fds);
      return FALSE;
    }
  body = (guint64) header->json_length + header->attachments_length;
  if (body > limits->max_body)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame body of %" G_GUINT64_FORMAT " bytes exceeds the limit of %u bytes",
                   body, limits->max_body);
      return FALSE;
    }
  if (header->n_attachments > limits->max_attachments)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame has %u attachments, more than the limit of %u",
                   header->n_attachments, limits->max_attachments);
      return FALSE;
    }
  if ((guint64) header->n_attachments * 4 + (guint64) header->n_fds * 8 >
      header->attachments_length)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Attachment section of %u bytes cannot hold the tables of %u attachments"
                   " and %u file descriptors",
                   header->attachments_length, header->n_attachments, header->n_fds);
      return FALSE;
    }
  return TRUE;
}

void
dirty_frame_header_write (const DirtyFrameHeader *header,
                          guint8                 *data)
{
  put_be32 (data, DIRTY_FRAME_MAGIC);
  data[4] = DIRTY_PROTOCOL_VERSION;
  data[5] = header->type;
  put_be16 (data + 6, header->flags);
  put_be64 (data + 8, header->id);
  put_be32 (data + 16, header->aux);
  put_be32 (data + 20, header->json_length);
  put_be32 (data + 24, header->attachments_length);
  put_be16 (data + 28, header->n_attachments);
  put_be16 (data + 30, header->n_fds);
}

static void
dirty_frame_clear (gpointer data)
{
  DirtyFrame *frame = data;

  g_bytes_unref (frame->body);
  g_clear_pointer (&frame->fds, dirty_fd_set_unref);
}

DirtyFrame *
dirty_frame_new_with_fds (const DirtyFrameHeader *header,
                          GBytes                 *body,
                          DirtyFdSet             *fds)
{
  DirtyFrame *frame = g_atomic_rc_box_new0 (DirtyFrame);

  frame->header = *header;
  frame->body = body ? g_bytes_ref (body) : g_bytes_new_static ("", 0);
  frame->fds = fds ? dirty_fd_set_ref (fds) : NULL;
  g_warn_if_fail (g_bytes_get_size (frame->body) == dirty_frame_header_body_length (header));
  g_warn_if_fail (dirty_fd_set_get_length (fds) == header->n_fds);
  return frame;
}

DirtyFrame *
dirty_frame_new (const DirtyFrameHeader *header,
                 GBytes                 *body)
{
  return dirty_frame_new_with_fds (header, body, NULL);
}

DirtyFrame *
dirty_frame_new_empty (DirtyFrameType type,
                       guint64        id,
                       guint32        aux)
{
  DirtyFrameHeader header = { .type = type, .id = id, .aux = aux };

  return dirty_frame_new (&header, NULL);
}

DirtyFrame *
dirty_frame_ref (DirtyFrame *frame)
{
  return g_atomic_rc_box_acquire (frame);
}

void
dirty_frame_unref (DirtyFrame *frame)
{
  g_atomic_rc_box_release_full (frame, dirty_frame_clear);
}

const char *
dirty_frame_get_json (DirtyFrame *frame,
                      gsize      *length)
{
  *length = frame->header.json_length;
  return g_bytes_get_data (frame->body, NULL);
}

const char *
dirty_frame_type_to_string (guint8 type)
{
  static const char *const names[] = {
    NULL, "HELLO", "REQUEST", "RESPONSE", "CHUNK", "END", "ERROR",
    "CANCEL", "CREDIT", "HEARTBEAT", "STATUS", "MANAGE", "BACKTRACE",
  };

  if (type == 0 || type >= G_N_ELEMENTS (names))
    return "UNKNOWN";
  return names[type];
}
