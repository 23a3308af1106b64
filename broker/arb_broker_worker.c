/*  arb_broker_worker.c — the broker's worker verbs and the task lifecycle.

    An attempt ends in one of five ways, and each has its own rule:

      succeeded   final; the result is stored and sent to the watchers
      failed      the handler said so, or the attempt timed out: counts
                  an attempt; retried after its backoff while attempts
                  remain, else dead with the last error (every error is
                  kept in the task's history)
      released    given back (Kestrel abort, AMQP nack, worker leaving):
                  to the head of its queue, no attempt counted
      lost        its worker died: not the task's fault, so no attempt is
                  counted, but `lost` is; at max_lost the task is dead
                  ("quarantined"): one poison task cannot take down every
                  worker in turn
      cancelled   final; a running task is stopped on its worker

    Whatever ends an attempt, the lease ends with it, so a result that
    arrives later quotes a lease that is no longer current and is refused,
    with one exception: a worker that still runs a task nobody else has
    taken since (the broker restarted, or had given the worker up) may
    claim it back, and the attempt goes on (s_adopt, s_adopt_result).
*/

#include "arb_broker_priv.h"

#define ARB_DISPATCH_BATCH 512  //  tasks per DISPATCH message at most

//  ---------------------------------------------------------------------
//  Ending tasks

static uint64_t
s_purge_at (arb_broker_t *self, arb_task_t *task, int state)
{
    uint64_t keep = task->retention_ms;
    if (!keep)
        keep = arb_queue_settings (task->queue)->retention_ms;
    if (!keep)
        keep = state == ARB_STATE_DEAD ? self->config.dead_retention_ms : self->config.retention_ms;
    return self->now_ms + keep;
}

static const char *
s_worker_name (arb_task_t *task)
{
    return task->session ? arb_session_name (task->session) : NULL;
}

void
arb_broker_finish (
    arb_broker_t *self, arb_task_t **task_p, int state, const char *error, zframe_t **result_p)
{
    arb_task_t *task = *task_p;
    if (arb_journal_begin (self->journal)
        || arb_journal_save (self->journal, task, state, self->now_ms, s_worker_name (task),
                             error ? error : "", result_p ? *result_p : NULL,
                             s_purge_at (self, task, state))) {
        arb_broker_fail (self, "finish");
        return;
    }
    //  Every watcher but the last gets a copy of the result; the last, the
    //  frame itself (most tasks have one watcher: no copy at all).
    size_t left = task->watchers ? zlist_size (task->watchers) : 0;
    for (zframe_t *w = left ? (zframe_t *) zlist_first (task->watchers) : NULL; w;
         w = (zframe_t *) zlist_next (task->watchers)) {
        zframe_t *copy = result_p && *result_p && --left ? zframe_dup (*result_p) : NULL;
        arb_broker_done_record (self, w, task->id, state, task->attempts, error,
                                copy ? &copy : result_p);
    }
    arb_broker_event (self, task, state, error);
    uint64_t id = task->id, origin = task->origin;
    bool has_children = task->has_children;
    arb_sched_finish (self->sched, task_p, state, self->now_ms);
    if (has_children || origin)
        arb_broker_after_finish (self, id, state, has_children, origin);
}

//  Writes an attempt that did not succeed into the task's history.
static int
s_record_attempt (arb_broker_t *self, arb_task_t *task, int outcome, const char *error)
{
    arb_attempt_info_t attempt = {
        .attempt = task->attempts,
        .started_ms = task->started_ms,
        .ended_ms = self->now_ms,
        .worker = s_worker_name (task),
        .outcome = (uint32_t) outcome,
        .error = error,
    };
    if (arb_journal_begin (self->journal)
        || arb_journal_add_attempt (self->journal, task->id, &attempt)) {
        arb_broker_fail (self, "attempt");
        return -1;
    }
    return 0;
}

