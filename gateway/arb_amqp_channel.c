/*  arb_amqp_channel.c — one AMQP channel: its state, the queue a method
    names, and the dispatch of its methods. Its other parts are files of
    their own that share arb_amqp_channel_priv.h (which lists them): its
    consumers and their credit (arb_amqp_consumer.c), its deliveries and
    their acks (arb_amqp_delivery.c) and basic.get (arb_amqp_get.c); its
    publishing side (messages, confirms, transactions) is its publisher
    (arb_amqp_publisher.c).

    States: OPEN, or CLOSING (we sent Channel.Close: every frame but Close
    and Close-Ok is dropped until Close-Ok comes, then the number is free).
    While the publisher reads a message's frames, every frame goes to it.
*/

#include "arb_amqp_channel_priv.h"
#include "arb_spare.h"

#include <inttypes.h>

//  ---------------------------------------------------------------------
//  Plumbing

arb_amqp_conn_t *
arb_amqp_channel_conn (arb_amqp_channel_t *self)
{
    return self->conn;
}

uint16_t
arb_amqp_channel_number (arb_amqp_channel_t *self)
{
    return self->number;
}

const char *
arb_amqp_channel_last_queue (arb_amqp_channel_t *self)
{
    return self->last_queue;
}

void
arb_amqp_channel_set_last_queue (arb_amqp_channel_t *self, const char *name)
{
    free (self->last_queue);
    self->last_queue = strdup (name);
}

bool
arb_amqp_channel_is_closing (arb_amqp_channel_t *self)
{
    return self->closing;
}

void
arb_amqp_channel_send (arb_amqp_channel_t *self, amqp_method_number_t id, void *m)
{
    arb_amqp_conn_send (self->conn, self->number, id, m);
}

void
arb_amqp_channel_fail (arb_amqp_channel_t *self, int code, const char *text, uint32_t method)
{
    if (self->closing)
        return;
    zsys_debug ("amqp: channel error conn=%" PRIu64 " channel=%u code=%d text=\"%.200s\"",
                self->conn->number, self->number, code, text);
    char cut[256];
    amqp_channel_close_t close = {
        .reply_code = (uint16_t) code,
        .reply_text = amqp_cstring_bytes (arb_amqp_frame_short (cut, text)),
        .class_id = (uint16_t) (method >> 16),
        .method_id = (uint16_t) (method & 0xffff),
    };
    arb_amqp_channel_send (self, AMQP_CHANNEL_CLOSE_METHOD, &close);
    self->closing = true;
    //  as on any close: consumers end, unacked deliveries go back
    arb_amqp_channel_end_consumers (self);
    arb_amqp_channel_release_all (self);
    arb_amqp_publisher_reset (self->publisher);
}

arb_amqp_reply_t *
arb_amqp_channel_reply (arb_amqp_channel_t *self)
{
    return self->reply;
}

void
arb_amqp_channel_fail_locked (arb_amqp_channel_t *self, const char *queue, uint32_t method)
{
    //  RabbitMQ's whole text, cut as its texts are (arb_amqp_frame_short)
    char text[1024];
    snprintf (text, sizeof (text),
              "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in "
              "vhost '%s'. It could be originally declared on another connection or the "
              "exclusive property value does not match that of the original declaration.",
              queue, arb_amqp_vhost_name (self->conn->vhost));
    arb_amqp_channel_fail (self, AMQP_RESOURCE_LOCKED, text, method);
}

//  Whether queue is another connection's exclusive queue, which this
//  one may not use: the channel fails (405, RabbitMQ's words).
static bool
s_locked (arb_amqp_channel_t *self, arb_amqp_queue_t *queue, amqp_method_number_t id)
{
    if (!queue->exclusive || queue->owner == self->conn->number)
        return false;
    arb_amqp_channel_fail_locked (self, queue->name, id);
    return true;
}

arb_amqp_queue_t *
arb_amqp_channel_queue_again (arb_amqp_channel_t *self, const char *name, amqp_method_number_t id)
{
    arb_amqp_queue_t *queue = arb_amqp_model_queue (self->conn->vhost, name);
    return queue && s_locked (self, queue, id) ? NULL : queue;
}

