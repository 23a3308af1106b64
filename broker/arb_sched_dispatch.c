/*  arb_sched_dispatch.c — the scheduler's leases and dispatch: handing
    ready tasks to the sessions that have credit, within the queues' and
    names' limits and rates, taking them back and adopting them; see
    arb_sched.h. The rest of the scheduler is in arb_sched.c.
*/

#include "arb_sched_priv.h"

//  ---------------------------------------------------------------------
//  Leases and dispatch

arb_task_t *
arb_sched_leased (arb_sched_t *self, uint64_t id, uint64_t lease)
{
    arb_task_t *task = arb_sched_find (self, id);
    if (!task || arb_task_ext (task)->lease == 0 || arb_task_ext (task)->lease != lease)
        return NULL;
    return task;
}

static void
s_lease (
    arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint32_t sub, uint64_t mono_ms)
{
    if (task->timer_slot != ARB_HEAP_NONE)
        arb_heap_remove (self->timers, task);  //  its expiry: it has started
    arb_queue_unlink_ready (task->queue, task);
    arb_sched_set_state (task, ARB_STATE_RUNNING);
    arb_task_ext_rw (task)->lease = (self->config.epoch << ARB_LEASE_BITS) | ++self->lease_seq;
    arb_task_ext_rw (task)->last_lease = 0;
    arb_task_ext_rw (task)->last_lost = false;
    arb_task_ext_rw (task)->claimed_lease = 0;
    arb_task_ext_rw (task)->leased = true;
    arb_task_ext_rw (task)->session = session;
    arb_task_ext_rw (task)->sub = sub;
    task->attempts++;
    arb_session_add_lease (session, task);
    arb_queue_limit (task->queue)->running++;
    arb_sched_name_t *entry = arb_sched_name_of (self, task->name);
    if (entry)
        entry->limit.running++;
    if (arb_task_ext (task)->timeout_ms) {
        task->timer_ms = mono_ms + arb_task_ext (task)->timeout_ms;
        arb_heap_push (self->timers, task);
    }
}

void
arb_sched_unlease (arb_sched_t *self, arb_task_t *task)
{
    assert (arb_task_ext (task)->lease && arb_task_ext (task)->session);
    arb_session_remove_lease (arb_task_ext (task)->session, task);
    if (task->timer_slot != ARB_HEAP_NONE)
        arb_heap_remove (self->timers, task);
    arb_queue_limit (task->queue)->running--;
    arb_task_drop_emits (task);  //  staged with the lease, gone with it
    arb_task_ext_rw (task)->lease = 0;
    arb_task_ext_rw (task)->session = NULL;
    arb_task_ext_rw (task)->sub = 0;
    //  a queue or a name at its running limit can take more now (after
    //  the commit that ends this lease: the journal still has it running)
    if (arb_queue_limit (task->queue)->max_running) {
        arb_sched_loosened (self);
        arb_sched_mark_dirty (self, task->queue);
    }
    arb_sched_name_t *entry = arb_sched_name_of (self, task->name);
    if (entry) {
        entry->limit.running--;
        arb_sched_loosened (self);
        arb_sched_unpark (self, entry);
    }
}

//  Whether a session runs tasks of this name (arb_queue_accept_fn).
static bool
s_accepts (void *arg, const char *name)
{
    return arb_session_handles ((arb_session_t *) arg, name);
}

//  Pops the next ready task of a queue that session runs and that has not
//  expired; expired ones are given to the broker to end.
static arb_task_t *
s_pop_live (arb_sched_t *self, arb_queue_t *queue, arb_session_t *session, uint64_t now_ms)
{
    arb_task_t *task;
    while ((task = arb_session_handles_all (session)
                       ? arb_queue_pop (queue)
                       : arb_queue_pop_for (queue, s_accepts, session))) {
        if (arb_task_ext (task)->expires_ms == 0 || arb_task_ext (task)->expires_ms > now_ms)
            return task;
        self->hooks.expired (self->hooks.arg, task);
    }
    return NULL;
}

static void
s_add_wake (arb_sched_t *self, arb_queue_t *queue, arb_sched_name_t *name, uint64_t wake_ms)
{
    for (size_t i = 0; i < self->wake_count; i++)
        if (self->wakes[i].queue == queue && self->wakes[i].name == name) {
            self->wakes[i].wake_ms = wake_ms;
            return;
        }
    self->wakes = (arb_sched_wake_t *) realloc (self->wakes,
                                                (self->wake_count + 1) * sizeof (arb_sched_wake_t));
    assert (self->wakes);
    self->wakes[self->wake_count++] = (arb_sched_wake_t){queue, name, wake_ms};
}