//  Delay before the next attempt, after task->attempts failed ones.
static uint64_t
s_backoff_ms (arb_broker_t *self, arb_task_t *task)
{
    if (task->backoff == ARB_BACKOFF_FIXED)
        return task->backoff_ms;
    if (task->backoff != ARB_BACKOFF_EXP)
        return 0;
    uint64_t cap = task->backoff_cap_ms ? task->backoff_cap_ms : ARB_BACKOFF_MAX_MS;
    uint64_t delay = task->backoff_ms;
    for (uint32_t n = 1; n < task->attempts && delay < cap; n++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    //  jitter: uniformly between half and all of the delay, so workers
    //  that failed together do not come back together
    if (task->jitter && delay > 1)
        delay = delay / 2 + arb_broker_random (self) % (delay - delay / 2 + 1);
    return delay;
}

//  Sends STOP for a running task's current lease (after the commit).
static void
s_stop (arb_broker_t *self, arb_task_t *task, arb_stop_reason_t reason)
{
    arb_msg_t *stop = arb_msg_new (ARB_MSG_STOP, 0);
    arb_msg_set_routing_id (stop, arb_session_identity (task->session));
    arb_stop_body_t *body = arb_msg_stop (stop);
    arb_stop_item_t *item =
        (arb_stop_item_t *) arb_msg_grow (stop, &body->tasks, sizeof (*item), 1);
    item->id = task->id;
    item->lease = task->lease;
    item->reason = reason;
    arb_broker_reply (self, &stop);
}

//  An attempt failed (the handler, or its timeout): retry or dead.
static void
s_attempt_failed (arb_broker_t *self, arb_task_t **task_p, int outcome, const char *error)
{
    arb_task_t *task = *task_p;
    if (s_record_attempt (self, task, outcome, error))
        return;
    arb_broker_event (self, task, ARB_STATE_FAILED, error);
    if (task->lease)
        arb_sched_unlease (self->sched, task);
    int policy = arb_queue_settings (task->queue)->on_failure;
    if (policy == ARB_ON_FAILURE_HEAD) {
        //  Arbeiter's rule: back to the head of its queue, however often
        arb_sched_make_ready (self->sched, task, true, self->now_ms, self->mono_ms);
        if (arb_journal_save (self->journal, task, task->state, 0, NULL, error, NULL, 0))
            arb_broker_fail (self, "requeue");
        arb_broker_event (self, task, task->state, error);
        return;
    }
    if (task->attempts >= task->max_attempts || policy == ARB_ON_FAILURE_DEAD) {
        arb_broker_finish (self, task_p, ARB_STATE_DEAD, error, NULL);
        return;
    }
    uint64_t not_before = self->now_ms + s_backoff_ms (self, task);
    arb_sched_make_scheduled (self->sched, task, not_before, self->now_ms, self->mono_ms);
    if (arb_journal_save (self->journal, task, task->state, 0, NULL, error, NULL, 0)) {
        arb_broker_fail (self, "retry");
        return;
    }
    arb_broker_event (self, task, task->state, error);
}

//  A lease died with its worker: not the task's fault.
static void
s_lease_lost (arb_broker_t *self, arb_task_t **task_p, const char *error)
{
    arb_task_t *task = *task_p;
    if (s_record_attempt (self, task, ARB_ATTEMPT_LOST, error))
        return;
    uint64_t lease = task->lease;
    arb_sched_unlease (self->sched, task);
    task->attempts--;
    task->lost++;
    if (task->lost >= self->config.max_lost) {
        char why[ARB_TEXT_MAX + 128];
        snprintf (why, sizeof (why), "quarantined: its worker was lost %u times (last: %s)",
                  task->lost, error);
        arb_broker_finish (self, task_p, ARB_STATE_DEAD, why, NULL);
        return;
    }
    arb_sched_make_ready (self->sched, task, false, self->now_ms, self->mono_ms);
    task->last_lease = lease;  //  its worker may come back with it (arb_sched_can_adopt)
    if (arb_journal_save (self->journal, task, ARB_STATE_READY, 0, NULL, NULL, NULL, 0)) {
        arb_broker_fail (self, "lost lease");
        return;
    }
    arb_broker_event (self, task, ARB_STATE_READY, error);
}

//  A lease given back: the task goes to the head of its queue.
static void
s_release (arb_broker_t *self, arb_task_t *task)
{
    arb_sched_unlease (self->sched, task);
    task->attempts--;
    arb_sched_make_ready (self->sched, task, true, self->now_ms, self->mono_ms);
    arb_broker_event (self, task, ARB_STATE_READY, NULL);
}

int
arb_broker_cancel_task (arb_broker_t *self, arb_task_t **task_p, const char *why)
{
    self->cancelled++;
    arb_task_t *task = *task_p;
    if (task->state == ARB_STATE_RUNNING) {
        s_stop (self, task, ARB_STOP_CANCEL);
        if (s_record_attempt (self, task, ARB_ATTEMPT_CANCELLED, why))
            return task->state;
    }
    arb_broker_finish (self, task_p, ARB_STATE_CANCELLED, why, NULL);
    return ARB_STATE_CANCELLED;
}

//  ---------------------------------------------------------------------
//  Worker verbs

//  Leases a task a worker has claimed back to its session (see
//  arb_sched_adopt). A ready one is running again: a lost lease taken back
//  keeps its start and is no longer counted as lost, in the journal too;
//  after a restart the start is unknown and becomes now.
static void
s_adopt_task (arb_broker_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease)
{
    uint32_t lost = task->lost;
    if (arb_sched_adopt (self->sched, task, session, lease, self->mono_ms) != ARB_ADOPT_LEASED)
        return;
    if (task->origin)
        task->expires_ms = 0;  //  a fan-out copy at its endpoint
    if (task->lost == lost)
        task->started_ms = self->now_ms;
    else if (arb_journal_begin (self->journal)
             || arb_journal_save (self->journal, task, ARB_STATE_READY, 0, NULL, NULL, NULL, 0)) {
        arb_broker_fail (self, "claimed lease");
        return;
    }
    arb_broker_event (self, task, ARB_STATE_RUNNING, NULL);
}

//  Takes back the tasks a re-registering worker still runs under an earlier
//  lease (the broker restarted, or had declared the worker dead, or the
//  worker never saw the WELCOME of its last REGISTER): each one that nobody
//  else has taken since is leased to the new session, so it runs once. The
//  worker stops the others.
static void
s_adopt (arb_broker_t *self, arb_session_t *session, arb_register_body_t *body, arb_msg_t *reply)
{
    arb_welcome_body_t *out = arb_msg_welcome (reply);
    for (size_t i = 0; i < body->held.n; i++) {
        arb_held_t *held = &body->held.v[i];
        arb_task_t *task = arb_sched_find (self->sched, held->id);
        if (!task || !arb_sched_can_adopt (self->sched, task, session, held->lease))
            continue;
        s_adopt_task (self, task, session, held->lease);
        arb_held_t *item =
            (arb_held_t *) arb_msg_grow (reply, &out->adopted, sizeof (arb_held_t), 1);
        item->id = task->id;
        item->lease = task->lease;
    }
    if (body->held.n)
        zsys_info ("broker: worker claims running tasks name=%s held=%zu adopted=%zu",
                   arb_session_name (session), body->held.n, out->adopted.n);
}

static void
s_register (arb_broker_t *self, arb_msg_t *msg)
{
    arb_register_body_t *body = arb_msg_register (msg);
    for (size_t i = 0; i < body->handles.n; i++)
        if (!*body->handles.v[i]) {
            arb_broker_refuse (self, msg, ARB_ERR_INVALID, "handles[%zu]: must not be empty", i);
            return;
        }
    zframe_t *identity = arb_msg_routing_id (msg);
    arb_session_t *session = arb_sched_session (self->sched, identity);
    if (session) {
        //  Registering again: the worker re-announces its free slots, so
        //  its old credit goes; its leases stay valid.
        while (arb_session_sub_count (session))
            arb_sched_credit (self->sched, session, arb_session_sub_at (session, 0)->id, NULL, 0, 0,
                              true);
        arb_session_touch (session, self->mono_ms);
    }
    else
        session = arb_sched_open_session (self->sched, identity, self->mono_ms);
    arb_session_set_info (session, body->name, body->mode, body->slots, body->pid, body->host);
    arb_session_set_handles (session, body->handles.v, body->handles.n);
    arb_session_set_register_id (session, arb_msg_reqid (msg));
    zsys_info ("broker: worker registered name=%s mode=%s slots=%u pid=%u host=%s",
               arb_session_name (session), arb_session_mode (session), body->slots, body->pid,
               body->host ? body->host : "");
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_WELCOME);
    arb_welcome_body_t *out = arb_msg_welcome (reply);
    out->heartbeat_ms = self->config.heartbeat_ms;
    out->liveness_ms = self->config.liveness_ms;
    out->epoch = self->epoch;
    out->max_payload = self->config.max_payload;
    s_adopt (self, session, body, reply);
    arb_broker_reply (self, &reply);
    arb_session_sent (session, self->mono_ms);
}

