/*  arb_kestrel.c — the Kestrel server; see arb_kestrel.h.

    Records. A client (s_client_t) is the server's side of one
    connection: the items it holds open, its sets in flight, and its one
    other command in flight (s_op_t: a get being served, or an admin
    command waiting for the broker). A queue record (s_queue_t) exists
    while something uses it: waiters, a consumer, gets of this turn or a
    TAKE in flight, open items, fan-out children. Each use is a pin;
    the record goes when the last pin does and it has no children, so the
    server's memory follows its clients' activity, not the number of
    queue names ever seen.

    Gets. A get without a wait joins its queue's takers of the turn; the
    prepare hook sends one TAKE per queue for all of them, and the tasks
    of its DISPATCH go to the takers in order (the others get END). A get
    with t=MS joins the queue's waiters, a FIFO served by the queue's
    consumer, which has one credit per waiter: a waiter that leaves
    (timeout, disconnect) takes its credit back, and a task that comes
    when no waiter is left goes back to the head of the queue. A plain
    get completes its task at once; /open keeps it leased to the
    connection (the task id is in `opens`, for the broker's STOP).
*/

#include "arb_kestrel.h"
#include "arb_idmap.h"
#include "arb_kestrel_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define ARB_ACCEPT_BATCH   256  //  connections accepted per turn at most
#define ARB_ACCEPT_BACKOFF 100  //  ms without accepting after running out of descriptors

typedef struct _s_queue_t s_queue_t;
typedef struct _s_client_t s_client_t;
typedef struct _s_take_t s_take_t;

//  A fan-out child of a queue.
typedef struct {
    char *name;         //  owned: parent+child
    s_queue_t *parent;  //  borrowed
    bool stored;        //  recorded in the broker's metadata
    uint32_t reqid;     //  its META set in flight, or 0
} s_child_t;

struct _s_queue_t {
    arb_kestrel_t *server;
    char *name;             //  owned
    size_t pins;            //  uses: gets, TAKEs in flight, open items
    zlistx_t *children;     //  owned s_child_t, or NULL
    s_client_t *wait_head;  //  waiters, oldest first (borrowed, linked through their op)
    s_client_t *wait_tail;
    size_t waiters;
    uint32_t sub;         //  the consumer serving the waiters, or 0
    s_client_t **takers;  //  owned array of borrowed clients: gets of this turn
    size_t taker_count;
    size_t taker_cap;
    size_t opens;  //  items open on it through this server
};

//  One TAKE in flight for the takers of a turn.
struct _s_take_t {
    void *handle;  //  in the server's takes
    uint32_t reqid;
    s_queue_t *queue;      //  pinned
    s_client_t **clients;  //  owned array; an entry is NULL once its client left
    size_t n;
};

//  An item open on a connection.
typedef struct _s_open_t {
    struct _s_open_t *next;
    s_client_t *client;  //  borrowed: its holder
    s_queue_t *queue;    //  pinned
    uint64_t id;         //  the task
} s_open_t;

//  A set in flight: its task and its fan-out copies.
typedef struct _s_set_t {
    struct _s_set_t *next;
    struct _s_set_t *prev;
    s_client_t *client;
    uint64_t slot;
    size_t outstanding;  //  tasks not answered yet
    size_t n;            //  tickets
    uint64_t *tickets;   //  owned (0: refused alone)
    char why[256];       //  the first failure, if any
} s_set_t;

typedef enum {
    S_OP_NONE,
    S_OP_TURN,   //  one of its queue's takers of this turn
    S_OP_TAKE,   //  in a TAKE in flight (op.take; NULL once answered)
    S_OP_WAIT,   //  a waiter of its queue
    S_OP_PEEK,   //  a PEEK in flight
    S_OP_ADMIN,  //  delete, flush, flush_all, stats: a request in flight
} s_op_kind_t;

//  The command in flight that is not a set (at most one per connection).
typedef struct {
    s_op_kind_t kind;
    arb_kestrel_verb_t verb;
    uint64_t slot;
    char key[ARB_KESTREL_KEY_MAX + 1];  //  echoed in VALUE
    size_t key_len;
    s_queue_t *queue;       //  pinned
    bool open;              //  the task stays leased to the connection
    bool peek;              //  the task goes back at once
    arb_timer_t timer;      //  a waiter's t=
    bool waiting;           //  in its queue's waiters
    s_client_t *wait_next;  //  in its queue's waiters
    s_client_t *wait_prev;
    s_take_t *take;  //  the TAKE it is in (in flight), or NULL
    size_t take_index;
    uint32_t reqid;     //  PEEK or admin request in flight
    arb_msg_t *stats;   //  owned: flush_all's list of queues
    size_t next_queue;  //  flush_all: the next queue to purge
} s_op_t;

struct _s_client_t {
    arb_kestrel_t *server;
    arb_kestrel_conn_t *conn;
    void *handle;     //  in the server's clients
    s_open_t *opens;  //  owned
    size_t open_count;
    s_set_t *sets;  //  owned, in flight
    s_op_t op;
};

struct _arb_kestrel_t {
    arb_gateway_t *gateway;  //  borrowed
    arb_reactor_t *reactor;  //  borrowed
    arb_link_t *link;        //  borrowed
    arb_kestrel_config_t config;
    char *bind;  //  owned copy of config.bind
    int listen_fd;
    int port;
    arb_timer_t accept_timer;
    zlistx_t *clients;   //  owned s_client_t
    zhashx_t *queues;    //  name -> owned s_queue_t
    arb_idmap_t *opens;  //  task id -> borrowed s_open_t
    zlistx_t *dirty;     //  borrowed s_queue_t with takers this turn
    zlistx_t *takes;     //  owned s_take_t in flight
    bool children_loaded;
    uint32_t children_reqid;  //  the META list in flight, or 0
    size_t child_count;
    arb_kestrel_io_t io;
    uint64_t started_ms;  //  wall clock
    uint64_t total_connections, cmd_get, cmd_set, cmd_peek, get_hits, get_misses, total_items,
        queue_deletes;
};

