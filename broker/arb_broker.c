/*  arb_broker.c — the broker's loop; see arb_broker.h for the design. */

#include "arb_broker_priv.h"


#define ARB_TURN_MESSAGES  2000  //  messages read per turn at most
#define ARB_TURN_BUDGET_MS 50    //  and for at most this long
#define ARB_SWEEP_BATCH    500   //  final tasks removed per retention sweep
#define ARB_SWEEP_EVERY_MS 1000

void
arb_broker_config_defaults (arb_broker_config_t *config)
{
    *config = (arb_broker_config_t){
        .endpoint = "tcp://127.0.0.1:7700",
        .db_path = "./var/arbiter.db",
        .sync = ARB_SYNC_FULL,
        .max_payload = ARB_PAYLOAD_DEFAULT_MAX,
        .heartbeat_ms = 1000,
        .liveness_ms = 5000,
        .aging_ms = 0,
        .cache_bytes = 256u << 20,
        .max_lost = 3,
        .retention_ms = ARB_DAY_MS,
        .dead_retention_ms = 7 * ARB_DAY_MS,
        .recovery_ms = ARB_RECOVERY_AUTO,
    };
}

//  ---------------------------------------------------------------------
//  Start-up: the journal is the truth; memory is rebuilt from it.

typedef struct {
    arb_broker_t *self;
    size_t count;
} s_load_t;

static int
s_load_task (void *arg, arb_task_t *row, const char *queue, const char *name)
{
    s_load_t *load = (s_load_t *) arg;
    arb_broker_t *self = load->self;
    arb_task_t *task = arb_sched_task_from_row (self->sched, row, queue, name);
    arb_sched_add (self->sched, task, self->clock.now_ms, self->clock.mono_ms);
    load->count++;
    return 0;
}

static void
s_load_count (void *arg, const char *queue, int state, uint64_t count)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    if (state > 0 && state <= ARB_STATE_MAX)
        arb_queue_counts (arb_sched_queue (self->sched, queue))[state] += count;
}

//  Settings are stored as text: "paused=0 max_running=3 rate=50 retention_ms=0"
//  under "queue.<name>", "max_running=3 rate=50" under "limit.<task name>".
static void
s_load_settings (void *arg, const char *key, const void *data, size_t size)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    char text[256];
    size = size < sizeof (text) - 1 ? size : sizeof (text) - 1;
    memcpy (text, data, size);
    text[size] = 0;
    unsigned paused = 0, max_running = 0, rate = 0;
    unsigned long long retention = 0;
    if (strncmp (key, "queue.", 6) == 0) {
        arb_queue_t *queue = arb_sched_queue (self->sched, key + 6);
        int on_failure = 0;
        sscanf (text, "paused=%u max_running=%u rate=%u retention_ms=%llu on_failure=%d", &paused,
                &max_running, &rate, &retention, &on_failure);
        arb_queue_settings (queue)->on_failure = on_failure;
        arb_queue_settings (queue)->paused = paused != 0;
        arb_queue_settings (queue)->retention_ms = retention;
        arb_queue_limit (queue)->max_running = max_running;
        arb_queue_limit (queue)->rate_per_sec = rate;
    }
    else if (strncmp (key, "limit.", 6) == 0) {
        sscanf (text, "max_running=%u rate=%u", &max_running, &rate);
        arb_limit_t *limit = arb_sched_name_limit (self->sched, key + 6);
        limit->max_running = max_running;
        limit->rate_per_sec = rate;
        arb_sched_touch_name (self->sched, key + 6);
    }
}

static int
s_rebuild (arb_broker_t *self)
{
    if (arb_journal_next_epoch (self->journal, &self->epoch)
        || arb_journal_max_id (self->journal, &self->next_id))
        return -1;
    arb_sched_config_t config = {
        .aging_ms = self->config.aging_ms,
        .liveness_ms = self->config.liveness_ms,
        .cache_bytes = self->config.cache_bytes,
        .epoch = self->epoch,
    };
    arb_sched_hooks_t hooks = {
        .dispatch = arb_broker_dispatch_hook,
        .expired = arb_broker_expired_hook,
        .arg = self,
    };
    self->sched = arb_sched_new (&config, &hooks);
    s_load_t load = {self, 0};
    if (arb_journal_meta_list (self->journal, "queue.", s_load_settings, self)
        || arb_journal_meta_list (self->journal, "limit.", s_load_settings, self)
        || arb_journal_load_open (self->journal, s_load_task, &load)
        || arb_journal_count_final (self->journal, s_load_count, self))
        return -1;
    arb_broker_resume_waiting (self);
    if (self->fatal || arb_journal_commit (self->journal))
        return -1;
    zsys_info ("broker: journal loaded path=%s epoch=%" PRIu64 " open_tasks=%zu next_id=%" PRIu64,
               self->config.db_path, self->epoch, load.count, self->next_id + 1);
    return 0;
}

