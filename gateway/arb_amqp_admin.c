/*  arb_amqp_admin.c — the exchange and queue methods of a channel:
    declare (passive too, with RabbitMQ's equivalence checks), delete,
    bind, unbind, purge.

    The model changes at once in memory (so the next publish routes by
    it); the records go to the broker's metadata store, and the -Ok waits
    for the broker's answers (after its commit), holding the connection's
    input meanwhile, so a client that declares then publishes finds its
    declaration stored. Queue.Declare-Ok's message count comes from the
    broker's STATS.
*/

#include "arb_amqp_priv.h"

#include <inttypes.h>

//  What a held method answers once the broker has.
typedef struct s_op s_op_t;

//  A step of op sent once its queue's trim is done (s_after_trim).
typedef void (s_op_step_fn) (s_op_t *op);

struct s_op {
    arb_amqp_channel_t *channel;  //  borrowed
    amqp_method_number_t id;      //  the method
    char *queue;                  //  owned: a queue's name for Declare-Ok
    bool nowait;
    uint64_t count;      //  messages (Declare-Ok, Purge-Ok, Delete-Ok)
    char *broker_queue;  //  owned: the queue STATS looks for (it may go meanwhile)
    size_t left;         //  answers still to come
    bool want_count;
    bool empty_check;           //  queue.delete: counted, then deleted (s_queue_delete_counted)
    bool if_empty;              //  queue.delete if_empty: the count decides
    bool if_unused;             //  queue.delete if_unused, checked again after the count
    bool failed;                //  the channel failed: no -Ok
    arb_amqp_trim_wait_t wait;  //  for the queue's trim (x-max-length), before step
    s_op_step_fn *step;
};

static void
s_op_free (s_op_t *op)
{
    free (op->queue);
    free (op->broker_queue);
    free (op);
}

void
arb_amqp_admin_forget (arb_amqp_conn_t *conn)
{
    s_op_t *op = (s_op_t *) conn->op;
    conn->op = NULL;
    if (!op)
        return;
    if (op->wait.trim) {
        arb_amqp_trim_unwait (&op->wait);
        arb_amqp_conn_unhold (conn);
    }
    s_op_free (op);
}

static void
s_op_done (s_op_t *op)
{
    arb_amqp_channel_t *channel = op->channel;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    uint16_t number = arb_amqp_channel_number (channel);
    if (conn->op == op)
        conn->op = NULL;
    if (!op->nowait && !op->failed && !arb_amqp_channel_is_closing (channel)) {
        switch (op->id) {
            case AMQP_QUEUE_DECLARE_METHOD: {
                //  its consumers now, as its count: after a trim it waited for
                arb_amqp_queue_t *queue = arb_amqp_model_queue (conn->vhost, op->queue);
                size_t consumers = queue ? queue->consumers : 0;
                //  a quorum queue with a single active consumer counts the
                //  active one only, as RabbitMQ 3.10's (a classic one all)
                if (queue && queue->sac && queue->settings.quorum && consumers > 1)
                    consumers = 1;
                amqp_queue_declare_ok_t ok = {
                    .queue = amqp_cstring_bytes (op->queue),
                    .message_count = (uint32_t) op->count,
                    .consumer_count = (uint32_t) consumers,
                };
                arb_amqp_conn_send (conn, number, AMQP_QUEUE_DECLARE_OK_METHOD, &ok);
                break;
            }
            case AMQP_QUEUE_PURGE_METHOD: {
                amqp_queue_purge_ok_t ok = {.message_count = (uint32_t) op->count};
                arb_amqp_conn_send (conn, number, AMQP_QUEUE_PURGE_OK_METHOD, &ok);
                break;
            }
            case AMQP_QUEUE_DELETE_METHOD: {
                amqp_queue_delete_ok_t ok = {.message_count = (uint32_t) op->count};
                arb_amqp_conn_send (conn, number, AMQP_QUEUE_DELETE_OK_METHOD, &ok);
                break;
            }
            default: {
                //  the other -Oks have no arguments: the method id + 1, but
                //  for unbinds (50.50 -> 50.51, 40.40 -> 40.51)
                char dummy = 0;
                amqp_method_number_t ok = op->id == AMQP_EXCHANGE_UNBIND_METHOD
                                              ? AMQP_EXCHANGE_UNBIND_OK_METHOD
                                              : op->id + 1;
                arb_amqp_conn_send (conn, number, ok, &dummy);
            }
        }
    }
    //  a queue.delete's cancels of its own channel's consumers: after it
    arb_amqp_conn_send_held_cancels (conn);
    s_op_free (op);
}