static void
s_credit (arb_broker_t *self, arb_session_t *session, arb_msg_t *msg)
{
    arb_credit_body_t *body = arb_msg_credit (msg);
    for (size_t i = 0; i < body->queues.n; i++)
        if (!*body->queues.v[i]) {
            arb_broker_refuse (self, msg, ARB_ERR_INVALID, "queues[%zu]: must not be empty", i);
            return;
        }
    if (arb_sched_credit (self->sched, session, body->sub, body->queues.v, body->queues.n,
                          body->credit, body->cancel))
        arb_broker_refuse (self, msg, ARB_ERR_BAD_REQUEST,
                           "queues: subscription %u is new and names no queue", body->sub);
}

static void
s_take (arb_broker_t *self, arb_session_t *session, arb_msg_t *msg)
{
    arb_take_body_t *body = arb_msg_take (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_DISPATCH);
    self->take_reply = reply;
    arb_sched_take (self->sched, session, body->queue, body->max ? body->max : 1, self->now_ms,
                    self->mono_ms);
    self->take_reply = NULL;
    arb_broker_reply (self, &reply);
}

//  The task of a result under an ended lease that its worker may still
//  deliver, or NULL: the result was sent while the broker restarted (it
//  waited in the worker's socket), or before the worker was declared dead,
//  and the task is still ready (arb_sched_can_adopt).
static arb_task_t *
s_adoptable (arb_broker_t *self, const arb_result_item_t *item)
{
    if (item->routed)
        return NULL;  //  its items went to a lease that is gone: it must run again
    arb_task_t *task = arb_sched_find (self->sched, item->id);
    if (!task || task->state != ARB_STATE_READY
        || !arb_sched_can_adopt (self->sched, task, NULL, item->lease))
        return NULL;
    return task;
}

