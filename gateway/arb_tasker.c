/*  arb_tasker.c — tasker's REST API; see arb_tasker.h.
*/

#include "arb_tasker.h"
#include "arb_json.h"
#include "arb_route.h"

#include <microhttpd.h>

struct _arb_tasker_t {
    arb_defaults_t *defaults;  //  borrowed
};

//  ---------------------------------------------------------------------
//  POST /TYPE

//  How often a POST that waits for its endpoints asks how they stand (5 ms
//  after the first look, twice as long after each, up to 250 ms: endpoints
//  online have their copies within milliseconds, and a POST waiting on an
//  endpoint that is away costs four STATUS a second), and how long past
//  their window it waits at most (the broker marks a copy missing at the
//  window's end; this bounds the wait if its word is late).
#define ARB_TASKER_POLL_FIRST_MS 5
#define ARB_TASKER_POLL_MS       250
#define ARB_TASKER_SLACK_MS      2000

//  What a POST keeps with its request: its body, SUBMITTED's word on a
//  repeat until STATUS answers, and a POST that waits for its endpoints
//  (wait-for-endpoints), its timer.
typedef struct {
    arb_tasker_post_t *post;         //  owned
    arb_submitted_task_t submitted;  //  a repeat's id and state; a new task's while it waits
    uint64_t wait_ms;                //  the endpoints' window if the answer waits for them, or 0
    bool broadcast;                  //  to every worker on the queue: the broker names them
    arb_reactor_t *reactor;          //  borrowed: the timer's, or NULL if it never waited
    arb_timer_t timer;               //  the next look at the endpoints
    uint32_t poll_ms;                //  the wait before it
    uint64_t wait_until_ms;          //  monotonic ms: answered then, whatever they say
} s_post_t;

static void
s_post_destroy (void *arg)
{
    s_post_t *self = (s_post_t *) arg;
    //  a client gone while its POST waits: the timer goes with the request
    if (self->reactor)
        arb_reactor_disarm (self->reactor, &self->timer);
    arb_tasker_post_destroy (&self->post);
    free (self);
}

static json_t *
s_endpoints_json (const arb_strs_t *endpoints)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < endpoints->n; i++)
        json_array_append_new (list, json_string (endpoints->v[i]));
    return list;
}

//  The client key of an identifier under a type: "TYPE@IDENTIFIER" (into
//  key, ARB_NAME_MAX + 1 bytes). An identifier names a task within its
//  type, as tasker's tasks are each of one type: one identifier under two
//  types is two tasks. A type has no '@', so the first one ends it.
//  0, or -1 if the two are over ARB_NAME_MAX together.
static int
s_key (const char *type, const char *identifier, char *key, size_t size)
{
    int n = snprintf (key, size, "%s@%s", type, identifier);
    return n < 0 || (size_t) n > ARB_NAME_MAX ? -1 : 0;
}

//  The identifier in a client key of type: what follows "TYPE@"; a key
//  without it (a task not POSTed under this type) as it is.
static const char *
s_identifier (const char *type, const char *key)
{
    size_t len = strlen (type);
    if (key && strncmp (key, type, len) == 0 && key[len] == '@')
        return key + len + 1;
    return key;
}

//  Whether an endpoint's copy reached it (a cancelled copy was missing).
static bool
s_received (uint32_t state)
{
    return state == ARB_STATE_RUNNING
           || (arb_state_is_final ((int) state) && state != ARB_STATE_CANCELLED);
}

//  Whether a worker took a task without endpoints: a receipt is not
//  undone by a cancel while it runs, nor by a retry that puts it back.
static bool
s_taken (arb_task_info_t *task)
{
    return s_received (task->state) || (task->worker && task->started_ms);
}

