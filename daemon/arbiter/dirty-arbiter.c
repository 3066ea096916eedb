/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <gio/gunixsocketaddress.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-access.h"
#include "dirty-arbiter.h"
#include "dirty-arbiter-private.h"
#include "dirty-error.h"
#include "dirty-handoff.h"
#include "dirty-log.h"
#include "dirty-peer.h"
#include "dirty-poller.h"
#include "dirty-pool.h"
#include "dirty-scheduler.h"
#include "dirty-sd-daemon.h"
#include "dirty-socket.h"
#include "dirty-timer.h"

#define STATUS_INTERVAL_MS  250   /* STATUS= at most this often */
#define FLUSH_LIMIT_US      (1 * G_USEC_PER_SEC)
/* Connections accepted per turn of the main loop, before the connected
 * clients' frames get their turn. A flood of connects refills the
 * backlog as fast as it is drained, so accepting until EAGAIN held the
 * loop for the whole flood (10,000 accepts in one callback: 165-186 ms
 * on an idle machine, 0.6-1.5 s on a loaded one, while no connected
 * client was served). A batch costs far less than a turn of the
 * clients' frames, so the clients keep their share of the loop; what a
 * flood still takes from them is CPU: the connector and the arbiter's
 * accepts run on the same cores. One connection
 * costs ~11 µs of CPU, its close included (perf stat, 10,000 connects
 * of which 2,500 admitted: 103-127 ms; 154-203 ms when each got a
 * GSocket and a freshly encoded ERROR), so a batch holds the loop for
 * ~0.3 ms. */
#define ACCEPT_BATCH        32
/* max_connections_per_uid refusals: at most one journal record this often */
#define CAP_LOG_INTERVAL_US (1 * G_USEC_PER_SEC)
/* Before READY=1: while app init()s run (a model may take minutes to
 * load), the start timeout is pushed out this often, by three times as
 * much, so one late tick does not fail the start. */
#define EXTEND_INTERVAL_S   5
#define EXTEND_BY_US        (3 * EXTEND_INTERVAL_S * G_USEC_PER_SEC)
/* The name the socket unit gives its fd (FileDescriptorName=) */
#define LISTEN_FD_NAME      "dirty-arbiter"

enum {
  SIGNAL_FINISHED,
  SIGNAL_STARTING,
  SIGNAL_WORKER_STARTED,
  SIGNAL_WORKER_EXITED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];
/* The signals the arbiter takes through its self-pipe, and what they did
 * before: finalize puts that back, so a later signal is not swallowed
 * by a pipe nobody reads (the arbiter may live inside a test program). */
static const int piped_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGQUIT, SIGTTIN, SIGTTOU };
static struct sigaction saved_actions[G_N_ELEMENTS (piped_signals)];
static volatile sig_atomic_t signal_pipe_write = -1;

G_DEFINE_TYPE (DirtyArbiter, dirty_arbiter, G_TYPE_OBJECT)
G_DEFINE_QUARK (dirty-arbiter-error-quark, dirty_arbiter_error)

static void
dirty_arbiter_dispose (GObject *object)
{
  DirtyArbiter *self = DIRTY_ARBITER (object);

  g_clear_pointer (&self->signal_watch, dirty_watch_destroy);
  g_clear_pointer (&self->status_timer, dirty_timer_free);
  g_clear_handle_id (&self->extend_source, g_source_remove);
  g_clear_handle_id (&self->watchdog_source, g_source_remove);
  g_clear_handle_id (&self->graceful_source, g_source_remove);
  g_clear_handle_id (&self->flush_source, g_source_remove);
  dirty_arbiter_stop_accepting (self);
  if (self->peers != NULL)
    g_hash_table_remove_all (self->peers);
  if (self->scheduler != NULL)
    {
      dirty_scheduler_set_changed_func (self->scheduler, NULL, NULL);
      g_signal_handlers_disconnect_by_data (self->scheduler, self);
    }
  if (self->pool != NULL)
    g_signal_handlers_disconnect_by_data (self->pool, self);
  g_clear_object (&self->scheduler);
  g_clear_object (&self->pool);
  dirty_util_bound_path_remove (&self->bound);
  if (self->listener != NULL)
    g_socket_close (self->listener, NULL);
  g_clear_object (&self->listener);
  G_OBJECT_CLASS (dirty_arbiter_parent_class)->dispose (object);
}

