/*  arb_tz.c — time zones from TZif files; see arb_tz.h.

    A zone keeps the instants where its offset changes (at[], with the
    offset from then on in off[]), the offset before the first of them
    (off0), and the footer's yearly rule for the time after the last one.
    A lookup is a binary search in the table, or, past its end, the rule's
    changes of the years around the instant, computed on the fly.

    TZif is read strictly (RFC 8536): counts bounded before anything is
    sized by them, every index checked, transitions strictly increasing;
    a file that breaks a rule is refused as a whole, never half used.
*/

#include "arb_tz.h"

#include <czmq.h>

#define ARB_TZ_FILE_MAX        (1u << 20)  //  bytes of a zone file
#define ARB_TZ_TRANSITIONS_MAX 10000       //  real zones have a few hundred
#define ARB_TZ_OFFSET_MAX      (26 * 3600)
//  Instants are clamped to about +-300,000 years, where every sum below
//  stays far from overflowing.
#define ARB_TZ_T_LIMIT 10000000000000ll

//  One end of daylight saving time in a POSIX rule.
typedef struct {
    char kind;     //  'J': day 1..365 without Feb 29; 'D': day 0..365; 'M': month.week.weekday
    int day;       //  'J', 'D'
    int month;     //  'M': 1..12
    int week;      //  'M': 1..5 (5: the last)
    int weekday;   //  'M': 0..6
    int32_t time;  //  seconds after local midnight (-167 h .. 167 h)
} s_edge_t;

typedef struct {
    int32_t std_off;  //  seconds east
    int32_t dst_off;  //  seconds east
    bool has_dst;
    s_edge_t start;  //  DST begins (local standard time)
    s_edge_t end;    //  DST ends (local daylight time)
} s_rule_t;

struct _arb_tz_t {
    char *name;     //  owned
    int64_t *at;    //  owned: instants where the offset changes, increasing
    int32_t *off;   //  owned: off[i] is the offset from at[i] on
    size_t count;   //  entries of at and off
    int32_t off0;   //  offset before at[0] (or always, without table and rule)
    bool has_rule;  //  rule applies from at[count - 1] on
    s_rule_t rule;
};

//  ---------------------------------------------------------------------
//  The civil calendar (H. Hinnant's algorithms, proleptic Gregorian).

int64_t
arb_tz_days (int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
arb_tz_date (int64_t days, arb_tz_date_t *date)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    date->day = (int) (doy - (153 * mp + 2) / 5 + 1);
    date->month = (int) (mp < 10 ? mp + 3 : mp - 9);
    date->year = yoe + era * 400 + (date->month <= 2);
    //  1970-01-01 was a Thursday
    date->weekday = (int) (days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6);
}

static bool
s_leap (int64_t year)
{
    return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

int
arb_tz_month_days (int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && s_leap (year) ? 29 : days[month - 1];
}

//  ---------------------------------------------------------------------
//  POSIX TZ rules: std offset [dst [offset] ,start[/time],end[/time]]

//  A zone abbreviation: 3 or more letters, or <...> of letters, digits, + and -.
static bool
s_parse_abbr (const char **p)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        for (s++; isalnum ((unsigned char) *s) || *s == '+' || *s == '-'; s++)
            n++;
        if (*s != '>' || n < 3)
            return false;
        *p = s + 1;
        return true;
    }
    for (; isalpha ((unsigned char) *s); s++)
        n++;
    *p = s;
    return n >= 3;
}

//  [+-]hh[:mm[:ss]], hours at most max_hours, into signed seconds.
static bool
s_parse_hms (const char **p, int max_hours, int32_t *seconds)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0 && *s != ':')
            break;
        if (i > 0)
            s++;
        int digits = 0;
        for (; isdigit ((unsigned char) *s) && digits < 3; s++, digits++)
            part[i] = part[i] * 10 + (*s - '0');
        if (digits == 0 || isdigit ((unsigned char) *s) || (i > 0 && (digits != 2 || part[i] > 59)))
            return false;
    }
    if (part[0] > max_hours)
        return false;
    *seconds = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool
s_parse_number (const char **p, int min, int max, int *value)
{
    const char *s = *p;
    int n = 0, digits = 0;
    for (; isdigit ((unsigned char) *s) && digits < 4; s++, digits++)
        n = n * 10 + (*s - '0');
    if (digits == 0 || isdigit ((unsigned char) *s) || n < min || n > max)
        return false;
    *value = n;
    *p = s;
    return true;
}

