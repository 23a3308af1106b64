/*  arb_kestrel_get.c — the Kestrel server's gets and its queue records;
    see arb_kestrel_priv.h.

    Where a get's item comes from, first that applies:

      1. the queue's prefetched items: a queue that is read keeps up to
         ARB_KESTREL_PREFETCH tasks leased ahead of its gets (the head of
         the queue, in order), so a busy consumer loop costs no round trip
         to the broker per item. It starts ARB_KESTREL_PREFETCH_FIRST deep
         until its items are seen to be small; an item over
         ARB_KESTREL_PREFETCH_ITEM bytes stops it; and a queue without gets
         for ARB_KESTREL_IDLE_MS gives its items back to the head of the
         queue, in order;
      2. with t=MS, the queue's waiters: a FIFO served by the queue's
         consumer;
      3. otherwise one TAKE per queue and turn for all the gets of the
         turn: a get that finds nothing ahead asks the broker, whose answer
         is the truth about an empty queue. Tasks come from the broker in
         the queue's order, whether by the consumer or a TAKE, so a TAKE's
         tasks join the prefetched ones at the back, and the waiters, then
         the takers, are served from the front (the others get END).

    One consumer per queue serves both 1 and 2: its credit is kept so that
    credit at the broker + prefetched items = waiters + prefetch depth
    (s_queue_credit). A task that comes goes to the oldest waiter, else
    among the prefetched items; one that nobody wants any more goes back
    to the head of the queue.

    Order. /abort, and a connection that ends with an open item, put the
    item back at the head of its queue. While the queue prefetches, the
    tasks behind the item are leased here or on their way (the consumer's
    credit): given back to the broker, it would come after those on their
    way, which the next gets take first. So it stays here, first in line
    (an open item keeps a copy of its payload for this, see s_deliver):
    the oldest waiter's, else in front of the prefetched items (several
    aborted: the last one first, as in Kestrel). Otherwise (no prefetching
    and no waiter, or a large item) it goes back to the broker, the
    prefetched items too, so that the broker's order is the queue's order
    again (released tasks go back to the head, each in its own place, in
    whatever order they are released), and the consumer gets them again.
*/

#include "arb_kestrel_priv.h"

#include <inttypes.h>
#include <msgpack.h>

static void s_on_idle (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);
static bool s_fetch_item (arb_kestrel_client_t *client, bool peek);
static void s_serve_waiters (arb_kestrel_queue_t *queue);
static void s_wait_unlink (arb_kestrel_client_t *client);
static void s_on_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg);

//  ---------------------------------------------------------------------
//  Queue records

arb_kestrel_queue_t *
arb_kestrel_queue_pin (arb_kestrel_t *self, const char *name, size_t len)
{
    char key[ARB_NAME_MAX + 1];
    memcpy (key, name, len);
    key[len] = 0;
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_lookup (self->queues, key);
    if (!queue) {
        queue = (arb_kestrel_queue_t *) zmalloc (sizeof (arb_kestrel_queue_t));
        queue->server = self;
        queue->name = strdup (key);
        zhashx_insert (self->queues, key, queue);
    }
    queue->pins++;
    return queue;
}

void
arb_kestrel_queue_check (arb_kestrel_queue_t *queue)
{
    if (queue->pins == 0 && !queue->children && queue->sub == 0 && queue->taker_count == 0
        && queue->prefetch == 0 && queue->item_count == 0)
        zhashx_delete (queue->server->queues, queue->name);  //  the key is the hash's copy
}

void
arb_kestrel_queue_unpin (arb_kestrel_queue_t **queue_p)
{
    arb_kestrel_queue_t *queue = *queue_p;
    *queue_p = NULL;
    if (!queue)
        return;
    assert (queue->pins > 0);
    queue->pins--;
    arb_kestrel_queue_check (queue);
}

static void
s_item_free (arb_kestrel_item_t *item)
{
    zframe_destroy (&item->payload);
    free (item);
}

void
arb_kestrel_queue_free (void **item_p)
{
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) *item_p;
    if (!queue)
        return;
    arb_reactor_disarm (queue->server->reactor, &queue->idle);
    //  prefetched items still leased go back when the link says BYE
    while (queue->items) {
        arb_kestrel_item_t *item = queue->items;
        queue->items = item->next;
        arb_idmap_remove (queue->server->items, item->id);
        s_item_free (item);
    }
    if (queue->prefetch)
        queue->server->prefetching--;
    zlistx_destroy (&queue->children);
    free (queue->takers);
    free (queue->name);
    free (queue);
    *item_p = NULL;
}

