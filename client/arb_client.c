/*  arb_client.c — the arbiter client: one DEALER socket, its requests and
    the tasks it watches.

    Everything happens on the caller's thread, inside the call that is
    waiting on the socket: there is no background thread. Every incoming
    message goes through s_file, which first lets the watchlist learn from
    it (an epoch in PONG, the ids of a SUBMIT with watch, ids the broker
    does not know in WATCHING; it takes DONE reports and puts the ones to
    hand out in the inbox) and then hands it to whoever is waiting for it:
    the synchronous call that wants this request id, the inbox (reqid 0
    messages, replies to arb_client_send), or the bin (a reply that came
    after its request timed out, an answer to one of our own keep-alive
    requests).

    Exactly-once reports and the keep-alive of watches are the watchlist's
    (arb_watchlist.h); the client sends its requests with ids that have the
    top bit set and runs its timer from whichever call waits on the socket.
    A probe that stays unanswered for the request timeout makes
    arb_client_next report the broker unreachable rather than hang.
*/

#include "arb_client_priv.h"
#include "arb_dealer.h"
#include "arb_idset.h"
#include "arb_spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>

#define ARB_REQID_INTERNAL   0x80000000u  //  top bit: the client's own requests
#define ARB_RECV_BATCH       256          //  messages received per wake-up before timers run again
#define ARB_CLIENT_EVENTS_MS 250          //  longest wait while handshake events are watched
#define ARB_CLIENT_TAG       0x0c1e0001u  //  a live arb_client_t
#define ARB_CLIENT_DEAD      0xdeadc1e0u  //  written on destroy, to catch use after it

struct _arb_client_t {
    uint32_t tag;                //  ARB_CLIENT_TAG
    zsock_t *dealer;             //  owned
    char *endpoint;              //  owned
    bool secured;                //  a CURVE client (arb_client_new_curve)
    arb_handshake_t *handshake;  //  owned: why a broker may not answer; NULL if not watched
    bool refused;                //  a call ended on a refused handshake (s_still_refused)
    int timeout_ms;              //  per request
    size_t max_payload;          //  bytes, outgoing payloads
    arb_limits_t limits;         //  decoding of replies
    uint32_t reqid;              //  last request id given to the caller
    uint32_t internal_reqid;     //  last id of our own requests (without the top bit)
    int error_code;              //  arb_err_t of the last failure, 0 local
    bool failed;                 //  the last call failed: error holds why
    char error[ARB_TEXT_MAX + 256];
    arb_watchlist_t *watchlist;  //  owned: watched tasks and their keep-alive
    arb_idset_t *pending;        //  owned: request ids of arb_client_send awaiting a reply
    zlistx_t *inbox;             //  owned arb_msg_t *, in order of arrival
    arb_msg_t *current;          //  owned DONE that arb_client_next is handing out, or NULL
    size_t current_index;        //  its next record
    bool *refused_v;             //  owned: per task of the last submit, its queue refused it
    size_t refused_n;            //  entries of refused_v
    char *forbidden;             //  owned: the reason of a 403 to our keep-alive; NULL none
};

static void s_file (arb_client_t *self, int rc, arb_msg_t *msg, uint32_t want, arb_msg_t **reply);
static int s_offer (arb_client_t *self, arb_msg_t **msg_p, const char **refusal);

//  ---------------------------------------------------------------------
//  Errors.

static void s_fail (arb_client_t *self, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_vfail (arb_client_t *self, int code, const char *fmt, va_list args)
{
    vsnprintf (self->error, sizeof (self->error), fmt, args);
    self->error_code = code;
    self->failed = true;
}

static void
s_fail (arb_client_t *self, int code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_vfail (self, code, fmt, args);
    va_end (args);
}

void
arb_client_fail (arb_client_t *self, int code, const char *fmt, ...)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    va_list args;
    va_start (args, fmt);
    s_vfail (self, code, fmt, args);
    va_end (args);
}

//  A broker that refused our handshake: it never saw the request.
static void
s_fail_refused (arb_client_t *self, const char *refusal)
{
    s_fail (self, 0, "broker %s refused the connection: %s", self->endpoint, refusal);
    self->refused = true;
}

