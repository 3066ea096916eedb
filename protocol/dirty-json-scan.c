/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-error.h"
#include "dirty-json-lexer-private.h"

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

static Member
member_of (const char *raw, gsize length, gboolean escaped)
{
  g_autofree char *decoded = NULL;

  if (escaped)
    {
      /* "\u0061pp" is "app" to json-glib */
      if (length > 64 || (decoded = dirty_lexer_decode_string (raw, length)) == NULL)
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
    return dirty_lexer_fail (sc, "a missing member name");
  if (!dirty_lexer_string (sc, &raw, &length, &escaped))
    return FALSE;
  *member = top ? member_of (raw, length, escaped) : MEMBER_OTHER;
  dirty_lexer_skip_ws (sc);
  if (sc->p >= sc->end || *sc->p != ':')
    return dirty_lexer_fail (sc, "a missing ':'");
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
  *slot = escaped ? dirty_lexer_decode_string (raw, length) : g_strndup (raw, length);
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
        if (!dirty_lexer_string (sc, &raw, &length, &escaped))
          return FALSE;
        if (member == MEMBER_APP || member == MEMBER_ACTION)
          record_string (head, member, raw, length, escaped);
        return TRUE;
      }
    case 't':
      *kind = DIRTY_JSON_BOOLEAN;
      return dirty_lexer_literal (sc, "true");
    case 'f':
      *kind = DIRTY_JSON_BOOLEAN;
      return dirty_lexer_literal (sc, "false");
    case 'n':
      *kind = DIRTY_JSON_NULL;
      return dirty_lexer_literal (sc, "null");
    default:
      if (*sc->p != '-' && !g_ascii_isdigit (*sc->p))
        return dirty_lexer_fail (sc, "an unexpected character");
      if (!dirty_lexer_number (sc, kind))
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

/* A container member of the root object ended at @end: the text of
 * "args" or "kwargs", for the worker to build only those. */
static void
record_span (DirtyRequestHead *head, Member member, const char *start, const char *end)
{
  if (member == MEMBER_ARGS)
    {
      head->args_json = start;
      head->args_length = end - start;
    }
  else if (member == MEMBER_KWARGS)
    {
      head->kwargs_json = start;
      head->kwargs_length = end - start;
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
  Member top_member = MEMBER_OTHER;   /* of the root's container value open */
  const char *top_start = NULL;

  max_depth = MIN (max_depth, MAX_STACK);
  dirty_lexer_skip_ws (sc);
  if (sc->p >= sc->end || *sc->p != '{')
    return dirty_lexer_fail (sc, "a root that is not an object");

  for (;;)
    {
      gboolean in_object;
      DirtyJsonKind kind;

      /* a value */
      dirty_lexer_skip_ws (sc);
      if (sc->p >= sc->end)
        return dirty_lexer_fail (sc, "a truncated text");
      if (*sc->p == '{' || *sc->p == '[')
        {
          gboolean object = *sc->p == '{';

          if (depth == 1)
            {
              record_kind (head, member, object ? DIRTY_JSON_OBJECT : DIRTY_JSON_ARRAY);
              top_member = member;
              top_start = sc->p;
            }
          if (depth >= max_depth)
            return dirty_lexer_fail (sc, "nesting beyond the limit");
          if (object)
            objects[depth / 8] |= 1 << (depth % 8);
          else
            objects[depth / 8] &= ~(1 << (depth % 8));
          depth++;
          sc->p++;
          dirty_lexer_skip_ws (sc);
          if (sc->p < sc->end && *sc->p == (object ? '}' : ']'))
            sc->p++;   /* empty: the container is a complete value */
          else
            {
              if (object && !scan_key (sc, &member, depth == 1))
                return FALSE;
              continue;
            }
          depth--;
          if (depth == 1)
            record_span (head, top_member, top_start, sc->p);
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
              dirty_lexer_skip_ws (sc);
              return sc->p == sc->end ? TRUE : dirty_lexer_fail (sc, "text after the root object");
            }
          in_object = (objects[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
          dirty_lexer_skip_ws (sc);
          if (sc->p >= sc->end)
            return dirty_lexer_fail (sc, "a truncated text");
          if (*sc->p == (in_object ? '}' : ']'))
            {
              sc->p++;
              depth--;
              if (depth == 1)
                record_span (head, top_member, top_start, sc->p);
              continue;
            }
          if (*sc->p != ',')
            return dirty_lexer_fail (sc, "a missing ',' or closing bracket");
          sc->p++;
          if (in_object)
            {
              dirty_lexer_skip_ws (sc);
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
  Scanner sc = { json, json + length, NULL, FALSE };

  memset (head, 0, sizeof *head);
  if (!dirty_lexer_valid_utf8 (json, length))
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

gboolean
dirty_request_head_args_valid (const DirtyRequestHead *head)
{
  return head->args_kind == DIRTY_JSON_ABSENT || head->args_kind == DIRTY_JSON_ARRAY;
}

gboolean
dirty_request_head_kwargs_valid (const DirtyRequestHead *head)
{
  return head->kwargs_kind == DIRTY_JSON_ABSENT || head->kwargs_kind == DIRTY_JSON_OBJECT;
}

void
dirty_request_head_clear (DirtyRequestHead *head)
{
  g_clear_pointer (&head->app, g_free);
  g_clear_pointer (&head->action, g_free);
}
