/*  arb_link.c — a non-blocking session with the broker (see arb_link.h).

    Everything runs on the caller's thread: the calls only queue or send
    (never wait), and arb_link_handle receives, runs the timers and sends
    what a turn produced. The link owns one DEALER socket (arb_dealer), the
    tasks it holds (arb_leases), the watched tasks (arb_watchlist), its
    consumers (arb_consumers) and its pending requests (arb_requests).

    The session is a small state machine:

        REGISTERING --WELCOME to the last REGISTER--> READY
        READY --ERROR 410--> REGISTERING          (same connection: s_lost)
        READY --silent for liveness_ms--> REGISTERING      (s_reset: nothing
                                                            came, or the program
                                                            did not let it run)
        REGISTERING --no WELCOME in time--> REGISTERING    (s_reset)

    s_reset drops the connection with whatever still waits in it to go out
    (REGISTERs, requests queued for a broker that is gone must not pour out
    when it comes back) and connects again under a fresh identity: the
    socket and its descriptor stay the caller's. Replies to the old
    identity can never come, so its pending requests fail at once, and
    watches are sent again (DONE would go to the old identity). Every
    REGISTER claims the tasks held (arb_leases_claim); only the WELCOME
    with the last REGISTER's request id counts, so the WELCOMEs of
    repeated REGISTERs that arrive late change nothing. A 410 counts only
    while READY: the broker answers in order, so a 410 to a message sent
    before the current REGISTER arrives before its WELCOME.

    Outcomes stay in the leases until the broker's RESULT_OK (after its
    commit) says it stored or refused them; one not answered within the
    liveness window goes again, and every REGISTER claims them.

    Worker verbs (RESULT, CREDIT, HEARTBEAT) go out only while READY:
    before the WELCOME, the broker may not know the leases or the
    subscriptions they name. A turn sends the RESULTs first, then the
    CREDITs, and only while ZeroMQ takes them at once (POLLOUT); what it
    does not take waits in the leases and the consumers, never in a queue
    of the link's own.

    Request ids: the caller's run 1 .. 2^31 - 1; the link's own messages
    (REGISTER, HEARTBEAT, CREDIT, RESULT, BYE, and the watchlist's PING and
    WATCH) have the top bit set.
*/

#include "arb_link.h"
#include "arb_consumers.h"
#include "arb_dealer.h"
#include "arb_dial.h"
#include "arb_idset.h"
#include "arb_leases.h"
#include "arb_requests.h"
#include "arb_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <unistd.h>

#define ARB_LINK_TAG        0x0c1e0004u  //  a live arb_link_t
#define ARB_LINK_DEAD       0xdeadc1e4u  //  written on destroy, to catch use after it
#define ARB_REQID_OWN       0x80000000u  //  top bit: the link's own messages
#define ARB_REGISTER_FIRST  500          //  ms before a REGISTER is sent again; doubles
#define ARB_REGISTER_MAX    2000         //  ms, up to this (within the broker's recovery window)
#define ARB_REGISTERS_KEPT  64           //  REGISTERs unanswered whose refusal is known as theirs
#define ARB_OUTPUT_RETRY_MS 10           //  ZeroMQ's queue was full: look again this soon
#define ARB_LINK_LINGER_MS  200          //  destroy: time the last RESULT and BYE have to leave

typedef enum {
    S_REGISTERING,
    S_READY,
} s_session_t;

struct _arb_link_t {
    uint32_t tag;                    //  ARB_LINK_TAG
    zsock_t *dealer;                 //  owned; NULL with a dial
    arb_dial_t *dial;                //  owned: our own connection (arb_dial.h); NULL with a dealer
    char *endpoint;                  //  owned
    bool secured;                    //  a CURVE client (arb_link_new_curve)
    arb_handshake_t *handshake;      //  owned: why a broker may not answer; NULL if not watched
    char name[ARB_NAME_MAX + 1];     //  the worker name REGISTER gives
    char host[ARB_NAME_MAX + 1];     //  this host's name, for REGISTER
    arb_link_callbacks_t callbacks;  //  copied; the functions are the caller's
    void *arg;                       //  borrowed: given to every callback
    int timeout_ms;                  //  ms a request may wait for its reply
    size_t max_payload;              //  bytes, outgoing payloads
    size_t broker_max_payload;       //  bytes, the broker's (its WELCOME); 0: not told
    arb_limits_t limits;             //  decoding of what the broker sends
    uint32_t reqid;                  //  last request id given to the caller
    uint32_t own_reqid;              //  last id of our own messages (without the top bit)
    bool failed;                     //  the last call failed: error holds why
    char error[ARB_TEXT_MAX + 256];
    bool in_handle;  //  arb_link_handle is running (callbacks are allowed)
    //  the last thing done on the socket was a receive that found nothing
    //  waiting: until the next send, its descriptor tells of the next
    //  message, so arb_link_timeout need not ask ZMQ_EVENTS (two system
    //  calls) again
    bool drained;

    //  The session.
    s_session_t session;
    uint32_t register_reqid;  //  of the REGISTER being answered
    int register_wait_ms;     //  current REGISTER retry interval
    int64_t register_at;      //  ms: REGISTER again (and reset) if no WELCOME by then
    uint32_t heartbeat_ms;    //  from WELCOME: send a HEARTBEAT this often
    uint32_t liveness_ms;     //  from WELCOME: a broker silent this long is gone
    int64_t last_rx;          //  ms: last message from the broker
    uint64_t dial_drops;      //  the dial's drops seen (arb_dial_drops)
    int64_t handled_at;       //  ms: the end of the last arb_link_handle; 0 none yet
    int64_t heartbeat_at;     //  ms: next HEARTBEAT
    uint64_t mark;            //  the highest mark read in the broker's HEARTBEATs this session
    bool up;                  //  the state callback last said up
    bool relay;               //  registers as a relay (arb_link_set_relay)
    arb_idset_t *registers;   //  owned: request ids of the REGISTERs since the last WELCOME
    bool forbidden;           //  a REGISTER was refused with 403 since the last WELCOME
    bool no_marks;            //  the broker refused marks: the next REGISTER goes without
    arb_link_forbidden_fn *on_forbidden;  //  told of it, or NULL (arb_link_set_forbidden)

