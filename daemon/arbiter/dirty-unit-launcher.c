/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-acceptor.h"
#include "dirty-connection.h"
#include "dirty-error-private.h"
#include "dirty-log.h"
#include "dirty-message.h"
#include "dirty-socket.h"
#include "dirty-unit-launcher.h"
#include "dirty-util.h"
#include "dirty-worker-proc.h"

#define SYSTEMD_NAME     "org.freedesktop.systemd1"
#define SYSTEMD_PATH     "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER  "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT     "org.freedesktop.systemd1.Unit"
#define UNIT_PREFIX      "dirty-worker@"
#define UNIT_SUFFIX      ".service"
#define WAIT_POLL_MS     100
/* Workers connect once each, at start: a batch is rarely more than one */
#define ACCEPT_BATCH     8
/* A unit that is still not inactive after this long is reported as gone
 * anyway: the slot must not wait forever on a manager that is stuck. */
#define WAIT_LIMIT_US    (30 * G_USEC_PER_SEC)

struct _DirtyUnitLauncher
{
  GObject          parent_instance;

  GDBusConnection *bus;
  GSocket         *listener;
  DirtyBoundPath   bound;         /* unlinked on dispose */
  DirtyAcceptor   *acceptor;      /* of the listener */
  DirtyLimits      limits;
  GHashTable      *expected;      /* worker id -> DirtyWorkerProc (unowned) */
};

G_DEFINE_TYPE (DirtyUnitLauncher, dirty_unit_launcher, G_TYPE_OBJECT)

static void
dirty_unit_launcher_dispose (GObject *object)
{
  DirtyUnitLauncher *self = DIRTY_UNIT_LAUNCHER (object);

  g_clear_pointer (&self->acceptor, dirty_acceptor_free);
  if (self->listener != NULL)
    g_socket_close (self->listener, NULL);
  g_clear_object (&self->listener);
  dirty_util_bound_path_remove (&self->bound);
  g_clear_object (&self->bus);
  G_OBJECT_CLASS (dirty_unit_launcher_parent_class)->dispose (object);
}

static void
dirty_unit_launcher_finalize (GObject *object)
{
  DirtyUnitLauncher *self = DIRTY_UNIT_LAUNCHER (object);

  g_hash_table_unref (self->expected);
  G_OBJECT_CLASS (dirty_unit_launcher_parent_class)->finalize (object);
}

static void
dirty_unit_launcher_class_init (DirtyUnitLauncherClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = dirty_unit_launcher_dispose;
  object_class->finalize = dirty_unit_launcher_finalize;
}

static void
dirty_unit_launcher_init (DirtyUnitLauncher *self)
{
  self->expected = g_hash_table_new (NULL, NULL);
}

char *
dirty_unit_launcher_default_socket (const char *main_socket)
{
  const char *runtime = g_getenv ("RUNTIME_DIRECTORY");
  g_autofree char *dir = NULL;

  /* RuntimeDirectory= is private to the service's user (0750/0700) and
   * removed on stop: the right home for a socket only its workers use.
   * systemd may list several directories, separated by ':'. */
  if (runtime != NULL && *runtime != '\0')
    {
      g_auto(GStrv) dirs = g_strsplit (runtime, ":", 2);

      return g_build_filename (dirs[0], "workers.sock", NULL);
    }
  dir = g_path_get_dirname (main_socket);
  return g_build_filename (dir, "dirty-arbiter-workers.sock", NULL);
}

char *
dirty_unit_launcher_unit_name (guint worker_id)
{
  return g_strdup_printf (UNIT_PREFIX "%u" UNIT_SUFFIX, worker_id);
}

/* The bus of the manager that runs us: a user manager sets $MANAGERPID;
 * the system manager sets $INVOCATION_ID only. By hand: root means the
 * system manager, anyone else their own. */