static void
dirty_arbiter_finalize (GObject *object)
{
  DirtyArbiter *self = DIRTY_ARBITER (object);

  if (self->signal_pipe[0] >= 0)
    {
      if (signal_pipe_write == self->signal_pipe[1])   /* the handlers are ours */
        for (guint i = 0; i < G_N_ELEMENTS (piped_signals); i++)
          sigaction (piped_signals[i], &saved_actions[i], NULL);
      signal_pipe_write = -1;
      close (self->signal_pipe[0]);
      close (self->signal_pipe[1]);
    }
  if (self->stored_fds != NULL)
    for (guint i = 0; i < self->stored_fds->len; i++)
      close (g_array_index (self->stored_fds, int, i));
  g_clear_pointer (&self->stored_fds, g_array_unref);
  if (self->stored_workers != NULL)
    for (guint i = 0; i < self->stored_workers->len; i++)
      close (g_array_index (self->stored_workers, DirtyHandoffWorker, i).fd);
  g_clear_pointer (&self->stored_workers, g_array_unref);
  if (self->stored_attach != NULL)
    for (guint i = 0; i < self->stored_attach->len; i++)
      close (g_array_index (self->stored_attach, DirtyHandoffAttach, i).fd);
  g_clear_pointer (&self->stored_attach, g_array_unref);
  g_clear_pointer (&self->handoff_state, dirty_handoff_state_free);
  if (self->state_fd >= 0)
    close (self->state_fd);
  g_hash_table_unref (self->peers);
  g_hash_table_unref (self->uid_counts);
  g_free (self->last_status);
  g_clear_object (&self->config);
  G_OBJECT_CLASS (dirty_arbiter_parent_class)->finalize (object);
}

static void
dirty_arbiter_class_init (DirtyArbiterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_arbiter_dispose;
  object_class->finalize = dirty_arbiter_finalize;

  signals[SIGNAL_FINISHED] =
    g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* lifecycle (dirty-arbiter.h, dirty-hooks.h): each with its a{sv} facts */
  signals[SIGNAL_STARTING] =
    g_signal_new ("starting", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_VARIANT);
  signals[SIGNAL_WORKER_STARTED] =
    g_signal_new ("worker-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_VARIANT);
  signals[SIGNAL_WORKER_EXITED] =
    g_signal_new ("worker-exited", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_VARIANT);
}

static void
dirty_arbiter_init (DirtyArbiter *self)
{
  self->peers = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->uid_counts = g_hash_table_new (NULL, NULL);
  self->signal_pipe[0] = self->signal_pipe[1] = -1;
  self->state_fd = -1;
}

/* max_body, max_in_flight, frame_timeout, max_queued: for connections
 * accepted from now on (a reload does not change open ones) */
static void
dirty_arbiter_update_client_limits (DirtyArbiter *self)
{
  DirtyLimits *limits = &self->client_limits;

  dirty_limits_init (limits);
  limits->max_body = dirty_config_get_max_body (self->config);
  limits->max_in_flight = dirty_config_get_max_in_flight (self->config);
  limits->frame_timeout_ms = dirty_config_get_frame_timeout (self->config);
  limits->max_queued_bytes = dirty_config_get_max_queued (self->config);
  limits->max_fd_payload = (guint64) dirty_config_get_max_fd_payload (self->config) * 1024 * 1024;
}

DirtyArbiter *
dirty_arbiter_new (DirtyConfig *config)
{
  DirtyArbiter *self = g_object_new (DIRTY_TYPE_ARBITER, NULL);

  self->config = g_object_ref (config);
  dirty_limits_init (&self->limits);
  dirty_arbiter_update_client_limits (self);
  return self;
}

/* ---- sd_notify ---- */

/* The one-line summary for STATUS= (systemctl status, StatusText) */
static char *
dirty_arbiter_dup_status (DirtyArbiter *self)
{
  g_autofree char *status = dirty_scheduler_dup_status (self->scheduler);
  g_autoptr(GPtrArray) held = NULL;

  if (!self->ready_sent && !self->stopping)
    return g_strconcat ("Starting: ", status, NULL);
  /* a reload held for apps that did not start in its new workers */
  if (dirty_pool_get_reloading (self->pool, &held) && held->len > 0)
    {
      g_autofree char *apps = NULL;

      g_ptr_array_add (held, NULL);
      apps = g_strjoinv (", ", (char **) held->pdata);
      return g_strdup_printf ("Reload held, the old workers serve %s: %s", apps, status);
    }
  return g_steal_pointer (&status);
}

static gboolean
dirty_arbiter_status_cb (gpointer user_data)
{
  DirtyArbiter *self = user_data;
  g_autofree char *status = dirty_arbiter_dup_status (self);

  self->status_pending = FALSE;
  if (g_strcmp0 (status, self->last_status) != 0)
    {
      g_autofree char *message = g_strconcat ("STATUS=", status, NULL);

      dirty_sd_notify (message);
      g_free (self->last_status);
      self->last_status = g_steal_pointer (&status);
    }
  return G_SOURCE_REMOVE;
}

static void
dirty_arbiter_check_ready (DirtyArbiter *self)
{
  g_autofree char *status = NULL;
  g_autofree char *message = NULL;

  /* Settled: every app is ready on some worker, or some worker reported
   * that it cannot serve it (failed init, not loadable). Waiting for a
   * broken app would fail the whole service at TimeoutStartSec= and take
   * the working apps down with it; STATUS= and the journal say which app
   * failed and why. */
  if (self->ready_sent || self->stopping || !dirty_scheduler_is_settled (self->scheduler))
    return;
  self->ready_sent = TRUE;
  g_clear_handle_id (&self->extend_source, g_source_remove);
  status = dirty_arbiter_dup_status (self);
  message = g_strconcat ("READY=1\nSTATUS=", status, NULL);
  dirty_sd_notify (message);
  dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0, "ready: %s", status);
  g_free (self->last_status);
  self->last_status = g_steal_pointer (&status);
}

