/*  arb_amqp_record.c — the model's persistence: the keys and values of
    the records of exchanges, queues and bindings in the broker's metadata
    store (arb_amqp_model.h, "Records"), and loading them back.

    A record is an AMQP field table encoded by rabbitmq-c: the object's
    flags and its arguments table as declared. The model only builds and
    reads them; the server sends them (arb_amqp_admin.c) and reads them
    back at start (arb_amqp.c). A binding may be read before what it
    binds: it waits in the model's pending list until
    arb_amqp_model_load_done. Pure memory, one thread.
*/

#include "arb_amqp_model_priv.h"

char *
arb_amqp_model_exchange_key (arb_amqp_exchange_t *exchange, char *buf, size_t size)
{
    snprintf (buf, size, ARB_AMQP_META_PREFIX "x.%s|%s", exchange->vhost->name, exchange->name);
    return buf;
}

char *
arb_amqp_model_queue_key (arb_amqp_queue_t *queue, char *buf, size_t size)
{
    snprintf (buf, size, ARB_AMQP_META_PREFIX "q.%s|%s", queue->vhost->name, queue->name);
    return buf;
}

char *
arb_amqp_model_binding_key (arb_amqp_exchange_t *source,
                            const char *dest,
                            bool dest_exchange,
                            const char *key,
                            amqp_table_t *args,
                            char *buf,
                            size_t size)
{
    //  the binding's identity (destination, key, arguments) hashed: keys
    //  stay short whatever the routing key holds
    zchunk_t *encoded = arb_amqp_model_encode_args (args);
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, (const byte *) (dest_exchange ? "e" : "q"), 1);
    zdigest_update (digest, (const byte *) dest, strlen (dest) + 1);
    zdigest_update (digest, (const byte *) key, strlen (key) + 1);
    zdigest_update (digest, zchunk_data (encoded), zchunk_size (encoded));
    snprintf (buf, size, ARB_AMQP_META_PREFIX "b.%s|%s|%s", source->vhost->name, source->name,
              zdigest_string (digest));
    zdigest_destroy (&digest);
    zchunk_destroy (&encoded);
    return buf;
}

static amqp_table_entry_t
s_entry_str (const char *key, const char *value)
{
    amqp_table_entry_t entry = {.key = amqp_cstring_bytes (key)};
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = amqp_cstring_bytes (value);
    return entry;
}

static amqp_table_entry_t
s_entry_bool (const char *key, bool value)
{
    amqp_table_entry_t entry = {.key = amqp_cstring_bytes (key)};
    entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    entry.value.value.boolean = value;
    return entry;
}

static amqp_table_entry_t
s_entry_table (const char *key, amqp_table_t table)
{
    amqp_table_entry_t entry = {.key = amqp_cstring_bytes (key)};
    entry.value.kind = AMQP_FIELD_KIND_TABLE;
    entry.value.value.table = table;
    return entry;
}

//  Encodes a record of n entries with args (an encoded table) as "args".
static zchunk_t *
s_record (amqp_table_entry_t *entries, int n, zchunk_t *args)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_table_t table = {0, NULL};
    arb_amqp_model_decode_args (args, &pool, &table);
    entries[n++] = s_entry_table ("args", table);
    amqp_table_t record = {n, entries};
    zchunk_t *chunk = arb_amqp_model_encode_args (&record);
    empty_amqp_pool (&pool);
    return chunk;
}

zchunk_t *
arb_amqp_model_exchange_record (arb_amqp_exchange_t *exchange)
{
    amqp_table_entry_t entries[5] = {
        s_entry_str ("type", arb_amqp_model_type_name (exchange->type)),
        s_entry_bool ("durable", exchange->durable),
        s_entry_bool ("auto_delete", exchange->auto_delete),
        s_entry_bool ("internal", exchange->internal),
    };
    return s_record (entries, 4, exchange->args);
}

zchunk_t *
arb_amqp_model_queue_record (arb_amqp_queue_t *queue)
{
    amqp_table_entry_t entries[5] = {
        s_entry_bool ("durable", queue->durable),
        s_entry_bool ("exclusive", queue->exclusive),
        s_entry_bool ("auto_delete", queue->auto_delete),
        s_entry_bool ("had_consumer", queue->had_consumer),
    };
    return s_record (entries, 4, queue->args);
}

zchunk_t *
arb_amqp_model_binding_record (arb_amqp_exchange_t *source,
                               const char *dest,
                               bool dest_exchange,
                               const char *key,
                               amqp_table_t *args)
{
    zchunk_t *encoded = arb_amqp_model_encode_args (args);
    amqp_table_entry_t entries[5] = {
        s_entry_str ("source", source->name),
        s_entry_str ("dest", dest),
        s_entry_bool ("dest_exchange", dest_exchange),
        s_entry_str ("key", key),
    };
    zchunk_t *record = s_record (entries, 4, encoded);
    zchunk_destroy (&encoded);
    return record;
}

