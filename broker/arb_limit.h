/*  arb_limit.h — a concurrency cap and a rate limit, for a queue or for a
    task name: at most max_running leased at once, and at most rate_per_sec
    dispatches per second (a token bucket holding one second's worth, so
    bursts never exceed the rate over any second).

    Check first, take after: a dispatch must pass its queue's limit and its
    task name's limit, and only then consumes from both.

    A small plain struct, embedded in its owner.
*/

#ifndef ARB_LIMIT_H
#define ARB_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t max_running;   //  0: no cap
    uint32_t rate_per_sec;  //  0: no rate limit
    uint32_t running;       //  leased now
    double tokens;          //  dispatches allowed now (rate limit)
    uint64_t tokens_at_ms;  //  monotonic ms of the last refill; 0 never
} arb_limit_t;

//  Whether one more dispatch may go now. When the rate is what stops it,
//  *retry_ms says in how many ms a token comes (else it is left alone).
bool arb_limit_check (arb_limit_t *self, uint64_t mono_ms, uint64_t *retry_ms);

//  Counts a dispatch that passed arb_limit_check.
void arb_limit_take (arb_limit_t *self);

//  Whether any limit is set.
bool arb_limit_is_set (const arb_limit_t *self);

#endif
