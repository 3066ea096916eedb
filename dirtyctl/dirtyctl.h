/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib/gi18n.h>

/* What the verbs of dirtyctl share: exit codes, the connection, option
 * contexts with man-page help, and a main loop that Ctrl-C interrupts. */

#include <dirty.h>

G_BEGIN_DECLS

/* Exit codes, one per kind of failure (documented in --help and README) */
typedef enum {
  DIRTYCTL_EXIT_OK = 0,
  DIRTYCTL_EXIT_USAGE = 1,         /* bad options or arguments, unreadable file, unwritable output */
  DIRTYCTL_EXIT_CONNECTION = 2,    /* cannot connect, connection lost, protocol */
  DIRTYCTL_EXIT_FAILED = 3,        /* the call failed: app error, bad arguments, worker lost */
  DIRTYCTL_EXIT_NOT_FOUND = 4,     /* no such app or action */
  DIRTYCTL_EXIT_TIMEOUT = 5,       /* the deadline passed */
  DIRTYCTL_EXIT_UNAVAILABLE = 6,   /* busy, no worker, shutting down: try later */
  DIRTYCTL_EXIT_PERMISSION = 7,    /* not allowed */
  DIRTYCTL_EXIT_INTERRUPTED = 130, /* Ctrl-C (SIGINT); the call was cancelled */
} DirtyctlExit;

/* The text of the "EXIT STATUS" section, for every verb's --help */
#define DIRTYCTL_EXIT_HELP \
  N_(\
  "Exit status:\n" \
  "  0    success\n" \
  "  1    usage error: bad options or arguments, unreadable @file,\n" \
  "       output that cannot be written\n" \
  "  2    could not connect to the arbiter, or the connection was lost\n" \
  "  3    the call failed (app-error, invalid-argument, worker-lost, failed)\n" \
  "  4    no such app or action (app-not-found, action-not-found)\n" \
  "  5    the call timed out (timeout), or the arbiter did not answer\n" \
  "       status, metrics, workers or reload within --timeout\n" \
  "  6    no capacity now: busy, no-worker, shutting-down\n" \
  "  7    permission denied\n" \
  "  130  interrupted by Ctrl-C (SIGINT); the call was cancelled in its worker\n" \
  "  141  killed by SIGPIPE: the reader of its output went away (… | head);\n" \
  "       the call was cancelled in its worker\n")

/* --socket: NULL for the library's default */
extern char *dirtyctl_socket;

GOptionContext *dirtyctl_context_new (const char   *parameters,
                                      const char   *summary,
                                      const char   *description,
                                      GOptionEntry *entries);
/* Parses the verb's own arguments; on failure prints the error and a
 * pointer to --help, and returns FALSE. */
gboolean        dirtyctl_parse       (GOptionContext *context,
                                      int            *argc,
                                      char         ***argv);
int             dirtyctl_usage       (const char *format,
                                      ...) G_GNUC_PRINTF (1, 2);

DirtyClient    *dirtyctl_connect     (GError **error);
/* --timeout MS, for a G_OPTION_ARG_CALLBACK: 0 or more milliseconds */
gboolean        dirtyctl_parse_timeout (const char  *value,
                                        int         *ms,
                                        GError     **error);
/* G_IO_ERROR from errno: writing standard output failed */
void            dirtyctl_set_output_error (GError **error);
/* Prints @error ("dirtyctl: CODE: message", and the app's detail) and
 * returns its exit code. */
int             dirtyctl_fail        (const GError *error);

/* A main loop that SIGINT stops: run_until() returns the status set with
 * done(), or 130 after Ctrl-C (the operations see their cancellable fire
 * first, so the arbiter hears the cancel). */
typedef struct {
  GMainLoop    *loop;
  GCancellable *cancellable;
  gboolean      interrupted;
  gboolean      timed_out;
  int           status;
  guint         sigint_source;
  GAsyncResult *result;       /* dirtyctl_run_store_cb ()'s */
} DirtyctlRun;

void dirtyctl_run_init  (DirtyctlRun *run);
int  dirtyctl_run_until (DirtyctlRun *run);
void dirtyctl_run_done  (DirtyctlRun *run,
                         int          status);
void dirtyctl_run_clear (DirtyctlRun *run);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DirtyctlRun, dirtyctl_run_clear)

/* The control verbs (status, metrics, workers, reload) are answered by
 * the arbiter's main loop at once: their --timeout (25 s by default)
 * turns a stopped or hung arbiter into an error instead of a dirtyctl
 * that hangs with it. add_control_options () gives a verb --timeout;
 * run_control () runs @run until the request started with
 * dirtyctl_run_store_cb (and run->cancellable) answers, into
 * run->result: DIRTYCTL_EXIT_OK, or the exit code of a timeout (said on
 * stderr) or of Ctrl-C. */
void dirtyctl_add_control_options (GOptionContext *context);
void dirtyctl_run_store_cb        (GObject        *source,
                                   GAsyncResult   *result,
                                   gpointer        user_data);
int  dirtyctl_run_control         (DirtyctlRun    *run);

/* dirtyctl-output.c: results on stdout or in --output FILE */
/* Whether @path can take a result (an existing file replaced, a new one
 * created, a device written to): checked before the call is sent */
gboolean       dirtyctl_check_output (const char  *path,
                                      GError     **error);
/* @path replaced (a device or a pipe: appended to) */
GOutputStream *dirtyctl_open_output  (const char  *path,
                                      GError     **error);
gboolean       dirtyctl_write_output (const char  *path,
                                      const void  *data,
                                      gsize        size,
                                      GError     **error);
/* Standard output, flushed: a result lost to a full disk must fail */
gboolean       dirtyctl_print_out    (const void  *data,
                                      gsize        size,
                                      GError     **error);

int dirtyctl_call     (int argc, char **argv);
int dirtyctl_stream   (int argc, char **argv);
int dirtyctl_status   (int argc, char **argv);
int dirtyctl_metrics  (int argc, char **argv);
int dirtyctl_workers  (int argc, char **argv);
int dirtyctl_reload   (int argc, char **argv);

/* For status and metrics: the arbiter's STATUS object, or NULL with the
 * exit code in @status. */
JsonNode *dirtyctl_query_status (int *status);

/* Members of the STATUS object; missing ones (an older or newer
 * arbiter) read as NULL, 0 or "". */
JsonObject *dirtyctl_get_object  (JsonObject *object,
                                  const char *name);
JsonArray  *dirtyctl_get_workers (JsonObject *root);
gint64      dirtyctl_get_int     (JsonObject *object,
                                  const char *name);
double      dirtyctl_get_double  (JsonObject *object,
                                  const char *name);
const char *dirtyctl_get_string  (JsonObject *object,
                                  const char *name);

G_END_DECLS
