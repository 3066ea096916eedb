/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "dirty-handoff.h"
#include "dirty-log.h"

/* The memfd's content: (version, [(socket inode, unread bytes)]) */
#define STATE_TYPE    "(ua(tay))"
#define STATE_VERSION 1
/* How long systemd may take to have the fds before the process exits */
#define BARRIER_USEC  (5 * G_USEC_PER_SEC)

guint
dirty_handoff_read_store_max (void)
{
  const char *value = g_getenv ("FDSTORE");
  guint64 max = 0;

  if (value == NULL || g_getenv ("NOTIFY_SOCKET") == NULL ||
      !g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT, &max, NULL))
    max = 0;
  g_unsetenv ("FDSTORE");
  return (guint) max;
}

static guint64
socket_inode (int fd)
{
  struct stat st;

  return fstat (fd, &st) == 0 ? (guint64) st.st_ino : 0;
}

/* The unread bytes of @conns in a memfd (-1 and @error on failure) */
static int
write_state (GArray  *conns,
             GError **error)
{
  GVariantBuilder builder;
  g_autoptr(GVariant) state = NULL;
  gsize size, done = 0;
  const guint8 *data;
  int fd;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tay)"));
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);

      if (conn->unread == NULL || g_bytes_get_size (conn->unread) == 0)
        continue;
      g_variant_builder_add (&builder, "(t@ay)", socket_inode (conn->fd),
                             g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                       conn->unread, TRUE));
    }
  state = g_variant_ref_sink (g_variant_new ("(ua(tay))", (guint32) STATE_VERSION, &builder));
  size = g_variant_get_size (state);
  data = g_variant_get_data (state);
  fd = memfd_create ("dirty-arbiter-handoff", MFD_CLOEXEC);
  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "memfd_create: %s", g_strerror (saved_errno));
      return -1;
    }
  while (done < size)
    {
      gssize n = write (fd, data + done, size - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int saved_errno = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "writing the handoff state: %s", g_strerror (saved_errno));
          close (fd);
          return -1;
        }
      done += n;
    }
  return fd;
}

static void
close_all (GArray *conns)
{
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);

      if (conn->fd >= 0)
        close (conn->fd);
      conn->fd = -1;
    }
}

guint
dirty_handoff_store (GArray  *conns,
                     GError **error)
{
  int state_fd;
  guint stored = 0;
  int r;

  state_fd = write_state (conns, error);
  if (state_fd < 0)
    {
      close_all (conns);
      return 0;
    }
  /* a memfd is not pollable: FDPOLL=0, or systemd would drop it */
  r = sd_pid_notify_with_fds (0, FALSE, "FDSTORE=1\nFDPOLL=0\nFDNAME=" DIRTY_HANDOFF_STATE_NAME,
                              &state_fd, 1);
  close (state_fd);
  if (r <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "FDSTORE: %s",
                   r == 0 ? "not under systemd" : g_strerror (-r));
      close_all (conns);
      return 0;
    }
  /* one message per fd: a client that hangs up meanwhile is dropped by
   * systemd (it polls them), the others are kept */
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);

      if (sd_pid_notify_with_fds (0, FALSE, "FDSTORE=1\nFDNAME=" DIRTY_HANDOFF_CLIENT_NAME,
                                  &conn->fd, 1) > 0)
        stored++;
    }
  close_all (conns);
  /* systemd has read them all before this process is seen to exit */
  r = sd_notify_barrier (0, BARRIER_USEC);
  if (r < 0)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
               "handoff: systemd did not confirm the fd store: %s", g_strerror (-r));
  return stored;
}

/* inode -> unread bytes, from the memfd of the previous arbiter */
static GHashTable *
read_state (int fd)
{
  g_autoptr(GHashTable) map = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                     (GDestroyNotify) g_bytes_unref);
  struct stat st;
  g_autofree guint8 *data = NULL;
  gsize done = 0;
  g_autoptr(GVariant) state = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  GVariant *bytes;
  guint32 version;
  guint64 inode;

  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_size <= 0)
    return g_steal_pointer (&map);
  data = g_malloc (st.st_size);
  while (done < (gsize) st.st_size)
    {
      gssize n = pread (fd, data + done, st.st_size - done, done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return g_steal_pointer (&map);
      done += n;
    }
  state = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (STATE_TYPE),
                                                       g_steal_pointer (&data), done,
                                                       FALSE, g_free, NULL));
  g_variant_get (state, "(ua(tay))", &version, &iter);
  if (version != STATE_VERSION)
    {
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                 "handoff: state version %u is not %u: unread bytes dropped",
                 version, STATE_VERSION);
      return g_steal_pointer (&map);
    }
  while (g_variant_iter_next (iter, "(t@ay)", &inode, &bytes))
    {
      g_hash_table_insert (map, g_memdup2 (&inode, sizeof inode), g_variant_get_data_as_bytes (bytes));
      g_variant_unref (bytes);
    }
  return g_steal_pointer (&map);
}

void
dirty_handoff_conn_clear (DirtyHandoffConn *conn)
{
  g_clear_pointer (&conn->unread, g_bytes_unref);
}

GArray *
dirty_handoff_take (GArray *client_fds,
                    int     state_fd)
{
  g_autoptr(GArray) conns = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffConn));
  g_autoptr(GHashTable) unread = NULL;

  g_array_set_clear_func (conns, (GDestroyNotify) dirty_handoff_conn_clear);
  if (state_fd >= 0)
    {
      unread = read_state (state_fd);
      close (state_fd);
    }
  for (guint i = 0; i < client_fds->len; i++)
    {
      DirtyHandoffConn conn = { g_array_index (client_fds, int, i), NULL };
      guint64 inode;

      /* connected (listening = 0) Unix stream sockets only */
      if (sd_is_socket (conn.fd, AF_UNIX, SOCK_STREAM, 0) <= 0)
        {
          close (conn.fd);
          continue;
        }
      inode = socket_inode (conn.fd);
      if (unread != NULL && g_hash_table_lookup (unread, &inode) != NULL)
        conn.unread = g_bytes_ref (g_hash_table_lookup (unread, &inode));
      g_array_append_val (conns, conn);
    }
  /* ours now: out of the store, or the next start would get them again */
  sd_notify (0, "FDSTOREREMOVE=1\nFDNAME=" DIRTY_HANDOFF_CLIENT_NAME);
  sd_notify (0, "FDSTOREREMOVE=1\nFDNAME=" DIRTY_HANDOFF_STATE_NAME);
  return g_steal_pointer (&conns);
}
