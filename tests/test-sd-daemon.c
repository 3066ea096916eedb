/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The arbiter's own sd-daemon protocols (dirty-sd-daemon.h) against
 * libsystemd's: for every environment and socket below both must give the
 * same answer (errors: both negative), and what the arbiter sends on
 * NOTIFY_SOCKET must arrive as sent, with its fds. The real-systemd suite
 * (tests/systemd) runs them against systemd itself. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "dirty-sd-daemon.h"

#define N_PASSED 3   /* fds 3, 4, 5 are open while the tests run */

static void
set_or_unset (const char *name,
              const char *value)
{
  if (value != NULL)
    g_setenv (name, value, TRUE);
  else
    g_unsetenv (name);
}

/* The same answer: equal when not an error, both negative otherwise */
static void
assert_same_result (int ours,
                    int theirs)
{
  if (theirs < 0)
    g_assert_cmpint (ours, <, 0);
  else
    g_assert_cmpint (ours, ==, theirs);
}

/* ---- socket activation ---- */

static void
test_listen_fds (void)
{
  g_autofree char *self = g_strdup_printf ("%d", (int) getpid ());
  g_autofree char *other = g_strdup_printf ("%d", (int) getpid () + 1);
  const char *pids[] = { self, other, "x", "0", NULL };
  const char *counts[] = { "1", "2", "3", "0", "-1", "x", "40", NULL };
  const char *names[] = { "a:b:c", "a", "a::b", ":", "dirty-arbiter", NULL };
  guint n_cases = 0;

  for (guint p = 0; p < G_N_ELEMENTS (pids); p++)
    for (guint c = 0; c < G_N_ELEMENTS (counts); c++)
      for (guint n = 0; n < G_N_ELEMENTS (names); n++)
        {
          g_auto(GStrv) theirs_names = NULL;
          g_auto(GStrv) ours_names = NULL;
          int theirs, ours;

          set_or_unset ("LISTEN_PID", pids[p]);
          set_or_unset ("LISTEN_FDS", counts[c]);
          set_or_unset ("LISTEN_FDNAMES", names[n]);
          theirs = sd_listen_fds_with_names (FALSE, &theirs_names);
          ours = dirty_sd_listen_fds (&ours_names);
          g_test_message ("LISTEN_PID=%s LISTEN_FDS=%s LISTEN_FDNAMES=%s: %d, libsystemd %d",
                          p == 0 ? "(self)" : pids[p], counts[c], names[n], ours, theirs);
          assert_same_result (ours, theirs);
          if (theirs > 0)
            g_assert_cmpstrv (ours_names, theirs_names);
          else
            g_assert_null (ours_names);
          /* a worker started next must not take the fds for its own */
          g_assert_null (g_getenv ("LISTEN_PID"));
          g_assert_null (g_getenv ("LISTEN_FDS"));
          g_assert_null (g_getenv ("LISTEN_FDNAMES"));
          n_cases++;
        }
  g_assert_cmpuint (n_cases, ==, 5 * 8 * 6);
}

