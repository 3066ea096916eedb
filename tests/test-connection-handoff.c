/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restart handoff at the connection level: a frame that carried
 * memfds and was read, not yet delivered, goes to the next owner of the
 * socket with its fds (dirty_connection_detach_with_fds ()), ahead of the
 * fds still in the kernel's buffer (dirty_connection_set_unread_with_fds
 * ()). Real socketpair, real memfds. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-connection.h"
#include "dirty-memfd.h"
#include "dirty-message.h"

#define ATTACHMENT_SIZE (64 * 1024)

typedef struct {
  GMainContext    *context;
  DirtyConnection *conn;
  GPtrArray       *frames;
  GError          *close_error;
  gboolean         closed;
} Side;

static void
on_frame (DirtyConnection *conn, DirtyFrame *frame, gpointer user_data)
{
  Side *side = user_data;

  g_ptr_array_add (side->frames, dirty_frame_ref (frame));
}

static void
on_closed (DirtyConnection *conn, const GError *error, gpointer user_data)
{
  Side *side = user_data;

  side->closed = TRUE;
  side->close_error = error != NULL ? g_error_copy (error) : NULL;
}

static void
side_init (Side *side, GMainContext *context, int fd)
{
  g_autoptr(GSocket) socket = g_socket_new_from_fd (fd, NULL);

  g_assert_nonnull (socket);
  side->context = context;
  side->frames = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_frame_unref);
  side->conn = dirty_connection_new (socket, NULL);
}

static void
side_clear (Side *side)
{
  g_clear_object (&side->conn);
  g_ptr_array_unref (side->frames);
  g_clear_error (&side->close_error);
}

static void
iterate_until_frames (Side *side, guint n)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (side->frames->len < n && !side->closed)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (side->context, TRUE);
    }
  g_assert_no_error (side->close_error);
  g_assert_false (side->closed);
}

/* A RESPONSE whose one bytes value (@fill, 64 KiB) is a sealed memfd */
static DirtyFrame *
frame_with_memfd (guint64 id, guint8 fill)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GPtrArray) attach = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  guint8 *data = g_malloc (ATTACHMENT_SIZE);
  DirtyFrame *frame;

  memset (data, fill, ATTACHMENT_SIZE);
  g_ptr_array_add (attach, g_bytes_new_take (data, ATTACHMENT_SIZE));
  g_assert_true (json_parser_load_from_data (parser, "{\"result\":{\"$bytes\":0}}", -1, NULL));
  frame = dirty_frame_encode_with_fds (DIRTY_FRAME_RESPONSE, 0, id, 0,
                                       json_parser_get_root (parser), attach,
                                       dirty_memfd_pool_get_default ());
  g_assert_cmpuint (frame->header.n_fds, ==, 1);
  return frame;
}

/* @frame's bytes from @offset to @end (G_MAXSIZE: its end), with its fds
 * when @offset is 0 (they come with a frame's first byte) */
static void
send_part (int fd, DirtyFrame *frame, gsize offset, gsize end)
{
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  union {
    struct cmsghdr align;
    char           buf[CMSG_SPACE (sizeof (int) * 4)];
  } control = { 0 };
  struct iovec iov;
  struct msghdr msg = { 0 };
  guint n_fds = offset == 0 && frame->fds != NULL ? dirty_fd_set_get_length (frame->fds) : 0;

  dirty_frame_header_write (&frame->header, header);
  g_byte_array_append (wire, header, sizeof header);
  g_byte_array_append (wire, g_bytes_get_data (frame->body, NULL), g_bytes_get_size (frame->body));
  end = MIN (end, wire->len);
  iov.iov_base = wire->data + offset;
  iov.iov_len = end - offset;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (n_fds > 0)
    {
      struct cmsghdr *c;

      g_assert_cmpuint (n_fds, <=, 4);
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      for (guint i = 0; i < n_fds; i++)
        ((int *) CMSG_DATA (c))[i] = dirty_fd_set_get (frame->fds, i);
    }
  /* small enough for the socket buffer in one go */
  g_assert_cmpint (sendmsg (fd, &msg, MSG_NOSIGNAL), ==, (gssize) (end - offset));
}

/* The frame's memfd holds 64 KiB of @fill */
static void
assert_memfd (DirtyFrame *frame, guint64 id, guint8 fill)
{
  g_autofree guint8 *data = g_malloc (ATTACHMENT_SIZE);
  g_autofree guint8 *expected = g_malloc (ATTACHMENT_SIZE);

  g_assert_cmpuint (frame->header.id, ==, id);
  g_assert_cmpuint (frame->header.n_fds, ==, 1);
  g_assert_nonnull (frame->fds);
  memset (expected, fill, ATTACHMENT_SIZE);
  g_assert_cmpint (pread (dirty_fd_set_get (frame->fds, 0), data, ATTACHMENT_SIZE, 0), ==,
                   ATTACHMENT_SIZE);
  g_assert_cmpmem (data, ATTACHMENT_SIZE, expected, ATTACHMENT_SIZE);
}

