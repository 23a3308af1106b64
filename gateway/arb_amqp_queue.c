/*  arb_amqp_queue.c — the model's queues: their x- arguments (read into
    arb_amqp_qargs_t, checked as RabbitMQ 3.10 checks them for a queue's
    type, compared when one is declared again), their bounds, and
    declaring and removing one; see arb_amqp_model.h.

    A queue keeps its arguments as declared (encoded: its record holds
    them) and its settings read from them once. What the settings make the
    server do (expiry, trims, admission, dead letters, single active
    consumers) is the server's, not the model's. Pure memory, one thread.
*/

#include "arb_amqp_model_priv.h"

#include <inttypes.h>

//  ---------------------------------------------------------------------
//  Arguments

//  The arguments RabbitMQ (3.10) compares when a queue is declared again,
//  by its type; others (a client's own x-anything, and for a quorum queue
//  the classic ones it ignores then) may differ, as there. x-queue-type
//  is compared apart: "classic" and none are the same type.
static const char *s_classic_keys[] = {
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-master-locator",
    "x-queue-version",
    NULL,
};

static const char *s_quorum_keys[] = {
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    NULL,
};

//  Whether args (NULL: none) name x-queue-type quorum.
static bool
s_is_quorum (const amqp_table_t *args)
{
    const amqp_field_value_t *qtype = args ? arb_amqp_table_get (args, "x-queue-type") : NULL;
    return qtype && (qtype->kind == AMQP_FIELD_KIND_UTF8 || qtype->kind == AMQP_FIELD_KIND_BYTES)
           && qtype->value.bytes.len == 6 && memcmp (qtype->value.bytes.bytes, "quorum", 6) == 0;
}

//  Whether args name the classic type: x-queue-type absent or "classic".
static bool
s_is_classic (const amqp_table_t *args)
{
    const amqp_field_value_t *qtype = args ? arb_amqp_table_get (args, "x-queue-type") : NULL;
    return !qtype
           || ((qtype->kind == AMQP_FIELD_KIND_UTF8 || qtype->kind == AMQP_FIELD_KIND_BYTES)
               && qtype->value.bytes.len == 7
               && memcmp (qtype->value.bytes.bytes, "classic", 7) == 0);
}

//  A value as RabbitMQ's 406 shows it (rabbit_misc's val/1): "none"
//  when absent, "the value 'V' of type 'T'" when typed (the other side
//  absent), else 'V'. Strings at most 100 bytes, non-printables as '.'.
static void
s_describe (const amqp_field_value_t *v, bool typed, char *buf, size_t size)
{
    if (!v) {
        snprintf (buf, size, "none");
        return;
    }
    char text[128];
    int64_t n;
    if (v->kind == AMQP_FIELD_KIND_BOOLEAN)
        snprintf (text, sizeof (text), "%s", v->value.boolean ? "true" : "false");
    else if (v->kind == AMQP_FIELD_KIND_U64)
        snprintf (text, sizeof (text), "%" PRIu64, v->value.u64);
    else if (arb_amqp_value_int (v, &n) == 0)
        snprintf (text, sizeof (text), "%" PRId64, n);
    else if (v->kind == AMQP_FIELD_KIND_F32)
        snprintf (text, sizeof (text), "%g", (double) v->value.f32);
    else if (v->kind == AMQP_FIELD_KIND_F64)
        snprintf (text, sizeof (text), "%g", v->value.f64);
    else if (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES) {
        size_t len = v->value.bytes.len < 100 ? v->value.bytes.len : 100;
        const uint8_t *bytes = (const uint8_t *) v->value.bytes.bytes;
        for (size_t i = 0; i < len; i++)
            text[i] = bytes[i] >= 0x20 && bytes[i] < 0x7f ? (char) bytes[i] : '.';
        snprintf (text + len, sizeof (text) - len, "%s", v->value.bytes.len > 100 ? "..." : "");
    }
    else
        snprintf (text, sizeof (text), "(a %s)", arb_amqp_value_type_name (v));
    if (typed)
        snprintf (buf, size, "the value '%s' of type '%s'", text, arb_amqp_value_type_name (v));
    else
        snprintf (buf, size, "'%s'", text);
}

