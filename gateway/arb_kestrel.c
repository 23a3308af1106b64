/*  arb_kestrel.c — the Kestrel server: its listener, its clients, the
    commands they send, sets and fan-out children; see arb_kestrel.h.
    Gets and the queue records are in arb_kestrel_get.c, delete, flush,
    flush_all and stats in arb_kestrel_admin.c (arb_kestrel_priv.h says
    what each record holds).

    Sets. A set is one task for its queue and one per fan-out child of the
    queue, all added to the turn's SUBMIT (arb_gateway_submit_one); the
    set's answer goes when every one of them is answered: STORED if all
    were stored, NOT_STORED if its own queue refused it (full, with
    overflow reject: arb_queue.h), else SERVER_ERROR with the first reason. A client that
    goes forgets its sets' tickets: the tasks are stored all the same.

    Fan-out children are kept in the broker's metadata, one key each under
    their parent's queue metadata (queue@PARENT@gw.kestrel.fanout.CHILD),
    so that the broker's delete of the parent removes them. Recording one
    is an idempotent META set sent before any SUBMIT that copies to it (the
    broker takes a connection's messages in order); the gateway loads them
    all (META list, page after page) when its session first comes up, and
    moves the records of the form before (gw.kestrel.fanout.CHILD) there.

    Declarations. A queue a client names (set, get, flush) is declared at
    the broker (QUEUE declare), once per queue and session, so that it is
    listed while empty, as Kestrel creates a queue when it is referenced.
*/

#include "arb_kestrel_priv.h"
#include "arb_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#define ARB_CHILDREN_RETRY_MS 1000  //  loading the fan-out children failed: again after this

//  ---------------------------------------------------------------------
//  Flags travel in the task's headers: a msgpack map shared by the
//  gateway's protocols, where Kestrel's keys are "flags" (absent: 0) and
//  "expires_ms", the item's expiry (absent: never), so that an item the
//  gateway holds (prefetched, or kept after an abort: leased, which the
//  broker does not expire) is not handed out past it.

static arb_bin_t
s_headers_encode (msgpack_sbuffer *buffer, uint32_t flags, uint64_t expires_ms)
{
    if (flags == 0 && expires_ms == 0)
        return (arb_bin_t){NULL, 0};
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, (flags != 0) + (expires_ms != 0));
    if (flags) {
        msgpack_pack_str (&packer, 5);
        msgpack_pack_str_body (&packer, "flags", 5);
        msgpack_pack_uint32 (&packer, flags);
    }
    if (expires_ms) {
        msgpack_pack_str (&packer, 10);
        msgpack_pack_str_body (&packer, "expires_ms", 10);
        msgpack_pack_uint64 (&packer, expires_ms);
    }
    return (arb_bin_t){(const uint8_t *) buffer->data, buffer->size};
}

//  ---------------------------------------------------------------------
//  Fan-out children

//  What the load of the children lists, in order.
enum {
    ARB_LOAD_OLD,   //  records of the form before (ARB_KESTREL_OLD_PREFIX), moved
    ARB_LOAD_NEW,   //  records under their parent's queue metadata
    ARB_LOAD_DONE,  //  listed: loaded once no old record is being moved
};

static void
s_child_free (void **item)
{
    arb_kestrel_child_t *child = (arb_kestrel_child_t *) *item;
    if (!child)
        return;
    free (child->name);
    free (child);
    *item = NULL;
}

static arb_kestrel_child_t *
s_child_find (arb_kestrel_queue_t *parent, const char *name, size_t len)
{
    if (!parent->children)
        return NULL;
    for (arb_kestrel_child_t *child = (arb_kestrel_child_t *) zlistx_first (parent->children);
         child; child = (arb_kestrel_child_t *) zlistx_next (parent->children))
        if (strlen (child->name) == len && memcmp (child->name, name, len) == 0)
            return child;
    return NULL;
}

