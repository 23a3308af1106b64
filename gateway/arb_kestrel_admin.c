/*  arb_kestrel_admin.c — the Kestrel server's delete, flush, flush_all and
    stats; see arb_kestrel_priv.h.

    delete is the broker's queue delete (QUEUE delete: every task of the
    queue cancelled, running ones too, its settings and its metadata gone,
    the records of its fan-out children among them); delete of a fan-out
    child also forgets the child. The broker's answer does not say whether
    the queue was there, and Kestrel's queue_deletes counts only queues
    that were, so a delete first asks STATS of the queue alone. flush
    purges the queue at the broker (QUEUE purge: every task not yet
    running goes), then cancels the items this server had prefetched from
    it. flush_all does that to every queue
    the broker's STATS names, one after the other. stats answers with the
    server's counters and, per queue the broker knows (by a name a
    memcache client can use), what the broker knows of it and this
    server's waiters and prefetched items. STATS is read page after page
    (arb_stats_pages).

    Listings. stats and flush_all read every page of STATS: for 40,000
    queues, 40 pages (some 30 MB of records), 0.7 s of the broker's CPU,
    and 3.7 MB of text to build in the loop. So they take turns, as the
    HTTP server's reads do (arb_http.c): at most ARB_KESTREL_ASKING ask at
    once over the server, the others wait in order (their connections take
    no command meanwhile: a command waits for the answer before it); a
    hundred clients asking at once had the gateway's session given up by
    the broker. Each page is used as it comes and let go (flush_all purges
    its queues, stats renders its lines into a frame of their own), and
    those frames are written as they are, behind the counters: an answer
    that its client does not read costs its text, not the listing.
*/

#include "arb_kestrel_priv.h"

#include <inttypes.h>

//  ---------------------------------------------------------------------
//  delete, flush, flush_all

static void s_flush_next (arb_kestrel_client_t *client);
static void s_on_queue_op (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg);

//  QUEUE op on queue, for the client's command.
static uint32_t
s_queue_op (arb_kestrel_client_t *client, const char *queue, const char *op)
{
    arb_kestrel_t *self = client->server;
    snprintf (client->op.purging, sizeof (client->op.purging), "%s", queue);
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_QUEUE);
    arb_msg_queue (request)->queue = arb_msg_strdup (request, queue);
    arb_msg_queue (request)->op = op;
    return arb_gateway_send (self->gateway, &request, s_on_queue_op, client);
}

//  The broker answered a client's request: it is no longer pending. True
//  if the answer is of the type wanted; else the client has been told
//  why (the broker's ERROR, or the link's failure) and it is false.
static bool
s_answered (arb_kestrel_client_t *client, arb_msg_t *reply, arb_msg_type_t wanted)
{
    client->op.reqid = 0;
    if (arb_msg_type (reply) == wanted)
        return true;
    arb_kestrel_answer_error (client, arb_kestrel_reason (reply));
    return false;
}

static void
s_on_queue_op (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    if (!s_answered (client, *reply_p, ARB_MSG_OK))
        return;
    bool deleted = op->verb == ARB_KESTREL_DELETE;
    //  The items this server had prefetched from the queue go too: every
    //  one the broker sent before the answer is here by now.
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_lookup (self->queues, op->purging);
    if (queue) {
        queue->pins++;
        arb_kestrel_queue_emptied (queue, deleted);
        arb_kestrel_queue_unpin (&queue);
    }
    if (op->verb == ARB_KESTREL_FLUSH_ALL) {
        s_flush_next (client);
        return;
    }
    if (deleted) {
        arb_kestrel_queue_deleted (self, op->purging);
        if (op->existed)
            self->queue_deletes++;
    }
    uint64_t slot = op->slot;
    arb_kestrel_op_end (client);
    arb_kestrel_conn_answer (client->conn, slot, deleted ? "DELETED\r\n" : "END\r\n",
                             deleted ? 9 : 5, false);
}

//  Whether a queue's STATS record shows a queue that exists: its tasks
//  (finished ones it keeps too), its settings, a declaration, or
//  consumers (workers on it, busy or idle, the gateway's own consumers).
static bool
s_queue_exists (const arb_queue_info_t *info)
{
    for (size_t state = 1; state < info->counts.n; state++)
        if (info->counts.v[state])
            return true;
    return info->declared || info->paused || info->max_running || info->rate_per_sec
           || info->retention_ms || info->on_failure || info->max_ready || info->max_ready_bytes
           || info->overflow || info->consumers;
}

