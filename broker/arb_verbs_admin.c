/*  arb_verbs_admin.c — the admin verbs: STATS, QUEUE, LIMIT, EVENTS,
    PEEK, META, PING, SCHEDULE. See arb_verbs.h for what a handler may do.
*/

#include "arb_verbs_priv.h"
#include "arb_settings.h"

#define ARB_WORKER_QUEUES_SHOWN 100  //  distinct queue names STATS shows per worker

//  The on_failure policies by their ARB_ON_FAILURE_* number, as QUEUE and
//  STATS name them.
static const char *s_on_failure_names[] = {"retry", "head", "dead"};
#define ARB_ON_FAILURE_COUNT (sizeof (s_on_failure_names) / sizeof (s_on_failure_names[0]))

//  ---------------------------------------------------------------------
//  STATS: queues and workers, a page of each, in name (identity) order.
//  It walks the queues and sessions, never a queue's tasks.

//  Whether a queue shows in the listing: it is declared, has settings,
//  has tasks (unfinished, or finished and kept), or a consumer waits for
//  its tasks (a subscription with credit). One whose subscriptions have
//  no credit does not (a deleted queue that busy workers still name), nor
//  a worker's empty endpoint queue; a listed queue's consumers count the
//  busy ones too (arb_sched_consumers).
static bool
s_queue_is_listed (arb_queue_t *queue)
{
    bool holds = false;
    for (int state = 1; state <= ARB_STATE_MAX && !holds; state++)
        holds = arb_queue_counts (queue)[state] != 0;
    if (holds || strchr (arb_queue_name (queue), '@'))
        return holds;
    if (arb_queue_has_settings (queue))
        return true;
    for (size_t i = 0; i < arb_queue_consumer_count (queue); i++)
        if (((arb_sub_t *) arb_queue_consumer_at (queue, i))->credit > 0)
            return true;
    return false;
}

//  The settings of a queue that are set, in its STATS record.
static void
s_queue_settings (arb_queue_t *queue, arb_queue_info_t *info)
{
    arb_queue_settings_t *settings = arb_queue_settings (queue);
    info->paused = settings->paused;
    info->declared = settings->declared;
    info->max_running = arb_queue_limit (queue)->max_running;
    info->rate_per_sec = arb_queue_limit (queue)->rate_per_sec;
    info->retention_ms = settings->retention_ms;
    info->max_ready = settings->max_ready;
    info->max_ready_bytes = settings->max_ready_bytes;
    info->overflow = settings->reject ? "reject" : NULL;
    if (settings->on_failure != ARB_ON_FAILURE_RETRY
        && (size_t) settings->on_failure < ARB_ON_FAILURE_COUNT)
        info->on_failure = s_on_failure_names[settings->on_failure];
}

//  Copies n numbers into a list owned by the reply.
static void
s_numbers (arb_msg_t *reply, arb_ids_t *list, const uint64_t *numbers, size_t n)
{
    list->n = n;
    list->v = (uint64_t *) arb_msg_alloc (reply, n * sizeof (uint64_t));
    memcpy (list->v, numbers, n * sizeof (uint64_t));
}

//  The broker's counters since start, and what its memory holds now.
static void
s_tally (arb_msg_t *reply, arb_life_t *life)
{
    const arb_tally_t *tally = arb_life_tally (life);
    arb_stats_reply_body_t *out = arb_msg_stats_reply (reply);
    out->tasks_in_memory = arb_sched_task_count (arb_life_sched (life));
    out->tasks_cold = arb_sched_cold_count (arb_life_sched (life));
    out->watches = arb_life_watch_count (life);
    out->submitted = tally->submitted;
    out->dispatched = tally->dispatched;
    s_numbers (reply, &out->finished, tally->finished, ARB_STATE_MAX + 1);
    out->commits = tally->commits;
    out->commit_us = tally->commit_us;
    s_numbers (reply, &out->commit_buckets, tally->commit_buckets, ARB_COMMIT_BUCKETS);
}

