/*  arb_client.c — the arbiter client: one DEALER socket, its requests and
    the tasks it watches.

    Everything happens on the caller's thread, inside the call that is
    waiting on the socket: there is no background thread. Every incoming
    message goes through s_file, which first applies what the client itself
    must learn from it (an epoch in PONG, the ids of a SUBMIT with watch, ids
    the broker does not know in WATCHING, DONE reports) and then hands it to
    whoever is waiting for it: the synchronous call that wants this request
    id, the inbox (reqid 0 messages, replies to arb_client_send), or the bin
    (a reply that came after its request timed out, an answer to one of our
    own keep-alive requests).

    Exactly-once reports. `watched` holds the ids whose end has not been
    reported yet; a DONE record is kept only if its id leaves that set, so
    the duplicates a re-WATCH causes are dropped on arrival. One race needs
    care: for a SUBMIT with watch the ids are known only from SUBMITTED, and
    the broker may report an already finished task (a re-submitted key)
    before that reply. While such a submit is pending, records for ids not
    in the set wait in `limbo`; SUBMITTED adds its ids to the set and runs
    the limbo through the filter again; when no such submit is pending any
    more, the rest of the limbo was duplicates and goes.

    Keep-alive. While `watched` is not empty, every rewatch interval
    (s_tick): a PING, whose PONG shows whether the broker restarted (a new
    epoch: WATCH everything again); and if nothing but answers to our own
    keep-alive requests arrived for a whole interval, a WATCH of everything
    (a probe). A probe that stays unanswered for the request timeout makes
    arb_client_next report the broker unreachable rather than hang.
*/

#include "arb_client_priv.h"
#include "arb_idset.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>

#define ARB_REQID_INTERNAL 0x80000000u  //  top bit: the client's own requests
#define ARB_RECV_BATCH     256          //  messages received per wake-up before timers run again
#define ARB_ROUTING_ID_LEN 16
#define ARB_CLIENT_TAG     0x0c1e0001u  //  a live arb_client_t
#define ARB_CLIENT_DEAD    0xdeadc1e0u  //  written on destroy, to catch use after it

struct _arb_client_t {
    uint32_t tag;             //  ARB_CLIENT_TAG
    zsock_t *dealer;          //  owned
    char *endpoint;           //  owned
    int timeout_ms;           //  per request
    int rewatch_ms;           //  keep-alive interval of watches
    size_t max_payload;       //  bytes, outgoing payloads
    arb_limits_t limits;      //  decoding of replies
    uint32_t reqid;           //  last request id given to the caller
    uint32_t internal_reqid;  //  last id of our own requests (without the top bit)
    int error_code;           //  arb_err_t of the last failure, 0 local
    bool failed;              //  the last call failed: error holds why
    char error[ARB_TEXT_MAX + 256];
    arb_idset_t *watched;        //  owned: task ids watched and not reported yet
    arb_idset_t *watch_submits;  //  owned: request ids of SUBMIT with watch awaiting SUBMITTED
    arb_idset_t *pending;        //  owned: request ids of arb_client_send awaiting a reply
    zlistx_t *inbox;             //  owned arb_msg_t *, in order of arrival
    arb_msg_t *limbo;            //  owned DONE, or NULL: reports awaiting a pending SUBMITTED
    arb_msg_t *current;          //  owned DONE that arb_client_next is handing out, or NULL
    size_t current_index;        //  its next record
    bool epoch_known;
    uint64_t epoch;     //  broker boot count, from the last PONG
    int64_t last_news;  //  ms: last message that was not an answer to our own request
    int64_t tick_at;    //  ms: next keep-alive
    int64_t ping_at;    //  ms: our unanswered PING went out; 0 none
    int64_t probe_at;   //  ms: an unanswered re-WATCH went out in silence; 0 none
};

static void s_file (arb_client_t *self, int rc, arb_msg_t *msg, uint32_t want, arb_msg_t **reply);

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

