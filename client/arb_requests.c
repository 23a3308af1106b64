/*  arb_requests.c — a link's pending requests (see arb_requests.h).

    Each request is one record in `table` (by id) and in `order` (oldest
    first, linked through the record itself), so that adding and ending a
    request allocate nothing but the record, and ending any request is
    O(1). Ended records wait in `spare` for the next requests
    (arb_spare.h): a producer makes one a task.
*/

#include "arb_requests.h"
#include "arb_chain.h"
#include "arb_idmap.h"
#include "arb_spare.h"

#define ARB_REQUESTS_TAG  0x0c1e0006u  //  a live arb_requests_t
#define ARB_REQUESTS_DEAD 0xdeadc1e6u  //  written on destroy, to catch use after it

//  Ended records kept, at most: a window's worth and more.
#define S_SPARE_REQUESTS ARB_SPARES (1024)

typedef struct {
    uint32_t reqid;
    arb_msg_type_t type;
    int64_t sent_at;        //  ms, zclock_mono
    uint32_t reserved;      //  TAKE: the tasks it may bring
    arb_chain_link_t node;  //  in order, or in spare
} s_request_t;

struct _arb_requests_t {
    uint32_t tag;        //  ARB_REQUESTS_TAG
    arb_idmap_t *table;  //  owned: reqid -> s_request_t owned through order
    arb_chain_t order;   //  owned: the pending records, oldest first
    arb_chain_t spare;   //  owned: ended records, kept for the next
    int64_t reserved;    //  sum of the records' reserved
};

static s_request_t *
s_first (arb_chain_t *chain)
{
    return ARB_CHAIN_ITEM (arb_chain_first (chain), s_request_t, node);
}

arb_requests_t *
arb_requests_new (void)
{
    arb_requests_t *self = (arb_requests_t *) zmalloc (sizeof (arb_requests_t));
    self->tag = ARB_REQUESTS_TAG;
    self->table = arb_idmap_new ();
    arb_chain_init (&self->order);
    arb_chain_init (&self->spare);
    return self;
}

//  Frees every record of a chain.
static void
s_free_all (arb_chain_t *chain)
{
    s_request_t *request;
    while ((request = s_first (chain))) {
        arb_chain_remove (chain, &request->node);
        free (request);
    }
}

void
arb_requests_destroy (arb_requests_t **self_p)
{
    assert (self_p);
    arb_requests_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == ARB_REQUESTS_TAG);
    s_free_all (&self->order);
    ARB_SPARE_FREE (&self->spare, s_request_t, node);
    arb_idmap_destroy (&self->table);
    self->tag = ARB_REQUESTS_DEAD;
    free (self);
    *self_p = NULL;
}

int
arb_requests_add (
    arb_requests_t *self, uint32_t reqid, arb_msg_type_t type, uint32_t reserved, int64_t sent_at)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    s_request_t *request = ARB_SPARE_TAKE (&self->spare, s_request_t, node);
    if (!arb_idmap_insert (self->table, reqid, request)) {
        ARB_SPARE_KEEP (&self->spare, request, node, S_SPARE_REQUESTS);  //  pending already
        return -1;
    }
    request->reqid = reqid;
    request->type = type;
    request->sent_at = sent_at;
    request->reserved = reserved;
    arb_chain_add_end (&self->order, &request->node);
    self->reserved += reserved;
    return 0;
}

bool
arb_requests_contains (arb_requests_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    return arb_idmap_contains (self->table, reqid);
}

size_t
arb_requests_size (arb_requests_t *self)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    return arb_idmap_size (self->table);
}

int64_t
arb_requests_reserved (arb_requests_t *self)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    return self->reserved;
}

arb_msg_type_t
arb_requests_end (arb_requests_t *self, uint32_t reqid)
{
    assert (self && self->tag == ARB_REQUESTS_TAG);
    s_request_t *request = (s_request_t *) arb_idmap_lookup (self->table, reqid);
    if (!request)
        return (arb_msg_type_t) 0;
    arb_msg_type_t type = request->type;
    self->reserved -= request->reserved;
    arb_chain_remove (&self->order, &request->node);
    arb_idmap_remove (self->table, reqid);
    ARB_SPARE_KEEP (&self->spare, request, node, S_SPARE_REQUESTS);
    return type;
}

uint32_t
arb_requests_oldest (arb_requests_t *self, int64_t *sent_at)
{
    assert (self && self->tag == ARB_REQUESTS_TAG && sent_at);
    s_request_t *request = s_first (&self->order);
    if (!request)
        return 0;
    *sent_at = request->sent_at;
    return request->reqid;
}

uint32_t *
arb_requests_ids (arb_requests_t *self, size_t *count)
{
    assert (self && self->tag == ARB_REQUESTS_TAG && count);
    uint32_t *ids = (uint32_t *) zmalloc ((self->order.size + 1) * sizeof (uint32_t));
    *count = 0;
    for (arb_chain_link_t *link = arb_chain_first (&self->order); link;
         link = arb_chain_next (&self->order, link))
        ids[(*count)++] = ARB_CHAIN_ITEM (link, s_request_t, node)->reqid;
    return ids;
}
