/*  arb_tcp.h — the options every TCP connection of ours gets.

    Small writes go at once (TCP_NODELAY, as libzmq sets): requests and
    replies are small and each is waited for.

    Keepalive probes find a peer whose host vanished without a FIN or an
    RST (powered off, cut off the network): without them, a connection
    that has nothing to send is held for ever, and with it what its peer
    held (an AMQP consumer's unacknowledged deliveries, a Kestrel client's
    open items, a place under a connection limit). After ARB_TCP_IDLE_S
    seconds without a byte from the peer the kernel probes every
    ARB_TCP_INTERVAL_S seconds, and closes the connection after
    ARB_TCP_PROBES unanswered: a vanished host is found within two
    minutes. A live peer's kernel answers the probes whatever its program
    does, so a slow or idle client is never cut by them. (A connection
    with bytes on their way to a vanished host ends by the kernel's
    retransmission limit instead, about 15 minutes with Linux's defaults.)
*/

#ifndef ARB_TCP_H
#define ARB_TCP_H

#include <czmq.h>

#define ARB_TCP_IDLE_S     60  //  seconds of silence before the first probe
#define ARB_TCP_INTERVAL_S 10  //  seconds between two probes
#define ARB_TCP_PROBES     6   //  probes unanswered: the connection ends

//  Sets the options above on a connected or connecting TCP socket. 0, or
//  -1 with errno set when the socket refused one (not a TCP socket):
//  the socket works as before, without it.
int arb_tcp_tune (int fd);

//  The keepalive probes alone, for a socket whose writes another library
//  times (libmicrohttpd corks and uncorks its own). As arb_tcp_tune.
int arb_tcp_keepalive (int fd);

//  The keepalive probes for the TCP connections of a ZeroMQ socket (the
//  broker's ROUTER, a CURVE client's DEALER): before its bind or connect.
void arb_tcp_zsock_keepalive (zsock_t *sock);

#endif
