/*  arb_amqp_priv.h — what the AMQP server's files share: the server, a
    connection, its channels, consumers, deliveries and publishes. Not an
    API: only arb_amqp*.c include it.

    Ownership: the server owns its connections; a connection owns its
    channels (by number); a channel owns its consumers, its unacked
    deliveries and its publisher (the publishes awaiting the broker). A delivery is also
    found by task id through the server's map (STOP from the broker), and a
    consumer is the link's dispatch argument until it unsubscribes.
*/

#ifndef ARB_AMQP_PRIV_H
#define ARB_AMQP_PRIV_H

#include "arb_chain.h"
#include "arb_amqp.h"
#include "arb_amqp_frame.h"
#include "arb_amqp_model.h"
#include "arb_listener.h"
#include "arb_idmap.h"
#include "arb_loglimit.h"
#include "arb_stream.h"


#define ARB_AMQP_WINDOW 1000  //  unacked deliveries of a consumer without a prefetch, at most
#define ARB_AMQP_BURST  32    //  credit a consumer's link consumer holds at most (see s_topup)
#define ARB_AMQP_INFLIGHT_MAX \
    10000  //  publishes awaiting the broker before a connection stops reading
#define ARB_AMQP_HANDSHAKE_MS 10000   //  the handshake must end by then (as RabbitMQ)
#define ARB_AMQP_CLOSE_MS     3000    //  a Close sent: its Close-Ok's time to come
#define ARB_AMQP_TASK_NAME    "amqp"  //  the broker task name of every message
#define ARB_AMQP_CLAIM_MAX    1024    //  a claim's value: names of up to 200 bytes, and room

//  Connections past max_connections that may hold a descriptor at once (in
//  their handshakes, to be told why they are refused: 530 at
//  connection.open, which pika and rabbitmq-c report; or closing); past
//  these, one is closed as it is accepted. Each lasts a handshake and a
//  close at most (ARB_AMQP_HANDSHAKE_MS, ARB_AMQP_CLOSE_MS).
#define ARB_AMQP_REFUSING_MAX 64
//  Refused connections logged a second, at most: the clients decide how
//  often there is one.
#define ARB_AMQP_REFUSALS_LOGGED 5
#define ARB_AMQP_FAILURES_LOGGED 20  //  connection errors and refused logins a second

#define ARB_AMQP_REPLY_BACKLOG \
    (16u << 20)  //  output bytes of a connection past which a direct reply is dropped

typedef struct _arb_amqp_conn_t arb_amqp_conn_t;
typedef struct _arb_amqp_channel_t arb_amqp_channel_t;
typedef struct _arb_amqp_publisher_t arb_amqp_publisher_t;
typedef struct _arb_amqp_reply_t arb_amqp_reply_t;

typedef struct {
    char *name;      //  owned
    char *password;  //  owned
    char *vhosts;    //  owned comma list, or NULL: every vhost
} arb_amqp_user_t;

