/*  arb_queue.h — one named queue: its ready tasks in dispatch order, its
    settings and its counters.

    Dispatch order: by priority, highest first; within a priority,
    released tasks first (they go back to the head of their priority, each
    in its own place: it keeps its arrival), then first come first served.
    A released task never overtakes a higher priority (RabbitMQ puts a
    requeued message back in its place among its priority's). With aging
    (aging_ms > 0) a task gains one priority level for every aging_ms it
    waits, so a steady stream of high-priority work cannot starve the rest
    forever. Because every waiting task ages at the same rate, the order
    of two tasks never changes while they wait: comparing
    priority * aging_ms - ready_ms is the same as comparing their aged
    priorities at any moment, so the heap's keys are fixed.

    The queue also keeps the consumers (worker subscriptions) that take
    from it, as borrowed opaque pointers the scheduler hands round-robin.

    Two intrusive lists through the tasks (O(1) to join or leave) let a
    queue answer without a walk of the whole backlog: its unfinished tasks
    (queue-wide operations visit only the queue's own), and its ready
    tasks in the order they became ready (the oldest is the first).

    The cold backlog (issue 11: a million queued tasks in 100 MiB). A
    queue keeps only its head in memory: at most about hot_max ready
    tasks (arb_sched_config_t), plus any task that cannot be cold; the
    rest of its ready tasks are cold: their rows are in the journal
    (state ready) and they have no record, no id-map slot and no heap
    slot, only a count here. A task may be cold only if the journal row
    says all there is of it: ready, nothing in ext but options the row
    keeps (arb_task_ext_is_options: no expiry or delay, no lease past or
    present, no workflow links), no dependents, not released
    to the head, not set aside or parked, attempts, losses and deliveries
    as the journal has them. Queues with aging (aging_ms > 0) keep everything in
    memory: an aged key depends on the time a task became ready, which
    the journal does not hold.

    Order across hot and cold: the key of a task is (priority, seq), and
    seq is derived from the task's id (arb_queue_seq): a task that
    becomes ready with an id above every id its queue made ready before
    (a new submit) gets id << ARB_SEQ_SHIFT; any other (a retry, a
    delayed start, a task given back) gets the highest id seen so far
    shifted, plus a count of such arrivals since, so it still goes after
    everything that came before it. So a cold task's key is known from
    its row alone, and the journal's order (priority DESC, id) is the
    queue's order. Every cold task sorts at or after cold_from; a hot task
    may sort after it too (a task with options submitted behind the
    backlog, or a cold task read back by id): before a pop, a queue whose
    first hot task is not before cold_from, or that holds fewer than the
    low-water mark of hot tasks, reads the next cold tasks back in order
    (its warm callback: the scheduler's, which reads the journal) until
    its first hot task comes first. A new ready task goes cold (after its
    turn: arb_sched.h) only behind everything hot or cold, so nothing
    ever overtakes the backlog that would not have overtaken it in memory.

    Owned by the scheduler, in the broker's loop thread.
*/

#ifndef ARB_QUEUE_H
#define ARB_QUEUE_H

#include "arb_limit.h"
#include "arb_task.h"

#define ARB_AGING_MAX_MS (1000ull * 1000 * 1000)  //  keeps priority * aging within int64

//  A ready task's seq is its id (or its queue's highest id) shifted by
//  this, plus a count of arrivals with lower ids: ids up to 2^44,
//  2^20 - 1 such arrivals between two new ids before their order is FIFO
//  no more (they tie, and the heap takes them in any order).
#define ARB_SEQ_SHIFT 20

//  Settings stored under meta key "queue.<name>".
typedef struct {
    bool paused;
    uint64_t retention_ms;  //  0: broker default
    int on_failure;         //  ARB_ON_FAILURE_*: what a failed attempt does
    bool declared;          //  QUEUE declare: kept (and listed) while empty, until deleted
    //  Bounds on its ready tasks (0: none): a submit that takes the queue
    //  over either drops its oldest ready tasks, or with reject the new
    //  ones that do not fit are refused (arb_life_hold_bounds)
    uint64_t max_ready;        //  ready tasks
    uint64_t max_ready_bytes;  //  their payload bytes (arb_queue_ready_bytes)
    bool reject;               //  overflow: refuse the new, not drop the oldest
} arb_queue_settings_t;

#define ARB_ON_FAILURE_RETRY 0  //  retry with the task's backoff, dead when attempts run out
#define ARB_ON_FAILURE_HEAD  1  //  back to the head of the queue (Arbeiter)
#define ARB_ON_FAILURE_DEAD  2  //  dead at once

