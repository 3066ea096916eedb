/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <dlfcn.h>
#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

#include <dirty.h>
#include "dirty-hooks-module.h"

static const char *const hook_names[] = {
  DIRTY_HOOK_ON_DIRTY_STARTING,
  DIRTY_HOOK_DIRTY_POST_FORK,
  DIRTY_HOOK_DIRTY_WORKER_INIT,
  DIRTY_HOOK_DIRTY_WORKER_EXIT,
};

struct _DirtyHooks
{
  void          *handle;
  DirtyHookFunc  funcs[G_N_ELEMENTS (hook_names)];
};

DirtyHooks *
dirty_hooks_load (const char  *path,
                  GError     **error)
{
  g_autofree DirtyHooks *hooks = g_new0 (DirtyHooks, 1);
  gboolean any = FALSE;

  g_return_val_if_fail (path != NULL, NULL);

  hooks->handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (hooks->handle == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("cannot load the hooks module “%s”: %s"), path, dlerror ());
      return NULL;
    }
  for (guint i = 0; i < G_N_ELEMENTS (hook_names); i++)
    {
      /* dlsym returns void *; a function pointer of the documented type */
      void *symbol = dlsym (hooks->handle, hook_names[i]);

      memcpy (&hooks->funcs[i], &symbol, sizeof symbol);
      any |= symbol != NULL;
    }
  if (!any)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("the hooks module “%s” exports none of on_dirty_starting, "
                     "dirty_post_fork, dirty_worker_init, dirty_worker_exit"), path);
      dlclose (hooks->handle);
      return NULL;
    }
  return g_steal_pointer (&hooks);
}

void
dirty_hooks_call (DirtyHooks *hooks,
                  const char *name,
                  GVariant   *facts)
{
  g_autoptr(GVariant) owned = g_variant_take_ref (facts);

  if (hooks == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (hook_names); i++)
    if (g_str_equal (name, hook_names[i]) && hooks->funcs[i] != NULL)
      {
        g_debug ("calling hook %s", name);
        hooks->funcs[i] (owned);
      }
}

void
dirty_hooks_free (DirtyHooks *hooks)
{
  g_free (hooks);
}