void
arb_amqp_model_inequivalent (const amqp_field_value_t *current,
                             const amqp_field_value_t *received,
                             char *values,
                             size_t size)
{
    char r[160], c[160];
    //  one side absent: the other with its type
    s_describe (received, !current, r, sizeof (r));
    s_describe (current, !received, c, sizeof (c));
    snprintf (values, size, "received %s but current is %s", r, c);
}

//  Says how a and b differ (b the one received) as RabbitMQ does.
static void
s_inequivalent (const char *key,
                const amqp_field_value_t *a,
                const amqp_field_value_t *b,
                const char **key_p,
                char *values,
                size_t size)
{
    *key_p = key;
    arb_amqp_model_inequivalent (a, b, values, size);
}

//  Whether a value is a string or a byte array.
static bool
s_is_text (const amqp_field_value_t *value)
{
    return value->kind == AMQP_FIELD_KIND_UTF8 || value->kind == AMQP_FIELD_KIND_BYTES;
}

bool
arb_amqp_model_equivalent_qargs (
    zchunk_t *stored, amqp_table_t *args, const char **key_p, char *values, size_t size)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_table_t table;
    amqp_table_t empty = {0, NULL};
    if (!args)
        args = &empty;
    *key_p = NULL;
    snprintf (values, size, "the stored arguments cannot be read");
    bool same = arb_amqp_model_decode_args (stored, &pool, &table) == 0;
    //  a queue's type is in its stored arguments (its record), so this
    //  holds across restarts
    bool quorum = same && s_is_quorum (&table);
    if (same && (quorum != s_is_quorum (args) || s_is_classic (&table) != s_is_classic (args))) {
        same = false;
        s_inequivalent ("x-queue-type", arb_amqp_table_get (&table, "x-queue-type"),
                        arb_amqp_table_get (args, "x-queue-type"), key_p, values, size);
    }
    const char **keys = quorum ? s_quorum_keys : s_classic_keys;
    for (size_t i = 0; same && keys[i]; i++) {
        const amqp_field_value_t *a = arb_amqp_table_get (&table, keys[i]);
        const amqp_field_value_t *b = arb_amqp_table_get (args, keys[i]);
        if (!a || !b)
            same = !a && !b;
        else if (s_is_text (a) && s_is_text (b))
            //  a string and a byte array of the same bytes are one value
            //  to RabbitMQ's comparison (both are binaries)
            same = a->value.bytes.len == b->value.bytes.len
                   && (!a->value.bytes.len
                       || memcmp (a->value.bytes.bytes, b->value.bytes.bytes, a->value.bytes.len)
                              == 0);
        else {
            amqp_table_t one_a = {1, &(amqp_table_entry_t){{1, "k"}, *a}};
            amqp_table_t one_b = {1, &(amqp_table_entry_t){{1, "k"}, *b}};
            same = arb_amqp_table_equal (&one_a, &one_b);
        }
        if (!same)
            s_inequivalent (keys[i], a, b, key_p, values, size);
    }
    empty_amqp_pool (&pool);
    return same;
}

//  An integer argument >= 0: 1 if set (in *out), 0 if absent, -1 if bad,
//  why in RabbitMQ's words (its validators' Erlang terms). Over max it is
//  RabbitMQ's term too (over: value_too_large, max_value_exceeded), or,
//  where RabbitMQ has no bound (over NULL), the gateway's own words.
static int
s_arg_uint (amqp_table_t *args,
            const char *key,
            uint64_t max,
            const char *over,
            uint64_t *out,
            const char *subject,
            char *why,
            size_t size)
{
    const amqp_field_value_t *value = arb_amqp_table_get (args, key);
    if (!value)
        return 0;
    int64_t n;
    if (value->kind == AMQP_FIELD_KIND_TIMESTAMP || arb_amqp_value_int (value, &n) != 0) {
        snprintf (why, size, "invalid arg '%s' for %s: \"expected integer, got %s\"", key, subject,
                  arb_amqp_value_type_name (value));
        return -1;
    }
    if (n < 0) {
        snprintf (why, size, "invalid arg '%s' for %s: {value_negative,%" PRId64 "}", key, subject,
                  n);
        return -1;
    }
    if ((uint64_t) n > max) {
        if (over)
            snprintf (why, size, "invalid arg '%s' for %s: {%s,%" PRId64 "}", key, subject, over,
                      n);
        else
            snprintf (why, size,
                      "invalid arg '%s' for %s: %" PRId64
                      " is over arbiter-gateway's bound %" PRIu64,
                      key, subject, n, max);
        return -1;
    }
    *out = (uint64_t) n;
    return 1;
}

