/*  arb_broker.c — the broker's loop: start-up and the turn; see
    arb_broker.h for the design and docs/broker.md ("Layers") for the
    layers below it.

    The loop owns the socket, the journal, the clock and the layers, and
    does nothing else itself: at start it rebuilds memory from the journal
    (through the lifecycle and the settings); each turn it reads requests
    (handed to the verbs), fires timers, checks worker liveness, sweeps
    expired results, commits, flushes the outbox and dispatches.
*/

#include "arb_broker.h"
#include "arb_auth.h"
#include "arb_service.h"
#include "arb_settings.h"
#include "arb_verbs.h"

#define ARB_TURN_MESSAGES  2000  //  messages read per turn at most
#define ARB_TURN_BUDGET_MS 50    //  and for at most this long
#define ARB_SWEEP_BATCH    500   //  final tasks removed per retention sweep
#define ARB_SWEEP_EVERY_MS 1000

struct _arb_broker_t {
    arb_broker_config_t config;
    arb_limits_t limits;        //  the codec's limits for requests
    zsock_t *router;            //  owned
    arb_auth_t *auth;           //  owned: CURVE and roles (--curve); NULL: every peer is admin
    arb_journal_t *journal;     //  owned
    arb_clock_t clock;          //  the current turn's time, lent to the layers
    arb_outbox_t *outbox;       //  owned: layer 1
    arb_life_t *life;           //  owned: layer 2 (with arb_settings)
    arb_verbs_t verbs;          //  layer 3: what the handlers work with
    uint64_t next_liveness_ms;  //  monotonic: next check of silent workers
    uint64_t next_sweep_ms;     //  monotonic: next retention sweep
    arb_service_t *service;     //  owned: sd_notify (ready, watchdog, stopping)
};

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
        .max_head_failures = 10,
        .retention_ms = ARB_DAY_MS,
        .dead_retention_ms = 7 * ARB_DAY_MS,
        .recovery_ms = ARB_RECOVERY_AUTO,
    };
}

//  ---------------------------------------------------------------------
//  Start-up: the journal is the truth; memory is rebuilt from it.

static int
s_rebuild (arb_broker_t *self)
{
    arb_life_config_t config = {
        .aging_ms = self->config.aging_ms,
        .liveness_ms = self->config.liveness_ms,
        .cache_bytes = self->config.cache_bytes,
        .max_lost = self->config.max_lost,
        .max_head_failures = self->config.max_head_failures,
        .retention_ms = self->config.retention_ms,
        .dead_retention_ms = self->config.dead_retention_ms,
    };
    self->life = arb_life_new (&config, self->journal, self->outbox, &self->clock);
    if (!self->life)
        return -1;
    size_t count = 0, maybe_running = 0, schedules = 0;
    //  the deliveries before the schedules: a task they fire now is new
    if (arb_settings_load (arb_life_sched (self->life), self->journal)
        || arb_life_load (self->life, &count)
        || arb_life_count_stop_deliveries (self->life, &maybe_running)
        || arb_life_load_schedules (self->life, &schedules) || arb_journal_commit (self->journal))
        return -1;
    zsys_info ("broker: journal loaded path=%s epoch=%" PRIu64 " open_tasks=%zu next_id=%" PRIu64
               " schedules=%zu",
               self->config.db_path, arb_life_epoch (self->life), count,
               arb_life_last_id (self->life) + 1, schedules);
    if (maybe_running)
        zsys_notice ("broker: the last run did not stop cleanly; ready tasks count one delivery "
                     "more (any of them may have been running) tasks=%zu",
                     maybe_running);
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
        arb_life_hold_ready (self->life, (uint64_t) zclock_mono () + window);
}

//  Without --curve anyone who reaches the socket may do anything: only an
//  endpoint this host alone can reach is bound, unless --insecure says
//  otherwise. 0, or -1 after saying why.
static int
s_check_exposure (const arb_broker_config_t *config)
{
    if (config->curve_dir || arb_auth_endpoint_is_local (config->endpoint))
        return 0;
    if (!config->insecure) {
        zsys_error ("broker: refusing to bind %s without authentication: any host that reaches "
                    "it could do anything. Give --curve DIR (certificates and roles; see "
                    "README.md, \"Securing the broker\"), bind a loopback address, or give "
                    "--insecure to bind it open",
                    config->endpoint);
        return -1;
    }
    zsys_warning ("broker: --insecure: %s is bound without authentication; any host that "
                  "reaches it can do anything",
                  config->endpoint);
    return 0;
}

