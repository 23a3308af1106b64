/*  arb_outbox.c — what the broker sends, held until the turn's commit;
    see arb_outbox.h for the design. */

#include "arb_outbox.h"
#include "arb_loglimit.h"
#include "arb_bytes.h"
#include "arb_queue.h"
#include "arb_session.h"
#include "arb_vec.h"

#include <stdarg.h>

#define ARB_REFUSALS_LOGGED  20     //  refusals logged per second; the rest are counted
#define ARB_OUTBOX_BATCH     1000   //  records per DONE or EVENT message at most
#define ARB_SUBSCRIBER_STALL 60000  //  ms a subscriber may refuse every EVENT before it goes

//  An event subscriber: a routing id, an optional queue filter, and its
//  EVENT messages of this turn.
typedef struct {
    zframe_t *identity;   //  owned
    char *queue;          //  owned; NULL: every queue
    arb_msg_t *pending;   //  owned EVENT being filled, or NULL
    zlist_t *full;        //  owned EVENT messages full already (arb_msg_t *), in order
    uint64_t dropped;     //  events it has not been sent since its last EVENT that went
    uint64_t stalled_ms;  //  Unix ms its EVENTs began to be refused (queue full); 0 if not
} s_subscriber_t;

//  A DONE being filled for one peer, and the bytes of results in it.
typedef struct {
    arb_msg_t *msg;  //  owned
    size_t bytes;
} s_done_t;

//  A reply with tasks that the socket refused: whose, and which tasks.
typedef struct {
    zframe_t *identity;  //  owned
    arb_held_t *leases;  //  owned array of n
    size_t n;
} s_undelivered_t;

//  A task end a dropped DONE would have told: whose watch, which task.
typedef struct {
    zframe_t *identity;  //  owned
    uint64_t id;
} s_end_t;

struct _arb_outbox_t {
    arb_wire_t *wire;          //  borrowed: the loop's connections
    const arb_clock_t *clock;  //  borrowed: the turn's clock
    //  Sent after the turn's commit, in this order:
    arb_msg_t **replies;  //  owned replies, in order: an array used again each
    size_t reply_count;   //  turn, not a list node a reply
    size_t reply_capacity;
    zlist_t *done_full;       //  owned DONE messages full already (arb_msg_t *), in order
    zhashx_t *done;           //  routing id (a copy) -> owned s_done_t being filled
    s_done_t *last_done;      //  in done: the one filled last, or NULL
    zlist_t *subscribers;     //  owned event subscribers (s_subscriber_t *), with their EVENTs
    zlist_t *undelivered;     //  owned s_undelivered_t of the last flush
    zlist_t *dropped_ends;    //  owned s_end_t of the DONEs the last refuse_all dropped
    arb_loglimit_t refusals;  //  the refusals logged
};

//  The DONEs being filled are keyed by the routing id frame itself: a hex
//  string of it for each task that ended cost more than the rest of the
//  DONE's bookkeeping.
static size_t
s_frame_hash (const void *key)
{
    zframe_t *frame = (zframe_t *) key;
    return (size_t) arb_bytes_fnv (ARB_FNV_BASIS, zframe_data (frame), zframe_size (frame));
}

static int
s_frame_compare (const void *a, const void *b)
{
    zframe_t *x = (zframe_t *) a, *y = (zframe_t *) b;
    if (zframe_size (x) != zframe_size (y))
        return zframe_size (x) < zframe_size (y) ? -1 : 1;
    return memcmp (zframe_data (x), zframe_data (y), zframe_size (x));
}

static void *
s_frame_copy (const void *key)
{
    return zframe_dup ((zframe_t *) key);
}

static void
s_frame_free (void **key_p)
{
    zframe_destroy ((zframe_t **) key_p);
}

arb_outbox_t *
arb_outbox_new (arb_wire_t *wire, const arb_clock_t *clock)
{
    arb_outbox_t *self = (arb_outbox_t *) zmalloc (sizeof (arb_outbox_t));
    self->wire = wire;
    self->clock = clock;
    self->refusals =
        (arb_loglimit_t){.module = "broker", .what = "refusals", .max = ARB_REFUSALS_LOGGED};
    self->done_full = zlist_new ();
    self->done = zhashx_new ();
    zhashx_set_key_hasher (self->done, s_frame_hash);
    zhashx_set_key_comparator (self->done, s_frame_compare);
    zhashx_set_key_duplicator (self->done, s_frame_copy);
    zhashx_set_key_destructor (self->done, s_frame_free);
    self->subscribers = zlist_new ();
    self->undelivered = zlist_new ();
    self->dropped_ends = zlist_new ();
    return self;
}

