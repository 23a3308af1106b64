/*  arb_life.c — the task lifecycle: attempts and leases, worker sessions,
    timers and dispatch; see arb_life.h for the rules. The flow rules are
    in arb_life_flow.c, tasks entering in arb_life_submit.c, retention,
    DELETE and what acts on a whole queue in arb_life_queue.c.
*/

#include "arb_life_priv.h"

#define ARB_DISPATCH_BATCH 512               //  tasks per DISPATCH message at most
#define ARB_STOPPED_KEY    "broker.stopped"  //  the epoch of the last run that stopped cleanly

//  The head policy's backoff for a task without one of its own: doubling
//  from the first to the cap, so that a failing item costs little while
//  the others go past it.
#define ARB_HEAD_BACKOFF_MS     100
#define ARB_HEAD_BACKOFF_CAP_MS 30000

static int s_dispatch_hook (void *arg, arb_session_t *session, arb_sub_t *sub, arb_task_t *task);
static void s_expired_hook (void *arg, arb_task_t *task);

//  ---------------------------------------------------------------------
//  Start-up

arb_life_t *
arb_life_new (const arb_life_config_t *config,
              arb_journal_t *journal,
              arb_outbox_t *outbox,
              const arb_clock_t *clock)
{
    arb_life_t *self = (arb_life_t *) zmalloc (sizeof (arb_life_t));
    self->config = *config;
    self->journal = journal;
    self->outbox = outbox;
    self->clock = clock;
    self->late =
        (arb_loglimit_t){.module = "broker", .what = "late results and emits refused", .max = 20};
    self->rng = clock->now_ms ^ ((uint64_t) getpid () << 32) ^ 0x9e3779b97f4a7c15ull;
    uint64_t stopped = 0;
    //  an epoch given is one the journal cannot take now (arb_life_take_over)
    self->epoch = config->epoch;
    self->epoch_unsaved = config->epoch != 0;
    if ((!config->epoch && arb_journal_next_epoch (journal, &self->epoch))
        || arb_journal_max_id (journal, &self->next_id)
        || arb_journal_meta_number (journal, ARB_STOPPED_KEY, &stopped)) {
        arb_life_destroy (&self);
        return NULL;
    }
    //  the run just before this one wrote its leases as it stopped
    self->clean_start = stopped && stopped + 1 == self->epoch;
    arb_sched_config_t sched_config = {
        .aging_ms = config->aging_ms,
        .liveness_ms = config->liveness_ms,
        .cache_bytes = config->cache_bytes,
        .epoch = self->epoch,
        .hot_max = config->hot_max,
    };
    arb_sched_hooks_t hooks = {
        .dispatch = s_dispatch_hook,
        .expired = s_expired_hook,
        .warm = arb_life_warm_hook,
        .thaw = arb_life_thaw_hook,
        .arg = self,
    };
    self->sched = arb_sched_new (&sched_config, &hooks);
    self->watch = arb_watch_new ();
    self->schedules = zhashx_new ();
    zhashx_set_destructor (self->schedules, (zhashx_destructor_fn *) arb_schedule_destroy);
    return self;
}

void
arb_life_destroy (arb_life_t **self_p)
{
    assert (self_p);
    arb_life_t *self = *self_p;
    if (!self)
        return;
    arb_vec_free (&self->settle);
    arb_vec_free (&self->unsaved);
    arb_sched_destroy (&self->sched);
    arb_watch_destroy (&self->watch);
    zhashx_destroy (&self->schedules);
    free (self);
    *self_p = NULL;
}

void
arb_life_pulse (arb_life_t *self, size_t i)
{
    if ((i & 255) == 255 && self->config.pulse)
        self->config.pulse (self->config.pulse_arg);
}

void
arb_life_hold_ready (arb_life_t *self, uint64_t until_ms)
{
    arb_sched_hold_ready (self->sched, until_ms);
}

int
arb_life_count_stop_deliveries (arb_life_t *self, size_t *count)
{
    *count = 0;
    if (self->clean_start)
        return 0;
    //  a full journal cannot count the cold tasks' deliveries: in memory
    if (self->journal_full)
        for (arb_queue_t *q = (arb_queue_t *) zhashx_first (arb_sched_queues (self->sched)); q;
             q = (arb_queue_t *) zhashx_next (arb_sched_queues (self->sched)))
            arb_sched_thaw_all (self->sched, q);
    //  Dispatch writes nothing, so after a crash the journal cannot tell a
    //  ready task that was running from one that never left: each ready
    //  one may have been handed out once more than the journal knows
    //  (once, as a task has one lease at most), and counts so, in the
    //  journal too, so that no later crash can lose that delivery.
    for (arb_task_t *task = arb_sched_first_task (self->sched); task;
         task = arb_sched_next_task (self->sched))
        if (task->state == ARB_STATE_READY) {
            task->delivered++;
            ++*count;
            if (self->journal_full)
                arb_vec_push (&self->unsaved, task->id);
        }
    if (self->journal_full)
        return 0;                                  //  written with arb_life_save_deferred
    *count += arb_sched_cold_count (self->sched);  //  the journal counts those alone
    uint64_t changed;
    if (arb_journal_deliver_ready (self->journal, self->clock->now_ms, &changed))
        return -1;
    if (changed != *count)
        zsys_warning ("broker: deliveries counted for %zu ready tasks in memory, %" PRIu64
                      " in the journal",
                      *count, changed);
    return 0;
}

int
arb_life_stop (arb_life_t *self)
{
    //  The only deliveries the journal does not hold are the leases
    //  running now: write them, and that this run stopped cleanly, so the
    //  next one knows every count is exact; and what waited for a full
    //  journal, should it take writes now.
    if (arb_journal_begin (self->journal) || arb_life_save_deferred (self))
        return -1;
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    for (arb_session_t *session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions))
        for (arb_task_t *task = arb_session_first_lease (session); task;
             task = arb_task_ext (task)->lease_next)
            if (arb_journal_set_delivered (self->journal, task->id, task->delivered))
                return -1;
    return arb_journal_set_number (self->journal, ARB_STOPPED_KEY, self->epoch);
}

arb_sched_t *
arb_life_sched (arb_life_t *self)
{
    return self->sched;
}