static void
dirty_arbiter_scheduler_changed_cb (DirtyScheduler *scheduler,
                                    gpointer        user_data)
{
  DirtyArbiter *self = user_data;

  dirty_arbiter_check_ready (self);
  if (self->status_pending)
    return;
  if (self->status_timer == NULL)
    self->status_timer = dirty_timer_new (dirty_arbiter_status_cb, self);
  dirty_timer_arm_at (self->status_timer, g_get_monotonic_time () + STATUS_INTERVAL_MS * 1000);
  self->status_pending = TRUE;
}

/* EXTEND_TIMEOUT_USEC= while the apps' init()s run, until READY=1. The
 * workers' heartbeats prove those inits are alive; a worker that dies is
 * replaced (with backoff), which is progress too. */
static gboolean
dirty_arbiter_extend_cb (gpointer user_data)
{
  DirtyArbiter *self = user_data;

  if (self->ready_sent || self->stopping)
    {
      self->extend_source = 0;
      return G_SOURCE_REMOVE;
    }
  dirty_sd_notifyf ("EXTEND_TIMEOUT_USEC=%" G_GUINT64_FORMAT, (guint64) EXTEND_BY_US);
  return G_SOURCE_CONTINUE;
}

/* WATCHDOG=1 from a main-loop timer, so a wedged loop misses it, and only
 * while the pool supervises the workers (their heartbeat timers and
 * respawns run on this same loop). After the pool has stopped, nothing is
 * supervised any more and systemd stops expecting pings anyway. */
static gboolean
dirty_arbiter_watchdog_cb (gpointer user_data)
{
  DirtyArbiter *self = user_data;

  if (self->supervising)
    dirty_sd_notify ("WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

/* Reads WATCHDOG_USEC (and unsets it, with WATCHDOG_PID, so no worker
 * inherits it): call before any worker is spawned. */
static void
dirty_arbiter_read_watchdog (DirtyArbiter *self)
{
  guint64 usec = 0;

  if (dirty_sd_watchdog_enabled (&usec) > 0 && usec > 0)
    self->watchdog_usec = usec;
}

static void
dirty_arbiter_start_timers (DirtyArbiter *self)
{
  if (self->watchdog_usec > 0)
    {
      /* half the interval, in ms, never 0 */
      guint interval_ms = MAX (self->watchdog_usec / 2000, 1);

      self->watchdog_source = g_timeout_add (interval_ms, dirty_arbiter_watchdog_cb, self);
      dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0,
                 "systemd watchdog: %" G_GUINT64_FORMAT " ms, pinged every %u ms",
                 self->watchdog_usec / 1000, interval_ms);
    }
  /* at once, then periodically: TimeoutStartSec= may be shorter */
  if (!self->ready_sent && g_getenv ("NOTIFY_SOCKET") != NULL)
    {
      dirty_arbiter_extend_cb (self);
      self->extend_source = g_timeout_add_seconds (EXTEND_INTERVAL_S, dirty_arbiter_extend_cb, self);
    }
}

/* ---- the listening socket ---- */

static void
set_activation_error (GError     **error,
                      const char  *name,
                      int          fd,
                      const char  *why)
{
  g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_FAILED,
               _("socket activation: fd %d (“%s”) %s"), fd, name, why);
}

/* The fd must be what dirty-arbiter.socket passes: a listening Unix
 * stream socket. A connected one means Accept=yes (one service instance
 * per connection), which this daemon does not support. */
static gboolean
check_activated_fd (int          fd,
                    const char  *name,
                    GError     **error)
{
  int r = dirty_sd_is_socket (fd, AF_UNIX, SOCK_STREAM, -1);

  if (r < 0)
    {
      set_activation_error (error, name, fd, g_strerror (-r));
      return FALSE;
    }
  if (r == 0)
    {
      set_activation_error (error, name, fd,
                            dirty_sd_is_socket (fd, AF_UNSPEC, 0, -1) > 0
                              ? _("is not a Unix stream socket (ListenStream=/path needed)")
                              : _("is not a socket (a FIFO or a file? ListenStream= needed)"));
      return FALSE;
    }
  if (dirty_sd_is_socket (fd, AF_UNIX, SOCK_STREAM, 1) <= 0)
    {
      set_activation_error (error, name, fd,
                            _("is not listening: a connected socket, as Accept=yes passes; "
                              "dirty-arbiter needs Accept=no"));
      return FALSE;
    }
  return TRUE;
}

/* Socket activation: the fd named “dirty-arbiter” (FileDescriptorName=);
 * a single fd of another name is taken too (systemd-socket-activate
 * without --fdname, a unit without FileDescriptorName=). Connections of
 * a restart handoff are kept aside; the other fds are closed: this
 * daemon has no use for them. *found says whether systemd passed a
 * listening socket. */
