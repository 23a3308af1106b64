/*  arb_service.h — arbiterd and its service manager: systemd's sd_notify
    protocol, through libsystemd.

    READY=1 once the journal is loaded and the socket bound (a unit of
    Type=notify counts as started only then, so units ordered after it find
    the broker answering); WATCHDOG=1 from the loop every half of the
    watchdog interval (WatchdogSec=, given as $WATCHDOG_USEC), so a loop
    that hangs — a stuck disk under a commit — gets the broker restarted;
    STOPPING=1 when a stop begins. Without a service manager
    ($NOTIFY_SOCKET unset) every call does nothing.

    Runs in the loop's thread; holds no state but the watchdog's timing.
*/

#ifndef ARB_SERVICE_H
#define ARB_SERVICE_H

#include <stdint.h>

typedef struct _arb_service_t arb_service_t;

//  Reads the watchdog interval from the environment. Never fails.
arb_service_t *arb_service_new (void);

//  Accepts NULL; nulls *self_p.
void arb_service_destroy (arb_service_t **self_p);

//  Tells the manager the service is ready, with a one-line status.
void arb_service_ready (arb_service_t *self, const char *status);

//  Pings the watchdog if a ping is due at mono_ms (zclock_mono).
void arb_service_tick (arb_service_t *self, uint64_t mono_ms);

//  When the next ping is due (monotonic ms), or UINT64_MAX without a
//  watchdog: the loop must not sleep past it.
uint64_t arb_service_next_ms (arb_service_t *self);

//  Tells the manager the service is stopping.
void arb_service_stopping (arb_service_t *self);

#endif