struct _arb_amqp_t {
    arb_gateway_t *gateway;     //  borrowed
    arb_reactor_t *reactor;     //  borrowed
    arb_link_t *link;           //  borrowed
    arb_amqp_model_t *model;    //  owned
    arb_amqp_config_t config;   //  strings borrowed from the caller
    arb_listener_t *listener;   //  owned
    zlistx_t *users;            //  owned arb_amqp_user_t
    zlistx_t *conns;            //  owned connections (their handles are in conn->handle)
    size_t admitted;            //  of them, admitted at connection.open (conn->admitted)
    arb_loglimit_t refusals;    //  the connections refused at the limit, logged
    arb_loglimit_t failures;    //  the connections failed (logins refused, errors), logged
    arb_idmap_t *held;          //  task id -> borrowed delivery (unacked, or being dead-lettered)
    uint64_t next_conn;         //  connection numbers
    bool loaded;                //  the model was read from the broker
    bool loading;               //  a load is under way
    char *load_after;           //  owned: the last key of the pages read so far, or NULL
    size_t load_records;        //  records read so far
    size_t load_bad;            //  of them, not records
    arb_timer_t load_timer;     //  loading again after a failure
    arb_timer_t expire_timer;   //  x-expires: the next unused queue's deadline
    uint64_t expire_at;         //  monotonic ms it is armed for (0: not armed)
    uint64_t started_ms;        //  monotonic ms at start
    arb_stream_io_t io;         //  the connections' shared read buffer and byte counts
    arb_amqp_targets_t route;   //  a publish's queues while it is routed (kept empty)
    size_t prioritized;         //  consumers with an x-priority other than 0, of every queue
    zlistx_t *trims;            //  owned: x-max-length(-bytes) trims under way (arb_amqp.c)
    zlistx_t *rebounds;         //  owned: queues whose bounds go to the broker again (same)
    arb_timer_t rebound_timer;  //  armed for the next turn while rebounds has any
    zlistx_t *deadletters;      //  owned: messages being dead-lettered (arb_amqp_deadletter.c)
    zlistx_t *admits;  //  owned: messages for queues that refuse to overflow (arb_amqp_admit.c)
    arb_idmap_t *admit_ids;  //  their tickets -> borrowed admits
    uint64_t next_admit;
    zlistx_t *gates;         //  owned: such queues' held messages and counts
    arb_timer_t gate_timer;  //  counts due (armed for the next turn)
    bool gate_armed;
    zlistx_t *heads;         //  owned: expiry checks of queues' heads under way (same)
    arb_timer_t head_timer;  //  the next head check due
    uint64_t head_at;        //  Unix ms it is armed for (0: not armed)
    zhashx_t *replies;       //  owned: direct reply-to token -> borrowed channel
    //  the claim (arb_amqp_claim.c): one gateway serves AMQP for a broker
    char claim[ARB_AMQP_CLAIM_MAX];   //  our value while we hold it ("": not held)
    char wanted[ARB_AMQP_CLAIM_MAX];  //  the value of the last cas sent
    char holder[ARB_AMQP_CLAIM_MAX];  //  standing by: the holder, but its end
    bool claiming;                    //  a claim request is out (claim_req)
    uint32_t claim_req;
    bool claim_cas;           //  it is a cas (else a get)
    uint64_t asked_ms;        //  monotonic: when it was sent
    uint64_t renewed_ms;      //  monotonic: when the last one that matched was sent
    bool full;                //  the last renewal met a full journal (507), said once
    uint64_t full_seen_ms;    //  monotonic: a take-over last met a full journal (0: never)
    bool standby;             //  another gateway holds the claim
    bool stepped_down;        //  another took it over while we held it: the gateway stops
    arb_timer_t claim_timer;  //  the next try, or the next renewal
};

typedef enum {
    ARB_AMQP_S_HEADER,    //  waiting for the protocol header
    ARB_AMQP_S_START_OK,  //  sent Start
    ARB_AMQP_S_TUNE_OK,   //  sent Tune
    ARB_AMQP_S_OPEN,      //  waiting for connection.open
    ARB_AMQP_S_OPENING,   //  connection.open waits for the model to load
    ARB_AMQP_S_RUNNING,
    ARB_AMQP_S_CLOSING,  //  sent Close: only Close and Close-Ok count
    ARB_AMQP_S_CLOSED,   //  Close-Ok sent or received: the socket closes
} arb_amqp_state_t;

struct _arb_amqp_conn_t {
    arb_amqp_t *server;    //  borrowed
    arb_stream_t *stream;  //  owned (freed by itself once closed)
    void *handle;          //  the server's list handle
    uint64_t number;
    arb_amqp_state_t state;
    bool loopback;  //  the peer is on a loopback address
    bool admitted;  //  counted against max_connections from connection.open on
    char peer[64];
    char *user;               //  owned
    arb_amqp_vhost_t *vhost;  //  borrowed
    uint32_t frame_max;
    uint16_t channel_max;
    uint16_t heartbeat;             //  seconds, 0: none
    bool cancel_notify;             //  the client takes basic.cancel from the server
    bool failure_close;             //  the client takes Close on a failed login
    arb_amqp_channel_t **channels;  //  owned, indexed by number (channel_max + 1)
    size_t open_channels;
    amqp_pool_t pool;   //  decoded frames, recycled per frame
    size_t inflight;    //  publishes awaiting the broker
    size_t tx_bytes;    //  body bytes its channels' transactions hold, together
    uint32_t *pending;  //  owned: broker requests the held method waits for (one a
                        //  binding record of an exchange deleted: as many as it has)
    size_t npending;
    size_t pending_max;           //  room in pending
    bool waiting;                 //  a method waits for the broker: input is held
    size_t holds;                 //  and for other things (arb_amqp_conn_hold)
    bool fenced;                  //  input held: the claim is not fresh (arb_amqp_claim_fresh)
    bool blocked_notify;          //  the client takes connection.blocked and unblocked
    bool flow_held;               //  input held at a basic.publish: the link is full
    bool blocked_sent;            //  connection.blocked sent, unblocked not yet
    void *op;                     //  owned: the admin method waiting (arb_amqp_admin.c), or NULL
    uint16_t holding_cancels;     //  a queue.delete's channel ending its consumers, or 0
    uint16_t settling;            //  while a settle is awaited: the channel of the -Ok
    amqp_method_number_t settle;  //  that waits (arb_amqp_conn_settle), or 0
    char *settle_tag;             //  owned: a Cancel-Ok's consumer tag, or NULL
    zlistx_t *held_cancels;       //  owned, or NULL: their Basic.Cancels (channel and tag)
    uint64_t read_mark;           //  stream bytes read at the last heartbeat tick
    uint64_t written_mark;        //  stream bytes written at the last heartbeat tick
    uint32_t silent_ticks;        //  heartbeat ticks without a byte from the client
    arb_timer_t timer;            //  handshake, heartbeat or close timer
    bool in_doubt;                //  a publish's outcome is unknown: no confirm goes out,
    arb_timer_t doubt_timer;      //  and this fails the connection (320) next pass
    bool dead;                    //  gone: freed once nothing of it is on the stack
    int depth;
};

