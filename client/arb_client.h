/*  arb_client.h — the arbiter client API (libarbiter).

    One arb_client_t is one ZeroMQ DEALER socket connected to the broker,
    with a random routing id of its own: that identity is the client's
    result channel, so the results of tasks it watches come back to it and
    to nobody else, and they still find it after a reconnect. A client is
    not thread-safe: use one per thread.

    Two ways to talk:

    - Synchronous calls send one request (or a few, paging) and wait for
      each reply with the same request id, at most the request timeout
      (default 5 s): a call for each verb a program needs (ping, submit,
      watch, status, list, a flow's tasks, cancel, retry, stats, peek), so
      that it never builds or reads a message itself, and arb_client_request
      for any other. A reply that arrives after its request timed
      out is dropped. Anything else that arrives meanwhile (DONE, EVENT,
      replies to asynchronous requests) is kept for arb_client_next and
      arb_client_recv.
    - Asynchronous building blocks (send, recv) for pipelining producers
      and the gateway: send returns at once; recv hands out every incoming
      message in order.

    Watching. Each watched task is reported once by arb_client_next when
    it ends (succeeded, dead or cancelled). Watches live in the broker's
    memory only, so while the client has watched ids without an answer it
    keeps them alive by itself, from inside whichever call is waiting on
    the socket: it pings the broker every rewatch interval (2 s) and sends
    WATCH again for every outstanding id when the broker's epoch changes
    (the broker restarted) or when nothing at all has arrived for a whole
    interval (a DONE may have been lost). The broker treats a repeated
    WATCH as idempotent and reports finished tasks again; the client drops
    the duplicates, so each task comes out of arb_client_next exactly once.

    Requests the client sends on its own (those PINGs and WATCHes) use
    request ids with the top bit set; the caller's ids start at 1 and
    increase, and never reach that bit in practice.

    Errors: calls that can fail return -1 or NULL and leave a sentence in
    arb_client_error (the broker's reason for an ERROR reply, or a local
    one: timeout, refused input) and the broker's code in
    arb_client_error_code (0 for local failures). ARB_ERR_JOURNAL_FULL
    (507) says the broker's disk is full: it changed nothing and serves
    reads; the same call works again once space is freed (the broker
    finds out by itself). The library never prints;
    it logs only the unusual (a broker restart, a malformed message) through
    zsys_*, which writes to stdout unless the program calls
    zsys_set_logstream (the arbiter CLI sends it to stderr).
*/

#ifndef ARB_CLIENT_H
#define ARB_CLIENT_H

#include "arb_dealer.h"
#include "arb_proto.h"
#include "arb_watchlist.h"

#define ARB_CLIENT_ENDPOINT   ARB_DEALER_ENDPOINT        //  without an endpoint or $ARBITER_BROKER
#define ARB_CLIENT_TIMEOUT_MS 5000                       //  default request timeout
#define ARB_CLIENT_REWATCH_MS ARB_WATCHLIST_INTERVAL_MS  //  default keep-alive interval of watches

//  The most endpoints one fan-out task may name: the codec's limit on
//  task_spec.endpoints.
#define ARB_CLIENT_ENDPOINTS_MAX ARB_ENDPOINTS_MAX

typedef struct _arb_client_t arb_client_t;

//  One finished task, from arb_client_next. Owned by the caller.
typedef struct {
    uint64_t id;
    int state;  //  ARB_STATE_SUCCEEDED, _DEAD, _CANCELLED, or ARB_DONE_UNKNOWN (arb_watchlist.h)
    uint32_t attempts;  //  attempts started
    char *error;        //  owned; NULL when there is none
    zframe_t *result;   //  owned; the result bytes (empty unless succeeded); NULL if unknown
} arb_done_t;

//  Creates a client and starts connecting to endpoint (NULL: the
//  environment variable ARBITER_BROKER, else ARB_CLIENT_ENDPOINT). With
//  ARBITER_CERT and ARBITER_BROKER_KEY in the environment it is a CURVE
//  client of a broker that runs with --curve, as arb_client_new_curve
//  makes it. Never blocks and never waits for the broker. Returns NULL
//  only if the endpoint is malformed (zmq_strerror (zmq_errno ()) says
//  how) or those variables name no usable certificate and key (logged;
//  errno EINVAL).
arb_client_t *arb_client_new (const char *endpoint);

