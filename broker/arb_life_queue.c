/*  arb_life_queue.c — the task lifecycle's work on final tasks and whole
    queues: the retention sweep, DELETE of final tasks (by id, or by state,
    queue and age), and cancelling, purging, deleting and peeking at a
    queue; see arb_life.h. The rest of the lifecycle is in arb_life.c.
*/

#include "arb_life_priv.h"

//  How long the sweep leaves a final task that tasks not yet ended depend
//  on before it looks again (a read of its children each time).
#define ARB_PARENT_RECHECK_MS 60000

//  ---------------------------------------------------------------------
//  Retention

void
arb_life_uncount (arb_queue_t *queue, int state)
{
    if (queue && state > 0 && state <= ARB_STATE_MAX && arb_queue_counts (queue)[state])
        arb_queue_counts (queue)[state]--;
}

//  A final task of the queue named leaves the journal: it is counted no more.
static void
s_uncount (arb_life_t *self, const char *queue, int state)
{
    arb_life_uncount (queue ? arb_sched_find_queue (self->sched, queue) : NULL, state);
}

//  Whether a final task has children that have not ended: they will read
//  its state and result (a pipe's next step, its input), so it stays.
static int
s_has_open_children (arb_life_t *self, uint64_t id, bool *open)
{
    arb_vec_t children = {0};
    *open = false;
    int rc = arb_journal_children (self->journal, id, &children);
    uint64_t child, kind;
    while (rc == 0 && !*open && arb_vec_shift (&children, &child)
           && arb_vec_shift (&children, &kind))
        *open = arb_sched_find (self->sched, child) != NULL;
    arb_vec_free (&children);
    return rc;
}

//  Whether a final task may go: not while tasks that have not ended depend
//  on it (they will read its state and result when they start: a DAG's
//  children, a pipe's next step). One that goes is counted no more. 0, or
//  -1 if its children could not be read (then it stays).
static int
s_final_goes (
    arb_life_t *self, uint64_t id, const char *queue, int state, bool has_children, bool *goes)
{
    bool open = false;
    *goes = false;
    if (has_children && s_has_open_children (self, id, &open))
        return -1;
    *goes = !open;
    if (*goes)
        s_uncount (self, queue, state);
    return 0;
}

//  A final task whose purge time has come: it goes unless it must stay
//  (s_final_goes), and then arb_journal_purge moves its purge time on; a
//  failed read keeps it too, for a later sweep.
static bool
s_purged (void *arg, uint64_t id, const char *queue, int state, bool has_children)
{
    bool goes;
    return s_final_goes ((arb_life_t *) arg, id, queue, state, has_children, &goes) || !goes;
}

int
arb_life_sweep (arb_life_t *self, size_t batch)
{
    int purged = arb_journal_purge (self->journal, self->clock->now_ms, batch, self->next_id,
                                    self->clock->now_ms + ARB_PARENT_RECHECK_MS, s_purged, self);
    if (purged < 0) {
        arb_life_halt (self, "retention sweep");
        return -1;
    }
    //  also the queues a request named and left empty (TAKE, PEEK, purge or
    //  resume of a queue nobody uses, a subscription cancelled): they
    //  would grow the broker with every new name
    arb_life_forget_idle_queues (self);
    return purged;
}

//  ---------------------------------------------------------------------
//  DELETE

typedef struct {
    arb_life_t *self;
    const arb_delete_body_t *filter;  //  NULL: deleting one task by id
    arb_vec_t ids;                    //  the tasks to remove
    int state;                        //  by id: the task's state (0: none)
    bool kept;                        //  by id: it has children that have not ended
    bool failed;                      //  a journal read failed
} s_delete_t;

//  Takes a final task for removal, unless tasks that have not ended wait
//  for it; it is counted no more.
static void
s_delete_row (s_delete_t *del, uint64_t id, const char *queue, int state, bool has_children)
{
    bool goes;
    if (s_final_goes (del->self, id, queue, state, has_children, &goes))
        del->failed = true;
    else if (!goes)
        del->kept = true;
    else
        arb_vec_push (&del->ids, id);
}

