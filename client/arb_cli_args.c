/*  arb_cli_args.c — parsing of the arbiter CLI's option values.

    Hand-written rather than strtod/strptime: strtod takes "1e9", "inf",
    "0x10" and leading blanks, and rounds binary fractions ("0.29" * 1000 is
    289.99...); strptime depends on the locale and TZ and knows no "Z" or
    fractions. Here a duration is digits, an optional '.', digits, turned
    into ms exactly; a time is converted with a calendar formula in UTC.
*/

#include "arb_cli_args.h"
#include "arb_proto.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static int s_fail (arb_cli_err_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_fail (arb_cli_err_t *err, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (err->text, sizeof (err->text), fmt, args);
    va_end (args);
    return -1;
}

//  The user's text, cut short enough to quote in a one-line message,
//  with '.' for what would not print (a control character in a message
//  could drive the terminal).
static const char *
s_quote (const char *text, char *buf, size_t size)
{
    size_t n = 0, len = strlen (text);
    for (; n < len && n + 1 < size; n++) {
        unsigned char c = (unsigned char) text[n];
        buf[n] = c < 0x20 || c == 0x7f ? '.' : (char) c;
    }
    buf[n] = 0;
    if (n < len && size > 4)
        memcpy (buf + size - 4, "...", 4);
    return buf;
}

//  A limit in ms, as people write it: "366 days", "30 days", "1.5 s".
static void
s_limit_text (uint64_t ms, char *buf, size_t size)
{
    if (ms >= ARB_DAY_MS && ms % ARB_DAY_MS == 0)
        snprintf (buf, size, "%llu days", (unsigned long long) (ms / ARB_DAY_MS));
    else
        snprintf (buf, size, "%.3g s", ms / 1000.0);
}

//  The len bytes at p, digits [. digits] with a digit at least, as a
//  number of units of unit_ms each, into ms rounded half up to the ms,
//  but a value above 0 is never less than 1 ms: 0 means none (no timeout,
//  no delay), and "0.0004" must not turn a timeout into none.
//  Exact: the fraction is multiplied by the unit digit by digit, from its
//  last digit, so "0.0001d" is 8.64 s (8640 ms), not the 0.1 ms of a day
//  rounded to 0 and then multiplied. Returns 0, or -1 if malformed;
//  *over when the value exceeds max_ms (*ms is then not set).
static int
s_number (const char *p, size_t len, uint64_t unit_ms, uint64_t max_ms, uint64_t *ms, bool *over)
{
    const char *end = p + len;
    uint64_t whole = 0, limit = max_ms / unit_ms;
    size_t digits = 0;
    *over = false;
    for (; p < end && isdigit ((unsigned char) *p); p++, digits++) {
        if (whole > limit)
            *over = true;  //  keep scanning to tell malformed from big
        else
            //  whole <= max_ms / 1000: cannot overflow
            whole = whole * 10 + (uint64_t) (*p - '0');
    }
    const char *frac = NULL, *frac_end = NULL;
    bool positive = whole > 0;
    if (p < end && *p == '.') {
        frac = ++p;
        for (; p < end && isdigit ((unsigned char) *p); p++, digits++)
            positive |= *p != '0';
        frac_end = p;
    }
    if (digits == 0 || p != end)
        return -1;
    if (*over || whole > limit) {
        *over = true;
        return 0;
    }
    //  fraction * unit_ms: carry is its whole part, digit the first
    //  digit of its own fraction, which rounds
    uint64_t carry = 0, digit = 0;
    for (const char *d = frac_end; frac && d > frac; d--) {
        uint64_t t = (uint64_t) (d[-1] - '0') * unit_ms + carry;
        carry = t / 10;
        digit = t % 10;
    }
    uint64_t part = carry + (digit >= 5);  //  at most unit_ms
    uint64_t value = whole * unit_ms;      //  at most max_ms
    if (positive && value == 0 && part == 0)
        part = 1;  //  below 1 ms: 1 ms, not none
    if (part > max_ms - value) {
        *over = true;
        return 0;
    }
    *ms = value + part;
    return 0;
}

