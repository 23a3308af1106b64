/*  arb_cron.h — a cron expression in a time zone, and its fire times.

    Syntax (Vixie cron's, plus an optional seconds field):

        [SECOND] MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK
        @yearly (@annually) @monthly @weekly @daily (@midnight) @hourly

    Five fields fire at second 0; a sixth, leading field gives the seconds
    (0-59), so that short periods work: "0-59/10 * * * * *" every 10 s. A
    field is a list of items "*", "N", "N-M", "*" or "N-M" followed by
    "/STEP"; months (1-12) and days of the week (0-7, 0 and 7 Sunday) also
    by their English names' first three letters, in any case ("mon-fri",
    "JAN"). Day of month and day of week: when both are restricted, a day
    matches if either matches (Vixie cron's rule; a field counts as
    restricted unless it starts with "*", so "*" with a step does not);
    otherwise both must match. An expression no date can match ("0 0 30 2 *") is
    refused. A refusal says exactly what is wrong:

        field 2 (hour): 25 is out of range 0-23

    (fields are numbered as given: with seconds, the hour is field 3).

    Fire times are the instants at which the zone's clock (see arb_tz.h;
    default UTC) shows a matching time. When the clocks change, cronie's
    rule applies:

    - An expression whose hour field is every hour ("*", "0-23", "*" with
      step 1) runs by the clock as it is: in an hour that the clocks skip nothing
      fires, and an hour shown twice fires twice, so "0-59/5 * * * *" keeps
      firing every 5 minutes of real time through both changes.
    - Any other expression (fixed hours, like "30 2 * * *") fires once for
      each matching clock time: a time shown twice (clocks going back)
      fires the first time only; a time that does not exist (clocks going
      forward) fires at the first instant after the gap. So "30 2 * * *"
      in Europe/Berlin fires at 03:00 CEST on the last Sunday of March, and
      once, at 02:30 CEST, on the last Sunday of October. Several skipped
      times that land on the same instant fire once.

    Not thread-safe; immutable once made.
*/

#ifndef ARB_CRON_H
#define ARB_CRON_H

#include "arb_tz.h"

typedef struct _arb_cron_t arb_cron_t;

#define ARB_CRON_MAX 200  //  bytes of an expression

//  Fire times are searched this many years ahead at most: the longest
//  wait a valid expression can have is about 40 years (a 29th of February
//  that must also be a given weekday, across 2100, which is no leap year).
#define ARB_CRON_HORIZON_YEARS 100

//  Parses expr for the zone called zone (NULL or "": UTC; see arb_tz_new).
//  Returns NULL and says why in why (one sentence) if either is refused.
arb_cron_t *arb_cron_new (const char *expr, const char *zone, char *why, size_t why_size);

//  An expression for a zone made by the caller; takes the zone (nulls
//  *zone_p, even on failure). NULL and why as arb_cron_new.
arb_cron_t *arb_cron_new_in (const char *expr, arb_tz_t **zone_p, char *why, size_t why_size);

//  Destroys an expression and its zone. Accepts NULL; nulls the pointer.
void arb_cron_destroy (arb_cron_t **self_p);

//  The zone (borrowed).
arb_tz_t *arb_cron_zone (arb_cron_t *self);

//  The first fire time strictly after after_ms (Unix ms) into *next_ms (a
//  whole second). Returns 0, or -1 if none comes within the horizon or
//  before the year 10000 ("never").
int arb_cron_next (arb_cron_t *self, uint64_t after_ms, uint64_t *next_ms);

//  The last fire time in (after_ms, until_ms] into *last_ms. Returns 0, or
//  -1 if there is none. Costs about 40 arb_cron_next, however long the
//  span (for the broker's catch-up after a long downtime).
int arb_cron_last (arb_cron_t *self, uint64_t after_ms, uint64_t until_ms, uint64_t *last_ms);

//  Whether a civil time (as the zone's clock shows it) matches.
bool
arb_cron_matches (arb_cron_t *self, const arb_tz_date_t *date, int hour, int minute, int second);

#endif
