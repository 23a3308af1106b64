/*  arb_envelope.c — the mapping between an upstream message and its task;
    see arb_envelope.h.
*/

#include "arb_envelope.h"
#include "arb_amqp_frame.h"

//  Feeds one optional field to the digest: whether it is there, its length
//  and its bytes, so that no two different sets of fields feed the same
//  bytes.
static void
s_feed (zdigest_t *digest, bool present, amqp_bytes_t bytes)
{
    uint8_t head[5] = {present};
    uint32_t len = present ? (uint32_t) bytes.len : 0;
    for (int i = 0; i < 4; i++)
        head[1 + i] = (uint8_t) (len >> (24 - 8 * i));
    zdigest_update (digest, head, sizeof (head));
    if (len)
        zdigest_update (digest, (const byte *) bytes.bytes, len);
}

static bool
s_has (const amqp_basic_properties_t *props, amqp_flags_t flag)
{
    return (props->_flags & flag) != 0;
}

bool
arb_envelope_key (const char *bridge,
                  const amqp_basic_properties_t *props,
                  amqp_bytes_t body,
                  char *key)
{
    char why[64];
    if (s_has (props, AMQP_BASIC_MESSAGE_ID_FLAG) && props->message_id.len > 0) {
        amqp_bytes_t id = props->message_id;
        size_t head = strlen ("bridge::id:") + strlen (bridge);
        if (head + id.len <= ARB_NAME_MAX && memchr (id.bytes, 0, id.len) == NULL
            && arb_name_check ((const char *) id.bytes, id.len, why, sizeof (why)) == 0) {
            snprintf (key, ARB_NAME_MAX + 1, "bridge:%s:id:%.*s", bridge, (int) id.len,
                      (const char *) id.bytes);
            return false;
        }
        zdigest_t *digest = zdigest_new ();
        zdigest_update (digest, (const byte *) id.bytes, id.len);
        snprintf (key, ARB_NAME_MAX + 1, "bridge:%s:idsha1:%s", bridge, zdigest_string (digest));
        zdigest_destroy (&digest);
        return false;
    }
    zdigest_t *digest = zdigest_new ();
    s_feed (digest, s_has (props, AMQP_BASIC_REPLY_TO_FLAG), props->reply_to);
    s_feed (digest, s_has (props, AMQP_BASIC_CORRELATION_ID_FLAG), props->correlation_id);
    uint8_t stamp[8];
    for (int i = 0; i < 8; i++)
        stamp[i] = (uint8_t) (props->timestamp >> (56 - 8 * i));
    s_feed (digest, s_has (props, AMQP_BASIC_TIMESTAMP_FLAG), (amqp_bytes_t){8, stamp});
    s_feed (digest, s_has (props, AMQP_BASIC_TYPE_FLAG), props->type);
    s_feed (digest, s_has (props, AMQP_BASIC_APP_ID_FLAG), props->app_id);
    s_feed (digest, s_has (props, AMQP_BASIC_USER_ID_FLAG), props->user_id);
    s_feed (digest, true, body);
    snprintf (key, ARB_NAME_MAX + 1, "bridge:%s:sha1:%s", bridge, zdigest_string (digest));
    zdigest_destroy (&digest);
    return true;
}

zframe_t *
arb_envelope_headers (amqp_bytes_t exchange, amqp_bytes_t routing_key, amqp_bytes_t raw)
{
    //  exchange and routing key are shortstrs on the wire: never over 255
    size_t size = ARB_AMQP_RECORD_OVERHEAD + exchange.len + routing_key.len + raw.len;
    if (size > ARB_HEADERS_MAX || exchange.len > 255 || routing_key.len > 255)
        return NULL;
    zframe_t *frame = zframe_new (NULL, size);
    arb_amqp_frame_record (zframe_data (frame), size, exchange, routing_key, raw);
    return frame;
}

zframe_t *
arb_envelope_address (const amqp_basic_properties_t *props)
{
    if (!s_has (props, AMQP_BASIC_REPLY_TO_FLAG) || props->reply_to.len == 0)
        return NULL;
    amqp_basic_properties_t address = {0};
    address._flags = AMQP_BASIC_REPLY_TO_FLAG;
    address.reply_to = props->reply_to;
    if (s_has (props, AMQP_BASIC_CORRELATION_ID_FLAG)) {
        address._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        address.correlation_id = props->correlation_id;
    }
    //  two shortstrs and the flags
    uint8_t buffer[2 + 2 * 256];
    int size = amqp_encode_properties (AMQP_BASIC_CLASS, &address,
                                       (amqp_bytes_t){sizeof (buffer), buffer});
    return size > 0 ? zframe_new (buffer, (size_t) size) : NULL;
}

int
arb_envelope_read_address (const void *data,
                           size_t size,
                           amqp_pool_t *pool,
                           amqp_bytes_t *reply_to,
                           amqp_bytes_t *correlation_id)
{
    void *decoded = NULL;
    if (size == 0
        || amqp_decode_properties (AMQP_BASIC_CLASS, pool, (amqp_bytes_t){size, (void *) data},
                                   &decoded)
               != 0)
        return -1;
    amqp_basic_properties_t *props = (amqp_basic_properties_t *) decoded;
    if (!s_has (props, AMQP_BASIC_REPLY_TO_FLAG) || props->reply_to.len == 0)
        return -1;
    *reply_to = props->reply_to;
    *correlation_id =
        s_has (props, AMQP_BASIC_CORRELATION_ID_FLAG) ? props->correlation_id : amqp_empty_bytes;
    return 0;
}

void
arb_envelope_reply (amqp_bytes_t correlation_id,
                    uint64_t id,
                    const char *state,
                    const char *error,
                    amqp_table_entry_t *entries,
                    amqp_basic_properties_t *props)
{
    memset (props, 0, sizeof (*props));
    props->_flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props->delivery_mode = 2;
    if (correlation_id.len) {
        props->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props->correlation_id = correlation_id;
    }
    int n = 0;
    entries[n].key = amqp_cstring_bytes ("x-arbiter-task-id");
    entries[n].value.kind = AMQP_FIELD_KIND_I64;
    entries[n++].value.value.i64 = (int64_t) id;
    entries[n].key = amqp_cstring_bytes ("x-arbiter-state");
    entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[n++].value.value.bytes = amqp_cstring_bytes (state);
    if (error && *error) {
        entries[n].key = amqp_cstring_bytes ("x-arbiter-error");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n++].value.value.bytes = amqp_cstring_bytes (error);
    }
    props->headers.num_entries = n;
    props->headers.entries = entries;
}
