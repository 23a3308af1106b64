/*  test_dial.c — the link's own ZMTP connection (arb_dial) against real
    ZeroMQ sockets: a libzmq ROUTER on a loopback port stands for the
    broker (the broker's own listener is tested through the link, in
    test_link), so what the dial writes must be ZMTP that libzmq takes,
    and what libzmq writes must come out of the dial whole. Then the
    failures a program must be told of: nothing listening, a peer that is
    not ZMTP, a broker that wants CURVE, a peer that is not a ROUTER.

    Every wait polls until its condition holds or a deadline passes.
*/

#include "arb_dial.h"
#include "arb_gather.h"
#include "arb_zmtp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define S_WAIT_MS 10000  //  deadline of a wait (sanitized builds are slow)

//  A loopback ROUTER on a port of the system's choice; its endpoint.
static zsock_t *
s_router (char *endpoint, size_t size)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert_non_null (router);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    snprintf (endpoint, size, "%s", zsock_endpoint (router));
    return router;
}

//  Lets the dial run once: waits on its descriptor (at most its timeout,
//  and 20 ms), flushes, and takes one message if one came (NULL if not).
static arb_msg_t *
s_turn (arb_dial_t *dial)
{
    int wait = arb_dial_timeout (dial);
    struct pollfd item = {arb_dial_fd (dial), POLLIN, 0};
    poll (&item, 1, wait < 0 || wait > 20 ? 20 : wait);
    arb_dial_flush (dial);
    arb_msg_t *msg = NULL;
    int rc = arb_dial_recv (dial, NULL, &msg);
    if (rc == -1)
        return NULL;
    assert_int_equal (rc, 0);
    return msg;
}

//  Runs the dial until the router has a message; returns it (routing id
//  first).
static zmsg_t *
s_router_gets (arb_dial_t *dial, zsock_t *router)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (zclock_mono () < deadline) {
        arb_msg_t *stray = s_turn (dial);
        assert_null (stray);
        if (zsock_events (router) & ZMQ_POLLIN)
            return zmsg_recv (router);
    }
    fail_msg ("the router got nothing within %d ms", S_WAIT_MS);
    return NULL;
}

//  Runs the dial until a message comes out of it.
static arb_msg_t *
s_dial_gets (arb_dial_t *dial)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (zclock_mono () < deadline) {
        arb_msg_t *msg = s_turn (dial);
        if (msg)
            return msg;
    }
    fail_msg ("the dial got nothing within %d ms", S_WAIT_MS);
    return NULL;
}

//  Runs the dial until its last attempt failed with a reason containing
//  expected.
static void
s_dial_fails (arb_dial_t *dial, const char *expected)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (zclock_mono () < deadline) {
        arb_msg_t *stray = s_turn (dial);
        assert_null (stray);
        const char *failure = arb_dial_failure (dial);
        if (failure && strstr (failure, expected))
            return;
    }
    fail_msg ("no failure with \"%s\" within %d ms (last: %s)", expected, S_WAIT_MS,
              arb_dial_failure (dial) ? arb_dial_failure (dial) : "none");
}

//  A SUBMIT of one task whose payload is size bytes of fill.
static arb_msg_t *
s_submit (uint32_t reqid, size_t size, char fill)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_SUBMIT, reqid);
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *task = (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (*task), 1);
    task->name = "add";
    char *data = (char *) malloc (size);
    memset (data, fill, size);
    task->payload = zframe_new (data, size);
    free (data);
    return msg;
}

//  The one task of a SUBMIT: its payload is size bytes of fill.
static void
s_check_submit (arb_msg_t *msg, uint32_t reqid, size_t size, char fill)
{
    assert_int_equal (arb_msg_type (msg), ARB_MSG_SUBMIT);
    assert_int_equal (arb_msg_reqid (msg), reqid);
    arb_submit_body_t *body = arb_msg_submit (msg);
    assert_int_equal (body->tasks.n, 1);
    zframe_t *payload = body->tasks.v[0].payload;
    assert_int_equal (zframe_size (payload), size);
    const char *data = (const char *) zframe_data (payload);
    assert_true (data[0] == fill && data[size - 1] == fill);
}