//  delete: the queue's STATS record came (or not: it is unknown); now the
//  delete itself.
static void
s_on_delete_stats (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    arb_kestrel_op_t *op = &client->op;
    if (!s_answered (client, *reply_p, ARB_MSG_STATS_REPLY))
        return;
    arb_stats_reply_body_t *body = arb_msg_stats_reply (*reply_p);
    op->existed = false;
    for (size_t i = 0; i < body->queues.n; i++)
        if (streq (body->queues.v[i].name, op->purging))
            op->existed = s_queue_exists (&body->queues.v[i]);
    char queue[ARB_NAME_MAX + 1];
    snprintf (queue, sizeof (queue), "%s", op->purging);
    op->reqid = s_queue_op (client, queue, "delete");
    if (!op->reqid)
        arb_kestrel_answer_error (client, arb_gateway_error (client->server->gateway));
}

//  Whether a queue of the broker's is one a Kestrel client can name
//  (other protocols' queues, with '.' or '@', are not): stats lists
//  only these, and flush_all purges only these.
static bool
s_is_kestrel_queue (const char *name)
{
    size_t parent_len;
    char why[128];
    return arb_kestrel_cmd_check_queue (name, strlen (name), &parent_len, why, sizeof (why)) == 0;
}

static void s_listing_next (arb_kestrel_client_t *client);

//  flush_all: purges the queues of the page of STATS one after the
//  other, then reads the next page.
static void
s_flush_next (arb_kestrel_client_t *client)
{
    arb_kestrel_op_t *op = &client->op;
    arb_stats_reply_body_t *body = arb_stats_pages_reply (op->stats);
    while (op->next_queue < body->queues.n
           && !s_is_kestrel_queue (body->queues.v[op->next_queue].name))
        op->next_queue++;
    if (op->next_queue == body->queues.n && op->more) {
        s_listing_next (client);
        return;
    }
    if (op->next_queue == body->queues.n) {
        uint64_t slot = op->slot;
        arb_kestrel_op_end (client);
        arb_kestrel_conn_answer (client->conn, slot, "Flushed all queues.\r\n", 21, false);
        return;
    }
    op->reqid = s_queue_op (client, body->queues.v[op->next_queue++].name, "purge");
    if (!op->reqid)
        arb_kestrel_answer_error (client, arb_gateway_error (client->server->gateway));
}

//  ---------------------------------------------------------------------
//  stats

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

//  A count of the queue's tasks in state (0 if the reply has none).
static uint64_t
s_count (const arb_queue_info_t *info, int state)
{
    return (size_t) state < info->counts.n ? info->counts.v[state] : 0;
}

//  One queue's lines. Kestrel's keys, from what the broker knows and what
//  this server holds (docs/gateway.md, "Stats"): items waiting (ready at
//  the broker, and prefetched here), tasks the broker keeps, how long the
//  oldest waiting item has waited, items handed out and not finished (the
//  broker's running tasks, less those prefetched here), this server's
//  waiters, the items its bound dropped (discarded), and a parent's
//  children.
static void
s_stats_queue (arb_kestrel_t *self,
               const arb_queue_info_t *info,
               uint64_t now,
               char **text,
               size_t *len,
               size_t *cap)
{
    arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_lookup (self->queues, info->name);
    size_t prefetched = queue ? queue->item_count : 0;
    uint64_t kept = 0;
    for (int state = 1; state <= ARB_STATE_MAX; state++)
        kept += s_count (info, state);
    //  the prefetched items are the head of the queue: older than the
    //  broker's oldest ready task
    uint64_t age = info->oldest_ready_ms;
    if (queue && queue->items && now > queue->items->tags.created_ms
        && now - queue->items->tags.created_ms > age)
        age = now - queue->items->tags.created_ms;
    uint64_t running = s_count (info, ARB_STATE_RUNNING);
    const char *q = info->name;
    s_text_addf (text, len, cap,
                 "STAT queue_%s_items %" PRIu64 "\r\nSTAT queue_%s_total_items %" PRIu64
                 "\r\nSTAT queue_%s_age %" PRIu64 "\r\nSTAT queue_%s_waiters %zu\r\n"
                 "STAT queue_%s_open_transactions %" PRIu64 "\r\nSTAT queue_%s_discarded %" PRIu64
                 "\r\n",
                 q, s_count (info, ARB_STATE_READY) + prefetched, q, kept, q, age, q,
                 queue ? queue->waiters : 0, q, running > prefetched ? running - prefetched : 0, q,
                 info->dropped);
    if (queue && queue->children) {
        s_text_addf (text, len, cap, "STAT queue_%s_children ", q);
        const char *sep = "";
        for (arb_kestrel_child_t *child = (arb_kestrel_child_t *) zlistx_first (queue->children);
             child; child = (arb_kestrel_child_t *) zlistx_next (queue->children), sep = ",")
            s_text_addf (text, len, cap, "%s%s", sep, child->name);
        s_text_addf (text, len, cap, "\r\n");
    }
}

