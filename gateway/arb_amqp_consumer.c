/*  arb_amqp_consumer.c — a channel's consumers: basic.consume and
    basic.cancel, a link consumer each or one for all under the channel's
    prefetch (the shared subscription), their credit following prefetch,
    the tasks the link hands them, and single active consumers.

    Single active consumers (x-single-active-consumer): of a queue's
    consumers (its sac list, in the order they were registered, over every
    channel and connection of the gateway) only the first, the active one,
    is served; the others wait their turn. What makes it so is one
    invariant: A CONSUMER OF SUCH A QUEUE THAT IS NOT ITS ACTIVE ONE HOLDS
    ZERO CREDIT ON THE LINK, so the broker has nothing to send it by. It
    is subscribed with none, arb_amqp_channel_credit and s_credit_channel
    never give it any (s_waits), and it never shares the channel's
    subscription (under a global prefetch alone it is bound instead: its
    own subscription, credit out of the channel's room). A consumer never
    goes from active to waiting. When the active one ends (cancel, its
    channel or connection closing, its queue deleted) the next becomes
    active and its credit is topped up (s_sac_next); a closing channel's
    unacked deliveries are released in the same turn, and the link sends a
    turn's outcomes before its credit, so they come to the next one first,
    at the head of the queue, as RabbitMQ requeues them (a client that
    cancels its consumer in an earlier turn, as pika's close does, has the
    next one served meanwhile: docs/gateway.md, "Not done").

    Consumer priorities (x-priority, an integer; 0 without it): of a
    queue's consumers (its ranks list, over every channel and connection)
    those of the highest priority that are not blocked (a consumer is
    blocked while its prefetch, or its channel's, is full) are served; one
    of a lower priority waits, and holds zero credit on the link as a
    waiting single active consumer does. The queue keeps that priority
    (top_priority) and s_rank computes it again whenever a consumer of the
    queue comes or goes or its unacked count or its channel's changes
    (arb_amqp_channel_credit is called then): if it moved, the consumers
    now below it give their credit back and the others are topped up. A
    task already on its way to a consumer that waits now is delivered all
    the same (RabbitMQ had sent it too, a moment earlier). A queue with a
    single active consumer does not rank (RabbitMQ 3.10's does not), and a
    consumer under a global basic.qos alone that shares the channel's
    subscription cannot give back its credit alone, so one never does:
    a consumer of a queue that has priorities, or with one of its own, is
    bound instead (its own subscription), as a single active consumer is.
*/

#include "arb_amqp_channel_priv.h"

#include <inttypes.h>

static void s_consumer_end (arb_amqp_channel_t *self, arb_amqp_consumer_t *consumer);
static bool s_waits (arb_amqp_consumer_t *consumer);
static bool s_sac_waits (arb_amqp_consumer_t *consumer);
static void s_rank (arb_amqp_queue_t *queue);
static void s_rank_channel (arb_amqp_channel_t *self);

//  ---------------------------------------------------------------------
//  Credit

//  The credit a link consumer with window may hold at once: its window
//  if the client set a prefetch under ARB_AMQP_WINDOW (the client chose
//  to take that many at once, as from RabbitMQ), else ARB_AMQP_BURST.
static uint32_t
s_burst (uint32_t window)
{
    return window < ARB_AMQP_WINDOW ? window : ARB_AMQP_BURST;
}

//  Tops up the credit of a link consumer (sub: a consumer's own, or the
//  channel's shared one) that has unacked deliveries and window (its
//  prefetch, or ARB_AMQP_WINDOW): the broker may send at most s_burst
//  more, and no more than the window leaves, nor than cap (what the
//  channel's prefetch leaves, for a consumer under it); nothing more
//  while the client's output is full (topped up again once it drains).
//  So a client that does not read holds at most its prefetch, or
//  ARB_AMQP_BURST messages without one (no_ack too), in the gateway past
//  its socket's buffers, and one that does gets them as fast as credit
//  comes back, one per message. A window (or cap) lowered below what is
//  out takes the excess back. Returns the credit added (negative: taken
//  back).
static int64_t
s_topup (arb_amqp_channel_t *self, uint32_t sub, size_t unacked, uint32_t window, int64_t cap)
{
    if (!sub)
        return 0;
    arb_link_t *link = self->conn->server->link;
    int64_t credit = arb_link_credit (link, sub);
    int64_t room = (int64_t) window - (int64_t) unacked - credit;
    int64_t burst = (int64_t) s_burst (window) - credit;
    int64_t add = room < burst ? room : burst;
    if (add > cap)
        add = cap;
    if (room < 0 || (cap < 0 && credit > 0)) {
        int64_t back = room < 0 ? room : 0;
        if (cap < 0 && -cap > -back)
            back = cap;
        if (-back > credit)
            back = -credit;
        if (back < 0 && arb_link_add_credit (link, sub, (int) back) == 0)
            return back;
    }
    else if (add > 0 && !self->closing && !arb_stream_is_full (self->conn->stream)
             && arb_link_add_credit (link, sub, (int) add) == 0)
        return add;
    return 0;
}