static GSocket *
take_activated_socket (DirtyArbiter  *self,
                       gboolean      *found,
                       GError       **error)
{
  g_auto(GStrv) names = NULL;
  int n = dirty_sd_listen_fds (&names);
  int index = -1, n_other = 0;
  g_autofree gboolean *kept = NULL;
  g_autoptr(GSocket) socket = NULL;

  *found = FALSE;
  if (n < 0)
    {
      g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_FAILED,
                   "socket activation: %s", g_strerror (-n));
      return NULL;
    }
  kept = g_new0 (gboolean, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      kept[i] = names != NULL && dirty_arbiter_keep_stored_fd (self, names[i], DIRTY_SD_LISTEN_FDS_START + i);
      n_other += !kept[i];
    }
  if (n_other == 0)
    return NULL;
  *found = TRUE;
  for (int i = 0; i < n && index < 0; i++)
    if (!kept[i] && names != NULL && g_strcmp0 (names[i], LISTEN_FD_NAME) == 0)
      index = i;
  for (int i = 0; i < n && index < 0 && n_other == 1; i++)
    if (!kept[i])
      index = i;
  for (int i = 0; i < n; i++)
    {
      if (i == index)
        fcntl (DIRTY_SD_LISTEN_FDS_START + i, F_SETFD, FD_CLOEXEC);  /* never leaks into workers */
      else if (!kept[i])
        close (DIRTY_SD_LISTEN_FDS_START + i);
    }
  if (index < 0)
    {
      g_autofree char *list = names != NULL ? g_strjoinv ("”, “", names) : g_strdup ("");

      g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_FAILED,
                   _("socket activation: %d fds passed (“%s”), none named “%s” "
                     "(FileDescriptorName=%s in the socket unit)"),
                   n, list, LISTEN_FD_NAME, LISTEN_FD_NAME);
      return NULL;
    }
  if (!check_activated_fd (DIRTY_SD_LISTEN_FDS_START + index,
                           names != NULL ? names[index] : "unknown", error))
    {
      close (DIRTY_SD_LISTEN_FDS_START + index);
      return NULL;
    }
  socket = g_socket_new_from_fd (DIRTY_SD_LISTEN_FDS_START + index, error);
  if (socket == NULL)
    close (DIRTY_SD_LISTEN_FDS_START + index);
  return g_steal_pointer (&socket);
}

/* An existing socket file: a live arbiter answers on it; a stale one
 * (left by a crash) is removed. */
static gboolean
check_existing_socket (const char  *path,
                       GError     **error)
{
  struct stat st;
  g_autoptr(GSocket) probe = NULL;
  g_autoptr(GSocketAddress) address = NULL;

  if (lstat (path, &st) < 0)
    return TRUE;
  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_FAILED,
                   _("%s exists and is not a socket"), path);
      return FALSE;
    }
  probe = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (probe == NULL)
    return FALSE;
  address = g_unix_socket_address_new (path);
  if (g_socket_connect (probe, address, NULL, NULL))
    {
      g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_ALREADY_RUNNING,
                   _("another dirty-arbiter is listening on %s"), path);
      return FALSE;
    }
  if (unlink (path) < 0 && errno != ENOENT)
    {
      int saved_errno = errno;
      g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_FAILED,
                   _("cannot remove the stale socket %s: %s"), path, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

static GSocket *
bind_socket (const char   *path,
             DirtyConfig  *config,
             GError      **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *dir = g_path_get_dirname (path);

  if (!dirty_socket_check_path (path, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  if (!check_existing_socket (path, error))
    return NULL;
  if (g_mkdir_with_parents (dir, 0755) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_FAILED,
                   _("cannot create %s: %s"), dir, g_strerror (saved_errno));
      return NULL;
    }
  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;
  address = g_unix_socket_address_new (path);
  g_socket_set_listen_backlog (socket, SOMAXCONN);
  /* mode and group before listen(): nobody connects in between */
  if (!g_socket_bind (socket, address, FALSE, error) ||
      !dirty_access_apply_socket (config, path, error) || !g_socket_listen (socket, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  return g_steal_pointer (&socket);
}

static gboolean
dirty_arbiter_listen (DirtyArbiter  *self,
                      GError       **error)
{
  gboolean activated;
  g_autofree char *path = NULL;

  self->listener = take_activated_socket (self, &activated, error);
  if (activated)
    {
      if (self->listener == NULL)
        return FALSE;
      if (dirty_config_get_socket (self->config) != NULL)
        dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
                   "socket activation: the configured socket %s is ignored",
                   dirty_config_get_socket (self->config));
      dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0, "using the socket passed by systemd");
    }
  else
    {
      const char *configured = dirty_config_get_socket (self->config);

      path = configured ? g_strdup (configured) : dirty_socket_default_path ();
      self->listener = bind_socket (path, self->config, error);
      if (self->listener == NULL)
        return FALSE;
      dirty_util_bound_path_set (&self->bound, path);
      dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0, "listening on %s", path);
    }
  g_socket_set_blocking (self->listener, FALSE);
  return TRUE;
}

/* ---- clients ---- */

static void
dirty_arbiter_peer_closed_cb (DirtyPeer    *peer,
                              DirtyArbiter *self)
{
  gpointer uid;

  g_signal_handlers_disconnect_by_data (peer, self);
  if (g_hash_table_lookup_extended (self->peers, peer, NULL, &uid))
    {
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->uid_counts, uid));

      if (count <= 1)
        g_hash_table_remove (self->uid_counts, uid);
      else
        g_hash_table_insert (self->uid_counts, uid, GUINT_TO_POINTER (count - 1));
    }
  g_hash_table_remove (self->peers, peer);
}

