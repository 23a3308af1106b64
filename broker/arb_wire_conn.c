/*  arb_wire_conn.c — one of the loop's own ZMTP connections: its buffers,
    its handshake, the gathering of a message's frames, its output; see
    arb_wire_priv.h.

    A connection goes through three states: the greeting (64 bytes each
    way; ours is written at accept), the handshake (the peer's READY, then
    ours, with the socket types checked) and open (message frames, and the
    PING/PONG commands of ZMTP 3.1). Its input is read into one buffer,
    only when the loop asks for the next message and the buffer holds no
    whole frame; a message's frames are gathered as they come (the first
    two copied into buffers the connection keeps, the payloads into frames
    of their own), and decoded when its last one is in. Its output is one
    buffer, appended to by sends and written at the end of the turn.
*/

#include "arb_wire_priv.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_READ_CHUNK  (64u * 1024)   //  bytes read at once, at least
#define S_KEEP_MAX    (256u * 1024)  //  a buffer over this is freed once it is empty
#define S_COMMAND_MAX (64u * 1024)   //  a command frame (READY, PING) over this closes
#define S_PONG_ROOM   (64u * 1024)   //  PINGs go unanswered while more waits to go out

//  ---------------------------------------------------------------------
//  The connection

static void
s_unmap (arb_wire_t *wire, arb_wire_conn_t *conn)
{
    if (conn->mapped)
        zhashx_delete (wire->by_id, &conn->key);
    conn->mapped = false;
}

void
arb_wire_conn_close (arb_wire_t *wire, arb_wire_conn_t *conn, bool loud, const char *reason)
{
    if (conn->closed)
        return;
    if (!reason)
        ;  //  the broker stops: nothing to tell
    else if (loud && arb_loglimit_take (&wire->closes, (uint64_t) zclock_mono ()))
        zsys_warning ("broker: closed a connection peer=%s reason=\"%s\"", conn->peer, reason);
    else
        zsys_debug ("broker: connection closed peer=%s reason=\"%s\"", conn->peer, reason);
    s_unmap (wire, conn);
    //  its peer is gone, unless another connection took its id over
    //  (handover): what the broker keeps for the id goes at the next
    //  arb_wire_next_gone
    if (conn->state == ARB_WIRE_OPEN && !zhashx_lookup (wire->by_id, &conn->key))
        zlist_append (wire->gone, zframe_new (conn->id, conn->key.size));
    close (conn->fd);
    conn->fd = -1;
    conn->closed = true;
    conn->readable = conn->buffered = conn->writing = false;
    arb_gather_free (&conn->gather);
    arb_bytes_free (&conn->in);
    arb_bytes_free (&conn->out);
}

void
arb_wire_conn_free (arb_wire_conn_t **conn_p)
{
    arb_wire_conn_t *conn = *conn_p;
    arb_gather_free (&conn->gather);
    free (conn->ends);
    free (conn);
    *conn_p = NULL;
}

//  Writes what waits, as far as the socket takes it.
void
arb_wire_conn_write (arb_wire_t *wire, arb_wire_conn_t *conn)
{
    bool waited = conn->writing;
    conn->writing = false;
    if (conn->closed || conn->mute)
        return;
    int rc = arb_bytes_send (&conn->out, conn->fd, &conn->written);
    if (rc == 0) {
        conn->writing = true;
        return;
    }
    //  the clock only for output that had to wait: a slow reader's
    //  DISPATCHes may still lie in the kernel's buffers (arb_wire_unwritten)
    if (rc > 0 && waited)
        conn->drained_ms = (uint64_t) zclock_mono ();
    if (rc < 0) {
        //  as libzmq: a write that fails ends the output only; what the
        //  peer sent before it went is still read, to the end of its input
        zsys_debug ("broker: connection cannot be written peer=%s reason=\"%s\"", conn->peer,
                    strerror (errno));
        s_unmap (wire, conn);
        conn->mute = conn->draining = true;
        conn->readable = true;
    }
    arb_bytes_reset (&conn->out, S_KEEP_MAX);
}