typedef struct {
    arb_amqp_channel_t *channel;  //  borrowed
    char *tag;                    //  owned
    arb_amqp_queue_t *queue;      //  borrowed
    uint32_t sub;                 //  the link's subscription
    bool no_ack;
    bool exclusive;
    bool shared;        //  under the channel's prefetch: the channel's subscription, not sub
    bool bound;         //  its own prefetch (window) and the channel's both: sub's credit
                        //  comes out of the channel's room too
    uint32_t window;    //  unacked deliveries at most (its prefetch, or ARB_AMQP_WINDOW)
    size_t unacked;     //  its unacked deliveries (not shared)
    void *handle;       //  in the channel's consumer list
    void *sac_handle;   //  in its queue's sac list (x-single-active-consumer), or NULL
    int64_t priority;   //  x-priority (0: none)
    void *rank_handle;  //  in its queue's ranks list
} arb_amqp_consumer_t;

typedef struct {
    uint64_t tag;
    uint64_t task;                  //  the broker task id
    arb_amqp_channel_t *channel;    //  borrowed
    arb_amqp_consumer_t *consumer;  //  borrowed, NULL after basic.get or a cancel
    bool shared;                    //  of a shared consumer: its credit is the channel's
    bool bound;                     //  of a bound consumer: counts under the channel's prefetch
    arb_amqp_queue_t *queue;        //  borrowed: for dead-lettering; NULL once it is deleted
    zframe_t *payload;              //  owned copy when the queue dead-letters, else NULL
    zchunk_t *headers;              //  owned copy when the queue dead-letters, else NULL
    uint64_t expires_ms;            //  Unix ms its TTL runs out when the queue dead-letters
                                    //  (checked at the head if it goes back), 0: never
    bool stopped;                   //  the broker took it back: its tag is still the client's
                                    //  to settle (an ack of it does nothing), as RabbitMQ's
    arb_chain_link_t node;          //  in the channel's deliveries, or its spare records
} arb_amqp_delivery_t;

//  ---------------------------------------------------------------------
//  Connection (arb_amqp_conn.c)

//  A server-made name, as RabbitMQ makes them: prefix ("amq.gen-",
//  "amq.ctag-") and 22 random url-safe characters. Owned by the caller.
char *arb_amqp_server_name (const char *prefix);

arb_amqp_conn_t *arb_amqp_conn_new (arb_amqp_t *server, int fd);

//  The peer of the socket fd as logs show it ("HOST:PORT", "?" if
//  unknown) into peer (size bytes), and whether it is a loopback address.
void arb_amqp_peer_name (int fd, char *peer, size_t size, bool *loopback);

//  Whether the connection is on its way out (closing, closed, or its
//  client's end seen, told or now on the socket): not counted against
//  max_connections.
bool arb_amqp_conn_is_gone (arb_amqp_conn_t *self);

//  Ends the connection now (its channels close, their unacked deliveries
//  go back to their queues, its exclusive queues are deleted).
void arb_amqp_conn_close (arb_amqp_conn_t *self);

//  Sends Connection.Close with code and text for class.method (a hard
//  error, or 320 at shutdown), then waits for Close-Ok.
void arb_amqp_conn_fail (arb_amqp_conn_t *self, int code, const char *text, uint32_t method);

//  Writes a method frame on channel.
void arb_amqp_conn_send (arb_amqp_conn_t *self, uint16_t channel, amqp_method_number_t id, void *m);
//  The Basic.Cancel of a consumer that a queue.delete on its own channel
//  ended (holding_cancels: that channel) waits for
//  arb_amqp_conn_send_held_cancels, just after the Delete-Ok, as RabbitMQ
//  orders them (the consumers of other channels are told at once): a
//  client that deletes the queue it consumes, then closes on its
//  Delete-Ok, as amqplib's hello world does, gets the Delete-Ok first.
void arb_amqp_conn_hold_cancel (arb_amqp_conn_t *self, uint16_t channel, const char *tag);
//  Sends the held cancels, to the channels still open.
void arb_amqp_conn_send_held_cancels (arb_amqp_conn_t *self);

