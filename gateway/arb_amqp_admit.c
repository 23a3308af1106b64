/*  arb_amqp_admit.c — the AMQP server's submits, and the admission of
    messages to queues that refuse to overflow (x-max-length or
    x-max-length-bytes with x-overflow reject-publish or
    reject-publish-dlx). Runs on the gateway's one thread; see
    arb_amqp_priv.h.

    Such a queue must decide before the store, so a message for it is held
    here: the queue's held messages wait for a count of its ready tasks
    and their payload bytes (STATS, sent in the turn after they came, once
    the turn's submits are out: the broker answers in order, so the count
    holds every message admitted before), then each in order is submitted
    if it fits under both bounds with those admitted before it, else
    refused (the publisher nacks it under confirms; reject-publish-dlx
    dead-letters it, reason maxlen): as RabbitMQ, a message too big for
    the bytes left is refused and a smaller one after it may still fit. One
    count per queue at a time: messages that come during it wait for the
    next, asked once those it admitted are out. With the gateway as the queue's only
    producer the bound is exact; tasks that Kestrel, REST or workers put
    into the same broker queue between a count and the store are not
    seen by it (they may take it over the bound; nothing is dropped to
    make room).

    Once the broker has taken the queue's bounds with overflow reject
    (queue->broker_bounds: arb_amqp_bound_queue), it decides itself, in the
    turn of the submit, whatever else submits to the queue: a message goes
    to it at once (after those still held, if any), and one that the
    broker refused (`refused` in SUBMITTED: its task ended at once) is refused here
    as one that did not fit; reject-publish-dlx keeps a copy of the body
    until the answer, to dead-letter it.

    A ticket of this module has its top bit set; the others are the
    gateway's own (arb_gateway_submit_one).
*/

#include "arb_amqp_priv.h"

#include <inttypes.h>

#define ARB_AMQP_ADMIT_BIT (1ull << 63)

//  One message for a queue that refuses to overflow: held, then submitted
//  or refused.
typedef struct {
    arb_amqp_t *server;       //  borrowed
    uint64_t id;              //  its ticket (ARB_AMQP_ADMIT_BIT set)
    zchunk_t *headers;        //  owned: the task's headers
    zframe_t *payload;        //  owned
    arb_task_spec_t options;  //  its options (queue, name, headers and payload: none)
    arb_gateway_submitted_fn *fn;
    void *arg;                //  NULL: forgotten (submitted all the same, no answer)
    uint64_t ticket;          //  admitted: the gateway's ticket, its answer awaited (0: held)
    void *handle;             //  in server->admits
    arb_amqp_vhost_t *vhost;  //  borrowed: its queue's, looked up again at the answer
    char *name;               //  owned: its queue's AMQP name
    zframe_t *copy;           //  owned: reject-publish-dlx, the body once submitted
} s_admit_t;

//  A queue's held messages and the count they wait for; found through
//  queue->gate, the queue looked up by name at the answer (it may be gone).
typedef struct {
    arb_amqp_t *server;       //  borrowed
    arb_amqp_vhost_t *vhost;  //  borrowed (vhosts last as long as the model)
    char *name;               //  owned: the queue's AMQP name
    char *broker;             //  owned: its broker queue's name
    zlistx_t *held;           //  borrowed s_admit_t that wait for the next count, in order
    zlistx_t *batch;          //  borrowed s_admit_t the count under way decides, in order
    uint32_t counting;        //  the STATS request under way, 0: none
    void *handle;             //  in server->gates
} s_gate_t;

static void
s_admit_destructor (void **item)
{
    s_admit_t *admit = (s_admit_t *) *item;
    if (!admit)
        return;
    zchunk_destroy (&admit->headers);
    zframe_destroy (&admit->payload);
    zframe_destroy (&admit->copy);
    free (admit->name);
    free (admit);
    *item = NULL;
}

static void
s_gate_destructor (void **item)
{
    s_gate_t *gate = (s_gate_t *) *item;
    if (!gate)
        return;
    zlistx_destroy (&gate->held);
    zlistx_destroy (&gate->batch);
    free (gate->name);
    free (gate->broker);
    free (gate);
    *item = NULL;
}