//  What the channel's prefetch leaves for more credit: its limit less the
//  unacked deliveries and the credit out of its shared and bound consumers
//  (a delivery needs room under both a consumer's prefetch and the
//  channel's, as RabbitMQ's).
static int64_t
s_channel_room (arb_amqp_channel_t *self)
{
    arb_link_t *link = self->conn->server->link;
    int64_t used = (int64_t) (self->shared_unacked + self->bound_unacked);
    if (self->shared_sub)
        used += arb_link_credit (link, self->shared_sub);
    for (arb_amqp_consumer_t *c =
             self->nbound ? (arb_amqp_consumer_t *) zlistx_first (self->consumers) : NULL;
         c; c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if (c->bound)
            used += arb_link_credit (link, c->sub);
    return (int64_t) self->shared_limit - used;
}

//  The most of cap a link consumer holding credit may get when the
//  channel's room is split share ways.
static int64_t
s_share (arb_amqp_channel_t *self, uint32_t sub, int64_t cap, int64_t share)
{
    int64_t mine = share - arb_link_credit (self->conn->server->link, sub);
    return mine < cap ? mine : cap;
}

//  Tops up every link consumer under the channel's prefetch, out of the
//  room it leaves: the shared subscription first, then the bound
//  consumers in turn. With bound consumers, none holds more credit than
//  an equal share of the channel's prefetch (at least 1), so that one of
//  an empty queue does not hold all of the room while another waits
//  (the credit past a share is taken back).
static void
s_credit_channel (arb_amqp_channel_t *self)
{
    int64_t cap = s_channel_room (self);
    //  the bound consumers served: one waiting its turn (single active
    //  consumer) gets no credit, nor a share
    size_t served = 0;
    for (arb_amqp_consumer_t *c =
             self->nbound ? (arb_amqp_consumer_t *) zlistx_first (self->consumers) : NULL;
         c; c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        served += c->bound && !s_waits (c);
    if (!served) {
        s_topup (self, self->shared_sub, self->shared_unacked, self->shared_limit, cap);
        return;
    }
    int64_t share = (int64_t) self->shared_limit / (int64_t) (served + !!self->shared_sub);
    if (share < 1)
        share = 1;
    if (self->shared_sub)
        cap -= s_topup (self, self->shared_sub, self->shared_unacked, self->shared_limit,
                        s_share (self, self->shared_sub, cap, share));
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if (c->bound && !s_waits (c))
            cap -=
                s_topup (self, c->sub, c->unacked, c->window, s_share (self, c->sub, cap, share));
}

//  Tops up consumer's credit (NULL: none), or with shared every one under
//  the channel's prefetch; one that waits gets none.
static void
s_credit (arb_amqp_channel_t *self, arb_amqp_consumer_t *consumer, bool shared)
{
    if (shared || (consumer && consumer->bound))
        s_credit_channel (self);
    else if (consumer && !s_waits (consumer))
        s_topup (self, consumer->sub, consumer->unacked, consumer->window, INT64_MAX);
}

void
arb_amqp_channel_credit (arb_amqp_channel_t *self, arb_amqp_consumer_t *consumer, bool shared)
{
    s_credit (self, consumer, shared);
    //  an unacked count changed: the consumer may be blocked now, or free
    //  again, and with the channel's prefetch every one under it
    if (consumer)
        s_rank (consumer->queue);
    if (shared || (consumer && consumer->bound))
        s_rank_channel (self);
}

void
arb_amqp_channel_drained (arb_amqp_channel_t *self)
{
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if (!c->shared && !c->bound)
            s_credit (self, c, false);
    s_credit_channel (self);
    s_rank_channel (self);
}

//  ---------------------------------------------------------------------
//  Consumer priorities

//  Whether consumer is blocked: its prefetch (or its channel's) is full,
//  or its channel is closing. A no_ack consumer never is. Under the
//  channel's prefetch, one that holds no credit and can get none (the
//  others of its channel hold the rest of the room, as their share of it:
//  s_credit_channel) is blocked too, where RabbitMQ counts the unacked
//  deliveries alone, so that no lower consumer waits for it in vain.
static bool
s_blocked (arb_amqp_consumer_t *consumer)
{
    arb_amqp_channel_t *channel = consumer->channel;
    if (channel->closing || channel->ending)
        return true;
    if (consumer->no_ack)
        return false;
    if (!consumer->shared && consumer->unacked >= consumer->window)
        return true;
    if (!consumer->shared && !consumer->bound)
        return false;
    if (channel->shared_unacked + channel->bound_unacked >= channel->shared_limit)
        return true;
    uint32_t sub = consumer->shared ? channel->shared_sub : consumer->sub;
    return sub && arb_link_credit (channel->conn->server->link, sub) == 0
           && s_channel_room (channel) <= 0;
}

//  Ranks the queues of the channel's consumers under its prefetch again:
//  the room of each changed. Skips a queue being ranked (one whose
//  ranking credits this channel): it is done with its consumers' credit.
static void
s_rank_channel (arb_amqp_channel_t *self)
{
    if (!self->conn->server->prioritized)
        return;  //  no queue ranks (nor did: see arb_amqp_channel_consume)
    //  ranking walks the channel's list (crediting it): the queues first
    zlistx_t *queues = NULL;
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if ((c->shared || c->bound) && !c->queue->ranking
            && (c->queue->prioritized || c->queue->top_priority != INT64_MIN)) {
            if (!queues)
                queues = zlistx_new ();
            if (!zlistx_find (queues, c->queue))
                zlistx_add_end (queues, c->queue);
        }
    for (arb_amqp_queue_t *q = queues ? (arb_amqp_queue_t *) zlistx_first (queues) : NULL; q;
         q = (arb_amqp_queue_t *) zlistx_next (queues))
        s_rank (q);
    zlistx_destroy (&queues);
}

//  Computes the queue's top priority again (see the top); if it moved,
//  the consumers below it give back their credit (first, so that the
//  channel's room they held is the others'), and the others get theirs;
//  the channels whose room moved so rank their other queues (each queue
//  once on the way: ranking). One not subscribed yet (sub 0, in
//  arb_amqp_channel_consume) is left alone.
static void
s_rank (arb_amqp_queue_t *queue)
{
    if (queue->ranking)
        return;  //  its ranking credits a channel that ranks its queues
    int64_t top = INT64_MIN;
    if (queue->prioritized && !queue->sac)
        for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (queue->ranks); c;
             c = (arb_amqp_consumer_t *) zlistx_next (queue->ranks))
            if (!s_blocked (c) && c->priority > top)
                top = c->priority;
    if (top == queue->top_priority)
        return;
    queue->top_priority = top;
    queue->ranking = true;
    //  (crediting a channel walks its consumer list, never a queue's)
    zlistx_t *channels = NULL;
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (queue->ranks); c;
         c = (arb_amqp_consumer_t *) zlistx_next (queue->ranks)) {
        if (!c->sub || c->shared || !s_waits (c))
            continue;
        arb_link_t *link = c->channel->conn->server->link;
        int64_t credit = arb_link_credit (link, c->sub);
        if (credit > 0 && arb_link_add_credit (link, c->sub, (int) -credit) == 0 && c->bound) {
            s_credit_channel (c->channel);
            if (!channels)
                channels = zlistx_new ();
            if (!zlistx_find (channels, c->channel))
                zlistx_add_end (channels, c->channel);
        }
    }
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (queue->ranks); c;
         c = (arb_amqp_consumer_t *) zlistx_next (queue->ranks))
        if (c->sub && !c->shared && !s_waits (c) && !c->channel->ending) {
            s_credit (c->channel, c, false);
            if (c->bound) {
                if (!channels)
                    channels = zlistx_new ();
                if (!zlistx_find (channels, c->channel))
                    zlistx_add_end (channels, c->channel);
            }
        }
    for (arb_amqp_channel_t *ch = channels ? (arb_amqp_channel_t *) zlistx_first (channels) : NULL;
         ch; ch = (arb_amqp_channel_t *) zlistx_next (channels))
        s_rank_channel (ch);
    zlistx_destroy (&channels);
    queue->ranking = false;
}

