/*  test_wire.c — the broker's own end of a tcp:// endpoint (arb_wire.h)
    against libzmq's DEALER sockets and raw TCP peers on a loopback port,
    and the ZMTP pieces under it (arb_zmtp.h).

    What a ROUTER socket gave the broker must hold here too: a message and
    its reply, the peer's routing id (or one made for it), handover to a
    peer that connects again with its id, refusals when sending (no such
    peer; a peer that does not read), and a peer that breaks the protocol
    closed without touching the others. */

#include "arb_wire.h"
#include "arb_zmtp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

//  ---------------------------------------------------------------------
//  ZMTP pieces

static void
test_greeting (void **state)
{
    (void) state;
    uint8_t g[ARB_ZMTP_GREETING];
    arb_zmtp_greeting (g);
    const char *why = NULL;
    assert_int_equal (arb_zmtp_check_greeting (g, sizeof (g), &why), 1);
    for (size_t n = 0; n < sizeof (g); n++)
        assert_int_equal (arb_zmtp_check_greeting (g, n, &why), 0);
    uint8_t bad[ARB_ZMTP_GREETING];
    memcpy (bad, g, sizeof (g));
    bad[0] = 'G';  //  "GET / HTTP/1.1"
    assert_int_equal (arb_zmtp_check_greeting (bad, 1, &why), -1);
    memcpy (bad, g, sizeof (g));
    bad[9] = 0x7E;  //  ZMTP 1.0
    assert_int_equal (arb_zmtp_check_greeting (bad, 10, &why), -1);
    memcpy (bad, g, sizeof (g));
    bad[10] = 2;
    assert_int_equal (arb_zmtp_check_greeting (bad, 11, &why), -1);
    memcpy (bad, g, sizeof (g));
    memcpy (bad + 12, "CURVE", 5);
    assert_int_equal (arb_zmtp_check_greeting (bad, sizeof (bad), &why), -1);
    assert_non_null (strstr (why, "NULL"));
}

static void
test_frames (void **state)
{
    (void) state;
    uint64_t sizes[] = {0, 1, 255, 256, 70000, 1ull << 33};
    for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
        uint8_t head[ARB_ZMTP_FRAME_HEADER_MAX];
        size_t n = arb_zmtp_frame_head (head, ARB_ZMTP_MORE, sizes[i]);
        assert_int_equal (n, sizes[i] < 256 ? 2 : 9);
        arb_zmtp_frame_t frame;
        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal (arb_zmtp_frame_parse (head, cut, &frame), 0);
        assert_int_equal (arb_zmtp_frame_parse (head, n, &frame), 1);
        assert_int_equal (frame.size, sizes[i]);
        assert_int_equal (frame.head, n);
        assert_int_equal (frame.flags, ARB_ZMTP_MORE);
    }
    arb_zmtp_frame_t frame;
    uint8_t reserved[] = {0x08, 0};
    assert_int_equal (arb_zmtp_frame_parse (reserved, 2, &frame), -1);
    uint8_t command_more[] = {ARB_ZMTP_COMMAND | ARB_ZMTP_MORE, 0};
    assert_int_equal (arb_zmtp_frame_parse (command_more, 2, &frame), -1);
}

static void
test_ready_and_properties (void **state)
{
    (void) state;
    uint8_t out[128];
    size_t n = arb_zmtp_ready (out, sizeof (out), "ROUTER");
    assert_true (n > 0);
    arb_zmtp_frame_t frame;
    assert_int_equal (arb_zmtp_frame_parse (out, n, &frame), 1);
    assert_int_equal (frame.flags, ARB_ZMTP_COMMAND);
    assert_int_equal (frame.head + frame.size, n);
    const uint8_t *name, *data, *value;
    size_t name_size, data_size, value_size;
    assert_int_equal (
        arb_zmtp_command (out + frame.head, frame.size, &name, &name_size, &data, &data_size), 0);
    assert_true (arb_zmtp_is (name, name_size, "READY"));
    //  names compare without regard to case
    assert_int_equal (arb_zmtp_property (data, data_size, "socket-type", &value, &value_size), 1);
    assert_int_equal (value_size, 6);
    assert_memory_equal (value, "ROUTER", 6);
    assert_true (arb_zmtp_router_peer (value, value_size));
    assert_false (arb_zmtp_router_peer ((const uint8_t *) "PUB", 3));
    assert_int_equal (arb_zmtp_property (data, data_size, "Identity", &value, &value_size), 0);
    //  a value that runs past the end, and a name of length 0
    uint8_t broken[] = {2, 'i', 'd', 0, 0, 0, 9, 'x'};
    assert_int_equal (arb_zmtp_property (broken, sizeof (broken), "id", &value, &value_size), -1);
    uint8_t empty_name[] = {0, 0, 0, 0, 0};
    assert_int_equal (
        arb_zmtp_property (empty_name, sizeof (empty_name), "id", &value, &value_size), -1);
    uint8_t long_name[] = {9, 'a'};
    assert_int_equal (
        arb_zmtp_command (long_name, sizeof (long_name), &name, &name_size, &data, &data_size), -1);
    assert_int_equal (arb_zmtp_command_frame (out, 4, "READY", NULL, 0), 0);
}

