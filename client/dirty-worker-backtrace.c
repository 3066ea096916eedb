/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <glib-unix.h>

#include "dirty-poller.h"
#include "dirty-worker-private.h"

/* BACKTRACE (docs/protocol.md): what the thread running a call is doing,
 * for the arbiter to show before it kills a worker whose call overran
 * its deadline.
 *
 * The main context knows which thread runs each sync call (the thread
 * records its tid on the call). It sends that thread a realtime signal;
 * the handler, on the stuck thread, fills a static buffer with glibc's
 * backtrace() (primed at start, so it no longer allocates) and writes a
 * byte to a pipe: both async-signal-safe. The main context then
 * symbolises the addresses with dladdr() (exported symbols: static
 * functions show as their module and offset, for addr2line) and
 * replies. One capture at a time; requests queue. A thread that does not
 * take the signal in time (blocked in the kernel, or blocking the
 * signal) is reported as such. At a call's own deadline the worker sends
 * its BACKTRACE unasked before it cancels the call, so a call that ends
 * at once on cancellation still has it (the arbiter's request for it
 * would race that ending).
 *
 * An app may describe its call too (dirty_app_describe_call(): a Python
 * app gives the call's Python stack). That runs on a helper thread,
 * bounded by the same wait, as it may block: a Python app needs the GIL,
 * which a C extension can hold for as long as it likes. */

#define MAX_FRAMES      64
#define CAPTURE_WAIT_MS 250

/* capture.target: the tid asked, or one of these */
#define TARGET_NONE      0
#define TARGET_CAPTURING (-2)
#define TARGET_CAPTURED  (-3)

/* Process-wide: a signal handler cannot find a DirtyWorker. */
static struct {
  int   signum;        /* 0: backtraces unavailable */
  int   wake[2];       /* the handler writes, the main context reads */
  gint  target;
  int   n_frames;
  void *frames[MAX_FRAMES];
  void *pc;            /* where the thread was interrupted, if known */
} capture = { .wake = { -1, -1 } };

typedef struct {
  guint64  id;
  gboolean cancel_after;   /* its deadline passed: cancel it once answered */
} Pending;

struct _DirtyWorkerBacktrace
{
  DirtyWorker *worker;        /* unowned: it owns us */
  DirtyWatch  *wake_watch;   /* capture.wake[0], in the connection's epoll set */
  GSource     *timeout_source;
  GQueue       pending;       /* Pending*, waiting for their turn */
  guint64      current_id;    /* the capture in progress, 0 for none */
  gboolean     current_cancel;
  DirtyCall   *current_call;
  gint         current_tid;   /* the thread signalled, 0 for none */
  gboolean     c_pending;     /* its signal handler has not run yet */
  char        *c_text;        /* the C stack, or NULL and ... */
  char        *c_note;        /* ... why there is none */
  GCancellable *describe_cancellable; /* the app's describe_call() runs */
  char        *app_text;      /* what it returned, or NULL and ... */
  char        *app_note;      /* ... why there is none (NULL: it has none) */
};

/* The frames before the interrupted one are the handler's own, the
 * signal trampoline and, under sanitizers, their wrappers: the
 * interrupted program counter tells where the thread's stack starts. */
static void *
interrupted_pc (void *context)
{
  const ucontext_t *uc = context;

#if defined(__x86_64__)
  return (void *) uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
  return (void *) uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
  return (void *) uc->uc_mcontext.pc;
#else
  (void) uc;
  return NULL;
#endif
}

static void
capture_handler (int        signum,
                 siginfo_t *info,
                 void      *context)
{
  int saved_errno = errno;

  /* only the capture asked for, and only from this process */
  if (info->si_code == SI_TKILL && info->si_pid == getpid () &&
      g_atomic_int_compare_and_exchange (&capture.target, gettid (), TARGET_CAPTURING))
    {
      capture.pc = interrupted_pc (context);
      capture.n_frames = backtrace (capture.frames, MAX_FRAMES);
      g_atomic_int_set (&capture.target, TARGET_CAPTURED);
      if (write (capture.wake[1], "", 1) < 0)
        { /* the pipe is full: a wake-up is pending anyway */ }
    }
  errno = saved_errno;
}

