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

static void
s_post_destroy (void *post)
{
    arb_tasker_post_destroy ((arb_tasker_post_t **) &post);
}

static json_t *
s_endpoints_json (const arb_strs_t *endpoints)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < endpoints->n; i++)
        json_array_append_new (list, json_string (endpoints->v[i]));
    return list;
}

static void
s_on_created (
    arb_http_req_t *req, const arb_submitted_task_t *task, int code, const char *error, void *arg)
{
    (void) arg;
    arb_tasker_post_t *post = (arb_tasker_post_t *) arb_http_req_data (req);
    if (!task) {
        arb_http_reply_refusal (req, code, error, "submit");
        return;
    }
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) task->id));
    json_object_set_new (obj, "identifier", json_string (post->identifier));
    json_object_set_new (obj, "type", json_string (arb_http_req_segment (req, 0)));
    json_object_set_new (obj, "state", json_string (arb_state_name ((int) task->state)));
    json_object_set_new (obj, "existing", json_boolean (task->existing));
    json_object_set_new (obj, "payload",
                         post->payload ? json_incref (post->payload) : json_null ());
    json_object_set_new (obj, "endpoints", s_endpoints_json (&post->endpoints));
    arb_http_reply_json (req, task->existing ? MHD_HTTP_OK : MHD_HTTP_CREATED, &obj);
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
    arb_task_spec_t spec = {
        .queue = type,
        .name = type,
        .key = post->identifier,
        .endpoints = post->endpoints,
        //  an endpoint that is not connected now may still come in time;
        //  if it does not, its copy is missing and the task incomplete
        .allow_unknown = post->endpoints.n > 0,
    };
    arb_defaults_apply (self->defaults, type, type, &spec);
    if (post->payload) {
        char *text = json_dumps (post->payload, JSON_COMPACT | JSON_ENCODE_ANY);
        spec.payload = zframe_new (text, strlen (text));
        free (text);
    }
    arb_http_req_set_data (req, post, s_post_destroy);
    arb_http_submit (req, &spec, s_on_created, self);
}

//  ---------------------------------------------------------------------
//  GET /TYPE/ID

//  Whether an endpoint's copy reached it (a cancelled copy was missing).
static bool
s_received (uint32_t state)
{
    return state == ARB_STATE_RUNNING
           || (arb_state_is_final ((int) state) && state != ARB_STATE_CANCELLED);
}

//  pending: not every endpoint (or, without endpoints, no worker) has the
//  task yet; complete: all have; incomplete: one never got it in time.
static const char *
s_status (arb_task_info_t *task)
{
    if (!task->responses.n)
        return s_received (task->state)             ? "complete"
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

static void
s_on_status (arb_http_req_t *req, arb_msg_t *reply, void *arg)
{
    (void) arg;
    if (arb_msg_type (reply) == ARB_MSG_ERROR) {
        arb_http_reply_refusal (req, (int) arb_msg_error (reply)->code,
                                arb_msg_error (reply)->reason, "status");
        return;
    }
    arb_status_reply_body_t *body = arb_msg_status_reply (reply);
    arb_task_info_t *task = body->tasks.n ? &body->tasks.v[0] : NULL;
    const char *type = arb_http_req_segment (req, 0);
    if (!task || !task->found || !task->queue || !streq (task->queue, type) || task->origin) {
        arb_http_reply_error (req, MHD_HTTP_NOT_FOUND, "no task %.32s of type '%.64s'",
                              arb_http_req_segment (req, 1), type);
        return;
    }
    json_t *obj = arb_json_task (task, true);
    arb_json_str (obj, "identifier", task->key);
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
    arb_gateway_t *gateway = arb_http_req_gateway (req);
    arb_msg_t *request = arb_link_request_new (arb_gateway_link (gateway), ARB_MSG_STATUS);
    arb_status_body_t *body = arb_msg_status (request);
    body->ids.v = (uint64_t *) arb_msg_alloc (request, sizeof (uint64_t));
    body->ids.v[0] = id;
    body->ids.n = 1;
    arb_http_send (req, &request, s_on_status, self);
}

arb_tasker_t *
arb_tasker_new (arb_http_t *http, arb_defaults_t *defaults)
{
    arb_tasker_t *self = (arb_tasker_t *) zmalloc (sizeof (arb_tasker_t));
    self->defaults = defaults;
    unsigned flags = ARB_HTTP_BROKER;
    //  neither takes a query argument: one is refused, not ignored
    arb_http_route_query (http, "POST", "/{}", flags | ARB_HTTP_AUTH, "", s_post, self);
    arb_http_route_query (http, "GET", "/{}/{}", flags, "", s_get, self);
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
