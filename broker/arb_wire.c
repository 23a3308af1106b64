/*  arb_wire.c — the broker's connections: a ROUTER socket, or the loop's
    own ZMTP connections; see arb_wire.h.

    A connection of its own goes through three states: the greeting (64
    bytes each way; ours is written at accept), the handshake (the peer's
    READY, then ours, with the socket types checked) and open (message
    frames, and the PING/PONG commands of ZMTP 3.1). Its input is read
    into one buffer, only when the loop asks for the next message and the
    buffer holds no whole frame; a message's frames are gathered as they
    come (the first two copied into buffers the connection keeps, the
    payloads into frames of their own), and decoded when its last one is
    in. Its output is one buffer, appended to by sends and written at the
    end of the turn.
*/

#include "arb_wire.h"
#include "arb_zmtp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_READ_CHUNK    (64u * 1024)   //  bytes read at once, at least
#define S_KEEP_MAX      (256u * 1024)  //  a buffer over this is freed once it is empty
#define S_COMMAND_MAX   (64u * 1024)   //  a command frame (READY, PING) over this closes
#define S_HANDSHAKE_MS  30000          //  as libzmq's ZMQ_HANDSHAKE_IVL
#define S_LINGER_MS     1000           //  at destroy, output still goes out for this long
#define S_BACKLOG       100            //  as libzmq's ZMQ_BACKLOG
#define S_ACCEPTS       64             //  connections accepted per poll at most
#define S_ACCEPT_PAUSE  100            //  ms without accepting after EMFILE
#define S_MESSAGE_BYTES (1ull << 30)   //  one message's frames together, at least
#define S_PONG_ROOM     (64u * 1024)   //  PINGs go unanswered while more waits to go out
#define S_AWAIT_MISSES  6              //  waits in vain before the longest skip (2^6 turns)
#define S_MESSAGE_PARTS (2 + 2 * (size_t) ARB_LIST_MAX)

typedef struct {
    uint8_t *data;
    size_t start;  //  first byte not taken yet
    size_t end;    //  one past the last byte
    size_t cap;
} s_bytes_t;

typedef enum {
    S_GREETING,
    S_HANDSHAKE,
    S_OPEN
} s_state_t;

typedef struct {
    size_t size;
    const uint8_t *data;
} s_key_t;

typedef struct {
    int fd;
    s_state_t state;
    uint64_t opened_ms;  //  monotonic: when it was accepted
    bool readable;       //  the kernel may hold input for it
    bool buffered;       //  whole frames may wait in its input
    bool writing;        //  output waits for the socket to take it
    bool closed;         //  to be reaped
    bool draining;       //  unmapped (its id taken over, or its output failed): input
                         //  still read to its end, then closed
    bool mute;           //  its output failed: nothing more is written
    uint64_t ttl_at;     //  monotonic ms: closed if nothing comes by then (its PING's
                         //  TTL); 0 none
    s_bytes_t in, out;
    //  where each message waiting in out ends, counted from the first byte
    //  ever queued, so that the messages still to write are counted as a
    //  ROUTER's high-water mark counts them
    uint64_t *ends;
    size_t ends_first, ends_count, ends_cap;
    uint64_t queued;   //  bytes queued in all
    uint64_t written;  //  bytes written in all
    //  arb_wire_await's: the turn a message was last queued for it; sent
    //  something since its last message came in; waits it let pass in
    //  vain in a row (at most S_AWAIT_MISSES), and the turn before which
    //  it is not waited for again after such a wait
    uint64_t sent_turn;
    bool owed;
    unsigned misses;
    uint64_t skip_until;
    uint8_t id[ARB_ZMTP_ID_MAX];
    s_key_t key;  //  over id, while mapped
    bool mapped;
    char peer[INET6_ADDRSTRLEN + 8];
    //  the message being gathered
    size_t parts;
    uint64_t bytes;
    s_bytes_t head, body;
    zframe_t **frames;
    size_t n_frames, cap_frames;
} s_conn_t;

struct _arb_wire_t {
    arb_wire_config_t config;
    char *endpoint;    //  owned copy
    zsock_t *router;   //  owned, in the ROUTER's way; NULL in the loop's own
    int listen_fd;     //  the loop's own, or -1
    s_conn_t **conns;  //  owned
    size_t n_conns, cap_conns;
    zhashx_t *by_id;  //  s_key_t * (the connection's) -> s_conn_t *
    size_t cursor;    //  the connection to read from first
    uint64_t next_id;
    uint64_t accept_paused_until;  //  monotonic ms
    struct pollfd *fds;
    size_t cap_fds;
    uint64_t message_max;  //  one message's frames together: S_MESSAGE_BYTES, or two of
                           //  the largest frames if more
    uint64_t turn;         //  counted by arb_wire_next_turn
};