uint64_t
arb_life_epoch (arb_life_t *self)
{
    return self->epoch;
}

uint64_t
arb_life_last_id (arb_life_t *self)
{
    return self->next_id;
}

uint64_t
arb_life_cancelled (arb_life_t *self)
{
    return self->cancelled;
}

arb_tally_t *
arb_life_tally (arb_life_t *self)
{
    return &self->tally;
}

void
arb_life_halt (arb_life_t *self, const char *what)
{
    if (!self->halted)
        zsys_error ("broker: journal failed during %s; the turn is abandoned", what);
    self->halted = true;
}

bool
arb_life_is_halted (arb_life_t *self)
{
    return self->halted;
}

//  ---------------------------------------------------------------------
//  The journal full

void
arb_life_take_over (arb_life_t *self, arb_life_t **old_p)
{
    arb_life_t *old = *old_p;
    //  what old held in memory the new memory holds too (its load left
    //  plain ready tasks cold): their counts are old's
    arb_vec_t hot = {0};
    for (arb_task_t *was = arb_sched_first_task (old->sched); was;
         was = arb_sched_next_task (old->sched))
        arb_vec_push (&hot, was->id);
    uint64_t hot_id;
    while (arb_vec_shift (&hot, &hot_id))
        arb_sched_find (self->sched, hot_id);
    arb_vec_free (&hot);
    for (arb_task_t *task = arb_sched_first_task (self->sched); task;
         task = arb_sched_next_task (self->sched)) {
        arb_task_t *was = arb_sched_find_hot (old->sched, task->id);
        //  dispatches are not journaled: old's count is the true one; a
        //  task old had ended in the failed turn may have been handed out
        uint32_t delivered =
            was ? was->delivered : task->delivered + (task->state == ARB_STATE_READY);
        if (delivered > task->delivered) {
            task->delivered = delivered;
            arb_vec_push (&self->unsaved, task->id);
        }
    }
    //  old's watches, of tasks hot or cold there: those still open here
    //  stay, those the journal has ended are told now (arb_life_watch)
    uint64_t watched;
    zframe_t *identity;
    while (!self->halted && arb_watch_pop (old->watch, &watched, &identity)) {
        bool found;
        if (arb_life_watch (self, watched, zframe_data (identity), zframe_size (identity), &found))
            arb_life_halt (self, "watch");
        zframe_destroy (&identity);
    }
    uint64_t id;
    while (arb_vec_shift (&old->unsaved, &id))
        arb_vec_push (&self->unsaved, id);
    self->tally = old->tally;
    self->cancelled = old->cancelled;
    arb_life_destroy (old_p);
}

void
arb_life_set_journal_full (arb_life_t *self, bool full)
{
    self->journal_full = full;
}

int
arb_life_save_deferred (arb_life_t *self)
{
    if (arb_journal_begin (self->journal)
        || (self->epoch_unsaved && arb_journal_set_epoch (self->journal, self->epoch))) {
        arb_life_halt (self, "epoch");
        return -1;
    }
    self->epoch_unsaved = false;
    uint64_t id;
    while (arb_vec_shift (&self->unsaved, &id)) {
        arb_task_t *task = arb_sched_find (self->sched, id);
        //  a task that ended since has its count in its last write
        if (task && arb_journal_set_delivered (self->journal, id, task->delivered)) {
            arb_life_halt (self, "deliveries");
            return -1;
        }
    }
    return 0;
}

static uint64_t
s_random (arb_life_t *self)
{
    //  xorshift64*: plenty for jitter, and no shared state
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * 0x2545f4914f6cdd1dull;
}

//  ---------------------------------------------------------------------
//  Ending tasks

static uint64_t
s_purge_at (arb_life_t *self, arb_task_t *task, int state)
{
    uint64_t keep = arb_task_ext (task)->retention_ms;
    if (!keep)
        keep = arb_queue_settings (task->queue)->retention_ms;
    if (!keep)
        keep = state == ARB_STATE_DEAD ? self->config.dead_retention_ms : self->config.retention_ms;
    return self->clock->now_ms + keep;
}

static const char *
s_worker_name (arb_task_t *task)
{
    return arb_task_ext (task)->session ? arb_session_name (arb_task_ext (task)->session) : NULL;
}

//  What a task's watchers hear of its end (arb_watch_take's argument).
typedef struct {
    arb_outbox_t *outbox;
    uint64_t id;
    int state;
    uint32_t attempts;
    const char *error;
    zframe_t **result_p;  //  may be NULL
} s_told_t;

//  Every watcher but the last gets a copy of the result; the last, the
//  frame itself (most tasks have one watcher: no copy at all).
static void
s_tell_watcher (void *arg, zframe_t *identity, bool last)
{
    s_told_t *told = (s_told_t *) arg;
    zframe_t *copy =
        told->result_p && *told->result_p && !last ? zframe_dup (*told->result_p) : NULL;
    arb_outbox_done (told->outbox, identity, told->id, told->state, told->attempts, told->error,
                     copy ? &copy : told->result_p);
}

//  Tells the watchers of task id (hot or cold) of its end.
void
arb_life_tell_watchers (arb_life_t *self,
                        uint64_t id,
                        int state,
                        uint32_t attempts,
                        const char *error,
                        zframe_t **result_p)
{
    s_told_t told = {self->outbox, id, state, attempts, error, result_p};
    arb_watch_take (self->watch, id, s_tell_watcher, &told);
}

//  A task has ended (its journal row says so): tells its watchers and
//  subscribers, frees it, then lets its flow hear of it.
void
arb_life_ended (
    arb_life_t *self, arb_task_t **task_p, int state, const char *error, zframe_t **result_p)
{
    arb_task_t *task = *task_p;
    arb_life_tell_watchers (self, task->id, state, task->attempts, error, result_p);
    arb_outbox_event (self->outbox, task, state, error);
    self->tally.finished[state]++;
    uint64_t id = task->id, origin = arb_task_ext (task)->origin;
    bool has_children = task->has_children;
    arb_sched_finish (self->sched, task_p, state, self->clock->now_ms);
    if (has_children || origin)
        arb_life_after_finish (self, id, state, has_children, origin);
}

