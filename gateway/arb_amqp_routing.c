/*  arb_amqp_routing.c — the queues a published message reaches: direct,
    fanout, topic and headers bindings, exchange-to-exchange bindings and
    alternate exchanges (each exchange visited once per message, each queue
    taken once), and the check of a headers binding's x-match; see
    arb_amqp_model.h.

    It runs for every publish, in the loop's only thread: a topic pattern
    is matched in one pass over its words ('#' never backtracks), and the
    caller's targets array is kept from one message to the next.
*/

#include "arb_amqp_model_priv.h"

typedef struct {
    const char *at[ARB_AMQP_NAME_MAX + 1];
    size_t len[ARB_AMQP_NAME_MAX + 1];
    size_t n;
} s_words_t;

//  Splits text on '.': "" is no word at all.
static void
s_split (const char *text, s_words_t *words)
{
    words->n = 0;
    if (!*text)
        return;
    for (;;) {
        const char *dot = strchr (text, '.');
        size_t len = dot ? (size_t) (dot - text) : strlen (text);
        if (words->n <= ARB_AMQP_NAME_MAX) {
            words->at[words->n] = text;
            words->len[words->n++] = len;
        }
        if (!dot)
            return;
        text = dot + 1;
    }
}

//  Whether pattern p matches key k: one pass over the pattern's words,
//  keeping which prefixes of the key the words so far match (at[j]: the
//  first j words), so that '#'s never backtrack (a run of them against a
//  long key would take exponential time, in the loop's only thread).
static bool
s_words_match (const s_words_t *p, const s_words_t *k)
{
    bool at[ARB_AMQP_NAME_MAX + 2];
    memset (at, 0, sizeof (at));
    at[0] = true;
    for (size_t pi = 0; pi < p->n; pi++) {
        bool hash = p->len[pi] == 1 && p->at[pi][0] == '#';
        bool star = p->len[pi] == 1 && p->at[pi][0] == '*';
        if (hash) {
            //  zero or more words: every prefix from the first reached on
            for (size_t j = 1; j <= k->n; j++)
                at[j] = at[j] || at[j - 1];
            continue;
        }
        //  exactly one word: from the longest prefix down, so that each
        //  reads the state before this word
        for (size_t j = k->n; j > 0; j--)
            at[j] = at[j - 1]
                    && (star
                        || (p->len[pi] == k->len[j - 1]
                            && memcmp (p->at[pi], k->at[j - 1], k->len[j - 1]) == 0));
        at[0] = false;
    }
    return at[k->n];
}

bool
arb_amqp_model_topic_match (const char *pattern, const char *key)
{
    s_words_t p, k;
    s_split (pattern, &p);
    s_split (key, &k);
    return s_words_match (&p, &k);
}

static bool
s_value_matches (const amqp_field_value_t *want, const amqp_field_value_t *have)
{
    if (want->kind == AMQP_FIELD_KIND_VOID)
        return true;  //  a void binding value asks only that the header exist
    //  RabbitMQ compares a header's value, not its type: a long string and
    //  a byte array of the same bytes match (clients differ in which they
    //  send for a string), as integers of any width do
    bool want_str = want->kind == AMQP_FIELD_KIND_UTF8 || want->kind == AMQP_FIELD_KIND_BYTES;
    bool have_str = have->kind == AMQP_FIELD_KIND_UTF8 || have->kind == AMQP_FIELD_KIND_BYTES;
    if (want_str || have_str)
        return want_str && have_str && want->value.bytes.len == have->value.bytes.len
               && (want->value.bytes.len == 0
                   || memcmp (want->value.bytes.bytes, have->value.bytes.bytes,
                              want->value.bytes.len)
                          == 0);
    amqp_table_t a = {1, &(amqp_table_entry_t){{1, "k"}, *want}};
    amqp_table_t b = {1, &(amqp_table_entry_t){{1, "k"}, *have}};
    return arb_amqp_table_equal (&a, &b);
}

