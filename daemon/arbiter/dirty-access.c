/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty-access.h"
#include "dirty-config.h"
#include "dirty-error.h"
#include "dirty-message.h"
#include "dirty-poller.h"

/* How long a refused peer's socket stays open after the ERROR frame, so
 * that a request it already sent does not meet EPIPE before it reads why;
 * and how many such sockets may linger at once (more are closed at once). */
#define REFUSED_LINGER_S   2
#define REFUSED_MAX        64
#define REFUSED_READS_PER_TURN 4
#define NOBODY_UID         65534   /* the kernel's default overflowuid */

/* ---- names and ids ---- */

static gboolean
parse_id (const char *text,
          guint32    *out)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT32 - 1, &value, NULL))
    return FALSE;
  *out = (guint32) value;
  return TRUE;
}

static gboolean
resolve_user (const char  *item,
              uid_t       *out,
              GError     **error)
{
  struct passwd pwd, *result = NULL;
  char buf[4096];
  guint32 id;

  if (parse_id (item, &id))
    {
      *out = (uid_t) id;
      return TRUE;
    }
  if (getpwnam_r (item, &pwd, buf, sizeof buf, &result) != 0 || result == NULL)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("no user “%s” (a user name or a numeric uid)"), item);
      return FALSE;
    }
  *out = result->pw_uid;
  return TRUE;
}

gboolean
dirty_access_resolve_group (const char  *item,
                            gid_t       *out,
                            GError     **error)
{
  struct group grp, *result = NULL;
  char buf[8192];
  guint32 id;

  if (parse_id (item, &id))
    {
      *out = (gid_t) id;
      return TRUE;
    }
  if (getgrnam_r (item, &grp, buf, sizeof buf, &result) != 0 || result == NULL)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("no group “%s” (a group name or a numeric gid)"), item);
      return FALSE;
    }
  *out = result->gr_gid;
  return TRUE;
}

gboolean
dirty_access_resolve_users (char    **items,
                            GArray  **out,
                            GError  **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (uid_t));

  for (guint i = 0; items != NULL && items[i] != NULL; i++)
    {
      const char *item = g_strstrip (items[i]);
      uid_t uid;

      if (*item == '\0')
        continue;
      if (!resolve_user (item, &uid, error))
        return FALSE;
      g_array_append_val (ids, uid);
    }
  *out = g_steal_pointer (&ids);
  return TRUE;
}

gboolean
dirty_access_resolve_groups (char    **items,
                             GArray  **out,
                             GError  **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gid_t));

  for (guint i = 0; items != NULL && items[i] != NULL; i++)
    {
      const char *item = g_strstrip (items[i]);
      gid_t gid;

      if (*item == '\0')
        continue;
      if (!dirty_access_resolve_group (item, &gid, error))
        return FALSE;
      g_array_append_val (ids, gid);
    }
  *out = g_steal_pointer (&ids);
  return TRUE;
}

/* ---- the socket file ---- */

guint
dirty_access_default_socket_mode (void)
{
  return geteuid () == 0 ? 0660 : 0600;
}

