/*  arb_verbs_client.c — the client verbs: SUBMIT, STATUS, LIST, WATCH,
    CANCEL, RETRY, DELETE. See arb_verbs.h for what a handler may do.

    Each handler validates the whole request before it changes anything:
    a refused request has no effect. Changes go through the lifecycle into
    the turn's transaction; replies go to the outbox and leave after the
    commit.
*/

#include "arb_verbs_priv.h"

#define ARB_LIST_DEFAULT 1000
#define ARB_LIST_PAGE    10000  //  tasks one LIST_REPLY holds at most

//  ---------------------------------------------------------------------
//  SUBMIT: checking a batch

int
arb_verbs_check_spec (const arb_verbs_t *verbs, const arb_task_spec_t *spec, char *why, size_t size)
{
#define REFUSE(...)                        \
    do {                                   \
        snprintf (why, size, __VA_ARGS__); \
        return -1;                         \
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
    if (spec->at_ms > verbs->clock->now_ms + ARB_DELAY_MAX_MS)
        REFUSE ("at_ms: %" PRIu64 " is more than a year ahead", spec->at_ms);
    if (spec->at_ms && spec->delay_ms)
        REFUSE ("at_ms and delay_ms: give one (a time, or a wait from the submit)");
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

static bool
s_task_exists (void *arg, uint64_t id)
{
    const arb_verbs_t *verbs = (const arb_verbs_t *) arg;
    if (arb_sched_find_hot (arb_life_sched (verbs->life), id))
        return true;
    int state;
    return arb_journal_state (verbs->journal, id, &state, NULL, 0) == 0 && state != 0;
}

//  The session of a worker name, or NULL.
static arb_session_t *
s_worker_named (const arb_verbs_t *verbs, const char *name)
{
    zhashx_t *sessions = arb_sched_sessions (arb_life_sched (verbs->life));
    for (arb_session_t *s = (arb_session_t *) zhashx_first (sessions); s;
         s = (arb_session_t *) zhashx_next (sessions))
        if (streq (arb_session_name (s), name))
            return s;
    return NULL;
}

static int
s_check_endpoints (
    const arb_verbs_t *verbs, const arb_task_spec_t *spec, size_t i, char *why, size_t size)
{
    if (spec->broadcast && spec->endpoints.n) {
        snprintf (why, size, "tasks[%zu]: give endpoints or broadcast, not both", i);
        return -1;
    }
    if (!spec->endpoints.n && !spec->broadcast)
        return 0;
    if (spec->endpoint_timeout_ms > ARB_TIMEOUT_MAX_MS) {
        snprintf (why, size, "tasks[%zu].endpoint_timeout_ms: over the limit of %llu", i,
                  ARB_TIMEOUT_MAX_MS);
        return -1;
    }
    if (spec->after.n || spec->input) {
        snprintf (why, size, "tasks[%zu]: a fan-out task cannot have dependencies", i);
        return -1;
    }
    //  a broadcast goes to the workers there are at submit: with none it
    //  would wait for no answer, for ever (allow_unknown is for names)
    const char *queue = spec->queue ? spec->queue : "default";
    if (spec->broadcast && !arb_life_broadcast_reaches (verbs->life, queue, spec->name)) {
        snprintf (why, size,
                  "tasks[%zu].broadcast: no worker serving queue '%s' that runs '%s' is "
                  "connected (a broadcast goes to those connected at submit)",
                  i, queue, spec->name);
        return -1;
    }
    for (size_t e = 0; e < spec->endpoints.n; e++) {
        const char *name = spec->endpoints.v[e];
        if (!*name || strchr (name, '@')) {
            snprintf (why, size, "tasks[%zu].endpoints[%zu]: '%s' is not a worker name", i, e,
                      name);
            return -1;
        }
        for (size_t d = 0; d < e; d++)
            if (streq (spec->endpoints.v[d], name)) {
                snprintf (why, size, "tasks[%zu].endpoints: '%s' is named twice", i, name);
                return -1;
            }
        if (!spec->allow_unknown && !s_worker_named (verbs, name)) {
            snprintf (why, size,
                      "tasks[%zu].endpoints: no worker named '%s' is connected "
                      "(allow_unknown to send anyway)",
                      i, name);
            return -1;
        }
    }
    return 0;
}

//  Checks the workflow parts of a SUBMIT (flow kind, input, endpoints,
//  dependencies and cycles). *dag_p: the batch's graph, made only when a
//  task has a ref or a dependency (most have neither, and a graph was an
//  allocation a task submitted alone). Returns 0, or -1 with why set.
static int
s_check_flow (const arb_verbs_t *verbs, arb_msg_t *msg, arb_dag_t **dag_p, char *why, size_t size)
{
    arb_submit_body_t *body = arb_msg_submit (msg);
    if (body->flow_kind > ARB_FLOW_PIPE) {
        snprintf (why, size, "flow_kind: %u is not 1 (dag), 2 (group) or 3 (pipe)",
                  body->flow_kind);
        return -1;
    }
    bool linked = false;
    for (size_t i = 0; i < body->tasks.n; i++) {
        const arb_task_spec_t *spec = &body->tasks.v[i];
        linked |= spec->ref || spec->after.n;
        if (spec->input > ARB_INPUT_PARENT) {
            snprintf (why, size, "tasks[%zu].input: %u is not 0 (payload) or 1 (parent)", i,
                      spec->input);
            return -1;
        }
        if (spec->input == ARB_INPUT_PARENT && (spec->after.n != 1 || spec->after.v[0].when != 0)) {
            snprintf (why, size,
                      "tasks[%zu].input: taking its parent's result needs exactly one "
                      "on_success dependency",
                      i);
            return -1;
        }
        if (s_check_endpoints (verbs, spec, i, why, size))
            return -1;
    }
    if (!linked)
        return 0;
    *dag_p = arb_dag_new (body->tasks.v, body->tasks.n);
    return arb_dag_check (*dag_p, s_task_exists, (void *) verbs, why, size);
}

void
arb_verbs_submit (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_submit_body_t *body = arb_msg_submit (msg);
    size_t n = body->tasks.n;
    char why[ARB_TEXT_MAX];
    //  the task's place goes in front of the reason only when refused: a
    //  snprintf per task was a fifth of a submit's checks
    for (size_t i = 0; i < n; i++) {
        if (arb_verbs_check_spec (verbs, &body->tasks.v[i], why, sizeof (why))) {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID, "tasks[%zu].%s", i, why);
            return;
        }
    }
    arb_dag_t *dag = NULL;
    if (s_check_flow (verbs, msg, &dag, why, sizeof (why))) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID, "%s", why);
        arb_dag_destroy (&dag);
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_SUBMITTED);
    if (arb_life_submit (verbs->life, msg, dag, reply)) {
        arb_msg_destroy (&reply);
        arb_life_halt (verbs->life, "submit");
    }
    else
        arb_outbox_reply (verbs->outbox, &reply);
    arb_dag_destroy (&dag);
}