//  x-match as RabbitMQ reads it: "all" (also when absent, and for a value
//  stored before values were checked), "any", and their "-with-x" forms,
//  under which the binding's x- arguments (but x-match) must match too.
static void
s_match_mode (const amqp_field_value_t *mode, bool *any, bool *with_x)
{
    *any = *with_x = false;
    if (!mode || mode->kind != AMQP_FIELD_KIND_UTF8)
        return;
    amqp_bytes_t v = mode->value.bytes;
    bool any_ = v.len == 3 && memcmp (v.bytes, "any", 3) == 0;
    bool all_x = v.len == 10 && memcmp (v.bytes, "all-with-x", 10) == 0;
    bool any_x = v.len == 10 && memcmp (v.bytes, "any-with-x", 10) == 0;
    *any = any_ || any_x;
    *with_x = all_x || any_x;
}

int
arb_amqp_model_check_binding (arb_amqp_exchange_t *source,
                              const amqp_table_t *args,
                              char *why,
                              size_t size)
{
    if (source->type != ARB_AMQP_HEADERS || !args)
        return 0;
    const amqp_field_value_t *mode = arb_amqp_table_get (args, "x-match");
    if (!mode)
        return 0;
    //  RabbitMQ's texts show the value as Erlang prints it
    char value[200];
    int64_t n;
    if (mode->kind != AMQP_FIELD_KIND_UTF8) {
        if (mode->kind == AMQP_FIELD_KIND_BYTES)
            arb_amqp_frame_erlang (value, sizeof (value), mode->value.bytes, true);
        else if (mode->kind == AMQP_FIELD_KIND_BOOLEAN)
            snprintf (value, sizeof (value), "%s", mode->value.boolean ? "true" : "false");
        else if (mode->kind != AMQP_FIELD_KIND_TIMESTAMP && arb_amqp_value_int (mode, &n) == 0)
            snprintf (value, sizeof (value), "%" PRId64, n);
        else {
            snprintf (why, size, "Invalid x-match field type %s; expected longstr",
                      arb_amqp_value_type_name (mode));
            return -1;
        }
        snprintf (why, size, "Invalid x-match field type %s (value %s); expected longstr",
                  arb_amqp_value_type_name (mode), value);
        return -1;
    }
    amqp_bytes_t v = mode->value.bytes;
    static const char *known[] = {"all", "any", "all-with-x", "any-with-x"};
    for (size_t i = 0; i < sizeof (known) / sizeof (known[0]); i++)
        if (v.len == strlen (known[i]) && memcmp (v.bytes, known[i], v.len) == 0)
            return 0;
    snprintf (why, size,
              "Invalid x-match field value %s; expected all, any, all-with-x, or any-with-x",
              arb_amqp_frame_erlang (value, sizeof (value), v, true));
    return -1;
}

static bool
s_headers_match (zchunk_t *args, const amqp_table_t *headers)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_table_t table;
    bool matched = false;
    if (arb_amqp_model_decode_args (args, &pool, &table) == 0) {
        bool any, with_x;
        s_match_mode (arb_amqp_table_get (&table, "x-match"), &any, &with_x);
        size_t wanted = 0, hits = 0;
        for (int i = 0; i < table.num_entries; i++) {
            amqp_table_entry_t *entry = &table.entries[i];
            if (entry->key.len >= 2 && memcmp (entry->key.bytes, "x-", 2) == 0
                && (!with_x
                    || (entry->key.len == 7 && memcmp (entry->key.bytes, "x-match", 7) == 0)))
                continue;
            wanted++;
            char key[256];
            size_t len = entry->key.len < 255 ? entry->key.len : 255;
            memcpy (key, entry->key.bytes, len);
            key[len] = 0;
            const amqp_field_value_t *have = headers ? arb_amqp_table_get (headers, key) : NULL;
            if (have && s_value_matches (&entry->value, have))
                hits++;
        }
        matched = any ? hits > 0 : hits == wanted;
    }
    empty_amqp_pool (&pool);
    return matched;
}

void
arb_amqp_targets_fini (arb_amqp_targets_t *self)
{
    free (self->v);
    *self = (arb_amqp_targets_t){0};
}

void
arb_amqp_targets_remove (arb_amqp_targets_t *self, size_t i)
{
    assert (i < self->n);
    memmove (self->v + i, self->v + i + 1, (self->n - i - 1) * sizeof (self->v[0]));
    self->n--;
}

