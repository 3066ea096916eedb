/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: DirtyConnection's reassembly of frames from a real
 * socket. The first byte picks the size of the writes the peer makes, so
 * frames arrive split at every possible place, and (bit 6) whether every
 * third write carries a sealed memfd with SCM_RIGHTS, so fds arrive with
 * frames, mid-frame and with no frame at all; the rest is the byte
 * stream. The connection must deliver whole frames with their declared
 * fds or close, never crash, leak an fd or read out of bounds. */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-connection.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct {
  guint    frames;
  gboolean closed;
} State;

static void
on_frame (DirtyConnection *conn, DirtyFrame *frame, gpointer user_data)
{
  State *state = user_data;

  state->frames++;
  g_assert (g_bytes_get_size (frame->body) == dirty_frame_header_body_length (&frame->header));
  g_assert (dirty_fd_set_get_length (frame->fds) == frame->header.n_fds);
}

/* One write of @n bytes carrying a sealed 4096-byte memfd */
static gboolean
write_with_fd (int fd, const uint8_t *data, gsize n)
{
  static int memfd = -1;
  struct iovec iov = { (void *) data, n };
  char control[CMSG_SPACE (sizeof (int))] = { 0 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof control };
  struct cmsghdr *c = CMSG_FIRSTHDR (&msg);

  if (memfd < 0)
    {
      memfd = memfd_create ("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      g_assert (memfd >= 0 && ftruncate (memfd, 4096) == 0);
      g_assert (fcntl (memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    }
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &memfd, sizeof memfd);
  return sendmsg (fd, &msg, MSG_NOSIGNAL) == (gssize) n;
}

static void
on_closed (DirtyConnection *conn, const GError *error, gpointer user_data)
{
  State *state = user_data;

  state->closed = TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(DirtyConnection) conn = NULL;
  DirtyLimits limits;
  State state = { 0 };
  gsize step;
  gboolean with_fds;
  guint writes = 0;
  int fds[2];

  if (size < 1)
    return 0;
  step = 1 + data[0] % 64;
  with_fds = (data[0] & 0x40) != 0;
  data++;
  size--;
  /* fails once fds leak (EMFILE): a leak is a crash, not a quiet skip */
  g_assert (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  dirty_limits_init (&limits);
  limits.max_body = 1 << 16;
  socket = g_socket_new_from_fd (fds[0], NULL);
  conn = dirty_connection_new (socket, &limits);
  dirty_connection_start (conn, context, on_frame, on_closed, &state);

  for (gsize off = 0; off < size && !state.closed; off += step)
    {
      gsize n = MIN (step, size - off);

      if (with_fds && writes++ % 3 == 0 ? !write_with_fd (fds[1], data + off, n)
                                         : write (fds[1], data + off, n) != (gssize) n)
        break;
      while (g_main_context_iteration (context, FALSE))
        ;
    }
  shutdown (fds[1], SHUT_WR);
  while (!state.closed)
    g_main_context_iteration (context, TRUE);
  close (fds[1]);
  return 0;
}