arb_amqp_queue_t *
arb_amqp_channel_queue (arb_amqp_channel_t *self, amqp_bytes_t name, amqp_method_number_t id)
{
    char *qname = arb_amqp_frame_str (name);
    if (!*qname && self->last_queue) {
        free (qname);
        qname = strdup (self->last_queue);
    }
    char text[400];
    arb_amqp_queue_t *queue = NULL;
    if (!*qname)
        snprintf (text, sizeof (text), "NOT_FOUND - no previously declared queue");
    else if (!(queue = arb_amqp_model_queue (self->conn->vhost, qname)))
        snprintf (text, sizeof (text), "NOT_FOUND - no queue '%.200s' in vhost '%.60s'", qname,
                  arb_amqp_vhost_name (self->conn->vhost));
    else if (s_locked (self, queue, id)) {
        free (qname);
        return NULL;
    }
    free (qname);
    if (!queue)
        arb_amqp_channel_fail (self, AMQP_NOT_FOUND, text, id);
    return queue;
}

//  ---------------------------------------------------------------------
//  Methods

//  basic.ack, nack, reject: settled now, or at the commit of the
//  channel's transaction (an unknown tag is refused at once all the same,
//  as RabbitMQ does). Returns -1 if the channel failed.
static int
s_on_ack (arb_amqp_channel_t *self, amqp_method_number_t id, uint64_t tag, bool multiple, int how)
{
    bool known = multiple ? tag <= self->next_tag : arb_idmap_lookup (self->by_tag, tag) != NULL;
    if (known && arb_amqp_publisher_keep_ack (self->publisher, id, tag, multiple, how))
        return self->closing ? -1 : 0;
    return arb_amqp_channel_settle (self, id, tag, multiple, how);
}

//  Whether a channel method is one only a server sends.
static bool
s_is_servers (amqp_method_number_t id)
{
    switch (id) {
        case AMQP_CHANNEL_OPEN_OK_METHOD:
        case AMQP_CHANNEL_FLOW_OK_METHOD:
        case AMQP_BASIC_QOS_OK_METHOD:
        case AMQP_BASIC_CONSUME_OK_METHOD:
        case AMQP_BASIC_CANCEL_OK_METHOD:
        case AMQP_BASIC_RETURN_METHOD:
        case AMQP_BASIC_DELIVER_METHOD:
        case AMQP_BASIC_GET_OK_METHOD:
        case AMQP_BASIC_GET_EMPTY_METHOD:
        case AMQP_BASIC_RECOVER_OK_METHOD:
        case AMQP_TX_SELECT_OK_METHOD:
        case AMQP_TX_COMMIT_OK_METHOD:
        case AMQP_TX_ROLLBACK_OK_METHOD:
        case AMQP_CONFIRM_SELECT_OK_METHOD:
        case AMQP_EXCHANGE_DECLARE_OK_METHOD:
        case AMQP_EXCHANGE_DELETE_OK_METHOD:
        case AMQP_EXCHANGE_BIND_OK_METHOD:
        case AMQP_EXCHANGE_UNBIND_OK_METHOD:
        case AMQP_QUEUE_DECLARE_OK_METHOD:
        case AMQP_QUEUE_BIND_OK_METHOD:
        case AMQP_QUEUE_PURGE_OK_METHOD:
        case AMQP_QUEUE_DELETE_OK_METHOD:
        case AMQP_QUEUE_UNBIND_OK_METHOD:
            return true;
        default:
            return false;
    }
}

