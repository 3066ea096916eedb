/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-error-private.h"
#include "dirty-memfd-private.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14 */
#endif

/* ---- DirtyFdSet ------------------------------------------------------- */

struct _DirtyFdSet {
  gatomicrefcount        ref_count;
  GMutex                 mutex;      /* for release */
  DirtyFdSetReleaseFunc  release;
  gpointer               release_data;
  guint                  n_fds;
  int                    fds[];
};

DirtyFdSet *
dirty_fd_set_new (const int *fds,
                  guint      n_fds)
{
  DirtyFdSet *set = g_malloc0 (sizeof (DirtyFdSet) + n_fds * sizeof (int));

  g_atomic_ref_count_init (&set->ref_count);
  g_mutex_init (&set->mutex);
  set->n_fds = n_fds;
  if (n_fds > 0)
    memcpy (set->fds, fds, n_fds * sizeof (int));
  return set;
}

DirtyFdSet *
dirty_fd_set_ref (DirtyFdSet *set)
{
  g_atomic_ref_count_inc (&set->ref_count);
  return set;
}

void
dirty_fd_set_unref (DirtyFdSet *set)
{
  if (!g_atomic_ref_count_dec (&set->ref_count))
    return;
  if (set->release != NULL)
    set->release (set, FALSE, set->release_data);
  g_mutex_clear (&set->mutex);
  for (guint i = 0; i < set->n_fds; i++)
    if (set->fds[i] >= 0)
      close (set->fds[i]);
  g_free (set);
}

guint
dirty_fd_set_get_length (DirtyFdSet *set)
{
  return set ? set->n_fds : 0;
}

int
dirty_fd_set_get (DirtyFdSet *set,
                  guint       index)
{
  g_return_val_if_fail (index < set->n_fds, -1);
  return set->fds[index];
}

void
dirty_fd_set_set_release (DirtyFdSet            *set,
                          DirtyFdSetReleaseFunc  func,
                          gpointer               user_data)
{
  set->release = func;
  set->release_data = user_data;
}

void
dirty_fd_set_release_reusable (DirtyFdSet *set)
{
  DirtyFdSetReleaseFunc release;

  g_mutex_lock (&set->mutex);
  release = g_steal_pointer (&set->release);
  g_mutex_unlock (&set->mutex);
  if (release != NULL)
    release (set, TRUE, set->release_data);
}

int
dirty_fd_set_steal (DirtyFdSet *set,
                    guint       index)
{
  int fd;

  g_return_val_if_fail (index < set->n_fds, -1);
  fd = set->fds[index];
  set->fds[index] = -1;
  return fd;
}

/* ---- checking and mapping -------------------------------------------- */

gboolean
dirty_memfd_check (int       fd,
                   guint64   size,
                   GError  **error)
{
  struct stat st;
  int seals;

  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "A file descriptor attachment is not a memfd (not a regular file)");
      return FALSE;
    }
  seals = fcntl (fd, F_GET_SEALS);
  if (seals < 0)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "A file descriptor attachment is not a memfd (it cannot be sealed)");
      return FALSE;
    }
  if ((seals & DIRTY_MEMFD_REQUIRED_SEALS) != DIRTY_MEMFD_REQUIRED_SEALS)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "A memfd attachment is not sealed against shrinking and growing");
      return FALSE;
    }
  if ((guint64) st.st_size < size)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                   "A memfd attachment has %" G_GUINT64_FORMAT " bytes, its frame says %"
                   G_GUINT64_FORMAT, (guint64) st.st_size, size);
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  void  *data;
  gsize  length;
  int    fd;        /* -1 unless kept */
} Mapping;

/* Mappings that kept their fd, by address: few (a worker's arguments in
 * flight), looked up when a reply sends an argument back unchanged */
static GMutex      registry_lock;
static GHashTable *registry;

static void
mapping_free (gpointer user_data)
{
  Mapping *mapping = user_data;

  /* fd and registry change under the lock (dirty_memfd_release_arguments
   * may be detaching this mapping right now) */
  g_mutex_lock (&registry_lock);
  if (mapping->fd >= 0)
    {
      g_hash_table_remove (registry, mapping->data);
      close (mapping->fd);
      mapping->fd = -1;
    }
  g_mutex_unlock (&registry_lock);
  munmap (mapping->data, mapping->length);
  g_free (mapping);
}

static gboolean
register_mapping (Mapping *mapping,
                  int      fd)
{
  mapping->fd = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (mapping->fd < 0)
    return FALSE;
  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new (NULL, NULL);
  g_hash_table_insert (registry, mapping->data, mapping);
  g_mutex_unlock (&registry_lock);
  return TRUE;
}

int
dirty_memfd_lookup (GBytes *bytes)
{
  gsize size;
  gconstpointer data = g_bytes_get_data (bytes, &size);
  Mapping *mapping;
  int fd = -1;

  g_mutex_lock (&registry_lock);
  mapping = registry != NULL ? g_hash_table_lookup (registry, data) : NULL;
  if (mapping != NULL && mapping->length == size)
    fd = fcntl (mapping->fd, F_DUPFD_CLOEXEC, 3);
  g_mutex_unlock (&registry_lock);
  return fd;
}

