/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "dirty-be-private.h"
#include "dirty-json-scan.h"
#include "dirty-json-write.h"
#include "dirty-message.h"

/* Pooled fds go back to their pool, for reuse only when the peer is done
 * with them (dirty_fd_set_mark_reusable). */
static void
release_to_pool (DirtyFdSet *set,
                 gboolean    reusable,
                 gpointer    user_data)
{
  for (guint i = 0; i < dirty_fd_set_get_length (set); i++)
    dirty_memfd_pool_release (user_data, dirty_fd_set_steal (set, i), reusable);
}

/* The fd for attachment @bytes, or -1 to send it inline: below the
 * threshold, or when no memfd can be made (then it goes inline if it
 * fits, and the peer's max_body says whether it does). */
static int
attachment_fd (GBytes         *bytes,
               gboolean        use_fds,
               DirtyMemfdPool *pool,
               guint           n_fds)
{
  gsize size = g_bytes_get_size (bytes);
  int fd;

  if (!use_fds || size < DIRTY_MEMFD_THRESHOLD || n_fds >= DIRTY_DEFAULT_MAX_FDS)
    return -1;
  /* bytes that arrived as a memfd and go back unchanged (an echo, a
   * pass-through) go back as the same memfd: no copy at all */
  if ((fd = dirty_memfd_lookup (bytes)) >= 0)
    return fd;
  if (pool != NULL)
    return dirty_memfd_pool_acquire (pool, bytes);
  if (size < DIRTY_MEMFD_FRESH_THRESHOLD)
    return -1;
  return dirty_memfd_new_from_bytes (bytes);
}

/* The one body builder (docs/protocol.md, "Body"): the JSON text, the
 * attachment table, the fd size table, the inline data. With @use_fds,
 * large attachments become fd attachments (attachment_fd). With
 * @take_json, @json is g_malloc'd and ours: when it is the whole body (no
 * attachments) it becomes the body as it is, saving an allocation and a
 * copy of the text on every reply and request. */
static DirtyFrame *
encode_body (DirtyFrameType  type,
             guint16         flags,
             guint64         id,
             guint32         aux,
             const char     *json,
             gsize           json_length,
             gboolean        take_json,
             GPtrArray      *attachments,
             gboolean        use_fds,
             DirtyMemfdPool *pool)
{
  DirtyFrameHeader header = { .type = type, .flags = flags, .id = id, .aux = aux };
  g_autofree int *fds = NULL;
  g_autoptr(DirtyFdSet) fd_set = NULL;
  gsize total, attach_data = 0;
  guint n = attachments ? attachments->len : 0, n_fds = 0;
  guint8 *body, *p;

  fds = n > 0 ? g_new (int, n) : NULL;
  for (guint i = 0; i < n; i++)
    {
      GBytes *bytes = g_ptr_array_index (attachments, i);

      fds[i] = attachment_fd (bytes, use_fds, pool, n_fds);
      if (fds[i] >= 0)
        n_fds++;
      else
        attach_data += g_bytes_get_size (bytes);
    }

  header.json_length = json_length;
  header.n_attachments = n;
  header.n_fds = n_fds;
  header.attachments_length = n ? 4 * n + 8 * n_fds + attach_data : 0;
  total = json_length + header.attachments_length;

  if (take_json && n == 0 && json_length > 0)
    {
      g_autoptr(GBytes) bytes = g_bytes_new_take ((char *) json, json_length);

      return dirty_frame_new_with_fds (&header, bytes, NULL);
    }
  body = p = g_malloc (total ? total : 1);
  if (json_length)
    p = mempcpy (p, json, json_length);
  if (take_json)
    g_free ((char *) json);
  for (guint i = 0; i < n; i++, p += 4)
    put_be32 (p, fds[i] >= 0 ? DIRTY_ATTACHMENT_FD_MARK
                               : g_bytes_get_size (g_ptr_array_index (attachments, i)));
  for (guint i = 0; i < n; i++)
    if (fds[i] >= 0)
      {
        put_be64 (p, g_bytes_get_size (g_ptr_array_index (attachments, i)));
        p += 8;
      }
  for (guint i = 0; i < n; i++)
    {
      gsize size;
      gconstpointer data = g_bytes_get_data (g_ptr_array_index (attachments, i), &size);

      if (size && fds[i] < 0)
        p = mempcpy (p, data, size);
    }
  if (n_fds > 0)
    {
      guint k = 0;

      for (guint i = 0; i < n; i++)
        if (fds[i] >= 0)
          fds[k++] = fds[i];
      fd_set = dirty_fd_set_new (fds, n_fds);
      if (pool != NULL)
        dirty_fd_set_set_release (fd_set, release_to_pool, pool);
    }

  {
    g_autoptr(GBytes) bytes = g_bytes_new_take (body, total);
    return dirty_frame_new_with_fds (&header, bytes, fd_set);
  }
}