//  basic.consume's x-priority (args may be NULL): 0 and *priority set (0
//  without one), or -1 if it is not an integer, with RabbitMQ's reason
//  in why.
static int
s_priority_arg (const amqp_table_t *args, int64_t *priority, char *why, size_t size)
{
    *priority = 0;
    const amqp_field_value_t *value = args ? arb_amqp_table_get (args, "x-priority") : NULL;
    if (!value)
        return 0;
    switch (value->kind) {
        //  RabbitMQ's integer argument types (not a timestamp, nor 'L')
        case AMQP_FIELD_KIND_I8:
        case AMQP_FIELD_KIND_U8:
        case AMQP_FIELD_KIND_I16:
        case AMQP_FIELD_KIND_U16:
        case AMQP_FIELD_KIND_I32:
        case AMQP_FIELD_KIND_U32:
        case AMQP_FIELD_KIND_I64:
            arb_amqp_value_int (value, priority);
            return 0;
        default:
            snprintf (why, size, "expected integer, got %s", arb_amqp_value_type_name (value));
            return -1;
    }
}

//  ---------------------------------------------------------------------
//  Consumers

void
arb_amqp_consumer_destructor (void **item)
{
    arb_amqp_consumer_t *consumer = (arb_amqp_consumer_t *) *item;
    if (!consumer)
        return;
    free (consumer->tag);
    free (consumer);
    *item = NULL;
}