//  After a refusal (only then: the watcher is not read otherwise), why
//  the broker still refuses us, or NULL once a handshake has succeeded.
//  Asked before a call sends or waits: libzmq may never try again (after
//  ZAP's 400 it does not), so no new event would come, and a send would
//  wait its whole timeout for a connection.
static const char *
s_still_refused (arb_client_t *self)
{
    if (!self->refused)
        return NULL;
    const char *refusal = arb_handshake_refusal (self->handshake, self->secured);
    self->refused = refusal != NULL;
    return refusal;
}

static void
s_clear (arb_client_t *self)
{
    self->failed = false;
    self->error_code = 0;
    self->error[0] = 0;
}

//  ---------------------------------------------------------------------
//  Construction.

static void
s_inbox_destroy (void **item)
{
    arb_msg_destroy ((arb_msg_t **) item);
}

static uint32_t
s_next_internal (arb_client_t *self)
{
    self->internal_reqid = (self->internal_reqid + 1) & ~ARB_REQID_INTERNAL;
    if (self->internal_reqid == 0)
        self->internal_reqid = 1;
    return ARB_REQID_INTERNAL | self->internal_reqid;
}

//  Sends a keep-alive request of the watchlist's (arb_watchlist_send_fn),
//  as a caller's request goes (s_offer), not with a blocking send: after a
//  refused handshake the dealer has no connection left to queue on, and a
//  blocking send would wait its whole timeout deaf to the watcher (a CI
//  run's wait, refused ZAP 400 before the PING that its first watch
//  sends, took 30 s). A refusal seen is kept for the call that goes on
//  (s_still_refused), which then fails at once.
static int
s_watchlist_send (void *arg, arb_msg_t **request_p)
{
    arb_client_t *self = (arb_client_t *) arg;
    arb_msg_set_reqid (*request_p, s_next_internal (self));
    const char *refusal = NULL;
    if (s_offer (self, request_p, &refusal) == 0)
        return 0;
    if (refusal)
        self->refused = true;
    return -1;
}

static void
s_inbox_add (arb_client_t *self, arb_msg_t **msg_p)
{
    zlistx_add_end (self->inbox, *msg_p);
    *msg_p = NULL;
}

//  Queues the watchlist's reports in order of arrival (arb_watchlist_report_fn).
static void
s_watchlist_report (void *arg, arb_msg_t **done_p)
{
    s_inbox_add ((arb_client_t *) arg, done_p);
}

arb_client_t *
arb_client_new (const char *endpoint)
{
    char why[512];
    arb_curve_t *curve = arb_curve_resolve (NULL, NULL, why, sizeof (why));
    if (!curve && *why) {
        zsys_error ("client: %s", why);
        errno = EINVAL;
        return NULL;
    }
    arb_client_t *self = arb_client_new_curve (endpoint, curve);
    arb_curve_destroy (&curve);
    return self;
}

arb_client_t *
arb_client_new_curve (const char *endpoint, const arb_curve_t *curve)
{
    endpoint = arb_dealer_endpoint (endpoint);
    arb_handshake_t *handshake = NULL;
    zsock_t *dealer = arb_dealer_new (endpoint, curve, &handshake);
    if (!dealer)
        return NULL;
    zsock_set_sndtimeo (dealer, ARB_CLIENT_TIMEOUT_MS);
    zsock_set_rcvtimeo (dealer, 0);  //  the waits are s_wait's
    arb_client_t *self = (arb_client_t *) zmalloc (sizeof (arb_client_t));
    self->tag = ARB_CLIENT_TAG;
    self->dealer = dealer;
    self->endpoint = strdup (endpoint);
    self->secured = curve != NULL;
    self->handshake = handshake;
    self->timeout_ms = ARB_CLIENT_TIMEOUT_MS;
    self->max_payload = ARB_PAYLOAD_DEFAULT_MAX;
    //  Replies are trusted to fit: the broker applied its own limit to
    //  every result, and refusing a DONE here would lose its reports.
    self->limits.max_frame = SIZE_MAX;
    self->watchlist = arb_watchlist_new (s_watchlist_send, s_watchlist_report, self);
    arb_watchlist_set_interval (self->watchlist, ARB_CLIENT_REWATCH_MS);
    self->pending = arb_idset_new ();
    self->inbox = zlistx_new ();
    zlistx_set_destructor (self->inbox, s_inbox_destroy);
    return self;
}