/* What the arbiter reads: the fds passed are made close-on-exec */
static void
test_listen_fds_cloexec (void)
{
  g_auto(GStrv) names = NULL;
  g_autofree char *self = g_strdup_printf ("%d", (int) getpid ());

  for (int fd = 3; fd < 3 + N_PASSED; fd++)
    g_assert_no_errno (fcntl (fd, F_SETFD, 0));
  g_setenv ("LISTEN_PID", self, TRUE);
  g_setenv ("LISTEN_FDS", "3", TRUE);
  g_setenv ("LISTEN_FDNAMES", "dirty-arbiter:b:c", TRUE);
  g_assert_cmpint (dirty_sd_listen_fds (&names), ==, 3);
  g_assert_cmpstr (names[0], ==, "dirty-arbiter");
  for (int fd = 3; fd < 3 + N_PASSED; fd++)
    g_assert_cmpint (fcntl (fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
}

/* ---- the watchdog ---- */

static void
test_watchdog (void)
{
  g_autofree char *self = g_strdup_printf ("%d", (int) getpid ());
  g_autofree char *other = g_strdup_printf ("%d", (int) getpid () + 1);
  const char *usecs[] = { "2000000", "1", "0", "x", "18446744073709551615", NULL };
  const char *pids[] = { self, other, "x", "0", NULL };

  for (guint u = 0; u < G_N_ELEMENTS (usecs); u++)
    for (guint p = 0; p < G_N_ELEMENTS (pids); p++)
      {
        guint64 theirs_usec = 0, ours_usec = 0;
        int theirs, ours;

        set_or_unset ("WATCHDOG_USEC", usecs[u]);
        set_or_unset ("WATCHDOG_PID", pids[p]);
        theirs = sd_watchdog_enabled (FALSE, &theirs_usec);
        ours = dirty_sd_watchdog_enabled (&ours_usec);
        g_test_message ("WATCHDOG_USEC=%s WATCHDOG_PID=%s: %d, libsystemd %d",
                        usecs[u], p == 0 ? "(self)" : pids[p], ours, theirs);
        assert_same_result (ours, theirs);
        if (theirs > 0)
          g_assert_cmpuint (ours_usec, ==, theirs_usec);
        g_assert_null (g_getenv ("WATCHDOG_USEC"));
        g_assert_null (g_getenv ("WATCHDOG_PID"));
      }
}

/* ---- sd_is_socket ---- */

static int
listening_unix_socket (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  g_assert_no_errno (bind (fd, (struct sockaddr *) &addr, sizeof addr));
  g_assert_no_errno (listen (fd, 4));
  return fd;
}

static void
test_is_socket (void)
{
  g_autofree char *dir = g_dir_make_tmp ("dirty-sd-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "listen", NULL);
  const int families[] = { AF_UNSPEC, AF_UNIX, AF_INET };
  const int types[] = { 0, SOCK_STREAM, SOCK_DGRAM };
  const int listening[] = { -1, 0, 1 };
  int pair[2], dgram[2], pipe_fds[2], fds[7];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dgram));
  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  fds[0] = listening_unix_socket (path);
  fds[1] = pair[0];
  fds[2] = dgram[0];
  fds[3] = pipe_fds[0];
  fds[4] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  fds[5] = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  fds[6] = 1000;   /* not open */

  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    for (guint f = 0; f < G_N_ELEMENTS (families); f++)
      for (guint t = 0; t < G_N_ELEMENTS (types); t++)
        for (guint l = 0; l < G_N_ELEMENTS (listening); l++)
          {
            int theirs = sd_is_socket (fds[i], families[f], types[t], listening[l]);
            int ours = dirty_sd_is_socket (fds[i], families[f], types[t], listening[l]);

            g_test_message ("fd %u family %d type %d listening %d: %d, libsystemd %d",
                            i, families[f], types[t], listening[l], ours, theirs);
            assert_same_result (ours, theirs);
          }
  /* and the answers are not all the same */
  g_assert_cmpint (dirty_sd_is_socket (fds[0], AF_UNIX, SOCK_STREAM, 1), ==, 1);
  g_assert_cmpint (dirty_sd_is_socket (fds[1], AF_UNIX, SOCK_STREAM, 1), ==, 0);
  g_assert_cmpint (dirty_sd_is_socket (fds[3], AF_UNSPEC, 0, -1), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (fds) - 1; i++)
    close (fds[i]);
  close (pair[1]);
  close (dgram[1]);
  close (pipe_fds[1]);
  g_unlink (path);
  g_rmdir (dir);
}

/* ---- sd_notify ---- */

typedef struct {
  char *dir;
  int   fd;       /* the receiving end, as systemd's */
} Receiver;

/* A datagram socket where NOTIFY_SOCKET says: a path, or with @abstract
 * a name in the abstract namespace */
static void
receiver_open (Receiver *r,
               gboolean  abstract)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  g_autofree char *value = NULL;
  socklen_t len;
  int on = 1;

  r->dir = g_dir_make_tmp ("dirty-sd-XXXXXX", NULL);
  r->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (abstract)
    {
      value = g_strdup_printf ("@dirty-test-notify-%d", (int) getpid ());
      memcpy (addr.sun_path + 1, value + 1, strlen (value) - 1);
      len = offsetof (struct sockaddr_un, sun_path) + strlen (value);
    }
  else
    {
      value = g_build_filename (r->dir, "notify", NULL);
      g_strlcpy (addr.sun_path, value, sizeof addr.sun_path);
      len = sizeof addr;
    }
  g_assert_no_errno (bind (r->fd, (struct sockaddr *) &addr, len));
  g_assert_no_errno (setsockopt (r->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  g_setenv ("NOTIFY_SOCKET", value, TRUE);
}

static void
receiver_close (Receiver *r)
{
  g_autofree char *path = g_build_filename (r->dir, "notify", NULL);

  close (r->fd);
  g_unlink (path);
  g_rmdir (r->dir);
  g_free (r->dir);
  g_unsetenv ("NOTIFY_SOCKET");
}

/* Reads one message; returns its text, its fd in *fd (-1 if none) and
 * the sender's pid */
static char *
receiver_read (Receiver *r,
               int      *fd,
               pid_t    *pid)
{
  char buf[4096];
  union {
    struct cmsghdr align;
    guint8 space[CMSG_SPACE (sizeof (int) * 4) + CMSG_SPACE (sizeof (struct ucred))];
  } control;
  struct iovec iov = { buf, sizeof buf };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control };
  ssize_t n = recvmsg (r->fd, &msg, MSG_CMSG_CLOEXEC);

  g_assert_cmpint (n, >=, 0);
  *fd = -1;
  *pid = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
    {
      if (c->cmsg_type == SCM_RIGHTS)
        {
          g_assert_cmpuint (c->cmsg_len, ==, CMSG_LEN (sizeof (int)));
          memcpy (fd, CMSG_DATA (c), sizeof (int));
        }
      else if (c->cmsg_type == SCM_CREDENTIALS)
        *pid = ((struct ucred *) CMSG_DATA (c))->pid;
    }
  return g_strndup (buf, n);
}

static void
assert_same_file (int a,
                  int b)
{
  struct stat sa, sb;

  g_assert_no_errno (fstat (a, &sa));
  g_assert_no_errno (fstat (b, &sb));
  g_assert_cmpuint (sa.st_dev, ==, sb.st_dev);
  g_assert_cmpuint (sa.st_ino, ==, sb.st_ino);
}

static void
check_notify (gboolean abstract)
{
  Receiver r;
  int pipe_fds[2], fd;
  pid_t pid;
  g_autofree char *text = NULL;
  g_autofree char *text2 = NULL;

  receiver_open (&r, abstract);
  g_assert_cmpint (dirty_sd_notifyf ("READY=1\nSTATUS=%s", "Serving 2 apps"), ==, 1);
  text = receiver_read (&r, &fd, &pid);
  g_assert_cmpstr (text, ==, "READY=1\nSTATUS=Serving 2 apps");
  g_assert_cmpint (fd, ==, -1);
  g_assert_cmpint (pid, ==, getpid ());

  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  g_assert_cmpint (dirty_sd_notify_with_fds ("FDSTORE=1\nFDNAME=state", &pipe_fds[0], 1), ==, 1);
  text2 = receiver_read (&r, &fd, &pid);
  g_assert_cmpstr (text2, ==, "FDSTORE=1\nFDNAME=state");
  g_assert_cmpint (fd, >=, 0);
  assert_same_file (fd, pipe_fds[0]);
  /* still ours too */
  g_assert_no_errno (fcntl (pipe_fds[0], F_GETFD));
  close (fd);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  receiver_close (&r);
}

static void
test_notify_path (void)
{
  check_notify (FALSE);
}

static void
test_notify_abstract (void)
{
  check_notify (TRUE);
}

static void
test_notify_bad_address (void)
{
  g_autofree char *dir = g_dir_make_tmp ("dirty-sd-XXXXXX", NULL);
  g_autofree char *missing = g_build_filename (dir, "nobody-listens", NULL);
  g_autofree char *too_long = g_strnfill (200, 'x');
  const char *values[] = { NULL, "relative/path", "/", "@", missing, too_long };

  too_long[0] = '/';
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      set_or_unset ("NOTIFY_SOCKET", values[i]);
      int ours = dirty_sd_notify ("READY=1");

      assert_same_result (ours, sd_notify (0, "READY=1"));
      /* no NOTIFY_SOCKET: not under systemd, which is no error */
      if (values[i] == NULL)
        g_assert_cmpint (ours, ==, 0);
      else
        g_assert_cmpint (ours, <, 0);
    }
  g_unsetenv ("NOTIFY_SOCKET");
  g_rmdir (dir);
}

