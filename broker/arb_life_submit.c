/*  arb_life_submit.c — the task lifecycle's entrances: a submitted batch
    is stored, dead tasks retried (what died of them is brought back by
    the flow rules, arb_life_reopen), the unfinished tasks loaded at
    start, and a peer made a task's watcher. See arb_life.h.

    A batch is stored whole inside the turn's transaction: ids first (a
    known client key gives the first task's id, so a retried submit is
    safe), then the tasks with their edges and fan-out copies, then the
    scheduler learns of them all, and only then do tasks that depend on
    older tasks look at them, so a task that ends at once still tells its
    children in the batch.
*/

#include "arb_life_priv.h"

//  A SUBMIT of up to this many tasks keeps its working arrays on the
//  stack: most carry one task, and their allocations were a tenth of its
//  cost (BENCHMARKS.md, "Fewer allocations a task").
#define S_FEW 16

//  Zeroed room for n items of size bytes: few (of S_FEW items, zeroed by
//  the caller) when they fit, else from the heap (s_scratch_free).
static void *
s_scratch (void *few, size_t n, size_t size)
{
    void *room = n <= S_FEW ? few : calloc (n, size);
    assert (room);  //  out of memory
    return room;
}

static void
s_scratch_free (void *room, void *few)
{
    if (room != few)
        free (room);
}

//  ---------------------------------------------------------------------
//  Start-up

typedef struct {
    arb_life_t *self;
    size_t count;
} s_load_t;

static int
s_load_task (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    s_load_t *load = (s_load_t *) arg;
    arb_life_t *self = load->self;
    load->count++;
    //  a plain ready task stays in the journal: the queue's first pop
    //  reads its head back, in order (arb_queue.h)
    if (arb_sched_add_cold (self->sched, row, queue, self->clock->now_ms))
        return 0;
    arb_task_t *task = arb_sched_task_from_row (self->sched, row, queue, name);
    arb_sched_add (self->sched, task, self->clock->now_ms, self->clock->mono_ms);
    return 0;
}

static void
s_load_count (void *arg, const char *queue, int state, uint64_t count)
{
    arb_life_t *self = (arb_life_t *) arg;
    if (state > 0 && state <= ARB_STATE_MAX)
        arb_queue_counts (arb_sched_queue (self->sched, queue))[state] += count;
}

