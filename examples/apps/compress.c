/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* compress:DirtyCompressApp: CPU-bound work on bytes, with zlib.
 *
 *   compress DATA [level=-1..9]     zlib-format compressed bytes
 *   decompress DATA [max_size=N]    the original bytes; fails with
 *                                   invalid-argument on corrupt data or
 *                                   output over max_size (64 MiB default)
 *   crc32 DATA                      the CRC-32 of DATA, an integer
 *
 * DATA is bytes, or a string (its UTF-8), so the app is usable from a
 * shell.
 */
#include <string.h>

#include <zlib.h>

#include <dirty.h>

#define DEFAULT_MAX_SIZE (64 * 1024 * 1024)

#define DIRTY_TYPE_COMPRESS_APP (dirty_compress_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyCompressApp, dirty_compress_app, DIRTY, COMPRESS_APP, DirtyApp)

struct _DirtyCompressApp
{
  DirtyApp parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtyCompressApp, dirty_compress_app, DIRTY_TYPE_APP)

/* args[0] as bytes, or a string as its bytes; NULL after completing the
 * call with the error. (transfer full) */
static GBytes *
get_data (DirtyCall *call)
{
  GError *error = NULL;
  JsonNode *node = dirty_call_get_arg (call, 0);
  GBytes *bytes;

  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_STRING)
    {
      const char *s = json_node_get_string (node);
      return g_bytes_new (s, strlen (s));
    }
  if (!dirty_call_get_arg_bytes (call, 0, &bytes, &error))
    {
      dirty_call_return_error (call, error);
      return NULL;
    }
  return g_bytes_ref (bytes);
}

static void
compress_action (DirtyApp  *app,
                 DirtyCall *call,
                 gpointer   user_data)
{
  g_autoptr(GBytes) input = get_data (call);
  GError *error = NULL;
  gint64 level;
  const guint8 *data;
  gsize size;
  uLongf out_size;
  guint8 *out;
  int ret;

  if (input == NULL)
    return;
  if (!dirty_call_get_kwarg_int (call, "level", Z_DEFAULT_COMPRESSION, &level, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  if (level < -1 || level > 9)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "compress: level must be -1 to 9, not %" G_GINT64_FORMAT,
                                   level);
      return;
    }

  data = g_bytes_get_data (input, &size);
  if (size > G_MAXUINT32)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "compress: input too large");
      return;
    }
  out_size = compressBound (size);
  out = g_malloc (out_size);
  ret = compress2 (out, &out_size, data, size, (int) level);
  if (ret != Z_OK)
    {
      g_free (out);
      dirty_call_return_new_error (call, G_IO_ERROR, G_IO_ERROR_FAILED,
                                   "compress: zlib error %d", ret);
      return;
    }
  {
    g_autoptr(GBytes) result = g_bytes_new_take (g_realloc (out, out_size ? out_size : 1),
                                                 out_size);
    dirty_call_return_bytes (call, result);
  }
}

/* Inflates into a growing buffer, never past @max_size: a few bytes of
 * input can claim gigabytes of output. */
static GBytes *
inflate_bytes (GBytes  *input,
               gsize    max_size,
               GError **error)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  z_stream stream = { 0 };
  gsize size;
  int ret;

  stream.next_in = (Bytef *) g_bytes_get_data (input, &size);
  stream.avail_in = size;
  if (inflateInit (&stream) != Z_OK)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "decompress: zlib init failed");
      return NULL;
    }
  do
    {
      guint8 chunk[64 * 1024];

      stream.next_out = chunk;
      stream.avail_out = sizeof chunk;
      ret = inflate (&stream, Z_NO_FLUSH);
      if (ret != Z_OK && ret != Z_STREAM_END)
        break;
      g_byte_array_append (out, chunk, sizeof chunk - stream.avail_out);
      if (out->len > max_size)
        {
          inflateEnd (&stream);
          g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                       "decompress: output exceeds max_size (%" G_GSIZE_FORMAT " bytes)",
                       max_size);
          return NULL;
        }
    }
  while (ret == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0));
  inflateEnd (&stream);

  if (ret != Z_STREAM_END)
    {
      g_set_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                   "decompress: the data is not valid zlib data (%s)",
                   ret == Z_OK || ret == Z_BUF_ERROR ? "truncated" : "corrupt");
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static void
decompress_action (DirtyApp  *app,
                   DirtyCall *call,
                   gpointer   user_data)
{
  g_autoptr(GBytes) input = get_data (call);
  g_autoptr(GBytes) output = NULL;
  GError *error = NULL;
  gint64 max_size;

  if (input == NULL)
    return;
  if (!dirty_call_get_kwarg_int (call, "max_size", DEFAULT_MAX_SIZE, &max_size, &error))
    {
      dirty_call_return_error (call, error);
      return;
    }
  if (max_size < 0)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "decompress: max_size must not be negative");
      return;
    }
  output = inflate_bytes (input, (gsize) max_size, &error);
  if (output == NULL)
    dirty_call_return_error (call, error);
  else
    dirty_call_return_bytes (call, output);
}

static void
crc32_action (DirtyApp  *app,
              DirtyCall *call,
              gpointer   user_data)
{
  g_autoptr(GBytes) input = get_data (call);
  const guint8 *data;
  gsize size;
  uLong crc;

  if (input == NULL)
    return;
  data = g_bytes_get_data (input, &size);
  crc = crc32 (0L, Z_NULL, 0);
  /* crc32() takes a uInt length: feed large inputs in pieces. */
  while (size > 0)
    {
      uInt n = (uInt) MIN (size, (gsize) G_MAXUINT32);

      crc = crc32 (crc, data, n);
      data += n;
      size -= n;
    }
  dirty_call_return_int (call, (gint64) crc);
}

static void
dirty_compress_app_class_init (DirtyCompressAppClass *klass)
{
}

static void
dirty_compress_app_init (DirtyCompressApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "compress", DIRTY_ACTION_SYNC, compress_action, NULL, NULL);
  dirty_app_add_action (app, "decompress", DIRTY_ACTION_SYNC, decompress_action, NULL, NULL);
  dirty_app_add_action (app, "crc32", DIRTY_ACTION_SYNC, crc32_action, NULL, NULL);
}
