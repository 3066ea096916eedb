/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-error.h"
#include "dirty-json-scan.h"

/* Deeper nesting is refused even if max_depth allows it: the container
 * stack is a bit per level on the C stack (json-glib, which the worker
 * runs, recurses per level anyway). */
#define MAX_STACK 4096

typedef enum {
  MEMBER_OTHER = -1,
  MEMBER_APP,
  MEMBER_ACTION,
  MEMBER_ARGS,
  MEMBER_KWARGS,
  MEMBER_WINDOW,
} Member;

static const char *const member_names[] = { "app", "action", "args", "kwargs", "window" };

typedef struct {
  const char *p, *end;
  const char *what;     /* why it failed, for the error */
} Scanner;

static void
skip_ws (Scanner *sc)
{
  while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
    sc->p++;
}

static gboolean
fail (Scanner *sc, const char *what)
{
  sc->what = what;
  return FALSE;
}

static int
hex4 (const char *p)
{
  int v = 0;

  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (p[i]);

      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
  return v;
}

/* A \uXXXX escape at @p (after the backslash-u), with its low half when it
 * is a high surrogate; json-glib refuses lone surrogates, so do we.
 * Returns the code point and the bytes used after the 'u', or -1. */
static gunichar
unicode_escape (const char *p, const char *end, gsize *used)
{
  int hi, lo;

  if (end - p < 4 || (hi = hex4 (p)) < 0)
    return (gunichar) -1;
  *used = 4;
  if (hi >= 0xDC00 && hi <= 0xDFFF)
    return (gunichar) -1;
  if (hi < 0xD800 || hi > 0xDBFF)
    return hi;
  if (end - p < 10 || p[4] != '\\' || p[5] != 'u' || (lo = hex4 (p + 6)) < 0 ||
      lo < 0xDC00 || lo > 0xDFFF)
    return (gunichar) -1;
  *used = 10;
  return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
}

/* A string at sc->p (on its opening quote). Sets its raw content span and
 * whether it holds escapes; leaves sc->p after the closing quote. */