//  Leases an adoptable result's task to the session again, so that the
//  result is kept: the task ran once. Else NULL.
static arb_task_t *
s_adopt_result (arb_broker_t *self, arb_session_t *session, arb_result_item_t *item)
{
    arb_task_t *task = s_adoptable (self, item);
    if (!task)
        return NULL;
    s_adopt_task (self, task, session, item->lease);
    item->lease = task->lease;
    return task;
}

//  A RESULT from a peer without a session, with a result s_adopt_result
//  would keep: a session is opened for it (its REGISTER, on the same
//  socket, comes next). Else NULL.
static arb_session_t *
s_session_for_results (arb_broker_t *self, arb_msg_t *msg)
{
    arb_result_body_t *body = arb_msg_result (msg);
    for (size_t i = 0; i < body->results.n; i++)
        if (s_adoptable (self, &body->results.v[i]))
            return arb_sched_open_session (self->sched, arb_msg_routing_id (msg), self->mono_ms);
    return NULL;
}

static void
s_result (arb_broker_t *self, arb_session_t *session, arb_msg_t *msg)
{
    arb_result_body_t *body = arb_msg_result (msg);
    for (size_t i = 0; i < body->results.n && !self->fatal; i++) {
        arb_result_item_t *item = &body->results.v[i];
        arb_task_t *task = arb_sched_leased (self->sched, item->id, item->lease);
        if (!task)
            task = s_adopt_result (self, session, item);
        if (!task || task->session != session) {
            zsys_notice ("broker: late result refused id=%" PRIu64 " lease=%" PRIx64
                         " worker=%s (its lease had ended)",
                         item->id, item->lease, arb_session_name (session));
            continue;
        }
        size_t size = item->result ? zframe_size (item->result) : 0;
        if (item->outcome == ARB_OUTCOME_OK && size > self->config.max_payload) {
            char why[128];
            snprintf (why, sizeof (why), "result of %zu bytes is over the %zu-byte limit", size,
                      self->config.max_payload);
            s_attempt_failed (self, &task, ARB_OUTCOME_FAIL, why);
        }
        else if (item->outcome == ARB_OUTCOME_OK && task->emit_refused)
            s_attempt_failed (self, &task, ARB_OUTCOME_FAIL,
                              "routed items were refused (too many, too large, or a bad queue)");
        else if (item->outcome == ARB_OUTCOME_OK) {
            if (arb_broker_commit_emits (self, task) == 0)
                arb_broker_finish (self, &task, ARB_STATE_SUCCEEDED, NULL, &item->result);
        }
        else if (item->outcome == ARB_OUTCOME_RELEASE)
            s_release (self, task);
        else {
            const char *error = item->error && *item->error ? item->error : "failed";
            if (item->outcome != ARB_OUTCOME_FAIL)
                error = "worker sent an unknown outcome";
            s_attempt_failed (self, &task, ARB_OUTCOME_FAIL, error);
        }
    }
}