static void s_op_end (s_client_t *client);

//  ---------------------------------------------------------------------
//  Queue records

static s_queue_t *
s_queue_pin (arb_kestrel_t *self, const char *name, size_t len)
{
    char key[ARB_NAME_MAX + 1];
    memcpy (key, name, len);
    key[len] = 0;
    s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, key);
    if (!queue) {
        queue = (s_queue_t *) zmalloc (sizeof (s_queue_t));
        queue->server = self;
        queue->name = strdup (key);
        zhashx_insert (self->queues, key, queue);
    }
    queue->pins++;
    return queue;
}

static bool
s_queue_is_idle (s_queue_t *queue)
{
    return queue->pins == 0 && !queue->children && queue->sub == 0 && queue->taker_count == 0;
}

static void
s_queue_unpin (s_queue_t **queue_p)
{
    s_queue_t *queue = *queue_p;
    *queue_p = NULL;
    if (!queue)
        return;
    assert (queue->pins > 0);
    queue->pins--;
    if (s_queue_is_idle (queue))
        zhashx_delete (queue->server->queues, queue->name);  //  the key is the hash's copy
}

static void
s_queue_free (void **item)
{
    s_queue_t *queue = (s_queue_t *) *item;
    if (!queue)
        return;
    zlistx_destroy (&queue->children);
    free (queue->takers);
    free (queue->name);
    free (queue);
    *item = NULL;
}

//  ---------------------------------------------------------------------
//  Flags travel in the task's headers: a msgpack map shared by the
//  gateway's protocols, where Kestrel's key is "flags" (absent: 0).

static arb_bin_t
s_headers_encode (msgpack_sbuffer *buffer, uint32_t flags)
{
    if (flags == 0)
        return (arb_bin_t){NULL, 0};
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 1);
    msgpack_pack_str (&packer, 5);
    msgpack_pack_str_body (&packer, "flags", 5);
    msgpack_pack_uint32 (&packer, flags);
    return (arb_bin_t){(const uint8_t *) buffer->data, buffer->size};
}

static uint32_t
s_headers_flags (arb_bin_t headers)
{
    if (headers.size == 0)
        return 0;
    uint32_t flags = 0;
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    if (msgpack_unpack_next (&result, (const char *) headers.data, headers.size, &offset)
            == MSGPACK_UNPACK_SUCCESS
        && result.data.type == MSGPACK_OBJECT_MAP) {
        msgpack_object_map map = result.data.via.map;
        for (uint32_t i = 0; i < map.size; i++) {
            msgpack_object k = map.ptr[i].key, v = map.ptr[i].val;
            if (k.type == MSGPACK_OBJECT_STR && k.via.str.size == 5
                && memcmp (k.via.str.ptr, "flags", 5) == 0
                && v.type == MSGPACK_OBJECT_POSITIVE_INTEGER && v.via.u64 <= UINT32_MAX)
                flags = (uint32_t) v.via.u64;
        }
    }
    msgpack_unpacked_destroy (&result);
    return flags;
}

//  ---------------------------------------------------------------------
//  Fan-out children

static void
s_child_free (void **item)
{
    s_child_t *child = (s_child_t *) *item;
    if (!child)
        return;
    free (child->name);
    free (child);
    *item = NULL;
}

static s_child_t *
s_child_find (s_queue_t *parent, const char *name, size_t len)
{
    if (!parent->children)
        return NULL;
    for (s_child_t *child = (s_child_t *) zlistx_first (parent->children); child;
         child = (s_child_t *) zlistx_next (parent->children))
        if (strlen (child->name) == len && memcmp (child->name, name, len) == 0)
            return child;
    return NULL;
}

static void
s_on_child_stored (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_child_t *child = (s_child_t *) arg;
    child->reqid = 0;
    child->stored = arb_msg_type (*reply_p) == ARB_MSG_META_REPLY;
    if (!child->stored)
        zsys_warning ("kestrel: fan-out child not recorded (again when the broker is back) "
                      "queue=%s reason=\"%s\"",
                      child->name, arb_msg_error (*reply_p)->reason);
}

static uint32_t
s_meta (arb_kestrel_t *self, const char *op, const char *name, arb_gateway_reply_fn *fn, void *arg)
{
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_META);
    arb_meta_body_t *body = arb_msg_meta (request);
    body->op = op;
    body->key = arb_msg_strdup (request, ARB_KESTREL_META_PREFIX);
    if (name) {
        char *key =
            (char *) arb_msg_alloc (request, strlen (ARB_KESTREL_META_PREFIX) + strlen (name) + 1);
        sprintf (key, "%s%s", ARB_KESTREL_META_PREFIX, name);
        body->key = key;
    }
    return arb_gateway_send (self->gateway, &request, fn, arg);
}

static void
s_child_store (arb_kestrel_t *self, s_child_t *child)
{
    if (child->stored || child->reqid)
        return;
    child->reqid = s_meta (self, "set", child->name, s_on_child_stored, child);
}

//  Adds a child to its parent (pinned by the children list). Returns it,
//  or NULL past ARB_KESTREL_CHILDREN_MAX.
static s_child_t *
s_child_add (arb_kestrel_t *self, const char *name, size_t len, size_t parent_len, bool stored)
{
    s_queue_t *parent = s_queue_pin (self, name, parent_len);
    s_child_t *child = s_child_find (parent, name, len);
    if (!child && self->child_count < ARB_KESTREL_CHILDREN_MAX) {
        child = (s_child_t *) zmalloc (sizeof (s_child_t));
        child->name = strndup (name, len);
        child->parent = parent;
        child->stored = stored;
        if (!parent->children) {
            parent->children = zlistx_new ();
            zlistx_set_destructor (parent->children, s_child_free);
        }
        zlistx_add_end (parent->children, child);
        self->child_count++;
        zsys_info ("kestrel: fan-out child queue=%.*s parent=%s", (int) len, name, parent->name);
    }
    s_queue_unpin (&parent);
    return child;
}

