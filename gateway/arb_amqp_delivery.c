/*  arb_amqp_delivery.c — a channel's deliveries: a task sent to a
    consumer (basic.deliver) or read by basic.get, held until the client
    acks, nacks or rejects it (or the broker takes it back), and settled
    then: completed, released to the head of its queue, or dead-lettered.

    A delivery carries what the message's headers record
    (arb_amqp_frame_record) says: its exchange, routing key and property
    bytes as published. A task without that record (submitted by Kestrel,
    REST or the CLI) is delivered with no properties, from exchange ""
    with its queue's name as routing key.

    A delivery is found by its tag (the channel's by_tag; its chain is in
    tag order) and by its task (the server's held map, while it holds it).
    Each one held counts against its consumer's prefetch or the channel's:
    their credit is topped up as it is settled (arb_amqp_consumer.c).
*/

#include "arb_amqp_channel_priv.h"
#include "arb_spare.h"

#include <inttypes.h>

static void s_delivery_free (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery);

//  Settled delivery records a channel keeps for its next deliveries, at
//  most: a consumer's channel makes and settles one a message
//  (arb_spare.h).
#define S_SPARE_DELIVERIES ARB_SPARES (256)

//  Reads a task's headers record (arb_amqp_frame.h), its exchange and
//  key copied as C strings: 0, or -1 if it is not one.
static int
s_parse_record (
    const arb_bin_t *headers, char *exchange, char *key, const uint8_t **raw, size_t *raw_size)
{
    amqp_bytes_t x, k, r;
    if (arb_amqp_frame_read_record (headers->data, headers->size, &x, &k, &r))
        return -1;
    memcpy (exchange, x.bytes, x.len);
    exchange[x.len] = 0;
    memcpy (key, k.bytes, k.len);
    key[k.len] = 0;
    *raw = (const uint8_t *) r.bytes;
    *raw_size = r.len;
    return 0;
}

void
arb_amqp_channel_hold (arb_amqp_channel_t *self,
                       arb_amqp_consumer_t *consumer,
                       arb_amqp_queue_t *queue,
                       arb_dispatch_task_t *task,
                       uint64_t tag)
{
    arb_amqp_delivery_t *delivery = ARB_SPARE_TAKE (&self->spare, arb_amqp_delivery_t, node);
    delivery->tag = tag;
    delivery->task = task->id;
    delivery->channel = self;
    delivery->consumer = consumer;
    delivery->queue = queue;
    delivery->shared = consumer && consumer->shared;
    delivery->bound = consumer && consumer->bound;
    if (delivery->shared)
        self->shared_unacked++;
    else if (consumer)
        consumer->unacked++;
    if (delivery->bound)
        self->bound_unacked++;
    if (queue && queue->settings.dlx) {
        //  kept for dead-lettering: the task's copy is gone once sent
        delivery->payload = task->payload ? zframe_dup (task->payload) : zframe_new_empty ();
        delivery->headers = zchunk_new (task->headers.data, task->headers.size);
        delivery->expires_ms = arb_amqp_expires_at (queue, &task->headers, task->created_ms);
    }
    arb_chain_add_end (&self->deliveries, &delivery->node);
    arb_idmap_insert (self->by_tag, tag, delivery);
    arb_idmap_insert (self->conn->server->held, task->id, delivery);
}

void
arb_amqp_channel_delivery_fields (arb_dispatch_task_t *task,
                                  const char *queue,
                                  char *exchange,
                                  char *key,
                                  const uint8_t **raw,
                                  size_t *raw_size)
{
    if (s_parse_record (&task->headers, exchange, key, raw, raw_size) != 0) {
        exchange[0] = 0;
        snprintf (key, ARB_AMQP_NAME_MAX + 1, "%s", queue);
        *raw = (const uint8_t *) "\0\0";
        *raw_size = 2;
    }
}