arb_broker_t *
arb_broker_new (const arb_broker_config_t *config)
{
    if (s_check_exposure (config))
        return NULL;
    arb_broker_t *self = (arb_broker_t *) zmalloc (sizeof (arb_broker_t));
    self->config = *config;
    self->limits.max_frame = config->max_payload;
    //  A result over the limit fails its task only (arb_verbs_worker.c),
    //  so RESULT frames are read up to the socket's own limit below.
    size_t max_message = config->max_payload * 2 + (1 << 20);
    self->limits.max_result = max_message;
    self->clock.now_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    self->router = zsock_new (ZMQ_ROUTER);
    self->service = arb_service_new ();
    self->outbox = arb_outbox_new (self->router, &self->clock);

    self->journal = arb_journal_new (config->db_path, config->sync);
    if (!self->journal || s_rebuild (self)) {
        arb_broker_destroy (&self);
        return NULL;
    }
    self->verbs = (arb_verbs_t){
        .life = self->life,
        .outbox = self->outbox,
        .journal = self->journal,
        .clock = &self->clock,
        .heartbeat_ms = config->heartbeat_ms,
        .liveness_ms = config->liveness_ms,
        .max_payload = config->max_payload,
        .started_ms = self->clock.now_ms,
    };
    zsock_set_router_handover (self->router, 1);
    //  a send to a peer that is gone fails (EHOSTUNREACH) instead of
    //  vanishing: the outbox forgets such event subscribers
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, 1000);
    //  A frame far over the payload limit is cut at the socket; one just
    //  over it gets a clear 413 from the codec.
    zsock_set_maxmsgsize (self->router, (int64_t) max_message);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_sndhwm (self->router, 100000);
    if (config->curve_dir && !(self->auth = arb_auth_new (config->curve_dir, self->router))) {
        arb_broker_destroy (&self);
        return NULL;
    }
    if (zsock_bind (self->router, "%s", config->endpoint) < 0) {
        zsys_error ("broker: cannot bind %s: %s", config->endpoint, zmq_strerror (zmq_errno ()));
        arb_broker_destroy (&self);
        return NULL;
    }
    zsys_info ("broker: listening endpoint=%s sync=%s version=%s curve=%s", config->endpoint,
               config->sync == ARB_SYNC_FULL ? "full" : "normal", ARB_VERSION,
               self->auth ? arb_auth_public_key (self->auth) : "off");
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
    arb_life_destroy (&self->life);
    arb_journal_destroy (&self->journal);
    zsock_destroy (&self->router);
    arb_auth_destroy (&self->auth);  //  after the socket it admits peers to
    arb_service_destroy (&self->service);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  The turn

static void
s_handle (arb_broker_t *self, zmsg_t **zmsg_p)
{
    //  the role before decoding, which takes the frames: they carry the
    //  connection's User-Id
    arb_role_t role = self->auth ? arb_auth_role (self->auth, *zmsg_p) : ARB_ROLE_ADMIN;
    arb_msg_t *msg = NULL;
    int rc = arb_msg_decode (zmsg_p, true, &self->limits, &msg);
    if (rc == -2) {
        if (msg)
            arb_outbox_refuse (self->outbox, msg, arb_msg_decode_code (msg), "%s",
                               arb_msg_decode_error (msg));
        else
            arb_outbox_log_refusal (self->outbox, NULL, "?", "message without a routing id");
    }
    else
        arb_verbs_handle (&self->verbs, msg, role);
    arb_msg_destroy (&msg);
}

static void
s_read_messages (arb_broker_t *self)
{
    uint64_t deadline = self->clock.mono_ms + ARB_TURN_BUDGET_MS;
    for (int count = 0; count < ARB_TURN_MESSAGES && !arb_life_is_halted (self->life); count++) {
        zmsg_t *zmsg = zmsg_recv (self->router);
        if (!zmsg)
            break;  //  nothing more waiting (receive timeout is 0)
        s_handle (self, &zmsg);
        if ((count & 63) == 63 && (uint64_t) zclock_mono () > deadline)
            break;
    }
}

//  Liveness: a worker silent past the window is dead (its leases are
//  lost); a worker the broker has sent nothing to for a heartbeat period
//  gets a HEARTBEAT.
static void
s_check_workers (arb_broker_t *self)
{
    uint64_t mono_ms = self->clock.mono_ms;
    if (mono_ms < self->next_liveness_ms)
        return;
    uint32_t tick = self->config.heartbeat_ms / 2;
    self->next_liveness_ms = mono_ms + (tick > 50 ? tick : 50);
    arb_sched_t *sched = arb_life_sched (self->life);
    arb_session_t *session;
    while (!arb_life_is_halted (self->life)
           && (session = arb_sched_silent_session (sched, mono_ms)))
        arb_life_end_session (self->life, session, true);
    zhashx_t *sessions = arb_sched_sessions (sched);
    for (session = (arb_session_t *) zhashx_first (sessions); session;
         session = (arb_session_t *) zhashx_next (sessions)) {
        if (mono_ms - arb_session_last_sent (session) < self->config.heartbeat_ms)
            continue;
        arb_msg_t *beat = arb_msg_new (ARB_MSG_HEARTBEAT, 0);
        arb_msg_set_routing_id (beat, arb_session_identity (session));
        arb_outbox_reply (self->outbox, &beat);
        arb_session_sent (session, mono_ms);
    }
}