//  A command named name: a child is known from its first use on. Returns
//  0, or -1 if there are too many.
static int
s_child_note (arb_kestrel_t *self, const arb_kestrel_cmd_t *cmd)
{
    if (cmd->parent_len == 0)
        return 0;
    s_child_t *child = s_child_add (self, cmd->queue, cmd->queue_len, cmd->parent_len, false);
    if (!child)
        return -1;
    s_child_store (self, child);
    return 0;
}

static void
s_on_child_deleted (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    (void) arg;
    if (arb_msg_type (*reply_p) != ARB_MSG_META_REPLY)
        zsys_warning ("kestrel: fan-out child not forgotten by the broker reason=\"%s\"",
                      arb_msg_error (*reply_p)->reason);
}

static void
s_child_delete (arb_kestrel_t *self, const arb_kestrel_cmd_t *cmd)
{
    char parent_name[ARB_NAME_MAX + 1];
    snprintf (parent_name, sizeof (parent_name), "%.*s", (int) cmd->parent_len, cmd->queue);
    s_queue_t *parent = (s_queue_t *) zhashx_lookup (self->queues, parent_name);
    s_child_t *child = parent ? s_child_find (parent, cmd->queue, cmd->queue_len) : NULL;
    if (child) {
        s_meta (self, "del", child->name, s_on_child_deleted, self);
        if (child->reqid)
            arb_gateway_forget (self->gateway, child->reqid);
        void *handle = zlistx_find (parent->children, child);
        zlistx_delete (parent->children, handle);
        self->child_count--;
        if (zlistx_size (parent->children) == 0) {
            zlistx_destroy (&parent->children);
            parent->pins++;
            s_queue_unpin (&parent);
        }
    }
}

static void
s_on_children (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    self->children_reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_META_REPLY) {
        zsys_warning ("kestrel: fan-out children not loaded, again when the session is up "
                      "reason=\"%s\"",
                      arb_msg_error (*reply_p)->reason);
        return;
    }
    arb_meta_reply_body_t *body = arb_msg_meta_reply (*reply_p);
    size_t prefix = strlen (ARB_KESTREL_META_PREFIX);
    for (size_t i = 0; i < body->items.n; i++) {
        const char *name = body->items.v[i].key + prefix;
        size_t parent_len;
        char why[128];
        if (arb_kestrel_cmd_check_queue (name, strlen (name), &parent_len, why, sizeof (why))
            || parent_len == 0)
            zsys_warning ("kestrel: metadata key ignored key=%s reason=\"%s\"",
                          body->items.v[i].key, parent_len ? why : "not a fan-out child");
        else
            s_child_add (self, name, strlen (name), parent_len, true);
    }
    self->children_loaded = true;
    zsys_info ("kestrel: fan-out children loaded count=%zu", self->child_count);
}

//  The session is up: load the children once, store those not stored.
static void
s_on_state (void *arg, bool up)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    if (!up)
        return;
    if (!self->children_loaded && !self->children_reqid)
        self->children_reqid = s_meta (self, "list", NULL, s_on_children, self);
    for (s_queue_t *queue = (s_queue_t *) zhashx_first (self->queues); queue;
         queue = (s_queue_t *) zhashx_next (self->queues))
        for (s_child_t *child = queue->children ? (s_child_t *) zlistx_first (queue->children)
                                                : NULL;
             child; child = (s_child_t *) zlistx_next (queue->children))
            s_child_store (self, child);
}

//  ---------------------------------------------------------------------
//  Open items

static s_open_t *
s_open_find (s_client_t *client, s_queue_t *queue)
{
    for (s_open_t *open = client->opens; open; open = open->next)
        if (open->queue == queue)
            return open;
    return NULL;
}

//  Unlinks an open item from its client and frees it.
static void
s_open_drop (s_client_t *client, s_open_t *open)
{
    for (s_open_t **p = &client->opens; *p; p = &(*p)->next)
        if (*p == open) {
            *p = open->next;
            break;
        }
    client->open_count--;
    open->queue->opens--;
    arb_idmap_remove (client->server->opens, open->id);
    s_queue_unpin (&open->queue);
    free (open);
}

//  A held task stopped by the broker: it is no longer the connection's.
static void
s_on_stop (void *arg, uint64_t id, int reason)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    s_open_t *open = (s_open_t *) arb_idmap_lookup (self->opens, id);
    if (!open)
        return;
    zsys_info ("kestrel: open item stopped by the broker id=%" PRIu64 " queue=%s reason=%d", id,
               open->queue->name, reason);
    s_open_drop (open->client, open);
}

//  ---------------------------------------------------------------------
//  Gets: a task for the client's get

static void
s_answer_value (s_client_t *client, arb_dispatch_task_t *task)
{
    arb_kestrel_t *self = client->server;
    s_op_t *op = &client->op;
    self->get_hits++;
    const char *key = self->config.bare_value_key ? op->queue->name : op->key;
    size_t key_len = self->config.bare_value_key ? strlen (op->queue->name) : op->key_len;
    zframe_t *payload = task->payload;
    task->payload = NULL;
    uint64_t slot = op->slot;
    uint32_t flags = s_headers_flags (task->headers);
    s_op_end (client);
    arb_kestrel_conn_answer_value (client->conn, slot, key, key_len, flags, &payload);
}

//  Hands a task (held by the link) to the client whose get it answers.
static void
s_deliver (s_client_t *client, arb_dispatch_task_t *task)
{
    s_op_t *op = &client->op;
    if (op->peek)
        arb_link_release (client->server->link, task->id);  //  a look: back to the head
    else if (op->open) {
        s_open_t *open = (s_open_t *) zmalloc (sizeof (s_open_t));
        open->queue = op->queue;
        open->queue->pins++;
        open->queue->opens++;
        open->id = task->id;
        open->client = client;
        open->next = client->opens;
        client->opens = open;
        client->open_count++;
        arb_idmap_insert (client->server->opens, task->id, open);
    }
    else
        arb_link_complete (client->server->link, task->id, NULL);
    s_answer_value (client, task);
}

