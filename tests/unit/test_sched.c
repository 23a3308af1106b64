/*  test_sched.c — the scheduler alone: priorities, aging, credit, leases,
    liveness, timers and queue limits, with time given by the test. */

#include "arb_sched.h"
#include "arb_heap.h"
#include "arb_taskmap.h"
#include "arb_vec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define NOW  1700000000000ull  //  Unix ms the tests start at
#define MONO 5000ull           //  monotonic ms they start at

//  What the hooks saw.
typedef struct {
    arb_task_t *sent[256];
    arb_session_t *to[256];
    uint32_t delivered[256];  //  what each task's count said as it went (times before)
    size_t count;
    arb_task_t *expired[16];
    size_t expired_count;
    bool refuse;  //  make the dispatch hook fail
} s_log_t;

static int
s_dispatch (void *arg, arb_session_t *session, arb_sub_t *sub, arb_task_t *task)
{
    (void) sub;
    s_log_t *log = (s_log_t *) arg;
    if (log->refuse)
        return -1;
    log->to[log->count] = session;
    log->delivered[log->count] = task->delivered;
    log->sent[log->count++] = task;
    return 0;
}

static void
s_expired (void *arg, arb_task_t *task)
{
    s_log_t *log = (s_log_t *) arg;
    log->expired[log->expired_count++] = task;
}

static arb_sched_t *
s_sched (s_log_t *log, uint64_t aging_ms)
{
    memset (log, 0, sizeof (*log));
    arb_sched_config_t config = {
        .aging_ms = aging_ms, .liveness_ms = 3000, .cache_bytes = 1000, .epoch = 7};
    arb_sched_hooks_t hooks = {s_dispatch, s_expired, NULL, NULL, log};
    return arb_sched_new (&config, &hooks);
}

static arb_task_t *
s_add (arb_sched_t *sched, const char *queue, uint64_t id, int32_t priority, uint64_t now)
{
    arb_task_t *task = arb_sched_new_task (sched, queue, "job");
    task->id = id;
    task->priority = priority;
    task->state = ARB_STATE_READY;
    arb_sched_add (sched, task, now, MONO);
    return task;
}

static arb_session_t *
s_worker (arb_sched_t *sched, const char *id, const char *queue, int32_t credit)
{
    zframe_t *identity = zframe_new (id, strlen (id));
    arb_session_t *session = arb_sched_open_session (sched, identity, MONO);
    zframe_destroy (&identity);
    const char *queues[] = {queue};
    assert_int_equal (arb_sched_credit (sched, session, 0, queues, 1, credit, false), 0);
    return session;
}

//  A worker that runs only the task names given (NULL-terminated).
static arb_session_t *
s_picky_worker (arb_sched_t *sched, const char *id, const char *queue, int32_t credit, ...)
{
    zframe_t *identity = zframe_new (id, strlen (id));
    arb_session_t *session = arb_sched_open_session (sched, identity, MONO);
    zframe_destroy (&identity);
    const char *names[8];
    size_t count = 0;
    va_list args;
    va_start (args, credit);
    const char *name;
    while (count < 8 && (name = va_arg (args, const char *)))
        names[count++] = name;
    va_end (args);
    arb_session_set_handles (session, names, count);
    const char *queues[] = {queue};
    assert_int_equal (arb_sched_credit (sched, session, 0, queues, 1, credit, false), 0);
    return session;
}

static arb_task_t *
s_add_named (arb_sched_t *sched, const char *queue, uint64_t id, const char *name, int32_t priority)
{
    arb_task_t *task = arb_sched_new_task (sched, queue, name);
    task->id = id;
    task->priority = priority;
    task->state = ARB_STATE_READY;
    arb_sched_add (sched, task, NOW, MONO);
    return task;
}

static void
s_give_credit (arb_sched_t *sched, arb_session_t *session, const char *queue, int32_t credit)
{
    const char *queues[] = {queue};
    arb_sched_credit (sched, session, 0, queues, 1, credit, false);
}

//  Finishes everything handed out so far (the task records are freed).
static void
s_finish_sent (arb_sched_t *sched, s_log_t *log)
{
    for (size_t i = 0; i < log->count; i++)
        arb_sched_finish (sched, &log->sent[i], ARB_STATE_SUCCEEDED, NOW);
    log->count = 0;
}

static void
test_priority_then_fifo (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    s_add (sched, "q", 1, 0, NOW);
    s_add (sched, "q", 2, 5, NOW);
    s_add (sched, "q", 3, 0, NOW);
    s_add (sched, "q", 4, -3, NOW);
    s_add (sched, "q", 5, 5, NOW);
    s_worker (sched, "w", "q", 10);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 5);
    uint64_t expect[] = {2, 5, 1, 3, 4};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal (log.sent[i]->id, expect[i]);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);
}

//  Before the turn's commit only what was ready at the last commit goes
//  (arb_sched_dispatch_early): a task made ready since waits for the
//  commit that records it, and so does everything that sorts behind it;
//  the queue stays dirty for the pass after the commit.
static void
test_early_pass_hands_out_committed_tasks_only (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    s_add (sched, "q", 1, 0, NOW);
    s_add (sched, "q", 2, 0, NOW);
    arb_sched_committed (sched);
    s_add (sched, "q", 3, 0, NOW);  //  this turn's
    s_worker (sched, "w", "q", 10);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_int_equal (log.sent[0]->id, 1);
    assert_int_equal (log.sent[1]->id, 2);
    arb_sched_committed (sched);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    assert_int_equal (log.sent[2]->id, 3);
    s_finish_sent (sched, &log);

    //  a new task first by priority holds back the older ones behind it
    s_add (sched, "q", 4, 0, NOW);
    arb_sched_committed (sched);
    s_add (sched, "q", 5, 9, NOW);
    arb_session_t *w = s_worker (sched, "w2", "q", 10);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 0);
    arb_sched_committed (sched);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_int_equal (log.sent[0]->id, 5);
    assert_int_equal (log.sent[1]->id, 4);

    //  a task given back in this turn is new again until the commit
    arb_task_t *back = log.sent[0];
    arb_sched_give_back (sched, back, true, NOW, MONO);
    log.sent[0] = log.sent[1];
    log.count = 1;
    s_give_credit (sched, w, "q", 1);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    arb_sched_committed (sched);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_ptr_equal (log.sent[1], back);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);

    //  what start-up loads an earlier run committed: the first early pass
    //  hands it out
    sched = s_sched (&log, 0);
    arb_sched_set_loading (sched, true);
    s_add (sched, "q", 1, 0, NOW);
    arb_sched_set_loading (sched, false);
    s_worker (sched, "w", "q", 1);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);
}

//  A session answered in this turn with something that must reach it
//  before any DISPATCH (a WELCOME, a TAKE's tasks) gets nothing before the
//  commit, and everything after it.
static void
test_early_pass_leaves_a_held_session_for_after_the_commit (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    for (uint64_t id = 1; id <= 4; id++)
        s_add (sched, "q", id, 0, NOW);
    arb_sched_committed (sched);
    arb_session_t *w = s_worker (sched, "w", "q", 2);
    arb_sched_welcome (sched, w);  //  its REGISTER came in this turn
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 0);
    arb_sched_committed (sched);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_int_equal (log.sent[0]->id, 1);

    //  a TAKE holds its session the same way
    assert_int_equal (arb_sched_take (sched, w, "q", 1, NOW, MONO), 1);
    assert_int_equal (log.sent[2]->id, 3);
    s_give_credit (sched, w, "q", 1);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    arb_sched_committed (sched);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 4);
    assert_int_equal (log.sent[3]->id, 4);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);
}

static void
test_released_task_goes_first (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *w = s_worker (sched, "w", "q", 1);
    s_add (sched, "q", 1, 9, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    arb_task_t *first = log.sent[0];
    //  more work of the same priority arrives while it runs
    s_add (sched, "q", 2, 9, NOW);
    s_add (sched, "q", 3, 9, NOW);
    arb_sched_unlease (sched, first);
    arb_sched_make_ready (sched, first, true, NOW + 10, MONO);
    const char *queues[] = {"q"};
    arb_sched_credit (sched, w, 0, queues, 1, 1, false);
    log.count = 0;
    arb_sched_dispatch (sched, NOW + 10, MONO + 10);
    assert_int_equal (log.count, 1);
    assert_int_equal (log.sent[0]->id, 1);
    //  so does one never ready before in this run (a retry under the head
    //  policy, loaded as scheduled): it has no place yet, and takes the head
    arb_task_t *retry = arb_sched_new_task (sched, "q", "job");
    retry->id = 4;
    retry->priority = 9;
    retry->state = ARB_STATE_WAITING;
    arb_sched_add (sched, retry, NOW, MONO);
    arb_sched_make_ready (sched, retry, true, NOW + 20, MONO + 20);
    arb_sched_credit (sched, w, 0, queues, 1, 1, false);
    arb_sched_dispatch (sched, NOW + 20, MONO + 20);
    assert_int_equal (log.count, 2);
    assert_int_equal (log.sent[1]->id, 4);
    arb_sched_destroy (&sched);
}

//  Tasks back at the head keep their places there, whatever the order
//  they came back in (a Kestrel item aborted after the ones behind it were
//  given back), with aging or without.
static void
test_released_tasks_keep_their_order (void **state)
{
    (void) state;
    for (int aging = 0; aging < 2; aging++) {
        s_log_t log;
        arb_sched_t *sched = s_sched (&log, aging ? 1000 : 0);
        arb_session_t *w = s_worker (sched, "w", "q", 3);
        for (uint64_t id = 1; id <= 4; id++)
            s_add (sched, "q", id, 0, NOW + id);
        arb_sched_dispatch (sched, NOW + 10, MONO);
        assert_int_equal (log.count, 3);
        arb_task_t *sent[3] = {log.sent[0], log.sent[1], log.sent[2]};
        uint64_t back[] = {2, 3, 1};
        for (size_t i = 0; i < 3; i++) {
            arb_task_t *task = sent[back[i] - 1];
            arb_sched_unlease (sched, task);
            arb_sched_make_ready (sched, task, true, NOW + 20 + i, MONO);
        }
        s_give_credit (sched, w, "q", 4);
        log.count = 0;
        arb_sched_dispatch (sched, NOW + 30, MONO + 30);
        assert_int_equal (log.count, 4);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal (log.sent[i]->id, i + 1);
        s_finish_sent (sched, &log);
        arb_sched_destroy (&sched);
    }
}

//  A released task goes back to the head of its priority, not of the
//  queue: after the higher priorities that came meanwhile, before the rest
//  of its own (RabbitMQ's requeue on a priority queue), with aging or not.
static void
test_released_task_keeps_to_its_priority (void **state)
{
    (void) state;
    for (int aging = 0; aging < 2; aging++) {
        s_log_t log;
        arb_sched_t *sched = s_sched (&log, aging ? 1000 : 0);
        arb_session_t *w = s_worker (sched, "w", "q", 1);
        s_add (sched, "q", 1, 0, NOW + 1);
        arb_sched_dispatch (sched, NOW + 2, MONO);
        assert_int_equal (log.count, 1);
        arb_task_t *task = log.sent[0];
        s_add (sched, "q", 2, 5, NOW + 3);
        s_add (sched, "q", 3, 0, NOW + 4);
        arb_sched_unlease (sched, task);
        arb_sched_make_ready (sched, task, true, NOW + 5, MONO);
        s_give_credit (sched, w, "q", 3);
        log.count = 0;
        arb_sched_dispatch (sched, NOW + 6, MONO + 6);
        assert_int_equal (log.count, 3);
        assert_int_equal (log.sent[0]->id, 2);
        assert_int_equal (log.sent[1]->id, 1);
        assert_int_equal (log.sent[2]->id, 3);
        s_finish_sent (sched, &log);
        arb_sched_destroy (&sched);
    }
}

//  With aging, waiting long enough outranks priority; without, never.
static void
test_aging (void **state)
{
    (void) state;
    for (int aging = 0; aging < 2; aging++) {
        s_log_t log;
        arb_sched_t *sched = s_sched (&log, aging ? 1000 : 0);
        //  priority 0 waiting since NOW; priority 3 arriving 5 s later
        s_add (sched, "q", 1, 0, NOW);
        s_add (sched, "q", 2, 3, NOW + 5000);
        s_worker (sched, "w", "q", 1);
        arb_sched_dispatch (sched, NOW + 5000, MONO + 5000);
        assert_int_equal (log.count, 1);
        //  aged: 0 + 5 levels > 3; strict: 3 wins
        assert_int_equal (log.sent[0]->id, aging ? 1 : 2);
        arb_sched_destroy (&sched);
    }
}

static void
test_credit_is_never_exceeded (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    for (uint64_t id = 1; id <= 10; id++)
        s_add (sched, "q", id, 0, NOW);
    arb_session_t *w = s_worker (sched, "w", "q", 3);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    //  no credit, no dispatch, however often asked
    arb_sched_dispatch (sched, NOW, MONO);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    assert_int_equal (arb_session_lease_count (w), 3);
    const char *queues[] = {"q"};
    arb_sched_credit (sched, w, 0, queues, 1, 2, false);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 5);
    assert_int_equal (arb_session_lease_count (w), 5);
    //  credit adds up: two grants before a pass are both spent
    arb_sched_credit (sched, w, 0, queues, 1, 1, false);
    arb_sched_credit (sched, w, 0, queues, 1, 1, false);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 7);
    //  taken below zero (CREDIT may be negative): the session has none
    //  free, not less than none
    arb_sched_credit (sched, w, 0, queues, 1, -2, false);
    assert_int_equal (arb_session_credit (w), 0);
    arb_sched_credit (sched, w, 0, queues, 1, 2, false);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 7);
    arb_sched_destroy (&sched);
}

