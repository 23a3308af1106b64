/*  arb_life_flow.c — the task lifecycle's flow rules: what follows from a
    task's end for its dependents, fan-out copies and routed items.

    Dependencies. A task that waits for others is `waiting` with a count of
    parents not yet final. When a parent ends, each child's edge decides:

        edge         parent succeeded   parent dead/cancelled   parent skipped
        on_success   one less to wait   child dead (failed dep) child skipped
        on_failure   child skipped      one less to wait        child skipped
        always       one less to wait   one less to wait        one less to wait

    A child that waits for no one more runs (or is skipped if any edge said
    so). Edges live in the journal (deps); memory keeps only the counts, so
    a restart recomputes every waiting task from its parents' states.
    Cancelling a task on request also cancels its descendants reached over
    on_success and on_failure edges; `always` edges (finalizers) still run.

    Retrying a dead task undoes what its failure did to the tasks that
    could not run without it: its descendants over on_success edges that
    ended dead of a failed dependency (never ran: no attempt, no lost
    lease) come back as waiting and are counted again from their parents
    in the journal, so one that another failed parent still holds dies
    again; and a task still waiting that had counted the failed one as
    ended waits for it again. What ran because it failed stays as it ended.

    Fan-out. A task with endpoints waits for one copy per endpoint. A copy
    lives in the hidden queue "<queue>@<endpoint>", which only that named
    worker consumes; if it is still there when the endpoint timeout passes,
    the endpoint never received it and the copy is cancelled as missing.
    When every copy is final the task succeeds (every endpoint answered,
    with a result or an error) or is dead as incomplete, naming the missing.

    Routing. EMIT items of a running task are staged in memory with its
    lease and enqueued in the transaction that stores its success; any
    other end of the attempt drops them. So an item is never both done and
    lost, nor enqueued twice after a restart.
*/

#include "arb_life_priv.h"

#define ARB_EMITS_MAX      100000  //  staged items per attempt
#define ARB_EMIT_BYTES_MAX (256u << 20)

//  ---------------------------------------------------------------------
//  Fan-out copies

//  Whether a session takes from a queue.
static bool
s_serves (arb_session_t *session, const char *queue)
{
    for (size_t i = 0; i < arb_session_sub_count (session); i++) {
        arb_sub_t *sub = arb_session_sub_at (session, i);
        for (size_t q = 0; q < sub->queue_count; q++)
            if (streq (sub->queues[q], queue))
                return true;
    }
    return false;
}

//  An empty list of endpoint names, which it copies and owns.
static zlistx_t *
s_names_new (void)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_duplicator (names, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    return names;
}

//  Names of the workers a broadcast goes to: those serving the queue now
//  that run tasks of this name.
static zlistx_t *
s_broadcast_targets (arb_life_t *self, const char *queue, const char *name)
{
    zlistx_t *names = s_names_new ();
    zhashx_t *sessions = arb_sched_sessions (self->sched);
    for (arb_session_t *s = (arb_session_t *) zhashx_first (sessions); s;
         s = (arb_session_t *) zhashx_next (sessions))
        if (s_serves (s, queue) && arb_session_handles (s, name)
            && !zlistx_find (names, (void *) arb_session_name (s)))
            zlistx_add_end (names, (void *) arb_session_name (s));
    return names;
}

bool
arb_life_broadcast_reaches (arb_life_t *self, const char *queue, const char *name)
{
    zlistx_t *names = s_broadcast_targets (self, queue, name);
    bool some = zlistx_size (names) > 0;
    zlistx_destroy (&names);
    return some;
}

