/*  test_schedule.c — one periodic schedule (arb_schedule): what it
    refuses, its next slot, and which slots fire by each catch-up policy
    after a downtime and while the broker runs. */

#include "arb_schedule.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

//  2024-05-01T00:00:00Z
#define T0 1714521600000ull

static arb_schedule_t *
s_schedule (const char *cron, const char *catch_up, uint64_t cursor_ms)
{
    zframe_t *payload = zframe_new ("hi", 2);
    arb_schedule_info_t info = {.name = "tick",
                                .cron = cron,
                                .catch_up = catch_up,
                                .task = "report",
                                .retries = 2,
                                .timeout_ms = 5000,
                                .created_ms = cursor_ms,
                                .payload = payload};
    char why[256] = "";
    arb_schedule_t *self = arb_schedule_new (&info, cursor_ms, why, sizeof (why));
    if (!self)
        fail_msg ("refused: %s", why);
    zframe_destroy (&payload);
    return self;
}

static void
s_refused (arb_schedule_info_t info, const char *expected)
{
    char why[256] = "";
    arb_schedule_t *self = arb_schedule_new (&info, T0, why, sizeof (why));
    if (self)
        fail_msg ("accepted, expected: %s", expected);
    assert_string_equal (why, expected);
}

static void
test_refusals (void **state)
{
    (void) state;
    arb_schedule_info_t ok = {.name = "n", .cron = "@daily", .task = "t"};
    arb_schedule_info_t info = ok;
    info.name = NULL;
    s_refused (info, "name: 1 to 160 bytes");
    info.name = "";
    s_refused (info, "name: 1 to 160 bytes");
    info = ok;
    info.task = NULL;
    s_refused (info, "task: the name of the schedule's tasks is missing");
    info = ok;
    info.catch_up = "some";
    s_refused (info, "catch_up: 'some' is not none, one or all");
    info = ok;
    info.cron = NULL;
    s_refused (info, "cron: the expression is missing");
    info.cron = "0 25 * * *";
    s_refused (info, "cron: field 2 (hour): 25 is out of range 0-23");
    info = ok;
    info.zone = "Mars/Olympus";
    s_refused (info, "zone: unknown time zone 'Mars/Olympus'");
    info = ok;
    info.queue = "";
    s_refused (info, "queue: must not be empty");
}

static void
test_next_pause_resume (void **state)
{
    (void) state;
    arb_schedule_t *self = s_schedule ("0 * * * *", NULL, T0 + 10);
    assert_int_equal (arb_schedule_next (self), T0 + 3600000);
    arb_schedule_set_paused (self, true, T0 + 20);
    assert_true (arb_schedule_is_paused (self));
    assert_int_equal (arb_schedule_next (self), 0);
    arb_vec_t slots = {0};
    assert_int_equal (arb_schedule_due (self, T0 + 5 * 3600000, false, &slots), T0 + 10);
    assert_int_equal (arb_vec_size (&slots), 0);
    //  resumed: the slots while paused are gone
    arb_schedule_set_paused (self, false, T0 + 3 * 3600000 + 5);
    assert_int_equal (arb_schedule_cursor (self), T0 + 3 * 3600000 + 5);
    assert_int_equal (arb_schedule_next (self), T0 + 4 * 3600000);
    //  resuming a schedule that runs changes nothing
    arb_schedule_set_paused (self, false, T0 + 3 * 3600000 + 9);
    assert_int_equal (arb_schedule_cursor (self), T0 + 3 * 3600000 + 5);
    //  a cursor never moves back
    arb_schedule_skip (self, T0);
    assert_int_equal (arb_schedule_cursor (self), T0 + 3 * 3600000 + 5);
    arb_schedule_fired (self, T0 + 4 * 3600000, 77);
    assert_int_equal (arb_schedule_next (self), T0 + 5 * 3600000);
    arb_vec_free (&slots);
    arb_schedule_destroy (&self);
}

