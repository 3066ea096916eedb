/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>

#include "dirty-i18n-private.h"

#include "dirty-call-private.h"
#include "dirty-message.h"

/* DirtyCall's arguments, read by position or by keyword, as JSON or as a
 * checked type. Every typed getter is read_arg() with its type: a wrong
 * or missing argument is a %DIRTY_ERROR_INVALID_ARGUMENT error that names
 * it, which an action can complete its call with as it is. */

typedef enum {
  ARG_INT,
  ARG_DOUBLE,
  ARG_BOOLEAN,
  ARG_STRING,
  ARG_BYTES,
} ArgType;

/* What the error says the argument must be */
static const char *const arg_type_wanted[] = {
  [ARG_INT] = "an integer",
  [ARG_DOUBLE] = "a number",
  [ARG_BOOLEAN] = "a boolean",
  [ARG_STRING] = "a string",
  [ARG_BYTES] = "bytes",
};

typedef union {
  gint64 v_int;
  double v_double;
  gboolean v_boolean;
  const char *v_string;
  GBytes *v_bytes;
} ArgValue;

/* args[index], or kwargs.name when @name is set */
typedef struct {
  guint index;
  const char *name;
} ArgRef;

/**
 * dirty_call_lookup_bytes:
 * @self: a #DirtyCall
 * @node: (nullable): a node of the arguments
 *
 * Resolves a `{"$bytes": INDEX}` reference found anywhere in the
 * arguments.
 *
 * Returns: (transfer none) (nullable): the attachment @node refers to, or
 *   %NULL if @node is not a valid bytes reference.
 */
GBytes *
dirty_call_lookup_bytes (DirtyCall *self,
                         JsonNode  *node)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  return dirty_json_lookup_bytes (node, dirty_call_get_attachments (self));
}

/**
 * dirty_call_get_n_args:
 * @self: a #DirtyCall
 *
 * Returns: the number of positional arguments
 */
guint
dirty_call_get_n_args (DirtyCall *self)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), 0);
  return json_array_get_length (dirty_call_get_args (self));
}

/**
 * dirty_call_get_arg:
 * @self: a #DirtyCall
 * @index: the argument's position, from 0
 *
 * Returns: (transfer none) (nullable): the argument, or %NULL if there are
 *   not that many.
 */
JsonNode *
dirty_call_get_arg (DirtyCall *self,
                    guint      index)
{
  JsonArray *args;

  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  args = dirty_call_get_args (self);
  if (index >= json_array_get_length (args))
    return NULL;
  return json_array_get_element (args, index);
}

/**
 * dirty_call_get_kwarg:
 * @self: a #DirtyCall
 * @name: the keyword argument's name
 *
 * Returns: (transfer none) (nullable): the keyword argument, or %NULL if
 *   the request does not have it.
 */
JsonNode *
dirty_call_get_kwarg (DirtyCall  *self,
                      const char *name)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return json_object_get_member (dirty_call_get_kwargs (self), name);
}

/* Reading a typed argument */

static const char *
json_type_name (JsonNode *node)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return "null";
  if (JSON_NODE_HOLDS_ARRAY (node))
    return "an array";
  if (JSON_NODE_HOLDS_OBJECT (node))
    return dirty_json_is_bytes_ref (node, NULL) ? "bytes" : "an object";
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_BOOLEAN:
      return "a boolean";
    case G_TYPE_INT64:
      return "an integer";
    case G_TYPE_DOUBLE:
      return "a number";
    case G_TYPE_STRING:
      return "a string";
    default:
      return "a value";
    }
}

/* Converts @node to @type; FALSE if it is not one. */
static gboolean
node_to_value (DirtyCall *self,
               JsonNode  *node,
               ArgType    type,
               ArgValue  *out)
{
  GType value_type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node)
                                                  : G_TYPE_INVALID;

  switch (type)
    {
    case ARG_INT:
      if (value_type == G_TYPE_INT64)
        {
          out->v_int = json_node_get_int (node);
          return TRUE;
        }
      /* Some JSON writers print every number as a double: accept 3.0 as 3. */
      if (value_type == G_TYPE_DOUBLE)
        {
          double d = json_node_get_double (node);

          if (d == floor (d) && d >= -9.2e18 && d <= 9.2e18)
            {
              out->v_int = (gint64) d;
              return TRUE;
            }
        }
      return FALSE;
    case ARG_DOUBLE:
      if (value_type != G_TYPE_INT64 && value_type != G_TYPE_DOUBLE)
        return FALSE;
      /* json_node_get_double() converts an integer node itself */
      out->v_double = json_node_get_double (node);
      return TRUE;
    case ARG_BOOLEAN:
      if (value_type != G_TYPE_BOOLEAN)
        return FALSE;
      out->v_boolean = json_node_get_boolean (node);
      return TRUE;
    case ARG_STRING:
      if (value_type != G_TYPE_STRING)
        return FALSE;
      out->v_string = json_node_get_string (node);
      return TRUE;
    case ARG_BYTES:
      out->v_bytes = dirty_json_lookup_bytes (node, dirty_call_get_attachments (self));
      return out->v_bytes != NULL;
    default:
      g_assert_not_reached ();
    }
}

