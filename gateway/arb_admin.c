/*  arb_admin.c — the admin API; see arb_admin.h.

    Each route is one broker request (LIST, STATUS, CANCEL, RETRY, QUEUE),
    except the views of STATS, which read every page of it
    (arb_http_stats), and a flow's tasks, which are LIST pages asked one
    after the other until the flow is complete (the request keeps the
    tasks gathered so far).
*/

#include "arb_admin.h"
#include "arb_json.h"
#include "arb_route.h"

#include <microhttpd.h>

//  ---------------------------------------------------------------------
//  Helpers

static arb_msg_t *
s_request (arb_http_req_t *req, arb_msg_type_t type)
{
    return arb_link_request_new (arb_gateway_link (arb_http_req_gateway (req)), type);
}

//  Answers an ERROR reply. Returns whether reply was one.
static bool
s_refused (arb_http_req_t *req, arb_msg_t *reply, const char *what)
{
    if (arb_msg_type (reply) != ARB_MSG_ERROR)
        return false;
    arb_http_reply_refusal (req, (int) arb_msg_error (reply)->code, arb_msg_error (reply)->reason,
                            what);
    return true;
}

//  The id (what: "task", "flow") in path segment i, or 0 after answering
//  404.
static uint64_t
s_path_id (arb_http_req_t *req, size_t i, const char *what)
{
    uint64_t id;
    const char *text = arb_http_req_segment (req, i);
    if (arb_route_id (text, &id)) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "'%.32s' is not a %s id", text, what);
        return 0;
    }
    return id;
}

//  The queue name in path segment 3, or NULL after answering 400: the
//  same for every queue route, GET too.
static const char *
s_queue_name (arb_http_req_t *req)
{
    const char *queue = arb_http_req_segment (req, 3);
    if (strlen (queue) > ARB_NAME_MAX) {
        arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "queue: a name of 1 to %d bytes",
                              ARB_NAME_MAX);
        return NULL;
    }
    return queue;
}

//  A query's id (what: "task", "flow"; absent: *value unchanged), spelt
//  as a path's (arb_route_id: "01" is no id), or "0" where bound says it
//  means no bound (after=0, before=0). 0, or -1 after answering 400 as the
//  path's 404 (s_path_id), the key first.
static int
s_query_id (arb_http_req_t *req, const char *key, const char *what, bool bound, uint64_t *value)
{
    const char *text = arb_http_req_query (req, key);
    if (!text)
        return 0;
    if (bound && streq (text, "0")) {
        *value = 0;
        return 0;
    }
    if (arb_route_id (text, value) == 0)
        return 0;
    arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "%s: '%.32s' is not a %s id", key, text, what);
    return -1;
}

//  The query's limit (absent: *limit unchanged): 1 to ARB_ADMIN_PAGE_MAX.
//  0, or -1 after answering 400 with the range, whichever end is passed.
static int
s_query_limit (arb_http_req_t *req, uint64_t *limit)
{
    const char *text = arb_http_req_query (req, "limit");
    uint64_t value;
    if (!text)
        return 0;
    if (arb_route_number (text, ARB_ADMIN_PAGE_MAX, &value) == 0 && value > 0) {
        *limit = value;
        return 0;
    }
    arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST,
                          "limit: expected a number from 1 to %d, not '%.32s'", ARB_ADMIN_PAGE_MAX,
                          text);
    return -1;
}

static int
s_query_queue (arb_http_req_t *req, const char **queue)
{
    const char *text = arb_http_req_query (req, "queue");
    if (text && (!*text || strlen (text) > ARB_NAME_MAX)) {
        arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "queue: a name of 1 to %d bytes",
                              ARB_NAME_MAX);
        return -1;
    }
    *queue = text;
    return 0;
}

//  ---------------------------------------------------------------------
//  Tasks

//  The query arguments of GET /api/v1/tasks (s_list reads them); the other
//  routes take none.
#define ARB_ADMIN_LIST_ARGS "state queue flow after before order limit"

