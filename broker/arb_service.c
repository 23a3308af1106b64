/*  arb_service.c — sd_notify for arbiterd; see arb_service.h. */

#include "arb_service.h"

#include <czmq.h>
#include <systemd/sd-daemon.h>

struct _arb_service_t {
    uint64_t interval_ms;  //  ms between watchdog pings; 0: no watchdog
    uint64_t next_ms;      //  monotonic ms: the next ping
};

arb_service_t *
arb_service_new (void)
{
    arb_service_t *self = (arb_service_t *) zmalloc (sizeof (arb_service_t));
    uint64_t usec = 0;
    //  > 0 only when the watchdog is on for this very process
    if (sd_watchdog_enabled (0, &usec) > 0 && usec > 0) {
        self->interval_ms = usec / 2000;  //  half the interval
        if (self->interval_ms == 0)
            self->interval_ms = 1;
        zsys_info ("service: watchdog on interval_ms=%" PRIu64, self->interval_ms);
    }
    self->next_ms = (uint64_t) zclock_mono ();
    return self;
}

void
arb_service_destroy (arb_service_t **self_p)
{
    assert (self_p);
    arb_service_t *self = *self_p;
    if (!self)
        return;
    free (self);
    *self_p = NULL;
}

void
arb_service_ready (arb_service_t *self, const char *status)
{
    sd_notifyf (0, "READY=1\nSTATUS=%s", status);
    arb_service_tick (self, (uint64_t) zclock_mono ());
}

void
arb_service_tick (arb_service_t *self, uint64_t mono_ms)
{
    if (!self->interval_ms || mono_ms < self->next_ms)
        return;
    sd_notify (0, "WATCHDOG=1");
    self->next_ms = mono_ms + self->interval_ms;
}

uint64_t
arb_service_next_ms (arb_service_t *self)
{
    return self->interval_ms ? self->next_ms : UINT64_MAX;
}

void
arb_service_stopping (arb_service_t *self)
{
    (void) self;
    sd_notify (0, "STOPPING=1\nSTATUS=stopping");
}