static void
s_answer_end (s_client_t *client, bool miss)
{
    if (miss)
        client->server->get_misses++;
    uint64_t slot = client->op.slot;
    s_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, "END\r\n", 5, false);
}

static void
s_answer_error (s_client_t *client, const char *why)
{
    uint64_t slot = client->op.slot;
    s_op_end (client);
    arb_kestrel_conn_answerf (client->conn, slot, "SERVER_ERROR %s", why);
}

static const char *
s_reason (arb_msg_t *reply)
{
    arb_error_body_t *error = arb_msg_error (reply);
    return error->code ? error->reason : "the broker did not answer";
}

static void
s_take_free (void **item)
{
    s_take_t *take = (s_take_t *) *item;
    if (!take)
        return;
    s_queue_unpin (&take->queue);
    free (take->clients);
    free (take);
    *item = NULL;
}

//  The answer to one TAKE for a turn's takers.
static void
s_on_take (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_take_t *take = (s_take_t *) arg;
    arb_kestrel_t *self = take->queue->server;
    arb_msg_t *reply = *reply_p;
    size_t got = 0;
    if (arb_msg_type (reply) == ARB_MSG_DISPATCH) {
        arb_dispatch_body_t *body = arb_msg_dispatch (reply);
        got = body->tasks.n;
        for (size_t i = 0; i < body->tasks.n; i++) {
            s_client_t *client = i < take->n ? take->clients[i] : NULL;
            if (client) {
                client->op.take = NULL;
                s_deliver (client, &body->tasks.v[i]);
            }
            else
                arb_link_release (self->link, body->tasks.v[i].id);
        }
    }
    for (size_t i = got; i < take->n; i++) {
        s_client_t *client = take->clients[i];
        if (!client)
            continue;
        client->op.take = NULL;
        if (arb_msg_type (reply) == ARB_MSG_DISPATCH)
            s_answer_end (client, true);
        else
            s_answer_error (client, s_reason (reply));
    }
    zlistx_delete (self->takes, take->handle);
}

//  Before the loop sleeps: one TAKE per queue for the gets of the turn.
static int
s_prepare (arb_reactor_t *reactor, void *arg)
{
    (void) reactor;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    s_queue_t *queue;
    while ((queue = (s_queue_t *) zlistx_detach (self->dirty, NULL))) {
        s_take_t *take = (s_take_t *) zmalloc (sizeof (s_take_t));
        take->queue = queue;
        queue->pins++;
        take->clients = queue->takers;
        take->n = queue->taker_count;
        queue->takers = NULL;
        queue->taker_count = queue->taker_cap = 0;
        for (size_t i = 0; i < take->n; i++) {
            take->clients[i]->op.kind = S_OP_TAKE;
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
                s_answer_error (take->clients[i], why ? why : "refused");
            }
            zlistx_delete (self->takes, take->handle);
        }
    }
    return -1;
}

static void
s_take_join (s_client_t *client)
{
    s_queue_t *queue = client->op.queue;
    if (queue->taker_count == queue->taker_cap) {
        queue->taker_cap = queue->taker_cap ? queue->taker_cap * 2 : 8;
        queue->takers =
            (s_client_t **) realloc (queue->takers, queue->taker_cap * sizeof (s_client_t *));
        assert (queue->takers);
    }
    if (queue->taker_count == 0)
        zlistx_add_end (client->server->dirty, queue);
    queue->takers[queue->taker_count++] = client;
    client->op.kind = S_OP_TURN;
}

//  A client leaves its TAKE (it went away).
static void
s_take_leave (s_client_t *client)
{
    s_op_t *op = &client->op;
    if (op->kind == S_OP_TAKE) {
        if (op->take)
            op->take->clients[op->take_index] = NULL;
        op->take = NULL;
        return;
    }
    s_queue_t *queue = op->queue;  //  still a taker of this turn
    for (size_t i = 0; i < queue->taker_count; i++)
        if (queue->takers[i] == client) {
            memmove (&queue->takers[i], &queue->takers[i + 1],
                     (queue->taker_count - i - 1) * sizeof (s_client_t *));
            queue->taker_count--;
            break;
        }
    if (queue->taker_count == 0)
        zlistx_delete (client->server->dirty, zlistx_find (client->server->dirty, queue));
}

//  ---------------------------------------------------------------------
//  Waiters

