/*  arb_amqp_reply.c — direct reply-to, RabbitMQ's amq.rabbitmq.reply-to:
    an RPC client receives its replies without declaring a queue.

    A channel consumes from the pseudo-queue amq.rabbitmq.reply-to, with
    no_ack (the replies are not stored anywhere, so there is nothing to
    acknowledge). A message published on that channel with the reply_to
    property amq.rabbitmq.reply-to goes out with it rewritten to
    amq.rabbitmq.reply-to.TOKEN, TOKEN naming that channel; a message then
    published to the default exchange with that routing key, from any
    connection of the same virtual host, is delivered to the channel's
    reply consumer at once.

    Replies are transient, as with RabbitMQ: they never reach the broker,
    and one whose channel is gone (or closing) is dropped, or returned
    (312 NO_ROUTE) when published mandatory. A reply is also dropped when
    its consumer's connection already has ARB_AMQP_REPLY_BACKLOG bytes
    waiting to be written: the gateway's memory is not a slow client's to
    fill.

    The tokens are 32 random hex digits, so that a reply cannot reach a
    channel that was not named to its publisher: a channel number that is
    used again gets a new token.

    Runs in the reactor's thread.
*/

#include "arb_amqp_priv.h"

#include <inttypes.h>

#define S_PSEUDO     "amq.rabbitmq.reply-to"
#define S_PSEUDO_LEN (sizeof (S_PSEUDO) - 1)
#define S_TOKEN_LEN  32

struct _arb_amqp_reply_t {
    char *tag;  //  owned: the consumer tag
    char token[S_PSEUDO_LEN + 1 + S_TOKEN_LEN + 1];
};

static bool
s_is (amqp_bytes_t name, const char *text)
{
    size_t len = strlen (text);
    return name.len == len && memcmp (name.bytes, text, len) == 0;
}

bool
arb_amqp_reply_is_pseudo (amqp_bytes_t queue)
{
    return s_is (queue, S_PSEUDO);
}

bool
arb_amqp_reply_is_key (const char *key)
{
    return strncmp (key, S_PSEUDO ".", S_PSEUDO_LEN + 1) == 0;
}

int
arb_amqp_reply_consume (arb_amqp_channel_t *channel,
                        arb_amqp_reply_t **self_p,
                        amqp_basic_consume_t *m)
{
    amqp_method_number_t id = AMQP_BASIC_CONSUME_METHOD;
    if (!m->no_ack) {
        arb_amqp_channel_fail (channel, AMQP_PRECONDITION_FAILED,
                               "PRECONDITION_FAILED - reply consumer cannot acknowledge", id);
        return -1;
    }
    if (*self_p) {
        arb_amqp_channel_fail (channel, AMQP_PRECONDITION_FAILED,
                               "PRECONDITION_FAILED - reply consumer already set", id);
        return -1;
    }
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    char *tag = arb_amqp_frame_str (m->consumer_tag);
    if (!*tag) {
        free (tag);
        tag = zsys_sprintf ("amq.ctag-reply-%" PRIu64 ".%u", conn->number,
                            arb_amqp_channel_number (channel));
    }
    if (arb_amqp_channel_has_consumer (channel, tag)) {
        char text[300];
        snprintf (text, sizeof (text), "NOT_ALLOWED - attempt to reuse consumer tag '%.200s'", tag);
        free (tag);
        arb_amqp_conn_fail (conn, AMQP_NOT_ALLOWED, text, id);
        return -1;
    }
    arb_amqp_reply_t *self = (arb_amqp_reply_t *) zmalloc (sizeof (arb_amqp_reply_t));
    self->tag = tag;
    arb_amqp_t *server = conn->server;
    do {
        char *at = self->token + sprintf (self->token, "%s.", S_PSEUDO);
        for (int i = 0; i < S_TOKEN_LEN; i++)
            *at++ = "0123456789abcdef"[randof (16)];
        *at = 0;
    } while (zhashx_lookup (server->replies, self->token));
    zhashx_insert (server->replies, self->token, channel);
    *self_p = self;
    if (!m->nowait) {
        amqp_basic_consume_ok_t ok = {.consumer_tag = amqp_cstring_bytes (tag)};
        arb_amqp_conn_send (conn, arb_amqp_channel_number (channel), AMQP_BASIC_CONSUME_OK_METHOD,
                            &ok);
    }
    return 0;
}

bool
arb_amqp_reply_has_tag (arb_amqp_reply_t *self, const char *tag)
{
    return self && streq (self->tag, tag);
}

void
arb_amqp_reply_end (arb_amqp_t *server, arb_amqp_reply_t **self_p)
{
    arb_amqp_reply_t *self = *self_p;
    if (!self)
        return;
    zhashx_delete (server->replies, self->token);
    free (self->tag);
    free (self);
    *self_p = NULL;
}

