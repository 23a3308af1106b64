/*  arb_tally.h — what the broker has done since it started: tasks
    submitted, dispatched and finished, and how long its journal commits
    took. STATS reports it (the gateway's /metrics turns it into
    Prometheus counters and a histogram).

    A plain value inside the lifecycle (arb_life_tally), which counts the
    tasks; the loop adds each commit's time. Counts start at zero with
    every start of the broker (Prometheus treats that as a counter reset).
*/

#ifndef ARB_TALLY_H
#define ARB_TALLY_H

#include "arb_proto.h"

typedef struct {
    uint64_t submitted;                           //  tasks a SUBMIT created (not known keys)
    uint64_t dispatched;                          //  attempts handed to workers (TAKE included)
    uint64_t finished[ARB_STATE_MAX + 1];         //  tasks that ended, by final state
    uint64_t commits;                             //  journal commits that wrote something
    uint64_t commit_us;                           //  their time, summed, in µs
    uint64_t commit_buckets[ARB_COMMIT_BUCKETS];  //  commits by time, per ARB_COMMIT_BOUNDS_US
} arb_tally_t;

//  Adds one commit that took us microseconds.
void arb_tally_commit (arb_tally_t *self, uint64_t us);

#endif
