/*  arb_broker_client.c — the broker's client verbs.

    Each handler validates the whole request before it changes anything:
    a refused request has no effect. Writes go into the turn's transaction;
    replies go to the outbox and leave after the commit.
*/

#include "arb_broker_priv.h"
#include "arb_dag.h"

#define ARB_LIST_DEFAULT 1000

//  ---------------------------------------------------------------------
//  SUBMIT

//  Checks one task spec; on refusal writes the reason (naming the field).
static int
s_check_spec (arb_broker_t *self, const arb_task_spec_t *spec, size_t index, char *why, size_t size)
{
#define REFUSE(...)                                         \
    do {                                                    \
        int n = snprintf (why, size, "tasks[%zu].", index); \
        snprintf (why + n, size - (size_t) n, __VA_ARGS__); \
        return -1;                                          \
    } while (0)
    if (!*spec->name)
        REFUSE ("name: must not be empty");
    if (spec->queue && !*spec->queue)
        REFUSE ("queue: must not be empty");
    if (spec->retries > ARB_RETRIES_MAX)
        REFUSE ("retries: %u is over the limit of %d", spec->retries, ARB_RETRIES_MAX);
    if (spec->backoff > ARB_BACKOFF_EXP)
        REFUSE ("backoff: unknown policy %u (0 none, 1 fixed, 2 exponential)", spec->backoff);
    if (spec->backoff_ms > ARB_BACKOFF_MAX_MS)
        REFUSE ("backoff_ms: %" PRIu64 " is over the limit of %llu", spec->backoff_ms,
                ARB_BACKOFF_MAX_MS);
    if (spec->backoff_cap_ms > ARB_BACKOFF_MAX_MS)
        REFUSE ("backoff_cap_ms: %" PRIu64 " is over the limit of %llu", spec->backoff_cap_ms,
                ARB_BACKOFF_MAX_MS);
    if (spec->delay_ms > ARB_DELAY_MAX_MS)
        REFUSE ("delay_ms: %" PRIu64 " is over the limit of %llu", spec->delay_ms,
                ARB_DELAY_MAX_MS);
    if (spec->at_ms > self->now_ms + ARB_DELAY_MAX_MS)
        REFUSE ("at_ms: %" PRIu64 " is more than a year ahead", spec->at_ms);
    if (spec->timeout_ms > ARB_TIMEOUT_MAX_MS)
        REFUSE ("timeout_ms: %" PRIu64 " is over the limit of %llu", spec->timeout_ms,
                ARB_TIMEOUT_MAX_MS);
    if (spec->soft_timeout_ms > ARB_TIMEOUT_MAX_MS)
        REFUSE ("soft_timeout_ms: %" PRIu64 " is over the limit of %llu", spec->soft_timeout_ms,
                ARB_TIMEOUT_MAX_MS);
    if (spec->timeout_ms && spec->soft_timeout_ms >= spec->timeout_ms)
        REFUSE ("soft_timeout_ms: %" PRIu64 " is not below timeout_ms (%" PRIu64 ")",
                spec->soft_timeout_ms, spec->timeout_ms);
    if (spec->retention_ms > ARB_RETENTION_MAX_MS)
        REFUSE ("retention_ms: %" PRIu64 " is over the limit of %llu", spec->retention_ms,
                ARB_RETENTION_MAX_MS);
    if (strchr (spec->queue ? spec->queue : "", '@'))
        REFUSE ("queue: '@' is reserved for endpoint queues");
    return 0;
#undef REFUSE
}

//  Adds a watcher to a task, once per routing id.
static void
s_watch (arb_task_t *task, zframe_t *identity)
{
    if (!task->watchers)
        task->watchers = zlist_new ();
    for (zframe_t *w = (zframe_t *) zlist_first (task->watchers); w;
         w = (zframe_t *) zlist_next (task->watchers))
        if (zframe_eq (w, identity))
            return;
    zlist_append (task->watchers, zframe_dup (identity));
}

//  Tells a peer about a final task now (it is in the journal only).
static int
s_done_from_journal (arb_broker_t *self, zframe_t *identity, uint64_t id, bool *found)
{
    arb_msg_t *scratch = arb_msg_new (ARB_MSG_DONE, 0);
    arb_done_task_t done = {0};
    int rc = arb_journal_done (self->journal, id, scratch, &done, found);
    if (rc == 0 && *found)
        arb_broker_done_record (self, identity, id, (int) done.state, done.attempts, done.error,
                                &done.result);
    zframe_destroy (&done.result);
    arb_msg_destroy (&scratch);
    return rc;
}

//  A task for a spec (state set; the caller gives it its id).
static arb_task_t *
s_make_task (arb_broker_t *self, arb_task_spec_t *spec)
{
    arb_task_t *task =
        arb_sched_new_task (self->sched, spec->queue ? spec->queue : "default", spec->name);
    task->priority = spec->priority;
    task->max_attempts = spec->retries + 1;
    task->backoff = (uint8_t) spec->backoff;
    task->backoff_ms = spec->backoff_ms;
    task->backoff_cap_ms = spec->backoff_cap_ms;
    task->jitter = !spec->no_jitter;
    task->timeout_ms = spec->timeout_ms;
    task->soft_timeout_ms = spec->soft_timeout_ms;
    task->expires_ms = spec->expires_ms;
    task->retention_ms = spec->retention_ms;
    task->created_ms = self->now_ms;
    uint64_t start = spec->delay_ms ? self->now_ms + spec->delay_ms : 0;
    if (spec->at_ms > start)
        start = spec->at_ms;
    task->not_before_ms = start;
    task->state = start > self->now_ms ? ARB_STATE_SCHEDULED : ARB_STATE_READY;
    return task;
}

