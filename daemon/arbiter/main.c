/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <signal.h>

#include "dirty-arbiter.h"
#include "dirty-config.h"
#include "dirty-hooks-module.h"
#include "dirty-log.h"
#include "dirty-poller.h"
#include "dirty-util.h"

/* Exit status: 0 ok, 1 bad config or usage (or another arbiter owns the
 * socket), 2 the service cannot run. */
enum {
  EXIT_OK = 0,
  EXIT_CONFIG = 1,
  EXIT_RUNTIME = 2,
};

static void
on_finished (DirtyArbiter *arbiter,
             GMainLoop    *loop)
{
  g_main_loop_quit (loop);
}

/* hooks_module: the arbiter-side hooks follow the arbiter's signals */
static void
on_starting (DirtyArbiter *arbiter,
             GVariant     *facts,
             DirtyHooks   *hooks)
{
  dirty_hooks_call (hooks, "on_dirty_starting", g_variant_ref (facts));
}

static void
on_worker_exited (DirtyArbiter *arbiter,
                  GVariant     *facts,
                  DirtyHooks   *hooks)
{
  dirty_hooks_call (hooks, "dirty_worker_exit", g_variant_ref (facts));
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(DirtyConfig) config = NULL;
  g_autoptr(DirtyHooks) hooks = NULL;   /* outlives the arbiter */
  g_autoptr(DirtyArbiter) arbiter = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GError) error = NULL;

  setlocale (LC_ALL, "");
  /* DIRTY_LOCALEDIR: the catalogues of an uninstalled build (tests) */
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("DIRTY_LOCALEDIR") ? g_getenv ("DIRTY_LOCALEDIR")
                                                                 : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("dirty-arbiter");
  dirty_log_init ();
  /* a client that hangs up must not kill the daemon */
  signal (SIGPIPE, SIG_IGN);
  dirty_util_raise_fd_limit ();
  /* first, while the loop polls nothing but its wakeup: each wake-up is
   * then one epoll_wait () (the listener and every connection are in
   * the connections' epoll set) */
  dirty_poller_own_context (g_main_context_default ());

  config = dirty_config_new ();
  if (!dirty_config_parse_command_line (config, argv, &error))
    {
      g_printerr ("dirty-arbiter: %s\n", error->message);
      return EXIT_CONFIG;
    }
  if (dirty_config_get_show_version (config))
    {
      g_print ("dirty-arbiter %s\n", PACKAGE_VERSION);
      return EXIT_OK;
    }

  if (dirty_config_get_hooks_module (config) != NULL)
    {
      hooks = dirty_hooks_load (dirty_config_get_hooks_module (config), &error);
      if (hooks == NULL)
        {
          g_printerr ("dirty-arbiter: hooks_module: %s\n", error->message);
          return EXIT_CONFIG;
        }
    }

  loop = g_main_loop_new (NULL, FALSE);
  arbiter = dirty_arbiter_new (config);
  if (hooks != NULL)
    {
      g_signal_connect (arbiter, "starting", G_CALLBACK (on_starting), hooks);
      g_signal_connect (arbiter, "worker-exited", G_CALLBACK (on_worker_exited), hooks);
    }
  if (!dirty_arbiter_start (arbiter, &error))
    {
      g_printerr ("dirty-arbiter: %s\n", error->message);
      return g_error_matches (error, DIRTY_ARBITER_ERROR, DIRTY_ARBITER_ERROR_ALREADY_RUNNING)
               ? EXIT_CONFIG : EXIT_RUNTIME;
    }
  g_signal_connect (arbiter, "finished", G_CALLBACK (on_finished), loop);
  g_main_loop_run (loop);
  return EXIT_OK;
}