int
arb_cli_parse_seconds (const char *text, uint64_t max_ms, uint64_t *ms, arb_cli_err_t *err)
{
    char quoted[48], limit[48];
    bool over;
    uint64_t unused;
    if (*text == '-' && s_number (text + 1, strlen (text + 1), 1000, max_ms, &unused, &over) == 0)
        return s_fail (err, "must be 0 or more seconds, not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (s_number (text, strlen (text), 1000, max_ms, ms, &over))
        return s_fail (err, "expected seconds, like 30 or 0.25, not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (over) {
        s_limit_text (max_ms, limit, sizeof (limit));
        return s_fail (err, "%s s is over the limit of %s", s_quote (text, quoted, sizeof (quoted)),
                       limit);
    }
    return 0;
}

static int
s_not_a_duration (const char *text, arb_cli_err_t *err)
{
    char quoted[48];
    return s_fail (err, "expected a duration, like 30, 1.5h or 7d (s, m, h, d), not '%s'",
                   s_quote (text, quoted, sizeof (quoted)));
}

int
arb_cli_parse_duration (const char *text, uint64_t max_ms, uint64_t *ms, arb_cli_err_t *err)
{
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}};
    size_t length = strlen (text);
    char quoted[48], limit[48];
    uint64_t unit_ms = 0;
    for (size_t i = 0; length && i < sizeof (units) / sizeof (units[0]); i++)
        if (text[length - 1] == units[i].unit)
            unit_ms = units[i].ms;
    bool over;
    if (!unit_ms) {
        //  a number alone is seconds (a negative one is told so); anything
        //  else is told of the units too
        uint64_t unused;
        if (*text != '-' && s_number (text, length, 1000, max_ms, &unused, &over))
            return s_not_a_duration (text, err);
        return arb_cli_parse_seconds (text, max_ms, ms, err);
    }
    if (s_number (text, length - 1, unit_ms, max_ms, ms, &over))
        return s_not_a_duration (text, err);
    if (over) {
        s_limit_text (max_ms, limit, sizeof (limit));
        return s_fail (err, "%s is over the limit of %s", s_quote (text, quoted, sizeof (quoted)),
                       limit);
    }
    return 0;
}

//  Digits only into *value; *over when beyond max.
static int
s_digits (const char *p, uint64_t max, uint64_t *value, bool *over)
{
    *value = 0;
    *over = false;
    if (!isdigit ((unsigned char) *p))
        return -1;
    for (; isdigit ((unsigned char) *p); p++) {
        uint64_t digit = (uint64_t) (*p - '0');
        if (*over || *value > max / 10 || digit > max - *value * 10)
            *over = true;
        else
            *value = *value * 10 + digit;
    }
    return *p ? -1 : 0;
}

int
arb_cli_parse_uint (const char *text, uint64_t max, uint64_t *value, arb_cli_err_t *err)
{
    char quoted[48];
    bool over;
    if (s_digits (text, max, value, &over))
        return s_fail (err, "expected a whole number from 0 to %llu, not '%s'",
                       (unsigned long long) max, s_quote (text, quoted, sizeof (quoted)));
    if (over)
        return s_fail (err, "%s is over the limit of %llu", s_quote (text, quoted, sizeof (quoted)),
                       (unsigned long long) max);
    return 0;
}

int
arb_cli_parse_int (const char *text, int64_t min, int64_t max, int64_t *value, arb_cli_err_t *err)
{
    char quoted[48];
    bool negative = *text == '-';
    const char *digits = (*text == '-' || *text == '+') ? text + 1 : text;
    uint64_t magnitude;
    bool over;
    //  the largest magnitude of the sign; each bound checked after, since
    //  either may be on the other side of 0 ([1, 100], [-10, -5])
    uint64_t bound = negative ? (uint64_t) 0 - (uint64_t) min : max < 0 ? 0 : (uint64_t) max;
    int64_t number = 0;
    bool ok = !(negative && min >= 0) && s_digits (digits, bound, &magnitude, &over) == 0 && !over;
    if (ok) {
        number = negative ? (int64_t) ((uint64_t) 0 - magnitude) : (int64_t) magnitude;
        ok = number >= min && number <= max;
    }
    if (!ok)
        return s_fail (err, "expected a whole number from %lld to %lld, not '%s'", (long long) min,
                       (long long) max, s_quote (text, quoted, sizeof (quoted)));
    *value = number;
    return 0;
}

//  ---------------------------------------------------------------------
//  Times.

//  Days from 1970-01-01 to a civil date (proleptic Gregorian), after
//  Howard Hinnant's days_from_civil.
static int64_t
s_days_from_civil (int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static unsigned
s_days_in_month (unsigned year, unsigned month)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

//  Reads exactly n digits.
static bool
s_fixed (const char **p, int n, unsigned *value)
{
    *value = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit ((unsigned char) **p))
            return false;
        *value = *value * 10 + (unsigned) (**p - '0');
    }
    return true;
}

static bool
s_expect (const char **p, const char *one_of)
{
    if (!**p || !strchr (one_of, **p))
        return false;
    (*p)++;
    return true;
}

