/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the wire protocol code: frame headers, bodies, limits and
 * the framed connection, over a real socketpair. */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dirty-connection.h"
#include "dirty-json-lexer-private.h"
#include "dirty-json-scan.h"
#include "dirty-json-write.h"
#include "dirty-message.h"
#include "dirty-test-json.h"

static DirtyLimits limits;

static void
write_header (guint8 *buf, guint8 type, guint64 id, guint32 json_len,
              guint32 attach_len, guint16 n_attach)
{
  DirtyFrameHeader h = { .type = type, .id = id, .json_length = json_len,
                         .attachments_length = attach_len, .n_attachments = n_attach };
  dirty_frame_header_write (&h, buf);
}

static void
test_header_round_trip (void)
{
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .flags = DIRTY_FRAME_FLAG_STREAM,
                         .id = G_GUINT64_CONSTANT (0x0102030405060708), .aux = 5000,
                         .json_length = 10, .attachments_length = 8, .n_attachments = 1 };
  DirtyFrameHeader out;
  guint8 buf[DIRTY_FRAME_HEADER_SIZE];
  g_autoptr(GError) error = NULL;

  dirty_frame_header_write (&h, buf);
  /* the documented byte layout: magic "DIRT", version, type, flags, id BE */
  g_assert_cmpmem (buf, 4, "DIRT", 4);
  g_assert_cmpint (buf[4], ==, 1);
  g_assert_cmpint (buf[5], ==, DIRTY_FRAME_REQUEST);
  g_assert_cmpint (buf[7], ==, 1);
  g_assert_cmpint (buf[8], ==, 0x01);
  g_assert_cmpint (buf[15], ==, 0x08);
  g_assert_true (dirty_frame_header_parse (buf, &limits, &out, &error));
  g_assert_no_error (error);
  /* field by field: the struct's padding is not part of the frame */
  g_assert_cmpuint (out.type, ==, h.type);
  g_assert_cmpuint (out.flags, ==, h.flags);
  g_assert_cmpuint (out.id, ==, h.id);
  g_assert_cmpuint (out.aux, ==, h.aux);
  g_assert_cmpuint (out.json_length, ==, h.json_length);
  g_assert_cmpuint (out.attachments_length, ==, h.attachments_length);
  g_assert_cmpuint (out.n_attachments, ==, h.n_attachments);
  g_assert_cmpuint (out.n_fds, ==, h.n_fds);
}

static void
assert_header_rejected (const guint8 *buf, const char *needle)
{
  DirtyFrameHeader out;
  g_autoptr(GError) error = NULL;

  g_assert_false (dirty_frame_header_parse (buf, &limits, &out, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_header_rejects (void)
{
  guint8 buf[DIRTY_FRAME_HEADER_SIZE];

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 0, 0);
  buf[0] = 'X';
  assert_header_rejected (buf, "magic");

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 0, 0);
  buf[4] = 2;
  assert_header_rejected (buf, "version");

  write_header (buf, 0, 1, 2, 0, 0);
  assert_header_rejected (buf, "type");
  write_header (buf, 200, 1, 2, 0, 0);
  assert_header_rejected (buf, "type");

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 0, 0);
  buf[6] = 0x80;
  assert_header_rejected (buf, "flags");

  write_header (buf, DIRTY_FRAME_REQUEST, 1, limits.max_body, 1, 0);
  assert_header_rejected (buf, "limit");

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 8, limits.max_attachments + 1);
  assert_header_rejected (buf, "attachments");

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 3, 1);
  assert_header_rejected (buf, "table");

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 0, 0);
  buf[31] = 1;
  assert_header_rejected (buf, "descriptors");
}

static JsonNode *
parse (const char *json)
{
  return json_from_string (json, NULL);
}

static void
test_body_round_trip (void)
{
  g_autoptr(JsonNode) root = parse ("{\"app\":\"a:B\",\"args\":[1,{\"$bytes\":1}]}");
  g_autoptr(GPtrArray) attach = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(JsonNode) out = NULL;
  g_autoptr(GPtrArray) out_attach = NULL;
  g_autoptr(GError) error = NULL;
  static const guint8 binary[] = { 0, 1, 2, 255, 0 };
  JsonArray *args;

  g_ptr_array_add (attach, g_bytes_new_static ("", 0));
  g_ptr_array_add (attach, g_bytes_new_static (binary, sizeof binary));
  frame = dirty_frame_encode (DIRTY_FRAME_REQUEST, 0, 7, 100, root, attach);
  g_assert_cmpuint (frame->header.n_attachments, ==, 2);
  g_assert_cmpuint (frame->header.attachments_length, ==, 8 + sizeof binary);

  g_assert_true (dirty_frame_decode (frame, &limits, &out, &out_attach, &error));
  g_assert_no_error (error);
  g_assert_true (json_node_equal (root, out));
  g_assert_cmpuint (out_attach->len, ==, 2);
  g_assert_cmpuint (g_bytes_get_size (out_attach->pdata[0]), ==, 0);
  g_assert_true (g_bytes_equal (out_attach->pdata[1], attach->pdata[1]));

  args = json_object_get_array_member (json_node_get_object (out), "args");
  g_assert_true (dirty_json_lookup_bytes (json_array_get_element (args, 1), out_attach)
                 == out_attach->pdata[1]);
  g_assert_null (dirty_json_lookup_bytes (json_array_get_element (args, 0), out_attach));
}

static void
test_empty_body (void)
{
  g_autoptr(DirtyFrame) frame = dirty_frame_new_empty (DIRTY_FRAME_CANCEL, 9, 0);
  g_autoptr(JsonNode) out = NULL;
  g_autoptr(GPtrArray) attach = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (dirty_frame_decode (frame, &limits, &out, &attach, &error));
  g_assert_null (out);
  g_assert_cmpuint (attach->len, ==, 0);
}

