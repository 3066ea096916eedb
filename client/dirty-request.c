/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-i18n-private.h"
#include "dirty-json-write.h"
#include "dirty-message.h"
#include "dirty-request-private.h"
#include "dirty-stream-private.h"

/**
 * DirtyRequest:
 *
 * One call of an app's action, built before it is sent with
 * [method@Dirty.Client.send].
 *
 * A request names the app (`MODULE:TypeName`, such as
 * `"echo:DirtyEchoApp"`) and the action, and carries positional arguments
 * (a [struct@Json.Array]), keyword arguments (a [struct@Json.Object]) and
 * binary attachments. Bytes never travel as base64: each attachment is
 * sent raw, and the JSON refers to it as `{"$bytes": INDEX}`, which
 * [method@Dirty.Request.add_bytes], [method@Dirty.Request.set_kwarg_bytes]
 * and [method@Dirty.Request.attach] write for you.
 *
 * ```c
 * g_autoptr(DirtyRequest) request = dirty_request_new ("thumbnail:DirtyThumbnailApp",
 *                                                      "thumbnail");
 * g_autoptr(JsonNode) size = json_node_init_int (json_node_alloc (), 128);
 *
 * dirty_request_add_bytes (request, image);
 * dirty_request_set_kwarg (request, "size", size);
 * dirty_request_set_timeout (request, 5000);
 * ```
 *
 * A request is not thread-safe while it is being built; sending it takes
 * a snapshot, so the same request may be sent many times, from any
 * thread, once it is no longer changed.
 *
 * Since: 0.1
 */
struct _DirtyRequest
{
  GObject     parent_instance;

  char       *app;
  char       *action;
  JsonArray  *args;
  JsonObject *kwargs;
  GPtrArray  *attachments;   /* of GBytes */
  guint       timeout_ms;
};

