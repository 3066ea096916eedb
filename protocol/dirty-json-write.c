/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>
#include <string.h>

#include "dirty-error.h"
#include "dirty-frame.h"
#include "dirty-json-lexer-private.h"
#include "dirty-json-write.h"
#include "dirty-message.h"

/* JSON text from json-glib trees, without JsonGenerator (whose setup
 * costs more than a small body's text), and only text every peer
 * accepts: strict JSON (RFC 8259), escapes for '"', '\\' and control
 * characters, doubles in the fewest of 15 to 17 significant digits that
 * read back exactly (0.1, not 0.10000000000000001), always with a '.' or
 * an exponent (1.0, 1e+20: json-glib 1.6's generator writes 1e+20.0,
 * which is not JSON).
 *
 * What JSON cannot say (a number that is not finite, a string that is
 * not UTF-8) and nesting past the protocol's limit either fail, for a
 * value a caller or an app gave (the call fails, nothing is sent), or
 * are repaired, for a frame of our own making (a stray byte in a message
 * must not cost the connection). JsonGenerator wrote them as they came,
 * "nan" or raw bytes, and the peer then closed the connection for a
 * protocol error, failing every call on it. */

typedef struct {
  GString  *out;
  gboolean  repair;        /* null for a bad value, U+FFFD for a bad byte */
  guint     n_attachments; /* what a {"$bytes": i} may refer to */
  GError  **error;         /* else why it failed */
  gboolean  pretty;        /* a member or element a line, indented by 2 */
} Writer;

static gboolean
fault (Writer     *w,
       const char *what)
{
  if (w->repair)
    {
      g_string_append (w->out, "null");
      return TRUE;
    }
  g_set_error (w->error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
               "JSON cannot carry %s", what);
  return FALSE;
}

/* Runs of plain characters go in with one append each; only '"', '\\'
 * and control characters are escaped. */
static void
write_valid_string (GString    *out,
                    const char *text)
{
  const char *run, *p;

  g_string_append_c (out, '"');
  for (run = p = text; *p; p++)
    {
      guchar c = *p;

      if (c != '"' && c != '\\' && c >= 0x20)
        continue;
      g_string_append_len (out, run, p - run);
      if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, c);
        }
      run = p + 1;
    }
  g_string_append_len (out, run, p - run);
  g_string_append_c (out, '"');
}

static gboolean
write_string (Writer     *w,
              const char *text)
{
  g_autofree char *valid = NULL;

  if (text == NULL)
    {
      g_string_append (w->out, "null");
      return TRUE;
    }
  if (!dirty_lexer_valid_utf8 (text, strlen (text)))
    {
      if (!w->repair)
        return fault (w, "a string that is not valid UTF-8");
      text = valid = g_utf8_make_valid (text, -1);
    }
  write_valid_string (w->out, text);
  return TRUE;
}

/* printf costs about 1,000 instructions an integer, and every call's
 * request and result usually carries one (callgrind) */
void
dirty_json_append_int (GString *out,
                       gint64   value)
{
  char buf[24];
  char *p = buf + sizeof buf;
  guint64 magnitude = value < 0 ? -(guint64) value : (guint64) value;

  do
    *--p = (char) ('0' + magnitude % 10);
  while ((magnitude /= 10) > 0);
  if (value < 0)
    *--p = '-';
  g_string_append_len (out, p, buf + sizeof buf - p);
}

static gboolean
write_double (Writer *w,
              double  d)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  static const char * const formats[] = { "%.15g", "%.16g", "%.17g" };

  if (!isfinite (d))
    return fault (w, "a number that is not finite (NaN or infinity)");
  /* 17 digits always read back as @d; fewer usually do */
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_ascii_formatd (buf, sizeof buf, formats[i], d);
      if (g_ascii_strtod (buf, NULL) == d)
        break;
    }
  g_string_append (w->out, buf);
  /* keep it a double for the reader: 1 would come back an integer */
  if (strpbrk (buf, ".eE") == NULL)
    g_string_append (w->out, ".0");
  return TRUE;
}

static gboolean write_node (Writer   *w,
                            JsonNode *node,
                            guint     depth);

/* Pretty text: a new line, indented for @depth */
static void
new_line (Writer *w,
          guint   depth)
{
  if (!w->pretty)
    return;
  g_string_append_c (w->out, '\n');
  for (guint i = 0; i < depth; i++)
    g_string_append (w->out, "  ");
}

/* @depth counts the arrays and objects around the one written: a reader
 * refuses a frame whose JSON nests deeper than DIRTY_DEFAULT_MAX_DEPTH */
