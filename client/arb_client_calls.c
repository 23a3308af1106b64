/*  arb_client_calls.c — the client's calls for each verb, so that a C
    program never builds or reads a message itself: status, list (page by
    page), a flow's tasks (LIST, then STATUS), cancel, retry, stats (every page), peek.
    Built on arb_client_request (and arb_client_fail for what the broker's
    answer gets wrong); part of libarbiter, declared in arb_client.h.
*/

#include "arb_client_priv.h"
#include "arb_stats_pages.h"

#define ARB_LIST_PAGE   1000  //  tasks asked for per LIST
#define ARB_STATUS_PAGE 256   //  ids per STATUS: replies carry results of up to 16 MiB each

//  One page of LIST after `after`, at most want tasks; NULL on failure.
static arb_msg_t *
s_list_page (arb_client_t *self, const arb_list_body_t *filter, uint64_t after, uint64_t want)
{
    arb_msg_t *request = arb_client_request_new (self, ARB_MSG_LIST);
    arb_list_body_t *body = arb_msg_list (request);
    body->state = filter->state;
    body->queue = filter->queue;
    body->flow = filter->flow;
    body->after_id = after;
    body->limit = (uint32_t) want;
    return arb_client_request (self, &request);
}

int
arb_client_list (arb_client_t *self,
                 const arb_list_body_t *filter,
                 uint64_t max,
                 arb_client_task_fn *fn,
                 void *arg)
{
    assert (self && filter && fn);
    uint64_t given = 0, after = 0;
    while (true) {
        uint64_t want = max == 0 || max - given > ARB_LIST_PAGE ? ARB_LIST_PAGE : max - given;
        arb_msg_t *reply = s_list_page (self, filter, after, want);
        if (!reply)
            return -1;
        arb_list_reply_body_t *body = arb_msg_list_reply (reply);
        int stopped = 0;
        for (size_t i = 0; i < body->tasks.n && !stopped; i++, given++) {
            after = body->tasks.v[i].id;
            stopped = fn (arg, &body->tasks.v[i]);
        }
        //  a page without tasks cannot move after_id on: stop rather than spin
        bool more = body->more && body->tasks.n > 0;
        arb_msg_destroy (&reply);
        if (stopped || (more && max && given >= max))
            return 1;
        if (!more)
            return 0;
    }
}

//  Ids in the order LIST gives them (id order).
typedef struct {
    uint64_t *v;  //  owned
    size_t n;
    size_t capacity;
} s_ids_t;

static int
s_collect_id (void *arg, arb_task_info_t *task)
{
    s_ids_t *ids = (s_ids_t *) arg;
    if (ids->n == ids->capacity) {
        ids->capacity = ids->capacity ? ids->capacity * 2 : 64;
        ids->v = (uint64_t *) realloc (ids->v, ids->capacity * sizeof (uint64_t));
        assert (ids->v);
    }
    ids->v[ids->n++] = task->id;
    return 0;
}

int
arb_client_status (
    arb_client_t *self, const uint64_t *ids, size_t n, arb_client_task_fn *fn, void *arg)
{
    assert (self && (ids || n == 0) && fn);
    size_t at = 0;
    while (at < n) {
        size_t asked = n - at < ARB_STATUS_PAGE ? n - at : ARB_STATUS_PAGE;
        arb_msg_t *request = arb_client_request_new (self, ARB_MSG_STATUS);
        arb_status_body_t *body = arb_msg_status (request);
        body->ids.v = (uint64_t *) ids + at;  //  borrowed until sent, never written
        body->ids.n = asked;
        arb_msg_t *reply = arb_client_request (self, &request);
        if (!reply)
            return -1;
        arb_status_reply_body_t *tasks = arb_msg_status_reply (reply);
        int stopped = 0;
        for (size_t i = 0; i < tasks->tasks.n && !stopped; i++)
            stopped = fn (arg, &tasks->tasks.v[i]);
        //  a reply whose results reach the bound answers the first ids
        //  only (more): the rest are asked again
        size_t answered = tasks->more ? tasks->tasks.n : asked;
        arb_msg_destroy (&reply);
        if (stopped)
            return 1;
        at += answered ? answered : asked;
    }
    return 0;
}

typedef struct {
    arb_client_task_fn *fn;
    void *arg;
} s_found_t;

//  A flow's task gone since LIST (its retention ran out) is not its task.
static int
s_if_found (void *arg, arb_task_info_t *task)
{
    s_found_t *self = (s_found_t *) arg;
    return task->found ? self->fn (self->arg, task) : 0;
}