//  Keeps credit at the broker + prefetched items = waiters + prefetch,
//  with a consumer while anything is wanted or prefetched.
static void
s_queue_credit (arb_kestrel_queue_t *queue)
{
    arb_link_t *link = queue->server->link;
    int64_t target = (int64_t) (queue->waiters + queue->prefetch);
    if (queue->sub == 0) {
        if (target == 0)
            return;
        const char *names[1] = {queue->name};
        queue->sub = arb_link_subscribe (link, names, 1, (int) target, s_on_dispatch, queue);
        if (queue->sub == 0)
            zsys_warning ("kestrel: no consumer for queue=%s reason=\"%s\"", queue->name,
                          arb_link_error (link));
        return;
    }
    if (target == 0 && queue->item_count == 0) {
        arb_link_unsubscribe (link, queue->sub);
        queue->sub = 0;
        return;
    }
    int64_t want = target - (int64_t) queue->item_count - arb_link_credit (link, queue->sub);
    if (want && arb_link_add_credit (link, queue->sub, (int) want))
        zsys_warning ("kestrel: credit refused queue=%s reason=\"%s\"", queue->name,
                      arb_link_error (link));
}

//  ---------------------------------------------------------------------
//  Flags and expiry travel in the task's headers: a msgpack map shared
//  by the gateway's protocols, where Kestrel's keys are "flags" (absent:
//  0) and "expires_ms" (absent: never; see arb_kestrel.c).

static bool
s_is_key (msgpack_object key, const char *name)
{
    return key.type == MSGPACK_OBJECT_STR && key.via.str.size == strlen (name)
           && memcmp (key.via.str.ptr, name, key.via.str.size) == 0;
}