//  pending: not every endpoint (or, without endpoints, no worker) has the
//  task yet; complete: all have; incomplete: one never got it in time.
static const char *
s_status (arb_task_info_t *task)
{
    if (!task->responses.n)
        return s_taken (task)                       ? "complete"
               : task->state == ARB_STATE_CANCELLED ? "incomplete"
                                                    : "pending";
    bool all = true;
    for (size_t i = 0; i < task->responses.n; i++) {
        uint32_t state = task->responses.v[i].state;
        if (state == ARB_STATE_CANCELLED)
            return "incomplete";
        all = all && s_received (state);
    }
    return all ? "complete" : "pending";
}

//  ---------------------------------------------------------------------
//  tasker's own shapes, beside ours: its POST answered the task as
//  {id, identifier, type, status, start_time, endpoints, payload}, its GET
//  {"task": that, "taskResponseList": [{id, task_id, endpoint, status,
//  errnr, errmsg, payload, start_time, last_modified_time}]}, so that a
//  program written for tasker reads what it read there.

//  A time as tasker wrote it (Python's str of a datetime), in UTC; null
//  for none.
static json_t *
s_tasker_time (uint64_t ms)
{
    if (!ms)
        return json_null ();
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char text[48];
    size_t n = strftime (text, sizeof (text), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf (text + n, sizeof (text) - n, ".%03u000", (unsigned) (ms % 1000));
    return json_string (text);
}

//  A result as tasker's response payload, or a task's payload as its
//  task's: its JSON value, or null if it is none or not JSON (as tasker
//  read it; a payload a POST stored is the JSON text of its "payload").
static json_t *
s_tasker_payload (const arb_bin_t *bytes)
{
    if (!bytes->size)
        return json_null ();
    json_t *value = json_loadb ((const char *) bytes->data, bytes->size,
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return value ? value : json_null ();
}

//  Asks the broker for the task of that id with its payload (with_payload):
//  tasker answered a task with the payload it was posted with. fn gets arg
//  true (asked with the payload); with_payload false asks as a broker
//  older than the field understands (s_is_old_broker). As arb_http_send.
static int
s_ask_task (arb_http_req_t *req, uint64_t id, bool with_payload, arb_http_answer_fn *fn)
{
    arb_msg_t *request =
        arb_link_request_new (arb_gateway_link (arb_http_req_gateway (req)), ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = (uint64_t *) arb_msg_alloc (request, sizeof (uint64_t));
    body->ids.v[0] = id;
    body->ids.n = 1;
    body->with_payload = with_payload;
    return arb_http_send (req, &request, fn, (void *) (uintptr_t) with_payload);
}

//  Whether a STATUS that asked for the payload was refused by a broker
//  that does not know the field yet (proto/PROTOCOL.md, Versioning): it
//  is asked again without it, and the payload shows as null.
static bool
s_is_old_broker (arb_msg_t *reply, void *asked)
{
    return asked && arb_msg_type (reply) == ARB_MSG_ERROR
           && arb_msg_error (reply)->code == ARB_ERR_BAD_REQUEST && arb_msg_error (reply)->reason
           && strstr (arb_msg_error (reply)->reason, "'with_payload'");
}

//  tasker's task status: SENT (not every endpoint received it), DONE, or
//  INCOMPLETE, from ours (pending, complete, incomplete).
static const char *
s_tasker_status (const char *status)
{
    return streq (status, "complete")     ? "DONE"
           : streq (status, "incomplete") ? "INCOMPLETE"
                                          : "SENT";
}

static json_t *
s_tasker_response (uint64_t id,
                   uint64_t task_id,
                   const char *endpoint,
                   uint32_t state,
                   const char *error,
                   const arb_bin_t *result,
                   uint64_t started_ms,
                   uint64_t finished_ms)
{
    bool failed = arb_state_is_final ((int) state) && state != ARB_STATE_SUCCEEDED;
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) id));
    json_object_set_new (obj, "task_id", json_integer ((json_int_t) task_id));
    arb_json_str (obj, "endpoint", endpoint);
    //  tasker's CREATED (0) until the endpoint finished (1)
    json_object_set_new (obj, "status", json_integer (arb_state_is_final ((int) state) ? 1 : 0));
    json_object_set_new (obj, "errnr", json_integer (failed ? 1 : 0));
    arb_json_str (obj, "errmsg", failed ? (error ? error : arb_state_name ((int) state)) : NULL);
    json_object_set_new (obj, "payload", s_tasker_payload (result));
    json_object_set_new (obj, "start_time", s_tasker_time (started_ms));
    json_object_set_new (obj, "last_modified_time", s_tasker_time (finished_ms));
    return obj;
}