static void s_queue_delete_counted (s_op_t *op);

static void
s_on_answer (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_op_t *op = (s_op_t *) arg;
    arb_msg_t *reply = *reply_p;
    uint32_t reqid = arb_msg_reqid (reply);
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (op->channel);
    if (arb_msg_type (reply) == ARB_MSG_ERROR)
        zsys_warning ("amqp: broker refused a change conn=%" PRIu64 " reason=\"%s\"", conn->number,
                      arb_msg_error (reply)->reason);
    else if (arb_msg_type (reply) == ARB_MSG_STATS_REPLY && op->want_count)
        op->count = arb_amqp_ready_count (reply, op->broker_queue);
    else if (arb_msg_type (reply) == ARB_MSG_OK && op->want_count)
        op->count = arb_msg_ok (reply)->count;
    if (op->empty_check && arb_msg_type (reply) == ARB_MSG_STATS_REPLY)
        s_queue_delete_counted (op);
    if (--op->left == 0)
        s_op_done (op);
    arb_amqp_conn_answered (conn, reqid);
}

static s_op_t *
s_op_new (arb_amqp_channel_t *channel, amqp_method_number_t id, bool nowait)
{
    s_op_t *op = (s_op_t *) zmalloc (sizeof (s_op_t));
    op->channel = channel;
    op->id = id;
    op->nowait = nowait;
    op->left = 1;  //  held until arb_amqp_admin ends (s_op_go)
    return op;
}

//  One more broker answer for op: the method waits for it.
static void
s_op_wait (s_op_t *op, uint32_t reqid)
{
    if (!reqid)
        return;  //  refused by the link: answered as if done
    op->left++;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (op->channel);
    //  the connection holds it while it waits: freed if the connection goes
    conn->op = op;
    arb_amqp_conn_wait (conn, reqid);
}

//  Every request of op is out: answer now if none is pending.
static void
s_op_go (s_op_t *op)
{
    if (--op->left == 0)
        s_op_done (op);
}

static void
s_store (s_op_t *op, const char *key, zchunk_t *value)
{
    arb_amqp_t *server = arb_amqp_channel_conn (op->channel)->server;
    s_op_wait (op, arb_amqp_store (server, key, value ? &value : NULL, s_on_answer, op));
    zchunk_destroy (&value);
}

//  queue.delete: its consumers on the deleting channel are told just after
//  the Delete-Ok (s_op_done), those on other channels at once.
static void
s_delete (s_op_t *op, arb_amqp_queue_t *queue)
{
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (op->channel);
    conn->holding_cancels = arb_amqp_channel_number (op->channel);
    uint32_t reqid = arb_amqp_delete_queue (conn->server, queue, s_on_answer, op);
    conn->holding_cancels = 0;
    s_op_wait (op, reqid);
}

//  The trim op waited for is done: its step goes now.
static void
s_trimmed (void *arg)
{
    s_op_t *op = (s_op_t *) arg;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (op->channel);
    //  the trim ended because its queue went, and a queue of that name
    //  declared since has a trim of its own under way: wait for that one
    arb_amqp_queue_t *queue = arb_amqp_model_queue (conn->vhost, op->queue);
    if (queue && arb_amqp_trim_wait (queue, &op->wait))
        return;
    op->step (op);
    s_op_go (op);  //  the wait's own share (op may be done and freed)
    arb_amqp_conn_unhold (conn);
}

