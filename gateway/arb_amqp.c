/*  arb_amqp.c — the AMQP server: the listener, the users, the model's
    load from the broker's metadata store, queue deletion across
    connections (and the auto-delete exchanges it leaves unused), the
    queue arguments kept over time (x-expires, the trims of x-max-length
    and x-max-length-bytes),
    and what the broker tells every server (a held task
    stopped, the session up or down); see arb_amqp.h.

    Start-up: when the broker session first comes up, every record under
    "gw.amqp." is read back (META list) into the model. Exclusive queues
    found there belonged to connections of an earlier gateway, all gone:
    they are deleted with their messages, as RabbitMQ deletes a dead
    connection's exclusive queues; non-durable queues and exchanges are
    deleted too, as RabbitMQ's do not survive its restart. Connections
    that reach connection.open before the load is done wait there.
*/

#include "arb_amqp_priv.h"
#include "arb_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define ARB_AMQP_RELOAD_MS 1000  //  a failed load is tried again after this

//  ---------------------------------------------------------------------
//  Users

int
arb_amqp_add_user (arb_amqp_t *self, const char *name, const char *password, const char *vhosts)
{
    if (!*name || !password)
        return -1;
    for (arb_amqp_user_t *u = (arb_amqp_user_t *) zlistx_first (self->users); u;
         u = (arb_amqp_user_t *) zlistx_next (self->users))
        if (streq (u->name, name))
            return -1;
    arb_amqp_user_t *user = (arb_amqp_user_t *) zmalloc (sizeof (arb_amqp_user_t));
    user->name = strdup (name);
    user->password = strdup (password);
    user->vhosts = vhosts && *vhosts && !streq (vhosts, "*") ? strdup (vhosts) : NULL;
    zlistx_add_end (self->users, user);
    return 0;
}

static void
s_user_destructor (void **item)
{
    arb_amqp_user_t *user = (arb_amqp_user_t *) *item;
    if (!user)
        return;
    free (user->name);
    free (user->password);
    free (user->vhosts);
    free (user);
    *item = NULL;
}

static arb_amqp_user_t *
s_user (arb_amqp_t *self, const char *name)
{
    for (arb_amqp_user_t *u = (arb_amqp_user_t *) zlistx_first (self->users); u;
         u = (arb_amqp_user_t *) zlistx_next (self->users))
        if (streq (u->name, name))
            return u;
    return NULL;
}

//  Compares without leaking the length of the common prefix.
static bool
s_same_secret (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    unsigned diff = (unsigned) (la ^ lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned) (a[i] ^ b[lb ? i % lb : 0]);
    return diff == 0;
}

int
arb_amqp_login (arb_amqp_t *self, arb_amqp_conn_t *conn, const char *user, const char *password)
{
    if (zlistx_size (self->users) == 0)
        //  no users configured: guest/guest, as RabbitMQ starts
        return streq (user, "guest") && s_same_secret (password ? password : "", "guest")
                       && conn->loopback
                   ? 0
                   : -1;
    arb_amqp_user_t *u = s_user (self, user);
    if (!u || !s_same_secret (password ? password : "", u->password))
        return -1;
    if (streq (user, "guest") && !conn->loopback)
        return -1;
    return 0;
}

bool
arb_amqp_vhosts_name (const char *vhosts, const char *vhost)
{
    char *list = strdup (vhosts);
    bool named = false;
    char *save = NULL;
    for (char *tok = strtok_r (list, ",", &save); tok && !named;
         tok = strtok_r (NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        named = streq (tok, vhost);
    }
    free (list);
    return named;
}

bool
arb_amqp_user_may (arb_amqp_t *self, const char *user, const char *vhost)
{
    arb_amqp_user_t *u = s_user (self, user);
    return !u || !u->vhosts || arb_amqp_vhosts_name (u->vhosts, vhost);
}

//  ---------------------------------------------------------------------
//  The store

uint32_t
arb_amqp_store (
    arb_amqp_t *self, const char *key, zchunk_t **value_p, arb_gateway_reply_fn *fn, void *arg)
{
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_META);
    arb_meta_body_t *body = arb_msg_meta (request);
    body->key = arb_msg_strdup (request, key);
    if (value_p && *value_p) {
        body->op = "set";
        body->value = arb_msg_bindup (request, zchunk_data (*value_p), zchunk_size (*value_p));
        zchunk_destroy (value_p);
    }
    else
        body->op = "del";
    uint32_t reqid = arb_gateway_send (self->gateway, &request, fn, arg);
    if (!reqid)
        zsys_warning ("amqp: cannot store key=\"%s\" reason=\"%s\"", key,
                      arb_gateway_error (self->gateway));
    return reqid;
}

arb_msg_t *
arb_amqp_count_request (arb_amqp_t *self, const char *broker_queue)
{
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_STATS);
    arb_msg_stats (request)->queue = arb_msg_strdup (request, broker_queue);
    return request;
}

