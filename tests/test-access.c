/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Access control against the real daemon: the socket file's mode and
 * group, allowed_users / allowed_groups (SO_PEERCRED on connect; a refused
 * client gets permission-denied with a message, never a silent close), and
 * MANAGE only for root and the arbiter's own user. Runs as root; the other
 * user is "nobody", through setpriv (util-linux), running the real dirtyctl. */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirty.h>
#include <glib/gstdio.h>
#include <signal.h>

#include "dirty-test-daemon.h"

#define ECHO "echo:DirtyEchoApp"
#define NOBODY_UID 65534

static gboolean
can_run_as_nobody (void)
{
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (to run a client as another user)");
      return FALSE;
    }
  if (setpriv == NULL)
    {
      g_test_skip ("setpriv (util-linux) is not installed");
      return FALSE;
    }
  return TRUE;
}

/* The daemon's directory is private to root: open it for the other user. */
static void
open_dir (DirtyTestDaemon *daemon)
{
  g_assert_cmpint (chmod (dirty_test_daemon_get_dir (daemon), 0755), ==, 0);
}

/* Runs dirtyctl (as nobody when @as_nobody) against @daemon; returns its
 * exit status, @err its stderr. */
static int
run_ctl (DirtyTestDaemon    *daemon,
         gboolean            as_nobody,
         char              **out,
         char              **err,
         const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  g_autoptr(GError) error = NULL;
  int wait_status = 0;

  if (as_nobody)
    {
      g_ptr_array_add (argv, (char *) "setpriv");
      g_ptr_array_add (argv, (char *) "--reuid=65534");
      g_ptr_array_add (argv, (char *) "--regid=65534");
      g_ptr_array_add (argv, (char *) "--clear-groups");
    }
  g_ptr_array_add (argv, (char *) g_getenv ("DIRTY_TEST_DIRTYCTL"));
  g_ptr_array_add (argv, (char *) "--socket");
  g_ptr_array_add (argv, (char *) dirty_test_daemon_get_socket_path (daemon));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                &stdout_text, &stderr_text, &wait_status, &error);
  g_assert_no_error (error);
  g_test_message ("dirtyctl %s%s: %s", as_nobody ? "(nobody) " : "", args[0], stderr_text);
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  if (err != NULL)
    *err = g_steal_pointer (&stderr_text);
  g_assert_true (WIFEXITED (wait_status));
  return WEXITSTATUS (wait_status);
}

#define CTL(daemon, nobody, out, err, ...) \
  run_ctl ((daemon), (nobody), (out), (err), (const char * const[]) { __VA_ARGS__, NULL })

static JsonNode *
add (DirtyClient  *client,
     GError      **error)
{
  g_autoptr(JsonArray) args = json_array_new ();

  json_array_add_int_element (args, 20);
  json_array_add_int_element (args, 22);
  return dirty_client_execute_sync (client, ECHO, "add", args, NULL, NULL, error);
}

static void
assert_refused (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client =
    dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon), NULL, &error);
  g_autoptr(JsonNode) result = NULL;

  g_assert_no_error (error);   /* connect() itself succeeds: the kernel accepts */
  result = add (client, &error);
  g_assert_null (result);
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "allowed_users"));
}

static void
assert_allowed (DirtyTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DirtyClient) client =
    dirty_client_new_sync (dirty_test_daemon_get_socket_path (daemon), NULL, &error);
  g_autoptr(JsonNode) result = NULL;

  g_assert_no_error (error);
  result = add (client, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_node_get_int (result), ==, 42);
}

/* ---- the socket file ---- */

static void
test_socket_mode (void)
{
  struct stat st;

  {
    /* root's socket: 0660 by default */
    g_autoptr(DirtyTestDaemon) daemon =
      dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n", NULL);

    g_assert_cmpint (stat (dirty_test_daemon_get_socket_path (daemon), &st), ==, 0);
    g_assert_true (S_ISSOCK (st.st_mode));
    g_assert_cmpint (st.st_mode & 07777, ==, 0660);
  }
  {
    g_autoptr(DirtyTestDaemon) daemon =
      dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n"
                               "socket_mode=0640\nsocket_group=65534\n", NULL);

    g_assert_cmpint (stat (dirty_test_daemon_get_socket_path (daemon), &st), ==, 0);
    g_assert_cmpint (st.st_mode & 07777, ==, 0640);
    g_assert_cmpint (st.st_gid, ==, 65534);
    assert_allowed (daemon);
  }
}

