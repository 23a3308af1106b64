/*  arb_broker.c — the broker's loop: start-up and the turn; see
    arb_broker.h for the design and docs/broker.md ("Layers") for the
    layers below it.

    The loop owns the socket, the journal, the clock and the layers, and
    does nothing else itself: at start it rebuilds memory from the journal
    (through the lifecycle and the settings); each turn it reads requests
    (handed to the verbs), fires timers, checks worker liveness, sweeps
    expired results, hands out what was ready at the last commit,
    commits, flushes the outbox and dispatches. Within a long turn it
    sends the heartbeats that fall due at once (s_pulse).

    When the disk fails the journal (a commit, or a write within the
    turn: no space, an I/O error) it falls back rather than stop: the turn
    is rolled back, memory rebuilt from the journal as at a start, the
    turn's requests answered 507, and it serves what needs no write until
    a test write (a probe, with backoff) says the disk takes writes again;
    see "The journal full" below and docs/broker.md, "Disk full".
*/

#include "arb_broker.h"
#include "arb_auth.h"
#include "arb_service.h"
#include "arb_settings.h"
#include "arb_verbs.h"

#define ARB_TURN_MESSAGES  2000   //  messages read per turn at most
#define ARB_PEER_RCVHWM    1000   //  messages of one peer read ahead of the loop
#define ARB_PEER_SNDHWM    10000  //  messages waiting for one peer to read them
#define ARB_TURN_BUDGET_MS 50     //  and for at most this long
#define ARB_AWAIT_MAX_US   250    //  the longest wait for owed answers (s_await)
#define ARB_SWEEP_BATCH    100    //  final tasks removed per retention sweep, at first
#define ARB_SWEEP_MAX      1600   //  and at most, while it is behind
#define ARB_SWEEP_EVERY_MS 1000
#define ARB_PROBE_FIRST_MS 250    //  first wait before a full journal is tried again
#define ARB_PROBE_MAX_MS   5000   //  the wait doubles up to this
#define ARB_PROBE_CALM_MS  60000  //  full again sooner than this after recovering: waits go on

struct _arb_broker_t {
    arb_broker_config_t config;
    arb_limits_t limits;        //  the codec's limits for requests
    arb_wire_t *wire;           //  owned: the connections
    arb_auth_t *auth;           //  owned: CURVE and roles (--curve); NULL: every peer is admin
    arb_journal_t *journal;     //  owned
    arb_clock_t clock;          //  the current turn's time, lent to the layers
    arb_outbox_t *outbox;       //  owned: layer 1
    arb_life_t *life;           //  owned: layer 2 (with arb_settings)
    arb_verbs_t verbs;          //  layer 3: what the handlers work with
    uint64_t next_liveness_ms;  //  monotonic: next check of silent workers
    uint64_t last_liveness_ms;  //  monotonic: the last one; 0 none yet
    bool liveness_skipped;      //  the last one judged no one (the loop had stood still)
    uint64_t next_pulse_ms;     //  monotonic: the next heartbeats long work may send
    uint64_t next_sweep_ms;     //  monotonic: next retention sweep
    size_t sweep_batch;         //  its batch: ARB_SWEEP_BATCH, doubling while behind
    uint64_t sweep_behind_ms;   //  monotonic: since when every batch came back full; 0 not
    bool journal_full;          //  the disk failed the journal: nothing writes until a probe works
    bool unserved;              //  the start ended before it served: a journal it made goes
    uint64_t next_probe_ms;     //  monotonic: the next probe, while full
    uint32_t probe_wait_ms;     //  the wait before it (doubling to ARB_PROBE_MAX_MS)
    uint64_t recovered_ms;      //  monotonic: when the journal last took writes again; 0 never
    arb_service_t *service;     //  owned: sd_notify (ready, watchdog, stopping)
    uint64_t commit_avg_us;     //  a commit's time, averaged over the last few that wrote
};

void
arb_broker_config_defaults (arb_broker_config_t *config)
{
    *config = (arb_broker_config_t){
        .endpoint = "tcp://127.0.0.1:7700",
        .db_path = "./var/arbiter.db",
        .sync = ARB_SYNC_FULL,
        .task_log = true,
        .max_payload = ARB_PAYLOAD_DEFAULT_MAX,
        .heartbeat_ms = 1000,
        .liveness_ms = 5000,
        .aging_ms = 0,
        .cache_bytes = 16u << 20,
        .max_lost = 3,
        .max_head_failures = 10,
        .retention_ms = ARB_DAY_MS,
        .dead_retention_ms = 7 * ARB_DAY_MS,
        .recovery_ms = ARB_RECOVERY_AUTO,
    };
}