//  Output that is not a message (the greeting, READY, PONG): counted in
//  queued, so that the messages' ends stay where they are. 0, or -1.
static int
s_queue_raw (arb_wire_conn_t *conn, const void *data, size_t size)
{
    if (arb_bytes_append (&conn->out, data, size))
        return -1;
    conn->queued += size;
    return 0;
}

//  Messages queued for the connection and not wholly written yet.
size_t
arb_wire_conn_waiting (arb_wire_conn_t *conn)
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
s_queued (arb_wire_conn_t *conn, size_t bytes)
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

//  A new connection over a connected socket, our greeting on its way;
//  NULL (the socket closed) if out of memory.
arb_wire_conn_t *
arb_wire_conn_new (arb_wire_t *wire, int fd, uint64_t now)
{
    arb_wire_conn_t *conn = (arb_wire_conn_t *) calloc (1, sizeof (arb_wire_conn_t));
    if (!conn) {
        close (fd);
        return NULL;
    }
    conn->fd = fd;
    conn->opened_ms = now;
    conn->readable = true;
    s_peer_name (fd, conn->peer, sizeof (conn->peer));
    uint8_t greeting[ARB_ZMTP_GREETING];
    arb_zmtp_greeting (greeting);
    if (s_queue_raw (conn, greeting, sizeof (greeting))) {
        arb_wire_conn_close (wire, conn, true, "out of memory");
        arb_wire_conn_free (&conn);
        return NULL;
    }
    arb_wire_conn_write (wire, conn);
    return conn;
}

//  ---------------------------------------------------------------------
//  Input

//  Takes the peer's READY: its socket type checked, its routing id taken
//  (or one made), a connection that held that id closed (handover).
static int
s_take_ready (arb_wire_t *wire, arb_wire_conn_t *conn, const uint8_t *data, size_t size)
{
    const uint8_t *type, *id;
    size_t type_size, id_size;
    if (arb_zmtp_property (data, size, "Socket-Type", &type, &type_size) != 1) {
        arb_wire_conn_close (wire, conn, true, "READY without a valid Socket-Type");
        return -1;
    }
    if (!arb_zmtp_router_peer (type, type_size)) {
        arb_wire_conn_close (wire, conn, true, "a socket type that cannot talk to a ROUTER");
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
        uint64_t n = ++wire->next_id;
        conn->id[0] = 0;
        for (int i = 8; i >= 1; i--, n >>= 8)
            conn->id[i] = (uint8_t) n;
        conn->key.size = 9;
    }
    conn->key.data = conn->id;
    arb_wire_conn_t *old = (arb_wire_conn_t *) zhashx_lookup (wire->by_id, &conn->key);
    if (old) {
        //  as ZMQ_ROUTER_HANDOVER: the old connection loses the id, and what
        //  it still holds is read (its messages keep the id), then it closes
        zsys_debug ("broker: routing id taken over peer=%s by=%s", old->peer, conn->peer);
        s_unmap (wire, old);
        old->draining = old->readable = true;
    }
    zhashx_insert (wire->by_id, &conn->key, conn);
    conn->mapped = true;
    uint8_t ready[128];
    size_t n = arb_zmtp_ready (ready, sizeof (ready), "ROUTER");
    if (s_queue_raw (conn, ready, n)) {
        arb_wire_conn_close (wire, conn, true, "out of memory");
        return -1;
    }
    conn->state = ARB_WIRE_OPEN;
    return 0;
}

