/*  arb_upstream.h — one connection to an upstream RabbitMQ, run by a
    thread of its own: it consumes one queue, acks and rejects what the
    gateway's loop says, and publishes the replies the loop gives it, with
    publisher confirms.

    rabbitmq-c's client API blocks (connect, login, a publish to a full
    socket), so it runs here and never in the gateway's loop. The thread
    shares nothing with the loop: the two talk over an inproc PAIR socket
    in messages (this module's functions build and read them). Its
    high-water mark is off on both sides, so that neither side ever blocks
    on the other; what crosses is bounded all the same: deliveries by the
    prefetch (RabbitMQ sends no more unacked messages), acks by the
    deliveries, publishes by the loop's window of replies, confirms by the
    publishes.

    Connections are numbered (gen, from 1). A delivery tag means something
    only on the connection it came on, so acks, rejects and publishes name
    the connection they are meant for, and the thread drops those of a
    connection that is gone: RabbitMQ has put that connection's unacked
    deliveries back in the queue, and the loop publishes again on the next
    connection what was not confirmed.

    Reconnecting. A failure to connect, log in, open the channel or
    consume (RabbitMQ away, wrong credentials, no such vhost or queue), and
    a connection lost, are logged with the reason; the thread then tries
    again after a delay: 0.5 s, doubling up to reconnect_max_ms, back to
    0.5 s only when a connection is lost after consuming for 10 s: a
    failure that follows each start (RabbitMQ refuses the replies'
    publish, 403 ACCESS_REFUSED: the user may read the queue but not
    write to the default exchange) backs off as a failure to connect
    does. A loss caused by a reply's publish says so ("publishing a
    reply: ..."). Heartbeats every 30 s find a dead
    connection that the socket does not report. Logs show the URL without
    its password.

    The channels: one (1) with basic.qos(prefetch) and one consumer on the
    queue (server-named tag, manual acks), and one (2) with confirm.select
    for the replies, so that a reply RabbitMQ refuses for good (406, over
    its max_message_size) does not end the consumer: that channel opens
    again, the replies not confirmed are published again (NACKED), and
    the one refused is REFUSED (see s_replies_closed); any other refusal
    of a reply's publish drops the connection, as above. A message whose body is over max_payload is read
    and dropped here and delivered without its body, marked too large.
    Replies go to the default exchange with the reply_to as routing key,
    mandatory: a reply RabbitMQ cannot route (its caller's queue is gone)
    comes back and is logged; the publish is confirmed all the same.
*/

#ifndef ARB_UPSTREAM_H
#define ARB_UPSTREAM_H

#include "arb_proto.h"

typedef struct _arb_upstream_t arb_upstream_t;

typedef struct {
    const char *bridge;         //  the bridge's name, for keys and logs
    const char *url;            //  amqp://user:password@host:port/vhost
    const char *queue;          //  the upstream queue to consume
    uint16_t prefetch;          //  unacked messages at once (basic.qos)
    uint64_t reconnect_max_ms;  //  cap of the delay between attempts
    size_t max_payload;         //  a larger body is delivered as too large
} arb_upstream_config_t;

#define ARB_UPSTREAM_HEARTBEAT_S 30

//  Starts the thread, which connects at once. Returns NULL (after logging
//  why) if the URL does not parse.
arb_upstream_t *arb_upstream_new (const arb_upstream_config_t *config);

//  Closes the connection (unacked deliveries go back to the queue) and
//  ends the thread. Blocks until the thread is done: an attempt to connect
//  in progress ends first (its connect and login time out after 5 and 10
//  s), and closing waits for RabbitMQ 2 s at most. Accepts NULL; nulls
//  *self_p.
void arb_upstream_destroy (arb_upstream_t **self_p);

//  The socket the loop polls for events (borrowed).
zsock_t *arb_upstream_sock (arb_upstream_t *self);

typedef enum {
    ARB_UPSTREAM_UP = 1,     //  connection gen is consuming
    ARB_UPSTREAM_DOWN,       //  connection gen is gone (reason)
    ARB_UPSTREAM_DELIVER,    //  a message
    ARB_UPSTREAM_CONFIRMED,  //  RabbitMQ took the reply to task id
    ARB_UPSTREAM_NACKED,     //  RabbitMQ refused the reply to task id: publish it again
    ARB_UPSTREAM_REFUSED,    //  RabbitMQ refused the reply to task id for good (reason)
} arb_upstream_event_type_t;

//  What the thread tells the loop. Frames are owned by the event: take
//  them (and null the field) or let arb_upstream_event_clear free them.
typedef struct {
    arb_upstream_event_type_t type;
    uint64_t gen;                   //  the connection it concerns
    uint64_t tag;                   //  DELIVER: the delivery tag
    bool redelivered;               //  DELIVER: RabbitMQ may have delivered it before
    bool digest;                    //  DELIVER: key is a digest of the content
    bool too_large;                 //  DELIVER: body over max_payload, not read (body NULL)
    char key[ARB_NAME_MAX + 1];     //  DELIVER: the task's client key
    zframe_t *headers;              //  DELIVER: the task's headers (NULL: over ARB_HEADERS_MAX)
    zframe_t *address;              //  DELIVER: its reply address (NULL: no reply_to)
    zframe_t *body;                 //  DELIVER: the payload
    uint64_t id;                    //  CONFIRMED, NACKED, REFUSED: the task whose reply it is
    char reason[ARB_TEXT_MAX + 1];  //  DOWN, REFUSED: why
} arb_upstream_event_t;

//  Reads the next event without waiting: 0 and event filled, or -1 if
//  none is waiting.
int arb_upstream_recv (arb_upstream_t *self, arb_upstream_event_t *event);

//  Frees the frames an event still owns.
void arb_upstream_event_clear (arb_upstream_event_t *event);

//  Acks delivery tag of connection gen (dropped if gen is gone).
void arb_upstream_ack (arb_upstream_t *self, uint64_t gen, uint64_t tag);

//  Rejects it, back to the queue if requeue, else to RabbitMQ's
//  dead-lettering (dropped if the queue has no dead-letter exchange).
void arb_upstream_reject (arb_upstream_t *self, uint64_t gen, uint64_t tag, bool requeue);

//  Publishes the reply to task id, which ended in state (a state name)
//  with error (NULL: none), on connection gen: body result (taken, nulled)
//  to the reply address (copied). CONFIRMED, NACKED or REFUSED follows,
//  unless connection gen is gone first (then DOWN says so: publish it
//  again on the next one).
void arb_upstream_publish (arb_upstream_t *self,
                           uint64_t gen,
                           uint64_t id,
                           zframe_t *address,
                           const char *state,
                           const char *error,
                           zframe_t **result_p);

#endif