static void
s_add_queue (const arb_verbs_t *verbs, arb_msg_t *reply, arb_queue_t *queue)
{
    arb_stats_reply_body_t *out = arb_msg_stats_reply (reply);
    arb_queue_info_t *info =
        (arb_queue_info_t *) arb_msg_grow (reply, &out->queues, sizeof (*info), 1);
    info->name = arb_msg_strdup (reply, arb_queue_name (queue));
    s_numbers (reply, &info->counts, arb_queue_counts (queue), ARB_STATE_MAX + 1);
    info->ready_bytes = *arb_queue_ready_bytes (queue);
    info->dropped = *arb_queue_dropped (queue);
    s_queue_settings (queue, info);
    info->done_last_minute = arb_queue_done_last_minute (queue, verbs->clock->now_ms);
    info->oldest_ready_ms = arb_queue_oldest_ms (queue, verbs->clock->now_ms);
    uint64_t seconds[ARB_DONE_SECONDS];
    arb_queue_done_seconds (queue, verbs->clock->now_ms, seconds);
    s_numbers (reply, &info->done_seconds, seconds, ARB_DONE_SECONDS);
    info->consumers = (uint32_t) arb_sched_consumers (arb_life_sched (verbs->life), queue);
}

static void
s_add_worker (const arb_verbs_t *verbs, arb_msg_t *reply, arb_session_t *session)
{
    arb_stats_reply_body_t *out = arb_msg_stats_reply (reply);
    arb_worker_stats_t *w =
        (arb_worker_stats_t *) arb_msg_grow (reply, &out->workers, sizeof (*w), 1);
    w->name = arb_msg_strdup (reply, arb_session_name (session));
    w->identity = arb_msg_strdup (reply, arb_session_key (session));
    w->slots = arb_session_slots (session);
    w->credit = (uint32_t) arb_session_credit (session);
    w->busy = (uint32_t) arb_session_lease_count (session);
    //  last heartbeat as Unix ms (the session keeps monotonic time, read
    //  when the message was, so it may be past the turn's clock)
    uint64_t seen = arb_session_last_seen (session), mono = verbs->clock->mono_ms;
    w->last_seen_ms = seen >= mono ? verbs->clock->now_ms : verbs->clock->now_ms - (mono - seen);
    //  each queue once (the gateway names one many times), and a few
    for (size_t s = 0; s < arb_session_sub_count (session); s++) {
        arb_sub_t *sub = arb_session_sub_at (session, s);
        for (size_t q = 0; q < sub->queue_count && w->queues.n < ARB_WORKER_QUEUES_SHOWN; q++) {
            bool shown = false;
            for (size_t k = 0; k < w->queues.n && !shown; k++)
                shown = streq (w->queues.v[k], sub->queues[q]);
            if (!shown)
                *(const char **) arb_msg_grow (reply, &w->queues, sizeof (char *), 1) =
                    arb_msg_strdup (reply, sub->queues[q]);
        }
    }
}

typedef struct {
    const char *name;
    void *item;
} s_named_t;

static int
s_compare_named (const void *a, const void *b)
{
    return strcmp (((const s_named_t *) a)->name, ((const s_named_t *) b)->name);
}

//  The items of a map whose names sort after `after`, sorted, at most
//  limit of them into page (count returned); *more if some were left.
//  name_of gives an item's name; keep (if not NULL) says which count.
static size_t
s_page (zhashx_t *map,
        const char *(*name_of) (void *item),
        bool (*keep) (void *item),
        const char *after,
        size_t limit,
        s_named_t *page,
        bool *more)
{
    s_named_t *all = (s_named_t *) malloc ((zhashx_size (map) + 1) * sizeof (s_named_t));
    size_t count = 0;
    for (void *item = zhashx_first (map); item; item = zhashx_next (map))
        if ((!keep || keep (item)) && (!after || strcmp (name_of (item), after) > 0))
            all[count++] = (s_named_t){name_of (item), item};
    qsort (all, count, sizeof (s_named_t), s_compare_named);
    *more = count > limit;
    count = count < limit ? count : limit;
    memcpy (page, all, count * sizeof (s_named_t));
    free (all);
    return count;
}

static const char *
s_queue_name (void *queue)
{
    return arb_queue_name ((arb_queue_t *) queue);
}

static bool
s_queue_listed (void *queue)
{
    return s_queue_is_listed ((arb_queue_t *) queue);
}

static const char *
s_session_key (void *session)
{
    return arb_session_key ((arb_session_t *) session);
}