void
arb_amqp_channel_delivery_count (arb_dispatch_task_t *task,
                                 const uint8_t **raw,
                                 size_t *raw_size,
                                 uint8_t **buf)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_basic_properties_t *props = NULL;
    if (arb_amqp_frame_properties (*raw, *raw_size, &pool, &props) != 0)
        goto cleanup;
    amqp_table_t old =
        (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? props->headers : (amqp_table_t){0, NULL};
    amqp_table_entry_t *entries = (amqp_table_entry_t *) amqp_pool_alloc (
        &pool, (size_t) (old.num_entries + 1) * sizeof (amqp_table_entry_t));
    assert (entries);
    int m = 0;
    for (int i = 0; i < old.num_entries; i++)
        if (!(old.entries[i].key.len == 16
              && memcmp (old.entries[i].key.bytes, "x-delivery-count", 16) == 0))
            entries[m++] = old.entries[i];
    entries[m].key = amqp_cstring_bytes ("x-delivery-count");
    entries[m].value.kind = AMQP_FIELD_KIND_I64;
    entries[m++].value.value.i64 = (int64_t) task->delivered;
    props->headers = (amqp_table_t){m, entries};
    props->_flags |= AMQP_BASIC_HEADERS_FLAG;
    size_t cap = *raw_size + 64;
    uint8_t *out = (uint8_t *) malloc (cap);
    assert (out);
    int n = arb_amqp_frame_encode_properties (props, out, cap);
    if (n < 0) {
        free (out);
        goto cleanup;
    }
    *buf = out;
    *raw = out;
    *raw_size = (size_t) n;
cleanup:
    empty_amqp_pool (&pool);
}

void
arb_amqp_channel_deliver (arb_amqp_channel_t *self,
                          arb_amqp_consumer_t *consumer,
                          arb_dispatch_task_t *task)
{
    if (arb_amqp_expire (self->conn->server, consumer->queue, task)) {
        arb_amqp_channel_credit (self, consumer, consumer->shared);
        return;
    }
    char exchange[ARB_AMQP_NAME_MAX + 1], key[ARB_AMQP_NAME_MAX + 1];
    const uint8_t *raw;
    size_t raw_size;
    arb_amqp_channel_delivery_fields (task, consumer->queue->name, exchange, key, &raw, &raw_size);
    uint8_t *counted = NULL;
    if (consumer->queue->settings.quorum && task->delivered > 0)
        arb_amqp_channel_delivery_count (task, &raw, &raw_size, &counted);
    uint64_t tag = ++self->next_tag;
    if (consumer->no_ack)
        arb_link_complete (self->conn->server->link, task->id, NULL);
    else
        arb_amqp_channel_hold (self, consumer, consumer->queue, task, tag);
    amqp_basic_deliver_t deliver = {
        .consumer_tag = amqp_cstring_bytes (consumer->tag),
        .delivery_tag = tag,
        .redelivered = task->delivered > 0,
        .exchange = amqp_cstring_bytes (exchange),
        .routing_key = amqp_cstring_bytes (key),
    };
    arb_amqp_conn_send_content (self->conn, self->number, AMQP_BASIC_DELIVER_METHOD, &deliver, raw,
                                raw_size, &task->payload);
    free (counted);
    arb_amqp_channel_credit (self, consumer, consumer->shared);
}

//  Settles a delivery: ack (complete), requeue (release to the head) or
//  reject (dead-letter if the queue says where, else complete).
static void s_settle (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery, int how);

//  A delivery no longer holds its task: it leaves the credit counts and
//  the server's map (once).
static void
s_delivery_unhold (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery)
{
    if (delivery->stopped)
        return;
    if (delivery->shared)
        self->shared_unacked--;
    else if (delivery->consumer)
        delivery->consumer->unacked--;
    if (delivery->bound)
        self->bound_unacked--;
    if (arb_idmap_lookup (self->conn->server->held, delivery->task) == delivery)
        arb_idmap_remove (self->conn->server->held, delivery->task);
}

void
arb_amqp_channel_stopped (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery)
{
    //  the broker took it back (its queue deleted, or its lease lost across
    //  a restart): the client cannot know, so its tag stays valid until the
    //  client settles it (or the channel closes), and settling it does
    //  nothing (RabbitMQ accepts such an ack, and pika rejects the
    //  deliveries of a consumer the server cancelled); its credit is free now
    arb_amqp_consumer_t *consumer = delivery->consumer;
    bool shared = delivery->shared || delivery->bound;
    s_delivery_unhold (self, delivery);
    delivery->stopped = true;
    zframe_destroy (&delivery->payload);
    zchunk_destroy (&delivery->headers);
    arb_amqp_channel_credit (self, consumer, shared);
}