//  A child's metadata key: queue@PARENT@gw.kestrel.fanout.PARENT+CHILD,
//  allocated in request.
static const char *
s_child_key (arb_msg_t *request, const char *name)
{
    size_t parent_len = (size_t) (strchr (name, '+') - name);
    size_t size =
        strlen ("queue@") + parent_len + strlen (ARB_KESTREL_CHILD_MARK) + strlen (name) + 1;
    char *key = (char *) arb_msg_alloc (request, size);
    snprintf (key, size, "queue@%.*s%s%s", (int) parent_len, name, ARB_KESTREL_CHILD_MARK, name);
    return key;
}

static arb_msg_t *
s_meta_new (arb_kestrel_t *self, const char *op)
{
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_META);
    arb_msg_meta (request)->op = op;
    return request;
}

static void
s_on_child_stored (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_child_t *child = (arb_kestrel_child_t *) arg;
    child->reqid = 0;
    child->stored = arb_msg_type (*reply_p) == ARB_MSG_META_REPLY;
    if (!child->stored)
        zsys_warning ("kestrel: fan-out child not recorded (again when the broker is back) "
                      "queue=%s reason=\"%s\"",
                      child->name, arb_msg_error (*reply_p)->reason);
}

//  Records the child under its parent's queue metadata: an idempotent
//  META set, sent before any SUBMIT that copies to it (the broker takes a
//  connection's messages in order).
static void
s_child_store (arb_kestrel_t *self, arb_kestrel_child_t *child)
{
    if (child->stored || child->reqid)
        return;
    arb_msg_t *request = s_meta_new (self, "set");
    arb_msg_meta (request)->key = s_child_key (request, child->name);
    child->reqid = arb_gateway_send (self->gateway, &request, s_on_child_stored, child);
}

//  Adds a child to its parent (pinned by the children list). Returns it,
//  or NULL past ARB_KESTREL_CHILDREN_MAX.
static arb_kestrel_child_t *
s_child_add (arb_kestrel_t *self, const char *name, size_t len, size_t parent_len, bool stored)
{
    arb_kestrel_queue_t *parent = arb_kestrel_queue_pin (self, name, parent_len);
    arb_kestrel_child_t *child = s_child_find (parent, name, len);
    if (!child && self->child_count < ARB_KESTREL_CHILDREN_MAX) {
        child = (arb_kestrel_child_t *) zmalloc (sizeof (arb_kestrel_child_t));
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
    arb_kestrel_queue_unpin (&parent);
    return child;
}

//  A command named name: a child is known from its first use on. Returns
//  0, or -1 if there are too many.
int
arb_kestrel_child_note (arb_kestrel_t *self, const arb_kestrel_cmd_t *cmd)
{
    if (cmd->parent_len == 0)
        return 0;
    arb_kestrel_child_t *child =
        s_child_add (self, cmd->queue, cmd->queue_len, cmd->parent_len, false);
    if (!child)
        return -1;
    s_child_store (self, child);
    return 0;
}

static void
s_on_meta_done (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    (void) arg;
    if (arb_msg_type (*reply_p) != ARB_MSG_META_REPLY)
        zsys_warning ("kestrel: fan-out record not removed by the broker reason=\"%s\"",
                      arb_msg_error (*reply_p)->reason);
}

//  Forgets one child here; unpins its parent when it was the last.
static void
s_child_forget (arb_kestrel_t *self, arb_kestrel_child_t *child)
{
    arb_kestrel_queue_t *parent = child->parent;
    if (child->reqid)
        arb_gateway_forget (self->gateway, child->reqid);
    zlistx_delete (parent->children, zlistx_find (parent->children, child));
    self->child_count--;
    if (zlistx_size (parent->children) == 0) {
        zlistx_destroy (&parent->children);
        parent->pins++;
        arb_kestrel_queue_unpin (&parent);
    }
}

void
arb_kestrel_child_delete (arb_kestrel_t *self, const arb_kestrel_cmd_t *cmd)
{
    //  the record goes whether this server knew the child or not
    char name[ARB_NAME_MAX + 1];
    snprintf (name, sizeof (name), "%.*s", (int) cmd->queue_len, cmd->queue);
    arb_msg_t *request = s_meta_new (self, "del");
    arb_msg_meta (request)->key = s_child_key (request, name);
    arb_gateway_send (self->gateway, &request, s_on_meta_done, self);
    char parent_name[ARB_NAME_MAX + 1];
    snprintf (parent_name, sizeof (parent_name), "%.*s", (int) cmd->parent_len, cmd->queue);
    arb_kestrel_queue_t *parent = (arb_kestrel_queue_t *) zhashx_lookup (self->queues, parent_name);
    arb_kestrel_child_t *child = parent ? s_child_find (parent, cmd->queue, cmd->queue_len) : NULL;
    if (child)
        s_child_forget (self, child);
}

void
arb_kestrel_queue_deleted (arb_kestrel_t *self, const char *name)
{
    zhashx_delete (self->declared, name);
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue || !queue->children)
        return;
    //  the broker removed the children's records with the queue's metadata
    queue->pins++;
    while (queue->children)
        s_child_forget (self, (arb_kestrel_child_t *) zlistx_first (queue->children));
    arb_kestrel_queue_unpin (&queue);
}

