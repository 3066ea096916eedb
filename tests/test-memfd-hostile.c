/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real daemon against raw clients that lie with fd attachments: a fd
 * that is no memfd, an unsealed memfd, a memfd shorter than its frame
 * says, too many fds, fds the header does not declare or declared fds
 * that never come. Each gets ERROR `protocol` and a close. A request
 * with more fd payload than max_fd_payload fails alone, its connection
 * serving on. The arbiter keeps serving, and once the connections are
 * gone its fd count is back where it started. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-test-daemon.h"
#include "dirty-test-raw.h"

#define ECHO "echo:DirtyEchoApp"
#define ECHO_BYTES_JSON "{\"app\":\"" ECHO "\",\"action\":\"echo_bytes\",\"args\":[{\"$bytes\":0}]}"

static DirtyTestDaemon *daemon_;

/* A memfd of @size bytes (byte i = i & 0xff) with @seals added */
static int
make_memfd (gsize size,
            int   seals)
{
  int fd = memfd_create ("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  g_autofree guint8 *data = g_malloc (size + 1);

  g_assert_cmpint (fd, >=, 0);
  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) i;
  g_assert_cmpint (write (fd, data, size), ==, (gssize) size);
  if (seals != 0)
    g_assert_cmpint (fcntl (fd, F_ADD_SEALS, seals), ==, 0);
  return fd;
}

static void
put_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

/* An echo_bytes REQUEST whose one attachment is an fd attachment of
 * @declared bytes: header (with @header_fds in n_fds), JSON, table */
static GBytes *
fd_request (guint16 header_fds,
            guint64 declared)
{
  gsize json_length = strlen (ECHO_BYTES_JSON);
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = 1, .json_length = json_length,
                         .attachments_length = 12, .n_attachments = 1, .n_fds = header_fds };
  guint8 *frame = g_malloc0 (DIRTY_FRAME_HEADER_SIZE + json_length + 12);
  guint8 *table = frame + DIRTY_FRAME_HEADER_SIZE + json_length;

  dirty_frame_header_write (&h, frame);
  memcpy (frame + DIRTY_FRAME_HEADER_SIZE, ECHO_BYTES_JSON, json_length);
  put_be32 (table, DIRTY_ATTACHMENT_FD_MARK);
  put_be32 (table + 4, declared >> 32);
  put_be32 (table + 8, declared & 0xffffffffu);
  return g_bytes_new_take (frame, DIRTY_FRAME_HEADER_SIZE + json_length + 12);
}

/* Sends @frame in one sendmsg with @fds (n of them) on its first byte */
static void
send_with_fds (GSocket    *socket,
               GBytes     *frame,
               const int  *fds,
               guint       n)
{
  gsize size;
  struct iovec iov = { .iov_base = (void *) g_bytes_get_data (frame, &size) };
  g_autofree void *control = g_malloc0 (CMSG_SPACE (sizeof (int) * MAX (n, 1)));
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

  iov.iov_len = size;
  if (n > 0)
    {
      struct cmsghdr *c;

      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n);
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int) * n);
      memcpy (CMSG_DATA (c), fds, sizeof (int) * n);
    }
  g_assert_cmpint (sendmsg (g_socket_get_fd (socket), &msg, MSG_NOSIGNAL), ==, (gssize) size);
}

/* The next frame is an ERROR for @id with @code, its message naming
 * @expected */
static void
expect_error (GSocket    *socket,
              guint64     id,
              const char *code,
              const char *expected)
{
  g_autoptr(DirtyFrame) frame = dirty_test_raw_read_frame (socket);
  g_autoptr(JsonNode) root = NULL;

  g_assert_nonnull (frame);
  g_assert_cmpint (frame->header.type, ==, DIRTY_FRAME_ERROR);
  g_assert_cmpuint (frame->header.id, ==, id);
  root = dirty_test_raw_frame_json (frame);
  g_test_message ("%s", dirty_json_get_string (root, "message"));
  g_assert_cmpstr (dirty_json_get_string (root, "code"), ==, code);
  g_assert_nonnull (strstr (dirty_json_get_string (root, "message"), expected));
}

/* The arbiter's answer to a hostile frame: ERROR protocol (id 0) naming
 * @expected, then the close */
static void
expect_protocol_close (GSocket    *socket,
                       const char *expected)
{
  g_autoptr(DirtyFrame) after = NULL;

  expect_error (socket, 0, "protocol", expected);
  after = dirty_test_raw_read_frame (socket);
  g_assert_null (after);
}

/* One hostile frame on a fresh connection; @fds are closed here */
static void
attack_frame (GBytes     *frame,
              int        *fds,
              guint       n,
              const char *expected)
{
  g_autoptr(GSocket) socket = dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon_));

  send_with_fds (socket, frame, fds, n);
  for (guint i = 0; i < n; i++)
    close (fds[i]);
  expect_protocol_close (socket, expected);
}

static void
attack (guint16     header_fds,
        guint64     declared,
        int        *fds,
        guint       n,
        const char *expected)
{
  g_autoptr(GBytes) frame = fd_request (header_fds, declared);

  attack_frame (frame, fds, n, expected);
}

