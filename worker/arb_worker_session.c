/*  arb_worker_session.c — the worker runtime's session with the broker
    (see arb_worker.h and arb_worker_priv.h): what a loop turn sends, and
    what the broker's messages do. The run thread alone runs it.

    Session. REGISTERING (REGISTER sent, waiting for the WELCOME with the
    same request id) -> READY (CREDIT sent). A 410, or a silence past the
    liveness window (the worker's own clock: nothing from the broker, the
    loop stopped, or nothing sent for nearly the window, which is what the
    broker's clock counts; checked before each message is taken), starts a new
    session: the tasks still running belong to the old one. The REGISTER
    claims them ("held"), and they are orphans until the WELCOME says which
    ones the broker gave back under a new lease ("adopted"): those carry on
    and report as usual, so a broker restart does not run them twice; the
    others become "quiet" (nothing is reported for them: the broker has
    given them to someone else) and their slots return credit only once
    free. An orphan that finishes meanwhile keeps its outcome until the
    answer. A task that streamed items under its old lease is not claimed:
    those items died with the lease. After silence, and when a REGISTER
    goes unanswered, the socket is replaced, so that stale messages queued
    for a broker that is gone do not pour out when it comes back, and a
    worker back from a stop starts none of the DISPATCHes that waited.

    Results. Every outcome is kept (arb_leases, as the link keeps its
    own) until the RESULT_OK that answers its RESULT after the broker's
    commit; one without an answer within the liveness window goes again,
    and a new session's REGISTER claims the kept ones beside the orphans,
    each adopted one going again under its new lease. So neither a broker
    that dies before its commit nor an outage longer than the liveness
    window makes a finished task run twice.

    Credit. The broker may send at most the credit given; every free slot is
    one credit, given on WELCOME (all free slots) or when a slot frees up,
    unless S_KEPT_MAX results (or S_KEPT_BYTES) wait for an answer: then
    it waits. Invariant while READY and running: credit held by the broker
    + busy slots + credit owed = slots.
*/

#include "arb_worker_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#define S_ROUTING_ID_SIZE 16
#define S_RECV_BURST      256           //  broker messages taken per loop turn
#define S_RESULT_ITEMS    1000          //  a RESULT message goes out at this many results
#define S_RESULT_BYTES    (32u << 20)   //  ... or this many result bytes
#define S_KEPT_MAX        10000         //  results kept unacknowledged: beyond, no credit
#define S_KEPT_BYTES      (256u << 20)  //  ... nor beyond this many result bytes

//  ---------------------------------------------------------------------
//  What a loop turn sends.

uint32_t
arb_worker_next_reqid (arb_worker_t *self)
{
    if (++self->reqid == 0)
        self->reqid = 1;  //  0 is for messages nobody asked for
    return self->reqid;
}

void
arb_worker_send (arb_worker_t *self, arb_msg_t **msg_p)
{
    arb_msg_type_t type = arb_msg_type (*msg_p);
    if ((self->dial ? arb_dial_send (self->dial, msg_p)
                    : arb_msg_send (msg_p, zsock_resolve (self->dealer)))
        != 0)
        ARB_WORKER_WARNING (self, "worker: send failed type=%s errno=%d", arb_msg_type_name (type),
                            errno);
    else
        self->last_tx = arb_worker_now ();
}

void
arb_worker_out_emit (arb_worker_t *self, arb_msg_t **emit_p)
{
    if (self->out_emit_count == self->out_emit_cap) {
        self->out_emit_cap = self->out_emit_cap ? self->out_emit_cap * 2 : 8;
        self->out_emits =
            (arb_msg_t **) realloc (self->out_emits, self->out_emit_cap * sizeof (arb_msg_t *));
        assert (self->out_emits);
    }
    self->out_emits[self->out_emit_count++] = *emit_p;
    *emit_p = NULL;
}

