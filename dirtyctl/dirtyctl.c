/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtyctl: call, stream, watch and steer a dirty-arbiter from a shell. */
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dirtyctl.h"

char *dirtyctl_socket;

static const char socket_help[] = N_(
  "Environment:\n"
  "  DIRTY_ARBITER_SOCKET  the arbiter's socket when --socket is not given;\n"
  "                        without it: $XDG_RUNTIME_DIR/dirty-arbiter.sock for a\n"
  "                        user, /run/dirty-arbiter.sock for root\n");

static GOptionEntry socket_entries[] = {
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &dirtyctl_socket,
    N_("The arbiter's socket (default: $DIRTY_ARBITER_SOCKET, else the user or system socket)"),
    N_("PATH") },
  G_OPTION_ENTRY_NULL
};

typedef struct {
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *what;
} Verb;

static const Verb verbs[] = {
  { "call",    dirtyctl_call,    N_("call APP ACTION [ARG...]   call an action, print its result") },
  { "stream",  dirtyctl_stream,  N_("stream APP ACTION [ARG...] call an action, print its chunks as they come") },
  { "status",  dirtyctl_status,  N_("status                     workers, apps and counters (--json)") },
  { "metrics", dirtyctl_metrics, N_("metrics                    the same as OpenMetrics text") },
  { "workers", dirtyctl_workers, N_("workers add|remove N       start or stop N workers") },
  { "reload",  dirtyctl_reload,  N_("reload                     re-read the config, replace the workers") },
};

GOptionContext *
dirtyctl_context_new (const char   *parameters,
                      const char   *summary,
                      const char   *description,
                      GOptionEntry *entries)
{
  GOptionContext *context = g_option_context_new (parameters);
  /* @summary and @description are untranslated (N_()) texts */
  g_autofree char *full = g_strconcat (description ? _(description) : "",
                                       description ? "\n" : "",
                                       _(DIRTYCTL_EXIT_HELP), "\n", _(socket_help), NULL);

  g_option_context_set_summary (context, _(summary));
  g_option_context_set_description (context, full);
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, socket_entries, GETTEXT_PACKAGE);
  return context;
}

int
dirtyctl_usage (const char *format,
                ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("dirtyctl: %s\n", message);
  return DIRTYCTL_EXIT_USAGE;
}

gboolean
dirtyctl_parse (GOptionContext   *context,
                int              *argc,
                char           ***argv)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      dirtyctl_usage (_("%s (see “%s --help”)"), error->message, (*argv)[0]);
      return FALSE;
    }
  /* GLib leaves the "--" that ended the options in argv when an argument
   * after it starts with "-" (a negative number, the very case "--" is
   * for): the first one left is that "--", never an argument */
  for (int i = 1; i < *argc; i++)
    if (g_str_equal ((*argv)[i], "--"))
      {
        memmove (*argv + i, *argv + i + 1, (*argc - i) * sizeof (char *));
        (*argc)--;
        break;
      }
  return TRUE;
}

/* The errno of the first write to standard output that failed, 0 if
 * none did: by the time the verb ends, errno says something else. */
static int output_errno;

void
dirtyctl_set_output_error (GError **error)
{
  if (output_errno == 0)
    output_errno = errno;
  /* the reader has gone (dirtyctl stream ... | head): end as any tool
   * in a pipeline does, by SIGPIPE and without a word. GIO ignores the
   * signal process-wide once it made a socket, so it is raised here. */
  if (output_errno == EPIPE)
    {
      signal (SIGPIPE, SIG_DFL);
      raise (SIGPIPE);
    }
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (output_errno),
               _("cannot write to standard output: %s"), g_strerror (output_errno));
}

/* g_print ()'s (status, metrics), as GLib's own but noting a failure */
static void
print_handler (const char *text)
{
  if ((fputs (text, stdout) == EOF || fflush (stdout) != 0) && output_errno == 0)
    output_errno = errno;
}

/* What stdout still buffers is written now: a status lost to a full disk
 * must not exit 0. (A verb that failed has said why already.) */
static int
check_output (int status)
{
  g_autoptr(GError) error = NULL;

  if (fflush (stdout) != 0 && output_errno == 0)
    output_errno = errno;
  if (ferror (stdout) && output_errno == 0)
    output_errno = EIO;
  if (output_errno == 0 || status != DIRTYCTL_EXIT_OK)
    return status;
  dirtyctl_set_output_error (&error);
  g_printerr ("dirtyctl: %s\n", error->message);
  return DIRTYCTL_EXIT_USAGE;
}

DirtyClient *
dirtyctl_connect (GError **error)
{
  return dirty_client_new_sync (dirtyctl_socket, NULL, error);
}

