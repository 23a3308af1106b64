/*  arb_proto_priv.h — what the codec's encoding and messages
    (arb_proto.c) share with its decoding (arb_proto_decode.c): a
    message's record and its arena. Not for anything outside proto/.
*/

#ifndef ARB_PROTO_PRIV_H
#define ARB_PROTO_PRIV_H

#include "arb_proto.h"

#define ARB_HEADER_SIZE 8
#define ARB_ARENA_FIRST 512  //  the message with it stays under glibc's tcache limit (1,032 bytes)
#define ARB_ARENA_CHUNK 960

//  A chunk of a message's arena past its first bytes.
typedef struct s_chunk_t {
    struct s_chunk_t *next;
    max_align_t data[];
} s_chunk_t;

struct _arb_msg_t {
    arb_msg_type_t type;   //  0 when the header could not be read
    uint32_t reqid;        //  request id; 0 for streamed messages
    const uint8_t *peer;   //  in the arena: the routing id (ROUTER side), or NULL
    size_t peer_size;      //  its bytes
    zframe_t *routing_id;  //  owned: peer as a frame, once arb_msg_routing_id asks
    void *body;            //  in the arena; NULL for an undecodable message
    const char *error;     //  in the arena: why decoding failed
    arb_err_t error_code;  //  what to answer with when error is set
    char *free_at;         //  the arena's free bytes: in first or the newest chunk
    size_t free_size;
    s_chunk_t *chunks;  //  owned, the newest first
    max_align_t first[ARB_ARENA_FIRST / sizeof (max_align_t)];
};

//  A message with an empty arena (its first bytes not cleared: each
//  allocation clears its own), no type and no body yet.
arb_msg_t *arb_msg_alloc_empty (void);

//  As arb_msg_decode_from, with the routing id's bytes borrowed (peer
//  NULL: none, as a DEALER receives a message).
int arb_msg_decode_gathered (const uint8_t *peer,
                             size_t peer_size,
                             const uint8_t *header,
                             size_t header_size,
                             const uint8_t *body,
                             size_t body_size,
                             zframe_t **frames,
                             size_t n,
                             const arb_limits_t *limits,
                             arb_msg_t **msg_p);

#endif