//  Destroys the messages of a list.
static void
s_drop_list (zlist_t *list)
{
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlist_pop (list)))
        arb_msg_destroy (&msg);
}

//  Drops a subscriber's EVENTs of this turn, unsent.
static void
s_subscriber_drop (s_subscriber_t *sub)
{
    arb_msg_destroy (&sub->pending);
    s_drop_list (sub->full);
}

static void
s_subscriber_destroy (s_subscriber_t **sub_p)
{
    s_subscriber_drop (*sub_p);
    zlist_destroy (&(*sub_p)->full);
    zframe_destroy (&(*sub_p)->identity);
    free ((*sub_p)->queue);
    free (*sub_p);
    *sub_p = NULL;
}

void
arb_outbox_destroy (arb_outbox_t **self_p)
{
    assert (self_p);
    arb_outbox_t *self = *self_p;
    if (!self)
        return;
    arb_outbox_abandon (self);
    free (self->replies);
    zlist_destroy (&self->done_full);
    zhashx_destroy (&self->done);
    s_subscriber_t *sub;
    while ((sub = (s_subscriber_t *) zlist_pop (self->subscribers)))
        s_subscriber_destroy (&sub);
    zlist_destroy (&self->subscribers);
    zframe_t *identity;
    arb_held_t *leases;
    size_t n;
    while (arb_outbox_next_undelivered (self, &identity, &leases, &n)) {
        zframe_destroy (&identity);
        free (leases);
    }
    zlist_destroy (&self->undelivered);
    uint64_t id;
    while (arb_outbox_next_dropped_end (self, &identity, &id))
        zframe_destroy (&identity);
    zlist_destroy (&self->dropped_ends);
    free (self);
    *self_p = NULL;
}

void
arb_outbox_reply (arb_outbox_t *self, arb_msg_t **msg_p)
{
    self->replies = (arb_msg_t **) arb_array_grow (self->replies, self->reply_count,
                                                   &self->reply_capacity, sizeof (arb_msg_t *));
    self->replies[self->reply_count++] = *msg_p;
    *msg_p = NULL;
}

void
arb_outbox_log_refusal (arb_outbox_t *self,
                        zframe_t *identity,
                        const char *type,
                        const char *reason)
{
    if (!arb_loglimit_take (&self->refusals, self->clock->now_ms))
        return;
    char *peer = identity ? zframe_strhex (identity) : strdup ("?");
    zsys_warning ("broker: refused peer=%s type=%s reason=\"%s\"", peer, type, reason);
    free (peer);
}

void
arb_outbox_refuse (arb_outbox_t *self, arb_msg_t *request, arb_err_t code, const char *fmt, ...)
{
    char reason[ARB_TEXT_MAX];
    va_list args;
    va_start (args, fmt);
    vsnprintf (reason, sizeof (reason), fmt, args);
    va_end (args);
    const char *type = arb_msg_type_name (arb_msg_type (request));
    arb_outbox_log_refusal (self, arb_msg_routing_id (request), type ? type : "?", reason);
    arb_msg_t *reply = arb_msg_new_error (request, code, "%s", reason);
    arb_outbox_reply (self, &reply);
}

//  Whether msg goes to the peer of routing id identity.
static bool
s_is_peer (arb_msg_t *msg, zframe_t *identity)
{
    size_t size;
    const uint8_t *peer = arb_msg_peer (msg, &size);
    return size == zframe_size (identity) && memcmp (peer, zframe_data (identity), size) == 0;
}

