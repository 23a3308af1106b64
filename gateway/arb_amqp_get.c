/*  arb_amqp_get.c — basic.get on a channel: a TAKE of one task from the
    broker queue, then a STATS for the count left after it, the
    connection's input held until both are answered. A queue over its
    x-max-length is trimmed first (the get takes what RabbitMQ's head would
    be); an expired message is dead-lettered and the next one taken
    instead. The message is held as a delivery (arb_amqp_delivery.c)
    unless no_ack.
*/

#include "arb_amqp_channel_priv.h"

static int s_get_ask (arb_amqp_channel_t *self);

static void
s_get_finish (arb_amqp_channel_t *self)
{
    arb_msg_t *reply = self->get_reply;
    self->get_reply = NULL;
    arb_dispatch_body_t *body =
        reply && arb_msg_type (reply) == ARB_MSG_DISPATCH ? arb_msg_dispatch (reply) : NULL;
    if (!body || body->tasks.n == 0) {
        if (reply && arb_msg_type (reply) == ARB_MSG_ERROR)
            zsys_warning ("amqp: basic.get failed queue=%s reason=\"%s\"", self->get_broker,
                          arb_msg_error (reply)->reason);
        amqp_basic_get_empty_t empty = {.cluster_id = amqp_empty_bytes};
        arb_amqp_channel_send (self, AMQP_BASIC_GET_EMPTY_METHOD, &empty);
        arb_msg_destroy (&reply);
        return;
    }
    arb_dispatch_task_t *task = &body->tasks.v[0];
    //  NULL if deleted since: no dead-lettering then
    arb_amqp_queue_t *queue = arb_amqp_model_queue (self->conn->vhost, self->get_queue);
    if (arb_amqp_expire (self->conn->server, queue, task)) {
        //  dead-lettered instead: the next one (input is held until then)
        arb_msg_destroy (&reply);
        if (s_get_ask (self) != 0) {
            amqp_basic_get_empty_t empty = {.cluster_id = amqp_empty_bytes};
            arb_amqp_channel_send (self, AMQP_BASIC_GET_EMPTY_METHOD, &empty);
        }
        return;
    }
    char exchange[ARB_AMQP_NAME_MAX + 1], key[ARB_AMQP_NAME_MAX + 1];
    const uint8_t *raw;
    size_t raw_size;
    arb_amqp_channel_delivery_fields (task, self->get_queue, exchange, key, &raw, &raw_size);
    uint8_t *counted = NULL;
    if (queue && queue->settings.quorum)
        arb_amqp_channel_delivery_count (task, &raw, &raw_size, &counted);
    uint64_t tag = ++self->next_tag;
    bool redelivered = task->delivered > 0;
    if (self->get_no_ack)
        arb_link_complete (self->conn->server->link, task->id, NULL);
    else
        arb_amqp_channel_hold (self, NULL, queue, task, tag);
    amqp_basic_get_ok_t ok = {
        .delivery_tag = tag,
        .redelivered = redelivered,
        .exchange = amqp_cstring_bytes (exchange),
        .routing_key = amqp_cstring_bytes (key),
        .message_count = (uint32_t) (self->get_count > UINT32_MAX ? UINT32_MAX : self->get_count),
    };
    arb_amqp_conn_send_content (self->conn, self->number, AMQP_BASIC_GET_OK_METHOD, &ok, raw,
                                raw_size, &task->payload);
    free (counted);
    arb_msg_destroy (&reply);
}

//  The ready count of a broker queue in a STATS reply.
static void
s_on_get_count (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_amqp_channel_t *self = (arb_amqp_channel_t *) arg;
    self->get_count = arb_amqp_ready_count (*reply_p, self->get_broker);
    uint32_t reqid = arb_msg_reqid (*reply_p);
    if (self->get_answered)
        s_get_finish (self);  //  may ask again (an expired message)
    else
        self->get_answered = true;
    arb_amqp_conn_answered (self->conn, reqid);
}

static void
s_on_get_take (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_amqp_channel_t *self = (arb_amqp_channel_t *) arg;
    self->get_reply = *reply_p;
    *reply_p = NULL;
    uint32_t reqid = arb_msg_reqid (self->get_reply);
    if (self->get_answered)
        s_get_finish (self);  //  may ask again (an expired message)
    else
        self->get_answered = true;
    arb_amqp_conn_answered (self->conn, reqid);
}

