/*  arb_link.h — a non-blocking session with the broker, client and worker
    at once, for programs with an event loop of their own (the gateway).

    One arb_link_t is one DEALER socket to the broker. Over it the link is
    a client (submit, watch, cancel, peek, status, ... : requests whose
    replies come back to a callback, tagged with the request id) and a
    worker (it registers, keeps the session alive, holds the tasks the
    broker leases to it, and reports their outcomes). Nothing blocks: every
    call returns at once, and everything that arrives is handled by
    arb_link_handle, which calls the callbacks. docs/link.md tells the
    contract at length; this header is the API.

    Threads. A link is used by one thread, the one that runs its loop;
    callbacks run on it, inside arb_link_handle (and the reply callback
    inside arb_link_handshake) and nowhere else. They may call any
    function of the link except arb_link_handle, arb_link_handshake and
    arb_link_destroy.

    Transport. To a tcp:// endpoint without CURVE the link keeps a
    connection of its own (arb_dial.h: ZMTP spoken from the caller's
    thread, no ZeroMQ I/O thread on the way); to any other endpoint, with
    CURVE, or when $ARBITER_LINK_TRANSPORT is "zmq", a ZeroMQ DEALER
    (arb_dealer.h). The broker sees the same peer either way.

    Polling. Poll arb_link_fd (poll, epoll, zmq_poll as a plain
    descriptor) for input; on input, and when arb_link_timeout says, call
    arb_link_handle. With a DEALER it is ZeroMQ's edge-triggered ZMQ_FD
    (readable when ZeroMQ's state changed, not when a message waits), and
    arb_link_sock may be polled instead; on its own connection it is an
    epoll descriptor, readable while input waits. Before the loop sleeps,
    always ask arb_link_timeout (0: handle at once): it checks what the
    descriptor cannot show (messages left after a batch, requests,
    outcomes and credit waiting to go out, the link's timers: heartbeats,
    registering, request timeouts). With a DEALER, poll arb_link_events
    too, and call arb_link_handshake when it has input: a broker that
    refuses the link's handshake then fails the pending requests at once
    (on its own connection, arb_link_handle does).

    Requests. Every request call returns its request id (> 0) at once, or 0
    if it was refused (arb_link_error says why). Each request id comes
    back exactly once through the reply callback: with the broker's reply,
    with the broker's ERROR, or with a local ERROR (code 0) when the broker
    did not answer within the request timeout (default
    ARB_LINK_TIMEOUT_MS) or the link dropped the connection the request
    went out on (the broker stopped answering). A local ERROR means the
    outcome is unknown: a SUBMIT may or may not have been stored (submit
    again with the same keys to be safe). The exception: while no session
    is up, a broker that refused the link's handshake (no certificate
    where it wants one, one it does not allow, a wrong key, a certificate
    where it runs without --curve) fails the pending requests at once
    with "broker ENDPOINT refused the connection: " and why; none of them
    reached it.

    Back-pressure: a request is refused, never queued in the link, when
    ARB_LINK_PENDING_MAX requests await replies or the queue to the
    broker is full (ARB_LINK_SNDHWM messages in a DEALER's, ARB_DIAL_OUT_MAX
    bytes on its own connection): answer your own client with
    a temporary error (503, SERVER_ERROR) and try again later.

    Consumers and tasks. A consumer is a CREDIT subscription of its own on
    one or more queues: the broker sends it at most the credit it was
    given, each task to the consumer's dispatch callback. A task TAKE
    leases comes with TAKE's reply (a DISPATCH). Either way the task is
    then held by the link until the caller completes, fails or releases it
    by its id; the outcomes of a turn go out together in one RESULT, with
    the next arb_link_handle or arb_link_flush. Credit is the caller's to
    give back: settling a task does not add any (an AMQP consumer adds one
    per ack, a Kestrel get gives one per open read).

    Broker restarts. The link registers again when the broker answers 410
    or has been silent past its liveness window (then on a fresh
    connection). The new REGISTER claims every task held, settled or not;
    those the broker gives back go on under their new lease, unseen by the
    caller (it keeps using the task id), and their outcomes go out then;
    the others are no longer ours: the stop callback names them with
    reason ARB_LINK_LOST. Every consumer's CREDIT is sent again with the
    credit the broker had left (its credit minus the tasks dispatched on
    it), and watched tasks are watched again (arb_watchlist), so each is
    still reported once. The state callback says when the session is up
    (registered) and when it is lost.

    Bounds. Requests awaiting replies: ARB_LINK_PENDING_MAX. Tasks held
    plus credit given plus tasks asked for by pending TAKEs:
    ARB_LINK_HELD_MAX (add_credit and take refuse beyond it). Consumers:
    ARB_LINK_CONSUMERS_MAX. Messages queued for the broker: ARB_LINK_SNDHWM
    (a DEALER), ARB_DIAL_OUT_MAX bytes (its own connection).
    What the broker sends is received without limit (a full queue would
    make it drop DISPATCH and DONE messages): replies are bounded by the
    requests, DISPATCH by the credit, DONE by the watches; only EVENT
    (after an EVENTS request) is not bounded, so subscribe to events only
    at a rate the loop keeps up with.
*/

