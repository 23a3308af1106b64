/*  arb_amqp_frame.h — AMQP 0-9-1 frames over a byte stream, read and
    written with rabbitmq-c's own codec (amqp_decode_method,
    amqp_decode_properties, amqp_encode_method and the table codec); only
    the 7-byte frame header and the end octet are read here.

    Reading is pure: arb_amqp_frame_read looks at bytes and says whether a
    whole frame is there, what it is, or which connection error it is (a
    bad end octet, a frame over frame max, an unknown type). Decoded
    methods and properties point into the input bytes and the caller's
    pool: copy what must outlive the frame. Nothing here asserts on peer
    bytes (tests/fuzz/fuzz_amqp_frame.c).

    Writing builds frames into a caller's buffer.
*/

#ifndef ARB_AMQP_FRAME_H
#define ARB_AMQP_FRAME_H

#include <amqp.h>
#include <amqp_framing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_AMQP_HEADER_SIZE 8     //  "AMQP" 0 0 9 1
#define ARB_AMQP_FRAME_MIN   4096  //  frame-min-size: what both accept before tune
#define ARB_AMQP_FRAME_FUDGE 8     //  inbound slack over frame max (as RabbitMQ)
#define ARB_AMQP_OVERHEAD    8     //  frame header + end octet
#define ARB_AMQP_METHOD_MAX  4096  //  largest method frame the gateway writes

//  The protocol header the gateway speaks.
extern const uint8_t arb_amqp_protocol_header[ARB_AMQP_HEADER_SIZE];

//  One frame as read: its payload points into the input.
typedef struct {
    uint8_t type;  //  AMQP_FRAME_METHOD, _HEADER, _BODY, _HEARTBEAT
    uint16_t channel;
    const uint8_t *payload;
    uint32_t size;  //  payload bytes
} arb_amqp_frame_t;

//  What arb_amqp_frame_read found.
typedef enum {
    ARB_AMQP_FRAME_MORE = 0,    //  not a whole frame yet
    ARB_AMQP_FRAME_OK = 1,      //  a frame (frame, *used: its bytes)
    ARB_AMQP_FRAME_ERROR = -1,  //  a connection error (code 501 or 505, text)
} arb_amqp_frame_rc_t;

//  The headers record of a message: what a task made of an AMQP message
//  keeps in its headers (the AMQP server's publishes, the bridge's
//  upstream messages), so that an AMQP consumer gets the delivery's
//  exchange and routing key and every property as published:
//
//      "AQ" 0x01, exchange (shortstr), routing key (shortstr), then the
//      content header's property flags and values as the publisher sent them
#define ARB_AMQP_RECORD_OVERHEAD 5

//  Writes a record into buf (size bytes). Returns its length, or 0 if it
//  does not fit or a name is over 255 bytes.
size_t arb_amqp_frame_record (
    uint8_t *buf, size_t size, amqp_bytes_t exchange, amqp_bytes_t routing_key, amqp_bytes_t raw);

//  Reads a record: exchange, routing_key and raw point into data. 0, or -1
//  if the bytes are not one.
int arb_amqp_frame_read_record (const uint8_t *data,
                                size_t size,
                                amqp_bytes_t *exchange,
                                amqp_bytes_t *routing_key,
                                amqp_bytes_t *raw);

//  A short string's bytes as a C string (owned by the caller; a NUL in
//  them ends it early).
char *arb_amqp_frame_str (amqp_bytes_t bytes);

//  text as a short string (a reply text), into dest (which it returns):
//  one over 255 bytes is cut to its first 252 and "...", as RabbitMQ cuts
//  its texts, but never inside a UTF-8 character.
const char *arb_amqp_frame_short (char dest[256], const char *text);

//  A peer's bytes as a C string to quote in a log line or a reply: the
//  first ARB_AMQP_QUOTE_MAX of them, each byte not printable ASCII as '.'.
#define ARB_AMQP_QUOTE_MAX 64
void arb_amqp_frame_quote (char dest[ARB_AMQP_QUOTE_MAX + 1], amqp_bytes_t bytes);

//  A peer's bytes as Erlang's ~p prints them, for RabbitMQ's texts that
//  quote a term: a string ("a\"b", or <<"a\"b">> as a binary) when every
//  byte is printable latin-1 or a control character Erlang escapes (\n),
//  the bytes passed as they are; else their values ([97,1] or <<97,1>>).
//  Written into dest (which it returns), cut to fit size.
const char *arb_amqp_frame_erlang (char *dest, size_t size, amqp_bytes_t bytes, bool binary);

//  Reads the frame at the start of data (size bytes). A frame longer than
//  frame_max + ARB_AMQP_FRAME_FUDGE, a bad end octet, an unknown type, a
//  heartbeat with a payload, or a heartbeat on a channel other than 0 is
//  an error: *code and why (at most size_why bytes) say which. Pure.
arb_amqp_frame_rc_t arb_amqp_frame_read (const uint8_t *data,
                                         size_t size,
                                         uint32_t frame_max,
                                         arb_amqp_frame_t *frame,
                                         size_t *used,
                                         int *code,
                                         char *why,
                                         size_t size_why);

//  Whether the 8 bytes at data are the 0-9-1 protocol header (RabbitMQ's
//  "AMQP" 1 1 0 9 for 0-9 too).
bool arb_amqp_frame_is_protocol_header (const uint8_t *data);

