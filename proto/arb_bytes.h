/*  arb_bytes.h — a byte buffer for the transports that frame ZMTP
    themselves (the broker's own connections, the client's own
    connection): bytes taken from the front, appended at the back, room
    made by moving what is left to the start before growing.

    A plain struct, zeroed to start; owned by whoever holds it.
*/

#ifndef ARB_BYTES_H
#define ARB_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;  //  owned
    size_t start;   //  first byte not taken yet
    size_t end;     //  one past the last byte
    size_t cap;     //  bytes allocated
} arb_bytes_t;

//  Makes room for more bytes after end: 0, or -1 if out of memory.
int arb_bytes_reserve (arb_bytes_t *self, size_t more);

//  Appends size bytes: 0, or -1 if out of memory (nothing appended).
int arb_bytes_append (arb_bytes_t *self, const void *data, size_t size);

//  Empties the buffer; one that grew over keep_max bytes is freed, so
//  that one big message does not hold its room for ever.
void arb_bytes_reset (arb_bytes_t *self, size_t keep_max);

//  Frees the buffer's memory; it is empty and zeroed after.
void arb_bytes_free (arb_bytes_t *self);

//  Bytes held, not taken yet.
static inline size_t
arb_bytes_size (const arb_bytes_t *self)
{
    return self->end - self->start;
}

//  FNV-1a of size bytes, on from hash (ARB_FNV_BASIS to start): the hash
//  of the broker's tables keyed by bytes (connections, peers, sessions).
#define ARB_FNV_BASIS 14695981039346656037ull

static inline uint64_t
arb_bytes_fnv (uint64_t hash, const void *data, size_t size)
{
    const uint8_t *p = (const uint8_t *) data;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ p[i]) * 1099511628211ull;
    return hash;
}

//  A routing id (255 bytes at most) as the key of the broker's tables of
//  peers: upper-case hex, as zframe_strhex writes it, into buf, which
//  holds ARB_HEX_ID_SIZE bytes. Returns buf.
#define ARB_HEX_ID_SIZE (2 * 255 + 1)
char *arb_bytes_hex_id (const uint8_t *data, size_t size, char buf[ARB_HEX_ID_SIZE]);

//  Reads what the kernel holds for the socket fd into the buffer, with
//  at least chunk bytes of room made first: 2 (read some, less than the
//  room: the kernel held no more, so a caller with a level-triggered poll
//  need not ask again until it says so), 1 (read some, the room filled:
//  more may wait), 0 (nothing now), -1 (errno: 0 when the peer closed its
//  side, ENOMEM, or the socket's error).
int arb_bytes_recv (arb_bytes_t *self, int fd, size_t chunk);

//  Writes what the buffer holds to the socket fd, as far as it takes it
//  (never SIGPIPE); *written counts the bytes that went (may be NULL): 1
//  (all of it), 0 (the socket took no more now), -1 (errno says why; what
//  was not written stays).
int arb_bytes_send (arb_bytes_t *self, int fd, uint64_t *written);

//  An arb_part_fn (arb_proto.h) whose arg is an arb_bytes_t: appends the
//  part as one ZMTP message frame (MORE set when more follows). 0, or -1
//  if out of memory (nothing appended).
int arb_bytes_put_frame (void *arg, const void *data, size_t size, bool more);

#endif
