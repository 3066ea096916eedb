/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sender's pool of sealed memfds (dirty-memfd.h; benchmarks/README.md,
 * "Large payloads (memfd)", says why and how big). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-memfd-private.h"

/* The pool keeps memfds of power-of-two capacities from the threshold up
 * to POOL_MAX_CAPACITY; larger payloads get a fresh memfd each (their
 * copy dwarfs the creation cost). Idle memfds hold their pages: bound
 * them. */
#define POOL_MAX_CAPACITY  (64u * 1024 * 1024)
#define POOL_MAX_IDLE      16
#define POOL_MAX_IDLE_BYTES ((gsize) 128 * 1024 * 1024)

typedef struct {
  int      fd;
  gsize    capacity;
  guint8  *map;         /* writable, capacity bytes; NULL: not pooled */
  guint64  inode;       /* with dev: to know it when a reply sends it back */
  dev_t    dev;
  guint    refs;        /* while lent: the request, and replies mapping it */
  gboolean reusable;    /* every reference given back said so */
} PoolEntry;

struct _DirtyMemfdPool {
  GMutex      mutex;
  GHashTable *lent;     /* fd -> PoolEntry, acquired and not released */
  GHashTable *by_inode; /* &inode -> PoolEntry, the same entries */
  GQueue      idle;     /* of PoolEntry */
  gsize       idle_bytes;
};

static DirtyMemfdPool *default_pool;

static void
pool_entry_free (PoolEntry *entry)
{
  if (entry->map != NULL)
    munmap (entry->map, entry->capacity);
  if (entry->fd >= 0)
    close (entry->fd);
  g_free (entry);
}

DirtyMemfdPool *
dirty_memfd_pool_get_default (void)
{
  if (g_once_init_enter (&default_pool))
    {
      DirtyMemfdPool *new_pool = g_new0 (DirtyMemfdPool, 1);

      g_mutex_init (&new_pool->mutex);
      new_pool->lent = g_hash_table_new (NULL, NULL);
      new_pool->by_inode = g_hash_table_new (g_int64_hash, g_int64_equal);
      g_queue_init (&new_pool->idle);
      g_once_init_leave (&default_pool, new_pool);
    }
  return default_pool;
}

static gsize
pool_capacity_for (gsize size)
{
  gsize capacity = DIRTY_MEMFD_THRESHOLD;

  while (capacity < size)
    capacity *= 2;
  return capacity;
}

static gboolean
pool_entry_identify (PoolEntry *entry)
{
  struct stat st;

  if (fstat (entry->fd, &st) < 0)
    return FALSE;
  entry->inode = st.st_ino;
  entry->dev = st.st_dev;
  return TRUE;
}

/* A new pooled memfd: sized and sealed at once (its size never changes,
 * so the seals cannot get in the way of reuse), mapped writable. */
static PoolEntry *
pool_entry_new (gsize capacity)
{
  PoolEntry *entry = g_new0 (PoolEntry, 1);

  entry->capacity = capacity;
  entry->fd = dirty_memfd_new_sized (capacity);
  if (entry->fd < 0 ||
      fcntl (entry->fd, F_ADD_SEALS, DIRTY_MEMFD_REQUIRED_SEALS | F_SEAL_SEAL) < 0)
    goto fail;
  entry->map = mmap (NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, entry->fd, 0);
  if (entry->map == MAP_FAILED)
    {
      entry->map = NULL;
      goto fail;
    }
  if (!pool_entry_identify (entry))
    goto fail;
  return entry;

fail:
  {
    int saved = errno;

    pool_entry_free (entry);
    errno = saved;
    return NULL;
  }
}

static PoolEntry *
pool_take_idle (DirtyMemfdPool *pool,
                gsize           capacity)
{
  for (GList *l = pool->idle.head; l != NULL; l = l->next)
    {
      PoolEntry *entry = l->data;

      if (entry->capacity == capacity)
        {
          g_queue_delete_link (&pool->idle, l);
          pool->idle_bytes -= capacity;
          return entry;
        }
    }
  return NULL;
}

