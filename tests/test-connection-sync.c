/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of threads waiting for a reply on a DirtyConnection and
 * reading it themselves (protocol/dirty-connection-sync.c), over a real
 * socketpair: this thread runs the owner's context, other threads wait.
 * The hand-overs of the read side are what these test: inside a frame
 * callback with frames left past the budget, back to the owner while a
 * leader polls, to the next waiter when the leader gives up, and the
 * errors a leader meets. */
#include "config.h"

#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-connection-sync.h"
#include "dirty-error.h"

typedef struct {
  GMainContext    *context;
  DirtyConnection *conn;
  int              peer_fd;
  GPtrArray       *frames;        /* what reached the frame callback */
  guint            switch_after;  /* frames; then the owner stops reading */
  guint            n_closed;
  GError          *close_error;
} Fixture;

typedef struct {
  DirtyConnection        *conn;
  DirtyConnectionWaiter  *waiter;
  gint64                  deadline;
  GThread                *thread;
  gint                    done;   /* atomic */
  DirtyConnectionWaitEnd  end;
  DirtyFrame             *frame;
} Waiter;

static void
on_frame (DirtyConnection *conn, DirtyFrame *frame, gpointer user_data)
{
  Fixture *fx = user_data;

  g_ptr_array_add (fx->frames, dirty_frame_ref (frame));
  if (fx->frames->len == fx->switch_after)
    dirty_connection_set_owner_reads (conn, FALSE);
}

static void
on_frame_ignored (DirtyConnection *conn, DirtyFrame *frame, gpointer user_data)
{
}

static void
on_closed (DirtyConnection *conn, const GError *error, gpointer user_data)
{
  Fixture *fx = user_data;

  fx->n_closed++;
  fx->close_error = error ? g_error_copy (error) : NULL;
}

static void
setup (Fixture *fx, gconstpointer data)
{
  int fds[2];
  g_autoptr(GSocket) socket = NULL;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  socket = g_socket_new_from_fd (fds[0], NULL);
  fx->peer_fd = fds[1];
  fx->context = g_main_context_new ();
  fx->frames = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_frame_unref);
  fx->conn = dirty_connection_new (socket, NULL);
  dirty_connection_start (fx->conn, fx->context, on_frame, on_closed, fx);
}

static void
teardown (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->conn);
  if (fx->peer_fd >= 0)
    close (fx->peer_fd);
  g_ptr_array_unref (fx->frames);
  g_clear_error (&fx->close_error);
  /* sources that hold the connection go with the context */
  g_main_context_unref (fx->context);
}

static gpointer
wait_thread (gpointer data)
{
  Waiter *w = data;
  g_autoptr(GError) error = NULL;

  w->frame = dirty_connection_wait (w->conn, w->waiter, w->deadline, NULL, &w->end, NULL,
                                    &error);
  g_atomic_int_set (&w->done, 1);
  return NULL;
}

/* Registers @id now (before anything is written), waits on a thread. */
static void
waiter_start (Waiter *w, Fixture *fx, guint64 id, guint timeout_ms)
{
  *w = (Waiter) { .conn = fx->conn };
  w->waiter = dirty_connection_expect (fx->conn, id);
  g_assert_nonnull (w->waiter);
  if (timeout_ms > 0)
    w->deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  w->thread = g_thread_new ("waiter", wait_thread, w);
}

static void
waiter_join (Waiter *w)
{
  g_thread_join (w->thread);
  g_clear_pointer (&w->frame, dirty_frame_unref);
}

/* Runs the owner's context until @w is done and @n_frames reached the
 * frame callback. */
static void
iterate_until (Fixture *fx, Waiter *w, guint n_frames)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (!g_atomic_int_get (&w->done) || fx->frames->len < n_frames)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (fx->context, FALSE);
      g_usleep (1000);
    }
}

static void
append_frame (GByteArray *out, guint64 id)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_RESPONSE, id, 0);
  guint8 header[DIRTY_FRAME_HEADER_SIZE];

  dirty_frame_header_write (&frame->header, header);
  g_byte_array_append (out, header, sizeof header);
}

static void
write_frames (Fixture *fx, const guint64 *ids, guint n)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();

  for (guint i = 0; i < n; i++)
    append_frame (out, ids[i]);
  g_assert_cmpint (write (fx->peer_fd, out->data, out->len), ==, out->len);
}