gboolean
dirty_access_apply_socket (DirtyConfig  *config,
                           const char   *path,
                           GError      **error)
{
  int mode = dirty_config_get_socket_mode (config);
  gint64 group = dirty_config_get_socket_group (config);

  if (mode < 0)
    mode = (int) dirty_access_default_socket_mode ();
  if (group >= 0 && chown (path, (uid_t) -1, (gid_t) group) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("cannot give %s the group %lld (socket_group): %s"),
                   path, (long long) group, g_strerror (saved_errno));
      return FALSE;
    }
  if (chmod (path, (mode_t) mode) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("cannot give %s the mode %04o (socket_mode): %s"),
                   path, (guint) mode, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

/* ---- the peer ---- */

static gboolean
contains_id (GArray  *ids,
             guint32  id)
{
  for (guint i = 0; ids != NULL && i < ids->len; i++)
    if (g_array_index (ids, guint32, i) == id)
      return TRUE;
  return FALSE;
}

/* The peer's groups: the gid it connected with, plus the primary and
 * supplementary groups of its user's passwd entry. */
static gboolean
peer_in_groups (GArray *allowed,
                uid_t   uid,
                gid_t   gid)
{
  struct passwd pwd, *result = NULL;
  char buf[4096];
  int n = 64;
  g_autofree gid_t *groups = NULL;

  if (contains_id (allowed, gid))
    return TRUE;
  if (getpwuid_r (uid, &pwd, buf, sizeof buf, &result) != 0 || result == NULL)
    return FALSE;
  groups = g_new (gid_t, n);
  if (getgrouplist (result->pw_name, result->pw_gid, groups, &n) < 0)
    {
      /* n now says how many there are */
      g_free (groups);
      groups = g_new (gid_t, n);
      if (getgrouplist (result->pw_name, result->pw_gid, groups, &n) < 0)
        return FALSE;
    }
  for (int i = 0; i < n; i++)
    if (contains_id (allowed, groups[i]))
      return TRUE;
  return FALSE;
}

/* Whether every uid is mapped into this process's user namespace. Under
 * PrivateUsers=yes only root and the service's user are: every other peer
 * shows up as the overflow uid ("nobody") and cannot be told apart. */
static gboolean
all_uids_mapped (void)
{
  static int mapped = -1;

  if (mapped < 0)
    {
      g_autofree char *map = NULL;
      guint64 inside = 1, outside = 1, count = 0;

      mapped = !g_file_get_contents ("/proc/self/uid_map", &map, NULL, NULL) ||
               (sscanf (map, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                        &inside, &outside, &count) == 3 &&
                inside == 0 && outside == 0 && count == G_MAXUINT32);
    }
  return mapped;
}

/* A refused peer's socket, lingering: kept in `lingering`, oldest first;
 * as every one lingers as long, that is also the order of their
 * deadlines, so one timer, armed for the oldest, serves them all (when
 * the oldest leaves early, the timer finds nothing due and is armed for
 * the next). */
typedef struct {
  int         fd;
  DirtyWatch *watch;      /* in the connections' epoll set: no GSource */
  gint64      deadline;   /* monotonic µs */
  GList       link;       /* embedded: in `lingering` */
} Refused;

static GQueue lingering = G_QUEUE_INIT;
static GSource *linger_timer;   /* (nullable) armed, on the watches' context */

static void arm_linger_timer (void);

static void
refused_free (Refused *refused)
{
  g_queue_unlink (&lingering, &refused->link);
  dirty_watch_destroy (refused->watch);
  close (refused->fd);
  g_free (refused);
}

static gboolean
linger_timeout_cb (gpointer user_data)
{
  gint64 now = g_get_monotonic_time ();

  g_clear_pointer (&linger_timer, g_source_unref);
  while (lingering.head != NULL && ((Refused *) lingering.head->data)->deadline <= now)
    refused_free (lingering.head->data);
  arm_linger_timer ();
  return G_SOURCE_REMOVE;
}

/* The timer for the oldest lingering socket, if any */
static void
arm_linger_timer (void)
{
  gint64 wait_us;

  if (lingering.head == NULL)
    return;
  wait_us = ((Refused *) lingering.head->data)->deadline - g_get_monotonic_time ();
  linger_timer = g_timeout_source_new ((guint) CLAMP ((wait_us + 999) / 1000, 0,
                                                      REFUSED_LINGER_S * 1000));
  g_source_set_callback (linger_timer, linger_timeout_cb, NULL, NULL);
  /* the context of the watches (the connections'), not the global default */
  g_source_attach (linger_timer, g_main_context_get_thread_default ());
}

/* Reads and drops what the peer sends until it hangs up. */
static void
refused_ready_cb (GIOCondition condition,
                  gpointer     user_data)
{
  Refused *refused = user_data;
  char buf[4096];
  gssize n;
  guint reads = 0;

  /* a few reads a turn: a peer that keeps writing must not hold up the
   * loop (the watch is level-triggered and calls again) */
  do
    n = recv (refused->fd, buf, sizeof buf, MSG_DONTWAIT);
  while (n > 0 && ++reads < REFUSED_READS_PER_TURN);
  if (n > 0)
    return;
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
      (condition & (G_IO_HUP | G_IO_ERR)) != 0)
    refused_free (refused);
}

/* The ERROR frame for @error, encoded (header and body). The last one is
 * kept: the refusals of a flood repeat one message (at the cap the count
 * is the cap), and encoding each anew was a tenth of the arbiter's time
 * during a flood of 10,000 connects (perf). */