DirtyFrame *
dirty_frame_encode_text (DirtyFrameType  type,
                         guint16         flags,
                         guint64         id,
                         guint32         aux,
                         const char     *json,
                         gsize           json_length,
                         GPtrArray      *attachments)
{
  return encode_body (type, flags, id, aux, json, json_length, FALSE, attachments, FALSE, NULL);
}

DirtyFrame *
dirty_frame_encode_text_with_fds (DirtyFrameType  type,
                                  guint16         flags,
                                  guint64         id,
                                  guint32         aux,
                                  const char     *json,
                                  gsize           json_length,
                                  GPtrArray      *attachments,
                                  DirtyMemfdPool *pool)
{
  return encode_body (type, flags, id, aux, json, json_length, FALSE, attachments, TRUE, pool);
}

DirtyFrame *
dirty_frame_encode_string_with_fds (DirtyFrameType  type,
                                    guint16         flags,
                                    guint64         id,
                                    guint32         aux,
                                    GString        *json,
                                    GPtrArray      *attachments,
                                    DirtyMemfdPool *pool)
{
  gsize json_length = json->len;

  return encode_body (type, flags, id, aux, g_string_free (json, FALSE), json_length, TRUE,
                      attachments, TRUE, pool);
}

DirtyFrame *
dirty_frame_encode (DirtyFrameType  type,
                    guint16         flags,
                    guint64         id,
                    guint32         aux,
                    JsonNode       *root,
                    GPtrArray      *attachments)
{
  gsize json_length = 0;
  char *json = root ? dirty_json_to_text (root, FALSE, &json_length) : NULL;

  return encode_body (type, flags, id, aux, json, json_length, TRUE, attachments, FALSE, NULL);
}

DirtyFrame *
dirty_frame_encode_with_fds (DirtyFrameType  type,
                             guint16         flags,
                             guint64         id,
                             guint32         aux,
                             JsonNode       *root,
                             GPtrArray      *attachments,
                             DirtyMemfdPool *pool)
{
  gsize json_length = 0;
  char *json = root ? dirty_json_to_text (root, FALSE, &json_length) : NULL;

  return encode_body (type, flags, id, aux, json, json_length, TRUE, attachments, TRUE, pool);
}

static gboolean inline_table_adds_up (DirtyFrame *frame);

GBytes *
dirty_frame_get_bytes_chunk (DirtyFrame *frame)
{
  static const char text[] = DIRTY_BYTES_CHUNK_JSON;
  const DirtyFrameHeader *h = &frame->header;
  const guint8 *body;
  gsize size;

  /* an fd attachment is mapped (and checked) by the full decode */
  if (h->type != DIRTY_FRAME_CHUNK || h->json_length != sizeof text - 1 ||
      h->n_attachments != 1 || h->n_fds != 0)
    return NULL;
  body = g_bytes_get_data (frame->body, NULL);
  if (memcmp (body, text, sizeof text - 1) != 0 || !inline_table_adds_up (frame))
    return NULL;
  size = get_be32 (body + h->json_length);
  return g_bytes_new_from_bytes (frame->body, h->json_length + 4, size);
}

