/*  arb_amqp_deadletter.c — dead letters and expired messages of the AMQP
    server: a message rejected, expired or dropped by x-max-length goes
    through its queue's dead-letter exchange as a copy carrying the
    x-death header RabbitMQ writes; messages whose TTL has passed are
    found when they are delivered or read and when they reach their
    queue's head. Runs on the gateway's one thread; see arb_amqp_priv.h.

    Expiry with a dead-letter exchange is the gateway's, not the broker's:
    a task the broker drops by its expires_ms is gone without a word, so a
    message of a queue that dead-letters is stored without one, and its
    expiry is worked out again whenever it matters: the task's created_ms
    (the broker's, kept across releases) plus the sooner of the queue's
    x-message-ttl and the message's own expiration (in its headers
    record). A delivery, a basic.get or the head check that finds it
    expired dead-letters it instead ("expired"). The head check is
    RabbitMQ's own rule (expired messages are removed when they reach the
    head): at the earliest expiry known of a queue, a PEEK of its head;
    the run of expired messages there is taken (TAKE) and dead-lettered,
    then the head is looked at again; a head not yet expired sets the next
    check. A message that goes back to its queue (a requeue, a channel
    closed with it unacked) arms a check for its own expiry, which may
    have passed: RabbitMQ dead-letters such a message as it comes back.
    Queues without a dead-letter exchange keep the broker's expires_ms
    (dropped, as RabbitMQ drops them).

    x-death, as RabbitMQ 3.x: an array of tables, newest first, each with
    count, reason, queue, time, exchange, routing-keys and, when the
    message had its own expiration, original-expiration (the property is
    removed from the copy, so it does not expire again by it). A death of
    the same queue and reason counts up its entry and moves it first.
    x-first-death-queue, -reason and -exchange are set once. A copy that
    would come back to a queue already in its x-death with no rejection
    since is not made (RabbitMQ's cycle rule).

    Sender-selected distribution (CC, arb_amqp_publisher.c), as RabbitMQ
    3.10: a message's routing keys are its publish's and its CC's; they
    are x-death's routing-keys, and route the dead letter unless the
    queue has an x-dead-letter-routing-key, which then takes CC out of its
    headers. BCC's keys, taken out at the publish, are not kept.
*/

#include "arb_amqp_priv.h"

#include <inttypes.h>

#define ARB_AMQP_HEAD_PEEK  16    //  messages a head check looks at
#define ARB_AMQP_HEAD_RETRY 1000  //  ms before a head check that failed is tried again
#define ARB_AMQP_HEAD_AFTER 100   //  ms after a message leaves a head before the head is checked

//  One message being dead-lettered: its task is settled once every copy
//  has an answer.
typedef struct {
    arb_amqp_t *server;  //  borrowed
    uint64_t task;       //  the task dead-lettered
    size_t left;         //  copies not yet answered
    bool failed;         //  a copy was not stored
    void *handle;        //  in server->deadletters
} s_deadletter_t;

//  A queue's head check under way, found through queue->head; the queue
//  is looked up by name at each answer (it may be gone).
typedef struct {
    arb_amqp_t *server;       //  borrowed
    arb_amqp_vhost_t *vhost;  //  borrowed (vhosts last as long as the model)
    char *name;               //  owned: the queue's AMQP name
    void *handle;             //  in server->heads
} s_head_t;