#ifndef ARB_LINK_H
#define ARB_LINK_H

#include "arb_curve.h"
#include "arb_proto.h"
#include "arb_watchlist.h"

#define ARB_LINK_TIMEOUT_MS    5000    //  default request timeout
#define ARB_LINK_PENDING_MAX   10000   //  requests awaiting replies
#define ARB_LINK_HELD_MAX      65536   //  tasks held + credit given + tasks asked for by TAKEs
#define ARB_LINK_CONSUMERS_MAX 10000   //  consumers at once
#define ARB_LINK_SNDHWM        100000  //  messages queued in ZeroMQ for the broker
#define ARB_LINK_RECV_BATCH    1000    //  messages one arb_link_handle takes at most

//  The stop callback's reason for a task whose lease ended while the broker
//  was away and that the broker did not give back (besides the broker's
//  ARB_STOP_TIMEOUT and ARB_STOP_CANCEL).
#define ARB_LINK_LOST 3

typedef struct _arb_link_t arb_link_t;

//  The answer to request reqid: the broker's reply (type: the request's
//  reply type, see arb_msg_reply_type), or an ERROR (code 0: a local one,
//  the outcome is unknown). For TAKE the reply is a DISPATCH whose tasks
//  the link now holds for the caller (possibly none). The callback may
//  take the message (and null *reply_p); else it is destroyed after.
typedef void (arb_link_reply_fn) (arb_link_t *link, uint32_t reqid, arb_msg_t **reply_p, void *arg);

//  A task dispatched to consumer sub: the link holds it until the caller
//  settles it by task->id. The record is borrowed for the call; the caller
//  may take task->payload (and null it).
typedef void (arb_link_dispatch_fn) (arb_link_t *link,
                                     uint32_t sub,
                                     arb_dispatch_task_t *task,
                                     void *arg);

//  A watched task ended (succeeded, dead, cancelled, or ARB_DONE_UNKNOWN:
//  the broker knows no such task), reported once per watched id. The
//  record is borrowed; the caller may take task->result (and null it).
typedef void (arb_link_done_fn) (arb_link_t *link, arb_done_task_t *task, void *arg);

//  A held task is no longer the caller's: ARB_STOP_TIMEOUT (its timeout
//  passed), ARB_STOP_CANCEL (cancelled), or ARB_LINK_LOST (its lease ended
//  while the broker was away, and the broker did not give it back). Its
//  outcome, if the caller already gave one, was not taken. Settling it now
//  fails.
typedef void (arb_link_stop_fn) (arb_link_t *link, uint64_t id, int reason, void *arg);

