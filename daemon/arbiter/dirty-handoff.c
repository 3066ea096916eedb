/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-handoff.h"
#include "dirty-log.h"
#include "dirty-sd-daemon.h"

struct _DirtyHandoffState
{
  GHashTable *unread;    /* socket inode -> GBytes */
  GHashTable *workers;   /* worker id -> GVariant a{sv} */
  GHashTable *attach;    /* socket inode -> GVariant au: its attach-N, in order */
};

/* The memfd's content: (version, [(socket inode, unread bytes)]) in
 * version 1; version 2 adds [(worker id, facts)]; version 3 [(socket
 * inode, [N of each "attach-N"])]: the fds its unread frames carry, in
 * order (one N may serve twice: a file is stored once). The version is
 * the tuple's first member, so its first 4 bytes in any. */
#define STATE_TYPE_V1 "(ua(tay))"
#define STATE_TYPE_V2 "(ua(tay)a(ua{sv}))"
#define STATE_TYPE    "(ua(tay)a(ua{sv})a(tau))"
#define STATE_VERSION 3
/* How long systemd may take to have the fds before the process exits */
#define BARRIER_USEC  (5 * G_USEC_PER_SEC)
/* A connection holds few memfds at a handoff (its peer stops reading
 * once it holds max_fds of them): a state naming more is corrupt */
#define HANDOFF_MAX_CONN_FDS 1024

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

static int write_memfd (GVariant  *state,
                        GError   **error);

/* The unread bytes of @conns and the facts of @workers in a memfd (-1
 * and @error on failure) */
static int
write_state (GArray  *workers,
             GArray  *conns,
             GError **error)
{
  GVariantBuilder builder, facts, attach;
  g_autoptr(GVariant) state = NULL;

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
  g_variant_builder_init (&facts, G_VARIANT_TYPE ("a(ua{sv})"));
  for (guint i = 0; i < workers->len; i++)
    {
      DirtyHandoffWorker *worker = &g_array_index (workers, DirtyHandoffWorker, i);

      if (worker->fd >= 0 && worker->facts != NULL)
        g_variant_builder_add (&facts, "(u@a{sv})", (guint32) worker->id, worker->facts);
    }
  g_variant_builder_init (&attach, G_VARIANT_TYPE ("a(tau)"));
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);

      if (conn->attach_ids != NULL && conn->attach_ids->len > 0)
        g_variant_builder_add (&attach, "(t@au)", socket_inode (conn->fd),
                               g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32,
                                                          conn->attach_ids->data,
                                                          conn->attach_ids->len,
                                                          sizeof (guint32)));
    }
  state = g_variant_ref_sink (g_variant_new (STATE_TYPE, (guint32) STATE_VERSION,
                                             &builder, &facts, &attach));
  return write_memfd (state, error);
}

static int
write_memfd (GVariant  *state,
             GError   **error)
{
  gsize size = g_variant_get_size (state), done = 0;
  const guint8 *data = g_variant_get_data (state);
  int fd = memfd_create ("dirty-arbiter-handoff", MFD_CLOEXEC);

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
close_all (GArray *conns,
           GArray *workers)
{
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);

      if (conn->fd >= 0)
        close (conn->fd);
      conn->fd = -1;
      for (guint j = 0; conn->fds != NULL && j < conn->fds->len; j++)
        close (g_array_index (conn->fds, int, j));
      if (conn->fds != NULL)
        g_array_set_size (conn->fds, 0);
    }
  for (guint i = 0; i < workers->len; i++)
    {
      DirtyHandoffWorker *worker = &g_array_index (workers, DirtyHandoffWorker, i);

      if (worker->fd >= 0)
        close (worker->fd);
      worker->fd = -1;
    }
}

/* Which connections fit in the store (@max, *@used counted so far), with
 * their memfds: each file once ("attach-N"), N in conn->attach_ids.
 * Returns the (N, fd) pairs to send, as DirtyHandoffAttach. */