//  Sends op's step on queue now, or, while a trim of the queue is under
//  way (x-max-length drop-head), once it is done: a count or a purge sees
//  the queue within its bounds, as after RabbitMQ's store.
static void
s_after_trim (s_op_t *op, arb_amqp_queue_t *queue, s_op_step_fn *step)
{
    free (op->broker_queue);
    op->broker_queue = strdup (queue->broker);
    op->step = step;
    op->wait = (arb_amqp_trim_wait_t){.fn = s_trimmed, .arg = op};
    if (!arb_amqp_trim_wait (queue, &op->wait)) {
        step (op);
        return;
    }
    op->left++;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (op->channel);
    conn->op = op;  //  freed with the connection, and unwaited
    arb_amqp_conn_hold (conn);
}

//  The queue op names, checked again after a wait for its trim: NULL if it
//  is gone meanwhile (deleted by another connection; the method then acts
//  on nothing, as on a queue that does not exist), or if another
//  connection's exclusive queue of that name took its place (the channel
//  fails, 405, as at the method's arrival).
static arb_amqp_queue_t *
s_still (s_op_t *op)
{
    arb_amqp_queue_t *queue = arb_amqp_channel_queue_again (op->channel, op->queue, op->id);
    if (arb_amqp_channel_is_closing (op->channel))
        op->failed = true;
    return queue;
}

static void
s_count_now (s_op_t *op)
{
    arb_amqp_t *server = arb_amqp_channel_conn (op->channel)->server;
    //  the turn's publishes count
    arb_gateway_flush (server->gateway);
    arb_msg_t *stats = arb_amqp_count_request (server, op->broker_queue);
    s_op_wait (op, arb_gateway_send (server->gateway, &stats, s_on_answer, op));
}

static void
s_count (s_op_t *op, arb_amqp_queue_t *queue)
{
    op->want_count = true;
    s_after_trim (op, queue, s_count_now);
}

static int
s_fail (arb_amqp_channel_t *channel, int code, amqp_method_number_t id, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (arb_amqp_channel_t *channel, int code, amqp_method_number_t id, const char *fmt, ...)
{
    char text[400];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof (text), fmt, args);
    va_end (args);
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    if (code == AMQP_COMMAND_INVALID || code == AMQP_NOT_ALLOWED || code == AMQP_NOT_IMPLEMENTED)
        arb_amqp_conn_fail (conn, code, text, id);
    else
        arb_amqp_channel_fail (channel, code, text, id);
    return -1;
}

//  ---------------------------------------------------------------------
//  Exchanges