void
arb_client_destroy (arb_client_t **self_p)
{
    assert (self_p);
    arb_client_t *self = *self_p;
    if (!self)
        return;
    arb_handshake_destroy (&self->handshake);
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    arb_watchlist_destroy (&self->watchlist);
    arb_idset_destroy (&self->pending);
    zlistx_destroy (&self->inbox);
    arb_msg_destroy (&self->current);
    free (self->refused_v);
    free (self->forbidden);
    self->tag = ARB_CLIENT_DEAD;
    free (self);
    *self_p = NULL;
}

const char *
arb_client_endpoint (arb_client_t *self)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    return self->endpoint;
}

void
arb_client_set_timeout (arb_client_t *self, int timeout_ms)
{
    assert (self && self->tag == ARB_CLIENT_TAG && timeout_ms > 0);
    self->timeout_ms = timeout_ms;
    zsock_set_sndtimeo (self->dealer, timeout_ms);
}

void
arb_client_set_rewatch (arb_client_t *self, int interval_ms)
{
    assert (self && self->tag == ARB_CLIENT_TAG && interval_ms > 0);
    arb_watchlist_set_interval (self->watchlist, interval_ms);
}

void
arb_client_set_max_payload (arb_client_t *self, size_t bytes)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    self->max_payload = bytes;
}

const char *
arb_client_error (arb_client_t *self)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    return self->failed ? self->error : NULL;
}

int
arb_client_error_code (arb_client_t *self)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    return self->error_code;
}

size_t
arb_client_watching (arb_client_t *self)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    return arb_watchlist_size (self->watchlist);
}

//  ---------------------------------------------------------------------
//  Sending, and the bookkeeping a request implies.

arb_msg_t *
arb_client_request_new (arb_client_t *self, arb_msg_type_t type)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    //  1 .. 2^31 - 1, then around again: 0 is for streamed messages and
    //  the top bit for our own requests.
    self->reqid = self->reqid % (ARB_REQID_INTERNAL - 1) + 1;
    return arb_msg_new (type, self->reqid);
}

//  A send's wait for the dealer to take a message (arb_msg_send_when).
typedef struct {
    arb_client_t *client;
    int64_t deadline;     //  zclock_mono
    const char *refusal;  //  why the broker refused us, if it did
} s_sending_t;

//  Waits a slice for the dealer to become writable, reading the handshake
//  watcher meanwhile. A handshake refused just before a send (libzmq ends
//  that connection for good, on a mechanism's mismatch as after ZAP's
//  400) leaves the socket nothing to queue it on, even after ZMQ_EVENTS
//  said it could: a blocking send would wait its whole timeout, deaf to
//  the watcher (a CI run's ping with a certificate, to a broker without
//  --curve, took its 30 s). Returns 0 to offer the message again, -1 to
//  give up: refused, past the deadline, or interrupted.
static int
s_sending_wait (void *arg)
{
    s_sending_t *sending = (s_sending_t *) arg;
    arb_client_t *self = sending->client;
    sending->refusal = arb_handshake_refusal (self->handshake, self->secured);
    int64_t left = sending->deadline - zclock_mono ();
    if (sending->refusal || left <= 0 || zsys_interrupted)
        return -1;
    zsock_t *events = arb_handshake_events (self->handshake);
    long slice = events && left > ARB_CLIENT_EVENTS_MS ? ARB_CLIENT_EVENTS_MS : (long) left;
    zmq_pollitem_t items[2] = {{zsock_resolve (self->dealer), 0, ZMQ_POLLOUT, 0},
                               {events ? zsock_resolve (events) : NULL, 0, ZMQ_POLLIN, 0}};
    zmq_poll (items, events ? 2 : 1, slice);  //  a signal: looked at next time
    return 0;
}

//  Offers one message to the dealer until it takes it or the request
//  timeout passes, reading the handshake watcher meanwhile. 0 sent, -1
//  lost: *refusal is why the broker refused us if it did (borrowed), else
//  NULL (past the timeout, or interrupted).
static int
s_offer (arb_client_t *self, arb_msg_t **msg_p, const char **refusal)
{
    s_sending_t sending = {.client = self, .deadline = zclock_mono () + self->timeout_ms};
    *refusal = NULL;
    if (arb_msg_send_when (msg_p, self->dealer, s_sending_wait, &sending) == 0)
        return 0;
    *refusal = sending.refusal;
    //  a refused handshake leaves no connection to take it
    if (!*refusal && !zsys_interrupted)
        *refusal = arb_handshake_refusal (self->handshake, self->secured);
    return -1;
}

