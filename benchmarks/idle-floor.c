/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The memory floor of the idle-RSS figures: a process that links what the
 * arbiter links (GLib, GIO, json-glib), touches each library once, and
 * idles in a main loop. Its RSS is mostly the shared libraries' pages,
 * which any such process has; dirty-bench-conns measures it.
 *
 * Built in layers (meson.build), each linking one library more, so the
 * floor shows what each library costs: IDLE_FLOOR_LAYER 0 links libc
 * only, 1 GLib, 2 GObject, 3 GIO and json-glib (the arbiter's). Layer 4
 * is layer 3 with GLib, GObject and GIO linked statically, and without
 * json-glib, which Debian ships as a shared library only. */
#include "config.h"

#include <unistd.h>

#if IDLE_FLOOR_LAYER >= 3
#include <gio/gio.h>
#endif
#if IDLE_FLOOR_LAYER == 3
#include <json-glib/json-glib.h>
#elif IDLE_FLOOR_LAYER >= 2
#include <glib-object.h>
#elif IDLE_FLOOR_LAYER >= 1
#include <glib.h>
#endif

int
main (void)
{
#if IDLE_FLOOR_LAYER >= 1
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
#endif
#if IDLE_FLOOR_LAYER >= 2
  g_autoptr(GObject) object = g_object_new (G_TYPE_OBJECT, NULL);
#endif
#if IDLE_FLOOR_LAYER == 3
  g_autoptr(JsonNode) node = json_from_string ("{}", NULL);
#endif
#if IDLE_FLOOR_LAYER >= 3
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_DEFAULT, NULL);
#endif

#if IDLE_FLOOR_LAYER >= 1
  g_main_loop_run (loop);
#else
  pause ();
#endif
  return 0;
}
