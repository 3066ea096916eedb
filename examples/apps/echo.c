/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* echo:DirtyEchoApp: the smallest useful app, for trying things out and
 * for tests.
 *
 *   echo [ARGS...]      returns its args: the array of them, or the single
 *                       arg itself when there is exactly one (so echo("hi")
 *                       returns "hi", and echo(1, 2) returns [1, 2]); bytes
 *                       come back as bytes, wherever they are
 *   add NUMBER...       the sum; an integer if every arg is one
 *   echo_bytes BYTES    returns its bytes argument as bytes
 *   fail [MESSAGE]      fails with an app error whose detail looks like a
 *                       backtrace (MESSAGE also as kwarg "message")
 *   _secret             not callable: names starting with '_' never are
 */
#include <math.h>

#include <dirty.h>

#define DIRTY_TYPE_ECHO_APP (dirty_echo_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyEchoApp, dirty_echo_app, DIRTY, ECHO_APP, DirtyApp)

struct _DirtyEchoApp
{
  DirtyApp parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtyEchoApp, dirty_echo_app, DIRTY_TYPE_APP)

/* @node for the reply: a {"$bytes": i} reference names one of the
 * request's attachments, so the bytes it names are attached to the reply
 * again (a reply carries its own attachments). */
static JsonNode *
echo_node (DirtyCall *call,
           JsonNode  *node)
{
  GBytes *bytes = dirty_call_lookup_bytes (call, node);
  JsonNode *copy;

  if (bytes != NULL)
    return dirty_call_attach (call, bytes);
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      JsonArray *out = json_array_sized_new (json_array_get_length (array));

      for (guint i = 0; i < json_array_get_length (array); i++)
        json_array_add_element (out, echo_node (call, json_array_get_element (array, i)));
      copy = json_node_init_array (json_node_alloc (), out);
      json_array_unref (out);
      return copy;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      JsonObject *out = json_object_new ();
      const char *name;
      JsonNode *member;

      json_object_iter_init_ordered (&iter, json_node_get_object (node));
      while (json_object_iter_next_ordered (&iter, &name, &member))
        json_object_set_member (out, name, echo_node (call, member));
      copy = json_node_init_object (json_node_alloc (), out);
      json_object_unref (out);
      return copy;
    }
  return json_node_ref (node);
}

static void
echo_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  JsonArray *args = dirty_call_get_args (call);
  g_autoptr(JsonNode) all = NULL;

  if (json_array_get_length (args) == 1)
    {
      dirty_call_return_value (call, echo_node (call, json_array_get_element (args, 0)));
      return;
    }
  all = json_node_init_array (json_node_alloc (), args);
  dirty_call_return_value (call, echo_node (call, all));
}

static void
add_action (DirtyApp  *app,
            DirtyCall *call,
            gpointer   user_data)
{
  guint n = dirty_call_get_n_args (call);
  gboolean all_int = TRUE;
  gint64 int_sum = 0;
  double sum = 0;

  for (guint i = 0; i < n; i++)
    {
      GError *error = NULL;
      JsonNode *node = dirty_call_get_arg (call, i);
      double value;

      if (!dirty_call_get_arg_double (call, i, &value, &error))
        {
          dirty_call_return_error (call, error);
          return;
        }
      sum += value;
      /* Integers stay exact, until one is not or the sum overflows. */
      if (all_int &&
          (json_node_get_value_type (node) != G_TYPE_INT64 ||
           __builtin_add_overflow (int_sum, json_node_get_int (node), &int_sum)))
        all_int = FALSE;
    }

  if (all_int)
    dirty_call_return_int (call, int_sum);
  else
    dirty_call_return_double (call, sum);
}

static void
echo_bytes_action (DirtyApp  *app,
                   DirtyCall *call,
                   gpointer   user_data)
{
  GError *error = NULL;
  GBytes *bytes;

  if (!dirty_call_get_arg_bytes (call, 0, &bytes, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  dirty_call_return_bytes (call, bytes);
}

static void
fail_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  GError *error = NULL;
  const char *message;
  g_autofree char *detail = NULL;

  if (!dirty_call_get_kwarg_string (call, "message", "The echo app failed on purpose",
                                    &message, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  /* fail("why") works too */
  if (dirty_call_get_n_args (call) > 0 &&
      !dirty_call_get_arg_string (call, 0, &message, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }

  /* What an app would attach from a real failure: where it happened. */
  detail = g_strdup_printf ("Traceback (most recent call last):\n"
                            "  #0 fail_action () at examples/apps/echo.c:%d\n"
                            "  #1 dirty_app_call () at client/dirty-app.c\n"
                            "  #2 dirty_worker_sync_call_thread () at client/dirty-worker-serve.c\n"
                            "EchoError: %s",
                            __LINE__, message);
  dirty_call_set_detail (call, detail);
  dirty_call_return_new_error (call, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", message);
}

static void
secret_action (DirtyApp  *app,
               DirtyCall *call,
               gpointer   user_data)
{
  dirty_call_return_string (call, "you should never see this");
}

static void
dirty_echo_app_class_init (DirtyEchoAppClass *klass)
{
}

static void
dirty_echo_app_init (DirtyEchoApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "echo", DIRTY_ACTION_SYNC, echo_action, NULL, NULL);
  dirty_app_add_action (app, "add", DIRTY_ACTION_SYNC, add_action, NULL, NULL);
  dirty_app_add_action (app, "echo_bytes", DIRTY_ACTION_SYNC, echo_bytes_action, NULL, NULL);
  dirty_app_add_action (app, "fail", DIRTY_ACTION_SYNC, fail_action, NULL, NULL);
  dirty_app_add_action (app, "_secret", DIRTY_ACTION_SYNC, secret_action, NULL, NULL);
}
