/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DirtyWorker's insides, shared by the files that implement it. Not
 * installed.
 *
 *   dirty-worker.c        the object, run() and stop(), HELLO, STATUS,
 *                         heartbeat, frame routing, shutdown
 *   dirty-worker-apps.c   the app table: loading, init() on a helper
 *                         thread, retry with backoff, app states
 *   dirty-worker-serve.c  REQUEST, CANCEL, CREDIT: from a frame to a call
 *                         running on the thread pool or the main loop
 *   dirty-worker-reply.c  from a completed call, or a stream's chunks, to
 *                         the frames that go back to the arbiter
 *   dirty-worker-backtrace.c  BACKTRACE: what the thread running a call
 *                         is doing (a signal to that thread)
 *   dirty-worker-pool.c   the threads that run sync calls, and their
 *                         turns at running the main context
 *
 * Everything here runs on the worker's main context unless it says
 * otherwise: only that context touches the connection, the in-flight
 * table and the app table. */

#include "dirty-call-private.h"
#include "dirty-connection.h"
#include "dirty-message.h"
#include "dirty-worker.h"
#include "dirty-worker-pool.h"

G_BEGIN_DECLS

typedef enum {
  APP_STARTING,
  APP_READY,
  APP_FAILED,
  APP_UNAVAILABLE,
} AppState;

typedef struct {
  DirtyWorker *worker;    /* unowned: the worker owns its apps */
  char *name;
  DirtyApp *app;          /* NULL when unavailable */
  AppState state;
  char *error;            /* why it is failed or unavailable */
  guint retry_ms;         /* delay before the next init attempt */
  guint next_retry_ms;
  GSource *retry_source;
  gboolean init_running;
  guint n_active;         /* calls handed to the app, not yet replied */
} WorkerApp;

/* Why a call's cancellable fired, for the error code of its reply */
typedef enum {
  CANCEL_NONE,
  CANCEL_BY_PEER,
  CANCEL_BY_DEADLINE,
  CANCEL_BY_SHUTDOWN,
} CancelReason;

/* A REQUEST that has not had its last reply frame yet */
typedef struct {
  guint64 id;
  WorkerApp *wapp;
  DirtyCall *call;
  gint64 deadline;        /* monotonic µs; 0: none, or it has passed */
  CancelReason reason;
  gboolean completed;     /* a stream's outcome is in; it ends once drained */
} InFlight;

typedef struct _DirtyWorkerBacktrace DirtyWorkerBacktrace;

struct _DirtyWorker
{
  GObject parent_instance;

  guint n_threads;
  GPtrArray *apps;                 /* WorkerApp*, in load order */
  GHashTable *apps_by_name;        /* name -> WorkerApp* */

  /* Only while run() runs, and only touched from its main context */
  GMainContext *context;
  GMainLoop *loop;
  DirtyConnection *connection;
  DirtyWorkerPool *pool;
  GHashTable *in_flight;           /* guint64* id -> InFlight* */
  guint worker_id;
  char *worker_id_str;
  gint64 pid;
  GSource *heartbeat_source;
  GSource *sigterm_source;
  GSource *sigint_source;
  GSource *grace_source;
  DirtyWorkerBacktrace *backtrace;
  GCancellable *init_cancellable;
  GQueue init_queue;               /* WorkerApp* waiting for init() */
  gboolean init_running;
  gboolean init_announced;          /* "worker-init" was emitted */
  gboolean shutting_down;
  gboolean forced;
  gboolean has_run;                /* run() is once per worker */

  /* dirty_worker_stop() may come from any thread */
  GMutex stop_lock;
  gboolean stop_requested;

  /* a call's thread writes its own successful reply (one wake-up of the
   * main loop less per call); this guards `connection` for it */
  GMutex send_lock;

  /* Replies a call's thread sent: the main context forgets their calls
   * when it next wakes anyway, rather than being woken for each. */
  GMutex sent_lock;
  GPtrArray *sent;                 /* ReplyTarget*, under sent_lock */
  GPtrArray *sent_spare;           /* empty; the main context's alone */
  gint n_sent;                     /* sent->len, read without the lock */
  gboolean sent_wakes;             /* shutting down: each one wakes it */
  GSource *sent_source;

  /* One source for every call's deadline (dirty-worker-serve.c) */
  GSource *deadline_source;
  gint64 next_deadline;            /* the earliest in flight, or 0 */
};

/* Detaches a source the worker holds a reference to, and drops it. */
static inline void
dirty_worker_clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* dirty-worker.c */

/* Sends HELLO or STATUS: the worker and the state of every app. */
void       dirty_worker_send_status       (DirtyWorker    *self,
                                           DirtyFrameType  type);