//  Writes a message: its method, content header (raw properties) and body
//  frames split at frame max; payload is taken.
void arb_amqp_conn_send_content (arb_amqp_conn_t *self,
                                 uint16_t channel,
                                 amqp_method_number_t id,
                                 void *method,
                                 const uint8_t *raw,
                                 size_t raw_size,
                                 zframe_t **payload_p);

//  Answers a Basic.Cancel or a close (of channel, or of the connection: 0)
//  with ok (AMQP_BASIC_CANCEL_OK_METHOD with the consumer's tag,
//  AMQP_CHANNEL_CLOSE_OK_METHOD, or AMQP_CONNECTION_CLOSE_OK_METHOD, which
//  ends the connection). If it ended consumers (consumed), the -Ok waits,
//  input held, for the broker's answer to a PING sent after their cancels
//  and what they gave back: the tasks that were on their way to them,
//  which the link gives back as they come, come before that answer, so by
//  the -Ok they are in their queues again, as RabbitMQ has a cancelled
//  consumer's deliveries sent before its Cancel-Ok and a closed channel's
//  back by its Close-Ok (a purge or a count right after sees them). With
//  the broker away, or nothing consumed, the -Ok goes at once.
void arb_amqp_conn_settle (arb_amqp_conn_t *self,
                           uint16_t channel,
                           amqp_method_number_t ok,
                           const char *tag,
                           bool consumed);

//  The held method waits for broker request reqid (0: it was refused:
//  the caller answers at once). Returns reqid.
uint32_t arb_amqp_conn_wait (arb_amqp_conn_t *self, uint32_t reqid);

//  Request reqid was answered: once none is left, input goes on.
void arb_amqp_conn_answered (arb_amqp_conn_t *self, uint32_t reqid);

//  The held method waits for something other than a broker answer (a
//  trim: arb_amqp_trim_wait); input goes on once each hold is let go
//  (arb_amqp_conn_unhold) and no answer is awaited.
void arb_amqp_conn_hold (arb_amqp_conn_t *self);
void arb_amqp_conn_unhold (arb_amqp_conn_t *self);

//  Input goes on if the held method waits for nothing more (no answer,
//  no hold).
void arb_amqp_conn_resume (arb_amqp_conn_t *self);
//  Reads the socket again if nothing holds the connection (s_may_read).
void arb_amqp_conn_read_on (arb_amqp_conn_t *self);

//  The model is loaded: connections waiting at open go on.
void arb_amqp_conn_loaded (arb_amqp_conn_t *self);

//  Another gateway serves AMQP for the broker: a connection waiting at
//  open is refused (530), naming it.
void arb_amqp_conn_standby (arb_amqp_conn_t *self);

//  Reads the model from the broker's metadata store, once (arb_amqp.c);
//  called when the claim is held.
void arb_amqp_load (arb_amqp_t *self);

//  Takes or renews the claim (arb_amqp_claim.c), when the broker session
//  is up; then loads. Again on its own timer.
void arb_amqp_claim (arb_amqp_t *self);

//  Gives the claim up (at stop), if held.
void arb_amqp_claim_release (arb_amqp_t *self);

//  Whether the claim is held and its last renewal recent enough that no
//  other gateway can have taken it over (7 s of the claim's 10): AMQP
//  input is read, and timers delete and expire, only while it is.
bool arb_amqp_claim_fresh (arb_amqp_t *self);

//  The claim is fresh again: a connection held for want of it reads on.
void arb_amqp_conn_unfence (arb_amqp_conn_t *self);

//  The link to the broker has room again (arb_gateway_is_full): a
//  connection held at a basic.publish reads on, and is told
//  connection.unblocked if it was told connection.blocked.
void arb_amqp_conn_unblock (arb_amqp_conn_t *self);

//  The client read its output: consumers' credit is topped up.
void arb_amqp_conn_drained (arb_amqp_conn_t *self);

//  ---------------------------------------------------------------------
//  Channels (arb_amqp_channel.c, and the files arb_amqp_channel_priv.h lists)

arb_amqp_channel_t *arb_amqp_channel_new (arb_amqp_conn_t *conn, uint16_t number);

//  Frees a channel: consumers cancelled, unacked deliveries released,
//  publishes forgotten (their tasks are submitted all the same).
void arb_amqp_channel_destroy (arb_amqp_channel_t **self_p);

