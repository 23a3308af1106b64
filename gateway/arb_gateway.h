/*  arb_gateway.h — the gateway's core: one reactor, one link to the
    broker, and the routing between them and the protocol servers
    (Kestrel, HTTP, later AMQP) that run on them.

    The link answers every request through one callback; the gateway hands
    each answer to the callback that was given with its request
    (arb_gateway_send and friends), exactly once: the broker's reply, its
    ERROR, or a local ERROR (code 0) when the broker did not answer in
    time. A server whose client went away forgets its requests
    (arb_gateway_forget): their answers are then dropped, and the tasks of
    a forgotten TAKE are released back to their queue.

    Submits are batched per loop turn: arb_gateway_submit_one adds one task
    to the turn's SUBMIT, which leaves before the loop sleeps, so the
    `set`s, POSTs and publishes of many clients become one message and one
    journal commit; each task's callback then gets its own outcome. A task
    is checked alone when it is added, so one client's bad item never
    fails another's.

    What concerns every server (a held task stopped by the broker, the
    session to the broker going down or up, a watched task's end, the
    link having room again after it was full) goes to every listener.

    Back-pressure: the gateway counts the SUBMITs it sent that the broker
    has not answered yet (batches and payload bytes). Past
    ARB_GATEWAY_OUT_BATCHES or ARB_GATEWAY_OUT_BYTES, or while no session
    is up or its connection is being made again (arb_link_is_open), the
    link is full (arb_gateway_is_full): a server that can make
    its clients wait (AMQP stops reading a publisher's socket) submits
    nothing more until the room callback says there is room again, once
    the broker answered down to half those bounds with a session up. That
    keeps what the gateway holds for a stalled broker bounded, and far
    below what the link itself would refuse (ARB_DIAL_OUT_MAX bytes,
    ARB_LINK_PENDING_MAX requests), so a submit made while there is room
    is not refused for a full queue.

    Runs in the reactor's thread; not thread-safe.
*/

#ifndef ARB_GATEWAY_H
#define ARB_GATEWAY_H

#include "arb_link.h"
#include "arb_reactor.h"

typedef struct _arb_gateway_t arb_gateway_t;

typedef struct {
    const char *broker;           //  endpoint; NULL: $ARBITER_BROKER, else the default
    const arb_curve_t *curve;     //  borrowed: CURVE towards the broker; NULL: the environment's
                                  //  (ARBITER_CERT, ARBITER_BROKER_KEY), else none
    const char *cert;             //  the certificate file given, for the log; NULL: none
    const char *name;             //  worker name; NULL: host.pid
    uint64_t request_timeout_ms;  //  a request unanswered this long fails locally
    size_t max_payload;           //  bytes per item (the broker's --max-payload)
} arb_gateway_config_t;

//  A SUBMIT's bounds: tasks, and the bytes of their payloads, headers and
//  args (ARB_GATEWAY_BATCH_BYTES, or the broker's --max-payload if
//  smaller, so that it stays under the broker's largest message)
#define ARB_GATEWAY_BATCH_MAX   1000
#define ARB_GATEWAY_BATCH_BYTES (8u << 20)
#define ARB_GATEWAY_LISTENERS   40           //  servers, and a bridge per upstream queue
#define ARB_GATEWAY_OUT_BATCHES 1000         //  SUBMITs unanswered before the link is full
#define ARB_GATEWAY_OUT_BYTES   (16u << 20)  //  their bytes (as above) before the link is full

//  Creates the reactor and the link (connecting at once, never waiting).
//  NULL after logging why (a malformed endpoint).
arb_gateway_t *arb_gateway_new (const arb_gateway_config_t *config);

//  Says BYE to the broker (tasks still held go back to the head of their
//  queues) and frees everything. Accepts NULL; nulls *self_p.
void arb_gateway_destroy (arb_gateway_t **self_p);

arb_reactor_t *arb_gateway_reactor (arb_gateway_t *self);
arb_link_t *arb_gateway_link (arb_gateway_t *self);

//  Whether the session with the broker is up (requests can be answered).
bool arb_gateway_is_up (arb_gateway_t *self);

//  Whether, besides, its connection is open now (arb_link_is_open): a
//  request taken from a client goes out at once. The servers take their
//  clients' requests only while it is, and answer "unavailable" at once
//  otherwise: a broker that stopped leaves the session up until its
//  liveness window passes, and a request queued meanwhile for a
//  connection that is not there would fail then as of unknown outcome.
bool arb_gateway_is_open (arb_gateway_t *self);

//  Runs the loop until SIGINT/SIGTERM or arb_reactor_stop. 0, or -1 if
//  polling failed or the broker refused the gateway's certificate (403
//  to its REGISTER or to any request of its: it needs an admin's; logged
//  once, naming config->cert, and the loop stopped).
int arb_gateway_run (arb_gateway_t *self);