static arb_kestrel_tags_t
s_tags (const arb_dispatch_task_t *task)
{
    arb_kestrel_tags_t tags = {0, 0, task->created_ms};
    if (task->headers.size == 0)
        return tags;
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    if (msgpack_unpack_next (&result, (const char *) task->headers.data, task->headers.size,
                             &offset)
            == MSGPACK_UNPACK_SUCCESS
        && result.data.type == MSGPACK_OBJECT_MAP) {
        msgpack_object_map map = result.data.via.map;
        for (uint32_t i = 0; i < map.size; i++) {
            msgpack_object k = map.ptr[i].key, v = map.ptr[i].val;
            if (v.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                continue;
            if (s_is_key (k, "flags") && v.via.u64 <= UINT32_MAX)
                tags.flags = (uint32_t) v.via.u64;
            else if (s_is_key (k, "expires_ms"))
                tags.expires_ms = v.via.u64;
        }
    }
    msgpack_unpacked_destroy (&result);
    return tags;
}

//  ---------------------------------------------------------------------
//  Prefetched items

static void
s_prefetch_off (arb_kestrel_queue_t *queue)
{
    if (queue->prefetch) {
        queue->prefetch = 0;
        queue->server->prefetching--;
    }
}

//  A get on the queue: prefetching goes on (or on again), unless its items
//  are large or too many queues prefetch already.
static void
s_prefetch_on (arb_kestrel_queue_t *queue)
{
    arb_kestrel_t *self = queue->server;
    queue->last_get_ms = arb_reactor_now (self->reactor);
    if (queue->prefetch || queue->largest > ARB_KESTREL_PREFETCH_ITEM
        || self->prefetching >= ARB_KESTREL_PREFETCH_QUEUES)
        return;
    //  shallow until its items are seen to be small: a queue of large
    //  items costs at most ARB_KESTREL_PREFETCH_FIRST of them, once
    queue->prefetch = queue->largest ? ARB_KESTREL_PREFETCH : ARB_KESTREL_PREFETCH_FIRST;
    self->prefetching++;
    arb_reactor_arm (self->reactor, &queue->idle, ARB_KESTREL_IDLE_MS, s_on_idle, queue);
    s_queue_credit (queue);
}

static void
s_item_unlink (arb_kestrel_item_t *item)
{
    arb_kestrel_queue_t *queue = item->queue;
    if (item->prev)
        item->prev->next = item->next;
    else
        queue->items = item->next;
    if (item->next)
        item->next->prev = item->prev;
    else
        queue->items_tail = item->prev;
    queue->item_count--;
    arb_idmap_remove (queue->server->items, item->id);
}

//  Adds a task the server holds to the queue's prefetched items, at the
//  back, or in front (an aborted item). Takes the payload.
static void
s_item_add (arb_kestrel_queue_t *queue,
            uint64_t id,
            const arb_kestrel_tags_t *tags,
            zframe_t **payload_p,
            bool front)
{
    arb_kestrel_item_t *item = (arb_kestrel_item_t *) zmalloc (sizeof (arb_kestrel_item_t));
    item->queue = queue;
    item->id = id;
    item->tags = *tags;
    item->payload = *payload_p;
    *payload_p = NULL;
    if (front) {
        item->next = queue->items;
        if (queue->items)
            queue->items->prev = item;
        else
            queue->items_tail = item;
        queue->items = item;
    }
    else {
        item->prev = queue->items_tail;
        if (queue->items_tail)
            queue->items_tail->next = item;
        else
            queue->items = item;
        queue->items_tail = item;
    }
    queue->item_count++;
    arb_idmap_insert (queue->server->items, item->id, item);
}

//  Notes the size of a task that came for the queue, by the consumer or a
//  TAKE: a queue that had a large one does not prefetch. Returns it.
static size_t
s_item_seen (arb_kestrel_queue_t *queue, arb_dispatch_task_t *task)
{
    size_t size = task->payload ? zframe_size (task->payload) : 0;
    if (size > queue->largest)
        queue->largest = size;
    return size;
}

//  Adds a task that came from the broker after the queue's prefetched
//  items (tasks come in the queue's order, whether by the consumer or a
//  TAKE).
static void
s_item_push (arb_kestrel_queue_t *queue, arb_dispatch_task_t *task)
{
    arb_kestrel_tags_t tags = s_tags (task);
    s_item_add (queue, task->id, &tags, &task->payload, false);
}

//  Gives the prefetched items at the head that are past their expiry
//  back to the broker, which ends them as expired (it expires only the
//  tasks it holds), so that a get or peek, which takes the head, hands
//  out none of them.
static void
s_items_expire (arb_kestrel_queue_t *queue)
{
    uint64_t now = (uint64_t) zclock_time ();
    arb_kestrel_item_t *item;
    bool expired = false;
    while ((item = queue->items) && item->tags.expires_ms && item->tags.expires_ms <= now) {
        s_item_unlink (item);
        arb_link_release (queue->server->link, item->id);
        s_item_free (item);
        expired = true;
    }
    if (expired)
        s_queue_credit (queue);  //  prefetching: the next in their place
}

//  Gives every prefetched item back to the head of the queue, in order
//  (after what was given back just before, if anything).
static void
s_items_return (arb_kestrel_queue_t *queue)
{
    arb_link_t *link = queue->server->link;
    while (queue->items) {
        arb_kestrel_item_t *item = queue->items;
        s_item_unlink (item);
        arb_link_release (link, item->id);
        s_item_free (item);
    }
}

void
arb_kestrel_queue_emptied (arb_kestrel_queue_t *queue, bool deleted)
{
    arb_kestrel_t *self = queue->server;
    if (deleted) {
        //  the broker cancelled them (their STOPs come, or came, apart),
        //  and a consumer with credit would keep the queue listed
        s_prefetch_off (queue);
        while (queue->items) {
            arb_kestrel_item_t *item = queue->items;
            s_item_unlink (item);
            s_item_free (item);
        }
    }
    else if (queue->items) {
        //  purge leaves leased tasks alone: these are cancelled, as it would
        arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_CANCEL);
        arb_cancel_body_t *body = arb_msg_cancel (request);
        body->ids.v = (uint64_t *) arb_msg_alloc (request, queue->item_count * sizeof (uint64_t));
        while (queue->items) {
            arb_kestrel_item_t *item = queue->items;
            body->ids.v[body->ids.n++] = item->id;
            s_item_unlink (item);
            s_item_free (item);
        }
        arb_gateway_send (self->gateway, &request, NULL, NULL);
    }
    s_queue_credit (queue);
}

