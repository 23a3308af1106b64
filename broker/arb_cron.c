/*  arb_cron.c — cron expressions and their fire times; see arb_cron.h.

    An expression is six bit sets (seconds, minutes, hours, days of the
    month, months, days of the week). The search for the next match works
    on the zone's clock ("clock seconds": the civil time counted as if it
    were UTC) a day at a time, jumping over months that do not match, and
    is bounded by ARB_CRON_HORIZON_YEARS; the parser refuses expressions
    that can never match, so the bound is only ever reached by those that
    match rarely.

    Clock time is turned into instants in two ways, after the expression's
    kind (arb_cron.h): by the clock as it is, one span of constant offset
    after another (arb_tz_lookup says where each ends); or per clock time,
    where each matching clock time fires at the first instant the clock
    shows it or a later time (s_first_instant), which is monotonic in the
    clock time and so needs no look-behind.
*/

#include "arb_cron.h"

#include <czmq.h>
#include <stdarg.h>

//  The last instant of the year 9999: nothing fires after it.
#define ARB_CRON_T_MAX     253402300799ll
#define ARB_CRON_HORIZON_S ((int64_t) ARB_CRON_HORIZON_YEARS * 366 * 86400)
//  Spans of constant offset crossed by one search at most (a zone has
//  at most 10,000 changes in its table, and 2 a year from its rule).
#define ARB_CRON_SPANS_MAX 20000

struct _arb_cron_t {
    uint64_t seconds;   //  bit s: second s (0..59)
    uint64_t minutes;   //  bit m: minute m (0..59)
    uint32_t hours;     //  bit h: hour h (0..23)
    uint32_t days;      //  bit d: day of the month d (1..31)
    uint32_t months;    //  bit m: month m (1..12)
    uint32_t weekdays;  //  bit w: day of the week w (0..6, Sunday 0)
    bool day_star;      //  the day-of-month field starts with '*'
    bool weekday_star;  //  the day-of-week field starts with '*'
    bool by_clock;      //  every hour: fires by the clock as it is (arb_cron.h)
    arb_tz_t *zone;     //  owned
};

//  ---------------------------------------------------------------------
//  Parsing

typedef struct {
    const char *name;
    int min, max;
    const char *const *names;  //  names of min.., or NULL
    const char *names_are;     //  "a month name (jan-dec)"
} s_field_t;

static const char *const s_months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const s_weekdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static const s_field_t s_fields[6] = {
    {"second", 0, 59, NULL, NULL},
    {"minute", 0, 59, NULL, NULL},
    {"hour", 0, 23, NULL, NULL},
    {"day of month", 1, 31, NULL, NULL},
    {"month", 1, 12, s_months, "a month name (jan-dec)"},
    {"day of week", 0, 7, s_weekdays, "a day name (sun-sat)"},
};

static const struct {
    const char *name;
    const char *expr;
} s_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

//  Where a refusal is, for its message.
typedef struct {
    const s_field_t *field;
    int number;  //  the field's position as given, from 1
    char *why;
    size_t why_size;
    char quoted[40];  //  the offending text, for the message
} s_where_t;

//  A peer's text for a message: at most 32 bytes, non-printables as '.'.
static const char *
s_quote (char *out, size_t out_size, const char *text, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < size && i < 32 && n + 1 < out_size; i++)
        out[n++] = isprint ((unsigned char) text[i]) ? text[i] : '.';
    out[n] = 0;
    return out;
}

static const char *
s_quoted (s_where_t *where, const char *text, size_t size)
{
    return s_quote (where->quoted, sizeof (where->quoted), text, size);
}

