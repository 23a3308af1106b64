/*  arb_dial.c — a link's own ZMTP connection to the broker; see
    arb_dial.h.

    States: waiting (no socket; the next attempt at connect_at),
    connecting (a non-blocking connect under way), greeting (ours sent,
    the broker's awaited), handshake (our READY sent, the broker's
    awaited), open (message frames both ways, and PING/PONG). Its output
    is two buffers: the handshake's bytes, written first, and the
    messages, written only once open. Its input is one buffer, read when
    no whole frame waits in it; a message's frames are gathered
    (arb_gather.h) and decoded when the last is in.
*/

#include "arb_dial.h"
#include "arb_bytes.h"
#include "arb_dealer.h"
#include "arb_gather.h"
#include "arb_handshake.h"
#include "arb_tcp.h"
#include "arb_zmtp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_READ_CHUNK     (64u * 1024)   //  bytes read at once, at least
#define S_KEEP_MAX       (256u * 1024)  //  a buffer over this is freed once it is empty
#define S_COMMAND_MAX    (64u * 1024)   //  a command frame over this drops the connection
#define S_PONG_ROOM      (64u * 1024)   //  PINGs go unanswered while this much output waits
#define S_GREETING_FIRST (ARB_ZMTP_SIGNATURE + 1)  //  a greeting's bytes sent before the peer's

typedef enum {
    S_WAITING,
    S_CONNECTING,
    S_GREETING,
    S_HANDSHAKE,
    S_OPEN,
} s_state_t;

struct _arb_dial_t {
    char *host;                    //  owned: the broker's host, without brackets
    char *port;                    //  owned: its port, digits
    struct sockaddr_storage addr;  //  where it is, once looked up
    socklen_t addr_len;            //  bytes of addr
    bool resolved;                 //  addr holds the last look-up's answer
    uint64_t frame_max;            //  bytes: a larger frame drops the connection
    int epfd;                      //  owned: arb_dial_fd
    int fd;                        //  owned: the connection's socket, -1 while waiting
    s_state_t state;               //  see the top
    uint32_t watching;             //  the epoll events asked of fd
    int64_t connect_at;            //  monotonic ms: the next attempt, while waiting
    bool readable;                 //  the kernel may hold input
    bool buffered;                 //  whole frames may wait in in
    int64_t heard_ms;              //  monotonic: the last bytes read while a message was partly
                                   //  in; 0 none (arb_dial_heard)
    int64_t partial_ms;            //  monotonic: when part of a message was first seen waiting
                                   //  for the rest; 0 none
    uint64_t message_ms;           //  a message's time to come whole (arb_gather_overdue)
    bool blocked;                  //  the socket refused output: written when it says it takes more
    bool greeted;                  //  the rest of our greeting went (the peer's first part came)
    arb_bytes_t in;                //  read, not taken yet
    arb_bytes_t hand;              //  greeting, READY, PONG: written before messages
    arb_bytes_t out;               //  messages, written once open
    arb_gather_t gather;           //  the message being read
    uint8_t id[ARB_DEALER_ID_SIZE];  //  our routing id
    char failure[512];               //  why the last attempt failed; empty if none
    uint64_t drops;                  //  open connections that dropped
    //  the broker's last refusal of our handshake; empty if none since the
    //  last open connection or failed connect. It outlives failures that
    //  say less (a CURVE broker may close before its greeting is read)
    char refusal[512];
};

//  ---------------------------------------------------------------------
//  The endpoint

//  Splits "tcp://host:port" into its host (brackets dropped) and port:
//  0, or -1 if it is not that (an interface, a source address, a wild
//  card: what libzmq alone knows).
static int
s_parse (const char *endpoint, char **host_p, char **port_p)
{
    if (!endpoint || strncmp (endpoint, "tcp://", 6) != 0)
        return -1;
    const char *spec = endpoint + 6;
    const char *colon = strrchr (spec, ':');
    if (!colon || strchr (spec, ';'))
        return -1;
    const char *host = spec;
    size_t host_size = (size_t) (colon - spec);
    if (host_size >= 2 && host[0] == '[' && host[host_size - 1] == ']') {
        host++;
        host_size -= 2;
    }
    const char *port = colon + 1;
    char *end = NULL;
    long number = strtol (port, &end, 10);
    if (host_size == 0 || (host_size == 1 && *host == '*') || !*port || *end || number < 1
        || number > 65535)
        return -1;
    *host_p = strndup (host, host_size);
    *port_p = strdup (port);
    return 0;
}

