/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "dirty-be-private.h"
#include "dirty-worker-connect.h"

/* The frame header of docs/protocol.md ("Frames"); the worker links only
 * the public library, so the one frame read here is decoded by hand. */
#define HEADER_SIZE     32
#define FRAME_HELLO     1
#define FRAME_ERROR     6
/* settings are a few app names: anything bigger is not our arbiter */
#define MAX_BODY        (1024 * 1024)
/* the arbiter answers at once; a silent one is not there */
#define ANSWER_TIMEOUT_S 30

void
dirty_worker_settings_clear (DirtyWorkerSettings *settings)
{
  g_clear_pointer (&settings->apps, g_strfreev);
  g_clear_pointer (&settings->app_path, g_strfreev);
  g_clear_pointer (&settings->hooks, g_free);
}

static gboolean
read_exactly (int       fd,
              guint8   *buf,
              gsize     size,
              GError  **error)
{
  gsize done = 0;

  while (done < size)
    {
      ssize_t n = read (fd, buf + done, size - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                       _("the arbiter sent no settings: %s"),
                       n == 0 ? _("connection closed") : g_strerror (errno));
          return FALSE;
        }
      done += (gsize) n;
    }
  return TRUE;
}

static int
connect_to (const char  *path,
            GError     **error)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  struct timeval timeout = { .tv_sec = ANSWER_TIMEOUT_S };
  int fd;

  if (strlen (path) >= sizeof address.sun_path)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("--connect=%s: the path is too long"), path);
      return -1;
    }
  strcpy (address.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &address, sizeof address) < 0 ||
      setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("cannot connect to %s: %s"), path, g_strerror (saved_errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  return fd;
}

static GStrv
string_array (JsonObject *object,
              const char *member)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  JsonArray *array;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      const char *value = json_node_get_string (json_array_get_element (array, i));

      if (value == NULL)
        return NULL;
      g_strv_builder_add (builder, value);
    }
  return g_strv_builder_end (builder);
}

/* {"role": "arbiter", "worker_id", "threads", "apps": [...], "app_path": [...]} */
static gboolean
parse_settings (JsonObject           *object,
                DirtyWorkerSettings  *settings,
                GError              **error)
{
  gint64 id = json_object_get_int_member_with_default (object, "worker_id", -1);
  gint64 threads = json_object_get_int_member_with_default (object, "threads", -1);

  settings->apps = string_array (object, "apps");
  settings->app_path = string_array (object, "app_path");
  settings->hooks = g_strdup (json_object_get_string_member_with_default (object, "hooks", NULL));
  if (g_strcmp0 (json_object_get_string_member_with_default (object, "role", NULL), "arbiter") != 0 ||
      id < 1 || id > G_MAXUINT || threads < 1 || threads > 1024 ||
      settings->apps == NULL || settings->apps[0] == NULL || settings->app_path == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("the arbiter's settings are incomplete or invalid"));
      return FALSE;
    }
  settings->worker_id = (guint) id;
  settings->threads = (guint) threads;
  return TRUE;
}

/* The arbiter's first frame: HELLO with the settings, or ERROR */
static gboolean
read_settings (int                   fd,
               DirtyWorkerSettings  *settings,
               GError              **error)
{
  guint8 header[HEADER_SIZE];
  g_autofree guint8 *body = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  guint32 json_length, attachments_length;
  JsonNode *root;

  if (!read_exactly (fd, header, sizeof header, error))
    return FALSE;
  json_length = get_be32 (header + 20);
  attachments_length = get_be32 (header + 24);
  if (get_be32 (header) != 0x44495254u || header[4] != 1 ||
      (header[5] != FRAME_HELLO && header[5] != FRAME_ERROR) ||
      json_length == 0 || json_length > MAX_BODY || attachments_length != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("the worker socket did not answer with the arbiter's settings"));
      return FALSE;
    }
  body = g_malloc (json_length);
  if (!read_exactly (fd, body, json_length, error) ||
      !json_parser_load_from_data (parser, (const char *) body, json_length, error))
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("the arbiter's settings are not a JSON object"));
      return FALSE;
    }
  if (header[5] == FRAME_ERROR)
    {
      JsonObject *object = json_node_get_object (root);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("the arbiter refused this worker: %s: %s"),
                   json_object_get_string_member_with_default (object, "code", "?"),
                   json_object_get_string_member_with_default (object, "message", ""));
      return FALSE;
    }
  return parse_settings (json_node_get_object (root), settings, error);
}

int
dirty_worker_connect (const char           *path,
                      guint                 expected_id,
                      DirtyWorkerSettings  *settings,
                      GError              **error)
{
  struct timeval no_timeout = { 0 };
  int fd = connect_to (path, error);

  if (fd < 0)
    return -1;
  if (!read_settings (fd, settings, error))
    {
      close (fd);
      return -1;
    }
  if (expected_id != 0 && settings->worker_id != expected_id)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("the arbiter says this is worker %u, not %u"),
                   settings->worker_id, expected_id);
      close (fd);
      return -1;
    }
  /* from here on heartbeats and calls flow at any pace */
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &no_timeout, sizeof no_timeout);
  return fd;
}
