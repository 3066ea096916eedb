/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-i18n-private.h"

#include "dirty-app.h"
#include "dirty-call-private.h"
#include "dirty-call-stream-private.h"
#include "dirty-json-write.h"
#include "dirty-message.h"

/**
 * DirtyCall:
 *
 * One request to an app's action, as the app sees it: the action name,
 * positional arguments (a [struct@Json.Array]), keyword arguments (a
 * [struct@Json.Object]), the binary attachments they refer to, a
 * [class@Gio.Cancellable] that fires when the caller cancels or the
 * deadline passes, and the means to complete it.
 *
 * An action completes its call exactly once, with
 * [method@Dirty.Call.return_value] (or one of its typed variants) or
 * [method@Dirty.Call.return_error]. Completion is thread-safe: an
 * asynchronous action may complete from any thread. Completing a call
 * twice is a programming error: it is reported with g_critical() and
 * ignored.
 *
 * Bytes travel as attachments, never inside the JSON: an argument that is
 * bytes is a `{"$bytes": INDEX}` object; read it with
 * [method@Dirty.Call.get_arg_bytes] or [method@Dirty.Call.lookup_bytes].
 * To return bytes nested in a result, make the reference with
 * [method@Dirty.Call.attach].
 *
 * A %DIRTY_ACTION_STREAM action streams its result instead: it sends
 * chunks with [method@Dirty.Call.send_chunk] (blocking, from a worker
 * thread) or [method@Dirty.Call.send_chunk_async] (from the main loop),
 * then completes the call with [method@Dirty.Call.end_stream], or with
 * [method@Dirty.Call.return_error], which the reader gets after every
 * chunk sent before it. An action without that flag that a caller reads
 * as a stream may simply return its value: the reader gets it as the one
 * chunk of the stream.
 *
 * Since: 0.1
 */
struct _DirtyCall
{
  GObject parent_instance;

  DirtyApp *app;
  char *app_name;
  char *action;
  JsonArray *args;
  JsonObject *kwargs;          /* made on first use when the request had none */
  GPtrArray *attachments;
  GCancellable *cancellable;   /* made on first use (lazy_get ()) */
  gint64 deadline;
  gint thread;                 /* dirty_call_set_thread (); G_MININT: never */

  DirtyCallCompleteFunc complete_func;
  gpointer complete_data;
  GDestroyNotify complete_destroy;

  /* Set before the app sees the call when its caller reads a stream */
  DirtyCallStream *stream;

  /* Guards everything below: apps complete and attach from any thread. */
  GMutex lock;
  gboolean completed;
  GString *result_json;  /* the result as JSON text, written at completion */
  GPtrArray *reply_attachments;
  GError *error;
  char *detail;
  gboolean stream_ended;
};

G_DEFINE_FINAL_TYPE (DirtyCall, dirty_call, G_TYPE_OBJECT)

/* Most calls never look at their cancellable or at kwargs they did not
 * get: making a GCancellable and an empty JsonObject for every call, and
 * freeing them, was about 4,000 instructions of the worker's 37,000 per
 * round trip (callgrind). They are made on first use instead, by
 * whichever thread asks first. */
static gpointer
lazy_get (gpointer        *slot,
          gpointer       (*make) (void),
          GDestroyNotify   destroy)
{
  gpointer value = g_atomic_pointer_get (slot);
  gpointer made;

  if (value != NULL)
    return value;
  made = make ();
  if (g_atomic_pointer_compare_and_exchange (slot, NULL, made))
    return made;
  destroy (made);
  return g_atomic_pointer_get (slot);
}

static gpointer
make_cancellable (void)
{
  return g_cancellable_new ();
}

static gpointer
make_kwargs (void)
{
  return json_object_new ();
}

static void
dirty_call_finalize (GObject *object)
{
  DirtyCall *self = DIRTY_CALL (object);

  if (self->complete_destroy)
    self->complete_destroy (self->complete_data);
  g_clear_pointer (&self->stream, dirty_call_stream_free);
  g_clear_object (&self->app);
  g_free (self->app_name);
  g_free (self->action);
  g_clear_pointer (&self->args, json_array_unref);
  g_clear_pointer (&self->kwargs, json_object_unref);
  g_clear_pointer (&self->attachments, g_ptr_array_unref);
  g_clear_object (&self->cancellable);
  if (self->result_json != NULL)
    g_string_free (self->result_json, TRUE);
  g_clear_pointer (&self->reply_attachments, g_ptr_array_unref);
  g_clear_error (&self->error);
  g_free (self->detail);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (dirty_call_parent_class)->finalize (object);
}

