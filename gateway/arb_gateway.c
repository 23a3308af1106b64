/*  arb_gateway.c — the gateway's core; see arb_gateway.h.

    Pending requests are kept by request id. A submit batch is a SUBMIT
    message being built, with one slot per task (the asker's callback);
    tickets name a slot as (batch number << 20 | index), so that forgetting
    one needs no search.

    Sent batches not yet answered are counted (out_batches, out_bytes) for
    the back-pressure arb_gateway_is_full tells: full at the bounds, room
    again at half of them (so that a publisher is not woken for each
    answer), and full while the session is down or its connection is
    being made again (arb_link_is_open).
*/

#include "arb_gateway.h"
#include "arb_idmap.h"
#include "arb_spec.h"

#define ARB_TICKET_BITS 20  //  slots per batch: ARB_GATEWAY_BATCH_MAX fits

//  One task of a batch: who wants its outcome.
typedef struct {
    arb_gateway_submitted_fn *fn;  //  NULL once forgotten
    void *arg;
} s_slot_t;

typedef struct {
    uint64_t number;  //  batch number, the high bits of its tickets
    arb_msg_t *msg;   //  owned SUBMIT while it fills; NULL once sent
    s_slot_t *slots;  //  owned, one per task
    size_t n;         //  tasks
    size_t cap;       //  slots allocated: grown as tasks come
    size_t bytes;     //  payload bytes
    bool out;         //  sent: counted in out_batches and out_bytes
} s_batch_t;

//  A pending request: a plain one has fn; a batch's has batch.
typedef struct {
    arb_gateway_reply_fn *fn;
    void *arg;
    s_batch_t *batch;  //  owned
} s_request_t;

struct _arb_gateway_t {
    arb_reactor_t *reactor;  //  owned
    arb_link_t *link;        //  owned
    arb_idmap_t *requests;   //  owned: reqid -> owned s_request_t
    arb_idmap_t *batches;    //  batch number -> borrowed s_batch_t (sent or filling)
    s_batch_t *filling;      //  owned: the turn's batch, or NULL
    uint64_t next_batch;
    size_t max_payload;
    arb_gateway_listener_t listeners[ARB_GATEWAY_LISTENERS];
    size_t listener_count;
    uint64_t connections[ARB_GATEWAY_PROTOCOLS];  //  open now, by protocol
    char error[ARB_TEXT_MAX];                     //  why the last call failed
    bool failed;
    size_t out_batches;  //  SUBMITs sent, not answered yet
    size_t out_bytes;    //  their payload bytes
    bool full;           //  arb_gateway_is_full said so: room is told when it ends
    char *cert;          //  owned: the certificate file given (for the log); NULL none
    bool forbidden;      //  the broker refused the gateway's certificate: the run ends, 1
};

//  ---------------------------------------------------------------------
//  Batches

//  Whether the link is full now; with hysteresis while it was.
static bool
s_full_now (arb_gateway_t *self)
{
    if (!arb_link_is_open (self->link))
        return true;
    size_t batches = self->full ? ARB_GATEWAY_OUT_BATCHES / 2 : ARB_GATEWAY_OUT_BATCHES;
    size_t bytes = self->full ? ARB_GATEWAY_OUT_BYTES / 2 : ARB_GATEWAY_OUT_BYTES;
    return self->out_batches >= batches || self->out_bytes >= bytes;
}

//  Tells the listeners there is room again, if the link was full and no
//  longer is.
static void
s_check_room (arb_gateway_t *self)
{
    if (!self->full || s_full_now (self))
        return;
    self->full = false;
    zsys_debug ("gateway: link has room again out=%zu bytes=%zu", self->out_batches,
                self->out_bytes);
    for (size_t i = 0; i < self->listener_count; i++)
        if (self->listeners[i].room)
            self->listeners[i].room (self->listeners[i].arg);
}

bool
arb_gateway_is_full (arb_gateway_t *self)
{
    if (!self->full && s_full_now (self)) {
        self->full = true;
        zsys_debug ("gateway: link full open=%d out=%zu bytes=%zu", arb_link_is_open (self->link),
                    self->out_batches, self->out_bytes);
    }
    return self->full;
}

