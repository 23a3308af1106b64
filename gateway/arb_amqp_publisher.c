/*  arb_amqp_publisher.c — the publishing side of one AMQP channel: a
    message's frames read in (basic.publish, content header, body frames),
    its routing to the queues it reaches (one broker task each), publisher
    confirms, and transactions; see arb_amqp_priv.h.

    Content: METHOD -> HEADER -> BODY* as the spec says; the channel sends
    every frame here while arb_amqp_publisher_in_content says so, and any
    other frame in between is 505 UNEXPECTED_FRAME.

    A message's task carries in its headers a small record
    (arb_amqp_frame_record): the exchange and routing key it was published
    with, then the content header's property bytes as the publisher sent
    them, replayed verbatim on delivery (never re-encoded: amqplib cannot
    read some table types other clients write).

    Publishes awaiting the broker are kept in order. With confirms
    (confirm.select), each has a sequence number, and acks go out in that
    order once the broker has answered for every task of a publish (its
    SUBMITTED follows its commit); a run of them is one ack with multiple.
    The broker answers a turn's SUBMIT at once, but task by task: the acks
    wait for a zero-delay timer, which fires after the turn's answers, so
    that a burst of publishes is confirmed by a few acks with multiple (as
    RabbitMQ does) rather than one ack each.

    Transactions (tx.select): a message published or an ack, nack or
    reject sent in a transaction is kept here until tx.commit, which
    settles the acks, then routes and submits the messages (the turn's one
    SUBMIT: stored in one broker commit unless the batch fills), and sends
    Commit-Ok once the broker has answered for each of them, as a confirm
    would go. tx.rollback forgets them (the deliveries stay unacked, as
    with RabbitMQ). A transaction holds at most ARB_AMQP_TX_MAX messages
    and ARB_AMQP_TX_BYTES body bytes (406 past that: the gateway's memory
    is not the client's to fill), and all the transactions of a connection
    ARB_AMQP_TX_BYTES together (2,047 channels did hold 2,047 times it).

    Sender-selected distribution, as RabbitMQ's: the CC and BCC headers
    (arrays; their long strings are routing keys, anything else in them
    is skipped) add routing keys to the publish's for direct and topic
    exchanges and the default one; each queue gets the message once. BCC
    is taken out of the properties before routing, so no queue, return or
    direct reply sees it: the property bytes of such a message are
    re-encoded (rabbitmq-c's encoder), not kept as they came. A CC or BCC header of another type closes the channel
    (406, RabbitMQ's text), for any exchange.

    Runs in the reactor's thread.
*/

#include "arb_amqp_priv.h"
#include "arb_spare.h"

#include <inttypes.h>

#define ARB_AMQP_TX_MAX   10000         //  messages and acks of one transaction
#define ARB_AMQP_TX_BYTES (256u << 20)  //  body bytes of one transaction

//  Ended publish records kept for the next publishes, at most: a publisher
//  makes and ends one a message (arb_spare.h).
#define S_SPARE_PUBLISHES ARB_SPARES (256)

typedef enum {
    S_NONE,
    S_HEADER,
    S_BODY
} s_content_t;

//  A message as published (in content, or kept by a transaction). Its
//  exchange and routing key are short strings (255 bytes at most): kept
//  inline, not in an allocation each.
typedef struct {
    char exchange[256];
    char key[256];
    bool mandatory;
    zchunk_t *props;  //  owned raw property bytes
    zframe_t *body;   //  owned
} s_message_t;

//  An ack, nack or reject kept by a transaction.
typedef struct {
    amqp_method_number_t id;
    uint64_t tag;
    bool multiple;
    int how;  //  as arb_amqp_channel_settle
} s_ack_t;

//  A publish awaiting the broker, or a commit awaiting its publishes.
typedef struct {
    arb_amqp_publisher_t *publisher;  //  borrowed
    uint64_t seq;                     //  publisher confirm number, 0 without confirms
    bool commit;                      //  tx.commit: Commit-Ok once those before are answered
    bool in_tx;                       //  published by a commit: a failure fails that commit
    size_t left;                      //  tasks not yet SUBMITTED
    bool failed;                      //  one was refused: nack
    bool dropped;                     //  in a transaction: a full queue refused one
    uint64_t *tickets;                //  one per task: owned, or &ticket
    uint64_t ticket;                  //  the one ticket of a message routed to one queue
    size_t n;
    arb_chain_link_t node;  //  in the publisher's publishes, or its spare records
} s_publish_t;