//  Retention: final tasks leave the journal after their purge time, a
//  small batch per turn, so a sweep never stalls the loop; while a batch
//  comes back full, the next turn sweeps again.
static void
s_sweep (arb_broker_t *self)
{
    if (self->clock.mono_ms < self->next_sweep_ms)
        return;
    int purged = arb_life_sweep (self->life, ARB_SWEEP_BATCH);
    if (purged < 0)
        return;
    self->next_sweep_ms =
        self->clock.mono_ms + (purged == ARB_SWEEP_BATCH ? 0 : ARB_SWEEP_EVERY_MS);
}

//  Commits the turn's transaction, timed for STATS when it wrote anything.
static void
s_commit (arb_broker_t *self)
{
    bool writing = arb_journal_in_txn (self->journal);
    int64_t started = zclock_usecs ();
    if (arb_journal_commit (self->journal))
        arb_life_halt (self->life, "commit");
    else if (writing)
        arb_tally_commit (arb_life_tally (self->life), (uint64_t) (zclock_usecs () - started));
}

static void
s_turn (arb_broker_t *self)
{
    self->clock.now_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    if (self->auth)
        arb_auth_refresh (self->auth, self->clock.mono_ms);
    s_read_messages (self);
    if (!arb_life_is_halted (self->life))
        arb_life_fire_timers (self->life);
    if (!arb_life_is_halted (self->life))
        s_check_workers (self);
    if (!arb_life_is_halted (self->life))
        s_sweep (self);
    if (!arb_life_is_halted (self->life))
        s_commit (self);
    if (arb_life_is_halted (self->life)) {
        arb_outbox_abandon (self->outbox);
        return;
    }
    arb_outbox_flush (self->outbox);
    arb_life_dispatch (self->life);
}

static int
s_poll_timeout (arb_broker_t *self)
{
    //  Work left by the dispatch pass (an expired task ended) goes out
    //  with the next commit, at once.
    if (arb_journal_in_txn (self->journal) || !arb_outbox_is_empty (self->outbox))
        return 0;
    uint64_t mono = (uint64_t) zclock_mono ();
    uint64_t next = arb_life_next_timer (self->life);
    if (self->next_liveness_ms < next)
        next = self->next_liveness_ms;
    if (self->next_sweep_ms < next)
        next = self->next_sweep_ms;
    if (arb_service_next_ms (self->service) < next)
        next = arb_service_next_ms (self->service);
    if (next <= mono)
        return 0;
    uint64_t wait = next - mono;
    return wait > 1000 ? 1000 : (int) wait;
}

//  A stop (SIGTERM, SIGINT) reads nothing more, but what the turns did
//  goes out: the transaction a dispatch pass opened is committed and the
//  outbox flushed; the socket's linger then gives the replies a second.
static void
s_stop (arb_broker_t *self)
{
    arb_service_stopping (self->service);
    self->clock.now_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    s_commit (self);
    if (!arb_life_is_halted (self->life))
        arb_outbox_flush (self->outbox);
}

int
arb_broker_run (arb_broker_t *self)
{
    zmq_pollitem_t item = {zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
    char status[256];
    snprintf (status, sizeof (status), "listening on %s", self->config.endpoint);
    arb_service_ready (self->service, status);
    while (!zsys_interrupted && !arb_life_is_halted (self->life)) {
        int rc = zmq_poll (&item, 1, s_poll_timeout (self));
        if (rc < 0 && zmq_errno () != EINTR) {
            zsys_error ("broker: poll failed: %s", zmq_strerror (zmq_errno ()));
            break;
        }
        if (zsys_interrupted)
            break;
        s_turn (self);
        //  from the loop itself, so a loop that hangs misses its pings
        arb_service_tick (self->service, (uint64_t) zclock_mono ());
    }
    if (!arb_life_is_halted (self->life))
        s_stop (self);
    if (arb_life_is_halted (self->life))
        return -1;
    if (arb_life_stop (self->life) || arb_journal_commit (self->journal)) {
        zsys_error ("broker: could not record the running leases at stop; the next start counts "
                    "as after a crash");
        return -1;
    }
    zsys_info ("broker: stopping");
    return 0;
}
