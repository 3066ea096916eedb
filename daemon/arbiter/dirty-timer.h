/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One-shot timers, re-armed by moving their due time: cheaper than
 * destroying and creating a timeout source each time, which the heartbeat
 * watchdogs and the deadline timer would otherwise do constantly. All the
 * timers of a main context share one GSource: GLib visits every source
 * twice in every iteration, and a worker's watchdog is one timer per
 * worker. Pushing a timer back or disarming it costs no main-loop
 * wake-up (dirty-timer.c). */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DirtyTimer DirtyTimer;

/* A disarmed timer on the thread-default context. @func runs when armed
 * and due (its return value is ignored); the timer is disarmed before. */
DirtyTimer *dirty_timer_new    (GSourceFunc  func,
                                gpointer     user_data);
/* @when: monotonic us, or -1 to disarm. The callback never runs before
 * @when; the context may wake up once, early, for an older time. */
void        dirty_timer_arm_at (DirtyTimer  *timer,
                                gint64       when);
/* Also from the timer's own callback, or another timer's */
void        dirty_timer_free   (DirtyTimer  *timer);

G_END_DECLS
