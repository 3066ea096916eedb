/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the pieces of DirtyConfig share; not installed:
 *   dirty-config.c           the object, reload and the getters
 *   dirty-config-keys.c      each key's table entry and value parsing, and
 *                            reading a config file's text
 *   dirty-config-load.c      which files are read, the command line, and
 *                            the checks across keys
 *   dirty-config-app-spec.c  MODULE:TypeName[:N] and python: app specs */

#include "dirty-config.h"

G_BEGIN_DECLS

struct _DirtyConfig
{
  GObject   parent_instance;

  GStrv     apps;          /* wire names, MODULE:TypeName */
  guint    *app_workers;   /* per app: N from MODULE:TypeName:N, 0 = every worker */
  GStrv     app_path;
  guint     workers;
  guint     timeout;
  guint     threads;
  guint     graceful_timeout;
  guint     queue_size;
  char     *socket;
  char     *log_file;
  int       socket_mode;   /* socket_mode, -1 = the default */
  gint64    socket_group;  /* socket_group as a gid, -1 = unset */
  GArray   *allowed_users; /* uid_t; empty = everyone */
  GArray   *allowed_groups; /* gid_t; empty = everyone */
  char     *file;          /* the main config file read, if any */
  GStrv     argv;          /* the command line, kept for dirty_config_reload() */
  gboolean  show_version;
  DirtyWorkerMode worker_mode;   /* worker_mode: fork (default) or unit */
  char     *worker_socket; /* worker_socket, unit mode; NULL = the default */
  /* Client connection limits (docs/protocol.md, "Limits") */
  guint     max_body;
  guint     max_in_flight;
  guint     frame_timeout;
  guint     max_queued;
  guint     max_connections_per_uid;
  guint     max_fd_payload;  /* MiB */
  /* recycling and hooks (load_recycle) */
  guint     max_requests;
  guint     max_requests_jitter;
  guint     max_rss;       /* MiB */
  guint     kill_rss;      /* MiB */
  DirtyRecycleOrder recycle_order;
  char     *hooks_module;
  char     *python;        /* runs dirty-python-worker for python: apps */
};

/* Numeric settings: key, where it lives in the struct, allowed range. */
typedef struct {
  const char *key;
  gsize       offset;
  guint64     min;
  guint64     max;
} UintKey;

/* The command line has an option slot for each of these keys, in order */
#define DIRTY_CONFIG_N_UINT_KEYS  5
#define DIRTY_CONFIG_N_LIMIT_KEYS 6
extern const UintKey dirty_config_uint_keys[DIRTY_CONFIG_N_UINT_KEYS];
extern const UintKey dirty_config_limit_keys[DIRTY_CONFIG_N_LIMIT_KEYS];

guint   *dirty_config_uint_field        (DirtyConfig      *self,
                                         const UintKey    *key);
gboolean dirty_config_parse_uint        (const UintKey    *key,
                                         const char       *text,
                                         guint            *out,
                                         GError          **error);
/* Strips the items, rejects empty ones and, for apps, checks each spec
 * and that none is listed twice. */
GStrv    dirty_config_clean_list        (char            **items,
                                         gboolean          are_apps,
                                         GError          **error);
/* Splits checked specs (from dirty_config_clean_list) into wire names
 * and counts; takes @specs. */
void     dirty_config_set_apps          (DirtyConfig      *self,
                                         GStrv             specs);
gboolean dirty_config_parse_worker_mode (const char       *text,
                                         DirtyWorkerMode  *out,
                                         GError          **error);

G_END_DECLS
