/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A one-shot timer that is re-armed by moving its ready time: cheaper than
 * destroying and creating a timeout source each time, which the heartbeat
 * watchdog and the deadline timer would otherwise do constantly. Pushing
 * it back or disarming it costs no main-loop wake-up (dirty-timer.c). */

#include <glib.h>

G_BEGIN_DECLS

/* A source attached to the thread-default context, disarmed (ready time
 * -1). @func runs when armed and due; the timer is disarmed before. */
GSource *dirty_timer_new    (GSourceFunc   func,
                             gpointer      user_data);
/* @when: monotonic us, or -1 to disarm. The callback never runs before
 * @when; the context may wake up once, early, for an older time. */
void     dirty_timer_arm_at (GSource      *timer,
                             gint64        when);
void     dirty_timer_free   (GSource      *timer);

G_END_DECLS