//  The record of broker_queue in a STATS reply, or NULL.
static const arb_queue_info_t *
s_queue_info (arb_msg_t *reply, const char *broker_queue)
{
    if (!reply || arb_msg_type (reply) != ARB_MSG_STATS_REPLY)
        return NULL;
    arb_stats_reply_body_t *stats = arb_msg_stats_reply (reply);
    for (size_t i = 0; i < stats->queues.n; i++)
        if (streq (stats->queues.v[i].name, broker_queue))
            return &stats->queues.v[i];
    return NULL;
}

uint64_t
arb_amqp_ready_count (arb_msg_t *reply, const char *broker_queue)
{
    const arb_queue_info_t *info = s_queue_info (reply, broker_queue);
    return info && info->counts.n > ARB_STATE_READY ? info->counts.v[ARB_STATE_READY] : 0;
}

uint64_t
arb_amqp_ready_bytes (arb_msg_t *reply, const char *broker_queue)
{
    const arb_queue_info_t *info = s_queue_info (reply, broker_queue);
    return info ? info->ready_bytes : 0;
}

static void
s_forget_key (void *arg, const char *key)
{
    arb_amqp_store ((arb_amqp_t *) arg, key, NULL, NULL, NULL);
}

uint32_t
arb_amqp_delete_queue (arb_amqp_t *self,
                       arb_amqp_queue_t *queue,
                       arb_gateway_reply_fn *fn,
                       void *arg)
{
    for (arb_amqp_conn_t *c = (arb_amqp_conn_t *) zlistx_first (self->conns); c;
         c = (arb_amqp_conn_t *) zlistx_next (self->conns))
        if (c->channels && c->vhost == queue->vhost)
            for (size_t i = 1; i <= c->channel_max; i++)
                if (c->channels[i])
                    arb_amqp_channel_queue_gone (c->channels[i], queue);
    char key[600];
    arb_amqp_store (self, arb_amqp_model_queue_key (queue, key, sizeof (key)), NULL, NULL, NULL);
    arb_amqp_model_binding_keys (queue->vhost, queue->name, false, s_forget_key, self);
    //  the broker's queue goes, with every task of it, running ones too
    //  (as RabbitMQ drops a deleted queue's unacked messages), and the
    //  turn's publishes and outcomes first (after the delete the publishes
    //  would make it again in the broker; a trim's drops are done, not
    //  counted as deleted)
    arb_gateway_flush (self->gateway);
    arb_link_flush (self->link);
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, queue->broker);
    arb_msg_queue (request)->op = "delete";
    zsys_debug ("amqp: queue deleted queue=%s", queue->broker);
    arb_amqp_vhost_t *vhost = queue->vhost;
    arb_amqp_model_remove_queue (queue);
    arb_amqp_exchanges_spent (self, vhost);
    return arb_gateway_send (self->gateway, &request, fn, arg);
}

//  Deletes an exchange, its record and those of its bindings both ways.
static void
s_forget_exchange (arb_amqp_t *self, arb_amqp_exchange_t *exchange)
{
    char key[600];
    arb_amqp_store (self, arb_amqp_model_exchange_key (exchange, key, sizeof (key)), NULL, NULL,
                    NULL);
    arb_amqp_model_binding_keys (exchange->vhost, exchange->name, true, s_forget_key, self);
    arb_amqp_model_remove_exchange (exchange);
}

void
arb_amqp_exchanges_spent (arb_amqp_t *self, arb_amqp_vhost_t *vhost)
{
    //  one at a time: a deletion may leave another exchange unused
    arb_amqp_exchange_t *exchange;
    while ((exchange = arb_amqp_model_spent_exchange (vhost))) {
        zsys_debug ("amqp: auto-delete exchange deleted exchange=%s", exchange->name);
        s_forget_exchange (self, exchange);
    }
}

//  ---------------------------------------------------------------------
//  x-expires

static void s_expire_arm (arb_amqp_t *self, uint64_t at);

typedef struct {
    arb_amqp_t *server;
    uint64_t now;
    uint64_t next;  //  the earliest deadline left (0: none)
} s_sweep_t;

static void
s_sweep_queue (void *arg, arb_amqp_queue_t *queue)
{
    s_sweep_t *sweep = (s_sweep_t *) arg;
    if (!queue->settings.expires_ms || queue->consumers)
        return;
    uint64_t deadline = queue->last_used_ms + queue->settings.expires_ms;
    if (deadline <= sweep->now) {
        zsys_info ("amqp: unused queue expired queue=%s", queue->broker);
        arb_amqp_delete_queue (sweep->server, queue, NULL, NULL);
    }
    else if (!sweep->next || deadline < sweep->next)
        sweep->next = deadline;
}

static void
s_on_expire (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_t *self = (arb_amqp_t *) arg;
    self->expire_at = 0;
    if (!arb_amqp_claim_fresh (self)) {
        s_expire_arm (self, (uint64_t) zclock_mono () + 1000);  //  nothing goes meanwhile
        return;
    }
    s_sweep_t sweep = {self, (uint64_t) zclock_mono (), 0};
    arb_amqp_model_each_queue (self->model, s_sweep_queue, &sweep);
    if (sweep.next)
        s_expire_arm (self, sweep.next);
}