//  ---------------------------------------------------------------------
//  Start-up: the journal is the truth; memory is rebuilt from it.

static void s_enter_full (arb_broker_t *self);
static void s_pulse (void *arg);

//  A lifecycle over the journal: epoch 0 counts this start in the journal;
//  another is taken as it is, and the journal learns it later.
static arb_life_t *
s_life_new (arb_broker_t *self, uint64_t epoch)
{
    arb_life_config_t config = {
        .aging_ms = self->config.aging_ms,
        .liveness_ms = self->config.liveness_ms,
        .cache_bytes = self->config.cache_bytes,
        .hot_max = self->config.hot_max,
        .max_lost = self->config.max_lost,
        .max_head_failures = self->config.max_head_failures,
        .retention_ms = self->config.retention_ms,
        .dead_retention_ms = self->config.dead_retention_ms,
        .epoch = epoch,
        .pulse = s_pulse,
        .pulse_arg = self,
    };
    return arb_life_new (&config, self->journal, self->outbox, &self->clock);
}

//  Loads a lifecycle made to write nothing (the journal is full): what
//  loading derives from the journal anyway (a task whose parents are all
//  done made ready) stays in memory and is not written, since a turn
//  that tried would fail, and so would every turn after it; a restart
//  derives it again. 0 or -1.
static int
s_load_full (arb_broker_t *self, arb_life_t *life, size_t *count, size_t *schedules)
{
    arb_life_set_journal_full (life, true);
    if (arb_settings_load (arb_life_sched (life), self->journal) || arb_life_load (life, count)
        || arb_life_load_schedules (life, false, schedules))
        return -1;
    if (arb_journal_in_txn (self->journal))
        return arb_journal_rollback (self->journal);
    return 0;
}