void
arb_worker_credit (arb_worker_t *self, int credit, bool with_queues, bool cancel)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_CREDIT, arb_worker_next_reqid (self));
    arb_credit_body_t *body = arb_msg_credit (msg);
    body->sub = 0;
    body->credit = credit;
    body->cancel = cancel;
    if (with_queues) {
        //  the first CREDIT of a session names the queues; later ones add credit only
        body->queues.v = (const char **) self->queues;
        body->queues.n = self->queue_count;
    }
    arb_worker_send (self, &msg);
}

//  Whether the results kept unacknowledged leave room for more tasks:
//  beyond S_KEPT_MAX of them (or S_KEPT_BYTES), the worker gives no credit
//  until the broker acknowledges some, so a broker that stores nothing
//  cannot make it hold results without end.
static bool
s_room_for_results (arb_worker_t *self)
{
    return arb_leases_size (self->results) < S_KEPT_MAX
           && arb_leases_bytes (self->results) < S_KEPT_BYTES;
}

//  Sends what the turn produced: items before the results that commit them,
//  results before the credit, so that a task never finds a slot that is
//  still reporting. Results go out only in a session: the broker knows
//  their leases; each stays kept until the broker acknowledges it.
void
arb_worker_flush (arb_worker_t *self)
{
    for (size_t i = 0; i < self->out_emit_count; i++)
        arb_worker_send (self, &self->out_emits[i]);
    self->out_emit_count = 0;
    arb_msg_t *msg;
    while (self->session == ARB_WORKER_SESSION_READY && arb_leases_has_results (self->results)
           && (msg = arb_leases_results (self->results, arb_worker_next_reqid (self),
                                         arb_worker_now ())))
        arb_worker_send (self, &msg);
    if (self->credit_owed > 0 && s_room_for_results (self)) {
        arb_worker_credit (self, self->credit_owed, false, false);
        self->credit_owed = 0;
    }
}

//  Drops what the turn would have sent: a new session begins, and the
//  broker no longer knows the leases these belong to (the results stay
//  kept, to be claimed).
void
arb_worker_discard (arb_worker_t *self)
{
    for (size_t i = 0; i < self->out_emit_count; i++)
        arb_msg_destroy (&self->out_emits[i]);
    self->out_emit_count = 0;
    self->credit_owed = 0;
}

//  Keeps a task's outcome until the broker acknowledges it (it goes out
//  with the turn's flush). A result is taken. Kept under the slot's lease:
//  a result kept from an earlier lease of the same task is replaced.
void
arb_worker_keep_result (arb_worker_t *self,
                        uint64_t id,
                        uint64_t lease,
                        arb_outcome_t outcome,
                        const char *error,
                        bool routed,
                        zframe_t **result_p)
{
    arb_leases_forget (self->results, id);
    if (arb_leases_add (self->results, id, lease, 0)
        || arb_leases_settle (self->results, id, outcome, error, result_p)) {
        ARB_WORKER_ERROR (self, "worker: result not kept id=%" PRIu64 " kept=%zu", id,
                          arb_leases_size (self->results));
        zframe_destroy (result_p);
        return;
    }
    if (routed)
        arb_leases_set_routed (self->results, id);
}

//  ---------------------------------------------------------------------
//  The session with the broker.