//  Whether a shared consumer of the channel consumes queue.
static bool
s_shared_has (arb_amqp_channel_t *self, arb_amqp_queue_t *queue)
{
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if (c->shared && c->queue == queue)
            return true;
    return false;
}

static void
s_on_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    (void) sub;
    arb_amqp_consumer_t *consumer = (arb_amqp_consumer_t *) arg;
    //  one that waits for a higher priority takes what was on its way
    if (s_sac_waits (consumer)) {
        //  cannot be (a waiting consumer holds no credit: see the top); if
        //  it were, the message goes back rather than to one not active
        zsys_error ("amqp: a task came to a consumer that waits its turn queue=%s tag=%s",
                    consumer->queue->name, consumer->tag);
        arb_link_release (link, task->id);
        arb_amqp_queue_returned (
            consumer->channel->conn->server, consumer->queue,
            arb_amqp_expires_at (consumer->queue, &task->headers, task->created_ms));
        return;
    }
    arb_amqp_channel_deliver (consumer->channel, consumer, task);
}

//  A task of the channel's shared subscription: to a shared consumer of
//  its queue, in turn when there are several.
static void
s_on_shared_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    (void) sub;
    arb_amqp_channel_t *self = (arb_amqp_channel_t *) arg;
    size_t count = 0;
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        count += c->shared && streq (c->queue->broker, task->queue);
    arb_amqp_consumer_t *pick = NULL;
    size_t turn = count ? (size_t) (self->shared_turn++ % count) : 0;
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers);
         c && !pick; c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if (c->shared && streq (c->queue->broker, task->queue) && turn-- == 0)
            pick = c;
    if (!pick) {
        //  its consumer ended while it was on its way
        arb_link_release (link, task->id);
        arb_amqp_channel_credit (self, NULL, true);
        return;
    }
    arb_amqp_channel_deliver (self, pick, task);
}

//  Makes the shared subscription again over the shared consumers' queues
//  (a subscription's queues are fixed once made), with the credit the
//  channel's prefetch leaves, and ends the old one (a task on its way on
//  it goes back to its queue). 0, or -1 if the link refused it (more than
//  ARB_CREDIT_QUEUES_MAX queues, too much credit).
static int
s_shared_remake (arb_amqp_channel_t *self)
{
    arb_link_t *link = self->conn->server->link;
    const char *queues[ARB_CREDIT_QUEUES_MAX];
    size_t n = 0;
    bool fits = true;
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers)) {
        if (!c->shared)
            continue;
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = streq (queues[i], c->queue->broker);
        if (seen)
            continue;
        if (n == ARB_CREDIT_QUEUES_MAX)
            fits = false;
        else
            queues[n++] = c->queue->broker;
    }
    uint32_t sub = 0;
    if (n && fits)
        sub = arb_link_subscribe (link, queues, n, 0, s_on_shared_dispatch, self);
    if (n && !sub)
        return -1;  //  the old one stays
    if (self->shared_sub)
        arb_link_unsubscribe (link, self->shared_sub);
    self->shared_sub = sub;
    //  its credit: what the channel's prefetch leaves
    s_credit_channel (self);
    return 0;
}