static void
s_batch_destroy (arb_gateway_t *self, s_batch_t **batch_p)
{
    s_batch_t *batch = *batch_p;
    if (!batch)
        return;
    if (batch->out) {
        self->out_batches--;
        self->out_bytes -= batch->bytes;
    }
    arb_idmap_remove (self->batches, batch->number);
    arb_msg_destroy (&batch->msg);
    free (batch->slots);
    free (batch);
    *batch_p = NULL;
}

//  Tells every asker of a batch the outcome of its task.
static void
s_batch_answer (arb_gateway_t *self, s_batch_t *batch, arb_msg_t *reply)
{
    arb_submitted_body_t *ok =
        reply && arb_msg_type (reply) == ARB_MSG_SUBMITTED ? arb_msg_submitted (reply) : NULL;
    int code = 0;
    const char *why = "the broker did not answer";
    if (reply && arb_msg_type (reply) == ARB_MSG_ERROR) {
        code = (int) arb_msg_error (reply)->code;
        why = arb_msg_error (reply)->reason;
    }
    else if (!reply)
        why = arb_link_error (self->link) ? arb_link_error (self->link) : "refused by the link";
    for (size_t i = 0; i < batch->n; i++) {
        s_slot_t *slot = &batch->slots[i];
        if (!slot->fn)
            continue;
        if (ok && i < ok->tasks.n)
            slot->fn (self, &ok->tasks.v[i], 0, NULL, slot->arg);
        else
            slot->fn (self, NULL, code, why, slot->arg);
    }
}

static s_request_t *
s_request_new (arb_gateway_reply_fn *fn, void *arg, s_batch_t *batch)
{
    s_request_t *request = (s_request_t *) zmalloc (sizeof (s_request_t));
    *request = (s_request_t){fn, arg, batch};
    return request;
}

//  Sends the turn's batch, if any.
static void
s_flush_batch (arb_gateway_t *self)
{
    s_batch_t *batch = self->filling;
    if (!batch)
        return;
    self->filling = NULL;
    uint32_t reqid = arb_link_send (self->link, &batch->msg);
    if (!reqid) {
        zsys_warning ("gateway: submit refused tasks=%zu reason=\"%s\"", batch->n,
                      arb_link_error (self->link) ? arb_link_error (self->link) : "?");
        s_batch_answer (self, batch, NULL);
        s_batch_destroy (self, &batch);
        return;
    }
    arb_idmap_insert (self->requests, reqid, s_request_new (NULL, NULL, batch));
    batch->out = true;
    self->out_batches++;
    self->out_bytes += batch->bytes;
}

static const char *
s_copy (arb_msg_t *msg, const char *text)
{
    return text ? arb_msg_strdup (msg, text) : NULL;
}

//  Most batches hold the few tasks of one turn: the slots grow with them
//  rather than taking room (zeroed) for the most a batch can hold.
static void
s_batch_grow (s_batch_t *batch)
{
    size_t cap = batch->cap ? batch->cap * 2 : 16;
    if (cap > ARB_GATEWAY_BATCH_MAX)
        cap = ARB_GATEWAY_BATCH_MAX;
    s_slot_t *slots = (s_slot_t *) realloc (batch->slots, cap * sizeof (s_slot_t));
    assert (slots);  //  out of memory, as zmalloc has it
    batch->slots = slots;
    batch->cap = cap;
}

static int
s_refuse (arb_gateway_t *self, const char *why)
{
    snprintf (self->error, sizeof (self->error), "%s", why);
    self->failed = true;
    return -1;
}