static void
dirty_call_class_init (DirtyCallClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_call_finalize;
}

static void
dirty_call_init (DirtyCall *self)
{
  g_mutex_init (&self->lock);
  self->thread = G_MININT;
  self->reply_attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
}

DirtyCall *
dirty_call_new (DirtyApp              *app,
                const char            *app_name,
                const char            *action,
                JsonArray             *args,
                JsonObject            *kwargs,
                GPtrArray             *attachments,
                gint64                 deadline,
                GCancellable          *cancellable,
                DirtyCallCompleteFunc  complete_func,
                gpointer               user_data,
                GDestroyNotify         destroy)
{
  DirtyCall *self;

  g_return_val_if_fail (app == NULL || DIRTY_IS_APP (app), NULL);
  g_return_val_if_fail (action != NULL, NULL);

  self = g_object_new (DIRTY_TYPE_CALL, NULL);
  self->app = app ? g_object_ref (app) : NULL;
  self->app_name = g_strdup (app_name ? app_name : (app ? dirty_app_get_name (app) : NULL));
  self->action = g_strdup (action);
  self->args = args ? json_array_ref (args) : json_array_new ();
  self->kwargs = kwargs ? json_object_ref (kwargs) : NULL;
  self->attachments = attachments
    ? g_ptr_array_ref (attachments)
    : g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  self->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  self->deadline = deadline;
  self->complete_func = complete_func;
  self->complete_data = user_data;
  self->complete_destroy = destroy;
  return self;
}

/**
 * dirty_call_get_app:
 * @self: a #DirtyCall
 *
 * Returns: (transfer none) (nullable): the app the call is addressed to.
 */
DirtyApp *
dirty_call_get_app (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->app;
}

/**
 * dirty_call_get_app_name:
 * @self: a #DirtyCall
 *
 * Returns: (transfer none) (nullable): the app's name, such as
 *   `echo:DirtyEchoApp`.
 */
const char *
dirty_call_get_app_name (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->app_name;
}

/**
 * dirty_call_get_action:
 * @self: a #DirtyCall
 *
 * Returns: (transfer none): the name of the action called.
 */
const char *
dirty_call_get_action (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->action;
}

/**
 * dirty_call_get_args:
 * @self: a #DirtyCall
 *
 * Returns: (transfer none): the positional arguments; empty when the
 *   request had none. Treat it as read-only.
 */
JsonArray *
dirty_call_get_args (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->args;
}

/**
 * dirty_call_get_kwargs:
 * @self: a #DirtyCall
 *
 * Returns: (transfer none): the keyword arguments; empty when the request
 *   had none. Treat it as read-only.
 */
JsonObject *
dirty_call_get_kwargs (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return lazy_get ((gpointer *) &self->kwargs, make_kwargs, (GDestroyNotify) json_object_unref);
}

/**
 * dirty_call_get_attachments:
 * @self: a #DirtyCall
 *
 * Returns: (transfer none) (element-type GBytes): the request's binary
 *   attachments, in the order `{"$bytes": INDEX}` refers to them.
 */
GPtrArray *
dirty_call_get_attachments (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->attachments;
}

/* The arguments one by one, and typed: dirty-call-args.c */

/**
 * dirty_call_get_cancellable:
 * @self: a #DirtyCall
 *
 * The cancellable fires when the caller cancels the call, when its
 * deadline passes, or when the worker shuts down. A long action should
 * check it, or wait on it, and then complete the call, for example with
 * [method@Dirty.Call.return_error_if_cancelled].
 *
 * Returns: (transfer none): the call's cancellable
 */
GCancellable *
dirty_call_get_cancellable (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return lazy_get ((gpointer *) &self->cancellable, make_cancellable, g_object_unref);
}

void
dirty_call_set_thread (DirtyCall *self,
                       gint       tid)
{
  g_atomic_int_set (&self->thread, tid);
}

gboolean
dirty_call_get_thread (DirtyCall *self,
                       gint      *tid)
{
  gint value = g_atomic_int_get (&self->thread);

  *tid = value == G_MININT ? 0 : value;
  return value != G_MININT;
}

