/*  arb_cli_args.c — parsing of the arbiter CLI's option values.

    Hand-written rather than strtod/strptime: strtod takes "1e9", "inf",
    "0x10" and leading blanks, and rounds binary fractions ("0.29" * 1000 is
    289.99...); strptime depends on the locale and TZ and knows no "Z" or
    fractions. Here a duration is digits, an optional '.', digits, turned
    into ms exactly; a time is converted with a calendar formula in UTC.
*/

#include "arb_cli_args.h"
#include "arb_proto.h"

#include <ctype.h>
#include <stdarg.h>
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

//  The user's text, cut short enough to quote in a one-line message.
static const char *
s_quote (const char *text, char *buf, size_t size)
{
    snprintf (buf, size, "%s", text);
    if (strlen (text) >= size && size > 4)
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

//  Digits [. digits] into ms. Returns 0, or -1 if malformed; *over when the
//  value exceeds max_ms.
static int
s_seconds (const char *p, uint64_t max_ms, uint64_t *ms, bool *over)
{
    uint64_t whole = 0;
    size_t digits = 0;
    *over = false;
    for (; isdigit ((unsigned char) *p); p++, digits++) {
        if (whole > max_ms / 1000 + 1)
            *over = true;  //  keep scanning to tell malformed from big
        else
            whole = whole * 10 + (uint64_t) (*p - '0');
    }
    uint64_t frac = 0;  //  four digits: ms and one to round with
    if (*p == '.') {
        p++;
        int scale = 1000;
        for (; isdigit ((unsigned char) *p); p++, digits++) {
            frac += (uint64_t) (*p - '0') * (uint64_t) scale;
            scale /= 10;
        }
    }
    if (digits == 0 || *p)
        return -1;
    if (!*over) {
        //  whole <= max_ms / 1000 + 1, so this cannot overflow
        uint64_t value = whole * 1000 + (frac + 5) / 10;
        *over = value > max_ms;
        *ms = value;
    }
    return 0;
}

int
arb_cli_parse_seconds (const char *text, uint64_t max_ms, uint64_t *ms, arb_cli_err_t *err)
{
    char quoted[48], limit[48];
    bool over;
    if (*text == '-' && s_seconds (text + 1, max_ms, ms, &over) == 0)
        return s_fail (err, "must be 0 or more seconds, not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (s_seconds (text, max_ms, ms, &over))
        return s_fail (err, "expected seconds, like 30 or 0.25, not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (over) {
        s_limit_text (max_ms, limit, sizeof (limit));
        return s_fail (err, "%s s is over the limit of %s", s_quote (text, quoted, sizeof (quoted)),
                       limit);
    }
    return 0;
}

int
arb_cli_parse_duration (const char *text, uint64_t max_ms, uint64_t *ms, arb_cli_err_t *err)
{
    static const struct {
        char unit;
        uint64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t length = strlen (text);
    char number[48], quoted[48], limit[48];
    uint64_t seconds = 0;
    for (size_t i = 0; length && i < sizeof (units) / sizeof (units[0]); i++)
        if (text[length - 1] == units[i].unit)
            seconds = units[i].seconds;
    if (!seconds)
        return arb_cli_parse_seconds (text, max_ms, ms, err);
    snprintf (number, sizeof (number), "%.*s", (int) length - 1, text);
    bool over;
    //  the number, in ms of its unit, may be up to max_ms / seconds
    if (length > sizeof (number) || s_seconds (number, max_ms / seconds + 1, ms, &over))
        return s_fail (err, "expected a duration, like 30, 1.5h or 7d (s, m, h, d), not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (over || *ms > max_ms / seconds) {
        s_limit_text (max_ms, limit, sizeof (limit));
        return s_fail (err, "%s is over the limit of %s", s_quote (text, quoted, sizeof (quoted)),
                       limit);
    }
    *ms *= seconds;
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
    uint64_t bound = negative ? (uint64_t) 0 - (uint64_t) min : (uint64_t) max;
    if ((negative && min >= 0) || s_digits (digits, bound, &magnitude, &over) || over)
        return s_fail (err, "expected a whole number from %lld to %lld, not '%s'", (long long) min,
                       (long long) max, s_quote (text, quoted, sizeof (quoted)));
    *value = negative ? (int64_t) ((uint64_t) 0 - magnitude) : (int64_t) magnitude;
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
    bool over;
    uint64_t unix_ms;
    if (s_seconds (text, UINT64_MAX / 2, &unix_ms, &over) == 0 && !over)
        ms = (int64_t) unix_ms;
    else if (!s_rfc3339 (text, &ms))
        return s_fail (err,
                       "expected an RFC 3339 time like 2026-11-23T10:00:00Z (or +01:00) or "
                       "Unix seconds, not '%s'",
                       s_quote (text, quoted, sizeof (quoted)));
    if (ms < 0)
        return s_fail (err, "'%s' is before 1970", s_quote (text, quoted, sizeof (quoted)));
    if ((uint64_t) ms > now_ms + ARB_DELAY_MAX_MS)
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
    char base[64];
    snprintf (base, sizeof (base), "%.*s", (int) (comma - text - 4), text + 4);
    if (arb_cli_parse_seconds (base, ARB_BACKOFF_MAX_MS, ms, &inner))
        return s_fail (err, "exp: BASE: %s", inner.text);
    if (arb_cli_parse_seconds (comma + 1, ARB_BACKOFF_MAX_MS, cap_ms, &inner))
        return s_fail (err, "exp: CAP: %s", inner.text);
    if (*ms == 0)
        return s_fail (err, "exp: BASE must be more than 0 s");
    if (*cap_ms < *ms)
        return s_fail (err, "exp: CAP (%s s) is below BASE (%s s)", comma + 1, base);
    return 0;
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