int
arb_worker_connect (arb_worker_t *self)
{
    //  a tcp:// broker without CURVE: a connection of our own, under a
    //  fresh routing id (arb_dial.h)
    arb_dial_t *dial = arb_dial_new_for (self->endpoint, self->run_curve);
    if (dial) {
        arb_handshake_destroy (&self->handshake);
        zsock_destroy (&self->dealer);
        arb_dial_destroy (&self->dial, 0);
        self->dial = dial;
        return 0;
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        ARB_WORKER_ERROR (self, "worker: cannot create a socket errno=%d", zmq_errno ());
        return -1;
    }
    //  a fresh random identity per socket: the broker must never mistake a
    //  new session for an old one. ZeroMQ reserves ids starting with 0.
    uint8_t id[S_ROUTING_ID_SIZE];
    if (getrandom (id, sizeof (id), 0) != (ssize_t) sizeof (id))
        for (size_t i = 0; i < sizeof (id); i++)
            id[i] = (uint8_t) (random () >> 8);
    id[0] |= 0x80;
    zmq_setsockopt (zsock_resolve (dealer), ZMQ_ROUTING_ID, id, sizeof (id));
    if (self->run_curve)
        arb_curve_apply (self->run_curve, dealer);
    arb_handshake_t *handshake = arb_handshake_new (dealer);
    zsock_set_linger (dealer, 0);
    //  never block the loop: a broker that does not read loses messages
    //  (and is soon declared dead) rather than freezing every slot
    zsock_set_sndtimeo (dealer, 0);
    zsock_set_rcvtimeo (dealer, 0);
    if (zsock_connect (dealer, "%s", self->endpoint) != 0) {
        ARB_WORKER_ERROR (self, "worker: cannot connect endpoint=%s", self->endpoint);
        arb_handshake_destroy (&handshake);
        zsock_destroy (&dealer);
        return -1;
    }
    //  only a working socket replaces the old one, which the loop can keep
    //  using (and try again to replace) if anything above failed
    arb_handshake_destroy (&self->handshake);
    zsock_destroy (&self->dealer);
    arb_dial_destroy (&self->dial, 0);
    self->dealer = dealer;
    self->handshake = handshake;
    return 0;
}

//  Starts a new session: whatever runs now belongs to the old one.
void
arb_worker_register (arb_worker_t *self, bool new_socket)
{
    arb_worker_discard (self);
    //  without a new socket (out of descriptors), the old one still works
    if (new_socket)
        arb_worker_connect (self);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_REGISTER, arb_worker_next_reqid (self));
    arb_register_body_t *body = arb_msg_register (msg);
    body->name = self->name;
    body->mode = self->mode == ARB_WORKER_HEAVY ? "heavy" : "light";
    body->slots = (uint32_t) self->slot_count;
    body->pid = (uint32_t) getpid ();
    body->host = self->host;
    if (!self->fallback.fn) {
        //  the broker then sends only these names; a "*" handler runs any
        body->handles.v =
            (const char **) arb_msg_alloc (msg, self->handler_count * sizeof (char *));
        for (size_t i = 0; i < self->handler_count; i++)
            body->handles.v[i] = self->handlers[i].name;
        body->handles.n = self->handler_count;
    }
    body->acks = true;              //  results stay kept until RESULT_OK
    body->marks = !self->no_marks;  //  its HEARTBEAT says the mark it read
    self->no_marks = false;         //  this REGISTER only: the broker may be upgraded since
    for (int i = 0; i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (!slot->busy || slot->quiet)
            continue;
        if (slot->emitted) {
            slot->quiet = true;
            continue;
        }
        slot->orphan = true;
        arb_held_t *held = (arb_held_t *) arb_msg_grow (msg, &body->held, sizeof (arb_held_t), 1);
        held->id = arb_job_id (slot->job);
        held->lease = slot->lease;
        //  so that its timeout counts from its start, not from the claim
        int64_t ran = arb_worker_now () - slot->started;
        held->ran_ms = ran > 0 ? (uint64_t) ran : 0;
    }
    //  and the results not acknowledged: the broker may not have them
    arb_leases_claim (self->results, msg);
    self->register_reqid = self->reqid;
    self->session = ARB_WORKER_SESSION_REGISTERING;
    self->register_retry_at = arb_worker_now () + self->register_wait_ms;
    if (!self->unanswered_since) {
        self->unanswered_since = arb_worker_now ();
        self->unreachable_log_at = self->unanswered_since + ARB_WORKER_UNREACHABLE_MS;
    }
    arb_worker_send (self, &msg);
}

static arb_worker_slot_t *
s_orphan_find (arb_worker_t *self, uint64_t id)
{
    for (int i = 0; i < self->slot_count; i++)
        if (self->slots[i].orphan && arb_job_id (self->slots[i].job) == id)
            return &self->slots[i];
    return NULL;
}

