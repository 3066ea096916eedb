/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The arbiter's config: defaults, the key file, bad values named with
 * their key and line, and the command line winning over the file. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "dirty-config.h"

static char *
write_config (const char *text)
{
  g_autoptr(GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("dirty-config-XXXXXX.conf", &path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

static void
test_defaults (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();

  g_assert_cmpuint (dirty_config_get_workers (config), ==, 1);
  g_assert_cmpuint (dirty_config_get_timeout (config), ==, 300);
  g_assert_cmpuint (dirty_config_get_threads (config), ==, 1);
  g_assert_cmpuint (dirty_config_get_graceful_timeout (config), ==, 30);
  g_assert_cmpuint (dirty_config_get_queue_size (config), ==, 10000);
  g_assert_null (dirty_config_get_socket (config));
  g_assert_cmpuint (g_strv_length ((GStrv) dirty_config_get_apps (config)), ==, 0);
  g_assert_cmpstr (dirty_config_get_app_path (config)[0], ==, DIRTY_APPDIR);
  g_assert_null (dirty_config_get_app_path (config)[1]);
}

static void
test_good_file (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(GError) error = NULL;
  const char *text =
    "# a comment\n"
    "[dirty-arbiter]\n"
    "dirty_apps = echo:DirtyEchoApp; /opt/x/libml.so:MlApp ;\n"
    "dirty_workers=4\n"
    "dirty_timeout=0\n"
    "dirty_threads=8\n"
    "dirty_graceful_timeout=5\n"
    "dirty_app_path=/a;/b\n"
    "dirty_queue_size=12\n"
    "socket=/run/x.sock\n"
    "\n"
    /* groups of one's own, named X-* as in systemd's units */
    "[X-Local]\n"
    "whatever=1\n";
  const char * const *apps;

  g_assert_true (dirty_config_load_data (config, text, "test.conf", &error));
  g_assert_no_error (error);
  apps = dirty_config_get_apps (config);
  g_assert_cmpstr (apps[0], ==, "echo:DirtyEchoApp");
  g_assert_cmpstr (apps[1], ==, "/opt/x/libml.so:MlApp");
  g_assert_null (apps[2]);
  g_assert_cmpuint (dirty_config_get_workers (config), ==, 4);
  g_assert_cmpuint (dirty_config_get_timeout (config), ==, 0);
  g_assert_cmpuint (dirty_config_get_threads (config), ==, 8);
  g_assert_cmpuint (dirty_config_get_graceful_timeout (config), ==, 5);
  g_assert_cmpuint (dirty_config_get_queue_size (config), ==, 12);
  g_assert_cmpstr (dirty_config_get_app_path (config)[0], ==, "/a");
  g_assert_cmpstr (dirty_config_get_app_path (config)[1], ==, "/b");
  g_assert_cmpstr (dirty_config_get_socket (config), ==, "/run/x.sock");
}

/* A byte order mark before the first group (Notepad writes one) is not
 * part of it; the line numbers of errors stay right. */
/* A NUL byte ends the text for the parser: the settings after it would
 * be ignored without a word. The file is refused, naming the line. */
static void
test_nul_byte (void)
{
  static const char text[] = "[dirty-arbiter]\ndirty_workers=2\n\0\ndirty_workers=x\n";
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_config ("");

  g_assert_true (g_file_set_contents (path, text, sizeof text - 1, &error));
  g_assert_false (dirty_config_load_file (config, path, TRUE, &error));
  g_assert_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_PARSE);
  g_assert_true (g_str_has_suffix (error->message, ":3: a NUL byte: this is not a text file"));
  g_unlink (path);
}

static void
test_byte_order_mark (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(DirtyConfig) bad = dirty_config_new ();
  g_autoptr(GError) error = NULL;

  g_assert_true (dirty_config_load_data (config, "\xef\xbb\xbf[dirty-arbiter]\ndirty_workers=3\n",
                                         "test.conf", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (dirty_config_get_workers (config), ==, 3);
  g_assert_false (dirty_config_load_data (bad, "\xef\xbb\xbf[dirty-arbiter]\ndirty_workers=x\n",
                                          "test.conf", &error));
  g_assert_nonnull (strstr (error->message, "test.conf:2: dirty_workers:"));
}

typedef struct {
  const char *text;
  const char *expected;   /* a substring of the message */
} BadCase;

static void
test_bad_values (void)
{
  static const BadCase cases[] = {
    { "[dirty-arbiter]\ndirty_workers=abc\n", "test.conf:2: dirty_workers:" },
    { "[dirty-arbiter]\n\ndirty_workers=-1\n", "test.conf:3: dirty_workers:" },
    { "[dirty-arbiter]\ndirty_workers=0\n", "dirty_workers" },
    { "[dirty-arbiter]\ndirty_threads=0\n", "test.conf:2: dirty_threads:" },
    { "[dirty-arbiter]\ndirty_timeout=1.5\n", "test.conf:2: dirty_timeout:" },
    { "[dirty-arbiter]\ndirty_graceful_timeout=\n", "dirty_graceful_timeout" },
    { "[dirty-arbiter]\ndirty_queue_size=99999999999999999999\n", "dirty_queue_size" },
    { "[dirty-arbiter]\ndirty_wrokers=2\n", "test.conf:2: dirty_wrokers: unknown key" },
    /* a mistyped group would have every setting in it ignored */
    { "[dirty_arbiter]\ndirty_workers=2\n",
      "test.conf:1: unknown group [dirty_arbiter]: settings go in [dirty-arbiter]" },
    { "# comment\n[dirty-arbiter]\ndirty_workers=2\n  [other]\nx=1\n", "test.conf:4: unknown group [other]" },
    { "[dirty-arbiter]\ndirty_apps=:DirtyEchoApp\n", "test.conf:2: dirty_apps:" },
    { "[dirty-arbiter]\ndirty_apps=echo:\n", "dirty_apps" },
    { "[dirty-arbiter]\ndirty_apps=echo:Dirty:Echo:App\n", "dirty_apps" },
    { "[dirty-arbiter]\ndirty_apps=echo\n", "dirty_apps" },
    { "[dirty-arbiter]\ndirty_apps=echo:Bad-Name\n", "dirty_apps" },
    { "[dirty-arbiter]\ndirty_apps=echo:A;echo:A\n", "listed twice" },
    { "[dirty-arbiter]\nsocket=\n", "test.conf:2: socket:" },
    /* relative to what? a daemon's directory is whatever started it */
    { "[dirty-arbiter]\nsocket=rel.sock\n", "test.conf:2: socket: “rel.sock” is not an absolute path" },
    { "[dirty-arbiter]\nlog_file=a.log\n", "test.conf:2: log_file: “a.log” is not an absolute" },
    { "[dirty-arbiter]\nworker_socket=w.sock\n", "test.conf:2: worker_socket: “w.sock” is not" },
    { "[dirty-arbiter]\ndirty_app_path=/a;apps\n", "test.conf:2: dirty_app_path: “apps” is not" },
    { "not a key file\n", "test.conf" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DirtyConfig) config = dirty_config_new ();
      g_autoptr(GError) error = NULL;
      int code = (i + 1 == G_N_ELEMENTS (cases)) ? DIRTY_CONFIG_ERROR_PARSE
                                                 : DIRTY_CONFIG_ERROR_INVALID;

      g_test_message ("case %u: %s", i, cases[i].text);
      g_assert_false (dirty_config_load_data (config, cases[i].text, "test.conf", &error));
      g_assert_error (error, DIRTY_CONFIG_ERROR, code);
      g_assert_nonnull (strstr (error->message, cases[i].expected));
    }
}

static void
test_app_spec (void)
{
  static const char *const good[] = {
    "echo:DirtyEchoApp", "my_mod:T", "/abs/libx.so:X_1",
  };
  static const char *const bad[] = {
    "", ":", "echo", "echo:", ":Type", "a:b:c", "rel/path.so:T", "/abs/x:T", "m:1Type",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (dirty_config_check_app_spec (good[i], NULL));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (dirty_config_check_app_spec (bad[i], &error));
      g_assert_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID);
    }
}

static void
test_command_line_wins (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_config ("[dirty-arbiter]\n"
                                        "dirty_apps=a:A;b:B\n"
                                        "dirty_workers=3\n"
                                        "dirty_timeout=10\n"
                                        "dirty_app_path=/from/file\n"
                                        "socket=/from/file.sock\n");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  char *argv[] = {
    "dirty-arbiter", config_arg, "--dirty-app", "c:C", "--dirty-app=d:D",
    "--dirty-workers", "5", "--app-path", "/x", "--app-path", "/y",
    "--socket=/cli.sock", NULL
  };
  const char * const *apps;

  g_assert_true (dirty_config_parse_command_line (config, argv, &error));
  g_assert_no_error (error);
  apps = dirty_config_get_apps (config);
  g_assert_cmpstr (apps[0], ==, "c:C");
  g_assert_cmpstr (apps[1], ==, "d:D");
  g_assert_null (apps[2]);
  g_assert_cmpuint (dirty_config_get_workers (config), ==, 5);
  /* not on the command line: the file's value stays */
  g_assert_cmpuint (dirty_config_get_timeout (config), ==, 10);
  g_assert_cmpstr (dirty_config_get_app_path (config)[0], ==, "/x");
  g_assert_cmpstr (dirty_config_get_app_path (config)[1], ==, "/y");
  g_assert_cmpstr (dirty_config_get_socket (config), ==, "/cli.sock");
  g_assert_cmpstr (dirty_config_get_file (config), ==, path);
  g_unlink (path);
}

/* Relative paths on the command line are taken against the directory
 * the arbiter was started in, once: a reload, or a worker unit (whose
 * directory is /), finds the same files. */
static void
test_command_line_relative (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *socket = g_build_filename (cwd, "a.sock", NULL);
  g_autofree char *log = g_build_filename (cwd, "a.log", NULL);
  g_autofree char *apps = g_build_filename (cwd, "apps", NULL);
  char *argv[] = {
    "dirty-arbiter", "--socket=./a.sock", "--log-file=a.log", "--app-path=apps/", "--app-path=/x",
    "--dirty-app=a:A", NULL
  };

  g_assert_true (dirty_config_parse_command_line (config, argv, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (dirty_config_get_socket (config), ==, socket);
  g_assert_cmpstr (dirty_config_get_log_file (config), ==, log);
  g_assert_cmpstr (dirty_config_get_app_path (config)[0], ==, apps);
  g_assert_cmpstr (dirty_config_get_app_path (config)[1], ==, "/x");
}

static void
test_command_line_errors (void)
{
  g_autofree char *bad_file = write_config ("[dirty-arbiter]\n\n\ndirty_threads=many\n");
  g_autofree char *bad_file_arg = g_strconcat ("--config=", bad_file, NULL);
  g_autofree char *bad_file_line = g_strconcat (bad_file, ":4: dirty_threads:", NULL);
  struct {
    const char *args[4];
    int         code;
    const char *expected;
  } cases[] = {
    { { "--dirty-workers", "0" }, DIRTY_CONFIG_ERROR_USAGE, "--dirty-workers" },
    { { "--dirty-threads=x" }, DIRTY_CONFIG_ERROR_USAGE, "--dirty-threads" },
    { { "--dirty-timeout=-3" }, DIRTY_CONFIG_ERROR_USAGE, "--dirty-timeout" },
    { { "--dirty-app=nocolon" }, DIRTY_CONFIG_ERROR_USAGE, "--dirty-app" },
    /* an empty path is refused, as socket= is in a file */
    { { "--socket=" }, DIRTY_CONFIG_ERROR_USAGE, "--socket: the path is empty" },
    { { "--log-file", "" }, DIRTY_CONFIG_ERROR_USAGE, "--log-file: the path is empty" },
    { { "--worker-socket=" }, DIRTY_CONFIG_ERROR_USAGE, "--worker-socket: the path is empty" },
    { { "--no-such-option" }, DIRTY_CONFIG_ERROR_USAGE, "no-such-option" },
    { { "stray" }, DIRTY_CONFIG_ERROR_USAGE, "stray" },
    { { "--config=/nonexistent/dirty.conf" }, DIRTY_CONFIG_ERROR_NOT_FOUND, "/nonexistent/dirty.conf" },
    { { bad_file_arg }, DIRTY_CONFIG_ERROR_INVALID, bad_file_line },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DirtyConfig) config = dirty_config_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) argv = g_ptr_array_new ();

      g_ptr_array_add (argv, "dirty-arbiter");
      for (guint j = 0; j < G_N_ELEMENTS (cases[i].args) && cases[i].args[j]; j++)
        g_ptr_array_add (argv, (gpointer) cases[i].args[j]);
      g_ptr_array_add (argv, NULL);

      g_test_message ("case %u: %s", i, cases[i].args[0]);
      g_assert_false (dirty_config_parse_command_line (config, (char **) argv->pdata, &error));
      g_assert_error (error, DIRTY_CONFIG_ERROR, cases[i].code);
      g_assert_nonnull (strstr (error->message, cases[i].expected));
    }
  g_unlink (bad_file);
}

/* MODULE:TypeName:N: the wire name drops :N; bad counts are named */
static void
test_app_counts (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(GError) error = NULL;
  static const BadCase bad[] = {
    { "[dirty-arbiter]\ndirty_apps=a:A:0\n", "test.conf:2: dirty_apps:" },
    { "[dirty-arbiter]\ndirty_apps=a:A:x\n", "“x”" },
    { "[dirty-arbiter]\ndirty_apps=a:A:-1\n", "dirty_apps" },
    { "[dirty-arbiter]\ndirty_apps=a:A:1:2\n", "MODULE:TypeName:N" },
    { "[dirty-arbiter]\ndirty_apps=a:A:1;a:A\n", "listed twice" },
  };

  g_assert_true (dirty_config_load_data (config, "[dirty-arbiter]\n"
                                         "dirty_apps=a:A;/x/b.so:B:2\n", "test.conf", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (dirty_config_get_apps (config)[0], ==, "a:A");
  g_assert_cmpstr (dirty_config_get_apps (config)[1], ==, "/x/b.so:B");
  g_assert_cmpuint (dirty_config_get_app_workers (config, "a:A"), ==, 0);
  g_assert_cmpuint (dirty_config_get_app_workers (config, "/x/b.so:B"), ==, 2);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(DirtyConfig) other = dirty_config_new ();
      g_autoptr(GError) local_error = NULL;

      g_assert_false (dirty_config_load_data (other, bad[i].text, "test.conf", &local_error));
      g_test_message ("%s", local_error->message);
      g_assert_nonnull (strstr (local_error->message, bad[i].expected));
    }
}

/* python:package.module:ClassName[:N]: its own syntax, the same :N, its
 * own errors; the python key; unit mode refuses Python apps. */
static void
test_python_apps (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(DirtyConfig) unit = dirty_config_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_config ("[dirty-arbiter]\n"
                                        "dirty_apps=python:numstats:NumStats\n"
                                        "worker_mode=unit\n");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  char *argv[] = { "dirty-arbiter", config_arg, NULL };
  static const BadCase bad[] = {
    { "[dirty-arbiter]\ndirty_apps=python:numstats\n", "python:package.module:ClassName" },
    { "[dirty-arbiter]\ndirty_apps=python:a:B:2:3\n", "python:package.module:ClassName:N" },
    { "[dirty-arbiter]\ndirty_apps=python:a-b:B\n", "“a-b” is not a Python module name" },
    { "[dirty-arbiter]\ndirty_apps=python:a..b:B\n", "not a Python module name" },
    { "[dirty-arbiter]\ndirty_apps=python:.a:B\n", "not a Python module name" },
    { "[dirty-arbiter]\ndirty_apps=python:/x/a.py:B\n", "not a Python module name" },
    { "[dirty-arbiter]\ndirty_apps=python:a:1B\n", "“1B” is not a type name" },
    { "[dirty-arbiter]\ndirty_apps=python:a:B:0\n", "the worker count “0”" },
    { "[dirty-arbiter]\ndirty_apps=python:a:B;python:a:B:1\n", "listed twice" },
    { "[dirty-arbiter]\npython=python3\n", "test.conf:2: python: “python3” is not an absolute path" },
    { "[dirty-arbiter]\npython=\n", "test.conf:2: python:" },
  };

  g_assert_cmpstr (dirty_config_get_python (config), ==, DIRTY_PYTHON);
  g_assert_true (dirty_config_load_data (config, "[dirty-arbiter]\n"
                                         "dirty_apps=python:pkg.sub.mod:Cls;echo:E;"
                                         "python:numstats:NumStats:2\n"
                                         "python=/opt/py/bin/python3\n", "test.conf", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (dirty_config_get_apps (config)[0], ==, "python:pkg.sub.mod:Cls");
  g_assert_cmpstr (dirty_config_get_apps (config)[1], ==, "echo:E");
  g_assert_cmpstr (dirty_config_get_apps (config)[2], ==, "python:numstats:NumStats");
  g_assert_cmpuint (dirty_config_get_app_workers (config, "python:pkg.sub.mod:Cls"), ==, 0);
  g_assert_cmpuint (dirty_config_get_app_workers (config, "python:numstats:NumStats"), ==, 2);
  g_assert_true (dirty_config_is_python_app (dirty_config_get_apps (config)[0]));
  g_assert_false (dirty_config_is_python_app (dirty_config_get_apps (config)[1]));
  g_assert_cmpstr (dirty_config_get_python (config), ==, "/opt/py/bin/python3");

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(DirtyConfig) other = dirty_config_new ();
      g_autoptr(GError) local_error = NULL;

      g_assert_false (dirty_config_load_data (other, bad[i].text, "test.conf", &local_error));
      g_test_message ("%s", local_error->message);
      g_assert_error (local_error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID);
      g_assert_nonnull (strstr (local_error->message, bad[i].expected));
    }

  /* a unit runs the C dirty-worker */
  g_assert_false (dirty_config_parse_command_line (unit, argv, &error));
  g_assert_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "“python:numstats:NumStats” needs worker_mode=fork"));
  g_unlink (path);
}

/* The main file, then its drop-ins in lexical order; a bad drop-in is
 * named with its line. */
static void
test_drop_ins (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dirty-conf-XXXXXX", &error);
  g_autofree char *main_file = g_build_filename (dir, "dirty-arbiter.conf", NULL);
  g_autofree char *d = g_build_filename (dir, "dirty-arbiter.conf.d", NULL);
  g_autofree char *first = g_build_filename (d, "10-first.conf", NULL);
  g_autofree char *second = g_build_filename (d, "20-second.conf", NULL);
  g_autofree char *ignored = g_build_filename (d, "30-ignored.conf.bak", NULL);
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(DirtyConfig) bad = dirty_config_new ();
  g_autofree char *expected = NULL;

  g_assert_cmpint (g_mkdir (d, 0755), ==, 0);
  g_assert_true (g_file_set_contents (main_file, "[dirty-arbiter]\ndirty_workers=2\ndirty_timeout=7\n", -1, NULL));
  g_assert_true (g_file_set_contents (second, "[dirty-arbiter]\ndirty_workers=4\n", -1, NULL));
  g_assert_true (g_file_set_contents (first, "[dirty-arbiter]\ndirty_workers=3\ndirty_threads=5\n", -1, NULL));
  g_assert_true (g_file_set_contents (ignored, "[dirty-arbiter]\ndirty_workers=9\n", -1, NULL));
  g_assert_true (dirty_config_load_dir (config, dir, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (dirty_config_get_workers (config), ==, 4);
  g_assert_cmpuint (dirty_config_get_threads (config), ==, 5);
  g_assert_cmpuint (dirty_config_get_timeout (config), ==, 7);

  g_assert_true (g_file_set_contents (first, "[dirty-arbiter]\n\ndirty_threads=x\n", -1, NULL));
  g_assert_false (dirty_config_load_dir (bad, dir, &error));
  expected = g_strconcat (first, ":3: dirty_threads:", NULL);
  g_assert_nonnull (strstr (error->message, expected));
  g_unlink (first);
  g_unlink (second);
  g_unlink (ignored);
  g_rmdir (d);
  g_unlink (main_file);
  g_rmdir (dir);
}

/* A reload reads the same command line and files again */
static void
test_reload (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autoptr(DirtyConfig) fresh = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_config ("[dirty-arbiter]\ndirty_workers=2\ndirty_timeout=5\n");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  char *argv[] = { "dirty-arbiter", config_arg, "--dirty-timeout=9", "--log-file=/tmp/x.log", NULL };

  g_assert_true (dirty_config_parse_command_line (config, argv, &error));
  g_assert_cmpstr (dirty_config_get_log_file (config), ==, "/tmp/x.log");
  g_assert_true (g_file_set_contents (path, "[dirty-arbiter]\ndirty_workers=6\n", -1, NULL));
  fresh = dirty_config_reload (config, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dirty_config_get_workers (fresh), ==, 6);
  g_assert_cmpuint (dirty_config_get_timeout (fresh), ==, 9);   /* the command line still wins */
  g_assert_cmpuint (dirty_config_get_workers (config), ==, 2);  /* the old one is untouched */
  g_assert_true (g_file_set_contents (path, "[dirty-arbiter]\ndirty_workers=none\n", -1, NULL));
  g_assert_null (dirty_config_reload (config, &error));
  g_assert_error (error, DIRTY_CONFIG_ERROR, DIRTY_CONFIG_ERROR_INVALID);
  g_unlink (path);
}

static void
test_version (void)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  char *argv[] = { "dirty-arbiter", "--version", NULL };

  g_assert_true (dirty_config_parse_command_line (config, argv, NULL));
  g_assert_true (dirty_config_get_show_version (config));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/config/defaults", test_defaults);
  g_test_add_func ("/config/good-file", test_good_file);
  g_test_add_func ("/config/byte-order-mark", test_byte_order_mark);
  g_test_add_func ("/config/nul-byte", test_nul_byte);
  g_test_add_func ("/config/bad-values", test_bad_values);
  g_test_add_func ("/config/app-spec", test_app_spec);
  g_test_add_func ("/config/command-line-wins", test_command_line_wins);
  g_test_add_func ("/config/command-line-errors", test_command_line_errors);
  g_test_add_func ("/config/command-line-relative", test_command_line_relative);
  g_test_add_func ("/config/app-counts", test_app_counts);
  g_test_add_func ("/config/python-apps", test_python_apps);
  g_test_add_func ("/config/drop-ins", test_drop_ins);
  g_test_add_func ("/config/reload", test_reload);
  g_test_add_func ("/config/version", test_version);
  return g_test_run ();
}