//  Keeps the payload (and headers) in memory if the cache has room; the
//  journal has them either way.
static void
s_cache_payload (arb_broker_t *self, arb_task_t *task, zframe_t **payload_p, zframe_t **headers_p)
{
    size_t size = zframe_size (*payload_p) + (*headers_p ? zframe_size (*headers_p) : 0);
    if (arb_sched_cache_reserve (self->sched, size)) {
        task->payload = *payload_p;
        task->headers = *headers_p;
        task->cached = true;
        *payload_p = NULL;
        *headers_p = NULL;
    }
    zframe_destroy (payload_p);
    zframe_destroy (headers_p);
}

//  The new task of spec i of a batch, journaled with its edges. ids[] holds
//  the id of every task of the batch (new or found by key), indexed as
//  the batch, so that refs resolve to ids.
static arb_task_t *
s_store_task (arb_broker_t *self,
              arb_submit_body_t *body,
              arb_dag_t *dag,
              size_t i,
              const uint64_t *ids,
              const bool *parent_in_batch,
              uint64_t flow)
{
    arb_task_spec_t *spec = &body->tasks.v[i];
    arb_task_t *task = s_make_task (self, spec);
    task->id = ids[i];
    task->flow = flow;
    task->input = (uint8_t) spec->input;
    task->has_args = spec->args.size > 0;
    task->parents = (uint32_t) spec->after.n;
    task->has_children = parent_in_batch[i];
    task->pending = task->parents;
    bool fan_out = spec->endpoints.n || spec->broadcast;
    if (task->parents || fan_out)
        task->state = ARB_STATE_WAITING;
    zframe_t *headers =
        spec->headers.size ? zframe_new (spec->headers.data, spec->headers.size) : NULL;
    zframe_t *args = task->has_args ? zframe_new (spec->args.data, spec->args.size) : NULL;
    arb_journal_row_t row = {.key = spec->key,
                             .ref = spec->ref,
                             .payload = spec->payload,
                             .headers = headers,
                             .args = args};
    int rc = arb_journal_insert (self->journal, task, &row);
    zframe_destroy (&args);
    for (size_t k = 0; rc == 0 && k < spec->after.n; k++) {
        arb_dep_t *dep = &spec->after.v[k];
        uint64_t parent = dep->ref ? ids[arb_dag_index (dag, dep->ref)] : dep->id;
        rc = arb_journal_add_dep (self->journal, task->id, parent, (int) dep->when);
        if (rc == 0 && dep->id) {
            //  a task that existed before the batch learns it has children
            rc = arb_journal_set_has_children (self->journal, dep->id);
            arb_task_t *known = arb_sched_find (self->sched, dep->id);
            if (known)
                known->has_children = true;
        }
    }
    if (rc == 0 && fan_out)
        rc = arb_broker_fan_out (self, task, spec, spec->payload, headers);
    if (rc) {
        zframe_destroy (&headers);
        arb_sched_discard_task (self->sched, &task);
        return NULL;
    }
    s_cache_payload (self, task, &spec->payload, &headers);
    return task;
}

//  Gives every task of the batch its id: the first task's for a known key,
//  a new one otherwise. Returns -1 on journal failure.
static int
s_assign_ids (arb_broker_t *self,
              arb_submit_body_t *body,
              uint64_t *ids,
              arb_submitted_task_t *results)
{
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_task_spec_t *spec = &body->tasks.v[i];
        uint64_t id = 0;
        int state = 0;
        if (spec->key && arb_journal_find_key (self->journal, spec->key, &id, &state))
            return -1;
        //  two specs with one key in one batch are one task
        for (size_t k = 0; !id && spec->key && k < i; k++)
            if (body->tasks.v[k].key && streq (body->tasks.v[k].key, spec->key)) {
                id = ids[k];
                state = ARB_STATE_READY;
            }
        if (id) {
            arb_task_t *known = arb_sched_find (self->sched, id);
            results[i] = (arb_submitted_task_t){id, true, known ? known->state : (uint32_t) state};
        }
        else
            id = ++self->next_id;
        ids[i] = id;
    }
    return 0;
}

//  The state of a task now: from memory, else from the journal.
static int
s_state_of (arb_broker_t *self, uint64_t id)
{
    arb_task_t *task = arb_sched_find (self->sched, id);
    if (task)
        return task->state;
    int state = 0;
    arb_journal_state (self->journal, id, &state, NULL, 0);
    return state;
}