static void
s_wait_unlink (s_client_t *client)
{
    s_queue_t *queue = client->op.queue;
    s_op_t *op = &client->op;
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

//  A waiter left without a task: its credit is taken back (the whole
//  consumer goes with the last waiter).
static void
s_wait_leave (s_client_t *client)
{
    s_queue_t *queue = client->op.queue;
    arb_link_t *link = client->server->link;
    s_wait_unlink (client);
    if (queue->waiters == 0) {
        arb_link_unsubscribe (link, queue->sub);
        queue->sub = 0;
    }
    else
        arb_link_add_credit (link, queue->sub, -1);
}

static void
s_on_wait_timeout (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_client_t *client = (s_client_t *) arg;
    s_wait_leave (client);
    s_answer_end (client, true);
}

//  A task for the queue's waiters.
static void
s_on_dispatch (arb_link_t *link, uint32_t sub, arb_dispatch_task_t *task, void *arg)
{
    (void) sub;
    s_queue_t *queue = (s_queue_t *) arg;
    s_client_t *client = queue->wait_head;
    if (!client) {
        //  its waiter left after the credit went out
        arb_link_release (link, task->id);
        return;
    }
    s_wait_unlink (client);
    if (queue->waiters == 0) {
        arb_link_unsubscribe (link, queue->sub);
        queue->sub = 0;
    }
    s_deliver (client, task);
}

//  Returns 0, or -1 (the link refused: too many consumers or tasks).
static int
s_wait_join (s_client_t *client, uint32_t wait_ms)
{
    arb_kestrel_t *self = client->server;
    s_queue_t *queue = client->op.queue;
    if (queue->sub == 0) {
        const char *names[1] = {queue->name};
        queue->sub = arb_link_subscribe (self->link, names, 1, 1, s_on_dispatch, queue);
        if (queue->sub == 0)
            return -1;
    }
    else if (arb_link_add_credit (self->link, queue->sub, 1))
        return -1;
    s_op_t *op = &client->op;
    op->kind = S_OP_WAIT;
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
    return 0;
}

//  ---------------------------------------------------------------------
//  Peeks

static void
s_on_peek (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_client_t *client = (s_client_t *) arg;
    client->op.reqid = 0;
    arb_msg_t *reply = *reply_p;
    if (arb_msg_type (reply) != ARB_MSG_PEEK_REPLY)
        s_answer_error (client, s_reason (reply));
    else if (arb_msg_peek_reply (reply)->tasks.n == 0)
        s_answer_end (client, true);
    else
        s_answer_value (client, &arb_msg_peek_reply (reply)->tasks.v[0]);
}

//  ---------------------------------------------------------------------
//  The command in flight

//  Ends the client's op (answered, or the client went away): it leaves
//  whatever it was in.
static void
s_op_end (s_client_t *client)
{
    s_op_t *op = &client->op;
    if (op->kind == S_OP_TURN || op->kind == S_OP_TAKE)
        s_take_leave (client);
    else if (op->kind == S_OP_WAIT && op->waiting)
        s_wait_leave (client);
    if (op->reqid)
        arb_gateway_forget (client->server->gateway, op->reqid);
    arb_msg_destroy (&op->stats);
    arb_reactor_disarm (client->server->reactor, &op->timer);
    s_queue_unpin (&op->queue);
    op->kind = S_OP_NONE;
    op->reqid = 0;
    op->take = NULL;
}

static void
s_on_get (s_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_conn_t *conn = client->conn;
    if (cmd->peek)
        self->cmd_peek++;
    else
        self->cmd_get++;
    if (s_child_note (self, cmd)) {
        arb_kestrel_conn_answerf (conn, slot, "CLIENT_ERROR too many fan-out queues (%d)",
                                  ARB_KESTREL_CHILDREN_MAX);
        return;
    }
    s_op_t *op = &client->op;
    op->slot = slot;
    op->verb = cmd->verb;
    op->queue = s_queue_pin (self, cmd->queue, cmd->queue_len);
    memcpy (op->key, cmd->key, cmd->key_len);
    op->key_len = cmd->key_len;
    op->open = cmd->open;
    op->peek = cmd->peek;
    s_open_t *open = s_open_find (client, op->queue);
    if (cmd->abort) {
        if (open) {
            arb_link_release (self->link, open->id);
            s_open_drop (client, open);
        }
        s_answer_end (client, false);
        return;
    }
    if (cmd->close && open) {
        arb_link_complete (self->link, open->id, NULL);
        s_open_drop (client, open);
        open = NULL;
    }
    if (cmd->close && !cmd->open) {
        s_answer_end (client, false);
        return;
    }
    if (open) {
        //  Kestrel's rules: one open item per connection and queue, and
        //  no plain get beside it; the client is confused, so it goes
        //  (and its open items go back)
        s_op_end (client);
        arb_kestrel_conn_answer (conn, slot, "ERROR\r\n", 7, true);
        return;
    }
    if (cmd->open && client->open_count >= ARB_KESTREL_OPEN_MAX) {
        s_op_end (client);
        arb_kestrel_conn_answerf (conn, slot, "CLIENT_ERROR %d items open on this connection",
                                  ARB_KESTREL_OPEN_MAX);
        return;
    }
    if (!arb_gateway_is_up (self->gateway)) {
        s_answer_error (client, "the broker is unavailable");
        return;
    }
    if (cmd->wait && cmd->wait_ms > 0) {
        if (s_wait_join (client, cmd->wait_ms))
            s_answer_error (client, arb_link_error (self->link));
    }
    else if (cmd->peek) {
        op->kind = S_OP_PEEK;
        op->reqid = arb_gateway_peek (self->gateway, op->queue->name, 1, s_on_peek, client);
        if (!op->reqid)
            s_answer_error (client, arb_gateway_error (self->gateway));
    }
    else
        s_take_join (client);
}

//  ---------------------------------------------------------------------
//  Sets

static void
s_set_unlink (s_set_t *set)
{
    s_client_t *client = set->client;
    if (set->prev)
        set->prev->next = set->next;
    else
        client->sets = set->next;
    if (set->next)
        set->next->prev = set->prev;
    free (set->tickets);
    free (set);
}

static void
s_set_answer (s_set_t *set)
{
    s_client_t *client = set->client;
    uint64_t slot = set->slot;
    bool ok = set->why[0] == 0;
    char why[sizeof (set->why)];
    snprintf (why, sizeof (why), "%s", set->why);
    s_set_unlink (set);
    if (ok)
        arb_kestrel_conn_answer (client->conn, slot, "STORED\r\n", 8, false);
    else {
        zsys_warning ("kestrel: set not stored reason=\"%s\"", why);
        arb_kestrel_conn_answerf (client->conn, slot, "SERVER_ERROR %s", why);
    }
}

static void
s_on_submitted (arb_gateway_t *gateway,
                const arb_submitted_task_t *task,
                int code,
                const char *error,
                void *arg)
{
    (void) gateway;
    (void) code;
    s_set_t *set = (s_set_t *) arg;
    if (task)
        set->client->server->total_items++;
    else if (!set->why[0])
        snprintf (set->why, sizeof (set->why), "%s", error && *error ? error : "not stored");
    if (--set->outstanding == 0)
        s_set_answer (set);
}

static void
s_on_set (s_client_t *client, const arb_kestrel_cmd_t *cmd, zframe_t **item_p, uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    self->cmd_set++;
    const char *refusal = NULL;
    if (!arb_gateway_is_up (self->gateway))
        refusal = "SERVER_ERROR the broker is unavailable";
    else if (!self->children_loaded)
        refusal = "SERVER_ERROR starting: fan-out queues not loaded yet";
    else if (s_child_note (self, cmd))
        refusal = "CLIENT_ERROR too many fan-out queues";
    if (refusal) {
        arb_kestrel_conn_answerf (client->conn, slot, "%s", refusal);
        return;
    }
    s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, cmd->queue);
    size_t copies = queue && queue->children ? zlistx_size (queue->children) : 0;
    s_set_t *set = (s_set_t *) zmalloc (sizeof (s_set_t));
    set->client = client;
    set->slot = slot;
    set->n = 1 + copies;
    set->outstanding = set->n;
    set->tickets = (uint64_t *) zmalloc (set->n * sizeof (uint64_t));
    set->next = client->sets;
    if (client->sets)
        client->sets->prev = set;
    client->sets = set;
    msgpack_sbuffer headers;
    msgpack_sbuffer_init (&headers);
    arb_task_spec_t spec = {
        .queue = cmd->queue,
        .name = cmd->queue,
        .expires_ms = arb_kestrel_cmd_expires_ms (cmd->exptime, (uint64_t) zclock_time ()),
        .headers = s_headers_encode (&headers, cmd->flags),
    };
    //  The copies first: each its own frame (the parent's is taken).
    s_child_t *child = copies ? (s_child_t *) zlistx_first (queue->children) : NULL;
    for (size_t i = 0; i <= copies; i++) {
        bool last = i == copies;
        spec.queue = spec.name = last ? cmd->queue : child->name;
        spec.payload = last ? *item_p : zframe_dup (*item_p);
        if (last)
            *item_p = NULL;
        set->tickets[i] = arb_gateway_submit_one (self->gateway, &spec, s_on_submitted, set);
        if (!set->tickets[i]) {
            const char *why = arb_gateway_error (self->gateway);
            if (!set->why[0])
                snprintf (set->why, sizeof (set->why), "%s", why ? why : "refused");
            set->outstanding--;
        }
        if (!last)
            child = (s_child_t *) zlistx_next (queue->children);
    }
    msgpack_sbuffer_destroy (&headers);
    if (set->outstanding == 0)
        s_set_answer (set);
}