//  Whether consumer waits its turn: its queue has a single active consumer
//  and that is another one. Such a consumer holds no credit (see the top).
static bool
s_sac_waits (arb_amqp_consumer_t *consumer)
{
    return consumer->queue->sac && zlistx_head (consumer->queue->sac) != consumer;
}

//  Whether consumer waits: its turn (single active consumer), or for the
//  consumers of a higher priority to be blocked (one sharing the channel's
//  subscription never does: see the top). It holds no credit.
static bool
s_waits (arb_amqp_consumer_t *consumer)
{
    return s_sac_waits (consumer)
           || (!consumer->shared && consumer->priority < consumer->queue->top_priority);
}

//  The active consumer of queue (single active consumer) ended: the next
//  one in its sac list is active now and gets its credit. One of a
//  channel that is ending all of its consumers gets none: it ends next,
//  and the one after it takes over then.
static void
s_sac_next (arb_amqp_queue_t *queue)
{
    arb_amqp_consumer_t *next = (arb_amqp_consumer_t *) zlistx_head (queue->sac);
    if (next && !next->channel->ending)
        arb_amqp_channel_credit (next->channel, next, false);
}

void
arb_amqp_channel_end_consumers (arb_amqp_channel_t *self)
{
    if (self->shared_sub)
        arb_link_unsubscribe (self->conn->server->link, self->shared_sub);
    self->shared_sub = 0;
    self->ending = true;
    while (zlistx_first (self->consumers))
        s_consumer_end (self, (arb_amqp_consumer_t *) zlistx_first (self->consumers));
    self->ending = false;
}

//  Ends a consumer: no more deliveries; the unacked ones stay ackable.
static void
s_consumer_end (arb_amqp_channel_t *self, arb_amqp_consumer_t *consumer)
{
    arb_amqp_t *server = self->conn->server;
    if (!consumer->shared)
        arb_link_unsubscribe (server->link, consumer->sub);
    if (consumer->bound)
        self->nbound--;
    for (arb_amqp_delivery_t *d = arb_amqp_channel_first_delivery (self); d;
         d = arb_amqp_channel_next_delivery (self, d))
        if (d->consumer == consumer)
            d->consumer = NULL;
    arb_amqp_queue_t *queue = consumer->queue;
    if (queue->consumers)
        queue->consumers--;
    if (consumer->exclusive)
        queue->exclusive_consumer = false;
    bool shared = consumer->shared;
    bool bound = consumer->bound;
    bool active = consumer->sac_handle && !s_waits (consumer);
    if (consumer->sac_handle)
        zlistx_delete (queue->sac, consumer->sac_handle);
    zlistx_delete (queue->ranks, consumer->rank_handle);
    if (consumer->priority) {
        queue->prioritized--;
        server->prioritized--;
    }
    zlistx_delete (self->consumers, consumer->handle);
    if (shared && !self->ending && !s_shared_has (self, queue))
        s_shared_remake (self);  //  fewer queues: cannot fail
    else if (bound && !self->ending) {
        s_credit_channel (self);  //  the credit it held is the others' now
        s_rank_channel (self);
    }
    if (active)
        s_sac_next (queue);
    s_rank (queue);  //  it may have been the top one
    if (queue->auto_delete && queue->had_consumer && queue->consumers == 0)
        arb_amqp_delete_queue (server, queue, NULL, NULL);
    else
        arb_amqp_queue_used (server, queue);
}

static arb_amqp_consumer_t *
s_consumer_find (arb_amqp_channel_t *self, const char *tag)
{
    for (arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers); c;
         c = (arb_amqp_consumer_t *) zlistx_next (self->consumers))
        if (streq (c->tag, tag))
            return c;
    return NULL;
}

bool
arb_amqp_channel_has_consumer (arb_amqp_channel_t *self, const char *tag)
{
    return s_consumer_find (self, tag) || arb_amqp_reply_has_tag (self->reply, tag);
}

bool
arb_amqp_channel_has_consumers (arb_amqp_channel_t *self)
{
    return self && zlistx_size (self->consumers) > 0;
}

