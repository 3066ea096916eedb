/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* streamapp:DirtyStreamTestApp: streaming actions for the tests.
 *
 *   count (sync, stream)   sends kwargs.n chunks (n < 0: forever) of
 *                          kwargs.kind: "int" (i), "string" ("i\n"),
 *                          "float" (i + 0.25), "object" (nested objects,
 *                          arrays and floats), "bytes" (kwargs.size bytes,
 *                          all (i & 0xff)); kwargs.interval seconds apart;
 *                          fails with an app error after kwargs.error_after
 *                          chunks, or abort()s 200 ms after
 *                          kwargs.crash_after chunks. When its cancellable
 *                          fires it records when, and when it returned.
 *   count_async (async, stream)  the same kinds, from the main loop: each
 *                          chunk sent when the last one got credit, or with
 *                          kwargs.burst all queued at once and the end
 *                          right behind them
 *   cancel_report          {"fired", "stopped"}: CLOCK_MONOTONIC us of the
 *                          last cancel count saw, and of its return
 *   value                  a plain action returning {"v": 42}
 */
#include <stdlib.h>
#include <string.h>

#include <dirty.h>

#define DIRTY_TYPE_STREAM_TEST_APP (dirty_stream_test_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyStreamTestApp, dirty_stream_test_app, DIRTY, STREAM_TEST_APP, DirtyApp)

struct _DirtyStreamTestApp
{
  DirtyApp parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtyStreamTestApp, dirty_stream_test_app, DIRTY_TYPE_APP)

static GMutex report_lock;
static gint64 report_fired;
static gint64 report_stopped;

typedef struct {
  const char *kind;
  gint64      n;
  gint64      size;
  gint64      error_after;
  gint64      crash_after;
  double      interval;
  gboolean    burst;
} Params;

static gboolean
read_params (DirtyCall *call,
             Params    *params,
             GError   **error)
{
  return dirty_call_get_kwarg_string (call, "kind", "int", &params->kind, error) &&
         dirty_call_get_kwarg_int (call, "n", 10, &params->n, error) &&
         dirty_call_get_kwarg_int (call, "size", 16, &params->size, error) &&
         dirty_call_get_kwarg_int (call, "error_after", -1, &params->error_after, error) &&
         dirty_call_get_kwarg_int (call, "crash_after", -1, &params->crash_after, error) &&
         dirty_call_get_kwarg_double (call, "interval", 0, &params->interval, error) &&
         dirty_call_get_kwarg_boolean (call, "burst", FALSE, &params->burst, error);
}

static JsonNode *
make_chunk (const Params *params,
            gint64        i)
{
  g_autoptr(JsonBuilder) builder = NULL;

  if (g_str_equal (params->kind, "string"))
    {
      g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT "\n", i);
      return json_node_init_string (json_node_alloc (), text);
    }
  if (g_str_equal (params->kind, "float"))
    return json_node_init_double (json_node_alloc (), i + 0.25);
  if (!g_str_equal (params->kind, "object"))
    return json_node_init_int (json_node_alloc (), i);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "i");
  json_builder_add_int_value (builder, i);
  json_builder_set_member_name (builder, "nested");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "x");
  json_builder_add_double_value (builder, i * 1.5e-3);
  json_builder_set_member_name (builder, "list");
  json_builder_begin_array (builder);
  json_builder_add_string_value (builder, "a");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "deep");
  json_builder_add_boolean_value (builder, TRUE);
  json_builder_end_object (builder);
  json_builder_add_null_value (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static GBytes *
make_bytes (const Params *params,
            gint64        i)
{
  guint8 *data = g_malloc (params->size);

  memset (data, (int) (i & 0xff), params->size);
  return g_bytes_new_take (data, params->size);
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      user_data)
{
  g_mutex_lock (&report_lock);
  report_fired = g_get_monotonic_time ();
  report_stopped = 0;
  g_mutex_unlock (&report_lock);
}

/* Sleeps @seconds unless the call is cancelled first. */
static void
wait_interval (GCancellable *cancellable,
               double        seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < end && !g_cancellable_is_cancelled (cancellable))
    g_usleep (2000);
}