static GArray *
plan_attachments (GArray *conns,
                  guint   max,
                  guint  *used)
{
  GArray *sends = g_array_new (FALSE, FALSE, sizeof (DirtyHandoffAttach));
  g_autoptr(GHashTable) files = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                       (GDestroyNotify) g_bytes_unref, NULL);

  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);
      guint n = conn->fds != NULL ? conn->fds->len : 0, added = 0;
      g_autoptr(GArray) ids = g_array_sized_new (FALSE, FALSE, sizeof (guint32), n);
      g_autoptr(GPtrArray) new_files = g_ptr_array_new ();

      for (guint j = 0; j < n; j++)
        {
          int fd = g_array_index (conn->fds, int, j);
          struct stat st = { 0 };
          guint64 key[2];
          g_autoptr(GBytes) file = NULL;
          gpointer known;
          guint32 id;

          fstat (fd, &st);
          key[0] = st.st_dev;
          key[1] = st.st_ino;
          file = g_bytes_new (key, sizeof key);
          /* the same file twice: systemd would keep only one of them */
          if (g_hash_table_lookup_extended (files, file, NULL, &known))
            id = GPOINTER_TO_UINT (known);
          else
            {
              DirtyHandoffAttach send = { fd, sends->len + 1 };

              id = send.id;
              g_array_append_val (sends, send);
              g_hash_table_insert (files, g_bytes_ref (file), GUINT_TO_POINTER (id));
              g_ptr_array_add (new_files, file);
              added++;
            }
          g_array_append_val (ids, id);
        }
      conn->fits = *used + 1 + added <= max;
      if (!conn->fits)
        {
          /* out of room: what it added is not sent */
          for (guint j = 0; j < new_files->len; j++)
            g_hash_table_remove (files, new_files->pdata[j]);
          g_array_set_size (sends, sends->len - added);
          continue;
        }
      *used += 1 + added;
      conn->attach_ids = g_steal_pointer (&ids);
    }
  return sends;
}

/* The memfds of frames read and not acted on; a memfd is not pollable
 * (FDPOLL=0). One left behind by a client that hangs up meanwhile is
 * removed by the next arbiter. */
static void
send_attachments (GArray *sends)
{
  for (guint i = 0; i < sends->len; i++)
    {
      DirtyHandoffAttach *send = &g_array_index (sends, DirtyHandoffAttach, i);
      g_autofree char *message = g_strdup_printf ("FDSTORE=1\nFDPOLL=0\nFDNAME="
                                                  DIRTY_HANDOFF_ATTACH_PREFIX "%u", send->id);
      int r = dirty_sd_notify_with_fds (message, &send->fd, 1);

      if (r <= 0)
        dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                   "handoff: a memfd of a request not yet acted on could not be stored: %s"
                   " (its connection fails after the restart)",
                   r == 0 ? "not under systemd" : g_strerror (-r));
    }
}