static void
s_on_list (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (s_refused (req, reply, "list"))
        return;
    arb_list_reply_body_t *body = arb_msg_list_reply (reply);
    json_t *tasks = json_array ();
    for (size_t i = 0; i < body->tasks.n; i++)
        json_array_append_new (tasks, arb_json_task (&body->tasks.v[i], false));
    json_t *obj = json_object ();
    json_object_set_new (obj, "tasks", tasks);
    json_object_set_new (obj, "more", json_boolean (body->more));
    json_object_set_new (obj, "next",
                         body->more && body->tasks.n
                             ? json_integer ((json_int_t) body->tasks.v[body->tasks.n - 1].id)
                             : json_null ());
    arb_http_reply_json (req, MHD_HTTP_OK, &obj);
}

static void
s_list (arb_http_req_t *req, void *arg)
{
    int state = 0;
    const char *state_text = arb_http_req_query (req, "state");
    if (state_text && ((state = arb_state_parse (state_text)) < 0 || state == ARB_STATE_FAILED)) {
        arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST,
                              "state: '%.32s' is not one of waiting, scheduled, ready, running, "
                              "succeeded, dead, cancelled, skipped",
                              state_text);
        return;
    }
    const char *order = arb_http_req_query (req, "order");
    if (order && !streq (order, "oldest") && !streq (order, "newest")) {
        arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "order: '%.32s' is not oldest or newest",
                              order);
        return;
    }
    const char *queue = NULL;
    uint64_t flow = 0, after = 0, before = 0, limit = ARB_ADMIN_PAGE;
    if (s_query_queue (req, &queue) || s_query_id (req, "flow", "flow", false, &flow)
        || s_query_id (req, "after", "task", true, &after)
        || s_query_id (req, "before", "task", true, &before) || s_query_limit (req, &limit))
        return;
    if (arb_http_req_query (req, "before") && before == 0) {
        //  no id is smaller than 0, as every id is greater than after=0
        //  (to LIST, before 0 is no bound at all)
        json_t *obj = json_pack ("{s:[], s:b, s:n}", "tasks", "more", false, "next");
        arb_http_reply_json (req, MHD_HTTP_OK, &obj);
        return;
    }
    arb_msg_t *request = s_request (req, ARB_MSG_LIST);
    arb_list_body_t *body = arb_msg_list (request);
    body->state = (uint32_t) state;
    body->queue = queue ? arb_msg_strdup (request, queue) : NULL;
    body->flow = flow;
    body->after_id = after;
    body->before_id = before;
    body->newest = order && streq (order, "newest");
    body->limit = (uint32_t) limit;
    arb_http_send (req, &request, s_on_list, arg);
}

static void
s_on_task (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (s_refused (req, reply, "status"))
        return;
    arb_task_info_t *task = arb_http_found_task (reply);
    if (!task) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no task %.32s",
                              arb_http_req_segment (req, 3));
        return;
    }
    json_t *obj = arb_json_task (task, true);
    arb_http_reply_json (req, MHD_HTTP_OK, &obj);
}

//  A request about one task (STATUS, CANCEL, RETRY), its id from the
//  path (/api/v1/tasks/ID).
static void
s_one_task (arb_http_req_t *req, arb_msg_type_t type, arb_http_answer_fn *fn, void *arg)
{
    uint64_t id = s_path_id (req, 3, "task");
    if (id)
        arb_http_send_one (req, id, type, fn, arg);
}

static void
s_task (arb_http_req_t *req, void *arg)
{
    s_one_task (req, ARB_MSG_STATUS, s_on_task, arg);
}

//  CANCEL_REPLY or RETRY_REPLY for one id: 200 with the outcome, or 404 /
//  409 saying why.
static void
s_on_change (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    bool cancel = arb_msg_type (reply) == ARB_MSG_CANCEL_REPLY;
    if (s_refused (req, reply, "change"))
        return;
    arb_cancel_reply_body_t *body =
        cancel ? arb_msg_cancel_reply (reply) : arb_msg_retry_reply (reply);
    arb_outcome_info_t *outcome = body->tasks.n ? &body->tasks.v[0] : NULL;
    const char *id = arb_http_req_segment (req, 3);
    if (!outcome || outcome->code == ARB_ERR_NOT_FOUND)
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no task %.32s", id);
    else if (outcome->code) {
        //  a dead task that RETRY refuses is a fan-out task (PROTOCOL.md)
        const char *why = cancel ? "cancelled"
                          : outcome->state == ARB_STATE_DEAD
                              ? "retried: a fan-out task is not retried"
                              : "retried: only a dead task can";
        arb_http_reply_error (
            req, outcome->code == ARB_ERR_CONFLICT ? MHD_HTTP_CONFLICT : outcome->code,
            "task %.32s cannot be %s (state: %s)", id, why, arb_state_name ((int) outcome->state));
    }
    else {
        json_t *obj = arb_json_outcome (outcome);
        arb_http_reply_json (req, MHD_HTTP_OK, &obj);
    }
}