static void
s_on_idle (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) arg;
    uint64_t quiet = arb_reactor_now (reactor) - queue->last_get_ms;
    if (quiet < ARB_KESTREL_IDLE_MS) {
        arb_reactor_arm (reactor, &queue->idle, ARB_KESTREL_IDLE_MS - quiet, s_on_idle, queue);
        return;
    }
    s_prefetch_off (queue);
    s_items_return (queue);
    s_queue_credit (queue);
    arb_kestrel_queue_check (queue);
}

//  ---------------------------------------------------------------------
//  Open items

static arb_kestrel_open_t *
s_open_find (arb_kestrel_client_t *client, arb_kestrel_queue_t *queue)
{
    for (arb_kestrel_open_t *open = client->opens; open; open = open->next)
        if (open->queue == queue)
            return open;
    return NULL;
}

//  Unlinks an open item from its client and frees it.
static void
s_open_drop (arb_kestrel_open_t *open)
{
    arb_kestrel_client_t *client = open->client;
    for (arb_kestrel_open_t **p = &client->opens; *p; p = &(*p)->next)
        if (*p == open) {
            *p = open->next;
            break;
        }
    client->open_count--;
    open->queue->opens--;
    arb_idmap_remove (client->server->opens, open->id);
    arb_kestrel_queue_unpin (&open->queue);
    zframe_destroy (&open->payload);
    free (open);
}

//  An open item goes back to the head of its queue: with its copy, it
//  stays here, first in line (the waiters', else while the queue
//  prefetches the first prefetched item), since the tasks behind it that
//  the consumer has on their way would come before it from the broker;
//  otherwise it goes back to the broker, the prefetched ones too (see the
//  top).
static void
s_open_release (arb_kestrel_open_t *open)
{
    arb_kestrel_queue_t *queue = open->queue;
    queue->pins++;
    uint64_t id = open->id;
    arb_kestrel_tags_t tags = open->tags;
    zframe_t *payload = open->payload;
    open->payload = NULL;
    s_open_drop (open);
    if (payload && (queue->prefetch || queue->wait_head)) {
        s_item_add (queue, id, &tags, &payload, true);
        s_serve_waiters (queue);  //  the waiters first, as in s_on_take
        if (queue->prefetch == 0)
            s_items_return (queue);
    }
    else {
        zframe_destroy (&payload);
        arb_link_release (queue->server->link, id);
        s_items_return (queue);
    }
    s_queue_credit (queue);
    arb_kestrel_queue_unpin (&queue);
}

void
arb_kestrel_release_opens (arb_kestrel_client_t *client)
{
    while (client->opens)
        s_open_release (client->opens);
}

//  A held task stopped by the broker (cancelled, or its lease lost while
//  the broker was away): it is no longer an open or prefetched item.
void
arb_kestrel_on_stop (void *arg, uint64_t id, int reason)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    arb_kestrel_open_t *open = (arb_kestrel_open_t *) arb_idmap_lookup (self->opens, id);
    if (open) {
        zsys_info ("kestrel: open item stopped by the broker id=%" PRIu64 " queue=%s reason=%d", id,
                   open->queue->name, reason);
        s_open_drop (open);
        return;
    }
    arb_kestrel_item_t *item = (arb_kestrel_item_t *) arb_idmap_lookup (self->items, id);
    if (item) {
        arb_kestrel_queue_t *queue = item->queue;
        s_item_unlink (item);
        s_item_free (item);
        s_queue_credit (queue);
        arb_kestrel_queue_check (queue);
    }
}

//  ---------------------------------------------------------------------
//  Answers

static void
s_answer_value (arb_kestrel_client_t *client, uint64_t id, uint32_t flags, zframe_t **payload_p)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    self->get_hits++;
    //  the queue's name is the key with bare_value_key: the queue is kept
    //  until the answer is written (the op's end may let it go: a peek of
    //  the last item of a queue no one else pins freed it, and the VALUE
    //  line carried whatever came to lie there)
    arb_kestrel_queue_t *queue = op->queue;
    if (queue)
        queue->pins++;
    const char *key = self->config.bare_value_key ? queue->name : op->key;
    size_t key_len = self->config.bare_value_key ? strlen (queue->name) : op->key_len;
    uint64_t slot = op->slot;
    //  gets asks for a cas: the task id, unique per item
    uint64_t cas = op->gets ? id : 0;
    arb_kestrel_op_end (client);
    arb_kestrel_conn_answer_value (client->conn, slot, key, key_len, flags, cas, payload_p);
    arb_kestrel_queue_unpin (&queue);
}