GCancellable *
dirty_call_peek_cancellable (DirtyCall *self)
{
  return g_atomic_pointer_get (&self->cancellable);
}

/**
 * dirty_call_get_deadline:
 * @self: a #DirtyCall
 *
 * Returns: the call's deadline in the clock of g_get_monotonic_time()
 *   (microseconds), or 0 if it has none.
 */
gint64
dirty_call_get_deadline (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), 0);
  return self->deadline;
}

/* Completion */

/* @result (taken) as the JSON text of the reply, written on the thread
 * that completes the call; NULL with @error set if JSON cannot carry it
 * (a number that is not finite, a string that is not UTF-8, nesting past
 * the protocol's limit), or if it refers to bytes it does not attach
 * (an argument's, say). That fails this call, as the app's error:
 * sent as it was, it would break the protocol and cost the client its
 * connection, with every call on it. */
static GString *
write_result (DirtyCall  *self,
              JsonNode   *result,
              GError    **error)
{
  g_autoptr(JsonNode) owned = result;
  g_autoptr(GError) local_error = NULL;
  GString *text = g_string_sized_new (64);
  guint n_attachments;

  g_mutex_lock (&self->lock);
  n_attachments = self->reply_attachments->len;
  g_mutex_unlock (&self->lock);
  /* inside the reply's object ({"result": ...}): depth 1 */
  if (dirty_json_append (text, result, 1, n_attachments, &local_error))
    return text;
  g_string_free (text, TRUE);
  g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_APP,
               _("The result of action %s of app %s cannot be sent: %s"), self->action,
               self->app_name ? self->app_name : "?", local_error->message);
  return NULL;
}

/* Stores the outcome and runs the completion callback, once. Takes
 * @result and @error. */
static gboolean
complete (DirtyCall *self,
          JsonNode  *result,
          GError    *error,
          gboolean   quiet_if_done)
{
  GString *result_json = NULL;

  /* outside the lock, which other threads take to attach or to check */
  if (result != NULL && error == NULL)
    result_json = write_result (self, result, &error);
  else if (result != NULL)
    json_node_unref (result);

  g_mutex_lock (&self->lock);
  if (self->completed)
    {
      g_mutex_unlock (&self->lock);
      if (!quiet_if_done)
        g_critical ("Action %s of app %s completed its call more than once; "
                    "the later result is ignored",
                    self->action, self->app_name ? self->app_name : "?");
      if (result_json != NULL)
        g_string_free (result_json, TRUE);
      g_clear_error (&error);
      return FALSE;
    }
  self->completed = TRUE;
  self->result_json = result_json;
  self->error = error;
  g_mutex_unlock (&self->lock);

  /* The callback may drop the last reference the worker holds. */
  g_object_ref (self);
  if (self->complete_func)
    self->complete_func (self, self->complete_data);
  g_object_unref (self);
  return TRUE;
}

/**
 * dirty_call_attach:
 * @self: a #DirtyCall
 * @bytes: the bytes to send with the result
 *
 * Adds @bytes to the reply's attachments and returns the reference to put
 * in the result, anywhere in it, for example as a member of an object.
 * The bytes travel raw, never encoded in the JSON.
 *
 * Returns: (transfer full): a `{"$bytes": INDEX}` node for the attachment
 */
JsonNode *
dirty_call_attach (DirtyCall *self,
                   GBytes    *bytes)
{
  guint index;

  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  g_return_val_if_fail (bytes != NULL, NULL);

  g_mutex_lock (&self->lock);
  index = self->reply_attachments->len;
  g_ptr_array_add (self->reply_attachments, g_bytes_ref (bytes));
  g_mutex_unlock (&self->lock);
  return dirty_json_bytes_ref_new (index);
}

/**
 * dirty_call_set_detail:
 * @self: a #DirtyCall
 * @detail: (nullable): a backtrace or other detail
 *
 * Sets the detail sent with an error that completes the call, such as a
 * backtrace; the caller reads it with [func@Dirty.error_get_detail]. It
 * overrides a detail carried by the error itself.
 */
void
dirty_call_set_detail (DirtyCall  *self,
                       const char *detail)
{
  g_return_if_fail (DIRTY_IS_CALL (self));

  g_mutex_lock (&self->lock);
  g_free (self->detail);
  self->detail = g_strdup (detail);
  g_mutex_unlock (&self->lock);
}

