/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirty_json_parse_strict (): strict JSON into a sealed JsonNode tree in
 * one pass, for frame bodies, without json-glib's parser; it also does
 * the checks of dirty_json_check () (UTF-8, depth), so a body it accepts
 * is walked once. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "dirty-json-lexer-private.h"

/* A container open: its node (a reference of the builder's) and, in an
 * object, the pending member name or NULL. */
typedef struct {
  JsonNode *node;
  char     *key;
} Level;

/* Most bodies nest a few levels: their stack lives in the Builder, not
 * in two GPtrArrays made and freed per parse (about 1,400 instructions,
 * on every frame's parse). */
#define INLINE_LEVELS 16

typedef struct {
  Scanner  sc;
  Level   *levels;      /* innermost last: inline_levels, or the heap's */
  guint    depth;       /* levels in use */
  guint    capacity;
  guint    max_depth;
  Level    inline_levels[INLINE_LEVELS];
} Builder;

static Level *
innermost (Builder *b)
{
  return &b->levels[b->depth - 1];
}

static void
push_level (Builder *b, JsonNode *node)
{
  if (b->depth == b->capacity)
    {
      b->capacity *= 2;
      if (b->levels == b->inline_levels)
        {
          b->levels = g_new (Level, b->capacity);
          memcpy (b->levels, b->inline_levels, sizeof b->inline_levels);
        }
      else
        b->levels = g_renew (Level, b->levels, b->capacity);
    }
  b->levels[b->depth++] = (Level) { node, NULL };
}

static void
pop_level (Builder *b)
{
  Level *level = innermost (b);

  json_node_unref (level->node);
  g_free (level->key);
  b->depth--;
}

/* A string value or member name, decoded; NULL if it holds a NUL or is
 * not valid UTF-8. Outside strings the parser takes only ASCII, so this
 * is the whole text's UTF-8 check. */
static char *
build_string (Builder *b)
{
  const char *raw;
  gsize length;
  gboolean escaped;

  if (!dirty_lexer_string (&b->sc, &raw, &length, &escaped) ||
      (b->sc.non_ascii && !g_utf8_validate_len (raw, length, NULL)))
    return NULL;
  return escaped ? dirty_lexer_decode_string (raw, length) : g_strndup (raw, length);
}

/* A number literal (checked by the lexer) as a node. An integer is an
 * int node when it fits 64 bits, else a double node, the nearest (as most
 * JSON readers do; json-glib 1.6 wraps it around instead, and 2^64 - 1
 * would come back as -1). Any length: nothing valid is left to json-glib. */
static JsonNode *
number_node (const char    *start,
             gsize          length,
             DirtyJsonKind  kind)
{
  char buf[64];
  g_autofree char *heap = NULL;
  const char *text = buf;
  gint64 value;

  if (length < sizeof buf)
    {
      memcpy (buf, start, length);
      buf[length] = '\0';
    }
  else
    text = heap = g_strndup (start, length);
  if (kind != DIRTY_JSON_INTEGER)
    return json_node_init_double (json_node_alloc (), g_ascii_strtod (text, NULL));
  errno = 0;
  value = g_ascii_strtoll (text, NULL, 10);
  if (errno == ERANGE)
    return json_node_init_double (json_node_alloc (), g_ascii_strtod (text, NULL));
  return json_node_init_int (json_node_alloc (), value);
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
      return dirty_lexer_literal (&b->sc, "true") ? json_node_init_boolean (json_node_alloc (), TRUE) : NULL;
    case 'f':
      return dirty_lexer_literal (&b->sc, "false") ? json_node_init_boolean (json_node_alloc (), FALSE) : NULL;
    case 'n':
      return dirty_lexer_literal (&b->sc, "null") ? json_node_init_null (json_node_alloc ()) : NULL;
    default:
      if ((*b->sc.p != '-' && !g_ascii_isdigit (*b->sc.p)) || !dirty_lexer_number (&b->sc, &kind))
        return NULL;
      return number_node (start, b->sc.p - start, kind);
    }
}

/* Adds @node (taken) to the innermost container. */
static void
build_add (Builder *b, JsonNode *node)
{
  Level *parent = innermost (b);

  if (JSON_NODE_HOLDS_ARRAY (parent->node))
    json_array_add_element (json_node_get_array (parent->node), node);
  else
    {
      json_object_set_member (json_node_get_object (parent->node), parent->key, node);
      g_clear_pointer (&parent->key, g_free);
    }
}

static gboolean
build_key (Builder *b)
{
  char *key;

  dirty_lexer_skip_ws (&b->sc);
  if (b->sc.p >= b->sc.end || *b->sc.p != '"' || (key = build_string (b)) == NULL)
    return FALSE;
  innermost (b)->key = key;
  dirty_lexer_skip_ws (&b->sc);
  if (b->sc.p >= b->sc.end || *b->sc.p != ':')
    return FALSE;
  b->sc.p++;
  return TRUE;
}

/* Opens a container (on its bracket); FALSE if the text is bad or nests
 * deeper than the limit. */