//  Asks for the get's message and the count after it; the connection's
//  input waits for both. 0, or -1 if the TAKE was refused.
static int
s_get_ask (arb_amqp_channel_t *self)
{
    arb_amqp_t *server = self->conn->server;
    self->get_answered = false;
    self->get_count = 0;
    //  the turn's outcomes first: a message nacked just before is back
    //  at the head when the TAKE comes. Then TAKE, then STATS: the broker
    //  answers in order, so the count is what is left after the take
    arb_gateway_flush (server->gateway);
    arb_link_flush (server->link);
    uint32_t take = arb_gateway_take (server->gateway, self->get_broker, 1, s_on_get_take, self);
    if (!take)
        return -1;
    arb_amqp_conn_wait (self->conn, take);
    arb_msg_t *stats = arb_amqp_count_request (server, self->get_broker);
    uint32_t count = arb_gateway_send (server->gateway, &stats, s_on_get_count, self);
    if (count)
        arb_amqp_conn_wait (self->conn, count);
    else
        self->get_answered = true;  //  no count: 0
    return 0;
}

//  The trim of the get's queue is done: the get goes now.
static void
s_get_trimmed (void *arg)
{
    arb_amqp_channel_t *self = (arb_amqp_channel_t *) arg;
    arb_amqp_conn_t *conn = self->conn;
    //  what the get was checked against may have changed meanwhile: the
    //  queue gone, or another connection's exclusive queue of that name
    //  (the channel fails)
    arb_amqp_queue_t *queue =
        self->closing ? NULL
                      : arb_amqp_channel_queue_again (self, self->get_queue, AMQP_BASIC_GET_METHOD);
    //  the trim ended because its queue went, and a queue of that name
    //  declared since has a trim of its own under way: wait for that one
    if (queue && arb_amqp_trim_wait (queue, &self->get_wait))
        return;
    if (self->closing)
        ;  //  failed, before or just now: nothing to answer
    else if (!queue) {
        amqp_basic_get_empty_t empty = {.cluster_id = amqp_empty_bytes};
        arb_amqp_channel_send (self, AMQP_BASIC_GET_EMPTY_METHOD, &empty);
    }
    else if (s_get_ask (self) != 0)
        arb_amqp_channel_fail (self, AMQP_RESOURCE_ERROR, "RESOURCE_ERROR - the broker is busy",
                               AMQP_BASIC_GET_METHOD);
    arb_amqp_conn_unhold (conn);
}

int
arb_amqp_channel_get (arb_amqp_channel_t *self, amqp_basic_get_t *m)
{
    arb_amqp_queue_t *queue = arb_amqp_channel_queue (self, m->queue, AMQP_BASIC_GET_METHOD);
    if (!queue)
        return -1;
    if (queue->sac && queue->settings.quorum) {
        //  RabbitMQ 3.10's answer, consumers or not (a classic one serves it)
        char text[512];
        snprintf (text, sizeof (text),
                  "RESOURCE_LOCKED - cannot obtain access to locked queue '%.200s' in vhost "
                  "'%.60s'. basic.get operations are not supported by quorum queues with single "
                  "active consumer",
                  queue->name, arb_amqp_vhost_name (self->conn->vhost));
        arb_amqp_channel_fail (self, AMQP_RESOURCE_LOCKED, text, AMQP_BASIC_GET_METHOD);
        return -1;
    }
    arb_amqp_t *server = self->conn->server;
    arb_amqp_queue_used (server, queue);
    free (self->get_queue);
    free (self->get_broker);
    self->get_queue = strdup (queue->name);
    self->get_broker = strdup (queue->broker);
    self->get_no_ack = m->no_ack;
    //  a queue over its x-max-length is trimmed first: the get takes what
    //  RabbitMQ's head would be after the publishes before it
    self->get_wait = (arb_amqp_trim_wait_t){.fn = s_get_trimmed, .arg = self};
    if (arb_amqp_trim_wait (queue, &self->get_wait)) {
        arb_amqp_conn_hold (self->conn);
        return 0;
    }
    if (s_get_ask (self) != 0) {
        arb_amqp_channel_fail (self, AMQP_RESOURCE_ERROR, "RESOURCE_ERROR - the broker is busy",
                               AMQP_BASIC_GET_METHOD);
        return -1;
    }
    return 0;
}