/* Once per process. Leaves capture.signum 0 when it cannot work: the
 * app owns the signal, or no pipe. */
static gpointer
install_handler (gpointer data)
{
  int signum = SIGRTMIN + 4;
  struct sigaction action = { 0 }, old;
  void *prime[2];

  /* the first call loads the unwinder (malloc, dlopen): not in a handler */
  backtrace (prime, G_N_ELEMENTS (prime));
  if (sigaction (signum, NULL, &old) < 0 || old.sa_handler != SIG_DFL)
    {
      g_warning ("Signal %d is in use: no backtraces of stuck calls", signum);
      return NULL;
    }
  if (!g_unix_open_pipe (capture.wake, FD_CLOEXEC, NULL) ||
      !g_unix_set_fd_nonblocking (capture.wake[0], TRUE, NULL) ||
      !g_unix_set_fd_nonblocking (capture.wake[1], TRUE, NULL))
    return NULL;
  action.sa_sigaction = capture_handler;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset (&action.sa_mask);
  if (sigaction (signum, &action, NULL) == 0)
    capture.signum = signum;
  return NULL;
}

/* Which thread runs a sync call: 0 before it starts, -1 once it has
 * returned. Async calls have none. */

void
dirty_worker_track_call_thread (DirtyCall *call)
{
  dirty_call_set_thread (call, 0);
}

/* The calling thread's id, asked of the kernel once per thread (a
 * syscall per call otherwise) */
static gint
this_thread_id (void)
{
  static _Thread_local gint tid;

  if (tid == 0)
    tid = (gint) gettid ();
  return tid;
}

void
dirty_worker_set_call_thread (DirtyCall *call,
                              gboolean   running)
{
  dirty_call_set_thread (call, running ? this_thread_id () : -1);
}

static gint
get_call_thread (DirtyCall *call,
                 gboolean  *is_sync)
{
  gint tid;

  *is_sync = dirty_call_get_thread (call, &tid);
  return tid;
}

/* Replies */

static void
send_reply (DirtyWorker *self,
            guint64      id,
            gint         tid,
            const char  *member,
            const char  *text)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(DirtyFrame) frame = NULL;

  json_builder_begin_object (builder);
  if (tid > 0)
    {
      json_builder_set_member_name (builder, "thread");
      json_builder_add_int_value (builder, tid);
    }
  json_builder_set_member_name (builder, member);
  json_builder_add_string_value (builder, text);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  frame = dirty_frame_encode (DIRTY_FRAME_BACKTRACE, 0, id, 0, root, NULL);
  dirty_worker_send_frame (self, frame);
}

static char *
symbolize (void *const *frames,
           int          n_frames,
           void        *interrupted)
{
  GString *text = g_string_new (NULL);
  int first = 0;

  /* without the interrupted pc (another architecture) every frame shows,
   * the handler's included: more than needed, nothing hidden */
  for (int i = 0; i < n_frames && interrupted != NULL; i++)
    if (frames[i] == interrupted)
      {
        first = i;
        break;
      }
  for (int i = first; i < n_frames; i++)
    {
      guintptr pc = (guintptr) frames[i];
      Dl_info info;

      g_string_append_printf (text, "#%-2d 0x%" G_GINTPTR_MODIFIER "x", i - first, pc);
      if (dladdr (frames[i], &info) != 0)
        {
          if (info.dli_sname != NULL)
            g_string_append_printf (text, " in %s+0x%" G_GINTPTR_MODIFIER "x", info.dli_sname,
                                    pc - (guintptr) info.dli_saddr);
          if (info.dli_fname != NULL)
            g_string_append_printf (text, " (%s+0x%" G_GINTPTR_MODIFIER "x)", info.dli_fname,
                                    pc - (guintptr) info.dli_fbase);
        }
      g_string_append_c (text, '\n');
    }
  return g_string_free (text, FALSE);
}

