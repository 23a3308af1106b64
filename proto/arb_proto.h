/*  arb_proto.h — the arbiter wire protocol: message types, bodies, codec.

    This is the only code that knows the wire format; broker, worker, client
    and gateway build and read messages through it and never touch frames.
    The full description, with examples, is proto/PROTOCOL.md.

    A message is a ZeroMQ multipart message (DEALER peer -> ROUTER broker):

        [routing id]      only on the broker's ROUTER side
        header            8 bytes: 'A' 'R' version type reqid(u32, big-endian)
        body              one msgpack map, described by the type's schema
        frame...          one raw frame per record that has a FRAME field
                          (task payloads and results: never re-encoded)

    Who sends what:

        client  -> broker   PING SUBMIT STATUS LIST WATCH CANCEL RETRY DELETE
                            STATS QUEUE LIMIT EVENTS PEEK META SCHEDULE
        broker  -> client   PONG SUBMITTED STATUS_REPLY LIST_REPLY WATCHING
                            DONE (streamed) CANCEL_REPLY RETRY_REPLY
                            DELETE_REPLY STATS_REPLY OK EVENT (streamed)
                            PEEK_REPLY META_REPLY SCHEDULE_REPLY ERROR
        worker  -> broker   REGISTER CREDIT TAKE RESULT EMIT HEARTBEAT BYE
        broker  -> worker   WELCOME DISPATCH HEARTBEAT STOP RESULT_OK ERROR

    One connection may be a client and a worker at once (the gateway is).
    A broker started with --curve lets each peer send only what the role
    of its certificate permits, and answers anything else with ERROR
    ARB_ERR_FORBIDDEN (PROTOCOL.md, "Authentication and roles"; the roles
    of each type are in the broker's verb table, broker/arb_verbs.c).
    A request carries a request id chosen by the sender; the reply carries
    the same id. Streamed messages (DONE, EVENT, DISPATCH after CREDIT,
    STOP, HEARTBEAT) carry request id 0.

    Worker session: REGISTER -> WELCOME, then CREDIT/RESULT/EMIT/HEARTBEAT
    in any order; any worker message from an identity the broker does not
    know gets ERROR ARB_ERR_UNKNOWN_WORKER, and the worker registers again.
    A worker that registers with `acks` keeps each result until the
    RESULT_OK that answers its RESULT (after the broker's commit) says it
    was stored or refused, and claims the results it still keeps when it
    registers again (PROTOCOL.md, "Results kept until acknowledged").

    Decoding is strict: exact types, no unknown or duplicate keys, every
    required key present, length limits on every string and list, integer
    ranges checked, frames matched one to one with the records that own
    them. The decoder never asserts on peer bytes.
*/

#ifndef ARB_PROTO_H
#define ARB_PROTO_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_PROTO_VERSION 1
#define ARB_VERSION       "0.1.0"

//  ---------------------------------------------------------------------
//  Limits. Every string and list on the wire has one; the decoder refuses
//  anything beyond it.

#define ARB_NAME_MAX            200          //  names (arb_name_check): queue, task, worker, key
#define ARB_TEXT_MAX            4096         //  error texts, reasons
#define ARB_HEADERS_MAX         65536        //  opaque per-task headers (gateway properties)
#define ARB_LIST_MAX            100000       //  records in one list (a 10,000-node DAG fits)
#define ARB_IDS_MAX             100000       //  ids in one request
#define ARB_PAYLOAD_DEFAULT_MAX (16u << 20)  //  per payload frame, configurable
//  The largest message a broker takes or sends, from its largest payload
//  (--max-payload): a RESULT's result and a DISPATCH's payload, twice,
//  plus 1 MiB for the rest
#define ARB_MESSAGE_MAX(max_payload) (2 * (uint64_t) (max_payload) + (1u << 20))
#define ARB_META_VALUE_MAX           (1u << 20)  //  one metadata value
#define ARB_ARGS_MAX                 (1u << 20)  //  a task's persistent arguments
#define ARB_ENDPOINTS_MAX            1000        //  endpoints of one fan-out task
#define ARB_HANDLES_MAX              1000        //  task names one worker declares it handles
#define ARB_CREDIT_QUEUES_MAX        64          //  queues of one CREDIT subscription
#define ARB_SCHEDULE_NAME_MAX        160   //  so that "schedule:NAME:SLOT_MS" fits ARB_NAME_MAX
#define ARB_DELETE_MAX               1000  //  ids, or tasks looked at, in one DELETE

//  A task's history (task_info.history) keeps its first ARB_HISTORY_FIRST
//  and its last ARB_HISTORY_LAST attempts that ended other than by
//  success; those between are dropped and counted (history_dropped), so a
//  task that fails for ever costs a bounded history.
#define ARB_HISTORY_FIRST 5
#define ARB_HISTORY_LAST  5
#define ARB_DONE_SECONDS  60  //  a queue's finished tasks per second, in STATS

//  Bounds of what one peer may hold at the broker, and of the messages it
//  sends (PROTOCOL.md, Bounds). ARB_REPLY_BYTES: payloads, results and
//  values in one broker message beyond its first record.
#define ARB_REPLY_BYTES        (16u << 20)
#define ARB_SESSION_SUBS_MAX   10000   //  subscriptions of one worker session
#define ARB_SESSION_QUEUES_MAX 10000   //  queue names over all of a session's subscriptions
#define ARB_CREDIT_MAX         100000  //  credit of one subscription; more is not counted
#define ARB_TAKE_MAX           1000    //  tasks one TAKE leases at most
#define ARB_PEEK_MAX           1000    //  tasks one PEEK shows at most

//  Bounds of task options: beyond them a value is a mistake, refused with
//  422 by the broker (and exit 2 by the CLI) naming the field.
#define ARB_DAY_MS           (24ull * 3600 * 1000)
#define ARB_RETRIES_MAX      1000
#define ARB_DELAY_MAX_MS     (366 * ARB_DAY_MS)  //  delay_ms, and at_ms beyond now
#define ARB_TIMEOUT_MAX_MS   (30 * ARB_DAY_MS)
#define ARB_BACKOFF_MAX_MS   (30 * ARB_DAY_MS)
#define ARB_RETENTION_MAX_MS (3660 * ARB_DAY_MS)

