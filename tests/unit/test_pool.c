/*  test_pool.c — a light worker's threads (arb_pool): jobs run on them
    and come back as notes; staged items come back as notes while the job
    runs; a job taken after its start-by time is not run. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "arb_pool.h"

#include <poll.h>
#include <stdatomic.h>

typedef struct {
    int value;        //  what the job returns
    atomic_int runs;  //  times it ran
    bool emit;        //  stages an item while it runs
    arb_pool_t *pool;
} s_job_t;

static int
s_run (void *job, void *arg)
{
    (void) arg;
    s_job_t *j = (s_job_t *) job;
    atomic_fetch_add (&j->runs, 1);
    if (j->emit) {
        arb_msg_t *msg = arb_msg_new (ARB_MSG_EMIT, 0);
        arb_pool_note_emits (j->pool, j, &msg);
        assert_null (msg);
    }
    return j->value;
}

//  Takes notes until count have come (5 s at most), into notes.
static size_t
s_collect (arb_pool_t *pool, arb_pool_note_t *notes, size_t count)
{
    arb_pool_note_t *taken = NULL;
    size_t cap = 0;
    size_t got = 0;
    for (int64_t end = zclock_mono () + 5000; got < count && zclock_mono () < end;) {
        struct pollfd item = {arb_pool_notify_fd (pool), POLLIN, 0};
        if (poll (&item, 1, 100) <= 0)
            continue;
        size_t n = arb_pool_take_notes (pool, &taken, &cap);
        for (size_t i = 0; i < n && got < count; i++)
            notes[got++] = taken[i];
    }
    free (taken);
    return got;
}

static void
test_jobs_run_and_come_back_as_notes (void **state)
{
    (void) state;
    s_job_t jobs[3] = {{.value = 0}, {.value = -1}, {.value = 7}};
    arb_pool_t *pool = arb_pool_new (3, s_run, NULL);
    assert_true (arb_pool_is_ready (pool));
    void *queued[3] = {&jobs[0], &jobs[1], &jobs[2]};
    arb_pool_push (pool, queued, 3, zclock_mono () + 60000);
    arb_pool_note_t notes[3];
    assert_int_equal (s_collect (pool, notes, 3), 3);
    int seen = 0;
    for (size_t i = 0; i < 3; i++) {
        s_job_t *job = (s_job_t *) notes[i].job;
        assert_false (notes[i].late);
        assert_null (notes[i].emits);
        assert_int_equal (notes[i].rc, job->value);
        seen |= 1 << (job - jobs);
    }
    assert_int_equal (seen, 7);
    for (int i = 0; i < 3; i++)
        assert_int_equal (atomic_load (&jobs[i].runs), 1);
    arb_pool_destroy (&pool, false);
    assert_null (pool);
}

static void
test_staged_items_come_before_the_end (void **state)
{
    (void) state;
    arb_pool_t *pool = arb_pool_new (1, s_run, NULL);
    s_job_t job = {.value = 0, .emit = true, .pool = pool};
    void *queued[1] = {&job};
    arb_pool_push (pool, queued, 1, zclock_mono () + 60000);
    arb_pool_note_t notes[2];
    assert_int_equal (s_collect (pool, notes, 2), 2);
    assert_ptr_equal (notes[0].job, &job);
    assert_non_null (notes[0].emits);
    assert_int_equal (arb_msg_type (notes[0].emits), ARB_MSG_EMIT);
    arb_msg_destroy (&notes[0].emits);
    assert_ptr_equal (notes[1].job, &job);
    assert_null (notes[1].emits);
    assert_false (notes[1].late);
    arb_pool_destroy (&pool, false);
}

//  A job a thread takes after its start-by time (the process was stopped
//  between the push and the thread) comes back late, not run; the next
//  one, in time, runs.
static void
test_a_late_job_is_not_run (void **state)
{
    (void) state;
    s_job_t late = {.value = 0};
    s_job_t on_time = {.value = 3};
    arb_pool_t *pool = arb_pool_new (2, s_run, NULL);
    void *queued[1] = {&late};
    arb_pool_push (pool, queued, 1, zclock_mono () - 1);
    arb_pool_note_t notes[1];
    assert_int_equal (s_collect (pool, notes, 1), 1);
    assert_ptr_equal (notes[0].job, &late);
    assert_true (notes[0].late);
    assert_null (notes[0].emits);
    assert_int_equal (atomic_load (&late.runs), 0);
    queued[0] = &on_time;
    arb_pool_push (pool, queued, 1, zclock_mono () + 60000);
    assert_int_equal (s_collect (pool, notes, 1), 1);
    assert_false (notes[0].late);
    assert_int_equal (notes[0].rc, 3);
    assert_int_equal (atomic_load (&on_time.runs), 1);
    arb_pool_destroy (&pool, false);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_jobs_run_and_come_back_as_notes),
        cmocka_unit_test (test_staged_items_come_before_the_end),
        cmocka_unit_test (test_a_late_job_is_not_run),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
