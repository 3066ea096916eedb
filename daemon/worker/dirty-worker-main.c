/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirty-worker: loads apps and serves their calls for dirty-arbiter on an
 * inherited socket. The arbiter starts it; people rarely do. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n.h>
#include <glib-unix.h>

#include <dirty.h>

#include "dirty-hooks-module.h"
#include "dirty-worker-connect.h"

#define EXIT_USAGE 2

typedef struct {
  int fd;
  int worker_id;
  int threads;
  int arbiter_pid;
  char **app_path;
  char **apps;
  char *connect;
  char *hooks;
  gboolean version;
} Options;

static void
options_clear (Options *options)
{
  g_strfreev (options->app_path);
  g_strfreev (options->apps);
  g_free (options->connect);
  g_free (options->hooks);
}

static gboolean
parse_options (Options   *options,
               int       *argc,
               char    ***argv,
               GError   **error)
{
  const GOptionEntry entries[] = {
    { "fd", 0, 0, G_OPTION_ARG_INT, &options->fd,
      N_("The connected stream socket to the arbiter (required)"), N_("FD") },
    { "worker-id", 0, 0, G_OPTION_ARG_INT, &options->worker_id,
      N_("This worker's number, for HELLO and logs (default 0)"), N_("K") },
    { "threads", 0, 0, G_OPTION_ARG_INT, &options->threads,
      N_("Threads for blocking actions: that many calls run at once (default 1)"), N_("T") },
    { "app-path", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &options->app_path,
      N_("Look for app modules in DIR (repeatable, searched in order)"), N_("DIR") },
    { "app", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options->apps,
      N_("Load the app MODULE:TypeName, e.g. echo:DirtyEchoApp (repeatable, "
         "at least one)"), N_("NAME") },
    { "connect", 0, 0, G_OPTION_ARG_FILENAME, &options->connect,
      N_("Unit mode: connect to the arbiter's worker socket PATH instead of --fd; "
         "the arbiter sends the apps, threads and app path"), N_("PATH") },
    { "arbiter-pid", 0, 0, G_OPTION_ARG_INT, &options->arbiter_pid,
      N_("Exit when this process is no longer the parent"), N_("PID") },
    { "hooks", 0, 0, G_OPTION_ARG_FILENAME, &options->hooks,
      N_("Call the dirty_post_fork and dirty_worker_init hooks of the module PATH"),
      N_("PATH") },
    { "version", 0, 0, G_OPTION_ARG_NONE, &options->version,
      N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);

  g_option_context_set_summary (context,
    _("Load dirty-arbiter apps and serve their calls on a socket inherited\n"
      "from the arbiter. The arbiter starts this program; it is not meant to\n"
      "be run by hand."));
  g_option_context_set_description (context,
    _("Each --app is loaded from a shared module: MODULE is looked up as\n"
      "MODULE.so, then libMODULE.so, in each --app-path directory, then in\n"
      "the directories of $DIRTY_APP_PATH (colon-separated), then in\n"
      "  " DIRTY_APPDIR "\n"
      "MODULE may also be an absolute path to a .so file.\n"
      "The module must export <type_name>_get_type() for a DirtyApp\n"
      "subclass, e.g. dirty_echo_app_get_type for DirtyEchoApp.\n"
      "\n"
      "An app that cannot be loaded is reported to the arbiter as\n"
      "unavailable; one whose init() fails is retried with backoff.\n"
      "\n"
      "The worker exits with status 0 when the arbiter closes the socket,\n"
      "on SIGTERM or SIGINT (after cancelling the calls in flight and\n"
      "closing its apps), or when the --arbiter-pid process is gone.\n"
      "It exits with status 2 on bad options, 1 if it cannot start.\n"
      "\n"
      "Example:\n"
      "  dirty-worker --fd=3 --worker-id=1 --threads=4 --app=echo:DirtyEchoApp"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  return g_option_context_parse (context, argc, argv, error);
}

/* Unit mode: the socket and the id come from the unit; the rest from the
 * arbiter. */
static gboolean
check_connect_options (Options  *options,
                       GError  **error)
{
  if (options->fd >= 0 || options->apps != NULL || options->arbiter_pid > 0)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("--connect does not go with --fd, --app or --arbiter-pid"));
      return FALSE;
    }
  if (options->worker_id < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--worker-id=%d must not be negative"), options->worker_id);
      return FALSE;
    }
  return TRUE;
}

/* --connect: replaces the options the arbiter decides with its settings */
static gboolean
connect_to_arbiter (Options  *options,
                    GError  **error)
{
  DirtyWorkerSettings settings = { 0 };

  options->fd = dirty_worker_connect (options->connect, (guint) options->worker_id,
                                      &settings, error);
  if (options->fd < 0)
    {
      dirty_worker_settings_clear (&settings);
      return FALSE;
    }
  options->worker_id = (int) settings.worker_id;
  options->threads = (int) settings.threads;
  g_strfreev (options->apps);
  options->apps = g_steal_pointer (&settings.apps);
  /* the arbiter's dirty_app_path, then any --app-path of the unit */
  if (options->app_path != NULL)
    {
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

      g_strv_builder_addv (builder, (const char **) settings.app_path);
      g_strv_builder_addv (builder, (const char **) options->app_path);
      g_strfreev (options->app_path);
      options->app_path = g_strv_builder_end (builder);
    }
  else
    options->app_path = g_steal_pointer (&settings.app_path);
  if (settings.hooks != NULL)
    {
      g_free (options->hooks);
      options->hooks = g_steal_pointer (&settings.hooks);
    }
  dirty_worker_settings_clear (&settings);
  return TRUE;
}

/* Bad options get a message and status 2, never a crash. */
static gboolean
check_options (Options  *options,
               GError  **error)
{
  struct stat st;

  if (options->connect != NULL)
    return check_connect_options (options, error);
  if (options->fd < 0)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("--fd=FD is required (the socket to the arbiter)"));
      return FALSE;
    }
  if (fstat (options->fd, &st) < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--fd=%d is not an open file descriptor: %s"),
                   options->fd, g_strerror (errno));
      return FALSE;
    }
  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--fd=%d is not a socket"), options->fd);
      return FALSE;
    }
  if (options->worker_id < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--worker-id=%d must not be negative"), options->worker_id);
      return FALSE;
    }
  if (options->threads < 1 || options->threads > 1024)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--threads=%d must be between 1 and 1024"), options->threads);
      return FALSE;
    }
  if (options->apps == NULL || options->apps[0] == NULL)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("No app given: use --app=MODULE:TypeName at least once"));
      return FALSE;
    }
  if (options->arbiter_pid < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--arbiter-pid=%d must be a process id"), options->arbiter_pid);
      return FALSE;
    }
  return TRUE;
}