static void
test_workers_share_round_robin (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *a = s_worker (sched, "a", "q", 100);
    arb_session_t *b = s_worker (sched, "b", "q", 100);
    for (uint64_t id = 1; id <= 10; id++)
        s_add (sched, "q", id, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 10);
    assert_int_equal (arb_session_lease_count (a), 5);
    assert_int_equal (arb_session_lease_count (b), 5);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);

    //  a consumer that leaves passes its turn on: a served, b gone, c next
    sched = s_sched (&log, 0);
    a = s_worker (sched, "a", "q", 100);
    b = s_worker (sched, "b", "q", 100);
    arb_session_t *c = s_worker (sched, "c", "q", 100);
    s_add (sched, "q", 1, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_ptr_equal (log.to[0], a);
    arb_sched_credit (sched, b, 0, NULL, 0, 0, true);
    s_add (sched, "q", 2, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_ptr_equal (log.to[1], c);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);
}

//  Tasks that come one a turn, each handed out after its commit, go to
//  the consumers in turn: the pass before the commit, which meets the
//  task of its turn and hands out nothing, keeps the consumer's turn.
static void
test_round_robin_holds_across_early_passes (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *workers[3] = {s_worker (sched, "a", "q", 100), s_worker (sched, "b", "q", 100),
                                 s_worker (sched, "c", "q", 100)};
    for (uint64_t id = 1; id <= 12; id++) {
        s_add (sched, "q", id, 0, NOW);
        arb_sched_dispatch_early (sched, NOW, MONO);
        assert_int_equal (log.count, id - 1);
        arb_sched_committed (sched);
        arb_sched_dispatch (sched, NOW, MONO);
        assert_int_equal (log.count, id);
        assert_ptr_equal (log.to[id - 1], workers[(id - 1) % 3]);
    }
    for (size_t i = 0; i < 3; i++)
        assert_int_equal (arb_session_lease_count (workers[i]), 4);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);
}

static void
test_leases (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    s_worker (sched, "w", "q", 1);
    s_add (sched, "q", 1, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    arb_task_t *task = log.sent[0];
    assert_int_equal (task->state, ARB_STATE_RUNNING);
    assert_int_equal (task->attempts, 1);
    //  leases carry the epoch in their high bits
    assert_int_equal (arb_task_ext (task)->lease >> 40, 7);
    assert_ptr_equal (arb_sched_leased (sched, 1, arb_task_ext (task)->lease), task);
    assert_null (arb_sched_leased (sched, 1, arb_task_ext (task)->lease + 1));
    assert_null (arb_sched_leased (sched, 2, arb_task_ext (task)->lease));
    uint64_t old = arb_task_ext (task)->lease;
    arb_sched_unlease (sched, task);
    assert_null (arb_sched_leased (sched, 1, old));
    arb_sched_destroy (&sched);
}

//  The first place of each id of a list a peer sends, repeats found in
//  O(n log n).
static void
test_ids_first (void **state)
{
    (void) state;
    uint64_t ids[] = {5, 3, 5, 0, 3, 5, UINT64_MAX, 0};
    size_t *first = arb_ids_first (ids, 8);
    size_t want[] = {0, 1, 0, 3, 1, 0, 6, 3};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal (first[i], want[i]);
    free (first);
    free (arb_ids_first (NULL, 0));
    size_t n = 100000;
    uint64_t *many = (uint64_t *) malloc (n * sizeof (uint64_t));
    for (size_t i = 0; i < n; i++)
        many[i] = 42;
    first = arb_ids_first (many, n);
    assert_int_equal (first[0], 0);
    assert_int_equal (first[n - 1], 0);
    free (first);
    free (many);
}

//  Arrays a peer grows one element at a time (a session's subscriptions,
//  a queue's consumers) double their allocation: 100,000 additions
//  reallocate 14 times, keeping every element.
static void
test_array_grow (void **state)
{
    (void) state;
    size_t *array = NULL, count = 0, capacity = 0, grown = 0;
    for (; count < 100000; count++) {
        size_t before = capacity;
        array = (size_t *) arb_array_grow (array, count, &capacity, sizeof (size_t));
        grown += capacity != before;
        array[count] = count;
    }
    assert_int_equal (grown, 14);  //  16, 32, ..., 131072
    assert_int_equal (capacity, 131072);
    for (size_t i = 0; i < count; i++)
        assert_int_equal (array[i], i);
    free (array);
}

//  A worker that still runs a task may have it back while nobody else has
//  it: under a lease from before the broker's start, or the lease it lost;
//  or from another session of the same worker process.
static void
test_adopt_and_recovery_hold (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_task_t *loaded = s_add (sched, "q", 1, 0, NOW);
    s_add (sched, "other", 2, 0, NOW);
    assert_ptr_equal (arb_sched_find (sched, 1), loaded);
    assert_null (arb_sched_find (sched, 0));  //  no task has id 0 (a NULL key)
    assert_null (arb_sched_leased (sched, 0, 0));
    //  after a start, queues with ready tasks hand out nothing for a while
    arb_sched_hold_ready (sched, MONO + 3000);
    arb_session_t *w = s_worker (sched, "w", "q", 2);
    arb_session_set_info (w, "w", "light", 2, 42, "host");
    arb_session_set_register_id (w, 5);
    s_add (sched, "q", 3, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO + 100);
    assert_int_equal (log.count, 0);
    assert_true (arb_sched_next_timer (sched) <= MONO + 3000);
    //  a lease of epoch 6 (before this start, epoch 7) is claimed back
    uint64_t before = (6ull << ARB_LEASE_BITS) | 12;
    assert_false (arb_sched_can_adopt (sched, loaded, w, 0));
    assert_false (arb_sched_can_adopt (sched, loaded, w, (7ull << ARB_LEASE_BITS) | 12));
    //  epoch 0 was never given out: a made-up lease such as 1 takes nothing
    assert_false (arb_sched_can_adopt (sched, loaded, w, 1));
    assert_false (arb_sched_can_adopt (sched, loaded, w, (1ull << ARB_LEASE_BITS) - 1));
    assert_true (arb_sched_can_adopt (sched, loaded, w, before));
    arb_task_ext_rw (loaded)->timeout_ms = 10000;
    assert_int_equal (arb_sched_adopt (sched, loaded, w, before, MONO + 200), ARB_ADOPT_LEASED);
    assert_int_equal (loaded->timer_ms, MONO + 10200);
    assert_int_equal (loaded->state, ARB_STATE_RUNNING);
    assert_ptr_equal (arb_task_ext (loaded)->session, w);
    assert_int_equal (arb_task_ext (loaded)->lease >> ARB_LEASE_BITS, 7);
    assert_int_equal (loaded->attempts, 1);
    assert_int_equal (arb_queue_limit (arb_sched_queue (sched, "q"))->running, 1);
    //  the same worker from a new socket takes it over, as the same attempt;
    //  another worker cannot
    arb_session_t *again = s_worker (sched, "w2", "q", 0);
    arb_session_t *stranger = s_worker (sched, "x", "q", 0);
    arb_session_set_info (again, "w", "light", 2, 42, "host");
    arb_session_set_info (stranger, "x", "light", 2, 43, "host");
    arb_session_set_register_id (stranger, 9);
    assert_false (arb_sched_can_adopt (sched, loaded, stranger, before));
    //  only from a later REGISTER: an earlier one handled late does not take it
    arb_session_set_register_id (again, 4);
    assert_false (arb_sched_can_adopt (sched, loaded, again, before));
    arb_session_set_register_id (again, 5);  //  the same REGISTER, not a later one
    assert_false (arb_sched_can_adopt (sched, loaded, again, before));
    //  nor another process of the same name on the same host
    arb_session_t *sibling = s_worker (sched, "w3", "q", 0);
    arb_session_set_info (sibling, "w", "light", 2, 44, "host");
    arb_session_set_register_id (sibling, 9);
    assert_false (arb_sched_can_adopt (sched, loaded, sibling, before));
    arb_session_set_register_id (again, 6);
    assert_true (arb_sched_can_adopt (sched, loaded, again, before));
    assert_int_equal (arb_sched_adopt (sched, loaded, again, before, MONO + 300), ARB_ADOPT_MOVED);
    assert_int_equal (arb_sched_adopt (sched, loaded, again, before, MONO + 300), ARB_ADOPT_KEPT);
    assert_ptr_equal (arb_task_ext (loaded)->session, again);
    assert_int_equal (loaded->attempts, 1);
    assert_int_equal (loaded->timer_ms, MONO + 10200);  //  its timeout runs on
    assert_int_equal (arb_session_lease_count (w), 0);
    assert_int_equal (arb_queue_limit (arb_sched_queue (sched, "q"))->running, 1);
    //  not a ms before the window ends (a credit marks the queue)
    s_give_credit (sched, w, "q", 0);
    arb_sched_dispatch (sched, NOW, MONO + 2999);
    assert_int_equal (log.count, 0);
    //  after the window the rest goes out as usual
    while (arb_sched_pop_timer (sched, MONO + 3000))
        ;
    arb_sched_dispatch (sched, NOW, MONO + 3000);
    assert_int_equal (log.count, 1);
    assert_int_equal (log.sent[0]->id, 3);
    //  this epoch: only a lease lost with its worker (the broker notes it)
    arb_task_t *task = log.sent[0];
    uint64_t lost = arb_task_ext (task)->lease;
    arb_sched_unlease (sched, task);
    arb_sched_make_ready (sched, task, false, NOW, MONO + 3000);
    assert_false (arb_sched_can_adopt (sched, task, w, lost));
    arb_task_ext_rw (task)->last_lease = lost;
    arb_task_ext_rw (task)->last_worker = arb_session_worker (w);
    arb_task_ext_rw (task)->last_lost = true;
    task->lost = 1;
    assert_false (arb_sched_can_adopt (sched, task, sibling, lost));
    assert_true (arb_sched_can_adopt (sched, task, w, lost));
    assert_false (arb_sched_can_adopt (sched, task, w, lost + 1));
    arb_sched_adopt (sched, task, w, lost, MONO + 3100);
    assert_int_equal (task->lost, 0);
    assert_int_equal (arb_task_ext (task)->last_lease, 0);
    arb_sched_destroy (&sched);
}

//  Who may take a task back, and under which lease (issue 10): only a
//  registered worker, only the lease it held (a lease of an earlier run
//  for a task this run has not leased; the lease it lost itself; the lease
//  a running task has, or an earlier claim named), never a lease made up.
static void
test_adopt_only_what_was_held (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);  //  epoch 7
    arb_task_t *task = s_add (sched, "q", 1, 0, NOW);
    arb_task_t *other = s_add (sched, "q", 2, 0, NOW);
    uint64_t before = (6ull << ARB_LEASE_BITS) | 3;
    //  a peer that never registered takes nothing, whatever the lease
    zframe_t *identity = zframe_new ("p", 1);
    arb_session_t *peer = arb_sched_open_session (sched, identity, MONO);
    zframe_destroy (&identity);
    assert_false (arb_sched_can_adopt (sched, task, peer, before));
    assert_false (arb_sched_can_adopt (sched, task, NULL, before));
    arb_session_t *w = s_worker (sched, "w", "q", 0);
    arb_session_set_info (w, "w", "light", 1, 42, "host");
    arb_session_set_register_id (w, 5);
    //  lease 1 is of epoch 0, which no run ever had
    assert_false (arb_sched_can_adopt (sched, task, w, 1));
    assert_true (arb_sched_can_adopt (sched, task, w, before));
    //  a task this run has leased is no longer an earlier run's
    arb_session_t *x = s_worker (sched, "x", "q", 1);
    arb_session_set_info (x, "x", "light", 1, 43, "host");
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    arb_task_t *sent = log.sent[0];
    uint64_t lease = arb_task_ext (sent)->lease;
    //  running: only under its lease, and only the same worker
    assert_false (arb_sched_can_adopt (sched, sent, w, lease));
    assert_false (arb_sched_can_adopt (sched, sent, w, before));
    arb_session_t *x2 = s_worker (sched, "x2", "q", 0);
    arb_session_set_info (x2, "x", "light", 1, 43, "host");
    arb_session_set_register_id (x2, 1);
    assert_false (arb_sched_can_adopt (sched, sent, x2, lease + 1));
    assert_false (arb_sched_can_adopt (sched, sent, x2, 0));  //  no claim named yet
    assert_true (arb_sched_can_adopt (sched, sent, x2, lease));
    //  taken back out of step: claimable by its worker, as not lost
    arb_sched_give_back (sched, sent, true, NOW, MONO);
    assert_int_equal (sent->state, ARB_STATE_READY);
    assert_int_equal (sent->attempts, 0);
    assert_int_equal (sent->lost, 0);
    assert_false (arb_sched_can_adopt (sched, sent, w, lease));
    assert_false (arb_sched_can_adopt (sched, sent, x2, before));
    assert_true (arb_sched_can_adopt (sched, sent, x2, lease));
    assert_int_equal (arb_sched_adopt (sched, sent, x2, lease, MONO), ARB_ADOPT_LEASED);
    assert_int_equal (sent->lost, 0);
    assert_int_equal (arb_task_ext (sent)->claimed_lease, lease);
    //  a later REGISTER of that worker that never saw the WELCOME names
    //  the lease it claimed, not the new one
    arb_session_t *x3 = s_worker (sched, "x3", "q", 0);
    arb_session_set_info (x3, "x", "light", 1, 43, "host");
    arb_session_set_register_id (x3, 2);
    assert_true (arb_sched_can_adopt (sched, sent, x3, lease));
    assert_int_equal (arb_sched_adopt (sched, sent, x3, lease, MONO), ARB_ADOPT_MOVED);
    assert_true (arb_sched_can_adopt (sched, sent, x3, arb_task_ext (sent)->lease));
    //  its attempt fails and it is ready for a retry: leased in this run,
    //  it is no longer an earlier run's, whose worker would run it again
    arb_sched_unlease (sched, sent);
    arb_sched_make_ready (sched, sent, false, NOW, MONO);
    assert_int_equal (arb_task_ext (sent)->last_lease, 0);
    assert_false (arb_sched_can_adopt (sched, sent, w, before));
    assert_false (arb_sched_can_adopt (sched, sent, x3, before));
    //  the other task, never leased in this run: an earlier run's lease
    assert_true (arb_sched_can_adopt (sched, other, w, before));
    //  leased anew, it is no longer under the lease that claim named
    s_give_credit (sched, x3, "q", 2);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (sent->state, ARB_STATE_RUNNING);
    assert_ptr_equal (arb_task_ext (sent)->session, x3);
    assert_false (arb_sched_can_adopt (sched, sent, x3, lease));
    arb_sched_destroy (&sched);
}

