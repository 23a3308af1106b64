/*  test_bridges.c — the [bridge.NAME] sections of the gateway's config
    file: names, keys and values taken, mistakes refused with a reason, and
    the bound on the number of bridges. (The bridges themselves run against
    a real RabbitMQ: tests/system/test_bridge.py.)
*/

#include "arb_bridges.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <cmocka.h>

static int
s_key (arb_bridges_t *bridges, const char *section, const char *key, const char *value, char *why)
{
    return arb_bridges_section (bridges, section, key, value, why, 200);
}

static void
test_keys_are_taken (void **state)
{
    (void) state;
    arb_bridges_t *bridges = arb_bridges_new ();
    char why[200];
    const char *keys[][2] = {
        {"upstream", "amqp://u:p@127.0.0.1:5672/%2f"},
        {"upstream-queue", "legacy.jobs"},
        {"queue", "jobs"},
        {"task", "resize"},
        {"prefetch", "50"},
        {"max-pending", "1000"},
        {"priority", "-3"},
        {"retries", "2"},
        {"timeout", "30"},
        {"retention", "3600"},
        {"backoff", "exponential"},
        {"backoff-delay", "0.5"},
        {"backoff-cap", "60"},
        {"wait-for-endpoints-timeout", "5"},
    };
    for (size_t i = 0; i < sizeof (keys) / sizeof (keys[0]); i++)
        assert_int_equal (s_key (bridges, "bridge.images", keys[i][0], keys[i][1], why), 0);
    assert_int_equal (s_key (bridges, "bridge.other_2", "prefetch", "1", why), 0);
    assert_int_equal (arb_bridges_size (bridges), 2);
    arb_bridges_destroy (&bridges);
    assert_null (bridges);
}

static void
test_mistakes_are_refused (void **state)
{
    (void) state;
    arb_bridges_t *bridges = arb_bridges_new ();
    char why[200];
    struct {
        const char *section, *key, *value, *reason;
    } bad[] = {
        {"queue.jobs", "priority", "1", "unknown section"},
        {"bridge.", "queue", "q", "a bridge's name"},
        {"bridge.a.b", "queue", "q", "a bridge's name"},
        {"bridge.jobs", "colour", "blue", "unknown key (upstream, upstream-queue, queue"},
        {"bridge.jobs", "queue", "", "must not be empty"},
        {"bridge.jobs", "queue", "a@b", "'@' is reserved"},
        {"bridge.jobs", "task", "line\nbreak", "printable UTF-8"},
        {"bridge.jobs", "prefetch", "0", "out of range"},
        {"bridge.jobs", "prefetch", "65536", "out of range"},
        {"bridge.jobs", "max-pending", "100001", "out of range"},
        {"bridge.jobs", "retries", "1001", "out of range"},
        {"bridge.jobs", "priority", "high", "whole number"},
        {"bridge.jobs", "backoff", "linear", "none, fixed or exponential"},
        {"bridge.jobs", "timeout", "soon", "seconds"},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        why[0] = 0;
        assert_int_equal (s_key (bridges, bad[i].section, bad[i].key, bad[i].value, why), -1);
        if (!strstr (why, bad[i].reason))
            fail_msg ("[%s] %s = %s: '%s' does not say '%s'", bad[i].section, bad[i].key,
                      bad[i].value, why, bad[i].reason);
    }
    char name[80];
    snprintf (name, sizeof (name), "bridge.%065d", 1);
    assert_int_equal (s_key (bridges, name, "queue", "q", why), -1);
    arb_bridges_destroy (&bridges);
}

static void
test_bridges_are_bounded (void **state)
{
    (void) state;
    arb_bridges_t *bridges = arb_bridges_new ();
    char why[200], section[32];
    for (int i = 0; i < ARB_BRIDGES_MAX; i++) {
        snprintf (section, sizeof (section), "bridge.b%d", i);
        assert_int_equal (s_key (bridges, section, "prefetch", "1", why), 0);
    }
    //  a known section takes more keys; a new one is refused
    assert_int_equal (s_key (bridges, "bridge.b0", "retries", "1", why), 0);
    assert_int_equal (s_key (bridges, "bridge.one-more", "prefetch", "1", why), -1);
    assert_non_null (strstr (why, "more than"));
    assert_int_equal (arb_bridges_size (bridges), ARB_BRIDGES_MAX);
    arb_bridges_destroy (&bridges);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_keys_are_taken),
        cmocka_unit_test (test_mistakes_are_refused),
        cmocka_unit_test (test_bridges_are_bounded),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
