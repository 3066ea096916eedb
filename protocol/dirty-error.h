/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(__DIRTY_H_INSIDE__) && !defined(DIRTY_COMPILATION)
#error "Only <dirty.h> can be included directly."
#endif

#include <glib.h>
#include "dirty-version.h"

G_BEGIN_DECLS

/**
 * DIRTY_ERROR:
 *
 * Error domain for dirty-arbiter. Errors in this domain are from the
 * [error@Dirty.Error] enumeration. See [struct@GLib.Error] for information
 * on error domains.
 */
#define DIRTY_ERROR (dirty_error_quark ())

/**
 * DirtyError:
 * @DIRTY_ERROR_FAILED: an error with no more specific code.
 * @DIRTY_ERROR_TIMEOUT: the call's deadline passed before it ended.
 * @DIRTY_ERROR_CONNECTION: the connection to the arbiter could not be
 *   made, or was lost.
 * @DIRTY_ERROR_APP: the action failed in the app; see
 *   [func@Dirty.error_get_detail] for its backtrace or detail.
 * @DIRTY_ERROR_APP_NOT_FOUND: no app of that name is configured.
 * @DIRTY_ERROR_ACTION_NOT_FOUND: the app has no public action of that name.
 * @DIRTY_ERROR_NO_WORKER: no worker can serve the app (it failed to load or
 *   to initialise; the message says why).
 * @DIRTY_ERROR_WORKER_LOST: the worker running the call died.
 * @DIRTY_ERROR_BUSY: the app's queue, or the connection's in-flight limit,
 *   is full.
 * @DIRTY_ERROR_PROTOCOL: a peer sent a frame that breaks the protocol.
 * @DIRTY_ERROR_INVALID_ARGUMENT: the arguments do not fit the action.
 * @DIRTY_ERROR_CANCELLED: the call was cancelled.
 * @DIRTY_ERROR_SHUTTING_DOWN: the arbiter is shutting down and takes no
 *   new calls.
 * @DIRTY_ERROR_PERMISSION_DENIED: the caller may not connect, or may not
 *   use that control verb.
 *
 * Error codes of the %DIRTY_ERROR domain. Each has a fixed name on the
 * wire (see `docs/protocol.md`). Values are never renumbered; new ones are
 * appended.
 */
typedef enum {
  DIRTY_ERROR_FAILED,
  DIRTY_ERROR_TIMEOUT,
  DIRTY_ERROR_CONNECTION,
  DIRTY_ERROR_APP,
  DIRTY_ERROR_APP_NOT_FOUND,
  DIRTY_ERROR_ACTION_NOT_FOUND,
  DIRTY_ERROR_NO_WORKER,
  DIRTY_ERROR_WORKER_LOST,
  DIRTY_ERROR_BUSY,
  DIRTY_ERROR_PROTOCOL,
  DIRTY_ERROR_INVALID_ARGUMENT,
  DIRTY_ERROR_CANCELLED,
  DIRTY_ERROR_SHUTTING_DOWN,
  DIRTY_ERROR_PERMISSION_DENIED,
} DirtyError;

DIRTY_AVAILABLE_IN_ALL
GQuark       dirty_error_quark        (void);

DIRTY_AVAILABLE_IN_ALL
const char  *dirty_error_get_app      (const GError *error);
DIRTY_AVAILABLE_IN_ALL
const char  *dirty_error_get_action   (const GError *error);
DIRTY_AVAILABLE_IN_ALL
const char  *dirty_error_get_detail   (const GError *error);
DIRTY_AVAILABLE_IN_ALL
gint64       dirty_error_get_worker_pid (const GError *error);

DIRTY_AVAILABLE_IN_ALL
const char  *dirty_error_to_wire      (DirtyError code);
DIRTY_AVAILABLE_IN_ALL
DirtyError   dirty_error_from_wire    (const char *name);

G_END_DECLS