//  Creates a client as arb_client_new does, with this certificate and
//  broker key (borrowed; arb_curve.h) for a broker that runs with
//  --curve, or without CURVE if curve is NULL; the environment's
//  ARBITER_CERT and ARBITER_BROKER_KEY do not count. A broker whose
//  handshake refuses the client never answers: a call that waits for it
//  fails as soon as the refusal is seen, not at the timeout, with "broker
//  ENDPOINT refused the connection: " and why (no certificate, one the
//  broker does not allow, a wrong key, a certificate for a broker without
//  CURVE); one that times out first says why too, if it can. Returns NULL
//  only if the endpoint is malformed.
arb_client_t *arb_client_new_curve (const char *endpoint, const arb_curve_t *curve);

//  Destroys the client and its socket at once: messages still queued for
//  the broker are dropped, so wait for the replies you need first. Accepts
//  NULL; nulls the caller's pointer.
void arb_client_destroy (arb_client_t **self_p);

//  The endpoint this client connects to (borrowed).
const char *arb_client_endpoint (arb_client_t *self);

//  How long a synchronous call waits for its reply, in ms (> 0; default
//  ARB_CLIENT_TIMEOUT_MS). Also bounds a send when the outgoing queue is
//  full, and how long arb_client_next waits for a silent broker.
void arb_client_set_timeout (arb_client_t *self, int timeout_ms);

//  Keep-alive interval of watches, in ms (> 0; default ARB_CLIENT_REWATCH_MS).
void arb_client_set_rewatch (arb_client_t *self, int interval_ms);

//  Largest payload arb_client_submit accepts, in bytes (default
//  ARB_PAYLOAD_DEFAULT_MAX; match the broker's --max-payload). Replies are
//  not limited: the broker already applied its limit to every result.
void arb_client_set_max_payload (arb_client_t *self, size_t bytes);

//  Why the last call failed (borrowed, valid until the next call), or NULL
//  if it succeeded — or if arb_client_next / arb_client_recv merely timed
//  out.
const char *arb_client_error (arb_client_t *self);

//  The broker's arb_err_t of the last failure, or 0 for a local one
//  (timeout, unreachable broker, refused before sending, interrupted).
int arb_client_error_code (arb_client_t *self);

//  Pings the broker; stores its epoch (boot count) in *epoch if not NULL.
//  Returns 0, or -1 if it did not answer within the timeout.
int arb_client_ping (arb_client_t *self, uint64_t *epoch);

//  Submits n tasks in one SUBMIT, all or nothing. Takes the payload frame
//  of every spec (the specs' payload pointers are NULL afterwards, even on
//  failure); strings and other fields stay the caller's. On success stores
//  each task's id in ids[i] and, if existing is not NULL, in existing[i]
//  whether its key was known already (ids[i] is then the first task's).
//  With watch, the tasks are also watched (the broker watches them as part
//  of the submit; arb_client_next reports them). Returns 0, or -1: refused
//  locally before sending (a payload over the limit, a missing name, a name
//  over ARB_NAME_MAX or not printable UTF-8 (arb_name_check); code 0),
//  refused by the broker (its code and reason), or not acknowledged in time
//  — then the outcome is unknown, and submitting again with the same keys
//  is the safe way to find out.
int arb_client_submit (arb_client_t *self,
                       arb_task_spec_t *specs,
                       size_t n,
                       bool watch,
                       uint64_t *ids,
                       bool *existing);

//  Submits n tasks as one flow of the given kind (ARB_FLOW_DAG, _GROUP or
//  _PIPE; ARB_FLOW_NONE makes it a plain batch), all or nothing, as
//  arb_client_submit does (the same ownership of the specs and the same
//  failures). name (NULL: none) names the flow; a group's name is what
//  `CANCEL {group}` finds it by. Dependencies (after, ref, input) are
//  checked by the broker, which refuses a cycle or a dependency on nothing
//  (422, the tasks named in the reason). On success stores each task's id
//  in ids[i] (for a key known already, the first task's, which keeps the
//  flow it was submitted with) and the flow's id in *flow if not NULL (0
//  for ARB_FLOW_NONE). Returns 0 or -1.
int arb_client_submit_flow (arb_client_t *self,
                            arb_flow_kind_t kind,
                            const char *name,
                            arb_task_spec_t *specs,
                            size_t n,
                            bool watch,
                            uint64_t *ids,
                            uint64_t *flow);