//  ---------------------------------------------------------------------
//  Byte buffers

//  Makes room for more bytes after end: 0, or -1 if out of memory.
static int
s_reserve (s_bytes_t *b, size_t more)
{
    if (b->start == b->end)
        b->start = b->end = 0;
    if (b->cap - b->end >= more)
        return 0;
    if (b->start && b->cap - (b->end - b->start) >= more) {
        memmove (b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - (b->end - b->start) < more)
        cap *= 2;
    uint8_t *data = (uint8_t *) malloc (cap);
    if (!data)
        return -1;
    if (b->end > b->start)
        memcpy (data, b->data + b->start, b->end - b->start);
    free (b->data);
    b->end -= b->start;
    b->start = 0;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int
s_append (s_bytes_t *b, const void *data, size_t size)
{
    if (s_reserve (b, size))
        return -1;
    if (size)
        memcpy (b->data + b->end, data, size);
    b->end += size;
    return 0;
}

//  Empties the buffer, and frees a large one so that one big message does
//  not hold its room for ever.
static void
s_reset (s_bytes_t *b)
{
    b->start = b->end = 0;
    if (b->cap > S_KEEP_MAX) {
        free (b->data);
        *b = (s_bytes_t){0};
    }
}

static void
s_free (s_bytes_t *b)
{
    free (b->data);
    *b = (s_bytes_t){0};
}

//  ---------------------------------------------------------------------
//  Routing ids

static size_t
s_key_hash (const void *key)
{
    const s_key_t *k = (const s_key_t *) key;
    size_t hash = 14695981039346656037ull;  //  FNV-1a
    for (size_t i = 0; i < k->size; i++)
        hash = (hash ^ k->data[i]) * 1099511628211ull;
    return hash;
}

static int
s_key_compare (const void *a, const void *b)
{
    const s_key_t *x = (const s_key_t *) a, *y = (const s_key_t *) b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return memcmp (x->data, y->data, x->size);
}

//  Keys are the connections' own: nothing to copy or free.
static void *
s_key_keep (const void *key)
{
    return (void *) key;
}

static void
s_key_drop (void **key_p)
{
    *key_p = NULL;
}

static void
s_unmap (arb_wire_t *self, s_conn_t *conn)
{
    if (conn->mapped)
        zhashx_delete (self->by_id, &conn->key);
    conn->mapped = false;
}

//  ---------------------------------------------------------------------
//  Connections

static void
s_gather_reset (s_conn_t *conn)
{
    for (size_t i = 0; i < conn->n_frames; i++)
        zframe_destroy (&conn->frames[i]);
    conn->n_frames = 0;
    conn->parts = 0;
    conn->bytes = 0;
    s_reset (&conn->head);
    s_reset (&conn->body);
    if (conn->cap_frames > 64) {
        free (conn->frames);
        conn->frames = NULL;
        conn->cap_frames = 0;
    }
}

static void
s_conn_close (arb_wire_t *self, s_conn_t *conn, bool loud, const char *reason)
{
    if (conn->closed)
        return;
    if (!reason)
        ;  //  the broker stops: nothing to tell
    else if (loud)
        zsys_warning ("broker: closed a connection peer=%s reason=\"%s\"", conn->peer, reason);
    else
        zsys_debug ("broker: connection closed peer=%s reason=\"%s\"", conn->peer, reason);
    s_unmap (self, conn);
    close (conn->fd);
    conn->fd = -1;
    conn->closed = true;
    conn->readable = conn->buffered = conn->writing = false;
    s_gather_reset (conn);
    s_free (&conn->in);
    s_free (&conn->out);
    s_free (&conn->head);
    s_free (&conn->body);
}

static void
s_conn_free (s_conn_t **conn_p)
{
    s_conn_t *conn = *conn_p;
    free (conn->frames);
    free (conn->ends);
    free (conn);
    *conn_p = NULL;
}

//  Writes what waits, as far as the socket takes it.
static void
s_conn_write (arb_wire_t *self, s_conn_t *conn)
{
    while (!conn->closed && !conn->mute && conn->out.end > conn->out.start) {
        ssize_t n = send (conn->fd, conn->out.data + conn->out.start,
                          conn->out.end - conn->out.start, MSG_NOSIGNAL);
        if (n > 0) {
            conn->out.start += (size_t) n;
            conn->written += (uint64_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn->writing = true;
            return;
        }
        //  as libzmq: a write that fails ends the output only; what the
        //  peer sent before it went is still read, to the end of its input
        zsys_debug ("broker: connection cannot be written peer=%s reason=\"%s\"", conn->peer,
                    n < 0 ? strerror (errno) : "write failed");
        s_unmap (self, conn);
        conn->mute = conn->draining = true;
        conn->readable = true;
        conn->out.start = conn->out.end;
        break;
    }
    conn->writing = false;
    if (!conn->closed)
        s_reset (&conn->out);
}

//  Output that is not a message (the greeting, READY, PONG): counted in
//  queued, so that the messages' ends stay where they are. 0, or -1.
static int
s_queue_raw (s_conn_t *conn, const void *data, size_t size)
{
    if (s_append (&conn->out, data, size))
        return -1;
    conn->queued += size;
    return 0;
}

//  Messages queued for the connection and not wholly written yet.
static size_t
s_waiting (s_conn_t *conn)
{
    while (conn->ends_count && conn->ends[conn->ends_first] <= conn->written) {
        conn->ends_first++;
        conn->ends_count--;
    }
    if (!conn->ends_count)
        conn->ends_first = 0;
    return conn->ends_count;
}

//  Notes that a message ends where the output now ends: 0, or -1.
static int
s_queued (s_conn_t *conn, size_t bytes)
{
    if (conn->ends_first + conn->ends_count == conn->ends_cap) {
        if (conn->ends_first) {
            memmove (conn->ends, conn->ends + conn->ends_first,
                     conn->ends_count * sizeof (uint64_t));
            conn->ends_first = 0;
        }
        else {
            size_t cap = conn->ends_cap ? conn->ends_cap * 2 : 64;
            uint64_t *ends = (uint64_t *) realloc (conn->ends, cap * sizeof (uint64_t));
            if (!ends)
                return -1;
            conn->ends = ends;
            conn->ends_cap = cap;
        }
    }
    conn->queued += bytes;
    conn->ends[conn->ends_first + conn->ends_count++] = conn->queued;
    return 0;
}

static void
s_peer_name (int fd, char *out, size_t size)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof (addr);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername (fd, (struct sockaddr *) &addr, &len) == 0) {
        if (addr.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *) &addr;
            inet_ntop (AF_INET, &in->sin_addr, host, sizeof (host));
            port = ntohs (in->sin_port);
        }
        else if (addr.ss_family == AF_INET6) {
            struct sockaddr_in6 *in = (struct sockaddr_in6 *) &addr;
            inet_ntop (AF_INET6, &in->sin6_addr, host, sizeof (host));
            port = ntohs (in->sin6_port);
        }
    }
    snprintf (out, size, "%s:%d", host, port);
}