struct _arb_amqp_publisher_t {
    arb_amqp_channel_t *channel;  //  borrowed: the channel that owns it
    arb_amqp_conn_t *conn;        //  borrowed
    uint16_t number;              //  the channel's
    s_content_t content;          //  where the message being read is
    s_message_t message;          //  the message being read (owned fields)
    size_t got;                   //  its body bytes read so far
    bool confirm;                 //  confirm.select
    uint64_t next_seq;
    arb_chain_t publishes;  //  owned s_publish_t, in order
    arb_chain_t spare;      //  owned s_publish_t ended, kept for the next
    bool tx;                //  tx.select
    bool tx_failed;         //  a message of the commit under way was not stored
    bool tx_partial;        //  a full queue refused one of the commit under way
    zlistx_t *tx_messages;  //  owned s_message_t, kept until commit
    zlistx_t *tx_acks;      //  owned s_ack_t, kept until commit
    size_t tx_bytes;        //  body bytes of tx_messages
    arb_timer_t progress;   //  armed (0 ms) while answers wait to go out together
};

//  Sets the body bytes the channel's transaction holds, and the
//  connection's count of its channels' together.
static void
s_tx_bytes (arb_amqp_publisher_t *self, size_t bytes)
{
    self->conn->tx_bytes = self->conn->tx_bytes - self->tx_bytes + bytes;
    self->tx_bytes = bytes;
}

static void
s_send (arb_amqp_publisher_t *self, amqp_method_number_t id, void *m)
{
    arb_amqp_conn_send (self->conn, self->number, id, m);
}

static void
s_message_clear (s_message_t *message)
{
    message->exchange[0] = message->key[0] = 0;
    zchunk_destroy (&message->props);
    zframe_destroy (&message->body);
}

static void
s_message_destructor (void **item)
{
    s_message_t *message = (s_message_t *) *item;
    if (!message)
        return;
    s_message_clear (message);
    free (message);
    *item = NULL;
}

static void
s_free_destructor (void **item)
{
    free (*item);
    *item = NULL;
}

//  The oldest publish, or NULL.
static s_publish_t *
s_first_publish (arb_amqp_publisher_t *self)
{
    return ARB_CHAIN_ITEM (arb_chain_first (&self->publishes), s_publish_t, node);
}

//  A new publish at the end of the list: a kept record, cleared, or a new
//  one.
static s_publish_t *
s_publish_new (arb_amqp_publisher_t *self)
{
    s_publish_t *publish = ARB_SPARE_TAKE (&self->spare, s_publish_t, node);
    publish->publisher = self;
    arb_chain_add_end (&self->publishes, &publish->node);
    return publish;
}

//  Takes a publish out of the list and keeps its record for the next (or
//  frees it).
static void
s_publish_end (arb_amqp_publisher_t *self, s_publish_t *publish)
{
    arb_chain_remove (&self->publishes, &publish->node);
    if (publish->tickets != &publish->ticket)
        free (publish->tickets);
    ARB_SPARE_KEEP (&self->spare, publish, node, S_SPARE_PUBLISHES);
}

void
arb_amqp_publisher_reset (arb_amqp_publisher_t *self)
{
    self->content = S_NONE;
    s_message_clear (&self->message);
    self->got = 0;
    zlistx_purge (self->tx_messages);
    zlistx_purge (self->tx_acks);
    s_tx_bytes (self, 0);
}

bool
arb_amqp_publisher_in_content (arb_amqp_publisher_t *self)
{
    return self->content != S_NONE;
}

//  ---------------------------------------------------------------------
//  Confirms

//  Sends what the publishes answered allow, in order: the confirms (one
//  ack, with multiple when it covers several, for each run; a nack for
//  each one refused) and a commit's Commit-Ok. Returns -1 if the channel
//  failed (a commit whose message was not stored).
static int
s_progress (arb_amqp_publisher_t *self)
{
    uint64_t run_last = 0;
    size_t run = 0;
    s_publish_t *p;
    int rc = 0;
    if (self->conn->in_doubt)
        return 0;  //  the connection closes with them in doubt: nothing is confirmed
    if (arb_amqp_channel_is_closing (self->channel)) {
        //  we sent Channel.Close: nothing more goes out on it
        while ((p = s_first_publish (self)) && p->left == 0)
            s_publish_end (self, p);
        return 0;
    }
    while ((p = s_first_publish (self)) && p->left == 0) {
        if (p->seq && p->failed) {
            if (run) {
                amqp_basic_ack_t ack = {.delivery_tag = run_last, .multiple = run > 1};
                s_send (self, AMQP_BASIC_ACK_METHOD, &ack);
                run = 0;
            }
            amqp_basic_nack_t nack = {.delivery_tag = p->seq, .multiple = 0, .requeue = 0};
            s_send (self, AMQP_BASIC_NACK_METHOD, &nack);
        }
        else if (p->seq) {
            run_last = p->seq;
            run++;
        }
        if (p->in_tx && p->failed)
            self->tx_failed = true;
        if (p->in_tx && p->dropped)
            self->tx_partial = true;
        bool commit = p->commit;
        s_publish_end (self, p);
        if (commit && self->tx_failed) {
            self->tx_failed = self->tx_partial = false;
            arb_amqp_channel_fail (self->channel, AMQP_INTERNAL_ERROR,
                                   "INTERNAL_ERROR - a message of the transaction was not stored",
                                   AMQP_TX_COMMIT_METHOD);
            rc = -1;
            break;
        }
        if (commit && self->tx_partial) {
            self->tx_partial = false;
            arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED,
                                   "PRECONDITION_FAILED - partial tx completion",
                                   AMQP_TX_COMMIT_METHOD);
            rc = -1;
            break;
        }
        if (commit) {
            amqp_tx_commit_ok_t ok = {0};
            s_send (self, AMQP_TX_COMMIT_OK_METHOD, &ok);
        }
    }
    if (run) {
        amqp_basic_ack_t ack = {.delivery_tag = run_last, .multiple = run > 1};
        s_send (self, AMQP_BASIC_ACK_METHOD, &ack);
    }
    return rc;
}