//  Ends a session: BYE gives its tasks back, silence loses them.
static void
s_end_session (arb_broker_t *self, arb_session_t *session, bool lost)
{
    char why[ARB_NAME_MAX + 64];
    snprintf (why, sizeof (why), "worker %s went silent", arb_session_name (session));
    if (lost)
        zsys_warning ("broker: worker lost name=%s leases=%zu", arb_session_name (session),
                      arb_session_lease_count (session));
    else
        zsys_info ("broker: worker left name=%s leases=%zu", arb_session_name (session),
                   arb_session_lease_count (session));
    arb_task_t *task;
    while (!self->fatal && (task = arb_session_first_lease (session))) {
        if (lost)
            s_lease_lost (self, &task, why);
        else
            s_release (self, task);
    }
    if (!self->fatal) {
        arb_sched_close_session (self->sched, &session);
        arb_broker_forget_idle_queues (self);  //  its endpoint queues, if empty
    }
}

void
arb_broker_on_worker (arb_broker_t *self, arb_msg_t *msg)
{
    if (arb_msg_type (msg) == ARB_MSG_REGISTER) {
        s_register (self, msg);
        return;
    }
    arb_session_t *session = arb_sched_session (self->sched, arb_msg_routing_id (msg));
    if (!session && arb_msg_type (msg) == ARB_MSG_RESULT)
        session = s_session_for_results (self, msg);
    if (!session || !arb_session_registered (session)) {
        if (session && arb_msg_type (msg) == ARB_MSG_RESULT) {
            s_result (self, session, msg);
            //  nothing left to keep it for: its REGISTER opens another
            if (!self->fatal && arb_session_lease_count (session) == 0)
                arb_sched_close_session (self->sched, &session);
        }
        arb_broker_refuse (self, msg, ARB_ERR_UNKNOWN_WORKER,
                           "unknown worker: send REGISTER again");
        return;
    }
    arb_session_touch (session, self->mono_ms);
    switch (arb_msg_type (msg)) {
        case ARB_MSG_CREDIT:
            s_credit (self, session, msg);
            break;
        case ARB_MSG_TAKE:
            s_take (self, session, msg);
            break;
        case ARB_MSG_RESULT:
            s_result (self, session, msg);
            break;
        case ARB_MSG_HEARTBEAT:
            arb_session_set_busy (session, arb_msg_heartbeat (msg)->busy);
            break;
        case ARB_MSG_BYE:
            s_end_session (self, session, false);
            break;
        case ARB_MSG_EMIT:
            arb_broker_on_emit (self, session, msg);
            break;
        default:
            break;
    }
}

