/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The service side of systemd's daemon protocols, as sd-daemon(3) has
 * them: readiness and state (sd_notify(3), with fds for the fd store),
 * the barrier, socket activation (sd_listen_fds(3)), the watchdog
 * (sd_watchdog_enabled(3)) and sd_is_socket(3). These are the only parts
 * of libsystemd the arbiter used, and systemd documents them as stable
 * interfaces to implement without it; linking libsystemd cost the arbiter
 * seven more shared libraries (libgcrypt, liblzma, libzstd, ...) and
 * 0.8 MiB of idle RSS.
 *
 * Each function keeps its sd_ counterpart's contract: a negative errno on
 * error, 0 when systemd is not there (no NOTIFY_SOCKET, no LISTEN_PID for
 * this process), and a positive value on success. */

#include <glib.h>

G_BEGIN_DECLS

/* SD_LISTEN_FDS_START: the first fd systemd passes */
#define DIRTY_SD_LISTEN_FDS_START 3

int dirty_sd_notify           (const char  *state);
int dirty_sd_notifyf          (const char  *format,
                               ...) G_GNUC_PRINTF (1, 2);
/* sd_pid_notify_with_fds (0, FALSE, ...): the fds go with the message
 * (FDSTORE=1); they stay open here */
int dirty_sd_notify_with_fds  (const char  *state,
                               const int   *fds,
                               guint        n_fds);
/* BARRIER=1: returns 1 once systemd has read every message sent before
 * it, -ETIMEDOUT after @timeout_usec */
int dirty_sd_notify_barrier   (guint64      timeout_usec);

/* sd_listen_fds_with_names (TRUE, names): the number of fds passed from
 * DIRTY_SD_LISTEN_FDS_START on, made close-on-exec, and their names
 * ("unknown" when LISTEN_FDNAMES is not set) in @names (owned by the
 * caller; left NULL unless the result is positive). Unsets LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES, so no child inherits them. */
int dirty_sd_listen_fds       (char      ***names);

/* sd_watchdog_enabled (TRUE, usec): 1 and the interval when systemd
 * expects WATCHDOG=1 from this process. Unsets WATCHDOG_USEC and
 * WATCHDOG_PID. */
int dirty_sd_watchdog_enabled (guint64     *usec);

/* sd_is_socket (): 1 if @fd is a socket of @family (AF_UNSPEC: any), of
 * @type (0: any) and, unless @listening is negative, listening or not as
 * @listening says */
int dirty_sd_is_socket        (int          fd,
                               int          family,
                               int          type,
                               int          listening);

G_END_DECLS