static void
test_endpoints (void **state)
{
    (void) state;
    //  what only libzmq knows: the link keeps a DEALER for these
    const char *theirs[] = {"ipc:///tmp/x",          "inproc://x",
                            "tcp://*:5555",          "tcp://eth0;127.0.0.1:5555",
                            "tcp://127.0.0.1",       "tcp://127.0.0.1:0",
                            "tcp://127.0.0.1:70000", "tcp://:5555",
                            "tcp://127.0.0.1:55x",   NULL};
    for (int i = 0; theirs[i]; i++) {
        arb_dial_t *dial = arb_dial_new (theirs[i]);
        if (dial)
            fail_msg ("%s: taken", theirs[i]);
    }
    const char *ours[] = {"tcp://127.0.0.1:1", "tcp://[::1]:1", "tcp://localhost:1", NULL};
    for (int i = 0; ours[i]; i++) {
        arb_dial_t *dial = arb_dial_new (ours[i]);
        assert_non_null (dial);
        assert_false (arb_dial_is_open (dial));
        arb_dial_destroy (&dial, 0);
        assert_null (dial);
    }
}

//  Both ways with a libzmq ROUTER: a message sent before the connection
//  is up goes once it is, under a routing id of our making; payloads of a
//  megabyte cross in several reads and writes each way.
static void
test_talks_to_a_zeromq_router (void **state)
{
    (void) state;
    char endpoint[64];
    zsock_t *router = s_router (endpoint, sizeof (endpoint));
    //  by name: localhost is the IPv4 loopback the router is bound to, as
    //  a DEALER would take it (not ::1, which many systems list first)
    char by_name[80];
    snprintf (by_name, sizeof (by_name), "tcp://localhost:%s", strrchr (endpoint, ':') + 1);
    arb_dial_t *dial = arb_dial_new (by_name);
    assert_non_null (dial);
    arb_msg_t *msg = s_submit (7, 10, 'a');
    assert_int_equal (arb_dial_send (dial, &msg), 0);
    assert_null (msg);

    zmsg_t *got = s_router_gets (dial, router);
    assert_true (arb_dial_is_open (dial));
    assert_null (arb_dial_failure (dial));
    zframe_t *id = zmsg_first (got);
    assert_int_equal (zframe_size (id), 16);
    assert_int_equal (zframe_data (id)[0], 'c');
    zframe_t *first_id = zframe_dup (id);
    arb_msg_t *back = NULL;
    assert_int_equal (arb_msg_decode (&got, true, NULL, &back), 0);
    s_check_submit (back, 7, 10, 'a');
    arb_msg_destroy (&back);

    size_t big = 1u << 20;
    msg = s_submit (8, big, 'b');
    assert_int_equal (arb_dial_send (dial, &msg), 0);
    got = s_router_gets (dial, router);
    assert_int_equal (arb_msg_decode (&got, true, NULL, &back), 0);
    s_check_submit (back, 8, big, 'b');
    arb_msg_destroy (&back);

    //  the router answers: the dial takes two messages, one a megabyte
    for (uint32_t reqid = 9; reqid <= 10; reqid++) {
        arb_msg_t *reply = s_submit (reqid, reqid == 9 ? 3 : big, 'c');
        arb_msg_set_routing_id (reply, first_id);
        assert_int_equal (arb_msg_send (&reply, router), 0);
    }
    back = s_dial_gets (dial);
    s_check_submit (back, 9, 3, 'c');
    arb_msg_destroy (&back);
    back = s_dial_gets (dial);
    s_check_submit (back, 10, big, 'c');
    assert_null (arb_msg_routing_id (back));
    arb_msg_destroy (&back);

    zframe_destroy (&first_id);
    arb_dial_destroy (&dial, 0);
    zsock_destroy (&router);
}