//  The task's endpoints' responses as tasker listed them. Its endpoints
//  made their response on receiving the task, so only those that
//  received their copy are listed: one listed while it had not would
//  read as at work on it (status 0), and a missing one as having
//  answered. A task without endpoints lists the worker that took it.
static json_t *
s_tasker_responses (arb_task_info_t *task)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < task->responses.n; i++) {
        arb_response_info_t *r = &task->responses.v[i];
        if (!s_received (r->state))
            continue;
        json_array_append_new (list,
                               s_tasker_response (r->id, task->id, r->endpoint, r->state, r->error,
                                                  &r->result, task->created_ms, r->finished_ms));
    }
    if (!task->responses.n && s_taken (task) && task->worker)
        json_array_append_new (list, s_tasker_response (task->id, task->id, task->worker,
                                                        task->state, task->error, &task->result,
                                                        task->started_ms, task->finished_ms));
    return list;
}

//  The answer to a POST: {"id", "identifier", "type", "state",
//  "existing"} and what the caller adds.
static json_t *
s_post_json (arb_http_req_t *req, uint64_t id, uint32_t state, bool existing)
{
    s_post_t *post = (s_post_t *) arb_http_req_data (req);
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) id));
    json_object_set_new (obj, "identifier", json_string (post->post->identifier));
    json_object_set_new (obj, "type", json_string (arb_http_req_segment (req, 0)));
    json_object_set_new (obj, "state", json_string (arb_state_name ((int) state)));
    json_object_set_new (obj, "existing", json_boolean (existing));
    //  tasker's: the task went out (SENT); its own answer waited for the
    //  endpoints, this one does not: GET /TYPE/ID tells DONE or INCOMPLETE
    json_object_set_new (obj, "status", json_string ("SENT"));
    json_object_set_new (obj, "start_time", s_tasker_time ((uint64_t) zclock_time ()));
    return obj;
}

//  A repeat's answer: the stored task as STATUS shows it (its state now,
//  its endpoints, the payload it was stored with), not the request's
//  fields. If STATUS failed (no answer in time, the task gone), what
//  SUBMITTED said: its id and state, and a null payload. (A STATUS that
//  cannot even be sent is answered 503 by arb_http_send: the POST may be
//  sent again.)
static void
s_on_existing (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    const arb_submitted_task_t *submitted = &((s_post_t *) arb_http_req_data (req))->submitted;
    if (s_is_old_broker (reply, arg)) {
        s_ask_task (req, submitted->id, false, s_on_existing);
        return;
    }
    arb_task_info_t *task = arb_http_found_task (reply);
    json_t *obj = s_post_json (req, submitted->id, task ? task->state : submitted->state, true);
    json_object_set_new (obj, "payload", task ? s_tasker_payload (&task->payload) : json_null ());
    if (task) {
        json_t *endpoints = json_array ();
        for (size_t i = 0; i < task->responses.n; i++)
            json_array_append_new (endpoints, json_string (task->responses.v[i].endpoint));
        json_object_set_new (obj, "endpoints", endpoints);
        json_object_set_new (obj, "status", json_string (s_tasker_status (s_status (task))));
        json_object_set_new (obj, "start_time", s_tasker_time (task->created_ms));
    }
    arb_http_reply_json (req, MHD_HTTP_OK, &obj);
}

