/*  test_cli_args.c — the CLI's option value parsers: durations, integers,
    --at times and --backoff policies, with their bounds and refusals.
*/

#include "arb_cli_args.h"
#include "arb_proto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>
#include <cmocka.h>

static uint64_t
s_seconds_ok (const char *text, uint64_t max_ms)
{
    uint64_t ms = 12345;
    arb_cli_err_t err;
    if (arb_cli_parse_seconds (text, max_ms, &ms, &err))
        fail_msg ("'%s' refused: %s", text, err.text);
    return ms;
}

static void
s_seconds_bad (const char *text, uint64_t max_ms, const char *why)
{
    uint64_t ms;
    arb_cli_err_t err;
    assert_int_equal (arb_cli_parse_seconds (text, max_ms, &ms, &err), -1);
    if (!strstr (err.text, why))
        fail_msg ("'%s': expected '%s' in '%s'", text, why, err.text);
}

static void
test_seconds (void **state)
{
    (void) state;
    assert_int_equal (s_seconds_ok ("0", 1000), 0);
    assert_int_equal (s_seconds_ok ("30", ARB_DELAY_MAX_MS), 30000);
    assert_int_equal (s_seconds_ok ("0.25", 1000), 250);
    assert_int_equal (s_seconds_ok ("0.29", 1000), 290);  //  no binary rounding
    assert_int_equal (s_seconds_ok ("1.5", 10000), 1500);
    assert_int_equal (s_seconds_ok (".5", 10000), 500);
    assert_int_equal (s_seconds_ok ("0.0005", 1000), 1);  //  half a ms rounds up
    //  a value above 0 is never 0 (none): below 1 ms it is 1 ms
    assert_int_equal (s_seconds_ok ("0.00049", 1000), 1);
    assert_int_equal (s_seconds_ok ("0.0004", 1000), 1);
    assert_int_equal (s_seconds_ok ("0.0000000001", 1000), 1);
    assert_int_equal (s_seconds_ok ("0.0000", 1000), 0);
    assert_int_equal (s_seconds_ok ("0.", 1000), 0);
    assert_int_equal (s_seconds_ok ("1.0004", 10000), 1000);
    assert_int_equal (s_seconds_ok ("2.9999", 10000), 3000);
    assert_true (s_seconds_ok ("31622400", ARB_DELAY_MAX_MS) == ARB_DELAY_MAX_MS);  //  366 days

    s_seconds_bad ("", 1000, "expected seconds");
    s_seconds_bad (".", 1000, "expected seconds");
    s_seconds_bad ("abc", 1000, "not 'abc'");
    s_seconds_bad ("1e3", 1000000, "expected seconds");
    s_seconds_bad ("0x10", 1000000, "expected seconds");
    s_seconds_bad (" 1", 1000000, "expected seconds");
    s_seconds_bad ("1 ", 1000000, "expected seconds");
    s_seconds_bad ("inf", 1000000, "expected seconds");
    s_seconds_bad ("1.2.3", 1000000, "expected seconds");
    s_seconds_bad ("-1", 1000000, "must be 0 or more seconds");
    s_seconds_bad ("-0.5", 1000000, "must be 0 or more seconds");
    s_seconds_bad ("31622400.001", ARB_DELAY_MAX_MS, "over the limit of 366 days");
    s_seconds_bad ("99999999999999999999999", ARB_DELAY_MAX_MS, "over the limit of 366 days");
    s_seconds_bad ("1.5", 1000, "over the limit of 1 s");
}

