/*  test_kestrel_conn.c — one Kestrel connection over a socketpair: lines
    cut anywhere, pipelined sets answered out of order leave in order, a
    refused storage command's block is skipped (one too long to skip
    closes), a bad data chunk closes, other commands wait for the answers
    before them, a client that does not read stops being read, and one
    that half-closes gets the answers to every whole command it sent
    before the end.
*/

#include "arb_kestrel_conn.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    arb_reactor_t *reactor;
    arb_kestrel_conn_t *conn;
    int peer;
    arb_stream_io_t io;
    int commands;  //  handed over
    int closed;
    uint64_t sets[16];  //  slots of sets not answered yet
    int set_count;
    char items[16][16];  //  their items
    bool hold_sets;      //  answer sets later, not at once
    size_t answer_size;  //  version: answer this many bytes
} s_test_t;

static void
s_command (void *arg,
           arb_kestrel_conn_t *conn,
           const arb_kestrel_cmd_t *cmd,
           zframe_t **item_p,
           uint64_t slot)
{
    s_test_t *test = (s_test_t *) arg;
    test->commands++;
    if (cmd->verb == ARB_KESTREL_SET) {
        snprintf (test->items[test->set_count % 16], 16, "%.*s", (int) zframe_size (*item_p),
                  (char *) zframe_data (*item_p));
        if (test->hold_sets)
            test->sets[test->set_count++ % 16] = slot;
        else
            arb_kestrel_conn_answer (conn, slot, "STORED\r\n", 8, false);
    }
    else if (cmd->verb == ARB_KESTREL_VERSION && test->answer_size) {
        char *text = (char *) malloc (test->answer_size);
        memset (text, 'v', test->answer_size);
        arb_kestrel_conn_answer (conn, slot, text, test->answer_size, false);
        free (text);
    }
    else if (cmd->verb == ARB_KESTREL_QUIT)
        arb_kestrel_conn_answer (conn, slot, NULL, 0, true);
    else
        arb_kestrel_conn_answerf (conn, slot, "OK %d", (int) cmd->verb);
}

static void
s_closed (void *arg, arb_kestrel_conn_t *conn)
{
    (void) conn;
    ((s_test_t *) arg)->closed++;
}

static void
s_stop (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    (void) arg;
    arb_reactor_stop (reactor);
}

//  Runs the loop for ms.
static void
s_run (s_test_t *test, int ms)
{
    arb_timer_t timer = {0};
    arb_reactor_arm (test->reactor, &timer, (uint64_t) ms, s_stop, NULL);
    arb_reactor_run (test->reactor);
}

static s_test_t *
s_setup (size_t max_item)
{
    s_test_t *test = (s_test_t *) calloc (1, sizeof (s_test_t));
    int fds[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), 0);
    fcntl (fds[0], F_SETFL, O_NONBLOCK);
    fcntl (fds[1], F_SETFL, O_NONBLOCK);
    test->reactor = arb_reactor_new ();
    test->peer = fds[1];
    arb_kestrel_conn_handler_t handler = {s_command, s_closed, NULL};
    test->conn =
        arb_kestrel_conn_new (test->reactor, fds[0], max_item, 0, 0, &test->io, &handler, test);
    assert_non_null (test->conn);
    return test;
}

static void
s_teardown (s_test_t *test)
{
    if (!test->closed)
        arb_kestrel_conn_close (test->conn);
    arb_reactor_destroy (&test->reactor);
    close (test->peer);
    free (test);
}

static void
s_send (s_test_t *test, const char *text)
{
    assert_int_equal (send (test->peer, text, strlen (text), 0), (ssize_t) strlen (text));
}