//  ---------------------------------------------------------------------
//  Message types. The list is the single source for the enum, the names
//  and the schema table in arb_schema.c.

#define ARB_MSG_LIST(X)                    \
    X (ERROR, 1, error)                    \
    X (PING, 2, ping)                      \
    X (PONG, 3, pong)                      \
    X (SUBMIT, 4, submit)                  \
    X (SUBMITTED, 5, submitted)            \
    X (STATUS, 6, status)                  \
    X (STATUS_REPLY, 7, status_reply)      \
    X (LIST, 8, list)                      \
    X (LIST_REPLY, 9, list_reply)          \
    X (WATCH, 10, watch)                   \
    X (WATCHING, 11, watching)             \
    X (DONE, 12, done)                     \
    X (CANCEL, 13, cancel)                 \
    X (CANCEL_REPLY, 14, cancel_reply)     \
    X (RETRY, 15, retry)                   \
    X (RETRY_REPLY, 16, retry_reply)       \
    X (STATS, 17, stats)                   \
    X (STATS_REPLY, 18, stats_reply)       \
    X (QUEUE, 19, queue)                   \
    X (OK, 20, ok)                         \
    X (EVENTS, 21, events)                 \
    X (EVENT, 22, event)                   \
    X (PEEK, 23, peek)                     \
    X (PEEK_REPLY, 24, peek_reply)         \
    X (META, 25, meta)                     \
    X (META_REPLY, 26, meta_reply)         \
    X (LIMIT, 27, limit)                   \
    X (SCHEDULE, 28, schedule)             \
    X (SCHEDULE_REPLY, 29, schedule_reply) \
    X (DELETE, 30, delete)                 \
    X (DELETE_REPLY, 31, delete_reply)     \
    X (LIMITS, 32, limits)                 \
    X (LIMITS_REPLY, 33, limits_reply)     \
    X (REGISTER, 40, register)             \
    X (WELCOME, 41, welcome)               \
    X (CREDIT, 42, credit)                 \
    X (TAKE, 43, take)                     \
    X (DISPATCH, 44, dispatch)             \
    X (RESULT, 45, result)                 \
    X (EMIT, 46, emit)                     \
    X (HEARTBEAT, 47, heartbeat)           \
    X (STOP, 48, stop)                     \
    X (BYE, 49, bye)                       \
    X (RESULT_OK, 50, result_ok)

typedef enum {
#define ARB_X(NAME, NUM, lower) ARB_MSG_##NAME = NUM,
    ARB_MSG_LIST (ARB_X)
#undef ARB_X
} arb_msg_type_t;

#define ARB_MSG_TYPE_MAX 64  //  every type number is below this

//  Error codes carried by ERROR (and per-record outcomes). HTTP-like so
//  they read well in logs and map directly onto the gateway's REST API.
typedef enum {
    ARB_ERR_BAD_REQUEST = 400,     //  malformed message, missing or bad field
    ARB_ERR_FORBIDDEN = 403,       //  the peer's certificate has no role that may do this
    ARB_ERR_NOT_FOUND = 404,       //  unknown task, queue or key
    ARB_ERR_CONFLICT = 409,        //  state does not allow the operation
    ARB_ERR_UNKNOWN_WORKER = 410,  //  worker verb from an unregistered peer: register again
    ARB_ERR_TOO_LARGE = 413,       //  payload or message over a limit
    ARB_ERR_INVALID = 422,         //  well-formed but refused (cycle, bad option value)
    ARB_ERR_INTERNAL = 500,        //  journal failure; nothing was changed
    ARB_ERR_UNAVAILABLE = 503,     //  broker shutting down
    ARB_ERR_VERSION = 505,         //  protocol version not spoken
    ARB_ERR_JOURNAL_FULL = 507,    //  the journal's disk is full: no writes until space returns
} arb_err_t;

//  Task states. Numbers are part of the protocol and the journal.
typedef enum {
    ARB_STATE_WAITING = 1,    //  parents not finished
    ARB_STATE_SCHEDULED = 2,  //  not before its time (delay, backoff)
    ARB_STATE_READY = 3,      //  in its queue
    ARB_STATE_RUNNING = 4,    //  leased to one worker
    ARB_STATE_SUCCEEDED = 5,
    ARB_STATE_FAILED = 6,  //  an attempt failed; only in events, the task itself goes to scheduled
    ARB_STATE_DEAD = 7,    //  attempts used up, or a failed dependency
    ARB_STATE_CANCELLED = 8,
    ARB_STATE_SKIPPED =
        9,  //  final: its dependencies made it unnecessary (a DAG's on_failure step)
} arb_state_t;

#define ARB_STATE_MAX 9

//  Outcome of one attempt, reported by a worker in RESULT.
typedef enum {
    ARB_OUTCOME_OK = 0,       //  succeeded; the frame is the result
    ARB_OUTCOME_FAIL = 1,     //  failed; error says why; counts an attempt
    ARB_OUTCOME_RELEASE = 2,  //  give it back to the head of its queue; no attempt counted
} arb_outcome_t;

//  Backoff policy between attempts.
typedef enum {
    ARB_BACKOFF_NONE = 0,   //  retry at once
    ARB_BACKOFF_FIXED = 1,  //  backoff_ms every time
    ARB_BACKOFF_EXP = 2,    //  backoff_ms * 2^(attempt-1), capped at backoff_cap_ms, jittered
} arb_backoff_t;

//  Why the broker asks a worker to stop a task.
typedef enum {
    ARB_STOP_TIMEOUT = 1,
    ARB_STOP_CANCEL = 2,
} arb_stop_reason_t;

