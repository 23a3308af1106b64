/*  arb_handshake.h — why a socket's connection to the broker does not
    come up: its security handshakes, watched.

    A peer whose handshake the broker refuses (no certificate where the
    broker needs one, a certificate it does not allow, a wrong broker
    key, a certificate where the broker runs without --curve) sees
    nothing on its socket: ZeroMQ keeps the messages and retries. So that
    a request that times out can say why, a watcher reads the socket's
    handshake events (zmq_socket_monitor over an inproc pair) and keeps
    the failures seen since the last handshake that succeeded. Which side
    notices a failure first is a race (the broker may close before the
    peer has read its greeting: "no detail"), so the most telling failure
    seen counts.

    A refusal that will not change by trying again (arb_handshake_refusal)
    lets a peer that waits for the broker give up at once, instead of
    after its whole timeout: such a peer polls the watcher's socket
    (arb_handshake_events) beside its own, in the poll its wait does
    anyway, so nothing is read while it does not wait.

    Start the watcher before the socket connects (a refusal that happens
    before it is not seen). Used by the thread that owns the socket.
*/

#ifndef ARB_HANDSHAKE_H
#define ARB_HANDSHAKE_H

#include <czmq.h>
#include <stdbool.h>

//  What a peer without CURVE is told when the broker asks for it.
#define ARB_HANDSHAKE_NEEDS_CURVE                                                     \
    "the broker requires CURVE: give a certificate and the broker's key (--cert and " \
    "--broker-key, or ARBITER_CERT and ARBITER_BROKER_KEY)"

//  What a peer says of a port that answers, but not as ZeroMQ does (the
//  broker's address mistaken: an HTTP server, the gateway's own ports),
//  after the address it names.
#define ARB_HANDSHAKE_NOT_ARBITERD                                                                \
    "does not look like an arbiterd (is it the gateway's Kestrel, HTTP or AMQP port, or another " \
    "server?)"

//  Handshakes dropped without a reason, running, that count as a refusal:
//  one may be a broker that stopped or a connection cut; libzmq tries
//  again 100 ms later (its reconnect interval)
#define ARB_HANDSHAKE_DROPS_MAX 2

typedef struct _arb_handshake_t arb_handshake_t;

//  Watches sock's handshakes (borrowed: destroy the watcher before the
//  socket, which it stops watching). Returns NULL if libzmq cannot
//  monitor it.
arb_handshake_t *arb_handshake_new (zsock_t *sock);

//  Accepts NULL; nulls *self_p.
void arb_handshake_destroy (arb_handshake_t **self_p);

//  Why the handshakes fail, as a sentence for a person (borrowed, valid
//  until the next call), or NULL if none failed since the last one that
//  succeeded. secured says whether the socket uses a certificate
//  (arb_curve_apply), which tells the two sides of a mechanism mismatch
//  apart. Reads the events that came since the last call, never waits.
const char *arb_handshake_failure (arb_handshake_t *self, bool secured);

//  The socket the events arrive on (borrowed; NULL for a NULL watcher):
//  poll it for input beside the watched socket while waiting for the
//  broker, and ask arb_handshake_refusal when it is readable.
zsock_t *arb_handshake_events (arb_handshake_t *self);

//  Whether a connection to the peer was ever made (true when self is
//  NULL: nothing watched, nothing to tell). False: nothing answered at
//  the endpoint, so nothing sent reached it.
bool arb_handshake_reached (arb_handshake_t *self);

//  Whether a ZeroMQ handshake ever succeeded (true when self is NULL). A
//  connection made (arb_handshake_reached) without one, and without a
//  failure either, is a peer that holds the connection and says nothing:
//  something that is not ZeroMQ (the gateway's Kestrel or HTTP port).
bool arb_handshake_greeted (arb_handshake_t *self);

//  Why the broker will not take this peer, as arb_handshake_failure says
//  it, or NULL (NULL watcher too): only failures since the last handshake
//  that succeeded which trying again will not mend count: ZAP refused its
//  certificate (any status but 300, "try later"), one side uses CURVE and
//  the other not, another ZMTP protocol error, or, for a CURVE peer
//  (secured), the connection dropped during the handshake
//  ARB_HANDSHAKE_DROPS_MAX times running (the broker cannot read a HELLO
//  made for another key, and closes). Reads the
//  events that came since the last call, never waits.
const char *arb_handshake_refusal (arb_handshake_t *self, bool secured);

#endif
