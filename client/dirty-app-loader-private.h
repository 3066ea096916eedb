/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Finding an app by name: MODULE:TypeName, where MODULE is a file name on
 * the app path (MODULE.so or libMODULE.so) or an absolute path to a .so.
 * Not installed. */

#include "dirty-app.h"

G_BEGIN_DECLS

/* Splits @name into its module and type name. A trailing ":N" (the
 * arbiter's worker count) is accepted and dropped. */
gboolean  dirty_app_loader_parse_name (const char  *name,
                                       char       **out_module,
                                       char       **out_type_name,
                                       GError     **error);

/* "DirtyEchoApp" -> "dirty_echo_app_get_type" (transfer full) */
char     *dirty_app_loader_type_symbol (const char *type_name);

/* Opens the module, finds the type, checks it and instantiates it with
 * its "name" set to @name. @app_path NULL or empty means DIRTY_APPDIR. */
DirtyApp *dirty_app_loader_load       (const char         *name,
                                       const char * const *app_path,
                                       GError            **error);

G_END_DECLS