//  ---------------------------------------------------------------------
//  Body records. Strings are NUL-terminated; a NULL string, zero number,
//  false bool or empty list means "absent" and is not put on the wire, so
//  every optional field's default is its zero. In a received message every
//  pointer borrows from the message and lives as long as it does. In a
//  message being built, strings and bins are borrowed from the caller
//  until the message is sent; frames are owned by the message.

typedef struct {
    const uint8_t *data;
    size_t size;
} arb_bin_t;

typedef struct {
    const char **v;
    size_t n;
} arb_strs_t;

typedef struct {
    uint64_t *v;
    size_t n;
} arb_ids_t;

//  A dependency of a task in a SUBMIT batch: the task named `ref` in the
//  same batch, or the existing task `id`.
typedef struct {
    const char *ref;
    uint64_t id;
    uint32_t when;  //  0 on success (default), 1 on failure, 2 always
} arb_dep_t;

//  How long an endpoint's copy of a fan-out task waits for its worker when
//  the task does not say.
#define ARB_ENDPOINT_TIMEOUT_DEFAULT_MS 30000

//  One task in SUBMIT.
typedef struct {
    const char *queue;         //  default "default"
    const char *name;          //  required: the handler name
    const char *key;           //  client key: a re-submit with the same key returns the first task
    int32_t priority;          //  higher runs first
    uint32_t retries;          //  extra attempts after the first
    uint32_t backoff;          //  arb_backoff_t
    uint64_t backoff_ms;       //  fixed delay, or exponential base
    uint64_t backoff_cap_ms;   //  exponential cap
    bool no_jitter;            //  exponential backoff is jittered unless set
    uint64_t delay_ms;         //  earliest start: now + delay
    uint64_t at_ms;            //  earliest start: Unix time in ms
    uint64_t timeout_ms;       //  hard limit of one attempt; 0 none
    uint64_t soft_timeout_ms;  //  the handler is warned this long into an attempt; 0 never;
                               //  below timeout_ms when both are set
    uint64_t retention_ms;     //  keep the finished task this long; 0 queue default
    uint64_t expires_ms;       //  Unix ms after which a not-started task is dropped (Kestrel TTL)
    arb_bin_t headers;         //  opaque, given back on dispatch (AMQP properties, Kestrel flags)
    const char *ref;           //  name of this task within the batch (DAG node, pipe step)
    struct {
        arb_dep_t *v;
        size_t n;
    } after;                       //  dependencies
    arb_strs_t endpoints;          //  fan-out: one copy per named worker
    bool broadcast;                //  fan-out to every worker serving the queue now
    bool allow_unknown;            //  endpoints need not be connected now
    uint64_t endpoint_timeout_ms;  //  an endpoint without its copy by then is missing
                                   //  (0: ARB_ENDPOINT_TIMEOUT_DEFAULT_MS)
    uint32_t input;                //  ARB_INPUT_*: where the handler's input comes from
    arb_bin_t args;                //  persistent arguments, given beside the input (pipes)
    bool unwatched;                //  nobody asks about it after its end (a message its
                                   //  consumer acks): with a retention of 0 its row goes
                                   //  as it ends, watched or not
    zframe_t *payload;             //  FRAME
} arb_task_spec_t;

//  Kinds of flow: tasks submitted together and seen as one.
typedef enum {
    ARB_FLOW_NONE = 0,
    ARB_FLOW_DAG = 1,
    ARB_FLOW_GROUP = 2,
    ARB_FLOW_PIPE = 3,
} arb_flow_kind_t;

//  Input of a task: its payload, or (pipes) its one parent's result (its
//  own payload is then not used).
#define ARB_INPUT_PAYLOAD 0
#define ARB_INPUT_PARENT  1

typedef struct {
    uint32_t code;  //  arb_err_t
    const char *reason;
} arb_error_body_t;

typedef struct {
    uint8_t unused;  //  empty body
} arb_ping_body_t;

typedef struct {
    const char *version;  //  broker version string
    uint64_t epoch;       //  broker boot count, from the journal
    uint64_t now_ms;      //  broker's wall clock
} arb_pong_body_t;

typedef struct {
    bool watch;             //  also WATCH every task of the batch (DONE will follow)
    uint32_t flow_kind;     //  arb_flow_kind_t: the batch is one DAG, group or pipe
    const char *flow_name;  //  a name for the flow (groups: for cancel by group)
    struct {
        arb_task_spec_t *v;
        size_t n;
    } tasks;
} arb_submit_body_t;

//  One accepted task in SUBMITTED, in the order of the request.
typedef struct {
    uint64_t id;
    bool existing;  //  the key was known: this is the first task's id
    uint32_t state;
    bool refused;  //  its queue was full (overflow reject): it ended cancelled at once
} arb_submitted_task_t;

typedef struct {
    struct {
        arb_submitted_task_t *v;
        size_t n;
    } tasks;
    uint64_t flow;  //  the flow's id, when the batch was one
} arb_submitted_body_t;

typedef struct {
    arb_ids_t ids;
    bool with_payload;  //  answer each task's payload too (task_info.payload)
} arb_status_body_t;

//  One attempt in a task's history.
typedef struct {
    uint32_t attempt;
    uint64_t started_ms;
    uint64_t ended_ms;
    const char *worker;
    uint32_t outcome;  //  arb_outcome_t, or 3 lease lost, 4 timed out, 5 cancelled
    const char *error;
} arb_attempt_info_t;

#define ARB_ATTEMPT_LOST      3
#define ARB_ATTEMPT_TIMEOUT   4
#define ARB_ATTEMPT_CANCELLED 5
#define ARB_ATTEMPT_RUNNING   6  //  the attempt going on now (STATUS only)

//  One endpoint's answer to a fan-out task.
typedef struct {
    const char *endpoint;
    uint64_t id;  //  the copy's own task id
    uint32_t state;
    const char *error;
    uint64_t finished_ms;
    arb_bin_t result;  //  STATUS only
} arb_response_info_t;

