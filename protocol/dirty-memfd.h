/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Large attachments as sealed memfds (docs/protocol.md, "File descriptor
 * attachments"): creating, checking and mapping them, the set of fds a
 * frame carries, and the sender's pool of reusable memfds. */

#include <glib.h>

G_BEGIN_DECLS

/* Attachments of this many bytes or more travel as memfds from a pool;
 * smaller ones inline (benchmarks/README.md, "Large payloads (memfd)",
 * says why). */
#define DIRTY_MEMFD_THRESHOLD (64 * 1024)
/* A new memfd per payload (no pool: replies) costs page allocation and
 * freeing each time; it beats copying through the arbiter only from
 * about this size (the same README). */
#define DIRTY_MEMFD_FRESH_THRESHOLD (8 * 1024 * 1024)

/* The seals a receiver requires: the size is fixed, so a mapping of the
 * declared size can never fault with SIGBUS. */
#define DIRTY_MEMFD_REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/* The fds one frame carries, shared by reference between the copies of a
 * frame (forwarding never dups them). The last unref closes them, unless
 * a release function took them first. Thread-safe refcount. */
typedef struct _DirtyFdSet DirtyFdSet;

typedef void (*DirtyFdSetReleaseFunc) (DirtyFdSet *set,
                                       gboolean    reusable,
                                       gpointer    user_data);

/* Takes ownership of @fds[0 .. @n_fds). */
DirtyFdSet *dirty_fd_set_new          (const int  *fds,
                                       guint       n_fds);
DirtyFdSet *dirty_fd_set_ref          (DirtyFdSet *set);
void        dirty_fd_set_unref        (DirtyFdSet *set);
guint       dirty_fd_set_get_length   (DirtyFdSet *set);
int         dirty_fd_set_get          (DirtyFdSet *set,
                                       guint       index);
/* Called once: by dirty_fd_set_release_reusable () or before the last
 * unref closes the fds. It may steal fds it owns (dirty_fd_set_steal) to
 * reuse them if @reusable. */
void        dirty_fd_set_set_release  (DirtyFdSet            *set,
                                       DirtyFdSetReleaseFunc  func,
                                       gpointer               user_data);
/* The peer is done with these fds (the call's RESPONSE or END came):
 * runs the release function now, with @reusable TRUE, so that the fds
 * are back in their pool before the caller learns the call ended. Nobody
 * may send @set afterwards. */
void        dirty_fd_set_release_reusable (DirtyFdSet *set);
int         dirty_fd_set_steal        (DirtyFdSet *set,
                                       guint       index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyFdSet, dirty_fd_set_unref)

/* Checks a received fd: a memfd (a sealable regular file) with
 * DIRTY_MEMFD_REQUIRED_SEALS, at least @size bytes long. Sets a
 * DIRTY_ERROR_PROTOCOL error naming what is wrong. */
gboolean    dirty_memfd_check         (int          fd,
                                       guint64      size,
                                       GError     **error);
/* The first @size bytes of @fd as a read-only GBytes backed by a shared
 * mapping, unmapped when the GBytes is freed. With @keep_fd, a dup of @fd
 * lives as long as the mapping, so that sending the same GBytes on sends
 * the same memfd (dirty_memfd_lookup), without a copy. Checks @fd first.
 * (transfer full) */
GBytes     *dirty_memfd_map           (int          fd,
                                       guint64      size,
                                       gboolean     keep_fd,
                                       GError     **error);
/* The memfd @bytes maps whole, if it came from dirty_memfd_map () with
 * @keep_fd: a new dup of it, or -1. */
int         dirty_memfd_lookup        (GBytes      *bytes);
/* A call is over: drops @attachments (transfer full), then detaches every
 * kept mapping among them that is still alive (an app holds its bytes)
 * from the sender's memfd, giving it private copies of the pages in
 * place, so the sender may reuse the memfd without the app seeing its
 * bytes change. Mappings nobody holds any more are just gone. */
void        dirty_memfd_release_arguments (GPtrArray *attachments);
/* Whether some fd of @a and some fd of @b are the same file */
gboolean    dirty_fd_set_shares_file  (DirtyFdSet  *a,
                                       DirtyFdSet  *b);
/* A new sealed memfd holding @bytes (no pool), or -1 with errno set. */
int         dirty_memfd_new_from_bytes (GBytes     *bytes);

/* A sender's pool of sealed memfds with a writable mapping each, kept
 * filled with pages, so a payload costs one memcpy instead of creating,
 * faulting in and freeing a memfd per call. Thread-safe. */
typedef struct _DirtyMemfdPool DirtyMemfdPool;

/* The process's pool, created on first use. */
DirtyMemfdPool *dirty_memfd_pool_get_default (void);
/* Copies @bytes into a pooled memfd (or a fresh one, for sizes the pool
 * does not keep) and returns its fd, or -1 with errno set. The fd stays
 * the pool's: dirty_memfd_pool_release () gives it back. */
int         dirty_memfd_pool_acquire  (DirtyMemfdPool *pool,
                                       GBytes         *bytes);
/* Gives an acquired fd back: kept for reuse if @reusable (no peer can
 * still read it) and the pool has room, closed otherwise. */
void        dirty_memfd_pool_release  (DirtyMemfdPool *pool,
                                       int             fd,
                                       gboolean        reusable);

G_END_DECLS
