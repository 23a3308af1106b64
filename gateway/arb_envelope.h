/*  arb_envelope.h — what the bridge keeps of an upstream RabbitMQ
    message, and the properties of the reply it publishes back.

    A message consumed upstream becomes one task. Its body is the payload;
    its delivery and properties become the task's headers, as a record:

        "AQ" 0x01, exchange (shortstr), routing key (shortstr), then the
        content header's property flags and values as RabbitMQ sent them

    (the record the gateway's AMQP server keeps for a published message,
    written and read by arb_amqp_frame.h, so that an AMQP consumer of the
    arbiter queue gets the properties as they were published).

    The task's client key names the message, so that a message RabbitMQ
    delivers again (it gives back what was not acked when a connection
    ends) submits to the task it made the first time:

        bridge:NAME:id:MESSAGE_ID   the message has a message_id that is a
                                    printable name and fits
        bridge:NAME:idsha1:HEX      its message_id does not: a SHA-1 of it
        bridge:NAME:sha1:HEX        no message_id: a SHA-1 of the body and
                                    of reply_to, correlation_id, timestamp,
                                    type, app_id and user_id (not of the
                                    headers, which RabbitMQ may change on
                                    redelivery: x-delivery-count)

    A content key is a digest: two messages that are the same in all of
    these are one key (the caller decides what that means; see
    arb_bridge.h).

    The reply address is reply_to and correlation_id, encoded as AMQP
    basic properties that hold only those two: small, opaque to the loop,
    and kept in the broker's metadata so that a restarted gateway still
    knows where a result goes.

    Pure functions, no I/O; any thread.
*/

#ifndef ARB_ENVELOPE_H
#define ARB_ENVELOPE_H

#include "arb_proto.h"

#include <amqp.h>
#include <amqp_framing.h>

#define ARB_ENVELOPE_NAME_MAX 64  //  bytes of a bridge's name (keys must fit ARB_NAME_MAX)

//  Writes the client key of a message of bridge `bridge` (at most
//  ARB_ENVELOPE_NAME_MAX bytes) into key (ARB_NAME_MAX + 1 bytes). Returns
//  true if the key is a digest of the content (the message has no
//  message_id), false if it names the message.
bool arb_envelope_key (const char *bridge,
                       const amqp_basic_properties_t *props,
                       amqp_bytes_t body,
                       char *key);

//  The task headers of a message delivered from exchange with
//  routing_key, whose content header carried raw property bytes. Returns a
//  new frame, or NULL if the record would be over ARB_HEADERS_MAX.
zframe_t *arb_envelope_headers (amqp_bytes_t exchange, amqp_bytes_t routing_key, amqp_bytes_t raw);

//  The reply address of a message: a new frame, or NULL if the message has
//  no reply_to (nobody waits for its result).
zframe_t *arb_envelope_address (const amqp_basic_properties_t *props);

//  Reads an address made by arb_envelope_address: reply_to (never empty)
//  and correlation_id (empty if the message had none) point into pool or
//  data. Returns 0, or -1 if the bytes are not an address.
int arb_envelope_read_address (const void *data,
                               size_t size,
                               amqp_pool_t *pool,
                               amqp_bytes_t *reply_to,
                               amqp_bytes_t *correlation_id);

//  The reply to the task `id` that ended in state (a state name:
//  "succeeded", "dead", "cancelled", "unknown"), with error (NULL or empty:
//  none): properties with correlation_id (if not empty), delivery_mode 2
//  (persistent) and headers x-arbiter-task-id (long), x-arbiter-state and,
//  with an error, x-arbiter-error (strings). The headers table uses
//  entries (room for 3); every pointer stays the caller's.
void arb_envelope_reply (amqp_bytes_t correlation_id,
                         uint64_t id,
                         const char *state,
                         const char *error,
                         amqp_table_entry_t *entries,
                         amqp_basic_properties_t *props);

#endif