//  A per-second schedule whose cursor is T0, due at T0 + 10.5 s: slots
//  T0+1 .. T0+10 came.
static void
test_catch_up_policies (void **state)
{
    (void) state;
    uint64_t now = T0 + 10500;
    struct {
        const char *policy;
        bool at_start;
        size_t fired;
        uint64_t first;
        uint64_t cursor;
    } cases[] = {
        {"none", true, 0, 0, now},
        {"none", false, 1, T0 + 10000, T0 + 10000},
        {"one", true, 1, T0 + 10000, T0 + 10000},
        {"one", false, 1, T0 + 10000, T0 + 10000},
        {NULL, true, 1, T0 + 10000, T0 + 10000},  //  one is the default
        {"all", true, 10, T0 + 1000, T0 + 10000},
        {"all", false, 10, T0 + 1000, T0 + 10000},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        arb_schedule_t *self = s_schedule ("* * * * * *", cases[i].policy, T0);
        arb_vec_t slots = {0};
        uint64_t cursor = arb_schedule_due (self, now, cases[i].at_start, &slots);
        assert_int_equal (cursor, cases[i].cursor);
        assert_int_equal (arb_vec_size (&slots), cases[i].fired);
        for (size_t k = 0; k < cases[i].fired; k++)
            assert_int_equal (slots.v[k], cases[i].first + 1000 * k);
        arb_vec_free (&slots);
        arb_schedule_destroy (&self);
    }
}

static void
test_catch_up_is_bounded (void **state)
{
    (void) state;
    //  a day of missed seconds: all fires the first 1,000, skips the rest
    arb_schedule_t *self = s_schedule ("* * * * * *", "all", T0);
    arb_vec_t slots = {0};
    uint64_t now = T0 + 86400000;
    assert_int_equal (arb_schedule_due (self, now, true, &slots), now);
    assert_int_equal (arb_vec_size (&slots), ARB_SCHEDULE_CATCH_UP_MAX);
    assert_int_equal (slots.v[0], T0 + 1000);
    assert_int_equal (slots.v[ARB_SCHEDULE_CATCH_UP_MAX - 1],
                      T0 + 1000 * ARB_SCHEDULE_CATCH_UP_MAX);
    arb_vec_free (&slots);
    arb_schedule_destroy (&self);
    //  a year of them: one finds the latest at once
    self = s_schedule ("* * * * * *", "one", T0);
    now = T0 + 366ull * 86400000 + 1;
    assert_int_equal (arb_schedule_due (self, now, true, &slots), now - 1);
    assert_int_equal (arb_vec_size (&slots), 1);
    arb_vec_free (&slots);
    arb_schedule_destroy (&self);
}

static void
test_nothing_due (void **state)
{
    (void) state;
    arb_schedule_t *self = s_schedule ("* * * * * *", "all", T0);
    arb_vec_t slots = {0};
    assert_int_equal (arb_schedule_due (self, T0 + 999, true, &slots), T0);
    assert_int_equal (arb_vec_size (&slots), 0);
    //  one on time: it fires, whatever the policy
    assert_int_equal (arb_schedule_due (self, T0 + 1000, false, &slots), T0 + 1000);
    assert_int_equal (arb_vec_size (&slots), 1);
    arb_vec_free (&slots);
    arb_schedule_destroy (&self);
    //  missed ones up to one due right now: all of them fire, now's too
    self = s_schedule ("* * * * * *", "all", T0);
    assert_int_equal (arb_schedule_due (self, T0 + 3000, false, &slots), T0 + 3000);
    assert_int_equal (arb_vec_size (&slots), 3);
    assert_int_equal (slots.v[2], T0 + 3000);
    arb_vec_free (&slots);
    arb_schedule_destroy (&self);
}