//  Whether a task ending in state leaves nothing to keep: no retention
//  (purge_at is now), no rows of history (it succeeded at its one handout:
//  the sweep's own test), nothing that reads its row after its end (a
//  flow, children, parents' edges, fan-out copies or an origin), and a
//  watcher that gets its result now, or a submitter that said nobody would
//  ask (unwatched: the gateway's messages). Its row can then go at once: a
//  DELETE now instead of an UPDATE now and a DELETE at the next sweep
//  (issue 11: what a task costs with --retention 0). One nobody watched
//  waits for the sweep, as before: a client that submits and then watches
//  (the CLI's wait, the bridge's reply_to) finds it there for up to a
//  second. The mark is in the task's row too (schema 8): a task read back
//  from the journal (after a restart, or cold) still has it.
static bool
s_leaves_nothing (arb_life_t *self, arb_task_t *task, int state, uint64_t purge_at)
{
    const arb_task_ext_t *ext = arb_task_ext (task);
    return purge_at <= self->clock->now_ms && state == ARB_STATE_SUCCEEDED && task->delivered == 1
           && task->attempts <= 1 && task->lost == 0 && !task->has_children && !ext->flow
           && !ext->origin && !ext->parents && !ext->copies
           && (task->unwatched || arb_watch_has (self->watch, task->id));
}

//  As arb_life_finish, naming the worker to keep as the task's last: the
//  one of its last attempt, whose lease may be gone already (a failed or
//  lost attempt is unleased before the task ends dead), or NULL to keep
//  the one its row has.
static void
s_finish (arb_life_t *self,
          arb_task_t **task_p,
          int state,
          const char *error,
          zframe_t **result_p,
          const char *worker)
{
    arb_task_t *task = *task_p;
    uint64_t purge_at = s_purge_at (self, task, state);
    bool drop = s_leaves_nothing (self, task, state, purge_at);
    int rc =
        drop ? arb_journal_drop (self->journal, task->id, self->next_id)
             : arb_journal_begin (self->journal)
                   || arb_journal_save (self->journal, task, state, self->clock->now_ms, worker,
                                        error ? error : "", result_p ? *result_p : NULL, purge_at);
    if (rc) {
        arb_life_halt (self, "finish");
        return;
    }
    arb_queue_t *queue = task->queue;
    arb_life_ended (self, task_p, state, error, result_p);
    if (drop)
        arb_life_uncount (queue, state);  //  counted final by arb_life_ended
}

void
arb_life_finish (
    arb_life_t *self, arb_task_t **task_p, int state, const char *error, zframe_t **result_p)
{
    s_finish (self, task_p, state, error, result_p, s_worker_name (*task_p));
}

//  Writes an attempt that did not succeed into the task's history.
static int
s_record_attempt (arb_life_t *self, arb_task_t *task, int outcome, const char *error)
{
    arb_attempt_info_t attempt = {
        .attempt = task->attempts,
        .started_ms = arb_task_ext (task)->started_ms,
        .ended_ms = self->clock->now_ms,
        .worker = s_worker_name (task),
        .outcome = (uint32_t) outcome,
        .error = error,
    };
    if (arb_journal_begin (self->journal)
        || arb_journal_add_attempt (self->journal, task->id, &attempt)) {
        arb_life_halt (self, "attempt");
        return -1;
    }
    return 0;
}

