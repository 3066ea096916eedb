/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The arbiter's settings: built-in defaults, then the config file
 * (GKeyFile, group [dirty-arbiter]), then the command line, which wins. */

#include <glib-object.h>

G_BEGIN_DECLS

#define DIRTY_CONFIG_GROUP "dirty-arbiter"

#define DIRTY_CONFIG_DEFAULT_WORKERS          1
#define DIRTY_CONFIG_DEFAULT_TIMEOUT          300
#define DIRTY_CONFIG_DEFAULT_THREADS          1
#define DIRTY_CONFIG_DEFAULT_GRACEFUL_TIMEOUT 30
#define DIRTY_CONFIG_DEFAULT_QUEUE_SIZE       10000
#define DIRTY_CONFIG_MAX_WORKERS              1024
/* Client connection limits: the protocol's defaults (dirty-frame.h) */
#define DIRTY_CONFIG_DEFAULT_MAX_BODY         (64u * 1024 * 1024)
#define DIRTY_CONFIG_DEFAULT_MAX_IN_FLIGHT    1024
#define DIRTY_CONFIG_DEFAULT_FRAME_TIMEOUT    30000
#define DIRTY_CONFIG_DEFAULT_MAX_QUEUED       (256u * 1024 * 1024)
#define DIRTY_CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID 4096
#define DIRTY_CONFIG_DEFAULT_MAX_FD_PAYLOAD   4096 /* MiB */

#define DIRTY_CONFIG_ERROR (dirty_config_error_quark ())

typedef enum {
  DIRTY_CONFIG_ERROR_NOT_FOUND,     /* an explicitly named file is missing */
  DIRTY_CONFIG_ERROR_PARSE,         /* the file is not a key file */
  DIRTY_CONFIG_ERROR_INVALID,       /* a bad value or an unknown key */
  DIRTY_CONFIG_ERROR_USAGE,         /* a bad command line */
} DirtyConfigError;

GQuark dirty_config_error_quark (void);

/* worker_mode: who starts the workers */
typedef enum {
  DIRTY_WORKER_MODE_FORK,   /* the arbiter, fork+exec with a socketpair */
  DIRTY_WORKER_MODE_UNIT,   /* systemd, as dirty-worker@N.service units */
} DirtyWorkerMode;

#define DIRTY_TYPE_CONFIG (dirty_config_get_type ())
G_DECLARE_FINAL_TYPE (DirtyConfig, dirty_config, DIRTY, CONFIG, GObject)

/* recycle_order: how a worker that reached dirty_max_requests or
 * dirty_max_rss is replaced */
typedef enum {
  DIRTY_RECYCLE_REPLACE_FIRST,  /* start the replacement, retire the old one once it is ready */
  DIRTY_RECYCLE_RETIRE_FIRST,   /* retire the old one, start the replacement once it exited */
} DirtyRecycleOrder;

DirtyConfig *dirty_config_new               (void);

/* Reads @path over the current values. A missing file is an error only
 * when @must_exist. */
gboolean     dirty_config_load_file         (DirtyConfig  *self,
                                             const char   *path,
                                             gboolean      must_exist,
                                             GError      **error);
/* Reads key file text; @name is used in messages (a file name). */
gboolean     dirty_config_load_data         (DirtyConfig  *self,
                                             const char   *data,
                                             const char   *name,
                                             GError      **error);

/* Reads @dir/dirty-arbiter.conf (if it exists), then the drop-ins
 * @dir/dirty-arbiter.conf.d/\*.conf in lexical order, each over the last. */
gboolean     dirty_config_load_dir          (DirtyConfig  *self,
                                             const char   *dir,
                                             GError      **error);
/* Where the config is searched without --config: DIRTY_SYSCONFDIR/
 * dirty-arbiter for the system instance (root, or any user without
 * XDG_RUNTIME_DIR, as the DynamicUser= service), else
 * $XDG_CONFIG_HOME/dirty-arbiter (a user instance). */
char        *dirty_config_dup_default_dir   (void);

/* Parses the command line (@argv includes the program name and is not
 * modified), loads the config file it names (or searches the default
 * directory with its drop-ins), then applies the options over it and
 * checks the result. --help prints and exits; --version only sets
 * dirty_config_get_show_version(). */
gboolean     dirty_config_parse_command_line (DirtyConfig  *self,
                                              char        **argv,
                                              GError      **error);
/* A new config read the way @self was (same command line, files read
 * again): for SIGHUP. (transfer full) */
DirtyConfig *dirty_config_reload            (DirtyConfig  *self,
                                             GError      **error);