/* max_connections_per_uid: FALSE, with the refusal in @error, when @uid
 * already has that many connections open. */
static gboolean
dirty_arbiter_admit_uid (DirtyArbiter  *self,
                         uid_t          uid,
                         guint64        serial,
                         GError       **error)
{
  guint cap = dirty_config_get_max_connections_per_uid (self->config);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->uid_counts, GUINT_TO_POINTER (uid)));
  gint64 now;

  if (cap == 0 || count < cap)
    return TRUE;
  /* one record per interval: a flood of connections is not a flood of
   * records; the count says how many were refused meanwhile */
  self->cap_unlogged++;
  now = g_get_monotonic_time ();
  if (self->cap_logged_at == 0 || now - self->cap_logged_at >= CAP_LOG_INTERVAL_US)
    {
      g_autofree char *uid_text = g_strdup_printf ("%d", (int) uid);
      g_autofree char *refused_text = g_strdup_printf ("%u", self->cap_unlogged);

      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                        "DIRTY_PEER_UID", uid_text,
                        "DIRTY_ERROR_CODE", "busy",
                        "DIRTY_REFUSED", refused_text,
                        "MESSAGE", "client %" G_GUINT64_FORMAT " (uid %d) refused: uid %d has "
                        "%u connections open, max_connections_per_uid is %u (%u refused "
                        "since the last record)",
                        serial, (int) uid, (int) uid, count, cap, self->cap_unlogged);
      self->cap_logged_at = now;
      self->cap_unlogged = 0;
    }
  /* on the wire in English, as every error the arbiter sends */
  g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_BUSY,
               "too many connections: uid %d has %u open, the limit "
               "(max_connections_per_uid) is %u", (int) uid, count, cap);
  return FALSE;
}

/* Whether the peer on @fd may connect: allowed_users / allowed_groups,
 * then max_connections_per_uid, from one SO_PEERCRED read (a peer whose
 * credentials cannot be read counts as uid -1). FALSE with the refusal,
 * for dirty_access_refuse(), in @error. */
static gboolean
dirty_arbiter_admit (DirtyArbiter  *self,
                     int            fd,
                     uid_t         *out_uid,
                     GError       **error)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  gboolean known = getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;

  self->next_peer++;
  if (!dirty_access_admit (self->config, known ? &cred : NULL, self->next_peer, error))
    return FALSE;
  *out_uid = known ? cred.uid : (uid_t) -1;
  return dirty_arbiter_admit_uid (self, *out_uid, self->next_peer, error);
}

/* An admitted connection (with the bytes a previous arbiter read and did
 * not act on: @unread, and their frames' @fds) becomes a peer, counted
 * for @uid. */
static void
dirty_arbiter_start_peer (DirtyArbiter *self,
                          GSocket      *socket,
                          uid_t         uid,
                          GBytes       *unread,
                          GArray       *fds)
{
  DirtyPeer *peer;
  guint n_open;

  peer = dirty_peer_new (socket, self->scheduler, &self->client_limits, self->next_peer);
  dirty_peer_set_arbiter (peer, self);
  dirty_peer_set_unread (peer, unread, fds);
  g_hash_table_insert (self->peers, peer, GUINT_TO_POINTER (uid));
  n_open = GPOINTER_TO_UINT (g_hash_table_lookup (self->uid_counts, GUINT_TO_POINTER (uid)));
  g_hash_table_insert (self->uid_counts, GUINT_TO_POINTER (uid), GUINT_TO_POINTER (n_open + 1));
  g_signal_connect (peer, "closed", G_CALLBACK (dirty_arbiter_peer_closed_cb), self);
  dirty_peer_start (peer);
}

/* A connection a previous arbiter handed over, with the bytes it had
 * read and not acted on (@unread, with their frames' @fds). FALSE if it
 * was refused. */
gboolean
dirty_arbiter_add_peer (DirtyArbiter *self,
                        GSocket      *socket,
                        GBytes       *unread,
                        GArray       *fds)
{
  g_autoptr(GError) error = NULL;
  uid_t uid;

  if (!dirty_arbiter_admit (self, g_socket_get_fd (socket), &uid, &error))
    {
      /* the refusal takes a descriptor of its own; @socket closes this one */
      dirty_access_refuse (fcntl (g_socket_get_fd (socket), F_DUPFD_CLOEXEC, 3), error);
      return FALSE;
    }
  dirty_arbiter_start_peer (self, socket, uid, unread, fds);
  return TRUE;
}

/* A new connection, fresh from accept4(): a refused one never costs a
 * GSocket (most of a connection flood is refused) */
static void
dirty_arbiter_accept_fd (DirtyArbiter *self,
                         int           fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;
  uid_t uid;

  if (!dirty_arbiter_admit (self, fd, &uid, &error))
    {
      dirty_access_refuse (fd, error);
      return;
    }
  socket = g_socket_new_from_fd (fd, &error);
  if (socket == NULL)
    {
      close (fd);
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0, "accept: %s", error->message);
      return;
    }
  dirty_arbiter_start_peer (self, socket, uid, NULL, NULL);
}

static void
dirty_arbiter_accept_cb (int      fd,
                         gpointer user_data)
{
  dirty_arbiter_accept_fd (user_data, fd);
}