//  The broker's answer to the claim: adopted orphans carry on under their
//  new lease (a finished one reports now), and adopted results go again
//  under theirs; the rest are no longer ours.
static void
s_on_adopted (arb_worker_t *self, arb_welcome_body_t *body)
{
    //  what is not an orphan's is the kept results' (arb_leases_adopt
    //  releases an adopted task it no longer holds)
    arb_welcome_body_t results = {0};
    results.adopted.v = (arb_held_t *) zmalloc ((body->adopted.n + 1) * sizeof (arb_held_t));
    for (size_t i = 0; i < body->adopted.n; i++) {
        arb_held_t *item = &body->adopted.v[i];
        arb_worker_slot_t *slot = s_orphan_find (self, item->id);
        if (!slot) {
            results.adopted.v[results.adopted.n++] = *item;
            continue;
        }
        slot->orphan = false;
        slot->lease = item->lease;
        slot->adopted = true;
        if (slot->held)
            arb_worker_slot_done (self, slot, slot->held_rc);
        else if (slot->unstarted) {
            slot->unstarted = false;  //  ours again: it starts now
            self->launch[self->launch_count++] = slot;
        }
    }
    arb_leases_adopt (self->results, &results, NULL, NULL);
    free (results.adopted.v);
    //  the rest the broker has given to someone else, or ended
    for (int i = 0; i < self->slot_count; i++)
        if (self->slots[i].orphan)
            arb_worker_slot_stop (self, &self->slots[i], SIGTERM);
}

static void
s_on_welcome (arb_worker_t *self, arb_msg_t *msg)
{
    if (self->session != ARB_WORKER_SESSION_REGISTERING
        || arb_msg_reqid (msg) != self->register_reqid)
        return;  //  answers an earlier REGISTER
    arb_welcome_body_t *body = arb_msg_welcome (msg);
    self->heartbeat_ms = body->heartbeat_ms < 10 ? 10 : body->heartbeat_ms;
    self->liveness_ms =
        body->liveness_ms > self->heartbeat_ms ? body->liveness_ms : 3 * self->heartbeat_ms;
    self->broker_max_payload = (size_t) body->max_payload;
    arb_dial_set_max_payload (self->dial, body->max_payload);
    self->session = ARB_WORKER_SESSION_READY;
    self->mark = 0;
    self->register_wait_ms = ARB_WORKER_REGISTER_FIRST;
    self->unanswered_since = 0;
    self->welcomed = true;
    self->heartbeat_at = arb_worker_now () + self->heartbeat_ms;
    self->last_tx = arb_worker_now ();  //  the REGISTER just answered
    ARB_WORKER_INFO (
        self, "worker: registered endpoint=%s name=%s slots=%d epoch=%" PRIu64 " taken_back=%zu",
        self->endpoint, self->name, self->slot_count, body->epoch, body->adopted.n);
    if (self->phase == ARB_WORKER_PHASE_RUN)
        arb_worker_credit (self, self->free_count, true, false);
    s_on_adopted (self, body);
}