static GBusType
manager_bus_type (void)
{
  if (g_getenv ("MANAGERPID") != NULL)
    return G_BUS_TYPE_SESSION;
  if (g_getenv ("INVOCATION_ID") != NULL || geteuid () == 0)
    return G_BUS_TYPE_SYSTEM;
  return G_BUS_TYPE_SESSION;
}

static GSocket *
bind_worker_socket (const char  *path,
                    GError     **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autofree char *dir = g_path_get_dirname (path);
  struct stat st;

  if (!dirty_socket_check_path (path, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  /* only we use this path: a leftover socket is stale (the main socket's
   * check for a live arbiter has already run) */
  if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
    unlink (path);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "cannot create %s: %s", dir, g_strerror (saved_errno));
      return NULL;
    }
  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;
  if (!g_socket_bind (socket, address, FALSE, error) || !g_socket_listen (socket, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  /* the workers run as our user; nobody else may even try */
  if (chmod (path, 0600) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "chmod %s: %s", path, g_strerror (saved_errno));
      return NULL;
    }
  g_socket_set_blocking (socket, FALSE);
  return g_steal_pointer (&socket);
}

static void dirty_unit_launcher_accept_cb (int      fd,
                                           gpointer user_data);

DirtyUnitLauncher *
dirty_unit_launcher_new (const char         *socket_path,
                         const DirtyLimits  *limits,
                         GError            **error)
{
  g_autoptr(DirtyUnitLauncher) self = g_object_new (DIRTY_TYPE_UNIT_LAUNCHER, NULL);

  self->limits = *limits;
  self->bus = g_bus_get_sync (manager_bus_type (), NULL, error);
  if (self->bus == NULL)
    {
      g_prefix_error (error, "worker_mode=unit needs the service manager's bus: ");
      return NULL;
    }
  self->listener = bind_worker_socket (socket_path, error);
  if (self->listener == NULL)
    return NULL;
  dirty_util_bound_path_set (&self->bound, socket_path);
  self->acceptor = dirty_acceptor_new (g_socket_get_fd (self->listener), ACCEPT_BATCH,
                                       "worker socket: ", dirty_unit_launcher_accept_cb, self);
  dirty_log (G_LOG_LEVEL_INFO, NULL, NULL, 0, 0, 0,
             "unit mode: workers are %s*%s units, connecting to %s",
             UNIT_PREFIX, UNIT_SUFFIX, socket_path);
  return g_steal_pointer (&self);
}

const char *
dirty_unit_launcher_get_socket (DirtyUnitLauncher *self)
{
  return self->bound.path;
}

void
dirty_unit_launcher_expect (DirtyUnitLauncher *self,
                            guint              worker_id,
                            DirtyWorkerProc   *proc)
{
  g_hash_table_insert (self->expected, GUINT_TO_POINTER (worker_id), proc);
}

void
dirty_unit_launcher_forget (DirtyUnitLauncher *self,
                            guint              worker_id,
                            DirtyWorkerProc   *proc)
{
  if (g_hash_table_lookup (self->expected, GUINT_TO_POINTER (worker_id)) == proc)
    g_hash_table_remove (self->expected, GUINT_TO_POINTER (worker_id));
}

/* ---- who is connecting ---- */

static char *unit_object_path (const char *unit);

/* The expected worker whose unit has the object path @path, or NULL */
static DirtyWorkerProc *
dirty_unit_launcher_find (DirtyUnitLauncher *self,
                          const char        *path)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->expected);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *unit = dirty_unit_launcher_unit_name (GPOINTER_TO_UINT (key));
      g_autofree char *unit_path = unit_object_path (unit);

      if (g_str_equal (unit_path, path))
        return value;
    }
  return NULL;
}

static void
rejected_closed_cb (DirtyConnection *connection,
                    const GError    *error,
                    gpointer         user_data)
{
  g_object_unref (connection);
}

static void
rejected_frame_cb (DirtyConnection *connection,
                   DirtyFrame      *frame,
                   gpointer         user_data)
{
}