static int
s_exchange_declare (arb_amqp_channel_t *channel, amqp_exchange_declare_t *m)
{
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    arb_amqp_vhost_t *vhost = conn->vhost;
    const char *vname = arb_amqp_vhost_name (vhost);
    amqp_method_number_t id = AMQP_EXCHANGE_DECLARE_METHOD;
    char *name = arb_amqp_frame_str (m->exchange);
    char *tname = arb_amqp_frame_str (m->type);
    int rc = -1;
    char why[256];
    arb_amqp_type_t type = ARB_AMQP_DIRECT;
    const char *flag;  //  the flag a redeclare differs in
    arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (vhost, name);
    if (!*name) {
        s_fail (channel, AMQP_ACCESS_REFUSED, id,
                "ACCESS_REFUSED - operation not permitted on the default exchange");
        goto cleanup;
    }
    if (m->passive) {
        if (!exchange)
            s_fail (channel, AMQP_NOT_FOUND, id,
                    "NOT_FOUND - no exchange '%.200s' in vhost '%.60s'", name, vname);
        else {
            rc = 0;
            s_op_go (s_op_new (channel, id, m->nowait));
        }
        goto cleanup;
    }
    if (arb_amqp_model_type (tname, &type) != 0) {
        s_fail (channel, AMQP_COMMAND_INVALID, id,
                "COMMAND_INVALID - unknown exchange type '%.60s'", tname);
        goto cleanup;
    }
    if (exchange) {
        if (exchange->type != type)
            s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                    "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%.200s' in vhost "
                    "'%.60s': received '%s' but current is '%s'",
                    name, vname, tname, arb_amqp_model_type_name (exchange->type));
        else if ((flag = !exchange->durable != !m->durable           ? "durable"
                         : !exchange->auto_delete != !m->auto_delete ? "auto_delete"
                         : !exchange->internal != !m->internal       ? "internal"
                                                                     : NULL)) {
            //  in RabbitMQ's order; amq.* too (durable, neither of the others)
            bool received = streq (flag, "durable")       ? m->durable
                            : streq (flag, "auto_delete") ? m->auto_delete
                                                          : m->internal;
            s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                    "PRECONDITION_FAILED - inequivalent arg '%s' for exchange '%.200s' in "
                    "vhost '%.60s': received '%s' but current is '%s'",
                    flag, name, vname, received ? "true" : "false", received ? "false" : "true");
        }
        else if (!arb_amqp_model_same_alternate (exchange, &m->arguments, why, sizeof (why)))
            //  the one argument RabbitMQ compares for an exchange
            s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                    "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
                    "'%.200s' in vhost '%.60s': %s",
                    name, vname, why);
        else {
            rc = 0;
            s_op_go (s_op_new (channel, id, m->nowait));
        }
        goto cleanup;
    }
    if (strncmp (name, "amq.", 4) == 0) {
        s_fail (channel, AMQP_ACCESS_REFUSED, id,
                "ACCESS_REFUSED - exchange name '%.200s' contains reserved prefix 'amq.*'", name);
        goto cleanup;
    }
    if (arb_amqp_model_check_name (vhost, name, false, why, sizeof (why))) {
        s_fail (channel, AMQP_PRECONDITION_FAILED, id, "PRECONDITION_FAILED - exchange name: %s",
                why);
        goto cleanup;
    }
    const amqp_field_value_t *alternate = arb_amqp_table_get (&m->arguments, "alternate-exchange");
    if (alternate && alternate->kind != AMQP_FIELD_KIND_UTF8) {
        //  a name, as RabbitMQ wants it (a byte array too is refused at a
        //  first declare; a redeclare compares it as the same bytes)
        s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                "PRECONDITION_FAILED - invalid type '%s' for arg 'alternate-exchange' in "
                "exchange '%.200s' in vhost '%.60s'",
                arb_amqp_value_type_name (alternate), name, vname);
        goto cleanup;
    }
    exchange = arb_amqp_model_add_exchange (vhost, name, type, m->durable, m->auto_delete,
                                            m->internal, &m->arguments);
    s_op_t *op = s_op_new (channel, id, m->nowait);
    char key[600];
    s_store (op, arb_amqp_model_exchange_key (exchange, key, sizeof (key)),
             arb_amqp_model_exchange_record (exchange));
    s_op_go (op);
    rc = 0;
cleanup:
    free (name);
    free (tname);
    return rc;
}

//  Removes the records of every binding from or to exchange (before it
//  goes from the model).
static void
s_forget_bindings_of (s_op_t *op, arb_amqp_vhost_t *vhost, const char *dest, bool dest_exchange);

static int
s_exchange_delete (arb_amqp_channel_t *channel, amqp_exchange_delete_t *m)
{
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    amqp_method_number_t id = AMQP_EXCHANGE_DELETE_METHOD;
    char *name = arb_amqp_frame_str (m->exchange);
    arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (conn->vhost, name);
    int rc = -1;
    //  RabbitMQ's own words for each (clients match on them)
    if (!*name)
        s_fail (channel, AMQP_ACCESS_REFUSED, id,
                "ACCESS_REFUSED - operation not permitted on the default exchange");
    else if (exchange && exchange->builtin)
        s_fail (channel, AMQP_ACCESS_REFUSED, id,
                "ACCESS_REFUSED - deletion of system exchange '%.200s' in vhost '%.60s' not "
                "allowed",
                name, arb_amqp_vhost_name (conn->vhost));
    else if (!exchange) {
        //  deleting what does not exist is fine (RabbitMQ 3.x)
        s_op_go (s_op_new (channel, id, m->nowait));
        rc = 0;
    }
    else if (m->if_unused && arb_amqp_model_exchange_in_use (exchange))
        s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                "PRECONDITION_FAILED - exchange '%.200s' in vhost '%.60s' in use", name,
                arb_amqp_vhost_name (conn->vhost));
    else {
        s_op_t *op = s_op_new (channel, id, m->nowait);
        char key[600];
        s_store (op, arb_amqp_model_exchange_key (exchange, key, sizeof (key)), NULL);
        s_forget_bindings_of (op, conn->vhost, name, true);
        arb_amqp_model_remove_exchange (exchange);
        arb_amqp_exchanges_spent (conn->server, conn->vhost);
        s_op_go (op);
        rc = 0;
    }
    free (name);
    return rc;
}