//  connection.update-secret (10.70) and its Update-Secret-Ok (10.71):
//  RabbitMQ's extension, which amqplib and the Java and .NET clients send
//  to renew a login's secret (an OAuth token) and which rabbitmq-c before
//  0.12 cannot decode or encode; arb_amqp_frame_method and
//  arb_amqp_frame_write_method do it for them here. Update-Secret-Ok has
//  no arguments.
#define ARB_AMQP_UPDATE_SECRET_METHOD    ((amqp_method_number_t) 0x000A0046)
#define ARB_AMQP_UPDATE_SECRET_OK_METHOD ((amqp_method_number_t) 0x000A0047)

typedef struct {
    amqp_bytes_t new_secret;  //  longstr, into the input
    amqp_bytes_t reason;      //  shortstr, into the input
} arb_amqp_update_secret_t;

//  A method's name as the protocol's specification and RabbitMQ's error
//  texts write it ("queue.declare", "basic.consume-ok",
//  "connection.update-secret" too; rabbitmq-c's is AMQP_QUEUE_DECLARE_METHOD):
//  "an unknown method" for one neither rabbitmq-c nor this module knows.
//  By value, so that a format may take two: arb_amqp_frame_method_name (id).text
typedef struct {
    char text[48];
} arb_amqp_method_name_t;

arb_amqp_method_name_t arb_amqp_frame_method_name (amqp_method_number_t id);

//  Whether a name the method carries (an exchange, queue, routing key or
//  consumer tag) has a NUL byte, which a shortstr may hold: the gateway
//  keeps names as C strings, which would cut them there (a queue.declare
//  answered with another name, a key routed as another), so it refuses
//  them; why then says which.
bool arb_amqp_frame_has_nul (amqp_method_number_t id, const void *decoded, char *why, size_t size);

//  Decodes a method frame's payload: *id its number, *decoded its struct
//  (in pool; an arb_amqp_update_secret_t for update-secret). Returns 0, or
//  a reply code: 540 NOT_IMPLEMENTED for an unknown method, 502
//  SYNTAX_ERROR for arguments that do not decode, 501 for a payload
//  shorter than the ids; why says which.
int arb_amqp_frame_method (const arb_amqp_frame_t *frame,
                           amqp_pool_t *pool,
                           amqp_method_number_t *id,
                           void **decoded,
                           char *why,
                           size_t size_why);

//  A content header as read.
typedef struct {
    uint16_t class_id;
    uint64_t body_size;
    const uint8_t *raw;  //  the property flags and values, as sent (into the input)
    size_t raw_size;
    amqp_basic_properties_t *props;  //  decoded, in the pool
} arb_amqp_content_t;

//  Decodes a content header frame's payload. Returns 0, or a reply code
//  (505 for a class other than basic, 502 for properties that do not
//  decode).
int arb_amqp_frame_content (const arb_amqp_frame_t *frame,
                            amqp_pool_t *pool,
                            arb_amqp_content_t *content,
                            char *why,
                            size_t size_why);

//  Decodes properties stored as raw bytes (from a content header). 0 or -1.
int arb_amqp_frame_properties (const uint8_t *raw,
                               size_t size,
                               amqp_pool_t *pool,
                               amqp_basic_properties_t **props);

//  Writes a method frame for channel into buf (cap bytes). Returns its
//  length, or -1 if it does not fit or does not encode.
int arb_amqp_frame_write_method (
    uint8_t *buf, size_t cap, uint16_t channel, amqp_method_number_t id, void *method);

//  Writes a content header frame (class basic) with raw property bytes
//  into buf (at least ARB_AMQP_OVERHEAD + 12 + raw_size bytes). Returns its
//  length.
size_t arb_amqp_frame_write_content (
    uint8_t *buf, uint16_t channel, uint64_t body_size, const uint8_t *raw, size_t raw_size);

//  Writes the 7-byte header of a frame of type and size into buf.
void arb_amqp_frame_write_head (uint8_t *buf, uint8_t type, uint16_t channel, uint32_t size);

//  Encodes properties into buf (cap bytes). Returns the length, or -1.
int arb_amqp_frame_encode_properties (amqp_basic_properties_t *props, uint8_t *buf, size_t cap);

//  Decodes an AMQP field table of size bytes (without its length prefix,
//  as AMQPLAIN's response is) into pool. 0 or -1.
int arb_amqp_frame_table (const uint8_t *data, size_t size, amqp_pool_t *pool, amqp_table_t *table);

//  Encodes a field table with its 4-byte length prefix into buf (cap
//  bytes). Returns the length, or -1.
int arb_amqp_frame_encode_table (amqp_table_t *table, uint8_t *buf, size_t cap);

//  Looks up key in table: the entry's value, or NULL.
const amqp_field_value_t *arb_amqp_table_get (const amqp_table_t *table, const char *key);

//  An integer value of any integer kind: 0, or -1 if value is not one.
int arb_amqp_value_int (const amqp_field_value_t *value, int64_t *out);

//  RabbitMQ's name of a value's type ("longstr", "signedint", "table",
//  ...), as its error texts say them. A static string.
const char *arb_amqp_value_type_name (const amqp_field_value_t *value);

//  Whether two tables hold the same entries (same keys, kinds and values,
//  in any order).
bool arb_amqp_table_equal (const amqp_table_t *a, const amqp_table_t *b);

#endif