static void
s_cancel (arb_http_req_t *req, void *arg)
{
    s_one_task (req, ARB_MSG_CANCEL, s_on_change, arg);
}

static void
s_retry (arb_http_req_t *req, void *arg)
{
    s_one_task (req, ARB_MSG_RETRY, s_on_change, arg);
}

//  ---------------------------------------------------------------------
//  guillotina_amqp's routes, in its words: GET /@amqp-tasks (the ids of
//  the tasks kept), GET /@amqp-tasks/ID (a task's state), DELETE
//  /@amqp-tasks/ID (cancel); a task not found is 404 {"reason"}. Each is
//  served under a container's path too (/DB/CONTAINER/@amqp-tasks), where
//  guillotina served them.

//  guillotina_amqp's status of one of our states.
static const char *
s_amqp_status (uint32_t state)
{
    switch (state) {
        case ARB_STATE_RUNNING:
            return "running";
        case ARB_STATE_SUCCEEDED:
            return "finished";
        case ARB_STATE_DEAD:
            return "errored";
        case ARB_STATE_CANCELLED:
        case ARB_STATE_SKIPPED:
            return "canceled";
        default:
            return "scheduled";
    }
}

static void
s_amqp_not_found (arb_http_req_t *req)
{
    json_t *obj = json_pack ("{s:s}", "reason", "Task not found");
    arb_http_reply_json (req, MHD_HTTP_NOT_FOUND, &obj);
}

static void
s_on_amqp_list (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (s_refused (req, reply, "list"))
        return;
    arb_list_reply_body_t *body = arb_msg_list_reply (reply);
    json_t *ids = json_array ();
    for (size_t i = 0; i < body->tasks.n; i++)
        json_array_append_new (ids, json_integer ((json_int_t) body->tasks.v[i].id));
    arb_http_reply_json (req, MHD_HTTP_OK, &ids);
}

//  The ids of the tasks the broker keeps, as guillotina_amqp's state
//  manager listed every task it kept (just added ones too): the newest
//  ARB_ADMIN_PAGE_MAX, newest first (a bare list has no room for a next
//  page: /api/v1/tasks pages on).
static void
s_amqp_list (arb_http_req_t *req, void *arg)
{
    arb_msg_t *request = s_request (req, ARB_MSG_LIST);
    arb_list_body_t *body = arb_msg_list (request);
    body->newest = true;
    body->limit = ARB_ADMIN_PAGE_MAX;
    arb_http_send (req, &request, s_on_amqp_list, arg);
}