static void
s_on_error (arb_worker_t *self, arb_msg_t *msg)
{
    arb_error_body_t *body = arb_msg_error (msg);
    uint32_t reqid = arb_msg_reqid (msg);
    if (body->code == ARB_ERR_UNKNOWN_WORKER) {
        //  only the first 410 of a session matters; later ones answer
        //  messages sent before the REGISTER that is already on its way
        if (self->session != ARB_WORKER_SESSION_READY
            || (reqid != 0 && reqid < self->register_reqid))
            return;
        ARB_WORKER_INFO (self, "worker: broker does not know us, registering again");
        arb_worker_register (self, false);
        return;
    }
    if (body->code == ARB_ERR_BAD_REQUEST && reqid == self->register_reqid && body->reason
        && strstr (body->reason, "'marks'")) {
        //  a broker older than marks (400 unknown key): it checks busy by
        //  time, as before them (the next REGISTER says marks again: the
        //  broker may be upgraded by then)
        ARB_WORKER_INFO (self, "worker: the broker takes no marks (older), registering without");
        self->no_marks = true;
        arb_worker_register (self, false);
        return;
    }
    if (body->code == ARB_ERR_FORBIDDEN && reqid == self->register_reqid) {
        //  its certificate is not a worker's: asking again changes nothing
        ARB_WORKER_ERROR (self, "worker: the broker refused to register this worker: %s",
                          body->reason);
        self->gave_up = true;
        self->phase = ARB_WORKER_PHASE_DONE;
        return;
    }
    if (body->code == ARB_ERR_FORBIDDEN && self->session == ARB_WORKER_SESSION_READY) {
        //  its certificate no longer allows a worker: asking again changes
        //  nothing, and the broker gives its tasks to others once it is
        //  silent, so they stop here now
        if (!self->gave_up)
            ARB_WORKER_ERROR (self,
                              "worker: the broker shut this worker out, stopping its tasks: %s",
                              body->reason);
        arb_worker_shut_out (self);
        return;
    }
    if (body->code == ARB_ERR_JOURNAL_FULL) {
        //  the broker's turn was undone: nothing of it was stored, and it
        //  asks for it again later. The results stay, sent again after a
        //  liveness window without an answer or claimed with the next
        //  REGISTER (dropping them ran their tasks twice).
        ARB_WORKER_WARNING (self,
                            "worker: broker error code=%u reqid=%u reason=%s results_kept=%zu",
                            body->code, reqid, body->reason, arb_leases_size (self->results));
        return;
    }
    //  a RESULT refused whole will never be taken: its outcomes are done
    size_t dropped = arb_leases_acked (self->results, reqid);
    ARB_WORKER_WARNING (self, "worker: broker error code=%u reqid=%u reason=%s results_dropped=%zu",
                        body->code, reqid, body->reason, dropped);
}

//  The largest result or item a task may leave: the broker keeps nothing
//  bigger (it says its limit in WELCOME), and the worker may be told less.
static size_t
s_result_limit (arb_worker_t *self)
{
    size_t broker = self->broker_max_payload;
    return broker && broker < self->max_payload ? broker : self->max_payload;
}

//  Answers a dispatched task that will not run here: back to the head of
//  its queue, no attempt counted.
static void
s_release (arb_worker_t *self, arb_dispatch_task_t *task)
{
    arb_worker_keep_result (self, task->id, task->lease, ARB_OUTCOME_RELEASE, NULL, false, NULL);
}

static void
s_on_dispatch (arb_worker_t *self, arb_msg_t **msg_p)
{
    arb_dispatch_body_t *body = arb_msg_dispatch (*msg_p);
    if (self->session != ARB_WORKER_SESSION_READY) {
        ARB_WORKER_WARNING (self, "worker: dispatch outside a session dropped tasks=%zu",
                            body->tasks.n);
        arb_msg_destroy (msg_p);
        return;
    }
    arb_worker_batch_t *batch = (arb_worker_batch_t *) zmalloc (sizeof (arb_worker_batch_t));
    batch->msg = *msg_p;
    batch->refs = 1;  //  ours, until every task is placed
    *msg_p = NULL;
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_dispatch_task_t *task = &body->tasks.v[i];
        if (self->phase != ARB_WORKER_PHASE_RUN || self->free_count == 0) {
            if (self->phase == ARB_WORKER_PHASE_RUN)
                ARB_WORKER_WARNING (self, "worker: dispatch beyond credit id=%" PRIu64, task->id);
            s_release (self, task);
            continue;
        }
        //  a result kept from an earlier lease of it is done with
        arb_leases_forget (self->results, task->id);
        arb_worker_slot_t *slot = &self->slots[self->free[--self->free_count]];
        self->busy++;
        slot->busy = true;
        slot->quiet = false;
        slot->lease = task->lease;
        slot->started = arb_worker_now ();
        slot->batch = batch;
        batch->refs++;
        arb_job_set_max_payload (slot->job, s_result_limit (self));
        arb_job_start (slot->job, task);
        ARB_WORKER_DEBUG (self, "worker: task start id=%" PRIu64 " name=%s slot=%d", task->id,
                          arb_job_name (slot->job), slot->index);
        if (self->mode == ARB_WORKER_LIGHT)
            self->launch[self->launch_count++] = slot;
        else
            arb_worker_heavy_launch (self, slot);
    }
    arb_worker_batch_release (&batch);
}