static int
s_rebuild (arb_broker_t *self)
{
    size_t count = 0, maybe_running = 0, schedules = 0;
    self->life = s_life_new (self, 0);
    //  the deliveries before the schedules: a task they fire now is new
    int rc = !self->life || arb_settings_load (arb_life_sched (self->life), self->journal)
                     || arb_life_load (self->life, &count)
                     || arb_life_count_stop_deliveries (self->life, &maybe_running)
                     || arb_life_load_schedules (self->life, true, &schedules)
                     || arb_journal_commit (self->journal)
                 ? -1
                 : 0;
    uint64_t stored = 0;
    if (rc && arb_journal_fault (self->journal) == ARB_JOURNAL_FULL) {
        //  The disk is full already: start without writing, the start
        //  counted in memory until the journal takes it.
        zsys_warning ("broker: the journal cannot be written at start (disk full); starting "
                      "without writes path=%s",
                      self->config.db_path);
        arb_life_destroy (&self->life);
        count = maybe_running = schedules = 0;
        rc = arb_journal_rollback (self->journal) || arb_journal_epoch (self->journal, &stored)
                     || !(self->life = s_life_new (self, stored + 1))
                     || s_load_full (self, self->life, &count, &schedules)
                     || arb_life_count_stop_deliveries (self->life, &maybe_running)
                 ? -1
                 : 0;
        if (rc == 0)
            s_enter_full (self);
    }
    if (rc)
        return -1;
    if (arb_journal_is_new (self->journal))
        //  said apart from a load: a misspelt --db starts an empty journal
        zsys_info ("broker: journal created (no journal was at this path: a new, empty one) "
                   "path=%s",
                   self->config.db_path);
    else
        zsys_info ("broker: journal loaded path=%s epoch=%" PRIu64 " open_tasks=%zu "
                   "next_id=%" PRIu64 " schedules=%zu",
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
//  otherwise.
int
arb_broker_config_check (const arb_broker_config_t *config)
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

//  A start that ends before it serves (its socket cannot be bound, its
//  certificates not read) leased nothing: it records its stop as a clean
//  one, so that the next start does not count a delivery more for every
//  ready task, as after a crash (a service manager's restarts on a port
//  in use would add one each time).
static void
s_stop_unserved (arb_broker_t *self)
{
    //  and a journal this start made where there was none is removed at
    //  destroy (arb_journal_discard): a port in use left a new file
    self->unserved = true;
    if (self->journal_full)
        return;  //  nothing can be written: the next start counts as after a crash
    if (arb_life_stop (self->life) || arb_journal_commit (self->journal))
        zsys_error ("broker: could not record the stop; the next start counts as after a "
                    "crash");
}

arb_broker_t *
arb_broker_new (const arb_broker_config_t *config)
{
    arb_broker_t *self = (arb_broker_t *) zmalloc (sizeof (arb_broker_t));
    self->config = *config;
    self->limits.max_frame = config->max_payload;
    //  A result over the limit fails its task only (arb_verbs_worker.c),
    //  so RESULT frames are read up to the socket's own limit below.
    size_t max_message = (size_t) ARB_MESSAGE_MAX (config->max_payload);
    self->limits.max_result = max_message;
    self->clock.now_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    self->probe_wait_ms = ARB_PROBE_FIRST_MS;
    self->sweep_batch = ARB_SWEEP_BATCH;
    //  What one peer may leave in the broker's memory (docs/broker.md,
    //  "Bounds"): messages read ahead of the loop stop at ARB_PEER_RCVHWM
    //  (TCP then holds the rest back at the peer); messages for a peer
    //  that does not read stop at ARB_PEER_SNDHWM, room for several turns
    //  of replies (a turn reads ARB_TURN_MESSAGES at most), and beyond
    //  it are dropped (a DISPATCH's tasks go back). A frame far over the
    //  payload limit is cut at the socket; one just over it gets a clear
    //  413 from the codec.
    arb_wire_config_t wire = {
        .endpoint = config->endpoint,
        .mode = config->transport,
        .curve = config->curve_dir != NULL,
        .max_message = max_message,
        .peer_rcvhwm = ARB_PEER_RCVHWM,
        .peer_sndhwm = ARB_PEER_SNDHWM,
    };
    self->wire = arb_wire_new (&wire);
    self->service = arb_service_new ();
    self->outbox = arb_outbox_new (self->wire, &self->clock);

    self->journal = arb_journal_new (config->db_path, config->sync);
    if (self->journal)
        arb_journal_set_log (self->journal, config->task_log);
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
        .journal_full = self->journal_full,
    };
    if (config->curve_dir
        && !(self->auth = arb_auth_new (config->curve_dir, arb_wire_router (self->wire)))) {
        s_stop_unserved (self);
        arb_broker_destroy (&self);
        return NULL;
    }
    if (arb_wire_bind (self->wire)) {
        s_stop_unserved (self);
        arb_broker_destroy (&self);
        return NULL;
    }
    zsys_info ("broker: listening endpoint=%s transport=%s sync=%s task_log=%s version=%s "
               "curve=%s",
               config->endpoint, arb_wire_is_own (self->wire) ? "loop" : "zeromq",
               config->sync == ARB_SYNC_FULL ? "full" : "normal", config->task_log ? "on" : "off",
               ARB_VERSION, self->auth ? arb_auth_public_key (self->auth) : "off");
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
    if (self->unserved)
        arb_journal_discard (&self->journal);
    else
        arb_journal_destroy (&self->journal);
    arb_wire_destroy (&self->wire);
    arb_auth_destroy (&self->auth);  //  after the socket it admits peers to
    arb_service_destroy (&self->service);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  The turn

//  Answers a request whose handling the journal failed (before the turn's
//  commit: nothing of it was stored): 507 if the disk was at fault (the
//  turn falls back, and its other requests get the same), else 500 (the
//  broker stops; the answer may not leave).
static void
s_refuse_failed (arb_broker_t *self, arb_msg_t *msg)
{
    if (arb_journal_fault (self->journal) == ARB_JOURNAL_FULL)
        arb_outbox_refuse (self->outbox, msg, ARB_ERR_JOURNAL_FULL, ARB_JOURNAL_FULL_REASON);
    else
        arb_outbox_refuse (self->outbox, msg, ARB_ERR_INTERNAL,
                           "journal: failed; nothing was changed");
}

//  A message received (rc: arb_msg_recv_from's), from a peer of that role.
static void
s_handle (arb_broker_t *self, arb_msg_t *msg, int rc, arb_role_t role)
{
    if (rc == -2) {
        if (msg)
            arb_outbox_refuse (self->outbox, msg, arb_msg_decode_code (msg), "%s",
                               arb_msg_decode_error (msg));
        else
            arb_outbox_log_refusal (self->outbox, NULL, "?", "message without a routing id");
    }
    else {
        arb_verbs_handle (&self->verbs, msg, role);
        //  the journal failed under it: its handler answered nothing
        if (arb_life_is_halted (self->life) && arb_msg_reply_type (arb_msg_type (msg)))
            s_refuse_failed (self, msg);
    }
}

static void
s_read_messages (arb_broker_t *self)
{
    uint64_t deadline = self->clock.mono_ms + ARB_TURN_BUDGET_MS;
    char user_id[128];  //  a CURVE key in Z85: 40 characters
    //  a turn that holds what the task log takes in one stops here, so
    //  that it commits to the log (batched submits): the rest go next turn
    for (int count = 0; count < ARB_TURN_MESSAGES && !arb_life_is_halted (self->life)
                        && !arb_journal_turn_is_full (self->journal);
         count++) {
        arb_msg_t *msg = NULL;
        int rc = arb_wire_recv (self->wire, &self->limits, &msg, self->auth ? user_id : NULL,
                                sizeof (user_id));
        if (rc == -1)
            break;  //  nothing more waiting (receive timeout is 0)
        arb_role_t role = ARB_ROLE_ADMIN;
        if (self->auth) {
            role = arb_auth_role (self->auth, user_id);
            size_t peer_size = 0;
            const uint8_t *peer = msg ? arb_msg_peer (msg, &peer_size) : NULL;
            arb_auth_note (self->auth, peer, peer_size, user_id);
        }
        s_handle (self, msg, rc, role);
        arb_msg_destroy (&msg);
        //  the clock every 8 messages: one of 64 let a turn of heavy reads
        //  (a STATUS of 20,000 ids is ~0.1 s) run for seconds, and with
        //  it the liveness checks and everything else that waits for the
        //  turn's end
        if ((count & 7) == 7 && (uint64_t) zclock_mono () > deadline)
            break;
    }
}

//  A HEARTBEAT to each worker the broker has sent nothing to for a
//  heartbeat period: after the turn's commit with the replies, or at once
//  (now). With the replies, also to a worker with acks given leases past
//  its last mark a period ago, so that the busy check knows which of its
//  leases it has had (arb_life_check_busy). Returns how many.
static size_t
s_send_heartbeats (arb_broker_t *self, uint64_t mono_ms, bool now)
{
    size_t sent = 0;
    //  a copy of the table's values: a pulse comes within work that may
    //  be walking the table itself (its cursor is the table's own)
    zlistx_t *sessions = zhashx_values (arb_sched_sessions (arb_life_sched (self->life)));
    for (arb_session_t *session = (arb_session_t *) zlistx_first (sessions); session;
         session = (arb_session_t *) zlistx_next (sessions)) {
        //  (a pulse may have sent one later than this turn's clock)
        bool idle = arb_session_last_sent (session) + self->config.heartbeat_ms <= mono_ms;
        //  a mark goes only behind the turn's replies (a TAKE's tasks wait
        //  among them), with no DISPATCH being filled for the session
        bool marks = !now && arb_session_marks (session) && !*arb_session_outgoing (session);
        if ((!idle
             && !(marks && arb_session_mark_due (session, mono_ms, self->config.heartbeat_ms)))
            || arb_session_is_shut_out (session)
            || (now && arb_sched_welcome_waits (arb_life_sched (self->life), session)))
            continue;
        arb_msg_t *beat = arb_msg_new (ARB_MSG_HEARTBEAT, 0);
        arb_msg_set_routing_id (beat, arb_session_identity (session));
        if (marks)
            arb_msg_heartbeat (beat)->mark = arb_session_mark (session, mono_ms);
        if (now)
            arb_outbox_send (self->outbox, &beat);
        else
            arb_outbox_reply (self->outbox, &beat);
        arb_session_sent (session, mono_ms);
        sent++;
    }
    zlistx_destroy (&sessions);
    return sent;
}

//  Liveness: a worker silent past the window is dead (its leases are
//  lost); a worker the broker has sent nothing to for a heartbeat period
//  gets a HEARTBEAT.
//  arb_sched_silent_session's: whether the session's peer has input
//  waiting unread, or sent bytes of a message within the window (its own
//  wire). The ROUTER socket does not tell one peer's input from
//  another's: any message waiting may be this worker's heartbeat, and
//  excuses a silence of up to twice the window, no longer, so that a dead
//  worker is still found while others keep the input from draining.
static bool
s_unread (void *arg, arb_session_t *session)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    zframe_t *identity = arb_session_identity (session);
    //  (bytes of a RESULT of 16 MB on a slow link, its heartbeats behind it)
    uint64_t window = self->config.liveness_ms;
    uint64_t since = self->clock.mono_ms > window ? self->clock.mono_ms - window + 1 : 0;
    if (!arb_wire_unread (self->wire, zframe_data (identity), zframe_size (identity), since))
        return false;
    uint64_t silent = self->clock.mono_ms - arb_session_last_seen (session);
    return !arb_wire_router (self->wire) || silent < 2 * (uint64_t) self->config.liveness_ms;
}

static void
s_check_workers (arb_broker_t *self)
{
    uint64_t mono_ms = self->clock.mono_ms;
    if (mono_ms < self->next_liveness_ms)
        return;
    uint32_t tick = self->config.heartbeat_ms / 2;
    uint64_t every = tick > 50 ? tick : 50;  //  between two checks
    self->next_liveness_ms = mono_ms + every;
    //  A loop that stood still for the liveness window, and two checks'
    //  time at least (a long turn; the process stopped, or its machine),
    //  judges no one in this check: libzmq's I/O thread, which fills the
    //  ROUTER socket, may have stood still with it, and a worker's
    //  heartbeats, sent meanwhile, be still on their way in. The next
    //  check, a tick later, judges, however late it comes (turns that all
    //  take a window would defer for ever).
    uint64_t still = self->config.liveness_ms > 2 * every ? self->config.liveness_ms : 2 * every;
    bool stood_still = !self->liveness_skipped && self->last_liveness_ms
                       && mono_ms - self->last_liveness_ms >= still;
    self->liveness_skipped = stood_still;
    self->last_liveness_ms = mono_ms;
    arb_sched_t *sched = arb_life_sched (self->life);
    arb_session_t *session;
    //  A worker is silent if nothing was read from it for the liveness
    //  window and nothing from it waits unread: after a long turn, or
    //  turns that stopped reading early (their 2,000 messages, their
    //  budget, a full turn of the journal), its heartbeats may wait in its
    //  connection, and a live worker taken for lost would see its running
    //  tasks run again. (Each connection's own input, not the wire's: a
    //  dead worker's is empty, however busy the others keep the loop.)
    //  while the journal is full a lost lease could not be recorded: a
    //  silent worker keeps its leases until the journal takes writes
    while (!stood_still && !self->journal_full && !arb_life_is_halted (self->life)
           && (session = arb_sched_silent_session (sched, mono_ms, s_unread, self)))
        arb_life_end_session (self->life, session,
                              arb_session_is_shut_out (session) ? ARB_END_SHUT_OUT : ARB_END_LOST);
    s_send_heartbeats (self, mono_ms, false);
}

//  Long work within a turn (a SUBMIT of 100,000 keyed tasks took 6 s once
//  on a loaded machine; the pulse comes from its loops, and before the
//  commit) sends the heartbeats that fall due meanwhile, at once, so that
//  no worker counts the broker silent and registers again (its leases
//  then lost) while the loop is alive, only busy. Nothing that needs the
//  commit leaves with them: the connections hold only what needed none
//  (heartbeats, hand-outs before the commit), replies wait in the outbox,
//  and a worker whose WELCOME waits there gets no heartbeat before it.
static void
s_pulse (void *arg)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    uint64_t mono_ms = (uint64_t) zclock_mono ();
    if (mono_ms < self->next_pulse_ms || arb_life_is_halted (self->life))
        return;
    self->next_pulse_ms = mono_ms + self->config.heartbeat_ms / 4;
    if (s_send_heartbeats (self, mono_ms, true))
        arb_wire_flush (self->wire);
}