//  ---------------------------------------------------------------------
//  The connection

static void s_write (arb_dial_t *self);

static void s_fail (arb_dial_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (arb_dial_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->failure, sizeof (self->failure), fmt, args);
    va_end (args);
}

//  What answers at the endpoint is no ZMTP peer (detail: how it shows):
//  said with the address, which is likely another server's.
static void
s_not_arbiterd (arb_dial_t *self, const char *detail)
{
    bool ipv6 = strchr (self->host, ':') != NULL;
    s_fail (self, "tcp://%s%s%s:%s %s: %s", ipv6 ? "[" : "", self->host, ipv6 ? "]" : "",
            self->port, ARB_HANDSHAKE_NOT_ARBITERD, detail);
}

//  The failure just said is the broker's refusal of our handshake.
static void
s_refused (arb_dial_t *self)
{
    snprintf (self->refusal, sizeof (self->refusal), "%s", self->failure);
}

//  No broker took the connection: any refusal was another's.
static void
s_unrefused (arb_dial_t *self)
{
    self->refusal[0] = 0;
}

//  Asks epoll for what the connection's state needs: input always,
//  output while a connect is under way or the socket refused some.
static void
s_watch (arb_dial_t *self)
{
    if (self->fd < 0)
        return;
    uint32_t events =
        EPOLLIN | (self->state == S_CONNECTING || self->blocked ? (uint32_t) EPOLLOUT : 0);
    if (events == self->watching)
        return;
    struct epoll_event event = {.events = events, .data.fd = self->fd};
    int op = self->watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl (self->epfd, op, self->fd, &event) == 0)
        self->watching = events;
    else
        zsys_warning ("dial: epoll_ctl failed: %s", strerror (errno));
}

//  Closes the connection, with its input and, if it was open (a message
//  may be part written), the messages waiting to go out: those sent before
//  a connection was made wait for the next, as a DEALER keeps them. The
//  next attempt is in ARB_DIAL_RECONNECT_MS.
static void
s_drop (arb_dial_t *self)
{
    if (self->state == S_OPEN) {
        arb_bytes_reset (&self->out, S_KEEP_MAX);
        self->drops++;
    }
    if (self->fd >= 0) {
        //  out of the set first: a copy of the descriptor (a child between
        //  fork and exec) would keep it there past the close
        epoll_ctl (self->epfd, EPOLL_CTL_DEL, self->fd, NULL);
        close (self->fd);
    }
    self->fd = -1;
    self->watching = 0;
    self->state = S_WAITING;
    self->connect_at = zclock_mono () + ARB_DIAL_RECONNECT_MS;
    self->readable = self->buffered = self->blocked = false;
    arb_bytes_reset (&self->in, S_KEEP_MAX);
    arb_bytes_reset (&self->hand, S_KEEP_MAX);
    arb_gather_reset (&self->gather);
    self->partial_ms = 0;
}

//  The connection is made: the first part of our greeting goes, the
//  signature and major version. The rest follows the peer's: a libzmq
//  peer given a whole greeting it refuses (a CURVE broker, ours saying
//  NULL) closes before its own has left, and could not say why.
static void
s_connected (arb_dial_t *self)
{
    uint8_t greeting[ARB_ZMTP_GREETING];
    arb_zmtp_greeting (greeting);
    self->state = S_GREETING;
    self->greeted = false;
    self->readable = true;
    if (arb_bytes_append (&self->hand, greeting, S_GREETING_FIRST)) {
        s_fail (self, "out of memory");
        s_drop (self);
        return;
    }
    s_write (self);
    s_watch (self);
}

