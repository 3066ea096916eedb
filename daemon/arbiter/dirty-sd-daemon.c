/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dirty-sd-daemon.h"
#include "dirty-socket.h"

/* systemd's own sender asks for this much, so that a burst of messages
 * (a restart handoff stores one fd per client) does not block on the
 * socket's default buffer; the kernel caps it at wmem_max */
#define NOTIFY_SNDBUF (8 * 1024 * 1024)

/* ---- sd_notify ---- */

/* NOTIFY_SOCKET: an absolute path, or "@name" for an abstract socket */
static int
notify_address (struct sockaddr_un *addr,
                socklen_t          *len)
{
  const char *e = g_getenv ("NOTIFY_SOCKET");
  gsize n;

  if (e == NULL)
    return 0;
  n = strlen (e);
  if ((e[0] != '/' && e[0] != '@') || n < 2 || n > sizeof addr->sun_path)
    return -EINVAL;
  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy (addr->sun_path, e, n);
  if (e[0] == '@')
    addr->sun_path[0] = '\0';
  *len = offsetof (struct sockaddr_un, sun_path) + n + (e[0] == '/' && n < sizeof addr->sun_path);
  return 1;
}

static int
send_notify (int                 fd,
             struct sockaddr_un *addr,
             socklen_t           addr_len,
             const char         *state,
             const int          *fds,
             guint               n_fds)
{
  struct iovec iov = { (void *) state, strlen (state) };
  struct msghdr msg = { .msg_name = addr, .msg_namelen = addr_len, .msg_iov = &iov, .msg_iovlen = 1 };
  int r = 1;

  if (n_fds > 0)
    memcpy (dirty_socket_add_rights (&msg, n_fds), fds, sizeof (int) * n_fds);
  while (sendmsg (fd, &msg, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      {
        r = -errno;
        break;
      }
  g_free (msg.msg_control);
  return r;
}

int
dirty_sd_notify_with_fds (const char *state,
                          const int  *fds,
                          guint       n_fds)
{
  struct sockaddr_un addr;
  socklen_t addr_len = 0;
  int sndbuf = NOTIFY_SNDBUF;
  int fd, r;

  g_return_val_if_fail (state != NULL, -EINVAL);
  g_return_val_if_fail (n_fds == 0 || fds != NULL, -EINVAL);

  r = notify_address (&addr, &addr_len);
  if (r <= 0)
    return r;
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  (void) setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  r = send_notify (fd, &addr, addr_len, state, fds, n_fds);
  close (fd);
  return r;
}

int
dirty_sd_notify (const char *state)
{
  return dirty_sd_notify_with_fds (state, NULL, 0);
}

int
dirty_sd_notifyf (const char *format,
                  ...)
{
  g_autofree char *state = NULL;
  va_list args;

  va_start (args, format);
  state = g_strdup_vprintf (format, args);
  va_end (args);
  return dirty_sd_notify (state);
}

/* Waits for the read end of a pipe to see its writer gone: systemd
 * closes the fd that came with BARRIER=1 once it has read it, and so
 * every message before it. */
static int
wait_for_hangup (int     fd,
                 guint64 timeout_usec)
{
  gint64 end = g_get_monotonic_time () + (gint64) MIN (timeout_usec, (guint64) G_MAXINT64 / 2);

  for (;;)
    {
      struct pollfd pfd = { fd, 0, 0 };
      int timeout = dirty_socket_poll_timeout_ms (end);
      int r;

      if (timeout == 0)
        return -ETIMEDOUT;
      r = poll (&pfd, 1, timeout);
      if (r < 0 && errno != EINTR)
        return -errno;
      if (r > 0)
        return 1;
    }
}

int
dirty_sd_notify_barrier (guint64 timeout_usec)
{
  int pipe_fds[2];
  int r;

  if (pipe2 (pipe_fds, O_CLOEXEC) < 0)
    return -errno;
  r = dirty_sd_notify_with_fds ("BARRIER=1", &pipe_fds[1], 1);
  close (pipe_fds[1]);
  if (r > 0)
    r = wait_for_hangup (pipe_fds[0], timeout_usec);
  close (pipe_fds[0]);
  return r;
}

/* ---- environment ---- */

/* LISTEN_PID= and WATCHDOG_PID=: 1 if it names this process, 0 if
 * another, -EINVAL if it is no pid */
static int
pid_is_ours (const char *value)
{
  guint64 pid;

  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXINT32, &pid, NULL))
    return -EINVAL;
  return (pid_t) pid == getpid ();
}