/* Replaces @mapping's pages by private copies at the same address: a
 * private mapping of the same file over it (atomic for readers: they see
 * the same bytes), each page then written once so that it is copied, and
 * write access taken away again. Under registry_lock, so the mapping's
 * owner cannot unmap it meanwhile. */
static void
privatize (Mapping *mapping)
{
  guint8 *data = mmap (mapping->data, mapping->length, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_FIXED, mapping->fd, 0);

  if (data == MAP_FAILED)
    {
      g_warning ("Cannot detach a kept argument from its memfd: %s", g_strerror (errno));
      return;
    }
  if (madvise (data, mapping->length, MADV_POPULATE_WRITE) < 0)
    for (gsize offset = 0; offset < mapping->length; offset += 4096)
      {
        volatile guint8 *byte = data + offset;
        *byte = *byte;
      }
  mprotect (data, mapping->length, PROT_READ);
}

void
dirty_memfd_release_arguments (GPtrArray *attachments)
{
  g_autoptr(GPtrArray) kept = NULL;

  /* most calls have no attachment: nothing can be a mapping */
  if (attachments->len == 0)
    {
      g_ptr_array_unref (attachments);
      return;
    }
  kept = g_ptr_array_new ();
  g_mutex_lock (&registry_lock);
  for (guint i = 0; registry != NULL && i < attachments->len; i++)
    {
      gsize size;
      gconstpointer data = g_bytes_get_data (g_ptr_array_index (attachments, i), &size);
      Mapping *mapping = g_hash_table_lookup (registry, data);

      if (mapping != NULL && mapping->length == size)
        g_ptr_array_add (kept, (gpointer) data);
    }
  g_mutex_unlock (&registry_lock);
  /* mappings only the call held are unmapped here */
  g_ptr_array_unref (attachments);

  g_mutex_lock (&registry_lock);
  for (guint i = 0; i < kept->len; i++)
    {
      Mapping *mapping = g_hash_table_lookup (registry, kept->pdata[i]);

      if (mapping == NULL)
        continue;
      privatize (mapping);
      /* no longer the sender's memfd: never sent back as it */
      g_hash_table_remove (registry, mapping->data);
      close (mapping->fd);
      mapping->fd = -1;
    }
  g_mutex_unlock (&registry_lock);
}

gboolean
dirty_fd_set_shares_file (DirtyFdSet *a,
                          DirtyFdSet *b)
{
  for (guint i = 0; i < dirty_fd_set_get_length (a); i++)
    {
      struct stat sa;

      if (a->fds[i] < 0 || fstat (a->fds[i], &sa) < 0)
        continue;
      for (guint j = 0; j < dirty_fd_set_get_length (b); j++)
        {
          struct stat sb;

          if (b->fds[j] >= 0 && fstat (b->fds[j], &sb) == 0 &&
              sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
            return TRUE;
        }
    }
  return FALSE;
}

GBytes *
dirty_memfd_map (int       fd,
                 guint64   size,
                 gboolean  keep_fd,
                 GError  **error)
{
  Mapping *mapping;
  void *data;

  if (!dirty_memfd_check (fd, size, error))
    return NULL;
  if (size == 0)
    return g_bytes_new (NULL, 0);
  {
    struct stat st;
    GBytes *own;

    if (fstat (fd, &st) == 0 && (own = dirty_memfd_pool_map_lent (&st, size)) != NULL)
      return own;
  }
  if (size > G_MAXSIZE)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL,
                           "A memfd attachment is larger than this address space");
      return NULL;
    }
  /* populated at once: one call faults in every page instead of one
   * fault per page as the reader walks it */
  data = mmap (NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (data == MAP_FAILED)
    {
      int saved = errno;

      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_FAILED,
                   "Cannot map a memfd attachment of %" G_GUINT64_FORMAT " bytes: %s",
                   size, g_strerror (saved));
      return NULL;
    }
  mapping = g_new (Mapping, 1);
  mapping->data = data;
  mapping->length = size;
  mapping->fd = -1;
  /* without the fd, a reply sending these bytes back copies them: slower,
   * not wrong */
  if (keep_fd && !register_mapping (mapping, fd))
    mapping->fd = -1;
  return g_bytes_new_with_free_func (data, size, mapping_free, mapping);
}

/* ---- creating --------------------------------------------------------- */

int
dirty_memfd_new_sized (gsize size)
{
  int fd = memfd_create ("dirty-attachment", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (fd < 0)
    return -1;
  if (ftruncate (fd, size) < 0)
    {
      int saved = errno;

      close (fd);
      errno = saved;
      return -1;
    }
  return fd;
}

static int
fail_close (int fd)
{
  int saved = errno;

  close (fd);
  errno = saved;
  return -1;
}

int
dirty_memfd_new_from_bytes (GBytes *bytes)
{
  gsize size, done = 0;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  int fd = dirty_memfd_new_sized (size);

  if (fd < 0)
    return -1;
  /* pwrite, not a mapping: the kernel copies into the new pages without
   * a page fault per page, and no writable mapping remains, so the
   * content can be sealed too */
  while (done < size)
    {
      gssize n = pwrite (fd, data + done, size - done, done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return fail_close (fd);
      done += n;
    }
  if (fcntl (fd, F_ADD_SEALS, DIRTY_MEMFD_REQUIRED_SEALS | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return fail_close (fd);
  return fd;
}