int
dirty_memfd_pool_acquire (DirtyMemfdPool *pool,
                          GBytes         *bytes)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  gsize capacity = pool_capacity_for (size);
  PoolEntry *entry = NULL;

  if (capacity > POOL_MAX_CAPACITY)
    {
      entry = g_new0 (PoolEntry, 1);
      entry->fd = dirty_memfd_new_from_bytes (bytes);
      if (entry->fd < 0 || !pool_entry_identify (entry))
        {
          pool_entry_free (entry);
          return -1;
        }
    }
  else
    {
      g_mutex_lock (&pool->mutex);
      entry = pool_take_idle (pool, capacity);
      g_mutex_unlock (&pool->mutex);
      if (entry == NULL && (entry = pool_entry_new (capacity)) == NULL)
        return -1;
      memcpy (entry->map, data, size);
    }
  entry->refs = 1;
  entry->reusable = TRUE;
  g_mutex_lock (&pool->mutex);
  g_hash_table_insert (pool->lent, GINT_TO_POINTER (entry->fd), entry);
  g_hash_table_insert (pool->by_inode, &entry->inode, entry);
  g_mutex_unlock (&pool->mutex);
  return entry->fd;
}

/* Drops one reference of a lent entry, under the pool's lock. The last
 * one puts it back to the idle list, if every reference said it may be
 * reused and there is room; returns it otherwise, to be freed. */
static PoolEntry *
pool_entry_unref_locked (DirtyMemfdPool *pool,
                         PoolEntry      *entry,
                         gboolean        reusable)
{
  entry->reusable = entry->reusable && reusable;
  if (--entry->refs > 0)
    return NULL;
  g_hash_table_remove (pool->lent, GINT_TO_POINTER (entry->fd));
  g_hash_table_remove (pool->by_inode, &entry->inode);
  if (entry->reusable && entry->map != NULL &&
      pool->idle.length < POOL_MAX_IDLE &&
      pool->idle_bytes + entry->capacity <= POOL_MAX_IDLE_BYTES)
    {
      g_queue_push_head (&pool->idle, entry);
      pool->idle_bytes += entry->capacity;
      return NULL;
    }
  return entry;
}

void
dirty_memfd_pool_release (DirtyMemfdPool *pool,
                          int             fd,
                          gboolean        reusable)
{
  PoolEntry *entry, *dead = NULL;

  g_mutex_lock (&pool->mutex);
  entry = g_hash_table_lookup (pool->lent, GINT_TO_POINTER (fd));
  if (entry != NULL)
    dead = pool_entry_unref_locked (pool, entry, reusable);
  g_mutex_unlock (&pool->mutex);
  if (entry == NULL)
    close (fd);   /* not the pool's: nothing to keep */
  g_clear_pointer (&dead, pool_entry_free);
}

typedef struct {
  DirtyMemfdPool *pool;
  PoolEntry      *entry;
} LentBytes;

static void
lent_bytes_free (gpointer user_data)
{
  LentBytes *lent = user_data;
  PoolEntry *dead;

  g_mutex_lock (&lent->pool->mutex);
  dead = pool_entry_unref_locked (lent->pool, lent->entry, TRUE);
  g_mutex_unlock (&lent->pool->mutex);
  g_clear_pointer (&dead, pool_entry_free);
  g_free (lent);
}

/* dirty-memfd-private.h says what it is for */
GBytes *
dirty_memfd_pool_map_lent (const struct stat *st,
                           guint64            size)
{
  DirtyMemfdPool *pool = g_atomic_pointer_get (&default_pool);
  guint64 inode = st->st_ino;
  PoolEntry *entry;
  LentBytes *lent;

  if (pool == NULL)
    return NULL;
  g_mutex_lock (&pool->mutex);
  entry = g_hash_table_lookup (pool->by_inode, &inode);
  if (entry == NULL || entry->dev != st->st_dev || entry->map == NULL ||
      size > entry->capacity)
    {
      g_mutex_unlock (&pool->mutex);
      return NULL;
    }
  entry->refs++;
  g_mutex_unlock (&pool->mutex);
  lent = g_new (LentBytes, 1);
  lent->pool = pool;
  lent->entry = entry;
  return g_bytes_new_with_free_func (entry->map, size, lent_bytes_free, lent);
}