guint
dirty_handoff_store (GArray  *workers,
                     GArray  *conns,
                     guint    max,
                     guint   *workers_stored,
                     GError **error)
{
  int state_fd;
  guint stored = 0, used = 1;   /* the state memfd */
  g_autoptr(GArray) sends = NULL;
  int r;

  *workers_stored = 0;
  /* workers first: few, and each one is an app's loaded state */
  for (guint i = 0; i < workers->len; i++)
    {
      DirtyHandoffWorker *worker = &g_array_index (workers, DirtyHandoffWorker, i);

      if (used >= max && worker->fd >= 0)
        {
          close (worker->fd);
          worker->fd = -1;
        }
      used += worker->fd >= 0;
    }
  sends = plan_attachments (conns, max, &used);
  state_fd = write_state (workers, conns, error);
  if (state_fd < 0)
    {
      close_all (conns, workers);
      return 0;
    }
  /* a memfd is not pollable: FDPOLL=0, or systemd would drop it */
  r = dirty_sd_notify_with_fds ("FDSTORE=1\nFDPOLL=0\nFDNAME=" DIRTY_HANDOFF_STATE_NAME,
                                &state_fd, 1);
  close (state_fd);
  if (r <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "FDSTORE: %s",
                   r == 0 ? "not under systemd" : g_strerror (-r));
      close_all (conns, workers);
      return 0;
    }
  for (guint i = 0; i < workers->len; i++)
    {
      DirtyHandoffWorker *worker = &g_array_index (workers, DirtyHandoffWorker, i);
      g_autofree char *message = NULL;

      if (worker->fd < 0)
        continue;
      message = g_strdup_printf ("FDSTORE=1\nFDNAME=" DIRTY_HANDOFF_WORKER_PREFIX "%u", worker->id);
      if (dirty_sd_notify_with_fds (message, &worker->fd, 1) > 0)
        (*workers_stored)++;
    }
  send_attachments (sends);
  if (sends->len > 0)
    dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
               "handoff: %u memfds of requests read and not yet acted on go with them",
               sends->len);
  /* one message per fd: a client that hangs up meanwhile is dropped by
   * systemd (it polls them), the others are kept */
  for (guint i = 0; i < conns->len; i++)
    {
      DirtyHandoffConn *conn = &g_array_index (conns, DirtyHandoffConn, i);

      if (!conn->fits)
        continue;
      if (dirty_sd_notify_with_fds ("FDSTORE=1\nFDNAME=" DIRTY_HANDOFF_CLIENT_NAME,
                                    &conn->fd, 1) > 0)
        stored++;
    }
  close_all (conns, workers);
  /* systemd has read them all before this process is seen to exit */
  r = dirty_sd_notify_barrier (BARRIER_USEC);
  if (r < 0)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
               "handoff: systemd did not confirm the fd store: %s", g_strerror (-r));
  return stored;
}

static gboolean
read_all (int      fd,
          guint8 **out,
          gsize   *out_size)
{
  struct stat st;
  g_autofree guint8 *data = NULL;
  gsize done = 0;

  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_size < 4)
    return FALSE;
  /* from the previous arbiter, but a size it cannot have meant must not
   * abort this one (and every next one: the state stays in the store) */
  data = g_try_malloc (st.st_size);
  if (data == NULL)
    return FALSE;
  while (done < (gsize) st.st_size)
    {
      gssize n = pread (fd, data + done, st.st_size - done, done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      done += n;
    }
  *out = g_steal_pointer (&data);
  *out_size = done;
  return TRUE;
}

static void
read_state (DirtyHandoffState *state,
            int                fd)
{
  guint8 *data = NULL;
  gsize size;
  guint32 version;
  g_autoptr(GVariant) variant = NULL;
  g_autoptr(GVariantIter) unread = NULL;
  g_autoptr(GVariantIter) workers = NULL;
  g_autoptr(GVariantIter) attach = NULL;
  static const char *const types[] = { STATE_TYPE_V1, STATE_TYPE_V2, STATE_TYPE };
  GVariant *bytes, *facts, *ids;
  guint64 inode;
  guint32 id;

  if (!read_all (fd, &data, &size))
    return;
  /* the first member of either version's tuple, at offset 0 */
  memcpy (&version, data, sizeof version);
  if (version < 1 || version > STATE_VERSION)
    {
      g_free (data);
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                 "handoff: state version %u is not %u: unread bytes and workers dropped",
                 version, STATE_VERSION);
      return;
    }
  variant = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (types[version - 1]),
                                                         data, size, FALSE, g_free, data));
  if (version == 1)
    g_variant_get (variant, STATE_TYPE_V1, NULL, &unread);
  else if (version == 2)
    g_variant_get (variant, STATE_TYPE_V2, NULL, &unread, &workers);
  else
    g_variant_get (variant, STATE_TYPE, NULL, &unread, &workers, &attach);
  while (g_variant_iter_next (unread, "(t@ay)", &inode, &bytes))
    {
      g_hash_table_insert (state->unread, g_memdup2 (&inode, sizeof inode),
                           g_variant_get_data_as_bytes (bytes));
      g_variant_unref (bytes);
    }
  while (workers != NULL && g_variant_iter_next (workers, "(u@a{sv})", &id, &facts))
    g_hash_table_insert (state->workers, GUINT_TO_POINTER (id), facts);
  while (attach != NULL && g_variant_iter_next (attach, "(t@au)", &inode, &ids))
    g_hash_table_insert (state->attach, g_memdup2 (&inode, sizeof inode), ids);
}