G_DEFINE_FINAL_TYPE (DirtyRequest, dirty_request, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_APP,
  PROP_ACTION,
  PROP_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
dirty_request_finalize (GObject *object)
{
  DirtyRequest *self = DIRTY_REQUEST (object);

  g_free (self->app);
  g_free (self->action);
  json_array_unref (self->args);
  json_object_unref (self->kwargs);
  g_ptr_array_unref (self->attachments);

  G_OBJECT_CLASS (dirty_request_parent_class)->finalize (object);
}

static void
dirty_request_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  DirtyRequest *self = DIRTY_REQUEST (object);

  switch (prop_id)
    {
    case PROP_APP:
      g_value_set_string (value, self->app);
      break;
    case PROP_ACTION:
      g_value_set_string (value, self->action);
      break;
    case PROP_TIMEOUT:
      g_value_set_uint (value, self->timeout_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dirty_request_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  DirtyRequest *self = DIRTY_REQUEST (object);

  switch (prop_id)
    {
    case PROP_APP:
      g_free (self->app);
      self->app = g_value_dup_string (value);
      break;
    case PROP_ACTION:
      g_free (self->action);
      self->action = g_value_dup_string (value);
      break;
    case PROP_TIMEOUT:
      dirty_request_set_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dirty_request_class_init (DirtyRequestClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dirty_request_finalize;
  object_class->get_property = dirty_request_get_property;
  object_class->set_property = dirty_request_set_property;

  /**
   * DirtyRequest:app:
   *
   * The app to call, as `MODULE:TypeName` (for example
   * `"echo:DirtyEchoApp"`).
   *
   * Since: 0.1
   */
  properties[PROP_APP] =
    g_param_spec_string ("app", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DirtyRequest:action:
   *
   * The name of the action to call.
   *
   * Since: 0.1
   */
  properties[PROP_ACTION] =
    g_param_spec_string ("action", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DirtyRequest:timeout:
   *
   * The call's timeout in milliseconds, or 0 to use the client's
   * [property@Dirty.Client:timeout]. The arbiter caps it by its own
   * `dirty_timeout`.
   *
   * Since: 0.1
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_uint ("timeout", NULL, NULL, 0, G_MAXUINT32, 0,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                       G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dirty_request_init (DirtyRequest *self)
{
  self->args = json_array_new ();
  self->kwargs = json_object_new ();
  self->attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
}

/**
 * dirty_request_new:
 * @app: the app to call, as `MODULE:TypeName`
 * @action: the action to call
 *
 * Creates a request for @action of @app, with no arguments. A name the
 * arbiter does not serve, an empty one included, fails the call with
 * %DIRTY_ERROR_APP_NOT_FOUND or %DIRTY_ERROR_ACTION_NOT_FOUND.
 *
 * Returns: (transfer full): a new #DirtyRequest
 *
 * Since: 0.1
 */
DirtyRequest *
dirty_request_new (const char *app,
                   const char *action)
{
  g_return_val_if_fail (app != NULL, NULL);
  g_return_val_if_fail (action != NULL, NULL);

  return g_object_new (DIRTY_TYPE_REQUEST, "app", app, "action", action, NULL);
}

static JsonNode *
copy_or_null (JsonNode *value)
{
  return value != NULL ? json_node_copy (value) : json_node_new (JSON_NODE_NULL);
}

/**
 * dirty_request_add_arg:
 * @self: a #DirtyRequest
 * @value: (nullable): the argument; %NULL is JSON `null`
 *
 * Appends a copy of @value to the positional arguments.
 *
 * Since: 0.1
 */
void
dirty_request_add_arg (DirtyRequest *self,
                       JsonNode     *value)
{
  g_return_if_fail (DIRTY_IS_REQUEST (self));

  json_array_add_element (self->args, copy_or_null (value));
}

/**
 * dirty_request_attach:
 * @self: a #DirtyRequest
 * @bytes: the data to attach
 *
 * Adds @bytes to the request's attachments and returns the JSON that
 * refers to it, `{"$bytes": INDEX}`, to put anywhere in the arguments
 * (for example inside a list or an object). The bytes travel raw, once.
 *
 * Returns: (transfer full): a reference to the attachment
 *
 * Since: 0.1
 */
JsonNode *
dirty_request_attach (DirtyRequest *self,
                      GBytes       *bytes)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);
  g_return_val_if_fail (bytes != NULL, NULL);

  g_ptr_array_add (self->attachments, g_bytes_ref (bytes));
  return dirty_json_bytes_ref_new (self->attachments->len - 1);
}

/**
 * dirty_request_add_bytes:
 * @self: a #DirtyRequest
 * @bytes: the data
 *
 * Appends @bytes to the positional arguments, as an attachment.
 *
 * Since: 0.1
 */
void
dirty_request_add_bytes (DirtyRequest *self,
                         GBytes       *bytes)
{
  g_return_if_fail (DIRTY_IS_REQUEST (self));
  g_return_if_fail (bytes != NULL);

  json_array_add_element (self->args, dirty_request_attach (self, bytes));
}

/**
 * dirty_request_set_kwarg:
 * @self: a #DirtyRequest
 * @name: the argument's name
 * @value: (nullable): the argument; %NULL is JSON `null`
 *
 * Sets the keyword argument @name to a copy of @value, replacing any
 * previous value.
 *
 * Since: 0.1
 */
void
dirty_request_set_kwarg (DirtyRequest *self,
                         const char   *name,
                         JsonNode     *value)
{
  g_return_if_fail (DIRTY_IS_REQUEST (self));
  g_return_if_fail (name != NULL);

  json_object_set_member (self->kwargs, name, copy_or_null (value));
}

/**
 * dirty_request_set_kwarg_bytes:
 * @self: a #DirtyRequest
 * @name: the argument's name
 * @bytes: the data
 *
 * Sets the keyword argument @name to @bytes, as an attachment.
 *
 * Since: 0.1
 */
void
dirty_request_set_kwarg_bytes (DirtyRequest *self,
                               const char   *name,
                               GBytes       *bytes)
{
  g_return_if_fail (DIRTY_IS_REQUEST (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (bytes != NULL);

  json_object_set_member (self->kwargs, name, dirty_request_attach (self, bytes));
}

/**
 * dirty_request_set_args:
 * @self: a #DirtyRequest
 * @args: (nullable): the positional arguments, or %NULL for none
 *
 * Replaces the positional arguments with a copy of @args. References
 * to attachments (`{"$bytes": INDEX}`) in @args keep their meaning.
 *
 * Since: 0.1
 */
void
dirty_request_set_args (DirtyRequest *self,
                        JsonArray    *args)
{
  g_autoptr(JsonArray) copy = json_array_new ();

  g_return_if_fail (DIRTY_IS_REQUEST (self));

  for (guint i = 0; args != NULL && i < json_array_get_length (args); i++)
    json_array_add_element (copy, json_node_copy (json_array_get_element (args, i)));
  json_array_unref (self->args);
  self->args = g_steal_pointer (&copy);
}

/**
 * dirty_request_set_kwargs:
 * @self: a #DirtyRequest
 * @kwargs: (nullable): the keyword arguments, or %NULL for none
 *
 * Replaces the keyword arguments with a copy of @kwargs.
 *
 * Since: 0.1
 */
void
dirty_request_set_kwargs (DirtyRequest *self,
                          JsonObject   *kwargs)
{
  g_autoptr(JsonObject) copy = json_object_new ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  g_return_if_fail (DIRTY_IS_REQUEST (self));

  if (kwargs != NULL)
    {
      json_object_iter_init (&iter, kwargs);
      while (json_object_iter_next (&iter, &name, &value))
        json_object_set_member (copy, name, json_node_copy (value));
    }
  json_object_unref (self->kwargs);
  self->kwargs = g_steal_pointer (&copy);
}

/**
 * dirty_request_set_timeout:
 * @self: a #DirtyRequest
 * @timeout_ms: the timeout in milliseconds, or 0 for the client's
 *
 * Sets [property@Dirty.Request:timeout].
 *
 * Since: 0.1
 */
void
dirty_request_set_timeout (DirtyRequest *self,
                           guint         timeout_ms)
{
  g_return_if_fail (DIRTY_IS_REQUEST (self));

  if (self->timeout_ms == timeout_ms)
    return;
  self->timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMEOUT]);
}

/**
 * dirty_request_get_app:
 * @self: a #DirtyRequest
 *
 * Returns: (transfer none): the app the request calls
 *
 * Since: 0.1
 */
const char *
dirty_request_get_app (DirtyRequest *self)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);
  return self->app;
}

/**
 * dirty_request_get_action:
 * @self: a #DirtyRequest
 *
 * Returns: (transfer none): the action the request calls
 *
 * Since: 0.1
 */
const char *
dirty_request_get_action (DirtyRequest *self)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);
  return self->action;
}

/**
 * dirty_request_get_args:
 * @self: a #DirtyRequest
 *
 * Returns: (transfer none): the positional arguments
 *
 * Since: 0.1
 */
JsonArray *
dirty_request_get_args (DirtyRequest *self)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);
  return self->args;
}