static bool
s_parse_edge (const char **p, s_edge_t *edge)
{
    const char *s = *p;
    bool ok;
    if (*s == 'J') {
        s++;
        edge->kind = 'J';
        ok = s_parse_number (&s, 1, 365, &edge->day);
    }
    else if (*s == 'M') {
        s++;
        edge->kind = 'M';
        ok = s_parse_number (&s, 1, 12, &edge->month) && *s++ == '.'
             && s_parse_number (&s, 1, 5, &edge->week) && *s++ == '.'
             && s_parse_number (&s, 0, 6, &edge->weekday);
    }
    else {
        edge->kind = 'D';
        ok = s_parse_number (&s, 0, 365, &edge->day);
    }
    edge->time = 2 * 3600;
    if (ok && *s == '/') {
        s++;
        ok = s_parse_hms (&s, 167, &edge->time);
    }
    *p = s;
    return ok;
}

static bool
s_parse_rule (const char *text, s_rule_t *rule)
{
    const char *s = text;
    int32_t west;
    if (!s_parse_abbr (&s) || !s_parse_hms (&s, 24, &west))
        return false;
    rule->std_off = -west;
    rule->has_dst = *s != 0;
    if (!rule->has_dst)
        return true;
    if (!s_parse_abbr (&s))
        return false;
    rule->dst_off = rule->std_off + 3600;
    if (*s != ',') {
        if (!s_parse_hms (&s, 24, &west))
            return false;
        rule->dst_off = -west;
    }
    return *s++ == ',' && s_parse_edge (&s, &rule->start) && *s++ == ','
           && s_parse_edge (&s, &rule->end) && *s == 0;
}

//  The local day (days since 1970-01-01) an edge falls on in a year.
static int64_t
s_edge_day (const s_edge_t *edge, int64_t year)
{
    int64_t jan1 = arb_tz_days (year, 1, 1);
    if (edge->kind == 'J')
        return jan1 + edge->day - 1 + (s_leap (year) && edge->day >= 60);
    if (edge->kind == 'D')
        return jan1 + edge->day;
    int64_t first = arb_tz_days (year, edge->month, 1);
    arb_tz_date_t date;
    arb_tz_date (first, &date);
    int day = (edge->weekday - date.weekday + 7) % 7 + (edge->week - 1) * 7;
    while (day >= arb_tz_month_days (year, edge->month))
        day -= 7;
    return first + day;
}

typedef struct {
    int64_t at;
    int32_t off;  //  offset from at on
    int order;    //  at equal instants, the end of DST first
} s_change_t;

static int
s_change_cmp (const void *a, const void *b)
{
    const s_change_t *x = (const s_change_t *) a, *y = (const s_change_t *) b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->order - y->order;
}

static void
s_rule_lookup (const s_rule_t *rule, int64_t t, arb_tz_span_t *span)
{
    span->offset = rule->std_off;
    span->prev = INT64_MIN;
    span->next = INT64_MAX;
    if (!rule->has_dst)
        return;
    arb_tz_date_t date;
    int64_t local = t + rule->std_off;
    arb_tz_date (local >= 0 ? local / 86400 : (local - 86399) / 86400, &date);
    //  The changes of the years around t: an edge's time may move it up to
    //  a week into the next year.
    s_change_t changes[10];
    size_t n = 0;
    for (int64_t year = date.year - 2; year <= date.year + 2; year++) {
        changes[n++] =
            (s_change_t){s_edge_day (&rule->start, year) * 86400 + rule->start.time - rule->std_off,
                         rule->dst_off, 1};
        changes[n++] =
            (s_change_t){s_edge_day (&rule->end, year) * 86400 + rule->end.time - rule->dst_off,
                         rule->std_off, 0};
    }
    qsort (changes, n, sizeof (changes[0]), s_change_cmp);
    //  Keep only real changes, then find the last one at or before t.
    size_t kept = 1;
    for (size_t i = 1; i < n; i++)
        if (changes[i].off != changes[kept - 1].off)
            changes[kept++] = changes[i];
    for (size_t i = 0; i < kept; i++) {
        if (changes[i].at > t) {
            span->next = changes[i].at;
            break;
        }
        span->offset = changes[i].off;
        span->prev = changes[i].at;
    }
}

//  ---------------------------------------------------------------------
//  TZif

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} s_reader_t;

static const uint8_t *
s_take (s_reader_t *r, size_t n)
{
    if ((size_t) (r->end - r->p) < n)
        return NULL;
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

static int64_t
s_be (const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n == 4)
        return (int64_t) (int32_t) (uint32_t) v;
    return (int64_t) v;
}