//  A string argument: a copy (owned), NULL if absent; -1 if it is not one.
static int
s_arg_str (
    amqp_table_t *args, const char *key, char **out, const char *subject, char *why, size_t size)
{
    const amqp_field_value_t *value = arb_amqp_table_get (args, key);
    if (!value)
        return 0;
    //  a long string, as RabbitMQ wants it (it refuses a byte array too);
    //  its channel checks the dead-letter exchange's type, in its words,
    //  before the validators
    if (value->kind != AMQP_FIELD_KIND_UTF8) {
        if (streq (key, "x-dead-letter-exchange"))
            snprintf (why, size, "invalid type '%s' for arg '%s' in %s",
                      arb_amqp_value_type_name (value), key, subject);
        else
            snprintf (why, size, "invalid arg '%s' for %s: {unacceptable_type,%s}", key, subject,
                      arb_amqp_value_type_name (value));
        return -1;
    }
    //  kept as a C string, which would cut it there (see arb_amqp_frame_has_nul)
    if (value->value.bytes.len && memchr (value->value.bytes.bytes, 0, value->value.bytes.len)) {
        snprintf (why, size, "invalid arg '%s' for %s: a NUL byte is not supported", key, subject);
        return -1;
    }
    *out = (char *) zmalloc (value->value.bytes.len + 1);
    memcpy (*out, value->value.bytes.bytes, value->value.bytes.len);
    return 1;
}

//  x-queue-mode: every queue here is on disk, so it changes nothing, but
//  RabbitMQ 3.10 refuses a value other than "default" and "lazy", and a
//  client that declares one must see the same refusal. Its texts.
static int
s_check_mode (amqp_table_t *args, const char *subject, char *why, size_t size)
{
    const amqp_field_value_t *mode = arb_amqp_table_get (args, "x-queue-mode");
    if (!mode)
        return 0;
    if (mode->kind != AMQP_FIELD_KIND_UTF8) {
        snprintf (why, size, "invalid arg 'x-queue-mode' for %s: {unacceptable_type,%s}", subject,
                  arb_amqp_value_type_name (mode));
        return -1;
    }
    amqp_bytes_t value = mode->value.bytes;
    if ((value.len == 7 && memcmp (value.bytes, "default", 7) == 0)
        || (value.len == 4 && memcmp (value.bytes, "lazy", 4) == 0))
        return 0;
    char quoted[ARB_AMQP_QUOTE_MAX + 1];
    arb_amqp_frame_quote (quoted, value);
    snprintf (why, size, "invalid arg 'x-queue-mode' for %s: \"unsupported queue mode '%s'\"",
              subject, quoted);
    return -1;
}

//  x-queue-version (a classic queue's on-disk format): 1 or 2, as
//  RabbitMQ 3.10 takes it, with its texts (an integer from 0 as any
//  other's, s_arg_uint); changes nothing here either.
static int
s_check_version (amqp_table_t *args, const char *subject, char *why, size_t size)
{
    uint64_t n;
    int rc = s_arg_uint (args, "x-queue-version", INT64_MAX, NULL, &n, subject, why, size);
    if (rc < 0)
        return -1;
    if (rc == 0 || n == 1 || n == 2)
        return 0;
    snprintf (why, size,
              "invalid arg 'x-queue-version' for %s: \"unsupported queue version '%" PRIu64 "'\"",
              subject, n);
    return -1;
}