/* --app-path dirs, then $DIRTY_APP_PATH, then the installed directory */
static char **
build_app_path (Options *options)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  const char *env = g_getenv ("DIRTY_APP_PATH");

  if (options->app_path)
    g_strv_builder_addv (builder, (const char **) options->app_path);
  if (env != NULL && env[0] != '\0')
    {
      g_auto(GStrv) dirs = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      g_strv_builder_addv (builder, (const char **) dirs);
    }
  g_strv_builder_add (builder, DIRTY_APPDIR);
  return g_strv_builder_end (builder);
}

/* The facts of the worker-side hooks (dirty-hooks.h) */
static GVariant *
worker_facts (Options *options)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "pid", "x", (gint64) getpid ());
  /* a forked worker's parent is the arbiter; a unit's is systemd */
  g_variant_dict_insert (&dict, "arbiter_pid", "x",
                         (gint64) (options->connect == NULL ? getppid () : 0));
  g_variant_dict_insert (&dict, "worker_id", "u", (guint32) options->worker_id);
  g_variant_dict_insert_value (&dict, "apps",
                               g_variant_new_strv ((const char * const *) options->apps, -1));
  return g_variant_dict_end (&dict);
}

static void
worker_init_cb (DirtyWorker *worker,
                gpointer     user_data)
{
  Options *options = user_data;

  dirty_hooks_call (g_object_get_data (G_OBJECT (worker), "dirty-hooks"),
                    DIRTY_HOOK_DIRTY_WORKER_INIT, worker_facts (options));
}

/* The arbiter normally takes us down with PR_SET_PDEATHSIG and by closing
 * the socket; this catches the case where neither reaches us. */
typedef struct {
  DirtyWorker *worker;
  pid_t arbiter_pid;
  guint source_id;
} ParentWatch;