//  A random routing id makes this client's result channel: ZeroMQ would
//  pick a new one on every reconnect, and the broker's DONE messages for
//  this client would then have nowhere to go.
static void
s_set_routing_id (zsock_t *sock)
{
    uint8_t id[ARB_ROUTING_ID_LEN];
    zuuid_t *uuid = zuuid_new ();
    memcpy (id + 1, zuuid_data (uuid), sizeof (id) - 1);
    zuuid_destroy (&uuid);
    id[0] = 'c';  //  ids starting with a zero byte are reserved to ZeroMQ
    zmq_setsockopt (zsock_resolve (sock), ZMQ_ROUTING_ID, id, sizeof (id));
}

arb_client_t *
arb_client_new (const char *endpoint)
{
    if (!endpoint || !*endpoint)
        endpoint = getenv ("ARBITER_BROKER");
    if (!endpoint || !*endpoint)
        endpoint = ARB_CLIENT_ENDPOINT;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    s_set_routing_id (dealer);
    //  Never block on exit for messages a dead broker will not take.
    zsock_set_linger (dealer, 0);
    //  Buffer incoming reports without limit: they are bounded by what
    //  the caller watches, and a full queue would make the broker's
    //  ROUTER drop DONE messages silently.
    zsock_set_rcvhwm (dealer, 0);
    zsock_set_sndtimeo (dealer, ARB_CLIENT_TIMEOUT_MS);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        int err = zmq_errno ();
        zsock_destroy (&dealer);
        errno = err;
        return NULL;
    }
    arb_client_t *self = (arb_client_t *) zmalloc (sizeof (arb_client_t));
    self->tag = ARB_CLIENT_TAG;
    self->dealer = dealer;
    self->endpoint = strdup (endpoint);
    self->timeout_ms = ARB_CLIENT_TIMEOUT_MS;
    self->rewatch_ms = ARB_CLIENT_REWATCH_MS;
    self->max_payload = ARB_PAYLOAD_DEFAULT_MAX;
    //  Replies are trusted to fit: the broker applied its own limit to
    //  every result, and refusing a DONE here would lose its reports.
    self->limits.max_frame = SIZE_MAX;
    self->watched = arb_idset_new ();
    self->watch_submits = arb_idset_new ();
    self->pending = arb_idset_new ();
    self->inbox = zlistx_new ();
    zlistx_set_destructor (self->inbox, s_inbox_destroy);
    self->last_news = zclock_mono ();
    return self;
}

void
arb_client_destroy (arb_client_t **self_p)
{
    assert (self_p);
    arb_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    arb_idset_destroy (&self->watched);
    arb_idset_destroy (&self->watch_submits);
    arb_idset_destroy (&self->pending);
    zlistx_destroy (&self->inbox);
    arb_msg_destroy (&self->limbo);
    arb_msg_destroy (&self->current);
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
    self->rewatch_ms = interval_ms;
    self->tick_at = zclock_mono () + interval_ms;
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
    return arb_idset_size (self->watched);
}

//  ---------------------------------------------------------------------
//  Sending, and the bookkeeping a request implies.

static uint32_t
s_next_internal (arb_client_t *self)
{
    self->internal_reqid = (self->internal_reqid + 1) & ~ARB_REQID_INTERNAL;
    if (self->internal_reqid == 0)
        self->internal_reqid = 1;
    return ARB_REQID_INTERNAL | self->internal_reqid;
}

arb_msg_t *
arb_client_request_new (arb_client_t *self, arb_msg_type_t type)
{
    assert (self && self->tag == ARB_CLIENT_TAG);
    //  1 .. 2^31 - 1, then around again: 0 is for streamed messages and
    //  the top bit for our own requests.
    self->reqid = self->reqid % (ARB_REQID_INTERNAL - 1) + 1;
    return arb_msg_new (type, self->reqid);
}

static void
s_watch_id (arb_client_t *self, uint64_t id)
{
    if (arb_idset_size (self->watched) == 0) {
        //  the first outstanding watch starts the keep-alive clock
        int64_t now = zclock_mono ();
        self->tick_at = now + self->rewatch_ms;
        self->last_news = now;
    }
    arb_idset_insert (self->watched, id);
}