static int
exit_code_for (const GError *error)
{
  if (error->domain != DIRTY_ERROR)
    return DIRTYCTL_EXIT_FAILED;
  switch ((DirtyError) error->code)
    {
    case DIRTY_ERROR_CONNECTION:
    case DIRTY_ERROR_PROTOCOL:
      return DIRTYCTL_EXIT_CONNECTION;
    case DIRTY_ERROR_APP_NOT_FOUND:
    case DIRTY_ERROR_ACTION_NOT_FOUND:
      return DIRTYCTL_EXIT_NOT_FOUND;
    case DIRTY_ERROR_TIMEOUT:
      return DIRTYCTL_EXIT_TIMEOUT;
    case DIRTY_ERROR_BUSY:
    case DIRTY_ERROR_NO_WORKER:
    case DIRTY_ERROR_SHUTTING_DOWN:
      return DIRTYCTL_EXIT_UNAVAILABLE;
    case DIRTY_ERROR_PERMISSION_DENIED:
      return DIRTYCTL_EXIT_PERMISSION;
    default:
      return DIRTYCTL_EXIT_FAILED;
    }
}

int
dirtyctl_fail (const GError *error)
{
  const char *detail = error->domain == DIRTY_ERROR ? dirty_error_get_detail (error) : NULL;

  /* the wire name first, so scripts can grep it whatever the language */
  if (error->domain == DIRTY_ERROR)
    g_printerr ("dirtyctl: %s: %s\n", dirty_error_to_wire (error->code), error->message);
  else
    g_printerr ("dirtyctl: %s\n", error->message);
  if (detail != NULL)
    g_printerr ("%s\n", detail);
  return exit_code_for (error);
}

/* ---- a main loop that Ctrl-C interrupts ---- */

static gboolean
run_sigint_cb (gpointer user_data)
{
  DirtyctlRun *run = user_data;

  /* the operations end with "cancelled" and call done(); a second
   * Ctrl-C gets the default action again */
  run->interrupted = TRUE;
  run->sigint_source = 0;
  g_cancellable_cancel (run->cancellable);
  return G_SOURCE_REMOVE;
}

void
dirtyctl_run_init (DirtyctlRun *run)
{
  run->loop = g_main_loop_new (NULL, FALSE);
  run->cancellable = g_cancellable_new ();
  run->interrupted = FALSE;
  run->timed_out = FALSE;
  run->status = DIRTYCTL_EXIT_OK;
  run->sigint_source = 0;
  run->result = NULL;
}

int
dirtyctl_run_until (DirtyctlRun *run)
{
  run->sigint_source = g_unix_signal_add (SIGINT, run_sigint_cb, run);
  g_main_loop_run (run->loop);
  g_clear_handle_id (&run->sigint_source, g_source_remove);
  return run->interrupted ? DIRTYCTL_EXIT_INTERRUPTED : run->status;
}

void
dirtyctl_run_done (DirtyctlRun *run,
                   int          status)
{
  run->status = status;
  g_main_loop_quit (run->loop);
}

void
dirtyctl_run_clear (DirtyctlRun *run)
{
  g_clear_pointer (&run->loop, g_main_loop_unref);
  g_clear_object (&run->cancellable);
  g_clear_object (&run->result);
}

/* ---- control verbs: a bounded wait ---- */

static int control_timeout_ms = 25000;

gboolean
dirtyctl_parse_timeout (const char  *value,
                        int         *ms,
                        GError     **error)
{
  gint64 parsed;

  if (!g_ascii_string_to_signed (value, 10, 0, G_MAXINT, &parsed, NULL))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--timeout must be a whole number of milliseconds from 0 to %d, not “%s”"),
                   G_MAXINT, value);
      return FALSE;
    }
  *ms = (int) parsed;
  return TRUE;
}

/* Checked as it is parsed: a bad value must not leave after the request */
static gboolean
parse_control_timeout (const char  *option,
                       const char  *value,
                       gpointer     data,
                       GError     **error)
{
  return dirtyctl_parse_timeout (value, &control_timeout_ms, error);
}

static GOptionEntry control_entries[] = {
  { "timeout", 't', 0, G_OPTION_ARG_CALLBACK, parse_control_timeout,
    N_("How long to wait for the arbiter's answer, in milliseconds (default 25000; 0: no limit)"),
    N_("MS") },
  G_OPTION_ENTRY_NULL
};

void
dirtyctl_add_control_options (GOptionContext *context)
{
  g_option_context_add_main_entries (context, control_entries, GETTEXT_PACKAGE);
}

void
dirtyctl_run_store_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  DirtyctlRun *run = user_data;

  run->result = g_object_ref (result);
  dirtyctl_run_done (run, DIRTYCTL_EXIT_OK);
}

/* The request ends "cancelled" at once, its callback quits the loop */
static gboolean
control_timeout_cb (gpointer user_data)
{
  DirtyctlRun *run = user_data;

  run->timed_out = TRUE;
  g_cancellable_cancel (run->cancellable);
  return G_SOURCE_REMOVE;
}