static int
listen_fds_count (void)
{
  const char *value = g_getenv ("LISTEN_PID");
  gint64 n;
  int r;

  if (value == NULL)
    return 0;
  r = pid_is_ours (value);
  if (r <= 0)
    return r;
  value = g_getenv ("LISTEN_FDS");
  if (value == NULL)
    return 0;
  if (!g_ascii_string_to_signed (value, 10, 1, G_MAXINT - DIRTY_SD_LISTEN_FDS_START, &n, NULL))
    return -EINVAL;
  for (int fd = DIRTY_SD_LISTEN_FDS_START; fd < DIRTY_SD_LISTEN_FDS_START + n; fd++)
    {
      int flags = fcntl (fd, F_GETFD);

      if (flags < 0 || fcntl (fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return -errno;
    }
  return (int) n;
}

int
dirty_sd_listen_fds (char ***names)
{
  g_auto(GStrv) split = NULL;
  const char *value = g_getenv ("LISTEN_FDNAMES");
  int n;

  g_return_val_if_fail (names != NULL && *names == NULL, -EINVAL);

  /* "a::b" is three names, the middle one empty */
  if (value != NULL)
    split = g_strsplit (value, ":", -1);
  n = listen_fds_count ();
  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
  if (n <= 0)
    return n;
  if (split != NULL && g_strv_length (split) != (guint) n)
    return -EINVAL;
  if (split == NULL)
    {
      split = g_new0 (char *, n + 1);
      for (int i = 0; i < n; i++)
        split[i] = g_strdup ("unknown");
    }
  *names = g_steal_pointer (&split);
  return n;
}

static int
watchdog_usec (guint64 *usec)
{
  const char *value = g_getenv ("WATCHDOG_USEC");
  const char *pid = g_getenv ("WATCHDOG_PID");
  guint64 u;
  int r;

  if (value == NULL)
    return 0;
  /* 0 and "infinity" (UINT64_MAX) are no interval */
  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT64 - 1, &u, NULL))
    return -EINVAL;
  if (pid != NULL && (r = pid_is_ours (pid)) <= 0)
    return r;
  *usec = u;
  return 1;
}

int
dirty_sd_watchdog_enabled (guint64 *usec)
{
  int r;

  g_return_val_if_fail (usec != NULL, -EINVAL);

  r = watchdog_usec (usec);
  g_unsetenv ("WATCHDOG_USEC");
  g_unsetenv ("WATCHDOG_PID");
  return r;
}

/* ---- sd_is_socket ---- */

static int
get_int_option (int  fd,
                int  option,
                int *value)
{
  socklen_t len = sizeof *value;

  if (getsockopt (fd, SOL_SOCKET, option, value, &len) < 0)
    return -errno;
  return len == sizeof *value ? 1 : -EINVAL;
}

int
dirty_sd_is_socket (int fd,
                    int family,
                    int type,
                    int listening)
{
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  struct stat st;
  int value, r;

  g_return_val_if_fail (fd >= 0, -EBADF);
  g_return_val_if_fail (family >= 0, -EINVAL);

  if (fstat (fd, &st) < 0)
    return -errno;
  if (!S_ISSOCK (st.st_mode))
    return 0;
  if (type != 0)
    {
      if ((r = get_int_option (fd, SO_TYPE, &value)) < 0)
        return r;
      if (value != type)
        return 0;
    }
  if (listening >= 0)
    {
      if ((r = get_int_option (fd, SO_ACCEPTCONN, &value)) < 0)
        return r;
      if (!value != !listening)
        return 0;
    }
  if (family > 0)
    {
      if (getsockname (fd, (struct sockaddr *) &addr, &len) < 0)
        return -errno;
      if (len < sizeof (sa_family_t))
        return -EINVAL;
      return addr.ss_family == family;
    }
  return 1;
}