static void
assert_got (Waiter *w, guint64 id)
{
  g_assert_cmpint (w->end, ==, DIRTY_CONNECTION_WAIT_FRAME);
  g_assert_nonnull (w->frame);
  g_assert_cmpuint (w->frame->header.id, ==, id);
}

/* Async waiters (dirty_connection_wait_async ()) */

typedef struct {
  gboolean               done;
  DirtyConnectionWaitEnd end;
  guint64                id;      /* of the frame it got, or 0 */
  guint                  n_more;  /* frames of that id it got along */
} AsyncWait;

static void
async_wait_cb (DirtyConnection        *conn,
               DirtyFrame             *frame,
               DirtyConnectionWaitEnd  end,
               const GError           *error,
               GQueue                 *more,
               gpointer                user_data)
{
  AsyncWait *a = user_data;

  g_assert_false (a->done);
  a->end = end;
  a->id = frame != NULL ? frame->header.id : 0;
  a->n_more = g_queue_get_length (more);
  for (GList *l = more->head; l != NULL; l = l->next)
    g_assert_cmpuint (((DirtyFrame *) l->data)->header.id, ==, a->id);
  g_atomic_int_set (&a->done, TRUE);
}

/* Registers @id now and waits for it in @context */
static void
async_start (AsyncWait    *a,
             Fixture      *fx,
             GMainContext *context,
             guint64       id,
             guint         timeout_ms,
             GCancellable *cancellable)
{
  DirtyConnectionWaiter *waiter = dirty_connection_expect (fx->conn, id);
  gint64 deadline = 0;

  g_assert_nonnull (waiter);
  *a = (AsyncWait) { .done = FALSE };
  if (timeout_ms > 0)
    deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  dirty_connection_wait_async (fx->conn, waiter, deadline, cancellable, context, async_wait_cb,
                               a, NULL);
}

/* Runs @context (only) until @a ended */
static void
async_run_until (GMainContext *context,
                 AsyncWait    *a)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (!a->done)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (context, FALSE);
      g_usleep (1000);
    }
}

/* Cancels @asyncs, waiting in @context, and runs it until they ended */
static void
async_cancel_all (GMainContext *context,
                  GCancellable *cancellable,
                  AsyncWait    *asyncs,
                  guint         n)
{
  g_cancellable_cancel (cancellable);
  for (guint i = 0; i < n; i++)
    {
      async_run_until (context, &asyncs[i]);
      g_assert_cmpint (asyncs[i].end, ==, DIRTY_CONNECTION_WAIT_CANCELLED);
    }
}

/* The owner gives the read side away inside a frame callback, in a turn
 * that read more frames than its budget: the waiter, as leader, reads
 * the frames left over (without waiting for the socket, which has no
 * more), finds its own among them, and forwards the others to the owner
 * in order. */
static void
test_handover_with_leftover (Fixture *fx, gconstpointer data)
{
  guint64 ids[101];
  Waiter w;

  for (guint i = 0; i < 100; i++)
    ids[i] = 1000 + i;
  ids[100] = 5;
  fx->switch_after = 10;
  waiter_start (&w, fx, 5, 0);
  write_frames (fx, ids, G_N_ELEMENTS (ids));
  iterate_until (fx, &w, 100);
  assert_got (&w, 5);
  for (guint i = 0; i < 100; i++)
    g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[i])->header.id, ==, 1000 + i);
  waiter_join (&w);
}

/* The owner takes the read side back while a leader polls: the leader is
 * woken and lets go; the owner then reads and hands the waiter its frame. */
static void
test_owner_takes_back (Fixture *fx, gconstpointer data)
{
  const guint64 ids[] = { 9, 7 };
  Waiter w;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter_start (&w, fx, 7, 0);
  g_usleep (100 * 1000);
  dirty_connection_set_owner_reads (fx->conn, TRUE);
  write_frames (fx, ids, G_N_ELEMENTS (ids));
  iterate_until (fx, &w, 1);
  assert_got (&w, 7);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, 9);
  waiter_join (&w);
}

/* The leader's deadline passes: the other blocked waiter leads and gets
 * its own frame; not one of the async waiters whose context nobody runs
 * (dirty_connection_wait_async ()), which it would wait for. Then those
 * are cancelled. */