//  ---------------------------------------------------------------------
//  The wire against real peers

typedef struct {
    arb_wire_t *wire;
    int port;
    char endpoint[64];
    arb_limits_t limits;
} s_fx_t;

static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof (addr);
    assert_int_equal (bind (fd, (struct sockaddr *) &addr, sizeof (addr)), 0);
    assert_int_equal (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    close (fd);
    return ntohs (addr.sin_port);
}

static int
s_setup (void **state)
{
    s_fx_t *fx = (s_fx_t *) calloc (1, sizeof (s_fx_t));
    fx->port = s_free_port ();
    snprintf (fx->endpoint, sizeof (fx->endpoint), "tcp://127.0.0.1:%d", fx->port);
    arb_wire_config_t config = {
        .endpoint = fx->endpoint,
        .mode = ARB_WIRE_AUTO,
        .max_message = 1 << 20,
        .peer_rcvhwm = 1000,
        .peer_sndhwm = 64,  //  messages waiting for a peer, at most
        .message_ms = 500,  //  a message's time to arrive, from its first byte
    };
    fx->wire = arb_wire_new (&config);
    assert_non_null (fx->wire);
    assert_true (arb_wire_is_own (fx->wire));
    assert_int_equal (arb_wire_bind (fx->wire), 0);
    fx->limits.max_frame = 1 << 20;
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    arb_wire_destroy (&fx->wire);
    free (fx);
    return 0;
}

//  Turns the wire until a message comes (polling up to ms).
static arb_msg_t *
s_recv_within (s_fx_t *fx, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        arb_msg_t *msg = NULL;
        int rc = arb_wire_recv (fx->wire, &fx->limits, &msg, NULL, 0);
        if (rc == 0)
            return msg;
        assert_int_equal (rc, -1);
        arb_wire_poll (fx->wire, 20);
    }
    return NULL;
}

static arb_msg_t *
s_recv (s_fx_t *fx)
{
    return s_recv_within (fx, 5000);
}

//  Turns the wire for ms, taking no message (there should be none).
static void
s_turn (s_fx_t *fx, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        arb_wire_poll (fx->wire, 10);
        arb_msg_t *msg = NULL;
        assert_int_equal (arb_wire_recv (fx->wire, &fx->limits, &msg, NULL, 0), -1);
    }
}

static zsock_t *
s_dealer (s_fx_t *fx, const char *id)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (id)
        zsock_set_identity (dealer, id);
    zsock_set_rcvtimeo (dealer, 20);
    assert_int_equal (zsock_connect (dealer, "%s", fx->endpoint), 0);
    return dealer;
}

static void
s_send_ping (zsock_t *dealer, uint32_t reqid)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_PING, reqid);
    assert_int_equal (arb_msg_send (&msg, dealer), 0);
}

//  A PING from the dealer, taken by the wire.
static void
s_ping_taken (s_fx_t *fx, zsock_t *dealer, uint32_t reqid)
{
    s_send_ping (dealer, reqid);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    assert_int_equal (arb_msg_reqid (msg), reqid);
    arb_msg_destroy (&msg);
}

//  The dealer's next message, turning the wire meanwhile.
static arb_msg_t *
s_dealer_recv (s_fx_t *fx, zsock_t *dealer)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline) {
        arb_wire_poll (fx->wire, 0);
        arb_msg_t *msg = NULL;
        if (arb_msg_recv (dealer, NULL, &msg) == 0)
            return msg;
    }
    return NULL;
}