static void
s_on_progress (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_progress ((arb_amqp_publisher_t *) arg);
}

//  A publish's outcome is unknown (s_on_submitted): the connection closes,
//  from the reactor rather than the answer's callback, which a batch the
//  link refused on its way out runs inside the routing of this
//  connection's next publish, whose channel the close would free under it.
static void
s_on_doubt (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_conn_fail ((arb_amqp_conn_t *) arg, AMQP_CONNECTION_FORCED,
                        "CONNECTION_FORCED - the broker did not answer for a publish: "
                        "unconfirmed messages may or may not have been stored",
                        0);
}

static void
s_on_submitted (arb_gateway_t *gateway,
                const arb_submitted_task_t *task,
                int code,
                const char *error,
                void *arg)
{
    (void) gateway;
    s_publish_t *publish = (s_publish_t *) arg;
    arb_amqp_publisher_t *self = publish->publisher;
    arb_amqp_conn_t *conn = self->conn;
    if (!task && code == ARB_AMQP_OVERFLOW) {
        //  refused by a full queue: nacked under confirms; in a
        //  transaction, dropped, and the commit fails once the others
        //  are stored (as RabbitMQ: "partial tx completion")
        if (!publish->in_tx)
            publish->failed = true;
        else
            publish->dropped = true;
    }
    else if (!task && code == 0 && (publish->seq || publish->in_tx)) {
        //  the outcome is unknown (the broker died or stopped answering
        //  with the SUBMIT on its way): it may be stored, so a nack
        //  ("not stored, publish again") could make a duplicate. As
        //  RabbitMQ when a node dies with unconfirmed messages, the
        //  connection closes: its unconfirmed publishes are in doubt.
        //  That ends the channels, this publisher and publish with them;
        //  until then no confirm goes out (s_progress)
        publish->left--;
        conn->inflight--;
        if (!conn->in_doubt) {
            zsys_warning ("amqp: publish outcome unknown, closing conn=%" PRIu64 " reason=\"%s\"",
                          conn->number, error ? error : "");
            conn->in_doubt = true;
            arb_reactor_arm (conn->server->reactor, &conn->doubt_timer, 0, s_on_doubt, conn);
        }
        return;
    }
    else if (!task) {
        publish->failed = true;
        zsys_warning ("amqp: publish not stored conn=%" PRIu64 " code=%d reason=\"%s\"",
                      conn->number, code, error ? error : "");
    }
    publish->left--;
    if (conn->inflight-- == ARB_AMQP_INFLIGHT_MAX)
        arb_amqp_conn_read_on (conn);
    //  the other answers of this SUBMIT come next, in this turn: their
    //  confirms go out with this one
    if (!self->progress.armed)
        arb_reactor_arm (conn->server->reactor, &self->progress, 0, s_on_progress, self);
}

//  ---------------------------------------------------------------------
//  Routing

//  The CC or BCC header of headers (name), if it is there but not an
//  array, as RabbitMQ refuses it; else NULL.
static const amqp_field_value_t *
s_bad_sender_header (const amqp_table_t *headers, const char *name)
{
    const amqp_field_value_t *value = headers ? arb_amqp_table_get (headers, name) : NULL;
    return value && value->kind != AMQP_FIELD_KIND_ARRAY ? value : NULL;
}

