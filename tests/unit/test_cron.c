/*  test_cron.c — cron expressions (arb_cron) and time zones (arb_tz):
    parsing and refusals, next fire times in UTC and across the DST
    changes of Europe/Berlin, America/New_York and Australia/Sydney, and
    zone offsets checked against the C library's own reading of the same
    files. Times are written in UTC ("2024-03-31T01:00:00Z"). */

#include "arb_cron.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <czmq.h>
#include <time.h>

//  "YYYY-MM-DDTHH:MM:SSZ" to Unix ms.
static uint64_t
s_ms (const char *iso)
{
    int y, mo, d, h, mi, s;
    assert_int_equal (sscanf (iso, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s), 6);
    return (uint64_t) (arb_tz_days (y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

static const char *
s_iso (uint64_t ms, char *text, size_t size)
{
    int64_t t = (int64_t) (ms / 1000);
    arb_tz_date_t date;
    arb_tz_date (t / 86400, &date);
    snprintf (text, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int) date.year, date.month, date.day,
              (int) (t % 86400 / 3600), (int) (t % 3600 / 60), (int) (t % 60));
    return text;
}

static arb_cron_t *
s_cron (const char *expr, const char *zone)
{
    char why[256] = "";
    arb_cron_t *cron = arb_cron_new (expr, zone, why, sizeof (why));
    if (!cron)
        fail_msg ("'%s' in %s refused: %s", expr, zone ? zone : "UTC", why);
    return cron;
}

//  The fire times of expr in zone after the time after, one after another.
static void
s_expect (const char *expr, const char *zone, const char *after, const char *const *times)
{
    arb_cron_t *cron = s_cron (expr, zone);
    uint64_t at = s_ms (after);
    for (size_t i = 0; times[i]; i++) {
        uint64_t next = 0;
        char text[32], got[32];
        if (arb_cron_next (cron, at, &next))
            fail_msg ("'%s' in %s: no time after %s, expected %s", expr, zone ? zone : "UTC",
                      s_iso (at, text, 32), times[i]);
        if (next != s_ms (times[i]))
            fail_msg ("'%s' in %s after %s: %s, expected %s", expr, zone ? zone : "UTC",
                      s_iso (at, text, 32), s_iso (next, got, 32), times[i]);
        at = next;
    }
    arb_cron_destroy (&cron);
}

#define EXPECT(expr, zone, after, ...)                    \
    do {                                                  \
        const char *const times_[] = {__VA_ARGS__, NULL}; \
        s_expect (expr, zone, after, times_);             \
    } while (0)

static void
s_refused (const char *expr, const char *zone, const char *why_expected)
{
    char why[256] = "";
    arb_cron_t *cron = arb_cron_new (expr, zone, why, sizeof (why));
    if (cron)
        fail_msg ("'%s' in %s was accepted", expr, zone ? zone : "UTC");
    if (!streq (why, why_expected))
        fail_msg ("'%s': \"%s\", expected \"%s\"", expr, why, why_expected);
}

//  ---------------------------------------------------------------------
//  Parsing

static void
test_steps_ranges_lists (void **state)
{
    (void) state;
    EXPECT ("*/15 * * * *", NULL, "2024-05-01T10:07:30Z", "2024-05-01T10:15:00Z",
            "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z", "2024-05-01T11:00:00Z");
    EXPECT ("10-30/10 * * * *", NULL, "2024-05-01T10:00:00Z", "2024-05-01T10:10:00Z",
            "2024-05-01T10:20:00Z", "2024-05-01T10:30:00Z", "2024-05-01T11:10:00Z");
    EXPECT ("*/7 * * * *", NULL, "2024-05-01T10:55:00Z", "2024-05-01T10:56:00Z",
            "2024-05-01T11:00:00Z");
    //  a step as long as the field's range: its first value alone
    EXPECT ("*/60 * * * *", NULL, "2024-05-01T10:55:00Z", "2024-05-01T11:00:00Z",
            "2024-05-01T12:00:00Z");
    EXPECT ("0,30 8,17 * * *", NULL, "2024-05-01T08:00:00Z", "2024-05-01T08:30:00Z",
            "2024-05-01T17:00:00Z", "2024-05-01T17:30:00Z", "2024-05-02T08:00:00Z");
    EXPECT ("5 4 * * *", NULL, "2024-12-31T04:05:00Z", "2025-01-01T04:05:00Z");
    //  strictly after: a time on a slot gives the next slot
    EXPECT ("0 * * * *", NULL, "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
    //  after a fraction of a second past a slot
    arb_cron_t *cron = s_cron ("* * * * *", NULL);
    uint64_t next;
    assert_int_equal (arb_cron_next (cron, s_ms ("2024-05-01T10:00:00Z") - 1, &next), 0);
    assert_int_equal (next, s_ms ("2024-05-01T10:00:00Z"));
    assert_int_equal (arb_cron_next (cron, s_ms ("2024-05-01T10:00:00Z") + 999, &next), 0);
    assert_int_equal (next, s_ms ("2024-05-01T10:01:00Z"));
    arb_cron_destroy (&cron);
    //  white space around and between fields
    EXPECT ("  0\t12  * * *  ", NULL, "2024-05-01T00:00:00Z", "2024-05-01T12:00:00Z");
}

static void
test_seconds_field (void **state)
{
    (void) state;
    EXPECT ("*/10 * * * * *", NULL, "2024-05-01T12:00:05Z", "2024-05-01T12:00:10Z",
            "2024-05-01T12:00:20Z", "2024-05-01T12:00:30Z");
    EXPECT ("* * * * * *", NULL, "2024-12-31T23:59:58Z", "2024-12-31T23:59:59Z",
            "2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z");
    EXPECT ("30 0 12 * * *", NULL, "2024-05-01T12:00:30Z", "2024-05-02T12:00:30Z");
    EXPECT ("0,15 59 23 31 12 *", NULL, "2024-06-01T00:00:00Z", "2024-12-31T23:59:00Z",
            "2024-12-31T23:59:15Z", "2025-12-31T23:59:00Z");
}

static void
test_names_and_macros (void **state)
{
    (void) state;
    //  2024-05-01 is a Wednesday
    EXPECT ("0 9 * * MON-fri", NULL, "2024-05-03T09:00:00Z", "2024-05-06T09:00:00Z");
    EXPECT ("0 9 * jan,Jul *", NULL, "2024-05-01T00:00:00Z", "2024-07-01T09:00:00Z");
    //  the last name of a field too
    EXPECT ("0 9 1 nov,DEC *", NULL, "2024-05-01T00:00:00Z", "2024-11-01T09:00:00Z",
            "2024-12-01T09:00:00Z");
    EXPECT ("0 0 * * sun", NULL, "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z");
    EXPECT ("0 0 * * 7", NULL, "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z");
    EXPECT ("0 0 * * 0", NULL, "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z");
    EXPECT ("0 0 * * 5-7", NULL, "2024-05-01T00:00:00Z", "2024-05-03T00:00:00Z",
            "2024-05-04T00:00:00Z", "2024-05-05T00:00:00Z", "2024-05-10T00:00:00Z");
    EXPECT ("@yearly", NULL, "2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z");
    EXPECT ("@annually", NULL, "2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z");
    EXPECT ("@monthly", NULL, "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z");
    EXPECT ("@weekly", NULL, "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z");
    EXPECT ("@daily", NULL, "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z");
    EXPECT ("@midnight", NULL, "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z");
    EXPECT ("@HOURLY", NULL, "2024-05-01T00:00:00Z", "2024-05-01T01:00:00Z");
}

static void
test_refusals (void **state)
{
    (void) state;
    s_refused ("0 25 * * *", NULL, "field 2 (hour): 25 is out of range 0-23");
    s_refused ("0 0 25 * * *", NULL, "field 3 (hour): 25 is out of range 0-23");
    s_refused ("60 * * * *", NULL, "field 1 (minute): 60 is out of range 0-59");
    s_refused ("0 0 0 * *", NULL, "field 3 (day of month): 0 is out of range 1-31");
    s_refused ("0 0 * 13 *", NULL, "field 4 (month): 13 is out of range 1-12");
    s_refused ("0 0 * * 8", NULL, "field 5 (day of week): 8 is out of range 0-7");
    s_refused ("0 0 * * 99999999999", NULL,
               "field 5 (day of week): 99999999999 is out of range 0-7");
    s_refused ("0 0 * foo *", NULL,
               "field 4 (month): 'foo' is not a number or a month name (jan-dec)");
    s_refused ("0 0 * * funday", NULL,
               "field 5 (day of week): 'funday' is not a number or a day name (sun-sat)");
    s_refused ("0 jan * * *", NULL, "field 2 (hour): 'jan' is not a number");
    s_refused ("5-1 * * * *", NULL, "field 1 (minute): range 5-1 goes backwards (5 is after 1)");
    s_refused ("5/10 * * * *", NULL,
               "field 1 (minute): in '5/10', a step goes after * or a range, like 5-59/STEP");
    s_refused ("*/0 * * * *", NULL, "field 1 (minute): step 0 is out of range 1-60");
    s_refused ("*/61 * * * *", NULL, "field 1 (minute): step 61 is out of range 1-60");
    s_refused ("*/x * * * *", NULL, "field 1 (minute): in '*/x', the step is not a number");
    s_refused ("*/ * * * *", NULL, "field 1 (minute): in '*/', the step is not a number");
    s_refused ("1- * * * *", NULL, "field 1 (minute): '1-' is missing a value");
    s_refused ("1,,2 * * * *", NULL, "field 1 (minute): an item of the list is empty");
    s_refused ("1, * * * *", NULL, "field 1 (minute): an item of the list is empty");
    s_refused ("? * * * *", NULL, "field 1 (minute): '?' is not a number");
    s_refused ("0 \x01 * * *", NULL, "field 2 (hour): '.' is not a number");
    s_refused ("* * * *", NULL,
               "4 fields: give 5 (minute hour day-of-month month day-of-week), or 6 with the "
               "seconds first");
    s_refused ("* * * * * * *", NULL,
               "more than 6 fields: give 5 (minute hour day-of-month month day-of-week), or 6 "
               "with the seconds first");
    s_refused ("", NULL,
               "0 fields: give 5 (minute hour day-of-month month day-of-week), or 6 with the "
               "seconds first");
    s_refused ("@reboot", NULL,
               "'@reboot' is not @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
               "@hourly");
    s_refused ("@daily *", NULL,
               "2 fields: give 5 (minute hour day-of-month month day-of-week), or 6 with the "
               "seconds first");
    //  dates that never come
    s_refused ("0 0 30 2 *", NULL,
               "fields 3 and 4 (day of month, month): no month given has a day given, so it "
               "never fires");
    s_refused ("0 0 0 31 4,6,9,11 *", NULL,
               "fields 4 and 5 (day of month, month): no month given has a day given, so it "
               "never fires");
    s_refused ("0 0 31 apr */2", NULL,
               "fields 3 and 4 (day of month, month): no month given has a day given, so it "
               "never fires");
    char long_expr[300];
    memset (long_expr, '1', sizeof (long_expr) - 1);
    long_expr[sizeof (long_expr) - 1] = 0;
    s_refused (long_expr, NULL, "an expression of 299 bytes, over the 200-byte limit");
    //  zones
    s_refused ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'");
    s_refused ("* * * * *", "../../etc/passwd",
               "'../../etc/passwd' is not a time zone name (like Europe/Berlin or UTC)");
    s_refused ("* * * * *", "/etc/localtime",
               "'/etc/localtime' is not a time zone name (like Europe/Berlin or UTC)");
    s_refused ("* * * * *", "Europe/",
               "'Europe/' is not a time zone name (like Europe/Berlin or UTC)");
    s_refused ("* * * * *", "Europe", "unknown time zone 'Europe'");
    s_refused ("* * * * *", "zone.tab", "time zone 'zone.tab': not a TZif file");
    s_refused ("* * * * *", "right/Europe/Berlin",
               "time zone 'right/Europe/Berlin': zone with leap seconds (right/...)");
}

//  ---------------------------------------------------------------------
//  Days

static void
test_february_29 (void **state)
{
    (void) state;
    EXPECT ("0 0 29 2 *", NULL, "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z",
            "2032-02-29T00:00:00Z");
    //  2100 is no leap year (divisible by 100, not by 400); 2000 was
    EXPECT ("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
    EXPECT ("0 0 29 2 *", NULL, "1997-01-01T00:00:00Z", "2000-02-29T00:00:00Z");
    EXPECT ("0 12 28-31 2 *", NULL, "2023-02-27T00:00:00Z", "2023-02-28T12:00:00Z",
            "2024-02-28T12:00:00Z", "2024-02-29T12:00:00Z");
}

static void
test_day_of_month_or_week (void **state)
{
    (void) state;
    //  both restricted: the 13th or a Friday (2024-09-06 is a Friday)
    EXPECT ("0 0 13 * 5", NULL, "2024-09-01T00:00:00Z", "2024-09-06T00:00:00Z",
            "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z", "2024-09-27T00:00:00Z",
            "2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z", "2024-10-13T00:00:00Z");
    //  "*" with a step does not restrict (Vixie): odd days that are Fridays
    EXPECT ("0 0 */2 * 5", NULL, "2024-09-01T00:00:00Z", "2024-09-13T00:00:00Z",
            "2024-09-27T00:00:00Z", "2024-10-11T00:00:00Z");
    //  one restricted: that one alone
    EXPECT ("0 0 1 * *", NULL, "2024-09-01T00:00:00Z", "2024-10-01T00:00:00Z");
    EXPECT ("0 0 * * 1", NULL, "2024-09-01T00:00:00Z", "2024-09-02T00:00:00Z");
    //  the first Monday of a month can't be said in cron: 1-7 or Monday
    EXPECT ("0 0 1-7 * mon", NULL, "2024-09-07T00:00:00Z", "2024-09-09T00:00:00Z",
            "2024-09-16T00:00:00Z", "2024-09-23T00:00:00Z", "2024-09-30T00:00:00Z",
            "2024-10-01T00:00:00Z");
    //  the 30th of February or a Monday in February: Mondays
    EXPECT ("0 0 30 2 mon", NULL, "2024-01-01T00:00:00Z", "2024-02-05T00:00:00Z");
}

static void
test_far_searches_end (void **state)
{
    (void) state;
    //  the 29th of February on a Sunday: 2088, then 2128 (2100 is skipped)
    EXPECT ("0 0 29 2 */7", NULL, "2089-01-01T00:00:00Z", "2128-02-29T00:00:00Z");
    //  both restricted: the 29th or a Sunday, in February
    EXPECT ("0 0 29 2 sun", "Europe/Berlin", "2089-01-01T00:00:00Z", "2089-02-05T23:00:00Z",
            "2089-02-12T23:00:00Z");
    //  nothing after the year 9999
    arb_cron_t *cron = s_cron ("0 0 1 1 *", NULL);
    uint64_t next;
    assert_int_equal (arb_cron_next (cron, s_ms ("9999-06-01T00:00:00Z"), &next), -1);
    assert_int_equal (arb_cron_next (cron, UINT64_MAX, &next), -1);
    assert_int_equal (arb_cron_next (cron, s_ms ("9998-06-01T00:00:00Z"), &next), 0);
    assert_int_equal (next, s_ms ("9999-01-01T00:00:00Z"));
    arb_cron_destroy (&cron);
    //  rare, in a zone, far ahead of its table: still found
    EXPECT ("0 0 29 2 */7", "America/New_York", "2089-01-01T00:00:00Z", "2128-02-29T05:00:00Z");
}

//  ---------------------------------------------------------------------
//  Time zones and DST

static void
test_berlin_dst (void **state)
{
    (void) state;
    const char *berlin = "Europe/Berlin";
    //  2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00Z. A fixed time in
    //  the gap fires at the end of the gap, once.
    EXPECT ("30 2 * * *", berlin, "2024-03-30T02:00:00Z", "2024-03-31T01:00:00Z",
            "2024-04-01T00:30:00Z");
    EXPECT ("0 2,3 * * *", berlin, "2024-03-30T23:00:00Z", "2024-03-31T01:00:00Z",
            "2024-04-01T00:00:00Z");
    EXPECT ("*/20 2 * * *", berlin, "2024-03-30T23:00:00Z", "2024-03-31T01:00:00Z",
            "2024-04-01T00:00:00Z");
    //  by the clock: the skipped hour fires nothing, real time keeps its pace
    EXPECT ("0 * * * *", berlin, "2024-03-30T23:30:00Z", "2024-03-31T00:00:00Z",
            "2024-03-31T01:00:00Z", "2024-03-31T02:00:00Z");
    EXPECT ("*/30 * * * *", berlin, "2024-03-31T00:15:00Z", "2024-03-31T00:30:00Z",
            "2024-03-31T01:00:00Z", "2024-03-31T01:30:00Z");
    //  ... up to the last second before the change (01:59:59 CET)
    EXPECT ("59 59 * * * *", berlin, "2024-03-31T00:30:00Z", "2024-03-31T00:59:59Z",
            "2024-03-31T01:59:59Z");
    //  2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00Z. A fixed time
    //  shown twice fires the first time only.
    EXPECT ("30 2 * * *", berlin, "2024-10-26T01:00:00Z", "2024-10-27T00:30:00Z",
            "2024-10-28T01:30:00Z");
    EXPECT ("*/30 2 * * *", berlin, "2024-10-26T23:00:00Z", "2024-10-27T00:00:00Z",
            "2024-10-27T00:30:00Z", "2024-10-28T01:00:00Z");
    //  ... also when asked from inside the repeated hour
    EXPECT ("45 2 * * *", berlin, "2024-10-27T01:10:00Z", "2024-10-28T01:45:00Z");
    EXPECT ("15 2 * * *", berlin, "2024-10-27T01:10:00Z", "2024-10-28T01:15:00Z");
    //  by the clock: the repeated hour fires again
    EXPECT ("0 * * * *", berlin, "2024-10-26T23:30:00Z", "2024-10-27T00:00:00Z",
            "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z");
    EXPECT ("0 30 * * * *", berlin, "2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z",
            "2024-10-27T01:30:00Z", "2024-10-27T02:30:00Z");
    //  a day with no change in between: local midnight is 22:00Z in summer
    EXPECT ("@daily", berlin, "2024-07-01T12:00:00Z", "2024-07-01T22:00:00Z",
            "2024-07-02T22:00:00Z");
    //  2100, beyond the zone file's table: its footer rule
    EXPECT ("30 2 * * *", berlin, "2100-03-27T12:00:00Z", "2100-03-28T01:00:00Z",
            "2100-03-29T00:30:00Z");
    EXPECT ("30 2 * * *", berlin, "2100-10-30T12:00:00Z", "2100-10-31T00:30:00Z",
            "2100-11-01T01:30:00Z");
}

static void
test_new_york_dst (void **state)
{
    (void) state;
    const char *ny = "America/New_York";
    //  2024-03-10: 02:00 EST becomes 03:00 EDT at 07:00Z
    EXPECT ("30 2 * * *", ny, "2024-03-09T08:00:00Z", "2024-03-10T07:00:00Z",
            "2024-03-11T06:30:00Z");
    EXPECT ("0 * * * *", ny, "2024-03-10T05:30:00Z", "2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z",
            "2024-03-10T08:00:00Z");
    //  2024-11-03: 02:00 EDT becomes 01:00 EST at 06:00Z
    EXPECT ("30 1 * * *", ny, "2024-11-02T12:00:00Z", "2024-11-03T05:30:00Z",
            "2024-11-04T06:30:00Z");
    EXPECT ("0 * * * *", ny, "2024-11-03T04:30:00Z", "2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z",
            "2024-11-03T07:00:00Z");
    EXPECT ("0 9 * * mon-fri", ny, "2024-11-01T14:00:00Z", "2024-11-04T14:00:00Z");
    EXPECT ("0 9 * * mon-fri", ny, "2024-07-01T12:00:00Z", "2024-07-01T13:00:00Z");
}

static void
test_southern_dst (void **state)
{
    (void) state;
    const char *sydney = "Australia/Sydney";
    //  2024-10-06: 02:00 AEST becomes 03:00 AEDT at 16:00Z the day before
    EXPECT ("30 2 * * *", sydney, "2024-10-05T00:00:00Z", "2024-10-05T16:00:00Z",
            "2024-10-06T15:30:00Z");
    //  2024-04-07: 03:00 AEDT becomes 02:00 AEST at 16:00Z the day before
    EXPECT ("30 2 * * *", sydney, "2024-04-06T00:00:00Z", "2024-04-06T15:30:00Z",
            "2024-04-07T16:30:00Z");
}

//  Brute force by the clock: every second in a window whose local time (the
//  C library's, through TZ) matches is a fire time, and nothing else is.
static void
test_by_clock_matches_brute_force (void **state)
{
    (void) state;
    const char *zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"};
    const char *exprs[] = {"*/7 */13 * * * *", "0 */20 * * * *", "15 59 * * * *"};
    const char *windows[] = {"2024-03-31T00:00:00Z", "2024-10-27T00:00:00Z",
                             "2024-03-10T05:00:00Z", "2024-11-03T04:00:00Z",
                             "2024-04-06T14:00:00Z", "2024-10-05T14:00:00Z"};
    char *old_tz = getenv ("TZ") ? strdup (getenv ("TZ")) : NULL;
    for (size_t z = 0; z < 3; z++) {
        setenv ("TZ", zones[z], 1);
        tzset ();
        for (size_t e = 0; e < 3; e++) {
            arb_cron_t *cron = s_cron (exprs[e], zones[z]);
            for (size_t w = 0; w < 6; w++) {
                int64_t start = (int64_t) (s_ms (windows[w]) / 1000);
                uint64_t next;
                assert_int_equal (arb_cron_next (cron, (uint64_t) start * 1000, &next), 0);
                for (int64_t t = start + 1; t < start + 4 * 3600; t++) {
                    time_t tt = (time_t) t;
                    struct tm tm;
                    localtime_r (&tt, &tm);
                    arb_tz_date_t date = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_wday};
                    bool fires = arb_cron_matches (cron, &date, tm.tm_hour, tm.tm_min, tm.tm_sec);
                    if (fires != ((uint64_t) t * 1000 == next))
                        fail_msg ("%s in %s at %" PRId64 ": matches %d, next %" PRIu64, exprs[e],
                                  zones[z], t, fires, next / 1000);
                    if (fires)
                        assert_int_equal (arb_cron_next (cron, next, &next), 0);
                }
            }
            arb_cron_destroy (&cron);
        }
    }
    if (old_tz)
        setenv ("TZ", old_tz, 1);
    else
        unsetenv ("TZ");
    tzset ();
    free (old_tz);
}

static void
test_last (void **state)
{
    (void) state;
    arb_cron_t *cron = s_cron ("* * * * * *", NULL);
    uint64_t last;
    uint64_t from = s_ms ("2024-05-01T00:00:00Z");
    assert_int_equal (arb_cron_last (cron, from, from + 3600 * 1000, &last), 0);
    assert_int_equal (last, from + 3600 * 1000);
    assert_int_equal (arb_cron_last (cron, from, from + 3600 * 1000 + 999, &last), 0);
    assert_int_equal (last, from + 3600 * 1000);
    //  a year of seconds: found in a few dozen searches
    assert_int_equal (arb_cron_last (cron, from, from + 366ull * 86400 * 1000 - 1, &last), 0);
    assert_int_equal (last, from + 366ull * 86400 * 1000 - 1000);
    assert_int_equal (arb_cron_last (cron, from, from + 999, &last), -1);
    assert_int_equal (arb_cron_last (cron, from, from, &last), -1);
    arb_cron_destroy (&cron);

    cron = s_cron ("0 9 * * mon-fri", "Europe/Berlin");
    assert_int_equal (
        arb_cron_last (cron, s_ms ("2024-05-01T00:00:00Z"), s_ms ("2024-05-06T06:59:59Z"), &last),
        0);
    assert_int_equal (last, s_ms ("2024-05-03T07:00:00Z"));
    assert_int_equal (
        arb_cron_last (cron, s_ms ("2024-05-03T07:00:00Z"), s_ms ("2024-05-06T06:59:59Z"), &last),
        -1);
    arb_cron_destroy (&cron);
}

//  ---------------------------------------------------------------------
//  Zones

//  Offsets of a zone against the C library's at many instants, 1970-2300.
static void
s_check_zone (const char *name)
{
    char why[256];
    arb_tz_t *tz = arb_tz_new (name, why, sizeof (why));
    if (!tz)
        fail_msg ("%s: %s", name, why);
    setenv ("TZ", name, 1);
    tzset ();
    for (int64_t t = 0; t < 10413792000ll; t += 2 * 86400 + 3607) {
        time_t tt = (time_t) t;
        struct tm tm;
        localtime_r (&tt, &tm);
        arb_tz_span_t span;
        arb_tz_lookup (tz, t, &span);
        if (span.offset != tm.tm_gmtoff)
            fail_msg ("%s at %" PRId64 ": offset %d, libc says %ld", name, t, span.offset,
                      tm.tm_gmtoff);
        assert_true (span.prev <= t && t < span.next);
        if (span.prev != INT64_MIN)
            assert_int_not_equal (arb_tz_offset (tz, span.prev - 1), span.offset);
    }
    arb_tz_destroy (&tz);
}

static void
test_zones_agree_with_libc (void **state)
{
    (void) state;
    char *old_tz = getenv ("TZ") ? strdup (getenv ("TZ")) : NULL;
    const char *names[] = {"Europe/Berlin",
                           "America/New_York",
                           "Australia/Sydney",
                           "Australia/Lord_Howe",
                           "Europe/Dublin",
                           "Africa/Casablanca",
                           "Pacific/Chatham",
                           "America/Sao_Paulo",
                           "Asia/Kolkata",
                           "America/St_Johns",
                           "UTC",
                           "Etc/GMT+5"};
    for (size_t i = 0; i < sizeof (names) / sizeof (names[0]); i++)
        s_check_zone (names[i]);
    if (old_tz)
        setenv ("TZ", old_tz, 1);
    else
        unsetenv ("TZ");
    tzset ();
    free (old_tz);
}

static void
test_rule_zones (void **state)
{
    (void) state;
    char why[256];
    arb_tz_t *rule = arb_tz_new_rule ("EST5EDT,M3.2.0,M11.1.0", why, sizeof (why));
    assert_non_null (rule);
    arb_tz_t *file = arb_tz_new ("America/New_York", why, sizeof (why));
    assert_non_null (file);
    for (int64_t t = s_ms ("2008-01-01T00:00:00Z") / 1000; t < 5000000000ll; t += 86400 + 3607)
        assert_int_equal (arb_tz_offset (rule, t), arb_tz_offset (file, t));
    arb_tz_span_t span;
    arb_tz_lookup (rule, (int64_t) (s_ms ("2030-06-01T00:00:00Z") / 1000), &span);
    assert_int_equal (span.offset, -4 * 3600);
    assert_int_equal (span.prev, s_ms ("2030-03-10T07:00:00Z") / 1000);
    assert_int_equal (span.next, s_ms ("2030-11-03T06:00:00Z") / 1000);
    arb_tz_destroy (&rule);
    arb_tz_destroy (&file);

    //  the forms a footer may take
    const char *good[] = {"UTC0",
                          "<+0530>-5:30",
                          "IST-1GMT0,M10.5.0,M3.5.0/1",
                          "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
                          "EST5EDT,0/0,J365/25",
                          "AAA3BBB2:30,J60/2:00:00,100/167"};
    for (size_t i = 0; i < sizeof (good) / sizeof (good[0]); i++) {
        rule = arb_tz_new_rule (good[i], why, sizeof (why));
        if (!rule)
            fail_msg ("%s refused: %s", good[i], why);
        for (int64_t t = 0; t < 4000000000ll; t += 86400 * 3 + 11) {
            arb_tz_lookup (rule, t, &span);
            assert_true (span.prev <= t && t < span.next);
        }
        arb_tz_destroy (&rule);
    }
    const char *bad[] = {"",
                         "EST",
                         "EST5EDT",
                         "ES5",
                         "EST5EDT,M3.2.0",
                         "EST25",
                         "EST5EDT,M13.1.0,M11.1.0",
                         "EST5EDT,M3.6.0,M11.1.0",
                         "<AB>5",
                         "EST5EDT,J0,J100",
                         "EST5EDT,M3.2.0/168,M11.1.0",
                         "EST5:7"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        rule = arb_tz_new_rule (bad[i], why, sizeof (why));
        if (rule)
            fail_msg ("'%s' accepted", bad[i]);
    }
}

static void
test_tzif_refusals (void **state)
{
    (void) state;
    char why[256];
    FILE *file = fopen ("/usr/share/zoneinfo/Europe/Berlin", "rb");
    assert_non_null (file);
    uint8_t data[8192];
    size_t size = fread (data, 1, sizeof (data), file);
    fclose (file);
    arb_tz_t *tz = arb_tz_new_tzif ("Berlin", data, size, why, sizeof (why));
    assert_non_null (tz);
    assert_string_equal (arb_tz_name (tz), "Berlin");
    arb_tz_destroy (&tz);
    //  every cut of the file is refused, or still a zone (a cut in the
    //  footer's rule only drops the rule)
    for (size_t cut = 0; cut < size; cut++) {
        tz = arb_tz_new_tzif ("cut", data, cut, why, sizeof (why));
        arb_tz_destroy (&tz);
    }
    tz = arb_tz_new_tzif ("cut", data, size - 1, why, sizeof (why));
    assert_null (tz);
    assert_string_equal (why, "time zone 'cut': TZif footer missing");
    tz = arb_tz_new_tzif ("cut", data, 100, why, sizeof (why));
    assert_null (tz);
    assert_string_equal (why, "time zone 'cut': TZif data cut short");
    data[4] = '9';
    tz = arb_tz_new_tzif ("v9", data, size, why, sizeof (why));
    assert_null (tz);
    assert_string_equal (why, "time zone 'v9': unknown TZif version");

    //  TZDIR names the zone folder
    char *old = getenv ("TZDIR") ? strdup (getenv ("TZDIR")) : NULL;
    setenv ("TZDIR", "/nonexistent", 1);
    tz = arb_tz_new ("Europe/Berlin", why, sizeof (why));
    assert_null (tz);
    tz = arb_tz_new ("UTC", why, sizeof (why));  //  built in
    assert_non_null (tz);
    assert_int_equal (arb_tz_offset (tz, 1700000000), 0);
    arb_tz_destroy (&tz);
    if (old)
        setenv ("TZDIR", old, 1);
    else
        unsetenv ("TZDIR");
    free (old);
}

static void
test_calendar (void **state)
{
    (void) state;
    arb_tz_date_t date;
    for (int64_t days = -800000; days < 3000000; days += 13) {
        arb_tz_date (days, &date);
        assert_int_equal (arb_tz_days (date.year, date.month, date.day), days);
        assert_true (date.day >= 1 && date.day <= arb_tz_month_days (date.year, date.month));
        assert_int_equal (date.weekday, ((days % 7) + 7 + 4) % 7);
    }
    arb_tz_date (0, &date);
    assert_true (date.year == 1970 && date.month == 1 && date.day == 1 && date.weekday == 4);
    assert_int_equal (arb_tz_month_days (2000, 2), 29);
    assert_int_equal (arb_tz_month_days (2100, 2), 28);
    assert_int_equal (arb_tz_month_days (2024, 2), 29);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_steps_ranges_lists),
        cmocka_unit_test (test_seconds_field),
        cmocka_unit_test (test_names_and_macros),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_february_29),
        cmocka_unit_test (test_day_of_month_or_week),
        cmocka_unit_test (test_far_searches_end),
        cmocka_unit_test (test_berlin_dst),
        cmocka_unit_test (test_new_york_dst),
        cmocka_unit_test (test_southern_dst),
        cmocka_unit_test (test_by_clock_matches_brute_force),
        cmocka_unit_test (test_last),
        cmocka_unit_test (test_zones_agree_with_libc),
        cmocka_unit_test (test_rule_zones),
        cmocka_unit_test (test_tzif_refusals),
        cmocka_unit_test (test_calendar),
    };
    return cmocka_run_group_tests_name ("cron", tests, NULL, NULL);
}