//  A worker with marks is due one when it holds leases beyond the last
//  mark, a heartbeat period after it, and the mark is the highest lease
//  given; heartbeats out of step count in a row, and anew at a REGISTER.
static void
test_session_marks_and_steps (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *w = s_worker (sched, "w", "q", 2);
    arb_session_set_acks (w, true, true);
    assert_false (arb_session_mark_due (w, MONO, 100));  //  no lease yet
    s_add (sched, "q", 1, 0, NOW);
    s_add (sched, "q", 2, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    uint64_t newest = arb_task_ext (log.sent[1])->lease;
    assert_true (newest > arb_task_ext (log.sent[0])->lease);
    assert_true (arb_session_mark_due (w, MONO, 100));
    assert_int_equal (arb_session_mark (w, MONO), newest);
    assert_false (arb_session_mark_due (w, MONO + 100, 100));  //  none beyond it
    s_give_credit (sched, w, "q", 1);
    s_add (sched, "q", 3, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_false (arb_session_mark_due (w, MONO + 99, 100));
    assert_true (arb_session_mark_due (w, MONO + 100, 100));
    assert_int_equal (arb_session_out_of_step (w, true), 1);
    assert_int_equal (arb_session_out_of_step (w, true), 2);
    assert_int_equal (arb_session_out_of_step (w, false), 0);
    assert_int_equal (arb_session_out_of_step (w, true), 1);
    arb_session_set_acks (w, true, true);  //  it registers again
    assert_int_equal (arb_session_out_of_step (w, true), 1);
    s_finish_sent (sched, &log);
    arb_sched_destroy (&sched);
}

//  arb_sched_unread_fn: every peer has input waiting.
static bool
s_has_input (void *arg, arb_session_t *session)
{
    (void) arg;
    (void) session;
    return true;
}

//  A session is silent only after the liveness window (and with nothing
//  from it still unread); touching renews it.
static void
test_lease_expiry_by_liveness (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *a = s_worker (sched, "a", "q", 1);
    arb_session_t *b = s_worker (sched, "b", "q", 1);
    assert_null (arb_sched_silent_session (sched, MONO + 3000, NULL, NULL));
    arb_session_touch (b, MONO + 2500);
    assert_ptr_equal (arb_sched_silent_session (sched, MONO + 3001, NULL, NULL), a);
    assert_null (arb_sched_silent_session (sched, MONO + 3001, s_has_input, NULL));
    s_add (sched, "q", 1, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    arb_session_t *holder = log.to[0];
    //  ending the holder's lease and session gives the task back
    arb_task_t *task = arb_session_first_lease (holder);
    assert_non_null (task);
    arb_sched_unlease (sched, task);
    arb_sched_make_ready (sched, task, false, NOW, MONO);
    arb_sched_close_session (sched, &holder);
    assert_int_equal (arb_queue_size (arb_sched_queue (sched, "q")), 1);
    arb_sched_destroy (&sched);
}

static void
test_timers (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_task_t *task = arb_sched_new_task (sched, "q", "later");
    task->id = 1;
    task->state = ARB_STATE_SCHEDULED;
    arb_task_ext_rw (task)->not_before_ms = NOW + 2000;
    arb_sched_add (sched, task, NOW, MONO);
    assert_int_equal (arb_sched_next_timer (sched), MONO + 2000);
    assert_null (arb_sched_pop_timer (sched, MONO + 1999));
    assert_ptr_equal (arb_sched_pop_timer (sched, MONO + 2000), task);
    assert_int_equal (arb_sched_next_timer (sched), UINT64_MAX);
    arb_sched_make_ready (sched, task, false, NOW + 2000, MONO);
    //  a running task with a timeout has a deadline timer
    arb_task_ext_rw (task)->timeout_ms = 500;
    s_worker (sched, "w", "q", 1);
    arb_sched_dispatch (sched, NOW + 2000, MONO + 2000);
    assert_int_equal (arb_sched_next_timer (sched), MONO + 2500);
    assert_ptr_equal (arb_sched_pop_timer (sched, MONO + 2600), task);
    //  a task scheduled in the past is ready at once
    arb_task_t *past = arb_sched_new_task (sched, "q", "past");
    past->id = 2;
    past->state = ARB_STATE_SCHEDULED;
    arb_task_ext_rw (past)->not_before_ms = NOW - 1;
    arb_sched_add (sched, past, NOW, MONO);
    assert_int_equal (past->state, ARB_STATE_READY);
    //  and so is one scheduled for now
    arb_task_t *now = arb_sched_new_task (sched, "q", "now");
    now->id = 3;
    now->state = ARB_STATE_SCHEDULED;
    arb_task_ext_rw (now)->not_before_ms = NOW;
    arb_sched_add (sched, now, NOW, MONO);
    assert_int_equal (now->state, ARB_STATE_READY);
    arb_sched_destroy (&sched);
}

//  Many timers come due in the order of their times, whatever the order
//  they were set in: a due one is never left behind one set for later.
static void
test_timers_fire_in_time_order (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    const uint64_t due[] = {3000, 1000, 5000, 2000, 4000, 1000};
    const size_t count = sizeof (due) / sizeof (due[0]);
    for (size_t i = 0; i < count; i++) {
        arb_task_t *task = arb_sched_new_task (sched, "q", "later");
        task->id = i + 1;
        task->state = ARB_STATE_SCHEDULED;
        arb_task_ext_rw (task)->not_before_ms = NOW + due[i];
        arb_sched_add (sched, task, NOW, MONO);
    }
    assert_int_equal (arb_sched_next_timer (sched), MONO + 1000);
    //  at 2 s, the three due by then, earliest first (ties by id)
    arb_task_t *task = arb_sched_pop_timer (sched, MONO + 2000);
    assert_non_null (task);
    assert_int_equal (task->id, 2);
    task = arb_sched_pop_timer (sched, MONO + 2000);
    assert_non_null (task);
    assert_int_equal (task->id, 6);
    task = arb_sched_pop_timer (sched, MONO + 2000);
    assert_non_null (task);
    assert_int_equal (task->id, 4);
    assert_null (arb_sched_pop_timer (sched, MONO + 2000));
    assert_int_equal (arb_sched_next_timer (sched), MONO + 3000);
    const uint64_t rest[] = {1, 5, 3};
    for (size_t i = 0; i < 3; i++) {
        task = arb_sched_pop_timer (sched, MONO + 10000);
        assert_non_null (task);
        assert_int_equal (task->id, rest[i]);
    }
    assert_null (arb_sched_pop_timer (sched, MONO + 10000));
    arb_sched_destroy (&sched);
}

static void
test_max_running_and_pause (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    arb_queue_limit (q)->max_running = 2;
    arb_queue_settings (q)->paused = true;
    for (uint64_t id = 1; id <= 5; id++)
        s_add (sched, "q", id, 0, NOW);
    s_worker (sched, "w", "q", 10);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 0);
    arb_queue_settings (q)->paused = false;
    arb_sched_touch_queue (sched, q);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    //  one ends: one more may run
    arb_sched_finish (sched, &log.sent[0], ARB_STATE_SUCCEEDED, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    assert_int_equal (arb_queue_limit (q)->running, 2);
    arb_sched_destroy (&sched);
}

//  What a turn loosens (a queue resumed, a running slot freed under a
//  limit) the journal has not recorded until the commit: that turn's
//  early pass hands out nothing, and the pass after the commit does.
static void
test_early_pass_waits_for_a_loosened_limit (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    arb_queue_limit (q)->max_running = 1;
    arb_queue_settings (q)->paused = true;
    for (uint64_t id = 1; id <= 3; id++)
        s_add (sched, "q", id, 0, NOW);
    s_worker (sched, "w", "q", 10);
    arb_sched_committed (sched);
    //  resumed in this turn
    arb_queue_settings (q)->paused = false;
    arb_sched_touch_queue (sched, q);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 0);
    arb_sched_committed (sched);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    arb_sched_committed (sched);
    //  its one running task ends in this turn
    arb_sched_finish (sched, &log.sent[0], ARB_STATE_SUCCEEDED, NOW);
    arb_sched_dispatch_early (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    arb_sched_committed (sched);
    arb_sched_dispatch_early (sched, NOW, MONO);  //  the next turn: nothing loosened
    assert_int_equal (log.count, 2);
    assert_int_equal (log.sent[1]->id, 2);
    arb_sched_destroy (&sched);
}

static void
test_rate_limit (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    arb_queue_limit (q)->rate_per_sec = 10;
    for (uint64_t id = 1; id <= 100; id++)
        s_add (sched, "q", id, 0, NOW);
    arb_session_t *w = s_worker (sched, "w", "q", 1000);
    //  three simulated seconds, woken by the scheduler's own timer
    uint64_t mono = MONO;
    while (mono < MONO + 3000) {
        while (arb_sched_pop_timer (sched, mono))
            ;
        arb_sched_dispatch (sched, NOW + (mono - MONO), mono);
        uint64_t next = arb_sched_next_timer (sched);
        assert_true (next > mono && next != UINT64_MAX);
        mono = next;
    }
    //  1 at once, then 10 per second: 30 or 31
    assert_in_range (log.count, 30, 31);
    //  ten idle seconds save up one second's worth, not ten
    size_t sent = log.count;
    mono += 10000;
    while (arb_sched_pop_timer (sched, mono))
        ;
    arb_sched_dispatch (sched, NOW + (mono - MONO), mono);
    assert_int_equal (log.count, sent + 10);
    //  half a token 50 ms later lets none go (a credit marks the queue)
    s_give_credit (sched, w, "q", 0);
    arb_sched_dispatch (sched, NOW + (mono + 50 - MONO), mono + 50);
    assert_int_equal (log.count, sent + 10);
    arb_sched_destroy (&sched);
}

static void
test_expired_tasks_are_not_dispatched (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_task_t *old = s_add (sched, "q", 1, 0, NOW);
    arb_task_ext_rw (old)->expires_ms = NOW + 10;
    s_add (sched, "q", 2, 0, NOW);
    arb_task_t *due = s_add (sched, "q", 3, 0, NOW);
    arb_task_ext_rw (due)->expires_ms = NOW + 20;  //  its expiry is now: gone too
    s_worker (sched, "w", "q", 5);
    arb_sched_dispatch (sched, NOW + 20, MONO + 20);
    assert_int_equal (log.expired_count, 2);
    assert_int_equal (log.expired[0]->id, 1);
    assert_int_equal (log.expired[1]->id, 3);
    arb_sched_finish (sched, &log.expired[0], ARB_STATE_CANCELLED, NOW + 20);
    arb_sched_finish (sched, &log.expired[1], ARB_STATE_CANCELLED, NOW + 20);
    assert_int_equal (log.count, 1);
    assert_int_equal (log.sent[0]->id, 2);
    //  a task that may expire has a timer, which goes with the task
    arb_task_t *dated = arb_sched_new_task (sched, "q", "job");
    dated->id = 4;
    dated->state = ARB_STATE_READY;
    arb_task_ext_rw (dated)->expires_ms = NOW + 1000;
    arb_sched_add (sched, dated, NOW + 20, MONO + 20);
    assert_int_equal (arb_sched_next_timer (sched), MONO + 1000);
    arb_sched_finish (sched, &dated, ARB_STATE_CANCELLED, NOW + 20);
    assert_int_equal (arb_sched_next_timer (sched), UINT64_MAX);
    arb_sched_destroy (&sched);
}

//  A dispatch the broker cannot send leaves the task ready, at the head,
//  with its credit and attempts unchanged.
static void
test_failed_send_puts_task_back (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *w = s_worker (sched, "w", "q", 1);
    arb_task_t *task = s_add (sched, "q", 1, 0, NOW);
    log.refuse = true;
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (task->state, ARB_STATE_READY);
    assert_int_equal (task->attempts, 0);
    assert_true (task->head);
    assert_int_equal (arb_session_credit (w), 1);
    assert_int_equal (arb_session_lease_count (w), 0);
    log.refuse = false;
    arb_sched_touch_queue (sched, task->queue);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    arb_sched_destroy (&sched);
}

static void
test_counts_follow_states (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    s_add (sched, "q", 1, 0, NOW);
    s_add (sched, "q", 2, 0, NOW);
    uint64_t *counts = arb_queue_counts (arb_sched_queue (sched, "q"));
    assert_int_equal (counts[ARB_STATE_READY], 2);
    s_worker (sched, "w", "q", 1);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (counts[ARB_STATE_READY], 1);
    assert_int_equal (counts[ARB_STATE_RUNNING], 1);
    s_finish_sent (sched, &log);
    assert_int_equal (counts[ARB_STATE_RUNNING], 0);
    assert_int_equal (counts[ARB_STATE_SUCCEEDED], 1);
    assert_int_equal (arb_sched_task_count (sched), 1);
    arb_sched_destroy (&sched);
}

//  A queue's ready bytes follow its ready tasks: out at a dispatch, back
//  at a release, out for a retry's wait and back when it is due, out at
//  the end.
static void
s_add_sized (arb_sched_t *sched, uint64_t id, int state, uint64_t size)
{
    arb_task_t *task = arb_sched_new_task (sched, "q", "job");
    task->id = id;
    task->state = (uint8_t) state;
    arb_task_set_payload_size (task, size);
    arb_sched_add (sched, task, NOW, MONO);
}

static void
test_ready_bytes_follow_states (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    s_add_sized (sched, 1, ARB_STATE_READY, 100);
    s_add_sized (sched, 2, ARB_STATE_READY, 20);
    s_add_sized (sched, 3, ARB_STATE_WAITING, 5);  //  not ready: not counted
    uint64_t *bytes = arb_queue_ready_bytes (arb_sched_queue (sched, "q"));
    assert_int_equal (*bytes, 120);
    arb_session_t *w = s_worker (sched, "w", "q", 1);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    assert_int_equal (*bytes, 20);
    //  released to the head: ready again
    arb_task_t *first = log.sent[0];
    arb_sched_give_back (sched, first, true, NOW, MONO);
    assert_int_equal (*bytes, 120);
    //  taken again, failed: it waits for its retry, then is due
    log.count = 0;
    assert_int_equal (arb_sched_take (sched, w, "q", 1, NOW, MONO), 1);
    assert_int_equal (*bytes, 20);
    arb_sched_unlease (sched, first);
    arb_sched_make_scheduled (sched, first, NOW + 1000, NOW, MONO);
    assert_int_equal (*bytes, 20);
    arb_sched_make_ready (sched, first, false, NOW + 1000, MONO + 1000);
    assert_int_equal (*bytes, 120);
    //  the waiting one becomes ready; then two end (cancelled)
    arb_task_t *task = arb_sched_find (sched, 3);
    arb_sched_make_ready (sched, task, false, NOW, MONO);
    assert_int_equal (*bytes, 125);
    arb_sched_finish (sched, &task, ARB_STATE_CANCELLED, NOW);
    arb_sched_finish (sched, &first, ARB_STATE_CANCELLED, NOW);
    assert_int_equal (*bytes, 20);
    arb_sched_destroy (&sched);
}

//  A task name's limit holds across queues; held-back tasks keep their
//  place, and other names go past them.
static void
test_name_limit (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_limit_t *limit = arb_sched_name_limit (sched, "scarce");
    limit->max_running = 1;
    arb_sched_touch_name (sched, "scarce");
    for (uint64_t id = 1; id <= 4; id++) {
        arb_task_t *task =
            arb_sched_new_task (sched, id % 2 ? "a" : "b", id == 4 ? "free" : "scarce");
        task->id = id;
        task->state = ARB_STATE_READY;
        arb_sched_add (sched, task, NOW, MONO);
    }
    zframe_t *identity = zframe_new ("w", 1);
    arb_session_t *w = arb_sched_open_session (sched, identity, MONO);
    zframe_destroy (&identity);
    const char *queues[] = {"a", "b"};
    arb_sched_credit (sched, w, 0, queues, 2, 10, false);
    arb_sched_dispatch (sched, NOW, MONO);
    //  one "scarce" and the "free" one; two "scarce" wait
    assert_int_equal (log.count, 2);
    assert_int_equal (limit->running, 1);
    //  a queue's own parked tasks go back to it, and no other's (its
    //  bound drops from the head, arb_life_queue.c)
    arb_sched_unpark_queue (sched, arb_sched_queue (sched, "b"));
    arb_task_t *back = NULL;
    assert_int_equal (arb_queue_first (arb_sched_queue (sched, "b"), &back, 1, 1, NULL, NULL), 1);
    assert_int_equal (back->id, 2);
    assert_int_equal (arb_queue_size (arb_sched_queue (sched, "b")), 1);
    assert_int_equal (arb_queue_size (arb_sched_queue (sched, "a")), 0);
    arb_task_t *scarce = streq (log.sent[0]->name, "scarce") ? log.sent[0] : log.sent[1];
    uint64_t first = scarce->id;
    arb_sched_finish (sched, &scarce, ARB_STATE_SUCCEEDED, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    assert_true (log.sent[2]->id > first);  //  the next in arrival order
    assert_int_equal (limit->running, 1);
    //  lifting the limit lets the last one go
    limit->max_running = 0;
    arb_sched_touch_name (sched, "scarce");
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 4);
    arb_sched_destroy (&sched);
}

//  The case: two workers on one queue, one running simple_add and
//  sleep, the other add. Every task goes to a worker that runs its name.
static void
test_names_reach_a_worker_that_runs_them (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *minion = s_picky_worker (sched, "m", "q", 4, "simple_add", "sleep", NULL);
    arb_session_t *adder = s_picky_worker (sched, "a", "q", 4, "add", NULL);
    for (uint64_t id = 1; id <= 6; id++)
        s_add_named (sched, "q", id, "add", 0);
    s_add_named (sched, "q", 7, "simple_add", 0);
    arb_sched_dispatch (sched, NOW, MONO);
    //  four adds (its credit) and the simple_add; two adds wait
    assert_int_equal (log.count, 5);
    for (size_t i = 0; i < log.count; i++)
        assert_ptr_equal (log.to[i], streq (log.sent[i]->name, "add") ? adder : minion);
    assert_int_equal (arb_session_lease_count (adder), 4);
    assert_int_equal (arb_queue_size (arb_sched_queue (sched, "q")), 2);
    //  the minion's free slots never take them
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 5);
    //  the adder's next slots do, in their order
    s_give_credit (sched, adder, "q", 2);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 7);
    assert_int_equal (log.sent[5]->id, 5);
    assert_int_equal (log.sent[6]->id, 6);
    assert_ptr_equal (log.to[6], adder);
    arb_sched_destroy (&sched);
}

//  A task that no worker of its queue runs waits for a handler without
//  holding back the tasks behind it, and goes first once a worker that
//  runs it comes; a catch-all worker runs every name.
static void
test_unhandled_task_waits_for_a_handler (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_task_t *orphan = s_add_named (sched, "q", 1, "resize", 9);
    s_add_named (sched, "q", 2, "add", 0);
    s_add_named (sched, "q", 3, "add", 0);
    assert_false (arb_sched_is_unhandled (sched, orphan));  //  no worker at all yet
    s_picky_worker (sched, "a", "q", 5, "add", NULL);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_int_equal (orphan->state, ARB_STATE_READY);
    assert_true (arb_sched_is_unhandled (sched, orphan));
    //  a worker that runs it, busy or not, handles it
    arb_session_t *resizer = s_picky_worker (sched, "r", "q", 0, "resize", NULL);
    assert_false (arb_sched_is_unhandled (sched, orphan));
    arb_sched_credit (sched, resizer, 0, NULL, 0, 0, true);
    assert_true (arb_sched_is_unhandled (sched, orphan));
    //  it keeps its place: it goes before a task that came after it
    s_add_named (sched, "q", 4, "other", 0);
    arb_session_t *any = s_worker (sched, "any", "q", 1);
    assert_false (arb_sched_is_unhandled (sched, orphan));
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 3);
    assert_ptr_equal (log.sent[2], orphan);
    assert_ptr_equal (log.to[2], any);
    s_give_credit (sched, any, "q", 1);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 4);
    assert_int_equal (log.sent[3]->id, 4);
    arb_sched_destroy (&sched);
}