void
arb_amqp_admit_init (arb_amqp_t *self)
{
    self->admits = zlistx_new ();
    zlistx_set_destructor (self->admits, s_admit_destructor);
    self->admit_ids = arb_idmap_new ();
    self->gates = zlistx_new ();
    zlistx_set_destructor (self->gates, s_gate_destructor);
}

void
arb_amqp_admit_fini (arb_amqp_t *self)
{
    arb_reactor_disarm (self->reactor, &self->gate_timer);
    for (s_admit_t *a = (s_admit_t *) zlistx_first (self->admits); a;
         a = (s_admit_t *) zlistx_next (self->admits))
        if (a->ticket)
            arb_gateway_forget_submit (self->gateway, a->ticket);
    zlistx_destroy (&self->gates);
    zlistx_destroy (&self->admits);
    arb_idmap_destroy (&self->admit_ids);
}

static bool
s_refuses_overflow (arb_amqp_queue_t *queue)
{
    return arb_amqp_model_is_bounded (&queue->settings)
           && queue->settings.overflow != ARB_AMQP_DROP_HEAD;
}

static void
s_admit_end (s_admit_t *admit)
{
    arb_amqp_t *self = admit->server;
    arb_idmap_remove (self->admit_ids, admit->id);
    zlistx_delete (self->admits, admit->handle);
}

//  Answers a held message without storing it: code and error as
//  arb_gateway_submitted_fn's.
static void
s_refuse (s_admit_t *admit, int code, const char *error)
{
    arb_amqp_t *self = admit->server;
    arb_gateway_submitted_fn *fn = admit->fn;
    void *fn_arg = admit->arg;
    s_admit_end (admit);
    if (fn_arg)
        fn (self->gateway, NULL, code, error, fn_arg);
}

//  A message that does not fit its queue: dead-lettered if the queue says
//  so (body: the message's, borrowed), then refused.
static void
s_overflow (s_admit_t *admit, arb_amqp_queue_t *queue, zframe_t *body)
{
    if (queue && body && queue->settings.overflow == ARB_AMQP_REJECT_PUBLISH_DLX)
        arb_amqp_deadletter (
            admit->server, queue, 0,
            (arb_bin_t){zchunk_data (admit->headers), zchunk_size (admit->headers)}, body,
            "maxlen");
    s_refuse (admit, ARB_AMQP_OVERFLOW, "maxlen");
}

static void
s_on_admitted (arb_gateway_t *gateway,
               const arb_submitted_task_t *task,
               int code,
               const char *error,
               void *arg)
{
    s_admit_t *admit = (s_admit_t *) arg;
    if (task && task->refused) {
        //  the broker keeps the queue's bounds, and this one did not fit
        s_overflow (admit, arb_amqp_model_queue (admit->vhost, admit->name), admit->copy);
        return;
    }
    arb_gateway_submitted_fn *fn = admit->fn;
    void *fn_arg = admit->arg;
    s_admit_end (admit);
    if (fn_arg)
        fn (gateway, task, code, error, fn_arg);
}

//  Submits a message (its answer: s_on_admitted). Returns the gateway's
//  ticket, or 0 if the link refused it (arb_gateway_error says why).
static uint64_t
s_send (s_admit_t *admit, const char *broker)
{
    arb_amqp_t *self = admit->server;
    arb_task_spec_t spec = admit->options;
    spec.queue = broker;
    spec.name = ARB_AMQP_TASK_NAME;
    spec.headers = (arb_bin_t){zchunk_data (admit->headers), zchunk_size (admit->headers)};
    arb_amqp_queue_t *queue = arb_amqp_model_queue (admit->vhost, admit->name);
    if (queue && queue->broker_bounds && queue->settings.overflow == ARB_AMQP_REJECT_PUBLISH_DLX)
        admit->copy = zframe_dup (admit->payload);  //  the broker may refuse it
    spec.payload = admit->payload;
    admit->payload = NULL;
    admit->ticket = arb_gateway_submit_one (self->gateway, &spec, s_on_admitted, admit);
    return admit->ticket;
}