DirtyHandoffState *
dirty_handoff_state_read (int state_fd)
{
  DirtyHandoffState *state = g_new0 (DirtyHandoffState, 1);

  state->unread = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                         (GDestroyNotify) g_bytes_unref);
  state->workers = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_variant_unref);
  state->attach = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                         (GDestroyNotify) g_variant_unref);
  if (state_fd >= 0)
    {
      read_state (state, state_fd);
      close (state_fd);
    }
  return state;
}

void
dirty_handoff_state_free (DirtyHandoffState *state)
{
  g_hash_table_unref (state->unread);
  g_hash_table_unref (state->workers);
  g_hash_table_unref (state->attach);
  g_free (state);
}

guint
dirty_handoff_worker_id_from_name (const char *name)
{
  guint64 id = 0;

  if (name == NULL || !g_str_has_prefix (name, DIRTY_HANDOFF_WORKER_PREFIX) ||
      !g_ascii_string_to_unsigned (name + strlen (DIRTY_HANDOFF_WORKER_PREFIX), 10, 1,
                                   G_MAXUINT, &id, NULL))
    return 0;
  return (guint) id;
}

void
dirty_handoff_worker_clear (DirtyHandoffWorker *worker)
{
  g_clear_pointer (&worker->facts, g_variant_unref);
}

void
dirty_handoff_conn_clear (DirtyHandoffConn *conn)
{
  g_clear_pointer (&conn->unread, g_bytes_unref);
  g_clear_pointer (&conn->attach_ids, g_array_unref);
  if (conn->fds != NULL)
    {
      for (guint i = 0; i < conn->fds->len; i++)
        close (g_array_index (conn->fds, int, i));
      g_clear_pointer (&conn->fds, g_array_unref);
    }
}

/* The fds @conn's unread frames carry, from the stored "attach-N"
 * (@attach: N -> fd), duplicated: one file may serve twice. FALSE: not
 * all of them are there (systemd may drop an fd it cannot store, and
 * only log it), or more than a connection can hold: its frames must not
 * be parsed, as each would take the next one's memfds. */
static gboolean
give_attachments (DirtyHandoffConn  *conn,
                  guint64            inode,
                  DirtyHandoffState *state,
                  GHashTable        *attach)
{
  GVariant *ids = g_hash_table_lookup (state->attach, &inode);
  gsize n = 0;
  const guint32 *id = ids != NULL ? g_variant_get_fixed_array (ids, &n, sizeof (guint32)) : NULL;
  guint missing = 0;

  if (n == 0)
    return TRUE;
  if (n > HANDOFF_MAX_CONN_FDS)
    {
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                 "handoff: a stored connection names %" G_GSIZE_FORMAT " memfds, more than "
                 "%u: the state is not what an arbiter writes; the connection is closed",
                 n, HANDOFF_MAX_CONN_FDS);
      return FALSE;
    }
  conn->fds = g_array_sized_new (FALSE, FALSE, sizeof (int), n);
  for (gsize i = 0; i < n; i++)
    {
      gpointer stored = g_hash_table_lookup (attach, GUINT_TO_POINTER (id[i]));
      int fd = stored != NULL ? fcntl (GPOINTER_TO_INT (stored), F_DUPFD_CLOEXEC, 3) : -1;

      if (fd < 0)
        missing++;
      else
        g_array_append_val (conn->fds, fd);
    }
  if (missing > 0)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
               "handoff: %u of %" G_GSIZE_FORMAT " memfds of a stored connection's unread "
               "requests are missing from the store: the connection is closed", missing, n);
  return missing == 0;
}

/* Closes the stored memfds (the connections have duplicates) and removes
 * them from the store */
static void
drop_attachments (GArray *attach_fds)
{
  for (guint i = 0; attach_fds != NULL && i < attach_fds->len; i++)
    {
      DirtyHandoffAttach *attach = &g_array_index (attach_fds, DirtyHandoffAttach, i);
      g_autofree char *message = g_strdup_printf ("FDSTOREREMOVE=1\nFDNAME="
                                                  DIRTY_HANDOFF_ATTACH_PREFIX "%u", attach->id);

      close (attach->fd);
      dirty_sd_notify (message);
    }
}

