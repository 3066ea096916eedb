/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* thumbnail:DirtyThumbnailApp: image work with gdk-pixbuf, the kind of
 * blocking, memory-hungry call a service hands to a worker.
 *
 *   thumbnail IMAGE [size=128]   PNG bytes of IMAGE scaled to fit in a
 *                                size x size box, keeping its aspect ratio
 *                                (never enlarged)
 *   info IMAGE                   {"width", "height", "format"}
 *
 * IMAGE is bytes in any format gdk-pixbuf reads. Data that is not an
 * image, or an image over 100 megapixels, is an invalid-argument error.
 */
#include <gdk-pixbuf/gdk-pixbuf.h>

#include <dirty.h>

#define DEFAULT_SIZE 128
#define MAX_SIZE     4096
/* Refused before decoding: a small file can claim a huge canvas. */
#define MAX_PIXELS   (100 * 1000 * 1000)

#define DIRTY_TYPE_THUMBNAIL_APP (dirty_thumbnail_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyThumbnailApp, dirty_thumbnail_app, DIRTY, THUMBNAIL_APP, DirtyApp)

struct _DirtyThumbnailApp
{
  DirtyApp parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtyThumbnailApp, dirty_thumbnail_app, DIRTY_TYPE_APP)

typedef struct {
  int width;
  int height;
  gboolean too_big;
} SizeCheck;

static void
size_prepared_cb (GdkPixbufLoader *loader,
                  int              width,
                  int              height,
                  gpointer         user_data)
{
  SizeCheck *check = user_data;

  check->width = width;
  check->height = height;
  if ((gint64) width * height > MAX_PIXELS)
    {
      check->too_big = TRUE;
      /* A size of 0 tells the image module to stop: it allocates nothing
       * (GdkPixbufModuleSizeFunc). */
      gdk_pixbuf_loader_set_size (loader, 0, 0);
    }
}

/* Decodes @data; on failure completes the call with an invalid-argument
 * error and returns NULL. (transfer full) */
static GdkPixbuf *
load_image (DirtyCall   *call,
            GBytes      *data,
            char       **out_format)
{
  g_autoptr(GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  g_autoptr(GError) error = NULL;
  SizeCheck check = { 0 };
  GdkPixbufFormat *format;
  GdkPixbuf *pixbuf;

  gboolean ok;

  g_signal_connect (loader, "size-prepared", G_CALLBACK (size_prepared_cb), &check);
  ok = gdk_pixbuf_loader_write_bytes (loader, data, &error);
  /* The loader must be closed even after a failed write (once). */
  ok = gdk_pixbuf_loader_close (loader, ok ? &error : NULL) && ok;
  if (check.too_big)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "%s: the image is %d x %d, over the limit of %d pixels",
                                   dirty_call_get_action (call), check.width, check.height,
                                   MAX_PIXELS);
      return NULL;
    }
  if (!ok)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "%s: the data is not an image gdk-pixbuf can read: %s",
                                   dirty_call_get_action (call),
                                   error ? error->message : "unknown error");
      return NULL;
    }
  pixbuf = gdk_pixbuf_loader_get_pixbuf (loader);
  if (pixbuf == NULL)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "%s: the data holds no image", dirty_call_get_action (call));
      return NULL;
    }
  format = gdk_pixbuf_loader_get_format (loader);
  if (out_format)
    *out_format = format ? gdk_pixbuf_format_get_name (format) : g_strdup ("unknown");
  return g_object_ref (pixbuf);
}

static gboolean
get_image_arg (DirtyCall  *call,
               GBytes    **data)
{
  GError *error = NULL;

  if (!dirty_call_get_arg_bytes (call, 0, data, &error))
    {
      dirty_call_return_error (call, error);
      return FALSE;
    }
  return TRUE;
}

static void
thumbnail_action (DirtyApp  *app,
                  DirtyCall *call,
                  gpointer   user_data)
{
  g_autoptr(GdkPixbuf) image = NULL;
  g_autoptr(GdkPixbuf) scaled = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *png = NULL;
  GBytes *data;
  gint64 size;
  int width, height;
  double scale;
  gsize png_size;

  if (!get_image_arg (call, &data))
    return;
  if (!dirty_call_get_kwarg_int (call, "size", DEFAULT_SIZE, &size, &error))
    {
      dirty_call_return_error (call, g_steal_pointer (&error));
      return;
    }
  if (size < 1 || size > MAX_SIZE)
    {
      dirty_call_return_new_error (call, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT,
                                   "thumbnail: size must be 1 to %d, not %" G_GINT64_FORMAT,
                                   MAX_SIZE, size);
      return;
    }
  image = load_image (call, data, NULL);
  if (image == NULL)
    return;
  if (dirty_call_return_error_if_cancelled (call))
    return;

  width = gdk_pixbuf_get_width (image);
  height = gdk_pixbuf_get_height (image);
  scale = MIN (1.0, MIN ((double) size / width, (double) size / height));
  scaled = gdk_pixbuf_scale_simple (image,
                                    MAX (1, (int) (width * scale + 0.5)),
                                    MAX (1, (int) (height * scale + 0.5)),
                                    GDK_INTERP_BILINEAR);
  if (scaled == NULL ||
      !gdk_pixbuf_save_to_buffer (scaled, &png, &png_size, "png", &error, NULL))
    {
      dirty_call_return_new_error (call, G_IO_ERROR, G_IO_ERROR_FAILED,
                                   "thumbnail: could not make the PNG: %s",
                                   error ? error->message : "out of memory");
      return;
    }
  {
    g_autoptr(GBytes) result = g_bytes_new_take (g_steal_pointer (&png), png_size);
    dirty_call_return_bytes (call, result);
  }
}

static void
info_action (DirtyApp  *app,
             DirtyCall *call,
             gpointer   user_data)
{
  g_autoptr(GdkPixbuf) image = NULL;
  g_autofree char *format = NULL;
  g_autoptr(JsonBuilder) builder = NULL;
  GBytes *data;

  if (!get_image_arg (call, &data))
    return;
  image = load_image (call, data, &format);
  if (image == NULL)
    return;

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "width");
  json_builder_add_int_value (builder, gdk_pixbuf_get_width (image));
  json_builder_set_member_name (builder, "height");
  json_builder_add_int_value (builder, gdk_pixbuf_get_height (image));
  json_builder_set_member_name (builder, "format");
  json_builder_add_string_value (builder, format);
  json_builder_end_object (builder);
  dirty_call_return_value (call, json_builder_get_root (builder));
}

static void
dirty_thumbnail_app_class_init (DirtyThumbnailAppClass *klass)
{
}

static void
dirty_thumbnail_app_init (DirtyThumbnailApp *self)
{
  DirtyApp *app = DIRTY_APP (self);

  dirty_app_add_action (app, "thumbnail", DIRTY_ACTION_SYNC, thumbnail_action, NULL, NULL);
  dirty_app_add_action (app, "info", DIRTY_ACTION_SYNC, info_action, NULL, NULL);
}