static gboolean
nests_too_deep (guint depth)
{
  return depth >= DIRTY_DEFAULT_MAX_DEPTH;
}

#define TOO_DEEP "arrays and objects nested deeper than " G_STRINGIFY (DIRTY_DEFAULT_MAX_DEPTH)

/* A reference to bytes the frame does not carry, such as one an app
 * copied from its arguments into its result: the reader would find
 * nothing there, and the bytes would be lost without a word. */
static gboolean
refers_past_attachments (Writer     *w,
                         JsonObject *object)
{
  guint index;

  if (w->repair || !dirty_json_object_is_bytes_ref (object, &index) ||
      index < w->n_attachments)
    return FALSE;
  g_set_error (w->error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
               "{\"$bytes\": %u} refers to bytes the frame does not carry (it has %u "
               "attachments): bytes go in with dirty_call_attach () or "
               "dirty_request_add_bytes ()", index, w->n_attachments);
  return TRUE;
}

static gboolean
write_object (Writer     *w,
              JsonObject *object,
              guint       depth)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;
  gboolean first = TRUE;

  if (nests_too_deep (depth))
    return fault (w, TOO_DEEP);
  if (refers_past_attachments (w, object))
    return FALSE;
  g_string_append_c (w->out, '{');
  json_object_iter_init_ordered (&iter, object);
  while (json_object_iter_next_ordered (&iter, &name, &member))
    {
      if (!first)
        g_string_append_c (w->out, ',');
      first = FALSE;
      new_line (w, depth + 1);
      if (!write_string (w, name))
        return FALSE;
      g_string_append (w->out, w->pretty ? ": " : ":");
      if (!write_node (w, member, depth + 1))
        return FALSE;
    }
  if (!first)
    new_line (w, depth);
  g_string_append_c (w->out, '}');
  return TRUE;
}

static gboolean
write_array (Writer    *w,
             JsonArray *array,
             guint      depth)
{
  guint n = json_array_get_length (array);

  if (nests_too_deep (depth))
    return fault (w, TOO_DEEP);
  g_string_append_c (w->out, '[');
  for (guint i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append_c (w->out, ',');
      new_line (w, depth + 1);
      if (!write_node (w, json_array_get_element (array, i), depth + 1))
        return FALSE;
    }
  if (n > 0)
    new_line (w, depth);
  g_string_append_c (w->out, ']');
  return TRUE;
}

static gboolean
write_node (Writer   *w,
            JsonNode *node,
            guint     depth)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      return write_object (w, json_node_get_object (node), depth);
    case JSON_NODE_ARRAY:
      return write_array (w, json_node_get_array (node), depth);
    case JSON_NODE_NULL:
      g_string_append (w->out, "null");
      return TRUE;
    case JSON_NODE_VALUE:
    default:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          dirty_json_append_int (w->out, json_node_get_int (node));
          return TRUE;
        case G_TYPE_BOOLEAN:
          g_string_append (w->out, json_node_get_boolean (node) ? "true" : "false");
          return TRUE;
        case G_TYPE_STRING:
          return write_string (w, json_node_get_string (node));
        case G_TYPE_DOUBLE:
          return write_double (w, json_node_get_double (node));
        default:
          return fault (w, "a value that is not a JSON type");
        }
    }
}

gboolean
dirty_json_append (GString   *out,
                   JsonNode  *node,
                   guint      depth,
                   guint      n_attachments,
                   GError   **error)
{
  Writer w = { out, FALSE, n_attachments, error };

  return write_node (&w, node, depth);
}

gboolean
dirty_json_append_string (GString     *out,
                          const char  *text,
                          GError     **error)
{
  Writer w = { out, FALSE, 0, error };

  return write_string (&w, text);
}

gboolean
dirty_json_append_array (GString    *out,
                         JsonArray  *array,
                         guint       depth,
                         guint       n_attachments,
                         GError    **error)
{
  Writer w = { out, FALSE, n_attachments, error };

  return write_array (&w, array, depth);
}

gboolean
dirty_json_append_object (GString     *out,
                          JsonObject  *object,
                          guint        depth,
                          guint        n_attachments,
                          GError     **error)
{
  Writer w = { out, FALSE, n_attachments, error };

  return write_object (&w, object, depth);
}

char *
dirty_json_to_text (JsonNode *root,
                    gboolean  pretty,
                    gsize    *length)
{
  Writer w = { g_string_sized_new (128), TRUE, G_MAXUINT, NULL, pretty };

  write_node (&w, root, 0);
  if (length != NULL)
    *length = w.out->len;
  return g_string_free (w.out, FALSE);
}