enum {
    S_ISUT,
    S_ISSTD,
    S_LEAP,
    S_TIME,
    S_TYPE,
    S_CHAR
};

//  Reads a header: its version and its six counts, checked against the limits.
static const char *
s_header (s_reader_t *r, int *version, uint32_t counts[6])
{
    const uint8_t *h = s_take (r, 44);
    if (!h || memcmp (h, "TZif", 4) != 0)
        return "not a TZif file";
    *version = h[4] == 0 ? 1 : h[4] - '0';
    if (*version < 1 || *version > 4)
        return "unknown TZif version";
    for (int i = 0; i < 6; i++)
        counts[i] = (uint32_t) s_be (h + 20 + 4 * i, 4);
    if (counts[S_LEAP])
        return "zone with leap seconds (right/...)";
    if (counts[S_TIME] > ARB_TZ_TRANSITIONS_MAX || counts[S_TYPE] == 0 || counts[S_TYPE] > 256
        || counts[S_CHAR] > 4096 || (counts[S_ISUT] && counts[S_ISUT] != counts[S_TYPE])
        || (counts[S_ISSTD] && counts[S_ISSTD] != counts[S_TYPE]))
        return "TZif counts out of bounds";
    return NULL;
}

//  Reads a data block with times of time_size bytes into the zone's table.
static const char *
s_data (arb_tz_t *self, s_reader_t *r, const uint32_t counts[6], size_t time_size)
{
    size_t nt = counts[S_TIME], ntype = counts[S_TYPE];
    const uint8_t *times = s_take (r, nt * time_size), *index = s_take (r, nt),
                  *types = s_take (r, ntype * 6);
    if (!times || !index || !types
        || !s_take (r, counts[S_CHAR] + counts[S_ISSTD] + counts[S_ISUT]))
        return "TZif data cut short";
    int32_t offsets[256];
    for (size_t i = 0; i < ntype; i++) {
        offsets[i] = (int32_t) s_be (types + 6 * i, 4);
        if (offsets[i] < -ARB_TZ_OFFSET_MAX || offsets[i] > ARB_TZ_OFFSET_MAX
            || types[6 * i + 4] > 1)
            return "TZif time type out of bounds";
    }
    self->off0 = offsets[0];
    self->at = (int64_t *) zmalloc ((nt ? nt : 1) * sizeof (int64_t));
    self->off = (int32_t *) zmalloc ((nt ? nt : 1) * sizeof (int32_t));
    int32_t current = self->off0;
    for (size_t i = 0; i < nt; i++) {
        int64_t at = s_be (times + i * time_size, time_size);
        if (index[i] >= ntype)
            return "TZif transition names no time type";
        if (i > 0 && at <= s_be (times + (i - 1) * time_size, time_size))
            return "TZif transitions out of order";
        if (at < -ARB_TZ_T_LIMIT || at > ARB_TZ_T_LIMIT)
            return "TZif transition out of bounds";
        if (offsets[index[i]] == current)
            continue;  //  a change of name or isdst only
        current = offsets[index[i]];
        self->at[self->count] = at;
        self->off[self->count++] = current;
    }
    return NULL;
}

//  Parses a whole TZif file. NULL, or why not.
static const char *
s_parse_tzif (arb_tz_t *self, const uint8_t *data, size_t size)
{
    s_reader_t r = {data, data + size};
    int version;
    uint32_t counts[6];
    const char *why = s_header (&r, &version, counts);
    if (why)
        return why;
    if (version == 1)
        return s_data (self, &r, counts, 4);
    //  Version 2+: skip the 32-bit block; the 64-bit one and the footer follow.
    size_t skip = (size_t) counts[S_TIME] * 5 + (size_t) counts[S_TYPE] * 6 + counts[S_CHAR]
                  + counts[S_ISSTD] + counts[S_ISUT];
    if (!s_take (&r, skip))
        return "TZif data cut short";
    if ((why = s_header (&r, &version, counts)) || (why = s_data (self, &r, counts, 8)))
        return why;
    const uint8_t *nl = s_take (&r, 1);
    const uint8_t *end = nl ? memchr (r.p, '\n', (size_t) (r.end - r.p)) : NULL;
    if (!nl || *nl != '\n' || !end)
        return "TZif footer missing";
    if (end == r.p)
        return NULL;  //  no rule: the last offset holds for ever
    char text[128];
    if ((size_t) (end - r.p) >= sizeof (text))
        return "TZif footer too long";
    memcpy (text, r.p, (size_t) (end - r.p));
    text[end - r.p] = 0;
    if (!s_parse_rule (text, &self->rule))
        return "TZif footer is not a POSIX TZ rule";
    self->has_rule = true;
    return NULL;
}

