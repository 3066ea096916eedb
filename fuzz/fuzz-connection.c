/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: DirtyConnection's reassembly of frames from a real
 * socket. The first byte picks the size of the writes the peer makes, so
 * frames arrive split at every possible place; the rest is the byte
 * stream. The connection must deliver whole frames or close, never crash
 * or read out of bounds. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
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
  int fds[2];

  if (size < 1)
    return 0;
  step = 1 + data[0] % 64;
  data++;
  size--;
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    return 0;
  dirty_limits_init (&limits);
  limits.max_body = 1 << 16;
  socket = g_socket_new_from_fd (fds[0], NULL);
  conn = dirty_connection_new (socket, &limits);
  dirty_connection_start (conn, context, on_frame, on_closed, &state);

  for (gsize off = 0; off < size && !state.closed; off += step)
    {
      gsize n = MIN (step, size - off);

      if (write (fds[1], data + off, n) != (gssize) n)
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