//  A string entry of a record as a C string (in pool), or NULL.
static char *
s_get_str (amqp_table_t *table, const char *key, amqp_pool_t *pool)
{
    const amqp_field_value_t *value = arb_amqp_table_get (table, key);
    if (!value || value->kind != AMQP_FIELD_KIND_UTF8)
        return NULL;
    char *out = (char *) amqp_pool_alloc (pool, value->value.bytes.len + 1);
    memcpy (out, value->value.bytes.bytes, value->value.bytes.len);
    out[value->value.bytes.len] = 0;
    return out;
}

static bool
s_get_bool (amqp_table_t *table, const char *key)
{
    const amqp_field_value_t *value = arb_amqp_table_get (table, key);
    return value && value->kind == AMQP_FIELD_KIND_BOOLEAN && value->value.boolean;
}

static amqp_table_t *
s_get_table (amqp_table_t *table, const char *key)
{
    const amqp_field_value_t *value = arb_amqp_table_get (table, key);
    return value && value->kind == AMQP_FIELD_KIND_TABLE ? (amqp_table_t *) &value->value.table
                                                         : NULL;
}

int
arb_amqp_model_load (arb_amqp_model_t *self, const char *key, const uint8_t *value, size_t size)
{
    size_t plen = strlen (ARB_AMQP_META_PREFIX);
    if (strncmp (key, ARB_AMQP_META_PREFIX, plen) != 0 || strlen (key) < plen + 2
        || key[plen + 1] != '.')
        return -1;
    char kind = key[plen];
    const char *rest = key + plen + 2;
    const char *bar = strchr (rest, '|');
    if (!bar || size < 4)
        return -1;
    char *vname = strndup (rest, (size_t) (bar - rest));
    arb_amqp_vhost_t *vhost = arb_amqp_model_vhost (self, vname);
    const char *name = bar + 1;
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    amqp_table_t record;
    int rc = -1;
    if (arb_amqp_frame_table (value + 4, size - 4, &pool, &record) != 0)
        goto cleanup;
    amqp_table_t *args = s_get_table (&record, "args");
    rc = 0;
    if (!vhost)
        goto cleanup;  //  a vhost no longer configured: its records wait
    if (kind == 'x') {
        arb_amqp_type_t type;
        char *tname = s_get_str (&record, "type", &pool);
        if (!tname || arb_amqp_model_type (tname, &type) != 0) {
            rc = -1;
            goto cleanup;
        }
        if (!arb_amqp_model_exchange (vhost, name))
            arb_amqp_model_add_exchange (vhost, name, type, s_get_bool (&record, "durable"),
                                         s_get_bool (&record, "auto_delete"),
                                         s_get_bool (&record, "internal"), args);
    }
    else if (kind == 'q') {
        if (!arb_amqp_model_queue (vhost, name)) {
            arb_amqp_queue_t *queue = arb_amqp_model_add_queue (
                vhost, name, s_get_bool (&record, "durable"), s_get_bool (&record, "exclusive"),
                s_get_bool (&record, "auto_delete"), 0, args);
            queue->had_consumer = s_get_bool (&record, "had_consumer");
        }
    }
    else if (kind == 'b') {
        char *source = s_get_str (&record, "source", &pool);
        char *dest = s_get_str (&record, "dest", &pool);
        char *bkey = s_get_str (&record, "key", &pool);
        if (!source || !dest || !bkey) {
            rc = -1;
            goto cleanup;
        }
        arb_amqp_pending_t *pending = (arb_amqp_pending_t *) zmalloc (sizeof (arb_amqp_pending_t));
        pending->vhost = strdup (vname);
        pending->source = strdup (source);
        pending->binding = arb_amqp_binding_new (dest, s_get_bool (&record, "dest_exchange"), bkey,
                                                 arb_amqp_model_encode_args (args));
        zlistx_add_end (self->pending, pending);
    }
    else
        rc = -1;
cleanup:
    empty_amqp_pool (&pool);
    free (vname);
    return rc;
}

size_t
arb_amqp_model_load_done (arb_amqp_model_t *self)
{
    size_t dropped = 0;
    for (arb_amqp_pending_t *p = (arb_amqp_pending_t *) zlistx_first (self->pending); p;
         p = (arb_amqp_pending_t *) zlistx_next (self->pending)) {
        arb_amqp_vhost_t *vhost = arb_amqp_model_vhost (self, p->vhost);
        arb_amqp_exchange_t *source = vhost ? arb_amqp_model_exchange (vhost, p->source) : NULL;
        bool dest_ok = vhost
                       && (p->binding->dest_exchange
                               ? arb_amqp_model_exchange (vhost, p->binding->dest) != NULL
                               : arb_amqp_model_queue (vhost, p->binding->dest) != NULL);
        if (!source || !dest_ok) {
            dropped++;
            continue;
        }
        zlistx_add_end (source->bindings, p->binding);
        source->had_binding = true;
        p->binding = NULL;
    }
    zlistx_purge (self->pending);
    return dropped;
}