uint64_t
arb_gateway_submit_one (arb_gateway_t *self,
                        arb_task_spec_t *spec,
                        arb_gateway_submitted_fn *fn,
                        void *arg)
{
    self->failed = false;
    char why[ARB_TEXT_MAX];
    if (spec->after.n || spec->ref) {
        zframe_destroy (&spec->payload);
        s_refuse (self, "a task submitted alone has no dependencies");
        return 0;
    }
    //  the broker's limit too: it refuses a whole SUBMIT with one payload
    //  over it, the other protocols' tasks of the turn with it
    size_t max_payload = arb_link_max_payload (self->link);
    if (arb_spec_check (spec, 1, ARB_FLOW_NONE, NULL, max_payload, why, sizeof (why))) {
        zframe_destroy (&spec->payload);
        s_refuse (self, why);
        return 0;
    }
    //  the bytes that make a SUBMIT large, kept under the broker's largest
    //  message (ARB_MESSAGE_MAX: twice its largest payload and 1 MiB)
    size_t bytes =
        (spec->payload ? zframe_size (spec->payload) : 0) + spec->headers.size + spec->args.size;
    size_t batch_bytes =
        max_payload < ARB_GATEWAY_BATCH_BYTES ? max_payload : ARB_GATEWAY_BATCH_BYTES;
    //  a fan-out task goes alone: whether the broker takes it depends on
    //  the workers connected then, and it refuses a SUBMIT whole
    bool alone = spec->broadcast || spec->endpoints.n;
    if (self->filling
        && (alone || self->filling->n == ARB_GATEWAY_BATCH_MAX
            || self->filling->bytes + bytes > batch_bytes))
        s_flush_batch (self);
    if (!self->filling) {
        s_batch_t *batch = (s_batch_t *) zmalloc (sizeof (s_batch_t));
        batch->number = ++self->next_batch;
        batch->msg = arb_link_request_new (self->link, ARB_MSG_SUBMIT);
        arb_idmap_insert (self->batches, batch->number, batch);
        self->filling = batch;
    }
    s_batch_t *batch = self->filling;
    if (batch->n == batch->cap)
        s_batch_grow (batch);
    arb_msg_t *msg = batch->msg;
    arb_submit_body_t *body = arb_msg_submit (msg);
    arb_task_spec_t *copy = (arb_task_spec_t *) arb_msg_grow (msg, &body->tasks, sizeof (*copy), 1);
    *copy = *spec;
    copy->queue = s_copy (msg, spec->queue);
    copy->name = s_copy (msg, spec->name);
    copy->key = s_copy (msg, spec->key);
    copy->headers = arb_msg_bindup (msg, spec->headers.data, spec->headers.size);
    copy->args = arb_msg_bindup (msg, spec->args.data, spec->args.size);
    copy->endpoints.v = NULL;
    copy->endpoints.n = 0;
    for (size_t i = 0; i < spec->endpoints.n; i++)
        *(const char **) arb_msg_grow (msg, &copy->endpoints, sizeof (char *), 1) =
            s_copy (msg, spec->endpoints.v[i]);
    copy->payload = spec->payload ? spec->payload : zframe_new_empty ();
    spec->payload = NULL;
    batch->slots[batch->n] = (s_slot_t){fn, arg};
    uint64_t ticket = batch->number << ARB_TICKET_BITS | batch->n;
    batch->n++;
    batch->bytes += bytes;
    if (alone)
        s_flush_batch (self);
    return ticket;
}

void
arb_gateway_flush (arb_gateway_t *self)
{
    s_flush_batch (self);
}

void
arb_gateway_forget_submit (arb_gateway_t *self, uint64_t ticket)
{
    s_batch_t *batch = (s_batch_t *) arb_idmap_lookup (self->batches, ticket >> ARB_TICKET_BITS);
    size_t index = (size_t) (ticket & ((1u << ARB_TICKET_BITS) - 1));
    if (batch && index < batch->n)
        batch->slots[index].fn = NULL;
}

//  ---------------------------------------------------------------------
//  Requests

uint32_t
arb_gateway_send (arb_gateway_t *self, arb_msg_t **request_p, arb_gateway_reply_fn *fn, void *arg)
{
    self->failed = false;
    uint32_t reqid = arb_link_send (self->link, request_p);
    if (!reqid) {
        s_refuse (self, arb_link_error (self->link) ? arb_link_error (self->link) : "refused");
        return 0;
    }
    arb_idmap_insert (self->requests, reqid, s_request_new (fn, arg, NULL));
    return reqid;
}