//  Makes and stores one endpoint copy of a fan-out task.
static int
s_make_copy (arb_life_t *self,
             arb_task_t *origin,
             const char *endpoint,
             uint64_t endpoint_timeout_ms,
             zframe_t *payload,
             arb_bin_t headers)
{
    char queue[2 * ARB_NAME_MAX + 2];
    snprintf (queue, sizeof (queue), "%s@%s", arb_queue_name (origin->queue), endpoint);
    arb_task_t *copy = arb_sched_new_task (self->sched, queue, origin->name);
    copy->id = ++self->next_id;
    copy->priority = origin->priority;
    copy->max_attempts = origin->max_attempts;
    copy->backoff = origin->backoff;
    arb_task_ext_rw (copy)->backoff_ms = arb_task_ext (origin)->backoff_ms;
    arb_task_ext_rw (copy)->backoff_cap_ms = arb_task_ext (origin)->backoff_cap_ms;
    copy->jitter = origin->jitter;
    arb_task_ext_rw (copy)->timeout_ms = arb_task_ext (origin)->timeout_ms;
    arb_task_ext_rw (copy)->soft_timeout_ms = arb_task_ext (origin)->soft_timeout_ms;
    arb_task_ext_rw (copy)->retention_ms = arb_task_ext (origin)->retention_ms;
    copy->created_ms = self->clock->now_ms;
    arb_task_ext_rw (copy)->origin = origin->id;
    arb_task_ext_rw (copy)->flow = arb_task_ext (origin)->flow;
    arb_task_ext_rw (copy)->expires_ms = self->clock->now_ms + endpoint_timeout_ms;
    arb_task_ext_rw (copy)->window_ms = endpoint_timeout_ms;
    copy->state = ARB_STATE_READY;
    arb_task_set_payload_size (copy, payload ? zframe_size (payload) : 0);
    arb_journal_row_t row = {.endpoint = endpoint, .payload = payload, .headers = headers};
    if (arb_journal_insert (self->journal, copy, &row)) {
        arb_sched_discard_task (self->sched, &copy);
        return -1;
    }
    arb_sched_add (self->sched, copy, self->clock->now_ms, self->clock->mono_ms);
    arb_outbox_event (self->outbox, copy, ARB_STATE_READY, NULL);
    return 0;
}

zlistx_t *
arb_life_fan_out_targets (arb_life_t *self, arb_task_t *origin, const arb_task_spec_t *spec)
{
    if (spec->broadcast)
        return s_broadcast_targets (self, arb_queue_name (origin->queue), origin->name);
    zlistx_t *names = s_names_new ();
    for (size_t i = 0; i < spec->endpoints.n; i++)
        zlistx_add_end (names, (void *) spec->endpoints.v[i]);
    return names;
}

int
arb_life_fan_out (arb_life_t *self,
                  arb_task_t *origin,
                  zlistx_t *targets,
                  const arb_task_spec_t *spec,
                  zframe_t *payload,
                  arb_bin_t headers)
{
    //  the origin's row, stored before, counts its copies already: a
    //  restart knows it from its copies' answers (arb_life_resume_waiting)
    assert (arb_task_ext (origin)->copies == zlistx_size (targets));
    uint64_t timeout =
        spec->endpoint_timeout_ms ? spec->endpoint_timeout_ms : ARB_ENDPOINT_TIMEOUT_DEFAULT_MS;
    int rc = 0;
    for (const char *name = (const char *) zlistx_first (targets); name && rc == 0;
         name = (const char *) zlistx_next (targets))
        rc = s_make_copy (self, origin, name, timeout, payload, headers);
    return rc;
}

//  ---------------------------------------------------------------------
//  Resolution: what a waiting task does when its parents end

