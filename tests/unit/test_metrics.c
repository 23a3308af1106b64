/*  test_metrics.c — the Prometheus page: families, cumulative histogram
    buckets, escaped labels, the gateway's part alone when the broker is
    away. (The system test reads it back with prometheus_client's parser.)
*/

#include "arb_metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void
test_render (void **state)
{
    (void) state;
    uint64_t counts[ARB_STATE_MAX + 1] = {0, 0, 0, 3, 1, 7};
    uint64_t finished[ARB_STATE_MAX + 1] = {0, 0, 0, 0, 0, 7, 0, 2};
    uint64_t buckets[ARB_COMMIT_BUCKETS] = {1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4};
    const char *queues[] = {"q"};
    arb_queue_info_t queue = {.name = "we\"ird\\q",
                              .counts = {counts, ARB_STATE_MAX + 1},
                              .consumers = 2,
                              .ready_bytes = 312};
    arb_worker_stats_t worker = {.name = "w", .slots = 4, .busy = 1, .queues = {queues, 1}};
    arb_stats_reply_body_t stats = {
        .uptime_ms = 1500,
        .queues = {&queue, 1},
        .workers = {&worker, 1},
        .submitted = 11,
        .dispatched = 9,
        .finished = {finished, ARB_STATE_MAX + 1},
        .commits = 7,
        .commit_us = 2500,
        .commit_buckets = {buckets, ARB_COMMIT_BUCKETS},
        .tasks_in_memory = 40,
        .tasks_cold = 1000,
        .watches = 1040,
    };
    arb_metrics_gateway_t gateway = {.broker_up = true, .connections = {5, 0, 0}};
    size_t size;
    char *text = arb_metrics_render (&stats, &gateway, &size);
    assert_int_equal (strlen (text), size);
    const char *expected[] = {
        "arbiter_tasks{queue=\"we\\\"ird\\\\q\",state=\"ready\"} 3\n",
        "arbiter_queue_consumers{queue=\"we\\\"ird\\\\q\"} 2\n",
        "arbiter_queue_ready_bytes{queue=\"we\\\"ird\\\\q\"} 312\n",
        "arbiter_tasks_submitted_total 11\n",
        "arbiter_tasks_dispatched_total 9\n",
        "arbiter_tasks_finished_total{state=\"succeeded\"} 7\n",
        "arbiter_tasks_finished_total{state=\"dead\"} 2\n",
        "arbiter_journal_commit_seconds_bucket{le=\"0.0001\"} 1\n",
        "arbiter_journal_commit_seconds_bucket{le=\"0.00025\"} 3\n",
        "arbiter_journal_commit_seconds_bucket{le=\"1\"} 3\n",
        "arbiter_journal_commit_seconds_bucket{le=\"+Inf\"} 7\n",
        "arbiter_journal_commit_seconds_count 7\n",
        "arbiter_journal_commit_seconds_sum 0.002500\n",
        "# TYPE arbiter_journal_commit_seconds histogram\n",
        "arbiter_broker_tasks_in_memory 40\n",
        "arbiter_broker_tasks_cold 1000\n",
        "# TYPE arbiter_broker_watches gauge\n",
        "arbiter_broker_watches 1040\n",
        "arbiter_worker_slots 4\n",
        "arbiter_worker_slots_busy 1\n",
        "arbiter_gateway_broker_up 1\n",
        "arbiter_gateway_connections{protocol=\"http\"} 5\n",
    };
    for (size_t i = 0; i < sizeof (expected) / sizeof (expected[0]); i++)
        if (!strstr (text, expected[i]))
            fail_msg ("missing: %s", expected[i]);
    assert_null (strstr (text, "state=\"failed\""));
    free (text);

    gateway.broker_up = false;
    text = arb_metrics_render (NULL, &gateway, &size);
    assert_null (strstr (text, "arbiter_tasks"));
    assert_non_null (strstr (text, "arbiter_gateway_broker_up 0\n"));
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_render),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
