/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <unistd.h>

#include "dirty-socket.h"

char *
dirty_socket_default_path (void)
{
  const char *env = g_getenv ("DIRTY_ARBITER_SOCKET");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  /* root is the system instance; anyone else is a user (session) one */
  if (getuid () == 0)
    return g_strdup ("/run/dirty-arbiter.sock");
  return g_build_filename (g_get_user_runtime_dir (), "dirty-arbiter.sock", NULL);
}
