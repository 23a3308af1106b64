/*  arb_gather.h — one message's frames, gathered as a transport that
    frames ZMTP itself reads them, then decoded: the first two (header and
    body) copied into buffers kept from message to message, each payload
    into a frame of its own that the decoded message keeps.

    A plain struct, zeroed to start; owned by the connection that reads.
*/

#ifndef ARB_GATHER_H
#define ARB_GATHER_H

#include "arb_bytes.h"
#include "arb_proto.h"

//  Frames of one message at most: header, body and two per listed item.
#define ARB_GATHER_PARTS_MAX (2 + 2 * (size_t) ARB_LIST_MAX)

typedef struct {
    size_t parts;            //  frames gathered
    uint64_t bytes;          //  their bytes
    arb_bytes_t head, body;  //  the first two frames' bytes
    zframe_t **frames;       //  owned: the payload frames
    size_t n_frames;         //  frames held
    size_t cap_frames;       //  room in frames
} arb_gather_t;

//  A message must arrive whole within ARB_GATHER_MESSAGE_MS of its first
//  byte (the broker's --message-ms), a second more for each MiB of it in
//  so far: a peer stopped or trickling in the middle of one would hold
//  what it sent, and count as alive while its bytes come, for ever.
//  Whether a message first seen partly in at started_ms (monotonic; 0:
//  none), with bytes of it in so far, is overdue at now_ms.
#define ARB_GATHER_MESSAGE_MS 30000
static inline bool
arb_gather_overdue (uint64_t started_ms, uint64_t now_ms, uint64_t limit_ms, uint64_t bytes)
{
    return started_ms && now_ms - started_ms > limit_ms + bytes / (1u << 20) * 1000;
}

//  Adds the next frame: 0; -2 when the message would pass
//  ARB_GATHER_PARTS_MAX frames or max_bytes bytes (nothing added); -1 if
//  out of memory.
int arb_gather_part (arb_gather_t *self, const uint8_t *data, size_t size, uint64_t max_bytes);

//  Decodes what was gathered (its last frame is in) and empties it for the
//  next message. peer: the sender's routing id, peer_size bytes, copied
//  into the message (a ROUTER's side); NULL for a message from the broker
//  (a DEALER's side). Returns as arb_msg_decode_from.
int arb_gather_decode (arb_gather_t *self,
                       const uint8_t *peer,
                       size_t peer_size,
                       const arb_limits_t *limits,
                       arb_msg_t **msg_p);

//  Drops a message part way (its connection closed).
void arb_gather_reset (arb_gather_t *self);

//  Frees what it holds.
void arb_gather_free (arb_gather_t *self);

#endif
