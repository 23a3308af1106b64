/*  fuzz_amqp_frame.c — libFuzzer target for the gateway's AMQP frame
    reader: arbitrary bytes cut into frames, each method, content header
    and table decoded with rabbitmq-c's codec as the connection does; and
    the same bytes read as a task's headers record, whose property bytes
    are decoded as a publish's are (a task's headers may come from any
    client of the broker). Must never crash, leak or read out of bounds.
*/

#include "arb_amqp_frame.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    amqp_pool_t pool;
    init_amqp_pool (&pool, 4096);
    if (size >= ARB_AMQP_HEADER_SIZE)
        (void) arb_amqp_frame_is_protocol_header (data);
    amqp_table_t table;
    (void) arb_amqp_frame_table (data, size, &pool, &table);
    recycle_amqp_pool (&pool);
    amqp_bytes_t exchange, key, raw;
    if (arb_amqp_frame_read_record (data, size, &exchange, &key, &raw) == 0) {
        amqp_basic_properties_t *props = NULL;
        (void) arb_amqp_frame_properties ((const uint8_t *) raw.bytes, raw.len, &pool, &props);
        recycle_amqp_pool (&pool);
    }
    size_t off = 0;
    for (int n = 0; n < 1000 && off < size; n++) {
        arb_amqp_frame_t frame;
        size_t used = 0;
        int code = 0;
        char why[256];
        arb_amqp_frame_rc_t rc = arb_amqp_frame_read (data + off, size - off, 131072, &frame, &used,
                                                      &code, why, sizeof (why));
        if (rc != ARB_AMQP_FRAME_OK)
            break;
        if (frame.type == AMQP_FRAME_METHOD) {
            amqp_method_number_t id;
            void *method = NULL;
            (void) arb_amqp_frame_method (&frame, &pool, &id, &method, why, sizeof (why));
        }
        else if (frame.type == AMQP_FRAME_HEADER) {
            arb_amqp_content_t content;
            (void) arb_amqp_frame_content (&frame, &pool, &content, why, sizeof (why));
        }
        recycle_amqp_pool (&pool);
        off += used;
    }
    empty_amqp_pool (&pool);
    return 0;
}
