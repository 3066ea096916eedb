/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: bytes as they would arrive on a socket, read as a
 * sequence of frames with the protocol's own header parser and body
 * decoder (UTF-8 and depth checks, json-glib, attachment table, $bytes
 * references). Any crash, leak or sanitizer report is a bug. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "dirty-json-scan.h"
#include "dirty-message.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
walk_bytes_refs (JsonNode *node, GPtrArray *attachments)
{
  if (node == NULL)
    return;
  dirty_json_lookup_bytes (node, attachments);
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        walk_bytes_refs (json_array_get_element (array, i), attachments);
    }
  else if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      JsonNode *member;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, NULL, &member))
        walk_bytes_refs (member, attachments);
    }
}

/* The arbiter's scan of a request must never let through what json-glib
 * (the worker) refuses, and must read the same app and action. */
static void
check_request_scan (DirtyFrame *frame, const DirtyLimits *limits)
{
  DirtyRequestHead head;
  gsize length;
  const char *json = dirty_frame_get_json (frame, &length);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonParser) parser = NULL;

  if (length == 0 || !dirty_request_head_scan (json, length, limits->max_depth, &head, NULL))
    return;
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, json, length, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    g_error ("the request scan accepted JSON that json-glib refuses");
  root = json_node_ref (json_parser_get_root (parser));
  {
    /* and the strict parser's tree is json-glib's */
    g_autoptr(JsonNode) fast = dirty_json_parse_strict (json, length);

    if (fast != NULL && !json_node_equal (fast, root))
      g_error ("the strict parser built another tree than json-glib");
  }
  if (g_strcmp0 (head.app_kind == DIRTY_JSON_STRING ? head.app : NULL,
                 dirty_json_get_string (root, "app")) != 0 ||
      g_strcmp0 (head.action_kind == DIRTY_JSON_STRING ? head.action : NULL,
                 dirty_json_get_string (root, "action")) != 0)
    g_error ("the request scan read another app or action than json-glib");
  dirty_request_head_clear (&head);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  DirtyLimits limits;

  dirty_limits_init (&limits);
  /* small limits so the fuzzer reaches them */
  limits.max_body = 1 << 16;
  limits.max_depth = 16;
  limits.max_attachments = 8;

  while (size >= DIRTY_FRAME_HEADER_SIZE)
    {
      DirtyFrameHeader header;
      g_autoptr(GBytes) body = NULL;
      g_autoptr(DirtyFrame) frame = NULL;
      g_autoptr(JsonNode) root = NULL;
      g_autoptr(GPtrArray) attachments = NULL;
      gsize body_length;

      if (!dirty_frame_header_parse (data, &limits, &header, NULL))
        break;
      body_length = dirty_frame_header_body_length (&header);
      if (size - DIRTY_FRAME_HEADER_SIZE < body_length)
        break;
      body = g_bytes_new (data + DIRTY_FRAME_HEADER_SIZE, body_length);
      frame = dirty_frame_new (&header, body);
      check_request_scan (frame, &limits);
      if (dirty_frame_decode (frame, &limits, &root, &attachments, NULL))
        {
          g_autoptr(GError) error = NULL;

          walk_bytes_refs (root, attachments);
          if (header.type == DIRTY_FRAME_ERROR && root != NULL)
            error = dirty_error_from_body (root);
          dirty_json_get_string (root, "app");
          dirty_json_get_int (root, "worker_pid", 0);
        }
      data += DIRTY_FRAME_HEADER_SIZE + body_length;
      size -= DIRTY_FRAME_HEADER_SIZE + body_length;
    }
  return 0;
}
