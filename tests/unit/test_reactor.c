/*  test_reactor.c — the gateway's event loop: timers in order, moved and
    disarmed; descriptors that become readable and writable; a descriptor
    removed by an earlier handler of the same batch gets no event; the
    peer's end of its side is told only to a watcher that asks, a hang-up
    to any; the prepare hooks bound the sleep and can stop the loop.
*/

#include "arb_reactor.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    int fired[8];
    int count;
} s_log_t;

static s_log_t s_log_of;

static void
s_note (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    s_log_t *log = &s_log_of;
    log->fired[log->count++] = (int) (intptr_t) arg;
    if (log->count == 3)
        arb_reactor_stop (reactor);
}

static void
test_timers_fire_in_order (void **state)
{
    (void) state;
    memset (&s_log_of, 0, sizeof (s_log_of));
    arb_reactor_t *reactor = arb_reactor_new ();
    arb_timer_t a = {0}, b = {0}, c = {0}, gone = {0};
    //  Read before arming: a due time counts from its arm, and the clock's
    //  millisecond may turn between the arm and a later reading.
    uint64_t start = (uint64_t) zclock_mono ();
    arb_reactor_arm (reactor, &a, 30, s_note, (void *) 1);
    arb_reactor_arm (reactor, &b, 10, s_note, (void *) 2);
    arb_reactor_arm (reactor, &c, 50, s_note, (void *) 3);
    arb_reactor_arm (reactor, &gone, 5, s_note, (void *) 9);
    arb_reactor_disarm (reactor, &gone);
    arb_reactor_arm (reactor, &b, 40, s_note, (void *) 2);  //  moved after a
    assert_int_equal (arb_reactor_run (reactor), 0);
    assert_true ((uint64_t) zclock_mono () - start >= 50);
    assert_int_equal (s_log_of.count, 3);
    assert_int_equal (s_log_of.fired[0], 1);
    assert_int_equal (s_log_of.fired[1], 2);
    assert_int_equal (s_log_of.fired[2], 3);
    assert_false (a.armed || b.armed || c.armed || gone.armed);
    arb_reactor_destroy (&reactor);
}

typedef struct {
    int pipes[2][2];  //  two pipes: [i][0] read end
    int events;       //  handler calls
    bool wrote;
} s_io_state_t;

//  Reads pipe 0 and removes pipe 1, whose event may be in the same batch.
static void
s_on_read (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    s_io_state_t *io = (s_io_state_t *) arg;
    assert_true (events & ARB_REACTOR_READ);
    char byte;
    assert_int_equal (read (fd, &byte, 1), 1);
    io->events++;
    int other = fd == io->pipes[0][0] ? io->pipes[1][0] : io->pipes[0][0];
    arb_reactor_remove_fd (reactor, other);
    arb_reactor_stop (reactor);
}

static void
test_removed_descriptor_gets_no_event (void **state)
{
    (void) state;
    s_io_state_t io = {0};
    assert_int_equal (pipe (io.pipes[0]), 0);
    assert_int_equal (pipe (io.pipes[1]), 0);
    arb_reactor_t *reactor = arb_reactor_new ();
    assert_int_equal (
        arb_reactor_add_fd (reactor, io.pipes[0][0], ARB_REACTOR_READ, s_on_read, &io), 0);
    assert_int_equal (
        arb_reactor_add_fd (reactor, io.pipes[1][0], ARB_REACTOR_READ, s_on_read, &io), 0);
    //  both readable before the turn: one batch holds both events
    assert_int_equal (write (io.pipes[0][1], "x", 1), 1);
    assert_int_equal (write (io.pipes[1][1], "y", 1), 1);
    assert_int_equal (arb_reactor_run (reactor), 0);
    assert_int_equal (io.events, 1);
    arb_reactor_remove_fd (reactor, io.pipes[0][0]);
    arb_reactor_remove_fd (reactor, io.pipes[1][0]);
    arb_reactor_destroy (&reactor);
    for (int i = 0; i < 2; i++) {
        close (io.pipes[i][0]);
        close (io.pipes[i][1]);
    }
}

static void
s_on_write (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    s_io_state_t *io = (s_io_state_t *) arg;
    if (events & ARB_REACTOR_WRITE) {
        assert_int_equal (write (fd, "z", 1), 1);
        io->wrote = true;
        //  now wait for the byte to come back on the read end
        assert_int_equal (arb_reactor_watch_fd (reactor, fd, 0), 0);
    }
}