//  ---------------------------------------------------------------------
//  Zones

static arb_tz_t *
s_new (const char *name)
{
    arb_tz_t *self = (arb_tz_t *) zmalloc (sizeof (arb_tz_t));
    self->name = strdup (name);
    return self;
}

//  Whether a name can be a zone: letters, digits and . _ + - in
//  components separated by single slashes, none starting with a dot (so
//  never a path outside the zone directory).
static bool
s_name_ok (const char *name)
{
    size_t size = strlen (name);
    if (size == 0 || size > ARB_TZ_NAME_MAX)
        return false;
    for (const char *s = name; *s; s++) {
        bool start = s == name || s[-1] == '/';
        if (start && (*s == '.' || *s == '/'))
            return false;
        if (!isalnum ((unsigned char) *s) && !strchr ("._+-/", *s))
            return false;
    }
    return name[size - 1] != '/';
}

arb_tz_t *
arb_tz_new_tzif (const char *name, const uint8_t *data, size_t size, char *why, size_t why_size)
{
    arb_tz_t *self = s_new (name);
    const char *error = s_parse_tzif (self, data, size);
    if (error) {
        snprintf (why, why_size, "time zone '%s': %s", name, error);
        arb_tz_destroy (&self);
    }
    return self;
}

arb_tz_t *
arb_tz_new_rule (const char *rule, char *why, size_t why_size)
{
    arb_tz_t *self = s_new (rule);
    if (!s_parse_rule (rule, &self->rule)) {
        snprintf (why, why_size, "'%.64s' is not a POSIX TZ rule", rule);
        arb_tz_destroy (&self);
        return NULL;
    }
    self->has_rule = true;
    self->off0 = self->rule.std_off;
    return self;
}

arb_tz_t *
arb_tz_new (const char *name, char *why, size_t why_size)
{
    if (streq (name, "UTC"))
        return s_new (name);
    if (!s_name_ok (name)) {
        snprintf (why, why_size, "'%.64s' is not a time zone name (like Europe/Berlin or UTC)",
                  name);
        return NULL;
    }
    const char *dir = getenv ("TZDIR");
    char path[512];
    snprintf (path, sizeof (path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    uint8_t *data = (uint8_t *) malloc (ARB_TZ_FILE_MAX + 1);
    assert (data);
    FILE *file = fopen (path, "rb");
    size_t size = file ? fread (data, 1, ARB_TZ_FILE_MAX + 1, file) : 0;
    if (file)
        fclose (file);
    arb_tz_t *self = NULL;
    if (size == 0 || size > ARB_TZ_FILE_MAX) {
        snprintf (why, why_size, "unknown time zone '%s'", name);
        zsys_warning ("tz: no zone file name=%s path=%s", name, path);
    }
    else
        self = arb_tz_new_tzif (name, data, size, why, why_size);
    free (data);
    return self;
}

void
arb_tz_destroy (arb_tz_t **self_p)
{
    assert (self_p);
    arb_tz_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->at);
    free (self->off);
    free (self);
    *self_p = NULL;
}

const char *
arb_tz_name (arb_tz_t *self)
{
    return self->name;
}

void
arb_tz_lookup (arb_tz_t *self, int64_t t, arb_tz_span_t *span)
{
    t = t < -ARB_TZ_T_LIMIT ? -ARB_TZ_T_LIMIT : t > ARB_TZ_T_LIMIT ? ARB_TZ_T_LIMIT : t;
    size_t n = self->count;
    if (n == 0 || t >= self->at[n - 1]) {
        if (self->has_rule) {
            s_rule_lookup (&self->rule, t, span);
            if (n && span->prev < self->at[n - 1])
                span->prev = self->at[n - 1];
            return;
        }
        *span = (arb_tz_span_t){n ? self->off[n - 1] : self->off0, n ? self->at[n - 1] : INT64_MIN,
                                INT64_MAX};
        return;
    }
    if (t < self->at[0]) {
        *span = (arb_tz_span_t){self->off0, INT64_MIN, self->at[0]};
        return;
    }
    //  at[lo] <= t < at[hi]
    size_t lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *span = (arb_tz_span_t){self->off[lo], self->at[lo], self->at[hi]};
}

int32_t
arb_tz_offset (arb_tz_t *self, int64_t t)
{
    arb_tz_span_t span;
    arb_tz_lookup (self, t, &span);
    return span.offset;
}