//  Sends one message. On failure the message is lost and the error says so.
static int
s_send (arb_client_t *self, arb_msg_t **msg_p)
{
    const char *refusal = NULL;
    if (s_offer (self, msg_p, &refusal) == 0)
        return 0;
    if (zsys_interrupted) {
        s_fail (self, 0, "interrupted");
        return -1;
    }
    if (refusal)
        s_fail_refused (self, refusal);
    else
        s_fail (self, 0, "cannot send to broker %s within %.1f s (send queue full)", self->endpoint,
                self->timeout_ms / 1000.0);
    return -1;
}

//  Checks and sends a caller's request. Returns its request id, or 0.
static uint32_t
s_send_request (arb_client_t *self, arb_msg_t **request_p)
{
    assert (request_p && *request_p);
    uint32_t reqid = arb_msg_reqid (*request_p);
    if (reqid == 0 || (reqid & ARB_REQID_INTERNAL)) {
        arb_msg_destroy (request_p);
        s_fail (self, 0, "request id %u was not made by arb_client_request_new", reqid);
        return 0;
    }
    const char *refusal = s_still_refused (self);
    if (refusal) {
        arb_msg_destroy (request_p);
        s_fail_refused (self, refusal);
        return 0;
    }
    arb_watchlist_track (self->watchlist, *request_p);
    if (s_send (self, request_p)) {
        arb_watchlist_untrack (self->watchlist, reqid);
        return 0;
    }
    return reqid;
}

//  ---------------------------------------------------------------------
//  Waiting.

//  Runs the keep-alive if due, then waits until a message is readable, the
//  deadline (ms, zclock_mono) passes, a timer of ours falls due, or the
//  handshake watcher has news. Returns 1 readable, 2 the broker refused
//  our handshakes (*refusal says why: borrowed, until the watcher's next
//  call), 0 woke without either, -1 interrupted.
static int
s_wait (arb_client_t *self, int64_t deadline, const char **refusal)
{
    if (zsys_interrupted)
        return -1;
    int64_t now = zclock_mono ();
    arb_watchlist_tick (self->watchlist, now, self->timeout_ms);
    //  after the keep-alive, which may have met a refusal (s_watchlist_send)
    if ((*refusal = s_still_refused (self)))
        return 2;
    if (zsock_events (self->dealer) & ZMQ_POLLIN)
        return 1;
    int64_t until = deadline;
    int64_t tick_at = arb_watchlist_tick_at (self->watchlist);
    if (tick_at < until)
        until = tick_at;
    //  arb_client_next must wake when a probe has gone unanswered too long
    int64_t probe_at = arb_watchlist_probe_at (self->watchlist);
    int64_t probe_due = probe_at + self->timeout_ms;
    if (probe_at && probe_due > now && probe_due < until)
        until = probe_due;
    long timeout = until == INT64_MAX ? -1 : (long) (until > now ? until - now : 0);
    //  the watcher's events are read only here, while a call waits: a
    //  refused handshake ends the wait at once, not at the timeout. The
    //  wait is cut to ARB_CLIENT_EVENTS_MS while one is watched, and every
    //  wake reads the watcher, whatever the poll said of it: a poll once
    //  slept through an event that had come (a CI run's 30 s ping refused
    //  only at its end), and a wake that read the watcher only when the
    //  poll marked it did so again (another CI run: a certificate sent to
    //  a broker without --curve, 30 s).
    zsock_t *events = arb_handshake_events (self->handshake);
    if (events && (timeout < 0 || timeout > ARB_CLIENT_EVENTS_MS))
        timeout = ARB_CLIENT_EVENTS_MS;
    zmq_pollitem_t items[2] = {{zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0},
                               {events ? zsock_resolve (events) : NULL, 0, ZMQ_POLLIN, 0}};
    int rc = zmq_poll (items, events ? 2 : 1, timeout);
    if (rc < 0)  //  a signal: SIGINT sets zsys_interrupted (czmq's handler), others do not count
        return zsys_interrupted ? -1 : 0;
    if (items[0].revents & ZMQ_POLLIN)
        return 1;
    *refusal = events ? arb_handshake_refusal (self->handshake, self->secured) : NULL;
    return *refusal ? 2 : 0;
}