static gboolean
check_parent_cb (gpointer user_data)
{
  ParentWatch *watch = user_data;

  if (getppid () != watch->arbiter_pid)
    {
      g_message ("The arbiter (pid %d) is gone; shutting down", (int) watch->arbiter_pid);
      dirty_worker_stop (watch->worker);
      watch->source_id = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* SIGTERM and SIGINT stay blocked until dirty_worker_run () has its
 * handlers in place (the arbiter starts a worker so already, in its
 * child_setup; systemd and a shell do not): told to stop while it loads
 * its apps, the worker stops once it can, in order. And GLib keeps its
 * handler for a signal while any source for it exists, restoring the
 * default action when the last one goes: the two held here, never
 * attached nor freed, outlive the worker's own, so a stop signal that
 * comes while the worker exits (the arbiter signals a worker it retired
 * once more when it stops itself) is absorbed, not fatal. */
static GSource *stop_signal_holds[2];

static void
hold_stop_signals (void)
{
  sigset_t stop;

  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  pthread_sigmask (SIG_BLOCK, &stop, NULL);
  stop_signal_holds[0] = g_unix_signal_source_new (SIGTERM);
  stop_signal_holds[1] = g_unix_signal_source_new (SIGINT);
}

int
main (int   argc,
      char *argv[])
{
  Options options = { .fd = -1, .worker_id = 0, .threads = 1 };
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyWorker) worker = NULL;
  g_auto(GStrv) app_path = NULL;
  g_autoptr(DirtyHooks) hooks = NULL;
  ParentWatch watch = { NULL, 0, 0 };
  int status;

  hold_stop_signals ();
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("DIRTY_LOCALEDIR") ? g_getenv ("DIRTY_LOCALEDIR")
                                                                 : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("dirty-worker");

  if (!parse_options (&options, &argc, &argv, &error) ||
      (!options.version && !check_options (&options, &error)))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      g_printerr (_("Try “%s --help” for more information.\n"), g_get_prgname ());
      options_clear (&options);
      return EXIT_USAGE;
    }
  if (options.version)
    {
      g_print ("dirty-worker %s\n", PACKAGE_VERSION);
      options_clear (&options);
      return EXIT_SUCCESS;
    }

  if (options.connect != NULL && !connect_to_arbiter (&options, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      options_clear (&options);
      return EXIT_FAILURE;
    }

  /* Apps that spawn programs must not hand them our socket. */
  fcntl (options.fd, F_SETFD, FD_CLOEXEC);

  /* dirty_post_fork: before any app is instantiated. A module the
   * arbiter could load but we cannot is logged, not fatal: the arbiter
   * would only respawn us in a loop. */
  if (options.hooks != NULL)
    {
      g_autoptr(GError) hooks_error = NULL;

      hooks = dirty_hooks_load (options.hooks, &hooks_error);
      if (hooks == NULL)
        g_warning ("%s", hooks_error->message);
    }
  dirty_hooks_call (hooks, DIRTY_HOOK_DIRTY_POST_FORK, worker_facts (&options));

  worker = dirty_worker_new (options.threads);
  g_object_set_data (G_OBJECT (worker), "dirty-hooks", hooks);
  g_signal_connect (worker, "worker-init", G_CALLBACK (worker_init_cb), &options);
  app_path = build_app_path (&options);
  for (guint i = 0; options.apps[i]; i++)
    {
      g_autoptr(GError) load_error = NULL;

      /* Not fatal: the worker reports the app as unavailable, so the
       * arbiter can say why to every caller, and serves the others. */
      if (!dirty_worker_load_app (worker, options.apps[i],
                                  (const char * const *) app_path, &load_error))
        g_warning ("%s", load_error->message);
    }

  if (options.arbiter_pid > 0)
    {
      if (getppid () != options.arbiter_pid)
        {
          g_printerr (_("%s: the arbiter (pid %d) is not the parent process; exiting\n"),
                      g_get_prgname (), options.arbiter_pid);
          options_clear (&options);
          return EXIT_FAILURE;
        }
      watch.worker = worker;
      watch.arbiter_pid = options.arbiter_pid;
      watch.source_id = g_timeout_add_seconds (1, check_parent_cb, &watch);
    }

  /* Runs on the default main context, which the timer above is on. */
  status = dirty_worker_run (worker, options.fd, (guint) options.worker_id);
  g_clear_handle_id (&watch.source_id, g_source_remove);
  options_clear (&options);
  return status;
}
