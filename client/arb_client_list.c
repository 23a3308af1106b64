/*  arb_client_list.c — listings that take more than one request: LIST
    page by page, and a flow's tasks with their names (LIST, then STATUS).
    Built on the client's public calls only (arb_client_request); part of
    libarbclient, declared in arb_client.h.
*/

#include "arb_client.h"

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

//  STATUS of n ids; fn for each found. Returns as arb_client_flow_each.
static int
s_status_page (arb_client_t *self, uint64_t *ids, size_t n, arb_client_task_fn *fn, void *arg)
{
    arb_msg_t *request = arb_client_request_new (self, ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = ids;  //  borrowed until sent
    body->ids.n = n;
    arb_msg_t *reply = arb_client_request (self, &request);
    if (!reply)
        return -1;
    arb_status_reply_body_t *tasks = arb_msg_status_reply (reply);
    int stopped = 0;
    for (size_t i = 0; i < tasks->tasks.n && !stopped; i++)
        if (tasks->tasks.v[i].found)  //  gone since LIST: its retention ran out
            stopped = fn (arg, &tasks->tasks.v[i]);
    arb_msg_destroy (&reply);
    return stopped ? 1 : 0;
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
    for (size_t at = 0; rc == 0 && at < ids.n; at += ARB_STATUS_PAGE) {
        size_t n = ids.n - at < ARB_STATUS_PAGE ? ids.n - at : ARB_STATUS_PAGE;
        rc = s_status_page (self, ids.v + at, n, fn, arg);
    }
    free (ids.v);
    return rc;
}