//  A broker that goes and comes back on its endpoint: the dial connects
//  again by itself under the same routing id (the broker finds its peer
//  again, as with a DEALER); arb_dial_reconnect takes a new one.
static void
test_connects_again (void **state)
{
    (void) state;
    char endpoint[64];
    zsock_t *router = s_router (endpoint, sizeof (endpoint));
    arb_dial_t *dial = arb_dial_new (endpoint);
    arb_msg_t *msg = s_submit (1, 1, 'a');
    arb_dial_send (dial, &msg);
    zmsg_t *got = s_router_gets (dial, router);
    zframe_t *id = zmsg_pop (got);
    zmsg_destroy (&got);

    zsock_destroy (&router);
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (arb_dial_is_open (dial) && zclock_mono () < deadline)
        assert_null (s_turn (dial));
    assert_false (arb_dial_is_open (dial));
    //  sent while the broker is away: it waits for the next connection
    msg = s_submit (2, 1, 'b');
    assert_int_equal (arb_dial_send (dial, &msg), 0);

    router = zsock_new (ZMQ_ROUTER);
    assert_true (zsock_bind (router, "%s", endpoint) != -1);
    got = s_router_gets (dial, router);
    assert_true (zframe_eq (zmsg_first (got), id));
    arb_msg_t *back = NULL;
    assert_int_equal (arb_msg_decode (&got, true, NULL, &back), 0);
    s_check_submit (back, 2, 1, 'b');
    arb_msg_destroy (&back);

    arb_dial_reconnect (dial);
    msg = s_submit (3, 1, 'c');
    arb_dial_send (dial, &msg);
    got = s_router_gets (dial, router);
    assert_false (zframe_eq (zmsg_first (got), id));
    assert_int_equal (zframe_data (zmsg_first (got))[0], 'c');
    zmsg_destroy (&got);

    zframe_destroy (&id);
    arb_dial_destroy (&dial, 0);
    zsock_destroy (&router);
}

//  A listener of our own that answers each connection with some bytes
//  and closes it.
static const char *
s_listener_endpoint (int fd)
{
    static char endpoint[64];  //  a test's, one at a time
    struct sockaddr_in addr;
    socklen_t len = sizeof (addr);
    getsockname (fd, (struct sockaddr *) &addr, &len);
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", ntohs (addr.sin_port));
    return endpoint;
}

static int
s_listener (char *endpoint, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert_int_equal (bind (fd, (struct sockaddr *) &addr, sizeof (addr)), 0);
    assert_int_equal (listen (fd, 8), 0);
    socklen_t len = sizeof (addr);
    getsockname (fd, (struct sockaddr *) &addr, &len);
    snprintf (endpoint, size, "tcp://127.0.0.1:%d", ntohs (addr.sin_port));
    return fd;
}

//  Answers a connection waiting on the listener with data, then ends its
//  output (kept open, so that what the dial writes is no reset): its fd,
//  or -1 if none waited.
static int
s_answer (int listener, const void *data, size_t size)
{
    struct pollfd item = {listener, POLLIN, 0};
    if (poll (&item, 1, 0) != 1)
        return -1;
    int fd = accept (listener, NULL, NULL);
    ssize_t n = write (fd, data, size);
    (void) n;
    shutdown (fd, SHUT_WR);
    return fd;
}

//  Runs the dial while a listener answers each connection with data,
//  until the dial's failure contains expected.
static void
s_answered_fails (int listener, const void *data, size_t size, const char *expected)
{
    arb_dial_t *dial = arb_dial_new (s_listener_endpoint (listener));
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    const char *failure = NULL;
    int fds[256];
    size_t count = 0;
    while (zclock_mono () < deadline
           && !((failure = arb_dial_failure (dial)) && strstr (failure, expected))) {
        int fd = s_answer (listener, data, size);
        if (fd >= 0 && count < 256)
            fds[count++] = fd;
        else if (fd >= 0)
            close (fd);
        assert_null (s_turn (dial));
    }
    while (count)
        close (fds[--count]);
    if (!failure || !strstr (failure, expected))
        fail_msg ("no failure with \"%s\" (last: %s)", expected, failure ? failure : "none");
    arb_dial_destroy (&dial, 0);
}