//  What STATUS and LIST tell about one task.
typedef struct {
    uint64_t id;
    bool found;  //  false: no such task (only the id is set)
    const char *queue;
    const char *name;
    const char *key;
    uint32_t state;
    int32_t priority;
    uint32_t attempts;      //  attempts started so far
    uint32_t max_attempts;  //  retries + 1
    uint32_t lost;          //  leases lost with a dead worker
    uint64_t created_ms;
    uint64_t not_before_ms;
    uint64_t started_ms;
    uint64_t finished_ms;
    uint64_t timeout_ms;
    uint64_t soft_timeout_ms;
    const char *worker;  //  last or current worker
    const char *error;   //  last error
    arb_bin_t result;    //  STATUS only
    struct {
        arb_attempt_info_t *v;
        size_t n;
    } history;                 //  STATUS only
    uint32_t history_dropped;  //  STATUS only: attempts not kept, after the first ARB_HISTORY_FIRST
    uint64_t flow;             //  the DAG, group or pipe it belongs to
    const char *ref;           //  its name in the flow
    uint64_t origin;           //  a fan-out copy: the task it copies
    const char *endpoint;      //  a fan-out copy: the worker it is for
    struct {
        arb_response_info_t *v;
        size_t n;
    } responses;            //  a fan-out task: its endpoints' answers (STATUS only)
    arb_bin_t args;         //  its persistent arguments (STATUS only)
    arb_bin_t payload;      //  its payload (STATUS with with_payload only; empty: none)
    uint32_t flow_kind;     //  arb_flow_kind_t of its flow
    const char *flow_name;  //  its flow's name
    bool no_handler;        //  ready, and none of the workers serving its queue handles its name
    struct {
        arb_dep_t *v;
        size_t n;
    } parents;  //  its dependencies: id, ref (the parent's name in its flow), when
} arb_task_info_t;

typedef struct {
    struct {
        arb_task_info_t *v;
        size_t n;
    } tasks;
    bool more;  //  the ids past the tasks answered wait for another STATUS: their
                //  results, with these, would pass ARB_REPLY_BYTES
} arb_status_reply_body_t;

typedef struct {
    uint32_t state;  //  0 any
    const char *queue;
    uint64_t after_id;   //  paging: ids greater than this
    uint32_t limit;      //  0: broker default (1000)
    uint64_t flow;       //  only the tasks of this flow
    uint64_t before_id;  //  paging: ids less than this (0: no bound)
    bool newest;         //  newest first: the page holds the highest ids that match
} arb_list_body_t;

typedef struct {
    struct {
        arb_task_info_t *v;
        size_t n;
    } tasks;
    bool more;  //  more tasks match; ask again with after_id
} arb_list_reply_body_t;

typedef struct {
    arb_ids_t ids;
} arb_watch_body_t;

typedef struct {
    uint32_t watching;  //  ids now watched (finished ones are answered at once by DONE)
    arb_ids_t unknown;  //  ids that name no task
} arb_watching_body_t;

//  One finished task in DONE.
typedef struct {
    uint64_t id;
    uint32_t state;  //  succeeded, dead or cancelled
    uint32_t attempts;
    const char *error;
    zframe_t *result;  //  FRAME
} arb_done_task_t;

typedef struct {
    struct {
        arb_done_task_t *v;
        size_t n;
    } tasks;
} arb_done_body_t;

typedef struct {
    arb_ids_t ids;
    const char *queue;  //  every unfinished task of the queue
    const char *group;  //  every unfinished member of the groups of that name
    uint64_t flow;      //  every unfinished task of this flow
} arb_cancel_body_t;

//  Per-id answer to CANCEL and RETRY.
typedef struct {
    uint64_t id;
    uint32_t code;   //  0 done, or an arb_err_t (404 unknown, 409 not in a state that allows it)
    uint32_t state;  //  the state the task is now in
} arb_outcome_info_t;

typedef struct {
    struct {
        arb_outcome_info_t *v;
        size_t n;
    } tasks;
    uint32_t count;  //  tasks changed (for queue- or group-wide requests)
} arb_cancel_reply_body_t;

typedef struct {
    arb_ids_t ids;
    const char *queue;  //  with all: every dead task of the queue
    bool all;
    uint64_t flow;      //  every task of this flow that died on its own, with its dependents
    const char *group;  //  the same for every group of that name
} arb_retry_body_t;

typedef arb_cancel_reply_body_t arb_retry_reply_body_t;

//  Finished tasks to remove from the journal: the ids, or (all of them
//  finished) those that match state, queue and older_than_ms, looked for
//  among at most ARB_DELETE_MAX tasks after after_id in id order.
typedef struct {
    arb_ids_t ids;           //  at most ARB_DELETE_MAX
    uint32_t state;          //  a final state; 0 any
    const char *queue;       //  NULL any
    uint64_t older_than_ms;  //  finished at least this long ago; 0 any
    uint64_t after_id;       //  paging: ids greater than this
} arb_delete_body_t;

typedef struct {
    struct {
        arb_outcome_info_t *v;  //  per id: 0 deleted (state: the one it had), 404, 409
        size_t n;
    } tasks;
    uint32_t count;    //  tasks deleted
    bool more;         //  there may be more to look at: ask again with after_id = last_id
    uint64_t last_id;  //  the last id looked at
} arb_delete_reply_body_t;

//  STATS pages through the queues (by name) and the workers (by
//  identity); each list of a reply holds at most ARB_STATS_PAGE records.
typedef struct {
    const char *queue;         //  only this queue (and no workers)
    const char *after;         //  queues whose names sort after this one
    const char *after_worker;  //  workers whose identities sort after this one
    uint32_t limit;            //  records per list; 0 or over the page: ARB_STATS_PAGE
} arb_stats_body_t;

#define ARB_STATS_PAGE 1000

