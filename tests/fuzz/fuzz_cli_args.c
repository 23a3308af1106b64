/*  fuzz_cli_args.c — libFuzzer target for the CLI's value parsers
    (client/arb_cli_args.c): seconds, durations, whole numbers, integers,
    times, backoff policies and names.

    The input is a header of 18 bytes, then the text (up to a NUL, as in
    argv): byte 0 picks the parser, byte 1 its bounds (below 0x80 one of
    the bounds the CLI and the workflow files use, else the two 8-byte
    big-endian numbers A and B that follow it: max = A, or min and max =
    A and B in order, or now = A for times).

    Each parser is checked against a reference written here another way
    (128-bit arithmetic rather than digit by digit, timegm rather than a
    calendar formula), not only for crashes: a value it accepts is the
    exact value of the text, rounded to the ms as documented, and within
    its bound; a value it refuses is one the reference refuses too, and
    the refusal leaves a reason that prints. Seeds: tests/fuzz/corpus/cli_args.

        scons fuzz && build/fuzz/fuzz_cli_args -max_total_time=60 tests/fuzz/corpus/cli_args
*/

#include "arb_cli_args.h"
#include "arb_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef unsigned __int128 u128;

#define NOW_MS  1795000000000ull   //  2026-11-18, the "now" of times
#define HUGE_MS ((u128) 1 << 100)  //  stands for any value past every bound

//  Stops the run with the input's text, the parser and what went wrong.
static void
s_fail (const char *parser, const char *text, const char *what)
{
    fprintf (stderr, "fuzz_cli_args: %s ('%s'): %s\n", parser, text, what);
    abort ();
}

//  A refusal's reason: not empty, and nothing in it that would not print
//  (UTF-8 is fine: names may hold it).
static void
s_check_reason (const char *parser, const char *text, const arb_cli_err_t *err)
{
    size_t len = strnlen (err->text, sizeof (err->text));
    if (len == 0 || len == sizeof (err->text))
        s_fail (parser, text, "refused without a reason");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) err->text[i];
        if (c < 0x20 || c == 0x7f)
            s_fail (parser, text, "the reason holds a control character");
    }
}

//  ---------------------------------------------------------------------
//  The reference: a decimal number, digits [. digits] with a digit at
//  least, times unit_ms, rounded half up, and 1 ms if that is 0 but a
//  digit is not (above 0 is never none). Exact as long as the fraction
//  has at most 30 digits; past them *ambiguous tells when the digits
//  dropped could still move the rounding (the value is then v or v + 1).
//  -1 if malformed; values past 10^25 units read as HUGE_MS.

static int
s_ref_decimal (const char *p, size_t len, uint64_t unit_ms, u128 *ms, bool *ambiguous)
{
    const char *end = p + len;
    u128 whole = 0, frac = 0, scale = 1;
    size_t digits = 0, frac_digits = 0;
    bool huge = false, more = false, positive = false;
    *ambiguous = false;
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
        positive |= *p != '0';
        if (whole > (u128) 10000000000000ull * 1000000000000ull)  //  past 10^25
            huge = true;
        else
            whole = whole * 10 + (u128) (*p - '0');
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
            positive |= *p != '0';
            if (frac_digits < 30) {
                frac = frac * 10 + (u128) (*p - '0');
                scale *= 10;
                frac_digits++;
            }
            else if (*p != '0')
                more = true;
        }
    }
    if (digits == 0 || p != end)
        return -1;
    if (huge) {
        *ms = HUGE_MS;
        return 0;
    }
    u128 product = frac * unit_ms;
    u128 part = product / scale, rest = product % scale;
    bool up = rest * 2 >= scale;
    //  the dropped digits add less than unit_ms / scale
    if (more && !up && (rest + unit_ms) * 2 >= scale)
        *ambiguous = true;
    *ms = whole * unit_ms + part + (up ? 1 : 0);
    if (*ms == 0 && positive) {
        *ms = 1;
        *ambiguous = false;
    }
    return 0;
}

//  Seconds, or a duration with its unit, as the reference reads them.
//  Returns -1 if malformed (a sign, as "-1", is malformed here).
static int
s_ref_duration (const char *text, bool units, u128 *ms, bool *ambiguous)
{
    size_t len = strlen (text);
    uint64_t unit_ms = 1000;
    if (units && len > 0) {
        switch (text[len - 1]) {
            case 's':
                unit_ms = 1000, len--;
                break;
            case 'm':
                unit_ms = 60000, len--;
                break;
            case 'h':
                unit_ms = 3600000, len--;
                break;
            case 'd':
                unit_ms = 86400000, len--;
                break;
        }
    }
    return s_ref_decimal (text, len, unit_ms, ms, ambiguous);
}