//  ---------------------------------------------------------------------
//  delete, flush, flush_all, stats

static void s_flush_next (s_client_t *client);

static uint32_t
s_purge (s_client_t *client, const char *queue, arb_gateway_reply_fn *fn)
{
    arb_kestrel_t *self = client->server;
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, queue);
    arb_msg_queue (request)->op = "purge";
    return arb_gateway_send (self->gateway, &request, fn, client);
}

static void
s_on_purged (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_client_t *client = (s_client_t *) arg;
    s_op_t *op = &client->op;
    op->reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_OK) {
        s_answer_error (client, s_reason (*reply_p));
        return;
    }
    if (op->verb == ARB_KESTREL_FLUSH_ALL) {
        s_flush_next (client);
        return;
    }
    uint64_t slot = op->slot;
    bool deleted = op->verb == ARB_KESTREL_DELETE;
    if (deleted)
        client->server->queue_deletes++;
    s_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, deleted ? "DELETED\r\n" : "END\r\n",
                             deleted ? 9 : 5, false);
}

//  flush_all: purges the queues of the STATS reply one after the other.
static void
s_flush_next (s_client_t *client)
{
    s_op_t *op = &client->op;
    arb_stats_reply_body_t *body = arb_msg_stats_reply (op->stats);
    if (op->next_queue == body->queues.n) {
        uint64_t slot = op->slot;
        s_op_end (client);
        arb_kestrel_conn_answer (client->conn, slot, "Flushed all queues.\r\n", 21, false);
        return;
    }
    op->reqid = s_purge (client, body->queues.v[op->next_queue++].name, s_on_purged);
    if (!op->reqid)
        s_answer_error (client, arb_gateway_error (client->server->gateway));
}

//  Appends a printf-formatted line to a growing text.
static void s_text_addf (char **text, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_text_addf (char **text, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list args;
        va_start (args, fmt);
        int n = vsnprintf (*text + *len, *cap - *len, fmt, args);
        va_end (args);
        if (n >= 0 && (size_t) n < *cap - *len) {
            *len += (size_t) n;
            return;
        }
        *cap = *cap * 2 + (n > 0 ? (size_t) n : 0);
        *text = (char *) realloc (*text, *cap);
        assert (*text);
    }
}

//  The stats answer: the server's counters, then per queue the broker's
//  count of waiting items and this server's waiters and open items.
static void
s_stats_answer (s_client_t *client, arb_stats_reply_body_t *body)
{
    arb_kestrel_t *self = client->server;
    size_t cap = 4096, len = 0;
    char *text = (char *) malloc (cap);
    assert (text);
    uint64_t items = 0;
    for (size_t i = 0; i < body->queues.n; i++)
        if (body->queues.v[i].counts.n > ARB_STATE_READY)
            items += body->queues.v[i].counts.v[ARB_STATE_READY];
    uint64_t now = (uint64_t) zclock_time ();
    s_text_addf (&text, &len, &cap,
                 "STAT uptime %" PRIu64 "\r\nSTAT time %" PRIu64 "\r\nSTAT version %s\r\n"
                 "STAT curr_items %" PRIu64 "\r\nSTAT total_items %" PRIu64 "\r\n"
                 "STAT curr_connections %zu\r\nSTAT total_connections %" PRIu64 "\r\n"
                 "STAT cmd_get %" PRIu64 "\r\nSTAT cmd_set %" PRIu64 "\r\nSTAT cmd_peek %" PRIu64
                 "\r\nSTAT get_hits %" PRIu64 "\r\nSTAT get_misses %" PRIu64
                 "\r\nSTAT bytes_read %" PRIu64 "\r\nSTAT bytes_written %" PRIu64
                 "\r\nSTAT queue_deletes %" PRIu64 "\r\n",
                 (now - self->started_ms) / 1000, now / 1000, ARB_VERSION, items, self->total_items,
                 zlistx_size (self->clients), self->total_connections, self->cmd_get, self->cmd_set,
                 self->cmd_peek, self->get_hits, self->get_misses, self->io.bytes_read,
                 self->io.bytes_written, self->queue_deletes);
    for (size_t i = 0; i < body->queues.n; i++) {
        arb_queue_info_t *info = &body->queues.v[i];
        size_t parent_len;
        char why[128];
        if (arb_kestrel_cmd_check_queue (info->name, strlen (info->name), &parent_len, why,
                                         sizeof (why)))
            continue;  //  not a name a memcache client can use
        s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, info->name);
        const char *q = info->name;
        s_text_addf (&text, &len, &cap,
                     "STAT queue_%s_items %" PRIu64 "\r\nSTAT queue_%s_waiters %zu\r\n"
                     "STAT queue_%s_open_transactions %zu\r\n",
                     q, info->counts.n > ARB_STATE_READY ? info->counts.v[ARB_STATE_READY] : 0, q,
                     queue ? queue->waiters : 0, q, queue ? queue->opens : 0);
        if (queue && queue->children) {
            s_text_addf (&text, &len, &cap, "STAT queue_%s_children ", q);
            const char *sep = "";
            for (s_child_t *child = (s_child_t *) zlistx_first (queue->children); child;
                 child = (s_child_t *) zlistx_next (queue->children), sep = ",")
                s_text_addf (&text, &len, &cap, "%s%s", sep, child->name);
            s_text_addf (&text, &len, &cap, "\r\n");
        }
    }
    s_text_addf (&text, &len, &cap, "END\r\n");
    uint64_t slot = client->op.slot;
    s_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, text, len, false);
    free (text);
}