//  {"task_id", "name", "queue", "status", "attempts", "result" (its JSON
//  value, else as text), "error"}
static void
s_on_amqp_task (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (s_refused (req, reply, "status"))
        return;
    const arb_task_info_t *task = arb_http_found_task (reply);
    if (!task) {
        s_amqp_not_found (req);
        return;
    }
    json_t *obj = json_pack ("{s:I, s:s?, s:s?, s:s, s:I}", "task_id", (json_int_t) task->id,
                             "name", task->name, "queue", task->queue, "status",
                             s_amqp_status (task->state), "attempts", (json_int_t) task->attempts);
    if (task->state == ARB_STATE_SUCCEEDED) {
        json_t *value = task->result.size
                            ? json_loadb ((const char *) task->result.data, task->result.size,
                                          JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                            : json_null ();
        if (value)
            json_object_set_new (obj, "result", value);
        else
            arb_json_bytes (obj, "result", task->result.data, task->result.size);
    }
    else if (task->error && *task->error)
        json_object_set_new (obj, "error", json_string (task->error));
    arb_http_reply_json (req, MHD_HTTP_OK, &obj);
}

//  A request about the task of /@amqp-tasks/ID; an id that is not one is
//  a task not found, in guillotina's words.
static void
s_amqp_one (arb_http_req_t *req, arb_msg_type_t type, arb_http_answer_fn *fn, void *arg)
{
    uint64_t id;  //  the last segment: /@amqp-tasks/ID or /DB/CONTAINER/@amqp-tasks/ID
    if (arb_route_id (arb_http_req_segment (req, arb_http_req_segments (req) - 1), &id))
        s_amqp_not_found (req);
    else
        arb_http_send_one (req, id, type, fn, arg);
}

static void
s_amqp_task (arb_http_req_t *req, void *arg)
{
    s_amqp_one (req, ARB_MSG_STATUS, s_on_amqp_task, arg);
}

//  true: cancelled now, or before; false: it had ended otherwise.
static void
s_on_amqp_cancel (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (s_refused (req, reply, "cancel"))
        return;
    arb_cancel_reply_body_t *body = arb_msg_cancel_reply (reply);
    arb_outcome_info_t *outcome = body->tasks.n ? &body->tasks.v[0] : NULL;
    if (!outcome || outcome->code == ARB_ERR_NOT_FOUND) {
        s_amqp_not_found (req);
        return;
    }
    json_t *done = json_boolean (!outcome->code || outcome->state == ARB_STATE_CANCELLED);
    arb_http_reply_json (req, MHD_HTTP_OK, &done);
}

static void
s_amqp_cancel (arb_http_req_t *req, void *arg)
{
    s_amqp_one (req, ARB_MSG_CANCEL, s_on_amqp_cancel, arg);
}

//  ---------------------------------------------------------------------
//  Queues, workers, stats: views of STATS, every page of it

//  A queue as arb_json_queue shows it, with its finished tasks per second
//  over the last minute (the dashboard's rate).
static json_t *
s_queue_json (const arb_queue_info_t *queue)
{
    json_t *obj = arb_json_queue (queue);
    json_t *seconds = json_array ();
    for (size_t k = 0; k < queue->done_seconds.n; k++)
        json_array_append_new (seconds, json_integer ((json_int_t) queue->done_seconds.v[k]));
    json_object_set_new (obj, "done_per_second", seconds);
    return obj;
}

//  The parts of a STATS view.
enum {
    S_HEAD = 1,
    S_QUEUES = 2,
    S_WORKERS = 4
};

//  STATS as arb_json_stats shows it (the parts asked), as text written a
//  queue and a worker at a time: a tree of 40,000 queues took 17 times
//  its text in memory while built. NULL if it could not be written.
static char *
s_stats_text (const arb_stats_reply_body_t *body, unsigned parts, size_t *size)
{
    char *text = NULL;
    FILE *out = open_memstream (&text, size);
    if (!out)
        return NULL;
    const char *sep = "";
    fputc ('{', out);
    if (parts & S_HEAD) {
        json_t *head = json_object (), *value;
        arb_json_time (head, "now", body->now_ms);
        json_object_set_new (head, "uptime_ms", json_integer ((json_int_t) body->uptime_ms));
        const char *key;
        json_object_foreach (head, key, value)
        {
            fprintf (out, "%s\"%s\":", sep, key);  //  our own keys: nothing to escape
            json_dumpf (value, out, JSON_COMPACT | JSON_ENCODE_ANY);
            sep = ",";
        }
        json_decref (head);
    }
    if (parts & S_QUEUES) {
        fprintf (out, "%s\"queues\":[", sep);
        for (size_t i = 0; i < body->queues.n; i++) {
            json_t *queue = s_queue_json (&body->queues.v[i]);
            fputs (i ? "," : "", out);
            json_dumpf (queue, out, JSON_COMPACT);
            json_decref (queue);
        }
        fputc (']', out);
        sep = ",";
    }
    if (parts & S_WORKERS) {
        fprintf (out, "%s\"workers\":[", sep);
        for (size_t i = 0; i < body->workers.n; i++) {
            json_t *worker = arb_json_worker (&body->workers.v[i], body->now_ms);
            fputs (i ? "," : "", out);
            json_dumpf (worker, out, JSON_COMPACT);
            json_decref (worker);
        }
        fputc (']', out);
    }
    fputc ('}', out);
    bool failed = ferror (out);
    if (fclose (out) || failed) {
        free (text);
        return NULL;
    }
    return text;
}

//  Answers a view of STATS (its parts), or the failure.
static void
s_answer_stats (
    arb_http_req_t *req, arb_stats_reply_body_t *body, int code, const char *reason, unsigned parts)
{
    if (!body) {
        arb_http_reply_refusal (req, code, reason, "stats");
        return;
    }
    size_t size = 0;
    char *text = s_stats_text (body, parts, &size);
    arb_http_reply_json_text (req, MHD_HTTP_OK, text, size);
}

static void
s_on_queues (
    arb_http_req_t *req, arb_stats_reply_body_t *body, int code, const char *reason, void *arg)
{
    (void) arg;
    s_answer_stats (req, body, code, reason, S_QUEUES);
}

static void
s_on_workers (
    arb_http_req_t *req, arb_stats_reply_body_t *body, int code, const char *reason, void *arg)
{
    (void) arg;
    s_answer_stats (req, body, code, reason, S_WORKERS);
}

static void
s_on_stats (
    arb_http_req_t *req, arb_stats_reply_body_t *body, int code, const char *reason, void *arg)
{
    (void) arg;
    s_answer_stats (req, body, code, reason, S_HEAD | S_QUEUES | S_WORKERS);
}

//  STATS of the one queue: its record, if the broker knows it.
static void
s_on_queue (
    arb_http_req_t *req, arb_stats_reply_body_t *body, int code, const char *reason, void *arg)
{
    (void) arg;
    if (!body) {
        arb_http_reply_refusal (req, code, reason, "stats");
        return;
    }
    const char *name = arb_http_req_segment (req, 3);
    json_t *found = NULL;
    for (size_t i = 0; i < body->queues.n && !found; i++)
        if (streq (body->queues.v[i].name, name))
            found = s_queue_json (&body->queues.v[i]);
    if (found)
        arb_http_reply_json (req, MHD_HTTP_OK, &found);
    else
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND,
                              "no queue '%.64s' (a queue that is not declared and holds no tasks "
                              "is not kept)",
                              name);
}