//  Hands a task the server holds to the client whose get it answers.
static void
s_deliver (arb_kestrel_client_t *client,
           uint64_t id,
           const arb_kestrel_tags_t *tags,
           zframe_t **payload_p)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    if (op->peek)
        arb_link_release (self->link, id);  //  a look: back to the head
    else if (op->open) {
        arb_kestrel_open_t *open = (arb_kestrel_open_t *) zmalloc (sizeof (arb_kestrel_open_t));
        open->queue = op->queue;
        open->queue->pins++;
        open->queue->opens++;
        open->id = id;
        open->tags = *tags;
        //  a copy, so that an abort can put it back here (s_open_release):
        //  of a small item, or of any while the queue prefetches (at most
        //  the few that came by TAKE before its first large one stopped
        //  it); a queue never prefetches once it has had a large one
        size_t size = *payload_p ? zframe_size (*payload_p) : 0;
        if (size <= ARB_KESTREL_PREFETCH_ITEM || open->queue->prefetch)
            open->payload = *payload_p ? zframe_dup (*payload_p) : zframe_new_empty ();
        open->client = client;
        open->next = client->opens;
        client->opens = open;
        client->open_count++;
        arb_idmap_insert (self->opens, id, open);
    }
    else
        arb_link_complete (self->link, id, NULL);
    s_answer_value (client, id, tags->flags, payload_p);
}

static void
s_deliver_task (arb_kestrel_client_t *client, arb_dispatch_task_t *task)
{
    zframe_t *payload = task->payload;
    task->payload = NULL;
    arb_kestrel_tags_t tags = s_tags (task);
    s_deliver (client, task->id, &tags, &payload);
}

static void
s_answer_end (arb_kestrel_client_t *client, bool miss)
{
    if (miss)
        client->server->get_misses++;
    uint64_t slot = client->op.slot;
    arb_kestrel_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, "END\r\n", 5, false);
}

void
arb_kestrel_answer_error (arb_kestrel_client_t *client, const char *why)
{
    uint64_t slot = client->op.slot;
    arb_kestrel_op_end (client);
    arb_kestrel_conn_answerf (client->conn, slot, "SERVER_ERROR %s", why ? why : "refused");
}

const char *
arb_kestrel_reason (arb_msg_t *reply)
{
    arb_error_body_t *error = arb_msg_error (reply);
    return error->code ? error->reason : "the broker did not answer";
}

//  ---------------------------------------------------------------------
//  TAKEs: one per queue and turn

void
arb_kestrel_take_free (void **item)
{
    arb_kestrel_take_t *take = (arb_kestrel_take_t *) *item;
    if (!take)
        return;
    arb_kestrel_queue_unpin (&take->queue);
    free (take->clients);
    free (take);
    *item = NULL;
}

static void
s_on_take (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_take_t *take = (arb_kestrel_take_t *) arg;
    arb_kestrel_t *self = take->queue->server;
    arb_msg_t *reply = *reply_p;
    bool ok = arb_msg_type (reply) == ARB_MSG_DISPATCH;
    arb_kestrel_queue_t *queue = take->queue;
    //  After the items the consumer brought ahead of this answer, if any:
    //  the takers get them all in the queue's order.
    if (ok) {
        arb_dispatch_body_t *body = arb_msg_dispatch (reply);
        for (size_t i = 0; i < body->tasks.n; i++) {
            s_item_seen (queue, &body->tasks.v[i]);
            s_item_push (queue, &body->tasks.v[i]);
        }
        s_serve_waiters (queue);  //  the waiters came first
    }
    for (size_t i = 0; i < take->n; i++) {
        arb_kestrel_client_t *client = take->clients[i];
        if (!client)
            continue;
        client->op.take = NULL;
        if (!ok)
            arb_kestrel_answer_error (client, arb_kestrel_reason (reply));
        else if (!s_fetch_item (client, false))
            s_answer_end (client, true);
    }
    if (queue->prefetch == 0)
        s_items_return (queue);  //  taken for takers that left
    s_queue_credit (queue);
    zlistx_delete (self->takes, take->handle);
}