//  ---------------------------------------------------------------------
//  Bindings

static void
s_forget_key (void *arg, const char *key)
{
    s_store ((s_op_t *) arg, key, NULL);
}

static void
s_forget_bindings_of (s_op_t *op, arb_amqp_vhost_t *vhost, const char *dest, bool dest_exchange)
{
    //  the store keeps one record per binding: each goes
    arb_amqp_model_binding_keys (vhost, dest, dest_exchange, s_forget_key, op);
}

static int
s_bind (arb_amqp_channel_t *channel,
        amqp_method_number_t id,
        amqp_bytes_t dest_bytes,
        bool dest_exchange,
        amqp_bytes_t source_bytes,
        amqp_bytes_t key_bytes,
        amqp_table_t *args,
        bool nowait,
        bool unbind)
{
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    arb_amqp_vhost_t *vhost = conn->vhost;
    const char *vname = arb_amqp_vhost_name (vhost);
    char *dest = arb_amqp_frame_str (dest_bytes);
    char *source = arb_amqp_frame_str (source_bytes);
    char *key = arb_amqp_frame_str (key_bytes);
    int rc = -1;
    if (!dest_exchange && !*dest && arb_amqp_channel_last_queue (channel)) {
        free (dest);
        dest = strdup (arb_amqp_channel_last_queue (channel));
        if (!*key) {
            free (key);
            key = strdup (dest);
        }
    }
    arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (vhost, source);
    arb_amqp_queue_t *queue = dest_exchange ? NULL : arb_amqp_model_queue (vhost, dest);
    if (!*source || (dest_exchange && !*dest)) {
        s_fail (channel, AMQP_ACCESS_REFUSED, id,
                "ACCESS_REFUSED - operation not permitted on the default exchange");
        goto cleanup;
    }
    bool dest_missing = dest_exchange ? !arb_amqp_model_exchange (vhost, dest) : !queue;
    if (unbind && (!exchange || dest_missing) && (dest_exchange || *dest)) {
        //  RabbitMQ 3.x unbinds idempotently: a binding whose exchange or
        //  queue is gone is no binding, and Unbind-Ok says so (clients
        //  unbind in cleanups after an auto-delete queue went)
        s_op_go (s_op_new (channel, id, nowait));
        rc = 0;
        goto cleanup;
    }
    if (!exchange) {
        s_fail (channel, AMQP_NOT_FOUND, id, "NOT_FOUND - no exchange '%.200s' in vhost '%.60s'",
                source, vname);
        goto cleanup;
    }
    if (dest_missing) {
        if (!dest_exchange && !*dest)
            s_fail (channel, AMQP_NOT_FOUND, id, "NOT_FOUND - no previously declared queue");
        else
            s_fail (channel, AMQP_NOT_FOUND, id, "NOT_FOUND - no %s '%.200s' in vhost '%.60s'",
                    dest_exchange ? "exchange" : "queue", dest, vname);
        goto cleanup;
    }
    if (queue && queue->exclusive && queue->owner != conn->number
        && (!unbind || arb_amqp_model_bound (exchange, dest, dest_exchange, key, args))) {
        //  an unbind of a binding that is not there is Unbind-Ok even so:
        //  RabbitMQ looks for the binding before the queue's owner
        arb_amqp_channel_fail_locked (channel, dest, id);
        goto cleanup;
    }
    char why[200];
    if (!unbind && arb_amqp_model_check_binding (exchange, args, why, sizeof (why)) != 0) {
        s_fail (channel, AMQP_PRECONDITION_FAILED, id, "PRECONDITION_FAILED - %s", why);
        goto cleanup;
    }
    s_op_t *op = s_op_new (channel, id, nowait);
    char mkey[800];
    arb_amqp_model_binding_key (exchange, dest, dest_exchange, key, args, mkey, sizeof (mkey));
    if (unbind) {
        if (arb_amqp_model_unbind (exchange, dest, dest_exchange, key, args))
            s_store (op, mkey, NULL);
        arb_amqp_exchanges_spent (conn->server, vhost);
    }
    else if (arb_amqp_model_bind (exchange, dest, dest_exchange, key, args))
        s_store (op, mkey,
                 arb_amqp_model_binding_record (exchange, dest, dest_exchange, key, args));
    s_op_go (op);
    rc = 0;
cleanup:
    free (dest);
    free (source);
    free (key);
    return rc;
}