//  Stores a held message that fits.
static void
s_admit (s_admit_t *admit, const char *broker)
{
    if (!s_send (admit, broker))
        s_refuse (admit, 0, arb_gateway_error (admit->server->gateway));
}

static void
s_gate_end (s_gate_t *gate)
{
    arb_amqp_t *self = gate->server;
    arb_amqp_queue_t *queue = arb_amqp_model_queue (gate->vhost, gate->name);
    if (queue && queue->gate == gate)
        queue->gate = NULL;
    zlistx_delete (self->gates, gate->handle);
}

//  Refuses every message of list (not stored: code 0).
static void
s_refuse_all (zlistx_t *list, const char *why)
{
    s_admit_t *admit;
    while ((admit = (s_admit_t *) zlistx_first (list))) {
        zlistx_delete (list, NULL);  //  the first
        s_refuse (admit, 0, why);
    }
}

static void s_gate_arm (arb_amqp_t *self);

static void
s_on_gate_count (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_gate_t *gate = (s_gate_t *) arg;
    arb_amqp_t *self = gate->server;
    gate->counting = 0;
    arb_amqp_queue_t *queue = arb_amqp_model_queue (gate->vhost, gate->name);
    if (!queue || queue->gate != gate) {
        s_refuse_all (gate->batch, "the queue was deleted");
        s_refuse_all (gate->held, "the queue was deleted");
        s_gate_end (gate);
        return;
    }
    arb_msg_t *reply = *reply_p;
    if (arb_msg_type (reply) != ARB_MSG_STATS_REPLY)
        s_refuse_all (gate->batch, "the queue could not be counted");
    uint64_t ready = arb_amqp_ready_count (reply, gate->broker);
    uint64_t bytes = arb_amqp_ready_bytes (reply, gate->broker);
    size_t refused = 0;
    s_admit_t *admit;
    while ((admit = (s_admit_t *) zlistx_first (gate->batch))) {
        zlistx_delete (gate->batch, NULL);  //  the first
        uint64_t size = zframe_size (admit->payload);
        if (arb_amqp_model_fits (&queue->settings, ready, bytes, size)) {
            ready++;
            bytes += size;
            s_admit (admit, gate->broker);
            continue;
        }
        refused++;
        s_overflow (admit, queue, admit->payload);
    }
    if (refused)
        zsys_debug ("amqp: queue full, publishes refused queue=%s refused=%zu", gate->broker,
                    refused);
    //  those that came meanwhile: counted again, after these are stored
    if (zlistx_size (gate->held))
        s_gate_arm (self);
    else
        s_gate_end (gate);
}

//  Counts a gate's held messages' queue. 0, or -1 if it could not ask
//  (its messages were refused).
static int
s_gate_count (s_gate_t *gate)
{
    arb_amqp_t *self = gate->server;
    zlistx_t *batch = gate->batch;
    gate->batch = gate->held;
    gate->held = batch;
    arb_msg_t *stats = arb_amqp_count_request (self, gate->broker);
    gate->counting = arb_gateway_send (self->gateway, &stats, s_on_gate_count, gate);
    if (gate->counting)
        return 0;
    s_refuse_all (gate->batch, arb_gateway_error (self->gateway));
    return -1;
}

static void
s_on_gate_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_t *self = (arb_amqp_t *) arg;
    self->gate_armed = false;
    //  the turn's submits first: the count holds what was admitted before
    arb_gateway_flush (self->gateway);
    bool again = true;
    while (again) {
        //  from the start after a gate ends (the list's cursor moves)
        again = false;
        for (s_gate_t *gate = (s_gate_t *) zlistx_first (self->gates); gate;
             gate = (s_gate_t *) zlistx_next (self->gates))
            if (!gate->counting && zlistx_size (gate->held) && s_gate_count (gate) != 0) {
                s_refuse_all (gate->held, arb_gateway_error (self->gateway));
                s_gate_end (gate);
                again = true;
                break;
            }
    }
}