static void
count_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  GCancellable *cancellable = dirty_call_get_cancellable (call);
  GError *error = NULL;
  Params params;
  gulong handler;

  if (!read_params (call, &params, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }

  handler = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), NULL, NULL);
  for (gint64 i = 0; params.n < 0 || i < params.n; i++)
    {
      gboolean ok;

      if (i == params.error_after)
        {
          error = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "failed after %" G_GINT64_FORMAT
                               " chunks", i);
          break;
        }
      if (i == params.crash_after)
        {
          g_usleep (200 * 1000);   /* the chunks before it reach the arbiter */
          abort ();
        }
      if (i > 0 && params.interval > 0)
        wait_interval (cancellable, params.interval);
      if (g_str_equal (params.kind, "bytes"))
        {
          g_autoptr(GBytes) bytes = make_bytes (&params, i);
          ok = dirty_call_send_bytes_chunk (call, bytes, NULL, &error);
        }
      else
        {
          g_autoptr(JsonNode) chunk = make_chunk (&params, i);
          ok = dirty_call_send_chunk (call, chunk, NULL, &error);
        }
      if (!ok)
        break;
    }
  g_cancellable_disconnect (cancellable, handler);

  if (g_cancellable_is_cancelled (cancellable))
    {
      g_mutex_lock (&report_lock);
      report_stopped = g_get_monotonic_time ();
      g_mutex_unlock (&report_lock);
    }
  if (error != NULL)
    dirty_call_return_error (call, error);
  else
    dirty_call_end_stream (call);
}

/* ---- the async producer ---- */

typedef struct {
  DirtyCall *call;
  Params     params;
  gint64     i;
} AsyncCount;

static void
async_count_free (AsyncCount *state)
{
  g_object_unref (state->call);
  g_free (state);
}

static void async_count_next (AsyncCount *state);

static void
async_count_sent_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  AsyncCount *state = user_data;
  GError *error = NULL;

  if (!dirty_call_send_chunk_finish (DIRTY_CALL (source), result, &error))
    {
      dirty_call_return_error (state->call, error);
      async_count_free (state);
      return;
    }
  async_count_next (state);
}

static void
async_count_send (AsyncCount          *state,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data)
{
  if (g_str_equal (state->params.kind, "bytes"))
    {
      g_autoptr(GBytes) bytes = make_bytes (&state->params, state->i);
      dirty_call_send_bytes_chunk_async (state->call, bytes, NULL, callback, user_data);
    }
  else
    {
      g_autoptr(JsonNode) chunk = make_chunk (&state->params, state->i);
      dirty_call_send_chunk_async (state->call, chunk, NULL, callback, user_data);
    }
  state->i++;
}

/* One chunk at a time: the next goes when the last one got credit. */
static void
async_count_next (AsyncCount *state)
{
  if (state->i == state->params.error_after)
    {
      dirty_call_return_new_error (state->call, G_IO_ERROR, G_IO_ERROR_FAILED,
                                   "failed after %" G_GINT64_FORMAT " chunks", state->i);
      async_count_free (state);
      return;
    }
  if (state->params.n >= 0 && state->i >= state->params.n)
    {
      dirty_call_end_stream (state->call);
      async_count_free (state);
      return;
    }
  async_count_send (state, async_count_sent_cb, state);
}

static void
count_async_action (DirtyApp  *app,
                    DirtyCall *call,
                    gpointer   user_data)
{
  AsyncCount *state = g_new0 (AsyncCount, 1);
  GError *error = NULL;

  state->call = g_object_ref (call);
  if (!read_params (call, &state->params, &error))
    {
      dirty_call_return_error (call, error);
      async_count_free (state);
      return;
    }
  if (!state->params.burst)
    {
      async_count_next (state);
      return;
    }
  /* everything queued at once, the end right behind: the worker must
   * still deliver them all, in order, within the credit window */
  while (state->i < state->params.n)
    async_count_send (state, NULL, NULL);
  dirty_call_end_stream (call);
  async_count_free (state);
}

static void
cancel_report_action (DirtyApp  *app,
                      DirtyCall *call,
                      gpointer   user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  g_mutex_lock (&report_lock);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "fired");
  json_builder_add_int_value (builder, report_fired);
  json_builder_set_member_name (builder, "stopped");
  json_builder_add_int_value (builder, report_stopped);
  json_builder_end_object (builder);
  g_mutex_unlock (&report_lock);
  dirty_call_return_value (call, json_builder_get_root (builder));
}

static void
value_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "v");
  json_builder_add_int_value (builder, 42);
  json_builder_end_object (builder);
  dirty_call_return_value (call, json_builder_get_root (builder));
}

static void
dirty_stream_test_app_class_init (DirtyStreamTestAppClass *klass)
{
}

static void
dirty_stream_test_app_init (DirtyStreamTestApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "count", DIRTY_ACTION_SYNC | DIRTY_ACTION_STREAM,
                        count_action, NULL, NULL);
  dirty_app_add_action (app, "count_async", DIRTY_ACTION_ASYNC | DIRTY_ACTION_STREAM,
                        count_async_action, NULL, NULL);
  dirty_app_add_action (app, "cancel_report", DIRTY_ACTION_SYNC, cancel_report_action, NULL, NULL);
  dirty_app_add_action (app, "value", DIRTY_ACTION_SYNC, value_action, NULL, NULL);
}