static void
test_integers (void **state)
{
    (void) state;
    uint64_t u;
    int64_t i;
    arb_cli_err_t err;
    assert_int_equal (arb_cli_parse_uint ("1000", 1000, &u, &err), 0);
    assert_int_equal (u, 1000);
    assert_int_equal (arb_cli_parse_uint ("0", 0, &u, &err), 0);
    assert_int_equal (arb_cli_parse_uint ("18446744073709551615", UINT64_MAX, &u, &err), 0);
    assert_true (u == UINT64_MAX);
    assert_int_equal (arb_cli_parse_uint ("18446744073709551616", UINT64_MAX, &u, &err), -1);
    assert_int_equal (arb_cli_parse_uint ("1001", 1000, &u, &err), -1);
    assert_string_equal (err.text, "1001 is over the limit of 1000");
    assert_int_equal (arb_cli_parse_uint ("5", 0, &u, &err), -1);
    assert_int_equal (arb_cli_parse_uint ("-1", 1000, &u, &err), -1);
    assert_non_null (strstr (err.text, "from 0 to 1000"));
    assert_int_equal (arb_cli_parse_uint ("+1", 1000, &u, &err), -1);
    assert_int_equal (arb_cli_parse_uint ("", 1000, &u, &err), -1);
    assert_int_equal (arb_cli_parse_uint ("12a", 1000, &u, &err), -1);

    assert_int_equal (arb_cli_parse_int ("-2147483648", INT32_MIN, INT32_MAX, &i, &err), 0);
    assert_int_equal (i, INT32_MIN);
    assert_int_equal (arb_cli_parse_int ("+7", INT32_MIN, INT32_MAX, &i, &err), 0);
    assert_int_equal (i, 7);
    assert_int_equal (arb_cli_parse_int ("2147483648", INT32_MIN, INT32_MAX, &i, &err), -1);
    assert_int_equal (arb_cli_parse_int ("-2147483649", INT32_MIN, INT32_MAX, &i, &err), -1);
    assert_int_equal (arb_cli_parse_int ("-", INT32_MIN, INT32_MAX, &i, &err), -1);
    assert_int_equal (arb_cli_parse_int ("-1", 0, 10, &i, &err), -1);
}

#define NOW_MS 1795000000000ull  //  2026-11-18T..., a fixed "now"

static uint64_t
s_time_ok (const char *text)
{
    uint64_t ms;
    arb_cli_err_t err;
    if (arb_cli_parse_time (text, NOW_MS, &ms, &err))
        fail_msg ("'%s' refused: %s", text, err.text);
    return ms;
}

static void
s_time_bad (const char *text, const char *why)
{
    uint64_t ms;
    arb_cli_err_t err;
    assert_int_equal (arb_cli_parse_time (text, NOW_MS, &ms, &err), -1);
    if (!strstr (err.text, why))
        fail_msg ("'%s': expected '%s' in '%s'", text, why, err.text);
}

static void
test_times (void **state)
{
    (void) state;
    //  date -u -d 2026-11-23T10:00:00Z +%s = 1795428000
    assert_true (s_time_ok ("2026-11-23T10:00:00Z") == 1795428000000ull);
    assert_true (s_time_ok ("2026-11-23t10:00:00z") == 1795428000000ull);
    assert_true (s_time_ok ("2026-11-23 10:00:00Z") == 1795428000000ull);
    assert_true (s_time_ok ("2026-11-23T11:30:00+01:30") == 1795428000000ull);
    assert_true (s_time_ok ("2026-11-23T05:00:00-05:00") == 1795428000000ull);
    assert_true (s_time_ok ("2026-11-23T10:00:00.25Z") == 1795428000250ull);
    assert_true (s_time_ok ("2026-11-23T10:00:00.123456Z") == 1795428000123ull);
    assert_true (s_time_ok ("1970-01-01T00:00:00Z") == 0);  //  the past is allowed
    assert_true (s_time_ok ("2024-02-29T00:00:00Z") == 1709164800000ull);
    assert_true (s_time_ok ("1795428000") == 1795428000000ull);
    assert_true (s_time_ok ("1795428000.5") == 1795428000500ull);

    s_time_bad ("2026-11-23T10:00:00", "expected an RFC 3339 time");  //  no zone
    s_time_bad ("2026-11-23", "expected an RFC 3339 time");
    s_time_bad ("2026-13-01T00:00:00Z", "expected an RFC 3339 time");
    s_time_bad ("2026-02-29T00:00:00Z", "expected an RFC 3339 time");  //  not a leap year
    s_time_bad ("2026-11-31T00:00:00Z", "expected an RFC 3339 time");
    s_time_bad ("2026-11-23T24:00:00Z", "expected an RFC 3339 time");
    s_time_bad ("2026-11-23T10:00:00+0100", "expected an RFC 3339 time");
    s_time_bad ("2026-11-23T10:00:00.Z", "expected an RFC 3339 time");
    s_time_bad ("2026-11-23T10:00:00Zjunk", "expected an RFC 3339 time");
    s_time_bad ("tomorrow", "expected an RFC 3339 time");
    s_time_bad ("-5", "expected an RFC 3339 time");
    s_time_bad ("1969-12-31T23:59:59Z", "before 1970");
    s_time_bad ("2030-01-01T00:00:00Z", "more than 366 days ahead");
    s_time_bad ("99999999999", "more than 366 days ahead");
}