void
arb_sched_drop_wakes (arb_sched_t *self, arb_queue_t *queue, arb_sched_name_t *name)
{
    for (size_t i = 0; i < self->wake_count;)
        if ((queue && self->wakes[i].queue == queue) || (name && self->wakes[i].name == name))
            self->wakes[i] = self->wakes[--self->wake_count];
        else
            i++;
}

//  Puts a name's parked tasks back into their queues, in their old places.
void
arb_sched_unpark (arb_sched_t *self, arb_sched_name_t *entry)
{
    arb_task_t *task;
    while ((task = (arb_task_t *) zlistx_detach (entry->parked, NULL))) {
        task->parked = NULL;
        arb_queue_push (task->queue, task);
        arb_sched_mark_dirty (self, task->queue);
    }
}

void
arb_sched_unpark_queue (arb_sched_t *self, arb_queue_t *queue)
{
    for (arb_sched_name_t *entry = (arb_sched_name_t *) zhashx_first (self->names); entry;
         entry = (arb_sched_name_t *) zhashx_next (self->names)) {
        arb_task_t *task = (arb_task_t *) zlistx_first (entry->parked);
        while (task) {
            //  the cursor moves on before the task leaves the list
            arb_task_t *next = (arb_task_t *) zlistx_next (entry->parked);
            if (task->queue == queue) {
                zlistx_detach (entry->parked, task->parked);
                task->parked = NULL;
                arb_queue_push (queue, task);
                arb_sched_mark_dirty (self, queue);
            }
            task = next;
        }
    }
}

//  The next task a queue may hand to session now, with its limits (and its
//  task name's) charged; or NULL. Tasks over their name's limit are parked
//  on the way, and tasks of names the session does not run are set aside
//  (arb_queue.h); rate limits register a wake-up. *blocked says whether
//  NULL means that the queue hands out nothing now (paused, held, at a
//  limit), rather than nothing to this session.
static arb_task_t *
s_next_task (arb_sched_t *self,
             arb_queue_t *queue,
             arb_session_t *session,
             uint64_t now_ms,
             uint64_t mono_ms,
             bool *blocked)
{
    *blocked = true;
    if (arb_queue_settings (queue)->paused)
        return NULL;
    uint64_t held_until = arb_queue_held_until (queue);
    if (held_until > mono_ms) {
        s_add_wake (self, queue, NULL, held_until);
        return NULL;
    }
    arb_limit_t *limit = arb_queue_limit (queue);
    while (arb_queue_size (queue) > 0) {
        uint64_t retry_ms = 0;
        if (!arb_limit_check (limit, mono_ms, &retry_ms)) {
            if (retry_ms)
                s_add_wake (self, queue, NULL, mono_ms + retry_ms);
            return NULL;
        }
        arb_task_t *task = s_pop_live (self, queue, session, now_ms);
        if (!task) {
            *blocked = false;
            return NULL;
        }
        if (self->early && task->ready_turn == self->turn) {
            //  ready only since the last commit: it goes after the next,
            //  and nothing behind it goes before it
            arb_queue_push (queue, task);
            arb_sched_mark_dirty (self, queue);
            return NULL;
        }
        arb_sched_name_t *entry = arb_sched_name_of (self, task->name);
        if (entry && !arb_limit_check (&entry->limit, mono_ms, &retry_ms)) {
            task->parked = zlistx_add_end (entry->parked, task);
            if (retry_ms)
                s_add_wake (self, NULL, entry, mono_ms + retry_ms);
            continue;
        }
        arb_limit_take (limit);
        if (entry)
            arb_limit_take (&entry->limit);
        return task;
    }
    return NULL;
}

//  Whether a task seen by arb_sched_peek has not expired.
static bool
s_is_live (void *task, void *now_ms)
{
    uint64_t expires_ms = arb_task_ext (((arb_task_t *) task))->expires_ms;
    return expires_ms == 0 || expires_ms > *(uint64_t *) now_ms;
}

size_t
arb_sched_peek (arb_sched_t *self,
                arb_queue_t *queue,
                arb_task_t **tasks,
                size_t max,
                uint64_t now_ms,
                uint64_t mono_ms)
{
    (void) self;
    if (arb_queue_settings (queue)->paused || arb_queue_held_until (queue) > mono_ms)
        return 0;
    //  expired tasks leave at their timer, within a turn: few to skip
    return arb_queue_first (queue, tasks, max, max + ARB_PEEK_SKIP_MAX, s_is_live, &now_ms);
}

