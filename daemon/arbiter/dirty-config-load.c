/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where DirtyConfig's values come from: the config file and its drop-ins,
 * then the command line (with --help's text), then the checks across
 * keys. */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

#include "dirty-config-private.h"

gboolean
dirty_config_load_file (DirtyConfig  *self,
                        const char   *path,
                        gboolean      must_exist,
                        GError      **error)
{
  g_autofree char *data = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize length;
  const char *nul;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (!g_file_get_contents (path, &data, &length, &local_error))
    {
      if (!must_exist && g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error_literal (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_NOT_FOUND,
                           local_error->message);
      return FALSE;
    }
  /* the text ends at a NUL for the parser: what follows it would be
   * ignored without a word */
  nul = memchr (data, '\0', length);
  if (nul != NULL)
    {
      guint line = 1;

      for (const char *p = data; p < nul; p++)
        line += *p == '\n';
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_PARSE,
                   _("%s:%u: a NUL byte: this is not a text file"), path, line);
      return FALSE;
    }
  if (!dirty_config_load_data (self, data, path, error))
    return FALSE;
  g_free (self->file);
  self->file = g_strdup (path);
  return TRUE;
}

/* Options as given on the command line; applied after the file. */
typedef struct {
  char     *config;
  GStrv     apps;          /* wire names, MODULE:TypeName */
  guint    *app_workers;   /* per app: N from MODULE:TypeName:N, 0 = every worker */
  GStrv     app_path;
  char     *numbers[DIRTY_CONFIG_N_UINT_KEYS];
  char     *limits[DIRTY_CONFIG_N_LIMIT_KEYS];
  char     *socket;
  char     *log_file;
  gboolean  version;
  char     *worker_mode;
  char     *worker_socket;
} Options;

static void
options_clear (Options *options)
{
  g_free (options->config);
  g_strfreev (options->apps);
  g_strfreev (options->app_path);
  for (guint i = 0; i < G_N_ELEMENTS (dirty_config_uint_keys); i++)
    g_free (options->numbers[i]);
  for (guint i = 0; i < G_N_ELEMENTS (dirty_config_limit_keys); i++)
    g_free (options->limits[i]);
  g_free (options->socket);
  g_free (options->log_file);
  g_free (options->worker_mode);
  g_free (options->worker_socket);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Options, options_clear)

static const char summary[] = N_(
  "Runs long-lived worker processes for blocking work (model loading, heavy\n"
  "computation) and routes calls from clients to them over a Unix socket.\n"
  "Command-line options override the config file.");

/* --help's description, in pieces so that a new key changes one msgid;
 * %s are install paths (gettext cannot see through macros) */
static const char description_files[] = N_(
  "Config (GKeyFile syntax): %s/dirty-arbiter/dirty-arbiter.conf,\n"
  "then dirty-arbiter.conf.d/*.conf beside it in lexical order; a user instance\n"
  "(not root, XDG_RUNTIME_DIR set) reads $XDG_CONFIG_HOME/dirty-arbiter/ instead.\n"
  "--config FILE reads FILE alone. Paths in a file must be absolute; on the\n"
  "command line a relative path is taken against the current directory.\n");

static const char description_keys[] = N_(
  "  [dirty-arbiter]\n"
  "  dirty_apps=MODULE:TypeName;...   apps every worker loads (MODULE may be\n"
  "                                   an absolute path to a .so file);\n"
  "                                   MODULE:TypeName:N loads it on N workers\n"
  "  dirty_workers=1                  number of worker processes\n"
  "  dirty_timeout=300                longest call in seconds (0 = no limit)\n"
  "  dirty_threads=1                  concurrent calls per worker\n"
  "  dirty_graceful_timeout=30        seconds to finish calls on SIGTERM\n"
  "  dirty_app_path=DIR;...           where app modules are looked up\n"
  "                                   (default %s)\n"
  "  dirty_queue_size=10000           waiting calls per app before “busy”\n"
  "  socket=PATH                      listening socket\n"
  "  worker_mode=fork                 fork: the arbiter starts its workers; unit:\n"
  "                                   systemd runs each as dirty-worker@N.service\n"
  "  worker_socket=PATH               unit mode: where workers connect (default\n"
  "                                   $RUNTIME_DIRECTORY/workers.sock)\n"
  "  log_file=PATH                    also write log records there\n"
  "  socket_mode=0660                 mode of a socket it binds itself (0600 for\n"
  "                                   a user instance)\n"
  "  socket_group=GROUP               group of a socket it binds itself\n"
  "  allowed_users=USER;...           who may connect (names or uids; with\n"
  "  allowed_groups=GROUP;...         allowed_groups, incl. supplementary\n"
  "                                   groups); both empty: whoever can open\n"
  "                                   the socket\n");

static const char description_limits[] = N_(
  "  Limits on each client connection (a worker's keeps the defaults):\n"
  "  max_body=67108864                largest frame body in bytes (JSON and\n"
  "                                   attachments)\n"
  "  max_in_flight=1024               calls in flight per connection before\n"
  "                                   “busy”\n"
  "  frame_timeout=30000              ms from a frame's first byte to its last\n"
  "                                   (a slower one is a protocol error)\n"
  "  max_queued=268435456             bytes written to a client it has not read;\n"
  "                                   past that the connection is closed\n"
  "  max_connections_per_uid=4096     connections per client uid (0 = no\n"
  "                                   limit); more get “busy” and are closed\n"
  "  max_fd_payload=4096              MiB of memfd attachments in one frame\n");

static const char description_recycle[] = N_(
  "  dirty_max_requests=0             recycle a worker after that many calls\n"
  "                                   (0 = never)\n"
  "  dirty_max_requests_jitter=0      plus up to that many more, per worker\n"
  "  dirty_max_rss=0                  recycle a worker above that many MiB of\n"
  "                                   resident memory (0 = no limit)\n"
  "  dirty_kill_rss=0                 kill a worker at once above that many MiB\n"
  "                                   (0 = no limit); its calls end worker-lost\n"
  "  recycle_order=replace-first      replace-first: the replacement is ready\n"
  "                                   before the old worker leaves (two copies\n"
  "                                   of the apps for a while); retire-first:\n"
  "                                   the old one leaves first\n"
  "  hooks_module=PATH                a .so with lifecycle hooks (on_dirty_starting,\n"
  "                                   dirty_post_fork, dirty_worker_init,\n"
  "                                   dirty_worker_exit)\n");

static const char description_signals[] = N_(
  "Signals:\n"
  "  SIGTERM, SIGINT  graceful stop: no new calls, running and queued calls\n"
  "                   get dirty_graceful_timeout seconds, then workers stop;\n"
  "                   a second one stops at once, as SIGQUIT does\n"
  "  SIGQUIT          immediate stop: workers are killed (exit status 0)\n"
  "  SIGHUP           reload the config: new workers, then the old ones leave;\n"
  "                   an invalid config is logged and the old one kept\n"
  "  SIGUSR1          reopen log_file\n"
  "  SIGTTIN, SIGTTOU one worker more, one fewer (never the last worker of an\n"
  "                   app; scaling lasts until the next reload)\n");

static const char description_python[] = N_(
  "  Python apps: dirty_apps=python:package.module:ClassName[:N] (a dirty.App\n"
  "  subclass); a worker with one runs dirty-python-worker, which loads its C\n"
  "  apps too. The module is imported from dirty_app_path, then PYTHONPATH.\n"
  "  python=%s         the interpreter that runs it (needs gi)\n"
  "  DIRTY_PYTHON_WORKER_PATH (environment) overrides %s/dirty-python-worker\n");

static const char description_environment[] = N_(
  "Environment:\n"
  "  DIRTY_ARBITER_SOCKET  socket path when neither socket= nor --socket is set\n"
  "                        (else $XDG_RUNTIME_DIR/dirty-arbiter.sock, or\n"
  "                        /run/dirty-arbiter.sock for root)\n"
  "  DIRTY_WORKER_PATH     the worker executable (default %s/dirty-worker)\n"
  "  NOTIFY_SOCKET         set by systemd: READY=1, STATUS=, RELOADING=1 and\n"
  "                        STOPPING=1 are sent\n"
  "  LISTEN_FDS            socket activation: the fd named “dirty-arbiter”, or the\n"
  "                        only one passed, is used instead of binding\n");

static const char description_exit[] = N_(
  "Exit status: 0 on success, 1 for a bad config or command line, 2 when the\n"
  "service cannot run (for example the socket cannot be bound).");

static GOptionContext *
make_context (Options *options)
{
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &options->config,
      N_("Read settings from FILE"), N_("FILE") },
    { "dirty-app", 'a', 0, G_OPTION_ARG_STRING_ARRAY, &options->apps,
      N_("Serve the app MODULE:TypeName (repeatable; replaces dirty_apps)"), N_("SPEC") },
    { "dirty-workers", 'w', 0, G_OPTION_ARG_STRING, &options->numbers[0],
      N_("Number of worker processes"), N_("N") },
    { "dirty-timeout", 't', 0, G_OPTION_ARG_STRING, &options->numbers[1],
      N_("Longest call in seconds (0 = no limit)"), N_("SECONDS") },
    { "dirty-threads", 0, 0, G_OPTION_ARG_STRING, &options->numbers[2],
      N_("Concurrent calls per worker"), N_("N") },
    { "dirty-graceful-timeout", 0, 0, G_OPTION_ARG_STRING, &options->numbers[3],
      N_("Seconds to finish calls when stopping"), N_("SECONDS") },
    { "dirty-queue-size", 0, 0, G_OPTION_ARG_STRING, &options->numbers[4],
      N_("Waiting calls per app before “busy”"), N_("N") },
    { "app-path", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &options->app_path,
      N_("Look up app modules in DIR (repeatable; replaces dirty_app_path)"), N_("DIR") },
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &options->socket,
      N_("Listen on the Unix socket PATH"), N_("PATH") },
    { "log-file", 0, 0, G_OPTION_ARG_FILENAME, &options->log_file,
      N_("Also write log records to FILE (reopened on SIGUSR1)"), N_("FILE") },
    { "worker-mode", 0, 0, G_OPTION_ARG_STRING, &options->worker_mode,
      N_("fork (default): start workers as child processes; unit: as systemd "
         "units dirty-worker@N.service"), N_("MODE") },
    { "worker-socket", 0, 0, G_OPTION_ARG_FILENAME, &options->worker_socket,
      N_("Unit mode: the socket workers connect to"), N_("PATH") },
    { "max-body", 0, 0, G_OPTION_ARG_STRING, &options->limits[0],
      N_("Largest frame body a client may send, in bytes"), N_("BYTES") },
    { "max-in-flight", 0, 0, G_OPTION_ARG_STRING, &options->limits[1],
      N_("Calls in flight per client connection before “busy”"), N_("N") },
    { "frame-timeout", 0, 0, G_OPTION_ARG_STRING, &options->limits[2],
      N_("Milliseconds a client may take to send one frame"), N_("MS") },
    { "max-queued", 0, 0, G_OPTION_ARG_STRING, &options->limits[3],
      N_("Bytes a client may leave unread before it is disconnected"), N_("BYTES") },
    { "max-connections-per-uid", 0, 0, G_OPTION_ARG_STRING, &options->limits[4],
      N_("Connections per client uid (0 = no limit)"), N_("N") },
    { "max-fd-payload", 0, 0, G_OPTION_ARG_STRING, &options->limits[5],
      N_("MiB of memfd attachments in one frame"), N_("MIB") },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &options->version,
      N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionContext *context = g_option_context_new (NULL);
  g_autofree char *description = NULL;
  g_autofree char *keys = NULL;
  g_autofree char *environment = NULL;
  g_autofree char *python = NULL;
  g_autofree char *full = NULL;

  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context, _(summary));
  description = g_strdup_printf (_(description_files), DIRTY_SYSCONFDIR);
  keys = g_strdup_printf (_(description_keys), DIRTY_APPDIR);
  environment = g_strdup_printf (_(description_environment), DIRTY_LIBEXECDIR);
  python = g_strdup_printf (_(description_python), DIRTY_PYTHON, DIRTY_LIBEXECDIR);
  full = g_strjoin ("\n", description, keys, _(description_limits), _(description_recycle),
                    python, _(description_signals),
                    environment,
                    _(description_exit), NULL);
  g_option_context_set_description (context, full);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  return context;
}