//  stats: the lines of the page's queues whose names a memcache client
//  can use, kept as a frame of their own; then the page goes.
static void
s_stats_lines (arb_kestrel_client_t *client)
{
    arb_kestrel_op_t *op = &client->op;
    arb_stats_reply_body_t *body = arb_stats_pages_reply (op->stats);
    size_t cap = 4096, len = 0;
    char *text = (char *) malloc (cap);
    assert (text);
    uint64_t now = (uint64_t) zclock_time ();
    for (size_t i = 0; i < body->queues.n; i++) {
        const arb_queue_info_t *info = &body->queues.v[i];
        op->ready += s_count (info, ARB_STATE_READY);
        if (s_is_kestrel_queue (info->name))
            s_stats_queue (client->server, info, now, &text, &len, &cap);
    }
    if (len)
        zmsg_addmem (op->lines, text, len);
    free (text);
    arb_stats_pages_drop (op->stats);
}

//  The stats answer: the server's counters, then the lines of every queue
//  listed, as they were rendered.
static void
s_stats_answer (arb_kestrel_client_t *client)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    size_t cap = 4096, len = 0;
    char *text = (char *) malloc (cap);
    assert (text);
    uint64_t items = op->ready;
    for (arb_kestrel_queue_t *queue = (arb_kestrel_queue_t *) zhashx_first (self->queues); queue;
         queue = (arb_kestrel_queue_t *) zhashx_next (self->queues))
        items += queue->item_count;
    uint64_t now = (uint64_t) zclock_time ();
    s_text_addf (&text, &len, &cap,
                 "STAT uptime %" PRIu64 "\r\nSTAT time %" PRIu64
                 "\r\nSTAT version %s\r\nSTAT arbiter_version %s\r\n"
                 "STAT curr_items %" PRIu64 "\r\nSTAT total_items %" PRIu64 "\r\n"
                 "STAT curr_connections %zu\r\nSTAT total_connections %" PRIu64 "\r\n"
                 "STAT cmd_get %" PRIu64 "\r\nSTAT cmd_set %" PRIu64 "\r\nSTAT cmd_peek %" PRIu64
                 "\r\nSTAT get_hits %" PRIu64 "\r\nSTAT get_misses %" PRIu64
                 "\r\nSTAT bytes_read %" PRIu64 "\r\nSTAT bytes_written %" PRIu64
                 "\r\nSTAT queue_creates %" PRIu64 "\r\nSTAT queue_deletes %" PRIu64 "\r\n",
                 (now - self->started_ms) / 1000, now / 1000, ARB_KESTREL_PROTOCOL, ARB_VERSION,
                 items, self->total_items, zlistx_size (self->clients), self->total_connections,
                 self->cmd_get, self->cmd_set, self->cmd_peek, self->get_hits, self->get_misses,
                 self->io.bytes_read, self->io.bytes_written, self->queue_creates,
                 self->queue_deletes);
    uint64_t slot = op->slot;
    zmsg_t *lines = op->lines;
    op->lines = NULL;
    arb_kestrel_op_end (client);
    zframe_t *frame = zframe_new (text, len);
    free (text);
    arb_kestrel_conn_add_frame (client->conn, slot, &frame);
    while ((frame = zmsg_pop (lines)))
        arb_kestrel_conn_add_frame (client->conn, slot, &frame);
    zmsg_destroy (&lines);
    arb_kestrel_conn_answer (client->conn, slot, "END\r\n", 5, false);
}