static int s_refuse (s_where_t *where, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_refuse (s_where_t *where, const char *fmt, ...)
{
    char what[160];
    va_list args;
    va_start (args, fmt);
    vsnprintf (what, sizeof (what), fmt, args);
    va_end (args);
    snprintf (where->why, where->why_size, "field %d (%s): %s", where->number, where->field->name,
              what);
    return -1;
}

//  One value of item: a number or a name, text[0..size).
static int
s_value (
    s_where_t *where, const char *item, size_t item_size, const char *text, size_t size, int *value)
{
    const s_field_t *f = where->field;
    size_t digits = 0;
    while (digits < size && isdigit ((unsigned char) text[digits]))
        digits++;
    if (size == 0)
        return s_refuse (where, "'%s' is missing a value", s_quoted (where, item, item_size));
    if (digits == size) {
        int n = 0;
        for (size_t i = 0; i < size; i++)
            n = n > 9999 ? n : n * 10 + (text[i] - '0');
        if (n < f->min || n > f->max)
            return s_refuse (where, "%s is out of range %d-%d", s_quoted (where, text, size),
                             f->min, f->max);
        *value = n;
        return 0;
    }
    for (int i = 0; f->names && size == 3 && i <= f->max - f->min; i++)
        if (strncasecmp (text, f->names[i], 3) == 0) {
            *value = f->min + i;
            return 0;
        }
    if (f->names)
        return s_refuse (where, "'%s' is not a number or %s", s_quoted (where, text, size),
                         f->names_are);
    return s_refuse (where, "'%s' is not a number", s_quoted (where, text, size));
}

//  One item of a list: "*", "N", "N-M", with "/STEP" after "*" or a range.
static int
s_item (s_where_t *where, const char *text, size_t size, uint64_t *bits)
{
    const s_field_t *f = where->field;
    if (size == 0)
        return s_refuse (where, "an item of the list is empty");
    const char *slash = (const char *) memchr (text, '/', size);
    size_t range_size = slash ? (size_t) (slash - text) : size;
    const char *dash = (const char *) memchr (text, '-', range_size);
    int lo = f->min, hi = f->max, step = 1;
    if (range_size == 1 && text[0] == '*')
        ;
    else if (dash) {
        size_t lo_size = (size_t) (dash - text);
        if (s_value (where, text, size, text, lo_size, &lo)
            || s_value (where, text, size, dash + 1, range_size - lo_size - 1, &hi))
            return -1;
        if (lo > hi)
            return s_refuse (where, "range %s goes backwards (%d is after %d)",
                             s_quoted (where, text, range_size), lo, hi);
    }
    else {
        if (s_value (where, text, size, text, range_size, &lo))
            return -1;
        if (slash)
            return s_refuse (where, "in '%s', a step goes after * or a range, like %d-%d/STEP",
                             s_quoted (where, text, size), lo, f->max);
        hi = lo;
    }
    if (slash) {
        const char *digits = slash + 1;
        size_t digits_size = size - range_size - 1, i = 0;
        step = 0;
        for (; i < digits_size && isdigit ((unsigned char) digits[i]); i++)
            step = step > 9999 ? step : step * 10 + (digits[i] - '0');
        if (digits_size == 0 || i < digits_size)
            return s_refuse (where, "in '%s', the step is not a number",
                             s_quoted (where, text, size));
        if (step < 1 || step > f->max - f->min + 1)
            return s_refuse (where, "step %s is out of range 1-%d",
                             s_quoted (where, digits, digits_size), f->max - f->min + 1);
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ull << v;
    return 0;
}

//  A field: items separated by commas.
static int
s_field (s_where_t *where, const char *text, uint64_t *bits)
{
    *bits = 0;
    const char *item = text;
    while (true) {
        const char *comma = strchr (item, ',');
        size_t size = comma ? (size_t) (comma - item) : strlen (item);
        if (s_item (where, item, size, bits))
            return -1;
        if (!comma)
            return 0;
        item = comma + 1;
    }
}

//  Whether some day of the month given exists in some month given.
static bool
s_some_date (const arb_cron_t *self)
{
    for (int month = 1; month <= 12; month++)
        for (int day = 1; day <= 31; day++)
            if ((self->months >> month & 1) && (self->days >> day & 1)
                && day <= arb_tz_month_days (2000, month))  //  2000: a leap year
                return true;
    return false;
}

static int
s_parse (arb_cron_t *self, const char *expr, char *why, size_t why_size)
{
    size_t size = strlen (expr);
    char quoted[40];
    if (size > ARB_CRON_MAX) {
        snprintf (why, why_size, "an expression of %zu bytes, over the %d-byte limit", size,
                  ARB_CRON_MAX);
        return -1;
    }
    char text[ARB_CRON_MAX + 1];
    memcpy (text, expr, size + 1);
    char *fields[7];
    int count = 0;
    char *rest = NULL;
    for (char *token = strtok_r (text, " \t", &rest); token && count < 7;
         token = strtok_r (NULL, " \t", &rest))
        fields[count++] = token;
    if (count == 1 && fields[0][0] == '@') {
        for (size_t i = 0; i < sizeof (s_macros) / sizeof (s_macros[0]); i++)
            if (strcasecmp (fields[0], s_macros[i].name) == 0)
                return s_parse (self, s_macros[i].expr, why, why_size);
        s_quote (quoted, sizeof (quoted), fields[0], strlen (fields[0]));
        snprintf (why, why_size,
                  "'%s' is not @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                  "@hourly",
                  quoted);
        return -1;
    }
    if (count != 5 && count != 6) {
        snprintf (why, why_size,
                  "%s%d field%s: give 5 (minute hour day-of-month month day-of-week), or 6 "
                  "with the seconds first",
                  count == 7 ? "more than " : "", count == 7 ? 6 : count, count == 1 ? "" : "s");
        return -1;
    }
    uint64_t bits[6] = {1, 0, 0, 0, 0, 0};  //  without a seconds field: second 0
    int first = 6 - count;
    for (int i = first; i < 6; i++) {
        s_where_t where = {&s_fields[i], i - first + 1, why, why_size, ""};
        if (s_field (&where, fields[i - first], &bits[i]))
            return -1;
    }
    self->seconds = bits[0];
    self->minutes = bits[1];
    self->hours = (uint32_t) bits[2];
    self->days = (uint32_t) bits[3];
    self->months = (uint32_t) bits[4];
    self->weekdays = (uint32_t) ((bits[5] | bits[5] >> 7) & 0x7f);  //  7 is Sunday too
    self->day_star = fields[3 - first][0] == '*';
    self->weekday_star = fields[5 - first][0] == '*';
    self->by_clock = self->hours == 0xffffff;
    //  Both must match when either starts with '*' (Vixie cron's rule); a
    //  day of the month that no month given has then never matches.
    if ((self->day_star || self->weekday_star) && !s_some_date (self)) {
        snprintf (why, why_size,
                  "fields %d and %d (day of month, month): no month given has a day given, so "
                  "it never fires",
                  4 - first, 5 - first);
        return -1;
    }
    return 0;
}

arb_cron_t *
arb_cron_new_in (const char *expr, arb_tz_t **zone_p, char *why, size_t why_size)
{
    assert (zone_p && *zone_p);
    arb_cron_t *self = (arb_cron_t *) zmalloc (sizeof (arb_cron_t));
    self->zone = *zone_p;
    *zone_p = NULL;
    if (s_parse (self, expr, why, why_size))
        arb_cron_destroy (&self);
    return self;
}

arb_cron_t *
arb_cron_new (const char *expr, const char *zone, char *why, size_t why_size)
{
    arb_tz_t *tz = arb_tz_new (zone && *zone ? zone : "UTC", why, why_size);
    if (!tz)
        return NULL;
    return arb_cron_new_in (expr, &tz, why, why_size);
}

void
arb_cron_destroy (arb_cron_t **self_p)
{
    assert (self_p);
    arb_cron_t *self = *self_p;
    if (!self)
        return;
    arb_tz_destroy (&self->zone);
    free (self);
    *self_p = NULL;
}

arb_tz_t *
arb_cron_zone (arb_cron_t *self)
{
    return self->zone;
}

//  ---------------------------------------------------------------------
//  Matching on the clock

static bool
s_day_matches (const arb_cron_t *self, const arb_tz_date_t *date)
{
    if (!(self->months >> date->month & 1))
        return false;
    bool day = self->days >> date->day & 1, weekday = self->weekdays >> date->weekday & 1;
    return self->day_star || self->weekday_star ? day && weekday : day || weekday;
}

bool
arb_cron_matches (arb_cron_t *self, const arb_tz_date_t *date, int hour, int minute, int second)
{
    return s_day_matches (self, date) && (self->hours >> hour & 1) && (self->minutes >> minute & 1)
           && (self->seconds >> second & 1);
}

//  The first bit at or above from, up to max; -1 if none.
static int
s_first_bit (uint64_t bits, int from, int max)
{
    for (int i = from; i <= max; i++)
        if (bits >> i & 1)
            return i;
    return -1;
}

//  The first matching time of day at or after second of day sod; -1 if none.
static int64_t
s_time_of_day (const arb_cron_t *self, int64_t sod)
{
    int h0 = (int) (sod / 3600), m0 = (int) (sod / 60 % 60), s0 = (int) (sod % 60);
    for (int h = s_first_bit (self->hours, h0, 23); h >= 0;
         h = s_first_bit (self->hours, h + 1, 23))
        for (int m = s_first_bit (self->minutes, h == h0 ? m0 : 0, 59); m >= 0;
             m = s_first_bit (self->minutes, m + 1, 59)) {
            int s = s_first_bit (self->seconds, h == h0 && m == m0 ? s0 : 0, 59);
            if (s >= 0)
                return h * 3600 + m * 60 + s;
        }
    return -1;
}

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

//  The first matching clock time in [from, limit]; INT64_MAX if none.
static int64_t
s_next_clock (const arb_cron_t *self, int64_t from, int64_t limit)
{
    int64_t day = s_floor_div (from, 86400), sod = from - day * 86400;
    for (int64_t last = s_floor_div (limit, 86400); day <= last; sod = 0) {
        arb_tz_date_t date;
        arb_tz_date (day, &date);
        if (!(self->months >> date.month & 1)) {
            day = arb_tz_days (date.year + (date.month == 12), date.month % 12 + 1, 1);
            continue;
        }
        int64_t tod = s_day_matches (self, &date) ? s_time_of_day (self, sod) : -1;
        if (tod >= 0)
            return day * 86400 + tod <= limit ? day * 86400 + tod : INT64_MAX;
        day++;
    }
    return INT64_MAX;
}

//  ---------------------------------------------------------------------
//  From the clock to instants

//  The first instant at which the clock shows clock or a later time: the
//  instant itself, the first of two when the clocks go back, the end of
//  the gap when they go forward. Assumes one change at most within a day
//  of it (true of every zone since 1900 but a handful of days).
static int64_t
s_first_instant (arb_tz_t *zone, int64_t clock)
{
    int32_t before = arb_tz_offset (zone, clock - 86400),
            after = arb_tz_offset (zone, clock + 86400);
    int64_t a = clock - before, b = clock - after;
    bool a_ok = arb_tz_offset (zone, a) == before, b_ok = arb_tz_offset (zone, b) == after;
    if (a_ok && b_ok)
        return a < b ? a : b;
    if (a_ok || b_ok)
        return a_ok ? a : b;
    //  In a gap: the change between b and a jumps the clock over it.
    arb_tz_span_t span;
    arb_tz_lookup (zone, a > b ? a : b, &span);
    return span.prev > (a < b ? a : b) ? span.prev : (a > b ? a : b);
}

//  By the clock as it is: the first instant after t whose clock matches.
static int64_t
s_next_by_clock (arb_cron_t *self, int64_t t, int64_t horizon)
{
    int64_t s = t + 1;
    for (int i = 0; i < ARB_CRON_SPANS_MAX && s <= horizon; i++) {
        arb_tz_span_t span;
        arb_tz_lookup (self->zone, s, &span);
        int64_t end = span.next <= horizon ? span.next - 1 : horizon;
        int64_t clock = s_next_clock (self, s + span.offset, end + span.offset);
        if (clock != INT64_MAX)
            return clock - span.offset;
        if (end == horizon)
            break;
        s = span.next;
    }
    return INT64_MAX;
}

//  Per clock time: the first matching clock time not yet fired by t.
static int64_t
s_next_per_time (arb_cron_t *self, int64_t t, int64_t horizon)
{
    arb_tz_span_t span;
    arb_tz_lookup (self->zone, t, &span);
    //  The latest clock time shown at or before t: t's own, or, in an hour
    //  shown twice, the last one before the clocks went back.
    int64_t shown = t + span.offset;
    if (span.prev != INT64_MIN) {
        int64_t before = span.prev - 1 + arb_tz_offset (self->zone, span.prev - 1);
        shown = before > shown ? before : shown;
    }
    //  One pass unless a zone changes twice within a day; bounded anyway.
    for (int i = 0; i < ARB_CRON_SPANS_MAX; i++) {
        int64_t clock = s_next_clock (self, shown + 1, horizon + 2 * 86400);
        if (clock == INT64_MAX)
            return INT64_MAX;
        int64_t s = s_first_instant (self->zone, clock);
        if (s > t)
            return s;
        shown = clock;
    }
    return INT64_MAX;
}

int
arb_cron_next (arb_cron_t *self, uint64_t after_ms, uint64_t *next_ms)
{
    if (after_ms / 1000 >= (uint64_t) ARB_CRON_T_MAX)
        return -1;
    int64_t t = (int64_t) (after_ms / 1000);
    int64_t horizon =
        t + ARB_CRON_HORIZON_S < ARB_CRON_T_MAX ? t + ARB_CRON_HORIZON_S : ARB_CRON_T_MAX;
    int64_t s =
        self->by_clock ? s_next_by_clock (self, t, horizon) : s_next_per_time (self, t, horizon);
    if (s == INT64_MAX || s > horizon)
        return -1;
    *next_ms = (uint64_t) s * 1000;
    return 0;
}

int
arb_cron_last (arb_cron_t *self, uint64_t after_ms, uint64_t until_ms, uint64_t *last_ms)
{
    uint64_t next;
    if (until_ms <= after_ms || arb_cron_next (self, after_ms, &next) || next > until_ms)
        return -1;
    //  next after lo is at most until_ms, next after hi is later: the
    //  answer is next after lo once they meet. Next is monotonic.
    uint64_t lo = after_ms, hi = until_ms;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2, at;
        if (arb_cron_next (self, mid, &at) == 0 && at <= until_ms)
            lo = mid;
        else
            hi = mid;
    }
    return arb_cron_next (self, lo, last_ms);
}