static void
s_delivery_free (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery)
{
    s_delivery_unhold (self, delivery);
    arb_idmap_remove (self->by_tag, delivery->tag);
    arb_chain_remove (&self->deliveries, &delivery->node);
    zframe_destroy (&delivery->payload);
    zchunk_destroy (&delivery->headers);
    ARB_SPARE_KEEP (&self->spare, delivery, node, S_SPARE_DELIVERIES);
}

arb_amqp_delivery_t *
arb_amqp_channel_first_delivery (arb_amqp_channel_t *self)
{
    return ARB_CHAIN_ITEM (arb_chain_first (&self->deliveries), arb_amqp_delivery_t, node);
}

arb_amqp_delivery_t *
arb_amqp_channel_next_delivery (arb_amqp_channel_t *self, arb_amqp_delivery_t *d)
{
    return ARB_CHAIN_ITEM (arb_chain_next (&self->deliveries, &d->node), arb_amqp_delivery_t, node);
}

void
arb_amqp_channel_release_all (arb_amqp_channel_t *self)
{
    arb_amqp_t *server = self->conn->server;
    arb_amqp_delivery_t *d;
    while ((d = arb_amqp_channel_first_delivery (self))) {
        if (!d->stopped) {
            arb_link_release (server->link, d->task);
            arb_amqp_queue_returned (server, d->queue, d->expires_ms);
        }
        s_delivery_free (self, d);
    }
}

//  how: 0 ack, 1 requeue, 2 reject without requeue
static void
s_settle (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery, int how)
{
    arb_amqp_t *server = self->conn->server;
    arb_amqp_consumer_t *consumer = delivery->consumer;
    bool shared = delivery->shared || delivery->bound;  //  the channel's room grows
    if (delivery->stopped) {
        s_delivery_free (self, delivery);  //  the broker has it back already
        return;
    }
    if (how == 1) {
        arb_link_release (server->link, delivery->task);
        arb_amqp_queue_returned (server, delivery->queue, delivery->expires_ms);
    }
    else if (how == 2 && delivery->queue && delivery->headers
             && arb_amqp_deadletter (
                    server, delivery->queue, delivery->task,
                    (arb_bin_t){zchunk_data (delivery->headers), zchunk_size (delivery->headers)},
                    delivery->payload, "rejected")
                    == 0)
        ;  //  completed once its copies are in
    else
        arb_link_complete (server->link, delivery->task, NULL);
    s_delivery_free (self, delivery);
    arb_amqp_channel_credit (self, consumer, shared);
}

int
arb_amqp_channel_settle (
    arb_amqp_channel_t *self, amqp_method_number_t id, uint64_t tag, bool multiple, int how)
{
    if (!multiple) {
        arb_amqp_delivery_t *d = (arb_amqp_delivery_t *) arb_idmap_lookup (self->by_tag, tag);
        if (!d) {
            char text[128];
            snprintf (text, sizeof (text), "PRECONDITION_FAILED - unknown delivery tag %" PRIu64,
                      tag);
            arb_amqp_channel_fail (self, AMQP_PRECONDITION_FAILED, text, id);
            return -1;
        }
        s_settle (self, d, how);
        return 0;
    }
    if (tag > self->next_tag) {
        char text[128];
        snprintf (text, sizeof (text), "PRECONDITION_FAILED - unknown delivery tag %" PRIu64, tag);
        arb_amqp_channel_fail (self, AMQP_PRECONDITION_FAILED, text, id);
        return -1;
    }
    arb_amqp_delivery_t *d;
    while ((d = arb_amqp_channel_first_delivery (self)) && (tag == 0 || d->tag <= tag))
        s_settle (self, d, how);
    return 0;
}

uint64_t
arb_amqp_channel_take_tag (arb_amqp_channel_t *self)
{
    return ++self->next_tag;
}