//  A command frame: READY in the handshake; PING (answered with PONG) and
//  PONG once open; ERROR closes; others are ignored, as libzmq does.
static int
s_take_command (arb_wire_t *wire, arb_wire_conn_t *conn, const uint8_t *body, size_t size)
{
    const uint8_t *name, *data;
    size_t name_size, data_size;
    if (arb_zmtp_command (body, size, &name, &name_size, &data, &data_size)) {
        arb_wire_conn_close (wire, conn, true, "malformed command frame");
        return -1;
    }
    if (conn->state == ARB_WIRE_HANDSHAKE) {
        if (arb_zmtp_is (name, name_size, "READY"))
            return s_take_ready (wire, conn, data, data_size);
        arb_wire_conn_close (wire, conn, true, "handshake without READY");
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
            arb_wire_conn_close (wire, conn, true, "out of memory");
            return -1;
        }
        return 0;
    }
    if (arb_zmtp_is (name, name_size, "ERROR")) {
        arb_wire_conn_close (wire, conn, false, "the peer sent ERROR");
        return -1;
    }
    return 0;
}

//  Adds a message frame to the message being gathered: 1 when it was the
//  last (the message is whole), 0, or -1 (closed).
static int
s_take_part (arb_wire_t *wire, arb_wire_conn_t *conn, const uint8_t *data, size_t size, bool more)
{
    int rc = arb_gather_part (&conn->gather, data, size, wire->message_max);
    if (rc) {
        arb_wire_conn_close (wire, conn, true,
                             rc == -2 ? "a message of too many frames or bytes" : "out of memory");
        return -1;
    }
    return more ? 0 : 1;
}

//  Takes what the input buffer holds, up to one whole message: 1 (a
//  message: decoded into *msg_p, with *rc_p arb_msg_decode_from's), 0 (more
//  input is needed), or -1 (the connection was closed).
static int
s_take (arb_wire_t *wire,
        arb_wire_conn_t *conn,
        const arb_limits_t *limits,
        arb_msg_t **msg_p,
        int *rc_p)
{
    arb_bytes_t *in = &conn->in;
    while (!conn->closed) {
        if (in->start == in->end)
            arb_bytes_reset (in, S_KEEP_MAX);  //  the room a big frame took goes with it
        const uint8_t *p = in->data ? in->data + in->start : NULL;
        size_t avail = in->end - in->start;
        if (conn->state == ARB_WIRE_GREETING) {
            const char *reason = NULL;
            int ok = arb_zmtp_check_greeting (
                p, avail < ARB_ZMTP_GREETING ? avail : ARB_ZMTP_GREETING, &reason);
            if (ok < 0) {
                arb_wire_conn_close (wire, conn, true, reason);
                return -1;
            }
            if (ok == 0)
                return 0;
            in->start += ARB_ZMTP_GREETING;
            conn->state = ARB_WIRE_HANDSHAKE;
            continue;
        }
        arb_zmtp_frame_t frame;
        int parsed = arb_zmtp_frame_parse (p, avail, &frame);
        if (parsed < 0) {
            arb_wire_conn_close (wire, conn, true, "malformed frame header");
            return -1;
        }
        bool command = parsed && (frame.flags & ARB_ZMTP_COMMAND);
        if (parsed && (command || conn->state != ARB_WIRE_OPEN) && frame.size > S_COMMAND_MAX) {
            arb_wire_conn_close (wire, conn, true, "command frame too large");
            return -1;
        }
        if (parsed && frame.size > wire->config.max_message) {
            arb_wire_conn_close (wire, conn, true,
                                 "frame over the largest message the broker takes");
            return -1;
        }
        if (!parsed || avail - frame.head < frame.size) {
            //  the first bytes of a message are heard as its later ones
            //  are (s_read): the read that brought them did not know yet
            if (conn->state == ARB_WIRE_OPEN && (avail || conn->gather.parts) && !conn->partial_ms)
                conn->partial_ms = conn->heard_ms = (uint64_t) zclock_mono ();
            //  a frame that does not fit in the buffer gets room for it
            size_t need = parsed ? frame.head + (size_t) frame.size : ARB_ZMTP_FRAME_HEADER_MAX;
            if (need > in->cap - in->start && arb_bytes_reserve (in, need - avail)) {
                arb_wire_conn_close (wire, conn, true, "out of memory");
                return -1;
            }
            return 0;
        }
        const uint8_t *body = p + frame.head;
        in->start += frame.head + (size_t) frame.size;
        conn->ttl_at = 0;  //  the peer is alive (a PING sets it again)
        if (command || conn->state != ARB_WIRE_OPEN) {
            if (!command) {
                arb_wire_conn_close (wire, conn, true, "a message before the handshake");
                return -1;
            }
            if (s_take_command (wire, conn, body, (size_t) frame.size))
                return -1;
            continue;
        }
        int whole =
            s_take_part (wire, conn, body, (size_t) frame.size, frame.flags & ARB_ZMTP_MORE);
        if (whole < 0)
            return -1;
        if (whole) {
            conn->partial_ms = 0;
            *rc_p = arb_gather_decode (&conn->gather, conn->id, conn->key.size, limits, msg_p);
            return 1;
        }
    }
    return -1;
}