#define N_IDLE_ASYNC 8
static void
test_next_waiter_leads (Fixture *fx, gconstpointer data)
{
  g_autoptr(GMainContext) idle = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  const guint64 id = 2;
  AsyncWait asyncs[N_IDLE_ASYNC];
  Waiter first, second;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter_start (&first, fx, 1, 200);
  g_usleep (50 * 1000);
  for (guint i = 0; i < N_IDLE_ASYNC; i++)
    async_start (&asyncs[i], fx, idle, 100 + i, 0, cancellable);
  waiter_start (&second, fx, 2, 0);
  iterate_until (fx, &first, 0);
  g_assert_cmpint (first.end, ==, DIRTY_CONNECTION_WAIT_TIMEOUT);
  g_usleep (100 * 1000);
  write_frames (fx, &id, 1);
  iterate_until (fx, &second, 0);
  assert_got (&second, 2);
  g_assert_cmpuint (fx->frames->len, ==, 0);
  waiter_join (&first);
  waiter_join (&second);
  async_cancel_all (idle, cancellable, asyncs, N_IDLE_ASYNC);
}

/* The peer hangs up under a leader: the owner closes the connection, the
 * waiter gets WAIT_CLOSED, the closed callback runs once. */
static void
test_leader_meets_eof (Fixture *fx, gconstpointer data)
{
  Waiter w;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter_start (&w, fx, 3, 0);
  g_usleep (100 * 1000);
  close (fx->peer_fd);
  fx->peer_fd = -1;
  iterate_until (fx, &w, 0);
  while (fx->n_closed == 0)
    g_main_context_iteration (fx->context, TRUE);
  g_assert_cmpint (w.end, ==, DIRTY_CONNECTION_WAIT_CLOSED);
  g_assert_cmpuint (fx->n_closed, ==, 1);
  g_assert_no_error (fx->close_error);
  g_assert_null (dirty_connection_expect (fx->conn, 4));
  waiter_join (&w);
}

/* A bad header read by a leader: the owner fails the connection with a
 * protocol error, and the waiter is answered. */
static void
test_leader_meets_garbage (Fixture *fx, gconstpointer data)
{
  guint8 garbage[DIRTY_FRAME_HEADER_SIZE];
  Waiter w;

  memset (garbage, 0x5a, sizeof garbage);
  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter_start (&w, fx, 3, 0);
  g_usleep (100 * 1000);
  g_assert_cmpint (write (fx->peer_fd, garbage, sizeof garbage), ==, sizeof garbage);
  iterate_until (fx, &w, 0);
  while (fx->n_closed == 0)
    g_main_context_iteration (fx->context, TRUE);
  g_assert_cmpint (w.end, ==, DIRTY_CONNECTION_WAIT_CLOSED);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  waiter_join (&w);
}

/* Runs the owner's context until the closed callback ran. */
static void
iterate_until_closed (Fixture *fx)
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (fx->n_closed == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (fx->context, FALSE);
      g_usleep (1000);
    }
}

/* A graceful stop: the peer writes a waiter's reply and a frame for the
 * owner, then hangs up, before anyone read. The owner notices the
 * hang-up (as the client's I/O thread does before sending): the
 * connection is not to be used any more, but what was sent is still
 * delivered, the waiter's frame to it and the other to the frame
 * callback, and only then does it close. */
static void
test_hang_up_delivers_unread (Fixture *fx, gconstpointer data)
{
  const guint64 ids[] = { 6, 8 };
  DirtyConnectionWaiter *waiter;
  DirtyConnectionWaitEnd end;
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(GError) error = NULL;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter = dirty_connection_expect (fx->conn, 6);
  g_assert_nonnull (waiter);
  write_frames (fx, ids, G_N_ELEMENTS (ids));
  close (fx->peer_fd);
  fx->peer_fd = -1;
  g_assert_true (dirty_connection_peer_gone (fx->conn));
  /* it stays gone: nothing new goes out on it, nor waits on it */
  g_assert_true (dirty_connection_peer_gone (fx->conn));
  g_assert_null (dirty_connection_expect (fx->conn, 10));
  iterate_until_closed (fx);
  g_assert_no_error (fx->close_error);
  g_assert_cmpuint (fx->frames->len, ==, 1);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, 8);
  frame = dirty_connection_wait (fx->conn, waiter, 0, NULL, &end, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (end, ==, DIRTY_CONNECTION_WAIT_FRAME);
  g_assert_cmpuint (frame->header.id, ==, 6);
}