/* Quits the main loop once shutdown has nothing left to wait for. */
void       dirty_worker_check_drained     (DirtyWorker    *self);

/* dirty-worker-apps.c */

void       dirty_worker_app_free          (WorkerApp      *wapp);
/* Adds each app's {"state", "error"?, "retry_ms"?} member to the object
 * @builder is in. */
void       dirty_worker_add_app_states    (DirtyWorker    *self,
                                           JsonBuilder    *builder);
/* Queues every loaded app's init(), to run one at a time. */
void       dirty_worker_start_app_init    (DirtyWorker    *self);
/* Shutdown: cancels the running init(), forgets the queued ones and the
 * pending retries. */
void       dirty_worker_stop_app_init     (DirtyWorker    *self);
void       dirty_worker_close_apps        (DirtyWorker    *self);

/* dirty-worker-serve.c */

void       dirty_worker_handle_request    (DirtyWorker    *self,
                                           DirtyFrame     *frame);
void       dirty_worker_handle_cancel     (DirtyWorker    *self,
                                           DirtyFrame     *frame);
void       dirty_worker_handle_credit     (DirtyWorker    *self,
                                           DirtyFrame     *frame);
/* The source that fires every call's deadline, attached to the worker's
 * context; the worker destroys it (dirty_worker_clear_source ()). */
GSource   *dirty_worker_deadline_source_new (DirtyWorker   *self);
/* Cancels call @id (if still in flight) for its deadline. */
void       dirty_worker_cancel_at_deadline (DirtyWorker   *self,
                                            guint64        id);
/* Shutdown: cancels every call in flight, with CANCEL_BY_SHUTDOWN unless
 * it already had a reason. */
void       dirty_worker_cancel_all_calls  (DirtyWorker    *self);
/* The thread pool's function: runs a %DIRTY_ACTION_SYNC call (taken). */
void       dirty_worker_sync_call_thread  (gpointer        data,
                                           gpointer        user_data);
void       dirty_worker_in_flight_free    (InFlight       *entry);

/* dirty-worker-backtrace.c */

DirtyWorkerBacktrace *dirty_worker_backtrace_new (DirtyWorker *self);
void       dirty_worker_backtrace_free    (DirtyWorkerBacktrace *bt);
/* BACKTRACE id N from the arbiter: answered with BACKTRACE id N. */
void       dirty_worker_handle_backtrace  (DirtyWorker    *self,
                                           DirtyFrame     *frame);
/* The deadline of call @id passed: sends its BACKTRACE unasked, then
 * cancels it (dirty_worker_cancel_at_deadline()). */
void       dirty_worker_backtrace_then_cancel (DirtyWorker *self,
                                               guint64      id);
/* A sync call records which thread runs it: track before it is queued
 * (main context), set around running it (its thread). */
void       dirty_worker_track_call_thread (DirtyCall      *call);
void       dirty_worker_set_call_thread   (DirtyCall      *call,
                                           gboolean        running);

/* dirty-worker-reply.c */

/* Watches for replies sent from calls' threads (main context only). */
void       dirty_worker_start_forgetting  (DirtyWorker    *self);
/* Forgets the calls whose replies their threads sent; with @from_now_on,
 * each reply sent later wakes the main context (shutdown waits for it). */
void       dirty_worker_forget_sent       (DirtyWorker    *self,
                                           gboolean        from_now_on);
void       dirty_worker_stop_forgetting   (DirtyWorker    *self);

/* Both do nothing once the connection is closed. */
void       dirty_worker_send_frame        (DirtyWorker    *self,
                                           DirtyFrame     *frame);
void       dirty_worker_send_error        (DirtyWorker    *self,
                                           guint64         id,
                                           DirtyError      code,
                                           const char     *app,
                                           const char     *action,
                                           const char     *message);
/* A call whose completion, in whichever thread, becomes the reply to
 * REQUEST @id. See dirty_call_new() for the arguments. */
DirtyCall *dirty_worker_new_call          (DirtyWorker    *self,
                                           guint64         id,
                                           WorkerApp      *wapp,
                                           const char     *action,
                                           JsonArray      *args,
                                           JsonObject     *kwargs,
                                           GPtrArray      *attachments,
                                           gint64          deadline);
/* The stream of @entry's call, whose chunks go out as CHUNK frames. */
DirtyCallStream *dirty_worker_new_call_stream (DirtyWorker *self,
                                               InFlight    *entry,
                                               guint        window);
/* Sends the chunks of @entry's stream that have credit; ends the stream
 * when it can. */
void       dirty_worker_stream_pump       (DirtyWorker    *self,
                                           InFlight       *entry);

G_END_DECLS
