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

#endif
