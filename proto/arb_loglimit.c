/*  arb_loglimit.c — how many lines of one kind the log takes a second;
    see arb_loglimit.h.
*/

#include "arb_loglimit.h"

#include <czmq.h>

bool
arb_loglimit_take (arb_loglimit_t *self, uint64_t now_ms)
{
    uint64_t second = now_ms / 1000;
    if (second != self->second) {
        if (self->count > self->max)
            zsys_warning ("%s: %u more %s not logged", self->module, self->count - self->max,
                          self->what);
        self->second = second;
        self->count = 0;
    }
    return ++self->count <= self->max;
}
