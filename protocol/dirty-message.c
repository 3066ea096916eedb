/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>
#include <string.h>

#include <gio/gio.h>

#include "dirty-json-scan.h"
#include "dirty-message.h"

static guint32
read_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static void
write_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = (v >> 16) & 0xff;
  p[2] = (v >> 8) & 0xff;
  p[3] = v & 0xff;
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
  DirtyFrameHeader header = { .type = type, .flags = flags, .id = id, .aux = aux };
  gsize total, attach_data = 0;
  guint n = attachments ? attachments->len : 0;
  guint8 *body, *p;

  for (guint i = 0; i < n; i++)
    attach_data += g_bytes_get_size (g_ptr_array_index (attachments, i));

  header.json_length = json_length;
  header.n_attachments = n;
  header.attachments_length = n ? 4 * n + attach_data : 0;
  total = json_length + header.attachments_length;

  body = p = g_malloc (total ? total : 1);
  if (json_length)
    p = mempcpy (p, json, json_length);
  for (guint i = 0; i < n; i++, p += 4)
    write_be32 (p, g_bytes_get_size (g_ptr_array_index (attachments, i)));
  for (guint i = 0; i < n; i++)
    {
      gsize size;
      gconstpointer data = g_bytes_get_data (g_ptr_array_index (attachments, i), &size);

      if (size)
        p = mempcpy (p, data, size);
    }

  {
    g_autoptr(GBytes) bytes = g_bytes_new_take (body, total);
    return dirty_frame_new (&header, bytes);
  }
}

static gboolean
write_json_string (GString    *out,
                   const char *text)
{
  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    return FALSE;
  g_string_append_c (out, '"');
  for (const char *p = text; *p; p++)
    {
      guchar c = *p;

      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, c);
        }
      else if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, c);
    }
  g_string_append_c (out, '"');
  return TRUE;
}

/* JSON text without JsonGenerator, whose setup costs more than a small
 * body's text. FALSE for what only json-glib should decide how to write
 * (non-finite doubles, strings that are not UTF-8): the caller falls back
 * to it. Strict JSON: escapes for '"', '\\' and control characters,
 * doubles with 17 significant digits (exact round trip). */
static gboolean
write_json (GString  *out,
            JsonNode *node,
            guint     depth)
{
  if (depth > 512)
    return FALSE;
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            if (!write_json_string (out, name))
              return FALSE;
            g_string_append_c (out, ':');
            if (!write_json (out, member, depth + 1))
              return FALSE;
          }
        g_string_append_c (out, '}');
        return TRUE;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            if (!write_json (out, json_array_get_element (array, i), depth + 1))
              return FALSE;
          }
        g_string_append_c (out, ']');
        return TRUE;
      }
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      return TRUE;
    case JSON_NODE_VALUE:
    default:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          return TRUE;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          return TRUE;
        case G_TYPE_STRING:
          return write_json_string (out, json_node_get_string (node));
        case G_TYPE_DOUBLE:
          {
            double d = json_node_get_double (node);
            char buf[G_ASCII_DTOSTR_BUF_SIZE];

            if (!isfinite (d))
              return FALSE;
            g_ascii_formatd (buf, sizeof buf, "%.17g", d);
            g_string_append (out, buf);
            /* keep it a double for the reader: 1 would come back an integer */
            if (strpbrk (buf, ".eE") == NULL)
              g_string_append (out, ".0");
            return TRUE;
          }
        default:
          return FALSE;
        }
    }
}

gboolean
dirty_json_append (GString  *out,
                   JsonNode *node)
{
  return write_json (out, node, 0);
}

gboolean
dirty_json_append_string (GString    *out,
                          const char *text)
{
  return write_json_string (out, text);
}

DirtyFrame *
dirty_frame_encode (DirtyFrameType  type,
                    guint16         flags,
                    guint64         id,
                    guint32         aux,
                    JsonNode       *root,
                    GPtrArray      *attachments)
{
  g_autofree char *json = NULL;
  gsize json_length = 0;

  if (root != NULL)
    {
      GString *text = g_string_sized_new (128);

      if (write_json (text, root, 0))
        {
          json_length = text->len;
          json = g_string_free (text, FALSE);
        }
      else
        {
          g_autoptr(JsonGenerator) generator = json_generator_new ();

          g_string_free (text, TRUE);
          json_generator_set_root (generator, root);
          json = json_generator_to_data (generator, &json_length);
        }
    }
  return dirty_frame_encode_text (type, flags, id, aux, json, json_length, attachments);
}