//  ---------------------------------------------------------------------
//  STATUS, LIST

//  Overlays what only memory knows (a lease, attempts not yet journaled,
//  whether a worker runs it).
static void
s_overlay (const arb_verbs_t *verbs, arb_msg_t *reply, arb_task_info_t *info, arb_task_t *task)
{
    info->no_handler = arb_sched_is_unhandled (arb_life_sched (verbs->life), task);
    info->state = task->state;
    info->attempts = task->attempts;
    info->lost = task->lost;
    info->not_before_ms = arb_task_ext (task)->not_before_ms;
    if (task->state == ARB_STATE_RUNNING) {
        info->started_ms = arb_task_ext (task)->started_ms;
        info->worker = arb_msg_strdup (reply, arb_session_name (arb_task_ext (task)->session));
    }
}

//  The history in the journal holds the attempts that did not succeed; the
//  one going on now, or the one that succeeded, is added from the task. A
//  task that succeeded without an attempt (a fan-out task: its copies ran)
//  has none to add.
static void
s_current_attempt (arb_msg_t *reply, arb_task_info_t *info)
{
    bool running = info->state == ARB_STATE_RUNNING;
    if ((!running && info->state != ARB_STATE_SUCCEEDED) || info->attempts == 0)
        return;
    arb_attempt_info_t *a =
        (arb_attempt_info_t *) arb_msg_grow (reply, &info->history, sizeof (*a), 1);
    a->attempt = info->attempts;
    a->started_ms = info->started_ms;
    a->ended_ms = running ? 0 : info->finished_ms;
    a->worker = info->worker;
    a->outcome = running ? ARB_ATTEMPT_RUNNING : ARB_OUTCOME_OK;
}