//  Adds a connected socket as a connection, our greeting on its way: 0,
//  or -1 (the socket is closed).
static int
s_conn_add (arb_wire_t *self, int fd, uint64_t now)
{
    s_conn_t *conn = (s_conn_t *) calloc (1, sizeof (s_conn_t));
    if (!conn || self->n_conns == SIZE_MAX / 2) {
        free (conn);
        close (fd);
        return -1;
    }
    if (self->n_conns == self->cap_conns) {
        size_t cap = self->cap_conns ? self->cap_conns * 2 : 16;
        s_conn_t **conns = (s_conn_t **) realloc (self->conns, cap * sizeof (s_conn_t *));
        if (!conns) {
            free (conn);
            close (fd);
            return -1;
        }
        self->conns = conns;
        self->cap_conns = cap;
    }
    conn->fd = fd;
    conn->opened_ms = now;
    conn->readable = true;
    s_peer_name (fd, conn->peer, sizeof (conn->peer));
    self->conns[self->n_conns++] = conn;
    uint8_t greeting[ARB_ZMTP_GREETING];
    arb_zmtp_greeting (greeting);
    if (s_queue_raw (conn, greeting, sizeof (greeting))) {
        s_conn_close (self, conn, true, "out of memory");
        return -1;
    }
    s_conn_write (self, conn);
    return 0;
}

static void
s_accept (arb_wire_t *self)
{
    uint64_t now = (uint64_t) zclock_mono ();
    for (int i = 0; i < S_ACCEPTS; i++) {
        int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                zsys_warning ("broker: cannot accept a connection: %s", strerror (errno));
                self->accept_paused_until = now + S_ACCEPT_PAUSE;
            }
            return;  //  EAGAIN: none left; others (ECONNABORTED): the peer's
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
        s_conn_add (self, fd, now);
    }
}