static void
assert_body_rejected (const char *json, gsize len, const char *needle)
{
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = 1, .json_length = len };
  g_autoptr(GBytes) body = g_bytes_new (json, len);
  g_autoptr(DirtyFrame) frame = dirty_frame_new (&h, body);
  g_autoptr(JsonNode) out = NULL;
  g_autoptr(GPtrArray) attach = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (dirty_frame_decode (frame, &limits, &out, &attach, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_body_rejects (void)
{
  g_autoptr(GString) deep = g_string_new (NULL);

  assert_body_rejected ("{\"a\":\"\xff\xfe\"}", 9, "UTF-8");
  assert_body_rejected ("{\"a\":\0}", 7, "UTF-8");
  assert_body_rejected ("{\"a\":", 5, "parse");
  assert_body_rejected ("[1,2]", 5, "object");
  assert_body_rejected ("42", 2, "object");

  /* a million brackets must be refused before the recursive parser runs */
  for (guint i = 0; i < 1000000; i++)
    g_string_append_c (deep, '[');
  assert_body_rejected (deep->str, deep->len, "deeper");

  /* brackets inside strings do not count towards the depth */
  g_string_assign (deep, "{\"s\":\"");
  for (guint i = 0; i < 1000; i++)
    g_string_append (deep, "[{\\\"");
  g_string_append (deep, "\"}");
  {
    g_autoptr(GError) error = NULL;
    g_assert_true (dirty_json_check (deep->str, deep->len, limits.max_depth, &error));
    g_assert_no_error (error);
  }
}

/* The text the scan gives for a member is that member's value as
 * json-glib reads the whole document (the last of duplicates). */
static void
assert_span_is (const char *json, gsize length, JsonNode *expected)
{
  g_autofree char *text = g_strndup (json, length);
  g_autoptr(JsonNode) parsed = json_from_string (text, NULL);

  g_assert_nonnull (parsed);
  g_assert_true (json_node_equal (parsed, expected));
}

/* The arbiter's request scan accepts only what json-glib (the worker's
 * parser) accepts, and reads the same routing members from it. */
static void
assert_scan_agrees (const char *json)
{
  DirtyRequestHead head;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = json_from_string (json, NULL);
  gboolean scanned = dirty_request_head_scan (json, strlen (json), limits.max_depth, &head, &error);

  if (!scanned)
    {
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
      return;
    }
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  g_assert_cmpstr (head.app_kind == DIRTY_JSON_STRING ? head.app : NULL, ==,
                   dirty_json_get_string (root, "app"));
  g_assert_cmpstr (head.action_kind == DIRTY_JSON_STRING ? head.action : NULL, ==,
                   dirty_json_get_string (root, "action"));
  {
    JsonObject *object = json_node_get_object (root);
    JsonNode *args = json_object_get_member (object, "args");
    JsonNode *kwargs = json_object_get_member (object, "kwargs");
    JsonNode *window = json_object_get_member (object, "window");

    g_assert_cmpint (head.args_kind == DIRTY_JSON_ARRAY, ==, args && JSON_NODE_HOLDS_ARRAY (args));
    g_assert_cmpint (head.args_kind == DIRTY_JSON_ABSENT, ==, args == NULL);
    g_assert_cmpint (head.kwargs_kind == DIRTY_JSON_OBJECT, ==,
                     kwargs && JSON_NODE_HOLDS_OBJECT (kwargs));
    g_assert_cmpint (head.kwargs_kind == DIRTY_JSON_ABSENT, ==, kwargs == NULL);
    g_assert_cmpint (head.window_kind == DIRTY_JSON_INTEGER, ==,
                     window && JSON_NODE_HOLDS_VALUE (window) &&
                     json_node_get_value_type (window) == G_TYPE_INT64);
    if (head.window_kind == DIRTY_JSON_INTEGER && !head.window_overflows)
      g_assert_cmpint (head.window, ==, json_node_get_int (window));
    if (head.args_kind == DIRTY_JSON_ARRAY)
      assert_span_is (head.args_json, head.args_length, args);
    if (head.kwargs_kind == DIRTY_JSON_OBJECT)
      assert_span_is (head.kwargs_json, head.kwargs_length, kwargs);
  }
  dirty_request_head_clear (&head);
}

static void
assert_scan_rejects (const char *json, gsize length)
{
  DirtyRequestHead head;
  g_autoptr(GError) error = NULL;

  g_assert_false (dirty_request_head_scan (json, length, limits.max_depth, &head, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_assert_null (head.app);
}

static void
test_request_scan (void)
{
  static const char *const agree[] = {
    "{}", " {\"app\":\"e:E\",\"action\":\"a\"} ",
    "{\"app\":\"e:E\",\"action\":\"a\",\"args\":[1,[2,{\"x\":[]}],\"]\"],\"kwargs\":{\"a\":{}}}",
    "{\"app\":1,\"action\":\"a\"}", "{\"app\":\"x\",\"app\":\"y\",\"action\":\"z\"}",
    "{\"app\":\"x\",\"app\":null}", "{\"args\":{},\"kwargs\":[]}", "{\"args\":\"[\"}",
    "{\"\\u0061pp\":\"a\\u00e9\\n\\\"\",\"action\":\"\\ud83d\\ude00\"}",
    "{\"window\":8}", "{\"window\":-3}", "{\"window\":8.0}", "{\"window\":1e2}", "{\"window\":\"8\"}",
    "{\"window\":99999999999999999999999}", "{\"a\":[true,false,null,-0,0.5,1E+2,\"\\/\"]}",
    "{\"args\":[1],\"kwargs\":{\"args\":[2],\"kwargs\":{}},\"args\":[3,[4,{\"args\":5}]]}",
    "{\"\\u0061rgs\":[ ],\"kwargs\":{ \"k\" : [ \"]\" ] } }", "{\"args\":[],\"args\":null}",
    /* json-glib takes these; the scan refuses them (stricter is safe) */
    "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":\"\\x\"}", "{\"a\":\"\t\"}", "{}{}",
    "{'a':1}", "{/*c*/}", "{\"a\":0x10}",
    /* neither takes these */
    "", "[]", "42", "\"app\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "[1,]",
    "{\"a\":-}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":NaN}", "{\"a\":tRue}", "{\"a\":nul}",
    "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\uDE00\\uD83D\"}", "{\"a\":\"\\u12\"}",
    "{\"a\":[1 2]}", "{\"a\" 1}", "{a:1}", "{} x", "{\"a\":\"open}", "{\"a\":[}", "{\"a\":{]}",
  };
  g_autoptr(GString) deep = g_string_new ("{\"args\":");

  for (guint i = 0; i < G_N_ELEMENTS (agree); i++)
    assert_scan_agrees (agree[i]);

  assert_scan_rejects ("{\"a\":\"\xff\"}", 8);
  assert_scan_rejects ("{\"a\":1}\0", 8);
  for (guint i = 0; i < 1000000; i++)
    g_string_append_c (deep, '[');
  assert_scan_rejects (deep->str, deep->len);
  /* exactly the depth limit is fine, one more is not */
  g_string_assign (deep, "{\"a\":");
  for (guint i = 1; i < limits.max_depth; i++)
    g_string_append_c (deep, '[');
  for (guint i = 1; i < limits.max_depth; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  assert_scan_agrees (deep->str);
  g_string_insert (deep, 5, "[");
  g_string_insert (deep, deep->len - 1, "]");
  assert_scan_rejects (deep->str, deep->len);
}

/* The strict parser builds exactly json-glib's tree, or leaves it to
 * json-glib. */
static void
assert_parse_agrees (const char *json, gboolean strict)
{
  g_autoptr(JsonNode) fast = dirty_json_parse_strict (json, strlen (json), limits.max_depth);
  g_autoptr(JsonNode) slow = json_from_string (json, NULL);

  if (!strict)
    {
      g_assert_null (fast);
      return;
    }
  g_assert_nonnull (fast);
  g_assert_nonnull (slow);
  g_assert_true (json_node_is_immutable (fast));
  g_assert_true (json_node_equal (fast, slow));
  {
    g_autofree char *a = json_to_string (fast, FALSE);
    g_autofree char *b = json_to_string (slow, FALSE);

    g_assert_cmpstr (a, ==, b);   /* also tells 1 from 1.0 */
  }
}

static void
test_parse_strict (void)
{
  static const char *const strict[] = {
    "{}", " { } ", "{\"a\":[]}", "{\"a\":{}}", "{\"a\":[[],{},[[{}]]]}",
    "{\"app\":\"e:E\",\"action\":\"a\",\"args\":[1,-2,0,-0,3.5,-1e3,2E-2,1.0,true,false,null,\"s\"],"
    "\"kwargs\":{\"x\":{\"y\":[1,{\"$bytes\":0}]}}}",
    "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00 caf\xc3\xa9\"}",
    "{\"dup\":1,\"dup\":2}", "{\"\\u0061\":1}", "{\"big\":123456789012345678}",
    "{\"neg\":-123456789012345678}", "{\"d\":0.1}", "{\"d\":1e308}",
    /* a number of 64 characters or more is the strict parser's too */
    "{\"d\":1.00000000000000000000000000000000000000000000000000000000000000000001}",
  };
  static const char *const other[] = {
    "[]", "1", "{\"a\":01}", "{\"a\":1,}", "{} x", "{'a':1}", "{\"a\":\"\\x\"}",
    "{\"a\":\"\\u0000\"}", "{\"a\":", "{\"a\":[1,]}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (strict); i++)
    assert_parse_agrees (strict[i], TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (other); i++)
    assert_parse_agrees (other[i], FALSE);
}

/* Integers of every length: an int when it fits 64 bits, else the
 * nearest double (json-glib 1.6, which the strict parser used to leave
 * them to, wraps them around: 2^64 - 1 read as -1). */
static void
test_parse_big_integers (void)
{
  static const struct {
    const char *json;
    GType       type;
    gint64      integer;
    double      real;
  } cases[] = {
    { "{\"n\":9223372036854775807}", G_TYPE_INT64, G_MAXINT64, 0 },
    { "{\"n\":-9223372036854775808}", G_TYPE_INT64, G_MININT64, 0 },
    { "{\"n\":0000}", G_TYPE_NONE, 0, 0 },
    { "{\"n\":9223372036854775808}", G_TYPE_DOUBLE, 0, 9223372036854775808.0 },
    { "{\"n\":-9223372036854775809}", G_TYPE_DOUBLE, 0, -9223372036854775808.0 },
    { "{\"n\":18446744073709551615}", G_TYPE_DOUBLE, 0, 18446744073709551615.0 },
    { "{\"n\":1180591620717411303424}", G_TYPE_DOUBLE, 0, 1180591620717411303424.0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonNode) root = dirty_json_parse_strict (cases[i].json, strlen (cases[i].json),
                                                          limits.max_depth);
      JsonNode *n;

      if (cases[i].type == G_TYPE_NONE)
        {
          g_assert_null (root);   /* not JSON: leading zeros */
          continue;
        }
      g_assert_nonnull (root);
      n = json_object_get_member (json_node_get_object (root), "n");
      g_assert_cmpint (json_node_get_value_type (n), ==, cases[i].type);
      if (cases[i].type == G_TYPE_INT64)
        g_assert_cmpint (json_node_get_int (n), ==, cases[i].integer);
      else
        g_assert_cmpfloat (json_node_get_double (n), ==, cases[i].real);
    }
}

/* The strict parser refuses what dirty_json_check () refuses, so the
 * decode can leave that check to the fallback: bad UTF-8 in strings
 * (elsewhere only ASCII parses) and nesting past the limit. */
static void
test_parse_strict_checks (void)
{
  static const char *const bad_utf8[] = {
    "{\"a\":\"\xff\"}", "{\"\xc3\":1}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
    "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":[\"ok\",\"\xf4\x90\x80\x80\"]}",
  };
  g_autoptr(GString) deep = g_string_new ("{\"a\":");

  for (guint i = 0; i < G_N_ELEMENTS (bad_utf8); i++)
    {
      g_autoptr(JsonNode) fast = dirty_json_parse_strict (bad_utf8[i], strlen (bad_utf8[i]),
                                                          limits.max_depth);

      g_assert_false (dirty_json_check (bad_utf8[i], strlen (bad_utf8[i]), limits.max_depth, NULL));
      g_assert_null (fast);
    }
  /* exactly the depth limit parses, one more does not */
  for (guint i = 1; i < limits.max_depth; i++)
    g_string_append_c (deep, '[');
  for (guint i = 1; i < limits.max_depth; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  assert_parse_agrees (deep->str, TRUE);
  g_string_insert (deep, 5, "[");
  g_string_insert (deep, deep->len - 1, "]");
  {
    g_autoptr(JsonNode) fast = dirty_json_parse_strict (deep->str, deep->len, limits.max_depth);

    g_assert_false (dirty_json_check (deep->str, deep->len, limits.max_depth, NULL));
    g_assert_null (fast);
  }
}

/* The ASCII fast path of the UTF-8 check says what GLib's says: a NUL, a
 * high byte or a bad sequence at every offset around its 8-byte words. */
static void
test_valid_utf8 (void)
{
  static const char *const inserts[] = { "\0", "\xff", "\xc3", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xed\xa0\x80", "\xf0\x9f\x98\x80", "\xc0\xaf" };
  static const gsize insert_lengths[] = { 1, 1, 1, 2, 3, 3, 4, 2 };

  for (gsize length = 0; length <= 24; length++)
    for (gsize at = 0; at <= length; at++)
      for (guint k = 0; k < G_N_ELEMENTS (inserts); k++)
        {
          char text[32];
          gsize total = length + insert_lengths[k];

          memset (text, 'a', sizeof text);
          memcpy (text + at, inserts[k], insert_lengths[k]);
          g_assert_cmpint (dirty_lexer_valid_utf8 (text, total), ==,
                           g_utf8_validate_len (text, total, NULL));
        }
  /* and plain ASCII of every length, from every alignment */
  for (gsize length = 0; length <= 24; length++)
    for (gsize at = 0; at < 8; at++)
      g_assert_true (dirty_lexer_valid_utf8 ("{\"app\":\"echo:DirtyEchoApp\",\"action\":\"x\"}" + at,
                                             length));
}

/* A RESPONSE's {"result": ...} read without its object: exactly json-glib's
 * value of "result", or NULL for any other shape (the decode then parses
 * the whole body); the object counts in the depth. */
static void
test_parse_sole_member (void)
{
  static const char *const sole[] = {
    "{\"result\":7}", " { \"result\" : \"s\\u00e9\" } ", "{\"result\":null}",
    "{\"result\":[1,{\"$bytes\":0},[]]}", "{\"result\":{\"a\":{\"b\":-1.5}}}", "{\"result\":{}}",
  };
  static const char *const other[] = {
    "{}", "{\"result\":1,\"x\":2}", "{\"x\":2,\"result\":1}", "{\"result\":1,\"result\":2}",
    "{\"res\\u0075lt\":1}", "{\"resultx\":1}", "{\"resul\":1}", "{\"result\":1} x", "{\"result\":}",
    "{\"result\":[1,]}", "[\"result\"]", "{\"result\"", "{\"result\":1", "{\"result\":\"\\u0000\"}",
  };
  g_autoptr(GString) deep = g_string_new ("{\"result\":");

  for (guint i = 0; i < G_N_ELEMENTS (sole); i++)
    {
      g_autoptr(JsonNode) fast = dirty_json_parse_sole_member_strict (sole[i], strlen (sole[i]),
                                                                      "result", limits.max_depth);
      g_autoptr(JsonNode) slow = json_from_string (sole[i], NULL);
      JsonNode *member = json_object_get_member (json_node_get_object (slow), "result");
      g_autofree char *a = NULL;
      g_autofree char *b = NULL;

      g_assert_nonnull (fast);
      g_assert_true (json_node_is_immutable (fast));
      g_assert_true (json_node_equal (fast, member));
      a = json_to_string (fast, FALSE);
      b = json_to_string (member, FALSE);
      g_assert_cmpstr (a, ==, b);
    }
  for (guint i = 0; i < G_N_ELEMENTS (other); i++)
    g_assert_null (dirty_json_parse_sole_member_strict (other[i], strlen (other[i]), "result",
                                                        limits.max_depth));

  /* the object and its value nest exactly to the limit: parses; one more
   * level does not, as dirty_json_check () refuses it */
  for (guint i = 1; i < limits.max_depth; i++)
    g_string_append_c (deep, '[');
  for (guint i = 1; i < limits.max_depth; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  {
    g_autoptr(JsonNode) fast = dirty_json_parse_sole_member_strict (deep->str, deep->len, "result",
                                                                    limits.max_depth);

    g_assert_true (dirty_json_check (deep->str, deep->len, limits.max_depth, NULL));
    g_assert_nonnull (fast);
  }
  g_string_insert (deep, 10, "[");
  g_string_insert (deep, deep->len - 1, "]");
  g_assert_false (dirty_json_check (deep->str, deep->len, limits.max_depth, NULL));
  g_assert_null (dirty_json_parse_sole_member_strict (deep->str, deep->len, "result",
                                                      limits.max_depth));
}

static void
test_bytes_chunk (void)
{
  static const guint8 data[] = { 1, 2, 3, 0, 255 };
  g_autoptr(GBytes) bytes = g_bytes_new_static (data, sizeof data);
  g_autoptr(GPtrArray) attach = g_ptr_array_new ();
  g_autoptr(DirtyFrame) chunk = NULL;
  g_autoptr(DirtyFrame) other = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) decoded = NULL;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (attach, bytes);
  chunk = dirty_frame_encode_text (DIRTY_FRAME_CHUNK, 0, 3, 0, DIRTY_BYTES_CHUNK_JSON,
                                   strlen (DIRTY_BYTES_CHUNK_JSON), attach);
  got = dirty_frame_get_bytes_chunk (chunk);
  g_assert_nonnull (got);
  g_assert_true (g_bytes_equal (got, bytes));
  /* what a full decode says of the same frame */
  g_assert_true (dirty_frame_decode (chunk, &limits, &root, &decoded, &error));
  g_assert_true (dirty_json_lookup_bytes (json_object_get_member (json_node_get_object (root), "data"),
                                          decoded) == decoded->pdata[0]);

  /* any other chunk is left to the decoder */
  other = dirty_frame_encode_text (DIRTY_FRAME_CHUNK, 0, 3, 0, "{\"data\":{\"$bytes\":1}}", 21, attach);
  g_assert_null (dirty_frame_get_bytes_chunk (other));
  g_clear_pointer (&other, dirty_frame_unref);
  other = dirty_frame_encode_text (DIRTY_FRAME_RESPONSE, 0, 3, 0, DIRTY_BYTES_CHUNK_JSON,
                                   strlen (DIRTY_BYTES_CHUNK_JSON), attach);
  g_assert_null (dirty_frame_get_bytes_chunk (other));
}

/* dirty_frame_encode writes JSON itself: what comes back is what went in,
 * for json-glib's parser as well as the strict one. */
/* The worker's decode of a REQUEST: the routing members, "args" and
 * "kwargs" built as json-glib reads them, the attachments; the root
 * object is never built. */
/* A string holding U+0000 cannot be a JsonNode's (json-glib cut it
 * short, "a\u0000b" read as "a"): its request fails, with a reason; a
 * backslash before "u0000" is text, and stays. */
static void
test_decode_escaped_nul (void)
{
  static const char nul[] = "{\"app\":\"a:A\",\"action\":\"x\",\"args\":[\"a\\u0000b\"]}";
  static const char text[] = "{\"app\":\"a:A\",\"action\":\"x\",\"args\":[\"a\\\\u0000b\"]}";
  const char *docs[] = { nul, text };

  for (guint i = 0; i < G_N_ELEMENTS (docs); i++)
    {
      g_autoptr(DirtyFrame) frame = dirty_frame_encode_text (DIRTY_FRAME_REQUEST, 0, 1, 0, docs[i],
                                                             strlen (docs[i]), NULL);
      g_auto(DirtyRequestHead) head = { 0 };
      g_autoptr(JsonNode) args = NULL;
      g_autoptr(JsonNode) kwargs = NULL;
      g_autoptr(GPtrArray) parts = NULL;
      g_autoptr(GError) error = NULL;
      gboolean ok = dirty_frame_decode_request (frame, &limits, &head, &args, &kwargs, &parts,
                                                &error);

      if (docs[i] == nul)
        {
          g_assert_false (ok);
          g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
          g_assert_nonnull (strstr (error->message, "U+0000"));
        }
      else
        {
          g_assert_no_error (error);
          g_assert_cmpstr (json_array_get_string_element (json_node_get_array (args), 0), ==,
                           "a\\u0000b");
        }
    }
}

static void
test_decode_request (void)
{
  static const char *const docs[] = {
    /* (json_from_string () cuts "a\u0000b" to "a": no NUL is sent) */
    "{\"app\":\"a:A\",\"action\":\"x\",\"args\":[1,{\"$bytes\":0},\"a\\u0000b\"],"
    "\"kwargs\":{\"k\":[true]},\"window\":7}",
    "{\"app\":\"a:A\",\"action\":\"x\",\"args\":\"no\",\"kwargs\":null}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (docs); i++)
    {
      g_autoptr(JsonNode) root = json_from_string (docs[i], NULL);
      g_autoptr(GBytes) hello = g_bytes_new_static ("hello", 5);
      g_autoptr(GPtrArray) attach = g_ptr_array_new ();
      g_autoptr(DirtyFrame) frame = NULL;
      g_auto(DirtyRequestHead) head = { 0 };
      g_autoptr(JsonNode) args = NULL;
      g_autoptr(JsonNode) kwargs = NULL;
      g_autoptr(GPtrArray) parts = NULL;
      g_autoptr(GError) error = NULL;
      JsonObject *object;

      g_assert_nonnull (root);
      object = json_node_get_object (root);
      g_ptr_array_add (attach, hello);
      frame = dirty_frame_encode (DIRTY_FRAME_REQUEST, 0, 1, 0, root, attach);
      g_assert_true (dirty_frame_decode_request (frame, &limits, &head, &args, &kwargs, &parts,
                                                 &error));
      g_assert_no_error (error);
      g_assert_cmpstr (head.app, ==, "a:A");
      g_assert_cmpstr (head.action, ==, "x");
      if (i == 0)
        {
          g_assert_true (json_node_equal (args, json_object_get_member (object, "args")));
          g_assert_true (json_node_equal (kwargs, json_object_get_member (object, "kwargs")));
          g_assert_cmpint (head.window, ==, 7);
        }
      else
        {
          g_assert_null (args);
          g_assert_null (kwargs);
          g_assert_cmpint (head.args_kind, ==, DIRTY_JSON_STRING);
          g_assert_cmpint (head.kwargs_kind, ==, DIRTY_JSON_NULL);
        }
      g_assert_cmpuint (parts->len, ==, 1);
      g_assert_true (g_bytes_equal (g_ptr_array_index (parts, 0), hello));
    }

  {
    g_autoptr(DirtyFrame) frame = dirty_frame_encode_text (DIRTY_FRAME_REQUEST, 0, 1, 0,
                                                           "{\"args\":[1,]}", 13, NULL);
    g_auto(DirtyRequestHead) head = { 0 };
    g_autoptr(JsonNode) args = NULL;
    g_autoptr(JsonNode) kwargs = NULL;
    g_autoptr(GPtrArray) parts = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_false (dirty_frame_decode_request (frame, &limits, &head, &args, &kwargs, &parts,
                                                &error));
    g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
    g_assert_null (args);
    g_assert_null (parts);
  }
}

static void
test_encode_round_trip (void)
{
  static const char *const docs[] = {
    "{\"s\":\"q\\\"b\\\\s\\/ \\n\\t\\u0001\\u001f caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
    "{\"d\":[1.0,0.1,-0.0,1e300,-2.5e-300,123456789.125,3.0e10]}",
    "{\"i\":[0,-1,7,10,42,-100,1000000,9223372036854775807,-9223372036854775807,"
    "-9223372036854775808],\"b\":[true,false,null]}",
    "{\"o\":{\"a\":{\"b\":[[],{}]}},\"e\":\"\",\"\\u0000k\":1}",
    /* escapes first, last, alone and back to back */
    "{\"\\\"k\\n\":[\"\\\"\",\"\\\\a\\n\",\"\\u0002\\u0003\",\"a\\\"\\\\b\"]}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (docs); i++)
    {
      g_autoptr(JsonNode) root = json_from_string (docs[i], NULL);
      g_autoptr(DirtyFrame) frame = NULL;
      g_autoptr(JsonNode) out = NULL;
      g_autoptr(JsonNode) slow = NULL;
      g_autoptr(GPtrArray) attach = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *text = NULL;
      gsize length;
      const char *json;

      g_assert_nonnull (root);
      frame = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 1, 0, root, NULL);
      g_assert_true (dirty_frame_decode (frame, &limits, &out, &attach, &error));
      g_assert_no_error (error);
      g_assert_true (json_node_equal (root, out));
      json = dirty_frame_get_json (frame, &length);
      text = g_strndup (json, length);
      slow = json_from_string (text, &error);
      g_assert_no_error (error);
      g_assert_true (json_node_equal (root, slow));
    }
}

static void
test_attachment_check (void)
{
  guint8 lies[2 + 4 + 4] = { '{', '}', 0, 0, 0, 100, 'a', 'b', 'c', 'd' };
  guint8 good[2 + 8 + 4] = { '{', '}', 0, 0, 0, 4, 0, 0, 0, 0, 'a', 'b', 'c', 'd' };
  guint8 past[2 + 8 + 4] = { '{', '}', 0, 0, 0, 4, 0, 0, 0, 1, 'a', 'b', 'c', 'd' };
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = 1, .json_length = 2,
                         .n_attachments = 1, .attachments_length = 8 };
  g_autoptr(GBytes) body = g_bytes_new (lies, sizeof lies);
  g_autoptr(DirtyFrame) frame = dirty_frame_new (&h, body);
  g_autoptr(GError) error = NULL;

  g_assert_false (dirty_frame_check_attachments (frame, &limits, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_clear_error (&error);
  g_clear_pointer (&frame, dirty_frame_unref);
  g_clear_pointer (&body, g_bytes_unref);

  h.n_attachments = 2;
  h.attachments_length = 12;
  body = g_bytes_new (good, sizeof good);
  frame = dirty_frame_new (&h, body);
  g_assert_true (dirty_frame_check_attachments (frame, &limits, &error));
  g_assert_no_error (error);
  g_clear_pointer (&frame, dirty_frame_unref);
  g_clear_pointer (&body, g_bytes_unref);

  /* the first fills the section exactly, the second runs past it */
  body = g_bytes_new (past, sizeof past);
  frame = dirty_frame_new (&h, body);
  g_assert_false (dirty_frame_check_attachments (frame, &limits, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
}

/* A bytes CHUNK whose data travels as an fd attachment: the chunk fast
 * path leaves it to the full decode (which maps the memfd), and the
 * arbiter's table check counts it against max_fd_payload without
 * touching the fd. */
static void
test_fd_attachment_fast_paths (void)
{
  gsize size = DIRTY_MEMFD_THRESHOLD;
  g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc (size), size);
  g_autoptr(GPtrArray) attach = g_ptr_array_new ();
  g_autoptr(DirtyFrame) chunk = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) decoded = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits small = limits;

  memset ((guint8 *) g_bytes_get_data (bytes, NULL), 0x5a, size);
  g_ptr_array_add (attach, bytes);
  chunk = dirty_frame_encode_text_with_fds (DIRTY_FRAME_CHUNK, 0, 3, 0, DIRTY_BYTES_CHUNK_JSON,
                                            sizeof DIRTY_BYTES_CHUNK_JSON - 1, attach,
                                            dirty_memfd_pool_get_default ());
  g_assert_cmpuint (chunk->header.n_fds, ==, 1);
  g_assert_null (dirty_frame_get_bytes_chunk (chunk));
  g_assert_true (dirty_frame_check_attachments (chunk, &limits, &error));
  g_assert_no_error (error);
  g_assert_true (dirty_frame_decode (chunk, &limits, &root, &decoded, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (decoded->len, ==, 1);
  g_assert_true (g_bytes_equal (g_ptr_array_index (decoded, 0), bytes));

  small.max_fd_payload = size - 1;
  g_assert_false (dirty_frame_check_attachments (chunk, &small, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
}

/* dirty_frame_encode_string_with_fds () takes the string: alone it
 * becomes the body as it is, with attachments it is copied before them.
 * Either way the frame reads back as the text and the attachments. */
static void
test_encode_string (void)
{
  static const char text[] = "{\"result\":[1,\"two\",{\"$bytes\":0}]}";
  g_autoptr(GBytes) small = g_bytes_new_static ("abc", 3);
  g_autoptr(GPtrArray) attach = g_ptr_array_new ();

  g_ptr_array_add (attach, small);
  for (guint with = 0; with < 2; with++)
    {
      GString *json = g_string_new (text);
      g_autoptr(DirtyFrame) frame = NULL;
      g_autoptr(JsonNode) root = NULL;
      g_autoptr(GPtrArray) decoded = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *again = NULL;
      const char *body;
      gsize length;

      frame = dirty_frame_encode_string_with_fds (DIRTY_FRAME_RESPONSE, 0, 9, 0, json,
                                                  with ? attach : NULL, NULL);
      body = dirty_frame_get_json (frame, &length);
      g_assert_cmpmem (body, length, text, sizeof text - 1);
      g_assert_cmpuint (frame->header.n_attachments, ==, with);
      g_assert_cmpuint (g_bytes_get_size (frame->body), ==,
                        sizeof text - 1 + (with ? 4 + 3 : 0));
      g_assert_true (dirty_frame_decode (frame, &limits, &root, &decoded, &error));
      g_assert_no_error (error);
      again = json_to_string (root, FALSE);
      g_assert_cmpstr (again, ==, text);
      g_assert_cmpuint (decoded ? decoded->len : 0, ==, with);
      if (with)
        g_assert_true (g_bytes_equal (g_ptr_array_index (decoded, 0), small));
    }
}

/* The writer refuses exactly what a reader refuses: whatever it writes,
 * the reader takes (dirty_json_check, as every frame is read). Nesting
 * of 64 passes both, 65 neither; a NaN, an infinity and a byte that is
 * not UTF-8 fail with INVALID_ARGUMENT. Frames of our own making repair
 * them instead (dirty_json_to_text): null, U+FFFD. */
/* Doubles in the fewest digits that read back exactly, always with a
 * '.' or an exponent (json-glib 1.6 writes 1e+20.0 and
 * 0.10000000000000001); pretty text a member or element a line. */
static void
test_json_write_doubles (void)
{
  static const struct { double value; const char *text; } cases[] = {
    { 0.1, "0.1" }, { 1.0, "1.0" }, { -0.0, "-0.0" }, { 1e20, "1e+20" },
    { 1.5e-7, "1.5e-07" }, { 2.0 / 3.0, "0.6666666666666666" },
    { 1.7976931348623157e308, "1.7976931348623157e+308" }, { 123456.789, "123456.789" },
    { 9007199254740993.0, "9007199254740992.0" },
  };
  g_autoptr(JsonNode) tree = parse ("{\"a\":[1,{\"b\":null}],\"c\":[],\"d\":{}}");
  g_autofree char *pretty = dirty_json_to_text (tree, TRUE, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonNode) node = json_node_init_double (json_node_alloc (), cases[i].value);
      gsize length;
      g_autofree char *text = dirty_json_to_text (node, FALSE, &length);

      g_assert_cmpstr (text, ==, cases[i].text);
      g_assert_cmpuint (length, ==, strlen (text));
      g_assert_true (g_ascii_strtod (text, NULL) == cases[i].value);
    }
  g_assert_cmpstr (pretty, ==, "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n"
                               "  \"c\": [],\n  \"d\": {}\n}");
}

/* A frame of our own making is checked against the peer's limits before
 * it goes: the reader would close the connection for it. */
static void
test_check_sendable (void)
{
  g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(JsonNode) root = parse ("{\"result\":\"0123456789\"}");
  g_autoptr(DirtyFrame) small = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 1, 0, root, NULL);
  g_autoptr(DirtyFrame) crowded = NULL;
  g_autoptr(GError) error = NULL;
  DirtyLimits small_limits;

  dirty_limits_init (&small_limits);
  for (guint i = 0; i <= small_limits.max_attachments; i++)
    g_ptr_array_add (many, g_bytes_new_static ("x", 1));
  crowded = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 1, 0, root, many);

  g_assert_true (dirty_frame_check_sendable (small, &small_limits, &error));
  g_assert_no_error (error);
  g_assert_false (dirty_frame_check_sendable (crowded, &small_limits, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "more than the limit of 64"));
  g_clear_error (&error);
  small_limits.max_body = 16;
  g_assert_false (dirty_frame_check_sendable (small, &small_limits, &error));
  g_assert_nonnull (strstr (error->message, "exceeds the limit of 16 bytes"));
}

static void
test_json_write_limits (void)
{
  g_autoptr(JsonNode) deepest = dirty_test_nested_arrays (DIRTY_DEFAULT_MAX_DEPTH);
  g_autoptr(JsonNode) too_deep = dirty_test_nested_arrays (DIRTY_DEFAULT_MAX_DEPTH + 1);
  JsonNode *unwritable[] = {
    json_node_init_double (json_node_alloc (), NAN),
    json_node_init_double (json_node_alloc (), -INFINITY),
    json_node_init_string (json_node_alloc (), "bad \xff byte"),
    too_deep,
  };
  static const char *const repaired[] = { "null", "null", "\"bad \xef\xbf\xbd byte\"", NULL };
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (dirty_json_append (text, deepest, 0, 0, &error));
  g_assert_no_error (error);
  g_assert_true (dirty_json_check (text->str, text->len, DIRTY_DEFAULT_MAX_DEPTH, &error));
  g_assert_no_error (error);
  /* one level less room inside a frame's object */
  g_assert_false (dirty_json_append (text, deepest, 1, 0, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (unwritable); i++)
    {
      g_autofree char *fixed = NULL;
      gsize length;

      g_string_truncate (text, 0);
      g_assert_false (dirty_json_append (text, unwritable[i], 0, 0, &error));
      g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);

      fixed = dirty_json_to_text (unwritable[i], FALSE, &length);
      g_assert_true (dirty_json_check (fixed, length, DIRTY_DEFAULT_MAX_DEPTH, &error));
      g_assert_no_error (error);
      if (repaired[i] != NULL)
        g_assert_cmpstr (fixed, ==, repaired[i]);
      if (unwritable[i] != too_deep)
        json_node_unref (unwritable[i]);
    }
  /* a bytes reference must name one of the frame's attachments; an
   * object with more members is plain JSON */
  {
    g_autoptr(JsonNode) ref = json_from_string ("[{\"$bytes\": 1}]", NULL);
    g_autoptr(JsonNode) plain = json_from_string ("{\"$bytes\": 1, \"x\": 2}", NULL);
    g_autofree char *kept = NULL;
    gsize length;

    g_string_truncate (text, 0);
    g_assert_false (dirty_json_append (text, ref, 1, 1, &error));
    g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "{\"$bytes\": 1} refers to bytes"));
    g_clear_error (&error);
    g_string_truncate (text, 0);
    g_assert_true (dirty_json_append (text, ref, 1, 2, &error));
    g_assert_cmpstr (text->str, ==, "[{\"$bytes\":1}]");
    g_string_truncate (text, 0);
    g_assert_true (dirty_json_append (text, plain, 1, 0, &error));
    g_assert_no_error (error);
    kept = dirty_json_to_text (ref, FALSE, &length);
    g_assert_cmpstr (kept, ==, "[{\"$bytes\":1}]");
  }
  /* and the reader refuses what the writer refused */
  g_string_truncate (text, 0);
  for (guint i = 0; i <= DIRTY_DEFAULT_MAX_DEPTH; i++)
    g_string_prepend_c (g_string_append_c (text, ']'), '[');
  g_assert_false (dirty_json_check (text->str, text->len, DIRTY_DEFAULT_MAX_DEPTH, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
}

static void
test_attachment_table_lies (void)
{
  /* table says 100 bytes but the section holds 4 */
  guint8 raw[2 + 4 + 4] = { '{', '}', 0, 0, 0, 100, 'a', 'b', 'c', 'd' };
  DirtyFrameHeader h = { .type = DIRTY_FRAME_RESPONSE, .id = 1, .json_length = 2,
                         .attachments_length = 8, .n_attachments = 1 };
  g_autoptr(GBytes) body = g_bytes_new (raw, sizeof raw);
  g_autoptr(DirtyFrame) frame = dirty_frame_new (&h, body);
  g_autoptr(JsonNode) out = NULL;
  g_autoptr(GPtrArray) attach = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (dirty_frame_decode (frame, &limits, &out, &attach, &error));
  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
}

static void
test_error_frames (void)
{
  g_autoptr(GError) app_error = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_NOENT, "no model");
  g_autoptr(DirtyFrame) frame = dirty_frame_new_error (5, app_error, "m:App", "load", 1234);
  g_autoptr(JsonNode) out = NULL;
  g_autoptr(GPtrArray) attach = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) parsed = NULL;

  g_assert_true (dirty_frame_decode (frame, &limits, &out, &attach, &error));
  g_assert_cmpstr (dirty_json_get_string (out, "code"), ==, "app-error");
  parsed = dirty_error_from_body (out);
  g_assert_error (parsed, DIRTY_ERROR, DIRTY_ERROR_APP);
  g_assert_cmpstr (parsed->message, ==, "no model");
  g_assert_cmpstr (dirty_error_get_app (parsed), ==, "m:App");
  g_assert_cmpstr (dirty_error_get_action (parsed), ==, "load");
  g_assert_cmpint (dirty_error_get_worker_pid (parsed), ==, 1234);

  for (int code = DIRTY_ERROR_FAILED; code <= DIRTY_ERROR_PERMISSION_DENIED; code++)
    g_assert_cmpint (dirty_error_from_wire (dirty_error_to_wire (code)), ==, code);
  g_assert_cmpint (dirty_error_from_wire ("from-the-future"), ==, DIRTY_ERROR_FAILED);
}

/* ---- connection over a socketpair ------------------------------------- */

typedef struct {
  GMainContext    *context;
  DirtyConnection *conn;
  int              peer_fd;
  GPtrArray       *frames;
  gboolean         closed;
  GError          *close_error;
  guint64          refused_id;   /* the last oversized frame refused */
  guint            n_refused;
} ConnFixture;

static void
on_frame (DirtyConnection *conn, DirtyFrame *frame, gpointer user_data)
{
  ConnFixture *fx = user_data;
  g_ptr_array_add (fx->frames, dirty_frame_ref (frame));
}

static void
on_closed (DirtyConnection *conn, const GError *error, gpointer user_data)
{
  ConnFixture *fx = user_data;
  g_assert_false (fx->closed);
  fx->closed = TRUE;
  fx->close_error = error ? g_error_copy (error) : NULL;
}

static void
conn_open (ConnFixture                  *fx,
           const DirtyLimits            *fixture_limits,
           DirtyConnectionOversizedFunc  oversized_func)
{
  int fds[2];
  g_autoptr(GSocket) socket = NULL;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  socket = g_socket_new_from_fd (fds[0], NULL);
  g_assert_nonnull (socket);
  fx->peer_fd = fds[1];
  fx->context = g_main_context_new ();
  fx->frames = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_frame_unref);
  fx->conn = dirty_connection_new (socket, fixture_limits);
  dirty_connection_set_oversized_func (fx->conn, oversized_func);
  dirty_connection_start (fx->conn, fx->context, on_frame, on_closed, fx);
}

static void
conn_setup (ConnFixture *fx, gconstpointer data)
{
  conn_open (fx, data, NULL);
}

/* Refuses oversized frames but those of id 99 (left to fail the
 * connection) */
static gboolean
on_oversized (DirtyConnection *conn, const DirtyFrameHeader *header, const GError *error,
              gpointer user_data)
{
  ConnFixture *fx = user_data;

  g_assert_error (error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  if (header->id == 99)
    return FALSE;
  fx->refused_id = header->id;
  fx->n_refused++;
  return TRUE;
}

/* max_body 4096 and an oversized callback */
static void
conn_setup_refusing (ConnFixture *fx, gconstpointer data)
{
  DirtyLimits small;

  dirty_limits_init (&small);
  small.max_body = 4096;
  conn_open (fx, &small, on_oversized);
}

static void
conn_teardown (ConnFixture *fx, gconstpointer data)
{
  g_clear_object (&fx->conn);
  if (fx->peer_fd >= 0)
    close (fx->peer_fd);
  g_ptr_array_unref (fx->frames);
  g_clear_error (&fx->close_error);
  g_main_context_unref (fx->context);
}

static void
iterate_until (ConnFixture *fx, gboolean (*done) (ConnFixture *))
{
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (!done (fx))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (fx->context, TRUE);
    }
}

static gboolean has_closed (ConnFixture *fx) { return fx->closed; }
static gboolean has_one_frame (ConnFixture *fx) { return fx->frames->len >= 1; }
static gboolean has_two_frames (ConnFixture *fx) { return fx->frames->len >= 2; }

static void
write_all (int fd, const void *data, gsize len)
{
  const guint8 *p = data;
  while (len > 0)
    {
      gssize n = write (fd, p, len);
      g_assert_cmpint (n, >, 0);
      p += n;
      len -= n;
    }
}

static void
test_conn_reads_split_frames (ConnFixture *fx, gconstpointer data)
{
  g_autoptr(JsonNode) root = parse ("{\"result\":[1,2,3]}");
  g_autoptr(DirtyFrame) a = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 1, 0, root, NULL);
  g_autoptr(DirtyFrame) b = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 0, 0);
  guint8 buf[256];
  gsize len = 0;

  dirty_frame_header_write (&a->header, buf);
  memcpy (buf + 32, g_bytes_get_data (a->body, NULL), g_bytes_get_size (a->body));
  len = 32 + g_bytes_get_size (a->body);
  dirty_frame_header_write (&b->header, buf + len);
  len += 32;
  /* one byte at a time: frames must be reassembled, never misread */
  for (gsize i = 0; i < len; i++)
    {
      write_all (fx->peer_fd, buf + i, 1);
      g_main_context_iteration (fx->context, FALSE);
    }
  iterate_until (fx, has_two_frames);
  g_assert_cmpint (((DirtyFrame *) fx->frames->pdata[0])->header.id, ==, 1);
  g_assert_true (g_bytes_equal (((DirtyFrame *) fx->frames->pdata[0])->body, a->body));
  g_assert_cmpint (((DirtyFrame *) fx->frames->pdata[1])->header.type, ==, DIRTY_FRAME_HEARTBEAT);
  g_assert_false (fx->closed);
}

static void
test_conn_truncated_frame (ConnFixture *fx, gconstpointer data)
{
  guint8 buf[DIRTY_FRAME_HEADER_SIZE];

  write_header (buf, DIRTY_FRAME_RESPONSE, 1, 100, 0, 0);
  write_all (fx->peer_fd, buf, sizeof buf);
  write_all (fx->peer_fd, "{\"res", 5);
  close (fx->peer_fd);
  fx->peer_fd = -1;
  iterate_until (fx, has_closed);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_CONNECTION);
  g_assert_cmpuint (fx->frames->len, ==, 0);
}

static void
test_conn_clean_eof (ConnFixture *fx, gconstpointer data)
{
  close (fx->peer_fd);
  fx->peer_fd = -1;
  iterate_until (fx, has_closed);
  g_assert_no_error (fx->close_error);
}

static void
test_conn_bad_magic_gets_error (ConnFixture *fx, gconstpointer data)
{
  guint8 buf[DIRTY_FRAME_HEADER_SIZE];
  guint8 reply[4096];
  gssize n;
  DirtyFrameHeader h;
  g_autoptr(GError) error = NULL;

  write_header (buf, DIRTY_FRAME_REQUEST, 1, 2, 0, 0);
  memcpy (buf, "HTTP", 4);
  write_all (fx->peer_fd, buf, sizeof buf);
  iterate_until (fx, has_closed);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);

  /* the peer was told why before the close */
  n = read (fx->peer_fd, reply, sizeof reply);
  g_assert_cmpint (n, >=, DIRTY_FRAME_HEADER_SIZE);
  g_assert_true (dirty_frame_header_parse (reply, &limits, &h, &error));
  g_assert_cmpint (h.type, ==, DIRTY_FRAME_ERROR);
  g_assert_cmpint (h.id, ==, 0);
  g_assert_nonnull (g_strstr_len ((char *) reply + 32, n - 32, "\"protocol\""));
  g_assert_cmpint (read (fx->peer_fd, reply, sizeof reply), ==, 0);
}

/* Two connections on one context (one epoll set): frames ready on both
 * in the same iteration. */
typedef struct {
  GMainContext    *context;
  DirtyConnection *conns[2];
  int              peers[2];
  guint            frames[2];
  gboolean         nested_done;
} Pair;

static void
pair_write_frame (Pair *pair, guint i)
{
  guint8 buf[DIRTY_FRAME_HEADER_SIZE];
  DirtyFrameHeader h = { .type = DIRTY_FRAME_HEARTBEAT, .id = 0 };

  dirty_frame_header_write (&h, buf);
  g_assert_cmpint (write (pair->peers[i], buf, sizeof buf), ==, sizeof buf);
}

static void pair_frame_drops_other (DirtyConnection *conn, DirtyFrame *frame, gpointer data);
static void pair_frame_nests (DirtyConnection *conn, DirtyFrame *frame, gpointer data);

static void
pair_closed (DirtyConnection *conn, const GError *error, gpointer data)
{
}

static void
pair_setup (Pair *pair, DirtyConnectionFrameFunc func)
{
  pair->context = g_main_context_new ();
  for (guint i = 0; i < 2; i++)
    {
      int fds[2];
      g_autoptr(GSocket) socket = NULL;

      g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
      socket = g_socket_new_from_fd (fds[0], NULL);
      pair->peers[i] = fds[1];
      pair->conns[i] = dirty_connection_new (socket, NULL);
      dirty_connection_start (pair->conns[i], pair->context, func, pair_closed, pair);
    }
}

static void
pair_teardown (Pair *pair)
{
  for (guint i = 0; i < 2; i++)
    {
      g_clear_object (&pair->conns[i]);
      close (pair->peers[i]);
    }
  /* the epoll source goes with the last connection */
  while (g_main_context_iteration (pair->context, FALSE))
    ;
  g_main_context_unref (pair->context);
}

static guint
pair_index (Pair *pair, DirtyConnection *conn)
{
  return conn == pair->conns[0] ? 0 : 1;
}

static void
pair_frame_drops_other (DirtyConnection *conn, DirtyFrame *frame, gpointer data)
{
  Pair *pair = data;
  guint i = pair_index (pair, conn);

  pair->frames[i]++;
  /* the other one is ready in this same batch: it must never be called */
  g_clear_object (&pair->conns[1 - i]);
}

static void
test_conn_dropped_in_same_batch (void)
{
  Pair pair = { 0 };

  pair_setup (&pair, pair_frame_drops_other);
  pair_write_frame (&pair, 0);
  pair_write_frame (&pair, 1);
  for (guint n = 0; n < 10 && pair.frames[0] + pair.frames[1] == 0; n++)
    g_main_context_iteration (pair.context, TRUE);
  g_assert_cmpuint (pair.frames[0] + pair.frames[1], ==, 1);
  g_assert_true (pair.conns[0] == NULL || pair.conns[1] == NULL);
  pair_teardown (&pair);
}

static void
pair_frame_nests (DirtyConnection *conn, DirtyFrame *frame, gpointer data)
{
  Pair *pair = data;
  guint i = pair_index (pair, conn);
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  pair->frames[i]++;
  if (i != 0)
    return;
  /* a nested main loop inside a frame callback still serves the other
   * connection (and does not spin on this one's readable socket) */
  pair_write_frame (pair, 0);
  pair_write_frame (pair, 1);
  while (pair->frames[1] == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (pair->context, TRUE);
    }
  pair->nested_done = TRUE;
}

static void
test_conn_nested_loop (void)
{
  Pair pair = { 0 };
  gint64 end = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  pair_setup (&pair, pair_frame_nests);
  pair_write_frame (&pair, 0);
  while (!pair.nested_done)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (pair.context, TRUE);
    }
  /* the frame written to 0 during the nested loop is read afterwards */
  while (pair.frames[0] < 2)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (pair.context, TRUE);
    }
  g_assert_cmpuint (pair.frames[1], ==, 1);
  pair_teardown (&pair);
}

/* Another thread sends while the owner sends too, past what the socket
 * buffer holds: every frame arrives whole, each sender's in order. */
typedef struct {
  DirtyConnection *conn;
  guint            n;
} ThreadSender;

static gpointer
thread_sender (gpointer data)
{
  ThreadSender *sender = data;

  for (guint i = 1; i <= sender->n; i++)
    {
      g_autoptr(JsonNode) root = parse ("{\"data\":\"from a thread, long enough to fill buffers\"}");
      /* odd ids from the thread, even ones from the owner */
      g_autoptr(DirtyFrame) f = dirty_frame_encode (DIRTY_FRAME_CHUNK, 0, 2 * i - 1, 0, root, NULL);

      dirty_connection_send_from_thread (sender->conn, f);
    }
  return NULL;
}

static void
test_conn_send_from_thread (ConnFixture *fx, gconstpointer data)
{
  const guint n = 3000;
  ThreadSender sender = { fx->conn, n };
  g_autoptr(GByteArray) got = g_byte_array_new ();
  guint64 next_odd = 1, next_even = 2;
  GThread *thread;
  gsize pos = 0;
  guint sent_even = 0;
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  thread = g_thread_new ("sender", thread_sender, &sender);
  while (next_odd < 2 * n || next_even <= 2 * n)
    {
      guint8 buf[65536];
      gssize got_n;

      g_assert_cmpint (g_get_monotonic_time (), <, end);
      if (sent_even < n)
        {
          g_autoptr(JsonNode) root = parse ("{\"data\":\"from the owner\"}");
          g_autoptr(DirtyFrame) f = dirty_frame_encode (DIRTY_FRAME_CHUNK, 0, 2 * ++sent_even, 0,
                                                        root, NULL);
          dirty_connection_send (fx->conn, f);
        }
      g_main_context_iteration (fx->context, FALSE);
      got_n = recv (fx->peer_fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got_n > 0)
        g_byte_array_append (got, buf, got_n);
      while (got->len - pos >= DIRTY_FRAME_HEADER_SIZE)
        {
          DirtyFrameHeader h;
          g_autoptr(GError) error = NULL;

          g_assert_true (dirty_frame_header_parse (got->data + pos, &limits, &h, &error));
          if (got->len - pos < DIRTY_FRAME_HEADER_SIZE + dirty_frame_header_body_length (&h))
            break;
          if (h.id % 2)
            {
              g_assert_cmpuint (h.id, ==, next_odd);
              next_odd += 2;
            }
          else
            {
              g_assert_cmpuint (h.id, ==, next_even);
              next_even += 2;
            }
          pos += DIRTY_FRAME_HEADER_SIZE + dirty_frame_header_body_length (&h);
        }
    }
  g_thread_join (thread);
  g_assert_false (fx->closed);
}

static void
test_conn_writes_many_frames (ConnFixture *fx, gconstpointer data)
{
  /* more than the socket buffer holds: the queue must drain in order */
  const guint n_frames = 2000;
  g_autoptr(GByteArray) got = g_byte_array_new ();
  guint8 buf[65536];
  guint64 expect_id = 1;
  gsize pos = 0;

  for (guint i = 1; i <= n_frames; i++)
    {
      g_autoptr(JsonNode) root = parse ("{\"data\":\"0123456789012345678901234567890123456789\"}");
      g_autoptr(DirtyFrame) f = dirty_frame_encode (DIRTY_FRAME_CHUNK, 0, i, 0, root, NULL);
      dirty_connection_send (fx->conn, f);
    }
  g_assert_cmpuint (dirty_connection_get_queued_bytes (fx->conn), >, 0);
  while (expect_id <= n_frames)
    {
      gssize n;

      g_main_context_iteration (fx->context, FALSE);
      n = recv (fx->peer_fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0)
        g_byte_array_append (got, buf, n);
      while (got->len - pos >= DIRTY_FRAME_HEADER_SIZE)
        {
          DirtyFrameHeader h;
          g_autoptr(GError) error = NULL;

          g_assert_true (dirty_frame_header_parse (got->data + pos, &limits, &h, &error));
          if (got->len - pos < DIRTY_FRAME_HEADER_SIZE + dirty_frame_header_body_length (&h))
            break;
          g_assert_cmpuint (h.id, ==, expect_id);
          expect_id++;
          pos += DIRTY_FRAME_HEADER_SIZE + dirty_frame_header_body_length (&h);
        }
    }
  g_assert_cmpuint (dirty_connection_get_queued_bytes (fx->conn), ==, 0);
}

static gboolean has_1000_frames (ConnFixture *fx) { return fx->frames->len >= 1000; }

/* 1000 frames in one write: one turn of the loop handles at most 64 of
 * them (so one busy peer cannot hold up the others); the rest follow on
 * the next turns, all of them, in order, and the EOF after them. */
static void
test_conn_frame_budget (ConnFixture *fx, gconstpointer data)
{
  g_autoptr(GByteArray) all = g_byte_array_new ();

  for (guint64 id = 1; id <= 1000; id++)
    {
      g_autoptr(DirtyFrame) f = dirty_frame_new_empty (DIRTY_FRAME_CANCEL, id, 0);
      guint8 header[DIRTY_FRAME_HEADER_SIZE];

      dirty_frame_header_write (&f->header, header);
      g_byte_array_append (all, header, sizeof header);
    }
  write_all (fx->peer_fd, all->data, all->len);
  close (fx->peer_fd);
  fx->peer_fd = -1;
  g_main_context_iteration (fx->context, TRUE);
  g_assert_cmpuint (fx->frames->len, >, 0);
  g_assert_cmpuint (fx->frames->len, <=, 64);
  iterate_until (fx, has_1000_frames);
  for (guint i = 0; i < fx->frames->len; i++)
    g_assert_cmpuint (((DirtyFrame *) fx->frames->pdata[i])->header.id, ==, i + 1);
  iterate_until (fx, has_closed);
  g_assert_cmpuint (fx->frames->len, ==, 1000);
  g_assert_null (fx->close_error);
}

static void
test_conn_large_frame (ConnFixture *fx, gconstpointer data)
{
  /* a body larger than the read chunk goes straight into its buffer */
  gsize size = 3 * 1024 * 1024 + 17;
  g_autofree guint8 *payload = g_malloc (size);
  g_autoptr(GPtrArray) attach = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(DirtyFrame) frame = NULL;
  g_autoptr(JsonNode) root = parse ("{\"result\":{\"$bytes\":0}}");
  guint8 hdr[DIRTY_FRAME_HEADER_SIZE];
  gsize off = 0;
  gsize body_len;
  const guint8 *body;

  for (gsize i = 0; i < size; i++)
    payload[i] = (guint8) (i * 31);
  g_ptr_array_add (attach, g_bytes_new_static (payload, size));
  frame = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 3, 0, root, attach);
  dirty_frame_header_write (&frame->header, hdr);
  write_all (fx->peer_fd, hdr, sizeof hdr);
  body = g_bytes_get_data (frame->body, &body_len);
  while (off < body_len)
    {
      gsize n = MIN (body_len - off, 200000);
      write_all (fx->peer_fd, body + off, n);
      off += n;
      while (g_main_context_iteration (fx->context, FALSE))
        ;
    }
  while (fx->frames->len < 1)
    g_main_context_iteration (fx->context, TRUE);
  g_assert_true (g_bytes_equal (((DirtyFrame *) fx->frames->pdata[0])->body, frame->body));
}

/* Writes @len bytes of @data with @fd as SCM_RIGHTS, as a frame's first
 * bytes carry its fds */
static void
write_with_fd (int peer_fd, const void *data, gsize len, int fd)
{
  union { struct cmsghdr header; char space[CMSG_SPACE (sizeof (int))]; } control;
  struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control };
  struct cmsghdr *c;

  memset (&control, 0, sizeof control);
  c = CMSG_FIRSTHDR (&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof fd);
  g_assert_cmpint (sendmsg (peer_fd, &msg, 0), ==, (gssize) len);
}

static gboolean has_refused (ConnFixture *fx) { return fx->n_refused >= 1; }

/* A frame over max_body that the owner refuses (an oversized request
 * the arbiter answers) is read past: its 1 MiB body never buffered, its
 * fd closed, the next frame delivered, the connection open. One it does
 * not refuse fails the connection, as without the callback. */
static void
test_conn_oversized_skipped (ConnFixture *fx, gconstpointer data)
{
  gsize json_len = 1024 * 1024;
  g_autofree guint8 *body = g_malloc0 (json_len + 12);
  g_autoptr(DirtyFrame) heartbeat = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 0, 0);
  DirtyFrameHeader h = { .type = DIRTY_FRAME_REQUEST, .id = 7, .json_length = json_len,
                         .attachments_length = 12, .n_attachments = 1, .n_fds = 1 };
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  int pipe_fds[2];
  char byte;

  g_assert_cmpint (pipe2 (pipe_fds, O_NONBLOCK), ==, 0);
  dirty_frame_header_write (&h, header);
  write_with_fd (fx->peer_fd, header, sizeof header, pipe_fds[1]);
  close (pipe_fds[1]);
  iterate_until (fx, has_refused);
  g_assert_cmpuint (fx->refused_id, ==, 7);
  /* refused from the header: the fd it carried is closed already, and
   * the pipe's only writer gone */
  g_assert_cmpint (read (pipe_fds[0], &byte, 1), ==, 0);
  close (pipe_fds[0]);

  for (gsize off = 0; off < json_len + 12; off += 65536)
    {
      write_all (fx->peer_fd, body + off, MIN (65536, json_len + 12 - off));
      while (g_main_context_iteration (fx->context, FALSE))
        ;
    }
  dirty_frame_header_write (&heartbeat->header, header);
  write_all (fx->peer_fd, header, sizeof header);
  iterate_until (fx, has_one_frame);
  g_assert_cmpint (((DirtyFrame *) fx->frames->pdata[0])->header.type, ==, DIRTY_FRAME_HEARTBEAT);
  g_assert_cmpuint (fx->n_refused, ==, 1);
  g_assert_false (fx->closed);

  write_header (header, DIRTY_FRAME_REQUEST, 99, 5000, 0, 0);
  write_all (fx->peer_fd, header, sizeof header);
  iterate_until (fx, has_closed);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (fx->close_error->message, "exceeds the limit of 4096"));
  g_assert_cmpuint (fx->n_refused, ==, 1);
}

