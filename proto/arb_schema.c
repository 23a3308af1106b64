/*  arb_schema.c — the schema of every message body (arb_schema.h), and
    the table of message types: each type's name and body schema, in the
    order of ARB_MSG_LIST. The codec that walks them is arb_proto.c
    (encoding) and arb_proto_decode.c (decoding).
*/

#include "arb_schema.h"

#include <stddef.h>

//  The key of a field is its C name.

#define FLD(T, f, type, req, max)                                \
    {                                                            \
#f, sizeof(#f) - 1, type, req, offsetof(T, f), max, NULL \
    }
#define LST(T, f, req, max, sub)                                       \
    {                                                                  \
#f, sizeof(#f) - 1, ARB_F_LIST, req, offsetof(T, f), max, &sub \
    }
#define SCHEMA_OF(var, T, fields, frame_at, list_at, list_sub) \
    static const arb_schema_t var = {                          \
        #T, sizeof (T), fields, sizeof (fields) / sizeof (fields[0]), frame_at, list_at, list_sub}
#define SCHEMA(var, T, fields) SCHEMA_OF (var, T, fields, 0, 0, NULL)
//  A record with a frame of its own, in field f
#define FRAMED_SCHEMA(var, T, fields, f) SCHEMA_OF (var, T, fields, offsetof (T, f) + 1, 0, NULL)
//  A record whose list f holds records (of schema sub) with frames
#define FRAMES_IN_SCHEMA(var, T, fields, f, sub) \
    SCHEMA_OF (var, T, fields, 0, offsetof (T, f) + 1, &sub)
#define EMPTY_SCHEMA(var, T) static const arb_schema_t var = {#T, sizeof (T), NULL, 0, 0, 0, NULL}

//  max 0 on a BIN field means "the frame limit" (results travel inline
//  in STATUS and DISPATCH parents).
//
//  Names (ARB_F_NAME, and every string of an ARB_F_STRS list) are printable
//  UTF-8. Single names are typed so in what peers send the broker, where
//  names enter the system; records the broker sends keep ARB_F_STR, since
//  they carry names out of a journal that may predate the rule, and a
//  worker that refused such a DISPATCH could never run the task.

static const arb_field_t s_dep_fields[] = {
    FLD (arb_dep_t, ref, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_dep_t, id, ARB_F_U64, false, 0),
    FLD (arb_dep_t, when, ARB_F_U32, false, 0),
};
SCHEMA (s_dep_schema, arb_dep_t, s_dep_fields);

static const arb_field_t s_task_spec_fields[] = {
    FLD (arb_task_spec_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_task_spec_t, name, ARB_F_NAME, true, ARB_NAME_MAX),
    FLD (arb_task_spec_t, key, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_task_spec_t, priority, ARB_F_I32, false, 0),
    FLD (arb_task_spec_t, retries, ARB_F_U32, false, 0),
    FLD (arb_task_spec_t, backoff, ARB_F_U32, false, 0),
    FLD (arb_task_spec_t, backoff_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, backoff_cap_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, no_jitter, ARB_F_BOOL, false, 0),
    FLD (arb_task_spec_t, delay_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, at_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, soft_timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, retention_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, expires_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, headers, ARB_F_BIN, false, ARB_HEADERS_MAX),
    FLD (arb_task_spec_t, ref, ARB_F_NAME, false, ARB_NAME_MAX),
    LST (arb_task_spec_t, after, false, ARB_LIST_MAX, s_dep_schema),
    FLD (arb_task_spec_t, endpoints, ARB_F_STRS, false, ARB_ENDPOINTS_MAX),
    FLD (arb_task_spec_t, broadcast, ARB_F_BOOL, false, 0),
    FLD (arb_task_spec_t, allow_unknown, ARB_F_BOOL, false, 0),
    FLD (arb_task_spec_t, endpoint_timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_task_spec_t, input, ARB_F_U32, false, 0),
    FLD (arb_task_spec_t, args, ARB_F_BIN, false, ARB_ARGS_MAX),
    FLD (arb_task_spec_t, unwatched, ARB_F_BOOL, false, 0),
    FLD (arb_task_spec_t, payload, ARB_F_FRAME, true, 0),
};
FRAMED_SCHEMA (s_task_spec_schema, arb_task_spec_t, s_task_spec_fields, payload);

static const arb_field_t s_error_fields[] = {
    FLD (arb_error_body_t, code, ARB_F_U32, true, 0),
    FLD (arb_error_body_t, reason, ARB_F_STR, true, ARB_TEXT_MAX),
};
SCHEMA (s_error_schema, arb_error_body_t, s_error_fields);

EMPTY_SCHEMA (s_ping_schema, arb_ping_body_t);

static const arb_field_t s_pong_fields[] = {
    FLD (arb_pong_body_t, version, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_pong_body_t, epoch, ARB_F_U64, false, 0),
    FLD (arb_pong_body_t, now_ms, ARB_F_U64, false, 0),
};
SCHEMA (s_pong_schema, arb_pong_body_t, s_pong_fields);

static const arb_field_t s_submit_fields[] = {
    FLD (arb_submit_body_t, watch, ARB_F_BOOL, false, 0),
    FLD (arb_submit_body_t, flow_kind, ARB_F_U32, false, 0),
    FLD (arb_submit_body_t, flow_name, ARB_F_NAME, false, ARB_NAME_MAX),
    LST (arb_submit_body_t, tasks, true, ARB_LIST_MAX, s_task_spec_schema),
};
FRAMES_IN_SCHEMA (s_submit_schema, arb_submit_body_t, s_submit_fields, tasks, s_task_spec_schema);

static const arb_field_t s_submitted_task_fields[] = {
    FLD (arb_submitted_task_t, id, ARB_F_U64, true, 0),
    FLD (arb_submitted_task_t, existing, ARB_F_BOOL, false, 0),
    FLD (arb_submitted_task_t, state, ARB_F_U32, false, 0),
    FLD (arb_submitted_task_t, refused, ARB_F_BOOL, false, 0),
};
SCHEMA (s_submitted_task_schema, arb_submitted_task_t, s_submitted_task_fields);

static const arb_field_t s_submitted_fields[] = {
    LST (arb_submitted_body_t, tasks, false, ARB_LIST_MAX, s_submitted_task_schema),
    FLD (arb_submitted_body_t, flow, ARB_F_U64, false, 0),
};
SCHEMA (s_submitted_schema, arb_submitted_body_t, s_submitted_fields);

static const arb_field_t s_status_fields[] = {
    FLD (arb_status_body_t, ids, ARB_F_IDS, true, ARB_IDS_MAX),
    FLD (arb_status_body_t, with_payload, ARB_F_BOOL, false, 0),
};
SCHEMA (s_status_schema, arb_status_body_t, s_status_fields);

static const arb_field_t s_attempt_info_fields[] = {
    FLD (arb_attempt_info_t, attempt, ARB_F_U32, false, 0),
    FLD (arb_attempt_info_t, started_ms, ARB_F_U64, false, 0),
    FLD (arb_attempt_info_t, ended_ms, ARB_F_U64, false, 0),
    FLD (arb_attempt_info_t, worker, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_attempt_info_t, outcome, ARB_F_U32, false, 0),
    FLD (arb_attempt_info_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
};
SCHEMA (s_attempt_info_schema, arb_attempt_info_t, s_attempt_info_fields);

static const arb_field_t s_response_info_fields[] = {
    FLD (arb_response_info_t, endpoint, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_response_info_t, id, ARB_F_U64, false, 0),
    FLD (arb_response_info_t, state, ARB_F_U32, false, 0),
    FLD (arb_response_info_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
    FLD (arb_response_info_t, finished_ms, ARB_F_U64, false, 0),
    FLD (arb_response_info_t, result, ARB_F_BIN, false, 0),
};
SCHEMA (s_response_info_schema, arb_response_info_t, s_response_info_fields);

static const arb_field_t s_task_info_fields[] = {
    FLD (arb_task_info_t, id, ARB_F_U64, true, 0),
    FLD (arb_task_info_t, found, ARB_F_BOOL, false, 0),
    FLD (arb_task_info_t, queue, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_task_info_t, name, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_task_info_t, key, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_task_info_t, state, ARB_F_U32, false, 0),
    FLD (arb_task_info_t, priority, ARB_F_I32, false, 0),
    FLD (arb_task_info_t, attempts, ARB_F_U32, false, 0),
    FLD (arb_task_info_t, max_attempts, ARB_F_U32, false, 0),
    FLD (arb_task_info_t, lost, ARB_F_U32, false, 0),
    FLD (arb_task_info_t, created_ms, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, not_before_ms, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, started_ms, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, finished_ms, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, soft_timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, worker, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_task_info_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
    FLD (arb_task_info_t, result, ARB_F_BIN, false, 0),
    LST (arb_task_info_t, history, false, ARB_LIST_MAX, s_attempt_info_schema),
    FLD (arb_task_info_t, history_dropped, ARB_F_U32, false, 0),
    FLD (arb_task_info_t, flow, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, ref, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_task_info_t, origin, ARB_F_U64, false, 0),
    FLD (arb_task_info_t, endpoint, ARB_F_STR, false, ARB_NAME_MAX),
    LST (arb_task_info_t, responses, false, ARB_ENDPOINTS_MAX, s_response_info_schema),
    FLD (arb_task_info_t, args, ARB_F_BIN, false, ARB_ARGS_MAX),
    FLD (arb_task_info_t, flow_kind, ARB_F_U32, false, 0),
    FLD (arb_task_info_t, flow_name, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_task_info_t, no_handler, ARB_F_BOOL, false, 0),
    LST (arb_task_info_t, parents, false, ARB_LIST_MAX, s_dep_schema),
    FLD (arb_task_info_t, payload, ARB_F_BIN, false, 0),
};
SCHEMA (s_task_info_schema, arb_task_info_t, s_task_info_fields);

static const arb_field_t s_status_reply_fields[] = {
    LST (arb_status_reply_body_t, tasks, false, ARB_LIST_MAX, s_task_info_schema),
    FLD (arb_status_reply_body_t, more, ARB_F_BOOL, false, 0),
};
SCHEMA (s_status_reply_schema, arb_status_reply_body_t, s_status_reply_fields);

static const arb_field_t s_list_fields[] = {
    FLD (arb_list_body_t, state, ARB_F_U32, false, 0),
    FLD (arb_list_body_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_list_body_t, after_id, ARB_F_U64, false, 0),
    FLD (arb_list_body_t, limit, ARB_F_U32, false, 0),
    FLD (arb_list_body_t, flow, ARB_F_U64, false, 0),
    FLD (arb_list_body_t, before_id, ARB_F_U64, false, 0),
    FLD (arb_list_body_t, newest, ARB_F_BOOL, false, 0),
};
SCHEMA (s_list_schema, arb_list_body_t, s_list_fields);

static const arb_field_t s_list_reply_fields[] = {
    LST (arb_list_reply_body_t, tasks, false, ARB_LIST_MAX, s_task_info_schema),
    FLD (arb_list_reply_body_t, more, ARB_F_BOOL, false, 0),
};
SCHEMA (s_list_reply_schema, arb_list_reply_body_t, s_list_reply_fields);

static const arb_field_t s_watch_fields[] = {
    FLD (arb_watch_body_t, ids, ARB_F_IDS, true, ARB_IDS_MAX),
};
SCHEMA (s_watch_schema, arb_watch_body_t, s_watch_fields);

static const arb_field_t s_watching_fields[] = {
    FLD (arb_watching_body_t, watching, ARB_F_U32, false, 0),
    FLD (arb_watching_body_t, unknown, ARB_F_IDS, false, ARB_IDS_MAX),
};
SCHEMA (s_watching_schema, arb_watching_body_t, s_watching_fields);

static const arb_field_t s_done_task_fields[] = {
    FLD (arb_done_task_t, id, ARB_F_U64, true, 0),
    FLD (arb_done_task_t, state, ARB_F_U32, true, 0),
    FLD (arb_done_task_t, attempts, ARB_F_U32, false, 0),
    FLD (arb_done_task_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
    FLD (arb_done_task_t, result, ARB_F_FRAME, true, 0),
};
FRAMED_SCHEMA (s_done_task_schema, arb_done_task_t, s_done_task_fields, result);

static const arb_field_t s_done_fields[] = {
    LST (arb_done_body_t, tasks, true, ARB_LIST_MAX, s_done_task_schema),
};
FRAMES_IN_SCHEMA (s_done_schema, arb_done_body_t, s_done_fields, tasks, s_done_task_schema);

static const arb_field_t s_cancel_fields[] = {
    FLD (arb_cancel_body_t, ids, ARB_F_IDS, false, ARB_IDS_MAX),
    FLD (arb_cancel_body_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_cancel_body_t, group, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_cancel_body_t, flow, ARB_F_U64, false, 0),
};
SCHEMA (s_cancel_schema, arb_cancel_body_t, s_cancel_fields);

static const arb_field_t s_outcome_info_fields[] = {
    FLD (arb_outcome_info_t, id, ARB_F_U64, true, 0),
    FLD (arb_outcome_info_t, code, ARB_F_U32, false, 0),
    FLD (arb_outcome_info_t, state, ARB_F_U32, false, 0),
};
SCHEMA (s_outcome_info_schema, arb_outcome_info_t, s_outcome_info_fields);

static const arb_field_t s_cancel_reply_fields[] = {
    LST (arb_cancel_reply_body_t, tasks, false, ARB_LIST_MAX, s_outcome_info_schema),
    FLD (arb_cancel_reply_body_t, count, ARB_F_U32, false, 0),
};
SCHEMA (s_cancel_reply_schema, arb_cancel_reply_body_t, s_cancel_reply_fields);

static const arb_field_t s_retry_fields[] = {
    FLD (arb_retry_body_t, ids, ARB_F_IDS, false, ARB_IDS_MAX),
    FLD (arb_retry_body_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_retry_body_t, all, ARB_F_BOOL, false, 0),
    FLD (arb_retry_body_t, flow, ARB_F_U64, false, 0),
    FLD (arb_retry_body_t, group, ARB_F_STR, false, ARB_NAME_MAX),
};
SCHEMA (s_retry_schema, arb_retry_body_t, s_retry_fields);

SCHEMA (s_retry_reply_schema, arb_retry_reply_body_t, s_cancel_reply_fields);

static const arb_field_t s_delete_fields[] = {
    FLD (arb_delete_body_t, ids, ARB_F_IDS, false, ARB_DELETE_MAX),
    FLD (arb_delete_body_t, state, ARB_F_U32, false, 0),
    FLD (arb_delete_body_t, queue, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_delete_body_t, older_than_ms, ARB_F_U64, false, 0),
    FLD (arb_delete_body_t, after_id, ARB_F_U64, false, 0),
};
SCHEMA (s_delete_schema, arb_delete_body_t, s_delete_fields);

static const arb_field_t s_delete_reply_fields[] = {
    LST (arb_delete_reply_body_t, tasks, false, ARB_DELETE_MAX, s_outcome_info_schema),
    FLD (arb_delete_reply_body_t, count, ARB_F_U32, false, 0),
    FLD (arb_delete_reply_body_t, more, ARB_F_BOOL, false, 0),
    FLD (arb_delete_reply_body_t, last_id, ARB_F_U64, false, 0),
};
SCHEMA (s_delete_reply_schema, arb_delete_reply_body_t, s_delete_reply_fields);


static const arb_field_t s_stats_fields[] = {
    FLD (arb_stats_body_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_stats_body_t, after, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_stats_body_t, after_worker, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_stats_body_t, limit, ARB_F_U32, false, 0),
};
SCHEMA (s_stats_schema, arb_stats_body_t, s_stats_fields);

static const arb_field_t s_queue_info_fields[] = {
    FLD (arb_queue_info_t, name, ARB_F_STR, true, ARB_NAME_MAX),
    FLD (arb_queue_info_t, counts, ARB_F_IDS, false, ARB_STATE_MAX + 1),
    FLD (arb_queue_info_t, paused, ARB_F_BOOL, false, 0),
    FLD (arb_queue_info_t, done_last_minute, ARB_F_U64, false, 0),
    FLD (arb_queue_info_t, oldest_ready_ms, ARB_F_U64, false, 0),
    FLD (arb_queue_info_t, max_running, ARB_F_U32, false, 0),
    FLD (arb_queue_info_t, rate_per_sec, ARB_F_U32, false, 0),
    FLD (arb_queue_info_t, retention_ms, ARB_F_U64, false, 0),
    FLD (arb_queue_info_t, on_failure, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_queue_info_t, done_seconds, ARB_F_IDS, false, ARB_DONE_SECONDS),
    FLD (arb_queue_info_t, consumers, ARB_F_U32, false, 0),
    FLD (arb_queue_info_t, declared, ARB_F_BOOL, false, 0),
    FLD (arb_queue_info_t, ready_bytes, ARB_F_U64, false, 0),
    FLD (arb_queue_info_t, max_ready, ARB_F_U64, false, 0),
    FLD (arb_queue_info_t, max_ready_bytes, ARB_F_U64, false, 0),
    FLD (arb_queue_info_t, overflow, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_queue_info_t, dropped, ARB_F_U64, false, 0),
};
SCHEMA (s_queue_info_schema, arb_queue_info_t, s_queue_info_fields);

static const arb_field_t s_worker_stats_fields[] = {
    FLD (arb_worker_stats_t, name, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_worker_stats_t, identity, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_worker_stats_t, slots, ARB_F_U32, false, 0),
    FLD (arb_worker_stats_t, credit, ARB_F_U32, false, 0),
    FLD (arb_worker_stats_t, busy, ARB_F_U32, false, 0),
    FLD (arb_worker_stats_t, last_seen_ms, ARB_F_U64, false, 0),
    FLD (arb_worker_stats_t, queues, ARB_F_STRS, false, 1000),
};
SCHEMA (s_worker_stats_schema, arb_worker_stats_t, s_worker_stats_fields);

static const arb_field_t s_stats_reply_fields[] = {
    FLD (arb_stats_reply_body_t, now_ms, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, uptime_ms, ARB_F_U64, false, 0),
    LST (arb_stats_reply_body_t, queues, false, ARB_LIST_MAX, s_queue_info_schema),
    LST (arb_stats_reply_body_t, workers, false, ARB_LIST_MAX, s_worker_stats_schema),
    FLD (arb_stats_reply_body_t, submitted, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, dispatched, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, finished, ARB_F_IDS, false, ARB_STATE_MAX + 1),
    FLD (arb_stats_reply_body_t, commits, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, commit_us, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, commit_buckets, ARB_F_IDS, false, ARB_COMMIT_BUCKETS),
    FLD (arb_stats_reply_body_t, tasks_in_memory, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, tasks_cold, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, watches, ARB_F_U64, false, 0),
    FLD (arb_stats_reply_body_t, more, ARB_F_BOOL, false, 0),
    FLD (arb_stats_reply_body_t, more_workers, ARB_F_BOOL, false, 0),
};
SCHEMA (s_stats_reply_schema, arb_stats_reply_body_t, s_stats_reply_fields);

static const arb_field_t s_queue_fields[] = {
    FLD (arb_queue_body_t, queue, ARB_F_NAME, true, ARB_NAME_MAX),
    FLD (arb_queue_body_t, op, ARB_F_STR, true, ARB_NAME_MAX),
    FLD (arb_queue_body_t, max_running, ARB_F_U32, false, 0),
    FLD (arb_queue_body_t, rate_per_sec, ARB_F_U32, false, 0),
    FLD (arb_queue_body_t, retention_ms, ARB_F_U64, false, 0),
    FLD (arb_queue_body_t, on_failure, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_queue_body_t, max_ready, ARB_F_U64, false, 0),
    FLD (arb_queue_body_t, max_ready_bytes, ARB_F_U64, false, 0),
    FLD (arb_queue_body_t, overflow, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_queue_body_t, clear, ARB_F_STRS, false, 8),
};
SCHEMA (s_queue_schema, arb_queue_body_t, s_queue_fields);

static const arb_field_t s_ok_fields[] = {
    FLD (arb_ok_body_t, count, ARB_F_U64, false, 0),
};
SCHEMA (s_ok_schema, arb_ok_body_t, s_ok_fields);

static const arb_field_t s_limit_fields[] = {
    FLD (arb_limit_body_t, name, ARB_F_NAME, true, ARB_NAME_MAX),
    FLD (arb_limit_body_t, max_running, ARB_F_U32, false, 0),
    FLD (arb_limit_body_t, rate_per_sec, ARB_F_U32, false, 0),
    FLD (arb_limit_body_t, clear, ARB_F_STRS, false, 8),
};
SCHEMA (s_limit_schema, arb_limit_body_t, s_limit_fields);

static const arb_field_t s_limits_fields[] = {
    FLD (arb_limits_body_t, name, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_limits_body_t, after, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_limits_body_t, limit, ARB_F_U32, false, 0),
};
SCHEMA (s_limits_schema, arb_limits_body_t, s_limits_fields);

static const arb_field_t s_limit_info_fields[] = {
    FLD (arb_limit_info_t, name, ARB_F_STR, true, ARB_NAME_MAX),
    FLD (arb_limit_info_t, max_running, ARB_F_U32, false, 0),
    FLD (arb_limit_info_t, rate_per_sec, ARB_F_U32, false, 0),
    FLD (arb_limit_info_t, running, ARB_F_U32, false, 0),
};
SCHEMA (s_limit_info_schema, arb_limit_info_t, s_limit_info_fields);

static const arb_field_t s_limits_reply_fields[] = {
    LST (arb_limits_reply_body_t, limits, false, ARB_LIST_MAX, s_limit_info_schema),
    FLD (arb_limits_reply_body_t, more, ARB_F_BOOL, false, 0),
};
SCHEMA (s_limits_reply_schema, arb_limits_reply_body_t, s_limits_reply_fields);

static const arb_field_t s_events_fields[] = {
    FLD (arb_events_body_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_events_body_t, off, ARB_F_BOOL, false, 0),
};
SCHEMA (s_events_schema, arb_events_body_t, s_events_fields);

static const arb_field_t s_event_info_fields[] = {
    FLD (arb_event_info_t, id, ARB_F_U64, true, 0),
    FLD (arb_event_info_t, at_ms, ARB_F_U64, false, 0),
    FLD (arb_event_info_t, queue, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_event_info_t, name, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_event_info_t, state, ARB_F_U32, true, 0),
    FLD (arb_event_info_t, attempt, ARB_F_U32, false, 0),
    FLD (arb_event_info_t, worker, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_event_info_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
};
SCHEMA (s_event_info_schema, arb_event_info_t, s_event_info_fields);

static const arb_field_t s_event_fields[] = {
    LST (arb_event_body_t, events, false, ARB_LIST_MAX, s_event_info_schema),
    FLD (arb_event_body_t, dropped, ARB_F_U64, false, 0),
};
SCHEMA (s_event_schema, arb_event_body_t, s_event_fields);

static const arb_field_t s_peek_fields[] = {
    FLD (arb_peek_body_t, queue, ARB_F_NAME, true, ARB_NAME_MAX),
    FLD (arb_peek_body_t, max, ARB_F_U32, false, 0),
};
SCHEMA (s_peek_schema, arb_peek_body_t, s_peek_fields);

static const arb_field_t s_parent_info_fields[] = {
    FLD (arb_parent_info_t, name, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_parent_info_t, id, ARB_F_U64, true, 0),
    FLD (arb_parent_info_t, state, ARB_F_U32, false, 0),
    FLD (arb_parent_info_t, result, ARB_F_BIN, false, 0),
    FLD (arb_parent_info_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
};
SCHEMA (s_parent_info_schema, arb_parent_info_t, s_parent_info_fields);

static const arb_field_t s_dispatch_task_fields[] = {
    FLD (arb_dispatch_task_t, id, ARB_F_U64, true, 0),
    FLD (arb_dispatch_task_t, lease, ARB_F_U64, false, 0),
    FLD (arb_dispatch_task_t, attempt, ARB_F_U32, false, 0),
    FLD (arb_dispatch_task_t, delivered, ARB_F_U32, false, 0),
    FLD (arb_dispatch_task_t, sub, ARB_F_U32, false, 0),
    FLD (arb_dispatch_task_t, queue, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_dispatch_task_t, name, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_dispatch_task_t, timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_dispatch_task_t, soft_timeout_ms, ARB_F_U64, false, 0),
    FLD (arb_dispatch_task_t, created_ms, ARB_F_U64, false, 0),
    FLD (arb_dispatch_task_t, headers, ARB_F_BIN, false, ARB_HEADERS_MAX),
    LST (arb_dispatch_task_t, parents, false, ARB_LIST_MAX, s_parent_info_schema),
    FLD (arb_dispatch_task_t, args, ARB_F_BIN, false, 0),
    FLD (arb_dispatch_task_t, payload, ARB_F_FRAME, true, 0),
};
FRAMED_SCHEMA (s_dispatch_task_schema, arb_dispatch_task_t, s_dispatch_task_fields, payload);

static const arb_field_t s_dispatch_fields[] = {
    LST (arb_dispatch_body_t, tasks, false, ARB_LIST_MAX, s_dispatch_task_schema),
};
FRAMES_IN_SCHEMA (
    s_dispatch_schema, arb_dispatch_body_t, s_dispatch_fields, tasks, s_dispatch_task_schema);
FRAMES_IN_SCHEMA (
    s_peek_reply_schema, arb_peek_reply_body_t, s_dispatch_fields, tasks, s_dispatch_task_schema);

static const arb_field_t s_meta_fields[] = {
    FLD (arb_meta_body_t, op, ARB_F_STR, true, ARB_NAME_MAX),
    FLD (arb_meta_body_t, key, ARB_F_STR, false, ARB_TEXT_MAX),
    FLD (arb_meta_body_t, value, ARB_F_BIN, false, ARB_META_VALUE_MAX),
    FLD (arb_meta_body_t, expect, ARB_F_BIN, false, ARB_META_VALUE_MAX),
    FLD (arb_meta_body_t, absent, ARB_F_BOOL, false, 0),
    FLD (arb_meta_body_t, remove, ARB_F_BOOL, false, 0),
    FLD (arb_meta_body_t, after, ARB_F_STR, false, ARB_TEXT_MAX),
    FLD (arb_meta_body_t, limit, ARB_F_U32, false, 0),
};
SCHEMA (s_meta_schema, arb_meta_body_t, s_meta_fields);

static const arb_field_t s_meta_item_fields[] = {
    FLD (arb_meta_item_t, key, ARB_F_STR, true, ARB_TEXT_MAX),
    FLD (arb_meta_item_t, value, ARB_F_BIN, false, ARB_META_VALUE_MAX),
};
SCHEMA (s_meta_item_schema, arb_meta_item_t, s_meta_item_fields);

static const arb_field_t s_meta_reply_fields[] = {
    LST (arb_meta_reply_body_t, items, false, ARB_LIST_MAX, s_meta_item_schema),
    FLD (arb_meta_reply_body_t, matched, ARB_F_BOOL, false, 0),
    FLD (arb_meta_reply_body_t, more, ARB_F_BOOL, false, 0),
};
SCHEMA (s_meta_reply_schema, arb_meta_reply_body_t, s_meta_reply_fields);

//  The fields SCHEDULE and its reply's records share (arb_proto.h).
#define SCHEDULE_FIELDS                                                        \
    FLD (arb_schedule_info_t, name, ARB_F_NAME, false, ARB_SCHEDULE_NAME_MAX), \
        FLD (arb_schedule_info_t, cron, ARB_F_STR, false, ARB_NAME_MAX),       \
        FLD (arb_schedule_info_t, zone, ARB_F_STR, false, ARB_NAME_MAX),       \
        FLD (arb_schedule_info_t, catch_up, ARB_F_STR, false, ARB_NAME_MAX),   \
        FLD (arb_schedule_info_t, queue, ARB_F_NAME, false, ARB_NAME_MAX),     \
        FLD (arb_schedule_info_t, task, ARB_F_NAME, false, ARB_NAME_MAX),      \
        FLD (arb_schedule_info_t, priority, ARB_F_I32, false, 0),              \
        FLD (arb_schedule_info_t, retries, ARB_F_U32, false, 0),               \
        FLD (arb_schedule_info_t, backoff, ARB_F_U32, false, 0),               \
        FLD (arb_schedule_info_t, backoff_ms, ARB_F_U64, false, 0),            \
        FLD (arb_schedule_info_t, backoff_cap_ms, ARB_F_U64, false, 0),        \
        FLD (arb_schedule_info_t, no_jitter, ARB_F_BOOL, false, 0),            \
        FLD (arb_schedule_info_t, timeout_ms, ARB_F_U64, false, 0),            \
        FLD (arb_schedule_info_t, soft_timeout_ms, ARB_F_U64, false, 0),       \
        FLD (arb_schedule_info_t, retention_ms, ARB_F_U64, false, 0),          \
        FLD (arb_schedule_info_t, payload, ARB_F_FRAME, true, 0)

static const arb_field_t s_schedule_fields[] = {
    FLD (arb_schedule_info_t, op, ARB_F_STR, true, ARB_NAME_MAX),
    SCHEDULE_FIELDS,
};
FRAMED_SCHEMA (s_schedule_schema, arb_schedule_body_t, s_schedule_fields, payload);

static const arb_field_t s_schedule_info_fields[] = {
    SCHEDULE_FIELDS,
    FLD (arb_schedule_info_t, paused, ARB_F_BOOL, false, 0),
    FLD (arb_schedule_info_t, created_ms, ARB_F_U64, false, 0),
    FLD (arb_schedule_info_t, next_ms, ARB_F_U64, false, 0),
    FLD (arb_schedule_info_t, next_offset_s, ARB_F_I32, false, 0),
    FLD (arb_schedule_info_t, last_slot_ms, ARB_F_U64, false, 0),
    FLD (arb_schedule_info_t, last_id, ARB_F_U64, false, 0),
};
FRAMED_SCHEMA (s_schedule_info_schema, arb_schedule_info_t, s_schedule_info_fields, payload);

static const arb_field_t s_schedule_reply_fields[] = {
    LST (arb_schedule_reply_body_t, schedules, false, ARB_LIST_MAX, s_schedule_info_schema),
};
FRAMES_IN_SCHEMA (s_schedule_reply_schema,
                  arb_schedule_reply_body_t,
                  s_schedule_reply_fields,
                  schedules,
                  s_schedule_info_schema);

static const arb_field_t s_held_fields[] = {
    FLD (arb_held_t, id, ARB_F_U64, true, 0),
    FLD (arb_held_t, lease, ARB_F_U64, true, 0),
    FLD (arb_held_t, ran_ms, ARB_F_U64, false, 0),
};
SCHEMA (s_held_schema, arb_held_t, s_held_fields);

static const arb_field_t s_register_fields[] = {
    FLD (arb_register_body_t, name, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_register_body_t, mode, ARB_F_STR, false, ARB_NAME_MAX),
    FLD (arb_register_body_t, slots, ARB_F_U32, false, 0),
    FLD (arb_register_body_t, pid, ARB_F_U32, false, 0),
    FLD (arb_register_body_t, host, ARB_F_NAME, false, ARB_NAME_MAX),
    LST (arb_register_body_t, held, false, ARB_LIST_MAX, s_held_schema),
    FLD (arb_register_body_t, handles, ARB_F_STRS, false, ARB_HANDLES_MAX),
    FLD (arb_register_body_t, acks, ARB_F_BOOL, false, 0),
    FLD (arb_register_body_t, marks, ARB_F_BOOL, false, 0),
};
SCHEMA (s_register_schema, arb_register_body_t, s_register_fields);

static const arb_field_t s_welcome_fields[] = {
    FLD (arb_welcome_body_t, heartbeat_ms, ARB_F_U32, true, 0),
    FLD (arb_welcome_body_t, liveness_ms, ARB_F_U32, true, 0),
    FLD (arb_welcome_body_t, epoch, ARB_F_U64, false, 0),
    LST (arb_welcome_body_t, adopted, false, ARB_LIST_MAX, s_held_schema),
    FLD (arb_welcome_body_t, max_payload, ARB_F_U64, false, 0),
};
SCHEMA (s_welcome_schema, arb_welcome_body_t, s_welcome_fields);

static const arb_field_t s_credit_fields[] = {
    FLD (arb_credit_body_t, sub, ARB_F_U32, false, 0),
    FLD (arb_credit_body_t, queues, ARB_F_STRS, false, ARB_CREDIT_QUEUES_MAX),
    FLD (arb_credit_body_t, credit, ARB_F_I32, false, 0),
    FLD (arb_credit_body_t, cancel, ARB_F_BOOL, false, 0),
};
SCHEMA (s_credit_schema, arb_credit_body_t, s_credit_fields);

static const arb_field_t s_take_fields[] = {
    FLD (arb_take_body_t, queue, ARB_F_NAME, true, ARB_NAME_MAX),
    FLD (arb_take_body_t, max, ARB_F_U32, false, 0),
};
SCHEMA (s_take_schema, arb_take_body_t, s_take_fields);

static const arb_field_t s_result_item_fields[] = {
    FLD (arb_result_item_t, id, ARB_F_U64, true, 0),
    FLD (arb_result_item_t, lease, ARB_F_U64, true, 0),
    FLD (arb_result_item_t, outcome, ARB_F_U32, false, 0),
    FLD (arb_result_item_t, error, ARB_F_STR, false, ARB_TEXT_MAX),
    FLD (arb_result_item_t, routed, ARB_F_BOOL, false, 0),
    FLD (arb_result_item_t, result, ARB_F_FRAME, true, 0),
};
FRAMED_SCHEMA (s_result_item_schema, arb_result_item_t, s_result_item_fields, result);

static const arb_field_t s_result_fields[] = {
    LST (arb_result_body_t, results, true, ARB_LIST_MAX, s_result_item_schema),
};
FRAMES_IN_SCHEMA (
    s_result_schema, arb_result_body_t, s_result_fields, results, s_result_item_schema);

static const arb_field_t s_emit_item_fields[] = {
    FLD (arb_emit_item_t, id, ARB_F_U64, true, 0),
    FLD (arb_emit_item_t, lease, ARB_F_U64, true, 0),
    FLD (arb_emit_item_t, queue, ARB_F_NAME, true, ARB_NAME_MAX),
    FLD (arb_emit_item_t, name, ARB_F_NAME, false, ARB_NAME_MAX),
    FLD (arb_emit_item_t, payload, ARB_F_FRAME, true, 0),
};
FRAMED_SCHEMA (s_emit_item_schema, arb_emit_item_t, s_emit_item_fields, payload);

static const arb_field_t s_emit_fields[] = {
    LST (arb_emit_body_t, items, true, ARB_LIST_MAX, s_emit_item_schema),
};
FRAMES_IN_SCHEMA (s_emit_schema, arb_emit_body_t, s_emit_fields, items, s_emit_item_schema);

static const arb_field_t s_heartbeat_fields[] = {
    FLD (arb_heartbeat_body_t, busy, ARB_F_U32, false, 0),
    FLD (arb_heartbeat_body_t, mark, ARB_F_U64, false, 0),
};
SCHEMA (s_heartbeat_schema, arb_heartbeat_body_t, s_heartbeat_fields);

static const arb_field_t s_stop_item_fields[] = {
    FLD (arb_stop_item_t, id, ARB_F_U64, true, 0),
    FLD (arb_stop_item_t, lease, ARB_F_U64, true, 0),
    FLD (arb_stop_item_t, reason, ARB_F_U32, false, 0),
};
SCHEMA (s_stop_item_schema, arb_stop_item_t, s_stop_item_fields);

static const arb_field_t s_stop_fields[] = {
    LST (arb_stop_body_t, tasks, true, ARB_LIST_MAX, s_stop_item_schema),
};
SCHEMA (s_stop_schema, arb_stop_body_t, s_stop_fields);

EMPTY_SCHEMA (s_bye_schema, arb_bye_body_t);

static const arb_field_t s_result_ok_fields[] = {
    FLD (arb_result_ok_body_t, stored, ARB_F_IDS, false, ARB_LIST_MAX),
    FLD (arb_result_ok_body_t, refused, ARB_F_IDS, false, ARB_LIST_MAX),
};
SCHEMA (s_result_ok_schema, arb_result_ok_body_t, s_result_ok_fields);

typedef struct {
    const char *name;
    const arb_schema_t *schema;
} s_type_t;

static const s_type_t s_types[ARB_MSG_TYPE_MAX] = {
#define ARB_X(NAME, NUM, lower) [NUM] = {#NAME, &s_##lower##_schema},
    ARB_MSG_LIST (ARB_X)
#undef ARB_X
};

const arb_schema_t *
arb_schema_of (int type)
{
    if (type <= 0 || type >= ARB_MSG_TYPE_MAX)
        return NULL;
    return s_types[type].schema;
}

const char *
arb_msg_type_name (int type)
{
    if (type <= 0 || type >= ARB_MSG_TYPE_MAX)
        return NULL;
    return s_types[type].name;
}