static uint32_t
s_queue_request (arb_gateway_t *self,
                 arb_msg_type_t type,
                 const char *queue,
                 uint32_t max,
                 arb_gateway_reply_fn *fn,
                 void *arg)
{
    arb_msg_t *request = arb_link_request_new (self->link, type);
    if (type == ARB_MSG_TAKE) {
        arb_msg_take (request)->queue = arb_msg_strdup (request, queue);
        arb_msg_take (request)->max = max;
    }
    else {
        arb_msg_peek (request)->queue = arb_msg_strdup (request, queue);
        arb_msg_peek (request)->max = max;
    }
    return arb_gateway_send (self, &request, fn, arg);
}

uint32_t
arb_gateway_take (
    arb_gateway_t *self, const char *queue, uint32_t max, arb_gateway_reply_fn *fn, void *arg)
{
    return s_queue_request (self, ARB_MSG_TAKE, queue, max, fn, arg);
}

uint32_t
arb_gateway_peek (
    arb_gateway_t *self, const char *queue, uint32_t max, arb_gateway_reply_fn *fn, void *arg)
{
    return s_queue_request (self, ARB_MSG_PEEK, queue, max, fn, arg);
}

void
arb_gateway_forget (arb_gateway_t *self, uint32_t reqid)
{
    s_request_t *request = (s_request_t *) arb_idmap_lookup (self->requests, reqid);
    if (request && !request->batch) {
        //  keep the entry so that the answer is recognised, without a callback
        request->fn = NULL;
    }
}

const char *
arb_gateway_error (arb_gateway_t *self)
{
    return self->failed ? self->error : NULL;
}

//  ---------------------------------------------------------------------
//  What the link delivers

//  Gives back the tasks of a TAKE nobody waits for any more.
static void
s_release_unwanted (arb_gateway_t *self, arb_msg_t *reply)
{
    if (arb_msg_type (reply) != ARB_MSG_DISPATCH)
        return;
    arb_dispatch_body_t *body = arb_msg_dispatch (reply);
    for (size_t i = 0; i < body->tasks.n; i++)
        arb_link_release (self->link, body->tasks.v[i].id);
}

//  The broker refused a request of the gateway's for its certificate's
//  role (403): every broker verb the gateway sends (REGISTER, META, QUEUE,
//  SUBMIT, ...) is an admin's together, so it cannot serve, and a request
//  retried (a REGISTER every 2 s, META every second) would be refused
//  for ever. A misconfiguration, so the gateway says it once and stops
//  (exit 1), as arbiter-worker does for its REGISTER; its service manager
//  may start it again once the certificate has the role.
static void
s_forbidden (arb_gateway_t *self, const char *what, const char *reason)
{
    if (!self->forbidden)
        zsys_error ("gateway: the broker refused %s: %s. The gateway needs an admin certificate "
                    "(cert=%s): give it one whose role is admin and that is in the broker's "
                    "allowed folder (arbiter keygen NAME --role admin); stopping",
                    what, reason, self->cert ? self->cert : "none");
    self->forbidden = true;
    arb_reactor_stop (self->reactor);
}

static void
s_on_forbidden (arb_link_t *link, const char *reason, void *arg)
{
    (void) link;
    s_forbidden ((arb_gateway_t *) arg, "the gateway's session", reason);
}

static void
s_on_reply (arb_link_t *link, uint32_t reqid, arb_msg_t **reply_p, void *arg)
{
    (void) link;
    arb_gateway_t *self = (arb_gateway_t *) arg;
    if (arb_msg_type (*reply_p) == ARB_MSG_ERROR
        && arb_msg_error (*reply_p)->code == ARB_ERR_FORBIDDEN)
        s_forbidden (self, "a request of the gateway's",
                     arb_msg_error (*reply_p)->reason ? arb_msg_error (*reply_p)->reason : "");
    s_request_t *request = (s_request_t *) arb_idmap_lookup (self->requests, reqid);
    if (!request) {
        s_release_unwanted (self, *reply_p);
        return;
    }
    arb_idmap_remove (self->requests, reqid);
    if (request->batch) {
        s_batch_answer (self, request->batch, *reply_p);
        s_batch_destroy (self, &request->batch);
        s_check_room (self);
    }
    else if (request->fn)
        request->fn (self, reply_p, request->arg);
    else
        s_release_unwanted (self, *reply_p);
    free (request);
}