//  ---------------------------------------------------------------------
//  Queues

static int
s_queue_declare (arb_amqp_channel_t *channel, amqp_queue_declare_t *m)
{
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    arb_amqp_vhost_t *vhost = conn->vhost;
    const char *vname = arb_amqp_vhost_name (vhost);
    amqp_method_number_t id = AMQP_QUEUE_DECLARE_METHOD;
    char *name = arb_amqp_frame_str (m->queue);
    int rc = -1;
    char why[256];
    if (!*name && m->passive && arb_amqp_channel_last_queue (channel)) {
        free (name);
        name = strdup (arb_amqp_channel_last_queue (channel));
    }
    if (!*name) {
        free (name);
        name = arb_amqp_server_name ("amq.gen-");
    }
    else if (!arb_amqp_model_queue (vhost, name) && arb_amqp_reply_exists (conn, name)) {
        //  direct reply-to: the pseudo-queue, or a reply consumer alive,
        //  declared passively or not, with its one consumer (RabbitMQ's
        //  answers)
        if (!m->nowait) {
            amqp_queue_declare_ok_t ok = {.queue = amqp_cstring_bytes (name), .consumer_count = 1};
            arb_amqp_conn_send (conn, arb_amqp_channel_number (channel),
                                AMQP_QUEUE_DECLARE_OK_METHOD, &ok);
        }
        rc = 0;
        goto cleanup;
    }
    else if (!m->passive && strncmp (name, "amq.", 4) == 0) {
        //  even a queue that exists, its own server-named one: RabbitMQ's
        //  answer, only a passive declare may name it
        s_fail (channel, AMQP_ACCESS_REFUSED, id,
                "ACCESS_REFUSED - queue name '%.200s' contains reserved prefix 'amq.*'", name);
        goto cleanup;
    }
    arb_amqp_queue_t *queue = arb_amqp_model_queue (vhost, name);
    if (queue && queue->exclusive && queue->owner != conn->number) {
        arb_amqp_channel_fail_locked (channel, name, id);
        goto cleanup;
    }
    if (m->passive && !queue) {
        s_fail (channel, AMQP_NOT_FOUND, id, "NOT_FOUND - no queue '%.200s' in vhost '%.60s'", name,
                vname);
        goto cleanup;
    }
    if (queue && !m->passive) {
        //  in RabbitMQ's order: the exclusive flag (405), then durable, as
        //  RabbitMQ counts it (an exclusive queue is never durable: the
        //  flag is not compared), then auto_delete
        if (!queue->exclusive != !m->exclusive) {
            arb_amqp_channel_fail_locked (channel, name, id);
            goto cleanup;
        }
        bool durable = m->durable && !m->exclusive;
        const char *arg = !(queue->durable && !queue->exclusive) != !durable ? "durable"
                          : !queue->auto_delete != !m->auto_delete           ? "auto_delete"
                                                                             : NULL;
        if (arg) {
            bool received = streq (arg, "durable") ? durable : m->auto_delete;
            s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                    "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%.200s' in vhost "
                    "'%.60s': received '%s' but current is '%s'",
                    arg, name, vname, received ? "true" : "false", received ? "false" : "true");
            goto cleanup;
        }
        const char *key;
        char values[400];
        if (!arb_amqp_model_equivalent_qargs (queue->args, &m->arguments, &key, values,
                                              sizeof (values))) {
            //  RabbitMQ's text: the first argument that differs, both values
            s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                    "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%.200s' in vhost "
                    "'%.60s': %s",
                    key ? key : "arguments", name, vname, values);
            goto cleanup;
        }
    }
    s_op_t *op = s_op_new (channel, id, m->nowait);
    if (!queue) {
        arb_amqp_qargs_t settings;
        if (arb_amqp_model_check_name (vhost, name, true, why, sizeof (why))) {
            free (op);
            s_fail (channel, AMQP_PRECONDITION_FAILED, id, "PRECONDITION_FAILED - queue name: %s",
                    why);
            goto cleanup;
        }
        char subject[300];
        snprintf (subject, sizeof (subject), "queue '%.200s' in vhost '%.60s'", name, vname);
        if (arb_amqp_model_check_supported (&m->arguments, m->durable, m->exclusive, m->auto_delete,
                                            subject, why, sizeof (why))
            || arb_amqp_model_parse_qargs (&m->arguments, &settings, subject, why, sizeof (why))) {
            free (op);
            s_fail (channel, AMQP_PRECONDITION_FAILED, id, "PRECONDITION_FAILED - %s", why);
            goto cleanup;
        }
        arb_amqp_model_free_qargs (&settings);
        //  an exclusive queue is never durable, as RabbitMQ declares it
        queue = arb_amqp_model_add_queue (vhost, name, m->durable && !m->exclusive, m->exclusive,
                                          m->auto_delete, conn->number, &m->arguments);
        char key[600];
        s_store (op, arb_amqp_model_queue_key (queue, key, sizeof (key)),
                 arb_amqp_model_queue_record (queue));
        //  the broker knows it too: an empty queue is listed (the CLI, the
        //  dashboard) until it is deleted
        arb_msg_t *declare = arb_link_request_new (conn->server->link, ARB_MSG_QUEUE);
        arb_msg_queue (declare)->queue = arb_msg_strdup (declare, queue->broker);
        arb_msg_queue (declare)->op = "declare";
        s_op_wait (op, arb_gateway_send (conn->server->gateway, &declare, s_on_answer, op));
        s_op_wait (op, arb_amqp_bound_queue (conn->server, queue, s_on_answer, op));
    }
    //  a redeclare renews the lease, a passive one too (as RabbitMQ's)
    arb_amqp_queue_used (conn->server, queue);
    op->queue = strdup (name);
    arb_amqp_channel_set_last_queue (channel, name);
    s_count (op, queue);
    s_op_go (op);
    rc = 0;
