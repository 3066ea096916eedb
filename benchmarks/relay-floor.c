/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay-floor.h"

#define N_ECHO 2
/* same header size as a real frame, so the floor moves the same bytes */
#define HEADER 32

/* An echo's end of its socket, and the CPU it spends on each frame */
typedef struct {
  int   fd;
  guint work_us;
} EchoEnd;

struct _RelayFloor {
  guint    n_callers;
  int     *caller_fds;   /* caller's end */
  int     *relay_fds;    /* relay's end of each caller */
  int      echo_relay[N_ECHO];
  EchoEnd  echo_ends[N_ECHO];
  int      stop_pipe[2];
  GThread *relay;
  GThread *echo[N_ECHO];
  GPid     pids[N_ECHO + 1];   /* relay_floor_new_processes (): relay, echoes */
  RelayWork work;        /* CPU spent on each call (relay_floor_new_working ()) */
  guint8 **buffers;      /* per caller */
};

static void
write_all (int fd, const guint8 *p, gsize len)
{
  while (len > 0)
    {
      gssize n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      p += n;
      len -= n;
    }
}

static gboolean
read_all (int fd, guint8 *p, gsize len)
{
  while (len > 0)
    {
      gssize n = read (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= n;
    }
  return TRUE;
}

/* header: u32 caller, u32 payload length, rest unused */
static gsize
frame_payload (const guint8 *header, guint32 *caller)
{
  guint32 len;

  memcpy (caller, header, 4);
  memcpy (&len, header + 4, 4);
  return len;
}

static gboolean
read_frame (int fd, guint8 **buf, gsize *cap, guint32 *caller, gsize *total)
{
  gsize len;

  if (*cap < HEADER)
    *buf = g_realloc (*buf, *cap = HEADER);
  if (!read_all (fd, *buf, HEADER))
    return FALSE;
  len = frame_payload (*buf, caller);
  if (*cap < HEADER + len)
    *buf = g_realloc (*buf, *cap = HEADER + len);
  *total = HEADER + len;
  return read_all (fd, *buf + HEADER, len);
}

/* A stream request (header bytes 8-15: u32 chunks, u32 chunk size) is
 * answered with that many frames, then an empty one flagged as the end
 * (byte 16), as a worker streams CHUNKs then END. */
static void
echo_stream (int fd, const guint8 *request)
{
  guint32 n, size, zero = 0;
  g_autofree guint8 *frame = NULL;

  memcpy (&n, request + 8, 4);
  memcpy (&size, request + 12, 4);
  frame = g_malloc0 (HEADER + size);
  memcpy (frame, request, 4);
  memcpy (frame + 4, &size, 4);
  for (guint32 i = 0; i < n; i++)
    write_all (fd, frame, HEADER + size);
  memcpy (frame + 4, &zero, 4);
  frame[16] = 1;
  write_all (fd, frame, HEADER);
}

/* An echo's answer to @frame: the frame back, or the stream it asks for */
static void
answer_frame (int fd, const guint8 *frame, gsize total)
{
  guint32 n_chunks;

  memcpy (&n_chunks, frame + 8, 4);
  if (n_chunks > 0)
    echo_stream (fd, frame);
  else
    write_all (fd, frame, total);
}

/* Busy for @usec of CPU: a call's own work, which keeps the vCPU it
 * runs on from idling as a plain echo lets it */
static void
spend_cpu (guint usec)
{
  gint64 end = g_get_monotonic_time () + usec;

  while (g_get_monotonic_time () < end)
    ;
}

static gpointer
echo_thread (gpointer data)
{
  const EchoEnd *end = data;
  guint8 *buf = NULL;
  gsize cap = 0, total;
  guint32 caller;

  while (read_frame (end->fd, &buf, &cap, &caller, &total))
    {
      spend_cpu (end->work_us);
      answer_frame (end->fd, buf, total);
    }
  g_free (buf);
  return NULL;
}

/* The handoff floor's echo: its reading thread hands each frame to a
 * second thread, which answers it, as a worker's main loop (kept free
 * for cancels, deadlines and heartbeats) hands a blocking call to a
 * thread of its pool. A frame is a GBytes; the empty one ends. */
typedef struct {
  int          fd;
  GAsyncQueue *frames;
} Handoff;

static gpointer
answer_thread (gpointer data)
{
  Handoff *handoff = data;

  for (;;)
    {
      g_autoptr(GBytes) frame = g_async_queue_pop (handoff->frames);
      gsize size;
      const guint8 *p = g_bytes_get_data (frame, &size);

      if (size == 0)
        return NULL;
      answer_frame (handoff->fd, p, size);
    }
}

static gpointer
echo_handoff_thread (gpointer data)
{
  Handoff handoff = { ((EchoEnd *) data)->fd, g_async_queue_new () };
  GThread *answer = g_thread_new ("answer", answer_thread, &handoff);
  guint8 *buf = NULL;
  gsize cap = 0, total;
  guint32 caller;

  while (read_frame (handoff.fd, &buf, &cap, &caller, &total))
    g_async_queue_push (handoff.frames, g_bytes_new (buf, total));
  g_async_queue_push (handoff.frames, g_bytes_new (NULL, 0));
  g_thread_join (answer);
  g_async_queue_unref (handoff.frames);
  g_free (buf);
  return NULL;
}

/* The leaders floor's echo: its two threads take turns as the reader.
 * The one that reads a frame hands the reading to the other (a wake-up
 * the answer does not wait for) and answers the frame itself: a worker
 * that keeps a reader free for cancels, deadlines and heartbeats without
 * a hop between reading a call and running it. */
typedef struct {
  int      fd;
  GMutex   lock;
  GCond    turn;
  gboolean reading;     /* a thread is the reader */
  gboolean done;
  GMutex   write_lock;  /* answers of both threads, whole frames */
} Leaders;

static gpointer
leader_thread (gpointer data)
{
  Leaders *leaders = data;
  guint8 *buf = NULL;
  gsize cap = 0, total;
  guint32 caller;

  for (;;)
    {
      gboolean got;

      g_mutex_lock (&leaders->lock);
      while (leaders->reading && !leaders->done)
        g_cond_wait (&leaders->turn, &leaders->lock);
      if (leaders->done)
        {
          g_mutex_unlock (&leaders->lock);
          break;
        }
      leaders->reading = TRUE;
      g_mutex_unlock (&leaders->lock);

      got = read_frame (leaders->fd, &buf, &cap, &caller, &total);

      g_mutex_lock (&leaders->lock);
      leaders->reading = FALSE;
      leaders->done = leaders->done || !got;
      g_cond_broadcast (&leaders->turn);
      g_mutex_unlock (&leaders->lock);
      if (!got)
        break;
      g_mutex_lock (&leaders->write_lock);
      answer_frame (leaders->fd, buf, total);
      g_mutex_unlock (&leaders->write_lock);
    }
  g_free (buf);
  return NULL;
}

static gpointer
echo_leaders_thread (gpointer data)
{
  Leaders leaders = { .fd = ((EchoEnd *) data)->fd };
  GThread *other;

  g_mutex_init (&leaders.lock);
  g_cond_init (&leaders.turn);
  g_mutex_init (&leaders.write_lock);
  other = g_thread_new ("leader", leader_thread, &leaders);
  leader_thread (&leaders);
  g_thread_join (other);
  g_mutex_clear (&leaders.lock);
  g_cond_clear (&leaders.turn);
  g_mutex_clear (&leaders.write_lock);
  return NULL;
}

static gpointer
relay_thread (gpointer data)
{
  RelayFloor *floor = data;
  guint n = floor->n_callers + N_ECHO + 1;
  g_autofree struct pollfd *fds = g_new0 (struct pollfd, n);
  guint8 *buf = NULL;
  gsize cap = 0, total;
  guint next = 0;

  for (guint i = 0; i < floor->n_callers; i++)
    fds[i] = (struct pollfd) { .fd = floor->relay_fds[i], .events = POLLIN };
  for (guint i = 0; i < N_ECHO; i++)
    fds[floor->n_callers + i] = (struct pollfd) { .fd = floor->echo_relay[i], .events = POLLIN };
  fds[n - 1] = (struct pollfd) { .fd = floor->stop_pipe[0], .events = POLLIN };

  for (;;)
    {
      if (poll (fds, n, -1) < 0)
        continue;
      if (fds[n - 1].revents)
        break;
      for (guint i = 0; i < n - 1; i++)
        {
          guint32 caller;

          if (!(fds[i].revents & POLLIN))
            continue;
          if (!read_frame (fds[i].fd, &buf, &cap, &caller, &total))
            goto out;
          if (i < floor->n_callers)
            {
              spend_cpu (floor->work.relay_us);
              write_all (floor->echo_relay[next++ % N_ECHO], buf, total);
            }
          else
            write_all (floor->relay_fds[caller], buf, total);
        }
    }
out:
  g_free (buf);
  return NULL;
}

static void
pair (int *a, int *b)
{
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  *a = fds[0];
  *b = fds[1];
}

static RelayFloor *
floor_new (guint n_callers)
{
  RelayFloor *floor = g_new0 (RelayFloor, 1);

  floor->n_callers = n_callers;
  floor->caller_fds = g_new (int, n_callers);
  floor->relay_fds = g_new (int, n_callers);
  floor->buffers = g_new0 (guint8 *, n_callers);
  for (guint i = 0; i < n_callers; i++)
    pair (&floor->caller_fds[i], &floor->relay_fds[i]);
  for (guint i = 0; i < N_ECHO; i++)
    pair (&floor->echo_relay[i], &floor->echo_ends[i].fd);
  g_assert_cmpint (pipe (floor->stop_pipe), ==, 0);
  return floor;
}

static RelayFloor *
floor_new_threads (guint n_callers, GThreadFunc echo, const RelayWork *work)
{
  RelayFloor *floor = floor_new (n_callers);

  if (work != NULL)
    floor->work = *work;
  for (guint i = 0; i < N_ECHO; i++)
    {
      floor->echo_ends[i].work_us = floor->work.echo_us;
      floor->echo[i] = g_thread_new ("echo", echo, &floor->echo_ends[i]);
    }
  floor->relay = g_thread_new ("relay", relay_thread, floor);
  return floor;
}

RelayFloor *
relay_floor_new (guint n_callers)
{
  return floor_new_threads (n_callers, echo_thread, NULL);
}

RelayFloor *
relay_floor_new_working (guint            n_callers,
                         const RelayWork *work)
{
  return floor_new_threads (n_callers, echo_thread, work);
}

RelayFloor *
relay_floor_new_handoff (guint n_callers)
{
  return floor_new_threads (n_callers, echo_handoff_thread, NULL);
}

RelayFloor *
relay_floor_new_leaders (guint n_callers)
{
  return floor_new_threads (n_callers, echo_leaders_thread, NULL);
}

/* A child that runs @func (@data) and exits; it only reads and writes
 * the sockets it inherited. */
static GPid
fork_running (GThreadFunc func, gpointer data)
{
  pid_t pid = fork ();

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      func (data);
      _exit (0);
    }
  return pid;
}