void
arb_sched_hold_ready (arb_sched_t *self, uint64_t until_ms)
{
    for (arb_queue_t *queue = (arb_queue_t *) zhashx_first (self->queues); queue;
         queue = (arb_queue_t *) zhashx_next (self->queues))
        if (arb_queue_size (queue) > 0)
            arb_queue_hold (queue, until_ms);
}

bool
arb_sched_can_adopt (arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease)
{
    if (lease == 0 || !session || !arb_session_registered (session))
        return false;
    if (task->state == ARB_STATE_RUNNING)
        //  its lease now, or the one an earlier claim named (the worker
        //  never saw that claim's WELCOME), from the same worker
        return (lease == arb_task_ext (task)->lease || lease == arb_task_ext (task)->claimed_lease)
               && (arb_task_ext (task)->session == session
                   || arb_session_newer (session, arb_task_ext (task)->session));
    if (task->state != ARB_STATE_READY)
        return false;
    if (arb_task_ext (task)->last_lease)
        //  lost or taken back in this run, and nobody has had it since
        return lease == arb_task_ext (task)->last_lease
               && arb_task_ext (task)->last_worker == arb_session_worker (session);
    //  a lease of a run before this one (1 is the first epoch), for a task
    //  this run has not leased yet
    uint64_t epoch = lease >> ARB_LEASE_BITS;
    return epoch >= 1 && epoch < self->config.epoch && !arb_task_ext (task)->leased;
}

arb_adopt_t
arb_sched_adopt (
    arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease, uint64_t mono_ms)
{
    if (task->state == ARB_STATE_RUNNING) {
        if (arb_task_ext (task)->session == session)
            return ARB_ADOPT_KEPT;
        //  the same attempt goes on: its count and its timeout stay
        bool timed = task->timer_slot != ARB_HEAP_NONE;
        uint64_t timer_ms = task->timer_ms;
        uint64_t claimed =
            arb_task_ext (task)->claimed_lease ? arb_task_ext (task)->claimed_lease : lease;
        arb_sched_unlease (self, task);
        task->attempts--;
        s_lease (self, task, session, 0, mono_ms);
        arb_task_ext_rw (task)->claimed_lease = claimed;
        if (timed) {
            arb_heap_remove (self->timers, task);
            arb_sched_rearm (self, task, timer_ms);
        }
        return ARB_ADOPT_MOVED;
    }
    if (lease == arb_task_ext (task)->last_lease && arb_task_ext (task)->last_lost && task->lost)
        task->lost--;  //  its worker was not lost after all
    arb_sched_detach (self, task);
    s_lease (self, task, session, 0, mono_ms);
    arb_task_ext_rw (task)->claimed_lease = lease;
    return ARB_ADOPT_LEASED;
}

void
arb_sched_give_back (
    arb_sched_t *self, arb_task_t *task, bool head, uint64_t now_ms, uint64_t mono_ms)
{
    uint64_t lease = arb_task_ext (task)->lease;
    uint64_t worker = arb_session_worker (arb_task_ext (task)->session);
    arb_sched_unlease (self, task);
    task->attempts--;
    arb_sched_make_ready (self, task, head, now_ms, mono_ms);
    arb_task_ext_rw (task)->last_lease = lease;
    arb_task_ext_rw (task)->last_worker = worker;
    arb_task_ext_rw (task)->last_lost = false;
}

void
arb_sched_rearm (arb_sched_t *self, arb_task_t *task, uint64_t mono_ms)
{
    assert (task->timer_slot == ARB_HEAP_NONE);
    task->timer_ms = mono_ms;
    arb_heap_push (self->timers, task);
}

void
arb_sched_retime (arb_sched_t *self, arb_task_t *task, uint64_t mono_ms)
{
    if (task->timer_slot == ARB_HEAP_NONE)
        return;  //  no timeout
    arb_heap_remove (self->timers, task);
    arb_sched_rearm (self, task, mono_ms);
}