static void
s_check_value (
    const char *parser, const char *text, int rc, uint64_t got, u128 want, bool ambiguous, u128 max)
{
    if (want > max) {
        if (rc == 0)
            s_fail (parser, text, "accepted a value over its bound");
        return;
    }
    if (rc != 0)
        s_fail (parser, text, "refused a value within its bound");
    if (got > max)
        s_fail (parser, text, "gave a value over its bound");
    if (!(got == want || (ambiguous && got == want + 1)))
        s_fail (parser, text, "gave another value than the text's");
}

static void
s_seconds (const char *text, uint64_t max_ms, bool units)
{
    const char *parser = units ? "duration" : "seconds";
    uint64_t ms = 0;
    arb_cli_err_t err = {{0}};
    int rc = units ? arb_cli_parse_duration (text, max_ms, &ms, &err)
                   : arb_cli_parse_seconds (text, max_ms, &ms, &err);
    u128 want;
    bool ambiguous;
    if (rc)
        s_check_reason (parser, text, &err);
    if (s_ref_duration (text, units, &want, &ambiguous)) {
        if (rc == 0)
            s_fail (parser, text, "accepted what is no number");
        return;
    }
    s_check_value (parser, text, rc, ms, want, ambiguous, max_ms);
}

//  ---------------------------------------------------------------------
//  Integers.

static void
s_uint (const char *text, uint64_t max)
{
    uint64_t value = 0;
    arb_cli_err_t err = {{0}};
    int rc = arb_cli_parse_uint (text, max, &value, &err);
    if (rc)
        s_check_reason ("uint", text, &err);
    u128 want;
    bool ambiguous;
    if (strchr (text, '.') || s_ref_decimal (text, strlen (text), 1, &want, &ambiguous)) {
        if (rc == 0)
            s_fail ("uint", text, "accepted what is no whole number");
        return;
    }
    s_check_value ("uint", text, rc, value, want, false, max);
}

static void
s_int (const char *text, int64_t min, int64_t max)
{
    int64_t value = 0;
    arb_cli_err_t err = {{0}};
    int rc = arb_cli_parse_int (text, min, max, &value, &err);
    if (rc)
        s_check_reason ("int", text, &err);
    bool negative = *text == '-';
    const char *digits = (*text == '-' || *text == '+') ? text + 1 : text;
    u128 magnitude;
    bool ambiguous;
    if (strchr (digits, '.')
        || s_ref_decimal (digits, strlen (digits), 1, &magnitude, &ambiguous)) {
        if (rc == 0)
            s_fail ("int", text, "accepted what is no whole number");
        return;
    }
    if (rc == 0 && (value < min || value > max))
        s_fail ("int", text, "gave a value out of its bounds");
    //  the value in [min, max] (a '-' is allowed only where negatives are)
    bool fits = negative ? min < 0 && magnitude <= (u128) ((uint64_t) 0 - (uint64_t) min)
                               && -(__int128) magnitude <= max
                         : magnitude <= (u128) INT64_MAX && (__int128) magnitude >= min
                               && (__int128) magnitude <= max;
    if (fits != (rc == 0))
        s_fail ("int", text,
                fits ? "refused a value within its bounds" : "accepted a value out of its bounds");
    if (rc == 0
        && (negative ? (u128) ((uint64_t) 0 - (uint64_t) value) : (u128) value) != magnitude)
        s_fail ("int", text, "gave another value than the text's");
}

//  ---------------------------------------------------------------------
//  Times: RFC 3339 by sscanf and timegm, or Unix seconds.

