/*  test_chore.c — a function run on a thread when asked (broker/arb_chore.c):
    one run for each ask made while idle, one more for any asks made while
    a run goes on; a wait returns only when no run is asked or going on;
    the thread's writes are the owner's to read after the wait. */

#include "arb_chore.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    atomic_int entered;   //  runs started
    atomic_bool release;  //  a run may end
    int seen;             //  written by the run, read after a wait
} s_work_t;

static void
s_work (void *arg)
{
    s_work_t *work = (s_work_t *) arg;
    atomic_fetch_add (&work->entered, 1);
    while (!atomic_load (&work->release))
        zclock_sleep (1);
    work->seen++;
}

static void
s_wait_entered (s_work_t *work, int count)
{
    for (int i = 0; i < 5000 && atomic_load (&work->entered) < count; i++)
        zclock_sleep (1);
    assert_int_equal (atomic_load (&work->entered), count);
}

static void
test_asks_make_runs (void **state)
{
    (void) state;
    s_work_t work = {0};
    arb_chore_t *chore = arb_chore_new ("test", s_work, &work);
    assert_non_null (chore);
    assert_true (arb_chore_idle (chore));
    arb_chore_ask (chore);
    s_wait_entered (&work, 1);
    assert_false (arb_chore_idle (chore));
    //  three asks while it runs: one more run
    arb_chore_ask (chore);
    arb_chore_ask (chore);
    arb_chore_ask (chore);
    atomic_store (&work.release, true);
    arb_chore_wait (chore);
    assert_true (arb_chore_idle (chore));
    assert_int_equal (work.seen, 2);
    assert_int_equal (arb_chore_runs (chore), 2);
    //  idle again: an ask, a run
    arb_chore_ask (chore);
    arb_chore_wait (chore);
    assert_int_equal (work.seen, 3);
    arb_chore_destroy (&chore);
    assert_null (chore);
}

static void
test_stops_after_its_run (void **state)
{
    (void) state;
    s_work_t work = {0};
    arb_chore_t *chore = arb_chore_new ("test", s_work, &work);
    arb_chore_ask (chore);
    s_wait_entered (&work, 1);
    arb_chore_ask (chore);  //  never started: the destroy ends first
    atomic_store (&work.release, true);
    arb_chore_destroy (&chore);
    assert_true (work.seen >= 1 && work.seen <= 2);
    //  one never asked stops at once
    chore = arb_chore_new ("test", s_work, &work);
    arb_chore_destroy (&chore);
    assert_null (chore);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_asks_make_runs),
        cmocka_unit_test (test_stops_after_its_run),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