/* Captures: the C stack (a signal to the thread) and the app's own
 * description (describe_call() on a helper thread) are taken side by
 * side; the reply goes once both are in or CAPTURE_WAIT_MS has passed. */

static void next_capture (DirtyWorkerBacktrace *bt);

typedef struct {
  DirtyApp  *app;
  DirtyCall *call;
} Describe;

static void
describe_free (gpointer data)
{
  Describe *describe = data;

  g_object_unref (describe->app);
  g_object_unref (describe->call);
  g_free (describe);
}

/* Drops the app's describe_call() in progress: its thread may still run
 * (a Python app waiting for a GIL held elsewhere), its result is lost. */
static void
stop_describe (DirtyWorkerBacktrace *bt)
{
  if (bt->describe_cancellable != NULL)
    {
      g_cancellable_cancel (bt->describe_cancellable);
      g_clear_object (&bt->describe_cancellable);
    }
}

static void
end_capture (DirtyWorkerBacktrace *bt)
{
  guint64 id = bt->current_id;

  dirty_worker_clear_source (&bt->timeout_source);
  stop_describe (bt);
  g_clear_object (&bt->current_call);
  g_clear_pointer (&bt->c_text, g_free);
  g_clear_pointer (&bt->c_note, g_free);
  g_clear_pointer (&bt->app_text, g_free);
  g_clear_pointer (&bt->app_note, g_free);
  bt->current_id = 0;
  bt->current_tid = 0;
  bt->c_pending = FALSE;
  g_atomic_int_set (&capture.target, TARGET_NONE);
  if (bt->current_cancel)
    dirty_worker_cancel_at_deadline (bt->worker, id);
  next_capture (bt);
}

/* The app's description first (what the call does in the app's terms,
 * such as its Python stack), then the C stack; without a description
 * the text is the C stack alone. NULL when there is neither. */
static char *
compose_text (DirtyWorkerBacktrace *bt)
{
  GString *text;

  if (bt->app_text == NULL && bt->c_text == NULL)
    return NULL;
  text = g_string_new (bt->app_text);
  if (bt->app_text != NULL && !g_str_has_suffix (bt->app_text, "\n"))
    g_string_append_c (text, '\n');
  if (bt->app_text == NULL && bt->app_note != NULL)
    g_string_append_printf (text, "(%s; the C stack follows)\n", bt->app_note);
  if (bt->c_text != NULL)
    {
      if (bt->app_text != NULL)
        g_string_append_printf (text, "C stack of thread %d:\n", bt->current_tid);
      g_string_append (text, bt->c_text);
    }
  else if (bt->c_note != NULL && bt->current_tid > 0)
    g_string_append_printf (text, "(no C stack: %s)\n", bt->c_note);
  return g_string_free (text, FALSE);
}

static void
finish_capture (DirtyWorkerBacktrace *bt)
{
  g_autofree char *text = compose_text (bt);
  g_autofree char *why = NULL;

  if (text != NULL)
    send_reply (bt->worker, bt->current_id, bt->c_text != NULL ? bt->current_tid : 0,
                "backtrace", text);
  else
    {
      why = bt->app_note != NULL && bt->c_note != NULL
              ? g_strdup_printf ("%s; %s", bt->app_note, bt->c_note)
              : g_strdup (bt->c_note != NULL ? bt->c_note : bt->app_note);
      send_reply (bt->worker, bt->current_id, 0, "error",
                  why != NULL ? why : "the app gave no description of the call");
    }
  end_capture (bt);
}

static void
maybe_finish_capture (DirtyWorkerBacktrace *bt)
{
  if (!bt->c_pending && bt->describe_cancellable == NULL)
    finish_capture (bt);
}