//  Ends a waiting task with the verdict of its edges, or lets it run.
static void
s_settle (arb_life_t *self, arb_task_t **task_p)
{
    arb_task_t *task = *task_p;
    if (arb_task_ext (task)->pending)
        return;
    if (arb_task_ext (task)->skip) {
        arb_life_finish (self, task_p, ARB_STATE_SKIPPED,
                         "not needed: a dependency's outcome ruled it out", NULL);
        return;
    }
    if (arb_task_ext (task)->not_before_ms > self->clock->now_ms)
        arb_sched_make_scheduled (self->sched, task, arb_task_ext (task)->not_before_ms,
                                  self->clock->now_ms, self->clock->mono_ms);
    else
        arb_sched_make_ready (self->sched, task, false, self->clock->now_ms, self->clock->mono_ms);
    //  at start (arb_life_resume_waiting) this may be the first write
    if (arb_journal_begin (self->journal)
        || arb_journal_save (self->journal, task, task->state, 0, NULL, NULL, NULL, 0)) {
        arb_life_halt (self, "resolve");
        return;
    }
    arb_outbox_event (self->outbox, task, task->state, NULL);
}

//  Applies one finished parent to a waiting child. Returns false if the
//  child was ended (dead: failed dependency).
static bool
s_apply_edge (arb_life_t *self,
              arb_task_t **child_p,
              int kind,
              int parent_state,
              const char *parent_ref,
              uint64_t parent_id)
{
    arb_task_t *child = *child_p;
    bool failed = parent_state == ARB_STATE_DEAD || parent_state == ARB_STATE_CANCELLED
                  || parent_state == 0;  //  0: the parent is gone from the journal
    if (kind == 0 && failed) {
        //  a parent outside the flow (after {"id": N}) has no name in it:
        //  it is named by its id, as ARBITER_PARENTS keys it
        char id_text[24];
        snprintf (id_text, sizeof (id_text), "%" PRIu64, parent_id);
        char why[ARB_NAME_MAX + 128];
        snprintf (why, sizeof (why), "failed dependency: '%s' (task %" PRIu64 ") ended %s",
                  parent_ref ? parent_ref : id_text, parent_id,
                  parent_state ? arb_state_name (parent_state) : "and is gone");
        arb_life_finish (self, child_p, ARB_STATE_DEAD, why, NULL);
        return false;
    }
    if ((kind == 0 && parent_state == ARB_STATE_SKIPPED) || (kind == 1 && !failed))
        arb_task_ext_rw (child)->skip = true;
    if (arb_task_ext (child)->pending)
        arb_task_ext_rw (child)->pending--;
    return true;
}

typedef struct {
    uint32_t pending;
    int broken_state;  //  a failed on_success parent's state (0: none)
    uint64_t broken_id;
    char broken_ref[ARB_NAME_MAX + 1];
    bool skip;
} s_recount_t;

static int
s_recount_parent (void *arg, const arb_journal_parent_t *parent)
{
    s_recount_t *rc = (s_recount_t *) arg;
    if (parent->state && !arb_state_is_final (parent->state)) {
        rc->pending++;
        return 0;
    }
    bool failed = parent->state == ARB_STATE_DEAD || parent->state == ARB_STATE_CANCELLED
                  || parent->state == 0;
    if (parent->kind == 0 && failed && !rc->broken_id) {
        rc->broken_state = parent->state;
        rc->broken_id = parent->id;
        snprintf (rc->broken_ref, sizeof (rc->broken_ref), "%s", parent->ref ? parent->ref : "");
    }
    if ((parent->kind == 0 && parent->state == ARB_STATE_SKIPPED) || (parent->kind == 1 && !failed))
        rc->skip = true;
    return 0;
}

//  Recomputes a waiting task from its parents in the journal (at start,
//  and for dependencies on tasks that existed before the batch).
void
arb_life_recount (arb_life_t *self, arb_task_t **task_p)
{
    arb_task_t *task = *task_p;
    s_recount_t rc = {0, 0, 0, "", false};
    if (arb_journal_parents (self->journal, task->id, s_recount_parent, &rc)) {
        arb_life_halt (self, "recount");
        return;
    }
    if (rc.broken_id) {
        s_apply_edge (self, task_p, 0, rc.broken_state, *rc.broken_ref ? rc.broken_ref : NULL,
                      rc.broken_id);
        return;
    }
    arb_task_ext_rw (task)->pending = rc.pending;
    arb_task_ext_rw (task)->skip = rc.skip;
    s_settle (self, task_p);
}

