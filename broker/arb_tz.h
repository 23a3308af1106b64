/*  arb_tz.h — a time zone: the offset from UTC at any instant, read from
    the system's TZif files (RFC 8536) without touching the process's TZ.

    A zone is the list of instants at which its offset changes (the TZif
    file's 64-bit transitions, kept only where the offset really changes)
    and, after the last of them, the POSIX TZ rule of the file's footer
    ("CET-1CEST,M3.5.0,M10.5.0/3"), which repeats every year. So slim and
    fat zone files both give correct offsets until the year 9999, and no
    call depends on the C library's global time zone state (TZ, tzset):
    the broker may hold schedules in many zones at once.

    Files are read from $TZDIR, else /usr/share/zoneinfo (Debian: tzdata).
    "UTC" is built in and needs no file. Zone files with leap seconds (the
    right/ zones) are refused: cron slots are civil times.

    Also the civil calendar (proleptic Gregorian) that the zone and the
    cron expressions share.

    A zone is immutable once made; the broker's loop thread owns it.
*/

#ifndef ARB_TZ_H
#define ARB_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _arb_tz_t arb_tz_t;

#define ARB_TZ_NAME_MAX 200  //  bytes of a zone name

//  Loads the zone called name (an IANA name: "Europe/Berlin", "UTC").
//  Returns NULL and says why in why (one sentence naming the zone) if the
//  name is malformed, names no zone file, or the file is not valid TZif.
arb_tz_t *arb_tz_new (const char *name, char *why, size_t why_size);

//  A zone from the bytes of a TZif file (RFC 8536, versions 1 to 4),
//  called name. NULL and why as arb_tz_new.
arb_tz_t *
arb_tz_new_tzif (const char *name, const uint8_t *data, size_t size, char *why, size_t why_size);

//  A zone from a POSIX TZ rule alone ("EST5EDT,M3.2.0,M11.1.0", the form
//  of a TZif footer; a DST part must have its rule), named after the rule.
//  NULL and why as arb_tz_new.
arb_tz_t *arb_tz_new_rule (const char *rule, char *why, size_t why_size);

//  Destroys a zone. Accepts NULL; nulls the caller's pointer.
void arb_tz_destroy (arb_tz_t **self_p);

//  The zone's name (borrowed).
const char *arb_tz_name (arb_tz_t *self);

//  What the zone says around instant t (Unix seconds).
typedef struct {
    int32_t offset;  //  seconds east of UTC in effect at t
    int64_t prev;    //  the last change of offset at or before t; INT64_MIN if none
    int64_t next;    //  the first change of offset after t; INT64_MAX if none
} arb_tz_span_t;

void arb_tz_lookup (arb_tz_t *self, int64_t t, arb_tz_span_t *span);

//  The offset (seconds east of UTC) in effect at instant t.
int32_t arb_tz_offset (arb_tz_t *self, int64_t t);

//  A civil date.
typedef struct {
    int64_t year;
    int month;    //  1..12
    int day;      //  1..31
    int weekday;  //  0 Sunday .. 6 Saturday
} arb_tz_date_t;

//  Days since 1970-01-01 of a civil date (month 1..12, day 1..31).
int64_t arb_tz_days (int64_t year, int month, int day);

//  The civil date of a day number (days since 1970-01-01).
void arb_tz_date (int64_t days, arb_tz_date_t *date);

//  Days in a month of a year.
int arb_tz_month_days (int64_t year, int month);

#endif