//  Arms the sweep for at, unless it is armed sooner.
static void
s_expire_arm (arb_amqp_t *self, uint64_t at)
{
    if (self->expire_at && self->expire_at <= at)
        return;
    uint64_t now = (uint64_t) zclock_mono ();
    arb_reactor_disarm (self->reactor, &self->expire_timer);
    arb_reactor_arm (self->reactor, &self->expire_timer, at > now ? at - now : 0, s_on_expire,
                     self);
    self->expire_at = at;
}

void
arb_amqp_queue_used (arb_amqp_t *self, arb_amqp_queue_t *queue)
{
    queue->last_used_ms = (uint64_t) zclock_mono ();
    if (queue->settings.expires_ms)
        s_expire_arm (self, queue->last_used_ms + queue->settings.expires_ms);
}

//  ---------------------------------------------------------------------
//  x-max-length and x-max-length-bytes

//  A queue's trim under way: count its ready messages and their bytes
//  (STATS), take the ones over a bound from the head (TAKE) and drop or
//  dead-letter them; again while publishes came meanwhile. One per queue
//  at a time, found through queue->trim; the queue is looked up by name
//  at each answer (it may be gone).
//
//  A take never asks for more than the count says must go: those over
//  x-max-length, or, when only the bytes are over, one message (how many
//  bytes each holds is learnt from the DISPATCH, not before). So it never
//  has to give messages back (a release would mark them redelivered), and
//  a queue over its bytes loses one message per count and take: a burst
//  of publishes to a full queue is trimmed one round trip per message.
typedef struct {
    arb_amqp_t *server;       //  borrowed
    arb_amqp_vhost_t *vhost;  //  borrowed (vhosts last as long as the model)
    char *name;               //  owned: the queue's AMQP name
    bool again;               //  the queue grew after the count was asked
    void *handle;             //  in server->trims
    zlistx_t *waiters;        //  owned: arb_amqp_trim_wait_t, borrowed, in order of need
    uint64_t asked;           //  counts asked so far: the last one's number
    uint64_t dropped;         //  messages taken so far
    uint64_t byte_rounds;     //  counts so far that found the bytes over
    uint64_t answered;        //  the number of the last count that came
    uint64_t goal;            //  what it asked of the waiters that needed it:
    uint64_t bytes_from;      //  (arb_amqp_trim_wait_t) for those that join late
    uint32_t take_max;        //  what the take under way asked for
    bool settles;             //  and it leaves the queue within its bounds if all come
} s_trim_t;

//  Rounds that found the bytes over, after a waiter's count did, past
//  which it goes on even though they still are: a byte bound trims one
//  message a round, and publishes that keep coming could keep it over
//  forever.
#define ARB_AMQP_TRIM_PATIENCE 16

#define ARB_AMQP_TRIM_MAX 256  //  messages taken by one TAKE at most

static void
s_trim_destructor (void **item)
{
    s_trim_t *trim = (s_trim_t *) *item;
    if (!trim)
        return;
    //  the server goes: its waiters wait for nothing
    arb_amqp_trim_wait_t *wait;
    while ((wait = (arb_amqp_trim_wait_t *) zlistx_first (trim->waiters)))
        arb_amqp_trim_unwait (wait);
    zlistx_destroy (&trim->waiters);
    free (trim->name);
    free (trim);
    *item = NULL;
}

static arb_amqp_queue_t *
s_trim_queue (s_trim_t *trim)
{
    arb_amqp_queue_t *queue = arb_amqp_model_queue (trim->vhost, trim->name);
    return queue && queue->trim == trim ? queue : NULL;
}

//  A waiter goes on: off the list, then its fn.
static void
s_trim_release (s_trim_t *trim, arb_amqp_trim_wait_t *wait)
{
    arb_amqp_trim_unwait (wait);
    wait->ended = trim;
    wait->fn (wait->arg);
}

//  The trim is done: what waited for it goes on, in order (the trim is
//  still there, for one of them that would unwait another), then it goes.
static void
s_trim_end (s_trim_t *trim)
{
    arb_amqp_queue_t *queue = s_trim_queue (trim);
    if (queue)
        queue->trim = NULL;
    arb_amqp_trim_wait_t *wait;
    while ((wait = (arb_amqp_trim_wait_t *) zlistx_first (trim->waiters)))
        s_trim_release (trim, wait);
    zlistx_delete (trim->server->trims, trim->handle);
}

bool
arb_amqp_trim_wait (arb_amqp_queue_t *queue, arb_amqp_trim_wait_t *wait)
{
    s_trim_t *trim = (s_trim_t *) queue->trim;
    if (!trim || trim == wait->ended)
        return false;
    //  the last count asked covers every publish routed before it; one
    //  routed since (again) needs the next
    wait->need = trim->again ? trim->asked + 1 : trim->asked;
    //  that count came already (its take is under way), or not yet
    wait->goal = wait->need == trim->answered ? trim->goal : UINT64_MAX;
    wait->bytes_from = trim->bytes_from;
    wait->trim = trim;
    wait->handle = zlistx_add_end (trim->waiters, wait);
    return true;
}