static void s_on_stats (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg);

//  Asks for the next page of STATS (the pages so far let go).
static void
s_listing_next (arb_kestrel_client_t *client)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    arb_stats_pages_drop (op->stats);
    arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_STATS);
    arb_stats_pages_request (op->stats, request);
    op->reqid = arb_gateway_send (self->gateway, &request, s_on_stats, client);
    if (!op->reqid)
        arb_kestrel_answer_error (client, arb_gateway_error (self->gateway));
}

static void
s_on_stats (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) arg;
    arb_kestrel_op_t *op = &client->op;
    if (!s_answered (client, *reply_p, ARB_MSG_STATS_REPLY))
        return;
    int more = arb_stats_pages_add (op->stats, reply_p);
    if (more < 0) {
        arb_kestrel_answer_error (client, "too many queues to list");
        return;
    }
    op->more = more > 0;
    if (op->verb == ARB_KESTREL_FLUSH_ALL) {
        op->next_queue = 0;
        s_flush_next (client);
        return;
    }
    s_stats_lines (client);
    if (op->more)
        s_listing_next (client);
    else
        s_stats_answer (client);
}

//  ---------------------------------------------------------------------
//  Turns of the listings

//  Starts the client's listing, its turn come: its first page of STATS.
void
arb_kestrel_listing_start (void *item)
{
    arb_kestrel_client_t *client = (arb_kestrel_client_t *) item;
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    if (!arb_gateway_is_open (self->gateway)) {
        arb_kestrel_answer_error (client, "the broker is unavailable");
        return;
    }
    //  what this turn settled (a get's RESULT, an /abort) reaches the
    //  broker first, so that the counts include it
    arb_link_flush (self->link);
    op->stats = arb_stats_pages_new (NULL);
    op->lines = op->verb == ARB_KESTREL_STATS ? zmsg_new () : NULL;
    op->ready = 0;
    s_listing_next (client);
}

void
arb_kestrel_listing_leave (arb_kestrel_client_t *client)
{
    arb_turns_leave (client->server->turns, &client->op.turn);
}

//  ---------------------------------------------------------------------

void
arb_kestrel_admin (arb_kestrel_client_t *client, const arb_kestrel_cmd_t *cmd, uint64_t slot)
{
    arb_kestrel_t *self = client->server;
    arb_kestrel_op_t *op = &client->op;
    op->slot = slot;
    op->verb = cmd->verb;
    op->kind = ARB_KESTREL_OP_ADMIN;
    if (!arb_gateway_is_open (self->gateway)) {
        arb_kestrel_answer_error (client, "the broker is unavailable");
        return;
    }
    char queue[ARB_NAME_MAX + 1];
    snprintf (queue, sizeof (queue), "%.*s", (int) cmd->queue_len, cmd->queue);
    if (cmd->verb == ARB_KESTREL_DELETE) {
        //  until the children are loaded, a delete could lose to the load
        //  (a child forgotten here, then listed)
        if (!self->children_loaded) {
            arb_kestrel_answer_error (client, "starting: fan-out queues not loaded yet");
            return;
        }
        if (cmd->parent_len)
            arb_kestrel_child_delete (self, cmd);
        snprintf (op->purging, sizeof (op->purging), "%s", queue);
        arb_msg_t *request = arb_link_request_new (self->link, ARB_MSG_STATS);
        arb_msg_stats (request)->queue = arb_msg_strdup (request, queue);
        op->reqid = arb_gateway_send (self->gateway, &request, s_on_delete_stats, client);
    }
    else if (cmd->verb == ARB_KESTREL_FLUSH) {
        if (arb_kestrel_child_note (self, cmd)) {
            arb_kestrel_answer_error (client, "too many fan-out queues");
            return;
        }
        arb_kestrel_declare (self, cmd->queue, cmd->queue_len);
        op->reqid = s_queue_op (client, queue, "purge");
    }
    else {
        //  stats, flush_all: a listing, which takes its turn (a start that
        //  fails at once answers, and so leaves)
        arb_turns_take (self->turns, &op->turn, client);
        return;
    }
    if (!op->reqid)
        arb_kestrel_answer_error (client, arb_gateway_error (self->gateway));
}