RelayFloor *
relay_floor_new_processes (guint n_callers)
{
  RelayFloor *floor = floor_new (n_callers);

  for (guint i = 0; i < N_ECHO; i++)
    floor->pids[1 + i] = fork_running (echo_thread, &floor->echo_ends[i]);
  floor->pids[0] = fork_running (relay_thread, floor);
  return floor;
}

gboolean
relay_floor_pin_task (pid_t tid,
                      int   cpu)
{
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  return sched_setaffinity (tid, sizeof set, &set) == 0;
}

gboolean
relay_floor_pin_echoes (RelayFloor *floor,
                        int         cpu)
{
  for (guint i = 0; i < N_ECHO; i++)
    if (floor->pids[1 + i] <= 0 || !relay_floor_pin_task (floor->pids[1 + i], cpu))
      return FALSE;
  return TRUE;
}

void
relay_floor_call (RelayFloor *floor,
                  guint       caller,
                  gsize       size)
{
  guint32 id = caller, len = size, got;
  gsize cap = HEADER + size, total;
  guint8 *buf = floor->buffers[caller] = g_realloc (floor->buffers[caller], cap);

  spend_cpu (floor->work.caller_us);
  memset (buf, 0, HEADER);
  memcpy (buf, &id, 4);
  memcpy (buf + 4, &len, 4);
  write_all (floor->caller_fds[caller], buf, HEADER + size);
  g_assert_true (read_frame (floor->caller_fds[caller], &floor->buffers[caller], &cap, &got, &total));
  g_assert_cmpuint (got, ==, caller);
}