/* A well-behaved raw client with a (small) sealed memfd, on @socket: the
 * echo comes back inline, byte for byte */
static void
check_serving_on (GSocket *socket)
{
  g_autoptr(GBytes) frame = fd_request (1, 1000);
  int fd = make_memfd (1000, F_SEAL_SHRINK | F_SEAL_GROW);
  g_autoptr(DirtyFrame) reply = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) attachments = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits limits;
  GBytes *bytes;

  send_with_fds (socket, frame, &fd, 1);
  close (fd);
  reply = dirty_test_raw_read_frame (socket);
  g_assert_nonnull (reply);
  g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_RESPONSE);
  dirty_limits_init (&limits);
  g_assert_true (dirty_frame_decode (reply, &limits, &root, &attachments, &error));
  g_assert_no_error (error);
  bytes = dirty_json_lookup_bytes (json_object_get_member (json_node_get_object (root), "result"),
                                   attachments);
  g_assert_nonnull (bytes);
  g_assert_cmpuint (g_bytes_get_size (bytes), ==, 1000);
  for (gsize i = 0; i < 1000; i++)
    g_assert_cmpuint (((const guint8 *) g_bytes_get_data (bytes, NULL))[i], ==, (guint8) i);
}

static void
check_serving (void)
{
  g_autoptr(GSocket) socket = dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon_));

  check_serving_on (socket);
}

/* More than max_fd_payload (1 MiB in this daemon's config), well formed
 * otherwise: that request alone fails, with invalid-argument naming the
 * limit; its memfd is closed unmapped, and the connection serves on. */
static void
check_over_fd_payload (void)
{
  g_autoptr(GSocket) socket = dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon_));
  g_autoptr(GBytes) frame = fd_request (1, 2 * 1024 * 1024);
  int fd = make_memfd (2 * 1024 * 1024, F_SEAL_SHRINK | F_SEAL_GROW);

  send_with_fds (socket, frame, &fd, 1);
  close (fd);
  expect_error (socket, 1, "invalid-argument", "exceed the limit");
  check_serving_on (socket);
}

/* @pid's fd count once it stops changing (the arbiter closes a few
 * startup fds, and a connection's socket a little after its peer hangs
 * up) */
static guint
settled_fds (GPid pid)
{
  guint last = dirty_test_count_fds (pid), now;

  for (guint i = 0; i < 50; i++)
    {
      g_usleep (100000);
      if ((now = dirty_test_count_fds (pid)) == last)
        break;
      last = now;
    }
  return last;
}

static void
wait_for_fds (GPid  pid,
              guint expected)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (dirty_test_count_fds (pid) != expected && g_get_monotonic_time () < end)
    g_usleep (10000);
  g_assert_cmpuint (dirty_test_count_fds (pid), ==, expected);
}

static void
test_hostile_fds (void)
{
  GPid arbiter = dirty_test_daemon_get_pid (daemon_);
  guint baseline;
  int fds[DIRTY_DEFAULT_MAX_FDS + 1];

  /* before any connection: each connection's socket closes a little
   * after its peer hangs up */
  baseline = settled_fds (arbiter);
  check_serving ();

  /* a pipe is not a memfd */
  g_assert_cmpint (pipe (fds), ==, 0);
  close (fds[1]);
  attack (1, 10, fds, 1, "not a memfd");
  /* a memfd without the seals: its sender could shrink it under a mapping */
  fds[0] = make_memfd (100, 0);
  attack (1, 100, fds, 1, "not sealed");
  /* a sealed memfd shorter than the frame says */
  fds[0] = make_memfd (100, F_SEAL_SHRINK | F_SEAL_GROW);
  attack (1, 4096, fds, 1, "has 100 bytes");
  /* the header declares one fd that never comes */
  attack (1, 100, fds, 0, "arrived");
  /* an fd that no header declares, with a CANCEL (which has no answer) */
  {
    DirtyFrameHeader h = { .type = DIRTY_FRAME_CANCEL, .id = 5 };
    guint8 cancel[DIRTY_FRAME_HEADER_SIZE];
    g_autoptr(GBytes) frame = NULL;

    dirty_frame_header_write (&h, cancel);
    frame = g_bytes_new (cancel, sizeof cancel);
    fds[0] = make_memfd (100, F_SEAL_SHRINK | F_SEAL_GROW);
    attack_frame (frame, fds, 1, "no frame declares");
  }
  /* more fds than max_fds (the header says so, and they all come) */
  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    fds[i] = make_memfd (10, F_SEAL_SHRINK | F_SEAL_GROW);
  attack (G_N_ELEMENTS (fds), 10, fds, G_N_ELEMENTS (fds), "more than the limit");
  check_over_fd_payload ();

  check_serving ();
  wait_for_fds (arbiter, baseline);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/memfd-hostile/bad-fds", test_hostile_fds);

  daemon_ = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n"
                                     "max_fd_payload=1\n", NULL);
  status = g_test_run ();
  dirty_test_daemon_stop (daemon_);
  return status;
}