//  Stores every new task of a batch, then lets them run or wait: first all
//  are known to the scheduler, then those that depend on older tasks look
//  at them, so a task ended at once still tells its children in the batch.
static int
s_store_batch (arb_broker_t *self,
               arb_msg_t *msg,
               arb_dag_t *dag,
               const uint64_t *ids,
               const arb_submitted_task_t *results,
               uint64_t flow)
{
    arb_submit_body_t *body = arb_msg_submit (msg);
    size_t n = body->tasks.n;
    bool *parent_in_batch = (bool *) calloc (n ? n : 1, sizeof (bool));
    arb_task_t **made = (arb_task_t **) calloc (n ? n : 1, sizeof (arb_task_t *));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < body->tasks.v[i].after.n; k++)
            if (body->tasks.v[i].after.v[k].ref)
                parent_in_batch[arb_dag_index (dag, body->tasks.v[i].after.v[k].ref)] = true;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!results[i].existing) {
            made[i] = s_store_task (self, body, dag, i, ids, parent_in_batch, flow);
            rc = made[i] ? 0 : -1;
        }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (made[i]) {
            arb_sched_add (self->sched, made[i], self->now_ms, self->mono_ms);
            arb_broker_event (self, made[i], made[i]->state, NULL);
        }
    for (size_t i = 0; i < n && rc == 0 && !self->fatal; i++) {
        bool on_older = false;
        for (size_t k = 0; made[i] && k < body->tasks.v[i].after.n; k++)
            on_older |= body->tasks.v[i].after.v[k].id != 0;
        arb_task_t *task = on_older ? arb_sched_find (self->sched, ids[i]) : NULL;
        if (task && task->state == ARB_STATE_WAITING)
            arb_broker_recount (self, &task);
    }
    free (parent_in_batch);
    free (made);
    return rc || self->fatal ? -1 : 0;
}

static void
s_submit (arb_broker_t *self, arb_msg_t *msg)
{
    arb_submit_body_t *body = arb_msg_submit (msg);
    size_t n = body->tasks.n;
    char why[ARB_TEXT_MAX];
    for (size_t i = 0; i < n; i++)
        if (s_check_spec (self, &body->tasks.v[i], i, why, sizeof (why))) {
            arb_broker_refuse (self, msg, ARB_ERR_INVALID, "%s", why);
            return;
        }
    arb_dag_t *dag = arb_dag_new (body->tasks.v, n);
    if (arb_broker_check_flow (self, msg, dag, why, sizeof (why))) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID, "%s", why);
        arb_dag_destroy (&dag);
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_SUBMITTED);
    arb_submitted_body_t *out = arb_msg_submitted (reply);
    arb_submitted_task_t *results = (arb_submitted_task_t *) arb_msg_grow (
        reply, &out->tasks, sizeof (arb_submitted_task_t), n);
    uint64_t *ids = (uint64_t *) calloc (n ? n : 1, sizeof (uint64_t));
    if (arb_journal_begin (self->journal) || s_assign_ids (self, body, ids, results))
        goto failed;
    if (body->flow_kind
        && arb_journal_insert_flow (self->journal, (int) body->flow_kind, body->flow_name,
                                    self->now_ms, &out->flow))
        goto failed;
    if (s_store_batch (self, msg, dag, ids, results, out->flow))
        goto failed;
    for (size_t i = 0; i < n; i++) {
        results[i].id = ids[i];
        results[i].state = (uint32_t) s_state_of (self, ids[i]);
        bool found;
        if (!body->watch)
            continue;
        arb_task_t *task = arb_sched_find (self->sched, ids[i]);
        if (task)
            s_watch (task, arb_msg_routing_id (msg));
        else if (s_done_from_journal (self, arb_msg_routing_id (msg), ids[i], &found))
            goto failed;
    }
    arb_broker_reply (self, &reply);
    goto done;
failed:
    arb_msg_destroy (&reply);
    arb_broker_fail (self, "submit");
done:
    arb_dag_destroy (&dag);
    free (ids);
}

//  ---------------------------------------------------------------------
//  STATUS, LIST

//  Overlays what only memory knows (a lease, attempts not yet journaled,
//  whether a worker runs it).
static void
s_overlay (arb_broker_t *self, arb_msg_t *reply, arb_task_info_t *info, arb_task_t *task)
{
    info->no_handler = arb_sched_is_unhandled (self->sched, task);
    info->state = task->state;
    info->attempts = task->attempts;
    info->lost = task->lost;
    info->not_before_ms = task->not_before_ms;
    if (task->state == ARB_STATE_RUNNING) {
        info->started_ms = task->started_ms;
        info->worker = arb_msg_strdup (reply, arb_session_name (task->session));
    }
}

//  The history in the journal holds the attempts that did not succeed; the
//  one going on now, or the one that succeeded, is added from the task.
static void
s_current_attempt (arb_msg_t *reply, arb_task_info_t *info)
{
    bool running = info->state == ARB_STATE_RUNNING;
    if (!running && info->state != ARB_STATE_SUCCEEDED)
        return;
    arb_attempt_info_t *a =
        (arb_attempt_info_t *) arb_msg_grow (reply, &info->history, sizeof (*a), 1);
    a->attempt = info->attempts;
    a->started_ms = info->started_ms;
    a->ended_ms = running ? 0 : info->finished_ms;
    a->worker = info->worker;
    a->outcome = running ? ARB_ATTEMPT_RUNNING : ARB_OUTCOME_OK;
}