static gboolean
fail_usage (GError    **error,
            const char *option,
            GError     *cause)
{
  g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
               "--%s: %s", option, cause->message);
  g_error_free (cause);
  return FALSE;
}

/* A path option, if given: an empty one is refused, as in a file */
static gboolean
apply_path (const char  *option,
            const char  *value,
            char       **field,
            GError     **error)
{
  if (value == NULL)
    return TRUE;
  if (*value == '\0')
    return fail_usage (error, option,
                       g_error_new_literal (DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
                                            _("the path is empty")));
  g_free (*field);
  /* against the directory it was started in, now: a reload, or a worker
   * unit started elsewhere, finds the same file */
  *field = g_canonicalize_filename (value, NULL);
  return TRUE;
}

/* The numeric options of one key table: @values in the table's order */
static gboolean
apply_uints (DirtyConfig    *self,
             const UintKey  *table,
             gsize           n_keys,
             char          **values,
             GError        **error)
{
  for (gsize i = 0; i < n_keys; i++)
    {
      const UintKey *key = &table[i];
      g_autofree char *option = g_strdelimit (g_strdup (key->key), "_", '-');
      GError *local_error = NULL;

      if (values[i] != NULL &&
          !dirty_config_parse_uint (key, values[i], dirty_config_uint_field (self, key),
                                    &local_error))
        return fail_usage (error, option, local_error);
    }
  return TRUE;
}