//  Receives what is waiting (up to a batch) and files it. Stores the reply
//  to `want` in *reply when it comes (want 0: nothing is wanted).
static void
s_receive (arb_client_t *self, uint32_t want, arb_msg_t **reply)
{
    //  a receive (timeout 0) is the test for a message waiting
    for (int k = 0; k < ARB_RECV_BATCH && !*reply; k++) {
        arb_msg_t *msg = NULL;
        int rc = arb_msg_recv (self->dealer, &self->limits, &msg);
        if (rc == -1)
            break;
        s_file (self, rc, msg, want, reply);
    }
}

//  Turns a reply into the caller's result: ERROR and a reply of the wrong
//  type become NULL with the error set.
static arb_msg_t *
s_check_reply (arb_client_t *self, arb_msg_t *reply, arb_msg_type_t type)
{
    arb_msg_type_t got = arb_msg_type (reply);
    if (got == ARB_MSG_ERROR) {
        arb_error_body_t *error = arb_msg_error (reply);
        s_fail (self, (int) error->code, "%s", error->reason ? error->reason : "");
        arb_msg_destroy (&reply);
    }
    else if (arb_msg_reply_type (type) && got != arb_msg_reply_type (type)) {
        s_fail (self, 0, "broker %s answered %s with %s", self->endpoint, arb_msg_type_name (type),
                arb_msg_type_name (got));
        arb_msg_destroy (&reply);
    }
    return reply;
}

//  A broker that does not answer: said, with why when its handshake
//  refused us (no certificate, or one it does not allow, a wrong key).
static void
s_fail_silent (arb_client_t *self)
{
    const char *refused = arb_handshake_failure (self->handshake, self->secured);
    if (!refused && !arb_handshake_reached (self->handshake))
        //  no connection was ever made: nothing listens there
        s_fail (self, 0,
                "cannot reach the broker at %s: no connection within %.1f s (is arbiterd "
                "running there?)",
                self->endpoint, self->timeout_ms / 1000.0);
    else if (!refused && !arb_handshake_greeted (self->handshake))
        //  connected, and not a word: no ZeroMQ peer holds that port
        s_fail (self, 0,
                "broker %s did not answer within %.1f s: a connection was made, but no ZeroMQ "
                "handshake: it %s",
                self->endpoint, self->timeout_ms / 1000.0, ARB_HANDSHAKE_NOT_ARBITERD);
    else
        s_fail (self, 0, "broker %s did not answer within %.1f s%s%s", self->endpoint,
                self->timeout_ms / 1000.0, refused ? ": " : "", refused ? refused : "");
}

static void
s_fail_timeout (arb_client_t *self, arb_msg_type_t type, uint32_t reqid)
{
    double seconds = self->timeout_ms / 1000.0;
    const char *refused = arb_handshake_failure (self->handshake, self->secured);
    if (!refused && !arb_handshake_reached (self->handshake)) {
        //  no connection was ever made: the request reached no broker (no
        //  outcome to be unsure of), and what the socket queued goes, or a
        //  broker started later would still get it
        if (type == ARB_MSG_SUBMIT)
            arb_watchlist_untrack (self->watchlist, reqid);
        if (arb_dealer_reconnect (self->dealer, self->endpoint) != 0)
            zsys_warning ("client: cannot reconnect to %s: %s", self->endpoint,
                          zmq_strerror (zmq_errno ()));
        s_fail_silent (self);
    }
    else if (type == ARB_MSG_SUBMIT && !refused) {
        //  its late SUBMITTED will be dropped, so it names no ids to watch
        arb_watchlist_untrack (self->watchlist, reqid);
        s_fail (self, 0,
                "submit not acknowledged within %.1f s (broker %s): outcome unknown; "
                "re-submit with the same --key to be safe",
                seconds, self->endpoint);
    }
    else {
        if (type == ARB_MSG_SUBMIT)  //  never reached the broker
            arb_watchlist_untrack (self->watchlist, reqid);
        s_fail_silent (self);
    }
}