//  A fan-out task's responses come from its copies' rows, where a copy
//  running at its endpoint is still ready (a hand-out writes nothing):
//  an open copy's state is the one in memory.
static void
s_overlay_responses (const arb_verbs_t *verbs, arb_task_info_t *info)
{
    for (size_t i = 0; i < info->responses.n; i++) {
        arb_response_info_t *r = &info->responses.v[i];
        arb_task_t *copy = arb_sched_find_hot (arb_life_sched (verbs->life), r->id);
        if (copy)
            r->state = copy->state;
    }
}

//  A task's payload for a STATUS that asks for it: the payload cache's copy
//  if memory has one, else the journal's (its log's row if the tables do
//  not hold it yet). A payload never changes once submitted, so either is
//  the payload. 0, or -1 if the journal could not read it.
static int
s_payload (const arb_verbs_t *verbs, arb_msg_t *reply, arb_task_t *task, arb_task_info_t *info)
{
    arb_bin_t cached, cached_headers;
    if (task
        && arb_sched_cache_view (arb_life_sched (verbs->life), task, &cached, &cached_headers)) {
        info->payload = arb_msg_bindup (reply, cached.data, cached.size);
        return 0;
    }
    zframe_t *payload, *headers;
    if (arb_journal_load_payload (verbs->journal, info->id, &payload, &headers, NULL))
        return -1;
    info->payload = arb_msg_bindup (reply, zframe_data (payload), zframe_size (payload));
    zframe_destroy (&payload);
    zframe_destroy (&headers);
    return 0;
}

void
arb_verbs_status (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_status_body_t *body = arb_msg_status (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_STATUS_REPLY);
    arb_status_reply_body_t *out = arb_msg_status_reply (reply);
    arb_task_info_t *infos = (arb_task_info_t *) arb_msg_grow (
        reply, &out->tasks, sizeof (arb_task_info_t), body->ids.n);
    //  an id given again is answered again, without what could make one
    //  result cost its size once per repeat
    size_t *first = arb_ids_first (body->ids.v, body->ids.n);
    size_t bytes = 0, i;
    for (i = 0; i < body->ids.n; i++) {
        //  a reply's results are bounded as a DISPATCH's: past the bound
        //  (after the first task, whose result always goes), the ids left
        //  are for another STATUS
        if (i && bytes >= ARB_REPLY_BYTES) {
            out->more = true;
            break;
        }
        arb_life_pulse (verbs->life, i);
        if (first[i] != i) {
            infos[i] = infos[first[i]];
            infos[i].result = (arb_bin_t){0};
            infos[i].args = (arb_bin_t){0};
            infos[i].payload = (arb_bin_t){0};
            infos[i].responses.v = NULL;
            infos[i].responses.n = 0;
            continue;
        }
        if (arb_journal_task_info (verbs->journal, body->ids.v[i], true, reply, &infos[i])) {
            free (first);
            arb_msg_destroy (&reply);
            arb_life_halt (verbs->life, "status");
            return;
        }
        //  a cold task is all its row says: no need to read it back
        arb_task_t *task = arb_sched_find_hot (arb_life_sched (verbs->life), body->ids.v[i]);
        if (task)
            s_overlay (verbs, reply, &infos[i], task);
        if (body->with_payload && infos[i].found && s_payload (verbs, reply, task, &infos[i])) {
            free (first);
            arb_msg_destroy (&reply);
            arb_life_halt (verbs->life, "status");
            return;
        }
        s_overlay_responses (verbs, &infos[i]);
        s_current_attempt (reply, &infos[i]);
        bytes += infos[i].result.size + infos[i].args.size + infos[i].payload.size;
        for (size_t r = 0; r < infos[i].responses.n; r++)
            bytes += infos[i].responses.v[r].result.size;
    }
    out->tasks.n = i;
    free (first);
    arb_outbox_reply (verbs->outbox, &reply);
}

static int
s_compare_info (const void *a, const void *b)
{
    uint64_t x = ((const arb_task_info_t *) a)->id, y = ((const arb_task_info_t *) b)->id;
    return x < y ? -1 : x > y;
}

static int
s_compare_info_newest (const void *a, const void *b)
{
    return s_compare_info (b, a);
}

static int
s_compare_task (const void *a, const void *b)
{
    uint64_t x = (*(arb_task_t *const *) a)->id, y = (*(arb_task_t *const *) b)->id;
    return x < y ? -1 : x > y;
}

