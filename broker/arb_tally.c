/*  arb_tally.c — the broker's counters; see arb_tally.h.
*/

#include "arb_tally.h"

void
arb_tally_commit (arb_tally_t *self, uint64_t us)
{
    self->commits++;
    self->commit_us += us;
    size_t bucket = 0;
    while (bucket < ARB_COMMIT_BUCKETS - 1 && us > arb_commit_bound_us (bucket))
        bucket++;
    self->commit_buckets[bucket]++;
}