//  One wait of a call that waits (s_await, arb_client_next,
//  arb_client_recv), and what came read: the reply to reqid (0: none
//  awaited) into *reply, the rest to the inbox and the watchlist. 0 to
//  look again, -1 failed (interrupted, or the broker refused us: the
//  error is set).
static int
s_pump (arb_client_t *self, int64_t deadline, uint32_t reqid, arb_msg_t **reply)
{
    const char *refusal = NULL;
    int rc = s_wait (self, deadline, &refusal);
    if (rc < 0) {
        s_fail (self, 0, "interrupted");
        return -1;
    }
    if (rc == 2) {
        //  its late SUBMITTED, should one ever come, names no ids to watch
        if (reqid)
            arb_watchlist_untrack (self->watchlist, reqid);
        s_fail_refused (self, refusal);
        return -1;
    }
    if (rc > 0)
        s_receive (self, reqid, reply);
    return 0;
}

//  Waits for the reply to reqid; see arb_client_request.
static arb_msg_t *
s_await (arb_client_t *self, uint32_t reqid, arb_msg_type_t type)
{
    int64_t deadline = zclock_mono () + self->timeout_ms;
    arb_msg_t *reply = NULL;
    while (!reply) {
        if (zclock_mono () >= deadline) {
            s_fail_timeout (self, type, reqid);
            return NULL;
        }
        if (s_pump (self, deadline, reqid, &reply) != 0)
            return NULL;
    }
    return s_check_reply (self, reply, type);
}

arb_msg_t *
arb_client_request (arb_client_t *self, arb_msg_t **request_p)
{
    assert (self && self->tag == ARB_CLIENT_TAG && request_p && *request_p);
    s_clear (self);
    arb_msg_type_t type = arb_msg_type (*request_p);
    uint32_t reqid = s_send_request (self, request_p);
    if (!reqid)
        return NULL;
    return s_await (self, reqid, type);
}

uint32_t
arb_client_send (arb_client_t *self, arb_msg_t **request_p)
{
    assert (self && self->tag == ARB_CLIENT_TAG && request_p && *request_p);
    s_clear (self);
    uint32_t reqid = s_send_request (self, request_p);
    if (reqid)
        arb_idset_insert (self->pending, reqid);
    return reqid;
}

//  ---------------------------------------------------------------------
//  Filing incoming messages.

//  A reply we cannot read: if someone waits for it, they get an ERROR
//  (code 0: the failure is ours to report, not the broker's).
static void
s_file_malformed (arb_client_t *self, arb_msg_t *msg, uint32_t want, arb_msg_t **reply)
{
    const char *why = msg ? arb_msg_decode_error (msg) : "no header";
    uint32_t reqid = msg ? arb_msg_reqid (msg) : 0;
    zsys_warning ("client: malformed message from broker reqid=%u reason=%s", reqid, why);
    arb_watchlist_untrack (self->watchlist, reqid);  //  its SUBMITTED will never be read
    if (reqid && (reqid == want || arb_idset_remove (self->pending, reqid))) {
        char reason[ARB_TEXT_MAX];
        snprintf (reason, sizeof (reason), "malformed reply from the broker: %s", why);
        arb_msg_t *error = arb_msg_new (ARB_MSG_ERROR, reqid);
        arb_msg_error (error)->reason = arb_msg_strdup (error, reason);
        if (reqid == want)
            *reply = error;
        else
            s_inbox_add (self, &error);
    }
    arb_msg_destroy (&msg);
}

//  Applies what a message tells the client, then gives it to the caller
//  waiting for reply `want`, to the inbox, or to the bin.
static void
s_file (arb_client_t *self, int rc, arb_msg_t *msg, uint32_t want, arb_msg_t **reply)
{
    uint32_t reqid = msg ? arb_msg_reqid (msg) : 0;
    bool ours = (reqid & ARB_REQID_INTERNAL) != 0;
    if (rc != 0) {
        arb_watchlist_learn (self->watchlist, NULL, ours);
        s_file_malformed (self, msg, want, reply);
        return;
    }
    arb_watchlist_learn (self->watchlist, &msg, ours);
    if (!msg)
        return;  //  a DONE: the watchlist queued what is to be reported
    if (ours && arb_msg_type (msg) == ARB_MSG_ERROR) {
        arb_error_body_t *error = arb_msg_error (msg);
        //  403: this certificate may watch no more (removed from the
        //  broker's allowed folder, or another role), and the broker
        //  dropped its watches: arb_client_next says so
        if (error->code == ARB_ERR_FORBIDDEN) {
            free (self->forbidden);
            self->forbidden = strdup (error->reason ? error->reason : "forbidden");
        }
        else
            zsys_warning ("client: broker refused a keep-alive reason=%s", error->reason);
    }
    if (want && reqid == want)
        *reply = msg;
    else if (reqid == 0 || arb_idset_remove (self->pending, reqid))
        s_inbox_add (self, &msg);
    else
        arb_msg_destroy (&msg);  //  late reply to a timed-out request, or our own keep-alive
    //  reports a SUBMITTED made reportable follow the reply that named them
    arb_watchlist_settle (self->watchlist);
}