//  Where the reply_to property's value lies in raw property bytes (flags,
//  then the values of the flags set, in the class's order). 0 with *off at
//  its length octet, or -1 (absent, or the bytes end early).
static int
s_reply_to_at (const uint8_t *raw, size_t size, size_t *off)
{
    if (size < 2)
        return -1;
    uint16_t flags = (uint16_t) (raw[0] << 8 | raw[1]);
    if (!(flags & AMQP_BASIC_REPLY_TO_FLAG))
        return -1;
    size_t at = 2;
    //  the values before reply_to: content_type, content_encoding (short
    //  strings), headers (a table: its 32-bit size), delivery_mode,
    //  priority (octets), correlation_id (short string)
    if (flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
        at += at < size ? 1 + (size_t) raw[at] : 1;
    if (flags & AMQP_BASIC_CONTENT_ENCODING_FLAG)
        at += at < size ? 1 + (size_t) raw[at] : 1;
    if (flags & AMQP_BASIC_HEADERS_FLAG) {
        if (at + 4 > size)
            return -1;
        at += 4
              + ((size_t) raw[at] << 24 | (size_t) raw[at + 1] << 16 | (size_t) raw[at + 2] << 8
                 | (size_t) raw[at + 3]);
    }
    if (flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
        at++;
    if (flags & AMQP_BASIC_PRIORITY_FLAG)
        at++;
    if (flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        at += at < size ? 1 + (size_t) raw[at] : 1;
    if (at >= size || at + 1 + raw[at] > size)
        return -1;
    *off = at;
    return 0;
}

int
arb_amqp_reply_rewrite (arb_amqp_channel_t *channel, arb_amqp_reply_t *self, zchunk_t **props_p)
{
    const uint8_t *raw = zchunk_data (*props_p);
    size_t size = zchunk_size (*props_p), off;
    if (s_reply_to_at (raw, size, &off) != 0 || raw[off] != S_PSEUDO_LEN
        || memcmp (raw + off + 1, S_PSEUDO, S_PSEUDO_LEN) != 0)
        return 0;
    if (!self) {
        arb_amqp_channel_fail (channel, AMQP_PRECONDITION_FAILED,
                               "PRECONDITION_FAILED - fast reply consumer does not exist",
                               AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    //  the same bytes, with the token in place of the pseudo-queue's name
    size_t token_len = strlen (self->token);
    size_t old_end = off + 1 + S_PSEUDO_LEN;
    size_t new_size = size - S_PSEUDO_LEN + token_len;
    uint8_t *out = (uint8_t *) malloc (new_size);
    assert (out);
    memcpy (out, raw, off);
    out[off] = (uint8_t) token_len;
    memcpy (out + off + 1, self->token, token_len);
    memcpy (out + off + 1 + token_len, raw + old_end, size - old_end);
    zchunk_t *props = zchunk_new (out, new_size);
    free (out);
    zchunk_destroy (props_p);
    *props_p = props;
    return 0;
}

int
arb_amqp_reply_publish (
    arb_amqp_conn_t *from, const char *key, const uint8_t *raw, size_t raw_size, zframe_t **body_p)
{
    arb_amqp_channel_t *channel = (arb_amqp_channel_t *) zhashx_lookup (from->server->replies, key);
    if (!channel || arb_amqp_channel_is_closing (channel))
        return -1;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    arb_amqp_reply_t *self = arb_amqp_channel_reply (channel);
    if (conn->vhost != from->vhost || conn->state != ARB_AMQP_S_RUNNING || !conn->stream)
        return -1;
    if (arb_stream_pending (conn->stream) > ARB_AMQP_REPLY_BACKLOG) {
        zsys_warning ("amqp: reply dropped conn=%" PRIu64 " channel=%u: %zu bytes not yet read",
                      conn->number, arb_amqp_channel_number (channel),
                      arb_stream_pending (conn->stream));
        return -1;
    }
    amqp_basic_deliver_t deliver = {
        .consumer_tag = amqp_cstring_bytes (self->tag),
        .delivery_tag = arb_amqp_channel_take_tag (channel),
        .redelivered = false,
        .exchange = amqp_empty_bytes,
        .routing_key = amqp_cstring_bytes (key),
    };
    arb_amqp_conn_send_content (conn, arb_amqp_channel_number (channel), AMQP_BASIC_DELIVER_METHOD,
                                &deliver, raw, raw_size, body_p);
    return 0;
}

bool
arb_amqp_reply_exists (arb_amqp_conn_t *from, const char *name)
{
    if (streq (name, S_PSEUDO))
        return true;
    arb_amqp_channel_t *channel =
        (arb_amqp_channel_t *) zhashx_lookup (from->server->replies, name);
    return channel && arb_amqp_channel_conn (channel)->vhost == from->vhost;
}