static gboolean
scan_string (Scanner *sc, const char **start, gsize *raw_length, gboolean *escaped)
{
  const char *p = sc->p + 1;

  *start = p;
  *escaped = FALSE;
  while (p < sc->end)
    {
      guchar c = *p;

      if (c == '"')
        {
          *raw_length = p - *start;
          sc->p = p + 1;
          return TRUE;
        }
      if (c < 0x20)
        return fail (sc, "a control character in a string");
      if (c != '\\')
        {
          p++;
          continue;
        }
      *escaped = TRUE;
      if (p + 1 >= sc->end)
        break;
      if (p[1] == 'u')
        {
          gsize used;

          if (unicode_escape (p + 2, sc->end, &used) == (gunichar) -1)
            return fail (sc, "a bad \\u escape");
          p += 2 + used;
        }
      else if (strchr ("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0')
        p += 2;
      else
        return fail (sc, "a bad escape");
    }
  return fail (sc, "an unterminated string");
}

/* The decoded text of a string scanned by scan_string(), or NULL if it
 * holds a NUL (not a C string). */
static char *
decode_string (const char *raw, gsize length)
{
  GString *out = g_string_sized_new (length);
  const char *end = raw + length;

  for (const char *p = raw; p < end;)
    {
      gunichar c;
      gsize used;

      if (*p != '\\')
        {
          g_string_append_c (out, *p++);
          continue;
        }
      switch (p[1])
        {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u':
          c = unicode_escape (p + 2, end, &used);
          p += used;   /* plus the 2 below */
          break;
        default: c = p[1]; break;
        }
      p += 2;
      if (c == 0)
        {
          g_string_free (out, TRUE);
          return NULL;
        }
      g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

static gboolean
scan_digits (Scanner *sc)
{
  const char *start = sc->p;

  while (sc->p < sc->end && g_ascii_isdigit (*sc->p))
    sc->p++;
  return sc->p > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static gboolean
scan_number (Scanner *sc, DirtyJsonKind *kind)
{
  *kind = DIRTY_JSON_INTEGER;
  if (sc->p < sc->end && *sc->p == '-')
    sc->p++;
  if (sc->p < sc->end && *sc->p == '0')
    sc->p++;
  else if (!scan_digits (sc))
    return fail (sc, "a bad number");
  if (sc->p < sc->end && *sc->p == '.')
    {
      sc->p++;
      *kind = DIRTY_JSON_DOUBLE;
      if (!scan_digits (sc))
        return fail (sc, "a bad number");
    }
  if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E'))
    {
      sc->p++;
      *kind = DIRTY_JSON_DOUBLE;
      if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
        sc->p++;
      if (!scan_digits (sc))
        return fail (sc, "a bad number");
    }
  return TRUE;
}

static gboolean
scan_literal (Scanner *sc, const char *word)
{
  gsize n = strlen (word);

  if ((gsize) (sc->end - sc->p) < n || memcmp (sc->p, word, n) != 0)
    return fail (sc, "an unexpected character");
  sc->p += n;
  return TRUE;
}

static Member
member_of (const char *raw, gsize length, gboolean escaped)
{
  g_autofree char *decoded = NULL;

  if (escaped)
    {
      /* "\u0061pp" is "app" to json-glib */
      if (length > 64 || (decoded = decode_string (raw, length)) == NULL)
        return MEMBER_OTHER;
      raw = decoded;
      length = strlen (decoded);
    }
  for (guint i = 0; i < G_N_ELEMENTS (member_names); i++)
    if (strlen (member_names[i]) == length && memcmp (member_names[i], raw, length) == 0)
      return (Member) i;
  return MEMBER_OTHER;
}

/* A key and its colon, at sc->p (whitespace skipped). */
static gboolean
scan_key (Scanner *sc, Member *member, gboolean top)
{
  const char *raw;
  gsize length;
  gboolean escaped;

  if (sc->p >= sc->end || *sc->p != '"')
    return fail (sc, "a missing member name");
  if (!scan_string (sc, &raw, &length, &escaped))
    return FALSE;
  *member = top ? member_of (raw, length, escaped) : MEMBER_OTHER;
  skip_ws (sc);
  if (sc->p >= sc->end || *sc->p != ':')
    return fail (sc, "a missing ':'");
  sc->p++;
  return TRUE;
}

static void
record_string (DirtyRequestHead *head, Member member, const char *raw, gsize length,
               gboolean escaped)
{
  char **slot = member == MEMBER_APP ? &head->app : &head->action;
  DirtyJsonKind *kind = member == MEMBER_APP ? &head->app_kind : &head->action_kind;

  g_clear_pointer (slot, g_free);
  *slot = escaped ? decode_string (raw, length) : g_strndup (raw, length);
  /* a string with a NUL in it is no name */
  *kind = *slot != NULL ? DIRTY_JSON_STRING : DIRTY_JSON_NULL;
}

static void
record_window (DirtyRequestHead *head, const char *start, gsize length)
{
  char digits[24];

  head->window_overflows = length >= sizeof digits - 1;
  if (head->window_overflows)
    return;
  memcpy (digits, start, length);
  digits[length] = '\0';
  head->window = g_ascii_strtoll (digits, NULL, 10);
}

/* One value at sc->p (whitespace skipped); records it if it is a routing
 * member of the root object. */
static gboolean
scan_scalar (Scanner *sc, DirtyRequestHead *head, Member member, DirtyJsonKind *kind)
{
  const char *start = sc->p;

  switch (*sc->p)
    {
    case '"':
      {
        const char *raw;
        gsize length;
        gboolean escaped;

        *kind = DIRTY_JSON_STRING;
        if (!scan_string (sc, &raw, &length, &escaped))
          return FALSE;
        if (member == MEMBER_APP || member == MEMBER_ACTION)
          record_string (head, member, raw, length, escaped);
        return TRUE;
      }
    case 't':
      *kind = DIRTY_JSON_BOOLEAN;
      return scan_literal (sc, "true");
    case 'f':
      *kind = DIRTY_JSON_BOOLEAN;
      return scan_literal (sc, "false");
    case 'n':
      *kind = DIRTY_JSON_NULL;
      return scan_literal (sc, "null");
    default:
      if (*sc->p != '-' && !g_ascii_isdigit (*sc->p))
        return fail (sc, "an unexpected character");
      if (!scan_number (sc, kind))
        return FALSE;
      if (member == MEMBER_WINDOW && *kind == DIRTY_JSON_INTEGER)
        record_window (head, start, sc->p - start);
      return TRUE;
    }
}

static void
record_kind (DirtyRequestHead *head, Member member, DirtyJsonKind kind)
{
  switch (member)
    {
    case MEMBER_APP: if (kind != DIRTY_JSON_STRING) head->app_kind = kind; break;
    case MEMBER_ACTION: if (kind != DIRTY_JSON_STRING) head->action_kind = kind; break;
    case MEMBER_ARGS: head->args_kind = kind; break;
    case MEMBER_KWARGS: head->kwargs_kind = kind; break;
    case MEMBER_WINDOW: head->window_kind = kind; break;
    case MEMBER_OTHER:
    default: break;
    }
}

/* The whole document, iteratively: bit d of @objects says whether level
 * d is an object (1) or an array (0). */
static gboolean
scan_document (Scanner *sc, guint max_depth, DirtyRequestHead *head)
{
  guint8 objects[MAX_STACK / 8] = { 0 };
  guint depth = 0;
  Member member = MEMBER_OTHER;

  max_depth = MIN (max_depth, MAX_STACK);
  skip_ws (sc);
  if (sc->p >= sc->end || *sc->p != '{')
    return fail (sc, "a root that is not an object");

  for (;;)
    {
      gboolean in_object;
      DirtyJsonKind kind;

      /* a value */
      skip_ws (sc);
      if (sc->p >= sc->end)
        return fail (sc, "a truncated text");
      if (*sc->p == '{' || *sc->p == '[')
        {
          gboolean object = *sc->p == '{';

          if (depth == 1)
            record_kind (head, member, object ? DIRTY_JSON_OBJECT : DIRTY_JSON_ARRAY);
          if (depth >= max_depth)
            return fail (sc, "nesting beyond the limit");
          if (object)
            objects[depth / 8] |= 1 << (depth % 8);
          else
            objects[depth / 8] &= ~(1 << (depth % 8));
          depth++;
          sc->p++;
          skip_ws (sc);
          if (sc->p < sc->end && *sc->p == (object ? '}' : ']'))
            sc->p++;   /* empty: the container is a complete value */
          else
            {
              if (object && !scan_key (sc, &member, depth == 1))
                return FALSE;
              continue;
            }
          depth--;
        }
      else
        {
          if (!scan_scalar (sc, head, depth == 1 ? member : MEMBER_OTHER, &kind))
            return FALSE;
          if (depth == 1)
            record_kind (head, member, kind);
        }

      /* after a complete value: close containers, or go on to the next */
      for (;;)
        {
          if (depth == 0)
            {
              skip_ws (sc);
              return sc->p == sc->end ? TRUE : fail (sc, "text after the root object");
            }
          in_object = (objects[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
          skip_ws (sc);
          if (sc->p >= sc->end)
            return fail (sc, "a truncated text");
          if (*sc->p == (in_object ? '}' : ']'))
            {
              sc->p++;
              depth--;
              continue;
            }
          if (*sc->p != ',')
            return fail (sc, "a missing ',' or closing bracket");
          sc->p++;
          if (in_object)
            {
              skip_ws (sc);
              if (!scan_key (sc, &member, depth == 1))
                return FALSE;
            }
          break;
        }
    }
}

gboolean
dirty_request_head_scan (const char        *json,
                         gsize              length,
                         guint              max_depth,
                         DirtyRequestHead  *head,
                         GError           **error)
{
  Scanner sc = { json, json + length, NULL };

  memset (head, 0, sizeof *head);
  if (!g_utf8_validate_len (json, length, NULL))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "Frame JSON is not valid UTF-8");
      return FALSE;
    }
  if (!scan_document (&sc, max_depth, head))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "Frame JSON does not parse: %s at byte %" G_GSIZE_FORMAT,
                   sc.what, (gsize) (sc.p - json));
      dirty_request_head_clear (head);
      return FALSE;
    }
  return TRUE;
}

void
dirty_request_head_clear (DirtyRequestHead *head)
{
  g_clear_pointer (&head->app, g_free);
  g_clear_pointer (&head->action, g_free);
}

/* ---- building a tree ------------------------------------------------------ */

typedef struct {
  Scanner     sc;
  GPtrArray  *containers;   /* JsonNode (object or array), innermost last */
  GPtrArray  *keys;         /* per container: the pending member name or NULL */
} Builder;

/* A string value or member name, decoded; NULL if it holds a NUL. */
static char *
build_string (Builder *b)
{
  const char *raw;
  gsize length;
  gboolean escaped;

  if (!scan_string (&b->sc, &raw, &length, &escaped))
    return NULL;
  return escaped ? decode_string (raw, length) : g_strndup (raw, length);
}

static JsonNode *
build_scalar (Builder *b)
{
  const char *start = b->sc.p;
  DirtyJsonKind kind;

  switch (*b->sc.p)
    {
    case '"':
      {
        g_autofree char *text = build_string (b);

        return text ? json_node_init_string (json_node_alloc (), text) : NULL;
      }
    case 't':
      return scan_literal (&b->sc, "true") ? json_node_init_boolean (json_node_alloc (), TRUE) : NULL;
    case 'f':
      return scan_literal (&b->sc, "false") ? json_node_init_boolean (json_node_alloc (), FALSE) : NULL;
    case 'n':
      return scan_literal (&b->sc, "null") ? json_node_init_null (json_node_alloc ()) : NULL;
    default:
      {
        char digits[64];
        gsize length;

        if ((*b->sc.p != '-' && !g_ascii_isdigit (*b->sc.p)) || !scan_number (&b->sc, &kind))
          return NULL;
        length = b->sc.p - start;
        /* past 18 digits an integer may not fit: json-glib decides */
        if (length >= (kind == DIRTY_JSON_INTEGER ? 19 + (*start == '-') : sizeof digits))
          return NULL;
        memcpy (digits, start, length);
        digits[length] = '\0';
        if (kind == DIRTY_JSON_INTEGER)
          return json_node_init_int (json_node_alloc (), g_ascii_strtoll (digits, NULL, 10));
        return json_node_init_double (json_node_alloc (), g_ascii_strtod (digits, NULL));
      }
    }
}

/* Adds @node (taken) to the innermost container. */
static void
build_add (Builder *b, JsonNode *node)
{
  JsonNode *parent = g_ptr_array_index (b->containers, b->containers->len - 1);

  if (JSON_NODE_HOLDS_ARRAY (parent))
    json_array_add_element (json_node_get_array (parent), node);
  else
    {
      char *key = g_ptr_array_index (b->keys, b->keys->len - 1);

      json_object_set_member (json_node_get_object (parent), key, node);
      g_free (key);
      b->keys->pdata[b->keys->len - 1] = NULL;
    }
}

static gboolean
build_key (Builder *b)
{
  char *key;

  skip_ws (&b->sc);
  if (b->sc.p >= b->sc.end || *b->sc.p != '"' || (key = build_string (b)) == NULL)
    return FALSE;
  b->keys->pdata[b->keys->len - 1] = key;
  skip_ws (&b->sc);
  if (b->sc.p >= b->sc.end || *b->sc.p != ':')
    return FALSE;
  b->sc.p++;
  return TRUE;
}

/* Opens a container (on its bracket); FALSE if the text is bad. */
static gboolean
build_open (Builder *b, JsonNode **root)
{
  gboolean object = *b->sc.p == '{';
  JsonNode *node = object ? json_node_init_object (json_node_alloc (), NULL)
                          : json_node_init_array (json_node_alloc (), NULL);

  if (object)
    json_node_take_object (node, json_object_new ());
  else
    json_node_take_array (node, json_array_new ());
  if (*root == NULL)
    *root = json_node_ref (node);
  else
    build_add (b, json_node_ref (node));
  g_ptr_array_add (b->containers, node);
  g_ptr_array_add (b->keys, NULL);
  b->sc.p++;
  skip_ws (&b->sc);
  if (b->sc.p < b->sc.end && *b->sc.p == (object ? '}' : ']'))
    {
      b->sc.p++;
      g_ptr_array_set_size (b->keys, b->keys->len - 1);
      g_ptr_array_set_size (b->containers, b->containers->len - 1);
      return TRUE;
    }
  return object ? build_key (b) : TRUE;
}

static gboolean
build_document (Builder *b, JsonNode **root)
{
  skip_ws (&b->sc);
  if (b->sc.p >= b->sc.end || *b->sc.p != '{')
    return FALSE;
  for (;;)
    {
      /* a value */
      skip_ws (&b->sc);
      if (b->sc.p >= b->sc.end)
        return FALSE;
      if (*b->sc.p == '{' || *b->sc.p == '[')
        {
          guint before = b->containers->len;

          if (!build_open (b, root))
            return FALSE;
          if (b->containers->len > before)
            continue;   /* not empty: its first value comes next */
        }
      else
        {
          JsonNode *node = build_scalar (b);

          if (node == NULL)
            return FALSE;
          build_add (b, node);
        }

      /* after a complete value */
      for (;;)
        {
          JsonNode *parent;

          if (b->containers->len == 0)
            {
              skip_ws (&b->sc);
              return b->sc.p == b->sc.end;
            }
          parent = g_ptr_array_index (b->containers, b->containers->len - 1);
          skip_ws (&b->sc);
          if (b->sc.p >= b->sc.end)
            return FALSE;
          if (*b->sc.p == (JSON_NODE_HOLDS_OBJECT (parent) ? '}' : ']'))
            {
              b->sc.p++;
              g_ptr_array_set_size (b->keys, b->keys->len - 1);
              g_ptr_array_set_size (b->containers, b->containers->len - 1);
              continue;
            }
          if (*b->sc.p != ',')
            return FALSE;
          b->sc.p++;
          if (JSON_NODE_HOLDS_OBJECT (parent) && !build_key (b))
            return FALSE;
          break;
        }
    }
}

JsonNode *
dirty_json_parse_strict (const char *json,
                         gsize       length)
{
  Builder b = { { json, json + length, NULL }, NULL, NULL };
  JsonNode *root = NULL;
  gboolean ok;

  b.containers = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  b.keys = g_ptr_array_new_with_free_func (g_free);
  ok = build_document (&b, &root);
  g_ptr_array_unref (b.containers);
  g_ptr_array_unref (b.keys);
  if (!ok)
    {
      g_clear_pointer (&root, json_node_unref);
      return NULL;
    }
  json_node_seal (root);
  return root;
}
