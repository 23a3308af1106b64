/*  arb_dial.h — a link's own connection to the broker: one TCP socket
    that speaks ZMTP 3.1 as a DEALER with the NULL mechanism, read and
    written by the thread that runs the link, with no ZeroMQ I/O thread
    between it and the kernel. The broker answers its tcp:// endpoint the
    same way (broker/arb_wire.h), so a request and its reply cross no
    thread but the two programs' own: with a DEALER each crosses two more
    on each side (the caller's thread to libzmq's, and back).

    Only tcp:// endpoints without CURVE: the link keeps a ZeroMQ DEALER
    (arb_dealer.h) for ipc://, inproc://, CURVE and whatever else libzmq
    takes, and when $ARBITER_LINK_TRANSPORT is "zmq".

    It behaves as a DEALER would for the link: messages sent before a
    connection is up wait for it; a connection that drops is made again
    100 ms later (libzmq's reconnect interval), under the same routing id,
    and what waited to be written on it goes (a message part written
    could not be finished on another connection; the link's own recovery,
    a REGISTER again when the broker does not know it, covers what went).
    Output is written when the caller flushes (the link does at the end of
    each handle), or at once when over ARB_DIAL_WRITE_AT bytes wait, so a
    turn's messages leave in one write.

    Its descriptor (arb_dial_fd) is an epoll descriptor of its own, the
    same for its whole life: readable when the connection has input, or
    when output waits and the socket would take it, or a connection being
    made is done. Used by one thread.
*/

#ifndef ARB_DIAL_H
#define ARB_DIAL_H

#include "arb_curve.h"
#include "arb_proto.h"

#define ARB_DIAL_OUT_MAX      (64u << 20)  //  bytes waiting to go out: sends over it are refused
#define ARB_DIAL_WRITE_AT     (64u << 10)  //  bytes waiting that a send writes at once
#define ARB_DIAL_RECONNECT_MS 100          //  ms between connection attempts
//  A frame the broker sends is at most its largest message: this at the
//  default --max-payload, until told (arb_dial_set_max_payload)
#define ARB_DIAL_FRAME_MAX ARB_MESSAGE_MAX (ARB_PAYLOAD_DEFAULT_MAX)

typedef struct _arb_dial_t arb_dial_t;

//  Starts connecting to endpoint ("tcp://host:port", host a name, an
//  IPv4 address or an IPv6 one in brackets) under a fresh routing id.
//  Returns NULL if endpoint is not of that form (the caller uses a
//  DEALER), or if the system has no descriptor for it.
arb_dial_t *arb_dial_new (const char *endpoint);

//  The connection a peer of the broker keeps to endpoint: a dial
//  (arb_dial_new) for a tcp:// endpoint without curve (borrowed; NULL:
//  no CURVE) unless $ARBITER_LINK_TRANSPORT is "zmq"; NULL when the peer
//  is to use a ZeroMQ DEALER instead.
arb_dial_t *arb_dial_new_for (const char *endpoint, const arb_curve_t *curve);

//  Writes what waits, waiting up to linger_ms for the socket to take it
//  (0: not at all), then closes the connection and frees the dial. Only
//  an open connection gets that time: what waits for a connection to be
//  made goes with the dial, as a DEALER's queue goes with its socket.
void arb_dial_destroy (arb_dial_t **self_p, int linger_ms);

//  The descriptor to poll for input (see the top); owned by the dial.
int arb_dial_fd (arb_dial_t *self);

//  Queues a message for the broker and destroys it: 0, or -1 with errno
//  EAGAIN when ARB_DIAL_OUT_MAX bytes wait already (the message is lost),
//  or ENOMEM.
int arb_dial_send (arb_dial_t *self, arb_msg_t **msg_p);

//  The broker's --max-payload, as its WELCOME tells it: a frame over its
//  largest message (ARB_MESSAGE_MAX) drops the connection as malformed.
//  Until this says, ARB_DIAL_FRAME_MAX. Nothing for a NULL dial (the
//  DEALER's connection) or a WELCOME that does not say (0).
void arb_dial_set_max_payload (arb_dial_t *self, uint64_t max_payload);

//  How long a message may take to come whole from its first byte, a
//  second more for each MiB of it in so far, before the bytes of it stop
//  counting as signs of life (arb_dial_heard): ARB_GATHER_MESSAGE_MS
//  unless this says (the tests' shorter one). Nothing for a NULL dial.
void arb_dial_set_message_ms (arb_dial_t *self, uint64_t message_ms);

//  Whether a send would be taken (less than ARB_DIAL_OUT_MAX bytes wait).
bool arb_dial_is_writable (arb_dial_t *self);

//  Writes what waits, as far as the socket takes it now.
void arb_dial_flush (arb_dial_t *self);

//  Takes the next message from the broker, reading the socket when no
//  whole one is buffered; makes a connection that is due. Returns as
//  arb_msg_decode (0, or -2 for a malformed message), or -1 (errno
//  EAGAIN) when none is waiting.
int arb_dial_recv (arb_dial_t *self, const arb_limits_t *limits, arb_msg_t **msg_p);

//  When the dial needs arb_dial_recv or arb_dial_flush although its
//  descriptor may stay quiet: 0 now (a message may be buffered after a
//  batch; output waits that the socket has not refused; a connection
//  attempt is due), else the ms until the next attempt, or -1 (none).
int arb_dial_timeout (arb_dial_t *self);

//  Drops the connection, with what waits to go out, and connects again
//  under a fresh routing id: the broker sees a new peer.
void arb_dial_reconnect (arb_dial_t *self);

//  Takes a connected stream socket (owned from now on) in place of the
//  connection it has or is making, and starts its handshake on it: for a
//  test's or a fuzz target's socket pair (tests only, as is
//  arb_dial_is_connected). When it drops, the dial goes on
//  connecting to its endpoint as after any other.
void arb_dial_adopt (arb_dial_t *self, int fd);

//  Whether it holds a connection (made, in its handshake, or open).
bool arb_dial_is_connected (arb_dial_t *self);

//  Why the last connection attempt or handshake failed (the broker is
//  not there, it wants CURVE, it is not a ZMTP peer...), or NULL if the
//  connection is up or none failed. Borrowed, until the next call.
const char *arb_dial_failure (arb_dial_t *self);

//  Why the broker refused our handshake (it wants CURVE, or it sent
//  ZMTP's ERROR): a failure that trying again will not mend, as
//  arb_handshake_refusal tells it of a DEALER's. It holds until a
//  connection opens or a connect fails (no broker there), across drops
//  that say less. NULL otherwise. Borrowed, until the next call.
const char *arb_dial_refusal (arb_dial_t *self);

//  Whether the handshake is done: messages flow both ways (the gateway
//  submits only while it is: arb_link_is_open).
bool arb_dial_is_open (arb_dial_t *self);

//  When bytes last came from the broker (monotonic ms; 0 never): a part
//  of a message counts, so that a big one on a slow link is not silence,
//  until the message is overdue (arb_dial_set_message_ms): then 0, as a
//  broker stopped or trickling in the middle of one is.
int64_t arb_dial_heard (arb_dial_t *self);

//  How many open connections dropped (the broker stopped or went away;
//  arb_dial_reconnect's own drop counts too): what was sent on one, or
//  waited to be, is gone with it.
uint64_t arb_dial_drops (arb_dial_t *self);

#endif