static void
s_on_done (arb_link_t *link, arb_done_task_t *task, void *arg)
{
    (void) link;
    arb_gateway_t *self = (arb_gateway_t *) arg;
    for (size_t i = 0; i < self->listener_count; i++)
        if (self->listeners[i].done)
            self->listeners[i].done (self->listeners[i].arg, task);
}

static void
s_on_stop (arb_link_t *link, uint64_t id, int reason, void *arg)
{
    (void) link;
    arb_gateway_t *self = (arb_gateway_t *) arg;
    for (size_t i = 0; i < self->listener_count; i++)
        if (self->listeners[i].stop)
            self->listeners[i].stop (self->listeners[i].arg, id, reason);
}

static void
s_on_event (arb_link_t *link, arb_event_body_t *event, void *arg)
{
    (void) link;
    arb_gateway_t *self = (arb_gateway_t *) arg;
    for (size_t i = 0; i < self->listener_count; i++)
        if (self->listeners[i].event)
            self->listeners[i].event (self->listeners[i].arg, event);
}

//  Asks the broker for what only an admin may read (one META get), so
//  that a certificate without the role is found as the session comes up
//  (s_on_reply: a 403 stops the gateway) whatever the gateway serves.
//  Kestrel, AMQP and the bridges read META at once; a gateway serving
//  HTTP alone with a worker's certificate came up, said nothing, and
//  stopped at its first HTTP client, answered 403 as for a wrong token.
//  The reply is dropped.
static void
s_check_role (arb_gateway_t *self)
{
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_META);
    arb_meta_body_t *body = arb_msg_meta (request);
    body->op = "get";
    body->key = arb_msg_strdup (request, "gw.role-check");
    arb_gateway_send (self, &request, NULL, NULL);
}

static void
s_on_state (arb_link_t *link, bool up, void *arg)
{
    (void) link;
    arb_gateway_t *self = (arb_gateway_t *) arg;
    zsys_info ("gateway: broker session %s", up ? "up" : "down");
    if (up)
        s_check_role (self);
    for (size_t i = 0; i < self->listener_count; i++)
        if (self->listeners[i].state)
            self->listeners[i].state (self->listeners[i].arg, up);
    s_check_room (self);
}

void
arb_gateway_connected (arb_gateway_t *self, arb_gateway_protocol_t protocol, int delta)
{
    self->connections[protocol] += (uint64_t) (int64_t) delta;
}

uint64_t
arb_gateway_connections (arb_gateway_t *self, arb_gateway_protocol_t protocol)
{
    return self->connections[protocol];
}

const char *
arb_gateway_protocol_name (arb_gateway_protocol_t protocol)
{
    static const char *names[ARB_GATEWAY_PROTOCOLS] = {"http", "kestrel", "amqp"};
    return names[protocol];
}

int
arb_gateway_listen (arb_gateway_t *self, const arb_gateway_listener_t *listener)
{
    if (self->listener_count == ARB_GATEWAY_LISTENERS)
        return -1;
    self->listeners[self->listener_count++] = *listener;
    return 0;
}

void
arb_gateway_unlisten (arb_gateway_t *self, void *arg)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->listener_count; i++)
        if (self->listeners[i].arg != arg)
            self->listeners[kept++] = self->listeners[i];
    self->listener_count = kept;
}

//  ---------------------------------------------------------------------
//  The loop

static void
s_on_link (arb_reactor_t *reactor, zsock_t *sock, void *arg)
{
    (void) reactor;
    (void) sock;
    arb_link_handle (((arb_gateway_t *) arg)->link);
}

//  The link's DEALER has handshake news: a refusal fails what waits at once.
static void
s_on_link_events (arb_reactor_t *reactor, zsock_t *sock, void *arg)
{
    (void) reactor;
    (void) sock;
    arb_link_handshake (((arb_gateway_t *) arg)->link);
}

//  The link's own connection (arb_link_fd) has input, or takes output.
static void
s_on_link_fd (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) fd;
    (void) events;
    arb_link_handle (((arb_gateway_t *) arg)->link);
}