//  The routing keys of a message published with key and headers: key,
//  then the long strings of its CC and BCC arrays (sender-selected
//  distribution). *keys is an owned array of owned strings, *n its size;
//  free them with s_keys_free. With neither header, the common case, no
//  array is made: *keys is NULL and the key alone routes (no allocation
//  a publish). BCC is taken out of headers (in place, in the pool's
//  memory). Returns whether it was there.
static bool
s_sender_keys (const char *key, amqp_table_t *headers, char ***keys, size_t *n)
{
    *n = 1;
    *keys = NULL;
    int bcc = -1;
    bool some = false;
    for (int i = 0; headers && i < headers->num_entries; i++) {
        amqp_table_entry_t *e = &headers->entries[i];
        bool is_cc = e->key.len == 2 && memcmp (e->key.bytes, "CC", 2) == 0;
        bool is_bcc = e->key.len == 3 && memcmp (e->key.bytes, "BCC", 3) == 0;
        if (is_bcc)
            bcc = i;
        if ((is_cc || is_bcc) && e->value.kind == AMQP_FIELD_KIND_ARRAY) {
            *n += (size_t) e->value.value.array.num_entries;
            some = true;
        }
    }
    if (!some && bcc < 0)
        return false;
    *keys = (char **) zmalloc (*n * sizeof (char *));
    (*keys)[0] = strdup (key);
    size_t got = 1;
    for (int i = 0; headers && i < headers->num_entries; i++) {
        amqp_table_entry_t *e = &headers->entries[i];
        bool is_cc = e->key.len == 2 && memcmp (e->key.bytes, "CC", 2) == 0;
        if ((is_cc || i == bcc) && e->value.kind == AMQP_FIELD_KIND_ARRAY)
            for (int j = 0; j < e->value.value.array.num_entries; j++) {
                amqp_field_value_t *v = &e->value.value.array.entries[j];
                if (v->kind == AMQP_FIELD_KIND_UTF8)
                    (*keys)[got++] =
                        strndup ((const char *) v->value.bytes.bytes, v->value.bytes.len);
            }
    }
    *n = got;
    if (bcc < 0)
        return false;
    memmove (headers->entries + bcc, headers->entries + bcc + 1,
             (size_t) (headers->num_entries - bcc - 1) * sizeof (amqp_table_entry_t));
    headers->num_entries--;
    return true;
}

static void
s_keys_free (char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        free (keys[i]);
    free (keys);
}

//  Replaces message's property bytes with props encoded (BCC taken out);
//  left as they were if they do not encode. The old bytes go to *old
//  (NULL if kept), for the caller to destroy once done with props, which
//  points into them.
static void
s_reencode (s_message_t *message, amqp_basic_properties_t *props, zchunk_t **old)
{
    *old = NULL;
    size_t cap = zchunk_size (message->props) + 16;
    uint8_t *out = (uint8_t *) malloc (cap);
    assert (out);
    int size = arb_amqp_frame_encode_properties (props, out, cap);
    if (size >= 0) {
        *old = message->props;
        message->props = zchunk_new (out, (size_t) size);
    }
    free (out);
}