//  Takes the peer's READY: its socket type checked, its routing id taken
//  (or one made), a connection that held that id closed (handover).
static int
s_take_ready (arb_wire_t *self, s_conn_t *conn, const uint8_t *data, size_t size)
{
    const uint8_t *type, *id;
    size_t type_size, id_size;
    if (arb_zmtp_property (data, size, "Socket-Type", &type, &type_size) != 1) {
        s_conn_close (self, conn, true, "READY without a valid Socket-Type");
        return -1;
    }
    if (!arb_zmtp_router_peer (type, type_size)) {
        s_conn_close (self, conn, true, "a socket type that cannot talk to a ROUTER");
        return -1;
    }
    int has_id = arb_zmtp_property (data, size, "Identity", &id, &id_size);
    if (has_id == 1 && id_size > 0 && id_size <= ARB_ZMTP_ID_MAX && id[0] != 0) {
        memcpy (conn->id, id, id_size);
        conn->key.size = id_size;
    }
    else {
        //  nine bytes from a zero byte: no peer may choose an id that starts
        //  with one, and libzmq's own are five bytes long
        uint64_t n = ++self->next_id;
        conn->id[0] = 0;
        for (int i = 8; i >= 1; i--, n >>= 8)
            conn->id[i] = (uint8_t) n;
        conn->key.size = 9;
    }
    conn->key.data = conn->id;
    s_conn_t *old = (s_conn_t *) zhashx_lookup (self->by_id, &conn->key);
    if (old) {
        //  as ZMQ_ROUTER_HANDOVER: the old connection loses the id, and what
        //  it still holds is read (its messages keep the id), then it closes
        zsys_debug ("broker: routing id taken over peer=%s by=%s", old->peer, conn->peer);
        s_unmap (self, old);
        old->draining = old->readable = true;
    }
    zhashx_insert (self->by_id, &conn->key, conn);
    conn->mapped = true;
    uint8_t ready[128];
    size_t n = arb_zmtp_ready (ready, sizeof (ready), "ROUTER");
    if (s_queue_raw (conn, ready, n)) {
        s_conn_close (self, conn, true, "out of memory");
        return -1;
    }
    conn->state = S_OPEN;
    return 0;
}

//  A command frame: READY in the handshake; PING (answered with PONG) and
//  PONG once open; ERROR closes; others are ignored, as libzmq does.
static int
s_take_command (arb_wire_t *self, s_conn_t *conn, const uint8_t *body, size_t size)
{
    const uint8_t *name, *data;
    size_t name_size, data_size;
    if (arb_zmtp_command (body, size, &name, &name_size, &data, &data_size)) {
        s_conn_close (self, conn, true, "malformed command frame");
        return -1;
    }
    if (conn->state == S_HANDSHAKE) {
        if (arb_zmtp_is (name, name_size, "READY"))
            return s_take_ready (self, conn, data, data_size);
        s_conn_close (self, conn, true, "handshake without READY");
        return -1;
    }
    if (arb_zmtp_is (name, name_size, "PING")) {
        //  PING: a TTL (2 bytes, in tenths of a second: nothing from the
        //  peer for that long closes it, as libzmq does), then up to 16
        //  bytes of context, sent back in PONG; no PONG while output is
        //  held up (libzmq keeps one PONG at most)
        uint16_t ttl = data_size >= 2 ? (uint16_t) (data[0] << 8 | data[1]) : 0;
        if (ttl && !conn->ttl_at)
            conn->ttl_at = (uint64_t) zclock_mono () + 100u * ttl;
        size_t context = data_size > 2 ? data_size - 2 : 0;
        if (conn->writing || conn->out.end - conn->out.start > S_PONG_ROOM)
            return 0;
        uint8_t pong[64];
        size_t n = arb_zmtp_command_frame (pong, sizeof (pong), "PONG", data + 2,
                                           context > 16 ? 16 : context);
        if (n && s_queue_raw (conn, pong, n)) {
            s_conn_close (self, conn, true, "out of memory");
            return -1;
        }
        return 0;
    }
    if (arb_zmtp_is (name, name_size, "ERROR")) {
        s_conn_close (self, conn, false, "the peer sent ERROR");
        return -1;
    }
    return 0;
}

//  Adds a message frame to the message being gathered: 1 when it was the
//  last (the message is whole), 0, or -1 (closed).
static int
s_take_part (arb_wire_t *self, s_conn_t *conn, const uint8_t *data, size_t size, bool more)
{
    conn->bytes += size;
    if (conn->parts + 1 > S_MESSAGE_PARTS || conn->bytes > self->message_max) {
        s_conn_close (self, conn, true, "a message of too many frames or bytes");
        return -1;
    }
    int rc = 0;
    if (conn->parts == 0)
        rc = s_append (&conn->head, data, size);
    else if (conn->parts == 1)
        rc = s_append (&conn->body, data, size);
    else {
        if (conn->n_frames == conn->cap_frames) {
            size_t cap = conn->cap_frames ? conn->cap_frames * 2 : 8;
            zframe_t **frames = (zframe_t **) realloc (conn->frames, cap * sizeof (zframe_t *));
            if (!frames)
                rc = -1;
            else {
                conn->frames = frames;
                conn->cap_frames = cap;
            }
        }
        if (rc == 0)
            conn->frames[conn->n_frames++] = zframe_new (data, size);
    }
    if (rc) {
        s_conn_close (self, conn, true, "out of memory");
        return -1;
    }
    conn->parts++;
    return more ? 0 : 1;
}

