/*  arb_wire.h — the broker's end of its connections: where requests come
    in and replies go out.

    Two ways, one interface. On a tcp:// endpoint without CURVE the loop
    answers the endpoint itself: it accepts the connections, speaks ZMTP 3
    with the NULL mechanism (arb_zmtp.h) as a ROUTER socket would, and
    reads and writes them with plain system calls. A request and its reply
    then pass through no ZeroMQ I/O thread on the broker's side, and a
    turn's replies to one peer leave in one write (docs/broker.md, "The
    endpoint"). Otherwise (an ipc:// or inproc:// endpoint, CURVE, or
    `--transport zeromq`) a ROUTER socket serves, as before.

    What the ROUTER gave the layers above, the loop's own connections give
    too: a routing id per peer (the peer's own, or nine bytes from a zero
    byte, which no peer can choose and libzmq never makes); handover (a
    peer that connects again with its id takes it over, and the old
    connection is closed); refusals when sending (EHOSTUNREACH: no such
    peer; EAGAIN: as many messages wait for it as the ROUTER's high-water
    mark allowed); input read only as the
    loop takes it (TCP holds the rest back at the peer). A connection that
    breaks the protocol is closed, with a line in the log; others are not
    touched.

    Not thread-safe; owned by the broker's loop thread.
*/

#ifndef ARB_WIRE_H
#define ARB_WIRE_H

#include "arb_proto.h"

#include <czmq.h>

typedef struct _arb_wire_t arb_wire_t;

typedef enum {
    ARB_WIRE_AUTO,    //  the loop's own on tcp://, the ROUTER elsewhere
    ARB_WIRE_ZEROMQ,  //  the ROUTER socket, whatever the endpoint
} arb_wire_mode_t;

typedef struct {
    const char *endpoint;
    arb_wire_mode_t mode;
    bool curve;            //  CURVE on: the ROUTER socket serves (arb_auth.h sets it up)
    size_t max_message;    //  largest frame taken; a larger one closes its connection
    size_t peer_rcvhwm;    //  ROUTER: messages of one peer read ahead of the loop
    size_t peer_sndhwm;    //  messages waiting for one peer to read them
    size_t peer_sndbytes;  //  the loop's own: bytes waiting for one peer, past which no
                           //  more are queued and its input is not read
    uint64_t message_ms;   //  the loop's own: a message's time to arrive from its first
                           //  byte, a second more a MiB (0: 30 s); past it, closed
} arb_wire_config_t;

//  A new wire; nothing is bound until arb_wire_bind. NULL on failure.
arb_wire_t *arb_wire_new (const arb_wire_config_t *config);
void arb_wire_destroy (arb_wire_t **self_p);

//  The ROUTER socket (for CURVE's set-up before the bind), or NULL when
//  the loop serves the endpoint itself.
zsock_t *arb_wire_router (arb_wire_t *self);

//  Binds or listens on the endpoint: 0, or -1 (logged).
int arb_wire_bind (arb_wire_t *self);

//  Whether the loop answers the endpoint itself.
bool arb_wire_is_own (arb_wire_t *self);

//  Waits up to timeout_ms (0: not at all; -1: for ever) for input, and
//  writes what waits to go out as the connections take it. Returns the
//  number of sources with something to read, or -1 (errno EINTR:
//  interrupted).
int arb_wire_poll (arb_wire_t *self, int timeout_ms);

//  The next request, as arb_msg_recv_from: 0 or -2 with *msg_p, or -1
//  when nothing more is waiting. Fair between peers: one message from each
//  in turn. user_id as arb_msg_recv_from's (CURVE only; empty otherwise).
int arb_wire_recv (arb_wire_t *self,
                   const arb_limits_t *limits,
                   arb_msg_t **msg_p,
                   char *user_id,
                   size_t user_id_size);

//  Sends a message to its routing id and destroys it, as arb_msg_send: 0,
//  or -1 with errno EHOSTUNREACH (no such peer) or EAGAIN (its output is
//  full). On the loop's own connections it is written at the next
//  arb_wire_flush or arb_wire_poll.
int arb_wire_send (arb_wire_t *self, arb_msg_t **msg_p);

//  Writes what the turn left for each connection, as far as the kernel
//  takes it; the rest waits for arb_wire_poll. The connections the next
//  turn will wait for (arb_wire_await) are written first.
void arb_wire_flush (arb_wire_t *self);

//  Waits up to budget_us for the peers that owe the turn an answer: those
//  sent a reply this turn or the last that have sent nothing since (a
//  producer given its acknowledgement; not a worker given a task, nor a
//  RESULT_OK), so that what they send next shares the turn's commit rather
//  than waiting through another (docs/broker.md, "The loop and group
//  commit"). A peer that lets a wait pass without answering is not waited
//  for in the next 2 turns, then 4, up to 64 while it goes on doing so,
//  and every turn again once it answers within a wait. Returns how many
//  became readable: 0 when none did in time, none was owed, or the ROUTER
//  serves.
int arb_wire_await (arb_wire_t *self, uint64_t budget_us);
//  Ends a turn (what arb_wire_await counts "this turn or the last" by).
void arb_wire_next_turn (arb_wire_t *self);
//  Takes a connected stream socket as one of the loop's own connections,
//  as if it had been accepted (the fuzz target's way in; the wire must be
//  the loop's own). 0, or -1 (the socket is closed).
int arb_wire_adopt (arb_wire_t *self, int fd);

//  Connections open on the loop's own endpoint (0 with the ROUTER).
size_t arb_wire_connections (arb_wire_t *self);

//  Whether input from peer (its routing id) may wait unread: whole frames
//  in its connection's buffer, bytes in the kernel's socket, or bytes of
//  a message partly in read since heard_since_ms (monotonic: a big
//  message on a slow link is not silence, though the peer's heartbeats
//  wait behind it); false for a peer without a connection, or one held
//  (its output over its bound). In the ROUTER's way, which cannot tell
//  one peer's input from another's, and shows whole messages only:
//  whether any input waits.
bool arb_wire_unread (arb_wire_t *self, const uint8_t *peer, size_t size, uint64_t heard_since_ms);

//  Whether output for peer waited in the broker, not yet written to its
//  socket, at any time since since_ms (monotonic): it waits now, or the
//  socket took the last of it after since_ms. False in the ROUTER's way
//  (libzmq holds it), and for a peer without a connection.
bool arb_wire_unwritten (arb_wire_t *self, const uint8_t *peer, size_t size, uint64_t since_ms);

//  A routing id whose connection has closed since the last call and that
//  no connection holds now (as a new frame, the caller's), or NULL when
//  there is none: what the broker keeps for that peer between messages
//  (its watches, its event subscription) is for no one. An id taken over
//  (handover) is not gone when its old connection closes, nor one that a
//  new connection took again before the call: a peer that connects again
//  with its id keeps what it held. The loop's own connections only: a
//  ROUTER does not tell (libzmq's ZMQ_ROUTER_NOTIFY is a draft option,
//  not in Debian 12's 4.3.4), and NULL it always is there.
zframe_t *arb_wire_next_gone (arb_wire_t *self);

#endif