static void
s_on_stats (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_client_t *client = (s_client_t *) arg;
    s_op_t *op = &client->op;
    op->reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_STATS_REPLY)
        s_answer_error (client, s_reason (*reply_p));
    else if (op->verb == ARB_KESTREL_STATS)
        s_stats_answer (client, arb_msg_stats_reply (*reply_p));
    else {
        op->stats = *reply_p;
        *reply_p = NULL;
        op->next_queue = 0;
        s_flush_next (client);
    }
}

static void
s_on_admin (s_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    s_op_t *op = &client->op;
    op->slot = slot;
    op->verb = cmd->verb;
    op->kind = S_OP_ADMIN;
    if (!arb_gateway_is_up (self->gateway)) {
        s_answer_error (client, "the broker is unavailable");
        return;
    }
    if (cmd->verb == ARB_KESTREL_DELETE || cmd->verb == ARB_KESTREL_FLUSH) {
        char queue[ARB_NAME_MAX + 1];
        snprintf (queue, sizeof (queue), "%.*s", (int) cmd->queue_len, cmd->queue);
        if (cmd->verb == ARB_KESTREL_DELETE && cmd->parent_len)
            s_child_delete (self, cmd);
        else if (s_child_note (self, cmd)) {
            s_answer_error (client, "too many fan-out queues");
            return;
        }
        op->reqid = s_purge (client, queue, s_on_purged);
    }
    else {
        arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_STATS);
        op->reqid = arb_gateway_send (self->gateway, &request, s_on_stats, client);
    }
    if (!op->reqid)
        s_answer_error (client, arb_gateway_error (self->gateway));
}

//  ---------------------------------------------------------------------
//  Connections

static void
s_on_command (void *arg,
              arb_kestrel_conn_t *conn,
              const arb_kestrel_cmd_t *cmd,
              zframe_t **item_p,
              uint64_t slot)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    s_client_t *client = (s_client_t *) arb_kestrel_conn_user (conn);
    switch (cmd->verb) {
        case ARB_KESTREL_SET:
            s_on_set (client, cmd, item_p, slot);
            break;
        case ARB_KESTREL_GET:
            s_on_get (client, cmd, slot);
            break;
        case ARB_KESTREL_DELETE:
        case ARB_KESTREL_FLUSH:
        case ARB_KESTREL_FLUSH_ALL:
        case ARB_KESTREL_STATS:
            s_on_admin (client, cmd, slot);
            break;
        case ARB_KESTREL_VERSION:
            arb_kestrel_conn_answerf (conn, slot, "VERSION %s", ARB_VERSION);
            break;
        case ARB_KESTREL_QUIT:
            arb_kestrel_conn_answer (conn, slot, NULL, 0, true);
            break;
        case ARB_KESTREL_SHUTDOWN:
            if (!self->config.allow_shutdown) {
                arb_kestrel_conn_answerf (
                    conn, slot, "CLIENT_ERROR shutdown is not allowed (kestrel-allow-shutdown)");
                break;
            }
            zsys_notice ("kestrel: shutdown asked by a client: stopping");
            arb_kestrel_conn_answer (conn, slot, NULL, 0, true);
            arb_reactor_stop (self->reactor);
            break;
    }
}

static void
s_on_closed (void *arg, arb_kestrel_conn_t *conn)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    s_client_t *client = (s_client_t *) arb_kestrel_conn_user (conn);
    s_op_end (client);
    //  its open items go back to the head of their queues
    while (client->opens) {
        arb_link_release (self->link, client->opens->id);
        s_open_drop (client, client->opens);
    }
    //  its sets are stored all the same; nobody waits for the answer
    while (client->sets) {
        for (size_t i = 0; i < client->sets->n; i++)
            if (client->sets->tickets[i])
                arb_gateway_forget_submit (self->gateway, client->sets->tickets[i]);
        s_set_unlink (client->sets);
    }
    zlistx_delete (self->clients, client->handle);
}

static void
s_client_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void s_on_accept_again (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);