static GBytes *
refusal_bytes (const GError *error)
{
  static GBytes *last_bytes;
  static char *last_message;
  static int last_code;
  DirtyError code = error->domain == DIRTY_ERROR ? (DirtyError) error->code : DIRTY_ERROR_PROTOCOL;
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(GByteArray) bytes = NULL;
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  gsize body_length;
  const guint8 *body;

  if (last_bytes != NULL && last_code == (int) code && strcmp (last_message, error->message) == 0)
    return g_bytes_ref (last_bytes);
  frame = dirty_frame_new_error_literal (0, code, error->message);
  body = g_bytes_get_data (frame->body, &body_length);
  bytes = g_byte_array_sized_new (sizeof header + body_length);
  dirty_frame_header_write (&frame->header, header);
  g_byte_array_append (bytes, header, sizeof header);
  if (body_length > 0)
    g_byte_array_append (bytes, body, body_length);
  g_clear_pointer (&last_bytes, g_bytes_unref);
  g_free (last_message);
  last_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&bytes));
  last_message = g_strdup (error->message);
  last_code = (int) code;
  return g_bytes_ref (last_bytes);
}

void
dirty_access_refuse (int           fd,
                     const GError *error)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GMainContext) context = NULL;
  gsize length;
  const void *data;
  Refused *refused;

  if (fd < 0)
    return;
  bytes = refusal_bytes (error);
  data = g_bytes_get_data (bytes, &length);
  /* a fresh socket's buffer holds a small frame: no partial write */
  if (send (fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
      g_queue_get_length (&lingering) >= REFUSED_MAX)
    {
      close (fd);
      return;
    }
  shutdown (fd, SHUT_WR);
  refused = g_new0 (Refused, 1);
  refused->fd = fd;
  refused->deadline = g_get_monotonic_time () + REFUSED_LINGER_S * G_USEC_PER_SEC;
  refused->link.data = refused;
  /* the context the connections use: the poller is per context */
  context = g_main_context_ref_thread_default ();
  refused->watch = dirty_watch_new (context, fd, refused_ready_cb, refused);
  dirty_watch_set_events (refused->watch, G_IO_IN);
  g_queue_push_tail_link (&lingering, &refused->link);
  /* a timer whose context went away no longer counts */
  if (linger_timer != NULL && g_source_is_destroyed (linger_timer))
    g_clear_pointer (&linger_timer, g_source_unref);
  if (linger_timer == NULL)
    arm_linger_timer ();
}

gboolean
dirty_access_admit (DirtyConfig        *config,
                    const struct ucred *cred,
                    guint64             serial,
                    GError            **error)
{
  GArray *users = dirty_config_get_allowed_users (config);
  GArray *groups = dirty_config_get_allowed_groups (config);
  g_autofree char *uid_text = NULL;
  g_autofree char *pid_text = NULL;
  uid_t uid = (uid_t) -1;
  pid_t pid = -1;
  gboolean unmapped = FALSE;

  if ((users == NULL || users->len == 0) && (groups == NULL || groups->len == 0))
    return TRUE;
  if (cred != NULL)
    {
      uid = cred->uid;
      pid = cred->pid;
      /* "nobody" here may be anyone: never let the overflow uid in */
      if (uid == NOBODY_UID && !all_uids_mapped ())
        unmapped = TRUE;
      else if (contains_id (users, uid) ||
               (groups != NULL && groups->len > 0 && peer_in_groups (groups, uid, cred->gid)))
        return TRUE;
    }

  /* English on purpose: the journal's text is what operators grep for.
   * Fields other than MESSAGE are plain strings. */
  uid_text = g_strdup_printf ("%d", (int) uid);
  pid_text = g_strdup_printf ("%d", (int) pid);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                    "DIRTY_PEER_UID", uid_text,
                    "DIRTY_PEER_PID", pid_text,
                    "DIRTY_ERROR_CODE", "permission-denied",
                    "MESSAGE", "client %" G_GUINT64_FORMAT " (uid %d, pid %d) refused: %s",
                    serial, (int) uid, (int) pid,
                    cred == NULL ? "its credentials (SO_PEERCRED) could not be read"
                    : unmapped ? "its uid is not mapped into the arbiter's user namespace "
                                 "(PrivateUsers=yes?), so allowed_users and allowed_groups "
                                 "cannot tell who it is"
                    : "not in allowed_users or allowed_groups");
  /* on the wire in English: the arbiter does not know the client's language */
  if (unmapped)
    g_set_error_literal (error, DIRTY_ERROR, DIRTY_ERROR_PERMISSION_DENIED,
                         "the arbiter cannot tell who you are: it runs in a user namespace "
                         "(PrivateUsers=yes) and has allowed_users / allowed_groups set");
  else
    g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_PERMISSION_DENIED,
                 "uid %d may not use this arbiter: it is in neither "
                 "allowed_users nor allowed_groups", (int) uid);
  return FALSE;
}