/* A leader that read its own frame takes the frames of the same id that
 * came in that read along (a stream's next chunks, its END) when it asked
 * for them; the other frames of that read, and all of them for a waiter
 * that did not ask, go to the owner, in order. */
static void
test_leader_takes_its_stream (Fixture *fx, gconstpointer data)
{
  const guint64 ids[] = { 5, 7, 5, 9, 5 };
  /* in the order read: with @more, without the 5s */
  const guint64 owner_gets[2][4] = { { 7, 9 }, { 7, 5, 9, 5 } };

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  for (guint round = 0; round < 2; round++)
    {
      gboolean ask = round == 0;
      DirtyConnectionWaiter *waiter = dirty_connection_expect (fx->conn, 5 + 10 * round);
      g_autoptr(DirtyFrame) frame = NULL;
      g_autoptr(GError) error = NULL;
      GQueue more = G_QUEUE_INIT;
      DirtyConnectionWaitEnd end;
      guint64 sent[G_N_ELEMENTS (ids)];

      for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
        sent[i] = ids[i] + 10 * round;
      /* all in the socket before the wait: one read */
      write_frames (fx, sent, G_N_ELEMENTS (sent));
      frame = dirty_connection_wait (fx->conn, waiter, 0, NULL, &end, ask ? &more : NULL,
                                     &error);
      g_assert_no_error (error);
      g_assert_cmpint (end, ==, DIRTY_CONNECTION_WAIT_FRAME);
      g_assert_cmpuint (frame->header.id, ==, 5 + 10 * round);
      g_assert_cmpuint (g_queue_get_length (&more), ==, ask ? 2 : 0);
      for (GList *l = more.head; l != NULL; l = l->next)
        g_assert_cmpuint (((DirtyFrame *) l->data)->header.id, ==, 5 + 10 * round);
      g_queue_clear_full (&more, (GDestroyNotify) dirty_frame_unref);

      while (g_main_context_iteration (fx->context, FALSE))
        ;
      g_assert_cmpuint (fx->frames->len, ==, ask ? 2 : 4);
      for (guint i = 0; i < fx->frames->len; i++)
        g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[i])->header.id, ==,
                          owner_gets[round][i] + 10 * round);
      g_ptr_array_set_size (fx->frames, 0);
    }
}

/* An async waiter that reads its frame takes the frames of the same id
 * that came in that read along too (a stream's first chunk waited for in
 * its caller's context); the owner gets the others, in order. */
static void
test_async_takes_its_stream (Fixture *fx, gconstpointer data)
{
  const guint64 ids[] = { 5, 7, 5, 9, 5 };
  AsyncWait a;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  async_start (&a, fx, fx->context, 5, 0, NULL);
  /* all in the socket before the wait's first dispatch: one read */
  write_frames (fx, ids, G_N_ELEMENTS (ids));
  async_run_until (fx->context, &a);
  g_assert_cmpint (a.end, ==, DIRTY_CONNECTION_WAIT_FRAME);
  g_assert_cmpuint (a.id, ==, 5);
  g_assert_cmpuint (a.n_more, ==, 2);
  while (g_main_context_iteration (fx->context, FALSE))
    ;
  g_assert_cmpuint (fx->frames->len, ==, 2);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, 7);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[1])->header.id, ==, 9);
}

/* The same while a leader polls: it is not cut off from its reply. */
static void
test_hang_up_under_leader (Fixture *fx, gconstpointer data)
{
  const guint64 id = 3;
  Waiter w;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter_start (&w, fx, 3, 0);
  g_usleep (50 * 1000);
  /* both in the socket before the owner looks */
  write_frames (fx, &id, 1);
  close (fx->peer_fd);
  fx->peer_fd = -1;
  g_assert_true (dirty_connection_peer_gone (fx->conn));
  iterate_until (fx, &w, 0);
  iterate_until_closed (fx);
  assert_got (&w, 3);
  waiter_join (&w);
}

/* A peer that has not hung up is not gone, unread frames or not, and
 * the waiters keep the read side. */