void
relay_floor_echo (RelayFloor   *floor,
                  guint         caller,
                  const guint8 *payload,
                  gsize         size)
{
  guint32 id = caller, len = size, got;
  gsize cap = HEADER + size, total;
  guint8 *buf = floor->buffers[caller] = g_realloc (floor->buffers[caller], cap);

  memset (buf, 0, HEADER);
  memcpy (buf, &id, 4);
  memcpy (buf + 4, &len, 4);
  memcpy (buf + HEADER, payload, size);   /* the sender builds its frame */
  write_all (floor->caller_fds[caller], buf, HEADER + size);
  g_assert_true (read_frame (floor->caller_fds[caller], &floor->buffers[caller], &cap, &got, &total));
  g_assert_cmpuint (got, ==, caller);
  g_assert_cmpuint (total, ==, HEADER + size);
}

void
relay_floor_free (RelayFloor *floor)
{
  if (floor->pids[0] != 0)
    {
      /* each child holds every socket: EOF would never come */
      for (guint i = 0; i <= N_ECHO; i++)
        {
          kill (floor->pids[i], SIGKILL);
          waitpid (floor->pids[i], NULL, 0);
        }
      for (guint i = 0; i < N_ECHO; i++)
        {
          close (floor->echo_relay[i]);
          close (floor->echo_ends[i].fd);
        }
    }
  else
    {
      g_assert_cmpint (write (floor->stop_pipe[1], "x", 1), ==, 1);
      g_thread_join (floor->relay);
      for (guint i = 0; i < N_ECHO; i++)
        {
          close (floor->echo_relay[i]);
          g_thread_join (floor->echo[i]);
          close (floor->echo_ends[i].fd);
        }
    }
  for (guint i = 0; i < floor->n_callers; i++)
    {
      close (floor->caller_fds[i]);
      close (floor->relay_fds[i]);
      g_free (floor->buffers[i]);
    }
  close (floor->stop_pipe[0]);
  close (floor->stop_pipe[1]);
  g_free (floor->caller_fds);
  g_free (floor->relay_fds);
  g_free (floor->buffers);
  g_free (floor);
}

gint64
relay_floor_stream (RelayFloor *floor,
                    guint       caller,
                    guint32     n_chunks,
                    guint32     chunk_size)
{
  guint32 id = caller, got;
  gsize cap = HEADER, total;
  guint8 request[HEADER] = { 0 };
  gint64 start = g_get_monotonic_time ();
  gint64 first = 0;
  guint32 n = 0;

  floor->buffers[caller] = g_realloc (floor->buffers[caller], cap);
  memcpy (request, &id, 4);
  memcpy (request + 8, &n_chunks, 4);
  memcpy (request + 12, &chunk_size, 4);
  write_all (floor->caller_fds[caller], request, HEADER);
  for (;;)
    {
      g_assert_true (read_frame (floor->caller_fds[caller], &floor->buffers[caller], &cap,
                                 &got, &total));
      if (first == 0)
        first = g_get_monotonic_time () - start;
      if (floor->buffers[caller][16] == 1)
        break;
      n++;
    }
  g_assert_cmpuint (n, ==, n_chunks);
  return first;
}
