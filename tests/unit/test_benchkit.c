/*  test_benchkit.c — the benchmarks' payload stamp (tools/arb_benchkit.h):
    the time written at a payload's head is the time read back, in 16
    lowercase hex digits; the letters after it run 'a' + i % 26 whatever
    the size; a head that is not 16 hex digits carries no time. A number
    option's value is a whole number in range, or refused and not stored.
*/

#include "arb_benchkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void
test_a_stamp_reads_back (void **state)
{
    (void) state;
    char payload[100];
    int64_t before = arb_benchkit_now_us ();
    int64_t at = arb_benchkit_stamp (payload, sizeof (payload));
    assert_true (at >= before && at <= arb_benchkit_now_us ());
    assert_int_equal (arb_benchkit_stamp_of (payload, sizeof (payload)), at);
    char hex[ARB_BENCHKIT_STAMP + 1];
    snprintf (hex, sizeof (hex), "%016llx", (unsigned long long) at);
    assert_memory_equal (payload, hex, ARB_BENCHKIT_STAMP);
}

static void
test_letters_follow_at_any_size (void **state)
{
    (void) state;
    size_t sizes[] = {16, 17, 25, 26, 42, 100, 1000, 4096};
    for (size_t k = 0; k < sizeof (sizes) / sizeof (sizes[0]); k++) {
        char *payload = (char *) malloc (sizes[k] + 1);
        payload[sizes[k]] = '#';  //  not written over
        arb_benchkit_stamp (payload, sizes[k]);
        for (size_t i = ARB_BENCHKIT_STAMP; i < sizes[k]; i++)
            assert_int_equal (payload[i], 'a' + i % 26);
        assert_int_equal (payload[sizes[k]], '#');
        free (payload);
    }
}

static void
test_no_time_without_sixteen_hex_digits (void **state)
{
    (void) state;
    assert_int_equal (arb_benchkit_stamp_of (NULL, 100), -1);
    assert_int_equal (arb_benchkit_stamp_of ("0123456789abcde", 15), -1);
    assert_int_equal (arb_benchkit_stamp_of ("0123456789abcdeg", 16), -1);
    assert_int_equal (arb_benchkit_stamp_of (" 123456789abcdef", 16), -1);
    assert_int_equal (arb_benchkit_stamp_of ("0x23456789abcdef", 16), -1);
    assert_int_equal (arb_benchkit_stamp_of ("00000000000000FF", 16), -1);  //  never written
    assert_int_equal (arb_benchkit_stamp_of ("00000000000000ffxyz", 19), 255);
    assert_int_equal (arb_benchkit_stamp_of ("7fffffffffffffff", 16), INT64_MAX);
}

static void
test_a_number_option_is_whole_and_in_range (void **state)
{
    (void) state;
    int value = 7;
    assert_int_equal (arb_benchkit_whole ("test", "tasks", "42", 1, 100, &value), 0);
    assert_int_equal (value, 42);
    assert_int_equal (arb_benchkit_whole ("test", "idle", "0", 0, 100, &value), 0);
    assert_int_equal (value, 0);
    const char *bad[] = {"10x", "", "-5", "1.5", " 7", "0x10", "101", "99999999999999999999"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        value = 7;
        assert_int_equal (arb_benchkit_whole ("test", "tasks", bad[i], 1, 100, &value), -1);
        assert_int_equal (value, 7);  //  untouched
    }
    assert_int_equal (arb_benchkit_seconds ("test", "retention", "0.25", 1000), 0);
    assert_int_equal (arb_benchkit_seconds ("test", "retention", "-1", 1000), -1);
    assert_int_equal (arb_benchkit_seconds ("test", "retention", "2", 1000), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_stamp_reads_back),
        cmocka_unit_test (test_letters_follow_at_any_size),
        cmocka_unit_test (test_no_time_without_sixteen_hex_digits),
        cmocka_unit_test (test_a_number_option_is_whole_and_in_range),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