static int
s_compare_task_newest (const void *a, const void *b)
{
    return s_compare_task (b, a);
}

static bool
s_list_matches (const arb_list_body_t *body, arb_task_t *task)
{
    return task->id > body->after_id && (!body->before_id || task->id < body->before_id)
           && (!body->state || task->state == body->state)
           && (!body->flow || arb_task_ext (task)->flow == body->flow)
           && (!body->queue || streq (body->queue, arb_queue_name (task->queue)));
}

//  Whether task a comes after task b in the page's order.
static bool
s_list_after (const arb_task_t *a, const arb_task_t *b, bool newest)
{
    return newest ? a->id < b->id : a->id > b->id;
}

//  Offers a matching task to the page being gathered: a heap of at most
//  room tasks whose top is the last of them in the page's order, so that
//  a page costs a look at each unfinished task and memory for the page,
//  never a sort of everything that matches.
static void
s_list_offer (arb_task_t **page, size_t *n, size_t room, arb_task_t *task, bool newest)
{
    size_t at;
    if (*n < room) {
        at = (*n)++;
        while (at > 0 && s_list_after (task, page[(at - 1) / 2], newest)) {
            page[at] = page[(at - 1) / 2];
            at = (at - 1) / 2;
        }
        page[at] = task;
        return;
    }
    if (!s_list_after (page[0], task, newest))
        return;
    at = 0;  //  the new task replaces the top, sifting down
    while (2 * at + 1 < *n) {
        size_t child = 2 * at + 1;
        if (child + 1 < *n && s_list_after (page[child + 1], page[child], newest))
            child++;
        if (!s_list_after (page[child], task, newest))
            break;
        page[at] = page[child];
        at = child;
    }
    page[at] = task;
}

static bool
s_in_memory (void *sched, uint64_t id)
{
    return arb_sched_find_hot ((arb_sched_t *) sched, id) != NULL;
}

//  Appends the first limit unfinished tasks that match (memory), in the
//  page's order; only those are read from the journal, so that a page
//  costs little however many tasks wait; and the first limit cold ones
//  (journal). Sets out->more if more match.
static int
s_list_open (const arb_verbs_t *verbs,
             const arb_list_body_t *body,
             uint32_t limit,
             arb_msg_t *reply,
             arb_list_reply_body_t *out)
{
    arb_sched_t *sched = arb_life_sched (verbs->life);
    size_t count = arb_sched_task_count (sched);
    size_t room = count < limit ? count : limit;
    arb_task_t **found = (arb_task_t **) malloc ((room + 1) * sizeof (arb_task_t *));
    assert (found);
    size_t n = 0;
    //  a queue's own tasks when it is given, else every unfinished task
    arb_queue_t *queue = body->queue ? arb_sched_find_queue (sched, body->queue) : NULL;
    arb_task_t *task =
        body->queue ? (queue ? arb_queue_first_task (queue) : NULL) : arb_sched_first_task (sched);
    for (; task; task = body->queue ? task->queue_next : arb_sched_next_task (sched))
        if (s_list_matches (body, task)) {
            out->more |= n == limit;  //  one of them stays out of the page
            s_list_offer (found, &n, room, task, body->newest);
        }
    qsort (found, n, sizeof (arb_task_t *), body->newest ? s_compare_task_newest : s_compare_task);
    int rc = 0;
    //  the cold backlog is in the journal only: plain ready tasks, in no flow
    if (arb_sched_cold_count (sched) && !body->flow
        && (body->state == 0 || body->state == ARB_STATE_READY))
        rc = arb_journal_list_cold (verbs->journal, body, limit, s_in_memory, sched, reply, out);
    for (size_t i = 0; i < n && rc == 0; i++) {
        arb_task_info_t *info =
            (arb_task_info_t *) arb_msg_grow (reply, &out->tasks, sizeof (*info), 1);
        rc = arb_journal_task_info (verbs->journal, found[i]->id, false, reply, info);
        s_overlay (verbs, reply, info, found[i]);
    }
    free (found);
    return rc;
}

