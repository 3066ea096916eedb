/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: bytes as they would arrive on a socket, read as a
 * sequence of frames with the protocol's own header parser and body
 * decoder (UTF-8 and depth checks, json-glib, attachment table, $bytes
 * references, fd attachments against a real sealed memfd of 4096 bytes),
 * and checked against each other where two paths read the same text.
 * Any crash, leak or sanitizer report is a bug. */
#include "config.h"

#include <math.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* The text the scan gives for a member's value is, read alone by
 * json-glib, the value json-glib reads for that member of the whole
 * document. (json-glib alone, not the worker's strict parser: that one
 * check_strict_parse () compares with json-glib.) */
static void
check_member_span (const char *json,
                   gsize       length,
                   JsonNode   *root,
                   const char *member)
{
  JsonNode *expected = json_object_get_member (json_node_get_object (root), member);
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();

  if (!json_parser_load_from_data (parser, json, length, NULL))
    g_error ("json-glib refuses the text the scan gave for \"%s\"", member);
  if (expected == NULL || !json_node_equal (json_parser_get_root (parser), expected))
    g_error ("the text the scan gave for \"%s\" is not its value", member);
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
  if (g_strcmp0 (head.app_kind == DIRTY_JSON_STRING ? head.app : NULL,
                 dirty_json_get_string (root, "app")) != 0 ||
      g_strcmp0 (head.action_kind == DIRTY_JSON_STRING ? head.action : NULL,
                 dirty_json_get_string (root, "action")) != 0)
    g_error ("the request scan read another app or action than json-glib");
  /* the worker builds "args" and "kwargs" from the text the scan gives */
  if (head.args_kind == DIRTY_JSON_ARRAY)
    check_member_span (head.args_json, head.args_length, root, "args");
  if (head.kwargs_kind == DIRTY_JSON_OBJECT)
    check_member_span (head.kwargs_json, head.kwargs_length, root, "kwargs");
  dirty_request_head_clear (&head);
}

/* json-glib's tree, but for integers beyond 64 bits: json-glib 1.6 wraps
 * them around, where the strict parser reads the nearest double. */
static gboolean
same_tree (JsonNode *fast,
           JsonNode *slow)
{
  if (JSON_NODE_TYPE (fast) != JSON_NODE_TYPE (slow))
    return FALSE;
  switch (JSON_NODE_TYPE (fast))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *a = json_node_get_object (fast), *b = json_node_get_object (slow);
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;

        if (json_object_get_size (a) != json_object_get_size (b))
          return FALSE;
        json_object_iter_init (&iter, a);
        while (json_object_iter_next (&iter, &name, &member))
          if (!json_object_has_member (b, name) ||
              !same_tree (member, json_object_get_member (b, name)))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *a = json_node_get_array (fast), *b = json_node_get_array (slow);

        if (json_array_get_length (a) != json_array_get_length (b))
          return FALSE;
        for (guint i = 0; i < json_array_get_length (a); i++)
          if (!same_tree (json_array_get_element (a, i), json_array_get_element (b, i)))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_VALUE:
      if (json_node_get_value_type (fast) == G_TYPE_DOUBLE &&
          json_node_get_value_type (slow) == G_TYPE_INT64)
        return fabs (json_node_get_double (fast)) >= 9223372036854775808.0;
      return json_node_equal (fast, slow);
    case JSON_NODE_NULL:
    default:
      return TRUE;
    }
}

/* The strict parser refuses all that dirty_json_check () refuses (the
 * decode runs that check only when the parser gives up), and builds
 * json-glib's tree (same_tree ()). */
static void
check_strict_parse (DirtyFrame *frame, const DirtyLimits *limits)
{
  gsize length;
  const char *json = dirty_frame_get_json (frame, &length);
  g_autoptr(JsonNode) fast = NULL;
  g_autoptr(JsonParser) parser = NULL;

  if (length == 0 || (fast = dirty_json_parse_strict (json, length, limits->max_depth)) == NULL)
    return;
  if (!dirty_json_check (json, length, limits->max_depth, NULL))
    g_error ("the strict parser accepted JSON that dirty_json_check refuses");
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, json, length, NULL) ||
      !same_tree (fast, json_parser_get_root (parser)))
    g_error ("the strict parser built another tree than json-glib");
}

/* A RESPONSE's result read alone (dirty_frame_decode_member ()) is the
 * member the whole decode gives, and both accept the same frames. */
static void
check_decode_member (DirtyFrame        *frame,
                     const DirtyLimits *limits,
                     gboolean           decoded,
                     JsonNode          *root)
{
  g_autoptr(JsonNode) member = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  JsonNode *expected;

  if (dirty_frame_decode_member (frame, limits, "result", &member, &attachments, NULL) != decoded)
    g_error ("the member decode and the whole decode disagree on a frame");
  if (!decoded)
    return;
  expected = root != NULL ? json_object_get_member (json_node_get_object (root), "result") : NULL;
  if ((expected == NULL) != (member == NULL) ||
      (member != NULL && !json_node_equal (member, expected)))
    g_error ("the member decode read another result than the whole decode");
}

/* The fds a frame declares: dups of one sealed memfd, so the fd size
 * table is checked and mapped for real (sizes past 4096 are rejected) */
static DirtyFdSet *
memfd_set (guint n)
{
  static int memfd = -1;
  int fds[DIRTY_DEFAULT_MAX_FDS];   /* the header parser allows no more */

  if (memfd < 0)
    {
      memfd = memfd_create ("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      g_assert (memfd >= 0 && ftruncate (memfd, 4096) == 0);
      g_assert (fcntl (memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    }
  g_assert (n <= G_N_ELEMENTS (fds));
  for (guint i = 0; i < n; i++)
    fds[i] = fcntl (memfd, F_DUPFD_CLOEXEC, 3);
  return dirty_fd_set_new (fds, n);
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
      g_autoptr(DirtyFdSet) fds = NULL;
      gsize body_length;
      gboolean decoded;

      if (!dirty_frame_header_parse (data, &limits, &header, NULL))
        break;
      body_length = dirty_frame_header_body_length (&header);
      if (size - DIRTY_FRAME_HEADER_SIZE < body_length)
        break;
      body = g_bytes_new (data + DIRTY_FRAME_HEADER_SIZE, body_length);
      if (header.n_fds > 0)
        fds = memfd_set (header.n_fds);
      frame = dirty_frame_new_with_fds (&header, body, fds);
      check_request_scan (frame, &limits);
      check_strict_parse (frame, &limits);
      decoded = dirty_frame_decode (frame, &limits, &root, &attachments, NULL);
      check_decode_member (frame, &limits, decoded, root);
      if (decoded)
        {
          g_autoptr(GError) error = NULL;

          g_autoptr(GBytes) chunk = dirty_frame_get_bytes_chunk (frame);

          /* the arbiter's table check and the chunk fast path agree */
          if (!dirty_frame_check_attachments (frame, &limits, NULL))
            g_error ("the table check refused a frame the decode accepted");
          if (chunk != NULL && !g_bytes_equal (chunk, g_ptr_array_index (attachments, 0)))
            g_error ("the bytes chunk fast path read other bytes than the decode");
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