//  Sends one message. On failure the message is lost and the error says so.
static int
s_send (arb_client_t *self, arb_msg_t **msg_p)
{
    if (arb_msg_send (msg_p, self->dealer) == 0)
        return 0;
    s_fail (self, 0, "cannot send to broker %s within %.1f s (send queue full)", self->endpoint,
            self->timeout_ms / 1000.0);
    return -1;
}

static void
s_send_ping (arb_client_t *self, int64_t now)
{
    arb_msg_t *ping = arb_msg_new (ARB_MSG_PING, s_next_internal (self));
    if (arb_msg_send (&ping, self->dealer) == 0)
        self->ping_at = now;
}

//  Sends WATCH again for every outstanding id, in messages of at most
//  ARB_IDS_MAX ids.
static void
s_rewatch_all (arb_client_t *self)
{
    size_t left = arb_idset_size (self->watched);
    size_t cursor = 0;
    while (left > 0) {
        size_t n = left < ARB_IDS_MAX ? left : ARB_IDS_MAX;
        arb_msg_t *watch = arb_msg_new (ARB_MSG_WATCH, s_next_internal (self));
        arb_watch_body_t *body = arb_msg_watch (watch);
        body->ids.v = (uint64_t *) arb_msg_alloc (watch, n * sizeof (uint64_t));
        while (body->ids.n < n
               && arb_idset_next (self->watched, &cursor, &body->ids.v[body->ids.n]))
            body->ids.n++;
        left -= n;
        if (arb_msg_send (&watch, self->dealer) != 0)
            break;  //  the next keep-alive tries again
    }
}

//  Notes what a request means for our own state before it goes out: a
//  SUBMIT with watch will name ids to watch in its reply; WATCH ids are
//  watched from now on, so that reports following WATCHING find them.
//  Returns whether the request starts watches.
static bool
s_track (arb_client_t *self, arb_msg_t *request)
{
    arb_msg_type_t type = arb_msg_type (request);
    if (type == ARB_MSG_SUBMIT && arb_msg_submit (request)->watch) {
        arb_idset_insert (self->watch_submits, arb_msg_reqid (request));
        return true;
    }
    if (type == ARB_MSG_WATCH) {
        arb_ids_t *ids = &arb_msg_watch (request)->ids;
        for (size_t i = 0; i < ids->n; i++)
            s_watch_id (self, ids->v[i]);
        return true;
    }
    return false;
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
    bool watches = s_track (self, *request_p);
    if (s_send (self, request_p)) {
        arb_idset_remove (self->watch_submits, reqid);
        return 0;
    }
    //  Learn the broker's epoch as soon as there are watches, so that a
    //  restart later shows as a change.
    if (watches && !self->epoch_known && !self->ping_at)
        s_send_ping (self, zclock_mono ());
    return reqid;
}

//  ---------------------------------------------------------------------
//  Waiting.

//  The keep-alive of watches; see the top of the file.
static void
s_tick (arb_client_t *self, int64_t now)
{
    self->tick_at = now + self->rewatch_ms;
    if (!self->ping_at || now - self->ping_at >= self->timeout_ms)
        s_send_ping (self, now);
    if (now - self->last_news >= self->rewatch_ms && !self->probe_at) {
        s_rewatch_all (self);
        self->probe_at = now;
    }
}