//  ---------------------------------------------------------------------
//  Requests

//  The answer to one request: the broker's reply, or an ERROR (code 0: a
//  local one, the outcome is unknown). The callback may take the message
//  (null *reply_p); else it is destroyed after.
typedef void (arb_gateway_reply_fn) (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg);

//  Sends a request made with arb_link_request_new (arb_gateway_link)
//  and calls fn with its answer. Takes the request. Returns the request
//  id, or 0 if the link refused it (arb_link_error says why; fn is not
//  called).
uint32_t
arb_gateway_send (arb_gateway_t *self, arb_msg_t **request_p, arb_gateway_reply_fn *fn, void *arg);

//  TAKE and PEEK of up to max tasks of queue, answered like send. A TAKE's
//  answer is a DISPATCH whose tasks are now held (settle them through the
//  link by id).
uint32_t arb_gateway_take (
    arb_gateway_t *self, const char *queue, uint32_t max, arb_gateway_reply_fn *fn, void *arg);
uint32_t arb_gateway_peek (
    arb_gateway_t *self, const char *queue, uint32_t max, arb_gateway_reply_fn *fn, void *arg);

//  Drops the answer of a pending request (its asker went away). The
//  tasks of a forgotten TAKE's answer are released.
void arb_gateway_forget (arb_gateway_t *self, uint32_t reqid);

//  ---------------------------------------------------------------------
//  Batched submits

//  The outcome of one submitted task: task set (id, existing, state) on
//  success; else NULL, with the broker's code (0: local, outcome unknown)
//  and reason.
typedef void (arb_gateway_submitted_fn) (arb_gateway_t *gateway,
                                         const arb_submitted_task_t *task,
                                         int code,
                                         const char *error,
                                         void *arg);

//  Adds one task to the turn's SUBMIT. The spec's strings and bins are
//  copied; its payload frame is taken (nulled, even on failure). Returns a
//  ticket (> 0) for arb_gateway_forget_submit, or 0 if the task was
//  refused alone (arb_gateway_error says why; fn is not called).
uint64_t arb_gateway_submit_one (arb_gateway_t *self,
                                 arb_task_spec_t *spec,
                                 arb_gateway_submitted_fn *fn,
                                 void *arg);

//  Sends the turn's SUBMIT now (before a request that must come after
//  it: a basic.get after a publish).
void arb_gateway_flush (arb_gateway_t *self);

//  The submit's asker went away: its callback will not be called (the task
//  is submitted all the same).
void arb_gateway_forget_submit (arb_gateway_t *self, uint64_t ticket);

//  Why the last call failed (borrowed), or NULL.
const char *arb_gateway_error (arb_gateway_t *self);

//  Whether the link is full (see Back-pressure at the top): no session up,
//  or too many SUBMITs or bytes await the broker's answer. A server that
//  can hold its clients submits nothing while it is; the listeners' room
//  callback says when it no longer is.
bool arb_gateway_is_full (arb_gateway_t *self);

//  ---------------------------------------------------------------------
//  Connections, counted by protocol for the metrics

typedef enum {
    ARB_GATEWAY_HTTP = 0,
    ARB_GATEWAY_KESTREL = 1,
    ARB_GATEWAY_AMQP = 2,
} arb_gateway_protocol_t;

#define ARB_GATEWAY_PROTOCOLS 3

//  A server's connection opened (delta 1) or closed (-1).
void arb_gateway_connected (arb_gateway_t *self, arb_gateway_protocol_t protocol, int delta);

//  Connections open now, and the protocol's name ("http", "kestrel",
//  "amqp").
uint64_t arb_gateway_connections (arb_gateway_t *self, arb_gateway_protocol_t protocol);
const char *arb_gateway_protocol_name (arb_gateway_protocol_t protocol);

//  ---------------------------------------------------------------------
//  Listeners

typedef struct {
    void (*stop) (void *arg, uint64_t id, int reason);   //  a held task is no longer ours
    void (*state) (void *arg, bool up);                  //  the broker session went up / down
    void (*done) (void *arg, arb_done_task_t *task);     //  a watched task ended (borrowed)
    void (*event) (void *arg, arb_event_body_t *event);  //  state changes, after EVENTS (borrowed)
    void (*room) (void *arg);  //  the link was full and no longer is (arb_gateway_is_full)
    void *arg;
} arb_gateway_listener_t;

//  Adds a listener (copied; any callback may be NULL). 0, or -1 past
//  ARB_GATEWAY_LISTENERS.
int arb_gateway_listen (arb_gateway_t *self, const arb_gateway_listener_t *listener);

//  Removes the listeners whose arg is arg (a server that stops before the
//  gateway).
void arb_gateway_unlisten (arb_gateway_t *self, void *arg);

#endif