static void
test_dealer_round_trip (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *dealer = s_dealer (fx, "peer-one");
    s_send_ping (dealer, 41);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    assert_int_equal (arb_msg_type (msg), ARB_MSG_PING);
    assert_int_equal (arb_msg_reqid (msg), 41);
    zframe_t *id = arb_msg_routing_id (msg);
    assert_int_equal (zframe_size (id), 8);
    assert_memory_equal (zframe_data (id), "peer-one", 8);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PONG);
    arb_msg_destroy (&msg);
    assert_int_equal (arb_wire_send (fx->wire, &reply), 0);
    assert_null (reply);
    arb_msg_t *back = s_dealer_recv (fx, dealer);
    assert_non_null (back);
    assert_int_equal (arb_msg_type (back), ARB_MSG_PONG);
    assert_int_equal (arb_msg_reqid (back), 41);
    arb_msg_destroy (&back);
    assert_int_equal (arb_wire_connections (fx->wire), 1);
    zsock_destroy (&dealer);
}

static void
test_made_ids_and_no_such_peer (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *a = s_dealer (fx, NULL), *b = s_dealer (fx, NULL);
    s_send_ping (a, 1);
    s_send_ping (b, 2);
    arb_msg_t *first = s_recv (fx), *second = s_recv (fx);
    assert_non_null (first);
    assert_non_null (second);
    zframe_t *x = arb_msg_routing_id (first), *y = arb_msg_routing_id (second);
    //  made ids: nine bytes from a zero byte, one per connection
    assert_int_equal (zframe_size (x), 9);
    assert_int_equal (zframe_data (x)[0], 0);
    assert_false (zframe_eq (x, y));
    arb_msg_destroy (&first);
    arb_msg_destroy (&second);
    arb_msg_t *lost = arb_msg_new (ARB_MSG_PONG, 3);
    zframe_t *nobody = zframe_new ("nobody", 6);
    arb_msg_set_routing_id (lost, nobody);
    zframe_destroy (&nobody);
    errno = 0;
    assert_int_equal (arb_wire_send (fx->wire, &lost), -1);
    assert_int_equal (errno, EHOSTUNREACH);
    assert_null (lost);
    zsock_destroy (&a);
    zsock_destroy (&b);
}

//  A peer that connects again with its routing id takes it over: replies
//  go to the new connection, and the old one is closed.
static void
test_handover (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *old = s_dealer (fx, "same-id");
    s_ping_taken (fx, old, 1);
    zsock_t *fresh = s_dealer (fx, "same-id");
    s_send_ping (fresh, 2);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    assert_int_equal (arb_msg_reqid (msg), 2);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PONG);
    arb_msg_destroy (&msg);
    assert_int_equal (arb_wire_send (fx->wire, &reply), 0);
    arb_msg_t *back = s_dealer_recv (fx, fresh);
    assert_non_null (back);
    assert_int_equal (arb_msg_reqid (back), 2);
    arb_msg_destroy (&back);
    s_turn (fx, 50);
    assert_int_equal (arb_wire_connections (fx->wire), 1);
    zsock_destroy (&old);
    zsock_destroy (&fresh);
}

static void s_handshake (int fd);

//  A raw TCP peer that speaks ZMTP by hand: its greeting and READY.
static int
s_raw (s_fx_t *fx, bool handshake)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) fx->port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof (addr)), 0);
    if (handshake)
        s_handshake (fd);
    else {
        struct timeval tv = {0, 20000};
        setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
    }
    return fd;
}

//  Sends a peer's greeting and READY (Socket-Type DEALER, Identity "raw").
static void
s_handshake (int fd)
{
    struct timeval tv = {0, 20000};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
    uint8_t greeting[ARB_ZMTP_GREETING];
    arb_zmtp_greeting (greeting);
    assert_int_equal (write (fd, greeting, sizeof (greeting)), sizeof (greeting));
    //  READY with Socket-Type DEALER and an Identity
    uint8_t props[] = {11,  'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0,
                       0,   0,   6,   'D', 'E', 'A', 'L', 'E', 'R', 8,   'I', 'd', 'e',
                       'n', 't', 'i', 't', 'y', 0,   0,   0,   3,   'r', 'a', 'w'};
    uint8_t ready[128];
    size_t n = arb_zmtp_command_frame (ready, sizeof (ready), "READY", props, sizeof (props));
    assert_int_equal (write (fd, ready, n), (ssize_t) n);
}