//  ---------------------------------------------------------------------
//  Dispatch

static void
s_send_outgoing (arb_broker_t *self, arb_session_t *session)
{
    arb_msg_t **outgoing = arb_session_outgoing (session);
    if (*outgoing) {
        arb_msg_send (outgoing, self->router);
        arb_session_sent (session, self->mono_ms);
    }
}

//  Adds a task's persistent arguments (kept in the journal only).
static int
s_add_args (arb_broker_t *self, arb_task_t *task, arb_msg_t *msg, arb_dispatch_task_t *d)
{
    zframe_t *payload = NULL, *headers = NULL, *args = NULL;
    int rc = arb_journal_load_payload (self->journal, task->id, &payload, &headers, &args);
    if (rc == 0 && args) {
        uint8_t *copy = (uint8_t *) arb_msg_alloc (msg, zframe_size (args));
        memcpy (copy, zframe_data (args), zframe_size (args));
        d->args = (arb_bin_t){copy, zframe_size (args)};
    }
    zframe_destroy (&payload);
    zframe_destroy (&headers);
    zframe_destroy (&args);
    return rc;
}

int
arb_broker_dispatch_hook (void *arg, arb_session_t *session, arb_sub_t *sub, arb_task_t *task)
{
    (void) sub;
    arb_broker_t *self = (arb_broker_t *) arg;
    arb_msg_t *msg = self->take_reply;
    if (!msg) {
        arb_msg_t **outgoing = arb_session_outgoing (session);
        if (!*outgoing) {
            *outgoing = arb_msg_new (ARB_MSG_DISPATCH, 0);
            arb_msg_set_routing_id (*outgoing, arb_session_identity (session));
        }
        msg = *outgoing;
    }
    zframe_t *payload = NULL, *headers = NULL;
    if (task->cached) {
        //  The cached copy goes out as is: a task rarely needs its payload
        //  twice, and a retry reads it back from the journal.
        arb_sched_uncache (self->sched, task, &payload, &headers);
        if (!payload)
            payload = zframe_new_empty ();
    }
    else if (arb_journal_load_payload (self->journal, task->id, &payload, &headers, NULL)) {
        arb_broker_fail (self, "dispatch");
        return -1;
    }
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    arb_dispatch_task_t *d =
        (arb_dispatch_task_t *) arb_msg_grow (msg, &body->tasks, sizeof (*d), 1);
    d->id = task->id;
    d->lease = task->lease;
    d->attempt = task->attempts;
    d->sub = task->sub;
    d->queue = arb_msg_strdup (msg, arb_queue_name (task->queue));
    d->name = arb_msg_strdup (msg, task->name);
    d->timeout_ms = task->timeout_ms;
    d->soft_timeout_ms = task->soft_timeout_ms;
    d->created_ms = task->created_ms;
    d->payload = payload;
    if (headers) {
        uint8_t *copy = (uint8_t *) arb_msg_alloc (msg, zframe_size (headers));
        memcpy (copy, zframe_data (headers), zframe_size (headers));
        d->headers = (arb_bin_t){copy, zframe_size (headers)};
        zframe_destroy (&headers);
    }
    if (task->has_args && s_add_args (self, task, msg, d)) {
        arb_broker_fail (self, "dispatch");
        return -1;
    }
    if (task->parents && arb_broker_fill_parents (self, task, msg, d)) {
        arb_broker_fail (self, "dispatch");
        return -1;
    }
    //  a fan-out copy that reached its endpoint can no longer go missing
    if (task->origin)
        task->expires_ms = 0;
    task->started_ms = self->now_ms;
    arb_broker_event (self, task, ARB_STATE_RUNNING, NULL);
    if (!self->take_reply && body->tasks.n >= ARB_DISPATCH_BATCH)
        s_send_outgoing (self, session);
    return 0;
}