static void s_children_load (arb_kestrel_t *self);
static void s_on_children_retry (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);

static void
s_children_check (arb_kestrel_t *self)
{
    if (self->children_phase == ARB_LOAD_DONE && self->moves == 0 && !self->children_loaded) {
        self->children_loaded = true;
        zsys_info ("kestrel: fan-out children loaded count=%zu", self->child_count);
    }
}

//  The answer to the removal of an old record.
static void
s_on_moved (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    self->moves--;
    if (arb_msg_type (*reply_p) != ARB_MSG_META_REPLY)
        zsys_warning ("kestrel: old fan-out record not removed (again at the next start) "
                      "reason=\"%s\"",
                      arb_msg_error (*reply_p)->reason);
    s_children_check (self);
}

//  An old record (gw.kestrel.fanout.CHILD): the child is known, and its
//  record moves under its parent's metadata, so that deleting the parent
//  removes it. The new record is written before the old one goes (both
//  on this connection, taken in order), so that another gateway listing
//  the records meanwhile finds one or the other; two gateways that start
//  at once both write it (an idempotent set) and both remove the old.
static void
s_child_old (arb_kestrel_t *self, const char *key, const char *name)
{
    size_t parent_len;
    char why[128];
    if (arb_kestrel_cmd_check_queue (name, strlen (name), &parent_len, why, sizeof (why))
        || parent_len == 0) {
        zsys_warning ("kestrel: metadata key ignored key=%s reason=\"%s\"", key,
                      parent_len ? why : "not a fan-out child");
        return;
    }
    arb_kestrel_child_t *child = s_child_add (self, name, strlen (name), parent_len, false);
    if (!child)
        return;  //  too many: the old record stays, and says so at each start
    s_child_store (self, child);
    arb_msg_t *request = s_meta_new (self, "del");
    arb_msg_meta (request)->key = arb_msg_strdup (request, key);
    if (arb_gateway_send (self->gateway, &request, s_on_moved, self))
        self->moves++;
}

//  A record under a queue's metadata: queue@PARENT@gw.kestrel.fanout.CHILD
//  (other keys there are other programs').
static void
s_child_new (arb_kestrel_t *self, const char *key)
{
    const char *parent = key + strlen ("queue@");
    const char *mark = strstr (parent, ARB_KESTREL_CHILD_MARK);
    if (!mark)
        return;
    const char *name = mark + strlen (ARB_KESTREL_CHILD_MARK);
    size_t parent_len;
    char why[128];
    if (arb_kestrel_cmd_check_queue (name, strlen (name), &parent_len, why, sizeof (why))
        || parent_len == 0 || parent_len != (size_t) (mark - parent)
        || memcmp (name, parent, parent_len) != 0) {
        zsys_warning ("kestrel: metadata key ignored key=%s reason=\"%s\"", key,
                      parent_len ? why : "not a fan-out child of its queue");
        return;
    }
    s_child_add (self, name, strlen (name), parent_len, true);
}