void
arb_outbox_done (arb_outbox_t *self,
                 zframe_t *identity,
                 uint64_t id,
                 int state,
                 uint32_t attempts,
                 const char *error,
                 zframe_t **result_p)
{
    //  most of a turn's ends go to one peer (a producer that watches what
    //  it submits): its DONE is looked for first, without the table
    s_done_t *pending = self->last_done;
    if (!pending || !s_is_peer (pending->msg, identity))
        pending = (s_done_t *) zhashx_lookup (self->done, identity);
    if (!pending) {
        pending = (s_done_t *) zmalloc (sizeof (s_done_t));
        pending->msg = arb_msg_new (ARB_MSG_DONE, 0);
        arb_msg_set_routing_id (pending->msg, identity);
        zhashx_insert (self->done, identity, pending);
    }
    arb_done_body_t *body = arb_msg_done (pending->msg);
    arb_done_task_t *done =
        (arb_done_task_t *) arb_msg_grow (pending->msg, &body->tasks, sizeof (*done), 1);
    done->id = id;
    done->state = (uint32_t) state;
    done->attempts = attempts;
    done->error = arb_msg_strdup (pending->msg, error);
    done->result = result_p && *result_p ? *result_p : zframe_new_empty ();
    if (result_p)
        *result_p = NULL;
    pending->bytes += zframe_size (done->result);
    self->last_done = pending;
    //  a full DONE waits its turn whole; the next records start another
    if (body->tasks.n >= ARB_OUTBOX_BATCH || pending->bytes >= ARB_REPLY_BYTES) {
        zlist_append (self->done_full, pending->msg);
        free (pending);
        zhashx_delete (self->done, identity);
        self->last_done = NULL;
    }
}

bool
arb_outbox_has_subscribers (arb_outbox_t *self)
{
    return zlist_size (self->subscribers) > 0;
}

void
arb_outbox_event (arb_outbox_t *self, arb_task_t *task, int state, const char *error)
{
    if (zlist_size (self->subscribers) == 0)
        return;
    const char *queue = arb_queue_name (task->queue);
    for (s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers); sub;
         sub = (s_subscriber_t *) zlist_next (self->subscribers)) {
        if (sub->queue && !streq (sub->queue, queue))
            continue;
        if (sub->pending && arb_msg_event (sub->pending)->events.n >= ARB_OUTBOX_BATCH) {
            zlist_append (sub->full, sub->pending);
            sub->pending = NULL;
        }
        if (!sub->pending) {
            sub->pending = arb_msg_new (ARB_MSG_EVENT, 0);
            arb_msg_set_routing_id (sub->pending, sub->identity);
        }
        arb_msg_t *msg = sub->pending;
        arb_event_body_t *body = arb_msg_event (msg);
        arb_event_info_t *event =
            (arb_event_info_t *) arb_msg_grow (msg, &body->events, sizeof (*event), 1);
        event->id = task->id;
        event->at_ms = self->clock->now_ms;
        event->queue = arb_msg_strdup (msg, queue);
        event->name = arb_msg_strdup (msg, task->name);
        event->state = (uint32_t) state;
        event->attempt = task->attempts;
        event->worker = arb_task_ext (task)->session
                            ? arb_msg_strdup (msg, arb_session_name (arb_task_ext (task)->session))
                            : NULL;
        event->error = arb_msg_strdup (msg, error);
    }
}

static s_subscriber_t *
s_subscriber (arb_outbox_t *self, zframe_t *identity)
{
    s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers);
    while (sub && !zframe_eq (sub->identity, identity))
        sub = (s_subscriber_t *) zlist_next (self->subscribers);
    return sub;
}

bool
arb_outbox_is_subscribed (arb_outbox_t *self, zframe_t *identity)
{
    return s_subscriber (self, identity) != NULL;
}

void
arb_outbox_subscribe (arb_outbox_t *self, zframe_t *identity, const char *queue, bool on)
{
    s_subscriber_t *sub = s_subscriber (self, identity);
    if (sub && !on) {
        zlist_remove (self->subscribers, sub);
        s_subscriber_destroy (&sub);
    }
    if (!on)
        return;
    if (!sub) {
        sub = (s_subscriber_t *) zmalloc (sizeof (s_subscriber_t));
        sub->identity = zframe_dup (identity);
        sub->full = zlist_new ();
        zlist_append (self->subscribers, sub);
    }
    free (sub->queue);  //  a new filter replaces the old
    sub->queue = queue ? strdup (queue) : NULL;
}

bool
arb_outbox_unwritten (arb_outbox_t *self, zframe_t *identity, uint64_t since_ms)
{
    return arb_wire_unwritten (self->wire, zframe_data (identity), zframe_size (identity),
                               since_ms);
}