//  Before the loop sleeps (after the gateway sent the turn's SUBMIT): one
//  TAKE per queue for the gets of the turn.
int
arb_kestrel_prepare (arb_reactor_t *reactor, void *arg)
{
    (void) reactor;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    arb_kestrel_queue_t *queue;
    while ((queue = (arb_kestrel_queue_t *) zlistx_detach (self->dirty, NULL))) {
        arb_kestrel_take_t *take = (arb_kestrel_take_t *) zmalloc (sizeof (arb_kestrel_take_t));
        take->queue = queue;
        queue->pins++;
        take->clients = queue->takers;
        take->n = queue->taker_count;
        queue->takers = NULL;
        queue->taker_count = queue->taker_cap = 0;
        for (size_t i = 0; i < take->n; i++) {
            take->clients[i]->op.kind = ARB_KESTREL_OP_TAKE;
            take->clients[i]->op.take = take;
            take->clients[i]->op.take_index = i;
        }
        take->handle = zlistx_add_end (self->takes, take);
        take->reqid =
            arb_gateway_take (self->gateway, queue->name, (uint32_t) take->n, s_on_take, take);
        if (!take->reqid) {
            const char *why = arb_gateway_error (self->gateway);
            for (size_t i = 0; i < take->n; i++) {
                take->clients[i]->op.take = NULL;
                arb_kestrel_answer_error (take->clients[i], why);
            }
            zlistx_delete (self->takes, take->handle);
        }
    }
    return -1;
}

static void
s_take_join (arb_kestrel_client_t *client)
{
    arb_kestrel_queue_t *queue = client->op.queue;
    if (queue->taker_count == queue->taker_cap) {
        queue->taker_cap = queue->taker_cap ? queue->taker_cap * 2 : 8;
        queue->takers = (arb_kestrel_client_t **) realloc (
            queue->takers, queue->taker_cap * sizeof (arb_kestrel_client_t *));
        assert (queue->takers);
    }
    if (queue->taker_count == 0)
        zlistx_add_end (client->server->dirty, queue);
    queue->takers[queue->taker_count++] = client;
    client->op.kind = ARB_KESTREL_OP_TURN;
}

//  A client leaves its TAKE (answered, or it went away).
static void
s_take_leave (arb_kestrel_client_t *client)
{
    arb_kestrel_op_t *op = &client->op;
    if (op->kind == ARB_KESTREL_OP_TAKE) {
        if (op->take)
            op->take->clients[op->take_index] = NULL;
        op->take = NULL;
        return;
    }
    arb_kestrel_queue_t *queue = op->queue;  //  still a taker of this turn
    for (size_t i = 0; i < queue->taker_count; i++)
        if (queue->takers[i] == client) {
            memmove (&queue->takers[i], &queue->takers[i + 1],
                     (queue->taker_count - i - 1) * sizeof (arb_kestrel_client_t *));
            queue->taker_count--;
            break;
        }
    if (queue->taker_count == 0)
        zlistx_delete (client->server->dirty, zlistx_find (client->server->dirty, queue));
}

//  ---------------------------------------------------------------------
//  Waiters and the consumer

static void
s_wait_unlink (arb_kestrel_client_t *client)
{
    arb_kestrel_queue_t *queue = client->op.queue;
    arb_kestrel_op_t *op = &client->op;
    if (op->wait_prev)
        op->wait_prev->op.wait_next = op->wait_next;
    else
        queue->wait_head = op->wait_next;
    if (op->wait_next)
        op->wait_next->op.wait_prev = op->wait_prev;
    else
        queue->wait_tail = op->wait_prev;
    op->wait_next = op->wait_prev = NULL;
    op->waiting = false;
    queue->waiters--;
    arb_reactor_disarm (client->server->reactor, &op->timer);
}

void
arb_kestrel_end_wait (arb_kestrel_client_t *client)
{
    if (client->op.waiting)
        s_answer_end (client, true);  //  as at the wait's end
}

static void
s_on_wait_timeout (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    s_answer_end (client, true);  //  leaves the waiters, takes its credit back
}