//  A route that shows a view of STATS: arg is its answer function.
typedef struct {
    arb_http_stats_fn *fn;
    bool one;  //  the queue in path segment 3 alone
} s_view_t;

static void
s_stats_view (arb_http_req_t *req, void *arg)
{
    const s_view_t *view = (const s_view_t *) arg;
    const char *queue = NULL;
    if (view->one && !(queue = s_queue_name (req)))
        return;
    arb_http_stats (req, queue, view->fn, NULL);
}

//  The answer to a QUEUE op: {"queue", "op", "count"}; a declare that
//  made the queue known is 201.
static void
s_on_queue_op (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    const char *op = (const char *) arg;
    if (s_refused (req, reply, op))
        return;
    uint64_t count = arb_msg_ok (reply)->count;
    json_t *obj = json_object ();
    json_object_set_new (obj, "queue", json_string (arb_http_req_segment (req, 3)));
    json_object_set_new (obj, "op", json_string (op));
    json_object_set_new (obj, "count", json_integer ((json_int_t) count));
    arb_http_reply_json (req, streq (op, "declare") && count ? MHD_HTTP_CREATED : MHD_HTTP_OK,
                         &obj);
}

//  Sends QUEUE op for the queue of path segment 3.
static void
s_queue_send (arb_http_req_t *req, const char *op)
{
    const char *queue = s_queue_name (req);
    if (!queue)
        return;
    arb_msg_t *request = s_request (req, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, queue);
    arb_msg_queue (request)->op = op;
    arb_http_send (req, &request, s_on_queue_op, (void *) op);
}

//  POST /api/v1/queues/NAME declares the queue (listed while empty, until
//  it is deleted); DELETE deletes it (its tasks cancelled, running ones
//  too, its settings and metadata gone); POST /api/v1/queues/NAME/OP
//  pauses, resumes or purges it (a route each, so that another OP is no
//  path). arg: the op.
static void
s_queue_op (arb_http_req_t *req, void *arg)
{
    s_queue_send (req, (const char *) arg);
}

//  ---------------------------------------------------------------------
//  Flows: every task of a DAG, group or pipe, page after page

typedef struct {
    arb_flow_kind_t kind;  //  what the path asked for
    uint64_t flow;
    json_t *tasks;   //  owned: gathered so far
    json_t *counts;  //  owned: by state
    char *name;      //  owned: the flow's name, or NULL
} s_flow_t;