//  State changes of the broker's tasks, after an EVENTS request. Borrowed.
typedef void (arb_link_event_fn) (arb_link_t *link, arb_event_body_t *event, void *arg);

//  The session came up (registered: consumers get tasks) or went down (the
//  broker restarted, stopped answering, or forgot us; the link is
//  registering again).
typedef void (arb_link_state_fn) (arb_link_t *link, bool up, void *arg);

//  The broker refused the link's REGISTER with 403: this certificate's
//  role may not register (or it was removed from the broker's allowed
//  folder); or, once registered, shut it out (a message of its session
//  refused with 403: the certificate removed or its role changed since;
//  the broker gives its leases back once it is silent for the liveness
//  window). reason is the broker's (borrowed for the call). Called once,
//  not at every refusal after it, until a WELCOME. The link goes on
//  registering (every 2 s), in case the certificate gets the role.
typedef void (arb_link_forbidden_fn) (arb_link_t *link, const char *reason, void *arg);

//  The callbacks; any of them may be NULL (what it would get is dropped).
//  (forbidden is set apart, arb_link_set_forbidden: a field added here
//  would change the struct programs built against the library pass.)
typedef struct {
    arb_link_reply_fn *reply;
    arb_link_done_fn *done;
    arb_link_stop_fn *stop;
    arb_link_event_fn *event;
    arb_link_state_fn *state;
} arb_link_callbacks_t;

//  ---------------------------------------------------------------------
//  The link.

//  Creates a link to endpoint (NULL: $ARBITER_BROKER, else
//  ARB_DEALER_ENDPOINT) that registers as worker name (NULL: "host.pid";
//  the name fan-out tasks use) and calls the callbacks (copied) with arg.
//  It starts connecting and registering at once and never waits. With
//  ARBITER_CERT and ARBITER_BROKER_KEY in the environment it is a CURVE
//  client of a broker that runs with --curve, as arb_link_new_curve makes
//  it. Returns NULL if the endpoint is malformed, name is longer than
//  ARB_NAME_MAX, or those variables name no usable certificate and key
//  (logged).
arb_link_t *arb_link_new (const char *endpoint,
                          const char *name,
                          const arb_link_callbacks_t *callbacks,
                          void *arg);

//  Creates a link as arb_link_new does, with this certificate and broker
//  key (borrowed; arb_curve.h) for a broker that runs with --curve, or
//  without CURVE if curve is NULL; the environment's ARBITER_CERT and
//  ARBITER_BROKER_KEY do not count. A link whose handshake the broker
//  refuses logs why each time it connects again, and fails its pending
//  requests at once (see Polling and Requests at the top).
arb_link_t *arb_link_new_curve (const char *endpoint,
                                const char *name,
                                const arb_link_callbacks_t *callbacks,
                                void *arg,
                                const arb_curve_t *curve);

//  Destroys the link: sends the outcomes that wait and a BYE (the broker
//  then puts the tasks still held back at the head of their queues, no
//  attempt counted), if the session is up and ZeroMQ takes them at once,
//  and closes the socket. Pending requests get no callback. Accepts NULL;
//  nulls the caller's pointer. Not from a callback.
void arb_link_destroy (arb_link_t **self_p);

//  The DEALER socket to poll for input, when the link talks through
//  ZeroMQ (borrowed; the same for the link's life); NULL when it has a
//  connection of its own (see the top): poll arb_link_fd then.
zsock_t *arb_link_sock (arb_link_t *self);

//  The descriptor to poll for input, with either transport (see the
//  top); the same for the link's life.
int arb_link_fd (arb_link_t *self);

//  With a DEALER, the socket its handshake events arrive on (borrowed;
//  the same for the link's life), to poll beside it; NULL on the link's
//  own connection, or if libzmq cannot watch the DEALER.
zsock_t *arb_link_events (arb_link_t *self);

