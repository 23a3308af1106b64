/*  arb_amqp_frame.c — AMQP 0-9-1 frames with rabbitmq-c's codec; see
    arb_amqp_frame.h.

    rabbitmq-c decodes a method's arguments only (the payload after the
    4-byte class and method ids), and its encoders return the number of
    bytes written, not 0 (../shared/protocols/amqp-kestrel-server-notes.md,
    B.2 and B.3).
*/

#include "arb_amqp_frame.h"
#include "arb_proto.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t arb_amqp_protocol_header[ARB_AMQP_HEADER_SIZE] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

static uint32_t
s_u32 (const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void
s_put_u32 (uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

bool
arb_amqp_frame_is_protocol_header (const uint8_t *data)
{
    static const uint8_t zero_nine[ARB_AMQP_HEADER_SIZE] = {'A', 'M', 'Q', 'P', 1, 1, 0, 9};
    return memcmp (data, arb_amqp_protocol_header, ARB_AMQP_HEADER_SIZE) == 0
           || memcmp (data, zero_nine, ARB_AMQP_HEADER_SIZE) == 0;
}

size_t
arb_amqp_frame_record (
    uint8_t *buf, size_t size, amqp_bytes_t exchange, amqp_bytes_t routing_key, amqp_bytes_t raw)
{
    size_t need = ARB_AMQP_RECORD_OVERHEAD + exchange.len + routing_key.len + raw.len;
    if (need > size || exchange.len > 255 || routing_key.len > 255)
        return 0;
    uint8_t *p = buf;
    *p++ = 'A';
    *p++ = 'Q';
    *p++ = 1;
    *p++ = (uint8_t) exchange.len;
    if (exchange.len)
        memcpy (p, exchange.bytes, exchange.len);
    p += exchange.len;
    *p++ = (uint8_t) routing_key.len;
    if (routing_key.len)
        memcpy (p, routing_key.bytes, routing_key.len);
    p += routing_key.len;
    if (raw.len)
        memcpy (p, raw.bytes, raw.len);
    return need;
}

int
arb_amqp_frame_read_record (const uint8_t *data,
                            size_t size,
                            amqp_bytes_t *exchange,
                            amqp_bytes_t *routing_key,
                            amqp_bytes_t *raw)
{
    if (size < ARB_AMQP_RECORD_OVERHEAD || data[0] != 'A' || data[1] != 'Q' || data[2] != 1)
        return -1;
    size_t off = 3;
    exchange->len = data[off++];
    exchange->bytes = (void *) (data + off);
    off += exchange->len;
    if (off + 1 > size)
        return -1;
    routing_key->len = data[off++];
    routing_key->bytes = (void *) (data + off);
    off += routing_key->len;
    if (off > size)
        return -1;
    raw->len = size - off;
    raw->bytes = (void *) (data + off);
    return 0;
}

char *
arb_amqp_frame_str (amqp_bytes_t bytes)
{
    char *text = (char *) calloc (1, bytes.len + 1);
    assert (text);
    if (bytes.len)
        memcpy (text, bytes.bytes, bytes.len);
    return text;
}

const char *
arb_amqp_frame_short (char dest[256], const char *text)
{
    size_t n = strlen (text);
    if (n <= 255) {
        memcpy (dest, text, n + 1);
        return dest;
    }
    n = arb_utf8_cut (text, 252);
    memcpy (dest, text, n);
    memcpy (dest + n, "...", 4);
    return dest;
}

void
arb_amqp_frame_quote (char dest[ARB_AMQP_QUOTE_MAX + 1], amqp_bytes_t bytes)
{
    size_t n = bytes.len < ARB_AMQP_QUOTE_MAX ? bytes.len : ARB_AMQP_QUOTE_MAX;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = ((const uint8_t *) bytes.bytes)[i];
        dest[i] = c >= 0x20 && c < 0x7f ? (char) c : '.';
    }
    dest[n] = 0;
}

const char *
arb_amqp_frame_erlang (char *dest, size_t size, amqp_bytes_t bytes, bool binary)
{
    static const char controls[] = "\n\r\t\v\b\f\033";
    static const char letters[] = "nrtvbfe";
    const uint8_t *at = (const uint8_t *) bytes.bytes;
    if (!bytes.len) {
        snprintf (dest, size, "%s", binary ? "<<>>" : "[]");
        return dest;
    }
    //  io_lib:printable_list/1 under Erlang's default (latin-1) range
    bool printable = true;
    for (size_t i = 0; i < bytes.len && printable; i++)
        printable =
            (at[i] >= 0x20 && at[i] < 0x7f) || at[i] >= 0xa0 || (at[i] && strchr (controls, at[i]));
    size_t used = (size_t) snprintf (dest, size, "%s%s",
                                     binary      ? "<<"
                                     : printable ? ""
                                                 : "[",
                                     printable ? "\"" : "");
    for (size_t i = 0; i < bytes.len && used + 8 < size; i++) {
        const char *control = at[i] ? strchr (controls, at[i]) : NULL;
        if (!printable)
            used += (size_t) snprintf (dest + used, size - used, "%s%u", i ? "," : "", at[i]);
        else if (control)
            used +=
                (size_t) snprintf (dest + used, size - used, "\\%c", letters[control - controls]);
        else
            used += (size_t) snprintf (dest + used, size - used, "%s%c",
                                       at[i] == '"' || at[i] == '\\' ? "\\" : "", (char) at[i]);
    }
    if (used + 4 < size)
        snprintf (dest + used, size - used, "%s%s", printable ? "\"" : "",
                  binary      ? ">>"
                  : printable ? ""
                              : "]");
    return dest;
}

arb_amqp_frame_rc_t
arb_amqp_frame_read (const uint8_t *data,
                     size_t size,
                     uint32_t frame_max,
                     arb_amqp_frame_t *frame,
                     size_t *used,
                     int *code,
                     char *why,
                     size_t size_why)
{
    if (size < 7)
        return ARB_AMQP_FRAME_MORE;
    uint8_t type = data[0];
    uint16_t channel = (uint16_t) (data[1] << 8 | data[2]);
    uint32_t payload = s_u32 (data + 3);
    if (type != AMQP_FRAME_METHOD && type != AMQP_FRAME_HEADER && type != AMQP_FRAME_BODY
        && type != AMQP_FRAME_HEARTBEAT) {
        *code = AMQP_FRAME_ERROR;
        snprintf (why, size_why, "FRAME_ERROR - type %u is not a frame type", type);
        return ARB_AMQP_FRAME_ERROR;
    }
    if ((uint64_t) payload + ARB_AMQP_OVERHEAD > (uint64_t) frame_max + ARB_AMQP_FRAME_FUDGE) {
        *code = AMQP_FRAME_ERROR;
        snprintf (why, size_why, "FRAME_ERROR - frame of %u bytes is over frame_max %u",
                  payload + ARB_AMQP_OVERHEAD, frame_max);
        return ARB_AMQP_FRAME_ERROR;
    }
    //  a heartbeat has no payload; RabbitMQ takes one with bytes for no
    //  frame at all (told from the header: the bytes are not waited for)
    if (type == AMQP_FRAME_HEARTBEAT && payload != 0) {
        *code = AMQP_FRAME_ERROR;
        snprintf (why, size_why,
                  "FRAME_ERROR - heartbeat frame with a payload of %u bytes, which must be empty",
                  payload);
        return ARB_AMQP_FRAME_ERROR;
    }
    if (type == AMQP_FRAME_HEARTBEAT && channel != 0) {
        *code = AMQP_UNEXPECTED_FRAME;
        snprintf (why, size_why, "UNEXPECTED_FRAME - heartbeat on channel %u", channel);
        return ARB_AMQP_FRAME_ERROR;
    }
    if (size < (size_t) payload + ARB_AMQP_OVERHEAD)
        return ARB_AMQP_FRAME_MORE;
    if (data[7 + payload] != AMQP_FRAME_END) {
        *code = AMQP_FRAME_ERROR;
        snprintf (why, size_why, "FRAME_ERROR - bad frame end octet 0x%02x", data[7 + payload]);
        return ARB_AMQP_FRAME_ERROR;
    }
    frame->type = type;
    frame->channel = channel;
    frame->payload = data + 7;
    frame->size = payload;
    *used = (size_t) payload + ARB_AMQP_OVERHEAD;
    return ARB_AMQP_FRAME_OK;
}

arb_amqp_method_name_t
arb_amqp_frame_method_name (amqp_method_number_t id)
{
    arb_amqp_method_name_t name = {"an unknown method"};
    if (id == ARB_AMQP_UPDATE_SECRET_METHOD)
        snprintf (name.text, sizeof (name.text), "connection.update-secret");
    else if (id == ARB_AMQP_UPDATE_SECRET_OK_METHOD)
        snprintf (name.text, sizeof (name.text), "connection.update-secret-ok");
    else {
        //  AMQP_BASIC_CONSUME_OK_METHOD: the class up to the first '_'
        //  (no class name has one), then the method, '_' as '-'
        const char *c_name = amqp_method_name (id);
        const char *prefix = "AMQP_", *suffix = "_METHOD";
        size_t len = c_name ? strlen (c_name) : 0;
        if (len <= strlen (prefix) + strlen (suffix) || len >= sizeof (name.text)
            || strncmp (c_name, prefix, strlen (prefix)))
            return name;
        size_t out = 0;
        bool dot = false;
        for (size_t i = strlen (prefix); i < len - strlen (suffix); i++) {
            char c = (char) tolower ((unsigned char) c_name[i]);
            if (c == '_')
                c = dot ? '-' : '.';
            dot = dot || c == '.';
            name.text[out++] = c;
        }
        name.text[out] = '\0';
    }
    return name;
}

//  update-secret's arguments: a longstr and a shortstr, and nothing after
//  them. 0 or -1.
static int
s_decode_update_secret (amqp_bytes_t args, amqp_pool_t *pool, void **decoded)
{
    const uint8_t *p = (const uint8_t *) args.bytes;
    size_t size = args.len;
    //  the secret's length, the secret, then at least the reason's length
    if (size < 5)
        return -1;
    size_t secret = s_u32 (p);
    if (secret > size - 5)
        return -1;
    size_t reason = p[4 + secret];
    if (4 + secret + 1 + reason != size)
        return -1;
    arb_amqp_update_secret_t *m =
        (arb_amqp_update_secret_t *) amqp_pool_alloc (pool, sizeof (arb_amqp_update_secret_t));
    if (!m)
        return -1;
    m->new_secret = (amqp_bytes_t){secret, (void *) (p + 4)};
    m->reason = (amqp_bytes_t){reason, (void *) (p + 4 + secret + 1)};
    *decoded = m;
    return 0;
}

bool
arb_amqp_frame_has_nul (amqp_method_number_t id, const void *decoded, char *why, size_t size)
{
    struct {
        const char *what;
        amqp_bytes_t bytes;
    } names[3] = {{NULL, {0, NULL}}};
    const char *method_name;
#define S_NAMES(type, a, b, c)                       \
    do {                                             \
        const type *method = (const type *) decoded; \
        names[0].what = #a;                          \
        names[0].bytes = method->a;                  \
        names[1].what = #b;                          \
        names[1].bytes = method->b;                  \
        names[2].what = #c;                          \
        names[2].bytes = method->c;                  \
    } while (0)
    switch (id) {
        case AMQP_EXCHANGE_DECLARE_METHOD:
            method_name = "exchange.declare";
            S_NAMES (amqp_exchange_declare_t, exchange, exchange, exchange);
            break;
        case AMQP_EXCHANGE_DELETE_METHOD:
            method_name = "exchange.delete";
            S_NAMES (amqp_exchange_delete_t, exchange, exchange, exchange);
            break;
        case AMQP_EXCHANGE_BIND_METHOD:
            method_name = "exchange.bind";
            S_NAMES (amqp_exchange_bind_t, destination, source, routing_key);
            break;
        case AMQP_EXCHANGE_UNBIND_METHOD:
            method_name = "exchange.unbind";
            S_NAMES (amqp_exchange_unbind_t, destination, source, routing_key);
            break;
        case AMQP_QUEUE_DECLARE_METHOD:
            method_name = "queue.declare";
            S_NAMES (amqp_queue_declare_t, queue, queue, queue);
            break;
        case AMQP_QUEUE_BIND_METHOD:
            method_name = "queue.bind";
            S_NAMES (amqp_queue_bind_t, queue, exchange, routing_key);
            break;
        case AMQP_QUEUE_UNBIND_METHOD:
            method_name = "queue.unbind";
            S_NAMES (amqp_queue_unbind_t, queue, exchange, routing_key);
            break;
        case AMQP_QUEUE_PURGE_METHOD:
            method_name = "queue.purge";
            S_NAMES (amqp_queue_purge_t, queue, queue, queue);
            break;
        case AMQP_QUEUE_DELETE_METHOD:
            method_name = "queue.delete";
            S_NAMES (amqp_queue_delete_t, queue, queue, queue);
            break;
        case AMQP_BASIC_PUBLISH_METHOD:
            method_name = "basic.publish";
            S_NAMES (amqp_basic_publish_t, exchange, routing_key, routing_key);
            break;
        case AMQP_BASIC_CONSUME_METHOD:
            method_name = "basic.consume";
            S_NAMES (amqp_basic_consume_t, queue, consumer_tag, consumer_tag);
            break;
        case AMQP_BASIC_GET_METHOD:
            method_name = "basic.get";
            S_NAMES (amqp_basic_get_t, queue, queue, queue);
            break;
        case AMQP_BASIC_CANCEL_METHOD:
            method_name = "basic.cancel";
            S_NAMES (amqp_basic_cancel_t, consumer_tag, consumer_tag, consumer_tag);
            break;
        default:
            return false;
    }
#undef S_NAMES
    for (size_t i = 0; i < 3; i++)
        if (names[i].bytes.len && memchr (names[i].bytes.bytes, 0, names[i].bytes.len)) {
            snprintf (why, size, "PRECONDITION_FAILED - a NUL byte in %s's %s is not supported",
                      method_name, names[i].what);
            return true;
        }
    return false;
}

int
arb_amqp_frame_method (const arb_amqp_frame_t *frame,
                       amqp_pool_t *pool,
                       amqp_method_number_t *id,
                       void **decoded,
                       char *why,
                       size_t size_why)
{
    if (frame->size < 4) {
        snprintf (why, size_why, "FRAME_ERROR - method frame of %u bytes", frame->size);
        return AMQP_FRAME_ERROR;
    }
    *id = s_u32 (frame->payload);
    amqp_bytes_t args = {frame->size - 4, (void *) (frame->payload + 4)};
    if (*id == ARB_AMQP_UPDATE_SECRET_METHOD) {
        if (s_decode_update_secret (args, pool, decoded) == 0)
            return 0;
        snprintf (why, size_why,
                  "SYNTAX_ERROR - cannot decode the arguments of connection.update-secret");
        return AMQP_SYNTAX_ERROR;
    }
    int rc = amqp_decode_method (*id, pool, args, decoded);
    if (rc == AMQP_STATUS_UNKNOWN_METHOD || rc == AMQP_STATUS_UNKNOWN_CLASS) {
        snprintf (why, size_why, "NOT_IMPLEMENTED - unknown method %u.%u", *id >> 16, *id & 0xffff);
        return AMQP_NOT_IMPLEMENTED;
    }
    if (rc < 0) {
        snprintf (why, size_why, "SYNTAX_ERROR - cannot decode the arguments of %s",
                  arb_amqp_frame_method_name (*id).text);
        return AMQP_SYNTAX_ERROR;
    }
    return 0;
}

int
arb_amqp_frame_content (const arb_amqp_frame_t *frame,
                        amqp_pool_t *pool,
                        arb_amqp_content_t *content,
                        char *why,
                        size_t size_why)
{
    if (frame->size < 14) {
        snprintf (why, size_why, "FRAME_ERROR - content header of %u bytes", frame->size);
        return AMQP_FRAME_ERROR;
    }
    content->class_id = (uint16_t) (frame->payload[0] << 8 | frame->payload[1]);
    if (content->class_id != AMQP_BASIC_CLASS) {
        snprintf (why, size_why, "UNEXPECTED_FRAME - content header of class %u",
                  content->class_id);
        return AMQP_UNEXPECTED_FRAME;
    }
    content->body_size = (uint64_t) s_u32 (frame->payload + 4) << 32 | s_u32 (frame->payload + 8);
    content->raw = frame->payload + 12;
    content->raw_size = frame->size - 12;
    if (arb_amqp_frame_properties (content->raw, content->raw_size, pool, &content->props)) {
        snprintf (why, size_why, "SYNTAX_ERROR - cannot decode the content properties");
        return AMQP_SYNTAX_ERROR;
    }
    return 0;
}

int
arb_amqp_frame_properties (const uint8_t *raw,
                           size_t size,
                           amqp_pool_t *pool,
                           amqp_basic_properties_t **props)
{
    void *decoded = NULL;
    amqp_bytes_t bytes = {size, (void *) raw};
    if (amqp_decode_properties (AMQP_BASIC_CLASS, pool, bytes, &decoded) < 0 || !decoded)
        return -1;
    *props = (amqp_basic_properties_t *) decoded;
    return 0;
}

void
arb_amqp_frame_write_head (uint8_t *buf, uint8_t type, uint16_t channel, uint32_t size)
{
    buf[0] = type;
    buf[1] = (uint8_t) (channel >> 8);
    buf[2] = (uint8_t) channel;
    s_put_u32 (buf + 3, size);
}

int
arb_amqp_frame_write_method (
    uint8_t *buf, size_t cap, uint16_t channel, amqp_method_number_t id, void *method)
{
    if (cap < 12)
        return -1;
    amqp_bytes_t args = {cap - 12, buf + 11};
    int n = id == ARB_AMQP_UPDATE_SECRET_OK_METHOD ? 0 : amqp_encode_method (id, method, args);
    if (n < 0)
        return -1;
    arb_amqp_frame_write_head (buf, AMQP_FRAME_METHOD, channel, (uint32_t) n + 4);
    s_put_u32 (buf + 7, id);
    buf[11 + n] = AMQP_FRAME_END;
    return 12 + n;
}

size_t
arb_amqp_frame_write_content (
    uint8_t *buf, uint16_t channel, uint64_t body_size, const uint8_t *raw, size_t raw_size)
{
    arb_amqp_frame_write_head (buf, AMQP_FRAME_HEADER, channel, (uint32_t) (12 + raw_size));
    buf[7] = 0;
    buf[8] = AMQP_BASIC_CLASS;
    buf[9] = buf[10] = 0;  //  weight
    s_put_u32 (buf + 11, (uint32_t) (body_size >> 32));
    s_put_u32 (buf + 15, (uint32_t) body_size);
    if (raw_size)
        memcpy (buf + 19, raw, raw_size);
    buf[19 + raw_size] = AMQP_FRAME_END;
    return 20 + raw_size;
}

int
arb_amqp_frame_encode_properties (amqp_basic_properties_t *props, uint8_t *buf, size_t cap)
{
    amqp_bytes_t out = {cap, buf};
    int n = amqp_encode_properties (AMQP_BASIC_CLASS, props, out);
    return n < 0 ? -1 : n;
}

int
arb_amqp_frame_table (const uint8_t *data, size_t size, amqp_pool_t *pool, amqp_table_t *table)
{
    //  rabbitmq-c reads a table with its length prefix: give it one
    if (size > UINT32_MAX - 4)
        return -1;
    uint8_t *copy = (uint8_t *) amqp_pool_alloc (pool, size + 4);
    if (!copy)
        return -1;
    s_put_u32 (copy, (uint32_t) size);
    if (size)
        memcpy (copy + 4, data, size);
    amqp_bytes_t bytes = {size + 4, copy};
    size_t offset = 0;
    if (amqp_decode_table (bytes, pool, table, &offset) < 0 || offset != size + 4)
        return -1;
    return 0;
}

int
arb_amqp_frame_encode_table (amqp_table_t *table, uint8_t *buf, size_t cap)
{
    amqp_bytes_t out = {cap, buf};
    size_t offset = 0;
    if (amqp_encode_table (out, table, &offset) < 0)
        return -1;
    return (int) offset;
}

const amqp_field_value_t *
arb_amqp_table_get (const amqp_table_t *table, const char *key)
{
    size_t len = strlen (key);
    for (int i = 0; i < table->num_entries; i++) {
        const amqp_table_entry_t *entry = &table->entries[i];
        if (entry->key.len == len && memcmp (entry->key.bytes, key, len) == 0)
            return &entry->value;
    }
    return NULL;
}

int
arb_amqp_value_int (const amqp_field_value_t *value, int64_t *out)
{
    switch (value->kind) {
        case AMQP_FIELD_KIND_I8:
            *out = value->value.i8;
            return 0;
        case AMQP_FIELD_KIND_U8:
            *out = value->value.u8;
            return 0;
        case AMQP_FIELD_KIND_I16:
            *out = value->value.i16;
            return 0;
        case AMQP_FIELD_KIND_U16:
            *out = value->value.u16;
            return 0;
        case AMQP_FIELD_KIND_I32:
            *out = value->value.i32;
            return 0;
        case AMQP_FIELD_KIND_U32:
            *out = value->value.u32;
            return 0;
        case AMQP_FIELD_KIND_I64:
            *out = value->value.i64;
            return 0;
        case AMQP_FIELD_KIND_U64:
        case AMQP_FIELD_KIND_TIMESTAMP:
            if (value->value.u64 > INT64_MAX)
                return -1;
            *out = (int64_t) value->value.u64;
            return 0;
        default:
            return -1;
    }
}

const char *
arb_amqp_value_type_name (const amqp_field_value_t *value)
{
    switch (value->kind) {
        case AMQP_FIELD_KIND_BOOLEAN:
            return "bool";
        case AMQP_FIELD_KIND_I8:
            return "byte";
        case AMQP_FIELD_KIND_U8:
            return "unsignedbyte";
        case AMQP_FIELD_KIND_I16:
            return "short";
        case AMQP_FIELD_KIND_U16:
            return "unsignedshort";
        case AMQP_FIELD_KIND_I32:
            return "signedint";
        case AMQP_FIELD_KIND_U32:
            return "unsignedint";
        case AMQP_FIELD_KIND_I64:
        case AMQP_FIELD_KIND_U64:
            return "long";
        case AMQP_FIELD_KIND_F32:
            return "float";
        case AMQP_FIELD_KIND_F64:
            return "double";
        case AMQP_FIELD_KIND_DECIMAL:
            return "decimal";
        case AMQP_FIELD_KIND_UTF8:
            return "longstr";
        case AMQP_FIELD_KIND_ARRAY:
            return "array";
        case AMQP_FIELD_KIND_TIMESTAMP:
            return "timestamp";
        case AMQP_FIELD_KIND_TABLE:
            return "table";
        case AMQP_FIELD_KIND_VOID:
            return "void";
        case AMQP_FIELD_KIND_BYTES:
            return "binary";
        default:
            return "unknown";
    }
}

static bool s_value_equal (const amqp_field_value_t *a, const amqp_field_value_t *b);

static bool
s_bytes_equal (amqp_bytes_t a, amqp_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.bytes, b.bytes, a.len) == 0);
}

