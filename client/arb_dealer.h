/*  arb_dealer.h — the DEALER socket a client or a link talks to the broker
    through.

    Its routing id is random and its own (16 bytes, 'c' first): that
    identity is the peer's result channel, so the broker's DONE messages
    and replies find it again after a reconnection, which ZeroMQ's own
    identities would not survive. It never lingers (a dead broker must not
    hold up the program's exit) and buffers what it receives without limit
    (a full queue would make the broker's ROUTER drop DONE and DISPATCH
    messages silently; what comes in is bounded by what the owner asked
    for). With an arb_curve_t it is a CURVE client of a broker that runs
    with --curve, and a watcher of its handshakes (arb_handshake.h) can
    say why such a broker does not answer. Used by one thread, the
    owner's.
*/

#ifndef ARB_DEALER_H
#define ARB_DEALER_H

#include "arb_curve.h"
#include "arb_handshake.h"

#include <czmq.h>

#define ARB_DEALER_ENDPOINT "tcp://127.0.0.1:7700"  //  without an endpoint or $ARBITER_BROKER
#define ARB_DEALER_ID_SIZE  16                      //  bytes of a routing id we make

//  The endpoint to connect to: endpoint if it is not NULL or empty, else
//  the environment variable ARBITER_BROKER, else ARB_DEALER_ENDPOINT.
//  Borrowed.
const char *arb_dealer_endpoint (const char *endpoint);

//  Makes a fresh routing id: 'c', then 15 random bytes (ids that start
//  with a zero byte are ZeroMQ's own).
void arb_dealer_routing_id (uint8_t id[ARB_DEALER_ID_SIZE]);

//  Creates a DEALER with a fresh routing id, a CURVE client with curve
//  (borrowed; NULL: no security), and starts connecting it to endpoint
//  (never waits for the broker). If handshake_p is not NULL, *handshake_p
//  gets a watcher of its handshakes (owned by the caller; NULL if libzmq
//  cannot watch), started before it connects. Returns NULL if the
//  endpoint is malformed (errno says how; EINVAL for one arb_endpoint_check
//  refuses, a port out of 1..65535 among them).
zsock_t *
arb_dealer_new (const char *endpoint, const arb_curve_t *curve, arb_handshake_t **handshake_p);

//  Drops the dealer's connection to endpoint, with every message still
//  waiting in it to go out, and connects again under a fresh routing id:
//  the broker sees a new peer, while the caller keeps the same socket and
//  descriptor. Returns 0, or -1 if the old connection could not be
//  dropped (the socket is left as it was).
int arb_dealer_reconnect (zsock_t *dealer, const char *endpoint);

#endif
