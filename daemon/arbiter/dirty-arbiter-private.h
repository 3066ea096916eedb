/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DirtyArbiter's state, shared by dirty-arbiter.c and
 * dirty-arbiter-handoff.c (the restart handoff). Not installed. */

#include "dirty-acceptor.h"
#include "dirty-arbiter.h"
#include "dirty-handoff.h"
#include "dirty-poller.h"
#include "dirty-pool.h"
#include "dirty-scheduler.h"
#include "dirty-timer.h"
#include "dirty-util.h"

G_BEGIN_DECLS

struct _DirtyArbiter
{
  GObject          parent_instance;

  DirtyConfig     *config;
  DirtyLimits      limits;         /* worker connections: the defaults */
  DirtyLimits      client_limits;  /* client connections: from the config */
  DirtyPool       *pool;
  DirtyScheduler  *scheduler;

  GSocket         *listener;
  DirtyBoundPath   bound;          /* unlinked at exit; no path when activated */
  DirtyAcceptor   *acceptor;      /* of the listener; NULL when not accepting */
  GHashTable      *peers;          /* DirtyPeer (ref) -> its uid */
  GHashTable      *uid_counts;     /* uid -> open connections */
  gint64           cap_logged_at;  /* last max_connections_per_uid record */
  guint            cap_unlogged;   /* refusals since then */
  guint64          next_peer;

  /* Every signal the arbiter handles: its handler writes the signal
   * number into this pipe. g_unix_signal_add (2.74) refuses SIGQUIT,
   * SIGTTIN and SIGTTOU, and its sources (one per signal) are each
   * visited twice in every main-loop iteration: 2,000 instructions per
   * call for four signals that almost never come. */
  int              signal_pipe[2];
  /* in the connections' epoll set: no GSource of its own */
  DirtyWatch      *signal_watch;

  gboolean         ready_sent;
  char            *last_status;
  /* STATUS= after changes, at most every STATUS_INTERVAL_MS: a
   * DirtyTimer, as a timeout source would be one more source for every
   * main-loop iteration while calls flow */
  DirtyTimer      *status_timer;
  gboolean         status_pending;
  guint            extend_source;
  guint            watchdog_source;
  guint64          watchdog_usec;  /* WatchdogSec=, 0 when off */
  gboolean         supervising;    /* the pool runs: from start to "stopped" */

  gboolean         stopping;
  gboolean         stopping_immediately;
  guint            graceful_source;
  guint            flush_source;
  gint64           flush_until;

  /* restart handoff (dirty-handoff.h) */
  guint            fdstore_max;    /* $FDSTORE: 0 = connections die with the process */
  gboolean         handing_off;    /* SIGTERM came: connections go to the store */
  GArray          *stored_fds;     /* (nullable) "client" fds passed at start */
  GArray          *stored_workers; /* (nullable) "worker-N" fds: DirtyHandoffWorker */
  GArray          *stored_attach;  /* (nullable) "attach-N" fds: DirtyHandoffAttach */
  int              state_fd;       /* "handoff" memfd passed at start, or -1 */
  DirtyHandoffState *handoff_state; /* (nullable) its content, until the clients are back */
};

/* dirty-arbiter.c */

/* A connection a previous arbiter handed over (see there) */
gboolean dirty_arbiter_add_peer        (DirtyArbiter *self,
                                        GSocket      *socket,
                                        GBytes       *unread,
                                        GArray       *fds);
/* No more connections are accepted (shutdown, or a handoff under way) */
void     dirty_arbiter_stop_accepting  (DirtyArbiter *self);

/* dirty-arbiter-handoff.c */

gboolean dirty_arbiter_keep_stored_fd  (DirtyArbiter *self,
                                        const char   *name,
                                        int           fd);
void     dirty_arbiter_restore_clients (DirtyArbiter *self);
void     dirty_arbiter_restore_workers (DirtyArbiter *self);
void     dirty_arbiter_begin_handoff   (DirtyArbiter *self);
void     dirty_arbiter_hand_off        (DirtyArbiter *self);

G_END_DECLS
