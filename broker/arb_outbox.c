/*  arb_outbox.c — what the broker sends, held until the turn's commit;
    see arb_outbox.h for the design. */

#include "arb_outbox.h"
#include "arb_queue.h"
#include "arb_session.h"

#include <stdarg.h>

#define ARB_REFUSALS_LOGGED 20  //  refusals logged per second; the rest are counted

//  An event subscriber: a routing id and an optional queue filter.
typedef struct {
    zframe_t *identity;  //  owned
    char *queue;         //  owned; NULL: every queue
} s_subscriber_t;

struct _arb_outbox_t {
    zsock_t *router;           //  borrowed: the loop's socket
    const arb_clock_t *clock;  //  borrowed: the turn's clock
    //  Sent after the turn's commit, in this order:
    zlist_t *replies;        //  owned replies (arb_msg_t *)
    zhashx_t *done;          //  routing id hex -> owned DONE being filled
    zhashx_t *events;        //  routing id hex -> owned EVENT being filled
    zlist_t *subscribers;    //  owned event subscribers (s_subscriber_t *)
    uint64_t refused_sec;    //  Unix second of the refusal log counter
    uint32_t refused_count;  //  refusals logged in that second
};

arb_outbox_t *
arb_outbox_new (zsock_t *router, const arb_clock_t *clock)
{
    arb_outbox_t *self = (arb_outbox_t *) zmalloc (sizeof (arb_outbox_t));
    self->router = router;
    self->clock = clock;
    self->replies = zlist_new ();
    self->done = zhashx_new ();
    self->events = zhashx_new ();
    self->subscribers = zlist_new ();
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
s_subscriber_destroy (s_subscriber_t **sub_p)
{
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
    zlist_destroy (&self->replies);
    zhashx_destroy (&self->done);
    zhashx_destroy (&self->events);
    s_subscriber_t *sub;
    while ((sub = (s_subscriber_t *) zlist_pop (self->subscribers)))
        s_subscriber_destroy (&sub);
    zlist_destroy (&self->subscribers);
    free (self);
    *self_p = NULL;
}

void
arb_outbox_reply (arb_outbox_t *self, arb_msg_t **msg_p)
{
    zlist_append (self->replies, *msg_p);
    *msg_p = NULL;
}

void
arb_outbox_log_refusal (arb_outbox_t *self,
                        zframe_t *identity,
                        const char *type,
                        const char *reason)
{
    uint64_t sec = self->clock->now_ms / 1000;
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
arb_outbox_done (arb_outbox_t *self,
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
arb_outbox_event (arb_outbox_t *self, arb_task_t *task, int state, const char *error)
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
        event->at_ms = self->clock->now_ms;
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
arb_outbox_subscribe (arb_outbox_t *self, zframe_t *identity, const char *queue, bool on)
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

void
arb_outbox_send (arb_outbox_t *self, arb_msg_t **msg_p)
{
    //  A ROUTER drops what it cannot deliver (peer gone, or over its
    //  high-water mark); the broker never blocks on a slow peer.
    arb_msg_send (msg_p, self->router);
}

static void
s_send_all (arb_outbox_t *self, zhashx_t *map)
{
    arb_msg_t *msg = (arb_msg_t *) zhashx_first (map);
    while (msg) {
        arb_outbox_send (self, &msg);
        msg = (arb_msg_t *) zhashx_next (map);
    }
    zhashx_purge (map);
}

bool
arb_outbox_is_empty (arb_outbox_t *self)
{
    return zlist_size (self->replies) == 0 && zhashx_size (self->done) == 0
           && zhashx_size (self->events) == 0;
}

void
arb_outbox_flush (arb_outbox_t *self)
{
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlist_pop (self->replies)))
        arb_outbox_send (self, &msg);
    s_send_all (self, self->done);
    s_send_all (self, self->events);
}

void
arb_outbox_abandon (arb_outbox_t *self)
{
    arb_msg_t *msg;
    while ((msg = (arb_msg_t *) zlist_pop (self->replies)))
        arb_msg_destroy (&msg);
    s_drop_msgs (self->done);
    s_drop_msgs (self->events);
}