//  Takes what the input buffer holds, up to one whole message: 1 (a
//  message: decoded into *msg_p, with *rc_p arb_msg_decode_from's), 0 (more
//  input is needed), or -1 (the connection was closed).
static int
s_take (arb_wire_t *self, s_conn_t *conn, const arb_limits_t *limits, arb_msg_t **msg_p, int *rc_p)
{
    s_bytes_t *in = &conn->in;
    while (!conn->closed) {
        if (in->start == in->end)
            s_reset (in);  //  the room a big frame took goes with it
        const uint8_t *p = in->data ? in->data + in->start : NULL;
        size_t avail = in->end - in->start;
        if (conn->state == S_GREETING) {
            const char *reason = NULL;
            int ok = arb_zmtp_check_greeting (
                p, avail < ARB_ZMTP_GREETING ? avail : ARB_ZMTP_GREETING, &reason);
            if (ok < 0) {
                s_conn_close (self, conn, true, reason);
                return -1;
            }
            if (ok == 0)
                return 0;
            in->start += ARB_ZMTP_GREETING;
            conn->state = S_HANDSHAKE;
            continue;
        }
        arb_zmtp_frame_t frame;
        int parsed = arb_zmtp_frame_parse (p, avail, &frame);
        if (parsed < 0) {
            s_conn_close (self, conn, true, "malformed frame header");
            return -1;
        }
        bool command = parsed && (frame.flags & ARB_ZMTP_COMMAND);
        if (parsed && (command || conn->state != S_OPEN) && frame.size > S_COMMAND_MAX) {
            s_conn_close (self, conn, true, "command frame too large");
            return -1;
        }
        if (parsed && frame.size > self->config.max_message) {
            s_conn_close (self, conn, true, "frame over the largest message the broker takes");
            return -1;
        }
        if (!parsed || avail - frame.head < frame.size) {
            //  a frame that does not fit in the buffer gets room for it
            size_t need = parsed ? frame.head + (size_t) frame.size : ARB_ZMTP_FRAME_HEADER_MAX;
            if (need > in->cap - in->start && s_reserve (in, need - avail)) {
                s_conn_close (self, conn, true, "out of memory");
                return -1;
            }
            return 0;
        }
        const uint8_t *body = p + frame.head;
        in->start += frame.head + (size_t) frame.size;
        conn->ttl_at = 0;  //  the peer is alive (a PING sets it again)
        if (command || conn->state != S_OPEN) {
            if (!command) {
                s_conn_close (self, conn, true, "a message before the handshake");
                return -1;
            }
            if (s_take_command (self, conn, body, (size_t) frame.size))
                return -1;
            continue;
        }
        int whole =
            s_take_part (self, conn, body, (size_t) frame.size, frame.flags & ARB_ZMTP_MORE);
        if (whole < 0)
            return -1;
        if (whole) {
            zframe_t *id = zframe_new (conn->id, conn->key.size);
            *rc_p = arb_msg_decode_from (
                &id, conn->head.data ? conn->head.data : (const uint8_t *) "", conn->head.end,
                conn->parts > 1 ? (conn->body.data ? conn->body.data : (const uint8_t *) "") : NULL,
                conn->body.end, conn->frames, conn->n_frames, limits, msg_p);
            conn->n_frames = 0;
            s_gather_reset (conn);
            return 1;
        }
    }
    return -1;
}

//  Reads what the kernel holds for the connection: 1 (read some), 0
//  (nothing: it is drained), -1 (closed: the peer went, or an error).
static int
s_read (arb_wire_t *self, s_conn_t *conn)
{
    if (s_reserve (&conn->in, S_READ_CHUNK)) {
        s_conn_close (self, conn, true, "out of memory");
        return -1;
    }
    while (true) {
        ssize_t n = recv (conn->fd, conn->in.data + conn->in.end, conn->in.cap - conn->in.end, 0);
        if (n > 0) {
            conn->in.end += (size_t) n;
            return 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn->readable = false;
            return 0;
        }
        s_conn_close (self, conn, false, n == 0 ? "the peer closed it" : strerror (errno));
        return -1;
    }
}

//  The connection's next message: as arb_wire_recv.
static int
s_next (arb_wire_t *self, s_conn_t *conn, const arb_limits_t *limits, arb_msg_t **msg_p)
{
    while (!conn->closed && (conn->buffered || conn->readable)) {
        int rc = 0;
        int took = s_take (self, conn, limits, msg_p, &rc);
        if (took > 0) {
            conn->buffered = true;  //  more may follow it in the buffer
            conn->owed = false;
            return rc;
        }
        conn->buffered = false;
        if (took < 0 || !conn->readable || s_read (self, conn) <= 0)
            break;
        conn->buffered = true;
    }
    if (conn->draining && !conn->closed && !conn->readable && !conn->buffered)
        s_conn_close (self, conn, false, "drained after losing its routing id");
    return -1;
}

