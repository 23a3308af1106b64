/*  arb_kestrel_admin.c — the Kestrel server's delete, flush, flush_all and
    stats; see arb_kestrel_priv.h.

    delete and flush purge the queue at the broker (QUEUE purge: every
    task not yet running goes), then cancel the items this server had
    prefetched from it; delete of a fan-out child also forgets the child.
    flush_all does that to every queue the broker's STATS names, one after
    the other. stats answers with the server's counters and, per queue the
    broker knows (by a name a memcache client can use), its waiting items
    and this server's waiters and open items.
*/

#include "arb_kestrel_priv.h"

#include <inttypes.h>

//  ---------------------------------------------------------------------
//  delete, flush, flush_all, stats

static void s_flush_next (arb_kestrel_client_t *client);

static uint32_t
s_purge (arb_kestrel_client_t *client, const char *queue, arb_gateway_reply_fn *fn)
{
    arb_kestrel_t *self = client->server;
    snprintf (client->op.purging, sizeof (client->op.purging), "%s", queue);
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, queue);
    arb_msg_queue (request)->op = "purge";
    return arb_gateway_send (self->gateway, &request, fn, client);
}

static void
s_on_purged (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    arb_kestrel_op_t *op = &client->op;
    op->reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_OK) {
        arb_kestrel_answer_error (client, arb_kestrel_reason (*reply_p));
        return;
    }
    //  The purge leaves leased tasks alone: the items this server had
    //  prefetched from the queue go too. Every one the broker sent before
    //  the purge is here by now (its answer came after them).
    arb_kestrel_queue_t *queue =
        (arb_kestrel_queue_t *) zhashx_lookup (client->server->queues, op->purging);
    if (queue) {
        queue->pins++;
        arb_kestrel_queue_drop_items (queue);
        arb_kestrel_queue_unpin (&queue);
    }
    if (op->verb == ARB_KESTREL_FLUSH_ALL) {
        s_flush_next (client);
        return;
    }
    uint64_t slot = op->slot;
    bool deleted = op->verb == ARB_KESTREL_DELETE;
    if (deleted)
        client->server->queue_deletes++;
    arb_kestrel_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, deleted ? "DELETED\r\n" : "END\r\n",
                             deleted ? 9 : 5, false);
}

//  flush_all: purges the queues of the STATS reply one after the other.
static void
s_flush_next (arb_kestrel_client_t *client)
{
    arb_kestrel_op_t *op = &client->op;
    arb_stats_reply_body_t *body = arb_msg_stats_reply (op->stats);
    if (op->next_queue == body->queues.n) {
        uint64_t slot = op->slot;
        arb_kestrel_op_end (client);
        arb_kestrel_conn_answer (client->conn, slot, "Flushed all queues.\r\n", 21, false);
        return;
    }
    op->reqid = s_purge (client, body->queues.v[op->next_queue++].name, s_on_purged);
    if (!op->reqid)
        arb_kestrel_answer_error (client, arb_gateway_error (client->server->gateway));
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
//  count of waiting items (with those this server prefetched), and this
//  server's waiters and open items.
static void
s_stats_answer (arb_kestrel_client_t *client, arb_stats_reply_body_t *body)
{
    arb_kestrel_t *self = client->server;
    size_t cap = 4096, len = 0;
    char *text = (char *) malloc (cap);
    assert (text);
    uint64_t items = 0;
    for (size_t i = 0; i < body->queues.n; i++)
        if (body->queues.v[i].counts.n > ARB_STATE_READY)
            items += body->queues.v[i].counts.v[ARB_STATE_READY];
    for (arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_first (self->queues); queue;
         queue = (arb_kestrel_queue_t *) zhashx_next (self->queues))
        items += queue->item_count;
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
        arb_kestrel_queue_t *queue =
            (arb_kestrel_queue_t *) zhashx_lookup (self->queues, info->name);
        const char *q = info->name;
        s_text_addf (&text, &len, &cap,
                     "STAT queue_%s_items %" PRIu64 "\r\nSTAT queue_%s_waiters %zu\r\n"
                     "STAT queue_%s_open_transactions %zu\r\n",
                     q,
                     (info->counts.n > ARB_STATE_READY ? info->counts.v[ARB_STATE_READY] : 0)
                         + (queue ? queue->item_count : 0),
                     q, queue ? queue->waiters : 0, q, queue ? queue->opens : 0);
        if (queue && queue->children) {
            s_text_addf (&text, &len, &cap, "STAT queue_%s_children ", q);
            const char *sep = "";
            for (arb_kestrel_child_t *child =
                     (arb_kestrel_child_t *) zlistx_first (queue->children);
                 child; child = (arb_kestrel_child_t *) zlistx_next (queue->children), sep = ",")
                s_text_addf (&text, &len, &cap, "%s%s", sep, child->name);
            s_text_addf (&text, &len, &cap, "\r\n");
        }
    }
    s_text_addf (&text, &len, &cap, "END\r\n");
    uint64_t slot = client->op.slot;
    arb_kestrel_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, text, len, false);
    free (text);
}

static void
s_on_stats (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    arb_kestrel_op_t *op = &client->op;
    op->reqid = 0;
    if (arb_msg_type (*reply_p) != ARB_MSG_STATS_REPLY)
        arb_kestrel_answer_error (client, arb_kestrel_reason (*reply_p));
    else if (op->verb == ARB_KESTREL_STATS)
        s_stats_answer (client, arb_msg_stats_reply (*reply_p));
    else {
        op->stats = *reply_p;
        *reply_p = NULL;
        op->next_queue = 0;
        s_flush_next (client);
    }
}

void
arb_kestrel_admin (arb_kestrel_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    op->slot = slot;
    op->verb = cmd->verb;
    op->kind = ARB_KESTREL_OP_ADMIN;
    if (!arb_gateway_is_up (self->gateway)) {
        arb_kestrel_answer_error (client, "the broker is unavailable");
        return;
    }
    if (cmd->verb == ARB_KESTREL_DELETE || cmd->verb == ARB_KESTREL_FLUSH) {
        char queue[ARB_NAME_MAX + 1];
        snprintf (queue, sizeof (queue), "%.*s", (int) cmd->queue_len, cmd->queue);
        if (cmd->verb == ARB_KESTREL_DELETE && cmd->parent_len)
            arb_kestrel_child_delete (self, cmd);
        else if (arb_kestrel_child_note (self, cmd)) {
            arb_kestrel_answer_error (client, "too many fan-out queues");
            return;
        }
        op->reqid = s_purge (client, queue, s_on_purged);
    }
    else {
        arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_STATS);
        op->reqid = arb_gateway_send (self->gateway, &request, s_on_stats, client);
    }
    if (!op->reqid)
        arb_kestrel_answer_error (client, arb_gateway_error (self->gateway));
}