void
arb_verbs_stats (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_stats_body_t *body = arb_msg_stats (msg);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_STATS_REPLY);
    arb_stats_reply_body_t *out = arb_msg_stats_reply (reply);
    out->now_ms = verbs->clock->now_ms;
    out->uptime_ms = verbs->clock->now_ms - verbs->started_ms;
    arb_sched_t *sched = arb_life_sched (verbs->life);
    if (body->queue) {
        //  one queue, by name, listed or not: what the gateway asks of one
        arb_queue_t *queue = arb_sched_find_queue (sched, body->queue);
        if (queue)
            s_add_queue (verbs, reply, queue);
        s_tally (reply, verbs->life);
        arb_outbox_reply (verbs->outbox, &reply);
        return;
    }
    size_t limit = body->limit && body->limit < ARB_STATS_PAGE ? body->limit : ARB_STATS_PAGE;
    s_named_t *page = (s_named_t *) malloc (limit * sizeof (s_named_t));
    size_t count = s_page (arb_sched_queues (sched), s_queue_name, s_queue_listed, body->after,
                           limit, page, &out->more);
    for (size_t i = 0; i < count; i++)
        s_add_queue (verbs, reply, (arb_queue_t *) page[i].item);
    count = s_page (arb_sched_sessions (sched), s_session_key, NULL, body->after_worker, limit,
                    page, &out->more_workers);
    for (size_t i = 0; i < count; i++)
        s_add_worker (verbs, reply, (arb_session_t *) page[i].item);
    free (page);
    s_tally (reply, verbs->life);
    arb_outbox_reply (verbs->outbox, &reply);
}

//  ---------------------------------------------------------------------
//  QUEUE, LIMIT

//  Checks a QUEUE set's on_failure and clear list into change. 0, or -1
//  after refusing the request.
static int
s_queue_change (const arb_verbs_t *verbs, arb_msg_t *msg, arb_queue_change_t *change)
{
    arb_queue_body_t *body = arb_msg_queue (msg);
    if (body->on_failure) {
        for (size_t i = 0; i < ARB_ON_FAILURE_COUNT; i++)
            if (streq (body->on_failure, s_on_failure_names[i]))
                change->on_failure = (int) i;
        if (change->on_failure < 0) {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                               "on_failure: '%s' is not retry, head or dead", body->on_failure);
            return -1;
        }
    }
    for (size_t i = 0; i < body->clear.n; i++) {
        const char *name = body->clear.v[i];
        if (streq (name, "max_running"))
            change->clear_max_running = true;
        else if (streq (name, "rate_per_sec"))
            change->clear_rate_per_sec = true;
        else if (streq (name, "retention_ms"))
            change->clear_retention_ms = true;
        else if (streq (name, "on_failure"))
            change->clear_on_failure = true;
        else if (streq (name, "max_ready"))
            change->clear_max_ready = true;
        else if (streq (name, "max_ready_bytes"))
            change->clear_max_ready_bytes = true;
        else if (streq (name, "overflow"))
            change->clear_overflow = true;
        else {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                               "clear[%zu]: '%s' is not a setting", i, name);
            return -1;
        }
    }
    if (body->overflow) {
        change->overflow = streq (body->overflow, "reject")      ? ARB_OVERFLOW_REJECT
                           : streq (body->overflow, "drop-head") ? ARB_OVERFLOW_DROP_HEAD
                                                                 : 0;
        if (!change->overflow) {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                               "overflow: '%s' is not drop-head or reject", body->overflow);
            return -1;
        }
    }
    if (body->retention_ms > ARB_RETENTION_MAX_MS) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "retention_ms: over the limit of %llu", ARB_RETENTION_MAX_MS);
        return -1;
    }
    change->max_running = body->max_running;
    change->rate_per_sec = body->rate_per_sec;
    change->retention_ms = body->retention_ms;
    change->max_ready = body->max_ready;
    change->max_ready_bytes = body->max_ready_bytes;
    return 0;
}

//  Deletes a queue: its tasks (as CANCEL does), its journal rows, its
//  settings and metadata. Returns the tasks cancelled; the caller checks
//  for a halt.
static uint64_t
s_delete_queue (const arb_verbs_t *verbs, const char *queue)
{
    uint64_t count = arb_life_delete_queue (verbs->life, queue);
    if (!arb_life_is_halted (verbs->life) && arb_settings_forget_queue (verbs->journal, queue))
        arb_life_halt (verbs->life, "delete queue");
    return count;
}