arb_queue_t *arb_queue_new (const char *name, uint64_t aging_ms);
void arb_queue_destroy (arb_queue_t **self_p);

const char *arb_queue_name (const arb_queue_t *self);

//  Ready tasks. They wait in one heap, in dispatch order, except those
//  set aside: a consumer that does not run their task name came to them
//  before any consumer that does (workers may declare the names they run).
//  Those wait in a heap of their name, in the same order, where a consumer
//  that runs the name finds them in their place (arb_queue_pop_for). A
//  task is set aside at most once on its way out of the queue, and while
//  nothing is aside (every consumer runs every name) popping costs what it
//  always did.
void arb_queue_push (arb_queue_t *self, arb_task_t *task);
//  The first ready task of any name, or NULL.
arb_task_t *arb_queue_pop (arb_queue_t *self);
//  Whether a consumer runs tasks of this name.
typedef bool (arb_queue_accept_fn) (void *arg, const char *name);
//  The first ready task whose name accept takes, or NULL; the tasks ahead
//  of it that accept refuses are set aside on the way. Costs a look at
//  the first task of each name set aside, not a walk through the tasks.
arb_task_t *arb_queue_pop_for (arb_queue_t *self, arb_queue_accept_fn *accept, void *arg);
void arb_queue_remove (arb_queue_t *self, arb_task_t *task);
//  Ready tasks, set aside or not, cold or not; those in memory; and those
//  set aside.
size_t arb_queue_size (arb_queue_t *self);
size_t arb_queue_hot_size (arb_queue_t *self);
size_t arb_queue_aside_count (arb_queue_t *self);

//  Fills tasks with up to max ready tasks in dispatch order, without
//  taking them: those keep (NULL: all) says yes to, of at most scan
//  looked at. Returns how many.
size_t arb_queue_first (arb_queue_t *self,
                        arb_task_t **tasks,
                        size_t max,
                        size_t scan,
                        bool (*keep) (void *task, void *arg),
                        void *arg);

//  How long the oldest ready task has waited since it last became ready (a
//  task given back starts again), in ms at now_ms (Unix), or 0: the first
//  of the ready list, or the cold backlog's oldest. Tasks loaded at
//  start-up count from their rows (arb_task_ready_since), not the load.
//  O(1).
uint64_t arb_queue_oldest_ms (arb_queue_t *self, uint64_t now_ms);

//  The queue's unfinished tasks: a task joins when the scheduler takes
//  it and leaves when it ends. Walk from first through task->queue_next.
void arb_queue_link_task (arb_queue_t *self, arb_task_t *task);
void arb_queue_unlink_task (arb_queue_t *self, arb_task_t *task);
arb_task_t *arb_queue_first_task (arb_queue_t *self);

//  The ready tasks in the order they became ready (listed_ms): link when
//  a task becomes ready (it goes last, or back among those listed before
//  it if it became ready earlier: a task read back from the cold backlog,
//  loaded, or given back to the head; from the front when that is far
//  back, so that the oldest is first), unlink when it stops being ready (a
//  task not linked is left alone). A task held back by its name's limit
//  stays linked: it is still ready.
void arb_queue_link_ready (arb_queue_t *self, arb_task_t *task);
void arb_queue_unlink_ready (arb_queue_t *self, arb_task_t *task);

//  The cold backlog (above). warm is called with arg when the queue needs
//  its next cold tasks, in order: it reads them (arb_sched_thaw for each),
//  then says where it stopped (arb_queue_cold_read). low: the hot ready
//  tasks below which a pop warms first. A queue without warm keeps no
//  cold task.
typedef void (arb_queue_warm_fn) (void *arg, arb_queue_t *queue);
void arb_queue_set_warm (arb_queue_t *self, arb_queue_warm_fn *warm, void *arg, size_t low);
//  Whether the queue may have cold tasks (a warm callback, no aging).
bool arb_queue_keeps_cold (arb_queue_t *self);
//  The seq of a task of id becoming ready now (above); exact: id's own
//  (start-up, or a cold task read back), whatever came before.
uint64_t arb_queue_seq (arb_queue_t *self, uint64_t id, bool exact);
//  Cold tasks now, and the key (priority, lowest id) every one is at or after.
uint64_t arb_queue_cold (arb_queue_t *self);
void arb_queue_cold_from (arb_queue_t *self, int32_t *priority, uint64_t *id);
//  A task pushed that is not fresh (arb_sched settles fresh ones): the
//  queue keeps a bound of its hot keys, which a new cold task must follow.
void arb_queue_note_hot (arb_queue_t *self, arb_task_t *task);
//  Whether a fresh plain ready task may go cold now: behind every cold
//  task, or behind every hot one of a queue holding hot_max before it
//  (not counting the fresh tasks still to be looked at after it, which
//  the scheduler counts in arb_queue_fresh while it settles).
size_t *arb_queue_fresh (arb_queue_t *self);
bool arb_queue_may_freeze (arb_queue_t *self, arb_task_t *task, size_t hot_max);
//  Takes a task out of the ready heap and list, counted cold; the caller
//  frees its record.
void arb_queue_freeze (arb_queue_t *self, arb_task_t *task);
//  One more cold task (start-up: its row, not loaded), of payload_size bytes.
//  ready_ms: the Unix ms it became ready (arb_task_ready_since).
void arb_queue_add_cold (
    arb_queue_t *self, int32_t priority, uint64_t id, uint32_t payload_size, uint64_t ready_ms);