//  Reads the handshake events that came (call it when arb_link_events
//  has input; it is quiet again after). While no session is up, a broker
//  that refused the handshake fails the pending requests at once (reply
//  callback, a local ERROR). Not from a callback.
void arb_link_handshake (arb_link_t *self);

//  Receives and handles what is waiting (up to ARB_LINK_RECV_BATCH
//  messages), runs the link's timers and sends what the turn produced
//  (outcomes, credit, heartbeats). Never blocks; calls the callbacks.
void arb_link_handle (arb_link_t *self);

//  Milliseconds until arb_link_handle must run again: 0 if it has work
//  now (messages left, outcomes or credit to send), else the time to the
//  next timer. Ask before every sleep of the loop.
int arb_link_timeout (arb_link_t *self);

//  Sends now the outcomes and credit the caller gave since the last
//  handle, if the session is up (else they wait for it).
void arb_link_flush (arb_link_t *self);

//  Whether the session is up: registered, consumers served.
bool arb_link_is_up (arb_link_t *self);

//  Whether the session is up and, on the link's own connection, that
//  connection is open now (a broker that died leaves the session up until
//  its liveness window passes, while the connection is made again): what
//  is sent now reaches the broker, unless it stops answering. A DEALER
//  does not tell: as arb_link_is_up.
bool arb_link_is_open (arb_link_t *self);

//  The worker name its REGISTER gives (the one asked for, or host.pid)
//  and this host's name, as the broker's STATS shows them (borrowed).
const char *arb_link_name (arb_link_t *self);
const char *arb_link_host (arb_link_t *self);

//  Why the last call that could fail failed (borrowed, valid until the
//  next call), or NULL if it succeeded.
const char *arb_link_error (arb_link_t *self);

//  Request timeout in ms (> 0; default ARB_LINK_TIMEOUT_MS); applies to
//  requests already pending too.
void arb_link_set_timeout (arb_link_t *self, int timeout_ms);

//  Largest payload arb_link_submit accepts, in bytes (default
//  ARB_PAYLOAD_DEFAULT_MAX; match the broker's --max-payload).
void arb_link_set_max_payload (arb_link_t *self, size_t bytes);

//  The largest payload a submit may carry: the one set, or the broker's
//  --max-payload (its WELCOME says it) if smaller: the broker refuses a
//  whole SUBMIT with a larger one.
size_t arb_link_max_payload (arb_link_t *self);

//  Keep-alive interval of watches, in ms (> 0; default
//  ARB_WATCHLIST_INTERVAL_MS).
void arb_link_set_rewatch (arb_link_t *self, int interval_ms);

//  Registers the link as a relay (REGISTER mode "relay"): it hands its
//  tasks to clients of its own, as arbiter-gateway does, so a task it
//  loses with its session is not the task's fault. The broker gives such
//  leases back to the head of their queues, not counted as lost (no
//  quarantine after --max-lost). Call it right after creating the link.
void arb_link_set_relay (arb_link_t *self);

//  Calls fn with the link's arg when the broker refuses its REGISTER, or
//  shuts its session out, with 403 (arb_link_forbidden_fn); without it the
//  link logs the refusal once, as a warning. Call it right after creating
//  the link.
void arb_link_set_forbidden (arb_link_t *self, arb_link_forbidden_fn *fn);

//  ---------------------------------------------------------------------
//  Requests. Each returns its request id, or 0 if refused.

//  Creates a request of the given type with the link's next request id,
//  for arb_link_send; fill its body with arb_msg_<type> (msg).
arb_msg_t *arb_link_request_new (arb_link_t *self, arb_msg_type_t type);

//  Sends a request made by arb_link_request_new: any client verb (PING,
//  SUBMIT, STATUS, LIST, WATCH, CANCEL, RETRY, STATS, QUEUE, LIMIT, EVENTS,
//  PEEK, META) or TAKE; takes it (nulls *request_p, even on failure). The
//  ids of a SUBMIT with watch and of a WATCH are watched (done callback);
//  the ids of a WATCH stay watched even if the request fails (the link
//  watches them again whenever the broker may have forgotten them: a new
//  epoch, a new connection, a silent interval). Refuses
//  worker verbs (the link runs the session), more than
//  ARB_LINK_PENDING_MAX pending requests, a full queue to the broker.
uint32_t arb_link_send (arb_link_t *self, arb_msg_t **request_p);