    //  Requests, tasks, consumers.
    arb_requests_t *requests;    //  owned: the caller's requests awaiting replies
    arb_leases_t *leases;        //  owned: the tasks held
    arb_consumers_t *consumers;  //  owned
    arb_watchlist_t *watchlist;  //  owned
    zlistx_t *reports;           //  owned DONE messages reported outside a handle
};

static void s_deliver_reports (arb_link_t *self, arb_msg_t **done_p);

//  ---------------------------------------------------------------------
//  Errors and small helpers.

static void s_fail (arb_link_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (arb_link_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof (self->error), fmt, args);
    va_end (args);
    self->failed = true;
}

static void
s_clear (arb_link_t *self)
{
    self->failed = false;
    self->error[0] = 0;
}

static uint32_t
s_own_reqid (arb_link_t *self)
{
    self->own_reqid = (self->own_reqid + 1) & ~ARB_REQID_OWN;
    if (self->own_reqid == 0)
        self->own_reqid = 1;
    return ARB_REQID_OWN | self->own_reqid;
}

static bool
s_writable (arb_link_t *self)
{
    if (self->dial)
        return arb_dial_is_writable (self->dial);
    return (zsock_events (self->dealer) & ZMQ_POLLOUT) != 0;
}

//  Every send goes through here: a send may take in libzmq's commands,
//  among them the one that makes the descriptor readable for a message
//  that came meanwhile, so the socket counts as drained no more.
static int
s_dealer_send (arb_link_t *self, arb_msg_t **msg_p)
{
    if (self->dial)
        return arb_dial_send (self->dial, msg_p);
    self->drained = false;
    return arb_msg_send (msg_p, zsock_resolve (self->dealer));
}

//  Sends one message of ours; a failure is logged and the message lost
//  (a full queue: the timers or the next turn send what matters again).
static int
s_send (arb_link_t *self, arb_msg_t **msg_p)
{
    arb_msg_type_t type = arb_msg_type (*msg_p);
    if (s_dealer_send (self, msg_p) == 0)
        return 0;
    //  zmq_errno is errno: one for both transports
    zsys_warning ("link: send failed type=%s errno=%d", arb_msg_type_name (type), errno);
    return -1;
}

//  The commitments ARB_LINK_HELD_MAX bounds.
static int64_t
s_committed (arb_link_t *self)
{
    return (int64_t) arb_leases_size (self->leases) + arb_consumers_given (self->consumers)
           + arb_requests_reserved (self->requests);
}

//  ---------------------------------------------------------------------
//  The watchlist's requests and reports.

static int
s_watchlist_send (void *arg, arb_msg_t **request_p)
{
    arb_link_t *self = (arb_link_t *) arg;
    arb_msg_set_reqid (*request_p, s_own_reqid (self));
    return s_send (self, request_p);
}

//  Reports go to the done callback, inside a handle only: one that comes
//  out of a call (a request refused before it left) waits for it.
static void
s_watchlist_report (void *arg, arb_msg_t **done_p)
{
    arb_link_t *self = (arb_link_t *) arg;
    if (self->in_handle)
        s_deliver_reports (self, done_p);
    else {
        zlistx_add_end (self->reports, *done_p);
        *done_p = NULL;
    }
}

static void
s_deliver_reports (arb_link_t *self, arb_msg_t **done_p)
{
    arb_done_body_t *body = arb_msg_done (*done_p);
    for (size_t i = 0; i < body->tasks.n && self->callbacks.done; i++)
        self->callbacks.done (self, &body->tasks.v[i], self->arg);
    arb_msg_destroy (done_p);
}

static void
s_report_destroy (void **item)
{
    arb_msg_destroy ((arb_msg_t **) item);
}

//  ---------------------------------------------------------------------
//  Construction.

static void s_register (arb_link_t *self);

arb_link_t *
arb_link_new (const char *endpoint,
              const char *name,
              const arb_link_callbacks_t *callbacks,
              void *arg)
{
    char why[512];
    arb_curve_t *curve = arb_curve_resolve (NULL, NULL, why, sizeof (why));
    if (!curve && *why) {
        zsys_error ("link: %s", why);
        return NULL;
    }
    arb_link_t *self = arb_link_new_curve (endpoint, name, callbacks, arg, curve);
    arb_curve_destroy (&curve);
    return self;
}

arb_link_t *
arb_link_new_curve (const char *endpoint,
                    const char *name,
                    const arb_link_callbacks_t *callbacks,
                    void *arg,
                    const arb_curve_t *curve)
{
    if (name && strlen (name) > ARB_NAME_MAX)
        return NULL;
    endpoint = arb_dealer_endpoint (endpoint);
    arb_handshake_t *handshake = NULL;
    zsock_t *dealer = NULL;
    arb_dial_t *dial = arb_dial_new_for (endpoint, curve);
    if (!dial) {
        dealer = arb_dealer_new (endpoint, curve, &handshake);
        if (!dealer)
            return NULL;
        //  never block the caller's loop: a full queue refuses at once
        zsock_set_sndtimeo (dealer, 0);
        zsock_set_rcvtimeo (dealer, 0);
        zsock_set_sndhwm (dealer, ARB_LINK_SNDHWM);
    }
    arb_link_t *self = (arb_link_t *) zmalloc (sizeof (arb_link_t));
    self->tag = ARB_LINK_TAG;
    self->dealer = dealer;
    self->dial = dial;
    self->endpoint = strdup (endpoint);
    self->secured = curve != NULL;
    self->handshake = handshake;
    if (gethostname (self->host, sizeof (self->host)) != 0)
        strcpy (self->host, "localhost");
    self->host[ARB_NAME_MAX] = '\0';
    if (name && *name)
        snprintf (self->name, sizeof (self->name), "%s", name);
    else  //  keep room for ".pid" inside the name limit
        snprintf (self->name, sizeof (self->name), "%.*s.%d", ARB_NAME_MAX - 12, self->host,
                  (int) getpid ());
    if (callbacks)
        self->callbacks = *callbacks;
    self->arg = arg;
    self->timeout_ms = ARB_LINK_TIMEOUT_MS;
    self->max_payload = ARB_PAYLOAD_DEFAULT_MAX;
    //  What the broker sends is trusted to fit: it applied its own limit
    //  to every payload and result, and a DISPATCH refused here would
    //  strand its tasks.
    self->limits.max_frame = SIZE_MAX;
    self->requests = arb_requests_new ();
    self->leases = arb_leases_new ();
    self->consumers = arb_consumers_new ();
    self->reports = zlistx_new ();
    zlistx_set_destructor (self->reports, s_report_destroy);
    self->watchlist = arb_watchlist_new (s_watchlist_send, s_watchlist_report, self);
    self->registers = arb_idset_new ();
    self->register_wait_ms = ARB_REGISTER_FIRST;
    self->last_rx = zclock_mono ();
    s_register (self);
    return self;
}