/* Checks an app spec: "MODULE:TypeName" or "MODULE:TypeName:N" (N >= 1:
 * only N workers load it); MODULE may be an absolute path to a .so. Or a
 * Python app, "python:package.module:ClassName" with the same optional :N.
 * @out_name gets the wire name (without :N), @out_workers N or 0. */
gboolean     dirty_config_parse_app_spec    (const char   *spec,
                                             char        **out_name,
                                             guint        *out_workers,
                                             GError      **error);
gboolean     dirty_config_check_app_spec    (const char   *spec,
                                             GError      **error);
/* A Python app (spec or wire name): a worker that loads one is started as
 * dirty-python-worker */
#define DIRTY_CONFIG_PYTHON_PREFIX "python:"
gboolean     dirty_config_is_python_app     (const char   *name);

/* Wire names (MODULE:TypeName), without any :N */
const char * const *dirty_config_get_apps      (DirtyConfig *self);
/* How many workers load @app: N of MODULE:TypeName:N, 0 = every worker */
guint        dirty_config_get_app_workers      (DirtyConfig *self,
                                                const char  *app);
const char * const *dirty_config_get_app_path  (DirtyConfig *self);
guint        dirty_config_get_workers          (DirtyConfig *self);
guint        dirty_config_get_timeout          (DirtyConfig *self);
guint        dirty_config_get_threads          (DirtyConfig *self);
guint        dirty_config_get_graceful_timeout (DirtyConfig *self);
guint        dirty_config_get_queue_size       (DirtyConfig *self);
/* (nullable): NULL means dirty_socket_default_path() */
const char  *dirty_config_get_socket           (DirtyConfig *self);
/* (nullable): log_file / --log-file */
const char  *dirty_config_get_log_file         (DirtyConfig *self);
const char  *dirty_config_get_file             (DirtyConfig *self);
gboolean     dirty_config_get_show_version     (DirtyConfig *self);
/* socket_mode: the mode of a socket the arbiter binds itself, -1 = the
 * default (dirty_access_default_socket_mode()) */
int          dirty_config_get_socket_mode      (DirtyConfig *self);
/* socket_group as a gid, -1 = unset (the socket keeps the creator's) */
gint64       dirty_config_get_socket_group     (DirtyConfig *self);
/* (nullable) (element-type uid_t): allowed_users; NULL or empty = everyone */
GArray      *dirty_config_get_allowed_users    (DirtyConfig *self);
/* (nullable) (element-type gid_t): allowed_groups; NULL or empty = everyone */
GArray      *dirty_config_get_allowed_groups   (DirtyConfig *self);

/* worker_mode / --worker-mode */
DirtyWorkerMode dirty_config_get_worker_mode   (DirtyConfig *self);
/* (nullable): worker_socket / --worker-socket; NULL means
 * dirty_unit_launcher_default_socket() */
const char  *dirty_config_get_worker_socket    (DirtyConfig *self);

/* Limits on each client connection (docs/protocol.md, "Limits") */
/* max_body: bytes of JSON + attachments in one frame */
guint        dirty_config_get_max_body         (DirtyConfig *self);
/* max_in_flight: calls per connection before "busy" */
guint        dirty_config_get_max_in_flight    (DirtyConfig *self);
/* frame_timeout: ms from a frame's first byte to its last */
guint        dirty_config_get_frame_timeout    (DirtyConfig *self);
/* max_queued: bytes written to a client that it has not read */
guint        dirty_config_get_max_queued       (DirtyConfig *self);
/* max_connections_per_uid: 0 = no limit */
guint        dirty_config_get_max_connections_per_uid (DirtyConfig *self);
/* max_fd_payload: MiB of memfd attachments in one frame */
guint        dirty_config_get_max_fd_payload   (DirtyConfig *self);

/* Recycling (dirty-pool-recycle.c): dirty_max_requests (0 = never), plus up to
 * dirty_max_requests_jitter more, drawn per worker; dirty_max_rss in MiB
 * (0 = no limit); recycle_order */
guint        dirty_config_get_max_requests        (DirtyConfig *self);
guint        dirty_config_get_max_requests_jitter (DirtyConfig *self);
guint        dirty_config_get_max_rss             (DirtyConfig *self);
/* dirty_kill_rss in MiB (0 = no limit): the hard limit, SIGKILL */
guint        dirty_config_get_kill_rss            (DirtyConfig *self);
DirtyRecycleOrder dirty_config_get_recycle_order  (DirtyConfig *self);
/* python: the interpreter dirty-python-worker runs with (an absolute path) */
const char  *dirty_config_get_python              (DirtyConfig *self);
/* (nullable): hooks_module, an absolute path to a .so (dirty-hooks.h) */
const char  *dirty_config_get_hooks_module        (DirtyConfig *self);

G_END_DECLS