static int
s_method (arb_amqp_channel_t *self, amqp_method_number_t id, void *m)
{
    switch (id) {
        case AMQP_CHANNEL_CLOSE_METHOD: {
            arb_amqp_conn_t *conn = self->conn;
            uint16_t number = self->number;
            bool consumed = arb_amqp_channel_has_consumers (self);
            arb_amqp_channel_destroy (&conn->channels[number]);
            conn->open_channels--;
            arb_amqp_conn_settle (conn, number, AMQP_CHANNEL_CLOSE_OK_METHOD, NULL, consumed);
            return 0;
        }
        case AMQP_CHANNEL_CLOSE_OK_METHOD:
            arb_amqp_conn_fail (self->conn, AMQP_COMMAND_INVALID,
                                "COMMAND_INVALID - unexpected channel.close-ok", id);
            return -1;
        case AMQP_CHANNEL_OPEN_METHOD:
            arb_amqp_conn_fail (self->conn, AMQP_CHANNEL_ERROR,
                                "CHANNEL_ERROR - second 'channel.open' seen", id);
            return -1;
        case AMQP_CHANNEL_FLOW_METHOD: {
            amqp_channel_flow_t *flow = (amqp_channel_flow_t *) m;
            if (!flow->active) {
                arb_amqp_conn_fail (self->conn, AMQP_NOT_IMPLEMENTED,
                                    "NOT_IMPLEMENTED - active=false", id);
                return -1;
            }
            amqp_channel_flow_ok_t ok = {.active = 1};
            arb_amqp_channel_send (self, AMQP_CHANNEL_FLOW_OK_METHOD, &ok);
            return 0;
        }
        case AMQP_ACCESS_REQUEST_METHOD: {
            amqp_access_request_ok_t ok = {.ticket = 1};
            arb_amqp_channel_send (self, AMQP_ACCESS_REQUEST_OK_METHOD, &ok);
            return 0;
        }
        case AMQP_BASIC_QOS_METHOD: {
            amqp_basic_qos_t *qos = (amqp_basic_qos_t *) m;
            if (qos->prefetch_size) {
                //  a byte window is not kept: refused, as RabbitMQ refuses
                //  it, rather than accepted and ignored
                char text[80];
                snprintf (text, sizeof (text), "NOT_IMPLEMENTED - prefetch_size!=0 (%" PRIu32 ")",
                          qos->prefetch_size);
                arb_amqp_conn_fail (self->conn, AMQP_NOT_IMPLEMENTED, text, id);
                return -1;
            }
            if (qos->global) {
                self->prefetch_channel = qos->prefetch_count;
                //  the shared consumers take the new limit now (their
                //  credit taken back if it is lower, as the link allows)
                self->shared_limit = qos->prefetch_count ? qos->prefetch_count : ARB_AMQP_WINDOW;
                arb_amqp_channel_credit (self, NULL, true);
            }
            else
                self->prefetch = qos->prefetch_count;
            amqp_basic_qos_ok_t ok = {0};
            arb_amqp_channel_send (self, AMQP_BASIC_QOS_OK_METHOD, &ok);
            return 0;
        }
        case AMQP_BASIC_PUBLISH_METHOD:
        case AMQP_CONFIRM_SELECT_METHOD:
        case AMQP_TX_SELECT_METHOD:
        case AMQP_TX_COMMIT_METHOD:
        case AMQP_TX_ROLLBACK_METHOD:
            return arb_amqp_publisher_method (self->publisher, id, m);
        case AMQP_BASIC_CONSUME_METHOD:
            return arb_amqp_channel_consume (self, (amqp_basic_consume_t *) m);
        case AMQP_BASIC_CANCEL_METHOD:
            return arb_amqp_channel_cancel (self, (amqp_basic_cancel_t *) m);
        case AMQP_BASIC_GET_METHOD:
            return arb_amqp_channel_get (self, (amqp_basic_get_t *) m);
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = (amqp_basic_ack_t *) m;
            return s_on_ack (self, id, a->delivery_tag, a->multiple, 0);
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *a = (amqp_basic_nack_t *) m;
            return s_on_ack (self, id, a->delivery_tag, a->multiple, a->requeue ? 1 : 2);
        }
        case AMQP_BASIC_REJECT_METHOD: {
            amqp_basic_reject_t *a = (amqp_basic_reject_t *) m;
            return s_on_ack (self, id, a->delivery_tag, false, a->requeue ? 1 : 2);
        }
        case AMQP_BASIC_RECOVER_ASYNC_METHOD:
        case AMQP_BASIC_RECOVER_METHOD: {
            //  every unacked delivery goes back to its queue, to come again
            //  with redelivered set (requeue=false is treated as true)
            arb_amqp_channel_settle (self, id, 0, true, 1);
            if (id == AMQP_BASIC_RECOVER_METHOD) {
                amqp_basic_recover_ok_t ok = {0};
                arb_amqp_channel_send (self, AMQP_BASIC_RECOVER_OK_METHOD, &ok);
            }
            return 0;
        }
        default:
            if ((id >> 16 == AMQP_EXCHANGE_CLASS || id >> 16 == AMQP_QUEUE_CLASS)
                && !s_is_servers (id))
                return arb_amqp_admin_method (self, id, m);
            {
                //  a method of the server's (an -ok, a delivery) sent by a
                //  client: RabbitMQ's 503, "unimplemented method"; one
                //  the gateway does not have, 540
                bool servers = s_is_servers (id);
                char text[200];
                snprintf (text, sizeof (text), "%s - %s",
                          servers ? "COMMAND_INVALID - unimplemented method" : "NOT_IMPLEMENTED",
                          arb_amqp_frame_method_name (id).text);
                arb_amqp_conn_fail (
                    self->conn, servers ? AMQP_COMMAND_INVALID : AMQP_NOT_IMPLEMENTED, text, id);
            }
            return -1;
    }
}