static void
s_status (arb_broker_t *self, arb_msg_t *msg)
{
    arb_status_body_t *body = arb_msg_status (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_STATUS_REPLY);
    arb_status_reply_body_t *out = arb_msg_status_reply (reply);
    arb_task_info_t *infos = (arb_task_info_t *) arb_msg_grow (
        reply, &out->tasks, sizeof (arb_task_info_t), body->ids.n);
    for (size_t i = 0; i < body->ids.n; i++) {
        if (arb_journal_task_info (self->journal, body->ids.v[i], true, reply, &infos[i])) {
            arb_msg_destroy (&reply);
            arb_broker_fail (self, "status");
            return;
        }
        arb_task_t *task = arb_sched_find (self->sched, body->ids.v[i]);
        if (task)
            s_overlay (self, reply, &infos[i], task);
        s_current_attempt (reply, &infos[i]);
    }
    arb_broker_reply (self, &reply);
}

static int
s_compare_info (const void *a, const void *b)
{
    uint64_t x = ((const arb_task_info_t *) a)->id, y = ((const arb_task_info_t *) b)->id;
    return x < y ? -1 : x > y;
}

//  LIST pages by id through unfinished tasks (memory) and final ones
//  (journal) alike: both sources give their first matches after after_id,
//  and the smallest ids win.
static void
s_list (arb_broker_t *self, arb_msg_t *msg)
{
    arb_list_body_t *body = arb_msg_list (msg);
    if (body->state > ARB_STATE_MAX || body->state == ARB_STATE_FAILED) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID, "state: %u is not a state a task rests in",
                           body->state);
        return;
    }
    uint32_t limit = body->limit ? body->limit : ARB_LIST_DEFAULT;
    if (limit > ARB_LIST_MAX / 2)
        limit = ARB_LIST_MAX / 2;
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_LIST_REPLY);
    arb_list_reply_body_t *out = arb_msg_list_reply (reply);
    if ((body->state == 0 || arb_state_is_final ((int) body->state))
        && arb_journal_list_final (self->journal, (int) body->state, body->queue, body->flow,
                                   body->after_id, limit, reply, out)) {
        arb_msg_destroy (&reply);
        arb_broker_fail (self, "list");
        return;
    }
    if (body->state == 0 || !arb_state_is_final ((int) body->state)) {
        zhashx_t *tasks = arb_sched_tasks (self->sched);
        for (arb_task_t *task = (arb_task_t *) zhashx_first (tasks); task;
             task = (arb_task_t *) zhashx_next (tasks)) {
            if (task->id <= body->after_id || (body->state && task->state != body->state)
                || (body->flow && task->flow != body->flow)
                || (body->queue && !streq (body->queue, arb_queue_name (task->queue))))
                continue;
            arb_task_info_t *info =
                (arb_task_info_t *) arb_msg_grow (reply, &out->tasks, sizeof (*info), 1);
            if (arb_journal_task_info (self->journal, task->id, false, reply, info)) {
                arb_msg_destroy (&reply);
                arb_broker_fail (self, "list");
                return;
            }
            s_overlay (self, reply, info, task);
        }
    }
    if (out->tasks.n > 1)
        qsort (out->tasks.v, out->tasks.n, sizeof (arb_task_info_t), s_compare_info);
    if (out->tasks.n > limit) {
        out->tasks.n = limit;
        out->more = true;
    }
    arb_broker_reply (self, &reply);
}

//  ---------------------------------------------------------------------
//  WATCH

static void
s_watch_ids (arb_broker_t *self, arb_msg_t *msg)
{
    arb_watch_body_t *body = arb_msg_watch (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_WATCHING);
    arb_watching_body_t *out = arb_msg_watching (reply);
    zframe_t *identity = arb_msg_routing_id (msg);
    for (size_t i = 0; i < body->ids.n; i++) {
        arb_task_t *task = arb_sched_find (self->sched, body->ids.v[i]);
        bool found = true;
        if (task)
            s_watch (task, identity);
        else if (s_done_from_journal (self, identity, body->ids.v[i], &found)) {
            arb_msg_destroy (&reply);
            arb_broker_fail (self, "watch");
            return;
        }
        if (found)
            out->watching++;
        else
            *(uint64_t *) arb_msg_grow (reply, &out->unknown, sizeof (uint64_t), 1) =
                body->ids.v[i];
    }
    arb_broker_reply (self, &reply);
}

//  ---------------------------------------------------------------------
//  CANCEL, RETRY

//  Ids of the unfinished tasks of a queue (the map must not change while walked).
static zlistx_t *
s_queue_task_ids (arb_broker_t *self, const char *queue)
{
    zlistx_t *ids = zlistx_new ();
    zhashx_t *tasks = arb_sched_tasks (self->sched);
    for (arb_task_t *task = (arb_task_t *) zhashx_first (tasks); task;
         task = (arb_task_t *) zhashx_next (tasks))
        if (streq (arb_queue_name (task->queue), queue))
            zlistx_add_end (ids, (void *) (uintptr_t) task->id);
    return ids;
}

//  Answers for one id of a CANCEL or RETRY that found nothing to do in
//  memory: 404 if unknown, else 409 with its state.
static int
s_outcome_from_journal (arb_broker_t *self, uint64_t id, arb_outcome_info_t *outcome)
{
    int state;
    if (arb_journal_state (self->journal, id, &state, NULL, 0))
        return -1;
    outcome->id = id;
    outcome->code = state ? ARB_ERR_CONFLICT : ARB_ERR_NOT_FOUND;
    outcome->state = (uint32_t) state;
    return 0;
}