cleanup:
    free (name);
    return rc;
}

static void
s_purge_now (s_op_t *op)
{
    if (!s_still (op))
        return;  //  gone meanwhile: nothing purged
    arb_amqp_t *server = arb_amqp_channel_conn (op->channel)->server;
    //  the turn's publishes and outcomes first: they are purged too, a
    //  message nacked back just before as well
    arb_gateway_flush (server->gateway);
    arb_link_flush (server->link);
    arb_msg_t *request = arb_link_request_new (server->link, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, op->broker_queue);
    arb_msg_queue (request)->op = "purge";
    s_op_wait (op, arb_gateway_send (server->gateway, &request, s_on_answer, op));
}

static int
s_queue_purge (arb_amqp_channel_t *channel, amqp_queue_purge_t *m)
{
    arb_amqp_queue_t *queue = arb_amqp_channel_queue (channel, m->queue, AMQP_QUEUE_PURGE_METHOD);
    if (!queue)
        return -1;
    s_op_t *op = s_op_new (channel, AMQP_QUEUE_PURGE_METHOD, m->nowait);
    op->queue = strdup (queue->name);
    op->want_count = true;
    s_after_trim (op, queue, s_purge_now);
    s_op_go (op);
    return 0;
}

static int
s_queue_delete (arb_amqp_channel_t *channel, amqp_queue_delete_t *m)
{
    amqp_method_number_t id = AMQP_QUEUE_DELETE_METHOD;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    char *name = arb_amqp_frame_str (m->queue);
    bool missing = *name && !arb_amqp_model_queue (conn->vhost, name);
    free (name);
    if (missing) {
        //  deleting what does not exist is fine (RabbitMQ 3.x)
        s_op_go (s_op_new (channel, id, m->nowait));
        return 0;
    }
    arb_amqp_queue_t *queue = arb_amqp_channel_queue (channel, m->queue, id);
    if (!queue)
        return -1;
    if (m->if_unused && queue->consumers)
        return s_fail (channel, AMQP_PRECONDITION_FAILED, id,
                       "PRECONDITION_FAILED - queue '%.200s' in vhost '%.60s' in use", queue->name,
                       arb_amqp_vhost_name (conn->vhost));
    s_op_t *op = s_op_new (channel, id, m->nowait);
    op->queue = strdup (queue->name);
    op->if_unused = m->if_unused;  //  checked again after a wait
    op->if_empty = m->if_empty;
    //  its count first (s_queue_delete_counted): Delete-Ok's message_count
    //  is its ready messages, as RabbitMQ's; the broker's delete counts
    //  the unacked ones it drops too
    op->empty_check = true;
    s_count (op, queue);
    s_op_go (op);
    return 0;
}