static void
s_on_children (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    self->children_reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_META_REPLY) {
        zsys_warning ("kestrel: fan-out children not loaded, again in %d ms reason=\"%s\"",
                      ARB_CHILDREN_RETRY_MS, arb_msg_error (*reply_p)->reason);
        arb_reactor_arm (self->reactor, &self->children_timer, ARB_CHILDREN_RETRY_MS,
                         s_on_children_retry, self);
        return;
    }
    arb_meta_reply_body_t *body = arb_msg_meta_reply (*reply_p);
    for (size_t i = 0; i < body->items.n; i++) {
        const char *key = body->items.v[i].key;
        if (self->children_phase == ARB_LOAD_OLD)
            s_child_old (self, key, key + strlen (ARB_KESTREL_OLD_PREFIX));
        else
            s_child_new (self, key);
    }
    free (self->children_after);
    self->children_after = NULL;
    if (body->more && body->items.n)
        self->children_after = strdup (body->items.v[body->items.n - 1].key);
    else
        self->children_phase++;
    if (self->children_phase == ARB_LOAD_DONE)
        s_children_check (self);
    else
        s_children_load (self);
}

//  Asks for the next page of records: the old ones, then those under the
//  queues' metadata.
static void
s_children_load (arb_kestrel_t *self)
{
    if (self->children_phase == ARB_LOAD_DONE || self->children_reqid
        || !arb_gateway_is_up (self->gateway))
        return;
    arb_msg_t *request = s_meta_new (self, "list");
    arb_meta_body_t *body = arb_msg_meta (request);
    body->key = self->children_phase == ARB_LOAD_OLD ? ARB_KESTREL_OLD_PREFIX : "queue@";
    body->after = self->children_after ? arb_msg_strdup (request, self->children_after) : NULL;
    self->children_reqid = arb_gateway_send (self->gateway, &request, s_on_children, self);
}

static void
s_on_children_retry (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    s_children_load ((arb_kestrel_t *) arg);
}

//  ---------------------------------------------------------------------
//  Declarations: a queue a client names shows in the broker's listings,
//  empty or not, as "referencing a queue creates it" in Kestrel.

static void
s_on_declared (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    if (arb_msg_type (*reply_p) == ARB_MSG_OK) {
        self->queue_creates += arb_msg_ok (*reply_p)->count;
        return;
    }
    //  not again in this session (a refusal would come back for every
    //  command): the next session declares the queues named anew
    zsys_warning ("kestrel: queue not declared (again in the next session) reason=\"%s\"",
                  arb_kestrel_reason (*reply_p));
}

void
arb_kestrel_declare (arb_kestrel_t *self, const char *name, size_t len)
{
    char key[ARB_NAME_MAX + 1];
    snprintf (key, sizeof (key), "%.*s", (int) len, name);
    if (!arb_gateway_is_up (self->gateway) || zhashx_lookup (self->declared, key))
        return;
    if (zhashx_size (self->declared) >= ARB_KESTREL_DECLARED_MAX)
        zhashx_purge (self->declared);  //  declaring again is harmless
    zhashx_insert (self->declared, key, self);
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, key);
    arb_msg_queue (request)->op = "declare";
    if (!arb_gateway_send (self->gateway, &request, s_on_declared, self))
        zhashx_delete (self->declared, key);
}

//  The session is up: load the children once, store those not stored, and
//  declare the queues again as clients name them.
static void
s_on_state (void *arg, bool up)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    if (!up)
        return;
    zhashx_purge (self->declared);
    s_children_load (self);
    for (arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_first (self->queues); queue;
         queue = (arb_kestrel_queue_t *) zhashx_next (self->queues))
        for (arb_kestrel_child_t *child =
                 queue->children ? (arb_kestrel_child_t *) zlistx_first (queue->children) : NULL;
             child; child = (arb_kestrel_child_t *) zlistx_next (queue->children))
            s_child_store (self, child);
}

