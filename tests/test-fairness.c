/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler is fair between client connections (issue 7, item 4):
 * one worker with one thread, so calls run one at a time, in the order
 * the scheduler picks them. A client with a backlog of calls queued
 * first delays another client's call by at most one of its own (one
 * turn), not by its whole backlog; with several waiting clients they
 * alternate. Asserted on the order the calls ran in (the worker's own
 * timestamps), so machine load cannot make it pass or fail. */
#include "config.h"

#include <string.h>

#include "dirty-message.h"
#include "dirty-test-daemon.h"
#include "dirty-test-raw.h"

#define TESTAPP "testapp:DirtyTestApp"
#define BACKLOG 6

/* "sleep" returns when it started on the worker (CLOCK_MONOTONIC µs) */
static DirtyFrame *
sleep_frame (guint64 id, const char *seconds)
{
  g_autofree char *json = g_strdup_printf ("{\"app\":\"" TESTAPP "\",\"action\":\"sleep\","
                                           "\"args\":[%s]}", seconds);

  return dirty_test_raw_request (id, json, 0);
}

/* Reads @n RESPONSEs on @socket; @start_by_id[id] gets each one's start */
static void
read_starts (GSocket *socket, guint n, gint64 *start_by_id)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(DirtyFrame) reply = dirty_test_raw_read_frame (socket);
      g_autoptr(JsonNode) root = NULL;
      JsonNode *result;

      g_assert_nonnull (reply);
      g_assert_cmpint (reply->header.type, ==, DIRTY_FRAME_RESPONSE);
      root = dirty_test_raw_frame_json (reply);
      result = json_object_get_member (json_node_get_object (root), "result");
      start_by_id[reply->header.id] = json_object_get_int_member (json_node_get_object (result),
                                                                  "start");
    }
}

static GSocket *
connect_to (DirtyTestDaemon *daemon)
{
  return dirty_test_raw_connect (dirty_test_daemon_get_socket_path (daemon));
}

/* A queues a blocker and BACKLOG quick calls; B then queues one: B's
 * runs after at most one of A's quick calls. */
static void
test_one_turn (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                             "dirty_workers=1\ndirty_threads=1\n", NULL);
  g_autoptr(GSocket) a = connect_to (daemon);
  g_autoptr(GSocket) b = connect_to (daemon);
  gint64 a_start[BACKLOG + 2] = { 0 };
  gint64 b_start[2] = { 0 };
  guint before_b = 0;

  /* the blocker holds the only thread while the rest queue up */
  {
    g_autoptr(DirtyFrame) blocker = sleep_frame (1, "0.4");
    g_assert_true (dirty_test_raw_send_frame (a, blocker));
  }
  for (guint64 id = 2; id < BACKLOG + 2; id++)
    {
      g_autoptr(DirtyFrame) quick = sleep_frame (id, "0");
      g_assert_true (dirty_test_raw_send_frame (a, quick));
    }
  g_usleep (100 * 1000);
  {
    g_autoptr(DirtyFrame) quick = sleep_frame (1, "0");
    g_assert_true (dirty_test_raw_send_frame (b, quick));
  }
  read_starts (b, 1, b_start);
  read_starts (a, BACKLOG + 1, a_start);
  for (guint64 id = 2; id < BACKLOG + 2; id++)
    before_b += a_start[id] < b_start[1];
  g_test_message ("of client A's %u queued calls, %u ran before client B's", BACKLOG, before_b);
  /* with one FIFO per app B would wait for all of them */
  g_assert_cmpuint (before_b, <=, 1);
}

/* Three clients with a backlog each alternate: in any window of three
 * consecutive calls, each client ran one. */
static void
test_round_robin (void)
{
  g_autoptr(DirtyTestDaemon) daemon =
    dirty_test_daemon_start ("[dirty-arbiter]\ndirty_apps=" TESTAPP "\n"
                             "dirty_workers=1\ndirty_threads=1\n", NULL);
  g_autoptr(GSocket) blocker_socket = connect_to (daemon);
  GSocket *clients[3];
  gint64 start[3][BACKLOG + 1] = { { 0 } };
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 blocker_start[2];

  {
    g_autoptr(DirtyFrame) blocker = sleep_frame (1, "0.4");
    g_assert_true (dirty_test_raw_send_frame (blocker_socket, blocker));
  }
  g_usleep (50 * 1000);
  for (guint c = 0; c < 3; c++)
    {
      clients[c] = connect_to (daemon);
      for (guint64 id = 1; id <= BACKLOG; id++)
        {
          g_autoptr(DirtyFrame) quick = sleep_frame (id, "0");
          g_assert_true (dirty_test_raw_send_frame (clients[c], quick));
        }
    }
  read_starts (blocker_socket, 1, blocker_start);
  for (guint c = 0; c < 3; c++)
    {
      read_starts (clients[c], BACKLOG, start[c]);
      g_object_unref (clients[c]);
    }
  /* rank every call by when it started; check who ran in each window */
  for (guint i = 0; i < 3 * BACKLOG; i++)
    {
      guint best_c = 0, best_id = 0;
      gint64 who;

      for (guint c = 0; c < 3; c++)
        for (guint id = 1; id <= BACKLOG; id++)
          if (start[c][id] != 0 && (best_id == 0 || start[c][id] < start[best_c][best_id]))
            {
              best_c = c;
              best_id = id;
            }
      who = best_c;
      g_array_append_val (order, who);
      start[best_c][best_id] = 0;
    }
  for (guint i = 0; i + 3 <= order->len; i += 3)
    {
      gboolean seen[3] = { FALSE, FALSE, FALSE };

      for (guint k = 0; k < 3; k++)
        seen[g_array_index (order, gint64, i + k)] = TRUE;
      g_assert_true (seen[0] && seen[1] && seen[2]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/fairness/one-turn", test_one_turn);
  g_test_add_func ("/fairness/round-robin", test_round_robin);
  return g_test_run ();
}