GArray *
dirty_handoff_take (GArray            *client_fds,
                    GArray            *attach_fds,
                    DirtyHandoffState *state)
{
  g_autoptr(GArray) conns = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffConn));
  g_autoptr(GHashTable) attach = g_hash_table_new (NULL, NULL);

  g_array_set_clear_func (conns, (GDestroyNotify) dirty_handoff_conn_clear);
  for (guint i = 0; attach_fds != NULL && i < attach_fds->len; i++)
    {
      DirtyHandoffAttach *stored = &g_array_index (attach_fds, DirtyHandoffAttach, i);

      g_hash_table_insert (attach, GUINT_TO_POINTER (stored->id), GINT_TO_POINTER (stored->fd));
    }
  for (guint i = 0; i < client_fds->len; i++)
    {
      DirtyHandoffConn conn = { g_array_index (client_fds, int, i), NULL, NULL, NULL, FALSE };
      guint64 inode;
      GBytes *unread;

      /* connected (listening = 0) Unix stream sockets only */
      if (dirty_sd_is_socket (conn.fd, AF_UNIX, SOCK_STREAM, 0) <= 0)
        {
          close (conn.fd);
          continue;
        }
      inode = socket_inode (conn.fd);
      unread = g_hash_table_lookup (state->unread, &inode);
      if (unread != NULL)
        conn.unread = g_bytes_ref (unread);
      if (!give_attachments (&conn, inode, state, attach))
        {
          /* its client sees the connection close, not a request run on
           * another request's bytes */
          dirty_handoff_conn_clear (&conn);
          close (conn.fd);
          continue;
        }
      g_array_append_val (conns, conn);
    }
  drop_attachments (attach_fds);
  /* ours now: out of the store, or the next start would get them again */
  dirty_sd_notify ("FDSTOREREMOVE=1\nFDNAME=" DIRTY_HANDOFF_CLIENT_NAME);
  dirty_sd_notify ("FDSTOREREMOVE=1\nFDNAME=" DIRTY_HANDOFF_STATE_NAME);
  return g_steal_pointer (&conns);
}

guint
dirty_handoff_attach_id_from_name (const char *name)
{
  guint64 id = 0;

  if (name == NULL || !g_str_has_prefix (name, DIRTY_HANDOFF_ATTACH_PREFIX) ||
      !g_ascii_string_to_unsigned (name + strlen (DIRTY_HANDOFF_ATTACH_PREFIX), 10, 1,
                                   G_MAXUINT, &id, NULL))
    return 0;
  return (guint) id;
}

GArray *
dirty_handoff_take_workers (GArray            *worker_fds,
                            DirtyHandoffState *state)
{
  g_autoptr(GArray) workers = g_array_new (FALSE, TRUE, sizeof (DirtyHandoffWorker));

  g_array_set_clear_func (workers, (GDestroyNotify) dirty_handoff_worker_clear);
  for (guint i = 0; i < worker_fds->len; i++)
    {
      DirtyHandoffWorker worker = g_array_index (worker_fds, DirtyHandoffWorker, i);
      g_autofree char *message = g_strdup_printf ("FDSTOREREMOVE=1\nFDNAME="
                                                  DIRTY_HANDOFF_WORKER_PREFIX "%u", worker.id);
      GVariant *facts = g_hash_table_lookup (state->workers, GUINT_TO_POINTER (worker.id));

      dirty_sd_notify (message);
      if (facts == NULL || dirty_sd_is_socket (worker.fd, AF_UNIX, SOCK_STREAM, 0) <= 0)
        {
          dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, worker.id,
                     "handoff: worker %u's stored connection %s: it is let go (it exits "
                     "when its connection closes)", worker.id,
                     facts == NULL ? "came without its state" : "is not a connected socket");
          close (worker.fd);
          continue;
        }
      worker.facts = g_variant_ref (facts);
      g_array_append_val (workers, worker);
    }
  return g_steal_pointer (&workers);
}