//  The count numbered trim->asked came: the waiters that needed it learn
//  how many drops bring the queue within its number bound (over by that
//  many now), and whether its bytes are over.
static void
s_trim_counted (s_trim_t *trim, uint64_t over, bool bytes_over)
{
    trim->answered = trim->asked;
    trim->goal = trim->dropped + over;
    trim->bytes_from = bytes_over ? trim->byte_rounds : UINT64_MAX;
    for (arb_amqp_trim_wait_t *wait = (arb_amqp_trim_wait_t *) zlistx_first (trim->waiters); wait;
         wait = (arb_amqp_trim_wait_t *) zlistx_next (trim->waiters))
        if (wait->need == trim->answered) {
            wait->goal = trim->goal;
            wait->bytes_from = trim->bytes_from;
        }
        else if (wait->need < trim->answered && !bytes_over)
            wait->bytes_from = UINT64_MAX;  //  its bytes are within the bound since
    if (bytes_over)
        trim->byte_rounds++;
}

//  Whether a waiter may go on after a round: the queue is within its
//  bounds (settled) since the count it needed, or the drops that count
//  asked for are done and its bytes were not over, or have stayed over
//  for ARB_AMQP_TRIM_PATIENCE rounds.
static bool
s_trim_served (s_trim_t *trim, arb_amqp_trim_wait_t *wait, bool settled)
{
    if (wait->goal == UINT64_MAX)
        return false;  //  its count has not come (a goal comes with it)
    return settled
           || (trim->dropped >= wait->goal
               && (wait->bytes_from == UINT64_MAX
                   || trim->byte_rounds >= wait->bytes_from + ARB_AMQP_TRIM_PATIENCE));
}

//  A round (a count, and its take if the queue was over) is done: the
//  waiters it served go on, in order. The trim goes on.
static void
s_trim_round (s_trim_t *trim, bool settled)
{
    bool released = true;
    while (released) {
        released = false;
        for (arb_amqp_trim_wait_t *wait = (arb_amqp_trim_wait_t *) zlistx_first (trim->waiters);
             wait; wait = (arb_amqp_trim_wait_t *) zlistx_next (trim->waiters))
            if (s_trim_served (trim, wait, settled)) {
                //  its fn may change the list: walk it again
                s_trim_release (trim, wait);
                released = true;
                break;
            }
    }
}

void
arb_amqp_trim_unwait (arb_amqp_trim_wait_t *wait)
{
    if (!wait->trim)
        return;
    zlistx_delete (((s_trim_t *) wait->trim)->waiters, wait->handle);
    wait->trim = NULL;
    wait->handle = NULL;
}

static void s_on_trim_count (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg);

//  Asks for the queue's ready count, after the turn's publishes.
static void
s_trim_count (s_trim_t *trim, arb_amqp_queue_t *queue)
{
    arb_amqp_t *self = trim->server;
    trim->again = false;
    trim->asked++;
    arb_gateway_flush (self->gateway);
    arb_msg_t *stats = arb_amqp_count_request (self, queue->broker);
    if (!arb_gateway_send (self->gateway, &stats, s_on_trim_count, trim))
        s_trim_end (trim);  //  the next publish tries again
}

static void
s_on_trim_take (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_trim_t *trim = (s_trim_t *) arg;
    arb_amqp_t *self = trim->server;
    arb_amqp_queue_t *queue = s_trim_queue (trim);
    arb_msg_t *reply = *reply_p;
    size_t taken = 0;
    if (arb_msg_type (reply) == ARB_MSG_DISPATCH) {
        arb_dispatch_body_t *body = arb_msg_dispatch (reply);
        taken = body->tasks.n;
        for (size_t i = 0; i < taken; i++) {
            arb_dispatch_task_t *task = &body->tasks.v[i];
            if (!queue
                || arb_amqp_deadletter (self, queue, task->id, task->headers, task->payload,
                                        "maxlen")
                       != 0)
                arb_link_complete (self->link, task->id, NULL);
        }
        if (taken)
            zsys_debug ("amqp: queue over its bound queue=%s dropped=%zu", trim->name, taken);
    }
    trim->dropped += taken;
    //  nothing taken: nothing will be (a paused queue, the broker's
    //  recovery window), and the trim ends
    s_trim_round (trim, (trim->settles && taken == trim->take_max) || !taken);
    //  a waiter may have deleted the queue (queue.delete)
    queue = s_trim_queue (trim);
    //  count again: more may be over (a take is bounded, publishes came);
    //  nothing taken (a paused queue, the broker's recovery window) ends it
    if (queue && (taken || trim->again))
        s_trim_count (trim, queue);
    else
        s_trim_end (trim);
}