static void
s_accept (arb_kestrel_t *self)
{
    arb_kestrel_conn_handler_t handler = {s_on_command, s_on_closed};
    for (int i = 0; i < ARB_ACCEPT_BATCH; i++) {
        int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                //  out of descriptors: wait for some to close
                zsys_warning ("kestrel: out of file descriptors, not accepting for %d ms",
                              ARB_ACCEPT_BACKOFF);
                arb_reactor_watch_fd (self->reactor, self->listen_fd, 0);
                arb_reactor_arm (self->reactor, &self->accept_timer, ARB_ACCEPT_BACKOFF,
                                 s_on_accept_again, self);
            }
            return;
        }
        if (zlistx_size (self->clients) >= self->config.max_connections) {
            const char *line = "SERVER_ERROR too many connections\r\n";
            ssize_t rc = send (fd, line, strlen (line), MSG_NOSIGNAL | MSG_DONTWAIT);
            (void) rc;
            close (fd);
            continue;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
        arb_kestrel_conn_t *conn = arb_kestrel_conn_new (self->reactor, fd, self->config.max_item,
                                                         &self->io, &handler, self);
        if (!conn)
            continue;
        s_client_t *client = (s_client_t *) zmalloc (sizeof (s_client_t));
        client->server = self;
        client->conn = conn;
        client->handle = zlistx_add_end (self->clients, client);
        arb_kestrel_conn_set_user (conn, client);
        self->total_connections++;
    }
}

static void
s_on_listen (arb_reactor_t *reactor, int fd, unsigned events, void *arg)
{
    (void) reactor;
    (void) fd;
    (void) events;
    s_accept ((arb_kestrel_t *) arg);
}

static void
s_on_accept_again (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) timer;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    arb_reactor_watch_fd (reactor, self->listen_fd, ARB_REACTOR_READ);
    s_accept (self);
}

//  A listening socket on "HOST:PORT" ("[v6]:PORT" too). Returns it, or -1
//  after logging why.
static int
s_listen (const char *bind_to, int *port)
{
    char host[256];
    const char *colon = strrchr (bind_to, ':');
    size_t host_len = colon ? (size_t) (colon - bind_to) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof (host) || !colon[1]) {
        zsys_error ("kestrel: bad address '%s' (HOST:PORT)", bind_to);
        return -1;
    }
    memcpy (host, bind_to, host_len);
    host[host_len] = 0;
    char *name = host;
    if (host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = 0;
        name = host + 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (name, colon + 1, &hints, &found);
    if (rc) {
        zsys_error ("kestrel: bad address '%s': %s", bind_to, gai_strerror (rc));
        return -1;
    }
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (fd < 0 || bind (fd, found->ai_addr, found->ai_addrlen) || listen (fd, 1024)) {
        zsys_error ("kestrel: cannot listen on %s: %s", bind_to, strerror (errno));
        if (fd >= 0)
            close (fd);
        freeaddrinfo (found);
        return -1;
    }
    freeaddrinfo (found);
    struct sockaddr_storage addr;
    socklen_t len = sizeof (addr);
    getsockname (fd, (struct sockaddr *) &addr, &len);
    *port = ntohs (addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                                              : ((struct sockaddr_in *) &addr)->sin_port);
    return fd;
}

arb_kestrel_t *
arb_kestrel_new (arb_gateway_t *gateway, const arb_kestrel_config_t *config)
{
    int port = 0;
    int fd = s_listen (config->bind, &port);
    if (fd < 0)
        return NULL;
    arb_kestrel_t *self = (arb_kestrel_t *) zmalloc (sizeof (arb_kestrel_t));
    self->gateway = gateway;
    self->reactor = arb_gateway_reactor (gateway);
    self->link = arb_gateway_link (gateway);
    self->config = *config;
    self->bind = strdup (config->bind);
    self->config.bind = self->bind;
    self->listen_fd = fd;
    self->port = port;
    self->clients = zlistx_new ();
    zlistx_set_destructor (self->clients, s_client_free);
    self->queues = zhashx_new ();
    zhashx_set_destructor (self->queues, s_queue_free);
    self->opens = arb_idmap_new ();
    self->dirty = zlistx_new ();
    self->takes = zlistx_new ();
    zlistx_set_destructor (self->takes, s_take_free);
    self->started_ms = (uint64_t) zclock_time ();
    if (arb_reactor_add_fd (self->reactor, fd, ARB_REACTOR_READ, s_on_listen, self)
        || arb_reactor_add_prepare (self->reactor, s_prepare, self)) {
        zsys_error ("kestrel: cannot join the event loop");
        arb_kestrel_destroy (&self);
        return NULL;
    }
    arb_gateway_listener_t listener = {.stop = s_on_stop, .state = s_on_state, .arg = self};
    arb_gateway_listen (gateway, &listener);
    if (arb_gateway_is_up (gateway))
        s_on_state (self, true);
    zsys_info ("kestrel: listening on %s port=%d max_item=%zu", config->bind, port,
               config->max_item);
    return self;
}

void
arb_kestrel_destroy (arb_kestrel_t **self_p)
{
    assert (self_p);
    arb_kestrel_t *self = *self_p;
    if (!self)
        return;
    s_client_t *client;
    while ((client = (s_client_t *) zlistx_first (self->clients)))
        arb_kestrel_conn_close (client->conn);
    for (s_take_t *take = (s_take_t *) zlistx_first (self->takes); take;
         take = (s_take_t *) zlistx_next (self->takes))
        arb_gateway_forget (self->gateway, take->reqid);
    zlistx_destroy (&self->takes);
    if (self->children_reqid)
        arb_gateway_forget (self->gateway, self->children_reqid);
    for (s_queue_t *queue = (s_queue_t *) zhashx_first (self->queues); queue;
         queue = (s_queue_t *) zhashx_next (self->queues))
        for (s_child_t *child = queue->children ? (s_child_t *) zlistx_first (queue->children)
                                                : NULL;
             child; child = (s_child_t *) zlistx_next (queue->children))
            if (child->reqid)
                arb_gateway_forget (self->gateway, child->reqid);
    zhashx_destroy (&self->queues);
    zlistx_destroy (&self->dirty);
    zlistx_destroy (&self->clients);
    arb_idmap_destroy (&self->opens);
    arb_reactor_disarm (self->reactor, &self->accept_timer);
    arb_reactor_remove_fd (self->reactor, self->listen_fd);
    close (self->listen_fd);
    free (self->bind);
    free (self);
    *self_p = NULL;
}

int
arb_kestrel_port (arb_kestrel_t *self)
{
    return self->port;
}