//  An exponential delay after task->attempts failed attempts: base,
//  doubled for each failure after the first, up to cap.
static uint64_t
s_exp_delay (arb_life_t *self, arb_task_t *task, uint64_t base, uint64_t cap)
{
    uint64_t delay = base;
    for (uint32_t n = 1; n < task->attempts && delay < cap; n++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    //  jitter: uniformly between half and all of the delay, so workers
    //  that failed together do not come back together
    if (task->jitter && delay > 1)
        delay = delay / 2 + s_random (self) % (delay - delay / 2 + 1);
    return delay;
}

//  Delay before the next attempt, after task->attempts failed ones.
static uint64_t
s_backoff_ms (arb_life_t *self, arb_task_t *task)
{
    if (task->backoff == ARB_BACKOFF_FIXED)
        return arb_task_ext (task)->backoff_ms;
    if (task->backoff != ARB_BACKOFF_EXP)
        return 0;
    return s_exp_delay (self, task, arb_task_ext (task)->backoff_ms,
                        arb_task_ext (task)->backoff_cap_ms ? arb_task_ext (task)->backoff_cap_ms
                                                            : ARB_BACKOFF_MAX_MS);
}

//  Whether a task that waited out a backoff goes back to the head of its
//  queue: it failed (it has attempts; a lost lease gives its attempt
//  back) in a queue whose policy is head.
static bool
s_back_to_head (arb_task_t *task)
{
    return task->attempts > 0
           && arb_queue_settings (task->queue)->on_failure == ARB_ON_FAILURE_HEAD;
}

//  Sends STOP for a running task's current lease (after the commit).
static void
s_stop (arb_life_t *self, arb_task_t *task, arb_stop_reason_t reason)
{
    arb_msg_t *stop = arb_msg_new (ARB_MSG_STOP, 0);
    arb_msg_set_routing_id (stop, arb_session_identity (arb_task_ext (task)->session));
    arb_stop_body_t *body = arb_msg_stop (stop);
    arb_stop_item_t *item =
        (arb_stop_item_t *) arb_msg_grow (stop, &body->tasks, sizeof (*item), 1);
    item->id = task->id;
    item->lease = arb_task_ext (task)->lease;
    item->reason = reason;
    arb_outbox_reply (self->outbox, &stop);
}

//  A failed task waits delay_ms before its next attempt (scheduled), or
//  with none is ready at once (at the head under the head policy).
static void
s_retry_after (arb_life_t *self, arb_task_t *task, uint64_t delay_ms, const char *error)
{
    if (delay_ms)
        arb_sched_make_scheduled (self->sched, task, self->clock->now_ms + delay_ms,
                                  self->clock->now_ms, self->clock->mono_ms);
    else
        arb_sched_make_ready (self->sched, task, s_back_to_head (task), self->clock->now_ms,
                              self->clock->mono_ms);
    if (arb_journal_save (self->journal, task, task->state, 0, NULL, error, NULL, 0)) {
        arb_life_halt (self, "retry");
        return;
    }
    arb_outbox_event (self->outbox, task, task->state, error);
}

//  Arbeiter's rule, the head policy: back to the head of its queue, but
//  only after a backoff (the task's own, else ARB_HEAD_BACKOFF_MS doubling
//  up to the cap), while the tasks behind it go past; and not for ever:
//  a task with retries is dead when they are used up, any other is
//  quarantined after max_head_failures failures in a row (every attempt
//  counted failed: a success ends the task, a lost or released lease
//  gives its attempt back). So a poison item neither spins nor stays.
static void
s_fail_to_head (arb_life_t *self, arb_task_t **task_p, const char *error, const char *worker)
{
    arb_task_t *task = *task_p;
    if (task->max_attempts > 1 && task->attempts >= task->max_attempts) {
        s_finish (self, task_p, ARB_STATE_DEAD, error, NULL, worker);
        return;
    }
    if (task->max_attempts <= 1 && task->attempts >= self->config.max_head_failures) {
        char why[ARB_TEXT_MAX + 128];
        snprintf (why, sizeof (why),
                  "quarantined: failed %u times in a row at the head of its queue (last: %s)",
                  task->attempts, error);
        s_finish (self, task_p, ARB_STATE_DEAD, why, NULL, worker);
        return;
    }
    uint64_t delay = task->backoff != ARB_BACKOFF_NONE
                         ? s_backoff_ms (self, task)
                         : s_exp_delay (self, task, ARB_HEAD_BACKOFF_MS, ARB_HEAD_BACKOFF_CAP_MS);
    s_retry_after (self, task, delay, error);
}

//  An attempt failed (the handler, or its timeout): the queue's policy.
static void
s_attempt_failed (arb_life_t *self, arb_task_t **task_p, int outcome, const char *error)
{
    arb_task_t *task = *task_p;
    if (s_record_attempt (self, task, outcome, error))
        return;
    arb_outbox_event (self->outbox, task, ARB_STATE_FAILED, error);
    //  borrowed from the session, which outlives the lease
    const char *worker = s_worker_name (task);
    if (arb_task_ext (task)->lease)
        arb_sched_unlease (self->sched, task);
    int policy = arb_queue_settings (task->queue)->on_failure;
    if (policy == ARB_ON_FAILURE_HEAD)
        s_fail_to_head (self, task_p, error, worker);
    else if (task->attempts >= task->max_attempts || policy == ARB_ON_FAILURE_DEAD)
        s_finish (self, task_p, ARB_STATE_DEAD, error, NULL, worker);
    else
        s_retry_after (self, task, s_backoff_ms (self, task), error);
}

void
arb_life_attempt_failed (arb_life_t *self, arb_task_t **task_p, const char *error)
{
    s_attempt_failed (self, task_p, ARB_OUTCOME_FAIL, error);
}

//  A lease died with its worker: not the task's fault.
static void
s_lease_lost (arb_life_t *self, arb_task_t **task_p, const char *error)
{
    arb_task_t *task = *task_p;
    if (s_record_attempt (self, task, ARB_ATTEMPT_LOST, error))
        return;
    uint64_t lease = arb_task_ext (task)->lease;
    uint64_t worker = arb_session_worker (arb_task_ext (task)->session);
    const char *name = s_worker_name (task);  //  borrowed: the session is still here
    arb_sched_unlease (self->sched, task);
    task->attempts--;
    task->lost++;
    if (task->lost >= self->config.max_lost) {
        char why[ARB_TEXT_MAX + 128];
        snprintf (why, sizeof (why), "quarantined: its worker was lost %u times (last: %s)",
                  task->lost, error);
        s_finish (self, task_p, ARB_STATE_DEAD, why, NULL, name);
        return;
    }
    if (arb_task_ext (task)->origin) {
        //  a fan-out copy waits for its endpoint to come back as it
        //  waited for it to come at first: for its endpoint timeout
        uint64_t window = arb_task_ext (task)->window_ms;
        arb_task_ext_rw (task)->expires_ms =
            self->clock->now_ms + (window ? window : ARB_ENDPOINT_TIMEOUT_DEFAULT_MS);
    }
    arb_sched_make_ready (self->sched, task, false, self->clock->now_ms, self->clock->mono_ms);
    //  its worker may come back with it (arb_sched_can_adopt)
    arb_task_ext_rw (task)->last_lease = lease;
    arb_task_ext_rw (task)->last_worker = worker;
    arb_task_ext_rw (task)->last_lost = true;
    if (arb_journal_save (self->journal, task, ARB_STATE_READY, 0, NULL, NULL, NULL, 0)) {
        arb_life_halt (self, "lost lease");
        return;
    }
    arb_outbox_event (self->outbox, task, ARB_STATE_READY, error);
}

//  A task given back to its queue (released, taken back): one UPDATE, as
//  for a result, so that the delivery it had counts after a crash; and
//  its subscribers hear of it. what names it if the journal fails.
static void
s_given_back (arb_life_t *self, arb_task_t *task, const char *what)
{
    if (self->journal_full)
        arb_vec_push (&self->unsaved, task->id);  //  journaled when it takes writes again
    else if (arb_journal_begin (self->journal)
             || arb_journal_save (self->journal, task, ARB_STATE_READY, 0, NULL, NULL, NULL, 0)) {
        arb_life_halt (self, what);
        return;
    }
    arb_outbox_event (self->outbox, task, ARB_STATE_READY, NULL);
}

void
arb_life_release (arb_life_t *self, arb_task_t *task)
{
    arb_sched_unlease (self->sched, task);
    task->attempts--;
    arb_sched_make_ready (self->sched, task, true, self->clock->now_ms, self->clock->mono_ms);
    s_given_back (self, task, "release");
}

int
arb_life_cancel_task (arb_life_t *self, arb_task_t **task_p, const char *why)
{
    self->cancelled++;
    arb_task_t *task = *task_p;
    if (task->state == ARB_STATE_RUNNING) {
        s_stop (self, task, ARB_STOP_CANCEL);
        if (s_record_attempt (self, task, ARB_ATTEMPT_CANCELLED, why))
            return task->state;
    }
    arb_life_finish (self, task_p, ARB_STATE_CANCELLED, why, NULL);
    return ARB_STATE_CANCELLED;
}

void
arb_life_succeed (arb_life_t *self, arb_task_t **task_p, zframe_t **result_p)
{
    if (arb_task_ext ((*task_p))->emit_refused)
        s_attempt_failed (self, task_p, ARB_OUTCOME_FAIL,
                          "routed items were refused (too many, too large, or a bad queue)");
    else if (arb_life_commit_emits (self, *task_p) == 0)
        arb_life_finish (self, task_p, ARB_STATE_SUCCEEDED, NULL, result_p);
}

//  ---------------------------------------------------------------------
//  Worker sessions and leases

//  Leases a task a worker has claimed back to its session (see
//  arb_sched_adopt). A ready one is running again: a lost lease taken back
//  keeps its start and is no longer counted as lost, in the journal too,
//  nor in its history (else a task with history would look like one
//  without: the sweep and a drop would leave its rows behind); after a
//  restart (nothing is written at dispatch) its start is the time the
//  worker says it has run it before now, or now if it says nothing.
static void
s_adopt_task (arb_life_t *self, arb_task_t *task, arb_session_t *session, const arb_held_t *held)
{
    uint32_t lost = task->lost;
    if (arb_sched_adopt (self->sched, task, session, held->lease, self->clock->mono_ms)
        != ARB_ADOPT_LEASED)
        return;
    if (arb_task_ext (task)->origin)
        arb_task_ext_rw (task)->expires_ms = 0;  //  a fan-out copy at its endpoint
    //  The same attempt goes on, and its timeout counts from its start, not
    //  from the claim (else each loss of a hung worker, or each restart,
    //  gave it a whole timeout more): the start kept of a lost lease taken
    //  back; after a restart, the time the worker says it has run it.
    uint64_t now = self->clock->now_ms;
    if (task->lost == lost)
        arb_task_ext_rw (task)->started_ms =
            held->ran_ms && held->ran_ms < now ? now - held->ran_ms : now;
    uint64_t started = arb_task_ext (task)->started_ms;
    uint64_t timeout = arb_task_ext (task)->timeout_ms, ran = now - started;
    if (timeout && started && started < now)
        arb_sched_retime (self->sched, task,
                          self->clock->mono_ms + (ran < timeout ? timeout - ran : 0));
    if (task->lost != lost
        && (arb_journal_begin (self->journal)
            || arb_journal_save (self->journal, task, ARB_STATE_READY, 0, NULL, NULL, NULL, 0)
            || arb_journal_unlose (self->journal, task->id))) {
        arb_life_halt (self, "claimed lease");
        return;
    }
    arb_outbox_event (self->outbox, task, ARB_STATE_RUNNING, NULL);
}

//  Takes back the tasks a re-registering worker still runs under an earlier
//  lease (the broker restarted, or had declared the worker dead, or the
//  worker never saw the WELCOME of its last REGISTER): each one that nobody
//  else has taken since is leased to the new session, so it runs once. The
//  worker stops the others.
static void
s_adopt (arb_life_t *self,
         arb_session_t *session,
         const arb_register_body_t *body,
         arb_msg_t *reply)
{
    arb_welcome_body_t *out = arb_msg_welcome (reply);
    for (size_t i = 0; i < body->held.n; i++) {
        const arb_held_t *held = &body->held.v[i];
        arb_task_t *task = arb_sched_find (self->sched, held->id);
        if (!task || !arb_sched_can_adopt (self->sched, task, session, held->lease))
            continue;
        s_adopt_task (self, task, session, held);
        arb_held_t *item =
            (arb_held_t *) arb_msg_grow (reply, &out->adopted, sizeof (arb_held_t), 1);
        item->id = task->id;
        item->lease = arb_task_ext (task)->lease;
    }
    if (body->held.n)
        zsys_info ("broker: worker claims running tasks name=%s held=%zu adopted=%zu",
                   arb_session_name (session), body->held.n, out->adopted.n);
}

//  Fan-out copies and broadcasts address workers by name: a second live
//  worker process under a name in use would share them, each copy going to
//  one of the two. Said, not refused; and only of a session heard from in
//  the last fifth of the liveness window (a heartbeat or two): a worker
//  that restarts registers under its name from a new pid while its old
//  session, silent, waits to be given up.
static void
s_check_name_taken (arb_life_t *self, arb_session_t *session)
{
    uint64_t window = self->config.liveness_ms / 5, now = self->clock->mono_ms;
    uint64_t recent = now > window ? now - window : 0;
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    for (arb_session_t *other = (arb_session_t *) zhashx_first (sessions); other;
         other = (arb_session_t *) zhashx_next (sessions))
        if (other != session && arb_session_registered (other)
            && arb_session_last_seen (other) >= recent
            && streq (arb_session_name (other), arb_session_name (session))
            && arb_session_worker (other) != arb_session_worker (session)) {
            zsys_warning ("broker: a second worker registered under a name in use name=%s: "
                          "fan-out and broadcast copies for that name go to one of them; give "
                          "each worker a name of its own (--name)",
                          arb_session_name (session));
            return;
        }
}

//  Ends every subscription of session: its credit goes, its leases stay.
static void
s_end_subs (arb_life_t *self, arb_session_t *session)
{
    while (arb_session_sub_count (session) > 0)
        arb_sched_credit (self->sched, session, arb_session_sub_at (session, 0)->id, NULL, 0, 0,
                          true);
}

arb_session_t *
arb_life_register (arb_life_t *self,
                   zframe_t *identity,
                   uint32_t reqid,
                   const arb_register_body_t *body,
                   arb_msg_t *welcome)
{
    arb_session_t *session =
        arb_sched_session (self->sched, zframe_data (identity), zframe_size (identity));
    if (session) {
        //  Registering again: the worker re-announces its free slots, so
        //  its old credit goes; its leases stay valid.
        s_end_subs (self, session);
        arb_session_touch (session, (uint64_t) zclock_mono ());
    }
    else
        session = arb_sched_open_session (self->sched, identity, (uint64_t) zclock_mono ());
    arb_session_set_info (session, body->name, body->mode, body->slots, body->pid, body->host);
    arb_session_set_handles (session, body->handles.v, body->handles.n);
    arb_session_set_register_id (session, reqid);
    arb_session_set_acks (session, body->acks, body->marks);
    //  its WELCOME waits for the commit: no DISPATCH (nor HEARTBEAT) may
    //  come before it
    arb_sched_welcome (self->sched, session);
    zsys_info ("broker: worker registered name=%s mode=%s slots=%u pid=%u host=%s",
               arb_session_name (session), arb_session_mode (session), body->slots, body->pid,
               body->host ? body->host : "");
    s_check_name_taken (self, session);
    s_adopt (self, session, body, welcome);
    return session;
}

int
arb_life_credit (arb_life_t *self, arb_session_t *session, const arb_credit_body_t *body)
{
    return arb_sched_credit (self->sched, session, body->sub, body->queues.v, body->queues.n,
                             body->credit, body->cancel);
}

void
arb_life_take (
    arb_life_t *self, arb_session_t *session, const char *queue, size_t max, arb_msg_t *reply)
{
    //  one task at a time, so that the reply stops at its bound
    self->take_reply = reply;
    self->take_bytes = 0;
    for (size_t taken = 0; taken < max && self->take_bytes < ARB_REPLY_BYTES; taken++)
        if (!arb_sched_take (self->sched, session, queue, 1, self->clock->now_ms,
                             self->clock->mono_ms))
            break;
    self->take_reply = NULL;
}

arb_task_t *
arb_life_leased (arb_life_t *self, arb_session_t *session, const arb_result_item_t *item)
{
    //  A result of an ended lease is never taken here, whoever sends it:
    //  a worker that still holds the outcome of a task it lost (the broker
    //  restarted, or gave it up) claims the task in its REGISTER, and sends
    //  the outcome again under the lease the WELCOME gives back.
    arb_task_t *task = arb_sched_leased (self->sched, item->id, item->lease);
    if (!task || arb_task_ext (task)->session != session) {
        if (arb_loglimit_take (&self->late, self->clock->mono_ms))
            zsys_notice ("broker: late result refused id=%" PRIu64 " lease=%" PRIx64
                         " worker=%s (its lease had ended)",
                         item->id, item->lease, arb_session_name (session));
        return NULL;
    }
    return task;
}

void
arb_life_forget_idle_queues (arb_life_t *self)
{
    zhashx_t *queues = arb_sched_queues (self->sched);
    zlistx_t *idle = zlistx_new ();
    for (arb_queue_t *q = (arb_queue_t *) zhashx_first (queues); q;
         q = (arb_queue_t *) zhashx_next (queues))
        if (arb_queue_is_idle (q))
            zlistx_add_end (idle, q);
    for (void *q = zlistx_first (idle); q; q = zlistx_next (idle))
        arb_sched_forget_queue (self->sched, (arb_queue_t *) q);
    zlistx_destroy (&idle);
}

//  A lease taken back from a session out of step with its worker: to the
//  head of its queue, no attempt counted (it may never have started), the
//  lease left for the same worker to claim.
static void
s_take_back (arb_life_t *self, arb_task_t *task)
{
    arb_sched_give_back (self->sched, task, true, self->clock->now_ms, self->clock->mono_ms);
    s_given_back (self, task, "take back");
}

void
arb_life_end_session (arb_life_t *self, arb_session_t *session, arb_end_t how)
{
    char why[ARB_NAME_MAX + 64];
    snprintf (why, sizeof (why), "worker %s went silent", arb_session_name (session));
    if (how == ARB_END_LOST)
        zsys_warning ("broker: worker lost name=%s leases=%zu", arb_session_name (session),
                      arb_session_lease_count (session));
    else if (how == ARB_END_OUT_OF_STEP)
        zsys_warning ("broker: worker out of step, its leases go back until it registers again "
                      "name=%s leases=%zu",
                      arb_session_name (session), arb_session_lease_count (session));
    else if (how == ARB_END_BYE)
        zsys_info ("broker: worker left name=%s leases=%zu", arb_session_name (session),
                   arb_session_lease_count (session));
    else if (how == ARB_END_SHUT_OUT && arb_session_is_shut_out (session))
        zsys_notice ("broker: worker shut out went silent, its leases go back (none lost) "
                     "name=%s leases=%zu",
                     arb_session_name (session), arb_session_lease_count (session));
    //  a relay's leases are its clients' (arbiter-gateway): lost with it,
    //  they were not the tasks' doing, and go back in their order
    bool relay = streq (arb_session_mode (session), "relay");
    arb_task_t *task;
    while (!self->halted && (task = arb_session_first_lease (session))) {
        //  shut out: the worker did not fail, nor did its tasks; it may
        //  claim them back if its certificate comes back
        if ((how == ARB_END_LOST && relay) || how == ARB_END_OUT_OF_STEP || how == ARB_END_SHUT_OUT)
            s_take_back (self, task);
        else if (how == ARB_END_LOST)
            s_lease_lost (self, &task, why);
        else
            arb_life_release (self, task);
    }
    if (!self->halted) {
        arb_sched_close_session (self->sched, &session);
        arb_life_forget_idle_queues (self);  //  its endpoint queues, if empty
    }
}

void
arb_life_shut_out (arb_life_t *self, arb_session_t *session)
{
    if (arb_session_lease_count (session) == 0) {
        arb_life_end_session (self, session, ARB_END_SHUT_OUT);
        return;
    }
    s_end_subs (self, session);
    arb_session_set_shut_out (session);
}

//  The leases a worker that says no mark has had, by time: those handed
//  out before its heartbeat before last (known_by), unless output waited
//  for it in the broker since then. Their DISPATCHes (big payloads, a
//  worker busy writing them to its tasks) may not have reached it, however
//  old their leases: the last of them lie in the kernel's buffers a while
//  after the broker wrote them. -1: not judged now.
static ssize_t
s_had_by_time (arb_life_t *self, arb_session_t *session, uint64_t known_by)
{
    uint64_t ago = self->clock->now_ms > known_by ? self->clock->now_ms - known_by : 0;
    uint64_t since = self->clock->mono_ms > ago ? self->clock->mono_ms - ago : 0;
    if (arb_outbox_unwritten (self->outbox, arb_session_identity (session), since))
        return -1;
    ssize_t had = 0;
    for (arb_task_t *task = arb_session_first_lease (session); task;
         task = arb_task_ext (task)->lease_next)
        had += arb_task_ext (task)->started_ms <= known_by;
    return had;
}

bool
arb_life_check_busy (arb_life_t *self, arb_session_t *session, uint32_t busy, uint64_t mark)
{
    uint64_t known_by = arb_session_beat (session, self->clock->now_ms);
    if (!arb_session_acks (session) || (!arb_session_marks (session) && !known_by))
        return false;
    if (arb_session_marks (session) && !mark) {
        arb_session_out_of_step (session, false);  //  it has read no mark: had nothing yet
        return false;
    }
    ssize_t had = 0;
    if (arb_session_marks (session)) {
        //  exact: what went out before a mark it read, it has read (or
        //  lost on the way)
        for (arb_task_t *task = arb_session_first_lease (session); task;
             task = arb_task_ext (task)->lease_next)
            had += arb_task_ext (task)->lease <= mark;
    }
    else if ((had = s_had_by_time (self, session, known_by)) < 0) {
        arb_session_out_of_step (session, false);
        return false;
    }
    if (arb_session_out_of_step (session, busy < (size_t) had) < 2)
        return false;
    zsys_warning ("broker: worker holds fewer tasks than its leases name=%s busy=%u leases=%zd",
                  arb_session_name (session), busy, had);
    arb_life_end_session (self, session, ARB_END_OUT_OF_STEP);
    return true;
}

//  ---------------------------------------------------------------------
//  Dispatch

//  A DISPATCH the socket did not take (the peer is gone, or its queue is
//  full): its tasks were not delivered, and the session is out of step
//  with its worker, which will never report them and counts credit the
//  broker has used. The session ends after the dispatch pass
//  (arb_life_dispatch): its leases go back, no attempt counted, and its
//  worker's next message is answered 410, so it registers again, claiming
//  what it does run.
static void
s_undelivered (arb_life_t *self, arb_session_t *session, const arb_held_t *leases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        arb_task_t *task = arb_sched_leased (self->sched, leases[i].id, leases[i].lease);
        if (task && arb_task_ext (task)->session == session && task->delivered)
            task->delivered--;  //  it never left
    }
    if (!arb_session_is_broken (session))
        zsys_warning ("broker: dispatch not delivered name=%s tasks=%zu errno=%d",
                      arb_session_name (session), n, errno);
    arb_session_set_broken (session);
}