//  Tasks whose only workers are busy let the other workers take the tasks
//  behind them, and are set aside once: later passes do not walk them again.
static void
test_busy_names_hold_back_nothing (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *slow = s_picky_worker (sched, "s", "q", 0, "slow", NULL);
    arb_session_t *fast = s_picky_worker (sched, "f", "q", 1, "fast", NULL);
    for (uint64_t id = 1; id <= 100; id++)
        s_add_named (sched, "q", id, "slow", 0);
    s_add_named (sched, "q", 101, "fast", 0);
    s_add_named (sched, "q", 102, "fast", 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    assert_int_equal (log.sent[0]->id, 101);
    assert_int_equal (arb_queue_aside_count (q), 100);
    s_give_credit (sched, fast, "q", 1);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_int_equal (log.sent[1]->id, 102);
    assert_int_equal (arb_queue_aside_count (q), 100);
    //  the slow worker frees up: its tasks in order, out of their heap
    s_give_credit (sched, slow, "q", 3);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 5);
    for (size_t i = 2; i < 5; i++) {
        assert_int_equal (log.sent[i]->id, i - 1);
        assert_ptr_equal (log.to[i], slow);
    }
    assert_int_equal (arb_queue_aside_count (q), 97);
    arb_sched_destroy (&sched);
}

