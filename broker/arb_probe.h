/*  arb_probe.h — what the broker's open-addressing tables by task id
    share: the hash of an id, and the rule of deletion by backward shift.

    Both tables (arb_taskmap, arb_watch) probe linearly from an id's home
    slot and delete without tombstones: after a hole, each entry up to the
    next empty slot moves into the hole unless its home lies (cyclically)
    after the hole, so that every probe sequence stays unbroken.
*/

#ifndef ARB_PROBE_H
#define ARB_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  An id's hash (a 64-bit finalizer: sequential ids spread over the slots).
static inline size_t
arb_probe_hash (uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t) x;
}

//  Whether the entry in slot j, whose home slot is home, stays where it is
//  when slot hole (before j in its probe run) empties.
static inline bool
arb_probe_stays (size_t hole, size_t home, size_t j)
{
    return hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
}

#endif