static void
s_on_echo (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    s_io_state_t *io = (s_io_state_t *) arg;
    (void) events;
    char byte;
    assert_int_equal (read (fd, &byte, 1), 1);
    assert_int_equal (byte, 'z');
    io->events++;
    arb_reactor_stop (reactor);
}

static void
test_write_interest (void **state)
{
    (void) state;
    s_io_state_t io = {0};
    assert_int_equal (pipe (io.pipes[0]), 0);
    arb_reactor_t *reactor = arb_reactor_new ();
    assert_int_equal (
        arb_reactor_add_fd (reactor, io.pipes[0][1], ARB_REACTOR_WRITE, s_on_write, &io), 0);
    assert_int_equal (
        arb_reactor_add_fd (reactor, io.pipes[0][0], ARB_REACTOR_READ, s_on_echo, &io), 0);
    assert_int_equal (arb_reactor_run (reactor), 0);
    assert_true (io.wrote);
    assert_int_equal (io.events, 1);
    arb_reactor_destroy (&reactor);
    close (io.pipes[0][0]);
    close (io.pipes[0][1]);
}

typedef struct {
    int turns;
} s_hook_state_t;

//  Asks for an immediate turn three times, then stops the loop.
static int
s_prepare (arb_reactor_t *reactor, void *arg)
{
    s_hook_state_t *hook = (s_hook_state_t *) arg;
    if (++hook->turns == 3)
        arb_reactor_stop (reactor);
    return 0;
}

static void
test_prepare_hook_runs_every_turn (void **state)
{
    (void) state;
    s_hook_state_t hook = {0};
    arb_reactor_t *reactor = arb_reactor_new ();
    assert_int_equal (arb_reactor_add_prepare (reactor, s_prepare, &hook), 0);
    uint64_t start = (uint64_t) zclock_mono ();
    assert_int_equal (arb_reactor_run (reactor), 0);
    assert_int_equal (hook.turns, 3);
    //  it asked not to sleep: nowhere near a default poll wait
    assert_true ((uint64_t) zclock_mono () - start < 1000);
    arb_reactor_destroy (&reactor);
}

typedef struct {
    int calls;
    unsigned events;  //  every event seen, or-ed
} s_seen_t;

static void
s_on_seen (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) fd;
    s_seen_t *seen = (s_seen_t *) arg;
    seen->calls++;
    seen->events |= events;
}

static void
s_on_stop (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    (void) arg;
    arb_reactor_stop (reactor);
}

//  Runs the loop for ms; returns what fd's watcher saw meanwhile.
static s_seen_t
s_watch_for (arb_reactor_t *reactor, s_seen_t *seen, int ms)
{
    *seen = (s_seen_t){0};
    arb_timer_t stop = {0};
    arb_reactor_arm (reactor, &stop, (uint64_t) ms, s_on_stop, NULL);
    assert_int_equal (arb_reactor_run (reactor), 0);
    return *seen;
}

static void
test_half_close_told_only_when_asked (void **state)
{
    (void) state;
    int fds[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), 0);
    arb_reactor_t *reactor = arb_reactor_new ();
    s_seen_t seen;
    assert_int_equal (arb_reactor_add_fd (reactor, fds[0], ARB_REACTOR_RDHUP, s_on_seen, &seen), 0);
    //  the peer ends its side: told as RDHUP, not as a hang-up
    assert_int_equal (shutdown (fds[1], SHUT_WR), 0);
    s_seen_t got = s_watch_for (reactor, &seen, 20);
    assert_true (got.calls > 0);
    assert_int_equal (got.events, ARB_REACTOR_RDHUP);
    //  not asked: not told (a watcher that reads finds the end itself)
    assert_int_equal (arb_reactor_watch_fd (reactor, fds[0], 0), 0);
    got = s_watch_for (reactor, &seen, 20);
    assert_int_equal (got.calls, 0);
    //  the peer gone both ways: a hang-up, asked or not
    close (fds[1]);
    got = s_watch_for (reactor, &seen, 20);
    assert_true (got.calls > 0);
    assert_true (got.events & ARB_REACTOR_HUP);
    assert_false (got.events & ARB_REACTOR_RDHUP);
    arb_reactor_remove_fd (reactor, fds[0]);
    arb_reactor_destroy (&reactor);
    close (fds[0]);
}