gboolean
dirty_json_check (const char  *json,
                  gsize        length,
                  guint        max_depth,
                  GError     **error)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  if (!g_utf8_validate_len (json, length, NULL))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame JSON is not valid UTF-8");
      return FALSE;
    }
  for (gsize i = 0; i < length; i++)
    {
      char c = json[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > max_depth)
            {
              g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame JSON nests deeper than the limit of %u", max_depth);
              return FALSE;
            }
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

/* Whether a string of @json escapes U+0000 ("\u0000" after an even
 * number of backslashes): backslashes are only found in strings. */
static gboolean
holds_escaped_nul (const char *json,
                   gsize       length)
{
  for (const char *p = json; (p = memmem (p, json + length - p, "u0000", 5)) != NULL; p += 5)
    {
      gsize slashes = 0;

      while (p - slashes > json && p[-1 - (gssize) slashes] == '\\')
        slashes++;
      if (slashes % 2 == 1)
        return TRUE;
    }
  return FALSE;
}

/* json-glib's tree of @json (checked for depth already), for what the
 * strict builder leaves to it; NULL for an empty text. Not a string
 * holding U+0000: a JsonNode's string ends there, and json-glib cuts it
 * short without a word ("a\u0000b" would be read "a"). */
static gboolean
parse_with_json_glib (const char  *json,
                      gsize        length,
                      JsonNode   **node,
                      GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;

  if (holds_escaped_nul (json, length))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame JSON has a string holding U+0000, which it cannot carry");
      return FALSE;
    }
  if (!json_parser_load_from_data (parser, json, length, &local_error))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame JSON does not parse: %s", local_error->message);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  *node = root ? json_node_ref (root) : NULL;
  return TRUE;
}

static gboolean
parse_json (const char  *json,
            gsize        length,
            guint        max_depth,
            JsonNode   **root,
            GError     **error)
{
  g_autoptr(JsonNode) node = NULL;

  /* the common case, strict JSON, without json-glib's parser; it checks
   * UTF-8 and depth as it goes */
  if ((*root = dirty_json_parse_strict (json, length, max_depth)) != NULL)
    return TRUE;
  /* json-glib recurses per level: the depth check comes first, and its
   * verdict is the error for hostile text */
  if (!dirty_json_check (json, length, max_depth, error) ||
      !parse_with_json_glib (json, length, &node, error))
    return FALSE;
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame JSON must be an object");
      return FALSE;
    }
  *root = g_steal_pointer (&node);
  return TRUE;
}

typedef enum {
  WALK_TABLE_ONLY,   /* sizes add up; fds are not looked at */
  WALK_CHECK_FDS,    /* and every fd is a sealed memfd of its size */
  WALK_MAP,          /* and make the GBytes, mapping the fds */
  WALK_MAP_KEEP,     /* the same, the mappings keeping their fds */
} WalkMode;

/* The fd attachment @fd_index of @size bytes, checked or mapped */
static gboolean
walk_fd (DirtyFrame  *frame,
         guint        fd_index,
         guint64      size,
         WalkMode     mode,
         GPtrArray   *out,
         GError     **error)
{
  int fd;

  if (mode == WALK_TABLE_ONLY)
    return TRUE;
  if (dirty_fd_set_get_length (frame->fds) <= fd_index)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame declares file descriptors it did not carry");
      return FALSE;
    }
  fd = dirty_fd_set_get (frame->fds, fd_index);
  if (mode == WALK_CHECK_FDS)
    return dirty_memfd_check (fd, size, error);
  {
    GBytes *bytes = dirty_memfd_map (fd, size, mode == WALK_MAP_KEEP, error);

    if (bytes == NULL)
      return FALSE;
    g_ptr_array_add (out, bytes);
    return TRUE;
  }
}

