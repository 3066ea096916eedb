/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "dirty-json.h"
#include "dirty-json-write.h"

/**
 * dirty_json_to_string:
 * @node: a JSON value, such as a call's result or a stream's chunk
 * @pretty: whether to put each member and element on a line of its
 *   own, indented by two spaces
 *
 * Writes @node as JSON text, as the protocol writes it: strict JSON
 * (RFC 8259), and each double in the fewest digits that read back as the
 * same value, always with a `.` or an exponent so that it reads back as
 * a double (`0.1`, `1.0`, `1e+20`). json_to_string() of json-glib 1.6
 * writes `0.10000000000000001` and `1e+20.0`, which is not JSON.
 *
 * A value JSON cannot carry (NaN, infinity) is written as `null`, and
 * bytes of a string that are not UTF-8 as U+FFFD.
 *
 * Returns: (transfer full): the text
 *
 * Since: 0.1
 */
char *
dirty_json_to_string (JsonNode *node,
                      gboolean  pretty)
{
  g_return_val_if_fail (node != NULL, NULL);

  return dirty_json_to_text (node, pretty, NULL);
}
