/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "dirty-json-lexer-private.h"

void
dirty_lexer_skip_ws (Scanner *sc)
{
  while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
    sc->p++;
}

/* Has any of the 8 bytes of @word the high bit set, or is any 0? */
static inline gboolean
word_not_plain_ascii (guint64 word)
{
  const guint64 ones = G_GUINT64_CONSTANT (0x0101010101010101);
  const guint64 highs = G_GUINT64_CONSTANT (0x8080808080808080);

  return ((word & highs) | ((word - ones) & ~word & highs)) != 0;
}

gboolean
dirty_lexer_valid_utf8 (const char *text,
                        gsize       length)
{
  gsize i = 0;

  /* g_utf8_validate_len () takes a byte at a time; most frames are all
   * ASCII, checked here eight bytes at a time */
  for (; i + 8 <= length; i += 8)
    {
      guint64 word;

      memcpy (&word, text + i, sizeof word);
      if (word_not_plain_ascii (word))
        break;
    }
  while (i < length && (guchar) text[i] < 0x80 && text[i] != '\0')
    i++;
  /* from a character's first byte on, as GLib's check (NUL refused) */
  return i == length || g_utf8_validate_len (text + i, length - i, NULL);
}

gboolean
dirty_lexer_fail (Scanner *sc, const char *what)
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
gboolean
dirty_lexer_string (Scanner *sc, const char **start, gsize *raw_length, gboolean *escaped)
{
  const char *p = sc->p + 1;
  guchar seen = 0;   /* every byte ORed: bit 7 for non-ASCII, no branch */

  *start = p;
  *escaped = FALSE;
  while (p < sc->end)
    {
      guchar c = *p;

      if (c == '"')
        {
          *raw_length = p - *start;
          sc->p = p + 1;
          sc->non_ascii = (seen & 0x80) != 0;
          return TRUE;
        }
      if (c < 0x20)
        return dirty_lexer_fail (sc, "a control character in a string");
      if (c != '\\')
        {
          seen |= c;
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
            return dirty_lexer_fail (sc, "a bad \\u escape");
          p += 2 + used;
        }
      else if (strchr ("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0')
        p += 2;
      else
        return dirty_lexer_fail (sc, "a bad escape");
    }
  return dirty_lexer_fail (sc, "an unterminated string");
}

/* The decoded text of a string scanned by dirty_lexer_string(), or NULL if it
 * holds a NUL (not a C string). */
char *
dirty_lexer_decode_string (const char *raw, gsize length)
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
gboolean
dirty_lexer_number (Scanner *sc, DirtyJsonKind *kind)
{
  *kind = DIRTY_JSON_INTEGER;
  if (sc->p < sc->end && *sc->p == '-')
    sc->p++;
  if (sc->p < sc->end && *sc->p == '0')
    sc->p++;
  else if (!scan_digits (sc))
    return dirty_lexer_fail (sc, "a bad number");
  if (sc->p < sc->end && *sc->p == '.')
    {
      sc->p++;
      *kind = DIRTY_JSON_DOUBLE;
      if (!scan_digits (sc))
        return dirty_lexer_fail (sc, "a bad number");
    }
  if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E'))
    {
      sc->p++;
      *kind = DIRTY_JSON_DOUBLE;
      if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
        sc->p++;
      if (!scan_digits (sc))
        return dirty_lexer_fail (sc, "a bad number");
    }
  return TRUE;
}

gboolean
dirty_lexer_literal (Scanner *sc, const char *word)
{
  gsize n = strlen (word);

  if ((gsize) (sc->end - sc->p) < n || memcmp (sc->p, word, n) != 0)
    return dirty_lexer_fail (sc, "an unexpected character");
  sc->p += n;
  return TRUE;
}