/* Walks the attachment table (docs/protocol.md, "Body" and "File
 * descriptor attachments"): inline lengths and fd marks, the fd size
 * table, the inline data. */
static gboolean
walk_attachments (DirtyFrame         *frame,
                  const DirtyLimits  *limits,
                  WalkMode            mode,
                  GPtrArray          *out,
                  GError            **error)
{
  const DirtyFrameHeader *h = &frame->header;
  gsize fd_table = (gsize) h->json_length + 4 * h->n_attachments;
  gsize offset = fd_table + 8 * h->n_fds;
  gsize end = dirty_frame_header_body_length (h);
  const guint8 *table;
  guint fd_index = 0;
  guint64 fd_total = 0;

  /* an empty body has no data pointer at all (found by fuzz-frame) */
  if (h->n_attachments == 0 && offset == end)
    return TRUE;
  table = (const guint8 *) g_bytes_get_data (frame->body, NULL) + h->json_length;

  for (guint i = 0; i < h->n_attachments; i++)
    {
      guint32 size = get_be32 (table + 4 * i);

      if (size == DIRTY_ATTACHMENT_FD_MARK && fd_index < h->n_fds)
        {
          guint64 fd_size = get_be64 (table + 4 * h->n_attachments + 8 * fd_index);

          fd_total += MIN (fd_size, G_MAXUINT64 - fd_total);
          if (fd_total > limits->max_fd_payload)
            {
              g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "File descriptor attachments of more than %" G_GUINT64_FORMAT
                           " bytes in one frame exceed the limit", limits->max_fd_payload);
              return FALSE;
            }
          if (!walk_fd (frame, fd_index++, fd_size, mode, out, error))
            return FALSE;
          continue;
        }
      if (size > end - offset)
        {
          g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                       "Attachment %u of %u bytes runs past the end of the frame", i, size);
          return FALSE;
        }
      if (out != NULL)
        g_ptr_array_add (out, g_bytes_new_from_bytes (frame->body, offset, size));
      offset += size;
    }
  if (fd_index != h->n_fds)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame declares %u file descriptors, its table marks %u",
                   h->n_fds, fd_index);
      return FALSE;
    }
  if (offset != end)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Attachment section has %" G_GSIZE_FORMAT " bytes beyond its table",
                   end - offset);
      return FALSE;
    }
  return TRUE;
}

guint64
dirty_frame_get_fd_payload (DirtyFrame *frame)
{
  const DirtyFrameHeader *h = &frame->header;
  const guint8 *table;
  guint64 total = 0;

  if (h->n_fds == 0)
    return 0;
  table = (const guint8 *) g_bytes_get_data (frame->body, NULL) + h->json_length +
          4 * h->n_attachments;
  for (guint i = 0; i < h->n_fds; i++)
    total += MIN (get_be64 (table + 8 * i), G_MAXUINT64 - total);
  return total;
}

gboolean
dirty_frame_check_sendable (DirtyFrame         *frame,
                            const DirtyLimits  *limits,
                            GError            **error)
{
  const DirtyFrameHeader *h = &frame->header;
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  DirtyFrameHeader parsed;
  g_autoptr(GError) local_error = NULL;

  /* the header's lengths are 32 bits: the body's own size is the truth */
  if (g_bytes_get_size (frame->body) != dirty_frame_header_body_length (h))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   "Frame body of %" G_GSIZE_FORMAT " bytes is more than a frame can carry",
                   g_bytes_get_size (frame->body));
      return FALSE;
    }
  /* every reply and chunk passes here: the sizes first, and the reader's
   * own checks (and their words) only for a frame past one of them */
  if (dirty_frame_header_body_length (h) > limits->max_body ||
      h->n_attachments > limits->max_attachments || h->n_fds > limits->max_fds)
    {
      dirty_frame_header_write (h, header);
      if (!dirty_frame_header_parse (header, limits, &parsed, &local_error))
        {
          g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                               local_error->message);
          return FALSE;
        }
    }
  if (h->n_fds > 0 && dirty_frame_get_fd_payload (frame) > limits->max_fd_payload)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   "File descriptor attachments of more than %" G_GUINT64_FORMAT
                   " bytes in one frame exceed the limit", limits->max_fd_payload);
      return FALSE;
    }
  return TRUE;
}