//  Set aside or not, tasks go out in the queue's order: priority, then
//  arrival; and a queue whose workers all run every name sets nothing
//  aside.
static void
test_set_aside_tasks_keep_their_place (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    s_add_named (sched, "q", 1, "a", 0);
    s_add_named (sched, "q", 2, "b", 0);
    s_add_named (sched, "q", 3, "b", 0);
    arb_session_t *b = s_picky_worker (sched, "b", "q", 1, "b", NULL);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    assert_int_equal (log.sent[0]->id, 2);
    assert_int_equal (arb_queue_aside_count (q), 1);
    s_add_named (sched, "q", 4, "a", 5);
    s_add_named (sched, "q", 5, "b", 0);
    //  the picky worker leaves; a catch-all one takes all, in order
    arb_sched_credit (sched, b, 0, NULL, 0, 0, true);
    s_worker (sched, "any", "q", 10);
    arb_sched_dispatch (sched, NOW, MONO);
    uint64_t expect[] = {4, 1, 3, 5};
    assert_int_equal (log.count, 5);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal (log.sent[1 + i]->id, expect[i]);
    assert_int_equal (arb_queue_size (q), 0);
    //  only catch-all workers: nothing is ever set aside
    for (uint64_t id = 6; id <= 9; id++)
        s_add_named (sched, "q", id, id % 2 ? "a" : "b", 0);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 9);
    assert_int_equal (arb_queue_aside_count (q), 0);
    //  set aside under two names, they come back in their order too
    arb_queue_t *r = arb_sched_queue (sched, "r");
    arb_session_t *picky = s_picky_worker (sched, "c", "r", 1, "c", NULL);
    s_add_named (sched, "r", 10, "a", 0);
    s_add_named (sched, "r", 11, "b", 0);
    s_add_named (sched, "r", 12, "c", 0);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 10);
    assert_int_equal (log.sent[9]->id, 12);
    assert_int_equal (arb_queue_aside_count (r), 2);
    arb_sched_credit (sched, picky, 0, NULL, 0, 0, true);
    s_worker (sched, "any2", "r", 2);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 12);
    assert_int_equal (log.sent[10]->id, 10);
    assert_int_equal (log.sent[11]->id, 11);
    arb_sched_destroy (&sched);
}

//  TAKE gives a worker only tasks it runs; a task removed while set aside
//  (cancelled, expired) leaves its name's heap.
static void
test_take_and_remove_respect_names (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    arb_task_t *x = s_add_named (sched, "q", 1, "x", 0);
    s_add_named (sched, "q", 2, "y", 0);
    s_add_named (sched, "q", 3, "x", 0);
    arb_session_t *w = s_picky_worker (sched, "w", "other", 0, "y", NULL);
    assert_int_equal (arb_sched_take (sched, w, "q", 5, NOW, MONO), 1);
    assert_int_equal (log.sent[0]->id, 2);
    assert_int_equal (arb_queue_aside_count (q), 2);
    arb_sched_finish (sched, &x, ARB_STATE_CANCELLED, NOW);
    assert_int_equal (arb_queue_aside_count (q), 1);
    assert_int_equal (arb_queue_size (q), 1);
    arb_session_t *any = s_worker (sched, "any", "other", 0);
    assert_int_equal (arb_sched_take (sched, any, "q", 5, NOW, MONO), 1);
    assert_int_equal (log.sent[1]->id, 3);
    assert_int_equal (arb_queue_size (q), 0);
    arb_sched_destroy (&sched);
}

//  The heap against a sorted reference, through random pushes and removals.
static bool
s_int_before (const void *a, const void *b, void *arg)
{
    (void) arg;
    return ((const arb_task_t *) a)->priority < ((const arb_task_t *) b)->priority;
}

static size_t *
s_int_slot (void *item)
{
    return &((arb_task_t *) item)->ready_slot;
}

//  A task counts every time it is handed out, releases and lost leases
//  included; a dispatch that could not be sent, or a task taken back by
//  its worker (the same delivery going on), does not count.
static void
test_deliveries (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_session_t *w = s_worker (sched, "w", "q", 1);
    arb_task_t *task = s_add (sched, "q", 1, 0, NOW);
    log.refuse = true;
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (task->delivered, 0);
    log.refuse = false;
    arb_sched_touch_queue (sched, task->queue);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 1);
    assert_int_equal (log.delivered[0], 0);  //  the first time
    assert_int_equal (task->delivered, 1);
    //  released: back at the head, the next dispatch says once before
    arb_sched_unlease (sched, task);
    arb_sched_make_ready (sched, task, true, NOW, MONO);
    arb_sched_credit (sched, w, 0, NULL, 0, 1, false);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 2);
    assert_int_equal (log.delivered[1], 1);
    //  its lease lost, then claimed back by the worker: still two
    uint64_t lease = arb_task_ext (task)->lease;
    arb_sched_unlease (sched, task);
    arb_sched_make_ready (sched, task, false, NOW, MONO);
    arb_task_ext_rw (task)->last_lease = lease;
    assert_int_equal (arb_sched_adopt (sched, task, w, lease, MONO), ARB_ADOPT_LEASED);
    assert_int_equal (task->delivered, 2);
    //  TAKE counts too
    arb_task_t *other = s_add (sched, "q", 2, 0, NOW);
    assert_int_equal (arb_sched_take (sched, w, "q", 5, NOW, MONO), 1);
    assert_int_equal (other->delivered, 1);
    arb_sched_destroy (&sched);
}

//  Consumers of a queue are the sessions subscribed to it, each once, with
//  credit or without (busy).
static void
test_consumer_counts (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    assert_int_equal (arb_sched_consumers (sched, q), 0);
    arb_session_t *gateway = s_worker (sched, "g", "q", 1);
    const char *queues[] = {"q"};
    for (uint32_t sub = 1; sub <= 3; sub++)
        arb_sched_credit (sched, gateway, sub, queues, 1, 5, false);
    s_worker (sched, "idle", "q", 0);
    arb_session_t *busy = s_worker (sched, "busy", "q", 1);
    s_worker (sched, "elsewhere", "r", 4);
    assert_int_equal (arb_sched_consumers (sched, q), 3);
    //  credit used up: still consumers; a subscription ended: not one
    for (uint64_t id = 1; id <= 20; id++)  //  more than the 17 of credit
        s_add (sched, "q", id, 0, NOW);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (arb_session_sub (busy, 0)->credit, 0);
    assert_int_equal (arb_sched_consumers (sched, q), 3);
    arb_sched_credit (sched, busy, 0, NULL, 0, 0, true);
    assert_int_equal (arb_sched_consumers (sched, q), 2);
    //  a queue deleted (emptied) under its consumers stays, theirs still
    s_finish_sent (sched, &log);
    for (uint64_t id = 18; id <= 20; id++) {
        arb_task_t *task = arb_sched_find (sched, id);
        arb_sched_finish (sched, &task, ARB_STATE_CANCELLED, NOW);
    }
    arb_sched_clear_queue (sched, q);
    assert_ptr_equal (arb_sched_find_queue (sched, "q"), q);
    arb_sched_destroy (&sched);
}