//  Hands one task to a subscription. Returns false if the broker could not
//  send it (the task is back at the head).
static bool
s_hand_out (arb_sched_t *self,
            arb_task_t *task,
            arb_session_t *session,
            arb_sub_t *sub,
            uint64_t now_ms,
            uint64_t mono_ms)
{
    s_lease (self, task, session, sub ? sub->id : 0, mono_ms);
    if (sub)
        sub->credit--;
    if (self->hooks.dispatch (self->hooks.arg, session, sub, task) == 0) {
        task->delivered++;  //  after the hook, which tells how often before
        return true;
    }
    if (sub)
        sub->credit++;
    task->attempts--;
    arb_sched_unlease (self, task);
    arb_sched_make_ready (self, task, true, now_ms, mono_ms);
    return false;
}

static void
s_dispatch_queue (arb_sched_t *self, arb_queue_t *queue, uint64_t now_ms, uint64_t mono_ms)
{
    size_t idle = 0;  //  consumers visited in a row without credit
    while (arb_queue_size (queue) > 0 && idle < arb_queue_consumer_count (queue)) {
        arb_sub_t *sub = (arb_sub_t *) arb_queue_next_consumer (queue);
        bool held = self->early && arb_session_held_early (sub->session, self->turn);
        if (held && sub->credit > 0)
            arb_sched_mark_dirty (self, queue);  //  for the pass after the commit
        if (sub->credit <= 0 || held) {
            idle++;
            continue;
        }
        bool blocked;
        arb_task_t *task = s_next_task (self, queue, sub->session, now_ms, mono_ms, &blocked);
        if (!task && blocked) {
            //  the queue gives nothing now (the early pass meets a task
            //  of this turn, a limit, a pause): the next task is still
            //  this consumer's, or a pass before each commit would skip
            //  one consumer each turn, and tasks that come one a turn
            //  would all go to every other consumer
            arb_queue_keep_turn (queue);
            return;
        }
        if (!task) {
            idle++;  //  nothing it runs
            continue;
        }
        if (!s_hand_out (self, task, sub->session, sub, now_ms, mono_ms))
            return;
        idle = 0;
    }
}

static void
s_dispatch (arb_sched_t *self, uint64_t now_ms, uint64_t mono_ms)
{
    //  Dispatching may mark queues dirty again (a failed send puts a task
    //  back); those wait for the next turn, so take the list first.
    size_t count = self->dirty_count;
    arb_queue_t **dirty = self->dirty;
    self->dirty = NULL;
    self->dirty_count = self->dirty_capacity = 0;
    for (size_t i = 0; i < count; i++)
        arb_queue_set_dirty (dirty[i], false);
    for (size_t i = 0; i < count; i++)
        s_dispatch_queue (self, dirty[i], now_ms, mono_ms);
    free (dirty);
}

void
arb_sched_dispatch (arb_sched_t *self, uint64_t now_ms, uint64_t mono_ms)
{
    arb_sched_settle (self);
    s_dispatch (self, now_ms, mono_ms);
}

void
arb_sched_dispatch_early (arb_sched_t *self, uint64_t now_ms, uint64_t mono_ms)
{
    //  no settling: a task new in this turn is not handed out anyway, and
    //  one made cold now would be read back from the open transaction
    if (self->loosened == self->turn)
        return;  //  what a limit now lets through waits for its commit
    self->early = true;
    s_dispatch (self, now_ms, mono_ms);
    self->early = false;
}

size_t
arb_sched_take (arb_sched_t *self,
                arb_session_t *session,
                const char *queue_name,
                size_t max,
                uint64_t now_ms,
                uint64_t mono_ms)
{
    arb_queue_t *queue = arb_sched_queue (self, queue_name);
    size_t taken = 0;
    //  its reply waits for the commit, and its tasks come before any the
    //  session is dispatched after them (a consumer's join the TAKE's)
    arb_session_hold_early (session, self->turn);
    while (taken < max) {
        bool blocked;
        arb_task_t *task = s_next_task (self, queue, session, now_ms, mono_ms, &blocked);
        if (!task || !s_hand_out (self, task, session, NULL, now_ms, mono_ms))
            break;
        taken++;
    }
    return taken;
}

bool
arb_sched_is_unhandled (arb_sched_t *self, arb_task_t *task)
{
    (void) self;
    arb_queue_t *queue = task->queue;
    size_t count = arb_queue_consumer_count (queue);
    if (task->state != ARB_STATE_READY || count == 0)
        return false;
    for (size_t i = 0; i < count; i++) {
        arb_sub_t *sub = (arb_sub_t *) arb_queue_consumer_at (queue, i);
        if (arb_session_handles (sub->session, task->name))
            return false;
    }
    return true;
}
