/*  arb_queue.h — one named queue: its ready tasks in dispatch order, its
    settings and its counters.

    Dispatch order: released tasks first (they go back to the head, each
    in its own place: it keeps its arrival), then by priority, highest
    first, then first come first served. With aging
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

    Owned by the scheduler, in the broker's loop thread.
*/

#ifndef ARB_QUEUE_H
#define ARB_QUEUE_H

#include "arb_limit.h"
#include "arb_task.h"

#define ARB_AGING_MAX_MS (1000ull * 1000 * 1000)  //  keeps priority * aging within int64

//  Settings stored under meta key "queue.<name>".
typedef struct {
    bool paused;
    uint64_t retention_ms;  //  0: broker default
    int on_failure;         //  ARB_ON_FAILURE_*: what a failed attempt does
    bool declared;          //  QUEUE declare: kept (and listed) while empty, until deleted
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
//  Ready tasks, set aside or not; and those set aside.
size_t arb_queue_size (arb_queue_t *self);
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

//  How long the ready task that joined the ready list first has waited
//  since it last became ready (a task given back starts again), in ms at
//  now_ms (Unix), or 0. O(1).
uint64_t arb_queue_oldest_ms (arb_queue_t *self, uint64_t now_ms);

//  The queue's unfinished tasks: a task joins when the scheduler takes
//  it and leaves when it ends. Walk from first through task->queue_next.
void arb_queue_link_task (arb_queue_t *self, arb_task_t *task);
void arb_queue_unlink_task (arb_queue_t *self, arb_task_t *task);
arb_task_t *arb_queue_first_task (arb_queue_t *self);

//  The ready tasks in the order they became ready: link when a task
//  becomes ready (it goes last), unlink when it stops being ready (a
//  task not linked is left alone). A task held back by its name's limit
//  stays linked: it is still ready.
void arb_queue_link_ready (arb_queue_t *self, arb_task_t *task);
void arb_queue_unlink_ready (arb_queue_t *self, arb_task_t *task);

arb_queue_settings_t *arb_queue_settings (arb_queue_t *self);

//  Counts by state (index = arb_state_t), kept by the scheduler.
uint64_t *arb_queue_counts (arb_queue_t *self);

//  Running cap and rate limit of the queue (its running count too).
arb_limit_t *arb_queue_limit (arb_queue_t *self);

//  Whether the queue holds nothing worth keeping in memory: no task, no
//  consumer, no setting, no count. Such a queue may be forgotten.
bool arb_queue_is_idle (arb_queue_t *self);

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

//  The scheduler's mark: this queue has work to match with credit.
bool arb_queue_dirty (arb_queue_t *self);
void arb_queue_set_dirty (arb_queue_t *self, bool dirty);

//  Hands out nothing before until_ms (monotonic): after a restart, workers
//  get that long to claim the tasks they still run (arb_sched_hold_ready).
void arb_queue_hold (arb_queue_t *self, uint64_t until_ms);
uint64_t arb_queue_held_until (arb_queue_t *self);

#endif