/* Slowloris: a frame trickling in one byte at a time is cut off at the
 * frame timeout, with a protocol error the peer can read. */
static void
test_conn_incomplete_frame_times_out (ConnFixture *fx, gconstpointer data)
{
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  guint8 reply[4096];
  gint64 start = g_get_monotonic_time ();
  gsize sent = 0;

  write_header (header, DIRTY_FRAME_REQUEST, 1, 2, 0, 0);
  while (!fx->closed && sent < sizeof header)
    {
      /* the connection may already be gone: no SIGPIPE, just stop */
      if (send (fx->peer_fd, header + sent, 1, MSG_NOSIGNAL) != 1)
        break;
      sent++;
      g_main_context_iteration (fx->context, FALSE);
      g_usleep (50 * 1000);
    }
  iterate_until (fx, has_closed);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (fx->close_error->message, "incomplete"));
  /* cut off mid-header: 32 bytes at 50 ms each would take 1.6 s */
  g_assert_cmpuint (sent, <, sizeof header);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
  g_assert_cmpint (read (fx->peer_fd, reply, sizeof reply), >=, DIRTY_FRAME_HEADER_SIZE);
  g_assert_cmpuint (fx->frames->len, ==, 0);
}

/* Whole frames, however slowly they come, never trip the frame timer. */
static void
test_conn_slow_whole_frames_are_fine (ConnFixture *fx, gconstpointer data)
{
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(DirtyFrame) f = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 0, 0);
      guint8 buf[DIRTY_FRAME_HEADER_SIZE];

      dirty_frame_header_write (&f->header, buf);
      write_all (fx->peer_fd, buf, sizeof buf);
      g_main_context_iteration (fx->context, FALSE);
      g_usleep (200 * 1000);
      while (g_main_context_iteration (fx->context, FALSE))
        ;
    }
  g_assert_false (fx->closed);
  g_assert_cmpuint (fx->frames->len, ==, 4);
}

