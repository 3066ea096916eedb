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

#define DIRTY_CONFIG_ERROR (dirty_config_error_quark ())

typedef enum {
  DIRTY_CONFIG_ERROR_NOT_FOUND,     /* an explicitly named file is missing */
  DIRTY_CONFIG_ERROR_PARSE,         /* the file is not a key file */
  DIRTY_CONFIG_ERROR_INVALID,       /* a bad value or an unknown key */
  DIRTY_CONFIG_ERROR_USAGE,         /* a bad command line */
} DirtyConfigError;

GQuark dirty_config_error_quark (void);

#define DIRTY_TYPE_CONFIG (dirty_config_get_type ())
G_DECLARE_FINAL_TYPE (DirtyConfig, dirty_config, DIRTY, CONFIG, GObject)

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

/* Parses the command line (@argv includes the program name and is not
 * modified), loads the config file it names (or the default one), then
 * applies the options over it. --help prints and exits; --version only
 * sets dirty_config_get_show_version(). */
gboolean     dirty_config_parse_command_line (DirtyConfig  *self,
                                              char        **argv,
                                              GError      **error);

/* Checks an app spec ("MODULE:TypeName", MODULE may be an absolute path
 * to a .so). */
gboolean     dirty_config_check_app_spec    (const char   *spec,
                                             GError      **error);

const char * const *dirty_config_get_apps      (DirtyConfig *self);
const char * const *dirty_config_get_app_path  (DirtyConfig *self);
guint        dirty_config_get_workers          (DirtyConfig *self);
guint        dirty_config_get_timeout          (DirtyConfig *self);
guint        dirty_config_get_threads          (DirtyConfig *self);
guint        dirty_config_get_graceful_timeout (DirtyConfig *self);
guint        dirty_config_get_queue_size       (DirtyConfig *self);
/* (nullable): NULL means dirty_socket_default_path() */
const char  *dirty_config_get_socket           (DirtyConfig *self);
const char  *dirty_config_get_file             (DirtyConfig *self);
gboolean     dirty_config_get_show_version     (DirtyConfig *self);

G_END_DECLS