static void
store_value (ArgType         type,
             const ArgValue *value,
             gpointer        out_value)
{
  switch (type)
    {
    case ARG_INT:
      *(gint64 *) out_value = value->v_int;
      break;
    case ARG_DOUBLE:
      *(double *) out_value = value->v_double;
      break;
    case ARG_BOOLEAN:
      *(gboolean *) out_value = value->v_boolean;
      break;
    case ARG_STRING:
      *(const char **) out_value = value->v_string;
      break;
    case ARG_BYTES:
      *(GBytes **) out_value = value->v_bytes;
      break;
    default:
      g_assert_not_reached ();
    }
}

/* The error for the argument @ref names, found as @node (NULL: missing),
 * when it is not a @type. */
static void
set_arg_error (DirtyCall     *self,
               const ArgRef  *ref,
               JsonNode      *node,
               ArgType        type,
               GError       **error)
{
  const char *app_name = dirty_call_get_app_name (self);
  const char *action = dirty_call_get_action (self);
  g_autofree char *where = ref->name
    ? g_strdup_printf ("kwargs.%s", ref->name)
    : g_strdup_printf ("args[%u]", ref->index);

  if (app_name == NULL)
    app_name = "?";
  if (node == NULL)
    g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                 _("%s.%s: args[%u] is missing (%u positional arguments given)"),
                 app_name, action, ref->index, dirty_call_get_n_args (self));
  else if (type == ARG_BYTES && dirty_json_is_bytes_ref (node, NULL))
    g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                 _("%s.%s: %s refers to a missing attachment (the request has %u)"),
                 app_name, action, where, dirty_call_get_attachments (self)->len);
  else
    g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                 _("%s.%s: %s must be %s, not %s"),
                 app_name, action, where, arg_type_wanted[type], json_type_name (node));
}

/* The argument @ref names, or NULL if the request does not have it. A
 * keyword argument set to null counts as absent: it takes its default. */
static JsonNode *
find_arg (DirtyCall    *self,
          const ArgRef *ref)
{
  JsonNode *node;

  if (ref->name == NULL)
    return dirty_call_get_arg (self, ref->index);
  node = json_object_get_member (dirty_call_get_kwargs (self), ref->name);
  return (node == NULL || JSON_NODE_HOLDS_NULL (node)) ? NULL : node;
}

/* Reads the argument @ref names as @type into @out_value, a pointer to
 * the getter's C type. A positional argument must be there; an absent
 * keyword argument reads as @default_value. @out_value is written only
 * on success. */
static gboolean
read_arg (DirtyCall       *self,
          const ArgRef    *ref,
          ArgType          type,
          const ArgValue  *default_value,
          gpointer         out_value,
          GError         **error)
{
  JsonNode *node = find_arg (self, ref);
  ArgValue value;

  if (node == NULL && ref->name != NULL)
    value = *default_value;
  else if (node == NULL || !node_to_value (self, node, type, &value))
    {
      set_arg_error (self, ref, node, type, error);
      return FALSE;
    }
  store_value (type, &value, out_value);
  return TRUE;
}

/* Positional arguments */

/**
 * dirty_call_get_arg_int:
 * @self: a #DirtyCall
 * @index: the argument's position, from 0
 * @out_value: (out): return location for the value
 * @error: return location for a #GError
 *
 * Reads an integer argument. A number with no fractional part, such as
 * `3.0`, is accepted as an integer.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error naming the argument if it is missing or not an integer. The
 *   action can complete with that error as it is.
 */
gboolean
dirty_call_get_arg_int (DirtyCall  *self,
                        guint       index,
                        gint64     *out_value,
                        GError    **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .index = index }, ARG_INT, NULL, out_value, error);
}

/**
 * dirty_call_get_arg_double:
 * @self: a #DirtyCall
 * @index: the argument's position, from 0
 * @out_value: (out): return location for the value
 * @error: return location for a #GError
 *
 * Reads a numeric argument (an integer or a floating-point number).
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is missing or not a number.
 */
gboolean
dirty_call_get_arg_double (DirtyCall  *self,
                           guint       index,
                           double     *out_value,
                           GError    **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .index = index }, ARG_DOUBLE, NULL, out_value, error);
}

/**
 * dirty_call_get_arg_boolean:
 * @self: a #DirtyCall
 * @index: the argument's position, from 0
 * @out_value: (out): return location for the value
 * @error: return location for a #GError
 *
 * Reads a boolean argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is missing or not a boolean.
 */
gboolean
dirty_call_get_arg_boolean (DirtyCall  *self,
                            guint       index,
                            gboolean   *out_value,
                            GError    **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .index = index }, ARG_BOOLEAN, NULL, out_value, error);
}

/**
 * dirty_call_get_arg_string:
 * @self: a #DirtyCall
 * @index: the argument's position, from 0
 * @out_value: (out) (transfer none): return location for the string,
 *   valid as long as @self
 * @error: return location for a #GError
 *
 * Reads a string argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is missing or not a string.
 */