typedef struct {
    uint8_t *out;
    size_t size, cap;
} s_sink_t;

static int
s_sink (void *arg, const void *data, size_t size, bool more)
{
    s_sink_t *sink = (s_sink_t *) arg;
    uint8_t head[ARB_ZMTP_FRAME_HEADER_MAX];
    size_t n = arb_zmtp_frame_head (head, more ? ARB_ZMTP_MORE : 0, size);
    assert_true (sink->size + n + size <= sink->cap);
    memcpy (sink->out + sink->size, head, n);
    memcpy (sink->out + sink->size + n, data, size);
    sink->size += n + size;
    return 0;
}

//  A message as ZMTP frames (as a DEALER writes it); returns their size.
static size_t
s_frames (arb_msg_t **msg_p, uint8_t *out, size_t cap)
{
    s_sink_t sink = {out, 0, cap};
    assert_int_equal (arb_msg_put (msg_p, s_sink, &sink), 0);
    return sink.size;
}

//  Reads from a raw peer while turning the wire, until want bytes came
//  (or 5 s passed, or it was closed). Returns the bytes read.
static size_t
s_raw_read (s_fx_t *fx, int fd, uint8_t *buf, size_t want, bool *closed)
{
    size_t got = 0;
    int64_t deadline = zclock_mono () + 5000;
    *closed = false;
    while (got < want && zclock_mono () < deadline) {
        arb_wire_poll (fx->wire, 0);
        arb_msg_t *msg = NULL;
        arb_wire_recv (fx->wire, &fx->limits, &msg, NULL, 0);
        arb_msg_destroy (&msg);
        ssize_t n = read (fd, buf + got, want - got);
        if (n == 0) {
            *closed = true;
            break;
        }
        if (n > 0)
            got += (size_t) n;
    }
    return got;
}

static void
test_ping_gets_pong_and_split_frames_gather (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int fd = s_raw (fx, true);
    uint8_t buf[256];
    bool closed;
    size_t ready_size = arb_zmtp_ready (buf, sizeof (buf), "ROUTER");
    assert_int_equal (s_raw_read (fx, fd, buf, ARB_ZMTP_GREETING + ready_size, &closed),
                      ARB_ZMTP_GREETING + ready_size);
    //  PING: TTL 0, context "ctx"
    uint8_t ping[32];
    size_t n = arb_zmtp_command_frame (ping, sizeof (ping), "PING", (const uint8_t *) "\0\0ctx", 5);
    assert_int_equal (write (fd, ping, n), (ssize_t) n);
    uint8_t pong[32];
    size_t pong_size =
        arb_zmtp_command_frame (pong, sizeof (pong), "PONG", (const uint8_t *) "ctx", 3);
    assert_int_equal (s_raw_read (fx, fd, buf, pong_size, &closed), pong_size);
    assert_memory_equal (buf, pong, pong_size);
    //  a message written a byte at a time comes out whole
    arb_msg_t *ping_msg = arb_msg_new (ARB_MSG_PING, 77);
    uint8_t wire[256];
    size_t size = s_frames (&ping_msg, wire, sizeof (wire));
    arb_msg_t *msg = NULL;
    for (size_t i = 0; i < size; i++) {
        assert_int_equal (write (fd, wire + i, 1), 1);
        arb_wire_poll (fx->wire, 5);
        if (i + 1 < size)
            assert_int_equal (arb_wire_recv (fx->wire, &fx->limits, &msg, NULL, 0), -1);
    }
    msg = s_recv (fx);
    assert_non_null (msg);
    assert_int_equal (arb_msg_reqid (msg), 77);
    assert_memory_equal (zframe_data (arb_msg_routing_id (msg)), "raw", 3);
    arb_msg_destroy (&msg);
    close (fd);
}

//  A raw peer past the handshake (the wire's greeting and READY read), and
//  a PING of reqid framed as a DEALER writes it in wire (its size in
//  *size). Returns the peer's descriptor.
static int
s_raw_open_with_ping (s_fx_t *fx, uint32_t reqid, uint8_t *wire, size_t cap, size_t *size)
{
    arb_msg_t *ping_msg = arb_msg_new (ARB_MSG_PING, reqid);
    *size = s_frames (&ping_msg, wire, cap);
    int fd = s_raw (fx, true);
    uint8_t buf[256];
    bool closed = false;
    size_t ready_size = arb_zmtp_ready (buf, sizeof (buf), "ROUTER");
    s_raw_read (fx, fd, buf, ARB_ZMTP_GREETING + ready_size, &closed);
    assert_false (closed);
    return fd;
}

