/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The physical floor dirty-arbiter is measured against: the same shape
 * of IPC with nothing else in it. Callers write a frame to a relay
 * thread (poll loop, like the arbiter), which passes it to one of two
 * echo threads (like the workers) and routes the echo back by id. */

#include <glib.h>
#include <sys/types.h>

typedef struct _RelayFloor RelayFloor;

RelayFloor *relay_floor_new            (guint n_callers);
/* The same with the relay and the echoes in processes of their own
 * (forked), as the arbiter and the workers are: a context switch between
 * processes costs more than one between threads of one process. */
RelayFloor *relay_floor_new_processes  (guint n_callers);
/* The same with one thread hop in each echo: its reading thread hands the
 * frame to another thread, which answers, as a worker's main loop hands a
 * blocking call to its pool. What this design costs at the least. */
RelayFloor *relay_floor_new_handoff    (guint n_callers);
/* The same with two threads in each echo taking turns as its reader: the
 * one that reads a frame hands the reading to the other and answers the
 * frame itself, so no hop comes between reading a call and running it,
 * and a reader is still free for the next frame (leader/follower). What
 * a worker built so would cost at the least. */
RelayFloor *relay_floor_new_leaders    (guint n_callers);
/* CPU spent on each call, in microseconds: by the caller before it
 * sends (relay_floor_call () only), by the relay before it forwards a
 * request, by the echo before it answers */
typedef struct {
  guint caller_us;
  guint relay_us;
  guint echo_us;
} RelayWork;

/* The raw relay doing @work on each call, as a client, an arbiter and a
 * worker do theirs: the floor of a round trip that does that much. On a
 * VM whose idle vCPUs halt, another thread's work lets a waiting vCPU
 * halt in the meantime, so work can cost a round trip more than its own
 * time. */
RelayFloor *relay_floor_new_working    (guint            n_callers,
                                        const RelayWork *work);
void        relay_floor_free           (RelayFloor *floor);
/* One stream: @n_chunks frames of @chunk_size payload bytes, then an end
 * frame, for caller @caller. Returns the microseconds to the first. */
gint64      relay_floor_stream         (RelayFloor *floor,
                                        guint       caller,
                                        guint32     n_chunks,
                                        guint32     chunk_size);
/* Moves task @tid (a thread or a process; 0: the calling thread) to
 * CPU @cpu alone. FALSE if it could not be moved. */
gboolean    relay_floor_pin_task       (pid_t       tid,
                                        int         cpu);
/* relay_floor_new_processes () only: moves the echo processes to CPU
 * @cpu. FALSE if they could not be moved (or it has none). */
gboolean    relay_floor_pin_echoes     (RelayFloor *floor,
                                        int         cpu);
/* One round trip of @size payload bytes for caller @caller. */
void        relay_floor_call           (RelayFloor *floor,
                                        guint       caller,
                                        gsize       size);
/* The plain memcpy-and-socket baseline of a bytes echo: @payload copied
 * into the caller's frame, sent through the relay to an echo thread and
 * back, read into the caller's buffer. */
void        relay_floor_echo           (RelayFloor   *floor,
                                        guint         caller,
                                        const guint8 *payload,
                                        gsize         size);