static gboolean
build_open (Builder *b, JsonNode **root)
{
  gboolean object = *b->sc.p == '{';
  JsonNode *node;

  if (b->depth >= b->max_depth)
    return FALSE;
  node = object ? json_node_init_object (json_node_alloc (), NULL)
                : json_node_init_array (json_node_alloc (), NULL);
  if (object)
    json_node_take_object (node, json_object_new ());
  else
    json_node_take_array (node, json_array_new ());
  if (*root == NULL)
    *root = json_node_ref (node);
  else
    build_add (b, json_node_ref (node));
  push_level (b, node);
  b->sc.p++;
  dirty_lexer_skip_ws (&b->sc);
  if (b->sc.p < b->sc.end && *b->sc.p == (object ? '}' : ']'))
    {
      b->sc.p++;
      pop_level (b);
      return TRUE;
    }
  return object ? build_key (b) : TRUE;
}

/* One value at sc->p, whole (a scalar, or a container and all it holds),
 * into *root; sc->p ends after it. */
static gboolean
build_value (Builder *b, JsonNode **root)
{
  for (;;)
    {
      /* a value */
      dirty_lexer_skip_ws (&b->sc);
      if (b->sc.p >= b->sc.end)
        return FALSE;
      if (*b->sc.p == '{' || *b->sc.p == '[')
        {
          guint before = b->depth;

          if (!build_open (b, root))
            return FALSE;
          if (b->depth > before)
            continue;   /* not empty: its first value comes next */
        }
      else
        {
          JsonNode *node = build_scalar (b);

          if (node == NULL)
            return FALSE;
          if (b->depth == 0)
            {
              *root = node;
              return TRUE;
            }
          build_add (b, node);
        }

      /* after a complete value */
      for (;;)
        {
          JsonNode *parent;

          if (b->depth == 0)
            return TRUE;
          parent = innermost (b)->node;
          dirty_lexer_skip_ws (&b->sc);
          if (b->sc.p >= b->sc.end)
            return FALSE;
          if (*b->sc.p == (JSON_NODE_HOLDS_OBJECT (parent) ? '}' : ']'))
            {
              b->sc.p++;
              pop_level (b);
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

/* sc->p is at @c, after any white space: steps over it */
static gboolean
skip_char (Builder *b, char c)
{
  dirty_lexer_skip_ws (&b->sc);
  if (b->sc.p >= b->sc.end || *b->sc.p != c)
    return FALSE;
  b->sc.p++;
  return TRUE;
}

static gboolean
at_end (Builder *b)
{
  dirty_lexer_skip_ws (&b->sc);
  return b->sc.p == b->sc.end;
}

static void
builder_init (Builder *b, const char *json, gsize length, guint max_depth)
{
  b->sc = (Scanner) { json, json + length, NULL, FALSE };
  b->levels = b->inline_levels;
  b->depth = 0;
  b->capacity = INLINE_LEVELS;
  b->max_depth = max_depth;
}

/* @root sealed if @ok, else freed with what a bad text left open */
static JsonNode *
builder_finish (Builder *b, JsonNode *root, gboolean ok)
{
  while (b->depth > 0)
    pop_level (b);
  if (b->levels != b->inline_levels)
    g_free (b->levels);
  if (!ok)
    {
      g_clear_pointer (&root, json_node_unref);
      return NULL;
    }
  json_node_seal (root);
  return root;
}

static JsonNode *
parse_strict (const char *json,
              gsize       length,
              guint       max_depth,
              gboolean    any_container)
{
  Builder b;
  JsonNode *root = NULL;
  gboolean ok;

  builder_init (&b, json, length, max_depth);
  dirty_lexer_skip_ws (&b.sc);
  ok = b.sc.p < b.sc.end && (*b.sc.p == '{' || (any_container && *b.sc.p == '[')) &&
       build_value (&b, &root) && at_end (&b);
  return builder_finish (&b, root, ok);
}

JsonNode *
dirty_json_parse_strict (const char *json,
                         gsize       length,
                         guint       max_depth)
{
  return parse_strict (json, length, max_depth, FALSE);
}

JsonNode *
dirty_json_parse_container_strict (const char *json,
                                   gsize       length,
                                   guint       max_depth)
{
  return parse_strict (json, length, max_depth, TRUE);
}

JsonNode *
dirty_json_parse_sole_member_strict (const char *json,
                                     gsize       length,
                                     const char *name,
                                     guint       max_depth)
{
  gsize name_length = strlen (name);
  Builder b;
  JsonNode *value = NULL;
  gboolean ok;

  /* the root object is one level: the value may nest one level less */
  if (max_depth == 0)
    return NULL;
  builder_init (&b, json, length, max_depth - 1);
  ok = skip_char (&b, '{') && skip_char (&b, '"') &&
       (gsize) (b.sc.end - b.sc.p) > name_length &&
       memcmp (b.sc.p, name, name_length) == 0 && b.sc.p[name_length] == '"';
  if (ok)
    {
      b.sc.p += name_length + 1;
      ok = skip_char (&b, ':') && build_value (&b, &value) && skip_char (&b, '}') && at_end (&b);
    }
  return builder_finish (&b, value, ok);
}