static void
test_backoff (void **state)
{
    (void) state;
    uint32_t kind;
    uint64_t ms, cap;
    arb_cli_err_t err;
    assert_int_equal (arb_cli_parse_backoff ("fixed:2.5", &kind, &ms, &cap, &err), 0);
    assert_int_equal (kind, ARB_BACKOFF_FIXED);
    assert_int_equal (ms, 2500);
    assert_int_equal (cap, 0);
    assert_int_equal (arb_cli_parse_backoff ("exp:0.5,60", &kind, &ms, &cap, &err), 0);
    assert_int_equal (kind, ARB_BACKOFF_EXP);
    assert_int_equal (ms, 500);
    assert_int_equal (cap, 60000);
    assert_int_equal (arb_cli_parse_backoff ("exp:1,1", &kind, &ms, &cap, &err), 0);
    assert_int_equal (arb_cli_parse_backoff ("none", &kind, &ms, &cap, &err), 0);
    assert_int_equal (kind, ARB_BACKOFF_NONE);

    const char *bad[][2] = {
        {"fixed", "expected fixed:SECONDS or exp:BASE,CAP"},
        {"fixed:", "fixed: expected seconds"},
        {"fixed:-1", "fixed: must be 0 or more"},
        {"fixed:2592001", "fixed: 2592001 s is over the limit of 30 days"},
        {"exp:1", "expected fixed:SECONDS or exp:BASE,CAP"},
        {"exp:0,5", "BASE must be more than 0"},
        {"exp:2,1", "CAP (1 s) is below BASE (2 s)"},
        {"exp:x,1", "exp: BASE: expected seconds"},
        {"exp:1,", "exp: CAP: expected seconds"},
        {"exp:1,9999999", "exp: CAP: 9999999 s is over the limit of 30 days"},
        {"linear:1", "expected fixed:SECONDS or exp:BASE,CAP"},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        assert_int_equal (arb_cli_parse_backoff (bad[i][0], &kind, &ms, &cap, &err), -1);
        if (!strstr (err.text, bad[i][1]))
            fail_msg ("'%s': expected '%s' in '%s'", bad[i][0], bad[i][1], err.text);
    }
}

static void
test_durations (void **state)
{
    (void) state;
    uint64_t ms = 0;
    arb_cli_err_t err;
    const struct {
        const char *text;
        uint64_t ms;
    } good[] = {{"90", 90000},
                {"0.5", 500},
                {"90s", 90000},
                {"2m", 120000},
                {"1.5h", 5400000},
                {"1d", ARB_DAY_MS},
                {"366d", ARB_DELAY_MAX_MS}};
    for (size_t i = 0; i < sizeof (good) / sizeof (good[0]); i++) {
        if (arb_cli_parse_duration (good[i].text, ARB_DELAY_MAX_MS, &ms, &err))
            fail_msg ("'%s' refused: %s", good[i].text, err.text);
        assert_int_equal (ms, good[i].ms);
    }
    const char *bad[][2] = {
        {"d", "expected a duration"},
        {"1x", "expected a duration"},
        {"7q", "(s, m, h, d)"},
        {"-3", "must be 0 or more seconds"},
        {"-1d", "expected a duration"},
        {"1e3d", "expected a duration"},
        {"367d", "over the limit of 366 days"},
        {"9999999999999999999999h", "over the limit"},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        assert_int_equal (arb_cli_parse_duration (bad[i][0], ARB_DELAY_MAX_MS, &ms, &err), -1);
        if (!strstr (err.text, bad[i][1]))
            fail_msg ("'%s': expected '%s' in '%s'", bad[i][0], bad[i][1], err.text);
    }
}

