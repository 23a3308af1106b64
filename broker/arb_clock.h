/*  arb_clock.h — the time of a broker turn.

    The loop reads both clocks once at the start of each turn and lends
    the clock to the layers below it (outbox, lifecycle, verbs), so that
    everything one turn does carries the same time: what is stored and
    sent is Unix time, timers and liveness run on the monotonic clock.

    A plain value, written only by the loop (arb_broker.c).
*/

#ifndef ARB_CLOCK_H
#define ARB_CLOCK_H

#include <stdint.h>

typedef struct {
    uint64_t now_ms;   //  Unix ms of the current turn
    uint64_t mono_ms;  //  monotonic ms of the current turn
} arb_clock_t;

#endif