int
arb_outbox_send (arb_outbox_t *self, arb_msg_t **msg_p)
{
    //  A ROUTER drops what it cannot deliver (peer gone, or over its
    //  high-water mark); the broker never blocks on a slow peer.
    return arb_wire_send (self->wire, msg_p);
}

//  Sends a reply; one with tasks in it that the socket refuses is noted,
//  so that the loop gives its tasks back.
static void
s_send_reply (arb_outbox_t *self, arb_msg_t **msg_p)
{
    arb_msg_t *msg = *msg_p;
    if (arb_msg_type (msg) != ARB_MSG_DISPATCH || arb_msg_dispatch (msg)->tasks.n == 0) {
        arb_outbox_send (self, msg_p);
        return;
    }
    arb_dispatch_body_t *body = arb_msg_dispatch (msg);
    s_undelivered_t *undelivered = (s_undelivered_t *) zmalloc (sizeof (s_undelivered_t));
    size_t peer_size;
    const uint8_t *peer = arb_msg_peer (msg, &peer_size);
    undelivered->identity = zframe_new (peer, peer_size);
    undelivered->n = body->tasks.n;
    undelivered->leases = (arb_held_t *) zmalloc (body->tasks.n * sizeof (arb_held_t));
    for (size_t i = 0; i < body->tasks.n; i++)
        undelivered->leases[i] =
            (arb_held_t){.id = body->tasks.v[i].id, .lease = body->tasks.v[i].lease};
    if (arb_outbox_send (self, msg_p) == 0) {
        zframe_destroy (&undelivered->identity);
        free (undelivered->leases);
        free (undelivered);
    }
    else
        zlist_append (self->undelivered, undelivered);
}

bool
arb_outbox_next_undelivered (arb_outbox_t *self,
                             zframe_t **identity_p,
                             arb_held_t **leases_p,
                             size_t *n)
{
    s_undelivered_t *undelivered = (s_undelivered_t *) zlist_pop (self->undelivered);
    if (!undelivered)
        return false;
    *identity_p = undelivered->identity;
    *leases_p = undelivered->leases;
    *n = undelivered->n;
    free (undelivered);
    return true;
}

bool
arb_outbox_is_empty (arb_outbox_t *self)
{
    if (self->reply_count || zlist_size (self->done_full) || zhashx_size (self->done))
        return false;
    for (s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers); sub;
         sub = (s_subscriber_t *) zlist_next (self->subscribers))
        if (sub->pending || zlist_size (sub->full))
            return false;
    return true;
}

//  Sends one EVENT to its subscriber, saying how many events it missed
//  before it. Returns false if the subscriber is gone: the ROUTER knows no
//  such peer, or has refused its EVENTs (its queue full) for
//  ARB_SUBSCRIBER_STALL ms; else its refused events count as dropped.
static bool
s_send_event (arb_outbox_t *self, s_subscriber_t *sub, arb_msg_t **msg_p)
{
    arb_event_body_t *body = arb_msg_event (*msg_p);
    uint64_t count = body->events.n;
    body->dropped = sub->dropped;
    if (arb_wire_send (self->wire, msg_p) == 0) {
        sub->dropped = 0;
        sub->stalled_ms = 0;
        return true;
    }
    if (errno == EHOSTUNREACH)
        return false;
    sub->dropped += count;
    if (!sub->stalled_ms)
        sub->stalled_ms = self->clock->now_ms;
    return self->clock->now_ms - sub->stalled_ms < ARB_SUBSCRIBER_STALL;
}

//  Sends every subscriber its EVENTs of the turn, and forgets those gone.
static void
s_flush_events (arb_outbox_t *self)
{
    zlist_t *gone = zlist_new ();
    for (s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers); sub;
         sub = (s_subscriber_t *) zlist_next (self->subscribers)) {
        if (sub->pending)
            zlist_append (sub->full, sub->pending);
        sub->pending = NULL;
        arb_msg_t *msg;
        bool alive = true;
        while (alive && (msg = (arb_msg_t *) zlist_pop (sub->full)))
            alive = s_send_event (self, sub, &msg);
        if (!alive)
            zlist_append (gone, sub);
    }
    s_subscriber_t *sub;
    while ((sub = (s_subscriber_t *) zlist_pop (gone))) {
        char *peer = zframe_strhex (sub->identity);
        zsys_notice ("outbox: event subscriber forgotten peer=%s reason=%s", peer,
                     sub->stalled_ms ? "stalled" : "gone");
        free (peer);
        zlist_remove (self->subscribers, sub);
        s_subscriber_destroy (&sub);
    }
    zlist_destroy (&gone);
}