/**
 * dirty_call_return_value:
 * @self: a #DirtyCall
 * @value: (transfer full) (nullable): the result; %NULL for JSON null
 *
 * Completes the call with a result. Bytes inside @value must be
 * references made by [method@Dirty.Call.attach]: a reference taken from
 * the arguments names one of the request's attachments, not the reply's,
 * and one the reply does not carry completes the call with a
 * %DIRTY_ERROR_APP error instead.
 *
 * A value JSON cannot carry (a number that is not finite, a string that
 * is not UTF-8, arrays and objects nested past the protocol's limit of
 * 64 levels, counting the reply around the value) completes the call
 * with a %DIRTY_ERROR_APP error that says so instead.
 */
void
dirty_call_return_value (DirtyCall *self,
                         JsonNode  *value)
{
  g_return_if_fail (DIRTY_IS_CALL (self));

  if (value == NULL)
    value = json_node_new (JSON_NODE_NULL);
  complete (self, value, NULL, FALSE);
}

/**
 * dirty_call_return_bytes:
 * @self: a #DirtyCall
 * @bytes: the result
 *
 * Completes the call with @bytes as its whole result, which the caller
 * reads with `dirty_reply_get_bytes()`.
 */
void
dirty_call_return_bytes (DirtyCall *self,
                         GBytes    *bytes)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  g_return_if_fail (bytes != NULL);

  dirty_call_return_value (self, dirty_call_attach (self, bytes));
}

/**
 * dirty_call_return_int:
 * @self: a #DirtyCall
 * @value: the result
 *
 * Completes the call with an integer result.
 */
void
dirty_call_return_int (DirtyCall *self,
                       gint64     value)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  dirty_call_return_value (self, json_node_init_int (json_node_alloc (), value));
}

/**
 * dirty_call_return_double:
 * @self: a #DirtyCall
 * @value: the result
 *
 * Completes the call with a numeric result. JSON has no NaN or infinity:
 * those complete the call with a %DIRTY_ERROR_APP error instead.
 */
void
dirty_call_return_double (DirtyCall *self,
                          double     value)
{
  g_return_if_fail (DIRTY_IS_CALL (self));

  dirty_call_return_value (self, json_node_init_double (json_node_alloc (), value));
}

/**
 * dirty_call_return_boolean:
 * @self: a #DirtyCall
 * @value: the result
 *
 * Completes the call with a boolean result.
 */
void
dirty_call_return_boolean (DirtyCall *self,
                           gboolean   value)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  dirty_call_return_value (self, json_node_init_boolean (json_node_alloc (), value));
}

/**
 * dirty_call_return_string:
 * @self: a #DirtyCall
 * @value: (nullable): the result; %NULL for JSON null
 *
 * Completes the call with a string result.
 */
void
dirty_call_return_string (DirtyCall  *self,
                          const char *value)
{
  g_return_if_fail (DIRTY_IS_CALL (self));

  if (value == NULL)
    dirty_call_return_value (self, NULL);
  else
    dirty_call_return_value (self, json_node_init_string (json_node_alloc (), value));
}

/**
 * dirty_call_return_error:
 * @self: a #DirtyCall
 * @error: (transfer full): the error
 *
 * Completes the call with an error. An error of the %DIRTY_ERROR domain
 * keeps its code on the wire (use %DIRTY_ERROR_INVALID_ARGUMENT for bad
 * arguments); %G_IO_ERROR_CANCELLED becomes %DIRTY_ERROR_CANCELLED (or
 * %DIRTY_ERROR_TIMEOUT when the deadline fired); any other domain becomes
 * %DIRTY_ERROR_APP with the same message.
 */
void
dirty_call_return_error (DirtyCall *self,
                         GError    *error)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  g_return_if_fail (error != NULL);

  complete (self, NULL, error, FALSE);
}

/**
 * dirty_call_return_new_error:
 * @self: a #DirtyCall
 * @domain: the error domain
 * @code: the error code
 * @format: printf()-style format for the message
 * @...: arguments for @format
 *
 * Completes the call with a new error; see
 * [method@Dirty.Call.return_error].
 */
