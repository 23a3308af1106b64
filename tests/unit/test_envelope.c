/*  test_envelope.c — the mapping between an upstream RabbitMQ message and
    its task: client keys (message_id, its digest when it is no name, the
    content's digest without one), the headers record, the reply address
    and the reply's properties, each through rabbitmq-c's own codec.
*/

#include "arb_envelope.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <cmocka.h>

static amqp_bytes_t
s_bytes (const char *text)
{
    return amqp_cstring_bytes (text);
}

static void
test_key_names_the_message_id (void **state)
{
    (void) state;
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = s_bytes ("order-17");
    char key[ARB_NAME_MAX + 1];
    assert_false (arb_envelope_key ("jobs", &props, s_bytes ("body"), key));
    assert_string_equal (key, "bridge:jobs:id:order-17");
    //  the body does not matter: the message_id names the message
    assert_false (arb_envelope_key ("jobs", &props, s_bytes ("other"), key));
    assert_string_equal (key, "bridge:jobs:id:order-17");
}

static void
test_key_digests_a_message_id_that_is_no_name (void **state)
{
    (void) state;
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = (amqp_bytes_t){3, (void *) "a\nb"};
    char key[ARB_NAME_MAX + 1], again[ARB_NAME_MAX + 1];
    assert_false (arb_envelope_key ("jobs", &props, s_bytes (""), key));
    assert_int_equal (strncmp (key, "bridge:jobs:idsha1:", 19), 0);
    assert_int_equal (strlen (key), 19 + 40);
    char long_id[300];
    memset (long_id, 'x', sizeof (long_id) - 1);
    long_id[sizeof (long_id) - 1] = 0;
    props.message_id = s_bytes (long_id);
    assert_false (arb_envelope_key ("jobs", &props, s_bytes (""), again));
    assert_int_equal (strncmp (again, "bridge:jobs:idsha1:", 19), 0);
    assert_string_not_equal (key, again);
}

static void
test_key_digests_the_content_without_message_id (void **state)
{
    (void) state;
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    props.reply_to = s_bytes ("replies");
    props.correlation_id = s_bytes ("c1");
    char a[ARB_NAME_MAX + 1], b[ARB_NAME_MAX + 1];
    assert_true (arb_envelope_key ("jobs", &props, s_bytes ("body"), a));
    assert_int_equal (strncmp (a, "bridge:jobs:sha1:", 17), 0);
    //  the same content, the same key, headers or not (RabbitMQ may add
    //  x-delivery-count to a message it delivers again)
    amqp_table_entry_t entry = {s_bytes ("x-delivery-count"), {AMQP_FIELD_KIND_I64, {.i64 = 1}}};
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = (amqp_table_t){1, &entry};
    assert_true (arb_envelope_key ("jobs", &props, s_bytes ("body"), b));
    assert_string_equal (a, b);
    //  another correlation id, another body, another bridge: another key
    props.correlation_id = s_bytes ("c2");
    assert_true (arb_envelope_key ("jobs", &props, s_bytes ("body"), b));
    assert_string_not_equal (a, b);
    props.correlation_id = s_bytes ("c1");
    assert_true (arb_envelope_key ("jobs", &props, s_bytes ("bodY"), b));
    assert_string_not_equal (a, b);
    assert_true (arb_envelope_key ("other", &props, s_bytes ("body"), b));
    assert_string_not_equal (a, b);
    //  a field moved from one property to another is another content
    amqp_basic_properties_t moved = {0};
    moved._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_TYPE_FLAG;
    moved.reply_to = s_bytes ("replies");
    moved.type = s_bytes ("c1");
    assert_true (arb_envelope_key ("jobs", &moved, s_bytes ("body"), b));
    assert_string_not_equal (a, b);
}

static void
test_headers_record (void **state)
{
    (void) state;
    const char raw[] = "\x10\x00\x02\x00";  //  flags and values as sent
    zframe_t *frame = arb_envelope_headers (s_bytes ("amq.direct"), s_bytes ("jobs"),
                                            (amqp_bytes_t){4, (void *) raw});
    assert_non_null (frame);
    const uint8_t *p = zframe_data (frame);
    assert_int_equal (zframe_size (frame), 3 + 1 + 10 + 1 + 4 + 4);
    assert_memory_equal (p,
                         "AQ\x01\x0a"
                         "amq.direct\x04jobs",
                         3 + 1 + 10 + 1 + 4);
    assert_memory_equal (p + 19, raw, 4);
    zframe_destroy (&frame);
    //  over ARB_HEADERS_MAX: no record
    uint8_t *big = (uint8_t *) calloc (1, ARB_HEADERS_MAX);
    assert_null (
        arb_envelope_headers (s_bytes (""), s_bytes ("q"), (amqp_bytes_t){ARB_HEADERS_MAX, big}));
    free (big);
}