//  A new task's answer (201): tasker's status SENT, or, for a POST that
//  waited for its endpoints, what they came to (DONE, INCOMPLETE; SENT if
//  the broker could not say in time). Its endpoints: the POST's, or a
//  broadcast's as the broker named them (task: its STATUS, or NULL).
static void
s_answer_created (arb_http_req_t *req,
                  uint32_t state,
                  const char *status,
                  const arb_task_info_t *task)
{
    s_post_t *post = (s_post_t *) arb_http_req_data (req);
    json_t *obj = s_post_json (req, post->submitted.id, state, false);
    if (status)
        json_object_set_new (obj, "status", json_string (s_tasker_status (status)));
    json_object_set_new (obj, "payload",
                         post->post->payload ? json_incref (post->post->payload) : json_null ());
    json_t *endpoints = s_endpoints_json (&post->post->endpoints);
    if (!post->post->endpoints.n && task)
        for (size_t i = 0; i < task->responses.n; i++)
            json_array_append_new (endpoints, json_string (task->responses.v[i].endpoint));
    json_object_set_new (obj, "endpoints", endpoints);
    arb_http_reply_json (req, MHD_HTTP_CREATED, &obj);
}

//  A broadcast's STATUS: its endpoints, as the broker named them.
static void
s_on_broadcast (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    s_post_t *post = (s_post_t *) arb_http_req_data (req);
    arb_task_info_t *task = arb_http_found_task (reply);
    s_answer_created (req, post->submitted.state, NULL, task);
}

static void s_on_waited (arb_http_req_t *req, arb_msg_t *reply, void *arg);

//  Asks how the endpoints of a created task stand; with the broker away,
//  answers the POST at once (201, SENT), not 503 as arb_http_send would:
//  the task is stored.
static void
s_ask_endpoints (arb_http_req_t *req)
{
    s_post_t *post = (s_post_t *) arb_http_req_data (req);
    if (arb_gateway_is_open (arb_http_req_gateway (req)))
        arb_http_send_one (req, post->submitted.id, ARB_MSG_STATUS, s_on_waited, NULL);
    else
        s_answer_created (req, post->submitted.state, NULL, NULL);
}

static void
s_look_again (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_ask_endpoints ((arb_http_req_t *) arg);
}

//  How the endpoints stand: answered once none is pending (or the wait's
//  bound has passed), else asked again, a little later each time.
static void
s_on_waited (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    s_post_t *post = (s_post_t *) arb_http_req_data (req);
    arb_task_info_t *task = arb_http_found_task (reply);
    const char *status = task ? s_status (task) : NULL;
    if (!status || !streq (status, "pending")
        || arb_reactor_now (post->reactor) >= post->wait_until_ms) {
        s_answer_created (req, task ? task->state : post->submitted.state, status, task);
        return;
    }
    arb_reactor_arm (post->reactor, &post->timer, post->poll_ms, s_look_again, req);
    post->poll_ms = post->poll_ms * 2 < ARB_TASKER_POLL_MS ? post->poll_ms * 2 : ARB_TASKER_POLL_MS;
}

static void
s_on_created (
    arb_http_req_t *req, const arb_submitted_task_t *task, int code, const char *error, void *arg)
{
    (void) arg;
    s_post_t *post = (s_post_t *) arb_http_req_data (req);
    if (!task) {
        arb_http_reply_refusal (req, code, error, "submit");
        return;
    }
    post->submitted = *task;
    if (task->existing) {
        s_ask_task (req, task->id, true, s_on_existing);
        return;
    }
    if (!post->wait_ms && post->broadcast && arb_gateway_is_open (arb_http_req_gateway (req))) {
        //  the broker named the endpoints: one STATUS says which (the
        //  task is stored; its state in the answer is the one it was
        //  stored in)
        arb_http_send_one (req, task->id, ARB_MSG_STATUS, s_on_broadcast, NULL);
        return;
    }
    if (!post->wait_ms) {
        s_answer_created (req, task->state, NULL, NULL);
        return;
    }
    //  tasker's POST: answered once every endpoint has its copy, or one is
    //  missing (the broker says so at the end of the endpoints' window)
    post->reactor = arb_gateway_reactor (arb_http_req_gateway (req));
    post->wait_until_ms = arb_reactor_now (post->reactor) + post->wait_ms + ARB_TASKER_SLACK_MS;
    post->poll_ms = ARB_TASKER_POLL_FIRST_MS;
    s_ask_endpoints (req);
}