//  A frame for this channel (method, header or body). Returns 0, or -1 if
//  the connection failed (a hard error was sent).
int arb_amqp_channel_frame (arb_amqp_channel_t *self, const arb_amqp_frame_t *frame);

//  Sends Channel.Close with code and text (a soft error).
void arb_amqp_channel_fail (arb_amqp_channel_t *self, int code, const char *text, uint32_t method);

//  Fails the channel with RabbitMQ's 405 for a queue it may not use: another
//  connection's exclusive queue, or one declared again with the other
//  exclusive flag.
void arb_amqp_channel_fail_locked (arb_amqp_channel_t *self, const char *queue, uint32_t method);

//  Whether the channel waits for the client's Close-Ok.
bool arb_amqp_channel_is_closing (arb_amqp_channel_t *self);

//  The client read its output: its consumers' credit is topped up.
void arb_amqp_channel_drained (arb_amqp_channel_t *self);

//  The queue was deleted: its consumers on this channel are cancelled
//  (basic.cancel sent if the client takes it).
void arb_amqp_channel_queue_gone (arb_amqp_channel_t *self, arb_amqp_queue_t *queue);

//  A held task is no longer ours (the broker stopped it).
void arb_amqp_channel_stopped (arb_amqp_channel_t *self, arb_amqp_delivery_t *delivery);

//  basic.ack (how 0), basic.nack or reject with requeue (1) or without
//  (2) of tag (multiple: every one up to it; 0: all). Returns 0, or -1 if
//  the channel failed (406 for an unknown tag).
int arb_amqp_channel_settle (
    arb_amqp_channel_t *self, amqp_method_number_t id, uint64_t tag, bool multiple, int how);

//  Queue and exchange methods (arb_amqp_admin.c). Each returns 0, or -1
//  if the channel or the connection failed.
int arb_amqp_admin_method (arb_amqp_channel_t *channel, amqp_method_number_t id, void *method);

//  The connection's method waiting for the broker will not be answered
//  (its requests are forgotten): its state is freed.
void arb_amqp_admin_forget (arb_amqp_conn_t *conn);

//  The last queue declared on the channel (borrowed), or NULL.
const char *arb_amqp_channel_last_queue (arb_amqp_channel_t *self);

//  The queue a method names ("": the last declared on the channel), if
//  it exists and this connection may use it; else NULL after failing the
//  channel (404, or 405 for another connection's exclusive queue).
arb_amqp_queue_t *
arb_amqp_channel_queue (arb_amqp_channel_t *self, amqp_bytes_t name, amqp_method_number_t id);

//  The same for a method that waited (a trim) since that check: NULL, and
//  nothing failed, if the queue is gone meanwhile.
arb_amqp_queue_t *
arb_amqp_channel_queue_again (arb_amqp_channel_t *self, const char *name, amqp_method_number_t id);
void arb_amqp_channel_set_last_queue (arb_amqp_channel_t *self, const char *name);
arb_amqp_conn_t *arb_amqp_channel_conn (arb_amqp_channel_t *self);
uint16_t arb_amqp_channel_number (arb_amqp_channel_t *self);
//  The channel's direct reply-to consumer (borrowed), or NULL.
arb_amqp_reply_t *arb_amqp_channel_reply (arb_amqp_channel_t *self);
//  A new delivery tag of the channel, for a delivery not kept (no_ack).
uint64_t arb_amqp_channel_take_tag (arb_amqp_channel_t *self);
//  Whether a consumer of the channel has that tag.
bool arb_amqp_channel_has_consumer (arb_amqp_channel_t *self, const char *tag);
//  Whether the channel (may be NULL) has consumers.
bool arb_amqp_channel_has_consumers (arb_amqp_channel_t *self);

//  ---------------------------------------------------------------------
//  Direct reply-to (arb_amqp_reply.c): amq.rabbitmq.reply-to

//  Whether a queue name is the pseudo-queue amq.rabbitmq.reply-to.
bool arb_amqp_reply_is_pseudo (amqp_bytes_t queue);
//  Whether a routing key names a reply consumer (amq.rabbitmq.reply-to.*).
bool arb_amqp_reply_is_key (const char *key);
//  basic.consume of the pseudo-queue: makes the channel's reply consumer
//  (*self_p, which must be NULL: one a channel) and answers Consume-Ok.
//  Returns 0, or -1 if the channel or connection failed (406 without
//  no_ack or for a second one, 530 for a consumer tag in use).
int arb_amqp_reply_consume (arb_amqp_channel_t *channel,
                            arb_amqp_reply_t **self_p,
                            amqp_basic_consume_t *m);