static void
s_on_trim_count (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_trim_t *trim = (s_trim_t *) arg;
    arb_amqp_t *self = trim->server;
    arb_amqp_queue_t *queue = s_trim_queue (trim);
    if (!queue || arb_msg_type (*reply_p) != ARB_MSG_STATS_REPLY) {
        s_trim_end (trim);
        return;
    }
    arb_amqp_qargs_t *settings = &queue->settings;
    uint64_t ready = arb_amqp_ready_count (*reply_p, queue->broker);
    uint64_t bytes = arb_amqp_ready_bytes (*reply_p, queue->broker);
    if (arb_amqp_model_is_over (settings, ready, bytes)) {
        uint64_t over = settings->has_max_length && ready > settings->max_length
                            ? ready - settings->max_length
                            : 1;  //  its bytes: the head's size is not known yet
        uint32_t max = over > ARB_AMQP_TRIM_MAX ? ARB_AMQP_TRIM_MAX : (uint32_t) over;
        bool by_number = settings->has_max_length && ready > settings->max_length;
        bool bytes_over =
            arb_amqp_model_is_over (settings, by_number ? settings->max_length : 0, bytes);
        s_trim_counted (trim, by_number ? over : 0, bytes_over);
        //  within the bounds after it if it takes all that is over by
        //  number and the bytes are not over (their take is one message)
        trim->take_max = max;
        trim->settles = by_number && over <= ARB_AMQP_TRIM_MAX && !bytes_over;
        if (arb_gateway_take (self->gateway, queue->broker, max, s_on_trim_take, trim))
            return;
        zsys_warning ("amqp: cannot trim queue=%s reason=\"%s\"", queue->broker,
                      arb_gateway_error (self->gateway));
    }
    else if (trim->again) {
        s_trim_counted (trim, 0, false);
        s_trim_round (trim, true);
        //  a waiter may have deleted the queue (queue.delete)
        if ((queue = s_trim_queue (trim))) {
            s_trim_count (trim, queue);
            return;
        }
    }
    s_trim_end (trim);
}

void
arb_amqp_queue_grew (arb_amqp_t *self, arb_amqp_queue_t *queue)
{
    if (!arb_amqp_model_is_bounded (&queue->settings)
        || queue->settings.overflow != ARB_AMQP_DROP_HEAD || queue->broker_bounds)
        return;
    if (queue->trim) {
        ((s_trim_t *) queue->trim)->again = true;
        return;
    }
    s_trim_t *trim = (s_trim_t *) zmalloc (sizeof (s_trim_t));
    trim->server = self;
    trim->vhost = queue->vhost;
    trim->name = strdup (queue->name);
    trim->waiters = zlistx_new ();
    trim->handle = zlistx_add_end (self->trims, trim);
    queue->trim = trim;
    s_trim_count (trim, queue);
}

//  A queue's bounds on their way to the broker: the queue is found again
//  by name (it may go meanwhile), and fn gets the answer after.
typedef struct {
    arb_amqp_vhost_t *vhost;
    char *name;
    arb_gateway_reply_fn *fn;
    void *arg;
} s_bound_t;

static void
s_on_bound (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    s_bound_t *bound = (s_bound_t *) arg;
    arb_amqp_queue_t *queue = arb_amqp_model_queue (bound->vhost, bound->name);
    if (arb_msg_type (*reply_p) == ARB_MSG_OK) {
        if (queue)
            queue->broker_bounds = true;
    }
    else
        //  an older broker, a full journal: the gateway's trim keeps them
        zsys_warning ("amqp: the broker did not take the bounds of queue=%s (the gateway "
                      "trims it) reason=\"%s\"",
                      bound->name,
                      arb_msg_type (*reply_p) == ARB_MSG_ERROR ? arb_msg_error (*reply_p)->reason
                                                               : "an unexpected answer");
    if (bound->fn)
        bound->fn (gateway, reply_p, bound->arg);
    free (bound->name);
    free (bound);
}

uint32_t
arb_amqp_bound_queue (arb_amqp_t *self,
                      arb_amqp_queue_t *queue,
                      arb_gateway_reply_fn *fn,
                      void *arg)
{
    const arb_amqp_qargs_t *settings = &queue->settings;
    if (!arb_amqp_model_broker_bounds (settings))
        return 0;
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_QUEUE);
    arb_queue_body_t *body = arb_msg_queue (request);
    body->queue = arb_msg_strdup (request, queue->broker);
    body->op = "set";
    body->max_ready = settings->has_max_length ? settings->max_length : 0;
    body->max_ready_bytes = settings->has_max_length_bytes ? settings->max_length_bytes : 0;
    body->overflow = settings->overflow == ARB_AMQP_DROP_HEAD ? "drop-head" : "reject";
    s_bound_t *bound = (s_bound_t *) zmalloc (sizeof (s_bound_t));
    *bound = (s_bound_t){queue->vhost, strdup (queue->name), fn, arg};
    uint32_t reqid = arb_gateway_send (self->gateway, &request, s_on_bound, bound);
    if (!reqid) {
        free (bound->name);
        free (bound);
    }
    return reqid;
}

//  A queue whose bounds go to the broker again: found again by name.
typedef struct {
    arb_amqp_vhost_t *vhost;
    char *name;
} s_rebound_t;

static void
s_rebound_destructor (void **item)
{
    s_rebound_t *rebound = (s_rebound_t *) *item;
    free (rebound->name);
    free (rebound);
    *item = NULL;
}

static void
s_on_rebound (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_t *self = (arb_amqp_t *) arg;
    arb_link_flush (self->link);  //  the releases first
    for (s_rebound_t *rebound = (s_rebound_t *) zlistx_first (self->rebounds); rebound;
         rebound = (s_rebound_t *) zlistx_next (self->rebounds)) {
        arb_amqp_queue_t *queue = arb_amqp_model_queue (rebound->vhost, rebound->name);
        if (queue && queue->rebound_due) {
            queue->rebound_due = false;
            arb_amqp_bound_queue (self, queue, NULL, NULL);
        }
    }
    zlistx_purge (self->rebounds);
}