static void
test_peer_not_gone (Fixture *fx, gconstpointer data)
{
  const guint64 id = 2;
  Waiter w;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  g_assert_false (dirty_connection_peer_gone (fx->conn));
  write_frames (fx, &id, 1);
  g_assert_false (dirty_connection_peer_gone (fx->conn));
  waiter_start (&w, fx, 2, 0);
  iterate_until (fx, &w, 0);
  assert_got (&w, 2);
  g_assert_cmpuint (fx->n_closed, ==, 0);
  waiter_join (&w);
}

typedef struct {
  DirtyConnection *conn;
  DirtyFrame      *frame;
  gboolean         sent;
} SendData;

static gpointer
send_thread (gpointer data)
{
  SendData *send = data;

  send->sent = dirty_connection_send_from_thread (send->conn, send->frame);
  return NULL;
}

static gboolean
send_on_thread (Fixture *fx, guint64 id)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_REQUEST, id, 0);
  SendData send = { fx->conn, frame, FALSE };

  g_thread_join (g_thread_new ("sender", send_thread, &send));
  return send.sent;
}

/* Another thread learns whether its frame was queued: not once the
 * connection closes (or fails), so a caller that registered a waiter
 * can give it up (dirty_connection_unexpect ()) and send elsewhere. */
static void
test_send_from_thread_closed (Fixture *fx, gconstpointer data)
{
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  DirtyFrameHeader parsed;
  g_autoptr(GError) error = NULL;

  g_assert_true (send_on_thread (fx, 11));
  g_assert_cmpint (read (fx->peer_fd, header, sizeof header), ==, sizeof header);
  g_assert_true (dirty_frame_header_parse (header, dirty_connection_get_limits (fx->conn), &parsed, &error));
  g_assert_cmpuint (parsed.id, ==, 11);
  dirty_connection_close (fx->conn);
  g_assert_false (send_on_thread (fx, 12));
}

/* A waiter given up before it waited: its id goes to the frame callback
 * again, and another waiter still leads. */
static void
test_unexpect (Fixture *fx, gconstpointer data)
{
  const guint64 ids[] = { 4, 5 };
  DirtyConnectionWaiter *waiter;
  Waiter w;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter = dirty_connection_expect (fx->conn, 4);
  g_assert_nonnull (waiter);
  waiter_start (&w, fx, 5, 0);
  dirty_connection_unexpect (fx->conn, waiter);
  write_frames (fx, ids, G_N_ELEMENTS (ids));
  iterate_until (fx, &w, 1);
  assert_got (&w, 5);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, 4);
  waiter_join (&w);
}

/* poll () itself fails on the leader's thread (here: more fds than the
 * process may have): the leader stops and the connection closes with
 * that error, instead of the leader polling again and again until its
 * deadline. */
static void
test_leader_poll_fails (Fixture *fx, gconstpointer data)
{
  struct rlimit saved, one;
  DirtyConnectionWaiter *waiter;
  Waiter w;

  /* valgrind keeps the program's fd limit to itself: poll () never fails */
  if (g_getenv ("DIRTY_TEST_VALGRIND") != NULL)
    {
      g_test_skip ("under valgrind, RLIMIT_NOFILE does not make poll () fail");
      return;
    }
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  one = saved;
  one.rlim_cur = 1;
  dirty_connection_set_owner_reads (fx->conn, FALSE);
  /* the first waiter makes the wake-up eventfd: before the limit */
  dirty_connection_unexpect (fx->conn, dirty_connection_expect (fx->conn, 1));
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &one), ==, 0);
  waiter_start (&w, fx, 3, 4000);
  /* the owner's context would fail to poll too: not run till the leader
   * gave up reading, which new waiters see at once */
  while ((waiter = dirty_connection_expect (fx->conn, 99)) != NULL)
    {
      dirty_connection_unexpect (fx->conn, waiter);
      g_assert_cmpint (g_atomic_int_get (&w.done), ==, 0);
      g_usleep (1000);
    }
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  iterate_until (fx, &w, 0);
  g_assert_cmpint (w.end, ==, DIRTY_CONNECTION_WAIT_CLOSED);
  iterate_until_closed (fx);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_nonnull (strstr (fx->close_error->message, "Waiting for the connection failed"));
  waiter_join (&w);
}

/* ---- the last reference on another thread ---- */

/* without the fix every run failed within them (10 of 10); valgrind
 * runs one thread at a time, and checks each round for what ASan
 * catches at once: a few suffice there */