void
dirty_call_return_new_error (DirtyCall  *self,
                             GQuark      domain,
                             int         code,
                             const char *format,
                             ...)
{
  va_list args;
  GError *error;

  g_return_if_fail (DIRTY_IS_CALL (self));
  g_return_if_fail (format != NULL);

  va_start (args, format);
  error = g_error_new_valist (domain, code, format, args);
  va_end (args);
  dirty_call_return_error (self, error);
}

/**
 * dirty_call_return_error_if_cancelled:
 * @self: a #DirtyCall
 *
 * If the call's cancellable has fired, completes the call with a
 * cancellation error.
 *
 * Returns: %TRUE if the call was cancelled (and is now complete)
 */
gboolean
dirty_call_return_error_if_cancelled (DirtyCall *self)
{
  GError *error = NULL;

  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);

  /* a cancellable nobody made has not been cancelled */
  if (!g_cancellable_set_error_if_cancelled (dirty_call_peek_cancellable (self), &error))
    return FALSE;
  dirty_call_return_error (self, error);
  return TRUE;
}

/**
 * dirty_call_end_stream:
 * @self: a #DirtyCall
 *
 * Completes a streamed call successfully: the reader gets the end of the
 * stream after every chunk sent before. To end with an error instead, use
 * [method@Dirty.Call.return_error]. On a call whose caller does not read
 * a stream it completes the call with a JSON null result.
 *
 * Since: 0.1
 */
void
dirty_call_end_stream (DirtyCall *self)
{
  g_return_if_fail (DIRTY_IS_CALL (self));

  if (self->stream == NULL)
    {
      dirty_call_return_value (self, NULL);
      return;
    }
  g_mutex_lock (&self->lock);
  /* read by the worker only after complete() took the lock again */
  if (!self->completed)
    self->stream_ended = TRUE;
  g_mutex_unlock (&self->lock);
  complete (self, NULL, NULL, FALSE);
}

/**
 * dirty_call_is_stream:
 * @self: a #DirtyCall
 *
 * Returns: whether the caller reads the result as a stream of chunks
 *
 * Since: 0.1
 */
gboolean
dirty_call_is_stream (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  return self->stream != NULL;
}

/* Private: the worker's side */

void
dirty_call_set_stream (DirtyCall       *self,
                       DirtyCallStream *stream)
{
  g_return_if_fail (DIRTY_IS_CALL (self));
  g_return_if_fail (self->stream == NULL);
  self->stream = stream;
}

DirtyCallStream *
dirty_call_get_stream (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->stream;
}

gboolean
dirty_call_get_stream_ended (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  return self->stream_ended;
}

gboolean
dirty_call_is_completed (DirtyCall *self)
{
  gboolean completed;

  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_mutex_lock (&self->lock);
  completed = self->completed;
  g_mutex_unlock (&self->lock);
  return completed;
}

gboolean
dirty_call_complete_if_pending (DirtyCall *self,
                                GError    *error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  return complete (self, NULL, error, TRUE);
}

/* The outcome is written once under the lock before the completion
 * callback runs, and never changes after: reading it afterwards is safe.
 * The result's text goes to the one frame that carries it: taken, not
 * copied. */
GString *
dirty_call_steal_result_json (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return g_steal_pointer (&self->result_json);
}

void
dirty_call_fail_unsent (DirtyCall *self,
                        GError    *error)
{
  g_mutex_lock (&self->lock);
  g_clear_error (&self->error);
  self->error = error;
  g_mutex_unlock (&self->lock);
}

void
dirty_call_release_arguments (DirtyCall *self)
{
  GPtrArray *arguments = NULL;
  g_autoptr(GPtrArray) replies = NULL;

  /* an empty array holds nothing to release: most calls keep theirs */
  if (self->attachments->len > 0)
    {
      arguments = g_steal_pointer (&self->attachments);
      self->attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
    }
  g_mutex_lock (&self->lock);
  if (self->reply_attachments->len > 0)
    {
      replies = g_steal_pointer (&self->reply_attachments);
      self->reply_attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
    }
  g_mutex_unlock (&self->lock);
  /* first the reply's references (an echo returns an argument) */
  g_clear_pointer (&replies, g_ptr_array_unref);
  if (arguments != NULL)
    dirty_memfd_release_arguments (arguments);
}

GPtrArray *
dirty_call_get_reply_attachments (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->reply_attachments;
}

const GError *
dirty_call_get_error (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->error;
}

const char *
dirty_call_get_detail (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return self->detail;
}