/* ERROR permission-denied to the peer, then close; and a journal record */
static void
dirty_unit_launcher_reject (DirtyUnitLauncher *self,
                            GSocket           *socket,
                            gint64             pid,
                            const GError      *why)
{
  g_autoptr(GError) error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PERMISSION_DENIED,
                                         "not a worker of this arbiter: %s", why->message);
  DirtyConnection *connection = dirty_connection_new (socket, &self->limits);

  dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, pid, 0,
             "worker socket: rejected a connection from pid %" G_GINT64_FORMAT ": %s",
             pid, why->message);
  /* the connection holds itself until it is closed */
  dirty_connection_start (connection, g_main_context_get_thread_default (),
                          rejected_frame_cb, rejected_closed_cb, NULL);
  dirty_connection_fail (connection, 0, error);
}

typedef struct {
  DirtyUnitLauncher *launcher;   /* (owned) */
  GSocket           *socket;     /* (owned) */
  gint64             pid;
  DirtyWorkerProc   *adopting;   /* (owned) (nullable): a handed-over connection's */
} PeerCheck;

static void
peer_check_free (PeerCheck *check)
{
  g_object_unref (check->launcher);
  g_object_unref (check->socket);
  g_clear_object (&check->adopting);
  g_free (check);
}

/* A connection that failed the check: a new one is refused with an
 * ERROR; a handed-over one's worker is killed (its unit is not what
 * the previous arbiter said), and its slot starts a new one. */
static void
peer_check_refuse (PeerCheck    *check,
                   const GError *why)
{
  g_autofree char *reason = NULL;

  if (check->adopting == NULL)
    {
      dirty_unit_launcher_reject (check->launcher, check->socket, check->pid, why);
      return;
    }
  reason = g_strdup_printf ("handoff: its connection failed the unit check: %s", why->message);
  dirty_worker_proc_kill (check->adopting, reason);
}

/* The manager's answer: which unit the peer's pid belongs to. Accepted
 * only when that is dirty-worker@N.service for a worker N we started and
 * that has not connected yet. */
static void
unit_by_pid_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  PeerCheck *check = user_data;
  DirtyUnitLauncher *self = check->launcher;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source),
                                                             result, &error);
  DirtyWorkerProc *proc = NULL;
  const char *path = NULL;

  if (reply != NULL)
    {
      g_variant_get (reply, "(&o)", &path);
      proc = dirty_unit_launcher_find (self, path);
      /* a handed-over connection belongs to the worker it was stored as */
      if (check->adopting != NULL && proc != check->adopting)
        proc = NULL;
      if (proc == NULL)
        error = g_error_new (DIRTY_ERROR, DIRTY_ERROR_PERMISSION_DENIED,
                             "pid %" G_GINT64_FORMAT " runs in %s, not in a worker unit "
                             "this arbiter is waiting for", check->pid, path);
    }
  else
    g_dbus_error_strip_remote_error (error);
  if (proc == NULL)
    peer_check_refuse (check, error);
  else
    {
      g_hash_table_remove (self->expected,
                           GUINT_TO_POINTER (dirty_worker_proc_get_id (proc)));
      dirty_worker_proc_attach (proc, check->socket, check->pid);
    }
  peer_check_free (check);
}

/* SO_PEERCRED gives the pid; systemd says whose cgroup it is in
 * (GetUnitByPID). Not /proc/PID/cgroup: the worker's PrivateUsers= and
 * our ProtectProc=invisible hide its /proc entry from us, and asking the
 * manager needs no loosening of either sandbox. */