int
arb_amqp_model_parse_qargs (
    amqp_table_t *args, arb_amqp_qargs_t *settings, const char *subject, char *why, size_t size)
{
    memset (settings, 0, sizeof (*settings));
    if (!args)
        return 0;
    uint64_t priority = 0;
    int rc;
    if ((rc = s_arg_uint (args, "x-message-ttl", ARB_AMQP_TTL_MAX_MS, "value_too_large",
                          &settings->message_ttl_ms, subject, why, size))
        < 0)
        goto bad;
    settings->has_ttl = rc == 1;
    if (s_arg_uint (args, "x-expires", ARB_AMQP_TTL_MAX_MS, "value_too_large",
                    &settings->expires_ms, subject, why, size)
        < 0)
        goto bad;
    if (settings->expires_ms == 0 && arb_amqp_table_get (args, "x-expires")) {
        snprintf (why, size, "invalid arg 'x-expires' for %s: {value_zero,0}", subject);
        goto bad;
    }
    //  x-max-length and x-max-length-bytes are kept by dropping the head
    //  (arb_amqp.c, as RabbitMQ's default overflow) or by refusing
    //  publishes (arb_amqp_admit.c), from the broker's ready count and
    //  ready bytes (STATS)
    if ((rc = s_arg_uint (args, "x-max-length", UINT32_MAX, NULL, &settings->max_length, subject,
                          why, size))
        < 0)
        goto bad;
    settings->has_max_length = rc == 1;
    if ((rc = s_arg_uint (args, "x-max-length-bytes", INT64_MAX, NULL, &settings->max_length_bytes,
                          subject, why, size))
        < 0)
        goto bad;
    settings->has_max_length_bytes = rc == 1;
    char *overflow = NULL;
    if (s_arg_str (args, "x-overflow", &overflow, subject, why, size) < 0)
        goto bad;
    if (overflow && streq (overflow, "reject-publish"))
        settings->overflow = ARB_AMQP_REJECT_PUBLISH;
    else if (overflow && streq (overflow, "reject-publish-dlx"))
        settings->overflow = ARB_AMQP_REJECT_PUBLISH_DLX;
    else if (overflow && !streq (overflow, "drop-head")) {
        snprintf (why, size, "invalid arg 'x-overflow' for %s: invalid_overflow", subject);
        zstr_free (&overflow);
        goto bad;
    }
    zstr_free (&overflow);
    if (s_arg_uint (args, "x-max-priority", 255, "max_value_exceeded", &priority, subject, why,
                    size)
        < 0)
        goto bad;
    settings->max_priority = (uint8_t) priority;
    if (s_arg_str (args, "x-dead-letter-exchange", &settings->dlx, subject, why, size) < 0
        || s_arg_str (args, "x-dead-letter-routing-key", &settings->dlrk, subject, why, size) < 0)
        goto bad;
    if (settings->dlrk && !settings->dlx) {
        snprintf (why, size,
                  "invalid arg 'x-dead-letter-routing-key' for %s: routing_key_but_no_dlx_defined",
                  subject);
        goto bad;
    }
    //  x-delivery-limit, as RabbitMQ 3.10 reads it: an integer is the
    //  number of returns a message outlives (a negative one none, as 0);
    //  any other value is no limit. A classic queue has none (refused at
    //  its declaration)
    settings->quorum = s_is_quorum (args);
    const amqp_field_value_t *limit = arb_amqp_table_get (args, "x-delivery-limit");
    int64_t returns;
    if (settings->quorum && limit && arb_amqp_value_int (limit, &returns) == 0) {
        settings->has_delivery_limit = true;
        settings->delivery_limit = returns > 0 ? (uint64_t) returns : 0;
    }
    const amqp_field_value_t *sac = arb_amqp_table_get (args, "x-single-active-consumer");
    settings->single_active = sac && sac->kind == AMQP_FIELD_KIND_BOOLEAN && sac->value.boolean;
    return 0;
bad:
    arb_amqp_model_free_qargs (settings);
    return -1;
}