static gboolean
apply_options (DirtyConfig  *self,
               Options      *options,
               GError      **error)
{
  GError *local_error = NULL;

  if (!apply_uints (self, dirty_config_uint_keys, DIRTY_CONFIG_N_UINT_KEYS, options->numbers,
                    error) ||
      !apply_uints (self, dirty_config_limit_keys, DIRTY_CONFIG_N_LIMIT_KEYS, options->limits,
                    error))
    return FALSE;
  if (options->apps != NULL)
    {
      GStrv apps = dirty_config_clean_list (options->apps, TRUE, &local_error);

      if (apps == NULL)
        return fail_usage (error, "dirty-app", local_error);
      dirty_config_set_apps (self, apps);
    }
  if (options->app_path != NULL)
    {
      g_strfreev (self->app_path);
      self->app_path = dirty_config_clean_list (options->app_path, FALSE, NULL);
      for (guint i = 0; self->app_path[i] != NULL; i++)
        {
          char *absolute = g_canonicalize_filename (self->app_path[i], NULL);

          g_free (self->app_path[i]);
          self->app_path[i] = absolute;
        }
    }
  if (!apply_path ("socket", options->socket, &self->socket, error) ||
      !apply_path ("log-file", options->log_file, &self->log_file, error))
    return FALSE;
  if (options->worker_mode != NULL &&
      !dirty_config_parse_worker_mode (options->worker_mode, &self->worker_mode, &local_error))
    return fail_usage (error, "worker-mode", local_error);
  return apply_path ("worker-socket", options->worker_socket, &self->worker_socket, error);
}