static int
s_delete_one (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    (void) name;
    s_delete_t *del = (s_delete_t *) arg;
    del->state = row->state;
    if (arb_state_is_final (row->state))
        s_delete_row (del, row->id, queue, row->state, row->has_children);
    return 0;
}

static void
s_delete_match (void *arg, const arb_journal_scanned_t *row)
{
    s_delete_t *del = (s_delete_t *) arg;
    const arb_delete_body_t *filter = del->filter;
    if (!arb_state_is_final (row->state) || (filter->state && row->state != (int) filter->state)
        || (filter->queue && !(row->queue && streq (row->queue, filter->queue)))
        || (filter->older_than_ms
            && row->finished_ms + filter->older_than_ms > del->self->clock->now_ms))
        return;
    s_delete_row (del, row->id, row->queue, row->state, row->has_children);
}

//  Removes the tasks taken, with their history and edges, as the
//  retention sweep does. 0, or -1 (halted).
static int
s_delete_end (arb_life_t *self, s_delete_t *del)
{
    if (del->failed || arb_journal_remove (self->journal, del->ids.v, del->ids.n, self->next_id)) {
        arb_vec_free (&del->ids);
        arb_life_halt (self, "delete");
        return -1;
    }
    if (del->ids.n)
        arb_life_forget_idle_queues (self);
    arb_vec_free (&del->ids);
    return 0;
}

int
arb_life_delete (arb_life_t *self, uint64_t id, arb_outcome_info_t *outcome)
{
    outcome->id = id;
    arb_task_t *task = arb_sched_find (self->sched, id);
    if (task) {
        outcome->code = ARB_ERR_CONFLICT;
        outcome->state = task->state;
        return 0;
    }
    s_delete_t del = {.self = self};
    bool found;
    if (arb_journal_load_task (self->journal, id, s_delete_one, &del, &found))
        del.failed = true;
    if (s_delete_end (self, &del))
        return -1;
    outcome->state = (uint32_t) del.state;
    outcome->code = !found                                        ? ARB_ERR_NOT_FOUND
                    : del.kept || !arb_state_is_final (del.state) ? ARB_ERR_CONFLICT
                                                                  : 0;
    return 0;
}

int
arb_life_delete_matching (arb_life_t *self,
                          const arb_delete_body_t *filter,
                          uint32_t *count,
                          uint64_t *last_id,
                          bool *more)
{
    s_delete_t del = {.self = self, .filter = filter};
    size_t seen = 0;
    if (arb_journal_scan (self->journal, filter->after_id, ARB_DELETE_MAX, s_delete_match, &del,
                          last_id, &seen))
        del.failed = true;
    *count = (uint32_t) del.ids.n;
    *more = seen == ARB_DELETE_MAX;
    return s_delete_end (self, &del);
}

//  ---------------------------------------------------------------------
//  Queue-wide operations

//  Ends the unfinished tasks of a queue as cancelled (why says how), and
//  the running ones too if asked (they are stopped on their workers);
//  returns how many. A task that runs, or whose end others must hear of
//  (a parent, a fan-out copy), goes one by one (arb_life_cancel_task);
//  the others, usually all of them (*bulk counts them), end here in
//  memory only, and the caller ends their journal rows in one statement.
//  keep gets the running tasks left alone. Visits the queue's own tasks.
static uint64_t
s_end_queue_tasks (arb_life_t *self,
                   arb_queue_t *queue,
                   bool running,
                   const char *why,
                   arb_vec_t *keep,
                   uint64_t *bulk)
{
    arb_vec_t ids = {0};
    //  Cold tasks (plain: no dependents, no flow) end in the caller's one
    //  statement (which tells their watchers), counted here, unless event subscribers are
    //  to hear of each: then they are read back and end as the others do.
    //  Counted first, so that nothing reads one back meanwhile.
    if (arb_outbox_has_subscribers (self->outbox))
        arb_sched_thaw_all (self->sched, queue);
    uint64_t cold =
        arb_sched_end_cold (self->sched, queue, ARB_STATE_CANCELLED, self->clock->now_ms);
    self->cancelled += cold;
    self->tally.finished[ARB_STATE_CANCELLED] += cold;
    for (arb_task_t *task = arb_queue_first_task (queue); task; task = task->queue_next)
        arb_vec_push (&ids, task->id);
    uint64_t count = cold, id;
    *bulk = cold;
    while (!self->halted && arb_vec_shift (&ids, &id)) {
        arb_task_t *task = arb_sched_find (self->sched, id);
        if (!task)
            continue;  //  ended meanwhile, by a parent's end
        if (task->state == ARB_STATE_RUNNING && !running) {
            arb_vec_push (keep, id);
            continue;
        }
        count++;
        if (task->state == ARB_STATE_RUNNING || task->has_children || arb_task_ext (task)->origin)
            arb_life_cancel_task (self, &task, why);
        else {
            self->cancelled++;
            (*bulk)++;
            arb_life_ended (self, &task, ARB_STATE_CANCELLED, why, NULL);
        }
    }
    arb_vec_free (&ids);
    return count;
}