//  The type of the request's path, or NULL after answering 404.
static const char *
s_type (arb_tasker_t *self, arb_http_req_t *req)
{
    const char *type = arb_http_req_segment (req, 0);
    if (!arb_tasker_is_type_name (type) || !arb_defaults_has_type (self->defaults, type)) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "'%.64s' is not a task type", type);
        return NULL;
    }
    return type;
}

static void
s_post (arb_http_req_t *req, void *arg)
{
    arb_tasker_t *self = (arb_tasker_t *) arg;
    const char *type = s_type (self, req);
    if (!type)
        return;
    size_t size;
    const char *body = arb_http_req_body (req, &size);
    char why[ARB_TEXT_MAX];
    arb_tasker_post_t *post = arb_tasker_parse (body, size, why, sizeof (why));
    if (!post) {
        arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    char key[ARB_NAME_MAX + 1];
    if (s_key (type, post->identifier, key, sizeof (key))) {
        //  TYPE@ and at least one byte of identifier
        size_t room = ARB_NAME_MAX - 1 > strlen (type) ? ARB_NAME_MAX - 1 - strlen (type) : 0;
        if (!room)
            arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST,
                                  "type '%.64s...' is %zu bytes: it leaves no room for an "
                                  "identifier in the task's key (TYPE@IDENTIFIER, %d bytes at "
                                  "most): a type that takes POSTs has %d bytes at most",
                                  type, strlen (type), ARB_NAME_MAX, ARB_NAME_MAX - 2);
        else
            arb_http_reply_error (req, MHD_HTTP_BAD_REQUEST,
                                  "identifier: %zu bytes, over the %zu of type '%.64s' (the "
                                  "task's key, TYPE@IDENTIFIER, is %d bytes at most)",
                                  strlen (post->identifier), room, type, ARB_NAME_MAX);
        arb_tasker_post_destroy (&post);
        return;
    }
    arb_task_spec_t spec = {
        .queue = type,
        .name = type,
        .key = key,
        .endpoints = post->endpoints,
        //  an endpoint that is not connected now may still come in time;
        //  if it does not, its copy is missing and the task incomplete
        .allow_unknown = post->endpoints.n > 0,
    };
    arb_defaults_apply (self->defaults, type, type, &spec);
    //  tasker's publish/subscribe: every worker connected on the queue
    //  (the type's broadcast = yes, or the POST's own "broadcast")
    spec.broadcast = post->has_broadcast
                         ? post->broadcast
                         : !post->endpoints.n && arb_defaults_broadcast (self->defaults, type);
    if (post->payload) {
        char *text = json_dumps (post->payload, JSON_COMPACT | JSON_ENCODE_ANY);
        spec.payload = zframe_new (text, strlen (text));
        free (text);
    }
    s_post_t *data = (s_post_t *) zmalloc (sizeof (s_post_t));
    data->post = post;
    data->broadcast = spec.broadcast;
    if (arb_defaults_wait (self->defaults, type) && (spec.endpoints.n || spec.broadcast))
        data->wait_ms =
            spec.endpoint_timeout_ms ? spec.endpoint_timeout_ms : ARB_ENDPOINT_TIMEOUT_DEFAULT_MS;
    arb_http_req_set_data (req, data, s_post_destroy);
    arb_http_submit (req, &spec, s_on_created, self);
}

//  ---------------------------------------------------------------------
//  GET /TYPE/ID