static void
s_gate_arm (arb_amqp_t *self)
{
    if (self->gate_armed)
        return;
    arb_reactor_arm (self->reactor, &self->gate_timer, 0, s_on_gate_timer, self);
    self->gate_armed = true;
}

//  A message for queue, to hold or to submit (spec's payload taken).
static s_admit_t *
s_admit_new (arb_amqp_t *self,
             arb_amqp_queue_t *queue,
             arb_task_spec_t *spec,
             arb_gateway_submitted_fn *fn,
             void *arg)
{
    s_admit_t *admit = (s_admit_t *) zmalloc (sizeof (s_admit_t));
    admit->server = self;
    admit->id = ARB_AMQP_ADMIT_BIT | ++self->next_admit;
    admit->headers = zchunk_new (spec->headers.data, spec->headers.size);
    admit->payload = spec->payload ? spec->payload : zframe_new_empty ();
    spec->payload = NULL;
    admit->options = *spec;
    admit->options.queue = admit->options.name = NULL;
    admit->options.headers = (arb_bin_t){0};
    admit->fn = fn;
    admit->arg = arg;
    admit->handle = zlistx_add_end (self->admits, admit);
    admit->vhost = queue->vhost;
    admit->name = strdup (queue->name);
    arb_idmap_insert (self->admit_ids, admit->id, admit);
    return admit;
}

//  Holds a message for queue until its count comes.
static uint64_t
s_hold (arb_amqp_t *self,
        arb_amqp_queue_t *queue,
        arb_task_spec_t *spec,
        arb_gateway_submitted_fn *fn,
        void *arg)
{
    s_admit_t *admit = s_admit_new (self, queue, spec, fn, arg);
    s_gate_t *gate = (s_gate_t *) queue->gate;
    if (!gate) {
        gate = (s_gate_t *) zmalloc (sizeof (s_gate_t));
        gate->server = self;
        gate->vhost = queue->vhost;
        gate->name = strdup (queue->name);
        gate->broker = strdup (queue->broker);
        gate->held = zlistx_new ();
        gate->batch = zlistx_new ();
        gate->handle = zlistx_add_end (self->gates, gate);
        queue->gate = gate;
    }
    zlistx_add_end (gate->held, admit);
    //  a count under way arms the next one when it ends
    if (!gate->counting)
        s_gate_arm (self);
    return admit->id;
}

uint64_t
arb_amqp_submit (arb_amqp_t *self,
                 arb_amqp_queue_t *queue,
                 arb_task_spec_t *spec,
                 arb_gateway_submitted_fn *fn,
                 void *arg)
{
    //  the queue's [queue.NAME] settings, over --message-retention; a
    //  message's own priority (its queue has x-max-priority) over theirs
    int32_t priority = spec->priority;
    arb_defaults_apply_message (self->config.defaults, spec->queue, self->config.retention_ms,
                                spec);
    if (priority)
        spec->priority = priority;
    if (!s_refuses_overflow (queue))
        return arb_gateway_submit_one (self->gateway, spec, fn, arg);
    if (!queue->broker_bounds || queue->gate)
        return s_hold (self, queue, spec, fn, arg);
    //  the broker decides; after those still held, in order
    s_admit_t *admit = s_admit_new (self, queue, spec, fn, arg);
    if (s_send (admit, queue->broker))
        return admit->id;
    s_admit_end (admit);  //  refused by the link: fn is not called
    return 0;
}

void
arb_amqp_forget_submit (arb_amqp_t *self, uint64_t ticket)
{
    if (!(ticket & ARB_AMQP_ADMIT_BIT)) {
        arb_gateway_forget_submit (self->gateway, ticket);
        return;
    }
    //  held or submitted, it is stored (or refused) all the same
    s_admit_t *admit = (s_admit_t *) arb_idmap_lookup (self->admit_ids, ticket);
    if (admit)
        admit->arg = NULL;
}