//  Dispatch writes nothing (no per-task write on the hot path), so the tasks
//  that were running when the broker stopped are ready again, while their
//  workers may still be running them. Those learn of the restart from the
//  410 to their next heartbeat (or, after a long silence, retry REGISTER
//  every 2 s at most) and claim them back; until then, from the moment the
//  socket is bound, the queues with ready tasks wait.
static void
s_hold_for_claims (arb_broker_t *self)
{
    uint64_t window = self->config.recovery_ms;
    if (window == ARB_RECOVERY_AUTO)
        window = (uint64_t) self->config.heartbeat_ms + 2500;
    if (window)
        arb_sched_hold_ready (self->sched, (uint64_t) zclock_mono () + window);
}

arb_broker_t *
arb_broker_new (const arb_broker_config_t *config)
{
    arb_broker_t *self = (arb_broker_t *) zmalloc (sizeof (arb_broker_t));
    self->config = *config;
    self->limits.max_frame = config->max_payload;
    self->clock.now_ms = self->started_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    self->rng = self->clock.now_ms ^ ((uint64_t) getpid () << 32) ^ 0x9e3779b97f4a7c15ull;
    self->router = zsock_new (ZMQ_ROUTER);
    self->outbox = arb_outbox_new (self->router, &self->clock);

    self->journal = arb_journal_new (config->db_path, config->sync);
    if (!self->journal || s_rebuild (self)) {
        arb_broker_destroy (&self);
        return NULL;
    }
    zsock_set_router_handover (self->router, 1);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, 1000);
    //  A frame far over the payload limit is cut at the socket; one just
    //  over it gets a clear 413 from the codec.
    zsock_set_maxmsgsize (self->router, (int64_t) config->max_payload * 2 + (1 << 20));
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_sndhwm (self->router, 100000);
    if (zsock_bind (self->router, "%s", config->endpoint) < 0) {
        zsys_error ("broker: cannot bind %s: %s", config->endpoint, zmq_strerror (zmq_errno ()));
        arb_broker_destroy (&self);
        return NULL;
    }
    zsys_info ("broker: listening endpoint=%s sync=%s version=%s", config->endpoint,
               config->sync == ARB_SYNC_FULL ? "full" : "normal", ARB_VERSION);
    s_hold_for_claims (self);
    return self;
}

void
arb_broker_destroy (arb_broker_t **self_p)
{
    assert (self_p);
    arb_broker_t *self = *self_p;
    if (!self)
        return;
    arb_outbox_destroy (&self->outbox);
    arb_vec_free (&self->settle);
    arb_sched_destroy (&self->sched);
    arb_journal_destroy (&self->journal);
    zsock_destroy (&self->router);
    free (self);
    *self_p = NULL;
}

void
arb_broker_fail (arb_broker_t *self, const char *what)
{
    if (!self->fatal)
        zsys_error ("broker: journal failed during %s; stopping (a restart recovers from the "
                    "journal)",
                    what);
    self->fatal = true;
}

uint64_t
arb_broker_random (arb_broker_t *self)
{
    //  xorshift64*: plenty for jitter, and no shared state
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * 0x2545f4914f6cdd1dull;
}

//  ---------------------------------------------------------------------
//  Retention: final tasks leave the journal after their purge time, a
//  small batch per turn, so a sweep never stalls the loop; while a batch
//  comes back full, the next turn sweeps again.

static void
s_purged (void *arg, uint64_t id, const char *queue, int state)
{
    (void) id;
    arb_broker_t *self = (arb_broker_t *) arg;
    arb_queue_t *q = arb_sched_find_queue (self->sched, queue);
    if (q && state > 0 && state <= ARB_STATE_MAX && arb_queue_counts (q)[state])
        arb_queue_counts (q)[state]--;
}

void
arb_broker_forget_idle_queues (arb_broker_t *self)
{
    zhashx_t *queues = arb_sched_queues (self->sched);
    zlistx_t *idle = zlistx_new ();
    for (arb_queue_t *q = (arb_queue_t *) zhashx_first (queues); q;
         q = (arb_queue_t *) zhashx_next (queues))
        if (arb_queue_is_idle (q))
            zlistx_add_end (idle, q);
    for (void *q = zlistx_first (idle); q; q = zlistx_next (idle))
        arb_sched_forget_queue (self->sched, (arb_queue_t *) q);
    zlistx_destroy (&idle);
}