typedef struct {
    const char *name;
    const char *identity;  //  hex of the routing id
    uint32_t slots;        //  announced capacity
    uint32_t credit;       //  free slots the broker may still fill
    uint32_t busy;         //  tasks leased now
    uint64_t last_seen_ms;
    arb_strs_t queues;
} arb_worker_stats_t;

//  Per queue: counts by state as a list indexed by state number, and the
//  settings that are set (absent: the default).
typedef struct {
    const char *name;
    arb_ids_t counts;  //  ARB_STATE_MAX + 1 numbers, index = state
    bool paused;
    uint64_t done_last_minute;
    uint64_t oldest_ready_ms;
    uint32_t max_running;      //  0: no limit
    uint32_t rate_per_sec;     //  0: no limit
    uint64_t retention_ms;     //  0: the broker's retention
    const char *on_failure;    //  "head" or "dead"; NULL: retry
    arb_ids_t done_seconds;    //  tasks finished in each of the last 60 seconds, oldest first
    uint32_t consumers;        //  sessions with credit on the queue now
    bool declared;             //  QUEUE declare: listed while empty, until deleted
    uint64_t ready_bytes;      //  payload bytes of its ready tasks (those counts[ready] counts)
    uint64_t max_ready;        //  0: no bound
    uint64_t max_ready_bytes;  //  0: no bound
    const char *overflow;      //  "reject"; NULL: drop-head
    uint64_t dropped;          //  ready tasks its bounds dropped since the broker started
} arb_queue_info_t;

//  Journal commits are counted by time in ARB_COMMIT_BUCKETS buckets: bucket
//  i holds the commits that took more than bound i - 1 and at most bound
//  i microseconds (arb_commit_bound_us); the last one, the slower ones.
#define ARB_COMMIT_BUCKETS 13

typedef struct {
    uint64_t now_ms;
    uint64_t uptime_ms;
    struct {
        arb_queue_info_t *v;
        size_t n;
    } queues;
    struct {
        arb_worker_stats_t *v;
        size_t n;
    } workers;
    //  since the broker started:
    uint64_t submitted;        //  tasks created by SUBMIT
    uint64_t dispatched;       //  attempts handed to workers
    arb_ids_t finished;        //  tasks ended, ARB_STATE_MAX + 1 numbers, index = state
    uint64_t commits;          //  journal commits that wrote something
    uint64_t commit_us;        //  their summed time, µs
    arb_ids_t commit_buckets;  //  ARB_COMMIT_BUCKETS numbers: commits by time
    //  now: what the broker's memory holds
    uint64_t tasks_in_memory;  //  task records (the rest of the open tasks are cold)
    uint64_t tasks_cold;       //  ready tasks only in the journal (arb_queue.h)
    uint64_t watches;          //  (task, client) pairs waiting for a DONE
    bool more;                 //  more queues: ask again with after = the last name
    bool more_workers;         //  more workers: ask again with after_worker = the last identity
} arb_stats_reply_body_t;

typedef struct {
    const char *queue;
    const char *op;            //  "pause" "resume" "purge" "set" "declare" "delete"
    uint32_t max_running;      //  "set": 0 no limit
    uint32_t rate_per_sec;     //  "set": 0 no limit
    uint64_t retention_ms;     //  "set": 0 keep the default
    const char *on_failure;    //  "set": "retry" (default), "head" or "dead"
    uint64_t max_ready;        //  "set": ready tasks kept at most (the oldest dropped); 0 no bound
    uint64_t max_ready_bytes;  //  "set": their payload bytes at most; 0 no bound
    const char *overflow;      //  "set": "drop-head" (default) or "reject" (the new are refused)
    arb_strs_t clear;          //  "set": settings to put back to their default
} arb_queue_body_t;

typedef struct {
    uint64_t count;  //  what the request changed (tasks purged, ...)
} arb_ok_body_t;

//  Limits of one task name across every queue and worker (0: none).
typedef struct {
    const char *name;
    uint32_t max_running;
    uint32_t rate_per_sec;
    arb_strs_t clear;  //  "max_running", "rate_per_sec": remove that limit
} arb_limit_body_t;

//  LIMITS lists the task names that have a limit (LIMIT set them), by
//  name, a page at a time; with name, that one only (none if it has no
//  limit).
typedef struct {
    const char *name;   //  only this name
    const char *after;  //  names that sort after this one
    uint32_t limit;     //  records at most; 0 or over the page: ARB_STATS_PAGE
} arb_limits_body_t;

typedef struct {
    const char *name;
    uint32_t max_running;   //  0: no limit
    uint32_t rate_per_sec;  //  0: no limit
    uint32_t running;       //  tasks of this name running now
} arb_limit_info_t;

typedef struct {
    struct {
        arb_limit_info_t *v;
        size_t n;
    } limits;
    bool more;  //  more names: ask again with after = the last name
} arb_limits_reply_body_t;

typedef struct {
    const char *queue;  //  NULL: every queue
    bool off;           //  stop receiving events
} arb_events_body_t;

//  One state change in EVENT.
typedef struct {
    uint64_t id;
    uint64_t at_ms;
    const char *queue;
    const char *name;
    uint32_t state;
    uint32_t attempt;
    const char *worker;
    const char *error;
} arb_event_info_t;

typedef struct {
    struct {
        arb_event_info_t *v;
        size_t n;
    } events;
    uint64_t dropped;  //  events not delivered to this subscriber before these
} arb_event_body_t;

typedef struct {
    const char *queue;
    uint32_t max;  //  0 means 1
} arb_peek_body_t;

//  One leased task in DISPATCH (also the record PEEK_REPLY uses).
typedef struct {
    const char *name;  //  parent's ref in its DAG
    uint64_t id;
    uint32_t state;
    arb_bin_t result;
    const char *error;  //  a parent that did not succeed: why
} arb_parent_info_t;