//  Submits n tasks in one SUBMIT (all or nothing), watched if watch. Takes
//  every spec's payload frame (nulled, even on failure); the rest stays
//  the caller's. Checks the batch first (arb_spec_check: names, sizes,
//  the payload limit). The reply is SUBMITTED (ids in request order).
uint32_t arb_link_submit (arb_link_t *self, arb_task_spec_t *specs, size_t n, bool watch);

//  Cancels n tasks (at most ARB_IDS_MAX). Reply: CANCEL_REPLY. A running
//  task of ours is also stopped (stop callback, ARB_STOP_CANCEL).
uint32_t arb_link_cancel (arb_link_t *self, const uint64_t *ids, size_t n);

//  Looks at up to max (0: 1) ready tasks at the head of queue without
//  taking them. Reply: PEEK_REPLY (lease 0).
uint32_t arb_link_peek (arb_link_t *self, const char *queue, uint32_t max);

//  Leases up to max (0: 1) ready tasks of queue now, outside any credit.
//  Reply: a DISPATCH (possibly empty) whose tasks the link holds. Refused
//  if max would take the link past ARB_LINK_HELD_MAX.
uint32_t arb_link_take (arb_link_t *self, const char *queue, uint32_t max);

//  ---------------------------------------------------------------------
//  Consumers.

//  Creates a consumer of n queues (1 .. ARB_CREDIT_QUEUES_MAX names, each
//  1 .. ARB_NAME_MAX bytes of printable UTF-8) with an initial credit (>= 0); fn gets its
//  tasks, with arg. Returns its subscription number (> 0), or 0 if
//  refused (bad queues, too many consumers, credit past
//  ARB_LINK_HELD_MAX). Its CREDIT goes out with the next flush once the
//  session is up.
uint32_t arb_link_subscribe (arb_link_t *self,
                             const char **queues,
                             size_t n,
                             int credit,
                             arb_link_dispatch_fn *fn,
                             void *arg);

//  Adds credit to consumer sub (negative takes some back). Returns 0, or
//  -1 for an unknown consumer or credit past ARB_LINK_HELD_MAX.
int arb_link_add_credit (arb_link_t *self, uint32_t sub, int credit);

//  The credit the broker holds for consumer sub: given, minus the tasks
//  dispatched on it (0 for an unknown consumer).
int64_t arb_link_credit (arb_link_t *self, uint32_t sub);

//  Ends consumer sub: no more tasks come to it (one already on its way is
//  released back to its queue); the tasks it got stay held until settled.
//  Returns 0, or -1 for an unknown consumer.
int arb_link_unsubscribe (arb_link_t *self, uint32_t sub);

//  ---------------------------------------------------------------------
//  Held tasks, by task id. Each returns 0, or -1 if the task is not held
//  (never was, settled already, or stopped).

//  Completes a held task with result (taken, even on failure; NULL: an
//  empty result).
int arb_link_complete (arb_link_t *self, uint64_t id, zframe_t **result_p);

//  Fails a held task (counts an attempt; retried or dead as the task
//  says), with error (cut to ARB_TEXT_MAX bytes; NULL: "failed").
int arb_link_fail (arb_link_t *self, uint64_t id, const char *error);

//  Releases a held task back to the head of its queue (of the tasks of its
//  priority: it never overtakes a higher one), no attempt counted
//  (Kestrel /abort, AMQP nack with requeue).
int arb_link_release (arb_link_t *self, uint64_t id);

//  Number of tasks held (settled ones whose outcome has not gone out yet
//  included).
size_t arb_link_held (arb_link_t *self);

#endif