/**
 * dirty_request_get_kwargs:
 * @self: a #DirtyRequest
 *
 * Returns: (transfer none): the keyword arguments
 *
 * Since: 0.1
 */
JsonObject *
dirty_request_get_kwargs (DirtyRequest *self)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);
  return self->kwargs;
}

/**
 * dirty_request_get_attachments:
 * @self: a #DirtyRequest
 *
 * Returns: (transfer none) (element-type GBytes): the attachments, in
 *   index order
 *
 * Since: 0.1
 */
GPtrArray *
dirty_request_get_attachments (DirtyRequest *self)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);
  return self->attachments;
}

/**
 * dirty_request_get_timeout:
 * @self: a #DirtyRequest
 *
 * Returns: the timeout in milliseconds; 0 means the client's
 *
 * Since: 0.1
 */
guint
dirty_request_get_timeout (DirtyRequest *self)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), 0);
  return self->timeout_ms;
}

/* The REQUEST's JSON text, written directly (no tree: this runs for
 * every call); fails for what JSON cannot carry (dirty-json-write.h). */
static gboolean
write_request (GString     *out,
               const char  *app,
               const char  *action,
               JsonArray   *args,
               JsonObject  *kwargs,
               guint        n_attachments,
               guint        window,
               GError     **error)
{
  g_string_append (out, "{\"app\":");
  if (!dirty_json_append_string (out, app, error))
    return FALSE;
  g_string_append (out, ",\"action\":");
  if (!dirty_json_append_string (out, action, error))
    return FALSE;
  /* both inside the request's object: depth 1 */
  if (args != NULL && json_array_get_length (args) > 0)
    {
      g_string_append (out, ",\"args\":");
      if (!dirty_json_append_array (out, args, 1, n_attachments, error))
        return FALSE;
    }
  if (kwargs != NULL && json_object_get_size (kwargs) > 0)
    {
      g_string_append (out, ",\"kwargs\":");
      if (!dirty_json_append_object (out, kwargs, 1, n_attachments, error))
        return FALSE;
    }
  if (window > 0)
    {
      g_string_append (out, ",\"window\":");
      dirty_json_append_int (out, window);
    }
  g_string_append_c (out, '}');
  return TRUE;
}