typedef struct {
    uint64_t id;
    uint64_t lease;      //  this attempt's lease; RESULT must quote it
    uint32_t attempt;    //  1 for the first
    uint32_t delivered;  //  times handed out before this one (releases, lost leases count)
    uint32_t sub;        //  the CREDIT subscription it was sent for
    const char *queue;
    const char *name;
    uint64_t timeout_ms;
    uint64_t soft_timeout_ms;  //  warn the handler this long after it starts; 0 never
    uint64_t created_ms;
    arb_bin_t headers;
    struct {
        arb_parent_info_t *v;
        size_t n;
    } parents;
    arb_bin_t args;     //  the task's persistent arguments (pipes), if it has any
    zframe_t *payload;  //  FRAME
} arb_dispatch_task_t;

typedef struct {
    struct {
        arb_dispatch_task_t *v;
        size_t n;
    } tasks;
} arb_dispatch_body_t;

typedef arb_dispatch_body_t arb_peek_reply_body_t;

typedef struct {
    const char *op;   //  "get" "set" "del" "list" "cas"
    const char *key;  //  list: the prefix
    arb_bin_t value;
    arb_bin_t expect;   //  cas: the value the key must hold now
    bool absent;        //  cas: the key must not exist now (expect is then ignored)
    bool remove;        //  cas: on a match, delete the key instead of setting value
    const char *after;  //  list: keys that sort after this one
    uint32_t limit;     //  list: items at most; 0 or over the page: ARB_META_PAGE
} arb_meta_body_t;

#define ARB_META_PAGE 10000  //  a Kestrel gateway's fan-out children (10,000) in one page

typedef struct {
    const char *key;
    arb_bin_t value;
} arb_meta_item_t;

typedef struct {
    struct {
        arb_meta_item_t *v;
        size_t n;
    } items;
    bool matched;  //  cas: the key held what was expected, and was changed
    bool more;     //  list: more keys match; ask again with after = the last key
} arb_meta_reply_body_t;

//  A periodic schedule: the body of SCHEDULE (op, and the fields that op
//  takes) and a record of SCHEDULE_REPLY (every field but op). Its tasks
//  are made from the template (queue .. payload) and carry the client key
//  "schedule:NAME:SLOT_MS", so a slot never makes two tasks.
typedef struct {
    const char *op;            //  "add" "list" "remove" "pause" "resume" (SCHEDULE only)
    const char *name;          //  1..ARB_SCHEDULE_NAME_MAX bytes; list: NULL for all
    const char *cron;          //  the cron expression (5 or 6 fields, or @daily ...)
    const char *zone;          //  IANA time zone of the expression; NULL: UTC
    const char *catch_up;      //  slots missed while the broker was down: "none", "one"
                               //  (default: the latest once), "all" (each once, bounded)
    bool paused;               //  reply: paused (no slot fires)
    uint64_t created_ms;       //  reply: when it was added
    uint64_t next_ms;          //  reply: its next slot (Unix ms); 0 when paused or never
    int32_t next_offset_s;     //  reply: the zone's offset from UTC at next_ms, seconds east
    uint64_t last_slot_ms;     //  reply: the last slot that fired (0: none yet)
    uint64_t last_id;          //  reply: the task that slot made
    const char *queue;         //  template: default "default"
    const char *task;          //  template: the task's (handler's) name; add: required
    int32_t priority;          //  template
    uint32_t retries;          //  template
    uint32_t backoff;          //  template: arb_backoff_t
    uint64_t backoff_ms;       //  template
    uint64_t backoff_cap_ms;   //  template
    bool no_jitter;            //  template
    uint64_t timeout_ms;       //  template
    uint64_t soft_timeout_ms;  //  template
    uint64_t retention_ms;     //  template
    zframe_t *payload;         //  FRAME: template (empty unless add, or in a reply)
} arb_schedule_info_t;

typedef arb_schedule_info_t arb_schedule_body_t;

typedef struct {
    struct {
        arb_schedule_info_t *v;
        size_t n;
    } schedules;  //  list: all (by name) or the one named; other ops: the one changed
} arb_schedule_reply_body_t;

//  A task a worker still runs under a lease of an earlier session, and the
//  lease the broker gives it when it takes the task back.
typedef struct {
    uint64_t id;
    uint64_t lease;
    uint64_t ran_ms;  //  REGISTER: how long the worker has run it (0: not said, or a result)
} arb_held_t;

typedef struct {
    const char *name;  //  worker name (fan-out endpoint); default: host.pid
    const char *mode;  //  "light" or "heavy" (shown in stats)
    uint32_t slots;
    uint32_t pid;
    const char *host;
    struct {
        arb_held_t *v;  //  tasks still running from an earlier session
        size_t n;
    } held;
    arb_strs_t handles;  //  the task names it runs; empty: every name
    bool acks;           //  it keeps results until RESULT_OK, and its HEARTBEAT busy
                         //  counts every task it holds (results not acknowledged too)
    bool marks;          //  it reads the marks of the broker's HEARTBEATs and says the
                         //  highest in its own (arb_heartbeat_body_t)
} arb_register_body_t;

typedef struct {
    uint32_t heartbeat_ms;  //  send something at least this often
    uint32_t liveness_ms;   //  silent this long and you are dead
    uint64_t epoch;
    struct {
        arb_held_t *v;  //  held tasks leased again, each with its new lease
        size_t n;
    } adopted;
    uint64_t max_payload;  //  largest result or item the broker keeps, in bytes
} arb_welcome_body_t;

typedef struct {
    uint32_t sub;       //  subscription number, chosen by the worker
    arb_strs_t queues;  //  queues of this subscription (first CREDIT of a sub sets them)
    int32_t credit;     //  added to the subscription's credit; may be negative
    bool cancel;        //  end the subscription (credit goes to zero)
} arb_credit_body_t;

typedef struct {
    const char *queue;
    uint32_t max;  //  lease at most this many now; 0 means 1
} arb_take_body_t;

typedef struct {
    uint64_t id;
    uint64_t lease;
    uint32_t outcome;  //  arb_outcome_t
    const char *error;
    bool routed;       //  EMIT items went out under this lease
    zframe_t *result;  //  FRAME
} arb_result_item_t;