//  What the watchers of a task cancelled with its queue hear: hot tasks
//  told theirs as they ended in memory, so only the cold ones have any.
typedef struct {
    arb_life_t *self;
    const char *why;
} s_cancelled_t;

static void
s_cancelled_row (void *arg, uint64_t id, uint32_t attempts)
{
    s_cancelled_t *cancelled = (s_cancelled_t *) arg;
    arb_life_tell_watchers (cancelled->self, id, ARB_STATE_CANCELLED, attempts, cancelled->why,
                            NULL);
}

//  Cancels the unfinished tasks of a queue: in memory, then the journal
//  rows of those ended in memory (and of the cold ones) in one statement.
//  Returns how many, or -1 if the journal failed (halted).
static int64_t
s_cancel_queue (arb_life_t *self, const char *name, bool running, const char *why)
{
    arb_queue_t *queue = arb_sched_find_queue (self->sched, name);
    if (!queue)
        return 0;
    uint64_t keep_ms = arb_queue_settings (queue)->retention_ms;
    arb_vec_t keep = {0};
    uint64_t bulk, changed = 0;
    uint64_t count = s_end_queue_tasks (self, queue, running, why, &keep, &bulk);
    s_cancelled_t cancelled = {self, why};
    if (!self->halted
        && arb_journal_cancel_open (
            self->journal, name, keep.v ? keep.v + keep.head : NULL, arb_vec_size (&keep),
            self->clock->now_ms, why, keep_ms ? keep_ms : self->config.retention_ms,
            arb_watch_size (self->watch) ? s_cancelled_row : NULL, &cancelled, &changed))
        arb_life_halt (self, "cancel queue");
    arb_vec_free (&keep);
    if (self->halted)
        return -1;
    if (changed != bulk)
        zsys_warning ("broker: queue cancel ended %" PRIu64 " tasks in memory, %" PRIu64
                      " in the journal queue=%s",
                      bulk, changed, name);
    return (int64_t) count;
}

void
arb_life_cancel_queue (arb_life_t *self, const char *queue)
{
    s_cancel_queue (self, queue, true, "cancelled with its queue");
}

uint64_t
arb_life_purge_queue (arb_life_t *self, const char *name)
{
    int64_t count = s_cancel_queue (self, name, false, "purged");
    return count > 0 ? (uint64_t) count : 0;
}

uint64_t
arb_life_delete_queue (arb_life_t *self, const char *name)
{
    int64_t count = s_cancel_queue (self, name, true, "its queue was deleted");
    if (count < 0)
        return 0;
    if (arb_journal_forget_queue (self->journal, name, self->next_id)) {
        arb_life_halt (self, "delete queue");
        return 0;
    }
    arb_queue_t *queue = arb_sched_find_queue (self->sched, name);
    if (queue)
        arb_sched_clear_queue (self->sched, queue);
    zsys_info ("broker: queue deleted queue=%s cancelled=%" PRId64, name, count);
    return (uint64_t) count;
}

size_t
arb_life_peek (arb_life_t *self, const char *name, arb_task_t **tasks, size_t max)
{
    arb_queue_t *queue = arb_sched_find_queue (self->sched, name);
    if (!queue)
        return 0;
    return arb_sched_peek (self->sched, queue, tasks, max, self->clock->now_ms,
                           self->clock->mono_ms);
}

