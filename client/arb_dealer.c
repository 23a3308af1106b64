/*  arb_dealer.c — a DEALER socket to the broker (see arb_dealer.h). */

#include "arb_dealer.h"
#include "arb_tcp.h"
#include "arb_endpoint.h"

#include <errno.h>

const char *
arb_dealer_endpoint (const char *endpoint)
{
    if (!endpoint || !*endpoint)
        endpoint = getenv ("ARBITER_BROKER");
    if (!endpoint || !*endpoint)
        endpoint = ARB_DEALER_ENDPOINT;
    return endpoint;
}

void
arb_dealer_routing_id (uint8_t id[ARB_DEALER_ID_SIZE])
{
    zuuid_t *uuid = zuuid_new ();
    memcpy (id + 1, zuuid_data (uuid), ARB_DEALER_ID_SIZE - 1);
    zuuid_destroy (&uuid);
    id[0] = 'c';  //  ids starting with a zero byte are reserved to ZeroMQ
}

//  The routing id applies to the connections made after it is set.
static void
s_set_routing_id (zsock_t *sock)
{
    uint8_t id[ARB_DEALER_ID_SIZE];
    arb_dealer_routing_id (id);
    zmq_setsockopt (zsock_resolve (sock), ZMQ_ROUTING_ID, id, sizeof (id));
}

zsock_t *
arb_dealer_new (const char *endpoint, const arb_curve_t *curve, arb_handshake_t **handshake_p)
{
    assert (endpoint);
    //  before libzmq, which would wrap a port over 65535 and connect to it
    char why[256];
    if (arb_endpoint_check (endpoint, false, why, sizeof (why))) {
        errno = EINVAL;
        return NULL;
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    s_set_routing_id (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvhwm (dealer, 0);
    arb_tcp_zsock_keepalive (dealer);
    if (curve)
        arb_curve_apply (curve, dealer);
    arb_handshake_t *handshake = handshake_p ? arb_handshake_new (dealer) : NULL;
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        int err = zmq_errno ();
        arb_handshake_destroy (&handshake);
        zsock_destroy (&dealer);
        errno = err;
        return NULL;
    }
    if (handshake_p)
        *handshake_p = handshake;
    return dealer;
}

int
arb_dealer_reconnect (zsock_t *dealer, const char *endpoint)
{
    assert (dealer && endpoint);
    //  With linger 0 the old pipe goes at once, with what it still holds:
    //  nothing queued for a broker that stopped answering pours out later.
    if (zsock_disconnect (dealer, "%s", endpoint) != 0)
        return -1;
    s_set_routing_id (dealer);
    return zsock_connect (dealer, "%s", endpoint) == 0 ? 0 : -1;
}