static void
test_says_why_it_cannot_talk (void **state)
{
    (void) state;
    char endpoint[64];
    //  nothing listening
    int listener = s_listener (endpoint, sizeof (endpoint));
    close (listener);
    arb_dial_t *dial = arb_dial_new (endpoint);
    s_dial_fails (dial, "cannot connect");
    assert_null (arb_dial_refusal (dial));  //  a broker not there may come
    arb_dial_destroy (&dial, 0);

    //  not a ZMTP peer (an HTTP server, say)
    listener = s_listener (endpoint, sizeof (endpoint));
    const char *http = "HTTP/1.1 400 Bad Request\r\n\r\n";
    s_answered_fails (listener, http, strlen (http), "not a ZMTP 3 greeting");

    //  a ZMTP ROUTER whose first frame after the handshake has reserved
    //  flag bits set; then one that closes in the middle of a frame
    uint8_t bytes[256];
    arb_zmtp_greeting (bytes);
    size_t n = ARB_ZMTP_GREETING;
    n += arb_zmtp_ready (bytes + n, sizeof (bytes) - n, "ROUTER");
    size_t open = n;
    bytes[n++] = 0xF0;
    bytes[n++] = 1;
    bytes[n++] = 'x';
    s_answered_fails (listener, bytes, n, "malformed frame");
    //  a frame that says it is 2^63 bytes long: refused before any room
    //  is made for it
    uint8_t huge[] = {ARB_ZMTP_LONG, 0x80, 0, 0, 0, 0, 0, 0, 0};
    memcpy (bytes + open, huge, sizeof (huge));
    s_answered_fails (listener, bytes, open + sizeof (huge), "malformed frame");
    bytes[open] = ARB_ZMTP_MORE;
    bytes[open + 1] = 200;
    s_answered_fails (listener, bytes, n, "the broker closed the connection");
    close (listener);

    //  a broker that wants CURVE
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zcert_t *cert = zcert_new ();
    zsock_set_curve_server (router, 1);
    zcert_apply (cert, router);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    dial = arb_dial_new (zsock_endpoint (router));
    s_dial_fails (dial, "requires CURVE");
    assert_non_null (strstr (arb_dial_refusal (dial), "requires CURVE"));  //  for good
    arb_dial_destroy (&dial, 0);
    zsock_destroy (&router);
    zcert_destroy (&cert);

    //  a ZMTP peer that is not a ROUTER
    zsock_t *pub = zsock_new (ZMQ_PUB);
    assert_true (zsock_bind (pub, "tcp://127.0.0.1:*") > 0);
    dial = arb_dial_new (zsock_endpoint (pub));
    s_dial_fails (dial, "not a broker");
    arb_dial_destroy (&dial, 0);
    zsock_destroy (&pub);
}

//  The first bytes of a message from the broker, read alone, are its life
//  as its later ones are (arb_dial_heard): a big DISPATCH that has only
//  begun to come is not silence.
//  A dial opened on a raw peer of ours: the peer's end in *fd.
static arb_dial_t *
s_open_on_raw_peer (int listener, const char *endpoint, int *fd)
{
    arb_dial_t *dial = arb_dial_new (endpoint);
    *fd = -1;
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (*fd < 0 && zclock_mono () < deadline) {
        assert_null (s_turn (dial));
        struct pollfd item = {listener, POLLIN, 0};
        if (poll (&item, 1, 0) == 1)
            *fd = accept (listener, NULL, NULL);
    }
    assert_true (*fd >= 0);
    uint8_t bytes[256];
    arb_zmtp_greeting (bytes);
    size_t n = ARB_ZMTP_GREETING;
    n += arb_zmtp_ready (bytes + n, sizeof (bytes) - n, "ROUTER");
    assert_int_equal (write (*fd, bytes, n), (ssize_t) n);
    while (!arb_dial_is_open (dial) && zclock_mono () < deadline)
        assert_null (s_turn (dial));
    assert_true (arb_dial_is_open (dial));
    return dial;
}

