/*  arb_upstream.c — one connection to an upstream RabbitMQ, in a thread of
    its own; see arb_upstream.h.

    The thread polls the actor's pipe ($TERM), the PAIR socket to the loop
    (commands) and, while connected, the connection's socket. rabbitmq-c
    buffers what it reads and queues frames it read while sending, so the
    thread polls the socket only when neither holds a frame, and reads
    frames with a zero timeout: that call also sends heartbeats when they
    are due and notices a silent peer. The content of a delivery (its
    header and body frames) follows its method on the channel, so it is
    read at once, blocking, as rabbitmq-c's own amqp_read_message does.

    Messages between the loop and the thread: a first frame with the
    command's letter, then one frame per field (numbers as 8 native bytes:
    the two ends are one process).
*/

#include "arb_upstream.h"
#include "arb_envelope.h"
#include "arb_upstream_url.h"

#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <openssl/crypto.h>

#define S_CHANNEL      1       //  consuming: qos, the consumer, acks and rejects
#define S_REPLIES      2       //  publishing the replies, with confirms
#define S_FRAME_MAX    131072  //  RabbitMQ's default
#define S_CONNECT_S    5       //  TCP connect timeout
#define S_RPC_S        10      //  login and channel setup, each
#define S_CLOSE_S      2       //  channel.close and connection.close, each
#define S_POLL_MS      1000    //  at least this often the connection is looked at
#define S_BACKOFF_MS   500     //  first delay before trying again
#define S_STEADY_MS    10000   //  a connection up this long resets the delay to S_BACKOFF_MS
#define S_FRAMES_BATCH 1000    //  frames read before the commands are looked at again
#define S_REPLY_MAX    320     //  a server's reply: its code and text (a shortstr)

//  Commands (loop -> thread) and events (thread -> loop).
#define S_ACK       'A'
#define S_REJECT    'R'
#define S_PUBLISH   'P'
#define S_UP        'U'
#define S_DOWN      'D'
#define S_DELIVER   'M'
#define S_CONFIRMED 'C'
#define S_NACKED    'N'
#define S_REFUSED   'F'

//  DELIVER flags
#define S_REDELIVERED 1
#define S_DIGEST      2
#define S_TOO_LARGE   4
#define S_HEADERS     8
#define S_ADDRESS     16

//  The one thing the loop and the thread share. The thread's RPCs while
//  it connects (the login, the channel's setup) block it for up to
//  S_RPC_S each, deaf to $TERM: a RabbitMQ that takes the TCP connection
//  and never speaks would hold the gateway's stop that long. So the
//  thread says which socket it blocks on, and the loop, stopping, shuts
//  it down (shutdown(2), not close: the thread still owns the
//  descriptor), which wakes the thread at once. The lock makes the
//  socket the thread's until it says it is done with it, so that the
//  loop never shuts down a descriptor that was closed and reused.
typedef struct {
    pthread_mutex_t lock;
    int fd;         //  the socket the thread blocks on, or -1 (borrowed)
    bool stopping;  //  the loop is stopping the thread
} s_wake_t;

struct _arb_upstream_t {
    zactor_t *actor;  //  owned: the thread
    zsock_t *data;    //  owned: PAIR to the thread
    s_wake_t *wake;   //  owned: its socket, for the stop
};

//  What the thread is given (owned by the thread once it runs).
typedef struct {
    char *bridge;
    arb_upstream_url_t *url;
    const struct amqp_connection_info *info;  //  the URL's
    const char *shown;                        //  the URL's, without its password
    char *queue;
    char *endpoint;  //  of the loop's PAIR socket
    uint16_t prefetch;
    uint64_t reconnect_max_ms;
    size_t max_payload;
    s_wake_t *wake;  //  borrowed: the arb_upstream_t's, which outlives the thread
} s_args_t;

//  A publish waiting for RabbitMQ's confirm.
typedef struct {
    uint64_t seq;  //  its number on the channel (from 1)
    uint64_t id;   //  the task whose reply it is
} s_unconfirmed_t;

typedef struct {
    s_args_t *args;                //  owned
    zsock_t *pipe;                 //  borrowed: the actor's pipe
    zsock_t *data;                 //  owned: PAIR to the loop
    amqp_connection_state_t conn;  //  owned while connected, else NULL
    uint64_t gen;                  //  number of the last connection made
    uint64_t seq;                  //  publishes on the replies' channel (as it is now)
    s_unconfirmed_t *unconfirmed;  //  owned array, in seq order
    size_t unconfirmed_n, unconfirmed_cap;
    zlistx_t *doubted;    //  owned: the tasks whose reply a 406 may have meant (s_replies_closed)
    bool alone;           //  one of those is in flight, alone: the others wait
    zlist_t *held;        //  owned zmsg_t: publishes waiting for it (in order)
    int guarded;          //  calls deep in s_guard: the socket is the one a stop shuts down
    int64_t retry_at;     //  mono ms of the next attempt
    uint64_t backoff_ms;  //  the delay after the next failure
    int64_t up_at;        //  mono ms when the connection began consuming
    bool stopped;
} s_thread_t;

static void s_send_held (s_thread_t *self);
static void s_publish (s_thread_t *self, zmsg_t *msg);

//  ---------------------------------------------------------------------
//  Waking a thread blocked in a connection's setup

//  The thread: fd is the socket it may block on now (-1: none). false if
//  the loop is stopping it (fd is not kept).
static bool
s_wake_set (s_wake_t *wake, int fd)
{
    pthread_mutex_lock (&wake->lock);
    bool stopping = wake->stopping;
    wake->fd = stopping ? -1 : fd;
    pthread_mutex_unlock (&wake->lock);
    return !stopping;
}

