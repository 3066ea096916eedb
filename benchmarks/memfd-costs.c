/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What one attachment of N bytes costs to hand to another process, the
 * three ways dirty-arbiter could do it (benchmarks/README.md, "Large
 * payloads (memfd)"): copied through the socket; a fresh sealed memfd per
 * payload; a memfd reused from a pool. Each moves the bytes from a
 * sender's buffer to a reader that touches every page, over a socketpair
 * to a second thread, and reports the minimum over many runs (the least
 * disturbed by the other load on the machine). Callgrind would not do:
 * most of the cost is in the kernel (copies, page faults, zeroing), which
 * it does not see. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void
write_all (int fd, const guint8 *p, gsize len)
{
  while (len > 0)
    {
      gssize n = write (fd, p, len);
      g_assert_cmpint (n, >, 0);
      p += n;
      len -= n;
    }
}

static void
read_all (int fd, guint8 *p, gsize len)
{
  while (len > 0)
    {
      gssize n = read (fd, p, len);
      g_assert_cmpint (n, >, 0);
      p += n;
      len -= n;
    }
}

static void
send_fd (int sock, int fd)
{
  char byte = 0;
  struct iovec iov = { &byte, 1 };
  char control[CMSG_SPACE (sizeof (int))] = { 0 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof control };
  struct cmsghdr *c = CMSG_FIRSTHDR (&msg);

  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof fd);
  g_assert_cmpint (sendmsg (sock, &msg, 0), ==, 1);
}

static int
receive_fd (int sock)
{
  char byte;
  struct iovec iov = { &byte, 1 };
  char control[CMSG_SPACE (sizeof (int))];
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof control };
  int fd;

  g_assert_cmpint (recvmsg (sock, &msg, MSG_CMSG_CLOEXEC), ==, 1);
  memcpy (&fd, CMSG_DATA (CMSG_FIRSTHDR (&msg)), sizeof fd);
  return fd;
}

typedef enum { MODE_COPY, MODE_FRESH, MODE_POOL } Mode;

typedef struct {
  int    sock;
  gsize  size;
  Mode   mode;
  guint  runs;
} Reader;

/* Reads each payload as dirty-arbiter's receiver does, touches a byte of
 * every page (a reader reads what it gets), and acknowledges. */
static gpointer
reader_thread (gpointer user_data)
{
  Reader *r = user_data;
  guint8 *buffer = g_malloc (r->size);
  guint sum = 0;

  for (guint i = 0; i < r->runs; i++)
    {
      const guint8 *data;
      int fd = -1;

      if (r->mode == MODE_COPY)
        {
          read_all (r->sock, buffer, r->size);
          data = buffer;
        }
      else
        {
          fd = receive_fd (r->sock);
          data = mmap (NULL, r->size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
          g_assert_true (data != MAP_FAILED);
        }
      for (gsize j = 0; j < r->size; j += 4096)
        sum += data[j];
      if (fd >= 0)
        {
          munmap ((void *) data, r->size);
          close (fd);
        }
      write_all (r->sock, (const guint8 *) "k", 1);
    }
  /* the reads must happen: their sum goes somewhere */
  g_assert_cmpuint (sum, <, G_MAXUINT);
  g_free (buffer);
  return NULL;
}

static int
fresh_memfd (const guint8 *payload, gsize size)
{
  int fd = memfd_create ("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  g_assert_cmpint (ftruncate (fd, size), ==, 0);
  g_assert_cmpint (pwrite (fd, payload, size, 0), ==, (gssize) size);
  g_assert_cmpint (fcntl (fd, F_ADD_SEALS, SEALS | F_SEAL_WRITE), ==, 0);
  return fd;
}

/* Minimum microseconds per payload over @runs */
static double
measure (Mode mode, gsize size, guint runs)
{
  int pair[2];
  Reader reader = { .size = size, .mode = mode, .runs = runs };
  g_autofree guint8 *payload = g_malloc (size);
  g_autofree guint8 *frame = g_malloc (size);
  GThread *thread;
  int pool_fd = -1;
  guint8 *pool_map = NULL;
  gint64 best = G_MAXINT64;
  char ack;

  memset (payload, 0x5a, size);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
  reader.sock = pair[1];
  thread = g_thread_new ("reader", reader_thread, &reader);
  if (mode == MODE_POOL)
    {
      pool_fd = memfd_create ("bench-pool", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      g_assert_cmpint (ftruncate (pool_fd, size), ==, 0);
      g_assert_cmpint (fcntl (pool_fd, F_ADD_SEALS, SEALS), ==, 0);
      pool_map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, pool_fd, 0);
    }
  for (guint i = 0; i < runs; i++)
    {
      gint64 t0 = g_get_monotonic_time ();

      if (mode == MODE_COPY)
        {
          memcpy (frame, payload, size);   /* into the frame body */
          write_all (pair[0], frame, size);
        }
      else if (mode == MODE_FRESH)
        {
          int fd = fresh_memfd (payload, size);
          send_fd (pair[0], fd);
          close (fd);
        }
      else
        {
          memcpy (pool_map, payload, size);
          send_fd (pair[0], pool_fd);
        }
      read_all (pair[0], (guint8 *) &ack, 1);
      best = MIN (best, g_get_monotonic_time () - t0);
    }
  g_thread_join (thread);
  if (pool_map != NULL)
    {
      munmap (pool_map, size);
      close (pool_fd);
    }
  close (pair[0]);
  close (pair[1]);
  return best;
}

int
main (int argc, char **argv)
{
  const gsize sizes[] = { 16 * 1024, 64 * 1024, 128 * 1024, 256 * 1024, 1024 * 1024,
                          4 * 1024 * 1024, 8 * 1024 * 1024, 16 * 1024 * 1024 };

  g_print ("one payload to another thread and every page touched, minimum of 100 runs, us\n");
  g_print ("%12s %12s %12s %12s\n", "bytes", "copy", "fresh memfd", "pooled memfd");
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    g_print ("%12zu %12.1f %12.1f %12.1f\n", sizes[i], measure (MODE_COPY, sizes[i], 100),
             measure (MODE_FRESH, sizes[i], 100), measure (MODE_POOL, sizes[i], 100));
  return 0;
}