void
arb_link_destroy (arb_link_t **self_p)
{
    assert (self_p);
    arb_link_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == ARB_LINK_TAG && !self->in_handle);
    if (self->session == S_READY) {
        arb_link_flush (self);
        arb_msg_t *bye = arb_msg_new (ARB_MSG_BYE, s_own_reqid (self));
        s_send (self, &bye);
        //  a moment for them to leave; with a dealer it holds up only the
        //  program's exit (ZeroMQ's context end), never this call
        if (self->dealer)
            zsock_set_linger (self->dealer, ARB_LINK_LINGER_MS);
    }
    arb_handshake_destroy (&self->handshake);
    zsock_destroy (&self->dealer);
    arb_dial_destroy (&self->dial, self->session == S_READY ? ARB_LINK_LINGER_MS : 0);
    free (self->endpoint);
    arb_requests_destroy (&self->requests);
    arb_consumers_destroy (&self->consumers);
    zlistx_destroy (&self->reports);
    arb_leases_destroy (&self->leases);
    arb_watchlist_destroy (&self->watchlist);
    arb_idset_destroy (&self->registers);
    self->tag = ARB_LINK_DEAD;
    free (self);
    *self_p = NULL;
}

zsock_t *
arb_link_sock (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->dealer;
}

int
arb_link_fd (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->dial ? arb_dial_fd (self->dial) : zsock_fd (self->dealer);
}

bool
arb_link_is_up (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->session == S_READY;
}

bool
arb_link_is_open (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->session == S_READY && (!self->dial || arb_dial_is_open (self->dial));
}

const char *
arb_link_name (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->name;
}

const char *
arb_link_host (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->host;
}

const char *
arb_link_error (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return self->failed ? self->error : NULL;
}

void
arb_link_set_timeout (arb_link_t *self, int timeout_ms)
{
    assert (self && self->tag == ARB_LINK_TAG && timeout_ms > 0);
    self->timeout_ms = timeout_ms;
}

void
arb_link_set_max_payload (arb_link_t *self, size_t bytes)
{
    assert (self && self->tag == ARB_LINK_TAG);
    self->max_payload = bytes;
}

size_t
arb_link_max_payload (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    if (self->broker_max_payload && self->broker_max_payload < self->max_payload)
        return self->broker_max_payload;
    return self->max_payload;
}

void
arb_link_set_rewatch (arb_link_t *self, int interval_ms)
{
    assert (self && self->tag == ARB_LINK_TAG && interval_ms > 0);
    arb_watchlist_set_interval (self->watchlist, interval_ms);
}

void
arb_link_set_forbidden (arb_link_t *self, arb_link_forbidden_fn *fn)
{
    assert (self && self->tag == ARB_LINK_TAG);
    self->on_forbidden = fn;
}

void
arb_link_set_relay (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    if (self->relay)
        return;
    self->relay = true;
    //  the first REGISTER went at creation, holding nothing yet: the
    //  broker takes a second as the same session's new description
    s_register (self);
}

size_t
arb_link_held (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return arb_leases_size (self->leases);
}

//  ---------------------------------------------------------------------
//  Requests.

arb_msg_t *
arb_link_request_new (arb_link_t *self, arb_msg_type_t type)
{
    assert (self && self->tag == ARB_LINK_TAG);
    //  1 .. 2^31 - 1, then around again: 0 is for streamed messages and
    //  the top bit for our own
    self->reqid = self->reqid % (ARB_REQID_OWN - 1) + 1;
    return arb_msg_new (type, self->reqid);
}

//  What the caller may send: whatever the broker answers (client verbs and
//  TAKE), but REGISTER, which is the link's.
static bool
s_is_client_verb (arb_msg_type_t type)
{
    return arb_msg_reply_type (type) != 0 && type != ARB_MSG_REGISTER;
}

uint32_t
arb_link_send (arb_link_t *self, arb_msg_t **request_p)
{
    assert (self && self->tag == ARB_LINK_TAG && request_p && *request_p);
    s_clear (self);
    arb_msg_type_t type = arb_msg_type (*request_p);
    uint32_t reqid = arb_msg_reqid (*request_p);
    uint32_t reserved = 0;
    if (type == ARB_MSG_TAKE)
        reserved = arb_msg_take (*request_p)->max ? arb_msg_take (*request_p)->max : 1;
    if (!s_is_client_verb (type))
        s_fail (self, "%s is not a request the caller sends (the link runs the session)",
                arb_msg_type_name (type));
    else if (reqid == 0 || (reqid & ARB_REQID_OWN) || arb_requests_contains (self->requests, reqid))
        s_fail (self, "request id %u was not made by arb_link_request_new", reqid);
    else if (arb_requests_size (self->requests) >= ARB_LINK_PENDING_MAX)
        s_fail (self, "%d requests await replies: try again later", ARB_LINK_PENDING_MAX);
    else if (reserved > 0 && s_committed (self) + reserved > ARB_LINK_HELD_MAX)
        s_fail (self, "TAKE of %u: the link would hold more than %d tasks", reserved,
                ARB_LINK_HELD_MAX);
    if (self->failed) {
        arb_msg_destroy (request_p);
        return 0;
    }
    arb_watchlist_track (self->watchlist, *request_p);
    if (s_dealer_send (self, request_p) != 0) {
        arb_watchlist_untrack (self->watchlist, reqid);
        //  a refused handshake leaves a DEALER no connection to queue on
        const char *refusal = self->session == S_READY || self->dial
                                  ? NULL
                                  : arb_handshake_refusal (self->handshake, self->secured);
        if (refusal)
            s_fail (self, "broker %s refused the connection: %s", self->endpoint, refusal);
        else
            s_fail (self, "the queue to broker %s is full: try again later", self->endpoint);
        return 0;
    }
    arb_requests_add (self->requests, reqid, type, reserved, zclock_mono ());
    return reqid;
}