static void
test_detach_with_fds (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(DirtyFrame) a = frame_with_memfd (1, 'a');
  g_autoptr(DirtyFrame) b = frame_with_memfd (2, 'b');
  g_autoptr(DirtyFrame) c = frame_with_memfd (3, 'c');
  g_autoptr(GByteArray) scratch = g_byte_array_new ();
  g_autoptr(GByteArray) unread = g_byte_array_new ();
  g_autoptr(GBytes) unread_bytes = NULL;
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  gsize cut = DIRTY_FRAME_HEADER_SIZE + g_bytes_get_size (b->body) / 2;
  Side old = { 0 }, next = { 0 };
  int pair[2], fd;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
  side_init (&old, context, pair[0]);
  dirty_connection_start (old.conn, context, on_frame, on_closed, &old);

  /* a whole, then b's header and half its body (with b's memfd) */
  send_part (pair[1], a, 0, G_MAXSIZE);
  send_part (pair[1], b, 0, cut);
  iterate_until_frames (&old, 1);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (context, FALSE);
  assert_memfd (old.frames->pdata[0], 1, 'a');
  dirty_connection_pause_reading (old.conn);
  /* the rest of b, and c with its own memfd, wait in the kernel */
  send_part (pair[1], b, cut, G_MAXSIZE);
  send_part (pair[1], c, 0, G_MAXSIZE);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (context, FALSE);
  g_assert_cmpuint (old.frames->len, ==, 1);

  /* b's memfd is held: the plain detach still refuses, touching nothing */
  g_assert_cmpint (dirty_connection_detach (old.conn, scratch), ==, -1);
  g_assert_cmpint (errno, ==, EBUSY);
  g_assert_cmpuint (scratch->len, ==, 0);
  g_assert_false (dirty_connection_is_closed (old.conn));

  fd = dirty_connection_detach_with_fds (old.conn, unread, fds);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpuint (unread->len, ==, cut);
  g_assert_cmpuint (fds->len, ==, 1);
  g_assert_true (dirty_connection_is_closed (old.conn));
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (context, FALSE);
  g_assert_false (old.closed);   /* given up, no callback */

  /* the next owner: b from the given-back bytes and fd, c off the socket */
  side_init (&next, context, fd);
  unread_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&unread));
  dirty_connection_set_unread_with_fds (next.conn, unread_bytes, fds);
  g_assert_cmpuint (fds->len, ==, 0);   /* taken */
  dirty_connection_start (next.conn, context, on_frame, on_closed, &next);
  iterate_until_frames (&next, 2);
  assert_memfd (next.frames->pdata[0], 2, 'b');
  assert_memfd (next.frames->pdata[1], 3, 'c');
  g_assert_true (g_bytes_equal (((DirtyFrame *) next.frames->pdata[0])->body, b->body));

  side_clear (&old);
  side_clear (&next);
  close (pair[1]);
}

/* Given-back fds no frame claims are an error, as fds off the socket
 * are: the connection fails once the next read leaves them unclaimed,
 * and never hands a later frame someone else's memfd. */
static void
test_set_unread_with_extra_fds (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(DirtyFrame) a = frame_with_memfd (1, 'a');
  g_autoptr(DirtyFrame) plain = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 2, 0);
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  g_autoptr(GBytes) unread = NULL;
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  Side side = { 0 };
  int pair[2], extra;
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
  side_init (&side, context, pair[0]);
  dirty_frame_header_write (&plain->header, header);
  g_byte_array_append (wire, header, sizeof header);
  unread = g_byte_array_free_to_bytes (g_steal_pointer (&wire));
  extra = dup (dirty_fd_set_get (a->fds, 0));
  g_array_append_val (fds, extra);
  dirty_connection_set_unread_with_fds (side.conn, unread, fds);
  dirty_connection_start (side.conn, context, on_frame, on_closed, &side);
  /* a frame off the socket, without fds of its own */
  g_assert_cmpint (write (pair[1], header, sizeof header), ==, sizeof header);
  while (!side.closed)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (context, TRUE);
    }
  g_assert_error (side.close_error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  side_clear (&side);
  close (pair[1]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/connection-handoff/detach-with-fds", test_detach_with_fds);
  g_test_add_func ("/connection-handoff/extra-fds-fail", test_set_unread_with_extra_fds);
  return g_test_run ();
}
