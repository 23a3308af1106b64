/*  arb_amqp_channel_priv.h — what a channel's files share, and nothing
    else:

        arb_amqp_channel.c   the channel: its state, its methods, its life
        arb_amqp_consumer.c  consumers, their credit, single active consumers,
                             consumer priorities
        arb_amqp_delivery.c  deliveries and their acks
        arb_amqp_get.c       basic.get

    The rest of the server knows a channel by the functions of
    arb_amqp_priv.h only (its publisher, arb_amqp_publisher.c, too). Not
    for use outside these files.
*/

#ifndef ARB_AMQP_CHANNEL_PRIV_H
#define ARB_AMQP_CHANNEL_PRIV_H

#include "arb_amqp_priv.h"

struct _arb_amqp_channel_t {
    arb_amqp_conn_t *conn;  //  borrowed
    uint16_t number;
    bool closing;
    arb_amqp_publisher_t *publisher;  //  owned: the publishing side
    //  consumers and deliveries
    uint16_t prefetch;          //  per new consumer (global=false), 0: none
    uint16_t prefetch_channel;  //  global=true, 0: none
    //  the channel's prefetch: one link consumer for every ack-mode
    //  consumer made under a global basic.qos, over all of their queues
    uint32_t shared_sub;     //  its subscription, 0: none
    uint32_t shared_limit;   //  the credit it was made with + changes (prefetch_channel)
    size_t shared_unacked;   //  unacked deliveries of shared consumers
    size_t bound_unacked;    //  unacked deliveries of bound consumers (both prefetches)
    size_t nbound;           //  bound consumers now (none: the channel's room is O(1))
    uint64_t shared_turn;    //  round robin among the consumers of one queue
    bool ending;             //  every consumer ends (close): no subscription is remade
    zlistx_t *consumers;     //  owned arb_amqp_consumer_t
    arb_chain_t deliveries;  //  owned arb_amqp_delivery_t, in tag order
    arb_chain_t spare;       //  owned arb_amqp_delivery_t settled, kept for the next
    arb_idmap_t *by_tag;     //  tag -> borrowed delivery
    uint64_t next_tag;
    char *last_queue;         //  owned
    arb_amqp_reply_t *reply;  //  owned: the direct reply-to consumer, or NULL
    //  basic.get in progress
    arb_msg_t *get_reply;  //  owned DISPATCH
    bool get_no_ack;
    bool get_answered;
    uint64_t get_count;             //  messages ready after it
    char *get_queue;                //  owned: the queue's name (it may be deleted meanwhile)
    char *get_broker;               //  owned: its broker queue's name
    arb_amqp_trim_wait_t get_wait;  //  the get waits for its queue's trim (x-max-length)
};

//  ---------------------------------------------------------------------
//  Shared by the channel's files

//  Writes a method frame on the channel.
void arb_amqp_channel_send (arb_amqp_channel_t *self, amqp_method_number_t id, void *m);

//  basic.consume (arb_amqp_consumer.c). Returns 0, or -1 if the channel
//  or the connection failed.
int arb_amqp_channel_consume (arb_amqp_channel_t *self, amqp_basic_consume_t *m);

//  basic.cancel (arb_amqp_consumer.c): the consumer ends. Returns 0.
int arb_amqp_channel_cancel (arb_amqp_channel_t *self, amqp_basic_cancel_t *m);

//  basic.get (arb_amqp_get.c). Returns 0, or -1 if the channel failed.
int arb_amqp_channel_get (arb_amqp_channel_t *self, amqp_basic_get_t *m);

//  The destructor of the channel's consumer list.
void arb_amqp_consumer_destructor (void **item);

//  Ends every consumer (the channel closes): the shared subscription once.
void arb_amqp_channel_end_consumers (arb_amqp_channel_t *self);

//  Tops up the consumer's credit (NULL: ended), or, for one under the
//  channel's prefetch (shared, or bound), every one under it.
void arb_amqp_channel_credit (arb_amqp_channel_t *self, arb_amqp_consumer_t *consumer, bool shared);

//  Sends a task to consumer (basic.deliver).
void arb_amqp_channel_deliver (arb_amqp_channel_t *self,
                               arb_amqp_consumer_t *consumer,
                               arb_dispatch_task_t *task);

//  Holds a task delivered unacked under tag: its delivery (of consumer,
//  or of basic.get if NULL) waits for the client's ack, nack or reject.
//  queue (NULL: deleted already) is where a reject dead-letters from.
void arb_amqp_channel_hold (arb_amqp_channel_t *self,
                            arb_amqp_consumer_t *consumer,
                            arb_amqp_queue_t *queue,
                            arb_dispatch_task_t *task,
                            uint64_t tag);

//  The exchange, routing key and property bytes a task is delivered with:
//  from its headers record, else (a task not published over AMQP) exchange
//  "", the queue's name and no properties.
void arb_amqp_channel_delivery_fields (arb_dispatch_task_t *task,
                                       const char *queue,
                                       char *exchange,
                                       char *key,
                                       const uint8_t **raw,
                                       size_t *raw_size);

//  A quorum queue's delivery carries x-delivery-count, as RabbitMQ 3.10
//  sets it (replacing one the publisher set): the broker's count of
//  earlier deliveries. There a basic.get sets it always (0 the first
//  time), a consumer's delivery only once the message was returned. The publisher's property
//  bytes are re-encoded with it, into *buf (owned by the caller, freed
//  with free); *raw and *raw_size then point there. Left as they are if
//  the properties do not decode or encode (sent without the header).
void arb_amqp_channel_delivery_count (arb_dispatch_task_t *task,
                                      const uint8_t **raw,
                                      size_t *raw_size,
                                      uint8_t **buf);

//  The channel's first delivery (the lowest tag), and the one after d.
arb_amqp_delivery_t *arb_amqp_channel_first_delivery (arb_amqp_channel_t *self);
arb_amqp_delivery_t *arb_amqp_channel_next_delivery (arb_amqp_channel_t *self,
                                                     arb_amqp_delivery_t *d);

//  Puts every unacked delivery back at the head of its queue.
void arb_amqp_channel_release_all (arb_amqp_channel_t *self);

#endif