static void
test_info_and_task (void **state)
{
    (void) state;
    zframe_t *payload = zframe_new ("{}", 2);
    arb_schedule_info_t in = {.name = "nightly",
                              .cron = "30 2 * * *",
                              .zone = "Europe/Berlin",
                              .catch_up = "all",
                              .created_ms = T0,
                              .queue = "reports",
                              .task = "report",
                              .priority = 7,
                              .retries = 3,
                              .backoff = ARB_BACKOFF_FIXED,
                              .backoff_ms = 1000,
                              .no_jitter = true,
                              .timeout_ms = 60000,
                              .soft_timeout_ms = 50000,
                              .retention_ms = 3600000,
                              .payload = payload};
    char why[256];
    arb_schedule_t *self = arb_schedule_new (&in, T0, why, sizeof (why));
    assert_non_null (self);
    zframe_destroy (&payload);
    arb_schedule_info_t out;
    arb_schedule_info (self, &out);
    assert_string_equal (out.name, "nightly");
    assert_string_equal (out.cron, "30 2 * * *");
    assert_string_equal (out.zone, "Europe/Berlin");
    assert_string_equal (out.catch_up, "all");
    assert_string_equal (out.queue, "reports");
    assert_string_equal (out.task, "report");
    //  2024-05-01 02:30 CEST is 00:30Z, two hours ahead of UTC
    assert_int_equal (out.next_ms, T0 + 1800000);
    assert_int_equal (out.next_offset_s, 7200);
    assert_true (out.priority == 7 && out.retries == 3 && out.backoff == ARB_BACKOFF_FIXED
                 && out.backoff_ms == 1000 && out.no_jitter && out.timeout_ms == 60000
                 && out.soft_timeout_ms == 50000 && out.retention_ms == 3600000
                 && out.created_ms == T0 && !out.paused);
    assert_int_equal (zframe_size (out.payload), 2);
    zframe_destroy (&out.payload);

    arb_task_spec_t spec;
    char key[ARB_SCHEDULE_KEY_SIZE];
    arb_schedule_task (self, T0 + 1800000, &spec, key);
    assert_string_equal (spec.key, "schedule:nightly:1714523400000");
    assert_string_equal (spec.name, "report");
    assert_string_equal (spec.queue, "reports");
    assert_true (spec.priority == 7 && spec.retries == 3 && spec.no_jitter
                 && spec.timeout_ms == 60000 && spec.soft_timeout_ms == 50000
                 && spec.retention_ms == 3600000);
    assert_memory_equal (zframe_data (spec.payload), "{}", 2);
    zframe_destroy (&spec.payload);
    //  the next slot's own offset: at 02:45 CEST on 2024-10-27 (00:45Z)
    //  the next 02:30 is on the 28th, in CET, an hour ahead of UTC
    arb_schedule_skip (self, 1729989900000ull);
    arb_schedule_info (self, &out);
    assert_int_equal (out.next_ms, 1730079000000ull);
    assert_int_equal (out.next_offset_s, 3600);
    zframe_destroy (&out.payload);

    //  the longest name still makes a key within the limit
    char name[ARB_SCHEDULE_NAME_MAX + 1];
    memset (name, 'n', ARB_SCHEDULE_NAME_MAX);
    name[ARB_SCHEDULE_NAME_MAX] = 0;
    arb_schedule_info_t longest = {.name = name, .cron = "@daily", .task = "t"};
    arb_schedule_t *other = arb_schedule_new (&longest, T0, why, sizeof (why));
    assert_non_null (other);
    arb_schedule_task (other, UINT64_MAX, &spec, key);
    assert_true (strlen (key) <= ARB_NAME_MAX);
    assert_string_equal (key + strlen (key) - 21, ":18446744073709551615");
    zframe_destroy (&spec.payload);
    arb_schedule_destroy (&other);
    arb_schedule_destroy (&self);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_refusals),          cmocka_unit_test (test_next_pause_resume),
        cmocka_unit_test (test_catch_up_policies), cmocka_unit_test (test_catch_up_is_bounded),
        cmocka_unit_test (test_nothing_due),       cmocka_unit_test (test_info_and_task),
    };
    return cmocka_run_group_tests_name ("schedule", tests, NULL, NULL);
}