/* The signal handler has filled capture.frames. */
static void
collect_c_stack (DirtyWorkerBacktrace *bt)
{
  gboolean is_sync;

  bt->c_pending = FALSE;
  /* still the same call on that thread: the frames are the call's */
  if (get_call_thread (bt->current_call, &is_sync) != bt->current_tid)
    bt->c_note = g_strdup ("the call ended while its backtrace was taken");
  else
    bt->c_text = symbolize (capture.frames, capture.n_frames, capture.pc);
}

static void
wake_cb (GIOCondition condition,
         gpointer     user_data)
{
  DirtyWorkerBacktrace *bt = user_data;
  char buf[16];

  while (read (capture.wake[0], buf, sizeof buf) > 0)
    ;
  if (bt->current_id != 0 && bt->c_pending &&
      g_atomic_int_get (&capture.target) == TARGET_CAPTURED)
    {
      collect_c_stack (bt);
      maybe_finish_capture (bt);
    }
}

static gboolean
timeout_cb (gpointer user_data)
{
  DirtyWorkerBacktrace *bt = user_data;

  g_clear_pointer (&bt->timeout_source, g_source_unref);
  if (bt->describe_cancellable != NULL)
    {
      /* e.g. a Python app whose GIL a C extension holds */
      bt->app_note = g_strdup_printf ("the app did not describe the call within %d ms",
                                      CAPTURE_WAIT_MS);
      stop_describe (bt);
    }
  if (bt->c_pending)
    {
      /* the handler is running right now: its wake-up follows at once */
      if (!g_atomic_int_compare_and_exchange (&capture.target, bt->current_tid, TARGET_NONE))
        return G_SOURCE_REMOVE;
      bt->c_pending = FALSE;
      bt->c_note = g_strdup_printf ("thread %d did not take signal %d within %d ms (it is "
                                    "blocked in the kernel, or it blocks the signal)",
                                    bt->current_tid, capture.signum, CAPTURE_WAIT_MS);
    }
  finish_capture (bt);
  return G_SOURCE_REMOVE;
}

static void
describe_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  Describe *describe = task_data;

  g_task_return_pointer (task, dirty_app_describe_call (describe->app, describe->call), g_free);
}

static void
describe_done (GObject      *source_object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_task_propagate_pointer (G_TASK (result), &error);
  DirtyWorkerBacktrace *bt = user_data;

  /* cancelled: its capture has ended without it, and @bt may be freed */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object (&bt->describe_cancellable);
  bt->app_text = g_steal_pointer (&text);
  maybe_finish_capture (bt);
}

/* On a helper thread: describe_call() may block (a Python app takes the
 * GIL), and the main loop must not. The task returns at once when it is
 * cancelled, whatever its thread is doing. */
static void
start_describe (DirtyWorkerBacktrace *bt,
                DirtyApp             *app)
{
  g_autoptr(GTask) task = NULL;
  Describe *describe;

  if (app == NULL || DIRTY_APP_GET_CLASS (app)->describe_call == NULL)
    return;
  describe = g_new (Describe, 1);
  describe->app = g_object_ref (app);
  describe->call = g_object_ref (bt->current_call);
  bt->describe_cancellable = g_cancellable_new ();
  task = g_task_new (NULL, bt->describe_cancellable, describe_done, bt);
  g_task_set_source_tag (task, start_describe);
  g_task_set_task_data (task, describe, describe_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, describe_thread);
}

/* Signals the thread running the call, or says why not. */
static void
start_signal (DirtyWorkerBacktrace *bt,
              gint                  tid,
              gboolean              is_sync)
{
  if (!is_sync)
    bt->c_note = g_strdup ("an async action: no thread of the worker runs it; it waits "
                           "for its main loop");
  else if (capture.signum == 0)
    bt->c_note = g_strdup ("backtraces are not available in this worker");
  else
    {
      g_atomic_int_set (&capture.target, tid);
      if (tgkill (getpid (), tid, capture.signum) == 0)
        {
          bt->current_tid = tid;
          bt->c_pending = TRUE;
          return;
        }
      g_atomic_int_set (&capture.target, TARGET_NONE);
      bt->c_note = g_strdup_printf ("cannot signal thread %d: %s", tid, g_strerror (errno));
    }
}