static void
test_address_round_trip (void **state)
{
    (void) state;
    amqp_basic_properties_t props = {0};
    assert_null (arb_envelope_address (&props));
    props._flags =
        AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.reply_to = s_bytes ("amq.rabbitmq.reply-to.g1h2");
    props.correlation_id = s_bytes ("c-9");
    props.content_type = s_bytes ("text/plain");
    zframe_t *address = arb_envelope_address (&props);
    assert_non_null (address);
    amqp_pool_t pool;
    init_amqp_pool (&pool, 512);
    amqp_bytes_t reply_to, correlation_id;
    assert_int_equal (arb_envelope_read_address (zframe_data (address), zframe_size (address),
                                                 &pool, &reply_to, &correlation_id),
                      0);
    assert_int_equal (reply_to.len, strlen ("amq.rabbitmq.reply-to.g1h2"));
    assert_memory_equal (reply_to.bytes, "amq.rabbitmq.reply-to.g1h2", reply_to.len);
    assert_int_equal (correlation_id.len, 3);
    assert_memory_equal (correlation_id.bytes, "c-9", 3);
    zframe_destroy (&address);
    //  without correlation_id: an empty one
    props._flags = AMQP_BASIC_REPLY_TO_FLAG;
    address = arb_envelope_address (&props);
    assert_int_equal (arb_envelope_read_address (zframe_data (address), zframe_size (address),
                                                 &pool, &reply_to, &correlation_id),
                      0);
    assert_int_equal (correlation_id.len, 0);
    zframe_destroy (&address);
    //  bytes that are no address
    assert_int_equal (arb_envelope_read_address ("\xff", 1, &pool, &reply_to, &correlation_id), -1);
    assert_int_equal (arb_envelope_read_address ("", 0, &pool, &reply_to, &correlation_id), -1);
    empty_amqp_pool (&pool);
}

//  Encodes and decodes the properties, as RabbitMQ would see them.
static amqp_basic_properties_t *
s_wire (amqp_basic_properties_t *props, amqp_pool_t *pool, uint8_t *buffer, size_t size)
{
    int len = amqp_encode_properties (AMQP_BASIC_CLASS, props, (amqp_bytes_t){size, buffer});
    assert_true (len > 0);
    void *decoded = NULL;
    assert_int_equal (amqp_decode_properties (AMQP_BASIC_CLASS, pool,
                                              (amqp_bytes_t){(size_t) len, buffer}, &decoded),
                      0);
    return (amqp_basic_properties_t *) decoded;
}

static const amqp_field_value_t *
s_header (const amqp_basic_properties_t *props, const char *key)
{
    for (int i = 0; i < props->headers.num_entries; i++) {
        amqp_bytes_t k = props->headers.entries[i].key;
        if (k.len == strlen (key) && memcmp (k.bytes, key, k.len) == 0)
            return &props->headers.entries[i].value;
    }
    return NULL;
}

static void
test_reply_properties (void **state)
{
    (void) state;
    amqp_pool_t pool;
    init_amqp_pool (&pool, 1024);
    uint8_t buffer[1024];
    amqp_table_entry_t entries[3];
    amqp_basic_properties_t props;
    arb_envelope_reply (s_bytes ("c-1"), 42, "succeeded", NULL, entries, &props);
    amqp_basic_properties_t *wire = s_wire (&props, &pool, buffer, sizeof (buffer));
    assert_true (wire->_flags & AMQP_BASIC_CORRELATION_ID_FLAG);
    assert_memory_equal (wire->correlation_id.bytes, "c-1", 3);
    assert_int_equal (wire->delivery_mode, 2);
    const amqp_field_value_t *id = s_header (wire, "x-arbiter-task-id");
    assert_non_null (id);
    assert_int_equal (id->kind, AMQP_FIELD_KIND_I64);
    assert_int_equal (id->value.i64, 42);
    const amqp_field_value_t *done = s_header (wire, "x-arbiter-state");
    assert_int_equal (done->value.bytes.len, strlen ("succeeded"));
    assert_null (s_header (wire, "x-arbiter-error"));
    //  a task that died: its error; no correlation id: none sent
    arb_envelope_reply (amqp_empty_bytes, 7, "dead", "exit status 3", entries, &props);
    wire = s_wire (&props, &pool, buffer, sizeof (buffer));
    assert_false (wire->_flags & AMQP_BASIC_CORRELATION_ID_FLAG);
    const amqp_field_value_t *error = s_header (wire, "x-arbiter-error");
    assert_non_null (error);
    assert_memory_equal (error->value.bytes.bytes, "exit status 3", 13);
    empty_amqp_pool (&pool);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_key_names_the_message_id),
        cmocka_unit_test (test_key_digests_a_message_id_that_is_no_name),
        cmocka_unit_test (test_key_digests_the_content_without_message_id),
        cmocka_unit_test (test_headers_record),
        cmocka_unit_test (test_address_round_trip),
        cmocka_unit_test (test_reply_properties),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