void
arb_amqp_channel_queue_gone (arb_amqp_channel_t *self, arb_amqp_queue_t *queue)
{
    arb_amqp_consumer_t *c = (arb_amqp_consumer_t *) zlistx_first (self->consumers);
    while (c) {
        arb_amqp_consumer_t *next = (arb_amqp_consumer_t *) zlistx_next (self->consumers);
        if (c->queue == queue) {
            if (self->conn->cancel_notify && self->conn->holding_cancels == self->number)
                arb_amqp_conn_hold_cancel (self->conn, self->number, c->tag);
            else if (self->conn->cancel_notify) {
                //  nowait, as RabbitMQ sends it: a client answers a cancel
                //  without it with a Cancel-Ok (@cloudamqp/amqp-client
                //  does), a method only a server sends, and so a 503 that
                //  ends its connection
                amqp_basic_cancel_t cancel = {.consumer_tag = amqp_cstring_bytes (c->tag),
                                              .nowait = 1};
                arb_amqp_channel_send (self, AMQP_BASIC_CANCEL_METHOD, &cancel);
            }
            queue->auto_delete = false;  //  it is being deleted already
            s_consumer_end (self, c);
        }
        c = next;
        if (c)
            zlistx_find (self->consumers, c);
    }
    for (arb_amqp_delivery_t *d = arb_amqp_channel_first_delivery (self); d;
         d = arb_amqp_channel_next_delivery (self, d))
        if (d->queue == queue)
            d->queue = NULL;
}

