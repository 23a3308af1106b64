/*  fuzz_cron.c — libFuzzer target for cron expressions and time zones.

    The input is EXPR '\n' ZONE TIME: the expression, then the zone (a
    TZif file's bytes if they start with "TZif", else a POSIX TZ rule;
    nothing: UTC), then 8 bytes, a big-endian Unix time in ms. An
    expression and zone either parse, and then their fire times after
    TIME must come strictly in order, each found within the search's
    bounds; in UTC each must match the expression, and the last one
    before a later time must be the last; or they are refused with a
    reason. Anything else (a crash, a sanitizer report,
    a leak, a hang) is a finding. Seeds: tests/fuzz/corpus/cron.

        scons fuzz && build/fuzz/fuzz_cron -max_total_time=60 tests/fuzz/corpus/cron
*/

#include "arb_cron.h"

#include <assert.h>
#include <czmq.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  The zone of the input; NULL if refused.
static arb_tz_t *
s_zone (const uint8_t *data, size_t size, char *why, size_t why_size)
{
    if (size == 0)
        return arb_tz_new ("UTC", why, why_size);
    if (size >= 4 && memcmp (data, "TZif", 4) == 0)
        return arb_tz_new_tzif ("fuzz", data, size, why, why_size);
    char *rule = strndup ((const char *) data, size);
    arb_tz_t *zone = arb_tz_new_rule (rule, why, why_size);
    free (rule);
    return zone;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const uint8_t *nl = (const uint8_t *) memchr (data, '\n', size);
    if (!nl || (size_t) (data + size - nl) < 9)
        return 0;
    char *expr = strndup ((const char *) data, (size_t) (nl - data));
    const uint8_t *time = data + size - 8;
    uint64_t after = 0;
    for (int i = 0; i < 8; i++)
        after = (after << 8) | time[i];
    after %= 300000000000000ull;  //  until about the year 11000
    char why[256] = "";
    arb_tz_t *zone = s_zone (nl + 1, (size_t) (time - nl - 1), why, sizeof (why));
    arb_cron_t *cron = zone ? arb_cron_new_in (expr, &zone, why, sizeof (why)) : NULL;
    assert (cron || why[0]);
    //  In any zone: strictly in order, and within (after, until].
    uint64_t at = after, next;
    for (int i = 0; cron && i < 4 && arb_cron_next (cron, at, &next) == 0; i++) {
        assert (next > at && next % 1000 == 0);
        at = next;
    }
    uint64_t first, last;
    if (cron && arb_cron_next (cron, after, &first) == 0) {
        uint64_t until = first + (after % 1000) * 3600000;
        assert (arb_cron_last (cron, after, until, &last) == 0);
        assert (last > after && last <= until);
        //  In UTC, where no clock is shown twice: each fire time matches,
        //  and the last one before until is the last one.
        if (time == nl + 1) {
            int64_t t = (int64_t) (last / 1000);
            arb_tz_date_t date;
            arb_tz_date (t / 86400, &date);
            assert (arb_cron_matches (cron, &date, (int) (t % 86400 / 3600), (int) (t % 3600 / 60),
                                      (int) (t % 60)));
            assert (last >= first);
            assert (arb_cron_next (cron, last, &next) != 0 || next > until);
        }
    }
    arb_cron_destroy (&cron);
    arb_tz_destroy (&zone);
    free (expr);
    return 0;
}