/* A peer that never reads cannot make the queue grow without bound. */
static void
test_conn_unread_queue_is_capped (ConnFixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) attach = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(JsonNode) root = parse ("{\"result\":{\"$bytes\":0}}");

  g_ptr_array_add (attach, g_bytes_new_take (g_malloc0 (64 * 1024), 64 * 1024));
  for (guint i = 1; i <= 1000 && !dirty_connection_is_closed (fx->conn); i++)
    {
      g_autoptr(DirtyFrame) f = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, i, 0, root, attach);
      dirty_connection_send (fx->conn, f);
    }
  iterate_until (fx, has_closed);
  g_assert_error (fx->close_error, DIRTY_ERROR, DIRTY_ERROR_BUSY);
  g_assert_nonnull (strstr (fx->close_error->message, "not reading"));
}


/* The restart handoff (daemon/arbiter/dirty-handoff.c): a connection
 * paused mid-frame and detached gives its fd and the partial frame to a
 * new connection, which delivers that frame and the ones after it, in
 * order, as if nothing happened. */
static void
test_conn_detach_resume (ConnFixture *fx, gconstpointer data)
{
  g_autoptr(JsonNode) root = parse ("{\"result\":\"a body long enough to be cut in two\"}");
  g_autoptr(DirtyFrame) a = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 1, 0, root, NULL);
  g_autoptr(DirtyFrame) b = dirty_frame_encode (DIRTY_FRAME_RESPONSE, 0, 2, 0, root, NULL);
  g_autoptr(DirtyFrame) c = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 3, 0);
  g_autoptr(GByteArray) wire = g_byte_array_new ();
  g_autoptr(GByteArray) unread = g_byte_array_new ();
  g_autoptr(GBytes) unread_bytes = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(DirtyFrame) reply = dirty_frame_new_empty (DIRTY_FRAME_HEARTBEAT, 4, 0);
  ConnFixture next = { 0 };
  guint8 header[DIRTY_FRAME_HEADER_SIZE];
  gsize cut;
  int fd;

  for (DirtyFrame *f = a; f != NULL; f = f == a ? b : f == b ? c : NULL)
    {
      dirty_frame_header_write (&f->header, header);
      g_byte_array_append (wire, header, sizeof header);
      g_byte_array_append (wire, g_bytes_get_data (f->body, NULL), g_bytes_get_size (f->body));
    }
  /* all of a, b's header and half of its body */
  cut = 2 * DIRTY_FRAME_HEADER_SIZE + g_bytes_get_size (a->body) + g_bytes_get_size (b->body) / 2;
  write_all (fx->peer_fd, wire->data, cut);
  iterate_until (fx, has_one_frame);
  while (g_main_context_iteration (fx->context, FALSE))
    ;
  dirty_connection_pause_reading (fx->conn);
  write_all (fx->peer_fd, wire->data + cut, wire->len - cut);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (fx->context, FALSE);
  g_assert_cmpuint (fx->frames->len, ==, 1);   /* paused: the rest waits in the kernel */

  fd = dirty_connection_detach (fx->conn, unread);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpuint (unread->len, ==, cut - DIRTY_FRAME_HEADER_SIZE - g_bytes_get_size (a->body));
  g_assert_cmpmem (unread->data, unread->len,
                   wire->data + DIRTY_FRAME_HEADER_SIZE + g_bytes_get_size (a->body), unread->len);
  g_assert_true (dirty_connection_is_closed (fx->conn));
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (fx->context, FALSE);
  g_assert_false (fx->closed);   /* given up, not closed: no callback */
  g_clear_object (&fx->conn);

  next.context = g_main_context_ref (fx->context);
  next.frames = g_ptr_array_new_with_free_func ((GDestroyNotify) dirty_frame_unref);
  next.peer_fd = -1;
  socket = g_socket_new_from_fd (fd, NULL);
  g_assert_nonnull (socket);
  next.conn = dirty_connection_new (socket, NULL);
  unread_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&unread));
  dirty_connection_set_unread (next.conn, unread_bytes);
  dirty_connection_start (next.conn, next.context, on_frame, on_closed, &next);
  iterate_until (&next, has_two_frames);
  g_assert_cmpint (((DirtyFrame *) next.frames->pdata[0])->header.id, ==, 2);
  g_assert_true (g_bytes_equal (((DirtyFrame *) next.frames->pdata[0])->body, b->body));
  g_assert_cmpint (((DirtyFrame *) next.frames->pdata[1])->header.id, ==, 3);
  g_assert_false (next.closed);

  /* and the other way: the client reads what the new owner writes */
  dirty_connection_send (next.conn, reply);
  g_assert_cmpint (read (fx->peer_fd, header, sizeof header), ==, sizeof header);
  g_assert_cmpint (header[0], ==, wire->data[0]);
  conn_teardown (&next, NULL);
}