int
arb_amqp_channel_consume (arb_amqp_channel_t *self, amqp_basic_consume_t *m)
{
    if (arb_amqp_reply_is_pseudo (m->queue))
        return arb_amqp_reply_consume (self, &self->reply, m);
    arb_amqp_queue_t *queue = arb_amqp_channel_queue (self, m->queue, AMQP_BASIC_CONSUME_METHOD);
    if (!queue)
        return -1;
    char text[400];
    //  a quorum queue takes exclusive as RabbitMQ 3.10's do: it says
    //  nothing there (other consumers come all the same). A classic queue
    //  with a single active consumer refuses it, as RabbitMQ does
    bool exclusive = m->exclusive && !queue->settings.quorum;
    if (queue->exclusive_consumer || (exclusive && (queue->consumers || queue->sac))) {
        snprintf (text, sizeof (text),
                  "ACCESS_REFUSED - queue '%.200s' in vhost '%.60s' in exclusive use", queue->name,
                  arb_amqp_vhost_name (self->conn->vhost));
        arb_amqp_channel_fail (self, AMQP_ACCESS_REFUSED, text, AMQP_BASIC_CONSUME_METHOD);
        return -1;
    }
    int64_t priority;
    char why[80];
    if (s_priority_arg (&m->arguments, &priority, why, sizeof (why)) != 0) {
        snprintf (text, sizeof (text),
                  "PRECONDITION_FAILED - invalid arg 'x-priority' for queue '%.200s' in vhost "
                  "'%.60s': \"%.40s\"",
                  queue->name, arb_amqp_vhost_name (self->conn->vhost), why);
        arb_amqp_channel_fail (self, AMQP_PRECONDITION_FAILED, text, AMQP_BASIC_CONSUME_METHOD);
        return -1;
    }
    char *tag = arb_amqp_frame_str (m->consumer_tag);
    if (!*tag)
        do {  //  a server-named tag, as RabbitMQ's (one in use: another)
            free (tag);
            tag = arb_amqp_server_name ("amq.ctag-");
        } while (arb_amqp_channel_has_consumer (self, tag));
    if (arb_amqp_channel_has_consumer (self, tag)) {
        snprintf (text, sizeof (text), "NOT_ALLOWED - attempt to reuse consumer tag '%.200s'", tag);
        free (tag);
        arb_amqp_conn_fail (self->conn, AMQP_NOT_ALLOWED, text, AMQP_BASIC_CONSUME_METHOD);
        return -1;
    }
    arb_amqp_consumer_t *consumer = (arb_amqp_consumer_t *) zmalloc (sizeof (arb_amqp_consumer_t));
    consumer->channel = self;
    consumer->tag = tag;
    consumer->queue = queue;
    consumer->no_ack = m->no_ack;
    consumer->exclusive = exclusive;
    consumer->priority = priority;
    //  under the channel's prefetch alone, one subscription for all;
    //  else its own, with its prefetch as credit (none for no_ack, as
    //  RabbitMQ), and under both, out of the channel's room too (bound).
    //  A consumer of a queue with a single active consumer has its own,
    //  whose credit is 0 while it waits its turn (see the top): under the
    //  channel's prefetch alone, it is bound with no prefetch of its own.
    //  So is one of a queue with consumer priorities, or with one of its
    //  own, which may have to wait. Its queue's top priority is computed
    //  with it before it subscribes (with none of its credit yet: sub 0)
    uint32_t window = ARB_AMQP_WINDOW;
    if (!m->no_ack && self->prefetch && self->prefetch < window)
        window = self->prefetch;
    consumer->window = window;
    bool sac = queue->sac != NULL;
    bool own = sac || priority || queue->prioritized;
    consumer->shared = !m->no_ack && self->prefetch_channel && !self->prefetch && !own;
    consumer->bound = !m->no_ack && self->prefetch_channel && (self->prefetch || own);
    if (sac)
        consumer->sac_handle = zlistx_add_end (queue->sac, consumer);
    consumer->rank_handle = zlistx_add_end (queue->ranks, consumer);
    if (priority) {
        queue->prioritized++;
        self->conn->server->prioritized++;
    }
    s_rank (queue);
    bool subscribed;
    if (consumer->shared) {
        if (!self->shared_sub)
            self->shared_limit = self->prefetch_channel;
        bool new_queue = !s_shared_has (self, queue);
        consumer->handle = zlistx_add_end (self->consumers, consumer);
        subscribed = !new_queue || s_shared_remake (self) == 0;
        if (!subscribed)
            zlistx_detach (self->consumers, consumer->handle);
    }
    else {
        const char *queues[1] = {queue->broker};
        consumer->sub =
            arb_link_subscribe (self->conn->server->link, queues, 1,
                                consumer->bound || s_waits (consumer) ? 0 : (int) s_burst (window),
                                s_on_dispatch, consumer);
        subscribed = consumer->sub != 0;
        if (subscribed)
            consumer->handle = zlistx_add_end (self->consumers, consumer);
        if (subscribed && consumer->bound) {
            self->nbound++;
            s_credit_channel (self);
        }
    }
    if (!subscribed) {
        if (consumer->sac_handle)
            zlistx_delete (queue->sac, consumer->sac_handle);
        zlistx_delete (queue->ranks, consumer->rank_handle);
        if (priority) {
            queue->prioritized--;
            self->conn->server->prioritized--;
        }
        s_rank (queue);
        free (consumer->tag);
        free (consumer);
        arb_amqp_channel_fail (self, AMQP_RESOURCE_ERROR,
                               "RESOURCE_ERROR - the gateway has too many consumers, or the "
                               "channel too many queues under its prefetch",
                               AMQP_BASIC_CONSUME_METHOD);
        return -1;
    }
    //  Consume-Ok goes out before any delivery can: the link hands tasks
    //  over only in a later turn, behind it in the stream
    if (!m->nowait) {
        amqp_basic_consume_ok_t ok = {.consumer_tag = amqp_cstring_bytes (tag)};
        arb_amqp_channel_send (self, AMQP_BASIC_CONSUME_OK_METHOD, &ok);
    }
    queue->consumers++;
    queue->had_consumer = true;
    arb_amqp_queue_used (self->conn->server, queue);
    if (exclusive)
        queue->exclusive_consumer = true;
    return 0;
}

int
arb_amqp_channel_cancel (arb_amqp_channel_t *self, amqp_basic_cancel_t *m)
{
    char *tag = arb_amqp_frame_str (m->consumer_tag);
    arb_amqp_consumer_t *consumer = s_consumer_find (self, tag);
    bool found = consumer != NULL;
    if (consumer)
        s_consumer_end (self, consumer);  //  frees it
    else if (arb_amqp_reply_has_tag (self->reply, tag))
        arb_amqp_reply_end (self->conn->server, &self->reply);
    //  Cancel-Ok even for a tag we do not know (RabbitMQ does; pika asks);
    //  a consumer's once what was on its way to it is back (settle)
    if (!m->nowait)
        arb_amqp_conn_settle (self->conn, self->number, AMQP_BASIC_CANCEL_OK_METHOD, tag, found);
    free (tag);
    return 0;
}