uint32_t
arb_link_submit (arb_link_t *self, arb_task_spec_t *specs, size_t n, bool watch)
{
    assert (self && self->tag == ARB_LINK_TAG && (specs || n == 0));
    s_clear (self);
    if (arb_spec_check (specs, n, ARB_FLOW_NONE, NULL, arb_link_max_payload (self), self->error,
                        sizeof (self->error))) {
        self->failed = true;
        for (size_t i = 0; i < n; i++)
            zframe_destroy (&specs[i].payload);
        return 0;
    }
    arb_msg_t *request = arb_link_request_new (self, ARB_MSG_SUBMIT);
    arb_submit_body_t *body = arb_msg_submit (request);
    body->watch = watch;
    //  The caller's array, not a copy: sending moves each payload frame
    //  out of it (and a refused send destroys them), as promised.
    body->tasks.v = specs;
    body->tasks.n = n;
    return arb_link_send (self, &request);
}

uint32_t
arb_link_cancel (arb_link_t *self, const uint64_t *ids, size_t n)
{
    assert (self && self->tag == ARB_LINK_TAG && (ids || n == 0));
    s_clear (self);
    if (n == 0 || n > ARB_IDS_MAX) {
        s_fail (self, "a cancel names 1 to %d tasks, not %zu", ARB_IDS_MAX, n);
        return 0;
    }
    arb_msg_t *request = arb_link_request_new (self, ARB_MSG_CANCEL);
    arb_cancel_body_t *body = arb_msg_cancel (request);
    body->ids.v = (uint64_t *) arb_msg_alloc (request, n * sizeof (uint64_t));
    memcpy (body->ids.v, ids, n * sizeof (uint64_t));
    body->ids.n = n;
    return arb_link_send (self, &request);
}

static int
s_check_queue (arb_link_t *self, const char *queue)
{
    size_t len = queue ? strlen (queue) : 0;
    char why[128];
    if (len == 0 || len > ARB_NAME_MAX)
        s_fail (self, "a queue name has 1 to %d bytes, not %zu", ARB_NAME_MAX, len);
    else if (arb_name_check (queue, len, why, sizeof (why)))
        s_fail (self, "queue: %s (names are printable UTF-8)", why);
    else
        return 0;
    return -1;
}

//  PEEK and TAKE: a queue and a number of tasks.
static uint32_t
s_send_queue_request (arb_link_t *self, arb_msg_type_t type, const char *queue, uint32_t max)
{
    assert (self && self->tag == ARB_LINK_TAG);
    s_clear (self);
    if (s_check_queue (self, queue))
        return 0;
    arb_msg_t *request = arb_link_request_new (self, type);
    if (type == ARB_MSG_PEEK)
        *arb_msg_peek (request) = (arb_peek_body_t){.queue = queue, .max = max};
    else
        *arb_msg_take (request) = (arb_take_body_t){.queue = queue, .max = max};
    return arb_link_send (self, &request);
}

uint32_t
arb_link_peek (arb_link_t *self, const char *queue, uint32_t max)
{
    return s_send_queue_request (self, ARB_MSG_PEEK, queue, max);
}

uint32_t
arb_link_take (arb_link_t *self, const char *queue, uint32_t max)
{
    return s_send_queue_request (self, ARB_MSG_TAKE, queue, max);
}

//  Answers a caller's request with a local ERROR (code 0).
static void
s_answer_locally (arb_link_t *self, uint32_t reqid, const char *reason)
{
    arb_msg_t *error = arb_msg_new (ARB_MSG_ERROR, reqid);
    arb_msg_error (error)->reason = arb_msg_strdup (error, reason);
    if (self->callbacks.reply)
        self->callbacks.reply (self, reqid, &error, self->arg);
    arb_msg_destroy (&error);
}

//  While no session is up, a broker that refused our handshake (one that
//  trying again will not mend) fails the caller's pending requests at
//  once, rather than at their timeout: they never reached it.
static void
s_refused (arb_link_t *self, const char *refusal)
{
    if (!refusal || self->session == S_READY || arb_requests_size (self->requests) == 0)
        return;
    char reason[ARB_TEXT_MAX];
    snprintf (reason, sizeof (reason), "broker %s refused the connection: %s", self->endpoint,
              refusal);
    size_t n;
    uint32_t *ids = arb_requests_ids (self->requests, &n);
    zsys_warning ("link: failing pending=%zu endpoint=%s handshake=\"%s\"", n, self->endpoint,
                  refusal);
    for (size_t i = 0; i < n; i++)
        if (arb_requests_end (self->requests, ids[i])) {
            arb_watchlist_untrack (self->watchlist, ids[i]);
            s_answer_locally (self, ids[i], reason);
        }
    free (ids);
}

//  Fails a pending request locally: its reply will never come, or come
//  too late to count.
static void
s_request_fail (arb_link_t *self, uint32_t reqid, const char *why)
{
    arb_msg_type_t type = arb_requests_end (self->requests, reqid);
    arb_watchlist_untrack (self->watchlist, reqid);
    char reason[256];
    snprintf (reason, sizeof (reason), "%s %s (broker %s): outcome unknown",
              arb_msg_type_name (type), why, self->endpoint);
    s_answer_locally (self, reqid, reason);
}

//  ---------------------------------------------------------------------
//  Consumers.

static int
s_check_credit (arb_link_t *self, int credit)
{
    if (credit <= 0 || s_committed (self) + credit <= ARB_LINK_HELD_MAX)
        return 0;
    s_fail (self, "credit %d: the link would hold more than %d tasks", credit, ARB_LINK_HELD_MAX);
    return -1;
}

uint32_t
arb_link_subscribe (arb_link_t *self,
                    const char **queues,
                    size_t n,
                    int credit,
                    arb_link_dispatch_fn *fn,
                    void *arg)
{
    assert (self && self->tag == ARB_LINK_TAG && fn);
    s_clear (self);
    if (credit < 0) {
        s_fail (self, "credit %d: a consumer starts with none or more", credit);
        return 0;
    }
    if (s_check_credit (self, credit))
        return 0;
    uint32_t sub = arb_consumers_add (self->consumers, queues, n, credit, fn, arg, self->error,
                                      sizeof (self->error));
    self->failed = sub == 0;
    return sub;
}

