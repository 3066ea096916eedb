/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hooks_module: loads the .so (client/dirty-hooks.h describes what
 * it may export) and calls its hooks. Compiled into both the arbiter and
 * dirty-worker. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DirtyHooks DirtyHooks;

/* dlopen()s @path and looks up the hooks. Fails (G_IO_ERROR) naming the
 * file and dlerror(), or when it exports none of the hooks. */
DirtyHooks *dirty_hooks_load (const char  *path,
                              GError     **error);
/* Calls hook @name (DIRTY_HOOK_*) with @facts (a{sv}; (transfer full):
 * a floating or a full reference) if the module has it; @hooks may be
 * NULL. */
void        dirty_hooks_call (DirtyHooks  *hooks,
                              const char  *name,
                              GVariant    *facts);
/* The module stays loaded: a hook may have left callbacks behind. */
void        dirty_hooks_free (DirtyHooks  *hooks);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DirtyHooks, dirty_hooks_free)

G_END_DECLS
