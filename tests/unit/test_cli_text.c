/*  test_cli_text.c — how the CLI writes times, durations and task bytes.
*/

#include "arb_cli_text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void
test_time_and_duration (void **state)
{
    (void) state;
    char text[40];
    arb_cli_format_time (1795428000123ull, text, sizeof (text));
    assert_string_equal (text, "2026-11-23T10:00:00.123Z");
    arb_cli_format_time (0, text, sizeof (text));
    assert_string_equal (text, "1970-01-01T00:00:00.000Z");

    const struct {
        uint64_t ms;
        const char *text;
    } durations[] = {
        {0, "0 ms"},
        {999, "999 ms"},
        {1000, "1.0 s"},
        {12345, "12.3 s"},
        {60000, "1 min 00 s"},
        {245000, "4 min 05 s"},
        {3600000, "1 h 00 min"},
        {11040000, "3 h 04 min"},
        {2 * 86400000ull + 3 * 3600000, "2 d 03 h"},
    };
    for (size_t i = 0; i < sizeof (durations) / sizeof (durations[0]); i++) {
        arb_cli_format_duration (durations[i].ms, text, sizeof (text));
        assert_string_equal (text, durations[i].text);
    }
}

static void
test_utf8 (void **state)
{
    (void) state;
    assert_true (arb_cli_is_utf8 ((const uint8_t *) "", 0));
    assert_true (
        arb_cli_is_utf8 ((const uint8_t *) "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    assert_true (arb_cli_is_utf8 ((const uint8_t *) "a\0b", 3));
    assert_false (arb_cli_is_utf8 ((const uint8_t *) "\xc3", 1));              //  truncated
    assert_false (arb_cli_is_utf8 ((const uint8_t *) "\xc0\xaf", 2));          //  overlong
    assert_false (arb_cli_is_utf8 ((const uint8_t *) "\xe0\x80\xaf", 3));      //  overlong
    assert_false (arb_cli_is_utf8 ((const uint8_t *) "\xed\xa0\x80", 3));      //  surrogate
    assert_false (arb_cli_is_utf8 ((const uint8_t *) "\xf4\x90\x80\x80", 4));  //  past U+10FFFF
    assert_false (arb_cli_is_utf8 ((const uint8_t *) "\xff", 1));
}

static void
test_escape (void **state)
{
    (void) state;
    const char input[] = "ok caf\xc3\xa9\n\t\\ \x01\xff\x7f\xc2\x85!";
    char *text = arb_cli_escape ((const uint8_t *) input, sizeof (input) - 1);
    assert_string_equal (text, "ok caf\xc3\xa9\\n\\t\\\\ \\x01\\xff\\x7f\\xc2\\x85!");
    free (text);
    text = arb_cli_escape ((const uint8_t *) "", 0);
    assert_string_equal (text, "");
    free (text);
    text = arb_cli_escape_str ("two\nlines");
    assert_string_equal (text, "two\\nlines");
    free (text);
    text = arb_cli_escape_str (NULL);
    assert_string_equal (text, "");
    free (text);
}

//  Tables pad and cut by the columns a name takes, not its bytes.
static void
test_columns (void **state)
{
    (void) state;
    assert_int_equal (arb_cli_columns ("queue"), 5);
    assert_int_equal (arb_cli_columns ("\xc3\xbcn\xc3\xaf"), 3);         //  ünï
    assert_int_equal (arb_cli_columns ("\xe4\xbb\xbb\xe5\x8a\xa1"), 4);  //  任务
    assert_int_equal (arb_cli_columns ("e\xcc\x81"), 1);                 //  e + combining acute
    assert_int_equal (arb_cli_columns ("\xff\xfe"), 2);                  //  not UTF-8
    char line[64];
    snprintf (line, sizeof (line), "%-*s|", arb_cli_pad ("\xc3\xbcn\xc3\xaf", 6),
              "\xc3\xbcn\xc3\xaf");
    assert_string_equal (line, "\xc3\xbcn\xc3\xaf   |");
    snprintf (line, sizeof (line), "%-*s|", arb_cli_pad ("\xe4\xbb\xbb", 4), "\xe4\xbb\xbb");
    assert_string_equal (line, "\xe4\xbb\xbb  |");
    char text[] = "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc";  //  six ü
    arb_cli_clip (text, 5);
    assert_string_equal (text, "\xc3\xbc\xc3\xbc...");
    char wide[] = "\xe4\xbb\xbb\xe5\x8a\xa1\xe4\xbb\xbb\xe5\x8a\xa1";  //  8 columns
    arb_cli_clip (wide, 6);
    assert_string_equal (wide, "\xe4\xbb\xbb...");
    char fits[] = "abc";
    arb_cli_clip (fits, 5);
    assert_string_equal (fits, "abc");
}

static void
test_attempts (void **state)
{
    (void) state;
    char text[24];
    arb_cli_format_attempts (2, 3, text, sizeof (text));
    assert_string_equal (text, "2/3");
    arb_cli_format_attempts (0, 1, text, sizeof (text));
    assert_string_equal (text, "0/1");
    //  a head-policy task past its bound: the count alone, never "9/1"
    arb_cli_format_attempts (9, 1, text, sizeof (text));
    assert_string_equal (text, "9");
}

static void
test_base64 (void **state)
{
    (void) state;
    const char *cases[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char *text = arb_cli_base64 ((const uint8_t *) cases[i][0], strlen (cases[i][0]));
        assert_string_equal (text, cases[i][1]);
        free (text);
    }
    char *text = arb_cli_base64 ((const uint8_t *) "\xff\x00\xfe", 3);
    assert_string_equal (text, "/wD+");
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_time_and_duration),
        cmocka_unit_test (test_utf8),
        cmocka_unit_test (test_escape),
        cmocka_unit_test (test_columns),
        cmocka_unit_test (test_attempts),
        cmocka_unit_test (test_base64),
    };
    return cmocka_run_group_tests_name ("cli_text", tests, NULL, NULL);
}
