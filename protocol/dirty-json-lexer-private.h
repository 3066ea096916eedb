/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The strict JSON tokens (RFC 8259) that the request scan and the strict
 * parser share (dirty-json-scan.c, dirty-json-parse.c). Not installed. */

#include "dirty-json-scan.h"

G_BEGIN_DECLS

typedef struct {
  const char *p, *end;
  const char *what;     /* why it failed, for the error */
  gboolean    non_ascii;  /* the last string held a byte past 0x7F */
} Scanner;

void      dirty_lexer_skip_ws       (Scanner     *sc);
/* g_utf8_validate_len () (so a NUL is refused too), faster on ASCII. */
gboolean  dirty_lexer_valid_utf8    (const char  *text,
                                     gsize        length);
/* Sets sc->what; returns FALSE, for `return dirty_lexer_fail (...)`. */
gboolean  dirty_lexer_fail          (Scanner     *sc,
                                     const char  *what);
/* A string at sc->p (on its opening quote): its raw content span and
 * whether it holds escapes; sc->p ends after the closing quote, and
 * sc->non_ascii says whether the span needs a UTF-8 check. Refuses
 * control characters, bad escapes and lone surrogates. */
gboolean  dirty_lexer_string        (Scanner     *sc,
                                     const char **start,
                                     gsize       *raw_length,
                                     gboolean    *escaped);
/* The decoded text of a string dirty_lexer_string () accepted, or NULL
 * if it holds a NUL. (transfer full) */
char     *dirty_lexer_decode_string (const char  *raw,
                                     gsize        length);
/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: INTEGER or DOUBLE */
gboolean  dirty_lexer_number        (Scanner       *sc,
                                     DirtyJsonKind *kind);
gboolean  dirty_lexer_literal       (Scanner     *sc,
                                     const char  *word);

G_END_DECLS