//  Completes a fan-out task whose copies are all final.
static void
s_complete_fan_out (arb_life_t *self, arb_task_t **origin_p)
{
    arb_task_t *origin = *origin_p;
    arb_msg_t *scratch = arb_msg_new (ARB_MSG_STATUS_REPLY, 0);
    arb_task_info_t info = {0};
    if (arb_journal_copies (self->journal, origin->id, scratch, &info)) {
        arb_msg_destroy (&scratch);
        arb_life_halt (self, "fan-out");
        return;
    }
    char why[ARB_TEXT_MAX] = "";
    size_t missing = 0;
    for (size_t i = 0; i < info.responses.n; i++) {
        arb_response_info_t *r = &info.responses.v[i];
        if (r->state != ARB_STATE_CANCELLED)
            continue;
        size_t used = strlen (why);
        snprintf (why + used, sizeof (why) - used, "%s%s", missing++ ? ", " : "",
                  r->endpoint ? r->endpoint : "?");
    }
    arb_msg_destroy (&scratch);
    if (missing) {
        char reason[ARB_TEXT_MAX + 64];
        snprintf (reason, sizeof (reason), "incomplete: missing endpoints: %s", why);
        arb_life_finish (self, origin_p, ARB_STATE_DEAD, reason, NULL);
    }
    else
        arb_life_finish (self, origin_p, ARB_STATE_SUCCEEDED, NULL, NULL);
}

//  While held, dependents hear of ended tasks only at the release.
static void
s_hold_settle (arb_life_t *self)
{
    self->settling = true;
}

static void
s_release_settle (arb_life_t *self)
{
    self->settling = true;
    uint64_t ended, ended_state;
    size_t i = 0;
    while (!self->halted && arb_vec_shift (&self->settle, &ended)
           && arb_vec_shift (&self->settle, &ended_state)) {
        arb_life_pulse (self, i++);
        if (ended_state == 0) {
            arb_task_t *fan = arb_sched_find (self->sched, ended);
            if (fan && arb_task_ext_rw (fan)->pending && --arb_task_ext_rw (fan)->pending == 0)
                s_complete_fan_out (self, &fan);
            continue;
        }
        arb_vec_t children = {0};
        if (arb_journal_children (self->journal, ended, &children)) {
            arb_life_halt (self, "children");
            break;
        }
        int unused;
        char ref[ARB_NAME_MAX + 1];
        arb_journal_state (self->journal, ended, &unused, ref, sizeof (ref));
        uint64_t child_id, kind;
        while (arb_vec_shift (&children, &child_id) && arb_vec_shift (&children, &kind)) {
            arb_task_t *child = arb_sched_find (self->sched, child_id);
            if (!child || child->state != ARB_STATE_WAITING)
                continue;
            if (s_apply_edge (self, &child, (int) kind, (int) ended_state, ref, ended))
                s_settle (self, &child);
        }
        arb_vec_free (&children);
    }
    self->settling = false;
}

//  After a task ended: its children and its fan-out origin hear of it.
//  Called by arb_life_finish with what it knew of the task; the work
//  is queued and drained iteratively, so a long chain of failed
//  dependencies never deepens the stack.
void
arb_life_after_finish (arb_life_t *self, uint64_t id, int state, bool has_children, uint64_t origin)
{
    if (has_children) {
        arb_vec_push (&self->settle, id);
        arb_vec_push (&self->settle, (uint64_t) state);
    }
    if (origin) {
        arb_vec_push (&self->settle, origin);
        arb_vec_push (&self->settle, 0);  //  0: a copy ended
    }
    if (!self->settling)
        s_release_settle (self);
}