int
arb_amqp_channel_frame (arb_amqp_channel_t *self, const arb_amqp_frame_t *frame)
{
    arb_amqp_conn_t *conn = self->conn;
    amqp_method_number_t id = 0;
    void *m = NULL;
    char why[256];
    if (frame->type == AMQP_FRAME_METHOD) {
        int code = arb_amqp_frame_method (frame, &conn->pool, &id, &m, why, sizeof (why));
        if (code) {
            arb_amqp_conn_fail (conn, code, why, id);
            return -1;
        }
    }
    if (self->closing) {
        //  only Close and Close-Ok count until the client's Close-Ok. A
        //  Close of the client's own that crossed ours is answered, and the
        //  channel still waits for the Close-Ok of ours (as RabbitMQ does,
        //  and the spec says), which pika and amqplib send: freeing the
        //  number at once made that Close-Ok a frame on a channel not open
        if (id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_ok_t ok = {0};
            arb_amqp_channel_send (self, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        }
        else if (id == AMQP_CHANNEL_CLOSE_OK_METHOD) {
            uint16_t number = self->number;
            arb_amqp_channel_destroy (&conn->channels[number]);
            conn->open_channels--;
        }
        return 0;
    }
    if (arb_amqp_publisher_in_content (self->publisher))
        return arb_amqp_publisher_content (self->publisher, frame);
    if (frame->type != AMQP_FRAME_METHOD) {
        arb_amqp_conn_fail (conn, AMQP_UNEXPECTED_FRAME,
                            "UNEXPECTED_FRAME - content frame without a method", 0);
        return -1;
    }
    if (arb_amqp_frame_has_nul (id, m, why, sizeof (why))) {
        arb_amqp_channel_fail (self, AMQP_PRECONDITION_FAILED, why, id);
        return 0;
    }
    return s_method (self, id, m);
}

//  ---------------------------------------------------------------------
//  Life

arb_amqp_channel_t *
arb_amqp_channel_new (arb_amqp_conn_t *conn, uint16_t number)
{
    arb_amqp_channel_t *self = (arb_amqp_channel_t *) zmalloc (sizeof (arb_amqp_channel_t));
    self->conn = conn;
    self->number = number;
    self->consumers = zlistx_new ();
    zlistx_set_destructor (self->consumers, arb_amqp_consumer_destructor);
    arb_chain_init (&self->deliveries);
    arb_chain_init (&self->spare);
    self->by_tag = arb_idmap_new ();
    self->publisher = arb_amqp_publisher_new (self);
    return self;
}

void
arb_amqp_channel_destroy (arb_amqp_channel_t **self_p)
{
    arb_amqp_channel_t *self = *self_p;
    if (!self)
        return;
    arb_amqp_conn_t *conn = self->conn;
    arb_amqp_t *server = conn->server;
    //  a method of this connection waiting for the broker: its answers
    //  would come to a channel that is gone
    for (size_t i = 0; i < conn->npending; i++)
        arb_gateway_forget (server->gateway, conn->pending[i]);
    conn->npending = 0;
    arb_amqp_admin_forget (conn);
    if (self->get_wait.trim) {
        arb_amqp_trim_unwait (&self->get_wait);
        arb_amqp_conn_unhold (conn);
    }
    arb_amqp_conn_resume (conn);
    arb_amqp_channel_end_consumers (self);
    arb_amqp_reply_end (server, &self->reply);
    arb_amqp_channel_release_all (self);
    arb_amqp_publisher_destroy (&self->publisher);
    zlistx_destroy (&self->consumers);
    assert (self->deliveries.size == 0);  //  arb_amqp_channel_release_all
    ARB_SPARE_FREE (&self->spare, arb_amqp_delivery_t, node);
    arb_idmap_destroy (&self->by_tag);
    arb_msg_destroy (&self->get_reply);
    free (self->get_queue);
    free (self->get_broker);
    free (self->last_queue);
    free (self);
    *self_p = NULL;
}
