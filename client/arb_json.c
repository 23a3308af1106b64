/*  arb_json.c — arbiter's records as JSON; see arb_json.h.
*/

#include "arb_json.h"
#include "arb_cli_text.h"

void
arb_json_time (json_t *obj, const char *key, uint64_t ms)
{
    char name[64], text[40];
    snprintf (name, sizeof (name), "%s_ms", key);
    if (ms == 0) {
        json_object_set_new (obj, name, json_null ());
        json_object_set_new (obj, key, json_null ());
        return;
    }
    arb_cli_format_time (ms, text, sizeof (text));
    json_object_set_new (obj, name, json_integer ((json_int_t) ms));
    json_object_set_new (obj, key, json_string (text));
}

void
arb_json_bytes (json_t *obj, const char *key, const uint8_t *data, size_t size)
{
    if (arb_cli_is_utf8 (data, size)) {
        //  empty bytes may come as NULL, which json_stringn refuses
        json_object_set_new (obj, key, json_stringn (size ? (const char *) data : "", size));
        return;
    }
    char name[64];
    snprintf (name, sizeof (name), "%s_base64", key);
    char *base64 = arb_cli_base64 (data, size);
    json_object_set_new (obj, name, json_string (base64));
    free (base64);
}

void
arb_json_str (json_t *obj, const char *key, const char *value)
{
    if (!value) {
        json_object_set_new (obj, key, json_null ());
        return;
    }
    //  the wire does not promise UTF-8: escape what jansson would refuse
    json_t *string = json_string (value);
    if (!string) {
        char *escaped = arb_cli_escape_str (value);
        string = json_string (escaped);
        free (escaped);
    }
    json_object_set_new (obj, key, string);
}

//  ---------------------------------------------------------------------
//  Tasks

static json_t *
s_attempt_json (const arb_attempt_info_t *attempt)
{
    json_t *obj = json_object ();
    json_object_set_new (obj, "attempt", json_integer (attempt->attempt));
    arb_json_time (obj, "started", attempt->started_ms);
    arb_json_time (obj, "ended", attempt->ended_ms);
    arb_json_str (obj, "worker", attempt->worker);
    json_object_set_new (obj, "outcome", json_string (arb_cli_outcome_name (attempt->outcome)));
    arb_json_str (obj, "error", attempt->error);
    return obj;
}

json_t *
arb_json_response (const arb_response_info_t *response)
{
    json_t *obj = json_object ();
    arb_json_str (obj, "endpoint", response->endpoint);
    json_object_set_new (obj, "id", json_integer ((json_int_t) response->id));
    json_object_set_new (obj, "state", json_string (arb_state_name ((int) response->state)));
    arb_json_time (obj, "finished", response->finished_ms);
    if (response->state == ARB_STATE_SUCCEEDED)
        arb_json_bytes (obj, "result", response->result.data, response->result.size);
    else
        json_object_set_new (obj, "result", json_null ());
    arb_json_str (obj, "error", response->error);
    return obj;
}

//  An id member, or null for 0.
static void
s_json_id (json_t *obj, const char *key, uint64_t id)
{
    json_object_set_new (obj, key, id ? json_integer ((json_int_t) id) : json_null ());
}

json_t *
arb_json_task (const arb_task_info_t *task, bool full)
{
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) task->id));
    json_object_set_new (obj, "state", json_string (arb_state_name ((int) task->state)));
    arb_json_str (obj, "queue", task->queue);
    arb_json_str (obj, "name", task->name);
    arb_json_str (obj, "key", task->key);
    json_object_set_new (obj, "priority", json_integer (task->priority));
    json_object_set_new (obj, "attempts", json_integer (task->attempts));
    json_object_set_new (obj, "max_attempts", json_integer (task->max_attempts));
    json_object_set_new (obj, "lost", json_integer (task->lost));
    arb_json_time (obj, "created", task->created_ms);
    arb_json_time (obj, "not_before", task->not_before_ms);
    arb_json_time (obj, "started", task->started_ms);
    arb_json_time (obj, "finished", task->finished_ms);
    json_object_set_new (obj, "timeout_ms", json_integer ((json_int_t) task->timeout_ms));
    json_object_set_new (obj, "soft_timeout_ms", json_integer ((json_int_t) task->soft_timeout_ms));
    json_object_set_new (obj, "no_handler", json_boolean (task->no_handler));
    arb_json_str (obj, "worker", task->worker);
    arb_json_str (obj, "error", task->error);
    //  where it belongs: its flow and name there, or the fan-out task it copies
    static const char *kinds[] = {NULL, "dag", "group", "pipe"};
    s_json_id (obj, "flow", task->flow);
    arb_json_str (obj, "flow_kind", task->flow_kind < 4 ? kinds[task->flow_kind] : NULL);
    arb_json_str (obj, "flow_name", task->flow_name);
    arb_json_str (obj, "ref", task->ref);
    s_json_id (obj, "origin", task->origin);
    arb_json_str (obj, "endpoint", task->endpoint);
    //  its dependencies, named as in a flow file
    static const char *whens[] = {"on_success", "on_failure", "always"};
    json_t *parents = json_array ();
    for (size_t i = 0; i < task->parents.n; i++) {
        arb_dep_t *dep = &task->parents.v[i];
        json_t *parent = json_object ();
        json_object_set_new (parent, "id", json_integer ((json_int_t) dep->id));
        arb_json_str (parent, "ref", dep->ref);
        json_object_set_new (parent, "when", json_string (dep->when < 3 ? whens[dep->when] : "?"));
        json_array_append_new (parents, parent);
    }
    json_object_set_new (obj, "parents", parents);
    if (!full)
        return obj;
    if (task->state == ARB_STATE_SUCCEEDED)
        arb_json_bytes (obj, "result", task->result.data, task->result.size);
    else
        json_object_set_new (obj, "result", json_null ());
    json_t *history = json_array ();
    for (size_t i = 0; i < task->history.n; i++)
        json_array_append_new (history, s_attempt_json (&task->history.v[i]));
    json_object_set_new (obj, "history", history);
    json_object_set_new (obj, "history_dropped", json_integer (task->history_dropped));
    json_t *responses = json_array ();
    for (size_t i = 0; i < task->responses.n; i++)
        json_array_append_new (responses, arb_json_response (&task->responses.v[i]));
    json_object_set_new (obj, "responses", responses);
    return obj;
}