static void
s_cancel (arb_broker_t *self, arb_msg_t *msg)
{
    arb_cancel_body_t *body = arb_msg_cancel (msg);
    if (!body->ids.n && !body->queue && !body->group && !body->flow) {
        arb_broker_refuse (self, msg, ARB_ERR_BAD_REQUEST, "give ids, a queue, a group or a flow");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_CANCEL_REPLY);
    arb_cancel_reply_body_t *out = arb_msg_cancel_reply (reply);
    uint64_t cancelled_before = self->cancelled;  //  count: what this request cancelled
    for (size_t i = 0; i < body->ids.n; i++) {
        arb_outcome_info_t *outcome =
            (arb_outcome_info_t *) arb_msg_grow (reply, &out->tasks, sizeof (*outcome), 1);
        arb_task_t *task = arb_sched_find (self->sched, body->ids.v[i]);
        if (task) {
            outcome->id = body->ids.v[i];
            outcome->state = (uint32_t) arb_broker_cancel_tree (self, &task, "cancelled");
        }
        else if (s_outcome_from_journal (self, body->ids.v[i], outcome))
            goto failed;
    }
    if (body->queue) {
        zlistx_t *ids = s_queue_task_ids (self, body->queue);
        for (void *id = zlistx_first (ids); id; id = zlistx_next (ids)) {
            arb_task_t *task = arb_sched_find (self->sched, (uint64_t) (uintptr_t) id);
            if (task)
                arb_broker_cancel_task (self, &task, "cancelled with its queue");
        }
        zlistx_destroy (&ids);
    }
    if (body->flow) {
        int kind = 0;
        if (arb_journal_flow_kind (self->journal, body->flow, &kind))
            goto failed;
        arb_broker_cancel_flow (self, body->flow, kind == ARB_FLOW_GROUP);
    }
    if (body->group) {
        zlistx_t *flows = arb_journal_flows_named (self->journal, body->group, ARB_FLOW_GROUP);
        if (!flows)
            goto failed;
        for (void *f = zlistx_first (flows); f && !self->fatal; f = zlistx_next (flows))
            arb_broker_cancel_flow (self, (uint64_t) (uintptr_t) f, true);
        zlistx_destroy (&flows);
    }
    if (self->fatal)
        goto failed;
    out->count = (uint32_t) (self->cancelled - cancelled_before);
    arb_broker_reply (self, &reply);
    return;
failed:
    arb_msg_destroy (&reply);
    arb_broker_fail (self, "cancel");
}

typedef struct {
    arb_broker_t *self;
    arb_task_t *task;  //  the revived task, owned by the scheduler once added
} s_revive_t;

//  Puts a dead task back to ready with its attempts reset; its history stays.
static int
s_revive_row (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    s_revive_t *revive = (s_revive_t *) arg;
    arb_broker_t *self = revive->self;
    if (row->state != ARB_STATE_DEAD)
        return 0;
    arb_task_t *task = arb_sched_task_from_row (self->sched, row, queue, name);
    task->attempts = 0;
    task->lost = 0;
    task->not_before_ms = 0;
    task->state = ARB_STATE_READY;
    if (arb_journal_save (self->journal, task, ARB_STATE_READY, 0, NULL, "", NULL, 0)) {
        arb_sched_discard_task (self->sched, &task);
        return -1;
    }
    arb_queue_counts (task->queue)[ARB_STATE_DEAD]--;
    arb_sched_add (self->sched, task, self->now_ms, self->mono_ms);
    arb_broker_event (self, task, ARB_STATE_READY, NULL);
    revive->task = task;
    return 0;
}

//  Revives one task by id: fills its outcome. -1 on journal failure.
static int
s_retry_one (arb_broker_t *self, uint64_t id, arb_outcome_info_t *outcome)
{
    outcome->id = id;
    if (arb_sched_find (self->sched, id)) {
        outcome->code = ARB_ERR_CONFLICT;
        outcome->state = arb_sched_find (self->sched, id)->state;
        return 0;
    }
    s_revive_t revive = {self, NULL};
    bool found;
    if (arb_journal_load_task (self->journal, id, s_revive_row, &revive, &found) || self->fatal)
        return -1;
    if (revive.task) {
        outcome->state = ARB_STATE_READY;
        return 0;
    }
    return s_outcome_from_journal (self, id, outcome);
}

static void
s_retry (arb_broker_t *self, arb_msg_t *msg)
{
    arb_retry_body_t *body = arb_msg_retry (msg);
    if (!body->ids.n && !(body->queue && body->all)) {
        arb_broker_refuse (self, msg, ARB_ERR_BAD_REQUEST, "give ids, or a queue and all");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_RETRY_REPLY);
    arb_retry_reply_body_t *out = arb_msg_retry_reply (reply);
    zlistx_t *ids = NULL;
    if (arb_journal_begin (self->journal))
        goto failed;
    for (size_t i = 0; i < body->ids.n; i++) {
        arb_outcome_info_t *outcome =
            (arb_outcome_info_t *) arb_msg_grow (reply, &out->tasks, sizeof (*outcome), 1);
        if (s_retry_one (self, body->ids.v[i], outcome))
            goto failed;
        if (outcome->code == 0)
            out->count++;
    }
    if (body->queue && body->all) {
        ids = arb_journal_dead_ids (self->journal, body->queue);
        if (!ids)
            goto failed;
        for (void *id = zlistx_first (ids); id; id = zlistx_next (ids)) {
            arb_outcome_info_t outcome = {0};
            if (s_retry_one (self, (uint64_t) (uintptr_t) id, &outcome))
                goto failed;
            if (outcome.code == 0)
                out->count++;
        }
        zlistx_destroy (&ids);
    }
    arb_broker_reply (self, &reply);
    return;
failed:
    zlistx_destroy (&ids);
    arb_msg_destroy (&reply);
    arb_broker_fail (self, "retry");
}