static void
test_the_first_bytes_of_a_message_are_heard (void **state)
{
    (void) state;
    char endpoint[64];
    int listener = s_listener (endpoint, sizeof (endpoint));
    int fd;
    arb_dial_t *dial = s_open_on_raw_peer (listener, endpoint, &fd);
    assert_int_equal (arb_dial_heard (dial), 0);
    int64_t before = zclock_mono ();
    //  a frame of 200 bytes, 10 of them sent
    uint8_t part[12] = {0, 200};
    assert_int_equal (write (fd, part, sizeof (part)), (ssize_t) sizeof (part));
    for (int i = 0; i < 5; i++)
        assert_null (s_turn (dial));
    assert_true (arb_dial_heard (dial) >= before);
    arb_dial_destroy (&dial, 0);
    close (fd);
    close (listener);
}

//  The raw peer sends one more byte, and the dial takes a few turns.
static void
s_trickle (arb_dial_t *dial, int fd)
{
    assert_int_equal (write (fd, "x", 1), 1);
    for (int i = 0; i < 4; i++)
        assert_null (s_turn (dial));
}

//  A broker that trickles a message, or stops in its middle, is heard
//  while the message has time to come whole, and no more after.
static void
test_a_message_not_whole_in_its_time_is_no_sign_of_life (void **state)
{
    (void) state;
    char endpoint[64];
    int listener = s_listener (endpoint, sizeof (endpoint));
    int fd;
    arb_dial_t *dial = s_open_on_raw_peer (listener, endpoint, &fd);
    arb_dial_set_message_ms (dial, 300);
    int64_t started = zclock_mono ();
    //  a frame of 255 bytes, then a byte of it every 20 ms
    uint8_t part[3] = {0, 255, 'x'};
    assert_int_equal (write (fd, part, sizeof (part)), (ssize_t) sizeof (part));
    int64_t silent_at = 0;
    while (!silent_at && zclock_mono () - started < S_WAIT_MS) {
        s_trickle (dial, fd);
        if (arb_dial_heard (dial) == 0)
            silent_at = zclock_mono ();
        usleep (20 * 1000);
    }
    //  silent once its time had passed (from the first byte seen, after
    //  started), not before
    assert_true (silent_at - started > 300);
    //  and the bytes that still come do not count again
    for (int k = 0; k < 3; k++) {
        s_trickle (dial, fd);
        assert_int_equal (arb_dial_heard (dial), 0);
    }
    arb_dial_destroy (&dial, 0);
    close (fd);
    close (listener);
}

//  The time a message has: the limit, a second more for each whole MiB in.
static void
test_overdue (void **state)
{
    (void) state;
    assert_false (arb_gather_overdue (0, 1000000, 100, 0));  //  no message begun
    assert_false (arb_gather_overdue (1000, 1100, 100, 0));
    assert_true (arb_gather_overdue (1000, 1101, 100, 0));
    assert_false (arb_gather_overdue (1000, 1101, 100, 1u << 20));
    assert_false (arb_gather_overdue (1000, 3100, 100, 2u << 20));
    assert_true (arb_gather_overdue (1000, 3101, 100, (2u << 20) + 5));
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_endpoints),
        cmocka_unit_test (test_talks_to_a_zeromq_router),
        cmocka_unit_test (test_connects_again),
        cmocka_unit_test (test_says_why_it_cannot_talk),
        cmocka_unit_test (test_the_first_bytes_of_a_message_are_heard),
        cmocka_unit_test (test_a_message_not_whole_in_its_time_is_no_sign_of_life),
        cmocka_unit_test (test_overdue),
    };
    return cmocka_run_group_tests_name ("dial", tests, NULL, NULL);
}