int
arb_link_add_credit (arb_link_t *self, uint32_t sub, int credit)
{
    assert (self && self->tag == ARB_LINK_TAG);
    s_clear (self);
    if (s_check_credit (self, credit))
        return -1;
    if (arb_consumers_add_credit (self->consumers, sub, credit) == 0)
        return 0;
    s_fail (self, "no consumer %u", sub);
    return -1;
}

int64_t
arb_link_credit (arb_link_t *self, uint32_t sub)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return arb_consumers_credit (self->consumers, sub);
}

int
arb_link_unsubscribe (arb_link_t *self, uint32_t sub)
{
    assert (self && self->tag == ARB_LINK_TAG);
    s_clear (self);
    if (arb_consumers_remove (self->consumers, sub) == 0)
        return 0;
    s_fail (self, "no consumer %u", sub);
    return -1;
}

//  ---------------------------------------------------------------------
//  Held tasks.

static int
s_settle (
    arb_link_t *self, uint64_t id, arb_outcome_t outcome, const char *error, zframe_t **result)
{
    assert (self && self->tag == ARB_LINK_TAG);
    s_clear (self);
    if (arb_leases_settle (self->leases, id, outcome, error, result) == 0)
        return 0;
    s_fail (self, "task %" PRIu64 " is not held (never was, settled already, or stopped)", id);
    return -1;
}

int
arb_link_complete (arb_link_t *self, uint64_t id, zframe_t **result_p)
{
    return s_settle (self, id, ARB_OUTCOME_OK, NULL, result_p);
}

int
arb_link_fail (arb_link_t *self, uint64_t id, const char *error)
{
    return s_settle (self, id, ARB_OUTCOME_FAIL, error, NULL);
}

int
arb_link_release (arb_link_t *self, uint64_t id)
{
    return s_settle (self, id, ARB_OUTCOME_RELEASE, NULL, NULL);
}

//  ---------------------------------------------------------------------
//  What a turn sends.

void
arb_link_flush (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    //  outcomes and credit wait for the WELCOME; a consumer's cancel goes
    //  before the outcomes, else the broker may hand what it gives back
    //  (released with its channel) to it again before the cancel
    arb_msg_t *msg;
    if (self->session == S_READY) {
        while (s_writable (self)
               && (msg = arb_consumers_next_cancel (self->consumers, s_own_reqid (self))))
            s_send (self, &msg);
        while (arb_leases_has_results (self->leases) && s_writable (self)
               && (msg = arb_leases_results (self->leases, s_own_reqid (self), zclock_mono ())))
            s_send (self, &msg);
        while (arb_consumers_has_credit (self->consumers) && s_writable (self)
               && (msg = arb_consumers_next_credit (self->consumers, s_own_reqid (self))))
            s_send (self, &msg);
    }
    //  the turn's messages, requests among them, leave in one write
    if (self->dial)
        arb_dial_flush (self->dial);
}

//  Whether the flush has anything it could send now.
static bool
s_flush_due (arb_link_t *self)
{
    return self->session == S_READY
           && (arb_leases_has_results (self->leases) || arb_consumers_has_credit (self->consumers));
}

//  ---------------------------------------------------------------------
//  The session.

static void
s_state (arb_link_t *self, bool up)
{
    if (self->up == up)
        return;
    self->up = up;
    if (self->callbacks.state)
        self->callbacks.state (self, up, self->arg);
}

//  Starts a new session: sends REGISTER, claiming every task held.
static void
s_register (arb_link_t *self)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_REGISTER, s_own_reqid (self));
    arb_register_body_t *body = arb_msg_register (msg);
    body->name = self->name;
    body->mode = self->relay ? "relay" : "link";
    body->pid = (uint32_t) getpid ();
    body->host = self->host;
    body->acks = true;              //  outcomes stay held until RESULT_OK
    body->marks = !self->no_marks;  //  its HEARTBEAT says the mark it read
    self->no_marks = false;         //  this REGISTER only: the broker may be upgraded since
    arb_leases_claim (self->leases, msg);
    self->register_reqid = arb_msg_reqid (msg);
    //  a broker away for long: the oldest are forgotten (their answer, if
    //  one ever comes, is taken as any other refusal)
    if (arb_idset_size (self->registers) >= ARB_REGISTERS_KEPT)
        arb_idset_clear (self->registers);
    arb_idset_insert (self->registers, self->register_reqid);
    self->session = S_REGISTERING;
    self->register_at = zclock_mono () + self->register_wait_ms;
    arb_consumers_restart (self->consumers);
    s_send (self, &msg);
}

//  A connection gone: what went out on it, or waited to, is gone with it,
//  so every request waiting for its answer fails, as of unknown outcome;
//  with again, the session starts again on the next connection (REGISTER,
//  the watches), down until its WELCOME. The ids are taken first: the
//  state callback and the failed requests' callbacks may send new ones,
//  which go on the new connection.
static void
s_lose_connection (arb_link_t *self, bool again)
{
    size_t n;
    uint32_t *lost = arb_requests_ids (self->requests, &n);
    if (again) {
        s_register (self);
        arb_watchlist_rewatch (self->watchlist);
        s_state (self, false);
    }
    for (size_t i = 0; i < n; i++)
        if (arb_requests_contains (self->requests, lost[i]))
            s_request_fail (self, lost[i], "lost with the connection");
    free (lost);
}

//  The broker stopped answering (silence, or no WELCOME in time): a new
//  connection, a new session, the watches again, and every request that
//  went out on the old connection failed.
static void
s_reset (arb_link_t *self, const char *why)
{
    const char *refused = self->dial ? arb_dial_failure (self->dial)
                                     : arb_handshake_failure (self->handshake, self->secured);
    zsys_warning ("link: %s, connecting again endpoint=%s held=%zu pending=%zu%s%s%s", why,
                  self->endpoint, arb_leases_size (self->leases),
                  arb_requests_size (self->requests), refused ? " handshake=\"" : "",
                  refused ? refused : "", refused ? "\"" : "");
    //  requests a refused handshake kept from the broker fail saying so
    s_refused (self, self->dial ? arb_dial_refusal (self->dial)
                                : arb_handshake_refusal (self->handshake, self->secured));
    self->drained = false;
    if (self->dial) {
        arb_dial_reconnect (self->dial);
        self->dial_drops = arb_dial_drops (self->dial);  //  its requests fail below
    }
    else if (arb_dealer_reconnect (self->dealer, self->endpoint) != 0)
        zsys_error ("link: cannot reconnect endpoint=%s errno=%d", self->endpoint, zmq_errno ());
    s_lose_connection (self, true);
}