//  Whether the reply consumer (may be NULL) has that tag.
bool arb_amqp_reply_has_tag (arb_amqp_reply_t *self, const char *tag);
//  Ends a reply consumer (cancel, or its channel goes); NULL is fine.
void arb_amqp_reply_end (arb_amqp_t *server, arb_amqp_reply_t **self_p);
//  A message published on channel (its reply consumer self, or NULL):
//  reply_to amq.rabbitmq.reply-to becomes the consumer's own name in its
//  raw properties (*props_p replaced). Returns 0, or -1 if the channel
//  failed (406: it has no reply consumer).
int
arb_amqp_reply_rewrite (arb_amqp_channel_t *channel, arb_amqp_reply_t *self, zchunk_t **props_p);
//  A message published by conn to the default exchange with a reply key:
//  delivered to that reply consumer (the body taken). Returns 0, or -1 if
//  it is not delivered (no such consumer in conn's vhost, its channel
//  closing, or its connection's output past ARB_AMQP_REPLY_BACKLOG).
int arb_amqp_reply_publish (
    arb_amqp_conn_t *from, const char *key, const uint8_t *raw, size_t raw_size, zframe_t **body_p);
//  Whether name is the pseudo-queue or a live reply consumer of conn's
//  vhost (a passive queue.declare of it succeeds).
bool arb_amqp_reply_exists (arb_amqp_conn_t *from, const char *name);

//  ---------------------------------------------------------------------
//  A channel's publishing side (arb_amqp_publisher.c): content, routing,
//  confirms, transactions. Owned by its channel.

arb_amqp_publisher_t *arb_amqp_publisher_new (arb_amqp_channel_t *channel);

//  Forgets the publishes awaiting the broker (their tasks are stored all
//  the same), a transaction's messages and acks, and a message half read.
void arb_amqp_publisher_destroy (arb_amqp_publisher_t **self_p);

//  basic.publish, confirm.select, tx.select, tx.commit, tx.rollback.
//  Returns 0, or -1 if the channel or the connection failed.
int arb_amqp_publisher_method (arb_amqp_publisher_t *self, amqp_method_number_t id, void *m);

//  Whether the frames of a message (its header, its body) are due.
bool arb_amqp_publisher_in_content (arb_amqp_publisher_t *self);

//  A frame while in content. Returns 0, or -1 if the channel or the
//  connection failed (505 for a frame that is not the one due).
int arb_amqp_publisher_content (arb_amqp_publisher_t *self, const arb_amqp_frame_t *frame);

//  In a transaction, keeps an ack, nack or reject (as
//  arb_amqp_channel_settle's) until the commit and returns true (the
//  channel may have failed: too many kept); else false.
bool arb_amqp_publisher_keep_ack (
    arb_amqp_publisher_t *self, amqp_method_number_t id, uint64_t tag, bool multiple, int how);

//  The channel closes: the message half read and the transaction go.
void arb_amqp_publisher_reset (arb_amqp_publisher_t *self);

//  ---------------------------------------------------------------------
//  Server (arb_amqp.c)

//  Deletes a queue: every connection's consumers on it are cancelled, its
//  record and its bindings' records leave the store, and its tasks are
//  dropped. fn (may be NULL) gets the broker's answer to the request that
//  drops the tasks (OK with their count), whose id is returned (0 if
//  refused: fn is not called).
uint32_t arb_amqp_delete_queue (arb_amqp_t *self,
                                arb_amqp_queue_t *queue,
                                arb_gateway_reply_fn *fn,
                                void *arg);

//  Deletes the auto-delete exchanges of vhost whose last binding went
//  (records too), and those that this leaves so in turn.
void arb_amqp_exchanges_spent (arb_amqp_t *self, arb_amqp_vhost_t *vhost);

//  x-expires: queue is used now (declared, consumed from, read with
//  basic.get, or its last consumer went). A queue with x-expires is
//  deleted once it has had no consumer and no such use for that long.
void arb_amqp_queue_used (arb_amqp_t *self, arb_amqp_queue_t *queue);

//  x-max-length, x-max-length-bytes: messages were published to queue.
//  Once the turn's publishes are out, its ready messages and their bytes
//  are counted and those over a bound are taken from the head and
//  dropped, or dead-lettered if the queue says where (as RabbitMQ's
//  drop-head). One trim per queue at a time; growth meanwhile makes it
//  count again. What must see the queue within its bounds waits for the
//  trim (arb_amqp_trim_wait).
void arb_amqp_queue_grew (arb_amqp_t *self, arb_amqp_queue_t *queue);

//  Messages went back to the head of a queue (a requeue): one the gateway
//  trims is trimmed (arb_amqp_queue_grew); one whose drop-head bounds the
//  broker holds (it holds them at a submit, and when they are set) gets
//  them again, once a turn however many came back, after the turn's
//  releases, so that it is within them again, as RabbitMQ drops the head
//  at a requeue.
void arb_amqp_queue_requeued (arb_amqp_t *self, arb_amqp_queue_t *queue);