//  Runs the keep-alive if due, then waits until a message is readable, the
//  deadline (ms, zclock_mono) passes, or a timer of ours falls due.
//  Returns 1 readable, 0 woke without input, -1 interrupted.
static int
s_wait (arb_client_t *self, int64_t deadline)
{
    if (zsys_interrupted)
        return -1;
    int64_t now = zclock_mono ();
    bool watching = arb_idset_size (self->watched) > 0;
    if (watching && now >= self->tick_at)
        s_tick (self, now);
    if (zsock_events (self->dealer) & ZMQ_POLLIN)
        return 1;
    int64_t until = deadline;
    if (watching && self->tick_at < until)
        until = self->tick_at;
    //  arb_client_next must wake when a probe has gone unanswered too long
    int64_t probe_due = self->probe_at + self->timeout_ms;
    if (self->probe_at && probe_due > now && probe_due < until)
        until = probe_due;
    long timeout = until == INT64_MAX ? -1 : (long) (until > now ? until - now : 0);
    zmq_pollitem_t item = {zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll (&item, 1, timeout);
    if (rc < 0)  //  a signal: SIGINT sets zsys_interrupted (czmq's handler), others do not count
        return zsys_interrupted ? -1 : 0;
    return rc > 0 ? 1 : 0;
}

//  Receives what is waiting (up to a batch) and files it. Stores the reply
//  to `want` in *reply when it comes (want 0: nothing is wanted).
static void
s_receive (arb_client_t *self, uint32_t want, arb_msg_t **reply)
{
    for (int k = 0; k < ARB_RECV_BATCH && !*reply; k++) {
        if (!(zsock_events (self->dealer) & ZMQ_POLLIN))
            break;
        arb_msg_t *msg = NULL;
        int rc = arb_msg_recv (self->dealer, &self->limits, &msg);
        if (rc == -1)
            break;
        s_file (self, rc, msg, want, reply);
    }
}

//  The reply type that answers a request type, or 0 if any will do.
static arb_msg_type_t
s_answer_type (arb_msg_type_t type)
{
    switch (type) {
        case ARB_MSG_PING:
            return ARB_MSG_PONG;
        case ARB_MSG_SUBMIT:
            return ARB_MSG_SUBMITTED;
        case ARB_MSG_STATUS:
            return ARB_MSG_STATUS_REPLY;
        case ARB_MSG_LIST:
            return ARB_MSG_LIST_REPLY;
        case ARB_MSG_WATCH:
            return ARB_MSG_WATCHING;
        case ARB_MSG_CANCEL:
            return ARB_MSG_CANCEL_REPLY;
        case ARB_MSG_RETRY:
            return ARB_MSG_RETRY_REPLY;
        case ARB_MSG_STATS:
            return ARB_MSG_STATS_REPLY;
        case ARB_MSG_QUEUE:
        case ARB_MSG_LIMIT:
        case ARB_MSG_EVENTS:
            return ARB_MSG_OK;
        case ARB_MSG_PEEK:
            return ARB_MSG_PEEK_REPLY;
        case ARB_MSG_META:
            return ARB_MSG_META_REPLY;
        case ARB_MSG_REGISTER:
            return ARB_MSG_WELCOME;
        case ARB_MSG_TAKE:
            return ARB_MSG_DISPATCH;
        default:
            return (arb_msg_type_t) 0;
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
    else if (s_answer_type (type) && got != s_answer_type (type)) {
        s_fail (self, 0, "broker %s answered %s with %s", self->endpoint, arb_msg_type_name (type),
                arb_msg_type_name (got));
        arb_msg_destroy (&reply);
    }
    return reply;
}

static void s_refile_limbo (arb_client_t *self);

static void
s_fail_timeout (arb_client_t *self, arb_msg_type_t type, uint32_t reqid)
{
    double seconds = self->timeout_ms / 1000.0;
    if (type == ARB_MSG_SUBMIT) {
        //  its late SUBMITTED will be dropped, so it names no ids to watch
        if (arb_idset_remove (self->watch_submits, reqid))
            s_refile_limbo (self);
        s_fail (self, 0,
                "submit not acknowledged within %.1f s (broker %s): outcome unknown; "
                "re-submit with the same --key to be safe",
                seconds, self->endpoint);
    }
    else
        s_fail (self, 0, "broker %s did not answer within %.1f s", self->endpoint, seconds);
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
        int rc = s_wait (self, deadline);
        if (rc < 0) {
            s_fail (self, 0, "interrupted");
            return NULL;
        }
        if (rc > 0)
            s_receive (self, reqid, &reply);
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

static void
s_inbox_add (arb_client_t *self, arb_msg_t **msg_p)
{
    zlistx_add_end (self->inbox, *msg_p);
    *msg_p = NULL;
}

//  Moves one report into the limbo DONE (its strings into the limbo's arena).
static void
s_limbo_add (arb_client_t *self, arb_done_task_t *task)
{
    if (!self->limbo)
        self->limbo = arb_msg_new (ARB_MSG_DONE, 0);
    arb_done_body_t *body = arb_msg_done (self->limbo);
    arb_done_task_t *copy =
        (arb_done_task_t *) arb_msg_grow (self->limbo, &body->tasks, sizeof (arb_done_task_t), 1);
    copy->id = task->id;
    copy->state = task->state;
    copy->attempts = task->attempts;
    copy->error = arb_msg_strdup (self->limbo, task->error);
    copy->result = task->result;
    task->result = NULL;
}

//  Keeps the reports of ids we watch (and forgets the ids), parks reports
//  that a pending SUBMITTED may claim, drops duplicates; queues the DONE if
//  anything is left of it.
static void
s_on_done (arb_client_t *self, arb_msg_t **msg_p)
{
    arb_done_body_t *body = arb_msg_done (*msg_p);
    size_t keep = 0;
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_done_task_t *task = &body->tasks.v[i];
        if (arb_idset_remove (self->watched, task->id))
            body->tasks.v[keep++] = *task;  //  records past `keep` are never read again
        else if (arb_idset_size (self->watch_submits) > 0)
            s_limbo_add (self, task);
        else
            zframe_destroy (&task->result);
    }
    body->tasks.n = keep;
    if (keep > 0)
        s_inbox_add (self, msg_p);
    else
        arb_msg_destroy (msg_p);
}

//  Runs the limbo through the filter again, after the set of watched ids
//  or of pending submits changed.
static void
s_refile_limbo (arb_client_t *self)
{
    arb_msg_t *limbo = self->limbo;
    self->limbo = NULL;
    if (limbo)
        s_on_done (self, &limbo);
}

//  Returns whether the limbo must be refiled (after the reply is filed,
//  so that reports follow the reply that named their ids).
static bool
s_on_submitted (arb_client_t *self, arb_msg_t *msg)
{
    if (!arb_idset_remove (self->watch_submits, arb_msg_reqid (msg)))
        return false;
    arb_submitted_body_t *body = arb_msg_submitted (msg);
    for (size_t i = 0; i < body->tasks.n; i++)
        s_watch_id (self, body->tasks.v[i].id);
    return true;
}

//  Ids the broker does not know will never be reported by it: report them
//  ourselves (state ARB_DONE_UNKNOWN), once, if we were watching them.
static void
s_on_watching (arb_client_t *self, arb_msg_t *msg)
{
    arb_ids_t *unknown = &arb_msg_watching (msg)->unknown;
    arb_msg_t *done = NULL;
    for (size_t i = 0; i < unknown->n; i++) {
        if (!arb_idset_remove (self->watched, unknown->v[i]))
            continue;
        if (!done)
            done = arb_msg_new (ARB_MSG_DONE, 0);
        arb_done_body_t *body = arb_msg_done (done);
        arb_done_task_t *task =
            (arb_done_task_t *) arb_msg_grow (done, &body->tasks, sizeof (arb_done_task_t), 1);
        task->id = unknown->v[i];
        task->state = ARB_DONE_UNKNOWN;
        task->error = "no such task";
    }
    if (done)
        s_inbox_add (self, &done);
}

static void
s_on_pong (arb_client_t *self, arb_msg_t *msg)
{
    uint64_t epoch = arb_msg_pong (msg)->epoch;
    if (arb_msg_reqid (msg) & ARB_REQID_INTERNAL)
        self->ping_at = 0;
    if (self->epoch_known && epoch != self->epoch && arb_idset_size (self->watched) > 0) {
        zsys_info ("client: broker restarted epoch=%" PRIu64 " broker=%s", epoch, self->endpoint);
        s_rewatch_all (self);
    }
    self->epoch = epoch;
    self->epoch_known = true;
}

//  A reply we cannot read: if someone waits for it, they get an ERROR
//  (code 0: the failure is ours to report, not the broker's).
static void
s_file_malformed (arb_client_t *self, arb_msg_t *msg, uint32_t want, arb_msg_t **reply)
{
    const char *why = msg ? arb_msg_decode_error (msg) : "no header";
    uint32_t reqid = msg ? arb_msg_reqid (msg) : 0;
    zsys_warning ("client: malformed message from broker reqid=%u reason=%s", reqid, why);
    if (arb_idset_remove (self->watch_submits, reqid))
        s_refile_limbo (self);  //  its SUBMITTED will never be read
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
    int64_t now = zclock_mono ();
    self->probe_at = 0;
    if (rc != 0) {
        s_file_malformed (self, msg, want, reply);
        return;
    }
    uint32_t reqid = arb_msg_reqid (msg);
    if (!(reqid & ARB_REQID_INTERNAL))
        self->last_news = now;
    bool refile = false;
    switch (arb_msg_type (msg)) {
        case ARB_MSG_DONE:
            s_on_done (self, &msg);
            return;
        case ARB_MSG_PONG:
            s_on_pong (self, msg);
            break;
        case ARB_MSG_SUBMITTED:
            refile = s_on_submitted (self, msg);
            break;
        case ARB_MSG_WATCHING:
            s_on_watching (self, msg);
            break;
        case ARB_MSG_ERROR:
            //  a refused SUBMIT names no ids to watch
            refile = arb_idset_remove (self->watch_submits, reqid);
            if (reqid & ARB_REQID_INTERNAL)
                zsys_warning ("client: broker refused a keep-alive reason=%s",
                              arb_msg_error (msg)->reason);
            break;
        default:
            break;
    }
    if (want && reqid == want)
        *reply = msg;
    else if (reqid == 0 || arb_idset_remove (self->pending, reqid))
        s_inbox_add (self, &msg);
    else
        arb_msg_destroy (&msg);  //  late reply to a timed-out request, or our own keep-alive
    if (refile)
        s_refile_limbo (self);
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

static bool
s_outstanding (arb_client_t *self)
{
    return arb_idset_size (self->watched) > 0 || arb_idset_size (self->watch_submits) > 0;
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
        if (!s_outstanding (self)) {
            s_fail (self, 0, "no watched task is outstanding");
            return NULL;
        }
        int64_t now = zclock_mono ();
        if (self->probe_at && now - self->probe_at >= self->timeout_ms) {
            self->probe_at = 0;  //  a later call probes again
            s_fail (self, 0, "broker %s did not answer within %.1f s", self->endpoint,
                    self->timeout_ms / 1000.0);
            return NULL;
        }
        if (now >= deadline)
            return NULL;
        int rc = s_wait (self, deadline);
        if (rc < 0) {
            s_fail (self, 0, "interrupted");
            return NULL;
        }
        arb_msg_t *none = NULL;
        if (rc > 0)
            s_receive (self, 0, &none);
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

//  A name the broker would refuse (over its limit, or not printable
//  UTF-8), refused here naming it as the broker would (what: "tasks[0].name").
static int
s_check_name (arb_client_t *self, const char *what, const char *value)
{
    size_t len = value ? strlen (value) : 0;
    char why[80];
    if (len > ARB_NAME_MAX)
        snprintf (why, sizeof (why), "%zu bytes, over the %d-byte limit", len, ARB_NAME_MAX);
    else if (len && arb_name_check (value, len, why, sizeof (why)))
        strcat (why, " (names are printable UTF-8)");
    else
        return 0;
    s_fail (self, 0, "%s: %s", what, why);
    return -1;
}

//  s_check_name of a task spec's field: "tasks[3].queue".
static int
s_check_field (arb_client_t *self, size_t i, const char *field, const char *value)
{
    char what[96];
    snprintf (what, sizeof (what), "tasks[%zu].%s", i, field);
    return s_check_name (self, what, value);
}

//  Sizes the codec would refuse, named here rather than in a 413.
static int
s_check_sizes (arb_client_t *self, size_t i, arb_task_spec_t *spec)
{
    if (spec->args.size > ARB_ARGS_MAX)
        s_fail (self, 0, "tasks[%zu].args: %zu bytes, over the %u-byte limit", i, spec->args.size,
                ARB_ARGS_MAX);
    else if (spec->endpoints.n > ARB_CLIENT_ENDPOINTS_MAX)
        s_fail (self, 0, "tasks[%zu].endpoints: %zu names, over the limit of %d", i,
                spec->endpoints.n, ARB_CLIENT_ENDPOINTS_MAX);
    else if (spec->after.n > ARB_LIST_MAX)
        s_fail (self, 0, "tasks[%zu].after: %zu dependencies, over the limit of %d", i,
                spec->after.n, ARB_LIST_MAX);
    else
        return 0;
    return -1;
}

//  What we can refuse of one spec before sending.
static int
s_check_spec (arb_client_t *self, size_t i, arb_task_spec_t *spec)
{
    if (!spec->name || !*spec->name) {
        s_fail (self, 0, "tasks[%zu].name: a task needs a name", i);
        return -1;
    }
    size_t size = spec->payload ? zframe_size (spec->payload) : 0;
    if (size > self->max_payload) {
        s_fail (self, 0, "tasks[%zu].payload: %zu bytes, over the %zu-byte limit", i, size,
                self->max_payload);
        return -1;
    }
    if (s_check_sizes (self, i, spec))
        return -1;
    if (s_check_field (self, i, "name", spec->name) || s_check_field (self, i, "queue", spec->queue)
        || s_check_field (self, i, "key", spec->key) || s_check_field (self, i, "ref", spec->ref))
        return -1;
    char field[48];
    for (size_t k = 0; k < spec->after.n; k++) {
        snprintf (field, sizeof (field), "after[%zu].ref", k);
        if (s_check_field (self, i, field, spec->after.v[k].ref))
            return -1;
    }
    for (size_t e = 0; e < spec->endpoints.n; e++) {
        snprintf (field, sizeof (field), "endpoints[%zu]", e);
        if (s_check_field (self, i, field, spec->endpoints.v[e]))
            return -1;
    }
    return 0;
}

//  What we can refuse before sending, so that a mistake costs no round
//  trip and the message names the task.
static int
s_check_specs (arb_client_t *self, arb_task_spec_t *specs, size_t n)
{
    if (n == 0 || n > ARB_LIST_MAX) {
        s_fail (self, 0, "a submit carries 1 to %d tasks, not %zu", ARB_LIST_MAX, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (s_check_spec (self, i, &specs[i]))
            return -1;
    return 0;
}

static int
s_check_flow (arb_client_t *self, arb_flow_kind_t kind, const char *name)
{
    if (kind > ARB_FLOW_PIPE) {
        s_fail (self, 0, "flow kind %d is not a DAG, a group or a pipe", (int) kind);
        return -1;
    }
    if (name && kind == ARB_FLOW_NONE) {
        s_fail (self, 0, "flow name '%.64s': a batch that is no flow has no name", name);
        return -1;
    }
    return s_check_name (self, "flow name", name);
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
    for (size_t i = 0; i < n; i++) {
        ids[i] = submitted->tasks.v[i].id;
        if (existing)
            existing[i] = submitted->tasks.v[i].existing;
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
    if (s_check_flow (self, kind, name) || s_check_specs (self, specs, n)) {
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
        int rc = s_wait (self, deadline);
        if (rc < 0) {
            s_fail (self, 0, "interrupted");
            return NULL;
        }
        arb_msg_t *none = NULL;
        if (rc > 0)
            s_receive (self, 0, &none);
    }
}
