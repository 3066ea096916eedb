/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Big-endian (network order) integers of the wire format
 * (docs/protocol.md), read from and written to byte buffers. */

#include <glib.h>

static inline guint16
get_be16 (const guint8 *p)
{
  return (guint16) ((p[0] << 8) | p[1]);
}

static inline guint32
get_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static inline guint64
get_be64 (const guint8 *p)
{
  return ((guint64) get_be32 (p) << 32) | get_be32 (p + 4);
}

static inline void
put_be16 (guint8 *p, guint16 v)
{
  p[0] = v >> 8;
  p[1] = v & 0xff;
}

static inline void
put_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = (v >> 16) & 0xff;
  p[2] = (v >> 8) & 0xff;
  p[3] = v & 0xff;
}

static inline void
put_be64 (guint8 *p, guint64 v)
{
  put_be32 (p, v >> 32);
  put_be32 (p + 4, v & 0xffffffffu);
}
