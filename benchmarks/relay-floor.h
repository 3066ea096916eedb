/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The physical floor dirty-arbiter is measured against: the same shape
 * of IPC with nothing else in it. Callers write a frame to a relay
 * thread (poll loop, like the arbiter), which passes it to one of two
 * echo threads (like the workers) and routes the echo back by id. */

#include <glib.h>

typedef struct _RelayFloor RelayFloor;

RelayFloor *relay_floor_new            (guint n_callers);
void        relay_floor_free           (RelayFloor *floor);
/* One round trip of @size payload bytes for caller @caller. */
void        relay_floor_call           (RelayFloor *floor,
                                        guint       caller,
                                        gsize       size);