/* The REQUEST body; @args and @kwargs are only read, on the caller's
 * thread. A stream's REQUEST carries the credit @window the client reads
 * it with. NULL if JSON cannot carry the arguments: the call fails alone,
 * before anything is sent (the arbiter would close the connection for
 * such a frame, failing every call on it). */
static DirtyFrame *
encode_parts (const char  *app,
              const char  *action,
              JsonArray   *args,
              JsonObject  *kwargs,
              GPtrArray   *attachments,
              guint16      flags,
              guint64      id,
              guint32      timeout_ms,
              GError     **error)
{
  guint window = (flags & DIRTY_FRAME_FLAG_STREAM) ? DIRTY_STREAM_CLIENT_WINDOW : 0;
  g_autoptr(GString) text = g_string_sized_new (128);
  g_autoptr(GError) local_error = NULL;

  if (!write_request (text, app, action, args, kwargs, attachments ? attachments->len : 0,
                      window, &local_error))
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   _("The request cannot be sent: %s"), local_error->message);
      return NULL;
    }
  /* large arguments in memfds from the process's pool: the call gives
   * them back once its answer shows the worker is done with them */
  return dirty_frame_encode_string_with_fds (DIRTY_FRAME_REQUEST, flags, id, timeout_ms,
                                             g_steal_pointer (&text), attachments,
                                             dirty_memfd_pool_get_default ());
}

static DirtyFrame *
encode (DirtyRequest  *self,
        guint16        flags,
        guint64        id,
        guint32        timeout_ms,
        GError       **error)
{
  g_return_val_if_fail (DIRTY_IS_REQUEST (self), NULL);

  return encode_parts (self->app, self->action, self->args, self->kwargs, self->attachments,
                       flags, id, timeout_ms, error);
}

DirtyFrame *
dirty_request_encode_json (const char  *app,
                           const char  *action,
                           JsonArray   *args,
                           JsonObject  *kwargs,
                           guint16      flags,
                           guint32      timeout_ms,
                           GError     **error)
{
  return encode_parts (app, action, args, kwargs, NULL, flags, 0, timeout_ms, error);
}

DirtyFrame *
dirty_request_encode (DirtyRequest  *self,
                      guint64        id,
                      guint32        timeout_ms,
                      GError       **error)
{
  return encode (self, DIRTY_FRAME_FLAG_NONE, id, timeout_ms, error);
}

DirtyFrame *
dirty_request_encode_stream (DirtyRequest  *self,
                             guint64        id,
                             guint32        timeout_ms,
                             GError       **error)
{
  return encode (self, DIRTY_FRAME_FLAG_STREAM, id, timeout_ms, error);
}

DirtyRequest *
dirty_request_new_json (const char *app,
                        const char *action,
                        JsonArray  *args,
                        JsonObject *kwargs)
{
  DirtyRequest *request = dirty_request_new (app, action);

  dirty_request_set_args (request, args);
  dirty_request_set_kwargs (request, kwargs);
  return request;
}
