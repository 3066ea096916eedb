/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The memory floor of the idle-RSS figures: a process that links what the
 * arbiter links (GLib, GIO, json-glib), touches each library once, and
 * idles in a main loop. Its RSS is mostly the shared libraries'
 * pages, which any such process has; dirty-bench-conns measures it. */
#include "config.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

int
main (void)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(JsonNode) node = json_from_string ("{}", NULL);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_DEFAULT, NULL);

  g_main_loop_run (loop);
  return 0;
}