//  A peer that stops in the middle of a message, or trickles it, is
//  closed once the message's time has passed (message_ms from its first
//  byte: 500 ms here); one whose messages come whole is not.
static void
test_a_message_that_does_not_arrive_in_time_closes (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    uint8_t wire[256];
    size_t size;
    //  half a message, then a byte every 100 ms: closed after 500 ms
    int fd = s_raw_open_with_ping (fx, 78, wire, sizeof (wire), &size);
    uint8_t buf[256];
    bool closed = false;
    assert_int_equal (write (fd, wire, size / 2), (ssize_t) (size / 2));
    int64_t deadline = zclock_mono () + 3000;
    size_t sent = size / 2;
    while (!closed && zclock_mono () < deadline) {
        arb_wire_poll (fx->wire, 100);
        arb_msg_t *msg = NULL;
        assert_int_equal (arb_wire_recv (fx->wire, &fx->limits, &msg, NULL, 0), -1);
        if (sent + 1 < size && write (fd, wire + sent, 1) == 1)
            sent++;
        closed = recv (fd, buf, sizeof (buf), MSG_DONTWAIT) == 0;
    }
    assert_true (closed);
    close (fd);
    //  whole messages, each within its time, with a pause between: served
    zsock_t *dealer = s_dealer (fx, "whole");
    for (uint32_t i = 1; i <= 3; i++) {
        s_ping_taken (fx, dealer, i);
        s_turn (fx, 300);
    }
    s_ping_taken (fx, dealer, 4);
    zsock_destroy (&dealer);
}

//  The first bytes of a message, read alone, are the peer's life as its
//  later ones are: a worker whose big RESULT has only begun to come is
//  not silent (arb_wire_unread), though nothing of it waits unread.
static void
test_the_first_bytes_of_a_message_are_heard (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    uint8_t wire[256];
    size_t size;
    int fd = s_raw_open_with_ping (fx, 79, wire, sizeof (wire), &size);
    zclock_sleep (20);
    uint64_t before = (uint64_t) zclock_mono ();
    const uint8_t *peer = (const uint8_t *) "raw";
    assert_false (arb_wire_unread (fx->wire, peer, 3, before));
    assert_int_equal (write (fd, wire, size / 2), (ssize_t) (size / 2));
    s_turn (fx, 50);  //  read, and parsed as part of a message
    assert_true (arb_wire_unread (fx->wire, peer, 3, before));
    //  a window that began after them: nothing heard since
    zclock_sleep (5);
    assert_false (arb_wire_unread (fx->wire, peer, 3, (uint64_t) zclock_mono ()));
    //  the rest: the message comes whole
    assert_int_equal (write (fd, wire + size / 2, size - size / 2), (ssize_t) (size - size / 2));
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    assert_int_equal (arb_msg_reqid (msg), 79);
    arb_msg_destroy (&msg);
    close (fd);
}

//  A raw peer (after our handshake, or before any) that writes what is
//  given (two writes when second is not NULL) is closed by the wire.
static void
s_closed_after (s_fx_t *fx,
                bool handshake,
                const void *first,
                size_t first_size,
                const void *second,
                size_t second_size)
{
    uint8_t buf[4096];
    bool closed;
    int fd = s_raw (fx, handshake);
    assert_int_equal (write (fd, first, first_size), (ssize_t) first_size);
    if (second)
        assert_int_equal (write (fd, second, second_size), (ssize_t) second_size);
    s_raw_read (fx, fd, buf, sizeof (buf), &closed);
    assert_true (closed);
    close (fd);
}

//  Bad input closes that connection only; a DEALER beside it goes on.
static void
test_bad_peers_are_closed_alone (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *dealer = s_dealer (fx, "good");
    s_ping_taken (fx, dealer, 1);
    //  not ZMTP at all
    s_closed_after (fx, false, "GET / HTTP/1.1\r\n\r\n", 18, NULL, 0);
    //  a frame over the largest message
    uint8_t head[ARB_ZMTP_FRAME_HEADER_MAX];
    size_t n = arb_zmtp_frame_head (head, 0, (1 << 20) + 1);
    s_closed_after (fx, true, head, n, NULL, 0);
    //  reserved flag bits
    s_closed_after (fx, true, "\x40\x01x", 3, NULL, 0);
    //  a message frame before READY
    uint8_t greeting[ARB_ZMTP_GREETING];
    arb_zmtp_greeting (greeting);
    s_closed_after (fx, false, greeting, sizeof (greeting), "\x00\x01x", 3);
    s_ping_taken (fx, dealer, 2);
    zsock_destroy (&dealer);
}