static bool
s_wake_stopping (s_wake_t *wake)
{
    pthread_mutex_lock (&wake->lock);
    bool stopping = wake->stopping;
    pthread_mutex_unlock (&wake->lock);
    return stopping;
}

//  The loop: the thread is to stop; wakes it if it blocks on its socket.
static void
s_wake_stop (s_wake_t *wake)
{
    pthread_mutex_lock (&wake->lock);
    wake->stopping = true;
    if (wake->fd >= 0)
        shutdown (wake->fd, SHUT_RDWR);
    pthread_mutex_unlock (&wake->lock);
}

//  ---------------------------------------------------------------------
//  URLs

static void
s_args_destroy (s_args_t **args_p)
{
    s_args_t *args = *args_p;
    if (!args)
        return;
    free (args->bridge);
    arb_upstream_url_destroy (&args->url);
    free (args->queue);
    free (args->endpoint);
    free (args);
    *args_p = NULL;
}

//  Parses url into args. 0, or -1 with why.
static int
s_parse (s_args_t *args, const char *url, char *why, size_t size)
{
    args->url = arb_upstream_url_new (url, why, size);
    if (!args->url)
        return -1;
    args->info = arb_upstream_url_info (args->url);
    args->shown = arb_upstream_url_shown (args->url);
    return 0;
}

//  What the thread sends can block: RabbitMQ in a resource alarm stops
//  reading a connection that publishes, and once the socket's buffers
//  fill a reply's publish (or an ack) waits for it. So while the thread
//  sends (s_guard to s_unguard, nested), its socket is the one the loop's
//  stop shuts down (s_wake_stop), and a stop does not wait for the
//  alarm's end. false: stopping (nothing is sent; $TERM follows).
static bool
s_guard (s_thread_t *self)
{
    if (self->guarded++ > 0 || !self->conn)
        return true;
    if (s_wake_set (self->args->wake, amqp_get_sockfd (self->conn)))
        return true;
    self->guarded--;
    return false;
}

static void
s_unguard (s_thread_t *self)
{
    if (--self->guarded == 0)
        s_wake_set (self->args->wake, -1);
}

//  ---------------------------------------------------------------------
//  The thread: talking to the loop

static void
s_add_u64 (zmsg_t *msg, uint64_t value)
{
    zmsg_addmem (msg, &value, sizeof (value));
}

static zmsg_t *
s_event (char type, uint64_t gen)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, &type, 1);
    s_add_u64 (msg, gen);
    return msg;
}

static void
s_tell (s_thread_t *self, zmsg_t **msg_p)
{
    //  no high-water mark: this never blocks nor drops
    zmsg_send (msg_p, self->data);
}

static void
s_tell_id (s_thread_t *self, char type, uint64_t id)
{
    zmsg_t *msg = s_event (type, self->gen);
    s_add_u64 (msg, id);
    s_tell (self, &msg);
}

//  ---------------------------------------------------------------------
//  The thread: the connection

//  Describes a failed RPC in text.
static void
s_reply_text (amqp_rpc_reply_t reply, char *text, size_t size)
{
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        snprintf (text, size, "%s", amqp_error_string2 (reply.library_error));
    else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION
             && reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *m = (amqp_connection_close_t *) reply.reply.decoded;
        snprintf (text, size, "%u %.*s", m->reply_code, (int) m->reply_text.len,
                  (const char *) m->reply_text.bytes);
    }
    else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION
             && reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = (amqp_channel_close_t *) reply.reply.decoded;
        snprintf (text, size, "%u %.*s", m->reply_code, (int) m->reply_text.len,
                  (const char *) m->reply_text.bytes);
    }
    else
        snprintf (text, size, "no answer");
}

//  Whether the last RPC succeeded; else why, with what failed.
static bool
s_rpc_ok (s_thread_t *self, const char *what, char *why, size_t size)
{
    amqp_rpc_reply_t reply = amqp_get_rpc_reply (self->conn);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    char text[S_REPLY_MAX];
    s_reply_text (reply, text, sizeof (text));
    snprintf (why, size, "%s: %s", what, text);
    return false;
}