//  Adds a queue (NULL: none) unless it is there already.
static void
s_target (arb_amqp_targets_t *self, arb_amqp_queue_t *queue)
{
    if (!queue)
        return;
    for (size_t i = 0; i < self->n; i++)
        if (self->v[i] == queue)
            return;
    if (self->n == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 8;
        self->v = (arb_amqp_queue_t **) realloc (self->v, self->capacity * sizeof (self->v[0]));
        assert (self->v);
    }
    self->v[self->n++] = queue;
}

//  A message's routing keys: the publish's, then those of its CC and BCC
//  headers (sender-selected distribution).
typedef struct {
    const char *const *v;  //  borrowed
    size_t n;
} s_keys_t;

static void s_route (arb_amqp_exchange_t *exchange,
                     s_keys_t keys,
                     const amqp_table_t *headers,
                     arb_amqp_targets_t *queues,
                     zlistx_t **seen);

//  Routes on through the exchange of from's vhost named name (a binding's
//  destination, an alternate), if it is there and not visited yet.
static void
s_route_on (arb_amqp_exchange_t *from,
            const char *name,
            s_keys_t keys,
            const amqp_table_t *headers,
            arb_amqp_targets_t *queues,
            zlistx_t **seen)
{
    arb_amqp_exchange_t *next = arb_amqp_model_exchange (from->vhost, name);
    if (!*seen) {
        *seen = zlistx_new ();
        zlistx_add_end (*seen, from);
    }
    if (next && !zlistx_find (*seen, next)) {
        zlistx_add_end (*seen, next);
        s_route (next, keys, headers, queues, seen);
    }
}

//  seen: the exchanges visited, made at the first exchange-to-exchange
//  binding followed or alternate taken (most messages never need it).
//  A direct or topic binding matches if any of the keys does (RabbitMQ's
//  CC and BCC); fanout and headers exchanges do not look at them.
static void
s_route (arb_amqp_exchange_t *exchange,
         s_keys_t keys,
         const amqp_table_t *headers,
         arb_amqp_targets_t *queues,
         zlistx_t **seen)
{
    arb_amqp_vhost_t *vhost = exchange->vhost;
    if (exchange->builtin && !*exchange->name) {
        for (size_t i = 0; i < keys.n; i++)
            s_target (queues, arb_amqp_model_queue (vhost, keys.v[i]));
        return;
    }
    bool matched = false;
    for (arb_amqp_binding_t *b = (arb_amqp_binding_t *) zlistx_first (exchange->bindings); b;
         b = (arb_amqp_binding_t *) zlistx_next (exchange->bindings)) {
        bool match = false;
        switch (exchange->type) {
            case ARB_AMQP_DIRECT:
                for (size_t i = 0; i < keys.n && !match; i++)
                    match = streq (b->key, keys.v[i]);
                break;
            case ARB_AMQP_FANOUT:
                match = true;
                break;
            case ARB_AMQP_TOPIC:
                for (size_t i = 0; i < keys.n && !match; i++)
                    match = arb_amqp_model_topic_match (b->key, keys.v[i]);
                break;
            case ARB_AMQP_HEADERS:
                match = s_headers_match (b->args, headers);
                break;
        }
        if (!match)
            continue;
        matched = true;
        if (b->dest_exchange)
            s_route_on (exchange, b->dest, keys, headers, queues, seen);
        else
            s_target (queues, arb_amqp_model_queue (vhost, b->dest));
    }
    //  as RabbitMQ: an exchange none of whose bindings matches hands the
    //  message to its alternate exchange, if there is one (each exchange
    //  visited once, so alternates that loop end)
    if (!matched && exchange->alternate)
        s_route_on (exchange, exchange->alternate, keys, headers, queues, seen);
}

size_t
arb_amqp_model_route (arb_amqp_exchange_t *exchange,
                      const char *key,
                      const amqp_table_t *headers,
                      arb_amqp_targets_t *targets)
{
    return arb_amqp_model_route_keys (exchange, &key, 1, headers, targets);
}

size_t
arb_amqp_model_route_keys (arb_amqp_exchange_t *exchange,
                           const char *const *keys,
                           size_t nkeys,
                           const amqp_table_t *headers,
                           arb_amqp_targets_t *targets)
{
    zlistx_t *seen = NULL;
    s_route (exchange, (s_keys_t){keys, nkeys}, headers, targets, &seen);
    zlistx_destroy (&seen);
    return targets->n;
}