//  A task for the queue: the oldest waiter's, else prefetched.
static void
s_on_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    (void) sub;
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) arg;
    size_t size = s_item_seen (queue, task);
    arb_kestrel_client_t *client = queue->wait_head;
    if (client && client->op.peek && (queue->prefetch || client->op.wait_next)) {
        //  a look at the head, which stays here, first in line (the next
        //  waiter's, or before what the consumer brings next): given back
        //  to the broker it would come after those
        queue->pins++;
        s_item_push (queue, task);
        s_serve_waiters (queue);
        if (queue->prefetch == 0)
            s_items_return (queue);
        s_queue_credit (queue);
        arb_kestrel_queue_unpin (&queue);
        return;
    }
    if (client) {
        s_wait_unlink (client);
        queue->pins++;  //  the delivery may end the last use
        s_deliver_task (client, task);
        s_queue_credit (queue);
        arb_kestrel_queue_unpin (&queue);
        return;
    }
    if (queue->prefetch == 0 || queue->item_count >= queue->prefetch) {
        //  its waiter left after the credit went out
        arb_link_release (link, task->id);
        s_queue_credit (queue);
        arb_kestrel_queue_check (queue);
        return;
    }
    s_item_push (queue, task);
    if (size > ARB_KESTREL_PREFETCH_ITEM) {
        s_prefetch_off (queue);  //  large items: one get, one item
        s_queue_credit (queue);
    }
    else if (queue->prefetch && queue->prefetch < ARB_KESTREL_PREFETCH) {
        queue->prefetch = ARB_KESTREL_PREFETCH;  //  small ones: deep
        s_queue_credit (queue);
    }
}

static void
s_wait_join (arb_kestrel_client_t *client, uint32_t wait_ms)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_queue_t *queue = client->op.queue;
    arb_kestrel_op_t *op = &client->op;
    op->kind = ARB_KESTREL_OP_WAIT;
    op->waiting = true;
    op->wait_prev = queue->wait_tail;
    op->wait_next = NULL;
    if (queue->wait_tail)
        queue->wait_tail->op.wait_next = client;
    else
        queue->wait_head = client;
    queue->wait_tail = client;
    queue->waiters++;
    arb_reactor_arm (self->reactor, &op->timer, wait_ms, s_on_wait_timeout, client);
    s_queue_credit (queue);
}

//  ---------------------------------------------------------------------
//  Peeks

static void
s_on_peek (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    client->op.reqid = 0;
    arb_msg_t *reply = *reply_p;
    if (arb_msg_type (reply) != ARB_MSG_PEEK_REPLY)
        arb_kestrel_answer_error (client, arb_kestrel_reason (reply));
    else if (arb_msg_peek_reply (reply)->tasks.n == 0) {
        //  the head may have come to the consumer ahead of this answer
        if (!s_fetch_item (client, true))
            s_answer_end (client, true);
    }
    else {
        arb_dispatch_task_t *task = &arb_msg_peek_reply (reply)->tasks.v[0];
        zframe_t *payload = task->payload;
        task->payload = NULL;
        s_answer_value (client, task->id, s_tags (task).flags, &payload);
    }
}

//  ---------------------------------------------------------------------
//  The command in flight

void
arb_kestrel_op_end (arb_kestrel_client_t *client)
{
    arb_kestrel_op_t *op = &client->op;
    arb_kestrel_queue_t *queue = op->queue;
    if (op->kind == ARB_KESTREL_OP_TURN || op->kind == ARB_KESTREL_OP_TAKE)
        s_take_leave (client);
    else if (op->kind == ARB_KESTREL_OP_WAIT && op->waiting) {
        s_wait_unlink (client);
        s_queue_credit (queue);
    }
    if (op->reqid)
        arb_gateway_forget (client->server->gateway, op->reqid);
    op->reqid = 0;
    arb_stats_pages_destroy (&op->stats);
    zmsg_destroy (&op->lines);
    arb_reactor_disarm (client->server->reactor, &op->timer);
    arb_kestrel_queue_unpin (&op->queue);
    op->kind = ARB_KESTREL_OP_NONE;
    op->take = NULL;
    //  last: the next listing may start (and answer) from here
    arb_kestrel_listing_leave (client);
}