//  queue.delete once its ready count came (after its queue's trim):
//  deleted, unless if_empty and the count is not none, or if_unused and
//  the queue has a consumer now (406). The count is Delete-Ok's.
static void
s_queue_delete_counted (s_op_t *op)
{
    op->empty_check = false;
    arb_amqp_channel_t *channel = op->channel;
    arb_amqp_conn_t *conn = arb_amqp_channel_conn (channel);
    const char *vname = arb_amqp_vhost_name (conn->vhost);
    arb_amqp_queue_t *queue = s_still (op);
    if (!queue) {
        op->count = 0;  //  gone meanwhile: deleted all the same (or the channel failed)
        return;
    }
    if ((op->if_empty && op->count) || (op->if_unused && queue->consumers)) {
        op->failed = true;
        s_fail (channel, AMQP_PRECONDITION_FAILED, AMQP_QUEUE_DELETE_METHOD,
                "PRECONDITION_FAILED - queue '%.200s' in vhost '%.60s' %s", op->queue, vname,
                op->if_empty && op->count ? "not empty" : "in use");
        return;
    }
    op->want_count = false;  //  the broker's count of the delete is not Delete-Ok's
    s_delete (op, queue);
}

int
arb_amqp_admin_method (arb_amqp_channel_t *channel, amqp_method_number_t id, void *method)
{
    switch (id) {
        case AMQP_EXCHANGE_DECLARE_METHOD:
            return s_exchange_declare (channel, (amqp_exchange_declare_t *) method);
        case AMQP_EXCHANGE_DELETE_METHOD:
            return s_exchange_delete (channel, (amqp_exchange_delete_t *) method);
        case AMQP_EXCHANGE_BIND_METHOD: {
            amqp_exchange_bind_t *m = (amqp_exchange_bind_t *) method;
            return s_bind (channel, id, m->destination, true, m->source, m->routing_key,
                           &m->arguments, m->nowait, false);
        }
        case AMQP_EXCHANGE_UNBIND_METHOD: {
            amqp_exchange_unbind_t *m = (amqp_exchange_unbind_t *) method;
            return s_bind (channel, id, m->destination, true, m->source, m->routing_key,
                           &m->arguments, m->nowait, true);
        }
        case AMQP_QUEUE_DECLARE_METHOD:
            return s_queue_declare (channel, (amqp_queue_declare_t *) method);
        case AMQP_QUEUE_BIND_METHOD: {
            amqp_queue_bind_t *m = (amqp_queue_bind_t *) method;
            return s_bind (channel, id, m->queue, false, m->exchange, m->routing_key, &m->arguments,
                           m->nowait, false);
        }
        case AMQP_QUEUE_UNBIND_METHOD: {
            amqp_queue_unbind_t *m = (amqp_queue_unbind_t *) method;
            return s_bind (channel, id, m->queue, false, m->exchange, m->routing_key, &m->arguments,
                           false, true);
        }
        case AMQP_QUEUE_PURGE_METHOD:
            return s_queue_purge (channel, (amqp_queue_purge_t *) method);
        case AMQP_QUEUE_DELETE_METHOD:
            return s_queue_delete (channel, (amqp_queue_delete_t *) method);
        default:
            return s_fail (channel, AMQP_NOT_IMPLEMENTED, id, "NOT_IMPLEMENTED - %s",
                           arb_amqp_frame_method_name (id).text);
    }
}