//  Whether the task at index of the last submit that succeeded
//  (arb_client_submit, arb_client_submit_flow) was refused by its queue:
//  a queue with overflow reject at its bound stores it cancelled at once
//  ("refused: ..." its error), and the submit still succeeds. false for
//  an index past that submit's tasks, or before any.
bool arb_client_submit_refused (arb_client_t *self, size_t index);

//  Called with each task of a listing; the task and everything it points
//  to are borrowed for the call only. Returns 0 to go on, else stops.
typedef int (arb_client_task_fn) (void *arg, arb_task_info_t *task);

//  Lists the tasks that match filter's state, queue and flow (0 / NULL:
//  any; its after_id and limit are not used) in id order, asking the
//  broker page by page, and calls fn for each, at most max tasks (0: no
//  limit). The tasks are LIST's: without result and history, and for an
//  unfinished task without its key, ref, origin and error (the broker
//  knows those of final tasks only; arb_client_flow_each gives them all).
//  Returns 0 when every match was given, 1 when more remain (max reached
//  or fn stopped), -1 on failure.
int arb_client_list (arb_client_t *self,
                     const arb_list_body_t *filter,
                     uint64_t max,
                     arb_client_task_fn *fn,
                     void *arg);

//  Calls fn for each of the n tasks ids names, in that order, as STATUS
//  tells them: state, times, worker, error, result, every attempt, a
//  fan-out task's responses, its flow and name there. A task the broker
//  does not know (never was, or past its retention) comes with found
//  false and only its id set. Asks in chunks of a few hundred ids (each
//  result may be 16 MiB). Returns 0, 1 if fn stopped, or -1 on failure.
int arb_client_status (
    arb_client_t *self, const uint64_t *ids, size_t n, arb_client_task_fn *fn, void *arg);

//  Calls fn for each task of a flow, in id order, as arb_client_status
//  tells it: LIST by flow finds the ids, STATUS the rest. The flow's tasks
//  include the copies of its fan-out tasks (origin set) and the tasks its
//  tasks emitted (no ref). A flow nobody knows has no tasks; so has one
//  whose tasks all passed their retention. Returns 0, 1 if fn stopped, or
//  -1 on failure.
int arb_client_flow_each (arb_client_t *self, uint64_t flow, arb_client_task_fn *fn, void *arg);

//  Cancels the tasks what->ids (at most ARB_IDS_MAX), or every unfinished
//  task of the queue what->queue, of the groups named what->group, or of
//  the flow what->flow (one of them). A running task is stopped on its
//  worker; a group's finalizer and a task that waits `always` still run.
//  With ids, outcomes (room for what->ids.n, or NULL) gets each id's
//  answer in the same order: code 0 (cancelled), ARB_ERR_NOT_FOUND, or
//  ARB_ERR_CONFLICT (it had finished: a no-op), and the state it is in
//  now. *count (if not NULL) gets the number of tasks cancelled. Returns 0
//  once the broker answered, whatever the outcomes, or -1 (a group or
//  flow that does not exist too: ARB_ERR_NOT_FOUND, nothing cancelled).
int arb_client_cancel (arb_client_t *self,
                       const arb_cancel_body_t *what,
                       arb_outcome_info_t *outcomes,
                       uint32_t *count);

//  Gives dead (or cancelled) tasks a new round of attempts: what->ids, or
//  with what->all every dead task of what->queue. Answers as
//  arb_client_cancel (ARB_ERR_CONFLICT: not dead or cancelled).
int arb_client_retry (arb_client_t *self,
                      const arb_retry_body_t *what,
                      arb_outcome_info_t *outcomes,
                      uint32_t *count);

