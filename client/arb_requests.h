/*  arb_requests.h — the requests a link's caller sent and awaits replies
    to: by request id, and in the order they were sent.

    Every request has the same timeout, so the oldest is always the first
    due: the link finds a turn's timeouts at the head (oldest) and never
    walks the table. A TAKE reserves the tasks it may bring (its max)
    until it is answered, so that the link can keep its promise about how
    many tasks it holds at most.

    Bounds: at most ARB_LINK_PENDING_MAX requests (the link refuses more).
    Not thread-safe: one owner (arb_link), on its thread.
*/

#ifndef ARB_REQUESTS_H
#define ARB_REQUESTS_H

#include "arb_proto.h"

typedef struct _arb_requests_t arb_requests_t;

//  Creates an empty table.
arb_requests_t *arb_requests_new (void);

//  Destroys the table. Accepts NULL; nulls the caller's pointer.
void arb_requests_destroy (arb_requests_t **self_p);

//  Notes request reqid of the given type, sent at sent_at (ms,
//  zclock_mono), reserving reserved tasks. Returns 0, or -1 if reqid is
//  pending already.
int arb_requests_add (
    arb_requests_t *self, uint32_t reqid, arb_msg_type_t type, uint32_t reserved, int64_t sent_at);

//  Whether request reqid awaits its reply.
bool arb_requests_contains (arb_requests_t *self, uint32_t reqid);

//  Number of requests awaiting replies.
size_t arb_requests_size (arb_requests_t *self);

//  Tasks the pending TAKEs may bring.
int64_t arb_requests_reserved (arb_requests_t *self);

//  Ends request reqid (answered, or given up): returns its type, or 0 if
//  it was not pending.
arb_msg_type_t arb_requests_end (arb_requests_t *self, uint32_t reqid);

//  The oldest pending request's id, and when it was sent in *sent_at;
//  0 if none is pending.
uint32_t arb_requests_oldest (arb_requests_t *self, int64_t *sent_at);

//  The ids of every pending request, oldest first, in a new array the
//  caller frees; their number in *count.
uint32_t *arb_requests_ids (arb_requests_t *self, size_t *count);

#endif
