/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyWorkerProc's part of the restart handoff (unit mode,
 * dirty-handoff.h): a worker's connection and facts given up for the next
 * arbiter, and a worker taken over from the previous one. */
#include "config.h"

#include "dirty-timer.h"
#include "dirty-worker-proc-private.h"

/* The facts the next arbiter needs to serve the worker without a new
 * HELLO, into @facts: what it was told (threads, apps, app_path, hooks),
 * what it said (app_states), its counters and the unread bytes. */
static void
dirty_worker_proc_write_facts (DirtyWorkerProc *self,
                               GVariantDict    *facts,
                               GByteArray      *unread)
{
  GVariantBuilder states;
  GHashTableIter iter;
  gpointer key, value;

  g_variant_builder_init (&states, G_VARIANT_TYPE ("a(sus)"));
  g_hash_table_iter_init (&iter, self->apps);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      AppStatus *status = value;

      g_variant_builder_add (&states, "(sus)", key, (guint32) status->state,
                             status->error != NULL ? status->error : "");
    }
  g_variant_dict_insert (facts, "pid", "x", self->pid);
  g_variant_dict_insert (facts, "threads", "u", (guint32) self->threads);
  g_variant_dict_insert_value (facts, "apps",
                               g_variant_new_strv ((const char * const *) self->unit_apps, -1));
  g_variant_dict_insert_value (facts, "app_path",
                               g_variant_new_strv ((const char * const *) self->unit_app_path,
                                                   self->unit_app_path != NULL ? -1 : 0));
  if (self->hooks != NULL)
    g_variant_dict_insert (facts, "hooks", "s", self->hooks);
  g_variant_dict_insert_value (facts, "app_states", g_variant_builder_end (&states));
  g_variant_dict_insert (facts, "served", "t", self->served);
  g_variant_dict_insert (facts, "errors", "t", self->errors);
  /* ids are never reused on a connection, across arbiters too */
  g_variant_dict_insert (facts, "next_rid", "t", self->next_rid);
  g_variant_dict_insert (facts, "started", "x", self->started);
  g_variant_dict_insert_value (facts, "unread",
                               g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, unread->data,
                                                          unread->len, 1));
}

int
dirty_worker_proc_release (DirtyWorkerProc *self,
                           GVariantDict    *facts)
{
  g_autoptr(GByteArray) unread = g_byte_array_new ();
  int fd;

  g_return_val_if_fail (DIRTY_IS_WORKER_PROC (self), -1);

  /* only an idle, healthy unit worker with nothing left to write */
  if (self->launcher == NULL || self->state != DIRTY_WORKER_PROC_LIVE || self->retiring ||
      g_hash_table_size (self->in_flight) > 0 || self->connection == NULL ||
      dirty_connection_get_queued_bytes (self->connection) > 0)
    return -1;
  fd = dirty_connection_detach (self->connection, unread);
  if (fd < 0)
    return -1;
  dirty_worker_proc_write_facts (self, facts, unread);
  /* no "lost" or "exited": it lives on, for the next arbiter */
  self->state = DIRTY_WORKER_PROC_EXITED;
  g_clear_pointer (&self->watchdog, dirty_timer_free);
  dirty_unit_launcher_forget (self->launcher, self->id, self);
  dirty_worker_proc_log (self, G_LOG_LEVEL_INFO,
                         "its connection goes to the fd store; it keeps running");
  return fd;
}

static GStrv
facts_strv (GVariant   *facts,
            const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (facts, key, G_VARIANT_TYPE_STRING_ARRAY);

  return value != NULL ? g_variant_dup_strv (value, NULL) : NULL;
}

/* Same members, in any order */
static gboolean
same_set (const char * const *a,
          const char * const *b)
{
  if (a == NULL || b == NULL || g_strv_length ((GStrv) a) != g_strv_length ((GStrv) b))
    return FALSE;
  for (guint i = 0; a[i] != NULL; i++)
    if (!g_strv_contains (b, a[i]))
      return FALSE;
  return TRUE;
}

