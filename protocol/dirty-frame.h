/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Frames of wire protocol v1 (docs/protocol.md, "Frames"): a fixed 32-byte
 * big-endian header, then a body of JSON text and binary attachments. This
 * is the only place that knows the byte layout. */

#include <glib.h>

#include "dirty-memfd.h"

G_BEGIN_DECLS

#define DIRTY_FRAME_MAGIC        0x44495254u /* "DIRT" */
#define DIRTY_PROTOCOL_VERSION   1
#define DIRTY_FRAME_HEADER_SIZE  32

typedef enum {
  DIRTY_FRAME_HELLO = 1,
  DIRTY_FRAME_REQUEST = 2,
  DIRTY_FRAME_RESPONSE = 3,
  DIRTY_FRAME_CHUNK = 4,
  DIRTY_FRAME_END = 5,
  DIRTY_FRAME_ERROR = 6,
  DIRTY_FRAME_CANCEL = 7,
  DIRTY_FRAME_CREDIT = 8,
  DIRTY_FRAME_HEARTBEAT = 9,
  DIRTY_FRAME_STATUS = 10,
  DIRTY_FRAME_MANAGE = 11,
  DIRTY_FRAME_BACKTRACE = 12,
} DirtyFrameType;

#define DIRTY_FRAME_TYPE_LAST DIRTY_FRAME_BACKTRACE

/* Flags (header bytes 6-7). Unknown bits are a protocol error. */
typedef enum {
  DIRTY_FRAME_FLAG_NONE = 0,
  /* REQUEST: the caller reads the result as a stream (CHUNK..., END). */
  DIRTY_FRAME_FLAG_STREAM = 1 << 0,
} DirtyFrameFlags;

#define DIRTY_FRAME_FLAGS_KNOWN (DIRTY_FRAME_FLAG_STREAM)

/* Streams (docs/protocol.md, "Flow control"): a worker may send at most
 * "window" CHUNKs of a stream beyond those the reader gave back as
 * CREDIT. The REQUEST member "window" sets it, within these bounds. The
 * default is what keeps a stream of small chunks flowing while a CREDIT
 * crosses back to the worker (benchmarks/HISTORY.md: 64 capped a stream
 * of 16-byte chunks at about 280,000 chunks/s, 128 gave 370,000 to
 * 410,000), at twice 64's worst case of memory for big chunks. */
#define DIRTY_STREAM_DEFAULT_WINDOW 128
#define DIRTY_STREAM_MAX_WINDOW     4096
/* ... and the window counts chunks, not bytes: a worker also holds back
 * its next chunk while the bodies of the chunks it sent and got no
 * CREDIT for add up to this much; so a reader must give credit back, at
 * the latest, once it has consumed this many body bytes since its last
 * CREDIT (or it would wait for chunks that wait for it). At most this
 * plus one chunk is on its way to a slow reader, whatever the window. */
#define DIRTY_STREAM_BYTES_AHEAD    (2 * 1024 * 1024)

/* Limits enforced on every frame read. The defaults are in
 * dirty_limits_init(); the arbiter may lower or raise them by config. */
typedef struct {
  guint32 max_body;          /* JSON + attachments, bytes */
  guint   max_depth;         /* JSON nesting */
  guint   max_attachments;   /* per frame */
  guint   max_in_flight;     /* requests per client connection */
  guint   frame_timeout_ms;  /* from a frame's first byte to its last */
  gsize   max_queued_bytes;  /* written but not yet read by the peer */
  guint   max_fds;           /* fd attachments per frame */
  guint64 max_fd_payload;    /* bytes of all fd attachments of one frame */
} DirtyLimits;

#define DIRTY_DEFAULT_MAX_BODY        (64u * 1024 * 1024)
#define DIRTY_DEFAULT_MAX_DEPTH       64
#define DIRTY_DEFAULT_MAX_ATTACHMENTS 64
#define DIRTY_DEFAULT_MAX_IN_FLIGHT   1024
#define DIRTY_DEFAULT_FRAME_TIMEOUT_MS 30000
#define DIRTY_DEFAULT_MAX_QUEUED_BYTES ((gsize) 4 * DIRTY_DEFAULT_MAX_BODY)
#define DIRTY_DEFAULT_MAX_FDS         16
/* None between the arbiter and its workers (the arbiter has checked the
 * client's frame, and a mapping costs the reader address space only);
 * the arbiter sets max_fd_payload for client connections. */
#define DIRTY_DEFAULT_MAX_FD_PAYLOAD  G_MAXUINT64

/* The attachment table entry that marks an fd attachment (docs/protocol.md,
 * "File descriptor attachments"); its size is in the fd size table. */
#define DIRTY_ATTACHMENT_FD_MARK 0xffffffffu

void dirty_limits_init (DirtyLimits *limits);
/* The defaults, as dirty_limits_init () sets them: those of a worker's
 * connection to its arbiter, on both sides */
const DirtyLimits *dirty_limits_get_default (void);

typedef struct {
  guint8  type;              /* DirtyFrameType */
  guint16 flags;             /* DirtyFrameFlags */
  guint64 id;                /* request id; 0 = the connection itself */
  guint32 aux;               /* per type: REQUEST timeout ms, CREDIT count */
  guint32 json_length;
  guint32 attachments_length; /* table (4 bytes each) + data */
  guint16 n_attachments;
  guint16 n_fds;             /* fd attachments, sent with the first byte */
} DirtyFrameHeader;

/* Parses and checks a header read off the wire: magic, version, type,
 * flags, sizes against @limits. Sets a DIRTY_ERROR_PROTOCOL error. */
gboolean dirty_frame_header_parse (const guint8       *data,
                                   const DirtyLimits  *limits,
                                   DirtyFrameHeader   *header,
                                   GError            **error);

void     dirty_frame_header_write (const DirtyFrameHeader *header,
                                   guint8                 *data);

static inline gsize
dirty_frame_header_body_length (const DirtyFrameHeader *header)
{
  return (gsize) header->json_length + header->attachments_length;
}

/* One frame: its header and its body bytes (JSON text, then the
 * attachment table and data), shared by reference so that forwarding a
 * frame never copies its body. Immutable once built. */
typedef struct {
  DirtyFrameHeader header;
  GBytes          *body;     /* never NULL; may be empty */
  DirtyFdSet      *fds;      /* header.n_fds of them; NULL when none */
} DirtyFrame;

DirtyFrame *dirty_frame_new          (const DirtyFrameHeader *header,
                                      GBytes                 *body);
/* With the fds of its fd attachments (a reference is taken; NULL: none) */
DirtyFrame *dirty_frame_new_with_fds (const DirtyFrameHeader *header,
                                      GBytes                 *body,
                                      DirtyFdSet             *fds);
DirtyFrame *dirty_frame_new_empty    (DirtyFrameType type,
                                      guint64        id,
                                      guint32        aux);
DirtyFrame *dirty_frame_ref          (DirtyFrame *frame);
void        dirty_frame_unref        (DirtyFrame *frame);

/* The JSON text of the body (not NUL-terminated) */
const char *dirty_frame_get_json     (DirtyFrame *frame,
                                      gsize      *length);

const char *dirty_frame_type_to_string (guint8 type);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyFrame, dirty_frame_unref)

G_END_DECLS