void
arb_amqp_model_free_qargs (arb_amqp_qargs_t *settings)
{
    zstr_free (&settings->dlx);
    zstr_free (&settings->dlrk);
}

//  The arguments RabbitMQ (3.10) refuses for a queue of one type: those
//  another type (classic, quorum, stream) takes and this one does not.
static const char *s_not_quorum[] = {"x-max-priority",
                                     "x-queue-mode",
                                     "x-queue-master-locator",
                                     "x-queue-version",
                                     "x-max-age",
                                     "x-stream-max-segment-size-bytes",
                                     "x-initial-cluster-size",
                                     NULL};
static const char *s_not_classic[] = {"x-delivery-limit",
                                      "x-dead-letter-strategy",
                                      "x-quorum-initial-group-size",
                                      "x-max-in-memory-length",
                                      "x-max-in-memory-bytes",
                                      "x-queue-leader-locator",
                                      "x-max-age",
                                      "x-stream-max-segment-size-bytes",
                                      "x-initial-cluster-size",
                                      NULL};

int
arb_amqp_model_check_supported (amqp_table_t *args,
                                bool durable,
                                bool exclusive,
                                bool auto_delete,
                                const char *subject,
                                char *why,
                                size_t size)
{
    //  arbiter's queues are classic or quorum: a quorum queue is one
    //  broker queue like any other (durable in the broker's journal, not
    //  replicated) that keeps RabbitMQ's rules for one and its delivery
    //  limit. A stream's consumers read by offset, which is not kept: it
    //  is refused rather than taken as classic. Checked at a declaration
    //  only: a record loaded keeps its queue whatever it says.
    //  x-single-active-consumer: a boolean, as RabbitMQ wants it (true:
    //  one consumer of the queue served at a time, arb_amqp_consumer.c)
    const amqp_field_value_t *sac =
        args ? arb_amqp_table_get (args, "x-single-active-consumer") : NULL;
    if (sac && sac->kind != AMQP_FIELD_KIND_BOOLEAN) {
        snprintf (why, size,
                  "invalid arg 'x-single-active-consumer' for %s: {unacceptable_type,%s}", subject,
                  arb_amqp_value_type_name (sac));
        return -1;
    }
    const amqp_field_value_t *qtype = args ? arb_amqp_table_get (args, "x-queue-type") : NULL;
    if (qtype && qtype->kind != AMQP_FIELD_KIND_UTF8) {
        snprintf (why, size, "invalid arg 'x-queue-type' for %s: {unacceptable_type,%s}", subject,
                  arb_amqp_value_type_name (qtype));
        return -1;
    }
    if (!s_is_classic (args) && !s_is_quorum (args)) {
        char quoted[ARB_AMQP_QUOTE_MAX + 1];
        arb_amqp_frame_quote (quoted, qtype->value.bytes);
        if (streq (quoted, "stream"))
            snprintf (why, size,
                      "invalid arg 'x-queue-type' for %s: stream queues are not supported by "
                      "arbiter-gateway (classic and quorum only)",
                      subject);
        else
            snprintf (why, size,
                      "invalid arg 'x-queue-type' for %s: \"unsupported queue type '%s'\"", subject,
                      quoted);
        return -1;
    }
    bool quorum = s_is_quorum (args);
    //  RabbitMQ checks the arguments first, then the properties
    const char **refused = quorum ? s_not_quorum : s_not_classic;
    for (size_t i = 0; refused[i]; i++)
        if (args && arb_amqp_table_get (args, refused[i])) {
            //  RabbitMQ names the type by its module
            snprintf (why, size, "invalid arg '%s' for %s of queue type %s", refused[i], subject,
                      quorum ? "rabbit_quorum_queue" : "rabbit_classic_queue");
            return -1;
        }
    //  the values of arguments that change nothing here (a record loaded
    //  with another keeps its settings)
    if (args
        && (s_check_mode (args, subject, why, size) || s_check_version (args, subject, why, size)))
        return -1;
    if (quorum && (!durable || exclusive || auto_delete)) {
        //  in RabbitMQ 3.10's order
        snprintf (why, size, "invalid property '%s' for %s",
                  auto_delete ? "auto-delete"
                  : exclusive ? "exclusive-owner"
                              : "non-durable",
                  subject);
        return -1;
    }
    return 0;
}