//  ---------------------------------------------------------------------
//  Watched tasks.

void
arb_done_destroy (arb_done_t **self_p)
{
    assert (self_p);
    arb_done_t *self = *self_p;
    if (!self)
        return;
    free (self->error);
    zframe_destroy (&self->result);
    free (self);
    *self_p = NULL;
}

//  The next report out of the current DONE, or of the first DONE in the
//  inbox; NULL if there is none.
static arb_done_t *
s_take_done (arb_client_t *self)
{
    while (!self->current) {
        arb_msg_t *msg = (arb_msg_t *) zlistx_first (self->inbox);
        while (msg && arb_msg_type (msg) != ARB_MSG_DONE)
            msg = (arb_msg_t *) zlistx_next (self->inbox);
        if (!msg)
            return NULL;
        self->current = (arb_msg_t *) zlistx_detach_cur (self->inbox);
        self->current_index = 0;
    }
    arb_done_body_t *body = arb_msg_done (self->current);
    arb_done_task_t *task = &body->tasks.v[self->current_index++];
    arb_done_t *done = (arb_done_t *) zmalloc (sizeof (arb_done_t));
    done->id = task->id;
    done->state = (int) task->state;
    done->attempts = task->attempts;
    done->error = task->error ? strdup (task->error) : NULL;
    done->result = task->result;
    task->result = NULL;
    if (self->current_index == body->tasks.n)
        arb_msg_destroy (&self->current);
    return done;
}

arb_done_t *
arb_client_next (arb_client_t *self, int timeout_ms)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    s_clear (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (true) {
        arb_done_t *done = s_take_done (self);
        if (done)
            return done;
        if (!arb_watchlist_is_outstanding (self->watchlist)) {
            s_fail (self, 0, "no watched task is outstanding");
            return NULL;
        }
        if (self->forbidden) {
            s_fail (self, ARB_ERR_FORBIDDEN, "%s", self->forbidden);
            free (self->forbidden);  //  a later call waits, and is refused, again
            self->forbidden = NULL;
            return NULL;
        }
        int64_t now = zclock_mono ();
        int64_t probe_at = arb_watchlist_probe_at (self->watchlist);
        if (probe_at && now - probe_at >= self->timeout_ms) {
            arb_watchlist_forget_probe (self->watchlist);  //  a later call probes again
            s_fail_silent (self);
            return NULL;
        }
        if (now >= deadline)
            return NULL;
        arb_msg_t *none = NULL;
        if (s_pump (self, deadline, 0, &none) != 0)
            return NULL;
    }
}

//  ---------------------------------------------------------------------
//  Synchronous calls.

int
arb_client_ping (arb_client_t *self, uint64_t *epoch)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    arb_msg_t *ping = arb_client_request_new (self, ARB_MSG_PING);
    arb_msg_t *pong = arb_client_request (self, &ping);
    if (!pong)
        return -1;
    if (epoch)
        *epoch = arb_msg_pong (pong)->epoch;
    arb_msg_destroy (&pong);
    return 0;
}

//  Reads SUBMITTED into the caller's arrays (any of them NULL: not wanted).
static int
s_read_submitted (
    arb_client_t *self, arb_msg_t *reply, size_t n, uint64_t *ids, bool *existing, uint64_t *flow)
{
    arb_submitted_body_t *submitted = arb_msg_submitted (reply);
    if (submitted->tasks.n != n) {
        s_fail (self, 0, "broker %s acknowledged %zu tasks of %zu", self->endpoint,
                submitted->tasks.n, n);
        return -1;
    }
    free (self->refused_v);
    self->refused_v = (bool *) zmalloc (n ? n * sizeof (bool) : 1);
    self->refused_n = n;
    for (size_t i = 0; i < n; i++) {
        ids[i] = submitted->tasks.v[i].id;
        if (existing)
            existing[i] = submitted->tasks.v[i].existing;
        self->refused_v[i] = submitted->tasks.v[i].refused;
    }
    if (flow)
        *flow = submitted->flow;
    return 0;
}