//  Answers the client's get with the queue's first prefetched item, if
//  there is one. Returns whether there was.
static bool
s_fetch_item (arb_kestrel_client_t *client, bool peek)
{
    arb_kestrel_queue_t *queue = client->op.queue;
    s_items_expire (queue);
    arb_kestrel_item_t *item = queue->items;
    if (!item)
        return false;
    if (peek) {
        zframe_t *payload = zframe_dup (item->payload);
        s_answer_value (client, item->id, item->tags.flags, &payload);
        return true;
    }
    queue->pins++;  //  the answer ends the get's own pin
    s_item_unlink (item);
    s_deliver (client, item->id, &item->tags, &item->payload);
    s_item_free (item);
    s_queue_credit (queue);
    arb_kestrel_queue_unpin (&queue);
    return true;
}

//  Hands the queue's items to its waiters, oldest first, while both last.
static void
s_serve_waiters (arb_kestrel_queue_t *queue)
{
    for (;;) {
        s_items_expire (queue);
        if (!queue->wait_head || !queue->items)
            return;
        arb_kestrel_client_t *waiter = queue->wait_head;
        s_wait_unlink (waiter);
        s_fetch_item (waiter, waiter->op.peek);
    }
}

//  The get's item, from the prefetched ones, a wait, a PEEK or a TAKE.
static void
s_fetch (arb_kestrel_client_t *client, const arb_kestrel_cmd_t *cmd)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    arb_kestrel_queue_t *queue = op->queue;
    if (!cmd->peek)
        s_prefetch_on (queue);
    if (s_fetch_item (client, cmd->peek))
        return;
    //  a client that ended its side waits for nothing (arb_kestrel_end_wait)
    if (cmd->wait && cmd->wait_ms > 0 && !arb_kestrel_conn_ended (client->conn))
        s_wait_join (client, cmd->wait_ms);
    else if (cmd->peek) {
        //  what this turn gave back (an /abort) reaches the broker first
        arb_link_flush (self->link);
        op->kind = ARB_KESTREL_OP_PEEK;
        op->reqid = arb_gateway_peek (self->gateway, queue->name, 1, s_on_peek, client);
        if (!op->reqid)
            arb_kestrel_answer_error (client, arb_gateway_error (self->gateway));
    }
    else
        s_take_join (client);
}

void
arb_kestrel_get (arb_kestrel_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_conn_t *conn = client->conn;
    if (cmd->peek)
        self->cmd_peek++;
    else
        self->cmd_get++;
    if (arb_kestrel_child_note (self, cmd)) {
        arb_kestrel_conn_answerf (conn, slot, "CLIENT_ERROR too many fan-out queues (%d)",
                                  ARB_KESTREL_CHILDREN_MAX);
        return;
    }
    arb_kestrel_op_t *op = &client->op;
    op->slot = slot;
    op->verb = cmd->verb;
    op->queue = arb_kestrel_queue_pin (self, cmd->queue, cmd->queue_len);
    memcpy (op->key, cmd->key, cmd->key_len);
    op->key_len = cmd->key_len;
    op->open = cmd->open;
    op->peek = cmd->peek;
    op->gets = cmd->gets;
    arb_kestrel_open_t *open = s_open_find (client, op->queue);
    if (cmd->abort) {
        if (open)
            s_open_release (open);
        s_answer_end (client, false);
        return;
    }
    if (cmd->close && open) {
        arb_link_complete (self->link, open->id, NULL);
        s_open_drop (open);
        open = NULL;
    }
    if (cmd->close && !cmd->open) {
        s_answer_end (client, false);
        return;
    }
    if (open && !cmd->peek) {
        //  Kestrel's rules: one open item per connection and queue, and
        //  no plain get beside it (a peek is fine); the client is confused, so it goes
        //  (and its open items go back)
        arb_kestrel_op_end (client);
        arb_kestrel_conn_answer (conn, slot, "ERROR\r\n", 7, true);
        return;
    }
    if (cmd->open && client->open_count >= ARB_KESTREL_OPEN_MAX) {
        arb_kestrel_op_end (client);
        arb_kestrel_conn_answerf (conn, slot, "CLIENT_ERROR %d items open on this connection",
                                  ARB_KESTREL_OPEN_MAX);
        return;
    }
    if (!arb_gateway_is_open (self->gateway)) {
        arb_kestrel_answer_error (client, "the broker is unavailable");
        return;
    }
    arb_kestrel_declare (self, cmd->queue, cmd->queue_len);
    s_fetch (client, cmd);
}
