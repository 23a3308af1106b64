/*  arb_loglimit.h — how many lines of one kind the log takes a second.

    A peer decides how often the broker or the gateway has something to
    say about it (a refusal, a late result, a connection closed for
    breaking the protocol or refused at a limit); without a limit it
    decides how fast the log's disk fills. Past the limit in a second,
    lines are counted, and the count is logged once the next second
    begins. In proto/, as the broker and the gateway both use it.
*/

#ifndef ARB_LOGLIMIT_H
#define ARB_LOGLIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *module;  //  static: whose lines ("broker", "amqp"), for the count's line
    const char *what;    //  static: what the lines tell of ("refusals"), for the count's line
    uint32_t max;        //  lines a second
    uint64_t second;     //  the second counted
    uint32_t count;      //  lines in it, logged or not
} arb_loglimit_t;

//  Whether a line may be logged at now_ms (any clock in ms); logs how
//  many were not in the second before, if any.
bool arb_loglimit_take (arb_loglimit_t *self, uint64_t now_ms);

#endif