static bool
s_fixed (const char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

//  RFC 3339 into Unix ms (the fraction cut to the ms, as documented);
//  false if malformed.
static bool
s_ref_rfc3339 (const char *text, __int128 *ms)
{
    //  YYYY-MM-DDTHH:MM:SS, at fixed places
    if (strlen (text) < 20 || !s_fixed (text, 4) || text[4] != '-' || !s_fixed (text + 5, 2)
        || text[7] != '-' || !s_fixed (text + 8, 2) || !strchr ("Tt ", text[10]) || !text[10]
        || !s_fixed (text + 11, 2) || text[13] != ':' || !s_fixed (text + 14, 2) || text[16] != ':'
        || !s_fixed (text + 17, 2))
        return false;
    struct tm tm = {0};
    tm.tm_year = atoi (text) - 1900;
    tm.tm_mon = atoi (text + 5) - 1;
    tm.tm_mday = atoi (text + 8);
    tm.tm_hour = atoi (text + 11);
    tm.tm_min = atoi (text + 14);
    int second = atoi (text + 17);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_hour > 23 || tm.tm_min > 59
        || second > 60)
        return false;
    struct tm check = tm;
    time_t t = timegm (&check);
    if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon)
        return false;  //  no such day: timegm moved it
    t += second;
    const char *p = text + 19;
    __int128 frac = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        int place = 0;
        for (; *p >= '0' && *p <= '9'; p++, place++)
            if (place < 3)
                frac += (*p - '0') * (place == 0 ? 100 : place == 1 ? 10 : 1);
    }
    int offset = 0;
    if ((*p == 'Z' || *p == 'z') && !p[1])
        offset = 0;
    else if ((*p == '+' || *p == '-') && s_fixed (p + 1, 2) && p[3] == ':' && s_fixed (p + 4, 2)
             && !p[6]) {
        int hours = atoi (p + 1), minutes = atoi (p + 4);
        if (hours > 23 || minutes > 59)
            return false;
        offset = (*p == '-' ? -1 : 1) * (hours * 60 + minutes);
    }
    else
        return false;
    *ms = ((__int128) t - offset * 60) * 1000 + frac;
    return true;
}

static void
s_time (const char *text, uint64_t now_ms)
{
    uint64_t at = 0;
    arb_cli_err_t err = {{0}};
    int rc = arb_cli_parse_time (text, now_ms, &at, &err);
    if (rc)
        s_check_reason ("time", text, &err);
    u128 unix_ms;
    bool ambiguous = false;
    __int128 want;
    if (s_ref_decimal (text, strlen (text), 1000, &unix_ms, &ambiguous) == 0)
        want = (__int128) unix_ms;
    else if (!s_ref_rfc3339 (text, &want)) {
        if (rc == 0)
            s_fail ("time", text, "accepted what is no time");
        return;
    }
    __int128 latest = (__int128) now_ms + ARB_DELAY_MAX_MS;
    bool fits = want >= 0 && want <= latest;
    if (ambiguous && want + 1 > latest)
        return;  //  either answer is right
    if (fits != (rc == 0))
        s_fail ("time", text,
                fits ? "refused a time within its bounds" : "accepted a time out of its bounds");
    if (rc == 0 && !((__int128) at == want || (ambiguous && (__int128) at == want + 1)))
        s_fail ("time", text, "gave another time than the text's");
}

//  ---------------------------------------------------------------------
//  Backoff policies: split here, each part read by the reference.

static void
s_backoff (const char *text)
{
    uint32_t kind = 99;
    uint64_t ms = 1, cap = 1;
    arb_cli_err_t err = {{0}};
    int rc = arb_cli_parse_backoff (text, &kind, &ms, &cap, &err);
    if (rc)
        s_check_reason ("backoff", text, &err);
    u128 want_ms = 0, want_cap = 0;
    bool ambiguous = false, ambiguous_cap = false, ok;
    uint32_t want_kind;
    if (strcmp (text, "none") == 0) {
        want_kind = ARB_BACKOFF_NONE;
        ok = true;
    }
    else if (strncmp (text, "fixed:", 6) == 0) {
        want_kind = ARB_BACKOFF_FIXED;
        ok = s_ref_decimal (text + 6, strlen (text + 6), 1000, &want_ms, &ambiguous) == 0
             && want_ms + (ambiguous ? 1 : 0) <= ARB_BACKOFF_MAX_MS;
    }
    else if (strncmp (text, "exp:", 4) == 0 && strchr (text, ',')) {
        want_kind = ARB_BACKOFF_EXP;
        const char *comma = strchr (text, ',');
        ok = s_ref_decimal (text + 4, (size_t) (comma - text - 4), 1000, &want_ms, &ambiguous) == 0
             && s_ref_decimal (comma + 1, strlen (comma + 1), 1000, &want_cap, &ambiguous_cap) == 0
             && want_ms + (ambiguous ? 1 : 0) <= ARB_BACKOFF_MAX_MS
             && want_cap + (ambiguous_cap ? 1 : 0) <= ARB_BACKOFF_MAX_MS && want_ms > 0
             && want_cap >= want_ms + (ambiguous ? 1 : 0);
        if (ambiguous || ambiguous_cap)
            return;  //  too close to a bound to say
    }
    else {
        if (rc == 0)
            s_fail ("backoff", text, "accepted what is no policy");
        return;
    }
    if (ambiguous)
        return;
    if (ok != (rc == 0))
        s_fail ("backoff", text, ok ? "refused a valid policy" : "accepted an invalid policy");
    if (rc == 0 && (kind != want_kind || ms != want_ms || cap != want_cap))
        s_fail ("backoff", text, "gave another policy than the text's");
}