//  ---------------------------------------------------------------------
//  The endpoint

//  Parses tcp://HOST:PORT for a listener of the loop's own: 0, or -1 when
//  it is not one the loop can serve (the ROUTER then serves it: an ipc://
//  endpoint, a port of "*", an interface name).
static int
s_listen_address (const char *endpoint, struct sockaddr_storage *addr, socklen_t *len)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return -1;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon || !colon[1] || strspn (colon + 1, "0123456789") != strlen (colon + 1))
        return -1;
    char name[256];
    size_t host_size = (size_t) (colon - host);
    if (host_size >= sizeof (name))
        return -1;
    memcpy (name, host, host_size);
    name[host_size] = 0;
    if (host_size >= 2 && name[0] == '[' && name[host_size - 1] == ']') {
        memmove (name, name + 1, host_size - 2);
        name[host_size - 2] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    //  names resolve to IPv4 only, as libzmq's without ZMQ_IPV6
    hints.ai_family = strchr (name, ':') ? AF_INET6 : AF_INET;
    struct addrinfo *found = NULL;
    if (getaddrinfo (strcmp (name, "*") == 0 ? NULL : name, colon + 1, &hints, &found) || !found)
        return -1;
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}

static int
s_listen (arb_wire_t *self, const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket (addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (bind (fd, (const struct sockaddr *) addr, len) || listen (fd, S_BACKLOG)) {
        int error = errno;
        close (fd);
        errno = error;
        return -1;
    }
    self->listen_fd = fd;
    return 0;
}

//  ---------------------------------------------------------------------
//  The interface

arb_wire_t *
arb_wire_new (const arb_wire_config_t *config)
{
    arb_wire_t *self = (arb_wire_t *) zmalloc (sizeof (arb_wire_t));
    self->config = *config;
    self->endpoint = strdup (config->endpoint);
    self->config.endpoint = self->endpoint;
    self->listen_fd = -1;
    if (!self->config.peer_sndhwm)
        self->config.peer_sndhwm = 10000;
    self->message_max = S_MESSAGE_BYTES > 2 * (uint64_t) config->max_message
                            ? S_MESSAGE_BYTES
                            : 2 * (uint64_t) config->max_message;
    struct sockaddr_storage addr;
    socklen_t len;
    bool own = config->mode == ARB_WIRE_AUTO && !config->curve
               && s_listen_address (config->endpoint, &addr, &len) == 0;
    if (own) {
        self->by_id = zhashx_new ();
        zhashx_set_key_hasher (self->by_id, s_key_hash);
        zhashx_set_key_comparator (self->by_id, s_key_compare);
        zhashx_set_key_duplicator (self->by_id, s_key_keep);
        zhashx_set_key_destructor (self->by_id, s_key_drop);
        return self;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_handover (self->router, 1);
    //  a send to a peer that is gone fails (EHOSTUNREACH) instead of
    //  vanishing: the outbox forgets such event subscribers
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, S_LINGER_MS);
    //  a frame far over the payload limit is cut at the socket
    zsock_set_maxmsgsize (self->router, (int64_t) config->max_message);
    zsock_set_rcvhwm (self->router, (int) config->peer_rcvhwm);
    zsock_set_sndhwm (self->router, (int) config->peer_sndhwm);
    return self;
}

//  What waits to go out gets S_LINGER_MS to leave, as the ROUTER's linger.
static void
s_linger (arb_wire_t *self)
{
    uint64_t deadline = (uint64_t) zclock_mono () + S_LINGER_MS;
    while ((uint64_t) zclock_mono () < deadline) {
        size_t n = 0;
        for (size_t i = 0; i < self->n_conns; i++) {
            s_conn_t *conn = self->conns[i];
            if (conn->closed || conn->out.end == conn->out.start)
                continue;
            conn->writing = false;
            s_conn_write (self, conn);
            if (conn->writing)
                self->fds[n++] = (struct pollfd){conn->fd, POLLOUT, 0};
        }
        if (n == 0 || poll (self->fds, n, 50) < 0)
            return;
    }
}

void
arb_wire_destroy (arb_wire_t **self_p)
{
    assert (self_p);
    arb_wire_t *self = *self_p;
    if (!self)
        return;
    if (self->fds || self->n_conns) {
        struct pollfd *fds =
            (struct pollfd *) realloc (self->fds, (self->n_conns + 1) * sizeof (*fds));
        if (fds) {
            self->fds = fds;
            s_linger (self);
        }
    }
    for (size_t i = 0; i < self->n_conns; i++) {
        s_conn_close (self, self->conns[i], false, NULL);
        s_conn_free (&self->conns[i]);
    }
    free (self->conns);
    free (self->fds);
    zhashx_destroy (&self->by_id);
    if (self->listen_fd >= 0)
        close (self->listen_fd);
    zsock_destroy (&self->router);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

zsock_t *
arb_wire_router (arb_wire_t *self)
{
    return self->router;
}

bool
arb_wire_is_own (arb_wire_t *self)
{
    return self->router == NULL;
}

int
arb_wire_bind (arb_wire_t *self)
{
    if (self->router) {
        if (zsock_bind (self->router, "%s", self->endpoint) < 0) {
            zsys_error ("broker: cannot bind %s: %s", self->endpoint, zmq_strerror (zmq_errno ()));
            return -1;
        }
        return 0;
    }
    struct sockaddr_storage addr;
    socklen_t len;
    if (s_listen_address (self->endpoint, &addr, &len) || s_listen (self, &addr, len)) {
        zsys_error ("broker: cannot bind %s: %s", self->endpoint, strerror (errno));
        return -1;
    }
    return 0;
}

//  Frees the connections closed since the last poll.
static void
s_reap (arb_wire_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n_conns; i++) {
        if (self->conns[i]->closed)
            s_conn_free (&self->conns[i]);
        else
            self->conns[kept++] = self->conns[i];
    }
    self->n_conns = kept;
}

//  Closes connections that did not finish their handshake in time, and
//  those silent past their PING's TTL (input waiting to be read is not
//  silence).
static void
s_expire (arb_wire_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->n_conns; i++) {
        s_conn_t *conn = self->conns[i];
        if (!conn->closed && conn->state != S_OPEN && now - conn->opened_ms > S_HANDSHAKE_MS)
            s_conn_close (self, conn, true, "no ZMTP handshake within 30 s");
        else if (!conn->closed && conn->ttl_at && now > conn->ttl_at && !conn->readable
                 && !conn->buffered)
            s_conn_close (self, conn, false, "silent past its heartbeat TTL");
    }
}