//  The oldest ready tasks go until the queue is within its bounds.
//  Returns how many went.
static uint64_t
s_drop_head (arb_life_t *self, arb_queue_t *queue, const char *why)
{
    uint64_t dropped = 0;
    //  tasks held back by their name's limit are ready, and at the head:
    //  back in the queue, where the drop sees them (dispatch holds them
    //  back again)
    arb_sched_unpark_queue (self->sched, queue);
    while (!self->halted && arb_queue_is_over_bound (queue)) {
        arb_task_t *head = NULL;
        if (arb_queue_first (queue, &head, 1, 1, NULL, NULL) == 0)
            break;  //  the journal failed reading the backlog back (halted)
        uint64_t id = head->id;
        arb_life_cancel_task (self, &head, why);
        if (self->halted)
            break;
        //  Each round ends a ready task for good, so the loop ends (a
        //  dropped parent may make children ready: they count, and may go
        //  too); a task that stayed ready would loop for ever, here and in
        //  the caller's rounds (it is not counted).
        arb_task_t *still = arb_sched_find_hot (self->sched, id);
        if (still && still->state == ARB_STATE_READY) {
            zsys_error ("broker: a dropped task stayed ready id=%" PRIu64 " queue=%s", id,
                        arb_queue_name (queue));
            break;
        }
        dropped++;
        (*arb_queue_dropped (queue))++;
    }
    return dropped;
}

//  A fresh ready task of queue (one that just joined it), or NULL.
static arb_task_t *
s_fresh (arb_life_t *self, arb_queue_t *queue, uint64_t id)
{
    arb_task_t *task = arb_sched_find_hot (self->sched, id);
    return task && task->queue == queue && task->state == ARB_STATE_READY ? task : NULL;
}

//  Each fresh task that does not fit with the queue's ready tasks from
//  before and the fresh ones kept before it is refused (its id pushed to
//  refused). Returns how many.
static uint64_t
s_refuse_new (arb_life_t *self,
              arb_queue_t *queue,
              const uint64_t *fresh,
              size_t n,
              const char *why,
              arb_vec_t *refused)
{
    //  what the queue held before the fresh tasks came (the bytes floored:
    //  the queue's count may be short of the sum, never over it)
    uint64_t ready = arb_queue_counts (queue)[ARB_STATE_READY];
    uint64_t bytes = *arb_queue_ready_bytes (queue);
    for (size_t i = 0; i < n; i++) {
        arb_task_t *task = s_fresh (self, queue, fresh[i]);
        if (task) {
            ready = ready ? ready - 1 : 0;
            bytes = bytes > task->payload_size ? bytes - task->payload_size : 0;
        }
    }
    uint64_t count = 0;
    const arb_queue_settings_t *settings = arb_queue_settings (queue);
    for (size_t i = 0; i < n && !self->halted; i++) {
        arb_task_t *task = s_fresh (self, queue, fresh[i]);
        if (!task)
            continue;  //  not ready, or ended by a refusal before it
        uint64_t size = task->payload_size;
        bool fits = (!settings->max_ready || ready < settings->max_ready)
                    && (!settings->max_ready_bytes
                        || (size <= settings->max_ready_bytes
                            && bytes <= settings->max_ready_bytes - size));
        if (fits) {
            ready++;
            bytes += size;
            continue;
        }
        if (refused)
            arb_vec_push (refused, fresh[i]);
        arb_life_cancel_task (self, &task, why);
        count++;
    }
    return count;
}

uint64_t
arb_life_hold_bounds (
    arb_life_t *self, arb_queue_t *queue, const uint64_t *fresh, size_t n, arb_vec_t *refused)
{
    if (!queue || !arb_queue_is_over_bound (queue))
        return 0;
    const arb_queue_settings_t *settings = arb_queue_settings (queue);
    char why[128];
    snprintf (
        why, sizeof (why),
        "%s: its queue was over its bound (max_ready %" PRIu64 ", max_ready_bytes %" PRIu64 ")",
        settings->reject ? "refused" : "dropped", settings->max_ready, settings->max_ready_bytes);
    return settings->reject ? s_refuse_new (self, queue, fresh, n, why, refused)
                            : s_drop_head (self, queue, why);
}