//  ---------------------------------------------------------------------
//  STATS

static bool
s_queue_is_empty (arb_queue_t *queue)
{
    for (int state = 1; state <= ARB_STATE_MAX; state++)
        if (arb_queue_counts (queue)[state])
            return false;
    return true;
}

static void
s_stats (arb_broker_t *self, arb_msg_t *msg)
{
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_STATS_REPLY);
    arb_stats_reply_body_t *out = arb_msg_stats_reply (reply);
    out->now_ms = self->now_ms;
    out->uptime_ms = self->now_ms - self->started_ms;
    zhashx_t *queues = arb_sched_queues (self->sched);
    for (arb_queue_t *queue = (arb_queue_t *) zhashx_first (queues); queue;
         queue = (arb_queue_t *) zhashx_next (queues)) {
        //  a worker's endpoint queue is worth showing only when it holds something
        if (strchr (arb_queue_name (queue), '@') && s_queue_is_empty (queue))
            continue;
        arb_queue_info_t *info =
            (arb_queue_info_t *) arb_msg_grow (reply, &out->queues, sizeof (*info), 1);
        info->name = arb_msg_strdup (reply, arb_queue_name (queue));
        info->counts.n = ARB_STATE_MAX + 1;
        info->counts.v = (uint64_t *) arb_msg_alloc (reply, info->counts.n * sizeof (uint64_t));
        memcpy (info->counts.v, arb_queue_counts (queue), info->counts.n * sizeof (uint64_t));
        info->paused = arb_queue_settings (queue)->paused;
        info->done_last_minute = arb_queue_done_last_minute (queue, self->now_ms);
        info->oldest_ready_ms = arb_queue_oldest_ms (queue, self->now_ms);
    }
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    for (arb_session_t *session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions)) {
        arb_worker_stats_t *w =
            (arb_worker_stats_t *) arb_msg_grow (reply, &out->workers, sizeof (*w), 1);
        w->name = arb_msg_strdup (reply, arb_session_name (session));
        w->identity = arb_msg_strdup (reply, arb_session_key (session));
        w->slots = arb_session_slots (session);
        w->credit = (uint32_t) arb_session_credit (session);
        w->busy = (uint32_t) arb_session_lease_count (session);
        //  last heartbeat as Unix ms (the session keeps monotonic time)
        w->last_seen_ms = self->now_ms - (self->mono_ms - arb_session_last_seen (session));
        for (size_t s = 0; s < arb_session_sub_count (session); s++) {
            arb_sub_t *sub = arb_session_sub_at (session, s);
            for (size_t q = 0; q < sub->queue_count; q++)
                *(const char **) arb_msg_grow (reply, &w->queues, sizeof (char *), 1) =
                    arb_msg_strdup (reply, sub->queues[q]);
        }
    }
    arb_broker_reply (self, &reply);
}

//  ---------------------------------------------------------------------
//  QUEUE, EVENTS, PEEK, META, PING

static int
s_save_settings (arb_broker_t *self, arb_queue_t *queue)
{
    arb_queue_settings_t *settings = arb_queue_settings (queue);
    arb_limit_t *limit = arb_queue_limit (queue);
    char key[ARB_NAME_MAX + 16];
    snprintf (key, sizeof (key), "queue.%s", arb_queue_name (queue));
    char value[256];
    snprintf (value, sizeof (value),
              "paused=%u max_running=%u rate=%u retention_ms=%" PRIu64 " on_failure=%d",
              settings->paused, limit->max_running, limit->rate_per_sec, settings->retention_ms,
              settings->on_failure);
    if (arb_journal_begin (self->journal)
        || arb_journal_meta_set (self->journal, key, value, strlen (value)))
        return -1;
    return 0;
}

