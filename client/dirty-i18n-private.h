/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Translations of the library's messages (text domain GETTEXT_PACKAGE).
 * _() binds the domain on first use, so no program has to know about it;
 * the catalogues come from $DIRTY_LOCALEDIR if set (tests, an uninstalled
 * build), else LOCALEDIR. */

#include <glib/gi18n-lib.h>

G_BEGIN_DECLS

const char *dirty_i18n_gettext (const char *msgid) G_GNUC_FORMAT (1);

G_END_DECLS

#undef _
#define _(String) dirty_i18n_gettext (String)
