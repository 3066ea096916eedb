/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the arbiter's config parser, as it reads a config
 * file or drop-in (GKeyFile text with [dirty-arbiter] keys, app specs
 * with worker counts, numbers, lists). A bad config must be an error
 * naming file, line and key, never a crash. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "dirty-config.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(DirtyConfig) config = dirty_config_new ();
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(GError) error = NULL;

  if (dirty_config_load_data (config, text, "fuzz.conf", &error))
    {
      const char * const *apps = dirty_config_get_apps (config);

      for (guint i = 0; apps != NULL && apps[i] != NULL; i++)
        dirty_config_get_app_workers (config, apps[i]);
      dirty_config_get_workers (config);
      dirty_config_get_timeout (config);
      dirty_config_get_socket (config);
    }
  else
    g_assert (error != NULL && error->message != NULL);
  return 0;
}
