/*  test_defaults.c — [queue.NAME] and [type.NAME] settings: what they set
    on a task and on a gateway's message, types declared or not, bad keys
    and values refused.
*/

#include "arb_defaults.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int
s_set (arb_defaults_t *defaults, const char *section, const char *key, const char *value)
{
    char why[256];
    return arb_defaults_section (defaults, section, key, value, why, sizeof (why));
}

static void
test_apply (void **state)
{
    (void) state;
    arb_defaults_t *defaults = arb_defaults_new ();
    assert_true (arb_defaults_has_type (defaults, "anything"));
    assert_int_equal (s_set (defaults, "queue.deploy", "priority", "-3"), 0);
    assert_int_equal (s_set (defaults, "queue.deploy", "retries", "4"), 0);
    assert_int_equal (s_set (defaults, "type.deploy", "priority", "7"), 0);
    assert_int_equal (s_set (defaults, "type.deploy", "wait-for-endpoints-timeout", "1.5"), 0);
    assert_int_equal (s_set (defaults, "type.deploy", "backoff", "exponential"), 0);
    assert_int_equal (s_set (defaults, "type.deploy", "backoff-delay", "2"), 0);
    assert_int_equal (s_set (defaults, "queue.other", "timeout", "30"), 0);
    assert_true (arb_defaults_has_type (defaults, "deploy"));
    assert_false (arb_defaults_has_type (defaults, "other"));
    assert_int_equal (arb_defaults_types (defaults), 1);

    arb_task_spec_t spec = {0};
    arb_defaults_apply (defaults, "deploy", "deploy", &spec);
    assert_int_equal (spec.priority, 7);
    assert_int_equal (spec.retries, 4);
    assert_int_equal (spec.endpoint_timeout_ms, 1500);
    assert_int_equal (spec.backoff, ARB_BACKOFF_EXP);
    assert_int_equal (spec.backoff_ms, 2000);
    arb_task_spec_t queue_only = {0};
    arb_defaults_apply (defaults, "deploy", NULL, &queue_only);
    assert_int_equal (queue_only.priority, -3);
    arb_task_spec_t other = {0};
    arb_defaults_apply (defaults, "other", NULL, &other);
    assert_int_equal (other.timeout_ms, 30000);
    assert_int_equal (other.retries, 0);
    arb_defaults_destroy (&defaults);
    assert_null (defaults);
}

//  A message takes --message-retention, then its queue's; it is marked
//  unwatched when that comes to the broker's retention (0), and only then.
static void
test_apply_message (void **state)
{
    (void) state;
    arb_defaults_t *defaults = arb_defaults_new ();
    assert_int_equal (s_set (defaults, "queue.kept", "retention", "60"), 0);
    assert_int_equal (s_set (defaults, "queue.plain", "priority", "2"), 0);
    arb_task_spec_t plain = {0};
    arb_defaults_apply_message (defaults, "plain", 0, &plain);
    assert_int_equal (plain.retention_ms, 0);
    assert_int_equal (plain.priority, 2);
    assert_true (plain.unwatched);
    arb_task_spec_t kept = {0};
    arb_defaults_apply_message (defaults, "kept", 0, &kept);
    assert_int_equal (kept.retention_ms, 60000);
    assert_false (kept.unwatched);
    arb_task_spec_t retained = {.unwatched = true};
    arb_defaults_apply_message (NULL, "plain", 5000, &retained);
    assert_int_equal (retained.retention_ms, 5000);
    assert_false (retained.unwatched);
    arb_defaults_destroy (&defaults);
}

static void
test_refused (void **state)
{
    (void) state;
    arb_defaults_t *defaults = arb_defaults_new ();
    assert_int_equal (s_set (defaults, "worker.x", "priority", "1"), -1);
    assert_int_equal (s_set (defaults, "queue.", "priority", "1"), -1);
    assert_int_equal (s_set (defaults, "queue.a@b", "priority", "1"), -1);
    //  the HTTP server's own first segments are no types (a queue may be one)
    assert_int_equal (s_set (defaults, "type.api", "priority", "1"), -1);
    assert_int_equal (s_set (defaults, "type.metrics", "priority", "1"), -1);
    assert_int_equal (s_set (defaults, "type.static", "priority", "1"), -1);
    assert_int_equal (s_set (defaults, "type.index.html", "priority", "1"), -1);
    assert_int_equal (s_set (defaults, "queue.api", "priority", "1"), 0);
    assert_int_equal (s_set (defaults, "queue.a", "colour", "red"), -1);
    assert_int_equal (s_set (defaults, "queue.a", "priority", "high"), -1);
    assert_int_equal (s_set (defaults, "queue.a", "retries", "5000"), -1);
    assert_int_equal (s_set (defaults, "queue.a", "timeout", "-1"), -1);
    assert_int_equal (s_set (defaults, "queue.a", "backoff", "linear"), -1);
    //  how a POST is delivered and answered: a type's only
    assert_int_equal (s_set (defaults, "queue.a", "broadcast", "yes"), -1);
    assert_int_equal (s_set (defaults, "queue.a", "wait-for-endpoints", "yes"), -1);
    assert_int_equal (s_set (defaults, "type.t", "wait-for-endpoints", "maybe"), -1);
    assert_false (arb_defaults_wait (defaults, "t"));
    assert_int_equal (s_set (defaults, "type.t", "wait-for-endpoints", "yes"), 0);
    assert_true (arb_defaults_wait (defaults, "t"));
    assert_false (arb_defaults_broadcast (defaults, "t"));
    assert_false (arb_defaults_wait (defaults, "a"));
    arb_defaults_destroy (&defaults);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_apply),
        cmocka_unit_test (test_apply_message),
        cmocka_unit_test (test_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