//  The broker does not know us (410): it restarted, or gave us up.
static void
s_lost (arb_link_t *self)
{
    zsys_info ("link: broker does not know us, registering again endpoint=%s held=%zu",
               self->endpoint, arb_leases_size (self->leases));
    s_register (self);
    s_state (self, false);
}

static void
s_on_lost_task (void *arg, uint64_t id)
{
    arb_link_t *self = (arb_link_t *) arg;
    if (self->callbacks.stop)
        self->callbacks.stop (self, id, ARB_LINK_LOST, self->arg);
}

static void
s_on_welcome (arb_link_t *self, arb_msg_t *msg)
{
    if (self->session != S_REGISTERING || arb_msg_reqid (msg) != self->register_reqid)
        return;  //  answers an earlier REGISTER
    arb_welcome_body_t *body = arb_msg_welcome (msg);
    arb_dial_set_max_payload (self->dial, body->max_payload);
    self->broker_max_payload = body->max_payload <= SIZE_MAX ? (size_t) body->max_payload : 0;
    self->heartbeat_ms = body->heartbeat_ms < 10 ? 10 : body->heartbeat_ms;
    self->liveness_ms =
        body->liveness_ms > self->heartbeat_ms ? body->liveness_ms : 3 * self->heartbeat_ms;
    self->session = S_READY;
    self->mark = 0;
    self->forbidden = false;
    arb_idset_clear (self->registers);
    self->register_wait_ms = ARB_REGISTER_FIRST;
    self->heartbeat_at = zclock_mono () + self->heartbeat_ms;
    size_t held = arb_leases_size (self->leases);
    zsys_info ("link: registered endpoint=%s name=%s epoch=%" PRIu64 " held=%zu taken_back=%zu",
               self->endpoint, self->name, body->epoch, held, body->adopted.n);
    //  every consumer's CREDIT goes again, with the credit it has left
    arb_consumers_announce (self->consumers);
    arb_leases_adopt (self->leases, body, s_on_lost_task, self);
    s_state (self, true);
}

//  ---------------------------------------------------------------------
//  What arrives.

//  A dispatched task nobody will see goes back to the head of its queue.
static void
s_release_unseen (arb_link_t *self, arb_dispatch_task_t *task, const char *why)
{
    zsys_debug ("link: dispatch released id=%" PRIu64 " sub=%u (%s)", task->id, task->sub, why);
    if (arb_leases_release (self->leases, task->id, task->lease))
        zsys_error ("link: dispatch neither held nor released id=%" PRIu64 " (held=%zu)", task->id,
                    arb_leases_size (self->leases));
}

static void
s_on_dispatch (arb_link_t *self, arb_msg_t *msg)
{
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_dispatch_task_t *task = &body->tasks.v[i];
        arb_link_dispatch_fn *fn;
        void *arg;
        if (!arb_consumers_dispatched (self->consumers, task->sub, &fn, &arg))
            s_release_unseen (self, task, "no such consumer");
        else if (arb_leases_add (self->leases, task->id, task->lease, task->sub))
            zsys_error ("link: dispatch of a task held already id=%" PRIu64, task->id);
        else
            fn (self, task->sub, task, arg);
    }
}

//  A reply to one of the caller's requests.
static void
s_on_reply (arb_link_t *self, arb_msg_t **msg_p)
{
    arb_msg_t *msg = *msg_p;
    uint32_t reqid = arb_msg_reqid (msg);
    arb_msg_type_t got = arb_msg_type (msg);
    arb_msg_type_t type = arb_requests_end (self->requests, reqid);
    if (!type) {
        //  late: its request failed locally. Tasks a late TAKE brought
        //  were never the caller's to see.
        for (size_t i = 0; got == ARB_MSG_DISPATCH && i < arb_msg_dispatch (msg)->tasks.n; i++)
            s_release_unseen (self, &arb_msg_dispatch (msg)->tasks.v[i], "late TAKE reply");
        return;
    }
    if (got != ARB_MSG_ERROR && got != arb_msg_reply_type (type)) {
        char reason[128];
        snprintf (reason, sizeof (reason), "broker answered %s with %s", arb_msg_type_name (type),
                  arb_msg_type_name (got));
        s_answer_locally (self, reqid, reason);
        return;
    }
    if (got == ARB_MSG_DISPATCH) {
        arb_dispatch_body_t *body = arb_msg_dispatch (msg);
        for (size_t i = 0; i < body->tasks.n; i++)
            if (arb_leases_add (self->leases, body->tasks.v[i].id, body->tasks.v[i].lease, 0))
                zsys_error ("link: taken task held already id=%" PRIu64, body->tasks.v[i].id);
    }
    bool unknown = got == ARB_MSG_ERROR && arb_msg_error (msg)->code == ARB_ERR_UNKNOWN_WORKER;
    if (self->callbacks.reply)
        self->callbacks.reply (self, reqid, msg_p, self->arg);
    if (unknown && self->session == S_READY)
        s_lost (self);  //  a TAKE the broker did not take from us
}