typedef struct {
    struct {
        arb_result_item_t *v;
        size_t n;
    } results;
} arb_result_body_t;

typedef struct {
    uint64_t id;     //  the running task that emits
    uint64_t lease;  //  its lease
    const char *queue;
    const char *name;   //  default: the emitting task's name
    zframe_t *payload;  //  FRAME
} arb_emit_item_t;

typedef struct {
    struct {
        arb_emit_item_t *v;
        size_t n;
    } items;
} arb_emit_body_t;

typedef struct {
    uint32_t busy;  //  worker: tasks running now; with acks, every task it holds
    //  From the broker: every lease of this session up to mark went out in
    //  a message before this one. From a worker: the highest mark it has
    //  read in this session, so that the broker counts against busy only
    //  the leases the worker has had (0: none said)
    uint64_t mark;
} arb_heartbeat_body_t;

typedef struct {
    uint64_t id;
    uint64_t lease;
    uint32_t reason;  //  arb_stop_reason_t
} arb_stop_item_t;

typedef struct {
    struct {
        arb_stop_item_t *v;
        size_t n;
    } tasks;
} arb_stop_body_t;

typedef struct {
    uint8_t unused;
} arb_bye_body_t;

//  The answer to a RESULT of a session registered with acks, after the
//  broker's commit: the tasks whose outcome it stored, and those whose
//  outcome it refused (the lease had ended). Either way the worker may
//  forget them.
typedef struct {
    arb_ids_t stored;
    arb_ids_t refused;
} arb_result_ok_body_t;

//  ---------------------------------------------------------------------
//  Messages.

typedef struct _arb_msg_t arb_msg_t;

//  Limits the decoder applies beyond the fixed ones above.
typedef struct {
    size_t max_frame;  //  largest payload/result frame; 0: ARB_PAYLOAD_DEFAULT_MAX
    //  Largest frame of a RESULT; 0: max_frame. The broker takes results
    //  beyond its payload limit and fails only their tasks, rather than
    //  refusing a whole batch of results.
    size_t max_result;
} arb_limits_t;

//  Creates a message of the given type with a zeroed body.
arb_msg_t *arb_msg_new (arb_msg_type_t type, uint32_t reqid);

//  Destroys a message, with every frame it still owns. Accepts NULL.
void arb_msg_destroy (arb_msg_t **self_p);

arb_msg_type_t arb_msg_type (arb_msg_t *self);
uint32_t arb_msg_reqid (arb_msg_t *self);

//  The body; cast to the type's body struct (or use the typed accessors
//  arb_msg_<name> declared below, which assert the type).
void *arb_msg_body (arb_msg_t *self);

//  Zeroed memory owned by the message, for lists and strings of a body
//  being built. Never fails (out of memory aborts).
void *arb_msg_alloc (arb_msg_t *self, size_t size);

//  A copy of str owned by the message.
const char *arb_msg_strdup (arb_msg_t *self, const char *str);

//  A copy of size bytes owned by the message, as a bin ({NULL, 0} for 0).
arb_bin_t arb_msg_bindup (arb_msg_t *self, const void *data, size_t size);

//  Changes the request id (a message built before its id was known).
void arb_msg_set_reqid (arb_msg_t *self, uint32_t reqid);

//  The ROUTER routing id (broker side): its bytes, in the message (NULL
//  and *size 0 if it has none). Set takes a copy (size 0: none).
const uint8_t *arb_msg_peer (arb_msg_t *self, size_t *size);
void arb_msg_set_peer (arb_msg_t *self, const uint8_t *data, size_t size);

//  The same as a frame, borrowed (made on the first call: the bytes above
//  spare the allocation); NULL if none. Set takes a copy.
zframe_t *arb_msg_routing_id (arb_msg_t *self);
void arb_msg_set_routing_id (arb_msg_t *self, zframe_t *routing_id);

//  Why decoding failed (after arb_msg_decode returned -2), else NULL; and
//  the arb_err_t to answer with (ARB_ERR_TOO_LARGE for an oversized frame).
const char *arb_msg_decode_error (arb_msg_t *self);
arb_err_t arb_msg_decode_code (arb_msg_t *self);

//  Encodes the message into a new zmsg (routing id first if set). The
//  message gives its frames to the zmsg; destroys the message.
zmsg_t *arb_msg_encode (arb_msg_t **self_p);

//  Sends the message and destroys it. Returns 0, or -1 if the socket
//  refused it (message lost), with errno saying why: on a ROUTER with
//  ZMQ_ROUTER_MANDATORY, EHOSTUNREACH (no such peer: it is gone) or
//  EAGAIN (its queue is at the high-water mark).
int arb_msg_send (arb_msg_t **self_p, void *sock);

//  As arb_msg_send, but while the socket cannot take the message's first
//  frame (offered without blocking: nothing of the message is queued
//  yet), calls wait (arg), and offers it again if that returns 0; any
//  other return gives up, -1 with errno EAGAIN. For a sender that must
//  hear of other news while it waits, which a blocking send cannot.
int arb_msg_send_when (arb_msg_t **self_p, void *sock, int (*wait) (void *arg), void *arg);

//  Hands the message's parts (header, body, then payload frames; not the
//  routing id) to put, in order, more saying whether another follows, and
//  destroys the message: for a transport that frames them itself
//  (arb_wire.h). Returns 0, or put's first non-zero answer (the parts
//  after it are not handed over).
typedef int (arb_part_fn) (void *arg, const void *data, size_t size, bool more);
int arb_msg_put (arb_msg_t **self_p, arb_part_fn *put, void *arg);

//  Decodes a message from parts a transport gathered: its routing id
//  (taken; routing_id_p NULL for a message without one, as a DEALER
//  receives it), header and body (borrowed; NULL if missing) and payload
//  frames (the n frames are taken, the array stays the caller's). Returns
//  as arb_msg_decode, routed when routing_id_p is given.
int arb_msg_decode_from (zframe_t **routing_id_p,
                         const uint8_t *header,
                         size_t header_size,
                         const uint8_t *body,
                         size_t body_size,
                         zframe_t **frames,
                         size_t n,
                         const arb_limits_t *limits,
                         arb_msg_t **msg_p);

