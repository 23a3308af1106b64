/*  arb_json.h — arbiter's records as JSON (jansson), one form for every
    program that shows them: the CLI's --json output and the gateway's
    HTTP API render tasks, queues, workers and outcomes through these
    functions, so a field has one name and one meaning everywhere.

    Conventions: state names as strings ("ready"); each time as two
    members, NAME_ms (Unix ms) and NAME (RFC 3339 UTC), both null when
    unset; bytes (results) as NAME when they are UTF-8, else NAME_base64;
    strings from the wire that are not UTF-8 escaped (\xNN); absent
    strings and ids as null.

    Pure functions; each returns a new reference the caller owns.
*/

#ifndef ARB_JSON_H
#define ARB_JSON_H

#include "arb_proto.h"

#include <jansson.h>

//  A time as {key_ms: ms, key: "RFC 3339"} members of obj (both null for 0).
void arb_json_time (json_t *obj, const char *key, uint64_t ms);

//  Bytes as obj[key] (a string when they are UTF-8) or obj[key_base64].
void arb_json_bytes (json_t *obj, const char *key, const uint8_t *data, size_t size);

//  A string member, or null for NULL.
void arb_json_str (json_t *obj, const char *key, const char *value);

//  A task from STATUS (full: with result, history and responses) or LIST:
//  {"id", "state", "queue", "name", "key", "priority", "attempts",
//  "max_attempts", "lost", "created", "not_before", "started", "finished"
//  (each with _ms), "timeout_ms", "worker", "error", "flow", "flow_kind"
//  (dag, group, pipe), "flow_name", "ref",
//  "origin", "endpoint", "parents" [{"id", "ref", "when"}] (when:
//  on_success, on_failure or always)}, and when full "result" (or "result_base64"),
//  "history" [{"attempt", "started", "ended", "worker", "outcome",
//  "error"}] and "responses" (arb_json_response each).
json_t *arb_json_task (const arb_task_info_t *task, bool full);

//  One endpoint's answer to a fan-out task: {"endpoint", "id", "state",
//  "finished", "result", "error"}.
json_t *arb_json_response (const arb_response_info_t *response);

//  A queue from STATS: {"name", "counts": {STATE: N}, "done_last_minute",
//  "oldest_ready_age_ms", "paused", "declared", "consumers", "settings":
//  {the ones set}}.
json_t *arb_json_queue (const arb_queue_info_t *queue);

//  A worker from STATS (now_ms: the reply's): {"name", "identity",
//  "slots", "busy", "credit", "last_seen_age_ms", "queues"}.
json_t *arb_json_worker (const arb_worker_stats_t *worker, uint64_t now_ms);

//  STATS_REPLY: {"now", "uptime_ms", "queues": [...], "workers": [...]}.
json_t *arb_json_stats (const arb_stats_reply_body_t *body);

//  One answer of CANCEL_REPLY / RETRY_REPLY: {"id", "code", "state"}
//  (code 0 done, 404 unknown, 409 not in a state that allows it).
json_t *arb_json_outcome (const arb_outcome_info_t *outcome);

#endif