int
dirtyctl_run_control (DirtyctlRun *run)
{
  guint timer = 0;
  int status;

  if (control_timeout_ms > 0)
    timer = g_timeout_add (control_timeout_ms, control_timeout_cb, run);
  status = dirtyctl_run_until (run);
  if (!run->timed_out)
    g_clear_handle_id (&timer, g_source_remove);
  if (status != DIRTYCTL_EXIT_OK || !run->timed_out)
    return status;
  g_printerr (_("dirtyctl: timeout: the arbiter did not answer within %d ms; is it stopped "
                "or hung?\n"), control_timeout_ms);
  return DIRTYCTL_EXIT_TIMEOUT;
}

/* ---- main ---- */

static char *
main_help (void)
{
  g_autoptr(GString) text = g_string_new (_("Verbs:"));

  g_string_append_c (text, '\n');
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    g_string_append_printf (text, "  %s\n", _(verbs[i].what));
  g_string_append_c (text, '\n');
  g_string_append (text, _("“dirtyctl VERB --help” describes each verb.\n"
                           "Options may come before or after the verb's arguments; “--” ends\n"
                           "them (for arguments that start with “-”, e.g. negative numbers).\n"));
  g_string_append_c (text, '\n');
  g_string_append (text, _(DIRTYCTL_EXIT_HELP));
  g_string_append_c (text, '\n');
  g_string_append (text, _(socket_help));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static int
print_main_help (gboolean to_stderr)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("VERB [ARGS...]");
  g_autofree char *description = main_help ();
  g_autofree char *help = NULL;

  g_option_context_set_summary (context,
                                _("Call, stream, watch and steer a dirty-arbiter: the pool of long-lived\n"
                                  "worker processes for blocking work."));
  g_option_context_set_description (context, description);
  g_option_context_add_main_entries (context, socket_entries, GETTEXT_PACKAGE);
  help = g_option_context_get_help (context, TRUE, NULL);
  if (to_stderr)
    g_printerr ("%s", help);
  else
    g_print ("%s", help);
  return to_stderr ? DIRTYCTL_EXIT_USAGE : DIRTYCTL_EXIT_OK;
}

static const Verb *
find_verb (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    if (g_strcmp0 (verbs[i].name, name) == 0)
      return &verbs[i];
  return NULL;
}

/* Global options before the verb: only --socket (and help). */
static int
skip_global_options (int    argc,
                     char **argv,
                     int   *first)
{
  int i = 1;

  for (; i < argc && argv[i][0] == '-'; i++)
    {
      if (g_str_equal (argv[i], "--help") || g_str_equal (argv[i], "-h"))
        return print_main_help (FALSE);
      if ((g_str_equal (argv[i], "--socket") || g_str_equal (argv[i], "-s")) && i + 1 < argc)
        {
          g_free (dirtyctl_socket);
          dirtyctl_socket = g_strdup (argv[++i]);
        }
      else if (g_str_has_prefix (argv[i], "--socket="))
        {
          g_free (dirtyctl_socket);
          dirtyctl_socket = g_strdup (argv[i] + strlen ("--socket="));
        }
      else
        return dirtyctl_usage (_("unknown option %s before the verb (see “dirtyctl --help”)"),
                               argv[i]);
    }
  *first = i;
  return -1;
}

int
main (int    argc,
      char **argv)
{
  const Verb *verb;
  g_autofree char *name = NULL;
  int first = 0, status;

  setlocale (LC_ALL, "");
  /* DIRTY_LOCALEDIR: the catalogues of an uninstalled build (tests) */
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("DIRTY_LOCALEDIR") ? g_getenv ("DIRTY_LOCALEDIR")
                                                                 : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("dirtyctl");
  g_set_print_handler (print_handler);

  if ((status = skip_global_options (argc, argv, &first)) >= 0)
    return status;
  if (first >= argc)
    return print_main_help (TRUE);
  if (g_str_equal (argv[first], "help"))
    {
      if (first + 1 >= argc || (verb = find_verb (argv[first + 1])) == NULL)
        return print_main_help (FALSE);
      name = g_strconcat ("dirtyctl ", verb->name, NULL);
      return verb->run (2, (char *[]) { name, (char *) "--help", NULL });
    }
  if ((verb = find_verb (argv[first])) == NULL)
    return dirtyctl_usage (_("unknown verb “%s” (see “dirtyctl --help”)"), argv[first]);

  /* the verb sees "dirtyctl VERB" as its argv[0], then its arguments */
  name = g_strconcat ("dirtyctl ", verb->name, NULL);
  argv[first] = name;
  return check_output (verb->run (argc - first, argv + first));
}
