/*  arb_worker.c — the worker runtime (see arb_worker.h).

    Threads. arb_worker_run() runs the loop on the calling thread (the "run
    thread"), which alone owns the broker socket, the session state and the
    slots' bookkeeping. In light mode a pool of slot_count threads takes
    queued jobs and leaves notes for the run thread: "done, rc", "here are
    staged items" or "not started: too late" (arb_pool.h, which says why
    this is a mutex-guarded queue and not a ZeroMQ pipe). A job changes hands through the queue and
    the notes, so the run thread and a pool thread never touch one job at
    once, except for the cancelled flag, which is atomic. In heavy mode the
    run thread forks one child per task and watches its report pipe and its
    pidfd.

    One loop turn: wait (zmq_poll) for the broker, the slots' notes, a stop
    request or the next timer; take everything that is ready; then send
    what the turn produced: EMIT messages first (the broker must have the
    items before it commits the result that makes them real), one RESULT
    for every finished task, one CREDIT for every freed slot.

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
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <syslog.h>
#include <unistd.h>

#define S_ROUTING_ID_SIZE 16
#define S_RECV_BURST      256           //  broker messages taken per loop turn
#define S_RESULT_ITEMS    1000          //  a RESULT message goes out at this many results
#define S_RESULT_BYTES    (32u << 20)   //  ... or this many result bytes
#define S_REAP_POLL_MS    100           //  heavy children without a pidfd are checked this often
#define S_FORCE_SLACK_MS  1000          //  forced stop: extra wait for cancelled light handlers
#define S_KEPT_MAX        10000         //  results kept unacknowledged: beyond, no credit
#define S_KEPT_BYTES      (256u << 20)  //  ... nor beyond this many result bytes
#define S_DIAL_LINGER_MS  200           //  ms the last messages have to leave at the end of a run
#define S_FIXED_ITEMS     4  //  poll items before the slots': broker, wake, notes, handshake events

int64_t
arb_worker_now (void)
{
    return zclock_mono ();
}

//  ---------------------------------------------------------------------
//  Configuration.

arb_worker_t *
arb_worker_new (const char *endpoint, const char *name)
{
    if (name && strlen (name) > ARB_NAME_MAX)
        return NULL;
    int wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0)
        return NULL;
    arb_worker_t *self = (arb_worker_t *) zmalloc (sizeof (arb_worker_t));
    if (!endpoint)
        endpoint = getenv ("ARBITER_BROKER");
    self->endpoint = strdup (endpoint && *endpoint ? endpoint : ARB_WORKER_ENDPOINT);
    if (gethostname (self->host, sizeof (self->host)) != 0)
        strcpy (self->host, "localhost");
    self->host[ARB_NAME_MAX] = '\0';
    if (name && *name)
        snprintf (self->name, sizeof (self->name), "%s", name);
    else {
        //  keep room for ".pid" inside the name limit
        snprintf (self->name, sizeof (self->name), "%.*s.%d", ARB_NAME_MAX - 12, self->host,
                  (int) getpid ());
    }
    self->slot_count = 1;
    self->mode = ARB_WORKER_LIGHT;
    self->grace_ms = ARB_WORKER_GRACE_MS;
    self->drain_ms = ARB_WORKER_DRAIN_MS;
    self->max_payload = ARB_PAYLOAD_DEFAULT_MAX;
    self->log_level = LOG_INFO;
    self->wake_fd = wake_fd;
    atomic_init (&self->stop_requests, 0);
    return self;
}

void
arb_worker_destroy (arb_worker_t **self_p)
{
    assert (self_p);
    arb_worker_t *self = *self_p;
    if (!self)
        return;
    free (self->endpoint);
    arb_curve_destroy (&self->curve);
    free (self->handlers);
    for (size_t i = 0; i < self->queue_count; i++)
        free (self->queues[i]);
    close (self->wake_fd);
    free (self);
    *self_p = NULL;
}

int
arb_worker_handle (arb_worker_t *self, const char *task_name, arb_handler_fn *fn, void *arg)
{
    assert (self && task_name && fn);
    if (!*task_name || strlen (task_name) > ARB_NAME_MAX)
        return -1;
    arb_worker_handler_t *handler;
    if (streq (task_name, "*"))
        handler = self->fallback.fn ? NULL : &self->fallback;
    else {
        for (size_t i = 0; i < self->handler_count; i++)
            if (streq (self->handlers[i].name, task_name))
                return -1;
        if (self->handler_count == ARB_HANDLES_MAX)
            return -1;
        self->handlers = (arb_worker_handler_t *) realloc (
            self->handlers, (self->handler_count + 1) * sizeof (arb_worker_handler_t));
        assert (self->handlers);
        handler = &self->handlers[self->handler_count++];
    }
    if (!handler)
        return -1;
    snprintf (handler->name, sizeof (handler->name), "%s", task_name);
    handler->fn = fn;
    handler->arg = arg;
    return 0;
}

int
arb_worker_listen (arb_worker_t *self, const char *queue)
{
    assert (self);
    if (!queue || !*queue || strlen (queue) > ARB_NAME_MAX
        || self->queue_count == ARB_WORKER_QUEUES_MAX)
        return -1;
    for (size_t i = 0; i < self->queue_count; i++)
        if (streq (self->queues[i], queue))
            return 0;
    self->queues[self->queue_count++] = strdup (queue);
    return 0;
}

void
arb_worker_set_slots (arb_worker_t *self, int slots, arb_worker_mode_t mode)
{
    assert (self);
    self->slot_count = slots < 1 ? 1 : slots > ARB_WORKER_SLOTS_MAX ? ARB_WORKER_SLOTS_MAX : slots;
    self->mode = mode == ARB_WORKER_HEAVY ? ARB_WORKER_HEAVY : ARB_WORKER_LIGHT;
}

void
arb_worker_set_grace (arb_worker_t *self, int grace_ms)
{
    assert (self);
    self->grace_ms = grace_ms < 0 ? 0 : grace_ms;
}

void
arb_worker_set_drain (arb_worker_t *self, int drain_ms)
{
    assert (self);
    self->drain_ms = drain_ms < 0 ? 0 : drain_ms;
}

void
arb_worker_set_connect_timeout (arb_worker_t *self, int timeout_ms)
{
    assert (self);
    self->connect_timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
}

void
arb_worker_set_curve (arb_worker_t *self, const arb_curve_t *curve)
{
    assert (self && curve);
    arb_curve_destroy (&self->curve);
    self->curve = arb_curve_dup (curve);
}

void
arb_worker_set_max_payload (arb_worker_t *self, size_t max_payload)
{
    assert (self);
    self->max_payload = max_payload ? max_payload : ARB_PAYLOAD_DEFAULT_MAX;
}

void
arb_worker_set_log_level (arb_worker_t *self, int level)
{
    assert (self);
    self->log_level = level;
}

void
arb_worker_stop (arb_worker_t *self)
{
    assert (self);
    atomic_fetch_add (&self->stop_requests, 1);
    uint64_t one = 1;
    //  a full counter already wakes the loop, so a failed write is fine
    ssize_t rc = write (self->wake_fd, &one, sizeof (one));
    (void) rc;
}

//  ---------------------------------------------------------------------
//  What a loop turn sends.

static uint32_t
s_next_reqid (arb_worker_t *self)
{
    if (++self->reqid == 0)
        self->reqid = 1;  //  0 is for messages nobody asked for
    return self->reqid;
}

static void
s_send (arb_worker_t *self, arb_msg_t **msg_p)
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

static void
s_credit (arb_worker_t *self, int credit, bool with_queues, bool cancel)
{
    arb_msg_t *msg = arb_msg_new (ARB_MSG_CREDIT, s_next_reqid (self));
    arb_credit_body_t *body = arb_msg_credit (msg);
    body->sub = 0;
    body->credit = credit;
    body->cancel = cancel;
    if (with_queues) {
        //  the first CREDIT of a session names the queues; later ones add credit only
        body->queues.v = (const char **) self->queues;
        body->queues.n = self->queue_count;
    }
    s_send (self, &msg);
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
static void
s_flush (arb_worker_t *self)
{
    for (size_t i = 0; i < self->out_emit_count; i++)
        s_send (self, &self->out_emits[i]);
    self->out_emit_count = 0;
    arb_msg_t *msg;
    while (self->session == ARB_WORKER_SESSION_READY && arb_leases_has_results (self->results)
           && (msg = arb_leases_results (self->results, s_next_reqid (self), arb_worker_now ())))
        s_send (self, &msg);
    if (self->credit_owed > 0 && s_room_for_results (self)) {
        s_credit (self, self->credit_owed, false, false);
        self->credit_owed = 0;
    }
}

//  Drops what the turn would have sent: a new session begins, and the
//  broker no longer knows the leases these belong to (the results stay
//  kept, to be claimed).
static void
s_discard (arb_worker_t *self)
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

static bool s_was_silent (arb_worker_t *self);

static int
s_connect (arb_worker_t *self)
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
    s_discard (self);
    //  without a new socket (out of descriptors), the old one still works
    if (new_socket)
        s_connect (self);
    arb_msg_t *msg = arb_msg_new (ARB_MSG_REGISTER, s_next_reqid (self));
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
    body->acks = true;  //  results stay kept until RESULT_OK
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
    s_send (self, &msg);
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
    self->register_wait_ms = ARB_WORKER_REGISTER_FIRST;
    self->unanswered_since = 0;
    self->welcomed = true;
    self->heartbeat_at = arb_worker_now () + self->heartbeat_ms;
    self->last_tx = arb_worker_now ();  //  the REGISTER just answered
    ARB_WORKER_INFO (
        self, "worker: registered endpoint=%s name=%s slots=%d epoch=%" PRIu64 " taken_back=%zu",
        self->endpoint, self->name, self->slot_count, body->epoch, body->adopted.n);
    if (self->phase == ARB_WORKER_PHASE_RUN)
        s_credit (self, self->free_count, true, false);
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
    if (body->code == ARB_ERR_FORBIDDEN && reqid == self->register_reqid) {
        //  its certificate is not a worker's: asking again changes nothing
        ARB_WORKER_ERROR (self, "worker: the broker refused to register this worker: %s",
                          body->reason);
        self->gave_up = true;
        self->phase = ARB_WORKER_PHASE_DONE;
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
            break;  //  its arrival is what counts
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
static void
s_recv_broker (arb_worker_t *self)
{
    //  the broker sends nothing over its own limit, whatever ours says
    size_t max =
        self->broker_max_payload > self->max_payload ? self->broker_max_payload : self->max_payload;
    arb_limits_t limits = {.max_frame = max};
    for (int i = 0; i < S_RECV_BURST; i++) {
        arb_msg_t *msg = NULL;
        int rc = self->dial ? arb_dial_recv (self->dial, &limits, &msg)
                            : arb_msg_recv (zsock_resolve (self->dealer), &limits, &msg);
        if (rc == -1)
            break;
        if (s_was_silent (self)) {
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

//  ---------------------------------------------------------------------
//  Stopping.

static void
s_begin_drain (arb_worker_t *self)
{
    ARB_WORKER_INFO (self, "worker: stopping busy=%d drain_ms=%d", self->busy, self->drain_ms);
    self->phase = ARB_WORKER_PHASE_DRAIN;
    self->phase_deadline = arb_worker_now () + self->drain_ms;
    self->credit_owed = 0;
    if (self->session == ARB_WORKER_SESSION_READY)
        s_credit (self, 0, false, true);
}

//  Stops every running task: SIGTERM (then SIGKILL after the grace) when the
//  drain time is over, SIGKILL at once on a second request.
static void
s_begin_force (arb_worker_t *self, int sig)
{
    if (self->phase != ARB_WORKER_PHASE_FORCE) {
        ARB_WORKER_WARNING (self, "worker: stopping running tasks busy=%d", self->busy);
        self->phase = ARB_WORKER_PHASE_FORCE;
        self->phase_deadline = arb_worker_now () + self->grace_ms + S_FORCE_SLACK_MS;
    }
    for (int i = 0; i < self->slot_count; i++)
        if (self->slots[i].busy)
            arb_worker_slot_stop (self, &self->slots[i], sig);
}

static void
s_check_stop (arb_worker_t *self)
{
    if (zsys_interrupted) {
        //  reset, so that a second signal can be told from the first
        zsys_interrupted = 0;
        self->signals++;
    }
    int requests = self->signals + atomic_load (&self->stop_requests);
    if (requests >= 1 && self->phase == ARB_WORKER_PHASE_RUN)
        s_begin_drain (self);
    if (requests >= 2 && self->force_sig != SIGKILL) {
        self->force_sig = SIGKILL;
        s_begin_force (self, SIGKILL);
    }
    if (self->phase == ARB_WORKER_PHASE_RUN || self->phase == ARB_WORKER_PHASE_DONE)
        return;
    //  done once nothing runs and the broker has acknowledged every
    //  result (while it answers at all)
    bool acked = arb_leases_size (self->results) == 0 || self->session != ARB_WORKER_SESSION_READY;
    if (self->busy == 0 && acked)
        self->phase = ARB_WORKER_PHASE_DONE;
    else if (arb_worker_now () < self->phase_deadline)
        return;
    else if (self->busy == 0)
        self->phase = ARB_WORKER_PHASE_DONE;  //  the broker has the results, or runs them again
    else if (self->phase == ARB_WORKER_PHASE_DRAIN) {
        self->force_sig = SIGTERM;
        s_begin_force (self, SIGTERM);
    }
    else {
        ARB_WORKER_ERROR (self, "worker: handlers ignore the stop, leaving them busy=%d",
                          self->busy);
        self->abandoned = true;
        self->phase = ARB_WORKER_PHASE_DONE;
    }
}

//  ---------------------------------------------------------------------
//  The loop.

//  A stopping worker whose REGISTER goes unanswered stops waiting for the
//  broker's answer about its orphans: they finish, or are freed if they
//  have, without a report (the broker will run them again).
static void
s_give_up_orphans (arb_worker_t *self)
{
    for (int i = 0; i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (slot->held || slot->unstarted)  //  finished, or never to start: frees the slot
            arb_worker_slot_stop (self, slot, SIGTERM);
        else if (slot->orphan) {
            slot->orphan = false;
            slot->quiet = true;
        }
    }
}

//  Why the broker does not answer, if the connection can tell.
static const char *
s_refused (arb_worker_t *self)
{
    return self->dial ? arb_dial_failure (self->dial)
                      : arb_handshake_failure (self->handshake, self->run_curve != NULL);
}

//  A broker that does not answer: said, every few seconds while it lasts,
//  and the end of the run if it never answered within the connect timeout.
static void
s_unreachable (arb_worker_t *self, int64_t now)
{
    int64_t waited = now - self->unanswered_since;
    if (!self->welcomed && self->connect_timeout_ms && waited >= self->connect_timeout_ms) {
        const char *refused = s_refused (self);
        ARB_WORKER_ERROR (
            self,
            "worker: cannot reach the broker endpoint=%s, giving up connect_timeout_ms=%d%s%s%s",
            self->endpoint, self->connect_timeout_ms, refused ? " handshake=\"" : "",
            refused ? refused : "", refused ? "\"" : "");
        self->gave_up = true;
        self->phase = ARB_WORKER_PHASE_DONE;
    }
    else if (now >= self->unreachable_log_at) {
        const char *refused = s_refused (self);
        ARB_WORKER_WARNING (self,
                            "worker: cannot reach the broker endpoint=%s waited_ms=%" PRId64
                            " (still trying)%s%s%s",
                            self->endpoint, waited, refused ? " handshake=\"" : "",
                            refused ? refused : "", refused ? "\"" : "");
        self->unreachable_log_at = now + ARB_WORKER_UNREACHABLE_LOG;
    }
}

static void
s_timers (arb_worker_t *self)
{
    int64_t now = arb_worker_now ();
    if (self->session == ARB_WORKER_SESSION_REGISTERING && self->unanswered_since)
        s_unreachable (self, now);
    if (self->phase == ARB_WORKER_PHASE_DONE)
        return;
    if (self->session == ARB_WORKER_SESSION_READY && now >= self->last_rx + self->liveness_ms) {
        ARB_WORKER_WARNING (self, "worker: broker silent for %u ms, registering again",
                            self->liveness_ms);
        arb_worker_register (self, true);
    }
    else if (self->session == ARB_WORKER_SESSION_READY && now >= self->heartbeat_at) {
        //  every task it holds: running, or its result not acknowledged
        //  (the broker checks its leases against it)
        arb_msg_t *msg = arb_msg_new (ARB_MSG_HEARTBEAT, s_next_reqid (self));
        arb_msg_heartbeat (msg)->busy =
            (uint32_t) (self->busy + (int) arb_leases_size (self->results));
        s_send (self, &msg);
        self->heartbeat_at = now + self->heartbeat_ms;
    }
    else if (self->session == ARB_WORKER_SESSION_REGISTERING && now >= self->register_retry_at) {
        if (self->phase != ARB_WORKER_PHASE_RUN)
            s_give_up_orphans (self);
        self->register_wait_ms *= 2;
        if (self->register_wait_ms > ARB_WORKER_REGISTER_MAX)
            self->register_wait_ms = ARB_WORKER_REGISTER_MAX;
        ARB_WORKER_DEBUG (self, "worker: no welcome yet, registering again");
        arb_worker_register (self, true);
    }
    //  results whose RESULT, or its answer, went missing go again
    if (self->session == ARB_WORKER_SESSION_READY)
        arb_leases_resend (self->results, now, self->liveness_ms);
    for (int i = 0; self->mode == ARB_WORKER_HEAVY && i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (!slot->busy || slot->pid <= 0)
            continue;
        if (slot->kill_at && now >= slot->kill_at)
            arb_worker_heavy_kill (self, slot, SIGKILL);
        if (slot->pidfd < 0 && arb_worker_heavy_exited (slot))
            arb_worker_heavy_reap (self, slot);
    }
}

//  Milliseconds until the next timer is due.
static long
s_timeout (arb_worker_t *self)
{
    int64_t now = arb_worker_now ();
    int64_t next = now + 3600 * 1000;
    if (self->session == ARB_WORKER_SESSION_READY) {
        next = self->heartbeat_at < next ? self->heartbeat_at : next;
        int64_t dead_at = self->last_rx + self->liveness_ms;
        next = dead_at < next ? dead_at : next;
        int64_t resend_at = arb_leases_resend_at (self->results, self->liveness_ms);
        next = resend_at < next ? resend_at : next;
    }
    else {
        next = self->register_retry_at < next ? self->register_retry_at : next;
        next = self->unreachable_log_at < next ? self->unreachable_log_at : next;
        int64_t give_up_at = self->unanswered_since + self->connect_timeout_ms;
        if (self->connect_timeout_ms && !self->welcomed && give_up_at < next)
            next = give_up_at;
    }
    if (self->phase != ARB_WORKER_PHASE_RUN && self->phase_deadline < next)
        next = self->phase_deadline;
    for (int i = 0; self->mode == ARB_WORKER_HEAVY && i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (slot->busy && slot->kill_at && slot->kill_at < next)
            next = slot->kill_at;
        if (slot->busy && slot->pid > 0 && slot->pidfd < 0 && now + S_REAP_POLL_MS < next)
            next = now + S_REAP_POLL_MS;
    }
    int dial_wait = self->dial ? arb_dial_timeout (self->dial) : -1;
    if (dial_wait >= 0 && now + dial_wait < next)
        next = now + dial_wait;  //  a message left after a burst, a connection due
    return next > now ? (long) (next - now) : 0;
}

//  How long the worker may go without sending before the broker may
//  have given it up. The broker's clock runs from the last message it
//  read from us, which is later than our last send, by up to a heartbeat
//  before a stop: counting from our own last turn would let a worker
//  stopped for a little less than the window start DISPATCHes whose
//  tasks the broker has already handed to others. The margin covers the
//  heartbeat that a worker back from a stop sends in that same turn.
static int64_t
s_send_window (arb_worker_t *self)
{
    uint32_t margin = self->liveness_ms / 5;
    uint32_t spare = (self->liveness_ms - self->heartbeat_ms) / 2;
    return (int64_t) self->liveness_ms - (margin < spare ? margin : spare);
}

//  Whether the worker was silent past the liveness window by its own
//  clock: nothing came from the broker for that long, the worker did not
//  run for that long (stopped: SIGSTOP; a turn never sleeps longer than a
//  heartbeat while in a session), or it sent nothing for nearly that
//  long (s_send_window). The broker has given it up, or may have, and
//  what waits in its socket was sent to that session: the tasks it
//  dispatched are given to others, or back as lost leases.
static bool
s_was_silent (arb_worker_t *self)
{
    int64_t now = arb_worker_now ();
    return self->session == ARB_WORKER_SESSION_READY && self->phase != ARB_WORKER_PHASE_DONE
           && (now - self->last_rx >= self->liveness_ms
               || (self->turn_at && now - self->turn_at >= self->liveness_ms)
               || now - self->last_tx >= s_send_window (self));
}

//  Hands the light jobs placed this turn to the pool. One placed before a
//  new session began (silence found later in the same turn) is claimed in
//  its REGISTER and waits for the answer (s_on_adopted). A thread must
//  start a job before the send window, counted from the last send as the
//  broker counts, is over: a stop between the DISPATCH and the thread
//  makes it late (s_slot_unstarted, arb_worker_slots.c).
static void
s_launch (arb_worker_t *self)
{
    size_t count = 0;
    for (size_t i = 0; i < self->launch_count; i++) {
        arb_worker_slot_t *slot = (arb_worker_slot_t *) self->launch[i];
        if (slot->orphan) {
            slot->unstarted = true;
            continue;
        }
        slot->adopted = false;
        self->launch[count++] = slot;
    }
    self->launch_count = 0;
    arb_pool_push (self->pool, self->launch, count, self->last_tx + s_send_window (self));
}

static void
s_add_item (arb_worker_t *self, int *n, void *socket, int fd, arb_worker_slot_t *slot)
{
    self->items[*n] = (zmq_pollitem_t){socket, fd, ZMQ_POLLIN, 0};
    self->item_slot[*n] = slot;
    (*n)++;
}

//  Before the first WELCOME, a broker that refused our handshake (one
//  that trying again will not mend) ends the run, as a 403 to REGISTER
//  does: waiting out the connect timeout, or for ever, would change
//  nothing. Once registered, the worker never gives up: it logs why with
//  its "cannot reach the broker".
static void
s_check_refused (arb_worker_t *self, const char *refusal)
{
    if (!refusal || self->welcomed || self->phase == ARB_WORKER_PHASE_DONE)
        return;
    ARB_WORKER_ERROR (
        self, "worker: the broker refused the connection, giving up endpoint=%s handshake=\"%s\"",
        self->endpoint, refusal);
    self->gave_up = true;
    self->phase = ARB_WORKER_PHASE_DONE;
}

static void
s_turn (arb_worker_t *self)
{
    int n = 0;
    if (self->dial) {
        arb_dial_flush (self->dial);  //  the turn's messages, in one write
        s_add_item (self, &n, NULL, arb_dial_fd (self->dial), NULL);
    }
    else
        s_add_item (self, &n, zsock_resolve (self->dealer), -1, NULL);
    s_add_item (self, &n, NULL, self->wake_fd, NULL);
    int notes_at = -1;
    if (self->mode == ARB_WORKER_LIGHT) {
        notes_at = n;
        s_add_item (self, &n, NULL, arb_pool_notify_fd (self->pool), NULL);
    }
    //  the dealer's handshake events, read only when they come and only
    //  until the first WELCOME (s_check_refused): a registered worker's
    //  turns poll nothing more, and its "cannot reach" log reads them
    int events_at = -1;
    zsock_t *events = self->dial || self->welcomed ? NULL : arb_handshake_events (self->handshake);
    if (events) {
        events_at = n;
        s_add_item (self, &n, zsock_resolve (events), -1, NULL);
    }
    int fixed = n;
    for (int i = 0; self->mode == ARB_WORKER_HEAVY && i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (slot->busy && slot->report_fd >= 0)
            s_add_item (self, &n, NULL, slot->report_fd, slot);
        if (slot->busy && slot->pidfd >= 0)
            s_add_item (self, &n, NULL, slot->pidfd, slot);
    }
    int rc = zmq_poll (self->items, n, s_timeout (self));
    //  Before anything received meanwhile runs: a worker back from a
    //  silence past the liveness window registers again on a new socket,
    //  and what waited in the old one goes with it.
    if (s_was_silent (self)) {
        ARB_WORKER_WARNING (self, "worker: silent for %" PRId64 " ms, registering again",
                            arb_worker_now ()
                                - (self->last_rx > self->turn_at ? self->turn_at : self->last_rx));
        arb_worker_register (self, true);
        rc = 0;
    }
    //  our own connection may hold a message left after a burst, or have
    //  a connection attempt due, which its descriptor does not show
    bool broker = (rc > 0 && (self->items[0].revents & ZMQ_POLLIN))
                  || (rc >= 0 && self->dial && arb_dial_timeout (self->dial) == 0);
    if (broker)
        s_recv_broker (self);
    if (broker && self->dial)
        s_check_refused (self, arb_dial_refusal (self->dial));
    if (rc > 0 || broker) {
        if (self->items[1].revents & ZMQ_POLLIN) {
            uint64_t count;
            ssize_t got = read (self->wake_fd, &count, sizeof (count));
            (void) got;  //  the requests themselves are counted in stop_requests
        }
        if (notes_at >= 0 && (self->items[notes_at].revents & ZMQ_POLLIN))
            arb_worker_recv_notes (self);
        //  the socket polled is the one still watched: arb_worker_register above
        //  makes a new watcher only with a new dealer, after a silence
        if (events_at >= 0 && rc > 0 && (self->items[events_at].revents & ZMQ_POLLIN))
            s_check_refused (self,
                             arb_handshake_refusal (self->handshake, self->run_curve != NULL));
        s_launch (self);
        for (int i = fixed; i < n; i++) {
            arb_worker_slot_t *slot = self->item_slot[i];
            if (!(self->items[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) || !slot->busy)
                continue;
            if (self->items[i].fd == slot->report_fd)
                arb_worker_heavy_read (self, slot);
            else if (self->items[i].fd == slot->pidfd)
                arb_worker_heavy_reap (self, slot);
        }
    }
    s_timers (self);
    s_check_stop (self);
    s_flush (self);
    self->turn_at = arb_worker_now ();
}

//  ---------------------------------------------------------------------
//  Run.

static void s_run_teardown (arb_worker_t *self);

static int
s_run_setup (arb_worker_t *self)
{
    int count = self->slot_count;
    self->slots = (arb_worker_slot_t *) zmalloc (count * sizeof (arb_worker_slot_t));
    self->free = (int *) zmalloc (count * sizeof (int));
    self->items =
        (zmq_pollitem_t *) zmalloc ((S_FIXED_ITEMS + 2 * count) * sizeof (zmq_pollitem_t));
    self->item_slot =
        (arb_worker_slot_t **) zmalloc ((S_FIXED_ITEMS + 2 * count) * sizeof (arb_worker_slot_t *));
    self->phase = ARB_WORKER_PHASE_RUN;
    self->force_sig = 0;
    self->abandoned = false;
    self->busy = 0;
    self->signals = 0;
    self->register_wait_ms = ARB_WORKER_REGISTER_FIRST;
    self->session = ARB_WORKER_SESSION_REGISTERING;
    self->unanswered_since = 0;
    self->welcomed = false;
    self->gave_up = false;
    self->broker_max_payload = 0;
    self->free_count = 0;
    self->turn_at = 0;
    self->results = arb_leases_new ();
    if (self->curve)
        self->run_curve = arb_curve_dup (self->curve);
    else {
        char why[512];
        self->run_curve = arb_curve_resolve (NULL, NULL, why, sizeof (why));
        if (!self->run_curve && *why) {
            ARB_WORKER_ERROR (self, "worker: %s", why);
            return -1;
        }
    }
    for (int i = count - 1; i >= 0; i--) {
        arb_worker_slot_t *slot = &self->slots[i];
        slot->index = i;
        slot->job = arb_job_new_idle ();
        arb_job_set_max_payload (slot->job, self->max_payload);
        slot->report_fd = -1;
        slot->pidfd = -1;
        self->free[self->free_count++] = i;
    }
    if (s_connect (self) != 0)
        return -1;
    if (self->mode == ARB_WORKER_LIGHT) {
        self->launch = (void **) zmalloc (count * sizeof (void *));
        self->pool = arb_pool_new (count, arb_worker_pool_run, self);
        if (!arb_pool_is_ready (self->pool)) {
            ARB_WORKER_ERROR (self, "worker: cannot start slot threads slots=%d", count);
            return -1;
        }
        for (int i = 0; i < count; i++) {
            self->slots[i].pool = self->pool;
            arb_job_set_flush (self->slots[i].job, arb_worker_slot_flush, &self->slots[i]);
        }
    }
    return 0;
}

static void
s_run_teardown (arb_worker_t *self)
{
    s_discard (self);
    arb_leases_destroy (&self->results);
    free (self->out_emits);
    self->out_emits = NULL;
    self->out_emit_cap = 0;
    arb_pool_destroy (&self->pool, self->abandoned);
    free (self->notes);  //  every note taken was handled; the pool freed the rest
    self->notes = NULL;
    self->note_cap = 0;
    free (self->launch);
    self->launch = NULL;
    for (int i = 0; self->slots && i < self->slot_count; i++) {
        arb_worker_slot_t *slot = &self->slots[i];
        if (slot->busy && self->abandoned)
            continue;  //  its thread or child still runs; let it have its memory
        if (slot->report_fd >= 0)
            close (slot->report_fd);
        if (slot->pidfd >= 0)
            close (slot->pidfd);
        arb_worker_batch_release (&slot->batch);
        arb_job_destroy (&slot->job);
    }
    if (!self->abandoned)
        free (self->slots);
    self->slots = NULL;
    free (self->free);
    free (self->items);
    free (self->item_slot);
    self->free = NULL;
    self->items = NULL;
    self->item_slot = NULL;
    arb_handshake_destroy (&self->handshake);
    zsock_destroy (&self->dealer);
    //  the last RESULT and the BYE get a moment to leave
    arb_dial_destroy (&self->dial, S_DIAL_LINGER_MS);
    arb_curve_destroy (&self->run_curve);
}

int
arb_worker_run (arb_worker_t *self)
{
    assert (self);
    if (self->handler_count == 0 && !self->fallback.fn) {
        ARB_WORKER_ERROR (self, "worker: no handler registered");
        return -1;
    }
    if (self->queue_count == 0)
        arb_worker_listen (self, "default");
    if (s_run_setup (self) != 0) {
        s_run_teardown (self);
        return -1;
    }
    arb_worker_register (self, false);
    while (self->phase != ARB_WORKER_PHASE_DONE)
        s_turn (self);
    bool gave_up = self->gave_up;
    if (!gave_up) {
        s_flush (self);
        arb_msg_t *bye = arb_msg_new (ARB_MSG_BYE, s_next_reqid (self));
        s_send (self, &bye);
        ARB_WORKER_INFO (self, "worker: stopped name=%s", self->name);
    }
    s_run_teardown (self);
    //  a later run starts afresh
    atomic_store (&self->stop_requests, 0);
    return gave_up ? -1 : 0;
}