static void
s_queue_op (arb_broker_t *self, arb_msg_t *msg)
{
    arb_queue_body_t *body = arb_msg_queue (msg);
    bool pause = streq (body->op, "pause"), resume = streq (body->op, "resume");
    bool purge = streq (body->op, "purge"), set = streq (body->op, "set");
    if (!pause && !resume && !purge && !set) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID,
                           "op: '%s' is not pause, resume, purge or set", body->op);
        return;
    }
    int on_failure = -1;
    if (set) {
        const char *names[] = {"retry", "head", "dead"};
        for (int i = 0; i < 3; i++)
            if (body->on_failure && streq (body->on_failure, names[i]))
                on_failure = i;
        if (body->on_failure && on_failure < 0) {
            arb_broker_refuse (self, msg, ARB_ERR_INVALID,
                               "on_failure: '%s' is not retry, head or dead", body->on_failure);
            return;
        }
    }
    for (size_t i = 0; set && i < body->clear.n; i++) {
        const char *name = body->clear.v[i];
        if (!streq (name, "max_running") && !streq (name, "rate_per_sec")
            && !streq (name, "retention_ms") && !streq (name, "on_failure")) {
            arb_broker_refuse (self, msg, ARB_ERR_INVALID, "clear[%zu]: '%s' is not a setting", i,
                               name);
            return;
        }
    }
    if (set && body->retention_ms > ARB_RETENTION_MAX_MS) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID, "retention_ms: over the limit of %llu",
                           ARB_RETENTION_MAX_MS);
        return;
    }
    arb_queue_t *queue = arb_sched_queue (self->sched, body->queue);
    arb_queue_settings_t *settings = arb_queue_settings (queue);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_OK);
    if (pause || resume)
        settings->paused = pause;
    if (set) {
        arb_limit_t *limit = arb_queue_limit (queue);
        if (body->max_running)
            limit->max_running = body->max_running;
        if (body->rate_per_sec)
            limit->rate_per_sec = body->rate_per_sec;
        if (body->retention_ms)
            settings->retention_ms = body->retention_ms;
        if (on_failure >= 0)
            settings->on_failure = on_failure;
        for (size_t i = 0; i < body->clear.n; i++) {
            const char *name = body->clear.v[i];
            if (streq (name, "max_running"))
                limit->max_running = 0;
            else if (streq (name, "rate_per_sec"))
                limit->rate_per_sec = 0;
            else if (streq (name, "retention_ms"))
                settings->retention_ms = 0;
            else if (streq (name, "on_failure"))
                settings->on_failure = ARB_ON_FAILURE_RETRY;
        }
    }
    if (purge) {
        //  everything not yet running goes; running tasks finish
        zlistx_t *ids = s_queue_task_ids (self, body->queue);
        for (void *id = zlistx_first (ids); id; id = zlistx_next (ids)) {
            arb_task_t *task = arb_sched_find (self->sched, (uint64_t) (uintptr_t) id);
            if (task && task->state != ARB_STATE_RUNNING) {
                arb_broker_cancel_task (self, &task, "purged");
                arb_msg_ok (reply)->count++;
            }
        }
        zlistx_destroy (&ids);
    }
    else if (s_save_settings (self, queue)) {
        arb_msg_destroy (&reply);
        arb_broker_fail (self, "queue settings");
        return;
    }
    arb_sched_touch_queue (self->sched, queue);
    arb_broker_reply (self, &reply);
}

static void
s_limit (arb_broker_t *self, arb_msg_t *msg)
{
    arb_limit_body_t *body = arb_msg_limit (msg);
    if (!*body->name) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID, "name: must not be empty");
        return;
    }
    for (size_t i = 0; i < body->clear.n; i++)
        if (!streq (body->clear.v[i], "max_running") && !streq (body->clear.v[i], "rate_per_sec")) {
            arb_broker_refuse (self, msg, ARB_ERR_INVALID, "clear[%zu]: '%s' is not a limit", i,
                               body->clear.v[i]);
            return;
        }
    arb_limit_t *limit = arb_sched_name_limit (self->sched, body->name);
    if (body->max_running)
        limit->max_running = body->max_running;
    if (body->rate_per_sec)
        limit->rate_per_sec = body->rate_per_sec;
    for (size_t i = 0; i < body->clear.n; i++) {
        if (streq (body->clear.v[i], "max_running"))
            limit->max_running = 0;
        else
            limit->rate_per_sec = 0;
    }
    uint32_t max_running = limit->max_running, rate = limit->rate_per_sec;
    arb_sched_touch_name (self->sched, body->name);  //  may free the limit if unset
    char key[ARB_NAME_MAX + 16];
    snprintf (key, sizeof (key), "limit.%s", body->name);
    char value[64];
    snprintf (value, sizeof (value), "max_running=%u rate=%u", max_running, rate);
    int rc = arb_journal_begin (self->journal);
    if (rc == 0 && (max_running || rate))
        rc = arb_journal_meta_set (self->journal, key, value, strlen (value));
    else if (rc == 0)
        rc = arb_journal_meta_del (self->journal, key);
    if (rc) {
        arb_broker_fail (self, "limit");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_OK);
    arb_broker_reply (self, &reply);
}

static void
s_events (arb_broker_t *self, arb_msg_t *msg)
{
    arb_events_body_t *body = arb_msg_events (msg);
    arb_broker_subscribe (self, arb_msg_routing_id (msg), body->queue, !body->off);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_OK);
    arb_broker_reply (self, &reply);
}