//  RFC 3339 date-time into Unix ms; false if malformed or out of range.
static bool
s_rfc3339 (const char *p, int64_t *ms)
{
    unsigned year, month, day, hour, minute, second;
    if (!s_fixed (&p, 4, &year) || !s_expect (&p, "-") || !s_fixed (&p, 2, &month)
        || !s_expect (&p, "-") || !s_fixed (&p, 2, &day) || !s_expect (&p, "Tt ")
        || !s_fixed (&p, 2, &hour) || !s_expect (&p, ":") || !s_fixed (&p, 2, &minute)
        || !s_expect (&p, ":") || !s_fixed (&p, 2, &second))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > s_days_in_month (year, month) || hour > 23
        || minute > 59 || second > 60)
        return false;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        if (!isdigit ((unsigned char) *p))
            return false;
        for (int scale = 100; isdigit ((unsigned char) *p); p++, scale /= 10)
            frac += (*p - '0') * scale;  //  past the ms, digits are dropped
    }
    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        unsigned oh, om;
        if (!s_fixed (&p, 2, &oh) || !s_expect (&p, ":") || !s_fixed (&p, 2, &om) || oh > 23
            || om > 59)
            return false;
        offset_min = sign * (int64_t) (oh * 60 + om);
    }
    else
        return false;
    if (*p)
        return false;
    int64_t seconds = s_days_from_civil (year, month, day) * 86400 + hour * 3600 + minute * 60
                      + second - offset_min * 60;
    *ms = seconds * 1000 + frac;
    return true;
}

int
arb_cli_parse_time (const char *text, uint64_t now_ms, uint64_t *at_ms, arb_cli_err_t *err)
{
    char quoted[48];
    int64_t ms;
    bool over = false;
    uint64_t unix_ms;
    uint64_t latest =
        now_ms < UINT64_MAX - ARB_DELAY_MAX_MS ? now_ms + ARB_DELAY_MAX_MS : UINT64_MAX;
    if (s_number (text, strlen (text), 1000, latest < INT64_MAX ? latest : INT64_MAX, &unix_ms,
                  &over)
        == 0)
        ms = over ? INT64_MAX : (int64_t) unix_ms;
    else if (!s_rfc3339 (text, &ms))
        return s_fail (err,
                       "expected an RFC 3339 time like 2026-11-23T10:00:00Z (or +01:00) or "
                       "Unix seconds, not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (ms < 0)
        return s_fail (err, "'%s' is before 1970", s_quote (text, quoted, sizeof (quoted)));
    if (over || (uint64_t) ms > latest)
        return s_fail (err, "'%s' is more than %llu days ahead",
                       s_quote (text, quoted, sizeof (quoted)),
                       (unsigned long long) (ARB_DELAY_MAX_MS / ARB_DAY_MS));
    *at_ms = (uint64_t) ms;
    return 0;
}

//  ---------------------------------------------------------------------
//  Backoff.

int
arb_cli_parse_backoff (
    const char *text, uint32_t *kind, uint64_t *ms, uint64_t *cap_ms, arb_cli_err_t *err)
{
    char quoted[48];
    arb_cli_err_t inner;
    *ms = *cap_ms = 0;
    if (strcmp (text, "none") == 0) {
        *kind = ARB_BACKOFF_NONE;
        return 0;
    }
    if (strncmp (text, "fixed:", 6) == 0) {
        *kind = ARB_BACKOFF_FIXED;
        if (arb_cli_parse_seconds (text + 6, ARB_BACKOFF_MAX_MS, ms, &inner))
            return s_fail (err, "fixed: %s", inner.text);
        return 0;
    }
    const char *comma = strchr (text, ',');
    if (strncmp (text, "exp:", 4) != 0 || !comma)
        return s_fail (err, "expected fixed:SECONDS or exp:BASE,CAP (or none), not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    *kind = ARB_BACKOFF_EXP;
    //  all of BASE: a copy cut short could read as a number when the
    //  text is none ("exp:<62 digits>x,5")
    char *base = strndup (text + 4, (size_t) (comma - text - 4));
    assert (base);
    char cap_quoted[48];
    int rc = 0;
    if (arb_cli_parse_seconds (base, ARB_BACKOFF_MAX_MS, ms, &inner))
        rc = s_fail (err, "exp: BASE: %s", inner.text);
    else if (arb_cli_parse_seconds (comma + 1, ARB_BACKOFF_MAX_MS, cap_ms, &inner))
        rc = s_fail (err, "exp: CAP: %s", inner.text);
    else if (*ms == 0)
        rc = s_fail (err, "exp: BASE must be more than 0 s");
    else if (*cap_ms < *ms)
        rc = s_fail (err, "exp: CAP (%s s) is below BASE (%s s)",
                     s_quote (comma + 1, cap_quoted, sizeof (cap_quoted)),
                     s_quote (base, quoted, sizeof (quoted)));
    free (base);
    return rc;
}

//  ---------------------------------------------------------------------
//  Names.

int
arb_cli_parse_name (const char *text, arb_cli_err_t *err)
{
    size_t len = strlen (text);
    if (len == 0)
        return s_fail (err, "must not be empty");
    if (len > ARB_NAME_MAX)
        return s_fail (err, "%zu bytes, over the %d-byte limit", len, ARB_NAME_MAX);
    char why[80];
    if (arb_name_check (text, len, why, sizeof (why)))
        return s_fail (err, "%s (names are printable UTF-8)", why);
    return 0;
}