//  ---------------------------------------------------------------------
//  Sets

static void
s_set_unlink (arb_kestrel_set_t *set)
{
    arb_kestrel_client_t *client = set->client;
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
s_set_answer (arb_kestrel_set_t *set)
{
    arb_kestrel_client_t *client = set->client;
    uint64_t slot = set->slot;
    bool ok = set->why[0] == 0, full = set->full;
    char why[sizeof (set->why)];
    snprintf (why, sizeof (why), "%s", set->why);
    s_set_unlink (set);
    if (ok && full)
        //  as Kestrel answers a set to a queue at its maxItems or maxSize
        //  without discardOldWhenFull
        arb_kestrel_conn_answer (client->conn, slot, "NOT_STORED\r\n", 12, false);
    else if (ok)
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
    arb_kestrel_set_t *set = (arb_kestrel_set_t *) arg;
    //  a task its queue refused at once (overflow reject) was never an item
    if (task && !task->refused)
        set->client->server->total_items++;
    if (!task && !set->why[0])
        snprintf (set->why, sizeof (set->why), "%s", error && *error ? error : "not stored");
    if (--set->outstanding == 0)
        s_set_answer (set);
}

//  The set's own item (its copies to fan-out children are not its answer):
//  one that its queue refused at once (overflow reject) was not stored.
static void
s_on_submitted_own (arb_gateway_t *gateway,
                    const arb_submitted_task_t *task,
                    int code,
                    const char *error,
                    void *arg)
{
    arb_kestrel_set_t *set = (arb_kestrel_set_t *) arg;
    if (task && task->refused)
        set->full = true;
    s_on_submitted (gateway, task, code, error, arg);
}

static void
s_on_set (arb_kestrel_client_t *client,
          const arb_kestrel_cmd_t *cmd,
          zframe_t **item_p,
          uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    self->cmd_set++;
    const char *refusal = NULL;
    if (!arb_gateway_is_open (self->gateway))
        refusal = "SERVER_ERROR the broker is unavailable";
    else if (!self->children_loaded)
        refusal = "SERVER_ERROR starting: fan-out queues not loaded yet";
    else if (arb_kestrel_child_note (self, cmd))
        refusal = "CLIENT_ERROR too many fan-out queues";
    if (refusal) {
        arb_kestrel_conn_answerf (client->conn, slot, "%s", refusal);
        return;
    }
    arb_kestrel_declare (self, cmd->queue, cmd->queue_len);
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_lookup (self->queues, cmd->queue);
    size_t copies = queue && queue->children ? zlistx_size (queue->children) : 0;
    arb_kestrel_set_t *set = (arb_kestrel_set_t *) zmalloc (sizeof (arb_kestrel_set_t));
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
    };
    spec.headers = s_headers_encode (&headers, cmd->flags, spec.expires_ms);
    //  The copies first: each its own frame (the parent's is taken).
    arb_kestrel_child_t *child =
        copies ? (arb_kestrel_child_t *) zlistx_first (queue->children) : NULL;
    for (size_t i = 0; i <= copies; i++) {
        bool last = i == copies;
        spec.queue = spec.name = last ? cmd->queue : child->name;
        arb_defaults_apply_message (self->config.defaults, spec.queue, self->config.retention_ms,
                                    &spec);
        spec.payload = last ? *item_p : zframe_dup (*item_p);
        if (last)
            *item_p = NULL;
        set->tickets[i] = arb_gateway_submit_one (self->gateway, &spec,
                                                  last ? s_on_submitted_own : s_on_submitted, set);
        if (!set->tickets[i]) {
            const char *why = arb_gateway_error (self->gateway);
            if (!set->why[0])
                snprintf (set->why, sizeof (set->why), "%s", why ? why : "refused");
            set->outstanding--;
        }
        if (!last)
            child = (arb_kestrel_child_t *) zlistx_next (queue->children);
    }
    msgpack_sbuffer_destroy (&headers);
    if (set->outstanding == 0)
        s_set_answer (set);
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
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arb_kestrel_conn_user (conn);
    switch (cmd->verb) {
        case ARB_KESTREL_SET:
            s_on_set (client, cmd, item_p, slot);
            break;
        case ARB_KESTREL_GET:
            arb_kestrel_get (client, cmd, slot);
            break;
        case ARB_KESTREL_DELETE:
        case ARB_KESTREL_FLUSH:
        case ARB_KESTREL_FLUSH_ALL:
        case ARB_KESTREL_STATS:
            arb_kestrel_admin (client, cmd, slot);
            break;
        case ARB_KESTREL_VERSION:
            arb_kestrel_conn_answerf (conn, slot, "VERSION %s", ARB_KESTREL_VERSION_TEXT);
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
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arb_kestrel_conn_user (conn);
    arb_kestrel_op_end (client);
    //  its open items go back to the head of their queues
    arb_kestrel_release_opens (client);
    //  its sets are stored all the same; nobody waits for the answer
    while (client->sets) {
        for (size_t i = 0; i < client->sets->n; i++)
            if (client->sets->tickets[i])
                arb_gateway_forget_submit (self->gateway, client->sets->tickets[i]);
        s_set_unlink (client->sets);
    }
    zlistx_delete (self->clients, client->handle);
    arb_gateway_connected (self->gateway, ARB_GATEWAY_KESTREL, -1);
}

//  The client ended its side: its wait ends (arb_kestrel_end_wait).
static void
s_on_ended (void *arg, arb_kestrel_conn_t *conn)
{
    (void) arg;
    arb_kestrel_end_wait ((arb_kestrel_client_t *) arb_kestrel_conn_user (conn));
}

static void
s_client_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_on_client (int fd, void *arg)
{
    arb_kestrel_t *self = (arb_kestrel_t *) arg;
    //  the connections still open, exactly: at the limit, one whose
    //  client closed it (its end not yet handled: its events may come
    //  after this accept's in the turn) or that is closing does not count.
    //  The look costs a peek per connection, and only at the limit.
    size_t open = zlistx_size (self->clients);
    if (open >= self->config.max_connections) {
        open = 0;
        for (arb_kestrel_client_t *client = (arb_kestrel_client_t *) zlistx_first (self->clients);
             client; client = (arb_kestrel_client_t *) zlistx_next (self->clients))
            if (!arb_kestrel_conn_is_gone (client->conn))
                open++;
    }
    if (open >= self->config.max_connections) {
        if (arb_loglimit_take (&self->refusals, arb_reactor_now (self->reactor)))
            zsys_warning ("kestrel: connection refused: kestrel-max-connections (%zu) open",
                          self->config.max_connections);
        const char *line = "SERVER_ERROR too many connections\r\n";
        ssize_t rc = send (fd, line, strlen (line), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void) rc;
        close (fd);
        return;
    }
    arb_kestrel_conn_handler_t handler = {s_on_command, s_on_closed, s_on_ended};
    arb_kestrel_conn_t *conn = arb_kestrel_conn_new (
        self->reactor, fd, self->config.max_item, self->config.request_timeout_ms,
        self->config.idle_timeout_ms, &self->io, &handler, self);
    if (!conn)
        return;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) zmalloc (sizeof (arb_kestrel_client_t));
    client->server = self;
    client->conn = conn;
    client->handle = zlistx_add_end (self->clients, client);
    arb_kestrel_conn_set_user (conn, client);
    self->total_connections++;
    arb_gateway_connected (self->gateway, ARB_GATEWAY_KESTREL, 1);
}