static void
dirty_arbiter_watch_listener (DirtyArbiter *self)
{
  self->acceptor = dirty_acceptor_new (g_socket_get_fd (self->listener), ACCEPT_BATCH, "",
                                       dirty_arbiter_accept_cb, self);
}

void
dirty_arbiter_stop_accepting (DirtyArbiter *self)
{
  g_clear_pointer (&self->acceptor, dirty_acceptor_free);
}

/* ---- shutdown ---- */

static gboolean
dirty_arbiter_peers_flushed (DirtyArbiter *self)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (dirty_peer_get_queued_bytes (key) > 0)
      return FALSE;
  return TRUE;
}

/* Gives the last replies (shutting-down, worker-lost) a moment to reach
 * their clients before the process exits. */
static gboolean
dirty_arbiter_flush_cb (gpointer user_data)
{
  DirtyArbiter *self = user_data;

  if (!dirty_arbiter_peers_flushed (self) && g_get_monotonic_time () < self->flush_until)
    return G_SOURCE_CONTINUE;
  self->flush_source = 0;
  if (self->handing_off)
    dirty_arbiter_hand_off (self);
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0, "stopped");
  g_signal_emit (self, signals[SIGNAL_FINISHED], 0);
  return G_SOURCE_REMOVE;
}

static void
dirty_arbiter_pool_stopped_cb (DirtyPool    *pool,
                               DirtyArbiter *self)
{
  self->supervising = FALSE;
  if (self->flush_source != 0)
    return;
  self->flush_until = g_get_monotonic_time () + FLUSH_LIMIT_US;
  self->flush_source = g_timeout_add (20, dirty_arbiter_flush_cb, self);
}

static void
dirty_arbiter_stop_workers (DirtyArbiter *self,
                            gboolean      immediate)
{
  g_clear_handle_id (&self->graceful_source, g_source_remove);
  dirty_scheduler_fail_queued (self->scheduler, DIRTY_ERROR_SHUTTING_DOWN,
                               "the arbiter is shutting down");
  dirty_pool_stop (self->pool, immediate);
}

static gboolean
dirty_arbiter_graceful_timeout_cb (gpointer user_data)
{
  DirtyArbiter *self = user_data;

  self->graceful_source = 0;
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0,
             "calls still running after %u s: stopping the workers",
             dirty_config_get_graceful_timeout (self->config));
  dirty_arbiter_stop_workers (self, FALSE);
  return G_SOURCE_REMOVE;
}

static void
dirty_arbiter_scheduler_idle_cb (DirtyScheduler *scheduler,
                                 DirtyArbiter   *self)
{
  /* only while the graceful period runs */
  if (self->graceful_source == 0 || self->stopping_immediately)
    return;
  dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0, "all calls ended: stopping the workers");
  dirty_arbiter_stop_workers (self, FALSE);
}

void
dirty_arbiter_shutdown (DirtyArbiter *self,
                        gboolean      immediate)
{
  g_return_if_fail (DIRTY_IS_ARBITER (self));

  if (self->stopping_immediately)
    return;
  /* asked twice: the user is not willing to wait */
  if (self->stopping)
    immediate = TRUE;
  else
    dirty_sd_notify ("STOPPING=1\nSTATUS=Stopping");
  self->stopping = TRUE;
  g_clear_handle_id (&self->extend_source, g_source_remove);
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0, "%s shutdown%s",
             immediate ? "immediate" : "graceful",
             self->fdstore_max > 0 ? ": client connections go to the fd store" : "");
  if (self->fdstore_max > 0 && !self->handing_off)
    dirty_arbiter_begin_handoff (self);
  if (immediate)
    {
      self->stopping_immediately = TRUE;
      dirty_scheduler_drain (self->scheduler);
      dirty_arbiter_stop_workers (self, TRUE);
      return;
    }
  /* in milliseconds: g_timeout_add_seconds () may fire a quarter of a
   * second early, cutting the promised grace short */
  self->graceful_source = g_timeout_add (dirty_config_get_graceful_timeout (self->config) * 1000,
                                         dirty_arbiter_graceful_timeout_cb, self);
  /* new calls get "shutting-down" rather than a refused connection; if
   * nothing runs, "idle" is emitted at once */
  dirty_scheduler_drain (self->scheduler);
}

/* ---- reload and scaling ---- */

static void
dirty_arbiter_generation_ready_cb (DirtyPool    *pool,
                                   guint         generation,
                                   DirtyArbiter *self)
{
  g_autofree char *status = NULL;
  g_autofree char *message = NULL;

  if (self->stopping)
    return;
  status = dirty_arbiter_dup_status (self);
  message = g_strconcat ("READY=1\nSTATUS=", status, NULL);
  dirty_sd_notify (message);
  dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0, "reload: generation %u ready: %s",
             generation, status);
}

/* What a reload cannot change in a running daemon: said, not failed. */
static void
dirty_arbiter_note_fixed_settings (DirtyArbiter *self,
                                   DirtyConfig  *fresh)
{
  if (g_strcmp0 (dirty_config_get_socket (fresh), dirty_config_get_socket (self->config)) != 0)
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
               "reload: the socket setting changed; it applies at the next start");
}

