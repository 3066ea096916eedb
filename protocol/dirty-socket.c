/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>

#include "dirty-socket.h"

char *
dirty_socket_default_path (void)
{
  const char *env = g_getenv ("DIRTY_ARBITER_SOCKET");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  /* root is the system instance; anyone else is a user (session) one */
  if (getuid () == 0)
    return g_strdup ("/run/dirty-arbiter.sock");
  return g_build_filename (g_get_user_runtime_dir (), "dirty-arbiter.sock", NULL);
}

gboolean
dirty_socket_check_path (const char  *path,
                         GError     **error)
{
  struct sockaddr_un address;
  gsize length = strlen (path);

  if (length == 0)
    {
      /* not "connection refused", as connect () would say */
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_FILENAME,
                           "the socket path is empty");
      return FALSE;
    }
  if (length < sizeof address.sun_path)
    return TRUE;
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
               "the path is %" G_GSIZE_FORMAT " bytes long; a Unix socket's is at most %"
               G_GSIZE_FORMAT, length, sizeof address.sun_path - 1);
  return FALSE;
}

int *
dirty_socket_add_rights (struct msghdr *msg,
                         guint          n_fds)
{
  struct cmsghdr *c;

  g_return_val_if_fail (n_fds > 0, NULL);

  /* the heap: a frame may carry hundreds of fds */
  msg->msg_controllen = CMSG_SPACE (n_fds * sizeof (int));
  msg->msg_control = g_malloc0 (msg->msg_controllen);
  c = CMSG_FIRSTHDR (msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (n_fds * sizeof (int));
  return (int *) CMSG_DATA (c);
}

int
dirty_socket_poll_timeout_ms (gint64 deadline)
{
  gint64 left;

  if (deadline == 0)
    return -1;
  left = deadline - g_get_monotonic_time ();
  if (left <= 0)
    return 0;
  return (int) MIN ((left + 999) / 1000, G_MAXINT);
}