arb_kestrel_t *
arb_kestrel_new (arb_gateway_t *gateway, const arb_kestrel_config_t *config)
{
    arb_kestrel_t *self = (arb_kestrel_t *) zmalloc (sizeof (arb_kestrel_t));
    self->gateway = gateway;
    self->reactor = arb_gateway_reactor (gateway);
    self->link = arb_gateway_link (gateway);
    self->config = *config;
    self->bind = strdup (config->bind);
    self->config.bind = self->bind;
    self->clients = zlistx_new ();
    zlistx_set_destructor (self->clients, s_client_free);
    self->refusals = (arb_loglimit_t){
        .module = "kestrel", .what = "refused connections", .max = ARB_KESTREL_REFUSALS_LOGGED};
    self->queues = zhashx_new ();
    zhashx_set_destructor (self->queues, arb_kestrel_queue_free);
    self->declared = zhashx_new ();
    self->turns = arb_turns_new (ARB_KESTREL_ASKING, arb_kestrel_listing_start);
    self->opens = arb_idmap_new ();
    self->items = arb_idmap_new ();
    self->dirty = zlistx_new ();
    self->takes = zlistx_new ();
    zlistx_set_destructor (self->takes, arb_kestrel_take_free);
    self->started_ms = (uint64_t) zclock_time ();
    self->listener = arb_listener_new (self->reactor, "kestrel", config->bind, s_on_client, self);
    if (!self->listener) {
        arb_kestrel_destroy (&self);
        return NULL;
    }
    if (arb_reactor_add_prepare (self->reactor, arb_kestrel_prepare, self)) {
        zsys_error ("kestrel: cannot join the event loop");
        arb_kestrel_destroy (&self);
        return NULL;
    }
    arb_gateway_listener_t listener = {
        .stop = arb_kestrel_on_stop, .state = s_on_state, .arg = self};
    arb_gateway_listen (gateway, &listener);
    if (arb_gateway_is_up (gateway))
        s_on_state (self, true);
    zsys_info ("kestrel: listening on %s port=%d max_item=%zu", config->bind,
               arb_listener_port (self->listener), config->max_item);
    return self;
}