gboolean
dirty_worker_proc_facts_match (GVariant                     *facts,
                               const DirtyWorkerProcOptions *options)
{
  g_auto(GStrv) apps = facts_strv (facts, "apps");
  g_auto(GStrv) app_path = facts_strv (facts, "app_path");
  const char *empty[] = { NULL };
  const char *hooks = NULL;
  guint32 threads = 0;

  g_variant_lookup (facts, "threads", "u", &threads);
  g_variant_lookup (facts, "hooks", "&s", &hooks);
  return app_path != NULL && threads == MAX (options->threads, 1) &&
         g_strcmp0 (hooks, options->hooks) == 0 &&
         same_set ((const char * const *) apps, options->apps) &&
         g_strv_equal ((const char * const *) app_path,
                       options->app_path != NULL ? options->app_path : empty);
}

/* The facts' apps and their states, as the previous arbiter knew them */
static gboolean
dirty_worker_proc_read_facts (DirtyWorkerProc *self,
                              GVariant        *facts)
{
  g_autoptr(GVariant) states = g_variant_lookup_value (facts, "app_states", G_VARIANT_TYPE ("a(sus)"));
  g_autoptr(GVariant) unread = g_variant_lookup_value (facts, "unread", G_VARIANT_TYPE_BYTESTRING);
  GVariantIter iter;
  const char *app, *error;
  guint32 state;

  self->unit_apps = facts_strv (facts, "apps");
  self->unit_app_path = facts_strv (facts, "app_path");
  if (states == NULL || self->unit_apps == NULL || self->unit_app_path == NULL ||
      !g_variant_lookup (facts, "pid", "x", &self->pid) || self->pid <= 0)
    return FALSE;
  g_variant_lookup (facts, "hooks", "s", &self->hooks);
  g_variant_lookup (facts, "served", "t", &self->served);
  g_variant_lookup (facts, "errors", "t", &self->errors);
  g_variant_lookup (facts, "next_rid", "t", &self->next_rid);
  for (guint i = 0; self->unit_apps[i] != NULL; i++)
    g_hash_table_insert (self->apps, g_strdup (self->unit_apps[i]), g_new0 (AppStatus, 1));
  g_variant_iter_init (&iter, states);
  while (g_variant_iter_next (&iter, "(&su&s)", &app, &state, &error))
    {
      AppStatus *status = g_hash_table_lookup (self->apps, app);

      if (status == NULL || state > DIRTY_APP_STATE_UNAVAILABLE)
        continue;
      status->state = state;
      status->error = *error != '\0' ? g_strdup (error) : NULL;
    }
  if (unread != NULL && g_variant_get_size (unread) > 0)
    self->unread = g_variant_get_data_as_bytes (unread);
  return TRUE;
}

DirtyWorkerProc *
dirty_worker_proc_adopt_unit (guint                         worker_id,
                              GVariant                     *facts,
                              const DirtyWorkerProcOptions *options,
                              DirtyUnitLauncher            *launcher,
                              GSocket                      *socket)
{
  DirtyWorkerProc *self = dirty_worker_proc_new (worker_id, options);
  guint32 threads = 0;
  gint64 started = 0;

  self->launcher = g_object_ref (launcher);
  self->adopted = TRUE;
  if (g_variant_lookup (facts, "threads", "u", &threads) && threads > 0)
    self->threads = threads;
  self->state = DIRTY_WORKER_PROC_STARTING;
  self->watchdog = dirty_timer_new (dirty_worker_proc_watchdog_cb, self);
  /* its lifetime counts from its real start (the respawn backoff) */
  self->started = g_variant_lookup (facts, "started", "x", &started) && started > 0 &&
                  started <= g_get_monotonic_time () ? started : g_get_monotonic_time ();
  dirty_timer_arm_at (self->watchdog, g_get_monotonic_time () +
                      DIRTY_WORKER_PROC_HEARTBEAT_TIMEOUT_S * G_USEC_PER_SEC);
  if (!dirty_worker_proc_read_facts (self, facts))
    {
      /* no way to know what it loads: it goes, a new one comes */
      dirty_unit_launcher_expect (launcher, worker_id, self);
      dirty_worker_proc_kill (self, "handoff: its stored state is incomplete");
      return self;
    }
  dirty_unit_launcher_expect (launcher, worker_id, self);
  /* the same check as a new connection: its pid must be in its unit */
  dirty_unit_launcher_check (launcher, socket, self);
  return self;
}