gboolean
dirty_frame_check_fds (DirtyFrame         *frame,
                       const DirtyLimits  *limits,
                       GError            **error)
{
  return walk_attachments (frame, limits, WALK_CHECK_FDS, NULL, error);
}

/* The inline sizes of a table without fd attachments add up to the body:
 * the common case, without allocation */
static gboolean
inline_table_adds_up (DirtyFrame *frame)
{
  const DirtyFrameHeader *h = &frame->header;
  gsize offset = (gsize) h->json_length + 4 * h->n_attachments;
  gsize end = dirty_frame_header_body_length (h);

  if (h->n_fds != 0)
    return FALSE;
  if (h->n_attachments > 0)
    {
      /* no pointer arithmetic on an empty body's NULL data */
      const guint8 *table = (const guint8 *) g_bytes_get_data (frame->body, NULL) + h->json_length;

      for (guint i = 0; i < h->n_attachments; i++)
        {
          guint32 size = get_be32 (table + 4 * i);

          if (size > end - offset)
            return FALSE;
          offset += size;
        }
    }
  return offset == end;
}

gboolean
dirty_frame_check_attachments (DirtyFrame         *frame,
                               const DirtyLimits  *limits,
                               GError            **error)
{
  if (inline_table_adds_up (frame))
    return TRUE;
  /* fd attachments, or not common: the checks and error message of a
   * decode, without touching any fd */
  return walk_attachments (frame, limits, WALK_TABLE_ONLY, NULL, error);
}

/* The attachments as GBytes (walk_attachments () in @mode, which maps),
 * or NULL with @error set */
static GPtrArray *
map_attachments (DirtyFrame         *frame,
                 const DirtyLimits  *limits,
                 WalkMode            mode,
                 GError            **error)
{
  g_autoptr(GPtrArray) parts = g_ptr_array_new_full (frame->header.n_attachments,
                                                     (GDestroyNotify) g_bytes_unref);

  if (!walk_attachments (frame, limits, mode, parts, error))
    return NULL;
  return g_steal_pointer (&parts);
}

static gboolean
decode (DirtyFrame         *frame,
        const DirtyLimits  *limits,
        WalkMode            map_mode,
        JsonNode          **root,
        GPtrArray         **attachments,
        GError            **error)
{
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GPtrArray) parts = NULL;
  gsize length;
  const char *json = dirty_frame_get_json (frame, &length);

  if (length > 0)
    {
      if (!parse_json (json, length, limits->max_depth, &node, error))
        return FALSE;
    }
  if (attachments == NULL)
    {
      if (!walk_attachments (frame, limits, WALK_TABLE_ONLY, NULL, error))
        return FALSE;
    }
  else if ((parts = map_attachments (frame, limits, map_mode, error)) == NULL)
    return FALSE;

  *root = g_steal_pointer (&node);
  if (attachments != NULL)
    *attachments = g_steal_pointer (&parts);
  return TRUE;
}

gboolean
dirty_frame_decode (DirtyFrame         *frame,
                    const DirtyLimits  *limits,
                    JsonNode          **root,
                    GPtrArray         **attachments,
                    GError            **error)
{
  return decode (frame, limits, WALK_MAP, root, attachments, error);
}