static int
s_submit (arb_client_t *self,
          arb_flow_kind_t kind,
          const char *name,
          arb_task_spec_t *specs,
          size_t n,
          bool watch,
          uint64_t *ids,
          bool *existing,
          uint64_t *flow)
{
    s_clear (self);
    if (arb_spec_check (specs, n, kind, name, self->max_payload, self->error,
                        sizeof (self->error))) {
        self->failed = true;  //  code 0: refused before sending
        for (size_t i = 0; i < n; i++)
            zframe_destroy (&specs[i].payload);
        return -1;
    }
    arb_msg_t *request = arb_client_request_new (self, ARB_MSG_SUBMIT);
    arb_submit_body_t *body = arb_msg_submit (request);
    body->watch = watch;
    body->flow_kind = (uint32_t) kind;
    body->flow_name = name;
    //  The caller's array, not a copy: encoding moves each payload frame
    //  out of it (and a failed send destroys them), as promised.
    body->tasks.v = specs;
    body->tasks.n = n;
    arb_msg_t *reply = arb_client_request (self, &request);
    if (!reply)
        return -1;
    int rc = s_read_submitted (self, reply, n, ids, existing, flow);
    arb_msg_destroy (&reply);
    return rc;
}

int
arb_client_submit (
    arb_client_t *self, arb_task_spec_t *specs, size_t n, bool watch, uint64_t *ids, bool *existing)
{
    assert (self && self->tag == ARB_CLIENT_TAG && (specs || n == 0) && ids);
    return s_submit (self, ARB_FLOW_NONE, NULL, specs, n, watch, ids, existing, NULL);
}

int
arb_client_submit_flow (arb_client_t *self,
                        arb_flow_kind_t kind,
                        const char *name,
                        arb_task_spec_t *specs,
                        size_t n,
                        bool watch,
                        uint64_t *ids,
                        uint64_t *flow)
{
    assert (self && self->tag == ARB_CLIENT_TAG && (specs || n == 0) && ids);
    if (flow)
        *flow = 0;
    return s_submit (self, kind, name, specs, n, watch, ids, NULL, flow);
}

bool
arb_client_submit_refused (arb_client_t *self, size_t index)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    return index < self->refused_n && self->refused_v[index];
}

int
arb_client_watch (arb_client_t *self, const uint64_t *ids, size_t n)
{
    assert (self && self->tag == ARB_CLIENT_TAG && (ids || n == 0));
    s_clear (self);
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < ARB_IDS_MAX ? n - done : ARB_IDS_MAX;
        arb_msg_t *request = arb_client_request_new (self, ARB_MSG_WATCH);
        arb_watch_body_t *body = arb_msg_watch (request);
        body->ids.v = (uint64_t *) arb_msg_alloc (request, chunk * sizeof (uint64_t));
        memcpy (body->ids.v, ids + done, chunk * sizeof (uint64_t));
        body->ids.n = chunk;
        arb_msg_t *reply = arb_client_request (self, &request);
        if (!reply)
            return -1;
        arb_msg_destroy (&reply);
        done += chunk;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Asynchronous receive.

//  Takes the next inbox message, or the rest of the DONE that
//  arb_client_next has started on; NULL if there is none.
static arb_msg_t *
s_take_msg (arb_client_t *self)
{
    if (self->current) {
        arb_done_body_t *body = arb_msg_done (self->current);
        //  the records handed out already have had their frames moved out
        body->tasks.v += self->current_index;
        body->tasks.n -= self->current_index;
        arb_msg_t *msg = self->current;
        self->current = NULL;
        return msg;
    }
    return (arb_msg_t *) zlistx_detach (self->inbox, NULL);
}

arb_msg_t *
arb_client_recv (arb_client_t *self, int timeout_ms)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    s_clear (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (true) {
        arb_msg_t *msg = s_take_msg (self);
        if (msg)
            return msg;
        if (zclock_mono () >= deadline)
            return NULL;
        arb_msg_t *none = NULL;
        if (s_pump (self, deadline, 0, &none) != 0)
            return NULL;
    }
}