void
arb_outbox_flush (arb_outbox_t *self)
{
    for (size_t i = 0; i < self->reply_count; i++)
        s_send_reply (self, &self->replies[i]);
    self->reply_count = 0;
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlist_pop (self->done_full)))
        arb_outbox_send (self, &msg);
    for (s_done_t *pending = (s_done_t *) zhashx_first (self->done); pending;
         pending = (s_done_t *) zhashx_next (self->done)) {
        arb_outbox_send (self, &pending->msg);
        free (pending);
    }
    zhashx_purge (self->done);
    self->last_done = NULL;
    s_flush_events (self);
}

void
arb_outbox_abandon (arb_outbox_t *self)
{
    for (size_t i = 0; i < self->reply_count; i++)
        arb_msg_destroy (&self->replies[i]);
    self->reply_count = 0;
    s_drop_list (self->done_full);
    for (s_done_t *pending = (s_done_t *) zhashx_first (self->done); pending;
         pending = (s_done_t *) zhashx_next (self->done)) {
        arb_msg_destroy (&pending->msg);
        free (pending);
    }
    zhashx_purge (self->done);
    self->last_done = NULL;
    for (s_subscriber_t *sub = (s_subscriber_t *) zlist_first (self->subscribers); sub;
         sub = (s_subscriber_t *) zlist_next (self->subscribers))
        s_subscriber_drop (sub);
}

//  Keeps the ends a DONE tells, before it is dropped.
static void
s_keep_ends (arb_outbox_t *self, arb_msg_t *done)
{
    size_t size;
    const uint8_t *peer = arb_msg_peer (done, &size);
    arb_done_body_t *body = arb_msg_done (done);
    for (size_t i = 0; i < body->tasks.n; i++) {
        s_end_t *end = (s_end_t *) zmalloc (sizeof (s_end_t));
        end->identity = zframe_new (peer, size);
        end->id = body->tasks.v[i].id;
        zlist_append (self->dropped_ends, end);
    }
}

bool
arb_outbox_next_dropped_end (arb_outbox_t *self, zframe_t **identity_p, uint64_t *id)
{
    s_end_t *end = (s_end_t *) zlist_pop (self->dropped_ends);
    if (!end)
        return false;
    *identity_p = end->identity;
    *id = end->id;
    free (end);
    return true;
}

void
arb_outbox_refuse_all (arb_outbox_t *self, arb_err_t code, const char *reason)
{
    //  a DONE used up its watch when the task ended in memory: the end
    //  goes with the turn, the watch must not
    for (arb_msg_t *msg = (arb_msg_t *) zlist_first (self->done_full); msg;
         msg = (arb_msg_t *) zlist_next (self->done_full))
        s_keep_ends (self, msg);
    for (s_done_t *pending = (s_done_t *) zhashx_first (self->done); pending;
         pending = (s_done_t *) zhashx_next (self->done))
        s_keep_ends (self, pending->msg);
    arb_msg_t **replies = self->replies;
    size_t count = self->reply_count;
    self->replies = NULL;
    self->reply_count = self->reply_capacity = 0;
    arb_outbox_abandon (self);
    size_t refused = 0;
    for (size_t i = 0; i < count; i++) {
        arb_msg_t *msg = replies[i];
        arb_msg_type_t type = arb_msg_type (msg);
        if (type == ARB_MSG_ERROR)
            arb_outbox_reply (self, &msg);  //  a refusal changed nothing: it stands
        else if (type != ARB_MSG_HEARTBEAT && type != ARB_MSG_STOP) {
            arb_msg_t *error = arb_msg_new_error (msg, code, "%s", reason);
            arb_outbox_reply (self, &error);
            refused++;
        }
        arb_msg_destroy (&msg);
    }
    free (replies);
    if (refused)
        zsys_notice ("outbox: the turn's replies refused code=%d requests=%zu", (int) code,
                     refused);
}