/* Starts the capture for @id, or answers at once why there is none. */
static void
start_capture (DirtyWorkerBacktrace *bt,
               guint64               id,
               gboolean              cancel_after)
{
  DirtyWorker *self = bt->worker;
  InFlight *entry = g_hash_table_lookup (self->in_flight, &id);
  g_autofree char *message = NULL;
  gboolean is_sync = FALSE;
  gint tid = entry != NULL ? get_call_thread (entry->call, &is_sync) : -1;

  if (entry == NULL || tid < 0)
    message = g_strdup ("the call has ended");
  else if (is_sync && tid == 0)
    message = g_strdup_printf ("the call has not started: it waits for one of the worker's "
                               "%u threads", self->n_threads);
  if (message != NULL)
    {
      send_reply (self, id, 0, "error", message);
      if (cancel_after)
        dirty_worker_cancel_at_deadline (self, id);
      return;
    }

  bt->current_id = id;
  bt->current_cancel = cancel_after;
  bt->current_call = g_object_ref (entry->call);
  start_describe (bt, entry->wapp->app);
  start_signal (bt, tid, is_sync);
  if (!bt->c_pending && bt->describe_cancellable == NULL)
    {
      finish_capture (bt);
      return;
    }
  bt->timeout_source = g_timeout_source_new (CAPTURE_WAIT_MS);
  g_source_set_callback (bt->timeout_source, timeout_cb, bt, NULL);
  g_source_attach (bt->timeout_source, self->context);
}

static void
next_capture (DirtyWorkerBacktrace *bt)
{
  while (bt->current_id == 0 && !g_queue_is_empty (&bt->pending))
    {
      g_autofree Pending *pending = g_queue_pop_head (&bt->pending);

      start_capture (bt, pending->id, pending->cancel_after);
    }
}

static void
queue_capture (DirtyWorker *self,
               guint64      id,
               gboolean     cancel_after)
{
  Pending *pending;

  /* stopping: no more captures, but a deadline still cancels */
  if (self->backtrace == NULL)
    {
      if (cancel_after)
        dirty_worker_cancel_at_deadline (self, id);
      return;
    }
  pending = g_new (Pending, 1);
  pending->id = id;
  pending->cancel_after = cancel_after;
  g_queue_push_tail (&self->backtrace->pending, pending);
  next_capture (self->backtrace);
}

void
dirty_worker_handle_backtrace (DirtyWorker *self,
                               DirtyFrame  *frame)
{
  queue_capture (self, frame->header.id, FALSE);
}

void
dirty_worker_backtrace_then_cancel (DirtyWorker *self,
                                    guint64      id)
{
  queue_capture (self, id, TRUE);
}

DirtyWorkerBacktrace *
dirty_worker_backtrace_new (DirtyWorker *self)
{
  static GOnce once = G_ONCE_INIT;
  DirtyWorkerBacktrace *bt = g_new0 (DirtyWorkerBacktrace, 1);

  g_once (&once, install_handler, NULL);
  bt->worker = self;
  g_queue_init (&bt->pending);
  if (capture.wake[0] >= 0)
    {
      bt->wake_watch = dirty_watch_new (self->context, capture.wake[0], wake_cb, bt);
      dirty_watch_set_events (bt->wake_watch, G_IO_IN);
    }
  return bt;
}

void
dirty_worker_backtrace_free (DirtyWorkerBacktrace *bt)
{
  if (bt == NULL)
    return;
  g_clear_pointer (&bt->wake_watch, dirty_watch_destroy);
  dirty_worker_clear_source (&bt->timeout_source);
  stop_describe (bt);
  g_clear_object (&bt->current_call);
  g_free (bt->c_text);
  g_free (bt->c_note);
  g_free (bt->app_text);
  g_free (bt->app_note);
  g_atomic_int_set (&capture.target, TARGET_NONE);
  g_queue_clear_full (&bt->pending, g_free);
  g_free (bt);
}