//  At start: every waiting task looks at its parents (or copies) again,
//  since they may have ended while the broker was down or before it
//  could tell.
void
arb_life_resume_waiting (arb_life_t *self)
{
    zlistx_t *waiting = zlistx_new ();
    for (arb_task_t *t = arb_sched_first_task (self->sched); t;
         t = arb_sched_next_task (self->sched)) {
        if (t->state == ARB_STATE_WAITING)
            zlistx_add_end (waiting, (void *) (uintptr_t) t->id);
        if (arb_task_ext (t)->origin) {
            arb_task_t *fan = arb_sched_find (self->sched, arb_task_ext (t)->origin);
            if (fan)
                arb_task_ext_rw (fan)->pending++;
        }
    }
    for (void *id = zlistx_first (waiting); id && !self->halted; id = zlistx_next (waiting)) {
        arb_task_t *task = arb_sched_find (self->sched, (uint64_t) (uintptr_t) id);
        if (!task || task->state != ARB_STATE_WAITING)
            continue;  //  settled meanwhile by a parent that ended
        if (arb_task_ext (task)->copies && arb_task_ext (task)->pending == 0)
            s_complete_fan_out (self, &task);
        else if (!arb_task_ext (task)->copies && !arb_task_ext (task)->parents)
            //  waiting for nothing: only a fan-out task to no endpoint is
            //  (a broadcast an arbiterd before schema 10 took with no
            //  worker to go to, which the submit refuses now); it has no
            //  answer to wait for
            arb_life_finish (self, &task, ARB_STATE_DEAD,
                             "incomplete: no endpoints: no worker served its queue and ran "
                             "its name at submit",
                             NULL);
        else if (!arb_task_ext (task)->copies)
            arb_life_recount (self, &task);
    }
    zlistx_destroy (&waiting);
}

//  ---------------------------------------------------------------------
//  Retrying: what died because a retried task failed comes back

//  A retried task with parents waits for those that are not final (a
//  parent retried with it); the others, failed or not, were final when
//  it ran and are not asked again: it was retried by name.
static void
s_wait_for_parents (arb_life_t *self, arb_task_t **task_p)
{
    arb_task_t *task = *task_p;
    s_recount_t rc = {0, 0, 0, "", false};
    if (arb_task_ext (task)->parents
        && arb_journal_parents (self->journal, task->id, s_recount_parent, &rc)) {
        arb_life_halt (self, "retry");
        return;
    }
    arb_task_ext_rw (task)->pending = rc.pending;
    arb_task_ext_rw (task)->skip = false;
    if (arb_task_ext (task)->pending)
        arb_outbox_event (self->outbox, task, ARB_STATE_WAITING, NULL);
    else
        s_settle (self, task_p);
}

//  Ids as keys of a set.
static const char *
s_id_key (uint64_t id, char *key, size_t size)
{
    snprintf (key, size, "%" PRIu64, id);
    return key;
}

//  Looks at the children of batch task `at`: brings back those that died
//  of a failed dependency over an on_success edge (appended to batch),
//  and lists in others the tasks waiting outside the batch, which had
//  counted `at` as ended. seen holds the ids of both. 0 or -1.
static int
s_reopen_children (
    arb_life_t *self, uint64_t at, arb_vec_t *batch, arb_vec_t *others, zhashx_t *seen)
{
    arb_vec_t children = {0};
    if (arb_journal_children (self->journal, at, &children)) {
        arb_life_halt (self, "retry");
        arb_vec_free (&children);
        return -1;
    }
    char key[24];
    uint64_t child, kind;
    int rc = 0;
    while (rc == 0 && arb_vec_shift (&children, &child) && arb_vec_shift (&children, &kind)) {
        if (zhashx_lookup (seen, s_id_key (child, key, sizeof (key))))
            continue;
        arb_task_t *task = arb_sched_find (self->sched, child);
        if (task && task->state == ARB_STATE_WAITING) {
            arb_vec_push (others, child);
            zhashx_insert (seen, key, (void *) 1);
        }
        else if (!task && kind == 0) {
            //  only an on_success edge passes a failure down
            rc = arb_life_bring_back (self, child, ARB_BACK_DEPENDENCY, &task);
            if (task) {
                arb_vec_push (batch, child);
                zhashx_insert (seen, key, (void *) 1);
                arb_outbox_event (self->outbox, task, ARB_STATE_WAITING, NULL);
            }
        }
    }
    arb_vec_free (&children);
    return rc;
}