//  Writes count PING messages (reqids from first on) to a raw peer.
static void
s_raw_pings (int fd, uint32_t first, int count)
{
    for (int i = 0; i < count; i++) {
        arb_msg_t *ping = arb_msg_new (ARB_MSG_PING, first + (uint32_t) i);
        uint8_t frames[64];
        size_t size = s_frames (&ping, frames, sizeof (frames));
        assert_int_equal (write (fd, frames, size), (ssize_t) size);
    }
}

//  Takes messages until none comes for a while; returns how many.
static int
s_take_all (s_fx_t *fx)
{
    int count = 0;
    arb_msg_t *msg;
    while ((msg = s_recv_within (fx, 300))) {
        count++;
        arb_msg_destroy (&msg);
    }
    return count;
}

//  What a connection sent before another took its routing id over is
//  still taken (ZMQ_ROUTER_HANDOVER delivers it too).
static void
test_handover_keeps_what_the_old_connection_sent (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int old = s_raw (fx, true);
    s_raw_pings (old, 1, 20);
    arb_msg_t *msg = s_recv (fx);  //  its first; the rest wait in its buffer
    assert_non_null (msg);
    arb_msg_destroy (&msg);
    int fresh = s_raw (fx, true);  //  the same id ("raw")
    s_raw_pings (fresh, 100, 1);
    arb_wire_poll (fx->wire, 0);  //  accepted while the old one holds 19
    assert_int_equal (s_take_all (fx), 20);
    s_turn (fx, 50);
    assert_int_equal (arb_wire_connections (fx->wire), 1);
    close (old);
    close (fresh);
}

//  A peer that resets its connection with replies unread: what it sent
//  before is still taken, though its output can no longer be written.
static void
test_a_failed_write_keeps_what_the_peer_sent (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int fd = s_raw (fx, true);
    s_raw_pings (fd, 1, 21);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PONG);
    arb_msg_destroy (&msg);
    assert_int_equal (arb_wire_send (fx->wire, &reply), 0);
    //  a reset (linger 0), which makes the wire's next write fail
    struct linger abort = {1, 0};
    setsockopt (fd, SOL_SOCKET, SO_LINGER, &abort, sizeof (abort));
    close (fd);
    arb_wire_flush (fx->wire);
    assert_int_equal (s_take_all (fx), 20);
    s_turn (fx, 50);
    assert_int_equal (arb_wire_connections (fx->wire), 0);
}

typedef struct {
    int fd;
    size_t bytes;
} s_reader_t;

static void *
s_reader (void *arg)
{
    s_reader_t *reader = (s_reader_t *) arg;
    uint8_t buf[4096];
    ssize_t n;
    while ((n = read (reader->fd, buf, sizeof (buf))) != 0)
        if (n > 0)
            reader->bytes += (size_t) n;
        else if (errno != EAGAIN && errno != EINTR)
            break;
    return NULL;
}

//  What waits to go out when the wire is destroyed still leaves, in full,
//  to a peer that reads (slowly: a small receive buffer).
static void
test_output_left_at_destroy_goes_out (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    //  a socket pair, so that the wire's side has a small send buffer
    int pair[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), 0);
    int small = 4096;
    setsockopt (pair[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof (small));
    assert_int_equal (arb_wire_adopt (fx->wire, pair[0]), 0);
    int fd = pair[1];
    s_handshake (fd);
    uint8_t buf[256];
    bool closed;
    size_t ready_size = arb_zmtp_ready (buf, sizeof (buf), "ROUTER");
    assert_int_equal (s_raw_read (fx, fd, buf, ARB_ZMTP_GREETING + ready_size, &closed),
                      ARB_ZMTP_GREETING + ready_size);
    s_raw_pings (fd, 1, 1);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    arb_msg_t *sample = arb_msg_new_error (msg, ARB_ERR_BAD_REQUEST, "%01000d", 0);
    uint8_t frames[2048];
    size_t each = s_frames (&sample, frames, sizeof (frames));
    size_t count = 64;  //  as many as may wait
    for (size_t i = 0; i < count; i++) {
        arb_msg_t *reply = arb_msg_new_error (msg, ARB_ERR_BAD_REQUEST, "%01000d", 0);
        assert_int_equal (arb_wire_send (fx->wire, &reply), 0);
    }
    arb_msg_destroy (&msg);
    arb_wire_flush (fx->wire);  //  as far as the kernel takes it
    struct timeval none = {0, 0};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof (none));
    s_reader_t reader = {fd, 0};
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_reader, &reader), 0);
    arb_wire_destroy (&fx->wire);
    pthread_join (thread, NULL);
    assert_int_equal (reader.bytes, count * each);
    close (fd);
}