int
arb_client_flow_each (arb_client_t *self, uint64_t flow, arb_client_task_fn *fn, void *arg)
{
    assert (self && fn);
    //  LIST finds the flow's tasks, but tells the ref of final ones only:
    //  the broker builds the answer for unfinished tasks from memory,
    //  which does not keep refs. STATUS reads every task's row.
    s_ids_t ids = {NULL, 0, 0};
    arb_list_body_t filter = {.flow = flow};
    int rc = flow ? arb_client_list (self, &filter, 0, s_collect_id, &ids) : 0;
    s_found_t found = {fn, arg};
    if (rc == 0)
        rc = arb_client_status (self, ids.v, ids.n, s_if_found, &found);
    free (ids.v);
    return rc;
}

//  ---------------------------------------------------------------------
//  Changes.

//  Sends a CANCEL or RETRY and reads its answer (RETRY_REPLY has
//  CANCEL_REPLY's body) into outcomes, one per id asked.
static int
s_change (arb_client_t *self,
          arb_msg_t *request,
          size_t ids,
          arb_outcome_info_t *outcomes,
          uint32_t *count)
{
    arb_msg_type_t type = arb_msg_type (request);
    arb_msg_t *reply = arb_client_request (self, &request);
    if (!reply)
        return -1;
    arb_cancel_reply_body_t *body =
        type == ARB_MSG_CANCEL ? arb_msg_cancel_reply (reply) : arb_msg_retry_reply (reply);
    int rc = 0;
    if (body->tasks.n != ids) {
        arb_client_fail (self, 0, "broker %s answered for %zu of %zu tasks",
                         arb_client_endpoint (self), body->tasks.n, ids);
        rc = -1;
    }
    else if (outcomes && ids)
        memcpy (outcomes, body->tasks.v, ids * sizeof (arb_outcome_info_t));
    if (rc == 0 && count)
        *count = body->count;
    arb_msg_destroy (&reply);
    return rc;
}

int
arb_client_cancel (arb_client_t *self,
                   const arb_cancel_body_t *what,
                   arb_outcome_info_t *outcomes,
                   uint32_t *count)
{
    assert (self && what);
    arb_msg_t *request = arb_client_request_new (self, ARB_MSG_CANCEL);
    *arb_msg_cancel (request) = *what;  //  strings and ids borrowed until sent
    return s_change (self, request, what->ids.n, outcomes, count);
}

int
arb_client_retry (arb_client_t *self,
                  const arb_retry_body_t *what,
                  arb_outcome_info_t *outcomes,
                  uint32_t *count)
{
    assert (self && what);
    arb_msg_t *request = arb_client_request_new (self, ARB_MSG_RETRY);
    *arb_msg_retry (request) = *what;  //  strings and ids borrowed until sent
    return s_change (self, request, what->ids.n, outcomes, count);
}

//  ---------------------------------------------------------------------
//  Looking.

int
arb_client_stats (arb_client_t *self, arb_client_stats_fn *fn, void *arg)
{
    assert (self && fn);
    arb_stats_pages_t *pages = arb_stats_pages_new (NULL);
    int more = 1;
    while (more == 1) {
        arb_msg_t *request = arb_client_request_new (self, ARB_MSG_STATS);
        arb_stats_pages_request (pages, request);
        arb_msg_t *reply = arb_client_request (self, &request);
        if (!reply) {
            arb_stats_pages_destroy (&pages);
            return -1;
        }
        more = arb_stats_pages_add (pages, &reply);
    }
    if (more < 0)
        arb_client_fail (self, 0, "broker %s: more than %d pages of STATS",
                         arb_client_endpoint (self), ARB_STATS_PAGES_MAX);
    else
        fn (arg, arb_stats_pages_reply (pages));
    arb_stats_pages_destroy (&pages);
    return more < 0 ? -1 : 0;
}

int
arb_client_peek (
    arb_client_t *self, const char *queue, uint32_t max, arb_client_peek_fn *fn, void *arg)
{
    assert (self && queue && fn);
    arb_msg_t *request = arb_client_request_new (self, ARB_MSG_PEEK);
    arb_msg_peek (request)->queue = queue;
    arb_msg_peek (request)->max = max;
    arb_msg_t *reply = arb_client_request (self, &request);
    if (!reply)
        return -1;
    arb_peek_reply_body_t *body = arb_msg_peek_reply (reply);
    int stopped = 0;
    for (size_t i = 0; i < body->tasks.n && !stopped; i++)
        stopped = fn (arg, &body->tasks.v[i]);
    arb_msg_destroy (&reply);
    return stopped ? 1 : 0;
}