//  The (id, lease) of every task of a DISPATCH, for s_undelivered; NULL if
//  it holds none. The caller frees it.
static arb_held_t *
s_dispatch_leases (arb_msg_t *msg, size_t *n)
{
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    *n = body->tasks.n;
    if (!*n)
        return NULL;
    arb_held_t *leases = (arb_held_t *) malloc (*n * sizeof (arb_held_t));
    assert (leases);
    for (size_t i = 0; i < *n; i++)
        leases[i] = (arb_held_t){.id = body->tasks.v[i].id, .lease = body->tasks.v[i].lease};
    return leases;
}

static void
s_send_outgoing (arb_life_t *self, arb_session_t *session)
{
    arb_msg_t **outgoing = arb_session_outgoing (session);
    if (*outgoing) {
        size_t n;
        arb_held_t *leases = s_dispatch_leases (*outgoing, &n);
        if (arb_outbox_send (self->outbox, outgoing))
            s_undelivered (self, session, leases, n);
        free (leases);
        arb_session_sent (session, self->clock->mono_ms);
    }
    *arb_session_outgoing_bytes (session) = 0;
}

void
arb_life_undelivered (arb_life_t *self, zframe_t *identity, const arb_held_t *leases, size_t n)
{
    arb_session_t *session =
        arb_sched_session (self->sched, zframe_data (identity), zframe_size (identity));
    if (!session)
        return;  //  gone already: its leases went with it
    s_undelivered (self, session, leases, n);
    arb_life_end_session (self, session, ARB_END_OUT_OF_STEP);
}