//  Looks the broker's address up (a name's first IPv4 address, as a
//  DEALER without ZMQ_IPV6 and the broker's own listener take it; an
//  address with colons is IPv6): 0, or -1 (failure says why). It is kept
//  for the attempts that follow: a name server that is slow would hold
//  up the caller's loop at each one; the link's reset looks it up again.
static int
s_resolve (arb_dial_t *self)
{
    struct addrinfo hints = {.ai_family = strchr (self->host, ':') ? AF_INET6 : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (self->host, self->port, &hints, &found);
    if (rc != 0) {
        s_fail (self, "cannot resolve %s: %s", self->host, gai_strerror (rc));
        s_unrefused (self);
        return -1;
    }
    memcpy (&self->addr, found->ai_addr, found->ai_addrlen);
    self->addr_len = found->ai_addrlen;
    self->resolved = true;
    freeaddrinfo (found);
    return 0;
}

//  One attempt: a non-blocking connect.
static void
s_connect (arb_dial_t *self)
{
    self->connect_at = zclock_mono () + ARB_DIAL_RECONNECT_MS;
    if (!self->resolved && s_resolve (self))
        return;
    int fd = socket (self->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s_fail (self, "cannot make a socket: %s", strerror (errno));
        return;
    }
    //  options only: a connection works without them (a broker whose
    //  host vanished is found by the heartbeats' silence, sooner)
    (void) arb_tcp_tune (fd);
    int rc = connect (fd, (struct sockaddr *) &self->addr, self->addr_len);
    int error = errno;
    if (rc != 0 && error != EINPROGRESS) {
        s_fail (self, "cannot connect: %s", strerror (error));
        s_unrefused (self);
        close (fd);
        return;
    }
    self->fd = fd;
    self->watching = 0;
    self->state = S_CONNECTING;
    if (rc == 0)
        s_connected (self);
    else
        s_watch (self);
}

//  A connect under way: done yet, and how.
static void
s_check_connect (arb_dial_t *self)
{
    struct pollfd item = {self->fd, POLLOUT, 0};
    if (poll (&item, 1, 0) <= 0)
        return;
    int error = 0;
    socklen_t size = sizeof (error);
    if (getsockopt (self->fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
        error = errno;
    if (error) {
        s_fail (self, "cannot connect: %s", strerror (error));
        s_unrefused (self);
        s_drop (self);
        return;
    }
    s_connected (self);
}

//  Writes from one buffer: 1 (all of it), 0 (the socket took no more),
//  -1 (the connection dropped).
static int
s_write_from (arb_dial_t *self, arb_bytes_t *bytes)
{
    int rc = arb_bytes_send (bytes, self->fd, NULL);
    if (rc == 1)
        arb_bytes_reset (bytes, S_KEEP_MAX);
    else if (rc == 0)
        self->blocked = true;
    else {
        s_fail (self, "the connection cannot be written: %s", strerror (errno));
        s_drop (self);
    }
    return rc;
}

//  Writes what waits, the handshake's bytes first, messages once open.
static void
s_write (arb_dial_t *self)
{
    if (self->fd < 0 || self->state == S_CONNECTING)
        return;
    self->blocked = false;
    if (s_write_from (self, &self->hand) == 1 && self->state == S_OPEN)
        s_write_from (self, &self->out);
    s_watch (self);
}

//  ---------------------------------------------------------------------
//  Input

//  Queues bytes of the handshake or a command (greeting, READY, PONG) for
//  the broker: 0, or -1 (dropped).
static int
s_queue_hand (arb_dial_t *self, const uint8_t *frame, size_t size)
{
    if (size && arb_bytes_append (&self->hand, frame, size) == 0)
        return 0;
    s_fail (self, "out of memory");
    s_drop (self);
    return -1;
}

//  The broker's greeting is whole and good: our READY goes.
static int
s_take_greeting (arb_dial_t *self)
{
    uint8_t ready[128 + ARB_DEALER_ID_SIZE];
    size_t n = arb_zmtp_ready_id (ready, sizeof (ready), "DEALER", self->id, sizeof (self->id));
    if (s_queue_hand (self, ready, n))
        return -1;
    self->state = S_HANDSHAKE;
    s_write (self);
    return self->fd < 0 ? -1 : 0;
}

//  A command frame: the broker's READY in the handshake, PING (answered
//  with PONG), ERROR; others are ignored, as libzmq does. 0, or -1
//  (dropped).
static int
s_take_command (arb_dial_t *self, const uint8_t *body, size_t size)
{
    const uint8_t *name, *data;
    size_t name_size, data_size;
    if (arb_zmtp_command (body, size, &name, &name_size, &data, &data_size)) {
        s_fail (self, "the broker sent a malformed command frame");
        s_drop (self);
        return -1;
    }
    if (arb_zmtp_is (name, name_size, "ERROR")) {
        //  a reason: one length byte, then its text
        int length = data_size ? (int) data[0] : 0;
        if ((size_t) length > data_size - (data_size ? 1 : 0))
            length = 0;
        s_fail (self, "the broker refused the handshake: %.*s", length,
                length ? (const char *) data + 1 : "");
        s_refused (self);
        s_drop (self);
        return -1;
    }
    if (self->state == S_HANDSHAKE) {
        const uint8_t *type;
        size_t type_size;
        if (!arb_zmtp_is (name, name_size, "READY")
            || arb_zmtp_property (data, data_size, "Socket-Type", &type, &type_size) != 1
            || !arb_zmtp_is (type, type_size, "ROUTER")) {
            s_fail (self, "the peer is not a broker: its handshake is not a ROUTER's READY");
            s_drop (self);
            return -1;
        }
        self->state = S_OPEN;
        self->failure[0] = 0;
        s_unrefused (self);
        s_write (self);  //  what was sent while the connection was made
        return self->fd < 0 ? -1 : 0;
    }
    if (arb_zmtp_is (name, name_size, "PING") && arb_bytes_size (&self->hand) <= S_PONG_ROOM) {
        //  a TTL (2 bytes), then up to 16 bytes of context for the PONG
        size_t context = data_size > 2 ? data_size - 2 : 0;
        uint8_t pong[64];
        size_t n = arb_zmtp_command_frame (pong, sizeof (pong), "PONG", data + 2,
                                           context > 16 ? 16 : context);
        return s_queue_hand (self, pong, n);
    }
    return 0;
}

//  Takes what the input buffer holds, up to one whole message: 1 (a
//  message, decoded into *msg_p, *rc_p arb_msg_decode's), 0 (more input is
//  needed), -1 (the connection dropped).
static int
s_take (arb_dial_t *self, const arb_limits_t *limits, arb_msg_t **msg_p, int *rc_p)
{
    arb_bytes_t *in = &self->in;
    while (self->fd >= 0) {
        if (in->start == in->end)
            arb_bytes_reset (in, S_KEEP_MAX);  //  the room a big frame took goes with it
        const uint8_t *p = in->data ? in->data + in->start : NULL;
        size_t avail = arb_bytes_size (in);
        if (self->state == S_GREETING) {
            const char *reason = NULL;
            int ok = arb_zmtp_check_greeting (
                p, avail < ARB_ZMTP_GREETING ? avail : ARB_ZMTP_GREETING, &reason);
            if (ok < 0 && avail >= ARB_ZMTP_GREETING && memcmp (p + 12, "CURVE", 6) == 0) {
                s_fail (self, "%s", ARB_HANDSHAKE_NEEDS_CURVE);
                s_refused (self);
            }
            else if (ok < 0)
                s_not_arbiterd (self, reason);
            if (ok < 0) {
                s_drop (self);
                return -1;
            }
            if (!self->greeted && avail >= S_GREETING_FIRST) {
                uint8_t greeting[ARB_ZMTP_GREETING];
                arb_zmtp_greeting (greeting);
                if (s_queue_hand (self, greeting + S_GREETING_FIRST,
                                  ARB_ZMTP_GREETING - S_GREETING_FIRST))
                    return -1;
                self->greeted = true;
                s_write (self);
                if (self->fd < 0)
                    return -1;
            }
            if (ok == 0)
                return 0;
            in->start += ARB_ZMTP_GREETING;
            if (s_take_greeting (self))
                return -1;
            continue;
        }
        arb_zmtp_frame_t frame;
        int parsed = arb_zmtp_frame_parse (p, avail, &frame);
        bool command = parsed > 0 && (frame.flags & ARB_ZMTP_COMMAND);
        if (parsed < 0 || (parsed && frame.size > self->frame_max)
            || (parsed && (command || self->state != S_OPEN)
                && (!command || frame.size > S_COMMAND_MAX))) {
            s_fail (self, "the broker sent a malformed frame");
            s_drop (self);
            return -1;
        }
        if (!parsed || avail - frame.head < frame.size) {
            //  the first bytes of a message are heard as its later ones
            //  are (s_read): the read that brought them did not know yet
            if (self->state == S_OPEN && (avail || self->gather.parts) && !self->partial_ms)
                self->partial_ms = self->heard_ms = zclock_mono ();
            //  a frame that does not fit in the buffer gets room for it
            size_t need = parsed ? frame.head + (size_t) frame.size : ARB_ZMTP_FRAME_HEADER_MAX;
            if (need > in->cap - in->start && arb_bytes_reserve (in, need - avail)) {
                s_fail (self, "out of memory");
                s_drop (self);
                return -1;
            }
            return 0;
        }
        const uint8_t *body = p + frame.head;
        in->start += frame.head + (size_t) frame.size;
        if (command) {
            if (s_take_command (self, body, (size_t) frame.size))
                return -1;
            continue;
        }
        int rc = arb_gather_part (&self->gather, body, (size_t) frame.size, UINT64_MAX);
        if (rc) {
            s_fail (self,
                    rc == -2 ? "the broker sent a message of too many frames" : "out of memory");
            s_drop (self);
            return -1;
        }
        if (!(frame.flags & ARB_ZMTP_MORE)) {
            self->partial_ms = 0;
            *rc_p = arb_gather_decode (&self->gather, NULL, 0, limits, msg_p);
            return 1;
        }
    }
    return -1;
}

//  Reads what the kernel holds: 1 (some), 0 (nothing now), -1 (dropped).
//  A read short of its room drained the socket: epoll says when more
//  comes, and no receive is spent to learn that nothing has.
static int
s_read (arb_dial_t *self)
{
    int rc = arb_bytes_recv (&self->in, self->fd, S_READ_CHUNK);
    //  the clock only while a message is partly in (arb_dial_heard)
    if (rc > 0 && self->partial_ms)
        self->heard_ms = zclock_mono ();
    if (rc == 0 || rc == 2)
        self->readable = false;
    else if (rc < 0) {
        int error = errno;
        if (error == ENOMEM)
            s_fail (self, "out of memory");
        else if (self->state != S_OPEN)
            //  a ZMTP peer of another socket type may close on our READY
            //  before it sends its own (libzmq does, now and then)
            s_fail (self, "the peer closed the connection during the handshake: not a broker, "
                          "or one that would not take this link");
        else if (error)
            s_fail (self, "the broker closed the connection: %s", strerror (error));
        else
            s_fail (self, "the broker closed the connection");
        s_drop (self);
    }
    return rc > 0 ? 1 : rc;
}

//  ---------------------------------------------------------------------
//  The API

arb_dial_t *
arb_dial_new (const char *endpoint)
{
    char *host = NULL, *port = NULL;
    if (s_parse (endpoint, &host, &port))
        return NULL;
    int epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (epfd < 0) {
        zsys_error ("dial: epoll_create1 failed: %s", strerror (errno));
        free (host);
        free (port);
        return NULL;
    }
    arb_dial_t *self = (arb_dial_t *) zmalloc (sizeof (arb_dial_t));
    self->host = host;
    self->port = port;
    self->epfd = epfd;
    self->fd = -1;
    self->state = S_WAITING;
    self->frame_max = ARB_DIAL_FRAME_MAX;
    self->message_ms = ARB_GATHER_MESSAGE_MS;
    arb_dealer_routing_id (self->id);
    s_connect (self);
    return self;
}

arb_dial_t *
arb_dial_new_for (const char *endpoint, const arb_curve_t *curve)
{
    const char *transport = getenv ("ARBITER_LINK_TRANSPORT");
    if (curve || (transport && streq (transport, "zmq")))
        return NULL;
    return arb_dial_new (endpoint);
}

void
arb_dial_destroy (arb_dial_t **self_p, int linger_ms)
{
    assert (self_p);
    arb_dial_t *self = *self_p;
    if (!self)
        return;
    //  the last messages (a RESULT, BYE) get linger_ms to leave
    int64_t deadline = zclock_mono () + linger_ms;
    s_write (self);
    while (self->fd >= 0 && self->state == S_OPEN && self->blocked) {
        int64_t left = deadline - zclock_mono ();
        struct pollfd item = {self->fd, POLLOUT, 0};
        if (left <= 0 || poll (&item, 1, (int) left) <= 0)
            break;
        s_write (self);
    }
    if (self->fd >= 0)
        close (self->fd);
    close (self->epfd);
    arb_bytes_free (&self->in);
    arb_bytes_free (&self->hand);
    arb_bytes_free (&self->out);
    arb_gather_free (&self->gather);
    free (self->host);
    free (self->port);
    free (self);
    *self_p = NULL;
}

int
arb_dial_fd (arb_dial_t *self)
{
    return self->epfd;
}

int
arb_dial_send (arb_dial_t *self, arb_msg_t **msg_p)
{
    size_t before = arb_bytes_size (&self->out);
    if (before >= ARB_DIAL_OUT_MAX) {
        arb_msg_destroy (msg_p);
        errno = EAGAIN;
        return -1;
    }
    if (arb_msg_put (msg_p, arb_bytes_put_frame, &self->out)) {
        //  out of memory part way: what was appended of it goes
        self->out.end = self->out.start + before;
        errno = ENOMEM;
        return -1;
    }
    if (arb_bytes_size (&self->out) >= ARB_DIAL_WRITE_AT && !self->blocked)
        s_write (self);
    return 0;
}

void
arb_dial_set_max_payload (arb_dial_t *self, uint64_t max_payload)
{
    if (self && max_payload)
        self->frame_max = ARB_MESSAGE_MAX (max_payload);
}

void
arb_dial_set_message_ms (arb_dial_t *self, uint64_t message_ms)
{
    if (self)
        self->message_ms = message_ms;
}

bool
arb_dial_is_writable (arb_dial_t *self)
{
    return arb_bytes_size (&self->out) < ARB_DIAL_OUT_MAX;
}

void
arb_dial_flush (arb_dial_t *self)
{
    if (arb_bytes_size (&self->hand) || (self->state == S_OPEN && arb_bytes_size (&self->out)))
        s_write (self);
}

int
arb_dial_recv (arb_dial_t *self, const arb_limits_t *limits, arb_msg_t **msg_p)
{
    *msg_p = NULL;
    if (self->state == S_WAITING && zclock_mono () >= self->connect_at)
        s_connect (self);
    if (self->state == S_CONNECTING)
        s_check_connect (self);
    //  the descriptor is polled level-triggered: a call finds out by reading
    if (self->fd >= 0 && self->state != S_CONNECTING && !self->buffered)
        self->readable = true;
    while (self->fd >= 0 && self->state != S_CONNECTING && (self->buffered || self->readable)) {
        int rc = 0;
        int took = s_take (self, limits, msg_p, &rc);
        if (took > 0) {
            self->buffered = true;  //  more may follow it in the buffer
            return rc;
        }
        self->buffered = false;
        if (took < 0 || !self->readable || s_read (self) <= 0)
            break;
        self->buffered = true;
    }
    if (self->fd >= 0 && arb_bytes_size (&self->hand) && !self->blocked)
        s_write (self);  //  a PONG
    errno = EAGAIN;
    return -1;
}

int
arb_dial_timeout (arb_dial_t *self)
{
    if (self->buffered)
        return 0;
    if (self->state == S_WAITING) {
        int64_t left = self->connect_at - zclock_mono ();
        return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int) left;
    }
    if (self->state != S_CONNECTING && !self->blocked
        && (arb_bytes_size (&self->hand) || (self->state == S_OPEN && arb_bytes_size (&self->out))))
        return 0;
    return -1;
}

void
arb_dial_reconnect (arb_dial_t *self)
{
    //  connected, and not a byte in the time the link gave the broker to
    //  answer: a server that waits for a line (Kestrel, HTTP) holds it so
    if (self->state == S_GREETING && arb_bytes_size (&self->in) == 0)
        s_not_arbiterd (self, "it took the connection and sent no ZMTP greeting");
    s_drop (self);
    arb_bytes_reset (&self->out, S_KEEP_MAX);
    arb_dealer_routing_id (self->id);
    self->resolved = false;
    s_connect (self);
}

void
arb_dial_adopt (arb_dial_t *self, int fd)
{
    s_drop (self);
    int flags = fcntl (fd, F_GETFL, 0);
    fcntl (fd, F_SETFL, flags | O_NONBLOCK);
    self->fd = fd;
    self->watching = 0;
    s_connected (self);
}

bool
arb_dial_is_connected (arb_dial_t *self)
{
    return self->fd >= 0 && self->state != S_CONNECTING;
}

const char *
arb_dial_failure (arb_dial_t *self)
{
    return self->failure[0] ? self->failure : NULL;
}

const char *
arb_dial_refusal (arb_dial_t *self)
{
    return self->refusal[0] ? self->refusal : NULL;
}

int64_t
arb_dial_heard (arb_dial_t *self)
{
    //  a message not whole in its time is no sign of life
    if (self->partial_ms
        && arb_gather_overdue ((uint64_t) self->partial_ms, (uint64_t) zclock_mono (),
                               self->message_ms, self->gather.bytes + arb_bytes_size (&self->in)))
        return 0;
    return self->heard_ms;
}

bool
arb_dial_is_open (arb_dial_t *self)
{
    return self->state == S_OPEN;
}

uint64_t
arb_dial_drops (arb_dial_t *self)
{
    return self->drops;
}
