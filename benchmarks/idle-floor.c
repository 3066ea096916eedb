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
 * json-glib, which Debian ships as a shared library only.
 *
 * Layer 5 links GLib and GObject only, as layer 2, but starts as an
 * arbiter does, with what GLib itself offers for it instead of GIO and
 * json-glib: the locale for translations, options and a key file,
 * signal sources, a listening Unix socket, a child process watched, a log
 * record. It is the floor of an arbiter rewritten without GIO and
 * json-glib, before any code of its own. */
#include "config.h"

#include <unistd.h>

#if IDLE_FLOOR_LAYER == 5
#include <glib-object.h>
#include <glib-unix.h>
#include <libintl.h>
#include <locale.h>
#include <sys/socket.h>
#include <sys/un.h>
#elif IDLE_FLOOR_LAYER >= 3
#include <gio/gio.h>
#endif
#if IDLE_FLOOR_LAYER == 3
#include <json-glib/json-glib.h>
#elif IDLE_FLOOR_LAYER >= 2
#include <glib-object.h>
#elif IDLE_FLOOR_LAYER >= 1
#include <glib.h>
#endif

#if IDLE_FLOOR_LAYER == 5
static gboolean
on_signal (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static gboolean
on_listener (int fd, GIOCondition condition, gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static void
on_child (GPid pid, int status, gpointer data)
{
}

/* What an arbiter does at start that pulls in GLib's code: every step
 * fails harmlessly if the machine refuses it (the figure is memory). */
static void
start_as_an_arbiter (int argc, char **argv, GMainLoop *loop)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GKeyFile) config = g_key_file_new ();
  g_autofree char *dir = g_dir_make_tmp ("idle-floor-XXXXXX", NULL);
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  const char *child[] = { "/bin/cat", NULL };
  int workers = 1, listener, child_stdin;
  GOptionEntry entries[] = {
    { "workers", 'w', 0, G_OPTION_ARG_INT, &workers, "Workers", "N" },
    G_OPTION_ENTRY_NULL
  };
  GPid pid;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_parse (context, &argc, &argv, NULL);
  g_key_file_load_from_data (config, "[dirty-arbiter]\ndirty_workers=1\n", -1, 0, NULL);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_unix_signal_add (SIGHUP, on_signal, loop);
  g_unix_signal_add (SIGUSR1, on_signal, loop);

  listener = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  g_snprintf (address.sun_path, sizeof address.sun_path, "%s/socket", dir ? dir : "/tmp");
  if (bind (listener, (struct sockaddr *) &address, sizeof address) == 0 && listen (listener, 128) == 0)
    g_unix_fd_add (listener, G_IO_IN, on_listener, loop);
  if (dir != NULL)
    {
      unlink (address.sun_path);
      rmdir (dir);
    }

  /* a worker stand-in that ends with this process: its stdin closes */
  if (g_spawn_async_with_pipes_and_fds (NULL, child, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                        -1, -1, -1, NULL, NULL, 0, &pid, &child_stdin, NULL, NULL,
                                        NULL))
    g_child_watch_add (pid, on_child, loop);
  g_message ("idle floor: started as an arbiter, %d worker", workers);
}
#endif

int
main (int argc, char **argv)
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
#if IDLE_FLOOR_LAYER == 5
  start_as_an_arbiter (argc, argv, loop);
#elif IDLE_FLOOR_LAYER >= 3
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