gboolean
dirty_frame_decode_member (DirtyFrame         *frame,
                           const DirtyLimits  *limits,
                           const char         *name,
                           JsonNode          **member,
                           GPtrArray         **attachments,
                           GError            **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) value = NULL;
  g_autoptr(GPtrArray) parts = NULL;
  gsize length;
  const char *json = dirty_frame_get_json (frame, &length);

  if (length > 0 &&
      (value = dirty_json_parse_sole_member_strict (json, length, name, limits->max_depth)) != NULL)
    {
      if ((parts = map_attachments (frame, limits, WALK_MAP, error)) == NULL)
        return FALSE;
    }
  else
    {
      JsonNode *found;

      if (!decode (frame, limits, WALK_MAP, &root, &parts, error))
        return FALSE;
      found = root != NULL ? json_object_get_member (json_node_get_object (root), name) : NULL;
      /* a shallow copy, without the parent pointer into @root */
      value = found != NULL ? json_node_copy (found) : NULL;
    }
  *member = g_steal_pointer (&value);
  *attachments = g_steal_pointer (&parts);
  return TRUE;
}

/* A slice of checked text (an array or an object) as a tree */
static gboolean
parse_member (const char  *json,
              gsize        length,
              guint        max_depth,
              JsonNode   **node,
              GError     **error)
{
  if ((*node = dirty_json_parse_container_strict (json, length, max_depth)) != NULL)
    return TRUE;
  /* what the fast builder leaves to json-glib (a string holding U+0000,
   * refused there, or text that is not JSON, for json-glib's message);
   * the scan checked the depth already */
  return parse_with_json_glib (json, length, node, error);
}

gboolean
dirty_frame_decode_request (DirtyFrame         *frame,
                            const DirtyLimits  *limits,
                            DirtyRequestHead   *head,
                            JsonNode          **args,
                            JsonNode          **kwargs,
                            GPtrArray         **attachments,
                            GError            **error)
{
  g_autoptr(GPtrArray) parts = NULL;
  g_autoptr(JsonNode) args_node = NULL;
  g_autoptr(JsonNode) kwargs_node = NULL;
  gsize length;
  const char *json = dirty_frame_get_json (frame, &length);

  memset (head, 0, sizeof *head);
  if (length > 0 && !dirty_request_head_scan (json, length, limits->max_depth, head, error))
    return FALSE;
  if ((head->args_kind == DIRTY_JSON_ARRAY &&
       !parse_member (head->args_json, head->args_length, limits->max_depth, &args_node, error)) ||
      (head->kwargs_kind == DIRTY_JSON_OBJECT &&
       !parse_member (head->kwargs_json, head->kwargs_length, limits->max_depth, &kwargs_node,
                      error)))
    {
      dirty_request_head_clear (head);
      return FALSE;
    }
  if ((parts = map_attachments (frame, limits, WALK_MAP_KEEP, error)) == NULL)
    {
      dirty_request_head_clear (head);
      return FALSE;
    }
  *args = g_steal_pointer (&args_node);
  *kwargs = g_steal_pointer (&kwargs_node);
  *attachments = g_steal_pointer (&parts);
  return TRUE;
}

JsonNode *
dirty_json_bytes_ref_new (guint index)
{
  JsonObject *object = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_int_member (object, "$bytes", index);
  json_node_take_object (node, object);
  return node;
}

gboolean
dirty_json_is_bytes_ref (JsonNode *node,
                         guint    *index)
{
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return FALSE;
  return dirty_json_object_is_bytes_ref (json_node_get_object (node), index);
}

gboolean
dirty_json_object_is_bytes_ref (JsonObject *object,
                                guint      *index)
{
  JsonNode *member;
  gint64 value;

  if (json_object_get_size (object) != 1)
    return FALSE;
  member = json_object_get_member (object, "$bytes");
  if (member == NULL || json_node_get_value_type (member) != G_TYPE_INT64)
    return FALSE;
  value = json_node_get_int (member);
  if (value < 0 || value > G_MAXUINT16)
    return FALSE;
  if (index)
    *index = (guint) value;
  return TRUE;
}