//  Room in fds for the listener and every connection: 0, or -1 (ENOMEM).
static int
s_fds_room (arb_wire_t *self)
{
    if (self->cap_fds >= self->n_conns + 1)
        return 0;
    size_t cap = (self->n_conns + 1) * 2;
    struct pollfd *fds = (struct pollfd *) realloc (self->fds, cap * sizeof (*fds));
    if (!fds) {
        errno = ENOMEM;
        return -1;
    }
    self->fds = fds;
    self->cap_fds = cap;
    return 0;
}

int
arb_wire_poll (arb_wire_t *self, int timeout_ms)
{
    if (self->router) {
        zmq_pollitem_t item = {zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
        return zmq_poll (&item, 1, timeout_ms);
    }
    arb_wire_flush (self);
    uint64_t now = (uint64_t) zclock_mono ();
    s_reap (self);
    if (s_fds_room (self))
        return -1;
    //  input already waiting (in the kernel or in a buffer): no wait
    bool ready = false;
    size_t n = 0;
    self->fds[n++] =
        (struct pollfd){self->listen_fd, now >= self->accept_paused_until ? POLLIN : 0, 0};
    for (size_t i = 0; i < self->n_conns; i++) {
        s_conn_t *conn = self->conns[i];
        ready = ready || conn->readable || conn->buffered;
        short events = (short) ((conn->readable ? 0 : POLLIN) | (conn->writing ? POLLOUT : 0));
        self->fds[n++] = (struct pollfd){conn->fd, events, 0};
    }
    if (self->accept_paused_until > now && (timeout_ms < 0 || timeout_ms > S_ACCEPT_PAUSE))
        timeout_ms = S_ACCEPT_PAUSE;
    int rc = poll (self->fds, n, ready ? 0 : timeout_ms);
    if (rc < 0)
        return -1;
    int sources = 0;
    if (self->fds[0].revents & POLLIN)
        s_accept (self);
    for (size_t i = 1; i < n; i++) {
        s_conn_t *conn = self->conns[i - 1];
        short revents = self->fds[i].revents;
        if (revents & (POLLIN | POLLERR | POLLHUP))
            conn->readable = true;
        if ((revents & (POLLOUT | POLLERR | POLLHUP)) && conn->writing)
            s_conn_write (self, conn);
        sources += conn->readable || conn->buffered;
    }
    s_expire (self, (uint64_t) zclock_mono ());
    return sources;
}

int
arb_wire_recv (arb_wire_t *self,
               const arb_limits_t *limits,
               arb_msg_t **msg_p,
               char *user_id,
               size_t user_id_size)
{
    if (self->router)
        return arb_msg_recv_from (self->router, true, limits, msg_p, user_id, user_id_size);
    *msg_p = NULL;
    if (user_id && user_id_size)
        user_id[0] = 0;
    //  one message from each connection in turn
    for (size_t tries = 0; tries < self->n_conns; tries++) {
        s_conn_t *conn = self->conns[self->cursor++ % self->n_conns];
        int rc = s_next (self, conn, limits, msg_p);
        if (rc != -1)
            return rc;
    }
    errno = EAGAIN;
    return -1;
}

//  Whether the turn waits for the connection's answer: it was sent
//  something this turn or the last and has not answered yet, has nothing
//  unread already, and is not skipped after waits it let pass in vain.
static bool
s_awaited (arb_wire_t *self, s_conn_t *conn)
{
    return !conn->closed && !conn->draining && conn->owed && self->turn - conn->sent_turn <= 1
           && self->turn >= conn->skip_until && !conn->readable && !conn->buffered;
}

int
arb_wire_await (arb_wire_t *self, uint64_t budget_us)
{
    if (self->router || budget_us == 0 || s_fds_room (self))
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < self->n_conns; i++)
        if (s_awaited (self, self->conns[i]))
            self->fds[n++] = (struct pollfd){self->conns[i]->fd, POLLIN, 0};
    if (n == 0)
        return 0;
    struct timespec wait = {(time_t) (budget_us / 1000000), (long) (budget_us % 1000000) * 1000};
    int rc = ppoll (self->fds, n, &wait, NULL);
    if (rc < 0)
        return 0;
    //  the fds are in the order of the awaited connections; those silent
    //  through a whole wait are skipped for 2, 4, ... 2^S_AWAIT_MISSES
    //  turns, those that answered are waited for every turn
    size_t k = 0;
    for (size_t i = 0; i < self->n_conns && k < n; i++) {
        s_conn_t *conn = self->conns[i];
        if (!s_awaited (self, conn))
            continue;
        if (self->fds[k++].revents) {
            conn->readable = true;
            conn->misses = 0;
        }
        else if (rc == 0) {
            conn->misses += conn->misses < S_AWAIT_MISSES;
            conn->skip_until = self->turn + (1u << conn->misses);
        }
    }
    return rc;
}