//  A ZeroMQ socket beside a descriptor. With a socket registered the loop
//  waits in zmq_poll, and a byte and a message that come while it waits
//  (a timer's, 20 ms in) both wake it; with the socket removed it waits in
//  epoll alone, which a byte wakes (the message sent meanwhile is nobody's
//  then); a socket a handler adds is watched from the next turn.
typedef struct {
    zsock_t *in, *out;  //  the watched end, and the test's
    int fd[2];          //  a pipe: the loop watches fd[0]
    int reads, messages;
    bool adds;  //  the descriptor's handler adds in as a socket
} s_both_t;

static void
s_on_message (arb_reactor_t *reactor, zsock_t *sock, void *arg)
{
    s_both_t *both = (s_both_t *) arg;
    char *text = zstr_recv (sock);
    assert_string_equal (text, "m");
    zstr_free (&text);
    both->messages++;
    if (both->reads)
        arb_reactor_stop (reactor);
}

static void
s_on_byte (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) events;
    s_both_t *both = (s_both_t *) arg;
    char byte;
    assert_int_equal (read (fd, &byte, 1), 1);
    both->reads++;
    if (both->adds)
        assert_int_equal (arb_reactor_add_sock (reactor, both->in, s_on_message, both), 0);
    else if (both->messages || byte == 'c')
        arb_reactor_stop (reactor);
}

//  A timer's: the byte, the message, or both, while the loop waits.
static void
s_send_byte (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_both_t *both = (s_both_t *) arg;
    assert_int_equal (write (both->fd[1], both->reads ? "c" : "b", 1), 1);
}

static void
s_send_message (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    assert_int_equal (zstr_send (((s_both_t *) arg)->out, "m"), 0);
}

//  Runs the loop with a byte and/or a message sent 20 ms in, at most 5 s.
static void
s_run_with (arb_reactor_t *reactor, s_both_t *both, bool byte, bool message)
{
    arb_timer_t send_byte = {0}, send_message = {0}, guard = {0};
    if (byte)
        arb_reactor_arm (reactor, &send_byte, 20, s_send_byte, both);
    if (message)
        arb_reactor_arm (reactor, &send_message, 20, s_send_message, both);
    arb_reactor_arm (reactor, &guard, 5000, s_on_stop, NULL);  //  a loop that misses one ends
    assert_int_equal (arb_reactor_run (reactor), 0);
    arb_reactor_disarm (reactor, &send_byte);
    arb_reactor_disarm (reactor, &send_message);
    arb_reactor_disarm (reactor, &guard);
}

static void
test_sockets_beside_descriptors (void **state)
{
    (void) state;
    s_both_t both = {0};
    both.in = zsock_new_pair ("@inproc://test-reactor");
    both.out = zsock_new_pair (">inproc://test-reactor");
    assert_non_null (both.in);
    assert_non_null (both.out);
    assert_int_equal (pipe (both.fd), 0);
    arb_reactor_t *reactor = arb_reactor_new ();
    assert_int_equal (arb_reactor_add_sock (reactor, both.in, s_on_message, &both), 0);
    assert_int_equal (arb_reactor_add_fd (reactor, both.fd[0], ARB_REACTOR_READ, s_on_byte, &both),
                      0);
    s_run_with (reactor, &both, true, true);
    assert_int_equal (both.reads, 1);
    assert_int_equal (both.messages, 1);
    arb_reactor_remove_sock (reactor, both.in);
    s_run_with (reactor, &both, true, true);  //  epoll alone: the byte stops it
    assert_int_equal (both.reads, 2);
    assert_int_equal (both.messages, 1);
    char *text = zstr_recv (both.in);  //  the message nobody watched for
    assert_string_equal (text, "m");
    zstr_free (&text);
    both.adds = true;                         //  the next byte's handler adds the socket, whose
    s_run_with (reactor, &both, true, true);  //  message then stops the loop
    assert_int_equal (both.reads, 3);
    assert_int_equal (both.messages, 2);
    arb_reactor_destroy (&reactor);
    close (both.fd[0]);
    close (both.fd[1]);
    zsock_destroy (&both.out);
    zsock_destroy (&both.in);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_timers_fire_in_order),
        cmocka_unit_test (test_removed_descriptor_gets_no_event),
        cmocka_unit_test (test_write_interest),
        cmocka_unit_test (test_prepare_hook_runs_every_turn),
        cmocka_unit_test (test_half_close_told_only_when_asked),
        cmocka_unit_test (test_sockets_beside_descriptors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