//  Adds a task's persistent arguments (kept in the journal only).
static int
s_add_args (arb_life_t *self, arb_task_t *task, arb_msg_t *msg, arb_dispatch_task_t *d)
{
    zframe_t *payload = NULL, *headers = NULL, *args = NULL;
    int rc = arb_journal_load_payload (self->journal, task->id, &payload, &headers, &args);
    if (rc == 0 && args)
        d->args = arb_msg_bindup (msg, zframe_data (args), zframe_size (args));
    zframe_destroy (&payload);
    zframe_destroy (&headers);
    zframe_destroy (&args);
    return rc;
}

//  Bytes a dispatched task adds to its message: payload, headers, args
//  and its parents' results.
static size_t
s_dispatch_bytes (const arb_dispatch_task_t *d)
{
    size_t bytes = zframe_size (d->payload) + d->headers.size + d->args.size;
    for (size_t i = 0; i < d->parents.n; i++)
        bytes += d->parents.v[i].result.size;
    return bytes;
}

//  The scheduler hands task to a worker: it goes into the DISPATCH being
//  filled for it (or answering its TAKE). A DISPATCH leaves once it holds
//  ARB_DISPATCH_BATCH tasks or ARB_REPLY_BYTES of them.
static int
s_dispatch_hook (void *arg, arb_session_t *session, arb_sub_t *sub, arb_task_t *task)
{
    (void) sub;
    arb_life_t *self = (arb_life_t *) arg;
    if (arb_session_is_broken (session))
        return -1;  //  it ends after this pass: the task stays where it was
    arb_msg_t *msg = self->take_reply;
    if (!msg) {
        arb_msg_t **outgoing = arb_session_outgoing (session);
        if (!*outgoing) {
            *outgoing = arb_msg_new (ARB_MSG_DISPATCH, 0);
            arb_msg_set_routing_id (*outgoing, arb_session_identity (session));
        }
        msg = *outgoing;
    }
    zframe_t *payload = NULL, *headers = NULL, *args = NULL;
    arb_bin_t cached, cached_headers = {NULL, 0};
    bool args_read = false;
    bool in_cache = arb_sched_cache_view (self->sched, task, &cached, &cached_headers);
    if (in_cache)
        payload = zframe_new (cached.data, cached.size);
    else if (arb_journal_load_payload (self->journal, task->id, &payload, &headers,
                                       task->has_args ? &args : NULL)) {
        //  payload, headers and arguments in the one read dispatch needs
        arb_life_halt (self, "dispatch");
        return -1;
    }
    else
        args_read = task->has_args;
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    arb_dispatch_task_t *d =
        (arb_dispatch_task_t *) arb_msg_grow (msg, &body->tasks, sizeof (*d), 1);
    d->id = task->id;
    d->lease = arb_task_ext (task)->lease;
    d->attempt = task->attempts;
    d->delivered = task->delivered;
    d->sub = arb_task_ext (task)->sub;
    d->queue = arb_msg_strdup (msg, arb_queue_name (task->queue));
    d->name = arb_msg_strdup (msg, task->name);
    d->timeout_ms = arb_task_ext (task)->timeout_ms;
    d->soft_timeout_ms = arb_task_ext (task)->soft_timeout_ms;
    d->created_ms = task->created_ms;
    d->payload = payload;
    if (in_cache) {
        //  the headers straight from the cache into the message, then the
        //  copy goes (a task rarely needs its payload twice)
        d->headers = arb_msg_bindup (msg, cached_headers.data, cached_headers.size);
        arb_sched_cache_drop (self->sched, task);
    }
    else if (headers) {
        d->headers = arb_msg_bindup (msg, zframe_data (headers), zframe_size (headers));
        zframe_destroy (&headers);
    }
    if (args_read) {
        if (args) {
            d->args = arb_msg_bindup (msg, zframe_data (args), zframe_size (args));
            zframe_destroy (&args);
        }
    }
    else if (task->has_args && s_add_args (self, task, msg, d)) {
        arb_life_halt (self, "dispatch");
        return -1;
    }
    if (arb_task_ext (task)->parents && arb_life_fill_parents (self, task, msg, d)) {
        arb_life_halt (self, "dispatch");
        return -1;
    }
    //  a fan-out copy that reached its endpoint can no longer go missing
    if (arb_task_ext (task)->origin)
        arb_task_ext_rw (task)->expires_ms = 0;
    arb_task_ext_rw (task)->started_ms = self->clock->now_ms;
    self->tally.dispatched++;
    arb_outbox_event (self->outbox, task, ARB_STATE_RUNNING, NULL);
    if (self->take_reply)
        self->take_bytes += s_dispatch_bytes (d);
    else if (body->tasks.n >= ARB_DISPATCH_BATCH
             || (*arb_session_outgoing_bytes (session) += s_dispatch_bytes (d)) >= ARB_REPLY_BYTES)
        s_send_outgoing (self, session);
    return 0;
}