//  Retention: final tasks leave the journal after their purge time, a
//  small batch per turn, so that a sweep adds little to the turn's
//  latency (500 a turn was 5 ms of p99 at half load); while a batch comes
//  back full, the next turn sweeps again. A sweep still behind after
//  every turn of a whole second (a broker busy for long) doubles its
//  batch each such second, up to ARB_SWEEP_MAX, so that it catches up.
static void
s_sweep (arb_broker_t *self)
{
    uint64_t now = self->clock.mono_ms;
    if (now < self->next_sweep_ms)
        return;
    int purged = arb_life_sweep (self->life, self->sweep_batch);
    if (purged < 0)
        return;
    bool behind = (size_t) purged == self->sweep_batch;
    self->next_sweep_ms = now + (behind ? 0 : ARB_SWEEP_EVERY_MS);
    if (!behind) {
        self->sweep_batch = ARB_SWEEP_BATCH;
        self->sweep_behind_ms = 0;
    }
    else if (!self->sweep_behind_ms)
        self->sweep_behind_ms = now;
    else if (now - self->sweep_behind_ms >= 1000 && self->sweep_batch < ARB_SWEEP_MAX) {
        self->sweep_batch *= 2;
        self->sweep_behind_ms = now;
    }
}

//  Commits the turn's transaction, timed for STATS when it wrote anything.
static void
s_commit (arb_broker_t *self)
{
    bool writing = arb_journal_has_writes (self->journal);
    //  the turn's held writes first, so that the time is the commit's alone
    if (arb_journal_settle (self->journal)) {
        arb_life_halt (self->life, "commit");
        return;
    }
    int64_t started = zclock_usecs ();
    if (arb_journal_commit (self->journal)) {
        arb_life_halt (self->life, "commit");
        return;
    }
    arb_life_committed (self->life);
    if (writing) {
        uint64_t took = (uint64_t) (zclock_usecs () - started);
        arb_tally_commit (arb_life_tally (self->life), took);
        self->commit_avg_us = (self->commit_avg_us * 7 + took) / 8;
    }
}