static void
s_on_error (arb_link_t *self, arb_msg_t **msg_p)
{
    arb_msg_t *msg = *msg_p;
    uint32_t reqid = arb_msg_reqid (msg);
    arb_error_body_t *body = arb_msg_error (msg);
    if (reqid != 0 && !(reqid & ARB_REQID_OWN)) {
        s_on_reply (self, msg_p);
        return;
    }
    if (body->code == ARB_ERR_UNKNOWN_WORKER) {
        //  only while READY: a 410 to a message sent before the current
        //  REGISTER arrives before its WELCOME
        if (self->session == S_READY)
            s_lost (self);
        return;
    }
    if (body->code == ARB_ERR_BAD_REQUEST && body->reason && strstr (body->reason, "'marks'")
        && arb_idset_remove (self->registers, reqid)) {
        //  a broker older than marks (400 unknown key): it checks busy by
        //  time, as before them. The answer to the last REGISTER only (one
        //  sent before it gets the same); the next REGISTER says marks
        //  again, for the broker may be upgraded by then
        if (reqid == self->register_reqid) {
            zsys_notice ("link: the broker takes no marks (older), registering without "
                         "endpoint=%s",
                         self->endpoint);
            self->no_marks = true;
            s_register (self);
        }
        return;
    }
    bool registering = body->code == ARB_ERR_FORBIDDEN && arb_idset_remove (self->registers, reqid);
    if (body->code == ARB_ERR_FORBIDDEN && (registering || self->session == S_READY)) {
        //  This certificate may not register, or, once registered, was
        //  shut out (removed from the broker's allowed folder, or its role
        //  changed: what its session sends is refused and renews nothing,
        //  and the broker gives its leases back once it has been silent for
        //  the liveness window). Said once, not at every REGISTER again
        //  (the timer's, every ARB_REGISTER_MAX at most) or refusal after.
        size_t dropped = registering ? 0 : arb_leases_acked (self->leases, reqid);
        const char *reason = body->reason ? body->reason : "";
        if (!self->forbidden && self->on_forbidden)
            self->on_forbidden (self, reason, self->arg);
        else if (!self->forbidden && registering)
            zsys_warning ("link: the broker refuses to register this link, registering again "
                          "every %d s in case it may code=%u reason=%s",
                          ARB_REGISTER_MAX / 1000, body->code, reason);
        else if (!self->forbidden)
            zsys_warning ("link: the broker shut this link out code=%u reason=%s "
                          "outcomes_dropped=%zu",
                          body->code, reason, dropped);
        self->forbidden = true;
        return;
    }
    if (body->code == ARB_ERR_JOURNAL_FULL) {
        //  the broker's turn was undone and nothing of it stored: the
        //  outcomes stay, sent again or claimed with the next REGISTER
        zsys_warning ("link: broker error code=%u reqid=%u reason=%s outcomes_kept", body->code,
                      reqid, body->reason ? body->reason : "");
        return;
    }
    //  a RESULT refused whole will never be taken: its outcomes are done
    size_t dropped = arb_leases_acked (self->leases, reqid);
    zsys_warning ("link: broker error code=%u reqid=%u reason=%s outcomes_dropped=%zu", body->code,
                  reqid, body->reason ? body->reason : "", dropped);
}

static void
s_on_stop (arb_link_t *self, arb_msg_t *msg)
{
    arb_stop_body_t *body = arb_msg_stop (msg);
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_stop_item_t *item = &body->tasks.v[i];
        if (arb_leases_drop (self->leases, item->id, item->lease) && self->callbacks.stop)
            self->callbacks.stop (self, item->id, (int) item->reason, self->arg);
    }
}

static void
s_on_message (arb_link_t *self, arb_msg_t **msg_p)
{
    uint32_t reqid = arb_msg_reqid (*msg_p);
    switch (arb_msg_type (*msg_p)) {
        case ARB_MSG_WELCOME:
            s_on_welcome (self, *msg_p);
            break;
        case ARB_MSG_ERROR:
            s_on_error (self, msg_p);
            break;
        case ARB_MSG_DISPATCH:
            if (reqid == 0)
                s_on_dispatch (self, *msg_p);
            else
                s_on_reply (self, msg_p);
            break;
        case ARB_MSG_STOP:
            s_on_stop (self, *msg_p);
            break;
        case ARB_MSG_EVENT:
            if (self->callbacks.event)
                self->callbacks.event (self, arb_msg_event (*msg_p), self->arg);
            break;
        case ARB_MSG_HEARTBEAT:
            //  its arrival is what counts, and its mark: every lease up
            //  to it came before (what the broker checks busy against)
            if (self->session == S_READY && arb_msg_heartbeat (*msg_p)->mark > self->mark)
                self->mark = arb_msg_heartbeat (*msg_p)->mark;
            break;
        case ARB_MSG_RESULT_OK:
            //  stored or refused after the broker's commit: done with
            arb_leases_acked (self->leases, reqid);
            break;
        default:
            if (reqid != 0 && !(reqid & ARB_REQID_OWN))
                s_on_reply (self, msg_p);
            break;  //  else an answer to the watchlist's keep-alive
    }
}

//  A message we cannot read: its request, if it is a caller's, fails.
static void
s_on_malformed (arb_link_t *self, arb_msg_t *msg)
{
    uint32_t reqid = msg ? arb_msg_reqid (msg) : 0;
    const char *why = msg ? arb_msg_decode_error (msg) : "no header";
    zsys_error ("link: malformed message from broker reqid=%u reason=%s", reqid, why ? why : "?");
    arb_watchlist_learn (self->watchlist, NULL, (reqid & ARB_REQID_OWN) != 0);
    if (reqid && !(reqid & ARB_REQID_OWN) && arb_requests_contains (self->requests, reqid))
        s_request_fail (self, reqid, "answered with a malformed message");
}

//  Whether the link was silent past the liveness window by its own clock:
//  nothing came from the broker for that long, or the program did not let
//  it run (it was stopped, SIGSTOP): the broker has given it up, or will
//  soon, and what waits in the socket was sent to a session that is gone.
static bool
s_was_silent (arb_link_t *self, int64_t now)
{
    return self->session == S_READY
           && (now - self->last_rx >= self->liveness_ms
               || (self->handled_at && now - self->handled_at >= self->liveness_ms));
}

static void
s_receive (arb_link_t *self)
{
    //  The socket's receive timeout is 0: a receive is the test for a
    //  message waiting, and costs no system call when one is (asking
    //  ZMQ_EVENTS before each one cost two).
    for (int k = 0; k < ARB_LINK_RECV_BATCH; k++) {
        arb_msg_t *msg = NULL;
        int rc = self->dial ? arb_dial_recv (self->dial, &self->limits, &msg)
                            : arb_msg_recv (zsock_resolve (self->dealer), &self->limits, &msg);
        //  the bytes of a message still on its way are the broker's life
        //  too (a big one on a slow link)
        if (self->dial && arb_dial_heard (self->dial) > self->last_rx)
            self->last_rx = arb_dial_heard (self->dial);
        if (rc == -1) {
            self->drained = !self->dial && zmq_errno () == EAGAIN;
            break;
        }
        self->drained = false;
        if (s_was_silent (self, zclock_mono ())) {
            //  stopped while reading: this message and those behind it
            //  are the old session's
            arb_msg_destroy (&msg);
            s_reset (self, "silent past the liveness window");
            break;
        }
        self->last_rx = zclock_mono ();
        if (rc != 0)
            s_on_malformed (self, msg);
        else {
            arb_watchlist_learn (self->watchlist, &msg, (arb_msg_reqid (msg) & ARB_REQID_OWN) != 0);
            if (msg)  //  else a DONE the watchlist reported
                s_on_message (self, &msg);
            //  reports a SUBMITTED made reportable follow the reply
            arb_watchlist_settle (self->watchlist);
        }
        arb_msg_destroy (&msg);
    }
}