static void
s_expired_hook (void *arg, arb_task_t *task)
{
    arb_life_t *self = (arb_life_t *) arg;
    arb_life_finish (self, &task, ARB_STATE_CANCELLED, "expired before it started", NULL);
}

//  Sends what a dispatch pass left in the sessions' outgoing DISPATCHes.
static void
s_send_dispatches (arb_life_t *self)
{
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    zlistx_t *broken = zlistx_new ();
    for (arb_session_t *session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions)) {
        s_send_outgoing (self, session);
        if (arb_session_is_broken (session))
            zlistx_add_end (broken, session);
    }
    //  out of step with their workers: ended now, their leases back
    for (void *session = zlistx_first (broken); session && !self->halted;
         session = zlistx_next (broken))
        arb_life_end_session (self, (arb_session_t *) session, ARB_END_OUT_OF_STEP);
    zlistx_destroy (&broken);
}

void
arb_life_dispatch (arb_life_t *self)
{
    arb_sched_dispatch (self->sched, self->clock->now_ms, self->clock->mono_ms);
    s_send_dispatches (self);
}

void
arb_life_dispatch_early (arb_life_t *self)
{
    arb_sched_dispatch_early (self->sched, self->clock->now_ms, self->clock->mono_ms);
    s_send_dispatches (self);
}