void
arb_verbs_queue (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_queue_body_t *body = arb_msg_queue (msg);
    bool pause = streq (body->op, "pause"), resume = streq (body->op, "resume");
    bool purge = streq (body->op, "purge"), set = streq (body->op, "set");
    bool declare = streq (body->op, "declare"), delete = streq (body->op, "delete");
    if (!pause && !resume && !purge && !set && !declare && !delete) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "op: '%s' is not pause, resume, purge, set, declare or delete",
                           body->op);
        return;
    }
    if (!*body->queue || ((declare || delete) && strchr (body->queue, '@'))) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "queue: '%s' is not a queue name (empty, or holds '@')", body->queue);
        return;
    }
    arb_queue_change_t change = {.paused = -1, .declare = declare, .on_failure = -1};
    if (pause || resume)
        change.paused = pause;
    if (set && s_queue_change (verbs, msg, &change))
        return;
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_OK);
    arb_queue_t *known = arb_sched_find_queue (arb_life_sched (verbs->life), body->queue);
    if (purge)
        //  everything not yet running goes; running tasks finish
        arb_msg_ok (reply)->count = arb_life_purge_queue (verbs->life, body->queue);
    else if (delete)
        arb_msg_ok (reply)->count = s_delete_queue (verbs, body->queue);
    else {
        //  declare: 1 if the queue was not declared before
        arb_msg_ok (reply)->count = declare && !(known && arb_queue_settings (known)->declared);
        if (arb_settings_change_queue (arb_life_sched (verbs->life), verbs->journal, body->queue,
                                       &change))
            arb_life_halt (verbs->life, "queue settings");
        else if (change.max_ready || change.max_ready_bytes
                 || change.overflow == ARB_OVERFLOW_DROP_HEAD || change.clear_overflow)
            //  a bound set on a queue already over it holds at once (with
            //  drop-head: reject refuses only what comes)
            arb_life_hold_bounds (verbs->life,
                                  arb_sched_find_queue (arb_life_sched (verbs->life), body->queue),
                                  NULL, 0, NULL);
    }
    if (arb_life_is_halted (verbs->life))
        arb_msg_destroy (&reply);
    else
        arb_outbox_reply (verbs->outbox, &reply);
}

void
arb_verbs_limit (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_limit_body_t *body = arb_msg_limit (msg);
    if (!*body->name) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID, "name: must not be empty");
        return;
    }
    bool clear_max_running = false, clear_rate_per_sec = false;
    for (size_t i = 0; i < body->clear.n; i++) {
        if (streq (body->clear.v[i], "max_running"))
            clear_max_running = true;
        else if (streq (body->clear.v[i], "rate_per_sec"))
            clear_rate_per_sec = true;
        else {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                               "clear[%zu]: '%s' is not a limit", i, body->clear.v[i]);
            return;
        }
    }
    if (arb_settings_change_limit (arb_life_sched (verbs->life), verbs->journal, body->name,
                                   body->max_running, body->rate_per_sec, clear_max_running,
                                   clear_rate_per_sec)) {
        arb_life_halt (verbs->life, "limit");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_OK);
    arb_outbox_reply (verbs->outbox, &reply);
}

static void
s_add_limit (arb_msg_t *reply, void *entry)
{
    arb_limits_reply_body_t *out = arb_msg_limits_reply (reply);
    arb_limit_info_t *info =
        (arb_limit_info_t *) arb_msg_grow (reply, &out->limits, sizeof (*info), 1);
    const arb_limit_t *limit = arb_sched_limited_limit (entry);
    info->name = arb_msg_strdup (reply, arb_sched_limited_name (entry));
    info->max_running = limit->max_running;
    info->rate_per_sec = limit->rate_per_sec;
    info->running = limit->running;
}

//  LIMITS: the names with a limit, a page sorted by name, or one name.
void
arb_verbs_limits (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_limits_body_t *body = arb_msg_limits (msg);
    zhashx_t *names = arb_sched_limited_names (arb_life_sched (verbs->life));
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_LIMITS_REPLY);
    if (body->name) {
        void *entry = zhashx_lookup (names, body->name);
        if (entry)
            s_add_limit (reply, entry);
        arb_outbox_reply (verbs->outbox, &reply);
        return;
    }
    size_t limit = body->limit && body->limit < ARB_STATS_PAGE ? body->limit : ARB_STATS_PAGE;
    s_named_t *page = (s_named_t *) malloc (limit * sizeof (s_named_t));
    size_t count = s_page (names, arb_sched_limited_name, NULL, body->after, limit, page,
                           &arb_msg_limits_reply (reply)->more);
    for (size_t i = 0; i < count; i++)
        s_add_limit (reply, page[i].item);
    free (page);
    arb_outbox_reply (verbs->outbox, &reply);
}