//  ---------------------------------------------------------------------
//  Timers and the turn.

static void
s_timers (arb_link_t *self)
{
    int64_t now = zclock_mono ();
    uint32_t reqid;
    int64_t sent_at;
    while ((reqid = arb_requests_oldest (self->requests, &sent_at))
           && now - sent_at >= self->timeout_ms) {
        char why[64];
        snprintf (why, sizeof (why), "not answered within %.1f s", self->timeout_ms / 1000.0);
        s_request_fail (self, reqid, why);
    }
    if (self->session == S_READY && now - self->last_rx >= self->liveness_ms)
        s_reset (self, "broker silent past its liveness window");
    else if (self->session == S_READY && now >= self->heartbeat_at) {
        arb_msg_t *beat = arb_msg_new (ARB_MSG_HEARTBEAT, s_own_reqid (self));
        arb_msg_heartbeat (beat)->busy = (uint32_t) arb_leases_size (self->leases);
        arb_msg_heartbeat (beat)->mark = self->mark;
        //  one refused (a full queue) is not tried again before the next:
        //  a broker that does not read soon counts as silent anyway
        s_send (self, &beat);
        self->heartbeat_at = now + self->heartbeat_ms;
    }
    else if (self->session == S_REGISTERING && now >= self->register_at) {
        self->register_wait_ms *= 2;
        if (self->register_wait_ms > ARB_REGISTER_MAX)
            self->register_wait_ms = ARB_REGISTER_MAX;
        s_reset (self, "no WELCOME");
    }
    //  outcomes whose RESULT, or its answer, went missing go again
    if (self->session == S_READY)
        arb_leases_resend (self->leases, now, self->liveness_ms);
    arb_watchlist_tick (self->watchlist, now, self->timeout_ms);
}

//  The broker's connection dropped since the last turn: what went out on
//  it, or waited to, is gone (the dial cleared it), so the requests
//  waiting for their answers fail now, as of unknown outcome, rather than
//  at the liveness window. The session is in doubt too (the broker may
//  have restarted, and would answer the next request 410): it registers
//  again on the next connection, claiming what it holds, and is down until
//  the WELCOME, so that nothing is asked of a broker that does not know it.
static void
s_check_drops (arb_link_t *self)
{
    uint64_t drops = arb_dial_drops (self->dial);
    if (drops == self->dial_drops)
        return;
    self->dial_drops = drops;
    bool ready = self->session == S_READY;
    if (ready)
        zsys_info ("link: the broker's connection dropped, registering again endpoint=%s "
                   "held=%zu pending=%zu",
                   self->endpoint, arb_leases_size (self->leases),
                   arb_requests_size (self->requests));
    s_lose_connection (self, ready);
}

void
arb_link_handle (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG && !self->in_handle);
    self->in_handle = true;
    arb_msg_t *done;
    while ((done = (arb_msg_t *) zlistx_detach (self->reports, NULL)))
        s_deliver_reports (self, &done);
    //  Before anything it received meanwhile is handed out: a link back
    //  from a silence registers again on a new connection, and the
    //  DISPATCHes waiting in the old one go with it (the broker gave those
    //  tasks to others, or gives them back as lost leases).
    if (s_was_silent (self, zclock_mono ()))
        s_reset (self, "silent past the liveness window");
    s_receive (self);
    if (self->dial) {  //  a DEALER's refusals come through arb_link_handshake
        s_refused (self, arb_dial_refusal (self->dial));
        s_check_drops (self);
    }
    s_timers (self);
    arb_link_flush (self);
    self->handled_at = zclock_mono ();
    self->in_handle = false;
}

zsock_t *
arb_link_events (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    return arb_handshake_events (self->handshake);
}

void
arb_link_handshake (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG && !self->in_handle);
    //  read every time, so that the socket polled is quiet again
    const char *refusal = arb_handshake_refusal (self->handshake, self->secured);
    self->in_handle = true;  //  the reply callbacks may run
    s_refused (self, refusal);
    self->in_handle = false;
}

int
arb_link_timeout (arb_link_t *self)
{
    assert (self && self->tag == ARB_LINK_TAG);
    if (zlistx_size (self->reports) > 0)
        return 0;
    int64_t now = zclock_mono ();
    int64_t next = INT64_MAX;
    if (self->dial) {
        int wait = arb_dial_timeout (self->dial);
        if (wait == 0)
            return 0;
        if (s_flush_due (self))
            return arb_dial_is_writable (self->dial) ? 0 : ARB_OUTPUT_RETRY_MS;
        if (wait > 0)
            next = now + wait;
    }
    else {
        //  drained: nothing waited at the last receive, and the descriptor
        //  tells of what came since (no send has taken its signal)
        int events = self->drained ? 0 : zsock_events (self->dealer);
        if (events & ZMQ_POLLIN)
            return 0;
        if (s_flush_due (self)) {
            if (self->drained)
                events = zsock_events (self->dealer);
            return (events & ZMQ_POLLOUT) ? 0 : ARB_OUTPUT_RETRY_MS;
        }
    }
    int64_t tick = arb_watchlist_tick_at (self->watchlist);
    if (tick < next)
        next = tick;
    int64_t sent_at;
    if (arb_requests_oldest (self->requests, &sent_at) && sent_at + self->timeout_ms < next)
        next = sent_at + self->timeout_ms;
    if (self->session == S_READY) {
        if (self->heartbeat_at < next)
            next = self->heartbeat_at;
        if (self->last_rx + self->liveness_ms < next)
            next = self->last_rx + self->liveness_ms;
        int64_t resend_at = arb_leases_resend_at (self->leases, self->liveness_ms);
        if (resend_at < next)
            next = resend_at;
    }
    else if (self->register_at < next)
        next = self->register_at;
    if (next <= now)
        return 0;
    return next - now > INT32_MAX ? INT32_MAX : (int) (next - now);
}