static void
s_on_status (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    uint64_t id;
    if (s_is_old_broker (reply, arg) && !arb_route_id (arb_http_req_segment (req, 1), &id)) {
        s_ask_task (req, id, false, s_on_status);
        return;
    }
    if (arb_msg_type (reply) == ARB_MSG_ERROR) {
        arb_http_reply_refusal (req, (int) arb_msg_error (reply)->code,
                                arb_msg_error (reply)->reason, "status");
        return;
    }
    arb_task_info_t *task = arb_http_found_task (reply);
    const char *type = arb_http_req_segment (req, 0);
    if (!task || !task->queue || !streq (task->queue, type) || task->origin) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no task %.32s of type '%.64s'",
                              arb_http_req_segment (req, 1), type);
        return;
    }
    json_t *obj = arb_json_task (task, true);
    arb_json_str (obj, "identifier", s_identifier (type, task->key));
    json_object_set_new (obj, "type", json_string (type));
    json_object_set_new (obj, "status", json_string (s_status (task)));
    json_t *endpoints = json_array ();
    json_t *responses = json_object_get (obj, "responses");
    for (size_t i = 0; i < task->responses.n; i++) {
        arb_response_info_t *response = &task->responses.v[i];
        json_array_append_new (endpoints, json_string (response->endpoint));
        json_object_set_new (json_array_get (responses, i), "received",
                             json_boolean (s_received (response->state)));
    }
    json_object_set_new (obj, "endpoints", endpoints);
    json_t *tasker = json_object ();
    json_object_set_new (tasker, "id", json_integer ((json_int_t) task->id));
    arb_json_str (tasker, "identifier", s_identifier (type, task->key));
    json_object_set_new (tasker, "type", json_string (type));
    json_object_set_new (tasker, "status", json_string (s_tasker_status (s_status (task))));
    json_object_set_new (tasker, "start_time", s_tasker_time (task->created_ms));
    json_object_set_new (tasker, "endpoints", json_deep_copy (endpoints));
    json_object_set_new (tasker, "payload", s_tasker_payload (&task->payload));
    json_object_set_new (obj, "task", tasker);
    json_object_set_new (obj, "taskResponseList", s_tasker_responses (task));
    arb_http_reply_json (req, MHD_HTTP_OK, &obj);
}

static void
s_get (arb_http_req_t *req, void *arg)
{
    arb_tasker_t *self = (arb_tasker_t *) arg;
    if (!s_type (self, req))
        return;
    uint64_t id;
    if (arb_route_id (arb_http_req_segment (req, 1), &id)) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "'%.32s' is not a task id",
                              arb_http_req_segment (req, 1));
        return;
    }
    s_ask_task (req, id, true, s_on_status);
}

//  The routes serve the task types: a 405 offers POST /NAME or GET
//  /NAME/ID only where NAME is one.
static bool
s_claims (const arb_route_path_t *path, void *arg)
{
    arb_tasker_t *self = (arb_tasker_t *) arg;
    return path->n && arb_tasker_is_type_name (path->v[0])
           && arb_defaults_has_type (self->defaults, path->v[0]);
}

arb_tasker_t *
arb_tasker_new (arb_http_t *http, arb_defaults_t *defaults)
{
    arb_tasker_t *self = (arb_tasker_t *) zmalloc (sizeof (arb_tasker_t));
    self->defaults = defaults;
    unsigned flags = ARB_HTTP_BROKER;
    //  neither takes a query argument: one is refused, not ignored
    arb_http_route_query (http, "POST", "/{}", flags | ARB_HTTP_AUTH | ARB_HTTP_BODY, "", s_post,
                          s_claims, self);
    arb_http_route_query (http, "GET", "/{}/{}", flags, "", s_get, s_claims, self);
    return self;
}

void
arb_tasker_destroy (arb_tasker_t **self_p)
{
    arb_tasker_t *self = *self_p;
    if (!self)
        return;
    free (self);
    *self_p = NULL;
}