static void
s_free_destructor (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_head_destructor (void **item)
{
    s_head_t *head = (s_head_t *) *item;
    if (!head)
        return;
    free (head->name);
    free (head);
    *item = NULL;
}

void
arb_amqp_deadletters_init (arb_amqp_t *self)
{
    self->deadletters = zlistx_new ();
    zlistx_set_destructor (self->deadletters, s_free_destructor);
    self->heads = zlistx_new ();
    zlistx_set_destructor (self->heads, s_head_destructor);
}

void
arb_amqp_deadletters_fini (arb_amqp_t *self)
{
    arb_reactor_disarm (self->reactor, &self->head_timer);
    zlistx_destroy (&self->deadletters);
    zlistx_destroy (&self->heads);
}

//  ---------------------------------------------------------------------
//  x-death

static bool
s_is (amqp_bytes_t bytes, const char *text)
{
    size_t n = strlen (text);
    return bytes.len == n && memcmp (bytes.bytes, text, n) == 0;
}

//  A string field's bytes (kind S or x), or an empty one.
static amqp_bytes_t
s_field_str (const amqp_table_t *table, const char *key)
{
    for (int i = 0; i < table->num_entries; i++) {
        const amqp_table_entry_t *e = &table->entries[i];
        if (s_is (e->key, key)
            && (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES))
            return e->value.value.bytes;
    }
    return amqp_empty_bytes;
}

//  An integer field's value, whatever its width (a client's x-death
//  count may be any), or 0.
static int64_t
s_int (const amqp_field_value_t *v)
{
    switch (v->kind) {
        case AMQP_FIELD_KIND_I8:
            return v->value.i8;
        case AMQP_FIELD_KIND_U8:
            return v->value.u8;
        case AMQP_FIELD_KIND_I16:
            return v->value.i16;
        case AMQP_FIELD_KIND_U16:
            return v->value.u16;
        case AMQP_FIELD_KIND_I32:
            return v->value.i32;
        case AMQP_FIELD_KIND_U32:
            return v->value.u32;
        case AMQP_FIELD_KIND_I64:
            return v->value.i64;
        case AMQP_FIELD_KIND_U64:
            return v->value.u64 > INT64_MAX ? INT64_MAX : (int64_t) v->value.u64;
        default:
            return 0;
    }
}

static amqp_field_value_t
s_str (amqp_bytes_t bytes)
{
    amqp_field_value_t v = {.kind = AMQP_FIELD_KIND_UTF8};
    v.value.bytes = bytes;
    return v;
}

//  The x-death array with this death: the entry of the same queue and
//  reason counted up and moved first, or a new one first. In pool.
static amqp_array_t
s_deaths (const amqp_array_t *old,
          amqp_pool_t *pool,
          const char *queue,
          const char *reason,
          amqp_bytes_t exchange,
          amqp_array_t keys,
          const amqp_bytes_t *expiration)
{
    amqp_array_t out = {0, NULL};
    int n = old ? old->num_entries : 0;
    out.entries = (amqp_field_value_t *) amqp_pool_alloc (pool, (size_t) (n + 1)
                                                                    * sizeof (amqp_field_value_t));
    assert (out.entries);
    int same = -1;
    for (int i = 0; i < n && same < 0; i++) {
        const amqp_field_value_t *v = &old->entries[i];
        if (v->kind == AMQP_FIELD_KIND_TABLE && s_is (s_field_str (&v->value.table, "queue"), queue)
            && s_is (s_field_str (&v->value.table, "reason"), reason))
            same = i;
    }
    amqp_field_value_t *first = &out.entries[out.num_entries++];
    first->kind = AMQP_FIELD_KIND_TABLE;
    if (same >= 0) {
        //  a copy of that entry with count + 1
        const amqp_table_t *t = &old->entries[same].value.table;
        amqp_table_entry_t *entries = (amqp_table_entry_t *) amqp_pool_alloc (
            pool, (size_t) (t->num_entries + 1) * sizeof (amqp_table_entry_t));
        assert (entries);
        int64_t count = 0;
        int m = 0;
        for (int i = 0; i < t->num_entries; i++) {
            if (s_is (t->entries[i].key, "count")) {
                count = s_int (&t->entries[i].value);
                continue;
            }
            entries[m++] = t->entries[i];
        }
        entries[m].key = amqp_cstring_bytes ("count");
        entries[m].value.kind = AMQP_FIELD_KIND_I64;
        //  (a count sent by a client is any long: kept from overflowing)
        entries[m++].value.value.i64 = count <= 0 ? 2 : count < INT64_MAX ? count + 1 : count;
        first->value.table = (amqp_table_t){m, entries};
    }
    else {
        amqp_table_entry_t *entries =
            (amqp_table_entry_t *) amqp_pool_alloc (pool, 7 * sizeof (amqp_table_entry_t));
        assert (entries);
        int m = 0;
        entries[m].key = amqp_cstring_bytes ("count");
        entries[m].value.kind = AMQP_FIELD_KIND_I64;
        entries[m++].value.value.i64 = 1;
        entries[m].key = amqp_cstring_bytes ("reason");
        entries[m++].value = s_str (amqp_cstring_bytes (reason));
        entries[m].key = amqp_cstring_bytes ("queue");
        entries[m++].value = s_str (amqp_cstring_bytes (queue));
        entries[m].key = amqp_cstring_bytes ("time");
        entries[m].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
        entries[m++].value.value.u64 = (uint64_t) zclock_time () / 1000;
        entries[m].key = amqp_cstring_bytes ("exchange");
        entries[m++].value = s_str (exchange);
        entries[m].key = amqp_cstring_bytes ("routing-keys");
        entries[m].value.kind = AMQP_FIELD_KIND_ARRAY;
        entries[m++].value.value.array = keys;
        if (expiration) {
            entries[m].key = amqp_cstring_bytes ("original-expiration");
            entries[m++].value = s_str (*expiration);
        }
        first->value.table = (amqp_table_t){m, entries};
    }
    for (int i = 0; i < n; i++)
        if (i != same)
            out.entries[out.num_entries++] = old->entries[i];
    return out;
}

//  Whether a copy to queue closes a cycle: queue is in deaths with no
//  rejection in the deaths since (RabbitMQ drops those copies).
static bool
s_is_cycle (const amqp_array_t *deaths, const char *queue)
{
    for (int i = 0; i < deaths->num_entries; i++) {
        const amqp_field_value_t *v = &deaths->entries[i];
        if (v->kind != AMQP_FIELD_KIND_TABLE)
            return false;
        if (s_is (s_field_str (&v->value.table, "reason"), "rejected"))
            return false;
        if (s_is (s_field_str (&v->value.table, "queue"), queue))
            return true;
    }
    return false;
}

//  Sets props' headers to the old ones with x-death replaced by deaths and
//  the x-first-death-* fields added if missing. In pool.
static void
s_set_headers (amqp_basic_properties_t *props,
               amqp_pool_t *pool,
               amqp_array_t deaths,
               const char *queue,
               const char *reason,
               amqp_bytes_t exchange)
{
    amqp_table_t old =
        (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? props->headers : (amqp_table_t){0, NULL};
    amqp_table_entry_t *entries = (amqp_table_entry_t *) amqp_pool_alloc (
        pool, (size_t) (old.num_entries + 4) * sizeof (amqp_table_entry_t));
    assert (entries);
    int m = 0;
    bool first_queue = false, first_reason = false, first_exchange = false;
    for (int i = 0; i < old.num_entries; i++) {
        if (s_is (old.entries[i].key, "x-death"))
            continue;
        first_queue |= s_is (old.entries[i].key, "x-first-death-queue");
        first_reason |= s_is (old.entries[i].key, "x-first-death-reason");
        first_exchange |= s_is (old.entries[i].key, "x-first-death-exchange");
        entries[m++] = old.entries[i];
    }
    entries[m].key = amqp_cstring_bytes ("x-death");
    entries[m].value.kind = AMQP_FIELD_KIND_ARRAY;
    entries[m++].value.value.array = deaths;
    if (!first_queue) {
        entries[m].key = amqp_cstring_bytes ("x-first-death-queue");
        entries[m++].value = s_str (amqp_cstring_bytes (queue));
    }
    if (!first_reason) {
        entries[m].key = amqp_cstring_bytes ("x-first-death-reason");
        entries[m++].value = s_str (amqp_cstring_bytes (reason));
    }
    if (!first_exchange) {
        entries[m].key = amqp_cstring_bytes ("x-first-death-exchange");
        entries[m++].value = s_str (exchange);
    }
    props->headers = (amqp_table_t){m, entries};
    props->_flags |= AMQP_BASIC_HEADERS_FLAG;
}

//  ---------------------------------------------------------------------
//  Dead-lettering

static void
s_on_deadlettered (arb_gateway_t *gateway,
                   const arb_submitted_task_t *task,
                   int code,
                   const char *error,
                   void *arg)
{
    (void) gateway;
    s_deadletter_t *dl = (s_deadletter_t *) arg;
    arb_amqp_t *self = dl->server;
    //  a copy refused by a full queue is dropped, as RabbitMQ drops it
    if (!task && code != ARB_AMQP_OVERFLOW) {
        zsys_warning ("amqp: dead-lettering failed task=%" PRIu64 " code=%d reason=\"%s\"",
                      dl->task, code, error ? error : "");
        dl->failed = true;
    }
    if (--dl->left)
        return;
    //  a copy not stored: the message stays in its queue (the copies
    //  that were stored stay too: at least once)
    if (!dl->task)
        ;  //  a message refused by its own full queue: nothing to settle
    else if (dl->failed)
        arb_link_release (self->link, dl->task);
    else
        arb_link_complete (self->link, dl->task, NULL);
    zlistx_delete (self->deadletters, dl->handle);
}

//  Submits a copy of the dead-lettered message to each of targets.
static void
s_submit_copies (arb_amqp_t *self,
                 arb_amqp_targets_t *targets,
                 uint64_t task,
                 arb_bin_t record,
                 const amqp_basic_properties_t *props,
                 zframe_t *payload)
{
    s_deadletter_t *dl = (s_deadletter_t *) zmalloc (sizeof (s_deadletter_t));
    dl->server = self;
    dl->task = task;
    dl->left = targets->n;
    dl->handle = zlistx_add_end (self->deadletters, dl);
    uint64_t now = (uint64_t) zclock_time ();
    for (size_t i = 0; i < targets->n; i++) {
        arb_amqp_queue_t *q = targets->v[i];
        //  the copy has no expiration of its own: only its new queue's TTL
        bool ttl = q->settings.has_ttl;
        uint64_t at = now + (q->settings.message_ttl_ms ? q->settings.message_ttl_ms : 1);
        arb_task_spec_t spec = {
            .queue = q->broker,
            .name = ARB_AMQP_TASK_NAME,
            .headers = record,
            .expires_ms = ttl && !q->settings.dlx
                              ? arb_amqp_broker_expiry (now, q->settings.message_ttl_ms)
                              : 0,
            .payload = payload ? zframe_dup (payload) : NULL,
            //  a priority queue orders its dead letters as its publishes
            .priority = arb_amqp_model_priority (&q->settings, props),
        };
        if (arb_amqp_submit (self, q, &spec, s_on_deadlettered, dl)) {
            arb_amqp_queue_grew (self, q);
            if (ttl)
                arb_amqp_queue_expiry (self, q, at);
        }
        else
            s_on_deadlettered (self->gateway, NULL, 0, arb_gateway_error (self->gateway), dl);
    }
}

int
arb_amqp_deadletter (arb_amqp_t *self,
                     arb_amqp_queue_t *queue,
                     uint64_t task,
                     arb_bin_t headers,
                     zframe_t *payload,
                     const char *reason)
{
    if (!queue->settings.dlx)
        return -1;
    arb_amqp_exchange_t *exchange = arb_amqp_model_exchange (queue->vhost, queue->settings.dlx);
    if (!exchange)
        return -1;
    //  what it was published with (a task not published over AMQP: from
    //  "" with the queue's name, no properties)
    amqp_bytes_t x, k, raw;
    if (arb_amqp_frame_read_record (headers.data, headers.size, &x, &k, &raw) != 0) {
        x = amqp_empty_bytes;
        k = amqp_cstring_bytes (queue->name);
        raw = (amqp_bytes_t){2, (void *) "\0\0"};
    }
    //  the routing key it was published with, unless the queue names one
    char key[ARB_AMQP_NAME_MAX + 1];
    if (queue->settings.dlrk)
        snprintf (key, sizeof (key), "%s", queue->settings.dlrk);
    else {
        memcpy (key, k.bytes, k.len);
        key[k.len] = 0;
    }
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_basic_properties_t *props = NULL;
    if (arb_amqp_frame_properties ((const uint8_t *) raw.bytes, raw.len, &pool, &props) != 0) {
        props = (amqp_basic_properties_t *) amqp_pool_alloc (&pool, sizeof (*props));
        assert (props);
        memset (props, 0, sizeof (*props));
    }
    const amqp_bytes_t *expiration = NULL;
    if (props->_flags & AMQP_BASIC_EXPIRATION_FLAG) {
        expiration = &props->expiration;
        props->_flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    }
    const amqp_array_t *old = NULL;
    if (props->_flags & AMQP_BASIC_HEADERS_FLAG)
        for (int i = 0; i < props->headers.num_entries; i++)
            if (s_is (props->headers.entries[i].key, "x-death")
                && props->headers.entries[i].value.kind == AMQP_FIELD_KIND_ARRAY)
                old = &props->headers.entries[i].value.value.array;
    //  its routing keys: the publish's, then its CC's (see the top)
    int cc = -1;
    for (int i = 0; (props->_flags & AMQP_BASIC_HEADERS_FLAG) && i < props->headers.num_entries;
         i++)
        if (s_is (props->headers.entries[i].key, "CC")
            && props->headers.entries[i].value.kind == AMQP_FIELD_KIND_ARRAY)
            cc = i;
    const amqp_array_t *ccs = cc >= 0 ? &props->headers.entries[cc].value.value.array : NULL;
    int nkeys = 1 + (ccs ? ccs->num_entries : 0);
    amqp_array_t keys = {0, (amqp_field_value_t *) amqp_pool_alloc (
                                &pool, (size_t) nkeys * sizeof (amqp_field_value_t))};
    char **routes = (char **) zmalloc ((size_t) nkeys * sizeof (char *));
    assert (keys.entries);
    keys.entries[keys.num_entries++] = s_str (k);
    routes[0] = strdup (key);
    size_t nroutes = 1;
    for (int i = 0; ccs && i < ccs->num_entries; i++)
        if (ccs->entries[i].kind == AMQP_FIELD_KIND_UTF8) {
            keys.entries[keys.num_entries++] = ccs->entries[i];
            if (!queue->settings.dlrk)
                routes[nroutes++] = strndup ((const char *) ccs->entries[i].value.bytes.bytes,
                                             ccs->entries[i].value.bytes.len);
        }
    amqp_array_t deaths = s_deaths (old, &pool, queue->name, reason, x, keys, expiration);
    if (cc >= 0 && queue->settings.dlrk) {
        //  (after s_deaths: old points into these entries)
        amqp_table_t *h = &props->headers;
        memmove (h->entries + cc, h->entries + cc + 1,
                 (size_t) (h->num_entries - cc - 1) * sizeof (amqp_table_entry_t));
        h->num_entries--;
    }
    s_set_headers (props, &pool, deaths, queue->name, reason, x);

    arb_amqp_targets_t *targets = &self->route;
    assert (targets->n == 0);  //  nothing routes while a message is routed
    arb_amqp_model_route_keys (exchange, (const char *const *) routes, nroutes, &props->headers,
                               targets);
    for (size_t i = 0; i < nroutes; i++)
        free (routes[i]);
    free (routes);
    if (!streq (reason, "rejected"))
        for (size_t i = targets->n; i-- > 0;)
            if (s_is_cycle (&deaths, targets->v[i]->name)) {
                zsys_debug ("amqp: dead-letter cycle dropped queue=%s to=%s", queue->broker,
                            targets->v[i]->broker);
                arb_amqp_targets_remove (targets, i);
            }
    int rc = -1;
    size_t cap = raw.len + 1024 + 4 * (strlen (queue->name) + x.len + k.len + 64);
    uint8_t *buf = (uint8_t *) malloc (cap);
    assert (buf);
    int props_size = targets->n ? arb_amqp_frame_encode_properties (props, buf, cap) : -1;
    size_t rsize =
        ARB_AMQP_RECORD_OVERHEAD + strlen (exchange->name) + strlen (key) + (size_t) props_size;
    //  a copy whose headers, x-death and all, are over what a task keeps
    //  would be refused by the broker, and the original released to come
    //  back for ever (a rejected message to its consumer, an expired one
    //  to the head timer): it goes as one that routes nowhere (dropped,
    //  said in the log); RabbitMQ, without the bound, would store it
    bool too_big = props_size >= 0 && rsize > ARB_HEADERS_MAX;
    if (too_big)
        zsys_warning ("amqp: cannot dead-letter queue=%s task=%" PRIu64
                      ": its headers with x-death are %zu bytes, over the %d a task keeps; "
                      "dropped",
                      queue->broker, task, rsize, ARB_HEADERS_MAX);
    uint8_t *record = props_size >= 0 && !too_big ? (uint8_t *) malloc (rsize) : NULL;
    if (record
        && arb_amqp_frame_record (record, rsize, amqp_cstring_bytes (exchange->name),
                                  amqp_cstring_bytes (key),
                                  (amqp_bytes_t){(size_t) props_size, buf})
               == rsize) {
        s_submit_copies (self, targets, task, (arb_bin_t){record, rsize}, props, payload);
        rc = 0;
    }
    else if (targets->n && !too_big)
        zsys_warning ("amqp: cannot dead-letter queue=%s (its headers do not encode)",
                      queue->broker);
    free (record);
    free (buf);
    targets->n = 0;
    empty_amqp_pool (&pool);
    return rc;
}

//  ---------------------------------------------------------------------
//  Expiry

int64_t
arb_amqp_expiration_ms (amqp_bytes_t text, char *why, size_t size)
{
    //  as Erlang's string:to_integer, which RabbitMQ uses: "+5", "-0" and
    //  "05" are numbers, " 5", "5 ", "1.5" and "" are not; the reasons are
    //  RabbitMQ's terms (no_integer, {leftover_string,"..."},
    //  {value_negative,N}, {value_too_large,N}), which its 406 shows
    const char *at = (const char *) text.bytes;
    size_t i = 0;
    bool negative = false;
    if (i < text.len && (at[i] == '+' || at[i] == '-'))
        negative = at[i++] == '-';
    if (i == text.len || at[i] < '0' || at[i] > '9') {
        snprintf (why, size, "no_integer");
        return -1;
    }
    while (i + 1 < text.len && at[i] == '0' && at[i + 1] >= '0' && at[i + 1] <= '9')
        i++;  //  leading zeros: the number printed has none
    size_t digits = i;
    uint64_t ms = 0;
    bool large = false;
    for (; i < text.len && at[i] >= '0' && at[i] <= '9'; i++) {
        ms = ms * 10 + (uint64_t) (at[i] - '0');
        large |= ms > ARB_AMQP_TTL_MAX_MS;  //  checked each digit: no overflow
        if (large)
            ms = ARB_AMQP_TTL_MAX_MS + 1;
    }
    int width = (int) (i - digits < 64 ? i - digits : 64);
    if (i < text.len) {
        char rest[160];
        arb_amqp_frame_erlang (rest, sizeof (rest), (amqp_bytes_t){text.len - i, (void *) (at + i)},
                               false);
        snprintf (why, size, "{leftover_string,%s}", rest);
        return -1;
    }
    if (negative && ms > 0) {
        snprintf (why, size, "{value_negative,-%.*s}", width, at + digits);
        return -1;
    }
    if (large) {
        snprintf (why, size, "{value_too_large,%.*s}", width, at + digits);
        return -1;
    }
    return (int64_t) ms;
}

uint64_t
arb_amqp_broker_expiry (uint64_t now, uint64_t ttl)
{
    return now + (ttl > ARB_AMQP_TTL_FLOOR_MS ? ttl : ARB_AMQP_TTL_FLOOR_MS);
}

int64_t
arb_amqp_props_ttl (amqp_basic_properties_t *props)
{
    if (!props || !(props->_flags & AMQP_BASIC_EXPIRATION_FLAG))
        return -1;
    char why[80];
    return arb_amqp_expiration_ms (props->expiration, why, sizeof (why));
}

//  When a task of queue expires: Unix ms, or 0 never.
static uint64_t
s_expires_at (arb_amqp_queue_t *queue, const arb_bin_t *headers, uint64_t created_ms)
{
    int64_t ttl = queue->settings.has_ttl ? (int64_t) queue->settings.message_ttl_ms : -1;
    amqp_bytes_t x, k, raw;
    //  the first two bytes of the properties are their flags: decoded only
    //  when an expiration is there
    if (arb_amqp_frame_read_record (headers->data, headers->size, &x, &k, &raw) == 0 && raw.len >= 2
        && (((const uint8_t *) raw.bytes)[0] << 8 & AMQP_BASIC_EXPIRATION_FLAG)) {
        amqp_pool_t pool;
        init_amqp_pool (&pool, 1024);
        amqp_basic_properties_t *props = NULL;
        int64_t own = -1;
        if (arb_amqp_frame_properties ((const uint8_t *) raw.bytes, raw.len, &pool, &props) == 0)
            own = arb_amqp_props_ttl (props);
        empty_amqp_pool (&pool);
        if (own >= 0 && (ttl < 0 || own < ttl))
            ttl = own;
    }
    if (ttl < 0)
        return 0;
    return created_ms + (uint64_t) (ttl ? ttl : 1);
}

bool
arb_amqp_expire (arb_amqp_t *self, arb_amqp_queue_t *queue, arb_dispatch_task_t *task)
{
    //  x-delivery-limit (a quorum queue's): the broker counts a task's
    //  deliveries, and each earlier one ended in a return (a nack or
    //  reject with requeue, a channel closed with it unacked); one
    //  returned more often than the limit is not delivered again. RabbitMQ
    //  drops or dead-letters it at the return; here it is at its next
    //  delivery or get, so it is counted in the queue until then
    if (queue && queue->settings.has_delivery_limit
        && task->delivered > queue->settings.delivery_limit) {
        zsys_debug ("amqp: delivery limit reached queue=%s task=%" PRIu64 " delivered=%" PRIu32,
                    queue->broker, task->id, (uint32_t) task->delivered);
        if (!queue->settings.dlx
            || arb_amqp_deadletter (self, queue, task->id, task->headers, task->payload,
                                    "delivery_limit")
                   != 0)
            arb_link_complete (self->link, task->id, NULL);
        return true;
    }
    if (!queue || !queue->settings.dlx)
        return false;
    uint64_t now = (uint64_t) zclock_time ();
    uint64_t at = s_expires_at (queue, &task->headers, task->created_ms);
    if (!at || at > now) {
        //  it leaves the head: what expired behind it is at the head now,
        //  and RabbitMQ dead-letters it then, not at this one's expiry.
        //  Checked a moment later: a get or consumer that comes meanwhile
        //  takes (and dead-letters) it itself, where a check beside it
        //  could take a live message it would then give back, redelivered
        if (queue->expiring)
            arb_amqp_queue_expiry (self, queue, now + ARB_AMQP_HEAD_AFTER);
        return false;
    }
    zsys_debug ("amqp: message expired queue=%s task=%" PRIu64, queue->broker, task->id);
    if (arb_amqp_deadletter (self, queue, task->id, task->headers, task->payload, "expired") != 0)
        arb_link_complete (self->link, task->id, NULL);
    return true;
}

//  ---------------------------------------------------------------------
//  Head checks

static void s_head_arm (arb_amqp_t *self, uint64_t at);

static arb_amqp_queue_t *
s_head_queue (s_head_t *head)
{
    arb_amqp_queue_t *queue = arb_amqp_model_queue (head->vhost, head->name);
    return queue && queue->head == head ? queue : NULL;
}

//  The check ends; the next one is due at (0: none known).
static void
s_head_end (s_head_t *head, uint64_t at)
{
    arb_amqp_t *self = head->server;
    arb_amqp_queue_t *queue = s_head_queue (head);
    zlistx_delete (self->heads, head->handle);
    if (!queue)
        return;
    queue->head = NULL;
    if (at)
        arb_amqp_queue_expiry (self, queue, at);
    else if (queue->head_due_ms)
        s_head_arm (self, queue->head_due_ms);
}

static void s_on_head_peek (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg);

static void
s_head_peek (s_head_t *head, arb_amqp_queue_t *queue)
{
    arb_amqp_t *self = head->server;
    //  the turn's releases first: a message nacked is back at the head
    arb_link_flush (self->link);
    if (!arb_gateway_peek (self->gateway, queue->broker, ARB_AMQP_HEAD_PEEK, s_on_head_peek, head))
        s_head_end (head, (uint64_t) zclock_time () + ARB_AMQP_HEAD_RETRY);
}

static void
s_on_head_take (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_head_t *head = (s_head_t *) arg;
    arb_amqp_t *self = head->server;
    arb_amqp_queue_t *queue = s_head_queue (head);
    arb_msg_t *reply = *reply_p;
    size_t expired = 0;
    if (arb_msg_type (reply) == ARB_MSG_DISPATCH) {
        arb_dispatch_body_t *body = arb_msg_dispatch (reply);
        for (size_t i = 0; i < body->tasks.n; i++) {
            //  one that came to the head meanwhile and has not expired
            //  goes back (counted as delivered once: a rare race)
            if (arb_amqp_expire (self, queue, &body->tasks.v[i]))
                expired++;
            else
                arb_link_release (self->link, body->tasks.v[i].id);
        }
    }
    if (queue && expired)
        s_head_peek (head, queue);
    else
        s_head_end (head, queue ? (uint64_t) zclock_time () + ARB_AMQP_HEAD_RETRY : 0);
}

static void
s_on_head_peek (arb_gateway_t *gateway, arb_msg_t **reply_p, void *arg)
{
    (void) gateway;
    s_head_t *head = (s_head_t *) arg;
    arb_amqp_t *self = head->server;
    arb_amqp_queue_t *queue = s_head_queue (head);
    arb_msg_t *reply = *reply_p;
    if (!queue || arb_msg_type (reply) != ARB_MSG_PEEK_REPLY) {
        s_head_end (head, queue ? (uint64_t) zclock_time () + ARB_AMQP_HEAD_RETRY : 0);
        return;
    }
    arb_peek_reply_body_t *body = arb_msg_peek_reply (reply);
    uint64_t now = (uint64_t) zclock_time ();
    uint32_t expired = 0;
    uint64_t next = 0;
    for (size_t i = 0; i < body->tasks.n; i++) {
        uint64_t at = s_expires_at (queue, &body->tasks.v[i].headers, body->tasks.v[i].created_ms);
        if (!at || at > now) {
            next = at;
            break;
        }
        expired++;
    }
    if (expired && arb_gateway_take (self->gateway, queue->broker, expired, s_on_head_take, head))
        return;
    //  the head has not expired (or the take was refused): checked again
    //  when it does; an empty queue, at the next message's expiry
    s_head_end (head, expired ? now + ARB_AMQP_HEAD_RETRY : next);
}

static void
s_head_start (arb_amqp_t *self, arb_amqp_queue_t *queue)
{
    s_head_t *head = (s_head_t *) zmalloc (sizeof (s_head_t));
    head->server = self;
    head->vhost = queue->vhost;
    head->name = strdup (queue->name);
    head->handle = zlistx_add_end (self->heads, head);
    queue->head = head;
    queue->head_due_ms = 0;
    s_head_peek (head, queue);
}

typedef struct {
    arb_amqp_t *server;
    uint64_t now;
    uint64_t next;  //  the earliest check left (0: none)
} s_due_t;

static void
s_due_queue (void *arg, arb_amqp_queue_t *queue)
{
    s_due_t *due = (s_due_t *) arg;
    if (!queue->head_due_ms || queue->head)
        return;
    if (queue->head_due_ms <= due->now)
        s_head_start (due->server, queue);
    else if (!due->next || queue->head_due_ms < due->next)
        due->next = queue->head_due_ms;
}

static void
s_on_head_timer (arb_reactor_t *reactor, arb_timer_t *timer, void *arg)
{
    (void) reactor;
    (void) timer;
    arb_amqp_t *self = (arb_amqp_t *) arg;
    self->head_at = 0;
    if (!arb_amqp_claim_fresh (self)) {
        s_head_arm (self, (uint64_t) zclock_time () + 1000);  //  nothing expires meanwhile
        return;
    }
    s_due_t due = {self, (uint64_t) zclock_time (), 0};
    arb_amqp_model_each_queue (self->model, s_due_queue, &due);
    if (due.next)
        s_head_arm (self, due.next);
}

//  Arms the head timer for Unix ms at, unless it is armed sooner.
static void
s_head_arm (arb_amqp_t *self, uint64_t at)
{
    if (self->head_at && self->head_at <= at)
        return;
    uint64_t now = (uint64_t) zclock_time ();
    arb_reactor_disarm (self->reactor, &self->head_timer);
    arb_reactor_arm (self->reactor, &self->head_timer, at > now ? at - now : 0, s_on_head_timer,
                     self);
    self->head_at = at;
}

void
arb_amqp_queue_expiry (arb_amqp_t *self, arb_amqp_queue_t *queue, uint64_t at)
{
    if (!queue->settings.dlx)
        return;
    if (!queue->head_due_ms || at < queue->head_due_ms)
        queue->head_due_ms = at;
    if (!queue->head)
        s_head_arm (self, queue->head_due_ms);
}

uint64_t
arb_amqp_expires_at (arb_amqp_queue_t *queue, const arb_bin_t *headers, uint64_t created_ms)
{
    return queue && queue->settings.dlx ? s_expires_at (queue, headers, created_ms) : 0;
}

void
arb_amqp_queue_returned (arb_amqp_t *self, arb_amqp_queue_t *queue, uint64_t at)
{
    if (!queue)
        return;
    //  the check that a publish armed may have found the queue empty while
    //  the message was out, and nothing else looks at its head again: a
    //  message expired on its way back would stay there for ever
    if (at)
        arb_amqp_queue_expiry (self, queue, at);
    //  back at the head, it may take the queue over its x-max-length
    arb_amqp_queue_requeued (self, queue);
}