//  PEEK sees the ready tasks in dispatch order and takes none; it skips
//  expired tasks and sees nothing of a paused or held queue.
static void
test_peek (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    for (uint64_t id = 1; id <= 20; id++)
        s_add (sched, "q", id, (int32_t) (id % 4), NOW);
    arb_task_ext_rw (arb_sched_find (sched, 3))->expires_ms = NOW + 5;
    arb_task_t *seen[20];
    size_t count = arb_sched_peek (sched, q, seen, 6, NOW + 10, MONO);
    assert_int_equal (count, 6);
    uint64_t expect[] = {7, 11, 15, 19, 2, 6};  //  priority 3 (but 3, expired), then 2
    for (size_t i = 0; i < count; i++)
        assert_int_equal (seen[i]->id, expect[i]);
    assert_int_equal (arb_queue_size (q), 20);
    count = arb_sched_peek (sched, q, seen, 20, NOW + 10, MONO);
    assert_int_equal (count, 19);
    //  the order a worker then gets is the same
    s_worker (sched, "w", "q", 4);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.sent[0]->id, 3);  //  not expired at NOW
    assert_int_equal (log.sent[1]->id, 7);
    arb_queue_settings (q)->paused = true;
    assert_int_equal (arb_sched_peek (sched, q, seen, 6, NOW, MONO), 0);
    arb_queue_settings (q)->paused = false;
    arb_sched_hold_ready (sched, MONO + 100);
    assert_int_equal (arb_sched_peek (sched, q, seen, 6, NOW, MONO), 0);
    assert_int_equal (arb_sched_peek (sched, q, seen, 6, NOW, MONO + 100), 6);
    arb_sched_destroy (&sched);
}

//  PEEK sees the tasks set aside by name too, in their places among the
//  others, as a worker that runs every name would take them.
static void
test_peek_sees_tasks_set_aside (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    for (uint64_t id = 1; id <= 6; id++)
        s_add_named (sched, "q", id, id % 2 ? "resize" : "add", 0);
    s_picky_worker (sched, "a", "q", 1, "add", NULL);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.sent[0]->id, 2);
    assert_true (arb_queue_aside_count (q) > 0);  //  task 1 went past, set aside
    arb_task_t *seen[6];
    assert_int_equal (arb_sched_peek (sched, q, seen, 6, NOW, MONO), 5);
    uint64_t expect[] = {1, 3, 4, 5, 6};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal (seen[i]->id, expect[i]);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 50), 50);
    arb_sched_destroy (&sched);
}

//  Tasks given back to the head keep their age, oldest first, however many
//  newer ones were listed meanwhile (past the backward walk's reach): a
//  Kestrel queue gives back its prefetched items so.
static void
test_given_back_keep_their_age (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    for (uint64_t id = 1; id <= 10; id++)
        s_add (sched, "q", id, 0, NOW + id);
    arb_session_t *w = s_worker (sched, "w", "q", 10);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.count, 10);
    for (uint64_t id = 11; id <= 110; id++)  //  newer, more than the walk
        s_add (sched, "q", id, 0, NOW + 100 + id);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 2000), 2000 - 111);
    for (size_t i = 0; i < 10; i++) {  //  given back, oldest first
        arb_sched_unlease (sched, log.sent[i]);
        arb_sched_make_ready (sched, log.sent[i], true, NOW + 1000, MONO);
    }
    //  the oldest, then each next one, as they are taken again
    for (uint64_t id = 1; id <= 10; id++) {
        assert_int_equal (arb_queue_oldest_ms (q, NOW + 2000), 2000 - id);
        arb_sched_credit (sched, w, 0, NULL, 0, 1, false);
        arb_sched_dispatch (sched, NOW, MONO);
        assert_int_equal (log.sent[log.count - 1]->id, id);
    }
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 2000), 2000 - 111);
    arb_sched_destroy (&sched);
}

//  A queue knows its unfinished tasks and its oldest ready one without a
//  walk of its backlog.
static void
test_queue_lists (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    s_add (sched, "q", 1, 0, NOW);
    s_add (sched, "q", 2, 5, NOW + 100);
    s_add (sched, "other", 3, 0, NOW);
    arb_task_t *waiting = arb_sched_new_task (sched, "q", "job");
    waiting->id = 4;
    waiting->state = ARB_STATE_WAITING;
    arb_sched_add (sched, waiting, NOW, MONO);
    size_t members = 0;
    for (arb_task_t *t = arb_queue_first_task (q); t; t = t->queue_next)
        members++;
    assert_int_equal (members, 3);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 1000), 1000);
    //  the higher priority goes first; the oldest stays
    arb_session_t *w = s_worker (sched, "w", "q", 1);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (log.sent[0]->id, 2);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 1000), 1000);
    //  the oldest goes: only the running and the waiting one are left, none ready
    arb_sched_credit (sched, w, 0, NULL, 0, 1, false);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 1000), 0);
    //  released, it is ready again, and has waited since it first was (a
    //  task given back is no younger for it)
    arb_sched_unlease (sched, log.sent[1]);
    arb_sched_make_ready (sched, log.sent[1], true, NOW + 900, MONO);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 1000), 1000);
    //  a retry (not at the head) is ready anew
    arb_sched_make_ready (sched, log.sent[1], false, NOW + 900, MONO);
    assert_int_equal (arb_queue_oldest_ms (q, NOW + 1000), 100);
    s_finish_sent (sched, &log);
    members = 0;
    for (arb_task_t *t = arb_queue_first_task (q); t; t = t->queue_next)
        members++;
    assert_int_equal (members, 1);
    assert_int_equal (arb_queue_first_task (q)->id, 4);
    arb_sched_destroy (&sched);
}

static void
test_heap_random (void **state)
{
    (void) state;
    arb_heap_t *heap = arb_heap_new (s_int_before, s_int_slot, NULL);
    arb_task_t items[500];
    srand (42);
    for (int i = 0; i < 500; i++) {
        items[i].priority = rand () % 1000;
        items[i].ready_slot = ARB_HEAP_NONE;
        arb_heap_push (heap, &items[i]);
    }
    for (int i = 0; i < 500; i += 3)
        arb_heap_remove (heap, &items[i]);
    items[1].priority = -1;
    arb_heap_update (heap, &items[1]);
    int last = -2;
    size_t popped = 0;
    arb_task_t *item;
    while ((item = (arb_task_t *) arb_heap_pop (heap))) {
        assert_true (item->priority >= last);
        last = item->priority;
        popped++;
    }
    assert_int_equal (popped, 500 - 167);
    arb_heap_destroy (&heap);
}

//  The payload cache keeps a copy of exactly the bytes given, counts them
//  as the allocator holds them, refuses what the budget (1000 bytes here)
//  has no room for, shows its bytes without dropping them, and gives the
//  room back when a copy is dropped or its task ends.
static void
test_payload_cache_counts_real_bytes (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_task_t *a = s_add (sched, "q", 1, 0, NOW);
    arb_task_t *b = s_add (sched, "q", 2, 0, NOW);
    arb_task_t *c = s_add (sched, "q", 3, 0, NOW);
    char payload[450];
    memset (payload, 'p', sizeof (payload));
    assert_true (arb_sched_cache_put (sched, a, payload, sizeof (payload), "h", 1));
    uint64_t one = arb_sched_cache_used (sched);
    assert_true (one > sizeof (payload) + 1);  //  the block's header and the allocator's
    assert_true (arb_sched_cache_put (sched, b, payload, 100, NULL, 0));
    //  a third 450-byte payload would pass 1000 bytes
    assert_false (arb_sched_cache_put (sched, c, payload, sizeof (payload), NULL, 0));
    assert_null (c->cache);
    arb_bin_t p = {NULL, 0}, h = {NULL, 0};
    assert_false (arb_sched_cache_view (sched, c, &p, &h));
    assert_null (p.data);
    assert_true (arb_sched_cache_view (sched, a, &p, &h));
    assert_int_equal (p.size, sizeof (payload));
    assert_memory_equal (p.data, payload, sizeof (payload));
    assert_int_equal (h.size, 1);
    assert_memory_equal (h.data, "h", 1);
    assert_non_null (a->cache);  //  a view keeps the copy
    arb_sched_cache_drop (sched, a);
    assert_null (a->cache);
    assert_true (arb_sched_cache_view (sched, b, &p, &h));
    assert_int_equal (p.size, 100);
    assert_int_equal (h.size, 0);
    arb_sched_cache_drop (sched, b);
    arb_sched_cache_drop (sched, b);  //  dropped already: nothing
    assert_int_equal (arb_sched_cache_used (sched), 0);
    //  a task that ends gives its room back
    assert_true (arb_sched_cache_put (sched, c, payload, sizeof (payload), NULL, 0));
    arb_sched_finish (sched, &c, ARB_STATE_CANCELLED, NOW);
    assert_int_equal (arb_sched_cache_used (sched), 0);
    arb_sched_destroy (&sched);
}

//  The id map against a plain array, through random inserts and removals
//  (backward-shift deletion must keep every probe sequence unbroken),
//  and its walk sees each task once.
//  A map past 512 KiB of slots (arb_bigmem's own mapping): every task
//  found after each growth, then removed to none.
static void
test_taskmap_big (void **state)
{
    (void) state;
    enum {
        N = 100000  //  131,072 slots: 1 MiB
    };
    arb_task_t *tasks = (arb_task_t *) calloc (N, sizeof (arb_task_t));
    assert_non_null (tasks);
    arb_taskmap_t map = {0};
    for (size_t i = 0; i < N; i++) {
        tasks[i].id = (uint64_t) i * 7 + 1;
        arb_taskmap_insert (&map, &tasks[i]);
    }
    assert_true (map.capacity * sizeof (arb_task_t *) >= ((size_t) 512 << 10));
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal (arb_taskmap_find (&map, (uint64_t) i * 7 + 1), &tasks[i]);
    assert_null (arb_taskmap_find (&map, 2));
    for (size_t i = 0; i < N; i += 2)
        arb_taskmap_remove (&map, (uint64_t) i * 7 + 1);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal (arb_taskmap_find (&map, (uint64_t) i * 7 + 1), i % 2 ? &tasks[i] : NULL);
    assert_int_equal (map.count, N / 2);
    arb_taskmap_free (&map);
    assert_int_equal (map.capacity, 0);
    free (tasks);
}

static void
test_taskmap_random (void **state)
{
    (void) state;
    enum {
        N = 5000
    };
    static arb_task_t tasks[N];
    static bool in[N];
    memset (in, 0, sizeof (in));
    arb_taskmap_t map = {0};
    uint32_t seed = 7;
    size_t count = 0;
    for (int round = 0; round < 60000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t i = (seed >> 8) % N;
        //  ids that collide in the low bits, to make long probe runs
        tasks[i].id = (uint64_t) i * 1024 + 1;
        if (in[i]) {
            arb_taskmap_remove (&map, tasks[i].id);
            in[i] = false;
            count--;
        }
        else {
            arb_taskmap_insert (&map, &tasks[i]);
            in[i] = true;
            count++;
        }
        if (round % 997 == 0)
            for (size_t k = 0; k < N; k++)
                assert_ptr_equal (arb_taskmap_find (&map, (uint64_t) k * 1024 + 1),
                                  in[k] ? &tasks[k] : NULL);
    }
    assert_int_equal (map.count, count);
    size_t walked = 0;
    for (arb_task_t *t = arb_taskmap_first (&map); t; t = arb_taskmap_next (&map)) {
        assert_true (in[t - tasks]);
        walked++;
    }
    assert_int_equal (walked, count);
    arb_taskmap_remove (&map, 3);  //  not there: nothing happens
    assert_int_equal (map.count, count);
    arb_taskmap_free (&map);
    assert_null (arb_taskmap_find (&map, 1));
}

//  ---------------------------------------------------------------------
//  The cold backlog, with a journal of a few rows in an array

#define S_ROWS 64