static void
s_on_stop (arb_worker_t *self, arb_msg_t *msg)
{
    arb_stop_body_t *body = arb_msg_stop (msg);
    for (size_t i = 0; i < body->tasks.n; i++) {
        arb_stop_item_t *item = &body->tasks.v[i];
        arb_worker_slot_t *slot = arb_worker_slot_find (self, item->id, item->lease);
        ARB_WORKER_DEBUG (self, "worker: stop id=%" PRIu64 " reason=%u running=%d", item->id,
                          item->reason, slot != NULL);
        if (slot)
            arb_worker_slot_stop (self, slot, SIGTERM);
    }
}

static void
s_on_message (arb_worker_t *self, arb_msg_t **msg_p)
{
    switch (arb_msg_type (*msg_p)) {
        case ARB_MSG_DISPATCH:
            s_on_dispatch (self, msg_p);
            break;
        case ARB_MSG_STOP:
            s_on_stop (self, *msg_p);
            break;
        case ARB_MSG_WELCOME:
            s_on_welcome (self, *msg_p);
            break;
        case ARB_MSG_ERROR:
            s_on_error (self, *msg_p);
            break;
        case ARB_MSG_HEARTBEAT:
            //  its arrival is what counts, and its mark: every lease up
            //  to it came before (what the broker checks busy against)
            if (self->session == ARB_WORKER_SESSION_READY
                && arb_msg_heartbeat (*msg_p)->mark > self->mark)
                self->mark = arb_msg_heartbeat (*msg_p)->mark;
            break;
        case ARB_MSG_RESULT_OK:
            //  stored or refused after the broker's commit: done with
            arb_leases_acked (self->results, arb_msg_reqid (*msg_p));
            break;
        default:
            ARB_WORKER_WARNING (self, "worker: unexpected message type=%s",
                                arb_msg_type_name (arb_msg_type (*msg_p)));
            break;
    }
    arb_msg_destroy (msg_p);
}

//  Takes up to S_RECV_BURST messages, so that results and timers still get
//  their turn under a flood.
void
arb_worker_recv_broker (arb_worker_t *self)
{
    //  the broker sends nothing over its own limit, whatever ours says
    size_t max =
        self->broker_max_payload > self->max_payload ? self->broker_max_payload : self->max_payload;
    arb_limits_t limits = {.max_frame = max};
    for (int i = 0; i < S_RECV_BURST; i++) {
        arb_msg_t *msg = NULL;
        int rc = self->dial ? arb_dial_recv (self->dial, &limits, &msg)
                            : arb_msg_recv (zsock_resolve (self->dealer), &limits, &msg);
        //  the bytes of a message still on its way are the broker's life
        //  too: a DISPATCH of 15 MB on a slow link takes longer than the
        //  window, and was thrown away as the old session's, again and again
        if (self->dial && arb_dial_heard (self->dial) > self->last_rx)
            self->last_rx = arb_dial_heard (self->dial);
        if (rc == -1)
            break;
        if (arb_worker_was_silent (self)) {
            //  stopped while reading (SIGSTOP mid-turn): this message and
            //  those behind it are the old session's
            arb_msg_destroy (&msg);
            ARB_WORKER_WARNING (self, "worker: silent for %" PRId64 " ms, registering again",
                                arb_worker_now () - self->last_rx);
            arb_worker_register (self, true);
            break;
        }
        self->last_rx = arb_worker_now ();
        if (rc == 0)
            s_on_message (self, &msg);
        else {
            ARB_WORKER_WARNING (self, "worker: malformed message from broker reason=%s",
                                msg ? arb_msg_decode_error (msg) : "unreadable");
            arb_msg_destroy (&msg);
        }
    }
}
