/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON for the tests (test programs and test apps alike, so a header). */
#pragma once

#include <json-glib/json-glib.h>

/* @depth arrays, one inside the other: nesting at the protocol's limit
 * (DIRTY_DEFAULT_MAX_DEPTH, 64) and past it. (transfer full) */
static inline JsonNode *
dirty_test_nested_arrays (guint depth)
{
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  json_node_take_array (node, json_array_new ());
  for (guint i = 1; i < depth; i++)
    {
      JsonNode *outer = json_node_new (JSON_NODE_ARRAY);

      json_node_take_array (outer, json_array_new ());
      json_array_add_element (json_node_get_array (outer), node);
      node = outer;
    }
  return node;
}
