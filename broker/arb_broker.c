/*  arb_broker.c — the broker's loop; see arb_broker.h for the design. */

#include "arb_broker_priv.h"

#include <stdarg.h>

#define ARB_TURN_MESSAGES   2000  //  messages read per turn at most
#define ARB_TURN_BUDGET_MS  50    //  and for at most this long
#define ARB_REFUSALS_LOGGED 20    //  refusals logged per second; the rest are counted
#define ARB_SWEEP_BATCH     500   //  final tasks removed per retention sweep
#define ARB_SWEEP_EVERY_MS  1000

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

//  An event subscriber: a routing id and an optional queue filter.
typedef struct {
    zframe_t *identity;  //  owned
    char *queue;         //  owned; NULL: every queue
} s_subscriber_t;

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
    arb_sched_add (self->sched, task, self->now_ms, self->mono_ms);
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
    //  A result over the limit fails its task only (arb_broker_worker.c),
    //  so RESULT frames are read up to the socket's own limit below.
    size_t max_message = config->max_payload * 2 + (1 << 20);
    self->limits.max_result = max_message;
    self->now_ms = self->started_ms = (uint64_t) zclock_time ();
    self->mono_ms = (uint64_t) zclock_mono ();
    self->rng = self->now_ms ^ ((uint64_t) getpid () << 32) ^ 0x9e3779b97f4a7c15ull;
    self->outbox = zlist_new ();
    self->done = zhashx_new ();
    self->events = zhashx_new ();
    self->subscribers = zlist_new ();

    self->journal = arb_journal_new (config->db_path, config->sync);
    if (!self->journal || s_rebuild (self)) {
        arb_broker_destroy (&self);
        return NULL;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_handover (self->router, 1);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, 1000);
    //  A frame far over the payload limit is cut at the socket; one just
    //  over it gets a clear 413 from the codec.
    zsock_set_maxmsgsize (self->router, (int64_t) max_message);
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

//  Destroys the messages being filled in a map (routing id -> message).
static void
s_drop_msgs (zhashx_t *map)
{
    for (arb_msg_t *msg = (arb_msg_t *) zhashx_first (map); msg;
         msg = (arb_msg_t *) zhashx_next (map))
        arb_msg_destroy (&msg);
    zhashx_purge (map);
}

static void
s_destroy_msgs (zhashx_t **map_p)
{
    if (*map_p)
        s_drop_msgs (*map_p);
    zhashx_destroy (map_p);
}

static void
s_subscriber_destroy (s_subscriber_t **sub_p)
{
    zframe_destroy (&(*sub_p)->identity);
    free ((*sub_p)->queue);
    free (*sub_p);
    *sub_p = NULL;
}