int
main (int argc, char **argv)
{
  static DirtyLimits short_frame_timeout, small_queue;

  g_test_init (&argc, &argv, NULL);
  dirty_limits_init (&limits);
  short_frame_timeout = limits;
  short_frame_timeout.frame_timeout_ms = 300;
  small_queue = limits;
  small_queue.max_queued_bytes = 1024 * 1024;

  g_test_add_func ("/protocol/header/round-trip", test_header_round_trip);
  g_test_add_func ("/protocol/header/rejects", test_header_rejects);
  g_test_add_func ("/protocol/request-scan", test_request_scan);
  g_test_add_func ("/protocol/parse-strict", test_parse_strict);
  g_test_add_func ("/protocol/parse-strict-checks", test_parse_strict_checks);
  g_test_add_func ("/protocol/parse-big-integers", test_parse_big_integers);
  g_test_add_func ("/protocol/parse-sole-member", test_parse_sole_member);
  g_test_add_func ("/protocol/valid-utf8", test_valid_utf8);
  g_test_add_func ("/protocol/bytes-chunk", test_bytes_chunk);
  g_test_add_func ("/protocol/decode-request", test_decode_request);
  g_test_add_func ("/protocol/decode-escaped-nul", test_decode_escaped_nul);
  g_test_add_func ("/protocol/encode-round-trip", test_encode_round_trip);
  g_test_add_func ("/protocol/attachment-check", test_attachment_check);
  g_test_add_func ("/protocol/fd-attachment-fast-paths", test_fd_attachment_fast_paths);
  g_test_add_func ("/protocol/json-write-doubles", test_json_write_doubles);
  g_test_add_func ("/protocol/check-sendable", test_check_sendable);
  g_test_add_func ("/protocol/encode-string", test_encode_string);
  g_test_add_func ("/protocol/json-write-limits", test_json_write_limits);
  g_test_add_func ("/protocol/body/round-trip", test_body_round_trip);
  g_test_add_func ("/protocol/body/empty", test_empty_body);
  g_test_add_func ("/protocol/body/rejects", test_body_rejects);
  g_test_add_func ("/protocol/body/attachment-table-lies", test_attachment_table_lies);
  g_test_add_func ("/protocol/error-frames", test_error_frames);
  g_test_add ("/protocol/connection/split-frames", ConnFixture, NULL,
              conn_setup, test_conn_reads_split_frames, conn_teardown);
  g_test_add ("/protocol/connection/truncated", ConnFixture, NULL,
              conn_setup, test_conn_truncated_frame, conn_teardown);
  g_test_add ("/protocol/connection/clean-eof", ConnFixture, NULL,
              conn_setup, test_conn_clean_eof, conn_teardown);
  g_test_add ("/protocol/connection/bad-magic", ConnFixture, NULL,
              conn_setup, test_conn_bad_magic_gets_error, conn_teardown);
  g_test_add_func ("/protocol/connection/dropped-in-same-batch", test_conn_dropped_in_same_batch);
  g_test_add_func ("/protocol/connection/nested-loop", test_conn_nested_loop);
  g_test_add ("/protocol/connection/send-from-thread", ConnFixture, NULL,
              conn_setup, test_conn_send_from_thread, conn_teardown);
  g_test_add ("/protocol/connection/many-frames", ConnFixture, NULL,
              conn_setup, test_conn_writes_many_frames, conn_teardown);
  g_test_add ("/protocol/connection/frame-budget", ConnFixture, NULL,
              conn_setup, test_conn_frame_budget, conn_teardown);
  g_test_add ("/protocol/connection/large-frame", ConnFixture, NULL,
              conn_setup, test_conn_large_frame, conn_teardown);
  g_test_add ("/protocol/connection/oversized-skipped", ConnFixture, NULL,
              conn_setup_refusing, test_conn_oversized_skipped, conn_teardown);
  g_test_add ("/protocol/connection/incomplete-frame-times-out", ConnFixture,
              &short_frame_timeout, conn_setup, test_conn_incomplete_frame_times_out,
              conn_teardown);
  g_test_add ("/protocol/connection/slow-whole-frames", ConnFixture,
              &short_frame_timeout, conn_setup, test_conn_slow_whole_frames_are_fine,
              conn_teardown);
  g_test_add ("/protocol/connection/unread-queue-capped", ConnFixture, &small_queue,
              conn_setup, test_conn_unread_queue_is_capped, conn_teardown);
  g_test_add ("/protocol/connection/detach-resume", ConnFixture, NULL,
              conn_setup, test_conn_detach_resume, conn_teardown);
  return g_test_run ();
}