static void
dirty_unit_launcher_handle (DirtyUnitLauncher *self,
                            GSocket           *socket,
                            DirtyWorkerProc   *adopting)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCredentials) credentials = g_socket_get_credentials (socket, &error);
  PeerCheck *check = g_new0 (PeerCheck, 1);
  gint64 pid = credentials != NULL ? g_credentials_get_unix_pid (credentials, &error) : -1;

  check->launcher = g_object_ref (self);
  check->socket = g_object_ref (socket);
  check->pid = pid;
  check->adopting = adopting != NULL ? g_object_ref (adopting) : NULL;
  if (pid <= 0)
    {
      peer_check_refuse (check, error);
      peer_check_free (check);
      return;
    }
  g_dbus_connection_call (self->bus, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER,
                          "GetUnitByPID", g_variant_new ("(u)", (guint32) pid),
                          G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          unit_by_pid_cb, check);
}

static void
dirty_unit_launcher_accept_cb (int      fd,
                               gpointer user_data)
{
  DirtyUnitLauncher *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd (fd, &error);

  if (socket == NULL)
    {
      close (fd);
      dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0,
                 "worker socket: accept: %s", error->message);
      return;
    }
  dirty_unit_launcher_handle (self, socket, NULL);
}

void
dirty_unit_launcher_check (DirtyUnitLauncher *self,
                           GSocket           *socket,
                           DirtyWorkerProc   *proc)
{
  dirty_unit_launcher_handle (self, socket, proc);
}

/* ---- the manager's D-Bus API ---- */

typedef struct {
  DirtyUnitLauncher *launcher;     /* (owned) */
  DirtyWorkerProc   *proc;         /* (owned) (nullable) */
  char              *method;
  char              *unit;
} CallData;

static void
call_data_free (CallData *data)
{
  g_clear_object (&data->launcher);
  g_clear_object (&data->proc);
  g_free (data->method);
  g_free (data->unit);
  g_free (data);
}

static void
manager_call_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  CallData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source),
                                                             result, &error);

  if (reply == NULL)
    {
      g_autofree char *message = NULL;

      g_dbus_error_strip_remote_error (error);
      message = g_strdup_printf ("%s %s: %s", data->method, data->unit, error->message);
      if (data->proc != NULL)
        dirty_worker_proc_kill (data->proc, message);   /* it will never connect */
      else
        dirty_log (G_LOG_LEVEL_WARNING, NULL, NULL, 0, 0, 0, "unit mode: %s", message);
    }
  call_data_free (data);
}

static void
manager_call (DirtyUnitLauncher *self,
              DirtyWorkerProc   *proc,
              const char        *method,
              const char        *unit,
              GVariant          *parameters)
{
  CallData *data = g_new0 (CallData, 1);

  data->launcher = g_object_ref (self);
  data->proc = proc != NULL ? g_object_ref (proc) : NULL;
  data->method = g_strdup (method);
  data->unit = g_strdup (unit);
  dirty_log (G_LOG_LEVEL_DEBUG, NULL, NULL, 0, 0, 0, "unit mode: %s %s", method, unit);
  g_dbus_connection_call (self->bus, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, method,
                          parameters, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          manager_call_cb, data);
}

static void
start_when_inactive_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  DirtyUnitLauncher *self = DIRTY_UNIT_LAUNCHER (source);
  g_autoptr(DirtyWorkerProc) proc = user_data;
  g_autofree char *unit = dirty_unit_launcher_unit_name (dirty_worker_proc_get_id (proc));

  dirty_unit_launcher_wait_inactive_finish (self, result, NULL);
  /* killed meanwhile (the heartbeat timeout, a stop) */
  if (dirty_worker_proc_get_state (proc) != DIRTY_WORKER_PROC_STARTING)
    return;
  manager_call (self, proc, "StartUnit", unit, g_variant_new ("(ss)", unit, "replace"));
}

/* StartUnit on a unit that is still active is a no-op: the worker of a
 * previous arbiter may still be on its way out (it exits when its
 * connection closes), so the start waits until its unit is inactive. */