void
arb_broker_destroy (arb_broker_t **self_p)
{
    assert (self_p);
    arb_broker_t *self = *self_p;
    if (!self)
        return;
    if (self->outbox) {
        arb_msg_t *msg;
        while ((msg = (arb_msg_t *) zlist_pop (self->outbox)))
            arb_msg_destroy (&msg);
        zlist_destroy (&self->outbox);
    }
    s_destroy_msgs (&self->done);
    s_destroy_msgs (&self->events);
    if (self->subscribers) {
        s_subscriber_t *sub;
        while ((sub = (s_subscriber_t *) zlist_pop (self->subscribers)))
            s_subscriber_destroy (&sub);
        zlist_destroy (&self->subscribers);
    }
    arb_vec_free (&self->settle);
    arb_sched_destroy (&self->sched);
    arb_journal_destroy (&self->journal);
    zsock_destroy (&self->router);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Replies and streamed messages: all wait for the turn's commit.

void
arb_broker_reply (arb_broker_t *self, arb_msg_t **reply_p)
{
    zlist_append (self->outbox, *reply_p);
    *reply_p = NULL;
}

//  Logs one line per refusal, at most ARB_REFUSALS_LOGGED a second, so a
//  peer spraying garbage cannot flood the log.
static void
s_log_refusal (arb_broker_t *self, zframe_t *identity, const char *type, const char *reason)
{
    uint64_t sec = self->now_ms / 1000;
    if (sec != self->refused_sec) {
        if (self->refused_count > ARB_REFUSALS_LOGGED)
            zsys_warning ("broker: %u more refusals not logged",
                          self->refused_count - ARB_REFUSALS_LOGGED);
        self->refused_sec = sec;
        self->refused_count = 0;
    }
    if (++self->refused_count > ARB_REFUSALS_LOGGED)
        return;
    char *peer = identity ? zframe_strhex (identity) : strdup ("?");
    zsys_warning ("broker: refused peer=%s type=%s reason=\"%s\"", peer, type, reason);
    free (peer);
}

void
arb_broker_refuse (arb_broker_t *self, arb_msg_t *request, arb_err_t code, const char *fmt, ...)
{
    char reason[ARB_TEXT_MAX];
    va_list args;
    va_start (args, fmt);
    vsnprintf (reason, sizeof (reason), fmt, args);
    va_end (args);
    const char *type = arb_msg_type_name (arb_msg_type (request));
    s_log_refusal (self, arb_msg_routing_id (request), type ? type : "?", reason);
    arb_msg_t *reply = arb_msg_new_error (request, code, "%s", reason);
    arb_broker_reply (self, &reply);
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

//  The message of a given type being filled for a peer in this turn.
static arb_msg_t *
s_pending (zhashx_t *map, zframe_t *identity, arb_msg_type_t type)
{
    char *key = zframe_strhex (identity);
    arb_msg_t *msg = (arb_msg_t *) zhashx_lookup (map, key);
    if (!msg) {
        msg = arb_msg_new (type, 0);
        arb_msg_set_routing_id (msg, identity);
        zhashx_insert (map, key, msg);
    }
    free (key);
    return msg;
}

void
arb_broker_done_record (arb_broker_t *self,
                        zframe_t *identity,
                        uint64_t id,
                        int state,
                        uint32_t attempts,
                        const char *error,
                        zframe_t **result_p)
{
    arb_msg_t *msg = s_pending (self->done, identity, ARB_MSG_DONE);
    arb_done_body_t *body = arb_msg_done (msg);
    arb_done_task_t *done = (arb_done_task_t *) arb_msg_grow (msg, &body->tasks, sizeof (*done), 1);
    done->id = id;
    done->state = (uint32_t) state;
    done->attempts = attempts;
    done->error = arb_msg_strdup (msg, error);
    done->result = result_p && *result_p ? *result_p : zframe_new_empty ();
    if (result_p)
        *result_p = NULL;
}

void
arb_broker_event (arb_broker_t *self, arb_task_t *task, int state, const char *error)
{
    if (zlist_size (self->subscribers) == 0)
        return;
    const char *queue = arb_queue_name (task->queue);
    for (s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers); sub;
         sub = (s_subscriber_t *) zlist_next (self->subscribers)) {
        if (sub->queue && !streq (sub->queue, queue))
            continue;
        arb_msg_t *msg = s_pending (self->events, sub->identity, ARB_MSG_EVENT);
        arb_event_body_t *body = arb_msg_event (msg);
        arb_event_info_t *event =
            (arb_event_info_t *) arb_msg_grow (msg, &body->events, sizeof (*event), 1);
        event->id = task->id;
        event->at_ms = self->now_ms;
        event->queue = arb_msg_strdup (msg, queue);
        event->name = arb_msg_strdup (msg, task->name);
        event->state = (uint32_t) state;
        event->attempt = task->attempts;
        event->worker =
            task->session ? arb_msg_strdup (msg, arb_session_name (task->session)) : NULL;
        event->error = arb_msg_strdup (msg, error);
    }
}

void
arb_broker_subscribe (arb_broker_t *self, zframe_t *identity, const char *queue, bool on)
{
    for (s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers); sub;
         sub = (s_subscriber_t *) zlist_next (self->subscribers))
        if (zframe_eq (sub->identity, identity)) {
            zlist_remove (self->subscribers, sub);
            s_subscriber_destroy (&sub);
            break;
        }
    if (on) {
        s_subscriber_t *sub = (s_subscriber_t *) zmalloc (sizeof (s_subscriber_t));
        sub->identity = zframe_dup (identity);
        sub->queue = queue ? strdup (queue) : NULL;
        zlist_append (self->subscribers, sub);
    }
}

static void
s_send (arb_broker_t *self, arb_msg_t **msg_p)
{
    //  A ROUTER drops what it cannot deliver (peer gone, or over its
    //  high-water mark); the broker never blocks on a slow peer.
    arb_msg_send (msg_p, self->router);
}

static void
s_send_all (arb_broker_t *self, zhashx_t *map)
{
    arb_msg_t *msg = (arb_msg_t *) zhashx_first (map);
    while (msg) {
        s_send (self, &msg);
        msg = (arb_msg_t *) zhashx_next (map);
    }
    zhashx_purge (map);
}

//  After the commit: replies first, then results, then events.
static void
s_flush (arb_broker_t *self)
{
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlist_pop (self->outbox)))
        s_send (self, &msg);
    s_send_all (self, self->done);
    s_send_all (self, self->events);
}

//  Drops everything a failed turn would have sent: none of it is durable.
static void
s_abandon (arb_broker_t *self)
{
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlist_pop (self->outbox)))
        arb_msg_destroy (&msg);
    s_drop_msgs (self->done);
    s_drop_msgs (self->events);
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
    if (self->mono_ms < self->next_sweep_ms)
        return;
    int purged = arb_journal_purge (self->journal, self->now_ms, ARB_SWEEP_BATCH, self->next_id,
                                    s_purged, self);
    if (purged < 0) {
        arb_broker_fail (self, "retention sweep");
        return;
    }
    if (purged > 0)
        arb_broker_forget_idle_queues (self);
    self->next_sweep_ms = self->mono_ms + (purged == ARB_SWEEP_BATCH ? 0 : ARB_SWEEP_EVERY_MS);
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
            arb_broker_refuse (self, msg, arb_msg_decode_code (msg), "%s",
                               arb_msg_decode_error (msg));
        else
            s_log_refusal (self, NULL, "?", "message without a routing id");
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
    uint64_t deadline = self->mono_ms + ARB_TURN_BUDGET_MS;
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
    self->now_ms = (uint64_t) zclock_time ();
    self->mono_ms = (uint64_t) zclock_mono ();
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
        s_abandon (self);
        return;
    }
    s_flush (self);
    arb_sched_dispatch (self->sched, self->now_ms, self->mono_ms);
    arb_broker_send_dispatches (self);
}

static int
s_poll_timeout (arb_broker_t *self)
{
    //  Work left by the dispatch pass (an expired task ended) goes out
    //  with the next commit, at once.
    if (arb_journal_in_txn (self->journal) || zlist_size (self->outbox) || zhashx_size (self->done)
        || zhashx_size (self->events))
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
