/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A fake arbiter for the client's unit tests (test-client-unit.c,
 * test-client-stream.c).
 *
 * Listens on a temporary unix socket and serves each connection with a
 * DirtyConnection on its own thread. Actions (any app):
 *   echo      RESPONSE {"result": args} with the request's attachments
 *   hang      no reply (until CANCEL)
 *   fail      ERROR app-error
 *   late      a RESPONSE for an unknown id, then the real one
 *   pair      held until a second "pair" arrives; both answered newest first
 *   drop      closes the connection
 *   fatal     ERROR id 0 (protocol), then closes
 *   short     a stream: CHUNK of args, then END, in one write
 *   empty     a stream: END only
 *   split     a stream: CHUNKs 1 and 2 in one write, the rest held back
 *   finish    the held rest of "split" (CHUNK 3, END), then its own
 *             RESPONSE, in one write
 * Every CANCEL id is pushed to `cancels`. With `n_refuse` set, the first
 * n_refuse connections get ERROR id 0 with `refuse_code` at once, and the
 * close, as the arbiter refuses a client (dirty_access_refuse ()). */

#include <gio/gio.h>

#include "dirty.h"

G_BEGIN_DECLS

typedef struct {
  GMainContext *context;
  GThread      *thread;
  GMainLoop    *loop;
  GSocket      *listener;
  GSource      *accept_source;
  char         *dir;
  char         *path;
  GPtrArray    *connections;
  GAsyncQueue  *cancels;      /* of GUINT_TO_POINTER (id) */
  guint64       held_id;
  guint64       split_id;
  guint         n_accepted;   /* atomic */
  guint         n_requests;   /* atomic */
  guint         hello_max_in_flight;  /* 0: send no HELLO */
  guint         n_refuse;
  DirtyError    refuse_code;
} FakeArbiter;

FakeArbiter *fake_arbiter_new  (void);
void         fake_arbiter_free (FakeArbiter *fake);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeArbiter, fake_arbiter_free)

/* A client of @fake, connected (transfer full) */
DirtyClient *fake_client       (FakeArbiter *fake);
/* One call, so that @client is connected and has read the HELLO: the
 * calls after it may go out from their callers' threads */
void         fake_warm_up      (DirtyClient  *client);
/* A blocking execute of @action, its one argument the action's name */
JsonNode    *call_sync         (DirtyClient   *client,
                                const char    *action,
                                GCancellable  *cancellable,
                                GError       **error);

/* g_thread_new () it: cancels @cancellable after @delay_ms */
typedef struct {
  GCancellable *cancellable;
  guint         delay_ms;
} CancelLater;
gpointer     cancel_later_thread (gpointer data);

/* Runs @context (NULL: the global default one) until @counter (atomic)
 * reaches @n; fails the test after 5 s */
void         wait_for_count_in (GMainContext *context,
                                guint        *counter,
                                guint         n);
void         wait_for_count    (guint        *counter,
                                guint         n);

/* Holds the client library's I/O thread (dirty_io_schedule ()) in a
 * callback until gate_release () */
typedef struct {
  GMutex   lock;
  GCond    cond;
  gboolean blocked;
  gboolean open;
} Gate;
void         gate_hold_io      (Gate *gate);
void         gate_release      (Gate *gate);
void         gate_clear        (Gate *gate);

G_END_DECLS