//  ---------------------------------------------------------------------
//  Names: 1..ARB_NAME_MAX bytes of UTF-8 without control characters.

static bool
s_ref_name (const uint8_t *p, size_t len)
{
    if (len == 0 || len > ARB_NAME_MAX)
        return false;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n;
        if (p[i] < 0x80)
            cp = p[i], n = 1;
        else if ((p[i] & 0xe0) == 0xc0)
            cp = p[i] & 0x1f, n = 2;
        else if ((p[i] & 0xf0) == 0xe0)
            cp = p[i] & 0x0f, n = 3;
        else if ((p[i] & 0xf8) == 0xf0)
            cp = p[i] & 0x07, n = 4;
        else
            return false;
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
            return false;  //  overlong, past Unicode, a surrogate
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return false;  //  C0, DEL, C1
        i += n;
    }
    return true;
}

static void
s_name (const char *text)
{
    arb_cli_err_t err = {{0}};
    int rc = arb_cli_parse_name (text, &err);
    if (rc)
        s_check_reason ("name", text, &err);
    bool ok = s_ref_name ((const uint8_t *) text, strlen (text));
    if (ok != (rc == 0))
        s_fail ("name", text, ok ? "refused a valid name" : "accepted an invalid name");
}

//  ---------------------------------------------------------------------

//  The bounds the CLI and workflow files give the parsers.
static const uint64_t s_bounds[] = {
    0,
    1,
    999,
    1000,
    ARB_DELAY_MAX_MS,
    ARB_TIMEOUT_MAX_MS,
    ARB_BACKOFF_MAX_MS,
    ARB_RETENTION_MAX_MS,
    ARB_RETRIES_MAX,
    INT32_MAX,
    UINT32_MAX,
    UINT64_MAX / 2,
    UINT64_MAX - 1,
    UINT64_MAX,
};

static const int64_t s_ranges[][2] = {
    {INT32_MIN, INT32_MAX},
    {0, 10},
    {INT64_MIN, INT64_MAX},
    {-10, -5},
    {1, 100},
    {0, 0},
    {-1, -1},
    {INT64_MIN, 0},
    {0, INT64_MAX},
};

static uint64_t
s_be64 (const uint8_t *p)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | p[i];
    return value;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    uint8_t head[18] = {0};
    memcpy (head, data, size < sizeof (head) ? size : sizeof (head));
    const char *rest = size > sizeof (head) ? (const char *) data + sizeof (head) : "";
    char *text = strndup (rest, size > sizeof (head) ? size - sizeof (head) : 0);
    uint64_t a = s_be64 (head + 2), b = s_be64 (head + 10);
    bool raw = head[1] >= 0x80;
    uint64_t max = raw ? a : s_bounds[head[1] % (sizeof (s_bounds) / sizeof (s_bounds[0]))];
    switch (head[0] % 7) {
        case 0:
            s_seconds (text, max, false);
            break;
        case 1:
            s_seconds (text, max, true);
            break;
        case 2:
            s_uint (text, max);
            break;
        case 3: {
            int64_t min = raw ? (int64_t) a : s_ranges[head[1] % 9][0];
            int64_t top = raw ? (int64_t) b : s_ranges[head[1] % 9][1];
            if (min > top) {
                int64_t swap = min;
                min = top;
                top = swap;
            }
            s_int (text, min, top);
            break;
        }
        case 4:
            //  now up to the year 9999
            s_time (text, raw ? a % 253402300800000ull : NOW_MS);
            break;
        case 5:
            s_backoff (text);
            break;
        case 6:
            s_name (text);
            break;
    }
    free (text);
    return 0;
}