//  Gives the broker the queue's bounds if it can keep them itself
//  (arb_amqp_model_broker_bounds). Once it has said yes (broker_bounds),
//  publishes never find the queue over them and the gateway never trims
//  it; until then, or if it refuses, the gateway trims. Returns the
//  request id (fn gets the answer after), or 0 if there is nothing to send
//  or the link refused it.
uint32_t arb_amqp_bound_queue (arb_amqp_t *self,
                               arb_amqp_queue_t *queue,
                               arb_gateway_reply_fn *fn,
                               void *arg);

//  A wait for the end of a queue's trim, made by what must see the queue
//  within its bounds (basic.get, a queue's count, queue.purge and
//  queue.delete), as RabbitMQ's drop-head keeps it at the store: their
//  requests go once the trim is done. Owned by the waiter.
typedef struct {
    void (*fn) (void *arg);  //  called when the trim ends (not once unwaited)
    void *arg;
    void *trim;           //  the trim waited for; NULL: not waiting
    void *handle;         //  in the trim's waiters
    void *ended;          //  the trim that let it go, while fn runs (still there)
    uint64_t need;        //  the number of the trim's count that covers what came before
    uint64_t goal;        //  the trim's drops that bring the queue within its number bound
    uint64_t bytes_from;  //  its rounds over the byte bound when that count came; MAX: not over
} arb_amqp_trim_wait_t;

//  Whether a trim of queue is under way: if so, wait (its fn and arg set)
//  joins its waiters and fn is called once it ends; if not, nothing is
//  done and the caller goes on at once. Called from fn, it waits only for
//  another trim than the one that let the waiter go (that of a queue of
//  the same name declared since the trim's went).
bool arb_amqp_trim_wait (arb_amqp_queue_t *queue, arb_amqp_trim_wait_t *wait);

//  Takes wait off its trim's waiters (its fn will not be called); nothing
//  if it waits for none.
void arb_amqp_trim_unwait (arb_amqp_trim_wait_t *wait);

//  ---------------------------------------------------------------------
//  Submits (arb_amqp_admit.c)

//  The code a submit's fn gets for a message refused by its queue's bound
//  (x-overflow reject-publish or reject-publish-dlx).
#define ARB_AMQP_OVERFLOW (-1)

void arb_amqp_admit_init (arb_amqp_t *self);
void arb_amqp_admit_fini (arb_amqp_t *self);

//  Submits a task to queue, as arb_gateway_submit_one does (spec's
//  strings and bins copied, its payload taken), at once; but for a queue
//  bounded by x-max-length or x-max-length-bytes with x-overflow
//  reject-publish or reject-publish-dlx, held until a count of its ready
//  messages and their bytes says whether it fits: if not, fn gets task NULL and code ARB_AMQP_OVERFLOW
//  (reject-publish-dlx dead-letters it, reason maxlen). Returns a ticket
//  for arb_amqp_forget_submit, or 0 if refused at once (arb_gateway_error
//  says why; fn is not called).
uint64_t arb_amqp_submit (arb_amqp_t *self,
                          arb_amqp_queue_t *queue,
                          arb_task_spec_t *spec,
                          arb_gateway_submitted_fn *fn,
                          void *arg);

//  The asker of a submit went away: fn will not be called (the message is
//  stored, or refused, all the same).
void arb_amqp_forget_submit (arb_amqp_t *self, uint64_t ticket);

//  ---------------------------------------------------------------------
//  Dead letters and expiry (arb_amqp_deadletter.c)

void arb_amqp_deadletters_init (arb_amqp_t *self);
void arb_amqp_deadletters_fini (arb_amqp_t *self);

//  Dead-letters a message of queue for reason ("rejected", "expired",
//  "maxlen", "delivery_limit"): a copy of it (its task's headers record and payload, both
//  borrowed) goes to every queue its dead-letter exchange routes it to,
//  from that exchange, with the x-death header updated as RabbitMQ does
//  (and its expiration property moved there), but not to a queue that
//  would close a cycle without a rejection in it (as RabbitMQ). task is
//  completed once every copy is stored (released back if one is not);
//  0: a message that was never stored (reject-publish-dlx).
//  Returns 0, or -1 if the queue has no dead-letter exchange or it routes
//  nowhere: task is the caller's to settle.
int arb_amqp_deadletter (arb_amqp_t *self,
                         arb_amqp_queue_t *queue,
                         uint64_t task,
                         arb_bin_t headers,
                         zframe_t *payload,
                         const char *reason);