/* The log file named by @config (or none); FALSE leaves the old one. */
static gboolean
dirty_arbiter_apply_log_file (DirtyConfig  *config,
                              GError      **error)
{
  const char *path = dirty_config_get_log_file (config);

  if (g_strcmp0 (path, dirty_log_get_file ()) == 0)
    return TRUE;
  return dirty_log_set_file (path, error);
}

gboolean
dirty_arbiter_reload (DirtyArbiter  *self,
                      GError       **error)
{
  g_autoptr(DirtyConfig) fresh = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (DIRTY_IS_ARBITER (self), FALSE);

  if (self->stopping)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_SHUTTING_DOWN,
                           "the arbiter is shutting down");
      return FALSE;
    }
  fresh = dirty_config_reload (self->config, &local_error);
  if (fresh == NULL || !dirty_arbiter_apply_log_file (fresh, &local_error))
    {
      /* the old config keeps serving; the message names file, line, key */
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                 "reload refused, the old config stays: %s", local_error->message);
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_FAILED, "invalid config: %s",
                   local_error->message);
      return FALSE;
    }
  dirty_sd_notifyf ("RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT "\nSTATUS=Reloading",
                    g_get_monotonic_time ());
  dirty_arbiter_note_fixed_settings (self, fresh);
  g_set_object (&self->config, fresh);
  dirty_arbiter_update_client_limits (self);
  dirty_scheduler_set_config (self->scheduler, fresh);
  dirty_pool_reload (self->pool, fresh);
  return TRUE;
}

guint
dirty_arbiter_get_generation (DirtyArbiter *self)
{
  g_return_val_if_fail (DIRTY_IS_ARBITER (self), 0);

  return dirty_pool_get_generation (self->pool);
}

gboolean
dirty_arbiter_scale (DirtyArbiter  *self,
                     int            delta,
                     guint         *out_total,
                     GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_ARBITER (self), FALSE);

  if (self->stopping)
    {
      g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_SHUTTING_DOWN,
                           "the arbiter is shutting down");
      return FALSE;
    }
  return dirty_pool_scale (self->pool, delta, out_total, error);
}

/* ---- signals ---- */

static gboolean
dirty_arbiter_sigterm_cb (gpointer user_data)
{
  dirty_arbiter_shutdown (user_data, FALSE);
  return G_SOURCE_CONTINUE;
}

static gboolean
dirty_arbiter_sighup_cb (gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  /* refusals are logged where they are decided, or here */
  if (!dirty_arbiter_reload (user_data, &error) && !g_error_matches (error, DIRTY_ERROR, DIRTY_ERROR_FAILED))
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0, "SIGHUP: %s", error->message);
  return G_SOURCE_CONTINUE;
}

static gboolean
dirty_arbiter_sigusr1_cb (gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (dirty_log_get_file () == NULL)
    dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0, "SIGUSR1: no log file is configured");
  else if (!dirty_log_reopen (&error))
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0, "SIGUSR1: %s", error->message);
  else
    dirty_log (G_LOG_LEVEL_MESSAGE, NULL, NULL, 0, 0, 0, "log file %s reopened",
               dirty_log_get_file ());
  return G_SOURCE_CONTINUE;
}

static void
dirty_arbiter_scale_by_signal (DirtyArbiter *self,
                               int           delta,
                               const char   *name)
{
  g_autoptr(GError) error = NULL;
  guint total = 0;

  if (!dirty_arbiter_scale (self, delta, &total, &error))
    dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0, "%s refused (%u workers): %s",
               name, total, error->message);
}

/* Async-signal-safe: one byte, the signal number, into the pipe */
static void
pipe_signal_handler (int signum)
{
  int saved_errno = errno;
  unsigned char byte = (unsigned char) signum;

  if (signal_pipe_write >= 0 && write (signal_pipe_write, &byte, 1) < 0)
    { /* the pipe is full: the loop is far behind; dropping one is fine */ }
  errno = saved_errno;
}

static void
dirty_arbiter_signal_pipe_cb (GIOCondition condition,
                              gpointer     user_data)
{
  DirtyArbiter *self = user_data;
  unsigned char buf[64];
  gssize n;

  while ((n = read (self->signal_pipe[0], buf, sizeof buf)) > 0)
    for (gssize i = 0; i < n; i++)
      {
        if (buf[i] == SIGTERM || buf[i] == SIGINT)
          dirty_arbiter_sigterm_cb (self);
        else if (buf[i] == SIGHUP)
          dirty_arbiter_sighup_cb (self);
        else if (buf[i] == SIGUSR1)
          dirty_arbiter_sigusr1_cb (self);
        else if (buf[i] == SIGQUIT)
          dirty_arbiter_shutdown (self, TRUE);
        else if (buf[i] == SIGTTIN)
          dirty_arbiter_scale_by_signal (self, 1, "SIGTTIN");
        else if (buf[i] == SIGTTOU)
          dirty_arbiter_scale_by_signal (self, -1, "SIGTTOU");
      }
}

