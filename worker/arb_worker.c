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

    Files. This one holds the configuration, the loop and its timers,
    stopping and run; arb_worker_session.c the session with the broker
    (what a turn sends, what the broker's messages do); arb_worker_slots.c
    the slots (light threads, heavy children). They share
    arb_worker_priv.h.
*/

#include "arb_worker_priv.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <unistd.h>

#define S_REAP_POLL_MS   100   //  heavy children without a pidfd are checked this often
#define S_FORCE_SLACK_MS 1000  //  forced stop: extra wait for cancelled light handlers
#define S_DIAL_LINGER_MS 200   //  ms the last messages have to leave at the end of a run
#define S_FIXED_ITEMS    4  //  poll items before the slots': broker, wake, notes, handshake events

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
    //  a name the broker would refuse (400 to every REGISTER) is refused here
    if (name && *name && !arb_name_is_valid (name, strlen (name)))
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
    if (!arb_name_is_valid (task_name, strlen (task_name)))
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
    if (!queue || !arb_name_is_valid (queue, strlen (queue))
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
//  Stopping.

static void
s_begin_drain (arb_worker_t *self)
{
    ARB_WORKER_INFO (self, "worker: stopping busy=%d drain_ms=%d", self->busy, self->drain_ms);
    self->phase = ARB_WORKER_PHASE_DRAIN;
    self->phase_deadline = arb_worker_now () + self->drain_ms;
    self->credit_owed = 0;
    if (self->session == ARB_WORKER_SESSION_READY)
        arb_worker_credit (self, 0, false, true);
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

void
arb_worker_shut_out (arb_worker_t *self)
{
    if (self->gave_up)
        return;
    self->gave_up = true;
    self->credit_owed = 0;
    self->force_sig = SIGKILL;
    s_begin_force (self, SIGKILL);
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
    //  (a worker shut out waits for no answer: the broker takes nothing more)
    bool acked = arb_leases_size (self->results) == 0 || self->session != ARB_WORKER_SESSION_READY
                 || self->gave_up;
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
        arb_msg_t *msg = arb_msg_new (ARB_MSG_HEARTBEAT, arb_worker_next_reqid (self));
        arb_msg_heartbeat (msg)->busy =
            (uint32_t) (self->busy + (int) arb_leases_size (self->results));
        arb_msg_heartbeat (msg)->mark = self->mark;
        arb_worker_send (self, &msg);
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
bool
arb_worker_was_silent (arb_worker_t *self)
{
    int64_t now = arb_worker_now ();
    return self->session == ARB_WORKER_SESSION_READY && self->phase != ARB_WORKER_PHASE_DONE
           && (now - self->last_rx >= self->liveness_ms
               || (self->turn_at && now - self->turn_at >= self->liveness_ms)
               || now - self->last_tx >= s_send_window (self));
}

//  Hands the light jobs placed this turn to the pool. One placed before a
//  new session began (silence found later in the same turn) is claimed in
//  its REGISTER and waits for the answer (s_on_adopted, arb_worker_session.c). A thread must
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
    //  by the send window from the last send, and from this turn's start:
    //  a stop in the middle of this turn, after its DISPATCHes were read,
    //  followed by a send (which moves last_tx) must still make them late,
    //  for the broker gave them to others meanwhile (the turn's next
    //  silence check claims them: s_slot_unstarted)
    int64_t window = s_send_window (self);
    int64_t start_by = self->last_tx + window;
    if (self->turn_at && self->turn_at + window < start_by)
        start_by = self->turn_at + window;
    if (self->last_rx + (int64_t) self->liveness_ms < start_by)
        start_by = self->last_rx + (int64_t) self->liveness_ms;
    arb_pool_push (self->pool, self->launch, count, start_by);
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
    if (arb_worker_was_silent (self)) {
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
        arb_worker_recv_broker (self);
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
    arb_worker_flush (self);
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
    if (arb_worker_connect (self) != 0)
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
    arb_worker_discard (self);
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

//  A stop that could not wait for the broker's every acknowledgement (its
//  window passed, the broker went silent, or shut the worker out) says so:
//  those tasks are run again unless their results reached the broker.
static void
s_say_unacked (arb_worker_t *self)
{
    //  results not acknowledged, and tasks a forced stop left unreported
    size_t left = arb_leases_size (self->results) + (size_t) (self->busy > 0 ? self->busy : 0);
    if (left > 0)
        ARB_WORKER_WARNING (self,
                            "worker: leaving tasks whose end the broker has not acknowledged "
                            "tasks=%zu: it runs each again unless its result reached it",
                            left);
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
    s_say_unacked (self);
    bool gave_up = self->gave_up;
    if (!gave_up) {
        arb_worker_flush (self);
        arb_msg_t *bye = arb_msg_new (ARB_MSG_BYE, arb_worker_next_reqid (self));
        arb_worker_send (self, &bye);
        ARB_WORKER_INFO (self, "worker: stopped name=%s", self->name);
    }
    s_run_teardown (self);
    //  a later run starts afresh
    atomic_store (&self->stop_requests, 0);
    return gave_up ? -1 : 0;
}
