/*  arb_zmtp.h — the pieces of ZMTP 3 (rfc.zeromq.org 23 and 37) a server
    speaks to ZeroMQ peers from its own loop: the greeting, the NULL
    mechanism's READY, frame headers, and the PING/PONG commands.

    The broker answers its tcp:// endpoint itself with these (arb_wire.h),
    so that a request and its reply pass through no ZeroMQ I/O thread on
    its side; the peers stay ordinary DEALER sockets. Only the NULL
    mechanism: with CURVE the broker keeps its ROUTER socket.

    Pure functions over byte buffers, no I/O: the wire module reads and
    writes, and the fuzz target feeds these whatever it likes.
*/

#ifndef ARB_ZMTP_H
#define ARB_ZMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_ZMTP_GREETING  64   //  bytes of a greeting, each way
#define ARB_ZMTP_SIGNATURE 10   //  its first bytes, enough to tell ZMTP 3 from older
#define ARB_ZMTP_ID_MAX    255  //  a routing id's bytes

//  Frame flags.
#define ARB_ZMTP_MORE    0x01
#define ARB_ZMTP_LONG    0x02
#define ARB_ZMTP_COMMAND 0x04

#define ARB_ZMTP_FRAME_HEADER_MAX 9  //  a flags byte and an 8-byte size

//  Writes our greeting (version 3.1, mechanism NULL, not as-server).
void arb_zmtp_greeting (uint8_t out[ARB_ZMTP_GREETING]);

//  Checks what a peer's greeting holds so far (size bytes, up to
//  ARB_ZMTP_GREETING): 1 when it is whole and acceptable, 0 when nothing
//  is wrong yet but more is needed, -1 when it is not ZMTP 3 with the NULL
//  mechanism (*reason says what).
int arb_zmtp_check_greeting (const uint8_t *in, size_t size, const char **reason);

typedef struct {
    uint8_t flags;  //  ARB_ZMTP_MORE, ARB_ZMTP_COMMAND
    uint64_t size;  //  bytes of the frame's body
    size_t head;    //  bytes of the frame's header (2 or 9)
} arb_zmtp_frame_t;

//  Reads a frame header from the avail bytes at p: 1 (frame filled), 0 (a
//  header needs more bytes), -1 (reserved flag bits set, or a command that
//  says it has more frames).
int arb_zmtp_frame_parse (const uint8_t *p, size_t avail, arb_zmtp_frame_t *frame);

//  Writes a frame header (short when size < 256); returns its length.
size_t arb_zmtp_frame_head (uint8_t out[ARB_ZMTP_FRAME_HEADER_MAX], uint8_t flags, uint64_t size);

//  Splits a command frame's body into its name and data: 0, or -1 if the
//  name's length runs past the body.
int arb_zmtp_command (const uint8_t *body,
                      size_t size,
                      const uint8_t **name,
                      size_t *name_size,
                      const uint8_t **data,
                      size_t *data_size);

//  True when a command's name is the one given.
bool arb_zmtp_is (const uint8_t *name, size_t name_size, const char *expected);

//  Finds a property in READY's data: 1 (found: *value, *value_size), 0
//  (absent), -1 (the properties are malformed).
int arb_zmtp_property (
    const uint8_t *data, size_t size, const char *key, const uint8_t **value, size_t *value_size);

//  Writes a whole command frame (header and body): its name, then data.
//  Returns its length, or 0 if it does not fit in cap bytes.
size_t arb_zmtp_command_frame (
    uint8_t *out, size_t cap, const char *name, const uint8_t *data, size_t data_size);

//  Writes READY with one property, Socket-Type. Returns its length, or 0
//  if it does not fit.
size_t arb_zmtp_ready (uint8_t *out, size_t cap, const char *socket_type);

//  The same with a second property, Identity (the routing id a ROUTER
//  peer is to know us by), when id_size is not 0.
size_t arb_zmtp_ready_id (
    uint8_t *out, size_t cap, const char *socket_type, const uint8_t *id, size_t id_size);

//  Whether a peer of that socket type may talk to a ROUTER.
bool arb_zmtp_router_peer (const uint8_t *type, size_t size);

#endif