GBytes *
dirty_json_lookup_bytes (JsonNode  *node,
                         GPtrArray *attachments)
{
  guint index;

  if (attachments == NULL || !dirty_json_is_bytes_ref (node, &index) ||
      index >= attachments->len)
    return NULL;
  return g_ptr_array_index (attachments, index);
}

const char *
dirty_json_get_string (JsonNode   *root,
                       const char *member)
{
  JsonNode *node;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  node = json_object_get_member (json_node_get_object (root), member);
  if (node == NULL || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

gint64
dirty_json_get_int (JsonNode   *root,
                    const char *member,
                    gint64      fallback)
{
  JsonNode *node;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return fallback;
  node = json_object_get_member (json_node_get_object (root), member);
  if (node == NULL || json_node_get_value_type (node) != G_TYPE_INT64)
    return fallback;
  return json_node_get_int (node);
}

static DirtyError
wire_code_for (const GError *error)
{
  if (error->domain == DIRTY_ERROR)
    return (DirtyError) error->code;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return DIRTY_ERROR_CANCELLED;
  /* Any other domain is the app's own failure. */
  return DIRTY_ERROR_APP;
}

char *
dirty_error_text_cut (const char *text,
                      gsize       max)
{
  gsize length = strlen (text);
  const char *cut;

  if (length <= max)
    return g_strdup (text);
  cut = g_utf8_find_prev_char (text, text + max + 1);
  return g_strdup_printf ("%.*s… (%" G_GSIZE_FORMAT " more bytes)", (int) (cut - text), text,
                          length - (cut - text));
}

DirtyFrame *
dirty_frame_new_error (guint64       id,
                       const GError *error,
                       const char   *app,
                       const char   *action,
                       gint64        worker_pid)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  const char *detail = dirty_error_get_detail (error);
  g_autofree char *short_message = dirty_error_text_cut (error->message,
                                                         DIRTY_ERROR_MESSAGE_MAX);
  g_autofree char *short_detail = detail ? dirty_error_text_cut (detail, DIRTY_ERROR_DETAIL_MAX)
                                         : NULL;

  app = dirty_error_get_app (error) ? dirty_error_get_app (error) : app;
  action = dirty_error_get_action (error) ? dirty_error_get_action (error) : action;
  if (dirty_error_get_worker_pid (error) != 0)
    worker_pid = dirty_error_get_worker_pid (error);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "code");
  json_builder_add_string_value (builder, dirty_error_to_wire (wire_code_for (error)));
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, short_message);
  if (app)
    {
      json_builder_set_member_name (builder, "app");
      json_builder_add_string_value (builder, app);
    }
  if (action)
    {
      json_builder_set_member_name (builder, "action");
      json_builder_add_string_value (builder, action);
    }
  if (detail)
    {
      json_builder_set_member_name (builder, "detail");
      json_builder_add_string_value (builder, short_detail);
    }
  if (worker_pid > 0)
    {
      json_builder_set_member_name (builder, "worker_pid");
      json_builder_add_int_value (builder, worker_pid);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return dirty_frame_encode (DIRTY_FRAME_ERROR, 0, id, 0, root, NULL);
}

DirtyFrame *
dirty_frame_new_error_literal (guint64     id,
                               DirtyError  code,
                               const char *message)
{
  g_autoptr(GError) error = g_error_new_literal (DIRTY_ERROR, code, message);

  return dirty_frame_new_error (id, error, NULL, NULL, 0);
}

GError *
dirty_error_from_body (JsonNode *root)
{
  const char *message = dirty_json_get_string (root, "message");
  DirtyError code = dirty_error_from_wire (dirty_json_get_string (root, "code"));

  return dirty_error_new_full (code,
                               dirty_json_get_string (root, "app"),
                               dirty_json_get_string (root, "action"),
                               dirty_json_get_string (root, "detail"),
                               dirty_json_get_int (root, "worker_pid", 0),
                               message ? message : "The peer reported an error without a message");
}