//  Called with the broker's statistics: per queue the counts by state
//  (counts.v[state]), tasks done in the last minute, the oldest ready
//  task's age, whether it is paused or declared, its consumers; per
//  worker its slots, busy slots, credit and queues. Every queue and
//  worker, whatever the number of pages they took. Borrowed for the call
//  only.
typedef void (arb_client_stats_fn) (void *arg, arb_stats_reply_body_t *stats);

//  Asks the broker for its statistics, page after page
//  (arb_stats_pages.h), and calls fn once with them all. Returns 0, or -1
//  (fn not called).
int arb_client_stats (arb_client_t *self, arb_client_stats_fn *fn, void *arg);

//  Called with each task at the head of a queue: id, attempt it would
//  be, name, timeout, created time, payload (task->payload, a frame); no
//  lease (0): nothing is taken. Borrowed for the call only. Returns 0 to
//  go on, else stops.
typedef int (arb_client_peek_fn) (void *arg, arb_dispatch_task_t *task);

//  Calls fn for each of the next max ready tasks of queue (0 means 1; the
//  broker shows at most 1000), in the order they would be handed out,
//  without taking them. Returns 0, 1 if fn stopped, or -1 on failure (an
//  unknown queue has no tasks).
int arb_client_peek (
    arb_client_t *self, const char *queue, uint32_t max, arb_client_peek_fn *fn, void *arg);

//  Watches n tasks: each is reported once by arb_client_next when it ends
//  (at once if it has ended already). Ids the broker does not know come out
//  of arb_client_next with state ARB_DONE_UNKNOWN. Returns 0 once the broker
//  answered, or -1; the ids stay watched even then, and the client keeps
//  sending WATCH for them until the broker answers.
int arb_client_watch (arb_client_t *self, const uint64_t *ids, size_t n);

//  Number of watched tasks not reported yet (queued reports not counted).
size_t arb_client_watching (arb_client_t *self);

//  The next finished watched task; the caller owns it. Waits at most
//  timeout_ms (-1: no limit). Returns NULL with arb_client_error NULL on
//  timeout; NULL with an error if nothing is outstanding (no watched task
//  and no pending submit with watch: it would wait forever), if the broker
//  has not answered the client's keep-alive for the request timeout
//  (unreachable; calling again tries again), if the broker refused the
//  keep-alive with 403 (arb_client_error_code: this certificate was
//  removed from the broker's allowed folder or lost its role, and the
//  broker dropped its watches; the error is its reason), or if
//  interrupted (SIGINT).
arb_done_t *arb_client_next (arb_client_t *self, int timeout_ms);

//  Destroys a finished-task report. Accepts NULL; nulls the pointer.
void arb_done_destroy (arb_done_t **self_p);

//  Creates a request of the given type carrying this client's next request
//  id. Every request given to arb_client_request or arb_client_send must
//  come from here (the codec fixes a message's id when it is created).
//  Fill the body with arb_msg_<type> (msg).
arb_msg_t *arb_client_request_new (arb_client_t *self, arb_msg_type_t type);

//  Sends a request and waits for its reply; takes the request (nulls
//  *request_p, even on failure). Returns the reply, owned by the caller,
//  whose body the caller reads with arb_msg_<type> (reply) — its type is
//  checked to be the one that answers the request. Returns NULL if the
//  broker answered ERROR (code and reason in arb_client_error_code and
//  arb_client_error) or did not answer within the timeout. Works for every
//  client request, SUBMIT and WATCH included (their watches are tracked).
arb_msg_t *arb_client_request (arb_client_t *self, arb_msg_t **request_p);

//  Sends a request without waiting; takes it. Returns its request id, whose
//  reply arb_client_recv will hand out, or 0 if it could not be sent within
//  the timeout (the request is lost).
uint32_t arb_client_send (arb_client_t *self, arb_msg_t **request_p);

//  The next incoming message of any kind, in order of arrival: replies to
//  arb_client_send requests, DONE (watched tasks only, duplicates removed;
//  do not mix with arb_client_next unless you want the remainder of a DONE
//  it has started on), EVENT, and whatever else the broker sends with
//  request id 0. Waits at most timeout_ms (-1: no limit); NULL on timeout
//  (arb_client_error NULL) or if interrupted (error set). The caller owns
//  the message.
arb_msg_t *arb_client_recv (arb_client_t *self, int timeout_ms);

#endif