static gboolean
dirty_arbiter_install_signals (DirtyArbiter  *self,
                               GError       **error)
{
  struct sigaction action = { 0 };

  if (!g_unix_open_pipe (self->signal_pipe, FD_CLOEXEC, error) ||
      !g_unix_set_fd_nonblocking (self->signal_pipe[0], TRUE, error) ||
      !g_unix_set_fd_nonblocking (self->signal_pipe[1], TRUE, error))
    return FALSE;
  signal_pipe_write = self->signal_pipe[1];
  self->signal_watch = dirty_watch_new (g_main_context_get_thread_default (),
                                       self->signal_pipe[0], dirty_arbiter_signal_pipe_cb, self);
  dirty_watch_set_events (self->signal_watch, G_IO_IN);
  action.sa_handler = pipe_signal_handler;
  sigemptyset (&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (guint i = 0; i < G_N_ELEMENTS (piped_signals); i++)
    {
      struct sigaction old;

      sigaction (piped_signals[i], &action, &old);
      /* a second arbiter in the process must not save the first's handler
       * as what to put back */
      if (old.sa_handler != pipe_signal_handler)
        saved_actions[i] = old;
    }
  return TRUE;
}

/* ---- lifecycle signals ---- */

static GVariant *
dirty_arbiter_worker_facts (DirtyWorkerProc *worker,
                            gboolean         exited)
{
  g_autoptr(GPtrArray) apps = dirty_worker_proc_list_apps (worker);
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "pid", "x", (gint64) getpid ());
  g_variant_dict_insert (&dict, "worker_pid", "x", dirty_worker_proc_get_pid (worker));
  g_variant_dict_insert (&dict, "worker_id", "u", (guint32) dirty_worker_proc_get_id (worker));
  g_variant_dict_insert_value (&dict, "apps",
                               g_variant_new_strv ((const char * const *) apps->pdata,
                                                   apps->len));
  if (exited)
    {
      g_variant_dict_insert (&dict, "exit_status", "i",
                             (gint32) dirty_worker_proc_get_exit_status (worker));
      g_variant_dict_insert (&dict, "term_signal", "i",
                             (gint32) dirty_worker_proc_get_term_signal (worker));
    }
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

static void
dirty_arbiter_pool_worker_started_cb (DirtyPool       *pool,
                                      DirtyWorkerProc *worker,
                                      DirtyArbiter    *self)
{
  g_autoptr(GVariant) facts = dirty_arbiter_worker_facts (worker, FALSE);

  g_signal_emit (self, signals[SIGNAL_WORKER_STARTED], 0, facts);
}

static void
dirty_arbiter_pool_worker_exited_cb (DirtyPool       *pool,
                                     DirtyWorkerProc *worker,
                                     DirtyArbiter    *self)
{
  g_autoptr(GVariant) facts = dirty_arbiter_worker_facts (worker, TRUE);

  g_signal_emit (self, signals[SIGNAL_WORKER_EXITED], 0, facts);
}

static void
dirty_arbiter_emit_starting (DirtyArbiter *self)
{
  GVariantDict dict;
  g_autoptr(GVariant) facts = NULL;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "pid", "x", (gint64) getpid ());
  g_variant_dict_insert (&dict, "workers", "u", (guint32) dirty_config_get_workers (self->config));
  g_variant_dict_insert_value (&dict, "apps",
                               g_variant_new_strv (dirty_config_get_apps (self->config), -1));
  facts = g_variant_ref_sink (g_variant_dict_end (&dict));
  g_signal_emit (self, signals[SIGNAL_STARTING], 0, facts);
}

gboolean
dirty_arbiter_start (DirtyArbiter  *self,
                     GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_ARBITER (self), FALSE);

  if (!dirty_arbiter_apply_log_file (self->config, error) ||
      !dirty_arbiter_install_signals (self, error) || !dirty_arbiter_listen (self, error))
    return FALSE;
  dirty_arbiter_read_watchdog (self);
  self->fdstore_max = dirty_handoff_read_store_max ();

  self->pool = dirty_pool_new (self->config, &self->limits);
  self->scheduler = dirty_scheduler_new (self->config, self->pool);
  dirty_scheduler_set_changed_func (self->scheduler, dirty_arbiter_scheduler_changed_cb, self);
  g_signal_connect (self->scheduler, "idle",
                    G_CALLBACK (dirty_arbiter_scheduler_idle_cb), self);
  g_signal_connect (self->pool, "stopped", G_CALLBACK (dirty_arbiter_pool_stopped_cb), self);
  g_signal_connect (self->pool, "generation-ready",
                    G_CALLBACK (dirty_arbiter_generation_ready_cb), self);
  g_signal_connect (self->pool, "worker-started",
                    G_CALLBACK (dirty_arbiter_pool_worker_started_cb), self);
  g_signal_connect (self->pool, "worker-exited",
                    G_CALLBACK (dirty_arbiter_pool_worker_exited_cb), self);
  dirty_arbiter_emit_starting (self);
  dirty_arbiter_restore_workers (self);
  if (!dirty_pool_start (self->pool, error))
    {
      g_prefix_error (error, _("cannot start a worker: "));
      return FALSE;
    }
  self->supervising = TRUE;
  dirty_arbiter_restore_clients (self);
  dirty_arbiter_watch_listener (self);
  dirty_arbiter_start_timers (self);
  dirty_arbiter_check_ready (self);
  return TRUE;
}