static void
test_bad_settings (void)
{
  static const struct {
    const char *line;
    const char *key;
  } cases[] = {
    { "socket_mode=0999", "socket_mode" },
    { "socket_mode=rw", "socket_mode" },
    { "socket_group=no-such-group-here", "socket_group" },
    { "allowed_users=root;no-such-user-here", "allowed_users" },
    { "allowed_groups=no-such-group-here", "allowed_groups" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = g_dir_make_tmp ("dirty-access-XXXXXX", &error);
      g_autofree char *path = g_build_filename (dir, "bad.conf", NULL);
      g_autofree char *text = g_strdup_printf ("[dirty-arbiter]\ndirty_apps=" ECHO "\n%s\n",
                                               cases[i].line);
      g_autofree char *option = g_strconcat ("--config=", path, NULL);
      g_autofree char *err = NULL;
      g_autofree char *expected = g_strdup_printf ("%s:3: %s: ", path, cases[i].key);

      g_assert_true (g_file_set_contents (path, text, -1, NULL));
      g_assert_cmpint (dirty_test_run_arbiter ((const char *[]) { option, NULL }, &err), ==, 1 << 8);
      g_test_message ("%s", err);
      g_assert_nonnull (strstr (err, expected));
      g_unlink (path);
      g_rmdir (dir);
    }
}

/* ---- allowed_users / allowed_groups ---- */

static void
test_allowed_users (void)
{
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (!can_run_as_nobody ())
    return;
  daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n"
                                    "socket_mode=0666\nallowed_users=nobody\n", NULL);
  open_dir (daemon);

  /* root is not listed: told why, twice (the daemon goes on) */
  assert_refused (daemon);
  assert_refused (daemon);
  g_assert_cmpint (CTL (daemon, FALSE, NULL, &err, "status"), ==, 7);
  g_assert_true (g_str_has_prefix (err, "dirtyctl: permission-denied: "));

  /* the listed user calls, and may ask for STATUS, but not MANAGE */
  g_assert_cmpint (CTL (daemon, TRUE, &out, NULL, "call", ECHO, "add", "1", "2"), ==, 0);
  g_assert_cmpstr (out, ==, "3\n");
  g_assert_cmpint (CTL (daemon, TRUE, NULL, NULL, "status", "--json"), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (CTL (daemon, TRUE, NULL, &err, "workers", "add", "1"), ==, 7);
  g_assert_true (g_str_has_prefix (err, "dirtyctl: permission-denied: "));

  /* a reload applies to new connections: root is allowed now */
  config_path = g_build_filename (dirty_test_daemon_get_dir (daemon), "dirty-arbiter.conf", NULL);
  g_assert_true (g_file_set_contents (config_path,
                                      "[dirty-arbiter]\ndirty_apps=" ECHO "\n"
                                      "allowed_users=0;nobody\n", -1, NULL));
  g_assert_cmpint (CTL (daemon, FALSE, NULL, NULL, "reload"), ==, 7);   /* root: refused still */
  kill (dirty_test_daemon_get_pid (daemon), SIGHUP);
  g_free (dirty_test_daemon_wait_notify (daemon, "READY=1", 30000));
  assert_allowed (daemon);
}

static void
test_allowed_groups (void)
{
  {
    /* root's primary group */
    g_autoptr(DirtyTestDaemon) daemon =
      dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n"
                               "allowed_groups=root\n", NULL);

    assert_allowed (daemon);
  }
  {
    g_autoptr(DirtyTestDaemon) daemon =
      dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n"
                               "allowed_groups=nogroup\n", NULL);

    assert_refused (daemon);
  }
}

/* ---- MANAGE ---- */

static void
test_manage_other_user (void)
{
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;

  if (!can_run_as_nobody ())
    return;
  /* everyone may connect; only root (and the arbiter's user, root here) may manage */
  daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\nsocket_mode=0666\n", NULL);
  open_dir (daemon);
  g_assert_cmpint (CTL (daemon, TRUE, NULL, &err, "workers", "add", "1"), ==, 7);
  g_assert_true (g_str_has_prefix (err, "dirtyctl: permission-denied: "));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (CTL (daemon, TRUE, NULL, &err, "reload"), ==, 7);
  g_assert_nonnull (strstr (err, "root"));
  /* the connection is fine for everything else */
  g_assert_cmpint (CTL (daemon, TRUE, &out, NULL, "call", ECHO, "add", "2", "3"), ==, 0);
  g_assert_cmpstr (out, ==, "5\n");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (CTL (daemon, FALSE, &out, NULL, "workers", "add", "1"), ==, 0);
  g_assert_cmpstr (out, ==, "workers: 2\n");
}

/* A socket whose mode keeps the user out (root's 0660) is
 * permission-denied, exit status 7, saying what decides it: it was a
 * bare "connection" error, exit status 2. */
static void
test_socket_mode_refuses (void)
{
  g_autoptr(DirtyTestDaemon) daemon = NULL;
  g_autofree char *err = NULL;

  if (!can_run_as_nobody ())
    return;
  daemon = dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" ECHO "\n", NULL);
  open_dir (daemon);
  g_assert_cmpint (CTL (daemon, TRUE, NULL, &err, "call", ECHO, "add", "2", "3"), ==, 7);
  g_assert_true (g_str_has_prefix (err, "dirtyctl: permission-denied: Could not connect"));
  g_assert_nonnull (strstr (err, "see socket_mode and socket_group"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/access/socket-mode", test_socket_mode);
  g_test_add_func ("/access/socket-mode-refuses", test_socket_mode_refuses);
  g_test_add_func ("/access/bad-settings", test_bad_settings);
  g_test_add_func ("/access/allowed-users", test_allowed_users);
  g_test_add_func ("/access/allowed-groups", test_allowed_groups);
  g_test_add_func ("/access/manage-other-user", test_manage_other_user);
  return g_test_run ();
}
