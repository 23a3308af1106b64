/*  arb_handshake.c — a socket's handshake outcomes; see arb_handshake.h.

    libzmq publishes a monitored socket's events on an inproc PAIR it
    binds; each event is two frames: 6 bytes (event u16, value u32, host
    order) and the endpoint. Only handshake outcomes are asked for.
*/

#include "arb_handshake.h"

#define S_EVENTS                                                             \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL    \
     | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH \
     | ZMQ_EVENT_CONNECTED)

//  The failures seen since the last success, as bits: which side of a
//  failed handshake notices first is a race (the broker may close before
//  the peer reads its greeting), so the most telling one seen counts.
#define S_AUTH     1  //  ZAP refused the key
#define S_MISMATCH 2  //  one side CURVE, the other not
#define S_PROTOCOL 4  //  another ZMTP error
#define S_NODETAIL 8  //  the connection went during the handshake

struct _arb_handshake_t {
    void *sock;         //  borrowed: the socket watched (its libzmq handle)
    zsock_t *events;    //  owned: the PAIR the events arrive on
    unsigned failures;  //  S_* bits since the last success
    uint32_t status;    //  the last ZAP status code (S_AUTH)
    uint32_t error;     //  the last other ZMTP protocol error (S_PROTOCOL)
    unsigned drops;     //  S_NODETAIL failures since the last success
    bool reached;       //  a connection was made (TCP, or the transport's own), ever
    bool greeted;       //  a handshake succeeded, ever
    char text[384];     //  the sentence last handed out
};

arb_handshake_t *
arb_handshake_new (zsock_t *sock)
{
    assert (sock);
    //  a name of its own: a closed socket's endpoint may linger a moment
    zuuid_t *uuid = zuuid_new ();
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "inproc://arb-handshake-%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, S_EVENTS) != 0)
        return NULL;
    //  libzmq sends events from its I/O thread and blocks while they
    //  cannot go: with no room (so no limit here; they are few, one per
    //  connection attempt, and read at every question) or no one on this
    //  end (so this end goes only after the monitor is stopped)
    zsock_t *events = zsock_new (ZMQ_PAIR);
    if (events) {
        zsock_set_rcvhwm (events, 0);
        zsock_set_linger (events, 0);
    }
    if (!events || zsock_connect (events, "%s", endpoint) != 0) {
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        zsock_destroy (&events);
        return NULL;
    }
    arb_handshake_t *self = (arb_handshake_t *) zmalloc (sizeof (arb_handshake_t));
    self->sock = zsock_resolve (sock);
    self->events = events;
    return self;
}

void
arb_handshake_destroy (arb_handshake_t **self_p)
{
    assert (self_p);
    arb_handshake_t *self = *self_p;
    if (!self)
        return;
    zmq_socket_monitor (self->sock, NULL, 0);  //  no more events, before no one reads them
    zsock_destroy (&self->events);
    free (self);
    *self_p = NULL;
}

//  Reads the events waiting, keeping the last outcome.
static void
s_drain (arb_handshake_t *self)
{
    void *sock = zsock_resolve (self->events);
    while (true) {
        zmq_msg_t head;
        zmq_msg_init (&head);
        if (zmq_msg_recv (&head, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&head);
            return;
        }
        if (zmq_msg_size (&head) >= 6) {
            uint16_t event;
            uint32_t value;
            memcpy (&event, zmq_msg_data (&head), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&head) + 2, 4);
            if (event == ZMQ_EVENT_CONNECTED)
                self->reached = true;
            else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                self->greeted = true;
                self->failures = 0;
                self->drops = 0;
            }
            else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                self->failures |= S_AUTH;
                self->status = value;
            }
            else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                     && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
                self->failures |= S_MISMATCH;
            else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
                self->failures |= S_PROTOCOL;
                self->error = value;
            }
            else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
                self->failures |= S_NODETAIL;
                self->drops++;
            }
        }
        bool more = zmq_msg_more (&head);
        zmq_msg_close (&head);
        while (more) {  //  the endpoint
            zmq_msg_t part;
            zmq_msg_init (&part);
            more = zmq_msg_recv (&part, sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&part);
            zmq_msg_close (&part);
        }
    }
}

//  The sentence for the failures seen (at least one).
static const char *
s_describe (arb_handshake_t *self, bool secured)
{
    unsigned failures = self->failures;
    if (!secured && !(failures & S_MISMATCH))
        //  a handshake dropped without a word: a broker that wants CURVE
        //  drops a plain peer so before it says so, and so does anything
        //  that is no ZeroMQ peer at all (an AMQP or HTTP port)
        snprintf (self->text, sizeof (self->text),
                  "what listens there closed the connection without a ZeroMQ handshake: it "
                  "%s, or %s",
                  ARB_HANDSHAKE_NOT_ARBITERD, ARB_HANDSHAKE_NEEDS_CURVE);
    else if (!secured)  //  the broker said CURVE
        snprintf (self->text, sizeof (self->text), "%s", ARB_HANDSHAKE_NEEDS_CURVE);
    else if (failures & S_AUTH)
        snprintf (self->text, sizeof (self->text),
                  "the broker refused this peer's certificate (ZAP %u): its public key is not "
                  "among the broker's allowed certificates",
                  self->status);
    else if (failures & S_MISMATCH)
        snprintf (self->text, sizeof (self->text),
                  "the broker does not use CURVE (it runs without --curve): connect without a "
                  "certificate");
    else if (failures & S_PROTOCOL)
        snprintf (self->text, sizeof (self->text),
                  "the handshake with the broker failed (ZMTP protocol error 0x%x)", self->error);
    else
        snprintf (self->text, sizeof (self->text),
                  "the CURVE handshake with the broker failed: is the broker key this broker's "
                  "public key, and does the broker run with --curve?");
    return self->text;
}

const char *
arb_handshake_failure (arb_handshake_t *self, bool secured)
{
    if (!self)
        return NULL;
    s_drain (self);
    return self->failures ? s_describe (self, secured) : NULL;
}

bool
arb_handshake_reached (arb_handshake_t *self)
{
    if (!self)
        return true;  //  not watched: nothing to tell
    s_drain (self);
    return self->reached;
}

bool
arb_handshake_greeted (arb_handshake_t *self)
{
    if (!self)
        return true;
    s_drain (self);
    return self->greeted;
}

zsock_t *
arb_handshake_events (arb_handshake_t *self)
{
    return self ? self->events : NULL;
}

const char *
arb_handshake_refusal (arb_handshake_t *self, bool secured)
{
    if (!self)
        return NULL;
    s_drain (self);
    //  ZAP's 300 is a temporary failure: the next attempt may pass. A
    //  dropped handshake tells of a wrong key only to a CURVE peer: to a
    //  plain one it is a broker killed or cut off mid-handshake, which a
    //  restart mends
    bool refused = ((self->failures & S_AUTH) && self->status != 300)
                   || (self->failures & (S_MISMATCH | S_PROTOCOL))
                   || (secured && self->drops >= ARB_HANDSHAKE_DROPS_MAX);
    return refused ? s_describe (self, secured) : NULL;
}