/* Checks between keys, once every source is applied: a per-app count
 * must fit the pool, and every worker must get at least one app (a
 * worker refuses to start without one). */
static gboolean
dirty_config_validate (DirtyConfig  *self,
                       GError      **error)
{
  guint counted = 0;
  gboolean every_worker_app = FALSE;

  for (guint i = 0; self->apps[i] != NULL; i++)
    {
      guint n = self->app_workers[i];

      /* a unit's ExecStart= is the C dirty-worker */
      if (dirty_config_is_python_app (self->apps[i]) &&
          self->worker_mode == DIRTY_WORKER_MODE_UNIT)
        {
          g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                       _("dirty_apps: the Python app “%s” needs worker_mode=fork"),
                       self->apps[i]);
          return FALSE;
        }
      if (n == 0)
        every_worker_app = TRUE;
      else if (n > self->workers)
        {
          g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                       _("dirty_apps: app “%s:%u” asks for %u workers, but dirty_workers is %u"),
                       self->apps[i], n, n, self->workers);
          return FALSE;
        }
      counted += n;
    }
  if (self->apps[0] != NULL && !every_worker_app && counted < self->workers)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID,
                   _("dirty_apps: the per-app worker counts add up to %u, so some of the "
                     "%u workers (dirty_workers) would have no app; list an app without "
                     ":N, or lower dirty_workers"),
                   counted, self->workers);
      return FALSE;
    }
  return TRUE;
}