static void
s_flow_destroy (void *arg)
{
    s_flow_t *flow = (s_flow_t *) arg;
    json_decref (flow->tasks);
    json_decref (flow->counts);
    free (flow->name);
    free (flow);
}

static void s_flow_page (arb_http_req_t *req, s_flow_t *flow, uint64_t after);

static const char *
s_flow_word (arb_flow_kind_t kind)
{
    return kind == ARB_FLOW_DAG ? "dag" : kind == ARB_FLOW_GROUP ? "group" : "pipe";
}

static void
s_flow_answer (arb_http_req_t *req, s_flow_t *flow)
{
    const char *word = s_flow_word (flow->kind);
    json_t *obj = json_object ();
    json_object_set_new (obj, "flow", json_integer ((json_int_t) flow->flow));
    json_object_set_new (obj, "kind", json_string (word));
    arb_json_str (obj, "name", flow->name);
    json_object_set_new (obj, "total", json_integer ((json_int_t) json_array_size (flow->tasks)));
    json_object_set_new (obj, "counts", json_incref (flow->counts));
    json_object_set_new (obj, "tasks", json_incref (flow->tasks));
    arb_http_reply_json (req, MHD_HTTP_OK, &obj);
}

static void
s_on_flow_page (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    s_flow_t *flow = (s_flow_t *) arb_http_req_data (req);
    if (s_refused (req, reply, "list"))
        return;
    arb_list_reply_body_t *body = arb_msg_list_reply (reply);
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_task_info_t *task = &body->tasks.v[i];
        if (task->origin)
            continue;  //  an endpoint's copy, not a step of the flow
        if (json_array_size (flow->tasks) == 0 && task->flow_kind != (uint32_t) flow->kind) {
            arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "flow %" PRIu64 " is not a %s",
                                  flow->flow, s_flow_word (flow->kind));
            return;
        }
        if (!flow->name && task->flow_name)
            flow->name = strdup (task->flow_name);
        const char *state = arb_state_name ((int) task->state);
        json_object_set_new (
            flow->counts, state,
            json_integer (json_integer_value (json_object_get (flow->counts, state)) + 1));
        json_array_append_new (flow->tasks, arb_json_task (task, false));
    }
    if (body->more && body->tasks.n)
        s_flow_page (req, flow, body->tasks.v[body->tasks.n - 1].id);
    else if (json_array_size (flow->tasks) == 0)
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no %s %" PRIu64, s_flow_word (flow->kind),
                              flow->flow);
    else
        s_flow_answer (req, flow);
}

static void
s_flow_page (arb_http_req_t *req, s_flow_t *flow, uint64_t after)
{
    arb_msg_t *request = s_request (req, ARB_MSG_LIST);
    arb_list_body_t *body = arb_msg_list (request);
    body->flow = flow->flow;
    body->after_id = after;
    body->limit = ARB_ADMIN_PAGE_MAX;
    arb_http_send (req, &request, s_on_flow_page, NULL);
}

static void
s_flow (arb_http_req_t *req, arb_flow_kind_t kind)
{
    uint64_t id = s_path_id (req, 3, "flow");
    if (!id)
        return;
    s_flow_t *flow = (s_flow_t *) zmalloc (sizeof (s_flow_t));
    flow->kind = kind;
    flow->flow = id;
    flow->tasks = json_array ();
    flow->counts = json_object ();
    arb_http_req_set_data (req, flow, s_flow_destroy);
    s_flow_page (req, flow, 0);
}

static void
s_dag (arb_http_req_t *req, void *arg)
{
    (void) arg;
    s_flow (req, ARB_FLOW_DAG);
}

static void
s_group (arb_http_req_t *req, void *arg)
{
    (void) arg;
    s_flow (req, ARB_FLOW_GROUP);
}

static void
s_pipe (arb_http_req_t *req, void *arg)
{
    (void) arg;
    s_flow (req, ARB_FLOW_PIPE);
}

//  ---------------------------------------------------------------------
//  Limits: LIMITS, every page of it

static void s_limits_send (arb_http_req_t *req, const char *after);