//  What the peer has received (up to size - 1 bytes), as a string.
static char *
s_received (s_test_t *test, char *buf, size_t size)
{
    ssize_t n = recv (test->peer, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

//  The connection closed its side after its last answer: the peer reads
//  the end of the stream; it closes its own side, and the connection's
//  socket closes too (before that, what the peer sends is dropped).
static void
s_peer_sees_the_end (s_test_t *test)
{
    char byte;
    assert_int_equal (recv (test->peer, &byte, 1, MSG_DONTWAIT), 0);
    assert_int_equal (test->closed, 0);
    s_send (test, "version\r\n");
    assert_int_equal (shutdown (test->peer, SHUT_WR), 0);
    s_run (test, 10);
    assert_int_equal (test->closed, 1);
}

static void
test_cut_lines_and_order (void **state)
{
    (void) state;
    s_test_t *test = s_setup (1024);
    test->hold_sets = true;
    const char *input = "set q 0 0 3\r\none\r\nset q 0 0 3\r\ntwo\r\nversion\r\n";
    for (const char *p = input; *p; p++) {
        char one[2] = {*p, 0};
        s_send (test, one);
        s_run (test, 2);
    }
    //  two sets in flight; version waits for them
    assert_int_equal (test->commands, 2);
    assert_string_equal (test->items[0], "one");
    assert_string_equal (test->items[1], "two");
    char buf[256];
    //  the second answered first: nothing leaves before the first
    arb_kestrel_conn_answer (test->conn, test->sets[1], "STORED\r\n", 8, false);
    s_run (test, 5);
    assert_string_equal (s_received (test, buf, sizeof (buf)), "");
    arb_kestrel_conn_answer (test->conn, test->sets[0], "NOT_STORED\r\n", 12, false);
    s_run (test, 5);
    assert_int_equal (test->commands, 3);
    assert_string_equal (s_received (test, buf, sizeof (buf)), "NOT_STORED\r\nSTORED\r\nOK 7\r\n");
    s_teardown (test);
}

static void
test_refusals (void **state)
{
    (void) state;
    s_test_t *test = s_setup (4);
    //  too large: refused and skipped; a bad queue name: refused and
    //  skipped; noreply: refused in silence; then the stream goes on
    s_send (test, "set q 0 0 5\r\nhello\r\nset a~b 0 0 2\r\nhi\r\n"
                  "set a.b 0 0 1 noreply\r\nx\r\nset q 0 0 2\r\nok\r\n");
    s_run (test, 10);
    char buf[512];
    s_received (test, buf, sizeof (buf));
    assert_int_equal (test->commands, 1);
    assert_string_equal (test->items[0], "ok");
    assert_non_null (strstr (buf, "CLIENT_ERROR item of 5 bytes"));
    assert_non_null (strstr (buf, "CLIENT_ERROR queue name has '~'"));
    assert_non_null (strstr (buf, "STORED\r\n"));
    assert_null (strstr (buf, "'.'"));
    assert_int_equal (test->closed, 0);
    //  a block longer than announced: closed
    s_send (test, "set q 0 0 2\r\nlonger\r\n");
    s_run (test, 10);
    s_received (test, buf, sizeof (buf));
    assert_string_equal (buf, "CLIENT_ERROR bad data chunk\r\n");
    s_peer_sees_the_end (test);
    assert_int_equal (test->commands, 1);
    s_teardown (test);
    //  a block longer than any skip: refused, closed, what follows not run
    const char *huge[] = {"set q 0 0 4000000000\r\nversion\r\n",
                          "set a~b 0 0 16777217 noreply\r\nversion\r\n"};
    for (size_t i = 0; i < sizeof (huge) / sizeof (huge[0]); i++) {
        test = s_setup (4);
        s_send (test, huge[i]);
        s_run (test, 10);
        s_received (test, buf, sizeof (buf));
        assert_non_null (
            strstr (buf, "a data block over 16777216 bytes is not skipped: closing\r\n"));
        s_peer_sees_the_end (test);
        assert_int_equal (test->commands, 0);
        s_teardown (test);
    }
}

static void
test_quit_and_unknown (void **state)
{
    (void) state;
    s_test_t *test = s_setup (16);
    s_send (test, "stats\r\nquit\r\nversion\r\n");
    s_run (test, 10);
    char buf[256];
    assert_string_equal (s_received (test, buf, sizeof (buf)), "OK 6\r\n");
    s_peer_sees_the_end (test);
    assert_int_equal (test->commands, 2);
    s_teardown (test);
    test = s_setup (16);
    s_send (test, "frob\r\nversion\r\n");
    s_run (test, 10);
    assert_string_equal (s_received (test, buf, sizeof (buf)), "CLIENT_ERROR unknown command\r\n");
    s_peer_sees_the_end (test);
    assert_int_equal (test->commands, 0);
    s_teardown (test);
}

static void
test_a_client_that_does_not_read (void **state)
{
    (void) state;
    s_test_t *test = s_setup (16);
    test->answer_size = 4096;
    //  the peer sends as long as the connection reads, and never reads
    size_t sent = 0;
    for (int round = 0; round < 200; round++) {
        ssize_t n = send (test->peer, "version\r\n", 9, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t) n;
        s_run (test, 1);
    }
    //  what it answered is bounded by its high-water mark and the
    //  socket's buffers, not by what was sent
    int answered = test->commands;
    for (int round = 0; round < 500; round++) {
        ssize_t n = send (test->peer, "version\r\n", 9, MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t) n;
        s_run (test, 1);
    }
    assert_true (test->commands - answered <= 16);
    assert_true (test->commands < (int) (sent / 9));
    //  reading frees it again
    char buf[65536];
    int before = test->commands;
    for (int round = 0; round < 200; round++) {
        ssize_t n = recv (test->peer, buf, sizeof (buf), MSG_DONTWAIT);
        (void) n;
        s_run (test, 1);
    }
    assert_true (test->commands > before);
    assert_int_equal (test->closed, 0);
    s_teardown (test);
}

//  What the peer reads up to the end of the stream, which must come
//  within ms of the loop.
static char *
s_received_to_the_end (s_test_t *test, char *buf, size_t size, int ms)
{
    size_t got = 0;
    for (int round = 0; round < ms; round++) {
        s_run (test, 1);
        ssize_t n = recv (test->peer, buf + got, size - 1 - got, MSG_DONTWAIT);
        if (n == 0) {
            buf[got] = 0;
            return buf;
        }
        if (n > 0)
            got += (size_t) n;
    }
    fail_msg ("no end of the stream; had %.*s", (int) got, buf);
    return NULL;
}

static void
test_half_close_answers_then_closes (void **state)
{
    (void) state;
    s_test_t *test = s_setup (16);
    test->hold_sets = true;
    //  two sets in flight, a command behind them, a partial one, the end
    s_send (test, "set q 0 0 3\r\none\r\nset q 0 0 3\r\ntwo\r\nversion\r\nset q 0 0 3\r\nth");
    assert_int_equal (shutdown (test->peer, SHUT_WR), 0);
    s_run (test, 10);
    assert_int_equal (test->commands, 2);
    assert_int_equal (test->closed, 0);  //  answers are owed
    arb_kestrel_conn_answer (test->conn, test->sets[1], "STORED\r\n", 8, false);
    s_run (test, 5);
    assert_int_equal (test->closed, 0);
    arb_kestrel_conn_answer (test->conn, test->sets[0], "NOT_STORED\r\n", 12, false);
    char buf[256];
    //  version's turn came after them; the partial set is dropped
    assert_string_equal (s_received_to_the_end (test, buf, sizeof (buf), 1000),
                         "NOT_STORED\r\nSTORED\r\nOK 7\r\n");
    assert_int_equal (test->commands, 3);
    s_run (test, 10);
    assert_int_equal (test->closed, 1);
    s_teardown (test);
    //  nothing owed: the end at once
    test = s_setup (16);
    s_send (test, "version\r\n");
    assert_int_equal (shutdown (test->peer, SHUT_WR), 0);
    assert_string_equal (s_received_to_the_end (test, buf, sizeof (buf), 1000), "OK 7\r\n");
    s_run (test, 10);
    assert_int_equal (test->closed, 1);
    s_teardown (test);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_cut_lines_and_order),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_quit_and_unknown),
        cmocka_unit_test (test_a_client_that_does_not_read),
        cmocka_unit_test (test_half_close_answers_then_closes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