void
arb_life_reopen (arb_life_t *self, arb_vec_t *batch, size_t roots)
{
    zhashx_t *seen = zhashx_new ();
    arb_vec_t others = {0};
    char key[24];
    for (size_t i = 0; i < batch->n; i++)
        zhashx_insert (seen, s_id_key (batch->v[i], key, sizeof (key)), (void *) 1);
    //  breadth first: batch grows while it is walked, each task once
    for (size_t i = 0; i < batch->n && !self->halted; i++)
        s_reopen_children (self, batch->v[i], batch, &others, seen);
    zhashx_destroy (&seen);
    //  Every task is counted only once all are back, so that none sees
    //  another as ended; until then each counts all its parents (more
    //  than the truth), so an end heard meanwhile cannot free it early.
    //  The waiting tasks outside come first: they count the returned as
    //  not ended before any of those can end again.
    uint64_t id;
    arb_task_t *task;
    while (!self->halted && arb_vec_shift (&others, &id))
        if ((task = arb_sched_find (self->sched, id)) && task->state == ARB_STATE_WAITING)
            arb_life_recount (self, &task);
    arb_vec_free (&others);
    for (size_t i = 0; i < batch->n && !self->halted; i++)
        if ((task = arb_sched_find (self->sched, batch->v[i]))
            && task->state == ARB_STATE_WAITING) {
            if (i < roots)
                s_wait_for_parents (self, &task);
            else
                arb_life_recount (self, &task);
        }
}

//  ---------------------------------------------------------------------
//  Cancelling with descendants

//  Ids of the descendants of a task over on_success and on_failure edges,
//  breadth first, each once (not the task itself).
static zlistx_t *
s_descendants (arb_life_t *self, uint64_t root)
{
    zlistx_t *found = zlistx_new ();
    zhashx_t *seen = zhashx_new ();
    arb_vec_t todo = {0};
    arb_vec_push (&todo, root);
    char key[24];
    uint64_t at;
    size_t i = 0;
    while (!self->halted && arb_vec_shift (&todo, &at)) {
        arb_life_pulse (self, i++);  //  100,000 descendants take seconds
        arb_vec_t children = {0};
        if (arb_journal_children (self->journal, at, &children)) {
            arb_life_halt (self, "descendants");
            arb_vec_free (&children);
            break;
        }
        uint64_t child, kind;
        while (arb_vec_shift (&children, &child) && arb_vec_shift (&children, &kind)) {
            snprintf (key, sizeof (key), "%" PRIu64, child);
            if (kind == 2 || zhashx_lookup (seen, key))
                continue;
            zhashx_insert (seen, key, (void *) 1);
            zlistx_add_end (found, (void *) (uintptr_t) child);
            arb_vec_push (&todo, child);
        }
        arb_vec_free (&children);
    }
    arb_vec_free (&todo);
    zhashx_destroy (&seen);
    return found;
}