void
arb_amqp_queue_requeued (arb_amqp_t *self, arb_amqp_queue_t *queue)
{
    if (!queue->broker_bounds || queue->settings.overflow != ARB_AMQP_DROP_HEAD) {
        arb_amqp_queue_grew (self, queue);
        return;
    }
    if (queue->rebound_due)
        return;
    queue->rebound_due = true;
    s_rebound_t *rebound = (s_rebound_t *) zmalloc (sizeof (s_rebound_t));
    *rebound = (s_rebound_t){queue->vhost, strdup (queue->name)};
    zlistx_add_end (self->rebounds, rebound);
    if (!self->rebound_timer.armed)
        arb_reactor_arm (self->reactor, &self->rebound_timer, 0, s_on_rebound, self);
}

//  ---------------------------------------------------------------------
//  Loading the model


static void
s_on_reload (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_load ((arb_amqp_t *) arg);
}

//  A queue read back: an exclusive one's connection is gone, a
//  non-durable one does not outlive the gateway; an expiring one counts
//  its time from now.
static void
s_loaded_queue (void *arg, arb_amqp_queue_t *queue)
{
    arb_amqp_t *self = (arb_amqp_t *) arg;
    if (queue->exclusive) {
        zsys_info ("amqp: deleting exclusive queue of a connection gone queue=%s", queue->broker);
        arb_amqp_delete_queue (self, queue, NULL, NULL);
    }
    else if (!queue->durable) {
        //  as RabbitMQ deletes its transient queues when it starts again
        zsys_info ("amqp: deleting non-durable queue queue=%s", queue->broker);
        arb_amqp_delete_queue (self, queue, NULL, NULL);
    }
    else {
        arb_amqp_queue_used (self, queue);
        //  a queue declared by a gateway from before the broker's bounds
        arb_amqp_bound_queue (self, queue, NULL, NULL);
        //  messages stored before the restart may have expired since
        arb_amqp_queue_expiry (self, queue, (uint64_t) zclock_time ());
    }
}

//  An exchange read back: a non-durable one does not outlive the gateway
//  either, as RabbitMQ deletes its transient exchanges when it starts
//  again (with their bindings, both ways).
static void
s_loaded_exchange (void *arg, arb_amqp_exchange_t *exchange)
{
    arb_amqp_t *self = (arb_amqp_t *) arg;
    if (exchange->durable || exchange->builtin)
        return;
    zsys_info ("amqp: deleting non-durable exchange exchange=%s vhost=%s", exchange->name,
               arb_amqp_vhost_name (exchange->vhost));
    arb_amqp_vhost_t *vhost = exchange->vhost;
    s_forget_exchange (self, exchange);
    arb_amqp_exchanges_spent (self, vhost);
}

static void
s_on_loaded (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_amqp_t *self = (arb_amqp_t *) arg;
    arb_msg_t *reply = *reply_p;
    self->loading = false;
    if (arb_msg_type (reply) != ARB_MSG_META_REPLY) {
        zsys_warning ("amqp: cannot load exchanges and queues reason=\"%s\"",
                      arb_msg_type (reply) == ARB_MSG_ERROR ? arb_msg_error (reply)->reason : "?");
        arb_reactor_arm (self->reactor, &self->load_timer, ARB_AMQP_RELOAD_MS, s_on_reload, self);
        return;
    }
    arb_meta_reply_body_t *body = arb_msg_meta_reply (reply);
    for (size_t i = 0; i < body->items.n; i++)
        if (arb_amqp_model_load (self->model, body->items.v[i].key, body->items.v[i].value.data,
                                 body->items.v[i].value.size))
            self->load_bad++;
    self->load_records += body->items.n;
    if (body->more && body->items.n) {
        //  the next page, after the last key of this one
        zstr_free (&self->load_after);
        self->load_after = strdup (body->items.v[body->items.n - 1].key);
        arb_amqp_load (self);
        return;
    }
    size_t dropped = arb_amqp_model_load_done (self->model);
    arb_amqp_model_each_queue (self->model, s_loaded_queue, self);
    arb_amqp_model_each_exchange (self->model, s_loaded_exchange, self);
    self->loaded = true;
    zstr_free (&self->load_after);
    zsys_info ("amqp: loaded records=%zu bad=%zu dangling_bindings=%zu", self->load_records,
               self->load_bad, dropped);
    for (arb_amqp_conn_t *c = (arb_amqp_conn_t *) zlistx_first (self->conns); c;
         c = (arb_amqp_conn_t *) zlistx_next (self->conns))
        arb_amqp_conn_loaded (c);
}

void
arb_amqp_load (arb_amqp_t *self)
{
    if (self->loaded || self->loading || !self->claim[0] || !arb_gateway_is_up (self->gateway))
        return;
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_META);
    arb_msg_meta (request)->op = "list";
    arb_msg_meta (request)->key = ARB_AMQP_META_PREFIX;
    if (self->load_after)
        arb_msg_meta (request)->after = arb_msg_strdup (request, self->load_after);
    if (arb_gateway_send (self->gateway, &request, s_on_loaded, self))
        self->loading = true;
    else
        arb_reactor_arm (self->reactor, &self->load_timer, ARB_AMQP_RELOAD_MS, s_on_reload, self);
}