json_t *
arb_json_outcome (const arb_outcome_info_t *outcome)
{
    json_t *obj = json_object ();
    json_object_set_new (obj, "id", json_integer ((json_int_t) outcome->id));
    json_object_set_new (obj, "code", json_integer (outcome->code));
    json_object_set_new (obj, "state",
                         outcome->state ? json_string (arb_state_name ((int) outcome->state))
                                        : json_null ());
    return obj;
}

//  ---------------------------------------------------------------------
//  Queues and workers

json_t *
arb_json_queue (const arb_queue_info_t *queue)
{
    json_t *obj = json_object ();
    arb_json_str (obj, "name", queue->name);
    json_t *counts = json_object ();
    for (size_t state = 1; state <= ARB_STATE_MAX; state++)
        if (arb_state_is_resting ((int) state))
            json_object_set_new (
                counts, arb_state_name ((int) state),
                json_integer (state < queue->counts.n ? (json_int_t) queue->counts.v[state] : 0));
    json_object_set_new (obj, "counts", counts);
    json_object_set_new (obj, "done_last_minute",
                         json_integer ((json_int_t) queue->done_last_minute));
    json_object_set_new (obj, "oldest_ready_age_ms",
                         json_integer ((json_int_t) queue->oldest_ready_ms));
    json_object_set_new (obj, "ready_bytes", json_integer ((json_int_t) queue->ready_bytes));
    json_object_set_new (obj, "dropped", json_integer ((json_int_t) queue->dropped));
    json_object_set_new (obj, "paused", json_boolean (queue->paused));
    json_object_set_new (obj, "declared", json_boolean (queue->declared));
    json_object_set_new (obj, "consumers", json_integer (queue->consumers));
    json_t *settings = json_object ();
    if (queue->max_running)
        json_object_set_new (settings, "max_running", json_integer (queue->max_running));
    if (queue->rate_per_sec)
        json_object_set_new (settings, "rate_per_sec", json_integer (queue->rate_per_sec));
    if (queue->retention_ms)
        json_object_set_new (settings, "retention_ms",
                             json_integer ((json_int_t) queue->retention_ms));
    if (queue->on_failure)
        json_object_set_new (settings, "on_failure", json_string (queue->on_failure));
    if (queue->max_ready)
        json_object_set_new (settings, "max_ready", json_integer ((json_int_t) queue->max_ready));
    if (queue->max_ready_bytes)
        json_object_set_new (settings, "max_ready_bytes",
                             json_integer ((json_int_t) queue->max_ready_bytes));
    if (queue->overflow)
        json_object_set_new (settings, "overflow", json_string (queue->overflow));
    json_object_set_new (obj, "settings", settings);
    return obj;
}

json_t *
arb_json_worker (const arb_worker_stats_t *worker, uint64_t now_ms)
{
    //  last_seen_ms is the broker's wall-clock time of the last message
    uint64_t then = worker->last_seen_ms;
    json_t *obj = json_object ();
    arb_json_str (obj, "name", worker->name);
    arb_json_str (obj, "identity", worker->identity);
    json_object_set_new (obj, "slots", json_integer (worker->slots));
    json_object_set_new (obj, "busy", json_integer (worker->busy));
    json_object_set_new (obj, "credit", json_integer (worker->credit));
    json_object_set_new (obj, "last_seen_age_ms",
                         json_integer (then && now_ms > then ? (json_int_t) (now_ms - then) : 0));
    json_t *queues = json_array ();
    for (size_t i = 0; i < worker->queues.n; i++)
        json_array_append_new (queues, json_string (worker->queues.v[i]));
    json_object_set_new (obj, "queues", queues);
    return obj;
}

json_t *
arb_json_stats (const arb_stats_reply_body_t *body)
{
    json_t *obj = json_object ();
    arb_json_time (obj, "now", body->now_ms);
    json_object_set_new (obj, "uptime_ms", json_integer ((json_int_t) body->uptime_ms));
    json_t *queues = json_array ();
    for (size_t i = 0; i < body->queues.n; i++)
        json_array_append_new (queues, arb_json_queue (&body->queues.v[i]));
    json_object_set_new (obj, "queues", queues);
    json_t *workers = json_array ();
    for (size_t i = 0; i < body->workers.n; i++)
        json_array_append_new (workers, arb_json_worker (&body->workers.v[i], body->now_ms));
    json_object_set_new (obj, "workers", workers);
    return obj;
}