static void
s_peek (arb_broker_t *self, arb_msg_t *msg)
{
    arb_peek_body_t *body = arb_msg_peek (msg);
    arb_queue_t *queue = arb_sched_find_queue (self->sched, body->queue);
    uint32_t max = body->max ? body->max : 1;
    if (max > 1000)
        max = 1000;
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PEEK_REPLY);
    arb_peek_reply_body_t *out = arb_msg_peek_reply (reply);
    //  Take the first tasks off the heap to see them in order, then put
    //  them back: their keys are unchanged, so the order is too.
    arb_task_t *seen[1000];
    size_t count = 0;
    while (queue && count < max && (seen[count] = arb_queue_pop (queue)))
        count++;
    for (size_t i = 0; i < count; i++) {
        arb_task_t *task = seen[i];
        arb_dispatch_task_t *d =
            (arb_dispatch_task_t *) arb_msg_grow (reply, &out->tasks, sizeof (*d), 1);
        d->id = task->id;
        d->attempt = task->attempts + 1;
        d->queue = arb_msg_strdup (reply, arb_queue_name (task->queue));
        d->name = arb_msg_strdup (reply, task->name);
        d->timeout_ms = task->timeout_ms;
        d->soft_timeout_ms = task->soft_timeout_ms;
        d->created_ms = task->created_ms;
        if (task->cached)
            d->payload = task->payload ? zframe_dup (task->payload) : zframe_new_empty ();
        else {
            zframe_t *headers = NULL;
            if (arb_journal_load_payload (self->journal, task->id, &d->payload, &headers, NULL))
                arb_broker_fail (self, "peek");
            zframe_destroy (&headers);
        }
    }
    for (size_t i = 0; i < count; i++)
        arb_queue_push (queue, seen[i]);
    if (self->fatal)
        arb_msg_destroy (&reply);
    else
        arb_broker_reply (self, &reply);
}

typedef struct {
    arb_msg_t *reply;
    arb_meta_reply_body_t *out;
} s_meta_list_t;

static void
s_meta_item (void *arg, const char *key, const void *data, size_t size)
{
    s_meta_list_t *list = (s_meta_list_t *) arg;
    arb_meta_item_t *item =
        (arb_meta_item_t *) arb_msg_grow (list->reply, &list->out->items, sizeof (*item), 1);
    item->key = arb_msg_strdup (list->reply, key);
    uint8_t *copy = (uint8_t *) arb_msg_alloc (list->reply, size);
    if (size)  //  an empty value's pointer may be NULL
        memcpy (copy, data, size);
    item->value = (arb_bin_t){copy, size};
}

static void
s_meta (arb_broker_t *self, arb_msg_t *msg)
{
    arb_meta_body_t *body = arb_msg_meta (msg);
    bool get = streq (body->op, "get"), set = streq (body->op, "set");
    bool del = streq (body->op, "del"), list = streq (body->op, "list");
    if (!get && !set && !del && !list) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID, "op: '%s' is not get, set, del or list",
                           body->op);
        return;
    }
    if (!list && (!body->key || !*body->key)) {
        arb_broker_refuse (self, msg, ARB_ERR_BAD_REQUEST, "key: required for %s", body->op);
        return;
    }
    if ((set || del) && strncmp (body->key, "broker.", 7) == 0) {
        arb_broker_refuse (self, msg, ARB_ERR_INVALID, "key: 'broker.' keys are the broker's own");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_META_REPLY);
    s_meta_list_t items = {reply, arb_msg_meta_reply (reply)};
    int rc = 0;
    if (get) {
        zchunk_t *value = NULL;
        rc = arb_journal_meta_get (self->journal, body->key, &value);
        if (rc == 0 && value)
            s_meta_item (&items, body->key, zchunk_data (value), zchunk_size (value));
        zchunk_destroy (&value);
    }
    else if (list)
        rc = arb_journal_meta_list (self->journal, body->key, s_meta_item, &items);
    else {
        rc = arb_journal_begin (self->journal);
        if (rc == 0 && set)
            rc =
                arb_journal_meta_set (self->journal, body->key, body->value.data, body->value.size);
        if (rc == 0 && del)
            rc = arb_journal_meta_del (self->journal, body->key);
    }
    if (rc) {
        arb_msg_destroy (&reply);
        arb_broker_fail (self, "meta");
        return;
    }
    arb_broker_reply (self, &reply);
}

static void
s_ping (arb_broker_t *self, arb_msg_t *msg)
{
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PONG);
    arb_pong_body_t *out = arb_msg_pong (reply);
    out->version = ARB_VERSION;
    out->epoch = self->epoch;
    out->now_ms = self->now_ms;
    arb_broker_reply (self, &reply);
}

//  ---------------------------------------------------------------------
//  Dispatch by type

void
arb_broker_on_client (arb_broker_t *self, arb_msg_t *msg)
{
    switch (arb_msg_type (msg)) {
        case ARB_MSG_SUBMIT:
            s_submit (self, msg);
            break;
        case ARB_MSG_STATUS:
            s_status (self, msg);
            break;
        case ARB_MSG_LIST:
            s_list (self, msg);
            break;
        case ARB_MSG_WATCH:
            s_watch_ids (self, msg);
            break;
        case ARB_MSG_CANCEL:
            s_cancel (self, msg);
            break;
        case ARB_MSG_RETRY:
            s_retry (self, msg);
            break;
        case ARB_MSG_STATS:
            s_stats (self, msg);
            break;
        case ARB_MSG_QUEUE:
            s_queue_op (self, msg);
            break;
        case ARB_MSG_LIMIT:
            s_limit (self, msg);
            break;
        case ARB_MSG_EVENTS:
            s_events (self, msg);
            break;
        case ARB_MSG_PEEK:
            s_peek (self, msg);
            break;
        case ARB_MSG_META:
            s_meta (self, msg);
            break;
        case ARB_MSG_PING:
            s_ping (self, msg);
            break;
        default:
            arb_broker_refuse (self, msg, ARB_ERR_BAD_REQUEST,
                               "%s is not a request the broker takes",
                               arb_msg_type_name (arb_msg_type (msg)));
            break;
    }
}