//  ---------------------------------------------------------------------
//  What the broker tells

static void
s_on_state (void *arg, bool up)
{
    //  the claim first (renewed at once after a restart), then the load
    if (up)
        arb_amqp_claim ((arb_amqp_t *) arg);
}

//  The link to the broker has room again: the publishers held read on.
static void
s_on_room (void *arg)
{
    arb_amqp_t *self = (arb_amqp_t *) arg;
    for (arb_amqp_conn_t *conn = (arb_amqp_conn_t *) zlistx_first (self->conns); conn;
         conn = (arb_amqp_conn_t *) zlistx_next (self->conns))
        arb_amqp_conn_unblock (conn);
}

static void
s_on_stop (void *arg, uint64_t id, int reason)
{
    arb_amqp_t *self = (arb_amqp_t *) arg;
    arb_amqp_delivery_t *delivery = (arb_amqp_delivery_t *) arb_idmap_lookup (self->held, id);
    if (!delivery)
        return;
    zsys_debug ("amqp: held task stopped task=%" PRIu64 " reason=%d", id, reason);
    arb_amqp_channel_stopped (delivery->channel, delivery);
}

//  ---------------------------------------------------------------------
//  Connections

typedef struct {
    arb_amqp_t *server;
    uint64_t owner;
} s_owner_t;

static void
s_delete_owned (void *arg, arb_amqp_queue_t *queue)
{
    s_owner_t *owner = (s_owner_t *) arg;
    if (queue->exclusive && queue->owner == owner->owner)
        arb_amqp_delete_queue (owner->server, queue, NULL, NULL);
}

void
arb_amqp_conn_gone (arb_amqp_t *self, arb_amqp_conn_t *conn)
{
    //  its exclusive queues go with it; not when the claim passed to
    //  another gateway, which deleted them at its load, and whose
    //  queues of those names would go instead
    s_owner_t owner = {self, conn->number};
    if (!self->stepped_down)
        arb_amqp_model_each_queue (self->model, s_delete_owned, &owner);
    if (conn->handle) {
        zlistx_delete (self->conns, conn->handle);
        conn->handle = NULL;
        arb_gateway_connected (self->gateway, ARB_GATEWAY_AMQP, -1);
        if (conn->admitted)
            self->admitted--;
    }
}

//  The connections open: admitted at connection.open and not on their
//  way out. The count kept includes those whose end is not handled yet (a
//  client that closed, then connected again in the same turn), so at the
//  limit each connection is looked at (a peek of its socket at most):
//  exact, and only there.
static size_t
s_open (arb_amqp_t *self, size_t limit)
{
    if (self->admitted < limit)
        return self->admitted;
    size_t open = 0;
    for (arb_amqp_conn_t *c = (arb_amqp_conn_t *) zlistx_first (self->conns); c;
         c = (arb_amqp_conn_t *) zlistx_next (self->conns))
        if (c->admitted && !arb_amqp_conn_is_gone (c))
            open++;
    return open;
}

bool
arb_amqp_is_full (arb_amqp_t *self)
{
    return s_open (self, self->config.max_connections) >= self->config.max_connections;
}

void
arb_amqp_admit (arb_amqp_t *self, arb_amqp_conn_t *conn)
{
    assert (!conn->admitted);
    conn->admitted = true;
    self->admitted++;
}

//  A client connects. The limit is checked at connection.open, as
//  RabbitMQ checks its connection_max, so that a client past it is told
//  why (530); but the connections in their handshakes or closing (a
//  client refused that never answers the Close) are bounded too: past
//  ARB_AMQP_REFUSING_MAX more than the limit, a connection is closed
//  unheard as it comes. Every connection that holds a descriptor counts
//  here, so that a flood of them holds no more than that.
static void
s_on_client (int fd, void *arg)
{
    arb_amqp_t *self = (arb_amqp_t *) arg;
    size_t held = zlistx_size (self->conns);
    if (held >= self->config.max_connections + ARB_AMQP_REFUSING_MAX) {
        char peer[64];
        bool loopback;
        arb_amqp_peer_name (fd, peer, sizeof (peer), &loopback);
        if (arb_loglimit_take (&self->refusals, arb_reactor_now (self->reactor)))
            zsys_warning ("amqp: connection closed at once: %zu connections, %zu of them open "
                          "(amqp-max-connections %zu), the others in their handshakes or "
                          "closing peer=%s",
                          held, s_open (self, 0), self->config.max_connections, peer);
        close (fd);
        return;
    }
    arb_amqp_conn_t *conn = arb_amqp_conn_new (self, fd);
    if (conn) {
        conn->handle = zlistx_add_end (self->conns, conn);
        arb_gateway_connected (self->gateway, ARB_GATEWAY_AMQP, 1);
    }
}