//  A cold task read back (its record made, seq exact): hot again.
void arb_queue_thaw (arb_queue_t *self, arb_task_t *task);
//  After a batch read back: the last row read; more: the batch was full
//  (else the journal has no cold task left: none is counted cold).
void arb_queue_cold_read (arb_queue_t *self, int32_t priority, uint64_t id, bool more);
//  Forgets the cold tasks: their rows ended in one statement (queue-wide);
//  the caller takes them out of the counts (arb_sched_end_cold).
void arb_queue_drop_cold (arb_queue_t *self);

arb_queue_settings_t *arb_queue_settings (arb_queue_t *self);

//  Counts by state (index = arb_state_t), kept by the scheduler.
uint64_t *arb_queue_counts (arb_queue_t *self);

//  The payload bytes of its ready tasks, hot and cold (what the ready
//  count counts: AMQP's x-max-length-bytes), kept by the scheduler with
//  the counts; of those, the cold tasks' bytes, kept by the queue (freeze,
//  add_cold, thaw, drop_cold).
uint64_t *arb_queue_ready_bytes (arb_queue_t *self);
uint64_t arb_queue_cold_bytes (arb_queue_t *self);

//  Running cap and rate limit of the queue (its running count too).
arb_limit_t *arb_queue_limit (arb_queue_t *self);

//  Whether the queue holds nothing worth keeping in memory: no task, no
//  consumer, no setting, no count. Such a queue may be forgotten.
bool arb_queue_is_idle (arb_queue_t *self);

//  Whether any of its settings or limits is set (not the default): such a
//  queue is kept, and listed, while it holds nothing.
bool arb_queue_has_settings (arb_queue_t *self);

//  Whether the queue has a bound on its ready tasks (max_ready or
//  max_ready_bytes), and whether it is over one now.
bool arb_queue_is_bounded (arb_queue_t *self);
bool arb_queue_is_over_bound (arb_queue_t *self);

//  Ready tasks its bounds dropped (drop-head) since the broker started, or
//  since the queue was last forgotten (Kestrel's `discarded`).
uint64_t *arb_queue_dropped (arb_queue_t *self);

//  Tasks finished per second over the last minute (ring of 60 counters).
void arb_queue_count_done (arb_queue_t *self, uint64_t now_ms);
uint64_t arb_queue_done_last_minute (arb_queue_t *self, uint64_t now_ms);

//  Fills counts (ARB_DONE_SECONDS numbers) with the tasks finished in each
//  of the last ARB_DONE_SECONDS seconds, oldest first, the current second
//  (still counting) last.
void arb_queue_done_seconds (arb_queue_t *self, uint64_t now_ms, uint64_t *counts);

//  Consumers: borrowed opaque pointers (the scheduler's subscriptions).
void arb_queue_add_consumer (arb_queue_t *self, void *consumer);
void arb_queue_remove_consumer (arb_queue_t *self, void *consumer);
size_t arb_queue_consumer_count (arb_queue_t *self);
void *arb_queue_consumer_at (arb_queue_t *self, size_t index);
//  The next consumer round-robin, or NULL if none.
void *arb_queue_next_consumer (arb_queue_t *self);
//  The consumer arb_queue_next_consumer just returned keeps its turn: it
//  is returned again next, for a visit that handed it nothing because
//  the queue had nothing to give yet (not because of the consumer).
void arb_queue_keep_turn (arb_queue_t *self);

//  The scheduler's mark: this queue has work to match with credit.
bool arb_queue_dirty (arb_queue_t *self);
void arb_queue_set_dirty (arb_queue_t *self, bool dirty);

//  Hands out nothing before until_ms (monotonic): after a restart, workers
//  get that long to claim the tasks they still run (arb_sched_hold_ready).
void arb_queue_hold (arb_queue_t *self, uint64_t until_ms);
uint64_t arb_queue_held_until (arb_queue_t *self);

#endif
