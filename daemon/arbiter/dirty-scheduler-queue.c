/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DirtyScheduler's per-app queues: one FIFO per client connection, the
 * FIFOs taking turns (the fairness described at struct _DirtyAppQueue). */
#include "config.h"

#include <string.h>

#include "dirty-scheduler-private.h"
#include "dirty-util.h"

DirtyAppQueue *
dirty_app_queue_new (const char *name)
{
  DirtyAppQueue *queue = g_new0 (DirtyAppQueue, 1);

  queue->name = g_strdup (name);
  queue->stats = g_rc_box_new0 (DirtyAppStats);
  queue->clients = g_hash_table_new (NULL, NULL);
  g_queue_init (&queue->turns);
  return queue;
}

void
dirty_app_queue_free (gpointer data)
{
  DirtyAppQueue *queue = data;
  GList *turn;

  while ((turn = g_queue_pop_head_link (&queue->turns)) != NULL)
    {
      DirtyClientQueue *client = turn->data;
      GList *link;

      while ((link = g_queue_pop_head_link (&client->jobs)) != NULL)
        {
          DirtyJob *job = link->data;

          job->queue = NULL;
          dirty_job_unref (job);
        }
      g_free (client);
    }
  g_hash_table_unref (queue->clients);
  g_rc_box_release (queue->stats);
  g_free (queue->name);
  g_free (queue);
}

/* Appends @job to its client's FIFO; a client new to the queue takes
 * the last turn. */
void
dirty_app_queue_push (DirtyAppQueue *queue,
                DirtyJob      *job)
{
  DirtyClientQueue *client = g_hash_table_lookup (queue->clients, job->peer);

  if (client == NULL)
    {
      client = g_new0 (DirtyClientQueue, 1);
      client->app = queue;
      client->client = job->peer;
      g_queue_init (&client->jobs);
      client->turn_link.data = client;
      g_hash_table_insert (queue->clients, (gpointer) client->client, client);
      g_queue_push_tail_link (&queue->turns, &client->turn_link);
    }
  job->queue = client;
  g_queue_push_tail_link (&client->jobs, &job->queue_link);
  queue->n_jobs++;
}

/* The call whose turn it is */
DirtyJob *
dirty_app_queue_peek (DirtyAppQueue *queue)
{
  DirtyClientQueue *client = g_queue_peek_head (&queue->turns);

  return client != NULL ? g_queue_peek_head (&client->jobs) : NULL;
}

/* @job's client had its turn: it goes to the back of the line. */
void
dirty_app_queue_end_turn (DirtyJob *job)
{
  DirtyClientQueue *client = job->queue;
  DirtyAppQueue *queue = client->app;

  if (queue->turns.head == &client->turn_link && client->jobs.length > 1)
    {
      g_queue_unlink (&queue->turns, &client->turn_link);
      g_queue_push_tail_link (&queue->turns, &client->turn_link);
    }
}

void
dirty_scheduler_queue_remove (DirtyScheduler *self,
              DirtyJob       *job)
{
  DirtyClientQueue *client = job->queue;
  DirtyAppQueue *queue;

  if (client == NULL)
    return;
  queue = client->app;
  g_queue_unlink (&client->jobs, &job->queue_link);
  job->queue = NULL;
  queue->n_jobs--;
  if (client->jobs.length == 0)
    {
      g_queue_unlink (&queue->turns, &client->turn_link);
      g_hash_table_remove (queue->clients, client->client);
      g_free (client);
    }
  self->n_queued--;
  dirty_job_unref (job);
}

/* Whether @name is one part of the app spec @spec: its module (also
 * without a path and “.so”) or its type name. */
static gboolean
is_part_of_spec (const char *spec,
                 const char *name)
{
  g_auto(GStrv) parts = g_strsplit (spec, ":", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      const char *base = strrchr (parts[i], '/');
      g_autofree char *module = NULL;

      base = base != NULL ? base + 1 : parts[i];
      module = g_str_has_suffix (base, ".so") ? g_strndup (base, strlen (base) - 3)
                                              : g_strdup (base);
      if (strcmp (parts[i], name) == 0 || strcmp (module, name) == 0)
        return TRUE;
    }
  return FALSE;
}

/* A call names its app by the whole spec (“echo:DirtyEchoApp”); one that
 * gave a part of it (“echo”, “DirtyEchoApp”) is told the specs it may
 * have meant, so the error is a hint and not only a refusal. */
void
dirty_scheduler_set_app_not_found (DirtyScheduler  *self,
                                   const char      *name,
                                   GError         **error)
{
  g_autoptr(GPtrArray) specs = dirty_util_sorted_keys (self->apps);
  g_autoptr(GString) meant = g_string_new (NULL);
  guint n_meant = 0;

  for (guint i = 0; name[0] != '\0' && i < specs->len; i++)
    if (is_part_of_spec (specs->pdata[i], name))
      g_string_append_printf (meant, "%s“%s”", n_meant++ > 0 ? ", " : "",
                              (const char *) specs->pdata[i]);
  if (n_meant == 0)
    g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
                 "no app “%s” is configured", name);
  else
    g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP_NOT_FOUND,
                 "no app “%s” is configured; did you mean %s%s?", name,
                 n_meant > 1 ? "one of " : "", meant->str);
}
