/*  test_tasker.c — tasker's POST bodies: what is accepted, and a clear
    reason for each thing that is not; the names other routes reserve.
*/

#include "arb_tasker_body.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static arb_tasker_post_t *
s_parse (const char *body, char *why)
{
    return arb_tasker_parse (body, strlen (body), why, 256);
}

static void
test_accepted (void **state)
{
    (void) state;
    char why[256];
    arb_tasker_post_t *post = s_parse ("{\"identifier\":\"e7bd91d0\",\"payload\":{\"foo\":\"bar\"},"
                                       "\"endpoints\":[\"lb-1\",\"lb-2\"]}",
                                       why);
    assert_non_null (post);
    assert_string_equal (post->identifier, "e7bd91d0");
    assert_true (json_is_object (post->payload));
    assert_int_equal (post->endpoints.n, 2);
    assert_string_equal (post->endpoints.v[1], "lb-2");
    arb_tasker_post_destroy (&post);
    assert_null (post);
    //  a string with \u0000 is JSON: a payload may hold one
    post = s_parse ("{\"identifier\":\"n\",\"payload\":\"a\\u0000b\"}", why);
    assert_non_null (post);
    assert_int_equal (json_string_length (post->payload), 3);
    arb_tasker_post_destroy (&post);
    post = s_parse ("{\"identifier\":\"x\"}", why);
    assert_non_null (post);
    assert_null (post->payload);
    assert_int_equal (post->endpoints.n, 0);
    arb_tasker_post_destroy (&post);
}

static void
test_refused (void **state)
{
    (void) state;
    const struct {
        const char *body, *why;
    } cases[] = {
        {"", "not JSON"},
        {"{\"identifier\":", "not JSON"},
        {"\"text\"", "JSON object"},
        {"{}", "identifier: required"},
        {"{\"identifier\":null}", "identifier: expected"},
        {"{\"identifier\":\"a\\u0000b\"}", "identifier: cannot hold a NUL"},
        {"{\"identifier\":\"a\",\"endpoints\":[\"b\\u0000c\"]}",
         "endpoints[0]: a worker name cannot hold a NUL"},
        {"{\"identifier\":\"a\",\"endpoints\":{}}", "endpoints: expected a list"},
        {"{\"identifier\":\"a\",\"endpoints\":[\"\"]}", "endpoints[0]"},
        {"{\"identifier\":\"a\",\"endpoints\":[\"b\",\"b\"]}", "named twice"},
        {"{\"identifier\":\"a\",\"endpoints\":[\"lb@1\"]}", "endpoints[0]: 'lb@1' is not a worker"},
        {"{\"identifier\":\"a\",\"endpoints\":[\"b\",\"c\\u0007\"]}", "endpoints[1]"},
        {"{\"identifier\":\"a\",\"x\":1}", "'x' is not a field"},
        {"{\"identifier\":\"a\",\"identifier\":\"b\"}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char why[256] = "";
        assert_null (s_parse (cases[i].body, why));
        if (!strstr (why, cases[i].why))
            fail_msg ("%s: '%s' does not say '%s'", cases[i].body, why, cases[i].why);
    }
}

static void
test_type_names (void **state)
{
    (void) state;
    assert_true (arb_tasker_is_type_name ("deploy"));
    assert_false (arb_tasker_is_type_name ("api"));
    assert_false (arb_tasker_is_type_name ("metrics"));
    assert_false (arb_tasker_is_type_name ("static"));
    assert_false (arb_tasker_is_type_name ("q@worker"));
    assert_false (arb_tasker_is_type_name (""));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_accepted),
        cmocka_unit_test (test_refused),
        cmocka_unit_test (test_type_names),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