static void
s_sweep (arb_broker_t *self)
{
    if (self->clock.mono_ms < self->next_sweep_ms)
        return;
    int purged = arb_journal_purge (self->journal, self->clock.now_ms, ARB_SWEEP_BATCH,
                                    self->next_id, s_purged, self);
    if (purged < 0) {
        arb_broker_fail (self, "retention sweep");
        return;
    }
    if (purged > 0)
        arb_broker_forget_idle_queues (self);
    self->next_sweep_ms =
        self->clock.mono_ms + (purged == ARB_SWEEP_BATCH ? 0 : ARB_SWEEP_EVERY_MS);
}

//  ---------------------------------------------------------------------
//  The turn

static bool
s_is_worker_verb (arb_msg_type_t type)
{
    return type == ARB_MSG_REGISTER || type == ARB_MSG_CREDIT || type == ARB_MSG_TAKE
           || type == ARB_MSG_RESULT || type == ARB_MSG_EMIT || type == ARB_MSG_HEARTBEAT
           || type == ARB_MSG_BYE;
}

static void
s_handle (arb_broker_t *self, zmsg_t **zmsg_p)
{
    arb_msg_t *msg = NULL;
    int rc = arb_msg_decode (zmsg_p, true, &self->limits, &msg);
    if (rc == -2) {
        if (msg)
            arb_outbox_refuse (self->outbox, msg, arb_msg_decode_code (msg), "%s",
                               arb_msg_decode_error (msg));
        else
            arb_outbox_log_refusal (self->outbox, NULL, "?", "message without a routing id");
    }
    else if (s_is_worker_verb (arb_msg_type (msg)))
        arb_broker_on_worker (self, msg);
    else
        arb_broker_on_client (self, msg);
    arb_msg_destroy (&msg);
}

static void
s_read_messages (arb_broker_t *self)
{
    uint64_t deadline = self->clock.mono_ms + ARB_TURN_BUDGET_MS;
    for (int count = 0; count < ARB_TURN_MESSAGES && !self->fatal; count++) {
        zmsg_t *zmsg = zmsg_recv (self->router);
        if (!zmsg)
            break;  //  nothing more waiting (receive timeout is 0)
        s_handle (self, &zmsg);
        if ((count & 63) == 63 && (uint64_t) zclock_mono () > deadline)
            break;
    }
}

static void
s_turn (arb_broker_t *self)
{
    self->clock.now_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    s_read_messages (self);
    if (!self->fatal)
        arb_broker_fire_timers (self);
    if (!self->fatal)
        arb_broker_check_workers (self);
    if (!self->fatal)
        s_sweep (self);
    if (!self->fatal && arb_journal_commit (self->journal))
        arb_broker_fail (self, "commit");
    if (self->fatal) {
        arb_outbox_abandon (self->outbox);
        return;
    }
    arb_outbox_flush (self->outbox);
    arb_sched_dispatch (self->sched, self->clock.now_ms, self->clock.mono_ms);
    arb_broker_send_dispatches (self);
}

static int
s_poll_timeout (arb_broker_t *self)
{
    //  Work left by the dispatch pass (an expired task ended) goes out
    //  with the next commit, at once.
    if (arb_journal_in_txn (self->journal) || !arb_outbox_is_empty (self->outbox))
        return 0;
    uint64_t mono = (uint64_t) zclock_mono ();
    uint64_t next = arb_sched_next_timer (self->sched);
    if (self->next_liveness_ms < next)
        next = self->next_liveness_ms;
    if (self->next_sweep_ms < next)
        next = self->next_sweep_ms;
    if (next <= mono)
        return 0;
    uint64_t wait = next - mono;
    return wait > 1000 ? 1000 : (int) wait;
}

int
arb_broker_run (arb_broker_t *self)
{
    zmq_pollitem_t item = {zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
    while (!zsys_interrupted && !self->fatal) {
        int rc = zmq_poll (&item, 1, s_poll_timeout (self));
        if (rc < 0 && zmq_errno () != EINTR) {
            zsys_error ("broker: poll failed: %s", zmq_strerror (zmq_errno ()));
            break;
        }
        if (zsys_interrupted)
            break;
        s_turn (self);
    }
    if (self->fatal)
        return -1;
    zsys_info ("broker: stopping");
    return 0;
}