//  A peer that never reads: sends to it are refused (EAGAIN) once its
//  output is over the bound, and the wire holds about that much.
static void
test_output_to_a_peer_that_does_not_read_is_bounded (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    int fd = s_raw (fx, true);
    int small = 4096;
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof (small));
    uint8_t buf[256];
    bool closed;
    size_t ready_size = arb_zmtp_ready (buf, sizeof (buf), "ROUTER");
    s_raw_read (fx, fd, buf, ARB_ZMTP_GREETING + ready_size, &closed);
    //  a message from it, so that its routing id is known
    arb_msg_t *ping = arb_msg_new (ARB_MSG_PING, 5);
    uint8_t frames[256];
    size_t size = s_frames (&ping, frames, sizeof (frames));
    assert_int_equal (write (fd, frames, size), (ssize_t) size);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    size_t sent = 0;
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        arb_msg_t *reply = arb_msg_new_error (msg, ARB_ERR_BAD_REQUEST, "%0200d", i);
        rc = arb_wire_send (fx->wire, &reply);
        if (rc == 0)
            sent++;
        arb_wire_flush (fx->wire);
    }
    assert_int_equal (rc, -1);
    assert_int_equal (errno, EAGAIN);
    //  the kernel's buffers and 64 messages: far fewer than were tried
    assert_true (sent >= 64 && sent < 20000);
    arb_msg_destroy (&msg);
    close (fd);
}

//  Nothing more to take: what a turn's reading ends with (a connection
//  just read from may hold more until a receive finds it empty).
static void
s_drained (s_fx_t *fx)
{
    arb_msg_t *msg = NULL;
    assert_int_equal (arb_wire_recv (fx->wire, &fx->limits, &msg, NULL, 0), -1);
}

//  A PING from the dealer taken, a reply of this type sent back and read
//  by the dealer.
static void
s_exchange_as (s_fx_t *fx, zsock_t *dealer, uint32_t reqid, arb_msg_type_t type)
{
    s_send_ping (dealer, reqid);
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    s_drained (fx);
    arb_msg_t *reply = arb_msg_new_reply (msg, type);
    arb_msg_destroy (&msg);
    assert_int_equal (arb_wire_send (fx->wire, &reply), 0);
    arb_msg_t *back = s_dealer_recv (fx, dealer);
    assert_non_null (back);
    arb_msg_destroy (&back);
}

//  The same with a PONG: the peer owes the wire an answer from this turn
//  on.
static void
s_exchange (s_fx_t *fx, zsock_t *dealer, uint32_t reqid)
{
    s_exchange_as (fx, dealer, reqid, ARB_MSG_PONG);
}

//  A PING taken, and nothing after it.
static void
s_ping_only (s_fx_t *fx, zsock_t *dealer, uint32_t reqid)
{
    s_ping_taken (fx, dealer, reqid);
    s_drained (fx);
}

//  The PING the dealer sent, taken, and nothing after it.
static void
s_sent_ping_taken (s_fx_t *fx, uint32_t reqid)
{
    arb_msg_t *msg = s_recv (fx);
    assert_non_null (msg);
    assert_int_equal (arb_msg_reqid (msg), reqid);
    arb_msg_destroy (&msg);
    s_drained (fx);
}

//  arb_wire_await's wait in ms, and what it returned.
static int64_t
s_await_ms (s_fx_t *fx, uint64_t budget_us, int *rc)
{
    int64_t started = zclock_mono ();
    *rc = arb_wire_await (fx->wire, budget_us);
    return zclock_mono () - started;
}