GBytes *
dirty_frame_get_bytes_chunk (DirtyFrame *frame)
{
  static const char text[] = DIRTY_BYTES_CHUNK_JSON;
  const DirtyFrameHeader *h = &frame->header;
  const guint8 *body;
  gsize size;

  if (h->type != DIRTY_FRAME_CHUNK || h->json_length != sizeof text - 1 ||
      h->n_attachments != 1)
    return NULL;
  body = g_bytes_get_data (frame->body, NULL);
  if (memcmp (body, text, sizeof text - 1) != 0 || !dirty_frame_check_attachments (frame, NULL))
    return NULL;
  size = read_be32 (body + h->json_length);
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

static gboolean
parse_json (const char  *json,
            gsize        length,
            JsonNode   **root,
            GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  JsonNode *node;

  /* the common case, strict JSON, without json-glib's parser */
  if ((*root = dirty_json_parse_strict (json, length)) != NULL)
    return TRUE;
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, json, length, &local_error))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame JSON does not parse: %s", local_error->message);
      return FALSE;
    }
  node = json_parser_get_root (parser);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame JSON must be an object");
      return FALSE;
    }
  *root = json_node_ref (node);
  return TRUE;
}

static GPtrArray *
split_attachments (DirtyFrame  *frame,
                   GError     **error)
{
  const DirtyFrameHeader *h = &frame->header;
  gsize offset = (gsize) h->json_length + 4 * h->n_attachments;
  gsize end = dirty_frame_header_body_length (h);
  g_autoptr(GPtrArray) attachments = g_ptr_array_new_full (h->n_attachments,
                                                           (GDestroyNotify) g_bytes_unref);
  const guint8 *table;

  /* an empty body has no data pointer at all (found by fuzz-frame) */
  if (h->n_attachments == 0 && offset == end)
    return g_steal_pointer (&attachments);
  table = (const guint8 *) g_bytes_get_data (frame->body, NULL) + h->json_length;

  for (guint i = 0; i < h->n_attachments; i++)
    {
      guint32 size = read_be32 (table + 4 * i);

      if (size > end - offset)
        {
          g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                       "Attachment %u of %u bytes runs past the end of the frame", i, size);
          return NULL;
        }
      g_ptr_array_add (attachments, g_bytes_new_from_bytes (frame->body, offset, size));
      offset += size;
    }
  if (offset != end)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Attachment section has %" G_GSIZE_FORMAT " bytes beyond its table",
                   end - offset);
      return NULL;
    }
  return g_steal_pointer (&attachments);
}

gboolean
dirty_frame_check_attachments (DirtyFrame  *frame,
                               GError     **error)
{
  const DirtyFrameHeader *h = &frame->header;
  gsize offset = (gsize) h->json_length + 4 * h->n_attachments;
  gsize end = dirty_frame_header_body_length (h);
  g_autoptr(GPtrArray) parts = NULL;

  if (h->n_attachments > 0)
    {
      /* no pointer arithmetic on an empty body's NULL data */
      const guint8 *table = (const guint8 *) g_bytes_get_data (frame->body, NULL) + h->json_length;

      for (guint i = 0; i < h->n_attachments; i++)
        {
          guint32 size = read_be32 (table + 4 * i);

          if (size > end - offset)
            {
              offset = end + 1;   /* runs past the end */
              break;
            }
          offset += size;
        }
    }
  if (offset == end)
    return TRUE;
  /* not common: the error message a decode would give */
  parts = split_attachments (frame, error);
  g_return_val_if_fail (parts == NULL, FALSE);
  return FALSE;
}

gboolean
dirty_frame_decode (DirtyFrame         *frame,
                    const DirtyLimits  *limits,
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
      if (!dirty_json_check (json, length, limits->max_depth, error) ||
          !parse_json (json, length, &node, error))
        return FALSE;
    }
  parts = split_attachments (frame, error);
  if (parts == NULL)
    return FALSE;

  *root = g_steal_pointer (&node);
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
  JsonObject *object;
  JsonNode *member;
  gint64 value;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return FALSE;
  object = json_node_get_object (node);
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

  app = dirty_error_get_app (error) ? dirty_error_get_app (error) : app;
  action = dirty_error_get_action (error) ? dirty_error_get_action (error) : action;
  if (dirty_error_get_worker_pid (error) != 0)
    worker_pid = dirty_error_get_worker_pid (error);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "code");
  json_builder_add_string_value (builder, dirty_error_to_wire (wire_code_for (error)));
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, error->message);
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
      json_builder_add_string_value (builder, detail);
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