//  LIST pages by id through unfinished tasks (memory) and final ones
//  (journal) alike: both sources give their first matches in the page's
//  order (lowest ids first, or highest with newest), and the first of
//  both win.
void
arb_verbs_list (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_list_body_t *body = arb_msg_list (msg);
    if (body->state > ARB_STATE_MAX || body->state == ARB_STATE_FAILED) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "state: %u is not a state a task rests in", body->state);
        return;
    }
    uint32_t limit = body->limit ? body->limit : ARB_LIST_DEFAULT;
    if (limit > ARB_LIST_PAGE)
        limit = ARB_LIST_PAGE;
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_LIST_REPLY);
    arb_list_reply_body_t *out = arb_msg_list_reply (reply);
    if (((body->state == 0 || arb_state_is_final ((int) body->state))
         && arb_journal_list_final (verbs->journal, body, limit, reply, out))
        || ((body->state == 0 || !arb_state_is_final ((int) body->state))
            && s_list_open (verbs, body, limit, reply, out))) {
        arb_msg_destroy (&reply);
        arb_life_halt (verbs->life, "list");
        return;
    }
    if (out->tasks.n > 1)
        qsort (out->tasks.v, out->tasks.n, sizeof (arb_task_info_t),
               body->newest ? s_compare_info_newest : s_compare_info);
    if (out->tasks.n > limit) {
        out->tasks.n = limit;
        out->more = true;
    }
    arb_outbox_reply (verbs->outbox, &reply);
}

//  ---------------------------------------------------------------------
//  WATCH

//  A task is watched, and a final one reported, once however often the
//  request names it: a DONE never repeats a result.
void
arb_verbs_watch (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_watch_body_t *body = arb_msg_watch (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_WATCHING);
    arb_watching_body_t *out = arb_msg_watching (reply);
    size_t *first = arb_ids_first (body->ids.v, body->ids.n);
    size_t peer_size;
    const uint8_t *peer = arb_msg_peer (msg, &peer_size);
    for (size_t i = 0; i < body->ids.n; i++) {
        arb_life_pulse (verbs->life, i);
        if (first[i] != i)
            continue;
        bool found;
        if (arb_life_watch (verbs->life, body->ids.v[i], peer, peer_size, &found)) {
            free (first);
            arb_msg_destroy (&reply);
            arb_life_halt (verbs->life, "watch");
            return;
        }
        if (found)
            out->watching++;
        else
            *(uint64_t *) arb_msg_grow (reply, &out->unknown, sizeof (uint64_t), 1) =
                body->ids.v[i];
    }
    free (first);
    arb_outbox_reply (verbs->outbox, &reply);
}

//  ---------------------------------------------------------------------
//  CANCEL, RETRY

//  Answers for one id of a CANCEL or RETRY that found nothing to do in
//  memory: 404 if unknown, else 409 with its state.
static int
s_outcome_from_journal (const arb_verbs_t *verbs, uint64_t id, arb_outcome_info_t *outcome)
{
    int state;
    if (arb_journal_state (verbs->journal, id, &state, NULL, 0))
        return -1;
    outcome->id = id;
    outcome->code = state ? ARB_ERR_CONFLICT : ARB_ERR_NOT_FOUND;
    outcome->state = (uint32_t) state;
    return 0;
}

//  The flow (its kind) and the groups (their flows) a CANCEL names, looked
//  up before anything is cancelled: one that is not there is refused, as
//  RETRY refuses it (a misspelt name is not "0 cancelled"). Returns 0, 1
//  if refused (answered), or -1 if the journal failed.
static int
s_cancel_flows (const arb_verbs_t *verbs, arb_msg_t *msg, int *kind, zlistx_t **flows)
{
    arb_cancel_body_t *body = arb_msg_cancel (msg);
    if (body->flow && arb_journal_flow_kind (verbs->journal, body->flow, kind))
        return -1;
    if (body->flow && !*kind) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_NOT_FOUND, "flow: no flow %" PRIu64,
                           body->flow);
        return 1;
    }
    if (body->group
        && !(*flows = arb_journal_flows_named (verbs->journal, body->group, ARB_FLOW_GROUP)))
        return -1;
    if (*flows && zlistx_size (*flows) == 0) {
        zlistx_destroy (flows);
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_NOT_FOUND, "group: no group named '%s'",
                           body->group);
        return 1;
    }
    return 0;
}

