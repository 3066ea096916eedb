/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* notanapp: types the loader must refuse.
 *   notanapp:DirtyNotAnApp       a plain GObject, not a DirtyApp
 *   notanapp:DirtyAbstractApp    a DirtyApp, but abstract
 *   notanapp:DirtyMissingApp     no such symbol at all
 */
#include <dirty.h>

#define DIRTY_TYPE_NOT_AN_APP (dirty_not_an_app_get_type ())
G_DECLARE_FINAL_TYPE (DirtyNotAnApp, dirty_not_an_app, DIRTY, NOT_AN_APP, GObject)

struct _DirtyNotAnApp
{
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (DirtyNotAnApp, dirty_not_an_app, G_TYPE_OBJECT)

static void
dirty_not_an_app_class_init (DirtyNotAnAppClass *klass)
{
}

static void
dirty_not_an_app_init (DirtyNotAnApp *self)
{
}

#define DIRTY_TYPE_ABSTRACT_APP (dirty_abstract_app_get_type ())
G_DECLARE_DERIVABLE_TYPE (DirtyAbstractApp, dirty_abstract_app, DIRTY, ABSTRACT_APP, DirtyApp)

struct _DirtyAbstractAppClass
{
  DirtyAppClass parent_class;
};

G_DEFINE_ABSTRACT_TYPE (DirtyAbstractApp, dirty_abstract_app, DIRTY_TYPE_APP)

static void
dirty_abstract_app_class_init (DirtyAbstractAppClass *klass)
{
}

static void
dirty_abstract_app_init (DirtyAbstractApp *self)
{
}