//  ---------------------------------------------------------------------
//  EVENTS, PEEK, META, PING

void
arb_verbs_events (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_events_body_t *body = arb_msg_events (msg);
    arb_outbox_subscribe (verbs->outbox, arb_msg_routing_id (msg), body->queue, !body->off);
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_OK);
    arb_outbox_reply (verbs->outbox, &reply);
}

//  PEEK shows what a TAKE would hand out next, without leasing it: the
//  first ready tasks in order, with their payloads and headers, as far
//  as ARB_REPLY_BYTES of them (one at least).
void
arb_verbs_peek (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_peek_body_t *body = arb_msg_peek (msg);
    uint32_t max = body->max ? body->max : 1;
    if (max > ARB_PEEK_MAX)
        max = ARB_PEEK_MAX;
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PEEK_REPLY);
    arb_peek_reply_body_t *out = arb_msg_peek_reply (reply);
    arb_task_t *seen[ARB_PEEK_MAX];
    size_t count = arb_life_peek (verbs->life, body->queue, seen, max);
    size_t bytes = 0;
    for (size_t i = 0; i < count && bytes < ARB_REPLY_BYTES; i++) {
        arb_task_t *task = seen[i];
        arb_dispatch_task_t *d =
            (arb_dispatch_task_t *) arb_msg_grow (reply, &out->tasks, sizeof (*d), 1);
        d->id = task->id;
        d->attempt = task->attempts + 1;
        d->delivered = task->delivered;
        d->queue = arb_msg_strdup (reply, arb_queue_name (task->queue));
        d->name = arb_msg_strdup (reply, task->name);
        d->timeout_ms = arb_task_ext (task)->timeout_ms;
        d->soft_timeout_ms = arb_task_ext (task)->soft_timeout_ms;
        d->created_ms = task->created_ms;
        zframe_t *headers = NULL;
        arb_bin_t cached, cached_headers;
        if (arb_sched_cache_view (arb_life_sched (verbs->life), task, &cached, &cached_headers)) {
            d->payload = zframe_new (cached.data, cached.size);
            d->headers = arb_msg_bindup (reply, cached_headers.data, cached_headers.size);
        }
        else if (arb_journal_load_payload (verbs->journal, task->id, &d->payload, &headers, NULL)) {
            arb_life_halt (verbs->life, "peek");
            break;
        }
        if (headers) {
            d->headers = arb_msg_bindup (reply, zframe_data (headers), zframe_size (headers));
            zframe_destroy (&headers);
        }
        bytes += zframe_size (d->payload) + d->headers.size;
    }
    if (arb_life_is_halted (verbs->life))
        arb_msg_destroy (&reply);
    else
        arb_outbox_reply (verbs->outbox, &reply);
}

typedef struct {
    arb_msg_t *reply;
    arb_meta_reply_body_t *out;
    size_t bytes;  //  of keys and values in the reply
} s_meta_list_t;

//  Adds an item to a META_REPLY; refuses it (non-zero) once the reply
//  holds ARB_REPLY_BYTES, so that a list pages on.
static int
s_meta_item (void *arg, const char *key, const void *data, size_t size)
{
    s_meta_list_t *list = (s_meta_list_t *) arg;
    if (list->out->items.n && list->bytes + size + strlen (key) > ARB_REPLY_BYTES)
        return -1;
    list->bytes += size + strlen (key);
    arb_meta_item_t *item =
        (arb_meta_item_t *) arb_msg_grow (list->reply, &list->out->items, sizeof (*item), 1);
    item->key = arb_msg_strdup (list->reply, key);
    uint8_t *copy = (uint8_t *) arb_msg_alloc (list->reply, size);
    if (size)  //  an empty value's pointer may be NULL
        memcpy (copy, data, size);
    item->value = (arb_bin_t){copy, size};
    return 0;
}

//  Adds a key's value (if it has one) to the reply.
static void
s_meta_value (s_meta_list_t *items, const char *key, zchunk_t *value)
{
    if (value)
        s_meta_item (items, key, zchunk_data (value), zchunk_size (value));
}