void
arb_verbs_cancel (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_cancel_body_t *body = arb_msg_cancel (msg);
    if (!body->ids.n && !body->queue && !body->group && !body->flow) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                           "give ids, a queue, a group or a flow");
        return;
    }
    int kind = 0;
    zlistx_t *flows = NULL;
    arb_msg_t *reply = NULL;
    int rc = s_cancel_flows (verbs, msg, &kind, &flows);
    if (rc > 0)
        return;
    if (rc < 0)
        goto failed;
    reply = arb_msg_new_reply (msg, ARB_MSG_CANCEL_REPLY);
    arb_cancel_reply_body_t *out = arb_msg_cancel_reply (reply);
    uint64_t cancelled_before =
        arb_life_cancelled (verbs->life);  //  count: what this request cancelled
    for (size_t i = 0; i < body->ids.n; i++) {
        arb_life_pulse (verbs->life, i);
        arb_outcome_info_t *outcome =
            (arb_outcome_info_t *) arb_msg_grow (reply, &out->tasks, sizeof (*outcome), 1);
        arb_task_t *task = arb_sched_find (arb_life_sched (verbs->life), body->ids.v[i]);
        if (task) {
            outcome->id = body->ids.v[i];
            outcome->state = (uint32_t) arb_life_cancel_tree (verbs->life, &task, "cancelled");
        }
        else if (s_outcome_from_journal (verbs, body->ids.v[i], outcome))
            goto failed;
    }
    if (body->queue)
        arb_life_cancel_queue (verbs->life, body->queue);
    if (body->flow)
        arb_life_cancel_flow (verbs->life, body->flow, kind == ARB_FLOW_GROUP);
    for (void *f = flows ? zlistx_first (flows) : NULL; f && !arb_life_is_halted (verbs->life);
         f = zlistx_next (flows))
        arb_life_cancel_flow (verbs->life, (uint64_t) (uintptr_t) f, true);
    if (arb_life_is_halted (verbs->life))
        goto failed;
    zlistx_destroy (&flows);
    out->count = (uint32_t) (arb_life_cancelled (verbs->life) - cancelled_before);
    arb_outbox_reply (verbs->outbox, &reply);
    return;
failed:
    zlistx_destroy (&flows);
    arb_msg_destroy (&reply);
    arb_life_halt (verbs->life, "cancel");
}

//  n zeroed per-id answers at the end of a reply's list (NULL for none).
static arb_outcome_info_t *
s_outcomes (arb_msg_t *reply, void *list, size_t n)
{
    return n ? (arb_outcome_info_t *) arb_msg_grow (reply, list, sizeof (arb_outcome_info_t), n)
             : NULL;
}

//  Appends the ids of a list (NULL: the journal failed) to ids. 0 or -1.
static int
s_append_ids (arb_vec_t *ids, zlistx_t **list_p)
{
    if (!*list_p)
        return -1;
    for (void *id = zlistx_first (*list_p); id; id = zlistx_next (*list_p))
        arb_vec_push (ids, (uint64_t) (uintptr_t) id);
    zlistx_destroy (list_p);
    return 0;
}

//  The tasks a RETRY names besides its ids, appended to ids: every dead
//  task of a queue (all), then (from *own_from on) the dead tasks of a
//  flow or of the groups of a name, of which only those that died on
//  their own are retried: their dependents follow them. 0, or -1 after
//  refusing the request (an unknown flow or group), or with the journal
//  failed (*failed).
static int
s_retry_targets (
    const arb_verbs_t *verbs, arb_msg_t *msg, arb_vec_t *ids, size_t *own_from, bool *failed)
{
    arb_retry_body_t *body = arb_msg_retry (msg);
    int kind = 0;
    zlistx_t *flows = NULL;
    if (body->flow && (*failed = arb_journal_flow_kind (verbs->journal, body->flow, &kind)))
        return -1;
    if (body->flow && !kind) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_NOT_FOUND, "flow: no flow %" PRIu64,
                           body->flow);
        return -1;
    }
    if (body->group
        && (*failed =
                !(flows = arb_journal_flows_named (verbs->journal, body->group, ARB_FLOW_GROUP))))
        return -1;
    if (flows && zlistx_size (flows) == 0) {
        zlistx_destroy (&flows);
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_NOT_FOUND, "group: no group named '%s'",
                           body->group);
        return -1;
    }
    zlistx_t *list = NULL;
    if (body->queue && body->all)
        list = arb_journal_dead_ids (verbs->journal, body->queue);
    if (body->queue && body->all && (*failed = s_append_ids (ids, &list)))
        return -1;
    *own_from = ids->n;
    if (body->flow)
        list = arb_journal_flow_dead_ids (verbs->journal, body->flow);
    if (body->flow && (*failed = s_append_ids (ids, &list)))
        return -1;
    for (void *f = flows ? zlistx_first (flows) : NULL; f && !*failed; f = zlistx_next (flows)) {
        list = arb_journal_flow_dead_ids (verbs->journal, (uint64_t) (uintptr_t) f);
        *failed = s_append_ids (ids, &list) != 0;
    }
    zlistx_destroy (&flows);
    return *failed ? -1 : 0;
}