gboolean
dirty_call_get_arg_string (DirtyCall    *self,
                           guint         index,
                           const char  **out_value,
                           GError      **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .index = index }, ARG_STRING, NULL, out_value, error);
}

/**
 * dirty_call_get_arg_bytes:
 * @self: a #DirtyCall
 * @index: the argument's position, from 0
 * @out_value: (out) (transfer none): return location for the bytes,
 *   valid as long as @self
 * @error: return location for a #GError
 *
 * Reads a bytes argument (a `{"$bytes": INDEX}` reference to one of the
 * request's attachments).
 *
 * Bytes of 64 KiB or more are a read-only mapping of the client's memfd,
 * not a copy. The client may reuse that memfd once the call has ended;
 * an app may still keep the bytes past its call (a reference is enough):
 * when the call ends, the worker gives bytes still held private copies of
 * their pages in place, so they never change. Returning them unchanged
 * (an echo) sends the same memfd back, without a copy.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is missing or not a valid bytes reference.
 */
gboolean
dirty_call_get_arg_bytes (DirtyCall  *self,
                          guint       index,
                          GBytes    **out_value,
                          GError    **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .index = index }, ARG_BYTES, NULL, out_value, error);
}

/* Keyword arguments */

/**
 * dirty_call_get_kwarg_int:
 * @self: a #DirtyCall
 * @name: the keyword argument's name
 * @default_value: the value when the argument is absent or null
 * @out_value: (out): return location for the value
 * @error: return location for a #GError
 *
 * Reads an optional integer keyword argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is present but not an integer.
 */
gboolean
dirty_call_get_kwarg_int (DirtyCall   *self,
                          const char  *name,
                          gint64       default_value,
                          gint64      *out_value,
                          GError     **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (name != NULL && out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .name = name }, ARG_INT,
                   &(ArgValue) { .v_int = default_value }, out_value, error);
}

/**
 * dirty_call_get_kwarg_double:
 * @self: a #DirtyCall
 * @name: the keyword argument's name
 * @default_value: the value when the argument is absent or null
 * @out_value: (out): return location for the value
 * @error: return location for a #GError
 *
 * Reads an optional numeric keyword argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is present but not a number.
 */
gboolean
dirty_call_get_kwarg_double (DirtyCall   *self,
                             const char  *name,
                             double       default_value,
                             double      *out_value,
                             GError     **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (name != NULL && out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .name = name }, ARG_DOUBLE,
                   &(ArgValue) { .v_double = default_value }, out_value, error);
}

/**
 * dirty_call_get_kwarg_boolean:
 * @self: a #DirtyCall
 * @name: the keyword argument's name
 * @default_value: the value when the argument is absent or null
 * @out_value: (out): return location for the value
 * @error: return location for a #GError
 *
 * Reads an optional boolean keyword argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is present but not a boolean.
 */
gboolean
dirty_call_get_kwarg_boolean (DirtyCall   *self,
                              const char  *name,
                              gboolean     default_value,
                              gboolean    *out_value,
                              GError     **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (name != NULL && out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .name = name }, ARG_BOOLEAN,
                   &(ArgValue) { .v_boolean = default_value }, out_value, error);
}

/**
 * dirty_call_get_kwarg_string:
 * @self: a #DirtyCall
 * @name: the keyword argument's name
 * @default_value: (nullable): the value when the argument is absent or null
 * @out_value: (out) (transfer none) (nullable): return location for the
 *   string, valid as long as @self
 * @error: return location for a #GError
 *
 * Reads an optional string keyword argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is present but not a string.
 */
gboolean
dirty_call_get_kwarg_string (DirtyCall    *self,
                             const char   *name,
                             const char   *default_value,
                             const char  **out_value,
                             GError      **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (name != NULL && out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .name = name }, ARG_STRING,
                   &(ArgValue) { .v_string = default_value }, out_value, error);
}

/**
 * dirty_call_get_kwarg_bytes:
 * @self: a #DirtyCall
 * @name: the keyword argument's name
 * @out_value: (out) (transfer none) (nullable): return location for the
 *   bytes, or %NULL when the argument is absent or null
 * @error: return location for a #GError
 *
 * Reads an optional bytes keyword argument.
 *
 * Returns: %TRUE on success; %FALSE with a %DIRTY_ERROR_INVALID_ARGUMENT
 *   error if it is present but not a valid bytes reference.
 */
gboolean
dirty_call_get_kwarg_bytes (DirtyCall   *self,
                            const char  *name,
                            GBytes     **out_value,
                            GError     **error)
{
  g_return_val_if_fail (DIRTY_IS_CALL (self), FALSE);
  g_return_val_if_fail (name != NULL && out_value != NULL, FALSE);

  return read_arg (self, &(ArgRef) { .name = name }, ARG_BYTES,
                   &(ArgValue) { .v_bytes = NULL }, out_value, error);
}