//  Adds the comma-separated vhosts (NULL or empty: "/") to model. 0, or
//  -1 after logging each bad one.
static int
s_add_vhosts (arb_amqp_model_t *model, const char *list)
{
    char *vhosts = strdup (list && *list ? list : "/");
    char *rest = vhosts;
    int rc = 0;
    //  strsep, not strtok: an empty entry ("a,,b", ",") is refused, not
    //  skipped
    for (char *tok = strsep (&rest, ","); tok; tok = strsep (&rest, ",")) {
        while (*tok == ' ')
            tok++;
        if (arb_amqp_model_add_vhost (model, tok) != 0) {
            zsys_error ("amqp: bad vhost '%s' (empty, repeated, or holding '|')", tok);
            rc = -1;
        }
    }
    free (vhosts);
    return rc;
}

int
arb_amqp_config_check (const arb_amqp_config_t *config)
{
    //  the vhosts go into a model of their own, which is all the check holds
    arb_amqp_model_t *model = arb_amqp_model_new ();
    int rc = s_add_vhosts (model, config->vhosts);
    arb_amqp_model_destroy (&model);
    return rc == 0 ? arb_listener_check ("amqp", config->listen) : -1;
}

arb_amqp_t *
arb_amqp_new (arb_gateway_t *gateway, const arb_amqp_config_t *config)
{
    arb_amqp_t *self = (arb_amqp_t *) zmalloc (sizeof (arb_amqp_t));
    self->gateway = gateway;
    self->reactor = arb_gateway_reactor (gateway);
    self->link = arb_gateway_link (gateway);
    self->config = *config;
    if (self->config.frame_max < ARB_AMQP_FRAME_MIN)
        self->config.frame_max = ARB_AMQP_FRAME_MIN;
    if (!self->config.channel_max)
        self->config.channel_max = 2047;
    self->refusals = (arb_loglimit_t){
        .module = "amqp", .what = "refused connections", .max = ARB_AMQP_REFUSALS_LOGGED};
    self->failures = (arb_loglimit_t){.module = "amqp",
                                      .what = "connection errors and refused logins",
                                      .max = ARB_AMQP_FAILURES_LOGGED};
    self->model = arb_amqp_model_new ();
    self->users = zlistx_new ();
    zlistx_set_destructor (self->users, s_user_destructor);
    self->conns = zlistx_new ();
    self->trims = zlistx_new ();
    zlistx_set_destructor (self->trims, s_trim_destructor);
    self->rebounds = zlistx_new ();
    zlistx_set_destructor (self->rebounds, s_rebound_destructor);
    arb_amqp_deadletters_init (self);
    arb_amqp_admit_init (self);
    self->held = arb_idmap_new ();
    self->replies = zhashx_new ();
    if (s_add_vhosts (self->model, config->vhosts) == 0)
        self->listener =
            arb_listener_new (self->reactor, "amqp", config->listen, s_on_client, self);
    if (!self->listener) {
        arb_amqp_destroy (&self);
        return NULL;
    }
    arb_gateway_listener_t listener = {
        .stop = s_on_stop, .state = s_on_state, .room = s_on_room, .arg = self};
    arb_gateway_listen (gateway, &listener);
    arb_amqp_claim (self);
    zsys_info ("amqp: listening on %s max_connections=%zu", config->listen,
               self->config.max_connections);
    return self;
}

void
arb_amqp_destroy (arb_amqp_t **self_p)
{
    arb_amqp_t *self = *self_p;
    if (!self)
        return;
    arb_listener_destroy (&self->listener);
    arb_reactor_disarm (self->reactor, &self->load_timer);
    arb_reactor_disarm (self->reactor, &self->expire_timer);
    zstr_free (&self->load_after);
    arb_amqp_conn_t *conn;
    while ((conn = (arb_amqp_conn_t *) zlistx_first (self->conns))) {
        arb_amqp_conn_fail (conn, AMQP_CONNECTION_FORCED,
                            "CONNECTION_FORCED - broker forced connection closure with reason "
                            "'shutdown'",
                            0);
        if (conn->stream)
            arb_stream_flush (conn->stream);
        arb_amqp_conn_close (conn);
    }
    //  after its connections: nothing of theirs is served once it is given up
    arb_amqp_claim_release (self);
    arb_reactor_disarm (self->reactor, &self->claim_timer);
    zlistx_destroy (&self->conns);
    arb_amqp_targets_fini (&self->route);
    zlistx_destroy (&self->trims);
    arb_reactor_disarm (self->reactor, &self->rebound_timer);
    zlistx_destroy (&self->rebounds);
    arb_amqp_admit_fini (self);
    arb_amqp_deadletters_fini (self);
    zlistx_destroy (&self->users);
    arb_idmap_destroy (&self->held);
    zhashx_destroy (&self->replies);
    arb_amqp_model_destroy (&self->model);
    free (self);
    *self_p = NULL;
}

int
arb_amqp_port (arb_amqp_t *self)
{
    return arb_listener_port (self->listener);
}

char *
arb_amqp_server_name (const char *prefix)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen (prefix);
    char *name = (char *) zmalloc (len + 22 + 1);
    memcpy (name, prefix, len);
    for (int i = 0; i < 22; i++)
        name[len + i] = alphabet[randof (64)];
    return name;
}