static bool
s_value_equal (const amqp_field_value_t *a, const amqp_field_value_t *b)
{
    int64_t x, y;
    //  integers compare by value whatever their width: clients differ in
    //  the width they send for the same argument
    if (arb_amqp_value_int (a, &x) == 0 && arb_amqp_value_int (b, &y) == 0)
        return x == y;
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
        case AMQP_FIELD_KIND_BOOLEAN:
            return !a->value.boolean == !b->value.boolean;
        case AMQP_FIELD_KIND_F32:
            return a->value.f32 == b->value.f32;
        case AMQP_FIELD_KIND_F64:
            return a->value.f64 == b->value.f64;
        case AMQP_FIELD_KIND_DECIMAL:
            return a->value.decimal.decimals == b->value.decimal.decimals
                   && a->value.decimal.value == b->value.decimal.value;
        case AMQP_FIELD_KIND_UTF8:
        case AMQP_FIELD_KIND_BYTES:
            return s_bytes_equal (a->value.bytes, b->value.bytes);
        case AMQP_FIELD_KIND_TABLE:
            return arb_amqp_table_equal (&a->value.table, &b->value.table);
        case AMQP_FIELD_KIND_ARRAY:
            if (a->value.array.num_entries != b->value.array.num_entries)
                return false;
            for (int i = 0; i < a->value.array.num_entries; i++)
                if (!s_value_equal (&a->value.array.entries[i], &b->value.array.entries[i]))
                    return false;
            return true;
        case AMQP_FIELD_KIND_VOID:
            return true;
        default:
            return false;
    }
}

bool
arb_amqp_table_equal (const amqp_table_t *a, const amqp_table_t *b)
{
    if (a->num_entries != b->num_entries)
        return false;
    for (int i = 0; i < a->num_entries; i++) {
        const amqp_table_entry_t *entry = &a->entries[i];
        bool found = false;
        for (int j = 0; j < b->num_entries && !found; j++)
            if (s_bytes_equal (entry->key, b->entries[j].key))
                found = s_value_equal (&entry->value, &b->entries[j].value);
        if (!found)
            return false;
    }
    return true;
}