//  The journal the cold hooks read: rows by id (index = id).
typedef struct {
    s_log_t log;  //  first: the dispatch hooks take the struct as their log
    arb_sched_t *sched;
    bool used[S_ROWS];
    int32_t priority[S_ROWS];
    uint8_t state[S_ROWS];
    bool ext[S_ROWS];          //  the row expires: never cold
    bool opts[S_ROWS];         //  the row has options its read restores (timeout, retention)
    uint32_t size[S_ROWS];     //  the row's payload bytes (length (payload))
    uint64_t created[S_ROWS];  //  the row's created_ms
    char queue[S_ROWS][8];
    size_t reads;  //  warm calls
} s_rows_t;

static void
s_thaw_row (s_rows_t *rows, uint64_t id)
{
    arb_task_t row = {0};
    row.id = id;
    row.priority = rows->priority[id];
    row.state = ARB_STATE_READY;
    row.max_attempts = 1;
    row.payload_size = rows->size[id];
    row.created_ms = rows->created[id];
    arb_task_ext_t ext = {.timeout_ms = 1000, .retention_ms = 60000};
    if (rows->opts[id])
        row.ext = &ext;
    arb_task_t *task = arb_sched_task_from_row (rows->sched, &row, rows->queue[id], "job");
    arb_sched_thaw (rows->sched, task, NOW);
}

//  Whether row id sorts at or after (priority, from) in journal order.
static bool
s_row_from (s_rows_t *rows, uint64_t id, int32_t priority, uint64_t from)
{
    return rows->priority[id] < priority || (rows->priority[id] == priority && id >= from);
}

static void
s_warm_rows (void *arg, arb_queue_t *queue, int32_t priority, uint64_t from, size_t max)
{
    s_rows_t *rows = (s_rows_t *) arg;
    rows->reads++;
    bool taken[S_ROWS] = {false};
    size_t count = 0;
    int32_t last_priority = priority;
    uint64_t last_id = from;
    while (count < max) {
        uint64_t best = 0;
        for (uint64_t id = 1; id < S_ROWS; id++)
            if (rows->used[id] && !taken[id] && rows->state[id] == ARB_STATE_READY
                && streq (rows->queue[id], arb_queue_name (queue))
                && s_row_from (rows, id, priority, from)
                && (!best || rows->priority[id] > rows->priority[best]))
                best = id;
        if (!best)
            break;
        taken[best] = true;
        count++;
        last_priority = rows->priority[best];
        last_id = best;
        if (!arb_sched_find_hot (rows->sched, best))
            s_thaw_row (rows, best);
    }
    arb_sched_cold_read (rows->sched, queue, last_priority, last_id, count == max);
}

static arb_task_t *
s_thaw_id (void *arg, uint64_t id)
{
    s_rows_t *rows = (s_rows_t *) arg;
    if (id >= S_ROWS || !rows->used[id] || rows->state[id] != ARB_STATE_READY)
        return NULL;
    s_thaw_row (rows, id);
    return arb_sched_find_hot (rows->sched, id);
}

static arb_sched_t *
s_cold_sched (s_rows_t *rows)
{
    memset (rows, 0, sizeof (*rows));
    arb_sched_config_t config = {
        .liveness_ms = 3000, .cache_bytes = 1000, .epoch = 7, .hot_max = 4};
    arb_sched_hooks_t hooks = {s_dispatch, s_expired, s_warm_rows, s_thaw_id, rows};
    rows->sched = arb_sched_new (&config, &hooks);
    return rows->sched;
}

//  A task submitted: its row, then its record (ext: it expires, which
//  keeps it in memory; opts: a timeout and a retention, which do not).
static arb_task_t *
s_submit_task (
    s_rows_t *rows, const char *queue, uint64_t id, int32_t priority, bool ext, bool opts)
{
    rows->used[id] = true;
    rows->priority[id] = priority;
    rows->state[id] = ARB_STATE_READY;
    rows->ext[id] = ext;
    rows->opts[id] = opts;
    snprintf (rows->queue[id], sizeof (rows->queue[id]), "%s", queue);
    arb_task_t *task = arb_sched_new_task (rows->sched, queue, "job");
    task->id = id;
    task->priority = priority;
    task->state = ARB_STATE_READY;
    task->payload_size = rows->size[id];
    if (ext)
        arb_task_ext_rw (task)->expires_ms = NOW + 3600 * 1000;
    if (opts) {
        arb_task_ext_rw (task)->timeout_ms = 1000;
        arb_task_ext_rw (task)->retention_ms = 60000;
    }
    arb_sched_add (rows->sched, task, NOW, MONO);
    return task;
}

static void
s_submit_row (s_rows_t *rows, const char *queue, uint64_t id, int32_t priority, bool ext)
{
    s_submit_task (rows, queue, id, priority, ext, false);
}

//  A scheduler with hot_max 4 after ten tasks of priority 0 were
//  submitted (ids 1 to 10) and settled: 1 to 4 hot, 5 to 10 cold.
static arb_sched_t *
s_ten_submitted (s_rows_t *rows)
{
    arb_sched_t *sched = s_cold_sched (rows);
    for (uint64_t id = 1; id <= 10; id++)
        s_submit_row (rows, "q", id, 0, false);
    arb_sched_settle (sched);
    return sched;
}

//  Hands everything out to one worker and checks the order; the tasks end.
static void
s_expect_order (s_rows_t *rows, const char *queue, const uint64_t *ids, size_t n)
{
    arb_session_t *w = s_worker (rows->sched, "w", queue, (int32_t) n + 4);
    arb_sched_dispatch (rows->sched, NOW, MONO);
    assert_int_equal (rows->log.count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (rows->log.sent[i]->id, ids[i]);
        rows->state[ids[i]] = ARB_STATE_SUCCEEDED;
        arb_sched_unlease (rows->sched, rows->log.sent[i]);
    }
    s_finish_sent (rows->sched, &rows->log);
    arb_sched_close_session (rows->sched, &w);
}

//  Tasks released to the head of a lower priority than the cold backlog's
//  wait for it: the queue reads the cold tasks back though it holds enough
//  hot ones (the released), since those sort behind. (They ran at a higher
//  priority, and their priority was lowered while they ran.)
static void
test_released_low_priority_waits_for_the_cold (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_cold_sched (&rows);
    for (uint64_t id = 1; id <= 3; id++)
        s_submit_row (&rows, "q", id, 1, false);
    arb_sched_settle (sched);
    arb_session_t *w = s_worker (sched, "w0", "q", 3);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (rows.log.count, 3);
    arb_task_t *sent[3] = {rows.log.sent[0], rows.log.sent[1], rows.log.sent[2]};
    rows.log.count = 0;
    for (uint64_t id = 4; id <= 13; id++)
        s_submit_row (&rows, "q", id, 0, false);
    arb_sched_settle (sched);
    assert_int_equal (arb_sched_cold_count (sched), 6);
    for (size_t i = 0; i < 3; i++) {
        arb_sched_unlease (sched, sent[i]);
        sent[i]->priority = -1;
        rows.priority[sent[i]->id] = -1;
        arb_sched_make_ready (sched, sent[i], true, NOW + 1, MONO);
    }
    arb_sched_close_session (sched, &w);
    uint64_t order[] = {4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 1, 2, 3};
    s_expect_order (&rows, "q", order, 13);
    arb_sched_destroy (&sched);
}

//  Past hot_max, new tasks go cold; a higher priority stays hot and goes
//  first; a task with options behind the backlog stays in memory but
//  still waits its turn; a task released to the head goes first.
static void
test_cold_backlog_keeps_dispatch_order (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_ten_submitted (&rows);
    arb_queue_t *q = arb_sched_find_queue (sched, "q");
    assert_int_equal (arb_sched_task_count (sched), 4);
    assert_int_equal (arb_sched_cold_count (sched), 6);
    assert_int_equal (arb_queue_cold (q), 6);
    assert_int_equal (arb_queue_size (q), 10);
    assert_int_equal (arb_queue_counts (q)[ARB_STATE_READY], 10);
    s_submit_row (&rows, "q", 11, 5, false);   //  before the backlog: hot
    s_submit_row (&rows, "q", 12, 0, true);    //  it expires: hot, but behind it
    s_submit_row (&rows, "q", 13, 0, false);   //  behind it: cold
    s_submit_row (&rows, "q", 14, -1, false);  //  lower: cold
    s_submit_row (&rows, "q", 15, 0, false);   //  cold, before 14
    arb_sched_settle (sched);
    assert_int_equal (arb_sched_cold_count (sched), 9);
    assert_int_equal (arb_queue_counts (q)[ARB_STATE_READY], 15);
    uint64_t order[] = {11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 14};
    s_expect_order (&rows, "q", order, 15);
    assert_int_equal (arb_sched_cold_count (sched), 0);
    assert_int_equal (arb_queue_counts (q)[ARB_STATE_READY], 0);
    assert_true (rows.reads > 1);
    arb_sched_destroy (&sched);
}