//  A turn with writes to commit waits a little for the peers it answered
//  last (a worker given a task, a producer given its acknowledgement:
//  arb_wire_await), reading what they send, so that a worker's RESULT and
//  a producer's next SUBMIT share one fsync rather than take one each. It
//  waits a quarter of a commit at most: a wait in vain costs that, an
//  answer in time saves a whole commit.
static void
s_await (arb_broker_t *self)
{
    uint64_t budget = self->commit_avg_us / 4;
    int64_t deadline =
        zclock_usecs () + (int64_t) (budget < ARB_AWAIT_MAX_US ? budget : ARB_AWAIT_MAX_US);
    int64_t left;
    while (!arb_life_is_halted (self->life) && !arb_journal_turn_is_full (self->journal)
           && (left = deadline - zclock_usecs ()) > 0
           && arb_wire_await (self->wire, (uint64_t) left) > 0)
        s_read_messages (self);
}

static int s_fall_back (arb_broker_t *self);
static void s_probe (arb_broker_t *self);

//  Sends the replies the turn left; the tasks of TAKE replies the socket
//  did not take go back.
static void
s_flush (arb_broker_t *self)
{
    arb_outbox_flush (self->outbox);
    zframe_t *identity;
    arb_held_t *leases;
    size_t n;
    while (arb_outbox_next_undelivered (self->outbox, &identity, &leases, &n)) {
        if (!arb_life_is_halted (self->life))
            arb_life_undelivered (self->life, identity, leases, n);
        zframe_destroy (&identity);
        free (leases);
    }
}