//  Reads what the kernel holds for the connection: 1 (read some), 0
//  (nothing: it is drained), -1 (closed: the peer went, or an error). A
//  read that did not fill its room drained it too: the poll, not another
//  receive, says when more comes (a receive per message saved).
static int
s_read (arb_wire_t *wire, arb_wire_conn_t *conn)
{
    int rc = arb_bytes_recv (&conn->in, conn->fd, S_READ_CHUNK);
    //  the clock only while a message is partly in: its bytes on their
    //  way are the peer's life (arb_wire_unread)
    if (rc > 0 && conn->partial_ms)
        conn->heard_ms = (uint64_t) zclock_mono ();
    if (rc == 0 || rc == 2)
        conn->readable = false;
    else if (rc < 0)
        arb_wire_conn_close (wire, conn, errno == ENOMEM,
                             errno == ENOMEM ? "out of memory"
                             : errno         ? strerror (errno)
                                             : "the peer closed it");
    return rc > 0 ? 1 : rc;
}

bool
arb_wire_conn_overdue (arb_wire_conn_t *conn, uint64_t now, uint64_t limit_ms)
{
    if (!conn->partial_ms || conn->closed)
        return false;
    uint64_t bytes = conn->gather.bytes + (conn->in.end - conn->in.start);
    return arb_gather_overdue (conn->partial_ms, now, limit_ms, bytes);
}

//  The connection's next message: as arb_wire_recv.
int
arb_wire_conn_next (arb_wire_t *wire,
                    arb_wire_conn_t *conn,
                    const arb_limits_t *limits,
                    arb_msg_t **msg_p)
{
    while (!conn->closed && (conn->buffered || conn->readable)) {
        int rc = 0;
        int took = s_take (wire, conn, limits, msg_p, &rc);
        if (took > 0) {
            conn->buffered = true;  //  more may follow it in the buffer
            conn->owed = false;
            return rc;
        }
        conn->buffered = false;
        if (took < 0 || !conn->readable || s_read (wire, conn) <= 0)
            break;
        conn->buffered = true;
    }
    if (conn->draining && !conn->closed && !conn->readable && !conn->buffered)
        arb_wire_conn_close (wire, conn, false, "drained after losing its routing id");
    return -1;
}

//  ---------------------------------------------------------------------
//  Output

int
arb_wire_conn_put (arb_wire_conn_t *conn, arb_msg_t **msg_p)
{
    size_t before = conn->out.end - conn->out.start;
    if (arb_msg_put (msg_p, arb_bytes_put_frame, &conn->out)
        || s_queued (conn, conn->out.end - conn->out.start - before)) {
        //  out of memory part way: what was appended of it goes, the
        //  message is lost as a full ROUTER queue would lose it
        conn->out.end = conn->out.start + before;
        return -1;
    }
    return 0;
}