//  A page of LIMITS_REPLY into the answer ({"limits": [...]}, the request's
//  data), then the next page, or the answer.
static void
s_on_limits (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (s_refused (req, reply, "limits"))
        return;
    arb_limits_reply_body_t *body = arb_msg_limits_reply (reply);
    json_t *list = json_object_get ((json_t *) arb_http_req_data (req), "limits");
    for (size_t i = 0; i < body->limits.n; i++) {
        arb_limit_info_t *info = &body->limits.v[i];
        json_t *obj = json_object ();
        arb_json_str (obj, "name", info->name);
        json_object_set_new (obj, "max_running", json_integer (info->max_running));
        json_object_set_new (obj, "rate_per_sec", json_integer (info->rate_per_sec));
        json_object_set_new (obj, "running", json_integer (info->running));
        json_array_append_new (list, obj);
    }
    if (body->more && body->limits.n) {
        s_limits_send (req, body->limits.v[body->limits.n - 1].name);
        return;
    }
    json_t *answer = json_incref ((json_t *) arb_http_req_data (req));
    arb_http_reply_json (req, MHD_HTTP_OK, &answer);
}

static void
s_limits_send (arb_http_req_t *req, const char *after)
{
    arb_msg_t *request = s_request (req, ARB_MSG_LIMITS);
    arb_msg_limits (request)->after = after ? arb_msg_strdup (request, after) : NULL;
    arb_http_send (req, &request, s_on_limits, NULL);
}

static void
s_json_free (void *json)
{
    json_decref ((json_t *) json);
}

//  GET /api/v1/limits: the task names that have limits (arbiter limit).
static void
s_limits (arb_http_req_t *req, void *arg)
{
    (void) arg;
    json_t *answer = json_object ();
    json_object_set_new (answer, "limits", json_array ());
    arb_http_req_set_data (req, answer, s_json_free);
    s_limits_send (req, NULL);
}

//  ---------------------------------------------------------------------

int
arb_admin_serve (arb_http_t *http)
{
    const unsigned flags = ARB_HTTP_AUTH | ARB_HTTP_BROKER;
    static const s_view_t queues = {s_on_queues, false}, queue = {s_on_queue, true},
                          workers = {s_on_workers, false}, stats = {s_on_stats, false};
    const struct {
        const char *method, *pattern;
        arb_http_handler_fn *fn;
        const void *arg;  //  a view of STATS, a QUEUE op, or NULL
    } routes[] = {
        {"GET", "/api/v1/tasks", s_list, NULL},
        {"GET", "/api/v1/tasks/{}", s_task, NULL},
        {"DELETE", "/api/v1/tasks/{}", s_cancel, NULL},
        {"POST", "/api/v1/tasks/{}/retry", s_retry, NULL},
        {"GET", "/api/v1/queues", s_stats_view, &queues},
        {"GET", "/api/v1/queues/{}", s_stats_view, &queue},
        {"POST", "/api/v1/queues/{}", s_queue_op, "declare"},
        {"DELETE", "/api/v1/queues/{}", s_queue_op, "delete"},
        {"POST", "/api/v1/queues/{}/pause", s_queue_op, "pause"},
        {"POST", "/api/v1/queues/{}/resume", s_queue_op, "resume"},
        {"POST", "/api/v1/queues/{}/purge", s_queue_op, "purge"},
        {"GET", "/api/v1/workers", s_stats_view, &workers},
        {"GET", "/api/v1/limits", s_limits, NULL},
        {"GET", "/api/v1/stats", s_stats_view, &stats},
        {"GET", "/api/v1/dags/{}", s_dag, NULL},
        {"GET", "/api/v1/groups/{}", s_group, NULL},
        {"GET", "/api/v1/pipes/{}", s_pipe, NULL},
        {"GET", "/@amqp-tasks", s_amqp_list, NULL},
        {"GET", "/@amqp-tasks/{}", s_amqp_task, NULL},
        {"DELETE", "/@amqp-tasks/{}", s_amqp_cancel, NULL},
        {"GET", "/{}/{}/@amqp-tasks", s_amqp_list, NULL},
        {"GET", "/{}/{}/@amqp-tasks/{}", s_amqp_task, NULL},
        {"DELETE", "/{}/{}/@amqp-tasks/{}", s_amqp_cancel, NULL},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof (routes) / sizeof (routes[0]); i++)
        rc |= arb_http_route_query (http, routes[i].method, routes[i].pattern, flags,
                                    routes[i].fn == s_list ? ARB_ADMIN_LIST_ARGS : "", routes[i].fn,
                                    NULL, (void *) routes[i].arg);
    return rc ? -1 : 0;
}