//  arb_auth_changed_roles's callback: ends what the peer may hold no more.
static void
s_role_changed (void *arg, zframe_t *identity, arb_role_t role, const char *name)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    if (!arb_life_is_halted (self->life))
        arb_verbs_role_changed (&self->verbs, identity, role, name);
}

//  arb_auth_prune's callback.
static bool
s_peer_holds (void *arg, zframe_t *identity)
{
    arb_broker_t *self = (arb_broker_t *) arg;
    return arb_verbs_peer_holds (&self->verbs, identity);
}

//  With --curve: a certificate removed from allowed/, or given another
//  role, ends what its connected peers held that the role no longer
//  allows (a worker session, watches, events) as soon as the folder is
//  read again, so that the broker sends them nothing more: a role checked
//  only on what they send would leave a worker shut out still given tasks.
static void
s_check_roles (arb_broker_t *self)
{
    if (arb_auth_refresh (self->auth, self->clock.mono_ms))
        arb_auth_changed_roles (self->auth, s_role_changed, self);
    arb_auth_prune (self->auth, s_peer_holds, self);
}

//  What the broker keeps for a peer between its messages and only the
//  end of its connection can free goes with the connection: its watches
//  (else a client that went, or an `arbiter wait` interrupted, leaves
//  them until their tasks end: 200 connections that each watched 100,000
//  tasks held a GiB) and its event subscription (else kept until an EVENT
//  to it fails). A worker's session is not: it ends by liveness, and its
//  leases with it. After the turn's reads, so that a peer that connected
//  again with its id in the turn keeps what it holds (arb_wire_next_gone).
static void
s_forget_gone (arb_broker_t *self)
{
    zframe_t *gone[64];
    size_t n = 0;
    do {
        n = 0;
        while (n < 64 && (gone[n] = arb_wire_next_gone (self->wire)))
            n++;
        if (!n)
            break;
        size_t watches = arb_life_unwatch_peers (self->life, gone, n);
        for (size_t k = 0; k < n; k++) {
            if (arb_outbox_is_subscribed (self->outbox, gone[k])) {
                char *peer = zframe_strhex (gone[k]);
                zsys_notice ("broker: event subscriber forgotten peer=%s reason=closed", peer);
                free (peer);
                arb_outbox_subscribe (self->outbox, gone[k], NULL, false);
            }
            zframe_destroy (&gone[k]);
        }
        if (watches)
            zsys_debug ("broker: peers gone, their watches dropped peers=%zu watches=%zu", n,
                        watches);
    } while (n == 64);
}