int
arb_life_load (arb_life_t *self, size_t *count)
{
    s_load_t load = {self, 0};
    arb_sched_set_loading (self->sched, true);
    int rc = arb_journal_load_open (self->journal, s_load_task, &load);
    arb_sched_set_loading (self->sched, false);
    if (rc || arb_journal_count_final (self->journal, s_load_count, self))
        return -1;
    arb_life_resume_waiting (self);
    *count = load.count;
    return self->halted ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  The cold backlog: the scheduler's hooks (arb_sched.h)

typedef struct {
    arb_life_t *self;
    arb_queue_t *queue;  //  the queue read back; NULL: a task by id
    arb_task_t *task;    //  by id: the task read back
} s_thaw_t;

static int
s_thaw_row (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    s_thaw_t *thaw = (s_thaw_t *) arg;
    arb_life_t *self = thaw->self;
    //  a ready row not in memory is a cold task of its queue; one in
    //  memory is hot already (read back by id, or running: the journal
    //  has running tasks as ready)
    if (row->state != ARB_STATE_READY || arb_sched_find_hot (self->sched, row->id))
        return 0;
    arb_queue_t *q = arb_sched_find_queue (self->sched, queue);
    if (!q || arb_queue_cold (q) == 0 || (thaw->queue && q != thaw->queue))
        return 0;
    arb_task_t *task = arb_sched_task_from_row (self->sched, row, queue, name);
    arb_sched_thaw (self->sched, task, self->clock->now_ms);
    thaw->task = task;
    return 0;
}

//  A cold task read back in order: hot, with its payload in the cache
//  if there is room (it is dispatched next).
static int
s_warm_row (
    void *arg, arb_task_t *row, const char *queue, const char *name, const arb_journal_body_t *body)
{
    s_thaw_t *thaw = (s_thaw_t *) arg;
    thaw->task = NULL;
    s_thaw_row (arg, row, queue, name);
    if (thaw->task)
        arb_sched_cache_put (thaw->self->sched, thaw->task, body->payload, body->payload_size,
                             body->headers, body->headers_size);
    return 0;
}

void
arb_life_warm_hook (void *arg, arb_queue_t *queue, int32_t priority, uint64_t id, size_t max)
{
    arb_life_t *self = (arb_life_t *) arg;
    s_thaw_t thaw = {self, queue, NULL};
    size_t count;
    int32_t last_priority;
    uint64_t last_id;
    if (arb_journal_load_ready (self->journal, arb_queue_name (queue), priority, id, max,
                                s_warm_row, &thaw, &count, &last_priority, &last_id)) {
        arb_life_halt (self, "cold tasks");
        return;
    }
    arb_sched_cold_read (self->sched, queue, last_priority, last_id, count == max);
}

arb_task_t *
arb_life_thaw_hook (void *arg, uint64_t id)
{
    arb_life_t *self = (arb_life_t *) arg;
    s_thaw_t thaw = {self, NULL, NULL};
    bool found;
    if (arb_journal_load_task (self->journal, id, s_thaw_row, &thaw, &found)) {
        arb_life_halt (self, "cold task");
        return NULL;
    }
    return thaw.task;
}

//  ---------------------------------------------------------------------
//  Watchers

//  Tells a peer about a final task now (it is in the journal only).
static int
s_done_from_journal (
    arb_life_t *self, const uint8_t *peer, size_t peer_size, uint64_t id, bool *found)
{
    arb_msg_t *scratch = arb_msg_new (ARB_MSG_DONE, 0);
    arb_done_task_t done = {0};
    int rc = arb_journal_done (self->journal, id, scratch, &done, found);
    if (rc == 0 && *found) {
        zframe_t *identity = zframe_new (peer, peer_size);
        arb_outbox_done (self->outbox, identity, id, (int) done.state, done.attempts, done.error,
                         &done.result);
        zframe_destroy (&identity);
    }
    zframe_destroy (&done.result);
    arb_msg_destroy (&scratch);
    return rc;
}

size_t
arb_life_watch_count (arb_life_t *self)
{
    return arb_watch_size (self->watch);
}

bool
arb_life_is_watching (arb_life_t *self, zframe_t *identity)
{
    return arb_watch_has_peer (self->watch, identity);
}

size_t
arb_life_unwatch (arb_life_t *self, zframe_t *identity)
{
    return arb_watch_drop_peer (self->watch, identity);
}

size_t
arb_life_unwatch_peers (arb_life_t *self, zframe_t **identities, size_t count)
{
    return arb_watch_drop_peers (self->watch, identities, count);
}

int
arb_life_watch (arb_life_t *self, uint64_t id, const uint8_t *peer, size_t peer_size, bool *found)
{
    arb_task_t *task = arb_sched_find (self->sched, id);
    *found = true;
    if (task) {
        arb_watch_add (self->watch, id, peer, peer_size);
        return 0;
    }
    return s_done_from_journal (self, peer, peer_size, id, found);
}

//  ---------------------------------------------------------------------
//  SUBMIT

//  A task for a spec (state set; the caller gives it its id).
static arb_task_t *
s_make_task (arb_life_t *self, arb_task_spec_t *spec)
{
    arb_task_t *task =
        arb_sched_new_task (self->sched, spec->queue ? spec->queue : "default", spec->name);
    task->priority = spec->priority;
    task->max_attempts = spec->retries + 1;
    task->backoff = (uint8_t) spec->backoff;
    task->jitter = !spec->no_jitter;
    task->unwatched = spec->unwatched;
    task->created_ms = self->clock->now_ms;
    uint64_t start = spec->delay_ms ? self->clock->now_ms + spec->delay_ms : 0;
    if (spec->at_ms > start)
        start = spec->at_ms;
    //  a task with every option at its default has no ext
    if (spec->backoff_ms || spec->backoff_cap_ms || spec->timeout_ms || spec->soft_timeout_ms
        || spec->expires_ms || spec->retention_ms || start) {
        arb_task_ext_t *ext = arb_task_ext_rw (task);
        ext->backoff_ms = spec->backoff_ms;
        ext->backoff_cap_ms = spec->backoff_cap_ms;
        ext->timeout_ms = spec->timeout_ms;
        ext->soft_timeout_ms = spec->soft_timeout_ms;
        ext->expires_ms = spec->expires_ms;
        ext->retention_ms = spec->retention_ms;
        ext->not_before_ms = start;
    }
    task->state = start > self->clock->now_ms ? ARB_STATE_SCHEDULED : ARB_STATE_READY;
    return task;
}

//  Keeps a copy of the payload (and headers) in memory if the cache has
//  room; the journal has them either way.
static void
s_cache_payload (arb_life_t *self, arb_task_t *task, const arb_task_spec_t *spec)
{
    arb_sched_cache_put (self->sched, task, zframe_data (spec->payload),
                         zframe_size (spec->payload), spec->headers.data, spec->headers.size);
}

//  Whether dependency dep of a batch names a task that existed before it:
//  by its id, or by the ref of a spec whose key was known (results[]).
static bool
s_on_older (arb_dag_t *dag, const arb_dep_t *dep, const arb_submitted_task_t *results)
{
    return dep->id != 0 || (dep->ref && results[arb_dag_index (dag, dep->ref)].existing);
}

//  The new task of spec i of a batch, journaled with its edges. ids[] holds
//  the id of every task of the batch (new or found by key), indexed as
//  the batch, so that refs resolve to ids.
static arb_task_t *
s_store_task (arb_life_t *self,
              arb_submit_body_t *body,
              arb_dag_t *dag,
              size_t i,
              const uint64_t *ids,
              const arb_submitted_task_t *results,
              const bool *parent_in_batch,
              uint64_t flow)
{
    arb_task_spec_t *spec = &body->tasks.v[i];
    arb_task_t *task = s_make_task (self, spec);
    task->id = ids[i];
    arb_task_set_payload_size (task, spec->payload ? zframe_size (spec->payload) : 0);
    if (flow)
        arb_task_ext_rw (task)->flow = flow;
    task->input = (uint8_t) spec->input;
    task->has_args = spec->args.size > 0;
    if (spec->after.n)
        arb_task_ext_rw (task)->parents = (uint32_t) spec->after.n;
    task->has_children = parent_in_batch[i];
    if (spec->after.n)
        arb_task_ext_rw (task)->pending = arb_task_ext (task)->parents;
    bool fan_out = spec->endpoints.n || spec->broadcast;
    zlistx_t *targets = fan_out ? arb_life_fan_out_targets (self, task, spec) : NULL;
    if (targets)
        //  in its row: a restart tells a fan-out task by it
        arb_task_ext_rw (task)->copies = arb_task_ext_rw (task)->pending =
            (uint32_t) zlistx_size (targets);
    if (arb_task_ext (task)->parents || fan_out)
        task->state = ARB_STATE_WAITING;
    //  the spec's bins as they are (only a non-empty one is stored)
    arb_bin_t headers = spec->headers.size ? spec->headers : (arb_bin_t){NULL, 0};
    arb_bin_t args = task->has_args ? spec->args : (arb_bin_t){NULL, 0};
    arb_journal_row_t row = {.key = spec->key,
                             .ref = spec->ref,
                             .payload = spec->payload,
                             .headers = headers,
                             .args = args};
    int rc = arb_journal_insert (self->journal, task, &row);
    for (size_t k = 0; rc == 0 && k < spec->after.n; k++) {
        arb_dep_t *dep = &spec->after.v[k];
        uint64_t parent = dep->ref ? ids[arb_dag_index (dag, dep->ref)] : dep->id;
        rc = arb_journal_add_dep (self->journal, task->id, parent, (int) dep->when);
        if (rc == 0 && s_on_older (dag, dep, results)) {
            //  a task that existed before the batch (named by its id, or by
            //  the ref of a spec whose key was known) learns it has children;
            //  its record in the scheduler learns it once the batch is in
            rc = arb_journal_set_has_children (self->journal, parent);
        }
    }
    if (rc == 0 && targets)
        rc = arb_life_fan_out (self, task, targets, spec, spec->payload, headers);
    zlistx_destroy (&targets);
    if (rc) {
        arb_sched_discard_task (self->sched, &task);
        return NULL;
    }
    s_cache_payload (self, task, spec);
    return task;
}

//  Gives every task of the batch its id: the first task's for a known key,
//  a new one otherwise. *flow: the flow of the first task found by its key
//  that belongs to one (0: none), which a batch submitted again joins.
//  Returns -1 on journal failure. Costs one lookup per key: keys met
//  earlier in the batch are found in a hash, not by a walk.
static int
s_assign_ids (arb_life_t *self,
              arb_submit_body_t *body,
              uint64_t *ids,
              arb_submitted_task_t *results,
              uint64_t *flow)
{
    zhashx_t *batch_keys = NULL;  //  key -> index + 1 of its first spec; made at the first key
    int rc = 0;
    *flow = 0;
    for (size_t i = 0; i < body->tasks.n && rc == 0; i++) {
        arb_life_pulse (self, i);
        arb_task_spec_t *spec = &body->tasks.v[i];
        uint64_t id = 0, its_flow = 0;
        int state = 0;
        //  two specs with one key in one batch are one task
        if (spec->key && !batch_keys)
            batch_keys = zhashx_new ();
        size_t first = spec->key ? (size_t) (uintptr_t) zhashx_lookup (batch_keys, spec->key) : 0;
        if (first) {
            id = ids[first - 1];
            state = ARB_STATE_READY;
        }
        else if (spec->key) {
            rc = arb_journal_find_key (self->journal, spec->key, &id, &state, &its_flow);
            zhashx_insert (batch_keys, spec->key, (void *) (uintptr_t) (i + 1));
        }
        if (!*flow)
            *flow = its_flow;
        if (id) {
            arb_task_t *known = arb_sched_find (self->sched, id);
            results[i] = (arb_submitted_task_t){
                .id = id, .existing = true, .state = known ? known->state : (uint32_t) state};
        }
        else
            id = ++self->next_id;
        ids[i] = id;
    }
    zhashx_destroy (&batch_keys);
    return rc;
}

//  The state of a task now: from memory, else from the journal.
static int
s_state_of (arb_life_t *self, uint64_t id)
{
    arb_task_t *task = arb_sched_find_hot (self->sched, id);
    if (task)
        return task->state;
    int state = 0;
    arb_journal_state (self->journal, id, &state, NULL, 0);
    return state;
}

//  The bounded queues (arb_queue_is_bounded) a batch's new tasks joined,
//  each with their ids in order; allocated at the first, which most
//  batches never have.
typedef struct {
    arb_queue_t *queue;
    arb_vec_t ids;
} s_joined_t;

typedef struct {
    s_joined_t *v;
    size_t n;
} s_bounded_t;

static void
s_bounded_add (s_bounded_t *bounded, arb_task_t *task, size_t most)
{
    size_t i = 0;
    while (i < bounded->n && bounded->v[i].queue != task->queue)
        i++;
    if (i == bounded->n) {
        if (!bounded->v)
            bounded->v = (s_joined_t *) calloc (most, sizeof (s_joined_t));
        bounded->v[bounded->n++].queue = task->queue;
    }
    arb_vec_push (&bounded->v[i].ids, task->id);
}

static void
s_bounded_free (s_bounded_t *bounded)
{
    for (size_t i = 0; i < bounded->n; i++)
        arb_vec_free (&bounded->v[i].ids);
    free (bounded->v);
    *bounded = (s_bounded_t){0};
}

//  The queues are kept within their bounds (arb_life_hold_bounds), again
//  while a task that ended makes others of the batch ready (a refused or
//  dropped parent's always step, in this queue or one held before); the
//  ids refused go to refused. Last in a SUBMIT, so that its watchers hear
//  of a task of the batch that goes.
static void
s_bounded_hold (arb_life_t *self, s_bounded_t *bounded, arb_vec_t *refused)
{
    bool ended = true;
    while (ended && !self->halted) {
        ended = false;
        for (size_t i = 0; i < bounded->n && !self->halted; i++) {
            s_joined_t *joined = &bounded->v[i];
            ended |= arb_life_hold_bounds (self, joined->queue, joined->ids.v + joined->ids.head,
                                           arb_vec_size (&joined->ids), refused)
                     > 0;
        }
    }
    s_bounded_free (bounded);
}

static int
s_compare_ids (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  Stores every new task of a batch, then lets them run or wait: first all
//  are known to the scheduler, then those that depend on older tasks look
//  at them, so a task ended at once still tells its children in the batch.
//  bounded gets the bounded queues the tasks joined.
static int
s_store_batch (arb_life_t *self,
               arb_msg_t *msg,
               arb_dag_t *dag,
               const uint64_t *ids,
               const arb_submitted_task_t *results,
               uint64_t flow,
               s_bounded_t *bounded)
{
    arb_submit_body_t *body = arb_msg_submit (msg);
    size_t n = body->tasks.n;
    bool few_parents[S_FEW] = {false};
    arb_task_t *few_made[S_FEW] = {NULL};
    bool *parent_in_batch = (bool *) s_scratch (few_parents, n, sizeof (bool));
    arb_task_t **made = (arb_task_t **) s_scratch (few_made, n, sizeof (arb_task_t *));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < body->tasks.v[i].after.n; k++)
            if (body->tasks.v[i].after.v[k].ref)
                parent_in_batch[arb_dag_index (dag, body->tasks.v[i].after.v[k].ref)] = true;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        arb_life_pulse (self, i);
        if (!results[i].existing) {
            made[i] = s_store_task (self, body, dag, i, ids, results, parent_in_batch, flow);
            rc = made[i] ? 0 : -1;
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (made[i]) {
            arb_sched_add (self->sched, made[i], self->clock->now_ms, self->clock->mono_ms);
            arb_outbox_event (self->outbox, made[i], made[i]->state, NULL);
            if (arb_queue_is_bounded (made[i]->queue))
                s_bounded_add (bounded, made[i], n);
        }
    for (size_t i = 0; i < n && rc == 0 && !self->halted; i++) {
        bool on_older = false;
        for (size_t k = 0; made[i] && k < body->tasks.v[i].after.n; k++) {
            arb_dep_t *dep = &body->tasks.v[i].after.v[k];
            if (!s_on_older (dag, dep, results))
                continue;
            on_older = true;
            //  after arb_sched_add: a key given twice in the batch names a
            //  task that is new, and in the scheduler only now
            uint64_t id = dep->ref ? ids[arb_dag_index (dag, dep->ref)] : dep->id;
            arb_task_t *parent = arb_sched_find (self->sched, id);
            if (parent)
                parent->has_children = true;
        }
        arb_task_t *task = on_older ? arb_sched_find (self->sched, ids[i]) : NULL;
        if (task && task->state == ARB_STATE_WAITING)
            arb_life_recount (self, &task);
    }
    s_scratch_free (parent_in_batch, few_parents);
    s_scratch_free (made, few_made);
    return rc || self->halted ? -1 : 0;
}

int
arb_life_submit (arb_life_t *self, arb_msg_t *msg, arb_dag_t *dag, arb_msg_t *reply)
{
    arb_submit_body_t *body = arb_msg_submit (msg);
    size_t n = body->tasks.n;
    arb_submitted_body_t *out = arb_msg_submitted (reply);
    arb_submitted_task_t *results = (arb_submitted_task_t *) arb_msg_grow (
        reply, &out->tasks, sizeof (arb_submitted_task_t), n);
    uint64_t few[S_FEW] = {0};
    uint64_t *ids = (uint64_t *) s_scratch (few, n, sizeof (uint64_t));
    size_t *first = NULL;
    s_bounded_t bounded = {0};
    uint64_t known_flow = 0;
    int rc = -1;
    if (arb_journal_begin (self->journal) || s_assign_ids (self, body, ids, results, &known_flow))
        goto cleanup;
    //  A flow submitted again with its keys (the safe retry after an
    //  unknown outcome) is the flow its keys belong to, not a new one.
    if (body->flow_kind && known_flow)
        out->flow = known_flow;
    else if (body->flow_kind
             && arb_journal_insert_flow (self->journal, (int) body->flow_kind, body->flow_name,
                                         self->clock->now_ms, &out->flow))
        goto cleanup;
    if (s_store_batch (self, msg, dag, ids, results, out->flow, &bounded))
        goto cleanup;
    //  a key given twice names one task: it is watched (reported) once
    first = body->watch && n > 1 ? arb_ids_first (ids, n) : NULL;
    size_t peer_size;
    const uint8_t *peer = arb_msg_peer (msg, &peer_size);
    for (size_t i = 0; i < n; i++) {
        results[i].id = ids[i];
        self->tally.submitted += !results[i].existing;
        bool found;
        if (body->watch && (n == 1 || first[i] == i)
            && arb_life_watch (self, ids[i], peer, peer_size, &found))
            goto cleanup;
    }
    arb_vec_t refused = {0};
    s_bounded_hold (self, &bounded, &refused);
    uint64_t *refused_v = refused.v ? refused.v + refused.head : NULL;
    size_t refused_n = arb_vec_size (&refused);
    if (refused_n)
        qsort (refused_v, refused_n, sizeof (uint64_t), s_compare_ids);
    for (size_t i = 0; i < n; i++) {
        arb_life_pulse (self, i);
        results[i].state = (uint32_t) s_state_of (self, ids[i]);
        //  a key given twice in the batch: both name the refused task
        results[i].refused =
            refused_n && bsearch (&ids[i], refused_v, refused_n, sizeof (uint64_t), s_compare_ids);
    }
    arb_vec_free (&refused);
    rc = self->halted ? -1 : 0;
cleanup:
    s_bounded_free (&bounded);
    free (first);
    s_scratch_free (ids, few);
    return rc;
}

//  ---------------------------------------------------------------------
//  RETRY of dead tasks

bool
arb_life_died_of_dependency (const arb_task_t *task)
{
    return task->state == ARB_STATE_DEAD && arb_task_ext (task)->parents > 0 && task->attempts == 0
           && task->lost == 0;
}

typedef struct {
    arb_life_t *self;
    arb_back_t which;
    arb_task_t *task;  //  the task brought back, owned by the scheduler once added
} s_back_t;

static int
s_back_row (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    s_back_t *back = (s_back_t *) arg;
    arb_life_t *self = back->self;
    //  a fan-out task is the sum of its copies' answers: it never runs itself
    if (row->state != ARB_STATE_DEAD || arb_task_ext (row)->copies)
        return 0;
    bool of_dependency = arb_life_died_of_dependency (row);
    if ((back->which == ARB_BACK_OWN && of_dependency)
        || (back->which == ARB_BACK_DEPENDENCY && !of_dependency))
        return 0;
    arb_task_t *task = arb_sched_task_from_row (self->sched, row, queue, name);
    task->attempts = 0;
    task->lost = 0;
    task->state = ARB_STATE_WAITING;
    arb_task_ext_rw (task)->pending =
        arb_task_ext (task)->parents;  //  no less than the truth, until counted
    if (back->which != ARB_BACK_DEPENDENCY)
        arb_task_ext_rw (task)->not_before_ms =
            0;  //  a retry starts now; a reopened task keeps its delay
    if (arb_journal_save (self->journal, task, ARB_STATE_WAITING, 0, NULL, "", NULL, 0)) {
        arb_sched_discard_task (self->sched, &task);
        return -1;
    }
    arb_queue_counts (task->queue)[ARB_STATE_DEAD]--;
    arb_sched_add (self->sched, task, self->clock->now_ms, self->clock->mono_ms);
    back->task = task;
    return 0;
}

int
arb_life_bring_back (arb_life_t *self, uint64_t id, arb_back_t which, arb_task_t **task)
{
    s_back_t back = {self, which, NULL};
    bool found;
    *task = NULL;
    if (arb_journal_begin (self->journal)
        || arb_journal_load_task (self->journal, id, s_back_row, &back, &found)) {
        arb_life_halt (self, "retry");
        return -1;
    }
    *task = back.task;
    return 0;
}

int
arb_life_retry (arb_life_t *self,
                const uint64_t *ids,
                size_t n,
                size_t own_from,
                bool *revived,
                uint64_t *count)
{
    arb_vec_t batch = {0};
    for (size_t i = 0; i < n && !self->halted; i++) {
        arb_life_pulse (self, i);
        arb_task_t *task = NULL;
        revived[i] = false;
        if (!arb_sched_find (self->sched, ids[i])
            && arb_life_bring_back (self, ids[i], i < own_from ? ARB_BACK_ANY : ARB_BACK_OWN,
                                    &task))
            break;
        if (task) {
            revived[i] = true;
            arb_vec_push (&batch, ids[i]);
        }
    }
    arb_life_reopen (self, &batch, batch.n);
    *count = 0;
    for (size_t i = 0; i < batch.n; i++)
        if (arb_sched_find (self->sched, batch.v[i]))
            (*count)++;
    arb_vec_free (&batch);
    return self->halted ? -1 : 0;
}