void
arb_verbs_meta (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_meta_body_t *body = arb_msg_meta (msg);
    bool get = streq (body->op, "get"), set = streq (body->op, "set");
    bool del = streq (body->op, "del"), list = streq (body->op, "list");
    bool cas = streq (body->op, "cas");
    if (!get && !set && !del && !list && !cas) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "op: '%s' is not get, set, del, list or cas", body->op);
        return;
    }
    if (!list && (!body->key || !*body->key)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST, "key: required for %s",
                           body->op);
        return;
    }
    //  keys go back to every client that lists them: they are UTF-8
    //  (control characters allowed: META keys are not names)
    for (size_t i = 0, n = body->key ? strlen (body->key) : 0, len; i < n; i += len)
        if (!(len = arb_utf8_len ((const uint8_t *) body->key + i, n - i))) {
            arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_BAD_REQUEST,
                               "key: invalid UTF-8 at byte %zu", i + 1);
            return;
        }
    if ((set || del || cas) && arb_settings_key_is_reserved (body->key)) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "key: 'broker.', 'queue.' and 'limit.' keys are the broker's own "
                           "(QUEUE and LIMIT change them)");
        return;
    }
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_META_REPLY);
    arb_meta_reply_body_t *out = arb_msg_meta_reply (reply);
    s_meta_list_t items = {reply, out, 0};
    zchunk_t *value = NULL;
    int rc = 0;
    if (get) {
        rc = arb_journal_meta_get (verbs->journal, body->key, &value);
        s_meta_value (&items, body->key, value);
    }
    else if (list) {
        uint32_t limit = body->limit && body->limit < ARB_META_PAGE ? body->limit : ARB_META_PAGE;
        rc = arb_journal_meta_page (verbs->journal, body->key ? body->key : "", body->after, limit,
                                    s_meta_item, &items, &out->more);
    }
    else if (cas) {
        rc = arb_settings_cas_key (verbs->journal, body->key, body->absent, body->expect.data,
                                   body->expect.size, body->remove, body->value.data,
                                   body->value.size, &out->matched, &value);
        s_meta_value (&items, body->key, value);
    }
    else if (set)
        rc = arb_settings_set_key (verbs->journal, body->key, body->value.data, body->value.size);
    else
        rc = arb_settings_del_key (verbs->journal, body->key);
    zchunk_destroy (&value);
    if (rc) {
        arb_msg_destroy (&reply);
        arb_life_halt (verbs->life, "meta");
        return;
    }
    arb_outbox_reply (verbs->outbox, &reply);
}

void
arb_verbs_ping (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_PONG);
    arb_pong_body_t *out = arb_msg_pong (reply);
    out->version = ARB_VERSION;
    out->epoch = arb_life_epoch (verbs->life);
    out->now_ms = verbs->clock->now_ms;
    arb_outbox_reply (verbs->outbox, &reply);
}

//  ---------------------------------------------------------------------
//  SCHEDULE

//  Whether a request gives anything but its op, name and an empty payload
//  (what every op but add takes).
static bool
s_gives_template (const arb_schedule_body_t *body)
{
    return body->cron || body->zone || body->catch_up || body->queue || body->task || body->priority
           || body->retries || body->backoff || body->backoff_ms || body->backoff_cap_ms
           || body->no_jitter || body->timeout_ms || body->retention_ms
           || zframe_size (body->payload);
}

//  Adds a schedule's record to a SCHEDULE_REPLY.
static void
s_schedule_record (arb_msg_t *reply, arb_schedule_t *schedule)
{
    arb_schedule_reply_body_t *out = arb_msg_schedule_reply (reply);
    arb_schedule_info_t *info =
        (arb_schedule_info_t *) arb_msg_grow (reply, &out->schedules, sizeof (*info), 1);
    arb_schedule_info (schedule, info);
    //  the reply outlives the schedule (remove): its strings are its own
    info->name = arb_msg_strdup (reply, info->name);
    info->cron = arb_msg_strdup (reply, info->cron);
    info->zone = arb_msg_strdup (reply, info->zone);
    info->queue = arb_msg_strdup (reply, info->queue);
    info->task = arb_msg_strdup (reply, info->task);
}

static int
s_by_name (const void *a, const void *b)
{
    return strcmp (arb_schedule_name (*(arb_schedule_t *const *) a),
                   arb_schedule_name (*(arb_schedule_t *const *) b));
}