uint32_t
arb_amqp_model_priority (const arb_amqp_qargs_t *settings, const amqp_basic_properties_t *props)
{
    if (!settings->max_priority || !props || !(props->_flags & AMQP_BASIC_PRIORITY_FLAG))
        return 0;
    return props->priority < settings->max_priority ? props->priority : settings->max_priority;
}

bool
arb_amqp_model_is_bounded (const arb_amqp_qargs_t *settings)
{
    return settings->has_max_length || settings->has_max_length_bytes;
}

bool
arb_amqp_model_is_over (const arb_amqp_qargs_t *settings, uint64_t ready, uint64_t bytes)
{
    return (settings->has_max_length && ready > settings->max_length)
           || (settings->has_max_length_bytes && bytes > settings->max_length_bytes);
}

bool
arb_amqp_model_fits (const arb_amqp_qargs_t *settings,
                     uint64_t ready,
                     uint64_t bytes,
                     uint64_t size)
{
    //  bytes + size <= bound, without the sum (which could wrap)
    return (!settings->has_max_length || ready < settings->max_length)
           && (!settings->has_max_length_bytes
               || (size <= settings->max_length_bytes
                   && bytes <= settings->max_length_bytes - size));
}

bool
arb_amqp_model_broker_bounds (const arb_amqp_qargs_t *settings)
{
    //  drop-head's drops with a dead-letter exchange are the gateway's to
    //  route; a refused publish it still holds, and dead-letters itself
    return arb_amqp_model_is_bounded (settings)
           && (settings->overflow != ARB_AMQP_DROP_HEAD || !settings->dlx)
           && (!settings->has_max_length || settings->max_length)
           && (!settings->has_max_length_bytes || settings->max_length_bytes);
}

//  ---------------------------------------------------------------------
//  Queues

arb_amqp_queue_t *
arb_amqp_model_queue (arb_amqp_vhost_t *vhost, const char *name)
{
    return (arb_amqp_queue_t *) zhashx_lookup (vhost->queues, name);
}

arb_amqp_queue_t *
arb_amqp_model_add_queue (arb_amqp_vhost_t *vhost,
                          const char *name,
                          bool durable,
                          bool exclusive,
                          bool auto_delete,
                          uint64_t owner,
                          amqp_table_t *args)
{
    arb_amqp_queue_t *queue = (arb_amqp_queue_t *) zmalloc (sizeof (arb_amqp_queue_t));
    queue->vhost = vhost;
    queue->name = strdup (name);
    queue->broker = arb_amqp_model_broker_name (vhost, name);
    queue->durable = durable;
    queue->exclusive = exclusive;
    queue->auto_delete = auto_delete;
    queue->owner = owner;
    queue->args = arb_amqp_model_encode_args (args);
    char why[256];
    amqp_table_t empty = {0, NULL};
    if (arb_amqp_model_parse_qargs (args ? args : &empty, &queue->settings, "queue", why,
                                    sizeof (why)))
        memset (&queue->settings, 0, sizeof (queue->settings));
    if (queue->settings.single_active)
        queue->sac = zlistx_new ();
    queue->ranks = zlistx_new ();
    queue->top_priority = INT64_MIN;
    zhashx_update (vhost->queues, name, queue);
    return queue;
}

void
arb_amqp_model_remove_queue (arb_amqp_queue_t *queue)
{
    arb_amqp_vhost_t *vhost = queue->vhost;
    char *name = strdup (queue->name);
    zhashx_delete (vhost->queues, name);
    arb_amqp_model_unbind_all (vhost, name, false);
    free (name);
}