static void
s_turn (arb_broker_t *self)
{
    arb_wire_next_turn (self->wire);
    self->clock.now_ms = (uint64_t) zclock_time ();
    self->clock.mono_ms = (uint64_t) zclock_mono ();
    if (self->auth)
        s_check_roles (self);
    //  a turn whose probe finds the journal writable again writes the
    //  epoch that memory took in the fall back: no lease of that epoch
    //  goes before its commit
    bool was_full = self->journal_full;
    if (self->journal_full)
        s_probe (self);
    if (!arb_life_is_halted (self->life))
        s_read_messages (self);
    //  while the journal is full, timers (timeouts, expiries, slots) and
    //  sweeps wait: what they do needs writes
    if (!self->journal_full && !arb_life_is_halted (self->life))
        arb_life_fire_timers (self->life);
    if (!arb_life_is_halted (self->life))
        s_check_workers (self);
    if (!self->journal_full && !arb_life_is_halted (self->life))
        s_sweep (self);
    //  tasks ready before this turn go now: a hand-out writes nothing, so
    //  a worker's next tasks need not wait for this turn's fsync
    if (!was_full && !self->journal_full && !arb_life_is_halted (self->life))
        arb_life_dispatch_early (self->life);
    //  what went out already (those hand-outs) leaves now, during the
    //  fsync, as a ROUTER's I/O thread would send it
    arb_wire_flush (self->wire);
    if (!arb_life_is_halted (self->life) && arb_journal_has_writes (self->journal))
        s_await (self);
    if (!arb_life_is_halted (self->life))
        s_forget_gone (self);
    //  the turn may have been long (a big request): heartbeats due go
    //  before the commit's wait
    s_pulse (self);
    if (!arb_life_is_halted (self->life))
        s_commit (self);
    if (arb_life_is_halted (self->life) && s_fall_back (self)) {
        arb_outbox_abandon (self->outbox);
        return;
    }
    s_flush (self);
    if (!self->journal_full)
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
    //  while the journal is full, timers and sweeps wait for the probe
    uint64_t next = self->journal_full ? self->next_probe_ms : arb_life_next_timer (self->life);
    if (self->next_liveness_ms < next)
        next = self->next_liveness_ms;
    if (!self->journal_full && self->next_sweep_ms < next)
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
    if (arb_life_is_halted (self->life) && s_fall_back (self)) {
        arb_outbox_abandon (self->outbox);
        return;
    }
    s_flush (self);
}