#define LAST_UNREF_ROUNDS          3000
#define LAST_UNREF_ROUNDS_VALGRIND 100

typedef struct {
  GMainContext    *context;
  gpointer         closed;     /* atomic: a connection the owner closed */
  gint             n_reports;  /* atomic */
  gint             stop;       /* atomic */
} LastUnref;

static void
count_report (DirtyConnection *conn, const GError *error, gpointer user_data)
{
  LastUnref *lu = user_data;

  g_atomic_int_inc (&lu->n_reports);
}

/* On the owner's thread: a connection, started and closed, handed to
 * the main thread with the only reference */
static gboolean
open_and_close_cb (gpointer user_data)
{
  LastUnref *lu = user_data;
  int fds[2];
  g_autoptr(GSocket) socket = NULL;
  DirtyConnection *conn;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  close (fds[1]);
  socket = g_socket_new_from_fd (fds[0], NULL);
  conn = dirty_connection_new (socket, NULL);
  dirty_connection_start (conn, lu->context, on_frame_ignored, count_report, lu);
  dirty_connection_close (conn);
  g_atomic_pointer_set (&lu->closed, conn);
  return G_SOURCE_REMOVE;
}

static gpointer
owner_thread (gpointer data)
{
  LastUnref *lu = data;

  g_main_context_push_thread_default (lu->context);
  while (!g_atomic_int_get (&lu->stop))
    g_main_context_iteration (lu->context, TRUE);
  g_main_context_pop_thread_default (lu->context);
  return NULL;
}

static gboolean
stop_cb (gpointer user_data)
{
  LastUnref *lu = user_data;

  g_atomic_int_set (&lu->stop, 1);
  return G_SOURCE_REMOVE;
}

/* The owner closes a connection whose last reference another thread
 * holds (a caller that sent from its own thread), and that thread lets
 * it go while the owner's context may be about to report the close:
 * the report comes while the connection lives, or not at all, never
 * after its finalize. Without the closed source's weak reference, one
 * of these rounds in a few thousand reported to a finalized connection
 * (GLib's critical "g_object_ref: assertion '!object_already_finalized'",
 * fatal in the tests; a use after free under ASan). */
static void
test_last_unref_elsewhere (void)
{
  LastUnref lu = { g_main_context_new (), NULL, 0, 0 };
  GThread *thread = g_thread_new ("owner", owner_thread, &lu);
  guint rounds = g_getenv ("DIRTY_TEST_VALGRIND") != NULL ? LAST_UNREF_ROUNDS_VALGRIND
                                                          : LAST_UNREF_ROUNDS;

  for (guint i = 0; i < rounds; i++)
    {
      DirtyConnection *conn;

      g_main_context_invoke (lu.context, open_and_close_cb, &lu);
      /* at once: the owner is about to report the close */
      while ((conn = g_atomic_pointer_exchange (&lu.closed, NULL)) == NULL)
        g_thread_yield ();
      g_object_unref (conn);
    }
  g_main_context_invoke (lu.context, stop_cb, &lu);
  g_thread_join (thread);
  g_test_message ("%d of %u closes reported", g_atomic_int_get (&lu.n_reports), rounds);
  g_main_context_unref (lu.context);
}

/* The owner does not read: an async waiter reads in its own context,
 * gets its frame, and forwards the one nobody waits for to the owner's
 * context. */
static void
test_async_reads (Fixture *fx, gconstpointer data)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  const guint64 ids[] = { 9, 7 };
  AsyncWait a;
  Waiter none = { .done = 1 };

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  async_start (&a, fx, context, 7, 0, NULL);
  write_frames (fx, ids, G_N_ELEMENTS (ids));
  async_run_until (context, &a);
  g_assert_cmpint (a.end, ==, DIRTY_CONNECTION_WAIT_FRAME);
  g_assert_cmpuint (a.id, ==, 7);
  iterate_until (fx, &none, 1);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, 9);
}

typedef struct {
  GMainContext *context;
  GMainLoop    *loop;
} LoopThread;