void
arb_broker_expired_hook (void *arg, arb_task_t *task)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    arb_broker_finish (self, &task, ARB_STATE_CANCELLED, "expired before it started", NULL);
}

void
arb_broker_send_dispatches (arb_broker_t *self)
{
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    for (arb_session_t *session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions))
        s_send_outgoing (self, session);
}

//  ---------------------------------------------------------------------
//  Timers and liveness

static void
s_timed_out (arb_broker_t *self, arb_task_t *task)
{
    char why[128];
    snprintf (why, sizeof (why), "timed out after %.3g s", (double) task->timeout_ms / 1000.0);
    s_stop (self, task, ARB_STOP_TIMEOUT);
    s_attempt_failed (self, &task, ARB_ATTEMPT_TIMEOUT, why);
}

void
arb_broker_fire_timers (arb_broker_t *self)
{
    arb_task_t *task;
    while (!self->fatal && (task = arb_sched_pop_timer (self->sched, self->mono_ms))) {
        uint64_t held_until = arb_queue_held_until (task->queue);
        if (task->state == ARB_STATE_READY && held_until > self->mono_ms)
            //  no worker could take it yet: a worker may still claim it
            arb_sched_rearm (self->sched, task, held_until);
        else if (task->state == ARB_STATE_READY) {
            //  expired before any worker took it
            char why[ARB_NAME_MAX + 64];
            if (task->origin)
                snprintf (why, sizeof (why), "not received by its endpoint in time (%s)",
                          arb_queue_name (task->queue));
            else
                snprintf (why, sizeof (why), "expired before it started");
            arb_broker_finish (self, &task, ARB_STATE_CANCELLED, why, NULL);
        }
        else if (task->state == ARB_STATE_SCHEDULED && task->not_before_ms > self->now_ms)
            //  The timer runs on the monotonic clock and the start time is
            //  wall time; the two, read in whole ms, can disagree by one,
            //  and the wall clock may have been set back. Never early:
            //  wait out the rest.
            arb_sched_make_scheduled (self->sched, task, task->not_before_ms, self->now_ms,
                                      self->mono_ms);
        else if (task->state == ARB_STATE_SCHEDULED) {
            arb_sched_make_ready (self->sched, task, false, self->now_ms, self->mono_ms);
            arb_broker_event (self, task, ARB_STATE_READY, NULL);
        }
        else if (task->state == ARB_STATE_RUNNING)
            s_timed_out (self, task);
    }
}

void
arb_broker_check_workers (arb_broker_t *self)
{
    if (self->mono_ms < self->next_liveness_ms)
        return;
    uint32_t tick = self->config.heartbeat_ms / 2;
    self->next_liveness_ms = self->mono_ms + (tick > 50 ? tick : 50);
    arb_session_t *session;
    while (!self->fatal && (session = arb_sched_silent_session (self->sched, self->mono_ms)))
        s_end_session (self, session, true);
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    for (session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions)) {
        if (self->mono_ms - arb_session_last_sent (session) < self->config.heartbeat_ms)
            continue;
        arb_msg_t *beat = arb_msg_new (ARB_MSG_HEARTBEAT, 0);
        arb_msg_set_routing_id (beat, arb_session_identity (session));
        arb_broker_reply (self, &beat);
        arb_session_sent (session, self->mono_ms);
    }
}