void
arb_life_committed (arb_life_t *self)
{
    arb_sched_committed (self->sched);
}

//  ---------------------------------------------------------------------
//  Timers

static void
s_timed_out (arb_life_t *self, arb_task_t *task)
{
    char why[128];
    snprintf (why, sizeof (why), "timed out after %.3g s",
              (double) arb_task_ext (task)->timeout_ms / 1000.0);
    s_stop (self, task, ARB_STOP_TIMEOUT);
    s_attempt_failed (self, &task, ARB_ATTEMPT_TIMEOUT, why);
}

void
arb_life_fire_timers (arb_life_t *self)
{
    arb_task_t *task;
    while (!self->halted && (task = arb_sched_pop_timer (self->sched, self->clock->mono_ms))) {
        uint64_t held_until = arb_queue_held_until (task->queue);
        if (task->state == ARB_STATE_READY && held_until > self->clock->mono_ms)
            //  no worker could take it yet: a worker may still claim it
            arb_sched_rearm (self->sched, task, held_until);
        else if (task->state == ARB_STATE_READY) {
            //  expired before any worker took it
            char why[2 * ARB_NAME_MAX + 128];
            if (arb_task_ext (task)->origin && task->lost)
                snprintf (why, sizeof (why),
                          "its endpoint was lost while running it and did not take it again "
                          "in time (%s)",
                          arb_queue_name (task->queue));
            else if (arb_task_ext (task)->origin)
                snprintf (why, sizeof (why), "not received by its endpoint in time (%s)",
                          arb_queue_name (task->queue));
            else
                snprintf (why, sizeof (why), "expired before it started");
            arb_life_finish (self, &task, ARB_STATE_CANCELLED, why, NULL);
        }
        else if (task->state == ARB_STATE_SCHEDULED
                 && arb_task_ext (task)->not_before_ms > self->clock->now_ms)
            //  The timer runs on the monotonic clock and the start time is
            //  wall time; the two, read in whole ms, can disagree by one,
            //  and the wall clock may have been set back. Never early:
            //  wait out the rest.
            arb_sched_make_scheduled (self->sched, task, arb_task_ext (task)->not_before_ms,
                                      self->clock->now_ms, self->clock->mono_ms);
        else if (task->state == ARB_STATE_SCHEDULED) {
            arb_sched_make_ready (self->sched, task, s_back_to_head (task), self->clock->now_ms,
                                  self->clock->mono_ms);
            arb_outbox_event (self->outbox, task, ARB_STATE_READY, NULL);
        }
        else if (task->state == ARB_STATE_RUNNING)
            s_timed_out (self, task);
    }
    arb_life_fire_schedules (self);
}