//  list: every schedule by name, or the one named.
static void
s_schedule_list (const arb_verbs_t *verbs, arb_msg_t *msg, arb_msg_t *reply)
{
    zhashx_t *all = arb_life_schedules (verbs->life);
    size_t n = 0;
    arb_schedule_t **sorted = (arb_schedule_t **) calloc (zhashx_size (all) + 1, sizeof (void *));
    for (arb_schedule_t *schedule = (arb_schedule_t *) zhashx_first (all); schedule;
         schedule = (arb_schedule_t *) zhashx_next (all))
        sorted[n++] = schedule;
    qsort (sorted, n, sizeof (sorted[0]), s_by_name);
    const char *name = arb_msg_schedule (msg)->name;
    for (size_t i = 0; i < n; i++)
        if (!name || streq (name, arb_schedule_name (sorted[i])))
            s_schedule_record (reply, sorted[i]);
    free (sorted);
}

//  add: the new schedule, checked whole (expression, zone, policy,
//  template, a new name); or NULL after refusing the request.
static arb_schedule_t *
s_schedule_new (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_schedule_info_t info = *arb_msg_schedule (msg);
    info.created_ms = verbs->clock->now_ms;
    char why[ARB_TEXT_MAX];
    arb_schedule_t *schedule = arb_schedule_new (&info, verbs->clock->now_ms, why, sizeof (why));
    char key[ARB_SCHEDULE_KEY_SIZE];
    arb_task_spec_t spec = {0};
    if (schedule)
        arb_schedule_task (schedule, verbs->clock->now_ms, &spec, key);
    zframe_destroy (&spec.payload);
    if (schedule && arb_verbs_check_spec (verbs, &spec, why, sizeof (why)))
        arb_schedule_destroy (&schedule);
    if (!schedule)
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID, "%s", why);
    else if (arb_life_schedule (verbs->life, info.name)) {
        arb_schedule_destroy (&schedule);
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_CONFLICT, "schedule '%s' exists already",
                           info.name);
    }
    return schedule;
}

//  The schedule an op other than add names, in *schedule (NULL for a
//  list of all). 0, or -1 after refusing the request.
static int
s_schedule_named (const arb_verbs_t *verbs, arb_msg_t *msg, arb_schedule_t **schedule)
{
    arb_schedule_body_t *body = arb_msg_schedule (msg);
    bool list = streq (body->op, "list");
    *schedule = body->name ? arb_life_schedule (verbs->life, body->name) : NULL;
    if (s_gives_template (body))
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "op: %s takes a name only (add takes the rest)", body->op);
    else if (!list && !body->name)
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID, "name: 1 to %d bytes",
                           ARB_SCHEDULE_NAME_MAX);
    else if (body->name && !*schedule)
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_NOT_FOUND, "no schedule '%s'", body->name);
    else
        return 0;
    return -1;
}

void
arb_verbs_schedule (const arb_verbs_t *verbs, arb_msg_t *msg)
{
    arb_schedule_body_t *body = arb_msg_schedule (msg);
    const char *op = body->op;
    bool add = streq (op, "add"), list = streq (op, "list"), remove = streq (op, "remove");
    if (!add && !list && !remove && !streq (op, "pause") && !streq (op, "resume")) {
        arb_outbox_refuse (verbs->outbox, msg, ARB_ERR_INVALID,
                           "op: '%s' is not add, list, remove, pause or resume", op);
        return;
    }
    arb_schedule_t *schedule = NULL;
    if (add && !(schedule = s_schedule_new (verbs, msg)))
        return;
    if (!add && s_schedule_named (verbs, msg, &schedule))
        return;
    arb_msg_t *reply = arb_msg_new_reply (msg, ARB_MSG_SCHEDULE_REPLY);
    if (list) {
        s_schedule_list (verbs, msg, reply);
        arb_outbox_reply (verbs->outbox, &reply);
        return;
    }
    //  The record shows the schedule as the change leaves it; the reply
    //  leaves after the commit.
    int rc = 0;
    if (!add && !remove)
        rc = arb_life_pause_schedule (verbs->life, schedule, streq (op, "pause"));
    s_schedule_record (reply, schedule);
    if (add)
        rc = arb_life_add_schedule (verbs->life, &schedule);
    else if (remove)
        rc = arb_life_remove_schedule (verbs->life, body->name);
    if (rc == 0) {
        zsys_info ("schedule: %s name=%s", op, body->name);
        arb_outbox_reply (verbs->outbox, &reply);
    }
    arb_msg_destroy (&reply);
}
