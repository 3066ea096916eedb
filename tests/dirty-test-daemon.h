/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Starts the real dirty-arbiter (and through it real dirty-worker
 * processes) on a socket in a temporary directory, and waits for its
 * sd_notify READY=1 on a notify socket the test owns. Uses only GIO, so
 * both client-library tests and raw-protocol tests can link it. */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _DirtyTestDaemon DirtyTestDaemon;

/* @config: the text of the config file (group [dirty-arbiter]), or NULL
 * for an empty one; @args: extra command-line arguments, NULL-terminated.
 * The app path holds the example and test apps. Fails the test if the
 * daemon does not become ready. */
DirtyTestDaemon *dirty_test_daemon_start    (const char         *config,
                                             const char * const *args);
void             dirty_test_daemon_stop     (DirtyTestDaemon    *daemon);
const char      *dirty_test_daemon_get_socket_path (DirtyTestDaemon *daemon);
const char      *dirty_test_daemon_get_dir  (DirtyTestDaemon    *daemon);
GPid             dirty_test_daemon_get_pid  (DirtyTestDaemon    *daemon);
/* Waits (bounded) for a notify message starting with @prefix; returns it. */
char            *dirty_test_daemon_wait_notify (DirtyTestDaemon *daemon,
                                                const char      *prefix,
                                                guint            timeout_ms);
/* Sends @signum and waits (bounded) for the exit; returns the wait status. */
int              dirty_test_daemon_signal_and_wait (DirtyTestDaemon *daemon,
                                                    int              signum,
                                                    guint            timeout_ms);

/* Runs dirty-arbiter with @argv to completion, returning its exit status
 * and stderr (for config and usage errors). */
int              dirty_test_run_arbiter     (const char * const *argv,
                                             char              **out_stderr);

/* Pids of the processes whose parent is @pid (the daemon's workers). */
GArray          *dirty_test_list_children   (GPid pid);
gboolean         dirty_test_pid_alive       (GPid pid);
/* A fresh path in the temporary directory, not created, exported as
 * @variable for the daemons' workers (a test app's switch file). Call it
 * in main () before any thread exists. (transfer full) */
char            *dirty_test_export_temp_path (const char *variable,
                                              const char *name);
/* Waits until @pid is dead (or a zombie); fails the test after @ms */
void             dirty_test_wait_gone       (GPid  pid,
                                             guint ms);

/* Whether the daemon runs under valgrind (meson test --setup=valgrind),
 * and so how much longer than usual the test's waits should be: 10, or 1. */
gboolean         dirty_test_under_valgrind  (void);
guint            dirty_test_timeout_scale   (void);
/* The text of the file at @path from the first @needle on, waiting up to
 * 10 s for it to appear (a log file the daemon writes) */
char            *dirty_test_wait_for_text   (const char *path,
                                             const char *needle);
/* File descriptors @pid has open (this process when @pid is 0) */
guint            dirty_test_count_fds       (GPid pid);
/* Under valgrind, appends to @argv (of static strings, no free function)
 * the wrapper that runs the program that follows under memcheck, where
 * an error or a definite leak gives exit status 99 (no test expects
 * that one); otherwise does nothing. */
void             dirty_test_add_valgrind    (GPtrArray *argv);

/* An async call's callback that stores its result (a reference) in
 * *@user_data, a GAsyncResult pointer that starts NULL; and the wait for
 * it, iterating the thread-default context. */
void             dirty_test_store_result_cb (GObject      *source,
                                             GAsyncResult *result,
                                             gpointer      user_data);
GAsyncResult    *dirty_test_wait_result     (GAsyncResult **result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyTestDaemon, dirty_test_daemon_stop)

G_END_DECLS