//  Routes a whole message and submits one task per queue it reaches;
//  message's fields are taken. Returns 0, or -1 if the channel failed (no
//  such exchange, an internal one).
static int
s_route (arb_amqp_publisher_t *self, s_message_t *message, bool in_tx)
{
    arb_amqp_conn_t *conn = self->conn;
    arb_amqp_t *server = conn->server;
    arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (conn->vhost, message->exchange);
    if (!exchange || exchange->internal) {
        char text[400];
        snprintf (text, sizeof (text), "%s exchange '%.200s' in vhost '%.60s'",
                  exchange ? "ACCESS_REFUSED - cannot publish to internal" : "NOT_FOUND - no",
                  message->exchange, arb_amqp_vhost_name (conn->vhost));
        s_message_clear (message);
        arb_amqp_channel_fail (self->channel, exchange ? AMQP_ACCESS_REFUSED : AMQP_NOT_FOUND, text,
                               AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    amqp_basic_properties_t *props = NULL;
    arb_amqp_frame_properties (zchunk_data (message->props), zchunk_size (message->props),
                               &conn->pool, &props);
    arb_amqp_targets_t *queues = &server->route;
    amqp_table_t *headers =
        props && (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? &props->headers : NULL;
    char **keys;
    size_t nkeys;
    zchunk_t *old_props = NULL;  //  what props points into, once re-encoded
    if (s_sender_keys (message->key, headers, &keys, &nkeys))
        s_reencode (message, props, &old_props);
    //  a direct reply goes to its consumer, never to a queue
    bool reply = !*message->exchange && arb_amqp_reply_is_key (message->key);
    bool replied = reply
                   && arb_amqp_reply_publish (conn, message->key, zchunk_data (message->props),
                                              zchunk_size (message->props), &message->body)
                          == 0;
    assert (queues->n == 0);  //  nothing routes while a publish is routed
    const char *key = message->key;
    const char *const *routes = keys ? (const char *const *) keys : &key;
    size_t n = reply ? 0 : arb_amqp_model_route_keys (exchange, routes, nkeys, headers, queues);
    s_keys_free (keys, nkeys);
    s_publish_t *publish = s_publish_new (self);
    publish->seq = self->confirm ? ++self->next_seq : 0;
    publish->in_tx = in_tx;
    publish->tickets = n > 1 ? (uint64_t *) zmalloc (n * sizeof (uint64_t)) : &publish->ticket;
    //  held until every task is handed over: a batch refused on the way
    //  answers the tasks before, and must not end the publish under us
    publish->left = 1;
    if (n == 0 && !replied && message->mandatory) {
        amqp_basic_return_t ret = {
            .reply_code = AMQP_NO_ROUTE,
            .reply_text = amqp_cstring_bytes ("NO_ROUTE"),
            .exchange = amqp_cstring_bytes (message->exchange),
            .routing_key = amqp_cstring_bytes (message->key),
        };
        arb_amqp_conn_send_content (conn, self->number, AMQP_BASIC_RETURN_METHOD, &ret,
                                    zchunk_data (message->props), zchunk_size (message->props),
                                    &message->body);
    }
    //  expiry: the queue's TTL or the message's, whichever is sooner
    int64_t message_ttl = arb_amqp_props_ttl (props);
    amqp_bytes_t raw = {zchunk_size (message->props), zchunk_data (message->props)};
    size_t hsize =
        ARB_AMQP_RECORD_OVERHEAD + strlen (message->exchange) + strlen (message->key) + raw.len;
    uint8_t small[1024];
    uint8_t *record = hsize <= sizeof (small) ? small : (uint8_t *) malloc (hsize);
    assert (record);
    arb_amqp_frame_record (record, hsize, amqp_cstring_bytes (message->exchange),
                           amqp_cstring_bytes (message->key), raw);
    for (size_t i = 0; i < n; i++) {
        arb_amqp_queue_t *q = queues->v[i];
        int64_t ttl = message_ttl;
        if (q->settings.has_ttl && (ttl < 0 || (uint64_t) ttl > q->settings.message_ttl_ms))
            ttl = (int64_t) q->settings.message_ttl_ms;
        //  a queue that dead-letters expires its messages itself (the
        //  broker would drop them silently): arb_amqp_deadletter.c
        uint64_t now = (uint64_t) zclock_time ();
        uint64_t at = ttl >= 0 ? now + (uint64_t) (ttl ? ttl : 1) : 0;
        arb_task_spec_t spec = {
            .queue = q->broker,
            .name = ARB_AMQP_TASK_NAME,
            .headers = {record, hsize},
            .expires_ms =
                q->settings.dlx || ttl < 0 ? 0 : arb_amqp_broker_expiry (now, (uint64_t) ttl),
        };
        if (at)
            arb_amqp_queue_expiry (server, q, at);
        //  expiries out of the queue's order: an expired message may wait
        //  behind a live head (arb_amqp_expire checks when it leaves); with
        //  the queue's TTL alone they expire in its order
        if (at && (message_ttl >= 0 || q->settings.max_priority))
            q->expiring = true;
        spec.priority = arb_amqp_model_priority (&q->settings, props);
        if (i + 1 == n) {
            spec.payload = message->body;
            message->body = NULL;
        }
        else
            spec.payload = zframe_dup (message->body);
        uint64_t ticket = arb_amqp_submit (server, q, &spec, s_on_submitted, publish);
        if (ticket) {
            publish->tickets[publish->n++] = ticket;
            publish->left++;
            conn->inflight++;
        }
        else {
            publish->failed = true;
            zsys_warning ("amqp: publish refused queue=%s reason=\"%s\"", q->broker,
                          arb_gateway_error (server->gateway));
        }
    }
    if (record != small)
        free (record);
    //  x-max-length: the bounded queues are trimmed once these are out
    for (size_t i = 0; i < n; i++)
        arb_amqp_queue_grew (server, queues->v[i]);
    queues->n = 0;
    s_message_clear (message);
    zchunk_destroy (&old_props);
    publish->left--;
    return s_progress (self);
}

//  The whole message is in: routed now, or kept until the commit.
static int
s_published (arb_amqp_publisher_t *self)
{
    self->content = S_NONE;
    self->got = 0;
    if (arb_amqp_reply_rewrite (self->channel, arb_amqp_channel_reply (self->channel),
                                &self->message.props)
        != 0) {
        s_message_clear (&self->message);
        return -1;
    }
    if (!self->tx)
        return s_route (self, &self->message, false);
    //  the exchange is checked now, as RabbitMQ does; routing at commit
    arb_amqp_exchange_t *exchange =
        arb_amqp_model_exchange (self->conn->vhost, self->message.exchange);
    size_t size = zframe_size (self->message.body);
    if (!exchange || exchange->internal)
        return s_route (self, &self->message, true);  //  its channel error
    if (zlistx_size (self->tx_messages) + zlistx_size (self->tx_acks) >= ARB_AMQP_TX_MAX
        || self->conn->tx_bytes + size > ARB_AMQP_TX_BYTES) {
        s_message_clear (&self->message);
        char text[200];
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - a transaction holds at most %d messages and acks, and "
                  "a connection's transactions %u body bytes",
                  ARB_AMQP_TX_MAX, ARB_AMQP_TX_BYTES);
        arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED, text,
                               AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    s_message_t *kept = (s_message_t *) zmalloc (sizeof (s_message_t));
    *kept = self->message;
    memset (&self->message, 0, sizeof (self->message));
    zlistx_add_end (self->tx_messages, kept);
    s_tx_bytes (self, self->tx_bytes + size);
    return 0;
}

//  ---------------------------------------------------------------------
//  Content

//  A short string into its 256 bytes, NUL-terminated.
static void
s_copy_short (char *dest, amqp_bytes_t bytes)
{
    size_t len = bytes.len < 255 ? bytes.len : 255;
    if (len)
        memcpy (dest, bytes.bytes, len);
    dest[len] = 0;
}

static int
s_on_publish (arb_amqp_publisher_t *self, amqp_basic_publish_t *m)
{
    if (m->immediate) {
        arb_amqp_conn_fail (self->conn, AMQP_NOT_IMPLEMENTED, "NOT_IMPLEMENTED - immediate=true",
                            AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    s_copy_short (self->message.exchange, m->exchange);
    s_copy_short (self->message.key, m->routing_key);
    self->message.mandatory = m->mandatory;
    self->content = S_HEADER;
    return 0;
}

//  A {tag,value} term as Erlang's ~p lays it out in RabbitMQ's text,
//  starting at column: on one line if it ends before column 79, else
//  broken after the tag, the value on the next line under it.
static void
s_erlang_wrap (const char *term, size_t column, char *out, size_t size)
{
    const char *comma = strchr (term, ',');
    if (term[0] != '{' || !comma || column + strlen (term) < 79 || column > 200) {
        snprintf (out, size, "%s", term);
        return;
    }
    snprintf (out, size, "%.*s\n%*s%s", (int) (comma - term + 1), term, (int) column + 1, "",
              comma + 1);
}

//  RabbitMQ's checks of a message's properties, at its publish: a
//  user_id other than the connection's user and an expiration that is
//  not a number of ms it takes close the channel (406), as does a CC or
//  BCC header that is not an array; and properties too big for a task's
//  headers. Clients rely on
//  them (a user_id is trusted as the sender's only because the server
//  checks it; a mistyped expiration would otherwise keep the message for
//  ever). A missing exchange goes first (404, from s_route), as there.
//  Returns 0, or -1 with the channel failed.
static int
s_check_props (arb_amqp_publisher_t *self, const amqp_basic_properties_t *props, size_t raw_size)
{
    arb_amqp_conn_t *conn = self->conn;
    arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (conn->vhost, self->message.exchange);
    if (!props || !exchange || exchange->internal)
        return 0;
    char text[520], quoted[ARB_AMQP_QUOTE_MAX + 1];
    //  a task's headers (the record of exchange, key and properties) are
    //  at most ARB_HEADERS_MAX bytes at the broker, which would refuse the
    //  task: said here, at the publish, rather than the message lost
    //  unseen (or nacked) later. RabbitMQ takes properties up to the frame
    //  size (docs/gateway.md, "Not done")
    size_t record = ARB_AMQP_RECORD_OVERHEAD + strlen (self->message.exchange)
                    + strlen (self->message.key) + raw_size;
    if (record > ARB_HEADERS_MAX) {
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - message properties, exchange and routing key of %zu "
                  "bytes are over the %d bytes arbiter-gateway keeps",
                  record - ARB_AMQP_RECORD_OVERHEAD, ARB_HEADERS_MAX - ARB_AMQP_RECORD_OVERHEAD);
        arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED, text,
                               AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    const char *user = conn->user ? conn->user : "";
    const amqp_table_t *headers =
        (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? &props->headers : NULL;
    const amqp_field_value_t *cc = s_bad_sender_header (headers, "CC");
    const amqp_field_value_t *bcc = s_bad_sender_header (headers, "BCC");
    char why[180];
    if ((props->_flags & AMQP_BASIC_USER_ID_FLAG)
        && (props->user_id.len != strlen (user)
            || memcmp (props->user_id.bytes, user, props->user_id.len) != 0)) {
        arb_amqp_frame_quote (quoted, props->user_id);
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - user_id property set to '%s' but authenticated user "
                  "was '%.100s'",
                  quoted, user);
    }
    else if ((props->_flags & AMQP_BASIC_EXPIRATION_FLAG)
             && arb_amqp_expiration_ms (props->expiration, why, sizeof (why)) < 0) {
        arb_amqp_frame_quote (quoted, props->expiration);
        //  the term starts where RabbitMQ's format puts it, after the
        //  whole expiration (the quote may be cut)
        char term[400];
        s_erlang_wrap (why,
                       strlen ("invalid expiration '") + props->expiration.len + strlen ("': "),
                       term, sizeof (term));
        snprintf (text, sizeof (text), "PRECONDITION_FAILED - invalid expiration '%s': %s", quoted,
                  term);
    }
    else if (cc || bcc)
        //  RabbitMQ's text (its header_routes throws it), CC looked at first
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - invalid message: "
                  "{unacceptable_type_in_header,\"%s\",%s}",
                  cc ? "CC" : "BCC", arb_amqp_value_type_name (cc ? cc : bcc));
    else
        return 0;
    arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED, text,
                           AMQP_BASIC_PUBLISH_METHOD);
    return -1;
}

static int
s_on_header (arb_amqp_publisher_t *self, const arb_amqp_frame_t *frame)
{
    arb_amqp_content_t content;
    char why[256];
    int code = arb_amqp_frame_content (frame, &self->conn->pool, &content, why, sizeof (why));
    if (code) {
        arb_amqp_conn_fail (self->conn, code, why, AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    size_t max = self->conn->server->config.max_payload;
    if (content.body_size > max) {
        char text[200];
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - message size %" PRIu64 " is larger than max size %zu",
                  content.body_size, max);
        //  its body frames still come: the closing channel drops them
        arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED, text,
                               AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    if (s_check_props (self, content.props, content.raw_size) != 0)
        return -1;  //  its body frames too are dropped by the closing channel
    self->message.props = zchunk_new (content.raw, content.raw_size);
    self->message.body = zframe_new (NULL, (size_t) content.body_size);
    self->got = 0;
    self->content = S_BODY;
    return content.body_size == 0 ? s_published (self) : 0;
}

static int
s_on_body (arb_amqp_publisher_t *self, const arb_amqp_frame_t *frame)
{
    size_t size = zframe_size (self->message.body);
    if (self->got + frame->size > size) {
        char text[200];
        snprintf (text, sizeof (text),
                  "FRAME_ERROR - body of %zu bytes or more, over the %zu the header said",
                  self->got + frame->size, size);
        arb_amqp_conn_fail (self->conn, AMQP_FRAME_ERROR, text, AMQP_BASIC_PUBLISH_METHOD);
        return -1;
    }
    memcpy (zframe_data (self->message.body) + self->got, frame->payload, frame->size);
    self->got += frame->size;
    return self->got == size ? s_published (self) : 0;
}

int
arb_amqp_publisher_content (arb_amqp_publisher_t *self, const arb_amqp_frame_t *frame)
{
    if (self->content == S_HEADER) {
        if (frame->type != AMQP_FRAME_HEADER) {
            arb_amqp_conn_fail (self->conn, AMQP_UNEXPECTED_FRAME,
                                "UNEXPECTED_FRAME - expected content header for class 60", 0);
            return -1;
        }
        return s_on_header (self, frame);
    }
    if (frame->type != AMQP_FRAME_BODY) {
        arb_amqp_conn_fail (self->conn, AMQP_UNEXPECTED_FRAME,
                            "UNEXPECTED_FRAME - expected content body", 0);
        return -1;
    }
    return s_on_body (self, frame);
}

//  ---------------------------------------------------------------------
//  Transactions

bool
arb_amqp_publisher_keep_ack (
    arb_amqp_publisher_t *self, amqp_method_number_t id, uint64_t tag, bool multiple, int how)
{
    if (!self->tx)
        return false;
    if (zlistx_size (self->tx_messages) + zlistx_size (self->tx_acks) >= ARB_AMQP_TX_MAX) {
        char text[200];
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - a transaction holds at most %d messages and acks",
                  ARB_AMQP_TX_MAX);
        arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED, text, id);
        return true;
    }
    s_ack_t *ack = (s_ack_t *) zmalloc (sizeof (s_ack_t));
    *ack = (s_ack_t){id, tag, multiple, how};
    zlistx_add_end (self->tx_acks, ack);
    return true;
}

//  tx.commit: the acks, then the messages, then Commit-Ok behind them.
static int
s_commit (arb_amqp_publisher_t *self)
{
    s_ack_t *ack;
    while ((ack = (s_ack_t *) zlistx_detach (self->tx_acks, NULL))) {
        s_ack_t copy = *ack;
        free (ack);
        //  an unknown tag fails the channel, which forgets the rest
        if (arb_amqp_channel_settle (self->channel, copy.id, copy.tag, copy.multiple, copy.how))
            return -1;
    }
    s_message_t *message;
    while ((message = (s_message_t *) zlistx_detach (self->tx_messages, NULL))) {
        s_tx_bytes (self, self->tx_bytes - (message->body ? zframe_size (message->body) : 0));
        int rc = s_route (self, message, true);
        s_message_destructor ((void **) &message);
        if (rc)
            return -1;
    }
    s_publish_t *commit = s_publish_new (self);
    commit->commit = true;
    commit->tickets = &commit->ticket;
    return s_progress (self);
}

static int
s_not_allowed (arb_amqp_publisher_t *self, amqp_method_number_t id, const char *text)
{
    arb_amqp_channel_fail (self->channel, AMQP_PRECONDITION_FAILED, text, id);
    return -1;
}

int
arb_amqp_publisher_method (arb_amqp_publisher_t *self, amqp_method_number_t id, void *m)
{
    switch (id) {
        case AMQP_BASIC_PUBLISH_METHOD:
            return s_on_publish (self, (amqp_basic_publish_t *) m);
        case AMQP_CONFIRM_SELECT_METHOD: {
            if (self->tx)
                return s_not_allowed (
                    self, id, "PRECONDITION_FAILED - cannot switch from tx to confirm mode");
            self->confirm = true;
            if (!((amqp_confirm_select_t *) m)->nowait) {
                amqp_confirm_select_ok_t ok = {0};
                s_send (self, AMQP_CONFIRM_SELECT_OK_METHOD, &ok);
            }
            return 0;
        }
        case AMQP_TX_SELECT_METHOD: {
            if (self->confirm)
                return s_not_allowed (
                    self, id, "PRECONDITION_FAILED - cannot switch from confirm to tx mode");
            self->tx = true;
            amqp_tx_select_ok_t ok = {0};
            s_send (self, AMQP_TX_SELECT_OK_METHOD, &ok);
            return 0;
        }
        case AMQP_TX_COMMIT_METHOD:
            if (!self->tx)
                return s_not_allowed (self, id,
                                      "PRECONDITION_FAILED - channel is not transactional");
            return s_commit (self);
        case AMQP_TX_ROLLBACK_METHOD: {
            if (!self->tx)
                return s_not_allowed (self, id,
                                      "PRECONDITION_FAILED - channel is not transactional");
            zlistx_purge (self->tx_messages);
            zlistx_purge (self->tx_acks);
            s_tx_bytes (self, 0);
            amqp_tx_rollback_ok_t ok = {0};
            s_send (self, AMQP_TX_ROLLBACK_OK_METHOD, &ok);
            return 0;
        }
        default:
            assert (false);
            return -1;
    }
}

//  ---------------------------------------------------------------------
//  Life

arb_amqp_publisher_t *
arb_amqp_publisher_new (arb_amqp_channel_t *channel)
{
    arb_amqp_publisher_t *self = (arb_amqp_publisher_t *) zmalloc (sizeof (arb_amqp_publisher_t));
    self->channel = channel;
    self->conn = arb_amqp_channel_conn (channel);
    self->number = arb_amqp_channel_number (channel);
    arb_chain_init (&self->publishes);
    arb_chain_init (&self->spare);
    self->tx_messages = zlistx_new ();
    zlistx_set_destructor (self->tx_messages, s_message_destructor);
    self->tx_acks = zlistx_new ();
    zlistx_set_destructor (self->tx_acks, s_free_destructor);
    return self;
}

void
arb_amqp_publisher_destroy (arb_amqp_publisher_t **self_p)
{
    arb_amqp_publisher_t *self = *self_p;
    if (!self)
        return;
    //  the tasks of publishes not yet confirmed are stored all the same
    s_publish_t *p;
    while ((p = s_first_publish (self))) {
        for (size_t i = 0; i < p->n; i++)
            arb_amqp_forget_submit (self->conn->server, p->tickets[i]);
        self->conn->inflight -= p->left;
        s_publish_end (self, p);
    }
    ARB_SPARE_FREE (&self->spare, s_publish_t, node);
    arb_reactor_disarm (self->conn->server->reactor, &self->progress);
    arb_amqp_publisher_reset (self);
    zlistx_destroy (&self->tx_messages);
    zlistx_destroy (&self->tx_acks);
    free (self);
    *self_p = NULL;
}