//  A message's expiration property read as RabbitMQ reads it: an optional
//  sign then ASCII digits, nothing else, from 0 to ARB_AMQP_TTL_MAX_MS.
//  Returns the ms, or -1 with why (a NUL-terminated text of size bytes)
//  saying what is wrong.
int64_t arb_amqp_expiration_ms (amqp_bytes_t text, char *why, size_t size);

//  The broker's expires_ms for a message stored now (Unix ms) with a TTL
//  of ttl ms in a queue without a dead-letter exchange: now + ttl, but
//  never sooner than ARB_AMQP_TTL_FLOOR_MS from now. The TTL is counted
//  from the gateway's clock, and the broker drops a task whose expiry has
//  passed before it dispatches it: a TTL of 0 (or a few ms) would expire
//  on its way to a consumer waiting for it, which RabbitMQ hands it to.
#define ARB_AMQP_TTL_FLOOR_MS 100
uint64_t arb_amqp_broker_expiry (uint64_t now, uint64_t ttl);

//  The TTL a message asks for: its expiration property in ms, or -1 (none,
//  or one arb_amqp_expiration_ms refuses: publishes are checked first).
int64_t arb_amqp_props_ttl (amqp_basic_properties_t *props);

//  A task of queue (NULL: deleted), about to be delivered or read: if the
//  queue dead-letters and the message's TTL (the queue's or its own,
//  counted from its store) has passed, it is dead-lettered ("expired"),
//  or dropped if that routes nowhere, and true is returned: the caller
//  forgets it. So is one of a queue with an x-delivery-limit (quorum)
//  that the broker has delivered more times than the limit before this
//  one: dead-lettered ("delivery_limit") or dropped. Else false.
bool arb_amqp_expire (arb_amqp_t *self, arb_amqp_queue_t *queue, arb_dispatch_task_t *task);

//  A message of queue (one that dead-letters) expires at Unix ms at: the
//  queue's head is checked then (PEEK; expired ones are taken from the
//  head and dead-lettered, as RabbitMQ removes them when they reach it).
void arb_amqp_queue_expiry (arb_amqp_t *self, arb_amqp_queue_t *queue, uint64_t at);

//  When a task of queue (one that dead-letters) expires, from its headers
//  record and the broker's created_ms: Unix ms, or 0 if it never does (no
//  TTL, or the queue does not dead-letter: the broker expires it).
uint64_t
arb_amqp_expires_at (arb_amqp_queue_t *queue, const arb_bin_t *headers, uint64_t created_ms);

//  A task of queue goes back to it (a nack or reject with requeue, a
//  channel or connection closed with it unacked, one on its way to a
//  consumer that ended), expiring at Unix ms at (arb_amqp_expires_at; 0:
//  never): the queue's head is checked then, as RabbitMQ drops or
//  dead-letters an expired message that is returned. The head check after
//  a publish may have found the queue empty while it was out.
void arb_amqp_queue_returned (arb_amqp_t *self, arb_amqp_queue_t *queue, uint64_t at);

//  A STATS request for one broker queue (its record only, never a scan
//  of every queue), to send.
arb_msg_t *arb_amqp_count_request (arb_amqp_t *self, const char *broker_queue);

//  The ready count of broker_queue in a STATS reply, and the payload
//  (message body) bytes of those ready tasks: 0 if reply is NULL, not a
//  STATS reply, or does not list it.
uint64_t arb_amqp_ready_count (arb_msg_t *reply, const char *broker_queue);
uint64_t arb_amqp_ready_bytes (arb_msg_t *reply, const char *broker_queue);

//  Writes a metadata key (value taken; NULL deletes it). Returns the
//  request id (0 if refused); fn may be NULL.
uint32_t arb_amqp_store (
    arb_amqp_t *self, const char *key, zchunk_t **value_p, arb_gateway_reply_fn *fn, void *arg);

//  Whether user may log in with password to vhost from conn. 0, or -1.
int
arb_amqp_login (arb_amqp_t *self, arb_amqp_conn_t *conn, const char *user, const char *password);

//  Whether user may use vhost.
bool arb_amqp_user_may (arb_amqp_t *self, const char *user, const char *vhost);

//  The connection is gone.
void arb_amqp_conn_gone (arb_amqp_t *self, arb_amqp_conn_t *conn);

//  Whether max_connections connections are open (admitted at
//  connection.open, not on their way out): one more is refused.
bool arb_amqp_is_full (arb_amqp_t *self);

//  Counts conn against max_connections until it is gone.
void arb_amqp_admit (arb_amqp_t *self, arb_amqp_conn_t *conn);


#endif