static void
test_names (void **state)
{
    (void) state;
    arb_cli_err_t err;
    char long_name[ARB_NAME_MAX + 2];
    memset (long_name, 'q', sizeof (long_name) - 1);
    long_name[ARB_NAME_MAX] = 0;  //  exactly the limit
    assert_int_equal (arb_cli_parse_name ("default", &err), 0);
    assert_int_equal (arb_cli_parse_name (long_name, &err), 0);
    long_name[ARB_NAME_MAX] = 'q';
    long_name[ARB_NAME_MAX + 1] = 0;
    assert_int_equal (arb_cli_parse_name (long_name, &err), -1);
    assert_string_equal (err.text, "201 bytes, over the 200-byte limit");
    assert_int_equal (arb_cli_parse_name ("", &err), -1);
    assert_string_equal (err.text, "must not be empty");
    assert_int_equal (arb_cli_parse_name ("two\nlines", &err), -1);
    assert_string_equal (err.text, "control character 0x0a at byte 4 (names are printable UTF-8)");
    assert_int_equal (arb_cli_parse_name ("caf\xc3\xa9", &err), 0);
}

//  What fuzz_cli_args found (tests/fuzz/corpus/cli_args keeps a seed of each).
static void
test_fuzz_findings (void **state)
{
    (void) state;
    uint64_t ms;
    int64_t i;
    uint32_t kind;
    uint64_t cap;
    arb_cli_err_t err;
    //  whole seconds * 1000 wrapped past 2^64 under a large bound
    assert_int_equal (arb_cli_parse_seconds ("20000000000000000", UINT64_MAX, &ms, &err), -1);
    assert_non_null (strstr (err.text, "over the limit"));
    assert_int_equal (arb_cli_parse_seconds ("18446744073709551.615", UINT64_MAX, &ms, &err), 0);
    assert_true (ms == UINT64_MAX);
    assert_int_equal (arb_cli_parse_seconds ("18446744073709551.616", UINT64_MAX, &ms, &err), -1);
    //  ... which made a time 2^64 ms away read as one in 2026
    s_time_bad ("18446745868709552", "more than 366 days ahead");
    s_time_bad ("99999999999999999999999999", "more than 366 days ahead");
    //  a duration's fraction was rounded to the ms before the unit multiplied it
    assert_int_equal (arb_cli_parse_duration ("0.0001d", ARB_DELAY_MAX_MS, &ms, &err), 0);
    assert_int_equal (ms, 8640);
    assert_int_equal (arb_cli_parse_duration ("99.99444m", ARB_DELAY_MAX_MS, &ms, &err), 0);
    assert_int_equal (ms, 5999666);
    assert_int_equal (
        arb_cli_parse_duration ("1.0000000000000000000000000000000000000000000000001h",
                                ARB_DELAY_MAX_MS, &ms, &err),
        0);  //  no length limit
    assert_int_equal (ms, 3600000);
    //  an integer's bounds when both are on one side of 0
    assert_int_equal (arb_cli_parse_int ("0", 1, 100, &i, &err), -1);
    assert_int_equal (arb_cli_parse_int ("-1", -10, -5, &i, &err), -1);
    assert_int_equal (arb_cli_parse_int ("3", -10, -5, &i, &err), -1);
    assert_int_equal (arb_cli_parse_int ("-7", -10, -5, &i, &err), 0);
    assert_int_equal (i, -7);
    //  an exp: BASE cut to 63 bytes read as a number when it was none, or
    //  as another number
    char text[160];
    snprintf (text, sizeof (text), "exp:%062d1x,5", 0);
    assert_int_equal (arb_cli_parse_backoff (text, &kind, &ms, &cap, &err), -1);
    assert_non_null (strstr (err.text, "exp: BASE: expected seconds"));
    snprintf (text, sizeof (text), "exp:%070d2,60", 0);
    assert_int_equal (arb_cli_parse_backoff (text, &kind, &ms, &cap, &err), 0);
    assert_int_equal (ms, 2000);
    //  a control character of the text is quoted as '.'
    assert_int_equal (arb_cli_parse_seconds ("1\x1b[2J", 1000, &ms, &err), -1);
    assert_string_equal (err.text, "expected seconds, like 30 or 0.25, not '1.[2J'");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_seconds),       cmocka_unit_test (test_integers),
        cmocka_unit_test (test_times),         cmocka_unit_test (test_backoff),
        cmocka_unit_test (test_names),         cmocka_unit_test (test_durations),
        cmocka_unit_test (test_fuzz_findings),
    };
    return cmocka_run_group_tests_name ("cli_args", tests, NULL, NULL);
}