static gpointer
loop_thread (gpointer data)
{
  LoopThread *lt = data;

  g_main_context_push_thread_default (lt->context);
  g_main_loop_run (lt->loop);
  g_main_context_pop_thread_default (lt->context);
  return NULL;
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* A blocked leader gives up with only async waiters left: each of them
 * may read again, so the one whose context runs (blocked in its poll,
 * on another thread) reads its frame, though the others' context is
 * never run. */
static void
test_async_after_leader (Fixture *fx, gconstpointer data)
{
  g_autoptr(GMainContext) idle = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainContext) running = g_main_context_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (running, FALSE);
  LoopThread lt = { running, loop };
  const guint64 id = 2;
  AsyncWait asyncs[N_IDLE_ASYNC], own;
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  GThread *thread;
  Waiter first;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  waiter_start (&first, fx, 1, 200);
  g_usleep (50 * 1000);
  for (guint i = 0; i < N_IDLE_ASYNC; i++)
    async_start (&asyncs[i], fx, idle, 100 + i, 0, cancellable);
  async_start (&own, fx, running, id, 0, NULL);
  /* its context polls (without the socket: the leader reads) */
  thread = g_thread_new ("running", loop_thread, &lt);
  iterate_until (fx, &first, 0);
  g_assert_cmpint (first.end, ==, DIRTY_CONNECTION_WAIT_TIMEOUT);
  write_frames (fx, &id, 1);
  while (!g_atomic_int_get (&own.done) && g_get_monotonic_time () < end)
    g_usleep (1000);
  g_main_context_invoke (running, quit_cb, loop);
  g_thread_join (thread);
  g_assert_true (own.done);
  g_assert_cmpint (own.end, ==, DIRTY_CONNECTION_WAIT_FRAME);
  g_assert_cmpuint (own.id, ==, id);
  waiter_join (&first);
  async_cancel_all (idle, cancellable, asyncs, N_IDLE_ASYNC);
}

/* The context of an async waiter goes away before its end: the waiter
 * leaves with it, and its frame goes to the owner's frame callback. */
static void
test_async_context_gone (Fixture *fx, gconstpointer data)
{
  GMainContext *context = g_main_context_new ();
  const guint64 id = 6;
  AsyncWait a;
  Waiter none = { .done = 1 };

  async_start (&a, fx, context, id, 0, NULL);
  g_main_context_unref (context);
  write_frames (fx, &id, 1);
  iterate_until (fx, &none, 1);
  g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, id);
  g_assert_false (a.done);
}

/* An async waiter's deadline passes (WAIT_TIMEOUT); the connection
 * closes under another (WAIT_CLOSED). */
static void
test_async_timeout_and_close (Fixture *fx, gconstpointer data)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  AsyncWait late, closed;

  dirty_connection_set_owner_reads (fx->conn, FALSE);
  async_start (&late, fx, context, 3, 50, NULL);
  async_run_until (context, &late);
  g_assert_cmpint (late.end, ==, DIRTY_CONNECTION_WAIT_TIMEOUT);
  async_start (&closed, fx, context, 4, 0, NULL);
  dirty_connection_close (fx->conn);
  async_run_until (context, &closed);
  g_assert_cmpint (closed.end, ==, DIRTY_CONNECTION_WAIT_CLOSED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/connection-sync/" path, Fixture, NULL, setup, func, teardown)
  ADD ("handover-with-leftover", test_handover_with_leftover);
  ADD ("owner-takes-back", test_owner_takes_back);
  ADD ("next-waiter-leads", test_next_waiter_leads);
  ADD ("leader-meets-eof", test_leader_meets_eof);
  ADD ("leader-meets-garbage", test_leader_meets_garbage);
  ADD ("hang-up-delivers-unread", test_hang_up_delivers_unread);
  ADD ("hang-up-under-leader", test_hang_up_under_leader);
  ADD ("leader-takes-its-stream", test_leader_takes_its_stream);
  ADD ("async-takes-its-stream", test_async_takes_its_stream);
  ADD ("peer-not-gone", test_peer_not_gone);
  ADD ("send-from-thread-closed", test_send_from_thread_closed);
  ADD ("unexpect", test_unexpect);
  ADD ("leader-poll-fails", test_leader_poll_fails);
  ADD ("async-reads", test_async_reads);
  ADD ("async-after-leader", test_async_after_leader);
  ADD ("async-timeout-and-close", test_async_timeout_and_close);
  ADD ("async-context-gone", test_async_context_gone);
#undef ADD
  g_test_add_func ("/connection-sync/last-unref-elsewhere", test_last_unref_elsewhere);
  return g_test_run ();
}