void
dirty_unit_launcher_start_unit (DirtyUnitLauncher *self,
                                DirtyWorkerProc   *proc)
{
  dirty_unit_launcher_wait_inactive_async (self, dirty_worker_proc_get_id (proc),
                                           start_when_inactive_cb, g_object_ref (proc));
}

void
dirty_unit_launcher_stop_unit (DirtyUnitLauncher *self,
                               guint              worker_id)
{
  g_autofree char *unit = dirty_unit_launcher_unit_name (worker_id);

  manager_call (self, NULL, "StopUnit", unit, g_variant_new ("(ss)", unit, "replace"));
}

void
dirty_unit_launcher_kill_unit (DirtyUnitLauncher *self,
                               guint              worker_id,
                               int                signum)
{
  g_autofree char *unit = dirty_unit_launcher_unit_name (worker_id);

  manager_call (self, NULL, "KillUnit", unit, g_variant_new ("(ssi)", unit, "all", signum));
}

/* ---- waiting for a unit to end ---- */

typedef struct {
  char   *object_path;
  gint64  give_up;
  guint   poll_source;
} WaitData;

static void
wait_data_free (WaitData *data)
{
  g_clear_handle_id (&data->poll_source, g_source_remove);
  g_free (data->object_path);
  g_free (data);
}

static void wait_poll (GTask *task);

static gboolean
wait_poll_cb (gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  WaitData *data = g_task_get_task_data (task);

  data->poll_source = 0;
  wait_poll (task);
  return G_SOURCE_REMOVE;
}

static void
wait_state_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  WaitData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source),
                                                             result, &error);
  g_autoptr(GVariant) value = NULL;
  const char *state = NULL;

  if (reply != NULL)
    {
      g_variant_get (reply, "(v)", &value);
      state = g_variant_get_string (value, NULL);
    }
  /* gone, or the manager cannot tell: either way nothing is left to wait for */
  if (reply == NULL || g_str_equal (state, "inactive") || g_str_equal (state, "failed") ||
      g_get_monotonic_time () > data->give_up)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  data->poll_source = g_timeout_add (WAIT_POLL_MS, wait_poll_cb, g_steal_pointer (&task));
}

static void
wait_poll (GTask *task)
{
  DirtyUnitLauncher *self = g_task_get_source_object (task);
  WaitData *data = g_task_get_task_data (task);

  g_dbus_connection_call (self->bus, SYSTEMD_NAME, data->object_path,
                          "org.freedesktop.DBus.Properties", "Get",
                          g_variant_new ("(ss)", SYSTEMD_UNIT, "ActiveState"),
                          G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          wait_state_cb, g_object_ref (task));
}

/* The manager's object path of a unit: /org/freedesktop/systemd1/unit/
 * and the name, escaped as sd_bus_path_encode() does (every byte but
 * [A-Za-z0-9] as _xx). Asking for it loads the unit if need be. */
static char *
unit_object_path (const char *unit)
{
  GString *path = g_string_new (SYSTEMD_PATH "/unit/");

  for (const char *p = unit; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p))
        g_string_append_c (path, *p);
      else
        g_string_append_printf (path, "_%02x", (guchar) *p);
    }
  return g_string_free (path, FALSE);
}

void
dirty_unit_launcher_wait_inactive_async (DirtyUnitLauncher   *self,
                                         guint                worker_id,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, NULL, callback, user_data);
  g_autofree char *unit = dirty_unit_launcher_unit_name (worker_id);
  WaitData *data = g_new0 (WaitData, 1);

  g_task_set_source_tag (task, dirty_unit_launcher_wait_inactive_async);
  data->object_path = unit_object_path (unit);
  data->give_up = g_get_monotonic_time () + WAIT_LIMIT_US;
  g_task_set_task_data (task, data, (GDestroyNotify) wait_data_free);
  wait_poll (task);
}

gboolean
dirty_unit_launcher_wait_inactive_finish (DirtyUnitLauncher  *self,
                                          GAsyncResult       *result,
                                          GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