void
arb_kestrel_destroy (arb_kestrel_t **self_p)
{
    assert (self_p);
    arb_kestrel_t *self = *self_p;
    if (!self)
        return;
    arb_kestrel_client_t *client;
    arb_turns_stop (self->turns);  //  the listings waiting do not start as the others leave
    while ((client = (arb_kestrel_client_t *) zlistx_first (self->clients)))
        arb_kestrel_conn_close (client->conn);
    arb_turns_destroy (&self->turns);
    for (arb_kestrel_take_t *take = (arb_kestrel_take_t *) zlistx_first (self->takes); take;
         take = (arb_kestrel_take_t *) zlistx_next (self->takes))
        arb_gateway_forget (self->gateway, take->reqid);
    zlistx_destroy (&self->takes);
    if (self->children_reqid)
        arb_gateway_forget (self->gateway, self->children_reqid);
    for (arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_first (self->queues); queue;
         queue = (arb_kestrel_queue_t *) zhashx_next (self->queues))
        for (arb_kestrel_child_t *child =
                 queue->children ? (arb_kestrel_child_t *) zlistx_first (queue->children) : NULL;
             child; child = (arb_kestrel_child_t *) zlistx_next (queue->children))
            if (child->reqid)
                arb_gateway_forget (self->gateway, child->reqid);
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->declared);
    free (self->children_after);
    zlistx_destroy (&self->dirty);
    zlistx_destroy (&self->clients);
    arb_idmap_destroy (&self->opens);
    arb_idmap_destroy (&self->items);
    arb_reactor_disarm (self->reactor, &self->children_timer);
    arb_listener_destroy (&self->listener);
    free (self->bind);
    free (self);
    *self_p = NULL;
}

int
arb_kestrel_port (arb_kestrel_t *self)
{
    return arb_listener_port (self->listener);
}