//  Decodes a received multipart message; takes ownership of it. routed is
//  true on a ROUTER (first frame is the routing id). Returns 0 and a
//  message in *msg_p; or -2 for malformed input, with *msg_p set to a
//  message that carries what could be read (routing id, request id, type
//  if known) and arb_msg_decode_error() saying why, so the caller can reply; or
//  -2 with *msg_p NULL if not even the routing id could be read.
int arb_msg_decode (zmsg_t **zmsg_p, bool routed, const arb_limits_t *limits, arb_msg_t **msg_p);

//  Receives and decodes one message. Returns as arb_msg_decode, or -1 if
//  nothing could be received (errno EAGAIN: nothing waiting within the
//  socket's receive timeout; EINTR: interrupted).
int arb_msg_recv (void *sock, const arb_limits_t *limits, arb_msg_t **msg_p);

//  The same, routed saying whether the socket is a ROUTER (no need to ask
//  it), and with the connection's User-Id (CURVE: the peer's public key,
//  as ZAP gave it) copied into user_id, empty if none (user_id NULL: not
//  asked). Reads the parts straight from libzmq, without a zmsg.
int arb_msg_recv_from (void *sock,
                       bool routed,
                       const arb_limits_t *limits,
                       arb_msg_t **msg_p,
                       char *user_id,
                       size_t user_id_size);

//  Builds an ERROR reply to a request (same routing id and request id).
arb_msg_t *arb_msg_new_error (arb_msg_t *request, arb_err_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Builds an empty reply of the given type to a request.
arb_msg_t *arb_msg_new_reply (arb_msg_t *request, arb_msg_type_t type);

//  Name of a message type ("SUBMIT"), or NULL if unknown.
const char *arb_msg_type_name (int type);

//  The type of the broker's reply to a request of the given type (besides
//  ERROR, which may answer any request): SUBMITTED for SUBMIT, DISPATCH for
//  TAKE, ... Returns 0 for a type the broker does not answer (DONE,
//  RESULT, HEARTBEAT, ...; a worker verb from an unknown peer still gets
//  ERROR 410).
arb_msg_type_t arb_msg_reply_type (arb_msg_type_t request);

//  Name of a state ("ready"), or "?"; and back (-1 if unknown).
const char *arb_state_name (int state);
int arb_state_parse (const char *name);

//  Copies an error text of len bytes into dest (room for ARB_TEXT_MAX + 1
//  bytes) as a wire string: cut to ARB_TEXT_MAX bytes, a NUL inside
//  becomes '.', and it is made valid UTF-8 as arb_text_clean does.
void arb_text_copy (char *dest, const char *text, size_t len);

//  Makes a text valid UTF-8 in place: a byte that does not start a
//  well-formed character becomes '?', and a character cut short at the end
//  is dropped.
void arb_text_clean (char *text);

//  Upper bound in µs of journal-commit bucket i (UINT64_MAX for the last).
uint64_t arb_commit_bound_us (size_t bucket);

//  Whether a state is final (succeeded, dead, cancelled, skipped).
bool arb_state_is_final (int state);

//  A schedule's template is the task_spec options a periodic task takes:
//  queue, name (the schedule's task), priority, retries, backoff,
//  backoff_ms, backoff_cap_ms, no_jitter, timeout_ms, soft_timeout_ms,
//  retention_ms. These
//  copy them from one record to the other (strings borrowed as they are;
//  the payload frame is left alone).
void arb_schedule_info_to_spec (const arb_schedule_info_t *info, arb_task_spec_t *spec);
void arb_schedule_info_from_spec (arb_schedule_info_t *info, const arb_task_spec_t *spec);

//  Whether a task can rest in the state: every state but failed, which
//  only events tell (a failed attempt leaves its task scheduled, for a
//  retry, or dead). LIST and the counts of STATS know these states only.
bool arb_state_is_resting (int state);

//  Names — queues, task names, client keys, worker names, refs, endpoints,
//  flow and group names — are printable UTF-8: valid UTF-8 without
//  control characters (C0, DEL, C1), so that they stay on their line in
//  listings, logs and JSON. The decoder refuses such a name in what a peer
//  sends the broker (400, naming the field); senders check before sending.
//  Checks len bytes of text. Returns 0, or -1 with the reason in why
//  ("control character 0x0a at byte 2", "invalid UTF-8 at byte 5").
int arb_name_check (const char *text, size_t len, char *why, size_t size);
//  Whether len bytes of text are a name: 1 to ARB_NAME_MAX bytes that
//  arb_name_check takes (a NUL is a control character).
bool arb_name_is_valid (const char *text, size_t len);

//  Length (1..4) of the valid UTF-8 character at p, of at most left bytes;
//  0 if none starts there (a stray byte, an overlong form, a surrogate, a
//  code point beyond U+10FFFF, a character cut short). left must be > 0.
size_t arb_utf8_len (const uint8_t *p, size_t left);

//  How many of text's first bytes to keep to keep at most max of them,
//  not cutting a UTF-8 character: strlen (text) if it fits.
size_t arb_utf8_cut (const char *text, size_t max);

//  Typed body accessors: arb_msg_submit (msg) returns arb_submit_body_t *.
#define ARB_X(NAME, NUM, lower) arb_##lower##_body_t *arb_msg_##lower (arb_msg_t *self);
ARB_MSG_LIST (ARB_X)
#undef ARB_X

//  Appends n zeroed records to a list field of a body being built and
//  returns a pointer to the first new one. list is the address of the
//  list struct ({T *v; size_t n}); size is sizeof (T).
void *arb_msg_grow (arb_msg_t *self, void *list, size_t size, size_t n);

#endif