//  A task whose options its row keeps (a timeout, a retention: what the
//  gateway's tasks have) goes cold as a task without, and comes back with
//  them.
static void
test_cold_with_options (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_ten_submitted (&rows);
    s_submit_task (&rows, "q", 11, 0, false, true);
    arb_sched_settle (sched);
    assert_int_equal (arb_sched_cold_count (sched), 7);
    assert_null (arb_sched_find_hot (sched, 11));
    arb_task_t *task = arb_sched_find (sched, 11);
    assert_non_null (task);
    assert_int_equal (arb_task_ext (task)->timeout_ms, 1000);
    assert_int_equal (arb_task_ext (task)->retention_ms, 60000);
    uint64_t order[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    s_expect_order (&rows, "q", order, 11);
    arb_sched_destroy (&sched);
}

//  A cold task found by id is read back, in its place: the others keep
//  their order around it.
static void
test_cold_task_found_by_id (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_ten_submitted (&rows);
    assert_null (arb_sched_find_hot (sched, 8));
    arb_task_t *task = arb_sched_find (sched, 8);
    assert_non_null (task);
    assert_int_equal (task->state, ARB_STATE_READY);
    assert_int_equal (arb_sched_cold_count (sched), 5);
    assert_ptr_equal (arb_sched_find_hot (sched, 8), task);
    //  it ends (cancelled) while the rest wait
    rows.state[8] = ARB_STATE_CANCELLED;
    arb_sched_finish (sched, &task, ARB_STATE_CANCELLED, NOW);
    arb_queue_t *q = arb_sched_find_queue (sched, "q");
    assert_int_equal (arb_queue_counts (q)[ARB_STATE_READY], 9);
    assert_null (arb_sched_find (sched, 8));
    //  a task found by id that sorts after the backlog's first waits its turn
    assert_non_null (arb_sched_find (sched, 10));
    arb_task_t *first[9];
    assert_int_equal (arb_sched_peek (sched, q, first, 9, NOW, MONO), 9);
    uint64_t order[] = {1, 2, 3, 4, 5, 6, 7, 9, 10};
    for (size_t i = 0; i < 9; i++)
        assert_int_equal (first[i]->id, order[i]);
    s_expect_order (&rows, "q", order, 9);
    arb_sched_destroy (&sched);
}

//  Start-up: plain ready rows stay cold, counted; the first pop reads the
//  head back in order. A queue-wide operation reads them all back.
static void
test_cold_rows_at_start (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_cold_sched (&rows);
    arb_sched_set_loading (sched, true);
    int32_t priorities[] = {0, 0, 3, 0, 3, 0, 1, 0};
    for (uint64_t id = 1; id <= 8; id++) {
        rows.used[id] = true;
        rows.priority[id] = priorities[id - 1];
        rows.state[id] = ARB_STATE_READY;
        snprintf (rows.queue[id], sizeof (rows.queue[id]), "q");
        arb_task_t row = {.id = id, .priority = priorities[id - 1], .state = ARB_STATE_READY};
        assert_true (arb_sched_add_cold (sched, &row, "q", NOW));
    }
    arb_sched_set_loading (sched, false);
    arb_queue_t *q = arb_sched_find_queue (sched, "q");
    assert_int_equal (arb_sched_task_count (sched), 0);
    assert_int_equal (arb_queue_size (q), 8);
    assert_int_equal (arb_queue_counts (q)[ARB_STATE_READY], 8);
    arb_sched_thaw_all (sched, q);
    assert_int_equal (arb_sched_task_count (sched), 8);
    assert_int_equal (arb_sched_cold_count (sched), 0);
    uint64_t order[] = {3, 5, 7, 1, 2, 4, 6, 8};
    s_expect_order (&rows, "q", order, 8);
    arb_sched_destroy (&sched);
}

//  Cold tasks count their bytes as hot ones do: through going cold,
//  being read back in order or by id, dispatch, and a queue-wide end;
//  rows loaded at start count theirs.
static void
test_cold_ready_bytes (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_cold_sched (&rows);
    for (uint64_t id = 1; id <= 10; id++) {
        rows.size[id] = (uint32_t) id * 10;
        s_submit_row (&rows, "q", id, 0, false);
    }
    arb_sched_settle (sched);
    arb_queue_t *q = arb_sched_find_queue (sched, "q");
    assert_int_equal (arb_queue_cold (q), 6);
    assert_int_equal (*arb_queue_ready_bytes (q), 550);
    assert_int_equal (arb_queue_cold_bytes (q), 50 + 60 + 70 + 80 + 90 + 100);
    //  one read back by id, then the first five handed out
    assert_non_null (arb_sched_find (sched, 8));
    assert_int_equal (arb_queue_cold_bytes (q), 450 - 80);
    arb_session_t *w = s_worker (sched, "w", "q", 5);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (rows.log.count, 5);
    assert_int_equal (*arb_queue_ready_bytes (q), 550 - 150);
    //  the rest end in one statement: cold ones counted out at once
    for (size_t i = 0; i < rows.log.count; i++)
        arb_sched_unlease (sched, rows.log.sent[i]);
    s_finish_sent (sched, &rows.log);
    arb_sched_close_session (sched, &w);
    uint64_t hot = 0;
    for (arb_task_t *task = arb_queue_first_task (q); task; task = task->queue_next)
        hot += task->payload_size;
    assert_int_equal (*arb_queue_ready_bytes (q), hot + arb_queue_cold_bytes (q));
    arb_sched_end_cold (sched, q, ARB_STATE_CANCELLED, NOW);
    assert_int_equal (*arb_queue_ready_bytes (q), hot);
    arb_sched_destroy (&sched);

    //  start-up: cold rows count their bytes, read back or not
    sched = s_cold_sched (&rows);
    arb_sched_set_loading (sched, true);
    for (uint64_t id = 1; id <= 8; id++) {
        rows.used[id] = true;
        rows.state[id] = ARB_STATE_READY;
        rows.size[id] = 7;
        snprintf (rows.queue[id], sizeof (rows.queue[id]), "q");
        arb_task_t row = {.id = id, .state = ARB_STATE_READY, .payload_size = 7};
        assert_true (arb_sched_add_cold (sched, &row, "q", NOW));
    }
    arb_sched_set_loading (sched, false);
    q = arb_sched_find_queue (sched, "q");
    assert_int_equal (*arb_queue_ready_bytes (q), 56);
    arb_sched_thaw_all (sched, q);
    assert_int_equal (arb_queue_cold_bytes (q), 0);
    assert_int_equal (*arb_queue_ready_bytes (q), 56);
    arb_sched_destroy (&sched);
}

//  The oldest ready task's age after a start counts from the rows, cold
//  or loaded, not from the start; a cold task read back keeps its age,
//  and goes before the tasks listed after it became ready.
static void
test_oldest_ready_after_start (void **state)
{
    (void) state;
    s_rows_t rows;
    arb_sched_t *sched = s_cold_sched (&rows);
    arb_sched_set_loading (sched, true);
    for (uint64_t id = 1; id <= 40; id++) {
        rows.used[id] = true;
        rows.state[id] = ARB_STATE_READY;
        rows.created[id] = NOW - 50000 + id * 1000;  //  id 1: 49 s ago; id 40: 10 s ago
        snprintf (rows.queue[id], sizeof (rows.queue[id]), "q");
        arb_task_t row = {.id = id, .state = ARB_STATE_READY, .created_ms = rows.created[id]};
        assert_true (arb_sched_add_cold (sched, &row, "q", NOW));
    }
    //  a task loaded into memory: its age from its row too
    arb_task_t *loaded = arb_sched_new_task (sched, "r", "job");
    loaded->id = 50;
    loaded->state = ARB_STATE_READY;
    loaded->created_ms = NOW - 4000;
    arb_sched_add (sched, loaded, NOW, MONO);
    arb_sched_set_loading (sched, false);
    arb_queue_t *q = arb_sched_find_queue (sched, "q");
    assert_int_equal (arb_queue_oldest_ms (q, NOW), 49000);
    assert_int_equal (arb_queue_oldest_ms (arb_sched_find_queue (sched, "r"), NOW), 4000);
    //  the head read back, one handed out: task 2 is the oldest
    arb_session_t *w = s_worker (sched, "w", "q", 1);
    arb_sched_dispatch (sched, NOW, MONO);
    assert_int_equal (rows.log.count, 1);
    assert_int_equal (arb_queue_oldest_ms (q, NOW), 48000);
    //  every task read back handed out: the cold ones left are no older
    //  than the last read back
    size_t hot = arb_queue_hot_size (q);
    arb_sched_credit (sched, w, 0, NULL, 0, (int32_t) hot, false);
    arb_sched_dispatch (sched, NOW, MONO);
    uint64_t last = rows.log.sent[rows.log.count - 1]->id;
    assert_int_equal (last, 1 + hot);
    assert_true (arb_queue_cold (q) > 0);
    assert_int_equal (arb_queue_oldest_ms (q, NOW), 50000 - (last + 1) * 1000);
    arb_sched_destroy (&sched);
}

//  A task that became ready before those listed last goes before them
//  (a few places back at most), so the first listed stays the oldest.
static void
test_ready_list_by_time (void **state)
{
    (void) state;
    s_log_t log;
    arb_sched_t *sched = s_sched (&log, 0);
    arb_queue_t *q = arb_sched_queue (sched, "q");
    arb_task_t tasks[4];
    memset (tasks, 0, sizeof (tasks));
    uint64_t listed[] = {NOW - 100, NOW - 50, NOW - 300, NOW - 200};
    for (size_t i = 0; i < 4; i++) {
        tasks[i].listed_ms = listed[i];
        arb_queue_link_ready (q, &tasks[i]);
    }
    uint64_t oldest[] = {300, 200, 100, 50};
    arb_task_t *order[] = {&tasks[2], &tasks[3], &tasks[0], &tasks[1]};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal (arb_queue_oldest_ms (q, NOW), oldest[i]);
        arb_queue_unlink_ready (q, order[i]);
    }
    assert_int_equal (arb_queue_oldest_ms (q, NOW), 0);
    arb_sched_destroy (&sched);
}

//  With aging, a queue keeps everything in memory.
static void
test_cold_never_with_aging (void **state)
{
    (void) state;
    s_rows_t rows;
    memset (&rows, 0, sizeof (rows));
    arb_sched_config_t config = {.aging_ms = 1000, .liveness_ms = 3000, .epoch = 7, .hot_max = 4};
    arb_sched_hooks_t hooks = {s_dispatch, s_expired, s_warm_rows, s_thaw_id, &rows};
    rows.sched = arb_sched_new (&config, &hooks);
    for (uint64_t id = 1; id <= 10; id++)
        s_submit_row (&rows, "q", id, 0, false);
    arb_sched_settle (rows.sched);
    assert_int_equal (arb_sched_task_count (rows.sched), 10);
    assert_int_equal (arb_sched_cold_count (rows.sched), 0);
    arb_sched_destroy (&rows.sched);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_priority_then_fifo),
        cmocka_unit_test (test_early_pass_hands_out_committed_tasks_only),
        cmocka_unit_test (test_early_pass_leaves_a_held_session_for_after_the_commit),
        cmocka_unit_test (test_released_task_goes_first),
        cmocka_unit_test (test_released_tasks_keep_their_order),
        cmocka_unit_test (test_released_task_keeps_to_its_priority),
        cmocka_unit_test (test_released_low_priority_waits_for_the_cold),
        cmocka_unit_test (test_aging),
        cmocka_unit_test (test_credit_is_never_exceeded),
        cmocka_unit_test (test_workers_share_round_robin),
        cmocka_unit_test (test_round_robin_holds_across_early_passes),
        cmocka_unit_test (test_leases),
        cmocka_unit_test (test_ids_first),
        cmocka_unit_test (test_array_grow),
        cmocka_unit_test (test_adopt_and_recovery_hold),
        cmocka_unit_test (test_adopt_only_what_was_held),
        cmocka_unit_test (test_lease_expiry_by_liveness),
        cmocka_unit_test (test_session_marks_and_steps),
        cmocka_unit_test (test_timers),
        cmocka_unit_test (test_timers_fire_in_time_order),
        cmocka_unit_test (test_max_running_and_pause),
        cmocka_unit_test (test_early_pass_waits_for_a_loosened_limit),
        cmocka_unit_test (test_rate_limit),
        cmocka_unit_test (test_name_limit),
        cmocka_unit_test (test_names_reach_a_worker_that_runs_them),
        cmocka_unit_test (test_unhandled_task_waits_for_a_handler),
        cmocka_unit_test (test_busy_names_hold_back_nothing),
        cmocka_unit_test (test_set_aside_tasks_keep_their_place),
        cmocka_unit_test (test_take_and_remove_respect_names),
        cmocka_unit_test (test_expired_tasks_are_not_dispatched),
        cmocka_unit_test (test_failed_send_puts_task_back),
        cmocka_unit_test (test_counts_follow_states),
        cmocka_unit_test (test_ready_bytes_follow_states),
        cmocka_unit_test (test_deliveries),
        cmocka_unit_test (test_consumer_counts),
        cmocka_unit_test (test_peek),
        cmocka_unit_test (test_peek_sees_tasks_set_aside),
        cmocka_unit_test (test_queue_lists),
        cmocka_unit_test (test_given_back_keep_their_age),
        cmocka_unit_test (test_heap_random),
        cmocka_unit_test (test_payload_cache_counts_real_bytes),
        cmocka_unit_test (test_taskmap_random),
        cmocka_unit_test (test_taskmap_big),
        cmocka_unit_test (test_cold_backlog_keeps_dispatch_order),
        cmocka_unit_test (test_cold_task_found_by_id),
        cmocka_unit_test (test_cold_with_options),
        cmocka_unit_test (test_cold_rows_at_start),
        cmocka_unit_test (test_cold_never_with_aging),
        cmocka_unit_test (test_cold_ready_bytes),
        cmocka_unit_test (test_oldest_ready_after_start),
        cmocka_unit_test (test_ready_list_by_time),
    };
    return cmocka_run_group_tests_name ("sched", tests, NULL, NULL);
}