void
arb_wire_next_turn (arb_wire_t *self)
{
    self->turn++;
}

//  arb_msg_put's part: a frame onto the connection's output.
static int
s_put (void *arg, const void *data, size_t size, bool more)
{
    s_conn_t *conn = (s_conn_t *) arg;
    uint8_t head[ARB_ZMTP_FRAME_HEADER_MAX];
    size_t head_size = arb_zmtp_frame_head (head, more ? ARB_ZMTP_MORE : 0, size);
    if (s_reserve (&conn->out, head_size + size))
        return -1;
    memcpy (conn->out.data + conn->out.end, head, head_size);
    if (size)
        memcpy (conn->out.data + conn->out.end + head_size, data, size);
    conn->out.end += head_size + size;
    return 0;
}

int
arb_wire_send (arb_wire_t *self, arb_msg_t **msg_p)
{
    if (self->router)
        return arb_msg_send (msg_p, self->router);
    zframe_t *id = arb_msg_routing_id (*msg_p);
    s_key_t key = {id ? zframe_size (id) : 0, id ? zframe_data (id) : NULL};
    s_conn_t *conn = id ? (s_conn_t *) zhashx_lookup (self->by_id, &key) : NULL;
    int error = !conn ? EHOSTUNREACH : s_waiting (conn) >= self->config.peer_sndhwm ? EAGAIN : 0;
    if (error) {
        arb_msg_destroy (msg_p);
        errno = error;
        return -1;
    }
    size_t before = conn->out.end - conn->out.start;
    if (arb_msg_put (msg_p, s_put, conn)
        || s_queued (conn, conn->out.end - conn->out.start - before)) {
        //  out of memory part way: what was appended of it goes, the
        //  message is lost as a full ROUTER queue would lose it
        conn->out.end = conn->out.start + before;
        errno = EAGAIN;
        return -1;
    }
    conn->owed = true;
    conn->sent_turn = self->turn;
    return 0;
}

void
arb_wire_flush (arb_wire_t *self)
{
    for (size_t i = 0; i < self->n_conns; i++) {
        s_conn_t *conn = self->conns[i];
        if (!conn->closed && !conn->writing && conn->out.end > conn->out.start)
            s_conn_write (self, conn);
    }
}

int
arb_wire_adopt (arb_wire_t *self, int fd)
{
    assert (!self->router);
    int flags = fcntl (fd, F_GETFL);
    if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        close (fd);
        return -1;
    }
    return s_conn_add (self, fd, (uint64_t) zclock_mono ());
}

size_t
arb_wire_connections (arb_wire_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_conns; i++)
        n += !self->conns[i]->closed;
    return n;
}