int
arb_life_cancel_tree (arb_life_t *self, arb_task_t **task_p, const char *why)
{
    //  Hold the dependents' reactions until the whole tree is cancelled:
    //  else a child would die of its parent's cancellation before its own.
    bool held = self->settling;
    s_hold_settle (self);
    uint64_t id = (*task_p)->id;
    uint32_t copies = arb_task_ext ((*task_p))->copies;
    zlistx_t *below = (*task_p)->has_children ? s_descendants (self, id) : NULL;
    int state = arb_life_cancel_task (self, task_p, why);
    char reason[ARB_TEXT_MAX];
    snprintf (reason, sizeof (reason), "cancelled with task %" PRIu64, id);
    size_t i = 0;
    for (void *d = below ? zlistx_first (below) : NULL; d && !self->halted;
         d = zlistx_next (below)) {
        arb_life_pulse (self, i++);
        arb_task_t *task = arb_sched_find (self->sched, (uint64_t) (uintptr_t) d);
        if (task)
            arb_life_cancel_task (self, &task, reason);
    }
    zlistx_destroy (&below);
    if (copies) {
        //  a fan-out task's copies go with it
        zlistx_t *ids = zlistx_new ();
        for (arb_task_t *t = arb_sched_first_task (self->sched); t;
             t = arb_sched_next_task (self->sched))
            if (arb_task_ext (t)->origin == id)
                zlistx_add_end (ids, (void *) (uintptr_t) t->id);
        for (void *c = zlistx_first (ids); c && !self->halted; c = zlistx_next (ids)) {
            arb_life_pulse (self, i++);
            arb_task_t *copy = arb_sched_find (self->sched, (uint64_t) (uintptr_t) c);
            if (copy)
                arb_life_cancel_task (self, &copy, reason);
        }
        zlistx_destroy (&ids);
    }
    if (!held)
        s_release_settle (self);
    return state;
}

//  Ids of the unfinished tasks of a flow; with roots_only, only those that
//  wait for nothing (a group's members).
static zlistx_t *
s_flow_tasks (arb_life_t *self, uint64_t flow, bool roots_only)
{
    zlistx_t *ids = zlistx_new ();
    for (arb_task_t *t = arb_sched_first_task (self->sched); t;
         t = arb_sched_next_task (self->sched))
        if (arb_task_ext (t)->flow == flow && !arb_task_ext (t)->origin
            && (!roots_only || arb_task_ext (t)->parents == 0))
            zlistx_add_end (ids, (void *) (uintptr_t) t->id);
    return ids;
}

void
arb_life_cancel_flow (arb_life_t *self, uint64_t flow, bool group)
{
    char why[64];
    snprintf (why, sizeof (why), "cancelled with %sflow:%" PRIu64, group ? "its group " : "", flow);
    bool held = self->settling;
    s_hold_settle (self);
    //  a group's members go, with what waits on them but its finalizer;
    //  a DAG or pipe goes whole
    zlistx_t *ids = s_flow_tasks (self, flow, group);
    size_t i = 0;
    for (void *id = zlistx_first (ids); id && !self->halted; id = zlistx_next (ids)) {
        arb_life_pulse (self, i++);
        arb_task_t *task = arb_sched_find (self->sched, (uint64_t) (uintptr_t) id);
        if (task)
            arb_life_cancel_tree (self, &task, why);
    }
    zlistx_destroy (&ids);
    if (!held)
        s_release_settle (self);
}

//  ---------------------------------------------------------------------
//  Dispatch: parents' results, and input from a parent

typedef struct {
    arb_msg_t *msg;
    arb_dispatch_task_t *d;
} s_parents_t;

static int
s_add_parent (void *arg, const arb_journal_parent_t *parent)
{
    s_parents_t *p = (s_parents_t *) arg;
    arb_parent_info_t *info =
        (arb_parent_info_t *) arb_msg_grow (p->msg, &p->d->parents, sizeof (*info), 1);
    info->id = parent->id;
    info->name = arb_msg_strdup (p->msg, parent->ref);
    info->state = (uint32_t) parent->state;
    info->error = arb_msg_strdup (p->msg, parent->error);
    info->result = arb_msg_bindup (p->msg, parent->result, parent->result_size);
    return 0;
}

