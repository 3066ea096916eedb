/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-message.h"
#include "dirty-reply-private.h"

/**
 * DirtyReply:
 *
 * The result of a call sent with [method@Dirty.Client.send]: a JSON
 * value and the binary attachments it refers to.
 *
 * Bytes in the result are references of the form `{"$bytes": INDEX}`;
 * [method@Dirty.Reply.lookup_bytes] turns one into its data, and
 * [method@Dirty.Reply.get_bytes] does it for a result that is itself
 * bytes (as a thumbnail or a compressed blob is):
 *
 * ```c
 * g_autoptr(DirtyReply) reply = dirty_client_send_sync (client, request, NULL, &error);
 * GBytes *png = reply ? dirty_reply_get_bytes (reply) : NULL;
 * ```
 *
 * Large attachments (results of 8 MiB or more, and arguments of 64 KiB
 * or more sent back unchanged) arrive as sealed memfds and are mapped,
 * not copied: their #GBytes read straight from the shared memory
 * and unmap it when freed. [method@Dirty.Reply.dup_bytes_stream] reads
 * one as a #GInputStream.
 *
 * A reply is immutable and may be used from any thread.
 *
 * Since: 0.1
 */
struct _DirtyReply
{
  GObject    parent_instance;

  JsonNode  *result;
  GPtrArray *attachments;   /* of GBytes */
};

G_DEFINE_FINAL_TYPE (DirtyReply, dirty_reply, G_TYPE_OBJECT)

static void
dirty_reply_finalize (GObject *object)
{
  DirtyReply *self = DIRTY_REPLY (object);

  json_node_unref (self->result);
  g_ptr_array_unref (self->attachments);

  G_OBJECT_CLASS (dirty_reply_parent_class)->finalize (object);
}

static void
dirty_reply_class_init (DirtyReplyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dirty_reply_finalize;
}

static void
dirty_reply_init (DirtyReply *self)
{
}

DirtyReply *
dirty_reply_new (JsonNode  *result,
                 GPtrArray *attachments)
{
  DirtyReply *self;

  g_return_val_if_fail (result != NULL, NULL);
  self = g_object_new (DIRTY_TYPE_REPLY, NULL);
  self->result = result;
  if (attachments != NULL)
    self->attachments = g_ptr_array_ref (attachments);
  else
    self->attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  return self;
}

/**
 * dirty_reply_get_result:
 * @self: a #DirtyReply
 *
 * Gets the result the action returned. The reply may be shared between
 * threads, so do not modify it.
 *
 * Returns: (transfer none): the result; a JSON `null` node when the
 *   action returned nothing
 *
 * Since: 0.1
 */
JsonNode *
dirty_reply_get_result (DirtyReply *self)
{
  g_return_val_if_fail (DIRTY_IS_REPLY (self), NULL);
  return self->result;
}

/**
 * dirty_reply_get_attachments:
 * @self: a #DirtyReply
 *
 * Returns: (transfer none) (element-type GBytes): the reply's binary
 *   attachments, in index order
 *
 * Since: 0.1
 */
GPtrArray *
dirty_reply_get_attachments (DirtyReply *self)
{
  g_return_val_if_fail (DIRTY_IS_REPLY (self), NULL);
  return self->attachments;
}

/**
 * dirty_reply_lookup_bytes:
 * @self: a #DirtyReply
 * @node: a node of the result, such as a member of it
 *
 * Resolves a reference to an attachment, `{"$bytes": INDEX}`.
 *
 * Returns: (transfer none) (nullable): the attachment @node refers to, or
 *   %NULL if @node is not a reference or its index is out of range
 *
 * Since: 0.1
 */
GBytes *
dirty_reply_lookup_bytes (DirtyReply *self,
                          JsonNode   *node)
{
  g_return_val_if_fail (DIRTY_IS_REPLY (self), NULL);
  g_return_val_if_fail (node != NULL, NULL);

  return dirty_json_lookup_bytes (node, self->attachments);
}

/**
 * dirty_reply_get_bytes:
 * @self: a #DirtyReply
 *
 * Gets the result as bytes, for an action that returns bytes.
 *
 * Returns: (transfer none) (nullable): the attachment the result refers
 *   to, or %NULL if the result is not a reference to an attachment
 *
 * Since: 0.1
 */
GBytes *
dirty_reply_get_bytes (DirtyReply *self)
{
  g_return_val_if_fail (DIRTY_IS_REPLY (self), NULL);

  return dirty_json_lookup_bytes (self->result, self->attachments);
}

/**
 * dirty_reply_dup_bytes_stream:
 * @self: a #DirtyReply
 * @node: (nullable): a reference `{"$bytes": INDEX}` in the result, or
 *   %NULL for the result itself
 *
 * Opens the bytes @node refers to as a stream, for a reader that takes a
 * #GInputStream (a decoder, a splice to a file). The stream reads the
 * attachment's memory (for a large one, its mapping of the memfd) without
 * copying it first, and keeps it alive until the stream is freed.
 *
 * Returns: (transfer full) (nullable): a new stream over the attachment,
 *   or %NULL if @node is not a reference to one
 *
 * Since: 0.1
 */
GInputStream *
dirty_reply_dup_bytes_stream (DirtyReply *self,
                              JsonNode   *node)
{
  GBytes *bytes;

  g_return_val_if_fail (DIRTY_IS_REPLY (self), NULL);

  bytes = dirty_json_lookup_bytes (node != NULL ? node : self->result, self->attachments);
  if (bytes == NULL)
    return NULL;
  return g_memory_input_stream_new_from_bytes (bytes);
}