void
arb_verbs_retry (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_retry_body_t *body = arb_msg_retry (msg);
    if (!body->ids.n && !(body->queue && body->all) && !body->flow && !body->group) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                           "give ids, a queue and all, a flow or a group");
        return;
    }
    arb_vec_t ids = {0};
    size_t own_from = 0;
    bool failed = false;
    if (s_retry_targets (verbs, msg, &ids, &own_from, &failed)) {
        arb_vec_free (&ids);
        if (failed)
            arb_life_halt (verbs->life, "retry");
        return;
    }
    //  the ids asked for by name come first, retried whatever they died of
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_RETRY_REPLY);
    arb_retry_reply_body_t *out = arb_msg_retry_reply (reply);
    arb_outcome_info_t *outcomes = s_outcomes (reply, &out->tasks, body->ids.n);
    arb_vec_t all = {0};
    for (size_t i = 0; i < body->ids.n; i++)
        arb_vec_push (&all, body->ids.v[i]);
    for (size_t i = 0; i < ids.n; i++)
        arb_vec_push (&all, ids.v[i]);
    arb_vec_free (&ids);
    bool *revived = (bool *) calloc (all.n ? all.n : 1, sizeof (bool));
    uint64_t count = 0;
    int rc = arb_life_retry (verbs->life, all.v, all.n, body->ids.n + own_from, revived, &count);
    for (size_t i = 0; rc == 0 && i < body->ids.n; i++) {
        arb_life_pulse (verbs->life, i);
        arb_task_t *task = arb_sched_find (arb_life_sched (verbs->life), body->ids.v[i]);
        outcomes[i].id = body->ids.v[i];
        if (revived[i])
            outcomes[i].state = task ? task->state : ARB_STATE_DEAD;
        else if (task) {
            outcomes[i].code = ARB_ERR_CONFLICT;
            outcomes[i].state = task->state;
        }
        else
            rc = s_outcome_from_journal (verbs, body->ids.v[i], &outcomes[i]);
    }
    out->count = (uint32_t) count;
    free (revived);
    arb_vec_free (&all);
    if (rc == 0 && !arb_life_is_halted (verbs->life))
        arb_outbox_reply (verbs->outbox, &reply);
    else {
        arb_msg_destroy (&reply);
        arb_life_halt (verbs->life, "retry");
    }
}

//  ---------------------------------------------------------------------
//  DELETE

void
arb_verbs_delete (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_delete_body_t *body = arb_msg_delete (msg);
    bool matching = body->state || body->queue || body->older_than_ms;
    if (body->ids.n == 0 && !matching) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                           "give ids, or a state, a queue or older_than_ms");
        return;
    }
    if (body->ids.n && (matching || body->after_id)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                           "give ids, or state, queue and older_than_ms, not both");
        return;
    }
    if (body->state && !arb_state_is_final ((int) body->state)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "state: %u is not a final state (5 succeeded, 7 dead, 8 cancelled, "
                           "9 skipped)",
                           body->state);
        return;
    }
    if (body->queue && !*body->queue) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID, "queue: must not be empty");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_DELETE_REPLY);
    arb_delete_reply_body_t *out = arb_msg_delete_reply (reply);
    int rc = 0;
    if (matching)
        rc = arb_life_delete_matching (verbs->life, body, &out->count, &out->last_id, &out->more);
    arb_outcome_info_t *outcomes = s_outcomes (reply, &out->tasks, body->ids.n);
    for (size_t i = 0; rc == 0 && i < body->ids.n; i++) {
        rc = arb_life_delete (verbs->life, body->ids.v[i], &outcomes[i]);
        if (rc == 0 && outcomes[i].code == 0)
            out->count++;
    }
    if (rc == 0)
        arb_outbox_reply (verbs->outbox, &reply);
    else
        arb_msg_destroy (&reply);
}