int
arb_broker_run (arb_broker_t *self)
{
    char status[256];
    snprintf (status, sizeof (status), "listening on %s", self->config.endpoint);
    arb_service_ready (self->service, status);
    while (!zsys_interrupted && !arb_life_is_halted (self->life)) {
        int rc = arb_wire_poll (self->wire, s_poll_timeout (self));
        if (rc < 0 && errno != EINTR) {
            zsys_error ("broker: poll failed: %s", strerror (errno));
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
    if (arb_life_is_halted (self->life)) {
        zsys_error ("broker: stopping: the journal failed (a restart recovers from it)");
        return -1;
    }
    if (self->journal_full && arb_journal_probe (self->journal)) {
        if (arb_journal_fault (self->journal) != ARB_JOURNAL_FULL) {
            zsys_error ("broker: stopping: the journal failed (a restart recovers from it)");
            return -1;
        }
        //  That is all a full disk costs a stop: the journal is sound.
        zsys_notice ("broker: stopping with the journal full: the running leases are not "
                     "recorded, so the next start counts deliveries as after a crash");
        return 0;
    }
    if (arb_life_stop (self->life) || arb_journal_commit (self->journal)) {
        zsys_error ("broker: could not record the running leases at stop; the next start counts "
                    "as after a crash");
        return -1;
    }
    zsys_info ("broker: stopping");
    return 0;
}

int
arb_broker_step (arb_broker_t *self, int timeout_ms)
{
    int wait = s_poll_timeout (self);
    if (arb_wire_poll (self->wire, wait < timeout_ms ? wait : timeout_ms) < 0 && errno != EINTR)
        return -1;
    s_turn (self);
    return arb_life_is_halted (self->life) ? -1 : 0;
}

bool
arb_broker_is_journal_full (arb_broker_t *self)
{
    return self->journal_full;
}

//  ---------------------------------------------------------------------
//  The journal full (docs/broker.md, "Disk full")
//
//  A turn whose commit failed acknowledged nothing: its replies wait in
//  the outbox. So the loop can go on from the journal's state, as a
//  restart would, without exiting: the turn is rolled back, memory rebuilt
//  from the journal (what it still knows and the journal does not, its
//  watchers and delivery counts, carried over), the turn's requests
//  answered 507. Then, until a probe works, it takes no request that
//  writes (507), fires no timer, sweeps and dispatches nothing; it serves
//  reads, keeps worker sessions (heartbeats both ways; a silent worker is
//  not declared dead), and gives back to their queues the tasks whose
//  results cannot be stored.

//  Enters the mode: the first probe after ARB_PROBE_FIRST_MS, or, if the
//  journal took writes again only a moment ago, after twice the last wait,
//  so that a disk at the edge does not swing the broker in and out.
static void
s_enter_full (arb_broker_t *self)
{
    uint64_t mono = (uint64_t) zclock_mono ();
    if (!self->recovered_ms || mono > self->recovered_ms + ARB_PROBE_CALM_MS)
        self->probe_wait_ms = ARB_PROBE_FIRST_MS;
    else if (self->probe_wait_ms * 2 < ARB_PROBE_MAX_MS)
        self->probe_wait_ms *= 2;
    else
        self->probe_wait_ms = ARB_PROBE_MAX_MS;
    self->journal_full = true;
    self->verbs.journal_full = true;
    arb_life_set_journal_full (self->life, true);
    self->next_probe_ms = mono + self->probe_wait_ms;
}

//  After a halt: a failure of the disk falls back to the journal's state
//  and the mode above (0); anything else stops the broker (-1).
static int
s_fall_back (arb_broker_t *self)
{
    if (arb_journal_fault (self->journal) != ARB_JOURNAL_FULL)
        return -1;
    arb_outbox_refuse_all (self->outbox, ARB_ERR_JOURNAL_FULL, ARB_JOURNAL_FULL_REASON);
    if (arb_journal_rollback (self->journal))
        return -1;
    arb_life_t *old = self->life;
    arb_life_t *life = s_life_new (self, arb_life_epoch (old) + 1);
    size_t count = 0, schedules = 0;
    if (!life || s_load_full (self, life, &count, &schedules)) {
        arb_life_destroy (&life);
        return -1;
    }
    arb_life_take_over (life, &old);
    //  the watches the turn used up telling ends it did not commit
    zframe_t *identity;
    uint64_t id;
    while (arb_outbox_next_dropped_end (self->outbox, &identity, &id)) {
        bool found;
        if (!arb_life_is_halted (life)
            && arb_life_watch (life, id, zframe_data (identity), zframe_size (identity), &found))
            arb_life_halt (life, "watch");
        zframe_destroy (&identity);
    }
    self->life = life;
    self->verbs.life = life;
    s_hold_for_claims (self);
    s_enter_full (self);
    zsys_warning ("broker: journal full: the turn was rolled back and memory rebuilt from the "
                  "journal; requests that write get 507 until a write works again "
                  "epoch=%" PRIu64 " open_tasks=%zu next_probe_ms=%u",
                  arb_life_epoch (life), count, self->probe_wait_ms);
    return 0;
}

//  Tries a write, when its time has come; if it works the broker takes
//  writes again from this turn on, and journals first what waited.
static void
s_probe (arb_broker_t *self)
{
    if (self->clock.mono_ms < self->next_probe_ms)
        return;
    if (arb_journal_probe (self->journal) == 0) {
        self->journal_full = false;
        self->verbs.journal_full = false;
        arb_life_set_journal_full (self->life, false);
        self->recovered_ms = self->clock.mono_ms;
        zsys_notice ("broker: journal takes writes again; requests that write are taken");
        arb_life_save_deferred (self->life);  //  a failure halts: the turn falls back
        return;
    }
    if (arb_journal_fault (self->journal) != ARB_JOURNAL_FULL) {
        arb_life_halt (self->life, "probe");
        return;
    }
    arb_journal_rollback (self->journal);
    self->probe_wait_ms =
        self->probe_wait_ms * 2 < ARB_PROBE_MAX_MS ? self->probe_wait_ms * 2 : ARB_PROBE_MAX_MS;
    self->next_probe_ms = self->clock.mono_ms + self->probe_wait_ms;
    zsys_debug ("broker: journal still full; next probe in %u ms", self->probe_wait_ms);
}