//  Before the loop sleeps: the turn's batch and outcomes go out, and the
//  link says when it needs to run again.
static int
s_prepare (arb_reactor_t *reactor, void *arg)
{
    (void) reactor;
    arb_gateway_t *self = (arb_gateway_t *) arg;
    s_flush_batch (self);
    //  the link's connection may have opened again without an answer or a
    //  session change to tell
    s_check_room (self);
    arb_link_flush (self->link);
    int wait = arb_link_timeout (self->link);
    if (wait == 0) {
        //  due work the socket cannot show (the link's timers, messages
        //  left after a batch)
        arb_link_handle (self->link);
        wait = arb_link_timeout (self->link);
    }
    return wait;
}

arb_gateway_t *
arb_gateway_new (const arb_gateway_config_t *config)
{
    arb_gateway_t *self = (arb_gateway_t *) zmalloc (sizeof (arb_gateway_t));
    self->max_payload = config->max_payload ? config->max_payload : ARB_PAYLOAD_DEFAULT_MAX;
    self->requests = arb_idmap_new ();
    self->batches = arb_idmap_new ();
    self->reactor = arb_reactor_new ();
    self->cert = config->cert ? strdup (config->cert) : NULL;
    arb_link_callbacks_t callbacks = {
        .reply = s_on_reply,
        .done = s_on_done,
        .stop = s_on_stop,
        .event = s_on_event,
        .state = s_on_state,
    };
    self->link = config->curve ? arb_link_new_curve (config->broker, config->name, &callbacks, self,
                                                     config->curve)
                               : arb_link_new (config->broker, config->name, &callbacks, self);
    if (self->link)
        arb_link_set_forbidden (self->link, s_on_forbidden);
    if (!self->reactor || !self->link) {
        zsys_error ("gateway: cannot start: %s",
                    self->reactor ? "bad broker endpoint or worker name" : "no event loop");
        arb_gateway_destroy (&self);
        return NULL;
    }
    if (config->request_timeout_ms)
        arb_link_set_timeout (self->link, (int) config->request_timeout_ms);
    arb_link_set_max_payload (self->link, self->max_payload);
    //  its leases are its clients' (AMQP deliveries, Kestrel open reads):
    //  lost with a kill -9 of the gateway, they go back as if released
    arb_link_set_relay (self->link);
    if (arb_link_sock (self->link)) {
        arb_reactor_add_sock (self->reactor, arb_link_sock (self->link), s_on_link, self);
        if (arb_link_events (self->link))
            arb_reactor_add_sock (self->reactor, arb_link_events (self->link), s_on_link_events,
                                  self);
    }
    else
        arb_reactor_add_fd (self->reactor, arb_link_fd (self->link), ARB_REACTOR_READ, s_on_link_fd,
                            self);
    arb_reactor_add_prepare (self->reactor, s_prepare, self);
    return self;
}

void
arb_gateway_destroy (arb_gateway_t **self_p)
{
    assert (self_p);
    arb_gateway_t *self = *self_p;
    if (!self)
        return;
    s_batch_destroy (self, &self->filling);
    size_t cursor = 0;
    uint64_t id;
    void *value;
    while (self->requests && arb_idmap_next (self->requests, &cursor, &id, &value)) {
        s_request_t *request = (s_request_t *) value;
        s_batch_destroy (self, &request->batch);
        free (request);
    }
    arb_idmap_destroy (&self->requests);
    arb_idmap_destroy (&self->batches);
    arb_link_destroy (&self->link);
    arb_reactor_destroy (&self->reactor);
    free (self->cert);
    free (self);
    *self_p = NULL;
}

arb_reactor_t *
arb_gateway_reactor (arb_gateway_t *self)
{
    return self->reactor;
}

arb_link_t *
arb_gateway_link (arb_gateway_t *self)
{
    return self->link;
}

bool
arb_gateway_is_up (arb_gateway_t *self)
{
    return arb_link_is_up (self->link);
}

bool
arb_gateway_is_open (arb_gateway_t *self)
{
    return arb_link_is_open (self->link);
}

int
arb_gateway_run (arb_gateway_t *self)
{
    int rc = arb_reactor_run (self->reactor);
    return self->forbidden ? -1 : rc;
}