//  A turn waits for the answer of a peer it sent something to this turn
//  or the last, and for nobody else: not for a peer that owes nothing,
//  nor one sent something two turns ago, nor one that let a wait pass in
//  vain (until it answers in time again).
static void
test_await_waits_for_owed_answers_only (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *dealer = s_dealer (fx, "awaited");
    int rc;
    //  owing nothing: no wait
    s_ping_only (fx, dealer, 1);
    assert_true (s_await_ms (fx, 2000000, &rc) < 1000);
    assert_int_equal (rc, 0);
    //  answered last turn: its next request ends the wait as it comes
    s_exchange (fx, dealer, 2);
    arb_wire_next_turn (fx->wire);
    s_send_ping (dealer, 3);
    assert_true (s_await_ms (fx, 5000000, &rc) < 2500);
    assert_int_equal (rc, 1);
    s_sent_ping_taken (fx, 3);
    //  answered two turns ago: no longer waited for
    s_exchange (fx, dealer, 4);
    arb_wire_next_turn (fx->wire);
    arb_wire_next_turn (fx->wire);
    assert_true (s_await_ms (fx, 2000000, &rc) < 1000);
    assert_int_equal (rc, 0);
    s_ping_only (fx, dealer, 5);
    //  silent through a whole wait: the wait takes its budget
    s_exchange (fx, dealer, 6);
    int64_t waited = s_await_ms (fx, 100000, &rc);
    assert_int_equal (rc, 0);
    assert_true (waited >= 90);
    //  so it is not waited for in the next turn
    s_ping_only (fx, dealer, 7);
    s_exchange (fx, dealer, 8);
    arb_wire_next_turn (fx->wire);
    assert_true (s_await_ms (fx, 2000000, &rc) < 1000);
    assert_int_equal (rc, 0);
    //  but again in the one after
    s_ping_only (fx, dealer, 9);
    arb_wire_next_turn (fx->wire);
    s_exchange (fx, dealer, 10);
    s_send_ping (dealer, 11);
    assert_true (s_await_ms (fx, 5000000, &rc) < 2500);
    assert_int_equal (rc, 1);
    s_sent_ping_taken (fx, 11);
    zsock_destroy (&dealer);
}

//  A worker given a task, or a RESULT_OK, owes the turn nothing: its
//  RESULT comes when the task has run, and a turn waiting for it would
//  hold back the replies it owes others. Even with a request already on
//  its way, the wait does not look for it (the turn's next read does).
static void
test_await_leaves_workers_alone (void **state)
{
    s_fx_t *fx = (s_fx_t *) *state;
    zsock_t *dealer = s_dealer (fx, "worker");
    arb_msg_type_t types[] = {ARB_MSG_DISPATCH, ARB_MSG_RESULT_OK};
    uint32_t reqid = 1;
    for (size_t i = 0; i < 2; i++) {
        s_exchange_as (fx, dealer, reqid++, types[i]);
        s_send_ping (dealer, reqid);
        zclock_sleep (50);  //  in the kernel's buffers before the wait
        int rc;
        assert_true (s_await_ms (fx, 2000000, &rc) < 1000);
        assert_int_equal (rc, 0);
        s_sent_ping_taken (fx, reqid++);
        arb_wire_next_turn (fx->wire);
    }
    //  a client given its reply is waited for, as above
    s_exchange (fx, dealer, reqid++);
    s_send_ping (dealer, reqid);
    int rc;
    assert_true (s_await_ms (fx, 5000000, &rc) < 2500);
    assert_int_equal (rc, 1);
    s_sent_ping_taken (fx, reqid);
    zsock_destroy (&dealer);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_greeting),
        cmocka_unit_test (test_frames),
        cmocka_unit_test (test_ready_and_properties),
        cmocka_unit_test_setup_teardown (test_dealer_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_made_ids_and_no_such_peer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_handover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_message_that_does_not_arrive_in_time_closes,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_first_bytes_of_a_message_are_heard, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_ping_gets_pong_and_split_frames_gather, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_peers_are_closed_alone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_handover_keeps_what_the_old_connection_sent, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_write_keeps_what_the_peer_sent, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_output_left_at_destroy_goes_out, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_output_to_a_peer_that_does_not_read_is_bounded,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_await_leaves_workers_alone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_await_waits_for_owed_answers_only, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