int
arb_life_fill_parents (arb_life_t *self, arb_task_t *task, arb_msg_t *msg, arb_dispatch_task_t *d)
{
    s_parents_t p = {msg, d};
    if (arb_journal_parents (self->journal, task->id, s_add_parent, &p))
        return -1;
    if (task->input == ARB_INPUT_PARENT && d->parents.n == 1) {
        //  its parent's result is its input
        arb_bin_t *input = &d->parents.v[0].result;
        zframe_destroy (&d->payload);
        d->payload = zframe_new (input->data, input->size);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Routing

void
arb_life_emit (arb_life_t *self, arb_session_t *session, arb_emit_body_t *body)
{
    for (size_t i = 0; i < body->items.n; i++) {
        arb_emit_item_t *item = &body->items.v[i];
        arb_task_t *task = arb_sched_leased (self->sched, item->id, item->lease);
        if (!task || arb_task_ext (task)->session != session) {
            if (arb_loglimit_take (&self->late, self->clock->mono_ms))
                zsys_notice ("broker: late emit refused id=%" PRIu64 " (its lease had ended)",
                             item->id);
            continue;
        }
        if (!*item->queue || strchr (item->queue, '@')) {
            arb_task_ext_rw (task)->emit_refused = true;
            continue;
        }
        if (!arb_task_ext (task)->emits)
            arb_task_ext_rw (task)->emits = zlist_new ();
        size_t size = zframe_size (item->payload);
        if (zlist_size (arb_task_ext (task)->emits) >= ARB_EMITS_MAX
            || arb_task_ext (task)->emit_bytes + size > ARB_EMIT_BYTES_MAX) {
            arb_task_ext_rw (task)->emit_refused =
                true;  //  its success will be refused as a failure
            continue;
        }
        arb_emit_t *emit = (arb_emit_t *) zmalloc (sizeof (arb_emit_t));
        emit->queue = strdup (item->queue);
        emit->name = strdup (item->name && *item->name ? item->name : item->queue);
        //  a copy: the frame received may keep its whole receive buffer alive
        emit->payload = zframe_new (zframe_data (item->payload), size);
        arb_task_ext_rw (task)->emit_bytes += size;
        zlist_append (arb_task_ext (task)->emits, emit);
    }
}

int
arb_life_commit_emits (arb_life_t *self, arb_task_t *task)
{
    if (!arb_task_ext (task)->emits)
        return 0;
    //  the items enter in the transaction that stores the task's success:
    //  the RESULT may be the turn's first write
    if (arb_journal_begin (self->journal)) {
        arb_life_halt (self, "emit");
        return -1;
    }
    arb_emit_t *emit;
    while ((emit = (arb_emit_t *) zlist_pop (arb_task_ext (task)->emits))) {
        arb_task_t *item = arb_sched_new_task (self->sched, emit->queue, emit->name);
        item->id = ++self->next_id;
        item->created_ms = self->clock->now_ms;
        item->state = ARB_STATE_READY;
        arb_task_set_payload_size (item, emit->payload ? zframe_size (emit->payload) : 0);
        arb_task_ext_rw (item)->flow = arb_task_ext (task)->flow;
        arb_journal_row_t row = {.payload = emit->payload};
        int rc = arb_journal_insert (self->journal, item, &row);
        if (rc == 0) {
            arb_sched_add (self->sched, item, self->clock->now_ms, self->clock->mono_ms);
            arb_outbox_event (self->outbox, item, ARB_STATE_READY, NULL);
            //  a routed item is a submit to its queue: it holds the bounds
            uint64_t fresh = item->id;
            arb_life_hold_bounds (self, item->queue, &fresh, 1, NULL);
        }
        else
            arb_sched_discard_task (self->sched, &item);
        free (emit->queue);
        free (emit->name);
        zframe_destroy (&emit->payload);
        free (emit);
        if (rc) {
            arb_life_halt (self, "emit");
            return -1;
        }
    }
    zlist_destroy (&arb_task_ext_rw (task)->emits);
    arb_task_ext_rw (task)->emit_bytes = 0;
    return 0;
}
