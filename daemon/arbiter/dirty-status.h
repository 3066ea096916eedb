/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What STATUS answers a client (docs/protocol.md, "STATUS"): the counters
 * each app keeps as its calls end (DirtyAppStats, owned by the scheduler,
 * O(1) per call) and the collection of them, with the workers' and the
 * arbiter's own figures, into one JSON object. */

#include <json-glib/json-glib.h>

#include "dirty-error.h"

G_BEGIN_DECLS

typedef struct _DirtyScheduler DirtyScheduler;

/* Latency quantiles are over the last this many calls of an app. */
#define DIRTY_STATUS_LATENCY_WINDOW 1024
#define DIRTY_STATUS_N_CODES        (DIRTY_ERROR_PERMISSION_DENIED + 1)

/* Reference-counted (g_rc_box): its app's queue holds one, and so does
 * every call of the app from its queueing on (DirtyJob.stats), so a call
 * reaches its counters without a lookup by name, even after a reload
 * removed the app. */
typedef struct _DirtyAppStats {
  guint    in_flight;      /* calls in a worker's slot */
  guint64  served;         /* ended with RESPONSE or END */
  guint64  errors[DIRTY_STATUS_N_CODES];   /* ended with ERROR, by code */
  guint64  timeouts;       /* deadlines that passed */
  guint64  cancels;        /* CANCELs and clients that left mid-call */
  /* a ring of the most recent durations, arrival to end, in us */
  gint64   latency_us[DIRTY_STATUS_LATENCY_WINDOW];
  guint    latency_next;
  guint    latency_count;
} DirtyAppStats;

/* A call of the app ended: @code < 0 for success, else its DirtyError.
 * @arrival is the monotonic time it arrived, or 0 for a call refused
 * on arrival (counted, but not a latency). */
void       dirty_app_stats_record_end (DirtyAppStats *stats,
                                       int            code,
                                       gint64         arrival);

/* The status object, built from the scheduler, its pool and its workers. */
JsonNode  *dirty_status_collect       (DirtyScheduler *scheduler,
                                       guint           connections,
                                       guint64         connections_total);

G_END_DECLS