/* What systemd does with BARRIER=1: reads it and closes its fd */
static gpointer
answer_barrier (gpointer data)
{
  Receiver *r = data;
  int fd;
  pid_t pid;
  g_autofree char *text = receiver_read (r, &fd, &pid);

  g_assert_cmpstr (text, ==, "BARRIER=1");
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  return NULL;
}

static void
test_notify_barrier (void)
{
  Receiver r;
  GThread *thread;
  int fd;
  pid_t pid;
  g_autofree char *text = NULL;

  g_unsetenv ("NOTIFY_SOCKET");
  g_assert_cmpint (dirty_sd_notify_barrier (G_USEC_PER_SEC), ==, 0);

  receiver_open (&r, FALSE);
  thread = g_thread_new ("barrier", answer_barrier, &r);
  g_assert_cmpint (dirty_sd_notify_barrier (10 * G_USEC_PER_SEC), ==, 1);
  g_thread_join (thread);

  /* a manager that keeps the fd has not confirmed anything */
  g_assert_cmpint (dirty_sd_notify_barrier (G_USEC_PER_SEC / 10), ==, -ETIMEDOUT);
  text = receiver_read (&r, &fd, &pid);
  g_assert_cmpstr (text, ==, "BARRIER=1");
  close (fd);
  receiver_close (&r);
}

/* fds 3.. open, as systemd passes them, for the listen-fds cases */
static void
open_passed_fds (void)
{
  for (int fd = 3; fd < 3 + N_PASSED; fd++)
    if (fcntl (fd, F_GETFD) < 0)
      g_assert_cmpint (dup2 (STDERR_FILENO, fd), ==, fd);
}

int
main (int argc, char **argv)
{
  open_passed_fds ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sd-daemon/listen-fds/as-libsystemd", test_listen_fds);
  g_test_add_func ("/sd-daemon/listen-fds/cloexec", test_listen_fds_cloexec);
  g_test_add_func ("/sd-daemon/watchdog/as-libsystemd", test_watchdog);
  g_test_add_func ("/sd-daemon/is-socket/as-libsystemd", test_is_socket);
  g_test_add_func ("/sd-daemon/notify/path", test_notify_path);
  g_test_add_func ("/sd-daemon/notify/abstract", test_notify_abstract);
  g_test_add_func ("/sd-daemon/notify/bad-address", test_notify_bad_address);
  g_test_add_func ("/sd-daemon/notify/barrier", test_notify_barrier);

  return g_test_run ();
}