char *
dirty_config_dup_default_dir (void)
{
  /* The system instance runs as root, or as the system service's own
   * (DynamicUser=) user, which has no XDG_RUNTIME_DIR. A user instance
   * (the user manager's, or started in a session) has one. */
  if (geteuid () == 0 || g_getenv ("XDG_RUNTIME_DIR") == NULL)
    return g_build_filename (DIRTY_SYSCONFDIR, "dirty-arbiter", NULL);
  return g_build_filename (g_get_user_config_dir (), "dirty-arbiter", NULL);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The *.conf files of @dir, sorted by name (bytes, as systemd does). */
static GPtrArray *
list_drop_ins (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) handle = g_dir_open (dir, 0, NULL);
  const char *name;

  while (handle != NULL && (name = g_dir_read_name (handle)) != NULL)
    if (g_str_has_suffix (name, ".conf") && name[0] != '.')
      g_ptr_array_add (names, g_build_filename (dir, name, NULL));
  g_ptr_array_sort (names, compare_names);
  return names;
}

gboolean
dirty_config_load_dir (DirtyConfig  *self,
                       const char   *dir,
                       GError      **error)
{
  g_autofree char *main_file = g_build_filename (dir, "dirty-arbiter.conf", NULL);
  g_autofree char *drop_in_dir = g_build_filename (dir, "dirty-arbiter.conf.d", NULL);
  g_autoptr(GPtrArray) drop_ins = list_drop_ins (drop_in_dir);
  g_autofree char *read_first = NULL;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);

  if (!dirty_config_load_file (self, main_file, FALSE, error))
    return FALSE;
  read_first = g_strdup (self->file);
  for (guint i = 0; i < drop_ins->len; i++)
    if (!dirty_config_load_file (self, drop_ins->pdata[i], TRUE, error))
      return FALSE;
  /* the main file names the config in messages, even after drop-ins */
  if (read_first != NULL)
    {
      g_free (self->file);
      self->file = g_steal_pointer (&read_first);
    }
  return TRUE;
}

gboolean
dirty_config_parse_command_line (DirtyConfig  *self,
                                 char        **argv,
                                 GError      **error)
{
  g_auto(Options) options = { 0 };
  g_autoptr(GOptionContext) context = make_context (&options);
  g_auto(GStrv) args = g_strdupv (argv);
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (DIRTY_IS_CONFIG (self), FALSE);

  g_strfreev (self->argv);
  self->argv = g_strdupv (argv);
  if (!g_option_context_parse_strv (context, &args, &local_error))
    {
      g_set_error_literal (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
                           local_error->message);
      return FALSE;
    }
  if (args[0] != NULL && args[1] != NULL)
    {
      g_set_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_USAGE,
                   _("unexpected argument “%s”"), args[1]);
      return FALSE;
    }
  self->show_version = options.version;
  if (options.version)
    return TRUE;

  if (options.config != NULL)
    {
      if (!dirty_config_load_file (self, options.config, TRUE, error))
        return FALSE;
    }
  else
    {
      g_autofree char *dir = dirty_config_dup_default_dir ();

      if (!dirty_config_load_dir (self, dir, error))
        return FALSE;
    }
  return apply_options (self, &options, error) && dirty_config_validate (self, error);
}