//  errno of a connect to host:port (its first address) that failed at
//  once, or after a second (ETIMEDOUT); 0 if it connects. rabbitmq-c
//  keeps the connect's error to itself (SO_ERROR, read and dropped): this
//  asks again, so that the log says connection refused, or no route to
//  host.
static int
s_connect_errno (const char *host, int port)
{
    char service[16];
    snprintf (service, sizeof (service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found = NULL;
    if (getaddrinfo (host, service, &hints, &found) != 0)
        return 0;
    int error = 0;
    for (struct addrinfo *a = found; a; a = a->ai_next) {
        int fd =
            socket (a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        error = connect (fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (error == EINPROGRESS) {
            struct pollfd item = {fd, POLLOUT, 0};
            socklen_t len = sizeof (error);
            if (poll (&item, 1, 1000) != 1
                || getsockopt (fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
                error = ETIMEDOUT;
        }
        close (fd);
        break;
    }
    freeaddrinfo (found);
    return error;
}

//  Why the connection could not be opened (rc: rabbitmq-c's status),
//  into why.
static void
s_connect_failed (s_thread_t *self, int rc, char *why, size_t size)
{
    int error = rc == AMQP_STATUS_SOCKET_ERROR
                    ? s_connect_errno (self->args->info->host, self->args->info->port)
                    : 0;
    s_args_t *args = self->args;
    bool tls = arb_upstream_url_tls (args->url);
    const char *refused = tls ? arb_upstream_url_refused (args->url) : NULL;
    char detail[128] = "";
    if (refused)
        snprintf (detail, sizeof (detail), ": the server's certificate: %s", refused);
    else if (rc == AMQP_STATUS_SSL_CONNECTION_FAILED)
        //  a server that does not speak TLS answers the hello with
        //  something else, or closes
        snprintf (detail, sizeof (detail), " (is it a TLS port?)");
    else if (rc == AMQP_STATUS_SOCKET_ERROR && error)
        snprintf (detail, sizeof (detail), ": %s", strerror (error));
    snprintf (why, size, "cannot connect to %.255s:%d: %s%s", args->info->host, args->info->port,
              amqp_error_string2 (rc), detail);
}

//  Why the login failed, into why: the server's refusal (a close with its
//  code), or what went wrong before it could answer (no answer in time,
//  the connection lost: a library error is no refusal).
static void
s_login_failed (s_thread_t *self, amqp_rpc_reply_t login, char *why, size_t size)
{
    s_args_t *args = self->args;
    bool tls = arb_upstream_url_tls (args->url);
    if (login.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        char text[S_REPLY_MAX];
        s_reply_text (login, text, sizeof (text));
        snprintf (why, size, "login as '%.64s' to vhost '%.64s' refused: %s", args->info->user,
                  args->info->vhost, text);
    }
    else if (login.library_error == AMQP_STATUS_TIMEOUT)
        snprintf (why, size, "no answer to the login as '%.64s' to vhost '%.64s' within %d s",
                  args->info->user, args->info->vhost, S_RPC_S);
    else {
        //  TLS 1.3: a server that wants a client certificate says so
        //  after the handshake, at the first read; a TLS port spoken to
        //  in the clear closes
        const char *hint = login.library_error == AMQP_STATUS_SSL_ERROR
                               ? " (did the server want a client certificate?)"
                           : !tls ? " (is it a TLS port? the URL is amqp://)"
                                  : "";
        snprintf (why, size, "the connection failed during the login: %s%s",
                  amqp_error_string2 (login.library_error), hint);
    }
}

//  Opens the replies' channel, in confirm mode. Whether it did; else why.
static bool
s_open_replies (s_thread_t *self, char *why, size_t size)
{
    amqp_channel_open (self->conn, S_REPLIES);
    if (!s_rpc_ok (self, "channel.open", why, size))
        return false;
    amqp_confirm_select (self->conn, S_REPLIES);
    return s_rpc_ok (self, "confirm.select", why, size);
}

//  Connects, logs in and starts consuming. 0, or -1 with why (and no
//  connection).
static int
s_open (s_thread_t *self, char *why, size_t size)
{
    s_args_t *args = self->args;
    self->conn = amqp_new_connection ();
    amqp_socket_t *socket = arb_upstream_url_socket (args->url, self->conn, why, size);
    if (!socket)
        goto failed;
    //  with TLS, the handshake and the server's certificate's checks too
    struct timeval connect = {S_CONNECT_S, 0}, rpc = {S_RPC_S, 0};
    int rc = amqp_socket_open_noblock (socket, args->info->host, args->info->port, &connect);
    if (rc != AMQP_STATUS_OK) {
        s_connect_failed (self, rc, why, size);
        goto failed;
    }
    if (!s_wake_set (args->wake, amqp_get_sockfd (self->conn))) {
        snprintf (why, size, "stopping");
        goto failed;
    }
    amqp_set_handshake_timeout (self->conn, &rpc);
    amqp_set_rpc_timeout (self->conn, &rpc);
    //  consumer_cancel_notify: without it RabbitMQ deletes the queue under
    //  the consumer and says nothing, and the bridge would wait for ever;
    //  the name shows in RabbitMQ's list of connections
    char name[ARB_TEXT_MAX];
    snprintf (name, sizeof (name), "arbiter-gateway bridge %s", args->bridge);
    amqp_table_entry_t capability = {amqp_cstring_bytes ("consumer_cancel_notify"),
                                     {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
    amqp_table_entry_t entries[] = {
        {amqp_cstring_bytes ("capabilities"),
         {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {1, &capability}}},
        {amqp_cstring_bytes ("connection_name"),
         {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes (name)}},
    };
    amqp_table_t properties = {2, entries};
    amqp_rpc_reply_t login = amqp_login_with_properties (
        self->conn, args->info->vhost, 0, S_FRAME_MAX, ARB_UPSTREAM_HEARTBEAT_S, &properties,
        AMQP_SASL_METHOD_PLAIN, args->info->user, args->info->password);
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        s_login_failed (self, login, why, size);
        goto failed;
    }
    amqp_channel_open (self->conn, S_CHANNEL);
    if (!s_rpc_ok (self, "channel.open", why, size) || !s_open_replies (self, why, size))
        goto failed;
    amqp_basic_qos (self->conn, S_CHANNEL, 0, args->prefetch, 0);
    if (!s_rpc_ok (self, "basic.qos", why, size))
        goto failed;
    amqp_basic_consume (self->conn, S_CHANNEL, amqp_cstring_bytes (args->queue), amqp_empty_bytes,
                        0, 0, 0, amqp_empty_table);
    if (!s_rpc_ok (self, "basic.consume", why, size))
        goto failed;
    s_wake_set (args->wake, -1);
    return 0;
failed:
    //  the socket is the thread's alone again before it is closed
    s_wake_set (args->wake, -1);
    amqp_destroy_connection (self->conn);
    self->conn = NULL;
    return -1;
}

//  Forgets the publishes held back (the connection is gone: the loop
//  publishes its replies again on the next).
static void
s_drop_held (s_thread_t *self)
{
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlist_pop (self->held)))
        zmsg_destroy (&msg);
    zlistx_purge (self->doubted);
    self->alone = false;
}

//  The handle of task id among the replies in doubt, or NULL.
static void *
s_doubted (s_thread_t *self, uint64_t id)
{
    for (void *item = zlistx_first (self->doubted); item; item = zlistx_next (self->doubted))
        if ((uint64_t) (uintptr_t) item == id)
            return zlistx_cursor (self->doubted);
    return NULL;
}

//  The reply to task id is settled (confirmed, nacked, refused): no
//  longer in doubt, nor alone in flight.
static void
s_settled (s_thread_t *self, uint64_t id)
{
    void *handle = s_doubted (self, id);
    if (handle) {
        zlistx_delete (self->doubted, handle);
        self->alone = false;
    }
}

//  Sets the next attempt after the current delay, and doubles the delay
//  (up to reconnect_max_ms) for the failure after. The delay used, ms.
static uint64_t
s_retry_later (s_thread_t *self)
{
    uint64_t delay = self->backoff_ms;
    self->retry_at = zclock_mono () + (int64_t) delay;
    self->backoff_ms =
        delay * 2 < self->args->reconnect_max_ms ? delay * 2 : self->args->reconnect_max_ms;
    return delay;
}

//  Drops the connection (its socket is dead or it broke the protocol) and
//  tells the loop. The next attempt follows after the first delay if the
//  connection had been consuming for S_STEADY_MS, else after the delay
//  the failures before it reached: a failure that comes soon after each
//  start (the user may read the queue but not publish the replies) backs
//  off as one to connect does, instead of reconnecting twice a second.
static void
s_lost (s_thread_t *self, const char *reason)
{
    if (zclock_mono () - self->up_at >= S_STEADY_MS)
        self->backoff_ms = S_BACKOFF_MS;
    uint64_t delay = s_retry_later (self);
    //  a stop that shut the socket down (s_wake_stop) is no loss to tell
    if (!s_wake_stopping (self->args->wake))
        zsys_warning ("upstream: connection lost bridge=%s url=%s reason=\"%s\" "
                      "retry_in_ms=%" PRIu64,
                      self->args->bridge, self->args->shown, reason, delay);
    s_wake_set (self->args->wake, -1);  //  the socket is the thread's alone before it closes
    amqp_destroy_connection (self->conn);
    self->conn = NULL;
    self->unconfirmed_n = 0;
    s_drop_held (self);
    zmsg_t *msg = s_event (S_DOWN, self->gen);
    zmsg_addstr (msg, reason);
    s_tell (self, &msg);
}

static void
s_connect (s_thread_t *self)
{
    char why[ARB_TEXT_MAX];
    if (s_open (self, why, sizeof (why))) {
        if (s_wake_stopping (self->args->wake)) {
            //  woken by the loop's stop (s_wake_stop): no failure of the
            //  upstream's, and $TERM follows
            self->retry_at = zclock_mono () + S_POLL_MS;
            return;
        }
        uint64_t delay = s_retry_later (self);
        zsys_warning ("upstream: cannot consume bridge=%s url=%s queue=%s reason=\"%s\" "
                      "retry_in_ms=%" PRIu64,
                      self->args->bridge, self->args->shown, self->args->queue, why, delay);
        return;
    }
    self->gen++;
    self->seq = 0;
    //  the delay stays until the connection has lasted (s_lost)
    self->up_at = zclock_mono ();
    zsys_info ("upstream: consuming bridge=%s url=%s queue=%s prefetch=%u connection=%" PRIu64,
               self->args->bridge, self->args->shown, self->args->queue, self->args->prefetch,
               self->gen);
    zmsg_t *msg = s_event (S_UP, self->gen);
    s_tell (self, &msg);
}

//  Closes the connection politely (the thread is stopping).
static void
s_close (s_thread_t *self)
{
    if (!self->conn)
        return;
    //  a RabbitMQ that does not answer holds the gateway's exit this long
    struct timeval quick = {S_CLOSE_S, 0};
    amqp_set_rpc_timeout (self->conn, &quick);
    amqp_channel_close (self->conn, S_REPLIES, AMQP_REPLY_SUCCESS);
    amqp_channel_close (self->conn, S_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close (self->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection (self->conn);
    self->conn = NULL;
}

//  ---------------------------------------------------------------------
//  The thread: frames from RabbitMQ

//  Reads the next frame of a content on channel. 0, or -1 after the
//  connection was lost.
static int
s_content_frame (s_thread_t *self, amqp_frame_t *frame, uint8_t type, amqp_channel_t channel)
{
    int rc = amqp_simple_wait_frame (self->conn, frame);
    if (rc != AMQP_STATUS_OK) {
        s_lost (self, amqp_error_string2 (rc));
        return -1;
    }
    if (frame->frame_type != type || frame->channel != channel) {
        s_lost (self, "a content frame was expected");
        return -1;
    }
    return 0;
}

//  Reads a content of size bytes into data (NULL: drops it). 0 or -1.
static int
s_content_body (s_thread_t *self, uint64_t size, uint8_t *data, amqp_channel_t channel)
{
    uint64_t got = 0;
    while (got < size) {
        amqp_frame_t frame;
        if (s_content_frame (self, &frame, AMQP_FRAME_BODY, channel))
            return -1;
        amqp_bytes_t part = frame.payload.body_fragment;
        if (part.len > size - got) {
            s_lost (self, "a content longer than its header said");
            return -1;
        }
        if (data)
            memcpy (data + got, part.bytes, part.len);
        else
            //  dropped: its frame's memory is reused by the next, rather
            //  than the pool growing by the whole body (and keeping it)
            amqp_maybe_release_buffers_on_channel (self->conn, channel);
        got += part.len;
    }
    return 0;
}

//  The DELIVER event of a message, without its body: its key (of body,
//  NULL: too large, not read), headers, address and flags.
static zmsg_t *
s_deliver_event (s_thread_t *self,
                 const amqp_basic_deliver_t *deliver,
                 const amqp_frame_t *header,
                 zframe_t *body)
{
    const amqp_basic_properties_t *props =
        (const amqp_basic_properties_t *) header->payload.properties.decoded;
    char key[ARB_NAME_MAX + 1];
    bool digest = arb_envelope_key (
        self->args->bridge, props,
        body ? (amqp_bytes_t){zframe_size (body), zframe_data (body)} : amqp_empty_bytes, key);
    zframe_t *headers = arb_envelope_headers (deliver->exchange, deliver->routing_key,
                                              header->payload.properties.raw);
    if (!headers)
        zsys_warning ("upstream: properties over %u bytes, not kept in the task bridge=%s "
                      "key=%s",
                      ARB_HEADERS_MAX, self->args->bridge, key);
    zframe_t *address = arb_envelope_address (props);
    uint8_t flags = (deliver->redelivered ? S_REDELIVERED : 0) | (digest ? S_DIGEST : 0)
                    | (body ? 0 : S_TOO_LARGE) | (headers ? S_HEADERS : 0)
                    | (address ? S_ADDRESS : 0);
    zmsg_t *msg = s_event (S_DELIVER, self->gen);
    s_add_u64 (msg, deliver->delivery_tag);
    zmsg_addmem (msg, &flags, 1);
    zmsg_addstr (msg, key);
    if (headers)
        zmsg_append (msg, &headers);
    if (address)
        zmsg_append (msg, &address);
    return msg;
}

//  A message: its content is read at once. The method and header stay in
//  the channel's pool while the body comes; a body over max_payload is
//  dropped as it comes (its event made first, of the method and header),
//  each frame's memory freed after it (s_content_body), so that it never
//  holds more than a frame, however large.
static void
s_deliver (s_thread_t *self, const amqp_basic_deliver_t *deliver)
{
    amqp_frame_t header;
    if (s_content_frame (self, &header, AMQP_FRAME_HEADER, S_CHANNEL))
        return;
    uint64_t size = header.payload.properties.body_size;
    bool too_large = size > self->args->max_payload;
    zframe_t *body = too_large ? NULL : zframe_new (NULL, (size_t) size);
    zmsg_t *msg = too_large ? s_deliver_event (self, deliver, &header, NULL) : NULL;
    if (s_content_body (self, size, body ? zframe_data (body) : NULL, S_CHANNEL)) {
        zframe_destroy (&body);
        zmsg_destroy (&msg);
        return;
    }
    if (!msg)
        msg = s_deliver_event (self, deliver, &header, body);
    if (body)
        zmsg_append (msg, &body);
    s_tell (self, &msg);
}

//  RabbitMQ's confirm of publish tag (and of all before it if multiple).
static void
s_confirm (s_thread_t *self, uint64_t tag, bool multiple, bool ok)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->unconfirmed_n; i++) {
        s_unconfirmed_t *one = &self->unconfirmed[i];
        if (one->seq == tag || (multiple && one->seq < tag)) {
            s_tell_id (self, ok ? S_CONFIRMED : S_NACKED, one->id);
            s_settled (self, one->id);
        }
        else
            self->unconfirmed[kept++] = *one;
    }
    self->unconfirmed_n = kept;
    s_send_held (self);
}

//  RabbitMQ closed the replies' channel, refusing a reply's publish. A
//  406 (over its max_message_size, say) refuses that message for good:
//  the consumer goes on (its channel is another), the channel opens
//  again, and the replies not confirmed are published again (NACKED),
//  but for one alone in flight, which is refused (REFUSED, with the
//  reason, which the loop sends its caller instead). Which of several in
//  flight it meant is not known: those are in doubt, and each goes again
//  alone (nothing else in flight with it, the others held back until
//  its confirm), so that the one refused is found. Any other
//  refusal (403: the user may not write to the default exchange) is not
//  the message's: the connection is dropped and made again after its
//  delay, as before a consumer that could never answer.
static void
s_replies_closed (s_thread_t *self, const amqp_channel_close_t *close)
{
    char text[S_REPLY_MAX], why[S_REPLY_MAX + 32];
    snprintf (text, sizeof (text), "%u %.*s", close->reply_code, (int) close->reply_text.len,
              (const char *) close->reply_text.bytes);
    if (close->reply_code != AMQP_PRECONDITION_FAILED) {
        snprintf (why, sizeof (why), "publishing a reply: %s", text);
        s_lost (self, why);
        return;
    }
    zsys_warning ("upstream: RabbitMQ refused a reply bridge=%s reason=\"%s\" in_flight=%zu",
                  self->args->bridge, text, self->unconfirmed_n);
    if (!s_guard (self))
        return;  //  stopping
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method (self->conn, S_REPLIES, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
        != AMQP_STATUS_OK) {
        s_lost (self, "closing the replies' channel");
        s_unguard (self);
        return;
    }
    for (size_t i = 0; i < self->unconfirmed_n; i++) {
        uint64_t id = self->unconfirmed[i].id;
        if (self->unconfirmed_n == 1) {
            zmsg_t *msg = s_event (S_REFUSED, self->gen);
            s_add_u64 (msg, id);
            zmsg_addstr (msg, text);
            s_tell (self, &msg);
            s_settled (self, id);
        }
        else {
            s_tell_id (self, S_NACKED, id);
            if (!s_doubted (self, id))
                zlistx_add_end (self->doubted, (void *) (uintptr_t) id);
        }
    }
    self->alone = false;
    self->unconfirmed_n = 0;
    self->seq = 0;  //  a new channel numbers its publishes from 1
    if (!s_open_replies (self, why, sizeof (why)))
        s_lost (self, why);
    else
        s_send_held (self);
    s_unguard (self);
}

//  A reply RabbitMQ could not route comes back before its confirm.
static void
s_returned (s_thread_t *self, const amqp_basic_return_t *ret)
{
    //  the reply_to is the publisher's: 64 bytes of it at most
    int shown = ret->routing_key.len < 64 ? (int) ret->routing_key.len : 64;
    zsys_warning ("upstream: reply not routed bridge=%s reply_to=%.*s reason=\"%u %.*s\"",
                  self->args->bridge, shown, (const char *) ret->routing_key.bytes, ret->reply_code,
                  (int) ret->reply_text.len, (const char *) ret->reply_text.bytes);
    amqp_frame_t header;
    if (s_content_frame (self, &header, AMQP_FRAME_HEADER, S_REPLIES) == 0)
        s_content_body (self, header.payload.properties.body_size, NULL, S_REPLIES);
}

//  RabbitMQ closed the channel or the connection (method): the reason
//  says so, and names a reply's publish when that is what it refused
//  (class_id, method_id: the method at fault), as a user allowed to read
//  the queue but not to write to the default exchange gets.
static void
s_closed (s_thread_t *self, amqp_method_t *method, uint16_t class_id, uint16_t method_id)
{
    char text[S_REPLY_MAX], why[S_REPLY_MAX + 32];
    amqp_rpc_reply_t reply = {AMQP_RESPONSE_SERVER_EXCEPTION, *method, 0};
    s_reply_text (reply, text, sizeof (text));
    bool publish = ((uint32_t) class_id << 16 | method_id) == AMQP_BASIC_PUBLISH_METHOD;
    snprintf (why, sizeof (why), "%s%s", publish ? "publishing a reply: " : "", text);
    s_lost (self, why);
}

static void
s_method (s_thread_t *self, amqp_channel_t channel, amqp_method_t *method)
{
    switch (method->id) {
        case AMQP_BASIC_DELIVER_METHOD:
            s_deliver (self, (amqp_basic_deliver_t *) method->decoded);
            break;
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = (amqp_basic_ack_t *) method->decoded;
            s_confirm (self, ack->delivery_tag, ack->multiple, true);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *nack = (amqp_basic_nack_t *) method->decoded;
            s_confirm (self, nack->delivery_tag, nack->multiple, false);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            s_returned (self, (amqp_basic_return_t *) method->decoded);
            break;
        case AMQP_BASIC_CANCEL_METHOD:
            s_lost (self, "RabbitMQ cancelled the consumer (queue deleted?)");
            break;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *close = (amqp_channel_close_t *) method->decoded;
            if (channel == S_REPLIES)
                s_replies_closed (self, close);
            else
                s_closed (self, method, close->class_id, close->method_id);
            break;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *close = (amqp_connection_close_t *) method->decoded;
            amqp_connection_close_ok_t ok = {0};
            amqp_send_method (self->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            s_closed (self, method, close->class_id, close->method_id);
            break;
        }
        default:
            break;  //  nothing else is expected on a consuming channel
    }
}

//  Reads what RabbitMQ sent, without waiting (and sends a heartbeat when
//  one is due).
static void
s_read (s_thread_t *self)
{
    for (int i = 0; self->conn && i < S_FRAMES_BATCH; i++) {
        amqp_frame_t frame;
        struct timeval now = {0, 0};
        int rc = amqp_simple_wait_frame_noblock (self->conn, &frame, &now);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            s_lost (self, amqp_error_string2 (rc));
            break;
        }
        if (frame.frame_type == AMQP_FRAME_METHOD)
            s_method (self, frame.channel, &frame.payload.method);
        if (self->conn)
            amqp_maybe_release_buffers (self->conn);
    }
}

//  ---------------------------------------------------------------------
//  The thread: commands from the loop

static uint64_t
s_pop_u64 (zmsg_t *msg)
{
    uint64_t value = 0;
    zframe_t *frame = zmsg_pop (msg);
    if (frame && zframe_size (frame) == sizeof (value))
        memcpy (&value, zframe_data (frame), sizeof (value));
    zframe_destroy (&frame);
    return value;
}

static void
s_publish (s_thread_t *self, zmsg_t *msg)
{
    uint64_t id = s_pop_u64 (msg);
    zframe_t *address = zmsg_pop (msg);
    char *state = zmsg_popstr (msg);
    char *error = zmsg_popstr (msg);
    zframe_t *result = zmsg_pop (msg);
    amqp_pool_t pool;
    init_amqp_pool (&pool, 512);
    amqp_bytes_t reply_to, correlation_id;
    int rc = arb_envelope_read_address (zframe_data (address), zframe_size (address), &pool,
                                        &reply_to, &correlation_id);
    //  the loop sends only addresses the thread made, or records it checked
    assert (rc == 0);
    amqp_table_entry_t entries[3];
    amqp_basic_properties_t props;
    arb_envelope_reply (correlation_id, id, state, error, entries, &props);
    rc = amqp_basic_publish (self->conn, S_REPLIES, amqp_empty_bytes, reply_to, 1, 0, &props,
                             (amqp_bytes_t){zframe_size (result), zframe_data (result)});
    if (rc != AMQP_STATUS_OK) {
        char why[S_REPLY_MAX];
        snprintf (why, sizeof (why), "publishing a reply: %s", amqp_error_string2 (rc));
        s_lost (self, why);
        goto cleanup;
    }
    if (self->unconfirmed_n == self->unconfirmed_cap) {
        self->unconfirmed_cap = self->unconfirmed_cap ? self->unconfirmed_cap * 2 : 64;
        self->unconfirmed = (s_unconfirmed_t *) realloc (
            self->unconfirmed, self->unconfirmed_cap * sizeof (s_unconfirmed_t));
        assert (self->unconfirmed);
    }
    self->unconfirmed[self->unconfirmed_n++] = (s_unconfirmed_t){++self->seq, id};
cleanup:
    empty_amqp_pool (&pool);
    zframe_destroy (&address);
    zstr_free (&state);
    zstr_free (&error);
    zframe_destroy (&result);
}

//  The task a publish command (its fields left) is the reply to.
static uint64_t
s_publish_id (zmsg_t *msg)
{
    zframe_t *frame = zmsg_first (msg);
    uint64_t id = 0;
    if (frame && zframe_size (frame) == sizeof (id))
        memcpy (&id, zframe_data (frame), sizeof (id));
    return id;
}

//  Whether the reply to task id may go now: not while one in doubt is in
//  flight alone, and one in doubt only with nothing in flight.
static bool
s_may_publish (s_thread_t *self, uint64_t id)
{
    if (self->alone)
        return false;
    return !s_doubted (self, id) || self->unconfirmed_n == 0;
}

//  Publishes, the one in doubt alone.
static void
s_publish_now (s_thread_t *self, zmsg_t *msg)
{
    self->alone = s_doubted (self, s_publish_id (msg)) != NULL;
    s_publish (self, msg);
}

//  Sends the publishes held back, in order, as far as they may go.
static void
s_send_held (s_thread_t *self)
{
    if (!s_guard (self))
        return;  //  stopping
    zmsg_t *msg;
    while (self->conn && (msg = (zmsg_t *) zlist_first (self->held))
           && s_may_publish (self, s_publish_id (msg))) {
        zlist_pop (self->held);
        s_publish_now (self, msg);
        zmsg_destroy (&msg);
    }
    s_unguard (self);
}

//  A command of the loop's (msg_p: taken if it is held back).
static void
s_command (s_thread_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    zframe_t *kind = zmsg_pop (msg);
    char type = kind && zframe_size (kind) == 1 ? (char) zframe_data (kind)[0] : 0;
    zframe_destroy (&kind);
    uint64_t gen = s_pop_u64 (msg);
    if (!self->conn || gen != self->gen)
        return;  //  meant for a connection that is gone
    int rc = AMQP_STATUS_OK;
    if (type == S_ACK)
        rc = amqp_basic_ack (self->conn, S_CHANNEL, s_pop_u64 (msg), 0);
    else if (type == S_REJECT) {
        uint64_t tag = s_pop_u64 (msg);
        rc = amqp_basic_reject (self->conn, S_CHANNEL, tag, s_pop_u64 (msg) != 0);
    }
    else if (type == S_PUBLISH
             && (zlist_size (self->held) || !s_may_publish (self, s_publish_id (msg)))) {
        zlist_append (self->held, msg);
        *msg_p = NULL;
    }
    else if (type == S_PUBLISH)
        s_publish_now (self, msg);
    if (rc != AMQP_STATUS_OK)
        s_lost (self, amqp_error_string2 (rc));
}

//  The next message waiting on sock, or NULL (without waiting).
static zmsg_t *
s_recv_ready (zsock_t *sock)
{
    return (zsock_events (sock) & ZMQ_POLLIN) ? zmsg_recv (sock) : NULL;
}

//  The loop's commands. Their sends can block: RabbitMQ in a resource
//  alarm stops reading a connection that publishes, and once the socket's
//  buffers fill a reply's publish (or an ack) waits for it. So the socket
//  is the one the loop's stop shuts down meanwhile (s_wake_stop), and a
//  stop does not wait for the alarm's end.
static void
s_commands (s_thread_t *self)
{
    if (!s_guard (self))
        return;  //  stopping: $TERM follows
    zmsg_t *msg;
    while ((msg = s_recv_ready (self->data))) {
        s_command (self, &msg);
        zmsg_destroy (&msg);
    }
    s_unguard (self);
}

static void
s_actor (zsock_t *pipe, void *arg)
{
    s_thread_t thread = {.args = (s_args_t *) arg, .pipe = pipe, .backoff_ms = S_BACKOFF_MS};
    s_thread_t *self = &thread;
    self->held = zlist_new ();
    self->doubted = zlistx_new ();
    self->data = zsock_new (ZMQ_PAIR);
    zsock_set_sndhwm (self->data, 0);
    zsock_set_rcvhwm (self->data, 0);
    int rc = zsock_connect (self->data, "%s", self->args->endpoint);
    if (rc)
        zsys_error ("upstream: cannot reach the loop bridge=%s endpoint=%s", self->args->bridge,
                    self->args->endpoint);
    zsock_signal (pipe, rc == 0 ? 0 : 1);
    while (rc == 0 && !self->stopped) {
        if (!self->conn && zclock_mono () >= self->retry_at)
            s_connect (self);
        long timeout = S_POLL_MS;
        if (self->conn && (amqp_frames_enqueued (self->conn) || amqp_data_in_buffer (self->conn)))
            timeout = 0;
        else if (!self->conn)
            timeout = (long) (self->retry_at - zclock_mono ());
        zmq_pollitem_t items[] = {
            {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve (self->data), 0, ZMQ_POLLIN, 0},
            {NULL, self->conn ? amqp_get_sockfd (self->conn) : -1, ZMQ_POLLIN, 0},
        };
        if (zmq_poll (items, self->conn ? 3 : 2, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            self->stopped = !command || streq (command, "$TERM");
            zstr_free (&command);
        }
        if (!self->stopped)
            s_commands (self);
        if (self->conn && !self->stopped)
            s_read (self);
    }
    s_close (self);
    s_drop_held (self);
    zlist_destroy (&self->held);
    zlistx_destroy (&self->doubted);
    free (self->unconfirmed);
    zsock_destroy (&self->data);
    s_args_destroy (&self->args);
    //  this thread's OpenSSL state (its error queue) goes now, not when the
    //  thread's keys are destroyed, which may come after the process's end
    OPENSSL_thread_stop ();
}

//  ---------------------------------------------------------------------
//  The loop's side

arb_upstream_t *
arb_upstream_new (const arb_upstream_config_t *config)
{
    s_args_t *args = (s_args_t *) zmalloc (sizeof (s_args_t));
    char why[ARB_TEXT_MAX];
    if (s_parse (args, config->url, why, sizeof (why))) {
        zsys_error ("upstream: bad URL bridge=%s reason=\"%s\"", config->bridge, why);
        s_args_destroy (&args);
        return NULL;
    }
    args->bridge = strdup (config->bridge);
    args->queue = strdup (config->queue);
    args->prefetch = config->prefetch;
    args->reconnect_max_ms =
        config->reconnect_max_ms > S_BACKOFF_MS ? config->reconnect_max_ms : S_BACKOFF_MS;
    args->max_payload = config->max_payload;
    arb_upstream_t *self = (arb_upstream_t *) zmalloc (sizeof (arb_upstream_t));
    self->wake = (s_wake_t *) zmalloc (sizeof (s_wake_t));
    pthread_mutex_init (&self->wake->lock, NULL);
    self->wake->fd = -1;
    args->wake = self->wake;
    args->endpoint = zsys_sprintf ("inproc://arb-upstream-%p", (void *) self);
    self->data = zsock_new (ZMQ_PAIR);
    zsock_set_sndhwm (self->data, 0);
    zsock_set_rcvhwm (self->data, 0);
    if (zsock_bind (self->data, "%s", args->endpoint) != 0) {
        zsys_error ("upstream: cannot bind %s bridge=%s", args->endpoint, config->bridge);
        s_args_destroy (&args);
        arb_upstream_destroy (&self);
        return NULL;
    }
    self->actor = zactor_new (s_actor, args);
    return self;
}

void
arb_upstream_destroy (arb_upstream_t **self_p)
{
    assert (self_p);
    arb_upstream_t *self = *self_p;
    if (!self)
        return;
    //  a thread blocked in a login is woken first, so that the stop does
    //  not wait for its timeout
    s_wake_stop (self->wake);
    zactor_destroy (&self->actor);
    zsock_destroy (&self->data);
    pthread_mutex_destroy (&self->wake->lock);
    free (self->wake);
    free (self);
    *self_p = NULL;
}

zsock_t *
arb_upstream_sock (arb_upstream_t *self)
{
    return self->data;
}

static void
s_send (arb_upstream_t *self, zmsg_t **msg_p)
{
    //  no high-water mark: never blocks, never drops
    zmsg_send (msg_p, self->data);
}

void
arb_upstream_ack (arb_upstream_t *self, uint64_t gen, uint64_t tag)
{
    zmsg_t *msg = s_event (S_ACK, gen);
    s_add_u64 (msg, tag);
    s_send (self, &msg);
}

void
arb_upstream_reject (arb_upstream_t *self, uint64_t gen, uint64_t tag, bool requeue)
{
    zmsg_t *msg = s_event (S_REJECT, gen);
    s_add_u64 (msg, tag);
    s_add_u64 (msg, requeue);
    s_send (self, &msg);
}

void
arb_upstream_publish (arb_upstream_t *self,
                      uint64_t gen,
                      uint64_t id,
                      zframe_t *address,
                      const char *state,
                      const char *error,
                      zframe_t **result_p)
{
    zmsg_t *msg = s_event (S_PUBLISH, gen);
    s_add_u64 (msg, id);
    zmsg_addmem (msg, zframe_data (address), zframe_size (address));
    zmsg_addstr (msg, state);
    zmsg_addstr (msg, error ? error : "");
    zframe_t *result = *result_p ? *result_p : zframe_new_empty ();
    *result_p = NULL;
    zmsg_append (msg, &result);
    s_send (self, &msg);
}

void
arb_upstream_event_clear (arb_upstream_event_t *event)
{
    zframe_destroy (&event->headers);
    zframe_destroy (&event->address);
    zframe_destroy (&event->body);
}

int
arb_upstream_recv (arb_upstream_t *self, arb_upstream_event_t *event)
{
    zmsg_t *msg = s_recv_ready (self->data);
    if (!msg)
        return -1;
    memset (event, 0, sizeof (*event));
    zframe_t *kind = zmsg_pop (msg);
    char type = zframe_data (kind)[0];
    zframe_destroy (&kind);
    event->gen = s_pop_u64 (msg);
    if (type == S_UP)
        event->type = ARB_UPSTREAM_UP;
    else if (type == S_DOWN) {
        event->type = ARB_UPSTREAM_DOWN;
        char *reason = zmsg_popstr (msg);
        snprintf (event->reason, sizeof (event->reason), "%s", reason ? reason : "?");
        zstr_free (&reason);
    }
    else if (type == S_CONFIRMED || type == S_NACKED) {
        event->type = type == S_CONFIRMED ? ARB_UPSTREAM_CONFIRMED : ARB_UPSTREAM_NACKED;
        event->id = s_pop_u64 (msg);
    }
    else if (type == S_REFUSED) {
        event->type = ARB_UPSTREAM_REFUSED;
        event->id = s_pop_u64 (msg);
        char *reason = zmsg_popstr (msg);
        snprintf (event->reason, sizeof (event->reason), "%s", reason ? reason : "?");
        zstr_free (&reason);
    }
    else {
        event->type = ARB_UPSTREAM_DELIVER;
        event->tag = s_pop_u64 (msg);
        zframe_t *flags_frame = zmsg_pop (msg);
        uint8_t flags = zframe_data (flags_frame)[0];
        zframe_destroy (&flags_frame);
        event->redelivered = flags & S_REDELIVERED;
        event->digest = flags & S_DIGEST;
        event->too_large = flags & S_TOO_LARGE;
        char *key = zmsg_popstr (msg);
        snprintf (event->key, sizeof (event->key), "%s", key);
        zstr_free (&key);
        if (flags & S_HEADERS)
            event->headers = zmsg_pop (msg);
        if (flags & S_ADDRESS)
            event->address = zmsg_pop (msg);
        if (!(flags & S_TOO_LARGE))
            event->body = zmsg_pop (msg);
    }
    zmsg_destroy (&msg);
    return 0;
}
